//! What the functions do, independent of the trigger that asked, each over the ports it needs and
//! with its own error enum (mapped once to an HTTP answer in [`crate::http`]):
//!
//! * [`orders`]: placing an order; [`shipments`]: a shipment, a tracking checkpoint, a shipment's
//!   late and fallback checks; [`tracking_page`]: what a shipment's tracking page shows, and its
//!   view count; [`followups`]: a due follow-up; [`feedback`]: a survey answer and
//!   the loop it closes; [`preferences`]: unsubscribe and preferences; [`renewals`]: a renewal
//!   notice; [`subscriptions`]: a subscription update; [`billing`]: billing events and a dunning
//!   step; [`email_events`]: an SES event and the complaint alert; [`loyalty`]: redeeming,
//!   adjusting, referrals and a customer's standing; [`returns`]: a return from request to
//!   resolution.
//! * [`send`]: the send protocol every email goes through (claim → send → record);
//!   [`sweep`]: the driver every scheduled sweep runs under (merchant turns, quota, margin).
//!
//! Each has fast tests on the in-memory adapters of its ports (`crate::testing`).

pub mod billing;
pub mod catalogue;
pub mod credit;
pub mod email_events;
pub mod feedback;
pub mod followups;
pub mod loyalty;
pub mod orders;
pub mod preferences;
pub mod privacy;
pub mod renewals;
pub mod returns;
pub mod send;
pub mod shipments;
pub mod silence;
pub mod subscriptions;
pub mod sweep;
pub mod tracking_page;
