//! Supported locales. Anything a customer or merchant sends is matched to the nearest supported
//! locale (`de-AT` → `de`), falling back to the merchant's default.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Locale {
    #[default]
    En,
    De,
    Fr,
}

impl Locale {
    pub const ALL: [Locale; 3] = [Locale::En, Locale::De, Locale::Fr];

    pub fn as_str(&self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::De => "de",
            Locale::Fr => "fr",
        }
    }

    /// The language's own name, for a language picker.
    pub fn native_name(&self) -> &'static str {
        match self {
            Locale::En => "English",
            Locale::De => "Deutsch",
            Locale::Fr => "Français",
        }
    }

    /// Matches a BCP 47 tag (`de`, `de-AT`, `fr_CA`) to a supported locale, if any.
    pub fn from_tag(tag: &str) -> Option<Self> {
        let lang = tag.split(['-', '_']).next()?.to_ascii_lowercase();
        match lang.as_str() {
            "en" => Some(Locale::En),
            "de" => Some(Locale::De),
            "fr" => Some(Locale::Fr),
            _ => None,
        }
    }

    /// Whether `tag` looks like a BCP 47 language tag at all.
    pub fn is_well_formed_tag(tag: &str) -> bool {
        let mut parts = tag.split(['-', '_']);
        let lang_ok = parts.next().is_some_and(|l| {
            (2..=3).contains(&l.len()) && l.chars().all(|c| c.is_ascii_alphabetic())
        });
        lang_ok
            && tag.len() <= 35
            && parts
                .all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
    }

    /// (grouping separator, decimal separator)
    pub fn number_separators(&self) -> (&'static str, &'static str) {
        match self {
            Locale::En => (",", "."),
            Locale::De => (".", ","),
            Locale::Fr => ("\u{202f}", ","),
        }
    }

    /// Whether a currency symbol goes before the number.
    pub fn symbol_first(&self) -> bool {
        matches!(self, Locale::En)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_tags() {
        assert_eq!(Locale::from_tag("de-AT"), Some(Locale::De));
        assert_eq!(Locale::from_tag("FR_ca"), Some(Locale::Fr));
        assert_eq!(Locale::from_tag("es"), None);
        assert!(Locale::is_well_formed_tag("en-GB"));
        assert!(!Locale::is_well_formed_tag("english!"));
        assert!(!Locale::is_well_formed_tag(""));
    }
}
