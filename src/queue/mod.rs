//! The replacement queue: instances an operator chose to replace, each with the strategy that
//! would replace it. Queueing changes nothing in any cloud; applying it (with confirmation) does.
//! Saved atomically in the user data directory on every change.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::core::inventory::{InstanceIdx, Inventory};
use crate::core::model::{Cloud, GroupKind};
use crate::core::policy::{Evaluation, TemplateStatus, Verdict};

pub mod apply;
pub mod journal;
pub mod rollout;

pub const QUEUE_VERSION: u32 = 1;

/// The largest queue file read: 100,000 entries take about 50 MiB.
pub const QUEUE_MAX_BYTES: u64 = 512 << 20;

/// How an instance would be replaced, decided when it is queued and checked again at apply time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Strategy {
    /// AWS Auto Scaling group member: terminate; the group launches a replacement from its
    /// template, which points at the golden image.
    AwsTerminateInGroup { group: String },
    /// Standalone AWS instance: launch a copy from the golden image, wait until it runs, then
    /// terminate the old one.
    AwsLaunchCopy,
    /// Azure scale-set member: upgrade to the latest scale-set model, which points at golden.
    AzureUpgradeToModel { group: String },
    /// GCP managed instance group member: recreate from the group's template.
    GcpRecreateInGroup { group: String },
    /// Nothing fleetscope can do safely; `why` says what to change first.
    NotExecutable { why: String },
}

impl Strategy {
    pub fn executable(&self) -> bool {
        !matches!(self, Strategy::NotExecutable { .. })
    }

    /// A short label for tables.
    pub fn label(&self) -> &'static str {
        match self {
            Strategy::AwsTerminateInGroup { .. } => "terminate, ASG replaces",
            Strategy::AwsLaunchCopy => "launch copy, then terminate",
            Strategy::AzureUpgradeToModel { .. } => "upgrade to scale-set model",
            Strategy::GcpRecreateInGroup { .. } => "recreate in MIG",
            Strategy::NotExecutable { .. } => "not executable",
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Strategy::NotExecutable { why } => format!("not executable: {why}"),
            // The calls, so a dry run's plan shows what would be sent.
            Strategy::AzureUpgradeToModel { group } => format!(
                "{} ({group}): updateInstances, then wait for provisioning and application health",
                self.label()
            ),
            Strategy::AwsTerminateInGroup { group } | Strategy::GcpRecreateInGroup { group } => {
                format!("{} ({group})", self.label())
            }
            Strategy::AwsLaunchCopy => self.label().to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEntry {
    pub instance_id: String,
    pub cloud: Cloud,
    /// The source that reported it (`aws:prod`): which credentials can act on it.
    #[serde(default)]
    pub source: String,
    pub account: String,
    pub region: String,
    #[serde(default)]
    pub name: String,
    /// The image it runs now.
    pub image: String,
    /// The golden image it should run, when the lineage has one.
    #[serde(default)]
    pub target_image: Option<String>,
    pub verdict: Verdict,
    pub reason: String,
    pub strategy: Strategy,
    pub queued_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Queue {
    pub version: u32,
    pub entries: Vec<QueueEntry>,
}

impl Default for Queue {
    fn default() -> Self {
        Queue {
            version: QUEUE_VERSION,
            entries: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct QueueError(pub String);

/// Where the queue and journal live: `FLEETSCOPE_DATA_DIR`, else the platform data directory.
pub fn data_dir() -> Result<PathBuf, QueueError> {
    if let Some(dir) = std::env::var_os("FLEETSCOPE_DATA_DIR") {
        return Ok(PathBuf::from(dir));
    }
    directories::ProjectDirs::from("", "", "fleetscope")
        .map(|d| d.data_dir().to_path_buf())
        .ok_or_else(|| QueueError("no home directory: set FLEETSCOPE_DATA_DIR".into()))
}

/// Makes the directory a data file goes in, private to the user.
fn create_parent(path: &Path) -> Result<(), QueueError> {
    match path.parent() {
        Some(dir) => crate::files::create_private_dir(dir)
            .map_err(|e| QueueError(format!("{}: cannot create: {e}", dir.display()))),
        None => Ok(()),
    }
}

/// A lock file, created if need be and never truncated; the caller takes the lock it wants.
fn open_lock_file(path: &Path) -> Result<std::fs::File, QueueError> {
    create_parent(path)?;
    crate::files::private_file()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| QueueError(format!("{}: cannot open: {e}", path.display())))
}

pub fn default_path() -> Result<PathBuf, QueueError> {
    Ok(apply::Paths::in_dir(&data_dir()?).queue)
}

impl Queue {
    /// Reads the queue; a missing file is an empty queue, a damaged one an error (never
    /// silently replaced, so no queued work is lost).
    pub fn load(path: &Path) -> Result<Queue, QueueError> {
        let name = path.display();
        let bytes = match crate::files::read_capped(path, QUEUE_MAX_BYTES) {
            Ok(bytes) => bytes,
            Err(e) if e.is_not_found() => return Ok(Queue::default()),
            Err(e) => return Err(QueueError(format!("{name}: cannot read queue: {e}"))),
        };
        let mut queue: Queue = serde_json::from_slice(&bytes)
            .map_err(|e| QueueError(format!("{name}: damaged queue file: {e}")))?;
        if queue.version != QUEUE_VERSION {
            return Err(QueueError(format!(
                "{name}: queue version {} is not supported (this fleetscope reads {QUEUE_VERSION})",
                queue.version
            )));
        }
        queue.dedupe();
        Ok(queue)
    }

    /// Keeps the first entry of each instance: an instance is queued once, so a file edited by
    /// hand (or merged) can never have it replaced twice.
    fn dedupe(&mut self) {
        let mut seen = std::collections::HashSet::new();
        self.entries.retain(|e| seen.insert(e.instance_id.clone()));
    }

    /// Renames a queue file that cannot be read to `queue.json.damaged-<time>`, under the queue
    /// lock, so the next change starts an empty queue and the old file stays for inspection.
    /// Returns where it went.
    pub fn move_aside(path: &Path) -> Result<PathBuf, QueueError> {
        let lock_path = path.with_extension("lock");
        let lock = open_lock_file(&lock_path)?;
        lock.lock()
            .map_err(|e| QueueError(format!("{}: cannot lock: {e}", lock_path.display())))?;
        let stamp = Utc::now().format("%Y%m%dT%H%M%SZ");
        let mut aside = path.as_os_str().to_owned();
        aside.push(format!(".damaged-{stamp}"));
        let aside = PathBuf::from(aside);
        std::fs::rename(path, &aside).map_err(|e| {
            QueueError(format!(
                "{}: cannot move it aside to {}: {e}",
                path.display(),
                aside.display()
            ))
        })?;
        drop(lock);
        Ok(aside)
    }

    /// Changes the queue on disk under the queue lock: loaded, changed and saved as one step,
    /// so a change made meanwhile by another process (an apply taking entries off, another UI)
    /// is kept, never undone. Returns the queue as saved.
    pub fn update<R>(
        path: &Path,
        change: impl FnOnce(&mut Queue) -> R,
    ) -> Result<(Queue, R), QueueError> {
        let lock_path = path.with_extension("lock");
        let lock = open_lock_file(&lock_path)?;
        lock.lock()
            .map_err(|e| QueueError(format!("{}: cannot lock: {e}", lock_path.display())))?;
        let mut queue = Queue::load(path)?;
        let result = change(&mut queue);
        queue.save(path)?;
        drop(lock);
        Ok((queue, result))
    }

    pub fn save(&self, path: &Path) -> Result<(), QueueError> {
        create_parent(path)?;
        crate::files::write_atomic(path, |w| {
            // Compact: a queue of 50,000 entries is read and written whole on every change.
            serde_json::to_writer(&mut *w, self).map_err(std::io::Error::other)?;
            w.write_all(b"\n")
        })
        .map_err(|e| QueueError(format!("{}: cannot write queue: {e}", path.display())))
    }

    /// The entries with a strategy that can be executed; the rollout's plan checks each
    /// against its source and cloud before anything is done.
    pub fn applicable(&self) -> impl Iterator<Item = &QueueEntry> {
        self.entries.iter().filter(|e| e.strategy.executable())
    }

    pub fn contains(&self, instance_id: &str) -> bool {
        self.entries.iter().any(|e| e.instance_id == instance_id)
    }

    /// Adds the instances not queued yet; returns how many were added.
    pub fn add(&mut self, entries: impl IntoIterator<Item = QueueEntry>) -> usize {
        let before = self.entries.len();
        // A set, not a scan per entry: bulk queueing adds tens of thousands at once.
        let mut queued: std::collections::HashSet<String> =
            self.entries.iter().map(|e| e.instance_id.clone()).collect();
        for entry in entries {
            if queued.insert(entry.instance_id.clone()) {
                self.entries.push(entry);
            }
        }
        self.entries.len() - before
    }

    /// Removes the given instances; returns how many were removed.
    pub fn remove(&mut self, instance_ids: &[&str]) -> usize {
        let before = self.entries.len();
        let gone: std::collections::HashSet<&str> = instance_ids.iter().copied().collect();
        self.entries
            .retain(|e| !gone.contains(e.instance_id.as_str()));
        before - self.entries.len()
    }
}

/// The queue entry for an instance, with the strategy that fits it now.
pub fn entry_for(
    inventory: &Inventory,
    eval: &Evaluation,
    instance: InstanceIdx,
    queued_at: DateTime<Utc>,
) -> QueueEntry {
    let record = inventory.instance(instance);
    let image_eval = eval.image_eval_of(inventory, instance);
    let target_image = image_eval
        .golden
        .map(|g| inventory.image(g).image.key.clone());
    QueueEntry {
        instance_id: record.id.to_string(),
        cloud: record.cloud,
        source: record.source.to_string(),
        account: record.account.to_string(),
        region: record.region.to_string(),
        name: record.name.to_string(),
        image: record.image.to_string(),
        target_image: target_image.clone(),
        verdict: image_eval.verdict,
        reason: if image_eval.reasons.is_empty() {
            "queued by hand".to_owned()
        } else {
            image_eval.reasons.join("; ")
        },
        strategy: strategy_for(inventory, eval, instance, target_image.as_deref()),
        queued_at,
    }
}

fn strategy_for(
    inventory: &Inventory,
    eval: &Evaluation,
    instance: InstanceIdx,
    target_image: Option<&str>,
) -> Strategy {
    let record = inventory.instance(instance);
    let not = |why: String| Strategy::NotExecutable { why };
    if target_image.is_none() {
        return not("its lineage has no golden image to replace it with".into());
    }
    if target_image == Some(record.image.as_str()) {
        return not("it already runs the golden image".into());
    }
    let Some(group_idx) = inventory.group_of(instance) else {
        return match record.cloud {
            Cloud::Aws => Strategy::AwsLaunchCopy,
            Cloud::Azure => not(
                "standalone Azure VM: rebuild it from the golden image in its own pipeline".into(),
            ),
            Cloud::Gcp => not(
                "standalone GCE instance: recreate it from the golden image in its own pipeline"
                    .into(),
            ),
        };
    };
    let group = inventory.group(group_idx);
    let Some(description) = &group.group else {
        return not(format!(
            "group {} was not described by its source",
            group.key
        ));
    };
    match &eval.group_eval(group_idx).template {
        TemplateStatus::Golden => {}
        TemplateStatus::Unresolved => {
            return not(format!(
                "the template of {} could not be resolved; check it points at the golden image",
                description.name
            ));
        }
        // A template step in the rollout points the group at the golden image first; the
        // plan says so, and without template updates it leaves the member queued.
        TemplateStatus::Drift { .. } => {}
    }
    let group_name = description.name.clone();
    match description.kind {
        GroupKind::Asg => Strategy::AwsTerminateInGroup { group: group_name },
        GroupKind::Vmss => Strategy::AzureUpgradeToModel { group: group_name },
        GroupKind::Mig => Strategy::GcpRecreateInGroup { group: group_name },
    }
}
