//! `aftercare-admin products import FILE --merchant M`: a catalogue from a file, streamed and
//! stored in batches through the same validation as the products API.
//!
//! * JSON lines (any other file name): one product per line, as `POST /v1/products` takes them
//!   (`sku`, `name`, `url`, `image_url`, `price`, `currency`, `tips` per locale, `related`).
//! * CSV (a name ending in `.csv`): a header row naming the columns `sku,name,url,image_url,price,
//!   currency,tips,related` (any order; all but `sku` and `name` may be left out), then one product
//!   per row. `tips` (in the merchant's default locale) and `related` are `|`-separated; fields may
//!   be double-quoted (`""` for a quote inside).
//!
//! Prints a JSON summary (stored, and each refused line with its number and field) and fails if
//! any line was not stored. A SKU repeated in the file is refused after its first line.

use aftercare::adapters::store::Store;
use aftercare::domain::catalogue::Sku;
use aftercare::domain::{FieldError, Locale, MerchantId};
use aftercare::usecases::catalogue::{Outcome, Products};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::io::BufRead;
use std::path::Path;

/// Products sent to the store at a time.
const BATCH: usize = 1_000;
/// Refused lines listed in the summary (all are counted).
const LISTED: usize = 1_000;
const CSV_COLUMNS: [&str; 8] = [
    "sku",
    "name",
    "url",
    "image_url",
    "price",
    "currency",
    "tips",
    "related",
];

type Error = Box<dyn std::error::Error + Send + Sync>;

/// One CSV record's fields (RFC 4180 quoting, on one line).
pub fn csv_fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() && !was_quoted => {
                quoted = true;
                was_quoted = true;
            }
            (false, ',') => {
                fields.push(std::mem::take(&mut field));
                was_quoted = false;
            }
            (false, '"') => return Err("a quote inside an unquoted field".into()),
            (false, c) if was_quoted => {
                return Err(format!("{c:?} after a quoted field's closing quote"));
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err("a quoted field is not closed on its line".into());
    }
    fields.push(field);
    Ok(fields)
}

/// The columns a CSV header names, checked.
pub fn csv_header(line: &str) -> Result<Vec<String>, Error> {
    let names: Vec<String> = csv_fields(line)?
        .into_iter()
        .map(|n| n.trim().to_ascii_lowercase())
        .collect();
    for n in &names {
        if !CSV_COLUMNS.contains(&n.as_str()) {
            return Err(format!(
                "unknown CSV column {n:?}; the columns are {}",
                CSV_COLUMNS.join(",")
            )
            .into());
        }
    }
    for required in ["sku", "name"] {
        if !names.iter().any(|n| n == required) {
            return Err(format!("the CSV header must name a {required} column").into());
        }
    }
    Ok(names)
}

/// A CSV row as the product the API would take (empty cells left out).
pub fn csv_product(columns: &[String], line: &str, locale: Locale) -> Result<Value, FieldError> {
    let fields = csv_fields(line).map_err(|m| FieldError::new("", "invalid_csv", m))?;
    if fields.len() != columns.len() {
        return Err(FieldError::new(
            "",
            "invalid_csv",
            format!(
                "{} fields where the header names {}",
                fields.len(),
                columns.len()
            ),
        ));
    }
    let list = |v: &str| -> Vec<String> {
        v.split('|')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let mut product = Map::new();
    for (name, value) in columns.iter().zip(fields) {
        if value.trim().is_empty() {
            continue;
        }
        let v = match name.as_str() {
            "price" => value.trim().parse::<i64>().map(Value::from).map_err(|_| {
                FieldError::new(
                    "price",
                    "invalid_type",
                    "price is a whole number of minor units",
                )
            })?,
            "tips" => json!({locale.as_str(): list(&value)}),
            "related" => json!(list(&value)),
            _ => Value::String(value),
        };
        product.insert(name.clone(), v);
    }
    Ok(Value::Object(product))
}

/// What the import made of the file.
#[derive(Default)]
struct Summary {
    stored: usize,
    invalid: usize,
    not_stored: usize,
    refused: Vec<Value>,
}

impl Summary {
    fn refuse(&mut self, entry: Value, invalid: bool) {
        match invalid {
            true => self.invalid += 1,
            false => self.not_stored += 1,
        }
        if self.refused.len() < LISTED {
            self.refused.push(entry);
        }
    }
}

/// One batch of parsed lines: stored through the use-case, the results recorded by line.
async fn flush(
    products: &Products<'_, Store>,
    batch: &mut Vec<(usize, Value)>,
    seen: &mut BTreeSet<Sku>,
    summary: &mut Summary,
) -> Result<(), Error> {
    if batch.is_empty() {
        return Ok(());
    }
    let taken = std::mem::take(batch);
    let lines: Vec<usize> = taken.iter().map(|(l, _)| *l).collect();
    let items = taken.into_iter().map(|(_, v)| (String::new(), v)).collect();
    let results = products
        .upsert_many(items, seen, jiff::Timestamp::now())
        .await?;
    for (line, r) in lines.into_iter().zip(results) {
        match r.outcome {
            Outcome::Stored => summary.stored += 1,
            Outcome::Invalid(e) => summary.refuse(
                json!({"line": line, "sku": r.sku, "field": e.field, "code": e.code, "message": e.message}),
                true,
            ),
            Outcome::NotStored => summary.refuse(
                json!({"line": line, "sku": r.sku, "code": "not_stored", "message": "storage kept refusing it; import the file again"}),
                false,
            ),
        }
    }
    Ok(())
}

/// Imports `file` into merchant `m`'s catalogue and prints the summary; an error if any line was
/// not stored.
pub async fn import(store: &Store, m: &MerchantId, file: &Path) -> Result<(), Error> {
    let merchant = store
        .get_merchant(m)
        .await?
        .ok_or("no such merchant; create it first with `merchant put`")?;
    let csv = file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let reader = std::io::BufReader::new(std::fs::File::open(file)?);
    let products = Products {
        catalogue: store,
        merchant: m,
    };
    let (mut summary, mut seen, mut batch) = (Summary::default(), BTreeSet::new(), Vec::new());
    let mut columns: Option<Vec<String>> = None;
    for (i, line) in reader.lines().enumerate() {
        let (number, line) = (i + 1, line?);
        if line.trim().is_empty() {
            continue;
        }
        let parsed = match (&columns, csv) {
            (None, true) => {
                columns = Some(csv_header(&line)?);
                continue;
            }
            (Some(cols), _) => csv_product(cols, &line, merchant.default_locale),
            (None, false) => serde_json::from_str::<Value>(&line)
                .map_err(|e| FieldError::new("", "invalid_json", e.to_string())),
        };
        match parsed {
            Ok(v) => batch.push((number, v)),
            Err(e) => summary.refuse(
                json!({"line": number, "sku": null, "field": e.field, "code": e.code, "message": e.message}),
                true,
            ),
        }
        if batch.len() >= BATCH {
            flush(&products, &mut batch, &mut seen, &mut summary).await?;
        }
    }
    flush(&products, &mut batch, &mut seen, &mut summary).await?;
    println!(
        "{}",
        json!({
            "merchant": m, "file": file.display().to_string(), "stored": summary.stored,
            "invalid": summary.invalid, "not_stored": summary.not_stored, "refused": summary.refused,
        })
    );
    match summary.invalid + summary.not_stored {
        0 => Ok(()),
        n => Err(format!("{n} lines were not imported (see \"refused\")").into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_follow_rfc_4180_quoting_on_one_line() {
        assert_eq!(csv_fields("a,b,,c").unwrap(), ["a", "b", "", "c"]);
        assert_eq!(
            csv_fields(r#""Tent, 2P","say ""hi""",x"#).unwrap(),
            ["Tent, 2P", r#"say "hi""#, "x"]
        );
        assert!(csv_fields(r#""open"#).is_err());
        assert!(csv_fields(r#"a"b"#).is_err());
        assert!(csv_fields(r#""a"b"#).is_err());
    }

    #[test]
    fn a_csv_row_becomes_the_product_the_api_takes() {
        let cols = csv_header("sku,name,price,currency,tips,related").unwrap();
        let v = csv_product(
            &cols,
            r#"TENT-2P,"Ridge tent, 2P",24900,EUR,Dry it|Pitch it,MAT-1| PEG-10"#,
            Locale::De,
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"sku": "TENT-2P", "name": "Ridge tent, 2P", "price": 24900, "currency": "EUR",
                   "tips": {"de": ["Dry it", "Pitch it"]}, "related": ["MAT-1", "PEG-10"]})
        );
        let v = csv_product(&cols, "MAT-1,Mat,,,,", Locale::En).unwrap();
        assert_eq!(v, json!({"sku": "MAT-1", "name": "Mat"}));
        assert_eq!(
            csv_product(&cols, "X,Y,cheap,EUR,,", Locale::En)
                .unwrap_err()
                .field,
            "price"
        );
        assert_eq!(
            csv_product(&cols, "X,Y", Locale::En).unwrap_err().code,
            "invalid_csv"
        );
        assert!(csv_header("sku,name,colour").is_err());
        assert!(csv_header("name,price").is_err());
    }
}
