//! Google Cloud collection at scale against the tests' local Compute server: 10,000 instances in
//! 5 projects over 20 zones (standalone instances, a zonal and a regional managed group per
//! project, a public image family and a custom one), collected by the release binary. Prints
//! the wall time with each project alone and all at once, the calls per API method beside the
//! fewest the data needs, and peak RSS; then the same with 100 ms of latency on every call, as
//! a real endpoint has, which shows what collecting projects at once buys.
//! `cargo bench --no-default-features --features gcp --bench gcp_collect`

#[path = "../tests/compute/mod.rs"]
mod compute;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use compute::Compute;

const PROJECTS: usize = 5;
/// Zones per project, as `compute::fleet` spreads them.
const ZONES_PER_PROJECT: usize = 4;
const PER_PROJECT: usize = 2_000;
const GROUP_SIZE: usize = 10;

fn project(i: usize) -> String {
    format!("shop-{i}")
}

/// `GET projects/p/aggregated/instances` -> `instances.aggregatedList`.
fn method(call: &str) -> String {
    let (verb, path) = call.split_once(' ').unwrap_or(("", call));
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["projects", _, "aggregated", kind] => format!("{kind}.aggregatedList"),
        ["projects", _, "global", "firewalls"] => "firewalls.list".into(),
        ["projects", _, "global", "images", "family", _] => "images.getFromFamily".into(),
        ["projects", _, "global", "images", _] => "images.get".into(),
        ["projects", _, "global", "instanceTemplates", _] => "instanceTemplates.get".into(),
        ["projects", _, "regions", _, "instanceTemplates", _] => {
            "regionInstanceTemplates.get".into()
        }
        ["projects", _, "zones", _, "instanceGroupManagers", _] => {
            "instanceGroupManagers.get".into()
        }
        ["projects", _, "regions", _, "instanceGroupManagers", _] => {
            "regionInstanceGroupManagers.get".into()
        }
        _ => format!("{verb} {path}"),
    }
}

fn main() {
    // Cargo builds the binary for a benchmark with the benchmark's own profile and features.
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_fleetscope"));
    let seeding = Instant::now();
    let server = Compute::start(compute::fleet(PROJECTS, PER_PROJECT, GROUP_SIZE));
    eprintln!(
        "seeded {} instances in {PROJECTS} projects over {} zones in {:.1} s",
        PROJECTS * PER_PROJECT,
        PROJECTS * ZONES_PER_PROJECT,
        seeding.elapsed().as_secs_f64()
    );
    for latency in [Duration::ZERO, Duration::from_millis(100)] {
        server.world.lock().unwrap().latency = latency;
        match latency.is_zero() {
            true => println!("the local server as it is:"),
            false => println!("with {} ms of latency on every call:", latency.as_millis()),
        }
        measure(&server, binary);
    }
}

fn measure(server: &Compute, binary: &std::path::Path) {
    let dir = tempfile::tempdir().unwrap();
    let env = server.env(dir.path());
    let run = |projects: &[String]| {
        let config = dir.path().join("config.toml");
        let list: Vec<String> = projects.iter().map(|p| format!("\"{p}\"")).collect();
        std::fs::write(
            &config,
            format!(
                "version = 1\n[gcp]\nprojects = [{}]\nendpoint_url = \"{}\"\ntimeout_secs = 60\n",
                list.join(", "),
                server.url()
            ),
        )
        .unwrap();
        server.world.lock().unwrap().calls.clear();
        let started = Instant::now();
        let output = Command::new("/usr/bin/time")
            .args(["-f", "%M"])
            .arg(binary)
            .args([
                "--report",
                "--format",
                "json",
                "--output",
                "/dev/null",
                "--config",
            ])
            .arg(&config)
            .envs(env.clone())
            .env("FLEETSCOPE_DATA_DIR", dir.path().join("data"))
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
        let mut calls: BTreeMap<String, usize> = BTreeMap::new();
        for call in &server.world.lock().unwrap().calls {
            *calls.entry(method(call)).or_default() += 1;
        }
        (secs, peak_mb, calls)
    };

    let projects: Vec<String> = (0..PROJECTS).map(project).collect();
    let mut alone = Vec::new();
    for project in &projects {
        let (secs, _, _) = run(std::slice::from_ref(project));
        alone.push(secs);
        println!("  {project} alone: {secs:.2} s");
    }
    let (secs, peak_mb, calls) = run(&projects);
    let slowest = alone.iter().copied().fold(0.0, f64::max);
    let sum: f64 = alone.iter().sum();
    println!(
        "  all {PROJECTS} projects at once: {secs:.2} s (slowest project alone {slowest:.2} s, sum {sum:.2} s); peak RSS {peak_mb:.0} MB"
    );
    // The fewest calls the data needs: per project one firewall page, pages of 500 instances
    // and of 500 disks, its own 3 images (an image's family is known only once it is read) and
    // its family's golden, its 2 groups and 2 templates; once for all projects the public
    // family's golden and the older public image (the golden one comes with the family's
    // answer, asked first for the regional template that names the family).
    let pages = PER_PROJECT.div_ceil(500);
    let minimum: BTreeMap<&str, usize> = [
        ("firewalls.list", PROJECTS),
        ("instances.aggregatedList", PROJECTS * pages),
        ("disks.aggregatedList", PROJECTS * pages),
        ("images.get", 1 + PROJECTS * 3),
        ("images.getFromFamily", 1 + PROJECTS),
        ("instanceGroupManagers.get", PROJECTS),
        ("regionInstanceGroupManagers.get", PROJECTS),
        ("instanceTemplates.get", PROJECTS),
        ("regionInstanceTemplates.get", PROJECTS),
    ]
    .into_iter()
    .collect();
    let total: usize = calls.values().sum();
    let least: usize = minimum.values().sum();
    for (method, count) in &calls {
        let fewest = minimum
            .get(method.as_str())
            .map_or("-".to_owned(), |m| m.to_string());
        println!("    {method:<34} {count:>4} calls (fewest the data needs: {fewest})");
    }
    println!(
        "  API calls: {total}, fewest the data needs {least} ({:+.0}%)",
        (total as f64 / least as f64 - 1.0) * 100.0
    );
}
