//! Fault injection with aws-smithy-mocks on real clients (unmatched calls pass through to moto):
//! SES throttling, server errors, rejections and timeouts; DynamoDB conflicts and throttling; dead
//! invocations and tight deadlines. Every test ends by counting the emails moto really recorded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly

use aftercare::clock::SystemClock;
use aftercare::usecases::send::Deadline;
use aftercare_tests::{Env, deadline, s};
use aws_config::retry::RetryConfig;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::CancellationReason;
use aws_sdk_dynamodb::types::error::{
    ProvisionedThroughputExceededException, TransactionCanceledException,
};
use aws_sdk_sesv2::operation::send_email::SendEmailError;
use aws_sdk_sesv2::operation::send_email::SendEmailOutput;
use aws_sdk_sesv2::types::error::{MessageRejected, TooManyRequestsException};
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, mock, mock_client};
use order_placed::App;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

fn passthrough(rules: &[&Rule]) -> MockResponseInterceptor {
    let mut i = MockResponseInterceptor::new()
        .rule_mode(RuleMode::MatchAny)
        .allow_passthrough();
    for r in rules {
        i = i.with_rule(r);
    }
    i
}

/// SES answered entirely by `rules` (nothing reaches moto), retries off as in production.
fn mocked_ses(rules: &[&Rule]) -> aws_sdk_sesv2::Client {
    mock_client!(aws_sdk_sesv2, RuleMode::Sequential, rules, |c| c
        .retry_config(RetryConfig::disabled()))
}

/// SES over moto, with `rules` replacing the *responses* of matching calls after moto handled them
/// (the request still arrives: "SES accepted it, but we never heard back").
fn lossy_ses(env: &Env, rules: &[&Rule]) -> aws_sdk_sesv2::Client {
    let conf = aws_sdk_sesv2::config::Builder::from(&env.sdk)
        .retry_config(RetryConfig::disabled())
        .interceptor(passthrough(rules))
        .build();
    aws_sdk_sesv2::Client::from_conf(conf)
}

/// DynamoDB over moto with `rules` replacing responses of matching calls after moto handled them.
fn lossy_dynamodb(env: &Env, rules: &[&Rule]) -> aws_sdk_dynamodb::Client {
    let conf = aws_sdk_dynamodb::config::Builder::from(&env.sdk)
        .interceptor(passthrough(rules))
        .build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}

fn app(env: &Env, dynamodb: aws_sdk_dynamodb::Client, ses: aws_sdk_sesv2::Client) -> App {
    App::with_parts(env.config(), dynamodb, ses, Arc::new(SystemClock)).unwrap()
}

fn real(env: &Env) -> App {
    app(env, env.dynamodb(), env.ses())
}

/// Another transaction touched the same items at the same time.
fn conflict() -> TransactWriteItemsError {
    TransactWriteItemsError::TransactionCanceledException(
        TransactionCanceledException::builder()
            .message("Transaction cancelled")
            .cancellation_reasons(
                CancellationReason::builder()
                    .code("TransactionConflict")
                    .build(),
            )
            .build(),
    )
}

fn throttled() -> SendEmailError {
    SendEmailError::TooManyRequestsException(
        TooManyRequestsException::builder()
            .message("Maximum sending rate exceeded.")
            .build(),
    )
}

fn accepted(id: &'static str) -> impl Fn() -> SendEmailOutput {
    move || SendEmailOutput::builder().message_id(id).build()
}

async fn post(app: &App, env: &Env, order: &Value, deadline: Deadline) -> (i64, Value) {
    let resp = order_placed::handle(
        app,
        env.http_event(order, Some(&env.api_key)),
        "fault",
        deadline,
    )
    .await
    .unwrap();
    aftercare_tests::answer(&resp)
}

async fn send_record(env: &Env) -> aftercare_tests::Item {
    env.items_in("C#cust-4711#SEND", "SEND#cust-4711#order_thanks#SO-1001#0")
        .await
        .remove(0)
}

#[tokio::test]
async fn ses_throttled_twice_then_accepting_sends_exactly_one_email() {
    let env = Env::new().await;
    let rule = mock!(aws_sdk_sesv2::Client::send_email)
        .sequence()
        .error(throttled)
        .times(2)
        .output(accepted("ses-msg-1"))
        .build();
    let app = app(&env, env.dynamodb(), mocked_ses(&[&rule]));
    let (status, body) = post(&app, &env, &env.order(), deadline()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["email"]["status"], "sent");
    assert_eq!(rule.num_calls(), 3, "two throttled calls, one accepted");
    let record = send_record(&env).await;
    assert_eq!(s(&record, "status"), "sent");
    assert_eq!(s(&record, "message_id"), "ses-msg-1");
    assert_eq!(aftercare_tests::num(&record, "attempts"), 1, "one claim");
    // Replays never call SES again.
    let (status, _) = post(&app, &env, &env.order(), deadline()).await;
    assert_eq!(status, 200);
    assert_eq!(rule.num_calls(), 3);
}

#[tokio::test]
async fn ses_throttled_throughout_releases_the_claim_and_a_retry_sends_once() {
    let env = Env::new().await;
    let rule = mock!(aws_sdk_sesv2::Client::send_email)
        .sequence()
        .error(throttled)
        .times(3)
        .build();
    let throttled_app = app(&env, env.dynamodb(), mocked_ses(&[&rule]));
    let (status, body) = post(&throttled_app, &env, &env.order(), deadline()).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "temporarily_unavailable");
    assert_eq!(
        rule.num_calls(),
        3,
        "bounded: three attempts within one invocation"
    );
    assert_eq!(s(&send_record(&env).await, "status"), "retry");
    assert_eq!(
        env.items_in("O#SO-1001", "ORDER").await.len(),
        1,
        "the order itself is kept"
    );

    // The client retries the same request once SES has recovered: a replay that sends once.
    let app = real(&env);
    let (status, body) = post(&app, &env, &env.order(), deadline()).await;
    assert_eq!(
        (status, body["email"]["status"].as_str()),
        (200, Some("sent")),
        "{body}"
    );
    let (status, _) = post(&app, &env, &env.order(), deadline()).await;
    assert_eq!(status, 200);
    assert_eq!(env.emails_to(&env.customer_email()).await.len(), 1);
    assert_eq!(env.items_in("C#cust-4711", "LEDGER#").await.len(), 1);
    assert_eq!(
        aftercare_tests::num(&send_record(&env).await, "attempts"),
        2,
        "re-claimed once"
    );
}

#[tokio::test]
async fn a_server_error_from_ses_is_parked_as_ambiguous_and_never_resent() {
    let env = Env::new().await;
    let rule = mock!(aws_sdk_sesv2::Client::send_email)
        .sequence()
        .http_status(500, None)
        .build();
    let (status, body) = post(
        &app(&env, env.dynamodb(), mocked_ses(&[&rule])),
        &env,
        &env.order(),
        deadline(),
    )
    .await;
    assert_eq!(
        (status, body["email"]["status"].as_str()),
        (201, Some("ambiguous"))
    );
    assert_eq!(s(&send_record(&env).await, "status"), "ambiguous");
    let app = real(&env);
    for _ in 0..3 {
        let (status, body) = post(&app, &env, &env.order(), deadline()).await;
        assert_eq!(
            (status, body["email"]["status"].as_str()),
            (200, Some("ambiguous"))
        );
    }
    assert_eq!(rule.num_calls(), 1);
    assert!(
        env.emails_to(&env.customer_email()).await.is_empty(),
        "no blind resend"
    );
}

#[tokio::test]
async fn ses_accepting_but_the_answer_getting_lost_never_sends_twice() {
    let env = Env::new().await;
    let lost = || {
        SendEmailError::generic(
            aws_sdk_sesv2::error::ErrorMetadata::builder()
                .code("InternalFailure")
                .build(),
        )
    };
    let rule = mock!(aws_sdk_sesv2::Client::send_email)
        .sequence()
        .error(lost)
        .build();
    let (status, body) = post(
        &app(&env, env.dynamodb(), lossy_ses(&env, &[&rule])),
        &env,
        &env.order(),
        deadline(),
    )
    .await;
    assert_eq!(
        (status, body["email"]["status"].as_str()),
        (201, Some("ambiguous"))
    );
    let app = real(&env);
    for _ in 0..5 {
        assert_eq!(post(&app, &env, &env.order(), deadline()).await.0, 200);
    }
    assert_eq!(
        env.emails_to(&env.customer_email()).await.len(),
        1,
        "SES got it once; we never sent again"
    );
    assert_eq!(
        s(&send_record(&env).await, "status"),
        "ambiguous",
        "left for reconciliation from SES events"
    );
}

#[tokio::test]
async fn a_rejected_email_is_recorded_as_failed_and_not_retried() {
    let env = Env::new().await;
    let rule = mock!(aws_sdk_sesv2::Client::send_email)
        .sequence()
        .error(|| {
            SendEmailError::MessageRejected(
                MessageRejected::builder()
                    .message("Email address is not verified.")
                    .build(),
            )
        })
        .build();
    let (status, body) = post(
        &app(&env, env.dynamodb(), mocked_ses(&[&rule])),
        &env,
        &env.order(),
        deadline(),
    )
    .await;
    assert_eq!(
        (status, body["email"]["status"].as_str()),
        (201, Some("failed"))
    );
    let record = send_record(&env).await;
    assert_eq!(s(&record, "status"), "failed");
    assert_eq!(s(&record, "last_error"), "MessageRejected");
    assert_eq!(
        post(&real(&env), &env, &env.order(), deadline()).await.0,
        200
    );
    assert_eq!(rule.num_calls(), 1);
    assert!(env.emails_to(&env.customer_email()).await.is_empty());
}

#[tokio::test]
async fn dynamodb_throttling_and_conflicts_are_retried_then_one_email() {
    let env = Env::new().await;
    let throttle = || {
        TransactWriteItemsError::ProvisionedThroughputExceededException(
            ProvisionedThroughputExceededException::builder()
                .message("slow down")
                .build(),
        )
    };
    // Entirely mocked DynamoDB: the order's write is throttled, then conflicts, then lands;
    // after the email, the count of its units sold lands at once.
    let landed = || {
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsOutput::builder()
            .build()
    };
    let write = mock!(aws_sdk_dynamodb::Client::transact_write_items)
        .sequence()
        .error(throttle)
        .error(conflict)
        .output(landed)
        .output(landed)
        .build();
    let record = mock!(aws_sdk_dynamodb::Client::update_item).then_output(|| {
        aws_sdk_dynamodb::operation::update_item::UpdateItemOutput::builder().build()
    });
    let ddb = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&write, &record]);
    let send = mock!(aws_sdk_sesv2::Client::send_email)
        .sequence()
        .output(accepted("ses-msg-7"))
        .build();
    let app = app(&env, ddb, mocked_ses(&[&send]));
    let input: aftercare::domain::OrderInput = serde_json::from_value(env.order()).unwrap();
    let placed = order_placed::place(&app, &env.merchant, input, deadline())
        .await
        .unwrap();
    assert!(placed.created);
    assert_eq!(
        placed.outcome,
        aftercare::usecases::send::SendOutcome::Sent {
            message_id: "ses-msg-7".into()
        }
    );
    assert_eq!(
        write.num_calls(),
        4,
        "three tries of the order's write, one count"
    );
    assert_eq!(send.num_calls(), 1);
    assert_eq!(record.num_calls(), 1, "the message id is recorded once");
}

#[tokio::test]
async fn a_lost_write_response_is_recognised_as_our_own_write() {
    let env = Env::new().await;
    // The transaction commits in moto, but the answer is replaced by a conflict; the retry meets
    // our own items. The claim token tells us we hold the claim, so we still send, once.
    let rule = mock!(aws_sdk_dynamodb::Client::transact_write_items)
        .sequence()
        .error(conflict)
        .build();
    let app = app(&env, lossy_dynamodb(&env, &[&rule]), env.ses());
    let (status, body) = post(&app, &env, &env.order(), deadline()).await;
    assert_eq!(
        (status, body["email"]["status"].as_str()),
        (201, Some("sent")),
        "{body}"
    );
    assert_eq!(rule.num_calls(), 1);
    assert_eq!(env.emails_to(&env.customer_email()).await.len(), 1);
    assert_eq!(env.items_in("C#cust-4711", "LEDGER#").await.len(), 1);
}

#[tokio::test]
async fn a_conditional_failure_after_a_conflict_means_replay() {
    let env = Env::new().await;
    assert_eq!(
        post(&real(&env), &env, &env.order(), deadline()).await.0,
        201
    );
    let rule = mock!(aws_sdk_dynamodb::Client::transact_write_items)
        .sequence()
        .error(conflict)
        .build();
    let app = app(&env, lossy_dynamodb(&env, &[&rule]), env.ses());
    let (status, body) = post(&app, &env, &env.order(), deadline()).await;
    assert_eq!(
        (status, body["email"]["status"].as_str()),
        (200, Some("sent"))
    );
    assert_eq!(env.emails_to(&env.customer_email()).await.len(), 1);
}

#[tokio::test]
async fn no_send_is_started_that_cannot_finish_before_the_deadline() {
    let env = Env::new().await;
    let app = real(&env);
    let (status, _) = post(
        &app,
        &env,
        &env.order(),
        Deadline::after(Duration::from_millis(1500)),
    )
    .await;
    assert_eq!(status, 503);
    assert_eq!(s(&send_record(&env).await, "status"), "retry");
    assert!(env.emails_to(&env.customer_email()).await.is_empty());
    let (status, body) = post(&app, &env, &env.order(), deadline()).await;
    assert_eq!(
        (status, body["email"]["status"].as_str()),
        (200, Some("sent"))
    );
    assert_eq!(env.emails_to(&env.customer_email()).await.len(), 1);
}

/// An invocation that stored the order and its claim, then died before recording the send.
async fn die_after_claim(env: &Env, lease_until: jiff::Timestamp) {
    use aftercare::adapters::store::orders::{NewOrder, OrderRecord};
    use aftercare::domain::send::{EmailKind, SendIdentity};
    use aftercare::domain::validation::from_value;
    use aftercare::ports::OrderBook;
    let order = from_value::<aftercare::domain::OrderInput>(env.order())
        .unwrap()
        .validate()
        .unwrap();
    let now = jiff::Timestamp::now();
    let record = OrderRecord {
        merchant_id: env.merchant.id.clone(),
        content_hash: order.content_hash(),
        points_earned: 0,
        tier: None,
        referred_by: None,
        order,
        received_at: now,
    };
    let c = &record.order.customer;
    let key = SendIdentity::new(
        &env.merchant.id,
        &c.id,
        EmailKind::OrderThanks,
        "SO-1001",
        0,
    );
    let claim = key.claim(c.recipient(), now, lease_until);
    let new = NewOrder {
        record: &record,
        ledger: None,
        expiry: None,
        referral_code: None,
        claim: Some((&key, &claim)),
        send_expires_at: now.as_second() + 3600,
        retention_due: None,
        now,
    };
    env.store.place_order(&new).await.unwrap();
}

#[tokio::test]
async fn a_claim_left_by_a_dead_invocation_is_not_resent_while_ses_may_still_speak() {
    let env = Env::new().await;
    let app = real(&env);
    // Lease still running: someone may be sending right now.
    die_after_claim(
        &env,
        jiff::Timestamp::now() + jiff::SignedDuration::from_secs(600),
    )
    .await;
    let (status, body) = post(&app, &env, &env.order(), deadline()).await;
    assert_eq!(
        (status, body["email"]["status"].as_str()),
        (200, Some("in_progress"))
    );
    assert_eq!(s(&send_record(&env).await, "status"), "in_progress");

    // Lease run out: the holder may have reached SES; parked as ambiguous, not resent.
    let env = Env::new().await;
    let app = real(&env);
    die_after_claim(
        &env,
        jiff::Timestamp::now() - jiff::SignedDuration::from_secs(1),
    )
    .await;
    let (status, body) = post(&app, &env, &env.order(), deadline()).await;
    assert_eq!(
        (status, body["email"]["status"].as_str()),
        (200, Some("ambiguous"))
    );
    assert_eq!(s(&send_record(&env).await, "status"), "ambiguous");
    assert!(env.emails_to(&env.customer_email()).await.is_empty());
}

#[tokio::test]
async fn the_sdk_never_retries_send_email_by_itself() {
    // A server that answers every request with a retryable 503 and counts them.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let c = Arc::clone(&count);
    let server = tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let c = Arc::clone(&c);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let mut seen = Vec::new();
                while let Ok(n) = sock.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&seen[..end]).to_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| {
                                l.strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if seen.len() >= end + 4 + len {
                            c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            let body = r#"{"message":"Service Unavailable"}"#;
                            let resp = format!(
                                "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nx-amzn-errortype: ServiceUnavailable\r\ncontent-length: {}\r\n\r\n{body}",
                                body.len()
                            );
                            let _ = sock.write_all(resp.as_bytes()).await;
                            seen.clear();
                        }
                    }
                }
            });
        }
    });
    let sdk = aftercare_tests::sdk_config(&format!("http://{addr}")).await;
    let mailer =
        aftercare::adapters::mail::SesMailer::new(aftercare::adapters::aws::ses_client(&sdk), None);
    let env_merchant = {
        let input: aftercare::domain::merchant::MerchantInput =
            serde_json::from_value(aftercare_tests::example("merchant.json")).unwrap();
        input.validate().unwrap()
    };
    let email = aftercare::adapters::mail::OutgoingEmail::compose(
        &env_merchant,
        aftercare::adapters::mail::Mailbox::new(
            None,
            aftercare::domain::EmailAddress::parse("to", "x@example.com").unwrap(),
        ),
        aftercare::adapters::mail::EmailKind::OrderThanks,
        aftercare::adapters::mail::Rendered {
            subject: "s".into(),
            html: "<p>h</p>".into(),
            text: "t".into(),
        },
        "SEND#x",
        None,
    );
    let result = mailer.send(&email, jiff::Timestamp::now()).await;
    assert!(
        matches!(
            result,
            Err(aftercare::adapters::mail::SendFailure::NotSentRetryable { .. })
        ),
        "{result:?}"
    );
    assert_eq!(
        count.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "exactly one HTTP request: SDK retries are off"
    );
    server.abort();
}

/// Units of `sku` counted sold for this test's merchant, every day and shard together.
async fn units_sold(env: &Env, sku: &str) -> u64 {
    env.items_in(&format!("SOLD#{sku}"), "")
        .await
        .iter()
        .map(|i| i["units"].as_n().unwrap().parse::<u64>().unwrap())
        .sum()
}

#[tokio::test]
async fn a_count_of_units_sold_whose_answers_are_lost_holds_up_nothing_and_counts_once() {
    let env = Env::new().await;
    // Every answer to the count's write is lost: moto applies the first try and refuses the
    // next two (the order's mark has moved), and each answer comes back as a conflict. After
    // three tries the delivery answers "busy"; the order and its email are done by then.
    let rule = mock!(aws_sdk_dynamodb::Client::transact_write_items)
        .match_requests(|r| {
            r.transact_items().iter().any(|i| {
                i.update()
                    .and_then(|u| u.key().get("PK"))
                    .and_then(|pk| pk.as_s().ok())
                    .is_some_and(|pk| pk.contains("#SOLD#"))
            })
        })
        .sequence()
        .error(conflict)
        .times(3)
        .build();
    let app = app(&env, lossy_dynamodb(&env, &[&rule]), env.ses());
    let (status, body) = post(&app, &env, &env.order(), deadline()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("temporarily_unavailable")),
        "{body}"
    );
    assert_eq!(rule.num_calls(), 3, "the count's bounded retries");
    assert_eq!(env.emails_to(&env.customer_email()).await.len(), 1);
    assert_eq!(
        (
            units_sold(&env, "TENT-2P").await,
            units_sold(&env, "PEG-AL-10").await
        ),
        (1, 2),
        "the first try's write, once"
    );
    // The redelivery finds the order, its email and its count done: nothing more.
    let (status, body) = post(&real(&env), &env, &env.order(), deadline()).await;
    assert_eq!(
        (status, body["email"]["status"].as_str()),
        (200, Some("sent"))
    );
    assert_eq!(env.emails_to(&env.customer_email()).await.len(), 1);
    assert_eq!(
        (
            units_sold(&env, "TENT-2P").await,
            units_sold(&env, "PEG-AL-10").await
        ),
        (1, 2)
    );
}
