//! The Azure source against a local Resource Manager (tests/arm): the real binary, the real
//! credential chain (an environment service principal whose authority host is the server) and
//! the real `azure_mgmt_compute` client, collected and evaluated end to end.
#![cfg(feature = "azure")]

mod arm;
mod common;
mod mute;

use std::process::Output;
use std::time::{Duration, Instant};

use arm::{ArmServer, Fault, Upgrade, community_ref, id_ref, marketplace_ref, shared_ref};
use common::report::{configured, instance, json_report, quoted, source};
use serde_json::{Value, json};

const PROD: &str = "11111111-0000-0000-0000-000000000001";
const STAGING: &str = "11111111-0000-0000-0000-000000000002";

fn definition(name: &str) -> String {
    format!(
        "/subscriptions/{PROD}/resourceGroups/rg-images/providers/Microsoft.Compute/galleries/golden/images/{name}"
    )
}

fn report(
    server: &ArmServer,
    dir: &std::path::Path,
    subscriptions: &[&str],
    args: &[&str],
) -> (Output, Value) {
    json_report(
        dir,
        &format!(
            "version = 1\n[azure]\nsubscriptions = [{}]\nendpoint_url = \"{}\"\ntimeout_secs = 5\n",
            quoted(subscriptions),
            server.url()
        ),
        args,
        &["AZURE_CREDENTIAL_KIND"],
        server.env(),
    )
}

/// A fleet with every kind of image reference and every verdict.
fn fleet(server: &ArmServer) -> Vec<(&'static str, String)> {
    server.subscription(PROD);
    let web = definition("web");
    let old = server.gallery_version(&web, "1.0.0", "2026-09-01T00:00:00Z", None, false, false);
    let previous =
        server.gallery_version(&web, "1.1.0", "2026-10-01T00:00:00Z", None, false, false);
    let golden = server.gallery_version(&web, "1.2.0", "2026-10-25T00:00:00Z", None, false, false);
    // Newer, but excluded from latest: never golden.
    server.gallery_version(&web, "1.3.0", "2026-10-30T00:00:00Z", None, true, false);
    let base = server.gallery_version(
        &definition("base"),
        "1.0.0",
        "2026-08-01T00:00:00Z",
        None,
        false,
        false,
    );
    let unsafe_version = server.gallery_version(
        &definition("api"),
        "2.0.0",
        "2026-10-28T00:00:00Z",
        None,
        false,
        true,
    );
    let retired = server.gallery_version(
        &definition("legacy"),
        "3.0.0",
        "2026-10-20T00:00:00Z",
        Some("2026-10-30T00:00:00Z"),
        false,
        false,
    );
    server.marketplace(
        "Canonical",
        "ubuntu-24_04-lts",
        "server",
        "24.04.202609010",
        None,
    );
    server.marketplace(
        "Canonical",
        "ubuntu-24_04-lts",
        "server",
        "24.04.202610250",
        Some("Active"),
    );
    server.marketplace(
        "MicrosoftWindowsServer",
        "WindowsServer",
        "2016-Datacenter",
        "14393.1.1",
        Some("Deprecated"),
    );
    // Versions with no date token: no age, drift by version order.
    server.marketplace(
        "MicrosoftWindowsServer",
        "WindowsServer",
        "2022-datacenter",
        "20348.1.9",
        None,
    );
    server.marketplace(
        "MicrosoftWindowsServer",
        "WindowsServer",
        "2022-datacenter",
        "20348.1.10",
        None,
    );
    let shared = server.shared_version("partner-gallery", "app", "1.0.0", "2026-10-28T00:00:00Z");
    let community =
        server.community_version("community-tools", "tool", "5.1.0", "2026-10-27T00:00:00Z");
    let managed = server.managed_image(PROD, "custom-20261001");
    let created = "2026-10-26T00:00:00Z";
    vec![
        (
            "current",
            server.vm(PROD, "web-current", id_ref(&golden), created),
        ),
        (
            "outdated",
            server.vm(PROD, "web-previous", id_ref(&previous), created),
        ),
        (
            "outdated2",
            server.vm(PROD, "web-old", id_ref(&old), created),
        ),
        ("stale", server.vm(PROD, "base", id_ref(&base), created)),
        (
            "flagged-unsafe",
            server.vm(PROD, "api", id_ref(&unsafe_version), created),
        ),
        (
            "flagged-eol",
            server.vm(PROD, "legacy", id_ref(&retired), created),
        ),
        (
            "unknown",
            server.vm(
                PROD,
                "gone",
                id_ref(&format!("{web}/versions/0.9.0")),
                created,
            ),
        ),
        (
            "marketplace-latest",
            server.vm(
                PROD,
                "ubuntu-latest",
                marketplace_ref(
                    "Canonical",
                    "ubuntu-24_04-lts",
                    "server",
                    "latest",
                    Some("24.04.202610250"),
                ),
                created,
            ),
        ),
        (
            "marketplace-old",
            server.vm(
                PROD,
                "ubuntu-old",
                marketplace_ref(
                    "Canonical",
                    "ubuntu-24_04-lts",
                    "server",
                    "24.04.202609010",
                    None,
                ),
                created,
            ),
        ),
        (
            "marketplace-deprecated",
            server.vm(
                PROD,
                "windows",
                marketplace_ref(
                    "MicrosoftWindowsServer",
                    "WindowsServer",
                    "2016-Datacenter",
                    "14393.1.1",
                    None,
                ),
                created,
            ),
        ),
        (
            "imageless",
            server.vm(PROD, "from-disk", Value::Null, created),
        ),
        (
            "marketplace-undated",
            server.vm(
                PROD,
                "windows-2022",
                marketplace_ref(
                    "MicrosoftWindowsServer",
                    "WindowsServer",
                    "2022-datacenter",
                    "20348.1.9",
                    None,
                ),
                created,
            ),
        ),
        (
            "shared",
            server.vm(PROD, "partner-app", shared_ref(&shared), created),
        ),
        (
            "community",
            server.vm(PROD, "tool", community_ref(&community), created),
        ),
        (
            "managed",
            server.vm(PROD, "custom", id_ref(&managed), created),
        ),
    ]
}

#[test]
fn every_image_reference_kind_and_every_verdict_through_the_real_binary() {
    let server = ArmServer::start();
    let vms = fleet(&server);
    let id = |label: &str| vms.iter().find(|(l, _)| *l == label).unwrap().1.clone();
    let dir = tempfile::tempdir().unwrap();
    let (output, report) = report(&server, dir.path(), &[PROD], &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}\n{report:#}");
    let verdict = |label: &str| instance(&report, &id(label))["verdict"].clone();
    let reasons = |label: &str| instance(&report, &id(label))["reasons"].to_string();

    assert_eq!(verdict("current"), "current", "{report:#}");
    assert_eq!(verdict("outdated"), "outdated");
    assert_eq!(instance(&report, &id("outdated"))["behind_by"], 1);
    assert_eq!(verdict("outdated2"), "outdated");
    assert_eq!(instance(&report, &id("outdated2"))["behind_by"], 2);
    assert_eq!(verdict("stale"), "stale");
    assert_eq!(verdict("flagged-unsafe"), "flagged");
    assert_eq!(verdict("flagged-eol"), "flagged");
    assert_eq!(verdict("unknown"), "unknown");
    assert_eq!(verdict("marketplace-latest"), "current");
    assert_eq!(
        instance(&report, &id("marketplace-latest"))["image"],
        "canonical:ubuntu-24_04-lts:server:24.04.202610250",
        "latest resolves to exactVersion"
    );
    assert_eq!(verdict("marketplace-old"), "outdated");
    assert_eq!(verdict("marketplace-deprecated"), "flagged");
    assert_eq!(verdict("imageless"), "unknown");
    assert!(
        reasons("imageless").contains("created from a disk"),
        "{}",
        reasons("imageless")
    );
    assert_eq!(verdict("marketplace-undated"), "outdated");
    assert!(
        reasons("marketplace-undated").contains("age unknown"),
        "{}",
        reasons("marketplace-undated")
    );
    assert_eq!(verdict("shared"), "current");
    assert_eq!(verdict("community"), "current");
    assert_eq!(verdict("managed"), "current");

    assert!(
        reasons("flagged-unsafe").contains("policy violation"),
        "{}",
        reasons("flagged-unsafe")
    );
    assert!(
        reasons("flagged-eol").contains("deprecated by azure"),
        "{}",
        reasons("flagged-eol")
    );
    assert!(
        reasons("unknown").contains("not among the versions"),
        "{}",
        reasons("unknown")
    );

    // The golden web image skips the version excluded from latest.
    let web = definition("web").to_ascii_lowercase();
    let lineage = report["lineages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == web)
        .unwrap_or_else(|| panic!("web lineage missing: {report:#}"));
    assert_eq!(lineage["golden"], format!("{web}/versions/1.2.0"));

    // The image of a managed image has no age; a marketplace version's comes from its token.
    let image = |key: &str| {
        report["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["key"] == key)
            .unwrap_or_else(|| panic!("image {key} missing"))
            .clone()
    };
    let managed_key = instance(&report, &id("managed"))["image"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        image(&managed_key)["age_days"].is_null(),
        "{:#}",
        image(&managed_key)
    );
    assert_eq!(
        image("canonical:ubuntu-24_04-lts:server:24.04.202610250")["age_days"],
        7
    );

    // Each version list or image fetched once, however many VMs run it.
    assert_eq!(
        server.count("/images/web/versions"),
        1,
        "{:#?}",
        server.calls()
    );
    assert_eq!(
        server.count("/skus/server/versions") - server.count("/skus/server/versions/"),
        1
    );
    assert_eq!(source(&report, &format!("azure:{PROD}"))["state"], "done");
    assert_eq!(server.count("oauth2/v2.0/token"), 1);
}

#[test]
fn scale_set_skew_and_model_drift() {
    let server = ArmServer::start();
    server.subscription(PROD);
    let web = definition("web");
    let previous =
        server.gallery_version(&web, "1.1.0", "2026-10-01T00:00:00Z", None, false, false);
    let golden = server.gallery_version(&web, "1.2.0", "2026-10-25T00:00:00Z", None, false, false);
    let drifting = server.scale_set(
        PROD,
        "web-old-model",
        id_ref(&previous),
        false,
        &[
            (id_ref(&previous), true, Upgrade::Healthy),
            (id_ref(&golden), false, Upgrade::Healthy),
        ],
    );
    server.scale_set(
        PROD,
        "web-golden-model",
        id_ref(&golden),
        true,
        &[(id_ref(&golden), true, Upgrade::Healthy)],
    );
    let dir = tempfile::tempdir().unwrap();
    let (output, report) = report(&server, dir.path(), &[PROD], &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let group = |name: &str| {
        report["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing: {report:#}"))
            .clone()
    };
    let old_model = group("web-old-model");
    assert_eq!(
        old_model["template_status"]["status"], "drift",
        "{old_model:#}"
    );
    assert_eq!(old_model["skew"], true, "{old_model:#}");
    let golden_model = group("web-golden-model");
    assert_eq!(
        golden_model["template_status"]["status"], "golden",
        "{golden_model:#}"
    );
    assert_eq!(golden_model["skew"], false, "{golden_model:#}");
    let member = instance(&report, &drifting[1]);
    assert_eq!(member["tags"]["azure:latestModelApplied"], "false");
    assert_eq!(
        member["group"],
        drifting[1]
            .to_ascii_lowercase()
            .rsplit_once("/virtualmachines/")
            .unwrap()
            .0
    );
}

#[test]
fn one_failing_subscription_never_blocks_another() {
    let server = ArmServer::start();
    let vms = fleet(&server);
    server.forbid(STAGING);
    let missing = "11111111-0000-0000-0000-00000000dead";
    let dir = tempfile::tempdir().unwrap();
    // Staging comes from the command line, the others from the config.
    let (output, report) = report(
        &server,
        dir.path(),
        &[PROD, missing],
        &["--azure-subscription", STAGING],
    );
    // The others' report is written; the failed two are named on stderr and exit 2.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 2, "{stderr}");
    assert!(
        stderr.contains(&format!("fleetscope: azure:{STAGING} failed: ")),
        "{stderr}"
    );
    assert_eq!(source(&report, &format!("azure:{PROD}"))["state"], "done");
    assert_eq!(instance(&report, &vms[0].1)["verdict"], "current");
    let denied = source(&report, &format!("azure:{STAGING}"));
    assert_eq!(denied["state"], "failed");
    let error = denied["error"].as_str().unwrap();
    assert!(
        error.contains("403") && error.contains("AuthorizationFailed"),
        "{error}"
    );
    assert!(!error.contains('\n'));
    // The whole error behind the one line is kept in the log, for a bug report.
    let log = std::fs::read_to_string(dir.path().join("data/fleetscope.log")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains(&format!(" error: {error} | "))),
        "{log}"
    );
    let gone = source(&report, &format!("azure:{missing}"));
    assert!(
        gone["error"]
            .as_str()
            .unwrap()
            .contains("SubscriptionNotFound"),
        "{gone:#}"
    );
}

#[test]
fn every_subscription_the_credential_lists_with_paging_throttling_and_retries() {
    let server = ArmServer::start();
    let vms = fleet(&server);
    server.subscription(STAGING);
    let staging_vm = server.vm(
        STAGING,
        "staging-web",
        id_ref(&vms[0].1),
        "2026-10-26T00:00:00Z",
    );
    server.page_size(2);
    server.fault(
        "/virtualMachines",
        Fault::Status {
            status: 429,
            retry_after: Some(1),
        },
        1,
    );
    server.fault(
        "/virtualMachineScaleSets",
        Fault::Status {
            status: 500,
            retry_after: None,
        },
        2,
    );
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let (output, report) = report(&server, dir.path(), &["*"], &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The throttled call waited at least its Retry-After.
    assert!(started.elapsed() >= Duration::from_secs(1));
    for sub in [PROD, STAGING] {
        // The scale-set list answered 500 twice, then was retried into success.
        assert!(
            source(&report, &format!("azure:{sub}"))["warnings"].is_null(),
            "{report:#}"
        );
        assert_eq!(
            source(&report, &format!("azure:{sub}"))["state"],
            "done",
            "{report:#}"
        );
    }
    let collected = report["instances"].as_array().unwrap().len();
    assert_eq!(collected, vms.len() + 1);
    // Fifteen VMs two to a page: eight pages, each a call; staging's one page; the same again
    // for the status-only list; and the one try that was throttled.
    let list_calls = server
        .calls()
        .iter()
        .filter(|c| {
            c.ends_with("/virtualMachines") || c.ends_with("/virtualMachines?statusOnly=true")
        })
        .count();
    assert_eq!(list_calls, 2 * (8 + 1) + 1, "{:#?}", server.calls());
    assert_eq!(instance(&report, &staging_vm)["account"], STAGING);
    // A marketplace version's own gallery was read through the other subscription's reference.
    assert!(report["images"].as_array().unwrap().len() > 5);
}

#[test]
fn slow_and_garbled_answers_fail_only_what_they_touch() {
    let server = ArmServer::start();
    let vms = fleet(&server);
    server.subscription(STAGING);
    server.vm(
        STAGING,
        "staging-web",
        id_ref(&vms[0].1),
        "2026-10-26T00:00:00Z",
    );
    server.fault(
        &format!("{STAGING}/providers/Microsoft.Compute/virtualMachines"),
        Fault::Slow(Duration::from_secs(8)),
        10,
    );
    server.fault("/images/base/versions", Fault::Garbage, 1);
    // Throttled past every retry.
    let throttled_id = "11111111-0000-0000-0000-000000000003";
    server.subscription(throttled_id);
    server.fault(
        &format!("{throttled_id}/providers"),
        Fault::Status {
            status: 429,
            retry_after: Some(0),
        },
        100,
    );
    let dir = tempfile::tempdir().unwrap();
    let (output, report) = report(
        &server,
        dir.path(),
        &[PROD, STAGING, throttled_id],
        &["--allow-partial"],
    );
    // Two sources failed: named on stderr; --allow-partial keeps the exit code to findings.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(stderr.lines().count(), 2, "{stderr}");
    let slow = source(&report, &format!("azure:{STAGING}"));
    assert_eq!(slow["state"], "failed");
    assert!(
        slow["error"]
            .as_str()
            .unwrap()
            .contains("timed out after 5s"),
        "{slow:#}"
    );
    let throttled = source(&report, &format!("azure:{throttled_id}"));
    assert_eq!(throttled["state"], "failed");
    let error = throttled["error"].as_str().unwrap();
    assert!(error.contains("HTTP 429, throttled"), "{error}");
    // The first try and three retries, of the VM list and of the scale-set list alike (the
    // status-only list, retried beside them, ends when the VM list fails the source).
    let tries = |list: &str| {
        server
            .calls()
            .iter()
            .filter(|c| c.contains(throttled_id) && c.ends_with(list))
            .count()
    };
    assert_eq!(tries("/virtualMachines"), 4);
    assert!((1..=4).contains(&tries("/virtualMachines?statusOnly=true")));
    assert_eq!(tries("/virtualMachineScaleSets"), 4);
    let prod = source(&report, &format!("azure:{PROD}"));
    assert_eq!(prod["state"], "done", "{prod:#}");
    let stale = vms.iter().find(|(l, _)| *l == "stale").unwrap();
    let base = instance(&report, &stale.1);
    assert_eq!(base["verdict"], "unknown", "{base:#}");
    assert!(
        base["reasons"]
            .to_string()
            .contains("the answer could not be read"),
        "{base:#}"
    );
    assert!(
        prod["warnings"]
            .to_string()
            .contains("the answer could not be read"),
        "{prod:#}"
    );
}

#[test]
fn a_mute_endpoint_fails_by_the_deadline_naming_the_calls_it_waited_for() {
    // The token comes from the test server; Resource Manager itself never answers.
    let server = ArmServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "version = 1\n[azure]\nsubscriptions = [\"{PROD}\"]\nendpoint_url = \"{}\"\ntimeout_secs = 30\ndeadline_secs = 3\n",
        mute::endpoint()
    );
    let mut command = configured(dir.path(), &config, &["--report"]);
    let started = Instant::now();
    let output = command
        .env_remove("AZURE_CREDENTIAL_KIND")
        .envs(server.env())
        .env("FLEETSCOPE_DATA_DIR", dir.path().join("data"))
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(elapsed < Duration::from_secs(15), "{elapsed:?}: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    // Its two independent listings were outstanding together, and both are named.
    for part in [
        &format!("azure:{PROD}"),
        "azure.deadline_secs",
        "listing VMs",
        "listing scale sets",
    ] {
        assert!(stderr.contains(part), "{part} missing from {stderr}");
    }
}

#[test]
fn a_token_endpoint_that_echoes_the_request_leaves_no_secret_in_the_log() {
    let server = ArmServer::start();
    fleet(&server);
    // The token request carries the client secret; the endpoint refuses it and echoes it.
    server.fault("/oauth2/v2.0/token", Fault::Echo(400), 100);
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "version = 1\n[azure]\nsubscriptions = [\"{PROD}\"]\nendpoint_url = \"{}\"\ntimeout_secs = 5\n",
        server.url()
    );
    // Only the environment's service principal: no other credential is tried.
    let output = configured(dir.path(), &config, &["--report"])
        .envs(server.env())
        .env("AZURE_CREDENTIAL_KIND", "environment")
        .env("FLEETSCOPE_DATA_DIR", dir.path().join("data"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("azure:{PROD}")), "{stderr}");
    let log = std::fs::read_to_string(dir.path().join("data/fleetscope.log")).unwrap_or_default();
    assert!(log.contains("token"), "{log}");
    for text in [log.as_str(), stderr.as_ref(), stdout.as_ref()] {
        assert!(!text.contains("test-secret"), "{text}");
    }
}

/// A report on the subscriptions and management groups given, and `args`.
fn estate_report(
    server: &ArmServer,
    dir: &std::path::Path,
    subscriptions: &[&str],
    groups: &[&str],
    args: &[&str],
) -> (Output, Value) {
    json_report(
        dir,
        &format!(
            "version = 1\n[azure]\nsubscriptions = [{}]\nmanagement_groups = [{}]\nendpoint_url = \"{}\"\ntimeout_secs = 5\n",
            quoted(subscriptions),
            quoted(groups),
            server.url()
        ),
        args,
        &["AZURE_CREDENTIAL_KIND"],
        server.env(),
    )
}

const ROOT_SUB: &str = "33333333-0000-0000-0000-000000000001";
const CHILD_SUB: &str = "33333333-0000-0000-0000-000000000002";
const GRANDCHILD_SUB: &str = "33333333-0000-0000-0000-000000000003";
const GRANDCHILD_SUB2: &str = "33333333-0000-0000-0000-000000000004";
const OTHER_SUB: &str = "33333333-0000-0000-0000-000000000005";

/// One VM in the subscription, on a marketplace image the server lists; its id.
fn one_vm(server: &ArmServer, subscription: &str) -> String {
    let version = "24.04.202610250";
    server.marketplace("Canonical", "ubuntu-24_04-lts", "server", version, None);
    let image = marketplace_ref("Canonical", "ubuntu-24_04-lts", "server", version, None);
    let name = format!("web-{}", &subscription[subscription.len() - 4..]);
    server.vm(subscription, &name, image, "2026-10-26T00:00:00Z")
}

/// The names of the report's sources.
fn source_names(report: &Value) -> Vec<String> {
    let mut names: Vec<String> = report["sources"]
        .as_array()
        .unwrap_or_else(|| panic!("no sources: {report:#}"))
        .iter()
        .filter_map(|s| s["name"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// The VM list calls made on a subscription.
fn vm_lists(server: &ArmServer, subscription: &str) -> usize {
    let tail = format!("/subscriptions/{subscription}/providers/Microsoft.Compute/virtualMachines");
    server.calls().iter().filter(|c| c.ends_with(&tail)).count()
}

#[test]
fn a_management_group_collects_every_subscription_below_it_nested_groups_and_pages_included() {
    let server = ArmServer::start();
    server.management_group("mg-root", None, &[ROOT_SUB]);
    server.management_group("mg-child", Some("mg-root"), &[CHILD_SUB]);
    server.management_group(
        "mg-grandchild",
        Some("mg-child"),
        &[GRANDCHILD_SUB, GRANDCHILD_SUB2],
    );
    // Elsewhere in the tenant, not below the configured group.
    server.management_group("mg-other", None, &[OTHER_SUB]);
    let below = [ROOT_SUB, CHILD_SUB, GRANDCHILD_SUB, GRANDCHILD_SUB2];
    let vms: Vec<String> = below.iter().map(|s| one_vm(&server, s)).collect();
    let other_vm = one_vm(&server, OTHER_SUB);
    // Two groups and four subscriptions below the root, two to a page: three pages.
    server.page_size(2);
    let dir = tempfile::tempdir().unwrap();
    let (output, report) = estate_report(&server, dir.path(), &[], &["mg-root"], &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}\n{report:#}");
    assert_eq!(server.count("/descendants"), 3, "{:#?}", server.calls());
    for (subscription, vm) in below.iter().zip(&vms) {
        let collected = source(&report, &format!("azure:{subscription}"));
        assert_eq!(collected["state"], "done", "{collected:#}");
        // Announced as found, with the subscription it is.
        assert_eq!(collected["account"], *subscription, "{collected:#}");
        assert_eq!(instance(&report, vm)["account"], *subscription);
    }
    // Only the subscriptions are sources: a group that listed fine is not one.
    let mut expected: Vec<String> = below.iter().map(|s| format!("azure:{s}")).collect();
    expected.sort();
    assert_eq!(source_names(&report), expected);
    assert_eq!(vm_lists(&server, OTHER_SUB), 0);
    let ids: Vec<&str> = report["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert!(!ids.contains(&other_vm.as_str()), "{ids:?}");
    assert_eq!(ids.len(), 4, "{ids:?}");
}

#[test]
fn a_subscription_in_two_groups_in_the_list_and_under_star_is_collected_once() {
    let server = ArmServer::start();
    let shared = "44444444-0000-0000-0000-000000000001";
    let only_a = "44444444-0000-0000-0000-000000000002";
    let only_star = "44444444-0000-0000-0000-000000000003";
    server.management_group("mg-a", None, &[shared, only_a]);
    server.management_group("mg-b", None, &[shared]);
    server.subscription(only_star);
    let vms: Vec<String> = [shared, only_a, only_star]
        .iter()
        .map(|s| one_vm(&server, s))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let (output, report) = estate_report(
        &server,
        dir.path(),
        &[shared, "*"],
        &["mg-a", "mg-b", "MG-A"],
        &[],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}\n{report:#}");
    for subscription in [shared, only_a, only_star] {
        assert_eq!(
            vm_lists(&server, subscription),
            1,
            "{subscription}: {:#?}",
            server.calls()
        );
        let collected = source(&report, &format!("azure:{subscription}"));
        assert_eq!(collected["state"], "done", "{collected:#}");
    }
    let mut expected: Vec<String> = [shared, only_a, only_star]
        .iter()
        .map(|s| format!("azure:{s}"))
        .collect();
    expected.sort();
    assert_eq!(source_names(&report), expected);
    // Each group listed once, however often it is configured.
    assert_eq!(
        server.count("/mg-a/descendants"),
        1,
        "{:#?}",
        server.calls()
    );
    assert_eq!(server.count("/mg-b/descendants"), 1);
    let instances = report["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 3, "{instances:#?}");
    for vm in &vms {
        assert_eq!(instance(&report, vm)["verdict"], "current");
    }
}

#[test]
fn a_group_the_credential_cannot_read_fails_in_one_line_and_the_rest_completes() {
    let server = ArmServer::start();
    let listed = "55555555-0000-0000-0000-000000000001";
    let below = "55555555-0000-0000-0000-000000000002";
    server.subscription(listed);
    server.management_group("mg-ok", None, &[below]);
    server.forbid_management_group("mg-denied");
    let vms = [one_vm(&server, listed), one_vm(&server, below)];
    let dir = tempfile::tempdir().unwrap();
    let (output, report) = estate_report(
        &server,
        dir.path(),
        &[listed],
        &["mg-denied", "mg-ok", "mg-missing"],
        &[],
    );
    // The report is written; the two groups are named on stderr, one line each, and exit 2.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 2, "{stderr}");
    let denied = source(&report, "azure:mg:mg-denied");
    assert_eq!(denied["state"], "failed", "{denied:#}");
    let error = denied["error"].as_str().unwrap();
    assert!(
        error.starts_with(
            "listing management group mg-denied: HTTP 403, access denied (the credential lacks Microsoft.Management/managementGroups/descendants/read on the group; Reader there grants it): AuthorizationFailed: "
        ),
        "{error}"
    );
    assert!(!error.contains('\n'));
    assert!(
        stderr.contains(&format!("fleetscope: azure:mg:mg-denied failed: {error}")),
        "{stderr}"
    );
    let missing = source(&report, "azure:mg:mg-missing");
    assert_eq!(missing["state"], "failed", "{missing:#}");
    assert!(
        missing["error"].as_str().unwrap().starts_with(
            "listing management group mg-missing: HTTP 404, not found (azure.management_groups takes the group's id, not its display name)"
        ),
        "{missing:#}"
    );
    for (subscription, vm) in [listed, below].iter().zip(&vms) {
        let collected = source(&report, &format!("azure:{subscription}"));
        assert_eq!(collected["state"], "done", "{collected:#}");
        assert_eq!(instance(&report, vm)["verdict"], "current");
    }
    assert!(source_names(&report).iter().all(|s| s != "azure:mg:mg-ok"));
}

#[test]
fn the_management_group_flag_adds_groups_to_the_config() {
    let server = ArmServer::start();
    let in_a = "66666666-0000-0000-0000-000000000001";
    let in_b = "66666666-0000-0000-0000-000000000002";
    server.management_group("mg-a", None, &[in_a]);
    server.management_group("mg-b", None, &[in_b]);
    let vms = [one_vm(&server, in_a), one_vm(&server, in_b)];
    let dir = tempfile::tempdir().unwrap();
    // Nothing to collect in the config itself: the flags alone make the sources.
    let (output, report) = estate_report(
        &server,
        dir.path(),
        &[],
        &[],
        &[
            "--azure-management-group",
            "mg-a",
            "--azure-management-group",
            "mg-b",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}\n{report:#}");
    for (subscription, vm) in [in_a, in_b].iter().zip(&vms) {
        let collected = source(&report, &format!("azure:{subscription}"));
        assert_eq!(collected["state"], "done", "{collected:#}");
        assert_eq!(instance(&report, vm)["account"], *subscription);
    }
    assert_eq!(server.count("/descendants"), 2, "{:#?}", server.calls());
}

#[test]
fn a_next_link_off_the_endpoint_is_not_followed() {
    let server = ArmServer::start();
    let elsewhere = ArmServer::start();
    let first = "77777777-0000-0000-0000-000000000001";
    let second = "77777777-0000-0000-0000-000000000002";
    server.management_group("mg-root", None, &[first, second]);
    let vm = one_vm(&server, first);
    one_vm(&server, second);
    server.page_size(1);
    server.stray_next_links(&elsewhere.url());
    let dir = tempfile::tempdir().unwrap();
    let (output, report) = estate_report(&server, dir.path(), &[], &["mg-root"], &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    // The token never went to the other server.
    assert!(elsewhere.calls().is_empty(), "{:#?}", elsewhere.calls());
    let group = source(&report, "azure:mg:mg-root");
    assert_eq!(
        group["error"],
        format!(
            "listing management group mg-root: the next page's link points to {}, off azure.endpoint_url: not followed",
            elsewhere.url().trim_end_matches('/')
        ),
        "{group:#}"
    );
    // What the first page found is still collected.
    assert_eq!(source(&report, &format!("azure:{first}"))["state"], "done");
    assert_eq!(instance(&report, &vm)["account"], first);
    assert_eq!(vm_lists(&server, second), 0);
}

/// A VM on the golden web image of `fleet`'s gallery; its id.
fn web_vm(server: &ArmServer, golden: &str, name: &str) -> String {
    server.vm(PROD, name, id_ref(golden), "2026-10-26T00:00:00Z")
}

fn golden_web(server: &ArmServer) -> String {
    server.gallery_version(
        &definition("web"),
        "1.2.0",
        "2026-10-25T00:00:00Z",
        None,
        false,
        false,
    )
}

/// The ids of the instances of a report.
fn instance_ids(report: &Value) -> Vec<String> {
    let mut ids: Vec<String> = report["instances"]
        .as_array()
        .unwrap_or_else(|| panic!("no instances: {report:#}"))
        .iter()
        .filter_map(|i| i["id"].as_str().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

#[test]
fn every_vm_and_member_carries_its_addresses_and_an_alerts_ip_finds_it() {
    let server = ArmServer::start();
    server.subscription(PROD);
    // Pages of two: every network list takes several pages.
    server.page_size(2);
    let golden = golden_web(&server);
    let web = web_vm(&server, &golden, "web-1");
    let db = web_vm(&server, &golden, "db");
    let data_subnet = arm::subnet_id(PROD, "vnet-data", "db");
    server.add_nic(PROD, &db, "db-data", "10.2.0.9", &data_subnet);
    let bastion = web_vm(&server, &golden, "bastion");
    server.public_ip(
        PROD,
        "bastion-nic",
        "20.50.1.7",
        Some("bastion-prod.westeurope.cloudapp.azure.com"),
    );
    let members = server.scale_set(
        PROD,
        "api",
        id_ref(&golden),
        false,
        &[
            (id_ref(&golden), true, Upgrade::Healthy),
            (id_ref(&golden), true, Upgrade::Healthy),
        ],
    );
    server.public_ip(PROD, "api-nic1", "20.50.2.8", None);
    let dir = tempfile::tempdir().unwrap();
    let (output, collected) = report(&server, dir.path(), &[PROD], &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        source(&collected, &format!("azure:{PROD}"))["state"],
        "done"
    );
    assert!(
        source(&collected, &format!("azure:{PROD}"))["warnings"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{collected:#}"
    );
    let addresses = |id: &str| instance(&collected, id)["addresses"].clone();
    assert_eq!(addresses(&web), json!({"private_ips": ["10.1.0.4"]}));
    // Two NICs: the primary's address first.
    assert_eq!(
        addresses(&db),
        json!({"private_ips": ["10.1.0.5", "10.2.0.9"]})
    );
    assert_eq!(
        addresses(&bastion),
        json!({
            "private_ips": ["10.1.0.6"],
            "public_ips": ["20.50.1.7"],
            "dns_names": ["bastion-prod.westeurope.cloudapp.azure.com"]
        })
    );
    assert_eq!(addresses(&members[0]), json!({"private_ips": ["10.1.0.7"]}));
    assert_eq!(
        addresses(&members[1]),
        json!({"private_ips": ["10.1.0.8"], "public_ips": ["20.50.2.8"]})
    );

    // Read in bulk: each list once per subscription or scale set, page by page (pages of
    // two), never per VM.
    let lists = |tail: &str| {
        server
            .calls()
            .iter()
            .filter(|c| c.to_ascii_lowercase().ends_with(&tail.to_ascii_lowercase()))
            .count()
    };
    let network = format!("/subscriptions/{PROD}/providers/Microsoft.Network");
    // Four NICs (db has two): two pages; one public IP; no NSG: one page each.
    assert_eq!(lists(&format!("{network}/networkInterfaces")), 2);
    assert_eq!(lists(&format!("{network}/publicIPAddresses")), 1);
    assert_eq!(lists(&format!("{network}/networkSecurityGroups")), 1);
    assert_eq!(lists("/virtualMachineScaleSets/api/networkInterfaces"), 1);
    assert_eq!(lists("/virtualMachineScaleSets/api/publicipaddresses"), 1);
    // Three VMs: the full list and the status-only one, two pages each.
    assert_eq!(vm_lists(&server, PROD), 2);
    assert_eq!(lists("/virtualMachines?statusOnly=true"), 2);

    // An alert's address, a network, a DNS name and free text find the VM.
    for (filter, expected) in [
        ("ip:10.1.0.4", vec![web.clone()]),
        ("ip:10.2.0.0/16", vec![db.clone()]),
        ("ip:bastion-prod", vec![bastion.clone()]),
        ("20.50.2.8", vec![members[1].clone()]),
        ("cloud:azure 10.1.0.5", vec![db.clone()]),
    ] {
        let (output, found) = report(&server, dir.path(), &[PROD], &["--filter", filter]);
        assert!(output.status.success(), "{filter}");
        assert_eq!(instance_ids(&found), expected, "{filter}");
    }
}

#[test]
fn exposure_through_network_security_groups_as_azure_weighs_them() {
    let server = ArmServer::start();
    server.subscription(PROD);
    let golden = golden_web(&server);
    let rule = arm::nsg_rule;
    let vm = |name: &str| web_vm(&server, &golden, name);

    // On the NIC: SSH from the Internet tag.
    let nic_ssh = vm("nic-ssh");
    let open = server.nsg(
        PROD,
        "nic-open",
        vec![rule(
            "allow-ssh",
            "Allow",
            100,
            json!("22"),
            json!("Internet"),
        )],
        &[],
    );
    server.nic_nsg("nic-ssh-nic", &open);
    // On the subnet: a range holding RDP, from anywhere.
    let subnet_rdp = vm("subnet-rdp");
    let open_subnet = arm::subnet_id(PROD, "vnet-web", "open");
    server.nic_subnet("subnet-rdp-nic", &open_subnet);
    server.nsg(
        PROD,
        "subnet-open",
        vec![rule(
            "rdp-range",
            "Allow",
            300,
            json!("3380-3390"),
            json!("*"),
        )],
        &[&open_subnet],
    );
    // A list of ranges, one holding 22, from 0.0.0.0/0 among private sources.
    let ranges = vm("ranges");
    let listed = server.nsg(
        PROD,
        "listed",
        vec![rule(
            "web-and-admin",
            "Allow",
            100,
            json!(["443", "20-25"]),
            json!(["10.0.0.0/8", "0.0.0.0/0"]),
        )],
        &[],
    );
    server.nic_nsg("ranges-nic", &listed);
    // A higher-priority Deny covers the Allow.
    let denied = vm("denied");
    let shut = server.nsg(
        PROD,
        "shut",
        vec![
            rule("allow-ssh", "Allow", 200, json!("22"), json!("Internet")),
            rule("deny-ssh", "Deny", 100, json!("22"), json!("*")),
        ],
        &[],
    );
    server.nic_nsg("denied-nic", &shut);
    // A private source only.
    let private = vm("private");
    let internal = server.nsg(
        PROD,
        "internal",
        vec![rule(
            "ssh-from-vpn",
            "Allow",
            100,
            json!("22"),
            json!("10.0.0.0/8"),
        )],
        &[],
    );
    server.nic_nsg("private-nic", &internal);
    // The subnet admits SSH, the NIC's group does not: both must allow.
    let both = vm("both");
    let dmz = arm::subnet_id(PROD, "vnet-web", "dmz");
    server.nsg(
        PROD,
        "dmz-open",
        vec![rule("ssh", "Allow", 100, json!("22"), json!("*"))],
        &[&dmz],
    );
    server.nic_subnet("both-nic", &dmz);
    let closed = server.nsg(PROD, "closed", vec![], &[]);
    server.nic_nsg("both-nic", &closed);
    // A public IP and no NSG anywhere: nothing is filtered.
    let naked = vm("naked");
    server.public_ip(PROD, "naked-nic", "20.50.3.9", None);
    // No public IP, no NSG: not reachable from the internet.
    let quiet = vm("quiet");
    // A scale-set member with a public IP and no NSG.
    let members = server.scale_set(
        PROD,
        "edge",
        id_ref(&golden),
        false,
        &[
            (id_ref(&golden), true, Upgrade::Healthy),
            (id_ref(&golden), true, Upgrade::Healthy),
        ],
    );
    server.public_ip(PROD, "edge-nic0", "20.50.4.1", None);

    let dir = tempfile::tempdir().unwrap();
    let (output, collected) = report(&server, dir.path(), &[PROD], &["--fail-on", "exposed"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Exposed instances fail the report as on the other clouds.
    assert_eq!(output.status.code(), Some(1), "{stderr}\n{collected:#}");
    let exposure = |id: &str| -> Vec<String> {
        instance(&collected, id)["exposure"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        exposure(&nic_ssh),
        ["nsg nic-open on nic nic-ssh-nic rule allow-ssh admits 22/tcp from Internet"]
    );
    assert_eq!(
        exposure(&subnet_rdp),
        ["nsg subnet-open on subnet vnet-web/open rule rdp-range admits 3389/tcp from *"]
    );
    assert_eq!(
        exposure(&ranges),
        ["nsg listed on nic ranges-nic rule web-and-admin admits 22/tcp from 0.0.0.0/0"]
    );
    assert_eq!(exposure(&denied), Vec::<String>::new());
    assert_eq!(exposure(&private), Vec::<String>::new());
    assert_eq!(exposure(&both), Vec::<String>::new());
    assert_eq!(
        exposure(&naked),
        [
            "nic naked-nic has public IP 20.50.3.9 and no nsg on it or on subnet vnet-web/default: every port is open, 22/tcp and 3389/tcp among them"
        ]
    );
    assert_eq!(exposure(&quiet), Vec::<String>::new());
    assert_eq!(
        exposure(&members[0]).len(),
        1,
        "{:?}",
        exposure(&members[0])
    );
    assert!(exposure(&members[0])[0].contains("20.50.4.1"));
    assert_eq!(exposure(&members[1]), Vec::<String>::new());

    // The finding is a filter word, and the CSV and Markdown reports carry the reason.
    let (_, exposed) = report(&server, dir.path(), &[PROD], &["--filter", "exposed"]);
    let mut expected = vec![nic_ssh, subnet_rdp, ranges, naked, members[0].clone()];
    expected.sort();
    assert_eq!(instance_ids(&exposed), expected);
    for format in ["csv", "md"] {
        let output = common::report::configured(
            dir.path(),
            &std::fs::read_to_string(dir.path().join("config.toml")).unwrap(),
            &["--report", "--format", format, "--now", common::NOW],
        )
        .env_remove("AZURE_CREDENTIAL_KIND")
        .envs(server.env())
        .env("FLEETSCOPE_DATA_DIR", dir.path().join("data"))
        .output()
        .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            text.contains(
                "nsg nic-open on nic nic-ssh-nic rule allow-ssh admits 22/tcp from Internet"
            ),
            "{format}: {text}"
        );
    }
    // Without the exposed ones, the same report passes.
    let (output, _) = report(
        &server,
        dir.path(),
        &[PROD],
        &["--fail-on", "exposed", "--filter", "!exposed"],
    );
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn network_reads_the_credential_may_not_make_warn_and_the_source_completes() {
    let server = ArmServer::start();
    server.subscription(PROD);
    server.subscription(STAGING);
    let golden = golden_web(&server);
    let prod = server.vm(PROD, "open", id_ref(&golden), "2026-10-26T00:00:00Z");
    server.public_ip(PROD, "open-nic", "20.50.5.5", None);
    let staging = server.vm(STAGING, "other", id_ref(&golden), "2026-10-26T00:00:00Z");
    server.fault(
        &format!("/subscriptions/{PROD}/providers/Microsoft.Network/networkSecurityGroups"),
        Fault::Forbidden,
        u32::MAX,
    );
    server.fault(
        &format!("/subscriptions/{STAGING}/providers/Microsoft.Network/networkInterfaces"),
        Fault::Forbidden,
        u32::MAX,
    );
    let dir = tempfile::tempdir().unwrap();
    let (output, collected) = report(
        &server,
        dir.path(),
        &[PROD, STAGING],
        &["--fail-on", "exposed"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Not a failure: the report passes, as nothing is known to be exposed.
    assert_eq!(output.status.code(), Some(0), "{stderr}\n{collected:#}");
    let warnings = |subscription: &str| {
        let source = source(&collected, &format!("azure:{subscription}"));
        assert_eq!(source["state"], "done", "{source:#}");
        source["warnings"].to_string()
    };
    let prod_warnings = warnings(PROD);
    assert!(
        prod_warnings.contains("exposure unknown: listing network security groups: HTTP 403")
            && prod_warnings.contains("AuthorizationFailed"),
        "{prod_warnings}"
    );
    // The public IP without an NSG is not called exposed when the NSGs are unknown.
    assert!(instance(&collected, &prod)["exposure"].is_null());
    assert_eq!(
        instance(&collected, &prod)["addresses"]["public_ips"],
        json!(["20.50.5.5"])
    );
    let staging_warnings = warnings(STAGING);
    assert!(
        staging_warnings
            .contains("addresses and exposure unknown: listing network interfaces: HTTP 403"),
        "{staging_warnings}"
    );
    assert!(instance(&collected, &staging)["addresses"].is_null());
    assert_eq!(instance(&collected, &staging)["state"], "running");
}

#[test]
fn the_state_is_the_power_state_and_a_failed_provisioning_stays_visible() {
    let server = ArmServer::start();
    server.subscription(PROD);
    // Pages of two: the status-only list's next pages must stay status-only.
    server.page_size(2);
    let golden = golden_web(&server);
    let running = web_vm(&server, &golden, "running");
    let stopped = web_vm(&server, &golden, "stopped");
    server.power(&stopped, "stopped");
    let deallocated = web_vm(&server, &golden, "deallocated");
    server.power(&deallocated, "deallocated");
    let failed = web_vm(&server, &golden, "failed");
    server.provisioning(PROD, &failed, "Failed");
    let starting = web_vm(&server, &golden, "starting");
    server.power(&starting, "starting");
    let members = server.scale_set(
        PROD,
        "workers",
        id_ref(&golden),
        false,
        &[
            (id_ref(&golden), true, Upgrade::Healthy),
            (id_ref(&golden), true, Upgrade::Healthy),
        ],
    );
    server.power(&members[1], "deallocated");
    let dir = tempfile::tempdir().unwrap();
    let (output, collected) = report(&server, dir.path(), &[PROD], &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let state = |id: &str| instance(&collected, id)["state"].clone();
    assert_eq!(state(&running), "running");
    assert_eq!(state(&stopped), "stopped");
    assert_eq!(state(&deallocated), "deallocated");
    assert_eq!(state(&starting), "starting");
    assert_eq!(state(&members[0]), "running");
    assert_eq!(state(&members[1]), "deallocated");
    // Provisioning failed, yet running: the state says running, the tag says failed.
    assert_eq!(state(&failed), "running");
    let tags = |id: &str| instance(&collected, id)["tags"].clone();
    assert_eq!(tags(&failed)["azure:provisioningState"], "failed");
    assert_eq!(tags(&running)["azure:provisioningState"], "succeeded");
    assert_eq!(tags(&members[0])["azure:provisioningState"], "succeeded");

    let (output, found) = report(
        &server,
        dir.path(),
        &[PROD],
        &["--filter", "state:deallocated"],
    );
    assert!(output.status.success());
    let mut expected = vec![deallocated.clone(), members[1].clone()];
    expected.sort();
    assert_eq!(instance_ids(&found), expected);
    let (_, found) = report(
        &server,
        dir.path(),
        &[PROD],
        &["--filter", "!state:running"],
    );
    assert_eq!(instance_ids(&found).len(), 4, "{found:#}");
    let (_, found) = report(
        &server,
        dir.path(),
        &[PROD],
        &["--filter", "tag:azure:provisioningState=failed"],
    );
    assert_eq!(instance_ids(&found), [failed]);
}
