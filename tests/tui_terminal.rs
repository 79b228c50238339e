//! The real binary in a real terminal (tmux): type a filter, mark rows, queue them, quit; the
//! queue is on disk; a second run shows the same queue.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

struct Tmux {
    socket: String,
}

impl Tmux {
    fn new(name: &str) -> Tmux {
        let available = Command::new("tmux").arg("-V").output();
        assert!(
            available.is_ok_and(|o| o.status.success()),
            "tmux is needed for this test (.ci/test installs it)"
        );
        Tmux {
            socket: format!("fleetscope-test-{name}-{}", std::process::id()),
        }
    }

    fn run(&self, args: &[&str]) -> String {
        let output = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn start(&self, command: &str) {
        self.run(&[
            "new-session",
            "-d",
            "-s",
            "main",
            "-x",
            "120",
            "-y",
            "40",
            command,
        ]);
    }

    fn keys(&self, keys: &[&str]) {
        for key in keys {
            self.run(&["send-keys", "-t", "main", key]);
            // Keys one by one, as a person types: each is its own terminal event.
            std::thread::sleep(Duration::from_millis(40));
        }
    }

    fn literal(&self, text: &str) {
        for c in text.chars() {
            self.run(&["send-keys", "-t", "main", "-l", &c.to_string()]);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "main"])
    }

    fn wait_for(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen();
            if check(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_for_exit(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.run(&["list-sessions"]).is_empty() {
            assert!(Instant::now() < deadline, "fleetscope did not quit");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

fn command_line(dir: &Path) -> String {
    format!(
        "env FLEETSCOPE_DATA_DIR={data} FLEETSCOPE_CONFIG={config} TERM=xterm-256color {bin} --demo --now 2026-11-01T00:00:00Z",
        data = dir.join("data").display(),
        config = dir.join("config.toml").display(),
        bin = env!("CARGO_BIN_EXE_fleetscope"),
    )
}

#[test]
fn filter_mark_queue_quit_and_the_queue_is_still_there() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), "version = 1\n").unwrap();
    // The demo keeps its own queue, apart from the configured clouds'.
    let queue_path = dir.path().join("data/demo/queue.json");

    let tmux = Tmux::new("queue");
    tmux.start(&command_line(dir.path()));
    tmux.wait_for("collection to finish", |s| {
        s.contains("Fleet by verdict") && s.contains("gcp:acme-batch") && !s.contains("collecting")
    });
    tmux.keys(&["3", "/"]);
    tmux.literal("cloud:aws verdict:outdated");
    tmux.keys(&["Enter"]);
    tmux.wait_for("the filter", |s| {
        s.contains("/cloud:aws verdict:outdated") && !s.contains(" azure ")
    });
    tmux.keys(&["Space", "Space", "r"]);
    tmux.wait_for("the queueing", |s| s.contains("queued 2 instances"));
    tmux.keys(&["q"]);
    tmux.wait_for_exit();

    let queue: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&queue_path).expect("the queue was saved")).unwrap();
    let entries = queue["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{queue:#}");
    let mut ids = Vec::new();
    for entry in entries {
        assert_eq!(entry["cloud"], "aws");
        assert_eq!(entry["verdict"], "outdated");
        ids.push(entry["instance_id"].as_str().unwrap().to_owned());
    }

    // A new process finds the same queue.
    let tmux = Tmux::new("again");
    tmux.start(&command_line(dir.path()));
    tmux.wait_for("the first frame", |s| s.contains("Fleet by verdict"));
    tmux.keys(&["5"]);
    let screen = tmux.wait_for("the queue view", |s| s.contains("Queue ·"));
    assert!(screen.contains("(2)"), "{screen}");
    for id in &ids {
        assert!(screen.contains(id.as_str()), "{id} missing:\n{screen}");
    }
    tmux.keys(&["q"]);
    tmux.wait_for_exit();
}

#[test]
fn without_a_terminal_it_says_to_use_report() {
    let output = Command::new(env!("CARGO_BIN_EXE_fleetscope"))
        .args(["--demo"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--report"), "{stderr}");
}
