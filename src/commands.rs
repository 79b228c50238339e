//! What each command does, wired from the parts: config -> sources -> inventory -> policy -> view.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use color_eyre::eyre::{Result, WrapErr, eyre};

use crate::cli::{Cli, Command, GlobalArgs, QueueAction, RunArgs};
use crate::config::{self, LoadedConfig};
use crate::core::inventory::Inventory;
use crate::core::model::SourceState;
use crate::core::policy;
use crate::queue::{self, Queue};
use crate::snapshot;
use crate::sources::{self, Plan};
use crate::views::{diff, report, tui};

pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Some(Command::Config) => {
            let loaded = load_config(&cli.global)?;
            print!("{}", loaded.explain());
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Diff {
            old,
            new,
            format,
            output,
        }) => run_diff(&cli.global, &old, &new, format, output.as_deref()),
        Some(Command::Queue { action }) => run_queue(&cli.global, &cli.run, action),
        None if cli.run.report => run_report(&cli.global, &cli.run),
        None => run_tui(&cli.global, &cli.run),
    }
}

fn load_config(global: &GlobalArgs) -> Result<LoadedConfig> {
    Ok(config::load(global.config.as_deref(), std::env::vars())?)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .wrap_err("cannot start the async runtime")
}

/// The plan for this run: the demo, or the configured clouds plus `--aws-profile`s.
pub fn plan(run: &RunArgs, loaded: &LoadedConfig, page_delay: Duration) -> Result<Plan> {
    if run.demo {
        return Ok(Plan::Demo {
            size: run.demo_size,
            seed: run.demo_seed,
            page_delay,
        });
    }
    let mut config = loaded.config.clone();
    for profile in &run.aws_profiles {
        if !config.aws.profiles.contains(profile) {
            config.aws.profiles.push(profile.clone());
        }
    }
    Plan::from_config(&config).map_err(|e| eyre!(e))
}

/// The inventory to evaluate and the time to evaluate it at.
fn inventory_for(
    global: &GlobalArgs,
    run: &RunArgs,
    loaded: &LoadedConfig,
) -> Result<(Inventory, DateTime<Utc>)> {
    let rules = loaded.lineage_rules()?;
    if let Some(path) = &run.snapshot {
        let snapshot = snapshot::load(path)?;
        // A snapshot is judged as of when it was taken, unless --now says otherwise.
        let now = global.now.unwrap_or(snapshot.taken_at);
        return Ok((snapshot.into_inventory(rules), now));
    }
    let now = global.now.unwrap_or_else(|| Utc::now().trunc_subsecs(0));
    let plan = plan(run, loaded, Duration::ZERO)?;
    let mut progress = Progress::new(std::io::stderr().is_terminal());
    let inventory = runtime()?.block_on(sources::gather(plan, rules, now, |inv| {
        progress.update(inv)
    }));
    progress.finish();
    Ok((inventory, now))
}

fn run_report(global: &GlobalArgs, run: &RunArgs) -> Result<ExitCode> {
    let loaded = load_config(global)?;
    let (inventory, now) = inventory_for(global, run, &loaded)?;
    let all_failed = !inventory.sources().is_empty()
        && inventory
            .sources()
            .iter()
            .all(|s| matches!(s.state, SourceState::Failed { .. }));
    if all_failed && inventory.instances().is_empty() {
        let errors: Vec<String> = inventory
            .sources()
            .iter()
            .filter_map(|s| match &s.state {
                SourceState::Failed { error } => Some(format!("{}: {error}", s.name)),
                _ => None,
            })
            .collect();
        return Err(eyre!("nothing could be collected: {}", errors.join("; ")));
    }
    if let Some(path) = &run.save_snapshot {
        snapshot::save(path, &inventory, now)?;
    }
    let eval = policy::evaluate(&inventory, &loaded.config.policy, now);
    let input = report::ReportInput {
        inventory: &inventory,
        eval: &eval,
        policy: &loaded.config.policy,
        limit: run.limit,
    };
    write_output(run.output.as_deref(), |out| {
        report::write(run.format, &input, out)
    })?;
    let failing = run.fail_on.is_some_and(|t| eval.total.at_or_above(t) > 0);
    Ok(if failing {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Pause between a demo page and the next, so the UI shows collection progressing.
const DEMO_PAGE_DELAY: Duration = Duration::from_millis(20);

fn run_tui(global: &GlobalArgs, run: &RunArgs) -> Result<ExitCode> {
    if !std::io::stdout().is_terminal() {
        return Err(eyre!(
            "the interactive view needs a terminal on stdout; use --report for a file or a pipe"
        ));
    }
    let loaded = load_config(global)?;
    let rules = loaded.lineage_rules()?;
    let data_dir = queue::data_dir()?;
    let queue = Queue::load(&queue::apply::Paths::in_dir(&data_dir).queue)?;
    let (plan, inventory, fixed_now) = match &run.snapshot {
        Some(path) => {
            let snapshot = snapshot::load(path)?;
            let now = global.now.unwrap_or(snapshot.taken_at);
            (None, snapshot.into_inventory(rules.clone()), Some(now))
        }
        None => (
            Some(plan(run, &loaded, DEMO_PAGE_DELAY)?),
            Inventory::new(rules.clone()),
            global.now,
        ),
    };
    tui::run(tui::Options {
        plan,
        inventory,
        rules,
        policy: loaded.config.policy.clone(),
        fixed_now,
        queue,
        data_dir,
        save_snapshot: run.save_snapshot.clone(),
        config: loaded.config.clone(),
        read_only: run.read_only,
    })?;
    Ok(ExitCode::SUCCESS)
}

fn run_diff(
    global: &GlobalArgs,
    old: &Path,
    new: &Path,
    format: diff::DiffFormat,
    output: Option<&Path>,
) -> Result<ExitCode> {
    let loaded = load_config(global)?;
    let rules = loaded.lineage_rules()?;
    let old = snapshot::load(old)?;
    let new = snapshot::load(new)?;
    let (old_now, new_now) = (old.taken_at, new.taken_at);
    let old_inventory = old.into_inventory(rules.clone());
    let new_inventory = new.into_inventory(rules);
    let old_eval = policy::evaluate(&old_inventory, &loaded.config.policy, old_now);
    let new_eval = policy::evaluate(&new_inventory, &loaded.config.policy, new_now);
    let changes = diff::diff(
        &diff::Side {
            inventory: &old_inventory,
            eval: &old_eval,
        },
        &diff::Side {
            inventory: &new_inventory,
            eval: &new_eval,
        },
    );
    write_output(output, |out| diff::write(&changes, format, out))?;
    Ok(ExitCode::SUCCESS)
}

/// To a file atomically, or to stdout; a closed pipe (`| head`) is not an error.
fn write_output(
    path: Option<&Path>,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    match path {
        Some(path) => snapshot::write_atomic(path, write)
            .wrap_err_with(|| format!("{}: cannot write", path.display())),
        None => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            match write(&mut out).and_then(|()| out.flush()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    Err(eyre!("cannot write to stdout: {e}"))
                }
                _ => Ok(()),
            }
        }
    }
}

/// One progress bar per source on stderr, only when a person is watching.
struct Progress {
    bars: Option<(
        indicatif::MultiProgress,
        HashMap<String, indicatif::ProgressBar>,
    )>,
}

impl Progress {
    fn new(enabled: bool) -> Progress {
        Progress {
            bars: enabled.then(|| (indicatif::MultiProgress::new(), HashMap::new())),
        }
    }

    fn update(&mut self, inventory: &Inventory) {
        let Some((multi, bars)) = &mut self.bars else {
            return;
        };
        for source in inventory.sources() {
            let bar = bars.entry(source.name.clone()).or_insert_with(|| {
                let bar = multi.add(indicatif::ProgressBar::new(u64::from(
                    source.expected_pages.unwrap_or(0),
                )));
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{prefix:>18} {bar:30} {pos}/{len} pages {msg}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                bar.set_prefix(source.name.clone());
                bar
            });
            bar.set_position(u64::from(source.pages));
            match &source.state {
                SourceState::Collecting => {
                    bar.set_message(format!("{} instances", source.instances))
                }
                SourceState::Done => {
                    bar.finish_with_message(format!("{} instances, done", source.instances))
                }
                SourceState::Failed { error } => {
                    bar.abandon_with_message(format!("failed: {error}"))
                }
            }
        }
    }

    fn finish(self) {
        if let Some((multi, _)) = self.bars {
            let _ = multi.clear();
        }
    }
}

fn run_queue(global: &GlobalArgs, run: &RunArgs, action: QueueAction) -> Result<ExitCode> {
    let path = queue::default_path()?;
    let queue = Queue::load(&path)?;
    match action {
        QueueAction::Apply { dry_run, yes } => {
            return apply_queue(global, run, &queue, dry_run, yes);
        }
        QueueAction::List => {
            write_output(None, |out| queue::report::write_table(&queue, out))?;
        }
        QueueAction::Export { format, output } => {
            write_output(output.as_deref(), |out| {
                queue::report::export(&queue, format, out)
            })?;
        }
        QueueAction::Clear { yes } => {
            let count = queue.entries.len();
            if count > 0
                && !yes
                && !confirm(&format!(
                    "Remove all {count} queued instances from the queue?"
                ))?
            {
                eprintln!("Queue left as it was.");
                return Ok(ExitCode::SUCCESS);
            }
            let (_, removed) = Queue::update(&path, |queue| {
                let removed = queue.entries.len();
                queue.entries.clear();
                removed
            })?;
            eprintln!("Removed {removed} instances from the queue.");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `queue apply`: the plan, a typed confirmation, then each replacement as it ends.
fn apply_queue(
    global: &GlobalArgs,
    run: &RunArgs,
    queue: &Queue,
    dry_run: bool,
    yes: bool,
) -> Result<ExitCode> {
    if run.read_only && !dry_run {
        return Err(eyre!(
            "--read-only: applying the queue is refused (--dry-run changes nothing and is allowed)"
        ));
    }
    let loaded = load_config(global)?;
    let confirmed: Vec<String> = queue.applicable().map(|e| e.instance_id.clone()).collect();
    let executable = confirmed.len();
    if executable == 0 {
        eprintln!(
            "Nothing to apply: no queued instance has a strategy this fleetscope can execute."
        );
        return Ok(ExitCode::SUCCESS);
    }
    write_output(None, |out| queue::report::write_table(queue, out))?;
    if !dry_run && !yes {
        let phrase = format!("replace {executable}");
        let answer = ask(&format!(
            "This terminates {executable} instances after their replacements are in place. Type \"{phrase}\" to go on:"
        ))?;
        if answer.trim() != phrase {
            eprintln!("Nothing was changed.");
            return Ok(ExitCode::SUCCESS);
        }
    }
    let paths = queue::apply::Paths::in_dir(&queue::data_dir()?);
    let mut aws = queue::apply::aws_executor(&loaded.config);
    let summary = runtime()?.block_on(queue::apply::apply(
        &paths,
        &confirmed,
        aws.as_mut(),
        dry_run,
        |entry, outcome| eprintln!("{}: {outcome}", entry.instance_id),
    ))?;
    eprintln!("{summary}");
    if summary.failed > 0 {
        return Err(eyre!(
            "{} of the replacements failed and stay queued; the journal is {}",
            summary.failed,
            paths.journal.display()
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// A line typed on the terminal; without one there is nobody to ask.
fn ask(question: &str) -> Result<String> {
    if !std::io::stdin().is_terminal() {
        return Err(eyre!("{question} No terminal to ask on: pass --yes"));
    }
    eprint!("{question} ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(answer)
}

/// Asks on the terminal; without one, the answer is no (pass --yes in scripts).
fn confirm(question: &str) -> Result<bool> {
    let answer = ask(&format!("{question} [y/N]"))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
