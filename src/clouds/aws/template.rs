//! Template steps on AWS: an Auto Scaling group whose launch template or launch configuration
//! launches another image than the golden one is made to launch the golden one, everything else
//! as the operator wrote it, before its members roll.
//!
//! - A launch template (named by the group or by its mixed-instances policy) gets a new version
//!   from the version the group launches now: `CreateLaunchTemplateVersion` with `SourceVersion`
//!   and that version's whole data, only `ImageId` changed. Its description names fleetscope,
//!   the golden image and the source version, which is how a resumed step finds it rather than
//!   making a second. Then the group launches it: under `$Latest` at once, under `$Default` once
//!   `ModifyLaunchTemplate` makes it the default, under a number once `UpdateAutoScalingGroup`
//!   names it (a mixed-instances policy resent whole, only the version changed).
//! - A launch configuration gets a copy with the golden image under a name derived from the old
//!   one and the image, then `UpdateAutoScalingGroup` names the copy.
//!
//! Nothing is deleted: the old version or configuration stays, and the step names the command
//! that points the group back.

mod request;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use aws_sdk_autoscaling::types::{
    AutoScalingGroup, LaunchConfiguration, LaunchTemplateSpecification, MixedInstancesPolicy,
};
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::ResponseLaunchTemplateData;
use tokio::time::Instant;

use super::collect::{GroupLaunch, describe_groups};
use super::target::{Target, dry_run_outcome, group_key};
use crate::queue::journal::{Call, Step};
use crate::queue::rollout::{Steps, TemplateDone, TemplateStep};

/// The template steps' share of the executor: what the members of one plan found together, and
/// what a dry run found it could do.
#[derive(Default)]
pub(super) struct Templates {
    /// Per group key and golden image, the latest look at its drift: the members of a group,
    /// inspected together by a plan, share one.
    looks: std::sync::Mutex<HashMap<String, Look>>,
    /// Groups (key, golden image) a dry run's template step found it could point at the golden
    /// image: their members' dry runs take it as done, as the real run would have it.
    dry_run_pointed: std::sync::Mutex<HashSet<(String, String)>>,
}

/// One group's latest look, and when it was made.
type Look = Arc<tokio::sync::Mutex<Option<(Instant, Found)>>>;

/// What a drifted group's inspection found.
#[derive(Clone)]
pub(super) enum Found {
    /// A template step fixes it.
    Step(TemplateStep),
    /// It cannot be fixed faithfully: why, in one line.
    Blocked(String),
}

/// What a group launches from, as a template step changes it.
enum Launcher {
    /// A launch template at a version (`$Latest`, `$Default` or a number), named by the group
    /// or by its mixed-instances policy, kept to be resent with only the version changed.
    Template {
        spec: LaunchTemplateSpecification,
        policy: Option<Box<MixedInstancesPolicy>>,
    },
    Configuration(String),
}

impl Launcher {
    /// The group's launch source, or why a template step cannot change it faithfully.
    fn of(group: &AutoScalingGroup) -> Result<Launcher, String> {
        if let Some(name) = group.launch_configuration_name() {
            return Ok(Launcher::Configuration(name.to_owned()));
        }
        if let Some(spec) = group.launch_template() {
            return Ok(Launcher::Template {
                spec: spec.clone(),
                policy: None,
            });
        }
        let policy = group
            .mixed_instances_policy()
            .ok_or("the group names no launch template or configuration")?;
        let template = policy.launch_template();
        let spec = template
            .and_then(|t| t.launch_template_specification())
            .ok_or("its mixed instances policy names no launch template")?;
        let overrides = template.map(|t| t.overrides()).unwrap_or_default();
        let others: Vec<&str> = overrides
            .iter()
            .filter_map(|o| o.launch_template_specification())
            .map(|s| {
                s.launch_template_name()
                    .or(s.launch_template_id())
                    .unwrap_or("?")
            })
            .collect();
        if !others.is_empty() {
            return Err(format!(
                "overrides of its mixed instances policy name launch templates of their own ({}); point them at the golden image by hand",
                others.join(", ")
            ));
        }
        if let Some(image) = overrides.iter().find_map(|o| o.image_id()) {
            return Err(format!(
                "an override of its mixed instances policy sets its own image ({image}); change it by hand"
            ));
        }
        Ok(Launcher::Template {
            spec: spec.clone(),
            policy: Some(Box::new(policy.clone())),
        })
    }
}

/// How the group names its launch template's version.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pointing {
    Latest,
    Default,
    Number(String),
}

impl Pointing {
    fn of(spec: &LaunchTemplateSpecification) -> Pointing {
        match spec.version() {
            Some("$Latest") => Pointing::Latest,
            // AWS launches the default version when the group names none.
            None | Some("$Default") => Pointing::Default,
            Some(number) => Pointing::Number(number.to_owned()),
        }
    }
}

/// The launch template version a group launches now.
struct Source {
    id: String,
    name: String,
    number: i64,
    data: ResponseLaunchTemplateData,
    /// The service that manages the template, if one does.
    managed_by: Option<String>,
}

impl Source {
    fn image(&self) -> Option<&str> {
        self.data.image_id()
    }

    /// Why a new version from it would not be faithful.
    fn cannot_copy(&self) -> Option<String> {
        if let Some(manager) = &self.managed_by {
            return Some(format!(
                "launch template {} is managed by {manager}; change its image there",
                self.name
            ));
        }
        match self.image() {
            Some(image) if image.starts_with("resolve:ssm:") => Some(format!(
                "launch template {} takes its image from {image}; update that parameter instead",
                self.name
            )),
            None => Some(format!(
                "launch template {} version {} names no image",
                self.name, self.number
            )),
            Some(_) => None,
        }
    }

    fn label(&self, version: i64) -> String {
        format!("launch template {} version {version}", self.name)
    }
}

/// The versions after the source one: the newest number, and one an earlier template step made
/// from the source for the golden image, if there is one.
struct Later {
    latest: i64,
    made: Option<i64>,
}

/// "fleetscope: ami-… from version 1": how the step's version is known again.
fn version_description(golden: &str, source: i64) -> String {
    format!("fleetscope: {golden} from version {source}")
}

/// The copy of launch configuration `old` that launches `image`: the same name for the same
/// two, within AWS's 255 characters; a copy of a copy replaces the image in the name.
fn copy_name(old: &str, image: &str) -> String {
    let base = match old.rsplit_once("-ami-") {
        Some((base, id)) if !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric()) => base,
        _ => old,
    };
    let room = 255 - image.len() - 1;
    let base: String = base.chars().take(room).collect();
    format!("{base}-{image}")
}

/// The aws cli's options that reach the entry's profile and region.
fn cli_target(target: &Target<'_>) -> String {
    let profile = target
        .entry
        .source
        .strip_prefix("aws:")
        .unwrap_or("default");
    format!("--region {} --profile {profile}", target.entry.region)
}

/// Only a present, non-empty value: AWS answers "" (or []) for what was never set, and some
/// calls refuse an empty value where an absent one is fine.
fn given<T: AsRef<str>>(value: &Option<T>) -> Option<String> {
    value
        .as_ref()
        .map(|v| v.as_ref().to_owned())
        .filter(|v| !v.is_empty())
}

fn given_list<T: Clone>(value: &Option<Vec<T>>) -> Option<Vec<T>> {
    value.clone().filter(|v| !v.is_empty())
}

/// What the group launches instead of the golden image: the start of today's refusal.
fn launches_line(group: &str, launch: &GroupLaunch, golden: &str) -> String {
    let others: Vec<&str> = launch
        .images
        .iter()
        .map(String::as_str)
        .filter(|i| *i != golden)
        .collect();
    format!(
        "template drift: {group} launches {} ({})",
        if others.is_empty() {
            "no image".to_owned()
        } else {
            others.join(", ")
        },
        launch.template
    )
}

impl Templates {
    /// A drifted group as a template step would fix it, or why it cannot. Members of the group
    /// inspected at once share one look: a look made after `asked` is current enough.
    pub(super) async fn inspect(
        &self,
        target: &Target<'_>,
        group: &str,
        launch: &GroupLaunch,
        golden: &str,
        asked: Instant,
    ) -> Result<Found, String> {
        let key = group_key(target.entry, group);
        let slot = {
            let mut looks = self.looks.lock().map_err(|_| {
                "the template cache is unusable after an earlier failure".to_owned()
            })?;
            looks.entry(format!("{key} {golden}")).or_default().clone()
        };
        let mut last = slot.lock().await;
        if let Some((at, found)) = last.as_ref()
            && *at >= asked
        {
            return Ok(found.clone());
        }
        let at = Instant::now();
        let found = look(target, &key, group, launch, golden).await?;
        *last = Some((at, found.clone()));
        Ok(found)
    }

    /// Whether a dry run's template step for this group found it could point it at `golden`.
    pub(super) fn dry_run_pointed(&self, key: &str, golden: &str) -> bool {
        self.dry_run_pointed
            .lock()
            .is_ok_and(|p| p.contains(&(key.to_owned(), golden.to_owned())))
    }

    /// Makes `group` launch `golden`, journaled through `steps`; a dry run asks and changes
    /// nothing.
    pub(super) async fn update(
        &self,
        target: &Target<'_>,
        group: &str,
        golden: &str,
        steps: &Steps,
    ) -> Result<TemplateDone, String> {
        // What the group launches now, not what the plan saw.
        let described = describe_groups(&target.clients.autoscaling, &[group.to_owned()])
            .await
            .map_err(|e| target.located(e))?;
        let described = described
            .first()
            .ok_or_else(|| format!("its Auto Scaling group {group} no longer exists"))?;
        let launcher = Launcher::of(described)
            .map_err(|why| format!("group {group}: a template step cannot fix it: {why}"))?;
        let done = match launcher {
            Launcher::Template { spec, policy } => {
                new_version(target, group, &spec, policy, golden, steps).await?
            }
            Launcher::Configuration(old) => {
                copy_configuration(target, group, &old, golden, steps).await?
            }
        };
        if steps.dry_run
            && let Ok(mut pointed) = self.dry_run_pointed.lock()
        {
            pointed.insert((group_key(target.entry, group), golden.to_owned()));
        }
        Ok(done)
    }
}

/// The plan's look at a drifted group.
async fn look(
    target: &Target<'_>,
    key: &str,
    group: &str,
    launch: &GroupLaunch,
    golden: &str,
) -> Result<Found, String> {
    let launches = launches_line(group, launch, golden);
    let blocked =
        |why: String| Found::Blocked(format!("{launches}; a template step cannot fix it: {why}"));
    let describe = match Launcher::of(&launch.described) {
        Err(why) => return Ok(blocked(why)),
        Ok(Launcher::Configuration(old)) => format!(
            "point {group} at {golden} (launch configuration {old}: a copy, {}, which the group then launches)",
            copy_name(&old, golden)
        ),
        Ok(Launcher::Template { spec, policy }) => {
            let source = source_version(target, &spec).await?;
            if let Some(why) = source.cannot_copy() {
                return Ok(blocked(why));
            }
            let pointing = Pointing::of(&spec);
            let later = later_versions(
                target,
                &source,
                &pointing,
                &version_description(golden, source.number),
            )
            .await?;
            let version = match later.made {
                Some(made) => format!("version {made}, made by an earlier apply"),
                None => format!("version {}", later.latest + 1),
            };
            let how = match &pointing {
                Pointing::Latest => ", which the group launches as $Latest".to_owned(),
                Pointing::Default => {
                    "; then made the default version, which the group launches".to_owned()
                }
                Pointing::Number(from) => format!("; then the group launches it instead of {from}"),
            };
            format!(
                "point {group} at {golden} ({}launch template {}: {version}, from version {}{how})",
                if policy.is_some() {
                    "mixed instances policy, "
                } else {
                    ""
                },
                source.name,
                source.number
            )
        }
    };
    Ok(Found::Step(TemplateStep {
        group: key.to_owned(),
        describe,
        drift: format!("{launches}; point its template at {golden} first"),
    }))
}

/// The version `spec` names, resolved.
async fn source_version(
    target: &Target<'_>,
    spec: &LaunchTemplateSpecification,
) -> Result<Source, String> {
    let version = spec.version().unwrap_or("$Default");
    let answer = target
        .clients
        .ec2
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
        .map_err(target.failed("DescribeLaunchTemplateVersions"))?;
    let found = answer.launch_template_versions().first().ok_or_else(|| {
        target.located(format!(
            "launch template {} has no version {version}",
            spec.launch_template_name()
                .or(spec.launch_template_id())
                .unwrap_or("?")
        ))
    })?;
    let id = found
        .launch_template_id()
        .ok_or("DescribeLaunchTemplateVersions answered without the template's id")?;
    Ok(Source {
        id: id.to_owned(),
        name: found.launch_template_name().unwrap_or(id).to_owned(),
        number: found
            .version_number()
            .ok_or("DescribeLaunchTemplateVersions answered without a version number")?,
        data: found
            .launch_template_data()
            .cloned()
            .ok_or("DescribeLaunchTemplateVersions answered without the version's data")?,
        managed_by: found
            .operator()
            .filter(|o| o.managed() == Some(true))
            .map(|o| o.principal().unwrap_or("another service").to_owned()),
    })
}

/// The versions after `source`, looked through for one described as `description`. Under
/// `$Latest` there are none: a version made after it would be what the group launches.
async fn later_versions(
    target: &Target<'_>,
    source: &Source,
    pointing: &Pointing,
    description: &str,
) -> Result<Later, String> {
    let mut later = Later {
        latest: source.number,
        made: None,
    };
    if *pointing == Pointing::Latest {
        return Ok(later);
    }
    let mut pages = target
        .clients
        .ec2
        .describe_launch_template_versions()
        .launch_template_id(&source.id)
        .min_version((source.number + 1).to_string())
        .max_results(200)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(target.failed("DescribeLaunchTemplateVersions"))?;
        for version in page.launch_template_versions() {
            let Some(number) = version.version_number() else {
                continue;
            };
            later.latest = later.latest.max(number);
            if version.version_description() == Some(description) && later.made.is_none() {
                later.made = Some(number);
            }
        }
    }
    Ok(later)
}

/// A new version of the group's launch template on the golden image, then the group pointed at
/// it.
async fn new_version(
    target: &Target<'_>,
    group: &str,
    spec: &LaunchTemplateSpecification,
    policy: Option<Box<MixedInstancesPolicy>>,
    golden: &str,
    steps: &Steps,
) -> Result<TemplateDone, String> {
    let ec2 = &target.clients.ec2;
    let progress = &steps.progress;
    let source = source_version(target, spec).await?;
    if source.image() == Some(golden) {
        // Pointed already, by an earlier apply whose answer was lost, or by hand.
        let now = source.label(source.number);
        if !steps.dry_run {
            steps.record(Step::GroupPointed {
                template: now.clone(),
            })?;
        }
        return Ok(TemplateDone {
            now,
            revert: "nothing to point back: this apply changed nothing".to_owned(),
        });
    }
    if let Some(why) = source.cannot_copy() {
        return Err(format!("group {group}: {why}"));
    }
    let pointing = Pointing::of(spec);
    let description = version_description(golden, source.number);
    let later = later_versions(target, &source, &pointing, &description).await?;
    // Whether this step journaled anything yet: an unanswered intent in the journal is then an
    // older one's.
    let mut journaled = false;
    let new = match later.made {
        Some(made) => {
            if !steps.dry_run && progress.template_created.is_none() {
                // Made just before a crash, before the journal heard of it.
                steps.record(Step::TemplateCreated {
                    template: source.label(made),
                })?;
                journaled = true;
            }
            made
        }
        None if steps.dry_run => {
            dry_run_outcome(
                target,
                "CreateLaunchTemplateVersion",
                create_version(target, &source, golden, &description, true).await,
            )?;
            later.latest + 1
        }
        None => {
            if !progress.sent_unanswered(Call::CreateTemplate) {
                steps.record(Step::Intent {
                    call: Call::CreateTemplate,
                })?;
            }
            let made = create_version(target, &source, golden, &description, false)
                .await
                .map_err(target.failed("CreateLaunchTemplateVersion"))?
                .launch_template_version()
                .and_then(|v| v.version_number())
                .ok_or("CreateLaunchTemplateVersion answered without a version number")?;
            steps.record(Step::TemplateCreated {
                template: source.label(made),
            })?;
            journaled = true;
            made
        }
    };
    let cli = cli_target(target);
    let revert = match &pointing {
        Pointing::Latest => format!(
            "aws ec2 create-launch-template-version --launch-template-id {} --source-version {} --launch-template-data '{{}}' --version-description 'back to version {}' {cli}",
            source.id, source.number, source.number
        ),
        Pointing::Default => format!(
            "aws ec2 modify-launch-template --launch-template-id {} --default-version {} {cli}",
            source.id, source.number
        ),
        Pointing::Number(from) if policy.is_some() => format!(
            "aws autoscaling update-auto-scaling-group --auto-scaling-group-name {group} --mixed-instances-policy \"$(aws autoscaling describe-auto-scaling-groups --auto-scaling-group-names {group} --output json --query \"AutoScalingGroups[0].MixedInstancesPolicy | merge(@, {{LaunchTemplate: merge(LaunchTemplate, {{LaunchTemplateSpecification: {{LaunchTemplateId: '{}', Version: '{from}'}}}})}})\" {cli})\" {cli}",
            source.id
        ),
        Pointing::Number(from) => format!(
            "aws autoscaling update-auto-scaling-group --auto-scaling-group-name {group} --launch-template LaunchTemplateId={},Version={from} {cli}",
            source.id
        ),
    };
    let sent_before = !journaled && progress.sent_unanswered(Call::PointGroup);
    match &pointing {
        // The group launches the newest version: the new one, from now on.
        Pointing::Latest => {}
        Pointing::Default if steps.dry_run => {
            // Only the permission is asked: the version it would set is not made yet.
            let answer = ec2
                .modify_launch_template()
                .launch_template_id(&source.id)
                .default_version(source.number.to_string())
                .dry_run(true)
                .send()
                .await;
            dry_run_outcome(target, "ModifyLaunchTemplate", answer)?;
        }
        Pointing::Default => {
            if !sent_before {
                steps.record(Step::Intent {
                    call: Call::PointGroup,
                })?;
            }
            ec2.modify_launch_template()
                .launch_template_id(&source.id)
                .default_version(new.to_string())
                .send()
                .await
                .map_err(target.failed("ModifyLaunchTemplate"))?;
        }
        // The Auto Scaling API has no dry run: the group and its template were read.
        Pointing::Number(_) if steps.dry_run => {}
        Pointing::Number(_) => {
            if !sent_before {
                steps.record(Step::Intent {
                    call: Call::PointGroup,
                })?;
            }
            let spec = LaunchTemplateSpecification::builder()
                .launch_template_id(&source.id)
                .version(new.to_string())
                .build();
            let update = target
                .clients
                .autoscaling
                .update_auto_scaling_group()
                .auto_scaling_group_name(group);
            let update = match policy {
                Some(mut policy) => {
                    // The whole policy again, only its template's version changed.
                    if let Some(template) = policy.launch_template.as_mut() {
                        template.launch_template_specification = Some(spec);
                    }
                    update.mixed_instances_policy(*policy)
                }
                None => update.launch_template(spec),
            };
            update
                .send()
                .await
                .map_err(target.failed("UpdateAutoScalingGroup"))?;
        }
    }
    let now = source.label(new);
    if !steps.dry_run {
        steps.record(Step::GroupPointed {
            template: now.clone(),
        })?;
    }
    Ok(TemplateDone { now, revert })
}

async fn create_version(
    target: &Target<'_>,
    source: &Source,
    golden: &str,
    description: &str,
    dry_run: bool,
) -> Result<
    aws_sdk_ec2::operation::create_launch_template_version::CreateLaunchTemplateVersionOutput,
    aws_sdk_ec2::error::SdkError<
        aws_sdk_ec2::operation::create_launch_template_version::CreateLaunchTemplateVersionError,
        aws_sdk_ec2::config::http::HttpResponse,
    >,
> {
    // The same request asked twice (a retry after a lost answer) makes one version.
    let mut token = format!("fleetscope-{}-{}-{golden}", source.id, source.number);
    token.truncate(64);
    target
        .clients
        .ec2
        .create_launch_template_version()
        .launch_template_id(&source.id)
        // On AWS, what the data below cannot carry comes from the source version.
        .source_version(source.number.to_string())
        .version_description(description)
        .launch_template_data(request::with_image(&source.data, golden))
        .client_token(token)
        .dry_run(dry_run)
        .send()
        .await
}

/// A copy of the group's launch configuration on the golden image, then the group pointed at
/// the copy.
async fn copy_configuration(
    target: &Target<'_>,
    group: &str,
    old: &str,
    golden: &str,
    steps: &Steps,
) -> Result<TemplateDone, String> {
    let autoscaling = &target.clients.autoscaling;
    let progress = &steps.progress;
    let copy = copy_name(old, golden);
    let answer = autoscaling
        .describe_launch_configurations()
        .launch_configuration_names(old)
        .launch_configuration_names(&copy)
        .send()
        .await
        .map_err(target.failed("DescribeLaunchConfigurations"))?;
    let named = |name: &str| {
        answer
            .launch_configurations()
            .iter()
            .find(|c| c.launch_configuration_name() == Some(name))
    };
    let original =
        named(old).ok_or_else(|| format!("its launch configuration {old} no longer exists"))?;
    if original.image_id() == Some(golden) {
        let now = format!("launch configuration {old}");
        if !steps.dry_run {
            steps.record(Step::GroupPointed {
                template: now.clone(),
            })?;
        }
        return Ok(TemplateDone {
            now,
            revert: "nothing to point back: this apply changed nothing".to_owned(),
        });
    }
    let now = format!("launch configuration {copy}");
    // Whether this step journaled anything yet: an unanswered intent in the journal is then an
    // older one's.
    let mut journaled = false;
    match named(&copy) {
        Some(found) if found.image_id() != Some(golden) => {
            return Err(format!(
                "a launch configuration named {copy} exists already, launching {}; rename or delete it, then apply again",
                found.image_id().unwrap_or("no image")
            ));
        }
        Some(_) => {
            if !steps.dry_run && progress.template_created.is_none() {
                // Made just before a crash, before the journal heard of it.
                steps.record(Step::TemplateCreated {
                    template: now.clone(),
                })?;
                journaled = true;
            }
        }
        // The Auto Scaling API has no dry run: the configuration to copy was read.
        None if steps.dry_run => {}
        None => {
            if !progress.sent_unanswered(Call::CreateTemplate) {
                steps.record(Step::Intent {
                    call: Call::CreateTemplate,
                })?;
            }
            create_configuration(autoscaling, original, &copy, golden)
                .await
                .map_err(|e| refused_configuration(target, group, e))?;
            steps.record(Step::TemplateCreated {
                template: now.clone(),
            })?;
            journaled = true;
        }
    }
    if !steps.dry_run {
        if journaled || !progress.sent_unanswered(Call::PointGroup) {
            steps.record(Step::Intent {
                call: Call::PointGroup,
            })?;
        }
        autoscaling
            .update_auto_scaling_group()
            .auto_scaling_group_name(group)
            .launch_configuration_name(&copy)
            .send()
            .await
            .map_err(target.failed("UpdateAutoScalingGroup"))?;
        steps.record(Step::GroupPointed {
            template: now.clone(),
        })?;
    }
    Ok(TemplateDone {
        now,
        revert: format!(
            "aws autoscaling update-auto-scaling-group --auto-scaling-group-name {group} --launch-configuration-name {old} {}",
            cli_target(target)
        ),
    })
}

/// Every field of `old`, the image changed.
async fn create_configuration(
    autoscaling: &aws_sdk_autoscaling::Client,
    old: &LaunchConfiguration,
    name: &str,
    golden: &str,
) -> Result<
    aws_sdk_autoscaling::operation::create_launch_configuration::CreateLaunchConfigurationOutput,
    aws_sdk_autoscaling::error::SdkError<
        aws_sdk_autoscaling::operation::create_launch_configuration::CreateLaunchConfigurationError,
        aws_sdk_autoscaling::config::http::HttpResponse,
    >,
> {
    autoscaling
        .create_launch_configuration()
        .launch_configuration_name(name)
        .image_id(golden)
        .set_key_name(given(&old.key_name))
        .set_security_groups(given_list(&old.security_groups))
        .set_classic_link_vpc_id(given(&old.classic_link_vpc_id))
        .set_classic_link_vpc_security_groups(given_list(&old.classic_link_vpc_security_groups))
        // Base64 in the answer, as the request wants it.
        .set_user_data(given(&old.user_data))
        .set_instance_type(given(&old.instance_type))
        .set_kernel_id(given(&old.kernel_id))
        .set_ramdisk_id(given(&old.ramdisk_id))
        .set_block_device_mappings(given_list(&old.block_device_mappings))
        .set_instance_monitoring(old.instance_monitoring.clone())
        .set_spot_price(given(&old.spot_price))
        .set_iam_instance_profile(given(&old.iam_instance_profile))
        .set_ebs_optimized(old.ebs_optimized)
        .set_associate_public_ip_address(old.associate_public_ip_address)
        .set_placement_tenancy(given(&old.placement_tenancy))
        .set_metadata_options(old.metadata_options.clone())
        .send()
        .await
}

/// A failed CreateLaunchConfiguration in one line; AWS refusing new launch configurations
/// (accounts made since they were retired) says what to do instead.
fn refused_configuration<E, R>(
    target: &Target<'_>,
    group: &str,
    error: aws_sdk_autoscaling::error::SdkError<E, R>,
) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    if refuses_configurations(error.code(), error.message()) {
        return target.located(format!(
            "AWS refuses new launch configurations in this account: move {group} to a launch template, then apply again"
        ));
    }
    (target.failed("CreateLaunchConfiguration"))(error)
}

fn refuses_configurations(code: Option<&str>, message: Option<&str>) -> bool {
    let message = message.unwrap_or_default().to_ascii_lowercase();
    code == Some("UnsupportedOperation")
        || (message.contains("launch configuration")
            && (message.contains("not supported") || message.contains("not available")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_is_named_for_the_old_configuration_and_the_image_within_aws_limit() {
        let golden = "ami-0web0000000000003";
        assert_eq!(copy_name("web-lc", golden), "web-lc-ami-0web0000000000003");
        // A copy of a copy replaces the image rather than piling it on.
        assert_eq!(
            copy_name("web-lc-ami-0web0000000000002", golden),
            "web-lc-ami-0web0000000000003"
        );
        assert_eq!(
            copy_name("web-lc-v2", golden),
            "web-lc-v2-ami-0web0000000000003"
        );
        let long = "l".repeat(300);
        let named = copy_name(&long, golden);
        assert_eq!(named.len(), 255);
        assert!(named.ends_with(golden));
    }

    #[test]
    fn a_group_names_its_version_three_ways() {
        let spec = |v: Option<&str>| {
            LaunchTemplateSpecification::builder()
                .launch_template_id("lt-1")
                .set_version(v.map(str::to_owned))
                .build()
        };
        assert_eq!(Pointing::of(&spec(Some("$Latest"))), Pointing::Latest);
        assert_eq!(Pointing::of(&spec(Some("$Default"))), Pointing::Default);
        assert_eq!(Pointing::of(&spec(None)), Pointing::Default);
        assert_eq!(Pointing::of(&spec(Some("4"))), Pointing::Number("4".into()));
    }

    #[test]
    fn overrides_naming_other_templates_cannot_be_changed_faithfully() {
        use aws_sdk_autoscaling::types::{LaunchTemplate, LaunchTemplateOverrides};
        let spec = |id: &str| {
            LaunchTemplateSpecification::builder()
                .launch_template_id(id)
                .version("$Default")
                .build()
        };
        let group = AutoScalingGroup::builder()
            .mixed_instances_policy(
                MixedInstancesPolicy::builder()
                    .launch_template(
                        LaunchTemplate::builder()
                            .launch_template_specification(spec("lt-1"))
                            .overrides(
                                LaunchTemplateOverrides::builder()
                                    .instance_type("m7g.large")
                                    .launch_template_specification(spec("lt-arm"))
                                    .build(),
                            )
                            .build(),
                    )
                    .build(),
            )
            .build();
        let why = Launcher::of(&group).err().unwrap();
        assert!(why.contains("(lt-arm)"), "{why}");
    }

    #[test]
    fn launch_configurations_refused_by_aws_are_recognised() {
        assert!(refuses_configurations(
            Some("UnsupportedOperation"),
            Some("The Launch Configuration creation operation is not available in your account.")
        ));
        assert!(refuses_configurations(
            Some("ValidationError"),
            Some("New launch configurations are not supported")
        ));
        assert!(!refuses_configurations(
            Some("AlreadyExists"),
            Some("Launch Configuration by this name already exists")
        ));
    }

    #[test]
    fn every_field_of_a_version_is_carried_with_only_the_image_changed() {
        use aws_sdk_ec2::types as ec2;
        let data = ResponseLaunchTemplateData::builder()
            .image_id("ami-old")
            .kernel_id("aki-1")
            .ram_disk_id("ari-1")
            .ebs_optimized(true)
            .instance_type(ec2::InstanceType::M7gLarge)
            .key_name("ops")
            .user_data("IyEvYmluL3NoCg==")
            .disable_api_termination(true)
            .disable_api_stop(true)
            .instance_initiated_shutdown_behavior(ec2::ShutdownBehavior::Terminate)
            .security_group_ids("sg-1")
            .iam_instance_profile(
                ec2::LaunchTemplateIamInstanceProfileSpecification::builder()
                    .arn("arn:aws:iam::1:instance-profile/web")
                    .build(),
            )
            .block_device_mappings(
                ec2::LaunchTemplateBlockDeviceMapping::builder()
                    .device_name("/dev/xvda")
                    .ebs(
                        ec2::LaunchTemplateEbsBlockDevice::builder()
                            .volume_size(40)
                            .volume_type(ec2::VolumeType::Gp3)
                            .throughput(250)
                            .encrypted(true)
                            .build(),
                    )
                    .build(),
            )
            .network_interfaces(
                ec2::LaunchTemplateInstanceNetworkInterfaceSpecification::builder()
                    .device_index(0)
                    .subnet_id("subnet-1")
                    .groups("sg-2")
                    .ipv6_addresses(
                        ec2::InstanceIpv6Address::builder()
                            .ipv6_address("2001:db8::1")
                            .build(),
                    )
                    .build(),
            )
            .metadata_options(
                ec2::LaunchTemplateInstanceMetadataOptions::builder()
                    .http_tokens(ec2::LaunchTemplateHttpTokensState::Required)
                    .http_put_response_hop_limit(2)
                    .build(),
            )
            .instance_requirements(
                ec2::InstanceRequirements::builder()
                    .v_cpu_count(ec2::VCpuCountRange::builder().min(2).max(8).build())
                    .memory_mib(ec2::MemoryMiB::builder().min(4096).build())
                    .build(),
            )
            .build();
        let request = request::with_image(&data, "ami-new");
        assert_eq!(request.image_id(), Some("ami-new"));
        assert_eq!(request.kernel_id(), Some("aki-1"));
        assert_eq!(request.ram_disk_id(), Some("ari-1"));
        assert_eq!(request.instance_type(), data.instance_type());
        assert_eq!(request.user_data(), Some("IyEvYmluL3NoCg=="));
        assert_eq!(request.disable_api_stop(), Some(true));
        assert_eq!(request.security_group_ids(), ["sg-1"]);
        let ebs = request.block_device_mappings()[0].ebs().unwrap();
        assert_eq!(
            (ebs.volume_size(), ebs.throughput(), ebs.encrypted()),
            (Some(40), Some(250), Some(true))
        );
        let interface = &request.network_interfaces()[0];
        assert_eq!(interface.subnet_id(), Some("subnet-1"));
        assert_eq!(interface.groups(), ["sg-2"]);
        assert_eq!(
            interface.ipv6_addresses()[0].ipv6_address(),
            Some("2001:db8::1")
        );
        let metadata = request.metadata_options().unwrap();
        assert_eq!(metadata.http_put_response_hop_limit(), Some(2));
        let requirements = request.instance_requirements().unwrap();
        assert_eq!(
            requirements.v_cpu_count().map(|r| (r.min(), r.max())),
            Some((Some(2), Some(8)))
        );
        assert_eq!(requirements.memory_mib().and_then(|r| r.max()), None);
        // What the source did not set stays unset.
        assert!(request.placement().is_none());
        assert!(request.tag_specifications().is_empty());
    }
}
