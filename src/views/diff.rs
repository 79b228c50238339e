//! What changed between two snapshots: instances added and removed, moved to another image,
//! and verdicts that changed. Each side is evaluated at its own `taken_at`.

use std::collections::BTreeMap;
use std::io::{self, Write};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::core::inventory::Inventory;
use crate::core::model::Cloud;
use crate::core::policy::{Evaluation, Verdict};
use crate::text::table_cell as cell;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DiffFormat {
    Md,
    Json,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct InstanceRef {
    pub id: String,
    pub name: String,
    pub cloud: Cloud,
    pub image: String,
    pub verdict: Verdict,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Change<T> {
    pub id: String,
    pub name: String,
    pub from: T,
    pub to: T,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Diff {
    pub schema_version: u32,
    pub kind: &'static str,
    pub old_taken_at: DateTime<Utc>,
    pub new_taken_at: DateTime<Utc>,
    pub old_instances: usize,
    pub new_instances: usize,
    pub added: Vec<InstanceRef>,
    pub removed: Vec<InstanceRef>,
    pub moved: Vec<Change<String>>,
    pub verdict_changes: Vec<Change<Verdict>>,
}

/// Side by side: the inventory and its evaluation.
pub struct Side<'a> {
    pub inventory: &'a Inventory,
    pub eval: &'a Evaluation,
}

fn by_id<'a>(side: &Side<'a>) -> BTreeMap<&'a str, u32> {
    side.inventory
        .instances()
        .iter()
        .enumerate()
        .map(|(i, instance)| (instance.id.as_str(), i as u32))
        .collect()
}

fn reference(side: &Side<'_>, idx: u32) -> InstanceRef {
    let instance = side.inventory.instance(idx);
    InstanceRef {
        id: instance.id.to_string(),
        name: instance.name.to_string(),
        cloud: instance.cloud,
        image: instance.image.to_string(),
        verdict: side.eval.verdict_of(side.inventory, idx),
    }
}

impl Diff {
    /// What fails `diff --fail-on threshold`, as one line: the instances that reached it or
    /// worse since the old snapshot, added at it or changed to it from a milder verdict, each
    /// with how. `None` when there are none.
    pub fn failure(&self, threshold: Verdict) -> Option<String> {
        let added = self
            .added
            .iter()
            .filter(|i| i.verdict >= threshold)
            .map(|i| format!("{} (added as {})", super::short_id(&i.id), i.verdict));
        let worsened = self
            .verdict_changes
            .iter()
            .filter(|c| c.from < threshold && c.to >= threshold)
            .map(|c| format!("{} ({} -> {})", super::short_id(&c.id), c.from, c.to));
        let meaning = if threshold == Verdict::Flagged {
            "newly flagged".to_owned()
        } else {
            format!("newly {threshold} or worse")
        };
        super::fail_on_line(
            threshold.as_str(),
            &meaning,
            added.chain(worsened).collect(),
        )
    }
}

pub fn diff(old: &Side<'_>, new: &Side<'_>) -> Diff {
    let old_ids = by_id(old);
    let new_ids = by_id(new);
    let mut result = Diff {
        schema_version: crate::snapshot::SCHEMA_VERSION,
        kind: "diff",
        old_taken_at: old.eval.now,
        new_taken_at: new.eval.now,
        old_instances: old_ids.len(),
        new_instances: new_ids.len(),
        added: Vec::new(),
        removed: Vec::new(),
        moved: Vec::new(),
        verdict_changes: Vec::new(),
    };
    for (id, &idx) in &old_ids {
        if !new_ids.contains_key(id) {
            result.removed.push(reference(old, idx));
        }
    }
    for (id, &new_idx) in &new_ids {
        let Some(&old_idx) = old_ids.get(id) else {
            result.added.push(reference(new, new_idx));
            continue;
        };
        let (before, after) = (reference(old, old_idx), reference(new, new_idx));
        if before.image != after.image {
            result.moved.push(Change {
                id: after.id.clone(),
                name: after.name.clone(),
                from: before.image,
                to: after.image,
            });
        }
        if before.verdict != after.verdict {
            result.verdict_changes.push(Change {
                id: after.id,
                name: after.name,
                from: before.verdict,
                to: after.verdict,
            });
        }
    }
    result
}

pub fn write(diff: &Diff, format: DiffFormat, out: &mut dyn Write) -> io::Result<()> {
    match format {
        DiffFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, diff).map_err(io::Error::other)?;
            out.write_all(b"\n")
        }
        DiffFormat::Md => write_markdown(diff, out),
    }
}

fn write_markdown(diff: &Diff, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "# fleetscope diff\n")?;
    writeln!(
        out,
        "{} ({} instances) -> {} ({} instances): {} added, {} removed, {} moved to another image, {} verdict changes.\n",
        diff.old_taken_at.to_rfc3339(),
        diff.old_instances,
        diff.new_taken_at.to_rfc3339(),
        diff.new_instances,
        diff.added.len(),
        diff.removed.len(),
        diff.moved.len(),
        diff.verdict_changes.len()
    )?;
    for (title, rows) in [("Added", &diff.added), ("Removed", &diff.removed)] {
        writeln!(out, "## {title} ({})\n", rows.len())?;
        if rows.is_empty() {
            writeln!(out, "None.\n")?;
            continue;
        }
        writeln!(
            out,
            "| instance | name | cloud | image | verdict |\n|---|---|---|---|---|"
        )?;
        for r in rows {
            writeln!(
                out,
                "| `{}` | {} | {} | `{}` | {} |",
                cell(&r.id),
                cell(&r.name),
                r.cloud,
                cell(&r.image),
                r.verdict
            )?;
        }
        writeln!(out)?;
    }
    writeln!(out, "## Moved to another image ({})\n", diff.moved.len())?;
    if diff.moved.is_empty() {
        writeln!(out, "None.\n")?;
    } else {
        writeln!(out, "| instance | name | from | to |\n|---|---|---|---|")?;
        for c in &diff.moved {
            writeln!(
                out,
                "| `{}` | {} | `{}` | `{}` |",
                cell(&c.id),
                cell(&c.name),
                cell(&c.from),
                cell(&c.to)
            )?;
        }
        writeln!(out)?;
    }
    writeln!(out, "## Verdict changes ({})\n", diff.verdict_changes.len())?;
    if diff.verdict_changes.is_empty() {
        writeln!(out, "None.")?;
    } else {
        writeln!(out, "| instance | name | from | to |\n|---|---|---|---|")?;
        for c in &diff.verdict_changes {
            writeln!(
                out,
                "| `{}` | {} | {} | {} |",
                cell(&c.id),
                cell(&c.name),
                c.from,
                c.to
            )?;
        }
    }
    Ok(())
}
