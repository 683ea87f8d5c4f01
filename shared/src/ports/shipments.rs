//! The port of shipments and their checkpoints.
