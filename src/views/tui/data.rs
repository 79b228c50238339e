//! What the screen shows, derived from the inventory once per change (never per frame): the
//! evaluation, the age histogram, lineages ranked by lag, and the row accessors views share.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};

use crate::core::inventory::{GroupIdx, ImageIdx, InstanceIdx, Inventory, LineageIdx};
use crate::core::model::Instance;
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
    pub inventory: Inventory,
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
            inventory,
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

    /// The image's name, or its key when the name is unknown.
    pub fn image_label(&self, image: ImageIdx) -> &str {
        let image = &self.inventory.image(image).image;
        if image.name.is_empty() {
            &image.key
        } else {
            &image.name
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
        let eval = self.image_eval(image);
        let on_golden = eval.golden == Some(image);
        self.inventory
            .image(image)
            .instances
            .iter()
            .copied()
            .filter(move |_| eval.verdict != Verdict::Current && !on_golden)
    }

    pub fn instances_in_lineage(&self, lineage: LineageIdx) -> Vec<InstanceIdx> {
        self.inventory
            .lineage(lineage)
            .images
            .iter()
            .flat_map(|&i| self.inventory.image(i).instances.iter().copied())
            .collect()
    }

    /// The ascending order of instances by a column of the Instances view.
    pub fn compare_instances(&self, column: usize, a: InstanceIdx, b: InstanceIdx) -> Ordering {
        let (ia, ib) = (self.instance(a), self.instance(b));
        let (ea, eb) = (self.instance_eval(a), self.instance_eval(b));
        let primary = match column {
            INSTANCE_ID => Ordering::Equal,
            INSTANCE_NAME => ia.name.cmp(&ib.name),
            INSTANCE_CLOUD => {
                (ia.cloud, &ia.account, &ia.region).cmp(&(ib.cloud, &ib.account, &ib.region))
            }
            INSTANCE_ACCOUNT => ia.account.cmp(&ib.account),
            INSTANCE_REGION => (&ia.region, &ia.zone).cmp(&(&ib.region, &ib.zone)),
            INSTANCE_GROUP => ia.group.cmp(&ib.group),
            INSTANCE_IMAGE => self
                .image_label(self.inventory.image_of(a))
                .cmp(self.image_label(self.inventory.image_of(b))),
            INSTANCE_AGE => ea.age_days.cmp(&eb.age_days),
            INSTANCE_UPTIME => ib.launched.cmp(&ia.launched),
            _ => ea
                .verdict
                .cmp(&eb.verdict)
                .then_with(|| ea.age_days.cmp(&eb.age_days)),
        };
        primary.then_with(|| ia.id.cmp(&ib.id))
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
pub const IMAGE_VERDICT: usize = 6;

/// Azure ids are whole resource paths and GCP images self-links; the last segment is what people
/// recognise in a table (the detail line shows the whole id).
pub fn short_id(id: &str) -> &str {
    if id.contains('/') {
        id.trim_end_matches('/').rsplit('/').next().unwrap_or(id)
    } else {
        id
    }
}
