//! `fleetscope queue apply` on Azure scale-set members against the local Resource Manager
//! (tests/arm): the queue built from a real collection, applied by the real binary through
//! the rollout, the server's state and the calls it saw checked afterwards.
#![cfg(feature = "azure")]

mod arm;
mod common;

use arm::{ArmServer, Fault, Upgrade, id_ref, marketplace_ref};
use chrono::Utc;
use common::env::Env;
use common::{output, stderr};
use fleetscope::queue::Strategy;
use fleetscope::queue::journal::{Call, Journal, Record, Step, template_id};
use serde_json::{Value, json};

const SUB: &str = "22222222-0000-0000-0000-000000000001";

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

impl Env {
    fn new(server: &ArmServer, rollout: &str) -> Env {
        let mut env = Env::configured(
            &format!(
                "version = 1\n[azure]\nsubscriptions = [\"{SUB}\"]\nendpoint_url = \"{}\"\ntimeout_secs = 5\n[rollout]\npoll_secs = 1\n{rollout}\n",
                server.url()
            ),
            |_| server.env(),
        );
        env.removed.push("AZURE_CREDENTIAL_KIND".into());
        env
    }
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
fn a_standalone_vm_is_not_executable_and_without_template_updates_a_drifted_model_blocks() {
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
    // The model is pointed back at the old image after queueing: the plan checks again, and
    // with template steps off it refuses as it always did.
    server.set_model(SUB, "web", id_ref(&old));
    let out = env.run(&["queue", "apply", "--yes", "--no-template-updates"]);
    assert!(
        output(&out).contains("update the scale-set model first"),
        "{}",
        output(&out)
    );
    assert!(!output(&out).contains("Template steps"), "{}", output(&out));
    assert_eq!(upgrades(&server), 0);
    assert!(server.writes().is_empty());
    assert_eq!(env.saved_queue().entries.len(), 2);

    // So does the config's `rollout.update_templates = false`.
    let off = Env::new(&server, "update_templates = false");
    off.queue(&[&members[0]]);
    let out = off.run(&["queue", "apply", "--yes"]);
    assert!(
        output(&out).contains("update the scale-set model first"),
        "{}",
        output(&out)
    );
    assert!(server.writes().is_empty());

    // Read-only refuses before anything is read.
    let out = env.run(&["--read-only", "queue", "apply", "--yes"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(upgrades(&server), 0);
}

/// Where a PATCH of the image reference cannot do it faithfully, the plan says why and
/// nothing is sent: a scale set that rolls model changes out itself, and a model that names
/// its image another way than the golden one is named.
#[test]
fn a_model_a_template_step_cannot_point_faithfully_is_left_with_why() {
    let server = ArmServer::start();
    let (old, golden) = images(&server);
    let web = server.scale_set(
        SUB,
        "web",
        id_ref(&old),
        false,
        &[(id_ref(&old), true, Upgrade::Healthy)],
    );
    server.set_upgrade_mode(SUB, "web", "Rolling");
    let api = server.scale_set(
        SUB,
        "api",
        id_ref(&golden),
        false,
        &[(id_ref(&old), false, Upgrade::Healthy)],
    );
    let env = Env::new(&server, "");
    env.queue(&[&web[0], &api[0]]);
    // The api model is rewritten in marketplace form after queueing.
    server.set_model(
        SUB,
        "api",
        marketplace_ref("Canonical", "ubuntu-24_04-lts", "server", "24.04.1", None),
    );
    let out = env.run(&["queue", "apply", "--yes"]);
    let text = output(&out);
    assert!(text.contains("its upgrade policy is Rolling"), "{text}");
    assert!(
        text.contains(
            "names its image by publisher, offer, sku and version and the golden one is named by id"
        ),
        "{text}"
    );
    assert!(!text.contains("Template steps"), "{text}");
    assert!(server.writes().is_empty());
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
        env.path("config.toml"),
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
                    call: Call::Terminate,
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

const IMAGE_REFERENCE: &str = "/properties/virtualMachineProfile/storageProfile/imageReference";

fn scale_set_key(name: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{}/providers/Microsoft.Compute/virtualMachineScaleSets/{name}", arm::RG)
        .to_ascii_lowercase()
}

/// The journal's steps for one scale set's template step.
fn template_steps(env: &Env, name: &str) -> Vec<Step> {
    let id = template_id(&scale_set_key(name));
    env.journal()
        .into_iter()
        .filter(|r| !r.dry_run && r.instance_id == id)
        .map(|r| r.step)
        .collect()
}

/// What an apply cut short right after journaling the model update leaves: the intent alone.
fn journal_sent_unanswered(env: &Env, name: &str) {
    let journal = env.data().join("journal.jsonl");
    let _ = std::fs::remove_file(&journal);
    Journal::open(&journal)
        .unwrap()
        .append(&Record {
            at: Utc::now(),
            instance_id: template_id(&scale_set_key(name)),
            queued_at: None,
            step: Step::Intent {
                call: Call::PointGroup,
            },
            dry_run: false,
        })
        .unwrap();
}

const UBUNTU: (&str, &str, &str) = ("Canonical", "ubuntu-24_04-lts", "server");
const UBUNTU_OLD: &str = "24.04.202609010";
const UBUNTU_GOLDEN: &str = "24.04.202610250";

fn ubuntu(version: &str) -> Value {
    marketplace_ref(UBUNTU.0, UBUNTU.1, UBUNTU.2, version, None)
}

/// Three scale sets: web's model on the old gallery version, db's on the old marketplace
/// version, api's already on the golden one; every member on an old image. A dry run changes
/// nothing; the apply points web and db at their golden images with one PATCH each (the image
/// reference alone, as the model spells it), then rolls every member onto it.
#[test]
fn a_drifted_model_is_pointed_at_the_golden_image_once_then_every_member_rolls_onto_it() {
    let server = ArmServer::start();
    let (old, golden) = images(&server);
    for version in [UBUNTU_OLD, UBUNTU_GOLDEN] {
        server.marketplace(UBUNTU.0, UBUNTU.1, UBUNTU.2, version, None);
    }
    let two = |image: &Value, latest: bool| {
        vec![
            (image.clone(), latest, Upgrade::Healthy),
            (image.clone(), latest, Upgrade::Healthy),
        ]
    };
    let web = server.scale_set(SUB, "web", id_ref(&old), false, &two(&id_ref(&old), true));
    let db = server.scale_set(
        SUB,
        "db",
        ubuntu(UBUNTU_OLD),
        false,
        &two(&ubuntu(UBUNTU_OLD), true),
    );
    let api = server.scale_set(
        SUB,
        "api",
        id_ref(&golden),
        false,
        &two(&id_ref(&old), false),
    );
    let env = Env::new(&server, "max_unavailable = \"1\"\nhealth_timeout_secs = 30");
    let all: Vec<&str> = web
        .iter()
        .chain(&db)
        .chain(&api)
        .map(String::as_str)
        .collect();
    env.queue(&all);
    let before: Vec<Value> = ["web", "db", "api"]
        .iter()
        .map(|n| server.scale_set_json(SUB, n))
        .collect();
    let (golden_key, old_key) = (golden.to_ascii_lowercase(), old.to_ascii_lowercase());
    let ubuntu_key = |v: &str| format!("canonical:ubuntu-24_04-lts:server:{v}");

    // A dry run reads and checks, and changes nothing: no write, every model as it was.
    let out = env.run(&["queue", "apply", "--dry-run"]);
    let text = output(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Template steps (2)"), "{text}");
    assert!(
        text.contains(&format!(
            "point web (scale set) at {golden_key} (model image reference, from {old_key})"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "point db (scale set) at {} (model image reference, from {})",
            ubuntu_key(UBUNTU_GOLDEN),
            ubuntu_key(UBUNTU_OLD)
        )),
        "{text}"
    );
    assert!(text.contains("6 would succeed"), "{text}");
    assert!(server.writes().is_empty());
    assert_eq!(upgrades(&server), 0);
    for (name, was) in ["web", "db", "api"].iter().zip(&before) {
        assert_eq!(&server.scale_set_json(SUB, name), was, "{name}");
    }
    // The dry template step costs one read of the scale set.
    let dry = |n: &str| server.scale_set_calls(n).len();
    assert_eq!(dry("web") - dry("api"), 1);

    let read = ["web", "db", "api"].map(|n| server.scale_set_calls(n).len());
    let out = env.run(&["queue", "apply", "--yes"]);
    assert!(out.status.success(), "{}", output(&out));
    assert!(
        output(&out).contains("2 templates updated, 6 replaced"),
        "{}",
        output(&out)
    );

    // One PATCH per drifted scale set, of the image reference alone, in the model's spelling.
    let writes = server.writes();
    assert_eq!(writes.len(), 2, "{writes:#?}");
    let sent = |name: &str| {
        writes
            .iter()
            .find(|(call, _)| call.to_ascii_lowercase().ends_with(&format!("/{name}")))
            .map(|(call, body)| {
                (
                    call.split_whitespace().next().unwrap().to_owned(),
                    body.clone(),
                )
            })
            .unwrap()
    };
    let only_image = |reference: Value| json!({"properties": {"virtualMachineProfile": {"storageProfile": {"imageReference": reference}}}});
    assert_eq!(
        sent("web"),
        ("PATCH".to_owned(), only_image(id_ref(&golden)))
    );
    assert_eq!(
        sent("db"),
        ("PATCH".to_owned(), only_image(ubuntu(UBUNTU_GOLDEN)))
    );

    // Everything else in the models stays as written, the upgrade policy included.
    for ((name, was), reference) in ["web", "db", "api"].iter().zip(&before).zip([
        id_ref(&golden),
        ubuntu(UBUNTU_GOLDEN),
        id_ref(&golden),
    ]) {
        let now = server.scale_set_json(SUB, name);
        let mut expected = was.clone();
        *expected.pointer_mut(IMAGE_REFERENCE).unwrap() = reference;
        expected["properties"]["provisioningState"] =
            now["properties"]["provisioningState"].clone();
        expected["etag"] = now["etag"].clone();
        assert_eq!(now, expected, "{name}");
        assert_eq!(now["properties"]["upgradePolicy"]["mode"], "Manual");
        let state = now["properties"]["provisioningState"]
            .as_str()
            .unwrap_or_default();
        assert!(state.eq_ignore_ascii_case("succeeded"), "{name}: {state}");
    }

    // Every member ends on its golden image.
    assert_eq!(upgrades(&server), 6);
    for member in web.iter().chain(&api) {
        assert_eq!(server.member_image(member), id_ref(&golden));
    }
    for member in &db {
        assert_eq!(server.member_image(member), ubuntu(UBUNTU_GOLDEN));
    }
    assert!(env.saved_queue().entries.is_empty());

    // The journal: the intent before the update, the outcome after, naming the old image;
    // both before the group's first member.
    assert_eq!(
        template_steps(&env, "web"),
        [
            Step::Intent {
                call: Call::PointGroup
            },
            Step::GroupPointed {
                template: format!("scale-set model, image {golden_key}, from {old_key}")
            }
        ]
    );
    let records = env.journal();
    let pointed = records
        .iter()
        .position(|r| {
            !r.dry_run
                && matches!(r.step, Step::GroupPointed { .. })
                && r.instance_id == template_id(&scale_set_key("web"))
        })
        .unwrap();
    let first_member = records
        .iter()
        .position(|r| !r.dry_run && web.contains(&r.instance_id))
        .unwrap();
    assert!(pointed < first_member);

    // The ARM calls one template step costs, per scale set: what web and db cost over api,
    // whose members roll the same way without one. A read, the PATCH, and one read that sees
    // the update succeeded.
    let calls = |i: usize, n: &str| server.scale_set_calls(n)[read[i]..].to_vec();
    assert_eq!(calls(0, "web").len() - calls(2, "api").len(), 3);
    assert_eq!(calls(1, "db").len() - calls(2, "api").len(), 3);
    assert_eq!(
        calls(0, "web")
            .iter()
            .filter(|m| *m != "GET")
            .collect::<Vec<_>>(),
        ["PATCH"]
    );
}

/// The canary (the first member after the template step) fails its health gate: the rollout
/// stops, the model stays on the golden image, and the error gives the command back.
#[test]
fn a_failed_canary_stops_the_rollout_and_names_the_command_that_points_the_model_back() {
    for (upgrade, rollout, failure) in [
        (
            Upgrade::Fails,
            "health_timeout_secs = 30",
            "provisioning failed",
        ),
        (
            Upgrade::Unhealthy,
            "health_timeout_secs = 3",
            "timed out after 3s",
        ),
    ] {
        let server = ArmServer::start();
        let (old, golden) = images(&server);
        let members = server.scale_set(
            SUB,
            "web",
            id_ref(&old),
            true,
            &[
                (id_ref(&old), true, upgrade),
                (id_ref(&old), true, Upgrade::Healthy),
                (id_ref(&old), true, Upgrade::Healthy),
            ],
        );
        let env = Env::new(&server, rollout);
        env.queue(&[&members[0], &members[1], &members[2]]);
        let out = env.run(&["queue", "apply", "--yes"]);
        let text = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{text}");
        assert!(text.contains(failure), "{text}");
        assert!(
            text.contains(&format!(
                "its group now launches {} (the model of scale set web): az vmss update --subscription {SUB} --resource-group {} --name web --set virtualMachineProfile.storageProfile.imageReference.id={old} points it back",
                golden.to_ascii_lowercase(),
                arm::RG
            )),
            "{text}"
        );
        assert_eq!(upgrades(&server), 1, "only the canary started");
        assert_eq!(server.writes().len(), 1);
        // Nothing is undone behind the operator's back: the model stays on the golden image.
        assert_eq!(
            server.scale_set_json(SUB, "web").pointer(IMAGE_REFERENCE),
            Some(&id_ref(&golden))
        );
        assert_eq!(env.saved_queue().entries.len(), 3, "all stay queued");
    }
}

/// The model update's answer never came back (the call outlived its timeout; ARM applied it
/// after): the apply fails the step and starts none of the group. The next one finds the
/// model golden, sends nothing, and rolls the members.
#[test]
fn a_model_update_whose_answer_was_lost_is_never_sent_again() {
    let server = ArmServer::start();
    let (old, golden) = images(&server);
    let members = server.scale_set(
        SUB,
        "web",
        id_ref(&old),
        false,
        &[
            (id_ref(&old), true, Upgrade::Healthy),
            (id_ref(&old), true, Upgrade::Healthy),
        ],
    );
    let env = Env::new(&server, "health_timeout_secs = 30");
    env.queue(&[&members[0], &members[1]]);
    server.fault_on(
        "PATCH",
        "virtualMachineScaleSets/web",
        Fault::Slow(std::time::Duration::from_secs(7)),
        1,
    );
    let out = env.run(&["queue", "apply", "--yes"]);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("updating the scale-set model: timed out after 5s"),
        "{text}"
    );
    assert_eq!(upgrades(&server), 0, "none of the group started");
    let steps = template_steps(&env, "web");
    assert_eq!(
        steps[0],
        Step::Intent {
            call: Call::PointGroup
        },
        "{steps:?}"
    );
    assert!(
        matches!(steps.last(), Some(Step::Failed { .. })),
        "{steps:?}"
    );

    // ARM applies the update once the server's delay is over.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while server.scale_set_json(SUB, "web").pointer(IMAGE_REFERENCE) != Some(&id_ref(&golden)) {
        assert!(
            std::time::Instant::now() < deadline,
            "the late update never landed"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let out = env.run(&["queue", "apply", "--yes"]);
    assert!(out.status.success(), "{}", output(&out));
    assert!(!output(&out).contains("Template steps"), "{}", output(&out));
    assert_eq!(server.writes().len(), 1, "the update was sent once");
    for member in &members {
        assert_eq!(server.member_image(member), id_ref(&golden));
    }
    assert!(env.saved_queue().entries.is_empty());
}

/// The update journaled as sent, its answer never journaled (written by hand, as a crash
/// leaves it). Whether the model is golden decides, read live: already golden when the plan
/// reads it, there is no step; golden by the time the step reads it, the step records it done
/// without a PATCH; still old, the update is sent, once, under the intent already journaled.
#[test]
fn a_model_update_journaled_as_sent_is_resumed_from_the_live_model_never_sent_twice() {
    for case in ["golden at the plan", "golden at the step", "still old"] {
        let server = ArmServer::start();
        let (old, golden) = images(&server);
        let members = server.scale_set(
            SUB,
            "web",
            id_ref(&old),
            false,
            &[
                (id_ref(&old), true, Upgrade::Healthy),
                (id_ref(&old), true, Upgrade::Healthy),
            ],
        );
        let env = Env::new(&server, "health_timeout_secs = 30");
        let queue = env.queue(&[&members[0], &members[1]]);
        journal_sent_unanswered(&env, "web");
        queue.save(&env.data().join("queue.json")).unwrap();
        match case {
            "golden at the plan" => server.set_model(SUB, "web", id_ref(&golden)),
            // The plan reads the scale set once per queued member; the step's read is next.
            "golden at the step" => server.model_changes_after(SUB, "web", 2, id_ref(&golden)),
            _ => {}
        }
        let out = env.run(&["queue", "apply", "--yes"]);
        assert!(out.status.success(), "{case}: {}", output(&out));
        let golden_key = golden.to_ascii_lowercase();
        let (writes, steps) = match case {
            "golden at the plan" => (
                0,
                vec![Step::Intent {
                    call: Call::PointGroup,
                }],
            ),
            "golden at the step" => (
                0,
                vec![
                    Step::Intent {
                        call: Call::PointGroup,
                    },
                    Step::GroupPointed {
                        template: format!("scale-set model, image {golden_key}"),
                    },
                ],
            ),
            _ => (
                1,
                vec![
                    Step::Intent {
                        call: Call::PointGroup,
                    },
                    Step::GroupPointed {
                        template: format!(
                            "scale-set model, image {golden_key}, from {}",
                            old.to_ascii_lowercase()
                        ),
                    },
                ],
            ),
        };
        assert_eq!(server.writes().len(), writes, "{case}");
        assert_eq!(template_steps(&env, "web"), steps, "{case}");
        assert_eq!(upgrades(&server), 2, "{case}");
        for member in &members {
            assert_eq!(server.member_image(member), id_ref(&golden), "{case}");
        }
        assert!(env.saved_queue().entries.is_empty(), "{case}");
    }
}
