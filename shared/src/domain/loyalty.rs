//! Loyalty points: what an order earns and when the points become available.

use super::Order;
use super::merchant::LoyaltySettings;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// Points an order earns: `points_per_unit` per whole currency unit of merchandise value.
pub fn points_for(order: &Order, settings: &LoyaltySettings) -> u64 {
    if !settings.enabled {
        return 0;
    }
    let whole_units = order.merchandise_value().max(0) / order.currency.minor_per_unit();
    u64::try_from(whole_units)
        .unwrap_or(0)
        .saturating_mul(u64::from(settings.points_per_unit))
}

/// When earned points stop being pending: the return window after `anchor` (delivery when known,
/// else the order date).
pub fn available_at(anchor: Timestamp, settings: &LoyaltySettings) -> Timestamp {
    let window = SignedDuration::from_hours(24 * i64::from(settings.return_window_days));
    anchor.checked_add(window).unwrap_or(anchor)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerKind {
    Earn,
    Redeem,
    Reverse,
    Adjust,
    Expire,
}

/// One append-only ledger entry. Balances are derived from entries, never stored mutably alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub kind: LedgerKind,
    /// Signed: earns positive, redemptions and reversals negative.
    pub points: i64,
    /// What caused it, e.g. `order:SO-1001`.
    pub source: String,
    pub created_at: Timestamp,
    /// For earns: when the points stop being pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_at: Option<Timestamp>,
}

impl LedgerEntry {
    pub fn earn_for_order(
        order: &Order,
        settings: &LoyaltySettings,
        now: Timestamp,
    ) -> Option<Self> {
        let points = points_for(order, settings);
        (points > 0).then(|| LedgerEntry {
            kind: LedgerKind::Earn,
            points: i64::try_from(points).unwrap_or(i64::MAX),
            source: format!("order:{}", order.id),
            created_at: now,
            available_at: Some(available_at(order.placed_at, settings)),
        })
    }

    pub fn is_pending(&self, now: Timestamp) -> bool {
        self.available_at.is_some_and(|at| now < at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::order::tests::sample;
    use crate::domain::validation::from_value;
    use proptest::prelude::*;

    fn order(total_items: i64, currency: &str) -> Order {
        let mut v = sample();
        v["currency"] = currency.into();
        v["items"] = serde_json::json!([{"sku": "A", "name": "A", "quantity": 1, "unit_price": total_items}]);
        v["discount"] = 0.into();
        v["shipping"] = 0.into();
        v["total"] = total_items.into();
        from_value::<crate::domain::OrderInput>(v)
            .unwrap()
            .validate()
            .unwrap()
    }

    #[test]
    fn one_point_per_whole_unit_by_default() {
        let s = LoyaltySettings::default();
        assert_eq!(points_for(&order(20_899, "EUR"), &s), 208);
        assert_eq!(points_for(&order(1_500, "JPY"), &s), 1500);
        assert_eq!(points_for(&order(99, "USD"), &s), 0);
        let off = LoyaltySettings {
            enabled: false,
            ..s.clone()
        };
        assert_eq!(points_for(&order(20_899, "EUR"), &off), 0);
        assert!(
            LedgerEntry::earn_for_order(&order(99, "USD"), &s, Timestamp::UNIX_EPOCH).is_none()
        );
    }

    #[test]
    fn earn_is_pending_through_the_return_window() {
        let s = LoyaltySettings::default();
        let o = order(5_000, "EUR");
        let e = LedgerEntry::earn_for_order(&o, &s, o.placed_at).unwrap();
        let day = SignedDuration::from_hours(24);
        assert!(e.is_pending(o.placed_at.checked_add(day * 29).unwrap()));
        assert!(!e.is_pending(o.placed_at.checked_add(day * 30).unwrap()));
    }

    proptest! {
        #[test]
        fn points_scale_linearly(cents in 0i64..1_000_000_000, per in 0u32..100) {
            let s = LoyaltySettings { points_per_unit: per, ..LoyaltySettings::default() };
            prop_assert_eq!(points_for(&order(cents, "EUR"), &s), (cents / 100) as u64 * per as u64);
        }
    }
}
