//! Injection through the whole pipeline: hostile customer and merchant text in an order reaches the
//! customer's inbox as inert text (HTML escaped, template syntax never evaluated, no header added
//! or split), and what cannot be made inert is refused at the door naming the field, with nothing
//! stored or sent: line breaks, NUL and Unicode line separators in text, and `javascript:`,
//! `data:` and other non-web links in URLs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly

use aftercare::clock::SystemClock;
use aftercare_tests::{Env, answer, deadline};
use serde_json::{Value, json};
use std::sync::Arc;

const SCRIPT: &str = "<script>alert(1)</script>";
const TEMPLATE: &str = "{{ 7 * 7 }}{% if true %}IF{% endif %}";

fn app(env: &Env) -> order_placed::App {
    order_placed::App::with_parts(
        env.config(),
        env.dynamodb(),
        env.ses(),
        Arc::new(SystemClock),
    )
    .unwrap()
}

async fn post(env: &Env, app: &order_placed::App, order: &Value) -> (i64, Value) {
    let resp = order_placed::handle(
        app,
        env.http_event(order, Some(&env.api_key)),
        "t",
        deadline(),
    )
    .await
    .unwrap();
    answer(&resp)
}

#[tokio::test]
async fn hostile_text_reaches_the_inbox_as_inert_text() {
    let mut env = Env::new().await;
    env.merchant.name = format!("Acme {SCRIPT} & Co {TEMPLATE}");
    env.merchant.sender.from_name = format!("Acme \"Outdoor\" <evil@attacker.example>, {TEMPLATE}");
    env.save_merchant().await;
    let app = app(&env);
    let mut order = env.order();
    order["customer"]["first_name"] = format!("Ann{SCRIPT}{TEMPLATE}").into();
    order["customer"]["last_name"] = "Lee</title><img src=x onerror=alert(1)>".into();
    order["items"][0]["name"] = "Tent \"><svg onload=alert(1)> ' & more".into();
    order["items"][0]["url"] = "https://shop.example/p?x=\"onmouseover=\"alert(1)".into();
    let (status, body) = post(&env, &app, &order).await;
    assert_eq!(status, 201, "{body}");

    let emails = env.emails_to(&env.customer_email()).await;
    assert_eq!(emails.len(), 1);
    let email = &emails[0];
    let html = email.part("text/html").unwrap();
    let text = email.part("text/plain").unwrap();
    for live in [
        "<script",
        "<svg",
        "<img src=x",
        "onmouseover=\"alert",
        "\"onmouseover",
        "</title><img",
    ] {
        assert!(
            !html.contains(live),
            "live markup {live:?} in the HTML part"
        );
    }
    assert!(
        html.contains("&lt;script&gt;"),
        "the text is shown, escaped"
    );
    for part in [&html, &text] {
        // Evaluated, these would have become "49" and "IF".
        assert!(
            part.contains("{{ 7 * 7 }}"),
            "template syntax in data was evaluated"
        );
        assert!(
            part.contains("{% if true %}IF{% endif %}"),
            "a block in data ran"
        );
    }

    // One From, one To, no header the data tried to add: the headers are what we wrote.
    let raw = &email.raw;
    let head = &raw[..raw.find("\r\n\r\n").unwrap()];
    let count = |name: &str| {
        head.split("\r\n")
            .filter(|l| {
                l.to_ascii_lowercase()
                    .starts_with(&format!("{}:", name.to_ascii_lowercase()))
            })
            .count()
    };
    assert_eq!(
        (count("From"), count("To"), count("Bcc"), count("Cc")),
        (1, 1, 0, 0)
    );
    // The display name is one quoted-string (RFC 5322) or encoded word: an angle-bracketed
    // address inside it stays part of the name, and only the merchant's address is an address.
    let from = email.header("From").unwrap();
    let display = from
        .strip_suffix(&format!(" <{}>", env.merchant.sender.from_email))
        .unwrap_or_else(|| panic!("From does not end with the sender address: {from}"));
    assert!(
        is_one_phrase(display),
        "the display name can be read as more than a name: {from}"
    );
}

/// Whether `display` is a single RFC 5322 quoted-string (every `"` and `\` inside escaped) or a
/// run of RFC 2047 encoded words: nothing a mail client could read as another address.
fn is_one_phrase(display: &str) -> bool {
    if let Some(inner) = display.strip_prefix('"').and_then(|d| d.strip_suffix('"')) {
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.next().is_none() => return false,
                '\\' => {}
                '"' | '\r' | '\n' => return false,
                _ => {}
            }
        }
        return true;
    }
    display
        .split_whitespace()
        .all(|w| w.starts_with("=?") && w.ends_with("?=") && !w.contains(['<', '>', ',', '"']))
}

#[tokio::test]
async fn what_cannot_be_made_inert_is_refused_naming_the_field_and_nothing_is_kept() {
    let env = Env::new().await;
    let app = app(&env);
    let text_field = ["/customer/first_name", "customer.first_name"];
    let cases: Vec<(&str, &str, Value)> = vec![
        (
            text_field[0],
            text_field[1],
            json!("Ann\r\nBcc: victim@example.com"),
        ),
        (text_field[0], text_field[1], json!("Ann\nX-Injected: yes")),
        (text_field[0], text_field[1], json!("Ann\u{0}")),
        (
            text_field[0],
            text_field[1],
            json!("Ann\u{2028}Bcc: victim@example.com"),
        ),
        (text_field[0], text_field[1], json!("Ann\u{2029}x")),
        (text_field[0], text_field[1], json!("Ann\u{85}x")),
        (
            "/customer/last_name",
            "customer.last_name",
            json!("Lee\u{202E}gnp.exe"),
        ),
        (
            "/items/0/name",
            "items[0].name",
            json!("Tent\r\nSubject: free"),
        ),
        ("/items/0/url", "items[0].url", json!("javascript:alert(1)")),
        ("/items/0/url", "items[0].url", json!("JaVaScRiPt:alert(1)")),
        (
            "/items/0/url",
            "items[0].url",
            json!("  javascript:alert(1)"),
        ),
        (
            "/items/0/url",
            "items[0].url",
            json!("data:text/html;base64,PHNjcmlwdD4="),
        ),
        ("/items/0/url", "items[0].url", json!("vbscript:msgbox(1)")),
        (
            "/items/0/url",
            "items[0].url",
            json!("//attacker.example/x"),
        ),
        (
            "/items/0/url",
            "items[0].url",
            json!("https:/\u{2028}/x.example"),
        ),
        (
            "/items/0/url",
            "items[0].url",
            json!("https://shop.example/a b"),
        ),
        (
            "/items/0/image_url",
            "items[0].image_url",
            json!("data:image/svg+xml,<svg onload=alert(1)>"),
        ),
    ];
    for (n, (pointer, field, value)) in cases.iter().enumerate() {
        let mut order = env.order();
        order["id"] = format!("INJ-{n}").into();
        if pointer.ends_with("image_url") {
            order["items"][0]["image_url"] = Value::Null;
        }
        *order
            .pointer_mut(pointer)
            .unwrap_or_else(|| panic!("{pointer}")) = value.clone();
        let (status, body) = post(&env, &app, &order).await;
        assert_eq!(status, 400, "{value}: {body}");
        assert_eq!(body["error"]["field"], *field, "{value}: {body}");
    }
    // Nothing was stored or sent for any of them.
    let items = env.items().await;
    assert!(
        items
            .iter()
            .all(|i| !aftercare_tests::s(i, "SK").contains("INJ-")),
        "an item of a refused order was stored"
    );
    assert!(env.emails_to(&env.customer_email()).await.is_empty());
}
