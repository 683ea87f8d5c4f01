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
/// A rate (0.0025) as a short percentage the locale's way: `0.25%` in English, `0,25 %` in German
/// and French (decimal comma; a no-break space before the sign, narrow in French). At most two
/// decimals, trailing zeros dropped.
pub fn percent(rate: f64, locale: Locale) -> String {
    let fixed = format!("{:.2}", rate * 100.0);
    let short = fixed.trim_end_matches('0').trim_end_matches('.');
    match locale {
        Locale::En => format!("{short}%"),
        Locale::De => format!("{}\u{a0}%", short.replace('.', ",")),
        Locale::Fr => format!("{}\u{202f}%", short.replace('.', ",")),
    }
}

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

/// A long date with the time of day in `tz`, 24-hour: "20 November 2026, 14:05",
/// "20. November 2026, 14:05", "20 novembre 2026, 14:05".
pub fn date_time(at: Timestamp, tz: &str, locale: Locale) -> String {
    let zone = TimeZone::get(tz).unwrap_or(TimeZone::UTC);
    let time = at.to_zoned(zone).time();
    format!(
        "{}, {:02}:{:02}",
        long_date(at, tz, locale),
        time.hour(),
        time.minute()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_follow_the_locale() {
        assert_eq!(percent(0.0025, Locale::En), "0.25%");
        assert_eq!(percent(0.001, Locale::En), "0.1%");
        assert_eq!(percent(0.5, Locale::En), "50%");
        assert_eq!(percent(0.0025, Locale::De), "0,25\u{a0}%");
        assert_eq!(percent(0.001, Locale::Fr), "0,1\u{202f}%");
    }

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
        assert_eq!(
            date_time(at, "Europe/Berlin", Locale::De),
            "21. November 2026, 00:30"
        );
        assert_eq!(date_time(at, "UTC", Locale::En), "20 November 2026, 23:30");
    }
}
