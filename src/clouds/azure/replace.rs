//! Replacing Azure instances: a scale-set member is upgraded to its scale set's latest model
//! (`updateInstances`), only when that model launches the golden image (a template step,
//! `template`, points a drifted model there first), and is healthy once
//! it runs the latest model, its provisioning succeeded and (when the scale set runs the
//! application health extension) the extension reports it healthy. A standalone VM is not
//! executable. A dry run reads everything the real run checks and changes nothing.

use std::sync::OnceLock;

use futures::FutureExt;
use futures::future::BoxFuture;

use super::arm::{Arm, ArmId, ScaleSet};
use super::collect::image_key;
use super::{Settings, client, template};
use crate::queue::journal::{Call, Step};
use crate::queue::rollout::{
    Executor, Finish, GroupCapacity, Inspection, Phase, Steps, TemplateDone, TemplateStep,
};
use crate::queue::{QueueEntry, Strategy};

pub struct AzureExecutor {
    settings: Settings,
    arm: OnceLock<Result<Arm, String>>,
}

impl AzureExecutor {
    pub fn new(settings: Settings) -> AzureExecutor {
        AzureExecutor {
            settings,
            arm: OnceLock::new(),
        }
    }

    /// The client, set up on first use: an apply with no Azure entry never asks for a token.
    fn arm(&self) -> Result<&Arm, String> {
        self.arm
            .get_or_init(|| client(&self.settings))
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// The member's id and its scale set's, or why the entry is not a scale-set member.
pub(super) fn member_of(entry: &QueueEntry) -> Result<(ArmId, ArmId), String> {
    if !matches!(entry.strategy, Strategy::AzureUpgradeToModel { .. }) {
        return Err(format!(
            "not an Azure scale-set member ({}): a standalone VM is rebuilt from the golden image in its own pipeline",
            entry.strategy.describe()
        ));
    }
    let id = ArmId::parse(&entry.instance_id);
    if id.get("virtualmachinescalesets").is_empty() || id.get("virtualmachines").is_empty() {
        return Err(format!(
            "{} is not a scale-set member id: a standalone VM is rebuilt from the golden image in its own pipeline",
            entry.instance_id
        ));
    }
    let scale_set = ArmId::parse(&id.scale_set_id());
    Ok((id, scale_set))
}

/// The scale set's model must launch the golden image, or upgrading brings the old one back.
pub(super) fn check_model(set: &ScaleSet, target: &str) -> Result<(), String> {
    let model = set.image.as_ref().map(image_key);
    if model.as_deref() == Some(target) {
        return Ok(());
    }
    Err(format!(
        "the model of scale set {} launches {}, not the golden {target}: update the scale-set model first",
        set.name,
        model.as_deref().unwrap_or("no image reference")
    ))
}

impl Executor for AzureExecutor {
    fn inspect<'a>(&'a self, entry: &'a QueueEntry) -> BoxFuture<'a, Result<Inspection, String>> {
        async move {
            let (_, scale_set) = match member_of(entry) {
                Ok(ids) => ids,
                Err(why) => {
                    return Ok(Inspection {
                        group: None,
                        blocked: Some(why),
                        template: None,
                    });
                }
            };
            let target = entry
                .target_image
                .as_deref()
                .ok_or("no golden image to replace it with")?;
            let set = self
                .arm()?
                .scale_set(&scale_set)
                .await
                .map_err(|e| e.message)?;
            let (blocked, template) = match check_model(&set, target) {
                Ok(()) => (None, None),
                Err(drift) => match template::step(&set, target, drift) {
                    Ok(step) => (None, Some(step)),
                    Err(why) => (Some(why), None),
                },
            };
            Ok(Inspection {
                group: Some(GroupCapacity {
                    key: set.id.to_ascii_lowercase(),
                    desired: set.capacity.unwrap_or(1),
                }),
                blocked,
                template,
            })
        }
        .boxed()
    }

    fn replace<'a>(
        &'a self,
        entry: &'a QueueEntry,
        steps: &'a Steps,
    ) -> BoxFuture<'a, Result<Finish, String>> {
        self.replace_one(entry, steps).boxed()
    }

    fn update_template<'a>(
        &'a self,
        member: &'a QueueEntry,
        _step: &'a TemplateStep,
        steps: &'a Steps,
    ) -> BoxFuture<'a, Result<TemplateDone, String>> {
        async move { template::point_group(self.arm()?, member, steps).await }.boxed()
    }
}

impl AzureExecutor {
    async fn replace_one(&self, entry: &QueueEntry, steps: &Steps) -> Result<Finish, String> {
        let arm = self.arm()?;
        let (member, scale_set) = member_of(entry)?;
        let target = entry
            .target_image
            .as_deref()
            .ok_or("no golden image to replace it with")?;
        let Some(found) = arm.member(&member).await.map_err(|e| e.message)? else {
            let why = "the scale-set member is gone".to_owned();
            steps.record(Step::Skipped { why: why.clone() })?;
            return Ok(Finish::Skipped(why));
        };
        let set = arm.scale_set(&scale_set).await.map_err(|e| e.message)?;
        let on_latest_golden = found.latest_model_applied == Some(true)
            && found.image.as_ref().map(image_key).as_deref() == Some(target);
        // An earlier apply already started the upgrade: only the wait for health is left.
        let mut upgraded = steps.progress.terminated && !steps.dry_run;
        if !upgraded && !steps.dry_run && steps.progress.sent_unanswered(Call::Terminate) {
            // Sent before a crash or a lost answer: the VM keeps its id, so only the scale set
            // tells whether it went through (on the model already, or still updating).
            let health = arm.member_health(&member).await.map_err(|e| e.message)?;
            if on_latest_golden || health.provisioning.as_deref() == Some("updating") {
                steps.record(Step::Terminated)?;
                upgraded = true;
            }
        }
        if !upgraded {
            if let Err(drift) = check_model(&set, target) {
                // A dry run's template step changed nothing: the model it would write stands in.
                if !steps.dry_run || template::repoint(&set, target).is_err() {
                    return Err(drift);
                }
            }
            if on_latest_golden {
                let why =
                    "it already runs the scale set's latest model, on the golden image".to_owned();
                steps.record(Step::Skipped { why: why.clone() })?;
                return Ok(Finish::Skipped(why));
            }
            steps.record(Step::Checked)?;
            if steps.dry_run {
                // Reading the member's health proves the gate can be read too.
                arm.member_health(&member).await.map_err(|e| e.message)?;
                return Ok(Finish::WouldSucceed);
            }
            steps.record(Step::Intent {
                call: Call::Terminate,
            })?;
            let instance = member.get("virtualmachines").to_owned();
            arm.update_instances(&scale_set, &[instance])
                .await
                .map_err(|e| e.message)?;
            steps.record(Step::Terminated)?;
        }
        steps.phase(Phase::WaitingHealthy);
        let health_extension = set.health_extension;
        steps
            .wait_until(
                &format!("{} to be healthy on the latest model", found.name),
                || async {
                    let now = arm.member(&member).await.map_err(|e| e.message)?;
                    let Some(now) = now else {
                        return Err(format!("{} disappeared during its upgrade", found.name));
                    };
                    let health = arm.member_health(&member).await.map_err(|e| e.message)?;
                    match health.provisioning.as_deref() {
                        Some("failed") => {
                            return Err(format!(
                                "{}: provisioning failed during the upgrade",
                                found.name
                            ));
                        }
                        Some("succeeded") => {}
                        _ => return Ok(false),
                    }
                    if now.latest_model_applied != Some(true) {
                        return Ok(false);
                    }
                    Ok(!health_extension || health.application.as_deref() == Some("healthy"))
                },
            )
            .await?;
        steps.record(Step::Healthy {
            new_instance: entry.instance_id.clone(),
        })?;
        steps.record(Step::Replaced)?;
        Ok(Finish::Replaced)
    }
}
