//! What the use-cases' fast tests share: the sample merchant and order (validated), the order's
//! record as order-placed stores it, the deadline a use-case is handed, and a courier over the
//! in-memory send ledger and a scripted mailer.

use super::{MemSendLedger, ScriptedMailer};
use crate::clock::Clock;
use crate::domain::merchant::MerchantInput;
use crate::domain::order::OrderRecord;
use crate::domain::{FieldError, Merchant, MerchantId, Order, OrderInput};
use crate::usecases::send::{Courier, Deadline};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::time::Duration;

/// The sample merchant (`acme`, its ops address `ops@acme.example`).
pub fn merchant() -> Merchant {
    merchant_from(crate::domain::merchant::tests::sample_input())
}

/// The merchant `input` describes (the sample's, changed by a test).
pub fn merchant_from(input: Value) -> Merchant {
    valid(input, MerchantInput::validate)
}

/// The order `input` describes (the sample's, changed by a test).
pub fn order_from(input: Value) -> Order {
    valid(input, OrderInput::validate)
}

/// The sample order (`SO-1001`, Ann's).
pub fn order() -> Order {
    order_from(crate::domain::order::tests::sample())
}

/// What `input` describes, validated.
fn valid<I: DeserializeOwned, T>(
    input: Value,
    validate: impl FnOnce(I) -> Result<T, FieldError>,
) -> T {
    validate(serde_json::from_value(input).unwrap()).unwrap()
}

/// `order` of merchant `m` as order-placed stores it: received when placed, earning nothing, with
/// no tier and no referrer.
pub fn order_record(m: &MerchantId, order: Order) -> OrderRecord {
    OrderRecord {
        merchant_id: m.clone(),
        points_earned: 0,
        tier: None,
        referred_by: None,
        content_hash: order.content_hash(),
        received_at: order.placed_at,
        order,
    }
}

/// The deadline a use-case is handed: ample time.
pub fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(30))
}

/// A courier sending through `mailer` under the claims of `store`, on `clock`.
pub fn courier<'a>(
    store: &'a MemSendLedger,
    mailer: &'a ScriptedMailer<String>,
    clock: &'a dyn Clock,
) -> Courier<'a, MemSendLedger, ScriptedMailer<String>> {
    Courier {
        store,
        mailer,
        clock,
        silence: crate::usecases::send::DEFAULT_SILENCE_WINDOW,
    }
}
