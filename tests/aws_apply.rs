//! `fleetscope queue apply` against moto's EC2 server: queue built from a real collection,
//! applied by the real binary, the emulator's state checked through the SDK.
#![cfg(feature = "aws")]

mod moto;

use std::process::{Command, Output};

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{Filter, InstanceStateName, RequestLaunchTemplateData};
use chrono::{DateTime, Utc};
use fleetscope::core::lineage::LineageRules;
use fleetscope::core::policy::{PolicyConfig, evaluate};
use fleetscope::queue::journal::{Journal, Record, Step};
use fleetscope::queue::{Queue, Strategy, entry_for};
use moto::{Moto, ami};

const NOW: &str = "2026-11-01T00:00:00Z";
const OWNER: &str = "111122223333";
const OLD: &str = "ami-0web0000000000002";
const GOLDEN: &str = "ami-0web0000000000003";

fn now() -> DateTime<Utc> {
    NOW.parse().unwrap()
}

fn start() -> Moto {
    Moto::start(&[
        ami(
            OLD,
            "web-1.1.0-20261001",
            "2026-10-01T00:00:00Z",
            OWNER,
            &[],
        ),
        ami(
            GOLDEN,
            "web-1.2.0-20261025",
            "2026-10-25T00:00:00Z",
            OWNER,
            &[],
        ),
    ])
}

struct Env {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Env {
    fn new(moto: &Moto) -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.toml"),
            format!(
                "version = 1\n[aws]\nprofiles = [\"prod\"]\nregions = [\"us-east-1\"]\nendpoint_url = \"{}\"\ntimeout_secs = 10\n",
                moto.url()
            ),
        )
        .unwrap();
        let mut env = moto.profile_env(dir.path());
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
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let inventory = fleetscope::snapshot::load(&snapshot)
            .unwrap()
            .into_inventory(LineageRules {
                tag: Some("lineage".into()),
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

async fn state(ec2: &Client, id: &str) -> InstanceStateName {
    let answer = ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .unwrap();
    answer.reservations()[0].instances()[0]
        .state()
        .and_then(|s| s.name())
        .cloned()
        .unwrap()
}

/// Instances carrying the tag `key=value`.
async fn tagged(ec2: &Client, key: &str, value: &str) -> Vec<aws_sdk_ec2::types::Instance> {
    let answer = ec2
        .describe_instances()
        .filters(
            Filter::builder()
                .name(format!("tag:{key}"))
                .values(value)
                .build(),
        )
        .send()
        .await
        .unwrap();
    answer
        .reservations()
        .iter()
        .flat_map(|r| r.instances().iter().cloned())
        .collect()
}

/// A copy of `old` on the golden image as an apply launches it, tag included.
async fn launch_copy_of(ec2: &Client, old: &str) -> String {
    let copy = moto::run(ec2, GOLDEN, "web-1", None).await;
    ec2.create_tags()
        .resources(&copy)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("fleetscope:replaces")
                .value(old)
                .build(),
        )
        .send()
        .await
        .unwrap();
    copy
}

async fn replacements(ec2: &Client, old: &str) -> Vec<aws_sdk_ec2::types::Instance> {
    tagged(ec2, "fleetscope:replaces", old).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_standalone_instance_is_copied_onto_the_golden_image_then_terminated() {
    let moto = start();
    let ec2 = moto.client(moto::PROD, "us-east-1").await;
    let sg = moto::security_group_open_to_world(&ec2, 443).await;
    let old = moto::run(&ec2, OLD, "web-1", Some(&sg)).await;
    let env = Env::new(&moto);
    let queue = env.queue(&[&old]);
    assert_eq!(queue.entries[0].strategy, Strategy::AwsLaunchCopy);

    // A dry run asks EC2 and changes nothing.
    let out = env.run(&["queue", "apply", "--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("would be allowed"),
        "{}",
        stderr(&out)
    );
    assert_eq!(state(&ec2, &old).await, InstanceStateName::Running);
    assert!(replacements(&ec2, &old).await.is_empty());
    assert_eq!(env.saved_queue(), queue);

    // Read-only refuses; so does a missing confirmation with no terminal.
    let out = env.run(&["--read-only", "queue", "apply", "--yes"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--read-only"), "{}", stderr(&out));
    let out = env.run(&["queue", "apply"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("pass --yes"), "{}", stderr(&out));
    assert_eq!(state(&ec2, &old).await, InstanceStateName::Running);

    let out = env.run(&["queue", "apply", "--yes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let copies = replacements(&ec2, &old).await;
    assert_eq!(copies.len(), 1);
    let copy = &copies[0];
    assert_eq!(copy.image_id(), Some(GOLDEN));
    assert_eq!(copy.instance_type().map(|t| t.as_str()), Some("t3.micro"));
    assert!(
        copy.security_groups()
            .iter()
            .any(|g| g.group_id() == Some(sg.as_str()))
    );
    assert!(
        copy.tags()
            .iter()
            .any(|t| t.key() == Some("Name") && t.value() == Some("web-1"))
    );
    assert_eq!(
        state(&ec2, copy.instance_id().unwrap()).await,
        InstanceStateName::Running
    );
    assert_eq!(state(&ec2, &old).await, InstanceStateName::Terminated);
    assert!(env.saved_queue().entries.is_empty());
    let steps: Vec<&str> = env
        .journal()
        .iter()
        .filter(|r| !r.dry_run)
        .map(|r| match r.step {
            Step::Launched { .. } => "launched",
            Step::Running { .. } => "running",
            Step::Replaced => "replaced",
            _ => "other",
        })
        .collect();
    assert_eq!(steps, ["launched", "running", "replaced"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_apply_interrupted_after_launching_resumes_without_launching_again() {
    let moto = start();
    let ec2 = moto.client(moto::PROD, "us-east-1").await;
    let old = moto::run(&ec2, OLD, "web-1", None).await;
    let env = Env::new(&moto);
    env.queue(&[&old]);
    // The state a crash right after RunInstances leaves: the copy exists, the journal says so.
    let copy = launch_copy_of(&ec2, &old).await;
    let mut journal = Journal::open(&env.data().join("journal.jsonl")).unwrap();
    journal
        .append(&Record {
            at: now(),
            instance_id: old.clone(),
            step: Step::Launched {
                new_instance: copy.clone(),
            },
            dry_run: false,
        })
        .unwrap();

    // A dry run now only asks: the journal's launch leads it to terminate nothing.
    let out = env.run(&["queue", "apply", "--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(state(&ec2, &old).await, InstanceStateName::Running);
    assert_eq!(env.saved_queue().entries.len(), 1);

    let out = env.run(&["queue", "apply", "--yes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let copies: Vec<String> = replacements(&ec2, &old)
        .await
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_owned))
        .collect();
    assert_eq!(copies, [copy], "no second copy");
    assert_eq!(state(&ec2, &old).await, InstanceStateName::Terminated);
    assert!(env.saved_queue().entries.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_copy_launched_just_before_a_crash_is_found_by_its_tag() {
    let moto = start();
    let ec2 = moto.client(moto::PROD, "us-east-1").await;
    let old = moto::run(&ec2, OLD, "web-1", None).await;
    let env = Env::new(&moto);
    env.queue(&[&old]);
    // Launched and tagged, but the journal never heard of it.
    launch_copy_of(&ec2, &old).await;
    let out = env.run(&["queue", "apply", "--yes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(replacements(&ec2, &old).await.len(), 1, "no second copy");
    assert_eq!(state(&ec2, &old).await, InstanceStateName::Terminated);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_member_is_terminated_only_while_its_template_launches_the_golden_image() {
    let moto = start();
    let ec2 = moto.client(moto::PROD, "us-east-1").await;
    // Members launched from version 1 (the old image); version 2, now the default, is golden.
    let template = moto::launch_template(&ec2, "web", OLD).await;
    moto.create_asg(moto::PROD, "us-east-1", "web-asg", &template, 2)
        .await;
    ec2.create_launch_template_version()
        .launch_template_id(&template)
        .launch_template_data(
            RequestLaunchTemplateData::builder()
                .image_id(GOLDEN)
                .build(),
        )
        .send()
        .await
        .unwrap();
    set_default_version(&ec2, &template, "2").await;
    let members = members(&ec2, "web-asg").await;
    assert_eq!(members.len(), 2);

    let env = Env::new(&moto);
    let queue = env.queue(&[&members[0], &members[1]]);
    assert!(matches!(
        queue.entries[0].strategy,
        Strategy::AwsTerminateInGroup { .. }
    ));

    // The template is pointed back at the old image after queueing: apply checks again.
    set_default_version(&ec2, &template, "1").await;
    let out = env.run(&["queue", "apply", "--yes"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not the golden"), "{}", stderr(&out));
    assert_eq!(state(&ec2, &members[0]).await, InstanceStateName::Running);
    assert_eq!(
        env.saved_queue().entries.len(),
        2,
        "failed entries stay queued"
    );

    set_default_version(&ec2, &template, "2").await;
    let out = env.run(&["queue", "apply", "--yes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for member in &members {
        assert_eq!(state(&ec2, member).await, InstanceStateName::Terminated);
    }
    assert!(env.saved_queue().entries.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_apply_waits_for_no_one() {
    let moto = start();
    let ec2 = moto.client(moto::PROD, "us-east-1").await;
    let old = moto::run(&ec2, OLD, "web-1", None).await;
    let env = Env::new(&moto);
    env.queue(&[&old]);
    let held =
        fleetscope::queue::apply::ApplyLock::acquire(&env.data().join("apply.lock")).unwrap();
    let out = env.run(&["queue", "apply", "--yes"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("another fleetscope is applying"),
        "{}",
        stderr(&out)
    );
    assert_eq!(state(&ec2, &old).await, InstanceStateName::Running);
    drop(held);
}

async fn set_default_version(ec2: &Client, template: &str, version: &str) {
    ec2.modify_launch_template()
        .launch_template_id(template)
        .default_version(version)
        .send()
        .await
        .unwrap();
}

async fn members(ec2: &Client, group: &str) -> Vec<String> {
    tagged(ec2, "aws:autoscaling:groupName", group)
        .await
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_owned))
        .collect()
}
