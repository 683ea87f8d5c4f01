//! The port of customers' loyalty ledgers.
