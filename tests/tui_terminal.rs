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
    // The demo's queue is its own, apart from the configured clouds'.
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

/// An incident, end to end: an advisory names an AMI, an alert an address; find both from the
/// Instances view, mark the AMI's instances, filter them out of sight, queue them (the hidden
/// marks are named, the count asks for a y), quit; the queue holds exactly those instances.
#[test]
fn incident_flow_find_by_image_and_ip_mark_filter_away_queue_confirm() {
    use fleetscope::clouds::demo::DemoFleet;
    use fleetscope::core::inventory::Inventory;
    use fleetscope::core::lineage::LineageRules;

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        "version = 1\n[ui]\nconfirm_queue_over = 5\n",
    )
    .unwrap();
    let queue_path = dir.path().join("data/demo/queue.json");
    // The demo fleet the binary shows: the same seed, size and --now.
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
        .unwrap()
        .to_utc();
    let mut inventory = Inventory::new(LineageRules {
        tag: Some("lineage".into()),
        name_rules: Vec::new(),
    });
    for event in DemoFleet::new(42, 1_500, now).events() {
        inventory.apply(event);
    }
    let image = (0..inventory.images().len() as u32)
        .filter(|&i| inventory.image(i).image.key.starts_with("ami-"))
        .max_by_key(|&i| inventory.image(i).instances.len())
        .unwrap();
    let ami = inventory.image(image).image.key.clone();
    let mut on_ami: Vec<String> = inventory
        .image(image)
        .instances
        .iter()
        .map(|&i| inventory.instance(i).id.to_string())
        .collect();
    on_ami.sort();
    assert!(on_ami.len() > 5);
    let alerted = inventory.instance(1_000).clone();
    let address = alerted.addresses.private_ips[0].clone();

    let tmux = Tmux::new("incident");
    tmux.start(&command_line(dir.path()));
    tmux.wait_for("collection to finish", |s| {
        s.contains("Fleet by verdict") && s.contains("gcp:acme-batch") && !s.contains("collecting")
    });
    let count = on_ami.len();
    tmux.keys(&["3", "/"]);
    tmux.literal(&ami);
    tmux.keys(&["Enter"]);
    tmux.wait_for("the AMI's instances", |s| {
        s.contains(&format!("Instances ({count}) /{ami}"))
    });
    tmux.keys(&["/", "C-u"]);
    tmux.literal(&format!("ip:{address}"));
    tmux.keys(&["Enter"]);
    tmux.wait_for("the alerted instance", |s| {
        s.contains(&format!("Instances (1) /ip:{address}"))
            && s.contains(&format!(" {} ", alerted.region))
    });
    tmux.keys(&["/", "C-u"]);
    tmux.literal(&format!("image:{ami}"));
    tmux.keys(&["Enter", "a"]);
    tmux.wait_for("the marks", |s| s.contains(&format!("· {count} marked ")));
    tmux.keys(&["/", "C-u"]);
    tmux.literal("cloud:gcp");
    tmux.keys(&["Enter"]);
    tmux.wait_for("the hidden marks", |s| {
        s.contains(&format!("· {count} marked, {count} hidden"))
    });
    tmux.keys(&["r"]);
    tmux.wait_for("the question", |s| {
        s.contains(&format!(
            "queue {count} instances ({count} marked, {count} of them hidden by the filter"
        )) && s.contains("? y/N")
    });
    tmux.keys(&["y"]);
    tmux.wait_for("the queueing", |s| {
        s.contains(&format!("queued {count} instances"))
    });
    tmux.keys(&["q"]);
    tmux.wait_for_exit();

    let queue: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&queue_path).expect("the queue was saved")).unwrap();
    let mut queued: Vec<String> = queue["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["instance_id"].as_str().unwrap().to_owned())
        .collect();
    queued.sort();
    assert_eq!(queued, on_ami);
}

/// Ctrl-C while the UI applies the queue: the stop is journaled, the exit code and a line on
/// stderr say so and how to resume, and the resumed apply does nothing twice.
#[test]
fn quitting_mid_apply_journals_the_stop_says_so_and_resumes() {
    use fleetscope::clouds::demo::DemoFleet;
    use fleetscope::core::inventory::Inventory;
    use fleetscope::core::lineage::LineageRules;
    use fleetscope::core::policy::{PolicyConfig, evaluate};
    use fleetscope::queue::journal::{Journal, Step};
    use fleetscope::queue::{Queue, entry_for};

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        "version = 1\n[rollout]\nmax_failures = 100\n",
    )
    .unwrap();
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
        .unwrap()
        .to_utc();
    let mut inventory = Inventory::new(LineageRules {
        tag: Some("lineage".into()),
        name_rules: Vec::new(),
    });
    for event in DemoFleet::new(42, 1_500, now).events() {
        inventory.apply(event);
    }
    let eval = evaluate(&inventory, &PolicyConfig::default(), now);
    let entries: Vec<_> = (0..inventory.instances().len() as u32)
        .map(|i| entry_for(&inventory, &eval, i, now))
        .filter(|e| e.strategy.executable())
        .take(40)
        .collect();
    let data = dir.path().join("data/demo");
    std::fs::create_dir_all(&data).unwrap();
    Queue {
        entries,
        ..Queue::default()
    }
    .save(&data.join("queue.json"))
    .unwrap();

    let tmux = Tmux::new("quit-mid-apply");
    let (err, code) = (dir.path().join("stderr.txt"), dir.path().join("code.txt"));
    tmux.start(&format!(
        "sh -c '{} 2>{}; echo $? >{}'",
        command_line(dir.path()),
        err.display(),
        code.display()
    ));
    tmux.wait_for("collection to finish", |s| {
        s.contains("Fleet by verdict") && !s.contains("collecting")
    });
    tmux.keys(&["5", "A"]);
    let screen = tmux.wait_for("the confirmation", |s| s.contains("and Enter to go on"));
    let phrase = screen
        .split("Type ")
        .nth(1)
        .and_then(|rest| rest.split(" and Enter").next())
        .unwrap()
        .to_owned();
    tmux.literal(&phrase);
    tmux.keys(&["Enter"]);
    tmux.wait_for("the apply", |s| s.contains("wave 1 of"));
    tmux.keys(&["C-c"]);
    tmux.wait_for_exit();

    assert_eq!(std::fs::read_to_string(&code).unwrap().trim(), "130");
    let said = std::fs::read_to_string(&err).unwrap();
    assert!(said.contains("quit during an apply"), "{said}");
    assert!(said.contains("fleetscope --demo queue apply"), "{said}");
    let journal = Journal::read(&data.join("journal.jsonl")).unwrap();
    assert!(
        journal
            .iter()
            .any(|r| matches!(&r.step, Step::Stopped { why, .. } if why.contains("the UI quit"))),
        "{journal:?}"
    );

    let resumed = Command::new(env!("CARGO_BIN_EXE_fleetscope"))
        .args(["--demo", "queue", "apply", "--yes"])
        .env("FLEETSCOPE_DATA_DIR", dir.path().join("data"))
        .env("FLEETSCOPE_CONFIG", dir.path().join("config.toml"))
        .output()
        .unwrap();
    let journal = Journal::read(&data.join("journal.jsonl")).unwrap();
    for record in &journal {
        let launched = |r: &&fleetscope::queue::journal::Record| {
            r.instance_id == record.instance_id && matches!(r.step, Step::Launched { .. })
        };
        assert!(
            journal.iter().filter(launched).count() <= 1,
            "{} launched twice: {}",
            record.instance_id,
            String::from_utf8_lossy(&resumed.stderr)
        );
    }
    assert!(Queue::load(&data.join("queue.json")).unwrap().entries.len() < 40);
}

/// The runtime reads the journal off its loop as the UI opens: an earlier apply's failures are
/// on the Queue view, and `/failed` lists them.
#[test]
fn an_earlier_applys_failures_show_as_the_ui_opens() {
    use fleetscope::clouds::demo::DemoFleet;
    use fleetscope::core::inventory::Inventory;
    use fleetscope::core::lineage::LineageRules;
    use fleetscope::core::policy::{PolicyConfig, evaluate};
    use fleetscope::queue::journal::{Journal, Step};
    use fleetscope::queue::{Queue, entry_for};

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        "version = 1\n[rollout]\nmax_failures = 100\n",
    )
    .unwrap();
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
        .unwrap()
        .to_utc();
    let mut inventory = Inventory::new(LineageRules {
        tag: Some("lineage".into()),
        name_rules: Vec::new(),
    });
    for event in DemoFleet::new(42, 1_500, now).events() {
        inventory.apply(event);
    }
    let eval = evaluate(&inventory, &PolicyConfig::default(), now);
    let entries: Vec<_> = (0..inventory.instances().len() as u32)
        .map(|i| entry_for(&inventory, &eval, i, now))
        .filter(|e| e.strategy.executable())
        .take(40)
        .collect();
    let data = dir.path().join("data/demo");
    std::fs::create_dir_all(&data).unwrap();
    Queue {
        entries,
        ..Queue::default()
    }
    .save(&data.join("queue.json"))
    .unwrap();
    let applied = Command::new(env!("CARGO_BIN_EXE_fleetscope"))
        .args(["--demo", "queue", "apply", "--yes"])
        .env("FLEETSCOPE_DATA_DIR", dir.path().join("data"))
        .env("FLEETSCOPE_CONFIG", dir.path().join("config.toml"))
        .output()
        .unwrap();
    let failed: Vec<String> = Journal::read(&data.join("journal.jsonl"))
        .unwrap()
        .into_iter()
        .filter(|r| matches!(r.step, Step::Failed { .. }))
        .map(|r| r.instance_id)
        .collect();
    assert!(
        !failed.is_empty(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );

    let tmux = Tmux::new("failed-at-start");
    tmux.start(&command_line(dir.path()));
    tmux.wait_for("the first frame", |s| s.contains("Fleet by verdict"));
    tmux.keys(&["5", "/"]);
    tmux.literal("failed");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the failed entries", |s| {
        s.contains("/failed") && s.contains("failed: the replacement")
    });
    for id in &failed {
        assert!(screen.contains(id.as_str()), "{id} missing:\n{screen}");
    }
    tmux.keys(&["q"]);
    tmux.wait_for_exit();
}
