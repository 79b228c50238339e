//! The filter language and what it sees of the evaluated fleet: shared by the UI's views and
//! the headless `--report --filter` and `queue add --filter`, so neither depends on the other.

pub mod data;
pub mod filter;
pub mod subject;
