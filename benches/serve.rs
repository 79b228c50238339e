//! `fleetscope serve` at 100,000 demo instances.
//!
//! In process: what one collection computes once (the evaluation, the metrics' registry, the
//! snapshot's JSON and its gzip at two levels) and what a scrape costs (encoding the registry,
//! against handing out text cached per collection).
//! As a process: the release binary serving the demo fleet, timed from a client on loopback:
//! `/metrics` and `/snapshot` (plain and gzip), the memory it holds between collections, and
//! the CPU it uses between them.
//! `cargo bench --no-default-features --bench serve -- 100000`

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use fleetscope::clouds::{self, Plan};
use fleetscope::core::lineage::LineageRules;
use fleetscope::core::policy::{PolicyConfig, evaluate};
use fleetscope::views::serve::metrics::{self, FleetInput};

#[path = "../tests/served/mod.rs"]
mod served;

fn best<T>(runs: usize, mut work: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..runs {
        let start = Instant::now();
        let out = work();
        best = best.min(start.elapsed());
        last = Some(out);
    }
    (best, last.unwrap())
}

fn mb(bytes: usize) -> String {
    if bytes < 1_000_000 {
        return format!("{:.1} kB", bytes as f64 / 1e3);
    }
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn gzip(bytes: &[u8], level: u32) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// (VmRSS, VmHWM) of a process, in MB.
fn memory(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kib| kib / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU time (user + system) a process has used, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command's closing parenthesis; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let size = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or(100_000);
    let now = "2026-11-01T00:00:00Z".parse().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let plan = Plan::Demo {
        size,
        seed: 42,
        page_delay: Duration::ZERO,
        journal: None,
    };
    let inventory = runtime.block_on(clouds::gather(plan, LineageRules::default(), now, |_| {}));
    let policy = PolicyConfig::default();

    println!("## In process, {size} demo instances (best of 5)\n");
    let (t_eval, eval) = best(5, || evaluate(&inventory, &policy, now));
    println!("evaluate: {}", ms(t_eval));
    let records = Default::default();
    let (t_registry, registry) = best(5, || {
        metrics::fleet(&FleetInput {
            inventory: &inventory,
            eval: &eval,
            policy: &policy,
            sources: &records,
            evaluated_at: now,
            collection_secs: 1.0,
        })
    });
    println!(
        "metrics registry built (once per collection): {}",
        ms(t_registry)
    );
    let (t_encode, text) = best(20, || metrics::encode(&registry).unwrap());
    let series = text.lines().filter(|l| !l.starts_with('#')).count();
    println!(
        "/metrics encoded per scrape: {} for {} ({} series)",
        ms(t_encode),
        mb(text.len()),
        series
    );
    let cached = axum::body::Bytes::from(text.clone());
    let (t_cached, _) = best(20, || cached.clone());
    println!("/metrics cached per collection instead: {}", ms(t_cached));
    let (t_json, json) = best(5, || {
        fleetscope::snapshot::to_json(&inventory, now).unwrap()
    });
    println!(
        "snapshot JSON (once per collection): {} for {}",
        ms(t_json),
        mb(json.len())
    );
    for level in [1, 6] {
        let (t_gzip, zipped) = best(3, || gzip(&json, level));
        println!(
            "snapshot gzip level {level} (once per collection): {} for {}",
            ms(t_gzip),
            mb(zipped.len())
        );
    }
    drop((eval, registry, json, inventory));

    println!("\n## The release binary serving {size} demo instances, a client on loopback\n");
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_fleetscope"));
    command
        .args(["serve", "--demo", "--demo-size", &size.to_string()])
        .args(["--listen", "127.0.0.1:0", "--interval", "30s"])
        .env("FLEETSCOPE_DATA_DIR", dir.path().join("data"))
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .env_remove("FLEETSCOPE_CONFIG");
    for var in served::PROXY_VARS {
        command.env_remove(var);
    }
    let server = served::Server::start(command);
    let pid = server.child.id();
    let first = server.collection(1);
    println!(
        "first collection: {}",
        first.split("fleetscope serve: ").nth(1).unwrap_or("")
    );
    let timed = |path: &str, headers: &[(&str, &str)], runs: usize| {
        let url = server.url(path);
        let (t, answer) = best(runs, || served::get(&url, headers));
        assert_eq!(answer.status, 200, "{path}");
        (t, answer.body.len())
    };
    let (t, len) = timed("/metrics", &[], 20);
    println!("GET /metrics: {} for {}", ms(t), mb(len));
    let (t, len) = timed("/snapshot", &[], 5);
    println!("GET /snapshot: {} for {}", ms(t), mb(len));
    let (t, len) = timed("/snapshot", &[("accept-encoding", "gzip")], 5);
    println!("GET /snapshot, gzip: {} for {}", ms(t), mb(len));
    let (rss, hwm) = memory(pid);
    println!("after collection 1 and those requests: RSS {rss:.0} MB (peak {hwm:.0} MB)");

    let second = server.collection(2);
    println!(
        "second collection: {}",
        second.split("fleetscope serve: ").nth(1).unwrap_or("")
    );
    std::thread::sleep(Duration::from_secs(2));
    let (rss, hwm) = memory(pid);
    println!("between collections 2 and 3: RSS {rss:.0} MB (peak {hwm:.0} MB)");
    let before = cpu_seconds(pid);
    let window = Duration::from_secs(20);
    std::thread::sleep(window);
    let used = cpu_seconds(pid) - before;
    println!(
        "CPU between collections: {used:.2} s in {} s idle ({:.2}% of one core)",
        window.as_secs(),
        used / window.as_secs_f64() * 100.0
    );
    assert!(
        !server.log().iter().any(|l| l.contains("collection 3: ")),
        "the idle window ran into collection 3"
    );
}
