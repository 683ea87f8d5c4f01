//! `aftercare-admin gallery`: every email kind in every locale, rendered with sample data through
//! the functions' renderer, written as `<kind>.<locale>.html` and `.txt` with an `index.html`
//! linking them. Needs no AWS; `scripts/gallery` screenshots and checks the result.

use aftercare::adapters::mail::samples::{sample_data, sample_merchant};
use aftercare::adapters::mail::{EmailKind, Renderer};
use aftercare::domain::merchant::MerchantInput;
use aftercare::domain::validation::parse_json;
use aftercare::domain::{Locale, Merchant};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::Error;

/// File endings the gallery (and its checker's screenshots) write beside `<kind>.<locale>`.
const OUTPUTS: &[&str] = &[".html", ".txt", ".desktop.png", ".mobile.png"];

/// One rendered email as the index lists it.
struct Entry {
    kind: EmailKind,
    locale: Locale,
    subject: String,
    html_bytes: usize,
    text_bytes: usize,
}

/// Renders the gallery into `out` for the merchant in `merchant_file` (else the sample merchant)
/// and prints one line per file written with its size in bytes.
pub fn run(out: &Path, merchant_file: Option<&Path>) -> Result<(), Error> {
    let merchant = match merchant_file {
        Some(path) => {
            let bytes =
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let input: MerchantInput = parse_json(&bytes)?;
            input.validate()?
        }
        None => sample_merchant()?,
    };
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    remove_stale(out)?;
    let renderer = Renderer::new()?;
    let mut entries = Vec::new();
    for kind in EmailKind::ALL {
        for locale in Locale::ALL {
            let rendered =
                renderer.render(*kind, locale, &merchant, &sample_data(*kind, locale))?;
            let stem = format!("{}.{}", kind.as_str(), locale.as_str());
            let html_bytes = write(out, &format!("{stem}.html"), &rendered.html)?;
            let text_bytes = write(out, &format!("{stem}.txt"), &rendered.text)?;
            entries.push(Entry {
                kind: *kind,
                locale,
                subject: rendered.subject,
                html_bytes,
                text_bytes,
            });
        }
    }
    write(out, "index.html", &index(&merchant, &entries))?;
    if let Some(largest) = entries.iter().max_by_key(|e| e.html_bytes) {
        println!(
            "{} emails ({} kinds × {} locales); largest HTML {} bytes ({}.{}.html)",
            entries.len(),
            EmailKind::ALL.len(),
            Locale::ALL.len(),
            largest.html_bytes,
            largest.kind.as_str(),
            largest.locale.as_str()
        );
    }
    Ok(())
}

fn write(dir: &Path, name: &str, contents: &str) -> Result<usize, Error> {
    let path = dir.join(name);
    std::fs::write(&path, contents).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!("{:>8}  {}", contents.len(), path.display());
    Ok(contents.len())
}

/// Whether `name` is something a gallery run (or its checker) wrote: `index.html` or
/// `<kind>.<locale>` with one of [`OUTPUTS`].
fn is_gallery_file(name: &str) -> bool {
    if name == "index.html" {
        return true;
    }
    OUTPUTS.iter().any(|ending| {
        name.strip_suffix(ending)
            .and_then(|stem| stem.rsplit_once('.'))
            .is_some_and(|(kind, locale)| {
                !kind.is_empty()
                    && kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                    && locale.len() == 2
                    && locale.bytes().all(|b| b.is_ascii_lowercase())
            })
    })
}

/// Removes what an earlier run wrote, so a renamed kind or locale leaves nothing behind to check.
/// Other files in `dir` are left alone.
fn remove_stale(dir: &Path) -> Result<(), Error> {
    let listing =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for entry in listing {
        let entry = entry?;
        let stale: Option<PathBuf> = entry
            .file_name()
            .to_str()
            .filter(|name| is_gallery_file(name))
            .map(|_| entry.path());
        if let Some(path) = stale.filter(|p| p.is_file()) {
            std::fs::remove_file(&path)
                .map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
        }
    }
    Ok(())
}

/// Text for HTML (the index shows subjects and merchant data).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            _ => out.push(c),
        }
    }
    out
}

/// A table of every kind (rows) in every locale (columns): subject, HTML and text links, sizes.
fn index(merchant: &Merchant, entries: &[Entry]) -> String {
    let mut html = String::new();
    let title = format!("{} email gallery", escape(&merchant.name));
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>\n\
         body {{ font-family: system-ui, sans-serif; margin: 24px; color: #111827; }}\n\
         table {{ border-collapse: collapse; }}\n\
         th, td {{ border: 1px solid #e5e7eb; padding: 6px 10px; text-align: left; vertical-align: top; }}\n\
         td small {{ color: #6b7280; }}\n\
         </style>\n</head>\n<body>\n<h1>{title}</h1>\n\
         <p>{} emails: {} kinds × {} locales, rendered with sample data by <code>aftercare-admin gallery</code>.</p>\n\
         <table>\n<tr><th>kind</th>",
        entries.len(),
        EmailKind::ALL.len(),
        Locale::ALL.len()
    );
    for locale in Locale::ALL {
        let _ = write!(html, "<th>{}</th>", locale.as_str());
    }
    html.push_str("</tr>\n");
    for kind in EmailKind::ALL {
        let _ = write!(
            html,
            "<tr><th>{}<br><small>{}</small></th>",
            kind.as_str(),
            if kind.is_internal() {
                "to the merchant"
            } else {
                "to the customer"
            }
        );
        for locale in Locale::ALL {
            match entries
                .iter()
                .find(|e| e.kind == *kind && e.locale == locale)
            {
                Some(e) => {
                    let stem = format!("{}.{}", kind.as_str(), locale.as_str());
                    let _ = write!(
                        html,
                        "<td>{}<br><a href=\"{stem}.html\">HTML</a> <small>{} B</small> · \
                         <a href=\"{stem}.txt\">text</a> <small>{} B</small></td>",
                        escape(&e.subject),
                        e.html_bytes,
                        e.text_bytes
                    );
                }
                None => html.push_str("<td></td>"),
            }
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</table>\n</body>\n</html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_only_its_own_files() {
        for ours in [
            "index.html",
            "order_thanks.en.html",
            "payment_failed.de.txt",
            "cross_sell.fr.mobile.png",
            "cross_sell.fr.desktop.png",
        ] {
            assert!(is_gallery_file(ours), "{ours}");
        }
        for theirs in [
            "notes.txt",
            "order_thanks.html",
            "order-thanks.en.html",
            "order_thanks.en.eml",
            "order_thanks.eng.html",
            "README.md",
        ] {
            assert!(!is_gallery_file(theirs), "{theirs}");
        }
    }

    #[test]
    fn writes_every_kind_in_every_locale_and_an_index() {
        let dir = std::env::temp_dir().join(format!("aftercare-gallery-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("gone_kind.en.html"), "stale").unwrap();
        std::fs::write(dir.join("keep.me"), "not ours").unwrap();
        run(&dir, None).unwrap();
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let expected = EmailKind::ALL.len() * Locale::ALL.len();
        assert_eq!(
            names.iter().filter(|n| n.ends_with(".html")).count(),
            expected + 1
        );
        assert_eq!(
            names.iter().filter(|n| n.ends_with(".txt")).count(),
            expected
        );
        assert!(!names.contains(&"gone_kind.en.html".to_owned()));
        assert!(names.contains(&"keep.me".to_owned()));
        let index = std::fs::read_to_string(dir.join("index.html")).unwrap();
        assert!(index.contains("href=\"merchant_complaint_alert.fr.html\""));
        assert!(index.contains("href=\"order_thanks.de.txt\""));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
