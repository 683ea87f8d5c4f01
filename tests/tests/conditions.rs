//! The store's conditions that no scenario reaches on its own: each test here writes what its
//! condition exists to refuse and asserts it was refused. Every one is the guarding test of a row
//! of `tests/conditions.tsv`, and fails under that row's mutation (`scripts/mutate-conditions`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly

use aftercare::domain::loyalty::{LedgerEntry, LedgerKind, Posting, balance};
use aftercare::domain::send::{
    ClaimResult, EmailKind, Parked, Reclaim, SendIdentity, SendRecord, SendStatus,
};
use aftercare::domain::{CustomerId, EmailAddress};
use aftercare::ports::SendLedger;
use aftercare::ports::loyalty::LoyaltyLedger;
use aftercare_tests::Env;
use jiff::{SignedDuration, Timestamp};

fn adjustment(source: &str, points: i64, at: Timestamp) -> LedgerEntry {
    LedgerEntry {
        kind: LedgerKind::Adjust,
        points,
        source: source.to_owned(),
        created_at: at,
        available_at: None,
        against: None,
        reason: Some("goodwill".to_owned()),
        spend: None,
    }
}

/// `loyalty.entry_source_new`. The use-cases look for the source in what they read before they
/// post, but the ledger itself holds one entry per source: a caller that posts a source the
/// ledger already has, on its current version, gets `Duplicate` and the points are not awarded
/// again (neither on the ledger nor in the cached balance).
#[tokio::test]
async fn the_ledger_takes_one_entry_per_source_even_from_a_caller_that_did_not_look() {
    let env = Env::new().await;
    let m = &env.merchant.id;
    let c = CustomerId::parse("customer", "ledger-once").unwrap();
    let now = Timestamp::now();
    let entry = adjustment("adjust:k-1", 50, now);

    let empty = env.store.ledger(m, &c).await.unwrap();
    let first = env.store.post(m, &c, &empty, &entry, now, None).await;
    let Ok(Posting::Done(after_first)) = first else {
        panic!("the first posting: {first:?}");
    };
    assert_eq!(after_first.available, 50);

    let current = env.store.ledger(m, &c).await.unwrap();
    let again = env.store.post(m, &c, &current, &entry, now, None).await;
    assert_eq!(again.unwrap(), Posting::Duplicate);

    let end = env.store.ledger(m, &c).await.unwrap();
    assert_eq!(end.version, current.version, "the summary did not move");
    assert_eq!(end.entries, current.entries);
    assert_eq!(balance(&end.entries, now).available, 50);
}

/// `apikeys.key_new`. A key record is written once: another record under an existing key id (a
/// second digest) is refused, and the key keeps answering to its own secret only.
#[tokio::test]
async fn a_key_id_is_stored_once_and_keeps_its_own_digest() {
    use aftercare::adapters::store::StoreError;
    use aftercare::domain::apikey::{self, ApiKeyRecord, KeyStatus};

    let env = Env::new().await;
    let first = apikey::issue().unwrap();
    let record = ApiKeyRecord {
        key_id: first.key_id.clone(),
        merchant_id: env.merchant.id.clone(),
        status: KeyStatus::Active,
        created_at: Timestamp::now(),
        revoked_at: None,
        label: Some("first".into()),
    };
    env.store.put_api_key(&record, &first.hash).await.unwrap();

    let other = apikey::issue().unwrap();
    let again = env.store.put_api_key(&record, &other.hash).await;
    assert!(
        matches!(again, Err(StoreError::ConditionFailed)),
        "{again:?}"
    );
    let found = env.store.find_api_key(&first.hash).await.unwrap();
    assert_eq!(found.map(|r| r.key_id), Some(first.key_id));
    assert!(env.store.find_api_key(&other.hash).await.unwrap().is_none());
}

/// The thank-you email of order `o-1` to `ann@example.com`, and a claim on it held with `token`
/// until `lease_until`.
fn thanks(env: &Env) -> SendIdentity {
    let c = CustomerId::parse("customer", "ann").unwrap();
    SendIdentity::new(&env.merchant.id, &c, EmailKind::OrderThanks, "o-1", 0)
}

fn claim(token: &str, lease_until: Timestamp, now: Timestamp) -> SendRecord {
    SendRecord {
        kind: EmailKind::OrderThanks.as_str().to_owned(),
        subject: "o-1".to_owned(),
        step: 0,
        customer_id: "ann".to_owned(),
        recipient: "ann@example.com".to_owned(),
        status: SendStatus::InProgress,
        claim_token: token.to_owned(),
        lease_until_ms: lease_until.as_millisecond(),
        attempts: 1,
        message_id: None,
        sent_at: None,
        last_error: None,
        created_at: now,
        resolution: None,
        resolved_at: None,
        parked_message: None,
    }
}

fn expires() -> i64 {
    Timestamp::now().as_second() + 86_400
}

async fn stored(env: &Env, id: &SendIdentity) -> SendRecord {
    env.store
        .get_send(id)
        .await
        .unwrap()
        .expect("the send record")
}

async fn suppress_ann(env: &Env) {
    let ann = EmailAddress::parse("email", "ann@example.com").unwrap();
    env.store
        .put_suppression(&env.merchant.id, &ann, "complaint", Timestamp::now())
        .await
        .unwrap();
}

/// `claims.claim_new`. A second claim on one email (another delivery, another sweep) finds the
/// first holder's record and changes nothing: one email.
#[tokio::test]
async fn a_second_claim_on_one_email_is_taken_and_the_first_holder_keeps_it() {
    let env = Env::new().await;
    let (id, now) = (thanks(&env), Timestamp::now());
    let lease = now + SignedDuration::from_mins(5);
    let first = env
        .store
        .claim_send(&id, &claim("a", lease, now), expires())
        .await;
    assert!(matches!(first, Ok(ClaimResult::Claimed(_))), "{first:?}");
    let second = env
        .store
        .claim_send(&id, &claim("b", lease, now), expires())
        .await;
    let Ok(ClaimResult::Taken(theirs)) = second else {
        panic!("the second claim: {second:?}");
    };
    assert_eq!(theirs.claim_token, "a");
    assert_eq!(stored(&env, &id).await.claim_token, "a");
}

/// `claims.suppression_clear`. A claim for a suppressed recipient is written as `suppressed`
/// and is not ours: nothing may be sent.
#[tokio::test]
async fn a_claim_for_a_suppressed_recipient_is_recorded_suppressed() {
    let env = Env::new().await;
    suppress_ann(&env).await;
    let (id, now) = (thanks(&env), Timestamp::now());
    let lease = now + SignedDuration::from_mins(5);
    let result = env
        .store
        .claim_send(&id, &claim("a", lease, now), expires())
        .await;
    assert!(matches!(result, Ok(ClaimResult::Suppressed)), "{result:?}");
    assert_eq!(stored(&env, &id).await.status, SendStatus::Suppressed);
}

/// `claims.suppression_held`. The suppression lifted by another writer between the two attempts
/// of a guarded claim (the first refused by the suppression, the second to record the claim
/// `suppressed`): the claim is not recorded suppressed, the caller is told to try again, and the
/// next delivery claims the email, which may now be sent.
#[tokio::test]
async fn a_suppression_lifted_between_the_two_attempts_of_a_claim_is_not_recorded_suppressed() {
    aftercare_tests::mutate::delete_before("claims.suppression_held");
    let env = Env::new().await;
    suppress_ann(&env).await;
    let (id, now) = (thanks(&env), Timestamp::now());
    let lease = now + SignedDuration::from_mins(5);
    let result = env
        .store
        .claim_send(&id, &claim("a", lease, now), expires())
        .await;
    assert!(
        matches!(
            result,
            Err(aftercare::adapters::store::StoreError::Transient { .. })
        ),
        "{result:?}"
    );
    assert_eq!(env.store.get_send(&id).await.unwrap(), None);
    let again = env
        .store
        .claim_send(&id, &claim("b", lease, now), expires())
        .await;
    assert!(matches!(again, Ok(ClaimResult::Claimed(_))), "{again:?}");
    assert_eq!(stored(&env, &id).await.status, SendStatus::InProgress);
}

/// `claims.finish_send`. Only the holder of the claim finishes it, and only once: a stranger's
/// token and a second finish leave the outcome as it is.
#[tokio::test]
async fn only_the_holder_finishes_a_claim_and_only_once() {
    let env = Env::new().await;
    let (id, now) = (thanks(&env), Timestamp::now());
    let lease = now + SignedDuration::from_mins(5);
    env.store
        .claim_send(&id, &claim("a", lease, now), expires())
        .await
        .unwrap();
    let stranger = env
        .store
        .finish_send(&id, "b", SendStatus::Failed, None, Some("x"), now)
        .await;
    assert!(!stranger.unwrap());
    assert_eq!(stored(&env, &id).await.status, SendStatus::InProgress);
    let holder = env
        .store
        .finish_send(&id, "a", SendStatus::Sent, Some("mid-1"), None, now)
        .await;
    assert!(holder.unwrap());
    let late = env
        .store
        .finish_send(&id, "a", SendStatus::Failed, None, Some("late"), now)
        .await;
    assert!(!late.unwrap());
    let record = stored(&env, &id).await;
    assert_eq!(record.status, SendStatus::Sent);
    assert_eq!(record.message_id.as_deref(), Some("mid-1"));
}

/// `claims.park_send`. Only the holder of a claim parks it (SES's answer unknown), and only
/// while it is in progress: a holder that lost its claim, or a send already decided, is not
/// turned back into a parked one (the silence sweep would resend it).
#[tokio::test]
async fn only_the_holder_parks_a_claim_and_only_while_it_is_in_progress() {
    let env = Env::new().await;
    let (id, now) = (thanks(&env), Timestamp::now());
    let lease = now + SignedDuration::from_mins(5);
    env.store
        .claim_send(&id, &claim("a", lease, now), expires())
        .await
        .unwrap();
    let stranger = env
        .store
        .park_send(&id, "b", "timeout", &parked(now), now)
        .await;
    assert!(!stranger.unwrap());
    assert_eq!(stored(&env, &id).await.status, SendStatus::InProgress);
    env.store
        .finish_send(&id, "a", SendStatus::Sent, Some("mid-1"), None, now)
        .await
        .unwrap();
    let late = env
        .store
        .park_send(&id, "a", "timeout", &parked(now), now)
        .await;
    assert!(!late.unwrap());
    let record = stored(&env, &id).await;
    assert_eq!(record.status, SendStatus::Sent);
    assert_eq!(record.message_id.as_deref(), Some("mid-1"));
    assert_eq!(record.parked_message, None);
}

/// Parked for the silence sweep, decided an hour from `now`, with a kept message.
fn parked(now: Timestamp) -> Parked {
    Parked {
        message: Some("{}".to_owned()),
        decide_at: now + SignedDuration::from_hours(1),
    }
}

/// `claims.abandon_send`. A claim whose lease is still running, or that has finished, is never
/// parked as abandoned (ambiguous).
#[tokio::test]
async fn a_live_or_finished_claim_is_never_marked_abandoned() {
    let env = Env::new().await;
    let (id, now) = (thanks(&env), Timestamp::now());
    let lease = now + SignedDuration::from_mins(5);
    env.store
        .claim_send(&id, &claim("a", lease, now), expires())
        .await
        .unwrap();
    assert!(
        !env.store
            .park_abandoned_send(&id, &parked(now), now)
            .await
            .unwrap()
    );
    assert_eq!(stored(&env, &id).await.status, SendStatus::InProgress);
    env.store
        .finish_send(&id, "a", SendStatus::Sent, Some("mid-1"), None, now)
        .await
        .unwrap();
    let after = lease + SignedDuration::from_mins(1);
    assert!(
        !env.store
            .park_abandoned_send(&id, &parked(after), after)
            .await
            .unwrap()
    );
    assert_eq!(stored(&env, &id).await.status, SendStatus::Sent);
}

/// `claims.reclaim_retry`. A record left in `retry` is taken over once: a second re-claim finds
/// it held and loses.
#[tokio::test]
async fn a_record_in_retry_is_reclaimed_once() {
    let env = Env::new().await;
    let (id, now) = (thanks(&env), Timestamp::now());
    let lease = now + SignedDuration::from_mins(5);
    let record = claim("a", lease, now);
    env.store.claim_send(&id, &record, expires()).await.unwrap();
    let released = env
        .store
        .finish_send(&id, "a", SendStatus::Retry, None, Some("throttled"), now);
    assert!(released.await.unwrap());
    let first = env
        .store
        .reclaim_send(&id, &record, "b", lease)
        .await
        .unwrap();
    assert!(matches!(first, Reclaim::Claimed), "{first:?}");
    let second = env
        .store
        .reclaim_send(&id, &record, "c", lease)
        .await
        .unwrap();
    assert!(matches!(second, Reclaim::Lost), "{second:?}");
    let now_held = stored(&env, &id).await;
    assert_eq!(
        (now_held.status, now_held.claim_token.as_str()),
        (SendStatus::InProgress, "b")
    );
}

/// `apikeys.revoke_exists`. Revoking a key the merchant does not have answers false and stores
/// nothing.
#[tokio::test]
async fn revoking_an_unknown_key_answers_false_and_stores_nothing() {
    use aftercare::domain::ids::KeyId;
    let env = Env::new().await;
    let before = env.items().await.len();
    let unknown = KeyId::parse("key_id", "key_unknown").unwrap();
    let revoked = env
        .store
        .revoke_api_key(&env.merchant.id, &unknown, Timestamp::now())
        .await;
    assert!(!revoked.unwrap());
    assert_eq!(env.items().await.len(), before);
}

/// `page_views.shipment_exists`. A view of a shipment that is not stored counts nothing and
/// creates nothing.
#[tokio::test]
async fn a_view_of_an_unknown_shipment_stores_nothing() {
    use aftercare::domain::ids::ShipmentId;
    use aftercare::ports::shipments::ShipmentViews;
    let env = Env::new().await;
    let before = env.items().await.len();
    let unknown = ShipmentId::parse("shipment_id", "sh-unknown").unwrap();
    assert!(
        !env.store
            .count_view(&env.merchant.id, &unknown)
            .await
            .unwrap()
    );
    assert_eq!(env.items().await.len(), before);
}

/// `privacy.retention_turn`. The retention sweep takes its turn at most once per period, whatever
/// number of sweeps ask.
#[tokio::test]
async fn the_retention_turn_is_taken_once_per_period() {
    use aftercare::ports::privacy::PrivacyBook;
    let env = Env::new().await;
    let every = std::time::Duration::from_secs(3600);
    let now = Timestamp::now();
    assert!(env.store.retention_turn(now, every).await.unwrap());
    let soon = now + SignedDuration::from_mins(10);
    assert!(!env.store.retention_turn(soon, every).await.unwrap());
    let later = now + SignedDuration::from_mins(61);
    assert!(env.store.retention_turn(later, every).await.unwrap());
}

/// `privacy.progress_exists`, `privacy.complete_exists`. Progress and completion of a request
/// that is not stored (completed and forgotten, or never begun) create nothing.
#[tokio::test]
async fn progress_and_completion_of_an_unknown_request_create_nothing() {
    use aftercare::domain::privacy::Tally;
    use aftercare::ports::privacy::PrivacyBook;
    let env = Env::new().await;
    let (m, now) = (&env.merchant.id, Timestamp::now());
    let before = env.items().await.len();
    let resume = now + SignedDuration::from_mins(5);
    let _ = env
        .store
        .progress(m, "req-unknown", &Tally::default(), resume, now)
        .await;
    let _ = env.store.complete(m, "req-unknown", now).await;
    assert!(env.store.request(m, "req-unknown").await.unwrap().is_none());
    assert_eq!(env.items().await.len(), before);
}

/// `loyalty.note_available`. The "points available" note only moves forward, and a customer
/// without a ledger gets none.
#[tokio::test]
async fn the_available_points_note_never_moves_back_nor_creates_a_ledger() {
    let env = Env::new().await;
    let m = &env.merchant.id;
    let c = CustomerId::parse("customer", "noted").unwrap();
    let now = Timestamp::now();
    let empty = env.store.ledger(m, &c).await.unwrap();
    let entry = adjustment("adjust:k-1", 10, now);
    let posted = env.store.post(m, &c, &empty, &entry, now, None).await;
    assert!(matches!(posted, Ok(Posting::Done(_))), "{posted:?}");
    let later = now + SignedDuration::from_mins(10);
    env.store.note_available(m, &c, later).await.unwrap();
    env.store.note_available(m, &c, now).await.unwrap();
    assert_eq!(
        env.store.ledger(m, &c).await.unwrap().noted_through,
        Some(later)
    );

    let nobody = CustomerId::parse("customer", "nobody").unwrap();
    let before = env.items().await.len();
    env.store.note_available(m, &nobody, now).await.unwrap();
    assert_eq!(env.items().await.len(), before);
}

/// Puts a bare item `<merchant partition>#<entity>` / `sk` (with `extra` string attributes) due a
/// minute ago in `group`, and answers the token a sweep reads for it (the only item due in this
/// test's table).
async fn due_item(
    env: &Env,
    group: aftercare::ports::DueGroup,
    entity: &str,
    sk: &str,
    extra: &[(&str, &str)],
) -> aftercare::ports::DueToken {
    use aftercare::adapters::store::keys;
    use aftercare::ports::DueWork;
    use aws_sdk_dynamodb::types::AttributeValue::S;
    let key = keys::Key {
        pk: format!("M#{}#{entity}", env.merchant.id),
        sk: sk.to_owned(),
    };
    let (due_pk, due_sk) = keys::due(
        group.as_str(),
        Timestamp::now() - SignedDuration::from_mins(1),
        &key,
    );
    let mut put = env
        .dynamodb()
        .put_item()
        .table_name(&env.table)
        .item("PK", S(key.pk.clone()))
        .item("SK", S(key.sk.clone()))
        .item("DUEPK", S(due_pk))
        .item("DUESK", S(due_sk));
    for (name, value) in extra {
        put = put.item(*name, S((*value).to_owned()));
    }
    put.send().await.unwrap();
    let (mut due, _) = env
        .store
        .due::<serde_json::Value>(group, Timestamp::now(), 1)
        .await
        .unwrap();
    assert_eq!(due.len(), 1, "one item due");
    due.remove(0).token
}

fn in_an_hour() -> Timestamp {
    Timestamp::now() + SignedDuration::from_hours(1)
}

/// `subscriptions.move_due` (and `due.seen`, every sweep's "still where I saw it"). A sweep that
/// read a subscription before another sweep moved it moves nothing.
#[tokio::test]
async fn a_subscription_moved_by_one_sweep_is_not_moved_again_by_another() {
    use aftercare::ports::{DueGroup, RenewalBook};
    let env = Env::new().await;
    let token = due_item(&env, DueGroup::Renewals, "SUB#s-1", "SUB", &[]).await;
    let now = Timestamp::now();
    let first = env
        .store
        .move_subscription_due(&token, Some(in_an_hour()), Some("reminder"), now);
    assert!(first.await.unwrap());
    let stale = env
        .store
        .move_subscription_due(&token, None, Some("reminder"), now);
    assert!(!stale.await.unwrap());
}

/// `billing.move_due`. A dunning sweep holding a stale token does not move the invoice again.
#[tokio::test]
async fn an_invoice_moved_by_one_dunning_sweep_is_not_moved_again_by_another() {
    use aftercare::ports::DueGroup;
    use aftercare::ports::billing::BillingBook;
    let env = Env::new().await;
    let token = due_item(
        &env,
        DueGroup::Dunning,
        "INV#in-1",
        "INVOICE",
        &[("status", "failed")],
    )
    .await;
    let now = Timestamp::now();
    assert!(
        env.store
            .move_invoice_due(&token, Some(in_an_hour()), None, now)
            .await
            .unwrap()
    );
    assert!(
        !env.store
            .move_invoice_due(&token, None, Some(1), now)
            .await
            .unwrap()
    );
}

/// `followups.defer`, `followups.settle`. A follow-up another sweep deferred is neither deferred
/// again nor settled by a sweep that read it before.
#[tokio::test]
async fn a_follow_up_moved_by_one_sweep_is_neither_deferred_nor_settled_by_another() {
    use aftercare::domain::followup::{DecisionAction, DecisionEntry, FollowUpStatus};
    use aftercare::ports::DueGroup;
    use aftercare::ports::followups::FollowUpBook;
    let env = Env::new().await;
    let token = due_item(
        &env,
        DueGroup::FollowUps,
        "O#o-1",
        "FOLLOWUP#review",
        &[("status", "scheduled")],
    )
    .await;
    let now = Timestamp::now();
    let deferred = DecisionEntry::new(now, DecisionAction::Deferred, Some("quiet hours"));
    assert!(
        env.store
            .defer_follow_up(&token, in_an_hour(), &deferred)
            .await
            .unwrap()
    );
    assert!(
        !env.store
            .defer_follow_up(&token, in_an_hour(), &deferred)
            .await
            .unwrap()
    );
    let sent = DecisionEntry::new(now, DecisionAction::Sent, None);
    let settled =
        env.store
            .settle_follow_up(&token, FollowUpStatus::Sent, &sent, Some("mid-1"), None);
    assert!(!settled.await.unwrap());
}

/// `loyalty.reschedule_notice`. A loyalty notice another sweep moved is not moved again.
#[tokio::test]
async fn a_loyalty_notice_moved_by_one_sweep_is_not_moved_again_by_another() {
    use aftercare::domain::loyalty::NoticeKind;
    use aftercare::ports::DueGroup;
    let env = Env::new().await;
    let token = due_item(&env, DueGroup::Loyalty, "C#ann", "NOTICE#expiry", &[]).await;
    let kind = NoticeKind::ExpiryNotice;
    assert!(
        env.store
            .reschedule_notice(&token, &kind, in_an_hour())
            .await
            .unwrap()
    );
    assert!(
        !env.store
            .reschedule_notice(&token, &kind, in_an_hour())
            .await
            .unwrap()
    );
}

/// `privacy.defer_retention`. A customer's retention entry another sweep moved is not moved again.
#[tokio::test]
async fn a_retention_entry_moved_by_one_sweep_is_not_moved_again_by_another() {
    use aftercare::ports::DueGroup;
    use aftercare::ports::privacy::PrivacyBook;
    let env = Env::new().await;
    let token = due_item(&env, DueGroup::Retention, "C#ann", "PROFILE", &[]).await;
    assert!(
        env.store
            .defer_retention(&token, in_an_hour())
            .await
            .unwrap()
    );
    assert!(
        !env.store
            .defer_retention(&token, in_an_hour())
            .await
            .unwrap()
    );
}

/// `due.complete`. A due item is completed once: a second sweep's completion answers false and
/// the first outcome stays.
#[tokio::test]
async fn a_due_item_is_completed_once() {
    use aftercare::ports::{DueGroup, DueWork};
    use aftercare_tests::s;
    let env = Env::new().await;
    let token = due_item(&env, DueGroup::ShipmentChecks, "S#sh-1", "DUE#late", &[]).await;
    let now = Timestamp::now();
    assert!(env.store.complete_due(&token, "sent", now).await.unwrap());
    assert!(
        !env.store
            .complete_due(&token, "skipped", now)
            .await
            .unwrap()
    );
    let item = env.items_with_sk("DUE#late").await;
    assert_eq!(s(&item[0], "outcome"), "sent");
}

fn answer(env: &Env, score: u8, answers: u32) -> aftercare::domain::survey::FeedbackRecord {
    use aftercare::domain::survey::{Band, FeedbackRecord, SurveyScale};
    let now = Timestamp::now();
    FeedbackRecord {
        merchant_id: env.merchant.id.clone(),
        order_id: aftercare::domain::OrderId::parse("order_id", "o-1").unwrap(),
        customer_id: CustomerId::parse("customer", "ann").unwrap(),
        customer_email: "ann@example.com".to_owned(),
        customer_name: None,
        scale: SurveyScale::Nps,
        score,
        band: if score >= 9 {
            Band::Promoter
        } else {
            Band::Detractor
        },
        comment: None,
        answered_at: now,
        first_answered_at: now,
        answers,
    }
}

/// `followups.feedback_new`, `followups.feedback_replaces`. A first answer is stored only where
/// none is, and a later one only over the answer it read: two racing answers are never
/// last-writer-wins.
#[tokio::test]
async fn an_answer_is_stored_only_over_the_answer_it_read() {
    use aftercare::ports::feedback::FeedbackBook;
    let env = Env::new().await;
    assert!(
        env.store
            .put_feedback(&answer(&env, 10, 1), None)
            .await
            .unwrap()
    );
    assert!(
        !env.store
            .put_feedback(&answer(&env, 2, 1), None)
            .await
            .unwrap()
    );
    assert!(
        !env.store
            .put_feedback(&answer(&env, 3, 2), Some(5))
            .await
            .unwrap()
    );
    assert!(
        env.store
            .put_feedback(&answer(&env, 7, 2), Some(1))
            .await
            .unwrap()
    );
    let stored = env.items_with_sk("FEEDBACK").await;
    assert_eq!(
        stored[0]
            .get("score")
            .and_then(|v| v.as_n().ok())
            .map(String::as_str),
        Some("7")
    );
}

/// `followups.cancel`. Cancelling a follow-up that has left the schedule (sent, settled) changes
/// nothing and is not reported as cancelled.
#[tokio::test]
async fn a_follow_up_that_left_the_schedule_is_not_cancelled() {
    use aftercare::domain::followup::{
        DecisionAction, DecisionEntry, FollowUpKind, FollowUpStatus,
    };
    use aftercare::ports::DueGroup;
    use aftercare::ports::feedback::FeedbackBook;
    use aftercare::ports::followups::FollowUpBook;
    let env = Env::new().await;
    let kind = FollowUpKind::ReviewRequest;
    let sk = format!("FOLLOWUP#{}", kind.as_str());
    let token = due_item(
        &env,
        DueGroup::FollowUps,
        "O#o-1",
        &sk,
        &[("status", "scheduled")],
    )
    .await;
    let now = Timestamp::now();
    let sent = DecisionEntry::new(now, DecisionAction::Sent, None);
    let settled =
        env.store
            .settle_follow_up(&token, FollowUpStatus::Sent, &sent, Some("mid-1"), None);
    assert!(settled.await.unwrap());
    let order = aftercare::domain::OrderId::parse("order_id", "o-1").unwrap();
    let cancelled = env
        .store
        .cancel_follow_ups(&env.merchant.id, &order, &[kind], "refunded", now)
        .await;
    assert_eq!(cancelled.unwrap(), Vec::<FollowUpKind>::new());
    let item = env.items_with_sk(&sk).await;
    assert_eq!(aftercare_tests::s(&item[0], "status"), "sent");
}

/// A follow-up due now (`O#o-1` / `FOLLOWUP#feedback_survey`), the contact item of `ann` with
/// `contact` attributes, and the claim arguments of its survey email.
async fn follow_up_and_contact(
    env: &Env,
    contact: &[(&str, aws_sdk_dynamodb::types::AttributeValue)],
) -> aftercare::ports::DueToken {
    use aftercare::ports::DueGroup;
    let token = due_item(
        env,
        DueGroup::FollowUps,
        "O#o-1",
        "FOLLOWUP#feedback_survey",
        &[("status", "scheduled")],
    )
    .await;
    let mut put = env
        .dynamodb()
        .put_item()
        .table_name(&env.table)
        .item(
            "PK",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("M#{}#C#ann", env.merchant.id)),
        )
        .item(
            "SK",
            aws_sdk_dynamodb::types::AttributeValue::S("CONTACT".to_owned()),
        );
    for (name, value) in contact {
        put = put.item(*name, value.clone());
    }
    put.send().await.unwrap();
    token
}

async fn claim_survey(
    env: &Env,
    token: &aftercare::ports::DueToken,
    guard: aftercare::domain::followup_sweep::ContactGuard,
) -> aftercare::domain::followup_sweep::FollowUpClaim {
    use aftercare::ports::followups::FollowUpBook;
    let now = Timestamp::now();
    let c = CustomerId::parse("customer", "ann").unwrap();
    let id = SendIdentity::new(&env.merchant.id, &c, EmailKind::FeedbackSurvey, "o-1", 0);
    let record = claim("a", now + SignedDuration::from_mins(5), now);
    env.store
        .claim_follow_up(
            token,
            (&env.merchant.id, &c),
            guard,
            (&id, &record),
            expires(),
            now,
        )
        .await
        .unwrap()
}

fn survey_guard(
    survey_since: Option<Timestamp>,
) -> aftercare::domain::followup_sweep::ContactGuard {
    aftercare::domain::followup_sweep::ContactGuard {
        cap_since: None,
        survey_since,
        is_survey: true,
    }
}

/// `followups.claim_mark`. A sweep that read a follow-up before another sweep deferred it does
/// not claim it.
#[tokio::test]
async fn a_follow_up_deferred_by_one_sweep_is_not_claimed_by_another() {
    use aftercare::domain::followup::{DecisionAction, DecisionEntry};
    use aftercare::domain::followup_sweep::FollowUpClaim;
    use aftercare::ports::followups::FollowUpBook;
    let env = Env::new().await;
    let token = follow_up_and_contact(&env, &[]).await;
    let deferred = DecisionEntry::new(
        Timestamp::now(),
        DecisionAction::Deferred,
        Some("quiet hours"),
    );
    assert!(
        env.store
            .defer_follow_up(&token, in_an_hour(), &deferred)
            .await
            .unwrap()
    );
    assert_eq!(
        claim_survey(&env, &token, survey_guard(None)).await,
        FollowUpClaim::Moved
    );
}

/// `followups.contact_subscribed`. A customer who unsubscribed after the sweep read their contact
/// state gets no follow-up: the claim answers "decide again".
#[tokio::test]
async fn a_customer_who_unsubscribed_meanwhile_is_not_claimed() {
    use aftercare::domain::followup_sweep::FollowUpClaim;
    use aws_sdk_dynamodb::types::AttributeValue;
    let env = Env::new().await;
    let token = follow_up_and_contact(&env, &[("unsubscribed", AttributeValue::Bool(true))]).await;
    let result = claim_survey(&env, &token, survey_guard(None)).await;
    assert_eq!(result, FollowUpClaim::ContactChanged);
}

/// `followups.contact_throttle`. A survey sent to the customer after the sweep read their contact
/// state holds the next one back.
#[tokio::test]
async fn a_survey_sent_meanwhile_holds_the_next_one_back() {
    use aftercare::domain::followup_sweep::FollowUpClaim;
    use aws_sdk_dynamodb::types::AttributeValue;
    let env = Env::new().await;
    let just_now = Timestamp::now().as_millisecond().to_string();
    let token =
        follow_up_and_contact(&env, &[("last_survey_ms", AttributeValue::N(just_now))]).await;
    let since = Timestamp::now() - SignedDuration::from_hours(24);
    let result = claim_survey(&env, &token, survey_guard(Some(since))).await;
    assert_eq!(result, FollowUpClaim::ContactChanged);
}

/// `billing.dunning_step`. A dunning sweep that read an invoice before another sweep moved it
/// does not take the step (no second reminder).
#[tokio::test]
async fn a_dunning_step_is_not_taken_on_an_invoice_another_sweep_moved() {
    use aftercare::domain::billing::{DunningStep, StepClaim, StepKind};
    use aftercare::ports::DueGroup;
    use aftercare::ports::billing::{BillingBook, ClaimWrite};
    use aws_sdk_dynamodb::types::AttributeValue::{N, S};
    let env = Env::new().await;
    let token = due_item(
        &env,
        DueGroup::Dunning,
        "INV#in-1",
        "INVOICE",
        &[("status", "failed")],
    )
    .await;
    env.dynamodb()
        .update_item()
        .table_name(&env.table)
        .key("PK", S(format!("M#{}#INV#in-1", env.merchant.id)))
        .key("SK", S("INVOICE".to_owned()))
        .update_expression("SET emails_reminder = :zero")
        .expression_attribute_values(":zero", N("0".to_owned()))
        .send()
        .await
        .unwrap();
    let now = Timestamp::now();
    assert!(
        env.store
            .move_invoice_due(&token, Some(in_an_hour()), None, now)
            .await
            .unwrap()
    );
    let step = DunningStep {
        index: 1,
        kind: StepKind::Reminder,
        at: now,
    };
    let (id, record) = (
        thanks(&env),
        claim("a", now + SignedDuration::from_mins(5), now),
    );
    let write = ClaimWrite {
        id: &id,
        record: &record,
        expires_at: expires(),
    };
    let taken = env
        .store
        .claim_dunning_step(&token, &step, None, write, now)
        .await;
    assert_eq!(taken.unwrap(), StepClaim::Moved);
    assert!(
        env.store.get_send(&id).await.unwrap().is_none(),
        "no reminder claimed"
    );
}

/// `privacy.begin_not_running`. An erasure asked again while it runs is not restarted over the
/// running one: the request as stored (its first asker, its progress) is the answer.
#[tokio::test]
async fn an_erasure_asked_again_while_it_runs_is_not_restarted() {
    use aftercare::domain::privacy::{PrivacyRequest, RequestKind, RequestStatus, SubjectKind};
    use aftercare::ports::privacy::PrivacyBook;
    let env = Env::new().await;
    let now = Timestamp::now();
    let request = |by: &str| PrivacyRequest {
        id: "req-1".to_owned(),
        merchant_id: env.merchant.id.clone(),
        kind: RequestKind::Erasure,
        status: RequestStatus::Running,
        subject_kind: SubjectKind::Customer,
        subject: Some("ann".to_owned()),
        requested_by: by.to_owned(),
        requested_at: now,
        updated_at: now,
        completed_at: None,
        counts: Default::default(),
        runs: 1,
    };
    let first = env.store.begin(&request("key-a"), Some(in_an_hour())).await;
    assert_eq!(first.unwrap().requested_by, "key-a");
    let again = env.store.begin(&request("key-b"), Some(in_an_hour())).await;
    assert_eq!(again.unwrap().requested_by, "key-a");
    let stored = env.store.request(&env.merchant.id, "req-1").await.unwrap();
    assert_eq!(stored.map(|r| r.requested_by).as_deref(), Some("key-a"));
}

/// `orders.referred_by_exists`. A referral reward for an order that is not stored (erased
/// meanwhile) is refused whole: no reward, no referee, no stub order.
#[tokio::test]
async fn a_referral_reward_for_an_order_gone_is_refused_whole() {
    use aftercare::domain::OrderId;
    use aftercare::domain::loyalty::{LoyaltyNotice, NoticeKind, Referee, Referral};
    let env = Env::new().await;
    let m = &env.merchant.id;
    let rita = CustomerId::parse("customer", "rita").unwrap();
    let now = Timestamp::now();
    let source = "referral:bob@example.com";
    let mut reward = adjustment(source, 100, now);
    reward.kind = LedgerKind::Earn;
    let referral = Referral {
        referee: Referee {
            email: "bob@example.com".to_owned(),
            order_id: "o-gone".to_owned(),
            referrer: rita.clone(),
            created_at: now,
        },
        notice: LoyaltyNotice {
            customer_id: rita.clone(),
            kind: NoticeKind::ReferralReward,
            source: Some(source.to_owned()),
            due_at: in_an_hour(),
        },
        order: OrderId::parse("order_id", "o-gone").unwrap(),
    };
    let before = env.items().await.len();
    let read = env.store.ledger(m, &rita).await.unwrap();
    let posted = env
        .store
        .post(m, &rita, &read, &reward, now, Some(&referral))
        .await;
    assert_eq!(posted.unwrap(), Posting::OrderGone);
    assert_eq!(env.items().await.len(), before);
}

/// `claims.suppressed_new`. Another delivery records the email (here: sent before the suppression
/// took effect) between the two attempts of a guarded claim: the `suppressed` record does not
/// overwrite it, and the caller is told someone else holds it.
#[tokio::test]
async fn a_record_written_between_the_two_attempts_of_a_claim_is_not_overwritten_suppressed() {
    aftercare_tests::mutate::put_before(
        "claims.suppressed_new",
        serde_json::json!({
            "status": {"S": "sent"},
            "message_id": {"S": "the-other-delivery"},
            "attempts": {"N": "1"},
            "last_error": {"NULL": true},
        }),
    );
    let env = Env::new().await;
    suppress_ann(&env).await;
    let (id, now) = (thanks(&env), Timestamp::now());
    let lease = now + SignedDuration::from_mins(5);
    let result = env
        .store
        .claim_send(&id, &claim("a", lease, now), expires())
        .await;
    assert!(
        matches!(&result, Ok(ClaimResult::Taken(theirs)) if theirs.status == SendStatus::Sent),
        "{result:?}"
    );
    let record = stored(&env, &id).await;
    assert_eq!(record.status, SendStatus::Sent);
    assert_eq!(record.message_id.as_deref(), Some("the-other-delivery"));
}

/// A scheduled review request of order `o` keeping `skus`, in the due index.
async fn review_request_with_lines(
    env: &Env,
    o: &str,
    skus: &[String],
) -> aftercare::domain::OrderId {
    use aftercare::adapters::store::keys;
    use aftercare::domain::catalogue::Sku;
    use aftercare::domain::followup::{AnchorReason, FollowUp, FollowUpKind, FollowUpStatus};
    use aws_sdk_dynamodb::types::AttributeValue::S;
    let order = aftercare::domain::OrderId::parse("order_id", o).unwrap();
    let now = Timestamp::now();
    let follow_up = FollowUp {
        order_id: order.clone(),
        customer_id: "ann".into(),
        recipient: Some("ann@example.com".into()),
        kind: FollowUpKind::ReviewRequest,
        due_at: now,
        anchor: now,
        anchor_reason: AnchorReason::Delivered,
        status: FollowUpStatus::Scheduled,
        decisions: Vec::new(),
        outcome: None,
        message_id: None,
        skus: skus.iter().map(|s| Sku::parse("sku", s).unwrap()).collect(),
        refunded_skus: Vec::new(),
    };
    let key = keys::follow_up(&env.merchant.id, &order, "review_request");
    let (due_pk, due_sk) = keys::due(aftercare::ports::DueGroup::FollowUps.as_str(), now, &key);
    let mut item: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
        serde_dynamo::to_item(&follow_up).unwrap();
    item.insert("PK".into(), S(key.pk.clone()));
    item.insert("SK".into(), S(key.sk.clone()));
    item.insert("DUEPK".into(), S(due_pk));
    item.insert("DUESK".into(), S(due_sk));
    env.dynamodb()
        .put_item()
        .table_name(&env.table)
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
    order
}

/// `followups.drop_lines_scheduled`. A refunded line is taken out of a review request only while
/// it is scheduled: one cancelled meanwhile (or sent) is left exactly as it was.
#[tokio::test]
async fn a_follow_up_that_left_the_schedule_keeps_its_lines() {
    use aftercare::domain::catalogue::Sku;
    use aftercare::domain::followup::FollowUpKind;
    use aftercare::ports::feedback::FeedbackBook;
    let env = Env::new().await;
    let order = review_request_with_lines(
        &env,
        "o-lines",
        &["TENT-2P".to_owned(), "PEG-AL-10".to_owned()],
    )
    .await;
    let kind = [FollowUpKind::ReviewRequest];
    let now = Timestamp::now();
    let m = &env.merchant.id;
    let cancelled = env
        .store
        .cancel_follow_ups(m, &order, &kind, "order_cancelled", now)
        .await
        .unwrap();
    assert_eq!(cancelled, kind);
    let pegs = [Sku::parse("sku", "PEG-AL-10").unwrap()];
    let dropped = env
        .store
        .drop_follow_up_skus(m, &order, &kind, &pegs, "refunded", now)
        .await
        .unwrap();
    assert!(dropped.is_empty(), "{dropped:?}");
    let item = env.items_with_sk("FOLLOWUP#review_request").await;
    assert_eq!(aftercare_tests::s(&item[0], "status"), "cancelled");
    assert_eq!(aftercare_tests::s(&item[0], "outcome"), "order_cancelled");
    assert!(!item[0].contains_key("refunded_skus"), "{item:?}");
}

/// `followups.drop_lines_skus_seen`, `followups.drop_lines_refunded_seen` and
/// `followups.drop_lines_refunded_new` (jointly: each covers the others' races). A refund of
/// each of twelve lines at once, on a review request with no refunded line yet and on one with
/// one already: every write is conditioned on the lists it read, so no refund's line is lost to
/// another's write, and the review request ends cancelled with all of them.
#[tokio::test]
async fn concurrent_refunds_of_different_lines_lose_none() {
    use aftercare::domain::catalogue::Sku;
    use aftercare::domain::followup::{FollowUpKind, LinesDropped};
    use aftercare::ports::feedback::FeedbackBook;
    let env = Env::new().await;
    let kind = [FollowUpKind::ReviewRequest];
    let now = Timestamp::now();
    let m = &env.merchant.id;
    for (o, first) in [("o-fresh", 0), ("o-begun", 1)] {
        let skus: Vec<String> = (0..12).map(|i| format!("LINE-{i:02}")).collect();
        let order = review_request_with_lines(&env, o, &skus).await;
        let each: Vec<[Sku; 1]> = skus
            .iter()
            .map(|s| [Sku::parse("sku", s).unwrap()])
            .collect();
        for line in &each[..first] {
            env.store
                .drop_follow_up_skus(m, &order, &kind, line, "refunded", now)
                .await
                .unwrap();
        }
        let all = futures_util::future::join_all(each[first..].iter().map(|line| {
            env.store
                .drop_follow_up_skus(m, &order, &kind, line, "refunded", now)
        }))
        .await;
        let outcomes: Vec<LinesDropped> = all
            .into_iter()
            .flat_map(|r| r.unwrap())
            .map(|(_, what)| what)
            .collect();
        assert_eq!(outcomes.len(), 12 - first, "{o}: {outcomes:?}");
        assert_eq!(
            outcomes
                .iter()
                .filter(|w| **w == LinesDropped::Cancelled)
                .count(),
            1,
            "{o}: the last line's refund cancels it: {outcomes:?}"
        );
        let item = env
            .items_in(&format!("O#{o}"), "FOLLOWUP#review_request")
            .await
            .pop()
            .unwrap();
        let stored: serde_json::Value = serde_dynamo::from_item(item).unwrap();
        let mut refunded: Vec<String> = stored["refunded_skus"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        refunded.sort();
        assert_eq!(refunded, skus, "{o}");
        assert_eq!(stored["status"], "cancelled", "{o}: {stored}");
    }
}
