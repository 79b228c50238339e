//! The real binary, end to end on the demo fleet: reproducible reports that agree with each
//! other, snapshots and diffs, and one-line errors with exit code 2 for bad input.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use common::NOW;
use common::env::Env;

impl Env {
    /// The binary with a private config and data directory, and no FLEETSCOPE_* from outside.
    fn new() -> Env {
        Env::isolated(&["FLEETSCOPE_", "AWS_"])
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

fn demo_report(env: &Env, format: &str) -> Output {
    let output = env.run(&["--demo", "--report", "--now", NOW, "--format", format]);
    assert!(output.status.success(), "{}", stderr(&output));
    output
}

#[test]
fn demo_report_is_byte_for_byte_reproducible() {
    let env = Env::new();
    for format in ["md", "json", "csv"] {
        let first = demo_report(&env, format).stdout;
        let second = demo_report(&env, format).stdout;
        assert!(!first.is_empty());
        assert_eq!(first, second, "{format} differs between runs");
    }
}

/// The markdown summary row of a cloud: flagged, unknown, outdated, stale, current, total, long-lived.
fn markdown_summary(md: &str) -> BTreeMap<String, Vec<u64>> {
    md.lines()
        .skip_while(|l| !l.starts_with("## Summary"))
        .take_while(|l| !l.starts_with("## Images"))
        .filter(|l| l.starts_with("| ") && !l.starts_with("| cloud"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            let numbers = cells[1..].iter().map(|c| c.parse().unwrap()).collect();
            (cells[0].trim_matches('*').to_owned(), numbers)
        })
        .collect()
}

#[test]
fn markdown_json_and_csv_agree() {
    let env = Env::new();
    let md = stdout(&demo_report(&env, "md"));
    let json: serde_json::Value =
        serde_json::from_slice(&demo_report(&env, "json").stdout).unwrap();
    let csv_text = stdout(&demo_report(&env, "csv"));

    let verdicts = ["flagged", "unknown", "outdated", "stale", "current"];
    let md_summary = markdown_summary(&md);
    let mut csv_counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut csv_long_lived: BTreeMap<String, u64> = BTreeMap::new();
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (cloud_col, verdict_col, long_col) =
        (column("cloud"), column("verdict"), column("long_lived"));
    let mut rows = 0;
    for record in reader.records() {
        let record = record.unwrap();
        rows += 1;
        *csv_counts
            .entry((record[cloud_col].to_owned(), record[verdict_col].to_owned()))
            .or_default() += 1;
        if &record[long_col] == "true" {
            *csv_long_lived
                .entry(record[cloud_col].to_owned())
                .or_default() += 1;
        }
    }
    assert_eq!(rows, 1500);
    assert_eq!(json["instances"].as_array().unwrap().len(), 1500);
    assert_eq!(json["summary"]["instances"], 1500);

    for cloud in ["aws", "azure", "gcp"] {
        let md_row = &md_summary[cloud];
        let json_counts = &json["summary"]["by_cloud"][cloud];
        for (i, verdict) in verdicts.iter().enumerate() {
            let csv_count = csv_counts
                .get(&(cloud.to_owned(), (*verdict).to_owned()))
                .copied()
                .unwrap_or(0);
            assert_eq!(md_row[i], csv_count, "{cloud} {verdict}: markdown vs csv");
            assert_eq!(
                json_counts[verdict].as_u64().unwrap(),
                csv_count,
                "{cloud} {verdict}: json vs csv"
            );
        }
        assert_eq!(
            md_row[6],
            csv_long_lived.get(cloud).copied().unwrap_or(0),
            "{cloud} long-lived"
        );
        assert_eq!(json_counts["long_lived"].as_u64().unwrap(), md_row[6]);
    }
    // The demo is built to show every verdict.
    for verdict in verdicts {
        assert!(
            json["summary"]["total"][verdict].as_u64().unwrap() > 0,
            "no {verdict} instance in the demo"
        );
    }
    // Each JSON instance carries the verdict the CSV gives it.
    let json_by_id: BTreeMap<&str, &str> = json["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["id"].as_str().unwrap(), i["verdict"].as_str().unwrap()))
        .collect();
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    for record in reader.records() {
        let record = record.unwrap();
        assert_eq!(json_by_id[&record[0]], &record[verdict_col]);
    }
}

#[test]
fn markdown_lists_what_reviewers_need() {
    let env = Env::new();
    let md = stdout(&demo_report(&env, "md"));
    for heading in [
        "## Summary",
        "## Images in use",
        "## Lineages",
        "## Groups with skew or template drift",
        "## Non-current instances",
        "## Sources",
    ] {
        assert!(md.contains(heading), "missing {heading}");
    }
    assert!(md.contains("(drift)"), "template drift not shown");
    assert!(
        md.contains("tagged vulnerable=true"),
        "scanner flag not shown"
    );
    assert!(
        md.contains("InvalidAMIID.NotFound"),
        "deleted image not shown"
    );

    let limited = env.run(&["--demo", "--report", "--now", NOW, "--limit", "5"]);
    let limited = stdout(&limited);
    let rows = limited
        .lines()
        .skip_while(|l| !l.starts_with("## Non-current"))
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .filter(|l| l.starts_with("| `"))
        .count();
    assert_eq!(rows, 5);
    assert!(
        limited.contains("more non-current instances left out (--limit 5)"),
        "{limited}"
    );
}

#[test]
fn fail_on_sets_the_exit_code() {
    let env = Env::new();
    let failing = env.run(&["--demo", "--report", "--now", NOW, "--fail-on", "flagged"]);
    assert_eq!(failing.status.code(), Some(1));
    // A fleet whose only image is fresh and golden has nothing at or above stale.
    let clean = env.write(
        "clean.json",
        br#"{"schema_version": 1, "kind": "snapshot", "taken_at": "2026-11-01T00:00:00Z",
            "sources": [{"name": "s", "cloud": "aws", "state": "done", "pages": 1, "instances": 1}],
            "images": [{"key": "ami-1", "cloud": "aws", "name": "web-1", "created": "2026-10-30T00:00:00Z", "owner": "1", "readable": true}],
            "instances": [{"id": "i-1", "cloud": "aws", "source": "s", "account": "1", "region": "r",
                           "state": "running", "launched": "2026-10-31T00:00:00Z", "image": "ami-1"}]}"#,
    );
    let passing = env.run(&[
        "--snapshot",
        clean.to_str().unwrap(),
        "--report",
        "--fail-on",
        "stale",
    ]);
    assert_eq!(passing.status.code(), Some(0), "{}", stderr(&passing));
    let bad = env.run(&["--demo", "--report", "--fail-on", "current"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn snapshot_round_trip_and_json_report_as_snapshot() {
    let env = Env::new();
    let snap = env.path("fleet.json");
    let direct = env.run(&[
        "--demo",
        "--report",
        "--now",
        NOW,
        "--save-snapshot",
        snap.to_str().unwrap(),
    ]);
    assert!(direct.status.success(), "{}", stderr(&direct));
    let from_snapshot = env.run(&["--snapshot", snap.to_str().unwrap(), "--report"]);
    assert!(from_snapshot.status.success(), "{}", stderr(&from_snapshot));
    assert_eq!(
        stdout(&direct),
        stdout(&from_snapshot),
        "a snapshot must report like the fleet it saved"
    );

    let report = env.path("report.json");
    let written = env.run(&[
        "--demo",
        "--report",
        "--now",
        NOW,
        "--format",
        "json",
        "--output",
        report.to_str().unwrap(),
    ]);
    assert!(written.status.success());
    assert!(written.stdout.is_empty());
    let from_report = env.run(&["--snapshot", report.to_str().unwrap(), "--report"]);
    assert!(from_report.status.success(), "{}", stderr(&from_report));
    assert_eq!(
        stdout(&direct),
        stdout(&from_report),
        "a JSON report loads as the snapshot it carries"
    );
}

#[test]
fn diff_shows_what_changed() {
    let env = Env::new();
    let old = env.path("old.json");
    let out = env.run(&[
        "--demo",
        "--report",
        "--now",
        NOW,
        "--save-snapshot",
        old.to_str().unwrap(),
        "--output",
        "/dev/null",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // A month later: one server gone, one new, one rebuilt on another image, and every image older.
    let mut snapshot: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&old).unwrap()).unwrap();
    snapshot["taken_at"] = "2026-12-01T00:00:00Z".into();
    let instances = snapshot["instances"].as_array_mut().unwrap();
    let removed = instances.remove(0);
    let mut added = instances[0].clone();
    added["id"] = "i-0new".into();
    instances.push(added);
    let other_image = instances
        .iter()
        .map(|i| i["image"].clone())
        .find(|i| *i != instances[1]["image"])
        .unwrap();
    instances[1]["image"] = other_image;
    let new = env.write("new.json", &serde_json::to_vec(&snapshot).unwrap());

    let json = env.run(&[
        "diff",
        old.to_str().unwrap(),
        new.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(json.status.success(), "{}", stderr(&json));
    let diff: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let count = |key: &str| diff[key].as_array().unwrap().len();
    assert_eq!(diff["old_instances"], 1500);
    assert_eq!(diff["new_instances"], 1500);
    assert_eq!(count("added"), 1);
    assert_eq!(diff["added"][0]["id"], "i-0new");
    assert_eq!(count("removed"), 1);
    assert_eq!(diff["removed"][0]["id"], removed["id"]);
    assert_eq!(count("moved"), 1);
    assert!(
        count("verdict_changes") > 100,
        "images aged a month: {}",
        count("verdict_changes")
    );
    let md = stdout(&env.run(&["diff", old.to_str().unwrap(), new.to_str().unwrap()]));
    assert!(
        md.contains("1 added, 1 removed, 1 moved to another image"),
        "{md}"
    );
    assert!(md.contains("| current | stale |"), "{md}");

    let same = env.run(&[
        "diff",
        old.to_str().unwrap(),
        old.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let same: serde_json::Value = serde_json::from_slice(&same.stdout).unwrap();
    for key in ["added", "removed", "moved", "verdict_changes"] {
        assert!(same[key].as_array().unwrap().is_empty(), "{key}");
    }
}

fn assert_one_line_error(output: &Output, names: &Path, contains: &str) {
    assert_eq!(output.status.code(), Some(2), "{}", stderr(output));
    let err = stderr(output);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(
        err.contains(&names.display().to_string()),
        "names the file: {err}"
    );
    assert!(err.contains(contains), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(output.stdout.is_empty());
}

#[test]
fn bad_snapshots_are_one_line_errors() {
    let env = Env::new();
    let good = env.path("good.json");
    let out = env.run(&[
        "--demo",
        "--demo-size",
        "50",
        "--report",
        "--now",
        NOW,
        "--save-snapshot",
        good.to_str().unwrap(),
        "--output",
        "/dev/null",
    ]);
    assert!(out.status.success());
    let bytes = std::fs::read(&good).unwrap();
    let wrong_version = String::from_utf8(bytes.clone()).unwrap().replacen(
        "\"schema_version\": 1",
        "\"schema_version\": 99",
        1,
    );
    let cases: [(&str, Vec<u8>, &str); 6] = [
        ("empty.json", Vec::new(), "empty"),
        (
            "truncated.json",
            bytes[..bytes.len() / 2].to_vec(),
            "truncated",
        ),
        (
            "corrupt.json",
            b"{\"schema_version\": 1, \"kind\": \"snapshot\", ]".to_vec(),
            "not valid JSON",
        ),
        (
            "version.json",
            wrong_version.into_bytes(),
            "schema_version 99 is not supported",
        ),
        (
            "other.json",
            b"{\"hello\": 1}".to_vec(),
            "not a fleetscope snapshot",
        ),
        (
            "binary.json",
            vec![0xff, 0xfe, 0x00, 0x12],
            "not valid JSON",
        ),
    ];
    for (name, content, contains) in cases {
        let path = env.write(name, &content);
        let output = env.run(&["--snapshot", path.to_str().unwrap(), "--report"]);
        assert_one_line_error(&output, &path, contains);
        let diff = env.run(&["diff", good.to_str().unwrap(), path.to_str().unwrap()]);
        assert_one_line_error(&diff, &path, contains);
    }
    let missing = env.path("missing.json");
    assert_one_line_error(
        &env.run(&["--snapshot", missing.to_str().unwrap(), "--report"]),
        &missing,
        "cannot read",
    );
}

#[test]
fn bad_configs_are_one_line_errors() {
    let env = Env::new();
    let cases: [(&str, &[u8], &str); 6] = [
        ("empty.toml", b"", "empty"),
        (
            "truncated.toml",
            b"version = 1\n[policy]\nmax_image_age_days = ",
            ":3:",
        ),
        ("corrupt.toml", b"version = 1\n[policy\n", ":2:"),
        (
            "version.toml",
            b"version = 7\n",
            "config version 7 is not supported",
        ),
        (
            "unknown.toml",
            b"version = 1\n[policy]\nmax_age_days = 3\n",
            ":3:1: unknown field `max_age_days`",
        ),
        (
            "type.toml",
            b"version = 1\n[aws]\nconcurrency = \"lots\"\n",
            ":3:15: invalid type",
        ),
    ];
    for (name, content, contains) in cases {
        let path = env.write(name, content);
        let output = env.run(&["--config", path.to_str().unwrap(), "--demo", "--report"]);
        assert_one_line_error(&output, &path, contains);
    }
    let missing = env.path("missing.toml");
    assert_one_line_error(
        &env.run(&["--config", missing.to_str().unwrap(), "config"]),
        &missing,
        "cannot read",
    );
}

#[test]
fn config_command_shows_origins() {
    let env = Env::new();
    let path = env.write("c.toml", b"version = 1\n[policy]\nmax_image_age_days = 9\n");
    let mut command = Command::new(env!("CARGO_BIN_EXE_fleetscope"));
    let output = command
        .args(["--config", path.to_str().unwrap(), "config"])
        .env("FLEETSCOPE_AWS_REGIONS", "us-east-1,eu-west-1")
        .env("FLEETSCOPE_DATA_DIR", env.path("data"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains(&format!(
            "max_image_age_days = 9  # file {}",
            path.display()
        )),
        "{text}"
    );
    assert!(
        text.contains("regions = [\"us-east-1\", \"eu-west-1\"]  # env FLEETSCOPE_AWS_REGIONS"),
        "{text}"
    );
    assert!(
        text.contains("max_instance_age_days = 30  # default"),
        "{text}"
    );
}

#[test]
fn no_sources_is_a_clear_error() {
    let env = Env::new();
    let output = env.run(&["--report"]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(
        err.contains("no sources configured") && err.contains("--demo"),
        "{err}"
    );
}

#[test]
fn queue_commands_on_an_empty_queue() {
    let env = Env::new();
    let list = env.run(&["queue", "list"]);
    assert!(list.status.success(), "{}", stderr(&list));
    assert!(stdout(&list).contains("The queue is empty."));
    let export = env.run(&["queue", "export", "--format", "json"]);
    let queue: serde_json::Value = serde_json::from_slice(&export.stdout).unwrap();
    assert_eq!(queue["entries"].as_array().unwrap().len(), 0);
    std::fs::create_dir_all(env.path("data")).unwrap();
    env.write("data/queue.json", b"{\"version\": 1, \"entries\": [");
    let damaged = env.run(&["queue", "list"]);
    assert_one_line_error(&damaged, &env.path("data/queue.json"), "damaged queue file");
}

#[test]
fn queue_clear_moves_a_damaged_queue_aside_and_starts_empty() {
    let env = Env::new();
    std::fs::create_dir_all(env.path("data")).unwrap();
    env.write("data/queue.json", b"garbage");
    let clear = env.run(&["queue", "clear", "--yes"]);
    assert!(clear.status.success(), "{}", stderr(&clear));
    assert!(
        stderr(&clear).contains("Moved the damaged queue to"),
        "{}",
        stderr(&clear)
    );
    let aside: Vec<String> = std::fs::read_dir(env.path("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("queue.json.damaged-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(
        std::fs::read(env.path("data").join(&aside[0])).unwrap(),
        b"garbage",
        "kept as it was for a look"
    );
    let list = env.run(&["queue", "list"]);
    assert!(list.status.success(), "{}", stderr(&list));
    assert!(stdout(&list).contains("The queue is empty."));
}

#[test]
fn usage_errors_are_one_line_with_a_pointer_to_help() {
    let env = Env::new();
    for args in [
        &["--bogus"][..],
        &["--format", "json"],
        &["diff", "only-one.json"],
        &["--demo", "--report", "--fail-on", "sometimes"],
    ] {
        let output = env.run(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let err = stderr(&output);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("fleetscope: "), "{err}");
        assert!(err.contains("(see fleetscope --help)"), "{err}");
        assert!(output.stdout.is_empty());
    }
    let help = env.run(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(stdout(&help).contains("--filter <QUERY>"));
}

#[test]
fn no_error_names_an_internal_type() {
    let env = Env::new();
    for (name, bytes) in [
        ("array.json", &b"[1, 2]"[..]),
        (
            "bad-instance.json",
            br#"{"schema_version": 1, "kind": "snapshot", "taken_at": "2026-11-01T00:00:00Z",
                "sources": [], "images": [], "instances": [3]}"#,
        ),
    ] {
        let path = env.write(name, bytes);
        let output = env.run(&["--snapshot", path.to_str().unwrap(), "--report"]);
        assert_one_line_error(&output, &path, "not a fleetscope snapshot");
        let err = stderr(&output);
        for internal in ["Snapshot", "struct", "Instance", "Header"] {
            assert!(!err.contains(internal), "{internal}: {err}");
        }
    }
}

#[test]
fn a_closed_pipe_ends_quietly() {
    use std::io::Read;
    let mut child = Command::new(env!("CARGO_BIN_EXE_fleetscope"))
        .args([
            "--demo",
            "--demo-size",
            "20000",
            "--report",
            "--format",
            "csv",
            "--now",
            NOW,
        ])
        .env(
            "FLEETSCOPE_DATA_DIR",
            std::env::temp_dir().join("fleetscope-pipe-test"),
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 64];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // The reader is gone, as `| head` goes.
    let output = child.wait_with_output().unwrap();
    assert_eq!(stderr(&output), "", "nothing said about the pipe");
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn report_filter_and_the_new_fail_on_terms() {
    let env = Env::new();
    let exposed = env.run(&[
        "--demo", "--report", "--now", NOW, "--format", "json", "--filter", "exposed",
    ]);
    assert!(exposed.status.success(), "{}", stderr(&exposed));
    let report: serde_json::Value = serde_json::from_slice(&exposed.stdout).unwrap();
    assert_eq!(report["filter"], "exposed");
    let instances = report["instances"].as_array().unwrap();
    assert!(!instances.is_empty());
    assert_eq!(report["summary"]["instances"], instances.len());
    let csv = env.run(&[
        "--demo", "--report", "--now", NOW, "--format", "csv", "--filter", "exposed",
    ]);
    assert_eq!(
        stdout(&csv).lines().count(),
        instances.len() + 1,
        "a header and the rows"
    );

    let bad = env.run(&["--demo", "--report", "--filter", "verdict:bogus"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("--filter: verdict: \"bogus\" is not one of"));

    for (fail_on, filter, code) in [
        ("exposed", None, 1),
        ("exposed", Some("cloud:gcp"), 0),
        ("long-lived", None, 1),
        ("long-lived", Some("uptime:<10"), 0),
    ] {
        let mut args = vec!["--demo", "--report", "--now", NOW, "--fail-on", fail_on];
        if let Some(filter) = filter {
            args.extend(["--filter", filter]);
        }
        let output = env.run(&args);
        assert_eq!(
            output.status.code(),
            Some(code),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn diff_fail_on_is_about_instances_newly_at_the_verdict() {
    let env = Env::new();
    let old = env.path("old.json");
    let new = env.path("new.json");
    let save = |path: &Path, more: &[&str]| {
        let mut args = vec!["--demo", "--report", "--now", NOW, "--save-snapshot"];
        args.push(path.to_str().unwrap());
        args.extend(more);
        let output = env.run(&args);
        assert!(output.status.success(), "{}", stderr(&output));
    };
    save(&old, &[]);
    // A larger demo is the same fleet plus more instances, some of them stale or worse.
    save(&new, &["--demo-size", "1600"]);
    let same = env.run(&[
        "diff",
        old.to_str().unwrap(),
        old.to_str().unwrap(),
        "--fail-on",
        "stale",
    ]);
    assert_eq!(same.status.code(), Some(0), "{}", stderr(&same));
    let later = env.run(&[
        "diff",
        old.to_str().unwrap(),
        new.to_str().unwrap(),
        "--fail-on",
        "stale",
    ]);
    assert_eq!(later.status.code(), Some(1), "{}", stderr(&later));
    let back = env.run(&[
        "diff",
        new.to_str().unwrap(),
        old.to_str().unwrap(),
        "--fail-on",
        "flagged",
    ]);
    assert_eq!(
        back.status.code(),
        Some(0),
        "going back in time flags nothing new"
    );
}

/// `queue add --filter` queues exactly what `--report --filter` lists that `R` would queue (the
/// instances not current, and not on their golden image), asks above `ui.confirm_queue_over`
/// and refuses without a terminal; `queue remove --filter` takes them off.
#[test]
fn queue_add_and_remove_by_filter_match_the_report() {
    let env = Env::new();
    let query = "lineage:*web* cloud:aws";
    let report = env.run(&[
        "--demo", "--report", "--format", "json", "--now", NOW, "--filter", query,
    ]);
    assert!(report.status.success(), "{}", stderr(&report));
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    let golden: std::collections::HashMap<&str, &str> = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| Some((i["key"].as_str()?, i["golden"].as_str()?)))
        .collect();
    let mut expected: Vec<String> = report["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["verdict"] != "current")
        .filter(|i| {
            let image = i["image"].as_str().unwrap();
            golden.get(image) != Some(&image)
        })
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    expected.sort();
    assert!(expected.len() > 5, "{expected:?}");

    // Over the bulk threshold and no terminal: refused in one line, nothing queued.
    std::fs::create_dir_all(env.path("config-home/fleetscope")).unwrap();
    env.write(
        "config-home/fleetscope/config.toml",
        b"version = 1\n[ui]\nconfirm_queue_over = 5\n",
    );
    let refused = env.run(&["--demo", "--now", NOW, "queue", "add", "--filter", query]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert_eq!(stderr(&refused).lines().count(), 1, "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("pass --yes"),
        "{}",
        stderr(&refused)
    );
    assert!(!env.path("data/demo/queue.json").exists());

    let added = env.run(&[
        "--demo", "--now", NOW, "queue", "add", "--filter", query, "--yes",
    ]);
    assert!(added.status.success(), "{}", stderr(&added));
    assert!(
        stderr(&added).starts_with(&format!("Queued {} instances (", expected.len())),
        "{}",
        stderr(&added)
    );
    let queue: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.path("data/demo/queue.json")).unwrap()).unwrap();
    let mut queued: Vec<String> = queue["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["instance_id"].as_str().unwrap().to_owned())
        .collect();
    queued.sort();
    assert_eq!(queued, expected);

    // Again: nothing new, said so.
    let again = env.run(&["--demo", "--now", NOW, "queue", "add", "--filter", query]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stderr(&again).contains(&format!(
            "Queued 0 instances, {} already queued",
            expected.len()
        )),
        "{}",
        stderr(&again)
    );

    let bad = env.run(&[
        "--demo", "--now", NOW, "queue", "add", "--filter", "age:>>3",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).starts_with("fleetscope: --filter:"),
        "{}",
        stderr(&bad)
    );

    let removed = env.run(&[
        "--demo",
        "--now",
        NOW,
        "queue",
        "remove",
        "--filter",
        "cloud:aws",
    ]);
    assert!(removed.status.success(), "{}", stderr(&removed));
    assert!(
        stderr(&removed).contains(&format!(
            "Took {} instances off the queue; 0 queued now",
            expected.len()
        )),
        "{}",
        stderr(&removed)
    );
}
