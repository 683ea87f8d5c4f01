//! The ports of what SES reports about sent email: the events recorded on the send records they
//! belong to (with the suppressions they cause), and the daily counters they keep.

use super::StoreError;
use crate::domain::MerchantId;
use crate::domain::email_event::{Applied, DailyStats, EmailEvent};
use jiff::Timestamp;
use jiff::civil::Date;
use std::future::Future;

/// The email-event log: SES events onto their send records.
pub trait EmailEventLog: Send + Sync {
    /// Records `event` (EventBridge id `event_id`) on the send record `send_ref` of merchant `m`
    /// and applies what follows from it, once whatever the redeliveries and arrival order:
    ///
    /// * recorded only on a record holding the event's SES message id (a record whose send was
    ///   never recorded adopts it, if the event is addressed to its recipient), and only once per
    ///   event id ([`Applied::Duplicate`] after that; [`Applied::Unmatched`] without such a record);
    /// * the first event of each metric on a message counts it in the daily counters of its kind,
    ///   on the event's day; the message's state only moves up;
    /// * a hard bounce or a complaint suppresses its recipients for the merchant at once, the
    ///   soft bounce after [`crate::domain::email_event::SOFT_BOUNCE_LIMIT`] in a row too; a
    ///   delivery after the streak's last bounce ends it.
    fn apply_email_event(
        &self,
        m: &MerchantId,
        send_ref: &str,
        event_id: &str,
        event: &EmailEvent,
        now: Timestamp,
    ) -> impl Future<Output = Result<Applied, StoreError>> + Send;
}

/// The daily email counters, per (UTC day, kind of email).
pub trait EmailStats: Send + Sync {
    /// The counters from `from` to `to` (inclusive), every kind, oldest day first.
    fn email_stats(
        &self,
        m: &MerchantId,
        from: Date,
        to: Date,
    ) -> impl Future<Output = Result<Vec<DailyStats>, StoreError>> + Send;
}
