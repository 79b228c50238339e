//! Replacing Compute Engine instances: a managed instance group member is recreated by its
//! group (`recreateInstances`) once the group's template is checked to boot the golden image;
//! the slot frees when the group reports the member recreated (a new instance id), with no
//! action pending, RUNNING, and HEALTHY where the group has autohealing. A group whose template
//! boots another image gets a template step first (`template`). Compute has no dry run: a dry
//! run reads and checks everything and changes nothing.

use futures::FutureExt;
use futures::future::BoxFuture;
use google_cloud_compute_v1::model;
use google_cloud_gax::paginator::Paginator;

use super::collect::{
    CREATED_BY, GroupRef, ImageLookups, Location, boot_image, group_manager, group_template,
    read_template,
};
use super::{Clients, Settings, describe, last_segment, resource_path, template};
use crate::queue::journal::{Call, Step};
use crate::queue::rollout::{
    Executor, Finish, GroupCapacity, Inspection, Phase, Steps, TemplateDone, TemplateStep,
};
use crate::queue::{QueueEntry, Strategy};

pub struct GcpExecutor {
    settings: Settings,
    clients: tokio::sync::OnceCell<Result<Clients, String>>,
}

impl GcpExecutor {
    pub fn new(settings: Settings) -> GcpExecutor {
        GcpExecutor {
            settings,
            clients: tokio::sync::OnceCell::new(),
        }
    }

    async fn clients(&self) -> Result<&Clients, String> {
        self.clients
            .get_or_init(|| Clients::new(&self.settings))
            .await
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// The member as Compute has it now.
pub(super) struct Member {
    /// `zones/z/instances/name`, as recreateInstances takes it.
    path: String,
    pub name: String,
    pub group: GroupRef,
}

/// What the group would bring back, checked against the golden image.
pub(super) struct GroupCheck {
    pub manager: model::InstanceGroupManager,
    /// The template it creates members from, `projects/p/global/instanceTemplates/t` or
    /// `projects/p/regions/r/instanceTemplates/t`, and that template as read, whole.
    pub path: String,
    pub template: model::InstanceTemplate,
    pub golden: String,
    /// What the template boots instead of the golden image, when it does.
    pub drift: Option<String>,
}

impl GroupCheck {
    /// Why its members cannot be recreated until the template is changed, if they cannot.
    pub fn refusal(&self) -> Option<String> {
        let drift = self.drift.as_deref()?;
        Some(format!("{drift}: point the template at it first"))
    }
}

impl Executor for GcpExecutor {
    fn inspect<'a>(&'a self, entry: &'a QueueEntry) -> BoxFuture<'a, Result<Inspection, String>> {
        async move {
            let clients = self.clients().await?;
            let project = project_of(entry)?;
            let member = match find_member(clients, project, entry, &entry.instance_id).await? {
                Some(member) => Some(member),
                // Recreated since it was queued (by an apply cut short, say): the name stays.
                None => find_by_name(clients, project, entry).await?,
            };
            let Some(member) = member else {
                // Gone: the replacement step skips it.
                return Ok(Inspection::default());
            };
            if let Some(why) = moved(&member, entry) {
                return Ok(Inspection {
                    blocked: Some(why),
                    ..Inspection::default()
                });
            }
            let check = check_group(clients, &member, entry).await?;
            let (blocked, template) = match &check.drift {
                None => (None, None),
                Some(_) => match template::step(&member.group, &check) {
                    Ok(step) => (None, Some(step)),
                    Err(why) => (Some(why), None),
                },
            };
            Ok(Inspection {
                group: Some(GroupCapacity {
                    key: member.group.key.clone(),
                    desired: check.manager.target_size.unwrap_or(1).max(1) as u32,
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
        step: &'a TemplateStep,
        steps: &'a Steps,
    ) -> BoxFuture<'a, Result<TemplateDone, String>> {
        async move {
            let clients = self.clients().await?;
            template::update(clients, member, step, steps).await
        }
        .boxed()
    }
}

impl GcpExecutor {
    async fn replace_one(&self, entry: &QueueEntry, steps: &Steps) -> Result<Finish, String> {
        let clients = self.clients().await?;
        let project = project_of(entry)?;
        let mut resumed = steps.progress.terminated && !steps.dry_run;
        // A recreate sent before a crash or a lost answer: the group tells whether it went
        // through (a new id under the same name, or the recreate under way).
        let sent = !resumed && !steps.dry_run && steps.progress.sent_unanswered(Call::Terminate);
        let member = match find_member(clients, project, entry, &entry.instance_id).await? {
            Some(member) => {
                if sent
                    && managed_instance(clients, &member)
                        .await?
                        .and_then(|m| m.current_action)
                        .is_some_and(|a| a.name() != Some("NONE"))
                {
                    steps.record(Step::Terminated)?;
                    resumed = true;
                }
                member
            }
            // Recreated by an earlier apply: the name stays, the id changes.
            None if resumed || sent => {
                let member = find_by_name(clients, project, entry)
                    .await?
                    .ok_or_else(|| {
                        format!(
                            "{} was recreated by an earlier apply but is no longer in its group",
                            entry.name
                        )
                    })?;
                if sent {
                    steps.record(Step::Terminated)?;
                    resumed = true;
                }
                member
            }
            None => {
                let why = "the instance no longer exists (its group may have recreated it already)"
                    .to_owned();
                steps.record(Step::Skipped { why: why.clone() })?;
                return Ok(Finish::Skipped(why));
            }
        };
        if !resumed {
            if let Some(why) = moved(&member, entry) {
                return Err(why);
            }
            let check = check_group(clients, &member, entry).await?;
            // A dry run's template step changed nothing: the group still boots the old image,
            // which the real step before this member would have changed.
            if let Some(refusal) = check.refusal()
                && !steps.dry_run
            {
                return Err(refusal);
            }
            steps.record(Step::Checked)?;
            if steps.dry_run {
                return Ok(Finish::WouldSucceed);
            }
            steps.record(Step::Intent {
                call: Call::Terminate,
            })?;
            let operation = recreate(clients, &member).await?;
            steps.record(Step::Terminated)?;
            let group = &member.group;
            let place = Place::from(&group.location);
            let call = "recreateInstances";
            wait_for_operation(clients, steps, &group.project, place, call, &operation).await?;
        }
        steps.phase(Phase::WaitingHealthy);
        let manager = group_manager(clients, &member.group).await?;
        let autohealing = !manager.auto_healing_policies.is_empty();
        let old_id = entry.instance_id.as_str();
        let new_id = std::sync::Mutex::new(String::new());
        let (member, new_id_ref) = (&member, &new_id);
        steps
            .wait_until(
                &format!("{} to be recreated and healthy", member.name),
                move || async move {
                    let Some(managed) = managed_instance(clients, member).await? else {
                        return Ok(false);
                    };
                    let recreated = managed.id.is_some_and(|id| id.to_string() != old_id);
                    let settled =
                        managed.current_action.as_ref().and_then(|a| a.name()) == Some("NONE");
                    let running =
                        managed.instance_status.as_ref().and_then(|s| s.name()) == Some("RUNNING");
                    let healthy = !autohealing
                        || managed.instance_health.iter().any(|h| {
                            h.detailed_health_state.as_ref().and_then(|s| s.name())
                                == Some("HEALTHY")
                        });
                    if let Some(id) = managed.id
                        && let Ok(mut seen) = new_id_ref.lock()
                    {
                        *seen = id.to_string();
                    }
                    Ok(recreated && settled && running && healthy)
                },
            )
            .await?;
        steps.record(Step::Healthy {
            new_instance: new_id.into_inner().unwrap_or_default(),
        })?;
        steps.record(Step::Replaced)?;
        Ok(Finish::Replaced)
    }
}

pub(super) fn project_of(entry: &QueueEntry) -> Result<&str, String> {
    if !matches!(entry.strategy, Strategy::GcpRecreateInGroup { .. }) {
        return Err(format!(
            "not a Google Cloud strategy: {}",
            entry.strategy.describe()
        ));
    }
    entry
        .source
        .strip_prefix("gcp:")
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            format!(
                "queued without its project (source {:?}); queue it again",
                entry.source
            )
        })
}

/// The instance with this id, and the group that created it.
pub(super) async fn find_member(
    clients: &Clients,
    project: &str,
    entry: &QueueEntry,
    id: &str,
) -> Result<Option<Member>, String> {
    // Ids are numbers; anything else would change the filter's meaning.
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{id:?} is not a Compute instance id"));
    }
    lookup(clients, project, entry, &format!("id = {id}")).await
}

pub(super) async fn find_by_name(
    clients: &Clients,
    project: &str,
    entry: &QueueEntry,
) -> Result<Option<Member>, String> {
    let name = &entry.name;
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(format!("{name:?} is not a Compute instance name"));
    }
    lookup(clients, project, entry, &format!("name = \"{name}\"")).await
}

async fn lookup(
    clients: &Clients,
    project: &str,
    entry: &QueueEntry,
    filter: &str,
) -> Result<Option<Member>, String> {
    let mut pages = clients
        .instances
        .aggregated_list()
        .set_project(project)
        .set_filter(filter)
        .by_page();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| format!("instances.aggregatedList: {}", describe(&e)))?;
        for found in page.items.values().flat_map(|s| &s.instances) {
            let (Some(zone), Some(name)) = (found.zone.as_deref(), found.name.as_deref()) else {
                continue;
            };
            if last_segment(zone).rsplit_once('-').map(|(r, _)| r) != Some(entry.region.as_str()) {
                continue;
            }
            let created_by = found
                .metadata
                .as_ref()
                .and_then(|m| {
                    m.items
                        .iter()
                        .find(|i| i.key.as_deref() == Some(CREATED_BY))
                })
                .and_then(|i| i.value.as_deref());
            let Some(group) = created_by.and_then(|by| GroupRef::parse(project, by)) else {
                return Err(format!(
                    "{name} is not a member of a managed instance group (any more)"
                ));
            };
            return Ok(Some(Member {
                path: format!("zones/{}/instances/{name}", last_segment(zone)),
                name: name.to_owned(),
                group,
            }));
        }
    }
    Ok(None)
}

/// Why a member cannot be recreated where it is now: queued in one group, now in another.
pub(super) fn moved(member: &Member, entry: &QueueEntry) -> Option<String> {
    match &entry.strategy {
        Strategy::GcpRecreateInGroup { group } if *group != member.group.name => Some(format!(
            "queued as a member of {group}, now in {}: queue it again",
            member.group.name
        )),
        _ => None,
    }
}

/// Recreating brings whatever the group's template boots: only the golden image will do.
pub(super) async fn check_group(
    clients: &Clients,
    member: &Member,
    entry: &QueueEntry,
) -> Result<GroupCheck, String> {
    let group = &member.group;
    let golden = entry
        .target_image
        .clone()
        .ok_or("no golden image to replace it with")?;
    let manager = group_manager(clients, group).await?;
    let path = group_template(&manager)
        .ok_or_else(|| format!("group {} names no instance template", group.name))?;
    let path = resource_path(&path).to_owned();
    let context = |e: String| format!("group {}: template {path}: {e}", group.name);
    let template = read_template(clients, &group.project, &path)
        .await
        .map_err(context)?;
    let image = boot_image(clients, &group.project, &template, &ImageLookups::default())
        .await
        .map_err(context)?;
    let drift = (image != golden).then(|| {
        format!(
            "template drift: {} creates {image} (template {}), not the golden {golden}",
            group.name,
            last_segment(&path)
        )
    });
    Ok(GroupCheck {
        manager,
        path,
        template,
        golden,
        drift,
    })
}

async fn recreate(clients: &Clients, member: &Member) -> Result<model::Operation, String> {
    let group = &member.group;
    match &group.location {
        Location::Zone(zone) => clients
            .zonal_groups
            .recreate_instances()
            .set_project(&group.project)
            .set_zone(zone)
            .set_instance_group_manager(&group.name)
            .set_body(
                model::InstanceGroupManagersRecreateInstancesRequest::new()
                    .set_instances([member.path.clone()]),
            )
            .send()
            .await
            .map_err(|e| format!("instanceGroupManagers.recreateInstances: {}", describe(&e))),
        Location::Region(region) => clients
            .regional_groups
            .recreate_instances()
            .set_project(&group.project)
            .set_region(region)
            .set_instance_group_manager(&group.name)
            .set_body(
                model::RegionInstanceGroupManagersRecreateRequest::new()
                    .set_instances([member.path.clone()]),
            )
            .send()
            .await
            .map_err(|e| {
                format!(
                    "regionInstanceGroupManagers.recreateInstances: {}",
                    describe(&e)
                )
            }),
    }
}

/// Where an operation lives: templates' operations are global or regional, groups' zonal or
/// regional.
pub(super) enum Place<'a> {
    Global,
    Zone(&'a str),
    Region(&'a str),
}

impl<'a> From<&'a Location> for Place<'a> {
    fn from(location: &'a Location) -> Place<'a> {
        match location {
            Location::Zone(zone) => Place::Zone(zone),
            Location::Region(region) => Place::Region(region),
        }
    }
}

/// Polls the operation `call` answered with until it is DONE; an operation that ends with
/// errors fails with Compute's messages.
pub(super) async fn wait_for_operation(
    clients: &Clients,
    steps: &Steps,
    project: &str,
    place: Place<'_>,
    call: &str,
    operation: &model::Operation,
) -> Result<(), String> {
    let name = operation
        .name
        .clone()
        .ok_or_else(|| format!("{call} answered without an operation name"))?;
    let done = |operation: &model::Operation| {
        operation.status.as_ref().and_then(|s| s.name()) == Some("DONE")
    };
    let current = std::sync::Mutex::new(operation.clone());
    let (current, name, place) = (&current, &name, &place);
    steps
        .wait_until(&format!("operation {name}"), move || async move {
            let pending = current.lock().map(|c| !done(&c)).unwrap_or(true);
            if pending {
                let polled = match place {
                    Place::Global => clients
                        .templates
                        .get_operation()
                        .set_project(project)
                        .set_operation(name)
                        .send()
                        .await
                        .map_err(|e| format!("globalOperations.get: {}", describe(&e)))?,
                    Place::Zone(zone) => clients
                        .zonal_groups
                        .get_operation()
                        .set_project(project)
                        .set_zone(*zone)
                        .set_operation(name)
                        .send()
                        .await
                        .map_err(|e| format!("zoneOperations.get: {}", describe(&e)))?,
                    Place::Region(region) => clients
                        .regional_groups
                        .get_operation()
                        .set_project(project)
                        .set_region(*region)
                        .set_operation(name)
                        .send()
                        .await
                        .map_err(|e| format!("regionOperations.get: {}", describe(&e)))?,
                };
                if let Ok(mut current) = current.lock() {
                    *current = polled;
                }
            }
            let current = current
                .lock()
                .map_err(|_| "the operation poll was interrupted".to_owned())?;
            if !done(&current) {
                return Ok(false);
            }
            match current.error.as_ref().filter(|e| !e.errors.is_empty()) {
                Some(error) => Err(format!(
                    "operation {name} failed: {}",
                    error
                        .errors
                        .iter()
                        .map(|e| e
                            .message
                            .as_deref()
                            .or(e.code.as_deref())
                            .unwrap_or("error"))
                        .collect::<Vec<_>>()
                        .join("; ")
                )),
                None => Ok(true),
            }
        })
        .await
}

/// The member as its group lists it, by name (recreating keeps the name).
async fn managed_instance(
    clients: &Clients,
    member: &Member,
) -> Result<Option<model::ManagedInstance>, String> {
    let group = &member.group;
    let mut found = Vec::new();
    match &group.location {
        Location::Zone(zone) => {
            let mut pages = clients
                .zonal_groups
                .list_managed_instances()
                .set_project(&group.project)
                .set_zone(zone)
                .set_instance_group_manager(&group.name)
                .by_page();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| {
                    format!(
                        "instanceGroupManagers.listManagedInstances: {}",
                        describe(&e)
                    )
                })?;
                found.extend(page.managed_instances);
            }
        }
        Location::Region(region) => {
            let mut pages = clients
                .regional_groups
                .list_managed_instances()
                .set_project(&group.project)
                .set_region(region)
                .set_instance_group_manager(&group.name)
                .by_page();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| {
                    format!(
                        "regionInstanceGroupManagers.listManagedInstances: {}",
                        describe(&e)
                    )
                })?;
                found.extend(page.managed_instances);
            }
        }
    }
    Ok(found.into_iter().find(|m| {
        m.instance
            .as_deref()
            .is_some_and(|link| last_segment(link) == member.name)
    }))
}
