//! The Azure template step. A scale set has no separate template: its model is it. A model
//! that launches another image than the golden one gets its `imageReference` pointed at the
//! golden image by one PATCH of that reference alone, of the same kind as before, so the
//! upgrade policy and the rest of the model stay as the operator wrote them. Its members are
//! then upgraded to the model one by one, as any other. The old image stays, and the plan,
//! the journal and a failed canary name it with the `az vmss update` that points back.

use super::arm::{Arm, ArmId, ImageRef, ScaleSet};
use super::collect::image_key;
use super::replace::{check_model, member_of};
use crate::queue::QueueEntry;
use crate::queue::journal::{Call, Step};
use crate::queue::rollout::{Steps, TemplateDone, TemplateStep};

const IMAGE_REFERENCE: &str = "virtualMachineProfile.storageProfile.imageReference";

/// A model update a template step makes: the reference as the model writes it now, and the
/// one it writes afterwards.
pub(super) struct Repoint {
    pub old: ImageRef,
    pub new: ImageRef,
}

/// The step for a scale set in template drift (`drift`: why its members wait without one),
/// or why a template step cannot fix it.
pub(super) fn step(set: &ScaleSet, golden: &str, drift: String) -> Result<TemplateStep, String> {
    let change = repoint(set, golden).map_err(|why| {
        format!(
            "the model of scale set {} does not launch the golden {golden}, and a template step cannot point it there: {why}",
            set.name
        )
    })?;
    Ok(TemplateStep {
        group: set.id.to_ascii_lowercase(),
        describe: format!(
            "point {} (scale set) at {golden} (model image reference, from {})",
            set.name,
            image_key(&change.old)
        ),
        drift,
    })
}

/// The golden image's reference for this model, or why a PATCH cannot write it faithfully.
/// The model's spelling is kept where the two name the same image definition or marketplace
/// sku, so only the version changes.
pub(super) fn repoint(set: &ScaleSet, golden: &str) -> Result<Repoint, String> {
    // Azure itself rolls a model change out to the members of an Automatic or Rolling scale
    // set: all of them, outside this rollout's waves and canary.
    if let Some(mode) = set
        .upgrade_mode
        .as_deref()
        .filter(|m| !m.eq_ignore_ascii_case("manual"))
    {
        return Err(format!(
            "its upgrade policy is {mode}, so Azure would roll every member onto a new model itself; point the model yourself, or set the policy to Manual"
        ));
    }
    let old = set
        .model
        .clone()
        .ok_or("the model names no image reference (it launches from a disk)")?;
    let new = golden_ref(golden)
        .ok_or_else(|| format!("the golden {golden} is no image key of Azure's"))?;
    if field(&old) != field(&new) {
        return Err(format!(
            "the model names its image by {} and the golden one is named by {}, and a PATCH cannot clear the old fields; update the scale-set model first",
            field(&old),
            field(&new)
        ));
    }
    let new = respell(&old, new);
    Ok(Repoint { old, new })
}

/// The reference an image key (see `collect::image_key`) stands for.
fn golden_ref(key: &str) -> Option<ImageRef> {
    if key.starts_with('/') {
        let id = ArmId::parse(key);
        let names = |kind: &str| !id.get(kind).is_empty();
        let id = key.to_owned();
        return Some(if names("sharedgalleries") {
            ImageRef::SharedGallery { id }
        } else if names("communitygalleries") {
            ImageRef::CommunityGallery { id }
        } else if names("galleries") {
            ImageRef::Gallery { id }
        } else {
            ImageRef::Managed { id }
        });
    }
    let mut parts = key.splitn(4, ':').map(str::to_owned);
    let (publisher, offer, sku, version) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    [&publisher, &offer, &sku, &version]
        .iter()
        .all(|p| !p.is_empty())
        .then_some(ImageRef::Marketplace {
            publisher,
            offer,
            sku,
            version,
        })
}

/// The fields of `imageReference` a reference is written in.
fn field(image: &ImageRef) -> &'static str {
    match image {
        ImageRef::Marketplace { .. } => "publisher, offer, sku and version",
        ImageRef::Gallery { .. } | ImageRef::Managed { .. } => "id",
        ImageRef::SharedGallery { .. } => "sharedGalleryImageId",
        ImageRef::CommunityGallery { .. } => "communityGalleryImageId",
    }
}

/// `new` as the model spells it: image keys are lowercase, and the operator's casing of a
/// publisher or a gallery id should survive a version change.
fn respell(old: &ImageRef, new: ImageRef) -> ImageRef {
    match (old, new) {
        (
            ImageRef::Marketplace {
                publisher,
                offer,
                sku,
                ..
            },
            ImageRef::Marketplace {
                publisher: p,
                offer: o,
                sku: s,
                version,
            },
        ) => {
            let same = publisher.eq_ignore_ascii_case(&p)
                && offer.eq_ignore_ascii_case(&o)
                && sku.eq_ignore_ascii_case(&s);
            if same {
                ImageRef::Marketplace {
                    publisher: publisher.clone(),
                    offer: offer.clone(),
                    sku: sku.clone(),
                    version,
                }
            } else {
                ImageRef::Marketplace {
                    publisher: p,
                    offer: o,
                    sku: s,
                    version,
                }
            }
        }
        (old, new) => {
            let id = match (ref_id(old), ref_id(&new)) {
                (Some(old), Some(id)) => same_definition(old, id),
                _ => None,
            };
            match (id, new) {
                (Some(id), ImageRef::Gallery { .. }) => ImageRef::Gallery { id },
                (Some(id), ImageRef::SharedGallery { .. }) => ImageRef::SharedGallery { id },
                (Some(id), ImageRef::CommunityGallery { .. }) => ImageRef::CommunityGallery { id },
                (_, new) => new,
            }
        }
    }
}

fn ref_id(image: &ImageRef) -> Option<&str> {
    match image {
        ImageRef::Marketplace { .. } => None,
        ImageRef::Gallery { id }
        | ImageRef::SharedGallery { id }
        | ImageRef::CommunityGallery { id }
        | ImageRef::Managed { id } => Some(id),
    }
}

/// The old version id's definition, as spelled there, with the new version; `None` unless
/// both are versions of one definition.
fn same_definition(old: &str, new: &str) -> Option<String> {
    const VERSIONS: &str = "/versions/";
    let at = old.to_ascii_lowercase().rfind(VERSIONS)?;
    let new_at = new.to_ascii_lowercase().rfind(VERSIONS)?;
    let version = at + VERSIONS.len();
    old[..at]
        .eq_ignore_ascii_case(&new[..new_at])
        .then(|| format!("{}{}", &old[..version], &new[new_at + VERSIONS.len()..]))
}

/// The `az` command that writes `old` back into the model (members keep what they run until
/// they are upgraded again).
fn revert(set: &ScaleSet, old: &ImageRef) -> String {
    let id = ArmId::parse(&set.id);
    let values = match old {
        ImageRef::Marketplace {
            publisher,
            offer,
            sku,
            version,
        } => [
            ("publisher", publisher),
            ("offer", offer),
            ("sku", sku),
            ("version", version),
        ]
        .iter()
        .map(|(field, value)| word(&format!("{IMAGE_REFERENCE}.{field}={value}")))
        .collect::<Vec<_>>()
        .join(" "),
        ImageRef::Gallery { id } | ImageRef::Managed { id } => {
            word(&format!("{IMAGE_REFERENCE}.id={id}"))
        }
        ImageRef::SharedGallery { id } => {
            word(&format!("{IMAGE_REFERENCE}.sharedGalleryImageId={id}"))
        }
        ImageRef::CommunityGallery { id } => {
            word(&format!("{IMAGE_REFERENCE}.communityGalleryImageId={id}"))
        }
    };
    format!(
        "az vmss update --subscription {} --resource-group {} --name {} --set {values}",
        word(&id.subscription),
        word(id.get("resourcegroups")),
        word(&set.name)
    )
}

/// A shell word: as is when it is plain, else single-quoted.
fn word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=@+,".contains(c));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// Carries out the template step for the scale set of `member`: one read, one PATCH, then
/// reads until the update's provisioning succeeded. A dry run reads and checks only.
pub(super) async fn point_group(
    arm: &Arm,
    member: &QueueEntry,
    steps: &Steps,
) -> Result<TemplateDone, String> {
    let (_, id) = member_of(member)?;
    let golden = member
        .target_image
        .as_deref()
        .ok_or("no golden image to point the scale set at")?;
    let set = arm.scale_set(&id).await.map_err(|e| e.message)?;
    let now = format!("{golden} (the model of scale set {})", set.name);
    if check_model(&set, golden).is_ok() {
        // The model got there since the plan read it: an earlier apply's update whose answer
        // was lost, or another writer. Nothing is sent; what the member runs is what the model
        // launched before, as near as can be told now.
        let back = golden_ref(&member.image).map_or_else(
            || {
                format!(
                    "an `az vmss update` of {} naming the image it launched before",
                    set.name
                )
            },
            |old| revert(&set, &old),
        );
        let done = TemplateDone { now, revert: back };
        if steps.dry_run {
            steps.record(Step::Checked)?;
            return Ok(done);
        }
        provisioned(arm, &id, &set, golden, steps, &done).await?;
        steps.record(Step::GroupPointed {
            template: format!("scale-set model, image {golden}"),
        })?;
        return Ok(done);
    }
    let change = repoint(&set, golden).map_err(|why| format!("scale set {}: {why}", set.name))?;
    let old = image_key(&change.old);
    let done = TemplateDone {
        now,
        revert: revert(&set, &change.old),
    };
    if steps.dry_run {
        steps.record(Step::Checked)?;
        return Ok(done);
    }
    // An earlier intent left unanswered did not reach the model (it is not golden): this is
    // that call, sent now.
    if !steps.progress.sent_unanswered(Call::PointGroup) {
        steps.record(Step::Intent {
            call: Call::PointGroup,
        })?;
    }
    let answer = arm
        .point_model(&id, &change.new, set.etag.as_deref())
        .await
        .map_err(|e| e.message)?;
    provisioned(arm, &id, &answer, golden, steps, &done).await?;
    steps.record(Step::GroupPointed {
        template: format!("scale-set model, image {golden}, from {old}"),
    })?;
    Ok(done)
}

/// Waits until the scale set's last operation (the model update) has succeeded with the
/// golden image in the model; `last` is the scale set as last seen.
async fn provisioned(
    arm: &Arm,
    id: &ArmId,
    last: &ScaleSet,
    golden: &str,
    steps: &Steps,
    done: &TemplateDone,
) -> Result<(), String> {
    let settled = |set: &ScaleSet| -> Result<bool, String> {
        match set.provisioning.as_deref() {
            Some(state @ ("failed" | "canceled")) => Err(format!(
                "scale set {}: its model update ended {state}; {} points it back",
                set.name, done.revert
            )),
            Some("succeeded") | None => check_model(set, golden).map(|()| true).map_err(|_| {
                format!(
                    "scale set {}: another change overwrote its model update, it launches {}",
                    set.name,
                    set.image
                        .as_ref()
                        .map_or_else(|| "no image reference".to_owned(), image_key)
                )
            }),
            Some(_) => Ok(false),
        }
    };
    if settled(last)? {
        return Ok(());
    }
    steps
        .wait_until(
            &format!("the model update of scale set {} to succeed", last.name),
            || async { settled(&arm.scale_set(id).await.map_err(|e| e.message)?) },
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(model: ImageRef, mode: &str) -> ScaleSet {
        ScaleSet {
            id: "/subscriptions/s1/resourceGroups/RG-Web/providers/Microsoft.Compute/virtualMachineScaleSets/web".into(),
            name: "web".into(),
            location: "westeurope".into(),
            capacity: Some(2),
            uniform: true,
            image: Some(model.clone()),
            model: Some(model),
            upgrade_mode: Some(mode.into()),
            provisioning: Some("succeeded".into()),
            etag: None,
            health_extension: false,
        }
    }

    const OLD: &str = "/subscriptions/s1/resourceGroups/RG-Images/providers/Microsoft.Compute/galleries/Golden/images/Web/versions/1.1.0";

    #[test]
    fn a_gallery_version_keeps_the_models_spelling_and_changes_only_the_version() {
        let golden = "/subscriptions/s1/resourcegroups/rg-images/providers/microsoft.compute/galleries/golden/images/web/versions/1.2.0";
        let change = repoint(&set(ImageRef::Gallery { id: OLD.into() }, "Manual"), golden).unwrap();
        assert_eq!(
            change.new,
            ImageRef::Gallery {
                id: OLD.replace("1.1.0", "1.2.0")
            }
        );
        // Another definition: the golden id as the key has it (ARM ids ignore case).
        let other = golden.replace("/images/web/", "/images/api/");
        let change = repoint(&set(ImageRef::Gallery { id: OLD.into() }, "Manual"), &other).unwrap();
        assert_eq!(change.new, ImageRef::Gallery { id: other });
    }

    #[test]
    fn a_marketplace_model_keeps_its_publisher_and_takes_the_golden_version() {
        let model = ImageRef::Marketplace {
            publisher: "Canonical".into(),
            offer: "ubuntu-24_04-lts".into(),
            sku: "server".into(),
            version: "latest".into(),
        };
        let change = repoint(
            &set(model, "Manual"),
            "canonical:ubuntu-24_04-lts:server:24.04.202610250",
        )
        .unwrap();
        assert_eq!(
            change.new,
            ImageRef::Marketplace {
                publisher: "Canonical".into(),
                offer: "ubuntu-24_04-lts".into(),
                sku: "server".into(),
                version: "24.04.202610250".into(),
            }
        );
        assert_eq!(
            revert(&set(change.old, "Manual"), &change.new)
                .split(" --set ")
                .nth(1),
            Some(
                "virtualMachineProfile.storageProfile.imageReference.publisher=Canonical virtualMachineProfile.storageProfile.imageReference.offer=ubuntu-24_04-lts virtualMachineProfile.storageProfile.imageReference.sku=server virtualMachineProfile.storageProfile.imageReference.version=24.04.202610250"
            )
        );
    }

    #[test]
    fn shared_and_community_ids_stay_in_their_own_field() {
        let old = ImageRef::SharedGallery {
            id: "/SharedGalleries/Abc-Pub/Images/web/Versions/1.0.0".into(),
        };
        let change = repoint(
            &set(old, "Manual"),
            "/sharedgalleries/abc-pub/images/web/versions/2.0.0",
        )
        .unwrap();
        assert_eq!(
            change.new,
            ImageRef::SharedGallery {
                id: "/SharedGalleries/Abc-Pub/Images/web/Versions/2.0.0".into()
            }
        );
        let community = golden_ref("/communitygalleries/pub-1/images/web/versions/2.0.0");
        assert!(matches!(community, Some(ImageRef::CommunityGallery { .. })));
        assert!(matches!(
            golden_ref(
                "/subscriptions/s/resourcegroups/rg/providers/microsoft.compute/images/web-1"
            ),
            Some(ImageRef::Managed { .. })
        ));
        assert_eq!(golden_ref("no-colons"), None);
    }

    #[test]
    fn a_change_of_kind_or_an_automatic_policy_cannot_be_done_faithfully() {
        let golden = "canonical:ubuntu-24_04-lts:server:24.04.1";
        let why = repoint(&set(ImageRef::Gallery { id: OLD.into() }, "Manual"), golden)
            .err()
            .unwrap();
        assert!(
            why.contains("by id and the golden one is named by publisher"),
            "{why}"
        );
        for mode in ["Automatic", "Rolling"] {
            let why = repoint(&set(ImageRef::Gallery { id: OLD.into() }, mode), OLD)
                .err()
                .unwrap();
            assert!(why.contains(&format!("upgrade policy is {mode}")), "{why}");
        }
    }

    #[test]
    fn the_revert_command_names_the_old_reference_as_written() {
        let old = ImageRef::Gallery { id: OLD.into() };
        assert_eq!(
            revert(&set(old.clone(), "Manual"), &old),
            format!(
                "az vmss update --subscription s1 --resource-group RG-Web --name web --set virtualMachineProfile.storageProfile.imageReference.id={OLD}"
            )
        );
        assert_eq!(word("it's"), r"'it'\''s'");
    }
}
