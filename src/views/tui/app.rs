//! The interactive state and the one function that changes it: `App::update(Action)`.
//! No terminal, no network: the runtime feeds it actions and collection events, then draws it.

use std::collections::HashSet;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::action::{Action, Effect, View};
use crate::query::data::{self, Data};
use crate::query::filter::Field;
pub use crate::query::subject::DriftRow;
use crate::query::subject::{
    DRIFT_FIELDS, DriftSubject, IMAGE_FIELDS, INSTANCE_FIELDS, ImageSubject, InstanceFilter,
    QUEUE_FIELDS, QueueSubject,
};
use super::save::{self, QueueChange, Saved};
use super::table::ListState;
use crate::core::event::CollectEvent;
use crate::core::inventory::{GroupIdx, ImageIdx, InstanceIdx, Inventory, LineageIdx};
use crate::core::lineage::LineageRules;
use crate::core::model::SourceStatus;
use crate::core::policy::{PolicyConfig, TemplateStatus};
use crate::queue::rollout::{Phase, Plan, RolloutEvent};
use crate::queue::{self, Queue, QueueEntry};

/// Which instances the Instances view lists: all, or those under what was drilled into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceScope {
    All,
    Image(ImageIdx),
    Lineage(LineageIdx),
    Group(GroupIdx),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// Typing a filter; `previous` comes back on Esc.
    Filter {
        previous: String,
    },
    Command {
        line: String,
    },
    /// Typing the confirmation of an apply; it goes ahead only if `typed` ends up `phrase`,
    /// and then for exactly the entries of the plan shown.
    Confirm {
        phrase: String,
        typed: String,
        plan: Box<Plan>,
        /// What other processes changed in the queue since this screen last read it, if any.
        changed: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub text: String,
    pub error: bool,
}

/// Where the Instances view was before a drill-down, so Esc can go back.
#[derive(Debug, Clone)]
struct Crumb {
    view: View,
    scope: InstanceScope,
    input: String,
    selected: usize,
}

pub struct AppInit {
    pub inventory: Inventory,
    pub rules: LineageRules,
    pub policy: PolicyConfig,
    pub now: DateTime<Utc>,
    pub queue: Queue,
    /// Where the queue is saved on every change; `None` keeps it in memory (tests).
    pub queue_path: Option<PathBuf>,
    /// False for a snapshot: there is nothing to collect again.
    pub live: bool,
    /// Whether sources are streaming into `inventory` right now.
    pub collecting: bool,
    /// `--read-only`: applying the queue is refused.
    pub read_only: bool,
}

/// What kind of fleet is on screen, when it is not a live one judged as of now: shown as badges
/// so a demo, an old snapshot or a fixed time never passes for the live fleet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Badges {
    pub demo: bool,
    /// A snapshot, and when it was taken.
    pub snapshot: Option<DateTime<Utc>>,
    /// `--now`: the time the fleet is judged as of.
    pub fixed_now: Option<DateTime<Utc>>,
}

/// Screen regions from the last frame, for mouse clicks and page sizes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Layout {
    pub tabs: ratatui::layout::Rect,
    /// Where table rows start (below the header) and how many fit.
    pub rows: ratatui::layout::Rect,
}

pub struct App {
    pub data: Data,
    rules: LineageRules,
    policy: PolicyConfig,
    /// Inventory being collected by a refresh; shown once complete.
    pending: Option<Inventory>,
    /// Pages of the first collection that arrived since the last evaluation.
    arrived: Vec<CollectEvent>,
    /// Inventory changed since the last evaluation.
    stale: bool,
    collecting: bool,
    live: bool,
    read_only: bool,
    /// An apply is running in the background.
    applying: bool,
    /// The operator asked the running apply to stop.
    stopping: bool,
    /// A rollout plan is being made in the background.
    planning: bool,
    /// Each entry's phase in the running (or last) rollout, by instance id.
    pub(super) phases: std::collections::HashMap<String, Phase>,
    /// The wave in progress, of how many.
    rollout_wave: Option<(usize, usize)>,
    pub queue: Queue,
    queue_path: Option<PathBuf>,
    /// The last save failed and none succeeded since: the queue's changes are only here.
    unsaved: bool,
    /// Changes not handed to the saver yet, and those a failed save gave back.
    pending_changes: Vec<QueueChange>,
    failed_changes: Vec<QueueChange>,
    /// Batches handed to the saver and not answered yet.
    saves_in_flight: usize,
    /// The second `q` was pressed: quit even with unsaved changes.
    quit_confirmed: bool,
    /// The Overview's selected source, for its whole error.
    pub selected_source: usize,
    /// When each source finished or failed, as this UI saw it.
    source_ended: std::collections::HashMap<String, DateTime<Utc>>,
    /// Instances waiting for the answer to "queue N instances? y/N", and what they are.
    pending_queue: Option<PendingQueue>,
    /// Queueing more instances than this at once asks first.
    pub confirm_queue_over: usize,
    /// Whether an apply makes template steps for groups in template drift.
    pub template_updates: bool,
    /// The template steps of the apply running or last run, shown in the Queue view with
    /// their live step.
    pub(super) template_steps: Vec<queue::rollout::TemplateStep>,
    /// The queue file cannot be read: the queue is off, and this says which file and what to do.
    queue_disabled: Option<String>,
    /// `q` was pressed with unsaved queue changes: a second `q` quits without them.
    quit_armed: bool,
    pub(super) queued: HashSet<String>,
    pub view: View,
    pub mode: Mode,
    pub help: Option<u16>,
    /// The detail pane of the selected row is open, scrolled this far.
    pub detail: Option<u16>,
    pub images: ListState<ImageIdx>,
    pub instances: ListState<InstanceIdx>,
    pub instance_scope: InstanceScope,
    pub drift: ListState<DriftRow>,
    pub queue_rows: ListState<usize>,
    /// Marked instances, by id so marks survive a refresh.
    pub marked: HashSet<String>,
    /// Marked queue entries, by instance id.
    pub queue_marked: HashSet<String>,
    /// Marks the last clearing took, until the next change to marks: one key brings them back.
    cleared_marks: Option<(HashSet<String>, HashSet<String>)>,
    /// Marked instances the Instances filter or scope hides, counted when either changes.
    hidden_marks: usize,
    crumbs: Vec<Crumb>,
    pub status: Option<Status>,
    pub layout: Layout,
    pub badges: Badges,
}

/// Instances waiting for the answer to "queue N instances? y/N".
struct PendingQueue {
    instances: Vec<InstanceIdx>,
    what: String,
    /// They were chosen by marks, which are spent only if the answer is yes.
    spends_marks: bool,
}

const COMMANDS: &[&str] = &[
    "overview",
    "images",
    "instances",
    "drift",
    "queue",
    "filter",
    "sort",
    "unmark",
    "refresh",
    "help",
    "quit",
];

impl App {
    pub fn new(init: AppInit) -> App {
        let queued = init
            .queue
            .entries
            .iter()
            .map(|e| e.instance_id.clone())
            .collect();
        let mut app = App {
            data: Data::new(init.inventory, &init.policy, init.now),
            rules: init.rules,
            policy: init.policy,
            pending: None,
            arrived: Vec::new(),
            stale: false,
            collecting: init.collecting,
            live: init.live,
            read_only: init.read_only,
            applying: false,
            stopping: false,
            planning: false,
            phases: std::collections::HashMap::new(),
            rollout_wave: None,
            queue: init.queue,
            queue_path: init.queue_path,
            unsaved: false,
            pending_changes: Vec::new(),
            failed_changes: Vec::new(),
            saves_in_flight: 0,
            quit_confirmed: false,
            pending_queue: None,
            selected_source: 0,
            source_ended: std::collections::HashMap::new(),
            confirm_queue_over: crate::config::DEFAULT_CONFIRM_QUEUE_OVER,
            template_updates: true,
            template_steps: Vec::new(),
            queue_disabled: None,
            quit_armed: false,
            queued,
            view: View::Overview,
            mode: Mode::Normal,
            help: None,
            detail: None,
            images: ListState::new(data::IMAGE_VERDICT, true),
            instances: ListState::new(data::INSTANCE_VERDICT, true),
            instance_scope: InstanceScope::All,
            drift: ListState::new(0, false),
            queue_rows: ListState::new(0, false),
            marked: HashSet::new(),
            queue_marked: HashSet::new(),
            cleared_marks: None,
            hidden_marks: 0,
            crumbs: Vec::new(),
            status: None,
            layout: Layout::default(),
            badges: Badges::default(),
        };
        app.rebuild_all();
        app
    }

    // ---- collection -------------------------------------------------------------------------

    pub fn collecting(&self) -> bool {
        self.collecting
    }

    pub fn refreshing(&self) -> bool {
        self.pending.is_some()
    }

    /// The sources as they stand: those of a refresh in progress, else the shown inventory's.
    pub fn sources(&self) -> &[SourceStatus] {
        self.pending
            .as_ref()
            .unwrap_or(&self.data.inventory)
            .sources()
    }

    /// A refresh starts: collect into a new inventory while the old one stays on screen.
    pub fn start_refresh(&mut self) {
        self.pending = Some(Inventory::new(self.rules.clone()));
        self.collecting = true;
    }

    pub fn apply_event(&mut self, event: CollectEvent) {
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
            None => self.data.inventory.apply(event),
        }
    }

    /// Every source has finished: a refresh's inventory replaces the shown one.
    pub fn collection_finished(&mut self, now: DateTime<Utc>) {
        self.collecting = false;
        if let Some(pending) = self.pending.take() {
            self.data = Data::new(pending, &self.policy, now);
            self.stale = false;
            // Indices into the old inventory mean nothing in the new one.
            self.instance_scope = InstanceScope::All;
            self.crumbs.clear();
            self.rebuild_all();
        } else {
            self.reevaluate(now);
        }
        // The fleet is complete: its free-text index is built now, while nobody types, rather
        // than on the first keystroke of a search.
        self.data.instance_search_text();
    }

    /// Evaluates again if the inventory changed; the runtime paces this while pages arrive.
    pub fn reevaluate(&mut self, now: DateTime<Utc>) {
        if !self.stale {
            return;
        }
        let mut inventory = std::mem::take(&mut self.data.inventory);
        for page in std::mem::take(&mut self.arrived) {
            inventory.apply(page);
        }
        self.data = Data::new(inventory, &self.policy, now);
        self.stale = false;
        self.rebuild_all();
    }

    pub fn needs_evaluation(&self) -> bool {
        self.stale
    }

    // ---- rows -------------------------------------------------------------------------------

    fn rebuild_all(&mut self) {
        // Rows index the fleet as it was: a question about them is void once it changes.
        if self.pending_queue.take().is_some() {
            self.say("the fleet changed while asking: nothing was queued; ask again".to_owned());
        }
        self.resort_images();
        self.resort_instances();
        self.rebuild_drift();
        self.rebuild_queue_rows();
    }

    fn resort_images(&mut self) {
        let data = &self.data;
        let all = (0..data.inventory.images().len() as ImageIdx).collect();
        let column = self.images.sort;
        self.images
            .resort(all, |a, b| data.compare_images(column, a, b));
        self.refilter_images();
    }

    fn refilter_images(&mut self) {
        let data = &self.data;
        let query = self.images.query().clone();
        self.images
            .refilter(|i| query.is_empty() || query.matches(&ImageSubject { data, image: i }));
    }

    fn scoped_instances(&self) -> Vec<InstanceIdx> {
        let inv = &self.data.inventory;
        match self.instance_scope {
            InstanceScope::All => (0..inv.instances().len() as InstanceIdx).collect(),
            InstanceScope::Image(i) => inv.image(i).instances.clone(),
            InstanceScope::Lineage(l) => self.data.instances_in_lineage(l),
            InstanceScope::Group(g) => inv.group(g).members.clone(),
        }
    }

    fn resort_instances(&mut self) {
        let order = self.data.instance_order(self.instances.sort);
        let sorted = if self.instance_scope == InstanceScope::All {
            order.to_vec()
        } else {
            // A drill-down keeps the whole fleet's order: one pass, no sort.
            let mut in_scope = vec![false; order.len()];
            for i in self.scoped_instances() {
                in_scope[i as usize] = true;
            }
            order
                .iter()
                .copied()
                .filter(|&i| in_scope[i as usize])
                .collect()
        };
        self.instances.set_sorted(sorted);
        self.refilter_instances();
    }

    fn refilter_instances(&mut self) {
        let data = &self.data;
        let filter = InstanceFilter::new(data, self.instances.query());
        self.instances.refilter(|i| filter.keep(data, i));
        self.recount_hidden_marks();
    }

    fn recount_hidden_marks(&mut self) {
        self.hidden_marks = if self.marked.is_empty() {
            0
        } else {
            let inv = &self.data.inventory;
            let mut visible = vec![false; inv.instances().len()];
            for &i in &self.instances.rows {
                visible[i as usize] = true;
            }
            self.marked
                .iter()
                .filter(|id| inv.instance_by_id(id).is_none_or(|i| !visible[i as usize]))
                .count()
        };
    }

    /// The current view's marked rows, and how many of them its filter hides.
    pub fn marks(&self) -> Option<(usize, usize)> {
        match self.view {
            View::Instances if !self.marked.is_empty() => {
                Some((self.marked.len(), self.hidden_marks))
            }
            View::Queue if !self.queue_marked.is_empty() => {
                let entries = &self.queue.entries;
                let visible = self
                    .queue_rows
                    .rows
                    .iter()
                    .filter(|&&e| self.queue_marked.contains(&entries[e].instance_id))
                    .count();
                Some((self.queue_marked.len(), self.queue_marked.len() - visible))
            }
            _ => None,
        }
    }

    /// What `r` and `d` act on, in words: hidden marks are named, so nothing acts unseen.
    fn marked_or_selected_label(&self) -> String {
        match self.marks() {
            None => "selected".to_owned(),
            Some((marked, 0)) => format!("{marked} marked"),
            Some((marked, hidden)) => {
                format!("{marked} marked, {hidden} of them hidden by the filter")
            }
        }
    }

    fn rebuild_drift(&mut self) {
        let data = &self.data;
        let inv = &data.inventory;
        let query = self.drift.query().clone();
        let mut rows = Vec::new();
        for &lineage in &data.lineages_by_lag {
            if !query.matches(&DriftSubject {
                data,
                row: DriftRow::Lineage(lineage),
            }) {
                continue;
            }
            rows.push(DriftRow::Lineage(lineage));
            rows.extend(
                inv.lineage(lineage)
                    .images
                    .iter()
                    .rev()
                    .map(|&i| DriftRow::Image(i)),
            );
        }
        let mut groups: Vec<GroupIdx> = (0..inv.groups().len() as GroupIdx)
            .filter(|&g| {
                let eval = data.eval.group_eval(g);
                eval.skew() || eval.drift()
            })
            .filter(|&g| {
                query.matches(&DriftSubject {
                    data,
                    row: DriftRow::Group(g),
                })
            })
            .collect();
        groups.sort_by(|&a, &b| inv.group(a).key.cmp(&inv.group(b).key));
        rows.extend(groups.into_iter().map(DriftRow::Group));
        self.drift.set_rows(rows);
    }

    fn rebuild_queue_rows(&mut self) {
        let entries = &self.queue.entries;
        let data = &self.data;
        let query = self.queue_rows.query().clone();
        let mut rows: Vec<usize> = (0..entries.len())
            .filter(|&e| {
                query.matches(&QueueSubject {
                    data,
                    entry: &entries[e],
                })
            })
            .collect();
        let column = self.queue_rows.sort;
        rows.sort_by(|&a, &b| {
            let (ea, eb) = (&entries[a], &entries[b]);
            let primary = match column {
                0 => std::cmp::Ordering::Equal,
                1 => ea.name.cmp(&eb.name),
                2 => ea.cloud.cmp(&eb.cloud),
                3 => ea.verdict.cmp(&eb.verdict),
                4 => ea.strategy.label().cmp(eb.strategy.label()),
                5 => eb.strategy.executable().cmp(&ea.strategy.executable()),
                6 => ea.target_image.cmp(&eb.target_image),
                _ => ea.reason.cmp(&eb.reason),
            };
            let order = primary.then_with(|| ea.instance_id.cmp(&eb.instance_id));
            if self.queue_rows.descending {
                order.reverse()
            } else {
                order
            }
        });
        self.queue_rows.set_rows(rows);
    }

    // ---- the queue --------------------------------------------------------------------------

    /// Turns the queue off, saying why; nothing is queued, taken off or applied until restart.
    pub fn disable_queue(&mut self, why: String) {
        self.fail(why.clone());
        self.queue_disabled = Some(why);
    }

    pub fn queue_disabled(&self) -> Option<&str> {
        self.queue_disabled.as_deref()
    }

    /// Queue changes live only in memory: the last save failed and none succeeded since.
    pub fn unsaved(&self) -> bool {
        self.unsaved
    }

    pub fn is_queued(&self, instance_id: &str) -> bool {
        self.queued.contains(instance_id)
    }

    /// Changes the queue here at once and keeps the change for the saver (see `save`); returns
    /// how many entries it added or removed.
    fn change_queue(&mut self, change: QueueChange) -> usize {
        let before = self.queue.entries.len();
        change.apply(&mut self.queue);
        let changed = self.queue.entries.len().abs_diff(before);
        if self.queue_path.is_some() && changed > 0 {
            self.pending_changes.push(change);
        }
        self.queue_entries_changed();
        changed
    }

    /// The changes to hand to the saver, if any; each call is one batch in flight.
    pub fn take_queue_changes(&mut self) -> Option<Vec<QueueChange>> {
        if self.queue_path.is_none()
            || (self.pending_changes.is_empty() && self.failed_changes.is_empty())
        {
            return None;
        }
        self.saves_in_flight += 1;
        let mut changes = std::mem::take(&mut self.failed_changes);
        changes.append(&mut self.pending_changes);
        Some(changes)
    }

    pub fn saves_in_flight(&self) -> usize {
        self.saves_in_flight
    }

    /// A save's answer. Once nothing else is on its way, the queue shown is the file's, with
    /// what other processes changed; a failed save keeps its changes for the next one and shows
    /// the queue as unsaved until one succeeds.
    pub fn queue_saved(&mut self, saved: Saved) {
        self.saves_in_flight = self.saves_in_flight.saturating_sub(saved.batches);
        match saved.result {
            Ok(queue) => {
                self.unsaved = false;
                if self.saves_in_flight == 0 && self.pending_changes.is_empty() {
                    let changed = self.adopt_file_queue(queue);
                    if let Some(changed) = changed
                        && !matches!(&self.status, Some(s) if s.error)
                    {
                        self.say(changed);
                    }
                }
            }
            Err(error) => {
                self.unsaved = true;
                let mut changes = saved.changes;
                changes.append(&mut self.failed_changes);
                self.failed_changes = changes;
                self.fail(format!(
                    "{error}: the queue's changes are kept here; the next change tries again"
                ));
            }
        }
    }

    /// Asks for the queue file to be read again (Ctrl-r): the answer comes as a save of no
    /// change, and says what other processes changed.
    pub fn reread_queue(&mut self) -> Option<Vec<QueueChange>> {
        self.queue_path.as_ref()?;
        self.saves_in_flight += 1;
        Some(Vec::new())
    }

    /// Shows the queue as the file holds it; says what changed there that this screen did
    /// not do (another fleetscope queued, removed or applied), if anything did.
    fn adopt_file_queue(&mut self, queue: Queue) -> Option<String> {
        let file: std::collections::HashSet<&str> = queue
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
        self.queue_entries_changed();
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

    /// Saves what is pending now, on this thread: before an apply reads the file, at quit, and
    /// wherever no saver runs.
    pub fn save_now(&mut self) {
        let Some(path) = self.queue_path.clone() else {
            return;
        };
        if let Some(changes) = self.take_queue_changes() {
            self.queue_saved(save::save(&path, 1, changes));
        }
    }

    /// Whether quitting may go ahead: not with unsaved changes, unless `q` was pressed twice.
    pub fn confirm_quit(&mut self) -> bool {
        if !self.unsaved || self.quit_confirmed {
            return true;
        }
        self.quit_armed = true;
        self.fail(
            "the queue has changes the file did not take: q again quits without them, any other key stays"
                .to_owned(),
        );
        false
    }

    fn enqueue(&mut self, instances: Vec<InstanceIdx>, what: &str) {
        if let Some(why) = self.queue_disabled.clone() {
            return self.fail(why);
        }
        if self.applying {
            return self.fail("the queue is being applied; change it when that is done".to_owned());
        }
        if instances.is_empty() {
            self.say(format!("nothing to queue: {what}"));
            return;
        }
        let new = instances
            .iter()
            .filter(|&&i| !self.is_queued(&self.data.instance(i).id))
            .count();
        if new > self.confirm_queue_over {
            self.say(format!(
                "queue {new} instances ({what}: {})? y/N",
                self.data.count_by_verdict(&instances)
            ));
            self.pending_queue = Some(PendingQueue {
                instances,
                what: what.to_owned(),
                spends_marks: false,
            });
            return;
        }
        self.enqueue_now(instances, what);
    }

    /// Queues the marked (or selected) instances; the marks are spent once queued, and kept
    /// while the bulk question waits for its answer.
    fn enqueue_marked(&mut self) {
        let targets = self.marked_or_selected_instances();
        let what = self.marked_or_selected_label();
        let marks = !self.marked.is_empty();
        self.enqueue(targets, &what);
        match self.pending_queue.as_mut() {
            Some(pending) => pending.spends_marks = marks,
            None => self.forget_marks(),
        }
    }

    /// The answer to "queue N instances? y/N": only `y` queues them (and spends the marks
    /// that chose them); anything else leaves queue and marks as they were.
    fn answer_queue(&mut self, pending: PendingQueue, action: Action) {
        match action {
            Action::Input('y' | 'Y') => {
                self.enqueue_now(pending.instances, &pending.what);
                if pending.spends_marks {
                    self.forget_marks();
                }
            }
            _ if pending.spends_marks => self.say("nothing was queued; the marks stay".to_owned()),
            _ => self.say("nothing was queued".to_owned()),
        }
    }

    fn enqueue_now(&mut self, instances: Vec<InstanceIdx>, what: &str) {
        // When the key was pressed, not when the fleet was judged.
        let queued_at = Utc::now();
        let entries: Vec<QueueEntry> = instances
            .iter()
            .filter(|&&i| !self.is_queued(&self.data.instance(i).id))
            .map(|&i| queue::entry_for(&self.data.inventory, &self.data.eval, i, queued_at))
            .collect();
        let not_executable = entries.iter().filter(|e| !e.strategy.executable()).count();
        let added = self.change_queue(QueueChange::Add(entries));
        let already = instances.len() - added;
        let mut text = format!("queued {added} {} ({what})", plural(added, "instance"));
        if already > 0 {
            text.push_str(&format!(", {already} already queued"));
        }
        if not_executable > 0 {
            text.push_str(&format!(
                ", {not_executable} not executable: see the Queue view"
            ));
        }
        if !matches!(&self.status, Some(s) if s.error) {
            self.say(text);
        }
    }

    fn dequeue(&mut self, ids: Vec<String>, what: &str) {
        if let Some(why) = self.queue_disabled.clone() {
            return self.fail(why);
        }
        if self.applying {
            return self.fail("the queue is being applied; change it when that is done".to_owned());
        }
        let removed = self.change_queue(QueueChange::Remove(ids));
        if matches!(&self.status, Some(s) if s.error) {
            return;
        }
        if removed == 0 {
            self.say("nothing to take off the queue".to_owned());
            return;
        }
        self.say(format!(
            "took {removed} {} off the queue ({what})",
            plural(removed, "instance")
        ));
    }

    // ---- applying ---------------------------------------------------------------------------

    /// Asks for the rollout plan of the queue as the file holds it; the confirmation opens
    /// with it.
    fn ask_to_apply(&mut self) -> Option<Effect> {
        if let Some(why) = self.queue_disabled.clone() {
            self.fail(why);
        } else if self.read_only {
            self.fail("--read-only: applying the queue is refused".to_owned());
        } else if self.applying {
            self.say("an apply is already running".to_owned());
        } else if self.planning {
            self.say("the plan is still being made".to_owned());
        } else if self.queue.entries.is_empty() {
            self.say("nothing to apply: the queue is empty".to_owned());
        } else {
            self.planning = true;
            self.say(format!(
                "checking {} queued {} for the rollout plan…",
                self.queue.entries.len(),
                plural(self.queue.entries.len(), "instance")
            ));
            return Some(Effect::PlanApply);
        }
        None
    }

    /// The plan could not be made (another apply holds the lock, the queue file is
    /// unreadable).
    pub fn plan_failed(&mut self, error: String) {
        self.planning = false;
        self.fail(error);
    }

    /// The plan is made from the queue file as it is now: the screen shows that queue, and
    /// the confirmation opens with the plan and what changed, or says why there is nothing
    /// to do. Returns whether the confirmation opened (else nothing will journal the entries
    /// that could not be checked).
    pub fn plan_ready(&mut self, plan: Plan, queue: Queue) -> bool {
        self.planning = false;
        let changed = self.adopt_file_queue(queue);
        if plan.entries() == 0
            && let Some((entry, error)) = plan.unchecked.first()
        {
            self.fail(format!(
                "nothing to apply: {} could not be checked ({}: {error})",
                plan.unchecked.len(),
                entry.instance_id
            ));
            return false;
        }
        if plan.entries() == 0 {
            let why = plan.left.first().map_or(String::new(), |(entry, why)| {
                format!(" ({}: {why})", entry.instance_id)
            });
            let mut text = format!("nothing to apply: all {} left queued{why}", plan.left.len());
            if let Some(changed) = changed {
                text = format!("{text}; {changed}");
            }
            self.fail(text);
            return false;
        }
        self.status = None;
        self.mode = Mode::Confirm {
            phrase: plan.phrase(),
            typed: String::new(),
            plan: Box::new(plan),
            changed,
        };
        true
    }

    /// When a source finished or failed, if this UI saw it happen (not for a snapshot).
    pub fn source_ended(&self, source: &str) -> Option<DateTime<Utc>> {
        self.source_ended.get(source).copied()
    }

    pub fn read_only(&self) -> bool {
        self.read_only
    }

    pub fn applying(&self) -> bool {
        self.applying
    }

    /// What the running rollout reports: the wave in progress and each entry's phase.
    pub fn rollout_event(&mut self, event: RolloutEvent) {
        match event {
            RolloutEvent::Planned(plan) => {
                self.say(format!(
                    "rollout: {} in {}",
                    queue::rollout::count(plan.entries(), "replacement"),
                    queue::rollout::count(plan.waves.len(), "wave")
                ));
            }
            RolloutEvent::WaveStarted { wave, of } => {
                self.rollout_wave = Some((wave, of));
                self.say(format!("wave {wave} of {of} started"));
            }
            RolloutEvent::Phase { instance_id, phase } => {
                if let Phase::Failed(error) = &phase {
                    self.fail(format!("{instance_id}: {error}"));
                }
                self.phases.insert(instance_id, phase);
            }
        }
    }

    pub fn rollout_wave(&self) -> Option<(usize, usize)> {
        self.rollout_wave
    }

    /// The apply ended: the queue on disk is what it left.
    pub fn apply_finished(
        &mut self,
        outcome: Result<String, String>,
        queue: Result<Queue, String>,
    ) -> Option<Effect> {
        self.applying = false;
        match queue {
            Ok(queue) => {
                self.queue = queue;
                self.queue_entries_changed();
            }
            Err(error) => {
                self.fail(error);
                return None;
            }
        }
        match outcome {
            Ok(summary) => self.say(summary),
            Err(error) => self.fail(error),
        }
        // The fleet changed: collect it again, so replaced instances show as they are now.
        if self.live && !self.collecting {
            self.start_refresh();
            return Some(Effect::Refresh);
        }
        None
    }

    fn queue_entries_changed(&mut self) {
        self.queued = self
            .queue
            .entries
            .iter()
            .map(|e| e.instance_id.clone())
            .collect();
        self.queue_marked.retain(|id| self.queued.contains(id));
        self.rebuild_queue_rows();
    }

    // ---- update -----------------------------------------------------------------------------

    /// Whether keys are text: a filter, a command, a confirmation or a y/N answer.
    pub fn typing(&self) -> bool {
        !matches!(self.mode, Mode::Normal) || self.pending_queue.is_some()
    }

    fn say(&mut self, text: String) {
        self.status = Some(Status { text, error: false });
    }

    fn fail(&mut self, text: String) {
        self.status = Some(Status { text, error: true });
    }

    /// Applies one action; returns what the runtime must do, if anything.
    pub fn update(&mut self, action: Action) -> Option<Effect> {
        // Ctrl-C quits whatever is open or unsaved.
        if action == Action::ForceQuit {
            self.quit_confirmed = true;
        }
        if let Some(pending) = self.pending_queue.take() {
            if action == Action::ForceQuit {
                return Some(Effect::Quit);
            }
            self.status = None;
            self.answer_queue(pending, action);
            return None;
        }
        if self.help.is_some() {
            return self.update_help(action);
        }
        if self.detail.is_some() {
            return self.update_detail(action);
        }
        if self.typing() {
            return self.update_input(action);
        }
        if !matches!(action, Action::ScrollUp | Action::ScrollDown) {
            self.status = None;
        }
        let quit_armed = std::mem::take(&mut self.quit_armed);
        match action {
            Action::Quit if self.unsaved && !quit_armed => {
                self.confirm_quit();
            }
            Action::Quit if self.applying => self.fail(
                "an apply is running: wait for it to finish (Ctrl-C quits anyway, stopping it mid-step)"
                    .to_owned(),
            ),
            Action::Quit => {
                self.quit_confirmed = quit_armed;
                return Some(Effect::Quit);
            }
            Action::ForceQuit => return Some(Effect::Quit),
            Action::Show(view) => self.view = view,
            Action::NextView => self.view = self.view.next(),
            Action::PreviousView => self.view = self.view.previous(),
            Action::Up | Action::ScrollUp => self.move_selection(-1),
            Action::Down | Action::ScrollDown => self.move_selection(1),
            Action::PageUp => self.move_selection(-(self.page() as isize)),
            Action::PageDown => self.move_selection(self.page() as isize),
            Action::Top => self.move_selection(isize::MIN / 2),
            Action::Bottom => self.move_selection(isize::MAX / 2),
            Action::SortNext => self.change_sort(1),
            Action::SortPrevious => self.change_sort(-1),
            Action::SortReverse => self.reverse_sort(),
            Action::StartFilter => {
                if let Some(previous) = self.filter_input().map(str::to_owned) {
                    self.mode = Mode::Filter { previous };
                }
            }
            Action::StartCommand => {
                self.mode = Mode::Command {
                    line: String::new(),
                }
            }
            Action::ToggleHelp => self.help = Some(0),
            Action::ToggleMark => self.toggle_mark(),
            Action::MarkAllVisible => self.mark_all_visible(),
            Action::ClearMarks => self.clear_marks(),
            Action::UndoClearMarks => self.undo_clear_marks(),
            Action::QueueSelected => self.enqueue_marked(),
            Action::QueueAllOnSelected => self.queue_all_on_selected(),
            Action::Dequeue => {
                let ids = self.dequeue_targets();
                let what = self.marked_or_selected_label();
                self.dequeue(ids, &what);
                self.forget_marks();
            }
            Action::Apply => return self.ask_to_apply(),
            Action::NotHere(views) => {
                let places: Vec<String> = views
                    .iter()
                    .map(|v| {
                        let number = View::ALL.iter().position(|a| a == v).unwrap_or(0) + 1;
                        format!("{} ({number})", v.title())
                    })
                    .collect();
                self.say(format!(
                    "not in {}: that key works in {}",
                    self.view.title(),
                    places.join(", ")
                ));
            }
            Action::StopApply if self.applying && !self.stopping => {
                self.stopping = true;
                self.say("stopping: replacements in flight finish, nothing new starts".to_owned());
                return Some(Effect::StopApply);
            }
            Action::StopApply => self.say("no apply is running".to_owned()),
            Action::DrillDown => self.drill_down(),
            Action::ShowDetail => {
                if super::detail::content(self).is_some() {
                    self.detail = Some(0);
                }
            }
            Action::Back => self.back(),
            Action::Refresh => {
                if !self.live {
                    self.say("a snapshot has nothing to collect again".to_owned());
                } else if self.collecting {
                    self.say("still collecting".to_owned());
                } else {
                    self.start_refresh();
                    self.say("collecting again; the screen updates when it is done".to_owned());
                    return Some(Effect::Refresh);
                }
            }
            Action::CopyId => {
                if let Some(id) = self.selected_id() {
                    self.say(format!("copied {id}"));
                    return Some(Effect::Copy(id));
                }
            }
            Action::Click { column, row } => self.click(column, row),
            Action::Input(_)
            | Action::DeleteChar
            | Action::ClearInput
            | Action::Complete
            | Action::Submit
            | Action::Cancel => {}
        }
        None
    }

    /// Whether an overlay (help, detail pane) takes the keys.
    pub fn modal(&self) -> bool {
        self.help.is_some() || self.detail.is_some()
    }

    pub fn policy(&self) -> &PolicyConfig {
        &self.policy
    }

    fn update_detail(&mut self, action: Action) -> Option<Effect> {
        match action {
            Action::Quit | Action::ForceQuit => return Some(Effect::Quit),
            Action::Down | Action::ScrollDown => {
                self.detail = self.detail.map(|s| s.saturating_add(1));
            }
            Action::Up | Action::ScrollUp => {
                self.detail = self.detail.map(|s| s.saturating_sub(1));
            }
            Action::ToggleHelp | Action::Back | Action::Cancel | Action::ShowDetail => {
                self.detail = None;
            }
            _ => {}
        }
        None
    }

    fn update_help(&mut self, action: Action) -> Option<Effect> {
        match action {
            Action::Quit | Action::ForceQuit => return Some(Effect::Quit),
            Action::Down | Action::ScrollDown => {
                self.help = self.help.map(|s| s.saturating_add(1));
            }
            Action::Up | Action::ScrollUp => {
                self.help = self.help.map(|s| s.saturating_sub(1));
            }
            Action::ToggleHelp | Action::Back | Action::Cancel => self.help = None,
            _ => {}
        }
        None
    }

    fn update_input(&mut self, action: Action) -> Option<Effect> {
        match (&mut self.mode, action) {
            (_, Action::Quit | Action::ForceQuit) => return Some(Effect::Quit),
            (Mode::Filter { .. }, Action::Input(c)) => self.edit_filter(|text| text.push(c)),
            (Mode::Filter { .. }, Action::DeleteChar) => self.edit_filter(|text| {
                text.pop();
            }),
            (Mode::Filter { .. }, Action::ClearInput) => self.edit_filter(String::clear),
            (Mode::Filter { .. }, Action::Complete) => self.complete_filter_field(),
            (Mode::Filter { previous }, Action::Submit) => {
                let previous = std::mem::take(previous);
                self.mode = Mode::Normal;
                self.keep_previous_on_error(previous);
            }
            (Mode::Filter { previous }, Action::Cancel) => {
                let previous = std::mem::take(previous);
                self.mode = Mode::Normal;
                self.set_filter(previous);
            }
            (Mode::Command { line }, Action::Input(c)) => line.push(c),
            (Mode::Command { line }, Action::DeleteChar) => {
                line.pop();
            }
            (Mode::Command { line }, Action::ClearInput) => line.clear(),
            (Mode::Command { .. }, Action::Complete) => self.complete_command(),
            (Mode::Command { line }, Action::Submit) => {
                let line = std::mem::take(line);
                self.mode = Mode::Normal;
                return self.run_command(&line);
            }
            (Mode::Command { .. }, Action::Cancel) => self.mode = Mode::Normal,
            (Mode::Confirm { typed, .. }, Action::Input(c)) => typed.push(c),
            (Mode::Confirm { typed, .. }, Action::DeleteChar) => {
                typed.pop();
            }
            (Mode::Confirm { typed, .. }, Action::ClearInput) => typed.clear(),
            (
                Mode::Confirm {
                    phrase,
                    typed,
                    plan,
                    ..
                },
                Action::Submit,
            ) => {
                let confirmed = typed.trim() == phrase.as_str();
                let plan = std::mem::take(plan);
                self.mode = Mode::Normal;
                if confirmed {
                    self.applying = true;
                    self.stopping = false;
                    self.template_steps = plan.templates.clone();
                    self.phases.clear();
                    self.rollout_wave = None;
                    self.say("applying the queue…".to_owned());
                    return Some(Effect::Apply(plan));
                }
                self.say("not confirmed: nothing was changed".to_owned());
            }
            (Mode::Confirm { .. }, Action::Cancel) => {
                self.mode = Mode::Normal;
                self.say("nothing was changed".to_owned());
            }
            _ => {}
        }
        None
    }

    // ---- selection and sorting --------------------------------------------------------------

    fn page(&self) -> usize {
        usize::from(self.layout.rows.height.max(1))
    }

    fn move_selection(&mut self, delta: isize) {
        match self.view {
            View::Overview => {
                let last = self.sources().len().saturating_sub(1);
                self.selected_source = self.selected_source.saturating_add_signed(delta).min(last);
            }
            View::Images => self.images.move_by(delta),
            View::Instances => self.instances.move_by(delta),
            View::Drift => self.drift.move_by(delta),
            View::Queue => self.queue_rows.move_by(delta),
        }
    }

    pub fn columns_of(view: View) -> &'static [super::table::Column] {
        super::draw::columns_of(view)
    }

    fn change_sort(&mut self, step: isize) {
        let count = App::columns_of(self.view).len();
        let list_sort = match self.view {
            View::Images => &mut self.images.sort,
            View::Instances => &mut self.instances.sort,
            View::Queue => &mut self.queue_rows.sort,
            View::Overview | View::Drift => {
                self.say("this view keeps its own order: most lagging lineage first".to_owned());
                return;
            }
        };
        *list_sort = (*list_sort as isize + step).rem_euclid(count as isize) as usize;
        self.apply_sort();
    }

    fn reverse_sort(&mut self) {
        match self.view {
            View::Images => self.images.descending = !self.images.descending,
            View::Instances => self.instances.descending = !self.instances.descending,
            View::Queue => self.queue_rows.descending = !self.queue_rows.descending,
            View::Overview | View::Drift => return,
        }
        self.apply_sort();
    }

    fn apply_sort(&mut self) {
        match self.view {
            View::Images => self.resort_images(),
            View::Instances => self.resort_instances(),
            View::Queue => self.rebuild_queue_rows(),
            View::Overview | View::Drift => {}
        }
    }

    /// `:sort <column> [asc|desc]`.
    fn sort_by_name(&mut self, name: &str, direction: Option<&str>) -> Result<(), String> {
        let columns = App::columns_of(self.view);
        let position = columns
            .iter()
            .position(|c| c.title.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                let names: Vec<String> = columns.iter().map(|c| c.title.to_lowercase()).collect();
                format!("no column {name:?} here; try {}", names.join(", "))
            })?;
        let descending = match direction {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => return Err(format!("{other:?}: say asc or desc")),
        };
        match self.view {
            View::Images => (self.images.sort, self.images.descending) = (position, descending),
            View::Instances => {
                (self.instances.sort, self.instances.descending) = (position, descending)
            }
            View::Queue => {
                (self.queue_rows.sort, self.queue_rows.descending) = (position, descending)
            }
            View::Overview | View::Drift => return Err("this view does not sort".to_owned()),
        }
        self.apply_sort();
        Ok(())
    }

    // ---- filter -----------------------------------------------------------------------------

    fn filter_input(&self) -> Option<&str> {
        match self.view {
            View::Overview => None,
            View::Images => Some(&self.images.input),
            View::Instances => Some(&self.instances.input),
            View::Drift => Some(&self.drift.input),
            View::Queue => Some(&self.queue_rows.input),
        }
    }

    pub fn filter_error(&self) -> Option<&str> {
        match self.view {
            View::Overview => None,
            View::Images => self.images.input_error.as_deref(),
            View::Instances => self.instances.input_error.as_deref(),
            View::Drift => self.drift.input_error.as_deref(),
            View::Queue => self.queue_rows.input_error.as_deref(),
        }
    }

    fn edit_filter(&mut self, edit: impl FnOnce(&mut String)) {
        if let Some(mut text) = self.filter_input().map(str::to_owned) {
            edit(&mut text);
            self.set_filter(text);
        }
    }

    /// Sets the current view's filter and narrows its rows: this is the per-keystroke path.
    pub fn set_filter(&mut self, text: String) {
        match self.view {
            View::Overview => {}
            View::Images => {
                self.images.set_input(text, IMAGE_FIELDS);
                self.refilter_images();
            }
            View::Instances => {
                self.instances.set_input(text, INSTANCE_FIELDS);
                self.refilter_instances();
            }
            View::Drift => {
                self.drift.set_input(text, DRIFT_FIELDS);
                self.rebuild_drift();
            }
            View::Queue => {
                self.queue_rows.set_input(text, QUEUE_FIELDS);
                self.rebuild_queue_rows();
            }
        }
    }

    /// A committed filter that does not parse gives way to the one committed before it, and
    /// the status says why: what is applied is always what the title shows.
    fn keep_previous_on_error(&mut self, previous: String) {
        let Some(error) = self.filter_error().map(str::to_owned) else {
            return;
        };
        self.set_filter(previous);
        let kept = match self.filter_input() {
            Some(text) if !text.is_empty() => format!("kept /{text}"),
            _ => "no filter applied".to_owned(),
        };
        self.fail(format!("filter: {error}; {kept}"));
    }

    /// The example `?` shows for a field in a view: the field's own, unless that view's rows
    /// would not match it.
    pub fn filter_example(view: View, field: Field) -> &'static str {
        match (view, field) {
            (View::Images, Field::Tag) => "tag:build",
            _ => field.example(),
        }
    }

    pub fn fields_of(view: View) -> &'static [Field] {
        match view {
            View::Overview => &[],
            View::Images => IMAGE_FIELDS,
            View::Instances => INSTANCE_FIELDS,
            View::Drift => DRIFT_FIELDS,
            View::Queue => QUEUE_FIELDS,
        }
    }

    /// Tab in the filter completes a field name of the last word.
    fn complete_filter_field(&mut self) {
        let Some(text) = self.filter_input().map(str::to_owned) else {
            return;
        };
        let start = text.rfind(' ').map_or(0, |p| p + 1);
        let word = &text[start..];
        let (bang, stem) = word
            .strip_prefix('!')
            .map_or(("", word), |rest| ("!", rest));
        if stem.contains(':') {
            return;
        }
        let names: Vec<&str> = App::fields_of(self.view)
            .iter()
            .map(|f| f.as_str())
            .filter(|name| name.starts_with(stem))
            .collect();
        match names.as_slice() {
            [] => {}
            [one] => self.set_filter(format!("{}{bang}{one}:", &text[..start])),
            many => {
                let common = common_prefix(many);
                self.set_filter(format!("{}{bang}{common}", &text[..start]));
                self.say(format!("fields: {}", many.join(" ")));
            }
        }
    }

    // ---- commands ---------------------------------------------------------------------------

    fn complete_command(&mut self) {
        let Mode::Command { line } = &self.mode else {
            return;
        };
        let line = line.clone();
        let (candidates, prefix, stem): (Vec<String>, String, &str) = match line.split_once(' ') {
            None => (
                COMMANDS.iter().map(|c| (*c).to_owned()).collect(),
                String::new(),
                line.as_str(),
            ),
            Some(("sort", rest)) => (
                App::columns_of(self.view)
                    .iter()
                    .map(|c| c.title.to_lowercase())
                    .collect(),
                "sort ".to_owned(),
                rest,
            ),
            Some(_) => return,
        };
        let matches: Vec<&str> = candidates
            .iter()
            .map(String::as_str)
            .filter(|c| c.starts_with(stem))
            .collect();
        let completed = match matches.as_slice() {
            [] => return,
            [one] => format!("{prefix}{one} "),
            many => {
                self.say(many.join(" "));
                format!("{prefix}{}", common_prefix(many))
            }
        };
        self.mode = Mode::Command { line: completed };
    }

    fn run_command(&mut self, line: &str) -> Option<Effect> {
        let mut words = line.split_whitespace();
        let word = words.next()?;
        let matching: Vec<&str> = COMMANDS
            .iter()
            .copied()
            .filter(|c| c.starts_with(word))
            .collect();
        let command = match (matching.as_slice(), word) {
            (_, "q" | "q!") => "quit",
            ([one], _) => one,
            (many, _) if many.contains(&word) => word,
            ([], _) => {
                self.fail(format!(
                    "unknown command {word:?}; try {}",
                    COMMANDS.join(", ")
                ));
                return None;
            }
            (many, _) => {
                self.fail(format!("{word:?} could be {}", many.join(", ")));
                return None;
            }
        };
        if let Some(view) = View::ALL.into_iter().find(|v| v.command() == command) {
            return self.update(Action::Show(view));
        }
        match command {
            "quit" => Some(Effect::Quit),
            "refresh" => self.update(Action::Refresh),
            "help" => self.update(Action::ToggleHelp),
            "unmark" => self.update(Action::ClearMarks),
            "filter" => {
                let rest: Vec<&str> = words.collect();
                let previous = self.filter_input().unwrap_or_default().to_owned();
                self.set_filter(rest.join(" "));
                self.keep_previous_on_error(previous);
                None
            }
            "sort" => {
                let Some(column) = words.next() else {
                    self.fail("sort: name a column".to_owned());
                    return None;
                };
                if let Err(error) = self.sort_by_name(column, words.next()) {
                    self.fail(format!("sort: {error}"));
                }
                None
            }
            _ => None,
        }
    }

    // ---- marks, drill-down, selection -------------------------------------------------------

    fn toggle_mark(&mut self) {
        match self.view {
            View::Instances => {
                if let Some(i) = self.instances.selected_row() {
                    let id = self.data.instance(i).id.to_string();
                    if !self.marked.remove(&id) {
                        self.marked.insert(id);
                    }
                    self.instances.move_by(1);
                    self.cleared_marks = None;
                    self.recount_hidden_marks();
                }
            }
            View::Queue => {
                if let Some(e) = self.queue_rows.selected_row() {
                    let id = self.queue.entries[e].instance_id.clone();
                    if !self.queue_marked.remove(&id) {
                        self.queue_marked.insert(id);
                    }
                    self.queue_rows.move_by(1);
                    self.cleared_marks = None;
                }
            }
            _ => {}
        }
    }

    fn mark_all_visible(&mut self) {
        let (ids, marks): (Vec<&str>, &mut HashSet<String>) = match self.view {
            View::Instances => (
                self.instances
                    .rows
                    .iter()
                    .map(|&i| self.data.instance(i).id.as_str())
                    .collect(),
                &mut self.marked,
            ),
            View::Queue => (
                self.queue_rows
                    .rows
                    .iter()
                    .map(|&e| self.queue.entries[e].instance_id.as_str())
                    .collect(),
                &mut self.queue_marked,
            ),
            _ => return,
        };
        let all_marked = ids.iter().all(|id| marks.contains(*id));
        if all_marked {
            for id in &ids {
                marks.remove(*id);
            }
        } else {
            marks.extend(ids.iter().map(|id| (*id).to_owned()));
        }
        let count = ids.len();
        self.cleared_marks = None;
        self.recount_hidden_marks();
        self.say(format!(
            "{} {count} {}",
            if all_marked { "unmarked" } else { "marked" },
            plural(count, "row")
        ));
    }

    /// Clears every mark, says so, and keeps them for `U` until the next change to marks.
    fn clear_marks(&mut self) {
        let count = self.marked.len() + self.queue_marked.len();
        if count == 0 {
            return;
        }
        let marked = std::mem::take(&mut self.marked);
        let queue_marked = std::mem::take(&mut self.queue_marked);
        self.cleared_marks = Some((marked, queue_marked));
        self.recount_hidden_marks();
        self.say(format!(
            "cleared {count} {}; U brings {} back",
            plural(count, "mark"),
            if count == 1 { "it" } else { "them" }
        ));
    }

    fn undo_clear_marks(&mut self) {
        match self.cleared_marks.take() {
            Some((marked, queue_marked)) => {
                let count = marked.len() + queue_marked.len();
                self.marked.extend(marked);
                self.queue_marked.extend(queue_marked);
                self.queue_marked.retain(|id| self.queued.contains(id));
                self.recount_hidden_marks();
                self.say(format!("{count} {} back", plural(count, "mark")));
            }
            None => self.say("no cleared marks to bring back".to_owned()),
        }
    }

    /// Marks that were acted on are spent: they go without an undo.
    fn forget_marks(&mut self) {
        self.marked.clear();
        self.queue_marked.clear();
        self.cleared_marks = None;
        self.hidden_marks = 0;
    }

    fn marked_or_selected_instances(&self) -> Vec<InstanceIdx> {
        if self.marked.is_empty() {
            return self.instances.selected_row().into_iter().collect();
        }
        self.marked
            .iter()
            .filter_map(|id| self.data.inventory.instance_by_id(id))
            .collect()
    }

    fn dequeue_targets(&self) -> Vec<String> {
        match self.view {
            View::Queue if !self.queue_marked.is_empty() => {
                self.queue_marked.iter().cloned().collect()
            }
            View::Queue => self
                .queue_rows
                .selected_row()
                .map(|e| self.queue.entries[e].instance_id.clone())
                .into_iter()
                .collect(),
            View::Instances => self
                .marked_or_selected_instances()
                .into_iter()
                .map(|i| self.data.instance(i).id.to_string())
                .collect(),
            _ => Vec::new(),
        }
    }

    fn queue_all_on_selected(&mut self) {
        let mut template_first = None;
        let data = &self.data;
        let (targets, what): (Vec<InstanceIdx>, String) = match self.view {
            View::Images => match self.images.selected_row() {
                Some(i) => (
                    data.replaceable_on_image(i).collect(),
                    format!("image {}", data.image_label(i)),
                ),
                None => return,
            },
            View::Instances => match self.instances.selected_row() {
                Some(i) => {
                    let image = data.inventory.image_of(i);
                    (
                        data.replaceable_on_image(image).collect(),
                        format!("image {}", data.image_label(image)),
                    )
                }
                None => return,
            },
            View::Drift => match self.drift.selected_row() {
                Some(DriftRow::Lineage(l)) => (
                    data.inventory
                        .lineage(l)
                        .images
                        .iter()
                        .flat_map(|&i| data.replaceable_on_image(i))
                        .collect(),
                    format!("lineage {}", data.inventory.lineage(l).name),
                ),
                Some(DriftRow::Image(i)) => (
                    data.replaceable_on_image(i).collect(),
                    format!("image {}", data.image_label(i)),
                ),
                Some(DriftRow::Group(g)) => {
                    template_first = self.template_step_note(g);
                    let members = &data.inventory.group(g).members;
                    let mut images: Vec<ImageIdx> = members
                        .iter()
                        .map(|&m| data.inventory.image_of(m))
                        .collect();
                    images.sort_unstable();
                    images.dedup();
                    (
                        images
                            .into_iter()
                            .flat_map(|i| data.replaceable_on_image(i))
                            .filter(|m| data.inventory.group_of(*m) == Some(g))
                            .collect(),
                        format!("group {}", data.group_label(g)),
                    )
                }
                None => return,
            },
            View::Overview | View::Queue => return,
        };
        self.enqueue(targets, &what);
        if let Some(note) = template_first
            && self.pending_queue.is_none()
            && let Some(status) = self.status.as_mut()
            && !status.error
        {
            status.text.push_str(&note);
        }
    }

    /// What an apply will do first for a group in template drift, said when its members are
    /// queued.
    fn template_step_note(&self, group: GroupIdx) -> Option<String> {
        let TemplateStatus::Drift { golden, .. } = &self.data.eval.group_eval(group).template
        else {
            return None;
        };
        let label = self.data.group_label(group);
        let golden = golden.as_deref().unwrap_or("the golden image");
        Some(if self.template_updates {
            format!("; the apply first points {label} at {golden} (a template step)")
        } else {
            format!("; template updates are off: point {label} at {golden} first")
        })
    }

    fn drill_down(&mut self) {
        let scope = match self.view {
            View::Images => self.images.selected_row().map(InstanceScope::Image),
            View::Drift => self.drift.selected_row().map(|row| match row {
                DriftRow::Lineage(l) => InstanceScope::Lineage(l),
                DriftRow::Image(i) => InstanceScope::Image(i),
                DriftRow::Group(g) => InstanceScope::Group(g),
            }),
            _ => None,
        };
        let Some(scope) = scope else {
            return;
        };
        self.crumbs.push(Crumb {
            view: self.view,
            scope: self.instance_scope,
            input: self.instances.input.clone(),
            selected: self.instances.selected,
        });
        self.view = View::Instances;
        self.instance_scope = scope;
        self.instances.set_input(String::new(), INSTANCE_FIELDS);
        self.instances.selected = 0;
        self.instances.offset = 0;
        self.resort_instances();
    }

    fn back(&mut self) {
        if self.view == View::Instances
            && let Some(crumb) = self.crumbs.pop()
        {
            self.instance_scope = crumb.scope;
            self.instances.set_input(crumb.input, INSTANCE_FIELDS);
            self.resort_instances();
            self.instances.select(crumb.selected);
            self.view = crumb.view;
            return;
        }
        if self.filter_input().is_some_and(|f| !f.is_empty()) {
            self.set_filter(String::new());
        } else {
            self.clear_marks();
        }
    }

    /// What `y` copies: the full id of the selected row.
    fn selected_id(&self) -> Option<String> {
        let data = &self.data;
        match self.view {
            View::Overview => None,
            View::Images => self
                .images
                .selected_row()
                .map(|i| data.inventory.image(i).image.key.clone()),
            View::Instances => self
                .instances
                .selected_row()
                .map(|i| data.instance(i).id.to_string()),
            View::Drift => self.drift.selected_row().map(|row| match row {
                DriftRow::Lineage(l) => data.inventory.lineage(l).name.clone(),
                DriftRow::Image(i) => data.inventory.image(i).image.key.clone(),
                DriftRow::Group(g) => data.inventory.group(g).key.clone(),
            }),
            View::Queue => self
                .queue_rows
                .selected_row()
                .map(|e| self.queue.entries[e].instance_id.clone()),
        }
    }

    fn click(&mut self, column: u16, row: u16) {
        let tabs = self.layout.tabs;
        if row == tabs.y && column >= tabs.x && column < tabs.x + tabs.width {
            if let Some(view) = super::draw::tab_at(column - tabs.x) {
                self.view = view;
            }
            return;
        }
        let rows = self.layout.rows;
        if row < rows.y || row >= rows.y + rows.height || column < rows.x {
            return;
        }
        let position = usize::from(row - rows.y);
        match self.view {
            View::Overview => {}
            View::Images => self.images.select(self.images.offset + position),
            View::Instances => self.instances.select(self.instances.offset + position),
            View::Drift => self.drift.select(self.drift.offset + position),
            View::Queue => self.queue_rows.select(self.queue_rows.offset + position),
        }
    }

    pub fn instance_scope_label(&self) -> Option<String> {
        let data = &self.data;
        match self.instance_scope {
            InstanceScope::All => None,
            InstanceScope::Image(i) => Some(format!("on image {}", data.image_label(i))),
            InstanceScope::Lineage(l) => {
                Some(format!("in lineage {}", data.inventory.lineage(l).name))
            }
            InstanceScope::Group(g) => Some(format!("in group {}", data.group_label(g))),
        }
    }
}

fn plural(count: usize, word: &str) -> String {
    if count == 1 {
        word.to_owned()
    } else {
        format!("{word}s")
    }
}

fn common_prefix(words: &[&str]) -> String {
    let first = words.first().copied().unwrap_or("");
    let len = words.iter().fold(first.len(), |len, w| {
        first
            .bytes()
            .zip(w.bytes())
            .take(len)
            .take_while(|(a, b)| a == b)
            .count()
    });
    first[..len].to_owned()
}
