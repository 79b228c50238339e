//! Every source comes to one end: finished, incomplete or failed. Each has a deadline that,
//! when it passes, names the calls still outstanding; a panic inside one fails it in one line,
//! its report sent to the log rather than the terminal; and each cloud runs as a task whose
//! sources all end even if it dies.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::mpsc;

use crate::core::event::CollectEvent;

/// How long one source may take, and the config key that sets it (named when it passes).
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    pub after: Duration,
    pub key: &'static str,
}

impl Deadline {
    fn passed(&self, calls: &Calls) -> String {
        let waiting = lock(calls).clone();
        let secs = self.after.as_secs();
        if waiting.is_empty() {
            return format!("did not finish within {secs} s ({})", self.key);
        }
        let mut named: Vec<&str> = Vec::new();
        for what in &waiting {
            if !named.contains(&what.as_str()) {
                named.push(what);
            }
        }
        let more = named.len().saturating_sub(SHOWN_CALLS);
        let mut text = format!(
            "no answer within {secs} s ({}): still waiting for {}",
            self.key,
            named[..named.len() - more].join(", ")
        );
        if more > 0 {
            text.push_str(&format!(" and {more} more"));
        }
        text
    }
}

/// Outstanding calls named in a deadline's message, at most.
const SHOWN_CALLS: usize = 6;

/// The calls of one source still waiting for an answer, in the order they were made.
type Calls = Arc<Mutex<Vec<String>>>;

fn lock(calls: &Calls) -> std::sync::MutexGuard<'_, Vec<String>> {
    // A list of names stays usable whatever panicked while it was held.
    calls.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The source (or cloud) whose collection the running task is polling: the panic hook names
/// it, and `call` records its outstanding calls there.
#[derive(Clone)]
struct Current {
    name: String,
    calls: Calls,
}

tokio::task_local! {
    static CURRENT: Current;
    /// The collection's bound on calls in flight, shared by every source of every cloud.
    static IN_FLIGHT: InFlight;
    /// Set inside a call that holds a slot: a call made within it (a step of several calls)
    /// rides on that slot rather than waiting for a second one, which could wait forever.
    static HOLDS_SLOT: ();
}

/// The most calls to the clouds in flight at once (`collect.max_in_flight`).
#[derive(Clone)]
pub(crate) struct InFlight(Arc<tokio::sync::Semaphore>);

impl InFlight {
    pub(crate) fn new(max: u32) -> InFlight {
        InFlight(Arc::new(tokio::sync::Semaphore::new(max.max(1) as usize)))
    }

    /// Runs `work` with every `call` inside it (in this task) held to the bound.
    pub(crate) async fn scope<F: Future>(self, work: F) -> F::Output {
        IN_FLIGHT.scope(self, work).await
    }

    fn current() -> Option<InFlight> {
        HOLDS_SLOT
            .try_with(|()| ())
            .is_err()
            .then(|| IN_FLIGHT.try_with(InFlight::clone).ok())?
    }
}

impl Current {
    fn new(name: &str) -> Current {
        Current {
            name: name.to_owned(),
            calls: Calls::default(),
        }
    }
}

/// Runs one call, or one step of a few calls, of the source being collected, so that its
/// deadline can say what it was still waiting for, once a slot under the collection's bound is
/// free. Outside a collection it is just the call.
pub(crate) async fn call<F: Future>(what: impl Into<String>, call: F) -> F::Output {
    let _outstanding = Outstanding::new(what.into());
    match InFlight::current() {
        Some(InFlight(slots)) => {
            // The semaphore is never closed, so acquiring fails only in theory: go unbounded.
            let _slot = slots.acquire_owned().await.ok();
            HOLDS_SLOT.scope((), call).await
        }
        None => call.await,
    }
}

/// One call in flight, listed while it lives.
struct Outstanding {
    calls: Option<Calls>,
    what: String,
}

impl Outstanding {
    fn new(what: String) -> Outstanding {
        let calls = CURRENT.try_with(|c| c.calls.clone()).ok();
        if let Some(calls) = &calls {
            lock(calls).push(what.clone());
        }
        Outstanding { calls, what }
    }
}

impl Drop for Outstanding {
    fn drop(&mut self) {
        if let Some(calls) = &self.calls {
            let mut calls = lock(calls);
            if let Some(at) = calls.iter().position(|w| *w == self.what) {
                calls.remove(at);
            }
        }
    }
}

/// Runs one source's collection to an end. A source that passes its deadline fails, naming
/// the calls still outstanding; one that panics (a bug, whatever its cause) fails in one line
/// too, and the other sources go on either way.
pub(crate) async fn run_source(
    source: &str,
    deadline: Deadline,
    tx: &mpsc::Sender<CollectEvent>,
    work: impl Future<Output = ()>,
) {
    let current = Current::new(source);
    let calls = current.calls.clone();
    // Unwind safety: after a panic the work is dropped unused; only the list of calls (a
    // mutex that tolerates poisoning) is read.
    let work = AssertUnwindSafe(CURRENT.scope(current, work)).catch_unwind();
    let mut work = std::pin::pin!(work);
    let error = tokio::select! {
        ended = &mut work => match ended {
            Ok(()) => return,
            Err(panic) => internal_error(panic.as_ref()),
        },
        () = tokio::time::sleep(deadline.after) => deadline.passed(&calls),
    };
    let failed = CollectEvent::Failed {
        source: source.to_owned(),
        error,
    };
    let _ = tx.send(failed).await;
}

/// Runs one cloud's collection as a task of its own and passes its events on. Every source it
/// owes ends: if the task panics, each of them that had not ended (the configured ones it never
/// got to, and the found ones it announced as waiting, included) fails in one line; if it stops
/// without a word on one, that one fails too.
/// So no source stays "collecting" and nothing partial passes for complete.
pub(super) async fn contained(
    cloud: &'static str,
    configured: Vec<String>,
    tx: mpsc::Sender<CollectEvent>,
    work: impl FnOnce(mpsc::Sender<CollectEvent>) -> BoxFuture<'static, ()>,
) {
    let (inner, mut events) = mpsc::channel(64);
    // Dropped, the set aborts the task: nobody listens any more.
    let mut task = tokio::task::JoinSet::new();
    let work = CURRENT.scope(Current::new(cloud), work(inner));
    // A task-local does not follow a spawned task: the bound is handed over.
    match IN_FLIGHT.try_with(InFlight::clone) {
        Ok(bound) => task.spawn(bound.scope(work)),
        Err(_) => task.spawn(work),
    };
    let mut unseen = configured;
    let mut open: Vec<String> = Vec::new();
    while let Some(event) = events.recv().await {
        let source = event.source();
        unseen.retain(|s| s != source);
        match &event {
            CollectEvent::Started { source, .. } | CollectEvent::Waiting { source, .. }
                if !open.contains(source) =>
            {
                open.push(source.clone());
            }
            CollectEvent::Finished { source }
            | CollectEvent::Incomplete { source, .. }
            | CollectEvent::Failed { source, .. }
            | CollectEvent::Skipped { source, .. } => open.retain(|s| s != source),
            _ => {}
        }
        if tx.send(event).await.is_err() {
            return;
        }
    }
    // The channel closed: the task has ended, its senders dropped with it.
    let error = match task.join_next().await {
        Some(Err(ended)) if ended.is_panic() => {
            open.extend(unseen);
            internal_error(ended.into_panic().as_ref())
        }
        _ => "collection ended before this source finished".to_owned(),
    };
    for source in open {
        let error = error.clone();
        if tx
            .send(CollectEvent::Failed { source, error })
            .await
            .is_err()
        {
            return;
        }
    }
}

/// The longest panic message a source's one-line error quotes.
const PANIC_TEXT_MAX: usize = 120;

/// A source's one line for a panic; the panic hook put the detail in the log.
fn internal_error(panic: &(dyn Any + Send)) -> String {
    let text = panic_text(panic)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let mut short: String = text.chars().take(PANIC_TEXT_MAX).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    format!("internal error: {short} (details in fleetscope.log)")
}

fn panic_text(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic")
}

/// Sends the report of a panic inside a source's collection to `fleetscope.log` rather than
/// the terminal: that source fails in one line of its own (`run_source`, `contained`), and
/// neither the UI's screen nor a report's stderr is a place for a backtrace. Every other panic
/// goes to the hook installed before.
pub fn log_source_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let Ok(source) = CURRENT.try_with(|c| c.name.clone()) else {
            previous(info);
            return;
        };
        let text = panic_text(info.payload());
        let at = info
            .location()
            .map_or(String::new(), |l| format!(" at {l}"));
        crate::log::error(
            &format!("{source}: internal error: {text}"),
            &format!(
                "{text}{at}; backtrace: {}",
                std::backtrace::Backtrace::force_capture()
            ),
        );
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deadline(millis: u64) -> Deadline {
        Deadline {
            after: Duration::from_millis(millis),
            key: "test.deadline_secs",
        }
    }

    async fn drain(mut rx: mpsc::Receiver<CollectEvent>) -> Vec<CollectEvent> {
        let mut events = Vec::new();
        while let Some(event) = rx.recv().await {
            events.push(event);
        }
        events
    }

    #[tokio::test]
    async fn a_panicking_source_fails_in_one_line_and_its_sibling_finishes() {
        let (tx, rx) = mpsc::channel(8);
        let panics = run_source("aws:a", deadline(60_000), &tx, async {
            let huge = Duration::from_secs(u64::MAX);
            // A bug of the kind an absurd setting once caused.
            let _ = std::hint::black_box(huge) * 4;
        });
        let finishes = run_source("aws:b", deadline(60_000), &tx, async {
            let finished = CollectEvent::Finished {
                source: "aws:b".into(),
            };
            let _ = tx.send(finished).await;
        });
        futures::join!(panics, finishes);
        drop(tx);
        let events = drain(rx).await;
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(events.contains(&CollectEvent::Finished {
            source: "aws:b".into()
        }));
        let Some(CollectEvent::Failed { error, .. }) =
            events.iter().find(|e| e.source() == "aws:a")
        else {
            panic!("{events:?}");
        };
        assert!(
            error.starts_with("internal error: overflow when multiplying duration by scalar"),
            "{error}"
        );
        assert!(error.ends_with("(details in fleetscope.log)"), "{error}");
        assert!(!error.contains('\n'));
    }

    #[tokio::test]
    async fn the_panic_hook_keeps_a_source_panic_off_the_terminal() {
        thread_local! {
            static REPORTED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
        }
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            REPORTED.with(|r| r.set(r.get() + 1));
            previous(info);
        }));
        log_source_panics();
        let (tx, _rx) = mpsc::channel(8);
        run_source("aws:a", deadline(60_000), &tx, async {
            panic!("in a source")
        })
        .await;
        assert_eq!(REPORTED.with(std::cell::Cell::get), 0);
        let elsewhere = std::panic::catch_unwind(|| panic!("elsewhere"));
        assert!(elsewhere.is_err());
        assert_eq!(REPORTED.with(std::cell::Cell::get), 1);
    }

    #[tokio::test]
    async fn a_source_past_its_deadline_names_every_call_it_still_waited_for() {
        let (tx, rx) = mpsc::channel(8);
        let work = async {
            let answered = call("DescribeRegions", async {}).await;
            let hung = futures::future::pending::<()>();
            futures::join!(
                call("DescribeSecurityGroups in us-east-1", hung),
                call(
                    "DescribeInstances in us-east-1",
                    futures::future::pending::<()>()
                ),
            );
            answered
        };
        run_source("aws:a", deadline(50), &tx, work).await;
        drop(tx);
        let events = drain(rx).await;
        assert_eq!(
            events,
            [CollectEvent::Failed {
                source: "aws:a".into(),
                error: "no answer within 0 s (test.deadline_secs): still waiting for DescribeSecurityGroups in us-east-1, DescribeInstances in us-east-1".into(),
            }]
        );
        // Outside a source, a call is only the call.
        call("nowhere", async {}).await;
    }

    #[tokio::test]
    async fn calls_across_clouds_and_sources_stay_under_one_bound_and_nest_freely() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let now = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let one_call = |now: Arc<AtomicUsize>, peak: Arc<AtomicUsize>| async move {
            let running = now.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(running, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(5)).await;
            now.fetch_sub(1, Ordering::SeqCst);
        };
        let cloud = |name: &'static str| {
            let (now, peak) = (now.clone(), peak.clone());
            let (tx, _rx) = mpsc::channel(8);
            contained(name, Vec::new(), tx, move |_tx| {
                Box::pin(async move {
                    let sources = (0..20).map(|_| {
                        let (now, peak) = (now.clone(), peak.clone());
                        async move {
                            for _ in 0..3 {
                                // A step of two calls inside one: it must not wait for itself.
                                call("step", async {
                                    call("inner", one_call(now.clone(), peak.clone())).await;
                                    call("inner", one_call(now.clone(), peak.clone())).await;
                                })
                                .await;
                                call("page", one_call(now.clone(), peak.clone())).await;
                            }
                        }
                    });
                    futures::future::join_all(sources).await;
                })
            })
        };
        let started = std::time::Instant::now();
        let both = futures::future::join(cloud("aws"), cloud("gcp"));
        InFlight::new(4).scope(both).await;
        assert_eq!(peak.load(Ordering::SeqCst), 4);
        // 40 sources of 9 calls of 5 ms, four at once: about 450 ms, never the sum of 1.8 s.
        assert!(
            started.elapsed() < Duration::from_millis(1_500),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_cloud_that_panics_fails_every_source_it_still_owed() {
        let (tx, rx) = mpsc::channel(16);
        let configured = vec!["gcp:a".into(), "gcp:b".into(), "gcp:never".into()];
        contained("gcp", configured, tx, |tx| {
            Box::pin(async move {
                for source in ["gcp:a", "gcp:b"] {
                    let started = CollectEvent::Started {
                        source: source.into(),
                        cloud: crate::core::model::Cloud::Gcp,
                        expected_pages: None,
                    };
                    let _ = tx.send(started).await;
                }
                let finished = CollectEvent::Finished {
                    source: "gcp:a".into(),
                };
                let _ = tx.send(finished).await;
                panic!("setup went wrong");
            })
        })
        .await;
        let events = drain(rx).await;
        let failed: Vec<(&str, &str)> = events
            .iter()
            .filter_map(|e| match e {
                CollectEvent::Failed { source, error } => Some((source.as_str(), error.as_str())),
                _ => None,
            })
            .collect();
        let why = "internal error: setup went wrong (details in fleetscope.log)";
        assert_eq!(failed, [("gcp:b", why), ("gcp:never", why)], "{events:?}");
    }

    #[tokio::test]
    async fn a_skipped_source_has_ended_and_a_waiting_one_is_still_owed() {
        let (tx, rx) = mpsc::channel(16);
        contained("gcp", vec!["gcp:quiet".into()], tx, |tx| {
            Box::pin(async move {
                let events = [
                    CollectEvent::Started {
                        source: "gcp:quiet".into(),
                        cloud: crate::core::model::Cloud::Gcp,
                        expected_pages: None,
                    },
                    CollectEvent::Skipped {
                        source: "gcp:quiet".into(),
                        cloud: crate::core::model::Cloud::Gcp,
                        account: None,
                        reason: "Compute Engine API not enabled".into(),
                    },
                    CollectEvent::Waiting {
                        source: "gcp:found".into(),
                        cloud: crate::core::model::Cloud::Gcp,
                        account: None,
                    },
                ];
                for event in events {
                    let _ = tx.send(event).await;
                }
            })
        })
        .await;
        let events = drain(rx).await;
        let failed: Vec<&str> = events
            .iter()
            .filter_map(|e| match e {
                CollectEvent::Failed { source, .. } => Some(source.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(failed, ["gcp:found"], "{events:?}");
    }

    #[tokio::test]
    async fn a_found_source_announced_as_waiting_ends_when_its_cloud_dies_or_stops() {
        let waiting = |source: &str| CollectEvent::Waiting {
            source: source.into(),
            cloud: crate::core::model::Cloud::Azure,
            account: None,
        };
        let (tx, rx) = mpsc::channel(16);
        contained("azure", vec!["azure:mg:root".into()], tx, move |tx| {
            Box::pin(async move {
                for source in ["azure:found", "azure:skipped"] {
                    let _ = tx.send(waiting(source)).await;
                }
                let skipped = CollectEvent::Skipped {
                    source: "azure:skipped".into(),
                    cloud: crate::core::model::Cloud::Azure,
                    account: None,
                    reason: "disabled".into(),
                };
                let _ = tx.send(skipped).await;
                panic!("listing went wrong");
            })
        })
        .await;
        let events = drain(rx).await;
        let failed: Vec<&str> = events
            .iter()
            .filter(|e| matches!(e, CollectEvent::Failed { .. }))
            .map(CollectEvent::source)
            .collect();
        assert_eq!(failed, ["azure:found", "azure:mg:root"], "{events:?}");

        let (tx, rx) = mpsc::channel(16);
        contained("azure", Vec::new(), tx, move |tx| {
            Box::pin(async move {
                let _ = tx.send(waiting("azure:found")).await;
            })
        })
        .await;
        let events = drain(rx).await;
        assert_eq!(
            events.last(),
            Some(&CollectEvent::Failed {
                source: "azure:found".into(),
                error: "collection ended before this source finished".into(),
            })
        );
    }

    #[tokio::test]
    async fn a_source_that_ends_without_a_word_fails() {
        let (tx, rx) = mpsc::channel(16);
        contained("aws", vec!["aws:a".into()], tx, |tx| {
            Box::pin(async move {
                let started = CollectEvent::Started {
                    source: "aws:a".into(),
                    cloud: crate::core::model::Cloud::Aws,
                    expected_pages: None,
                };
                let _ = tx.send(started).await;
            })
        })
        .await;
        let events = drain(rx).await;
        assert_eq!(
            events.last(),
            Some(&CollectEvent::Failed {
                source: "aws:a".into(),
                error: "collection ended before this source finished".into(),
            })
        );
    }
}
