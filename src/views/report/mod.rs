//! One-shot reports for change reviews and CI: the same facts as markdown, JSON or CSV.

mod csv;
mod json;
mod markdown;
pub mod queue;

use std::io::Write;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::core::inventory::{GroupIdx, ImageIdx, InstanceIdx, Inventory, LineageIdx};
use crate::core::model::SourceState;
use crate::core::policy::{Evaluation, PolicyConfig, Verdict};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Md,
    Json,
    Csv,
}

pub struct ReportInput<'a> {
    pub inventory: &'a Inventory,
    pub eval: &'a Evaluation,
    pub policy: &'a PolicyConfig,
    /// Markdown lists at most this many non-current instances.
    pub limit: Option<usize>,
    /// The `--filter` that chose the instances, if one did.
    pub filter: Option<&'a str>,
}

pub fn write(format: Format, input: &ReportInput<'_>, out: &mut dyn Write) -> std::io::Result<()> {
    match format {
        Format::Md => markdown::write(input, out),
        Format::Json => json::write(input, out),
        Format::Csv => csv::write(input, out),
    }
}

impl ReportInput<'_> {
    /// Instances most severe first, then oldest image, then by id: stable whatever order the
    /// sources answered in.
    fn instances_by_severity(&self) -> Vec<InstanceIdx> {
        let inv = self.inventory;
        let mut rows: Vec<InstanceIdx> = (0..inv.instances().len() as InstanceIdx).collect();
        rows.sort_by(|&a, &b| {
            let (ia, ib) = (inv.instance(a), inv.instance(b));
            let (ea, eb) = (
                self.eval.image_eval_of(inv, a),
                self.eval.image_eval_of(inv, b),
            );
            eb.verdict
                .cmp(&ea.verdict)
                .then_with(|| eb.age_days.cmp(&ea.age_days))
                .then_with(|| {
                    (ia.cloud, &ia.account, &ia.region, &ia.id).cmp(&(
                        ib.cloud,
                        &ib.account,
                        &ib.region,
                        &ib.id,
                    ))
                })
        });
        rows
    }

    /// Instances with a network exposure finding, most severe first.
    fn exposed_instances(&self) -> Vec<InstanceIdx> {
        let mut rows = self.instances_by_severity();
        rows.retain(|&i| !self.inventory.instance(i).exposure.is_empty());
        rows
    }

    /// Images in use from an owner `policy.trusted_owners` does not name, most instances first.
    fn untrusted_images(&self) -> Vec<ImageIdx> {
        let mut rows = self.images_in_use();
        rows.retain(|&i| self.eval.images[i as usize].untrusted_source);
        rows.sort_by(|&a, &b| {
            let (ia, ib) = (self.inventory.image(a), self.inventory.image(b));
            ib.instances
                .len()
                .cmp(&ia.instances.len())
                .then_with(|| ia.image.key.cmp(&ib.image.key))
        });
        rows
    }

    /// Instances by cloud, account, region and id.
    fn instances_by_place(&self) -> Vec<InstanceIdx> {
        let inv = self.inventory;
        let mut rows: Vec<InstanceIdx> = (0..inv.instances().len() as InstanceIdx).collect();
        rows.sort_by(|&a, &b| {
            let (ia, ib) = (inv.instance(a), inv.instance(b));
            (ia.cloud, &ia.account, &ia.region, &ia.id).cmp(&(
                ib.cloud,
                &ib.account,
                &ib.region,
                &ib.id,
            ))
        });
        rows
    }

    /// Images with at least one instance, most severe first, then most instances.
    fn images_in_use(&self) -> Vec<ImageIdx> {
        let inv = self.inventory;
        let mut rows: Vec<ImageIdx> = (0..inv.images().len() as ImageIdx)
            .filter(|&i| !inv.image(i).instances.is_empty())
            .collect();
        rows.sort_by(|&a, &b| {
            let (ea, eb) = (&self.eval.images[a as usize], &self.eval.images[b as usize]);
            let (ia, ib) = (inv.image(a), inv.image(b));
            eb.verdict
                .cmp(&ea.verdict)
                .then_with(|| ib.instances.len().cmp(&ia.instances.len()))
                .then_with(|| ia.image.key.cmp(&ib.image.key))
        });
        rows
    }

    /// Every image, by key.
    fn all_images(&self) -> Vec<ImageIdx> {
        let inv = self.inventory;
        let mut rows: Vec<ImageIdx> = (0..inv.images().len() as ImageIdx).collect();
        rows.sort_by(|&a, &b| inv.image(a).image.key.cmp(&inv.image(b).image.key));
        rows
    }

    /// Lineages in use, those lagging most first.
    fn lineages_in_use(&self) -> Vec<LineageIdx> {
        let inv = self.inventory;
        let mut rows: Vec<LineageIdx> = (0..inv.lineages().len() as LineageIdx)
            .filter(|&l| self.eval.lineages[l as usize].instances > 0)
            .collect();
        rows.sort_by(|&a, &b| {
            let (ea, eb) = (
                &self.eval.lineages[a as usize],
                &self.eval.lineages[b as usize],
            );
            eb.lagging_instances
                .cmp(&ea.lagging_instances)
                .then_with(|| inv.lineage(a).name.cmp(&inv.lineage(b).name))
        });
        rows
    }

    /// Groups by key.
    fn groups(&self) -> Vec<GroupIdx> {
        let inv = self.inventory;
        let mut rows: Vec<GroupIdx> = (0..inv.groups().len() as GroupIdx).collect();
        rows.sort_by(|&a, &b| inv.group(a).key.cmp(&inv.group(b).key));
        rows
    }

    fn failed_sources(&self) -> usize {
        self.inventory
            .sources()
            .iter()
            .filter(|s| matches!(s.state, SourceState::Failed { .. }))
            .count()
    }

    fn incomplete_sources(&self) -> usize {
        self.inventory
            .sources()
            .iter()
            .filter(|s| matches!(s.state, SourceState::Incomplete { .. }))
            .count()
    }

    fn image_label(&self, image: ImageIdx) -> &str {
        let entry = self.inventory.image(image);
        if entry.image.name.is_empty() {
            &entry.image.key
        } else {
            &entry.image.name
        }
    }

    fn lineage_name(&self, image: ImageIdx) -> &str {
        self.inventory
            .image(image)
            .lineage
            .map_or("", |l| self.inventory.lineage(l).name.as_str())
    }
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Verdicts as the flag `--fail-on` takes them.
pub fn verdict_threshold(text: &str) -> Option<Verdict> {
    Verdict::parse(text).filter(|v| *v != Verdict::Current)
}

/// What `--fail-on` fails on: a verdict or worse, or a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOn {
    Verdict(Verdict),
    Exposed,
    LongLived,
    /// The image comes from an owner `policy.trusted_owners` does not name.
    UntrustedSource,
}

impl FailOn {
    pub fn parse(text: &str) -> Option<FailOn> {
        match text.to_ascii_lowercase().as_str() {
            "exposed" => Some(FailOn::Exposed),
            "long-lived" => Some(FailOn::LongLived),
            "untrusted-source" => Some(FailOn::UntrustedSource),
            other => verdict_threshold(other).map(FailOn::Verdict),
        }
    }

    /// Whether an instance meets it.
    fn met_by(self, input: &ReportInput<'_>, instance: InstanceIdx) -> bool {
        match self {
            FailOn::Verdict(threshold) => {
                input.eval.verdict_of(input.inventory, instance) >= threshold
            }
            FailOn::Exposed => !input.inventory.instance(instance).exposure.is_empty(),
            FailOn::LongLived => input.eval.long_lived[instance as usize],
            FailOn::UntrustedSource => {
                input
                    .eval
                    .image_eval_of(input.inventory, instance)
                    .untrusted_source
            }
        }
    }

    /// What failed the run, as one line naming the worst instances first; `None` when no
    /// instance meets it.
    pub fn failure(self, input: &ReportInput<'_>) -> Option<String> {
        let (flag, meaning) = match self {
            FailOn::Verdict(Verdict::Flagged) => ("flagged".to_owned(), "flagged".to_owned()),
            FailOn::Verdict(threshold) => (threshold.to_string(), format!("{threshold} or worse")),
            FailOn::Exposed => ("exposed".to_owned(), "exposed".to_owned()),
            FailOn::LongLived => (
                "long-lived".to_owned(),
                format!(
                    "long-lived (launched more than {} days ago)",
                    input.policy.max_instance_age_days
                ),
            ),
            FailOn::UntrustedSource => (
                "untrusted-source".to_owned(),
                "on an image from an owner policy.trusted_owners does not name".to_owned(),
            ),
        };
        let names = input
            .instances_by_severity()
            .into_iter()
            .filter(|&i| self.met_by(input, i))
            .map(|i| super::short_id(&input.inventory.instance(i).id).to_owned())
            .collect();
        super::fail_on_line(&flag, &meaning, names)
    }
}
