//! In memory: shipments and their checkpoints.
