//! The fleet as it arrives: a first collection streams into the inventory on screen (evaluated
//! at a pace the runtime sets), a refresh collects into a new one shown when complete.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::core::event::CollectEvent;
use crate::core::inventory::Inventory;
use crate::core::lineage::LineageRules;
use crate::core::model::SourceStatus;
use crate::core::policy::PolicyConfig;
use crate::query::data::Data;

pub struct Fleet {
    rules: LineageRules,
    policy: PolicyConfig,
    /// Inventory being collected by a refresh; shown once complete.
    pending: Option<Inventory>,
    /// Pages of the first collection that arrived since the last evaluation.
    arrived: Vec<CollectEvent>,
    /// Inventory changed since the last evaluation.
    stale: bool,
    collecting: bool,
    /// False for a snapshot: there is nothing to collect again.
    live: bool,
    /// When each source finished or failed, as this UI saw it.
    source_ended: HashMap<String, DateTime<Utc>>,
    /// The first complete collection is to be saved as a snapshot.
    snapshot_wished: bool,
}

/// What the end of a collection did to the data on screen.
#[derive(Debug, PartialEq, Eq)]
pub enum Finished {
    /// A refresh's inventory replaced the shown one: indices into the old one mean nothing.
    Replaced,
    /// The streamed inventory was evaluated once more.
    Evaluated,
    /// Nothing arrived since the last evaluation.
    Unchanged,
}

impl Fleet {
    pub fn new(rules: LineageRules, policy: PolicyConfig, live: bool, collecting: bool) -> Fleet {
        Fleet {
            rules,
            policy,
            pending: None,
            arrived: Vec::new(),
            stale: false,
            collecting,
            live,
            source_ended: HashMap::new(),
            snapshot_wished: false,
        }
    }

    pub fn want_snapshot(&mut self) {
        self.snapshot_wished = true;
    }

    /// Whether this complete collection is the one to save; asked once.
    pub fn take_snapshot_wish(&mut self) -> bool {
        std::mem::take(&mut self.snapshot_wished)
    }

    pub fn policy(&self) -> &PolicyConfig {
        &self.policy
    }

    pub fn live(&self) -> bool {
        self.live
    }

    pub fn collecting(&self) -> bool {
        self.collecting
    }

    pub fn refreshing(&self) -> bool {
        self.pending.is_some()
    }

    pub fn needs_evaluation(&self) -> bool {
        self.stale
    }

    /// When a source finished or failed, if this UI saw it happen (not for a snapshot).
    pub fn source_ended(&self, source: &str) -> Option<DateTime<Utc>> {
        self.source_ended.get(source).copied()
    }

    /// The sources as they stand: those of a refresh in progress, else the shown inventory's.
    pub fn sources<'a>(&'a self, data: &'a Data) -> &'a [SourceStatus] {
        self.pending.as_ref().unwrap_or(&data.inventory).sources()
    }

    /// A refresh starts: collect into a new inventory while the old one stays on screen.
    pub fn start_refresh(&mut self) {
        self.pending = Some(Inventory::new(self.rules.clone()));
        self.collecting = true;
    }

    pub fn collected(&mut self, event: CollectEvent, data: &mut Data) {
        // When each source ended, for its detail: the events carry no time of their own.
        if let CollectEvent::Finished { source }
        | CollectEvent::Incomplete { source, .. }
        | CollectEvent::Failed { source, .. } = &event
        {
            self.source_ended.insert(source.clone(), Utc::now());
        }
        match &mut self.pending {
            Some(pending) => pending.apply(event),
            // Pages wait for the next evaluation: rows, verdicts and sort keys index the
            // inventory as it was evaluated, so it changes only together with them.
            None if matches!(event, CollectEvent::Page(_)) => {
                self.arrived.push(event);
                self.stale = true;
            }
            None => std::sync::Arc::make_mut(&mut data.inventory).apply(event),
        }
    }

    /// Every source has finished: a refresh's inventory replaces the shown one, or the streamed
    /// one is evaluated a last time.
    pub fn finished(&mut self, data: &mut Data, now: DateTime<Utc>) -> Finished {
        self.collecting = false;
        let finished = match self.pending.take() {
            Some(pending) => {
                *data = Data::new(pending, &self.policy, now);
                self.stale = false;
                Finished::Replaced
            }
            None if self.evaluate(data, now) => Finished::Evaluated,
            None => Finished::Unchanged,
        };
        // The fleet is complete: its free-text index is built now, while nobody types, rather
        // than on the first keystroke of a search.
        data.instance_search_text();
        finished
    }

    /// Evaluates again if the inventory changed; returns whether it did.
    pub fn evaluate(&mut self, data: &mut Data, now: DateTime<Utc>) -> bool {
        if !self.stale {
            return false;
        }
        let mut inventory = std::sync::Arc::unwrap_or_clone(std::mem::take(&mut data.inventory));
        for page in std::mem::take(&mut self.arrived) {
            inventory.apply(page);
        }
        *data = Data::new(inventory, &self.policy, now);
        self.stale = false;
        true
    }
}
