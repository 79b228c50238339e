//! The queue as this screen holds it: changed here at once, handed to the saver in batches, and
//! replaced by the file's queue whenever the file answers with nothing of ours on its way.

use std::collections::HashSet;

use super::save::{QueueChange, Saved};
use crate::queue::Queue;

pub struct QueueState {
    queue: Queue,
    /// Whether changes go to a file; without one the queue lives in memory only (tests).
    persisted: bool,
    /// The last save failed and none succeeded since: the queue's changes are only here.
    unsaved: bool,
    /// Changes not handed to the saver yet, and those a failed save gave back.
    pending: Vec<QueueChange>,
    failed: Vec<QueueChange>,
    /// Batches handed to the saver and not answered yet.
    in_flight: usize,
    /// The queue file cannot be read: the queue is off, and this says which file and what to do.
    disabled: Option<String>,
    queued: HashSet<String>,
    /// Queueing more instances than this at once asks first.
    pub confirm_over: usize,
}

/// What a save's answer means for the screen.
pub enum SaveOutcome {
    /// The file's queue is shown now; this says what others changed in it, if anything.
    Adopted(Option<String>),
    /// More is on its way: the screen keeps its own queue until the last answer.
    Waiting,
    /// The save failed; its changes are kept for the next one.
    Failed(String),
}

impl QueueState {
    pub fn new(queue: Queue, persisted: bool, confirm_over: usize) -> QueueState {
        let mut state = QueueState {
            queue,
            persisted,
            unsaved: false,
            pending: Vec::new(),
            failed: Vec::new(),
            in_flight: 0,
            disabled: None,
            queued: HashSet::new(),
            confirm_over,
        };
        state.reindex();
        state
    }

    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    pub fn queued(&self) -> &HashSet<String> {
        &self.queued
    }

    pub fn is_queued(&self, instance_id: &str) -> bool {
        self.queued.contains(instance_id)
    }

    pub fn disabled(&self) -> Option<&str> {
        self.disabled.as_deref()
    }

    pub fn disable(&mut self, why: String) {
        self.disabled = Some(why);
    }

    /// Queue changes live only in memory: the last save failed and none succeeded since.
    pub fn unsaved(&self) -> bool {
        self.unsaved
    }

    pub fn saves_in_flight(&self) -> usize {
        self.in_flight
    }

    /// Changes the queue here at once and keeps the change for the saver; returns how many
    /// entries it added or removed.
    pub fn change(&mut self, change: QueueChange) -> usize {
        let before = self.queue.entries.len();
        change.apply(&mut self.queue);
        let changed = self.queue.entries.len().abs_diff(before);
        if self.persisted && changed > 0 {
            self.pending.push(change);
        }
        self.reindex();
        changed
    }

    /// The changes to hand to the saver, if any; each call is one batch in flight. Those a
    /// failed save gave back go with the next new change, or when `retry` asks (at quit, before
    /// a plan reads the file).
    pub fn take_changes(&mut self, retry: bool) -> Option<Vec<QueueChange>> {
        let due = !self.pending.is_empty() || (retry && !self.failed.is_empty());
        if !self.persisted || !due {
            return None;
        }
        self.in_flight += 1;
        let mut changes = std::mem::take(&mut self.failed);
        changes.append(&mut self.pending);
        Some(changes)
    }

    /// A batch of no change, which the saver answers with the file as it is (Ctrl-r).
    pub fn reread(&mut self) -> Option<Vec<QueueChange>> {
        if !self.persisted {
            return None;
        }
        self.in_flight += 1;
        Some(Vec::new())
    }

    /// A save's answer. Once nothing else is on its way, the queue shown is the file's, with
    /// what other processes changed; a failed save keeps its changes for the next one.
    pub fn saved(&mut self, saved: Saved) -> SaveOutcome {
        self.in_flight = self.in_flight.saturating_sub(saved.batches);
        match saved.result {
            Ok(queue) => {
                self.unsaved = false;
                if self.in_flight == 0 && self.pending.is_empty() {
                    SaveOutcome::Adopted(self.adopt(queue))
                } else {
                    SaveOutcome::Waiting
                }
            }
            Err(error) => {
                self.unsaved = true;
                let mut changes = saved.changes;
                changes.append(&mut self.failed);
                self.failed = changes;
                SaveOutcome::Failed(format!(
                    "{error}: the queue's changes are kept here; the next change tries again"
                ))
            }
        }
    }

    /// Shows the queue as the file holds it; says what changed there that this screen did
    /// not do (another fleetscope queued, removed or applied), if anything did.
    pub fn adopt(&mut self, queue: Queue) -> Option<String> {
        let file: HashSet<&str> = queue
            .entries
            .iter()
            .map(|e| e.instance_id.as_str())
            .collect();
        let added = file.iter().filter(|id| !self.queued.contains(**id)).count();
        let gone = self
            .queued
            .iter()
            .filter(|id| !file.contains(id.as_str()))
            .count();
        self.queue = queue;
        self.reindex();
        let mut what = Vec::new();
        if gone > 0 {
            what.push(format!("{gone} taken off"));
        }
        if added > 0 {
            what.push(format!("{added} added"));
        }
        (!what.is_empty()).then(|| {
            format!(
                "the queue changed outside this screen: {}; {} queued now",
                what.join(", "),
                self.queue.entries.len()
            )
        })
    }

    fn reindex(&mut self) {
        self.queued = self
            .queue
            .entries
            .iter()
            .map(|e| e.instance_id.clone())
            .collect();
    }
}
