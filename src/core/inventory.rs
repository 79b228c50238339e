//! The in-memory fleet: instances indexed by the image they run, images by lineage and age,
//! groups with their members. Built incrementally from collection events; knows nothing of time
//! or policy, so it can be evaluated at any `now`.

use std::collections::HashMap;

use super::event::{CollectEvent, Page};
use super::lineage::LineageRules;
use super::model::{Group, Image, Instance, SourceState, SourceStatus, Text};

pub type InstanceIdx = u32;
pub type ImageIdx = u32;
pub type LineageIdx = u32;
pub type GroupIdx = u32;

#[derive(Debug, Clone)]
pub struct ImageEntry {
    pub image: Image,
    /// False while only instances have named the image; it then counts as unreadable.
    pub described: bool,
    pub lineage: Option<LineageIdx>,
    pub instances: Vec<InstanceIdx>,
}

#[derive(Debug, Clone)]
pub struct LineageEntry {
    pub name: String,
    /// Oldest first, by (created, name, key) so ties order the same way every run; names
    /// compare digit runs as numbers, so undated versions (Azure marketplace `1.0.9` and
    /// `1.0.10`) order as versions.
    pub images: Vec<ImageIdx>,
}

#[derive(Debug, Clone)]
pub struct GroupEntry {
    pub key: String,
    /// `None` while members name a group whose description has not arrived.
    pub group: Option<Group>,
    pub members: Vec<InstanceIdx>,
}

#[derive(Debug, Clone, Default)]
pub struct Inventory {
    rules: LineageRules,
    instances: Vec<Instance>,
    instance_image: Vec<ImageIdx>,
    instance_group: Vec<Option<GroupIdx>>,
    instance_slots: HashMap<Text, InstanceIdx>,
    images: Vec<ImageEntry>,
    image_slots: HashMap<String, ImageIdx>,
    lineages: Vec<LineageEntry>,
    lineage_slots: HashMap<String, LineageIdx>,
    groups: Vec<GroupEntry>,
    group_slots: HashMap<String, GroupIdx>,
    sources: Vec<SourceStatus>,
    /// Per source, instances whose id had already arrived: merged into one, and reported as a
    /// warning when the source ends, so nothing vanishes without a word.
    duplicates: HashMap<String, u32>,
    /// Bumped on every change, so views know when to recompute.
    revision: u64,
}

impl Inventory {
    pub fn new(rules: LineageRules) -> Inventory {
        Inventory {
            rules,
            ..Inventory::default()
        }
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn apply(&mut self, event: CollectEvent) {
        self.revision += 1;
        match event {
            CollectEvent::Started {
                source,
                cloud,
                expected_pages,
            } => {
                let account = self
                    .sources
                    .iter()
                    .find(|s| s.name == source)
                    .and_then(|s| s.account.clone());
                let status = SourceStatus {
                    name: source,
                    cloud,
                    account,
                    state: SourceState::Collecting,
                    pages: 0,
                    instances: 0,
                    expected_pages,
                    warnings: Vec::new(),
                };
                self.replace_source(status);
            }
            CollectEvent::Waiting {
                source,
                cloud,
                account,
            } => {
                let status = SourceStatus {
                    name: source,
                    cloud,
                    account,
                    state: SourceState::Waiting,
                    pages: 0,
                    instances: 0,
                    expected_pages: None,
                    warnings: Vec::new(),
                };
                self.replace_source(status);
            }
            CollectEvent::Skipped {
                source,
                cloud,
                account,
                reason,
            } => {
                let status = self.source_mut(&source);
                status.cloud = cloud;
                status.account = account.or(status.account.take());
                status.state = SourceState::Skipped { reason };
            }
            CollectEvent::Page(page) => self.apply_page(*page),
            CollectEvent::Warning { source, message } => {
                self.source_mut(&source).warnings.push(message);
            }
            CollectEvent::Finished { source } => {
                self.report_duplicates(&source);
                self.source_mut(&source).state = SourceState::Done;
            }
            CollectEvent::Incomplete { source, error } => {
                self.report_duplicates(&source);
                self.source_mut(&source).state = SourceState::Incomplete { error };
            }
            CollectEvent::Failed { source, error } => {
                self.report_duplicates(&source);
                self.source_mut(&source).state = SourceState::Failed { error };
            }
        }
    }

    fn replace_source(&mut self, status: SourceStatus) {
        match self.sources.iter_mut().find(|s| s.name == status.name) {
            Some(existing) => *existing = status,
            None => {
                self.insert_source(status);
            }
        }
    }

    /// Status of a source, created on first mention so an event that arrives before `Started`
    /// is never lost.
    fn source_mut(&mut self, name: &str) -> &mut SourceStatus {
        let position = match self.sources.iter().position(|s| s.name == name) {
            Some(position) => position,
            None => self.insert_source(SourceStatus {
                name: name.to_owned(),
                cloud: super::model::Cloud::Aws,
                account: None,
                state: SourceState::Collecting,
                pages: 0,
                instances: 0,
                expected_pages: None,
                warnings: Vec::new(),
            }),
        };
        &mut self.sources[position]
    }

    fn report_duplicates(&mut self, source: &str) {
        if let Some(count) = self.duplicates.remove(source) {
            self.source_mut(source).warnings.push(format!(
                "{count} {} reported again under an id already seen: counted once",
                if count == 1 {
                    "instance was"
                } else {
                    "instances were"
                }
            ));
        }
    }

    fn apply_page(&mut self, page: Page) {
        let status = self.source_mut(&page.source);
        status.pages += 1;
        if let Some(cloud) = page
            .instances
            .first()
            .map(|i| i.cloud)
            .or(page.images.first().map(|i| i.cloud))
        {
            status.cloud = cloud;
        }
        for image in page.images {
            self.upsert_image(image);
        }
        for group in page.groups {
            self.upsert_group(group);
        }
        // Counted once each, so the sources add up to the fleet's total.
        let mut repeated = 0;
        let mut added = 0;
        for instance in page.instances {
            if self.instance_slots.contains_key(&instance.id) {
                repeated += 1;
            } else {
                added += 1;
            }
            self.upsert_instance(instance);
        }
        self.source_mut(&page.source).instances += added;
        if repeated > 0 {
            *self.duplicates.entry(page.source).or_insert(0) += repeated;
        }
    }

    /// Adds a source's final status as read back from a snapshot.
    pub fn restore_source(&mut self, status: SourceStatus) {
        self.revision += 1;
        self.sources.retain(|s| s.name != status.name);
        self.insert_source(status);
    }

    /// Sources are kept in name order, not in the order they first spoke: the same run gives
    /// the same list every time. Returns where it went.
    fn insert_source(&mut self, status: SourceStatus) -> usize {
        let at = self.sources.partition_point(|s| s.name < status.name);
        self.sources.insert(at, status);
        at
    }

    /// Adds or updates an image. An image shared into many accounts is one image, and every
    /// source that runs it may send it: the factory account, which reads it whole; a member
    /// account, which may see it without the owner's tags; one it is not shared with, which
    /// cannot read it at all. Whatever the order they answer in, a readable description beats
    /// an unreadable one (the first unreadable reason stays), and a later readable one keeps
    /// the tags the earlier ones had that it lacks, so a lineage tag seen by the owner is not
    /// lost to a member's tagless view.
    pub fn upsert_image(&mut self, mut image: Image) {
        let idx = self.image_slot(&image);
        let existing = &self.images[idx as usize];
        if existing.described {
            match (existing.image.readable, image.readable) {
                (_, false) => return,
                (true, true) => {
                    for (key, value) in existing.image.tags.iter() {
                        if image.tags.get(key).is_none() {
                            image.tags.insert(key, value);
                        }
                    }
                }
                (false, true) => {}
            }
        }
        let lineage = self.rules.lineage_of(&image);
        let entry = &mut self.images[idx as usize];
        entry.image = image;
        entry.described = true;
        let old_lineage = entry.lineage.take();
        if let Some(old) = old_lineage {
            self.lineages[old as usize].images.retain(|&i| i != idx);
        }
        if let Some(name) = lineage {
            let lineage_idx = match self.lineage_slots.get(&name) {
                Some(&l) => l,
                None => {
                    let l = self.lineages.len() as LineageIdx;
                    self.lineage_slots.insert(name.clone(), l);
                    self.lineages.push(LineageEntry {
                        name,
                        images: Vec::new(),
                    });
                    l
                }
            };
            self.images[idx as usize].lineage = Some(lineage_idx);
            let images = &self.images;
            let new = &images[idx as usize].image;
            let lineage = &mut self.lineages[lineage_idx as usize];
            let position = lineage.images.partition_point(|&i| {
                let image = &images[i as usize].image;
                image
                    .created
                    .cmp(&new.created)
                    .then_with(|| version_order(&image.name, &new.name))
                    .then_with(|| image.key.cmp(&new.key))
                    .is_lt()
            });
            lineage.images.insert(position, idx);
        }
    }

    pub fn upsert_group(&mut self, group: Group) {
        let idx = self.group_slot(&group.key);
        self.groups[idx as usize].group = Some(group);
    }

    fn image_slot(&mut self, image: &Image) -> ImageIdx {
        if let Some(&idx) = self.image_slots.get(&image.key) {
            return idx;
        }
        let idx = self.images.len() as ImageIdx;
        self.image_slots.insert(image.key.clone(), idx);
        self.images.push(ImageEntry {
            image: image.clone(),
            described: false,
            lineage: None,
            instances: Vec::new(),
        });
        idx
    }

    fn group_slot(&mut self, key: &str) -> GroupIdx {
        if let Some(&idx) = self.group_slots.get(key) {
            return idx;
        }
        let idx = self.groups.len() as GroupIdx;
        self.group_slots.insert(key.to_owned(), idx);
        self.groups.push(GroupEntry {
            key: key.to_owned(),
            group: None,
            members: Vec::new(),
        });
        idx
    }

    pub fn upsert_instance(&mut self, instance: Instance) {
        let image_idx = match self.image_slots.get(instance.image.as_str()) {
            Some(&idx) => idx,
            None => {
                let placeholder = Image::unreadable(
                    instance.image.clone(),
                    instance.cloud,
                    "not described by its source",
                );
                let idx = self.image_slot(&placeholder);
                self.images[idx as usize].described = false;
                idx
            }
        };
        let group_idx = instance.group.as_deref().map(|key| self.group_slot(key));
        let idx = match self.instance_slots.get(&instance.id) {
            Some(&idx) => {
                let old_image = self.instance_image[idx as usize];
                self.images[old_image as usize]
                    .instances
                    .retain(|&i| i != idx);
                if let Some(old_group) = self.instance_group[idx as usize] {
                    self.groups[old_group as usize]
                        .members
                        .retain(|&i| i != idx);
                }
                self.instance_image[idx as usize] = image_idx;
                self.instance_group[idx as usize] = group_idx;
                self.instances[idx as usize] = instance;
                idx
            }
            None => {
                let idx = self.instances.len() as InstanceIdx;
                self.instance_slots.insert(instance.id.clone(), idx);
                self.instances.push(instance);
                self.instance_image.push(image_idx);
                self.instance_group.push(group_idx);
                idx
            }
        };
        self.images[image_idx as usize].instances.push(idx);
        if let Some(group) = group_idx {
            self.groups[group as usize].members.push(idx);
        }
    }

    pub fn instances(&self) -> &[Instance] {
        &self.instances
    }

    pub fn instance(&self, idx: InstanceIdx) -> &Instance {
        &self.instances[idx as usize]
    }

    pub fn instance_by_id(&self, id: &str) -> Option<InstanceIdx> {
        self.instance_slots.get(id).copied()
    }

    pub fn image_of(&self, idx: InstanceIdx) -> ImageIdx {
        self.instance_image[idx as usize]
    }

    /// Every instance's image, by instance index: for passes over every instance.
    pub fn images_of_instances(&self) -> &[ImageIdx] {
        &self.instance_image
    }

    pub fn group_of(&self, idx: InstanceIdx) -> Option<GroupIdx> {
        self.instance_group[idx as usize]
    }

    pub fn images(&self) -> &[ImageEntry] {
        &self.images
    }

    pub fn image(&self, idx: ImageIdx) -> &ImageEntry {
        &self.images[idx as usize]
    }

    pub fn image_by_key(&self, key: &str) -> Option<ImageIdx> {
        self.image_slots.get(key).copied()
    }

    pub fn lineages(&self) -> &[LineageEntry] {
        &self.lineages
    }

    pub fn lineage(&self, idx: LineageIdx) -> &LineageEntry {
        &self.lineages[idx as usize]
    }

    pub fn lineage_by_name(&self, name: &str) -> Option<LineageIdx> {
        self.lineage_slots.get(name).copied()
    }

    pub fn groups(&self) -> &[GroupEntry] {
        &self.groups
    }

    pub fn group(&self, idx: GroupIdx) -> &GroupEntry {
        &self.groups[idx as usize]
    }

    pub fn sources(&self) -> &[SourceStatus] {
        &self.sources
    }

    /// True once every source has finished or failed.
    pub fn collection_done(&self) -> bool {
        self.sources.iter().all(|s| s.state.ended())
    }
}

/// The accounts (AWS accounts, Azure subscriptions, Google Cloud projects: the instances'
/// `account`) that run each image, with how many instances each: an image shared from an image
/// factory into many member accounts is one image, and this says where it runs. Built in one
/// pass over the instances when a view or a report asks, not kept by the inventory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageAccounts {
    /// Every account running something, in id order.
    accounts: Vec<Text>,
    /// Where each image's part of `entries` starts; one more than there are images.
    starts: Vec<u32>,
    /// Per image, (account, instances): most instances first, then by account id.
    entries: Vec<(u32, u32)>,
}

impl ImageAccounts {
    pub fn of(inventory: &Inventory) -> ImageAccounts {
        let instances = inventory.instances();
        // Each instance's account as a number: the instances of one source arrive together,
        // so most rows reuse the previous row's.
        let mut slots: HashMap<&str, u32, foldhash::fast::RandomState> = HashMap::default();
        let mut previous: Option<(&str, u32)> = None;
        let account_of: Vec<u32> = instances
            .iter()
            .map(|instance| match previous {
                Some((known, slot)) if known == instance.account.as_str() => slot,
                _ => {
                    let next = slots.len() as u32;
                    let slot = *slots.entry(instance.account.as_str()).or_insert(next);
                    previous = Some((instance.account.as_str(), slot));
                    slot
                }
            })
            .collect();
        // Numbered in id order, so ties on instances order by id with no text compared.
        let mut names: Vec<(&str, u32)> = slots.into_iter().collect();
        names.sort_unstable();
        let mut rank = vec![0u32; names.len()];
        for (position, &(_, slot)) in names.iter().enumerate() {
            rank[slot as usize] = position as u32;
        }
        let mut counts = vec![0u32; names.len()];
        let mut touched: Vec<u32> = Vec::new();
        let mut starts = Vec::with_capacity(inventory.images().len() + 1);
        let mut entries = Vec::new();
        for entry in inventory.images() {
            starts.push(entries.len() as u32);
            for &i in &entry.instances {
                let account = rank[account_of[i as usize] as usize];
                if counts[account as usize] == 0 {
                    touched.push(account);
                }
                counts[account as usize] += 1;
            }
            let first = entries.len();
            entries.extend(
                touched
                    .drain(..)
                    .map(|a| (a, std::mem::take(&mut counts[a as usize]))),
            );
            entries[first..].sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        }
        starts.push(entries.len() as u32);
        ImageAccounts {
            accounts: names
                .into_iter()
                .map(|(name, _)| Text::from(name))
                .collect(),
            starts,
            entries,
        }
    }

    fn range(&self, image: ImageIdx) -> std::ops::Range<usize> {
        match (
            self.starts.get(image as usize),
            self.starts.get(image as usize + 1),
        ) {
            (Some(&start), Some(&end)) => start as usize..end as usize,
            _ => 0..0,
        }
    }

    /// How many accounts run the image.
    pub fn count(&self, image: ImageIdx) -> usize {
        self.range(image).len()
    }

    /// The accounts that run the image and how many instances each: most first, then by id.
    pub fn of_image(&self, image: ImageIdx) -> impl ExactSizeIterator<Item = (&str, u32)> + '_ {
        self.entries[self.range(image)]
            .iter()
            .map(|&(account, instances)| (self.accounts[account as usize].as_str(), instances))
    }
}

/// Text order, except that runs of digits compare as numbers: `1.0.9` < `1.0.10`.
fn version_order(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let run = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
                let (da, db) = (&a[..run(a)], &b[..run(b)]);
                let trim = |d: &[u8]| {
                    let zeros = d.iter().take_while(|&&c| c == b'0').count();
                    d[zeros..].to_vec()
                };
                let (ta, tb) = (trim(da), trim(db));
                let order = ta.len().cmp(&tb.len()).then_with(|| ta.cmp(&tb));
                if order.is_ne() {
                    return order;
                }
                a = &a[da.len()..];
                b = &b[db.len()..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Inventory, version_order};
    use crate::core::event::CollectEvent;

    #[test]
    fn sources_are_listed_by_name_whatever_spoke_first() {
        let mut inventory = Inventory::new(Default::default());
        for source in ["gcp:shop", "aws:prod", "azure:sub", "aws:dev"] {
            inventory.apply(CollectEvent::Finished {
                source: source.into(),
            });
        }
        let names: Vec<&str> = inventory
            .sources()
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(names, ["aws:dev", "aws:prod", "azure:sub", "gcp:shop"]);
    }

    #[test]
    fn digit_runs_compare_as_numbers() {
        let mut names = vec!["a:1.0.10", "a:1.0.9", "a:1.0.09", "a:1.1", "a:1.0", "b"];
        names.sort_by(|x, y| version_order(x, y));
        assert_eq!(
            names,
            ["a:1.0", "a:1.0.9", "a:1.0.09", "a:1.0.10", "a:1.1", "b"]
        );
    }
}
