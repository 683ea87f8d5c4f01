//! In memory: customers' loyalty ledgers.
