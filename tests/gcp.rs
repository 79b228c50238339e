//! The Google Cloud source against a local Compute server on a loopback port: the real binary,
//! real application default credentials (an `authorized_user` file whose token endpoint is the
//! server), the official client, every verdict, groups, exposure, faults.
#![cfg(feature = "gcp")]

mod common;
mod compute;
mod mute;

use std::process::Output;
use std::time::{Duration, Instant};

use common::NOW;
use common::report::{by_name, configured, group, json_report, quoted, source};
use compute::make::{self, Vm};
use compute::{Compute, FaultKind, World};
use serde_json::{Value, json};

const SHOP: &str = "shop";

fn add(world: &mut World, resources: impl IntoIterator<Item = (String, Value)>) {
    for (path, value) in resources {
        world.insert(path, value);
    }
}

fn vm<'a>(name: &'a str, zone: &'a str, id: u64, image: &'a str) -> Vm<'a> {
    Vm {
        project: SHOP,
        zone,
        name,
        id,
        image,
        created: "2026-10-28T09:00:00.000-07:00",
        group: None,
        tags: &[],
        nat_ip: None,
    }
}

const DEB_OLD: &str = "projects/debian-cloud/global/images/debian-12-bookworm-v20260901";
const DEB_NEW: &str = "projects/debian-cloud/global/images/debian-12-bookworm-v20261020";
const WEB_1: &str = "projects/shop/global/images/web-v1";
const WEB_2: &str = "projects/shop/global/images/web-v2";
const WEB_3: &str = "projects/shop/global/images/web-v3";
const API_1: &str = "projects/shop/global/images/api-v1";
const OLD_1: &str = "projects/shop/global/images/old-v1";
const BASE_1: &str = "projects/shop/global/images/base-v1";
const GONE: &str = "projects/shop/global/images/gone-v1";

/// The images: a public project's family, custom families in each deprecation state.
fn images(world: &mut World) {
    add(
        world,
        [
            make::image(
                "debian-cloud",
                "debian-12-bookworm-v20260901",
                "debian-12",
                "2026-09-01T10:00:00.000-07:00",
            ),
            make::image(
                "debian-cloud",
                "debian-12-bookworm-v20261020",
                "debian-12",
                "2026-10-20T10:00:00.000-07:00",
            ),
            // Newer, but deprecated: never the golden image.
            make::deprecated(
                make::image(
                    "debian-cloud",
                    "debian-12-bookworm-v20261030",
                    "debian-12",
                    "2026-10-30T10:00:00.000-07:00",
                ),
                "DEPRECATED",
                DEB_NEW,
            ),
            make::deprecated(
                make::image(SHOP, "web-v1", "web", "2026-08-01T00:00:00.000-07:00"),
                "DEPRECATED",
                WEB_3,
            ),
            make::image(SHOP, "web-v2", "web", "2026-10-01T00:00:00.000-07:00"),
            make::image(SHOP, "web-v3", "web", "2026-10-25T00:00:00.000-07:00"),
            make::deprecated(
                make::image(SHOP, "api-v1", "api", "2026-10-20T00:00:00.000-07:00"),
                "OBSOLETE",
                "projects/shop/global/images/api-v2",
            ),
            make::image(SHOP, "api-v2", "api", "2026-10-28T00:00:00.000-07:00"),
            make::deprecated(
                make::image(SHOP, "old-v1", "old", "2026-10-27T00:00:00.000-07:00"),
                "DELETED",
                "",
            ),
            make::image(SHOP, "base-v1", "base", "2026-09-01T00:00:00.000-07:00"),
        ],
    );
}

fn shop(world: &mut World) {
    images(world);
    let mut bastion = vm("bastion", "us-central1-b", 1009, DEB_NEW);
    bastion.tags = &["bastion"];
    bastion.nat_ip = Some("34.66.1.9");
    let mut mig_a = vm("web-mig-a", "us-central1-a", 1010, WEB_3);
    mig_a.group = Some("zones/us-central1-a/instanceGroupManagers/web-mig");
    let mut mig_b = vm("web-mig-b", "us-central1-a", 1011, WEB_2);
    mig_b.group = Some("zones/us-central1-a/instanceGroupManagers/web-mig");
    let mut deb_a = vm("deb-mig-a", "us-central1-c", 1012, DEB_NEW);
    deb_a.group = Some("regions/us-central1/instanceGroupManagers/deb-mig");
    let mut deb_b = vm("deb-mig-b", "us-central1-f", 1013, DEB_OLD);
    deb_b.group = Some("regions/us-central1/instanceGroupManagers/deb-mig");
    for machine in [
        vm("web-current", "us-central1-a", 1001, WEB_3),
        vm("web-outdated", "europe-west4-b", 1002, WEB_2),
        vm("web-deprecated", "us-central1-a", 1003, WEB_1),
        vm("api-obsolete", "us-central1-a", 1004, API_1),
        vm("old-deleted", "us-central1-a", 1005, OLD_1),
        vm("base-stale", "us-central1-a", 1006, BASE_1),
        vm("gone", "us-central1-a", 1007, GONE),
        vm("deb-outdated", "europe-west4-a", 1008, DEB_OLD),
        vm("from-snapshot", "us-central1-a", 1014, ""),
        bastion,
        mig_a,
        mig_b,
        deb_a,
        deb_b,
    ] {
        add(world, machine.resources());
    }
    add(
        world,
        [
            make::group(
                SHOP,
                "zones/us-central1-a",
                "web-mig",
                "projects/shop/global/instanceTemplates/web-tpl-2",
                2,
                true,
            ),
            make::template(SHOP, "global", "web-tpl-2", &make::link(WEB_2)),
            make::group(
                SHOP,
                "regions/us-central1",
                "deb-mig",
                "projects/shop/regions/us-central1/instanceTemplates/deb-tpl",
                2,
                false,
            ),
            make::template(
                SHOP,
                "regions/us-central1",
                "deb-tpl",
                "projects/debian-cloud/global/images/family/debian-12",
            ),
            make::firewall(
                SHOP,
                "allow-ssh-bastion",
                &["22"],
                "0.0.0.0/0",
                &["bastion"],
            ),
            make::firewall(SHOP, "allow-https", &["443"], "0.0.0.0/0", &[]),
            make::firewall(SHOP, "allow-internal", &["0-65535"], "10.128.0.0/9", &[]),
        ],
    );
}

fn report(compute: &Compute, projects: &[&str], extra: &str) -> (Output, Value) {
    let (output, json, _) = report_and_log(compute, projects, extra);
    (output, json)
}

/// The report, and what the run appended to `fleetscope.log`.
fn report_and_log(compute: &Compute, projects: &[&str], extra: &str) -> (Output, Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let (output, json) = json_report(
        dir.path(),
        &format!(
            "version = 1\n[gcp]\nprojects = [{}]\nendpoint_url = \"{}\"\ntimeout_secs = 5\n{extra}",
            quoted(projects),
            compute.url()
        ),
        &[],
        &[],
        compute.env(dir.path()),
    );
    let log = std::fs::read_to_string(dir.path().join("data/fleetscope.log")).unwrap_or_default();
    (output, json, log)
}

#[test]
fn every_verdict_through_the_real_client() {
    let mut world = World::default();
    shop(&mut world);
    let compute = Compute::start(world);
    let (output, report) = report(&compute, &[SHOP], "");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(source(&report, "gcp:shop")["state"], "done", "{report:#}");

    let verdict = |name: &str| by_name(&report, name)["verdict"].clone();
    assert_eq!(verdict("web-current"), "current");
    assert_eq!(verdict("web-outdated"), "outdated");
    assert_eq!(by_name(&report, "web-outdated")["behind_by"], 1);
    assert_eq!(by_name(&report, "web-outdated")["region"], "europe-west4");
    assert_eq!(by_name(&report, "web-outdated")["zone"], "europe-west4-b");
    assert_eq!(verdict("web-deprecated"), "flagged");
    assert_eq!(verdict("api-obsolete"), "flagged");
    assert_eq!(verdict("old-deleted"), "flagged");
    assert_eq!(verdict("base-stale"), "stale");
    assert_eq!(verdict("gone"), "unknown");
    assert_eq!(verdict("from-snapshot"), "unknown");
    // A public project's family: its golden image comes from images.getFromFamily, the newer
    // deprecated one notwithstanding.
    assert_eq!(verdict("deb-outdated"), "outdated");
    assert_eq!(verdict("bastion"), "current");

    let web = by_name(&report, "web-current");
    assert_eq!(web["id"], "1001");
    assert_eq!(web["image"], WEB_3);
    assert_eq!(web["account"], SHOP);
    assert_eq!(web["source"], "gcp:shop");
    assert_eq!(web["instance_type"], "e2-medium");
    assert_eq!(web["state"], "RUNNING");
    assert_eq!(web["tags"]["app"], "web");

    // Images: deprecation states as Compute states them, families with their project.
    let image = |key: &str| {
        report["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["key"] == key)
            .unwrap_or_else(|| panic!("image {key} missing from {report:#}"))
            .clone()
    };
    assert_eq!(image(WEB_1)["deprecation"]["state"], "DEPRECATED");
    assert_eq!(image(WEB_1)["family"], "shop/web");
    assert_eq!(image(API_1)["deprecation"]["state"], "OBSOLETE");
    assert_eq!(image(OLD_1)["deprecation"]["state"], "DELETED");
    assert_eq!(image(DEB_NEW)["family"], "debian-cloud/debian-12");
    assert_eq!(image(DEB_NEW)["owner"], "debian-cloud");
    assert_eq!(image(GONE)["readable"], false);
    assert!(
        image(GONE)["unreadable_reason"]
            .as_str()
            .unwrap()
            .contains("404"),
        "{report:#}"
    );
    let lineage = |name: &str| {
        report["lineages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == name)
            .unwrap_or_else(|| panic!("lineage {name} missing from {report:#}"))
            .clone()
    };
    assert_eq!(lineage("debian-cloud/debian-12")["golden"], DEB_NEW);
    assert_eq!(lineage("shop/web")["golden"], WEB_3);

    // Exposure and addresses.
    let bastion = by_name(&report, "bastion");
    assert_eq!(
        bastion["exposure"],
        json!(["firewall allow-ssh-bastion admits 22/tcp from 0.0.0.0/0"])
    );
    assert_eq!(bastion["addresses"]["public_ips"], json!(["34.66.1.9"]));
    assert_eq!(bastion["addresses"]["private_ips"], json!(["10.128.9.11"]));
    assert!(web["exposure"].is_null(), "{web:#}");

    // Groups: a zonal group on a global template that drifted, members on two images; a
    // regional group on a regional template following a public family.
    let web_mig = group(&report, "web-mig");
    assert_eq!(web_mig["kind"], "mig");
    assert_eq!(web_mig["key"], "gcp:shop:us-central1-a:web-mig");
    assert_eq!(web_mig["template"], "web-tpl-2");
    assert_eq!(web_mig["template_image"], WEB_2);
    assert_eq!(web_mig["template_status"]["status"], "drift", "{web_mig:#}");
    assert_eq!(web_mig["skew"], true);
    assert_eq!(web_mig["members"], 2);
    let deb_mig = group(&report, "deb-mig");
    assert_eq!(deb_mig["key"], "gcp:shop:us-central1:deb-mig");
    assert_eq!(deb_mig["region"], "us-central1");
    assert_eq!(deb_mig["template"], "deb-tpl (regional)");
    assert_eq!(deb_mig["template_image"], DEB_NEW);
    assert_eq!(
        deb_mig["template_status"]["status"], "golden",
        "{deb_mig:#}"
    );
    assert_eq!(
        by_name(&report, "deb-mig-b")["group"],
        "gcp:shop:us-central1:deb-mig"
    );

    // One token for the whole process, however many clients; each image read once.
    let world = compute.world.lock().unwrap();
    assert_eq!(world.token_requests, 1, "{:?}", world.calls);
    let gets = |path: &str| world.calls.iter().filter(|c| c.ends_with(path)).count();
    assert_eq!(gets("/global/images/web-v3"), 1);
    assert_eq!(gets("/global/images/family/web"), 1);
    assert_eq!(
        gets("/global/images/debian-12-bookworm-v20261020"),
        0,
        "came with its family"
    );
    assert_eq!(gets("/global/images/family/debian-12"), 1);
    assert_eq!(gets("/aggregated/disks"), 1);
}

#[test]
fn pages_follow_their_tokens() {
    let mut world = World::default();
    images(&mut world);
    for i in 0..1_203u64 {
        let name = format!("web-{i:04}");
        let zone = ["us-central1-a", "us-central1-b", "europe-west4-a"][i as usize % 3];
        add(&mut world, vm(&name, zone, 10_000 + i, WEB_3).resources());
    }
    let compute = Compute::start(world);
    let (output, report) = report(&compute, &[SHOP], "");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(report["instances"].as_array().unwrap().len(), 1_203);
    let calls = compute.calls();
    let pages = |what: &str| calls.iter().filter(|c| c.ends_with(what)).count();
    assert_eq!(pages("/aggregated/instances"), 3, "{calls:?}");
    assert_eq!(pages("/aggregated/disks"), 3, "{calls:?}");
}

#[test]
fn a_failing_project_fails_alone_with_one_line() {
    let mut world = World::default();
    shop(&mut world);
    add(
        &mut world,
        vm("ledger-1", "us-central1-a", 2001, WEB_3).resources(),
    );
    let denied = json!({"error": {"code": 403,
        "message": "Required 'compute.disks.list' permission for 'projects/ledger'",
        "errors": [{"message": "Required 'compute.disks.list' permission for 'projects/ledger'",
            "domain": "global", "reason": "forbidden"}]}});
    world.fault(
        "projects/ledger/",
        FaultKind::Status(403, denied),
        usize::MAX,
    );
    let disabled = json!({"error": {"code": 403,
        "message": "Compute Engine API has not been used in project quiet before or it is disabled.",
        "errors": [{"message": "Compute Engine API has not been used in project quiet before or it is disabled.",
            "domain": "usageLimits", "reason": "accessNotConfigured"}]}});
    world.fault(
        "projects/quiet/",
        FaultKind::Status(403, disabled),
        usize::MAX,
    );
    // Throttled and failing twice each, then fine: retried with backoff.
    let throttled = json!({"error": {"code": 429, "message": "Rate Limit Exceeded",
        "errors": [{"message": "Rate Limit Exceeded", "domain": "usageLimits", "reason": "rateLimitExceeded"}]}});
    world.fault(
        "projects/shop/aggregated/instances",
        FaultKind::Status(429, throttled),
        2,
    );
    let internal = json!({"error": {"code": 500, "message": "Internal error", "errors": []}});
    world.fault(
        "projects/shop/global/images/web-v2",
        FaultKind::Status(500, internal),
        2,
    );
    // Slow answers within the timeout are waited for; garbage is retried as an error.
    world.fault(
        "projects/shop/global/firewalls",
        FaultKind::Delay(Duration::from_millis(700)),
        1,
    );
    // Garbage where a list should be: an error for that call, not a panic.
    world.fault(
        "projects/slow/aggregated/disks",
        FaultKind::Garbage,
        usize::MAX,
    );
    let compute = Compute::start(world);
    let (output, report, log) = report_and_log(&compute, &["ledger", SHOP, "quiet", "slow"], "");
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The report is written; the failed projects are named on stderr, one line each, and
    // make the run exit 2. The project without Compute is skipped, not failed.
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 2, "{stderr}");
    for project in ["ledger", "slow"] {
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(&format!("fleetscope: gcp:{project} failed: "))),
            "{project}: {stderr}"
        );
    }

    let shop = source(&report, "gcp:shop");
    assert_eq!(shop["state"], "done", "{shop:#}");
    assert_eq!(by_name(&report, "web-outdated")["verdict"], "outdated");
    let ledger = source(&report, "gcp:ledger");
    assert_eq!(ledger["state"], "failed");
    let error = ledger["error"].as_str().unwrap();
    assert!(
        error.starts_with(
            "disks.aggregatedList: permission denied (403): Required 'compute.disks.list'"
        ),
        "{error}"
    );
    assert!(!error.contains('\n'));
    // The whole error behind the one line is kept in the log, for a bug report.
    let reason = error.trim_start_matches("disks.aggregatedList: ");
    assert!(
        log.lines()
            .any(|l| l.contains(&format!(" error: {reason} | "))),
        "{log}"
    );
    let quiet = source(&report, "gcp:quiet");
    assert_eq!(quiet["state"], "skipped", "{quiet:#}");
    assert_eq!(
        quiet["reason"], "Compute Engine API not enabled",
        "{quiet:#}"
    );
    let slow = source(&report, "gcp:slow");
    assert_eq!(slow["state"], "failed", "{slow:#}");
    assert!(
        slow["error"]
            .as_str()
            .unwrap()
            .starts_with("disks.aggregatedList: the answer could not be read"),
        "{slow:#}"
    );
    // No ledger instance slipped in.
    assert!(
        report["instances"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["account"] == SHOP)
    );
}

#[test]
fn a_call_that_never_answers_times_out() {
    let mut world = World::default();
    shop(&mut world);
    world.fault(
        "projects/shop/aggregated/disks",
        FaultKind::Delay(Duration::from_secs(30)),
        usize::MAX,
    );
    let compute = Compute::start(world);
    let started = std::time::Instant::now();
    let (output, _) = report(&compute, &[SHOP], "");
    // Nothing collected at all is an error of the run, naming the source and why.
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("gcp:shop: disks.aggregatedList: timed out"),
        "{stderr}"
    );
    // timeout_secs = 5, retried within twice that.
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_mute_endpoint_fails_by_the_deadline_naming_the_calls_it_waited_for() {
    // The token comes from the test server; Compute itself never answers.
    let compute = Compute::start(World::default());
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "version = 1\n[gcp]\nprojects = [\"shop\"]\nendpoint_url = \"{}\"\ntimeout_secs = 30\ndeadline_secs = 3\n",
        mute::endpoint()
    );
    let mut command = configured(dir.path(), &config, &["--report"]);
    let started = Instant::now();
    let output = command
        .envs(compute.env(dir.path()))
        .env("FLEETSCOPE_DATA_DIR", dir.path().join("data"))
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(elapsed < Duration::from_secs(15), "{elapsed:?}: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    // The project's independent listings were outstanding together, and are all named.
    for part in [
        "gcp:shop",
        "gcp.deadline_secs",
        "firewalls.list",
        "disks.aggregatedList",
        "instances.aggregatedList",
    ] {
        assert!(stderr.contains(part), "{part} missing from {stderr}");
    }
}

#[test]
fn an_absurd_timeout_never_panics() {
    let compute = Compute::start(World::default());
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "version = 1\n[gcp]\nprojects = [\"shop\"]\nendpoint_url = \"http://127.0.0.1:{dead}\"\ntimeout_secs = 9223372036854775807\n"
    );
    let output = configured(dir.path(), &config, &["--report"])
        .envs(compute.env(dir.path()))
        .env("FLEETSCOPE_DATA_DIR", dir.path().join("data"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Refused at load or collected and failed: either way one line and exit 2, never a panic.
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(!stderr.contains("panic"), "{stderr}");
}

#[test]
fn a_token_endpoint_that_echoes_the_request_leaves_no_secret_in_the_log() {
    let mut world = World::default();
    shop(&mut world);
    // The refresh request carries the client secret and the refresh token; the endpoint
    // refuses it and echoes it back.
    world.fault("/token", FaultKind::Echo(400), usize::MAX);
    let compute = Compute::start(world);
    let (output, _, log) = report_and_log(&compute, &[SHOP], "");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(compute.world.lock().unwrap().token_requests > 0);
    assert!(stderr.contains("gcp:shop"), "{stderr}");
    // The failure is logged, by its status.
    assert!(log.contains("400"), "{log}");
    for secret in ["test-secret", "test-refresh-token"] {
        assert!(!log.contains(secret), "{secret} in the log: {log}");
        assert!(!stderr.contains(secret), "{secret} on stderr: {stderr}");
        assert!(!stdout.contains(secret), "{secret} on stdout: {stdout}");
    }
}

#[test]
fn refused_credentials_fail_every_project_with_one_line() {
    let compute = Compute::start(World::default());
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "version = 1\n[gcp]\nprojects = [\"shop\"]\nendpoint_url = \"{}\"\ntimeout_secs = 5\n",
        compute.url()
    );
    let output = configured(
        dir.path(),
        &config,
        &["--report", "--format", "json", "--now", NOW],
    )
    .envs(compute.env(dir.path()))
    .env(
        "GOOGLE_APPLICATION_CREDENTIALS",
        dir.path().join("missing.json"),
    )
    .env("FLEETSCOPE_DATA_DIR", dir.path().join("data"))
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("gcp:shop: application default credentials: "),
        "{stderr}"
    );
    assert_eq!(compute.world.lock().unwrap().calls, Vec::<String>::new());
}

#[test]
fn recorded_compute_payloads_are_read_as_they_are() {
    let mut world = World::default();
    let project = "gcpdiag-gce1-aaaa";
    world.recorded.insert(
        format!("projects/{project}/aggregated/instances"),
        compute::fixture("gcpdiag-gce1-compute-instances-aggregated.json"),
    );
    world.recorded.insert(
        "projects/cloud-custodian/aggregated/disks".into(),
        compute::fixture("c7n-disk-query-aggregated-disks.json"),
    );
    let migs = compute::fixture("gcpdiag-gce1-compute-migs-aggregated.json");
    for group in migs["items"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|scoped| {
            scoped["instanceGroupManagers"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
    {
        let path = group["selfLink"]
            .as_str()
            .unwrap()
            .split("/compute/v1/")
            .nth(1)
            .unwrap()
            .to_owned();
        world.insert(path, group);
    }
    world.insert(
        "projects/cloud-custodian/global/images/image-1-dev",
        compute::fixture("c7n-image-refresh-images-get.json"),
    );
    world.insert(
        "projects/cloud-custodian/global/images/image-1",
        compute::fixture("c7n-image-filter-iam-images-list-deprecated.json")["items"][0].clone(),
    );
    // The recorded instances' boot disks, made from those recorded images.
    for (disk, image) in [("gce1", "image-1-dev"), ("mig-bzvx", "image-1")] {
        let path = format!("projects/{project}/zones/europe-west4-a/disks/{disk}");
        world.insert(
            path.clone(),
            json!({"kind": "compute#disk", "name": disk, "selfLink": make::link(&path),
                "sourceImage": make::link(&format!("projects/cloud-custodian/global/images/{image}"))}),
        );
    }
    let compute = Compute::start(world);
    let (output, report) = report(&compute, &[project, "cloud-custodian"], "");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        source(&report, "gcp:cloud-custodian")["state"],
        "done",
        "{report:#}"
    );
    let gcpdiag = source(&report, &format!("gcp:{project}"));
    assert_eq!(gcpdiag["state"], "done", "{gcpdiag:#}");
    assert_eq!(gcpdiag["instances"], 6);
    // The templates were not recorded: said once per group, the groups still listed.
    let warnings = gcpdiag["warnings"].to_string();
    assert!(
        warnings.contains("instanceTemplates.get: not found (404)"),
        "{warnings}"
    );

    let gce1 = report["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "7276406499315716343")
        .unwrap();
    assert_eq!(
        gce1["image"],
        "projects/cloud-custodian/global/images/image-1-dev"
    );
    assert_eq!(gce1["verdict"], "stale");
    assert_eq!(gce1["zone"], "europe-west4-a");
    assert_eq!(gce1["addresses"]["private_ips"], json!(["10.164.0.4"]));
    assert_eq!(gce1["tags"]["foo"], "bar");
    let mig = by_name(&report, "mig-bzvx");
    assert_eq!(mig["verdict"], "flagged");
    assert_eq!(mig["group"], format!("gcp:{project}:europe-west4-a:mig"));
    assert_eq!(by_name(&report, "gce2")["verdict"], "unknown");
    let group_mig = group(&report, "mig");
    assert_eq!(group_mig["template"], "mig-template");
    assert!(group_mig["template_image"].is_null());
    assert_eq!(
        group(&report, "gke-gke1-default-pool-35923fbc-grp")["template"],
        "gke-gke1-default-pool-35923fbc (regional)"
    );
}

#[test]
fn public_images_are_read_once_for_all_projects() {
    let mut world = World::default();
    images(&mut world);
    let projects = ["alpha", "beta", "gamma"];
    for (i, project) in projects.iter().enumerate() {
        let name = format!("{project}-vm");
        let machine = Vm {
            project,
            ..vm(&name, "us-central1-a", 3_000 + i as u64, DEB_OLD)
        };
        add(&mut world, machine.resources());
    }
    let compute = Compute::start(world);
    let (output, report) = report(&compute, &projects, "");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for project in projects {
        assert_eq!(
            by_name(&report, &format!("{project}-vm"))["verdict"],
            "outdated"
        );
    }
    let calls = compute.calls();
    let count = |path: &str| calls.iter().filter(|c| c.ends_with(path)).count();
    assert_eq!(
        count("/global/images/debian-12-bookworm-v20260901"),
        1,
        "{calls:?}"
    );
    assert_eq!(count("/global/images/family/debian-12"), 1, "{calls:?}");
}

#[test]
fn projects_come_from_the_command_line_too() {
    let mut world = World::default();
    shop(&mut world);
    let compute = Compute::start(world);
    let dir = tempfile::tempdir().unwrap();
    let config = format!("version = 1\n[gcp]\nendpoint_url = \"{}\"\n", compute.url());
    let output = configured(
        dir.path(),
        &config,
        &[
            "--report",
            "--format",
            "json",
            "--now",
            NOW,
            "--gcp-project",
            SHOP,
        ],
    )
    .envs(compute.env(dir.path()))
    .env("FLEETSCOPE_DATA_DIR", dir.path().join("data"))
    .output()
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(source(&report, "gcp:shop")["state"], "done");
}

/// An estate in Resource Manager: organization 100 holds a project and three folders (two
/// pages of them at two a page); folder 200 (prod) holds four projects (two pages), one being
/// deleted and one, `shop`, also configured by name, and folder 300 (eu) whose sub-folder 400
/// holds a project of its own; folder 201 (staging) holds a project without the Compute Engine
/// API; folder 202 is empty. Every ACTIVE project runs one instance, and so does the one being
/// deleted.
fn estate(world: &mut World) {
    images(world);
    world.page_max = Some(2);
    world.organization(100);
    world.project("org-tools", 1001, "organizations/100", "ACTIVE");
    world.folder(200, "organizations/100", "prod", "ACTIVE");
    world.folder(201, "organizations/100", "staging", "ACTIVE");
    world.folder(202, "organizations/100", "sandbox", "ACTIVE");
    world.project("prod-web", 2001, "folders/200", "ACTIVE");
    world.project("prod-api", 2002, "folders/200", "ACTIVE");
    world.project("prod-old", 2003, "folders/200", "DELETE_REQUESTED");
    world.project(SHOP, 2004, "folders/200", "ACTIVE");
    world.folder(300, "folders/200", "eu", "ACTIVE");
    world.project("eu-web", 3001, "folders/300", "ACTIVE");
    world.folder(400, "folders/300", "eu-deep", "ACTIVE");
    world.project("eu-deep", 4001, "folders/400", "ACTIVE");
    world.project("no-compute", 2011, "folders/201", "ACTIVE");
    for (i, project) in [
        "org-tools",
        "prod-web",
        "prod-api",
        "prod-old",
        SHOP,
        "eu-web",
        "eu-deep",
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("{project}-1");
        let machine = Vm {
            project,
            ..vm(&name, "us-central1-a", 5_000 + i as u64, WEB_3)
        };
        add(world, machine.resources());
    }
    // Compute's answer in a project where its API was never enabled, as it is sent today.
    let message = "Compute Engine API has not been used in project 2011 before or it is disabled. Enable it by visiting https://console.developers.google.com/apis/api/compute.googleapis.com/overview?project=2011 then retry. If you enabled this API recently, wait a few minutes for the action to propagate to our systems and retry.";
    let disabled = json!({"error": {"code": 403, "message": message,
        "errors": [{"message": message, "domain": "usageLimits", "reason": "accessNotConfigured",
            "extendedHelp": "https://console.developers.google.com"}],
        "status": "PERMISSION_DENIED",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "SERVICE_DISABLED",
            "domain": "googleapis.com",
            "metadata": {"service": "compute.googleapis.com", "consumer": "projects/2011"}}]}});
    world.fault(
        "projects/no-compute/",
        FaultKind::Status(403, disabled),
        usize::MAX,
    );
}

/// The report of `projects` plus `scopes` (a `folders = [...]` line, say) from this server.
fn estate_report(compute: &Compute, projects: &[&str], scopes: &str) -> (Output, Value) {
    let extra = format!(
        "{scopes}\nresource_manager_endpoint_url = \"{}\"\n",
        compute.url()
    );
    report(compute, projects, &extra)
}

fn state(report: &Value, name: &str) -> String {
    source(report, name)["state"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn every_active_project_of_an_organization_is_collected_once_at_any_depth() {
    let mut world = World::default();
    estate(&mut world);
    let compute = Compute::start(world);
    let (output, report) = estate_report(&compute, &[SHOP], "organizations = [\"100\"]");
    let stderr = String::from_utf8_lossy(&output.stderr);
    // A project without Compute is skipped: not a failure, so the run is clean.
    assert!(output.status.success(), "{stderr}");
    assert_eq!(stderr.trim(), "", "{stderr}");

    for project in [
        "org-tools",
        "prod-web",
        "prod-api",
        SHOP,
        "eu-web",
        "eu-deep",
    ] {
        let name = format!("gcp:{project}");
        assert_eq!(state(&report, &name), "done", "{name}: {report:#}");
        let instance = by_name(&report, &format!("{project}-1"));
        assert_eq!(instance["account"], project);
        assert_eq!(instance["source"], name.as_str());
    }
    assert_eq!(state(&report, "gcp:organizations/100"), "done");
    let quiet = source(&report, "gcp:no-compute");
    assert_eq!(quiet["state"], "skipped", "{quiet:#}");
    assert_eq!(quiet["reason"], "Compute Engine API not enabled");
    assert_eq!(report["summary"]["failed_sources"], 0, "{report:#}");

    // The project being deleted is neither a source nor collected.
    let sources: Vec<&str> = report["sources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(sources.len(), 8, "{sources:?}");
    assert!(!sources.contains(&"gcp:prod-old"), "{sources:?}");
    assert!(
        report["instances"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["account"] != "prod-old"),
        "{report:#}"
    );
    // Nothing asked Compute about it either, and `shop`, configured and found, once.
    let calls = compute.calls();
    let listed = |project: &str| {
        calls
            .iter()
            .filter(|c| *c == &format!("GET projects/{project}/aggregated/instances"))
            .count()
    };
    assert_eq!(listed("prod-old"), 0, "{calls:?}");
    assert_eq!(listed(SHOP), 1, "{calls:?}");
    assert_eq!(listed("eu-deep"), 1, "{calls:?}");

    // Pages followed: two of folders under the organization, two of projects in prod; every
    // folder listed once; never asked for deleted ones.
    let world = compute.world.lock().unwrap();
    let asked = |what: &str| {
        world
            .directory_calls
            .iter()
            .filter(|c| c.starts_with(&format!("GET v3/{what} ")))
            .count()
    };
    let under = |what: &str, parent: &str| {
        world
            .directory_calls
            .iter()
            .filter(|c| c.starts_with(&format!("GET v3/{what} ")))
            .filter(|c| c.contains(&format!("parent={parent}")))
            .count()
    };
    assert_eq!(
        under("folders", "organizations/100"),
        2,
        "{:#?}",
        world.directory_calls
    );
    assert_eq!(
        under("projects", "folders/200"),
        2,
        "{:#?}",
        world.directory_calls
    );
    assert_eq!(
        under("projects", "folders/400"),
        1,
        "{:#?}",
        world.directory_calls
    );
    // org, 200, 201, 202, 300, 400: six parents, one page each but the two above.
    assert_eq!(asked("projects"), 7, "{:#?}", world.directory_calls);
    assert_eq!(asked("folders"), 7, "{:#?}", world.directory_calls);
    assert!(
        !world
            .directory_calls
            .iter()
            .any(|c| c.contains("showDeleted=true")),
        "{:#?}",
        world.directory_calls
    );
    // One token for Compute and Resource Manager together.
    assert_eq!(world.token_requests, 1);
}

#[test]
fn a_folder_the_credential_cannot_read_fails_in_one_line_and_the_rest_complete() {
    let mut world = World::default();
    estate(&mut world);
    world.folder(999, "organizations/100", "secret", "ACTIVE");
    world.forbidden.insert("folders/999".into());
    let compute = Compute::start(world);
    let (output, report) = estate_report(&compute, &[], "folders = [\"200\", \"folders/999\"]");
    let stderr = String::from_utf8_lossy(&output.stderr);
    // A source failed: the report is written and the run exits 2, one line naming the folder.
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.trim(),
        "fleetscope: gcp:folders/999 failed: cannot list folders/999: permission denied (resourcemanager.projects.list, resourcemanager.folders.list), or it does not exist"
    );
    let denied = source(&report, "gcp:folders/999");
    assert_eq!(denied["state"], "failed");
    assert_eq!(denied["cloud"], "gcp");
    assert_eq!(state(&report, "gcp:folders/200"), "done");
    for project in ["prod-web", "prod-api", SHOP, "eu-web", "eu-deep"] {
        assert_eq!(
            state(&report, &format!("gcp:{project}")),
            "done",
            "{project}"
        );
    }
    assert_eq!(report["summary"]["failed_sources"], 1);
}

#[test]
fn a_sub_folder_it_cannot_read_leaves_its_folder_incomplete() {
    let mut world = World::default();
    estate(&mut world);
    world.forbidden.insert("folders/300".into());
    let compute = Compute::start(world);
    let (output, report) = estate_report(&compute, &[], "folders = [\"200\"]");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let prod = source(&report, "gcp:folders/200");
    assert_eq!(prod["state"], "incomplete", "{prod:#}");
    assert_eq!(
        prod["error"],
        "cannot list folders/300: permission denied (resourcemanager.projects.list, resourcemanager.folders.list), or it does not exist"
    );
    // What could be listed is collected; what is below the refused folder is not found.
    for project in ["prod-web", "prod-api", SHOP] {
        assert_eq!(
            state(&report, &format!("gcp:{project}")),
            "done",
            "{project}"
        );
    }
    assert!(
        report["sources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["name"] != "gcp:eu-web" && s["name"] != "gcp:eu-deep"),
        "{report:#}"
    );
}

#[test]
fn a_walk_that_never_answers_fails_by_the_deadline_naming_its_listings() {
    let mut world = World::default();
    estate(&mut world);
    for what in ["projects", "folders"] {
        world.fault(
            &format!("v3/{what} parent=organizations/100"),
            FaultKind::Delay(Duration::from_secs(30)),
            usize::MAX,
        );
    }
    let compute = Compute::start(world);
    let started = Instant::now();
    let (output, report) = report(
        &compute,
        &[SHOP],
        &format!(
            "organizations = [\"100\"]\nresource_manager_endpoint_url = \"{}\"\ndeadline_secs = 3\n",
            compute.url()
        ),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(started.elapsed() < Duration::from_secs(15), "{stderr}");
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert_eq!(
        stderr.trim(),
        "fleetscope: gcp:organizations/100 failed: no answer within 3 s (gcp.deadline_secs): still waiting for projects.list in organizations/100, folders.list in organizations/100"
    );
    // The project configured by name did not wait for the walk.
    assert_eq!(state(&report, "gcp:shop"), "done");
}

#[test]
fn folders_and_organizations_come_from_the_command_line_too() {
    let mut world = World::default();
    estate(&mut world);
    world.organization(500);
    world.project("other-app", 5001, "organizations/500", "ACTIVE");
    add(
        &mut world,
        Vm {
            project: "other-app",
            ..vm("other-app-1", "us-central1-a", 6_001, WEB_3)
        }
        .resources(),
    );
    let compute = Compute::start(world);
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "version = 1\n[gcp]\nendpoint_url = \"{0}\"\nresource_manager_endpoint_url = \"{0}\"\n",
        compute.url()
    );
    let output = configured(
        dir.path(),
        &config,
        &[
            "--report",
            "--format",
            "json",
            "--now",
            NOW,
            "--gcp-folder",
            "300",
            "--gcp-organization",
            "organizations/500",
        ],
    )
    .envs(compute.env(dir.path()))
    .env("FLEETSCOPE_DATA_DIR", dir.path().join("data"))
    .output()
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    for name in [
        "gcp:folders/300",
        "gcp:organizations/500",
        "gcp:eu-web",
        "gcp:eu-deep",
        "gcp:other-app",
    ] {
        assert_eq!(state(&report, name), "done", "{name}: {report:#}");
    }
    assert_eq!(by_name(&report, "other-app-1")["account"], "other-app");
    assert_eq!(report["sources"].as_array().unwrap().len(), 5, "{report:#}");
}
