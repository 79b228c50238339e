//! The full picture as JSON: every fact of the snapshot, each with its evaluation beside it.
//! Entries carry the snapshot's own fields, so this file also loads with `--snapshot`.

use std::collections::BTreeMap;
use std::io::{self, Write};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::ReportInput;
use crate::core::inventory::ImageAccounts;
use crate::core::model::{Cloud, Group, Image, Instance, SourceStatus};
use crate::core::policy::{PolicyConfig, TemplateStatus, Verdict, VerdictCounts};
use crate::snapshot::SCHEMA_VERSION;

#[derive(Serialize)]
struct Report<'a> {
    schema_version: u32,
    kind: &'static str,
    fleetscope_version: &'static str,
    taken_at: DateTime<Utc>,
    policy: &'a PolicyConfig,
    /// The `--filter` the instances were chosen by; absent for the whole fleet.
    #[serde(skip_serializing_if = "Option::is_none")]
    filter: Option<&'a str>,
    summary: Summary<'a>,
    sources: Vec<&'a SourceStatus>,
    lineages: Vec<LineageRow<'a>>,
    images: Vec<ImageRow<'a>>,
    groups: Vec<GroupRow<'a>>,
    instances: Vec<InstanceRow<'a>>,
}

#[derive(Serialize)]
struct Summary<'a> {
    instances: usize,
    total: &'a VerdictCounts,
    by_cloud: &'a BTreeMap<Cloud, VerdictCounts>,
    failed_sources: usize,
    incomplete_sources: usize,
}

#[derive(Serialize)]
struct LineageRow<'a> {
    name: &'a str,
    golden: Option<&'a str>,
    pinned: bool,
    instances: u32,
    lagging_instances: u32,
    max_behind_by: u32,
    lagging_since: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warning: Option<&'a str>,
}

#[derive(Serialize)]
struct ImageRow<'a> {
    #[serde(flatten)]
    image: &'a Image,
    lineage: Option<&'a str>,
    verdict: Verdict,
    age_days: Option<i64>,
    instance_count: usize,
    /// The accounts (AWS accounts, Azure subscriptions, Google Cloud projects) that run it,
    /// most instances first, then by id: an image shared into many accounts is one image.
    accounts: Vec<AccountRow<'a>>,
    behind_by: u32,
    behind_since: Option<DateTime<Utc>>,
    golden: Option<&'a str>,
    reasons: &'a [String],
    /// Present when `policy.trusted_owners` is set: whether the image's owner is not in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    untrusted_source: Option<bool>,
}

#[derive(Serialize)]
struct AccountRow<'a> {
    account: &'a str,
    instances: u32,
}

#[derive(Serialize)]
struct GroupRow<'a> {
    #[serde(flatten)]
    group: &'a Group,
    members: usize,
    images: Vec<&'a str>,
    skew: bool,
    template_status: &'a TemplateStatus,
}

#[derive(Serialize)]
struct InstanceRow<'a> {
    #[serde(flatten)]
    instance: &'a Instance,
    verdict: Verdict,
    image_age_days: Option<i64>,
    uptime_days: i64,
    long_lived: bool,
    behind_by: u32,
    behind_since: Option<DateTime<Utc>>,
    reasons: &'a [String],
    /// Present when `policy.trusted_owners` is set: whether its image's owner is not in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    untrusted_source: Option<bool>,
}

pub fn write(input: &ReportInput<'_>, out: &mut dyn Write) -> io::Result<()> {
    let inv = input.inventory;
    let eval = input.eval;
    let key_of = |i: u32| inv.image(i).image.key.as_str();
    let trust_checked = !input.policy.trusted_owners.is_empty();
    let accounts = ImageAccounts::of(inv);
    let mut sources: Vec<&SourceStatus> = inv.sources().iter().collect();
    sources.sort_by(|a, b| a.name.cmp(&b.name));
    let mut lineage_order: Vec<u32> = (0..inv.lineages().len() as u32).collect();
    lineage_order.sort_by(|&a, &b| inv.lineage(a).name.cmp(&inv.lineage(b).name));
    let report = Report {
        schema_version: SCHEMA_VERSION,
        kind: "report",
        fleetscope_version: env!("CARGO_PKG_VERSION"),
        taken_at: eval.now,
        policy: input.policy,
        filter: input.filter,
        summary: Summary {
            instances: inv.instances().len(),
            total: &eval.total,
            by_cloud: &eval.by_cloud,
            failed_sources: input.failed_sources(),
            incomplete_sources: input.incomplete_sources(),
        },
        sources,
        lineages: lineage_order
            .into_iter()
            .map(|l| {
                let le = &eval.lineages[l as usize];
                LineageRow {
                    name: &inv.lineage(l).name,
                    golden: le.golden.map(key_of),
                    pinned: le.pinned,
                    instances: le.instances,
                    lagging_instances: le.lagging_instances,
                    max_behind_by: le.max_behind_by,
                    lagging_since: le.lagging_since,
                    warning: le.warning.as_deref(),
                }
            })
            .collect(),
        images: input
            .all_images()
            .into_iter()
            .map(|i| {
                let ie = &eval.images[i as usize];
                ImageRow {
                    image: &inv.image(i).image,
                    lineage: inv.image(i).lineage.map(|l| inv.lineage(l).name.as_str()),
                    verdict: ie.verdict,
                    age_days: ie.age_days,
                    instance_count: inv.image(i).instances.len(),
                    accounts: accounts
                        .of_image(i)
                        .map(|(account, instances)| AccountRow { account, instances })
                        .collect(),
                    behind_by: ie.behind_by,
                    behind_since: ie.behind_since,
                    golden: ie.golden.map(key_of),
                    reasons: &ie.reasons,
                    untrusted_source: trust_checked.then_some(ie.untrusted_source),
                }
            })
            .collect(),
        groups: input
            .groups()
            .into_iter()
            .filter_map(|g| {
                let entry = inv.group(g);
                let ge = &eval.groups[g as usize];
                let mut images: Vec<&str> = ge.images.iter().map(|&i| key_of(i)).collect();
                images.sort_unstable();
                Some(GroupRow {
                    group: entry.group.as_ref()?,
                    members: entry.members.len(),
                    images,
                    skew: ge.skew(),
                    template_status: &ge.template,
                })
            })
            .collect(),
        instances: input
            .instances_by_place()
            .into_iter()
            .map(|i| {
                let instance = inv.instance(i);
                let ie = eval.image_eval_of(inv, i);
                InstanceRow {
                    instance,
                    verdict: ie.verdict,
                    image_age_days: ie.age_days,
                    uptime_days: crate::core::policy::days_between(instance.launched, eval.now),
                    long_lived: eval.long_lived[i as usize],
                    behind_by: ie.behind_by,
                    behind_since: ie.behind_since,
                    reasons: &ie.reasons,
                    untrusted_source: trust_checked.then_some(ie.untrusted_source),
                }
            })
            .collect(),
    };
    serde_json::to_writer_pretty(&mut *out, &report).map_err(io::Error::other)?;
    out.write_all(b"\n")
}
