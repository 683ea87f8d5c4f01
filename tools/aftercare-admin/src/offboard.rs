//! `aftercare-admin merchant delete`: offboarding a merchant (see
//! `aftercare::adapters::store::offboarding`).
//!
//! * `--dry-run` counts the merchant's items per kind and deletes nothing.
//! * Otherwise the merchant id must be typed again (`--confirm`) and the operator named
//!   (`--requested-by`); the merchant's profile and API keys go in the first step, then everything
//!   else, `--batch` items a step, printing progress after each step. `--max-steps` stops early;
//!   running the command again continues where it stopped.
//!
//! Every run writes an audit record (`OFFBOARD#<m>` / `AUDIT#<started at>`) that outlives the
//! merchant. `--json` prints the record as the only line on stdout (progress goes to stderr).

use aftercare::adapters::store::Store;
use aftercare::adapters::store::offboarding::{
    self, Counts, Mode, OffboardAudit, Outcome, Progress, Request,
};
use aftercare::clock::SystemClock;
use aftercare::domain::MerchantId;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Longest `--requested-by` accepted.
const REQUESTED_BY_MAX: usize = 200;

/// What the operator typed.
pub struct Args {
    pub merchant: String,
    pub dry_run: bool,
    pub confirm: Option<String>,
    pub requested_by: Option<String>,
    pub batch: usize,
    pub max_steps: Option<u32>,
    pub json: bool,
}

/// The request `args` make, or why they make none.
pub fn request(args: &Args) -> Result<Request, Error> {
    let merchant = MerchantId::parse("merchant", &args.merchant)?;
    let requested_by = args.requested_by.as_deref().map(requested_by).transpose()?;
    let mode = if args.dry_run {
        Mode::DryRun
    } else {
        if args.confirm.as_deref() != Some(args.merchant.as_str()) {
            return Err(format!(
                "deleting every item of merchant {merchant} cannot be undone: type its id again \
                 with --confirm {merchant} (or count first with --dry-run)"
            )
            .into());
        }
        if requested_by.is_none() {
            return Err(
                "--requested-by NAME is required to delete: it goes in the audit record".into(),
            );
        }
        Mode::Delete
    };
    if args.batch == 0 {
        return Err("--batch must be at least 1".into());
    }
    Ok(Request {
        merchant,
        requested_by,
        mode,
        step_budget: args.batch,
        max_steps: args.max_steps,
    })
}

/// An operator's name or ticket for the audit record: trimmed, not empty, printable, bounded.
fn requested_by(raw: &str) -> Result<String, Error> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("--requested-by must not be empty".into());
    }
    if name.chars().count() > REQUESTED_BY_MAX {
        return Err(format!("--requested-by must be at most {REQUESTED_BY_MAX} characters").into());
    }
    if name.chars().any(char::is_control) {
        return Err("--requested-by must not contain control characters".into());
    }
    Ok(name.to_owned())
}

pub async fn run(store: &Store, args: &Args) -> Result<(), Error> {
    let request = request(args)?;
    let json = args.json;
    let report = |p: &Progress<'_>| {
        let line = format!(
            "step {}: {} deleted so far{}",
            p.step,
            offboarding::total(p.deleted),
            if p.remaining {
                ", more to delete"
            } else {
                ", nothing left"
            }
        );
        if json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    let audit = offboarding::offboard(store, &request, &SystemClock, report).await?;
    if json {
        println!("{}", serde_json::to_string(&audit)?);
    } else {
        print!("{}", summary(&audit));
    }
    Ok(())
}

/// The human-readable end of a run.
pub fn summary(audit: &OffboardAudit) -> String {
    let m = &audit.merchant_id;
    let mut out = match audit.mode {
        Mode::DryRun => format!(
            "merchant {m}: {} items (dry run, nothing deleted)\n",
            audit.total
        ),
        Mode::Delete => format!("merchant {m}: {} items deleted\n", audit.total),
    };
    out.push_str(&table(&audit.counts));
    match audit.outcome {
        Outcome::Completed => {
            out.push_str(&format!(
                "nothing of merchant {m} is left. Its API keys and profile went first: warm \
                 functions stop accepting it once their caches expire (AFTERCARE_KEY_CACHE_TTL_SECONDS \
                 and AFTERCARE_MERCHANT_CACHE_TTL_SECONDS, 30 s and 60 s by default). Run this \
                 command again after that to delete anything written meanwhile.\n"
            ));
        }
        Outcome::Incomplete => out.push_str(&format!(
            "items of merchant {m} are left: run the same command again to continue.\n"
        )),
        Outcome::Counted | Outcome::Running | Outcome::Failed => {}
    }
    out.push_str(&format!(
        "audit record: OFFBOARD#{m} / started at {}\n",
        audit.started_at
    ));
    out
}

/// Counts per kind, one line each, then the total.
fn table(counts: &Counts) -> String {
    let width = counts.keys().map(String::len).max().unwrap_or(0).max(5);
    let mut out: String = counts
        .iter()
        .map(|(kind, n)| format!("  {kind:<width$}  {n:>9}\n"))
        .collect();
    out.push_str(&format!(
        "  {:<width$}  {:>9}\n",
        "total",
        offboarding::total(counts)
    ));
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn args() -> Args {
        Args {
            merchant: "acme".into(),
            dry_run: false,
            confirm: Some("acme".into()),
            requested_by: Some("ops: ticket 42".into()),
            batch: 100,
            max_steps: None,
            json: false,
        }
    }

    #[test]
    fn a_delete_needs_the_id_typed_again_and_a_name() {
        let ok = request(&args()).unwrap();
        assert_eq!(ok.mode, Mode::Delete);
        assert_eq!(ok.requested_by.as_deref(), Some("ops: ticket 42"));
        for confirm in [None, Some("acme-eu"), Some("ACME"), Some("")] {
            let a = Args {
                confirm: confirm.map(str::to_owned),
                ..args()
            };
            assert!(
                request(&a)
                    .unwrap_err()
                    .to_string()
                    .contains("--confirm acme")
            );
        }
        for name in [None, Some(""), Some("   "), Some("a\u{7}b")] {
            let a = Args {
                requested_by: name.map(str::to_owned),
                ..args()
            };
            assert!(
                request(&a)
                    .unwrap_err()
                    .to_string()
                    .contains("--requested-by")
            );
        }
        let long = Args {
            requested_by: Some("x".repeat(REQUESTED_BY_MAX + 1)),
            ..args()
        };
        assert!(request(&long).is_err());
        assert!(request(&Args { batch: 0, ..args() }).is_err());
        assert!(
            request(&Args {
                merchant: "a#b".into(),
                confirm: Some("a#b".into()),
                ..args()
            })
            .is_err()
        );
    }

    #[test]
    fn a_dry_run_needs_neither() {
        let a = Args {
            dry_run: true,
            confirm: None,
            requested_by: None,
            ..args()
        };
        let r = request(&a).unwrap();
        assert_eq!(r.mode, Mode::DryRun);
        assert_eq!(r.requested_by, None);
    }

    #[test]
    fn the_summary_lists_every_kind_and_the_total() {
        let audit = OffboardAudit {
            merchant_id: MerchantId::parse("m", "acme").unwrap(),
            requested_by: None,
            mode: Mode::DryRun,
            started_at: "2026-12-01T10:00:00Z".parse().unwrap(),
            outcome: Outcome::Counted,
            counts: Counts::from([("customer".into(), 1000), ("order".into(), 5)]),
            total: 1005,
            remaining: true,
            finished_at: None,
            error: None,
        };
        let text = summary(&audit);
        assert!(text.contains("1005 items (dry run"), "{text}");
        assert!(text.contains("customer       1000"), "{text}");
        assert!(text.contains("total          1005"), "{text}");
    }
}
