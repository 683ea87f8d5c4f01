//! Customer aggregates: profile, spend per currency, order index and loyalty ledger, read with one
//! Query on the customer's key prefix; and the customer's choices about marketing mail
//! (unsubscribe, preferences), written to their contact state.

use super::followups::CONTACT;
use super::orders::CustomerOrderRef;
use super::{Store, StoreError, classify, first_as, from_item, keys, s};
use crate::domain::loyalty::LedgerEntry;
use crate::domain::marketing::Preferences;
use crate::domain::{CustomerId, CustomerProfile, MerchantId};
use crate::ports::feedback::ContactBook;
use aws_sdk_dynamodb::types::AttributeValue;
use jiff::Timestamp;

/// Everything stored about one customer of one merchant.
#[derive(Debug, Clone, Default)]
pub struct CustomerAggregate {
    pub profile: Option<CustomerProfile>,
    pub orders: Vec<CustomerOrderRef>,
    pub ledger: Vec<LedgerEntry>,
}

impl Store {
    /// The customer's profile item alone (no spend, orders or ledger).
    pub async fn get_customer_profile(
        &self,
        m: &MerchantId,
        c: &CustomerId,
    ) -> Result<Option<CustomerProfile>, StoreError> {
        self.get_as("GetItem customer", "customer", &keys::customer(m, c))
            .await
    }

    pub async fn get_customer(
        &self,
        m: &MerchantId,
        c: &CustomerId,
    ) -> Result<CustomerAggregate, StoreError> {
        let items = self
            .query_prefix("Query customer", &keys::customer_aggregate(m, c))
            .await?;
        let mut agg = CustomerAggregate::default();
        let mut spend = std::collections::BTreeMap::new();
        let mut profile_item = None;
        for item in items {
            let part = match item.get(keys::SK) {
                Some(AttributeValue::S(sk)) => keys::customer_part(sk),
                _ => continue,
            };
            match part {
                keys::CustomerPart::Profile => profile_item = Some(item),
                keys::CustomerPart::Spend => {
                    let cur = item
                        .get("currency")
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                        .unwrap_or_default();
                    let amount = item
                        .get("amount")
                        .and_then(|v| v.as_n().ok())
                        .and_then(|v| v.parse::<i64>().ok())
                        .unwrap_or(0);
                    spend.insert(cur, amount);
                }
                keys::CustomerPart::Order => {
                    agg.orders.push(from_item("customer_order", item)?);
                }
                keys::CustomerPart::LedgerEntry => agg.ledger.push(from_item("ledger", item)?),
                keys::CustomerPart::Other => {}
            }
        }
        if let Some(item) = profile_item {
            let mut profile: CustomerProfile = from_item("customer", item)?;
            profile.lifetime_spend = spend;
            agg.profile = Some(profile);
        }
        Ok(agg)
    }

    /// When the customer's latest order was placed, from their order index (sorted by placing
    /// time, so an order whose event arrived late never counts as the latest): one Query of one
    /// item, newest first.
    pub async fn last_order_at(
        &self,
        m: &MerchantId,
        c: &CustomerId,
    ) -> Result<Option<jiff::Timestamp>, StoreError> {
        let out = self
            .prefix_query(&keys::customer_orders(m, c))
            .scan_index_forward(false)
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("Query last order", e))?;
        let latest: Option<CustomerOrderRef> = first_as("customer_order", out.items)?;
        Ok(latest.map(|o| o.placed_at))
    }
}

/// The contact state's choices: the item is `followups`' (the sweep stamps its send history), the
/// choices in it are the customer's.
impl ContactBook for Store {
    async fn set_unsubscribed(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        unsubscribed: bool,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut req = self
            .update_item(&keys::contact(m, c))
            .expression_attribute_values(":u", AttributeValue::Bool(unsubscribed))
            .expression_attribute_values(":now", s(now.to_string()))
            .expression_attribute_values(":t", s(CONTACT));
        req = if unsubscribed {
            req.update_expression(
                "SET unsubscribed = :u, unsubscribed_at = if_not_exists(unsubscribed_at, :now), \
                 updated_at = :now, #type = :t",
            )
        } else {
            req.update_expression(
                "SET unsubscribed = :u, resubscribed_at = :now, updated_at = :now, #type = :t \
                 REMOVE unsubscribed_at",
            )
        };
        req.expression_attribute_names("#type", keys::TYPE)
            .send()
            .await
            .map_err(|e| classify("UpdateItem unsubscribe", e))?;
        Ok(())
    }

    async fn set_preferences(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        prefs: &Preferences,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut set = vec![
            "unsubscribed = :u",
            "opted_out = :kinds",
            "updated_at = :now",
            "#type = :t",
        ];
        let mut remove = Vec::new();
        let kinds: Vec<AttributeValue> = prefs.opted_out.iter().map(|k| s(k.as_str())).collect();
        let mut req = self
            .update_item(&keys::contact(m, c))
            .expression_attribute_names("#type", keys::TYPE)
            .expression_attribute_values(":u", AttributeValue::Bool(!prefs.subscribed))
            .expression_attribute_values(":kinds", AttributeValue::L(kinds))
            .expression_attribute_values(":now", s(now.to_string()))
            .expression_attribute_values(":t", s(CONTACT));
        if prefs.subscribed {
            remove.push("unsubscribed_at");
        } else {
            set.push("unsubscribed_at = if_not_exists(unsubscribed_at, :now)");
        }
        match prefs.locale {
            Some(l) => {
                set.push("locale = :locale");
                req = req.expression_attribute_values(":locale", s(l.as_str()));
            }
            None => remove.push("locale"),
        }
        match &prefs.time_zone {
            Some(z) => {
                set.push("time_zone = :tz");
                req = req.expression_attribute_values(":tz", s(z));
            }
            None => remove.push("time_zone"),
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        req.update_expression(expression)
            .send()
            .await
            .map_err(|e| classify("UpdateItem preferences", e))?;
        Ok(())
    }
}
