//! Where an apply keeps its state, and the lock that keeps two applies apart. The rollout
//! itself is in `rollout`.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

use super::QueueError;

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

#[derive(Debug, Clone)]
pub struct Paths {
    pub queue: PathBuf,
    pub journal: PathBuf,
    pub lock: PathBuf,
}

impl Paths {
    /// A fleet's queue, journal and lock: the demo's apart from the configured clouds', so
    /// nothing queued in the demo can ever reach a cloud.
    pub fn for_fleet(data_dir: &Path, demo: bool) -> Paths {
        if demo {
            Paths::in_dir(&data_dir.join("demo"))
        } else {
            Paths::in_dir(data_dir)
        }
    }

    pub fn in_dir(dir: &Path) -> Paths {
        Paths {
            queue: dir.join("queue.json"),
            journal: dir.join("journal.jsonl"),
            lock: dir.join("apply.lock"),
        }
    }
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
