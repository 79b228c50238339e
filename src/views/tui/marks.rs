//! Marks: the instances and queue entries chosen for the next bulk action, kept by id so they
//! survive a refresh. The last clearing is kept until the next change, so one key undoes it.

use std::collections::HashSet;

use crate::core::inventory::{InstanceIdx, Inventory};

/// Which list a mark belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marked {
    Instances,
    Entries,
}

#[derive(Debug, Default)]
pub struct Marks {
    instances: HashSet<String>,
    entries: HashSet<String>,
    cleared: Option<(HashSet<String>, HashSet<String>)>,
    /// Marked instances the Instances filter or scope hides, counted when either changes.
    hidden: usize,
}

impl Marks {
    pub fn of(&self, which: Marked) -> &HashSet<String> {
        match which {
            Marked::Instances => &self.instances,
            Marked::Entries => &self.entries,
        }
    }

    fn of_mut(&mut self, which: Marked) -> &mut HashSet<String> {
        match which {
            Marked::Instances => &mut self.instances,
            Marked::Entries => &mut self.entries,
        }
    }

    pub fn contains(&self, which: Marked, id: &str) -> bool {
        self.of(which).contains(id)
    }

    pub fn toggle(&mut self, which: Marked, id: String) {
        let set = self.of_mut(which);
        if !set.remove(&id) {
            set.insert(id);
        }
        self.cleared = None;
    }

    /// Marks every id given, or unmarks them all when all are marked already; returns whether
    /// it marked.
    pub fn mark_all(&mut self, which: Marked, ids: &[&str]) -> bool {
        let set = self.of_mut(which);
        let all_marked = ids.iter().all(|id| set.contains(*id));
        if all_marked {
            for id in ids {
                set.remove(*id);
            }
        } else {
            set.extend(ids.iter().map(|id| (*id).to_owned()));
        }
        self.cleared = None;
        !all_marked
    }

    /// Clears every mark and keeps them for `undo_clear`; returns how many it cleared.
    pub fn clear(&mut self) -> usize {
        let count = self.instances.len() + self.entries.len();
        if count > 0 {
            self.cleared = Some((
                std::mem::take(&mut self.instances),
                std::mem::take(&mut self.entries),
            ));
            self.hidden = 0;
        }
        count
    }

    /// Brings back the marks the last clearing took (entries only while still queued);
    /// `None` when there are none.
    pub fn undo_clear(&mut self, queued: &HashSet<String>) -> Option<usize> {
        let (instances, entries) = self.cleared.take()?;
        let count = instances.len() + entries.len();
        self.instances.extend(instances);
        self.entries
            .extend(entries.into_iter().filter(|id| queued.contains(id)));
        Some(count)
    }

    /// Marks that were acted on are spent: they go without an undo.
    pub fn forget(&mut self) {
        *self = Marks::default();
    }

    /// Entries no longer queued lose their marks.
    pub fn keep_entries(&mut self, queued: &HashSet<String>) {
        self.entries.retain(|id| queued.contains(id));
    }

    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// Counts the marked instances that are not among `visible` rows (or no longer exist).
    pub fn recount_hidden(&mut self, inventory: &Inventory, visible: &[InstanceIdx]) {
        self.hidden = if self.instances.is_empty() {
            0
        } else {
            let mut shown = vec![false; inventory.instances().len()];
            for &i in visible {
                shown[i as usize] = true;
            }
            self.instances
                .iter()
                .filter(|id| {
                    inventory
                        .instance_by_id(id)
                        .is_none_or(|i| !shown[i as usize])
                })
                .count()
        };
    }

    /// The marked instances that still exist.
    pub fn instances_in(&self, inventory: &Inventory) -> Vec<InstanceIdx> {
        self.instances
            .iter()
            .filter_map(|id| inventory.instance_by_id(id))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clearing_comes_back_once_and_not_after_another_change() {
        let mut marks = Marks::default();
        marks.toggle(Marked::Instances, "i-1".into());
        marks.toggle(Marked::Entries, "i-2".into());
        assert_eq!(marks.clear(), 2);
        let queued: HashSet<String> = HashSet::new();
        assert_eq!(marks.undo_clear(&queued), Some(2));
        assert!(marks.contains(Marked::Instances, "i-1"));
        assert!(
            !marks.contains(Marked::Entries, "i-2"),
            "an entry no longer queued stays unmarked"
        );
        assert_eq!(marks.undo_clear(&queued), None);
        marks.clear();
        marks.toggle(Marked::Instances, "i-3".into());
        assert_eq!(marks.undo_clear(&queued), None, "a new mark ends the undo");
    }

    #[test]
    fn marking_all_twice_unmarks_them() {
        let mut marks = Marks::default();
        assert!(marks.mark_all(Marked::Instances, &["a", "b"]));
        assert!(!marks.mark_all(Marked::Instances, &["a", "b"]));
        assert!(marks.of(Marked::Instances).is_empty());
    }
}
