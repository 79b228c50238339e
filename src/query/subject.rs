//! What a filter sees of each kind of row, and the instance selection that the UI and the
//! headless `--report --filter` share: one language, one answer, wherever it is asked.

use super::data::Data;
use super::filter::{self, Field, Subject};
use crate::core::inventory::{GroupIdx, ImageIdx, InstanceIdx, LineageIdx};
use crate::core::model::Tags;
use crate::queue::QueueEntry;

/// A row of the Drift view: a lineage, one of its images (newest first), the header of the
/// groups' section, or a group with skew or template drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriftRow {
    Lineage(LineageIdx),
    Image(ImageIdx),
    /// The groups' section begins: its header, with their counts.
    Groups,
    Group(GroupIdx),
}

pub const INSTANCE_FIELDS: &[Field] = &[
    Field::Cloud,
    Field::Account,
    Field::Region,
    Field::Zone,
    Field::Name,
    Field::Id,
    Field::Image,
    Field::Lineage,
    Field::Group,
    Field::Verdict,
    Field::State,
    Field::Type,
    Field::Source,
    Field::Tag,
    Field::Ip,
    Field::Age,
    Field::Uptime,
    Field::Behind,
    Field::Exposed,
    Field::LongLived,
    Field::UntrustedSource,
];
/// Instance fields that are the image's: `ImageSubject` answers them as `InstanceSubject` would.
const IMAGE_LEVEL: &[Field] = &[
    Field::Cloud,
    Field::Image,
    Field::Lineage,
    Field::Verdict,
    Field::Age,
    Field::Behind,
    Field::UntrustedSource,
];
pub const IMAGE_FIELDS: &[Field] = &[
    Field::Cloud,
    Field::Account,
    Field::Name,
    Field::Id,
    Field::Image,
    Field::Lineage,
    Field::Verdict,
    Field::Tag,
    Field::Age,
    Field::Behind,
    Field::Accounts,
    Field::UntrustedSource,
];
pub const DRIFT_FIELDS: &[Field] = &[
    Field::Cloud,
    Field::Name,
    Field::Lineage,
    Field::Group,
    Field::Drift,
    Field::Skew,
];
pub const QUEUE_FIELDS: &[Field] = &[
    Field::Cloud,
    Field::Account,
    Field::Region,
    Field::Name,
    Field::Id,
    Field::Image,
    Field::Verdict,
    Field::Strategy,
    Field::Failed,
    Field::Blocked,
];

/// A query made ready for many instances: terms on what an instance inherits from its image
/// are decided once per image (5,000) rather than once per instance (100,000), and free text
/// likewise, the instance's half in one pass over every instance's search text.
pub struct InstanceFilter {
    image_ok: Vec<bool>,
    row_terms: filter::Query,
    free_text: FreeText,
}

impl InstanceFilter {
    pub fn new(data: &Data, query: &filter::Query) -> InstanceFilter {
        let inv = &data.inventory;
        let (image_terms, row_terms) = query.split(|f| IMAGE_LEVEL.contains(&f));
        let image_ok = (0..inv.images().len() as ImageIdx)
            .map(|image| image_terms.matches(&ImageSubject { data, image }))
            .collect();
        let free_text = FreeText {
            needles: row_terms
                .free_text_needles()
                .map(|needle| {
                    let image_hits = (0..inv.images().len() as ImageIdx)
                        .map(|image| {
                            let subject = ImageSubject { data, image };
                            IMAGE_LEVEL_TEXT.iter().any(|&f| {
                                subject
                                    .any_text(f, &mut |t| filter::contains_ignore_case(t, needle))
                            })
                        })
                        .collect();
                    let instance_hits = data.instance_search_text().instances_containing(needle);
                    (needle.to_owned(), image_hits, instance_hits)
                })
                .collect(),
        };
        InstanceFilter {
            image_ok,
            row_terms,
            free_text,
        }
    }

    /// Whether instance `i`, on `image`, passes (the caller has the image at hand).
    pub fn keep_on(&self, data: &Data, i: InstanceIdx, image: ImageIdx) -> bool {
        self.image_ok[image as usize]
            && (self.row_terms.is_empty()
                || self.row_terms.matches(&InstanceSubject {
                    data,
                    instance: i,
                    free_text: &self.free_text,
                }))
    }
}

/// The instances `query` (the Instances view's language) selects, as the Instances view would.
pub fn select_instances(data: &Data, query: &filter::Query) -> Vec<InstanceIdx> {
    let filter = InstanceFilter::new(data, query);
    let images = data.inventory.images_of_instances();
    (0..data.inventory.instances().len() as InstanceIdx)
        .filter(|&i| filter.keep_on(data, i, images[i as usize]))
        .collect()
}

struct InstanceSubject<'a> {
    data: &'a Data,
    instance: InstanceIdx,
    free_text: &'a FreeText,
}

/// Free-text matches worked out before a filter pass: per needle, which images match in their
/// own fields, and which instances in theirs.
struct FreeText {
    needles: Vec<(String, Vec<bool>, Vec<bool>)>,
}

/// The free-text fields of an instance that are its image's.
const IMAGE_LEVEL_TEXT: &[Field] = &[Field::Image, Field::Lineage, Field::Verdict, Field::Cloud];

impl Subject for InstanceSubject<'_> {
    fn free_text_fields(&self) -> &'static [Field] {
        &[
            Field::Id,
            Field::Name,
            Field::Account,
            Field::Region,
            Field::Group,
            Field::Image,
            Field::Lineage,
            Field::Verdict,
            Field::Cloud,
            Field::Ip,
        ]
    }

    fn text(&self, field: Field) -> Option<&str> {
        let data = self.data;
        let instance = data.instance(self.instance);
        let image = data.inventory.image_of(self.instance);
        match field {
            Field::Cloud => Some(instance.cloud.as_str()),
            Field::Account => Some(&instance.account),
            Field::Region => Some(&instance.region),
            Field::Zone => Some(&instance.zone),
            Field::Name => Some(&instance.name),
            Field::Id => Some(&instance.id),
            Field::Image => Some(data.image_label(image)),
            Field::Lineage => data.lineage_of_image(image),
            Field::Group => data
                .inventory
                .group_of(self.instance)
                .map(|g| data.group_label(g)),
            Field::Verdict => Some(data.image_eval(image).verdict.as_str()),
            Field::State => Some(&instance.state),
            Field::Type => Some(&instance.instance_type),
            Field::Source => Some(&instance.source),
            _ => None,
        }
    }

    fn any_text(&self, field: Field, check: &mut dyn FnMut(&str) -> bool) -> bool {
        match field {
            Field::Image => image_texts(
                self.data,
                self.data.inventory.image_of(self.instance),
                check,
            ),
            Field::Lineage => lineage_texts(
                self.data,
                self.data.inventory.image_of(self.instance),
                check,
            ),
            Field::Ip => {
                let a = &self.data.instance(self.instance).addresses;
                a.private_ips
                    .iter()
                    .chain(&a.public_ips)
                    .chain(&a.dns_names)
                    .any(|t| check(t))
            }
            _ => self.text(field).is_some_and(check),
        }
    }

    fn number(&self, field: Field) -> Option<i64> {
        match field {
            Field::Age => self.data.instance_eval(self.instance).age_days,
            Field::Uptime => Some(self.data.uptime_days(self.instance)),
            Field::Behind => Some(i64::from(self.data.instance_eval(self.instance).behind_by)),
            _ => None,
        }
    }

    fn flag(&self, field: Field) -> Option<bool> {
        match field {
            Field::Exposed => Some(!self.data.instance(self.instance).exposure.is_empty()),
            Field::LongLived => Some(self.data.eval.long_lived[self.instance as usize]),
            Field::UntrustedSource => Some(self.data.instance_eval(self.instance).untrusted_source),
            _ => None,
        }
    }

    fn tags(&self) -> Option<&Tags> {
        Some(&self.data.instance(self.instance).tags)
    }

    fn contains_anywhere(&self, needle: &str) -> Option<bool> {
        let (_, image_hits, instance_hits) = self
            .free_text
            .needles
            .iter()
            .find(|(n, _, _)| n == needle)?;
        let image = self.data.inventory.image_of(self.instance);
        Some(image_hits[image as usize] || instance_hits[self.instance as usize])
    }
}

/// An image answers by its name and by its key: an advisory names the AMI id, a person the name.
fn image_texts(data: &Data, image: ImageIdx, check: &mut dyn FnMut(&str) -> bool) -> bool {
    let entry = &data.inventory.image(image).image;
    check(data.image_label(image)) || (!entry.name.is_empty() && check(&entry.key))
}

/// A lineage answers by its whole name and by the name without its owner (`web` for
/// `999900001111/web`), so `lineage:web*` matches what the screen shows.
fn lineage_texts(data: &Data, image: ImageIdx, check: &mut dyn FnMut(&str) -> bool) -> bool {
    data.lineage_of_image(image).is_some_and(|name| {
        check(name) || name.split_once('/').is_some_and(|(_, short)| check(short))
    })
}

pub struct ImageSubject<'a> {
    pub data: &'a Data,
    pub image: ImageIdx,
}

impl Subject for ImageSubject<'_> {
    fn free_text_fields(&self) -> &'static [Field] {
        &[
            Field::Id,
            Field::Name,
            Field::Lineage,
            Field::Verdict,
            Field::Cloud,
        ]
    }

    fn text(&self, field: Field) -> Option<&str> {
        let data = self.data;
        let image = &data.inventory.image(self.image).image;
        match field {
            Field::Cloud => Some(image.cloud.as_str()),
            Field::Account => Some(&image.owner),
            Field::Name | Field::Image => Some(data.image_label(self.image)),
            Field::Id => Some(&image.key),
            Field::Lineage => data.lineage_of_image(self.image),
            Field::Verdict => Some(data.image_eval(self.image).verdict.as_str()),
            _ => None,
        }
    }

    fn any_text(&self, field: Field, check: &mut dyn FnMut(&str) -> bool) -> bool {
        match field {
            Field::Image => image_texts(self.data, self.image, check),
            Field::Lineage => lineage_texts(self.data, self.image, check),
            _ => self.text(field).is_some_and(check),
        }
    }

    fn number(&self, field: Field) -> Option<i64> {
        let eval = self.data.image_eval(self.image);
        match field {
            Field::Age => eval.age_days,
            Field::Behind => Some(i64::from(eval.behind_by)),
            Field::Accounts => Some(self.data.image_accounts().count(self.image) as i64),
            _ => None,
        }
    }

    fn flag(&self, field: Field) -> Option<bool> {
        match field {
            Field::UntrustedSource => Some(self.data.image_eval(self.image).untrusted_source),
            _ => None,
        }
    }

    fn tags(&self) -> Option<&Tags> {
        Some(&self.data.inventory.image(self.image).image.tags)
    }
}

pub struct DriftSubject<'a> {
    pub data: &'a Data,
    pub row: DriftRow,
}

impl Subject for DriftSubject<'_> {
    fn free_text_fields(&self) -> &'static [Field] {
        &[Field::Name, Field::Cloud]
    }

    fn text(&self, field: Field) -> Option<&str> {
        let inv = &self.data.inventory;
        match (self.row, field) {
            (DriftRow::Lineage(l), Field::Name | Field::Lineage) => Some(&inv.lineage(l).name),
            (DriftRow::Lineage(l), Field::Cloud) => inv
                .lineage(l)
                .images
                .first()
                .map(|&i| inv.image(i).image.cloud.as_str()),
            (DriftRow::Group(g), Field::Name | Field::Group) => Some(self.data.group_label(g)),
            (DriftRow::Group(g), Field::Cloud) => {
                inv.group(g).group.as_ref().map(|d| d.cloud.as_str())
            }
            (DriftRow::Image(i), Field::Name) => Some(self.data.image_label(i)),
            (DriftRow::Image(i), Field::Cloud) => Some(inv.image(i).image.cloud.as_str()),
            _ => None,
        }
    }

    fn any_text(&self, field: Field, check: &mut dyn FnMut(&str) -> bool) -> bool {
        match (self.row, field) {
            (DriftRow::Lineage(l), Field::Name | Field::Lineage) => {
                let name = &self.data.inventory.lineage(l).name;
                check(name) || name.split_once('/').is_some_and(|(_, short)| check(short))
            }
            _ => self.text(field).is_some_and(check),
        }
    }

    fn flag(&self, field: Field) -> Option<bool> {
        let DriftRow::Group(g) = self.row else {
            return None;
        };
        let eval = self.data.eval.group_eval(g);
        match field {
            Field::Drift => Some(eval.drift()),
            Field::Skew => Some(eval.skew()),
            _ => None,
        }
    }

    /// A group answers free text by its status too, so `template` finds those in template
    /// drift and `version` those with version skew, as the screen words them.
    fn contains_anywhere(&self, needle: &str) -> Option<bool> {
        let DriftRow::Group(g) = self.row else {
            return None;
        };
        let eval = self.data.eval.group_eval(g);
        let status = match (eval.drift(), eval.skew()) {
            (true, true) => "template drift, version skew",
            (true, false) => "template drift",
            (false, true) => "version skew",
            (false, false) => "",
        };
        Some(
            filter::contains_ignore_case(status, needle)
                || self
                    .free_text_fields()
                    .iter()
                    .any(|&f| self.any_text(f, &mut |t| filter::contains_ignore_case(t, needle))),
        )
    }
}

pub struct QueueSubject<'a> {
    pub data: &'a Data,
    pub entry: &'a QueueEntry,
    /// Its last attempt failed: the queue file does not say, the rollout and the journal do.
    pub failed: bool,
}

impl Subject for QueueSubject<'_> {
    fn free_text_fields(&self) -> &'static [Field] {
        &[
            Field::Id,
            Field::Name,
            Field::Image,
            Field::Strategy,
            Field::Verdict,
        ]
    }

    fn text(&self, field: Field) -> Option<&str> {
        let e = self.entry;
        match field {
            Field::Cloud => Some(e.cloud.as_str()),
            Field::Account => Some(&e.account),
            Field::Region => Some(&e.region),
            Field::Name => Some(&e.name),
            Field::Id => Some(&e.instance_id),
            Field::Image => Some(&e.image),
            Field::Verdict => Some(e.verdict.as_str()),
            Field::Strategy => Some(e.strategy.label()),
            _ => None,
        }
    }

    fn any_text(&self, field: Field, check: &mut dyn FnMut(&str) -> bool) -> bool {
        match field {
            // The entry keeps the key; the name comes from the inventory when it knows it.
            Field::Image => {
                check(&self.entry.image)
                    || self
                        .data
                        .inventory
                        .image_by_key(&self.entry.image)
                        .is_some_and(|i| check(self.data.image_label(i)))
            }
            _ => self.text(field).is_some_and(check),
        }
    }

    fn flag(&self, field: Field) -> Option<bool> {
        match field {
            Field::Failed => Some(self.failed),
            Field::Blocked => Some(!self.entry.strategy.executable()),
            _ => None,
        }
    }
}
