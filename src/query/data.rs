//! What the screen shows, derived from the inventory once per change (never per frame): the
//! evaluation, the age histogram, lineages ranked by lag, and the row accessors views share.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::Hash;
use std::ops::Range;
use std::sync::OnceLock;

use chrono::{DateTime, Utc};

use crate::core::inventory::{
    GroupIdx, ImageAccounts, ImageIdx, InstanceIdx, Inventory, LineageIdx,
};
use crate::core::model::{Instance, Text};
use crate::core::policy::{self, Evaluation, ImageEval, PolicyConfig, Verdict};

/// Upper bounds (days) of the image-age histogram's buckets; the last bucket is older.
pub const AGE_BUCKETS: [(i64, &str); 8] = [
    (7, "≤7d"),
    (14, "8-14d"),
    (30, "15-30d"),
    (60, "1-2mo"),
    (90, "2-3mo"),
    (180, "3-6mo"),
    (365, "6-12mo"),
    (i64::MAX, ">1y"),
];

pub struct Data {
    /// Shared, so a snapshot can be written from it off the UI loop.
    pub inventory: std::sync::Arc<Inventory>,
    /// Every instance in id order, and in each Instances column's order, built on first use.
    by_id: OnceLock<Vec<InstanceIdx>>,
    search_text: OnceLock<SearchText>,
    orders: [OnceLock<Vec<InstanceIdx>>; INSTANCE_VERDICT + 1],
    /// The accounts running each image, built on first use (the Images view, its detail).
    image_accounts: OnceLock<ImageAccounts>,
    pub eval: Evaluation,
    /// Running instances per image-age bucket, then those whose image age is unknown.
    pub age_histogram: [u64; AGE_BUCKETS.len() + 1],
    /// Lineages in use, most lagging instances first.
    pub lineages_by_lag: Vec<LineageIdx>,
}

impl Data {
    pub fn new(inventory: Inventory, policy: &PolicyConfig, now: DateTime<Utc>) -> Data {
        let eval = policy::evaluate(&inventory, policy, now);
        let mut age_histogram = [0u64; AGE_BUCKETS.len() + 1];
        for (entry, image_eval) in inventory.images().iter().zip(&eval.images) {
            let bucket = image_eval.age_days.map_or(AGE_BUCKETS.len(), |age| {
                AGE_BUCKETS
                    .iter()
                    .position(|(upper, _)| age <= *upper)
                    .unwrap_or(AGE_BUCKETS.len() - 1)
            });
            age_histogram[bucket] += entry.instances.len() as u64;
        }
        let mut lineages_by_lag: Vec<LineageIdx> = (0..inventory.lineages().len() as LineageIdx)
            .filter(|&l| eval.lineages[l as usize].instances > 0)
            .collect();
        lineages_by_lag.sort_by(|&a, &b| {
            let (ea, eb) = (&eval.lineages[a as usize], &eval.lineages[b as usize]);
            eb.lagging_instances
                .cmp(&ea.lagging_instances)
                .then_with(|| eb.max_behind_by.cmp(&ea.max_behind_by))
                .then_with(|| inventory.lineage(a).name.cmp(&inventory.lineage(b).name))
        });
        Data {
            inventory: std::sync::Arc::new(inventory),
            by_id: OnceLock::new(),
            search_text: OnceLock::new(),
            orders: Default::default(),
            image_accounts: OnceLock::new(),
            eval,
            age_histogram,
            lineages_by_lag,
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.eval.now
    }

    pub fn instance(&self, idx: InstanceIdx) -> &Instance {
        self.inventory.instance(idx)
    }

    pub fn image_eval(&self, image: ImageIdx) -> &ImageEval {
        &self.eval.images[image as usize]
    }

    pub fn instance_eval(&self, idx: InstanceIdx) -> &ImageEval {
        self.image_eval(self.inventory.image_of(idx))
    }

    pub fn verdict(&self, idx: InstanceIdx) -> Verdict {
        self.instance_eval(idx).verdict
    }

    /// The accounts (subscriptions, projects) running each image, with their instances: one
    /// pass over the instances, once per evaluated inventory.
    pub fn image_accounts(&self) -> &ImageAccounts {
        self.image_accounts
            .get_or_init(|| ImageAccounts::of(&self.inventory))
    }

    /// The image's name, or its key when the name is unknown.
    pub fn image_label(&self, image: ImageIdx) -> &str {
        let image = &self.inventory.image(image).image;
        if image.name.is_empty() {
            &image.key
        } else {
            &image.name
        }
    }

    /// The image `key` names, by its name when the inventory knows one (what a template points
    /// at is kept as a key).
    pub fn image_label_of<'a>(&'a self, key: &'a str) -> &'a str {
        self.inventory
            .image_by_key(key)
            .map_or(key, |i| self.image_label(i))
    }

    /// The image `key` names, its name and the key beside it: `web-1.2.0 (ami-0abc…)`; the key
    /// alone when the image has no name.
    pub fn image_named(&self, key: &str) -> String {
        match self.image_label_of(key) {
            label if label == key => key.to_owned(),
            label => format!("{label} ({key})"),
        }
    }

    pub fn lineage_of_image(&self, image: ImageIdx) -> Option<&str> {
        self.inventory
            .image(image)
            .lineage
            .map(|l| self.inventory.lineage(l).name.as_str())
    }

    pub fn group_label(&self, group: GroupIdx) -> &str {
        let entry = self.inventory.group(group);
        entry.group.as_ref().map_or(&entry.key, |g| &g.name)
    }

    pub fn uptime_days(&self, idx: InstanceIdx) -> i64 {
        policy::days_between(self.instance(idx).launched, self.now())
    }

    /// Non-current instances on an image, unless the image is its lineage's golden one: replacing
    /// an instance with the image it already runs changes nothing.
    pub fn replaceable_on_image(&self, image: ImageIdx) -> impl Iterator<Item = InstanceIdx> + '_ {
        let replaceable = self.replaceable_image(image);
        self.inventory
            .image(image)
            .instances
            .iter()
            .copied()
            .filter(move |_| replaceable)
    }

    /// Whether the instances on `image` are worth replacing: not current, not on the golden one.
    pub fn replaceable_image(&self, image: ImageIdx) -> bool {
        let eval = self.image_eval(image);
        eval.verdict != Verdict::Current && eval.golden != Some(image)
    }

    /// "3 outdated, 1 stale": the instances counted by verdict, most severe first.
    pub fn count_by_verdict(&self, instances: &[InstanceIdx]) -> String {
        Verdict::BY_SEVERITY
            .iter()
            .filter_map(|&verdict| {
                let n = instances
                    .iter()
                    .filter(|&&i| self.verdict(i) == verdict)
                    .count();
                (n > 0).then(|| format!("{n} {verdict}"))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn instances_in_lineage(&self, lineage: LineageIdx) -> Vec<InstanceIdx> {
        self.inventory
            .lineage(lineage)
            .images
            .iter()
            .flat_map(|&i| self.inventory.image(i).instances.iter().copied())
            .collect()
    }

    /// Every instance's own searchable text (id, name, account, region, group, addresses),
    /// lowercased, in one string: a free-text filter is then one pass over contiguous memory.
    /// Built on first use.
    pub fn instance_search_text(&self) -> &SearchText {
        self.search_text.get_or_init(|| {
            let inv = &self.inventory;
            let mut joined = String::new();
            let mut ends = Vec::with_capacity(inv.instances().len());
            for (i, instance) in inv.instances().iter().enumerate() {
                let group = inv
                    .group_of(i as InstanceIdx)
                    .map_or("", |g| self.group_label(g));
                let addresses = &instance.addresses;
                let own = [
                    instance.id.as_str(),
                    &instance.name,
                    &instance.account,
                    &instance.region,
                    group,
                ];
                let reachable = addresses
                    .private_ips
                    .iter()
                    .chain(&addresses.public_ips)
                    .chain(&addresses.dns_names)
                    .map(Text::as_str);
                for field in own.into_iter().chain(reachable) {
                    joined.push_str(&field.to_lowercase());
                    // A separator no one types, so a match never spans two fields or instances.
                    joined.push('\u{1}');
                }
                ends.push(joined.len());
            }
            joined.shrink_to_fit();
            SearchText { joined, ends }
        })
    }

    /// Every instance in the ascending order of a column of the Instances view, ties in id
    /// order: the instances in id order, bucketed by the column's rank (a counting sort, so
    /// no comparison sort runs once ids are ranked). Built once per column and data.
    pub fn instance_order(&self, column: usize) -> &[InstanceIdx] {
        let column = column.min(INSTANCE_VERDICT);
        self.orders[column].get_or_init(|| {
            let by_id = self.by_id();
            if column == INSTANCE_ID {
                return by_id.to_vec();
            }
            bucket_by_rank(by_id, &self.instance_primary_ranks(column))
        })
    }

    fn by_id(&self) -> &[InstanceIdx] {
        self.by_id.get_or_init(|| {
            let instances = self.inventory.instances();
            let id_rank = dense_text_ranks(instances, |i| i.id.as_str());
            let rows: Vec<InstanceIdx> = (0..instances.len() as InstanceIdx).collect();
            bucket_by_rank(&rows, &id_rank)
        })
    }

    fn instance_primary_ranks(&self, column: usize) -> Vec<u32> {
        let inv = &self.inventory;
        let instances = inv.instances();
        let image_of = |i: usize| inv.image_of(i as InstanceIdx);
        // Days, shifted so unknown (None) sorts first.
        let age_key = |age: Option<i64>| age.map_or(0, |d| (d + 1).clamp(1, (1 << 28) - 1) as u32);
        match column {
            INSTANCE_NAME => dense_text_ranks(instances, |i| i.name.as_str()),
            INSTANCE_CLOUD => dense_ranks(
                instances
                    .iter()
                    .map(|i| (i.cloud, i.account.as_str(), i.region.as_str())),
            ),
            INSTANCE_ACCOUNT => dense_ranks(instances.iter().map(|i| i.account.as_str())),
            INSTANCE_REGION => dense_ranks(
                instances
                    .iter()
                    .map(|i| (i.region.as_str(), i.zone.as_str())),
            ),
            INSTANCE_GROUP => dense_ranks(instances.iter().map(|i| i.group.as_deref())),
            INSTANCE_IMAGE => {
                let image_rank =
                    dense_ranks((0..inv.images().len()).map(|i| self.image_label(i as ImageIdx)));
                (0..instances.len())
                    .map(|i| image_rank[image_of(i) as usize])
                    .collect()
            }
            INSTANCE_AGE => (0..instances.len())
                .map(|i| age_key(self.image_eval(image_of(i)).age_days))
                .collect(),
            INSTANCE_UPTIME => {
                // Longer uptime is an earlier launch: count seconds back from the latest launch.
                let latest = instances.iter().map(|i| i.launched).max();
                instances
                    .iter()
                    .map(|i| {
                        latest.map_or(0, |l| {
                            (l - i.launched).num_seconds().clamp(0, u32::MAX.into()) as u32
                        })
                    })
                    .collect()
            }
            _ => (0..instances.len())
                .map(|i| {
                    let eval = self.image_eval(image_of(i));
                    ((eval.verdict as u32) << 28) | age_key(eval.age_days)
                })
                .collect(),
        }
    }

    /// The ascending order of images by a column of the Images view.
    pub fn compare_images(&self, column: usize, a: ImageIdx, b: ImageIdx) -> Ordering {
        let (ia, ib) = (self.inventory.image(a), self.inventory.image(b));
        let (ea, eb) = (self.image_eval(a), self.image_eval(b));
        let primary = match column {
            IMAGE_CLOUD => ia.image.cloud.cmp(&ib.image.cloud),
            IMAGE_ID => Ordering::Equal,
            IMAGE_NAME => self.image_label(a).cmp(self.image_label(b)),
            IMAGE_LINEAGE => self.lineage_of_image(a).cmp(&self.lineage_of_image(b)),
            IMAGE_AGE => ea.age_days.cmp(&eb.age_days),
            IMAGE_INSTANCES => ia.instances.len().cmp(&ib.instances.len()),
            IMAGE_ACCOUNTS => {
                let accounts = self.image_accounts();
                accounts
                    .count(a)
                    .cmp(&accounts.count(b))
                    .then_with(|| ia.instances.len().cmp(&ib.instances.len()))
            }
            _ => ea
                .verdict
                .cmp(&eb.verdict)
                .then_with(|| ia.instances.len().cmp(&ib.instances.len())),
        };
        primary.then_with(|| ia.image.key.cmp(&ib.image.key))
    }
}

// Column positions, shared by sorting here and drawing in `draw`.
pub const INSTANCE_ID: usize = 0;
pub const INSTANCE_NAME: usize = 1;
pub const INSTANCE_CLOUD: usize = 2;
pub const INSTANCE_ACCOUNT: usize = 3;
pub const INSTANCE_REGION: usize = 4;
pub const INSTANCE_GROUP: usize = 5;
pub const INSTANCE_IMAGE: usize = 6;
pub const INSTANCE_AGE: usize = 7;
pub const INSTANCE_UPTIME: usize = 8;
pub const INSTANCE_VERDICT: usize = 9;

pub const IMAGE_CLOUD: usize = 0;
pub const IMAGE_ID: usize = 1;
pub const IMAGE_NAME: usize = 2;
pub const IMAGE_LINEAGE: usize = 3;
pub const IMAGE_AGE: usize = 4;
pub const IMAGE_INSTANCES: usize = 5;
pub const IMAGE_ACCOUNTS: usize = 6;
pub const IMAGE_VERDICT: usize = 7;

/// The instances' searchable text end to end; `ends[i]` is where instance `i`'s part ends.
pub struct SearchText {
    joined: String,
    ends: Vec<usize>,
}

impl SearchText {
    /// Which instances contain `needle` (lowercase) in their own fields. This is the free-text
    /// keystroke at a million instances: a vectorised substring search, one hit per instance
    /// (the rest of an instance is skipped once it matched), the instances walked forward
    /// rather than searched, and the text split between the cores at instance boundaries.
    pub fn instances_containing(&self, needle: &str) -> Vec<bool> {
        let mut hits = vec![false; self.ends.len()];
        if needle.is_empty() {
            hits.fill(true);
            return hits;
        }
        let finder = memchr::memmem::Finder::new(needle.as_bytes());
        let parts = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .clamp(1, 4);
        // Small fleets are not worth a thread.
        let parts = if self.ends.len() < 50_000 { 1 } else { parts };
        let per_part = self.ends.len().div_ceil(parts).max(1);
        let last = self.ends.len().div_ceil(per_part) - 1;
        std::thread::scope(|scope| {
            for (part, chunk) in hits.chunks_mut(per_part).enumerate() {
                let first = part * per_part;
                let finder = &finder;
                let mut work = move || self.mark_matches(finder, first, chunk);
                // The last part runs here, while the others run beside it.
                if part == last {
                    work();
                } else {
                    scope.spawn(work);
                }
            }
        });
        hits
    }

    /// Marks, in `hits`, the instances from `first` on that contain the needle.
    fn mark_matches(&self, finder: &memchr::memmem::Finder<'_>, first: usize, hits: &mut [bool]) {
        let bytes = self.joined.as_bytes();
        let start = if first == 0 { 0 } else { self.ends[first - 1] };
        let end = self.ends[first + hits.len() - 1];
        let mut at = start;
        let mut instance = 0;
        while let Some(found) = finder.find(&bytes[at..end]) {
            let position = at + found;
            while self.ends[first + instance] <= position {
                instance += 1;
            }
            hits[instance] = true;
            // One hit is enough: on to the next instance's text.
            at = self.ends[first + instance];
        }
    }
}

/// `dense_ranks` for the text of each item, faster: rows are sorted by integer keys made of 24
/// bytes of text at a time (big-endian, so integer order is byte order), and only rows still
/// tied on a whole chunk are sorted again by the next one. No comparison reads a string; the
/// first chunk's keys are made and sorted by two threads, half the items each. At 1,000,000
/// names this is most of the first sort by a text column.
fn dense_text_ranks<T: Sync>(items: &[T], text: impl Fn(&T) -> &str + Sync) -> Vec<u32> {
    if items.is_empty() || items.len() > ROW_MASK as usize {
        return dense_ranks(items.iter().map(&text));
    }
    let bytes = |row: u32| text(&items[row as usize]).as_bytes();
    let mut keys = sorted_by_halves(items.len(), |part| {
        part.map(|row| chunk_key(bytes(row as u32), 0, row as u32))
            .collect()
    });
    let mut levels = Levels {
        rows: vec![0; items.len()],
        starts_group: vec![true; items.len()],
        tied: Vec::new(),
    };
    levels.settle(&keys, 0, 0);
    while let Some((start, end, offset)) = levels.tied.pop() {
        keys.clear();
        keys.extend(
            levels.rows[start..end]
                .iter()
                .map(|&row| chunk_key(bytes(row), offset, row)),
        );
        keys.sort_unstable();
        levels.settle(&keys, start, offset);
    }
    let mut ranks = vec![0u32; items.len()];
    let mut rank = 0;
    for (position, &row) in levels.rows.iter().enumerate() {
        if position > 0 && levels.starts_group[position] {
            rank += 1;
        }
        ranks[row as usize] = rank;
    }
    ranks
}

/// The text's chunk at `offset` as an integer key, with the length left and the row.
fn chunk_key(text: &[u8], offset: usize, row: u32) -> ChunkKey {
    let rest = text.get(offset..).unwrap_or_default();
    let mut chunk = [0u8; CHUNK];
    let head = &rest[..rest.len().min(CHUNK)];
    chunk[..head.len()].copy_from_slice(head);
    // The length left, up to one more than a chunk: a shorter text sorts before a longer one
    // it begins, even when the longer one continues with zero bytes.
    let left = rest.len().min(CHUNK + 1) as u32;
    let word = |at: usize| u64::from_be_bytes(chunk[at..at + 8].try_into().unwrap_or_default());
    (word(0), word(8), word(16), (left << ROW_BITS) | row)
}

/// The sorted positions settled so far, level by level of chunks.
struct Levels {
    rows: Vec<u32>,
    /// The value at sorted position `p` differs from the one before it.
    starts_group: Vec<bool>,
    /// Ranges of sorted positions whose values agree on their first `offset` bytes.
    tied: Vec<(usize, usize, usize)>,
}

impl Levels {
    /// Takes the sorted keys of the positions from `start` (their chunk at `offset`), and notes
    /// the runs that tie on a whole chunk and go on past it.
    fn settle(&mut self, keys: &[ChunkKey], start: usize, offset: usize) {
        let same = |a: &ChunkKey, b: &ChunkKey| {
            a.0 == b.0 && a.1 == b.1 && a.2 == b.2 && a.3 >> ROW_BITS == b.3 >> ROW_BITS
        };
        let mut run = start;
        for (i, key) in keys.iter().enumerate() {
            let position = start + i;
            self.rows[position] = key.3 & ROW_MASK;
            if i > 0 && !same(&keys[i - 1], key) {
                self.starts_group[position] = true;
                self.note_tied(&keys[run - start], run, position, offset);
                run = position;
            } else if i > 0 {
                self.starts_group[position] = false;
            }
        }
        self.note_tied(&keys[run - start], run, start + keys.len(), offset);
    }

    fn note_tied(&mut self, key: &ChunkKey, start: usize, end: usize, offset: usize) {
        if end - start > 1 && key.3 >> ROW_BITS > CHUNK as u32 {
            self.tied.push((start, end, offset + CHUNK));
        }
    }
}

/// Bytes of text per key: names and AWS ids fit whole, so they are ranked in one pass.
const CHUNK: usize = 24;
/// A row's index shares a `u32` with the length left above it.
const ROW_BITS: u32 = 27;
const ROW_MASK: u32 = (1 << ROW_BITS) - 1;
/// A chunk as three big-endian words, then the length left and the row.
type ChunkKey = (u64, u64, u64, u32);

/// `rows` reordered by `rank[row]`, keeping their order within a rank: one counting pass and
/// one scattering pass.
fn bucket_by_rank(rows: &[InstanceIdx], rank: &[u32]) -> Vec<InstanceIdx> {
    let buckets = rank.iter().max().map_or(0, |&r| r as usize + 1);
    if buckets > 2 * rows.len() + 1024 {
        // Sparse values (uptime in seconds): sorting (rank, place) pairs beats a bucket each.
        let keyed = sorted_by_halves(rows.len(), |part| {
            part.map(|place| (rank[rows[place] as usize], place as u32))
                .collect()
        });
        return keyed
            .into_iter()
            .map(|(_, place)| rows[place as usize])
            .collect();
    }
    let mut next = vec![0u32; buckets + 1];
    for &row in rows {
        next[rank[row as usize] as usize + 1] += 1;
    }
    for b in 1..next.len() {
        next[b] += next[b - 1];
    }
    let mut ordered = vec![0; rows.len()];
    for &row in rows {
        let slot = &mut next[rank[row as usize] as usize];
        ordered[*slot as usize] = row;
        *slot += 1;
    }
    ordered
}

/// The items `make` gives for `0..len`, sorted: on two threads when there are many items and
/// cores, each making and sorting half, then merged. Ranking 1,000,000 names is most of a first
/// sort by name, and the UI thread would otherwise leave the second core idle.
fn sorted_by_halves<K: Ord + Copy + Send>(
    len: usize,
    make: impl Fn(Range<usize>) -> Vec<K> + Sync,
) -> Vec<K> {
    const ON_TWO_THREADS_FROM: usize = 1 << 16;
    let sorted = |part: Range<usize>| {
        let mut items = make(part);
        items.sort_unstable();
        items
    };
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if len < ON_TWO_THREADS_FROM || cores < 2 {
        return sorted(0..len);
    }
    let middle = len / 2;
    let (left, right) = std::thread::scope(|scope| {
        let helper = std::thread::Builder::new().spawn_scoped(scope, || sorted(0..middle));
        let right = sorted(middle..len);
        // No thread to be had (or it failed): this one does the other half too.
        let left = helper
            .ok()
            .and_then(|h| h.join().ok())
            .unwrap_or_else(|| sorted(0..middle));
        (left, right)
    });
    let mut merged = Vec::with_capacity(len);
    let (mut l, mut r) = (0, 0);
    while l < left.len() && r < right.len() {
        if right[r] < left[l] {
            merged.push(right[r]);
            r += 1;
        } else {
            merged.push(left[l]);
            l += 1;
        }
    }
    merged.extend_from_slice(&left[l..]);
    merged.extend_from_slice(&right[r..]);
    merged
}

/// Each value's rank among the distinct values, in value order: equal values share a rank.
/// Columns such as region, account or group hold few distinct values among many rows: each
/// row finds its value in a hash map (or reuses the previous row's, as rows of one source
/// come together) and only the distinct values are sorted.
fn dense_ranks<K: Ord + Hash + Copy>(values: impl Iterator<Item = K>) -> Vec<u32> {
    let mut slots: HashMap<K, u32, foldhash::fast::RandomState> = HashMap::default();
    let mut previous: Option<(K, u32)> = None;
    let slot_of: Vec<u32> = values
        .map(|value| match previous {
            Some((known, slot)) if known == value => slot,
            _ => {
                let next = slots.len() as u32;
                let slot = *slots.entry(value).or_insert(next);
                previous = Some((value, slot));
                slot
            }
        })
        .collect();
    let mut distinct: Vec<(K, u32)> = slots.into_iter().collect();
    distinct.sort_unstable_by_key(|&(value, _)| value);
    let mut rank_of_slot = vec![0u32; distinct.len()];
    for (rank, &(_, slot)) in distinct.iter().enumerate() {
        rank_of_slot[slot as usize] = rank as u32;
    }
    slot_of
        .into_iter()
        .map(|slot| rank_of_slot[slot as usize])
        .collect()
}

/// Azure ids are whole resource paths and GCP images self-links; what people recognise in a
/// table is the last segment (the detail pane shows the whole id), except where the last
/// segment alone repeats: an Azure gallery image version shows as `gallery/image/version`, a
/// scale-set member as `scaleset_instance`, as the portal names it.
pub fn short_id(id: &str) -> Cow<'_, str> {
    let segments: Vec<&str> = id.trim_end_matches('/').split('/').collect();
    let after = |name: &str| {
        segments
            .iter()
            .position(|s| s.eq_ignore_ascii_case(name))
            .and_then(|at| segments.get(at + 1).copied())
    };
    if let (Some(gallery), Some(image), Some(version)) =
        (after("galleries"), after("images"), after("versions"))
    {
        return Cow::Owned(format!("{gallery}/{image}/{version}"));
    }
    if let (Some(scale_set), Some(member)) =
        (after("virtualMachineScaleSets"), after("virtualMachines"))
    {
        return Cow::Owned(format!("{scale_set}_{member}"));
    }
    Cow::Borrowed(segments.last().copied().unwrap_or(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_text_hits_are_the_instances_whose_own_text_contains_the_needle() {
        // Enough instances to split the search between threads, with matches at the
        // boundaries of instances and of the parts.
        let texts: Vec<String> = (0..120_000)
            .map(|i| format!("i-{i:06}\u{1}web-{}\u{1}", i % 7))
            .collect();
        let mut joined = String::new();
        let mut ends = Vec::new();
        for text in &texts {
            joined.push_str(text);
            ends.push(joined.len());
        }
        let search = SearchText { joined, ends };
        for needle in [
            "i-0", "web-3", "59999", "i-060000", "0\u{1}w", "nothing", "-",
        ] {
            let wanted: Vec<bool> = texts.iter().map(|t| t.contains(needle)).collect();
            assert_eq!(search.instances_containing(needle), wanted, "{needle:?}");
        }
        assert!(search.instances_containing("").iter().all(|&hit| hit));
    }

    #[test]
    fn short_ids_tell_rows_apart() {
        let gallery = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/acme/images/frontend/versions/1.0.0";
        assert_eq!(short_id(gallery), "acme/frontend/1.0.0");
        let member = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web-prd/virtualMachines/250";
        assert_eq!(short_id(member), "web-prd_250");
        let vm =
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/db-1";
        assert_eq!(short_id(vm), "db-1");
        assert_eq!(short_id("projects/p/global/images/etl-1-5-0"), "etl-1-5-0");
        assert_eq!(short_id("i-0abc"), "i-0abc");
        assert_eq!(
            short_id("Canonical:offer:sku:22.04.1"),
            "Canonical:offer:sku:22.04.1"
        );
    }

    #[test]
    fn sorts_by_halves_agree_with_the_plain_sort() {
        let mut x = 11u64;
        let items: Vec<(u64, u32)> = (0..200_000u32)
            .map(|i| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 40, i)
            })
            .collect();
        let mut expected = items.clone();
        expected.sort_unstable();
        let sorted = sorted_by_halves(items.len(), |part| items[part].to_vec());
        assert_eq!(sorted, expected);
    }

    #[test]
    fn rows_bucketed_by_rank_keep_their_order_within_a_rank() {
        let rows: Vec<u32> = vec![4, 0, 3, 1, 2, 5];
        for rank in [
            vec![1, 0, 1, 2, 0, 1],
            vec![7, 3_000_000, 7, 0, 3_000_000, 7],
        ] {
            let mut expected = rows.clone();
            expected.sort_by_key(|&r| rank[r as usize]);
            assert_eq!(bucket_by_rank(&rows, &rank), expected, "{rank:?}");
        }
        assert!(bucket_by_rank(&[], &[]).is_empty());
    }

    #[test]
    fn text_ranks_agree_with_plain_ranks() {
        let mut values: Vec<String> = vec![
            String::new(),
            "a".into(),
            "ab".into(),
            "ab!".into(),
            "web-prd-0001".into(),
            "web-prd-0001".into(),
            "web-prd-00010".into(),
        ];
        // Long shared prefixes, as Azure's resource paths have.
        for n in [3u32, 1, 20, 2, 10, 1] {
            values.push(format!(
                "/subscriptions/6f1c2a7e/resourceGroups/rg/virtualMachines/{n}"
            ));
        }
        let mut x = 7u64;
        for _ in 0..200 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            values.push(format!("{:x}", x >> (x % 50)));
        }
        // Ties across several whole chunks, exact chunk lengths, and zero bytes, which a
        // zero-padded chunk must still order after the shorter text they extend.
        let long = "0123456789abcdef".repeat(3);
        for cut in [0, 1, 15, 16, 17, 31, 32, 33, 47, 48] {
            values.push(long[..cut].to_owned());
            values.push(format!("{}\0", &long[..cut]));
            values.push(format!("{}\0\0x", &long[..cut]));
        }
        for _ in 0..300 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let tail: String = (0..x % 7)
                .map(|k| ['a', 'b', '\0'][((x >> k) % 3) as usize])
                .collect();
            values.push(format!("{}{tail}", &long[..(x % 49) as usize]));
        }
        let plain = dense_ranks(values.iter().map(String::as_str));
        let text = dense_text_ranks(&values, String::as_str);
        assert_eq!(plain, text);
        assert!(dense_text_ranks(&[] as &[String], String::as_str).is_empty());
    }
}
