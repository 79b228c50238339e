//! An AWS rollout at scale against moto's server: 300 queued instances (four Auto Scaling groups
//! of 50 and 100 standalone), applied by the release binary through a loopback proxy that makes
//! every replacement take a fixed delay to come into service (moto brings them at once) and
//! counts every API call. Half the groups are in template drift (their launch template launches
//! the old image, one under `$Default`, one under a version number): each gets a template step
//! before its members, the first of them its canary. Prints the wall time beside the bound the
//! plan predicts (waves x delay) and the API calls per replaced instance, by action (the template
//! steps' own among them).
//! `cargo bench --no-default-features --features aws --bench aws_rollout` (moto's server from
//! `MOTO_SERVER_BIN`, else the `.venv` that `.ci/test` makes).

#[path = "../tests/moto/mod.rs"]
mod moto;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::{RequestLaunchTemplateData, ResourceType, Tag, TagSpecification};
use chrono::{DateTime, Utc};
use fleetscope::core::lineage::LineageRules;
use fleetscope::core::policy::{PolicyConfig, evaluate};
use fleetscope::queue::{Queue, entry_for};
use moto::proxy::{Fault, Proxy};
use moto::{Moto, ami};

const OWNER: &str = "111122223333";
const OLD: &str = "ami-0web0000000000002";
const GOLDEN: &str = "ami-0web0000000000003";
/// Groups whose template launches the golden image already.
const GROUPS: [&str; 2] = ["web-a", "web-b"];
/// Groups whose template launches the old image, with the version each names (URL-encoded).
const DRIFTED: [(&str, &str); 2] = [("web-c", "%24Default"), ("web-d", "1")];
const PER_GROUP: u32 = 50;
const STANDALONE: i32 = 100;
/// How long each replacement takes to come into service.
const DELAY: Duration = Duration::from_secs(5);
/// `rollout.max_parallel`: standalone copies at once, so that they need as many waves as the
/// groups at 10 %.
const MAX_PARALLEL: u32 = 10;

fn main() {
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_fleetscope"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let moto = Moto::start(&[
            ami(
                OLD,
                "web-1.1.0-20261001",
                "2026-10-01T00:00:00Z",
                OWNER,
                &[],
            ),
            ami(
                GOLDEN,
                "web-1.2.0-20261025",
                "2026-10-25T00:00:00Z",
                OWNER,
                &[],
            ),
        ]);
        let ec2 = moto.client(moto::PROD, "us-east-1").await;
        for group in GROUPS {
            let template = moto::launch_template(&ec2, group, OLD).await;
            moto.create_asg(moto::PROD, "us-east-1", group, &template, PER_GROUP)
                .await;
            ec2.create_launch_template_version()
                .launch_template_id(&template)
                .launch_template_data(RequestLaunchTemplateData::builder().image_id(GOLDEN).build())
                .send()
                .await
                .unwrap();
            ec2.modify_launch_template()
                .launch_template_id(&template)
                .default_version("2")
                .send()
                .await
                .unwrap();
        }
        for (group, version) in DRIFTED {
            let template = moto::launch_template(&ec2, group, OLD).await;
            moto.create_asg_at(moto::PROD, "us-east-1", group, (&template, version), PER_GROUP)
                .await;
        }
        ec2.run_instances()
            .image_id(OLD)
            .instance_type("t3.micro".into())
            .min_count(STANDALONE)
            .max_count(STANDALONE)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Instance)
                    .tags(Tag::builder().key("Name").value("web").build())
                    .build(),
            )
            .send()
            .await
            .unwrap();

        let proxy = Proxy::start(
            moto.port(),
            [("us-east-1".to_owned(), Fault::NewMembersPending(DELAY))]
                .into_iter()
                .collect(),
        )
        .await;
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 1\n[aws]\nprofiles = [\"prod\"]\nregions = [\"us-east-1\"]\nendpoint_url = \"{}\"\ntimeout_secs = 60\n\
                 [rollout]\nmax_unavailable = \"10%\"\nmax_parallel = {MAX_PARALLEL}\npoll_secs = 1\nhealth_timeout_secs = 300\n",
                proxy.url()
            ),
        )
        .unwrap();
        let mut env = moto.profile_env(dir.path());
        env.push(("FLEETSCOPE_CONFIG".into(), config.display().to_string()));
        env.push((
            "FLEETSCOPE_DATA_DIR".into(),
            dir.path().join("data").display().to_string(),
        ));
        let run = |args: &[&str]| {
            Command::new(binary)
                .args(args)
                .envs(env.clone())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .output()
                .unwrap()
        };

        // Queue every instance on the old image, as `R` in the UI would.
        let now: DateTime<Utc> = "2026-11-01T00:00:00Z".parse().unwrap();
        let snapshot = dir.path().join("snapshot.json");
        let out = run(&[
            "--report",
            "--now",
            "2026-11-01T00:00:00Z",
            "--output",
            "/dev/null",
            "--save-snapshot",
            snapshot.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let inventory = fleetscope::snapshot::load(&snapshot)
            .unwrap()
            .into_inventory(LineageRules::default());
        let eval = evaluate(&inventory, &PolicyConfig::default(), now);
        let mut queue = Queue::default();
        queue.add(
            inventory
                .instances()
                .iter()
                .filter(|i| i.image == OLD)
                .filter_map(|i| inventory.instance_by_id(&i.id))
                .map(|idx| entry_for(&inventory, &eval, idx, now)),
        );
        let queued = queue.entries.len();
        let groups = GROUPS.len() + DRIFTED.len();
        assert_eq!(queued, groups * PER_GROUP as usize + STANDALONE as usize);
        queue.save(&dir.path().join("data").join("queue.json")).unwrap();

        proxy.reset();
        let started = Instant::now();
        let out = tokio::task::block_in_place(|| run(&["queue", "apply", "--yes"]));
        let secs = started.elapsed().as_secs_f64();
        // The plan on stdout, the progress and summary on stderr.
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{printed}");
        let waves: usize = printed
            .lines()
            .find_map(|l| {
                let (_, rest) = l.split_once(" replacements in ")?;
                rest.split_whitespace().next()?.parse().ok()
            })
            .expect("the plan names its waves");
        // The template steps, the rollout's own summary, and anything it left queued or
        // skipped, with why.
        for line in printed.lines().filter(|l| {
            l.starts_with("  point ")
                || l.contains(" replaced, ")
                || l.contains("skipped:")
                || l.starts_with("Left queued")
        }) {
            println!("  {line}");
        }
        let bound = waves as f64 * DELAY.as_secs_f64();
        println!(
            "{queued} instances ({groups} groups of {PER_GROUP} at 10 %, {} of them in template drift; {STANDALONE} standalone {MAX_PARALLEL} at once), each replacement {} s to come into service:",
            DRIFTED.len(),
            DELAY.as_secs()
        );
        println!(
            "  {waves} waves; wall time {secs:.1} s against the plan's bound of {waves} x {} s = {bound:.0} s ({:+.0}%)",
            DELAY.as_secs(),
            (secs / bound - 1.0) * 100.0
        );
        let calls = proxy.calls();
        let total: usize = calls.values().sum();
        for (action, count) in &calls {
            println!(
                "    {action:<40} {count:>5} calls, {:>5.2} per instance",
                *count as f64 / queued as f64
            );
        }
        println!(
            "  API calls: {total}, {:.1} per replaced instance",
            total as f64 / queued as f64
        );
    });
}
