//! Feedback surveys: scales, bands, and the summary a merchant reads.
//!
//! NPS asks 0–10 ("how likely are you to recommend us"): 0–6 detractors, 7–8 passives, 9–10
//! promoters; the score is %promoters − %detractors (−100…100). CSAT asks 1–5 ("how happy are
//! you"): 1–2 detractors (unhappy), 3 passive, 4–5 promoters (satisfied); the score is % satisfied.

use super::{CustomerId, FieldError, MerchantId, OrderId};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SurveyScale {
    #[default]
    Nps,
    Csat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Band {
    Detractor,
    Passive,
    Promoter,
}

impl SurveyScale {
    pub fn as_str(&self) -> &'static str {
        match self {
            SurveyScale::Nps => "nps",
            SurveyScale::Csat => "csat",
        }
    }

    pub fn min(&self) -> u8 {
        match self {
            SurveyScale::Nps => 0,
            SurveyScale::Csat => 1,
        }
    }

    pub fn max(&self) -> u8 {
        match self {
            SurveyScale::Nps => 10,
            SurveyScale::Csat => 5,
        }
    }

    pub fn scores(&self) -> impl Iterator<Item = u8> {
        self.min()..=self.max()
    }

    /// Parses a score of this scale (`field` names it in the error).
    pub fn score(&self, field: &str, raw: &str) -> Result<u8, FieldError> {
        raw.trim()
            .parse::<u8>()
            .ok()
            .filter(|s| (self.min()..=self.max()).contains(s))
            .ok_or_else(|| {
                FieldError::new(
                    field,
                    "out_of_range",
                    format!(
                        "{field} must be a whole number from {} to {}",
                        self.min(),
                        self.max()
                    ),
                )
            })
    }

    pub fn band(&self, score: u8) -> Band {
        match (self, score) {
            (SurveyScale::Nps, 0..=6) | (SurveyScale::Csat, 0..=2) => Band::Detractor,
            (SurveyScale::Nps, 7..=8) | (SurveyScale::Csat, 3) => Band::Passive,
            _ => Band::Promoter,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SurveySettings {
    pub scale: SurveyScale,
    /// How long the score links stay valid.
    pub link_valid_days: u32,
    /// After a promoter answer, the review request goes this many hours later (if it was due later).
    pub promoter_review_after_hours: u32,
}

impl SurveySettings {
    pub fn link_valid_days(&self) -> u32 {
        if self.link_valid_days == 0 {
            90
        } else {
            self.link_valid_days
        }
    }

    pub fn promoter_review_after_hours(&self) -> u32 {
        if self.promoter_review_after_hours == 0 {
            2
        } else {
            self.promoter_review_after_hours
        }
    }
}

/// A survey answer (the latest one per order counts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedbackRecord {
    pub merchant_id: MerchantId,
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub customer_email: String,
    #[serde(default)]
    pub customer_name: Option<String>,
    pub scale: SurveyScale,
    pub score: u8,
    pub band: Band,
    #[serde(default)]
    pub comment: Option<String>,
    pub answered_at: Timestamp,
    pub first_answered_at: Timestamp,
    /// How many times the customer answered (a later answer replaces the earlier one).
    pub answers: u32,
}

impl FeedbackRecord {
    /// The answer as a summary counts it.
    pub fn counted(&self) -> Answer {
        Answer {
            scale: self.scale,
            score: self.score,
            answered_at: self.answered_at,
        }
    }
}

/// The longest comment kept.
pub const MAX_COMMENT_CHARS: usize = 2000;

/// Cleans a free-text comment: control characters (except line breaks and tabs) removed, line
/// endings normalised, trimmed, at most [`MAX_COMMENT_CHARS`]. Empty becomes `None`.
pub fn clean_comment(raw: &str) -> Option<String> {
    let cleaned: String = raw
        .replace("\r\n", "\n")
        .chars()
        .filter(|c| *c == '\n' || *c == '\t' || !super::text::is_forbidden(*c))
        .take(MAX_COMMENT_CHARS)
        .collect();
    let trimmed = cleaned.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// One answer, as counted in a summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub scale: SurveyScale,
    pub score: u8,
    pub answered_at: Timestamp,
}

/// What a merchant reads for a period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub scale: SurveyScale,
    pub responses: u64,
    pub surveys_sent: u64,
    /// responses ÷ surveys sent in the period (None when none were sent).
    pub response_rate: Option<f64>,
    pub detractors: u64,
    pub passives: u64,
    pub promoters: u64,
    /// NPS (−100…100) or CSAT (% satisfied), rounded to one decimal; None without responses.
    pub score: Option<f64>,
}

/// Summarises the answers of `scale` (answers on another scale are left out).
pub fn summarise(scale: SurveyScale, answers: &[Answer], surveys_sent: u64) -> Summary {
    let (mut d, mut p, mut pr) = (0u64, 0u64, 0u64);
    for a in answers.iter().filter(|a| a.scale == scale) {
        match scale.band(a.score) {
            Band::Detractor => d += 1,
            Band::Passive => p += 1,
            Band::Promoter => pr += 1,
        }
    }
    let n = d + p + pr;
    let pct = |x: u64| x as f64 * 100.0 / n as f64;
    let score = (n > 0).then(|| {
        let raw = match scale {
            SurveyScale::Nps => pct(pr) - pct(d),
            SurveyScale::Csat => pct(pr),
        };
        (raw * 10.0).round() / 10.0
    });
    Summary {
        scale,
        responses: n,
        surveys_sent,
        response_rate: (surveys_sent > 0)
            .then(|| ((n as f64 / surveys_sent as f64) * 1000.0).round() / 1000.0),
        detractors: d,
        passives: p,
        promoters: pr,
        score,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bands() {
        let nps = SurveyScale::Nps;
        assert_eq!(nps.band(0), Band::Detractor);
        assert_eq!(nps.band(6), Band::Detractor);
        assert_eq!(nps.band(7), Band::Passive);
        assert_eq!(nps.band(8), Band::Passive);
        assert_eq!(nps.band(9), Band::Promoter);
        let csat = SurveyScale::Csat;
        assert_eq!(csat.band(2), Band::Detractor);
        assert_eq!(csat.band(3), Band::Passive);
        assert_eq!(csat.band(4), Band::Promoter);
    }

    #[test]
    fn scores_outside_the_scale_are_refused() {
        assert_eq!(SurveyScale::Nps.score("score", "10").unwrap(), 10);
        assert_eq!(SurveyScale::Nps.score("score", " 0 ").unwrap(), 0);
        for bad in ["11", "-1", "x", "", "3.5", "256"] {
            assert_eq!(
                SurveyScale::Nps.score("score", bad).unwrap_err().field,
                "score"
            );
        }
        assert!(SurveyScale::Csat.score("score", "0").is_err());
        assert!(SurveyScale::Csat.score("score", "6").is_err());
    }

    #[test]
    fn nps_is_promoters_minus_detractors() {
        let at = Timestamp::UNIX_EPOCH;
        let answers: Vec<_> = [10, 9, 9, 8, 3]
            .into_iter()
            .map(|score| Answer {
                scale: SurveyScale::Nps,
                score,
                answered_at: at,
            })
            .collect();
        let s = summarise(SurveyScale::Nps, &answers, 10);
        assert_eq!((s.promoters, s.passives, s.detractors), (3, 1, 1));
        assert_eq!(s.score, Some(40.0));
        assert_eq!(s.response_rate, Some(0.5));
        let empty = summarise(SurveyScale::Nps, &[], 0);
        assert_eq!((empty.score, empty.response_rate), (None, None));
    }

    #[test]
    fn comments_are_cleaned_and_bounded() {
        assert_eq!(clean_comment("  \n "), None);
        assert_eq!(
            clean_comment("line one\r\nline\u{0}two\u{2028}").as_deref(),
            Some("line one\nlinetwo")
        );
        assert_eq!(
            clean_comment(&"x".repeat(5000)).unwrap().chars().count(),
            MAX_COMMENT_CHARS
        );
    }

    proptest! {
        #[test]
        fn nps_stays_within_bounds(scores in proptest::collection::vec(0u8..=10, 1..200)) {
            let answers: Vec<_> = scores.iter().map(|&score| Answer {
                scale: SurveyScale::Nps, score, answered_at: Timestamp::UNIX_EPOCH,
            }).collect();
            let s = summarise(SurveyScale::Nps, &answers, scores.len() as u64);
            let v = s.score.unwrap();
            prop_assert!((-100.0..=100.0).contains(&v));
            prop_assert_eq!(s.promoters + s.passives + s.detractors, scores.len() as u64);
            prop_assert_eq!(s.response_rate, Some(1.0));
        }
    }
}
