//! Compute Engine through the official client: one source per project, projects collected
//! concurrently (bounded). Per project: the firewall rules and every disk (one aggregated list,
//! for the boot disks' source images), then the instances page by page, then each distinct
//! image once (public projects such as debian-cloud included), the golden image of each family,
//! and the managed instance groups named by the members' `created-by` metadata with their
//! templates' boot images.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use google_cloud_compute_v1::model;
use google_cloud_gax::paginator::Paginator;
use tokio::sync::{OnceCell, mpsc};

use super::discover::{self, Found};
use super::{
    Clients, Directory, Settings, api_disabled, credentials, describe, last_segment,
    region_of_zone, resource_path, source_name,
};
use crate::clouds::{call, run_source};
use crate::core::event::{CollectEvent, Page};
use crate::core::model::{
    Addresses, Cloud, Deprecation, Group, GroupKind, Image, Instance, Tags, Text,
};

/// The metadata key Compute sets on a managed instance group's members.
pub(crate) const CREATED_BY: &str = "created-by";
/// The largest page Compute gives.
const PAGE_SIZE: u32 = 500;
/// Ports whose exposure to the whole internet is a finding.
const ADMIN_PORTS: [(u16, &str); 2] = [(22, "22/tcp"), (3389, "3389/tcp")];
/// Image lookups in flight at once per project.
const LOOKUPS: usize = 8;

/// The reason a project without the Compute Engine API is skipped.
const COMPUTE_DISABLED: &str = "Compute Engine API not enabled";

/// Collects every project (up to `concurrency` at once), each one source: the configured ones
/// first, then those found under the configured folders and organizations as the walks find
/// them. Each folder or organization is a source of its own while it is walked.
pub async fn collect(settings: Settings, tx: mpsc::Sender<CollectEvent>) {
    let begun: Vec<&String> = settings.projects.iter().chain(&settings.scopes).collect();
    for name in &begun {
        let started = CollectEvent::Started {
            source: source_name(name),
            cloud: Cloud::Gcp,
            expected_pages: None,
        };
        if tx.send(started).await.is_err() {
            return;
        }
    }
    let setup = async {
        let credentials = credentials()?;
        let clients = Clients::with(&credentials, &settings).await?;
        Ok::<_, String>((credentials, clients))
    };
    let (credentials, clients) = match setup.await {
        Ok(set) => set,
        Err(error) => {
            fail_all(&begun, &error, &tx).await;
            return;
        }
    };
    let (queue, found_projects) = futures::channel::mpsc::unbounded::<String>();
    let found = Found::new(&settings.projects, queue, tx.clone());
    let (settings, tx) = (&settings, &tx);
    let discovery = async move {
        // `found` ends here, and with it the queue of projects found.
        let found = found;
        if settings.scopes.is_empty() {
            return;
        }
        match Directory::with(&credentials, settings).await {
            Ok(directory) => discover::walk_all(&directory, settings, &found).await,
            Err(error) => {
                let scopes: Vec<&String> = settings.scopes.iter().collect();
                fail_all(&scopes, &error, tx).await;
            }
        }
    };
    let (clients, lookups) = (&clients, &ImageLookups::default());
    let configured = futures::stream::iter(settings.projects.iter().cloned().map(|p| (p, false)));
    let collection = configured
        .chain(found_projects.map(|p| (p, true)))
        .map(|(project, found)| {
            let tx = tx.clone();
            async move {
                let source = source_name(&project);
                // A project found was announced as waiting: its collection begins now.
                if found {
                    let started = CollectEvent::Started {
                        source: source.clone(),
                        cloud: Cloud::Gcp,
                        expected_pages: None,
                    };
                    if tx.send(started).await.is_err() {
                        return;
                    }
                }
                let work = collect_project(clients, lookups, &project, tx.clone());
                run_source(&source, settings.deadline, &tx, work).await;
            }
        })
        .buffer_unordered(settings.concurrency)
        .collect::<Vec<()>>();
    futures::join!(discovery, collection);
}

async fn fail_all(names: &[&String], error: &str, tx: &mpsc::Sender<CollectEvent>) {
    for name in names {
        let failed = CollectEvent::Failed {
            source: source_name(name),
            error: error.to_owned(),
        };
        if tx.send(failed).await.is_err() {
            return;
        }
    }
}

async fn collect_project(
    clients: &Clients,
    lookups: &ImageLookups,
    project: &str,
    tx: mpsc::Sender<CollectEvent>,
) {
    let source = source_name(project);
    let mut notes = Notes::default();
    let event = match collect_into(clients, lookups, project, &source, &tx, &mut notes).await {
        Err(Stop::Skipped(reason)) => CollectEvent::Skipped {
            source,
            cloud: Cloud::Gcp,
            account: None,
            reason,
        },
        Err(Stop::Failed(error)) => CollectEvent::Failed { source, error },
        Ok(()) => {
            for message in notes.warnings {
                let warning = CollectEvent::Warning {
                    source: source.clone(),
                    message,
                };
                if tx.send(warning).await.is_err() {
                    return;
                }
            }
            match notes.unreachable[..] {
                [] => CollectEvent::Finished { source },
                _ => CollectEvent::Incomplete {
                    source,
                    error: format!("unreachable: {}", notes.unreachable.join(", ")),
                },
            }
        }
    };
    let _ = tx.send(event).await;
}

/// Why a project's collection stopped.
enum Stop {
    Failed(String),
    /// Not collected on purpose: the project has nothing Compute could list.
    Skipped(String),
}

impl From<String> for Stop {
    fn from(error: String) -> Stop {
        Stop::Failed(error)
    }
}

/// What a project's collection learned besides its pages.
#[derive(Default)]
struct Notes {
    /// Facts that could not be read; the instances still count.
    warnings: Vec<String>,
    /// Zones or regions Compute could not list: their instances are missing.
    unreachable: Vec<String>,
}

async fn collect_into(
    clients: &Clients,
    lookups: &ImageLookups,
    project: &str,
    source: &str,
    tx: &mpsc::Sender<CollectEvent>,
    notes: &mut Notes,
) -> Result<(), Stop> {
    let mut pages = clients
        .instances
        .aggregated_list()
        .set_project(project)
        .set_max_results(PAGE_SIZE)
        .by_page();
    // The three listings are asked for together, so a dead endpoint fails them at once; the
    // instances wait for the disks (their images) and the firewall rules (their exposure).
    let (firewalls, boot_images, mut first) = futures::join!(
        call("firewalls.list", firewalls(clients, project)),
        call("disks.aggregatedList", boot_images(clients, project)),
        call("instances.aggregatedList", pages.next()),
    );
    // A project without the Compute Engine API has no instances to list: skipped, not failed
    // (an organization holds many such projects).
    if let Some(Err(error)) = &first
        && api_disabled(error)
    {
        return Err(Stop::Skipped(COMPUTE_DISABLED.to_owned()));
    }
    let boot_images = boot_images?;
    // Exposure is a finding on top: without it the instances and images still count.
    let firewalls = firewalls.unwrap_or_else(|error| {
        notes.warnings.push(format!("exposure unknown: {error}"));
        Vec::new()
    });

    let mut image_keys: BTreeSet<String> = BTreeSet::new();
    let mut groups: BTreeMap<String, GroupRef> = BTreeMap::new();
    loop {
        let page = match first.take() {
            Some(page) => page,
            None => match call("instances.aggregatedList", pages.next()).await {
                Some(page) => page,
                None => break,
            },
        };
        let page = page.map_err(|e| format!("instances.aggregatedList: {}", describe(&e)))?;
        notes.unreachable.extend(page.unreachables.iter().cloned());
        let mut instances = Vec::new();
        for scoped in page.items.values() {
            for found in &scoped.instances {
                let Some(instance) = to_instance(found, project, source, &boot_images, &firewalls)
                else {
                    continue;
                };
                image_keys.insert(instance.image.to_string());
                if let Some(group) = created_by(found).and_then(|by| GroupRef::parse(project, by)) {
                    groups.entry(group.key.clone()).or_insert(group);
                }
                instances.push(instance);
            }
        }
        let page = Page {
            source: source.to_owned(),
            instances,
            ..Page::default()
        };
        if tx.send(CollectEvent::Page(Box::new(page))).await.is_err() {
            return Ok(());
        }
    }

    let warnings = &mut notes.warnings;
    let templates = call(
        "instanceGroupManagers.get and instanceTemplates.get",
        group_templates(clients, project, &groups, lookups, warnings),
    )
    .await;
    image_keys.extend(templates.values().filter_map(|t| t.image.clone()));
    let mut images = call("images.get", lookups.get_all(clients, &image_keys)).await;
    // The golden image of every family in use: the newest non-deprecated one, as Compute says.
    let families: BTreeSet<(String, String)> = images
        .iter()
        .filter(|i| i.readable)
        .filter_map(|i| {
            Some((
                i.owner.clone(),
                family_name(i.family.as_deref()?)?.to_owned(),
            ))
        })
        .collect();
    let goldens = futures::stream::iter(families)
        .map(|(owner, family)| async move {
            let golden = lookups.family_image(clients, &owner, &family).await;
            (owner, family, golden)
        })
        .buffer_unordered(LOOKUPS)
        .collect::<Vec<(String, String, Result<Image, String>)>>();
    let goldens = call("images.getFromFamily", goldens).await;
    for (owner, family, golden) in goldens {
        match golden {
            Ok(golden) => {
                if !images.iter().any(|i| i.key == golden.key) {
                    images.push(golden);
                }
            }
            Err(error) => warnings.push(format!("image family {owner}/{family}: {error}")),
        }
    }
    let groups = groups
        .into_values()
        .map(|group| {
            let template = templates.get(&group.key);
            Group {
                key: group.key.clone(),
                cloud: Cloud::Gcp,
                kind: GroupKind::Mig,
                account: project.to_owned(),
                region: group.region().to_owned(),
                name: group.name.clone(),
                template: template.map(|t| t.name.clone()),
                template_image: template.and_then(|t| t.image.clone()),
            }
        })
        .collect();
    let page = Page {
        source: source.to_owned(),
        images,
        groups,
        ..Page::default()
    };
    let _ = tx.send(CollectEvent::Page(Box::new(page))).await;
    Ok(())
}

/// Boot disk path -> the image it was made from, for every disk of the project.
async fn boot_images(clients: &Clients, project: &str) -> Result<HashMap<String, String>, String> {
    let mut images = HashMap::new();
    let mut pages = clients
        .disks
        .aggregated_list()
        .set_project(project)
        .set_max_results(PAGE_SIZE)
        .by_page();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| format!("disks.aggregatedList: {}", describe(&e)))?;
        for disk in page.items.values().flat_map(|scoped| &scoped.disks) {
            if let (Some(link), Some(image)) = (&disk.self_link, &disk.source_image) {
                images.insert(
                    resource_path(link).to_owned(),
                    image_key(project, image).unwrap_or_else(|| image.to_string()),
                );
            }
        }
    }
    Ok(images)
}

/// `projects/p/global/images/name` from any form of image link; `None` for a family link or
/// something that names no image. A relative `global/images/name` belongs to `project`.
pub(crate) fn image_key(project: &str, link: &str) -> Option<String> {
    let (owner, name) = image_ref(project, link)?;
    match name {
        ImageName::Image(name) => Some(format!("projects/{owner}/global/images/{name}")),
        ImageName::Family(_) => None,
    }
}

enum ImageName<'a> {
    Image(&'a str),
    Family(&'a str),
}

fn image_ref<'a>(project: &'a str, link: &'a str) -> Option<(&'a str, ImageName<'a>)> {
    let path = resource_path(link);
    let (owner, rest) = match path.strip_prefix("projects/") {
        Some(rest) => rest.split_once("/global/images/")?,
        None => (project, path.strip_prefix("global/images/")?),
    };
    let name = match rest.strip_prefix("family/") {
        Some(family) => ImageName::Family(family),
        None => ImageName::Image(rest),
    };
    match name {
        ImageName::Image(n) | ImageName::Family(n) if n.is_empty() || n.contains('/') => None,
        name => Some((owner, name)),
    }
}

/// `debian-cloud/debian-12` -> `debian-12`: families are kept with their project, since two
/// projects may use the same family name for different things.
fn family_name(family: &str) -> Option<&str> {
    family.split_once('/').map(|(_, f)| f)
}

fn created_by(found: &model::Instance) -> Option<&str> {
    found
        .metadata
        .as_ref()?
        .items
        .iter()
        .find(|i| i.key.as_deref() == Some(CREATED_BY))?
        .value
        .as_deref()
}

/// A managed instance group as a member's `created-by` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupRef {
    /// `gcp:<project>:<zone or region>:<name>`.
    pub key: String,
    pub project: String,
    pub location: Location,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    Zone(String),
    Region(String),
}

impl GroupRef {
    /// From `projects/123/zones/z/instanceGroupManagers/name` (or `regions/r/...`). Compute
    /// writes the project number there; calls use the project id the source was configured with.
    pub fn parse(project: &str, created_by: &str) -> Option<GroupRef> {
        let path = resource_path(created_by);
        let mut parts = path.split('/');
        let (Some("projects"), Some(_), Some(scope), Some(place), Some(kind), Some(name), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        if kind != "instanceGroupManagers" || name.is_empty() || place.is_empty() {
            return None;
        }
        let location = match scope {
            "zones" => Location::Zone(place.to_owned()),
            "regions" => Location::Region(place.to_owned()),
            _ => return None,
        };
        Some(GroupRef {
            key: format!("gcp:{project}:{place}:{name}"),
            project: project.to_owned(),
            location,
            name: name.to_owned(),
        })
    }

    pub fn region(&self) -> &str {
        match &self.location {
            Location::Zone(zone) => region_of_zone(zone),
            Location::Region(region) => region,
        }
    }
}

/// A group's instance template, as read now.
pub(crate) struct TemplateSeen {
    /// The template's name, with `(regional)` for a regional one.
    pub name: String,
    /// The image its boot disk is made from; `None` when it could not be resolved.
    pub image: Option<String>,
}

/// Group key -> its template and the image the template boots: one call per group and per
/// distinct template, a few at a time.
async fn group_templates(
    clients: &Clients,
    project: &str,
    groups: &BTreeMap<String, GroupRef>,
    lookups: &ImageLookups,
    warnings: &mut Vec<String>,
) -> HashMap<String, TemplateSeen> {
    // Owned items: a stream of borrowed ones trips the compiler's lifetime inference here.
    let managers: Vec<(GroupRef, Result<model::InstanceGroupManager, String>)> =
        futures::stream::iter(groups.values().cloned())
            .map(|group| async move {
                let manager = group_manager(clients, &group).await;
                (group, manager)
            })
            .buffer_unordered(LOOKUPS)
            .collect()
            .await;
    let mut templates: Vec<(GroupRef, String)> = Vec::new();
    for (group, manager) in managers {
        match manager.map(|m| group_template(&m)) {
            Ok(Some(link)) => templates.push((group, resource_path(&link).to_owned())),
            Ok(None) => warnings.push(format!(
                "group {}: it names no instance template",
                group.name
            )),
            Err(error) => warnings.push(format!("group {}: {error}", group.name)),
        }
    }
    let distinct: BTreeSet<String> = templates.iter().map(|(_, path)| path.clone()).collect();
    let images: HashMap<String, Result<String, String>> = futures::stream::iter(distinct)
        .map(|path| async move {
            let image = template_image(clients, project, &path, lookups).await;
            (path, image)
        })
        .buffer_unordered(LOOKUPS)
        .collect()
        .await;
    let mut seen = HashMap::new();
    for (group, path) in &templates {
        let image = match images.get(path) {
            Some(Ok(image)) => Some(image.clone()),
            Some(Err(error)) => {
                warnings.push(format!("group {}: template {path}: {error}", group.name));
                None
            }
            None => None,
        };
        let name = match path.contains("/regions/") {
            true => format!("{} (regional)", last_segment(path)),
            false => last_segment(path).to_owned(),
        };
        seen.insert(group.key.clone(), TemplateSeen { name, image });
    }
    seen
}

pub(crate) async fn group_manager(
    clients: &Clients,
    group: &GroupRef,
) -> Result<model::InstanceGroupManager, String> {
    match &group.location {
        Location::Zone(zone) => clients
            .zonal_groups
            .get()
            .set_project(&group.project)
            .set_zone(zone)
            .set_instance_group_manager(&group.name)
            .send()
            .await
            .map_err(|e| format!("instanceGroupManagers.get: {}", describe(&e))),
        Location::Region(region) => clients
            .regional_groups
            .get()
            .set_project(&group.project)
            .set_region(region)
            .set_instance_group_manager(&group.name)
            .send()
            .await
            .map_err(|e| format!("regionInstanceGroupManagers.get: {}", describe(&e))),
    }
}

/// The template new members are made from: the group's own, else its first version's (a
/// canary's second version only takes a share of the group).
pub(crate) fn group_template(manager: &model::InstanceGroupManager) -> Option<String> {
    manager
        .instance_template
        .clone()
        .filter(|t| !t.is_empty())
        .or_else(|| {
            manager
                .versions
                .iter()
                .find_map(|v| v.instance_template.clone().filter(|t| !t.is_empty()))
        })
}

/// The image a template's boot disk is made from: a family resolves to the family's image
/// now, which is what the group would create.
async fn template_image(
    clients: &Clients,
    project: &str,
    template_path: &str,
    lookups: &ImageLookups,
) -> Result<String, String> {
    let template = read_template(clients, project, template_path).await?;
    boot_image(clients, project, &template, lookups).await
}

/// The image a template's boot disk is made from, a family resolved as in [`template_image`].
pub(crate) async fn boot_image(
    clients: &Clients,
    project: &str,
    template: &model::InstanceTemplate,
    lookups: &ImageLookups,
) -> Result<String, String> {
    let source = boot_disk(template)
        .and_then(|d| d.initialize_params.as_ref())
        .and_then(|p| p.source_image.clone())
        .ok_or("its boot disk names no source image")?;
    match image_ref(project, &source) {
        Some((owner, ImageName::Image(name))) => {
            Ok(format!("projects/{owner}/global/images/{name}"))
        }
        Some((owner, ImageName::Family(family))) => {
            let (owner, family) = (owner.to_owned(), family.to_owned());
            Ok(lookups.family_image(clients, &owner, &family).await?.key)
        }
        None => Err(format!("cannot read the image link {source:?}")),
    }
}

/// The disk a template boots from: the one marked boot, else the first (Compute's own rule).
pub(crate) fn boot_disk(template: &model::InstanceTemplate) -> Option<&model::AttachedDisk> {
    let disks = &template.properties.as_ref()?.disks;
    disks
        .iter()
        .find(|d| d.boot == Some(true))
        .or(disks.first())
}

pub(crate) async fn read_template(
    clients: &Clients,
    project: &str,
    path: &str,
) -> Result<model::InstanceTemplate, String> {
    let parts: Vec<&str> = path.split('/').collect();
    // projects/p/global/instanceTemplates/t, projects/p/regions/r/instanceTemplates/t, or the
    // same without the project part.
    let (owner, rest) = match parts.as_slice() {
        ["projects", owner, rest @ ..] => (*owner, rest),
        rest => (project, rest),
    };
    match rest {
        ["global", "instanceTemplates", name] => clients
            .templates
            .get()
            .set_project(owner)
            .set_instance_template(*name)
            .send()
            .await
            .map_err(|e| format!("instanceTemplates.get: {}", describe(&e))),
        ["regions", region, "instanceTemplates", name] => clients
            .regional_templates
            .get()
            .set_project(owner)
            .set_region(*region)
            .set_instance_template(*name)
            .send()
            .await
            .map_err(|e| format!("regionInstanceTemplates.get: {}", describe(&e))),
        _ => Err(format!("not an instance template link: {path}")),
    }
}

/// Image and family lookups, each asked once per collection whichever project asks first:
/// every project's instances may run the same public images (debian-cloud's, say).
#[derive(Default)]
pub(crate) struct ImageLookups {
    images: Slots<String, Image>,
    /// (project, family) -> the family's image, or why there is none.
    families: Slots<(String, String), Result<Image, String>>,
}

/// Answers by key, each filled by whoever asks first while the others wait for it.
type Slots<K, V> = Mutex<HashMap<K, Arc<OnceCell<V>>>>;

/// The slot for `key`, made empty if nobody asked yet.
fn slot<K: std::hash::Hash + Eq, V>(map: &Slots<K, V>, key: K) -> Arc<OnceCell<V>> {
    // A poisoned map only means another lookup panicked; its entries are still whole.
    let mut map = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    map.entry(key).or_default().clone()
}

impl ImageLookups {
    /// Each key once, a few at a time; an image that cannot be read is kept, unreadable, with
    /// the reason (deleted, no permission).
    async fn get_all(&self, clients: &Clients, keys: &BTreeSet<String>) -> Vec<Image> {
        let mut images: Vec<Image> = futures::stream::iter(keys.iter().cloned())
            .map(|key| async move { self.image(clients, &key).await })
            .buffer_unordered(LOOKUPS)
            .collect()
            .await;
        images.sort_by(|a, b| a.key.cmp(&b.key));
        images
    }

    async fn image(&self, clients: &Clients, key: &str) -> Image {
        slot(&self.images, key.to_owned())
            .get_or_init(|| get_image(clients, key))
            .await
            .clone()
    }

    /// The family's image as Compute picks it (newest, not deprecated).
    async fn family_image(
        &self,
        clients: &Clients,
        owner: &str,
        family: &str,
    ) -> Result<Image, String> {
        let found = slot(&self.families, (owner.to_owned(), family.to_owned()))
            .get_or_init(|| async {
                let image = clients
                    .images
                    .get_from_family()
                    .set_project(owner)
                    .set_family(family)
                    .send()
                    .await
                    .map_err(|e| format!("images.getFromFamily: {}", describe(&e)))?;
                to_image(owner, &image).ok_or_else(|| "the answer names no image".to_owned())
            })
            .await
            .clone();
        if let Ok(image) = &found {
            // The family's answer is the image itself: no images.get for it later.
            let _ = slot(&self.images, image.key.clone()).set(image.clone());
        }
        found
    }
}

async fn get_image(clients: &Clients, key: &str) -> Image {
    let Some((owner, ImageName::Image(name))) = image_ref("", key) else {
        let reason = match key.ends_with(NO_IMAGE) {
            true => "the boot disk names no source image (made from a snapshot or another disk)",
            false => "not an image link",
        };
        return Image::unreadable(key, Cloud::Gcp, reason);
    };
    let answer = clients
        .images
        .get()
        .set_project(owner)
        .set_image(name)
        .send()
        .await;
    match answer {
        Ok(image) => to_image(owner, &image).unwrap_or_else(|| {
            Image::unreadable(key, Cloud::Gcp, "images.get answered without the image")
        }),
        Err(error) => {
            Image::unreadable(key, Cloud::Gcp, format!("images.get: {}", describe(&error)))
        }
    }
}

fn to_image(owner: &str, found: &model::Image) -> Option<Image> {
    let name = found.name.clone()?;
    let deprecation = found.deprecated.as_ref().and_then(|d| {
        let state = d.state.as_ref().and_then(|s| s.name()).map(str::to_owned);
        // ACTIVE is what an undeprecated image says when it says anything.
        if state.as_deref() == Some("ACTIVE") || state.is_none() {
            return None;
        }
        Some(Deprecation {
            at: [&d.deleted, &d.obsolete, &d.deprecated]
                .into_iter()
                .flatten()
                .filter_map(|t| parse_time(t))
                .min(),
            state,
        })
    });
    let mut tags: Tags = found
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(replacement) = found
        .deprecated
        .as_ref()
        .and_then(|d| d.replacement.as_deref())
        .filter(|_| deprecation.is_some())
    {
        // Not a label: where the operator learns what Compute suggests instead.
        tags.insert(
            "deprecated-replacement".to_owned(),
            resource_path(replacement).to_owned(),
        );
    }
    Some(Image {
        key: format!("projects/{owner}/global/images/{name}"),
        cloud: Cloud::Gcp,
        name,
        created: found.creation_timestamp.as_deref().and_then(parse_time),
        owner: owner.to_owned(),
        owner_alias: None,
        family: found
            .family
            .as_deref()
            .filter(|f| !f.is_empty())
            .map(|f| format!("{owner}/{f}")),
        deprecation,
        tags,
        readable: true,
        unreadable_reason: None,
    })
}

pub(crate) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn to_instance(
    found: &model::Instance,
    project: &str,
    source: &str,
    boot_images: &HashMap<String, String>,
    firewalls: &[model::Firewall],
) -> Option<Instance> {
    let id = found.id?.to_string();
    let zone = last_segment(found.zone.as_deref()?).to_owned();
    let boot = found
        .disks
        .iter()
        .find(|d| d.boot == Some(true))
        .or(found.disks.first());
    let image = match boot.and_then(|d| d.source.as_deref()).map(resource_path) {
        Some(disk) => boot_images
            .get(disk)
            .cloned()
            .unwrap_or_else(|| no_image_key(disk)),
        None => no_image_key(&format!("{project}/{zone}/{id}")),
    };
    let group = created_by(found)
        .and_then(|by| GroupRef::parse(project, by))
        .map(|g| g.key);
    Some(Instance {
        id: id.into(),
        cloud: Cloud::Gcp,
        source: source.into(),
        account: project.into(),
        region: region_of_zone(&zone).into(),
        zone: zone.into(),
        name: found.name.as_deref().unwrap_or_default().into(),
        state: found
            .status
            .as_ref()
            .and_then(|s| s.name())
            .unwrap_or("UNKNOWN")
            .into(),
        instance_type: found
            .machine_type
            .as_deref()
            .map(last_segment)
            .unwrap_or_default()
            .into(),
        // An instance without a creation time is brand new as far as anyone can tell.
        launched: found
            .creation_timestamp
            .as_deref()
            .and_then(parse_time)
            .unwrap_or_else(Utc::now),
        image: image.into(),
        group: group.map(Into::into),
        tags: found
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect(),
        exposure: exposure(found, firewalls),
        addresses: addresses_of(found),
    })
}

/// The image key of a boot disk that names no source image (made from a snapshot, say), or
/// whose disk was not listed: an image nobody can read, so the instance is Unknown.
fn no_image_key(disk: &str) -> String {
    format!("{disk}{NO_IMAGE}")
}

const NO_IMAGE: &str = " (no source image)";

fn addresses_of(found: &model::Instance) -> Addresses {
    let mut addresses = Addresses::default();
    let add = |list: &mut Vec<Text>, value: Option<&String>| {
        if let Some(value) = value.filter(|v| !v.is_empty())
            && !list.iter().any(|known| known == value)
        {
            list.push(value.into());
        }
    };
    for nic in &found.network_interfaces {
        add(&mut addresses.private_ips, nic.network_ip.as_ref());
        add(&mut addresses.private_ips, nic.ipv_6_address.as_ref());
        for access in &nic.access_configs {
            add(&mut addresses.public_ips, access.nat_ip.as_ref());
            add(
                &mut addresses.dns_names,
                access.public_ptr_domain_name.as_ref(),
            );
        }
        for access in &nic.ipv_6_access_configs {
            add(&mut addresses.public_ips, access.external_ipv_6.as_ref());
        }
    }
    add(&mut addresses.dns_names, found.hostname.as_ref());
    addresses
}

async fn firewalls(clients: &Clients, project: &str) -> Result<Vec<model::Firewall>, String> {
    let mut rules = Vec::new();
    let mut pages = clients
        .firewalls
        .list()
        .set_project(project)
        .set_max_results(PAGE_SIZE)
        .by_page();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| format!("firewalls.list: {}", describe(&e)))?;
        rules.extend(
            page.items
                .into_iter()
                .filter(|r| r.disabled != Some(true) && admits_from_anywhere(r)),
        );
    }
    Ok(rules)
}

/// An enabled ingress rule from 0.0.0.0/0 or ::/0.
fn admits_from_anywhere(rule: &model::Firewall) -> bool {
    let ingress = rule
        .direction
        .as_ref()
        .and_then(|d| d.name())
        .is_none_or(|d| d == "INGRESS");
    ingress
        && rule
            .source_ranges
            .iter()
            .any(|r| matches!(r.as_str(), "0.0.0.0/0" | "::/0"))
}

/// Findings for the rules that admit SSH or RDP from anywhere to this instance: on one of its
/// networks, and aimed at every instance, one of its network tags or its service account.
/// Deny rules and priorities are not weighed: an allow from anywhere is worth a look anyway.
fn exposure(found: &model::Instance, firewalls: &[model::Firewall]) -> Vec<String> {
    let networks: Vec<&str> = found
        .network_interfaces
        .iter()
        .filter_map(|n| n.network.as_deref().map(resource_path))
        .collect();
    let tags: &[String] = found.tags.as_ref().map_or(&[], |t| &t.items);
    let accounts: Vec<&str> = found
        .service_accounts
        .iter()
        .filter_map(|s| s.email.as_deref())
        .collect();
    let mut findings = Vec::new();
    for rule in firewalls {
        let on_network = rule
            .network
            .as_deref()
            .map(resource_path)
            .is_some_and(|n| networks.contains(&n));
        let aimed = (rule.target_tags.is_empty() && rule.target_service_accounts.is_empty())
            || rule.target_tags.iter().any(|t| tags.contains(t))
            || rule
                .target_service_accounts
                .iter()
                .any(|a| accounts.contains(&a.as_str()));
        if !(on_network && aimed) {
            continue;
        }
        let name = rule.name.as_deref().unwrap_or("(unnamed)");
        for (port, label) in ADMIN_PORTS {
            if !rule.allowed.iter().any(|a| allows(a, port)) {
                continue;
            }
            for range in rule
                .source_ranges
                .iter()
                .filter(|r| matches!(r.as_str(), "0.0.0.0/0" | "::/0"))
            {
                findings.push(format!("firewall {name} admits {label} from {range}"));
            }
        }
    }
    findings.sort();
    findings.dedup();
    findings
}

fn allows(allowed: &model::firewall::Allowed, port: u16) -> bool {
    let protocol = allowed.ip_protocol.as_deref().unwrap_or("");
    if !matches!(protocol, "tcp" | "6" | "all") {
        return false;
    }
    // No ports listed: every port of the protocol.
    allowed.ports.is_empty()
        || allowed.ports.iter().any(|p| match p.split_once('-') {
            Some((from, to)) => match (from.trim().parse::<u16>(), to.trim().parse::<u16>()) {
                (Ok(from), Ok(to)) => from <= port && port <= to,
                _ => false,
            },
            None => p.trim().parse::<u16>() == Ok(port),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_links_in_every_form() {
        let full = "https://www.googleapis.com/compute/v1/projects/debian-cloud/global/images/debian-12-bookworm-v20261010";
        assert_eq!(
            image_key("mine", full).as_deref(),
            Some("projects/debian-cloud/global/images/debian-12-bookworm-v20261010")
        );
        assert_eq!(
            image_key("mine", "global/images/web-3").as_deref(),
            Some("projects/mine/global/images/web-3")
        );
        assert_eq!(
            image_key(
                "mine",
                "projects/debian-cloud/global/images/family/debian-12"
            ),
            None
        );
        assert!(matches!(
            image_ref(
                "mine",
                "projects/debian-cloud/global/images/family/debian-12"
            ),
            Some(("debian-cloud", ImageName::Family("debian-12")))
        ));
        assert_eq!(image_key("mine", "debian-12"), None);
        assert_eq!(image_key("mine", "projects/p/global/images/"), None);
    }

    #[test]
    fn created_by_names_zonal_and_regional_groups() {
        let zonal = GroupRef::parse(
            "shop",
            "projects/123456789/zones/us-central1-a/instanceGroupManagers/web",
        )
        .unwrap();
        assert_eq!(zonal.key, "gcp:shop:us-central1-a:web");
        assert_eq!(zonal.location, Location::Zone("us-central1-a".into()));
        assert_eq!(zonal.region(), "us-central1");
        let regional = GroupRef::parse(
            "shop",
            "https://www.googleapis.com/compute/v1/projects/123/regions/europe-west4/instanceGroupManagers/api",
        )
        .unwrap();
        assert_eq!(regional.location, Location::Region("europe-west4".into()));
        assert_eq!(regional.region(), "europe-west4");
        assert_eq!(
            GroupRef::parse("shop", "projects/1/zones/z/instances/x"),
            None
        );
        assert_eq!(GroupRef::parse("shop", "someone"), None);
    }

    fn allowed(protocol: &str, ports: &[&str]) -> model::firewall::Allowed {
        model::firewall::Allowed::new()
            .set_ip_protocol(protocol)
            .set_ports(ports.iter().map(|p| p.to_string()))
    }

    #[test]
    fn ports_and_ranges_of_a_rule() {
        assert!(allows(&allowed("tcp", &["22"]), 22));
        assert!(allows(&allowed("tcp", &["20-3389"]), 3389));
        assert!(allows(&allowed("tcp", &[]), 3389));
        assert!(allows(&allowed("all", &[]), 22));
        assert!(!allows(&allowed("udp", &["22"]), 22));
        assert!(!allows(&allowed("tcp", &["443", "8000-9000"]), 22));
    }

    #[test]
    fn a_rule_reaches_instances_by_network_tag_and_service_account() {
        let network = "https://www.googleapis.com/compute/v1/projects/p/global/networks/default";
        let instance = model::Instance::new()
            .set_network_interfaces([model::NetworkInterface::new().set_network(network)])
            .set_tags(model::Tags::new().set_items(["bastion"]))
            .set_service_accounts([model::ServiceAccount::new().set_email("app@p.iam")]);
        let rule = |name: &str| {
            model::Firewall::new()
                .set_name(name)
                .set_network("projects/p/global/networks/default")
                .set_source_ranges(["0.0.0.0/0"])
                .set_allowed([allowed("tcp", &["22"])])
        };
        let all = rule("all");
        let tagged = rule("tagged").set_target_tags(["bastion"]);
        let other_tag = rule("other").set_target_tags(["web"]);
        let account = rule("sa").set_target_service_accounts(["app@p.iam"]);
        let other_network = rule("elsewhere").set_network("projects/p/global/networks/other");
        let found = exposure(&instance, &[all, tagged, other_tag, account, other_network]);
        assert_eq!(
            found,
            [
                "firewall all admits 22/tcp from 0.0.0.0/0",
                "firewall sa admits 22/tcp from 0.0.0.0/0",
                "firewall tagged admits 22/tcp from 0.0.0.0/0",
            ]
        );
    }
}
