//! The interactive terminal UI: one loop that drains terminal input and collection events,
//! turns keys into actions through the keymap, updates the state, and draws only when something
//! changed. Collection runs in its own tasks and only sends events; the loop owns all state.

pub mod action;
pub mod app;
pub mod detail;
pub mod draw;
pub mod keymap;
pub mod save;
pub mod table;

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
use self::app::{App, AppInit};
use crate::clouds::{self, Plan};
use crate::core::event::CollectEvent;
use crate::core::inventory::Inventory;
use crate::core::lineage::LineageRules;
use crate::core::policy::PolicyConfig;
use crate::queue::Queue;
use crate::queue::apply::{ApplyLock, Paths};
use crate::queue::journal::{Journal, Record, Step};
use crate::queue::rollout::{self, Executors, RolloutEvent};

/// Re-evaluating a large fleet on every page would starve the keyboard; while pages stream in,
/// the policy runs at most this often, and never more than a quarter of the time.
const EVALUATE_EVERY: Duration = Duration::from_millis(300);

pub struct Options {
    /// What to collect; `None` browses `inventory` as it is (a snapshot).
    pub plan: Option<Plan>,
    pub inventory: Inventory,
    pub rules: LineageRules,
    pub policy: PolicyConfig,
    /// `--now`, or a snapshot's time; otherwise each collection is judged as of its start.
    pub fixed_now: Option<DateTime<Utc>>,
    pub queue: Queue,
    /// This fleet's queue, journal and apply lock.
    pub paths: Paths,
    /// This fleet's executors: the demo's simulation or the configured clouds'.
    pub executors: Arc<dyn Executors>,
    pub save_snapshot: Option<PathBuf>,
    pub rollout: rollout::Settings,
    pub read_only: bool,
    pub badges: app::Badges,
    /// Why the queue cannot be used (its file is damaged), if it cannot.
    pub queue_disabled: Option<String>,
    /// Queueing more instances than this at once asks first.
    pub confirm_queue_over: usize,
}

/// What the background apply reports.
enum ApplyEvent {
    /// The plan, and the queue file it was made from; or why none could be made.
    Planned(Result<(rollout::Plan, Queue), String>),
    Rollout(RolloutEvent),
    Finished(Result<String, String>),
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
                        outcome.map(|summary| summary.to_string()).map_err(|e| e.0)
                    })
                })
        }))
        .unwrap_or_else(|_| {
            Err("the apply stopped on an internal error; see the journal".to_owned())
        });
        let _ = events.send(ApplyEvent::Finished(outcome));
    });
    stop_tx
}

/// Collection in the background: dropping it stops the tasks.
struct Collection {
    events: mpsc::Receiver<CollectEvent>,
    task: JoinHandle<()>,
    now: DateTime<Utc>,
}

impl Collection {
    fn start(plan: Plan, now: DateTime<Utc>) -> Collection {
        let (tx, events) = mpsc::channel(256);
        let task = tokio::spawn(clouds::collect(plan, now, tx));
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
    let read = tokio::task::spawn_blocking(move || {
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
    let first_now = now_for_collection(options.fixed_now);
    let live = options.plan.is_some();
    let mut app = App::new(AppInit {
        inventory: options.inventory,
        rules: options.rules,
        policy: options.policy,
        now: first_now,
        queue: options.queue,
        queue_path: Some(options.paths.queue.clone()),
        live,
        collecting: live,
        read_only: options.read_only,
    });
    app.badges = options.badges;
    app.confirm_queue_over = options.confirm_queue_over;
    app.template_updates = options.rollout.update_templates;
    if let Some(why) = options.queue_disabled {
        app.disable_queue(why);
    }
    let (saved_tx, mut saved) = mpsc::unbounded_channel();
    let saver = save::start(options.paths.queue.clone(), saved_tx);
    let (apply_events_tx, mut apply_events) = mpsc::unbounded_channel();
    let mut stop_apply: Option<watch::Sender<Option<String>>> = None;
    let mut exit = Exit::Quit;
    let mut collection = options
        .plan
        .clone()
        .map(|plan| Collection::start(plan, first_now));
    let mut save_snapshot = options.save_snapshot;

    let mut terminal = ratatui::try_init()?;
    let _guard = TerminalGuard;
    crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture)?;
    let mut input = EventStream::new();
    let mut needs_render = true;
    let mut last_evaluation = Instant::now();
    let mut evaluate_every = EVALUATE_EVERY;

    loop {
        if app.needs_evaluation() && last_evaluation.elapsed() >= evaluate_every {
            let started = Instant::now();
            if let Some(c) = &collection {
                app.reevaluate(c.now);
            }
            last_evaluation = Instant::now();
            evaluate_every = EVALUATE_EVERY.max(started.elapsed() * 3);
            needs_render = true;
        }
        if needs_render {
            terminal.draw(|frame| draw::draw(frame, &mut app))?;
            needs_render = false;
        }
        let evaluation_due = evaluate_every.saturating_sub(last_evaluation.elapsed());
        tokio::select! {
            event = input.next() => {
                let Some(event) = event else { break };
                let Some(action) = translate(event?, &app) else {
                    // Resizes and such only need a new frame.
                    needs_render = true;
                    continue;
                };
                needs_render = true;
                let effect = app.update(action);
                if let Some(changes) = app.take_queue_changes() {
                    // The saver outlives the loop; were it gone, the flush at quit saves.
                    let _ = saver.send(changes);
                }
                match effect {
                    Some(Effect::Quit) => {
                        flush_saves(&mut app, &mut saved).await;
                        if app.confirm_quit() {
                            if let Some(stop) = stop_apply.take() {
                                let _ = stop.send(Some("the UI quit".to_owned()));
                                let _ = journal_quit(&options.paths);
                                exit = Exit::QuitMidApply;
                            }
                            break;
                        }
                    }
                    Some(Effect::Refresh) => {
                        // The queue file too: another fleetscope may have changed it.
                        if let Some(reread) = app.reread_queue() {
                            let _ = saver.send(reread);
                        }
                        if let Some(plan) = options.plan.clone() {
                            collection = Some(Collection::start(plan, now_for_collection(options.fixed_now)));
                        }
                    }
                    Some(Effect::Copy(text)) => copy_to_clipboard(&text),
                    Some(Effect::Apply(confirmed)) => {
                        stop_apply = Some(start_apply(
                            options.executors.clone(),
                            options.rollout.clone(),
                            options.paths.clone(),
                            *confirmed,
                            apply_events_tx.clone(),
                        ));
                    }
                    Some(Effect::PlanApply) => {
                        // The plan reads the file: everything queued here must be in it first.
                        flush_saves(&mut app, &mut saved).await;
                        let planning = plan_from_file(
                            options.paths.clone(),
                            options.executors.clone(),
                            options.rollout.clone(),
                        );
                        let events = apply_events_tx.clone();
                        tokio::spawn(async move {
                            let _ = events.send(ApplyEvent::Planned(planning.await));
                        });
                    }
                    Some(Effect::StopApply) => {
                        if let Some(stop) = &stop_apply {
                            let _ = stop.send(Some("stopped when asked".to_owned()));
                        }
                    }
                    None => {}
                }
            }
            event = next_collected(&mut collection) => {
                needs_render = true;
                match event {
                    Some(event) => {
                        app.apply_event(event);
                        // Apply what else has arrived before drawing once.
                        if let Some(c) = &mut collection {
                            while let Ok(event) = c.events.try_recv() {
                                app.apply_event(event);
                            }
                        }
                    }
                    None => {
                        let now = collection.take().map_or(first_now, |c| c.now);
                        app.collection_finished(now);
                        if let Some(path) = save_snapshot.take()
                            && let Err(error) = crate::snapshot::save(&path, &app.data.inventory, now)
                        {
                            app.status = Some(app::Status { text: error.to_string(), error: true });
                        }
                    }
                }
            }
            Some(done) = saved.recv() => {
                needs_render = true;
                app.queue_saved(done);
            }
            Some(event) = apply_events.recv() => {
                needs_render = true;
                match event {
                    ApplyEvent::Planned(Ok((plan, queue))) => {
                        let unchecked = plan.unchecked.clone();
                        // Entries the cloud could not be asked about are failures, journaled
                        // here when no rollout will journal them.
                        if !app.plan_ready(plan, queue)
                            && let Err(error) = rollout::journal_unchecked(&options.paths, &unchecked, false)
                        {
                            app.status = Some(app::Status { text: error.to_string(), error: true });
                        }
                    }
                    ApplyEvent::Planned(Err(error)) => app.plan_failed(error),
                    ApplyEvent::Rollout(event) => app.rollout_event(event),
                    ApplyEvent::Finished(outcome) => {
                        stop_apply = None;
                        let queue = Queue::load(&options.paths.queue).map_err(|e| e.0);
                        if app.apply_finished(outcome, queue) == Some(Effect::Refresh)
                            && let Some(plan) = options.plan.clone()
                        {
                            collection = Some(Collection::start(plan, now_for_collection(options.fixed_now)));
                        }
                    }
                }
            }
            _ = tokio::time::sleep(evaluation_due), if app.needs_evaluation() => {}
        }
    }
    drop(collection);
    drop(terminal);
    Ok(exit)
}

/// Waits for the saves on their way, then saves what is left here.
async fn flush_saves(app: &mut App, saved: &mut mpsc::UnboundedReceiver<save::Saved>) {
    while app.saves_in_flight() > 0 {
        match saved.recv().await {
            Some(done) => app.queue_saved(done),
            None => break,
        }
    }
    app.save_now();
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
            keymap::action_for(&key, app.view, app.typing(), app.modal())
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
