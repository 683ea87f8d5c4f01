//! Processing a due follow-up.
