//! `fleetscope queue apply` against the local Compute server: the queue built from a real
//! collection, applied by the real binary as a rollout, the server's state checked after.
#![cfg(feature = "gcp")]

mod common;
mod compute;

use std::time::Duration;

use common::env::Env;
use common::{output, stderr};
use compute::make::{self, Vm};
use compute::{Compute, World};
use fleetscope::queue::Strategy;
use fleetscope::queue::journal::{Journal, Record, Step};
use serde_json::Value;

const OLD: &str = "projects/shop/global/images/web-v2";
const GOLDEN: &str = "projects/shop/global/images/web-v3";

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

impl Env {
    fn new(compute: &Compute, rollout: &str) -> Env {
        Env::configured(
            &format!(
                "version = 1\n[gcp]\nprojects = [\"shop\"]\nendpoint_url = \"{}\"\ntimeout_secs = 5\n[rollout]\npoll_secs = 1\n{rollout}",
                compute.url()
            ),
            |dir| compute.env(dir),
        )
    }
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
    let out = env.run(&["queue", "apply", "--yes", "--no-template-updates"]);
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

const WEB_TEMPLATE: &str = "projects/shop/global/instanceTemplates/web-3";
const API_TEMPLATE: &str = "projects/shop/regions/europe-west4/instanceTemplates/api-3";
const WEB_GROUP: &str = "projects/shop/zones/us-central1-a/instanceGroupManagers/web";
const API_GROUP: &str = "projects/shop/regions/europe-west4/instanceGroupManagers/api";

/// The same fleet right after a bake: both groups' templates still boot the old image (the
/// regional one by a relative link, as Compute allows).
fn drifted_world() -> World {
    let mut world = world();
    for (path, value) in [
        make::template("shop", "global", "web-3", &make::link(OLD)),
        make::template(
            "shop",
            "regions/europe-west4",
            "api-3",
            "global/images/web-v2",
        ),
    ] {
        world.insert(path, value);
    }
    // What an operator wrote stays in the copy, whatever fleetscope does not know of.
    let web = world.resources.get_mut(WEB_TEMPLATE).unwrap();
    web["description"] = serde_json::json!("web servers, baked nightly");
    web["properties"]["labels"] = serde_json::json!({"team": "storefront"});
    web["properties"]["metadata"] =
        serde_json::json!({"items": [{"key": "startup-script", "value": "#!/bin/sh\necho hi"}]});
    web["properties"]["disks"][0]["initializeParams"]["labels"] =
        serde_json::json!({"disk": "boot"});
    web["properties"]["someFutureField"] = serde_json::json!({"kept": true});
    world
}

fn posts(compute: &Compute) -> Vec<String> {
    compute
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("POST ") && !c.ends_with("/listManagedInstances"))
        .collect()
}

fn template_steps(journal: &[Record], group: &str) -> Vec<Step> {
    let id = fleetscope::queue::journal::template_id(group);
    journal
        .iter()
        .filter(|r| r.instance_id == id && !r.dry_run)
        .map(|r| r.step.clone())
        .collect()
}

/// The template a group points at now, as a path.
fn group_template(compute: &Compute, group: &str) -> String {
    let link = compute.resource(group)["instanceTemplate"]
        .as_str()
        .unwrap()
        .to_owned();
    link.split_once("/compute/v1/")
        .map_or(link.clone(), |(_, p)| p.to_owned())
}

/// The copy is the old template, whole, with only the boot image changed (and its own name,
/// links and description).
fn assert_copy_of(copy: &Value, old: &Value) {
    let mut expected = old["properties"].clone();
    expected["disks"][0]["initializeParams"]["sourceImage"] = GOLDEN.into();
    assert_eq!(copy["properties"], expected, "{copy:#}");
}

#[test]
fn a_drifted_group_gets_a_copy_of_its_template_and_every_member_boots_the_golden_image() {
    let compute = Compute::start(drifted_world());
    let env = Env::new(
        &compute,
        "max_unavailable = \"50%\"\nhealth_timeout_secs = 20\n",
    );
    env.queue(&["101", "102", "103", "104", "201", "202"]);
    let before = compute.templates();

    let out = env.run(&["queue", "apply", "--yes"]);
    assert!(out.status.success(), "{}", output(&out));
    assert!(
        output(&out).contains("2 templates updated, 6 replaced"),
        "{}",
        output(&out)
    );

    // Nothing deleted, the old templates untouched; one copy each.
    let after = compute.templates();
    for (path, old) in &before {
        assert_eq!(&after[path], old, "{path} is unchanged");
    }
    assert_eq!(after.len(), before.len() + 2, "{:?}", after.keys());
    let web = group_template(&compute, WEB_GROUP);
    let api = group_template(&compute, API_GROUP);
    assert!(
        web.starts_with("projects/shop/global/instanceTemplates/web-3-fs"),
        "{web}"
    );
    assert!(
        api.starts_with("projects/shop/regions/europe-west4/instanceTemplates/api-3-fs"),
        "{api}: regional like the old one"
    );
    assert_copy_of(&after[&web], &before[WEB_TEMPLATE]);
    assert_copy_of(&after[&api], &before[API_TEMPLATE]);
    assert_eq!(after[&web]["properties"]["someFutureField"]["kept"], true);
    let description = after[&web]["description"].as_str().unwrap();
    assert!(
        description.starts_with("web servers, baked nightly; fleetscope: a copy of projects/shop/global/instanceTemplates/web-3"),
        "{description}"
    );
    // The group's one version names the copy too.
    assert_eq!(
        compute.resource(WEB_GROUP)["versions"][0]["instanceTemplate"],
        compute.resource(WEB_GROUP)["instanceTemplate"]
    );

    // Judged by what the members run.
    for (zone, name) in [
        ("us-central1-a", "web-a"),
        ("us-central1-a", "web-b"),
        ("us-central1-a", "web-c"),
        ("us-central1-a", "web-d"),
        ("europe-west4-a", "api-a"),
        ("europe-west4-b", "api-b"),
    ] {
        assert_eq!(compute.boot_image(zone, name), GOLDEN, "{name}");
    }

    // Intent before each call, outcome after, under the group's key.
    use fleetscope::queue::journal::Call;
    let journal = env.journal();
    assert_eq!(
        template_steps(&journal, "gcp:shop:us-central1-a:web"),
        [
            Step::Intent {
                call: Call::CreateTemplate
            },
            Step::TemplateCreated {
                template: web.clone()
            },
            Step::Intent {
                call: Call::PointGroup
            },
            Step::GroupPointed {
                template: web.clone()
            },
        ]
    );
    assert_eq!(
        template_steps(&journal, "gcp:shop:europe-west4:api").last(),
        Some(&Step::GroupPointed {
            template: api.clone()
        })
    );
    assert!(env.saved_queue().entries.is_empty());
}

#[test]
fn a_dry_run_reads_and_checks_and_changes_nothing() {
    let compute = Compute::start(drifted_world());
    let env = Env::new(&compute, "max_unavailable = \"50%\"\n");
    env.queue(&["101", "102", "201"]);
    let before = compute.templates();
    let groups = (compute.resource(WEB_GROUP), compute.resource(API_GROUP));

    let out = env.run(&["queue", "apply", "--dry-run"]);
    let text = output(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Template steps (2)"), "{text}");
    assert!(
        text.contains(&format!(
            "point web at {GOLDEN} (instance template web-3: a copy named web-3-fs"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "point api at {GOLDEN} (regional instance template api-3: a copy named api-3-fs"
        )),
        "{text}"
    );
    assert!(text.contains("3 would succeed"), "{text}");
    assert!(posts(&compute).is_empty(), "{:?}", compute.calls());
    assert_eq!(compute.templates(), before, "no template inserted");
    assert_eq!(
        (compute.resource(WEB_GROUP), compute.resource(API_GROUP)),
        groups
    );
    assert_eq!(env.saved_queue().entries.len(), 3);
}

/// The calls one template step costs, per group: find the member (1), read its group (1) and
/// template (1), look the copy up by its name (1), insert it (1) and poll its operation (1),
/// setInstanceTemplate (1) and poll that operation (1): 8.
#[test]
fn a_template_step_costs_eight_compute_calls_per_group() {
    for (id, group, template, operations) in [
        (
            "101",
            "projects/shop/zones/us-central1-a/instanceGroupManagers/web",
            "projects/shop/global/instanceTemplates",
            (
                "projects/shop/global/operations/",
                "projects/shop/zones/us-central1-a/operations/",
            ),
        ),
        (
            "201",
            "projects/shop/regions/europe-west4/instanceGroupManagers/api",
            "projects/shop/regions/europe-west4/instanceTemplates",
            (
                "projects/shop/regions/europe-west4/operations/",
                "projects/shop/regions/europe-west4/operations/",
            ),
        ),
    ] {
        let compute = Compute::start(drifted_world());
        let env = Env::new(&compute, "");
        env.queue(&[id]);
        let collected = compute.calls().len();
        let out = env.run(&["queue", "apply", "--yes"]);
        assert!(out.status.success(), "{}", output(&out));
        let calls = compute.calls()[collected..].to_vec();
        // The plan inspects the member: find it, read its group and template (3 calls); the
        // member's recreation starts with finding it again.
        let step = &calls[3..11];
        let copy = group_template(&compute, group)
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned();
        let expected = [
            "GET projects/shop/aggregated/instances".to_owned(),
            format!("GET {group}"),
            format!(
                "GET {template}/{}",
                if id == "101" { "web-3" } else { "api-3" }
            ),
            format!("GET {template}/{copy}"),
            format!("POST {template}"),
            format!("GET {}", operations.0),
            format!("POST {group}/setInstanceTemplate"),
            format!("GET {}", operations.1),
        ];
        for (call, expected) in step.iter().zip(&expected) {
            assert!(
                call.starts_with(expected.as_str()),
                "{id}: {call} is not {expected}: {calls:#?}"
            );
        }
        assert_eq!(step.len(), 8);
        assert_eq!(
            calls[11], "GET projects/shop/aggregated/instances",
            "{id}: {calls:#?}"
        );
    }
}

/// A step cut between its two halves: the copy inserted, the group never pointed. Either the
/// journal says so (TemplateCreated, no GroupPointed: its setInstanceTemplate failed), or it
/// holds only the insert's intent (the answer lost in a crash). The next apply finds the copy by
/// its name and points the group: one copy, ever.
#[test]
fn a_step_cut_between_insert_and_point_resumes_without_a_second_template() {
    use fleetscope::queue::journal::Call;
    for journal in ["template created", "intent only"] {
        let mut world = drifted_world();
        world.fault(
            "setInstanceTemplate",
            compute::FaultKind::Status(
                503,
                serde_json::json!({"error": {"code": 503, "message": "Internal error. Please try again or contact Google Support.",
                    "errors": [{"message": "Internal error.", "domain": "global", "reason": "backendError"}]}}),
            ),
            1,
        );
        let compute = Compute::start(world);
        let env = Env::new(&compute, "max_unavailable = \"50%\"\n");
        env.queue(&["101", "102"]);
        let before = compute.templates();
        let inserts = || {
            posts(&compute)
                .iter()
                .filter(|c| c.ends_with("/instanceTemplates"))
                .count()
        };

        let out = env.run(&["queue", "apply", "--yes"]);
        assert_eq!(out.status.code(), Some(2), "{}", output(&out));
        assert!(recreate_calls(&compute).is_empty(), "no member started");
        assert_eq!(inserts(), 1);
        assert_eq!(compute.templates().len(), before.len() + 1);
        assert_eq!(group_template(&compute, WEB_GROUP), WEB_TEMPLATE);
        let steps = template_steps(&env.journal(), "gcp:shop:us-central1-a:web");
        let Some(Step::TemplateCreated { template: copy }) = steps.get(1).cloned() else {
            panic!("{steps:?}");
        };
        assert!(!steps.iter().any(|s| matches!(s, Step::GroupPointed { .. })));
        if journal == "intent only" {
            let path = env.data().join("journal.jsonl");
            std::fs::remove_file(&path).unwrap();
            Journal::open(&path)
                .unwrap()
                .append(&Record {
                    at: chrono::Utc::now(),
                    instance_id: fleetscope::queue::journal::template_id(
                        "gcp:shop:us-central1-a:web",
                    ),
                    queued_at: None,
                    step: Step::Intent {
                        call: Call::CreateTemplate,
                    },
                    dry_run: false,
                })
                .unwrap();
        }

        let out = env.run(&["queue", "apply", "--yes"]);
        assert!(out.status.success(), "{journal}: {}", output(&out));
        assert_eq!(inserts(), 1, "{journal}: {:?}", compute.calls());
        assert_eq!(compute.templates().len(), before.len() + 1, "{journal}");
        assert_eq!(group_template(&compute, WEB_GROUP), copy, "{journal}");
        let steps = template_steps(&env.journal(), "gcp:shop:us-central1-a:web");
        assert_eq!(
            steps.last(),
            Some(&Step::GroupPointed {
                template: copy.clone()
            }),
            "{journal}: {steps:?}"
        );
        // Created once in the journal too: the resumed step found what the first made.
        let created = steps
            .iter()
            .filter(|s| matches!(s, Step::TemplateCreated { .. }))
            .count();
        assert_eq!(created, 1, "{journal}: {steps:?}");
        assert_eq!(compute.boot_image("us-central1-a", "web-a"), GOLDEN);
        assert_eq!(compute.boot_image("us-central1-a", "web-b"), GOLDEN);
        assert!(env.saved_queue().entries.is_empty());
    }
}

#[test]
fn a_failed_canary_stops_the_rollout_and_names_the_way_back() {
    let mut world = drifted_world();
    world.unhealthy.insert("web-a".into());
    let compute = Compute::start(world);
    let env = Env::new(
        &compute,
        "max_unavailable = \"2\"\nhealth_timeout_secs = 4\n",
    );
    env.queue(&["101", "102", "103", "104"]);

    let out = env.run(&["queue", "apply", "--yes"]);
    let text = output(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("its group now launches instance template web-3-fs"),
        "{text}"
    );
    assert!(
        text.contains("gcloud compute instance-groups managed set-instance-template web --template=web-3 --zone=us-central1-a --project=shop points it back"),
        "{text}"
    );
    // The canary alone was recreated; the rest never started.
    assert_eq!(recreate_calls(&compute).len(), 1, "{:?}", compute.calls());
    assert_eq!(compute.boot_image("us-central1-a", "web-a"), GOLDEN);
    for (name, id) in [("web-b", "102"), ("web-c", "103"), ("web-d", "104")] {
        assert_eq!(id_of(&compute, "us-central1-a", name), id);
        assert_eq!(compute.boot_image("us-central1-a", name), OLD);
    }
    assert_eq!(env.saved_queue().entries.len(), 4);
}

#[test]
fn a_canary_split_or_a_proactive_group_is_left_queued_with_why() {
    let mut world = drifted_world();
    let web = world.resources.get_mut(WEB_GROUP).unwrap();
    web["versions"] = serde_json::json!([
        {"name": "stable", "instanceTemplate": make::link(WEB_TEMPLATE), "targetSize": {"calculated": 3}},
        {"name": "canary", "instanceTemplate": make::link("projects/shop/global/instanceTemplates/web-4"),
            "targetSize": {"fixed": 1, "calculated": 1}},
    ]);
    let api = world.resources.get_mut(API_GROUP).unwrap();
    api["updatePolicy"]["type"] = "PROACTIVE".into();
    let compute = Compute::start(world);
    let env = Env::new(&compute, "");
    env.queue(&["101", "102", "201"]);

    let out = env.run(&["queue", "apply", "--yes"]);
    let text = output(&out);
    assert!(
        text.contains("web runs 2 versions, a canary split (web-3, web-4); finish or roll back the split first"),
        "{text}"
    );
    assert!(text.contains("api's update policy is PROACTIVE"), "{text}");
    assert!(!text.contains("Template steps"), "{text}");
    assert!(posts(&compute).is_empty(), "{:?}", compute.calls());
    assert_eq!(env.saved_queue().entries.len(), 3);
}

#[test]
fn without_template_updates_drifted_members_are_refused_as_before() {
    let expected = format!(
        "template drift: web creates {OLD} (template web-3), not the golden {GOLDEN}: point the template at it first"
    );
    for (rollout, args) in [
        (
            "",
            &["queue", "apply", "--yes", "--no-template-updates"][..],
        ),
        (
            "update_templates = false\n",
            &["queue", "apply", "--yes"][..],
        ),
    ] {
        let compute = Compute::start(drifted_world());
        let env = Env::new(&compute, rollout);
        env.queue(&["101", "102"]);
        let out = env.run(args);
        let text = output(&out);
        assert!(text.contains(&expected), "{rollout}: {text}");
        assert!(!text.contains("Template steps"), "{text}");
        assert!(posts(&compute).is_empty(), "{:?}", compute.calls());
        assert_eq!(env.saved_queue().entries.len(), 2);
    }
}
