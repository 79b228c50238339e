//! The interactive state and its one entry point, `App::handle(Msg) -> Vec<Effect>`. No
//! terminal, no network, no file: the runtime feeds it messages, performs the effects it
//! returns, and draws it. Each concern lives in a part (the fleet, the queue, the rollout, the
//! marks, the open dialog) that knows nothing of `App`; `App` coordinates them and alone turns
//! their outcomes into status text and effects.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::action::{Action, Effect, View};
use super::command::{self, Command};
use super::dialog::{Confirm, Dialog, Edit, Outcome, Question};
use super::fleet::{Finished, Fleet};
use super::marks::{Marked, Marks};
use super::queue_state::{QueueState, SaveOutcome};
use super::rollout_state::{NotNow, RolloutState};
use super::save::{QueueChange, Saved};
use super::table::{Column, ListState};
use crate::core::event::CollectEvent;
use crate::core::inventory::{GroupIdx, ImageIdx, InstanceIdx, Inventory};
use crate::core::lineage::LineageRules;
use crate::core::model::SourceStatus;
use crate::core::policy::{PolicyConfig, TemplateStatus};
use crate::query::data::{self, Data};
use crate::query::filter::Field;
pub use crate::query::subject::DriftRow;
use crate::query::subject::{
    DRIFT_FIELDS, DriftSubject, IMAGE_FIELDS, INSTANCE_FIELDS, ImageSubject, InstanceFilter,
    QUEUE_FIELDS, QueueSubject,
};
use crate::queue::rollout::{Plan, RolloutEvent};
use crate::queue::{self, Queue, QueueEntry};

/// Everything that reaches the app: the operator's actions and what the workers report.
#[derive(Debug)]
pub enum Msg {
    Action(Action),
    /// A collection event (a page, a source's end).
    Collected(CollectEvent),
    /// Every source has finished; the fleet is judged as of `now`.
    CollectionDone {
        now: DateTime<Utc>,
    },
    /// The runtime's pace for evaluating pages of a first collection as they stream in.
    Evaluate {
        now: DateTime<Utc>,
    },
    /// The saver's answer to a batch of queue changes (or to a re-read).
    Saved(Saved),
    /// The rollout plan of the queue file, with that file's queue; or why none was made.
    Planned(Result<(Plan, Queue), String>),
    Rollout(RolloutEvent),
    /// The apply ended, and the queue file as it left it.
    ApplyDone {
        outcome: Result<String, String>,
        queue: Result<Queue, String>,
    },
    /// The snapshot asked for on the command line was written, or why not.
    SnapshotSaved(Result<(), String>),
    /// Where the last frame put things.
    Drawn(Layout),
    /// Nothing new: hand over the queue changes the saver has not had yet (before a plan reads
    /// the file, and at quit).
    Flush,
}

/// Which instances the Instances view lists: all, or those under what was drilled into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceScope {
    All,
    Image(ImageIdx),
    Lineage(crate::core::inventory::LineageIdx),
    Group(GroupIdx),
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
    /// Whether queue changes are saved (as `Effect::Save`); false keeps them in memory.
    pub persist_queue: bool,
    /// False for a snapshot: there is nothing to collect again.
    pub live: bool,
    /// Whether sources are streaming into `inventory` right now.
    pub collecting: bool,
    /// `--read-only`: applying the queue is refused.
    pub read_only: bool,
    /// Queueing more instances than this at once asks first.
    pub confirm_queue_over: usize,
    /// Whether an apply makes template steps for groups in template drift.
    pub template_updates: bool,
    /// Save the first complete collection as a snapshot (`Effect::SaveSnapshot`).
    pub save_snapshot: bool,
    /// Why the queue cannot be used (its file is damaged), if it cannot.
    pub queue_disabled: Option<String>,
    pub badges: Badges,
}

impl AppInit {
    /// A fleet to browse as it is, with the configuration's defaults: an empty queue kept in
    /// memory, nothing collecting, applies allowed.
    pub fn browse(
        inventory: Inventory,
        rules: LineageRules,
        policy: PolicyConfig,
        now: DateTime<Utc>,
    ) -> AppInit {
        AppInit {
            inventory,
            rules,
            policy,
            now,
            queue: Queue::default(),
            persist_queue: false,
            live: true,
            collecting: false,
            read_only: false,
            confirm_queue_over: crate::config::DEFAULT_CONFIRM_QUEUE_OVER,
            template_updates: true,
            save_snapshot: false,
            queue_disabled: None,
            badges: Badges::default(),
        }
    }
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

/// Screen regions from the last frame, for mouse clicks and page sizes, and the scroll offset
/// the frame chose to keep the selection in view.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Layout {
    pub tabs: ratatui::layout::Rect,
    /// Where table rows start (below the header) and how many fit.
    pub rows: ratatui::layout::Rect,
    /// The first row shown of the current view's list.
    pub offset: usize,
}

/// Quitting with unsaved queue changes takes a second `q`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Quitting {
    #[default]
    No,
    /// `q` was pressed with unsaved changes: a second `q` quits without them.
    Armed,
    /// Quit even with unsaved changes (a second `q`, or Ctrl-C).
    Confirmed,
}

pub struct App {
    pub data: Data,
    pub fleet: Fleet,
    queue: QueueState,
    pub rollout: RolloutState,
    marks: Marks,
    dialog: Option<Dialog>,
    pub view: View,
    pub images: ListState<ImageIdx>,
    pub instances: ListState<InstanceIdx>,
    pub instance_scope: InstanceScope,
    pub drift: ListState<DriftRow>,
    pub queue_rows: ListState<usize>,
    /// The Overview's selected source, for its whole error.
    pub selected_source: usize,
    crumbs: Vec<Crumb>,
    pub status: Option<Status>,
    pub layout: Layout,
    pub badges: Badges,
    quitting: Quitting,
}

impl App {
    pub fn new(init: AppInit) -> App {
        let mut queue = QueueState::new(init.queue, init.persist_queue, init.confirm_queue_over);
        let mut status = None;
        if let Some(why) = init.queue_disabled {
            status = Some(Status {
                text: why.clone(),
                error: true,
            });
            queue.disable(why);
        }
        let mut fleet = Fleet::new(init.rules, init.policy, init.live, init.collecting);
        if init.save_snapshot {
            fleet.want_snapshot();
        }
        let mut app = App {
            data: Data::new(init.inventory, fleet.policy(), init.now),
            fleet,
            queue,
            rollout: RolloutState::new(init.read_only, init.template_updates),
            marks: Marks::default(),
            dialog: None,
            view: View::Overview,
            images: ListState::new(data::IMAGE_VERDICT, true),
            instances: ListState::new(data::INSTANCE_VERDICT, true),
            instance_scope: InstanceScope::All,
            drift: ListState::new(0, false),
            queue_rows: ListState::new(0, false),
            selected_source: 0,
            crumbs: Vec::new(),
            status,
            layout: Layout::default(),
            badges: init.badges,
            quitting: Quitting::No,
        };
        app.rebuild_all();
        app
    }

    /// The one way in: handles a message, and returns what the runtime must do.
    pub fn handle(&mut self, msg: Msg) -> Vec<Effect> {
        let mut effects = Vec::new();
        // Only the operator changes the queue; a failed save is retried with the next change,
        // or when everything must be in the file, never at once (which would retry forever
        // while the disk says no).
        let operator = matches!(msg, Msg::Action(_) | Msg::Flush);
        let retry = matches!(msg, Msg::Flush);
        match msg {
            Msg::Action(action) => self.act(action, &mut effects),
            Msg::Collected(event) => self.fleet.collected(event, &mut self.data),
            Msg::CollectionDone { now } => {
                match self.fleet.finished(&mut self.data, now) {
                    Finished::Replaced => {
                        // Indices into the old inventory mean nothing in the new one.
                        self.instance_scope = InstanceScope::All;
                        self.crumbs.clear();
                        self.rebuild_all();
                    }
                    Finished::Evaluated => self.rebuild_all(),
                    Finished::Unchanged => {}
                }
                if self.fleet.take_snapshot_wish() {
                    effects.push(Effect::SaveSnapshot(super::action::Snapshot {
                        inventory: Arc::clone(&self.data.inventory),
                        taken_at: now,
                    }));
                }
            }
            Msg::Evaluate { now } => {
                if self.fleet.evaluate(&mut self.data, now) {
                    self.rebuild_all();
                }
            }
            Msg::Saved(saved) => self.saved(saved),
            Msg::Planned(Ok((plan, queue))) => self.plan_ready(plan, queue),
            Msg::Planned(Err(error)) => {
                self.rollout.planned();
                self.fail(error);
            }
            Msg::Rollout(event) => {
                if let Some((text, error)) = self.rollout.follow(event) {
                    self.status = Some(Status { text, error });
                }
            }
            Msg::ApplyDone { outcome, queue } => self.apply_done(outcome, queue, &mut effects),
            Msg::SnapshotSaved(Ok(())) | Msg::Flush => {}
            Msg::SnapshotSaved(Err(error)) => self.fail(error),
            Msg::Drawn(layout) => {
                self.layout = layout;
                if let Some(list_offset) = self.list_offset_mut() {
                    *list_offset = layout.offset;
                }
            }
        }
        if operator && let Some(changes) = self.queue.take_changes(retry) {
            effects.push(Effect::Save(changes));
        }
        effects
    }

    // ---- what the parts hold, for drawing ---------------------------------------------------

    pub fn queue(&self) -> &Queue {
        self.queue.queue()
    }

    pub fn queue_state(&self) -> &QueueState {
        &self.queue
    }

    pub fn is_queued(&self, instance_id: &str) -> bool {
        self.queue.is_queued(instance_id)
    }

    pub fn dialog(&self) -> Option<&Dialog> {
        self.dialog.as_ref()
    }

    /// The keymap scope keys are read in: the open dialog's, or `None` for the view's own.
    pub fn key_scope(&self) -> Option<super::keymap::Scope> {
        self.dialog.as_ref().map(Dialog::scope)
    }

    pub fn is_marked(&self, which: Marked, id: &str) -> bool {
        self.marks.contains(which, id)
    }

    pub fn marked_count(&self, which: Marked) -> usize {
        self.marks.of(which).len()
    }

    /// The sources as they stand: those of a refresh in progress, else the shown inventory's.
    pub fn sources(&self) -> &[SourceStatus] {
        self.fleet.sources(&self.data)
    }

    pub fn policy(&self) -> &PolicyConfig {
        self.fleet.policy()
    }

    /// Whether quitting may go ahead now; the runtime asks once its saves are in.
    pub fn may_quit(&mut self) -> bool {
        if !self.queue.unsaved() || self.quitting == Quitting::Confirmed {
            return true;
        }
        self.quitting = Quitting::Armed;
        self.fail(
            "the queue has changes the file did not take: q again quits without them, any other key stays"
                .to_owned(),
        );
        false
    }

    fn say(&mut self, text: String) {
        self.status = Some(Status { text, error: false });
    }

    fn fail(&mut self, text: String) {
        self.status = Some(Status { text, error: true });
    }

    fn said_error(&self) -> bool {
        matches!(&self.status, Some(s) if s.error)
    }

    // ---- actions ----------------------------------------------------------------------------

    fn act(&mut self, action: Action, effects: &mut Vec<Effect>) {
        // Ctrl-C quits whatever is open or unsaved.
        if action == Action::ForceQuit {
            self.quitting = Quitting::Confirmed;
        }
        if let Some(dialog) = self.dialog.take() {
            let (open, outcome) = dialog.handle(action);
            self.dialog = open;
            return self.dialog_outcome(outcome, effects);
        }
        if !matches!(action, Action::ScrollUp | Action::ScrollDown) {
            self.status = None;
        }
        let armed = std::mem::take(&mut self.quitting) == Quitting::Armed;
        match action {
            Action::Quit if self.queue.unsaved() && !armed => {
                self.may_quit();
            }
            Action::Quit if self.rollout.applying() => self.fail(
                "an apply is running: wait for it to finish (Ctrl-C quits anyway, stopping it mid-step)"
                    .to_owned(),
            ),
            Action::Quit => {
                if armed {
                    self.quitting = Quitting::Confirmed;
                }
                effects.push(Effect::Quit);
            }
            Action::ForceQuit => {
                self.quitting = Quitting::Confirmed;
                effects.push(Effect::Quit);
            }
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
                    self.dialog = Some(Dialog::Filter { previous });
                }
            }
            Action::StartCommand => {
                self.dialog = Some(Dialog::Command {
                    line: String::new(),
                })
            }
            Action::ToggleHelp => self.dialog = Some(Dialog::Help { scroll: 0 }),
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
                self.marks.forget();
            }
            Action::Apply => self.ask_to_apply(effects),
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
            Action::StopApply => {
                if self.rollout.stop() {
                    self.say(
                        "stopping: replacements in flight finish, nothing new starts".to_owned(),
                    );
                    effects.push(Effect::StopApply);
                } else if self.rollout.applying() {
                    self.say("already stopping".to_owned());
                } else {
                    self.say("no apply is running".to_owned());
                }
            }
            Action::DrillDown => self.drill_down(),
            Action::ShowDetail => {
                if self.has_detail() {
                    self.dialog = Some(Dialog::Detail { scroll: 0 });
                }
            }
            Action::Back => self.back(),
            Action::Refresh => self.refresh(effects),
            Action::CopyId => {
                if let Some(id) = self.selected_id() {
                    self.say(format!("copied {id}"));
                    effects.push(Effect::Copy(id));
                }
            }
            Action::Click { column, row } => self.click(column, row),
            Action::Input(_)
            | Action::DeleteChar
            | Action::ClearInput
            | Action::Complete
            | Action::Submit
            | Action::Cancel
            | Action::Yes
            | Action::No => {}
        }
    }

    fn dialog_outcome(&mut self, outcome: Outcome, effects: &mut Vec<Effect>) {
        match outcome {
            Outcome::Stays | Outcome::Closed => {}
            Outcome::Quit => effects.push(Effect::Quit),
            Outcome::EditFilter(edit) => {
                if let Some(mut text) = self.filter_input().map(str::to_owned) {
                    match edit {
                        Edit::Push(c) => text.push(c),
                        Edit::Pop => {
                            text.pop();
                        }
                        Edit::Clear => text.clear(),
                    }
                    self.set_filter(text);
                }
            }
            Outcome::CompleteFilter => self.complete_filter_field(),
            Outcome::CommitFilter { previous } => self.keep_previous_on_error(previous),
            Outcome::CancelFilter { previous } => self.set_filter(previous),
            Outcome::CompleteCommand => {
                let Some(Dialog::Command { line }) = &self.dialog else {
                    return;
                };
                if let Some((line, candidates)) =
                    command::complete(line, App::columns_of(self.view))
                {
                    self.dialog = Some(Dialog::Command { line });
                    if let Some(candidates) = candidates {
                        self.say(candidates);
                    }
                }
            }
            Outcome::RunCommand(line) => self.run_command(&line, effects),
            Outcome::Answered { yes, question } => {
                self.status = None;
                self.answer_queue(yes, question);
            }
            Outcome::Confirmed(plan) => {
                self.rollout.confirmed(&plan);
                self.say("applying the queue…".to_owned());
                effects.push(Effect::Apply(plan));
            }
            Outcome::NotConfirmed => self.say("not confirmed: nothing was changed".to_owned()),
            Outcome::ApplyCancelled => self.say("nothing was changed".to_owned()),
        }
    }

    fn refresh(&mut self, effects: &mut Vec<Effect>) {
        if !self.fleet.live() {
            self.say("a snapshot has nothing to collect again".to_owned());
        } else if self.fleet.collecting() {
            self.say("still collecting".to_owned());
        } else {
            self.fleet.start_refresh();
            self.say("collecting again; the screen updates when it is done".to_owned());
            effects.push(Effect::Refresh);
            // The queue file too: another fleetscope may have changed it.
            if let Some(reread) = self.queue.reread() {
                effects.push(Effect::Save(reread));
            }
        }
    }

    fn run_command(&mut self, line: &str, effects: &mut Vec<Effect>) {
        let command = match command::parse(line) {
            Ok(Some(command)) => command,
            Ok(None) => return,
            Err(error) => return self.fail(error),
        };
        match command {
            Command::Show(view) => self.act(Action::Show(view), effects),
            Command::Quit => effects.push(Effect::Quit),
            Command::Refresh => self.act(Action::Refresh, effects),
            Command::Help => self.act(Action::ToggleHelp, effects),
            Command::Unmark => self.act(Action::ClearMarks, effects),
            Command::Filter(text) => {
                let previous = self.filter_input().unwrap_or_default().to_owned();
                self.set_filter(text);
                self.keep_previous_on_error(previous);
            }
            Command::Sort { column, direction } => {
                if let Err(error) = self.sort_by_name(&column, direction.as_deref()) {
                    self.fail(format!("sort: {error}"));
                }
            }
        }
    }

    // ---- rows -------------------------------------------------------------------------------

    fn rebuild_all(&mut self) {
        // Rows index the fleet as it was: a question about them is void once it changes.
        if matches!(self.dialog, Some(Dialog::Question(_))) {
            self.dialog = None;
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
        self.marks
            .recount_hidden(&self.data.inventory, &self.instances.rows);
    }

    /// The current view's marked rows, and how many of them its filter hides.
    pub fn marks(&self) -> Option<(usize, usize)> {
        match self.view {
            View::Instances if self.marked_count(Marked::Instances) > 0 => {
                Some((self.marked_count(Marked::Instances), self.marks.hidden()))
            }
            View::Queue if self.marked_count(Marked::Entries) > 0 => {
                let entries = &self.queue().entries;
                let visible = self
                    .queue_rows
                    .rows
                    .iter()
                    .filter(|&&e| self.is_marked(Marked::Entries, &entries[e].instance_id))
                    .count();
                let marked = self.marked_count(Marked::Entries);
                Some((marked, marked - visible))
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
        let entries = &self.queue.queue().entries;
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

    fn saved(&mut self, saved: Saved) {
        match self.queue.saved(saved) {
            SaveOutcome::Adopted(changed) => {
                self.queue_entries_changed();
                if let Some(changed) = changed
                    && !self.said_error()
                {
                    self.say(changed);
                }
            }
            SaveOutcome::Waiting => {}
            SaveOutcome::Failed(error) => self.fail(error),
        }
    }

    /// Refuses a change to the queue while it cannot take one, saying why.
    fn queue_refuses_change(&mut self) -> bool {
        if let Some(why) = self.queue.disabled().map(str::to_owned) {
            self.fail(why);
            return true;
        }
        if self.rollout.applying() {
            self.fail("the queue is being applied; change it when that is done".to_owned());
            return true;
        }
        false
    }

    fn enqueue(&mut self, instances: Vec<InstanceIdx>, what: &str, spends_marks: bool) {
        if self.queue_refuses_change() {
            return;
        }
        if instances.is_empty() {
            return self.say(format!("nothing to queue: {what}"));
        }
        let new = instances
            .iter()
            .filter(|&&i| !self.queue.is_queued(&self.data.instance(i).id))
            .count();
        if new > self.queue.confirm_over {
            self.say(format!(
                "queue {new} instances ({what}: {})? y/N",
                self.data.count_by_verdict(&instances)
            ));
            self.dialog = Some(Dialog::Question(Question {
                instances,
                what: what.to_owned(),
                spends_marks,
            }));
            return;
        }
        self.enqueue_now(instances, what);
        if spends_marks {
            self.marks.forget();
        }
    }

    /// Queues the marked (or selected) instances; the marks are spent once queued, and kept
    /// while the bulk question waits for its answer.
    fn enqueue_marked(&mut self) {
        let targets = self.marked_or_selected_instances();
        let what = self.marked_or_selected_label();
        let marks = !self.marks.of(Marked::Instances).is_empty();
        self.enqueue(targets, &what, marks);
    }

    /// The answer to "queue N instances? y/N": only yes queues them (and spends the marks
    /// that chose them); anything else leaves queue and marks as they were.
    fn answer_queue(&mut self, yes: bool, question: Question) {
        if yes {
            self.enqueue_now(question.instances, &question.what);
            if question.spends_marks {
                self.marks.forget();
            }
        } else if question.spends_marks {
            self.say("nothing was queued; the marks stay".to_owned());
        } else {
            self.say("nothing was queued".to_owned());
        }
    }

    fn enqueue_now(&mut self, instances: Vec<InstanceIdx>, what: &str) {
        // When the key was pressed, not when the fleet was judged.
        let queued_at = Utc::now();
        let entries: Vec<QueueEntry> = instances
            .iter()
            .filter(|&&i| !self.queue.is_queued(&self.data.instance(i).id))
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
        if !self.said_error() {
            self.say(text);
        }
    }

    fn dequeue(&mut self, ids: Vec<String>, what: &str) {
        if self.queue_refuses_change() {
            return;
        }
        let removed = self.change_queue(QueueChange::Remove(ids));
        if removed == 0 {
            return self.say("nothing to take off the queue".to_owned());
        }
        self.say(format!(
            "took {removed} {} off the queue ({what})",
            plural(removed, "instance")
        ));
    }

    fn change_queue(&mut self, change: QueueChange) -> usize {
        let changed = self.queue.change(change);
        self.queue_entries_changed();
        changed
    }

    fn queue_entries_changed(&mut self) {
        self.marks.keep_entries(self.queue.queued());
        self.rebuild_queue_rows();
    }

    // ---- applying ---------------------------------------------------------------------------

    /// Asks for the rollout plan of the queue as the file holds it; the confirmation opens
    /// with it.
    fn ask_to_apply(&mut self, effects: &mut Vec<Effect>) {
        if let Some(why) = self.queue.disabled().map(str::to_owned) {
            return self.fail(why);
        }
        if self.queue().entries.is_empty() {
            return self.say("nothing to apply: the queue is empty".to_owned());
        }
        match self.rollout.start_planning() {
            Err(NotNow::ReadOnly) => self.fail("--read-only: applying the queue is refused".into()),
            Err(NotNow::Applying) => self.say("an apply is already running".to_owned()),
            Err(NotNow::Planning) => self.say("the plan is still being made".to_owned()),
            Ok(()) => {
                let count = self.queue().entries.len();
                self.say(format!(
                    "checking {count} queued {} for the rollout plan…",
                    plural(count, "instance")
                ));
                effects.push(Effect::PlanApply);
            }
        }
    }

    /// The plan is made from the queue file as it is now: the screen shows that queue, and
    /// the confirmation opens with the plan and what changed, or says why there is nothing
    /// to do (the worker journaled entries that could not be checked).
    fn plan_ready(&mut self, plan: Plan, queue: Queue) {
        self.rollout.planned();
        let changed = self.queue.adopt(queue);
        self.queue_entries_changed();
        if plan.entries() == 0 {
            let mut text = match (plan.unchecked.first(), plan.left.first()) {
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
            };
            if let Some(changed) = changed {
                text = format!("{text}; {changed}");
            }
            return self.fail(text);
        }
        self.status = None;
        self.dialog = Some(Dialog::Confirm(Confirm {
            phrase: plan.phrase(),
            typed: String::new(),
            plan: Box::new(plan),
            changed,
        }));
    }

    /// The apply ended: the queue on disk is what it left, and its outcome stays on screen.
    fn apply_done(
        &mut self,
        outcome: Result<String, String>,
        queue: Result<Queue, String>,
        effects: &mut Vec<Effect>,
    ) {
        match &outcome {
            Ok(summary) => self.say(summary.clone()),
            Err(error) => self.fail(error.clone()),
        }
        self.rollout.finished(outcome);
        match queue {
            Ok(queue) => {
                self.queue.adopt(queue);
                self.queue_entries_changed();
            }
            Err(error) => return self.fail(error),
        }
        // The fleet changed: collect it again, so replaced instances show as they are now.
        if self.fleet.live() && !self.fleet.collecting() {
            self.fleet.start_refresh();
            effects.push(Effect::Refresh);
        }
    }

    // ---- selection and sorting --------------------------------------------------------------

    /// The scroll offset of the current view's list, which each frame sets.
    fn list_offset_mut(&mut self) -> Option<&mut usize> {
        match self.view {
            View::Overview => None,
            View::Images => Some(&mut self.images.offset),
            View::Instances => Some(&mut self.instances.offset),
            View::Drift => Some(&mut self.drift.offset),
            View::Queue => Some(&mut self.queue_rows.offset),
        }
    }

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

    pub fn columns_of(view: View) -> &'static [Column] {
        super::layout::columns_of(view)
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
                let common = command::common_prefix(many);
                self.set_filter(format!("{}{bang}{common}", &text[..start]));
                self.say(format!("fields: {}", many.join(" ")));
            }
        }
    }

    // ---- marks, drill-down, selection -------------------------------------------------------

    fn toggle_mark(&mut self) {
        match self.view {
            View::Instances => {
                if let Some(i) = self.instances.selected_row() {
                    let id = self.data.instance(i).id.to_string();
                    self.marks.toggle(Marked::Instances, id);
                    self.instances.move_by(1);
                    self.recount_hidden_marks();
                }
            }
            View::Queue => {
                if let Some(e) = self.queue_rows.selected_row() {
                    let id = self.queue().entries[e].instance_id.clone();
                    self.marks.toggle(Marked::Entries, id);
                    self.queue_rows.move_by(1);
                }
            }
            _ => {}
        }
    }

    fn mark_all_visible(&mut self) {
        let (which, ids): (Marked, Vec<&str>) = match self.view {
            View::Instances => (
                Marked::Instances,
                self.instances
                    .rows
                    .iter()
                    .map(|&i| self.data.instance(i).id.as_str())
                    .collect(),
            ),
            View::Queue => (
                Marked::Entries,
                self.queue_rows
                    .rows
                    .iter()
                    .map(|&e| self.queue.queue().entries[e].instance_id.as_str())
                    .collect(),
            ),
            _ => return,
        };
        let count = ids.len();
        let marked = self.marks.mark_all(which, &ids);
        self.recount_hidden_marks();
        self.say(format!(
            "{} {count} {}",
            if marked { "marked" } else { "unmarked" },
            plural(count, "row")
        ));
    }

    /// Clears every mark, says so, and keeps them for `U` until the next change to marks.
    fn clear_marks(&mut self) {
        let count = self.marks.clear();
        if count > 0 {
            self.say(format!(
                "cleared {count} {}; U brings {} back",
                plural(count, "mark"),
                if count == 1 { "it" } else { "them" }
            ));
        }
    }

    fn undo_clear_marks(&mut self) {
        match self.marks.undo_clear(self.queue.queued()) {
            Some(count) => {
                self.recount_hidden_marks();
                self.say(format!("{count} {} back", plural(count, "mark")));
            }
            None => self.say("no cleared marks to bring back".to_owned()),
        }
    }

    fn marked_or_selected_instances(&self) -> Vec<InstanceIdx> {
        if self.marked_count(Marked::Instances) == 0 {
            return self.instances.selected_row().into_iter().collect();
        }
        self.marks.instances_in(&self.data.inventory)
    }

    fn dequeue_targets(&self) -> Vec<String> {
        match self.view {
            View::Queue if self.marked_count(Marked::Entries) > 0 => {
                self.marks.of(Marked::Entries).iter().cloned().collect()
            }
            View::Queue => self
                .queue_rows
                .selected_row()
                .map(|e| self.queue().entries[e].instance_id.clone())
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
        self.enqueue(targets, &what, false);
        if let Some(note) = template_first
            && self.dialog.is_none()
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
        Some(if self.rollout.template_updates {
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
        // The last apply's outcome stays on the Queue view until dismissed here.
        if self.view == View::Queue && self.rollout.dismiss_outcome() {
            return;
        }
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
                .map(|e| self.queue().entries[e].instance_id.clone()),
        }
    }

    fn click(&mut self, column: u16, row: u16) {
        let tabs = self.layout.tabs;
        if row == tabs.y && column >= tabs.x && column < tabs.x + tabs.width {
            if let Some(view) = super::layout::tab_at(column - tabs.x) {
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

    /// Whether the selected row has a detail pane.
    fn has_detail(&self) -> bool {
        match self.view {
            View::Overview => self.selected_source < self.sources().len(),
            View::Images => self.images.selected_row().is_some(),
            View::Instances => self.instances.selected_row().is_some(),
            View::Drift => false,
            View::Queue => self.queue_rows.selected_row().is_some(),
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
