//! Everything a person reads: the one-shot report and the snapshot diff.

pub mod diff;
pub mod report;
