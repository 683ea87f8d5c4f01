//! Locale-aware dates for emails and pages.

use crate::domain::Locale;
use jiff::Timestamp;
use jiff::tz::TimeZone;

const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const MONTHS_DE: [&str; 12] = [
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
];
const MONTHS_FR: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];

/// A long date in `tz`: "20 November 2026", "20. November 2026", "20 novembre 2026".
pub fn long_date(at: Timestamp, tz: &str, locale: Locale) -> String {
    let zone = TimeZone::get(tz).unwrap_or(TimeZone::UTC);
    let date = at.to_zoned(zone).date();
    let month_index = usize::try_from(date.month() - 1).unwrap_or(0);
    let (months, sep) = match locale {
        Locale::En => (&MONTHS_EN, " "),
        Locale::De => (&MONTHS_DE, ". "),
        Locale::Fr => (&MONTHS_FR, " "),
    };
    let month = months.get(month_index).copied().unwrap_or_default();
    format!("{}{sep}{month} {}", date.day(), date.year())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_follow_locale_and_zone() {
        let at: Timestamp = "2026-11-20T23:30:00Z".parse().unwrap();
        assert_eq!(long_date(at, "UTC", Locale::En), "20 November 2026");
        assert_eq!(
            long_date(at, "Europe/Berlin", Locale::De),
            "21. November 2026"
        );
        assert_eq!(
            long_date(at, "America/New_York", Locale::Fr),
            "20 novembre 2026"
        );
        assert_eq!(long_date(at, "Not/AZone", Locale::En), "20 November 2026");
    }
}
