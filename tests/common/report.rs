//! A collection from a cloud's test server, reported as JSON, and the parts of that report the
//! tests look at. The cloud's config section and variables are the caller's.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use super::NOW;

/// Writes `config` to `dir/config.toml`, then runs
/// `fleetscope --report --format json --now NOW --config <it>` and `args`, without `removed`
/// from the environment, with `vars` and a data directory in `dir`. Its output, and the report
/// (null when stdout is not JSON).
pub fn json_report(
    dir: &Path,
    config: &str,
    args: &[&str],
    removed: &[&str],
    vars: Vec<(String, String)>,
) -> (Output, Value) {
    let mut command = configured(dir, config, &["--report", "--format", "json", "--now", NOW]);
    command.args(args);
    for key in removed {
        command.env_remove(key);
    }
    let output = command
        .envs(vars)
        .env("FLEETSCOPE_DATA_DIR", dir.join("data"))
        .output()
        .unwrap();
    let json = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (output, json)
}

/// Writes `config` to `dir/config.toml`: `fleetscope <args> --config <it>`.
pub fn configured(dir: &Path, config: &str, args: &[&str]) -> Command {
    let path = dir.join("config.toml");
    std::fs::write(&path, config).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_fleetscope"));
    command.args(args).arg("--config").arg(path);
    command
}

/// `["a", "b"]` as the inside of a TOML array: `"a", "b"`.
pub fn quoted(items: &[&str]) -> String {
    items
        .iter()
        .map(|item| format!("\"{item}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The element of the report's `list` whose `key` is `value`.
pub fn find<'a>(report: &'a Value, list: &str, key: &str, value: &str) -> &'a Value {
    report[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item[key] == value)
        .unwrap_or_else(|| panic!("{list}: {value} missing from {report:#}"))
}

pub fn instance<'a>(report: &'a Value, id: &str) -> &'a Value {
    find(report, "instances", "id", id)
}

pub fn by_name<'a>(report: &'a Value, name: &str) -> &'a Value {
    find(report, "instances", "name", name)
}

pub fn source<'a>(report: &'a Value, name: &str) -> &'a Value {
    find(report, "sources", "name", name)
}

pub fn group<'a>(report: &'a Value, name: &str) -> &'a Value {
    find(report, "groups", "name", name)
}
