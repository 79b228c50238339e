//! The fleet as Prometheus metrics, through the official `prometheus-client` crate.
//!
//! Two registries make one scrape: a live one for the process (collections run, requests
//! answered), and one built per collection from the evaluated fleet. Every family counts
//! places, lineages, groups or sources, never instances: no series is per instance, so the
//! number of series grows with accounts x regions and lineages, not with the fleet. A scrape
//! only encodes what the collection already counted.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicU64;

use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use crate::core::inventory::{InstanceIdx, Inventory};
use crate::core::model::{Cloud, SourceState};
use crate::core::policy::{Evaluation, PolicyConfig, Verdict};

/// Every metric's name starts with this.
pub const PREFIX: &str = "fleetscope";

/// The content type of a scrape: OpenMetrics text, which Prometheus reads natively.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Image age buckets, in days: a day, three, a week, two (the default `max_image_age_days`),
/// a month, two, a quarter, half a year, a year.
const AGE_BUCKETS_DAYS: [f64; 9] = [1.0, 3.0, 7.0, 14.0, 30.0, 60.0, 90.0, 180.0, 365.0];

const DAY: f64 = 86_400.0;

type Seconds = Gauge<f64, AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PlaceVerdict {
    cloud: String,
    account: String,
    region: String,
    verdict: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AccountFinding {
    cloud: String,
    account: String,
    finding: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AccountLabels {
    cloud: String,
    account: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LineageLabels {
    cloud: String,
    lineage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CloudLabels {
    cloud: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: String,
    cloud: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: String,
}

/// What serve remembers of a source across collections.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceRecord {
    /// When a collection last ended it without failing.
    pub last_success: Option<DateTime<Utc>>,
    /// Errors met since serve started: a failure, an incompleteness, each warning.
    pub errors: u64,
    /// How long its latest collection took.
    pub duration_secs: Option<f64>,
}

/// What one collection's metrics are built from.
pub struct FleetInput<'a> {
    pub inventory: &'a Inventory,
    pub eval: &'a Evaluation,
    pub policy: &'a PolicyConfig,
    pub sources: &'a BTreeMap<String, SourceRecord>,
    /// When the evaluation was done (wall clock), whatever `now` it judged at.
    pub evaluated_at: DateTime<Utc>,
    /// The whole collection, from its start to its evaluation.
    pub collection_secs: f64,
}

fn seconds(value: f64) -> Seconds {
    let gauge = Seconds::default();
    gauge.set(value);
    gauge
}

fn timestamp(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

/// The registry of one evaluated fleet.
pub fn fleet(input: &FleetInput<'_>) -> Registry {
    let mut registry = Registry::with_prefix(PREFIX);
    let inv = input.inventory;
    let eval = input.eval;

    registry.register_with_unit(
        "last_evaluation_timestamp",
        "When the fleet served was last evaluated (Unix time): a collection ended and its policy was applied",
        Unit::Seconds,
        seconds(timestamp(input.evaluated_at)),
    );
    registry.register_with_unit(
        "snapshot_timestamp",
        "The time the fleet served was judged at: its snapshot's taken_at (Unix time)",
        Unit::Seconds,
        seconds(timestamp(eval.now)),
    );
    registry.register_with_unit(
        "collection_duration",
        "How long the latest collection took, from its start to its evaluation",
        Unit::Seconds,
        seconds(input.collection_secs),
    );

    // Instances by place and verdict, and findings by account: one pass over the instances.
    let mut by_place: HashMap<(Cloud, &str, &str, Verdict), u64> = HashMap::new();
    let mut findings: HashMap<(Cloud, &str), [u64; 3]> = HashMap::new();
    for (idx, instance) in inv.instances().iter().enumerate() {
        let idx = idx as InstanceIdx;
        let image = eval.image_eval_of(inv, idx);
        *by_place
            .entry((
                instance.cloud,
                instance.account.as_str(),
                instance.region.as_str(),
                image.verdict,
            ))
            .or_default() += 1;
        let found = findings
            .entry((instance.cloud, instance.account.as_str()))
            .or_default();
        found[0] += u64::from(!instance.exposure.is_empty());
        found[1] += u64::from(eval.long_lived[idx as usize]);
        found[2] += u64::from(image.untrusted_source);
    }
    let instances = Family::<PlaceVerdict, Gauge>::default();
    for ((cloud, account, region, verdict), n) in by_place {
        instances
            .get_or_create(&PlaceVerdict {
                cloud: cloud.to_string(),
                account: account.to_owned(),
                region: region.to_owned(),
                verdict: verdict.to_string(),
            })
            .set(n as i64);
    }
    registry.register(
        "instances",
        "Instances by cloud, account, region and verdict (flagged, unknown, outdated, stale, current); a series for each combination that has instances",
        instances,
    );
    let trust_checked = !input.policy.trusted_owners.is_empty();
    let finding_family = Family::<AccountFinding, Gauge>::default();
    for ((cloud, account), [exposed, long_lived, untrusted]) in findings {
        let mut names = vec![("exposed", exposed), ("long_lived", long_lived)];
        if trust_checked {
            names.push(("untrusted_source", untrusted));
        }
        for (finding, n) in names {
            finding_family
                .get_or_create(&AccountFinding {
                    cloud: cloud.to_string(),
                    account: account.to_owned(),
                    finding: finding.to_owned(),
                })
                .set(n as i64);
        }
    }
    registry.register(
        "findings",
        "Instances with a finding, by cloud and account: exposed (open to the internet), long_lived (launched more than policy.max_instance_age_days ago), untrusted_source (only when policy.trusted_owners is set)",
        finding_family,
    );

    // Image age of running instances, per cloud: images whose age is known.
    let ages = Family::<CloudLabels, Histogram, fn() -> Histogram>::new_with_constructor(|| {
        Histogram::new(AGE_BUCKETS_DAYS.iter().map(|d| d * DAY))
    });
    for cloud in Cloud::ALL {
        if eval.by_cloud.contains_key(&cloud) {
            let _ = ages.get_or_create(&CloudLabels {
                cloud: cloud.to_string(),
            });
        }
    }
    for (idx, entry) in inv.images().iter().enumerate() {
        let (Some(created), Some(_)) = (entry.image.created, eval.images[idx].age_days) else {
            continue;
        };
        if entry.instances.is_empty() {
            continue;
        }
        let age = (eval.now - created).num_seconds().max(0) as f64;
        let histogram = ages.get_or_create(&CloudLabels {
            cloud: entry.image.cloud.to_string(),
        });
        for _ in &entry.instances {
            histogram.observe(age);
        }
    }
    registry.register_with_unit(
        "image_age",
        "Age of the image each running instance was launched from (evaluation time minus image creation), per cloud; instances whose image age is unknown are not observed",
        Unit::Seconds,
        ages,
    );

    lineages(&mut registry, input);
    groups(&mut registry, input);
    sources(&mut registry, input);
    registry
}

/// Per lineage in use: its instances, those behind the golden image, how far and since when,
/// and the golden image's age.
fn lineages(registry: &mut Registry, input: &FleetInput<'_>) {
    let (inv, eval) = (input.inventory, input.eval);
    let instances = Family::<LineageLabels, Gauge>::default();
    let behind = Family::<LineageLabels, Gauge>::default();
    let versions = Family::<LineageLabels, Gauge>::default();
    let since = Family::<LineageLabels, Seconds>::default();
    let golden_age = Family::<LineageLabels, Seconds>::default();
    for (idx, lineage) in inv.lineages().iter().enumerate() {
        let le = &eval.lineages[idx];
        if le.instances == 0 {
            continue;
        }
        let Some(&first) = lineage.images.first() else {
            continue;
        };
        let labels = LineageLabels {
            cloud: inv.image(first).image.cloud.to_string(),
            lineage: lineage.name.clone(),
        };
        instances
            .get_or_create(&labels)
            .set(i64::from(le.instances));
        behind
            .get_or_create(&labels)
            .set(i64::from(le.lagging_instances));
        versions
            .get_or_create(&labels)
            .set(i64::from(le.max_behind_by));
        if le.lagging_instances > 0
            && let Some(t) = le.lagging_since
        {
            since.get_or_create(&labels).set(timestamp(t));
        }
        if let Some(created) = le.golden.and_then(|g| inv.image(g).image.created) {
            golden_age
                .get_or_create(&labels)
                .set((eval.now - created).num_seconds().max(0) as f64);
        }
    }
    registry.register(
        "lineage_instances",
        "Running instances per lineage (image family)",
        instances,
    );
    registry.register(
        "lineage_instances_behind",
        "Instances of a lineage not on its golden image",
        behind,
    );
    registry.register(
        "lineage_versions_behind",
        "The most newer images any running instance of the lineage is behind the golden image by",
        versions,
    );
    registry.register_with_unit(
        "lineage_behind_since_timestamp",
        "Since when the lineage has had instances behind: the creation time of the oldest image newer than one in use (Unix time); absent when none is behind",
        Unit::Seconds,
        since,
    );
    registry.register_with_unit(
        "lineage_golden_image_age",
        "Age of the lineage's golden image (its newest usable, or the pinned one); absent without a dated golden image",
        Unit::Seconds,
        golden_age,
    );
}

/// Groups (Auto Scaling groups, scale sets, managed instance groups) per account, and those
/// with template drift or version skew, as the Drift view and the reports judge them.
fn groups(registry: &mut Registry, input: &FleetInput<'_>) {
    let (inv, eval) = (input.inventory, input.eval);
    let known = Family::<AccountLabels, Gauge>::default();
    let findings = Family::<AccountFinding, Gauge>::default();
    for (idx, entry) in inv.groups().iter().enumerate() {
        let (cloud, account) = match &entry.group {
            Some(group) => (group.cloud, group.account.clone()),
            None => match entry.members.first() {
                Some(&m) => (inv.instance(m).cloud, inv.instance(m).account.to_string()),
                None => continue,
            },
        };
        let ge = &eval.groups[idx];
        let place = AccountLabels {
            cloud: cloud.to_string(),
            account: account.clone(),
        };
        known.get_or_create(&place).inc();
        for (finding, has) in [("template_drift", ge.drift()), ("skew", ge.skew())] {
            let gauge = findings.get_or_create(&AccountFinding {
                cloud: cloud.to_string(),
                account: account.clone(),
                finding: finding.to_owned(),
            });
            if has {
                gauge.inc();
            }
        }
    }
    registry.register(
        "groups",
        "Groups (Auto Scaling groups, scale sets, managed instance groups) by cloud and account",
        known,
    );
    registry.register(
        "group_findings",
        "Groups with a finding by cloud and account: template_drift (the template launches an image other than the golden one), skew (members run more than one image)",
        findings,
    );
}

/// Per source: whether its latest collection worked, when one last did, how long it took,
/// and the errors met so far.
fn sources(registry: &mut Registry, input: &FleetInput<'_>) {
    let up = Family::<SourceLabels, Gauge>::default();
    let incomplete = Family::<SourceLabels, Gauge>::default();
    let instances = Family::<SourceLabels, Gauge>::default();
    let last_success = Family::<SourceLabels, Seconds>::default();
    let duration = Family::<SourceLabels, Seconds>::default();
    let errors = Family::<SourceLabels, Counter>::default();
    for status in input.inventory.sources() {
        let labels = SourceLabels {
            source: status.name.clone(),
            cloud: status.cloud.to_string(),
        };
        let worked = status.state.ended() && !matches!(status.state, SourceState::Failed { .. });
        up.get_or_create(&labels).set(i64::from(worked));
        incomplete.get_or_create(&labels).set(i64::from(matches!(
            status.state,
            SourceState::Incomplete { .. }
        )));
        instances
            .get_or_create(&labels)
            .set(i64::from(status.instances));
        let record = input.sources.get(&status.name);
        if let Some(t) = record.and_then(|r| r.last_success) {
            last_success.get_or_create(&labels).set(timestamp(t));
        }
        if let Some(secs) = record.and_then(|r| r.duration_secs) {
            duration.get_or_create(&labels).set(secs);
        }
        errors
            .get_or_create(&labels)
            .inc_by(record.map_or(0, |r| r.errors));
    }
    registry.register(
        "source_up",
        "1 when the source's latest collection ended without failing (done, skipped or incomplete), 0 when it failed: its instances are then those of its last good collection",
        up,
    );
    registry.register(
        "source_incomplete",
        "1 when the source's latest collection ended with part of it not listed (a region, a zone)",
        incomplete,
    );
    registry.register(
        "source_instances",
        "Instances served for the source (kept from its last good collection when it failed)",
        instances,
    );
    registry.register_with_unit(
        "source_last_success_timestamp",
        "When a collection of the source last ended without failing (Unix time)",
        Unit::Seconds,
        last_success,
    );
    registry.register_with_unit(
        "source_collection_duration",
        "How long the source's latest collection took",
        Unit::Seconds,
        duration,
    );
    registry.register(
        "source_errors",
        "Errors the source's collections met since serve started: a failure, an incomplete listing, each warning (a region or zone that could not be read)",
        errors,
    );
}

/// The process's own metrics, alive across collections.
pub struct Live {
    registry: Registry,
    collections: Counter,
    failures: Counter,
    in_progress: Gauge,
    requests: Family<RequestLabels, Counter>,
}

impl Live {
    pub fn new(interval_secs: f64) -> Live {
        let mut registry = Registry::with_prefix(PREFIX);
        let collections = Counter::default();
        let failures = Counter::default();
        let in_progress = Gauge::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "build",
            "The fleetscope version serving",
            Info::new(VersionLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
            }),
        );
        registry.register_with_unit(
            "collection_interval",
            "Time from one collection's start to the next (--interval)",
            Unit::Seconds,
            seconds(interval_secs),
        );
        registry.register(
            "collections",
            "Collections finished and served since start",
            collections.clone(),
        );
        registry.register(
            "collection_failures",
            "Collections that gave nothing to serve (with --snapshot: the file or URL could not be read); the previous fleet stays served",
            failures.clone(),
        );
        registry.register(
            "collection_in_progress",
            "1 while a collection runs",
            in_progress.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests answered, by endpoint (metrics, snapshot, healthz, other) and status code",
            requests.clone(),
        );
        Live {
            registry,
            collections,
            failures,
            in_progress,
            requests,
        }
    }

    pub fn collecting(&self, running: bool) {
        self.in_progress.set(i64::from(running));
    }

    pub fn collected(&self) {
        self.collections.inc();
    }

    pub fn failed(&self) {
        self.failures.inc();
    }

    pub fn answered(&self, endpoint: &str, code: u16) {
        self.requests
            .get_or_create(&RequestLabels {
                endpoint: endpoint.to_owned(),
                code: code.to_string(),
            })
            .inc();
    }

    /// One scrape: the process's metrics, then the fleet's when one has been evaluated.
    pub fn encode(&self, fleet: Option<&Registry>) -> Result<String, std::fmt::Error> {
        let mut text = String::with_capacity(16 * 1024);
        encode_registry(&mut text, &self.registry)?;
        if let Some(fleet) = fleet {
            encode_registry(&mut text, fleet)?;
        }
        encode_eof(&mut text)?;
        Ok(text)
    }
}

/// The text of a fleet registry alone, as a scrape would show it (for tests and benches).
pub fn encode(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry)?;
    Ok(text)
}
