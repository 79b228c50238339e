//! One collection of `serve`: the sources gathered (or the snapshot read), a failed source's
//! last good data kept, the fleet evaluated, and everything a request will want computed
//! here, once: the metrics, the snapshot's bytes plain and gzipped. A request never touches
//! the inventory.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch};

use super::keep::Keep;
use super::metrics::{self, FleetInput, SourceRecord};
use crate::clouds::{self, Plan};
use crate::core::event::CollectEvent;
use crate::core::inventory::Inventory;
use crate::core::lineage::LineageRules;
use crate::core::model::{SourceState, SourceStatus};
use crate::core::policy::{self, PolicyConfig};

/// What every request reads: built once per collection, then only shared.
pub struct Published {
    /// The collection's number since start, from 1.
    pub seq: u64,
    /// The time the fleet is judged at: the snapshot's `taken_at`.
    pub taken_at: DateTime<Utc>,
    /// When it was evaluated (wall clock).
    pub evaluated_at: DateTime<Utc>,
    pub instances: usize,
    pub metrics: prometheus_client::registry::Registry,
    /// Exactly what `--save-snapshot` would write.
    pub snapshot: Bytes,
    pub snapshot_gzip: Bytes,
    /// From the snapshot's CRC-32 and length (the gzip trailer): equal bytes, equal tag.
    pub etag: String,
}

/// Sources gathered into a fresh inventory, with how long each took.
pub struct Gathered {
    pub inventory: Inventory,
    pub now: DateTime<Utc>,
    pub took: HashMap<String, f64>,
}

/// Aborts the collection's task when the collection is dropped (at shutdown).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs every source of the plan to its end, as `clouds::gather` does, timing each source
/// from its start to its end.
pub async fn gather(plan: &Plan, rules: LineageRules, now: DateTime<Utc>) -> Gathered {
    let (tx, mut rx) = mpsc::channel(256);
    let mut task = AbortOnDrop(tokio::spawn(clouds::collect(plan.clone(), now, tx)));
    let start = Instant::now();
    let mut inventory = Inventory::new(rules);
    let mut began: HashMap<String, Instant> = HashMap::new();
    let mut took: HashMap<String, f64> = HashMap::new();
    while let Some(event) = rx.recv().await {
        match &event {
            CollectEvent::Started { source, .. } => {
                began.insert(source.clone(), Instant::now());
            }
            CollectEvent::Finished { source }
            | CollectEvent::Incomplete { source, .. }
            | CollectEvent::Failed { source, .. }
            | CollectEvent::Skipped { source, .. } => {
                let from = began.get(source).copied().unwrap_or(start);
                took.insert(source.clone(), from.elapsed().as_secs_f64());
            }
            _ => {}
        }
        inventory.apply(event);
    }
    // Every sender is gone, so the collector has finished.
    let _ = (&mut task.0).await;
    Gathered {
        inventory,
        now,
        took,
    }
}

/// A collection's fleet, with what serve carries from one collection to the next.
pub struct Job {
    pub seq: u64,
    pub gathered: Gathered,
    /// The fleet served so far: a source that fails now keeps its data from there.
    pub previous: Option<Arc<Inventory>>,
    pub records: BTreeMap<String, SourceRecord>,
    pub rules: LineageRules,
    pub policy: PolicyConfig,
    pub keep: Option<Keep>,
    pub started: Instant,
    /// When a source counts as last successful: the collection's end, or with `--snapshot`
    /// the snapshot's own time.
    pub success_at: Option<DateTime<Utc>>,
    /// Turns true when serve is asked to stop: the job gives up before it keeps anything.
    pub stop: watch::Receiver<bool>,
}

/// What a job leaves: the fleet to serve, and what to carry to the next collection.
pub struct Done {
    pub published: Published,
    pub inventory: Arc<Inventory>,
    pub records: BTreeMap<String, SourceRecord>,
    /// The collection's one log line.
    pub line: String,
}

impl Job {
    /// Merges, evaluates, encodes and keeps: CPU work for a blocking thread. `None` when serve
    /// was asked to stop before the snapshot was encoded: nothing is then kept or served.
    pub fn run(self) -> Option<Done> {
        let Job {
            seq,
            gathered,
            previous,
            mut records,
            rules,
            policy,
            keep,
            started,
            success_at,
            stop,
        } = self;
        let Gathered {
            inventory: fresh,
            now,
            took,
        } = gathered;
        let ended_at = Utc::now();
        for status in fresh.sources() {
            let record = records.entry(status.name.clone()).or_default();
            record.errors += status.warnings.len() as u64;
            match &status.state {
                SourceState::Failed { .. } => record.errors += 1,
                SourceState::Incomplete { .. } => {
                    record.errors += 1;
                    record.last_success = Some(success_at.unwrap_or(ended_at));
                }
                state if state.ended() => {
                    record.last_success = Some(success_at.unwrap_or(ended_at))
                }
                _ => {}
            }
            record.duration_secs = took.get(&status.name).copied();
        }
        let failed: Vec<(String, String)> = fresh
            .sources()
            .iter()
            .filter_map(|s| match &s.state {
                SourceState::Failed { error } => Some((s.name.clone(), error.clone())),
                _ => None,
            })
            .collect();
        let incomplete = fresh
            .sources()
            .iter()
            .filter(|s| matches!(s.state, SourceState::Incomplete { .. }))
            .count();
        let (inventory, kept) = keep_last_good(fresh, previous.as_deref(), &records, rules);
        let eval = policy::evaluate(&inventory, &policy, now);
        let collection_secs = started.elapsed().as_secs_f64();
        let evaluated_at = Utc::now();
        let registry = metrics::fleet(&FleetInput {
            inventory: &inventory,
            eval: &eval,
            policy: &policy,
            sources: &records,
            evaluated_at,
            collection_secs,
        });
        drop(eval);
        // Writing to memory fails only when serve is stopping.
        let mut snapshot = Vec::new();
        crate::snapshot::write_json(
            &mut Stoppable::new(&mut snapshot, &stop),
            &crate::snapshot::snapshot_of(&inventory, now),
        )
        .ok()?;
        let gzip = gzip(&snapshot, &stop)?;
        let etag = etag(&gzip, snapshot.len());
        let kept_file = keep.as_ref().map(|keep| keep.save(&snapshot, ended_at));

        let mut line = format!(
            "collection {seq}: {} sources, {} instances, {:.2} s (evaluated after {:.2} s)",
            inventory.sources().len(),
            inventory.instances().len(),
            started.elapsed().as_secs_f64(),
            collection_secs
        );
        if incomplete > 0 {
            line.push_str(&format!("; {incomplete} incomplete"));
        }
        if !failed.is_empty() {
            let named: Vec<String> = failed
                .iter()
                .map(|(name, error)| match kept.get(name) {
                    Some(n) => format!(
                        "{name} ({error}; its {n} instances from the last good collection kept)"
                    ),
                    None => format!("{name} ({error})"),
                })
                .collect();
            line.push_str(&format!("; {} failed: {}", failed.len(), named.join("; ")));
        }
        match kept_file {
            Some(Ok(path)) => line.push_str(&format!("; kept {}", path.display())),
            Some(Err(error)) => line.push_str(&format!("; not kept: {error}")),
            None => {}
        }
        let published = Published {
            seq,
            taken_at: now,
            evaluated_at,
            instances: inventory.instances().len(),
            metrics: registry,
            snapshot: Bytes::from(snapshot),
            snapshot_gzip: Bytes::from(gzip),
            etag,
        };
        Some(Done {
            published,
            inventory: Arc::new(inventory),
            records,
            line,
        })
    }
}

/// How often a long encoding looks whether serve is stopping.
const STOP_CHECK_BYTES: usize = 1 << 20;

/// Memory to write into that refuses more once serve is asked to stop, so a stop never waits
/// for a whole snapshot to be encoded.
struct Stoppable<'a> {
    out: &'a mut Vec<u8>,
    stop: &'a watch::Receiver<bool>,
    next_check: usize,
}

impl<'a> Stoppable<'a> {
    fn new(out: &'a mut Vec<u8>, stop: &'a watch::Receiver<bool>) -> Stoppable<'a> {
        Stoppable {
            out,
            stop,
            next_check: 0,
        }
    }
}

impl Write for Stoppable<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.out.len() >= self.next_check {
            if *self.stop.borrow() {
                return Err(std::io::Error::other("serve is stopping"));
            }
            self.next_check = self.out.len() + STOP_CHECK_BYTES;
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The bytes gzipped, or `None` once serve is asked to stop.
fn gzip(bytes: &[u8], stop: &watch::Receiver<bool>) -> Option<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 8),
        flate2::Compression::new(GZIP_LEVEL),
    );
    for chunk in bytes.chunks(STOP_CHECK_BYTES) {
        if *stop.borrow() {
            return None;
        }
        encoder.write_all(chunk).ok()?;
    }
    encoder.finish().ok()
}

/// zlib's default. At 100,000 instances it takes 0.64 s once per collection against level
/// 1's 0.17 s, and every operator then downloads 3.9 MB instead of 7.0 MB (the README's
/// Performance).
const GZIP_LEVEL: u32 = 6;

/// A strong validator from the gzip trailer: the CRC-32 of the snapshot and its length.
fn etag(gzip: &[u8], len: usize) -> String {
    let crc = gzip
        .len()
        .checked_sub(8)
        .and_then(|at| gzip.get(at..at + 4))
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    format!("\"{crc:08x}-{len:x}\"")
}

/// The fleet to serve: `fresh`, except that a source which failed in it and held instances
/// in `previous` keeps those instances (with their images and groups) in place of whatever
/// part it sent before failing. Its status stays failed, counts what is kept, and says so.
/// Returns the instances kept per source.
pub fn keep_last_good(
    fresh: Inventory,
    previous: Option<&Inventory>,
    records: &BTreeMap<String, SourceRecord>,
    rules: LineageRules,
) -> (Inventory, BTreeMap<String, u32>) {
    let Some(previous) = previous else {
        return (fresh, BTreeMap::new());
    };
    let failed: BTreeSet<&str> = fresh
        .sources()
        .iter()
        .filter(|s| matches!(s.state, SourceState::Failed { .. }))
        .map(|s| s.name.as_str())
        .filter(|name| previous.instances().iter().any(|i| i.source == *name))
        .collect();
    if failed.is_empty() {
        return (fresh, BTreeMap::new());
    }
    let mut merged = Inventory::new(rules);
    for entry in fresh.images().iter().filter(|e| e.described) {
        merged.upsert_image(entry.image.clone());
    }
    let mut described_groups: BTreeSet<String> = BTreeSet::new();
    for group in fresh.groups().iter().filter_map(|g| g.group.clone()) {
        described_groups.insert(group.key.clone());
        merged.upsert_group(group);
    }
    // What the failed sources held last time, with the images and groups it names.
    let old: Vec<u32> = (0..previous.instances().len() as u32)
        .filter(|&i| failed.contains(previous.instance(i).source.as_str()))
        .collect();
    for &i in &old {
        let image = previous.image(previous.image_of(i));
        if image.described && merged.image_by_key(&image.image.key).is_none() {
            merged.upsert_image(image.image.clone());
        }
        if let Some(group) = previous
            .group_of(i)
            .and_then(|g| previous.group(g).group.as_ref())
            && described_groups.insert(group.key.clone())
        {
            merged.upsert_group(group.clone());
        }
    }
    for instance in fresh
        .instances()
        .iter()
        .filter(|i| !failed.contains(i.source.as_str()))
    {
        merged.upsert_instance(instance.clone());
    }
    let mut kept: BTreeMap<String, u32> = BTreeMap::new();
    for &i in &old {
        let instance = previous.instance(i);
        *kept.entry(instance.source.to_string()).or_default() += 1;
        merged.upsert_instance(instance.clone());
    }
    for status in fresh.sources() {
        let mut status: SourceStatus = status.clone();
        if let Some(&count) = kept.get(&status.name) {
            let pages = previous
                .sources()
                .iter()
                .find(|s| s.name == status.name)
                .map_or(0, |s| s.pages);
            status.instances = count;
            status.pages = pages;
            let when = records
                .get(&status.name)
                .and_then(|r| r.last_success)
                .map_or_else(
                    || "an earlier collection".to_owned(),
                    |t| format!("the collection of {}", t.format("%Y-%m-%d %H:%M:%S UTC")),
                );
            status.warnings.push(format!(
                "its {count} instances are those of its last good collection ({when})"
            ));
        }
        merged.restore_source(status);
    }
    (merged, kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::event::Page;
    use crate::core::model::{Cloud, Image, Instance, Tags};

    fn instance(id: &str, source: &str, image: &str) -> Instance {
        Instance {
            id: id.into(),
            cloud: Cloud::Gcp,
            source: source.into(),
            account: source.trim_start_matches("gcp:").into(),
            region: "europe-west1".into(),
            zone: "europe-west1-b".into(),
            name: id.into(),
            state: "RUNNING".into(),
            instance_type: "e2-small".into(),
            launched: "2026-10-01T00:00:00Z".parse().unwrap(),
            image: image.into(),
            group: None,
            tags: Tags::new(),
            exposure: Vec::new(),
            addresses: Default::default(),
        }
    }

    fn image(key: &str) -> Image {
        Image {
            key: key.into(),
            cloud: Cloud::Gcp,
            name: key.into(),
            created: Some("2026-10-01T00:00:00Z".parse().unwrap()),
            owner: "images".into(),
            owner_alias: None,
            family: Some("web".into()),
            deprecation: None,
            tags: Tags::new(),
            readable: true,
            unreadable_reason: None,
        }
    }

    /// A collection of two sources: `a` with `a_ids` on image `ia`, `b` with `b_ids` on
    /// `ib`, or `b` failing after sending `b_ids`.
    fn collection(a_ids: &[&str], b_ids: &[&str], b_fails: bool) -> Inventory {
        let mut inventory = Inventory::new(LineageRules::default());
        for (source, ids, key) in [("gcp:a", a_ids, "ia"), ("gcp:b", b_ids, "ib")] {
            inventory.apply(CollectEvent::Started {
                source: source.into(),
                cloud: Cloud::Gcp,
                expected_pages: None,
            });
            inventory.apply(CollectEvent::Page(Box::new(Page {
                source: source.into(),
                instances: ids.iter().map(|id| instance(id, source, key)).collect(),
                images: vec![image(key)],
                groups: Vec::new(),
            })));
        }
        inventory.apply(CollectEvent::Finished {
            source: "gcp:a".into(),
        });
        inventory.apply(if b_fails {
            CollectEvent::Failed {
                source: "gcp:b".into(),
                error: "HTTP 503".into(),
            }
        } else {
            CollectEvent::Finished {
                source: "gcp:b".into(),
            }
        });
        inventory
    }

    fn ids(inventory: &Inventory) -> Vec<String> {
        let mut ids: Vec<String> = inventory
            .instances()
            .iter()
            .map(|i| i.id.to_string())
            .collect();
        ids.sort();
        ids
    }

    #[test]
    fn a_failed_source_keeps_its_last_good_instances_and_says_so() {
        let first = collection(&["a1"], &["b1", "b2"], false);
        // b fails after one partial page naming an instance it never finished listing.
        let second = collection(&["a1", "a2"], &["b9"], true);
        let (merged, kept) = keep_last_good(
            second,
            Some(&first),
            &BTreeMap::new(),
            LineageRules::default(),
        );
        assert_eq!(ids(&merged), ["a1", "a2", "b1", "b2"]);
        assert_eq!(kept, BTreeMap::from([("gcp:b".to_owned(), 2)]));
        let b = merged.sources().iter().find(|s| s.name == "gcp:b").unwrap();
        assert!(matches!(b.state, SourceState::Failed { .. }));
        assert_eq!(b.instances, 2);
        assert!(
            b.warnings[0].contains("last good collection"),
            "{:?}",
            b.warnings
        );
        // Kept instances run a described image, so their verdicts are those of last time.
        let b1 = merged.instance_by_id("b1").unwrap();
        assert!(merged.image(merged.image_of(b1)).described);
        // The next collection that works replaces the kept data.
        let third = collection(&["a1"], &["b3"], false);
        let (merged, kept) = keep_last_good(
            third,
            Some(&merged),
            &BTreeMap::new(),
            LineageRules::default(),
        );
        assert_eq!(ids(&merged), ["a1", "b3"]);
        assert!(kept.is_empty());
    }

    #[test]
    fn a_source_that_never_worked_keeps_what_it_sent() {
        let second = collection(&["a1"], &["b9"], true);
        let (merged, kept) =
            keep_last_good(second, None, &BTreeMap::new(), LineageRules::default());
        assert_eq!(ids(&merged), ["a1", "b9"]);
        assert!(kept.is_empty());
    }

    #[test]
    fn the_etag_follows_the_bytes() {
        let (_stop_tx, stop) = watch::channel(false);
        let zip = |bytes: &[u8]| gzip(bytes, &stop).unwrap();
        let one = zip(b"{\"a\": 1}\n");
        let two = zip(b"{\"a\": 2}\n");
        assert_eq!(etag(&one, 9), etag(&zip(b"{\"a\": 1}\n"), 9));
        assert_ne!(etag(&one, 9), etag(&two, 9));
    }

    #[test]
    fn encoding_gives_up_once_serve_stops() {
        let (stop_tx, stop) = watch::channel(false);
        let big = vec![b' '; 3 * STOP_CHECK_BYTES];
        let mut out = Vec::new();
        assert!(Stoppable::new(&mut out, &stop).write_all(&big).is_ok());
        stop_tx.send(true).unwrap();
        let mut out = Vec::new();
        let mut writer = Stoppable::new(&mut out, &stop);
        assert!(writer.write_all(&big).is_err());
        assert!(gzip(&big, &stop).is_none());
    }
}
