//! fleetscope: which image every server runs, and how old it is.
//!
//! Data flows one way: `clouds` (sources) -> `core::event` -> `core::inventory` -> `core::policy` ->
//! `views`. The core knows no screen and no SDK.

pub mod cli;
pub mod clouds;
pub mod commands;
pub mod config;
pub mod core;
pub mod files;
pub mod log;
pub mod query;
pub mod queue;
pub mod remote;
pub mod snapshot;
pub mod text;
pub mod views;
