//! Where facts come from: one module per cloud, plus the built-in demo. Every source streams
//! `CollectEvent`s over a channel and never touches the inventory itself.

#[cfg(feature = "aws")]
pub mod aws;
pub mod demo;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::config::Config;
use crate::core::event::CollectEvent;
use crate::core::inventory::Inventory;
use crate::core::lineage::LineageRules;

/// What to collect from, decided once from the command line and config.
#[derive(Debug, Clone)]
pub enum Plan {
    Demo {
        size: usize,
        seed: u64,
        /// Pause between pages, so an interactive user sees collection progress.
        page_delay: Duration,
    },
    Clouds(Box<Config>),
}

impl Plan {
    /// The clouds configured, or a sentence saying how to configure one.
    pub fn from_config(config: &Config) -> Result<Plan, String> {
        let any = !config.aws.profiles.is_empty()
            || !config.azure.subscriptions.is_empty()
            || !config.gcp.projects.is_empty();
        if !any {
            return Err(
                "no sources configured: add [aws] profiles, [azure] subscriptions or [gcp] projects to the config, or try --demo".into(),
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
        } => {
            let fleet = Arc::new(demo::DemoFleet::new(seed, size, now));
            demo::collect(fleet, tx, page_delay).await;
        }
        Plan::Clouds(config) => collect_clouds(*config, tx).await,
    }
}

async fn collect_clouds(config: Config, tx: mpsc::Sender<CollectEvent>) {
    let mut clouds = Vec::new();
    if !config.aws.profiles.is_empty() {
        clouds.push(collect_aws(&config, tx.clone()));
    }
    for (cloud, configured) in [
        ("azure", !config.azure.subscriptions.is_empty()),
        ("gcp", !config.gcp.projects.is_empty()),
    ] {
        if configured {
            let _ = tx
                .send(CollectEvent::Failed {
                    source: format!("{cloud}:*"),
                    error: format!("{cloud} collection is not built into this fleetscope yet"),
                })
                .await;
        }
    }
    futures::future::join_all(clouds).await;
}

#[cfg(feature = "aws")]
fn collect_aws(
    config: &Config,
    tx: mpsc::Sender<CollectEvent>,
) -> futures::future::BoxFuture<'static, ()> {
    Box::pin(aws::collect(aws::Settings::from_config(config), tx))
}

#[cfg(not(feature = "aws"))]
fn collect_aws(
    config: &Config,
    tx: mpsc::Sender<CollectEvent>,
) -> futures::future::BoxFuture<'static, ()> {
    let profiles = config.aws.profiles.clone();
    Box::pin(async move {
        for profile in profiles {
            let failed = CollectEvent::Failed {
                source: format!("aws:{profile}"),
                error: "this fleetscope was built without the aws feature".to_owned(),
            };
            if tx.send(failed).await.is_err() {
                return;
            }
        }
    })
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
