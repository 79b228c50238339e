//! Whatever takes the keys away from the views: the help, a detail pane, the filter and command
//! lines, the bulk-queue question and the apply confirmation. One open at a time; each has its
//! own keymap scope, and each answers a key with an outcome the app acts on.

use super::action::Action;
use super::keymap::Scope;
use crate::core::inventory::InstanceIdx;
use crate::queue::rollout::Plan;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dialog {
    Help {
        scroll: u16,
    },
    /// The selected row's detail pane.
    Detail {
        scroll: u16,
    },
    /// Typing the view's filter; `previous` comes back on Esc.
    Filter {
        previous: String,
    },
    Command {
        line: String,
    },
    /// "queue N instances? y/N"
    Question(Question),
    /// Typing the confirmation of an apply.
    Confirm(Confirm),
}

/// Instances waiting for the answer to "queue N instances? y/N", and what they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub instances: Vec<InstanceIdx>,
    pub what: String,
    /// They were chosen by marks, which are spent only if the answer is yes.
    pub spends_marks: bool,
}

/// The apply goes ahead only if `typed` ends up `phrase`, and then for exactly the plan shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirm {
    pub phrase: String,
    pub typed: String,
    pub plan: Box<Plan>,
    /// What other processes changed in the queue since this screen last read it, if any.
    pub changed: Option<String>,
}

/// A change to the text of the view's filter, which the view keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    Push(char),
    Pop,
    Clear,
}

/// What a key did to the dialog, for the app to act on.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing beyond the dialog itself changed.
    Stays,
    Closed,
    Quit,
    EditFilter(Edit),
    CompleteFilter,
    /// Enter: the filter typed stays, unless it does not parse; then `previous` comes back.
    CommitFilter {
        previous: String,
    },
    CancelFilter {
        previous: String,
    },
    CompleteCommand,
    RunCommand(String),
    Answered {
        yes: bool,
        question: Question,
    },
    Confirmed(Box<Plan>),
    NotConfirmed,
    ApplyCancelled,
}

impl Dialog {
    /// The keymap scope its keys are read in.
    pub fn scope(&self) -> Scope {
        match self {
            Dialog::Help { .. } => Scope::Help,
            Dialog::Detail { .. } => Scope::Detail,
            Dialog::Filter { .. } | Dialog::Command { .. } => Scope::Input,
            Dialog::Question(_) => Scope::Question,
            Dialog::Confirm(_) => Scope::Confirm,
        }
    }

    /// Handles one action; returns the dialog if it stays open, and the outcome.
    pub fn handle(self, action: Action) -> (Option<Dialog>, Outcome) {
        if action == Action::ForceQuit {
            return (None, Outcome::Quit);
        }
        match (self, action) {
            (Dialog::Help { scroll } | Dialog::Detail { scroll }, Action::Quit) => {
                let _ = scroll;
                (None, Outcome::Quit)
            }
            (Dialog::Help { scroll }, Action::Down | Action::ScrollDown) => (
                Some(Dialog::Help {
                    scroll: scroll.saturating_add(1),
                }),
                Outcome::Stays,
            ),
            (Dialog::Help { scroll }, Action::Up | Action::ScrollUp) => (
                Some(Dialog::Help {
                    scroll: scroll.saturating_sub(1),
                }),
                Outcome::Stays,
            ),
            (Dialog::Help { .. }, Action::ToggleHelp | Action::Back | Action::Cancel) => {
                (None, Outcome::Closed)
            }
            (Dialog::Detail { scroll }, Action::Down | Action::ScrollDown) => (
                Some(Dialog::Detail {
                    scroll: scroll.saturating_add(1),
                }),
                Outcome::Stays,
            ),
            (Dialog::Detail { scroll }, Action::Up | Action::ScrollUp) => (
                Some(Dialog::Detail {
                    scroll: scroll.saturating_sub(1),
                }),
                Outcome::Stays,
            ),
            (
                Dialog::Detail { .. },
                Action::ToggleHelp | Action::Back | Action::Cancel | Action::ShowDetail,
            ) => (None, Outcome::Closed),
            (Dialog::Filter { previous }, action) => match action {
                Action::Input(c) => filter_edit(previous, Edit::Push(c)),
                Action::DeleteChar => filter_edit(previous, Edit::Pop),
                Action::ClearInput => filter_edit(previous, Edit::Clear),
                Action::Complete => (Some(Dialog::Filter { previous }), Outcome::CompleteFilter),
                Action::Submit => (None, Outcome::CommitFilter { previous }),
                Action::Cancel => (None, Outcome::CancelFilter { previous }),
                Action::Quit => (None, Outcome::Quit),
                _ => (Some(Dialog::Filter { previous }), Outcome::Stays),
            },
            (Dialog::Command { mut line }, action) => match action {
                Action::Input(c) => {
                    line.push(c);
                    (Some(Dialog::Command { line }), Outcome::Stays)
                }
                Action::DeleteChar => {
                    line.pop();
                    (Some(Dialog::Command { line }), Outcome::Stays)
                }
                Action::ClearInput => (
                    Some(Dialog::Command {
                        line: String::new(),
                    }),
                    Outcome::Stays,
                ),
                Action::Complete => (Some(Dialog::Command { line }), Outcome::CompleteCommand),
                Action::Submit => (None, Outcome::RunCommand(line)),
                Action::Cancel => (None, Outcome::Closed),
                Action::Quit => (None, Outcome::Quit),
                _ => (Some(Dialog::Command { line }), Outcome::Stays),
            },
            (Dialog::Question(question), action) => (
                None,
                Outcome::Answered {
                    yes: action == Action::Yes,
                    question,
                },
            ),
            (Dialog::Confirm(mut confirm), action) => match action {
                Action::Input(c) => {
                    confirm.typed.push(c);
                    (Some(Dialog::Confirm(confirm)), Outcome::Stays)
                }
                Action::DeleteChar => {
                    confirm.typed.pop();
                    (Some(Dialog::Confirm(confirm)), Outcome::Stays)
                }
                Action::ClearInput => {
                    confirm.typed.clear();
                    (Some(Dialog::Confirm(confirm)), Outcome::Stays)
                }
                Action::Submit if confirm.typed.trim() == confirm.phrase => {
                    (None, Outcome::Confirmed(confirm.plan))
                }
                Action::Submit => (None, Outcome::NotConfirmed),
                Action::Cancel => (None, Outcome::ApplyCancelled),
                _ => (Some(Dialog::Confirm(confirm)), Outcome::Stays),
            },
            (dialog, _) => (Some(dialog), Outcome::Stays),
        }
    }
}

fn filter_edit(previous: String, edit: Edit) -> (Option<Dialog>, Outcome) {
    (Some(Dialog::Filter { previous }), Outcome::EditFilter(edit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_answer_but_yes_is_no() {
        let question = Question {
            instances: vec![1, 2],
            what: "2 marked".into(),
            spends_marks: true,
        };
        for (action, yes) in [
            (Action::Yes, true),
            (Action::No, false),
            (Action::Cancel, false),
        ] {
            let (open, outcome) = Dialog::Question(question.clone()).handle(action);
            assert!(open.is_none());
            assert_eq!(
                outcome,
                Outcome::Answered {
                    yes,
                    question: question.clone()
                }
            );
        }
    }

    #[test]
    fn the_confirmation_goes_ahead_only_on_the_exact_phrase() {
        let confirm = |typed: &str| {
            Dialog::Confirm(Confirm {
                phrase: "replace 3".into(),
                typed: typed.into(),
                plan: Box::default(),
                changed: None,
            })
        };
        assert!(matches!(
            confirm("replace 3").handle(Action::Submit),
            (None, Outcome::Confirmed(_))
        ));
        assert_eq!(
            confirm("replace").handle(Action::Submit),
            (None, Outcome::NotConfirmed)
        );
        assert_eq!(
            confirm("").handle(Action::Quit).1,
            Outcome::Stays,
            "q is a letter of the phrase, not a quit"
        );
    }
}
