//! Replacing AWS instances, each behind a health gate. An Auto Scaling group member is
//! terminated through the Auto Scaling API without lowering the group's desired capacity, and
//! its slot frees once the group is back at that capacity with every member in service (and
//! healthy in its target groups). A standalone instance gets a copy on the golden image; once
//! the copy runs with both status checks ok, it takes the old one's place in its load balancer
//! target groups, and only when it is healthy there is the old one drained and terminated.
//! A dry run asks EC2 whether each call would be allowed and changes nothing.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::types::{
    DeviceType, Filter, IamInstanceProfileSpecification, InstanceLifecycleType, InstanceStateName,
    ResourceType, SummaryStatus, Tag, TagSpecification,
};
use aws_sdk_elasticloadbalancingv2::types::{
    TargetDescription, TargetHealthStateEnum, TargetTypeEnum,
};
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::time::Instant;

use super::collect::{describe_groups, group_launches, members_of};
use super::target::{Target, dry_run_outcome, group_key};
use super::template::{Found, Templates};
use super::{self as source, Clients, Settings, org};
use crate::queue::journal::{Call, Step};
use crate::queue::rollout::{
    Executor, Finish, GroupCapacity, Inspection, Phase, Steps, TemplateDone, TemplateStep,
};
use crate::queue::{QueueEntry, Strategy};

/// The tag a replacement carries, naming the instance it replaces.
pub const REPLACES_TAG: &str = "fleetscope:replaces";

pub struct AwsExecutor {
    settings: Settings,
    clients: tokio::sync::Mutex<HashMap<(Account, String), Clients>>,
    /// Each account's SDK config, made once whatever its regions: one credential load, and
    /// for an organization's account one AssumeRole, per apply.
    configs: tokio::sync::Mutex<HashMap<Account, aws_config::SdkConfig>>,
    /// The organization's base config, with its management account and partition, asked once.
    organization: tokio::sync::Mutex<Option<(aws_config::SdkConfig, org::Identity)>>,
    /// The latest look at each group being waited on, shared by its members' waits so that a
    /// group is described at most once per poll interval however many members wait on it.
    groups: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<GroupLook>>>>>,
    /// Whether an instance type comes with instance-store volumes; types do not change.
    instance_store: tokio::sync::Mutex<HashMap<String, bool>>,
    templates: Templates,
}

/// A group as last described: when, and what it said.
#[derive(Clone)]
struct GroupLook {
    at: Instant,
    desired: u32,
    members: Vec<super::collect::Member>,
    /// Members that are registered but not healthy in one of the group's target groups.
    unhealthy_targets: Vec<String>,
}

impl AwsExecutor {
    pub fn new(settings: Settings) -> AwsExecutor {
        AwsExecutor {
            settings,
            clients: tokio::sync::Mutex::default(),
            configs: tokio::sync::Mutex::default(),
            organization: tokio::sync::Mutex::default(),
            groups: std::sync::Mutex::default(),
            instance_store: tokio::sync::Mutex::default(),
            templates: Templates::default(),
        }
    }

    /// The clients for the entry's profile (from its source, `aws:<profile>`) and region; for
    /// an organization's account (a source that names no configured profile), the clients of
    /// the role assumed in the entry's account.
    async fn target<'a>(&self, entry: &'a QueueEntry) -> Result<Target<'a>, String> {
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
        let place = format!("{} {}", entry.source, entry.region);
        let from_profile = self.settings.profiles.contains(&profile);
        let key = match (from_profile, &self.settings.organization) {
            (true, _) => Account::Profile(profile),
            (false, Some(_)) if !entry.account.is_empty() => Account::Member(entry.account.clone()),
            _ => {
                return Err(format!(
                    "{} names no configured profile, and organization mode is off",
                    entry.source
                ));
            }
        };
        let key = (key, entry.region.clone());
        let mut clients = self.clients.lock().await;
        let clients = match clients.get(&key) {
            Some(found) => found.clone(),
            None => {
                let sdk = self.account_config(&key.0).await?;
                let made = source::regional_clients(&sdk, &key.1);
                clients.insert(key, made.clone());
                made
            }
        };
        Ok(Target {
            clients,
            place,
            entry,
        })
    }

    /// The SDK config of a profile, or of an organization's account (its assumed role,
    /// checked before use), made once per account.
    async fn account_config(&self, account: &Account) -> Result<aws_config::SdkConfig, String> {
        let mut configs = self.configs.lock().await;
        if let Some(known) = configs.get(account) {
            return Ok(known.clone());
        }
        let sdk = match account {
            Account::Profile(profile) => source::sdk_config(&self.settings, profile).await,
            Account::Member(id) => self.member_config(id).await?,
        };
        configs.insert(account.clone(), sdk.clone());
        Ok(sdk)
    }

    async fn member_config(&self, account: &str) -> Result<aws_config::SdkConfig, String> {
        let Some(org) = &self.settings.organization else {
            return Err("organization mode is off".to_owned());
        };
        let (base, identity) = {
            let mut known = self.organization.lock().await;
            match &*known {
                Some(found) => found.clone(),
                None => {
                    let base = source::sdk_config(&self.settings, org.profile()).await;
                    let client = aws_sdk_organizations::Client::new(&base);
                    let found = (base, org::identify(&client).await?);
                    *known = Some(found.clone());
                    found
                }
            }
        };
        let sdk = org::account_config(
            &base,
            org,
            identity.management.as_deref(),
            &identity.partition,
            account,
        )
        .await;
        org::check_role(&sdk, org, account, account).await?;
        Ok(sdk)
    }
}

/// Whose credentials change an entry's instances.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Account {
    Profile(String),
    /// An account of the organization, by id.
    Member(String),
}

impl Executor for AwsExecutor {
    fn inspect<'a>(&'a self, entry: &'a QueueEntry) -> BoxFuture<'a, Result<Inspection, String>> {
        self.inspect_one(entry).boxed()
    }

    fn replace<'a>(
        &'a self,
        entry: &'a QueueEntry,
        steps: &'a Steps,
    ) -> BoxFuture<'a, Result<Finish, String>> {
        async move {
            let target = self.target(entry).await?;
            let golden = entry
                .target_image
                .as_deref()
                .ok_or("no golden image to replace it with")?;
            match &entry.strategy {
                Strategy::AwsTerminateInGroup { group } => {
                    self.replace_member(&target, group, golden, steps).await
                }
                Strategy::AwsLaunchCopy => self.replace_standalone(&target, golden, steps).await,
                other => Err(format!("not an AWS strategy: {}", other.describe())),
            }
        }
        .boxed()
    }

    fn update_template<'a>(
        &'a self,
        member: &'a QueueEntry,
        _step: &'a TemplateStep,
        steps: &'a Steps,
    ) -> BoxFuture<'a, Result<TemplateDone, String>> {
        async move {
            let target = self.target(member).await?;
            let golden = member
                .target_image
                .as_deref()
                .ok_or("no golden image to point the group at")?;
            let Strategy::AwsTerminateInGroup { group } = &member.strategy else {
                return Err(format!(
                    "not a group member: {}",
                    member.strategy.describe()
                ));
            };
            self.templates.update(&target, group, golden, steps).await
        }
        .boxed()
    }
}

impl AwsExecutor {
    async fn inspect_one(&self, entry: &QueueEntry) -> Result<Inspection, String> {
        let asked = Instant::now();
        let target = self.target(entry).await?;
        let Some(golden) = entry.target_image.as_deref() else {
            return Ok(Inspection {
                group: None,
                blocked: Some("no golden image to replace it with".into()),
                template: None,
            });
        };
        match &entry.strategy {
            Strategy::AwsTerminateInGroup { group } => {
                let launches = group_launches(&target.clients, std::slice::from_ref(group))
                    .await
                    .map_err(|e| target.located(e))?;
                let Some(launch) = launches.get(group) else {
                    return Ok(Inspection {
                        group: None,
                        blocked: Some(format!("its Auto Scaling group {group} no longer exists")),
                        template: None,
                    });
                };
                let capacity = Some(GroupCapacity {
                    key: group_key(entry, group),
                    desired: launch.desired,
                });
                let Some(why) = launch.refuses(golden) else {
                    return Ok(Inspection {
                        group: capacity,
                        blocked: None,
                        template: None,
                    });
                };
                if launch.unresolved.is_some() {
                    return Ok(Inspection {
                        group: capacity,
                        blocked: Some(format!("group {group}: {why}")),
                        template: None,
                    });
                }
                // It launches another image: a template step may point it at the golden one.
                let found = self
                    .templates
                    .inspect(&target, group, launch, golden, asked)
                    .await?;
                Ok(match found {
                    Found::Step(step) => Inspection {
                        group: capacity,
                        blocked: None,
                        template: Some(step),
                    },
                    Found::Blocked(why) => Inspection {
                        group: capacity,
                        blocked: Some(why),
                        template: None,
                    },
                })
            }
            Strategy::AwsLaunchCopy => {
                // Gone already: nothing blocks it, and the replacement skips it.
                let Some(old) = live_instance(&target, &entry.instance_id).await? else {
                    return Ok(Inspection::default());
                };
                Ok(Inspection {
                    group: None,
                    blocked: self.cannot_copy(&target, &old).await?,
                    template: None,
                })
            }
            other => Ok(Inspection {
                group: None,
                blocked: Some(format!("not an AWS strategy: {}", other.describe())),
                template: None,
            }),
        }
    }

    /// Why a copy would not be the same server: what a launch from the golden image cannot
    /// carry over. `None` when it can be copied faithfully.
    async fn cannot_copy(
        &self,
        target: &Target<'_>,
        old: &aws_sdk_ec2::types::Instance,
    ) -> Result<Option<String>, String> {
        if old.instance_lifecycle() == Some(&InstanceLifecycleType::Spot)
            || old.spot_instance_request_id().is_some()
        {
            return Ok(Some(
                "a spot instance: its spot request would not carry over to a copy".into(),
            ));
        }
        if old.network_interfaces().len() > 1 {
            return Ok(Some(format!(
                "{} network interfaces: a copy would get only one",
                old.network_interfaces().len()
            )));
        }
        if old.root_device_type() == Some(&DeviceType::InstanceStore) {
            return Ok(Some(
                "its root volume is an instance store: its data would not carry over".into(),
            ));
        }
        if let Some(kind) = old.instance_type()
            && self.has_instance_store(target, kind.as_str()).await?
        {
            return Ok(Some(format!(
                "its type {} has instance-store volumes: their data would not carry over",
                kind.as_str()
            )));
        }
        let id = old.instance_id().unwrap_or_default();
        let addresses = target
            .clients
            .ec2
            .describe_addresses()
            .filters(Filter::builder().name("instance-id").values(id).build())
            .send()
            .await
            .map_err(target.failed("DescribeAddresses"))?;
        if let Some(address) = addresses.addresses().first() {
            return Ok(Some(format!(
                "it holds the Elastic IP {}: move it by hand, a copy would not get it",
                address.public_ip().unwrap_or("?")
            )));
        }
        Ok(None)
    }

    async fn has_instance_store(&self, target: &Target<'_>, kind: &str) -> Result<bool, String> {
        let mut known = self.instance_store.lock().await;
        if let Some(answer) = known.get(kind) {
            return Ok(*answer);
        }
        let answer = target
            .clients
            .ec2
            .describe_instance_types()
            .instance_types(kind.into())
            .send()
            .await
            .map_err(target.failed("DescribeInstanceTypes"))?;
        let has = answer
            .instance_types()
            .first()
            .and_then(|t| t.instance_storage_supported())
            .unwrap_or(false);
        known.insert(kind.to_owned(), has);
        Ok(has)
    }

    /// Terminate the member through its group, keeping the desired capacity, then wait for the
    /// group to be whole again.
    async fn replace_member(
        &self,
        target: &Target<'_>,
        group: &str,
        golden: &str,
        steps: &Steps,
    ) -> Result<Finish, String> {
        let entry = target.entry;
        let old = &entry.instance_id;
        if !steps.progress.terminated || steps.dry_run {
            let launches = group_launches(&target.clients, &[group.to_owned()])
                .await
                .map_err(|e| target.located(e))?;
            let launch = launches
                .get(group)
                .ok_or_else(|| format!("its Auto Scaling group {group} no longer exists"))?;
            // A dry run's template step changed nothing, but found it could.
            let pointed = steps.dry_run
                && self
                    .templates
                    .dry_run_pointed(&group_key(entry, group), golden);
            if let Some(why) = launch.refuses(golden).filter(|_| !pointed) {
                return Err(format!("group {group}: {why}"));
            }
            let member = launch.members.iter().find(|m| &m.id == old);
            // Sent before a crash or a lost answer: the group tells whether it went through.
            let sent = !steps.dry_run && steps.progress.sent_unanswered(Call::Terminate);
            let leaving = member.is_none_or(|m| {
                m.lifecycle.starts_with("Terminating") || m.lifecycle == "Terminated"
            });
            if sent && leaving {
                steps.record(Step::Terminated)?;
                return self.wait_for_group(target, group, steps).await;
            }
            if member.is_none() {
                let why = format!("no longer a member of {group}");
                if !steps.dry_run {
                    steps.record(Step::Skipped { why: why.clone() })?;
                }
                return Ok(Finish::Skipped(why));
            }
            steps.record(Step::Checked)?;
            if steps.dry_run {
                // The Auto Scaling API has no dry run; the group and its template were checked.
                return Ok(Finish::WouldSucceed);
            }
            steps.record(Step::Intent {
                call: Call::Terminate,
            })?;
            target
                .clients
                .autoscaling
                .terminate_instance_in_auto_scaling_group()
                .instance_id(old)
                .should_decrement_desired_capacity(false)
                .send()
                .await
                .map_err(target.failed("TerminateInstanceInAutoScalingGroup"))?;
            steps.record(Step::Terminated)?;
        }
        self.wait_for_group(target, group, steps).await
    }

    /// After the member's termination: waits until the group is whole again without it.
    async fn wait_for_group(
        &self,
        target: &Target<'_>,
        group: &str,
        steps: &Steps,
    ) -> Result<Finish, String> {
        let entry = target.entry;
        let old = &entry.instance_id;
        // Only answers fetched after the termination tell whether the group has made up for it.
        let terminated_at = Instant::now();
        steps.phase(Phase::WaitingHealthy);
        let key = group_key(entry, group);
        steps
            .wait_until(
                &format!("{group} to be back at its desired capacity, every member in service"),
                || async {
                    let look = self
                        .look_at_group(
                            target,
                            &key,
                            group,
                            terminated_at.max(Instant::now() - steps.poll),
                        )
                        .await?;
                    Ok(group_is_whole(&look, old))
                },
            )
            .await?;
        steps.record(Step::Replaced)?;
        Ok(Finish::Replaced)
    }

    /// The group as described at or after `fresh_since`: one describe serves every member
    /// waiting on the group.
    async fn look_at_group(
        &self,
        target: &Target<'_>,
        key: &str,
        group: &str,
        fresh_since: Instant,
    ) -> Result<GroupLook, String> {
        let slot = {
            let mut groups = self
                .groups
                .lock()
                .map_err(|_| "the group cache is unusable after an earlier failure".to_owned())?;
            groups.entry(key.to_owned()).or_default().clone()
        };
        let mut last = slot.lock().await;
        if let Some(look) = last.as_ref()
            && look.at >= fresh_since
        {
            return Ok(look.clone());
        }
        let at = Instant::now();
        let found = describe_groups(&target.clients.autoscaling, &[group.to_owned()])
            .await
            .map_err(|e| target.located(e))?;
        let found = found
            .first()
            .ok_or_else(|| format!("its Auto Scaling group {group} no longer exists"))?;
        let members = members_of(found);
        let mut unhealthy_targets = Vec::new();
        // Target health only matters once the group itself is whole; asking earlier is waste.
        let in_service = members
            .iter()
            .all(|m| m.lifecycle == "InService" || m.lifecycle.starts_with("Terminating"));
        if in_service {
            for arn in found.target_group_arns() {
                let health = target
                    .clients
                    .elb
                    .describe_target_health()
                    .target_group_arn(arn)
                    .send()
                    .await
                    .map_err(target.failed("DescribeTargetHealth"))?;
                for description in health.target_health_descriptions() {
                    let id = description
                        .target()
                        .and_then(|t| t.id())
                        .unwrap_or_default();
                    let state = description.target_health().and_then(|h| h.state());
                    if members.iter().any(|m| m.id == id)
                        && state != Some(&TargetHealthStateEnum::Healthy)
                    {
                        unhealthy_targets.push(id.to_owned());
                    }
                }
            }
        }
        let look = GroupLook {
            at,
            desired: found.desired_capacity().unwrap_or(0).max(0) as u32,
            members,
            unhealthy_targets,
        };
        *last = Some(look.clone());
        Ok(look)
    }

    async fn replace_standalone(
        &self,
        target: &Target<'_>,
        golden: &str,
        steps: &Steps,
    ) -> Result<Finish, String> {
        let entry = target.entry;
        let old_id = &entry.instance_id;
        let progress = &steps.progress;
        let Some(old) = live_instance(target, old_id).await? else {
            if (progress.terminated || progress.sent_unanswered(Call::Terminate)) && !steps.dry_run
            {
                // The copy took over and was healthy before the old one went, by our hand.
                if !progress.terminated {
                    steps.record(Step::Terminated)?;
                }
                steps.record(Step::Replaced)?;
                return Ok(Finish::Replaced);
            }
            let why = "the instance is no longer running".to_owned();
            if !steps.dry_run {
                steps.record(Step::Skipped { why: why.clone() })?;
            }
            return Ok(Finish::Skipped(why));
        };
        if steps.dry_run {
            // A dry run only asks, whatever an earlier apply left behind.
            if let Some(why) = self.cannot_copy(target, &old).await? {
                return Err(why);
            }
            dry_run_outcome(
                target,
                "RunInstances",
                launch_copy(&target.clients.ec2, &old, golden, entry, true).await,
            )?;
            // ELBv2 has no dry run: reading the registrations shows they can be read.
            registrations(target, old_id).await?;
            dry_run_outcome(
                target,
                "TerminateInstances",
                terminate(&target.clients.ec2, old_id, true).await,
            )?;
            steps.record(Step::Checked)?;
            return Ok(Finish::WouldSucceed);
        }
        let copy = match self.earlier_copy(target, steps).await? {
            Some(copy) => {
                if progress.launched.is_none() {
                    // Launched just before a crash: the outcome the journal never got.
                    steps.record(Step::Launched {
                        new_instance: copy.clone(),
                    })?;
                }
                copy
            }
            None => {
                // The client token makes a second send start nothing new; the tag finds it.
                steps.record(Step::Intent { call: Call::Launch })?;
                let launched = launch_copy(&target.clients.ec2, &old, golden, entry, false)
                    .await
                    .map_err(target.failed("RunInstances"))?
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
        wait_until_running_and_ok(steps, target, &copy).await?;
        steps.record(Step::Running {
            new_instance: copy.clone(),
        })?;

        let registered = registrations(target, old_id).await?;
        if !registered.is_empty() {
            if !progress.registered {
                steps.record(Step::Intent {
                    call: Call::Register,
                })?;
                for registration in &registered {
                    target
                        .clients
                        .elb
                        .register_targets()
                        .target_group_arn(&registration.group)
                        .targets(target_description(&copy, registration.port))
                        .send()
                        .await
                        .map_err(target.failed("RegisterTargets"))?;
                }
                steps.record(Step::Registered {
                    new_instance: copy.clone(),
                })?;
            }
            steps.phase(Phase::WaitingHealthy);
            wait_until_healthy_in(steps, target, &copy, &registered).await?;
        }
        steps.record(Step::Healthy {
            new_instance: copy.clone(),
        })?;
        if !registered.is_empty() {
            if !progress.drained {
                steps.record(Step::Intent {
                    call: Call::Deregister,
                })?;
                for registration in &registered {
                    target
                        .clients
                        .elb
                        .deregister_targets()
                        .target_group_arn(&registration.group)
                        .targets(target_description(old_id, registration.port))
                        .send()
                        .await
                        .map_err(target.failed("DeregisterTargets"))?;
                }
                steps.record(Step::Draining)?;
            }
            // Connections in flight get the target group's deregistration delay to finish.
            steps.phase(Phase::Draining);
            let delay = registered.iter().map(|r| r.delay).max().unwrap_or_default();
            tokio::time::sleep(delay).await;
        }
        steps.record(Step::Intent {
            call: Call::Terminate,
        })?;
        terminate(&target.clients.ec2, old_id, false)
            .await
            .map_err(target.failed("TerminateInstances"))?;
        steps.record(Step::Terminated)?;
        steps.record(Step::Replaced)?;
        Ok(Finish::Replaced)
    }

    /// A copy launched by an earlier apply that was cut short, if it still lives: the one the
    /// journal names, else one carrying the replaces tag (launched just before a crash, before
    /// the journal could say so). It is reused, never launched again.
    async fn earlier_copy(
        &self,
        target: &Target<'_>,
        steps: &Steps,
    ) -> Result<Option<String>, String> {
        let candidates = match &steps.progress.launched {
            Some(journaled) => vec![journaled.clone()],
            None => {
                let answer = target
                    .clients
                    .ec2
                    .describe_instances()
                    .filters(
                        Filter::builder()
                            .name(format!("tag:{REPLACES_TAG}"))
                            .values(&target.entry.instance_id)
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(target.failed("DescribeInstances"))?;
                answer
                    .reservations()
                    .iter()
                    .flat_map(|r| r.instances())
                    .filter_map(|i| i.instance_id().map(str::to_owned))
                    .collect()
            }
        };
        for candidate in candidates {
            if live_instance(target, &candidate).await?.is_some() {
                return Ok(Some(candidate));
            }
        }
        Ok(None)
    }
}

/// Whole again: at its desired capacity without `old`, every member in service and healthy,
/// healthy in its target groups too; members on their way out are no longer counted.
fn group_is_whole(look: &GroupLook, old: &str) -> bool {
    let staying: Vec<_> = look
        .members
        .iter()
        .filter(|m| {
            m.id != old && !m.lifecycle.starts_with("Terminating") && m.lifecycle != "Terminated"
        })
        .collect();
    staying.len() >= look.desired as usize
        && staying
            .iter()
            .all(|m| m.lifecycle == "InService" && m.healthy)
        && look.unhealthy_targets.is_empty()
}

fn target_description(id: &str, port: Option<i32>) -> TargetDescription {
    TargetDescription::builder().id(id).set_port(port).build()
}

/// One target group an instance is registered in.
struct Registration {
    group: String,
    port: Option<i32>,
    /// The group's deregistration delay.
    delay: std::time::Duration,
}

/// The instance-type target groups of the region that have `id` registered (draining
/// included), with the port it is registered on.
async fn registrations(target: &Target<'_>, id: &str) -> Result<Vec<Registration>, String> {
    let elb = &target.clients.elb;
    let mut found = Vec::new();
    let mut pages = elb.describe_target_groups().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(target.failed("DescribeTargetGroups"))?;
        for group in page.target_groups() {
            if group
                .target_type()
                .is_some_and(|t| *t != TargetTypeEnum::Instance)
            {
                continue;
            }
            let Some(arn) = group.target_group_arn() else {
                continue;
            };
            let health = elb
                .describe_target_health()
                .target_group_arn(arn)
                .send()
                .await
                .map_err(target.failed("DescribeTargetHealth"))?;
            let registered = health.target_health_descriptions().iter().find(|d| {
                d.target().and_then(|t| t.id()) == Some(id)
                    && d.target_health().and_then(|h| h.state())
                        != Some(&TargetHealthStateEnum::Unused)
            });
            let Some(registered) = registered else {
                continue;
            };
            let attributes = elb
                .describe_target_group_attributes()
                .target_group_arn(arn)
                .send()
                .await
                .map_err(target.failed("DescribeTargetGroupAttributes"))?;
            let delay = attributes
                .attributes()
                .iter()
                .find(|a| a.key() == Some("deregistration_delay.timeout_seconds"))
                .and_then(|a| a.value())
                .and_then(|v| v.parse::<u64>().ok())
                // AWS's default when the attribute is not reported.
                .unwrap_or(300);
            found.push(Registration {
                group: arn.to_owned(),
                port: registered.target().and_then(|t| t.port()),
                delay: std::time::Duration::from_secs(delay),
            });
        }
    }
    Ok(found)
}

/// Waits until the copy is healthy in every target group the old instance is in.
async fn wait_until_healthy_in(
    steps: &Steps,
    target: &Target<'_>,
    copy: &str,
    registered: &[Registration],
) -> Result<(), String> {
    steps
        .wait_until(
            &format!("the replacement {copy} to be healthy in its target groups; the old instance was left serving"),
            || async {
                for registration in registered {
                    let health = target
                        .clients
                        .elb
                        .describe_target_health()
                        .target_group_arn(&registration.group)
                        .targets(target_description(copy, registration.port))
                        .send()
                        .await
                        .map_err(target.failed("DescribeTargetHealth"))?;
                    let healthy = health.target_health_descriptions().iter().any(|d| {
                        d.target_health().and_then(|h| h.state())
                            == Some(&TargetHealthStateEnum::Healthy)
                    });
                    if !healthy {
                        return Ok(false);
                    }
                }
                Ok(true)
            },
        )
        .await
}

/// Waits until the replacement runs and passes both EC2 status checks; a replacement that is
/// gone or stopped fails at once.
async fn wait_until_running_and_ok(
    steps: &Steps,
    target: &Target<'_>,
    id: &str,
) -> Result<(), String> {
    steps
        .wait_until(
            &format!("the replacement {id} to run and pass its status checks; the old instance was left as it was"),
            || async {
                let answer = target
                    .clients
                    .ec2
                    .describe_instance_status()
                    .instance_ids(id)
                    .include_all_instances(true)
                    .send()
                    .await;
                let answer = match answer {
                    Err(e) if e.code() == Some("InvalidInstanceID.NotFound") => {
                        return Err(format!(
                            "the replacement {id} is gone; the old instance was left as it was"
                        ));
                    }
                    other => other.map_err(target.failed("DescribeInstanceStatus"))?,
                };
                let Some(status) = answer.instance_statuses().first() else {
                    return Ok(false);
                };
                match status.instance_state().and_then(|s| s.name()) {
                    Some(InstanceStateName::Running) => {}
                    Some(InstanceStateName::Pending) | None => return Ok(false),
                    Some(state) => {
                        return Err(format!(
                            "the replacement {id} is {} instead of running; the old instance was left as it was",
                            state.as_str()
                        ));
                    }
                }
                let ok = |s: Option<&aws_sdk_ec2::types::InstanceStatusSummary>| {
                    s.and_then(|s| s.status()) == Some(&SummaryStatus::Ok)
                };
                Ok(ok(status.system_status()) && ok(status.instance_status()))
            },
        )
        .await
}

/// The instance as EC2 has it now; `None` when it is gone or terminating.
async fn live_instance(
    target: &Target<'_>,
    id: &str,
) -> Result<Option<aws_sdk_ec2::types::Instance>, String> {
    let answer = target
        .clients
        .ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await;
    let answer = match answer {
        Err(e) if e.code() == Some("InvalidInstanceID.NotFound") => return Ok(None),
        other => other.map_err(target.failed("DescribeInstances"))?,
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

async fn terminate(
    ec2: &aws_sdk_ec2::Client,
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
    ec2: &aws_sdk_ec2::Client,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clouds::aws::collect::Member;

    fn member(id: &str, lifecycle: &str, healthy: bool) -> Member {
        Member {
            id: id.into(),
            lifecycle: lifecycle.into(),
            healthy,
        }
    }

    #[test]
    fn a_group_is_whole_at_desired_capacity_with_every_member_in_service() {
        let look = |members: Vec<Member>, unhealthy: Vec<String>| GroupLook {
            at: Instant::now(),
            desired: 2,
            members,
            unhealthy_targets: unhealthy,
        };
        let whole = look(
            vec![
                member("i-old", "Terminating", true),
                member("i-a", "InService", true),
                member("i-new", "InService", true),
            ],
            vec![],
        );
        assert!(group_is_whole(&whole, "i-old"));
        // The replacement is still starting: one short.
        let starting = look(
            vec![
                member("i-a", "InService", true),
                member("i-new", "Pending", true),
            ],
            vec![],
        );
        assert!(!group_is_whole(&starting, "i-old"));
        // The old member still listed as in service does not count for the group.
        let not_yet = look(
            vec![
                member("i-old", "InService", true),
                member("i-a", "InService", true),
            ],
            vec![],
        );
        assert!(!group_is_whole(&not_yet, "i-old"));
        let unhealthy = look(
            vec![
                member("i-a", "InService", true),
                member("i-new", "InService", true),
            ],
            vec!["i-new".into()],
        );
        assert!(!group_is_whole(&unhealthy, "i-old"));
        let sick = look(
            vec![
                member("i-a", "InService", true),
                member("i-new", "InService", false),
            ],
            vec![],
        );
        assert!(!group_is_whole(&sick, "i-old"));
    }
}
