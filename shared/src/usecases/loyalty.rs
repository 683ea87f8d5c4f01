//! Redeeming and adjusting points.
