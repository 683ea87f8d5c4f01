//! Plain domain types and decisions. No AWS or Lambda imports: everything here is pure and takes
//! time as an argument.

pub mod apikey;
pub mod billing;
pub mod catalogue;
pub mod connectors;
pub mod credit;
pub mod customer;
pub mod email;
pub mod email_event;
pub mod followup;
pub mod followup_sweep;
pub mod ids;
pub mod locale;
pub mod loyalty;
pub mod marketing;
pub mod merchant;
pub mod money;
pub mod order;
pub mod privacy;
pub mod returns;
pub mod send;
pub mod shipment;
pub mod subscription;
pub mod survey;
pub mod text;
pub mod validation;

pub use customer::CustomerProfile;
pub use email::EmailAddress;
pub use ids::{CustomerId, MerchantId, OrderId};
pub use locale::Locale;
pub use merchant::Merchant;
pub use money::{Currency, Money};
pub use order::{Order, OrderInput};
pub use validation::FieldError;
