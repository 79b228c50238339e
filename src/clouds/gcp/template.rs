//! The template step for a managed instance group whose template boots another image than the
//! golden one: the group's instance template is read whole with `get`, copied with only its boot
//! disk's `initializeParams.sourceImage` set to the golden image, and inserted (global or
//! regional, like the old one) under a name derived from the old template and the image; then
//! `setInstanceTemplate` on the group (zonal or regional). Each call is waited to DONE through its
//! operation. The old template stays. The name is what makes a resumed step safe: the copy is
//! looked up by it first, so it is never inserted twice.

use google_cloud_compute_v1::model;

use super::collect::{GroupRef, Location, image_key};
use super::replace::{
    GroupCheck, Place, check_group, find_by_name, find_member, moved, project_of,
    wait_for_operation,
};
use super::{Clients, describe, last_segment, resource_path};
use crate::queue::QueueEntry;
use crate::queue::journal::{Call, Step};
use crate::queue::rollout::{Steps, TemplateDone, TemplateStep};

/// How the description of a fleetscope copy begins; it goes on with the template it was copied
/// from, so a group found already pointed at a copy still knows what it launched before.
const COPY_OF: &str = "fleetscope: a copy of ";
const WITH_IMAGE: &str = " with the boot image ";

/// Links as Compute writes them, whatever endpoint answered.
const PUBLIC: &str = "https://www.googleapis.com/compute/v1/";

/// The template step that points a drifted group at the golden image, or why none can do it
/// faithfully (then its members are left queued with that reason).
pub(super) fn step(group: &GroupRef, check: &GroupCheck) -> Result<TemplateStep, String> {
    if let Err(why) = faithful(group, check) {
        let drift = check.drift.as_deref().unwrap_or_default();
        return Err(format!("{drift}, and a template step cannot fix it: {why}"));
    }
    Ok(TemplateStep {
        group: group.key.clone(),
        describe: format!(
            "point {} at {} ({}: a copy named {}, only the boot image changed)",
            group.name,
            check.golden,
            kind_and_name(&check.path),
            copy_name(&check.path, &check.golden)
        ),
        drift: check.refusal().unwrap_or_default(),
    })
}

/// Why pointing the group at a copy of its template would not do what the plan says.
fn faithful(group: &GroupRef, check: &GroupCheck) -> Result<(), String> {
    let versions = &check.manager.versions;
    if versions.len() > 1 {
        let templates: Vec<&str> = versions
            .iter()
            .filter_map(|v| v.instance_template.as_deref())
            .map(last_segment)
            .collect();
        return Err(format!(
            "{} runs {} versions, a canary split ({}); finish or roll back the split first",
            group.name,
            versions.len(),
            templates.join(", ")
        ));
    }
    let policy = check
        .manager
        .update_policy
        .as_ref()
        .and_then(|p| p.r#type.as_ref())
        .and_then(|t| t.name());
    if policy == Some("PROACTIVE") {
        return Err(format!(
            "{}'s update policy is PROACTIVE, so Compute would replace every member itself, outside the rollout's canary and waves; set it to OPPORTUNISTIC first",
            group.name
        ));
    }
    // Inserted with its source instance, a copy would be made from that instance again and
    // the image change lost.
    if let Some(source) = check
        .template
        .source_instance
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        return Err(format!(
            "template {} was made from the instance {}, which a copy would be made from again",
            last_segment(&check.path),
            last_segment(source)
        ));
    }
    Ok(())
}

/// "instance template web-3", "regional instance template api-3".
fn kind_and_name(path: &str) -> String {
    let kind = match path.contains("/regions/") {
        true => "regional instance template",
        false => "instance template",
    };
    format!("{kind} {}", last_segment(path))
}

/// The copy's name: the old name (less a suffix an earlier copy added, so names do not grow
/// bake after bake), then `-fs` and a hash of the old template's path and the golden image.
/// Compute names are at most 63 characters (RFC 1035); the old name is cut to fit.
fn copy_name(old_path: &str, golden: &str) -> String {
    let old = last_segment(old_path);
    let base = match old.rsplit_once("-fs") {
        Some((base, hash))
            if !base.is_empty()
                && hash.len() == 8
                && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) =>
        {
            base
        }
        _ => old,
    };
    let suffix = format!("-fs{}", short_hash(&format!("{old_path} {golden}")));
    let base: String = base.chars().take(63 - suffix.len()).collect();
    format!("{base}{suffix}")
}

/// FNV-1a, folded to 32 bits: the same on every build and platform, which std's hasher is not.
fn short_hash(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{:08x}", (hash ^ (hash >> 32)) as u32)
}

/// Where a template lives, from its path.
enum Scope {
    Global,
    Region(String),
}

impl Scope {
    fn of(path: &str) -> Result<Scope, String> {
        let parts: Vec<&str> = path.split('/').collect();
        match parts.as_slice() {
            [.., "global", "instanceTemplates", _] => Ok(Scope::Global),
            [.., "regions", region, "instanceTemplates", _] => Ok(Scope::Region((*region).into())),
            _ => Err(format!("not an instance template link: {path}")),
        }
    }

    fn place(&self) -> Place<'_> {
        match self {
            Scope::Global => Place::Global,
            Scope::Region(region) => Place::Region(region),
        }
    }

    fn path(&self, project: &str, name: &str) -> String {
        match self {
            Scope::Global => format!("projects/{project}/global/instanceTemplates/{name}"),
            Scope::Region(region) => {
                format!("projects/{project}/regions/{region}/instanceTemplates/{name}")
            }
        }
    }
}

/// The gcloud command that points the group back at `template`.
fn revert_command(group: &GroupRef, template: &str) -> String {
    // gcloud takes a global template by name, a regional one by its path.
    let template = match template.contains("/regions/") {
        true => template.to_owned(),
        false => last_segment(template).to_owned(),
    };
    let place = match &group.location {
        Location::Zone(zone) => format!("--zone={zone}"),
        Location::Region(region) => format!("--region={region}"),
    };
    format!(
        "gcloud compute instance-groups managed set-instance-template {} --template={template} {place} --project={}",
        group.name, group.project
    )
}

/// Carries out the template step for the group of `entry`, a member queued in it.
pub(super) async fn update(
    clients: &Clients,
    entry: &QueueEntry,
    step: &TemplateStep,
    steps: &Steps,
) -> Result<TemplateDone, String> {
    let project = project_of(entry)?;
    let member = match find_member(clients, project, entry, &entry.instance_id).await? {
        Some(member) => member,
        None => find_by_name(clients, project, entry)
            .await?
            .ok_or_else(|| {
                format!(
                    "{} is no longer in its group, through which the template step finds the group",
                    entry.name
                )
            })?,
    };
    if let Some(why) = moved(&member, entry) {
        return Err(why);
    }
    let group = &member.group;
    if group.key != step.group {
        return Err(format!(
            "{} is a member of {} now, not of {}: queue it again",
            entry.name, group.key, step.group
        ));
    }
    let check = check_group(clients, &member, entry).await?;
    if check.drift.is_none() {
        return already_pointed(group, &check, steps);
    }
    // The group may have changed since the plan (a canary split begun, say).
    let step_now = self::step(group, &check)?;
    if step_now.describe != step.describe {
        return Err(format!(
            "{} changed since the plan: {}; plan again",
            group.name, step_now.describe
        ));
    }
    let name = copy_name(&check.path, &check.golden);
    let scope = Scope::of(&check.path)?;
    let revert = revert_command(group, &check.path);
    let found = get_template(clients, &group.project, &scope, &name).await?;
    if let Some(found) = &found {
        is_copy(found, &name, &check.golden)?;
    }
    if steps.dry_run {
        steps.record(Step::Checked)?;
        let how = match found {
            Some(_) => "exists already",
            None => "would be inserted",
        };
        return Ok(TemplateDone {
            now: format!(
                "instance template {name} ({how}: a copy of {} booting {})",
                last_segment(&check.path),
                check.golden
            ),
            revert,
        });
    }
    let path = match found {
        Some(found) => link_of(&found, &scope, &group.project, &name),
        None => insert_copy(clients, group, steps, &check, &scope, &name).await?,
    };
    if steps.progress.template_created.as_deref() != Some(path.as_str()) {
        steps.record(Step::TemplateCreated {
            template: path.clone(),
        })?;
    }
    if !steps.progress.sent_unanswered(Call::PointGroup) {
        steps.record(Step::Intent {
            call: Call::PointGroup,
        })?;
    }
    let link = format!("{PUBLIC}{path}");
    let operation = set_instance_template(clients, group, &link).await?;
    let place = Place::from(&group.location);
    let call = "setInstanceTemplate";
    wait_for_operation(clients, steps, &group.project, place, call, &operation).await?;
    steps.record(Step::GroupPointed {
        template: path.clone(),
    })?;
    Ok(TemplateDone {
        now: format!("instance template {name} ({})", check.golden),
        revert,
    })
}

/// The group boots the golden image already (an earlier apply pointed it, or someone did since
/// the plan): nothing to send. What it launched before is named by the copy's description when
/// the copy is fleetscope's; otherwise it launched the same before this step.
fn already_pointed(
    group: &GroupRef,
    check: &GroupCheck,
    steps: &Steps,
) -> Result<TemplateDone, String> {
    if !steps.dry_run {
        steps.record(Step::GroupPointed {
            template: check.path.clone(),
        })?;
    } else {
        steps.record(Step::Checked)?;
    }
    let before = copied_from(&check.template).unwrap_or(&check.path);
    Ok(TemplateDone {
        now: format!(
            "instance template {} ({})",
            last_segment(&check.path),
            check.golden
        ),
        revert: revert_command(group, before),
    })
}

/// The operator's description, kept, then a note naming the template copied and the image;
/// an earlier copy's note is dropped, so notes do not pile up bake after bake.
fn copy_description(old: Option<&str>, path: &str, golden: &str) -> String {
    let note = format!("{COPY_OF}{path}{WITH_IMAGE}{golden}");
    let own = old
        .and_then(|d| d.split(COPY_OF).next())
        .map(|d| d.trim_end_matches([' ', ';']))
        .filter(|d| !d.is_empty());
    match own {
        Some(own) => format!("{own}; {note}"),
        None => note,
    }
}

/// The template a fleetscope copy was copied from, as its description says.
fn copied_from(template: &model::InstanceTemplate) -> Option<&str> {
    let description = template.description.as_deref()?;
    let at = description.find(COPY_OF)? + COPY_OF.len();
    description[at..].split_once(WITH_IMAGE).map(|(old, _)| old)
}

/// A template found under the copy's name must be one: booting the golden image.
fn is_copy(found: &model::InstanceTemplate, name: &str, golden: &str) -> Result<(), String> {
    let source = super::collect::boot_disk(found)
        .and_then(|d| d.initialize_params.as_ref())
        .and_then(|p| p.source_image.as_deref())
        .unwrap_or_default();
    let project = golden.split('/').nth(1).unwrap_or_default();
    match image_key(project, source) {
        Some(image) if image == golden => Ok(()),
        _ => Err(format!(
            "an instance template named {name} exists but does not boot {golden}; rename or delete it, then apply again"
        )),
    }
}

/// The old template with only its boot image changed, under the copy's name; output-only
/// fields are left out.
fn copy_of(check: &GroupCheck, name: &str) -> Result<model::InstanceTemplate, String> {
    let mut copy = check.template.clone();
    copy.id = None;
    copy.creation_timestamp = None;
    copy.self_link = None;
    copy.kind = None;
    copy.region = None;
    copy.name = Some(name.to_owned());
    copy.description = Some(copy_description(
        check.template.description.as_deref(),
        &check.path,
        &check.golden,
    ));
    let disks = copy
        .properties
        .as_mut()
        .map(|p| &mut p.disks)
        .ok_or("the template has no instance properties")?;
    // The same disk as `boot_disk`: the one marked boot, else the first.
    let boot = disks.iter().position(|d| d.boot == Some(true)).unwrap_or(0);
    let params = disks
        .get_mut(boot)
        .and_then(|d| d.initialize_params.as_mut())
        .ok_or("its boot disk names no source image")?;
    params.source_image = Some(check.golden.clone());
    Ok(copy)
}

async fn insert_copy(
    clients: &Clients,
    group: &GroupRef,
    steps: &Steps,
    check: &GroupCheck,
    scope: &Scope,
    name: &str,
) -> Result<String, String> {
    let copy = copy_of(check, name)?;
    if !steps.progress.sent_unanswered(Call::CreateTemplate) {
        steps.record(Step::Intent {
            call: Call::CreateTemplate,
        })?;
    }
    let project = &group.project;
    let (answer, call) = match scope {
        Scope::Global => (
            clients
                .templates
                .insert()
                .set_project(project)
                .set_body(copy)
                .send()
                .await,
            "instanceTemplates.insert",
        ),
        Scope::Region(region) => (
            clients
                .regional_templates
                .insert()
                .set_project(project)
                .set_region(region)
                .set_body(copy)
                .send()
                .await,
            "regionInstanceTemplates.insert",
        ),
    };
    match answer {
        Ok(operation) => {
            wait_for_operation(clients, steps, project, scope.place(), call, &operation).await?;
            Ok(match operation.target_link.as_deref() {
                Some(link) if !link.is_empty() => resource_path(link).to_owned(),
                _ => scope.path(project, name),
            })
        }
        // An insert from an earlier apply, still under way when it was looked up: use it.
        Err(error) if error.http_status_code() == Some(409) => {
            let made = get_template(clients, project, scope, name)
                .await?
                .ok_or_else(|| format!("{call}: {name} exists, yet cannot be read"))?;
            is_copy(&made, name, &check.golden)?;
            Ok(link_of(&made, scope, project, name))
        }
        Err(error) => Err(format!("{call}: {}", describe(&error))),
    }
}

/// A template's path, from its self link.
fn link_of(template: &model::InstanceTemplate, scope: &Scope, project: &str, name: &str) -> String {
    match template.self_link.as_deref() {
        Some(link) if !link.is_empty() => resource_path(link).to_owned(),
        _ => scope.path(project, name),
    }
}

/// The template of this name, or `None` when there is none.
async fn get_template(
    clients: &Clients,
    project: &str,
    scope: &Scope,
    name: &str,
) -> Result<Option<model::InstanceTemplate>, String> {
    let (answer, call) = match scope {
        Scope::Global => (
            clients
                .templates
                .get()
                .set_project(project)
                .set_instance_template(name)
                .send()
                .await,
            "instanceTemplates.get",
        ),
        Scope::Region(region) => (
            clients
                .regional_templates
                .get()
                .set_project(project)
                .set_region(region)
                .set_instance_template(name)
                .send()
                .await,
            "regionInstanceTemplates.get",
        ),
    };
    match answer {
        Ok(template) => Ok(Some(template)),
        Err(error) if error.http_status_code() == Some(404) => Ok(None),
        Err(error) => Err(format!("{call}: {}", describe(&error))),
    }
}

async fn set_instance_template(
    clients: &Clients,
    group: &GroupRef,
    template: &str,
) -> Result<model::Operation, String> {
    match &group.location {
        Location::Zone(zone) => clients
            .zonal_groups
            .set_instance_template()
            .set_project(&group.project)
            .set_zone(zone)
            .set_instance_group_manager(&group.name)
            .set_body(
                model::InstanceGroupManagersSetInstanceTemplateRequest::new()
                    .set_instance_template(template),
            )
            .send()
            .await
            .map_err(|e| {
                format!(
                    "instanceGroupManagers.setInstanceTemplate: {}",
                    describe(&e)
                )
            }),
        Location::Region(region) => clients
            .regional_groups
            .set_instance_template()
            .set_project(&group.project)
            .set_region(region)
            .set_instance_group_manager(&group.name)
            .set_body(
                model::RegionInstanceGroupManagersSetTemplateRequest::new()
                    .set_instance_template(template),
            )
            .send()
            .await
            .map_err(|e| {
                format!(
                    "regionInstanceGroupManagers.setInstanceTemplate: {}",
                    describe(&e)
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_names_are_stable_short_and_do_not_grow_bake_after_bake() {
        let old = "projects/shop/global/instanceTemplates/web-3";
        let golden = "projects/shop/global/images/web-v3";
        let name = copy_name(old, golden);
        assert_eq!(name, copy_name(old, golden));
        assert!(
            name.starts_with("web-3-fs") && name.len() == "web-3-fs".len() + 8,
            "{name}"
        );
        assert_ne!(name, copy_name(old, "projects/shop/global/images/web-v4"));
        // The next bake copies the copy: the earlier suffix goes, the name stays as short.
        let next = copy_name(
            &format!("projects/shop/global/instanceTemplates/{name}"),
            "projects/shop/global/images/web-v4",
        );
        assert!(
            next.starts_with("web-3-fs") && next.len() == name.len(),
            "{next}"
        );
        assert_ne!(next, name);
        // A long name is cut to Compute's 63 characters.
        let long = format!("projects/p/global/instanceTemplates/{}", "a".repeat(63));
        assert_eq!(copy_name(&long, golden).len(), 63);
        // An operator's own suffix that only looks like a hash is no earlier copy's.
        assert!(
            copy_name("projects/p/global/instanceTemplates/app-20261001", golden)
                .starts_with("app-20261001-fs")
        );
    }

    #[test]
    fn the_way_back_names_the_template_as_gcloud_takes_it() {
        let zonal = GroupRef::parse(
            "shop",
            "projects/1/zones/us-central1-a/instanceGroupManagers/web",
        )
        .unwrap();
        assert_eq!(
            revert_command(&zonal, "projects/shop/global/instanceTemplates/web-3"),
            "gcloud compute instance-groups managed set-instance-template web --template=web-3 --zone=us-central1-a --project=shop"
        );
        let regional = GroupRef::parse(
            "shop",
            "projects/1/regions/europe-west4/instanceGroupManagers/api",
        )
        .unwrap();
        assert_eq!(
            revert_command(
                &regional,
                "projects/shop/regions/europe-west4/instanceTemplates/api-3"
            ),
            "gcloud compute instance-groups managed set-instance-template api --template=projects/shop/regions/europe-west4/instanceTemplates/api-3 --region=europe-west4 --project=shop"
        );
    }
}
