//! Money as integer minor units plus an ISO 4217 currency, and locale-aware formatting.

use super::{FieldError, Locale};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Active ISO 4217 currency codes with their minor-unit exponent.
const CURRENCIES: &[(&str, u8)] = &[
    ("AED", 2),
    ("AFN", 2),
    ("ALL", 2),
    ("AMD", 2),
    ("ANG", 2),
    ("AOA", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("AWG", 2),
    ("AZN", 2),
    ("BAM", 2),
    ("BBD", 2),
    ("BDT", 2),
    ("BGN", 2),
    ("BHD", 3),
    ("BIF", 0),
    ("BMD", 2),
    ("BND", 2),
    ("BOB", 2),
    ("BRL", 2),
    ("BSD", 2),
    ("BTN", 2),
    ("BWP", 2),
    ("BYN", 2),
    ("BZD", 2),
    ("CAD", 2),
    ("CDF", 2),
    ("CHF", 2),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("CRC", 2),
    ("CUP", 2),
    ("CVE", 2),
    ("CZK", 2),
    ("DJF", 0),
    ("DKK", 2),
    ("DOP", 2),
    ("DZD", 2),
    ("EGP", 2),
    ("ERN", 2),
    ("ETB", 2),
    ("EUR", 2),
    ("FJD", 2),
    ("FKP", 2),
    ("GBP", 2),
    ("GEL", 2),
    ("GHS", 2),
    ("GIP", 2),
    ("GMD", 2),
    ("GNF", 0),
    ("GTQ", 2),
    ("GYD", 2),
    ("HKD", 2),
    ("HNL", 2),
    ("HTG", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("IQD", 3),
    ("IRR", 2),
    ("ISK", 0),
    ("JMD", 2),
    ("JOD", 3),
    ("JPY", 0),
    ("KES", 2),
    ("KGS", 2),
    ("KHR", 2),
    ("KMF", 0),
    ("KPW", 2),
    ("KRW", 0),
    ("KWD", 3),
    ("KYD", 2),
    ("KZT", 2),
    ("LAK", 2),
    ("LBP", 2),
    ("LKR", 2),
    ("LRD", 2),
    ("LSL", 2),
    ("LYD", 3),
    ("MAD", 2),
    ("MDL", 2),
    ("MGA", 2),
    ("MKD", 2),
    ("MMK", 2),
    ("MNT", 2),
    ("MOP", 2),
    ("MRU", 2),
    ("MUR", 2),
    ("MVR", 2),
    ("MWK", 2),
    ("MXN", 2),
    ("MYR", 2),
    ("MZN", 2),
    ("NAD", 2),
    ("NGN", 2),
    ("NIO", 2),
    ("NOK", 2),
    ("NPR", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PAB", 2),
    ("PEN", 2),
    ("PGK", 2),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("PYG", 0),
    ("QAR", 2),
    ("RON", 2),
    ("RSD", 2),
    ("RUB", 2),
    ("RWF", 0),
    ("SAR", 2),
    ("SBD", 2),
    ("SCR", 2),
    ("SDG", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("SHP", 2),
    ("SLE", 2),
    ("SOS", 2),
    ("SRD", 2),
    ("SSP", 2),
    ("STN", 2),
    ("SVC", 2),
    ("SYP", 2),
    ("SZL", 2),
    ("THB", 2),
    ("TJS", 2),
    ("TMT", 2),
    ("TND", 3),
    ("TOP", 2),
    ("TRY", 2),
    ("TTD", 2),
    ("TWD", 2),
    ("TZS", 2),
    ("UAH", 2),
    ("UGX", 0),
    ("USD", 2),
    ("UYU", 2),
    ("UZS", 2),
    ("VES", 2),
    ("VND", 0),
    ("VUV", 0),
    ("WST", 2),
    ("XAF", 0),
    ("XCD", 2),
    ("XCG", 2),
    ("XOF", 0),
    ("XPF", 0),
    ("YER", 2),
    ("ZAR", 2),
    ("ZMW", 2),
    ("ZWG", 2),
];

/// Largest amount accepted anywhere (10^13 minor units): far above any order, far below overflow.
pub const MAX_AMOUNT: i64 = 10_000_000_000_000;

/// An ISO 4217 currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency {
    code: [u8; 3],
    exponent: u8,
}

impl Currency {
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        let upper = value.trim().to_ascii_uppercase();
        CURRENCIES
            .binary_search_by(|(code, _)| (*code).cmp(upper.as_str()))
            .ok()
            .and_then(|i| CURRENCIES.get(i))
            .map(|(code, exponent)| {
                let b = code.as_bytes();
                Currency {
                    code: [b[0], b[1], b[2]],
                    exponent: *exponent,
                }
            })
            .ok_or_else(|| {
                FieldError::new(
                    field,
                    "invalid_currency",
                    format!("{field} must be an ISO 4217 currency code such as EUR or USD"),
                )
            })
    }

    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.code).unwrap_or("XXX")
    }

    /// Digits after the decimal separator (2 for EUR, 0 for JPY, 3 for KWD).
    pub fn exponent(&self) -> u8 {
        self.exponent
    }

    /// Minor units in one whole unit.
    pub fn minor_per_unit(&self) -> i64 {
        10_i64.pow(u32::from(self.exponent))
    }

    fn symbol(&self) -> Option<&'static str> {
        Some(match self.code() {
            "EUR" => "€",
            "USD" => "$",
            "GBP" => "£",
            "JPY" => "¥",
            "INR" => "₹",
            "KRW" => "₩",
            "ILS" => "₪",
            "NGN" => "₦",
            "VND" => "₫",
            "UAH" => "₴",
            "PHP" => "₱",
            _ => return None,
        })
    }
}

impl TryFrom<String> for Currency {
    type Error = FieldError;
    fn try_from(value: String) -> Result<Self, FieldError> {
        Self::parse("currency", &value)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.code().to_owned()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An amount in minor units of a currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub amount: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount: i64, currency: Currency) -> Self {
        Self { amount, currency }
    }

    /// Formats for display in `locale`: `€1,234.50` (en), `1.234,50 €` (de), `1 234,50 €` (fr).
    pub fn format(&self, locale: Locale) -> String {
        let exp = usize::from(self.currency.exponent());
        let negative = self.amount < 0;
        let abs = self.amount.unsigned_abs();
        let per = 10_u64.pow(exp as u32);
        let (whole, frac) = (abs / per, abs % per);
        let (group, decimal) = locale.number_separators();
        let digits = whole.to_string();
        let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push_str(group);
            }
            grouped.push(ch);
        }
        let number = if exp > 0 {
            format!("{grouped}{decimal}{frac:0exp$}")
        } else {
            grouped
        };
        let sign = if negative { "-" } else { "" };
        match (locale.symbol_first(), self.currency.symbol()) {
            (true, Some(sym)) => format!("{sign}{sym}{number}"),
            (true, None) => format!("{sign}{} {number}", self.currency.code()),
            (false, Some(sym)) => format!("{sign}{number}\u{a0}{sym}"),
            (false, None) => format!("{sign}{number}\u{a0}{}", self.currency.code()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cur(c: &str) -> Currency {
        Currency::parse("c", c).unwrap()
    }

    #[test]
    fn table_is_sorted_for_binary_search() {
        assert!(CURRENCIES.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn parses_iso_codes_only() {
        assert_eq!(cur("eur").code(), "EUR");
        assert_eq!(cur("JPY").exponent(), 0);
        assert_eq!(cur("KWD").exponent(), 3);
        for bad in ["", "EU", "EURO", "XYZ", "€"] {
            assert!(Currency::parse("currency", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_per_locale() {
        assert_eq!(
            Money::new(123_450, cur("EUR")).format(Locale::En),
            "€1,234.50"
        );
        assert_eq!(
            Money::new(123_450, cur("EUR")).format(Locale::De),
            "1.234,50\u{a0}€"
        );
        assert_eq!(
            Money::new(123_450, cur("EUR")).format(Locale::Fr),
            "1\u{202f}234,50\u{a0}€"
        );
        assert_eq!(Money::new(5, cur("USD")).format(Locale::En), "$0.05");
        assert_eq!(Money::new(1500, cur("JPY")).format(Locale::En), "¥1,500");
        assert_eq!(Money::new(1500, cur("CHF")).format(Locale::En), "CHF 15.00");
        assert_eq!(Money::new(-250, cur("GBP")).format(Locale::En), "-£2.50");
        assert_eq!(
            Money::new(1_234_567, cur("KWD")).format(Locale::De),
            "1.234,567\u{a0}KWD"
        );
    }

    proptest! {
        #[test]
        fn formatting_keeps_every_digit(amount in 0i64..MAX_AMOUNT) {
            let s = Money::new(amount, cur("USD")).format(Locale::En);
            let digits: String = s.chars().filter(char::is_ascii_digit).collect();
            let expected = amount.to_string();
            prop_assert_eq!(digits.trim_start_matches('0'), expected.trim_start_matches('0'));
        }
    }
}
