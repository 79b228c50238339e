//! `fleetscope serve` end to end: the real binary on a loopback port, scraped by a real
//! Prometheus (Debian's `prometheus` package, which `.ci/test` installs) whose numbers must
//! equal the demo report's; its snapshot read back through `--snapshot URL` and `diff URL`;
//! tokens, limits, kept snapshots, SIGTERM. A source failing between two collections is the
//! Google Cloud test server's (under the gcp feature), since the demo has no failing source.

mod common;
#[cfg(feature = "gcp")]
mod compute;
mod served;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::NOW;
use common::env::Env;
use serde_json::Value;
use served::{Prometheus, Server, get, prometheus_tool, request};

const TOKEN: &str = "7c1e0f4b9a2d48e6b3f5a0c9d8e7f6a5";

impl Env {
    /// The binary with a private config and data directory, nothing from outside that would
    /// change it, and no proxy between it and loopback.
    fn new() -> Env {
        let mut hidden = vec!["FLEETSCOPE_", "AWS_"];
        hidden.extend(served::PROXY_VARS);
        Env::isolated(&hidden)
    }

    /// `fleetscope serve` with these arguments, on a free loopback port unless they name one.
    fn serve(&self, args: &[&str]) -> Server {
        let mut all = vec!["serve"];
        if !args.contains(&"--listen") {
            all.extend(["--listen", "127.0.0.1:0"]);
        }
        all.extend(args);
        Server::start(self.command(&all))
    }

    /// A token file of this name holding `token`.
    fn token_file(&self, name: &str, token: &str) -> String {
        let path = self.write(name, format!("{token}\n").as_bytes());
        path.display().to_string()
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn ok(output: Output) -> Output {
    assert!(output.status.success(), "{}", stderr(&output));
    output
}

fn demo_json_report(env: &Env) -> Value {
    let out = ok(env.run(&["--demo", "--report", "--format", "json", "--now", NOW]));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn repo(path: &str) -> String {
    format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn prometheus_scrapes_the_metrics_and_they_count_what_the_report_counts() {
    let env = Env::new();
    let server = env.serve(&["--demo", "--now", NOW, "--interval", "1h"]);
    server.collection(1);
    let report = demo_json_report(&env);
    let prometheus = Prometheus::start(
        &server.addr,
        std::path::Path::new(&repo("assets/prometheus/alerts.yml")),
    );
    prometheus.scraped();

    // Instances per cloud and verdict, as the report's summary counts them.
    let mut scraped: BTreeMap<(String, String), f64> = BTreeMap::new();
    for (labels, value) in prometheus.query("sum by (cloud, verdict) (fleetscope_instances)") {
        let key = (
            labels["cloud"].as_str().unwrap().to_owned(),
            labels["verdict"].as_str().unwrap().to_owned(),
        );
        scraped.insert(key, value);
    }
    let mut expected: BTreeMap<(String, String), f64> = BTreeMap::new();
    for (cloud, counts) in report["summary"]["by_cloud"].as_object().unwrap() {
        for verdict in ["flagged", "unknown", "outdated", "stale", "current"] {
            let n = counts[verdict].as_u64().unwrap();
            if n > 0 {
                expected.insert((cloud.clone(), verdict.to_owned()), n as f64);
            }
        }
    }
    assert_eq!(scraped, expected);
    let total = |query: &str| -> f64 { prometheus.query(query).iter().map(|(_, v)| v).sum() };
    assert_eq!(
        total("sum(fleetscope_instances)"),
        report["summary"]["instances"].as_f64().unwrap()
    );
    assert!(total("sum(fleetscope_instances)") > 1000.0);

    // Findings, lineages, groups and image ages, against the report's rows.
    let instances = report["instances"].as_array().unwrap();
    let exposed = instances
        .iter()
        .filter(|i| i["exposure"].as_array().is_some_and(|e| !e.is_empty()))
        .count();
    assert_eq!(
        total(r#"sum(fleetscope_findings{finding="exposed"})"#),
        exposed as f64
    );
    assert_eq!(
        total(r#"sum(fleetscope_findings{finding="long_lived"})"#),
        report["summary"]["total"]["long_lived"].as_f64().unwrap()
    );
    let aged = instances
        .iter()
        .filter(|i| !i["image_age_days"].is_null())
        .count();
    assert_eq!(
        total("sum(fleetscope_image_age_seconds_count)"),
        aged as f64
    );
    let lineages: Vec<&Value> = report["lineages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["instances"].as_u64() > Some(0))
        .collect();
    assert_eq!(
        total("count(fleetscope_lineage_instances)"),
        lineages.len() as f64
    );
    let behind: u64 = lineages
        .iter()
        .map(|l| l["lagging_instances"].as_u64().unwrap())
        .sum();
    assert_eq!(
        total("sum(fleetscope_lineage_instances_behind)"),
        behind as f64
    );
    let groups = report["groups"].as_array().unwrap();
    let drift = groups
        .iter()
        .filter(|g| g["template_status"]["status"] == "drift")
        .count();
    let skew = groups.iter().filter(|g| g["skew"] == true).count();
    assert!(drift > 0 && skew > 0);
    assert_eq!(
        total(r#"sum(fleetscope_group_findings{finding="template_drift"})"#),
        drift as f64
    );
    assert_eq!(
        total(r#"sum(fleetscope_group_findings{finding="skew"})"#),
        skew as f64
    );
    assert_eq!(total("sum(fleetscope_groups)"), groups.len() as f64);
    // Every source up, and the evaluation recent.
    let sources = report["sources"].as_array().unwrap().len();
    assert_eq!(total("count(fleetscope_source_up == 1)"), sources as f64);
    assert!(total("time() - fleetscope_last_evaluation_timestamp_seconds") < 300.0);
    // The alert rules load into the server; the demo fleet has flagged instances, so the
    // rule for them has something to say.
    let rules = prometheus.api("rules", &[]);
    let loaded: Vec<&Value> = rules["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(loaded.len(), 5, "{rules:#}");
    assert!(loaded.iter().all(|r| r["health"] != "err"), "{rules:#}");
}

#[test]
fn the_alert_rules_pass_promtool_and_fire_on_the_metrics() {
    let promtool = prometheus_tool("promtool");
    let check = Command::new(&promtool)
        .args(["check", "rules", &repo("assets/prometheus/alerts.yml")])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}{}",
        stdout(&check),
        stderr(&check)
    );
    let test = Command::new(&promtool)
        .args([
            "test",
            "rules",
            &repo("tests/fixtures/prometheus/alerts_test.yml"),
        ])
        .output()
        .unwrap();
    assert!(test.status.success(), "{}{}", stdout(&test), stderr(&test));
}

/// The `fleetscope_*` names a PromQL expression uses, histogram suffixes taken off.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("fleetscope_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        let base = ["_bucket", "_sum", "_count", "_total", "_info"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(&name);
        names.push(base.to_owned());
    }
    names
}

#[test]
fn the_dashboard_and_the_alerts_use_only_metrics_serve_exports() {
    let env = Env::new();
    let server = env.serve(&["--demo", "--now", NOW]);
    server.collection(1);
    // A request first, so the request counter has a series.
    assert_eq!(get(&server.url("/healthz"), &[]).status, 200);
    let scrape = get(&server.url("/metrics"), &[]);
    assert_eq!(scrape.status, 200);
    let exported = served::families(&scrape.text());
    assert!(exported.len() > 20, "{exported:?}");

    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repo("assets/grafana/fleetscope.json")).unwrap(),
    )
    .unwrap();
    let mut exprs: Vec<String> = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(target["expr"].as_str().unwrap().to_owned());
        }
        if panel["type"] != "row" {
            assert_eq!(panel["datasource"]["uid"], "${datasource}", "{panel:#}");
        }
    }
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(query) = variable["definition"].as_str() {
            exprs.push(query.to_owned());
        }
    }
    assert!(exprs.len() > 15);
    let alerts = std::fs::read_to_string(repo("assets/prometheus/alerts.yml")).unwrap();
    exprs.extend(
        alerts
            .lines()
            .filter(|l| l.trim_start().starts_with("expr:") || l.starts_with("          "))
            .map(str::to_owned),
    );
    // The README's table names every family, and nothing else.
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let mut documented: Vec<String> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("| `fleetscope_"))
        .filter_map(|l| l.split('`').next())
        .flat_map(|name| metric_names(&format!("fleetscope_{name}")))
        .collect();
    documented.sort();
    let mut families = exported.clone();
    families.sort();
    assert_eq!(documented, families, "the README's metrics table");
    let mut used = 0;
    for expr in &exprs {
        for name in metric_names(expr) {
            used += 1;
            assert!(
                exported.contains(&name),
                "{name} (in {expr:?}) is not exported: {exported:?}"
            );
        }
    }
    assert!(used > 20);
}

#[test]
fn the_snapshot_is_the_saved_file_and_its_url_gives_the_same_report() {
    let env = Env::new();
    let server = env.serve(&["--demo", "--now", NOW]);
    server.collection(1);
    let file = env.path("saved.json");
    ok(env.run(&[
        "--demo",
        "--report",
        "--now",
        NOW,
        "--output",
        "/dev/null",
        "--save-snapshot",
        file.to_str().unwrap(),
    ]));
    let saved = std::fs::read(&file).unwrap();

    // The same bytes as --save-snapshot, plain or gzipped; unchanged bytes answer 304.
    let plain = get(&server.url("/snapshot"), &[]);
    assert_eq!(plain.status, 200);
    assert_eq!(
        plain.header("content-type").as_deref(),
        Some("application/json")
    );
    assert!(
        plain.body == saved,
        "the served snapshot differs from --save-snapshot's"
    );
    let gzipped = get(&server.url("/snapshot"), &[("accept-encoding", "gzip")]);
    assert_eq!(gzipped.header("content-encoding").as_deref(), Some("gzip"));
    assert!(
        gzipped.body.len() * 5 < saved.len(),
        "{}",
        gzipped.body.len()
    );
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&gzipped.body[..])
        .read_to_end(&mut unzipped)
        .unwrap();
    assert!(unzipped == saved);
    let etag = plain.header("etag").unwrap();
    assert_eq!(gzipped.header("etag"), Some(etag.clone()));
    let again = get(&server.url("/snapshot"), &[("if-none-match", &etag)]);
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());

    // --snapshot URL gives the report --snapshot FILE gives, in every format.
    let url = server.url("/snapshot");
    for format in ["json", "md", "csv"] {
        let from_url = ok(env.run(&["--snapshot", &url, "--report", "--format", format]));
        let from_file = ok(env.run(&[
            "--snapshot",
            file.to_str().unwrap(),
            "--report",
            "--format",
            format,
        ]));
        assert!(
            from_url.stdout == from_file.stdout,
            "{format}: the URL's report differs from the file's"
        );
    }
    // diff across a URL and a file of the same fleet finds nothing.
    let diff = ok(env.run(&["diff", &url, file.to_str().unwrap(), "--format", "json"]));
    let changes: Value = serde_json::from_slice(&diff.stdout).unwrap();
    for list in ["added", "removed", "moved", "verdict_changes"] {
        assert_eq!(changes[list], serde_json::json!([]), "{list}: {changes:#}");
    }
    assert_eq!(changes["new_instances"], 1_500);
    // A URL nobody answers, or a path that is not a snapshot, fails in one line, exit 2.
    let closed = format!("http://127.0.0.1:{}/snapshot", served::free_port());
    let out = env.run(&["--snapshot", &closed, "--report"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot connect"), "{}", stderr(&out));
    let out = env.run(&["--snapshot", &server.url("/nothing"), "--report"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("HTTP 404"), "{}", stderr(&out));
}

#[test]
fn off_loopback_a_token_is_required_and_a_wrong_one_gets_401() {
    let env = Env::new();
    // Without a token serve refuses to listen beyond loopback: one line, exit 2.
    let out = env.run(&["serve", "--demo", "--listen", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("not a loopback address") && err.contains("--token-file"),
        "{err}"
    );
    let short = env.token_file("short", "short");
    let out = env.run(&[
        "serve",
        "--demo",
        "--listen",
        "0.0.0.0:0",
        "--token-file",
        &short,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("shorter than 16"), "{}", stderr(&out));

    let token_file = env.token_file("token", TOKEN);
    let server = env.serve(&[
        "--demo",
        "--now",
        NOW,
        "--listen",
        "0.0.0.0:0",
        "--token-file",
        &token_file,
    ]);
    server.collection(1);
    let snapshot = server.url("/snapshot");
    let refused = get(&snapshot, &[]);
    assert_eq!(refused.status, 401);
    assert!(
        refused
            .header("www-authenticate")
            .unwrap()
            .starts_with("Bearer")
    );
    let wrong = format!("Bearer {}", TOKEN.replace('7', "8"));
    assert_eq!(get(&snapshot, &[("authorization", &wrong)]).status, 401);
    let right = format!("Bearer {TOKEN}");
    let answer = get(&snapshot, &[("authorization", &right)]);
    assert_eq!(answer.status, 200);
    assert!(answer.text().contains("\"kind\": \"snapshot\""));
    // /metrics and /healthz stay open; nothing is writable.
    assert_eq!(get(&server.url("/metrics"), &[]).status, 200);
    assert_eq!(get(&server.url("/healthz"), &[]).status, 200);
    for method in ["POST", "PUT", "DELETE"] {
        let answer = request(method, &snapshot, &[("authorization", &right)]);
        assert_eq!(answer.status, 405, "{method}");
    }
    assert_eq!(get(&server.url("/queue"), &[]).status, 404);

    // The client side: without the token a URL is refused in one line; with it, read.
    let out = env.run(&["--snapshot", &snapshot, "--report"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("HTTP 401"), "{}", stderr(&out));
    assert!(stderr(&out).contains("--token-file"), "{}", stderr(&out));
    let out = ok(env.run(&[
        "--snapshot",
        &snapshot,
        "--token-file",
        &token_file,
        "--report",
        "--format",
        "json",
    ]));
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["summary"]["instances"],
        demo_json_report(&env)["summary"]["instances"]
    );
    let wrong_file = env.token_file("wrong", &TOKEN.replace('7', "8"));
    let out = env.run(&["diff", &snapshot, &snapshot, "--token-file", &wrong_file]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("the token was refused"),
        "{}",
        stderr(&out)
    );
    // The token is in no answer and no log line.
    let metrics = get(&server.url("/metrics"), &[]).text();
    assert!(!metrics.contains(TOKEN));
    assert!(!server.log().join("\n").contains(TOKEN));
    drop(server);

    // --token-metrics closes /metrics too.
    let server = env.serve(&["--demo", "--token-file", &token_file, "--token-metrics"]);
    assert_eq!(get(&server.url("/metrics"), &[]).status, 401);
    assert_eq!(
        get(&server.url("/metrics"), &[("authorization", &right)]).status,
        200
    );
}

#[test]
fn two_intervals_keep_two_snapshots_and_diff_reads_them() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let kept = env.path("kept");
    let server = env.serve(&[
        "--demo",
        "--interval",
        "1s",
        "--keep-snapshots",
        kept.to_str().unwrap(),
        "--keep",
        "2",
    ]);
    // Three collections, of which the newest two stay.
    let third = server.collection(3);
    assert!(third.contains("kept "), "{third}");
    let mut files: Vec<_> = std::fs::read_dir(&kept)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&kept), 0o700);
    for file in &files {
        assert_eq!(mode(file), 0o600);
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("fleetscope-2") && name.ends_with("Z.json"),
            "{name}"
        );
    }
    let (old, new) = (files[0].to_str().unwrap(), files[1].to_str().unwrap());
    let diff = ok(env.run(&["diff", old, new, "--format", "json"]));
    let changes: Value = serde_json::from_slice(&diff.stdout).unwrap();
    assert_eq!(changes["kind"], "diff", "{changes:#}");
    assert_eq!(changes["old_instances"], 1_500);
    assert_eq!(changes["new_instances"], 1_500);
    assert!(
        changes["old_taken_at"] != changes["new_taken_at"],
        "{changes:#}"
    );
    let md = ok(env.run(&["diff", old, new]));
    assert!(!stdout(&md).is_empty());
    // The kept files are what /snapshot serves: a collection, whole.
    let snapshot: Value = serde_json::from_slice(&std::fs::read(new).unwrap()).unwrap();
    assert_eq!(snapshot["kind"], "snapshot");
    assert_eq!(snapshot["instances"].as_array().unwrap().len(), 1_500);
}

#[test]
fn sigterm_ends_serve_with_exit_0_even_mid_collection() {
    let env = Env::new();
    let mut server = env.serve(&["--demo", "--now", NOW]);
    server.collection(1);
    let status = server.terminate(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{:#?}", server.log());
    let log = server.log();
    assert!(
        log.iter().any(|l| l.contains("SIGTERM: stopping")),
        "{log:#?}"
    );
    assert!(
        log.iter().any(|l| l.ends_with("fleetscope serve: stopped")),
        "{log:#?}"
    );

    // A big collection still running is abandoned at once.
    let mut server = env.serve(&["--demo", "--demo-size", "400000", "--now", NOW]);
    let start = Instant::now();
    while !get(&server.url("/metrics"), &[])
        .text()
        .contains("fleetscope_collection_in_progress 1")
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no collection started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Seconds at most on an idle machine; the bound leaves room for a loaded one.
    let status = server.terminate(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{:#?}", server.log());
    let log = server.log();
    assert!(
        log.iter().any(|l| l.contains("collection 1 abandoned")),
        "{log:#?}"
    );
    assert!(
        !log.iter().any(|l| l.contains("collection 1: ")),
        "{log:#?}"
    );
}

#[test]
fn a_slow_client_stalls_no_collection_and_no_other_client() {
    let env = Env::new();
    let server = env.serve(&["--demo", "--demo-size", "20000", "--interval", "1s"]);
    server.collection(1);
    let addr = server.addr.clone();
    // One client never finishes its request line; another asks for the snapshot and never
    // reads the answer.
    let mut loris = std::net::TcpStream::connect(&addr).unwrap();
    loris.write_all(b"GET /snap").unwrap();
    let mut sleeper = std::net::TcpStream::connect(&addr).unwrap();
    sleeper
        .write_all(b"GET /snapshot HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // Collections go on, and others are answered at once.
    server.collection(4);
    let start = Instant::now();
    let metrics = get(&server.url("/metrics"), &[]);
    assert_eq!(metrics.status, 200);
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(metrics.text().contains("fleetscope_collections_total "));
    // The unfinished request is dropped once its headers are overdue.
    loris
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut buf = [0u8; 256];
    let started = Instant::now();
    let read = loris.read(&mut buf);
    assert!(
        read.is_ok() && started.elapsed() < Duration::from_secs(20),
        "the slow request was not closed: {read:?}"
    );
    drop(sleeper);
}

#[test]
fn bad_flags_fail_in_one_line_with_exit_2() {
    let env = Env::new();
    for (args, says) in [
        (vec!["serve", "--demo", "--interval", "0s"], "--interval"),
        (
            vec!["serve", "--demo", "--listen", "nowhere"],
            "--listen nowhere",
        ),
        (vec!["serve", "--demo", "--keep", "3"], "--keep-snapshots"),
        (vec!["serve", "--demo", "--token-metrics"], "--token-file"),
        (
            vec!["serve", "--demo", "--snapshot", "x.json"],
            "cannot be used with",
        ),
        (vec!["serve"], "no sources configured"),
    ] {
        let out = env.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    // A port already taken is named.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = env.run(&["serve", "--demo", "--listen", &addr]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot listen"), "{}", stderr(&out));
}

#[test]
fn serve_can_serve_another_serves_snapshot() {
    let env = Env::new();
    let token_file = env.token_file("token", TOKEN);
    let upstream = env.serve(&["--demo", "--now", NOW, "--token-file", &token_file]);
    upstream.collection(1);
    // A second serve reads the first one's snapshot with the same token, and answers the same.
    let downstream = env.serve(&[
        "--snapshot",
        &upstream.url("/snapshot"),
        "--token-file",
        &token_file,
    ]);
    downstream.collection(1);
    let auth = format!("Bearer {TOKEN}");
    let one = get(&upstream.url("/snapshot"), &[("authorization", &auth)]);
    let two = get(&downstream.url("/snapshot"), &[("authorization", &auth)]);
    assert_eq!(one.status, 200);
    assert!(one.body == two.body);
}

/// A source that fails between two collections keeps its last good data, marked down. The
/// Google Cloud test server answers the first collection, then refuses one project.
#[cfg(feature = "gcp")]
mod failing_source {
    use super::*;
    use crate::compute::{self, Compute, FaultKind};

    /// The value of the series whose line starts with `prefix` (its name and labels).
    fn sample(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        metrics
            .lines()
            .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
            .find(|l| {
                labels
                    .iter()
                    .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    #[test]
    fn a_failing_source_keeps_its_last_good_data_and_shows_up_0() {
        let compute = Compute::start(compute::fleet(2, 30, 5));
        let env = Env::configured(
            &format!(
                "version = 1\n[gcp]\nprojects = [\"shop-0\", \"shop-1\"]\nendpoint_url = \"{}\"\ntimeout_secs = 5\n",
                compute.url()
            ),
            |dir| compute.env(dir),
        );
        let server = env.serve(&["--interval", "2s", "--now", NOW]);
        let first = server.collection(1);
        assert!(first.contains("2 sources, 60 instances"), "{first}");
        // From now on shop-1 answers 403 to everything.
        let denied = serde_json::json!({"error": {"code": 403,
            "message": "Required 'compute.instances.list' permission for 'projects/shop-1'",
            "errors": [{"message": "Required 'compute.instances.list' permission for 'projects/shop-1'",
                "domain": "global", "reason": "forbidden"}]}});
        compute.world.lock().unwrap().fault(
            "projects/shop-1/",
            FaultKind::Status(403, denied),
            usize::MAX,
        );
        let mut n = 2;
        let failed = loop {
            let line = server.collection(n);
            if line.contains("failed") {
                break line;
            }
            n += 1;
            assert!(n < 6, "shop-1 never failed: {:#?}", server.log());
        };
        assert!(
            failed.contains("60 instances")
                && failed.contains("1 failed: gcp:shop-1 (")
                && failed.contains("its 30 instances from the last good collection kept"),
            "{failed}"
        );

        let metrics = get(&server.url("/metrics"), &[]).text();
        let shop1 = [("source", "gcp:shop-1")];
        let shop0 = [("source", "gcp:shop-0")];
        assert_eq!(
            sample(&metrics, "fleetscope_source_up", &shop1),
            Some(0.0),
            "{metrics}"
        );
        assert_eq!(sample(&metrics, "fleetscope_source_up", &shop0), Some(1.0));
        assert_eq!(
            sample(&metrics, "fleetscope_source_instances", &shop1),
            Some(30.0)
        );
        assert!(sample(&metrics, "fleetscope_source_errors_total", &shop1) >= Some(1.0));
        assert!(
            sample(
                &metrics,
                "fleetscope_source_last_success_timestamp_seconds",
                &shop1
            )
            .is_some()
        );
        let counted: f64 = metrics
            .lines()
            .filter(|l| l.starts_with("fleetscope_instances{"))
            .filter(|l| l.contains("account=\"shop-1\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        assert_eq!(counted, 30.0, "{metrics}");

        // The snapshot has shop-1's instances, its source failed and saying why they are there.
        let snapshot: Value =
            serde_json::from_slice(&get(&server.url("/snapshot"), &[]).body).unwrap();
        let instances = snapshot["instances"].as_array().unwrap();
        assert_eq!(instances.len(), 60);
        assert_eq!(
            instances
                .iter()
                .filter(|i| i["source"] == "gcp:shop-1")
                .count(),
            30
        );
        let source = snapshot["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "gcp:shop-1")
            .unwrap();
        assert_eq!(source["state"], "failed", "{source:#}");
        assert!(
            source["warnings"][0]
                .as_str()
                .unwrap()
                .contains("last good collection"),
            "{source:#}"
        );
        // The credentials the collector used are in no answer and no log line.
        let log = server.log().join("\n");
        let snapshot_text = snapshot.to_string();
        for secret in ["test-secret", "test-refresh-token", compute::TOKEN] {
            assert!(!metrics.contains(secret), "{secret} in /metrics");
            assert!(!snapshot_text.contains(secret), "{secret} in /snapshot");
            assert!(!log.contains(secret), "{secret} in the log");
        }

        // shop-1 answers again: its own data returns and it is up.
        compute.world.lock().unwrap().faults.clear();
        let start = Instant::now();
        loop {
            let metrics = get(&server.url("/metrics"), &[]).text();
            if sample(&metrics, "fleetscope_source_up", &shop1) == Some(1.0) {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "shop-1 never came back"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
