//! Load against moto over the real SDK: a burst of `Order Placed` events (1,000 in the test
//! command, a tenth of them delivered twice, side by side, 64 at a time) sends each thank-you once,
//! stores each order once and awards each order's points once; and one merchant's backlog in a
//! sweep does not delay the others' emails (merchants take turns, and a per-merchant quota holds
//! the excess for the next run).
//!
//! The burst's properties (no loss, no duplicate under concurrent duplicates) do not depend on its
//! size once it keeps 64 deliveries in flight; `bench/scale_tests.py` runs it with 10,000 orders and
//! records the figure in BENCHMARKS.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly

use aftercare::clock::ManualClock;
use aftercare::domain::followup::FollowUpKind;
use aftercare::domain::{Merchant, OrderId};
use aftercare::ports::shipments::ShipmentBook as _;
use aftercare::token::SigningKey;
use aftercare_tests::{
    BASE, Env, deadline, long_deadline, s, scaled, sent_emails_matching, sent_envelopes_matching,
};
use futures_util::StreamExt;
use jiff::Timestamp;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_orders_sends_each_email_once_and_loses_none() {
    let env = Env::new().await;
    let app = order_placed::App::with_parts(
        env.config(),
        env.dynamodb(),
        env.ses(),
        Arc::new(aftercare::clock::SystemClock),
    )
    .unwrap();
    let n = scaled(1_000, 10_000);
    let mut deliveries = Vec::with_capacity(n + n / 10);
    for i in 0..n {
        let mut order = env.order();
        order["id"] = format!("BURST-{i}").into();
        order["customer"]["id"] = format!("c-burst-{i}").into();
        order["customer"]["email"] = format!("burst.{i}.{}@example.com", env.tag).into();
        let event = env.order_event(&order);
        if i % 10 == 0 {
            // EventBridge delivering the same event twice, at the same moment.
            deliveries.push(event.clone());
        }
        deliveries.push(event);
    }
    let total = deliveries.len();
    let app = &app;
    let failures: Vec<String> = futures_util::stream::iter(deliveries)
        .map(|event| async move {
            order_placed::handle(app, event, "burst", deadline())
                .await
                .err()
                .map(|e| format!("{e:?}"))
        })
        .buffer_unordered(64)
        .filter_map(|e| async move { e })
        .collect()
        .await;
    assert!(
        failures.is_empty(),
        "{} of {total} deliveries failed, e.g. {:?}",
        failures.len(),
        failures.first()
    );

    // Every customer got exactly one email: none lost, none twice.
    let sent = sent_envelopes_matching(&env.endpoint, &format!(".{}@example.com", env.tag)).await;
    let mut per_recipient: HashMap<String, usize> = HashMap::new();
    for email in &sent {
        // The first destination is the envelope recipient (moto adds the To header's form).
        *per_recipient
            .entry(email.destinations[0].clone())
            .or_default() += 1;
    }
    assert_eq!(per_recipient.len(), n, "customers emailed");
    let twice: Vec<_> = per_recipient.iter().filter(|(_, c)| **c != 1).collect();
    assert!(twice.is_empty(), "emailed more than once: {twice:?}");
    assert_eq!(sent.len(), n);

    // Each order stored once, each order's points awarded once, each send recorded once.
    let items = env.items().await;
    let m = &env.merchant.id;
    let count = |f: &dyn Fn(&str, &str) -> bool| {
        items.iter().filter(|i| f(&s(i, "PK"), &s(i, "SK"))).count()
    };
    assert_eq!(
        count(&|pk, sk| pk.starts_with(&format!("M#{m}#O#BURST-")) && sk == "ORDER"),
        n,
        "orders"
    );
    assert_eq!(
        count(&|pk, sk| pk.starts_with(&format!("M#{m}#C#c-burst-")) && sk.starts_with("LEDGER#")),
        n,
        "ledger entries"
    );
    assert_eq!(
        count(&|pk, sk| pk.ends_with("#SEND") && sk.starts_with("SEND#c-burst-")),
        n,
        "send records"
    );
}

fn key() -> SigningKey {
    SigningKey::new(&[42u8; 32]).unwrap()
}

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// Places `count` orders for `merchant` and anchors each journey at delivery on `delivered`.
async fn delivered_orders(
    env: &Env,
    app: &order_placed::App,
    merchant: &Merchant,
    name: &str,
    count: usize,
    delivered: &str,
) {
    for i in 0..count {
        let mut order = env.order();
        order["id"] = format!("{name}-{i}").into();
        order["customer"]["id"] = format!("c-{name}-{i}").into();
        order["customer"]["email"] = format!("{name}.{i}.{}@example.com", env.tag).into();
        order["customer"]["time_zone"] = "Europe/London".into();
        let mut event = env.order_event(&order);
        event["detail"]["merchant_id"] = merchant.id.as_str().into();
        let out: Value = order_placed::handle(app, event, "t", long_deadline())
            .await
            .unwrap();
        assert_ne!(out["outcome"], "failed", "{out}");
        let stored = env
            .store
            .get_order(
                &merchant.id,
                &OrderId::parse("o", &format!("{name}-{i}")).unwrap(),
            )
            .await
            .unwrap()
            .unwrap();
        let at = t(delivered);
        let schedule = merchant.settings.journey.schedule(at);
        assert!(
            env.store
                .anchor_journey(
                    &stored,
                    at,
                    aftercare::domain::followup::AnchorReason::Delivered,
                    &schedule,
                    at
                )
                .await
                .unwrap()
        );
    }
}

#[tokio::test]
async fn one_noisy_merchant_does_not_delay_the_others() {
    let env = Env::new().await;
    let quiet_a = env.add_merchant("quiet-a").await.merchant;
    let quiet_b = env.add_merchant("quiet-b").await.merchant;
    let clock = Arc::new(ManualClock::new(t("2026-11-20T10:00:00Z")));
    let orders =
        order_placed::App::with_parts(env.config(), env.dynamodb(), env.ses(), clock.clone())
            .unwrap();
    let delivered = "2026-11-20T10:00:00Z";
    delivered_orders(&env, &orders, &env.merchant, "noisy", 12, delivered).await;
    delivered_orders(&env, &orders, &quiet_a, "quieta", 2, delivered).await;
    delivered_orders(&env, &orders, &quiet_b, "quietb", 2, delivered).await;

    let mut config = env.config().with_signing_key(key());
    config.public_base_url = Some(BASE.into());
    config.ses_max_send_rate = 1000;
    config.sweep_concurrency = 1; // sends in the sweep's order
    config.sweep_merchant_quota = Some(5);
    let sweeper =
        survey_sender::App::with_parts(config, env.dynamodb(), env.ses(), clock.clone()).unwrap();
    let links = survey_sender::Links::new(BASE, key());
    // Day 3 after delivery: each order's usage tips are due, nothing else.
    clock.set(t("2026-11-23T14:00:00Z"));
    // A Lambda's longest budget: a sweep near its deadline rightly leaves work due, which is not
    // what this test is about.
    let sweep = || async {
        survey_sender::sweep(&sweeper, &links, long_deadline())
            .await
            .unwrap()
    };
    let surveys = || async {
        sent_emails_matching(&env.endpoint, &format!(".{}@example.com", env.tag))
            .await
            .into_iter()
            .filter(|e| {
                e.header("X-Aftercare-Kind").as_deref() == Some(FollowUpKind::UsageTips.as_str())
            })
            .collect::<Vec<_>>()
    };

    let first = sweep().await;
    assert_eq!((first.due, first.sent), (16, 9), "{first:?}");
    assert_eq!(first.left_for_next_run, 7, "{first:?}");
    let sent = surveys().await;
    let merchant_of = |e: &aftercare_tests::SentEmail| {
        e.destinations[0]
            .split('.')
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    // The quiet merchants' customers are all served in the first run, each merchant's first
    // email before any merchant's second.
    let order: Vec<String> = sent.iter().map(merchant_of).collect();
    let mut firsts = order[..3].to_vec();
    firsts.sort();
    assert_eq!(firsts, ["noisy", "quieta", "quietb"], "{order:?}");
    for quiet in ["quieta", "quietb"] {
        assert_eq!(order.iter().filter(|m| *m == quiet).count(), 2, "{order:?}");
    }
    assert_eq!(order.iter().filter(|m| *m == "noisy").count(), 5);

    // The noisy merchant's excess goes out over the next runs, five at a time, none twice.
    let second = sweep().await;
    assert_eq!(
        (second.sent, second.left_for_next_run),
        (5, 2),
        "{second:?}"
    );
    let third = sweep().await;
    assert_eq!((third.sent, third.left_for_next_run), (2, 0), "{third:?}");
    let fourth = sweep().await;
    assert_eq!((fourth.due, fourth.sent), (0, 0), "{fourth:?}");
    let sent = surveys().await;
    let mut recipients: Vec<&String> = sent.iter().map(|e| &e.destinations[0]).collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!((sent.len(), recipients.len()), (16, 16));
}
