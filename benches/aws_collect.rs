//! AWS collection at scale against moto's EC2 server: 10,000 instances over 4 regions, through a
//! loopback proxy that counts every API call. Prints the wall time with all regions at once and
//! with each region alone, the calls per action beside the fewest the data needs, and peak RSS;
//! then the same with 2 s of latency added to every call, as distant regions have: moto itself
//! answers one request at a time, so only latency shows what collecting regions at once buys.
//! `cargo bench --no-default-features --features aws --bench aws_collect` (moto's server from
//! `MOTO_SERVER_BIN`, else the `.venv` that `.ci/test` makes).

#[path = "../tests/moto/mod.rs"]
mod moto;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Instant;

use moto::proxy::{Fault, Proxy};
use moto::{Moto, ami};

const REGIONS: [&str; 4] = ["us-east-1", "eu-west-1", "ap-southeast-2", "us-west-2"];
const PER_REGION: usize = 2_500;
/// Instances per RunInstances call: one reservation each, as separate launches make.
const PER_LAUNCH: i32 = 100;
const OWNER: &str = "111122223333";

fn main() {
    // Cargo builds the binary for a benchmark with the benchmark's own profile and features.
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_fleetscope"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let moto = Moto::start(&[
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
        ]);
        let images = [
            "ami-0web0000000000001",
            "ami-0web0000000000002",
            "ami-0web0000000000003",
            "ami-0base000000000001",
        ];
        let seeding = Instant::now();
        for region in REGIONS {
            let ec2 = moto.client(moto::PROD, region).await;
            for launch in 0..PER_REGION / PER_LAUNCH as usize {
                ec2.run_instances()
                    .image_id(images[launch % images.len()])
                    .instance_type("t3.micro".into())
                    .min_count(PER_LAUNCH)
                    .max_count(PER_LAUNCH)
                    .send()
                    .await
                    .expect("RunInstances");
            }
            let template = moto::launch_template(&ec2, "web", "ami-0web0000000000003").await;
            moto.create_asg(moto::PROD, region, "web-asg", &template, 10)
                .await;
        }
        eprintln!(
            "seeded {} instances in {} regions in {:.0} s",
            REGIONS.len() * (PER_REGION + 10),
            REGIONS.len(),
            seeding.elapsed().as_secs_f64()
        );

        for latency in [None, Some(std::time::Duration::from_secs(2))] {
            let faults = latency
                .map(|l| {
                    REGIONS
                        .iter()
                        .map(|r| (r.to_string(), Fault::Latency(l)))
                        .collect()
                })
                .unwrap_or_default();
            match latency {
                None => println!("moto as it is:"),
                Some(l) => println!("with {} s of latency on every call:", l.as_secs()),
            }
            measure(&moto, Proxy::start(moto.port(), faults).await, binary);
        }
    });
}

fn measure(moto: &Moto, proxy: Proxy, binary: &std::path::Path) {
    {
        let dir = tempfile::tempdir().unwrap();
        let env = moto.profile_env(dir.path());
        let run = |regions: &[&str]| {
            let config = dir.path().join("config.toml");
            let list: Vec<String> = regions.iter().map(|r| format!("\"{r}\"")).collect();
            std::fs::write(
                &config,
                format!(
                    "version = 1\n[aws]\nprofiles = [\"prod\"]\nregions = [{}]\nendpoint_url = \"{}\"\ntimeout_secs = 300\n",
                    list.join(", "),
                    proxy.url()
                ),
            )
            .unwrap();
            proxy.reset();
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
            (secs, peak_mb, proxy.calls())
        };

        let mut alone = Vec::new();
        for region in REGIONS {
            let (secs, _, _) = tokio::task::block_in_place(|| run(&[region]));
            alone.push(secs);
            println!("  {region} alone: {secs:.1} s");
        }
        let (secs, peak_mb, calls) = tokio::task::block_in_place(|| run(&REGIONS));
        let slowest = alone.iter().copied().fold(0.0, f64::max);
        let sum: f64 = alone.iter().sum();
        println!(
            "  all {} regions at once: {secs:.1} s (slowest region alone {slowest:.1} s, sum {sum:.1} s); peak RSS {peak_mb:.0} MB",
            REGIONS.len()
        );
        // The fewest calls the data needs, per region: one security-group page, instance pages
        // of 1,000, one image batch (4 ids), one lineage lookup (one owner), one group description, one template.
        let regions = REGIONS.len();
        let minimum: BTreeMap<&str, usize> = [
            ("DescribeSecurityGroups", regions),
            (
                "DescribeInstances",
                regions * (PER_REGION + 10).div_ceil(1_000),
            ),
            ("DescribeImages", regions * 2),
            ("DescribeAutoScalingGroups", regions),
            ("DescribeLaunchTemplateVersions", regions),
        ]
        .into_iter()
        .collect();
        let total: usize = calls.values().sum();
        let least: usize = minimum.values().sum();
        for (action, count) in &calls {
            let fewest = minimum
                .get(action.as_str())
                .map_or("-".to_owned(), |m| m.to_string());
            println!("    {action:<32} {count:>4} calls (fewest the data needs: {fewest})");
        }
        println!(
            "  API calls: {total}, fewest the data needs {least} ({:+.0}%)",
            (total as f64 / least as f64 - 1.0) * 100.0
        );
    }
}
