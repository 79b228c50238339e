//! The change-review report: summary first, then what needs doing, worst first.

use std::io::{self, Write};

use super::{ReportInput, timestamp};
use crate::core::model::{Cloud, SourceState};
use crate::core::policy::{TemplateStatus, Verdict, VerdictCounts};

use crate::text::table_cell as cell;

fn opt_days(days: Option<i64>) -> String {
    days.map_or_else(|| "?".to_owned(), |d| d.to_string())
}

pub fn write(input: &ReportInput<'_>, out: &mut dyn Write) -> io::Result<()> {
    let inv = input.inventory;
    let eval = input.eval;
    let policy = input.policy;
    let images_in_use = input.images_in_use();
    let lineages = input.lineages_in_use();
    writeln!(out, "# fleetscope report\n")?;
    writeln!(
        out,
        "Evaluated at {} · {} instances · {} images in use · {} lineages · {} sources ({} failed{})\n",
        timestamp(eval.now),
        inv.instances().len(),
        images_in_use.len(),
        lineages.len(),
        inv.sources().len(),
        input.failed_sources(),
        match input.incomplete_sources() {
            0 => String::new(),
            n => format!(", {n} incomplete"),
        },
    )?;
    if let Some(filter) = input.filter {
        writeln!(
            out,
            "Filter: `{}`: only the instances it selects are counted and listed.\n",
            crate::text::escape(filter).replace('`', "'")
        )?;
    }
    writeln!(
        out,
        "Policy: images older than {} days are stale; instances older than {} days are long-lived; flag tags: {}.\n",
        policy.max_image_age_days,
        policy.max_instance_age_days,
        if policy.flag_tags.is_empty() {
            "none".to_owned()
        } else {
            crate::text::escape(&policy.flag_tags.join(", ")).into_owned()
        },
    )?;
    if !policy.trusted_owners.is_empty() {
        writeln!(
            out,
            "Trusted image owners: {}; an image from any other owner is untrusted-source.\n",
            crate::text::escape(&policy.trusted_owners.join(", "))
        )?;
    }

    writeln!(out, "## Summary\n")?;
    writeln!(
        out,
        "| cloud | flagged | unknown | outdated | stale | current | total | long-lived | exposed |"
    )?;
    writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")?;
    let exposed = input.exposed_instances();
    let exposed_in = |cloud: Option<Cloud>| {
        exposed
            .iter()
            .filter(|&&i| cloud.is_none_or(|c| inv.instance(i).cloud == c))
            .count()
    };
    let summary_row = |out: &mut dyn Write, label: &str, c: &VerdictCounts, exposed: usize| {
        writeln!(
            out,
            "| {label} | {} | {} | {} | {} | {} | {} | {} | {exposed} |",
            c.flagged,
            c.unknown,
            c.outdated,
            c.stale,
            c.current,
            c.total(),
            c.long_lived
        )
    };
    for cloud in Cloud::ALL {
        if let Some(counts) = eval.by_cloud.get(&cloud) {
            summary_row(out, cloud.as_str(), counts, exposed_in(Some(cloud)))?;
        }
    }
    summary_row(out, "**all**", &eval.total, exposed_in(None))?;

    writeln!(out, "\n## Images in use ({})\n", images_in_use.len())?;
    writeln!(
        out,
        "| image | cloud | name | lineage | age (days) | instances | verdict | why |"
    )?;
    writeln!(out, "|---|---|---|---|---:|---:|---|---|")?;
    for &image in &images_in_use {
        let entry = inv.image(image);
        let ie = &eval.images[image as usize];
        writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {} | {} | {} |",
            cell(&entry.image.key),
            entry.image.cloud,
            cell(&entry.image.name),
            cell(input.lineage_name(image)),
            opt_days(ie.age_days),
            entry.instances.len(),
            ie.verdict,
            cell(&ie.reasons.join("; ")),
        )?;
    }

    writeln!(out, "\n## Lineages ({})\n", lineages.len())?;
    writeln!(
        out,
        "| lineage | golden image | golden age (days) | instances | not on golden | most behind | lagging since |"
    )?;
    writeln!(out, "|---|---|---:|---:|---:|---:|---|")?;
    for &lineage in &lineages {
        let le = &eval.lineages[lineage as usize];
        let golden = match le.golden {
            Some(g) => {
                let pin = if le.pinned { " (pinned)" } else { "" };
                format!("{}{pin}", cell(input.image_label(g)))
            }
            None => format!("none: {}", cell(le.warning.as_deref().unwrap_or(""))),
        };
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            cell(&inv.lineage(lineage).name),
            golden,
            opt_days(le.golden.and_then(|g| eval.images[g as usize].age_days)),
            le.instances,
            le.lagging_instances,
            le.max_behind_by,
            le.lagging_since
                .map_or_else(|| "-".to_owned(), |t| t.format("%Y-%m-%d").to_string()),
        )?;
    }

    let findings: Vec<_> = input
        .groups()
        .into_iter()
        .filter(|&g| eval.groups[g as usize].skew() || eval.groups[g as usize].drift())
        .collect();
    writeln!(
        out,
        "\n## Groups with skew or template drift ({})\n",
        findings.len()
    )?;
    if findings.is_empty() {
        writeln!(out, "None.")?;
    } else {
        writeln!(
            out,
            "| group | cloud | kind | members | images | template points at | golden |"
        )?;
        writeln!(out, "|---|---|---|---:|---:|---|---|")?;
        for g in findings {
            let entry = inv.group(g);
            let ge = &eval.groups[g as usize];
            let (kind, cloud, name) = match &entry.group {
                Some(group) => (
                    group.kind.as_str(),
                    group.cloud.as_str(),
                    group.name.as_str(),
                ),
                None => ("?", "?", entry.key.as_str()),
            };
            let (points_at, golden) = match &ge.template {
                TemplateStatus::Drift { points_at, golden } => (
                    format!("`{}` (drift)", cell(points_at)),
                    golden
                        .as_deref()
                        .map_or("none".to_owned(), |g| format!("`{}`", cell(g))),
                ),
                TemplateStatus::Golden => ("golden".to_owned(), "-".to_owned()),
                TemplateStatus::Unresolved => ("unresolved".to_owned(), "-".to_owned()),
            };
            writeln!(
                out,
                "| {} | {cloud} | {kind} | {} | {} | {points_at} | {golden} |",
                cell(name),
                entry.members.len(),
                ge.images.len(),
            )?;
        }
    }

    let non_current: Vec<_> = input
        .instances_by_severity()
        .into_iter()
        .filter(|&i| eval.verdict_of(inv, i) != Verdict::Current)
        .collect();
    let shown = input.limit.unwrap_or(usize::MAX).min(non_current.len());
    writeln!(out, "\n## Non-current instances ({})\n", non_current.len())?;
    if non_current.is_empty() {
        writeln!(out, "None.")?;
    } else {
        writeln!(
            out,
            "| instance | name | cloud | account | region | group | image | image age (days) | verdict | behind by | why |"
        )?;
        writeln!(out, "|---|---|---|---|---|---|---|---:|---|---:|---|")?;
        for &i in &non_current[..shown] {
            let instance = inv.instance(i);
            let image = inv.image_of(i);
            let ie = &eval.images[image as usize];
            let group = inv
                .group_of(i)
                .map(|g| inv.group(g))
                .map_or(String::new(), |g| {
                    g.group.as_ref().map_or(g.key.clone(), |d| d.name.clone())
                });
            let mut why = ie.reasons.join("; ");
            if eval.long_lived[i as usize] {
                why.push_str("; long-lived");
            }
            if !instance.exposure.is_empty() {
                why.push_str("; exposed");
            }
            if ie.untrusted_source {
                why.push_str("; untrusted-source");
            }
            writeln!(
                out,
                "| `{}` | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                cell(&instance.id),
                cell(&instance.name),
                instance.cloud,
                cell(&instance.account),
                cell(&instance.region),
                cell(&group),
                cell(input.image_label(image)),
                opt_days(ie.age_days),
                ie.verdict,
                ie.behind_by,
                cell(&why),
            )?;
        }
        if shown < non_current.len() {
            writeln!(
                out,
                "\n{} more non-current instances left out (--limit {shown}); the JSON and CSV reports list them all.",
                non_current.len() - shown
            )?;
        }
    }

    // Whatever their verdict: a current image does not close an open port.
    let shown = input.limit.unwrap_or(usize::MAX).min(exposed.len());
    writeln!(out, "\n## Exposed instances ({})\n", exposed.len())?;
    if exposed.is_empty() {
        writeln!(out, "None.")?;
    } else {
        writeln!(
            out,
            "| instance | name | cloud | account | region | verdict | exposure |"
        )?;
        writeln!(out, "|---|---|---|---|---|---|---|")?;
        for &i in &exposed[..shown] {
            let instance = inv.instance(i);
            writeln!(
                out,
                "| `{}` | {} | {} | {} | {} | {} | {} |",
                cell(&instance.id),
                cell(&instance.name),
                instance.cloud,
                cell(&instance.account),
                cell(&instance.region),
                eval.verdict_of(inv, i),
                cell(&instance.exposure.join("; ")),
            )?;
        }
        if shown < exposed.len() {
            writeln!(
                out,
                "\n{} more exposed instances left out (--limit {shown}); the JSON and CSV reports list them all.",
                exposed.len() - shown
            )?;
        }
    }

    // Only when the policy names trusted owners: without them every owner is trusted.
    if !policy.trusted_owners.is_empty() {
        let untrusted = input.untrusted_images();
        writeln!(out, "\n## Untrusted image sources ({})\n", untrusted.len())?;
        if untrusted.is_empty() {
            writeln!(out, "None: every image in use comes from a trusted owner.")?;
        } else {
            writeln!(
                out,
                "| image | cloud | name | owner | instances | verdict |"
            )?;
            writeln!(out, "|---|---|---|---|---:|---|")?;
            for &image in &untrusted {
                let entry = inv.image(image);
                writeln!(
                    out,
                    "| `{}` | {} | {} | {} | {} | {} |",
                    cell(&entry.image.key),
                    entry.image.cloud,
                    cell(&entry.image.name),
                    cell(&crate::core::policy::owner_label(&entry.image)),
                    entry.instances.len(),
                    eval.images[image as usize].verdict,
                )?;
            }
        }
    }

    writeln!(out, "\n## Sources ({})\n", inv.sources().len())?;
    writeln!(
        out,
        "| source | cloud | state | pages | instances | problems |"
    )?;
    writeln!(out, "|---|---|---|---:|---:|---|")?;
    let mut sources: Vec<_> = inv.sources().iter().collect();
    sources.sort_by(|a, b| a.name.cmp(&b.name));
    for source in sources {
        let (state, mut problems) = match &source.state {
            SourceState::Waiting | SourceState::Collecting => ("incomplete", Vec::new()),
            SourceState::Skipped { reason } => ("skipped", vec![reason.clone()]),
            SourceState::Done => ("done", Vec::new()),
            SourceState::Incomplete { error } => ("**incomplete**", vec![error.clone()]),
            SourceState::Failed { error } => ("**failed**", vec![error.clone()]),
        };
        problems.extend(source.warnings.iter().cloned());
        writeln!(
            out,
            "| {} | {} | {state} | {} | {} | {} |",
            cell(&source.name),
            source.cloud,
            source.pages,
            source.instances,
            cell(&problems.join("; ")),
        )?;
    }
    Ok(())
}
