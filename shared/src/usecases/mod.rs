//! What the functions do, independent of the trigger that asked: placing an order ([`orders`]), a subscription's renewal notice ([`renewals`]),
//! the send protocol every email goes through ([`send`]), the driver every scheduled sweep runs
//! under ([`sweep`]) and storing a subscription update whoever sent it ([`subscriptions`]).

pub mod billing;
pub mod email_events;
pub mod feedback;
pub mod followups;
pub mod loyalty;
pub mod orders;
pub mod preferences;
pub mod renewals;
pub mod send;
pub mod shipments;
pub mod subscriptions;
pub mod sweep;
