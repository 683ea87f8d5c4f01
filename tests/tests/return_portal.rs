//! The return portal (`GET` and `POST /v1/return/{token}`) through shipment-update's real handler
//! against moto: opening the page stores nothing; a form sent 20 times, or 16 times at once, makes
//! one return with one "return requested" email; a quantity above what may come back, an excluded
//! item or no item at all shows the form again with the message where it belongs; tampered,
//! wrong-purpose, expired and other merchants' links show the error page; the delivered email and
//! the tracking page link the portal; a German customer reads German.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly

use aftercare::clock::ManualClock;
use aftercare::domain::returns::{AutoApproval, Resolution, ReturnPolicy, ReturnShipping};
use aftercare::token::SigningKey;
use aftercare_tests::{BASE, Env, Item, deadline, s};
use jiff::Timestamp;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

fn key() -> SigningKey {
    SigningKey::new(&[29u8; 32]).unwrap()
}

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

const ORDER: &str = "SO-1001";
const NOW: &str = "2026-11-25T10:00:00Z";

/// A page answer.
#[derive(Debug)]
struct Page {
    status: i64,
    content_type: String,
    body: String,
}

impl Page {
    fn has(&self, needle: &str) -> bool {
        self.body.contains(needle)
    }

    /// The form's one-time key.
    fn form_key(&self) -> String {
        let at = self
            .body
            .find(r#"name="key" value=""#)
            .unwrap_or_else(|| panic!("no form key:\n{}", self.body));
        let rest = &self.body[at + r#"name="key" value=""#.len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }

    /// The return number the confirmation shows.
    fn return_number(&self) -> String {
        assert!(self.has(r#"id="return-done""#), "{}", self.body);
        let at = self.body.find(r#"<dd id="return-number">"#).unwrap();
        let rest = &self.body[at + r#"<dd id="return-number">"#.len()..];
        rest[..rest.find('<').unwrap()].to_owned()
    }

    /// The entries of the order's returns list.
    fn returns_listed(&self) -> usize {
        match self.body.find(r#"<ul class="list" id="returns">"#) {
            None => 0,
            Some(from) => {
                let to = from + self.body[from..].find("</ul>").unwrap();
                self.body[from..to].matches("<li>").count()
            }
        }
    }
}

struct World {
    env: Env,
    clock: Arc<ManualClock>,
    app: shipment_update::App,
    links: shipment_update::Links,
}

/// The policy of these tests: 30 days, gift cards excluded, every resolution, a 10 % credit bonus
/// and a 5 % restocking fee.
fn policy() -> ReturnPolicy {
    ReturnPolicy {
        enabled: true,
        window_days: 30,
        excluded_skus: vec!["GIFT-50".into()],
        resolutions: Resolution::ALL.to_vec(),
        credit_bonus_percent: 10,
        restocking_fee_percent: 5,
        ..ReturnPolicy::default()
    }
}

impl World {
    async fn new(tune: impl FnOnce(&mut ReturnPolicy)) -> Self {
        let mut env = Env::new().await;
        let mut p = policy();
        tune(&mut p);
        env.merchant.settings.returns = p;
        env.save_merchant().await;
        let (clock, app) = env.app_at(NOW, &key());
        Self {
            env,
            clock,
            app,
            links: shipment_update::Links::new(BASE, key()),
        }
    }

    /// Places `SO-1001` (the example order plus an excluded gift card) for a customer speaking
    /// `locale`.
    async fn place(&self, locale: &str) {
        let mut o = self.env.order();
        o["id"] = ORDER.into();
        o["customer"]["locale"] = locale.into();
        o["items"].as_array_mut().unwrap().push(
            json!({"sku": "GIFT-50", "name": "Gift card", "quantity": 1, "unit_price": 5000}),
        );
        o["total"] = (o["total"].as_i64().unwrap() + 5000).into();
        let resp = order_placed::handle(
            &self.app,
            self.env.http_event(&o, Some(&self.env.api_key)),
            "t",
            deadline(),
        )
        .await
        .unwrap();
        assert_eq!(resp["statusCode"], 201, "{resp}");
    }

    async fn call(&self, event: Value) -> Value {
        shipment_update::handle(&self.app, event, "t", deadline())
            .await
            .unwrap()
    }

    fn token_for(&self, merchant: &str, order: &str) -> String {
        let url = self
            .links
            .return_page(merchant, order, t("2027-01-31T00:00:00Z"));
        url.strip_prefix(&format!("{BASE}/v1/return/"))
            .unwrap()
            .to_owned()
    }

    fn token(&self) -> String {
        self.token_for(self.env.merchant.id.as_str(), ORDER)
    }

    fn page_of(resp: &Value) -> Page {
        Page {
            status: resp["statusCode"].as_i64().unwrap(),
            content_type: resp["headers"]["content-type"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            body: resp["body"].as_str().unwrap_or_default().to_owned(),
        }
    }

    async fn open(&self, token: &str) -> Page {
        let resp = self
            .call(self.env.api_event(
                shipment_update::ROUTE_RETURN_PAGE,
                &format!("/v1/return/{token}"),
                &[("token", token)],
                None,
                None,
            ))
            .await;
        Self::page_of(&resp)
    }

    fn submit_event(&self, token: &str, form: &str) -> Value {
        let mut event = self.env.api_event(
            shipment_update::ROUTE_RETURN_SUBMIT,
            &format!("/v1/return/{token}"),
            &[("token", token)],
            Some(form),
            None,
        );
        event["headers"]["content-type"] = "application/x-www-form-urlencoded".into();
        event
    }

    async fn submit(&self, token: &str, form: &str) -> Page {
        let resp = self.call(self.submit_event(token, form)).await;
        Self::page_of(&resp)
    }

    /// Every item of the table by key.
    async fn items(&self) -> BTreeMap<(String, String), Item> {
        self.env
            .items()
            .await
            .into_iter()
            .map(|i| ((s(&i, "PK"), s(&i, "SK")), i))
            .collect()
    }

    /// The "return requested" emails the customer got.
    async fn requested_emails(&self) -> usize {
        self.env
            .emails_to(&self.env.customer_email())
            .await
            .iter()
            .filter(|e| {
                e.subject()
                    .is_some_and(|s| s.starts_with("We have received your return request"))
            })
            .count()
    }
}

#[tokio::test]
async fn opening_the_page_stores_nothing_and_shows_what_may_come_back_and_why_not() {
    let w = World::new(|_| {}).await;
    w.place("en-GB").await;
    let before = w.items().await;
    let token = w.token();

    let page = w.open(&token).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.content_type, "text/html; charset=utf-8");
    assert!(page.has(r#"<html lang="en""#));
    for id in [
        r#"id="return-form""#,
        r#"id="items""#,
        r#"id="confirm""#,
        r#"id="policy""#,
    ] {
        assert!(page.has(id), "{id}: {}", page.body);
    }
    assert!(!page.has(r#"id="error""#));
    assert!(
        page.has("Order SO-1001 of 20 November 2026"),
        "{}",
        page.body
    );
    // The tent (1) and the pegs (2) with their quantities; the reasons in English.
    assert!(page.has(r#"<select id="qty-0" name="qty-0"><option value="0" selected>0</option><option value="1">1</option></select>"#), "{}", page.body);
    assert!(page.has(r#"<option value="2">2</option></select>"#));
    assert!(page.has(r#"<option value="too_small">Too small</option>"#));
    // The gift card is excluded, and says so instead of offering a quantity.
    assert!(!page.has(r#"name="qty-2""#));
    assert!(
        page.has(r#"<p class="why" id="why-2">This item cannot be returned"#),
        "{}",
        page.body
    );
    // The resolutions with the fee and the bonus; an exchange per line for the same item.
    assert!(page.has(r#"value="refund" checked"#));
    assert!(page.has("A restocking fee of 5% is kept from refunds."));
    assert!(page.has("You get a 10% bonus on top."));
    assert!(page.has(r#"<option value="TENT-2P">The same item</option>"#));
    // The policy applied: 30 days from the order (not delivered yet), in the customer's zone.
    assert!(
        page.has("Returns accepted until 20 December 2026 (30 days from your order)."),
        "{}",
        page.body
    );
    // Every opening has its own one-time key, and nothing was stored.
    let again = w.open(&token).await;
    assert_ne!(page.form_key(), again.form_key());
    assert_eq!(before, w.items().await, "opening the page stores nothing");
    assert_eq!(page.returns_listed(), 0);
}

#[tokio::test]
async fn the_same_form_sent_twenty_times_or_sixteen_at_once_makes_one_return_and_one_email() {
    let hook = aftercare_tests::receiver::Receiver::start(vec![200]).await;
    let mut w = World::new(|_| {}).await;
    w.env.merchant.settings.webhook.url = Some(hook.url.clone());
    w.env.save_merchant().await;
    w.place("en-GB").await;
    let token = w.token();

    let form_key = w.open(&token).await.form_key();
    let form = format!(
        "key={form_key}&qty-0=1&reason-0=too_small&exchange-0=TENT-2P&qty-1=0&reason-1=&resolution=store_credit&comment=Too+tight"
    );
    let mut numbers = Vec::new();
    for _ in 0..20 {
        let done = w.submit(&token, &form).await;
        assert_eq!(done.status, 200, "{}", done.body);
        assert!(done.has("We have your return request"), "{}", done.body);
        numbers.push(done.return_number());
    }
    numbers.dedup();
    assert_eq!(numbers.len(), 1, "one return: {numbers:?}");
    let first = w.open(&token).await;
    assert_eq!(first.returns_listed(), 1, "{}", first.body);
    assert!(first.has(&numbers[0]));
    assert!(first.has(r#"<span class="status">Requested</span>"#));
    // The tent is coming back: it is no longer offered.
    assert!(first.has(r#"id="why-0">This item is already being returned."#));
    assert_eq!(w.requested_emails().await, 1);
    // The merchant's systems hear of the new return once.
    let events: Vec<Value> = hook
        .received()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(events.len(), 1, "{events:#?}");
    let event = &events[0];
    assert_eq!(event["type"], shipment_update::returns::EVENT_RETURN_STATUS);
    assert_eq!(event["data"]["order_id"], ORDER);
    assert_eq!(event["data"]["status"], "requested");
    assert_eq!(event["data"]["resolution"], "store_credit");
    assert_eq!(
        event["data"]["return_id"]
            .as_str()
            .unwrap()
            .to_ascii_uppercase(),
        numbers[0]
    );
    let event_id = event["data"]["event_id"].as_str().unwrap();
    assert_eq!(event_id.len(), 32);
    assert!(event_id.chars().all(|c| c.is_ascii_hexdigit()));

    // Another form (the pegs), sent 16 times at once.
    let form_key = first.form_key();
    let form = format!("key={form_key}&qty-1=2&reason-1=changed_mind&resolution=refund&comment=");
    let answers =
        futures_util::future::join_all((0..16).map(|_| w.call(w.submit_event(&token, &form))))
            .await;
    let mut numbers: Vec<String> = answers
        .iter()
        .map(World::page_of)
        .map(|p| {
            assert_eq!(p.status, 200, "{}", p.body);
            p.return_number()
        })
        .collect();
    numbers.dedup();
    assert_eq!(numbers.len(), 1, "one return: {numbers:?}");
    let after = w.open(&token).await;
    assert_eq!(after.returns_listed(), 2, "{}", after.body);
    assert_eq!(w.requested_emails().await, 2, "one email per return");
    assert_eq!(hook.received().len(), 2, "one event per return");
    // Nothing of the order is left to return.
    assert!(!after.has(r#"id="confirm""#));
    assert!(after.has("Nothing from this order can be returned online any more."));
}

#[tokio::test]
async fn a_refused_choice_shows_the_form_again_with_the_message_at_its_line() {
    let w = World::new(|_| {}).await;
    w.place("en-GB").await;
    let token = w.token();
    let form_key = w.open(&token).await.form_key();
    let before = w.items().await;

    // Three pegs of two.
    let page = w
        .submit(
            &token,
            &format!("key={form_key}&qty-1=3&reason-1=too_large&resolution=refund&comment=Bent+%3Cb%3Eflat%3C%2Fb%3E"),
        )
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(
        page.has(
            r#"<p class="field-error" id="error-1">You can return at most 2 of this item.</p>"#
        ),
        "{}",
        page.body
    );
    assert!(page.has(r#"<li class="line invalid" id="line-1">"#));
    // What was chosen is kept, with the same key.
    assert!(page.has(r#"<option value="too_large" selected>Too large</option>"#));
    assert!(
        page.has(">Bent &lt;b&gt;flat&lt;&#x2f;b&gt;</textarea>"),
        "{}",
        page.body
    );
    assert_eq!(page.form_key(), form_key);

    // The excluded gift card, posted anyway.
    let page = w
        .submit(
            &token,
            &format!("key={form_key}&qty-2=1&reason-2=too_large&resolution=refund"),
        )
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(
        page.has(r#"id="error-2">This item can no longer be returned."#),
        "{}",
        page.body
    );

    // No reason.
    let page = w
        .submit(&token, &format!("key={form_key}&qty-0=1&resolution=refund"))
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(page.has(r#"id="error-0">Please choose a reason for this item."#));

    // Nothing chosen.
    let page = w
        .submit(&token, &format!("key={form_key}&qty-0=0&resolution=refund"))
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(
        page.has("Choose at least one item to return."),
        "{}",
        page.body
    );

    // No key: not a form the page sent.
    let page = w
        .submit(&token, "qty-0=1&reason-0=too_small&resolution=refund")
        .await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.has(r#"id="error""#));

    assert_eq!(before, w.items().await, "nothing refused is stored");
    assert_eq!(w.requested_emails().await, 0);
}

#[tokio::test]
async fn tampered_other_purpose_expired_and_other_merchants_links_show_the_error_page() {
    let w = World::new(|_| {}).await;
    w.place("en-GB").await;
    let b = w.env.add_merchant("b").await;
    let before = w.items().await;
    let token = w.token();
    let form = "key=k1&qty-0=1&reason-0=too_small&resolution=refund";

    // Tampered: one character of the signature changed.
    let mut tampered = token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    for page in [w.open(&tampered).await, w.submit(&tampered, form).await] {
        assert_eq!(page.status, 400, "{}", page.body);
        assert!(page.has(r#"id="error""#));
        assert!(!page.has("return-form"));
        assert!(!page.has("Ridge 2-person tent"));
    }

    // A link of another purpose for the same order.
    let order_link = aftercare::token::sign(
        &key(),
        &aftercare::token::Claims {
            merchant: w.env.merchant.id.to_string(),
            purpose: aftercare::links::purpose::TRACK.into(),
            subject: ORDER.into(),
            value: None,
            expires: t("2027-01-31T00:00:00Z").as_second(),
        },
    );
    let page = w.open(&order_link).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.has(r#"id="error""#));

    // Expired.
    let old = w
        .links
        .return_page(w.env.merchant.id.as_str(), ORDER, t("2026-11-25T09:00:00Z"));
    let old = old.rsplit('/').next().unwrap();
    let page = w.open(old).await;
    assert_eq!(page.status, 410, "{}", page.body);
    assert!(page.has(r#"id="error""#));

    // Another merchant's link naming this order: that merchant has no such order.
    let theirs = w.token_for(b.merchant.id.as_str(), ORDER);
    for page in [w.open(&theirs).await, w.submit(&theirs, form).await] {
        assert_eq!(page.status, 404, "{}", page.body);
        assert!(page.has(r#"id="error""#));
        assert!(!page.has("Ridge 2-person tent"));
        assert!(!page.has("return-form"));
    }
    // An order that exists nowhere.
    let page = w
        .open(&w.token_for(w.env.merchant.id.as_str(), "SO-404"))
        .await;
    assert_eq!(page.status, 404, "{}", page.body);

    assert_eq!(before, w.items().await);
}

#[tokio::test]
async fn a_german_customer_reads_german_and_an_approved_return_shows_its_label() {
    let w = World::new(|p| {
        p.auto_approve = AutoApproval {
            enabled: true,
            max_value: None,
        };
        p.shipping = ReturnShipping {
            label_url: Some("https://labels.example/r.pdf".into()),
            instructions: None,
            address: Some("Acme Returns\nLagerstraße 12".into()),
        };
    })
    .await;
    w.place("de-DE").await;
    let token = w.token();
    let page = w.open(&token).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.has(r#"<html lang="de""#));
    assert!(
        page.has("Artikel aus Ihrer Bestellung zurücksenden"),
        "{}",
        page.body
    );
    assert!(page.has(r#"<option value="too_small">Zu klein</option>"#));
    assert!(
        page.has("Rücksendungen bis 20. Dezember 2026"),
        "{}",
        page.body
    );
    assert!(page.has("Dieser Artikel ist von der Rückgabe ausgeschlossen"));
    assert!(page.has("Rücksendung beantragen"));

    let done = w
        .submit(
            &token,
            &format!(
                "key={}&qty-0=1&reason-0=too_small&resolution=store_credit",
                page.form_key()
            ),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.has(r#"id="return-done""#));
    assert!(done.has("Ihre Rücksendung ist genehmigt"), "{}", done.body);
    assert!(done.has("labels.example&#x2f;r.pdf"), "{}", done.body);
    assert!(done.has("Lagerstraße 12"));
    assert!(done.has("Zu klein"));
}

#[tokio::test]
async fn the_delivered_email_and_the_tracking_page_link_the_portal() {
    let w = World::new(|_| {}).await;
    w.place("en-GB").await;
    let body = json!({"id": "sh-1", "carrier": "DHL", "tracking_number": "JD1",
        "items": [{"sku": "TENT-2P", "quantity": 1}, {"sku": "PEG-AL-10", "quantity": 2},
                  {"sku": "GIFT-50", "quantity": 1}]})
    .to_string();
    let resp = w
        .call(w.env.api_event(
            shipment_update::ROUTE_CREATE,
            &format!("/v1/orders/{ORDER}/shipments"),
            &[("orderId", ORDER)],
            Some(&body),
            Some(&w.env.api_key),
        ))
        .await;
    assert_eq!(resp["statusCode"], 201, "{resp}");
    let scan =
        json!({"status": "delivered", "occurred_at": "2026-11-24T12:00:00Z", "location": "Leeds"})
            .to_string();
    let resp = w
        .call(w.env.api_event(
            shipment_update::ROUTE_CHECKPOINT,
            "/v1/shipments/sh-1/events",
            &[("shipmentId", "sh-1")],
            Some(&scan),
            Some(&w.env.api_key),
        ))
        .await;
    assert_eq!(resp["statusCode"], 200, "{resp}");

    let texts: Vec<String> = w
        .env
        .emails_to(&w.env.customer_email())
        .await
        .iter()
        .map(|e| e.part("text/plain").unwrap())
        .collect();
    let text = texts
        .iter()
        .find(|t| t.contains("Start a return"))
        .unwrap_or_else(|| panic!("the delivered email offers a return: {texts:#?}"));
    let prefix = "Need to return something? Start a return: ";
    let at = text.find(prefix).unwrap() + prefix.len();
    let url = text[at..].split_whitespace().next().unwrap();
    let token = url
        .strip_prefix(&format!("{BASE}/v1/return/"))
        .unwrap_or_else(|| panic!("{url}"));
    w.clock.set(t("2026-11-26T10:00:00Z"));
    let page = w.open(token).await;
    assert_eq!(page.status, 200, "{}", page.body);
    // Counted from the delivery now.
    assert!(
        page.has("Returns accepted until 24 December 2026 (30 days from delivery)."),
        "{}",
        page.body
    );

    // The tracking page links it too, once delivered.
    let view = w
        .call(w.env.api_event(
            shipment_update::ROUTE_GET_ORDER,
            &format!("/v1/orders/{ORDER}"),
            &[("orderId", ORDER)],
            None,
            Some(&w.env.api_key),
        ))
        .await;
    let view: Value = serde_json::from_str(view["body"].as_str().unwrap()).unwrap();
    let track = view["shipments"][0]["tracking_page_url"].as_str().unwrap();
    let track = track.rsplit('/').next().unwrap();
    let resp = w
        .call(w.env.api_event(
            shipment_update::ROUTE_TRACK_PAGE,
            &format!("/v1/track/{track}"),
            &[("token", track)],
            None,
            None,
        ))
        .await;
    let tracking = World::page_of(&resp);
    assert_eq!(tracking.status, 200);
    assert!(tracking.has(r#"<p id="start-return">Need to return something? <a href="https:&#x2f;&#x2f;api.test&#x2f;v1&#x2f;return&#x2f;"#), "{}", tracking.body);
}

#[tokio::test]
async fn a_form_sent_again_with_other_choices_shows_the_return_it_made_and_a_fresh_form() {
    let w = World::new(|_| {}).await;
    w.place("en-GB").await;
    let token = w.token();
    let form_key = w.open(&token).await.form_key();
    let done = w
        .submit(
            &token,
            &format!("key={form_key}&qty-0=1&reason-0=too_small&resolution=refund"),
        )
        .await;
    let number = done.return_number();

    // Back in the browser, the customer changes the form and sends it again.
    let page = w
        .submit(
            &token,
            &format!("key={form_key}&qty-1=1&reason-1=damaged&resolution=refund"),
        )
        .await;
    assert_eq!(page.status, 409, "{}", page.body);
    assert!(page.has("This form was already sent."), "{}", page.body);
    assert_eq!(page.returns_listed(), 1);
    assert!(page.has(&number));
    assert_ne!(page.form_key(), form_key, "a fresh key for another return");
    // With it, the pegs make a second return.
    let second = w
        .submit(
            &token,
            &format!(
                "key={}&qty-1=1&reason-1=damaged&resolution=refund",
                page.form_key()
            ),
        )
        .await;
    assert_ne!(second.return_number(), number);
    assert_eq!(w.requested_emails().await, 2);
}
