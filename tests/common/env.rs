//! The real binary in a temporary directory of its own: its config, data directory, queue and
//! journal there, its environment given as data. Each test file adds an `Env::new` that says
//! how its tests differ (the config text, a cloud's variables, a deadline).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use fleetscope::core::lineage::LineageRules;
use fleetscope::core::policy::{PolicyConfig, evaluate};
use fleetscope::queue::journal::{Journal, Record};
use fleetscope::queue::{Queue, entry_for};

use super::{NOW, now, stderr};

pub struct Env {
    pub dir: tempfile::TempDir,
    /// Set on every run, in this order.
    pub env: Vec<(String, String)>,
    /// Taken out of the environment every run inherits, before `env` is set.
    pub removed: Vec<String>,
    /// The folder of `queue.json` and `journal.jsonl`, in `dir`.
    pub ledger: &'static str,
    /// The lineage rules [`Env::queue`] reads a collection with.
    pub lineage: LineageRules,
    /// When set, a run has its stdin closed and its output piped, and fails the test if it
    /// has not finished by then.
    pub deadline: Option<Duration>,
}

impl Env {
    /// `config` as the config file, `vars(dir)` then `FLEETSCOPE_CONFIG` and
    /// `FLEETSCOPE_DATA_DIR` in the environment.
    pub fn configured(config: &str, vars: impl FnOnce(&Path) -> Vec<(String, String)>) -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        let mut env = vars(dir.path());
        env.push((
            "FLEETSCOPE_CONFIG".into(),
            dir.path().join("config.toml").display().to_string(),
        ));
        env.push((
            "FLEETSCOPE_DATA_DIR".into(),
            dir.path().join("data").display().to_string(),
        ));
        Env::in_dir(dir, env)
    }

    /// A private config and data directory (and home), and no variable from outside whose name
    /// starts with one of `hidden`.
    pub fn isolated(hidden: &[&str]) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let env = vec![
            (
                "XDG_CONFIG_HOME".into(),
                dir.path().join("config-home").display().to_string(),
            ),
            ("HOME".into(), dir.path().display().to_string()),
            (
                "FLEETSCOPE_DATA_DIR".into(),
                dir.path().join("data").display().to_string(),
            ),
        ];
        let mut isolated = Env::in_dir(dir, env);
        isolated.removed = std::env::vars()
            .map(|(key, _)| key)
            .filter(|key| hidden.iter().any(|prefix| key.starts_with(prefix)))
            .collect();
        isolated
    }

    fn in_dir(dir: tempfile::TempDir, env: Vec<(String, String)>) -> Env {
        Env {
            dir,
            env,
            removed: Vec::new(),
            ledger: "data",
            lineage: LineageRules::default(),
            deadline: None,
        }
    }

    pub fn set(&mut self, key: &str, value: &str) {
        self.env.push((key.to_owned(), value.to_owned()));
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    pub fn data(&self) -> PathBuf {
        self.path("data")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_fleetscope"));
        for key in &self.removed {
            command.env_remove(key);
        }
        command.args(args).envs(self.env.clone());
        if self.deadline.is_some() {
            command
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
        }
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[])
    }

    /// A run with `vars` set besides.
    pub fn run_with(&self, args: &[&str], vars: &[(&str, &str)]) -> Output {
        match self.deadline {
            Some(deadline) => self.run_within(args, vars, deadline),
            None => self
                .command(args)
                .envs(vars.iter().copied())
                .output()
                .unwrap(),
        }
    }

    /// A run killed, and the test failed, if it has not finished by `deadline`.
    pub fn run_within(&self, args: &[&str], vars: &[(&str, &str)], deadline: Duration) -> Output {
        let mut child = self
            .command(args)
            .envs(vars.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = reader(child.stdout.take().unwrap());
        let stderr = reader(child.stderr.take().unwrap());
        let status = wait(&mut child, args, deadline);
        Output {
            status,
            stdout: stdout.join().unwrap(),
            stderr: stderr.join().unwrap(),
        }
    }

    /// Collects, then queues these instances as the UI's `r` would.
    pub fn queue(&self, ids: &[&str]) -> Queue {
        let snapshot = self.path("snapshot.json");
        let out = self.run(&[
            "--report",
            "--now",
            NOW,
            "--output",
            "/dev/null",
            "--save-snapshot",
            snapshot.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let inventory = fleetscope::snapshot::load(&snapshot)
            .unwrap()
            .into_inventory(self.lineage.clone());
        let eval = evaluate(&inventory, &PolicyConfig::default(), now());
        let mut queue = Queue::default();
        queue.add(ids.iter().map(|id| {
            let idx = inventory.instance_by_id(id).expect("collected");
            entry_for(&inventory, &eval, idx, now())
        }));
        queue
            .save(&self.path(self.ledger).join("queue.json"))
            .unwrap();
        queue
    }

    pub fn saved_queue(&self) -> Queue {
        Queue::load(&self.path(self.ledger).join("queue.json")).unwrap()
    }

    pub fn journal(&self) -> Vec<Record> {
        Journal::read(&self.path(self.ledger).join("journal.jsonl")).unwrap()
    }
}

/// Reads the pipe to its end on a thread of its own.
pub fn reader(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// Waits for the child until the deadline, then kills it and fails.
pub fn wait(child: &mut Child, args: &[&str], deadline: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("fleetscope {args:?} did not finish in {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
