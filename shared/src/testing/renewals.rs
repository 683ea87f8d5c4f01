//! Renewals and merchants in memory: a subscription moves on only from where the sweep saw it
//! (the store's `DUESK = :seen` condition), and merchants are looked up by id.

use crate::domain::marketing::ContactState;
use crate::domain::{CustomerId, Merchant, MerchantId};
use crate::ports::{DueToken, MerchantDirectory, RenewalBook, StoreError};
use jiff::Timestamp;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Where a subscription stands in the due index after the moves so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The due sort key it is at now (`None`: out of the index).
    pub at: Option<String>,
    /// The notices handled, oldest first.
    pub handled: Vec<String>,
}

#[derive(Default)]
pub struct MemRenewals {
    positions: Mutex<HashMap<String, Position>>,
    contacts: Mutex<HashMap<(MerchantId, CustomerId), ContactState>>,
}

impl MemRenewals {
    pub fn new() -> Self {
        Self::default()
    }

    /// Where the item of `due` stands (`None` if it never moved).
    pub fn position(&self, due: &DueToken) -> Option<Position> {
        self.positions
            .lock()
            .ok()
            .and_then(|p| p.get(&due.sk).cloned())
    }

    pub fn set_contact(&self, m: &MerchantId, c: &CustomerId, contact: ContactState) {
        if let Ok(mut contacts) = self.contacts.lock() {
            contacts.insert((m.clone(), c.clone()), contact);
        }
    }
}

impl RenewalBook for MemRenewals {
    async fn move_subscription_due(
        &self,
        due: &DueToken,
        next: Option<Timestamp>,
        handled: Option<&str>,
        _now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut positions = self
            .positions
            .lock()
            .map_err(|_| StoreError::ConditionFailed)?;
        let position = positions.entry(due.sk.clone()).or_insert_with(|| Position {
            at: Some(due.seen.clone()),
            handled: Vec::new(),
        });
        if position.at.as_deref() != Some(due.seen.as_str()) {
            return Ok(false);
        }
        position.at = next.map(|t| format!("{:013}#{}", t.as_millisecond(), due.sk));
        position.handled.extend(handled.map(str::to_owned));
        Ok(true)
    }
}

#[derive(Default)]
pub struct MemMerchants(Mutex<HashMap<MerchantId, Arc<Merchant>>>);

impl MemMerchants {
    pub fn with(merchant: Merchant) -> Self {
        let merchants = Self::default();
        if let Ok(mut m) = merchants.0.lock() {
            m.insert(merchant.id.clone(), Arc::new(merchant));
        }
        merchants
    }
}

impl MerchantDirectory for MemMerchants {
    async fn merchant(&self, id: &MerchantId) -> Result<Option<Arc<Merchant>>, StoreError> {
        Ok(self.0.lock().ok().and_then(|m| m.get(id).cloned()))
    }
}

impl crate::ports::ContactLookup for MemRenewals {
    async fn contact(&self, m: &MerchantId, c: &CustomerId) -> Result<ContactState, StoreError> {
        Ok(self
            .contacts
            .lock()
            .ok()
            .and_then(|contacts| contacts.get(&(m.clone(), c.clone())).cloned())
            .unwrap_or_default())
    }
}
