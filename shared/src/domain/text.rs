//! Bounded, single-line text from customers and merchants.
//!
//! Everything that may end up in a mail header, a DynamoDB key or a page goes through
//! [`single_line`]: control characters (CR, LF, NUL, ...), Unicode line and paragraph separators and
//! bidi overrides are refused at the door, so no later layer has to guess.

use super::FieldError;

/// True for characters that must never appear in single-line text.
pub fn is_forbidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// Trims `value` and checks it is non-empty, at most `max` characters and single-line.
pub fn single_line(field: &str, value: &str, max: usize) -> Result<String, FieldError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(FieldError::new(
            field,
            "required",
            format!("{field} must not be empty"),
        ));
    }
    if value.chars().count() > max {
        return Err(FieldError::new(
            field,
            "too_long",
            format!("{field} must be at most {max} characters"),
        ));
    }
    if value.chars().any(is_forbidden) {
        return Err(FieldError::new(
            field,
            "invalid_characters",
            format!("{field} must be a single line without control characters"),
        ));
    }
    Ok(value.to_owned())
}

/// Like [`single_line`] for optional values; empty strings count as absent.
pub fn optional_line(
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>, FieldError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => single_line(field, v, max).map(Some),
    }
}

/// An absolute `https://` URL (or `http://` for local development), bounded and single-line.
pub fn web_url(field: &str, value: Option<&str>) -> Result<Option<String>, FieldError> {
    let Some(url) = optional_line(field, value, 2048)? else {
        return Ok(None);
    };
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    match rest {
        Some(host)
            if !host.is_empty() && !host.starts_with('/') && !url.contains(char::is_whitespace) =>
        {
            Ok(Some(url))
        }
        _ => Err(FieldError::new(
            field,
            "invalid_format",
            format!("{field} must be an absolute http(s) URL"),
        )),
    }
}

/// Checks an IANA time zone name against the bundled database.
pub fn time_zone(field: &str, value: &str) -> Result<String, FieldError> {
    let value = single_line(field, value, 64)?;
    jiff::tz::TimeZone::get(&value)
        .map(|_| value.clone())
        .map_err(|_| {
            FieldError::new(
                field,
                "invalid_time_zone",
                format!("{field} must be an IANA time zone such as Europe/Berlin"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_line_breaks_and_controls() {
        for bad in [
            "a\r\nBcc: x@y",
            "a\nb",
            "nul\0",
            "ls\u{2028}x",
            "bidi\u{202E}x",
            "tab\tx",
        ] {
            assert_eq!(
                single_line("f", bad, 100).unwrap_err().code,
                "invalid_characters",
                "{bad:?}"
            );
        }
        assert_eq!(
            single_line("f", "  Zoë Müller ", 100).unwrap(),
            "Zoë Müller"
        );
        assert_eq!(single_line("f", "   ", 100).unwrap_err().code, "required");
        assert_eq!(single_line("f", "abcd", 3).unwrap_err().code, "too_long");
    }

    #[test]
    fn urls_must_be_http() {
        assert!(web_url("u", Some("javascript:alert(1)")).is_err());
        assert!(web_url("u", Some("data:text/html,x")).is_err());
        assert!(web_url("u", Some("https:///path")).is_err());
        assert!(web_url("u", Some("https://a b")).is_err());
        assert_eq!(
            web_url("u", Some("https://shop.example/x"))
                .unwrap()
                .as_deref(),
            Some("https://shop.example/x")
        );
        assert_eq!(web_url("u", None).unwrap(), None);
    }
}
