//! What each command does, wired from the parts: config -> sources -> inventory -> policy -> view.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use color_eyre::eyre::{Result, WrapErr, eyre};

use crate::cli::{Cli, Command, GlobalArgs, QueueAction, RunArgs};
use crate::clouds::{self, Plan};
use crate::config::{self, Config, LoadedConfig};
use crate::core::inventory::Inventory;
use crate::core::model::SourceState;
use crate::core::policy;
use crate::queue::{self, Queue, rollout};
use crate::snapshot;
use crate::views::{diff, report, tui};

pub fn run(cli: Cli) -> Result<ExitCode> {
    if let Ok(dir) = queue::data_dir() {
        crate::log::open(&dir);
    }
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
            fail_on,
        }) => run_diff(&cli.global, &old, &new, format, output.as_deref(), fail_on),
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

/// The plan for this run: the demo, or the configured clouds plus those named on the command line.
pub fn plan(run: &RunArgs, loaded: &LoadedConfig, page_delay: Duration) -> Result<Plan> {
    if run.demo {
        let journal = queue::data_dir()
            .ok()
            .map(|dir| queue::apply::Paths::for_fleet(&dir, true).journal);
        return Ok(Plan::Demo {
            size: run.demo_size,
            seed: run.demo_seed,
            page_delay,
            journal,
        });
    }
    let mut config = loaded.config.clone();
    add_cli_sources(&mut config, run);
    Plan::from_config(&config).map_err(|e| eyre!(e))
}

/// `--aws-profile`s, `--azure-subscription`s and `--gcp-project`s, added to the configured ones.
fn add_cli_sources(config: &mut Config, run: &RunArgs) {
    for profile in &run.aws_profiles {
        if !config.aws.profiles.contains(profile) {
            config.aws.profiles.push(profile.clone());
        }
    }
    for subscription in &run.azure_subscriptions {
        if !config.azure.subscriptions.contains(subscription) {
            config.azure.subscriptions.push(subscription.clone());
        }
    }
    for project in &run.gcp_projects {
        if !config.gcp.projects.contains(project) {
            config.gcp.projects.push(project.clone());
        }
    }
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
    let inventory =
        runtime()?.block_on(clouds::gather(plan, rules, now, |inv| progress.update(inv)));
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
    // A report on part of the fleet never looks clean: it is written, each source that failed
    // or is incomplete gets a line on stderr, and the exit code is 2 unless --allow-partial.
    let partial: Vec<String> = inventory
        .sources()
        .iter()
        .filter_map(|s| {
            let (state, error) = s.state.problem()?;
            Some(format!("{} {state}: {error}", s.name))
        })
        .collect();
    if let Some(path) = &run.save_snapshot {
        snapshot::save(path, &inventory, now)?;
    }
    let inventory = match &run.filter {
        Some(query) => filtered(inventory, query, &loaded, now)?,
        None => inventory,
    };
    let eval = policy::evaluate(&inventory, &loaded.config.policy, now);
    let input = report::ReportInput {
        inventory: &inventory,
        eval: &eval,
        policy: &loaded.config.policy,
        limit: run.limit,
        filter: run.filter.as_deref(),
    };
    write_output(run.output.as_deref(), |out| {
        report::write(run.format, &input, out)
    })?;
    for line in &partial {
        eprintln!("fleetscope: {line}");
    }
    let failing = run.fail_on.is_some_and(|f| f.count(&inventory, &eval) > 0);
    Ok(if !partial.is_empty() && !run.allow_partial {
        ExitCode::from(2)
    } else if failing {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The inventory with only the instances `query` selects, and every image and group: verdicts,
/// golden images and lineages stay what the whole fleet makes them, while counts and lists
/// cover the selection.
fn filtered(
    inventory: Inventory,
    query: &str,
    loaded: &LoadedConfig,
    now: DateTime<Utc>,
) -> Result<Inventory> {
    let parsed = tui::filter::Query::parse(query, tui::app::INSTANCE_FIELDS)
        .map_err(|e| eyre!("--filter: {e}"))?;
    let data = tui::data::Data::new(inventory, &loaded.config.policy, now);
    let selected = tui::app::select_instances(&data, &parsed);
    let whole = &data.inventory;
    let mut kept = Inventory::new(loaded.lineage_rules()?);
    for entry in whole.images() {
        kept.upsert_image(entry.image.clone());
    }
    for group in whole.groups().iter().filter_map(|g| g.group.clone()) {
        kept.upsert_group(group);
    }
    for i in selected {
        kept.upsert_instance(whole.instance(i).clone());
    }
    for status in whole.sources() {
        kept.restore_source(status.clone());
    }
    Ok(kept)
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
    let paths = queue::apply::Paths::for_fleet(&queue::data_dir()?, run.demo);
    // A damaged queue file opens the UI with the queue disabled rather than not at all.
    let (queue, queue_disabled) = match Queue::load(&paths.queue) {
        Ok(queue) => (queue, None),
        Err(error) => (
            Queue::default(),
            Some(format!(
                "queue disabled: {error}; `fleetscope{} queue clear --yes` moves it aside",
                if run.demo { " --demo" } else { "" }
            )),
        ),
    };
    let mut badges = tui::app::Badges {
        demo: run.demo,
        snapshot: None,
        fixed_now: global.now,
    };
    let (plan, inventory, fixed_now) = match &run.snapshot {
        Some(path) => {
            let snapshot = snapshot::load(path)?;
            badges.snapshot = Some(snapshot.taken_at);
            let now = global.now.unwrap_or(snapshot.taken_at);
            (None, snapshot.into_inventory(rules.clone()), Some(now))
        }
        None => (
            Some(plan(run, &loaded, DEMO_PAGE_DELAY)?),
            Inventory::new(rules.clone()),
            global.now,
        ),
    };
    // A snapshot's queue belongs to the configured clouds: its apply re-checks every
    // instance live through their executors.
    let executors = clouds::executors(&queue_fleet(run, &loaded)).into();
    tui::run(tui::Options {
        plan,
        inventory,
        rules,
        policy: loaded.config.policy.clone(),
        fixed_now,
        queue,
        paths,
        executors,
        save_snapshot: run.save_snapshot.clone(),
        rollout: rollout::Settings::from_config(&loaded.config.rollout),
        read_only: run.read_only,
        badges,
        queue_disabled,
        confirm_queue_over: loaded.config.ui.confirm_queue_over,
    })?;
    Ok(ExitCode::SUCCESS)
}

fn run_diff(
    global: &GlobalArgs,
    old: &Path,
    new: &Path,
    format: diff::DiffFormat,
    output: Option<&Path>,
    fail_on: Option<policy::Verdict>,
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
    let failing = fail_on.is_some_and(|v| changes.newly_at_or_above(v) > 0);
    Ok(if failing {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
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
                Err(e) if !is_broken_pipe(&e) => Err(eyre!("cannot write to stdout: {e}")),
                _ => Ok(()),
            }
        }
    }
}

/// Whether a write failed because the reader went away (`| head`), however deep a writer
/// (the CSV one, say) wrapped the I/O error.
fn is_broken_pipe(error: &std::io::Error) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::BrokenPipe {
                return true;
            }
            if let Some(inner) = io.get_ref() {
                current = Some(inner);
                continue;
            }
        }
        if let Some(csv) = e.downcast_ref::<::csv::Error>()
            && let ::csv::ErrorKind::Io(io) = csv.kind()
        {
            return io.kind() == std::io::ErrorKind::BrokenPipe;
        }
        current = e.source();
    }
    false
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
                SourceState::Incomplete { error } => {
                    bar.abandon_with_message(format!("incomplete: {error}"))
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

/// The fleet a queue command acts on: the demo's, or the configured clouds'.
fn queue_fleet(run: &RunArgs, loaded: &LoadedConfig) -> Plan {
    if run.demo {
        return Plan::Demo {
            size: run.demo_size,
            seed: run.demo_seed,
            page_delay: Duration::ZERO,
            journal: None,
        };
    }
    let mut config = loaded.config.clone();
    add_cli_sources(&mut config, run);
    Plan::Clouds(Box::new(config))
}

fn run_queue(global: &GlobalArgs, run: &RunArgs, action: QueueAction) -> Result<ExitCode> {
    let paths = queue::apply::Paths::for_fleet(&queue::data_dir()?, run.demo);
    let path = paths.queue.clone();
    if let QueueAction::Clear { yes } = action {
        return clear_queue(&path, yes);
    }
    let queue = Queue::load(&path)?;
    match action {
        QueueAction::Apply { dry_run, yes } => {
            apply_queue(global, run, &paths, &queue, dry_run, yes)
        }
        QueueAction::List => {
            write_output(None, |out| queue::report::write_table(&queue, out))?;
            Ok(ExitCode::SUCCESS)
        }
        QueueAction::Export { format, output } => {
            write_output(output.as_deref(), |out| {
                queue::report::export(&queue, format, out)
            })?;
            Ok(ExitCode::SUCCESS)
        }
        QueueAction::Clear { .. } => unreachable!("handled above"),
    }
}

fn clear_queue(path: &Path, yes: bool) -> Result<ExitCode> {
    let count = match Queue::load(path) {
        Ok(queue) => queue.entries.len(),
        // A file that cannot be read must not lock anyone out: it goes aside, kept for a look.
        Err(error) => {
            if !yes && !confirm(&format!("{error}. Move it aside and start an empty queue?"))? {
                eprintln!("Queue left as it was.");
                return Ok(ExitCode::SUCCESS);
            }
            let aside = Queue::move_aside(path)?;
            eprintln!(
                "Moved the damaged queue to {}; the queue is empty.",
                aside.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
    };
    if !yes
        && !confirm(&format!(
            "Remove all {count} queued instances from the queue?"
        ))?
    {
        eprintln!("Queue left as it was.");
        return Ok(ExitCode::SUCCESS);
    }
    let (_, removed) = Queue::update(path, |queue| {
        let removed = queue.entries.len();
        queue.entries.clear();
        removed
    })?;
    eprintln!("Removed {removed} instances from the queue.");
    Ok(ExitCode::SUCCESS)
}

/// `queue apply`: the rollout plan, a typed confirmation, then the rollout with its progress.
fn apply_queue(
    global: &GlobalArgs,
    run: &RunArgs,
    paths: &queue::apply::Paths,
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
    let queued: Vec<String> = queue.applicable().map(|e| e.instance_id.clone()).collect();
    if queued.is_empty() {
        eprintln!("Nothing to apply: no queued instance has a strategy fleetscope can execute.");
        return Ok(ExitCode::SUCCESS);
    }
    let executors = clouds::executors(&queue_fleet(run, &loaded));
    let settings = rollout::Settings::from_config(&loaded.config.rollout);
    let runtime = runtime()?;
    let plan = runtime.block_on(rollout::plan(queue, &queued, executors.as_ref(), &settings));
    eprint!("{}", plan.describe());
    let count = plan.entries();
    rollout::journal_unchecked(paths, &plan.unchecked, dry_run)?;
    let unchecked = match plan.unchecked.first() {
        Some((entry, error)) => Some(eyre!(
            "{} queued entries could not be checked and stay queued ({}: {error}); the journal is {}",
            plan.unchecked.len(),
            entry.instance_id,
            paths.journal.display()
        )),
        None => None,
    };
    if count == 0 {
        return match unchecked {
            Some(error) => Err(error),
            None => {
                eprintln!("Nothing to apply: every confirmed entry is left queued (see above).");
                Ok(ExitCode::SUCCESS)
            }
        };
    }
    if !dry_run && !yes {
        let phrase = format!("replace {count}");
        let answer = ask(&format!(
            "This replaces {count} instances in {} waves, terminating each old one once its replacement is healthy. Type \"{phrase}\" to go on:",
            plan.waves.len()
        ))?;
        if answer.trim() != phrase {
            eprintln!("Nothing was changed.");
            return Ok(ExitCode::SUCCESS);
        }
    }
    let confirmed: Vec<String> = plan
        .waves
        .iter()
        .flatten()
        .map(|p| p.entry.instance_id.clone())
        .collect();
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let (events, mut watch) = tokio::sync::mpsc::unbounded_channel();
    let summary = runtime.block_on(async {
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("Stopping: replacements in flight finish, nothing new starts (Ctrl-C again quits at once; the next apply resumes).");
                let _ = stop_tx.send(true);
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
        let mut progress = ApplyProgress::new(std::io::stderr().is_terminal(), count);
        let rollout = rollout::run(
            rollout::Request {
                paths,
                confirmed: &confirmed,
                settings: &settings,
                dry_run,
                stop,
                events,
            },
            executors.as_ref(),
        );
        tokio::pin!(rollout);
        loop {
            tokio::select! {
                Some(event) = watch.recv() => progress.show(&event),
                outcome = &mut rollout => {
                    while let Ok(event) = watch.try_recv() {
                        progress.show(&event);
                    }
                    progress.finish();
                    break outcome;
                }
            }
        }
    })?;
    eprintln!("{summary}");
    if let Some(error) = unchecked {
        return Err(error);
    }
    if summary.failed > 0 || summary.stopped.is_some() {
        let mut why = Vec::new();
        if summary.failed > 0 {
            why.push(format!("{} failed and stay queued", summary.failed));
        }
        if summary.not_started > 0 {
            why.push(format!(
                "{} were never started and stay queued",
                summary.not_started
            ));
        }
        return Err(eyre!(
            "the rollout stopped: {}; the journal is {}",
            why.join(", "),
            paths.journal.display()
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// A rollout's progress: a bar on a terminal, one line per step otherwise.
struct ApplyProgress {
    bar: Option<indicatif::ProgressBar>,
    done: u64,
}

impl ApplyProgress {
    fn new(terminal: bool, total: usize) -> ApplyProgress {
        let bar = terminal.then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        ApplyProgress { bar, done: 0 }
    }

    fn line(&self, text: String) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    fn show(&mut self, event: &rollout::RolloutEvent) {
        match event {
            rollout::RolloutEvent::Planned(_) => {}
            rollout::RolloutEvent::WaveStarted { wave, of } => {
                if let Some(bar) = &self.bar {
                    bar.set_message(format!("wave {wave} of {of}"));
                }
                self.line(format!("wave {wave} of {of}"));
            }
            rollout::RolloutEvent::Phase { instance_id, phase } => {
                if phase.is_done() {
                    self.done += 1;
                    if let Some(bar) = &self.bar {
                        bar.set_position(self.done);
                    }
                }
                if self.bar.is_none() || phase.is_done() {
                    self.line(format!("{instance_id}: {phase}"));
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
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
