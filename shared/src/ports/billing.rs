//! The port of failed invoices and their dunning.
