//! Everything a person reads: the interactive UI, the one-shot report and the snapshot diff.

pub mod diff;
pub mod report;
pub mod tui;
