//! The command line: flags and subcommands, nothing else.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};

use crate::snapshot::Location;
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

    /// File whose first line is a bearer token: `serve` answers /snapshot only to requests
    /// that carry it; a snapshot URL (`--snapshot URL`, `diff URL`) is fetched with it.
    #[arg(
        long,
        global = true,
        env = "FLEETSCOPE_TOKEN_FILE",
        value_name = "FILE"
    )]
    pub token_file: Option<PathBuf>,
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

    /// Read a saved snapshot (or JSON report) instead of collecting: a file, or the http(s)
    /// URL of a `fleetscope serve`'s /snapshot.
    // The conflict is declared here, not on the global --demo: subcommands have no --snapshot.
    #[arg(long, value_name = "FILE|URL", value_parser = clap::value_parser!(Location), conflicts_with = "demo")]
    pub snapshot: Option<Location>,

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
    /// Show what changed between two snapshots (or JSON reports), each a file or an http(s)
    /// URL.
    Diff {
        #[arg(value_name = "OLD", value_parser = clap::value_parser!(Location))]
        old: Location,
        #[arg(value_name = "NEW", value_parser = clap::value_parser!(Location))]
        new: Location,
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
    /// Collect on an interval and serve the fleet read-only: Prometheus metrics at /metrics,
    /// the latest snapshot at /snapshot, /healthz. Nothing can be changed over HTTP.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (HOST:PORT). Anything but loopback needs --token-file.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9464")]
    pub listen: String,

    /// Time from one collection's start to the next: 90s, 15m, 1h, 1h30m. Collections never
    /// overlap: one that runs longer delays the next.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = parse_interval)]
    pub interval: Duration,

    /// Serve this snapshot, a file or another serve's URL, read again every interval, instead
    /// of collecting.
    #[arg(long, value_name = "FILE|URL", value_parser = clap::value_parser!(Location), conflicts_with = "demo")]
    pub snapshot: Option<Location>,

    /// Also write each collection's snapshot into this directory (private, created if
    /// missing), named by the time it was taken, for `diff` across days.
    #[arg(long, value_name = "DIR")]
    pub keep_snapshots: Option<PathBuf>,

    /// How many kept snapshots stay: the oldest beyond this are removed.
    #[arg(long, value_name = "N", default_value_t = 96, requires = "keep_snapshots", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub keep: u32,

    /// Ask for the token on /metrics too (by default only /snapshot needs it).
    #[arg(long, requires = "token_file")]
    pub token_metrics: bool,
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
        /// Read this snapshot (a file or URL) instead of collecting.
        #[arg(long, value_name = "FILE|URL", value_parser = clap::value_parser!(Location))]
        snapshot: Option<Location>,
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
        /// Read this snapshot (a file or URL) instead of collecting.
        #[arg(long, value_name = "FILE|URL", value_parser = clap::value_parser!(Location))]
        snapshot: Option<Location>,
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

/// A duration as people write one: `90s`, `15m`, `1h30m`, `1d`; a bare number is seconds.
/// From one second to 30 days.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    const HINT: &str = "expected a duration such as 30s, 15m, 1h or 1h30m";
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return interval_in_range(Duration::from_secs(seconds));
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(HINT.to_owned()),
        };
        let value: u64 = number.parse().map_err(|_| HINT.to_owned())?;
        number.clear();
        total = value
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| HINT.to_owned())?;
    }
    if !number.is_empty() || text.is_empty() {
        return Err(HINT.to_owned());
    }
    interval_in_range(Duration::from_secs(total))
}

fn interval_in_range(interval: Duration) -> Result<Duration, String> {
    if interval < Duration::from_secs(1) || interval > Duration::from_secs(30 * 86_400) {
        return Err("expected from 1s to 30d".to_owned());
    }
    Ok(interval)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_read_as_people_write_them() {
        let secs = |text| parse_interval(text).map(|d| d.as_secs());
        assert_eq!(secs("90"), Ok(90));
        assert_eq!(secs("30s"), Ok(30));
        assert_eq!(secs("15m"), Ok(900));
        assert_eq!(secs("1h30m"), Ok(5400));
        assert_eq!(secs("1d"), Ok(86_400));
        for bad in ["", "0", "0s", "m", "15x", "1h30", "31d", "-5m"] {
            assert!(secs(bad).is_err(), "{bad:?} accepted");
        }
    }
}
