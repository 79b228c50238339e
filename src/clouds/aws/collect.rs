//! AWS EC2 through the official SDK: one source per profile, its regions collected concurrently
//! (bounded), each region streaming its instances page by page, then the images they run, the
//! newer images of their lineages, and what their Auto Scaling groups launch (Auto Scaling API).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use aws_sdk_ec2::Client;
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{Filter, IpPermission, Tag};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use tokio::sync::mpsc;

use super::org::{self, Account, OrgSettings};
use super::{Clients, Settings, describe, regional_clients, sdk_config, source_name};
use crate::clouds::{AWS_ORGANIZATION_SOURCE, call, run_source};
use crate::core::event::{CollectEvent, Page};
use crate::core::lineage::strip_versions;
use crate::core::model::{
    Addresses, Cloud, Deprecation, Group, GroupKind, Image, Instance, Tags, Text,
};

/// The tag AWS itself puts on the members of Auto Scaling groups.
pub(crate) const GROUP_TAG: &str = "aws:autoscaling:groupName";
/// The most ids DescribeImages takes in one call, and the largest page DescribeInstances gives.
const IMAGE_BATCH: usize = 1_000;
const INSTANCE_PAGE: i32 = 1_000;
/// The most values one EC2 filter takes.
const FILTER_VALUES: usize = 200;
/// Ports whose exposure to the whole internet is a finding.
const ADMIN_PORTS: [(i32, &str); 2] = [(22, "22/tcp"), (3389, "3389/tcp")];

/// Collects every profile at once, and every account of the organization when organization
/// mode is on; each is one source, under its deadline.
pub async fn collect(settings: Settings, tx: mpsc::Sender<CollectEvent>) {
    let profiles = futures::future::join_all(settings.profiles.iter().map(|profile| {
        let work = collect_profile(&settings, profile, tx.clone());
        let (source, deadline, tx) = (source_name(profile), settings.deadline, &tx);
        async move { run_source(&source, deadline, tx, work).await }
    }));
    let organization = async {
        if let Some(org) = &settings.organization {
            collect_organization(&settings, org, &tx).await;
        }
    };
    futures::join!(profiles, organization);
}

async fn collect_profile(settings: &Settings, profile: &str, tx: mpsc::Sender<CollectEvent>) {
    let source = source_name(profile);
    let started = CollectEvent::Started {
        source: source.clone(),
        cloud: Cloud::Aws,
        expected_pages: None,
    };
    if tx.send(started).await.is_err() {
        return;
    }
    let sdk = sdk_config(settings, profile).await;
    collect_regions(settings, &source, &sdk, &tx).await;
}

/// Finds the organization's accounts, announces each (a suspended one as skipped), then
/// collects them, at most `accounts_at_once` together, each through its assumed role. Only a
/// failure to list the accounts is a failure of the organization itself.
async fn collect_organization(
    settings: &Settings,
    org: &OrgSettings,
    tx: &mpsc::Sender<CollectEvent>,
) {
    let base = sdk_config(settings, org.profile()).await;
    let mut found = None;
    let discovery = async {
        match org::discover(&base, org).await {
            Ok(discovered) => found = Some(discovered),
            Err(error) => {
                let failed = CollectEvent::Failed {
                    source: AWS_ORGANIZATION_SOURCE.to_owned(),
                    error: format!("listing the organization's accounts: {error}"),
                };
                let _ = tx.send(failed).await;
            }
        }
    };
    run_source(AWS_ORGANIZATION_SOURCE, settings.deadline, tx, discovery).await;
    let Some(discovered) = found else {
        return;
    };
    for account in &discovered.accounts {
        let event = if account.active {
            CollectEvent::Waiting {
                source: account.source.clone(),
                cloud: Cloud::Aws,
                account: Some(account.id.clone()),
            }
        } else {
            CollectEvent::Skipped {
                source: account.source.clone(),
                cloud: Cloud::Aws,
                account: Some(account.id.clone()),
                reason: "the account is suspended".to_owned(),
            }
        };
        if tx.send(event).await.is_err() {
            return;
        }
    }
    let place = Place {
        base: &base,
        org,
        management: discovered.management.as_deref(),
        partition: &discovered.partition,
    };
    // Owned, so that the stream's closure takes no borrowed argument (a `Send` future needs it).
    let active: Vec<Account> = discovered
        .accounts
        .iter()
        .filter(|a| a.active)
        .cloned()
        .collect();
    futures::stream::iter(active)
        .map(|account| collect_account(settings, &place, account, tx))
        .buffer_unordered(settings.accounts_at_once)
        .collect::<Vec<()>>()
        .await;
}

/// What every account of the organization is collected with.
struct Place<'a> {
    base: &'a aws_config::SdkConfig,
    org: &'a OrgSettings,
    management: Option<&'a str>,
    partition: &'a str,
}

/// One member account, through its assumed role, under its deadline.
async fn collect_account(
    settings: &Settings,
    place: &Place<'_>,
    account: Account,
    tx: &mpsc::Sender<CollectEvent>,
) {
    let work = async {
        let started = CollectEvent::Started {
            source: account.source.clone(),
            cloud: Cloud::Aws,
            expected_pages: None,
        };
        if tx.send(started).await.is_err() {
            return;
        }
        let sdk = org::account_config(
            place.base,
            place.org,
            place.management,
            place.partition,
            &account.id,
        )
        .await;
        if let Err(error) = org::check_role(&sdk, place.org, &account.id, &account.name).await {
            let source = account.source.clone();
            let _ = tx.send(CollectEvent::Failed { source, error }).await;
            return;
        }
        collect_regions(settings, &account.source, &sdk, tx).await;
    };
    run_source(&account.source, settings.deadline, tx, work).await;
}

/// Collects the source's regions, at most `concurrency` together, and ends the source.
async fn collect_regions(
    settings: &Settings,
    source: &str,
    sdk: &aws_config::SdkConfig,
    tx: &mpsc::Sender<CollectEvent>,
) {
    let source = source.to_owned();
    let regions = match &settings.regions[..] {
        [] => match call("DescribeRegions", enabled_regions(&Client::new(sdk))).await {
            Ok(regions) => regions,
            Err(error) => {
                let error = format!("listing regions: {error}");
                let _ = tx.send(CollectEvent::Failed { source, error }).await;
                return;
            }
        },
        configured => configured.to_vec(),
    };
    let context = RegionContext {
        source: &source,
        lineage_tag: settings.lineage_tag.as_deref(),
        tx,
    };
    let outcomes: Vec<(String, Result<(), String>)> = futures::stream::iter(regions)
        .map(|region| {
            let clients = regional_clients(sdk, &region);
            let context = &context;
            async move {
                let outcome = collect_region(&clients, &region, context).await;
                (region, outcome)
            }
        })
        .buffer_unordered(settings.concurrency)
        .collect()
        .await;
    let failures: Vec<String> = outcomes
        .iter()
        .filter_map(|(region, outcome)| outcome.as_ref().err().map(|e| format!("{region}: {e}")))
        .collect();
    // Every region failed: the source failed. Some did: what the others hold counts, and the
    // source is incomplete, naming them.
    let event = if failures.is_empty() {
        CollectEvent::Finished { source }
    } else if failures.len() == outcomes.len() {
        CollectEvent::Failed {
            source,
            error: failures.join("; "),
        }
    } else {
        CollectEvent::Incomplete {
            source,
            error: failures.join("; "),
        }
    };
    let _ = tx.send(event).await;
}

async fn enabled_regions(ec2: &Client) -> Result<Vec<String>, String> {
    let answer = ec2
        .describe_regions()
        .send()
        .await
        .map_err(|e| describe(&e))?;
    Ok(answer
        .regions()
        .iter()
        .filter(|r| r.opt_in_status() != Some("not-opted-in"))
        .filter_map(|r| r.region_name().map(str::to_owned))
        .collect())
}

struct RegionContext<'a> {
    source: &'a str,
    lineage_tag: Option<&'a str>,
    tx: &'a mpsc::Sender<CollectEvent>,
}

impl RegionContext<'_> {
    /// False once nobody listens (the UI quit, a refresh replaced this collection): stop then.
    async fn send(&self, event: CollectEvent) -> bool {
        self.tx.send(event).await.is_ok()
    }
}

/// An Auto Scaling group its members name; what it launches comes from the Auto Scaling API.
struct GroupSeen {
    account: String,
}

async fn collect_region(
    clients: &Clients,
    region: &str,
    context: &RegionContext<'_>,
) -> Result<(), String> {
    let ec2 = &clients.ec2;
    let mut image_ids: BTreeSet<String> = BTreeSet::new();
    let mut groups: BTreeMap<String, GroupSeen> = BTreeMap::new();

    let not_terminated = Filter::builder()
        .name("instance-state-name")
        .set_values(Some(
            ["pending", "running", "shutting-down", "stopping", "stopped"]
                .map(str::to_owned)
                .to_vec(),
        ))
        .build();
    let mut pages = ec2
        .describe_instances()
        .filters(not_terminated)
        .max_results(INSTANCE_PAGE)
        .into_paginator()
        .send();
    let instances_call = format!("DescribeInstances in {region}");
    // Side by side: the security groups with the first page of instances (the pages wait for
    // the groups, which give their exposure), and the region's Auto Scaling groups with what
    // they launch. Only images, then their lineages, wait for the instances.
    let launches = call(
        format!("DescribeAutoScalingGroups in {region}"),
        region_group_launches(clients),
    );
    let instances = async {
        let (groups_read, mut first) = futures::join!(
            call(
                format!("DescribeSecurityGroups in {region}"),
                world_open_groups(ec2)
            ),
            call(instances_call.clone(), pages.next()),
        );
        // Exposure is a finding on top; without permission to read security groups the
        // region's instances and images still count (and the warning comes if the region does).
        let (exposure, exposure_warning) = match groups_read {
            Ok(exposure) => (exposure, None),
            Err(error) => (HashMap::new(), Some(format!("exposure unknown: {error}"))),
        };
        loop {
            let page = match first.take() {
                Some(page) => page,
                None => match call(instances_call.as_str(), pages.next()).await {
                    Some(page) => page,
                    None => break,
                },
            };
            let page = page.map_err(|e| format!("DescribeInstances: {}", describe(&e)))?;
            let mut instances = Vec::new();
            for reservation in page.reservations() {
                let account = reservation.owner_id().unwrap_or_default();
                for found in reservation.instances() {
                    let Some(instance) =
                        to_instance(found, context.source, account, region, &exposure)
                    else {
                        continue;
                    };
                    image_ids.insert(instance.image.to_string());
                    if let Some(group) = tag_value(found.tags(), GROUP_TAG) {
                        groups.entry(group.to_owned()).or_insert_with(|| GroupSeen {
                            account: account.to_owned(),
                        });
                    }
                    instances.push(instance);
                }
            }
            let page = Page {
                source: context.source.to_owned(),
                instances,
                ..Page::default()
            };
            if !context.send(CollectEvent::Page(Box::new(page))).await {
                return Ok(None);
            }
        }
        Ok::<_, String>(Some(exposure_warning))
    };
    let (launches, listed) = futures::join!(launches, instances);
    // Nobody listens any more: stop.
    let Some(exposure_warning) = listed? else {
        return Ok(());
    };
    let (launches, template_warnings) = match launches {
        Ok(launches) => (launches, Vec::new()),
        Err(error) => (
            HashMap::new(),
            vec![format!("Auto Scaling groups: {error}")],
        ),
    };
    // Only the groups the region's instances name are the fleet's.
    let launches: HashMap<String, GroupLaunch> = launches
        .into_iter()
        .filter(|(name, _)| groups.contains_key(name))
        .collect();
    let mut template_warnings = template_warnings;
    for (name, launch) in &launches {
        image_ids.extend(launch.images.iter().cloned());
        if let Some(why) = &launch.unresolved {
            template_warnings.push(format!("group {name}: {why}"));
        }
    }
    let mut images = call(
        format!("DescribeImages in {region}"),
        describe_images(ec2, &image_ids),
    )
    .await?;
    let candidates = call(
        format!("DescribeImages (lineage) in {region}"),
        lineage_candidates(ec2, &images, context.lineage_tag),
    )
    .await?;
    let mut known: HashSet<String> = images.iter().map(|i| i.key.clone()).collect();
    for image in candidates {
        if known.insert(image.key.clone()) {
            images.push(image);
        }
    }
    for id in &image_ids {
        if !known.contains(id) {
            images.push(Image::unreadable(
                id.clone(),
                Cloud::Aws,
                "not returned by DescribeImages: deregistered, or not shared with this account",
            ));
        }
    }
    let groups = groups
        .into_iter()
        .map(|(name, seen)| {
            let launch = launches.get(&name);
            Group {
                key: format!("aws:{}:{region}:{name}", seen.account),
                cloud: Cloud::Aws,
                kind: GroupKind::Asg,
                account: seen.account,
                region: region.to_owned(),
                template: launch.map(|l| l.template.clone()),
                template_image: launch
                    .and_then(GroupLaunch::single_image)
                    .map(str::to_owned),
                name,
            }
        })
        .collect();
    let page = Page {
        source: context.source.to_owned(),
        images,
        groups,
        ..Page::default()
    };
    if !context.send(CollectEvent::Page(Box::new(page))).await {
        return Ok(());
    }
    for message in exposure_warning.into_iter().chain(template_warnings) {
        let warning = CollectEvent::Warning {
            source: context.source.to_owned(),
            message: format!("{region}: {message}"),
        };
        if !context.send(warning).await {
            break;
        }
    }
    Ok(())
}

fn tag_value<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

fn to_tags(tags: &[Tag]) -> Tags {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_owned(), t.value().unwrap_or("").to_owned())))
        .collect()
}

fn to_time(time: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(time.secs(), time.subsec_nanos())
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn to_instance(
    found: &aws_sdk_ec2::types::Instance,
    source: &str,
    account: &str,
    region: &str,
    exposure: &HashMap<String, Vec<String>>,
) -> Option<Instance> {
    let id = found.instance_id()?.to_owned();
    let image = found.image_id()?.to_owned();
    let tags = found.tags();
    let group = tag_value(tags, GROUP_TAG).map(|name| format!("aws:{account}:{region}:{name}"));
    let mut findings: Vec<String> = found
        .security_groups()
        .iter()
        .filter_map(|g| g.group_id())
        .filter_map(|g| exposure.get(g))
        .flatten()
        .cloned()
        .collect();
    findings.sort();
    findings.dedup();
    Some(Instance {
        id: id.into(),
        cloud: Cloud::Aws,
        source: source.into(),
        account: account.into(),
        region: region.into(),
        zone: found
            .placement()
            .and_then(|p| p.availability_zone())
            .unwrap_or_default()
            .into(),
        name: tag_value(tags, "Name").unwrap_or_default().into(),
        state: found
            .state()
            .and_then(|s| s.name())
            .map_or("unknown", |n| n.as_str())
            .into(),
        instance_type: found.instance_type().map_or("", |t| t.as_str()).into(),
        // An instance without a launch time is brand new as far as anyone can tell.
        launched: found
            .launch_time()
            .and_then(to_time)
            .unwrap_or_else(Utc::now),
        image: image.into(),
        group: group.map(Into::into),
        tags: to_tags(tags),
        exposure: findings,
        addresses: addresses_of(found),
    })
}

/// Every private and public address of the instance, its interfaces' included.
fn addresses_of(found: &aws_sdk_ec2::types::Instance) -> Addresses {
    let mut addresses = Addresses::default();
    let add = |list: &mut Vec<Text>, value: Option<&str>| {
        if let Some(value) = value.filter(|v| !v.is_empty())
            && !list.iter().any(|v| v == value)
        {
            list.push(value.into());
        }
    };
    add(&mut addresses.private_ips, found.private_ip_address());
    add(&mut addresses.public_ips, found.public_ip_address());
    add(&mut addresses.dns_names, found.private_dns_name());
    add(&mut addresses.dns_names, found.public_dns_name());
    for interface in found.network_interfaces() {
        for private in interface.private_ip_addresses() {
            add(&mut addresses.private_ips, private.private_ip_address());
            add(&mut addresses.dns_names, private.private_dns_name());
        }
        if let Some(association) = interface.association() {
            add(&mut addresses.public_ips, association.public_ip());
            add(&mut addresses.dns_names, association.public_dns_name());
        }
    }
    addresses
}

/// Security groups of the region that admit SSH or RDP from anywhere: group id -> findings.
async fn world_open_groups(ec2: &Client) -> Result<HashMap<String, Vec<String>>, String> {
    let mut open = HashMap::new();
    let mut pages = ec2
        .describe_security_groups()
        .max_results(1_000)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| format!("DescribeSecurityGroups: {}", describe(&e)))?;
        for group in page.security_groups() {
            let Some(id) = group.group_id() else {
                continue;
            };
            let findings: Vec<String> = group
                .ip_permissions()
                .iter()
                .flat_map(|rule| world_open_ports(id, rule))
                .collect();
            if !findings.is_empty() {
                open.insert(id.to_owned(), findings);
            }
        }
    }
    Ok(open)
}

fn world_open_ports(group: &str, rule: &IpPermission) -> Vec<String> {
    let protocol = rule.ip_protocol().unwrap_or("");
    let any_protocol = protocol == "-1";
    if !(any_protocol || protocol == "tcp" || protocol == "6") {
        return Vec::new();
    }
    let sources: Vec<&str> = rule
        .ip_ranges()
        .iter()
        .filter_map(|r| r.cidr_ip())
        .chain(rule.ipv6_ranges().iter().filter_map(|r| r.cidr_ipv6()))
        .filter(|cidr| matches!(*cidr, "0.0.0.0/0" | "::/0"))
        .collect();
    ADMIN_PORTS
        .iter()
        .filter(|(port, _)| {
            any_protocol
                || match (rule.from_port(), rule.to_port()) {
                    (Some(-1), Some(-1)) => true,
                    (Some(from), Some(to)) => from <= *port && *port <= to,
                    _ => false,
                }
        })
        .flat_map(|(_, label)| {
            sources
                .iter()
                .map(move |cidr| format!("{group} admits {label} from {cidr}"))
        })
        .collect()
}

/// What an Auto Scaling group launches and how it stands, as the Auto Scaling API says.
pub(crate) struct GroupLaunch {
    pub desired: u32,
    /// "launch template lt-1 version $Default (3)", "launch configuration web-lc", ...
    pub template: String,
    /// The images its launches use (several for a mixed-instances policy whose overrides name
    /// other templates); empty when none could be resolved.
    pub images: Vec<String>,
    /// Why some launch could not be resolved to an image.
    pub unresolved: Option<String>,
    pub members: Vec<Member>,
    /// The group as described, for a template step to change what it launches.
    pub described: aws_sdk_autoscaling::types::AutoScalingGroup,
}

#[derive(Clone)]
pub(crate) struct Member {
    pub id: String,
    pub lifecycle: String,
    pub healthy: bool,
}

impl GroupLaunch {
    /// The one image every launch of the group uses, if there is one.
    pub fn single_image(&self) -> Option<&str> {
        match &self.images[..] {
            [image] if self.unresolved.is_none() => Some(image),
            _ => None,
        }
    }

    /// Why terminating a member would not bring `target`; `None` when it would.
    pub fn refuses(&self, target: &str) -> Option<String> {
        if let Some(why) = &self.unresolved {
            return Some(format!("its {}: {why}", self.template));
        }
        let others: Vec<&str> = self
            .images
            .iter()
            .map(String::as_str)
            .filter(|i| *i != target)
            .collect();
        (!others.is_empty() || self.images.is_empty()).then(|| {
            format!(
                "it launches {} ({}), not the golden {target}: point it at the golden image first",
                if others.is_empty() {
                    "no image".to_owned()
                } else {
                    others.join(", ")
                },
                self.template
            )
        })
    }
}

/// Every Auto Scaling group of the region that has members, with what each launches: pages of
/// DescribeAutoScalingGroups, then one lookup per template version or launch configuration.
async fn region_group_launches(clients: &Clients) -> Result<HashMap<String, GroupLaunch>, String> {
    let mut launches = HashMap::new();
    for group in describe_all_groups(&clients.autoscaling).await? {
        let Some(name) = group.auto_scaling_group_name() else {
            continue;
        };
        if group.instances().is_empty() {
            continue;
        }
        launches.insert(name.to_owned(), group_launch(clients, &group).await);
    }
    Ok(launches)
}

async fn describe_all_groups(
    autoscaling: &aws_sdk_autoscaling::Client,
) -> Result<Vec<aws_sdk_autoscaling::types::AutoScalingGroup>, String> {
    describe_groups_named(autoscaling, None).await
}

/// The groups by name (absent ones left out) with what each launches: one DescribeAutoScalingGroups
/// per 50 names, then one lookup per template version or launch configuration.
pub(crate) async fn group_launches(
    clients: &Clients,
    names: &[String],
) -> Result<HashMap<String, GroupLaunch>, String> {
    let mut launches = HashMap::new();
    for chunk in names.chunks(50) {
        for group in describe_groups(&clients.autoscaling, chunk).await? {
            let Some(name) = group.auto_scaling_group_name() else {
                continue;
            };
            launches.insert(name.to_owned(), group_launch(clients, &group).await);
        }
    }
    Ok(launches)
}

pub(crate) async fn describe_groups(
    autoscaling: &aws_sdk_autoscaling::Client,
    names: &[String],
) -> Result<Vec<aws_sdk_autoscaling::types::AutoScalingGroup>, String> {
    describe_groups_named(autoscaling, Some(names)).await
}

/// The named groups, or every group of the region.
async fn describe_groups_named(
    autoscaling: &aws_sdk_autoscaling::Client,
    names: Option<&[String]>,
) -> Result<Vec<aws_sdk_autoscaling::types::AutoScalingGroup>, String> {
    let mut groups = Vec::new();
    let mut pages = autoscaling
        .describe_auto_scaling_groups()
        .set_auto_scaling_group_names(names.map(<[String]>::to_vec))
        .max_records(100)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| format!("DescribeAutoScalingGroups: {}", describe(&e)))?;
        groups.extend(page.auto_scaling_groups().iter().cloned());
    }
    Ok(groups)
}

/// The group's members and gates as the Auto Scaling API has them (no template lookups).
pub(crate) fn members_of(group: &aws_sdk_autoscaling::types::AutoScalingGroup) -> Vec<Member> {
    group
        .instances()
        .iter()
        .filter_map(|i| {
            Some(Member {
                id: i.instance_id()?.to_owned(),
                lifecycle: i.lifecycle_state().map_or("", |s| s.as_str()).to_owned(),
                healthy: i.health_status() == Some("Healthy"),
            })
        })
        .collect()
}

async fn group_launch(
    clients: &Clients,
    group: &aws_sdk_autoscaling::types::AutoScalingGroup,
) -> GroupLaunch {
    let mut launch = GroupLaunch {
        desired: group.desired_capacity().unwrap_or(0).max(0) as u32,
        template: String::new(),
        images: Vec::new(),
        unresolved: None,
        members: members_of(group),
        described: group.clone(),
    };
    let mut specs = Vec::new();
    if let Some(spec) = group.launch_template() {
        specs.push(spec);
    } else if let Some(policy) = group.mixed_instances_policy() {
        let template = policy.launch_template();
        specs.extend(template.and_then(|t| t.launch_template_specification()));
        specs.extend(
            template
                .map(|t| t.overrides())
                .unwrap_or_default()
                .iter()
                .filter_map(|o| o.launch_template_specification()),
        );
    }
    let mut named = Vec::new();
    if let Some(configuration) = group.launch_configuration_name() {
        launch.template = format!("launch configuration {configuration}");
        match configuration_image(&clients.autoscaling, configuration).await {
            Ok(image) => launch.images.push(image),
            Err(why) => launch.unresolved = Some(why),
        }
    }
    for spec in specs {
        let template = spec
            .launch_template_id()
            .or(spec.launch_template_name())
            .unwrap_or("?");
        let version = spec.version().unwrap_or("$Default");
        match template_version(&clients.ec2, spec, version).await {
            Ok((number, image)) => {
                named.push(format!(
                    "launch template {template} version {version} ({number})"
                ));
                if !launch.images.contains(&image) {
                    launch.images.push(image);
                }
            }
            Err(why) => {
                named.push(format!("launch template {template} version {version}"));
                launch.unresolved = Some(why);
            }
        }
    }
    if launch.template.is_empty() {
        launch.template = match named.len() {
            0 => {
                launch.unresolved =
                    Some("the group names no launch template or configuration".into());
                "no launch template".to_owned()
            }
            1 => named.remove(0),
            _ => format!("mixed instances policy: {}", named.join("; ")),
        };
    }
    launch
}

/// The version number and image of one version (`$Latest`, `$Default` or a number) of a
/// launch template named by id or name.
async fn template_version(
    ec2: &Client,
    spec: &aws_sdk_autoscaling::types::LaunchTemplateSpecification,
    version: &str,
) -> Result<(i64, String), String> {
    let answer = ec2
        .describe_launch_template_versions()
        .set_launch_template_id(spec.launch_template_id().map(str::to_owned))
        .set_launch_template_name(
            spec.launch_template_id()
                .is_none()
                .then(|| spec.launch_template_name().map(str::to_owned))
                .flatten(),
        )
        .versions(version)
        .send()
        .await
        .map_err(|e| format!("DescribeLaunchTemplateVersions: {}", describe(&e)))?;
    answer
        .launch_template_versions()
        .iter()
        .find_map(|v| {
            Some((
                v.version_number()?,
                v.launch_template_data()?.image_id()?.to_owned(),
            ))
        })
        .ok_or_else(|| format!("launch template version {version} names no image"))
}

async fn configuration_image(
    autoscaling: &aws_sdk_autoscaling::Client,
    name: &str,
) -> Result<String, String> {
    let answer = autoscaling
        .describe_launch_configurations()
        .launch_configuration_names(name)
        .send()
        .await
        .map_err(|e| format!("DescribeLaunchConfigurations: {}", describe(&e)))?;
    answer
        .launch_configurations()
        .first()
        .and_then(|c| c.image_id())
        .map(str::to_owned)
        .ok_or_else(|| format!("launch configuration {name} was not found"))
}

/// Describes images by id in batches; ids the answer leaves out are simply not returned, and a
/// batch AWS refuses whole for one missing or malformed id is split until the culprit is alone.
async fn describe_images(ec2: &Client, ids: &BTreeSet<String>) -> Result<Vec<Image>, String> {
    let ids: Vec<String> = ids.iter().cloned().collect();
    let mut pending: Vec<Vec<String>> = ids.chunks(IMAGE_BATCH).map(<[String]>::to_vec).collect();
    let mut images = Vec::new();
    while let Some(batch) = pending.pop() {
        let answer = ec2
            .describe_images()
            .set_image_ids(Some(batch.clone()))
            .include_deprecated(true)
            .send()
            .await;
        match answer {
            Ok(answer) => images.extend(answer.images().iter().filter_map(to_image)),
            Err(e) if is_missing_image(&e) => {
                if batch.len() > 1 {
                    let (left, right) = batch.split_at(batch.len() / 2);
                    pending.push(left.to_vec());
                    pending.push(right.to_vec());
                }
            }
            Err(e) => return Err(format!("DescribeImages: {}", describe(&e))),
        }
    }
    Ok(images)
}

fn is_missing_image<E: ProvideErrorMetadata>(error: &E) -> bool {
    matches!(
        error.code(),
        Some("InvalidAMIID.NotFound" | "InvalidAMIID.Malformed" | "InvalidAMIID.Unavailable")
    )
}

/// For each lineage in use, the same owner's images of that lineage, so that newer images no
/// instance runs yet are known and the golden image can be found. A lineage tag is looked up as
/// a tag filter; otherwise the name with its version tokens as wildcards (the same pattern the
/// lineage is named after) is a name filter; one call per owner and kind of filter.
async fn lineage_candidates(
    ec2: &Client,
    in_use: &[Image],
    lineage_tag: Option<&str>,
) -> Result<Vec<Image>, String> {
    // Owner and filter -> the values sought: one call asks for every lineage of an owner at once
    // (a filter's values are alternatives).
    let mut selectors: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for image in in_use.iter().filter(|i| i.readable && !i.owner.is_empty()) {
        let by_tag = lineage_tag.and_then(|tag| Some((tag, image.tags.get(tag)?)));
        let (filter, value) = match by_tag {
            Some((tag, value)) => (format!("tag:{tag}"), value.to_owned()),
            None if !image.name.is_empty() => ("name".to_owned(), strip_versions(&image.name)),
            None => continue,
        };
        selectors
            .entry((image.owner.clone(), filter))
            .or_default()
            .insert(value);
    }
    let mut found = Vec::new();
    for ((owner, filter), values) in selectors {
        let values: Vec<String> = values.into_iter().collect();
        for chunk in values.chunks(FILTER_VALUES) {
            let mut pages = ec2
                .describe_images()
                .owners(&owner)
                .filters(
                    Filter::builder()
                        .name(&filter)
                        .set_values(Some(chunk.to_vec()))
                        .build(),
                )
                .include_deprecated(true)
                .max_results(IMAGE_BATCH as i32)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page =
                    page.map_err(|e| format!("DescribeImages (lineage): {}", describe(&e)))?;
                found.extend(page.images().iter().filter_map(to_image));
            }
        }
    }
    Ok(found)
}

fn to_image(found: &aws_sdk_ec2::types::Image) -> Option<Image> {
    let deprecated_at = found.deprecation_time().and_then(parse_time);
    Some(Image {
        key: found.image_id()?.to_owned(),
        cloud: Cloud::Aws,
        name: found.name().unwrap_or_default().to_owned(),
        created: found.creation_date().and_then(parse_time),
        owner: found.owner_id().unwrap_or_default().to_owned(),
        owner_alias: found.image_owner_alias().map(str::to_owned),
        family: None,
        deprecation: deprecated_at.map(|at| Deprecation {
            at: Some(at),
            state: None,
        }),
        tags: to_tags(found.tags()),
        readable: true,
        unreadable_reason: None,
    })
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::types::{IpRange, Ipv6Range};

    use super::*;

    fn rule(protocol: &str, ports: Option<(i32, i32)>, cidr: &str) -> IpPermission {
        let mut rule = IpPermission::builder().ip_protocol(protocol);
        if let Some((from, to)) = ports {
            rule = rule.from_port(from).to_port(to);
        }
        if cidr.contains(':') {
            rule = rule.ipv6_ranges(Ipv6Range::builder().cidr_ipv6(cidr).build());
        } else {
            rule = rule.ip_ranges(IpRange::builder().cidr_ip(cidr).build());
        }
        rule.build()
    }

    #[test]
    fn ssh_and_rdp_open_to_the_world_are_findings() {
        assert_eq!(
            world_open_ports("sg-1", &rule("tcp", Some((22, 22)), "0.0.0.0/0")),
            ["sg-1 admits 22/tcp from 0.0.0.0/0"]
        );
        assert_eq!(
            world_open_ports("sg-1", &rule("tcp", Some((0, 65535)), "::/0")),
            [
                "sg-1 admits 22/tcp from ::/0",
                "sg-1 admits 3389/tcp from ::/0"
            ]
        );
        assert_eq!(
            world_open_ports("sg-1", &rule("-1", None, "0.0.0.0/0")).len(),
            2
        );
        assert!(world_open_ports("sg-1", &rule("tcp", Some((22, 22)), "10.0.0.0/8")).is_empty());
        assert!(world_open_ports("sg-1", &rule("tcp", Some((443, 443)), "0.0.0.0/0")).is_empty());
        assert!(world_open_ports("sg-1", &rule("udp", Some((22, 22)), "0.0.0.0/0")).is_empty());
    }

    #[test]
    fn times_from_the_wire() {
        assert_eq!(
            parse_time("2026-10-01T12:34:56.000Z").map(|t| t.to_rfc3339()),
            Some("2026-10-01T12:34:56+00:00".to_owned())
        );
        assert_eq!(parse_time("yesterday"), None);
    }
}
