//! Email addresses, parsed once (zero2prod's `SubscriberEmail::parse` idea).

use super::FieldError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A syntactically valid, single-mailbox email address (RFC 5321 length limits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(FieldError::required(field));
        }
        if value.len() > 254 {
            return Err(FieldError::new(
                field,
                "too_long",
                format!("{field} must be at most 254 characters"),
            ));
        }
        let invalid = || {
            FieldError::new(
                field,
                "invalid_format",
                format!("{field} is not a valid email address"),
            )
        };
        // Refuse display names, comments, quoted local parts and IP-literal domains: we want a bare
        // mailbox that is safe in a header.
        if value.chars().any(|c| {
            c.is_whitespace()
                || super::text::is_forbidden(c)
                || matches!(
                    c,
                    '<' | '>' | '"' | '(' | ')' | ',' | ';' | '[' | ']' | '\\'
                )
        }) {
            return Err(invalid());
        }
        if !email_address::EmailAddress::is_valid(value) {
            return Err(invalid());
        }
        let (local, domain) = value.rsplit_once('@').ok_or_else(invalid)?;
        if local.is_empty()
            || local.len() > 64
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
        {
            return Err(invalid());
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Lower-cased form used for identity (suppression, derived customer ids).
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = FieldError;
    fn try_from(value: String) -> Result<Self, FieldError> {
        Self::parse("email", &value)
    }
}

impl From<EmailAddress> for String {
    fn from(e: EmailAddress) -> String {
        e.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses() {
        for ok in [
            "ann@example.com",
            "a.b+tag@sub.example.co.uk",
            "x_y@ex-ample.io",
        ] {
            assert!(EmailAddress::parse("e", ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "ann@",
            "ann@localhost",
            "Ann <ann@example.com>",
            "ann@example.com\r\nBcc: x@y.z",
            "a b@example.com",
            "ann@[127.0.0.1]",
            "a,b@example.com",
            "ann@example.com.",
        ] {
            assert!(EmailAddress::parse("e", bad).is_err(), "{bad:?}");
        }
    }
}
