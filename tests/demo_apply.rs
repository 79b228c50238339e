//! The demo's queue is its own, and applying it is a simulated rollout in waves that never
//! reaches a cloud; the demo fleet then shows the instances it replaced.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output};

use chrono::{DateTime, Utc};
use fleetscope::clouds::demo::DemoFleet;
use fleetscope::core::inventory::Inventory;
use fleetscope::core::lineage::LineageRules;
use fleetscope::core::policy::{self, PolicyConfig};
use fleetscope::queue::journal::{Journal, Step};
use fleetscope::queue::{self, Queue, Strategy};

const NOW: &str = "2026-11-01T00:00:00Z";

fn now() -> DateTime<Utc> {
    NOW.parse().unwrap()
}

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The binary with private directories, no cloud settings from outside, and every AWS
    /// endpoint pointed at `endpoint`.
    fn run(&self, args: &[&str], endpoint: &str) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_fleetscope"));
        for (key, _) in std::env::vars() {
            if key.starts_with("FLEETSCOPE_")
                || key.starts_with("AWS_")
                || key.starts_with("AZURE_")
            {
                command.env_remove(key);
            }
        }
        command
            .args(args)
            .env("XDG_CONFIG_HOME", self.path("config-home"))
            .env("HOME", self.dir.path())
            .env("FLEETSCOPE_DATA_DIR", self.path("data"))
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_ACCESS_KEY_ID", "demo-must-not-use-this")
            .env("AWS_SECRET_ACCESS_KEY", "demo-must-not-use-this")
            .output()
            .unwrap()
    }
}

/// Queues, as the UI would, some members of the demo's first executable Auto Scaling group and
/// a few standalone instances; returns their ids.
fn queue_demo_instances(path: &std::path::Path) -> Vec<String> {
    let mut inventory = Inventory::new(LineageRules {
        tag: Some("lineage".into()),
        name_rules: Vec::new(),
    });
    for event in DemoFleet::new(42, 1_500, now()).events() {
        inventory.apply(event);
    }
    let eval = policy::evaluate(&inventory, &PolicyConfig::default(), now());
    let entries: Vec<_> = (0..inventory.instances().len() as u32)
        .map(|i| queue::entry_for(&inventory, &eval, i, now()))
        .filter(|e| e.strategy.executable())
        .collect();
    let group = entries
        .iter()
        .find_map(|e| match &e.strategy {
            Strategy::AwsTerminateInGroup { group } => Some(group.clone()),
            _ => None,
        })
        .expect("the demo has an executable group");
    let mut chosen: Vec<_> = entries
        .iter()
        .filter(
            |e| matches!(&e.strategy, Strategy::AwsTerminateInGroup { group: g } if *g == group),
        )
        .take(4)
        .cloned()
        .collect();
    chosen.extend(
        entries
            .iter()
            .filter(|e| e.strategy == Strategy::AwsLaunchCopy)
            .take(3)
            .cloned(),
    );
    let ids = chosen.iter().map(|e| e.instance_id.clone()).collect();
    Queue {
        entries: chosen,
        ..Queue::default()
    }
    .save(path)
    .unwrap();
    ids
}

#[test]
fn the_demo_apply_is_a_rollout_that_reaches_no_cloud() {
    let env = Env {
        dir: tempfile::tempdir().unwrap(),
    };
    // Stands in for every cloud endpoint: the demo must never connect to it.
    let cloud = TcpListener::bind("127.0.0.1:0").unwrap();
    cloud.set_nonblocking(true).unwrap();
    let endpoint = format!("http://{}", cloud.local_addr().unwrap());
    let ids = queue_demo_instances(&env.path("data/demo/queue.json"));

    let dry = env.run(&["--demo", "queue", "apply", "--dry-run"], &endpoint);
    let dry_err = String::from_utf8_lossy(&dry.stderr).to_string();
    let dry_plan = String::from_utf8_lossy(&dry.stdout).to_string();
    assert!(dry.status.success(), "{dry_err}");
    assert!(
        dry_plan.contains("Rollout: 7 replacements in"),
        "{dry_plan}"
    );
    assert!(dry_plan.contains("Wave 1"), "{dry_plan}");
    assert!(
        dry_err.contains("0 replaced") && dry_err.contains("7 would succeed"),
        "{dry_err}"
    );

    let output = env.run(&["--demo", "queue", "apply", "--yes"], &endpoint);
    let err = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(err.contains("wave 1 of"), "{err}");
    assert!(
        cloud.accept().is_err(),
        "the demo's apply connected to a cloud endpoint"
    );
    assert!(
        !env.path("data/queue.json").exists() && !env.path("data/journal.jsonl").exists(),
        "the clouds' queue and journal are untouched"
    );
    let journal = Journal::read(&env.path("data/demo/journal.jsonl")).unwrap();
    let left = Queue::load(&env.path("data/demo/queue.json")).unwrap();
    let replaced: Vec<&String> = ids.iter().filter(|id| !left.contains(id)).collect();
    for id in &replaced {
        assert!(err.contains(&format!("{id}: replaced")), "{err}");
        assert!(
            journal
                .iter()
                .any(|r| &r.instance_id == *id && r.step == Step::Replaced)
        );
    }
    // The simulation fails one replacement in twelve: a failure stops the rollout with exit 2
    // and leaves it, and what was never started, queued.
    if left.entries.is_empty() {
        assert!(output.status.success(), "{err}");
    } else {
        assert_eq!(output.status.code(), Some(2), "{err}");
        assert!(err.contains("failed"), "{err}");
    }
    assert!(!replaced.is_empty(), "{err}");

    // The demo fleet now runs the replacements in their place.
    let report = env.run(
        &["--demo", "--report", "--format", "json", "--now", NOW],
        &endpoint,
    );
    let text = String::from_utf8_lossy(&report.stdout);
    for id in &replaced {
        assert!(
            !text.contains(&format!("\"{id}\"")),
            "{id} is still in the demo fleet"
        );
        assert!(
            text.contains(&format!("\"{id}-r\"")),
            "{id}'s replacement is missing"
        );
    }
    assert!(cloud.accept().is_err());
}

#[test]
fn entries_from_a_source_not_configured_are_left_queued() {
    let env = Env {
        dir: tempfile::tempdir().unwrap(),
    };
    let ids = queue_demo_instances(&env.path("data/queue.json"));
    // The demo's entries in the clouds' queue: no configured source owns them.
    let output = env.run(&["queue", "apply", "--yes"], "http://127.0.0.1:9");
    let err = String::from_utf8_lossy(&output.stderr).to_string();
    let plan = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(output.status.success(), "{err}");
    assert!(plan.contains("is not configured"), "{plan}");
    assert!(err.contains("Nothing to apply"), "{err}");
    assert_eq!(
        Queue::load(&env.path("data/queue.json"))
            .unwrap()
            .entries
            .len(),
        ids.len()
    );
}

#[test]
fn ctrl_c_lets_the_wave_in_flight_finish_and_the_next_apply_resumes() {
    use std::io::{BufRead, BufReader};
    let env = Env {
        dir: tempfile::tempdir().unwrap(),
    };
    let ids = queue_demo_instances(&env.path("data/demo/queue.json"));
    let mut command = Command::new(env!("CARGO_BIN_EXE_fleetscope"));
    command
        .args(["--demo", "queue", "apply", "--yes"])
        .env("HOME", env.dir.path())
        .env("XDG_CONFIG_HOME", env.path("config-home"))
        .env("FLEETSCOPE_DATA_DIR", env.path("data"))
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.starts_with("wave 1 of") {
            break;
        }
    }
    assert!(seen.contains("wave 1 of 4"), "{seen}");
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    for line in lines {
        seen.push_str(&line.unwrap());
        seen.push('\n');
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(2), "{seen}");
    assert!(
        seen.contains("Stopping: replacements in flight finish"),
        "{seen}"
    );
    assert!(seen.contains("not started: stopped by Ctrl-C"), "{seen}");
    assert!(!seen.contains("wave 2 of"), "nothing new starts: {seen}");
    let journal = std::fs::read_to_string(env.path("data/demo/journal.jsonl")).unwrap();
    assert!(journal.contains("\"step\":\"stopped\""), "{journal}");
    let left = Queue::load(&env.path("data/demo/queue.json")).unwrap();
    assert!(!left.entries.is_empty() && left.entries.len() < ids.len());

    // The next apply takes up what is left, and only that.
    let again = env.run(&["--demo", "queue", "apply", "--yes"], "http://127.0.0.1:9");
    let err = String::from_utf8_lossy(&again.stderr).to_string();
    let plan = String::from_utf8_lossy(&again.stdout).to_string();
    assert!(
        plan.contains(&format!("Rollout: {} replacement", left.entries.len())),
        "{plan}"
    );
    for entry in &left.entries {
        assert!(err.contains(&format!("{}: ", entry.instance_id)), "{err}");
    }
}
