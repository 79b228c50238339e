//! Azure collection at scale against the local Resource Manager of the tests (tests/arm):
//! 10,000 VMs over 5 subscriptions, 2,000 of them in 20 scale sets, collected by the release
//! binary, network (a NIC per VM and member, the subscription's NSG) and power states included.
//! Prints the wall time with every subscription at once and one at a time
//! (`azure.concurrency = 1`), both with and without latency added to every call, the calls per
//! kind beside the fewest the data needs, and fleetscope's peak RSS and CPU time (the rest of
//! the wall time is the server's work and the waits).
//! `cargo bench --no-default-features --features azure --bench azure_collect`

#[path = "../tests/arm/mod.rs"]
mod arm;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use arm::{ArmServer, Fault};

const SUBSCRIPTIONS: usize = 5;
const STANDALONE: usize = 1_600;
const SCALE_SETS: usize = 4;
const MEMBERS: usize = 100;
/// VMs per page of the server's lists.
const PAGE: usize = 500;

fn subscription(i: usize) -> String {
    format!("33333333-0000-0000-0000-{i:012}")
}

fn main() {
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_fleetscope"));
    let server = ArmServer::start();
    server.page_size(PAGE);
    let seeding = Instant::now();
    let subscriptions: Vec<String> = (0..SUBSCRIPTIONS).map(subscription).collect();
    server.fleet(&subscriptions, STANDALONE, SCALE_SETS, MEMBERS);
    let vms = SUBSCRIPTIONS * (STANDALONE + SCALE_SETS * MEMBERS);
    eprintln!(
        "seeded {vms} VMs ({} in scale sets) in {SUBSCRIPTIONS} subscriptions in {:.1} s",
        SUBSCRIPTIONS * SCALE_SETS * MEMBERS,
        seeding.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let run = |concurrency: usize| {
        let config = dir.path().join("config.toml");
        let list: Vec<String> = (0..SUBSCRIPTIONS)
            .map(|s| format!("\"{}\"", subscription(s)))
            .collect();
        std::fs::write(
            &config,
            format!(
                "version = 1\n[azure]\nsubscriptions = [{}]\nendpoint_url = \"{}\"\nconcurrency = {concurrency}\ntimeout_secs = 120\n",
                list.join(", "),
                server.url()
            ),
        )
        .unwrap();
        let before = server.calls().len();
        let started = Instant::now();
        let output = Command::new("/usr/bin/time")
            .args(["-f", "%M %U %S"])
            .arg(binary)
            .args(["--report", "--format", "json", "--output"])
            .arg(&report)
            .arg("--config")
            .arg(&config)
            .env_remove("AZURE_CREDENTIAL_KIND")
            .envs(server.env())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .expect("run fleetscope under /usr/bin/time (Debian package `time`)");
        let secs = started.elapsed().as_secs_f64();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{stderr}");
        // Peak RSS in KB, user and system CPU seconds.
        let measured: Vec<f64> = stderr
            .lines()
            .last()
            .unwrap_or("")
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        let peak_mb = measured.first().copied().unwrap_or(f64::NAN) / 1024.0;
        let cpu = measured.get(1..3).map_or(f64::NAN, |t| t.iter().sum());
        let calls = server.calls().split_off(before);
        check(&report, vms);
        (secs, peak_mb, cpu, calls)
    };

    for latency in [None, Some(Duration::from_millis(200))] {
        match latency {
            None => println!("the local server as it is:"),
            Some(l) => {
                println!("with {} ms of latency on every call:", l.as_millis());
                server.fault("", Fault::Slow(l), u32::MAX);
            }
        }
        let (alone, _, _, _) = run(1);
        let (secs, peak_mb, cpu, calls) = run(8);
        println!(
            "  one subscription at a time: {alone:.2} s; all {SUBSCRIPTIONS} at once: {secs:.2} s; peak RSS {peak_mb:.0} MB, CPU {cpu:.2} s"
        );
        if latency.is_none() {
            report_calls(&calls);
        }
    }
}

/// Every VM is in the report with its address and power state, and no source warns.
fn check(report: &std::path::Path, vms: usize) {
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report).unwrap()).unwrap();
    let instances = report["instances"].as_array().unwrap();
    assert_eq!(instances.len(), vms);
    for instance in instances {
        assert!(
            instance["addresses"]["private_ips"][0].is_string() && instance["state"] == "running",
            "{instance:#}"
        );
    }
    for source in report["sources"].as_array().unwrap() {
        assert!(source["warnings"].is_null(), "{source:#}");
    }
}

/// The calls by kind, beside the fewest the data needs.
fn report_calls(calls: &[String]) {
    let kind = |call: &str| {
        let lower = call.to_ascii_lowercase();
        if lower.ends_with("/oauth2/v2.0/token") {
            "token"
        } else if lower.ends_with("/virtualmachines?statusonly=true") {
            "VMs listAll statusOnly (pages)"
        } else if lower.contains("/virtualmachinescalesets/")
            && lower.ends_with("/networkinterfaces")
        {
            "scale-set NICs list"
        } else if lower.contains("/virtualmachinescalesets/")
            && lower.ends_with("/publicipaddresses")
        {
            "scale-set public IPs list"
        } else if lower.ends_with("/providers/microsoft.network/networkinterfaces") {
            "NICs listAll (pages)"
        } else if lower.ends_with("/providers/microsoft.network/publicipaddresses") {
            "public IPs listAll"
        } else if lower.ends_with("/providers/microsoft.network/networksecuritygroups") {
            "NSGs listAll"
        } else if lower.ends_with("/providers/microsoft.compute/virtualmachines") {
            "VMs listAll (pages)"
        } else if lower.ends_with("/providers/microsoft.compute/virtualmachinescalesets") {
            "scale sets listAll"
        } else if lower.ends_with("/virtualmachines") {
            "scale-set members list"
        } else if lower.contains("/galleries/") {
            "gallery versions list"
        } else if lower.ends_with("/versions") {
            "marketplace versions list"
        } else if lower.contains("/publishers/") {
            "marketplace version get (deprecation)"
        } else {
            "other"
        }
    };
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for call in calls {
        *counts.entry(kind(call)).or_default() += 1;
    }
    let subs = SUBSCRIPTIONS;
    // Per subscription: its VM pages, as many status-only pages, its NIC pages (one NIC per
    // standalone VM), one page of public IPs and one of NSGs, one scale-set list, one member
    // page and one NIC page per scale set (no public IP list: no member NIC names one), one
    // list per gallery definition and per marketplace sku in use, one get per marketplace
    // version in use; one token for the process.
    let minimum: BTreeMap<&str, usize> = [
        ("token", 1),
        ("VMs listAll (pages)", subs * STANDALONE.div_ceil(PAGE)),
        (
            "VMs listAll statusOnly (pages)",
            subs * STANDALONE.div_ceil(PAGE),
        ),
        ("NICs listAll (pages)", subs * STANDALONE.div_ceil(PAGE)),
        ("public IPs listAll", subs),
        ("NSGs listAll", subs),
        (
            "scale-set NICs list",
            subs * SCALE_SETS * MEMBERS.div_ceil(PAGE),
        ),
        ("scale-set public IPs list", 0),
        ("scale sets listAll", subs),
        (
            "scale-set members list",
            subs * SCALE_SETS * MEMBERS.div_ceil(PAGE),
        ),
        ("gallery versions list", subs),
        ("marketplace versions list", subs),
        ("marketplace version get (deprecation)", subs * 2),
    ]
    .into_iter()
    .collect();
    let total: usize = counts.values().sum();
    let least: usize = minimum.values().sum();
    for (kind, count) in &counts {
        let fewest = minimum.get(kind).map_or("-".to_owned(), |m| m.to_string());
        println!("    {kind:<40} {count:>4} calls (fewest the data needs: {fewest})");
    }
    println!(
        "  calls: {total}, fewest the data needs {least} ({:+.0}%)",
        (total as f64 / least as f64 - 1.0) * 100.0
    );
}
