//! Customers: the customer part of an order, and the profile kept per merchant.

use super::text::optional_line;
use super::text::time_zone;
use super::{CustomerId, EmailAddress, FieldError, Locale};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize)]
pub struct CustomerInput {
    #[serde(default)]
    pub id: Option<String>,
    pub email: String,
    /// Whether an order may come without an email address (a shop platform's point-of-sale or
    /// phone order): it is stored and never mailed. The merchant API always requires one.
    #[serde(skip)]
    pub address_optional: bool,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    /// BCP 47 tag, e.g. `de-DE`.
    #[serde(default)]
    pub locale: Option<String>,
    /// IANA zone, e.g. `Europe/Berlin`.
    #[serde(default)]
    pub time_zone: Option<String>,
}

/// The customer as named on an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerRef {
    pub id: CustomerId,
    /// None only for a shop platform's order that came without one: stored, never mailed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailAddress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// The tag as sent (kept even if unsupported, so a later locale can use it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

impl CustomerInput {
    pub fn validate(self) -> Result<CustomerRef, FieldError> {
        let email = match self.email.trim() {
            "" if self.address_optional => None,
            address => Some(EmailAddress::parse("email", address)?),
        };
        let id = match (
            self.id.as_deref().map(str::trim).filter(|s| !s.is_empty()),
            &email,
        ) {
            (Some(id), _) => CustomerId::parse("id", id)?,
            (None, Some(email)) => CustomerId::from_email(email),
            (None, None) => {
                return Err(FieldError::new(
                    "id",
                    "required",
                    "a customer without an email address needs an id",
                ));
            }
        };
        let locale = match self
            .locale
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(tag) if Locale::is_well_formed_tag(tag) => Some(tag.to_owned()),
            Some(_) => {
                return Err(FieldError::new(
                    "locale",
                    "invalid_format",
                    "locale must be a language tag such as en or de-AT",
                ));
            }
            None => None,
        };
        let time_zone = match self
            .time_zone
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(tz) => Some(time_zone("time_zone", tz)?),
            None => None,
        };
        Ok(CustomerRef {
            id,
            email,
            first_name: optional_line("first_name", self.first_name.as_deref(), 100)?,
            last_name: optional_line("last_name", self.last_name.as_deref(), 100)?,
            locale,
            time_zone,
        })
    }
}

impl CustomerRef {
    /// The address a send record names. Invoices and subscriptions always carry one (their
    /// input requires it); empty only for a shop order that came without one, whose emails are
    /// never claimed, and whose compose finds no address (nothing goes).
    pub fn recipient(&self) -> &str {
        self.email.as_ref().map_or("", EmailAddress::as_str)
    }

    /// "First Last", or whichever part is known.
    pub fn display_name(&self) -> Option<String> {
        match (&self.first_name, &self.last_name) {
            (Some(f), Some(l)) => Some(format!("{f} {l}")),
            (Some(f), None) => Some(f.clone()),
            (None, Some(l)) => Some(l.clone()),
            (None, None) => None,
        }
    }

    /// The customer's time zone if it is a known one, else `fallback` (the merchant's).
    pub fn time_zone_or<'a>(&'a self, fallback: &'a str) -> &'a str {
        self.time_zone
            .as_deref()
            .filter(|z| jiff::tz::TimeZone::get(z).is_ok())
            .unwrap_or(fallback)
    }

    /// The locale to write to this customer in.
    pub fn locale_or(&self, fallback: Locale) -> Locale {
        self.locale
            .as_deref()
            .and_then(Locale::from_tag)
            .unwrap_or(fallback)
    }
}

/// A customer's profile as kept per merchant. Spend per currency lives in its own items (so a
/// transaction can add to it without reading), and is joined in by the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerProfile {
    pub customer_id: CustomerId,
    /// The latest address the customer ordered with (none while every order came without one).
    #[serde(default)]
    pub email: Option<EmailAddress>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub locale: Option<String>,
    #[serde(default)]
    pub time_zone: Option<String>,
    pub first_order_at: Timestamp,
    pub last_order_at: Timestamp,
    pub order_count: u64,
    /// Lifetime spend in minor units, per ISO currency code.
    #[serde(default)]
    pub lifetime_spend: BTreeMap<String, i64>,
}
