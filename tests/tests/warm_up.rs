//! The optional init-time warm-up (`AFTERCARE_WARM_UP=on`): it reaches DynamoDB and SES without
//! reading or writing an item or sending anything, reports a misconfigured configuration set, and
//! a silent endpoint cannot hold init beyond its bound. Whether it pays is measured in the bench.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly

use aftercare::app::{App, WARM_UP_LIMIT, WarmUp};
use aftercare::clock::SystemClock;
use aftercare_tests::{Env, sdk_config, sent_emails};
use std::sync::Arc;
use std::time::Duration;

/// The bound the tests that expect an answer give the warm-up: moto on a loaded CI machine can
/// take longer than the deployed bound to answer a first call, and what those tests check is the
/// answer, not the bound (the silent-endpoint test checks that with a short one).
const ANSWERING: Duration = Duration::from_secs(60);

fn app(env: &Env, sdk: &aws_config::SdkConfig, warm_up: bool, set: Option<&str>) -> App {
    app_bounded(env, sdk, warm_up, set, ANSWERING)
}

fn app_bounded(
    env: &Env,
    sdk: &aws_config::SdkConfig,
    warm_up: bool,
    set: Option<&str>,
    limit: Duration,
) -> App {
    let mut config = env.config();
    config.warm_up = warm_up;
    config.warm_up_limit = limit;
    config.ses_configuration_set = set.map(str::to_owned);
    App::with_parts(
        config,
        aftercare::adapters::aws::dynamodb_client(sdk),
        aftercare::adapters::aws::ses_client(sdk),
        Arc::new(SystemClock),
    )
    .unwrap()
}

#[tokio::test]
async fn warm_up_reaches_both_services_and_changes_nothing() {
    let env = Env::new().await;
    let set = format!("aftercare-{}", env.tag);
    env.ses()
        .create_configuration_set()
        .configuration_set_name(&set)
        .send()
        .await
        .unwrap();
    let items = env.items().await;
    let sent = sent_emails(&env.endpoint).await.len();

    let outcome = app(&env, &env.sdk, true, Some(&set)).warm_up().await;
    assert_eq!(
        outcome,
        WarmUp {
            dynamodb: Some(Ok(())),
            ses: Some(Ok(())),
        }
    );
    assert_eq!(env.items().await, items, "the warm-up wrote an item");
    assert_eq!(sent_emails(&env.endpoint).await.len(), sent);

    // Without a configuration set there is nothing SES-scoped to ask: only the table is reached.
    let outcome = app(&env, &env.sdk, true, None).warm_up().await;
    assert_eq!(outcome.dynamodb, Some(Ok(())));
    assert_eq!(outcome.ses, None);
}

#[tokio::test]
async fn a_missing_configuration_set_is_reported_at_init() {
    let env = Env::new().await;
    let outcome = app(&env, &env.sdk, true, Some("no-such-set"))
        .warm_up()
        .await;
    assert_eq!(outcome.dynamodb, Some(Ok(())));
    let err = outcome.ses.unwrap().unwrap_err();
    assert!(err.contains("NotFound"), "{err}");
}

#[tokio::test]
async fn off_by_default_and_then_no_call_is_made() {
    let env = Env::new().await;
    // An endpoint that refuses connections: any call would come back as an error.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let sdk = sdk_config(&format!("http://{addr}")).await;
    assert!(!env.config().warm_up);
    assert_eq!(env.config().warm_up_limit, WARM_UP_LIMIT);
    assert_eq!(
        app(&env, &sdk, false, Some("set")).warm_up().await,
        WarmUp::default()
    );
    let on = app(&env, &sdk, true, Some("set")).warm_up().await;
    assert!(matches!(on.dynamodb, Some(Err(_))), "{on:?}");
    assert!(matches!(on.ses, Some(Err(_))), "{on:?}");
}

#[tokio::test]
async fn a_silent_endpoint_holds_init_no_longer_than_the_bound() {
    let env = Env::new().await;
    // Accepts connections (the kernel's backlog) and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sdk = sdk_config(&format!("http://{}", silent.local_addr().unwrap())).await;
    let limit = Duration::from_millis(300);
    let outcome = tokio::time::timeout(
        limit + Duration::from_secs(30),
        app_bounded(&env, &sdk, true, Some("set"), limit).warm_up(),
    )
    .await
    .expect("the warm-up outlived its bound");
    let expected = Some(Err(format!("no answer within {limit:?}")));
    assert_eq!(outcome.dynamodb, expected);
    assert_eq!(outcome.ses, expected);
    drop(silent);
}
