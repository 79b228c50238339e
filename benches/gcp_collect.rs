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

use compute::make::{self, Vm};
use compute::{Compute, World};

const PROJECTS: usize = 5;
const ZONES_PER_PROJECT: usize = 4;
const PER_PROJECT: usize = 2_000;
const GROUP_SIZE: usize = 10;
const REGIONS: [&str; 5] = [
    "us-central1",
    "europe-west4",
    "asia-east1",
    "us-east1",
    "australia-southeast1",
];
const ZONE_LETTERS: [&str; 4] = ["a", "b", "c", "f"];

fn project(i: usize) -> String {
    format!("shop-{i}")
}

fn world() -> World {
    let mut world = World::default();
    let insert = |world: &mut World, (path, value): (String, serde_json::Value)| {
        world.insert(path, value);
    };
    for (name, created) in [
        (
            "debian-12-bookworm-v20260901",
            "2026-09-01T10:00:00.000-07:00",
        ),
        (
            "debian-12-bookworm-v20261020",
            "2026-10-20T10:00:00.000-07:00",
        ),
    ] {
        insert(
            &mut world,
            make::image("debian-cloud", name, "debian-12", created),
        );
    }
    let mut id = 1_000_000u64;
    for (p, region) in REGIONS.iter().enumerate().take(PROJECTS) {
        let project = project(p);
        for (name, created) in [
            ("app-v1", "2026-08-01T00:00:00.000-07:00"),
            ("app-v2", "2026-10-01T00:00:00.000-07:00"),
            ("app-v3", "2026-10-25T00:00:00.000-07:00"),
        ] {
            insert(&mut world, make::image(&project, name, "app", created));
        }
        let zones: Vec<String> = ZONE_LETTERS[..ZONES_PER_PROJECT]
            .iter()
            .map(|l| format!("{region}-{l}"))
            .collect();
        let images = [
            "projects/debian-cloud/global/images/debian-12-bookworm-v20260901".to_owned(),
            "projects/debian-cloud/global/images/debian-12-bookworm-v20261020".to_owned(),
            format!("projects/{project}/global/images/app-v1"),
            format!("projects/{project}/global/images/app-v2"),
            format!("projects/{project}/global/images/app-v3"),
        ];
        let zonal = format!("zones/{}/instanceGroupManagers/web", zones[0]);
        let regional = format!("regions/{region}/instanceGroupManagers/api");
        insert(
            &mut world,
            make::group(
                &project,
                &format!("zones/{}", zones[0]),
                "web",
                &format!("projects/{project}/global/instanceTemplates/web-3"),
                GROUP_SIZE as u32,
                true,
            ),
        );
        insert(
            &mut world,
            make::template(&project, "global", "web-3", &make::link(&images[4])),
        );
        insert(
            &mut world,
            make::group(
                &project,
                &format!("regions/{region}"),
                "api",
                &format!("projects/{project}/regions/{region}/instanceTemplates/api-2"),
                GROUP_SIZE as u32,
                false,
            ),
        );
        insert(
            &mut world,
            make::template(
                &project,
                &format!("regions/{region}"),
                "api-2",
                "projects/debian-cloud/global/images/family/debian-12",
            ),
        );
        insert(
            &mut world,
            make::firewall(&project, "allow-ssh", &["22"], "0.0.0.0/0", &["bastion"]),
        );
        for i in 0..PER_PROJECT {
            id += 1;
            let name = format!("vm-{i:05}");
            let zone = &zones[i % zones.len()];
            let group = match i {
                i if i < GROUP_SIZE => Some(zonal.as_str()),
                i if i < 2 * GROUP_SIZE => Some(regional.as_str()),
                _ => None,
            };
            let zone = if i < GROUP_SIZE { &zones[0] } else { zone };
            let vm = Vm {
                project: &project,
                zone,
                name: &name,
                id,
                image: &images[i % images.len()],
                created: "2026-10-26T09:00:00.000-07:00",
                group,
                tags: if i % 100 == 0 { &["bastion"] } else { &[] },
                nat_ip: None,
            };
            for resource in vm.resources() {
                insert(&mut world, resource);
            }
        }
    }
    world
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
    let server = Compute::start(world());
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
