//! Applying the queue: one process at a time, each entry handed to its cloud's executor, every
//! step journaled before the next, the queue saved after each entry that is done.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

use super::journal::{self, Journal, Record, Step};
use super::{Queue, QueueEntry, QueueError};
use crate::core::model::Cloud;

/// Holds the apply lock while it lives; the operating system lets go of it if the process dies,
/// so a crash never leaves the queue locked.
pub struct ApplyLock {
    _file: File,
}

impl ApplyLock {
    pub fn acquire(path: &Path) -> Result<ApplyLock, QueueError> {
        let file = super::open_lock_file(path)?;
        match file.try_lock() {
            Ok(()) => Ok(ApplyLock { _file: file }),
            Err(TryLockError::WouldBlock) => Err(QueueError(format!(
                "another fleetscope is applying the queue ({} is locked)",
                path.display()
            ))),
            Err(TryLockError::Error(e)) => {
                Err(QueueError(format!("{}: cannot lock: {e}", path.display())))
            }
        }
    }
}

pub struct Paths {
    pub queue: PathBuf,
    pub journal: PathBuf,
    pub lock: PathBuf,
}

impl Paths {
    pub fn in_dir(dir: &Path) -> Paths {
        Paths {
            queue: dir.join("queue.json"),
            journal: dir.join("journal.jsonl"),
            lock: dir.join("apply.lock"),
        }
    }
}

/// How one entry ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    Replaced,
    /// It no longer applies; it leaves the queue.
    Skipped(String),
    /// A dry run found every step would be allowed.
    WouldSucceed,
}

/// What the cloud side of an apply must do; one implementation per cloud.
pub trait Executor {
    /// Replaces one instance, journaling each step; `progress` is where an interrupted earlier
    /// apply left it.
    fn replace(
        &mut self,
        entry: &QueueEntry,
        progress: journal::Progress,
        dry_run: bool,
        journal: &mut Journal,
    ) -> impl std::future::Future<Output = Result<Finish, String>>;
}

/// Stands for a cloud whose executor this build leaves out.
#[cfg(not(feature = "aws"))]
pub enum Unavailable {}

#[cfg(not(feature = "aws"))]
impl Executor for Unavailable {
    async fn replace(
        &mut self,
        _entry: &QueueEntry,
        _progress: journal::Progress,
        _dry_run: bool,
        _journal: &mut Journal,
    ) -> Result<Finish, String> {
        match *self {}
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub replaced: usize,
    pub skipped: usize,
    pub would_succeed: usize,
    pub failed: usize,
    pub not_executable: usize,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} replaced, {} skipped, {} would succeed, {} failed (still queued), {} not executable here",
            self.replaced, self.skipped, self.would_succeed, self.failed, self.not_executable
        )
    }
}

/// The executor for AWS entries, when this build has one.
#[cfg(feature = "aws")]
pub fn aws_executor(config: &crate::config::Config) -> Option<super::aws::AwsExecutor> {
    Some(super::aws::AwsExecutor::new(
        crate::sources::aws::Settings::from_config(config),
    ))
}

#[cfg(not(feature = "aws"))]
pub fn aws_executor(_config: &crate::config::Config) -> Option<Unavailable> {
    None
}

/// Applies the entries the operator confirmed (`confirmed`, by instance id) that are still
/// queued, each by its cloud's executor, reporting each as it ends. Entries queued since the
/// confirmation wait for the next one.
pub async fn apply(
    paths: &Paths,
    confirmed: &[String],
    mut aws: Option<&mut impl Executor>,
    dry_run: bool,
    mut report: impl FnMut(&QueueEntry, &str),
) -> Result<Summary, QueueError> {
    let _lock = ApplyLock::acquire(&paths.lock)?;
    let queue = Queue::load(&paths.queue)?;
    let records = Journal::read(&paths.journal)?;
    let mut journal = Journal::open(&paths.journal)?;
    let mut summary = Summary::default();
    for entry in queue
        .entries
        .into_iter()
        .filter(|e| confirmed.contains(&e.instance_id))
    {
        if !entry.strategy.executable() {
            summary.not_executable += 1;
            report(
                &entry,
                &format!("left queued: {}", entry.strategy.describe()),
            );
            continue;
        }
        let executor = match (entry.cloud, aws.as_mut()) {
            (Cloud::Aws, Some(executor)) => executor,
            (cloud, _) => {
                summary.not_executable += 1;
                report(
                    &entry,
                    &format!("left queued: this fleetscope cannot change {cloud} yet"),
                );
                continue;
            }
        };
        let progress = journal::progress_of(&records, &entry.instance_id);
        match executor
            .replace(&entry, progress, dry_run, &mut journal)
            .await
        {
            Ok(Finish::WouldSucceed) => {
                summary.would_succeed += 1;
                report(&entry, "dry run: every step would be allowed");
            }
            Ok(Finish::Skipped(why)) if dry_run => {
                summary.skipped += 1;
                report(
                    &entry,
                    &format!("dry run: would be taken off the queue: {why}"),
                );
            }
            Ok(finish) => {
                let message = match &finish {
                    Finish::Skipped(why) => {
                        summary.skipped += 1;
                        format!("skipped and taken off the queue: {why}")
                    }
                    _ => {
                        summary.replaced += 1;
                        "replaced".to_owned()
                    }
                };
                Queue::update(&paths.queue, |queue| {
                    queue.remove(&[entry.instance_id.as_str()])
                })?;
                report(&entry, &message);
            }
            Err(error) => {
                summary.failed += 1;
                journal.append(&Record {
                    at: chrono::Utc::now(),
                    instance_id: entry.instance_id.clone(),
                    step: Step::Failed {
                        error: error.clone(),
                    },
                    dry_run,
                })?;
                report(&entry, &format!("failed, left queued: {error}"));
            }
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_apply_is_refused_while_the_first_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("apply.lock");
        let held = ApplyLock::acquire(&path).unwrap();
        let error = ApplyLock::acquire(&path).err().unwrap();
        assert!(
            error.0.contains("another fleetscope is applying"),
            "{error}"
        );
        drop(held);
        assert!(ApplyLock::acquire(&path).is_ok());
    }
}
