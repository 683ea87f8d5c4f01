//! A survey answer, an unsubscribe, preferences.
