//! The branded tracking page (`GET /v1/track/{token}`) through shipment-update's real handler
//! against moto: an in-transit, a delivered and a late shipment, in English and German, with the
//! customer's zone; the link in the shipping email and the order API; tampered, expired,
//! wrong-purpose and unknown tokens show the error page; opening the page counts a view on the
//! shipment and writes nothing else.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly

use aftercare::clock::ManualClock;
use aftercare::domain::catalogue::{ProductInput, Sku};
use aftercare::domain::ids::ShipmentId;
use aftercare::ports::catalogue::Catalogue as _;
use aftercare::ports::shipments::ShipmentBook as _;
use aftercare::token::{Claims, LinkSigner, SigningKey};
use aftercare_tests::{BASE, Env, Item, deadline, s};
use jiff::Timestamp;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

fn key() -> SigningKey {
    SigningKey::new(&[23u8; 32]).unwrap()
}

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

struct World {
    env: Env,
    clock: Arc<ManualClock>,
    app: shipment_update::App,
    links: shipment_update::Links,
}

/// A page answer: status, content type, body.
struct Page {
    status: i64,
    content_type: String,
    csp: String,
    body: String,
}

impl Page {
    fn has(&self, needle: &str) -> bool {
        self.body.contains(needle)
    }

    /// The body from `start` (an element's opening, e.g. `<ol class="timeline"`) to its end tag.
    fn section(&self, start: &str, end: &str) -> &str {
        let from = self
            .body
            .find(start)
            .unwrap_or_else(|| panic!("no {start}:\n{}", self.body));
        let to = from + self.body[from..].find(end).unwrap();
        &self.body[from..to]
    }
}

impl World {
    async fn new() -> Self {
        Self::build(|_| {}).await
    }

    /// A world whose merchant `tune` changes first (its branding, say).
    async fn build(tune: impl FnOnce(&mut aftercare::domain::Merchant)) -> Self {
        let mut env = Env::new().await;
        tune(&mut env.merchant);
        env.save_merchant().await;
        let (clock, app) = env.app_at("2026-11-20T10:00:00Z", &key());
        Self {
            env,
            clock,
            app,
            links: shipment_update::Links::new(BASE, key()),
        }
    }

    /// Places `SO-<n>` (the example order) for a customer speaking `locale` in `zone`.
    async fn place(&self, order: &str, locale: &str, zone: &str) {
        let mut o = self.env.order();
        o["id"] = order.into();
        o["customer"]["locale"] = locale.into();
        o["customer"]["time_zone"] = zone.into();
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

    async fn ship(&self, order: &str, id: &str, items: Value, promised: Option<&str>) {
        let mut body = json!({
            "id": id, "carrier": "DHL", "tracking_number": format!("JD{id}"),
            "tracking_url": format!("https://track.example/{id}"), "items": items,
        });
        if let Some(p) = promised {
            body["promised_date"] = p.into();
        }
        let resp = self
            .call(self.env.api_event(
                shipment_update::ROUTE_CREATE,
                &format!("/v1/orders/{order}/shipments"),
                &[("orderId", order)],
                Some(&body.to_string()),
                Some(&self.env.api_key),
            ))
            .await;
        assert_eq!(resp["statusCode"], 201, "{resp}");
    }

    async fn scan(&self, shipment: &str, status: &str, at: &str, location: &str) {
        let body = json!({"status": status, "occurred_at": at, "location": location}).to_string();
        let resp = self
            .call(self.env.api_event(
                shipment_update::ROUTE_CHECKPOINT,
                &format!("/v1/shipments/{shipment}/events"),
                &[("shipmentId", shipment)],
                Some(&body),
                Some(&self.env.api_key),
            ))
            .await;
        assert_eq!(resp["statusCode"], 200, "{resp}");
    }

    /// `GET /v1/orders/{order}` with the merchant's key.
    async fn order_view(&self, order: &str) -> Value {
        let resp = self
            .call(self.env.api_event(
                shipment_update::ROUTE_GET_ORDER,
                &format!("/v1/orders/{order}"),
                &[("orderId", order)],
                None,
                Some(&self.env.api_key),
            ))
            .await;
        assert_eq!(resp["statusCode"], 200, "{resp}");
        serde_json::from_str(resp["body"].as_str().unwrap()).unwrap()
    }

    /// The token of the shipment's tracking page, as `GET /v1/orders/{order}` links it.
    async fn token(&self, order: &str, shipment: &str) -> String {
        let view = self.order_view(order).await;
        let url = view["shipments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == shipment)
            .unwrap()["tracking_page_url"]
            .as_str()
            .unwrap()
            .to_owned();
        url.strip_prefix(&format!("{BASE}/v1/track/"))
            .unwrap()
            .to_owned()
    }

    async fn open(&self, token: &str) -> Page {
        let resp = self
            .call(self.env.api_event(
                shipment_update::ROUTE_TRACK_PAGE,
                &format!("/v1/track/{token}"),
                &[("token", token)],
                None,
                None,
            ))
            .await;
        Page {
            status: resp["statusCode"].as_i64().unwrap(),
            content_type: resp["headers"]["content-type"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            csp: resp["headers"]["content-security-policy"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            body: resp["body"].as_str().unwrap_or_default().to_owned(),
        }
    }

    async fn product(
        &self,
        sku: &str,
        name: &str,
        url: Option<&str>,
        tips: Value,
        related: &[&str],
    ) {
        let input: ProductInput = serde_json::from_value(json!({
            "name": name, "url": url, "price": 3900, "currency": "EUR",
            "tips": tips, "related": related,
        }))
        .unwrap();
        let product = input
            .validate(Sku::parse("sku", sku).unwrap(), Timestamp::now())
            .unwrap();
        self.env
            .store
            .put_product(&self.env.merchant.id, &product)
            .await
            .unwrap();
    }

    /// Every item of the table by key, with the shipment's view counter taken out: what opening
    /// a page may not change.
    async fn items_but_views(&self) -> BTreeMap<(String, String), Item> {
        self.env
            .items()
            .await
            .into_iter()
            .map(|mut i| {
                i.remove("views");
                ((s(&i, "PK"), s(&i, "SK")), i)
            })
            .collect()
    }

    async fn views(&self, shipment: &str) -> Option<String> {
        let pk = format!("M#{}#S#{shipment}", self.env.merchant.id);
        self.env
            .items()
            .await
            .into_iter()
            .find(|i| s(i, "PK") == pk && s(i, "SK") == "SHIPMENT")
            .unwrap()
            .get("views")
            .map(|v| v.as_n().unwrap().clone())
    }
}

fn items(tent: bool, pegs: bool) -> Value {
    let mut v = vec![];
    if tent {
        v.push(json!({"sku": "TENT-2P", "quantity": 1}));
    }
    if pegs {
        v.push(json!({"sku": "PEG-AL-10", "quantity": 2}));
    }
    Value::from(v)
}

#[tokio::test]
async fn an_in_transit_shipment_shows_its_progress_timeline_parcels_and_the_orders_other_parcel() {
    let w = World::new().await;
    w.place("SO-1", "en-GB", "Europe/London").await;
    w.ship("SO-1", "sh-a", items(true, false), Some("2026-11-24"))
        .await;
    w.ship("SO-1", "sh-b", items(false, true), None).await;
    w.scan("sh-a", "info_received", "2026-11-20T12:00:00Z", "Leeds")
        .await;
    w.scan(
        "sh-a",
        "in_transit",
        "2026-11-21T08:15:00Z",
        "Leipzig <hub>",
    )
    .await;
    w.clock.set(t("2026-11-21T10:00:00Z"));

    // The shipping email links the page, and keeps the carrier's link.
    let token = w.token("SO-1", "sh-a").await;
    let url = format!("{BASE}/v1/track/{token}");
    let shipped = w
        .env
        .emails_to(&w.env.customer_email())
        .await
        .into_iter()
        .find(|e| e.part("text/plain").unwrap().contains("JDsh-a"))
        .unwrap();
    let text = shipped.part("text/plain").unwrap();
    assert!(
        text.contains(&format!("Track your parcel: {url}")),
        "{text}"
    );
    assert!(text.contains("https://track.example/sh-a"), "{text}");
    // Both shipments of the order have their own link.
    let other = w.token("SO-1", "sh-b").await;
    assert_ne!(other, token);

    let page = w.open(&token).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.content_type, "text/html; charset=utf-8");
    assert!(page.has(r#"<html lang="en""#));
    assert!(page.has("<header") && page.has("<main") && page.has("<footer"));
    assert!(page.has("Your parcel is on its way"), "{}", page.body);
    // The progress bar: info received done, in transit current, the rest to come.
    let progress = page.section(r#"<ol class="steps""#, "</ol>");
    assert!(progress.contains(r#"aria-label="Delivery progress""#));
    assert!(
        progress.contains(
            r#"<li class="done"><span class="dot" aria-hidden="true"></span>Info received"#
        ),
        "{progress}"
    );
    assert!(progress.contains(r#"<li class="current" aria-current="step"><span class="dot" aria-hidden="true"></span>In transit"#), "{progress}");
    assert!(
        progress
            .contains(r#"<li class="todo"><span class="dot" aria-hidden="true"></span>Delivered"#),
        "{progress}"
    );
    assert_eq!(progress.matches("aria-current").count(), 1);
    // The timeline: newest first, in the customer's zone (London is on UTC in November),
    // escaped.
    let timeline = page.section(r#"<ol class="timeline""#, "</ol>");
    let transit = timeline.find("21 November 2026, 08:15").unwrap();
    let info = timeline.find("20 November 2026, 12:00").unwrap();
    assert!(transit < info, "{timeline}");
    assert!(timeline.contains("Leipzig &lt;hub&gt;"), "{timeline}");
    assert!(!page.has("Leipzig <hub>"));
    assert!(page.has("Europe&#x2f;London"), "the zone is named");
    // Expected date, carrier, the tracking number linking to the carrier, the parcel's items,
    // the order's other parcel with its status, the support card; not late.
    assert!(
        page.has("Expected delivery</dt><dd id=\"expected\">24 November 2026</dd>"),
        "{}",
        page.body
    );
    assert!(page.has(">DHL<"));
    assert!(
        page.has(
            r#"<a href="https:&#x2f;&#x2f;track.example&#x2f;sh-a" rel="noopener noreferrer""#
        ),
        "{}",
        page.body
    );
    assert!(
        page.section(r#"<ul class="list" id="items""#, "</ul>")
            .contains("1 × Ridge 2-person tent")
    );
    let others = page.section(r#"<ul class="list" id="others""#, "</ul>");
    assert!(
        others.contains("JDsh-b")
            && others.contains("Shipped")
            && others.contains("2 × Aluminium pegs (10)"),
        "{others}"
    );
    assert!(page.has(&format!("care@{}.shop.example", w.env.tag)));
    assert!(!page.has(r#"id="late""#));
    assert!(!page.has(r#"id="tips""#));
    // Self-contained: no script, no remote asset, nothing loaded from elsewhere.
    assert!(!page.has("<script") && !page.has("<link") && !page.has("<img"));
    assert!(page.csp.contains("default-src 'none'"));
}

#[tokio::test]
async fn a_delivered_shipment_shows_its_tips_and_related_products_in_german_and_the_customers_zone()
{
    let w = World::build(|m| {
        m.branding.logo_url = Some("https://cdn.shop.test/brand/logo.png".into());
    })
    .await;
    w.product(
        "TENT-2P",
        "Ridge tent",
        Some("https://shop.test/p/tent"),
        json!({"en": ["Pitch it once at home first."], "de": ["Bauen Sie es einmal zu Hause auf."]}),
        &["FOOTPRINT-2P", "PEG-AL-10", "NO-URL"],
    )
    .await;
    w.product(
        "FOOTPRINT-2P",
        "Ridge 2P footprint",
        Some("https://shop.test/p/footprint"),
        json!({}),
        &[],
    )
    .await;
    w.product("NO-URL", "Gift card", None, json!({}), &[]).await;
    w.place("SO-2", "de-DE", "Europe/Berlin").await;
    w.ship("SO-2", "sh-d", items(true, true), Some("2026-11-24"))
        .await;
    w.scan("sh-d", "in_transit", "2026-11-21T08:15:00Z", "Leipzig")
        .await;
    w.scan("sh-d", "out_for_delivery", "2026-11-23T06:00:00Z", "Berlin")
        .await;
    w.scan("sh-d", "delivered", "2026-11-23T13:40:00Z", "Berlin")
        .await;
    w.clock.set(t("2026-11-30T10:00:00Z"));

    let page = w.open(&w.token("SO-2", "sh-d").await).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.has(r#"<html lang="de""#));
    assert!(page.has("Ihr Paket wurde zugestellt"), "{}", page.body);
    let progress = page.section(r#"<ol class="steps""#, "</ol>");
    assert!(progress.contains(r#"<li class="current done" aria-current="step"><span class="dot" aria-hidden="true"></span>Zugestellt"#), "{progress}");
    assert_eq!(progress.matches(r#"class="done""#).count(), 3, "{progress}");
    // Berlin is UTC+1 in November.
    let timeline = page.section(r#"<ol class="timeline""#, "</ol>");
    assert!(
        timeline.find("23. November 2026, 14:40").unwrap()
            < timeline.find("21. November 2026, 09:15").unwrap()
    );
    assert!(timeline.contains("In Zustellung"));
    assert!(
        page.has("Zugestellt am</dt><dd>23. November 2026</dd>"),
        "{}",
        page.body
    );
    // The German tip of the tent; related: the footprint (not bought, with a URL), not the
    // pegs (bought) nor the product without a page.
    let tips = page.section(r#"<ul class="list" id="tips""#, "</ul>");
    assert!(
        tips.contains("Bauen Sie es einmal zu Hause auf.") && !tips.contains("Pitch it"),
        "{tips}"
    );
    let related = page.section(r#"<ul class="list" id="related""#, "</ul>");
    assert!(
        related.contains("Ridge 2P footprint") && related.contains("39,00"),
        "{related}"
    );
    assert!(
        !related.contains("Aluminium") && !related.contains("Gift card"),
        "{related}"
    );
    assert!(!page.has(r#"id="late""#), "a delivered parcel is not late");
    // The merchant's logo, the one remote resource, and the page's policy allows its origin only.
    assert!(
        page.has(
            r#"<img class="logo" src="https:&#x2f;&#x2f;cdn.shop.test&#x2f;brand&#x2f;logo.png""#
        ),
        "{}",
        page.body
    );
    assert_eq!(page.body.matches("<img").count(), 1);
    assert!(
        page.csp.contains("img-src 'self' https://cdn.shop.test;"),
        "{}",
        page.csp
    );
}

#[tokio::test]
async fn a_late_shipment_says_so_once_its_promised_date_has_passed() {
    let w = World::new().await;
    w.place("SO-3", "en", "Europe/London").await;
    w.ship("SO-3", "sh-l", items(true, true), Some("2026-11-22"))
        .await;
    w.scan("sh-l", "in_transit", "2026-11-21T08:15:00Z", "Leipzig")
        .await;
    let token = w.token("SO-3", "sh-l").await;

    // The promised day itself (in the merchant's zone) is not late yet.
    w.clock.set(t("2026-11-22T22:30:00Z"));
    let on_time = w.open(&token).await;
    assert_eq!(on_time.status, 200);
    assert!(!on_time.has(r#"id="late""#), "{}", on_time.body);

    w.clock.set(t("2026-11-24T09:00:00Z"));
    let late = w.open(&token).await;
    assert_eq!(late.status, 200);
    let notice = late.section(r#"<p class="alert" role="status" id="late">"#, "</p>");
    assert!(
        notice.contains("running late")
            && notice.contains("22 November 2026")
            && notice.contains("DHL"),
        "{notice}"
    );
    assert!(late.has("Your parcel is on its way"));

    // An exception is shown distinctly, beside the late notice.
    w.scan("sh-l", "exception", "2026-11-24T08:00:00Z", "Leipzig")
        .await;
    let problem = w.open(&token).await;
    assert!(problem.has("There is a problem with your delivery"));
    assert!(
        problem.has(r#"<p class="note" id="issue">The carrier reported a problem"#),
        "{}",
        problem.body
    );
    assert!(problem.has(r#"id="late""#));
}

#[tokio::test]
async fn tampered_expired_wrong_purpose_and_unknown_links_show_the_error_page_and_write_nothing() {
    let w = World::new().await;
    w.place("SO-4", "en", "Europe/London").await;
    w.ship("SO-4", "sh-e", items(true, true), None).await;
    let token = w.token("SO-4", "sh-e").await;
    let before = w.items_but_views().await;
    let error_page = |p: &Page, status: i64| {
        assert_eq!(p.status, status, "{}", p.body);
        assert_eq!(p.content_type, "text/html; charset=utf-8");
        assert!(p.has(r#"id="error""#), "{}", p.body);
        assert!(!p.has("JDsh-e"), "nothing of the shipment shows");
    };

    // Tampered: one character of the signature changed.
    let mut tampered = token.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    error_page(&w.open(&String::from_utf8(tampered).unwrap()).await, 400);
    error_page(&w.open("not-a-token").await, 400);

    // The right key and subject for another purpose.
    let signer = LinkSigner::new(BASE, key());
    let signed = |purpose: &str, merchant: &str, subject: &str| {
        signer
            .url(
                "/v1/track",
                &Claims {
                    merchant: merchant.into(),
                    purpose: purpose.into(),
                    subject: subject.into(),
                    value: None,
                    expires: t("2027-06-01T00:00:00Z").as_second(),
                },
            )
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned()
    };
    let m = w.env.merchant.id.to_string();
    error_page(&w.open(&signed("survey", &m, "sh-e")).await, 400);
    // Unknown shipment and unknown merchant: 404, the first in the merchant's look.
    let unknown = w.open(&signed("track", &m, "sh-nope")).await;
    error_page(&unknown, 404);
    assert!(unknown.has(&w.env.merchant.name));
    error_page(&w.open(&signed("track", "m-nobody", "sh-e")).await, 404);

    // Expired: 90 days after the shipment was created (and not delivered).
    w.clock.set(t("2027-02-18T09:59:59Z"));
    assert_eq!(w.open(&token).await.status, 200);
    w.clock.set(t("2027-02-18T10:00:00Z"));
    error_page(&w.open(&token).await, 410);

    // Nothing but the one valid opening's view count changed anything.
    assert_eq!(w.items_but_views().await, before);
    assert_eq!(w.views("sh-e").await.as_deref(), Some("1"));

    // An erased shipment (its partition deleted) is not found, and no counter brings it back.
    let record = w
        .env
        .store
        .shipment(&w.env.merchant.id, &ShipmentId::parse("s", "sh-e").unwrap())
        .await
        .unwrap()
        .unwrap();
    let fresh = w.links.tracking_page(&record);
    for item in w.env.items().await {
        if s(&item, "PK") == format!("M#{}#S#sh-e", w.env.merchant.id) {
            w.env
                .dynamodb()
                .delete_item()
                .table_name(&w.env.table)
                .key("PK", item["PK"].clone())
                .key("SK", item["SK"].clone())
                .send()
                .await
                .unwrap();
        }
    }
    w.clock.set(t("2026-11-25T10:00:00Z"));
    let erased = w.open(fresh.rsplit('/').next().unwrap()).await;
    error_page(&erased, 404);
    let pk = format!("M#{}#S#sh-e", w.env.merchant.id);
    assert!(w.env.items().await.iter().all(|i| s(i, "PK") != pk));
}

#[tokio::test]
async fn opening_the_page_twice_adds_two_views_and_writes_nothing_else() {
    let w = World::new().await;
    w.place("SO-5", "en", "Europe/London").await;
    w.ship("SO-5", "sh-v", items(true, true), Some("2026-11-24"))
        .await;
    w.scan("sh-v", "in_transit", "2026-11-21T08:15:00Z", "Leipzig")
        .await;
    let token = w.token("SO-5", "sh-v").await;
    let before = w.items_but_views().await;
    assert_eq!(w.views("sh-v").await, None);

    assert_eq!(w.open(&token).await.status, 200);
    assert_eq!(w.open(&token).await.status, 200);

    assert_eq!(w.views("sh-v").await.as_deref(), Some("2"));
    assert_eq!(w.items_but_views().await, before);
    // The page's reads did not disturb the shipment's state: the order API reads as before.
    let view = w.order_view("SO-5").await;
    assert_eq!(view["shipments"][0]["status"], "in_transit");
}
