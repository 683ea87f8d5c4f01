//! Recording an email event.
