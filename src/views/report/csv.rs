//! One row per instance, for spreadsheets and scripts.

use std::io::{self, Write};

use super::{ReportInput, timestamp};

const HEADER: [&str; 24] = [
    "id",
    "name",
    "cloud",
    "account",
    "region",
    "zone",
    "state",
    "instance_type",
    "launched",
    "uptime_days",
    "long_lived",
    "group",
    "image",
    "image_name",
    "lineage",
    "image_created",
    "image_age_days",
    "verdict",
    "behind_by",
    "behind_since",
    "golden_image",
    "reasons",
    "exposure",
    "source",
];

pub fn write(input: &ReportInput<'_>, out: &mut dyn Write) -> io::Result<()> {
    let inv = input.inventory;
    let eval = input.eval;
    let mut csv = ::csv::Writer::from_writer(out);
    // The column is there when the policy names trusted owners, so a report without them
    // keeps its shape.
    let trust_checked = !input.policy.trusted_owners.is_empty();
    let mut header = HEADER.to_vec();
    if trust_checked {
        header.push("untrusted_source");
    }
    csv.write_record(&header)?;
    for i in input.instances_by_place() {
        let instance = inv.instance(i);
        let image = inv.image_of(i);
        let entry = inv.image(image);
        let ie = &eval.images[image as usize];
        let group = inv
            .group_of(i)
            .map(|g| inv.group(g).key.as_str())
            .unwrap_or("");
        let golden = ie
            .golden
            .map(|g| inv.image(g).image.key.as_str())
            .unwrap_or("");
        let fields = [
            instance.id.as_str(),
            &instance.name,
            instance.cloud.as_str(),
            &instance.account,
            &instance.region,
            &instance.zone,
            &instance.state,
            &instance.instance_type,
            &timestamp(instance.launched),
            &crate::core::policy::days_between(instance.launched, eval.now).to_string(),
            if eval.long_lived[i as usize] {
                "true"
            } else {
                "false"
            },
            group,
            &entry.image.key,
            &entry.image.name,
            input.lineage_name(image),
            &entry.image.created.map(timestamp).unwrap_or_default(),
            &ie.age_days.map(|d| d.to_string()).unwrap_or_default(),
            ie.verdict.as_str(),
            &ie.behind_by.to_string(),
            &ie.behind_since.map(timestamp).unwrap_or_default(),
            golden,
            &ie.reasons.join("; "),
            &instance.exposure.join("; "),
            &instance.source,
        ];
        for field in fields {
            csv.write_field(crate::text::escape(field).as_bytes())?;
        }
        if trust_checked {
            csv.write_field(if ie.untrusted_source { "true" } else { "false" })?;
        }
        csv.write_record(None::<&[u8]>)?;
    }
    csv.flush()
}
