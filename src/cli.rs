//! The command line: flags and subcommands, nothing else.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};

use crate::views::diff::DiffFormat;
use crate::views::report::Format;

#[derive(Debug, Parser)]
#[command(
    name = "fleetscope",
    version,
    about = "Terminal UI fleet inspector for immutable infrastructure: which image every server runs, and how old it is",
    after_help = "Exit codes: 0 clean, 1 findings at or above --fail-on, 2 error."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Config file (default: the platform config directory's fleetscope/config.toml).
    #[arg(long, global = true, env = "FLEETSCOPE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Evaluate at this time instead of now (RFC 3339), for reproducible reports.
    #[arg(long, global = true, value_name = "RFC3339", value_parser = parse_now)]
    pub now: Option<DateTime<Utc>>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Browse a built-in synthetic multi-cloud fleet instead of real clouds (with `queue`: the
    /// demo's own queue, applied by a simulation that reaches no cloud).
    #[arg(long, global = true)]
    pub demo: bool,

    /// Instances in the demo fleet (at most 1,000,000).
    #[arg(long, global = true, value_name = "N", default_value_t = crate::clouds::demo::DEFAULT_SIZE, value_parser = parse_demo_size, requires = "demo")]
    pub demo_size: usize,

    /// Seed of the demo fleet: the same seed gives the same fleet.
    #[arg(
        long,
        global = true,
        value_name = "N",
        default_value_t = 42,
        requires = "demo"
    )]
    pub demo_seed: u64,

    /// AWS profile to collect (repeatable); adds to the config's aws.profiles.
    #[arg(long = "aws-profile", global = true, value_name = "PROFILE")]
    pub aws_profiles: Vec<String>,

    /// Azure subscription id to collect (repeatable, "*" for every one the credential lists);
    /// adds to the config's azure.subscriptions.
    #[arg(long = "azure-subscription", global = true, value_name = "ID")]
    pub azure_subscriptions: Vec<String>,

    /// Google Cloud project to collect (repeatable); adds to the config's gcp.projects.
    #[arg(long = "gcp-project", global = true, value_name = "PROJECT")]
    pub gcp_projects: Vec<String>,

    /// Collect every account of the AWS organization (aws.organization.enabled), through the
    /// role aws.organization.role_name assumed in each.
    #[arg(long = "aws-org", global = true)]
    pub aws_org: bool,

    /// Azure management group whose subscriptions to collect, nested groups included
    /// (repeatable); adds to the config's azure.management_groups.
    #[arg(long = "azure-management-group", global = true, value_name = "ID")]
    pub azure_management_groups: Vec<String>,

    /// Google Cloud folder whose ACTIVE projects to collect, at any depth (repeatable); adds to
    /// the config's gcp.folders.
    #[arg(long = "gcp-folder", global = true, value_name = "ID")]
    pub gcp_folders: Vec<String>,

    /// Google Cloud organization whose ACTIVE projects to collect (repeatable); adds to the
    /// config's gcp.organizations.
    #[arg(long = "gcp-organization", global = true, value_name = "ID")]
    pub gcp_organizations: Vec<String>,

    /// Read a saved snapshot (or JSON report) instead of collecting.
    // The conflict is declared here, not on the global --demo: subcommands have no --snapshot.
    #[arg(long, value_name = "FILE", conflicts_with = "demo")]
    pub snapshot: Option<PathBuf>,

    /// Also save what was collected as a snapshot.
    #[arg(long, value_name = "FILE")]
    pub save_snapshot: Option<PathBuf>,

    /// Collect, evaluate, print a report and exit.
    #[arg(long)]
    pub report: bool,

    /// Report format.
    #[arg(long, value_enum, default_value = "md", requires = "report")]
    pub format: Format,

    /// Write the report here instead of stdout.
    #[arg(long, value_name = "FILE", requires = "report")]
    pub output: Option<PathBuf>,

    /// Exit 1 when any instance's verdict is at or above this one, or it is exposed,
    /// long-lived or on an image from an untrusted source (`policy.trusted_owners`).
    #[arg(long, value_name = "VERDICT|exposed|long-lived|untrusted-source", value_parser = parse_fail_on, requires = "report")]
    pub fail_on: Option<crate::views::report::FailOn>,

    /// Exit 0 or 1 even when some source failed or is incomplete (each still gets a line on
    /// stderr); without it such a report exits 2.
    #[arg(long, requires = "report")]
    pub allow_partial: bool,

    /// Report only the instances this filter selects (the UI's filter language).
    #[arg(long, value_name = "QUERY", requires = "report")]
    pub filter: Option<String>,

    /// Markdown: list at most N non-current and N exposed instances (JSON and CSV always list
    /// all).
    #[arg(long, value_name = "N", requires = "report")]
    pub limit: Option<usize>,

    /// Never change anything in any cloud: applying the queue is refused.
    #[arg(long, global = true)]
    pub read_only: bool,

    /// Make no template steps: members of a group in template drift stay queued, not
    /// executable (as `rollout.update_templates = false`).
    #[arg(long, global = true)]
    pub no_template_updates: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the effective config and where each value came from.
    Config,
    /// Show what changed between two snapshots (or JSON reports).
    Diff {
        old: PathBuf,
        new: PathBuf,
        #[arg(long, value_enum, default_value = "md")]
        format: DiffFormat,
        /// Write here instead of stdout.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Exit 1 when an instance newly reaches this verdict or worse (added at it, or
        /// changed to it from a milder one).
        #[arg(long, value_name = "VERDICT", value_parser = parse_verdict)]
        fail_on: Option<crate::core::policy::Verdict>,
    },
    /// The replacement queue: list, export for review, apply, clear.
    Queue {
        #[command(subcommand)]
        action: QueueAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum QueueAction {
    /// List queued instances with their strategy.
    List,
    /// Write the queue and its plan for review.
    Export {
        #[arg(long, value_enum, default_value = "md")]
        format: DiffFormat,
        /// Write here instead of stdout.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Replace the queued instances as a rollout (waves, health gates, stop on failure): every
    /// step journaled, one apply at a time, resumable. Ctrl-C starts nothing new.
    Apply {
        /// Show the plan, ask the cloud whether each call would be allowed, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Do not ask for the typed confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Queue what a filter selects (the UI's filter language), non-current instances only, as
    /// `R` does: collects first (or reads --snapshot). Nothing in any cloud changes.
    Add {
        /// What to queue, e.g. 'lineage:web* verdict:outdated' or an AMI id.
        #[arg(long, value_name = "QUERY")]
        filter: String,
        /// Read this snapshot instead of collecting.
        #[arg(long, value_name = "FILE")]
        snapshot: Option<PathBuf>,
        /// Do not ask, however many it queues (ui.confirm_queue_over asks above that many).
        #[arg(long)]
        yes: bool,
    },
    /// Take what a filter selects off the queue (the UI's filter language): collects first
    /// (or reads --snapshot). Nothing in any cloud changes.
    Remove {
        /// What to take off, e.g. 'cloud:azure' or an instance id.
        #[arg(long, value_name = "QUERY")]
        filter: String,
        /// Read this snapshot instead of collecting.
        #[arg(long, value_name = "FILE")]
        snapshot: Option<PathBuf>,
    },
    /// Empty the queue (nothing in any cloud changes).
    Clear {
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

/// A demo fleet the machine can hold: a million instances take about 1 GB.
fn parse_demo_size(text: &str) -> Result<usize, String> {
    const RANGE: std::ops::RangeInclusive<usize> = 1..=1_000_000;
    match text.parse() {
        Ok(size) if RANGE.contains(&size) => Ok(size),
        _ => Err(format!("expected a number in {RANGE:?}")),
    }
}

fn parse_now(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{e}; expected RFC 3339 such as 2026-11-01T00:00:00Z"))
}

fn parse_fail_on(text: &str) -> Result<crate::views::report::FailOn, String> {
    crate::views::report::FailOn::parse(text).ok_or_else(|| {
        "expected one of flagged, unknown, outdated, stale, exposed, long-lived, untrusted-source"
            .to_owned()
    })
}

fn parse_verdict(text: &str) -> Result<crate::core::policy::Verdict, String> {
    crate::views::report::verdict_threshold(text)
        .ok_or_else(|| "expected one of flagged, unknown, outdated, stale".to_owned())
}
