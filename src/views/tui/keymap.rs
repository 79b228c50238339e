//! The one binding table: key dispatch, the footer's hints and the `?` help are all read from it,
//! so they cannot drift apart.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::action::{Action, View};

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every view.
    Global,
    /// Views that list rows (all but the overview).
    Lists,
    /// These views only.
    Views(&'static [View]),
    /// While typing a filter or a command.
    Input,
    /// While the help is open.
    Help,
    /// While the detail pane is open.
    Detail,
    /// While a y/N question waits for its answer.
    Question,
    /// While the apply confirmation waits for its phrase.
    Confirm,
}

impl Scope {
    fn applies_to(self, view: View) -> bool {
        match self {
            Scope::Global => true,
            Scope::Lists => view != View::Overview,
            Scope::Views(views) => views.contains(&view),
            Scope::Input | Scope::Help | Scope::Detail | Scope::Question | Scope::Confirm => false,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Scope::Global => "Everywhere",
            Scope::Lists => "Lists",
            Scope::Views(_) => "This view",
            Scope::Input => "Filter and command line",
            Scope::Help => "Help",
            Scope::Detail => "Detail pane",
            Scope::Question => "Queue many? (y/N)",
            Scope::Confirm => "Apply confirmation",
        }
    }

    fn rank(self) -> u8 {
        match self {
            Scope::Views(_) => 0,
            Scope::Lists => 1,
            Scope::Global => 2,
            Scope::Input => 3,
            Scope::Detail => 4,
            Scope::Question => 5,
            Scope::Confirm => 6,
            Scope::Help => 7,
        }
    }

    /// Whether keys in this scope are text: unbound characters are typed.
    fn typing(self) -> bool {
        matches!(self, Scope::Input | Scope::Confirm)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub code: KeyCode,
    pub modifiers: KeyModifiers,
}

const fn key(code: KeyCode) -> Key {
    Key {
        code,
        modifiers: KeyModifiers::NONE,
    }
}

const fn ch(c: char) -> Key {
    key(KeyCode::Char(c))
}

const fn ctrl(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        modifiers: KeyModifiers::CONTROL,
    }
}

impl Key {
    pub fn label(&self) -> String {
        let code = match self.code {
            KeyCode::Char(' ') => "Space".to_owned(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Up => "↑".to_owned(),
            KeyCode::Down => "↓".to_owned(),
            KeyCode::Left => "←".to_owned(),
            KeyCode::Right => "→".to_owned(),
            KeyCode::PageUp => "PgUp".to_owned(),
            KeyCode::PageDown => "PgDn".to_owned(),
            KeyCode::Home => "Home".to_owned(),
            KeyCode::End => "End".to_owned(),
            KeyCode::Enter => "Enter".to_owned(),
            KeyCode::Esc => "Esc".to_owned(),
            KeyCode::Tab => "Tab".to_owned(),
            KeyCode::BackTab => "Shift-Tab".to_owned(),
            KeyCode::Backspace => "Backspace".to_owned(),
            KeyCode::Delete => "Del".to_owned(),
            KeyCode::F(n) => format!("F{n}"),
            other => format!("{other:?}"),
        };
        if self.modifiers.contains(KeyModifiers::CONTROL) {
            format!("Ctrl-{code}")
        } else {
            code
        }
    }

    fn matches(&self, event: &KeyEvent) -> bool {
        // Shift is part of the character itself ('G', '?'), so only Ctrl and Alt must agree.
        let relevant = KeyModifiers::CONTROL | KeyModifiers::ALT;
        self.code == event.code && (event.modifiers & relevant) == (self.modifiers & relevant)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Binding {
    pub keys: &'static [Key],
    pub action: Action,
    pub scope: Scope,
    pub help: &'static str,
    /// Shown in the footer of the views it applies to.
    pub hint: Option<&'static str>,
}

const fn bind(
    keys: &'static [Key],
    action: Action,
    scope: Scope,
    help: &'static str,
    hint: Option<&'static str>,
) -> Binding {
    Binding {
        keys,
        action,
        scope,
        help,
        hint,
    }
}

const LISTS: &[View] = &[View::Images, View::Instances, View::Drift, View::Queue];
const INSTANCE_ROWS: &[View] = &[View::Instances];
const QUEUE_SOURCES: &[View] = &[View::Images, View::Instances, View::Drift];
const DRILLABLE: &[View] = &[View::Images, View::Drift];
const DETAILED: &[View] = &[View::Images, View::Instances, View::Drift, View::Queue];
const DRIFT: &[View] = &[View::Drift];
const ENTER_DETAILS: &[View] = &[View::Overview, View::Instances, View::Queue];
const OVERVIEW: &[View] = &[View::Overview];
const MARKABLE: &[View] = &[View::Instances, View::Queue];
const DEQUEUE: &[View] = &[View::Instances, View::Queue];
const APPLY: &[View] = &[View::Queue];
const SORTABLE: &[View] = &[View::Images, View::Instances, View::Queue];

/// The whole keymap. The first binding whose key and scope match wins, so view-specific
/// bindings come before the global ones they shadow.
pub const BINDINGS: &[Binding] = &[
    // Help and the input line have their own small keymaps.
    bind(
        &[key(KeyCode::Esc), ch('?'), ch('q')],
        Action::ToggleHelp,
        Scope::Help,
        "close the help",
        None,
    ),
    bind(
        &[ch('j'), key(KeyCode::Down)],
        Action::Down,
        Scope::Help,
        "scroll down",
        None,
    ),
    bind(
        &[ch('k'), key(KeyCode::Up)],
        Action::Up,
        Scope::Help,
        "scroll up",
        None,
    ),
    bind(
        &[key(KeyCode::Esc), key(KeyCode::Enter), ch('i'), ch('q')],
        Action::Back,
        Scope::Detail,
        "close the detail pane",
        None,
    ),
    bind(
        &[ch('j'), key(KeyCode::Down)],
        Action::Down,
        Scope::Detail,
        "scroll down",
        None,
    ),
    bind(
        &[ch('k'), key(KeyCode::Up)],
        Action::Up,
        Scope::Detail,
        "scroll up",
        None,
    ),
    bind(
        &[ch('y'), ch('Y')],
        Action::Yes,
        Scope::Question,
        "yes: queue them (the marks that chose them are spent)",
        None,
    ),
    bind(
        &[ch('n'), key(KeyCode::Esc)],
        Action::No,
        Scope::Question,
        "no (so does any other key): the queue and the marks stay as they were",
        None,
    ),
    bind(
        &[key(KeyCode::Enter)],
        Action::Submit,
        Scope::Confirm,
        "apply, if the phrase is typed exactly; the plan shown is what runs",
        None,
    ),
    bind(
        &[key(KeyCode::Esc)],
        Action::Cancel,
        Scope::Confirm,
        "change nothing",
        None,
    ),
    bind(
        &[key(KeyCode::Backspace)],
        Action::DeleteChar,
        Scope::Confirm,
        "delete a character",
        None,
    ),
    bind(
        &[key(KeyCode::Enter)],
        Action::Submit,
        Scope::Input,
        "apply the filter / run the command",
        None,
    ),
    bind(
        &[key(KeyCode::Esc)],
        Action::Cancel,
        Scope::Input,
        "cancel, restoring the previous filter",
        None,
    ),
    bind(
        &[key(KeyCode::Tab)],
        Action::Complete,
        Scope::Input,
        "complete a command or field name",
        None,
    ),
    bind(
        &[key(KeyCode::Backspace)],
        Action::DeleteChar,
        Scope::Input,
        "delete a character",
        None,
    ),
    bind(
        &[ctrl('u')],
        Action::ClearInput,
        Scope::Input,
        "clear the line",
        None,
    ),
    // Views.
    bind(
        &[ch('1')],
        Action::Show(View::Overview),
        Scope::Global,
        "overview",
        None,
    ),
    bind(
        &[ch('2')],
        Action::Show(View::Images),
        Scope::Global,
        "images",
        None,
    ),
    bind(
        &[ch('3')],
        Action::Show(View::Instances),
        Scope::Global,
        "instances",
        None,
    ),
    bind(
        &[ch('4')],
        Action::Show(View::Drift),
        Scope::Global,
        "drift: lineages, images, groups",
        None,
    ),
    bind(
        &[ch('5')],
        Action::Show(View::Queue),
        Scope::Global,
        "replacement queue",
        None,
    ),
    bind(
        &[key(KeyCode::Tab)],
        Action::NextView,
        Scope::Global,
        "next view",
        None,
    ),
    bind(
        &[key(KeyCode::BackTab)],
        Action::PreviousView,
        Scope::Global,
        "previous view",
        None,
    ),
    // Moving.
    bind(
        &[ch('j'), key(KeyCode::Down)],
        Action::Down,
        Scope::Views(OVERVIEW),
        "next source",
        None,
    ),
    bind(
        &[ch('k'), key(KeyCode::Up)],
        Action::Up,
        Scope::Views(OVERVIEW),
        "previous source",
        None,
    ),
    bind(
        &[key(KeyCode::PageDown), ctrl('d'), ctrl('f')],
        Action::PageDown,
        Scope::Views(OVERVIEW),
        "a page of sources down",
        None,
    ),
    bind(
        &[key(KeyCode::PageUp), ctrl('u'), ctrl('b')],
        Action::PageUp,
        Scope::Views(OVERVIEW),
        "a page of sources up",
        None,
    ),
    bind(
        &[ch('g'), key(KeyCode::Home)],
        Action::Top,
        Scope::Views(OVERVIEW),
        "first source",
        None,
    ),
    bind(
        &[ch('G'), key(KeyCode::End)],
        Action::Bottom,
        Scope::Views(OVERVIEW),
        "last source",
        None,
    ),
    bind(
        &[ch('j'), key(KeyCode::Down)],
        Action::Down,
        Scope::Lists,
        "down",
        None,
    ),
    bind(
        &[ch('k'), key(KeyCode::Up)],
        Action::Up,
        Scope::Lists,
        "up",
        None,
    ),
    bind(
        &[key(KeyCode::PageDown), ctrl('d'), ctrl('f')],
        Action::PageDown,
        Scope::Lists,
        "page down",
        None,
    ),
    bind(
        &[key(KeyCode::PageUp), ctrl('u'), ctrl('b')],
        Action::PageUp,
        Scope::Lists,
        "page up",
        None,
    ),
    bind(
        &[ch('g'), key(KeyCode::Home)],
        Action::Top,
        Scope::Lists,
        "first row",
        None,
    ),
    bind(
        &[ch('G'), key(KeyCode::End)],
        Action::Bottom,
        Scope::Lists,
        "last row",
        None,
    ),
    bind(
        &[ch('l'), key(KeyCode::Right)],
        Action::SortNext,
        Scope::Views(SORTABLE),
        "sort by the next column",
        Some("sort"),
    ),
    bind(
        &[ch('h'), key(KeyCode::Left)],
        Action::SortPrevious,
        Scope::Views(SORTABLE),
        "sort by the previous column",
        None,
    ),
    bind(
        &[ch('o')],
        Action::SortReverse,
        Scope::Views(SORTABLE),
        "reverse the sort order",
        Some("reverse"),
    ),
    bind(
        &[key(KeyCode::Enter)],
        Action::DrillDown,
        Scope::Views(DRILLABLE),
        "list the instances on the selected image, lineage or group",
        Some("instances"),
    ),
    bind(
        &[key(KeyCode::Enter)],
        Action::ShowDetail,
        Scope::Views(ENTER_DETAILS),
        "everything known about the selected row or source (j/k scroll, Esc closes)",
        Some("detail"),
    ),
    bind(
        &[ch('i')],
        Action::ShowDetail,
        Scope::Views(DETAILED),
        "everything known about the selected row",
        None,
    ),
    bind(
        &[ch('z')],
        Action::Fold,
        Scope::Views(DRIFT),
        "fold or unfold the selected lineage's images, or the groups (▸ folded, ▾ open)",
        Some("fold"),
    ),
    bind(
        &[ch('Z')],
        Action::FoldAll,
        Scope::Views(DRIFT),
        "fold every lineage, so the groups are a page away (again: unfold them all)",
        None,
    ),
    bind(
        &[key(KeyCode::Esc)],
        Action::Back,
        Scope::Global,
        "back from a drill-down, else clear the filter and marks",
        Some("back"),
    ),
    bind(
        &[ch('/')],
        Action::StartFilter,
        Scope::Lists,
        "filter: text, field:value, age:>30, lineage:web*, !negate",
        Some("filter"),
    ),
    // Marking and the queue.
    bind(
        &[ch(' ')],
        Action::ToggleMark,
        Scope::Views(MARKABLE),
        "mark or unmark the selected row",
        Some("mark"),
    ),
    bind(
        &[ch('a')],
        Action::MarkAllVisible,
        Scope::Views(MARKABLE),
        "mark every visible row (again: unmark them)",
        None,
    ),
    bind(
        &[ch('u')],
        Action::ClearMarks,
        Scope::Views(MARKABLE),
        "unmark all (announced; U brings them back)",
        None,
    ),
    bind(
        &[ch('U')],
        Action::UndoClearMarks,
        Scope::Views(MARKABLE),
        "bring back the marks just cleared",
        None,
    ),
    bind(
        &[ch('r')],
        Action::QueueSelected,
        Scope::Views(INSTANCE_ROWS),
        "queue the marked (or selected) instances for replacement",
        Some("queue"),
    ),
    bind(
        &[ch('R')],
        Action::QueueAllOnSelected,
        Scope::Views(QUEUE_SOURCES),
        "queue every non-current instance on the selected image, lineage or group",
        Some("queue all"),
    ),
    bind(
        &[ch('d'), key(KeyCode::Delete)],
        Action::Dequeue,
        Scope::Views(DEQUEUE),
        "take the marked (or selected) instances off the queue",
        Some("dequeue"),
    ),
    bind(
        &[ch('A')],
        Action::Apply,
        Scope::Views(APPLY),
        "apply the queue as a rollout: shows the waves, asks you to type a confirmation",
        Some("apply"),
    ),
    bind(
        &[ch('S')],
        Action::StopApply,
        Scope::Views(APPLY),
        "stop the running apply: replacements in flight finish, nothing new starts",
        Some("stop apply"),
    ),
    bind(
        &[ch('y')],
        Action::CopyId,
        Scope::Lists,
        "copy the selected id to the clipboard",
        None,
    ),
    // Everywhere.
    bind(
        &[ch(':')],
        Action::StartCommand,
        Scope::Global,
        "command: images, drift, sort <column>, filter <query>, quit…",
        Some("command"),
    ),
    bind(
        &[ctrl('r'), key(KeyCode::F(5))],
        Action::Refresh,
        Scope::Global,
        "collect again",
        None,
    ),
    bind(
        &[ch('?')],
        Action::ToggleHelp,
        Scope::Global,
        "help",
        Some("help"),
    ),
    bind(
        &[ch('q')],
        Action::Quit,
        Scope::Global,
        "quit (not while an apply runs)",
        Some("quit"),
    ),
    bind(
        &[ctrl('c')],
        Action::ForceQuit,
        Scope::Global,
        "quit, whatever is running",
        None,
    ),
];

/// What the pressed key means in this view, or in the open dialog's scope.
pub fn action_for(event: &KeyEvent, view: View, dialog: Option<Scope>) -> Option<Action> {
    // Ctrl-C always quits, whatever is open.
    if event.code == KeyCode::Char('c') && event.modifiers.contains(KeyModifiers::CONTROL) {
        return Some(Action::ForceQuit);
    }
    let in_scope = |scope: Scope| match dialog {
        Some(open) => scope == open,
        None => scope.applies_to(view),
    };
    let bound = BINDINGS
        .iter()
        .filter(|b| in_scope(b.scope))
        .find(|b| b.keys.iter().any(|k| k.matches(event)))
        .map(|b| b.action);
    let typing = dialog.is_some_and(Scope::typing);
    match (bound, event.code) {
        (None, KeyCode::Char(c)) if typing && !event.modifiers.contains(KeyModifiers::CONTROL) => {
            Some(Action::Input(c))
        }
        // Any key but yes answers no: the safe answer.
        (None, _) if dialog == Some(Scope::Question) => Some(Action::No),
        // A key that means something in another view says where, rather than nothing.
        (None, _) if dialog.is_none() => BINDINGS
            .iter()
            .find(|b| b.keys.iter().any(|k| k.matches(event)))
            .and_then(|b| where_it_works(b.scope))
            .map(Action::NotHere),
        _ => bound,
    }
}

/// The views where a binding works, for a key pressed elsewhere.
fn where_it_works(scope: Scope) -> Option<&'static [View]> {
    match scope {
        Scope::Lists => Some(LISTS),
        Scope::Views(views) => Some(views),
        Scope::Global
        | Scope::Input
        | Scope::Help
        | Scope::Detail
        | Scope::Question
        | Scope::Confirm => None,
    }
}

/// One line of help: keys, what they do, where.
pub struct HelpLine {
    pub keys: String,
    pub help: &'static str,
    pub scope: &'static str,
}

/// The help for a view: this view's own keys, the lists', the global ones, then every
/// dialog's (input line, detail pane, questions, the apply confirmation).
pub fn help_for(view: View) -> Vec<HelpLine> {
    let mut bindings: Vec<&Binding> = BINDINGS
        .iter()
        .filter(|b| {
            b.scope.applies_to(view)
                || matches!(
                    b.scope,
                    Scope::Input | Scope::Detail | Scope::Question | Scope::Confirm
                )
        })
        .collect();
    // Grouped by where they apply, keymap order within a group.
    bindings.sort_by_key(|b| b.scope.rank());
    bindings
        .into_iter()
        .map(|b| HelpLine {
            keys: b.keys.iter().map(Key::label).collect::<Vec<_>>().join(" "),
            help: b.help,
            scope: b.scope.label(),
        })
        .collect()
}

/// The footer: `key hint` pairs for the view.
pub fn hints_for(view: View) -> Vec<(String, &'static str)> {
    BINDINGS
        .iter()
        .filter(|b| b.scope.applies_to(view))
        .filter_map(|b| Some((b.keys.first()?.label(), b.hint?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn keys_mean_what_the_view_says() {
        let enter = press(KeyCode::Enter, KeyModifiers::NONE);
        assert_eq!(
            action_for(&enter, View::Images, None),
            Some(Action::DrillDown)
        );
        assert_eq!(
            action_for(&enter, View::Overview, None),
            Some(Action::ShowDetail),
            "the selected source's detail"
        );
        assert_eq!(
            action_for(&enter, View::Images, Some(Scope::Input)),
            Some(Action::Submit)
        );
        let j = press(KeyCode::Char('j'), KeyModifiers::NONE);
        assert_eq!(action_for(&j, View::Queue, None), Some(Action::Down));
        assert_eq!(
            action_for(&j, View::Queue, Some(Scope::Input)),
            Some(Action::Input('j')),
            "typing a filter, letters are letters"
        );
        let shifted_g = press(KeyCode::Char('G'), KeyModifiers::SHIFT);
        assert_eq!(
            action_for(&shifted_g, View::Instances, None),
            Some(Action::Bottom)
        );
        let ctrl_c = press(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(
            action_for(&ctrl_c, View::Instances, Some(Scope::Input)),
            Some(Action::ForceQuit)
        );
        let q = press(KeyCode::Char('q'), KeyModifiers::NONE);
        assert_eq!(
            action_for(&q, View::Images, Some(Scope::Help)),
            Some(Action::ToggleHelp),
            "q closes the help rather than quitting"
        );
    }

    #[test]
    fn no_key_is_bound_twice_where_both_would_apply() {
        for view in View::ALL {
            let mut seen: Vec<(Key, Action)> = Vec::new();
            for binding in BINDINGS.iter().filter(|b| b.scope.applies_to(view)) {
                for k in binding.keys {
                    if let Some((_, earlier)) = seen.iter().find(|(s, _)| s == k) {
                        panic!(
                            "{view:?}: {} is bound to {earlier:?} and {:?}",
                            k.label(),
                            binding.action
                        );
                    }
                    seen.push((*k, binding.action));
                }
            }
        }
    }

    #[test]
    fn help_lists_every_binding_of_the_view() {
        let help = help_for(View::Instances);
        for binding in BINDINGS
            .iter()
            .filter(|b| b.scope.applies_to(View::Instances))
        {
            assert!(help.iter().any(|line| line.help == binding.help));
        }
        assert!(
            help.iter()
                .any(|l| l.keys == "r" && l.help.contains("queue"))
        );
        assert!(!help_for(View::Overview).iter().any(|l| l.keys == "r"));
    }

    #[test]
    fn every_dialog_has_its_keys_in_the_help_and_a_question_defaults_to_no() {
        let help = help_for(View::Instances);
        for scope in [Scope::Input, Scope::Detail, Scope::Question, Scope::Confirm] {
            assert!(
                help.iter().any(|l| l.scope == scope.label()),
                "{scope:?} is missing from the help"
            );
        }
        let press = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
        let question = Some(Scope::Question);
        assert_eq!(
            action_for(&press('y'), View::Instances, question),
            Some(Action::Yes)
        );
        assert_eq!(
            action_for(&press('r'), View::Instances, question),
            Some(Action::No)
        );
        assert_eq!(
            action_for(&press('x'), View::Queue, Some(Scope::Confirm)),
            Some(Action::Input('x')),
            "the confirmation phrase is typed"
        );
        assert_eq!(
            action_for(&press('i'), View::Queue, Some(Scope::Detail)),
            Some(Action::Back)
        );
    }
}
