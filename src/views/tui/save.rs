//! Queue changes reach the file off the UI loop: the UI changes its own copy at once and hands
//! the changes to a saver thread, which applies every change waiting for it in one
//! load-change-save under the queue lock (so what other processes changed meanwhile stays).

use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;

use tokio::sync::mpsc;

use crate::queue::{Queue, QueueEntry};

/// One change the operator made to the queue, replayed on the file as it is when saved.
#[derive(Debug, Clone, PartialEq)]
pub enum QueueChange {
    Add(Vec<QueueEntry>),
    Remove(Vec<String>),
}

impl QueueChange {
    pub fn apply(&self, queue: &mut Queue) {
        match self {
            QueueChange::Add(entries) => {
                queue.add(entries.iter().cloned());
            }
            QueueChange::Remove(ids) => {
                let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
                queue.remove(&ids);
            }
        }
    }
}

/// What a save did: how many batches it covered, the changes themselves (kept for the next
/// save when this one failed), and the queue as the file now holds it.
#[derive(Debug)]
pub struct Saved {
    pub batches: usize,
    pub changes: Vec<QueueChange>,
    pub result: Result<Queue, String>,
}

/// Applies `changes` to the queue file in one locked load-change-save; no change at all only
/// reads it (a refresh asking what the file holds now).
pub fn save(path: &Path, batches: usize, changes: Vec<QueueChange>) -> Saved {
    let result = if changes.is_empty() {
        Queue::load(path)
    } else {
        Queue::update(path, |queue| {
            for change in &changes {
                change.apply(queue);
            }
        })
        .map(|(queue, ())| queue)
    }
    .map_err(|e| e.0);
    Saved {
        batches,
        changes,
        result,
    }
}

/// The saver thread: batches sent while a save runs are saved together by the next one.
/// Dropping the sender ends the thread once it has saved what it was given.
pub fn start(
    path: PathBuf,
    done: mpsc::UnboundedSender<Saved>,
) -> std_mpsc::Sender<Vec<QueueChange>> {
    let (tx, rx) = std_mpsc::channel::<Vec<QueueChange>>();
    std::thread::spawn(move || {
        while let Ok(mut changes) = rx.recv() {
            let mut batches = 1;
            while let Ok(more) = rx.try_recv() {
                changes.extend(more);
                batches += 1;
            }
            if done.send(save(&path, batches, changes)).is_err() {
                return;
            }
        }
    });
    tx
}
