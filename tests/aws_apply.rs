//! `fleetscope queue apply` against moto's EC2 server: queue built from a real collection,
//! applied by the real binary, the emulator's state checked through the SDK.
#![cfg(feature = "aws")]

mod common;
mod moto;

use std::process::Command;
use std::time::Duration;

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{Filter, InstanceStateName, RequestLaunchTemplateData};
use common::env::Env;
use common::{now, output, stderr};
use fleetscope::core::lineage::LineageRules;
use fleetscope::queue::journal::{Call as Sent, Journal, Record, Step};
use fleetscope::queue::{Queue, Strategy};
use moto::proxy::{Call, Fault, Proxy};
use moto::{Moto, ami};

const OWNER: &str = "111122223333";
const OLD: &str = "ami-0web0000000000002";
const GOLDEN: &str = "ami-0web0000000000003";

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

impl Env {
    fn new(moto: &Moto) -> Env {
        Env::at(moto, &moto.url())
    }

    /// Pointed at `endpoint` (moto, or a proxy in front of it), polling every second.
    fn at(moto: &Moto, endpoint: &str) -> Env {
        let mut env = Env::configured(
            &format!(
                "version = 1\n[aws]\nprofiles = [\"prod\"]\nregions = [\"us-east-1\"]\nendpoint_url = \"{endpoint}\"\ntimeout_secs = 10\n"
            ),
            |dir| moto.profile_env(dir),
        );
        env.set("FLEETSCOPE_ROLLOUT_POLL_SECS", "1");
        env.lineage = LineageRules {
            tag: Some("lineage".into()),
            name_rules: Vec::new(),
        };
        env
    }

    /// Applies with the proxy holding `action` (forwarded to moto first when `reached`), kills
    /// the binary with SIGKILL while it waits for the answer, then lets calls pass again.
    fn apply_killed_during(&self, proxy: &Proxy, action: &str, reached: bool) {
        proxy.hold(action, reached);
        let mut child = self
            .command(&["queue", "apply", "--yes"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        while !proxy.holding() {
            assert!(
                child.try_wait().unwrap().is_none(),
                "the apply ended before it sent {action}"
            );
            assert!(std::time::Instant::now() < deadline, "{action} never sent");
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        proxy.release();
    }
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
    assert!(stderr(&out).contains("would succeed"), "{}", stderr(&out));
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
            Step::Intent { call: Sent::Launch } => "send launch",
            Step::Intent {
                call: Sent::Register,
            } => "send register",
            Step::Intent {
                call: Sent::Deregister,
            } => "send deregister",
            Step::Intent {
                call: Sent::Terminate,
            } => "send terminate",
            Step::Launched { .. } => "launched",
            Step::Running { .. } => "running",
            Step::Healthy { .. } => "healthy",
            Step::Terminated => "terminated",
            Step::Replaced => "replaced",
            _ => "other",
        })
        .collect();
    // In no target group: running with both status checks ok is its health gate.
    assert_eq!(
        steps,
        [
            "send launch",
            "launched",
            "running",
            "healthy",
            "send terminate",
            "terminated",
            "replaced"
        ]
    );
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
            queued_at: None,
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
    let old_members = members(&ec2, "web-asg").await;
    assert_eq!(old_members.len(), 2);

    let env = Env::new(&moto);
    let queue = env.queue(&[&old_members[0], &old_members[1]]);
    assert!(matches!(
        queue.entries[0].strategy,
        Strategy::AwsTerminateInGroup { .. }
    ));

    // The template is pointed back at the old image after queueing: the plan checks again,
    // through the Auto Scaling API, and without template steps starts nothing.
    set_default_version(&ec2, &template, "1").await;
    let out = env.run(&["--no-template-updates", "queue", "apply", "--yes"]);
    assert!(
        output(&out).contains("template drift: web-asg launches"),
        "{}",
        output(&out)
    );
    assert!(
        output(&out).contains("version $Default (1)"),
        "{}",
        output(&out)
    );
    assert_eq!(
        state(&ec2, &old_members[0]).await,
        InstanceStateName::Running
    );
    assert_eq!(
        env.saved_queue().entries.len(),
        2,
        "failed entries stay queued"
    );

    set_default_version(&ec2, &template, "2").await;
    let out = env.run(&["queue", "apply", "--yes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for member in &old_members {
        assert_eq!(state(&ec2, member).await, InstanceStateName::Terminated);
    }
    // The group kept its capacity and brought golden members in their place.
    let now_members = members(&ec2, "web-asg").await;
    assert_eq!(now_members.len(), 2);
    for member in &now_members {
        assert!(!old_members.contains(member));
        assert_eq!(image_of(&ec2, member).await, GOLDEN);
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

/// A proxy in front of moto with this fault on us-east-1's calls.
async fn proxy(moto: &Moto, fault: Option<Fault>) -> Proxy {
    let faults = fault
        .map(|f| ("us-east-1".to_owned(), f))
        .into_iter()
        .collect();
    Proxy::start(moto.port(), faults).await
}

/// A ten-member group on the old image whose template's default version is now golden.
async fn golden_group(moto: &Moto, ec2: &Client, size: u32) -> Vec<String> {
    let template = moto::launch_template(ec2, "web", OLD).await;
    moto.create_asg(moto::PROD, "us-east-1", "web-asg", &template, size)
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
    set_default_version(ec2, &template, "2").await;
    members(ec2, "web-asg").await
}

fn actions(log: &[Call]) -> Vec<&str> {
    log.iter().map(|c| c.action.as_str()).collect()
}

fn position(log: &[Call], action: &str) -> usize {
    log.iter()
        .position(|c| c.action == action)
        .unwrap_or_else(|| panic!("no {action} in {:?}", actions(log)))
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_members_of_a_ten_member_group_are_replaced_one_at_a_time() {
    let moto = start();
    let ec2 = moto.client(moto::PROD, "us-east-1").await;
    let old = golden_group(&moto, &ec2, 10).await;
    assert_eq!(old.len(), 10);
    // Each replacement stays Pending for two seconds after it appears.
    let proxy = proxy(
        &moto,
        Some(Fault::NewMembersPending(Duration::from_secs(2))),
    )
    .await;
    let env = Env::at(&moto, &proxy.url());
    let ids: Vec<&str> = old.iter().map(String::as_str).collect();
    env.queue(&ids);
    proxy.reset();

    let out = env.run(&["queue", "apply", "--yes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        output(&out).contains("group aws:prod/us-east-1/web-asg: 1 of 10 at once"),
        "{}",
        output(&out)
    );
    assert!(output(&out).contains("in 10 waves"), "{}", output(&out));

    let log = proxy.log();
    let terminations: Vec<usize> = log
        .iter()
        .enumerate()
        .filter(|(_, c)| c.action == "TerminateInstanceInAutoScalingGroup")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(terminations.len(), 10, "{:?}", actions(&log));
    assert!(
        !actions(&log).contains(&"TerminateInstances"),
        "never behind the group's back"
    );
    for (n, &at) in terminations.iter().enumerate() {
        // The group was whole (ten in service) when each member was taken out ...
        let last_look = log[..at]
            .iter()
            .rev()
            .find_map(|c| c.in_service)
            .expect("the group was described before each termination");
        assert_eq!(
            last_look, 10,
            "termination {n} started with the group short"
        );
        // ... and after it, the rollout saw the group short and waited until it was whole.
        let until = terminations.get(n + 1).copied().unwrap_or(log.len());
        let seen: Vec<usize> = log[at..until].iter().filter_map(|c| c.in_service).collect();
        eprintln!("termination {n}: group in service {seen:?}");
        assert!(seen.contains(&9), "termination {n}: {seen:?}");
        assert_eq!(seen.last(), Some(&10), "termination {n}: {seen:?}");
        assert!(seen.iter().all(|&s| s >= 9), "more than one out: {seen:?}");
    }
    for member in &old {
        assert_eq!(state(&ec2, member).await, InstanceStateName::Terminated);
    }
    let now_members = members(&ec2, "web-asg").await;
    assert_eq!(now_members.len(), 10);
    for member in &now_members {
        assert_eq!(image_of(&ec2, member).await, GOLDEN);
    }
    assert!(env.saved_queue().entries.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn launch_configurations_and_mixed_instances_policies_are_read_from_the_group() {
    use aws_sdk_autoscaling::types::{
        LaunchTemplate, LaunchTemplateSpecification, MixedInstancesPolicy,
    };
    let moto = start();
    let ec2 = moto.client(moto::PROD, "us-east-1").await;
    let autoscaling = moto.autoscaling(moto::PROD, "us-east-1").await;
    let subnets = ec2.describe_subnets().send().await.unwrap();
    let subnet = subnets.subnets()[0].subnet_id().unwrap().to_owned();
    // A group launching from a launch configuration on the old image.
    autoscaling
        .create_launch_configuration()
        .launch_configuration_name("web-lc")
        .image_id(OLD)
        .instance_type("t3.micro")
        .send()
        .await
        .unwrap();
    autoscaling
        .create_auto_scaling_group()
        .auto_scaling_group_name("lc-asg")
        .launch_configuration_name("web-lc")
        .min_size(1)
        .max_size(1)
        .desired_capacity(1)
        .vpc_zone_identifier(&subnet)
        .send()
        .await
        .unwrap();
    // A group with a mixed-instances policy at $Latest, which is golden (the default is not).
    let template = moto::launch_template(&ec2, "web", OLD).await;
    autoscaling
        .create_auto_scaling_group()
        .auto_scaling_group_name("mixed-asg")
        .mixed_instances_policy(
            MixedInstancesPolicy::builder()
                .launch_template(
                    LaunchTemplate::builder()
                        .launch_template_specification(
                            LaunchTemplateSpecification::builder()
                                .launch_template_id(&template)
                                .version("$Latest")
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .min_size(1)
        .max_size(1)
        .desired_capacity(1)
        .vpc_zone_identifier(&subnet)
        .send()
        .await
        .unwrap();
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
    let lc_member = members(&ec2, "lc-asg").await;
    let mixed_member = members(&ec2, "mixed-asg").await;
    assert_eq!((lc_member.len(), mixed_member.len()), (1, 1));
    let env = Env::new(&moto);
    env.queue(&[&lc_member[0], &mixed_member[0]]);

    // The collector read both groups' launches from the Auto Scaling API.
    let snapshot: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.path("snapshot.json")).unwrap()).unwrap();
    let group = |name: &str| {
        snapshot
            .pointer("/inventory/groups")
            .or_else(|| snapshot.get("groups"))
            .and_then(|g| g.as_array())
            .and_then(|g| g.iter().find(|g| g["name"] == name).cloned())
            .unwrap_or_else(|| panic!("{name} in {snapshot:#}"))
    };
    assert_eq!(group("lc-asg")["template"], "launch configuration web-lc");
    assert_eq!(group("lc-asg")["template_image"], OLD);
    assert_eq!(
        group("mixed-asg")["template"],
        format!("launch template {template} version $Latest (2)")
    );
    assert_eq!(group("mixed-asg")["template_image"], GOLDEN);

    // Without template steps, the member of the group launching the old image is not applied:
    // its group first.
    let out = env.run(&["--no-template-updates", "queue", "apply", "--yes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(env.saved_queue().entries.len(), 1);
    assert_eq!(env.saved_queue().entries[0].instance_id, lc_member[0]);
    assert_eq!(state(&ec2, &lc_member[0]).await, InstanceStateName::Running);
    assert_eq!(
        state(&ec2, &mixed_member[0]).await,
        InstanceStateName::Terminated
    );
    let replacement = members(&ec2, "mixed-asg").await;
    assert_eq!(replacement.len(), 1);
    assert_eq!(image_of(&ec2, &replacement[0]).await, GOLDEN);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_terminated_before_a_crash_is_only_waited_for() {
    let moto = start();
    let ec2 = moto.client(moto::PROD, "us-east-1").await;
    let old = golden_group(&moto, &ec2, 2).await;
    let proxy = proxy(&moto, None).await;
    let env = Env::at(&moto, &proxy.url());
    env.queue(&[&old[0]]);
    // The state a crash right after the termination leaves: done, and journaled.
    moto.autoscaling(moto::PROD, "us-east-1")
        .await
        .terminate_instance_in_auto_scaling_group()
        .instance_id(&old[0])
        .should_decrement_desired_capacity(false)
        .send()
        .await
        .unwrap();
    let mut journal = Journal::open(&env.data().join("journal.jsonl")).unwrap();
    journal
        .append(&Record {
            queued_at: None,
            at: now(),
            instance_id: old[0].clone(),
            step: Step::Terminated,
            dry_run: false,
        })
        .unwrap();
    proxy.reset();

    let out = env.run(&["queue", "apply", "--yes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        proxy.calls().get("TerminateInstanceInAutoScalingGroup"),
        None
    );
    assert!(proxy.calls().contains_key("DescribeAutoScalingGroups"));
    assert!(matches!(env.journal().last().unwrap().step, Step::Replaced));
    assert!(env.saved_queue().entries.is_empty());
    assert_eq!(state(&ec2, &old[1]).await, InstanceStateName::Running);
}

#[tokio::test(flavor = "multi_thread")]
async fn members_waiting_together_share_one_describe_of_their_group_per_poll() {
    let moto = start();
    let ec2 = moto.client(moto::PROD, "us-east-1").await;
    let old = golden_group(&moto, &ec2, 10).await;
    let proxy = proxy(
        &moto,
        Some(Fault::NewMembersPending(Duration::from_secs(4))),
    )
    .await;
    let mut env = Env::at(&moto, &proxy.url());
    env.set("FLEETSCOPE_ROLLOUT_MAX_UNAVAILABLE", "5");
    let ids: Vec<&str> = old[..5].iter().map(String::as_str).collect();
    env.queue(&ids);
    proxy.reset();

    let out = env.run(&["queue", "apply", "--yes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(output(&out).contains("in 1 wave,"), "{}", output(&out));
    let log = proxy.log();
    let last_termination = log
        .iter()
        .rposition(|c| c.action == "TerminateInstanceInAutoScalingGroup")
        .unwrap();
    // Five members wait at once; once the last one has seen the group after its own
    // termination, the group is described at most once a poll (one second).
    let polls: Vec<&Call> = log[last_termination..]
        .iter()
        .filter(|c| c.action == "DescribeAutoScalingGroups")
        .collect();
    assert!(polls.len() >= 4, "it waited: {}", polls.len());
    for pair in polls[1..].windows(2) {
        let apart = pair[1].at.duration_since(pair[0].at);
        assert!(apart >= Duration::from_millis(900), "{apart:?} apart");
    }
    // (moto, terminating five members at once, may launch a spare or two: at least ten.)
    assert!(polls.last().and_then(|c| c.in_service) >= Some(10));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_copy_takes_over_in_the_target_group_before_the_old_instance_is_drained() {
    let moto = start();
    let ec2 = moto.client(moto::PROD, "us-east-1").await;
    let old = moto::run(&ec2, OLD, "web-1", None).await;
    let group = moto.target_group("web", 1, &old, 8080).await;
    // The copy passes its status checks two seconds after it is first asked about.
    let proxy = proxy(
        &moto,
        Some(Fault::NewMembersPending(Duration::from_secs(2))),
    )
    .await;
    let env = Env::at(&moto, &proxy.url());
    env.queue(&[&old]);
    proxy.reset();

    let out = env.run(&["queue", "apply", "--yes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let copies = replacements(&ec2, &old).await;
    assert_eq!(copies.len(), 1);
    let copy = copies[0].instance_id().unwrap().to_owned();
    // Registered on the old one's port, healthy, and alone in the group.
    assert_eq!(
        moto.targets(&group).await,
        [(copy.clone(), 8080, "healthy".to_owned())]
    );
    assert_eq!(state(&ec2, &old).await, InstanceStateName::Terminated);

    let log = proxy.log();
    let register = position(&log, "RegisterTargets");
    let deregister = position(&log, "DeregisterTargets");
    let terminate = position(&log, "TerminateInstances");
    assert!(position(&log, "DescribeInstanceStatus") < register);
    assert!(
        log[register..deregister]
            .iter()
            .any(|c| c.action == "DescribeTargetHealth"),
        "health checked between register and deregister: {:?}",
        actions(&log)
    );
    assert!(deregister < terminate);
    // The deregistration delay (one second) was waited out.
    assert!(log[terminate].at.duration_since(log[deregister].at) >= Duration::from_secs(1));
    let steps: Vec<&str> = env
        .journal()
        .iter()
        .filter(|r| !r.dry_run && r.instance_id == old)
        .map(|r| match r.step {
            Step::Intent { call: Sent::Launch } => "send launch",
            Step::Intent {
                call: Sent::Register,
            } => "send register",
            Step::Intent {
                call: Sent::Deregister,
            } => "send deregister",
            Step::Intent {
                call: Sent::Terminate,
            } => "send terminate",
            Step::Launched { .. } => "launched",
            Step::Running { .. } => "running",
            Step::Registered { .. } => "registered",
            Step::Healthy { .. } => "healthy",
            Step::Draining => "draining",
            Step::Terminated => "terminated",
            Step::Replaced => "replaced",
            _ => "other",
        })
        .collect();
    assert_eq!(
        steps,
        [
            "send launch",
            "launched",
            "running",
            "send register",
            "registered",
            "healthy",
            "send deregister",
            "draining",
            "send terminate",
            "terminated",
            "replaced"
        ]
    );
    let at = |wanted: fn(&Step) -> bool| {
        env.journal()
            .iter()
            .find(|r| wanted(&r.step))
            .map(|r| r.at)
            .unwrap()
    };
    let waited =
        at(|s| matches!(s, Step::Running { .. })) - at(|s| matches!(s, Step::Launched { .. }));
    assert!(
        waited >= chrono::Duration::seconds(2),
        "status checks awaited: {waited}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_health_gate_stops_the_rollout_and_leaves_the_old_instance_serving() {
    let moto = start();
    let ec2 = moto.client(moto::PROD, "us-east-1").await;
    let first = moto::run(&ec2, OLD, "web-1", None).await;
    let second = moto::run(&ec2, OLD, "web-2", None).await;
    let group = moto.target_group("web", 0, &first, 80).await;
    let proxy = proxy(&moto, Some(Fault::RegisteredTargetsUnhealthy)).await;
    let mut env = Env::at(&moto, &proxy.url());
    env.set("FLEETSCOPE_ROLLOUT_MAX_PARALLEL", "1");
    env.set("FLEETSCOPE_ROLLOUT_HEALTH_TIMEOUT_SECS", "3");
    env.queue(&[&first, &second]);

    let out = env.run(&["queue", "apply", "--yes"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("timed out after 3s"), "{err}");
    assert!(err.contains("1 never started"), "{err}");
    // The old instance still runs and still serves; nothing was deregistered.
    assert_eq!(state(&ec2, &first).await, InstanceStateName::Running);
    assert_eq!(state(&ec2, &second).await, InstanceStateName::Running);
    assert!(
        moto.targets(&group)
            .await
            .iter()
            .any(|(id, _, _)| *id == first)
    );
    let calls = proxy.calls();
    assert_eq!(calls.get("DeregisterTargets"), None);
    assert_eq!(calls.get("TerminateInstances"), None);
    assert_eq!(
        calls.get("RunInstances"),
        Some(&1),
        "the second never started"
    );
    assert!(replacements(&ec2, &second).await.is_empty());
    assert_eq!(env.saved_queue().entries.len(), 2);
    let journal = env.journal();
    let failed = journal
        .iter()
        .find_map(|r| match &r.step {
            Step::Failed { error } => Some(error.clone()),
            _ => None,
        })
        .expect("the failure is journaled");
    assert!(
        failed.contains("timed out") && failed.len() < 200,
        "{failed}"
    );
    assert!(
        journal
            .iter()
            .any(|r| matches!(r.step, Step::Stopped { not_started: 1, .. }))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_mid_wave_lets_the_wave_finish_and_the_next_apply_resumes() {
    let moto = start();
    let ec2 = moto.client(moto::PROD, "us-east-1").await;
    let old = golden_group(&moto, &ec2, 3).await;
    let proxy = proxy(
        &moto,
        Some(Fault::NewMembersPending(Duration::from_secs(3))),
    )
    .await;
    let env = Env::at(&moto, &proxy.url());
    let ids: Vec<&str> = old.iter().map(String::as_str).collect();
    env.queue(&ids);
    proxy.reset();

    let child = env
        .command(&["queue", "apply", "--yes"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !actions(&proxy.log()).contains(&"TerminateInstanceInAutoScalingGroup") {
        assert!(
            std::time::Instant::now() < deadline,
            "no termination started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("Stopping"), "{}", stderr(&out));
    // The member in flight was replaced whole; the others were never touched.
    let terminated: Vec<&String> = {
        let mut gone = Vec::new();
        for member in &old {
            if state(&ec2, member).await == InstanceStateName::Terminated {
                gone.push(member);
            }
        }
        gone
    };
    assert_eq!(terminated.len(), 1, "{}", stderr(&out));
    assert_eq!(env.saved_queue().entries.len(), 2);
    assert!(
        env.journal()
            .iter()
            .any(|r| matches!(r.step, Step::Stopped { not_started: 2, .. }))
    );
    assert_eq!(members(&ec2, "web-asg").await.len(), 3);

    let out = env.run(&["queue", "apply", "--yes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for member in &old {
        assert_eq!(state(&ec2, member).await, InstanceStateName::Terminated);
    }
    assert_eq!(
        proxy.calls().get("TerminateInstanceInAutoScalingGroup"),
        Some(&3),
        "each member terminated once"
    );
    assert!(env.saved_queue().entries.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn instances_a_copy_cannot_carry_over_are_left_queued_with_why() {
    let moto = start();
    let ec2 = moto.client(moto::PROD, "us-east-1").await;
    let with_address = moto::run(&ec2, OLD, "web-1", None).await;
    let address = ec2.allocate_address().send().await.unwrap();
    ec2.associate_address()
        .instance_id(&with_address)
        .set_allocation_id(address.allocation_id().map(str::to_owned))
        .send()
        .await
        .unwrap();
    let two_interfaces = moto::run(&ec2, OLD, "web-2", None).await;
    let subnets = ec2.describe_subnets().send().await.unwrap();
    let interface = ec2
        .create_network_interface()
        .subnet_id(subnets.subnets()[0].subnet_id().unwrap())
        .send()
        .await
        .unwrap();
    ec2.attach_network_interface()
        .instance_id(&two_interfaces)
        .network_interface_id(
            interface
                .network_interface()
                .and_then(|i| i.network_interface_id())
                .unwrap(),
        )
        .device_index(1)
        .send()
        .await
        .unwrap();
    let plain = moto::run(&ec2, OLD, "web-3", None).await;
    let env = Env::new(&moto);
    env.queue(&[&with_address, &two_interfaces, &plain]);

    let out = env.run(&["queue", "apply", "--yes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = output(&out);
    assert!(err.contains("Left queued, not executable now (2)"), "{err}");
    assert!(
        err.contains(&format!("{with_address}: it holds the Elastic IP")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{two_interfaces}: 2 network interfaces")),
        "{err}"
    );
    assert_eq!(state(&ec2, &with_address).await, InstanceStateName::Running);
    assert_eq!(
        state(&ec2, &two_interfaces).await,
        InstanceStateName::Running
    );
    assert!(replacements(&ec2, &with_address).await.is_empty());
    assert_eq!(state(&ec2, &plain).await, InstanceStateName::Terminated);
    let left: Vec<String> = env
        .saved_queue()
        .entries
        .iter()
        .map(|e| e.instance_id.clone())
        .collect();
    assert_eq!(left, [with_address, two_interfaces]);
}

/// A queue entry for a standalone instance of `source` that nobody can reach.
fn entry_of(source: &str, id: &str) -> fleetscope::queue::QueueEntry {
    fleetscope::queue::QueueEntry {
        instance_id: id.into(),
        cloud: fleetscope::core::model::Cloud::Aws,
        source: source.into(),
        account: OWNER.into(),
        region: "us-east-1".into(),
        name: "web-1".into(),
        image: OLD.into(),
        target_image: Some(GOLDEN.into()),
        verdict: fleetscope::core::policy::Verdict::Outdated,
        reason: "a newer image exists".into(),
        strategy: Strategy::AwsLaunchCopy,
        queued_at: now(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_profile_or_missing_credentials_is_one_short_line() {
    let moto = start();
    let dir = tempfile::tempdir().unwrap();
    for (profiles, files, expected) in [
        // The profile is configured in fleetscope but not in the AWS files.
        (
            "nope",
            true,
            "profile `nope` not found in ~/.aws/config or ~/.aws/credentials",
        ),
        // No AWS files at all, nothing in the environment.
        (
            "prod",
            false,
            "no AWS credentials for this profile (tried the environment, ~/.aws files, SSO, instance role)",
        ),
    ] {
        let mut env = Env::new(&moto);
        std::fs::write(
            env.path("config.toml"),
            format!(
                "version = 1\n[aws]\nprofiles = [\"{profiles}\"]\nregions = [\"us-east-1\"]\nendpoint_url = \"{}\"\ntimeout_secs = 5\n",
                moto.url()
            ),
        )
        .unwrap();
        if !files {
            env.env.retain(|(k, _)| !k.starts_with("AWS_"));
            env.set(
                "AWS_CONFIG_FILE",
                &dir.path().join("none").display().to_string(),
            );
            env.set(
                "AWS_SHARED_CREDENTIALS_FILE",
                &dir.path().join("none").display().to_string(),
            );
            env.set("AWS_EC2_METADATA_DISABLED", "true");
        }
        let mut queue = Queue::default();
        queue.add([entry_of(&format!("aws:{profiles}"), "i-0123456789abcdef0")]);
        queue.save(&env.data().join("queue.json")).unwrap();
        let out = env
            .command(&["queue", "apply", "--yes"])
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_PROFILE")
            .output()
            .unwrap();
        let err = output(&out);
        let plan = String::from_utf8_lossy(&out.stdout).into_owned();
        let line = plan
            .lines()
            .find(|l| l.contains("i-0123456789abcdef0:"))
            .unwrap_or_else(|| panic!("{plan}{}", stderr(&out)));
        // The whole reason on this one line: it ends the line.
        assert!(line.ends_with(expected), "{line}");
        assert!(line.contains("aws:"), "names the source: {line}");
        assert!(line.chars().count() < 200, "{} chars: {line}", line.len());
        assert!(!err.contains("DispatchFailure"), "{err}");
        assert_eq!(env.saved_queue().entries.len(), 1);
        assert_eq!(
            out.status.code(),
            Some(2),
            "a check that failed is a failure: {err}"
        );
        // The journal keeps the same short reason.
        let journal = std::fs::read_to_string(env.data().join("journal.jsonl")).unwrap();
        let record: serde_json::Value = journal
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|r| r["step"] == "failed" && r["instance_id"] == "i-0123456789abcdef0")
            .unwrap_or_else(|| panic!("no failed record: {journal}"));
        let error = record["error"].as_str().unwrap();
        assert!(error.ends_with(expected), "{error}");
        assert!(error.chars().count() < 200, "{error}");
        // The full chain behind the short reason is kept in the log, for a bug report.
        let log = std::fs::read_to_string(env.data().join("fleetscope.log")).unwrap();
        let logged = log
            .lines()
            .find(|l| l.contains(expected))
            .unwrap_or_else(|| panic!("not logged: {log}"));
        let (_, full) = logged.split_once(" | ").unwrap();
        assert!(full.len() > expected.len(), "the whole chain: {logged}");
    }
}

async fn image_of(ec2: &Client, id: &str) -> String {
    let answer = ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .unwrap();
    answer.reservations()[0].instances()[0]
        .image_id()
        .unwrap()
        .to_owned()
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

/// Every instance moto ever ran with this tag value, whatever its state now.
async fn ever_tagged(ec2: &Client, key: &str, value: &str) -> Vec<String> {
    ec2.describe_instances()
        .filters(
            Filter::builder()
                .name(format!("tag:{key}"))
                .values(value)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| i.instance_id().map(str::to_owned))
        .collect()
}

/// A standalone instance behind a target group, its apply killed while one of the calls
/// that change the cloud is in flight; the next apply finishes, and moto's own record shows
/// one copy launched, the old instance terminated, the copy serving in its place.
async fn standalone_killed_during(action: &str, reached: bool) {
    let moto = start();
    let ec2 = moto.client(moto::PROD, "us-east-1").await;
    let old = moto::run(&ec2, OLD, "web-1", None).await;
    let group = moto.target_group("web", 0, &old, 8080).await;
    let proxy = proxy(&moto, None).await;
    let env = Env::at(&moto, &proxy.url());
    env.queue(&[&old]);
    env.apply_killed_during(&proxy, action, reached);

    let out = env.run(&["queue", "apply", "--yes"]);
    assert!(out.status.success(), "{action} {reached}: {}", output(&out));
    let copies = ever_tagged(&ec2, "fleetscope:replaces", &old).await;
    assert_eq!(
        copies.len(),
        1,
        "{action} {reached}: one copy, ever: {copies:?}"
    );
    assert_eq!(state(&ec2, &copies[0]).await, InstanceStateName::Running);
    assert_eq!(state(&ec2, &old).await, InstanceStateName::Terminated);
    assert_eq!(
        moto.targets(&group).await,
        [(copies[0].clone(), 8080, "healthy".to_owned())],
        "{action} {reached}"
    );
    let journal = env.journal();
    let count = |wanted: fn(&Step) -> bool| journal.iter().filter(|r| wanted(&r.step)).count();
    assert_eq!(
        count(|s| matches!(s, Step::Launched { .. })),
        1,
        "{journal:?}"
    );
    assert_eq!(count(|s| matches!(s, Step::Terminated)), 1, "{journal:?}");
    assert_eq!(count(|s| matches!(s, Step::Replaced)), 1, "{journal:?}");
    assert!(env.saved_queue().entries.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_while_launching_the_copy_resumes_with_one_copy() {
    standalone_killed_during("RunInstances", false).await;
    standalone_killed_during("RunInstances", true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_while_moving_targets_resumes_with_one_copy() {
    standalone_killed_during("RegisterTargets", true).await;
    standalone_killed_during("DeregisterTargets", true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_while_terminating_the_old_instance_resumes_with_one_copy() {
    standalone_killed_during("TerminateInstances", false).await;
    standalone_killed_during("TerminateInstances", true).await;
}

/// A group member's termination killed mid-call: when it reached AWS, the next apply journals
/// it as terminated by this apply and waits for the group; when it did not, it sends it. Either
/// way the group launches exactly one replacement.
#[tokio::test(flavor = "multi_thread")]
async fn killed_while_terminating_a_member_resumes_by_waiting_or_by_sending_never_twice() {
    for reached in [true, false] {
        let moto = start();
        let ec2 = moto.client(moto::PROD, "us-east-1").await;
        let old = golden_group(&moto, &ec2, 2).await;
        let proxy = proxy(&moto, None).await;
        let env = Env::at(&moto, &proxy.url());
        env.queue(&[&old[0]]);
        env.apply_killed_during(&proxy, "TerminateInstanceInAutoScalingGroup", reached);
        proxy.reset();

        let out = env.run(&["queue", "apply", "--yes"]);
        assert!(out.status.success(), "{reached}: {}", output(&out));
        let sent_again = proxy
            .calls()
            .get("TerminateInstanceInAutoScalingGroup")
            .copied();
        assert_eq!(sent_again, (!reached).then_some(1), "{reached}");
        // Every instance moto ever ran here, whatever its state: the group's only.
        let ever = ec2.describe_instances().send().await.unwrap();
        let ever: Vec<_> = ever
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter_map(|i| i.instance_id())
            .collect();
        assert_eq!(
            ever.len(),
            3,
            "{reached}: two members and one replacement: {ever:?}"
        );
        assert_eq!(state(&ec2, &old[0]).await, InstanceStateName::Terminated);
        assert_eq!(state(&ec2, &old[1]).await, InstanceStateName::Running);
        let journal = env.journal();
        let steps: Vec<&Step> = journal
            .iter()
            .filter(|r| r.instance_id == old[0])
            .map(|r| &r.step)
            .collect();
        assert!(
            !steps.iter().any(|s| matches!(s, Step::Skipped { .. })),
            "{reached}: terminated by this apply, never skipped: {steps:?}"
        );
        assert_eq!(
            steps
                .iter()
                .filter(|s| matches!(s, Step::Terminated))
                .count(),
            1,
            "{steps:?}"
        );
        assert!(matches!(steps.last(), Some(Step::Replaced)), "{steps:?}");
    }
}

// Template steps: a group whose template launches the old image is pointed at the golden one
// first (a new launch template version, or a copy of its launch configuration), then rolls.

const GROUP_KEY: &str = "template aws:prod/us-east-1/web-asg";

/// A launch template on the old image with much of what a real one carries, nested fields
/// too: a new version must carry all of it.
async fn rich_template(ec2: &Client, name: &str) -> String {
    use aws_sdk_ec2::types::{
        CreditSpecificationRequest, InstanceType, LaunchTemplateBlockDeviceMappingRequest,
        LaunchTemplateCpuOptionsRequest, LaunchTemplateEbsBlockDeviceRequest,
        LaunchTemplateHttpTokensState, LaunchTemplateIamInstanceProfileSpecificationRequest,
        LaunchTemplateInstanceMetadataEndpointState, LaunchTemplateInstanceMetadataOptionsRequest,
        LaunchTemplateInstanceNetworkInterfaceSpecificationRequest, LaunchTemplatePlacementRequest,
        LaunchTemplateTagSpecificationRequest, LaunchTemplatesMonitoringRequest, ResourceType,
        ShutdownBehavior, Tag, Tenancy, VolumeType,
    };
    let sg = ec2
        .create_security_group()
        .group_name(format!("{name}-sg"))
        .description("web")
        .send()
        .await
        .unwrap()
        .group_id()
        .unwrap()
        .to_owned();
    let data = RequestLaunchTemplateData::builder()
        .image_id(OLD)
        .instance_type(InstanceType::T3Micro)
        .key_name("ops")
        // No user data: moto 5.2.5 keeps a CreateLaunchTemplateVersion's user data undecoded
        // and then cannot launch from that version (the unit tests carry user data over).
        .ebs_optimized(true)
        .instance_initiated_shutdown_behavior(ShutdownBehavior::Terminate)
        .iam_instance_profile(
            LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
                .name("web-profile")
                .build(),
        )
        .block_device_mappings(
            LaunchTemplateBlockDeviceMappingRequest::builder()
                .device_name("/dev/xvda")
                .ebs(
                    LaunchTemplateEbsBlockDeviceRequest::builder()
                        .volume_size(40)
                        .volume_type(VolumeType::Gp3)
                        .iops(3000)
                        .throughput(250)
                        .encrypted(true)
                        .delete_on_termination(true)
                        .build(),
                )
                .build(),
        )
        .network_interfaces(
            LaunchTemplateInstanceNetworkInterfaceSpecificationRequest::builder()
                .device_index(0)
                .associate_public_ip_address(false)
                .delete_on_termination(true)
                .groups(&sg)
                .build(),
        )
        .monitoring(
            LaunchTemplatesMonitoringRequest::builder()
                .enabled(true)
                .build(),
        )
        .placement(
            LaunchTemplatePlacementRequest::builder()
                .tenancy(Tenancy::Default)
                .build(),
        )
        .credit_specification(
            CreditSpecificationRequest::builder()
                .cpu_credits("unlimited")
                .build(),
        )
        .cpu_options(
            LaunchTemplateCpuOptionsRequest::builder()
                .core_count(1)
                .threads_per_core(2)
                .build(),
        )
        .metadata_options(
            LaunchTemplateInstanceMetadataOptionsRequest::builder()
                .http_tokens(LaunchTemplateHttpTokensState::Required)
                .http_put_response_hop_limit(2)
                .http_endpoint(LaunchTemplateInstanceMetadataEndpointState::Enabled)
                .build(),
        )
        .tag_specifications(
            LaunchTemplateTagSpecificationRequest::builder()
                .resource_type(ResourceType::Instance)
                .tags(Tag::builder().key("team").value("web").build())
                .build(),
        )
        .build();
    ec2.create_launch_template()
        .launch_template_name(name)
        .launch_template_data(data)
        .send()
        .await
        .unwrap()
        .launch_template()
        .and_then(|t| t.launch_template_id())
        .unwrap()
        .to_owned()
}

/// A group "web-asg" of `size` members on the old image, launching `version` (URL-encoded) of
/// a rich launch template: the template's id and the members.
async fn drifted_group(
    moto: &Moto,
    ec2: &Client,
    version: &str,
    size: u32,
) -> (String, Vec<String>) {
    let template = rich_template(ec2, "web").await;
    moto.create_asg_at(
        moto::PROD,
        "us-east-1",
        "web-asg",
        (&template, version),
        size,
    )
    .await;
    let members = members(ec2, "web-asg").await;
    assert_eq!(members.len(), size as usize);
    (template, members)
}

/// Every version of a launch template, oldest first.
async fn versions(ec2: &Client, template: &str) -> Vec<aws_sdk_ec2::types::LaunchTemplateVersion> {
    let mut versions = ec2
        .describe_launch_template_versions()
        .launch_template_id(template)
        .send()
        .await
        .unwrap()
        .launch_template_versions()
        .to_vec();
    versions.sort_by_key(|v| v.version_number());
    versions
}

async fn default_version(ec2: &Client, template: &str) -> i64 {
    ec2.describe_launch_templates()
        .launch_template_ids(template)
        .send()
        .await
        .unwrap()
        .launch_templates()[0]
        .default_version_number()
        .unwrap()
}

/// The version after `old`, as a template step makes it: the same data on the golden image,
/// described as fleetscope's.
fn assert_copied(
    old: &aws_sdk_ec2::types::LaunchTemplateVersion,
    new: &aws_sdk_ec2::types::LaunchTemplateVersion,
) {
    let mut expected = old.launch_template_data().unwrap().clone();
    expected.image_id = Some(GOLDEN.to_owned());
    assert_eq!(new.launch_template_data(), Some(&expected));
    assert_eq!(
        new.version_description(),
        Some(
            format!(
                "fleetscope: {GOLDEN} from version {}",
                old.version_number().unwrap()
            )
            .as_str()
        )
    );
}

/// The old members are gone and as many run in their place, every one on the golden image.
async fn assert_all_golden(ec2: &Client, group: &str, old: &[String]) {
    for member in old {
        assert_eq!(state(ec2, member).await, InstanceStateName::Terminated);
    }
    let now = members(ec2, group).await;
    assert_eq!(now.len(), old.len(), "{now:?}");
    for member in &now {
        assert_eq!(image_of(ec2, member).await, GOLDEN, "{member}");
    }
}

/// The calls one template step made: from its look at the group (a DescribeAutoScalingGroups)
/// to its last call, `last`.
fn step_calls<'a>(log: &'a [Call], last: &str) -> Vec<&'a str> {
    let end = position(log, last);
    let start = log[..end]
        .iter()
        .rposition(|c| c.action == "DescribeAutoScalingGroups")
        .expect("the step looks at its group first");
    actions(&log[start..=end])
}

/// The template step's journal, in words.
fn template_journal(env: &Env) -> Vec<&'static str> {
    env.journal()
        .iter()
        .filter(|r| !r.dry_run && r.instance_id == GROUP_KEY)
        .map(|r| match r.step {
            Step::Intent {
                call: Sent::CreateTemplate,
            } => "send create",
            Step::TemplateCreated { .. } => "created",
            Step::Intent {
                call: Sent::PointGroup,
            } => "send point",
            Step::GroupPointed { .. } => "pointed",
            _ => "other",
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_at_default_gets_a_new_default_version_and_rolls_onto_the_golden_image() {
    let moto = start();
    let ec2 = moto.client(moto::PROD, "us-east-1").await;
    let (template, old) = drifted_group(&moto, &ec2, "%24Default", 2).await;
    let before = versions(&ec2, &template).await;
    assert_eq!(before.len(), 1);
    let proxy = proxy(&moto, None).await;
    let env = Env::at(&moto, &proxy.url());
    let ids: Vec<&str> = old.iter().map(String::as_str).collect();
    let queue = env.queue(&ids);
    assert!(matches!(
        queue.entries[0].strategy,
        Strategy::AwsTerminateInGroup { .. }
    ));

    // Template updates off: today's refusal, nothing changed.
    let out = env.run(&["--no-template-updates", "queue", "apply", "--yes"]);
    assert!(out.status.success(), "{}", output(&out));
    let refusal = format!(
        "template drift: web-asg launches {OLD} (launch template {template} version $Default (1)); point its template at {GOLDEN} first"
    );
    assert!(output(&out).contains(&refusal), "{}", output(&out));
    assert_eq!(versions(&ec2, &template).await, before);

    // The typed confirmation names the template step.
    let out = env.run(&["queue", "apply"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("Type \"replace 2, update 1 template\""),
        "{}",
        stderr(&out)
    );

    // A dry run says what it would do and changes nothing.
    let out = env.run(&["queue", "apply", "--dry-run"]);
    assert!(out.status.success(), "{}", output(&out));
    let step = format!(
        "point web-asg at {GOLDEN} (launch template web: version 2, from version 1; then made the default version, which the group launches)"
    );
    assert!(output(&out).contains(&step), "{}", output(&out));
    assert!(output(&out).contains("would succeed"), "{}", output(&out));
    assert_eq!(versions(&ec2, &template).await, before);
    assert_eq!(default_version(&ec2, &template).await, 1);
    for member in &old {
        assert_eq!(state(&ec2, member).await, InstanceStateName::Running);
    }
    assert_eq!(env.saved_queue(), queue);

    proxy.reset();
    let out = env.run(&["queue", "apply", "--yes"]);
    assert!(out.status.success(), "{}", output(&out));
    assert!(
        stderr(&out).contains("1 template updated"),
        "{}",
        stderr(&out)
    );
    let after = versions(&ec2, &template).await;
    assert_eq!(after.len(), 2);
    let mut old_version = after[0].clone();
    assert_eq!(old_version.default_version, Some(false));
    // Only whether it is the default changed.
    old_version.default_version = before[0].default_version;
    assert_eq!(old_version, before[0], "the old version is unchanged");
    assert_copied(&before[0], &after[1]);
    assert_eq!(default_version(&ec2, &template).await, 2);
    assert_all_golden(&ec2, "web-asg", &old).await;
    assert!(env.saved_queue().entries.is_empty());
    assert_eq!(
        template_journal(&env),
        ["send create", "created", "send point", "pointed"]
    );

    // Calls: the plan looks at every member's group and its template version, and once, for
    // all of them, at the group's template (the source version and those after it); the step
    // itself makes five.
    let log = proxy.log();
    assert_eq!(
        step_calls(&log, "ModifyLaunchTemplate"),
        [
            "DescribeAutoScalingGroups",
            "DescribeLaunchTemplateVersions",
            "DescribeLaunchTemplateVersions",
            "CreateLaunchTemplateVersion",
            "ModifyLaunchTemplate"
        ]
    );
    let plans = &log[..position(&log, "ModifyLaunchTemplate") - 4];
    let count = |action: &str| plans.iter().filter(|c| c.action == action).count();
    assert_eq!(
        count("DescribeAutoScalingGroups"),
        2,
        "{:?}",
        actions(plans)
    );
    assert_eq!(
        count("DescribeLaunchTemplateVersions"),
        2 + 2,
        "{:?}",
        actions(plans)
    );
    assert_eq!(plans.len(), 6, "{:?}", actions(plans));
    let calls = proxy.calls();
    assert_eq!(calls.get("CreateLaunchTemplateVersion"), Some(&1));
    assert_eq!(calls.get("ModifyLaunchTemplate"), Some(&1));
    assert_eq!(calls.get("UpdateAutoScalingGroup"), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_at_latest_launches_the_new_version_with_no_call_to_point_it() {
    let moto = start();
    let ec2 = moto.client(moto::PROD, "us-east-1").await;
    let (template, old) = drifted_group(&moto, &ec2, "%24Latest", 2).await;
    let before = versions(&ec2, &template).await;
    let proxy = proxy(&moto, None).await;
    let env = Env::at(&moto, &proxy.url());
    let ids: Vec<&str> = old.iter().map(String::as_str).collect();
    env.queue(&ids);

    let out = env.run(&["queue", "apply", "--dry-run"]);
    assert!(out.status.success(), "{}", output(&out));
    assert!(
        output(&out).contains(&format!(
            "point web-asg at {GOLDEN} (launch template web: version 2, from version 1, which the group launches as $Latest)"
        )),
        "{}",
        output(&out)
    );
    assert_eq!(versions(&ec2, &template).await, before);

    proxy.reset();
    let out = env.run(&["queue", "apply", "--yes"]);
    assert!(out.status.success(), "{}", output(&out));
    let after = versions(&ec2, &template).await;
    assert_eq!(after.len(), 2);
    assert_eq!(after[0], before[0]);
    assert_copied(&before[0], &after[1]);
    assert_eq!(
        default_version(&ec2, &template).await,
        1,
        "the default stays"
    );
    assert_all_golden(&ec2, "web-asg", &old).await;
    assert_eq!(
        template_journal(&env),
        ["send create", "created", "pointed"]
    );
    let log = proxy.log();
    assert_eq!(
        step_calls(&log, "CreateLaunchTemplateVersion"),
        [
            "DescribeAutoScalingGroups",
            "DescribeLaunchTemplateVersions",
            "CreateLaunchTemplateVersion"
        ]
    );
    let calls = proxy.calls();
    assert_eq!(calls.get("ModifyLaunchTemplate"), None);
    assert_eq!(calls.get("UpdateAutoScalingGroup"), None);
}

async fn group_of(moto: &Moto, name: &str) -> aws_sdk_autoscaling::types::AutoScalingGroup {
    moto.autoscaling(moto::PROD, "us-east-1")
        .await
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .unwrap()
        .auto_scaling_groups()[0]
        .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_at_a_version_number_is_moved_to_the_new_version() {
    let moto = start();
    let ec2 = moto.client(moto::PROD, "us-east-1").await;
    let (template, old) = drifted_group(&moto, &ec2, "1", 2).await;
    let before = versions(&ec2, &template).await;
    let proxy = proxy(&moto, None).await;
    let env = Env::at(&moto, &proxy.url());
    let ids: Vec<&str> = old.iter().map(String::as_str).collect();
    env.queue(&ids);

    let out = env.run(&["queue", "apply", "--dry-run"]);
    assert!(out.status.success(), "{}", output(&out));
    assert!(
        output(&out).contains(&format!(
            "point web-asg at {GOLDEN} (launch template web: version 2, from version 1; then the group launches it instead of 1)"
        )),
        "{}",
        output(&out)
    );
    assert_eq!(versions(&ec2, &template).await, before);
    let version = |g: aws_sdk_autoscaling::types::AutoScalingGroup| {
        g.launch_template()
            .and_then(|t| t.version())
            .map(str::to_owned)
    };
    assert_eq!(
        version(group_of(&moto, "web-asg").await).as_deref(),
        Some("1")
    );

    proxy.reset();
    let out = env.run(&["queue", "apply", "--yes"]);
    assert!(out.status.success(), "{}", output(&out));
    let after = versions(&ec2, &template).await;
    assert_eq!(after.len(), 2);
    assert_eq!(after[0], before[0]);
    assert_copied(&before[0], &after[1]);
    assert_eq!(
        version(group_of(&moto, "web-asg").await).as_deref(),
        Some("2")
    );
    assert_eq!(
        default_version(&ec2, &template).await,
        1,
        "the default stays"
    );
    assert_all_golden(&ec2, "web-asg", &old).await;
    assert_eq!(
        step_calls(&proxy.log(), "UpdateAutoScalingGroup"),
        [
            "DescribeAutoScalingGroups",
            "DescribeLaunchTemplateVersions",
            "DescribeLaunchTemplateVersions",
            "CreateLaunchTemplateVersion",
            "UpdateAutoScalingGroup"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mixed_instances_policy_is_resent_with_only_its_version_changed() {
    use aws_sdk_autoscaling::types::{
        InstancesDistribution, LaunchTemplate, LaunchTemplateOverrides,
        LaunchTemplateSpecification, MixedInstancesPolicy,
    };
    let moto = start();
    let ec2 = moto.client(moto::PROD, "us-east-1").await;
    let autoscaling = moto.autoscaling(moto::PROD, "us-east-1").await;
    let subnets = ec2.describe_subnets().send().await.unwrap();
    let subnet = subnets.subnets()[0].subnet_id().unwrap().to_owned();
    let template = rich_template(&ec2, "web").await;
    let other = moto::launch_template(&ec2, "web-arm", OLD).await;
    let spec = |id: &str| {
        LaunchTemplateSpecification::builder()
            .launch_template_id(id)
            .version("1")
            .build()
    };
    let mixed = |name: &str, overrides: Vec<LaunchTemplateOverrides>| {
        autoscaling
            .create_auto_scaling_group()
            .auto_scaling_group_name(name)
            .mixed_instances_policy(
                MixedInstancesPolicy::builder()
                    .launch_template(
                        LaunchTemplate::builder()
                            .launch_template_specification(spec(&template))
                            .set_overrides(Some(overrides))
                            .build(),
                    )
                    .instances_distribution(
                        // (moto rounds a half On-Demand share above the base down to
                        // nothing and launches one member short: none above the base.)
                        InstancesDistribution::builder()
                            .on_demand_base_capacity(1)
                            .on_demand_percentage_above_base_capacity(0)
                            .spot_allocation_strategy("price-capacity-optimized")
                            .build(),
                    )
                    .build(),
            )
            .min_size(2)
            .max_size(2)
            .desired_capacity(2)
            .vpc_zone_identifier(&subnet)
            .send()
    };
    let sizes = |kinds: &[(&str, &str)]| {
        kinds
            .iter()
            .map(|(kind, weight)| {
                LaunchTemplateOverrides::builder()
                    .instance_type(*kind)
                    .weighted_capacity(*weight)
                    .build()
            })
            .collect::<Vec<_>>()
    };
    mixed("web-asg", sizes(&[("t3.micro", "1"), ("t3.small", "2")]))
        .await
        .unwrap();
    // Its overrides name a template of their own: no faithful template step.
    let mut arm = sizes(&[("t3.micro", "1")]);
    arm.push(
        LaunchTemplateOverrides::builder()
            .instance_type("t4g.micro")
            .launch_template_specification(spec(&other))
            .build(),
    );
    mixed("arm-asg", arm).await.unwrap();
    let old = members(&ec2, "web-asg").await;
    let arm_members = members(&ec2, "arm-asg").await;
    let before = group_of(&moto, "web-asg").await;
    let before_versions = versions(&ec2, &template).await;
    let env = Env::new(&moto);
    let mut ids: Vec<&str> = old.iter().map(String::as_str).collect();
    ids.push(&arm_members[0]);
    env.queue(&ids);

    let out = env.run(&["queue", "apply", "--yes"]);
    assert!(out.status.success(), "{}", output(&out));
    let plan = output(&out);
    assert!(
        plan.contains(&format!(
            "point web-asg at {GOLDEN} (mixed instances policy, launch template web: version 2, from version 1; then the group launches it instead of 1)"
        )),
        "{plan}"
    );
    let left = plan
        .lines()
        .find(|l| l.contains(&format!("{}:", arm_members[0])))
        .unwrap_or_else(|| panic!("{plan}"));
    assert!(
        left.contains("template drift: arm-asg launches")
            && left.contains(
                &format!("a template step cannot fix it: overrides of its mixed instances policy name launch templates of their own ({other})")
            ),
        "{left}"
    );
    assert_eq!(
        state(&ec2, &arm_members[0]).await,
        InstanceStateName::Running
    );

    let after = group_of(&moto, "web-asg").await;
    let policy = |g: &aws_sdk_autoscaling::types::AutoScalingGroup| {
        g.mixed_instances_policy().unwrap().clone()
    };
    let (was, now) = (policy(&before), policy(&after));
    assert_eq!(
        now.launch_template()
            .and_then(|t| t.launch_template_specification())
            .and_then(|s| s.version()),
        Some("2")
    );
    assert_eq!(
        now.launch_template().map(|t| t.overrides()),
        was.launch_template().map(|t| t.overrides()),
        "the overrides are kept"
    );
    assert_eq!(now.instances_distribution(), was.instances_distribution());
    let after_versions = versions(&ec2, &template).await;
    assert_eq!(after_versions.len(), 2);
    assert_eq!(after_versions[0], before_versions[0]);
    assert_copied(&before_versions[0], &after_versions[1]);
    assert_all_golden(&ec2, "web-asg", &old).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_launch_configuration_is_copied_onto_the_golden_image_unless_aws_refuses() {
    use aws_sdk_autoscaling::types::{
        BlockDeviceMapping, Ebs, InstanceMetadataOptions, InstanceMonitoring,
    };
    let moto = start();
    let ec2 = moto.client(moto::PROD, "us-east-1").await;
    let autoscaling = moto.autoscaling(moto::PROD, "us-east-1").await;
    let subnets = ec2.describe_subnets().send().await.unwrap();
    let subnet = subnets.subnets()[0].subnet_id().unwrap().to_owned();
    let sg = moto::security_group_open_to_world(&ec2, 443).await;
    autoscaling
        .create_launch_configuration()
        .launch_configuration_name("web-lc")
        .image_id(OLD)
        .instance_type("t3.micro")
        .key_name("ops")
        .security_groups(&sg)
        .user_data("IyEvYmluL3NoCmVjaG8gd2ViCg==")
        .iam_instance_profile("web-profile")
        .ebs_optimized(true)
        .associate_public_ip_address(true)
        .instance_monitoring(InstanceMonitoring::builder().enabled(true).build())
        .block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name("/dev/xvda")
                .ebs(Ebs::builder().volume_size(40).volume_type("gp3").build())
                .build(),
        )
        .metadata_options(
            InstanceMetadataOptions::builder()
                .http_tokens(aws_sdk_autoscaling::types::InstanceMetadataHttpTokensState::Required)
                .http_put_response_hop_limit(2)
                .build(),
        )
        .send()
        .await
        .unwrap();
    autoscaling
        .create_auto_scaling_group()
        .auto_scaling_group_name("lc-asg")
        .launch_configuration_name("web-lc")
        .min_size(2)
        .max_size(2)
        .desired_capacity(2)
        .vpc_zone_identifier(&subnet)
        .send()
        .await
        .unwrap();
    let old = members(&ec2, "lc-asg").await;
    let ids: Vec<&str> = old.iter().map(String::as_str).collect();
    let configurations = || async {
        autoscaling
            .describe_launch_configurations()
            .send()
            .await
            .unwrap()
            .launch_configurations()
            .to_vec()
    };
    let before = configurations().await;
    let copy = format!("web-lc-{GOLDEN}");

    // An account where AWS refuses new launch configurations: one line, nothing changed.
    let refusing = proxy(
        &moto,
        Some(Fault::Refuse {
            action: "CreateLaunchConfiguration",
            code: "UnsupportedOperation",
            message: "The Launch Configuration creation operation is not available in your account. Use launch templates to create configuration templates for your Auto Scaling groups.",
        }),
    )
    .await;
    let env = Env::at(&moto, &refusing.url());
    env.queue(&ids);
    let out = env.run(&["queue", "apply", "--yes"]);
    assert_eq!(out.status.code(), Some(2), "{}", output(&out));
    assert!(
        stderr(&out).contains(
            "AWS refuses new launch configurations in this account: move lc-asg to a launch template, then apply again"
        ),
        "{}",
        stderr(&out)
    );
    assert_eq!(configurations().await, before);
    for member in &old {
        assert_eq!(state(&ec2, member).await, InstanceStateName::Running);
    }

    let proxy = proxy(&moto, None).await;
    let env = Env::at(&moto, &proxy.url());
    env.queue(&ids);
    let out = env.run(&["queue", "apply", "--dry-run"]);
    assert!(out.status.success(), "{}", output(&out));
    assert!(
        output(&out).contains(&format!(
            "point lc-asg at {GOLDEN} (launch configuration web-lc: a copy, {copy}, which the group then launches)"
        )),
        "{}",
        output(&out)
    );
    assert_eq!(configurations().await, before, "a dry run makes no copy");

    proxy.reset();
    let out = env.run(&["queue", "apply", "--yes"]);
    assert!(out.status.success(), "{}", output(&out));
    let after = configurations().await;
    assert_eq!(after.len(), 2);
    let old_lc = after
        .iter()
        .find(|c| c.launch_configuration_name() == Some("web-lc"))
        .unwrap();
    assert_eq!(old_lc, &before[0], "the old configuration is unchanged");
    let mut made = after
        .iter()
        .find(|c| c.launch_configuration_name() == Some(copy.as_str()))
        .unwrap()
        .clone();
    assert_eq!(made.image_id(), Some(GOLDEN));
    // Every field the same but its name, ARN, time and image.
    made.launch_configuration_name = old_lc.launch_configuration_name.clone();
    made.launch_configuration_arn = old_lc.launch_configuration_arn.clone();
    made.created_time = old_lc.created_time;
    made.image_id = old_lc.image_id.clone();
    assert_eq!(&made, old_lc);
    assert_eq!(
        group_of(&moto, "lc-asg").await.launch_configuration_name(),
        Some(copy.as_str())
    );
    assert_all_golden(&ec2, "lc-asg", &old).await;
    assert_eq!(
        step_calls(&proxy.log(), "UpdateAutoScalingGroup"),
        [
            "DescribeAutoScalingGroups",
            "DescribeLaunchConfigurations",
            "CreateLaunchConfiguration",
            "UpdateAutoScalingGroup"
        ]
    );
}

/// A template step killed mid-call (`action` held by the proxy, forwarded to moto first when
/// `reached`), then applied again: one new version ever, every member on the golden image.
async fn template_step_killed_during(version: &str, action: &str, reached: bool) {
    let moto = start();
    let ec2 = moto.client(moto::PROD, "us-east-1").await;
    let (template, old) = drifted_group(&moto, &ec2, version, 2).await;
    let proxy = proxy(&moto, None).await;
    let env = Env::at(&moto, &proxy.url());
    let ids: Vec<&str> = old.iter().map(String::as_str).collect();
    env.queue(&ids);
    env.apply_killed_during(&proxy, action, reached);
    for member in &old {
        assert_eq!(state(&ec2, member).await, InstanceStateName::Running);
    }
    proxy.reset();

    let out = env.run(&["queue", "apply", "--yes"]);
    let context = format!("{version} {action} {reached}");
    assert!(out.status.success(), "{context}: {}", output(&out));
    let after = versions(&ec2, &template).await;
    assert_eq!(after.len(), 2, "{context}: one new version, ever");
    assert_copied(&after[0], &after[1]);
    assert_eq!(
        proxy.calls().get("CreateLaunchTemplateVersion"),
        None,
        "{context}: not made again"
    );
    // Sent again only when it never reached moto.
    assert_eq!(
        proxy.calls().get(action).copied(),
        (!reached).then_some(1),
        "{context}"
    );
    let journal = template_journal(&env);
    assert_eq!(
        journal.iter().filter(|s| **s == "created").count(),
        1,
        "{context}: {journal:?}"
    );
    assert_all_golden(&ec2, "web-asg", &old).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_between_the_new_version_and_the_group_resumes_without_a_second_version() {
    template_step_killed_during("%24Default", "ModifyLaunchTemplate", false).await;
    template_step_killed_during("%24Default", "ModifyLaunchTemplate", true).await;
    template_step_killed_during("1", "UpdateAutoScalingGroup", false).await;
    template_step_killed_during("1", "UpdateAutoScalingGroup", true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_version_made_just_before_a_crash_is_found_by_its_description() {
    let moto = start();
    let ec2 = moto.client(moto::PROD, "us-east-1").await;
    let (template, old) = drifted_group(&moto, &ec2, "%24Default", 2).await;
    let proxy = proxy(&moto, None).await;
    let env = Env::at(&moto, &proxy.url());
    let ids: Vec<&str> = old.iter().map(String::as_str).collect();
    env.queue(&ids);
    // Made, and the answer lost with the process.
    env.apply_killed_during(&proxy, "CreateLaunchTemplateVersion", true);
    assert_eq!(versions(&ec2, &template).await.len(), 2);
    proxy.reset();

    let out = env.run(&["queue", "apply", "--dry-run"]);
    assert!(
        output(&out).contains("version 2, made by an earlier apply, from version 1"),
        "{}",
        output(&out)
    );
    let out = env.run(&["queue", "apply", "--yes"]);
    assert!(out.status.success(), "{}", output(&out));
    assert_eq!(
        versions(&ec2, &template).await.len(),
        2,
        "no second version"
    );
    assert_eq!(default_version(&ec2, &template).await, 2);
    assert_eq!(proxy.calls().get("CreateLaunchTemplateVersion"), None);
    assert_eq!(
        template_journal(&env),
        ["send create", "created", "send point", "pointed"]
    );
    assert_all_golden(&ec2, "web-asg", &old).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_canary_stops_the_rollout_and_names_the_way_back() {
    let moto = start();
    let ec2 = moto.client(moto::PROD, "us-east-1").await;
    let (template, old) = drifted_group(&moto, &ec2, "%24Default", 3).await;
    // The canary's replacement never comes into service.
    let proxy = proxy(
        &moto,
        Some(Fault::NewMembersPending(Duration::from_secs(600))),
    )
    .await;
    let mut env = Env::at(&moto, &proxy.url());
    env.set("FLEETSCOPE_ROLLOUT_HEALTH_TIMEOUT_SECS", "3");
    let ids: Vec<&str> = old.iter().map(String::as_str).collect();
    env.queue(&ids);

    let out = env.run(&["queue", "apply", "--yes"]);
    assert_eq!(out.status.code(), Some(2), "{}", output(&out));
    let err = stderr(&out);
    let way_back = format!(
        "its group now launches launch template web version 2: aws ec2 modify-launch-template --launch-template-id {template} --default-version 1 --region us-east-1 --profile prod points it back"
    );
    assert!(err.contains("timed out after 3s"), "{err}");
    assert!(err.contains(&way_back), "{err}");
    assert!(err.contains("2 never started"), "{err}");
    let mut terminated = 0;
    for member in &old {
        if state(&ec2, member).await == InstanceStateName::Terminated {
            terminated += 1;
        }
    }
    assert_eq!(terminated, 1, "only the canary");
    assert_eq!(default_version(&ec2, &template).await, 2);
    let failed = env
        .journal()
        .iter()
        .find_map(|r| match &r.step {
            Step::Failed { error } => Some(error.clone()),
            _ => None,
        })
        .unwrap();
    assert!(failed.contains(&way_back), "{failed}");
    assert_eq!(env.saved_queue().entries.len(), 3);
}
