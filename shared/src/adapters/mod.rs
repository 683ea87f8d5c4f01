//! Adapters to the outside world: DynamoDB ([`store`]), SES and the email pipeline ([`mail`]),
//! EventBridge ([`events`]), the merchant's webhook endpoint ([`webhooks`]) and the SDK clients
//! they share ([`aws`]).

pub mod aws;
pub mod events;
pub mod mail;
pub mod store;
pub mod webhooks;
