//! Verdicts: a pure function of (inventory, policy config, now).
//!
//! Every verdict but long-lived is a property of the image an instance runs, so images are
//! evaluated once and instances read their image's verdict: 5,000 images, not 100,000 instances.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::inventory::{GroupIdx, ImageIdx, InstanceIdx, Inventory, LineageIdx};
use super::model::{Cloud, Image};

/// Ordered from least to most severe, so `max` picks the verdict that wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Current,
    Stale,
    Outdated,
    Unknown,
    Flagged,
}

impl Verdict {
    /// Most severe first, the order reports list them in.
    pub const BY_SEVERITY: [Verdict; 5] = [
        Verdict::Flagged,
        Verdict::Unknown,
        Verdict::Outdated,
        Verdict::Stale,
        Verdict::Current,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Current => "current",
            Verdict::Stale => "stale",
            Verdict::Outdated => "outdated",
            Verdict::Unknown => "unknown",
            Verdict::Flagged => "flagged",
        }
    }

    pub fn parse(text: &str) -> Option<Verdict> {
        Verdict::BY_SEVERITY
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(text))
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    pub max_image_age_days: u32,
    pub max_instance_age_days: u32,
    /// Image tags or labels that flag an image: `key` (any value) or `key=value`.
    pub flag_tags: Vec<String>,
    /// Image keys flagged by hand, such as the image with the bad OpenSSL.
    pub flagged_images: Vec<String>,
    /// Where images may come from: AWS owner account ids or the aliases `amazon` and
    /// `aws-marketplace`, Azure gallery ids or marketplace publishers, Google Cloud image
    /// projects. Empty (the default) trusts every owner; set, an image from any other owner
    /// is the finding untrusted-source.
    pub trusted_owners: Vec<String>,
    /// Lineage name -> image key that is golden whatever is newer.
    pub golden: BTreeMap<String, String>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            max_image_age_days: 14,
            max_instance_age_days: 30,
            flag_tags: vec!["vulnerable".into(), "fleetscope:flagged".into()],
            flagged_images: Vec::new(),
            trusted_owners: Vec::new(),
            golden: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ImageEval {
    pub verdict: Verdict,
    /// Whether the image itself is flagged, apart from any other verdict.
    pub flagged: bool,
    pub age_days: Option<i64>,
    /// Newer images in the lineage up to the golden one.
    pub behind_by: u32,
    /// Creation time of the oldest newer image: since when instances on this image lag.
    pub behind_since: Option<DateTime<Utc>>,
    pub golden: Option<ImageIdx>,
    /// Why the verdict, most severe first; empty for current images.
    pub reasons: Vec<String>,
    /// The finding untrusted-source: `policy.trusted_owners` is set and names no owner of this
    /// image. Apart from the verdict, as long-lived and exposed are.
    pub untrusted_source: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LineageEval {
    pub golden: Option<ImageIdx>,
    pub pinned: bool,
    /// Instances in the lineage not on the golden image.
    pub lagging_instances: u32,
    pub instances: u32,
    /// The largest `behind_by` among images in use.
    pub max_behind_by: u32,
    /// The earliest `behind_since` among images in use.
    pub lagging_since: Option<DateTime<Utc>>,
    pub warning: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TemplateStatus {
    /// The group has no template image to compare (unknown to the source).
    Unresolved,
    Golden,
    /// Replacing a member would bring back this non-golden image.
    Drift {
        points_at: String,
        golden: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupEval {
    /// Distinct images the members run; more than one is skew.
    pub images: Vec<ImageIdx>,
    pub template: TemplateStatus,
}

impl GroupEval {
    pub fn skew(&self) -> bool {
        self.images.len() > 1
    }

    pub fn drift(&self) -> bool {
        matches!(self.template, TemplateStatus::Drift { .. })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VerdictCounts {
    pub flagged: u32,
    pub unknown: u32,
    pub outdated: u32,
    pub stale: u32,
    pub current: u32,
    pub long_lived: u32,
}

impl VerdictCounts {
    pub fn get(&self, verdict: Verdict) -> u32 {
        match verdict {
            Verdict::Flagged => self.flagged,
            Verdict::Unknown => self.unknown,
            Verdict::Outdated => self.outdated,
            Verdict::Stale => self.stale,
            Verdict::Current => self.current,
        }
    }

    fn add(&mut self, verdict: Verdict) {
        let slot = match verdict {
            Verdict::Flagged => &mut self.flagged,
            Verdict::Unknown => &mut self.unknown,
            Verdict::Outdated => &mut self.outdated,
            Verdict::Stale => &mut self.stale,
            Verdict::Current => &mut self.current,
        };
        *slot += 1;
    }

    pub fn total(&self) -> u32 {
        self.flagged + self.unknown + self.outdated + self.stale + self.current
    }

    /// Instances at or above `threshold`.
    pub fn at_or_above(&self, threshold: Verdict) -> u32 {
        Verdict::BY_SEVERITY
            .into_iter()
            .filter(|v| *v >= threshold)
            .map(|v| self.get(v))
            .sum()
    }
}

/// The policy's answer for a whole inventory at one `now`.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub now: DateTime<Utc>,
    pub max_instance_age: Duration,
    pub images: Vec<ImageEval>,
    pub lineages: Vec<LineageEval>,
    pub groups: Vec<GroupEval>,
    pub long_lived: Vec<bool>,
    pub by_cloud: BTreeMap<Cloud, VerdictCounts>,
    pub total: VerdictCounts,
}

impl Evaluation {
    pub fn verdict_of(&self, inventory: &Inventory, instance: InstanceIdx) -> Verdict {
        self.images[inventory.image_of(instance) as usize].verdict
    }

    pub fn image_eval_of(&self, inventory: &Inventory, instance: InstanceIdx) -> &ImageEval {
        &self.images[inventory.image_of(instance) as usize]
    }

    pub fn group_eval(&self, group: GroupIdx) -> &GroupEval {
        &self.groups[group as usize]
    }

    pub fn lineage_eval(&self, lineage: LineageIdx) -> &LineageEval {
        &self.lineages[lineage as usize]
    }
}

/// Whole days from `since` to `now`, never negative (clock skew between clouds).
pub fn days_between(since: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    (now - since).num_days().max(0)
}

pub fn evaluate(inventory: &Inventory, config: &PolicyConfig, now: DateTime<Utc>) -> Evaluation {
    let flag_rules: Vec<(&str, Option<&str>)> = config
        .flag_tags
        .iter()
        .map(|rule| match rule.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (rule.as_str(), None),
        })
        .collect();
    let flag_reason = |image: &Image| -> Option<String> {
        if config.flagged_images.contains(&image.key) {
            return Some("listed in policy.flagged_images".to_owned());
        }
        if !image.readable {
            return None;
        }
        if image.is_deprecated(now) {
            let deprecation = image.deprecation.as_ref();
            return Some(match deprecation.and_then(|d| d.state.as_deref()) {
                Some(state) => format!("deprecated by {} ({state})", image.cloud),
                None => match deprecation.and_then(|d| d.at) {
                    Some(at) => format!(
                        "deprecated by {} since {}",
                        image.cloud,
                        at.format("%Y-%m-%d")
                    ),
                    None => format!("deprecated by {}", image.cloud),
                },
            });
        }
        for (key, value) in &flag_rules {
            if let Some(actual) = image.tags.get(key)
                && value.is_none_or(|v| v == actual)
            {
                return Some(format!("tagged {key}={actual}"));
            }
        }
        None
    };

    let mut images: Vec<ImageEval> = inventory
        .images()
        .iter()
        .map(|entry| {
            let readable = entry.described && entry.image.readable;
            let flag = flag_reason(&entry.image);
            ImageEval {
                verdict: Verdict::Current,
                flagged: flag.is_some(),
                age_days: entry
                    .image
                    .created
                    .filter(|_| readable)
                    .map(|c| days_between(c, now)),
                behind_by: 0,
                behind_since: None,
                golden: None,
                reasons: flag.into_iter().collect(),
                untrusted_source: readable && !is_trusted(&entry.image, &config.trusted_owners),
            }
        })
        .collect();

    let lineages: Vec<LineageEval> = inventory
        .lineages()
        .iter()
        .map(|lineage| {
            let mut warning = None;
            let pinned = config.golden.get(&lineage.name).and_then(|key| {
                let found = inventory
                    .image_by_key(key)
                    .filter(|idx| lineage.images.contains(idx));
                if found.is_none() {
                    warning = Some(format!(
                        "pinned golden image {key} is not in this lineage's inventory; using the newest"
                    ));
                }
                found
            });
            let golden = pinned.or_else(|| {
                lineage.images.iter().rev().copied().find(|&idx| {
                    let entry = inventory.image(idx);
                    entry.described
                        && entry.image.readable
                        && !images[idx as usize].flagged
                })
            });
            if golden.is_none() && warning.is_none() {
                warning = Some("no golden image: every version is deprecated or flagged".to_owned());
            }
            LineageEval {
                golden,
                pinned: pinned.is_some(),
                lagging_instances: 0,
                instances: 0,
                max_behind_by: 0,
                lagging_since: None,
                warning,
            }
        })
        .collect();

    let max_image_age = Duration::days(config.max_image_age_days.into());
    for (idx, entry) in inventory.images().iter().enumerate() {
        let eval = &mut images[idx];
        if eval.flagged {
            eval.verdict = Verdict::Flagged;
        }
        if !(entry.described && entry.image.readable) {
            mark(eval, Verdict::Unknown);
            let reason = entry
                .image
                .unreadable_reason
                .as_deref()
                .unwrap_or("image metadata could not be read");
            eval.reasons.push(format!("image unknown: {reason}"));
            continue;
        }
        if let Some(lineage_idx) = entry.lineage {
            let lineage = inventory.lineage(lineage_idx);
            let lineage_eval = &lineages[lineage_idx as usize];
            eval.golden = lineage_eval.golden;
            if let Some(golden_idx) = lineage_eval.golden.filter(|&g| g as usize != idx) {
                let golden = &inventory.image(golden_idx).image;
                let created = entry.image.created;
                let position = lineage.images.iter().position(|&i| i as usize == idx);
                let golden_position = lineage.images.iter().position(|&i| i == golden_idx);
                // Neither dated (Azure marketplace versions without a date token): the
                // lineage's version order alone says which is newer.
                let undated = created.is_none() && golden.created.is_none();
                if golden.created > created || (undated && golden_position > position) {
                    // Newer images up to and including the golden one; images created at the
                    // same instant as this one are its peers, not its successors.
                    if let (Some(from), Some(to)) = (position, golden_position) {
                        let newer: Vec<ImageIdx> = lineage.images[from + 1..=to]
                            .iter()
                            .copied()
                            .filter(|&i| undated || inventory.image(i).image.created > created)
                            .collect();
                        eval.behind_by = newer.len() as u32;
                        eval.behind_since = newer
                            .first()
                            .and_then(|&i| inventory.image(i).image.created);
                    }
                    mark(eval, Verdict::Outdated);
                    eval.reasons.push(format!(
                        "{} newer image(s); golden is {}",
                        eval.behind_by,
                        display_name(golden)
                    ));
                } else if lineage_eval.pinned {
                    mark(eval, Verdict::Outdated);
                    eval.reasons.push(format!(
                        "not the pinned golden image {}",
                        display_name(golden)
                    ));
                }
            }
        }
        if entry.image.created.is_none() {
            eval.reasons
                .push("image age unknown: its cloud gives no creation date".to_owned());
        }
        if let Some(created) = entry.image.created
            && now - created > max_image_age
        {
            mark(eval, Verdict::Stale);
            eval.reasons.push(format!(
                "image is {} days old (max {})",
                days_between(created, now),
                config.max_image_age_days
            ));
        }
    }

    let max_instance_age = Duration::days(config.max_instance_age_days.into());
    let mut by_cloud: BTreeMap<Cloud, VerdictCounts> = BTreeMap::new();
    let mut total = VerdictCounts::default();
    let mut long_lived = Vec::with_capacity(inventory.instances().len());
    let mut lineages = lineages;
    for (idx, instance) in inventory.instances().iter().enumerate() {
        let image_idx = inventory.image_of(idx as InstanceIdx);
        let eval = &images[image_idx as usize];
        let counts = by_cloud.entry(instance.cloud).or_default();
        counts.add(eval.verdict);
        total.add(eval.verdict);
        let is_long_lived = now - instance.launched > max_instance_age;
        if is_long_lived {
            counts.long_lived += 1;
            total.long_lived += 1;
        }
        long_lived.push(is_long_lived);
        if let Some(lineage_idx) = inventory.image(image_idx).lineage {
            let lineage = &mut lineages[lineage_idx as usize];
            lineage.instances += 1;
            if lineage.golden.is_some_and(|g| g != image_idx) {
                lineage.lagging_instances += 1;
            }
            lineage.max_behind_by = lineage.max_behind_by.max(eval.behind_by);
            if let Some(since) = eval.behind_since {
                lineage.lagging_since = Some(lineage.lagging_since.map_or(since, |s| s.min(since)));
            }
        }
    }

    let groups = inventory
        .groups()
        .iter()
        .map(|entry| {
            let mut member_images: Vec<ImageIdx> = entry
                .members
                .iter()
                .map(|&m| inventory.image_of(m))
                .collect();
            member_images.sort_unstable();
            member_images.dedup();
            let template = match entry
                .group
                .as_ref()
                .and_then(|g| g.template_image.as_deref())
            {
                None => TemplateStatus::Unresolved,
                Some(points_at) => {
                    let lineage = inventory
                        .image_by_key(points_at)
                        .and_then(|i| inventory.image(i).lineage)
                        .or_else(|| majority_lineage(inventory, &entry.members));
                    let golden = lineage
                        .and_then(|l| lineages[l as usize].golden)
                        .map(|g| inventory.image(g).image.key.clone());
                    if golden.as_deref() == Some(points_at) {
                        TemplateStatus::Golden
                    } else {
                        TemplateStatus::Drift {
                            points_at: points_at.to_owned(),
                            golden,
                        }
                    }
                }
            };
            GroupEval {
                images: member_images,
                template,
            }
        })
        .collect();

    Evaluation {
        now,
        max_instance_age,
        images,
        lineages,
        groups,
        long_lived,
        by_cloud,
        total,
    }
}

/// Whether `owners` (`policy.trusted_owners`) lets `image` in; an empty list trusts everyone.
///
/// An entry matches, case-insensitively, the image's owner as its cloud states it (an AWS
/// account id, an Azure marketplace publisher or shared gallery name, a Google Cloud image
/// project), or its AWS owner alias (`amazon`, `aws-marketplace`), or, for an Azure gallery's
/// resource id (`/subscriptions/…/galleries/NAME`), every image version inside that gallery.
/// Nothing else: a prefix of an account id or project is not that owner.
pub fn is_trusted(image: &Image, owners: &[String]) -> bool {
    if owners.is_empty() {
        return true;
    }
    owners.iter().any(|entry| {
        let entry = entry.trim().trim_end_matches('/');
        if entry.is_empty() {
            return false;
        }
        if !image.owner.is_empty() && image.owner.eq_ignore_ascii_case(entry) {
            return true;
        }
        if image
            .owner_alias
            .as_deref()
            .is_some_and(|alias| alias.eq_ignore_ascii_case(entry))
        {
            return true;
        }
        image.cloud == Cloud::Azure
            && entry.starts_with('/')
            && image.key.len() > entry.len()
            && image.key.is_char_boundary(entry.len())
            && image.key[..entry.len()].eq_ignore_ascii_case(entry)
            && image.key[entry.len()..].starts_with('/')
    })
}

/// The owner an untrusted-source finding names: the alias beside the id where there is one.
pub fn owner_label(image: &Image) -> String {
    let owner = if image.owner.is_empty() {
        "an unnamed owner"
    } else {
        image.owner.as_str()
    };
    match &image.owner_alias {
        Some(alias) => format!("{owner} ({alias})"),
        None => owner.to_owned(),
    }
}

fn mark(eval: &mut ImageEval, verdict: Verdict) {
    eval.verdict = eval.verdict.max(verdict);
}

fn display_name(image: &Image) -> String {
    if image.name.is_empty() {
        image.key.clone()
    } else {
        image.name.clone()
    }
}

fn majority_lineage(inventory: &Inventory, members: &[InstanceIdx]) -> Option<LineageIdx> {
    let mut counts: BTreeMap<LineageIdx, usize> = BTreeMap::new();
    for &m in members {
        if let Some(l) = inventory.image(inventory.image_of(m)).lineage {
            *counts.entry(l).or_default() += 1;
        }
    }
    // Ties go to the first name, not the first index: indices follow event arrival order.
    counts
        .into_iter()
        .max_by(|a, b| {
            a.1.cmp(&b.1).then_with(|| {
                inventory
                    .lineage(b.0)
                    .name
                    .cmp(&inventory.lineage(a.0).name)
            })
        })
        .map(|(l, _)| l)
}
