//! The AWS source against a real EC2 emulator: moto's server on a loopback port, seeded through
//! the same SDK, then collected by the real binary with real profiles and evaluated.
#![cfg(feature = "aws")]

mod common;
mod moto;
mod mute;

use std::time::{Duration, Instant};

use common::NOW;
use common::report::{configured, instance, json_report, quoted};
use moto::{Moto, ami};
use serde_json::Value;

const OWNER: &str = "111122223333";

fn amis() -> Vec<Value> {
    vec![
        ami(
            "ami-0web0000000000001",
            "web-1.0.0-20260901",
            "2026-09-01T00:00:00Z",
            OWNER,
            &[],
        ),
        ami(
            "ami-0web0000000000002",
            "web-1.1.0-20261001",
            "2026-10-01T00:00:00Z",
            OWNER,
            &[],
        ),
        ami(
            "ami-0web0000000000003",
            "web-1.2.0-20261025",
            "2026-10-25T00:00:00Z",
            OWNER,
            &[],
        ),
        ami(
            "ami-0base000000000001",
            "base-1.0.0-20260801",
            "2026-08-01T00:00:00Z",
            OWNER,
            &[],
        ),
        ami(
            "ami-0api0000000000001",
            "api-1.0.0-20261020",
            "2026-10-20T00:00:00Z",
            OWNER,
            &[("vulnerable", "CVE-2026-0001")],
        ),
        ami(
            "ami-0gone000000000001",
            "gone-1.0.0-20261015",
            "2026-10-15T00:00:00Z",
            OWNER,
            &[],
        ),
        // Same name shape, other owner: never the same lineage as web.
        ami(
            "ami-0copy000000000001",
            "web-1.9.0-20261030",
            "2026-10-30T00:00:00Z",
            "999988887777",
            &[],
        ),
    ]
}

fn report(moto: &Moto, dir: &std::path::Path, regions: &[&str]) -> (std::process::Output, Value) {
    report_with(moto, dir, regions, &[])
}

fn report_with(
    moto: &Moto,
    dir: &std::path::Path,
    regions: &[&str],
    args: &[&str],
) -> (std::process::Output, Value) {
    json_report(
        dir,
        &format!(
            "version = 1\n[aws]\nprofiles = [\"prod\", \"staging\"]\nregions = [{}]\nendpoint_url = \"{}\"\ntimeout_secs = 10\n",
            quoted(regions),
            moto.url()
        ),
        args,
        &[],
        moto.profile_env(dir),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn every_verdict_through_the_real_sdk_across_regions_and_profiles() {
    let moto = Moto::start(&amis());
    let prod = moto.client(moto::PROD, "us-east-1").await;
    let prod_eu = moto.client(moto::PROD, "eu-west-1").await;
    let staging = moto.client(moto::STAGING, "us-east-1").await;

    let current = moto::run(&prod, "ami-0web0000000000003", "web-new", None).await;
    let outdated = moto::run(&prod_eu, "ami-0web0000000000002", "web-old", None).await;
    let stale = moto::run(&prod, "ami-0base000000000001", "base", None).await;
    let open_sg = moto::security_group_open_to_world(&prod, 22).await;
    let flagged = moto::run(&prod, "ami-0api0000000000001", "api", Some(&open_sg)).await;
    let unknown = moto::run(&staging, "ami-0gone000000000001", "gone", None).await;
    staging
        .deregister_image()
        .image_id("ami-0gone000000000001")
        .send()
        .await
        .unwrap();
    // An Auto Scaling group whose template still launches web 1.1.0.
    let template = moto::launch_template(&prod, "web-template", "ami-0web0000000000002").await;
    // Pinned to version 1; version 2, the default, launches the golden image: the group is
    // judged by the version it launches, as the Auto Scaling API names it.
    moto.create_asg_at(moto::PROD, "us-east-1", "web-asg", (&template, "1"), 2)
        .await;
    prod.create_launch_template_version()
        .launch_template_id(&template)
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .image_id("ami-0web0000000000003")
                .build(),
        )
        .send()
        .await
        .unwrap();
    prod.modify_launch_template()
        .launch_template_id(&template)
        .default_version("2")
        .send()
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let (output, report) = report(&moto, dir.path(), &["us-east-1", "eu-west-1"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");

    let verdict = |id: &str| instance(&report, id)["verdict"].clone();
    assert_eq!(verdict(&current), "current");
    assert_eq!(verdict(&outdated), "outdated");
    assert_eq!(instance(&report, &outdated)["behind_by"], 1);
    assert_eq!(instance(&report, &outdated)["region"], "eu-west-1");
    assert_eq!(verdict(&stale), "stale");
    assert_eq!(verdict(&flagged), "flagged");
    assert_eq!(verdict(&unknown), "unknown");
    assert_eq!(
        instance(&report, &unknown)["account"],
        moto::STAGING_ACCOUNT
    );
    assert_eq!(instance(&report, &unknown)["source"], "aws:staging");
    assert_eq!(instance(&report, &current)["source"], "aws:prod");

    // Exposure: the group open on 22 to the world.
    let exposure = instance(&report, &flagged)["exposure"].to_string();
    assert!(exposure.contains("22/tcp from 0.0.0.0/0"), "{exposure}");
    assert!(instance(&report, &current)["exposure"].is_null());

    // The group: two members, outdated, template pointing at a non-golden image.
    let members: Vec<&Value> = report["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["group"].as_str().is_some_and(|g| g.ends_with(":web-asg")))
        .collect();
    assert_eq!(members.len(), 2, "{report:#}");
    let group = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "web-asg")
        .expect("the group");
    assert_eq!(group["template_image"], "ami-0web0000000000002");
    assert_eq!(
        group["template"],
        format!("launch template {template} version 1 (1)"),
        "{group:#}"
    );
    assert_eq!(group["template_status"]["status"], "drift", "{group:#}");

    // The look-alike image of another owner was never taken for web's golden image.
    let lineage = report["lineages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| {
            l["name"]
                .as_str()
                .is_some_and(|n| n.starts_with(OWNER) && n.contains("web"))
        })
        .expect("web's lineage");
    assert_eq!(lineage["golden"], "ami-0web0000000000003", "{lineage:#}");

    // Both sources done, nothing failed.
    for source in report["sources"].as_array().unwrap() {
        assert_eq!(source["state"], "done", "{source:#}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_region_that_fails_leaves_its_source_incomplete_and_the_run_exits_2() {
    let moto = Moto::start(&amis());
    let prod = moto.client(moto::PROD, "us-east-1").await;
    let id = moto::run(&prod, "ami-0web0000000000003", "web", None).await;
    let dir = tempfile::tempdir().unwrap();
    // "xx-nowhere-1" is refused by the emulator as it would be by AWS.
    let (output, report) = report(&moto, dir.path(), &["us-east-1", "xx-nowhere-1"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The report is written, but a partial fleet never passes for a clean one.
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(instance(&report, &id)["verdict"], "current");
    let prod_source = report["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "aws:prod")
        .unwrap();
    assert_eq!(prod_source["state"], "incomplete", "{prod_source:#}");
    let error = prod_source["error"].as_str().unwrap();
    assert!(error.starts_with("xx-nowhere-1: "), "{prod_source:#}");
    assert_eq!(report["summary"]["incomplete_sources"], 2, "{report:#}");
    // One line per source on stderr, each naming its source and what is missing.
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines.contains(&format!("fleetscope: aws:prod incomplete: {error}").as_str()),
        "{stderr}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("fleetscope: aws:staging incomplete: xx-nowhere-1: ")),
        "{stderr}"
    );

    // --allow-partial: the same lines, and the exit code of the findings alone.
    let (output, report) = report_with(
        &moto,
        dir.path(),
        &["us-east-1", "xx-nowhere-1"],
        &["--allow-partial"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(stderr.lines().count(), 2, "{stderr}");
    assert_eq!(instance(&report, &id)["verdict"], "current");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endpoint_that_dies_partway_fails_its_source_on_stderr_and_in_the_exit_code() {
    use moto::proxy::{Fault, Proxy};
    let moto = Moto::start(&amis());
    let prod = moto.client(moto::PROD, "us-east-1").await;
    let mut ids = Vec::new();
    for name in ["web-1", "web-2", "web-3"] {
        ids.push(moto::run(&prod, "ami-0web0000000000002", name, None).await);
    }
    // Security groups, Auto Scaling groups and instances answer; from the fourth request on
    // (the images), the endpoint is gone.
    let faults = [("us-east-1".to_owned(), Fault::CutFrom(4))].into();
    let proxy = Proxy::start(moto.port(), faults).await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "version = 1\n[aws]\nprofiles = [\"prod\"]\nregions = [\"us-east-1\"]\nendpoint_url = \"{}\"\ntimeout_secs = 2\n",
        proxy.url()
    );
    let run = |extra: &'static [&'static str]| {
        let mut command = configured(
            dir.path(),
            &config,
            &["--report", "--format", "json", "--now", NOW],
        );
        command
            .args(extra)
            .envs(moto.profile_env(dir.path()))
            .env("FLEETSCOPE_DATA_DIR", dir.path().join("data"));
        tokio::task::spawn_blocking(move || command.output().unwrap())
    };
    let output = run(&[]).await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    // What came before the failure is reported, and the source says it failed.
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    for id in &ids {
        assert_eq!(instance(&report, id)["verdict"], "unknown");
    }
    let source = &report["sources"][0];
    assert_eq!(source["state"], "failed", "{source:#}");
    assert_eq!(report["summary"]["failed_sources"], 1);
    let error = source["error"].as_str().unwrap();
    assert!(error.starts_with("us-east-1: DescribeImages: "), "{error}");
    assert_eq!(
        stderr.trim_end(),
        format!("fleetscope: aws:prod failed: {error}"),
        "{stderr}"
    );

    // The endpoint comes back for three requests, then dies again.
    proxy.reset();
    let output = run(&["--allow-partial"]).await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.starts_with("fleetscope: aws:prod failed: us-east-1: DescribeImages: "),
        "{stderr}"
    );
}

#[test]
fn a_mute_endpoint_fails_by_the_deadline_naming_the_calls_it_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "version = 1\n[aws]\nprofiles = [\"prod\"]\nregions = [\"us-east-1\"]\nendpoint_url = \"{}\"\ntimeout_secs = 30\ndeadline_secs = 3\n",
        mute::endpoint()
    );
    let mut command = configured(dir.path(), &config, &["--report"]);
    let started = Instant::now();
    let output = command
        .envs(moto::static_profile_env(dir.path()))
        .env("FLEETSCOPE_DATA_DIR", dir.path().join("data"))
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(elapsed < Duration::from_secs(15), "{elapsed:?}: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    // Both calls were outstanding together, and both are named.
    for part in [
        "aws:prod",
        "aws.deadline_secs",
        "DescribeSecurityGroups in us-east-1",
        "DescribeInstances in us-east-1",
    ] {
        assert!(stderr.contains(part), "{part} missing from {stderr}");
    }
}

#[test]
fn an_absurd_timeout_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "version = 1\n[aws]\nprofiles = [\"prod\"]\nregions = [\"us-east-1\"]\nendpoint_url = \"{}\"\ntimeout_secs = 9223372036854775807\n",
        Moto::unused_url()
    );
    let output = configured(dir.path(), &config, &["--report"])
        .envs(moto::static_profile_env(dir.path()))
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
fn nothing_collected_is_exit_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on this port: every region of every profile fails.
    let dead = moto::Moto::unused_url();
    let config = format!(
        "version = 1\n[aws]\nprofiles = [\"prod\"]\nregions = [\"us-east-1\"]\nendpoint_url = \"{dead}\"\ntimeout_secs = 2\n"
    );
    let output = configured(dir.path(), &config, &["--report"])
        .envs(moto::static_profile_env(dir.path()))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("aws:prod") && stderr.contains("us-east-1"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_is_retried_and_a_broken_region_fails_alone() {
    use moto::proxy::{Fault, Proxy};
    let moto = Moto::start(&amis());
    let prod = moto.client(moto::PROD, "us-east-1").await;
    let id = moto::run(&prod, "ami-0web0000000000003", "web", None).await;
    let faults = [
        ("us-east-1", Fault::ThrottleFirst(2)),
        ("eu-west-1", Fault::Unavailable),
        ("ap-southeast-2", Fault::Garbage),
        ("us-west-2", Fault::Stall(std::time::Duration::from_secs(5))),
    ]
    .into_iter()
    .map(|(r, f)| (r.to_owned(), f))
    .collect();
    let proxy = Proxy::start(moto.port(), faults).await;

    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "version = 1\n[aws]\nprofiles = [\"prod\"]\nregions = [\"us-east-1\", \"eu-west-1\", \"ap-southeast-2\", \"us-west-2\"]\nendpoint_url = \"{}\"\ntimeout_secs = 1\n",
        proxy.url()
    );
    let mut command = configured(
        dir.path(),
        &config,
        &["--report", "--format", "json", "--now", NOW],
    );
    command.envs(moto.profile_env(dir.path()));
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Three regions failed: the source is incomplete, on stderr and in the exit code.
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(instance(&report, &id)["verdict"], "current");
    // Throttled twice, then answered: the two refusals were retried.
    assert!(proxy.seen("us-east-1") >= 3, "{}", proxy.seen("us-east-1"));
    // HTTP 503 is retried too, up to the attempt limit, then the region fails on its own.
    assert!(proxy.seen("eu-west-1") >= 2, "{}", proxy.seen("eu-west-1"));
    let source = &report["sources"][0];
    assert_eq!(source["state"], "incomplete", "{source:#}");
    let error = source["error"].as_str().unwrap();
    let failures: Vec<&str> = error.split("; ").collect();
    for region in ["eu-west-1", "ap-southeast-2", "us-west-2"] {
        assert!(
            failures.iter().any(|f| f.starts_with(region)),
            "{region} missing from {error}"
        );
    }
    assert!(!error.contains("us-east-1"), "{error}");
    assert_eq!(failures.len(), 3, "{error}");
    assert!(!error.contains('\n'));
    // A 200 whose body is not EC2's XML says so.
    let garbled = failures
        .iter()
        .find(|f| f.starts_with("ap-southeast-2"))
        .unwrap();
    assert!(garbled.contains("could not be read"), "{garbled}");
    assert_eq!(
        stderr.trim_end(),
        format!("fleetscope: aws:prod incomplete: {error}"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_regions_independent_calls_overlap_and_only_images_wait_for_instances() {
    use moto::proxy::{Fault, Proxy};
    let moto = Moto::start(&amis());
    let prod = moto.client(moto::PROD, "us-east-1").await;
    let id = moto::run(&prod, "ami-0web0000000000002", "web-1", None).await;
    // Every call takes a while, so calls that can overlap do, and the proxy sees them at once.
    let latency = Fault::Latency(std::time::Duration::from_millis(300));
    let proxy = Proxy::start(moto.port(), [("us-east-1".to_owned(), latency)].into()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "version = 1\n[aws]\nprofiles = [\"prod\"]\nregions = [\"us-east-1\"]\nendpoint_url = \"{}\"\ntimeout_secs = 10\n",
        proxy.url()
    );
    let mut command = configured(
        dir.path(),
        &config,
        &["--report", "--format", "json", "--now", NOW],
    );
    command
        .envs(moto.profile_env(dir.path()))
        .env("FLEETSCOPE_DATA_DIR", dir.path().join("data"));
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(instance(&report, &id)["verdict"], "outdated");
    // Security groups, Auto Scaling groups and the instances were asked for together.
    assert_eq!(proxy.peak_in_flight(), 3);
    let order: Vec<String> = proxy.log().into_iter().map(|c| c.action).collect();
    let at = |action: &str| order.iter().position(|a| a == action).unwrap();
    assert!(at("DescribeInstances") < at("DescribeImages"), "{order:?}");
    assert_eq!(
        order.iter().filter(|a| *a == "DescribeImages").count(),
        2,
        "the images, then their lineages: {order:?}"
    );
}
