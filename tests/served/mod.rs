//! `fleetscope serve` run as a process for the tests: its log read line by line, its address
//! taken from the first line, requests made with a real HTTP client, and Debian's Prometheus
//! (`prometheus`, `promtool`) found or a clear failure naming `.ci/test`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Proxy variables: a test's requests go to loopback, never through a proxy.
pub const PROXY_VARS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The serve process and its log.
pub struct Server {
    pub child: Child,
    pub addr: String,
    log: Arc<(Mutex<Vec<String>>, Condvar)>,
}

impl Server {
    /// Starts `command` (a `fleetscope serve ...`) and waits for the line naming its address.
    pub fn start(mut command: Command) -> Server {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let shared = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let (lines, ready) = &*shared;
                lines.lock().unwrap().push(line);
                ready.notify_all();
            }
            // The pipe closed: the process is gone; wake whoever waits.
            shared.0.lock().unwrap().push(String::from("<closed>"));
            shared.1.notify_all();
        });
        let mut server = Server {
            child,
            addr: String::new(),
            log,
        };
        let line = server.wait_for("listening on http://", Duration::from_secs(30));
        let addr = line
            .split("listening on http://")
            .nth(1)
            .and_then(|rest| rest.split(": ").next())
            .unwrap();
        // An unspecified address is reached through loopback.
        server.addr = addr.replace("0.0.0.0:", "127.0.0.1:");
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The log so far.
    pub fn log(&self) -> Vec<String> {
        self.log.0.lock().unwrap().clone()
    }

    /// The first log line containing `text`, waiting for it up to `limit`.
    pub fn wait_for(&self, text: &str, limit: Duration) -> String {
        let (lines, ready) = &*self.log;
        let start = Instant::now();
        let mut guard = lines.lock().unwrap();
        loop {
            if let Some(line) = guard.iter().find(|l| l.contains(text)) {
                return line.clone();
            }
            if guard.iter().any(|l| l == "<closed>") {
                panic!("serve ended before logging {text:?}: {guard:#?}");
            }
            let left = limit.checked_sub(start.elapsed()).unwrap_or_else(|| {
                panic!("serve did not log {text:?} within {limit:?}: {guard:#?}")
            });
            guard = ready.wait_timeout(guard, left).unwrap().0;
        }
    }

    /// Waits for collection `n` to be logged.
    pub fn collection(&self, n: u64) -> String {
        self.wait_for(&format!("collection {n}: "), Duration::from_secs(120))
    }

    /// Sends SIGTERM and waits for the exit, at most `limit`, and for the last of the log.
    pub fn terminate(&mut self, limit: Duration) -> ExitStatus {
        signal(&self.child, "TERM");
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The reader may not have read the last lines yet.
                let (lines, ready) = &*self.log;
                let mut guard = lines.lock().unwrap();
                while !guard.iter().any(|l| l == "<closed>") {
                    guard = ready
                        .wait_timeout(guard, Duration::from_secs(10))
                        .unwrap()
                        .0;
                }
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "serve did not stop within {limit:?} of SIGTERM: {:#?}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn signal(child: &Child, name: &str) {
    let sent = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(sent.success(), "kill -{name}");
}

/// An HTTP answer.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

/// A GET with these headers, its body read whole (never decompressed).
pub fn get(url: &str, headers: &[(&str, &str)]) -> Answer {
    request("GET", url, headers)
}

pub fn request(method: &str, url: &str, headers: &[(&str, &str)]) -> Answer {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let mut builder = client.request(method.parse().unwrap(), url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let response = builder.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.unwrap().to_vec();
        Answer {
            status,
            headers,
            body,
        }
    })
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Debian's `prometheus` package's programs, or a failure that says how to get them.
pub fn prometheus_tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "{name} is not installed: `.ci/test` installs it (Debian's prometheus package: apt-get install prometheus)"
        )
    })
}

/// A Prometheus server scraping `target` every second, with `rules` loaded.
pub struct Prometheus {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    pub fn start(target: &str, rules: &Path) -> Prometheus {
        let binary = prometheus_tool("prometheus");
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: fleetscope\n    static_configs:\n      - targets: ['{target}']\n",
                rules.display()
            ),
        )
        .unwrap();
        let port = free_port();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let prometheus = Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        prometheus.wait(Duration::from_secs(60), || {
            let ready =
                std::panic::catch_unwind(|| get(&format!("{}/-/ready", prometheus.url), &[]));
            ready.is_ok_and(|a| a.status == 200)
        });
        prometheus
    }

    /// Polls `done` every 200 ms until it holds, failing after `limit`.
    fn wait(&self, limit: Duration, mut done: impl FnMut() -> bool) {
        let start = Instant::now();
        while !done() {
            assert!(
                start.elapsed() < limit,
                "Prometheus did not get there in {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `GET /api/v1/<path>?<params>`, its `data`.
    pub fn api(&self, path: &str, params: &[(&str, &str)]) -> serde_json::Value {
        let url = reqwest::Url::parse_with_params(&format!("{}/api/v1/{path}", self.url), params)
            .unwrap();
        let answer = get(url.as_str(), &[]);
        let json: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(json["status"], "success", "{path} {params:?}: {json:#}");
        json["data"].clone()
    }

    /// Waits for the first scrape of the target: healthy, or a failure with Prometheus's error.
    pub fn scraped(&self) {
        let mut last = serde_json::Value::Null;
        self.wait(Duration::from_secs(60), || {
            last = self.api("targets", &[]);
            let target = &last["activeTargets"][0];
            assert_ne!(
                target["health"], "down",
                "Prometheus could not scrape serve: {}",
                target["lastError"]
            );
            target["health"] == "up"
        });
    }

    /// An instant query's samples: (labels, value).
    pub fn query(&self, query: &str) -> Vec<(serde_json::Value, f64)> {
        let data = self.api("query", &[("query", query)]);
        data["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|sample| {
                let value = sample["value"][1].as_str().unwrap().parse().unwrap();
                (sample["metric"].clone(), value)
            })
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The metric families of a scrape's text: every `# TYPE` line's name.
pub fn families(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}
