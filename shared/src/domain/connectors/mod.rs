//! Connectors: pure mappings from a commerce platform's own payloads to Aftercare's inputs.
//!
//! Nothing here does I/O; a connector's HTTP route checks the platform's signature, deduplicates
//! deliveries and hands the parsed JSON to the mapping. The helpers below read the two things every
//! platform sends in its own way: numeric ids that may exceed 2^53 and prices as decimal strings.
//! Neither ever goes through `f64`.

pub mod aftership;
pub mod easypost;
pub mod shippo;
pub mod shopify;
pub mod tracking;
pub mod woocommerce;

use crate::domain::money::MAX_AMOUNT;
use crate::domain::{Currency, FieldError};
use serde_json::Value;

/// The member `key` of `obj`, with JSON `null` read as absent.
pub(crate) fn member<'a>(obj: &'a Value, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

/// A platform id as a decimal string: a JSON integer (read as `u64`, exact for every 64-bit id) or a
/// string of digits. Absent or `null` is `None`; a fraction, a negative number or anything else is
/// refused, naming `field`.
pub fn decimal_id(field: &str, value: Option<&Value>) -> Result<Option<String>, FieldError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(|id| Some(id.to_string())).ok_or_else(|| {
            FieldError::new(
                field,
                "invalid_type",
                format!("{field} must be a non-negative integer id"),
            )
        }),
        Some(Value::String(s))
            if !s.is_empty() && s.len() <= 40 && s.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Ok(Some(s.clone()))
        }
        Some(Value::String(_)) => Err(FieldError::new(
            field,
            "invalid_format",
            format!("{field} must be a decimal integer id"),
        )),
        Some(_) => Err(FieldError::new(
            field,
            "invalid_type",
            format!("{field} must be an integer id"),
        )),
    }
}

/// A price sent as a decimal string (`"19.99"`, `"1000"`, `"1.250"`) in minor units of `currency`,
/// exactly. Digits beyond the currency's exponent are accepted only when they are zeros
/// (`"1000.00"` in JPY is 1000 yen); `"19.999"` in EUR, negative values, exponents, signs, spaces
/// and JSON numbers are refused, naming `field`.
pub fn minor_units(field: &str, value: &Value, currency: Currency) -> Result<i64, FieldError> {
    let Value::String(text) = value else {
        return Err(FieldError::new(
            field,
            "invalid_type",
            format!("{field} must be a decimal string such as \"19.99\""),
        ));
    };
    if text.starts_with('-') {
        return Err(FieldError::new(
            field,
            "negative_amount",
            format!("{field} must not be negative"),
        ));
    }
    let (whole, frac) = match text.split_once('.') {
        Some((whole, frac)) => (whole, Some(frac)),
        None => (text.as_str(), None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || frac.is_some_and(|f| !digits(f)) {
        return Err(FieldError::new(
            field,
            "invalid_format",
            format!("{field} must be a decimal string such as \"19.99\""),
        ));
    }
    let exponent = usize::from(currency.exponent());
    let frac = frac.unwrap_or("");
    let (kept, rest) = frac.split_at(frac.len().min(exponent));
    if rest.bytes().any(|b| b != b'0') {
        return Err(FieldError::new(
            field,
            "too_precise",
            format!(
                "{field} has more decimals than {} has ({exponent})",
                currency.code()
            ),
        ));
    }
    let out_of_range = || {
        FieldError::new(
            field,
            "out_of_range",
            format!("{field} is larger than any accepted amount"),
        )
    };
    // Whole units, then the kept decimals right-padded with zeros to the exponent.
    let padded = kept.bytes().chain(std::iter::repeat(b'0')).take(exponent);
    whole
        .bytes()
        .chain(padded)
        .try_fold(0_i64, |acc, b| {
            acc.checked_mul(10)?.checked_add(i64::from(b - b'0'))
        })
        .filter(|v| *v <= MAX_AMOUNT)
        .ok_or_else(out_of_range)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cur(code: &str) -> Currency {
        Currency::parse("currency", code).unwrap()
    }

    fn units(text: &str, code: &str) -> Result<i64, FieldError> {
        minor_units("price", &json!(text), cur(code))
    }

    #[test]
    fn decimal_strings_convert_exactly_per_exponent() {
        assert_eq!(units("19.99", "EUR"), Ok(1999));
        assert_eq!(units("19.9", "EUR"), Ok(1990));
        assert_eq!(units("19", "EUR"), Ok(1900));
        assert_eq!(units("0.0", "USD"), Ok(0));
        assert_eq!(units("1000", "JPY"), Ok(1000));
        assert_eq!(units("1000.00", "JPY"), Ok(1000));
        assert_eq!(units("1.250", "KWD"), Ok(1250));
        assert_eq!(units("0.005", "KWD"), Ok(5));
        assert_eq!(units("12.340", "EUR"), Ok(1234));
        // 0.1 + 0.2 style values stay exact.
        assert_eq!(units("0.30", "USD"), Ok(30));
        assert_eq!(units("100000000000.00", "USD"), Ok(10_000_000_000_000));
    }

    #[test]
    fn refuses_garbage_negative_and_excess_precision() {
        for (text, code, expected) in [
            ("19.999", "EUR", "too_precise"),
            ("1.5", "JPY", "too_precise"),
            ("1.2505", "KWD", "too_precise"),
            ("-1.00", "EUR", "negative_amount"),
            ("", "EUR", "invalid_format"),
            ("abc", "EUR", "invalid_format"),
            ("1,50", "EUR", "invalid_format"),
            (".5", "EUR", "invalid_format"),
            ("5.", "EUR", "invalid_format"),
            ("1e3", "EUR", "invalid_format"),
            ("+1.00", "EUR", "invalid_format"),
            (" 1.00", "EUR", "invalid_format"),
            ("1.0.0", "EUR", "invalid_format"),
            ("100000000000.01", "USD", "out_of_range"),
            ("99999999999999999999999", "JPY", "out_of_range"),
        ] {
            let err = units(text, code).unwrap_err();
            assert_eq!(
                (err.field.as_str(), err.code),
                ("price", expected),
                "{text}"
            );
        }
        for value in [json!(19.99), json!(19), json!(null), json!(["1.00"])] {
            let err = minor_units("price", &value, cur("EUR")).unwrap_err();
            assert_eq!(err.code, "invalid_type", "{value}");
        }
    }

    #[test]
    fn ids_are_read_as_integers_never_floats() {
        let big: Value = serde_json::from_str("5940139491234567890").unwrap();
        assert_eq!(
            decimal_id("id", Some(&big)),
            Ok(Some("5940139491234567890".to_owned()))
        );
        assert_eq!(
            decimal_id("id", Some(&json!("18446744073709551615"))),
            Ok(Some("18446744073709551615".to_owned()))
        );
        assert_eq!(decimal_id("id", None), Ok(None));
        assert_eq!(decimal_id("id", Some(&Value::Null)), Ok(None));
        for bad in [json!(1.5), json!(-3), json!(true)] {
            assert_eq!(
                decimal_id("id", Some(&bad)).unwrap_err().code,
                "invalid_type"
            );
        }
        for bad in [json!(""), json!("12a"), json!("-3")] {
            assert_eq!(
                decimal_id("id", Some(&bad)).unwrap_err().code,
                "invalid_format"
            );
        }
    }
}
