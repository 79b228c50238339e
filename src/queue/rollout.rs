//! An apply is a rollout, never a loop of terminations: the confirmed entries become waves (per
//! group at most `max_unavailable` members at once, standalone instances at most `max_parallel`),
//! each replacement holds its slot until the cloud says its replacement is healthy, the first
//! failure (past `max_failures`) starts nothing new, and a stop request lets in-flight steps
//! finish. Executors are known only through the [`Executor`] trait; the wiring picks one per
//! source.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use futures::future::BoxFuture;
use tokio::sync::{mpsc, watch};

use super::apply::{ApplyLock, Paths};
use super::journal::{self, Journal, Progress, Record, Step};
use super::{Queue, QueueEntry, QueueError};

/// How many members of one group may be out at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxUnavailable {
    Percent(u32),
    Count(u32),
}

impl MaxUnavailable {
    pub fn parse(text: &str) -> Result<MaxUnavailable, String> {
        let text = text.trim();
        let bad =
            || format!("{text:?} is neither a share such as \"10%\" nor a count such as \"2\"");
        match text.strip_suffix('%') {
            Some(percent) => match percent.trim().parse::<u32>() {
                Ok(p) if (1..=100).contains(&p) => Ok(MaxUnavailable::Percent(p)),
                _ => Err(bad()),
            },
            None => match text.parse::<u32>() {
                Ok(n) if n >= 1 => Ok(MaxUnavailable::Count(n)),
                _ => Err(bad()),
            },
        }
    }

    /// Members of a group with this desired capacity that may be out at once: at least 1.
    pub fn of(self, desired: u32) -> usize {
        let n = match self {
            MaxUnavailable::Percent(p) => desired.saturating_mul(p) / 100,
            MaxUnavailable::Count(n) => n,
        };
        n.max(1) as usize
    }
}

/// The rollout's knobs, from `[rollout]`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub max_unavailable: MaxUnavailable,
    pub max_parallel: usize,
    pub pause: Duration,
    pub max_failures: usize,
    pub health_timeout: Duration,
    pub poll: Duration,
    /// Whether a group in template drift gets a template step (`rollout.update_templates`,
    /// `--no-template-updates`); without it, its members are left queued.
    pub update_templates: bool,
}

impl Default for Settings {
    /// The defaults `[rollout]` documents; the config builds its own from these.
    fn default() -> Self {
        Settings {
            max_unavailable: MaxUnavailable::Percent(10),
            max_parallel: 5,
            pause: Duration::ZERO,
            max_failures: 0,
            health_timeout: Duration::from_secs(900),
            poll: Duration::from_secs(10),
            update_templates: true,
        }
    }
}

impl std::fmt::Display for MaxUnavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MaxUnavailable::Percent(p) => write!(f, "{p}%"),
            MaxUnavailable::Count(n) => write!(f, "{n}"),
        }
    }
}

/// An entry as its executor found it live, before the plan is made.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inspection {
    /// The group it is a member of (a key unique across sources) and that group's desired
    /// capacity now; `None` for a standalone instance.
    pub group: Option<GroupCapacity>,
    /// Why it cannot be replaced now; `None` when it can.
    pub blocked: Option<String>,
    /// Its group launches another image than the golden one, and this template step would fix
    /// that. With template updates off, the entry is left queued with the step's `drift`.
    pub template: Option<TemplateStep>,
}

/// A change to what a group launches, made once before its members roll: the group then
/// launches the golden image. Everything else about the template stays as it was, and the old
/// template is never deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateStep {
    /// The group's key, as in [`GroupCapacity::key`].
    pub group: String,
    /// For the plan: "point web-asg at ami-… (launch template web-lt: a new version from
    /// version 1, the group names $Default)".
    pub describe: String,
    /// Why the group's members cannot be replaced without it (today's refusal).
    pub drift: String,
}

/// What a template step left: what the group launches now, and how to point it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateDone {
    /// "launch template web-lt version 4".
    pub now: String,
    /// A command that points the group back at what it launched before.
    pub revert: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupCapacity {
    pub key: String,
    pub desired: u32,
}

/// How one entry ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    Replaced,
    /// It no longer applies (already gone): it leaves the queue.
    Skipped(String),
    /// A dry run found every step would be allowed.
    WouldSucceed,
}

/// The cloud side of an apply; one implementation per cloud, plus the demo's simulation.
/// Futures are boxed so the wiring can choose an executor per source at run time.
pub trait Executor: Send + Sync {
    /// Looks at the instance and its group as they are now, for the plan. Changes nothing.
    fn inspect<'a>(&'a self, entry: &'a QueueEntry) -> BoxFuture<'a, Result<Inspection, String>>;

    /// Replaces one instance and returns once its replacement is healthy (or the dry run has
    /// validated every call). Every step goes through `steps`, which journals it.
    fn replace<'a>(
        &'a self,
        entry: &'a QueueEntry,
        steps: &'a Steps,
    ) -> BoxFuture<'a, Result<Finish, String>>;

    /// Carries out a template step for the group of `member` (one of its queued members): the
    /// group launches the member's target image afterwards. Every call that changes the cloud
    /// goes through `steps` as an intent first; a resumed step finds what an earlier apply made
    /// and never makes it twice. A dry run checks and changes nothing.
    fn update_template<'a>(
        &'a self,
        member: &'a QueueEntry,
        step: &'a TemplateStep,
        steps: &'a Steps,
    ) -> BoxFuture<'a, Result<TemplateDone, String>>;
}

/// Picks the executor for an entry by the source it was queued from.
pub trait Executors: Send + Sync {
    /// The executor, or why there is none ("source aws:prod is not configured").
    fn for_entry(&self, entry: &QueueEntry) -> Result<&dyn Executor, String>;
}

/// Where an entry stands, as shown live in the Queue view and on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    Waiting,
    Checking,
    Launching,
    /// A template step is making the group launch the golden image.
    UpdatingTemplate,
    /// The group launches the golden image now.
    TemplateUpdated,
    /// Waiting for the replacement to pass its health gate.
    WaitingHealthy,
    Healthy,
    Draining,
    Terminating,
    Replaced,
    Skipped(String),
    WouldSucceed,
    Failed(String),
    NotStarted(String),
}

impl Phase {
    /// A short label (at most 11 characters, the Queue view's STEP column).
    pub fn label(&self) -> &'static str {
        match self {
            Phase::Waiting => "waiting",
            Phase::Checking => "checking",
            Phase::Launching => "launching",
            Phase::UpdatingTemplate => "template",
            Phase::TemplateUpdated => "template ok",
            Phase::WaitingHealthy => "health gate",
            Phase::Healthy => "healthy",
            Phase::Draining => "draining",
            Phase::Terminating => "terminating",
            Phase::Replaced => "replaced",
            Phase::Skipped(_) => "skipped",
            Phase::WouldSucceed => "dry-run ok",
            Phase::Failed(_) => "failed",
            Phase::NotStarted(_) => "not started",
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(
            self,
            Phase::Replaced
                | Phase::Skipped(_)
                | Phase::WouldSucceed
                | Phase::Failed(_)
                | Phase::NotStarted(_)
        )
    }
}

impl Phase {
    /// The phase an entry is in once `step` is journaled; `None` for steps that end it some
    /// other way (a failure, a stop).
    pub fn after(step: &Step) -> Option<Phase> {
        use journal::Call;
        Some(match step {
            Step::Checked => Phase::Checking,
            Step::Intent { call } => match call {
                Call::Launch => Phase::Launching,
                Call::Register => Phase::WaitingHealthy,
                Call::Deregister => Phase::Draining,
                Call::Terminate => Phase::Terminating,
                Call::CreateTemplate | Call::PointGroup => Phase::UpdatingTemplate,
            },
            Step::TemplateCreated { .. } => Phase::UpdatingTemplate,
            Step::GroupPointed { .. } => Phase::TemplateUpdated,
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

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Phase::Skipped(why) | Phase::Failed(why) | Phase::NotStarted(why) => {
                write!(f, "{}: {why}", self.label())
            }
            Phase::WouldSucceed => f.write_str("dry run: every step would be allowed"),
            other => f.write_str(other.label()),
        }
    }
}

/// What a rollout tells whoever watches it.
#[derive(Debug, Clone, PartialEq)]
pub enum RolloutEvent {
    Planned(Plan),
    WaveStarted { wave: usize, of: usize },
    Phase { instance_id: String, phase: Phase },
}

/// One entry's step context: journals steps, reports phases, carries what an interrupted
/// earlier apply left and the health-gate timing.
pub struct Steps {
    instance_id: String,
    queued_at: Option<chrono::DateTime<Utc>>,
    pub progress: Progress,
    pub dry_run: bool,
    pub health_timeout: Duration,
    pub poll: Duration,
    journal: Arc<Mutex<Journal>>,
    events: mpsc::UnboundedSender<RolloutEvent>,
}

impl Steps {
    /// Journals a step (synced before it returns) and shows the phase it puts the entry in.
    pub fn record(&self, step: Step) -> Result<(), String> {
        let phase = Phase::after(&step);
        let record = Record {
            at: Utc::now(),
            instance_id: self.instance_id.clone(),
            queued_at: self.queued_at,
            step,
            dry_run: self.dry_run,
        };
        self.journal
            .lock()
            .map_err(|_| "the journal is unusable after an earlier failure".to_owned())?
            .append(&record)
            .map_err(|e| e.0)?;
        if let Some(phase) = phase {
            self.phase(phase);
        }
        Ok(())
    }

    /// Shows a phase that is not a journaled step (waiting for health, say).
    pub fn phase(&self, phase: Phase) {
        let _ = self.events.send(RolloutEvent::Phase {
            instance_id: self.instance_id.clone(),
            phase,
        });
    }

    /// Polls `check` until it says done, backing off from `poll` to four times it, failing
    /// once `health_timeout` has passed. `what` names the wait in the timeout error.
    pub async fn wait_until<F, Fut>(&self, what: &str, mut check: F) -> Result<(), String>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<bool, String>>,
    {
        let deadline = tokio::time::Instant::now() + self.health_timeout;
        let mut every = self.poll;
        loop {
            if check().await? {
                return Ok(());
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(format!(
                    "timed out after {}s waiting for {what}",
                    self.health_timeout.as_secs()
                ));
            }
            tokio::time::sleep(every.min(deadline - now)).await;
            every = (every * 3 / 2).min(self.poll * 4);
        }
    }
}

/// One planned replacement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub entry: QueueEntry,
    /// The group key, for a group member.
    pub group: Option<String>,
}

/// The waves, in order, and what will not be applied.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Template steps, one per group in template drift, each run before its group's members.
    pub templates: Vec<TemplateStep>,
    pub waves: Vec<Vec<Planned>>,
    /// Entries left queued, each with why.
    pub left: Vec<(QueueEntry, String)>,
    /// Entries whose cloud could not be asked (no credentials, access denied, timed out): each
    /// is a failure, so the rollout starts nothing unless `max_failures` allows it.
    pub unchecked: Vec<(QueueEntry, String)>,
    /// Entries the journal says an earlier apply finished (replaced, or found no longer to
    /// apply), whatever the queue file says: they leave the queue and are never run again.
    pub finished: Vec<(QueueEntry, String)>,
    /// Per group: members replaced at once, of its desired capacity.
    pub group_slots: BTreeMap<String, (usize, u32)>,
    pub health_timeout: Duration,
    pub pause: Duration,
}

impl Plan {
    pub fn entries(&self) -> usize {
        self.waves.iter().map(Vec::len).sum()
    }

    /// What the operator types to confirm: it names every kind of change the plan makes.
    pub fn phrase(&self) -> String {
        match self.templates.len() {
            0 => format!("replace {}", self.entries()),
            n => format!(
                "replace {}, update {}",
                self.entries(),
                count(n, "template")
            ),
        }
    }

    /// The longest the rollout can take: every wave waiting out its health timeout.
    pub fn bound(&self) -> Duration {
        let waves = self.waves.len() as u32;
        self.health_timeout * waves + self.pause * waves.saturating_sub(1)
    }

    /// The plan as text, for the confirmation prompt and `--dry-run`.
    pub fn describe(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        if !self.templates.is_empty() {
            let _ = writeln!(
                out,
                "Template steps ({}), each before its group's first member, which is its canary; the old template stays:",
                self.templates.len()
            );
            for step in &self.templates {
                let _ = writeln!(out, "  {}", step.describe);
            }
        }
        let _ = writeln!(
            out,
            "Rollout: {} in {}, at most {} (each wave waits up to {}s for health{}).",
            count(self.entries(), "replacement"),
            count(self.waves.len(), "wave"),
            human_duration(self.bound()),
            self.health_timeout.as_secs(),
            if self.pause.is_zero() {
                String::new()
            } else {
                format!(", {}s between waves", self.pause.as_secs())
            }
        );
        for (group, (slots, desired)) in &self.group_slots {
            let _ = writeln!(out, "  group {group}: {slots} of {desired} at once");
        }
        for (i, wave) in self.waves.iter().enumerate() {
            let _ = writeln!(out, "Wave {} ({} instances):", i + 1, wave.len());
            for planned in wave {
                let _ = writeln!(
                    out,
                    "  {} {}: {}",
                    planned.entry.instance_id,
                    planned.entry.name,
                    planned.entry.strategy.describe()
                );
            }
        }
        if !self.unchecked.is_empty() {
            let _ = writeln!(out, "Could not be checked ({}):", self.unchecked.len());
            for (entry, error) in &self.unchecked {
                let _ = writeln!(out, "  {}: {error}", entry.instance_id);
            }
        }
        if !self.left.is_empty() {
            let _ = writeln!(
                out,
                "Left queued, not executable now ({}):",
                self.left.len()
            );
            for (entry, why) in &self.left {
                let _ = writeln!(out, "  {}: {why}", entry.instance_id);
            }
        }
        if !self.finished.is_empty() {
            let _ = writeln!(
                out,
                "Already done by an earlier apply, leaving the queue ({}):",
                self.finished.len()
            );
            for (entry, how) in &self.finished {
                let _ = writeln!(out, "  {}: {how}", entry.instance_id);
            }
        }
        out
    }

    /// The instances the plan would replace, with when each was queued: what a confirmation
    /// stands for.
    fn planned_entries(&self) -> impl Iterator<Item = &QueueEntry> {
        self.waves.iter().flatten().map(|p| &p.entry)
    }
}

/// "1 wave", "3 waves".
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
    }
}

/// Builds the waves from entries and what their executors found. Pure: the same input gives
/// the same plan. Wave `k` holds the `k`-th slice of every group and of the standalone
/// instances, so groups roll out side by side, each within its own budget.
pub fn make_plan(
    inspected: Vec<(QueueEntry, Result<Inspection, String>)>,
    settings: &Settings,
) -> Plan {
    let mut plan = Plan {
        health_timeout: settings.health_timeout,
        pause: settings.pause,
        ..Plan::default()
    };
    let mut groups: BTreeMap<String, Vec<Planned>> = BTreeMap::new();
    let mut standalone = Vec::new();
    let mut templates: BTreeMap<String, TemplateStep> = BTreeMap::new();
    for (entry, inspection) in inspected {
        let inspection = inspection.map(|mut i| {
            if let Some(step) = i.template.take() {
                if settings.update_templates {
                    templates.entry(step.group.clone()).or_insert(step);
                } else {
                    i.blocked = Some(step.drift);
                }
            }
            i
        });
        match inspection {
            Err(error) => plan.unchecked.push((entry, error)),
            Ok(Inspection {
                blocked: Some(why), ..
            }) => plan.left.push((entry, why)),
            Ok(Inspection {
                group: Some(group),
                blocked: None,
                ..
            }) => {
                let slots = settings.max_unavailable.of(group.desired);
                plan.group_slots
                    .insert(group.key.clone(), (slots, group.desired));
                groups.entry(group.key.clone()).or_default().push(Planned {
                    entry,
                    group: Some(group.key),
                });
            }
            Ok(Inspection { group: None, .. }) => standalone.push(Planned { entry, group: None }),
        }
    }
    let mut slices: Vec<Vec<Vec<Planned>>> = Vec::new();
    for (key, mut members) in groups {
        let slots = plan.group_slots.get(&key).map_or(1, |s| s.0);
        let mut slice = Vec::new();
        if templates.contains_key(&key) {
            // After a template step the first member goes alone: the canary of the new image.
            slice.push(vec![members.remove(0)]);
        }
        slice.extend(chunks(members, slots));
        slices.push(slice);
    }
    // A step whose group has no member left to plan (all blocked otherwise) is not made.
    templates.retain(|key, _| plan.group_slots.contains_key(key));
    plan.templates = templates.into_values().collect();
    slices.push(chunks(standalone, settings.max_parallel));
    let waves = slices.iter().map(Vec::len).max().unwrap_or(0);
    let mut slices: Vec<_> = slices.into_iter().map(Vec::into_iter).collect();
    for _ in 0..waves {
        let wave: Vec<Planned> = slices
            .iter_mut()
            .filter_map(Iterator::next)
            .flatten()
            .collect();
        plan.waves.push(wave);
    }
    plan
}

fn chunks(items: Vec<Planned>, size: usize) -> Vec<Vec<Planned>> {
    let mut out = Vec::new();
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        out.push(items.by_ref().take(size.max(1)).collect());
    }
    out
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub replaced: usize,
    pub skipped: usize,
    pub would_succeed: usize,
    pub failed: usize,
    pub not_executable: usize,
    pub not_started: usize,
    /// Confirmed entries taken off the queue during the rollout, before their wave: not run.
    pub taken_off: usize,
    /// Entries an earlier apply had finished, taken off the queue.
    pub already_done: usize,
    /// Groups that now launch the golden image through a template step of this rollout.
    pub templates_updated: usize,
    /// Template steps a dry run found would be allowed.
    pub templates_would_update: usize,
    /// Of the failed and not started, how many are still queued as the rollout ends (another
    /// process may have taken some off).
    pub still_queued: usize,
    /// Why the rollout stopped early, if it did.
    pub stopped: Option<String>,
    /// A finished entry the queue file could not drop; the journal keeps it final anyway.
    pub queue_warning: Option<String>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = vec![format!("{} replaced", self.replaced)];
        if self.templates_updated > 0 {
            parts.insert(
                0,
                format!("{} updated", count(self.templates_updated, "template")),
            );
        }
        if self.templates_would_update > 0 {
            parts.insert(
                0,
                format!(
                    "{} would be updated",
                    count(self.templates_would_update, "template")
                ),
            );
        }
        let counts = [
            (self.skipped, "skipped"),
            (self.would_succeed, "would succeed"),
            (self.failed, "failed"),
            (self.not_started, "not started"),
            (self.taken_off, "taken off the queue before their turn"),
            (self.already_done, "already done by an earlier apply"),
            (self.not_executable, "not executable"),
        ];
        parts.extend(
            counts
                .iter()
                .filter(|(n, _)| *n > 0)
                .map(|(n, what)| format!("{n} {what}")),
        );
        f.write_str(&parts.join(", "))?;
        if let Some(why) = &self.stopped {
            write!(f, "; stopped: {why}")?;
        }
        if let Some(warning) = &self.queue_warning {
            write!(f, "; {warning}")?;
        }
        Ok(())
    }
}

/// Everything a rollout needs besides its executors.
pub struct Request<'a> {
    pub paths: &'a Paths,
    /// The apply lock, held by the caller since it made the plan (or at least since now).
    pub lock: ApplyLock,
    /// The plan the operator confirmed: exactly these entries run, or nothing does.
    pub confirmed: &'a Plan,
    pub settings: &'a Settings,
    pub dry_run: bool,
    /// Says why once the rollout must stop (the operator asked, the output was closed):
    /// nothing new starts.
    pub stop: watch::Receiver<Option<String>>,
    pub events: mpsc::UnboundedSender<RolloutEvent>,
}

/// Inspects every entry of the queue and makes the plan; changes nothing. An instance is
/// planned once, and an entry the journal calls finished is never planned again.
pub async fn plan(
    queue: &Queue,
    records: &[Record],
    executors: &dyn Executors,
    settings: &Settings,
) -> Plan {
    let mut seen = std::collections::HashSet::new();
    let mut finished = Vec::new();
    let mut entries: Vec<&QueueEntry> = Vec::new();
    for entry in &queue.entries {
        if !seen.insert(entry.instance_id.as_str()) {
            continue;
        }
        match journal::finished(records, &entry.instance_id, entry.queued_at) {
            Some(record) => finished.push((entry.clone(), finished_how(&record.step))),
            None => entries.push(entry),
        }
    }
    let refused = |why: String| {
        Ok(Inspection {
            group: None,
            blocked: Some(why),
            template: None,
        })
    };
    let inspections = futures::future::join_all(entries.iter().map(|entry| async move {
        if !entry.strategy.executable() {
            return refused(entry.strategy.describe());
        }
        match executors.for_entry(entry) {
            Ok(executor) => executor.inspect(entry).await,
            Err(why) => refused(why),
        }
    }))
    .await;
    let mut plan = make_plan(
        entries.into_iter().cloned().zip(inspections).collect(),
        settings,
    );
    plan.finished = finished;
    plan
}

fn finished_how(step: &Step) -> String {
    match step {
        Step::Skipped { why } => format!("skipped: {why}"),
        _ => "replaced".to_owned(),
    }
}

/// Why the rollout must start nothing new now, if it must.
fn stop_reason(
    stop: &watch::Receiver<Option<String>>,
    failed: usize,
    max_failures: usize,
) -> Option<String> {
    if let Some(why) = stop.borrow().as_ref() {
        Some(why.clone())
    } else if failed > max_failures {
        Some(format!(
            "{failed} failed (rollout.max_failures is {max_failures})"
        ))
    } else {
        None
    }
}

/// Journals each entry whose cloud could not be asked while the plan was made as failed, so
/// the journal says why it was not replaced, when no rollout runs to do it.
pub fn journal_unchecked(
    paths: &Paths,
    unchecked: &[(QueueEntry, String)],
    dry_run: bool,
) -> Result<(), QueueError> {
    if unchecked.is_empty() {
        return Ok(());
    }
    let mut journal = Journal::open(&paths.journal)?;
    for (entry, error) in unchecked {
        journal.append(&Record {
            at: Utc::now(),
            instance_id: entry.instance_id.clone(),
            queued_at: Some(entry.queued_at),
            step: Step::Failed {
                error: error.clone(),
            },
            dry_run,
        })?;
    }
    Ok(())
}

/// The queue entries now in the file, by instance id and when queued: what may still run.
fn queued_now(
    path: &std::path::Path,
) -> Result<HashSet<(String, chrono::DateTime<Utc>)>, QueueError> {
    Ok(Queue::load(path)?
        .entries
        .into_iter()
        .map(|e| (e.instance_id, e.queued_at))
        .collect())
}

fn key_of(entry: &QueueEntry) -> (String, chrono::DateTime<Utc>) {
    (entry.instance_id.clone(), entry.queued_at)
}

/// The confirmed plan against the queue and journal as they are now, under the apply lock:
/// an entry taken off the queue or finished since the plan was made means the operator
/// confirmed something that no longer is, and nothing runs.
fn check_confirmed(plan: &Plan, paths: &Paths, records: &[Record]) -> Result<(), QueueError> {
    let queued = queued_now(&paths.queue)?;
    let mut gone = Vec::new();
    for entry in plan.planned_entries() {
        if !queued.contains(&key_of(entry)) {
            gone.push(format!("{} is no longer queued", entry.instance_id));
        } else if journal::finished(records, &entry.instance_id, entry.queued_at).is_some() {
            gone.push(format!(
                "{} was finished by another apply",
                entry.instance_id
            ));
        }
    }
    if gone.is_empty() {
        return Ok(());
    }
    let more = if gone.len() > 3 {
        format!(" and {} more", gone.len() - 3)
    } else {
        String::new()
    };
    gone.truncate(3);
    Err(QueueError(format!(
        "the queue changed since the plan was made ({}{more}): nothing was changed; plan and confirm again",
        gone.join(", ")
    )))
}

/// Takes finished entries off the queue file, one change under the queue lock.
fn leave_queue(paths: &Paths, ids: &[&str]) -> Result<(), QueueError> {
    if ids.is_empty() {
        return Ok(());
    }
    Queue::update(&paths.queue, |q| q.remove(ids)).map(|_| ())
}

/// Runs the confirmed rollout, wave after wave, every step journaled. Each entry leaves the
/// queue as soon as it is finished; an entry taken off the queue before its wave does not run.
pub async fn run(request: Request<'_>, executors: &dyn Executors) -> Result<Summary, QueueError> {
    let Request {
        paths,
        lock: _lock,
        confirmed,
        settings,
        dry_run,
        mut stop,
        events,
    } = request;
    let records = Journal::read(&paths.journal)?;
    check_confirmed(confirmed, paths, &records)?;
    let journal = Arc::new(Mutex::new(Journal::open(&paths.journal)?));
    let _ = events.send(RolloutEvent::Planned(confirmed.clone()));
    let mut summary = Summary {
        not_executable: confirmed.left.len(),
        already_done: confirmed.finished.len(),
        ..Summary::default()
    };
    if !dry_run {
        let done: Vec<&str> = confirmed
            .finished
            .iter()
            .map(|(e, _)| e.instance_id.as_str())
            .collect();
        leave_queue(paths, &done)?;
    }
    let steps_for_id = |id: String, queued_at: Option<chrono::DateTime<Utc>>| Steps {
        progress: journal::progress_of(&records, &id),
        instance_id: id,
        queued_at,
        dry_run,
        health_timeout: settings.health_timeout,
        poll: settings.poll,
        journal: journal.clone(),
        events: events.clone(),
    };
    let steps_for =
        |entry: &QueueEntry| steps_for_id(entry.instance_id.clone(), Some(entry.queued_at));
    let mut templates: HashMap<&str, &TemplateStep> = confirmed
        .templates
        .iter()
        .map(|t| (t.group.as_str(), t))
        .collect();
    let mut templates_done: HashMap<String, TemplateDone> = HashMap::new();
    let mut templates_failed: HashSet<String> = HashSet::new();
    let mut unfinished: Vec<&QueueEntry> = Vec::new();
    for (entry, error) in &confirmed.unchecked {
        summary.failed += 1;
        unfinished.push(entry);
        let steps = steps_for(entry);
        steps
            .record(Step::Failed {
                error: error.clone(),
            })
            .map_err(QueueError)?;
        steps.phase(Phase::Failed(error.clone()));
    }
    let waves = confirmed.waves.len();
    let mut waves_left = confirmed.waves.iter().enumerate();
    let mut stopped = None;
    let queue_warning: Mutex<Option<String>> = Mutex::default();
    while let Some((index, wave)) = waves_left.next() {
        let mut why = stop_reason(&stop, summary.failed, settings.max_failures);
        if why.is_none() && index > 0 && !settings.pause.is_zero() && !dry_run {
            // A stop request ends the pause early.
            tokio::select! {
                () = tokio::time::sleep(settings.pause) => {}
                _ = stop.wait_for(Option::is_some) => {}
            }
            why = stop_reason(&stop, summary.failed, settings.max_failures);
        }
        if let Some(why) = why {
            let rest = wave.iter().chain(waves_left.flat_map(|(_, w)| w));
            for planned in rest {
                summary.not_started += 1;
                unfinished.push(&planned.entry);
                let _ = events.send(RolloutEvent::Phase {
                    instance_id: planned.entry.instance_id.clone(),
                    phase: Phase::NotStarted(why.clone()),
                });
            }
            stopped = Some(why);
            break;
        }
        // The queue is the operator's word: what was taken off it since the plan does not run.
        let queued = queued_now(&paths.queue)?;
        let (runnable, taken_off): (Vec<&Planned>, Vec<&Planned>) = wave
            .iter()
            .partition(|p| queued.contains(&key_of(&p.entry)));
        for planned in taken_off {
            summary.taken_off += 1;
            let _ = events.send(RolloutEvent::Phase {
                instance_id: planned.entry.instance_id.clone(),
                phase: Phase::NotStarted("taken off the queue".to_owned()),
            });
        }
        let _ = events.send(RolloutEvent::WaveStarted {
            wave: index + 1,
            of: waves,
        });
        // Template steps first, once per group, before that group's first member starts.
        let due: Vec<(&TemplateStep, &QueueEntry)> = runnable
            .iter()
            .filter_map(|p| Some((templates.remove(p.group.as_deref()?)?, &p.entry)))
            .collect();
        let template_outcomes = futures::future::join_all(due.iter().map(|(step, member)| {
            let steps = steps_for_id(journal::template_id(&step.group), None);
            async move {
                steps.phase(Phase::UpdatingTemplate);
                let outcome = match executors.for_entry(member) {
                    Ok(executor) => executor.update_template(member, step, &steps).await,
                    Err(why) => Err(why),
                };
                (steps, outcome)
            }
        }))
        .await;
        for ((steps, outcome), (step, _)) in template_outcomes.into_iter().zip(&due) {
            match outcome {
                Ok(done) => {
                    if dry_run {
                        summary.templates_would_update += 1;
                    } else {
                        summary.templates_updated += 1;
                    }
                    steps.phase(Phase::TemplateUpdated);
                    templates_done.insert(step.group.clone(), done);
                }
                Err(error) => {
                    summary.failed += 1;
                    steps
                        .record(Step::Failed {
                            error: error.clone(),
                        })
                        .map_err(QueueError)?;
                    steps.phase(Phase::Failed(error));
                    templates_failed.insert(step.group.clone());
                }
            }
        }
        // A group whose template step failed starts none of its members, now or later.
        let (runnable, blocked): (Vec<&Planned>, Vec<&Planned>) =
            runnable.into_iter().partition(|p| {
                p.group
                    .as_ref()
                    .is_none_or(|g| !templates_failed.contains(g))
            });
        for planned in blocked {
            summary.not_started += 1;
            unfinished.push(&planned.entry);
            let _ = events.send(RolloutEvent::Phase {
                instance_id: planned.entry.instance_id.clone(),
                phase: Phase::NotStarted("its group's template step failed".to_owned()),
            });
        }
        let queue_warning = &queue_warning;
        let outcomes = futures::future::join_all(runnable.iter().map(|planned| {
            let steps = steps_for(&planned.entry);
            async move {
                steps.phase(Phase::Checking);
                let outcome = match executors.for_entry(&planned.entry) {
                    Ok(executor) => executor.replace(&planned.entry, &steps).await,
                    Err(why) => Err(why),
                };
                // Finished is final: off the queue now, not when the wave ends, so a crash
                // mid-wave leaves no finished entry queued (and the journal says so anyway).
                if !dry_run
                    && matches!(outcome, Ok(Finish::Replaced | Finish::Skipped(_)))
                    && let Err(error) = leave_queue(paths, &[planned.entry.instance_id.as_str()])
                    && let Ok(mut warning) = queue_warning.lock()
                {
                    *warning = Some(format!("{error}; the journal keeps it finished"));
                }
                (steps, outcome)
            }
        }))
        .await;
        for ((steps, outcome), planned) in outcomes.into_iter().zip(&runnable) {
            let phase = match outcome {
                Ok(Finish::WouldSucceed) => {
                    summary.would_succeed += 1;
                    Phase::WouldSucceed
                }
                Ok(Finish::Skipped(why)) => {
                    summary.skipped += 1;
                    Phase::Skipped(why)
                }
                Ok(Finish::Replaced) => {
                    summary.replaced += 1;
                    Phase::Replaced
                }
                Err(mut error) => {
                    summary.failed += 1;
                    unfinished.push(&planned.entry);
                    // A canary that failed: its group launches the new image from now on.
                    if let Some(done) = planned.group.as_ref().and_then(|g| templates_done.get(g)) {
                        error = format!(
                            "{error}; its group now launches {}: {} points it back",
                            done.now, done.revert
                        );
                    }
                    steps
                        .record(Step::Failed {
                            error: error.clone(),
                        })
                        .map_err(QueueError)?;
                    Phase::Failed(error)
                }
            };
            steps.phase(phase);
        }
    }
    if stopped.is_none() && summary.failed > settings.max_failures {
        stopped = Some(format!("{} failed", summary.failed));
    }
    if let Some(why) = &stopped
        && summary.not_started > 0
    {
        let mut journal = journal
            .lock()
            .map_err(|_| QueueError("the journal is unusable after an earlier failure".into()))?;
        journal.append(&Record {
            at: Utc::now(),
            instance_id: String::new(),
            queued_at: None,
            step: Step::Stopped {
                why: why.clone(),
                not_started: summary.not_started,
            },
            dry_run,
        })?;
    }
    if !unfinished.is_empty() {
        let queued = queued_now(&paths.queue)?;
        summary.still_queued = unfinished
            .iter()
            .filter(|e| queued.contains(&key_of(e)))
            .count();
    }
    summary.stopped = stopped;
    summary.queue_warning = queue_warning.into_inner().unwrap_or_default();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::Cloud;
    use crate::core::policy::Verdict;
    use crate::queue::Strategy;

    fn entry(id: &str) -> QueueEntry {
        QueueEntry {
            instance_id: id.into(),
            cloud: Cloud::Aws,
            source: "aws:test".into(),
            account: "1".into(),
            region: "r".into(),
            name: id.into(),
            image: "ami-old".into(),
            target_image: Some("ami-new".into()),
            verdict: Verdict::Outdated,
            reason: String::new(),
            strategy: Strategy::AwsLaunchCopy,
            queued_at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    fn member(id: &str, group: &str, desired: u32) -> (QueueEntry, Result<Inspection, String>) {
        (
            entry(id),
            Ok(Inspection {
                group: Some(GroupCapacity {
                    key: group.into(),
                    desired,
                }),
                blocked: None,
                template: None,
            }),
        )
    }

    #[test]
    fn max_unavailable_parses_shares_and_counts_and_is_at_least_one() {
        assert_eq!(
            MaxUnavailable::parse("10%"),
            Ok(MaxUnavailable::Percent(10))
        );
        assert_eq!(MaxUnavailable::parse("3"), Ok(MaxUnavailable::Count(3)));
        for bad in ["0", "0%", "101%", "ten", "", "-1"] {
            assert!(MaxUnavailable::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(MaxUnavailable::Percent(10).of(10), 1);
        assert_eq!(MaxUnavailable::Percent(10).of(5), 1);
        assert_eq!(MaxUnavailable::Percent(25).of(40), 10);
        assert_eq!(MaxUnavailable::Count(2).of(1), 2);
    }

    #[test]
    fn groups_roll_side_by_side_each_within_its_budget() {
        let settings = Settings {
            max_parallel: 2,
            ..Settings::default()
        };
        let mut inspected: Vec<_> = (0..10)
            .map(|i| member(&format!("a{i}"), "asg-a", 10))
            .collect();
        inspected.extend((0..4).map(|i| member(&format!("b{i}"), "asg-b", 20)));
        inspected.extend((0..5).map(|i| (entry(&format!("s{i}")), Ok(Inspection::default()))));
        inspected.push((
            entry("x"),
            Ok(Inspection {
                group: None,
                blocked: Some("source aws:gone is not configured".into()),
                template: None,
            }),
        ));
        inspected.push((
            entry("y"),
            Err("no AWS credentials for profile test".into()),
        ));
        let plan = make_plan(inspected, &settings);
        assert_eq!(plan.waves.len(), 10, "asg-a: one member of ten per wave");
        for wave in &plan.waves {
            let in_group = |g: &str| {
                wave.iter()
                    .filter(|p| p.group.as_deref() == Some(g))
                    .count()
            };
            assert!(in_group("asg-a") <= 1);
            assert!(in_group("asg-b") <= 2);
            assert!(wave.iter().filter(|p| p.group.is_none()).count() <= 2);
        }
        assert_eq!(plan.entries(), 19);
        assert_eq!(plan.left.len(), 1);
        assert_eq!(plan.unchecked.len(), 1);
        assert_eq!(plan.bound(), settings.health_timeout * 10);
        assert!(plan.describe().contains("group asg-a: 1 of 10 at once"));
    }

    /// A cloud of our own making: replacements take `pace`, the listed ids fail their gate,
    /// and the most replacements in flight at once (per group and overall) are recorded.
    struct Simulated {
        pace: Duration,
        failing: Vec<String>,
        in_flight: Mutex<BTreeMap<String, usize>>,
        most_in_flight: Mutex<BTreeMap<String, usize>>,
        started: Mutex<Vec<String>>,
        resumed: Mutex<Vec<(String, Progress)>>,
        /// Groups whose template launches an old image: a template step would fix them.
        drifted: Vec<String>,
        /// Everything started, template steps and replacements, in order.
        order: Mutex<Vec<String>>,
    }

    impl Simulated {
        fn new(pace_ms: u64, failing: &[&str]) -> Simulated {
            Simulated {
                pace: Duration::from_millis(pace_ms),
                failing: failing.iter().map(|s| s.to_string()).collect(),
                in_flight: Mutex::default(),
                most_in_flight: Mutex::default(),
                started: Mutex::default(),
                resumed: Mutex::default(),
                drifted: Vec::new(),
                order: Mutex::default(),
            }
        }

        fn drifting(mut self, groups: &[&str]) -> Simulated {
            self.drifted = groups.iter().map(|g| g.to_string()).collect();
            self
        }

        fn group_of(id: &str) -> String {
            id.split('-').next().unwrap_or(id).to_owned()
        }
    }

    impl Executor for Simulated {
        fn inspect<'a>(
            &'a self,
            entry: &'a QueueEntry,
        ) -> BoxFuture<'a, Result<Inspection, String>> {
            let group = Simulated::group_of(&entry.instance_id);
            Box::pin(async move {
                Ok(Inspection {
                    template: self.drifted.contains(&group).then(|| TemplateStep {
                        group: group.clone(),
                        describe: format!("point {group} at ami-new"),
                        drift: format!("template drift: {group} launches ami-old"),
                    }),
                    group: (group != "solo").then_some(GroupCapacity {
                        key: group,
                        desired: 10,
                    }),
                    blocked: None,
                })
            })
        }

        fn replace<'a>(
            &'a self,
            entry: &'a QueueEntry,
            steps: &'a Steps,
        ) -> BoxFuture<'a, Result<Finish, String>> {
            Box::pin(async move {
                let group = Simulated::group_of(&entry.instance_id);
                self.started.lock().unwrap().push(entry.instance_id.clone());
                self.order.lock().unwrap().push(entry.instance_id.clone());
                self.resumed
                    .lock()
                    .unwrap()
                    .push((entry.instance_id.clone(), steps.progress.clone()));
                {
                    let mut in_flight = self.in_flight.lock().unwrap();
                    let now = in_flight.entry(group.clone()).or_default();
                    *now += 1;
                    let most = *now;
                    let mut most_in_flight = self.most_in_flight.lock().unwrap();
                    let seen = most_in_flight.entry(group.clone()).or_default();
                    *seen = (*seen).max(most);
                }
                if !steps.progress.terminated {
                    steps.record(Step::Terminated)?;
                }
                tokio::time::sleep(self.pace).await;
                *self.in_flight.lock().unwrap().get_mut(&group).unwrap() -= 1;
                if self.failing.contains(&entry.instance_id) {
                    return Err("the replacement failed its health check".into());
                }
                steps.record(Step::Replaced)?;
                Ok(Finish::Replaced)
            })
        }

        fn update_template<'a>(
            &'a self,
            _member: &'a QueueEntry,
            step: &'a TemplateStep,
            steps: &'a Steps,
        ) -> BoxFuture<'a, Result<TemplateDone, String>> {
            Box::pin(self.template_step(step, steps))
        }
    }

    impl Simulated {
        async fn template_step(
            &self,
            step: &TemplateStep,
            steps: &Steps,
        ) -> Result<TemplateDone, String> {
            self.order
                .lock()
                .unwrap()
                .push(format!("template {}", step.group));
            if self.failing.contains(&format!("template {}", step.group)) {
                return Err("CreateLaunchTemplateVersion: access denied".into());
            }
            if steps.progress.template_created.is_none() {
                steps.record(Step::TemplateCreated {
                    template: "v2".into(),
                })?;
            }
            steps.record(Step::GroupPointed {
                template: "v2".into(),
            })?;
            Ok(TemplateDone {
                now: "version 2".into(),
                revert: format!("point-back {}", step.group),
            })
        }
    }

    impl Executors for Simulated {
        fn for_entry(&self, _entry: &QueueEntry) -> Result<&dyn Executor, String> {
            Ok(self)
        }
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        paths: Paths,
    }

    fn fixture(ids: &[&str]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::in_dir(dir.path());
        let queue = Queue {
            entries: ids.iter().map(|id| entry(id)).collect(),
            ..Queue::default()
        };
        queue.save(&paths.queue).unwrap();
        Fixture { _dir: dir, paths }
    }

    async fn roll(
        fixture: &Fixture,
        executor: &Simulated,
        settings: &Settings,
        stop: watch::Receiver<Option<String>>,
    ) -> (Summary, Vec<RolloutEvent>) {
        let lock = ApplyLock::acquire(&fixture.paths.lock).unwrap();
        let queue = Queue::load(&fixture.paths.queue).unwrap();
        let records = Journal::read(&fixture.paths.journal).unwrap();
        let confirmed = plan(&queue, &records, executor, settings).await;
        let (events, mut rx) = mpsc::unbounded_channel();
        let request = Request {
            paths: &fixture.paths,
            lock,
            confirmed: &confirmed,
            settings,
            dry_run: false,
            stop,
            events,
        };
        let summary = run(request, executor).await.unwrap();
        let mut seen = Vec::new();
        while let Ok(event) = rx.try_recv() {
            seen.push(event);
        }
        (summary, seen)
    }

    /// Runs a plan the test made, with no stop asked: what a confirmation would start.
    async fn run_confirmed(
        fixture: &Fixture,
        confirmed: &Plan,
        settings: &Settings,
        executors: &dyn Executors,
    ) -> Result<Summary, QueueError> {
        let (events, _rx) = mpsc::unbounded_channel();
        let (_tx, stop) = watch::channel(None);
        let request = Request {
            paths: &fixture.paths,
            lock: ApplyLock::acquire(&fixture.paths.lock).unwrap(),
            confirmed,
            settings,
            dry_run: false,
            stop,
            events,
        };
        run(request, executors).await
    }

    fn queued(fixture: &Fixture) -> Vec<String> {
        Queue::load(&fixture.paths.queue)
            .unwrap()
            .entries
            .into_iter()
            .map(|e| e.instance_id)
            .collect()
    }

    #[tokio::test]
    async fn a_group_never_has_more_members_out_than_its_budget() {
        let ids: Vec<String> = (0..10).map(|i| format!("web-{i}")).collect();
        let mut all: Vec<&str> = ids.iter().map(String::as_str).collect();
        all.extend(["solo-1", "solo-2", "solo-3"]);
        let fixture = fixture(&all);
        let executor = Simulated::new(20, &[]);
        let settings = Settings {
            max_parallel: 2,
            ..Settings::default()
        };
        let (_tx, stop) = watch::channel(None);
        let (summary, events) = roll(&fixture, &executor, &settings, stop).await;
        assert_eq!(summary.replaced, 13, "{summary}");
        let most = executor.most_in_flight.lock().unwrap().clone();
        assert_eq!(most.get("web"), Some(&1), "10% of 10 is one at a time");
        assert_eq!(most.get("solo"), Some(&2), "max_parallel standalone");
        let waves = events
            .iter()
            .filter(|e| matches!(e, RolloutEvent::WaveStarted { .. }))
            .count();
        assert_eq!(waves, 10);
        assert!(
            queued(&fixture).is_empty(),
            "replaced entries leave the queue"
        );
    }

    #[tokio::test]
    async fn the_first_failure_starts_nothing_new_and_everything_left_stays_queued() {
        let fixture = fixture(&["web-0", "web-1", "web-2", "solo-1"]);
        let executor = Simulated::new(5, &["web-0"]);
        let (_tx, stop) = watch::channel(None);
        let (summary, events) = roll(&fixture, &executor, &Settings::default(), stop).await;
        assert_eq!(summary.failed, 1, "{summary}");
        assert_eq!(
            summary.replaced, 1,
            "solo-1 ran beside web-0 in the first wave"
        );
        assert_eq!(summary.not_started, 2);
        assert!(summary.stopped.is_some());
        assert_eq!(*executor.started.lock().unwrap(), ["web-0", "solo-1"]);
        assert_eq!(queued(&fixture), ["web-0", "web-1", "web-2"]);
        assert!(events.iter().any(|e| matches!(
            e,
            RolloutEvent::Phase { instance_id, phase: Phase::NotStarted(_) } if instance_id == "web-2"
        )));
        let journal = Journal::read(&fixture.paths.journal).unwrap();
        assert!(journal.iter().any(|r| matches!(
            &r.step,
            Step::Failed { error } if error.contains("health check")
        )));
        assert!(
            journal
                .iter()
                .any(|r| matches!(r.step, Step::Stopped { not_started: 2, .. }))
        );
    }

    #[tokio::test]
    async fn max_failures_lets_the_rollout_go_on() {
        let fixture = fixture(&["web-0", "web-1", "web-2"]);
        let executor = Simulated::new(1, &["web-0"]);
        let settings = Settings {
            max_failures: 1,
            ..Settings::default()
        };
        let (_tx, stop) = watch::channel(None);
        let (summary, _) = roll(&fixture, &executor, &settings, stop).await;
        assert_eq!((summary.failed, summary.replaced), (1, 2), "{summary}");
        assert!(summary.stopped.is_none());
    }

    #[tokio::test]
    async fn a_stop_request_lets_in_flight_finish_and_the_next_apply_resumes() {
        let fixture = fixture(&["web-0", "web-1", "web-2"]);
        let executor = Simulated::new(50, &[]);
        let (tx, stop) = watch::channel(None);
        let asked = async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            tx.send(Some("stopped when asked".into())).unwrap();
        };
        let settings = Settings::default();
        let ((summary, _), ()) = tokio::join!(roll(&fixture, &executor, &settings, stop), asked);
        assert_eq!(
            summary.replaced, 1,
            "the member in flight finished: {summary}"
        );
        assert_eq!(summary.not_started, 2);
        assert_eq!(summary.stopped.as_deref(), Some("stopped when asked"));
        assert_eq!(queued(&fixture), ["web-1", "web-2"]);

        // A crash after web-1's old instance was terminated: the journal says so, and the
        // next apply only waits for its replacement instead of terminating again.
        let mut journal = Journal::open(&fixture.paths.journal).unwrap();
        journal
            .append(&Record {
                at: Utc::now(),
                instance_id: "web-1".into(),
                queued_at: None,
                step: Step::Terminated,
                dry_run: false,
            })
            .unwrap();
        let again = Simulated::new(1, &[]);
        let (_tx, stop) = watch::channel(None);
        let (summary, _) = roll(&fixture, &again, &Settings::default(), stop).await;
        assert_eq!(summary.replaced, 2, "{summary}");
        let resumed = again.resumed.lock().unwrap().clone();
        assert!(resumed.iter().any(|(id, p)| id == "web-1" && p.terminated));
        assert!(resumed.iter().any(|(id, p)| id == "web-2" && !p.terminated));
        assert!(queued(&fixture).is_empty());
    }

    #[tokio::test]
    async fn a_plan_confirmed_over_a_queue_that_changed_since_runs_nothing() {
        let fixture = fixture(&["web-0", "web-1"]);
        let executor = Simulated::new(1, &[]);
        let settings = Settings::default();
        let queue = Queue::load(&fixture.paths.queue).unwrap();
        let confirmed = plan(&queue, &[], &executor, &settings).await;
        Queue::update(&fixture.paths.queue, |q| q.remove(&["web-1"])).unwrap();
        let error = run_confirmed(&fixture, &confirmed, &settings, &executor)
            .await
            .unwrap_err();
        assert!(
            error
                .0
                .contains("the queue changed since the plan was made (web-1 is no longer queued)"),
            "{error}"
        );
        assert!(executor.started.lock().unwrap().is_empty());
        assert!(Journal::read(&fixture.paths.journal).unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_entry_the_journal_finished_is_never_run_again_and_leaves_the_queue() {
        let fixture = fixture(&["web-0", "web-1"]);
        // A crash after web-0 was replaced, before it left the queue file.
        Journal::open(&fixture.paths.journal)
            .unwrap()
            .append(&Record {
                at: Utc::now(),
                instance_id: "web-0".into(),
                queued_at: Some(chrono::DateTime::UNIX_EPOCH),
                step: Step::Replaced,
                dry_run: false,
            })
            .unwrap();
        let executor = Simulated::new(1, &[]);
        let (_tx, stop) = watch::channel(None);
        let (summary, _) = roll(&fixture, &executor, &Settings::default(), stop).await;
        assert_eq!(*executor.started.lock().unwrap(), ["web-1"]);
        assert_eq!(
            (summary.replaced, summary.already_done),
            (1, 1),
            "{summary}"
        );
        assert!(queued(&fixture).is_empty());
    }

    #[tokio::test]
    async fn each_entry_leaves_the_queue_as_it_finishes_not_when_its_wave_ends() {
        let fixture = fixture(&["solo-fast", "solo-slow"]);
        let executor = Simulated::new(1, &[]);
        struct Uneven<'a>(&'a Simulated, &'a Paths, Mutex<Vec<Vec<String>>>);
        impl Executor for Uneven<'_> {
            fn inspect<'a>(
                &'a self,
                entry: &'a QueueEntry,
            ) -> BoxFuture<'a, Result<Inspection, String>> {
                self.0.inspect(entry)
            }
            fn replace<'a>(
                &'a self,
                entry: &'a QueueEntry,
                steps: &'a Steps,
            ) -> BoxFuture<'a, Result<Finish, String>> {
                Box::pin(async move {
                    if entry.instance_id == "solo-slow" {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        // What a crash now would leave: the fast one is already off the queue.
                        let queued = Queue::load(&self.1.queue).unwrap();
                        self.2
                            .lock()
                            .unwrap()
                            .push(queued.entries.into_iter().map(|e| e.instance_id).collect());
                    }
                    self.0.replace(entry, steps).await
                })
            }
            fn update_template<'a>(
                &'a self,
                member: &'a QueueEntry,
                step: &'a TemplateStep,
                steps: &'a Steps,
            ) -> BoxFuture<'a, Result<TemplateDone, String>> {
                self.0.update_template(member, step, steps)
            }
        }
        impl Executors for Uneven<'_> {
            fn for_entry(&self, _entry: &QueueEntry) -> Result<&dyn Executor, String> {
                Ok(self)
            }
        }
        let uneven = Uneven(&executor, &fixture.paths, Mutex::default());
        let settings = Settings::default();
        let queue = Queue::load(&fixture.paths.queue).unwrap();
        let confirmed = plan(&queue, &[], &uneven, &settings).await;
        assert_eq!(confirmed.waves.len(), 1, "both in one wave");
        run_confirmed(&fixture, &confirmed, &settings, &uneven)
            .await
            .unwrap();
        assert_eq!(*uneven.2.lock().unwrap(), [["solo-slow"]]);
    }

    #[tokio::test]
    async fn a_template_step_runs_once_before_its_group_whose_first_member_goes_alone() {
        let fixture = fixture(&["web-0", "web-1", "web-2", "api-0", "solo-1"]);
        let executor = Simulated::new(1, &[]).drifting(&["web"]);
        let settings = Settings {
            max_unavailable: MaxUnavailable::Count(2),
            ..Settings::default()
        };
        let queue = Queue::load(&fixture.paths.queue).unwrap();
        let planned = plan(&queue, &[], &executor, &settings).await;
        assert_eq!(planned.templates.len(), 1);
        assert_eq!(planned.phrase(), "replace 5, update 1 template");
        assert!(
            planned.describe().starts_with("Template steps (1)"),
            "{}",
            planned.describe()
        );
        let web_in = |wave: &Vec<Planned>| {
            wave.iter()
                .filter(|p| p.group.as_deref() == Some("web"))
                .count()
        };
        assert_eq!(web_in(&planned.waves[0]), 1, "the canary goes alone");
        assert_eq!(web_in(&planned.waves[1]), 2);
        let (_tx, stop) = watch::channel(None);
        let (summary, _) = roll(&fixture, &executor, &settings, stop).await;
        assert_eq!(
            (summary.replaced, summary.templates_updated),
            (5, 1),
            "{summary}"
        );
        let order = executor.order.lock().unwrap().clone();
        let template = order.iter().position(|o| o == "template web").unwrap();
        let first_web = order.iter().position(|o| o.starts_with("web-")).unwrap();
        assert!(template < first_web, "{order:?}");
        assert_eq!(
            order.iter().filter(|o| o.starts_with("template")).count(),
            1
        );
        let journal = Journal::read(&fixture.paths.journal).unwrap();
        assert!(journal.iter().any(
            |r| r.instance_id == "template web" && matches!(r.step, Step::GroupPointed { .. })
        ));
    }

    #[tokio::test]
    async fn without_template_updates_a_drifted_group_stays_queued_with_why() {
        let fixture = fixture(&["web-0", "solo-1"]);
        let executor = Simulated::new(1, &[]).drifting(&["web"]);
        let settings = Settings {
            update_templates: false,
            ..Settings::default()
        };
        let queue = Queue::load(&fixture.paths.queue).unwrap();
        let planned = plan(&queue, &[], &executor, &settings).await;
        assert!(planned.templates.is_empty());
        assert_eq!(planned.phrase(), "replace 1");
        assert_eq!(planned.left.len(), 1);
        assert!(
            planned.left[0].1.starts_with("template drift: web"),
            "{:?}",
            planned.left
        );
    }

    #[tokio::test]
    async fn a_failed_canary_stops_the_rollout_and_names_the_way_back() {
        let fixture = fixture(&["web-0", "web-1", "web-2"]);
        let executor = Simulated::new(1, &["web-0"]).drifting(&["web"]);
        let (_tx, stop) = watch::channel(None);
        let (summary, events) = roll(&fixture, &executor, &Settings::default(), stop).await;
        assert_eq!((summary.failed, summary.not_started), (1, 2), "{summary}");
        let failed = events.iter().find_map(|e| match e {
            RolloutEvent::Phase {
                instance_id,
                phase: Phase::Failed(why),
            } if instance_id == "web-0" => Some(why.clone()),
            _ => None,
        });
        let failed = failed.unwrap();
        assert!(
            failed.contains("its group now launches version 2: point-back web points it back"),
            "{failed}"
        );
    }

    #[tokio::test]
    async fn a_failed_template_step_starts_none_of_its_group() {
        let fixture = fixture(&["web-0", "web-1", "solo-1"]);
        let executor = Simulated::new(1, &["template web"]).drifting(&["web"]);
        let settings = Settings {
            max_failures: 10,
            ..Settings::default()
        };
        let (_tx, stop) = watch::channel(None);
        let (summary, _) = roll(&fixture, &executor, &settings, stop).await;
        assert_eq!(
            (summary.failed, summary.replaced, summary.not_started),
            (1, 1, 2),
            "{summary}"
        );
        assert_eq!(*executor.started.lock().unwrap(), ["solo-1"]);
    }

    #[tokio::test]
    async fn a_health_wait_times_out_as_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let (events, _rx) = mpsc::unbounded_channel();
        let steps = Steps {
            instance_id: "i-1".into(),
            queued_at: None,
            progress: Progress::default(),
            dry_run: false,
            health_timeout: Duration::from_millis(30),
            poll: Duration::from_millis(5),
            journal: Arc::new(Mutex::new(
                Journal::open(&dir.path().join("journal.jsonl")).unwrap(),
            )),
            events,
        };
        let polls = std::sync::atomic::AtomicUsize::new(0);
        let error = steps
            .wait_until("the group to be healthy", || async {
                polls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(false)
            })
            .await
            .unwrap_err();
        assert!(error.contains("timed out") && error.contains("the group to be healthy"));
        let polls = polls.into_inner();
        assert!(
            (2..=7).contains(&polls),
            "backs off: {polls} polls in 30 ms at 5 ms and up"
        );
    }
}
