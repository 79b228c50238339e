//! Where facts come from: one module per cloud, plus the built-in demo. Every source streams
//! `CollectEvent`s over a channel and never touches the inventory itself.

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "azure")]
pub mod azure;
pub mod demo;
#[cfg(feature = "gcp")]
pub mod gcp;
// What keeps each source to one end; a build without any cloud uses only part of it.
#[cfg_attr(
    not(any(feature = "aws", feature = "azure", feature = "gcp")),
    allow(dead_code)
)]
mod source;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::mpsc;

use crate::config::Config;
use crate::core::event::CollectEvent;
use crate::core::inventory::Inventory;
use crate::core::lineage::LineageRules;
use crate::queue::QueueEntry;
use crate::queue::rollout::{Executor, Executors};
pub use source::{Deadline, log_source_panics};
use source::{InFlight, contained};
#[cfg(any(feature = "aws", feature = "azure", feature = "gcp"))]
pub(crate) use source::{call, run_source};

/// What to collect from, decided once from the command line and config.
#[derive(Debug, Clone)]
pub enum Plan {
    Demo {
        size: usize,
        seed: u64,
        /// Pause between pages, so an interactive user sees collection progress.
        page_delay: Duration,
        /// The demo's journal: what its simulated rollouts replaced shows as replaced.
        journal: Option<std::path::PathBuf>,
    },
    Clouds(Box<Config>),
}

impl Plan {
    /// The clouds configured, or a sentence saying how to configure one.
    pub fn from_config(config: &Config) -> Result<Plan, String> {
        if !config.aws.any() && !config.azure.any() && !config.gcp.any() {
            return Err(
                "no sources configured: add [aws] profiles or an organization, [azure] subscriptions or management groups, or [gcp] projects, folders or organizations to the config, or try --demo".into(),
            );
        }
        Ok(Plan::Clouds(Box::new(config.clone())))
    }
}

/// Runs every source of the plan to completion, sending their events to `tx`.
pub async fn collect(plan: Plan, now: DateTime<Utc>, tx: mpsc::Sender<CollectEvent>) {
    match plan {
        Plan::Demo {
            size,
            seed,
            page_delay,
            journal,
        } => {
            let records = match journal.as_deref().map(crate::queue::journal::Journal::read) {
                Some(Ok(records)) => records,
                Some(Err(error)) => {
                    let warning = CollectEvent::Warning {
                        source: "demo".into(),
                        message: format!("the demo's replacements are not shown: {error}"),
                    };
                    let _ = tx.send(warning).await;
                    Vec::new()
                }
                None => Vec::new(),
            };
            let fleet = Arc::new(demo::DemoFleet::new(seed, size, now).as_journaled(&records));
            demo::collect(fleet, tx, page_delay).await;
        }
        Plan::Clouds(config) => collect_clouds(*config, tx).await,
    }
}

async fn collect_clouds(config: Config, tx: mpsc::Sender<CollectEvent>) {
    let mut clouds = Vec::new();
    if config.aws.any() {
        let work = |tx| collect_aws(&config, tx);
        clouds.push(contained("aws", aws_sources(&config), tx.clone(), work).boxed());
    }
    if config.azure.any() {
        let work = |tx| collect_azure(&config, tx);
        clouds.push(contained("azure", azure_sources(&config), tx.clone(), work).boxed());
    }
    if config.gcp.any() {
        let work = |tx| collect_gcp(&config, tx);
        clouds.push(contained("gcp", gcp_sources(&config), tx.clone(), work).boxed());
    }
    let in_flight = InFlight::new(config.collect.max_in_flight);
    in_flight.scope(futures::future::join_all(clouds)).await;
}

fn named(cloud: &str, names: &[String]) -> Vec<String> {
    names.iter().map(|n| format!("{cloud}:{n}")).collect()
}

/// The sources a cloud owes an end from the start, before anything is found: the configured
/// ones, and the organization, groups or folders whose listing is a source of its own, heard of
/// when it fails.
fn aws_sources(config: &Config) -> Vec<String> {
    let mut sources = named("aws", &config.aws.profiles);
    if config.aws.organization.enabled {
        sources.push(AWS_ORGANIZATION_SOURCE.to_owned());
    }
    sources
}

fn azure_sources(config: &Config) -> Vec<String> {
    let mut sources = named("azure", &config.azure.subscriptions);
    let groups = config.azure.management_groups.iter();
    sources.extend(groups.map(|g| azure_group_source(g)));
    sources
}

fn gcp_sources(config: &Config) -> Vec<String> {
    let mut sources = named("gcp", &config.gcp.projects);
    sources.extend(named("gcp", &config.gcp.scopes()));
    sources
}

/// Fails every source a cloud owes, in a build without that cloud's feature.
#[cfg(not(all(feature = "aws", feature = "azure", feature = "gcp")))]
fn unbuilt(
    cloud: &'static str,
    sources: Vec<String>,
    tx: mpsc::Sender<CollectEvent>,
) -> BoxFuture<'static, ()> {
    Box::pin(async move {
        for source in sources {
            let failed = CollectEvent::Failed {
                source,
                error: format!("this fleetscope was built without the {cloud} feature"),
            };
            if tx.send(failed).await.is_err() {
                return;
            }
        }
    })
}

/// The source that stands for an AWS organization when its accounts cannot be listed.
pub(crate) const AWS_ORGANIZATION_SOURCE: &str = "aws:organization";

#[cfg(feature = "aws")]
fn collect_aws(config: &Config, tx: mpsc::Sender<CollectEvent>) -> BoxFuture<'static, ()> {
    Box::pin(aws::collect(aws::Settings::from_config(config), tx))
}

#[cfg(not(feature = "aws"))]
fn collect_aws(config: &Config, tx: mpsc::Sender<CollectEvent>) -> BoxFuture<'static, ()> {
    unbuilt("aws", aws_sources(config), tx)
}

/// The source of an Azure management group's list of subscriptions.
pub(crate) fn azure_group_source(group: &str) -> String {
    format!("azure:mg:{group}")
}

#[cfg(feature = "azure")]
fn collect_azure(config: &Config, tx: mpsc::Sender<CollectEvent>) -> BoxFuture<'static, ()> {
    Box::pin(azure::collect(azure::Settings::from_config(config), tx))
}

#[cfg(not(feature = "azure"))]
fn collect_azure(config: &Config, tx: mpsc::Sender<CollectEvent>) -> BoxFuture<'static, ()> {
    unbuilt("azure", azure_sources(config), tx)
}

#[cfg(feature = "gcp")]
fn collect_gcp(config: &Config, tx: mpsc::Sender<CollectEvent>) -> BoxFuture<'static, ()> {
    Box::pin(gcp::collect(gcp::Settings::from_config(config), tx))
}

#[cfg(not(feature = "gcp"))]
fn collect_gcp(config: &Config, tx: mpsc::Sender<CollectEvent>) -> BoxFuture<'static, ()> {
    unbuilt("gcp", gcp_sources(config), tx)
}

/// How long a simulated demo replacement takes to become healthy (plus up to as much again).
const DEMO_PACE: Duration = Duration::from_millis(800);

/// The executors of a fleet. This is the one place that maps a queued entry's source to its
/// cloud's executor; the rollout knows them only through the trait.
pub fn executors(plan: &Plan) -> Box<dyn Executors> {
    match plan {
        Plan::Demo {
            size,
            seed,
            journal,
            ..
        } => {
            // What its own template steps did is the demo cloud's state; an unreadable journal
            // fails the apply that reads it anyway.
            let records = journal
                .as_deref()
                .and_then(|j| crate::queue::journal::Journal::read(j).ok())
                .unwrap_or_default();
            Box::new(demo::DemoExecutor::new(
                demo::DemoFleet::new(*seed, *size, Utc::now()).as_journaled(&records),
                DEMO_PACE,
            ))
        }
        Plan::Clouds(config) => Box::new(CloudExecutors::new(config)),
    }
}

/// The configured clouds' executors, each acting only on entries from a configured source.
pub struct CloudExecutors {
    config: Config,
    #[cfg(feature = "aws")]
    aws: aws::AwsExecutor,
    #[cfg(feature = "azure")]
    azure: azure::AzureExecutor,
    #[cfg(feature = "gcp")]
    gcp: gcp::GcpExecutor,
}

impl CloudExecutors {
    pub fn new(config: &Config) -> CloudExecutors {
        CloudExecutors {
            config: config.clone(),
            #[cfg(feature = "aws")]
            aws: aws::AwsExecutor::new(aws::Settings::from_config(config)),
            #[cfg(feature = "azure")]
            azure: azure::AzureExecutor::new(azure::Settings::from_config(config)),
            #[cfg(feature = "gcp")]
            gcp: gcp::GcpExecutor::new(gcp::Settings::from_config(config)),
        }
    }

    fn configured(&self, source: &str) -> bool {
        let Some((cloud, name)) = source.split_once(':') else {
            return false;
        };
        let names = match cloud {
            // An organization's accounts are found, not listed: its executor checks the
            // entry's account by assuming the role in it.
            "aws" if self.config.aws.organization.enabled => return true,
            "aws" => &self.config.aws.profiles,
            // A subscription found below a management group is configured by the group. Which
            // subscriptions those are is the group's answer at collection time; asking it again
            // here would be a call per apply and still race a move between groups. So, as with
            // `*`, any subscription counts when groups are configured (a group's own source
            // holds nothing to apply): what the credential may change stays the cloud's answer.
            "azure"
                if !self.config.azure.management_groups.is_empty()
                    && !name.is_empty()
                    && !name.starts_with("mg:") =>
            {
                return true;
            }
            "azure" => &self.config.azure.subscriptions,
            // The projects under a configured folder or organization are known only from a
            // walk of Resource Manager, which an apply does not repeat. So with folders or
            // organizations configured, any project's entry is accepted (an entry comes from
            // collecting this fleet, and the credential's IAM bounds what it may change); a
            // folder's own source holds no instances, so never an entry.
            "gcp" if !self.config.gcp.scopes().is_empty() => return !name.contains('/'),
            "gcp" => &self.config.gcp.projects,
            _ => return false,
        };
        // `*` configures every Azure subscription the credential lists.
        names
            .iter()
            .any(|n| n == name || (cloud == "azure" && n == "*"))
    }
}

impl Executors for CloudExecutors {
    fn for_entry(&self, entry: &QueueEntry) -> Result<&dyn Executor, String> {
        if !self.configured(&entry.source) {
            return Err(format!("source {} is not configured", entry.source));
        }
        match entry.cloud {
            #[cfg(feature = "aws")]
            crate::core::model::Cloud::Aws => Ok(&self.aws),
            #[cfg(feature = "azure")]
            crate::core::model::Cloud::Azure => Ok(&self.azure),
            #[cfg(feature = "gcp")]
            crate::core::model::Cloud::Gcp => Ok(&self.gcp),
            // Reached only in a build without some cloud's feature.
            #[allow(unreachable_patterns)]
            cloud => Err(format!(
                "this fleetscope was built without the {cloud} feature: it cannot change {cloud} instances"
            )),
        }
    }
}

/// Collects everything into a fresh inventory, calling `progress` after each event.
pub async fn gather(
    plan: Plan,
    rules: LineageRules,
    now: DateTime<Utc>,
    mut progress: impl FnMut(&Inventory),
) -> Inventory {
    let (tx, mut rx) = mpsc::channel(64);
    let collector = tokio::spawn(collect(plan, now, tx));
    let mut inventory = Inventory::new(rules);
    while let Some(event) = rx.recv().await {
        inventory.apply(event);
        progress(&inventory);
    }
    // The channel closes when every sender is gone, so the collector has finished.
    let _ = collector.await;
    inventory
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscription_found_below_a_management_group_is_configured_for_apply() {
        let mut config = Config::default();
        config.azure.subscriptions = vec!["listed".into()];
        let listed_only = CloudExecutors::new(&config);
        assert!(listed_only.configured("azure:listed"));
        assert!(!listed_only.configured("azure:found-in-a-group"));

        config.azure.management_groups = vec!["mg-root".into()];
        let with_groups = CloudExecutors::new(&config);
        assert!(with_groups.configured("azure:listed"));
        assert!(with_groups.configured("azure:found-in-a-group"));
        // A group's own source holds nothing to apply; the other clouds are not widened.
        assert!(!with_groups.configured("azure:mg:mg-root"));
        assert!(!with_groups.configured("azure:"));
        assert!(!with_groups.configured("aws:found-in-a-group"));
        assert!(!with_groups.configured("gcp:found-in-a-group"));
    }

    #[test]
    fn projects_under_configured_folders_may_be_applied_to() {
        let mut config = Config::default();
        config.gcp.projects = vec!["shop".into()];
        let listed = CloudExecutors::new(&config);
        assert!(listed.configured("gcp:shop"));
        assert!(!listed.configured("gcp:found-in-a-folder"));
        config.gcp.organizations = vec!["456".into()];
        let estate = CloudExecutors::new(&config);
        assert!(estate.configured("gcp:shop"));
        assert!(estate.configured("gcp:found-in-a-folder"));
        assert!(!estate.configured("gcp:organizations/456"));
        assert!(!estate.configured("azure:found-in-a-folder"));
    }
}
