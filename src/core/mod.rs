//! The core: what fleetscope knows and concludes. No screen, no SDK, no clock of its own.

pub mod event;
pub mod inventory;
pub mod lineage;
pub mod model;
pub mod policy;
