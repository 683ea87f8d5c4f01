//! In memory: the post-delivery follow-ups.
