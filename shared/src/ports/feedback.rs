//! The port of customers' answers and choices.
