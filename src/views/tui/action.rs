//! Everything the operator can ask for, as plain values: keys and mouse become `Action`s through
//! the keymap, and `App::handle` is the only place that acts on them.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    Overview,
    Images,
    Instances,
    Drift,
    Queue,
}

impl View {
    pub const ALL: [View; 5] = [
        View::Overview,
        View::Images,
        View::Instances,
        View::Drift,
        View::Queue,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::Overview => "Overview",
            View::Images => "Images",
            View::Instances => "Instances",
            View::Drift => "Drift",
            View::Queue => "Queue",
        }
    }

    /// The `:` command that shows it.
    pub fn command(self) -> &'static str {
        match self {
            View::Overview => "overview",
            View::Images => "images",
            View::Instances => "instances",
            View::Drift => "drift",
            View::Queue => "queue",
        }
    }

    fn position(self) -> usize {
        View::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }

    pub fn next(self) -> View {
        View::ALL[(self.position() + 1) % View::ALL.len()]
    }

    pub fn previous(self) -> View {
        View::ALL[(self.position() + View::ALL.len() - 1) % View::ALL.len()]
    }

    /// What a key that does nothing here says: the views where it works, with their numbers.
    pub fn not_here(self, views: &[View]) -> String {
        let places: Vec<String> = views
            .iter()
            .map(|v| format!("{} ({})", v.title(), v.position() + 1))
            .collect();
        format!(
            "not in {}: that key works in {}",
            self.title(),
            places.join(", ")
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    /// Ctrl-C: quit even while an apply runs.
    ForceQuit,
    Show(View),
    NextView,
    PreviousView,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    SortPrevious,
    SortNext,
    SortReverse,
    StartFilter,
    StartCommand,
    ToggleHelp,
    ToggleMark,
    MarkAllVisible,
    ClearMarks,
    /// Bring back the marks the last clearing took.
    UndoClearMarks,
    /// Queue the marked instances, or the selected one.
    QueueSelected,
    /// Queue every non-current instance on the selected image, lineage or group.
    QueueAllOnSelected,
    /// Take the marked or selected instances off the queue.
    Dequeue,
    /// Apply the queue, after a typed confirmation.
    Apply,
    /// Ask the running apply to start nothing new.
    StopApply,
    DrillDown,
    /// Open the detail pane of the selected row.
    ShowDetail,
    /// Fold or unfold the Drift view's selected lineage (its images), or its groups.
    Fold,
    /// Fold every lineage of the Drift view, or unfold them all when all are folded.
    FoldAll,
    Back,
    Refresh,
    CopyId,
    /// Text entry in the filter or command line.
    Input(char),
    DeleteChar,
    ClearInput,
    Complete,
    Submit,
    Cancel,
    /// The answer to a y/N question.
    Yes,
    No,
    ScrollUp,
    ScrollDown,
    /// A key that does nothing in this view, with the views where it does something.
    NotHere(&'static [View]),
    Click {
        column: u16,
        row: u16,
    },
}

/// What the update asks of the world outside the state: the runtime carries these out.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Quit,
    /// Collect again from the sources.
    Refresh,
    /// Put this text on the clipboard.
    Copy(String),
    /// Make the rollout plan of the queue file as it is now, for the confirmation.
    PlanApply,
    /// Run this plan: confirmed by the operator, not read-only.
    Apply(Box<crate::queue::rollout::Plan>),
    /// Ask the running apply to stop starting replacements.
    StopApply,
    /// Hand these queue changes to the saver (none: read the file as it is).
    Save(Vec<crate::views::tui::save::QueueChange>),
    /// Read the journal's last failures, off the loop: the answer is `Msg::JournalRead`.
    ReadJournal,
    /// Write the collected fleet as the snapshot the command line asked for.
    SaveSnapshot(Snapshot),
}

/// A complete fleet to write as a snapshot; shared, not copied.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub inventory: std::sync::Arc<crate::core::inventory::Inventory>,
    pub taken_at: chrono::DateTime<chrono::Utc>,
}

impl PartialEq for Snapshot {
    fn eq(&self, other: &Snapshot) -> bool {
        std::sync::Arc::ptr_eq(&self.inventory, &other.inventory) && self.taken_at == other.taken_at
    }
}

impl Eq for Snapshot {}
