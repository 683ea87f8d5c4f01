//! A dunning step.
