//! What each command does, wired from the parts: config -> sources -> inventory -> policy -> view.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use color_eyre::eyre::{Result, WrapErr, eyre};

use crate::cli::{Cli, Command, GlobalArgs, QueueAction, RunArgs, ServeArgs};
use crate::clouds::{self, Plan};
use crate::config::{self, Config, LoadedConfig};
use crate::core::inventory::{InstanceIdx, Inventory};
use crate::core::model::SourceState;
use crate::core::policy;
use crate::queue::{self, Queue, rollout};
use crate::snapshot::{self, Location};
use crate::views::{diff, report, serve, tui};

pub fn run(cli: Cli) -> Result<ExitCode> {
    if let Ok(dir) = queue::data_dir() {
        crate::log::open(&dir);
    }
    match cli.command {
        Some(Command::Config) => {
            let loaded = load_config(&cli.global)?;
            // Values come from files and the environment: escaped line by line.
            write_output(None, |out| {
                for line in loaded.explain().lines() {
                    writeln!(out, "{}", crate::text::escape(line))?;
                }
                Ok(())
            })?;
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
        Some(Command::Serve(args)) => run_serve(&cli.global, &cli.run, &args),
        None if cli.run.report => run_report(&cli.global, &cli.run),
        None => run_tui(&cli.global, &cli.run),
    }
}

fn load_config(global: &GlobalArgs) -> Result<LoadedConfig> {
    Ok(config::load(global.config.as_deref(), std::env::vars())?)
}

/// The bearer token of `--token-file`, if one is given.
fn token(global: &GlobalArgs) -> Result<Option<String>> {
    global
        .token_file
        .as_deref()
        .map(crate::remote::read_token)
        .transpose()
        .map_err(|e| eyre!(e))
}

/// A snapshot from a file or a URL, within the config's limits.
fn load_snapshot(
    global: &GlobalArgs,
    loaded: &LoadedConfig,
    location: &Location,
) -> Result<snapshot::SnapshotIn> {
    // The token is read only for a URL: a file needs none, and a bad token file must not
    // stop a run that never sends it.
    let token = match location {
        Location::Url(_) => token(global)?,
        Location::File(_) => None,
    };
    Ok(snapshot::load_from(
        location,
        &loaded.config.limits.fetch(token),
    )?)
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

/// The sources named on the command line, added to the configured ones.
fn add_cli_sources(config: &mut Config, run: &RunArgs) {
    fn add(to: &mut Vec<String>, more: &[String]) {
        for name in more {
            if !to.contains(name) {
                to.push(name.clone());
            }
        }
    }
    add(&mut config.aws.profiles, &run.aws_profiles);
    add(&mut config.azure.subscriptions, &run.azure_subscriptions);
    add(
        &mut config.azure.management_groups,
        &run.azure_management_groups,
    );
    add(&mut config.gcp.projects, &run.gcp_projects);
    add(&mut config.gcp.folders, &run.gcp_folders);
    add(&mut config.gcp.organizations, &run.gcp_organizations);
    config.aws.organization.enabled |= run.aws_org;
}

/// The inventory to evaluate and the time to evaluate it at.
fn inventory_for(
    global: &GlobalArgs,
    run: &RunArgs,
    loaded: &LoadedConfig,
) -> Result<(Inventory, DateTime<Utc>)> {
    inventory_from(global, run, loaded, run.snapshot.as_ref())
}

/// The inventory from this snapshot, or collected from the run's sources.
fn inventory_from(
    global: &GlobalArgs,
    run: &RunArgs,
    loaded: &LoadedConfig,
    snapshot: Option<&Location>,
) -> Result<(Inventory, DateTime<Utc>)> {
    let rules = loaded.lineage_rules()?;
    if let Some(location) = snapshot {
        let snapshot = load_snapshot(global, loaded, location)?;
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
        eprintln!("fleetscope: {}", crate::text::escape(line));
    }
    // A partial fleet is never a clean answer: exit 2 whatever the findings, unless asked.
    let findings = fail_on_exit(run.fail_on.and_then(|f| f.failure(&input)));
    Ok(if !partial.is_empty() && !run.allow_partial {
        ExitCode::from(2)
    } else {
        findings
    })
}

/// Exit 1 with why on stderr when `--fail-on` found something, else 0.
fn fail_on_exit(failure: Option<String>) -> ExitCode {
    match failure {
        Some(line) => {
            eprintln!("fleetscope: {}", crate::text::escape(&line));
            ExitCode::from(1)
        }
        None => ExitCode::SUCCESS,
    }
}

/// The inventory with only the instances `query` selects, every image, and the groups of the
/// selected instances: verdicts, golden images and lineages stay what the whole fleet makes
/// them, while counts and lists cover the selection.
fn filtered(
    inventory: Inventory,
    query: &str,
    loaded: &LoadedConfig,
    now: DateTime<Utc>,
) -> Result<Inventory> {
    let parsed = crate::query::filter::Query::parse(query, crate::query::subject::INSTANCE_FIELDS)
        .map_err(|e| eyre!("--filter: {e}"))?;
    let data = crate::query::data::Data::new(inventory, &loaded.config.policy, now);
    let selected = crate::query::subject::select_instances(&data, &parsed);
    let whole = &data.inventory;
    let mut kept = Inventory::new(loaded.lineage_rules()?);
    for entry in whole.images() {
        kept.upsert_image(entry.image.clone());
    }
    // A group none of whose members is selected has nothing to say about the selection.
    let groups: std::collections::BTreeSet<_> =
        selected.iter().filter_map(|&i| whole.group_of(i)).collect();
    for group in groups
        .into_iter()
        .filter_map(|g| whole.group(g).group.clone())
    {
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
        Some(location) => {
            let snapshot = load_snapshot(global, &loaded, location)?;
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
    let rollout = rollout_settings(run, &loaded);
    let live = plan.is_some();
    let init = tui::app::AppInit {
        queue,
        persist_queue: true,
        live,
        collecting: live,
        read_only: run.read_only,
        confirm_queue_over: loaded.config.ui.confirm_queue_over,
        template_updates: rollout.update_templates,
        save_snapshot: run.save_snapshot.is_some(),
        queue_disabled,
        badges,
        ..tui::app::AppInit::browse(
            inventory,
            rules,
            loaded.config.policy.clone(),
            fixed_now.unwrap_or_else(|| chrono::Utc::now().trunc_subsecs(0)),
        )
    };
    let collect = plan.map(|plan| -> tui::Collect {
        Box::new(move |now| {
            let (tx, events) = tokio::sync::mpsc::channel(256);
            let task = tokio::spawn(clouds::collect(plan.clone(), now, tx));
            tui::Collection::new(events, task, now)
        })
    });
    let exit = tui::run(tui::Options {
        init,
        collect,
        fixed_now,
        paths,
        executors,
        save_snapshot: run.save_snapshot.clone(),
        rollout,
    })?;
    if exit == tui::Exit::QuitMidApply {
        let _ = writeln!(
            std::io::stderr(),
            "fleetscope: quit during an apply: the stop is journaled, and replacements in flight were cut short where they stood; `fleetscope{} queue apply` resumes them without repeating a step",
            if run.demo { " --demo" } else { "" }
        );
        return Ok(ExitCode::from(130));
    }
    Ok(ExitCode::SUCCESS)
}

fn run_diff(
    global: &GlobalArgs,
    old: &Location,
    new: &Location,
    format: diff::DiffFormat,
    output: Option<&Path>,
    fail_on: Option<policy::Verdict>,
) -> Result<ExitCode> {
    let loaded = load_config(global)?;
    let rules = loaded.lineage_rules()?;
    let old = load_snapshot(global, &loaded, old)?;
    let new = load_snapshot(global, &loaded, new)?;
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
    Ok(fail_on_exit(fail_on.and_then(|v| changes.failure(v))))
}

/// The shortest bearer token serve accepts: a guessable one would guard nothing.
const MIN_SERVE_TOKEN: usize = 16;

fn run_serve(global: &GlobalArgs, run: &RunArgs, args: &ServeArgs) -> Result<ExitCode> {
    let loaded = load_config(global)?;
    let rules = loaded.lineage_rules()?;
    let listen = serve::Listen::resolve(&args.listen).map_err(|e| eyre!(e))?;
    let token = token(global)?;
    if !listen.loopback && token.is_none() {
        return Err(eyre!(
            "--listen {}: not a loopback address, so serve needs --token-file (requests for /snapshot must then carry the token)",
            args.listen
        ));
    }
    if let (Some(token), Some(path)) = (&token, &global.token_file)
        && token.len() < MIN_SERVE_TOKEN
    {
        return Err(eyre!(
            "{}: the token is shorter than {MIN_SERVE_TOKEN} characters; make one with `openssl rand -hex 32`",
            path.display()
        ));
    }
    let source = match &args.snapshot {
        Some(location) => serve::Source::Snapshot {
            location: location.clone(),
            fetch: loaded.config.limits.fetch(token.clone()),
        },
        None => serve::Source::Collect(plan(run, &loaded, Duration::ZERO)?),
    };
    let keep = args
        .keep_snapshots
        .as_deref()
        .map(|dir| serve::Keep::new(dir, args.keep as usize))
        .transpose()
        .map_err(|e| eyre!(e))?;
    serve::run(serve::Options {
        listen,
        interval: args.interval,
        source,
        rules,
        policy: loaded.config.policy.clone(),
        fixed_now: global.now,
        token,
        token_metrics: args.token_metrics,
        keep,
    })
    .map_err(|e| eyre!(e))?;
    Ok(ExitCode::SUCCESS)
}

/// To a file atomically, or to stdout; a closed pipe (`| head`) is not an error.
fn write_output(
    path: Option<&Path>,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    match path {
        Some(path) => crate::files::write_atomic(path, write)
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
/// (the CSV or JSON one, say) wrapped the I/O error.
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
        // serde_json keeps the I/O error to itself: its `source` skips it.
        if let Some(json) = e.downcast_ref::<serde_json::Error>() {
            return json.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe);
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
                bar.set_prefix(crate::text::escape(&source.name).into_owned());
                bar
            });
            bar.set_position(u64::from(source.pages));
            match &source.state {
                SourceState::Waiting => bar.set_message("waiting"),
                SourceState::Collecting => {
                    bar.set_message(format!("{} instances", source.instances))
                }
                SourceState::Skipped { reason } => {
                    bar.finish_with_message(format!("skipped: {}", crate::text::escape(reason)))
                }
                SourceState::Done => {
                    bar.finish_with_message(format!("{} instances, done", source.instances))
                }
                SourceState::Incomplete { error } => {
                    bar.abandon_with_message(format!("incomplete: {}", crate::text::escape(error)))
                }
                SourceState::Failed { error } => {
                    bar.abandon_with_message(format!("failed: {}", crate::text::escape(error)))
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
        // The demo's cloud is what its journal says its rollouts did.
        let journal = queue::data_dir()
            .ok()
            .map(|dir| queue::apply::Paths::for_fleet(&dir, true).journal);
        return Plan::Demo {
            size: run.demo_size,
            seed: run.demo_seed,
            page_delay: Duration::ZERO,
            journal,
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
    match action {
        QueueAction::Apply { dry_run, yes } => {
            return apply_queue(global, run, &paths, dry_run, yes);
        }
        QueueAction::Add {
            filter,
            snapshot,
            yes,
        } => return add_to_queue(global, run, &path, &filter, snapshot.as_ref(), yes),
        QueueAction::Remove { filter, snapshot } => {
            return remove_from_queue(global, run, &path, &filter, snapshot.as_ref());
        }
        _ => {}
    }
    let queue = Queue::load(&path)?;
    match action {
        QueueAction::List => {
            let records = queue::journal::Journal::read(&paths.journal)?;
            let failures = queue::journal::last_failures(&records);
            write_output(None, |out| {
                report::queue::write_table(&queue, &failures, out)
            })?;
            Ok(ExitCode::SUCCESS)
        }
        QueueAction::Export { format, output } => {
            write_output(output.as_deref(), |out| {
                report::queue::export(&queue, format, out)
            })?;
            Ok(ExitCode::SUCCESS)
        }
        QueueAction::Clear { .. }
        | QueueAction::Apply { .. }
        | QueueAction::Add { .. }
        | QueueAction::Remove { .. } => unreachable!("handled above"),
    }
}

/// The instances a queue filter selects, collected (or read from a snapshot) and evaluated.
fn select_for_queue(
    global: &GlobalArgs,
    run: &RunArgs,
    query: &str,
    snapshot: Option<&Location>,
) -> Result<(crate::query::data::Data, Vec<InstanceIdx>)> {
    let loaded = load_config(global)?;
    let parsed = crate::query::filter::Query::parse(query, crate::query::subject::INSTANCE_FIELDS)
        .map_err(|e| eyre!("--filter: {e}"))?;
    let (inventory, now) = inventory_from(global, run, &loaded, snapshot)?;
    let data = crate::query::data::Data::new(inventory, &loaded.config.policy, now);
    let selected = crate::query::subject::select_instances(&data, &parsed);
    Ok((data, selected))
}

/// `queue add --filter`: what `R` would queue of the selection (non-current instances only),
/// with the UI's bulk question above `ui.confirm_queue_over`.
fn add_to_queue(
    global: &GlobalArgs,
    run: &RunArgs,
    path: &Path,
    query: &str,
    snapshot: Option<&Location>,
    yes: bool,
) -> Result<ExitCode> {
    let confirm_over = load_config(global)?.config.ui.confirm_queue_over;
    let (data, selected) = select_for_queue(global, run, query, snapshot)?;
    let replaceable: Vec<InstanceIdx> = selected
        .into_iter()
        .filter(|&i| data.replaceable_image(data.inventory.image_of(i)))
        .collect();
    if replaceable.is_empty() {
        eprintln!("Nothing to queue: the filter selects no instance that is not current.");
        return Ok(ExitCode::SUCCESS);
    }
    let queued = Queue::load(path)?;
    let new: Vec<InstanceIdx> = replaceable
        .iter()
        .copied()
        .filter(|&i| !queued.contains(&data.instance(i).id))
        .collect();
    let by_verdict = data.count_by_verdict(&new);
    if new.len() > confirm_over
        && !yes
        && !confirm(&format!(
            "Queue {} ({by_verdict})?",
            rollout::count(new.len(), "instance")
        ))?
    {
        eprintln!("Nothing was queued.");
        return Ok(ExitCode::SUCCESS);
    }
    // When the command ran, not when the fleet was judged: it names the queue entry.
    let queued_at = Utc::now();
    let entries: Vec<queue::QueueEntry> = new
        .iter()
        .map(|&i| queue::entry_for(&data.inventory, &data.eval, i, queued_at))
        .collect();
    let not_executable = entries.iter().filter(|e| !e.strategy.executable()).count();
    let (queue, added) = Queue::update(path, |q| q.add(entries))?;
    let mut line = format!("Queued {}", rollout::count(added, "instance"));
    if added > 0 {
        line.push_str(&format!(" ({by_verdict})"));
    }
    let already = replaceable.len() - added;
    if already > 0 {
        line.push_str(&format!(", {already} already queued"));
    }
    if not_executable > 0 {
        line.push_str(&format!(
            ", {not_executable} not executable (`fleetscope queue list` says why)"
        ));
    }
    eprintln!("{line}; {} queued in all.", queue.entries.len());
    Ok(ExitCode::SUCCESS)
}

/// `queue remove --filter`: takes the selected instances off the queue.
fn remove_from_queue(
    global: &GlobalArgs,
    run: &RunArgs,
    path: &Path,
    query: &str,
    snapshot: Option<&Location>,
) -> Result<ExitCode> {
    let (data, selected) = select_for_queue(global, run, query, snapshot)?;
    let ids: Vec<&str> = selected
        .iter()
        .map(|&i| data.instance(i).id.as_str())
        .collect();
    let (queue, removed) = Queue::update(path, |q| q.remove(&ids))?;
    eprintln!(
        "Took {} off the queue; {} queued now.",
        rollout::count(removed, "instance"),
        queue.entries.len()
    );
    Ok(ExitCode::SUCCESS)
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
            "Remove all {} from the queue?",
            rollout::count(count, "queued instance")
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
    eprintln!(
        "Removed {} from the queue.",
        rollout::count(removed, "instance")
    );
    Ok(ExitCode::SUCCESS)
}

/// `queue apply`: the rollout plan, a typed confirmation, then the rollout with its progress.
/// The apply lock is held from the plan to the end, so what is confirmed is what runs.
fn apply_queue(
    global: &GlobalArgs,
    run: &RunArgs,
    paths: &queue::apply::Paths,
    dry_run: bool,
    yes: bool,
) -> Result<ExitCode> {
    if run.read_only && !dry_run {
        return Err(eyre!(
            "--read-only: applying the queue is refused (--dry-run changes nothing and is allowed)"
        ));
    }
    let loaded = load_config(global)?;
    let settings = rollout_settings(run, &loaded);
    let lock = queue::apply::ApplyLock::acquire(&paths.lock)?;
    let queue = Queue::load(&paths.queue)?;
    let records = queue::journal::Journal::read(&paths.journal)?;
    let console = Console::default();
    if queue.entries.is_empty() {
        console.err("Nothing to apply: the queue is empty.");
        return Ok(ExitCode::SUCCESS);
    }
    let executors = clouds::executors(&queue_fleet(run, &loaded));
    let runtime = runtime()?;
    let plan = runtime.block_on(rollout::plan(
        &queue,
        &records,
        executors.as_ref(),
        &settings,
    ));
    // The plan is this command's output: `> plan.txt` keeps it; progress goes to stderr.
    console.out(plan.describe().trim_end());
    let count = plan.entries();
    let unchecked = match plan.unchecked.first() {
        Some((entry, error)) => Some(eyre!(
            "{} queued entries could not be checked and stay queued ({}: {error}); the journal is {}",
            plan.unchecked.len(),
            entry.instance_id,
            paths.journal.display()
        )),
        None => None,
    };
    if count == 0 && plan.finished.is_empty() {
        rollout::journal_unchecked(paths, &plan.unchecked, dry_run)?;
        return match unchecked {
            Some(error) => Err(error),
            None => {
                console.err("Nothing to apply: every queued entry is left queued (see above).");
                Ok(ExitCode::SUCCESS)
            }
        };
    }
    if console.lost() {
        return Err(eyre!(
            "the plan could not be written (output closed): nothing was changed"
        ));
    }
    if !dry_run && !yes && count > 0 {
        let phrase = plan.phrase();
        let templates = match plan.templates.len() {
            0 => String::new(),
            n => format!(
                " first {} (what every future instance of {} launches), then",
                if n == 1 {
                    "changes one group's template"
                } else {
                    "changes the groups' templates"
                },
                if n == 1 { "it" } else { "them" }
            ),
        };
        let answer = ask(&format!(
            "This{templates} replaces {} in {}, terminating each old one once its replacement is healthy. Type \"{phrase}\" to go on:",
            rollout::count(count, "instance"),
            rollout::count(plan.waves.len(), "wave"),
        ))?;
        if answer.trim() != phrase {
            console.err("Nothing was changed.");
            return Ok(ExitCode::SUCCESS);
        }
    }
    let (stop_tx, stop) = tokio::sync::watch::channel(None);
    let (events, mut watch) = tokio::sync::mpsc::unbounded_channel();
    let summary = runtime.block_on(async {
        tokio::spawn(stop_on_signals(
            stop_tx.clone(),
            paths.journal.clone(),
            dry_run,
        ));
        let mut progress = ApplyProgress::new(std::io::stderr().is_terminal(), count, &console);
        let rollout = rollout::run(
            rollout::Request {
                paths,
                lock,
                confirmed: &plan,
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
                Some(event) = watch.recv() => {
                    progress.show(&event);
                    // Nobody sees the rollout any more (a closed pipe, a dropped ssh): what
                    // is in flight finishes, nothing new starts, and the journal says why.
                    if console.lost() && stop_tx.borrow().is_none() {
                        let _ = stop_tx.send(Some("the output was closed".to_owned()));
                    }
                }
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
    console.err(&summary.to_string());
    if let Some(error) = unchecked {
        return Err(error);
    }
    if summary.failed > 0 || summary.stopped.is_some() {
        let mut why = Vec::new();
        if summary.failed > 0 {
            why.push(format!("{} failed", summary.failed));
        }
        if summary.not_started > 0 {
            why.push(format!("{} never started", summary.not_started));
        }
        let left = summary.failed + summary.not_started;
        let queued = match summary.still_queued {
            n if n == left => format!(
                "{} queued",
                if left == 1 { "it stays" } else { "they stay" }
            ),
            0 => "none of them is queued any more".to_owned(),
            n => format!("{n} of them stay queued"),
        };
        return Err(eyre!(
            "the rollout stopped: {}; {queued}, and `fleetscope{} queue apply` resumes; the journal is {}",
            why.join(", "),
            if run.demo { " --demo" } else { "" },
            paths.journal.display()
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// The rollout's settings: the config's, less template steps when the command line says so.
fn rollout_settings(run: &RunArgs, loaded: &LoadedConfig) -> rollout::Settings {
    let mut settings = loaded.config.rollout.settings();
    settings.update_templates &= !run.no_template_updates;
    settings
}

/// The first Ctrl-C, a hangup (a dropped ssh) or a termination asks the rollout to stop:
/// steps in flight finish, nothing new starts. A second Ctrl-C quits at once, journaled first,
/// and the next apply resumes each entry where the journal left it.
async fn stop_on_signals(
    stop: tokio::sync::watch::Sender<Option<String>>,
    journal: std::path::PathBuf,
    dry_run: bool,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut hangup), Ok(mut terminate)) = (
        signal(SignalKind::hangup()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    let why = tokio::select! {
        _ = tokio::signal::ctrl_c() => "stopped by Ctrl-C",
        _ = hangup.recv() => "stopped: the terminal hung up",
        _ = terminate.recv() => "stopped: asked to terminate",
    };
    let _ = writeln!(
        std::io::stderr(),
        "Stopping: replacements in flight finish, nothing new starts (Ctrl-C again quits at once; the next apply resumes)."
    );
    let _ = stop.send(Some(why.to_owned()));
    if tokio::signal::ctrl_c().await.is_ok() {
        if let Ok(mut journal) = queue::journal::Journal::open(&journal) {
            let _ = journal.append(&queue::journal::Record {
                at: Utc::now(),
                instance_id: String::new(),
                queued_at: None,
                step: queue::journal::Step::Stopped {
                    why: "quit at once by a second Ctrl-C, steps in flight cut short".to_owned(),
                    not_started: 0,
                },
                dry_run,
            });
        }
        std::process::exit(130);
    }
}

/// Standard output and error that never panic: a write that fails (a closed pipe) only ends
/// the output, and is remembered so the caller can act on it.
#[derive(Default)]
struct Console {
    lost: std::sync::atomic::AtomicBool,
}

impl Console {
    fn out(&self, text: &str) {
        self.write(&mut std::io::stdout().lock(), text);
    }

    fn err(&self, text: &str) {
        self.write(&mut std::io::stderr().lock(), text);
    }

    fn write(&self, to: &mut dyn Write, text: &str) {
        if self.lost() {
            return;
        }
        // Names, ids and errors come from clouds: each line shown with its controls escaped.
        let written = text
            .lines()
            .try_for_each(|line| writeln!(to, "{}", crate::text::escape(line)))
            .and_then(|()| to.flush());
        if written.is_err() {
            self.lost.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn lost(&self) -> bool {
        self.lost.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A rollout's progress: a bar on a terminal, one line per step otherwise.
struct ApplyProgress<'a> {
    bar: Option<indicatif::ProgressBar>,
    done: u64,
    console: &'a Console,
    /// The last phase shown per instance: a phase reported twice is shown once.
    shown: HashMap<String, rollout::Phase>,
}

impl<'a> ApplyProgress<'a> {
    fn new(terminal: bool, total: usize, console: &'a Console) -> ApplyProgress<'a> {
        let bar = terminal.then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        ApplyProgress {
            bar,
            done: 0,
            console,
            shown: HashMap::new(),
        }
    }

    fn line(&self, text: String) {
        match &self.bar {
            Some(bar) => bar.suspend(|| self.console.err(&text)),
            None => self.console.err(&text),
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
                if self.shown.get(instance_id) == Some(phase) {
                    return;
                }
                self.shown.insert(instance_id.clone(), phase.clone());
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
