//! The demo's queue is its own, and applying it is a simulated rollout in waves that never
//! reaches a cloud; the demo fleet then shows the instances it replaced.

mod common;

use std::net::TcpListener;
use std::process::Command;

use common::env::Env;
use common::{NOW, now};
use fleetscope::clouds::demo::DemoFleet;
use fleetscope::core::inventory::Inventory;
use fleetscope::core::lineage::LineageRules;
use fleetscope::core::policy::{self, PolicyConfig};
use fleetscope::queue::journal::{Call, Journal, Record, Step};
use fleetscope::queue::{self, Queue, Strategy};

/// An address where nothing answers.
const NO_CLOUD: &str = "http://127.0.0.1:9";

impl Env {
    fn new() -> Env {
        Env::at(NO_CLOUD)
    }

    /// The binary with private directories, no cloud settings from outside, its queue and
    /// journal the demo's own, and every AWS endpoint pointed at `endpoint`.
    fn at(endpoint: &str) -> Env {
        let mut env = Env::isolated(&["FLEETSCOPE_", "AWS_", "AZURE_"]);
        env.set("AWS_ENDPOINT_URL", endpoint);
        env.set("AWS_ACCESS_KEY_ID", "demo-must-not-use-this");
        env.set("AWS_SECRET_ACCESS_KEY", "demo-must-not-use-this");
        env.ledger = "data/demo";
        env
    }

    /// `--demo queue apply --yes`, failures tolerated, its progress read line by line.
    fn spawn_apply(
        &self,
    ) -> (
        std::process::Child,
        std::io::Lines<std::io::BufReader<std::process::ChildStderr>>,
    ) {
        use std::io::BufRead;
        let mut child = self
            .command(&["--demo", "queue", "apply", "--yes"])
            .envs([("FLEETSCOPE_ROLLOUT_MAX_FAILURES", "100")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        (child, lines)
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
    // Stands in for every cloud endpoint: the demo must never connect to it.
    let cloud = TcpListener::bind("127.0.0.1:0").unwrap();
    cloud.set_nonblocking(true).unwrap();
    let endpoint = format!("http://{}", cloud.local_addr().unwrap());
    let env = Env::at(&endpoint);
    let ids = queue_demo_instances(&env.path("data/demo/queue.json"));

    let dry = env.run(&["--demo", "queue", "apply", "--dry-run"]);
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

    let output = env.run(&["--demo", "queue", "apply", "--yes"]);
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
    let report = env.run(&["--demo", "--report", "--format", "json", "--now", NOW]);
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
    let env = Env::new();
    let ids = queue_demo_instances(&env.path("data/queue.json"));
    // The demo's entries in the clouds' queue: no configured source owns them.
    let output = env.run(&["queue", "apply", "--yes"]);
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
    let env = Env::new();
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
    let again = env.run(&["--demo", "queue", "apply", "--yes"]);
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

/// The first `n` executable entries of the demo fleet, queued as the UI would.
fn demo_entries(n: usize) -> Vec<queue::QueueEntry> {
    let mut inventory = Inventory::new(LineageRules {
        tag: Some("lineage".into()),
        name_rules: Vec::new(),
    });
    for event in DemoFleet::new(42, 1_500, now()).events() {
        inventory.apply(event);
    }
    let eval = policy::evaluate(&inventory, &PolicyConfig::default(), now());
    (0..inventory.instances().len() as u32)
        .map(|i| queue::entry_for(&inventory, &eval, i, now()))
        .filter(|e| e.strategy.executable())
        .take(n)
        .collect()
}

fn save_queue(path: &std::path::Path, entries: Vec<queue::QueueEntry>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    Queue {
        entries,
        ..Queue::default()
    }
    .save(path)
    .unwrap();
}

/// Asserts, from the demo's journal (its cloud's own record), that nothing was done twice to
/// any instance: one launch, one termination, one replacement at most, each sent once.
fn assert_nothing_done_twice(journal: &[Record], context: &str) {
    let mut seen: std::collections::BTreeMap<(&str, String), usize> = Default::default();
    for record in journal.iter().filter(|r| !r.dry_run) {
        let what = match &record.step {
            Step::Intent { call } => format!("{call:?} sent"),
            Step::Launched { .. } => "launched".into(),
            Step::Terminated => "terminated".into(),
            Step::Replaced => "replaced".into(),
            _ => continue,
        };
        *seen.entry((record.instance_id.as_str(), what)).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "{context}: done twice: {twice:?}");
}

/// A crash leaves the journal up to some record and the queue as it was (at worst, with the
/// finished entries still in it). From a full apply's journal, every such state is made, cut
/// after each record in turn, and resumed: nothing is ever done twice, and every entry that
/// can be replaced ends replaced.
#[test]
fn a_crash_after_any_journaled_step_resumes_without_doing_anything_twice() {
    let entries = demo_entries(6);
    let full = Env::new();
    save_queue(&full.path("data/demo/queue.json"), entries.clone());
    let tolerant = [("FLEETSCOPE_ROLLOUT_MAX_FAILURES", "100")];
    let out = full
        .command(&["--demo", "queue", "apply", "--yes"])
        .envs(tolerant)
        .output()
        .unwrap();
    let records = full.journal();
    assert_nothing_done_twice(&records, "the whole apply");
    let replaced = |journal: &[Record]| -> std::collections::BTreeSet<String> {
        journal
            .iter()
            .filter(|r| r.step == Step::Replaced)
            .map(|r| r.instance_id.clone())
            .collect()
    };
    let all_replaced = replaced(&records);
    assert!(
        !all_replaced.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<String> = std::fs::read_to_string(full.path("data/demo/journal.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let resumes: Vec<_> = (0..lines.len())
        .map(|cut| {
            let env = Env::new();
            save_queue(&env.path("data/demo/queue.json"), entries.clone());
            let mut prefix = lines[..cut].join("\n");
            prefix.push('\n');
            std::fs::write(env.path("data/demo/journal.jsonl"), prefix).unwrap();
            let child = env
                .command(&["--demo", "queue", "apply", "--yes"])
                .envs(tolerant)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            (cut, env, child)
        })
        .collect();
    for (cut, env, child) in resumes {
        let out = child.wait_with_output().unwrap();
        let context = format!(
            "cut after record {cut} ({}): {}",
            lines[..cut].last().map_or("none", String::as_str),
            String::from_utf8_lossy(&out.stderr)
        );
        let journal = env.journal();
        assert_nothing_done_twice(&journal, &context);
        assert_eq!(replaced(&journal), all_replaced, "{context}");
        let left: Vec<String> = env
            .saved_queue()
            .entries
            .into_iter()
            .map(|e| e.instance_id)
            .collect();
        assert!(
            left.iter().all(|id| !all_replaced.contains(id)),
            "{context}: {left:?}"
        );
    }
}

/// The real thing: SIGKILL mid-wave, at a few moments, then an apply again.
#[test]
fn killed_mid_wave_then_applied_again_nothing_is_replaced_twice() {
    for after in [1, 3, 6] {
        let env = Env::new();
        save_queue(&env.path("data/demo/queue.json"), demo_entries(40));
        let tolerant = [("FLEETSCOPE_ROLLOUT_MAX_FAILURES", "100")];
        let (mut child, lines) = env.spawn_apply();
        let mut finished = 0;
        for line in lines {
            if line.unwrap().ends_with(": replaced") {
                finished += 1;
                if finished == after {
                    break;
                }
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let out = env
            .command(&["--demo", "queue", "apply", "--yes"])
            .envs(tolerant)
            .output()
            .unwrap();
        let context = format!(
            "killed after {after}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_nothing_done_twice(&env.journal(), &context);
        let queued: Vec<String> = env
            .saved_queue()
            .entries
            .into_iter()
            .map(|e| e.instance_id)
            .collect();
        let replaced: Vec<String> = env
            .journal()
            .into_iter()
            .filter(|r| r.step == Step::Replaced)
            .map(|r| r.instance_id)
            .collect();
        assert!(queued.iter().all(|id| !replaced.contains(id)), "{context}");
    }
}

#[test]
fn an_instance_queued_twice_is_planned_and_replaced_once() {
    let env = Env::new();
    let entries = demo_entries(3);
    let doubled: Vec<_> = entries.iter().chain(&entries).cloned().collect();
    save_queue(&env.path("data/demo/queue.json"), doubled);
    let out = env
        .command(&["--demo", "queue", "apply", "--yes"])
        .envs([("FLEETSCOPE_ROLLOUT_MAX_FAILURES", "100")])
        .output()
        .unwrap();
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(plan.contains("Rollout: 3 replacements"), "{plan}");
    assert_nothing_done_twice(&env.journal(), &plan);
    for entry in &entries {
        let sent = env
            .journal()
            .iter()
            .filter(|r| {
                r.instance_id == entry.instance_id && r.step == Step::Intent { call: Call::Launch }
            })
            .count();
        assert_eq!(sent, 1, "{}", entry.instance_id);
    }
}

/// Progress on a pipe whose reader went away (`| head`, a killed `tee`): no panic, the wave in
/// flight finishes, nothing new starts, and the journal says why.
#[test]
fn a_closed_output_stops_the_rollout_cleanly_and_never_aborts_it() {
    let env = Env::new();
    save_queue(&env.path("data/demo/queue.json"), demo_entries(40));
    let (mut child, mut lines) = env.spawn_apply();
    let first = lines.next().unwrap().unwrap();
    assert!(first.starts_with("wave 1 of"), "{first}");
    drop(lines);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(2), "stopped, not aborted: {status:?}");
    let journal = env.journal();
    let stopped = journal.iter().find_map(|r| match &r.step {
        Step::Stopped { why, .. } => Some(why.clone()),
        _ => None,
    });
    assert_eq!(
        stopped.as_deref(),
        Some("the output was closed"),
        "{journal:?}"
    );
    assert_nothing_done_twice(&journal, "output closed");
    // Every replacement started was finished: none is left half done.
    for record in journal
        .iter()
        .filter(|r| r.step == Step::Intent { call: Call::Launch })
    {
        assert!(
            journal.iter().any(|r| r.instance_id == record.instance_id
                && matches!(r.step, Step::Replaced | Step::Failed { .. })),
            "{} was left mid-step",
            record.instance_id
        );
    }
    // The plan to a closed stdout: nobody saw it, nothing starts.
    let mut child = env
        .command(&["--demo", "queue", "apply", "--yes"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let before = env.journal().len();
    assert_eq!(child.wait().unwrap().code(), Some(2));
    assert_eq!(env.journal().len(), before, "nothing ran");
}

/// `--dry-run > plan.txt` keeps the plan; each step shows once; entries that cannot run are
/// counted.
#[test]
fn a_dry_run_writes_its_plan_to_stdout_and_counts_what_cannot_run() {
    let env = Env::new();
    let mut entries = demo_entries(3);
    // A name from a cloud with a terminal escape in it: shown escaped, never acting.
    entries[1].name = "web\u{1b}[31mred\u{202e}".into();
    let mut stuck = entries[0].clone();
    stuck.instance_id = "i-0notexecutable".into();
    stuck.strategy = Strategy::NotExecutable {
        why: "template drift: point its template at the golden image first".into(),
    };
    entries.push(stuck);
    save_queue(&env.path("data/demo/queue.json"), entries);
    let out = env.run(&["--demo", "queue", "apply", "--dry-run"]);
    let (plan, err) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{err}");
    assert!(plan.contains("Rollout: 3 replacements"), "{plan}");
    assert!(
        plan.contains("i-0notexecutable: not executable: template drift"),
        "{plan}"
    );
    assert!(
        !err.contains("Rollout:"),
        "the plan is not repeated on stderr: {err}"
    );
    assert!(err.contains("1 not executable"), "{err}");
    assert!(plan.contains("web\\x1b[31mred\\u{202e}"), "{plan}");
    assert!(
        !out.stdout.contains(&0x1b),
        "no raw escape reaches the terminal"
    );
    let mut lines: Vec<&str> = err.lines().collect();
    let total = lines.len();
    lines.sort_unstable();
    lines.dedup();
    assert_eq!(lines.len(), total, "a line shown twice: {err}");
}

/// Entries taken off the queue while an apply runs are not started; the closing line says how
/// many are still queued, which is none once the queue is cleared.
#[test]
fn a_queue_cleared_during_an_apply_stops_what_has_not_started() {
    let env = Env::new();
    let entries = demo_entries(40);
    save_queue(&env.path("data/demo/queue.json"), entries.clone());
    let (mut child, mut lines) = env.spawn_apply();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.starts_with("wave 1 of") {
            break;
        }
    }
    let clear = env.run(&["--demo", "queue", "clear", "--yes"]);
    assert!(clear.status.success());
    for line in lines {
        seen.push_str(&line.unwrap());
        seen.push('\n');
    }
    child.wait().unwrap();
    let journal = env.journal();
    let started: std::collections::BTreeSet<&str> = journal
        .iter()
        .filter(|r| r.step == Step::Intent { call: Call::Launch })
        .map(|r| r.instance_id.as_str())
        .collect();
    assert!(started.len() < entries.len(), "{seen}");
    assert!(seen.contains("not started: taken off the queue"), "{seen}");
    assert!(
        seen.contains("taken off the queue before their turn"),
        "{seen}"
    );
    assert!(!seen.contains("stay queued"), "the queue is empty: {seen}");
    assert!(env.saved_queue().entries.is_empty());
}

/// Two Ctrl-Cs 0.2 s apart: the second quits at once (exit 130), journaled; the next apply
/// replaces nothing twice.
#[test]
fn a_second_ctrl_c_quits_at_once_and_the_next_apply_repeats_nothing() {
    let env = Env::new();
    save_queue(&env.path("data/demo/queue.json"), demo_entries(40));
    let tolerant = [("FLEETSCOPE_ROLLOUT_MAX_FAILURES", "100")];
    let (mut child, mut lines) = env.spawn_apply();
    for line in lines.by_ref() {
        if line.unwrap().ends_with(": replaced") {
            break;
        }
    }
    let interrupt = || {
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap()
    };
    assert!(interrupt().success());
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(interrupt().success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert_eq!(child.wait().unwrap().code(), Some(130), "{rest:?}");
    let journal = env.journal();
    assert!(
        journal
            .iter()
            .any(|r| matches!(&r.step, Step::Stopped { why, .. } if why.contains("second Ctrl-C"))),
        "{journal:?}"
    );
    let out = env
        .command(&["--demo", "queue", "apply", "--yes"])
        .envs(tolerant)
        .output()
        .unwrap();
    assert_nothing_done_twice(&env.journal(), &String::from_utf8_lossy(&out.stderr));
}

/// A new user watches template drift close in the demo: the members of a drifted group are
/// queued, the plan and phrase name the template step, the dry run changes nothing, and after
/// the apply the group launches the golden image and its members run it.
#[test]
fn the_demo_points_a_drifted_group_at_the_golden_image_then_rolls_it() {
    let env = Env::new();
    let report = |env: &Env| -> serde_json::Value {
        let out = env.run(&["--demo", "--report", "--format", "json", "--now", NOW]);
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let before = report(&env);
    let group = before["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["template_status"]["status"] == "drift" && g["cloud"] == "aws")
        .expect("the demo has an AWS group in template drift")
        .clone();
    let name = group["name"].as_str().unwrap();
    let add = env.run(&[
        "--demo",
        "--now",
        NOW,
        "queue",
        "add",
        "--filter",
        &format!("group:{name}"),
        "--yes",
    ]);
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
    let members = env.saved_queue().entries.len();
    assert!(members > 1, "{}", String::from_utf8_lossy(&add.stderr));

    let dry = env.run(&["--demo", "queue", "apply", "--dry-run"]);
    let plan = String::from_utf8_lossy(&dry.stdout).to_string();
    assert!(
        dry.status.success(),
        "{plan}{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert!(plan.starts_with("Template steps (1)"), "{plan}");
    assert!(plan.contains(&format!("point {name} at ")), "{plan}");
    assert!(
        env.journal().iter().all(|r| r.dry_run),
        "a dry run changes nothing"
    );

    let applied = env
        .command(&["--demo", "queue", "apply", "--yes"])
        .envs([("FLEETSCOPE_ROLLOUT_MAX_FAILURES", "100")])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&applied.stderr).to_string();
    assert!(err.contains("1 template updated, "), "{err}");
    let journal = env.journal();
    let template_records: Vec<&Step> = journal
        .iter()
        .filter(|r| !r.dry_run && r.instance_id.starts_with("template "))
        .map(|r| &r.step)
        .collect();
    assert_eq!(
        template_records
            .iter()
            .filter(|s| matches!(s, Step::GroupPointed { .. }))
            .count(),
        1,
        "{template_records:?}"
    );
    // The canary went first, alone: no member started before the group was pointed.
    let pointed_at = journal
        .iter()
        .position(|r| matches!(r.step, Step::GroupPointed { .. }))
        .unwrap();
    let first_member = journal
        .iter()
        .position(|r| {
            !r.dry_run && !r.instance_id.starts_with("template ") && !r.instance_id.is_empty()
        })
        .unwrap();
    assert!(pointed_at < first_member, "{journal:?}");

    let after = report(&env);
    let group_now = after["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == name)
        .unwrap();
    assert_eq!(
        group_now["template_status"]["status"], "golden",
        "{group_now}"
    );
    // A second apply makes no second template step.
    let again = env.run(&["--demo", "queue", "apply", "--dry-run"]);
    assert!(
        !String::from_utf8_lossy(&again.stdout).contains("Template steps"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
}

/// Why an entry cannot go, or why its last attempt failed, is in `queue list`, not only in the
/// journal.
#[test]
fn queue_list_says_why_an_entry_failed_or_cannot_go() {
    let env = Env::new();
    let mut entries = demo_entries(40);
    entries[0].strategy = Strategy::NotExecutable {
        why: "template drift: point its template at the golden image first".into(),
    };
    save_queue(&env.path("data/demo/queue.json"), entries);
    let applied = env
        .command(&["--demo", "queue", "apply", "--yes"])
        .envs([("FLEETSCOPE_ROLLOUT_MAX_FAILURES", "100")])
        .output()
        .unwrap();
    let failed: Vec<String> = env
        .journal()
        .iter()
        .filter(|r| matches!(r.step, Step::Failed { .. }))
        .map(|r| r.instance_id.clone())
        .collect();
    assert!(
        !failed.is_empty(),
        "one in twelve fails: {}",
        String::from_utf8_lossy(&applied.stderr)
    );
    let list = env.run(&["--demo", "queue", "list"]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        text.contains("why: template drift: point its template"),
        "{text}"
    );
    assert_eq!(
        text.matches("last attempt failed: the replacement").count(),
        failed.len(),
        "{text}"
    );
}

/// Why the entries of an earlier apply failed is on the UI's Queue view as it opens, read from
/// the journal as the runtime reads it: REASON, STEP, the detail pane, and the `failed` filter
/// word, with which `a` and `d` take them off the queue together.
#[test]
fn the_ui_shows_why_an_earlier_apply_failed_from_the_journal() {
    use common::ui::{Ui, demo_inventory, press, render, rules, type_filter};
    use crossterm::event::KeyCode;
    use fleetscope::views::tui::action::Action;
    use fleetscope::views::tui::app::AppInit;

    let env = Env::new();
    let queue_path = env.path("data/demo/queue.json");
    let entries = demo_entries(50);
    save_queue(&queue_path, entries[..40].to_vec());
    let applied = env
        .command(&["--demo", "queue", "apply", "--yes"])
        .envs([("FLEETSCOPE_ROLLOUT_MAX_FAILURES", "100")])
        .output()
        .unwrap();
    let mut failed: Vec<String> = env
        .journal()
        .iter()
        .filter(|r| matches!(r.step, Step::Failed { .. }))
        .map(|r| r.instance_id.clone())
        .collect();
    failed.sort();
    assert!(
        !failed.is_empty(),
        "one in twelve fails: {}",
        String::from_utf8_lossy(&applied.stderr)
    );
    // Queued since, not applied yet.
    let mut queue = Queue::load(&queue_path).unwrap();
    assert_eq!(queue.entries.len(), failed.len());
    queue.add(entries[40..].iter().cloned());
    queue.save(&queue_path).unwrap();

    let mut ui = Ui::new(
        AppInit {
            queue: Queue::load(&queue_path).unwrap(),
            ..AppInit::browse(
                demo_inventory(1_500),
                rules(),
                PolicyConfig::default(),
                now(),
            )
        },
        Some(queue_path.clone()),
    );
    ui.with_journal(&env.path("data/demo/journal.jsonl"));
    press(&mut ui, KeyCode::Char('5'));
    let screen = render(&mut ui, 220, 60);
    assert_eq!(
        screen.matches("failed: the replacement").count(),
        failed.len(),
        "{screen}"
    );

    type_filter(&mut ui, "failed");
    ui.update(Action::Submit);
    let mut shown: Vec<String> = ui
        .browse
        .queue_rows
        .rows
        .iter()
        .map(|&e| ui.queue().entries[e].instance_id.clone())
        .collect();
    shown.sort();
    assert_eq!(shown, failed);
    let screen = render(&mut ui, 220, 60);
    // The header's STEP, in columns (its sort arrow is one column of several bytes).
    let header = screen.lines().find(|l| l.contains("STEP")).unwrap();
    let step = header[..header.find("STEP").unwrap()].chars().count();
    for id in &failed {
        let row = screen.lines().find(|l| l.contains(id.as_str())).unwrap();
        let cell: String = row.chars().skip(step).take(7).collect();
        assert_eq!(cell, "failed ", "STEP: {screen}");
    }
    press(&mut ui, KeyCode::Char('i'));
    let pane = render(&mut ui, 120, 40);
    assert!(pane.contains("failed     the replacement"), "{pane}");
    assert!(
        pane.contains("· journaled 20") && pane.contains("(an earlier apply, or another"),
        "{pane}"
    );
    press(&mut ui, KeyCode::Esc);
    press(&mut ui, KeyCode::Char('a'));
    press(&mut ui, KeyCode::Char('d'));
    let left = Queue::load(&queue_path).unwrap();
    assert_eq!(left.entries.len(), 10, "{left:?}");
    assert!(failed.iter().all(|id| !left.contains(id)));
}
