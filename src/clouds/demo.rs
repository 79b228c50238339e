//! A synthetic multi-cloud estate, deterministic from a seed, with timestamps relative to `now`
//! so the demo never ages. It streams through the same events as a real source.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use tokio::sync::mpsc;

use std::collections::HashMap;

use futures::FutureExt;
use futures::future::BoxFuture;

use crate::core::event::{CollectEvent, Page};
use crate::core::model::{Addresses, Cloud, Deprecation, Group, GroupKind, Image, Instance, Tags};
use crate::queue::journal::Replacement;
use crate::queue::rollout::{
    Executor, Executors, Finish, GroupCapacity, Inspection, Steps, TemplateDone, TemplateStep,
};
use crate::queue::{QueueEntry, Strategy};

pub const DEFAULT_SIZE: usize = 1_500;
const PAGE_SIZE: usize = 500;

/// A product line whose images the demo builds.
struct LineageSpec {
    cloud: Cloud,
    name: &'static str,
    versions: u32,
    cadence_days: i64,
    newest_age_days: i64,
    /// Share of the fleet, relative to the others of its cloud.
    weight: u32,
    shape: Shape,
    quirk: Quirk,
}

#[derive(Clone, Copy, PartialEq)]
enum Shape {
    /// Runs in autoscaling groups.
    Service,
    /// Hand-launched, long-lived servers.
    Pet,
}

#[derive(Clone, Copy, PartialEq)]
enum Quirk {
    None,
    /// The newest build is tagged vulnerable by the scanner.
    NewestFlagged,
    /// Versions older than the two newest are deprecated by the cloud.
    OldDeprecated,
    /// The oldest version was deleted, and instances still run it.
    OldestDeleted,
    /// One group's members run two images.
    GroupSkew,
    /// One group's template still points at an older image.
    TemplateDrift,
}

/// `releases` is (versions, days between builds, age in days of the newest build).
const fn spec(
    cloud: Cloud,
    name: &'static str,
    (versions, cadence_days, newest_age_days): (u32, i64, i64),
    weight: u32,
    shape: Shape,
    quirk: Quirk,
) -> LineageSpec {
    LineageSpec {
        cloud,
        name,
        versions,
        cadence_days,
        newest_age_days,
        weight,
        shape,
        quirk,
    }
}

use Cloud::{Aws, Azure, Gcp};
use Quirk as Q;
use Shape::{Pet, Service};

const CATALOG: &[LineageSpec] = &[
    spec(Aws, "web", (12, 14, 2), 30, Service, Q::None),
    spec(Aws, "api", (10, 21, 5), 25, Service, Q::GroupSkew),
    spec(Aws, "worker", (8, 30, 9), 20, Service, Q::OldestDeleted),
    spec(Aws, "batch", (6, 45, 25), 10, Service, Q::None),
    spec(Aws, "ingest", (7, 14, 1), 12, Service, Q::NewestFlagged),
    spec(Aws, "cache", (5, 60, 40), 8, Service, Q::None),
    spec(Aws, "bastion", (4, 90, 100), 2, Pet, Q::None),
    spec(Aws, "search", (9, 20, 3), 10, Service, Q::TemplateDrift),
    spec(Aws, "legacy-db", (3, 120, 200), 3, Pet, Q::OldDeprecated),
    spec(Azure, "frontend", (11, 14, 4), 30, Service, Q::None),
    spec(Azure, "payments", (8, 21, 6), 20, Service, Q::TemplateDrift),
    spec(
        Azure,
        "reporting",
        (6, 30, 18),
        12,
        Service,
        Q::OldDeprecated,
    ),
    spec(Azure, "jumpbox", (3, 120, 150), 3, Pet, Q::None),
    spec(Azure, "queue", (7, 28, 12), 15, Service, Q::NewestFlagged),
    spec(Azure, "ml-train", (5, 60, 33), 8, Service, Q::OldestDeleted),
    spec(Azure, "ubuntu-jammy", (4, 30, 10), 12, Pet, Q::None),
    spec(Gcp, "gateway", (12, 14, 3), 25, Service, Q::None),
    spec(Gcp, "etl", (8, 30, 8), 20, Service, Q::OldDeprecated),
    spec(Gcp, "render", (6, 21, 5), 15, Service, Q::TemplateDrift),
    spec(Gcp, "analytics", (5, 45, 20), 12, Service, Q::GroupSkew),
    spec(Gcp, "proxy", (9, 14, 1), 10, Service, Q::NewestFlagged),
    spec(Gcp, "ci-runner", (10, 7, 2), 10, Service, Q::None),
    spec(Gcp, "vpn", (3, 180, 120), 3, Pet, Q::OldestDeleted),
    spec(Gcp, "monitoring", (4, 60, 16), 5, Pet, Q::None),
];

/// An account, subscription or project, collected as one source.
struct AccountSpec {
    cloud: Cloud,
    source: &'static str,
    account: &'static str,
    regions: &'static [&'static str],
    /// Share of its cloud's instances.
    weight: u32,
}

const ACCOUNTS: &[AccountSpec] = &[
    AccountSpec {
        cloud: Aws,
        source: "aws:prod",
        account: "111111111111",
        regions: &["us-east-1", "eu-west-1", "ap-southeast-2"],
        weight: 6,
    },
    AccountSpec {
        cloud: Aws,
        source: "aws:staging",
        account: "222222222222",
        regions: &["us-east-1", "eu-west-1"],
        weight: 3,
    },
    AccountSpec {
        cloud: Aws,
        source: "aws:data",
        account: "333333333333",
        regions: &["us-west-2"],
        weight: 2,
    },
    AccountSpec {
        cloud: Azure,
        source: "azure:prod",
        account: "6f1c2a7e-0b1d-4c55-9a1e-7d2f3b9c0a11",
        regions: &["westeurope", "eastus"],
        weight: 3,
    },
    AccountSpec {
        cloud: Azure,
        source: "azure:shared",
        account: "9a0e4b2c-5d3f-4e71-8c6a-1b2d3e4f5a66",
        regions: &["northeurope"],
        weight: 1,
    },
    AccountSpec {
        cloud: Gcp,
        source: "gcp:acme-prod",
        account: "acme-prod",
        regions: &["europe-west1", "us-central1"],
        weight: 3,
    },
    AccountSpec {
        cloud: Gcp,
        source: "gcp:acme-batch",
        account: "acme-batch",
        regions: &["us-east4"],
        weight: 1,
    },
];

/// Share of the fleet per cloud, in percent.
fn cloud_share(cloud: Cloud) -> u64 {
    match cloud {
        Aws => 50,
        Azure => 25,
        Gcp => 25,
    }
}

const AWS_IMAGE_OWNER: &str = "999900001111";
const AZURE_GALLERY: &str = "/subscriptions/9a0e4b2c-5d3f-4e71-8c6a-1b2d3e4f5a66/resourceGroups/rg-images/providers/Microsoft.Compute/galleries/acme";
const GCP_IMAGE_PROJECT: &str = "acme-images";

/// splitmix64: small, fast, and the same on every platform.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Rng {
        Rng(mix(seed ^ mix(stream)))
    }

    fn next(&mut self) -> u64 {
        self.0 = mix(self.0);
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    fn pick_weighted<'a, T>(&mut self, items: &'a [(T, u32)]) -> &'a T {
        let total: u64 = items.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut roll = self.below(total);
        for (item, weight) in items {
            if roll < u64::from(*weight) {
                return item;
            }
            roll -= u64::from(*weight);
        }
        &items[items.len() - 1].0
    }
}

/// One built version of a lineage.
struct Version {
    image: Image,
    created: DateTime<Utc>,
}

struct LineageBuild {
    spec: &'static LineageSpec,
    /// Oldest first.
    versions: Vec<Version>,
    /// Index of the version the policy will call golden.
    golden: usize,
}

/// The whole synthetic estate's fixed parts: images and groups. Instances are made page by page.
pub struct DemoFleet {
    seed: u64,
    size: usize,
    now: DateTime<Utc>,
    lineages: Vec<LineageBuild>,
    /// Instances a demo rollout replaced: they come back under their replacement's id, on
    /// their lineage's golden image, launched when they were replaced.
    replaced: HashMap<String, Replacement>,
    /// Groups (`source/name`) a demo template step pointed at their lineage's golden image.
    pointed: std::collections::HashSet<String>,
}

impl DemoFleet {
    pub fn new(seed: u64, size: usize, now: DateTime<Utc>) -> DemoFleet {
        let lineages = CATALOG
            .iter()
            .map(|spec| build_lineage(spec, now))
            .collect();
        DemoFleet {
            seed,
            size,
            now,
            lineages,
            replaced: HashMap::new(),
            pointed: std::collections::HashSet::new(),
        }
    }

    /// The fleet as the demo's own rollouts left it, from its journal: replaced instances and
    /// the groups its template steps pointed at the golden image.
    pub fn as_journaled(self, records: &[crate::queue::journal::Record]) -> DemoFleet {
        let pointed = crate::queue::journal::pointed_groups(records);
        DemoFleet {
            pointed,
            ..self.with_replacements(crate::queue::journal::replacements(records))
        }
    }

    /// The fleet as the demo's own rollouts left it (from the demo's journal).
    pub fn with_replacements(mut self, replaced: HashMap<String, Replacement>) -> DemoFleet {
        self.replaced = replaced;
        self
    }

    /// The instance as a demo rollout left it: replaced ones run their lineage's golden image.
    fn as_left(&self, mut instance: Instance) -> Instance {
        let Some(replacement) = self.replaced.get(instance.id.as_str()) else {
            return instance;
        };
        let golden = self.lineages.iter().find_map(|l| {
            l.versions
                .iter()
                .any(|v| v.image.key == instance.image)
                .then(|| l.versions[l.golden].image.key.clone())
        });
        if let Some(golden) = golden {
            instance.image = golden.into();
        }
        instance.id = match &replacement.new_instance {
            Some(new) => new.into(),
            None => compact_str::format_compact!("{}-r", instance.id),
        };
        instance.launched = replacement.at.min(self.now);
        instance
    }

    pub fn source_names() -> impl Iterator<Item = (&'static str, Cloud)> {
        ACCOUNTS.iter().map(|a| (a.source, a.cloud))
    }

    /// How many instances each account gets, adding up to `size` exactly.
    fn account_sizes(&self) -> Vec<usize> {
        let mut sizes = Vec::with_capacity(ACCOUNTS.len());
        for cloud in Cloud::ALL {
            let cloud_total = if cloud == Gcp {
                // The remainder, so rounding never loses an instance.
                self.size - sizes.iter().sum::<usize>()
            } else {
                (self.size as u64 * cloud_share(cloud) / 100) as usize
            };
            let accounts: Vec<&AccountSpec> =
                ACCOUNTS.iter().filter(|a| a.cloud == cloud).collect();
            let weights: u64 = accounts.iter().map(|a| u64::from(a.weight)).sum();
            let mut given = 0;
            for (i, account) in accounts.iter().enumerate() {
                let n = if i + 1 == accounts.len() {
                    cloud_total - given
                } else {
                    (cloud_total as u64 * u64::from(account.weight) / weights) as usize
                };
                given += n;
                sizes.push(n);
            }
        }
        sizes
    }

    /// Every page of one source, in order.
    pub fn pages(&self, source_index: usize) -> impl Iterator<Item = Page> + '_ {
        let account = &ACCOUNTS[source_index];
        let count = self.account_sizes()[source_index];
        let pages = count.div_ceil(PAGE_SIZE).max(1);
        (0..pages).map(move |page| {
            let start = page * PAGE_SIZE;
            let end = (start + PAGE_SIZE).min(count);
            let mut out = Page {
                source: account.source.to_owned(),
                instances: (start..end)
                    .map(|n| self.as_left(self.instance(source_index, account, n)))
                    .collect(),
                ..Page::default()
            };
            if page == 0 {
                out.images = self.images(account.cloud);
                out.groups = self.groups(account);
            }
            out
        })
    }

    /// One source's whole collection as events: started, its pages, finished.
    pub fn source_events(&self, source_index: usize) -> impl Iterator<Item = CollectEvent> + '_ {
        let account = &ACCOUNTS[source_index];
        let started = CollectEvent::Started {
            source: account.source.to_owned(),
            cloud: account.cloud,
            expected_pages: Some(self.expected_pages(source_index)),
        };
        let finished = CollectEvent::Finished {
            source: account.source.to_owned(),
        };
        std::iter::once(started)
            .chain(
                self.pages(source_index)
                    .map(|page| CollectEvent::Page(Box::new(page))),
            )
            .chain(std::iter::once(finished))
    }

    /// Every source's events, one source after another: the demo collected without waiting.
    pub fn events(&self) -> impl Iterator<Item = CollectEvent> + '_ {
        (0..ACCOUNTS.len()).flat_map(|source| self.source_events(source))
    }

    pub fn expected_pages(&self, source_index: usize) -> u32 {
        self.account_sizes()[source_index]
            .div_ceil(PAGE_SIZE)
            .max(1) as u32
    }

    fn images(&self, cloud: Cloud) -> Vec<Image> {
        self.lineages
            .iter()
            .filter(|l| l.spec.cloud == cloud)
            .flat_map(|l| l.versions.iter().map(|v| v.image.clone()))
            .collect()
    }

    fn service_lineages(&self, cloud: Cloud) -> impl Iterator<Item = (usize, &LineageBuild)> {
        self.lineages
            .iter()
            .enumerate()
            .filter(move |(_, l)| l.spec.cloud == cloud && l.spec.shape == Service)
    }

    /// The groups (`source/name`) whose template launches an older image than their lineage's
    /// golden one, as this fleet has them (its template steps counted).
    fn drifted_groups(&self) -> std::collections::HashSet<String> {
        let mut drifted = std::collections::HashSet::new();
        for account in ACCOUNTS {
            for (_, lineage) in self.service_lineages(account.cloud) {
                if lineage.spec.quirk != Q::TemplateDrift {
                    continue;
                }
                for region in account.regions {
                    let name = format!(
                        "{}/{}",
                        account.source,
                        group_name(account, region, lineage.spec.name)
                    );
                    if !self.pointed.contains(&name) {
                        drifted.insert(name);
                    }
                }
            }
        }
        drifted
    }

    fn groups(&self, account: &AccountSpec) -> Vec<Group> {
        let mut groups = Vec::new();
        for (_, lineage) in self.service_lineages(account.cloud) {
            for region in account.regions {
                let name = group_name(account, region, lineage.spec.name);
                let pointed = self.pointed.contains(&format!("{}/{name}", account.source));
                let template_version = if lineage.spec.quirk == Q::TemplateDrift && !pointed {
                    lineage.golden.saturating_sub(2)
                } else {
                    lineage.golden
                };
                let key = group_key(account, region, lineage.spec.name);
                let image_key = lineage.versions[template_version].image.key.clone();
                groups.push(Group {
                    name,
                    key,
                    cloud: account.cloud,
                    kind: match account.cloud {
                        Aws => GroupKind::Asg,
                        Azure => GroupKind::Vmss,
                        Gcp => GroupKind::Mig,
                    },
                    account: account.account.to_owned(),
                    region: (*region).to_owned(),
                    template: Some(match account.cloud {
                        Aws => format!(
                            "lt-{:017x} v{}",
                            mix(hash(&image_key)) >> 4,
                            template_version + 1
                        ),
                        Azure => "scale set model".to_owned(),
                        Gcp => format!("{}-template-v{}", lineage.spec.name, template_version + 1),
                    }),
                    template_image: Some(image_key),
                });
            }
        }
        groups
    }

    fn instance(&self, source_index: usize, account: &AccountSpec, n: usize) -> Instance {
        let mut rng = Rng::new(self.seed, ((source_index as u64) << 40) | n as u64);
        let candidates: Vec<(usize, u32)> = self
            .lineages
            .iter()
            .enumerate()
            .filter(|(_, l)| l.spec.cloud == account.cloud)
            .map(|(i, l)| (i, l.spec.weight))
            .collect();
        let lineage = &self.lineages[*rng.pick_weighted(&candidates)];
        let region = account.regions[rng.below(account.regions.len() as u64) as usize];
        let in_group = lineage.spec.shape == Service && rng.below(100) < 65;
        let newest = lineage.versions.len() - 1;
        let version = if in_group {
            let template = if lineage.spec.quirk == Q::TemplateDrift {
                lineage.golden.saturating_sub(2)
            } else {
                lineage.golden
            };
            if lineage.spec.quirk == Q::GroupSkew && rng.below(2) == 0 {
                template.saturating_sub(1)
            } else {
                template
            }
        } else {
            match rng.below(100) {
                0..55 => lineage.golden,
                55..75 => lineage.golden.saturating_sub(1),
                75..85 => lineage.golden.saturating_sub(2),
                // Servers nobody rebuilt after their image was deleted.
                85..95 if lineage.spec.quirk == Q::OldestDeleted => 0,
                85..95 => rng.below(lineage.versions.len() as u64) as usize,
                _ => newest,
            }
        };
        let version = &lineage.versions[version];
        // Once the id's randomness; still drawn so every later draw, and the demo, stay as they were.
        rng.next();
        let env = if account.source.contains("staging") {
            "stg"
        } else {
            "prd"
        };
        let name = format!("{}-{env}-{:04}", lineage.spec.name, n % 10_000);
        // Group members are recycled often; pets live for months.
        let uptime_days = if in_group {
            rng.below(12) as i64
        } else if lineage.spec.shape == Pet {
            40 + rng.below(300) as i64
        } else {
            rng.below(60) as i64
        };
        let launched =
            (self.now - Duration::days(uptime_days) - Duration::seconds(rng.below(86_400) as i64))
                .max(version.created + Duration::hours(1))
                .min(self.now);
        let group = in_group.then(|| group_key(account, region, lineage.spec.name));
        let zone_letter = (b'a' + rng.below(3) as u8) as char;
        // A bijection of (source, number): every demo instance has its own id at any size.
        let key = ((source_index as u64) << 40) | n as u64;
        let unique = mix(mix(key) ^ self.seed);
        let (id, zone, instance_type) = match account.cloud {
            Aws => (
                format!("i-0{unique:016x}"),
                format!("{region}{zone_letter}"),
                ["m6i.large", "c7g.xlarge", "t3.medium", "r6i.2xlarge"][rng.below(4) as usize],
            ),
            Azure => (
                match &group {
                    Some(_) => format!(
                        "/subscriptions/{}/resourceGroups/rg-{}/providers/Microsoft.Compute/virtualMachineScaleSets/{}/virtualMachines/{}",
                        account.account,
                        lineage.spec.name,
                        group_name(account, region, lineage.spec.name),
                        n
                    ),
                    None => format!(
                        "/subscriptions/{}/resourceGroups/rg-{}/providers/Microsoft.Compute/virtualMachines/{name}-{:x}",
                        account.account, lineage.spec.name, n
                    ),
                },
                format!("{}", 1 + rng.below(3)),
                ["Standard_D4s_v5", "Standard_B2ms", "Standard_E8s_v5"][rng.below(3) as usize],
            ),
            Gcp => (
                // 19 digits, as GCP's own ids mostly are.
                (1_000_000_000_000_000_000 + scramble60(key ^ self.seed)).to_string(),
                format!("{region}-{zone_letter}"),
                ["e2-standard-4", "n2-standard-8", "c3-highcpu-4"][rng.below(3) as usize],
            ),
        };
        let mut tags = Tags::new();
        tags.insert("env", env);
        tags.insert("service", lineage.spec.name);
        let exposure = if lineage.spec.shape == Pet && account.cloud == Aws && rng.below(4) == 0 {
            vec!["sg-0a1b2c3d admits 22/tcp from 0.0.0.0/0".to_owned()]
        } else {
            Vec::new()
        };
        let addresses = addresses(
            source_index,
            account,
            n,
            (&name, region, &zone),
            lineage.spec.shape == Pet,
        );
        Instance {
            id: id.into(),
            cloud: account.cloud,
            source: account.source.into(),
            account: account.account.into(),
            region: region.into(),
            zone: zone.into(),
            name: name.into(),
            state: if rng.below(100) < 4 {
                "stopped"
            } else {
                "running"
            }
            .into(),
            instance_type: instance_type.into(),
            launched,
            image: version.image.key.as_str().into(),
            group: group.map(Into::into),
            tags,
            exposure,
            addresses,
        }
    }
}

/// Addresses as each cloud shapes them. The private address follows from the source and the
/// instance's number, so no two demo instances share one; hand-launched servers also get a
/// public address, from the documentation ranges (RFC 5737) so the demo names nobody's host.
fn addresses(
    source_index: usize,
    account: &AccountSpec,
    n: usize,
    (name, region, zone): (&str, &str, &str),
    public: bool,
) -> Addresses {
    let private = format!(
        "10.{}.{}.{}",
        (source_index * 16 + (n >> 16) % 16) % 256,
        (n >> 8) & 255,
        n & 255
    );
    let public_ip = public.then(|| {
        let range = ["192.0.2", "198.51.100", "203.0.113"][n % 3];
        format!("{range}.{}", 1 + (n / 3) % 254)
    });
    let dashed = private.replace('.', "-");
    let mut dns_names = match account.cloud {
        Aws if region == "us-east-1" => vec![format!("ip-{dashed}.ec2.internal")],
        Aws => vec![format!("ip-{dashed}.{region}.compute.internal")],
        Azure => Vec::new(),
        Gcp => vec![format!("{name}.{zone}.c.{}.internal", account.account)],
    };
    if let Some(ip) = &public_ip {
        dns_names.push(match account.cloud {
            Aws => format!("ec2-{}.compute-1.amazonaws.com", ip.replace('.', "-")),
            Azure => format!("{name}.cloudapp.azure.com"),
            Gcp => format!(
                "{}.bc.googleusercontent.com",
                ip.split('.').rev().collect::<Vec<_>>().join(".")
            ),
        });
    }
    Addresses {
        private_ips: vec![private.into()],
        public_ips: public_ip.into_iter().map(Into::into).collect(),
        dns_names: dns_names.into_iter().map(Into::into).collect(),
    }
}

/// A bijection on 60 bits (odd multiplications and xor-shifts, each invertible mod 2^60), so
/// distinct keys below 2^60 give distinct results.
fn scramble60(x: u64) -> u64 {
    const MASK: u64 = (1 << 60) - 1;
    let mut x = x & MASK;
    x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15) & MASK;
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9) & MASK;
    x ^ (x >> 32)
}

fn hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn group_name(account: &AccountSpec, region: &str, lineage: &str) -> String {
    let env = if account.source.contains("staging") {
        "stg"
    } else {
        "prd"
    };
    format!("{lineage}-{env}-{region}")
}

fn group_key(account: &AccountSpec, region: &str, lineage: &str) -> String {
    format!(
        "{}:{}:{region}:{}",
        account.cloud,
        account.account,
        group_name(account, region, lineage)
    )
}

fn build_lineage(spec: &'static LineageSpec, now: DateTime<Utc>) -> LineageBuild {
    let count = spec.versions as usize;
    let mut versions = Vec::with_capacity(count);
    for v in 0..count {
        let steps_back = (count - 1 - v) as i64;
        // Builds land at a fixed hour so the names and times stay readable.
        let created = now
            - Duration::days(spec.newest_age_days + steps_back * spec.cadence_days)
            - Duration::hours(3);
        let version_label = format!("{}.{}.0", 1 + v / 10, v % 10);
        let stamp = created.format("%Y%m%d");
        let name = format!("{}-{version_label}-{stamp}", spec.name);
        let mut tags = Tags::new();
        tags.insert("build", format!("{}", 1000 + v));
        let flagged = spec.quirk == Q::NewestFlagged && v == count - 1;
        if flagged {
            let key = match spec.cloud {
                Gcp => "scanner-verdict",
                _ => "vulnerable",
            };
            tags.insert(key, "true");
        }
        let deprecation =
            (spec.quirk == Q::OldDeprecated && v + 2 < count).then(|| match spec.cloud {
                Gcp => Deprecation {
                    at: None,
                    state: Some(if v == 0 { "OBSOLETE" } else { "DEPRECATED" }.into()),
                },
                _ => Deprecation {
                    at: Some(now - Duration::days(30)),
                    state: None,
                },
            });
        let deleted = spec.quirk == Q::OldestDeleted && v == 0;
        let (key, family) = match spec.cloud {
            Aws => (format!("ami-0{:016x}", mix(hash(&name))), None),
            Azure if spec.name == "ubuntu-jammy" => (
                format!(
                    "Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2:22.04.{}",
                    created.format("%Y%m%d")
                ),
                Some("Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2".to_owned()),
            ),
            Azure => (
                format!(
                    "{AZURE_GALLERY}/images/{}/versions/{version_label}",
                    spec.name
                ),
                // Gallery and image definition: the lineage as Azure names it.
                Some(format!("acme/{}", spec.name)),
            ),
            Gcp => (
                format!(
                    "projects/{GCP_IMAGE_PROJECT}/global/images/{}",
                    name.replace('.', "-")
                ),
                Some(format!("{GCP_IMAGE_PROJECT}/{}", spec.name)),
            ),
        };
        let image = if deleted {
            Image::unreadable(
                key,
                spec.cloud,
                match spec.cloud {
                    Aws => "InvalidAMIID.NotFound: the image was deregistered",
                    Azure => "ResourceNotFound: the gallery image version was deleted",
                    Gcp => "404: the image was deleted",
                },
            )
        } else {
            let mut tags = tags;
            if spec.cloud == Aws {
                tags.insert("lineage", spec.name);
            }
            Image {
                key,
                cloud: spec.cloud,
                name,
                created: Some(created),
                owner: match spec.cloud {
                    Aws => AWS_IMAGE_OWNER.into(),
                    Azure => "acme".into(),
                    Gcp => GCP_IMAGE_PROJECT.into(),
                },
                owner_alias: None,
                family,
                deprecation,
                tags,
                readable: true,
                unreadable_reason: None,
            }
        };
        versions.push(Version { image, created });
    }
    let golden = (0..count)
        .rev()
        .find(|&v| {
            let image = &versions[v].image;
            image.readable
                && !image.is_deprecated(now)
                && !(spec.quirk == Q::NewestFlagged && v == count - 1)
        })
        .unwrap_or(count - 1);
    LineageBuild {
        spec,
        versions,
        golden,
    }
}

/// Streams the demo estate, one task per source, `delay` between pages so progress shows.
pub async fn collect(
    fleet: std::sync::Arc<DemoFleet>,
    tx: mpsc::Sender<CollectEvent>,
    delay: StdDuration,
) {
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..ACCOUNTS.len() {
        let fleet = fleet.clone();
        let tx = tx.clone();
        tasks.spawn(async move {
            for event in fleet.source_events(index) {
                if matches!(event, CollectEvent::Page(_)) && !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                if tx.send(event).await.is_err() {
                    return;
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// The demo's executor: a simulated cloud that replaces demo instances after a short, seeded
/// delay and fails a few on a fixed seed, so a new user can watch a rollout safely. It holds no
/// client of any kind: nothing queued in the demo can reach a cloud.
pub struct DemoExecutor {
    fleet: DemoFleet,
    /// Per group (`source/name`): its members and what it launches, for the waves and the
    /// template steps. Gathered on the first plan, not when the UI starts, since it means
    /// generating the whole fleet.
    groups: std::sync::OnceLock<HashMap<String, DemoGroup>>,
    /// The time one replacement takes to become healthy, before its seeded jitter.
    pace: StdDuration,
}

/// A demo group as its executor sees it.
struct DemoGroup {
    members: u32,
    name: String,
    template: String,
    launches: String,
    /// Its template launches an older image than the golden one.
    drifted: bool,
}

impl DemoExecutor {
    pub fn new(fleet: DemoFleet, pace: StdDuration) -> DemoExecutor {
        DemoExecutor {
            fleet,
            groups: std::sync::OnceLock::new(),
            pace,
        }
    }

    fn groups(&self) -> &HashMap<String, DemoGroup> {
        self.groups.get_or_init(|| self.gather_groups())
    }

    fn gather_groups(&self) -> HashMap<String, DemoGroup> {
        let mut by_key = HashMap::new();
        let mut groups = HashMap::new();
        let drifted = self.fleet.drifted_groups();
        for event in self.fleet.events() {
            if let CollectEvent::Page(page) = event {
                for group in &page.groups {
                    let name = format!("{}/{}", page.source, group.name);
                    by_key.insert(group.key.clone(), name.clone());
                    groups.entry(name.clone()).or_insert_with(|| DemoGroup {
                        members: 0,
                        name: group.name.clone(),
                        template: group.template.clone().unwrap_or_default(),
                        launches: group.template_image.clone().unwrap_or_default(),
                        drifted: drifted.contains(&name),
                    });
                }
                for key in page.instances.iter().filter_map(|i| i.group.as_ref()) {
                    if let Some(group) = by_key.get(key.as_str()).and_then(|n| groups.get_mut(n)) {
                        group.members += 1;
                    }
                }
            }
        }
        groups
    }

    /// One in twelve replacements fails its health gate, the same ones for the same seed.
    fn fails(&self, instance_id: &str) -> bool {
        mix(self.fleet.seed ^ hash(instance_id)).is_multiple_of(12)
    }

    /// The demo's cloud is its journal: a call journaled as sent reached it, so resuming
    /// finishes what was started, as the real executors do, and never launches or terminates
    /// twice.
    async fn simulate(&self, entry: &QueueEntry, steps: &Steps) -> Result<Finish, String> {
        use crate::queue::journal::{Call, Step};
        use crate::queue::rollout::Phase;
        if steps.dry_run {
            steps.record(Step::Checked)?;
            return Ok(Finish::WouldSucceed);
        }
        let progress = &steps.progress;
        let jitter = mix(self.fleet.seed ^ hash(&entry.instance_id)) % 100;
        let pace = self.pace + self.pace * jitter as u32 / 100;
        let new_instance = format!("{}-r", entry.instance_id);
        if !progress.terminated && !progress.sent_unanswered(Call::Terminate) {
            if progress.launched.is_none() {
                if !progress.sent_unanswered(Call::Launch) {
                    steps.record(Step::Intent { call: Call::Launch })?;
                }
                steps.record(Step::Launched {
                    new_instance: new_instance.clone(),
                })?;
            }
            steps.phase(Phase::WaitingHealthy);
            tokio::time::sleep(pace).await;
            if self.fails(&entry.instance_id) {
                return Err(format!(
                    "the replacement {new_instance} failed its health check (simulated); {} was left as it was",
                    entry.instance_id
                ));
            }
            steps.record(Step::Healthy {
                new_instance: new_instance.clone(),
            })?;
            steps.record(Step::Intent {
                call: Call::Terminate,
            })?;
        }
        if !progress.terminated {
            steps.record(Step::Terminated)?;
        }
        steps.record(Step::Replaced)?;
        Ok(Finish::Replaced)
    }
}

impl Executor for DemoExecutor {
    fn inspect<'a>(&'a self, entry: &'a QueueEntry) -> BoxFuture<'a, Result<Inspection, String>> {
        let key = match &entry.strategy {
            Strategy::AwsTerminateInGroup { group }
            | Strategy::AzureUpgradeToModel { group }
            | Strategy::GcpRecreateInGroup { group } => Some(format!("{}/{group}", entry.source)),
            _ => None,
        };
        let known = key.as_ref().and_then(|k| self.groups().get(k));
        let template = known
            .zip(entry.target_image.as_deref())
            .and_then(|(group, golden)| {
                group.drifted.then(|| TemplateStep {
                    group: key.clone().unwrap_or_default(),
                    describe: format!(
                        "point {} at {golden} ({}: a new version from it, only the image changed)",
                        group.name, group.template
                    ),
                    drift: format!(
                        "template drift: {} launches {}; point its template at {golden} first",
                        group.name, group.launches
                    ),
                })
            });
        let group = key.map(|key| GroupCapacity {
            desired: known.map_or(1, |g| g.members),
            key,
        });
        futures::future::ready(Ok(Inspection {
            group,
            blocked: None,
            template,
        }))
        .boxed()
    }

    fn replace<'a>(
        &'a self,
        entry: &'a QueueEntry,
        steps: &'a Steps,
    ) -> BoxFuture<'a, Result<Finish, String>> {
        self.simulate(entry, steps).boxed()
    }

    /// The demo's template step: a new template version journaled, then the group pointed at
    /// it; the demo fleet shows the group launching the golden image from then on.
    fn update_template<'a>(
        &'a self,
        member: &'a QueueEntry,
        step: &'a TemplateStep,
        steps: &'a Steps,
    ) -> BoxFuture<'a, Result<TemplateDone, String>> {
        use crate::queue::journal::{Call, Step};
        Box::pin(async move {
            let group = self
                .groups()
                .get(&step.group)
                .ok_or_else(|| format!("{} is not a group of the demo fleet", step.group))?;
            let golden = member.target_image.as_deref().unwrap_or_default();
            let new = format!("{} (a new version launching {golden})", group.template);
            if steps.dry_run {
                steps.record(Step::Checked)?;
            } else {
                let progress = &steps.progress;
                if progress.template_created.is_none() {
                    if !progress.sent_unanswered(Call::CreateTemplate) {
                        steps.record(Step::Intent {
                            call: Call::CreateTemplate,
                        })?;
                    }
                    steps.record(Step::TemplateCreated {
                        template: new.clone(),
                    })?;
                }
                tokio::time::sleep(self.pace / 4).await;
                if !progress.sent_unanswered(Call::PointGroup) {
                    steps.record(Step::Intent {
                        call: Call::PointGroup,
                    })?;
                }
                steps.record(Step::GroupPointed {
                    template: new.clone(),
                })?;
            }
            Ok(TemplateDone {
                now: new,
                revert: format!(
                    "nothing in a cloud: it is the demo; deleting the data directory's demo/ puts {} back",
                    group.name
                ),
            })
        })
    }
}

impl Executors for DemoExecutor {
    fn for_entry(&self, entry: &QueueEntry) -> Result<&dyn Executor, String> {
        if DemoFleet::source_names().any(|(name, _)| name == entry.source) {
            Ok(self)
        } else {
            Err(format!(
                "source {} is not part of the demo fleet",
                entry.source
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
    }

    #[test]
    fn every_size_is_met_exactly() {
        for size in [0, 1, 7, 1_500, 99_999, 1_000_000] {
            let fleet = DemoFleet::new(42, size, now());
            assert_eq!(
                fleet.account_sizes().iter().sum::<usize>(),
                size,
                "size {size}"
            );
        }
    }

    #[test]
    fn every_instance_has_its_own_id_and_address_at_any_size() {
        for size in [1_500, 100_000] {
            let fleet = DemoFleet::new(42, size, now());
            let mut inventory = crate::core::inventory::Inventory::new(Default::default());
            for event in fleet.events() {
                inventory.apply(event);
            }
            assert_eq!(inventory.instances().len(), size);
            let counted: u32 = inventory.sources().iter().map(|s| s.instances).sum();
            assert_eq!(counted as usize, size, "sources add up to the total");
            assert!(inventory.sources().iter().all(|s| s.warnings.is_empty()));
            let mut ips: Vec<&str> = inventory
                .instances()
                .iter()
                .map(|i| i.addresses.private_ips[0].as_str())
                .collect();
            ips.sort_unstable();
            ips.dedup();
            assert_eq!(ips.len(), size);
        }
    }

    #[test]
    fn shaped_like_a_real_estate() {
        assert!(CATALOG.len() >= 20);
        assert!(CATALOG.iter().all(|l| (3..=12).contains(&l.versions)));
        for cloud in Cloud::ALL {
            assert!(
                ACCOUNTS.iter().filter(|a| a.cloud == cloud).count() >= 2,
                "{cloud}"
            );
        }
        let fleet = DemoFleet::new(42, 1_500, now());
        let span = fleet
            .lineages
            .iter()
            .flat_map(|l| l.versions.iter().map(|v| v.created))
            .fold((now(), now() - Duration::days(1_000)), |(lo, hi), c| {
                (lo.min(c), hi.max(c))
            });
        assert!(
            now() - span.0 > Duration::days(300),
            "versions spread over about a year"
        );
    }

    #[test]
    fn same_seed_same_fleet_other_seed_other_fleet() {
        let a = DemoFleet::new(42, 600, now());
        let b = DemoFleet::new(42, 600, now());
        let c = DemoFleet::new(7, 600, now());
        let first = |f: &DemoFleet| f.pages(0).next().map(|p| p.instances);
        assert_eq!(first(&a), first(&b));
        assert_ne!(first(&a), first(&c));
    }

    #[test]
    fn timestamps_follow_now() {
        let later = now() + Duration::days(365);
        let a = DemoFleet::new(42, 10, now());
        let b = DemoFleet::new(42, 10, later);
        let page = |f: &DemoFleet| f.pages(0).next().unwrap();
        let (pa, pb) = (page(&a), page(&b));
        for (ia, ib) in pa.instances.iter().zip(&pb.instances) {
            assert_eq!(ib.launched - ia.launched, Duration::days(365));
        }
    }
}
