//! The UI driven headless, shared by the UI tests and benches: the demo fleet's `App` wrapped
//! in a `Ui` that plays the runtime (every message goes through `App::handle`, queue saves and
//! journal reads are performed at once against the files, frames are drawn into a test buffer
//! and their layout handed back), and screens out as text.

use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use fleetscope::clouds::demo::DemoFleet;
use fleetscope::core::inventory::Inventory;
use fleetscope::core::lineage::LineageRules;
use fleetscope::core::policy::PolicyConfig;
use fleetscope::queue::journal::{self, Journal};
use fleetscope::views::tui::action::{Action, Effect};
use fleetscope::views::tui::app::{App, AppInit, Msg};
use fleetscope::views::tui::{draw, keymap, save};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

/// The time every demo fleet here is judged as of.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
}

pub fn rules() -> LineageRules {
    LineageRules {
        tag: Some("lineage".into()),
        name_rules: Vec::new(),
    }
}

pub fn demo_inventory(size: usize) -> Inventory {
    let mut inventory = Inventory::new(rules());
    for event in DemoFleet::new(42, size, now()).events() {
        inventory.apply(event);
    }
    inventory
}

/// An app and the runtime's part: where its queue is saved and its journal read, if anywhere.
pub struct Ui {
    pub app: App,
    queue_path: Option<PathBuf>,
    journal_path: Option<PathBuf>,
}

impl Deref for Ui {
    type Target = App;
    fn deref(&self) -> &App {
        &self.app
    }
}

impl DerefMut for Ui {
    fn deref_mut(&mut self) -> &mut App {
        &mut self.app
    }
}

impl Ui {
    pub fn new(init: AppInit, queue_path: Option<PathBuf>) -> Ui {
        let init = AppInit {
            persist_queue: queue_path.is_some(),
            ..init
        };
        Ui {
            app: App::new(init),
            queue_path,
            journal_path: None,
        }
    }

    /// Reads the journal at `path` as the runtime does at start, and again whenever the app
    /// asks.
    pub fn with_journal(&mut self, path: &Path) {
        self.journal_path = Some(path.to_owned());
        self.send(Msg::JournalRead(Self::read_journal(path)));
    }

    fn read_journal(
        path: &Path,
    ) -> Result<std::collections::HashMap<String, journal::Failure>, String> {
        Journal::read(path)
            .map(|records| journal::failures(&records))
            .map_err(|e| e.0)
    }

    /// Handles a message as the runtime does: saves and journal reads are performed at once
    /// (and what the app makes of them in turn); the first other effect is returned for the
    /// test to look at.
    pub fn send(&mut self, msg: Msg) -> Option<Effect> {
        let mut rest = None;
        let mut effects: VecDeque<Effect> = self.app.handle(msg).into();
        while let Some(effect) = effects.pop_front() {
            match effect {
                Effect::Save(changes) => {
                    if let Some(path) = &self.queue_path {
                        let done = save::save(path, 1, changes);
                        effects.extend(self.app.handle(Msg::Saved(done)));
                    }
                }
                Effect::ReadJournal if self.journal_path.is_some() => {
                    let read = Self::read_journal(self.journal_path.as_deref().unwrap());
                    effects.extend(self.app.handle(Msg::JournalRead(read)));
                }
                other => {
                    rest.get_or_insert(other);
                }
            }
        }
        rest
    }

    pub fn update(&mut self, action: Action) -> Option<Effect> {
        self.send(Msg::Action(action))
    }

    /// Hands whatever the saver has not had yet to the file.
    pub fn save_now(&mut self) {
        self.send(Msg::Flush);
    }
}

/// A browsing app over `inventory`, its queue saved to `queue_path` if given.
pub fn app_with(inventory: Inventory, queue_path: Option<PathBuf>) -> Ui {
    Ui::new(
        AppInit::browse(inventory, rules(), PolicyConfig::default(), now()),
        queue_path,
    )
}

/// The demo fleet of `size` instances, drawn once as the runtime does before any key (page
/// sizes come from the last frame).
pub fn demo_app_of(size: usize) -> Ui {
    let mut app = app_with(demo_inventory(size), None);
    render(&mut app, 120, 40);
    app
}

pub fn demo_app() -> Ui {
    demo_app_of(1_500)
}

/// The demo fleet of `size` (seed `seed`) as the runtime gets it: an app that starts empty and
/// collecting, every collection event handled one by one, then the final evaluation.
pub fn streamed_demo(seed: u64, size: usize, now: DateTime<Utc>) -> Ui {
    let mut app = Ui::new(
        AppInit {
            collecting: true,
            ..AppInit::browse(
                Inventory::new(rules()),
                rules(),
                PolicyConfig::default(),
                now,
            )
        },
        None,
    );
    for event in DemoFleet::new(seed, size, now).events() {
        app.send(Msg::Collected(event));
    }
    app.send(Msg::CollectionDone { now });
    app
}

/// The demo app with settings of its own: `set` changes the defaults `AppInit::browse` gives.
pub fn demo_app_with(set: impl FnOnce(&mut AppInit)) -> Ui {
    let mut init = AppInit::browse(
        demo_inventory(1_500),
        rules(),
        PolicyConfig::default(),
        now(),
    );
    set(&mut init);
    let mut app = Ui::new(init, None);
    render(&mut app, 120, 40);
    app
}

/// Draws a frame as the runtime does, and hands its layout back to the app.
pub fn frame(app: &mut Ui, terminal: &mut Terminal<TestBackend>) {
    let mut layout = None;
    terminal
        .draw(|frame| layout = Some(draw::draw(frame, &app.app)))
        .unwrap();
    if let Some(layout) = layout {
        app.send(Msg::Drawn(layout));
    }
}

/// Draws a frame, hands its layout back to the app, and returns the screen as text.
pub fn render(app: &mut Ui, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    frame(app, &mut terminal);
    let buffer = terminal.backend().buffer();
    let mut text = String::new();
    for y in 0..buffer.area.height {
        let line: String = (0..buffer.area.width)
            .map(|x| buffer[(x, y)].symbol())
            .collect();
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// A key pressed, read through the keymap in the scope of whatever is open.
pub fn press(app: &mut Ui, code: KeyCode) -> Option<Effect> {
    let event = KeyEvent::new(code, KeyModifiers::NONE);
    let action = keymap::action_for(&event, app.browse.view, app.key_scope())?;
    app.update(action)
}

/// The current view's filter line, open, holding `text` as if typed (or pasted) whole.
pub fn type_filter(app: &mut Ui, text: &str) {
    if app.dialog().is_none() {
        app.update(Action::StartFilter);
    }
    app.update(Action::ClearInput);
    for c in text.chars() {
        app.update(Action::Input(c));
    }
}

pub fn type_text(app: &mut Ui, text: &str) {
    for c in text.chars() {
        press(app, KeyCode::Char(c));
    }
}
