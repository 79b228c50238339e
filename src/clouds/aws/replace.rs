//! Replacing AWS instances: an Auto Scaling group member is
//! terminated once its group's template is checked to launch the golden image; a standalone
//! instance gets a copy launched from the golden image, waited for, and only then is the old one
//! terminated. A dry run asks EC2 whether each call would be allowed and changes nothing.

use std::collections::HashMap;

use aws_sdk_ec2::Client;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::types::{
    Filter, IamInstanceProfileSpecification, InstanceStateName, ResourceType, Tag, TagSpecification,
};

use futures::FutureExt;
use futures::future::BoxFuture;

use super::{self as source, Settings};
use crate::queue::journal::{Progress, Step};
use crate::queue::rollout::{Executor, Finish, GroupCapacity, Inspection, Phase, Steps};
use crate::queue::{QueueEntry, Strategy};

/// The tag a replacement carries, naming the instance it replaces.
pub const REPLACES_TAG: &str = "fleetscope:replaces";

pub struct AwsExecutor {
    settings: Settings,
    clients: tokio::sync::Mutex<HashMap<(String, String), Client>>,
}

impl AwsExecutor {
    pub fn new(settings: Settings) -> AwsExecutor {
        AwsExecutor {
            settings,
            clients: tokio::sync::Mutex::default(),
        }
    }

    /// The client for the entry's profile (from its source, `aws:<profile>`) and region.
    async fn client(&self, entry: &QueueEntry) -> Result<Client, String> {
        let profile = entry
            .source
            .strip_prefix("aws:")
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                format!(
                    "queued without its AWS profile (source {:?}); queue it again",
                    entry.source
                )
            })?
            .to_owned();
        let key = (profile, entry.region.clone());
        let mut clients = self.clients.lock().await;
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let sdk = source::sdk_config(&self.settings, &key.0).await;
        let client = source::regional_client(&sdk, &key.1);
        clients.insert(key, client.clone());
        Ok(client)
    }
}

/// A dry run's answer: EC2 says "DryRunOperation" when the real call would have been allowed.
fn dry_run_outcome<E: ProvideErrorMetadata + std::error::Error + 'static, T>(
    what: &str,
    answer: Result<T, SdkError<E, aws_sdk_ec2::config::http::HttpResponse>>,
) -> Result<(), String> {
    match answer {
        Err(e) if e.code() == Some("DryRunOperation") => Ok(()),
        Err(e) => Err(format!("{what} (dry run): {}", source::describe(&e))),
        Ok(_) => Err(format!("{what} (dry run): EC2 ran it for real")),
    }
}

impl Executor for AwsExecutor {
    fn inspect<'a>(&'a self, entry: &'a QueueEntry) -> BoxFuture<'a, Result<Inspection, String>> {
        // Members of one group go one at a time until the group's capacity is read.
        let group = match &entry.strategy {
            Strategy::AwsTerminateInGroup { group } => Some(GroupCapacity {
                key: format!("{}/{}/{group}", entry.source, entry.region),
                desired: 1,
            }),
            _ => None,
        };
        futures::future::ready(Ok(Inspection {
            group,
            blocked: None,
        }))
        .boxed()
    }

    fn replace<'a>(
        &'a self,
        entry: &'a QueueEntry,
        steps: &'a Steps,
    ) -> BoxFuture<'a, Result<Finish, String>> {
        self.replace_one(entry, steps).boxed()
    }
}

impl AwsExecutor {
    async fn replace_one(&self, entry: &QueueEntry, steps: &Steps) -> Result<Finish, String> {
        let dry_run = steps.dry_run;
        let ec2 = self.client(entry).await?;
        let target = entry
            .target_image
            .as_deref()
            .ok_or("no golden image to replace it with")?;
        let Some(old) = live_instance(&ec2, &entry.instance_id).await? else {
            let why = "the instance is no longer running".to_owned();
            steps.record(Step::Skipped { why: why.clone() })?;
            return Ok(Finish::Skipped(why));
        };
        // A dry run only asks, whatever an earlier apply left behind.
        if dry_run {
            match &entry.strategy {
                Strategy::AwsTerminateInGroup { group } => {
                    check_group_template(&ec2, &old, group, target).await?;
                }
                Strategy::AwsLaunchCopy => dry_run_outcome(
                    "RunInstances",
                    launch_copy(&ec2, &old, target, entry, true).await,
                )?,
                other => return Err(format!("not an AWS strategy: {}", other.describe())),
            }
            dry_run_outcome(
                "TerminateInstances",
                terminate(&ec2, &entry.instance_id, true).await,
            )?;
            steps.record(Step::Checked)?;
            return Ok(Finish::WouldSucceed);
        }
        match &entry.strategy {
            Strategy::AwsTerminateInGroup { group } => {
                check_group_template(&ec2, &old, group, target).await?;
                steps.record(Step::Checked)?;
            }
            Strategy::AwsLaunchCopy => {
                let new_instance = match self
                    .earlier_copy(&ec2, entry, steps.progress.clone())
                    .await?
                {
                    Some(copy) => copy,
                    None => {
                        let launched = launch_copy(&ec2, &old, target, entry, false)
                            .await
                            .map_err(|e| format!("RunInstances: {}", source::describe(&e)))?
                            .instances()
                            .first()
                            .and_then(|i| i.instance_id())
                            .ok_or("RunInstances answered without an instance")?
                            .to_owned();
                        steps.record(Step::Launched {
                            new_instance: launched.clone(),
                        })?;
                        launched
                    }
                };
                steps.phase(Phase::WaitingHealthy);
                wait_until_running(steps, &ec2, &new_instance).await?;
                steps.record(Step::Running { new_instance })?;
            }
            other => return Err(format!("not an AWS strategy: {}", other.describe())),
        }
        terminate(&ec2, &entry.instance_id, false)
            .await
            .map_err(|e| format!("TerminateInstances: {}", source::describe(&e)))?;
        steps.record(Step::Replaced)?;
        Ok(Finish::Replaced)
    }
}

impl AwsExecutor {
    /// A copy launched by an earlier apply that was cut short, if it still lives: the one the
    /// journal names, else one carrying the replaces tag (launched just before a crash, before
    /// the journal could say so). It is reused, never launched again.
    async fn earlier_copy(
        &self,
        ec2: &Client,
        entry: &QueueEntry,
        progress: Progress,
    ) -> Result<Option<String>, String> {
        let candidates = match progress.launched {
            Some(journaled) => vec![journaled],
            None => {
                let answer = ec2
                    .describe_instances()
                    .filters(
                        Filter::builder()
                            .name(format!("tag:{REPLACES_TAG}"))
                            .values(&entry.instance_id)
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| format!("DescribeInstances: {}", source::describe(&e)))?;
                answer
                    .reservations()
                    .iter()
                    .flat_map(|r| r.instances())
                    .filter_map(|i| i.instance_id().map(str::to_owned))
                    .collect()
            }
        };
        for candidate in candidates {
            if live_instance(ec2, &candidate).await?.is_some() {
                return Ok(Some(candidate));
            }
        }
        Ok(None)
    }
}

/// Waits until the replacement runs; a replacement that is gone or stopped fails at once.
async fn wait_until_running(steps: &Steps, ec2: &Client, id: &str) -> Result<(), String> {
    steps
        .wait_until(&format!("the replacement {id} to run"), || async {
            let instance = live_instance(ec2, id).await?;
            match instance.as_ref().and_then(|i| i.state()).and_then(|s| s.name()) {
                Some(InstanceStateName::Running) => Ok(true),
                Some(InstanceStateName::Pending) => Ok(false),
                None => Err(format!(
                    "the replacement {id} is gone; the old instance was left as it was"
                )),
                Some(state) => Err(format!(
                    "the replacement {id} is {} instead of running; the old instance was left as it was",
                    state.as_str()
                )),
            }
        })
        .await
}

/// The instance as EC2 has it now; `None` when it is gone or terminating.
async fn live_instance(
    ec2: &Client,
    id: &str,
) -> Result<Option<aws_sdk_ec2::types::Instance>, String> {
    let answer = ec2.describe_instances().instance_ids(id).send().await;
    let answer = match answer {
        Err(e) if e.code() == Some("InvalidInstanceID.NotFound") => return Ok(None),
        other => other.map_err(|e| format!("DescribeInstances: {}", source::describe(&e)))?,
    };
    Ok(answer
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .find(|i| {
            !matches!(
                i.state().and_then(|s| s.name()),
                Some(InstanceStateName::ShuttingDown | InstanceStateName::Terminated)
            )
        })
        .cloned())
}

/// Terminating a group member only brings the golden image if the group launches it.
async fn check_group_template(
    ec2: &Client,
    old: &aws_sdk_ec2::types::Instance,
    group: &str,
    target: &str,
) -> Result<(), String> {
    let template = old
        .tags()
        .iter()
        .find(|t| t.key() == Some(super::collect::TEMPLATE_ID_TAG))
        .and_then(|t| t.value())
        .ok_or_else(|| format!("no launch template is recorded on the members of {group}"))?;
    let launches = super::collect::default_template_version(ec2, template)
        .await?
        .ok_or_else(|| format!("launch template {template} has no image in its default version"))?;
    if launches.image != target {
        return Err(format!(
            "{group} launches {} (template {template} version {}), not the golden {target}: point the template at it first",
            launches.image, launches.version
        ));
    }
    Ok(())
}

async fn terminate(
    ec2: &Client,
    id: &str,
    dry_run: bool,
) -> Result<
    aws_sdk_ec2::operation::terminate_instances::TerminateInstancesOutput,
    SdkError<
        aws_sdk_ec2::operation::terminate_instances::TerminateInstancesError,
        aws_sdk_ec2::config::http::HttpResponse,
    >,
> {
    ec2.terminate_instances()
        .instance_ids(id)
        .dry_run(dry_run)
        .send()
        .await
}

/// At most 64 characters, the same for every attempt at replacing this queued instance.
fn client_token(entry: &QueueEntry) -> String {
    let mut token = format!(
        "fleetscope-{}-{}",
        entry.queued_at.timestamp(),
        entry.instance_id
    );
    token.truncate(64);
    token
}

/// The same server on the golden image: type, subnet, security groups, key, instance profile
/// and tags (those AWS reserves aside), plus a tag naming the instance it replaces.
async fn launch_copy(
    ec2: &Client,
    old: &aws_sdk_ec2::types::Instance,
    image: &str,
    entry: &QueueEntry,
    dry_run: bool,
) -> Result<
    aws_sdk_ec2::operation::run_instances::RunInstancesOutput,
    SdkError<
        aws_sdk_ec2::operation::run_instances::RunInstancesError,
        aws_sdk_ec2::config::http::HttpResponse,
    >,
> {
    let mut tags: Vec<Tag> = old
        .tags()
        .iter()
        .filter(|t| {
            t.key()
                .is_some_and(|k| !k.starts_with("aws:") && k != REPLACES_TAG)
        })
        .cloned()
        .collect();
    tags.push(
        Tag::builder()
            .key(REPLACES_TAG)
            .value(old.instance_id().unwrap_or_default())
            .build(),
    );
    let security_groups: Vec<String> = old
        .security_groups()
        .iter()
        .filter_map(|g| g.group_id().map(str::to_owned))
        .collect();
    ec2.run_instances()
        .image_id(image)
        .set_instance_type(old.instance_type().cloned())
        .set_subnet_id(old.subnet_id().map(str::to_owned))
        .set_security_group_ids(Some(security_groups).filter(|g| !g.is_empty()))
        .set_key_name(old.key_name().map(str::to_owned))
        .set_iam_instance_profile(
            old.iam_instance_profile()
                .and_then(|p| p.arn())
                .map(|arn| IamInstanceProfileSpecification::builder().arn(arn).build()),
        )
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .set_tags(Some(tags))
                .build(),
        )
        .min_count(1)
        .max_count(1)
        // The same launch asked twice (a retry after a lost answer) starts one instance.
        .client_token(client_token(entry))
        .dry_run(dry_run)
        .send()
        .await
}
