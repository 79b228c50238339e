//! fleetscope: which image every server runs, and how old it is.
//!
//! Data flows one way: `sources` -> `core::event` -> `core::inventory` -> `core::policy` ->
//! `views`. The core knows no screen and no SDK.

pub mod cli;
pub mod commands;
pub mod config;
pub mod core;
pub mod queue;
pub mod snapshot;
pub mod sources;
pub mod views;
