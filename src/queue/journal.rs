//! The append-only journal of every step applied to any cloud, one JSON record a line, synced
//! to disk before the next step starts. It is the memory that lets an interrupted apply resume
//! without repeating what was done: a launched replacement is never launched twice.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::QueueError;

/// The largest journal read: each replacement adds a few records of about 150 bytes.
pub const JOURNAL_MAX_BYTES: u64 = 1 << 30;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// The plan was checked against the cloud as it is now.
    Checked,
    /// A call that changes the cloud is about to be sent. Its outcome step follows once the
    /// cloud answered; an intent with no outcome (a crash, a lost answer) is checked against the
    /// cloud on resume, never sent again blind.
    Intent { call: Call },
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
    /// A template step made what its group will launch: a launch template version, a launch
    /// configuration, an instance template or a scale-set model, named in `template`.
    /// Journaled under the group's key, not an instance's.
    TemplateCreated { template: String },
    /// The group now launches `template`: the template step is done.
    GroupPointed { template: String },
}

/// A call that changes a cloud, as journaled before it is sent; each cloud's executor maps its
/// own API calls onto these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Call {
    /// Launch a replacement (AWS `RunInstances`); outcome: `Launched`.
    Launch,
    /// Register the replacement in the old instance's target groups; outcome: `Registered`.
    Register,
    /// Take the old instance out of its target groups; outcome: `Draining`.
    Deregister,
    /// Terminate, recreate or upgrade the old instance; outcome: `Terminated`.
    Terminate,
    /// Create the template a group will launch from; outcome: `TemplateCreated`.
    CreateTemplate,
    /// Point the group at that template; outcome: `GroupPointed`.
    PointGroup,
}

impl Call {
    /// Whether `step` is this call's outcome.
    fn answered_by(self, step: &Step) -> bool {
        matches!(
            (self, step),
            (Call::Launch, Step::Launched { .. })
                | (Call::Register, Step::Registered { .. })
                | (Call::Deregister, Step::Draining)
                | (Call::Terminate, Step::Terminated)
                | (Call::CreateTemplate, Step::TemplateCreated { .. })
                | (Call::PointGroup, Step::GroupPointed { .. })
        )
    }
}

impl Step {
    /// Whether the entry is done for good once this step is journaled: replaced, or no longer
    /// applying. No queue file can bring it back to life.
    pub fn is_final(&self) -> bool {
        matches!(self, Step::Replaced | Step::Skipped { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub at: DateTime<Utc>,
    pub instance_id: String,
    /// When the entry this step served was queued: with the instance id, it names the queue
    /// entry, so a final step ends that entry and no later one (an Azure VM keeps its id
    /// through an upgrade and may be queued again). Absent in older journals and on stops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued_at: Option<DateTime<Utc>>,
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
        let mut file = crate::files::private_file()
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
        let file = match crate::files::open_regular(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(QueueError(format!(
                    "{}: cannot read journal: {e}",
                    path.display()
                )));
            }
        };
        let too_big = || {
            let cap = crate::files::size(JOURNAL_MAX_BYTES);
            QueueError(format!(
                "{}: the journal is larger than {cap}; move it aside when no apply is running or interrupted",
                path.display()
            ))
        };
        if file.metadata().map_or(0, |m| m.len()) > JOURNAL_MAX_BYTES {
            return Err(too_big());
        }
        let mut records = Vec::new();
        let mut lines = BufReader::new(file.take(JOURNAL_MAX_BYTES + 1));
        for line in lines.by_ref().lines() {
            let line = line
                .map_err(|e| QueueError(format!("{}: cannot read journal: {e}", path.display())))?;
            // A line cut short by a crash mid-write says nothing reliable; skip it.
            if let Ok(record) = serde_json::from_str::<Record>(&line) {
                records.push(record);
            }
        }
        // It grew past the cap while being read.
        if lines.into_inner().limit() == 0 {
            return Err(too_big());
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
    /// A call journaled as about to be sent whose outcome never was: it may or may not have
    /// reached the cloud, which the executor must ask before sending anything.
    pub unanswered: Option<Call>,
    /// For a template step: the template an earlier apply created, to use rather than create.
    pub template_created: Option<String>,
}

impl Progress {
    /// Whether `call` was journaled as sent without its outcome.
    pub fn sent_unanswered(&self, call: Call) -> bool {
        self.unanswered == Some(call)
    }
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
            Step::TemplateCreated { template } => {
                progress.template_created = Some(template.clone());
            }
            // A group pointed is a template step done: the next one starts afresh.
            Step::Replaced | Step::Skipped { .. } | Step::GroupPointed { .. } => {
                progress = Progress::default();
            }
            // A failure says nothing of whether the call reached the cloud (a timeout may
            // follow a call that did): the intent stays unanswered.
            Step::Intent { .. } | Step::Checked | Step::Failed { .. } | Step::Stopped { .. } => {}
        }
        match (&record.step, progress.unanswered) {
            (Step::Intent { call }, _) => progress.unanswered = Some(*call),
            (step, Some(call)) if call.answered_by(step) || step.is_final() => {
                progress.unanswered = None;
            }
            _ => {}
        }
    }
    progress
}

/// The final step journaled for this queue entry (the same instance, queued at the same
/// time), if there is one: the entry is done whatever the queue file says.
pub fn finished<'a>(
    records: &'a [Record],
    instance_id: &str,
    queued_at: DateTime<Utc>,
) -> Option<&'a Record> {
    records.iter().rev().find(|r| {
        !r.dry_run
            && r.step.is_final()
            && r.instance_id == instance_id
            && match r.queued_at {
                Some(at) => at == queued_at,
                // An older journal's record: final for the entry queued before it.
                None => r.at >= queued_at,
            }
    })
}

/// Per queue entry still waiting (by instance id), why its last attempt failed, if it did:
/// the last record for the entry is a failure.
pub fn last_failures(records: &[Record]) -> std::collections::HashMap<&str, &str> {
    last_failed(records)
        .into_iter()
        .filter_map(|(id, record)| match &record.step {
            Step::Failed { error } => Some((id, error.as_str())),
            _ => None,
        })
        .collect()
}

/// Why an entry's last attempt failed, and when that was journaled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub at: DateTime<Utc>,
    pub error: String,
}

/// [`last_failures`], owned and with the time of each failure: what the UI is handed after
/// reading the journal off its loop.
pub fn failures(records: &[Record]) -> std::collections::HashMap<String, Failure> {
    last_failed(records)
        .into_iter()
        .filter_map(|(id, record)| match &record.step {
            Step::Failed { error } => Some((
                id.to_owned(),
                Failure {
                    at: record.at,
                    error: error.clone(),
                },
            )),
            _ => None,
        })
        .collect()
}

/// Per instance id, its last real record when that is a failure; a stop says nothing of any
/// one entry and leaves its last record as it was.
fn last_failed(records: &[Record]) -> std::collections::HashMap<&str, &Record> {
    let mut last = std::collections::HashMap::new();
    for record in records
        .iter()
        .filter(|r| !r.dry_run && !r.instance_id.is_empty())
    {
        match &record.step {
            Step::Failed { .. } => {
                last.insert(record.instance_id.as_str(), record);
            }
            Step::Stopped { .. } => {}
            _ => {
                last.remove(record.instance_id.as_str());
            }
        }
    }
    last
}

const TEMPLATE_PREFIX: &str = "template ";

/// The name a group's template step is journaled under, where an instance's id would be.
pub fn template_id(group: &str) -> String {
    format!("{TEMPLATE_PREFIX}{group}")
}

/// The groups whose template steps were done for real, by their keys.
pub fn pointed_groups(records: &[Record]) -> std::collections::HashSet<String> {
    records
        .iter()
        .filter(|r| !r.dry_run && matches!(r.step, Step::GroupPointed { .. }))
        .filter_map(|r| {
            r.instance_id
                .strip_prefix(TEMPLATE_PREFIX)
                .map(str::to_owned)
        })
        .collect()
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
    use std::fs::OpenOptions;

    use super::*;

    fn record(id: &str, step: Step, dry_run: bool) -> Record {
        Record {
            at: DateTime::UNIX_EPOCH,
            instance_id: id.into(),
            queued_at: None,
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

    #[test]
    fn an_intent_stays_unanswered_until_its_outcome_whatever_fails_between() {
        let intent = |call| Step::Intent { call };
        let mut records = vec![
            record("i-1", intent(Call::Launch), false),
            record(
                "i-1",
                Step::Launched {
                    new_instance: "i-2".into(),
                },
                false,
            ),
            record("i-1", intent(Call::Terminate), false),
            record(
                "i-1",
                Step::Failed {
                    error: "timed out".into(),
                },
                false,
            ),
        ];
        let progress = progress_of(&records, "i-1");
        assert!(progress.sent_unanswered(Call::Terminate), "{progress:?}");
        assert!(!progress.terminated);
        assert_eq!(progress.launched.as_deref(), Some("i-2"));
        records.push(record("i-1", Step::Terminated, false));
        let progress = progress_of(&records, "i-1");
        assert_eq!((progress.unanswered, progress.terminated), (None, true));
        // A dry run's intent is no intent.
        let dry = vec![record("i-1", intent(Call::Terminate), true)];
        assert_eq!(progress_of(&dry, "i-1").unanswered, None);
    }

    #[test]
    fn the_last_failure_of_each_entry_is_kept_with_its_time() {
        let failed = |id: &str, error: &str, secs: i64| Record {
            at: DateTime::UNIX_EPOCH + chrono::Duration::seconds(secs),
            ..record(
                id,
                Step::Failed {
                    error: error.into(),
                },
                false,
            )
        };
        let records = vec![
            failed("i-1", "first", 1),
            failed("i-1", "second", 2),
            failed("i-2", "gone by now", 3),
            record("i-2", Step::Checked, false),
            failed("i-3", "a dry run's", 4),
            record(
                "",
                Step::Stopped {
                    why: "asked".into(),
                    not_started: 1,
                },
                false,
            ),
        ];
        let mut dry = records.clone();
        dry[4].dry_run = true;
        let found = failures(&dry);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            found["i-1"],
            Failure {
                at: DateTime::UNIX_EPOCH + chrono::Duration::seconds(2),
                error: "second".into()
            }
        );
        assert_eq!(last_failures(&dry), [("i-1", "second")].into());
    }

    #[test]
    fn a_final_step_ends_its_own_queue_entry_and_no_later_one() {
        let queued = DateTime::UNIX_EPOCH + chrono::Duration::seconds(10);
        let requeued = queued + chrono::Duration::days(30);
        let replaced = Record {
            queued_at: Some(queued),
            ..record("vm-1", Step::Replaced, false)
        };
        let records = vec![replaced.clone()];
        assert_eq!(finished(&records, "vm-1", queued), Some(&replaced));
        assert_eq!(
            finished(&records, "vm-1", requeued),
            None,
            "queued again later"
        );
        assert_eq!(finished(&records, "vm-2", queued), None);
        let dry = vec![Record {
            dry_run: true,
            ..replaced.clone()
        }];
        assert_eq!(finished(&dry, "vm-1", queued), None);
        // A record from before entries were named: final for what was queued before it.
        let old = vec![Record {
            at: queued + chrono::Duration::seconds(1),
            ..record("vm-1", Step::Replaced, false)
        }];
        assert!(finished(&old, "vm-1", queued).is_some());
        assert!(finished(&old, "vm-1", requeued).is_none());
    }
}
