//! Helpers shared by the integration tests (and, by path, the benches). Each test binary uses
//! only part of them, so unused ones are expected there.
#![allow(dead_code)]

pub mod ui;
