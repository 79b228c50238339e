//! `fleetscope queue apply` against the local Compute server: the queue built from a real
//! collection, applied by the real binary as a rollout, the server's state checked after.
#![cfg(feature = "gcp")]

mod compute;

use std::process::{Command, Output};
use std::time::Duration;

use chrono::{DateTime, Utc};
use compute::make::{self, Vm};
use compute::{Compute, World};
use fleetscope::core::lineage::LineageRules;
use fleetscope::core::policy::{PolicyConfig, evaluate};
use fleetscope::queue::journal::{Journal, Record, Step};
use fleetscope::queue::{Queue, Strategy, entry_for};
use serde_json::Value;

const NOW: &str = "2026-11-01T00:00:00Z";
const OLD: &str = "projects/shop/global/images/web-v2";
const GOLDEN: &str = "projects/shop/global/images/web-v3";

fn now() -> DateTime<Utc> {
    NOW.parse().unwrap()
}

fn member<'a>(name: &'a str, id: u64, group: &'a str, zone: &'a str) -> Vm<'a> {
    Vm {
        project: "shop",
        zone,
        name,
        id,
        image: OLD,
        created: "2026-10-02T09:00:00.000-07:00",
        group: Some(group),
        tags: &[],
        nat_ip: None,
    }
}

/// A zonal group of four with autohealing and a regional group of two, both on templates that
/// boot the golden image; every member still on the old one; one standalone instance.
fn world() -> World {
    let mut world = World::default();
    for (path, value) in [
        make::image("shop", "web-v2", "web", "2026-10-01T00:00:00.000-07:00"),
        make::image("shop", "web-v3", "web", "2026-10-25T00:00:00.000-07:00"),
        make::group(
            "shop",
            "zones/us-central1-a",
            "web",
            "projects/shop/global/instanceTemplates/web-3",
            4,
            true,
        ),
        make::template("shop", "global", "web-3", &make::link(GOLDEN)),
        make::group(
            "shop",
            "regions/europe-west4",
            "api",
            "projects/shop/regions/europe-west4/instanceTemplates/api-3",
            2,
            false,
        ),
        make::template(
            "shop",
            "regions/europe-west4",
            "api-3",
            "global/images/web-v3",
        ),
    ] {
        world.insert(path, value);
    }
    let zonal = "zones/us-central1-a/instanceGroupManagers/web";
    let regional = "regions/europe-west4/instanceGroupManagers/api";
    let mut machines = vec![
        member("web-a", 101, zonal, "us-central1-a"),
        member("web-b", 102, zonal, "us-central1-a"),
        member("web-c", 103, zonal, "us-central1-a"),
        member("web-d", 104, zonal, "us-central1-a"),
        member("api-a", 201, regional, "europe-west4-a"),
        member("api-b", 202, regional, "europe-west4-b"),
    ];
    let mut pet = member("pet", 301, zonal, "us-central1-a");
    pet.group = None;
    machines.push(pet);
    for machine in machines {
        for (path, value) in machine.resources() {
            world.insert(path, value);
        }
    }
    world
}

struct Env {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Env {
    fn new(compute: &Compute, rollout: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.toml"),
            format!(
                "version = 1\n[gcp]\nprojects = [\"shop\"]\nendpoint_url = \"{}\"\ntimeout_secs = 5\n[rollout]\npoll_secs = 1\n{rollout}",
                compute.url()
            ),
        )
        .unwrap();
        let mut env = compute.env(dir.path());
        env.push((
            "FLEETSCOPE_CONFIG".into(),
            dir.path().join("config.toml").display().to_string(),
        ));
        env.push((
            "FLEETSCOPE_DATA_DIR".into(),
            dir.path().join("data").display().to_string(),
        ));
        Env { dir, env }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_fleetscope"))
            .args(args)
            .envs(self.env.clone())
            .output()
            .unwrap()
    }

    fn data(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    /// Collects, then queues these instances as the UI's `r` would.
    fn queue(&self, ids: &[&str]) -> Queue {
        let snapshot = self.dir.path().join("snapshot.json");
        let out = self.run(&[
            "--report",
            "--now",
            NOW,
            "--output",
            "/dev/null",
            "--save-snapshot",
            snapshot.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let inventory = fleetscope::snapshot::load(&snapshot)
            .unwrap()
            .into_inventory(LineageRules::default());
        let eval = evaluate(&inventory, &PolicyConfig::default(), now());
        let mut queue = Queue::default();
        queue.add(ids.iter().map(|id| {
            let idx = inventory.instance_by_id(id).expect("collected");
            entry_for(&inventory, &eval, idx, now())
        }));
        queue.save(&self.data().join("queue.json")).unwrap();
        queue
    }

    fn saved_queue(&self) -> Queue {
        Queue::load(&self.data().join("queue.json")).unwrap()
    }

    fn journal(&self) -> Vec<Record> {
        Journal::read(&self.data().join("journal.jsonl")).unwrap()
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The plan (stdout), then the progress and outcome (stderr).
fn output(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn id_of(compute: &Compute, zone: &str, name: &str) -> String {
    let instance: Value = compute.resource(&format!("projects/shop/zones/{zone}/instances/{name}"));
    instance["id"].as_str().unwrap().to_owned()
}

fn recreate_calls(compute: &Compute) -> Vec<String> {
    compute
        .calls()
        .into_iter()
        .filter(|c| c.ends_with("/recreateInstances"))
        .collect()
}

#[test]
fn a_rollout_with_a_slow_and_an_unhealthy_member_stops_at_the_unhealthy_one() {
    let mut world = world();
    world
        .recreate_delay
        .insert("web-a".into(), Duration::from_secs(3));
    world.unhealthy.insert("web-b".into());
    let compute = Compute::start(world);
    let env = Env::new(
        &compute,
        "max_unavailable = \"2\"\nhealth_timeout_secs = 8\n",
    );
    let queue = env.queue(&["101", "102", "103", "104", "301"]);
    assert!(
        matches!(&queue.entries[0].strategy, Strategy::GcpRecreateInGroup { group } if group == "web"),
        "{:?}",
        queue.entries[0]
    );
    assert_eq!(queue.entries[0].target_image.as_deref(), Some(GOLDEN));
    assert!(
        !queue.entries[4].strategy.executable(),
        "a standalone instance"
    );

    let dry = env.run(&["queue", "apply", "--dry-run"]);
    let plan = String::from_utf8_lossy(&dry.stdout).into_owned() + &stderr(&dry);
    assert!(dry.status.success(), "{plan}");
    assert!(plan.contains("2 of 4 at once"), "{plan}");
    assert!(
        recreate_calls(&compute).is_empty(),
        "a dry run changes nothing"
    );

    let started = std::time::Instant::now();
    let out = env.run(&["queue", "apply", "--yes"]);
    let elapsed = started.elapsed();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // The slow member held its slot until healthy; the unhealthy one timed out.
    assert!(elapsed >= Duration::from_secs(8), "{elapsed:?}");
    let journal = env.journal();
    let steps = |id: &str| -> Vec<&Step> {
        journal
            .iter()
            .filter(|r| r.instance_id == id && !r.dry_run)
            .map(|r| &r.step)
            .collect()
    };
    assert!(steps("101").contains(&&Step::Replaced), "{journal:?}");
    // The slow member held its slot until the group reported it recreated and healthy.
    let at = |id: &str, step: fn(&Step) -> bool| {
        journal
            .iter()
            .find(|r| r.instance_id == id && !r.dry_run && step(&r.step))
            .map(|r| r.at)
            .unwrap()
    };
    let recreating = at("101", |s| matches!(s, Step::Terminated));
    let healthy = at("101", |s| matches!(s, Step::Healthy { .. }));
    assert!(
        healthy - recreating >= chrono::Duration::seconds(3),
        "{journal:?}"
    );
    assert!(
        steps("102")
            .iter()
            .any(|s| matches!(s, Step::Failed { error } if error.contains("timed out"))),
        "{journal:?}"
    );
    // The second wave never started: its members are untouched.
    assert_eq!(recreate_calls(&compute).len(), 2, "{:?}", compute.calls());
    assert_eq!(id_of(&compute, "us-central1-a", "web-c"), "103");
    assert_eq!(id_of(&compute, "us-central1-a", "web-d"), "104");
    assert_ne!(id_of(&compute, "us-central1-a", "web-a"), "101");
    let left: Vec<String> = env
        .saved_queue()
        .entries
        .iter()
        .map(|e| e.instance_id.clone())
        .collect();
    assert_eq!(left, ["102", "103", "104", "301"]);

    // Its health comes back: the next apply resumes waiting for the member it already asked to
    // recreate (no second recreation: a second one would change its id again), then goes on.
    compute.world.lock().unwrap().unhealthy.clear();
    let out = env.run(&["queue", "apply", "--yes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(id_of(&compute, "us-central1-a", "web-b"), "1000102");
    assert_eq!(id_of(&compute, "us-central1-a", "web-c"), "1000103");
    assert_eq!(recreate_calls(&compute).len(), 4, "{:?}", compute.calls());
    let left: Vec<String> = env
        .saved_queue()
        .entries
        .iter()
        .map(|e| e.instance_id.clone())
        .collect();
    assert_eq!(
        left,
        ["301"],
        "the standalone instance stays, not executable"
    );
}

#[test]
fn regional_members_are_recreated_once_their_template_is_golden() {
    let compute = Compute::start(world());
    let env = Env::new(
        &compute,
        "max_unavailable = \"50%\"\nhealth_timeout_secs = 20\n",
    );
    env.queue(&["201", "202"]);

    // The template is pointed back at the old image after queueing: apply checks again.
    let regional_template = "projects/shop/regions/europe-west4/instanceTemplates/api-3";
    let original = compute.resource(regional_template);
    let (_, drifted) = make::template("shop", "regions/europe-west4", "api-3", OLD);
    compute
        .world
        .lock()
        .unwrap()
        .insert(regional_template, drifted);
    let out = env.run(&["queue", "apply", "--yes"]);
    assert!(output(&out).contains("template drift"), "{}", output(&out));
    assert!(recreate_calls(&compute).is_empty());
    assert_eq!(
        env.saved_queue().entries.len(),
        2,
        "blocked entries stay queued"
    );

    compute
        .world
        .lock()
        .unwrap()
        .insert(regional_template, original);
    let out = env.run(&["queue", "apply", "--yes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let calls = recreate_calls(&compute);
    assert_eq!(
        calls,
        [
            "POST projects/shop/regions/europe-west4/instanceGroupManagers/api/recreateInstances",
            "POST projects/shop/regions/europe-west4/instanceGroupManagers/api/recreateInstances",
        ]
    );
    assert!(
        compute
            .calls()
            .iter()
            .any(|c| c.starts_with("GET projects/shop/regions/europe-west4/operations/")),
        "the operation was polled"
    );
    assert_ne!(id_of(&compute, "europe-west4-a", "api-a"), "201");
    assert_ne!(id_of(&compute, "europe-west4-b", "api-b"), "202");
    assert!(env.saved_queue().entries.is_empty());
}

/// A recreate journaled as sent with its answer lost: when the group shows it went through
/// (a new id under the same name), the next apply journals it as done and waits for health;
/// when it never left, the next apply sends it. Once, either way.
#[test]
fn a_recreate_sent_without_an_answer_is_checked_on_the_group_never_sent_twice() {
    for reached in [true, false] {
        let compute = Compute::start(world());
        let env = Env::new(&compute, "");
        let queue = env.queue(&["101"]);
        if reached {
            let out = env.run(&["queue", "apply", "--yes"]);
            assert!(out.status.success(), "{}", stderr(&out));
            assert_eq!(recreate_calls(&compute).len(), 1);
        }
        // What a crash between the intent and its answer leaves: the intent, nothing after.
        let journal = env.data().join("journal.jsonl");
        let _ = std::fs::remove_file(&journal);
        Journal::open(&journal)
            .unwrap()
            .append(&Record {
                at: chrono::Utc::now(),
                instance_id: "101".into(),
                queued_at: Some(queue.entries[0].queued_at),
                step: Step::Intent {
                    call: fleetscope::queue::journal::Call::Terminate,
                },
                dry_run: false,
            })
            .unwrap();
        queue.save(&env.data().join("queue.json")).unwrap();

        let out = env.run(&["queue", "apply", "--yes"]);
        assert!(out.status.success(), "{reached}: {}", output(&out));
        assert_eq!(
            recreate_calls(&compute).len(),
            1,
            "{reached}: recreated once"
        );
        assert_eq!(id_of(&compute, "us-central1-a", "web-a"), "1000101");
        let steps: Vec<Step> = env.journal().into_iter().map(|r| r.step).collect();
        assert!(
            !steps.iter().any(|s| matches!(s, Step::Skipped { .. })),
            "{reached}: {steps:?}"
        );
        assert_eq!(steps.last(), Some(&Step::Replaced), "{reached}: {steps:?}");
        assert!(env.saved_queue().entries.is_empty());
    }
}
