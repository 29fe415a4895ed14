//! Tests of the whole engine on the simulated file system (`vfs::sim`): power cuts and I/O
//! faults made deterministic. They live inside the crate because the file-system seam is
//! crate-private.

mod findings;
mod intruder;
mod power_loss;
mod reserved;
pub(crate) mod support;
