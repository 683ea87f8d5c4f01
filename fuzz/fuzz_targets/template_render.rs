//! The template renderer: data from customers and merchants is text, never markup or template
//! syntax. Whatever the names and order fields say, rendering does not panic, the HTML never
//! carries the input's markup unescaped, and template syntax in the data is not evaluated.
#![no_main]

use aftercare::domain::Merchant;
use aftercare::domain::merchant::MerchantInput;
use aftercare::adapters::mail::{EmailKind, Renderer};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn fixtures() -> Option<&'static (Renderer, Merchant)> {
    static F: OnceLock<Option<(Renderer, Merchant)>> = OnceLock::new();
    F.get_or_init(|| {
        let input: MerchantInput =
            serde_json::from_str(include_str!("../../examples/merchant.json")).ok()?;
        Some((Renderer::new().ok()?, input.validate().ok()?))
    })
    .as_ref()
}

fuzz_target!(|data: &[u8]| {
    let Some((renderer, merchant)) = fixtures() else {
        return;
    };
    // The first byte picks the email and the language (one render per input keeps the run fast
    // enough to explore the data; every kind and language is reached across inputs).
    let Some((&pick, data)) = data.split_first() else {
        return;
    };
    const KINDS: [EmailKind; 3] = [
        EmailKind::OrderThanks,
        EmailKind::UsageTips,
        EmailKind::FeedbackSurvey,
    ];
    let kind = KINDS[usize::from(pick) % KINDS.len()];
    let locales = aftercare::domain::Locale::ALL;
    let locale = locales[usize::from(pick / 3) % locales.len()];
    let text = String::from_utf8_lossy(data).into_owned();
    if text.contains("ZZ42ZZ") {
        return; // the input already says what the check looks for
    }
    let probe = format!("<b data-x=\"{text}\">ZZ{{{{ 6 * 7 }}}}ZZ");
    let ctx = serde_json::json!({
        "customer": {"first_name": probe, "last_name": text},
        "order": {"id": text, "items": [{"name": probe, "sku": text, "quantity": 1, "price": "1.00 EUR"}],
                   "total": "1.00 EUR", "placed_on": text},
        "loyalty": {"points_earned": 1, "balance": 1},
        "links": {},
    });
    let Ok(out) = renderer.render(kind, locale, merchant, &ctx) else {
        return;
    };
    assert!(
        !out.html.contains("<b data-x="),
        "unescaped markup from data"
    );
    for part in [&out.html, &out.text, &out.subject] {
        assert!(
            !part.contains("ZZ42ZZ"),
            "template syntax in data was evaluated"
        );
    }
    assert!(
        !out.subject.contains('\n') && !out.subject.contains('\r'),
        "line break in the subject"
    );
});
