//! Organization mode at scale against moto's server, through the loopback proxy that counts
//! calls and calls in flight and adds latency to every call:
//! 1. 200 member accounts x 2 regions, 20,000 instances, collected with `--aws-org`: wall time
//!    beside a sample of accounts collected alone (the slowest of them, and the sum they stand
//!    for), calls per account beside the fewest the data needs, peak RSS, and the most calls
//!    in flight seen beside `collect.max_in_flight`.
//! 2. One account, three regions, 1,500 instances: wall time with no added latency (the
//!    emulator's own time) and with 100 ms on every call, beside the emulator's time plus the
//!    chain's three round trips (instances, then images, then lineages).
//!
//! `cargo bench --no-default-features --features aws --bench org_collect` (moto's server from
//! `MOTO_SERVER_BIN`, else the `.venv` that `.ci/test` makes; `/usr/bin/time` for peak RSS).

#[path = "../tests/moto/mod.rs"]
mod moto;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_organizations::types::OrganizationFeatureSet;
use moto::proxy::{Fault, Proxy};
use moto::{Moto, ami};

const ACCOUNTS: usize = 200;
const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];
const PER_REGION: i32 = 50;
const MAX_IN_FLIGHT: u32 = 32;
/// Accounts collected alone, to stand for the slowest single account and for the sum.
const SAMPLE: usize = 10;
const LATENCY: Duration = Duration::from_millis(100);
const FACTORY: &str = "210987654321";
const IMAGES: [&str; 2] = ["ami-0web0000000000002", "ami-0web0000000000003"];

fn main() {
    let binary = Path::new(env!("CARGO_BIN_EXE_fleetscope"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let amis = [
            ami(
                IMAGES[0],
                "web-1.1.0-20261001",
                "2026-10-01T00:00:00Z",
                FACTORY,
                &[],
            ),
            ami(
                IMAGES[1],
                "web-1.2.0-20261025",
                "2026-10-25T00:00:00Z",
                FACTORY,
                &[],
            ),
        ];
        organization(&Moto::start(&amis), binary).await;
        one_account(&Moto::start(&amis), binary).await;
    });
}

async fn organization(moto: &Moto, binary: &Path) {
    let seeding = Instant::now();
    let organizations = moto.organizations();
    organizations
        .create_organization()
        .feature_set(OrganizationFeatureSet::All)
        .send()
        .await
        .unwrap();
    let mut accounts = Vec::new();
    for n in 0..ACCOUNTS {
        let created = organizations
            .create_account()
            .account_name(format!("acct-{n:03}"))
            .email(format!("acct-{n:03}@example.com"))
            .send()
            .await
            .unwrap();
        let status = created.create_account_status().unwrap();
        accounts.push(status.account_id().unwrap().to_owned());
    }
    for (n, account) in accounts.iter().enumerate() {
        for region in REGIONS {
            let ec2 = moto.client_in(account, region).await;
            ec2.run_instances()
                .image_id(IMAGES[n % 2])
                .instance_type("t3.micro".into())
                .min_count(PER_REGION)
                .max_count(PER_REGION)
                .send()
                .await
                .expect("RunInstances");
        }
    }
    let instances = ACCOUNTS * REGIONS.len() * PER_REGION as usize;
    println!(
        "organization: {ACCOUNTS} member accounts x {} regions, {instances} instances (seeded in {:.0} s), {} ms on every call",
        REGIONS.len(),
        seeding.elapsed().as_secs_f64(),
        LATENCY.as_millis()
    );
    let proxy = latent(moto, &REGIONS).await;
    let dir = tempfile::tempdir().unwrap();
    let regions = quoted(&REGIONS);
    let run = |organization: &str| {
        let config = format!(
            "version = 1\n[aws]\nregions = [{regions}]\nendpoint_url = \"{}\"\ntimeout_secs = 300\ndeadline_secs = 3600\n[aws.organization]\nenabled = true\nprofile = \"prod\"\n{organization}\n[collect]\nmax_in_flight = {MAX_IN_FLIGHT}\n",
            proxy.url()
        );
        proxy.reset();
        tokio::task::block_in_place(|| report(binary, dir.path(), &config, moto))
    };
    let mut alone = Vec::new();
    for account in accounts.iter().step_by(ACCOUNTS / SAMPLE) {
        let (secs, _, _) = run(&format!("include = [\"{account}\"]"));
        alone.push(secs);
    }
    let slowest = alone.iter().copied().fold(0.0, f64::max);
    let mean = alone.iter().sum::<f64>() / alone.len() as f64;
    let (secs, peak_mb, collected) = run("");
    assert_eq!(collected, instances, "every instance collected");
    println!(
        "  all {ACCOUNTS} accounts: {secs:.1} s; {SAMPLE} accounts alone: slowest {slowest:.1} s, mean {mean:.2} s, so about {:.0} s one after another; peak RSS {peak_mb:.0} MB",
        mean * ACCOUNTS as f64
    );
    let calls = proxy.calls();
    let peak = proxy.peak_in_flight();
    // The emulator answers one request at a time: its own time for the same calls, with no
    // latency added, is the floor any client meets.
    let bare = Proxy::start(moto.port(), Default::default()).await;
    let config = format!(
        "version = 1\n[aws]\nregions = [{regions}]\nendpoint_url = \"{}\"\ntimeout_secs = 300\ndeadline_secs = 3600\n[aws.organization]\nenabled = true\nprofile = \"prod\"\n[collect]\nmax_in_flight = {MAX_IN_FLIGHT}\n",
        bare.url()
    );
    let (floor, _, _) = tokio::task::block_in_place(|| report(binary, dir.path(), &config, moto));
    println!(
        "  all {ACCOUNTS} accounts with no latency added (the emulator's own time): {floor:.1} s"
    );
    println!("  most calls in flight at once: {peak} (collect.max_in_flight = {MAX_IN_FLIGHT})");
    // The fewest calls: ListAccounts in pages of 20 (the management account is listed too),
    // one AssumeRole per member account, then per account and region one page each of
    // security groups, Auto Scaling groups and instances, and two DescribeImages (the images
    // run, then their lineage).
    let pairs = ACCOUNTS * REGIONS.len();
    let fewest: BTreeMap<&str, usize> = [
        ("ListAccounts", (ACCOUNTS + 1).div_ceil(20)),
        ("DescribeOrganization", 1),
        ("AssumeRole", ACCOUNTS),
        ("DescribeSecurityGroups", pairs + REGIONS.len()),
        ("DescribeAutoScalingGroups", pairs + REGIONS.len()),
        ("DescribeInstances", pairs + REGIONS.len()),
        ("DescribeImages", 2 * pairs),
    ]
    .into_iter()
    .collect();
    print_calls(&calls, &fewest, ACCOUNTS + 1, "account");
}

async fn one_account(moto: &Moto, binary: &Path) {
    const THREE: [&str; 3] = ["us-east-1", "eu-west-1", "ap-southeast-2"];
    for region in THREE {
        let ec2 = moto.client(moto::PROD, region).await;
        for launch in 0..5 {
            ec2.run_instances()
                .image_id(IMAGES[launch % 2])
                .instance_type("t3.micro".into())
                .min_count(100)
                .max_count(100)
                .send()
                .await
                .expect("RunInstances");
        }
    }
    println!("one account: 3 regions, 1,500 instances");
    let dir = tempfile::tempdir().unwrap();
    let mut times = Vec::new();
    for latency in [false, true] {
        let proxy = if latency {
            latent(moto, &THREE).await
        } else {
            Proxy::start(moto.port(), Default::default()).await
        };
        let config = format!(
            "version = 1\n[aws]\nprofiles = [\"prod\"]\nregions = [{}]\nendpoint_url = \"{}\"\ntimeout_secs = 300\n",
            quoted(&THREE),
            proxy.url()
        );
        let mut best = f64::MAX;
        for _ in 0..3 {
            let (secs, _, collected) =
                tokio::task::block_in_place(|| report(binary, dir.path(), &config, moto));
            assert_eq!(collected, 1_500);
            best = best.min(secs);
        }
        times.push(best);
    }
    let (bare, latent) = (times[0], times[1]);
    let goal = bare + 3.0 * LATENCY.as_secs_f64();
    println!(
        "  no added latency (the emulator's time): {bare:.2} s; {} ms on every call: {latent:.2} s; the emulator's time plus three round trips: {goal:.2} s, so {:.2}x (goal: within 1.2x)",
        LATENCY.as_millis(),
        latent / goal
    );
}

/// A proxy adding `LATENCY` to every call of these regions.
async fn latent(moto: &Moto, regions: &[&str]) -> Proxy {
    let faults = regions
        .iter()
        .map(|r| (r.to_string(), Fault::Latency(LATENCY)))
        .collect();
    Proxy::start(moto.port(), faults).await
}

fn quoted(items: &[&str]) -> String {
    let list: Vec<String> = items.iter().map(|r| format!("\"{r}\"")).collect();
    list.join(", ")
}

/// Wall time, peak RSS (MB) and instances of one JSON report by the release binary.
fn report(binary: &Path, dir: &Path, config: &str, moto: &Moto) -> (f64, f64, usize) {
    let path = dir.join("config.toml");
    std::fs::write(&path, config).unwrap();
    let out = dir.join("report.json");
    let started = Instant::now();
    let output = Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(binary)
        .args(["--report", "--format", "json", "--output"])
        .arg(&out)
        .arg("--config")
        .arg(&path)
        .envs(moto.profile_env(dir))
        .env("FLEETSCOPE_DATA_DIR", dir.join("data"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run fleetscope under /usr/bin/time (Debian package `time`)");
    let secs = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    let peak_mb = stderr
        .lines()
        .last()
        .and_then(|l| l.trim().parse::<f64>().ok())
        .unwrap_or(f64::NAN)
        / 1024.0;
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let instances = report["instances"].as_array().map_or(0, Vec::len);
    (secs, peak_mb, instances)
}

fn print_calls(
    calls: &BTreeMap<String, usize>,
    fewest: &BTreeMap<&str, usize>,
    accounts: usize,
    per: &str,
) {
    for (action, count) in calls {
        let least = fewest
            .get(action.as_str())
            .map_or("-".to_owned(), |m| m.to_string());
        println!(
            "    {action:<28} {count:>6} calls, {:.2} per {per} (fewest the data needs: {least})",
            *count as f64 / accounts as f64
        );
    }
    let total: usize = calls.values().sum();
    let least: usize = fewest.values().sum();
    println!(
        "  API calls: {total}, {:.1} per {per}; fewest the data needs {least} ({:+.0}%)",
        total as f64 / accounts as f64,
        (total as f64 / least as f64 - 1.0) * 100.0
    );
}
