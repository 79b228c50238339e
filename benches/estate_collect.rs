//! The combined run: one estate of 100,000 instances over all three clouds' local servers (moto's
//! EC2 server: 15,000 in 6 regions; the tests' Resource Manager: 40,000 in 8 subscriptions; the
//! tests' Compute server: 45,000 in 8 projects), collected and evaluated by one release binary
//! (`--report --format json`). Prints the wall time, peak RSS and CPU time (fleetscope's, and
//! the local servers') of each cloud collected alone and of all three at once, beside the
//! slowest cloud alone and the sum, and checks that the report counts exactly the instances
//! seeded, per cloud.
//! `cargo bench --bench estate_collect` (all three cloud features, the default; moto's server
//! from `MOTO_SERVER_BIN`, else the `.venv` that `.ci/test` makes).

#[path = "../tests/arm/mod.rs"]
mod arm;
#[path = "../tests/compute/mod.rs"]
mod compute;
#[path = "../tests/moto/mod.rs"]
mod moto;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use arm::ArmServer;
use compute::Compute;
use moto::{Moto, ami};
use serde::Deserialize;

/// Rounds of the four runs; the table shows each run's best, as warm caches serve it.
const ROUNDS: usize = 2;

// AWS: as aws_collect seeds a region, in 6 regions. moto answers one request at a time, takes
// about 30 s to launch a region's 2,500 and answers them in one page, so its share is the smallest.
const AWS_REGIONS: [&str; 6] = [
    "us-east-1",
    "eu-west-1",
    "ap-southeast-2",
    "us-west-2",
    "eu-central-1",
    "ap-northeast-1",
];
/// Standalone instances per region, in launches of `AWS_PER_LAUNCH` (one reservation each).
const AWS_STANDALONE: usize = 2_490;
const AWS_PER_LAUNCH: i32 = 83;
const AWS_GROUP: u32 = 10;
const AWS_OWNER: &str = "111122223333";

// Azure: as azure_collect seeds a subscription, with more standalone VMs.
const AZ_SUBSCRIPTIONS: usize = 8;
const AZ_STANDALONE: usize = 4_600;
const AZ_SCALE_SETS: usize = 4;
const AZ_MEMBERS: usize = 100;
const AZ_PAGE: usize = 500;

// Google Cloud: as gcp_collect seeds a project.
const GCP_PROJECTS: usize = 8;
const GCP_PER_PROJECT: usize = 5_625;
const GCP_GROUP: usize = 10;

const AWS_INSTANCES: usize = AWS_REGIONS.len() * (AWS_STANDALONE + AWS_GROUP as usize);
const AZ_INSTANCES: usize = AZ_SUBSCRIPTIONS * (AZ_STANDALONE + AZ_SCALE_SETS * AZ_MEMBERS);
const GCP_INSTANCES: usize = GCP_PROJECTS * GCP_PER_PROJECT;
const _: () = assert!(AWS_INSTANCES + AZ_INSTANCES + GCP_INSTANCES == 100_000);

fn subscription(i: usize) -> String {
    format!("33333333-0000-0000-0000-{i:012}")
}

fn project(i: usize) -> String {
    format!("shop-{i}")
}

fn main() {
    // Cargo builds the binary for a benchmark with the benchmark's own profile and features.
    let binary = Path::new(env!("CARGO_BIN_EXE_fleetscope"));

    let seeding = Instant::now();
    let moto = seed_aws();
    eprintln!(
        "seeded AWS: {AWS_INSTANCES} instances in {} regions in {:.0} s",
        AWS_REGIONS.len(),
        seeding.elapsed().as_secs_f64()
    );
    let seeding = Instant::now();
    let arm = seed_azure();
    eprintln!(
        "seeded Azure: {AZ_INSTANCES} VMs in {AZ_SUBSCRIPTIONS} subscriptions in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );
    let seeding = Instant::now();
    // Compute::start makes its own runtime, so it must not run inside another one.
    let gcp = Compute::start(compute::fleet(GCP_PROJECTS, GCP_PER_PROJECT, GCP_GROUP));
    eprintln!(
        "seeded Google Cloud: {GCP_INSTANCES} instances in {GCP_PROJECTS} projects in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir().unwrap();
    // One environment for every run, so the runs differ only by the config: each server's
    // credentials, and no proxy for loopback (Azure's NO_PROXY=* last).
    let mut env = moto.profile_env(dir.path());
    env.extend(gcp.env(dir.path()));
    env.extend(arm.env());
    env.push((
        "FLEETSCOPE_DATA_DIR".into(),
        dir.path().join("data").display().to_string(),
    ));

    let aws_section = {
        let regions: Vec<String> = AWS_REGIONS.iter().map(|r| format!("\"{r}\"")).collect();
        format!(
            "[aws]\nprofiles = [\"{}\"]\nregions = [{}]\nendpoint_url = \"{}\"\ntimeout_secs = 300\n",
            moto::PROD,
            regions.join(", "),
            moto.url()
        )
    };
    let azure_section = {
        let subs: Vec<String> = (0..AZ_SUBSCRIPTIONS)
            .map(|s| format!("\"{}\"", subscription(s)))
            .collect();
        format!(
            "[azure]\nsubscriptions = [{}]\nendpoint_url = \"{}\"\ntimeout_secs = 120\n",
            subs.join(", "),
            arm.url()
        )
    };
    let gcp_section = {
        let projects: Vec<String> = (0..GCP_PROJECTS)
            .map(|p| format!("\"{}\"", project(p)))
            .collect();
        format!(
            "[gcp]\nprojects = [{}]\nendpoint_url = \"{}\"\ntimeout_secs = 60\n",
            projects.join(", "),
            gcp.url()
        )
    };
    let runs: [(&str, Vec<&str>, usize); 4] = [
        ("AWS alone", vec![aws_section.as_str()], AWS_INSTANCES),
        ("Azure alone", vec![azure_section.as_str()], AZ_INSTANCES),
        (
            "Google Cloud alone",
            vec![gcp_section.as_str()],
            GCP_INSTANCES,
        ),
        (
            "all three at once",
            vec![
                aws_section.as_str(),
                azure_section.as_str(),
                gcp_section.as_str(),
            ],
            AWS_INSTANCES + AZ_INSTANCES + GCP_INSTANCES,
        ),
    ];
    let expected: BTreeMap<&str, usize> = [
        ("aws", AWS_INSTANCES),
        ("azure", AZ_INSTANCES),
        ("gcp", GCP_INSTANCES),
    ]
    .into_iter()
    .collect();

    // The fastest of each run's rounds, and the combined run's instances per cloud.
    let mut best: [Option<Measured>; 4] = Default::default();
    let mut combined_counts = BTreeMap::new();
    // Other work on the machine takes cores from the servers: say how much there was.
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average before the runs: {}", load.trim());
    for round in 1..=ROUNDS {
        println!("round {round}:");
        for (i, (label, sections, total)) in runs.iter().enumerate() {
            let servers_before = servers_cpu();
            let (mut measured, counts) = run(binary, dir.path(), &env, sections);
            // Less the report's parsing, which the bench does in its own process.
            measured.servers_cpu = servers_cpu() - servers_before - measured.check_cpu;
            let Measured {
                secs,
                peak_mb,
                cpu,
                servers_cpu,
                ..
            } = measured;
            println!(
                "  {label}: {secs:.2} s, peak RSS {peak_mb:.0} MB, CPU fleetscope {cpu:.1} s, servers {servers_cpu:.1} s, {counts:?}"
            );
            // The report must hold exactly what was seeded, per cloud, and nothing else.
            assert_eq!(counts.values().sum::<usize>(), *total, "{label}");
            for (cloud, count) in &counts {
                assert_eq!(
                    Some(count),
                    expected.get(cloud.as_str()),
                    "{label}: {cloud}"
                );
            }
            if best[i].as_ref().is_none_or(|b| secs < b.secs) {
                best[i] = Some(measured);
            }
            if i == 3 {
                combined_counts = counts;
            }
        }
    }

    let best = best.map(Option::unwrap);
    let slowest = best[..3].iter().map(|b| b.secs).fold(0.0, f64::max);
    let sum: f64 = best[..3].iter().map(|b| b.secs).sum();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("\nbest of {ROUNDS} rounds ({cores} cores):");
    println!("| run | instances | wall time | CPU, fleetscope | CPU, local servers | peak RSS |");
    println!("|---|---|---|---|---|---|");
    for ((label, _, total), b) in runs.iter().zip(&best) {
        println!(
            "| {label} | {} | {:.2} s | {:.1} s | {:.1} s | {:.0} MB |",
            thousands(*total),
            b.secs,
            b.cpu,
            b.servers_cpu,
            b.peak_mb
        );
    }
    let combined = &best[3];
    println!(
        "combined {:.2} s = {:.2}x the slowest cloud alone ({slowest:.2} s), {:.2}x the sum ({sum:.2} s); fleetscope and the servers kept the cores {:.0}% busy",
        combined.secs,
        combined.secs / slowest,
        combined.secs / sum,
        (combined.cpu + combined.servers_cpu) / (combined.secs * cores as f64) * 100.0
    );
    let per_cloud: Vec<String> = combined_counts
        .iter()
        .map(|(cloud, n)| format!("{cloud} {}", thousands(*n)))
        .collect();
    println!(
        "combined report: {} instances ({}), as seeded",
        thousands(combined_counts.values().sum()),
        per_cloud.join(", ")
    );
}

/// The parts of the JSON report the counts are checked against.
#[derive(Deserialize)]
struct Report {
    summary: Summary,
    sources: Vec<Source>,
    instances: Vec<Row>,
}

#[derive(Deserialize)]
struct Summary {
    instances: usize,
    by_cloud: BTreeMap<String, BTreeMap<String, usize>>,
    failed_sources: usize,
}

#[derive(Deserialize)]
struct Source {
    name: String,
    cloud: String,
    state: String,
    instances: usize,
}

#[derive(Deserialize)]
struct Row {
    cloud: String,
}

struct Measured {
    secs: f64,
    peak_mb: f64,
    /// fleetscope's CPU time, user and system.
    cpu: f64,
    /// The local servers' CPU time during the run: moto's process and this one's server threads.
    servers_cpu: f64,
    /// This process's CPU time spent reading the report after the run.
    check_cpu: f64,
}

/// The fields of `/proc/{pid}/stat` after the command name, from field 3 (state) on.
fn stat_fields(pid: &str) -> Vec<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    rest.split_whitespace().map(str::to_owned).collect()
}

/// CPU seconds (user and system) a process has used: fields 14 and 15 of its stat, in clock
/// ticks of 1/100 s (USER_HZ).
fn cpu_secs(pid: &str) -> f64 {
    let fields = stat_fields(pid);
    let ticks: f64 = fields
        .get(11..13)
        .unwrap_or_default()
        .iter()
        .filter_map(|f| f.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}

/// CPU seconds of the local servers so far: this process (the Resource Manager's and Compute's
/// threads) and its children, which between runs are only moto.
fn servers_cpu() -> f64 {
    let me = std::process::id().to_string();
    let mut total = cpu_secs("self");
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        // Field 4, the parent's pid.
        if pid.bytes().all(|b| b.is_ascii_digit()) && stat_fields(&pid).get(1) == Some(&me) {
            total += cpu_secs(&pid);
        }
    }
    total
}

/// One report run over the given config sections, and the instances per cloud, after checking
/// that the report's summary, sources and rows agree.
fn run(
    binary: &Path,
    dir: &Path,
    env: &[(String, String)],
    sections: &[&str],
) -> (Measured, BTreeMap<String, usize>) {
    let config = dir.join("config.toml");
    std::fs::write(&config, format!("version = 1\n{}", sections.concat())).unwrap();
    // A file rather than /dev/null: the counts are read from it afterwards.
    let report = dir.join("report.json");
    let started = Instant::now();
    let output = Command::new("/usr/bin/time")
        .args(["-f", "%M %U %S"])
        .arg(binary)
        .args(["--report", "--format", "json", "--output"])
        .arg(&report)
        .arg("--config")
        .arg(&config)
        .env_remove("AZURE_CREDENTIAL_KIND")
        .envs(env.iter().cloned())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run fleetscope under /usr/bin/time (Debian package `time`)");
    let secs = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    let time: Vec<f64> = stderr
        .lines()
        .last()
        .unwrap_or("")
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(f64::NAN))
        .collect();
    let (peak_mb, cpu) = match time[..] {
        [kb, user, system] => (kb / 1024.0, user + system),
        _ => (f64::NAN, f64::NAN),
    };

    let check_started = cpu_secs("self");
    let file = std::io::BufReader::new(std::fs::File::open(&report).unwrap());
    let report: Report = serde_json::from_reader(file).unwrap();
    assert_eq!(report.summary.failed_sources, 0, "{stderr}");
    let mut rows: BTreeMap<String, usize> = BTreeMap::new();
    for row in &report.instances {
        *rows.entry(row.cloud.clone()).or_default() += 1;
    }
    let mut by_sources: BTreeMap<String, usize> = BTreeMap::new();
    for source in &report.sources {
        assert_eq!(source.state, "done", "source {}", source.name);
        *by_sources.entry(source.cloud.clone()).or_default() += source.instances;
    }
    // Each instance has exactly one verdict (long_lived is counted beside them).
    let by_verdicts: BTreeMap<String, usize> = report
        .summary
        .by_cloud
        .iter()
        .map(|(cloud, counts)| {
            let verdicts = ["flagged", "unknown", "outdated", "stale", "current"];
            (cloud.clone(), verdicts.iter().map(|v| counts[*v]).sum())
        })
        .collect();
    assert_eq!(rows, by_sources, "rows against sources");
    assert_eq!(rows, by_verdicts, "rows against the summary's verdicts");
    assert_eq!(report.summary.instances, rows.values().sum::<usize>());
    let check_cpu = cpu_secs("self") - check_started;
    let measured = Measured {
        secs,
        peak_mb,
        cpu,
        servers_cpu: 0.0,
        check_cpu,
    };
    (measured, rows)
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// moto with aws_collect's images, and per region standalone launches over them plus one Auto
/// Scaling group on the newest.
fn seed_aws() -> Moto {
    let images = [
        ("ami-0web0000000000001", "web-1.0.0-20260901", "2026-09-01"),
        ("ami-0web0000000000002", "web-1.1.0-20261001", "2026-10-01"),
        ("ami-0web0000000000003", "web-1.2.0-20261025", "2026-10-25"),
        ("ami-0base000000000001", "base-1.0.0-20260801", "2026-08-01"),
    ];
    let amis: Vec<_> = images
        .iter()
        .map(|(id, name, day)| ami(id, name, &format!("{day}T00:00:00Z"), AWS_OWNER, &[]))
        .collect();
    let moto = Moto::start(&amis);
    // A runtime of its own for the SDK's seeding calls, dropped before the other servers start.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        for region in AWS_REGIONS {
            let ec2 = moto.client(moto::PROD, region).await;
            for launch in 0..AWS_STANDALONE / AWS_PER_LAUNCH as usize {
                ec2.run_instances()
                    .image_id(images[launch % images.len()].0)
                    .instance_type("t3.micro".into())
                    .min_count(AWS_PER_LAUNCH)
                    .max_count(AWS_PER_LAUNCH)
                    .send()
                    .await
                    .expect("RunInstances");
            }
            let template = moto::launch_template(&ec2, "web", images[2].0).await;
            moto.create_asg(moto::PROD, region, "web-asg", &template, AWS_GROUP)
                .await;
        }
    });
    moto
}

/// azure_collect's subscriptions, more of them.
fn seed_azure() -> ArmServer {
    let server = ArmServer::start();
    server.page_size(AZ_PAGE);
    let subscriptions: Vec<String> = (0..AZ_SUBSCRIPTIONS).map(subscription).collect();
    server.fleet(&subscriptions, AZ_STANDALONE, AZ_SCALE_SETS, AZ_MEMBERS);
    server
}
