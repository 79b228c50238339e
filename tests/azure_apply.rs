//! `fleetscope queue apply` on Azure scale-set members against the local Resource Manager
//! (tests/arm): the queue built from a real collection, applied by the real binary through
//! the rollout, the server's state and the calls it saw checked afterwards.
#![cfg(feature = "azure")]

mod arm;

use std::process::{Command, Output};

use arm::{ArmServer, Upgrade, id_ref};
use chrono::{DateTime, Utc};
use fleetscope::core::lineage::LineageRules;
use fleetscope::core::policy::{PolicyConfig, evaluate};
use fleetscope::queue::journal::{Journal, Record, Step};
use fleetscope::queue::{Queue, Strategy, entry_for};

const NOW: &str = "2026-11-01T00:00:00Z";
const SUB: &str = "22222222-0000-0000-0000-000000000001";

fn now() -> DateTime<Utc> {
    NOW.parse().unwrap()
}

fn definition() -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/rg-images/providers/Microsoft.Compute/galleries/golden/images/web"
    )
}

/// The old and the golden version of the web image.
fn images(server: &ArmServer) -> (String, String) {
    server.subscription(SUB);
    let old = server.gallery_version(
        &definition(),
        "1.1.0",
        "2026-10-01T00:00:00Z",
        None,
        false,
        false,
    );
    let golden = server.gallery_version(
        &definition(),
        "1.2.0",
        "2026-10-25T00:00:00Z",
        None,
        false,
        false,
    );
    (old, golden)
}

struct Env {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Env {
    fn new(server: &ArmServer, rollout: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.toml"),
            format!(
                "version = 1\n[azure]\nsubscriptions = [\"{SUB}\"]\nendpoint_url = \"{}\"\ntimeout_secs = 5\n[rollout]\npoll_secs = 1\n{rollout}\n",
                server.url()
            ),
        )
        .unwrap();
        let mut env = server.env();
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
            .env_remove("AZURE_CREDENTIAL_KIND")
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
            .into_inventory(LineageRules {
                tag: None,
                name_rules: Vec::new(),
            });
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

fn upgrades(server: &ArmServer) -> usize {
    server.count("/manualupgrade")
}

#[test]
fn members_are_upgraded_one_wave_at_a_time_each_healthy_before_the_next() {
    let server = ArmServer::start();
    let (old, golden) = images(&server);
    let members = server.scale_set(
        SUB,
        "web",
        id_ref(&golden),
        true,
        &[
            (id_ref(&old), false, Upgrade::Slow(3)),
            (id_ref(&old), false, Upgrade::Healthy),
            (id_ref(&golden), true, Upgrade::Healthy),
        ],
    );
    let env = Env::new(&server, "max_unavailable = \"1\"\nhealth_timeout_secs = 30");
    let queue = env.queue(&[&members[0], &members[1]]);
    assert!(
        matches!(&queue.entries[0].strategy, Strategy::AzureUpgradeToModel { group } if group == "web"),
        "{:?}",
        queue.entries[0].strategy
    );

    // A dry run reads everything and changes nothing.
    let out = env.run(&["queue", "apply", "--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(output(&out).contains("2 waves"), "{}", output(&out));
    assert!(output(&out).contains("updateInstances"), "{}", output(&out));
    assert_eq!(upgrades(&server), 0);
    assert!(env.journal().iter().all(|r| r.dry_run));

    let out = env.run(&["queue", "apply", "--yes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(upgrades(&server), 2);
    for member in &members[..2] {
        assert_eq!(server.member_image(member), id_ref(&golden));
    }
    // The second member's upgrade started only once the slow first one was healthy.
    let calls = server.calls();
    let first_view = format!("{}/instanceview", members[0].to_ascii_lowercase());
    let last_slow_read = calls
        .iter()
        .rposition(|c| c.to_ascii_lowercase().ends_with(&first_view))
        .expect("the first member's health was read");
    let second_upgrade = calls
        .iter()
        .enumerate()
        .filter(|(_, c)| c.ends_with("/manualupgrade"))
        .nth(1)
        .map(|(i, _)| i)
        .unwrap();
    assert!(last_slow_read < second_upgrade, "{calls:#?}");
    let replaced: Vec<String> = env
        .journal()
        .into_iter()
        .filter(|r| !r.dry_run && r.step == Step::Replaced)
        .map(|r| r.instance_id)
        .collect();
    assert_eq!(replaced, members[..2]);
    assert!(env.saved_queue().entries.is_empty());
}

#[test]
fn a_failing_member_stops_the_rollout_and_an_unhealthy_one_times_out() {
    let server = ArmServer::start();
    let (old, golden) = images(&server);
    let members = server.scale_set(
        SUB,
        "web",
        id_ref(&golden),
        true,
        &[
            (id_ref(&old), false, Upgrade::Fails),
            (id_ref(&old), false, Upgrade::Healthy),
        ],
    );
    let env = Env::new(&server, "max_unavailable = \"1\"\nhealth_timeout_secs = 30");
    env.queue(&[&members[0], &members[1]]);
    let out = env.run(&["queue", "apply", "--yes"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("provisioning failed"),
        "{}",
        stderr(&out)
    );
    assert_eq!(upgrades(&server), 1, "nothing new starts after a failure");
    assert_eq!(env.saved_queue().entries.len(), 2, "both stay queued");

    let server = ArmServer::start();
    let (old, golden) = images(&server);
    let members = server.scale_set(
        SUB,
        "api",
        id_ref(&golden),
        true,
        &[(id_ref(&old), false, Upgrade::Unhealthy)],
    );
    let env = Env::new(&server, "health_timeout_secs = 3");
    env.queue(&[&members[0]]);
    let out = env.run(&["queue", "apply", "--yes"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("timed out after 3s"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_model_off_the_golden_image_blocks_and_a_standalone_vm_is_not_executable() {
    let server = ArmServer::start();
    let (old, golden) = images(&server);
    let members = server.scale_set(
        SUB,
        "web",
        id_ref(&golden),
        false,
        &[
            (id_ref(&old), false, Upgrade::Healthy),
            (id_ref(&golden), true, Upgrade::Healthy),
        ],
    );
    let standalone = server.vm(SUB, "single", id_ref(&old), "2026-10-20T00:00:00Z");
    let env = Env::new(&server, "");
    let queue = env.queue(&[&members[0], &standalone]);
    match &queue.entries[1].strategy {
        Strategy::NotExecutable { why } => assert!(why.contains("standalone Azure VM"), "{why}"),
        other => panic!("{other:?}"),
    }
    // The model is pointed back at the old image after queueing: the plan checks again.
    server.set_model(SUB, "web", id_ref(&old));
    let out = env.run(&["queue", "apply", "--yes"]);
    assert!(
        output(&out).contains("update the scale-set model first"),
        "{}",
        output(&out)
    );
    assert_eq!(upgrades(&server), 0);
    assert_eq!(env.saved_queue().entries.len(), 2);

    // Read-only refuses before anything is read.
    let out = env.run(&["--read-only", "queue", "apply", "--yes"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(upgrades(&server), 0);
}

#[test]
fn an_upgrade_cut_short_resumes_by_waiting_never_by_upgrading_again() {
    let server = ArmServer::start();
    let (old, golden) = images(&server);
    let members = server.scale_set(
        SUB,
        "web",
        id_ref(&golden),
        false,
        &[(id_ref(&old), false, Upgrade::Slow(8))],
    );
    // The first apply gives up on health after 2 s: the upgrade was sent and journaled.
    let env = Env::new(&server, "health_timeout_secs = 2");
    env.queue(&[&members[0]]);
    let out = env.run(&["queue", "apply", "--yes"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("timed out"), "{}", stderr(&out));
    assert_eq!(upgrades(&server), 1);
    assert!(env.journal().iter().any(|r| r.step == Step::Terminated));

    // The next apply, with time enough, only waits for the member to become healthy.
    std::fs::write(
        env.dir.path().join("config.toml"),
        format!(
            "version = 1\n[azure]\nsubscriptions = [\"{SUB}\"]\nendpoint_url = \"{}\"\ntimeout_secs = 5\n[rollout]\npoll_secs = 1\nhealth_timeout_secs = 60\n",
            server.url()
        ),
    )
    .unwrap();
    let out = env.run(&["queue", "apply", "--yes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(upgrades(&server), 1, "never upgraded twice");
    assert!(env.saved_queue().entries.is_empty());
}

/// The upgrade call journaled as sent, its answer lost (the journal has no outcome): when the
/// scale set shows it went through, the next apply journals it as done and waits for health;
/// when it never left, the next apply sends it. Once, either way.
#[test]
fn an_upgrade_sent_without_an_answer_is_checked_on_the_scale_set_never_sent_twice() {
    for reached in [true, false] {
        let server = ArmServer::start();
        let (old, golden) = images(&server);
        let members = server.scale_set(
            SUB,
            "web",
            id_ref(&golden),
            false,
            &[(id_ref(&old), false, Upgrade::Slow(3))],
        );
        let env = Env::new(&server, "health_timeout_secs = 60");
        let queue = env.queue(&[&members[0]]);
        let entry = &queue.entries[0];
        if reached {
            // The call reached the scale set: a first apply sends it, and is cut short.
            let out = env.run(&["queue", "apply", "--yes"]);
            assert!(out.status.success(), "{}", stderr(&out));
            assert_eq!(upgrades(&server), 1);
        }
        // What a crash between the intent and its answer leaves: the intent, nothing after.
        let journal = env.data().join("journal.jsonl");
        let _ = std::fs::remove_file(&journal);
        Journal::open(&journal)
            .unwrap()
            .append(&Record {
                at: Utc::now(),
                instance_id: entry.instance_id.clone(),
                queued_at: Some(entry.queued_at),
                step: Step::Intent {
                    call: fleetscope::queue::journal::Call::Terminate,
                },
                dry_run: false,
            })
            .unwrap();
        queue.save(&env.data().join("queue.json")).unwrap();

        let out = env.run(&["queue", "apply", "--yes"]);
        assert!(out.status.success(), "{reached}: {}", output(&out));
        assert_eq!(upgrades(&server), 1, "{reached}: upgraded once");
        assert_eq!(server.member_image(&members[0]), id_ref(&golden));
        let steps: Vec<Step> = env.journal().into_iter().map(|r| r.step).collect();
        assert!(
            !steps.iter().any(|s| matches!(s, Step::Skipped { .. })),
            "{reached}: {steps:?}"
        );
        assert_eq!(steps.last(), Some(&Step::Replaced), "{reached}: {steps:?}");
        assert!(env.saved_queue().entries.is_empty());
    }
}
