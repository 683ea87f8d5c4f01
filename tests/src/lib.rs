//! Scenario tests live in tests/*.rs.
