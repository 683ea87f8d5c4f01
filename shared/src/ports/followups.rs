//! The port of the post-delivery follow-ups.
