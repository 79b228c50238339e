//! The binary's edges, end to end: every number in the config is bounded, every file read is
//! bounded, data files are private, a closed pipe is quiet, `--fail-on` says why, and text
//! from a cloud reaches a terminal or a CSV cell escaped. Every run has a deadline, so a hang
//! fails the test instead of blocking it.

mod common;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use common::env::{Env, reader, wait};
use common::{NOW, stderr};

/// Long enough for a debug build to report a 20,000-instance demo on a busy machine.
const DEADLINE: Duration = Duration::from_secs(120);

impl Env {
    /// The binary with a private config and data directory, no FLEETSCOPE_* from outside, and
    /// a deadline.
    fn new() -> Env {
        Env {
            deadline: Some(DEADLINE),
            ..Env::isolated(&["FLEETSCOPE_", "AWS_"])
        }
    }
}

/// Exit 2, one line on stderr holding every one of `wanted`, no panic, nothing on stdout.
fn assert_one_line_error(output: &Output, wanted: &[&str]) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    for want in wanted {
        assert!(err.contains(want), "{want:?} missing from: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    assert!(output.stdout.is_empty());
}

/// Every number in the config, with the range it must fall in.
const NUMBERS: [(&str, i64, i64); 15] = [
    ("policy.max_image_age_days", 1, 3650),
    ("policy.max_instance_age_days", 1, 3650),
    ("aws.concurrency", 1, 256),
    ("aws.timeout_secs", 1, 3600),
    ("azure.concurrency", 1, 256),
    ("azure.timeout_secs", 1, 3600),
    ("gcp.concurrency", 1, 256),
    ("gcp.timeout_secs", 1, 3600),
    ("rollout.max_parallel", 1, 1000),
    ("rollout.pause_secs", 0, 3600),
    ("rollout.max_failures", 0, 100_000),
    ("rollout.health_timeout_secs", 1, 86_400),
    ("rollout.poll_secs", 1, 3600),
    ("ui.confirm_queue_over", 0, 1_000_000),
    ("limits.snapshot_max_mb", 1, 65_536),
];

#[test]
fn every_number_in_the_config_is_bounded_from_file_and_environment() {
    let env = Env::new();
    for (key, min, max) in NUMBERS {
        let (section, name) = key.split_once('.').unwrap();
        let range = format!("from {min} to {max}");
        for absurd in ["9223372036854775807", "-1"] {
            let path = env.write(
                &format!("{key}.toml"),
                format!("version = 1\n[{section}]\n{name} = {absurd}\n").as_bytes(),
            );
            let from_file = env.run(&["--config", path.to_str().unwrap(), "config"]);
            let file = path.display().to_string();
            assert_one_line_error(&from_file, &[&file, ":3:", key, &range, absurd]);

            let var = format!("FLEETSCOPE_{}_{}", section, name).to_uppercase();
            let from_env = env.run_with(&["config"], &[(&var, absurd)]);
            assert_one_line_error(&from_env, &[&var, key, &range, absurd]);
        }
        // Past what an integer holds, from the environment.
        let var = format!("FLEETSCOPE_{}_{}", section, name).to_uppercase();
        let huge = env.run_with(&["config"], &[(&var, "99999999999999999999999")]);
        assert_one_line_error(&huge, &[&var, key, &range]);
    }
    // The rollout's numbers reached the apply's plan before they were checked.
    for var in [
        "FLEETSCOPE_ROLLOUT_HEALTH_TIMEOUT_SECS",
        "FLEETSCOPE_ROLLOUT_PAUSE_SECS",
    ] {
        let apply = env.run_with(
            &["--demo", "queue", "apply", "--dry-run"],
            &[(var, "9223372036854775807")],
        );
        assert_one_line_error(&apply, &[var]);
    }
    // The edges of each range are accepted.
    for (key, min, max) in NUMBERS {
        let (section, name) = key.split_once('.').unwrap();
        let var = format!("FLEETSCOPE_{}_{}", section, name).to_uppercase();
        for edge in [min, max] {
            let ok = env.run_with(&["config"], &[(&var, &edge.to_string())]);
            assert_eq!(ok.status.code(), Some(0), "{var}={edge}: {}", stderr(&ok));
        }
    }
}

/// Runs the binary with its stdout read for a few bytes and then closed, as `| head -c 100`.
fn run_into_closed_pipe(env: &Env, args: &[&str]) -> Output {
    let mut child = env.command(args).spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let stderr = reader(child.stderr.take().unwrap());
    let mut first = [0u8; 100];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let status = wait(&mut child, args, DEADLINE);
    Output {
        status,
        stdout: first.to_vec(),
        stderr: stderr.join().unwrap(),
    }
}

/// A queue file of `entries` entries, as a UI would have saved it.
fn queue_file(entries: usize) -> Vec<u8> {
    let entries: Vec<serde_json::Value> = (0..entries)
        .map(|i| {
            serde_json::json!({
                "instance_id": format!("i-{i:017x}"),
                "cloud": "aws",
                "source": "aws:prod",
                "account": "123456789012",
                "region": "eu-west-1",
                "name": format!("web-{i}"),
                "image": "ami-0123456789abcdef0",
                "target_image": "ami-0fedcba9876543210",
                "verdict": "outdated",
                "reason": "a newer image of its lineage is golden",
                "strategy": {"kind": "aws_launch_copy"},
                "queued_at": NOW,
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({"version": 1, "entries": entries})).unwrap()
}

#[test]
fn every_output_ends_quietly_on_a_closed_pipe() {
    let env = Env::new();
    let big = ["--demo", "--demo-size", "20000", "--report", "--now", NOW];
    let old = env.path("old.json");
    let new = env.path("new.json");
    for (path, seed) in [(&old, "1"), (&new, "2")] {
        let mut args = big.to_vec();
        args.extend([
            "--demo-seed",
            seed,
            "--output",
            "/dev/null",
            "--save-snapshot",
        ]);
        args.push(path.to_str().unwrap());
        let saved = env.run(&args);
        assert!(saved.status.success(), "{}", stderr(&saved));
    }
    std::fs::create_dir_all(env.path("data")).unwrap();
    env.write("data/queue.json", &queue_file(20_000));
    let mut runs: Vec<Vec<&str>> = Vec::new();
    for format in ["md", "json", "csv"] {
        let mut args = big.to_vec();
        args.extend(["--format", format]);
        runs.push(args);
    }
    for format in ["md", "json"] {
        runs.push(vec!["queue", "export", "--format", format]);
        runs.push(vec![
            "diff",
            old.to_str().unwrap(),
            new.to_str().unwrap(),
            "--format",
            format,
        ]);
    }
    runs.push(vec!["queue", "list"]);
    for args in runs {
        let output = run_into_closed_pipe(&env, &args);
        assert_eq!(stderr(&output), "", "{args:?}: nothing said about the pipe");
        assert_eq!(output.status.code(), Some(0), "{args:?}");
    }
}

/// A snapshot whose cloud-provided text holds an escape sequence, a NUL and a right-to-left
/// override, on an image old enough that its instance is listed as stale.
const HOSTILE_SNAPSHOT: &str = r#"{"schema_version": 1, "kind": "snapshot", "taken_at": "2026-11-01T00:00:00Z",
    "sources": [{"name": "aws:prod", "cloud": "aws", "state": "done", "pages": 1, "instances": 1}],
    "images": [{"key": "ami-1", "cloud": "aws", "name": "web-\u202egpj.exe", "created": "2026-01-01T00:00:00Z",
                "owner": "1", "readable": true, "tags": {"team": "a\u0000b"}}],
    "instances": [{"id": "i-1", "cloud": "aws", "source": "aws:prod", "account": "1", "region": "r",
                   "name": "web\u001b[2Jgone", "instance_type": "m5\u0000", "state": "running",
                   "launched": "2026-10-31T00:00:00Z", "image": "ami-1",
                   "exposure": ["sg-1 admits 22/tcp from 0.0.0.0/0\u001b]8;;http://x\u0007"]}]}"#;

/// No raw control or bidi character: each shows as its escape.
fn assert_escaped(text: &str, what: &str) {
    for raw in ['\u{1b}', '\u{0}', '\u{202e}', '\u{7}'] {
        assert!(!text.contains(raw), "{what}: raw {raw:?} in {text:?}");
    }
    assert!(text.contains(r"web\x1b[2Jgone"), "{what}: {text}");
    assert!(text.contains(r"web-\u{202e}gpj.exe"), "{what}: {text}");
}

#[test]
fn cloud_text_reaches_csv_markdown_and_queue_list_escaped() {
    let env = Env::new();
    let snapshot = env.write("hostile.json", HOSTILE_SNAPSHOT.as_bytes());
    let snapshot = snapshot.to_str().unwrap();
    let csv = env.run(&["--snapshot", snapshot, "--report", "--format", "csv"]);
    assert!(csv.status.success(), "{}", stderr(&csv));
    let csv = String::from_utf8(csv.stdout).unwrap();
    assert_escaped(&csv, "csv");
    assert!(csv.contains(r"m5\x00"), "{csv}");
    assert!(csv.contains(r"\x1b]8;;http://x\x07"), "{csv}");
    let md = env.run(&["--snapshot", snapshot, "--report"]);
    assert!(md.status.success(), "{}", stderr(&md));
    assert_escaped(&String::from_utf8(md.stdout).unwrap(), "markdown");

    std::fs::create_dir_all(env.path("data")).unwrap();
    let mut queue: serde_json::Value = serde_json::from_slice(&queue_file(1)).unwrap();
    queue["entries"][0]["name"] = "web\u{1b}[2Jgone".into();
    queue["entries"][0]["target_image"] = "web-\u{202e}gpj.exe".into();
    env.write("data/queue.json", &serde_json::to_vec(&queue).unwrap());
    for args in [&["queue", "list"][..], &["queue", "export"]] {
        let listed = env.run(args);
        assert!(listed.status.success(), "{}", stderr(&listed));
        assert_escaped(&String::from_utf8(listed.stdout).unwrap(), "queue");
    }
}

#[test]
fn an_error_line_shows_bidi_and_control_characters_escaped() {
    let env = Env::new();
    let path = env.path("evil\u{202e}lmot.toml");
    let output = env.run(&["--config", path.to_str().unwrap(), "config"]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains(r"evil\u{202e}lmot.toml"), "{err}");
    assert!(!err.contains('\u{202e}'), "{err}");
}

/// Without the AWS feature every AWS source fails at once, and the error names the profile.
#[cfg(not(feature = "aws"))]
#[test]
fn an_error_naming_a_profile_shows_it_escaped() {
    let env = Env::new();
    let output = env.run(&["--aws-profile", "prod\u{202e}\u{1b}[31m", "--report"]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains(r"aws:prod\u{202e}\x1b[31m"), "{err}");
    assert!(
        !err.contains('\u{202e}') && !err.contains('\u{1b}'),
        "{err}"
    );
}

#[test]
fn cloud_text_reaches_the_ui_escaped() {
    use fleetscope::views::tui::action::View;
    use fleetscope::views::tui::app::AppInit;
    let snapshot = fleetscope::snapshot::parse(HOSTILE_SNAPSHOT.as_bytes()).unwrap();
    let now = snapshot.taken_at;
    let rules = fleetscope::core::lineage::LineageRules {
        tag: Some("lineage".into()),
        name_rules: Vec::new(),
    };
    let init = AppInit {
        live: false,
        ..AppInit::browse(
            snapshot.into_inventory(rules.clone()),
            rules,
            Default::default(),
            now,
        )
    };
    let mut app = common::ui::Ui::new(init, None);
    for (view, wanted) in [
        (View::Instances, r"web\x1b[2Jgone"),
        (View::Images, r"web-\u{202e}gpj.exe"),
    ] {
        app.browse.view = view;
        let screen = common::ui::render(&mut app, 200, 30);
        assert!(screen.contains(wanted), "{view:?}: {screen}");
    }
    // The detail pane of the selected instance, with its exposure.
    app.browse.view = View::Instances;
    let screen = common::ui::render(&mut app, 200, 30);
    assert!(screen.contains(r"\x1b]8;;http://x\x07"), "{screen}");
}

/// The one line `--fail-on` prints: how many, and the first few by id.
fn assert_fail_on_line(output: &Output, wanted: &[&str]) -> String {
    assert_eq!(output.status.code(), Some(1), "{}", stderr(output));
    let err = stderr(output);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    for want in wanted {
        assert!(err.contains(want), "{want:?} missing from: {err}");
    }
    err
}

#[test]
fn fail_on_says_how_many_and_which() {
    let env = Env::new();
    let report = |more: &[&str]| {
        let mut args = vec!["--demo", "--report", "--now", NOW, "--format", "json"];
        args.extend(more);
        env.run(&args)
    };
    let json: serde_json::Value = serde_json::from_slice(&report(&[]).stdout).unwrap();
    let instances = json["instances"].as_array().unwrap();
    let count =
        |keep: &dyn Fn(&serde_json::Value) -> bool| instances.iter().filter(|i| keep(i)).count();
    let flagged = count(&|i| i["verdict"] == "flagged");
    let outdated_or_worse =
        count(&|i| ["flagged", "unknown", "outdated"].contains(&i["verdict"].as_str().unwrap()));
    let exposed = count(&|i| {
        i.get("exposure")
            .is_some_and(|e| !e.as_array().unwrap().is_empty())
    });
    let long_lived = count(&|i| i["long_lived"] == true);
    let verdict_of = |short: &str| {
        let found = instances
            .iter()
            .find(|i| i["id"].as_str().unwrap().rsplit('/').next() == Some(short));
        found.unwrap_or_else(|| panic!("{short} is not an instance"))["verdict"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    for (fail_on, wanted) in [
        (
            "flagged",
            format!("--fail-on flagged: {flagged} instances are flagged"),
        ),
        (
            "outdated",
            format!("--fail-on outdated: {outdated_or_worse} instances are outdated or worse"),
        ),
        (
            "exposed",
            format!("--fail-on exposed: {exposed} instances are exposed"),
        ),
        (
            "long-lived",
            format!(
                "--fail-on long-lived: {long_lived} instances are long-lived (launched more than 30 days ago)"
            ),
        ),
    ] {
        let output = report(&["--fail-on", fail_on]);
        let line = assert_fail_on_line(&output, &[&wanted, " and ", " more"]);
        // The stdout report is the same with or without --fail-on.
        assert_eq!(output.stdout, report(&[]).stdout, "{fail_on}");
        let listed = line
            .trim_end()
            .rsplit_once(": ")
            .unwrap()
            .1
            .split(" and ")
            .next()
            .unwrap();
        let listed: Vec<&str> = listed.split(", ").collect();
        assert_eq!(listed.len(), 5, "the first few: {line}");
        if fail_on == "outdated" {
            assert_eq!(verdict_of(listed[0]), "flagged", "the worst first: {line}");
        }
    }

    let old = env.path("old.json");
    let new = env.path("new.json");
    for (path, size) in [(&old, "1500"), (&new, "1600")] {
        let mut args = vec!["--demo", "--demo-size", size, "--report", "--now", NOW];
        args.extend([
            "--output",
            "/dev/null",
            "--save-snapshot",
            path.to_str().unwrap(),
        ]);
        assert!(env.run(&args).status.success());
    }
    let diff = env.run(&[
        "diff",
        old.to_str().unwrap(),
        new.to_str().unwrap(),
        "--fail-on",
        "stale",
    ]);
    assert_fail_on_line(
        &diff,
        &[
            "--fail-on stale: ",
            "instances are newly stale or worse: ",
            "(added as ",
        ],
    );
    assert!(!diff.stdout.is_empty(), "the diff itself still printed");
}

/// The rows of one markdown section's table.
fn section_rows<'a>(md: &'a str, heading: &str) -> Vec<&'a str> {
    md.lines()
        .skip_while(|l| !l.starts_with(heading))
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .filter(|l| l.starts_with("| ") && !l.starts_with("|---"))
        .skip(1)
        .collect()
}

#[test]
fn markdown_names_exposed_instances_and_a_filter_keeps_only_its_groups() {
    let env = Env::new();
    let json = env.run(&["--demo", "--report", "--now", NOW, "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let exposed: Vec<&serde_json::Value> = json["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i.get("exposure").is_some())
        .collect();
    assert!(!exposed.is_empty(), "the demo has exposed instances");
    let md = env.run(&["--demo", "--report", "--now", NOW]);
    let md = String::from_utf8(md.stdout).unwrap();
    let heading = format!("## Exposed instances ({})", exposed.len());
    assert!(md.contains(&heading), "{md}");
    let rows = section_rows(&md, "## Exposed instances");
    assert_eq!(rows.len(), exposed.len(), "{md}");
    for instance in exposed {
        let finding = instance["exposure"][0].as_str().unwrap();
        assert!(finding.contains("0.0.0.0/0"), "{finding}");
        let id = instance["id"].as_str().unwrap();
        assert!(
            rows.iter().any(|r| r.contains(id) && r.contains(finding)),
            "{id}: {finding} not listed"
        );
    }
    let summary = section_rows(&md, "## Summary");
    let all = summary.last().unwrap();
    assert!(
        all.trim_end_matches(" |")
            .ends_with(&format!("| {}", rows.len())),
        "an exposed column in the summary: {all}"
    );

    let limited = env.run(&["--demo", "--report", "--now", NOW, "--limit", "2"]);
    let limited = String::from_utf8(limited.stdout).unwrap();
    assert_eq!(section_rows(&limited, "## Exposed instances").len(), 2);
    assert!(
        limited.contains("more exposed instances left out (--limit 2)"),
        "{limited}"
    );

    for cloud in ["aws", "azure", "gcp"] {
        let filter = format!("cloud:{cloud}");
        let md = env.run(&["--demo", "--report", "--now", NOW, "--filter", &filter]);
        let md = String::from_utf8(md.stdout).unwrap();
        let groups = section_rows(&md, "## Groups with skew or template drift");
        assert!(!groups.is_empty(), "{cloud}: {md}");
        for row in groups {
            let cells: Vec<&str> = row.split(" | ").collect();
            assert_eq!(cells[1], cloud, "{filter} keeps only its groups: {row}");
            assert_ne!(cells[3], "0", "a group with no member selected: {row}");
        }
        let json = env.run(&[
            "--demo", "--report", "--now", NOW, "--filter", &filter, "--format", "json",
        ]);
        let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
        for group in json["groups"].as_array().unwrap() {
            assert_eq!(group["cloud"], cloud, "{group}");
            assert!(group["members"].as_u64().unwrap() > 0, "{group}");
        }
    }
}

/// A file of `len` bytes that takes no room: a size check must refuse it unread.
fn sparse(env: &Env, name: &str, len: u64) -> PathBuf {
    let path = env.path(name);
    std::fs::File::create(&path).unwrap().set_len(len).unwrap();
    path
}

/// What refusing an input may take: no reading, no waiting.
const QUICKLY: Duration = Duration::from_secs(15);

#[test]
fn reads_are_bounded_and_only_of_regular_files() {
    let env = Env::new();
    let run = |args: &[&str], vars: &[(&str, &str)]| env.run_within(args, vars, QUICKLY);
    let fifo = env.path("fifo.json");
    let made = Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo");
    let fifo = fifo.to_str().unwrap();
    let good = env.path("good.json");
    let saved = env.run(&[
        "--demo",
        "--demo-size",
        "10",
        "--report",
        "--now",
        NOW,
        "--output",
        "/dev/null",
        "--save-snapshot",
        good.to_str().unwrap(),
    ]);
    assert!(saved.status.success(), "{}", stderr(&saved));
    let good = good.to_str().unwrap();
    for (file, what) in [
        ("/dev/zero", "not a regular file (a character device)"),
        ("/dev/urandom", "not a regular file (a character device)"),
        (fifo, "not a regular file (a named pipe)"),
        (
            env.dir.path().to_str().unwrap(),
            "not a regular file (a directory)",
        ),
    ] {
        let report = run(&["--snapshot", file, "--report"], &[]);
        assert_one_line_error(&report, &[file, what]);
        let diff = run(&["diff", good, file], &[]);
        assert_one_line_error(&diff, &[file, what]);
        let diff = run(&["diff", file, good], &[]);
        assert_one_line_error(&diff, &[file, what]);
        let config = run(&["--config", file, "config"], &[]);
        assert_one_line_error(&config, &[file, what]);
    }

    // Snapshots are capped by limits.snapshot_max_mb, configs at 1 MiB.
    let big = sparse(&env, "big.json", (1 << 20) + 1);
    let big = big.to_str().unwrap();
    let capped = run(
        &["--snapshot", big, "--report"],
        &[("FLEETSCOPE_LIMITS_SNAPSHOT_MAX_MB", "1")],
    );
    assert_one_line_error(
        &capped,
        &[
            big,
            "larger than 1 MiB",
            "limits.snapshot_max_mb",
            "FLEETSCOPE_LIMITS_SNAPSHOT_MAX_MB",
        ],
    );
    let diff = run(
        &["diff", good, big],
        &[("FLEETSCOPE_LIMITS_SNAPSHOT_MAX_MB", "1")],
    );
    assert_one_line_error(&diff, &[big, "larger than 1 MiB"]);
    let huge = sparse(&env, "huge.json", (2 << 30) + 1);
    let huge = huge.to_str().unwrap();
    let default_cap = run(&["--snapshot", huge, "--report"], &[]);
    assert_one_line_error(
        &default_cap,
        &[huge, "larger than 2 GiB", "limits.snapshot_max_mb"],
    );
    let config = sparse(&env, "big.toml", (1 << 20) + 1);
    let config = config.to_str().unwrap();
    assert_one_line_error(
        &run(&["--config", config, "config"], &[]),
        &[config, "larger than 1 MiB"],
    );

    // A demo fleet has a size the machine can hold.
    for size in ["18446744073709551615", "1000001", "0"] {
        let demo = run(&["--demo", "--demo-size", size, "--report"], &[]);
        assert_one_line_error(&demo, &["--demo-size", "1..=1000000"]);
    }
}

#[test]
fn the_queue_and_journal_are_bounded_and_a_large_queue_still_loads() {
    let env = Env::new();
    std::fs::create_dir_all(env.path("data")).unwrap();
    env.write("data/queue.json", &queue_file(100_000));
    let exported = env.path("queue-export.json");
    let export = env.run(&[
        "queue",
        "export",
        "--format",
        "json",
        "--output",
        exported.to_str().unwrap(),
    ]);
    assert!(export.status.success(), "{}", stderr(&export));
    let queue: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&exported).unwrap()).unwrap();
    assert_eq!(queue["entries"].as_array().unwrap().len(), 100_000);

    let queue = env.path("data/queue.json");
    std::fs::File::create(&queue)
        .unwrap()
        .set_len((512 << 20) + 1)
        .unwrap();
    let list = env.run(&["queue", "list"]);
    assert_one_line_error(&list, &[queue.to_str().unwrap(), "larger than 512 MiB"]);

    let journal = sparse(&env, "journal.jsonl", (1 << 30) + 1);
    let error = fleetscope::queue::journal::Journal::read(&journal).unwrap_err();
    assert!(error.0.contains("larger than 1 GiB"), "{error}");
    assert!(error.0.contains(journal.to_str().unwrap()), "{error}");
}

/// The permission bits of a path.
#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Every directory under `dir` (itself included) and every file, with its mode.
#[cfg(unix)]
fn modes_under(dir: &std::path::Path) -> Vec<(PathBuf, bool, u32)> {
    let mut found = vec![(dir.to_path_buf(), true, mode(dir))];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(modes_under(&path));
        } else {
            found.push((path.clone(), false, mode(&path)));
        }
    }
    found
}

/// A few of the demo's standalone AWS instances in the demo's queue, as the UI queues them.
fn queue_demo_instances(path: &std::path::Path) {
    use fleetscope::queue::{Queue, Strategy};
    let now: chrono::DateTime<chrono::Utc> = NOW.parse().unwrap();
    let mut inventory =
        fleetscope::core::inventory::Inventory::new(fleetscope::core::lineage::LineageRules {
            tag: Some("lineage".into()),
            name_rules: Vec::new(),
        });
    for event in fleetscope::clouds::demo::DemoFleet::new(42, 1_500, now).events() {
        inventory.apply(event);
    }
    let eval = fleetscope::core::policy::evaluate(&inventory, &Default::default(), now);
    let entries = (0..inventory.instances().len() as u32)
        .map(|i| fleetscope::queue::entry_for(&inventory, &eval, i, now))
        .filter(|e| e.strategy == Strategy::AwsLaunchCopy)
        .take(2)
        .collect();
    Queue {
        entries,
        ..Queue::default()
    }
    .save(path)
    .unwrap();
}

#[cfg(unix)]
#[test]
fn the_data_directory_and_what_fleetscope_writes_are_private() {
    let env = Env::new();
    let report = env.path("report.md");
    let snapshot = env.path("fleet.json");
    let run = env.run(&[
        "--demo",
        "--report",
        "--now",
        NOW,
        "--output",
        report.to_str().unwrap(),
        "--save-snapshot",
        snapshot.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(mode(&report), 0o600, "a new report");
    assert_eq!(mode(&snapshot), 0o600, "a new snapshot");
    // The demo's queue written here is then changed by an apply in the binary.
    queue_demo_instances(&env.path("data/demo/queue.json"));
    let apply = env.run(&["--demo", "queue", "apply", "--yes"]);
    assert!(stderr(&apply).contains("wave 1 of"), "{}", stderr(&apply));
    let found = modes_under(&env.path("data"));
    for name in [
        "fleetscope.log",
        "queue.json",
        "journal.jsonl",
        "apply.lock",
        "queue.lock",
    ] {
        assert!(
            found.iter().any(|(p, _, _)| p.file_name().unwrap() == name),
            "{name} was not written: {found:?}"
        );
    }
    for (path, is_dir, mode) in &found {
        let want = if *is_dir { 0o700 } else { 0o600 };
        assert_eq!(*mode, want, "{} is {mode:o}", path.display());
    }

    // A mode the user chose survives the next atomic replace.
    let queue = env.path("data/demo/queue.json");
    set_mode(&queue, 0o640);
    let clear = env.run(&["--demo", "queue", "clear", "--yes"]);
    assert!(clear.status.success(), "{}", stderr(&clear));
    assert_eq!(mode(&queue), 0o640);
    set_mode(&report, 0o644);
    let again = env.run(&[
        "--demo",
        "--report",
        "--now",
        NOW,
        "--output",
        report.to_str().unwrap(),
    ]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(mode(&report), 0o644);

    // A data directory the user made keeps its mode.
    let own = env.path("own-data");
    std::fs::create_dir(&own).unwrap();
    set_mode(&own, 0o750);
    let run = env.run_with(
        &["--demo", "queue", "clear", "--yes"],
        &[("FLEETSCOPE_DATA_DIR", own.to_str().unwrap())],
    );
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(mode(&own), 0o750);
    assert_eq!(mode(&own.join("demo")), 0o700);
}

#[test]
fn the_config_command_shows_values_escaped() {
    let env = Env::new();
    let output = env.run_with(
        &["config"],
        &[("FLEETSCOPE_AWS_PROFILES", "prod\u{202e}\u{9b}")],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains(r#"profiles = ["prod\u{202e}\u{9b}"]"#),
        "{text}"
    );
    assert!(
        !text.contains('\u{202e}') && !text.contains('\u{9b}'),
        "{text}"
    );
}

#[test]
fn fail_on_untrusted_source_names_instances_on_images_from_other_owners() {
    let mut env = Env::new();
    let args = [
        "--demo",
        "--report",
        "--now",
        NOW,
        "--format",
        "json",
        "--fail-on",
        "untrusted-source",
    ];
    // Unset, every owner is trusted: no finding, no field.
    let output = env.run(&args);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let instances = json["instances"].as_array().unwrap();
    assert!(
        instances
            .iter()
            .all(|i| i.get("untrusted_source").is_none())
    );

    // The demo's AWS account and Azure gallery trusted; its Google Cloud image project not
    // (`acme` is the gallery, not a prefix of every owner starting with it).
    env.env.push((
        "FLEETSCOPE_POLICY_TRUSTED_OWNERS".into(),
        "999900001111, acme".into(),
    ));
    let output = env.run(&args);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let instances = json["instances"].as_array().unwrap();
    let untrusted: Vec<&serde_json::Value> = instances
        .iter()
        .filter(|i| i["untrusted_source"] == true)
        .collect();
    assert!(!untrusted.is_empty());
    assert!(untrusted.iter().all(|i| i["cloud"] == "gcp"));
    assert!(
        instances
            .iter()
            .filter(|i| i["cloud"] != "gcp")
            .all(|i| i["untrusted_source"] == false)
    );
    assert_eq!(json["policy"]["trusted_owners"][1], "acme");
    let wanted = format!(
        "--fail-on untrusted-source: {} instances are on an image from an owner policy.trusted_owners does not name: ",
        untrusted.len()
    );
    assert_fail_on_line(&output, &[&wanted, " more"]);

    let md = env.run(&["--demo", "--report", "--now", NOW]);
    let md = String::from_utf8(md.stdout).unwrap();
    assert!(
        md.contains("Trusted image owners: 999900001111, acme"),
        "{md}"
    );
    assert!(md.contains("## Untrusted image sources ("), "{md}");
    assert!(md.contains("| acme-images |"), "{md}");
    let csv = env.run(&["--demo", "--report", "--now", NOW, "--format", "csv"]);
    let csv = String::from_utf8(csv.stdout).unwrap();
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .ends_with(",source,untrusted_source")
    );
}
