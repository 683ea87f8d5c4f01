//! billing-alert (in progress)
