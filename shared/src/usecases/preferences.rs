//! A customer's choices about a merchant's marketing mail, whoever records them: the customer on
//! their signed unsubscribe and preference pages, the merchant through the API.
//!
//! An unsubscribe covers every marketing-class email (follow-ups, surveys, review requests,
//! cross-sell) and nothing transactional: it is not a suppression, and orders, shipping and
//! billing mail still go. It is idempotent: another unsubscribe (mail providers repeat the RFC 8058
//! one-click post) keeps the customer unsubscribed since the first. A change of preferences
//! applies to what is stored; a refusal names the field and stores nothing.

use crate::clock::Clock;
use crate::domain::marketing::{ContactState, Preferences, PreferencesInput};
use crate::domain::{CustomerId, FieldError, MerchantId};
use crate::ports::StoreError;
use crate::ports::feedback::ContactBook;

/// Why a choice was not stored.
#[derive(Debug, thiserror::Error)]
pub enum ContactError {
    /// The request names no change we know.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// The preferences were refused; `current` is what the customer has (unchanged).
    #[error("{error}")]
    Refused {
        error: FieldError,
        current: Box<Preferences>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an unsubscribe link's post asks for.
#[derive(Debug, Clone, Copy, Default)]
pub struct SubscriptionRequest<'a> {
    /// The page's form: `unsubscribe` or `resubscribe`.
    pub action: Option<&'a str>,
    /// A mail provider's RFC 8058 `List-Unsubscribe=One-Click` post.
    pub one_click: bool,
}

impl SubscriptionRequest<'_> {
    /// Whether the customer is to be unsubscribed (the page's action wins over one-click).
    pub fn unsubscribe(&self) -> Result<bool, FieldError> {
        match self.action {
            Some("resubscribe") => Ok(false),
            Some("unsubscribe") => Ok(true),
            _ if self.one_click => Ok(true),
            _ => Err(FieldError::new(
                "action",
                "invalid_value",
                "action must be unsubscribe or resubscribe",
            )),
        }
    }
}

pub struct Contacts<'a, B> {
    pub book: &'a B,
    pub clock: &'a dyn Clock,
}

impl<B: ContactBook> Contacts<'_, B> {
    /// What the customer told the merchant, as stored.
    pub async fn contact(
        &self,
        m: &MerchantId,
        c: &CustomerId,
    ) -> Result<ContactState, StoreError> {
        self.book.contact(m, c).await
    }

    /// Unsubscribes or resubscribes the customer as `request` asks. Whether they are unsubscribed
    /// now.
    pub async fn subscription(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        request: SubscriptionRequest<'_>,
    ) -> Result<bool, ContactError> {
        let unsubscribed = request.unsubscribe()?;
        self.book
            .set_unsubscribed(m, c, unsubscribed, self.clock.now())
            .await?;
        tracing::info!(
            unsubscribed,
            one_click = request.one_click,
            "subscription changed"
        );
        Ok(unsubscribed)
    }

    /// Applies `input` to the customer's preferences and stores them. The preferences now.
    pub async fn save_preferences(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        input: PreferencesInput,
    ) -> Result<Preferences, ContactError> {
        let current = self.book.contact(m, c).await?.preferences();
        let prefs = match input.apply(current.clone()) {
            Ok(p) => p,
            Err(error) => {
                tracing::info!(field = %error.field, "preferences refused");
                return Err(ContactError::Refused {
                    error,
                    current: Box::new(current),
                });
            }
        };
        self.book
            .set_preferences(m, c, &prefs, self.clock.now())
            .await?;
        tracing::info!(
            subscribed = prefs.subscribed,
            opted_out = prefs.opted_out.len(),
            "preferences saved"
        );
        Ok(prefs)
    }
}

/// Unsubscribes and preferences on the in-memory contact book.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::domain::Locale;
    use crate::domain::followup::FollowUpKind;
    use crate::domain::marketing::{Decision, MarketingSettings, SkipReason, decide};
    use crate::domain::send::{EmailKind, SendIdentity};
    use crate::testing::ScriptedMailer;
    use crate::testing::feedback::MemFeedback;
    use crate::testing::fixtures;
    use crate::usecases::send::SendOutcome;
    use jiff::SignedDuration;
    use jiff::tz::TimeZone;
    use serde_json::json;

    struct World {
        book: MemFeedback,
        clock: ManualClock,
        m: MerchantId,
        c: CustomerId,
    }

    impl World {
        fn new() -> Self {
            Self {
                book: MemFeedback::new(),
                clock: ManualClock::new("2026-12-01T10:00:00Z".parse().unwrap()),
                m: MerchantId::parse("merchant", "acme").unwrap(),
                c: CustomerId::parse("customer", "ann").unwrap(),
            }
        }

        fn contacts(&self) -> Contacts<'_, MemFeedback> {
            Contacts {
                book: &self.book,
                clock: &self.clock,
            }
        }

        async fn post(&self, action: Option<&str>, one_click: bool) -> Result<bool, ContactError> {
            self.contacts()
                .subscription(&self.m, &self.c, SubscriptionRequest { action, one_click })
                .await
        }

        async fn contact(&self) -> ContactState {
            self.contacts().contact(&self.m, &self.c).await.unwrap()
        }

        async fn save(&self, input: serde_json::Value) -> Result<Preferences, ContactError> {
            let input: PreferencesInput = serde_json::from_value(input).unwrap();
            self.contacts()
                .save_preferences(&self.m, &self.c, input)
                .await
        }
    }

    #[tokio::test]
    async fn an_unsubscribe_is_idempotent_and_keeps_the_first_time() {
        let w = World::new();
        assert!(w.post(None, true).await.unwrap());
        let first = w.contact().await;
        assert!(first.unsubscribed);
        assert_eq!(first.unsubscribed_at, Some(w.clock.now()));
        // The provider posts the one-click again, the customer clicks the page's button.
        w.clock.advance(SignedDuration::from_hours(1));
        assert!(w.post(None, true).await.unwrap());
        assert!(w.post(Some("unsubscribe"), false).await.unwrap());
        assert_eq!(w.contact().await, first);
    }

    #[tokio::test]
    async fn an_unsubscribe_stops_every_marketing_kind_and_no_transactional_mail() {
        let w = World::new();
        w.post(Some("unsubscribe"), false).await.unwrap();
        let contact = w.contact().await;
        for kind in FollowUpKind::ALL {
            let decision = decide(
                kind,
                w.clock.now(),
                &TimeZone::UTC,
                &contact,
                false,
                &MarketingSettings::default(),
            );
            assert_eq!(
                decision,
                Decision::Skip(SkipReason::Unsubscribed),
                "{kind:?}"
            );
        }
        // An unsubscribe is not a suppression: the order's thank-you still goes.
        let mailer = ScriptedMailer::new();
        let courier = fixtures::courier(&w.book.ledger, &mailer, &w.clock);
        let id = SendIdentity::new(&w.m, &w.c, EmailKind::OrderThanks, "SO-1", 0);
        let deadline = fixtures::deadline();
        let claim = id.claim(
            "ann@example.com",
            w.clock.now(),
            deadline.lease_until(&w.clock),
        );
        let outcome = courier
            .claim_and_send(&id, &claim, 0, deadline, || Some("thanks".to_owned()))
            .await
            .unwrap();
        assert!(matches!(outcome, SendOutcome::Sent { .. }), "{outcome:?}");
    }

    #[tokio::test]
    async fn resubscribing_clears_the_unsubscribe() {
        let w = World::new();
        w.post(None, true).await.unwrap();
        assert!(
            !w.post(Some("resubscribe"), true).await.unwrap(),
            "the action wins"
        );
        let contact = w.contact().await;
        assert!(!contact.unsubscribed);
        assert_eq!(contact.unsubscribed_at, None);
        assert!(w.book.contact_row(&w.m, &w.c).unwrap()["resubscribed_at"].is_string());
    }

    #[tokio::test]
    async fn a_post_asking_for_nothing_names_the_field_and_stores_nothing() {
        let w = World::new();
        for action in [None, Some("maybe")] {
            match w.post(action, false).await {
                Err(ContactError::Invalid(e)) => assert_eq!(e.field, "action"),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(w.book.contact_row(&w.m, &w.c), None);
    }

    #[tokio::test]
    async fn preferences_are_saved_and_read_back_keeping_the_send_history() {
        let w = World::new();
        // The sweep stamped the contact state with the last marketing email.
        let sent_ms = w.clock.now().as_millisecond() - 3_600_000;
        w.book
            .table()
            .write(crate::testing::Write::Put {
                key: crate::testing::RowKey::from(&crate::adapters::store::keys::contact(
                    &w.m, &w.c,
                )),
                row: json!({"last_marketing_ms": sent_ms}),
                condition: crate::testing::table::always(),
            })
            .unwrap();
        let saved = w
            .save(json!({"subscribed": false, "opted_out": ["review_request"],
                         "locale": "de", "time_zone": "Europe/Berlin"}))
            .await
            .unwrap();
        let contact = w.contact().await;
        assert_eq!(contact.preferences(), saved);
        assert_eq!(saved.locale, Some(Locale::De));
        assert!(saved.opted_out.contains(&FollowUpKind::ReviewRequest));
        assert_eq!(contact.unsubscribed_at, Some(w.clock.now()));
        assert_eq!(
            contact.last_marketing_at.map(|t| t.as_millisecond()),
            Some(sent_ms)
        );
        // Subscribed again, language and zone cleared; the rest kept.
        let again = w
            .save(json!({"subscribed": true, "locale": "", "time_zone": ""}))
            .await
            .unwrap();
        let contact = w.contact().await;
        assert_eq!(contact.preferences(), again);
        assert_eq!((again.locale, again.time_zone.as_deref()), (None, None));
        assert!(again.opted_out.contains(&FollowUpKind::ReviewRequest));
        assert_eq!(contact.unsubscribed_at, None);
    }

    #[tokio::test]
    async fn refused_preferences_name_the_field_and_store_nothing() {
        let w = World::new();
        w.save(json!({"locale": "fr"})).await.unwrap();
        let before = w.book.contact_row(&w.m, &w.c);
        for (input, field) in [
            (json!({"opted_out": ["usage_tips", "spam"]}), "opted_out[1]"),
            (json!({"time_zone": "Mars/Olympus_Mons"}), "time_zone"),
            (json!({"locale": "xx-YY"}), "locale"),
        ] {
            match w.save(input).await {
                Err(ContactError::Refused { error, current }) => {
                    assert_eq!(error.field, field);
                    assert_eq!(current.locale, Some(Locale::Fr));
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(w.book.contact_row(&w.m, &w.c), before);
    }

    #[tokio::test]
    async fn a_store_failure_stores_nothing_and_the_next_post_does() {
        let w = World::new();
        w.book.table().fail_next_writes(2, "UpdateItem contact");
        let err = w.post(None, true).await.unwrap_err();
        assert!(
            matches!(err, ContactError::Store(ref e) if e.is_transient()),
            "{err:?}"
        );
        let err = w.save(json!({"subscribed": false})).await.unwrap_err();
        assert!(
            matches!(err, ContactError::Store(ref e) if e.is_transient()),
            "{err:?}"
        );
        assert_eq!(w.book.contact_row(&w.m, &w.c), None);
        assert!(w.post(None, true).await.unwrap());
        assert!(w.contact().await.unsubscribed);
    }
}
