//! In-memory adapters of the ports, for the fast test tier: use-case tests that run with no
//! network in milliseconds. Compiled only for this crate's tests and with the `testing` feature
//! (a dev-dependency feature; no deployed binary contains them).
//!
//! They are faithful to what the use-cases rely on, not simplified: every write is conditional
//! the way the DynamoDB adapter's is, a transaction is all-or-nothing with per-item cancellation
//! reasons ([`table::MemTable`]), a claim carries the suppression condition, and faults can be
//! injected where the real store can fail.

pub mod billing;
pub mod credit;
pub mod due;
pub mod email_events;
pub mod feedback;
#[cfg(test)]
pub mod fixtures;
pub mod followups;
pub mod ledger;
pub mod loyalty;
pub mod mailer;
pub mod orders;
pub mod products;
pub mod renewals;
pub mod returns;
pub mod shipments;
pub mod table;

pub use due::MemDue;
pub use ledger::MemSendLedger;
pub use mailer::ScriptedMailer;
pub use orders::MemOrderBook;
pub use renewals::{MemMerchants, MemRenewals};
pub use returns::{MemCredit, MemReturns};
pub use shipments::MemShipments;
pub use table::{Cancelled, Condition, MemTable, RowKey, Write};
