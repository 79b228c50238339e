//! What the integration tests share: the environment the real binary runs in (`env`), the
//! JSON report of a collection from a cloud's test server (`report`), and the UI driven
//! headless (`ui`, also used by the benches by path).
// Every test file compiles this module and uses its own part of it.
#![allow(dead_code)]

pub mod env;
pub mod report;
pub mod ui;

use std::process::Output;

use chrono::{DateTime, Utc};

/// The clock every test runs at.
pub const NOW: &str = "2026-11-01T00:00:00Z";

pub fn now() -> DateTime<Utc> {
    NOW.parse().unwrap()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The plan (stdout), then the progress and outcome (stderr).
pub fn output(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
