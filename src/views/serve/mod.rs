//! `fleetscope serve`: the fleet collected on an interval and served read-only to a team.
//!
//! One task collects, one after the other, never two at once; after each collection the
//! evaluated fleet is turned into what requests want (metrics, the snapshot's bytes plain and
//! gzipped) and swapped in whole behind an `Arc`. The HTTP side only reads the latest `Arc`,
//! so no request waits on a collection and no client, however slow, holds a collection up.
//! A source that fails keeps serving its last good data, marked down in the metrics.
//!
//! Security: loopback unless told otherwise; any other address needs a bearer token, which
//! `/snapshot` (and `/metrics` with `--token-metrics`) then requires, compared in constant
//! time. Nothing is writable over HTTP. Credentials stay in the collector: none is in a
//! response, and log lines are scrubbed of anything that looks like one.

mod collect;
mod http;
mod keep;
pub mod metrics;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use chrono::{DateTime, SubsecRound, Utc};
use tokio::sync::watch;

pub use collect::{Published, keep_last_good};
pub use keep::Keep;

use crate::clouds::Plan;
use crate::core::inventory::Inventory;
use crate::core::lineage::LineageRules;
use crate::core::policy::PolicyConfig;
use crate::snapshot::Location;

/// What serve collects from.
pub enum Source {
    /// The demo or the configured clouds.
    Collect(Plan),
    /// A snapshot file or another serve's URL, read again every interval.
    Snapshot {
        location: Location,
        fetch: crate::remote::Fetch,
    },
}

pub struct Options {
    pub listen: Listen,
    pub interval: Duration,
    pub source: Source,
    pub rules: LineageRules,
    pub policy: PolicyConfig,
    /// `--now`: every collection is judged at this time.
    pub fixed_now: Option<DateTime<Utc>>,
    pub token: Option<String>,
    pub token_metrics: bool,
    pub keep: Option<Keep>,
}

/// Where to listen, resolved.
#[derive(Debug, Clone)]
pub struct Listen {
    pub addr: SocketAddr,
    /// Every address the name resolved to is a loopback one.
    pub loopback: bool,
}

impl Listen {
    /// `HOST:PORT`, a name (`localhost:9464`) or an address (`127.0.0.1:9464`, `[::1]:9464`).
    pub fn resolve(text: &str) -> Result<Listen, String> {
        let addrs: Vec<SocketAddr> = text
            .to_socket_addrs()
            .map_err(|e| {
                format!("--listen {text}: {e} (expected HOST:PORT such as 127.0.0.1:9464)")
            })?
            .collect();
        let Some(&addr) = addrs.first() else {
            return Err(format!("--listen {text}: the name resolves to no address"));
        };
        Ok(Listen {
            addr,
            loopback: addrs.iter().all(|a| a.ip().is_loopback()),
        })
    }
}

/// What the HTTP side shares with the collector.
pub struct Shared {
    latest: RwLock<Option<Arc<Published>>>,
    live: metrics::Live,
    token: Option<String>,
    token_metrics: bool,
    interval: Duration,
    started: Instant,
}

impl Shared {
    /// The latest fleet, if a collection has finished. The lock is held for a clone.
    fn latest(&self) -> Option<Arc<Published>> {
        match self.latest.read() {
            Ok(latest) => latest.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn publish(&self, published: Published) {
        let published = Some(Arc::new(published));
        // The old fleet is dropped outside the lock, by whoever holds it last.
        let old = match self.latest.write() {
            Ok(mut latest) => std::mem::replace(&mut *latest, published),
            Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), published),
        };
        drop(old);
    }

    /// Healthy while evaluations keep coming: none for two intervals is stale.
    fn health(&self) -> (StatusCode, String) {
        let stale_after = self.interval * 2;
        match self.latest() {
            None if self.started.elapsed() <= stale_after => (
                StatusCode::OK,
                "ok: the first collection is running".to_owned(),
            ),
            None => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "stale: no collection has finished in {} s",
                    self.started.elapsed().as_secs()
                ),
            ),
            Some(latest) => {
                let age = (Utc::now() - latest.evaluated_at).num_seconds().max(0);
                let line = format!(
                    "last evaluation {} ({age} s ago): collection {}, {} instances",
                    latest.evaluated_at.format("%Y-%m-%dT%H:%M:%SZ"),
                    latest.seq,
                    latest.instances
                );
                if age as u64 > stale_after.as_secs() {
                    (StatusCode::SERVICE_UNAVAILABLE, format!("stale: {line}"))
                } else {
                    (StatusCode::OK, format!("ok: {line}"))
                }
            }
        }
    }
}

/// Resolves once the flag turns true (or its sender is gone).
async fn stopped(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|s| *s).await;
}

/// One line on stderr, scrubbed of secrets and escaped: what journald keeps.
fn log(line: &str) {
    let line = crate::text::escape(&crate::log::scrub(line)).into_owned();
    let _ = writeln!(
        std::io::stderr(),
        "{} fleetscope serve: {line}",
        Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
    );
}

/// Serves until SIGTERM or SIGINT, then stops cleanly.
pub fn run(options: Options) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let result = runtime.block_on(serve(options));
    // A source's task that is still busy (a demo fleet being generated, a call in flight)
    // does not hold the exit up for long.
    runtime.shutdown_timeout(Duration::from_secs(2));
    result
}

async fn serve(options: Options) -> Result<(), String> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate =
        signal(SignalKind::terminate()).map_err(|e| format!("cannot watch for SIGTERM: {e}"))?;
    let mut interrupt =
        signal(SignalKind::interrupt()).map_err(|e| format!("cannot watch for SIGINT: {e}"))?;
    let listener = tokio::net::TcpListener::bind(options.listen.addr)
        .await
        .map_err(|e| format!("--listen {}: cannot listen: {e}", options.listen.addr))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("--listen {}: {e}", options.listen.addr))?;
    let shared = Arc::new(Shared {
        latest: RwLock::new(None),
        live: metrics::Live::new(options.interval.as_secs_f64()),
        token: options.token.clone(),
        token_metrics: options.token_metrics,
        interval: options.interval,
        started: Instant::now(),
    });
    let (stop_tx, stop) = watch::channel(false);
    let server = tokio::spawn(http::serve(
        listener,
        http::router(shared.clone()),
        stop.clone(),
    ));
    log(&format!(
        "listening on http://{addr}: /metrics ({}), /snapshot ({}), /healthz; collecting every {}",
        if options.token_metrics {
            "token"
        } else {
            "open"
        },
        if options.token.is_some() {
            "token"
        } else {
            "open, loopback only"
        },
        describe(options.interval),
    ));
    tokio::spawn(async move {
        let why = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        log(&format!("{why}: stopping"));
        let _ = stop_tx.send(true);
    });
    Collector::new(options, shared).run(stop).await;
    let _ = server.await;
    log("stopped");
    Ok(())
}

/// `15m`, `1h30m`, `45s`: as `--interval` is written.
fn describe(interval: Duration) -> String {
    let secs = interval.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut text = String::new();
    for (n, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if n > 0 {
            text.push_str(&format!("{n}{unit}"));
        }
    }
    text
}

/// The collecting side: one collection at a time, and what carries from one to the next.
struct Collector {
    options: Options,
    shared: Arc<Shared>,
    previous: Option<Arc<Inventory>>,
    records: BTreeMap<String, metrics::SourceRecord>,
    seq: u64,
}

impl Collector {
    fn new(options: Options, shared: Arc<Shared>) -> Collector {
        Collector {
            options,
            shared,
            previous: None,
            records: BTreeMap::new(),
            seq: 0,
        }
    }

    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut ticks = tokio::time::interval(self.options.interval);
        // A collection longer than the interval delays the next; none is ever run twice to
        // catch up, and none overlaps another.
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stopped(&mut stop) => return,
            }
            self.seq += 1;
            self.shared.live.collecting(true);
            let started = Instant::now();
            let gathered = tokio::select! {
                gathered = self.gather() => gathered,
                _ = stopped(&mut stop) => {
                    log(&format!("collection {} abandoned: stopping", self.seq));
                    return;
                }
            };
            match gathered {
                Ok((gathered, success_at)) => {
                    if !self
                        .publish(gathered, started, success_at, stop.clone())
                        .await
                    {
                        log(&format!("collection {} abandoned: stopping", self.seq));
                        return;
                    }
                }
                Err(error) => {
                    self.shared.live.failed();
                    log(&format!(
                        "collection {}: {error}; still serving {}",
                        self.seq,
                        match self.shared.latest() {
                            Some(latest) => format!("collection {}", latest.seq),
                            None => "nothing".to_owned(),
                        }
                    ));
                }
            }
            self.shared.live.collecting(false);
        }
    }

    /// The sources collected, or the snapshot read; with the time a source's success is
    /// dated (the snapshot's own, or the collection's end when `None`).
    async fn gather(&self) -> Result<(collect::Gathered, Option<DateTime<Utc>>), String> {
        match &self.options.source {
            Source::Collect(plan) => {
                let now = self
                    .options
                    .fixed_now
                    .unwrap_or_else(|| Utc::now().trunc_subsecs(0));
                Ok((
                    collect::gather(plan, self.options.rules.clone(), now).await,
                    None,
                ))
            }
            Source::Snapshot { location, fetch } => {
                let bytes = crate::snapshot::fetch_bytes(location, fetch)
                    .await
                    .map_err(|e| e.to_string())?;
                let rules = self.options.rules.clone();
                let fixed_now = self.options.fixed_now;
                let shown = location.to_string();
                let parsed = tokio::task::spawn_blocking(move || {
                    crate::snapshot::parse(&bytes).map(|snapshot| {
                        let taken_at = snapshot.taken_at;
                        (snapshot.into_inventory(rules), taken_at)
                    })
                })
                .await
                .map_err(|e| format!("{shown}: {e}"))?
                .map_err(|e| format!("{shown}: {e}"))?;
                let (inventory, taken_at) = parsed;
                let gathered = collect::Gathered {
                    inventory,
                    now: fixed_now.unwrap_or(taken_at),
                    took: Default::default(),
                };
                Ok((gathered, Some(taken_at)))
            }
        }
    }

    /// Evaluates and encodes on a blocking thread, then swaps the result in. False when
    /// serve was asked to stop first: nothing is served or kept then.
    async fn publish(
        &mut self,
        gathered: collect::Gathered,
        started: Instant,
        success_at: Option<DateTime<Utc>>,
        stop: watch::Receiver<bool>,
    ) -> bool {
        // With --snapshot the served file already kept its failed sources' data.
        let previous = match self.options.source {
            Source::Collect(_) => self.previous.clone(),
            Source::Snapshot { .. } => None,
        };
        let job = collect::Job {
            seq: self.seq,
            gathered,
            previous,
            records: std::mem::take(&mut self.records),
            rules: self.options.rules.clone(),
            policy: self.options.policy.clone(),
            keep: self.options.keep.clone(),
            started,
            success_at,
            stop,
        };
        // A stop ends it before the snapshot is kept, never while a kept file is written.
        match tokio::task::spawn_blocking(move || job.run()).await {
            Ok(Some(done)) => {
                self.records = done.records;
                self.previous = Some(done.inventory);
                self.shared.publish(done.published);
                self.shared.live.collected();
                log(&done.line);
                true
            }
            Ok(None) => false,
            Err(error) => {
                log(&format!("collection {}: {error}", self.seq));
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_told_from_the_rest() {
        assert!(Listen::resolve("127.0.0.1:9464").unwrap().loopback);
        assert!(Listen::resolve("[::1]:0").unwrap().loopback);
        assert!(!Listen::resolve("0.0.0.0:9464").unwrap().loopback);
        assert!(!Listen::resolve("[::]:9464").unwrap().loopback);
        assert!(Listen::resolve("nonsense").is_err());
    }

    #[test]
    fn intervals_are_described_as_written() {
        assert_eq!(describe(Duration::from_secs(900)), "15m");
        assert_eq!(describe(Duration::from_secs(5400)), "1h30m");
        assert_eq!(describe(Duration::from_secs(45)), "45s");
    }
}
