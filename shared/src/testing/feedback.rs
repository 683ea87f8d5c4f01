//! In memory: customers' answers and choices.
