//! Identifier newtypes. Parsing refuses anything that could break the key scheme (`#` is the key
//! separator) or a URL path, so a parsed id is safe to put in a DynamoDB key or a link.

use super::FieldError;
use serde::{Deserialize, Serialize};
use std::fmt;

fn valid_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@' | '+')
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Longest id accepted.
            pub const MAX_LEN: usize = $max;

            /// Parses an id: 1 to `MAX_LEN` characters of `A-Z a-z 0-9 - _ . : @ +`.
            pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
                if value.is_empty() {
                    return Err(FieldError::required(field));
                }
                if value.len() > Self::MAX_LEN {
                    return Err(FieldError::new(field, "too_long", format!("{field} must be at most {} characters", Self::MAX_LEN)));
                }
                if !value.chars().all(valid_char) {
                    return Err(FieldError::new(
                        field,
                        "invalid_format",
                        format!("{field} may contain only letters, digits and - _ . : @ +"),
                    ));
                }
                Ok(Self(value.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = FieldError;
            fn try_from(value: String) -> Result<Self, FieldError> {
                Self::parse(stringify!($name), &value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(
    /// A merchant (tenant). Every stored item's partition key starts with it.
    MerchantId, 64
);
id_type!(
    /// The merchant's own order id (its order number).
    OrderId, 128
);
id_type!(
    /// A customer: the merchant's customer id, or one derived from the email address.
    CustomerId, 128
);
id_type!(
    /// An API key's public identifier (never the secret).
    KeyId, 64
);
id_type!(
    /// The merchant's shipment (fulfilment) id.
    ShipmentId, 128
);

id_type!(
    /// A return: `r` + 16 hex digits derived from the key it was asked under.
    ReturnId, 40
);
id_type!(
    /// The merchant's (or billing system's) subscription id.
    SubscriptionId, 128
);
id_type!(
    /// The billing system's invoice id.
    InvoiceId, 128
);

impl CustomerId {
    /// The id of a customer the merchant did not name: a stable digest of the normalised email
    /// address, so repeat orders from the same address share one profile.
    pub fn from_email(email: &super::EmailAddress) -> Self {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(email.normalized().as_bytes());
        Self(format!("e-{}", hex::encode(&digest[..12])))
    }
}

/// A new ULID: 48 bits of milliseconds and 80 bits from the operating system's generator, so ids
/// sort by creation time and cannot be guessed. (Built here instead of enabling `ulid`'s own
/// generator, which would link a second random number generator.)
pub fn new_ulid() -> ulid::Ulid {
    ulid_at(epoch_ms())
}

fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A ULID for the millisecond `ms`, its random part from the operating system.
fn ulid_at(ms: u64) -> ulid::Ulid {
    let mut bytes = [0u8; 16];
    // If the OS generator fails the id is still unique enough for a token, but never guessable
    // ids are the point: fall back to the clock's nanoseconds mixed in rather than zeros.
    if getrandom::getrandom(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes = nanos.to_le_bytes();
    }
    ulid::Ulid::from_parts(ms, u128::from_le_bytes(bytes))
}

/// A new ULID as lowercase text.
pub fn new_id() -> String {
    new_ulid().to_string().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulids_are_unique_and_time_ordered() {
        let before = epoch_ms();
        let a = new_ulid();
        let after = epoch_ms();
        assert!((before..=after).contains(&a.timestamp_ms()));
        // Two ids of one millisecond differ; an id of a later millisecond sorts after.
        assert_ne!(a, ulid_at(a.timestamp_ms()));
        let b = ulid_at(a.timestamp_ms() + 2);
        assert!(a < b && a.to_string() < b.to_string());
        assert_eq!(b.timestamp_ms(), a.timestamp_ms() + 2);
        assert_eq!(new_id().len(), 26);
    }

    #[test]
    fn refuses_key_separators_and_paths() {
        for bad in ["a#b", "a/b", "a b", "ä", "", "a\nb", "../x"] {
            assert!(OrderId::parse("id", bad).is_err(), "{bad:?}");
        }
        assert!(MerchantId::parse("m", &"x".repeat(65)).is_err());
        assert_eq!(
            OrderId::parse("id", "SO-1001.2").unwrap().as_str(),
            "SO-1001.2"
        );
    }

    #[test]
    fn serde_validates() {
        assert!(serde_json::from_str::<OrderId>("\"a#b\"").is_err());
        assert_eq!(
            serde_json::to_string(&OrderId::parse("id", "x1").unwrap()).unwrap(),
            "\"x1\""
        );
    }

    #[test]
    fn email_derived_customer_ids_are_stable_and_case_insensitive() {
        let a = crate::domain::EmailAddress::parse("e", "Ann@Example.com").unwrap();
        let b = crate::domain::EmailAddress::parse("e", "ann@example.com").unwrap();
        assert_eq!(CustomerId::from_email(&a), CustomerId::from_email(&b));
        assert!(CustomerId::from_email(&a).as_str().starts_with("e-"));
    }
}
