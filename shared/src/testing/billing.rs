//! In memory: failed invoices and their dunning.
