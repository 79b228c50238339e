//! The apply as this screen follows it: planning, the confirmed rollout's waves and each
//! entry's phase, the stop, and the last apply's outcome, kept on screen until dismissed; and
//! why each entry's last attempt failed, from this screen's apply or from the journal (earlier
//! applies, other processes), which the runtime reads off the loop.

use std::collections::{HashMap, HashSet};

use crate::core::inventory::GroupIdx;
use crate::core::policy::TemplateStatus;
use crate::query::data::Data;
use crate::queue::journal::Failure;
use crate::queue::rollout::{self, Phase, Plan, RolloutEvent, TemplateStep};

/// How an apply that ran ended: its summary, and whether every confirmed entry went through
/// (no failure, no stop), so the screen can tell a clean end from one that needs a look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub summary: String,
    pub clean: bool,
}

#[derive(Default)]
pub struct RolloutState {
    /// `--read-only`: applying is refused.
    read_only: bool,
    /// Whether an apply makes template steps for groups in template drift.
    pub template_updates: bool,
    planning: bool,
    applying: bool,
    stopping: bool,
    /// Each entry's phase in the running (or last) rollout, by instance id.
    phases: HashMap<String, Phase>,
    /// The wave in progress, of how many.
    wave: Option<(usize, usize)>,
    /// The template steps of the apply running or last run, with their live step.
    template_steps: Vec<TemplateStep>,
    /// How the last apply ended, until the operator dismisses it.
    outcome: Option<Result<Ended, String>>,
    /// The journal's last failures, by instance id, as last read.
    journaled: HashMap<String, Failure>,
    /// Which entries count as failed changed since the app last asked.
    failures_changed: bool,
}

/// Why an entry's last attempt failed, and where that was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastFailure<'a> {
    /// In this screen's apply (running, or the last one).
    ThisApply(&'a str),
    /// In the journal: an earlier apply, or another process's.
    Journaled(&'a Failure),
}

impl LastFailure<'_> {
    pub fn error(&self) -> &str {
        match self {
            LastFailure::ThisApply(error) => error,
            LastFailure::Journaled(failure) => &failure.error,
        }
    }
}

/// Why an apply cannot be asked for now.
pub enum NotNow {
    ReadOnly,
    Applying,
    Planning,
}

impl RolloutState {
    pub fn new(read_only: bool, template_updates: bool) -> RolloutState {
        RolloutState {
            read_only,
            template_updates,
            ..RolloutState::default()
        }
    }

    pub fn read_only(&self) -> bool {
        self.read_only
    }

    pub fn applying(&self) -> bool {
        self.applying
    }

    pub fn wave(&self) -> Option<(usize, usize)> {
        self.wave
    }

    pub fn phase(&self, instance_id: &str) -> Option<&Phase> {
        self.phases.get(instance_id)
    }

    pub fn template_steps(&self) -> &[TemplateStep] {
        &self.template_steps
    }

    /// The last apply's outcome, until dismissed.
    pub fn outcome(&self) -> Option<&Result<Ended, String>> {
        self.outcome.as_ref()
    }

    pub fn dismiss_outcome(&mut self) -> bool {
        self.outcome.take().is_some()
    }

    /// Why the entry's last attempt failed, if it did: this screen's apply knows best while
    /// it has a phase for the entry (one it is retrying has not failed yet); an entry it never
    /// started keeps what the journal says.
    pub fn last_failure(&self, instance_id: &str) -> Option<LastFailure<'_>> {
        match self.phases.get(instance_id) {
            Some(Phase::Failed(error)) => Some(LastFailure::ThisApply(error)),
            None | Some(Phase::NotStarted(_)) => {
                self.journaled.get(instance_id).map(LastFailure::Journaled)
            }
            Some(_) => None,
        }
    }

    /// The ids whose last attempt failed (the Queue view's `failed`).
    pub fn failed_ids(&self) -> HashSet<String> {
        self.phases
            .keys()
            .chain(self.journaled.keys())
            .filter(|id| self.last_failure(id).is_some())
            .cloned()
            .collect()
    }

    /// Whether `failed_ids` changed since the last call.
    pub fn take_failures_changed(&mut self) -> bool {
        std::mem::take(&mut self.failures_changed)
    }

    /// The journal as just read: its last failure per entry.
    pub fn journal_read(&mut self, failures: HashMap<String, Failure>) {
        if self.journaled != failures {
            self.journaled = failures;
            self.failures_changed = true;
        }
    }

    /// Starts planning, unless an apply cannot be asked for now.
    pub fn start_planning(&mut self) -> Result<(), NotNow> {
        if self.read_only {
            return Err(NotNow::ReadOnly);
        }
        if self.applying {
            return Err(NotNow::Applying);
        }
        if self.planning {
            return Err(NotNow::Planning);
        }
        self.planning = true;
        Ok(())
    }

    pub fn planned(&mut self) {
        self.planning = false;
    }

    /// Why a plan with no replacement in it has nothing to do (the worker journaled the
    /// entries that could not be checked); `None` when it has something.
    pub fn nothing_to_apply(plan: &Plan) -> Option<String> {
        if plan.entries() > 0 {
            return None;
        }
        Some(match (plan.unchecked.first(), plan.left.first()) {
            (Some((entry, error)), _) => format!(
                "nothing to apply: {} could not be checked ({}: {error})",
                plan.unchecked.len(),
                entry.instance_id
            ),
            (None, Some((entry, why))) => format!(
                "nothing to apply: all {} left queued ({}: {why})",
                plan.left.len(),
                entry.instance_id
            ),
            (None, None) => "nothing to apply: the queue is empty".to_owned(),
        })
    }

    /// The operator confirmed `plan`: it runs now.
    pub fn confirmed(&mut self, plan: &Plan) {
        self.applying = true;
        self.stopping = false;
        self.template_steps = plan.templates.clone();
        self.failures_changed |= !self.phases.is_empty();
        self.phases.clear();
        self.wave = None;
        self.outcome = None;
    }

    /// Asks the running apply to stop; false when none runs or it is already stopping.
    pub fn stop(&mut self) -> bool {
        if !self.applying || self.stopping {
            return false;
        }
        self.stopping = true;
        true
    }

    /// Follows the rollout; returns what to say, if anything, and whether it is a failure.
    pub fn follow(&mut self, event: RolloutEvent) -> Option<(String, bool)> {
        match event {
            RolloutEvent::Planned(plan) => Some((
                format!(
                    "rollout: {} in {}",
                    rollout::count(plan.entries(), "replacement"),
                    rollout::count(plan.waves.len(), "wave")
                ),
                false,
            )),
            RolloutEvent::WaveStarted { wave, of } => {
                self.wave = Some((wave, of));
                Some((format!("wave {wave} of {of} started"), false))
            }
            RolloutEvent::Phase { instance_id, phase } => {
                let said = match &phase {
                    Phase::Failed(error) => Some((format!("{instance_id}: {error}"), true)),
                    _ => None,
                };
                let failed = self.last_failure(&instance_id).is_some();
                self.phases.insert(instance_id.clone(), phase);
                self.failures_changed |= failed != self.last_failure(&instance_id).is_some();
                said
            }
        }
    }

    /// The apply ended; its outcome stays on screen until dismissed.
    pub fn finished(&mut self, outcome: Result<Ended, String>) {
        self.applying = false;
        self.stopping = false;
        self.outcome = Some(outcome);
    }

    /// What an apply will do first for a group in template drift, said when its members are
    /// queued.
    pub fn template_note(&self, data: &Data, group: GroupIdx) -> Option<String> {
        let TemplateStatus::Drift { golden, .. } = &data.eval.group_eval(group).template else {
            return None;
        };
        let label = data.group_label(group);
        let golden = golden
            .as_deref()
            .map_or("the golden image", |g| data.image_label_of(g));
        Some(if self.template_updates {
            format!("; the apply first points {label} at {golden} (a template step)")
        } else {
            format!("; template updates are off: point {label} at {golden} first")
        })
    }
}
