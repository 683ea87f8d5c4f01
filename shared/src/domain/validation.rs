//! Field-level validation errors: every rejection names the field (a JSON path such as
//! `items[2].quantity`) with a stable machine-readable code.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// JSON path of the offending field, e.g. `customer.email`.
    pub field: String,
    /// Stable code: `required`, `invalid_type`, `invalid_format`, `out_of_range`, `too_long`, ...
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code,
            message: message.into(),
        }
    }

    pub fn required(field: impl Into<String>) -> Self {
        let field = field.into();
        let message = format!("{field} is required");
        Self {
            field,
            code: "required",
            message,
        }
    }

    /// Prefixes the path with `parent` (`customer` + `email` → `customer.email`).
    pub fn within(mut self, parent: &str) -> Self {
        self.field = if self.field.is_empty() {
            parent.to_owned()
        } else if self.field.starts_with('[') {
            format!("{parent}{}", self.field)
        } else {
            format!("{parent}.{}", self.field)
        };
        self
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for FieldError {}

/// Parses JSON into `T`, turning serde's error into a [`FieldError`] that names the field.
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, FieldError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result: Result<T, _> = serde_path_to_error::deserialize(&mut de);
    let value = result.map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        from_serde(&path, &inner)
    })?;
    de.end().map_err(|e| {
        FieldError::new(
            "",
            "invalid_json",
            format!("trailing characters after the JSON document: {e}"),
        )
    })?;
    Ok(value)
}

/// Converts an already-parsed JSON value into `T` with the same field naming.
pub fn from_value<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        from_serde(&path, &inner)
    })
}

fn from_serde(path: &str, err: &serde_json::Error) -> FieldError {
    let path = if path == "." { "" } else { path };
    let msg = err.to_string();
    // Strip serde_json's " at line X column Y" suffix: the field path says where.
    let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
    if let Some(rest) = msg.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or_default();
        let field = if path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        };
        return FieldError::required(field);
    }
    match err.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => FieldError::new(
            path,
            "invalid_json",
            format!("the body is not valid JSON: {msg}"),
        ),
        _ => {
            let code = if msg.starts_with("invalid type") {
                "invalid_type"
            } else {
                "invalid_value"
            };
            FieldError::new(path, code, msg)
        }
    }
}

/// The earliest and latest instants a business time may name: 1970-01-01 to 9999-12-31 UTC (jiff's
/// own range ends on 9999-12-30). jiff reads signed six-digit years (`-000001-…`) that RFC 3339
/// cannot write back, and nothing a merchant sends is from before the epoch.
pub fn plausible_time(field: &str, at: jiff::Timestamp) -> Result<jiff::Timestamp, FieldError> {
    let latest = jiff::Timestamp::from_second(253_402_300_799).unwrap_or(jiff::Timestamp::MAX);
    if at < jiff::Timestamp::UNIX_EPOCH || at > latest {
        Err(FieldError::new(
            field,
            "out_of_range",
            format!("{field} must be between 1970-01-01 and 9999-12-31"),
        ))
    } else {
        Ok(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        qty: u32,
    }
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        items: Vec<Inner>,
    }

    #[test]
    fn names_nested_fields() {
        let e =
            parse_json::<Outer>(br#"{"name":"x","items":[{"qty":1},{"qty":"2"}]}"#).unwrap_err();
        assert_eq!(e.field, "items[1].qty");
        assert_eq!(e.code, "invalid_type");
        let e = parse_json::<Outer>(br#"{"items":[]}"#).unwrap_err();
        assert_eq!((e.field.as_str(), e.code), ("name", "required"));
        let e = parse_json::<Outer>(br#"{"name":"x","items":[{}]}"#).unwrap_err();
        assert_eq!((e.field.as_str(), e.code), ("items[0].qty", "required"));
        let e = parse_json::<Outer>(b"{\"name\":").unwrap_err();
        assert_eq!(e.code, "invalid_json");
        let e = parse_json::<Outer>(br#"{"name":"x","items":[]} x"#).unwrap_err();
        assert_eq!(e.code, "invalid_json");
    }

    #[test]
    fn within_prefixes_paths() {
        assert_eq!(
            FieldError::required("email").within("customer").field,
            "customer.email"
        );
        assert_eq!(
            FieldError::required("[0].qty").within("items").field,
            "items[0].qty"
        );
    }
}
