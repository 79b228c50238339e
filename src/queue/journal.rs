//! The append-only journal of every step applied to any cloud, one JSON record a line, synced
//! to disk before the next step starts. It is the memory that lets an interrupted apply resume
//! without repeating what was done: a launched replacement is never launched twice.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::QueueError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// The plan was checked against the cloud as it is now.
    Checked,
    /// A replacement instance was launched.
    Launched { new_instance: String },
    /// The replacement is running.
    Running { new_instance: String },
    /// The replacement passed its health gate (status checks, target health).
    Healthy { new_instance: String },
    /// The replacement was registered in the old instance's load balancer target groups.
    Registered { new_instance: String },
    /// The old instance is being taken out of its target groups.
    Draining,
    /// The old instance was terminated (recreated, upgraded); its group brings a replacement.
    Terminated,
    /// The replacement is in place and healthy: the entry is done.
    Replaced,
    /// The step could not be taken; the entry stays queued.
    Failed { error: String },
    /// The entry no longer applies (already gone, template drifted since): it leaves the queue.
    Skipped { why: String },
    /// The rollout stopped (asked to, or on failure) with entries never started.
    Stopped { why: String, not_started: usize },
}

impl Step {
    /// The phase an entry is in once this step is journaled.
    pub fn phase(&self) -> Option<super::rollout::Phase> {
        use super::rollout::Phase;
        Some(match self {
            Step::Checked => Phase::Checking,
            Step::Launched { .. } => Phase::Launching,
            Step::Running { .. } | Step::Registered { .. } => Phase::WaitingHealthy,
            Step::Healthy { .. } => Phase::Healthy,
            Step::Draining => Phase::Draining,
            Step::Terminated => Phase::Terminating,
            Step::Replaced => Phase::Replaced,
            Step::Skipped { why } => Phase::Skipped(why.clone()),
            Step::Failed { .. } | Step::Stopped { .. } => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub at: DateTime<Utc>,
    pub instance_id: String,
    #[serde(flatten)]
    pub step: Step,
    /// Steps of a dry run changed nothing; resuming ignores them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

pub struct Journal {
    path: PathBuf,
    file: File,
}

impl Journal {
    pub fn open(path: &Path) -> Result<Journal, QueueError> {
        super::create_parent(path)?;
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(|e| QueueError(format!("{}: cannot open journal: {e}", path.display())))?;
        // A record torn by a crash must not swallow the next one: end its line first.
        let torn = (|| -> std::io::Result<bool> {
            use std::io::{Read, Seek, SeekFrom};
            if file.metadata()?.len() == 0 {
                return Ok(false);
            }
            file.seek(SeekFrom::End(-1))?;
            let mut last = [0u8; 1];
            file.read_exact(&mut last)?;
            Ok(last[0] != b'\n')
        })()
        .map_err(|e| QueueError(format!("{}: cannot read journal: {e}", path.display())))?;
        if torn {
            file.write_all(b"\n").map_err(|e| {
                QueueError(format!("{}: cannot write journal: {e}", path.display()))
            })?;
        }
        Ok(Journal {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Appends one record as one write, then syncs: after a crash the record is there whole or,
    /// at worst, a torn last line that `read` skips.
    pub fn append(&mut self, record: &Record) -> Result<(), QueueError> {
        let mut line = serde_json::to_vec(record).map_err(|e| QueueError(e.to_string()))?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| {
                QueueError(format!(
                    "{}: cannot write journal: {e}",
                    self.path.display()
                ))
            })
    }

    /// Every readable record, oldest first.
    pub fn read(path: &Path) -> Result<Vec<Record>, QueueError> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(QueueError(format!(
                    "{}: cannot read journal: {e}",
                    path.display()
                )));
            }
        };
        let mut records = Vec::new();
        for line in BufReader::new(file).lines() {
            let line = line
                .map_err(|e| QueueError(format!("{}: cannot read journal: {e}", path.display())))?;
            // A line cut short by a crash mid-write says nothing reliable; skip it.
            if let Ok(record) = serde_json::from_str::<Record>(&line) {
                records.push(record);
            }
        }
        Ok(records)
    }
}

/// Where an interrupted replacement of one instance stands, from its real (not dry-run) records
/// since it was last finished.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Progress {
    /// A replacement launched earlier, to reuse rather than launch again.
    pub launched: Option<String>,
    /// The replacement was already registered in the old instance's target groups.
    pub registered: bool,
    /// The old instance was already taken out of its target groups.
    pub drained: bool,
    /// The old instance was already terminated: only the wait for health is left.
    pub terminated: bool,
}

pub fn progress_of(records: &[Record], instance_id: &str) -> Progress {
    let mut progress = Progress::default();
    for record in records
        .iter()
        .filter(|r| r.instance_id == instance_id && !r.dry_run)
    {
        match &record.step {
            Step::Launched { new_instance }
            | Step::Running { new_instance }
            | Step::Healthy { new_instance } => {
                progress.launched = Some(new_instance.clone());
            }
            Step::Registered { new_instance } => {
                progress.launched = Some(new_instance.clone());
                progress.registered = true;
            }
            Step::Draining => progress.drained = true,
            Step::Terminated => progress.terminated = true,
            Step::Replaced | Step::Skipped { .. } => progress = Progress::default(),
            Step::Checked | Step::Failed { .. } | Step::Stopped { .. } => {}
        }
    }
    progress
}

/// An instance replaced for real, as the journal tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replacement {
    /// The instance that took its place, when the executor named one.
    pub new_instance: Option<String>,
    pub at: DateTime<Utc>,
}

/// Every instance the journal says was replaced (dry runs aside), by its id.
pub fn replacements(records: &[Record]) -> std::collections::HashMap<String, Replacement> {
    let mut named: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    let mut done = std::collections::HashMap::new();
    for record in records.iter().filter(|r| !r.dry_run) {
        match &record.step {
            Step::Launched { new_instance }
            | Step::Running { new_instance }
            | Step::Healthy { new_instance }
            | Step::Registered { new_instance } => {
                named.insert(&record.instance_id, new_instance);
            }
            Step::Replaced => {
                done.insert(
                    record.instance_id.clone(),
                    Replacement {
                        new_instance: named
                            .get(record.instance_id.as_str())
                            .map(|n| n.to_string()),
                        at: record.at,
                    },
                );
            }
            _ => {}
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, step: Step, dry_run: bool) -> Record {
        Record {
            at: DateTime::UNIX_EPOCH,
            instance_id: id.into(),
            step,
            dry_run,
        }
    }

    #[test]
    fn records_round_trip_and_a_torn_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let mut journal = Journal::open(&path).unwrap();
        let launched = record(
            "i-1",
            Step::Launched {
                new_instance: "i-2".into(),
            },
            false,
        );
        journal.append(&launched).unwrap();
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"at\":\"2026-").unwrap();
        assert_eq!(Journal::read(&path).unwrap(), vec![launched.clone()]);
        // The next apply's first record still stands on its own line.
        let replaced = record("i-1", Step::Replaced, false);
        Journal::open(&path).unwrap().append(&replaced).unwrap();
        assert_eq!(Journal::read(&path).unwrap(), vec![launched, replaced]);
    }

    #[test]
    fn progress_resumes_from_real_steps_only() {
        let launched = |id: &str| Step::Launched {
            new_instance: id.into(),
        };
        let records = vec![
            record("i-1", launched("i-dry"), true),
            record("i-1", launched("i-2"), false),
            record("i-other", Step::Replaced, false),
        ];
        assert_eq!(
            progress_of(&records, "i-1"),
            Progress {
                launched: Some("i-2".into()),
                ..Progress::default()
            }
        );
        let mut done = records.clone();
        done.push(record("i-1", Step::Replaced, false));
        assert_eq!(progress_of(&done, "i-1"), Progress::default());
        assert_eq!(progress_of(&records, "i-3"), Progress::default());
    }
}
