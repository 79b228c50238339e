//! The interactive state and its one entry point, `App::handle(Msg) -> Vec<Effect>`. No
//! terminal, no network, no file: the runtime feeds it messages, performs the effects it
//! returns, and draws it. Each concern lives in a part (the fleet, the queue, the rollout, the
//! marks, the open dialog) that knows nothing of `App`; `App` coordinates them and alone turns
//! their outcomes into status text and effects.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::action::{Action, Effect, View};
use super::browse::Browse;
pub use super::browse::InstanceScope;
use super::command::{self, Command};
use super::dialog::{Confirm, Dialog, Edit, Outcome, Question};
use super::fleet::{Finished, Fleet};
pub use super::layout::Layout;
use super::marks::{Marked, Marks};
use super::queue_state::{QueueState, SaveOutcome};
use super::rollout_state::{Ended, NotNow, RolloutState};
use super::save::{QueueChange, Saved};
use crate::core::event::CollectEvent;
use crate::core::inventory::{InstanceIdx, Inventory};
use crate::core::lineage::LineageRules;
use crate::core::model::SourceStatus;
use crate::core::policy::PolicyConfig;
use crate::query::data::Data;
pub use crate::query::subject::DriftRow;
use crate::queue::journal::Failure;
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
        outcome: Result<Ended, String>,
        queue: Result<Queue, String>,
    },
    /// The journal's last failure per instance id, read off the loop; or why it could not be.
    JournalRead(Result<HashMap<String, Failure>, String>),
    /// The snapshot asked for on the command line was written, or why not.
    SnapshotSaved(Result<(), String>),
    /// Where the last frame put things.
    Drawn(Layout),
    /// Nothing new: hand over the queue changes the saver has not had yet (before a plan reads
    /// the file, and at quit).
    Flush,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub text: String,
    pub error: bool,
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
    /// The view on screen, its lists, the drill-down scope and crumbs.
    pub browse: Browse,
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
            browse: Browse::default(),
            status,
            layout: Layout::default(),
            badges: init.badges,
            quitting: Quitting::No,
        };
        app.rebuild_all(false);
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
                    Finished::Replaced => self.rebuild_all(true),
                    Finished::Evaluated => self.rebuild_all(false),
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
                    self.rebuild_all(false);
                }
            }
            Msg::Saved(saved) => {
                // Another process changed the queue file: maybe by an apply, journaled.
                if self.saved(saved) {
                    effects.push(Effect::ReadJournal);
                }
            }
            Msg::Planned(Ok((plan, queue))) => self.plan_ready(plan, queue, &mut effects),
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
            Msg::JournalRead(Ok(failures)) => self.rollout.journal_read(failures),
            Msg::JournalRead(Err(error)) => self.fail(error),
            Msg::SnapshotSaved(Ok(())) | Msg::Flush => {}
            Msg::SnapshotSaved(Err(error)) => self.fail(error),
            Msg::Drawn(layout) => {
                self.layout = layout;
                if let Some(list_offset) = self.browse.list_offset_mut() {
                    *list_offset = layout.offset;
                }
            }
        }
        if operator && let Some(changes) = self.queue.take_changes(retry) {
            effects.push(Effect::Save(changes));
        }
        if self.rollout.take_failures_changed() {
            let failed = self.rollout.failed_ids();
            self.browse
                .set_failed(failed, &self.data, self.queue.queue());
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
        self.act_on(action, effects);
        // Filters, scopes and drill-downs change which marks are seen.
        self.recount_hidden_marks();
    }

    fn act_on(&mut self, action: Action, effects: &mut Vec<Effect>) {
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
            Action::Show(view) => self.browse.view = view,
            Action::NextView => self.browse.view = self.browse.view.next(),
            Action::PreviousView => self.browse.view = self.browse.view.previous(),
            Action::Up | Action::ScrollUp => self.move_selection(-1),
            Action::Down | Action::ScrollDown => self.move_selection(1),
            Action::PageUp => self.move_selection(-self.page()),
            Action::PageDown => self.move_selection(self.page()),
            Action::Top => self.move_selection(isize::MIN / 2),
            Action::Bottom => self.move_selection(isize::MAX / 2),
            Action::SortNext => self.change_sort(1),
            Action::SortPrevious => self.change_sort(-1),
            Action::SortReverse => {
                self.browse
                    .reverse_sort(&self.data, self.queue.queue());
            }
            Action::StartFilter => {
                if let Some(previous) = self.browse.filter_input().map(str::to_owned) {
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
            Action::NotHere(views) => self.say(self.browse.view.not_here(views)),
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
            Action::DrillDown => self.browse.drill_down(&self.data),
            Action::ShowDetail => {
                if self.browse.has_detail(self.fleet.sources(&self.data)) {
                    self.dialog = Some(Dialog::Detail { scroll: 0 });
                }
            }
            Action::Fold => self.browse.fold(&self.data),
            Action::FoldAll => self.browse.fold_all(&self.data),
            Action::Back => self.back(),
            Action::Refresh => self.refresh(effects),
            Action::CopyId => {
                if let Some(id) = self.browse.selected_id(&self.data, self.queue.queue()) {
                    self.say(format!("copied {id}"));
                    effects.push(Effect::Copy(id));
                }
            }
            Action::Click { column, row } => {
                let sources = self.fleet.sources(&self.data);
                self.browse.click(&self.layout, column, row, sources);
            }
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
                if let Some(mut text) = self.browse.filter_input().map(str::to_owned) {
                    match edit {
                        Edit::Push(c) => text.push(c),
                        Edit::Pop => {
                            text.pop();
                        }
                        Edit::Clear => text.clear(),
                    }
                    self.browse.set_filter(text, &self.data, self.queue.queue());
                }
            }
            Outcome::CompleteFilter => {
                if let Some(fields) = self
                    .browse
                    .complete_filter_field(&self.data, self.queue.queue())
                {
                    self.say(fields);
                }
            }
            Outcome::CommitFilter { previous } => self.keep_previous_on_error(previous),
            Outcome::CancelFilter { previous } => {
                self.browse
                    .set_filter(previous, &self.data, self.queue.queue());
            }
            Outcome::CompleteCommand => {
                let Some(Dialog::Command { line }) = &self.dialog else {
                    return;
                };
                if let Some((line, candidates)) =
                    command::complete(line, Browse::columns_of(self.browse.view))
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
            // The queue file and the journal too: another fleetscope may have changed them.
            if let Some(reread) = self.queue.reread() {
                effects.push(Effect::Save(reread));
            }
            effects.push(Effect::ReadJournal);
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
                let previous = self.browse.filter_input().unwrap_or_default().to_owned();
                self.browse.set_filter(text, &self.data, self.queue.queue());
                self.keep_previous_on_error(previous);
            }
            Command::Sort { column, direction } => {
                let sorted = self.browse.sort_by_name(
                    &column,
                    direction.as_deref(),
                    &self.data,
                    self.queue.queue(),
                );
                if let Err(error) = sorted {
                    self.fail(format!("sort: {error}"));
                }
            }
        }
    }

    // ---- rows -------------------------------------------------------------------------------

    /// The fleet was evaluated anew (`replaced`: a new inventory): every list again.
    fn rebuild_all(&mut self, replaced: bool) {
        // Rows index the fleet as it was: a question about them is void once it changes.
        if matches!(self.dialog, Some(Dialog::Question(_))) {
            self.dialog = None;
            self.say("the fleet changed while asking: nothing was queued; ask again".to_owned());
        }
        self.browse
            .rebuild_all(&self.data, self.queue.queue(), replaced);
        self.recount_hidden_marks();
    }

    fn recount_hidden_marks(&mut self) {
        self.marks
            .recount_hidden(&self.data.inventory, &self.browse.instances.rows);
    }

    /// The current view's marked rows, and how many of them its filter hides.
    pub fn marks(&self) -> Option<(usize, usize)> {
        match self.browse.view {
            View::Instances if self.marked_count(Marked::Instances) > 0 => {
                Some((self.marked_count(Marked::Instances), self.marks.hidden()))
            }
            View::Queue if self.marked_count(Marked::Entries) > 0 => {
                let entries = &self.queue().entries;
                let visible = self
                    .browse
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

    fn page(&self) -> isize {
        isize::try_from(self.layout.rows.height.max(1)).unwrap_or(1)
    }

    fn move_selection(&mut self, delta: isize) {
        self.browse
            .move_selection(delta, self.fleet.sources(&self.data));
    }

    fn change_sort(&mut self, step: isize) {
        if let Err(why) = self
            .browse
            .change_sort(step, &self.data, self.queue.queue())
        {
            self.say(why);
        }
    }

    /// A committed filter that does not parse gives way to the one before it, saying why.
    fn keep_previous_on_error(&mut self, previous: String) {
        if let Err(why) =
            self.browse
                .keep_previous_on_error(previous, &self.data, self.queue.queue())
        {
            self.fail(why);
        }
    }

    /// Esc: the last apply's outcome first (on the Queue view), then a drill-down, then the
    /// filter; with none of those, the marks.
    fn back(&mut self) {
        if self.browse.view == View::Queue && self.rollout.dismiss_outcome() {
            return;
        }
        if !self.browse.back(&self.data, self.queue.queue()) {
            self.clear_marks();
        }
    }

    // ---- the queue --------------------------------------------------------------------------

    /// Takes the saver's answer; true when the file changed outside this screen.
    fn saved(&mut self, saved: Saved) -> bool {
        match self.queue.saved(saved) {
            SaveOutcome::Adopted(changed) => {
                self.queue_entries_changed();
                let outside = changed.is_some();
                if let Some(changed) = changed
                    && !self.said_error()
                {
                    self.say(changed);
                }
                return outside;
            }
            SaveOutcome::Waiting => {}
            SaveOutcome::Failed(error) => self.fail(error),
        }
        false
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
        self.browse
            .rebuild_queue_rows(&self.data, self.queue.queue());
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
    fn plan_ready(&mut self, plan: Plan, queue: Queue, effects: &mut Vec<Effect>) {
        self.rollout.planned();
        let changed = self.queue.adopt(queue);
        self.queue_entries_changed();
        if let Some(text) = RolloutState::nothing_to_apply(&plan) {
            if !plan.unchecked.is_empty() {
                effects.push(Effect::ReadJournal);
            }
            return self.fail(match changed {
                Some(changed) => format!("{text}; {changed}"),
                None => text,
            });
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
        outcome: Result<Ended, String>,
        queue: Result<Queue, String>,
        effects: &mut Vec<Effect>,
    ) {
        match &outcome {
            Ok(ended) => self.say(ended.summary.clone()),
            Err(error) => self.fail(error.clone()),
        }
        self.rollout.finished(outcome);
        // What it journaled: the failures of this apply and what it retried successfully.
        effects.push(Effect::ReadJournal);
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

    // ---- marks, drill-down, selection -------------------------------------------------------

    fn toggle_mark(&mut self) {
        match self.browse.view {
            View::Instances => {
                if let Some(i) = self.browse.instances.selected_row() {
                    let id = self.data.instance(i).id.to_string();
                    self.marks.toggle(Marked::Instances, id);
                    self.browse.instances.move_by(1);
                    self.recount_hidden_marks();
                }
            }
            View::Queue => {
                if let Some(e) = self.browse.queue_rows.selected_row() {
                    let id = self.queue().entries[e].instance_id.clone();
                    self.marks.toggle(Marked::Entries, id);
                    self.browse.queue_rows.move_by(1);
                }
            }
            _ => {}
        }
    }

    fn mark_all_visible(&mut self) {
        let (which, ids): (Marked, Vec<&str>) = match self.browse.view {
            View::Instances => (
                Marked::Instances,
                self.browse
                    .instances
                    .rows
                    .iter()
                    .map(|&i| self.data.instance(i).id.as_str())
                    .collect(),
            ),
            View::Queue => (
                Marked::Entries,
                self.browse
                    .queue_rows
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
            return self.browse.instances.selected_row().into_iter().collect();
        }
        self.marks.instances_in(&self.data.inventory)
    }

    fn dequeue_targets(&self) -> Vec<String> {
        match self.browse.view {
            View::Queue if self.marked_count(Marked::Entries) > 0 => {
                self.marks.of(Marked::Entries).iter().cloned().collect()
            }
            View::Queue => self
                .browse
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
        let Some(found) = self.browse.replaceable_under_selection(&self.data) else {
            return;
        };
        let template_first = found
            .group
            .and_then(|g| self.rollout.template_note(&self.data, g));
        self.enqueue(found.instances, &found.what, false);
        if let Some(note) = template_first
            && self.dialog.is_none()
            && let Some(status) = self.status.as_mut()
            && !status.error
        {
            status.text.push_str(&note);
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
