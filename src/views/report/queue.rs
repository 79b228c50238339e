//! The queue as people read it: a table for the terminal, markdown or JSON for review.

use std::io::{self, Write};

use crate::queue::{Queue, Strategy};
use crate::text::{escape, table_cell as cell};
use crate::views::diff::DiffFormat;

/// The queue as a table; `failures` gives the last error of entries whose last attempt failed.
pub fn write_table(
    queue: &Queue,
    failures: &std::collections::HashMap<&str, &str>,
    out: &mut dyn Write,
) -> io::Result<()> {
    if queue.entries.is_empty() {
        return writeln!(out, "The queue is empty.");
    }
    let executable = queue
        .entries
        .iter()
        .filter(|e| e.strategy.executable())
        .count();
    writeln!(
        out,
        "{} queued, {executable} executable, {} not executable",
        queue.entries.len(),
        queue.entries.len() - executable
    )?;
    writeln!(
        out,
        "{:<22} {:<6} {:<24} {:<9} {:<28} TARGET",
        "INSTANCE", "CLOUD", "NAME", "VERDICT", "STRATEGY"
    )?;
    for entry in &queue.entries {
        writeln!(
            out,
            "{:<22} {:<6} {:<24} {:<9} {:<28} {}",
            escape(short_id(&entry.instance_id)),
            entry.cloud.as_str(),
            escape(&entry.name),
            entry.verdict.as_str(),
            entry.strategy.label(),
            escape(entry.target_image.as_deref().unwrap_or("-")),
        )?;
        if let Strategy::NotExecutable { why } = &entry.strategy {
            writeln!(out, "{:<22} why: {}", "", escape(why))?;
        }
        if let Some(error) = failures.get(entry.instance_id.as_str()) {
            writeln!(out, "{:<22} last attempt failed: {}", "", escape(error))?;
        }
    }
    Ok(())
}

/// Azure ids are whole resource paths; the last segment is what people recognise.
fn short_id(id: &str) -> &str {
    if id.starts_with('/') {
        id.rsplit('/').next().unwrap_or(id)
    } else {
        id
    }
}

pub fn export(queue: &Queue, format: DiffFormat, out: &mut dyn Write) -> io::Result<()> {
    match format {
        DiffFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, queue).map_err(io::Error::other)?;
            out.write_all(b"\n")
        }
        DiffFormat::Md => {
            writeln!(out, "# fleetscope replacement plan\n")?;
            writeln!(out, "{} instances queued.\n", queue.entries.len())?;
            writeln!(
                out,
                "| instance | name | cloud | account | region | image | target | verdict | strategy | reason |"
            )?;
            writeln!(out, "|---|---|---|---|---|---|---|---|---|---|")?;
            for e in &queue.entries {
                writeln!(
                    out,
                    "| `{}` | {} | {} | {} | {} | `{}` | {} | {} | {} | {} |",
                    cell(&e.instance_id),
                    cell(&e.name),
                    e.cloud,
                    cell(&e.account),
                    cell(&e.region),
                    cell(&e.image),
                    e.target_image
                        .as_deref()
                        .map_or("-".to_owned(), |t| format!("`{}`", cell(t))),
                    e.verdict,
                    cell(&e.strategy.describe()),
                    cell(&e.reason),
                )?;
            }
            Ok(())
        }
    }
}
