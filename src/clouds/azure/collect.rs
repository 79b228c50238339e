//! Azure collection: one source per subscription, configured, listed for `*` or found below a
//! management group, collected concurrently (bounded). Each lists its VMs page by page
//! (`listAll`) beside its network (NICs, public IPs, NSGs) and its VMs' power states, and sends
//! the pages once those are in; then its scale sets and their members (each uniform scale set's
//! NICs beside them), then the facts of the images they run, each distinct image or version
//! list fetched once per source.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, NaiveDate, Utc};
use futures::StreamExt;
use tokio::sync::mpsc;

use super::arm::{Arm, ArmError, ArmId, GalleryVersion, ImageRef, ScaleSet, Vm};
use super::network::{Network, Nic, PublicIp};
use super::{ALL_SUBSCRIPTIONS, Settings, client, source_name};
use crate::clouds::{azure_group_source, run_source};
use crate::core::event::{CollectEvent, Page};
use crate::core::model::{Cloud, Deprecation, Group, GroupKind, Image, Instance, Tags};

/// The tag that flags an image with the default `policy.flag_tags`: Azure's own safety report
/// on a gallery version is carried this way.
const FLAG_TAG: &str = "fleetscope:flagged";
/// Whether a scale-set member runs its scale set's latest model, as a pseudo-tag on it.
pub(crate) const LATEST_MODEL_TAG: &str = "azure:latestModelApplied";
/// The provisioning state of a VM's last operation (lowercase), as a pseudo-tag: the state
/// shown is the power state, and a failed provisioning stays visible here.
pub(crate) const PROVISIONING_TAG: &str = "azure:provisioningState";

/// Collects every configured subscription, and every one listed for `*` or found below a
/// configured management group, each once and as one source `azure:<subscription id>`,
/// `azure.concurrency` at once. A found one is announced as waiting, then collected when a slot
/// is free: collection starts while the lists are still being read, so a slow group holds up no
/// other subscription. A list that fails fails its own source (`azure:*`, `azure:mg:<group>`)
/// in one line; what it found until then is still collected.
pub async fn collect(settings: Settings, tx: mpsc::Sender<CollectEvent>) {
    let arm = match client(&settings) {
        Ok(arm) => arm,
        Err(error) => {
            let sources = settings
                .subscriptions
                .iter()
                .map(|s| source_name(s))
                .chain(groups(&settings).map(azure_group_source));
            for source in sources {
                let failed = CollectEvent::Failed {
                    source,
                    error: error.clone(),
                };
                if tx.send(failed).await.is_err() {
                    return;
                }
            }
            return;
        }
    };
    let (queue, queued) = futures::channel::mpsc::unbounded();
    let found = Found {
        seen: Mutex::default(),
        queue,
        tx: tx.clone(),
    };
    for subscription in settings
        .subscriptions
        .iter()
        .filter(|s| *s != ALL_SUBSCRIPTIONS)
    {
        found.configured(subscription);
    }
    let discover = async {
        let all = async {
            if settings
                .subscriptions
                .iter()
                .any(|s| s == ALL_SUBSCRIPTIONS)
            {
                list_all(&arm, &settings, &found).await;
            }
        };
        let groups = groups(&settings).map(|group| list_group(&arm, &settings, group, &found));
        futures::join!(all, futures::future::join_all(groups));
        // What is queued is still collected; the collection ends after it.
        found.queue.close_channel();
    };
    let collect = queued
        .map(|subscription: String| {
            let arm = &arm;
            let tx = tx.clone();
            let (concurrency, deadline) = (settings.concurrency, settings.deadline);
            async move {
                let work = collect_subscription(arm, &subscription, concurrency, tx.clone());
                run_source(&source_name(&subscription), deadline, &tx, work).await;
            }
        })
        .buffer_unordered(settings.concurrency)
        .collect::<Vec<()>>();
    futures::join!(discover, collect);
}

/// The configured management groups, each once (ARM ids are case-insensitive).
fn groups(settings: &Settings) -> impl Iterator<Item = &str> {
    let mut seen = HashSet::new();
    settings
        .management_groups
        .iter()
        .map(String::as_str)
        .filter(move |g| seen.insert(g.to_ascii_lowercase()))
}

/// The subscriptions to collect, each queued once however many lists name it.
struct Found {
    /// Lowercase: subscription ids are case-insensitive.
    seen: Mutex<HashSet<String>>,
    queue: futures::channel::mpsc::UnboundedSender<String>,
    tx: mpsc::Sender<CollectEvent>,
}

impl Found {
    /// True the first time a subscription is named.
    fn first(&self, subscription: &str) -> bool {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(subscription.to_ascii_lowercase())
    }

    fn configured(&self, subscription: &str) {
        if self.first(subscription) {
            // Fails only once the queue is closed, after every list has been read.
            let _ = self.queue.unbounded_send(subscription.to_owned());
        }
    }

    /// Announces a subscription a list found and queues it, unless it is queued already.
    /// False once nobody listens.
    async fn discovered(&self, subscription: String) -> bool {
        if !self.first(&subscription) {
            return true;
        }
        let waiting = CollectEvent::Waiting {
            source: source_name(&subscription),
            cloud: Cloud::Azure,
            account: Some(subscription.clone()),
        };
        if self.tx.send(waiting).await.is_err() {
            return false;
        }
        let _ = self.queue.unbounded_send(subscription);
        true
    }

    async fn failed(&self, source: String, error: String) {
        let _ = self.tx.send(CollectEvent::Failed { source, error }).await;
    }
}

/// Every subscription the credential can list (`*`), under the source `azure:*`.
async fn list_all(arm: &Arm, settings: &Settings, found: &Found) {
    let source = source_name(ALL_SUBSCRIPTIONS);
    let work = async {
        match arm.subscriptions().await {
            Ok(listed) => {
                for subscription in listed {
                    if !found.discovered(subscription).await {
                        return;
                    }
                }
            }
            Err(error) => found.failed(source.clone(), error.message).await,
        }
    };
    run_source(&source, settings.deadline, &found.tx, work).await;
}

/// Every subscription below a management group, page by page, under the source
/// `azure:mg:<group>`, which is heard of only when the list fails.
async fn list_group(arm: &Arm, settings: &Settings, group: &str, found: &Found) {
    let source = azure_group_source(group);
    let work = async {
        if group.trim().is_empty() {
            let error = "azure.management_groups holds an empty id".to_owned();
            found.failed(source.clone(), error).await;
            return;
        }
        let mut pages = std::pin::pin!(arm.group_subscriptions(group));
        while let Some(page) = pages.next().await {
            match page {
                Ok(subscriptions) => {
                    for subscription in subscriptions {
                        if !found.discovered(subscription).await {
                            return;
                        }
                    }
                }
                Err(error) => {
                    found.failed(source.clone(), error.message).await;
                    return;
                }
            }
        }
    };
    run_source(&source, settings.deadline, &found.tx, work).await;
}

struct Context<'a> {
    arm: &'a Arm,
    subscription: &'a str,
    source: String,
    concurrency: usize,
    tx: mpsc::Sender<CollectEvent>,
}

impl Context<'_> {
    /// False once nobody listens (the UI quit, a refresh replaced this collection): stop then.
    async fn send(&self, event: CollectEvent) -> bool {
        self.tx.send(event).await.is_ok()
    }

    async fn page(&self, instances: Vec<Instance>, images: Vec<Image>, groups: Vec<Group>) -> bool {
        let page = Page {
            source: self.source.clone(),
            instances,
            images,
            groups,
        };
        self.send(CollectEvent::Page(Box::new(page))).await
    }

    async fn warn(&self, message: String) -> bool {
        let source = self.source.clone();
        self.send(CollectEvent::Warning { source, message }).await
    }
}

async fn collect_subscription(
    arm: &Arm,
    subscription: &str,
    concurrency: usize,
    tx: mpsc::Sender<CollectEvent>,
) {
    let context = Context {
        arm,
        subscription,
        source: source_name(subscription),
        concurrency,
        tx,
    };
    let started = CollectEvent::Started {
        source: context.source.clone(),
        cloud: Cloud::Azure,
        expected_pages: None,
    };
    if !context.send(started).await {
        return;
    }
    let mut missing = Vec::new();
    let event = match collect_all(&context, &mut missing).await {
        Ok(true) if missing.is_empty() => CollectEvent::Finished {
            source: context.source.clone(),
        },
        Ok(true) => CollectEvent::Incomplete {
            source: context.source.clone(),
            error: missing.join("; "),
        },
        Ok(false) => return,
        Err(error) => CollectEvent::Failed {
            source: context.source.clone(),
            error: error.message,
        },
    };
    let _ = context.send(event).await;
}

/// The images in use.
#[derive(Default)]
struct Uses {
    /// Each image reference and the regions it is used in (marketplace and shared gallery
    /// versions are listed per region).
    refs: BTreeMap<ImageRef, BTreeSet<String>>,
    /// Keys standing for VMs that name no image (created from a disk).
    imageless: BTreeSet<String>,
}

/// What a subscription's network and status lists say of its VMs.
struct Facts {
    network: Network,
    /// Power state by lowercase VM id; a VM missing here has none reported.
    power: HashMap<String, Option<String>>,
}

/// The subscription's NICs, public IPs, NSGs and VM power states, read together. A list that
/// cannot be read is a warning: the instances are still collected, without what it gives.
async fn read_facts(context: &Context<'_>) -> (Facts, Vec<String>) {
    let (arm, subscription) = (context.arm, context.subscription);
    let (nics, public_ips, groups, power) = futures::join!(
        arm.network_interfaces(subscription),
        arm.public_ips(subscription),
        arm.security_groups(subscription),
        arm.power_states(subscription),
    );
    let mut warnings = Vec::new();
    let mut network = Network::default();
    match nics {
        Ok(nics) => network.add_nics(nics),
        Err(error) => warnings.push(format!("addresses and exposure unknown: {error}")),
    }
    match public_ips {
        Ok(ips) => network.add_public_ips(ips),
        Err(error) => warnings.push(format!("public addresses unknown: {error}")),
    }
    match groups {
        Ok(groups) => network.set_groups(groups),
        Err(error) => warnings.push(format!("exposure unknown: {error}")),
    }
    let power = match power {
        Ok(states) => states.into_iter().map(|s| (s.id, s.power)).collect(),
        Err(error) => {
            warnings.push(format!("power states unknown: {error}"));
            HashMap::new()
        }
    };
    (Facts { network, power }, warnings)
}

/// A uniform scale set's own NICs, and its public IPs when a NIC names one.
struct SetNetwork {
    nics: Vec<Nic>,
    public_ips: Vec<PublicIp>,
    warning: Option<String>,
}

async fn read_set_network(context: &Context<'_>, set: &ScaleSet) -> SetNetwork {
    let mut found = SetNetwork {
        nics: Vec::new(),
        public_ips: Vec::new(),
        warning: None,
    };
    // A flexible scale set's members are VMs of the subscription, their NICs listed with it.
    if !set.uniform {
        return found;
    }
    match context.arm.scale_set_nics(set).await {
        Ok(nics) => found.nics = nics,
        Err(error) => {
            found.warning = Some(format!(
                "addresses and exposure of the members of {} unknown: {error}",
                set.name
            ));
            return found;
        }
    }
    if found.nics.iter().any(Nic::has_public_ip) {
        match context.arm.scale_set_public_ips(set).await {
            Ok(ips) => found.public_ips = ips,
            Err(error) => {
                found.warning = Some(format!(
                    "public addresses of the members of {} unknown: {error}",
                    set.name
                ));
            }
        }
    }
    found
}

/// Ok(false) when nobody listens any more. What could not be listed (scale sets, their
/// members) goes to `missing`: the source is then incomplete.
async fn collect_all(context: &Context<'_>, missing: &mut Vec<String>) -> Result<bool, ArmError> {
    let mut uses = Uses::default();
    let mut seen: HashSet<String> = HashSet::new();
    // The VMs, the network and the scale sets are listed together, so a dead endpoint fails
    // them at once. VM pages that arrive before the network is read wait for it.
    let vms = async {
        let mut pages = std::pin::pin!(context.arm.vms(context.subscription));
        let mut facts = std::pin::pin!(read_facts(context));
        let mut held: Vec<Vec<Vm>> = Vec::new();
        let mut read = None;
        let mut listed = false;
        while read.is_none() && !listed {
            tokio::select! {
                found = &mut facts => read = Some(found),
                page = pages.next() => match page {
                    Some(page) => held.push(page?),
                    None => listed = true,
                },
            }
        }
        let (facts, warnings) = match read {
            Some(read) => read,
            None => facts.await,
        };
        for warning in warnings {
            if !context.warn(warning).await {
                return Ok(None);
            }
        }
        let mut send = async |page: Vec<Vm>, uses: &mut Uses| {
            let instances = page
                .iter()
                .filter(|vm| seen.insert(vm.id.to_ascii_lowercase()))
                .map(|vm| to_instance(vm, context, uses, &facts))
                .collect();
            context.page(instances, Vec::new(), Vec::new()).await
        };
        for page in held {
            if !send(page, &mut uses).await {
                return Ok(None);
            }
        }
        while !listed && let Some(page) = pages.next().await {
            if !send(page?, &mut uses).await {
                return Ok(None);
            }
        }
        Ok::<Option<Facts>, ArmError>(Some(facts))
    };
    let (facts, scale_sets) = futures::join!(vms, context.arm.scale_sets(context.subscription));
    let Some(mut facts) = facts? else {
        return Ok(false);
    };
    let scale_sets = match scale_sets {
        Ok(found) => found,
        Err(error) => {
            missing.push(format!("scale sets not read: {error}"));
            return Ok(images(context, &uses).await);
        }
    };
    // Owned items: a stream over borrowed ones is not `Send` enough for a boxed future. Each
    // scale set's members are sent as soon as they and its NICs arrive.
    let mut members = std::pin::pin!(
        futures::stream::iter(scale_sets)
            .map(|set| async move {
                let (found, network) = futures::join!(
                    context.arm.scale_set_vms(&set),
                    read_set_network(context, &set)
                );
                (set, found, network)
            })
            .buffer_unordered(context.concurrency)
    );
    let mut groups = Vec::new();
    while let Some((set, found, network)) = members.next().await {
        let set = &set;
        if let Some(image) = &set.image {
            uses.refs
                .entry(image.clone())
                .or_default()
                .insert(set.location.clone());
        }
        groups.push(to_group(set, context.subscription));
        facts.network.add_nics(network.nics);
        facts.network.add_public_ips(network.public_ips);
        if let Some(warning) = network.warning
            && !context.warn(warning).await
        {
            return Ok(false);
        }
        let found = match found {
            Ok(found) => found,
            Err(error) => {
                missing.push(format!("members of {}: {error}", set.name));
                continue;
            }
        };
        let instances = found
            .iter()
            .filter(|vm| seen.insert(vm.id.to_ascii_lowercase()))
            .map(|vm| to_instance(vm, context, &mut uses, &facts))
            .collect();
        if !context.page(instances, Vec::new(), Vec::new()).await {
            return Ok(false);
        }
    }
    if !context.page(Vec::new(), Vec::new(), groups).await {
        return Ok(false);
    }
    Ok(images(context, &uses).await)
}

/// The inventory key of the image a reference names: ARM ids lowercase (ARM is
/// case-insensitive and answers disagree on case), marketplace `publisher:offer:sku:version`.
pub(crate) fn image_key(image: &ImageRef) -> String {
    match image {
        ImageRef::Marketplace {
            publisher,
            offer,
            sku,
            version,
        } => format!("{}:{version}", marketplace_family(publisher, offer, sku)),
        ImageRef::Gallery { id }
        | ImageRef::SharedGallery { id }
        | ImageRef::CommunityGallery { id }
        | ImageRef::Managed { id } => id.to_ascii_lowercase(),
    }
}

fn marketplace_family(publisher: &str, offer: &str, sku: &str) -> String {
    format!("{publisher}:{offer}:{sku}").to_ascii_lowercase()
}

fn to_instance(vm: &Vm, context: &Context<'_>, uses: &mut Uses, facts: &Facts) -> Instance {
    let image = match &vm.image {
        Some(image) => {
            uses.refs
                .entry(image.clone())
                .or_default()
                .insert(vm.location.clone());
            image_key(image)
        }
        // A VM from a specialized disk names no image; it shows as an unknown image.
        None => {
            let key = format!("{}#no-image-reference", vm.id.to_ascii_lowercase());
            uses.imageless.insert(key.clone());
            key
        }
    };
    let mut tags = vm.tags.clone();
    if let Some(latest) = vm.latest_model_applied {
        tags.insert(LATEST_MODEL_TAG.to_owned(), latest.to_string());
    }
    tags.insert(
        PROVISIONING_TAG.to_owned(),
        vm.provisioning.to_ascii_lowercase(),
    );
    // A member's comes with it; a standalone VM's from the status-only list.
    let power = vm.power.clone().or_else(|| {
        facts
            .power
            .get(&vm.id.to_ascii_lowercase())
            .cloned()
            .flatten()
    });
    Instance {
        id: vm.id.as_str().into(),
        cloud: Cloud::Azure,
        source: context.source.as_str().into(),
        account: context.subscription.into(),
        region: vm.location.as_str().into(),
        zone: vm.zone.as_str().into(),
        name: vm.name.as_str().into(),
        state: power.as_deref().unwrap_or("unknown").into(),
        instance_type: vm.size.as_str().into(),
        // A VM without a creation time is brand new as far as anyone can tell.
        launched: vm.created.unwrap_or_else(Utc::now),
        image: image.into(),
        group: vm.scale_set.as_ref().map(|s| s.to_ascii_lowercase().into()),
        tags,
        exposure: facts.network.exposure(&vm.id),
        addresses: facts.network.addresses(&vm.id),
    }
}

fn to_group(set: &ScaleSet, subscription: &str) -> Group {
    Group {
        key: set.id.to_ascii_lowercase(),
        cloud: Cloud::Azure,
        kind: GroupKind::Vmss,
        account: subscription.to_owned(),
        region: set.location.clone(),
        name: set.name.clone(),
        template: Some(format!("scale-set model of {}", set.name)),
        template_image: set.image.as_ref().map(image_key),
    }
}

/// Which list of versions a gallery image belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum VersionList {
    Gallery {
        definition: String,
    },
    Shared {
        location: String,
        gallery: String,
        image: String,
    },
    Community {
        location: String,
        gallery: String,
        image: String,
    },
    Marketplace {
        location: String,
        publisher: String,
        offer: String,
        sku: String,
    },
}

/// The image definition a gallery version id belongs to, and the version; `None` when the id
/// names the definition itself (the latest version, unnamed).
fn split_version(id: &str) -> Option<(String, String)> {
    let lower = id.to_ascii_lowercase();
    let at = lower.rfind("/versions/")?;
    Some((
        lower[..at].to_owned(),
        id[at + "/versions/".len()..].to_owned(),
    ))
}

/// Fetches the facts of every image in use, each version list or image once, and sends them.
async fn images(context: &Context<'_>, uses: &Uses) -> bool {
    let mut lists: BTreeMap<VersionList, BTreeSet<String>> = BTreeMap::new();
    let mut managed = Vec::new();
    let mut images = Vec::new();
    for key in &uses.imageless {
        images.push(Image::unreadable(
            key.clone(),
            Cloud::Azure,
            "the VM names no image: it was created from a disk",
        ));
    }
    for (image, locations) in &uses.refs {
        let key = image_key(image);
        let Some(location) = locations.iter().next().cloned() else {
            continue;
        };
        let list = match image {
            ImageRef::Marketplace {
                publisher,
                offer,
                sku,
                ..
            } => VersionList::Marketplace {
                location,
                publisher: publisher.clone(),
                offer: offer.clone(),
                sku: sku.clone(),
            },
            ImageRef::Managed { id } => {
                managed.push(id.clone());
                continue;
            }
            ImageRef::Gallery { id }
            | ImageRef::SharedGallery { id }
            | ImageRef::CommunityGallery { id } => {
                let Some((definition, _)) = split_version(id) else {
                    images.push(Image::unreadable(
                        key,
                        Cloud::Azure,
                        "the VM names the gallery image definition (latest version), not the version it runs",
                    ));
                    continue;
                };
                let parsed = ArmId::parse(&definition);
                let (gallery, name) = (parsed.get("sharedgalleries"), parsed.get("images"));
                match image {
                    ImageRef::SharedGallery { .. } => VersionList::Shared {
                        location,
                        gallery: gallery.to_owned(),
                        image: name.to_owned(),
                    },
                    ImageRef::CommunityGallery { .. } => VersionList::Community {
                        location,
                        gallery: parsed.get("communitygalleries").to_owned(),
                        image: name.to_owned(),
                    },
                    _ => VersionList::Gallery { definition },
                }
            }
        };
        lists.entry(list).or_default().insert(key);
    }

    let fetched: Vec<(Vec<Image>, Vec<String>)> = futures::stream::iter(lists)
        .map(|(list, in_use)| async move { versions(context, &list, &in_use).await })
        .buffer_unordered(context.concurrency)
        .collect()
        .await;
    let mut warnings = Vec::new();
    for (found, warned) in fetched {
        images.extend(found);
        warnings.extend(warned);
    }
    let found: Vec<Result<Image, String>> = futures::stream::iter(managed)
        .map(|id| async move { managed_image(context, &id).await })
        .buffer_unordered(context.concurrency)
        .collect()
        .await;
    for image in found {
        match image {
            Ok(image) => images.push(image),
            Err(warning) => warnings.push(warning),
        }
    }
    // Two lists can name one version (two regions of a marketplace sku): keep the first.
    let mut keys = HashSet::new();
    images.retain(|i| keys.insert(i.key.clone()));
    if !context.page(Vec::new(), images, Vec::new()).await {
        return false;
    }
    for warning in warnings {
        if !context.warn(warning).await {
            return false;
        }
    }
    true
}

/// The versions of one list as images, those in use included even when the list lacks them
/// (then unreadable); plus warnings.
async fn versions(
    context: &Context<'_>,
    list: &VersionList,
    in_use: &BTreeSet<String>,
) -> (Vec<Image>, Vec<String>) {
    let arm = context.arm;
    let subscription = context.subscription;
    let found = match list {
        VersionList::Gallery { definition } => {
            let id = ArmId::parse(definition);
            arm.gallery_versions(&id)
                .await
                .map(|v| gallery_images(&v, definition, &id.subscription, in_use))
        }
        VersionList::Shared {
            location,
            gallery,
            image,
        } => arm
            .shared_gallery_versions(subscription, location, gallery, image)
            .await
            .map(|v| {
                let family =
                    format!("/sharedgalleries/{gallery}/images/{image}").to_ascii_lowercase();
                gallery_images(&v, &family, gallery, in_use)
            }),
        VersionList::Community {
            location,
            gallery,
            image,
        } => arm
            .community_gallery_versions(subscription, location, gallery, image)
            .await
            .map(|v| {
                let family =
                    format!("/communitygalleries/{gallery}/images/{image}").to_ascii_lowercase();
                gallery_images(&v, &family, gallery, in_use)
            }),
        VersionList::Marketplace {
            location,
            publisher,
            offer,
            sku,
        } => match arm
            .marketplace_versions(subscription, location, publisher, offer, sku)
            .await
        {
            Ok(names) => Ok(marketplace_images(
                context, location, publisher, offer, sku, &names, in_use,
            )
            .await),
            Err(e) => Err(e),
        },
    };
    match found {
        Ok(mut images) => {
            let listed: HashSet<String> = images.iter().map(|i| i.key.clone()).collect();
            for key in in_use.iter().filter(|k| !listed.contains(*k)) {
                images.push(Image::unreadable(
                    key.clone(),
                    Cloud::Azure,
                    "not among the versions Azure lists: deleted, or no longer offered",
                ));
            }
            (images, Vec::new())
        }
        Err(error) => {
            let reason = error.message.clone();
            let images = in_use
                .iter()
                .map(|key| Image::unreadable(key.clone(), Cloud::Azure, reason.clone()))
                .collect();
            // A missing or forbidden image is the image's verdict, not a source problem.
            let warnings = if matches!(error.status, Some(403 | 404)) {
                Vec::new()
            } else {
                vec![error.message]
            };
            (images, warnings)
        }
    }
}

/// Gallery versions as images. A version excluded from `latest` is never the golden one, so
/// it is left out unless something runs it.
fn gallery_images(
    versions: &[GalleryVersion],
    family: &str,
    owner: &str,
    in_use: &BTreeSet<String>,
) -> Vec<Image> {
    versions
        .iter()
        .filter(|v| !v.exclude_from_latest || in_use.contains(&v.id.to_ascii_lowercase()))
        .map(|v| {
            let mut tags = v.tags.clone();
            if let Some(violation) = &v.violation {
                tags.insert(FLAG_TAG.to_owned(), format!("azure: {violation}"));
            }
            let definition = family.rsplit('/').next().unwrap_or(family);
            Image {
                key: v.id.to_ascii_lowercase(),
                cloud: Cloud::Azure,
                name: format!("{definition} {}", v.name),
                created: v.published,
                owner: owner.to_owned(),
                owner_alias: None,
                family: Some(family.to_owned()),
                deprecation: v.end_of_life.map(|at| Deprecation {
                    at: Some(at),
                    state: None,
                }),
                tags,
                readable: true,
                unreadable_reason: None,
            }
        })
        .collect()
}

/// Marketplace versions as images; the ones in use also get their deprecation status.
async fn marketplace_images(
    context: &Context<'_>,
    location: &str,
    publisher: &str,
    offer: &str,
    sku: &str,
    names: &[String],
    in_use: &BTreeSet<String>,
) -> Vec<Image> {
    let family = marketplace_family(publisher, offer, sku);
    let mut images = Vec::new();
    for name in names {
        let key = format!("{family}:{name}");
        let deprecation = if in_use.contains(&key) {
            match context
                .arm
                .marketplace_status(context.subscription, location, publisher, offer, sku, name)
                .await
            {
                Ok(status) => match status.state.as_deref() {
                    Some("Deprecated") => Some(Deprecation {
                        at: status.scheduled,
                        state: Some("DEPRECATED".to_owned()),
                    }),
                    Some("ScheduledForDeprecation") => status.scheduled.map(|at| Deprecation {
                        at: Some(at),
                        state: None,
                    }),
                    _ => None,
                },
                // The version's status is a detail; the list already says it exists.
                Err(_) => None,
            }
        } else {
            None
        };
        images.push(Image {
            key,
            cloud: Cloud::Azure,
            name: format!("{family}:{name}"),
            created: date_token(name),
            owner: publisher.to_ascii_lowercase(),
            owner_alias: None,
            family: Some(family.clone()),
            deprecation,
            tags: Tags::new(),
            readable: true,
            unreadable_reason: None,
        });
    }
    images
}

/// The date publishers put in a marketplace version, as in `22.04.202401010` (2024-01-01):
/// a dot-separated token starting with eight digits that make a date. The API gives no date.
fn date_token(version: &str) -> Option<DateTime<Utc>> {
    version.split('.').find_map(|token| {
        let digits = token.get(..8)?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let date = NaiveDate::parse_from_str(digits, "%Y%m%d").ok()?;
        use chrono::Datelike;
        if !(2000..2100).contains(&date.year()) {
            return None;
        }
        Some(date.and_hms_opt(0, 0, 0)?.and_utc())
    })
}

async fn managed_image(context: &Context<'_>, id: &str) -> Result<Image, String> {
    let key = id.to_ascii_lowercase();
    let parsed = ArmId::parse(id);
    match context.arm.managed_image(&parsed).await {
        Ok(Some(found)) => {
            let mut tags = found.tags;
            if let Some(source) = found.source_vm {
                tags.insert("azure:sourceVirtualMachine".to_owned(), source);
            }
            Ok(Image {
                key,
                cloud: Cloud::Azure,
                name: found.name,
                // Managed images carry no creation time in the API: their age is unknown.
                created: None,
                owner: format!("{}/{}", parsed.subscription, parsed.get("resourcegroups"))
                    .to_ascii_lowercase(),
                owner_alias: None,
                family: None,
                deprecation: None,
                tags,
                readable: true,
                unreadable_reason: None,
            })
        }
        Ok(None) => Ok(Image::unreadable(
            key,
            Cloud::Azure,
            "managed image not found",
        )),
        Err(error) if error.status == Some(403) => {
            Ok(Image::unreadable(key, Cloud::Azure, error.message))
        }
        Err(error) => Err(error.message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marketplace_versions_date_from_their_token() {
        let day = |s: &str| date_token(s).map(|d| d.format("%Y-%m-%d").to_string());
        assert_eq!(day("22.04.202401010").as_deref(), Some("2024-01-01"));
        assert_eq!(day("20348.2227.240104").as_deref(), None);
        assert_eq!(day("1.0.20231130").as_deref(), Some("2023-11-30"));
        assert_eq!(day("1.2.3").as_deref(), None);
        assert_eq!(day("9.9.99999999").as_deref(), None);
    }

    #[test]
    fn gallery_version_ids_split_into_definition_and_version() {
        assert_eq!(
            split_version("/subscriptions/s/resourceGroups/RG/providers/Microsoft.Compute/galleries/g/images/web/versions/1.2.0"),
            Some((
                "/subscriptions/s/resourcegroups/rg/providers/microsoft.compute/galleries/g/images/web".to_owned(),
                "1.2.0".to_owned()
            ))
        );
        assert_eq!(split_version("/SharedGalleries/x/Images/web"), None);
    }
}
