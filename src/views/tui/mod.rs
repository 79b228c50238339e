//! The interactive terminal UI: one loop that turns terminal input, collection events and the
//! workers' reports into messages for `App::handle`, performs the effects it returns (saves,
//! collections, plans, applies, snapshots: all off the loop's thread), and draws only when
//! something changed. The loop owns all state; workers only send.
//!
//! The journal (why entries failed, in earlier applies or other processes) is read by a
//! blocking task of its own, never by the loop: once at start, then whenever the app asks
//! (`Effect::ReadJournal`: after an apply, on Ctrl-r, when the queue file changed outside the
//! screen). Reads do not pile up: one runs at a time, and asks made meanwhile make one more.

pub mod action;
pub mod app;
pub mod browse;
pub mod command;
pub mod detail;
pub mod dialog;
pub mod draw;
pub mod fleet;
pub mod keymap;
pub mod layout;
pub mod marks;
pub mod queue_state;
pub mod rollout_state;
pub mod save;
pub mod sources;
pub mod style;
pub mod table;

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, Utc};
use crossterm::event::{Event, EventStream, KeyEventKind, MouseButton, MouseEventKind};
use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use self::action::{Action, Effect};
use self::app::{App, AppInit, Msg};
use self::rollout_state::Ended;
use crate::core::event::CollectEvent;
use crate::queue::Queue;
use crate::queue::apply::{ApplyLock, Paths};
use crate::queue::journal::{self, Failure, Journal, Record, Step};
use crate::queue::rollout::{self, Executors, RolloutEvent};

/// Re-evaluating a large fleet on every page would starve the keyboard; while pages stream in,
/// the policy runs at most this often, and never more than a quarter of the time.
const EVALUATE_EVERY: Duration = Duration::from_millis(300);

pub struct Options {
    /// The screen's starting state, as the command line set it up.
    pub init: AppInit,
    /// Starts a collection of the configured sources, judged as of the time given; `None`
    /// browses the fleet as it is (a snapshot).
    pub collect: Option<Collect>,
    /// `--now`, or a snapshot's time; otherwise each collection is judged as of its start.
    pub fixed_now: Option<DateTime<Utc>>,
    /// This fleet's queue, journal and apply lock.
    pub paths: Paths,
    /// This fleet's executors: the demo's simulation or the configured clouds'.
    pub executors: Arc<dyn Executors>,
    pub save_snapshot: Option<PathBuf>,
    pub rollout: rollout::Settings,
}

/// Starts a collection: the command line wires the sources, the UI only calls it.
pub type Collect = Box<dyn Fn(DateTime<Utc>) -> Collection + Send>;

/// What the background apply reports.
enum ApplyEvent {
    /// The plan, and the queue file it was made from; or why none could be made.
    Planned(Result<(rollout::Plan, Queue), String>),
    Rollout(RolloutEvent),
    /// The outcome, and the queue file as the apply left it.
    Finished(Result<Ended, String>, Result<Queue, String>),
    /// The journal's last failures (not the apply's alone: any read of the journal).
    Journal(Result<HashMap<String, Failure>, String>),
}

/// The journal's last failure per instance id, read off the loop; the answer is sent back.
fn read_journal(path: PathBuf, events: mpsc::UnboundedSender<ApplyEvent>) {
    tokio::task::spawn_blocking(move || {
        let read = Journal::read(&path)
            .map(|records| journal::failures(&records))
            .map_err(|e| e.0);
        let _ = events.send(ApplyEvent::Journal(read));
    });
}

/// Runs a confirmed rollout on its own thread and runtime, so the loop never waits for the
/// cloud; the returned sender asks it to stop (in-flight steps finish, nothing new starts).
fn start_apply(
    executors: Arc<dyn Executors>,
    settings: rollout::Settings,
    paths: Paths,
    confirmed: rollout::Plan,
    events: mpsc::UnboundedSender<ApplyEvent>,
) -> watch::Sender<Option<String>> {
    let (stop_tx, stop) = watch::channel(None);
    std::thread::spawn(move || {
        let (rollout_tx, mut rollout_rx) = mpsc::unbounded_channel();
        let forward = events.clone();
        // Whatever happens in there, the UI hears that the apply ended.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the apply: {e}"))
                .and_then(|runtime| {
                    let lock = ApplyLock::acquire(&paths.lock).map_err(|e| e.0)?;
                    runtime.block_on(async {
                        let relay = async {
                            while let Some(event) = rollout_rx.recv().await {
                                let _ = forward.send(ApplyEvent::Rollout(event));
                            }
                        };
                        let request = rollout::Request {
                            paths: &paths,
                            lock,
                            confirmed: &confirmed,
                            settings: &settings,
                            dry_run: false,
                            stop,
                            events: rollout_tx,
                        };
                        let (outcome, ()) =
                            tokio::join!(rollout::run(request, executors.as_ref()), relay);
                        outcome
                            .map(|summary| Ended {
                                clean: summary.failed == 0 && summary.stopped.is_none(),
                                summary: summary.to_string(),
                            })
                            .map_err(|e| e.0)
                    })
                })
        }))
        .unwrap_or_else(|_| {
            Err("the apply stopped on an internal error; see the journal".to_owned())
        });
        let queue = Queue::load(&paths.queue).map_err(|e| e.0);
        let _ = events.send(ApplyEvent::Finished(outcome, queue));
    });
    stop_tx
}

/// Collection in the background: dropping it stops the tasks.
pub struct Collection {
    events: mpsc::Receiver<CollectEvent>,
    task: JoinHandle<()>,
    now: DateTime<Utc>,
}

impl Collection {
    /// A running collection judged as of `now`: its events, and its task.
    pub fn new(
        events: mpsc::Receiver<CollectEvent>,
        task: JoinHandle<()>,
        now: DateTime<Utc>,
    ) -> Collection {
        Collection { events, task, now }
    }
}

impl Drop for Collection {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Restores the terminal however the loop ends; ratatui's own hook covers panics.
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
        ratatui::restore();
    }
}

/// How the UI ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Quit,
    /// Quit while an apply ran: the stop is journaled, and steps in flight were cut short
    /// where they stood; the next apply resumes them.
    QuitMidApply,
}

pub fn run(options: Options) -> color_eyre::Result<Exit> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let exit = runtime.block_on(run_loop(options));
    // The apply thread may be mid-step: the process ends with it, as the journal expects.
    runtime.shutdown_background();
    exit
}

/// The plan of the queue file as it is now, under the queue lock's writers' rules; refused at
/// once when another apply runs, before anyone types a confirmation.
async fn plan_from_file(
    paths: Paths,
    executors: Arc<dyn Executors>,
    settings: rollout::Settings,
) -> Result<(rollout::Plan, Queue), String> {
    let files = paths.clone();
    let read = tokio::task::spawn_blocking(move || {
        let paths = files;
        drop(ApplyLock::acquire(&paths.lock)?);
        Ok::<_, crate::queue::QueueError>((
            Queue::load(&paths.queue)?,
            Journal::read(&paths.journal)?,
        ))
    });
    let (queue, records) = read
        .await
        .map_err(|e| format!("cannot read the queue: {e}"))?
        .map_err(|e| e.0)?;
    let plan = rollout::plan(&queue, &records, executors.as_ref(), &settings).await;
    // Entries the cloud could not be asked about are failures: journaled here when no
    // confirmation will open, since then no rollout will journal them.
    if plan.entries() == 0 && !plan.unchecked.is_empty() {
        let unchecked = plan.unchecked.clone();
        tokio::task::spawn_blocking(move || rollout::journal_unchecked(&paths, &unchecked, false))
            .await
            .map_err(|e| format!("cannot journal the plan: {e}"))?
            .map_err(|e| e.0)?;
    }
    Ok((plan, queue))
}

/// Journals that the UI quit while its apply ran, so the journal tells why it ended there.
fn journal_quit(paths: &Paths) -> Result<(), crate::queue::QueueError> {
    Journal::open(&paths.journal)?.append(&Record {
        at: Utc::now(),
        instance_id: String::new(),
        queued_at: None,
        step: Step::Stopped {
            why: "the UI quit during the apply, steps in flight cut short".to_owned(),
            not_started: 0,
        },
        dry_run: false,
    })
}

async fn run_loop(options: Options) -> color_eyre::Result<Exit> {
    let now_for_collection =
        |fixed: Option<DateTime<Utc>>| fixed.unwrap_or_else(|| Utc::now().trunc_subsecs(0));
    let mut collection = options
        .collect
        .as_ref()
        .map(|collect| collect(options.init.now));
    let mut app = App::new(options.init);
    let (saved_tx, mut saved) = mpsc::unbounded_channel();
    let saver = save::start(options.paths.queue.clone(), saved_tx);
    let (worker_tx, mut worker) = mpsc::unbounded_channel();
    let mut stop_apply: Option<watch::Sender<Option<String>>> = None;
    // A journal read running, and whether another was asked for meanwhile.
    let (mut journal_reading, mut journal_again) = (true, false);
    read_journal(options.paths.journal.clone(), worker_tx.clone());

    let mut terminal = ratatui::try_init()?;
    let _guard = TerminalGuard;
    crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture)?;
    let mut input = EventStream::new();
    let mut needs_render = true;
    let mut last_evaluation = Instant::now();
    let mut evaluate_every = EVALUATE_EVERY;

    loop {
        let mut effects = Vec::new();
        if app.fleet.needs_evaluation() && last_evaluation.elapsed() >= evaluate_every {
            let started = Instant::now();
            if let Some(c) = &collection {
                effects.extend(app.handle(Msg::Evaluate { now: c.now }));
            }
            last_evaluation = Instant::now();
            evaluate_every = EVALUATE_EVERY.max(started.elapsed() * 3);
            needs_render = true;
        }
        if needs_render {
            let mut layout = None;
            terminal.draw(|frame| layout = Some(draw::draw(frame, &app)))?;
            if let Some(layout) = layout {
                effects.extend(app.handle(Msg::Drawn(layout)));
            }
            needs_render = false;
        }
        let evaluation_due = evaluate_every.saturating_sub(last_evaluation.elapsed());
        tokio::select! {
            event = input.next() => {
                let Some(event) = event else { break };
                needs_render = true;
                // Resizes and such only need a new frame.
                if let Some(action) = translate(event?, &app) {
                    effects.extend(app.handle(Msg::Action(action)));
                }
            }
            event = next_collected(&mut collection) => {
                needs_render = true;
                match event {
                    Some(event) => {
                        effects.extend(app.handle(Msg::Collected(event)));
                        // Take what else has arrived before drawing once.
                        if let Some(c) = &mut collection {
                            while let Ok(event) = c.events.try_recv() {
                                effects.extend(app.handle(Msg::Collected(event)));
                            }
                        }
                    }
                    None => {
                        let now = collection.take().map_or(app.data.eval.now, |c| c.now);
                        effects.extend(app.handle(Msg::CollectionDone { now }));
                    }
                }
            }
            Some(done) = saved.recv() => {
                needs_render = true;
                effects.extend(app.handle(Msg::Saved(done)));
            }
            Some(event) = worker.recv() => {
                needs_render = true;
                let msg = match event {
                    ApplyEvent::Planned(planned) => Msg::Planned(planned),
                    ApplyEvent::Rollout(event) => Msg::Rollout(event),
                    ApplyEvent::Finished(outcome, queue) => {
                        stop_apply = None;
                        Msg::ApplyDone { outcome, queue }
                    }
                    ApplyEvent::Journal(read) => {
                        journal_reading = std::mem::take(&mut journal_again);
                        if journal_reading {
                            read_journal(options.paths.journal.clone(), worker_tx.clone());
                        }
                        Msg::JournalRead(read)
                    }
                };
                effects.extend(app.handle(msg));
            }
            _ = tokio::time::sleep(evaluation_due), if app.fleet.needs_evaluation() => {}
        }
        for effect in effects {
            match effect {
                Effect::Quit => {
                    // Everything queued here reaches the file before the screen goes.
                    flush_saves(&mut app, &mut saved, &options.paths.queue).await;
                    if app.may_quit() {
                        if let Some(stop) = stop_apply.take() {
                            let _ = stop.send(Some("the UI quit".to_owned()));
                            let _ = journal_quit(&options.paths);
                            drop(collection);
                            drop(terminal);
                            return Ok(Exit::QuitMidApply);
                        }
                        drop(collection);
                        drop(terminal);
                        return Ok(Exit::Quit);
                    }
                }
                Effect::Save(changes) => {
                    // The saver outlives the loop; were it gone, the flush at quit saves.
                    let _ = saver.send(changes);
                }
                Effect::ReadJournal if journal_reading => journal_again = true,
                Effect::ReadJournal => {
                    journal_reading = true;
                    read_journal(options.paths.journal.clone(), worker_tx.clone());
                }
                Effect::Refresh => {
                    if let Some(collect) = &options.collect {
                        collection = Some(collect(now_for_collection(options.fixed_now)));
                    }
                }
                Effect::Copy(text) => copy_to_clipboard(&text),
                Effect::PlanApply => {
                    // The plan reads the file: everything queued here must be in it first.
                    flush_saves(&mut app, &mut saved, &options.paths.queue).await;
                    let planning = plan_from_file(
                        options.paths.clone(),
                        options.executors.clone(),
                        options.rollout.clone(),
                    );
                    let events = worker_tx.clone();
                    tokio::spawn(async move {
                        let _ = events.send(ApplyEvent::Planned(planning.await));
                    });
                }
                Effect::Apply(confirmed) => {
                    stop_apply = Some(start_apply(
                        options.executors.clone(),
                        options.rollout.clone(),
                        options.paths.clone(),
                        *confirmed,
                        worker_tx.clone(),
                    ));
                }
                Effect::StopApply => {
                    if let Some(stop) = &stop_apply {
                        let _ = stop.send(Some("stopped when asked".to_owned()));
                    }
                }
                Effect::SaveSnapshot(snapshot) => {
                    if let Some(path) = options.save_snapshot.clone() {
                        let written = tokio::task::spawn_blocking(move || {
                            crate::snapshot::save(&path, &snapshot.inventory, snapshot.taken_at)
                                .map_err(|e| e.to_string())
                        })
                        .await
                        .unwrap_or_else(|e| Err(format!("cannot write the snapshot: {e}")));
                        app.handle(Msg::SnapshotSaved(written));
                    }
                }
            }
        }
    }
    drop(collection);
    drop(terminal);
    Ok(Exit::Quit)
}

/// Waits for the saves on their way, then saves what is left, off the loop's thread.
async fn flush_saves(
    app: &mut App,
    saved: &mut mpsc::UnboundedReceiver<save::Saved>,
    path: &std::path::Path,
) {
    while app.queue_state().saves_in_flight() > 0 {
        match saved.recv().await {
            Some(done) => {
                app.handle(Msg::Saved(done));
            }
            None => break,
        }
    }
    // One try: a save that fails leaves the queue unsaved, which quitting then asks about.
    let changes = app.handle(Msg::Flush).into_iter().find_map(|e| match e {
        Effect::Save(changes) => Some(changes),
        _ => None,
    });
    if let Some(changes) = changes {
        let path = path.to_owned();
        if let Ok(done) = tokio::task::spawn_blocking(move || save::save(&path, 1, changes)).await {
            app.handle(Msg::Saved(done));
        }
    }
}

async fn next_collected(collection: &mut Option<Collection>) -> Option<CollectEvent> {
    match collection {
        Some(c) => c.events.recv().await,
        None => std::future::pending().await,
    }
}

/// Terminal input as actions; `None` for what only needs a redraw.
fn translate(event: Event, app: &App) -> Option<Action> {
    match event {
        Event::Key(key) if key.kind != KeyEventKind::Release => {
            keymap::action_for(&key, app.browse.view, app.key_scope())
        }
        Event::Mouse(mouse) => match mouse.kind {
            MouseEventKind::ScrollDown => Some(Action::ScrollDown),
            MouseEventKind::ScrollUp => Some(Action::ScrollUp),
            MouseEventKind::Down(MouseButton::Left) => Some(Action::Click {
                column: mouse.column,
                row: mouse.row,
            }),
            _ => None,
        },
        _ => None,
    }
}

/// OSC 52: the terminal (and tmux, and ssh) puts the text on the system clipboard.
fn copy_to_clipboard(text: &str) {
    let mut out = std::io::stdout();
    let _ = write!(out, "\x1b]52;c;{}\x07", base64(text.as_bytes()));
    let _ = out.flush();
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(chunk.get(1).copied().unwrap_or(0)) << 8)
            | u32::from(chunk.get(2).copied().unwrap_or(0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::base64;

    #[test]
    fn base64_as_the_rfc_says() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"i-0abc"), "aS0wYWJj");
    }
}
