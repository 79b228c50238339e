//! Table-driven verdict rules with a fixed `now`: every rule and every tie.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use fleetscope::core::event::{CollectEvent, Page};
use fleetscope::core::inventory::Inventory;
use fleetscope::core::lineage::{LineageRules, NameRule};
use fleetscope::core::model::{Cloud, Deprecation, Group, GroupKind, Image, Instance, Tags};
use fleetscope::core::policy::{PolicyConfig, TemplateStatus, Verdict, evaluate};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
}

fn days_ago(days: i64) -> DateTime<Utc> {
    now() - Duration::days(days)
}

fn image(key: &str, name: &str, age_days: i64) -> Image {
    Image {
        key: key.into(),
        cloud: Cloud::Aws,
        name: name.into(),
        created: Some(days_ago(age_days)),
        owner: "111".into(),
        owner_alias: None,
        family: None,
        deprecation: None,
        tags: Tags::new(),
        readable: true,
        unreadable_reason: None,
    }
}

fn instance(id: &str, image: &str) -> Instance {
    Instance {
        id: id.into(),
        cloud: Cloud::Aws,
        source: "test".into(),
        account: "111".into(),
        region: "us-east-1".into(),
        zone: "us-east-1a".into(),
        name: id.into(),
        state: "running".into(),
        instance_type: "t3.micro".into(),
        launched: days_ago(1),
        image: image.into(),
        group: None,
        tags: Tags::new(),
        exposure: Vec::new(),
        addresses: Default::default(),
    }
}

fn inventory(images: Vec<Image>, instances: Vec<Instance>, groups: Vec<Group>) -> Inventory {
    let mut inv = Inventory::new(LineageRules {
        tag: Some("lineage".into()),
        name_rules: Vec::new(),
    });
    inv.apply(CollectEvent::Started {
        source: "test".into(),
        cloud: Cloud::Aws,
        expected_pages: Some(1),
    });
    inv.apply(CollectEvent::Page(Box::new(Page {
        source: "test".into(),
        instances,
        images,
        groups,
    })));
    inv.apply(CollectEvent::Finished {
        source: "test".into(),
    });
    inv
}

/// An image of lineage `111/web`, by its lineage tag.
fn web(key: &str, name: &str, age_days: i64) -> Image {
    let mut image = image(key, name, age_days);
    image.tags.insert("lineage", "web");
    image
}

/// A lineage `web` of versions aged 40, 30, 20, 10 and 5 days: v1..v5.
fn web_lineage() -> Vec<Image> {
    [(1, 40), (2, 30), (3, 20), (4, 10), (5, 5)]
        .into_iter()
        .map(|(v, age)| web(&format!("ami-v{v}"), &format!("web-1.{v}.0-2026"), age))
        .collect()
}

struct Case {
    name: &'static str,
    images: Vec<Image>,
    config: PolicyConfig,
    /// Instance on this image key, and what it must get.
    on: &'static str,
    verdict: Verdict,
    behind_by: u32,
    behind_since_days: Option<i64>,
    reason_contains: &'static str,
}

fn with<F: FnOnce(&mut Vec<Image>)>(edit: F) -> Vec<Image> {
    let mut images = web_lineage();
    edit(&mut images);
    images
}

fn find<'a>(images: &'a mut [Image], key: &str) -> &'a mut Image {
    images.iter_mut().find(|i| i.key == key).unwrap()
}

fn config(edit: impl FnOnce(&mut PolicyConfig)) -> PolicyConfig {
    let mut config = PolicyConfig::default();
    edit(&mut config);
    config
}

#[test]
fn verdict_rules() {
    let cases = vec![
        Case {
            name: "newest fresh image is current",
            images: web_lineage(),
            config: PolicyConfig::default(),
            on: "ami-v5",
            verdict: Verdict::Current,
            behind_by: 0,
            behind_since_days: None,
            reason_contains: "",
        },
        Case {
            name: "one version behind, not yet stale",
            images: web_lineage(),
            config: PolicyConfig::default(),
            on: "ami-v4",
            verdict: Verdict::Outdated,
            behind_by: 1,
            behind_since_days: Some(5),
            reason_contains: "1 newer image(s); golden is web-1.5.0-2026",
        },
        Case {
            name: "three behind: behind_since is the oldest newer image",
            images: web_lineage(),
            config: PolicyConfig::default(),
            on: "ami-v2",
            verdict: Verdict::Outdated,
            behind_by: 3,
            behind_since_days: Some(20),
            reason_contains: "image is 30 days old (max 14)",
        },
        Case {
            name: "golden but too old is stale",
            images: with(|i| i.truncate(3)),
            config: PolicyConfig::default(),
            on: "ami-v3",
            verdict: Verdict::Stale,
            behind_by: 0,
            behind_since_days: None,
            reason_contains: "image is 20 days old (max 14)",
        },
        Case {
            name: "exactly max age is not stale",
            images: vec![web("ami-x", "x-1", 14)],
            config: PolicyConfig::default(),
            on: "ami-x",
            verdict: Verdict::Current,
            behind_by: 0,
            behind_since_days: None,
            reason_contains: "",
        },
        Case {
            name: "max age from config",
            images: with(|i| i.truncate(4)),
            config: config(|c| c.max_image_age_days = 7),
            on: "ami-v4",
            verdict: Verdict::Stale,
            behind_by: 0,
            behind_since_days: None,
            reason_contains: "max 7",
        },
        Case {
            name: "AWS deprecation in the past flags",
            images: with(|i| {
                find(i, "ami-v3").deprecation = Some(Deprecation {
                    at: Some(days_ago(1)),
                    state: None,
                })
            }),
            config: PolicyConfig::default(),
            on: "ami-v3",
            verdict: Verdict::Flagged,
            behind_by: 2,
            behind_since_days: Some(10),
            reason_contains: "deprecated by aws since 2026-10-31",
        },
        Case {
            name: "deprecation in the future does not flag",
            images: with(|i| {
                find(i, "ami-v5").deprecation = Some(Deprecation {
                    at: Some(now() + Duration::days(1)),
                    state: None,
                })
            }),
            config: PolicyConfig::default(),
            on: "ami-v5",
            verdict: Verdict::Current,
            behind_by: 0,
            behind_since_days: None,
            reason_contains: "",
        },
        Case {
            name: "GCP OBSOLETE state flags",
            images: with(|i| {
                find(i, "ami-v5").deprecation = Some(Deprecation {
                    at: None,
                    state: Some("OBSOLETE".into()),
                })
            }),
            config: PolicyConfig::default(),
            on: "ami-v5",
            verdict: Verdict::Flagged,
            behind_by: 0,
            behind_since_days: None,
            reason_contains: "(OBSOLETE)",
        },
        Case {
            name: "GCP ACTIVE state does not flag, even with a past time",
            images: with(|i| {
                find(i, "ami-v5").deprecation = Some(Deprecation {
                    at: Some(days_ago(3)),
                    state: Some("ACTIVE".into()),
                })
            }),
            config: PolicyConfig::default(),
            on: "ami-v5",
            verdict: Verdict::Current,
            behind_by: 0,
            behind_since_days: None,
            reason_contains: "",
        },
        Case {
            name: "scanner tag flags",
            images: with(|i| {
                find(i, "ami-v5").tags.insert("vulnerable", "CVE-2026-0001");
            }),
            config: PolicyConfig::default(),
            on: "ami-v5",
            verdict: Verdict::Flagged,
            behind_by: 0,
            behind_since_days: None,
            reason_contains: "tagged vulnerable=CVE-2026-0001",
        },
        Case {
            name: "key=value rule needs the value",
            images: with(|i| {
                find(i, "ami-v5").tags.insert("scan", "clean");
            }),
            config: config(|c| c.flag_tags = vec!["scan=bad".into()]),
            on: "ami-v5",
            verdict: Verdict::Current,
            behind_by: 0,
            behind_since_days: None,
            reason_contains: "",
        },
        Case {
            name: "flagged newest image: the previous one is golden and current",
            images: with(|i| {
                find(i, "ami-v5").tags.insert("vulnerable", "true");
                i.retain(|i| i.key != "ami-v1");
                for image in i.iter_mut() {
                    if let Some(c) = image.created.as_mut() {
                        *c += Duration::days(1);
                    }
                }
            }),
            config: PolicyConfig::default(),
            on: "ami-v4",
            verdict: Verdict::Current,
            behind_by: 0,
            behind_since_days: None,
            reason_contains: "",
        },
        Case {
            name: "deprecated newest candidate is skipped for golden",
            images: with(|i| {
                find(i, "ami-v5").deprecation = Some(Deprecation {
                    at: Some(days_ago(1)),
                    state: None,
                })
            }),
            config: PolicyConfig::default(),
            on: "ami-v3",
            verdict: Verdict::Outdated,
            behind_by: 1,
            behind_since_days: Some(10),
            reason_contains: "golden is web-1.4.0-2026",
        },
        Case {
            name: "pinned older golden: newer image is outdated",
            images: web_lineage(),
            config: config(|c| {
                c.golden.insert("111/web".into(), "ami-v4".into());
            }),
            on: "ami-v5",
            verdict: Verdict::Outdated,
            behind_by: 0,
            behind_since_days: None,
            reason_contains: "not the pinned golden image web-1.4.0-2026",
        },
        Case {
            name: "pinned golden itself is current",
            images: with(|i| i.retain(|i| i.key != "ami-v1")),
            config: config(|c| {
                c.golden.insert("111/web".into(), "ami-v5".into());
            }),
            on: "ami-v5",
            verdict: Verdict::Current,
            behind_by: 0,
            behind_since_days: None,
            reason_contains: "",
        },
        Case {
            name: "flagged by config list",
            images: web_lineage(),
            config: config(|c| c.flagged_images = vec!["ami-v5".into()]),
            on: "ami-v5",
            verdict: Verdict::Flagged,
            behind_by: 0,
            behind_since_days: None,
            reason_contains: "listed in policy.flagged_images",
        },
        Case {
            name: "listed in config beats unknown",
            images: vec![Image::unreadable(
                "ami-gone",
                Cloud::Aws,
                "InvalidAMIID.NotFound",
            )],
            config: config(|c| c.flagged_images = vec!["ami-gone".into()]),
            on: "ami-gone",
            verdict: Verdict::Flagged,
            behind_by: 0,
            behind_since_days: None,
            reason_contains: "image unknown: InvalidAMIID.NotFound",
        },
        Case {
            name: "deregistered image is unknown",
            images: vec![Image::unreadable(
                "ami-gone",
                Cloud::Aws,
                "InvalidAMIID.NotFound",
            )],
            config: PolicyConfig::default(),
            on: "ami-gone",
            verdict: Verdict::Unknown,
            behind_by: 0,
            behind_since_days: None,
            reason_contains: "InvalidAMIID.NotFound",
        },
        Case {
            name: "image never described is unknown",
            images: Vec::new(),
            config: PolicyConfig::default(),
            on: "ami-missing",
            verdict: Verdict::Unknown,
            behind_by: 0,
            behind_since_days: None,
            reason_contains: "not described by its source",
        },
        Case {
            name: "equal creation times are peers, not successors",
            images: vec![web("ami-a", "web-a", 3), web("ami-b", "web-b", 3)],
            config: PolicyConfig::default(),
            on: "ami-a",
            verdict: Verdict::Current,
            behind_by: 0,
            behind_since_days: None,
            reason_contains: "",
        },
        Case {
            name: "equal creation time peer is not counted as newer",
            images: vec![
                web("ami-a", "web-a", 9),
                web("ami-b", "web-b", 9),
                web("ami-c", "web-c", 2),
            ],
            config: PolicyConfig::default(),
            on: "ami-b",
            verdict: Verdict::Outdated,
            behind_by: 1,
            behind_since_days: Some(2),
            reason_contains: "golden is web-c",
        },
        Case {
            name: "every version flagged: no golden, never outdated",
            images: with(|i| {
                for image in i.iter_mut() {
                    image.tags.insert("vulnerable", "yes");
                }
            }),
            config: PolicyConfig::default(),
            on: "ami-v2",
            verdict: Verdict::Flagged,
            behind_by: 0,
            behind_since_days: None,
            reason_contains: "tagged vulnerable=yes",
        },
        Case {
            name: "pinned image missing from the lineage falls back to the newest",
            images: web_lineage(),
            config: config(|c| {
                c.golden.insert("111/web".into(), "ami-elsewhere".into());
            }),
            on: "ami-v4",
            verdict: Verdict::Outdated,
            behind_by: 1,
            behind_since_days: Some(5),
            reason_contains: "golden is web-1.5.0-2026",
        },
    ];
    for case in cases {
        let inv = inventory(case.images, vec![instance("i-1", case.on)], Vec::new());
        let eval = evaluate(&inv, &case.config, now());
        let image = eval.image_eval_of(&inv, 0);
        assert_eq!(
            image.verdict, case.verdict,
            "{}: {:?}",
            case.name, image.reasons
        );
        assert_eq!(eval.verdict_of(&inv, 0), case.verdict, "{}", case.name);
        assert_eq!(image.behind_by, case.behind_by, "{}: behind_by", case.name);
        assert_eq!(
            image.behind_since,
            case.behind_since_days.map(days_ago),
            "{}: behind_since",
            case.name
        );
        let reasons = image.reasons.join("; ");
        if case.reason_contains.is_empty() {
            assert!(
                reasons.is_empty(),
                "{}: unexpected reasons {reasons}",
                case.name
            );
        } else {
            assert!(
                reasons.contains(case.reason_contains),
                "{}: {reasons}",
                case.name
            );
        }
        assert_eq!(eval.total.get(case.verdict), 1, "{}: counts", case.name);
    }
}

#[test]
fn lineage_warnings_explain_missing_golden() {
    let mut config = PolicyConfig::default();
    config
        .golden
        .insert("111/web".into(), "ami-elsewhere".into());
    let inv = inventory(web_lineage(), vec![instance("i-1", "ami-v5")], Vec::new());
    let eval = evaluate(&inv, &config, now());
    let lineage = inv.lineage_by_name("111/web").unwrap();
    let warning = eval.lineage_eval(lineage).warning.clone().unwrap();
    assert!(warning.contains("ami-elsewhere"), "{warning}");

    let flagged = with(|i| {
        for image in i.iter_mut() {
            image.deprecation = Some(Deprecation {
                at: Some(days_ago(1)),
                state: None,
            });
        }
    });
    let inv = inventory(flagged, vec![instance("i-1", "ami-v5")], Vec::new());
    let eval = evaluate(&inv, &PolicyConfig::default(), now());
    let lineage = eval.lineage_eval(inv.lineage_by_name("111/web").unwrap());
    assert_eq!(lineage.golden, None);
    assert!(
        lineage
            .warning
            .as_deref()
            .unwrap()
            .contains("no golden image")
    );
}

#[test]
fn long_lived_instances() {
    let mut old = instance("i-old", "ami-v5");
    old.launched = days_ago(31);
    let mut young = instance("i-young", "ami-v5");
    young.launched = days_ago(29);
    let inv = inventory(web_lineage(), vec![old, young], Vec::new());
    let eval = evaluate(&inv, &PolicyConfig::default(), now());
    assert!(eval.long_lived[inv.instance_by_id("i-old").unwrap() as usize]);
    assert!(!eval.long_lived[inv.instance_by_id("i-young").unwrap() as usize]);
    assert_eq!(eval.total.long_lived, 1);
    let config = PolicyConfig {
        max_instance_age_days: 60,
        ..PolicyConfig::default()
    };
    assert_eq!(evaluate(&inv, &config, now()).total.long_lived, 0);
}

fn group(key: &str, template_image: Option<&str>) -> Group {
    Group {
        key: key.into(),
        cloud: Cloud::Aws,
        kind: GroupKind::Asg,
        account: "111".into(),
        region: "us-east-1".into(),
        name: key.into(),
        template: Some("lt-1 v1".into()),
        template_image: template_image.map(Into::into),
    }
}

fn member(id: &str, image: &str, group: &str) -> Instance {
    let mut i = instance(id, image);
    i.group = Some(group.into());
    i
}

#[test]
fn group_skew_and_template_drift() {
    let groups = vec![
        group("golden", Some("ami-v5")),
        group("drift", Some("ami-v3")),
        group("unresolved", None),
        // The template names an image nobody runs and nobody described: judged by its members.
        group("drift-unknown-image", Some("ami-zzz")),
    ];
    let instances = vec![
        member("a1", "ami-v5", "golden"),
        member("a2", "ami-v4", "golden"),
        member("b1", "ami-v3", "drift"),
        member("b2", "ami-v3", "drift"),
        member("c1", "ami-v5", "unresolved"),
        member("d1", "ami-v5", "drift-unknown-image"),
    ];
    let inv = inventory(web_lineage(), instances, groups);
    let eval = evaluate(&inv, &PolicyConfig::default(), now());
    let by_key = |key: &str| {
        let idx = inv.groups().iter().position(|g| g.key == key).unwrap();
        eval.group_eval(idx as u32).clone()
    };
    let golden = by_key("golden");
    assert!(golden.skew());
    assert_eq!(golden.template, TemplateStatus::Golden);
    let drift = by_key("drift");
    assert!(!drift.skew());
    assert_eq!(
        drift.template,
        TemplateStatus::Drift {
            points_at: "ami-v3".into(),
            golden: Some("ami-v5".into())
        }
    );
    assert_eq!(by_key("unresolved").template, TemplateStatus::Unresolved);
    assert_eq!(
        by_key("drift-unknown-image").template,
        TemplateStatus::Drift {
            points_at: "ami-zzz".into(),
            golden: Some("ami-v5".into())
        }
    );
}

#[test]
fn lineage_evidence_order_and_owner_scope() {
    let rules = LineageRules {
        tag: Some("lineage".into()),
        name_rules: vec![NameRule {
            pattern: regex::Regex::new(r"^(?P<app>[a-z]+)-golden-").unwrap(),
            lineage: "$app".into(),
        }],
    };
    let mut tagged = image("ami-1", "api-golden-7", 1);
    tagged.tags.insert("lineage", "platform");
    tagged.family = Some("ignored-family".into());
    let mut family = image("ami-2", "api-golden-7", 1);
    family.family = Some("proj/api".into());
    let ruled = image("ami-3", "api-golden-7", 1);
    let stripped = image("ami-4", "api-2026.01.02-x86_64", 1);
    let mut other_owner = stripped.clone();
    other_owner.owner = "222".into();
    let unreadable = Image::unreadable("ami-5", Cloud::Aws, "gone");
    let cases = [
        (tagged, Some("111/platform")),
        (family, Some("proj/api")),
        (ruled, Some("111/api")),
        (stripped, Some("111/api-*-x86_64")),
        (other_owner, Some("222/api-*-x86_64")),
        (unreadable, None),
    ];
    for (image, want) in cases {
        assert_eq!(rules.lineage_of(&image).as_deref(), want, "{}", image.key);
    }
}

#[test]
fn verdicts_do_not_depend_on_arrival_order() {
    let images = web_lineage();
    let instances: Vec<Instance> = ["ami-v1", "ami-v2", "ami-v3", "ami-v4", "ami-v5"]
        .iter()
        .enumerate()
        .map(|(n, key)| instance(&format!("i-{n}"), key))
        .collect();
    let forward = inventory(images.clone(), instances.clone(), Vec::new());
    let mut reversed_images = images;
    reversed_images.reverse();
    let mut reversed_instances = instances;
    reversed_instances.reverse();
    let backward = inventory(reversed_images, reversed_instances, Vec::new());
    let verdicts = |inv: &Inventory| -> BTreeMap<String, (Verdict, u32)> {
        let eval = evaluate(inv, &PolicyConfig::default(), now());
        (0..inv.instances().len() as u32)
            .map(|i| {
                let e = eval.image_eval_of(inv, i);
                (inv.instance(i).id.to_string(), (e.verdict, e.behind_by))
            })
            .collect()
    };
    assert_eq!(verdicts(&forward), verdicts(&backward));
}

#[test]
fn an_image_described_after_its_instances_replaces_the_placeholder() {
    let mut inv = Inventory::new(LineageRules::default());
    inv.upsert_instance(instance("i-1", "ami-v5"));
    let eval = evaluate(&inv, &PolicyConfig::default(), now());
    assert_eq!(eval.verdict_of(&inv, 0), Verdict::Unknown);
    inv.upsert_image(image("ami-v5", "web-1.5.0-2026", 5));
    let eval = evaluate(&inv, &PolicyConfig::default(), now());
    assert_eq!(eval.verdict_of(&inv, 0), Verdict::Current);
    // The same instance moving to another image leaves the old image empty.
    inv.upsert_image(image("ami-v6", "web-1.6.0-2026", 1));
    inv.upsert_instance(instance("i-1", "ami-v6"));
    assert_eq!(inv.instances().len(), 1);
    assert!(
        inv.image(inv.image_by_key("ami-v5").unwrap())
            .instances
            .is_empty()
    );
}

#[test]
fn a_failed_source_keeps_the_others() {
    let mut inv = inventory(web_lineage(), vec![instance("i-1", "ami-v5")], Vec::new());
    inv.apply(CollectEvent::Started {
        source: "broken".into(),
        cloud: Cloud::Gcp,
        expected_pages: None,
    });
    inv.apply(CollectEvent::Failed {
        source: "broken".into(),
        error: "403 Forbidden".into(),
    });
    assert_eq!(inv.instances().len(), 1);
    assert!(inv.collection_done());
    let broken = inv.sources().iter().find(|s| s.name == "broken").unwrap();
    assert_eq!(
        broken.state,
        fleetscope::core::model::SourceState::Failed {
            error: "403 Forbidden".into()
        }
    );
}

#[test]
fn an_incomplete_source_is_named_in_every_report() {
    use fleetscope::views::report::{Format, ReportInput, write};
    let mut inv = inventory(web_lineage(), vec![instance("i-1", "ami-v5")], Vec::new());
    inv.apply(CollectEvent::Started {
        source: "aws:prod".into(),
        cloud: Cloud::Aws,
        expected_pages: None,
    });
    inv.apply(CollectEvent::Incomplete {
        source: "aws:prod".into(),
        error: "eu-west-1: DescribeInstances: timed out".into(),
    });
    assert!(inv.collection_done());
    let eval = evaluate(&inv, &PolicyConfig::default(), now());
    let input = ReportInput {
        inventory: &inv,
        eval: &eval,
        policy: &PolicyConfig::default(),
        limit: None,
        filter: None,
    };
    let mut md = Vec::new();
    write(Format::Md, &input, &mut md).unwrap();
    let md = String::from_utf8(md).unwrap();
    assert!(md.contains(" sources (0 failed, 1 incomplete)"), "{md}");
    assert!(
        md.contains(
            "| aws:prod | aws | **incomplete** | 0 | 0 | eu-west-1: DescribeInstances: timed out |"
        ),
        "{md}"
    );
    let mut json = Vec::new();
    write(Format::Json, &input, &mut json).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(json["summary"]["incomplete_sources"], 1);
    assert_eq!(json["sources"][0]["state"], "incomplete");
    assert_eq!(
        json["sources"][0]["error"],
        "eu-west-1: DescribeInstances: timed out"
    );
}

/// Azure marketplace versions without a date token: no age, yet drift still applies by
/// version order (`1.0.10` is newer than `1.0.9`), and the reasons say the age is unknown.
#[test]
fn undated_versions_drift_by_version_order_and_say_their_age_is_unknown() {
    let undated = |version: &str| {
        let mut image = image(
            &format!("pub:offer:sku:{version}"),
            &format!("pub:offer:sku:{version}"),
            0,
        );
        image.cloud = Cloud::Azure;
        image.created = None;
        image.family = Some("pub:offer:sku".into());
        image
    };
    let images = vec![undated("1.0.10"), undated("1.0.9"), undated("1.0.8")];
    let instances = vec![
        instance("old", "pub:offer:sku:1.0.8"),
        instance("new", "pub:offer:sku:1.0.10"),
    ];
    let inv = inventory(images, instances, Vec::new());
    let eval = evaluate(&inv, &PolicyConfig::default(), now());
    let of = |key: &str| &eval.images[inv.image_by_key(key).unwrap() as usize];
    let old = of("pub:offer:sku:1.0.8");
    assert_eq!(old.verdict, Verdict::Outdated, "{:?}", old.reasons);
    assert_eq!(old.behind_by, 2);
    assert_eq!(old.behind_since, None);
    assert!(old.age_days.is_none());
    assert!(
        old.reasons.iter().any(|r| r.contains("age unknown")),
        "{:?}",
        old.reasons
    );
    let new = of("pub:offer:sku:1.0.10");
    assert_eq!(new.verdict, Verdict::Current, "{:?}", new.reasons);
    assert!(new.reasons.iter().any(|r| r.contains("age unknown")));
}

#[test]
fn duplicate_instance_ids_are_counted_once_and_reported() {
    let images = vec![image("ami-1", "web-1", 3)];
    let instances = vec![
        instance("i-1", "ami-1"),
        instance("i-2", "ami-1"),
        instance("i-1", "ami-1"),
        instance("i-2", "ami-1"),
        instance("i-3", "ami-1"),
    ];
    let inv = inventory(images, instances, Vec::new());
    assert_eq!(inv.instances().len(), 3);
    let source = &inv.sources()[0];
    assert_eq!(
        source.instances, 3,
        "the source counts what the fleet holds"
    );
    assert_eq!(
        source.warnings,
        ["2 instances were reported again under an id already seen: counted once"]
    );
    let clean = inventory(
        vec![image("ami-1", "web-1", 3)],
        vec![instance("i-1", "ami-1")],
        Vec::new(),
    );
    assert!(clean.sources()[0].warnings.is_empty());
}

/// Images from three owners, each with one instance, judged with `trusted_owners`: the ids of
/// the instances that carry the finding untrusted-source, and that no verdict moved.
fn untrusted_with(images: Vec<Image>, trusted: &[&str]) -> Vec<String> {
    let instances: Vec<Instance> = images
        .iter()
        .enumerate()
        .map(|(n, image)| {
            let mut i = instance(&format!("i-{n}"), &image.key);
            i.cloud = image.cloud;
            i
        })
        .collect();
    let inv = inventory(images, instances, Vec::new());
    let config = PolicyConfig {
        trusted_owners: trusted.iter().map(|s| s.to_string()).collect(),
        ..PolicyConfig::default()
    };
    let eval = evaluate(&inv, &config, now());
    let unset = evaluate(&inv, &PolicyConfig::default(), now());
    for (a, b) in eval.images.iter().zip(&unset.images) {
        assert_eq!((a.verdict, &a.reasons), (b.verdict, &b.reasons));
    }
    (0..inv.instances().len() as u32)
        .filter(|&i| eval.image_eval_of(&inv, i).untrusted_source)
        .map(|i| inv.instance(i).id.to_string())
        .collect()
}

fn estate_images() -> Vec<Image> {
    let ours = image("ami-ours", "web-1", 1);
    let mut amazon = image("ami-al2023", "al2023-ami-2026", 1);
    amazon.owner = "137112412989".into();
    amazon.owner_alias = Some("amazon".into());
    let mut stranger = image("ami-community", "cheap-nginx", 1);
    stranger.owner = "424242424242".into();
    let mut gallery = image(
        "/subscriptions/s1/resourcegroups/rg/providers/microsoft.compute/galleries/golden/images/web/versions/1.0.0",
        "web 1.0.0",
        1,
    );
    gallery.cloud = Cloud::Azure;
    gallery.owner = "s1".into();
    let mut canonical = image("canonical:ubuntu:22_04-lts:22.04.202610010", "ubuntu", 1);
    canonical.cloud = Cloud::Azure;
    canonical.owner = "canonical".into();
    let mut debian = image(
        "projects/debian-cloud/global/images/debian-12",
        "debian-12",
        1,
    );
    debian.cloud = Cloud::Gcp;
    debian.owner = "debian-cloud".into();
    let mut own_project = image("projects/acme-images/global/images/web-1", "web-1", 1);
    own_project.cloud = Cloud::Gcp;
    own_project.owner = "acme-images".into();
    vec![
        ours,
        amazon,
        stranger,
        gallery,
        canonical,
        debian,
        own_project,
    ]
}

#[test]
fn trusted_owners_unset_finds_nothing_untrusted() {
    assert!(untrusted_with(estate_images(), &[]).is_empty());
}

#[test]
fn trusted_owners_match_account_alias_gallery_publisher_and_project() {
    let trusted = [
        "111",
        "amazon",
        // A gallery's resource id, in another case than the key: every version inside it.
        "/subscriptions/S1/resourceGroups/rg/providers/Microsoft.Compute/galleries/golden",
        "Canonical",
        "acme-images",
    ];
    // The community AMI's owner and Debian's project are named nowhere.
    assert_eq!(untrusted_with(estate_images(), &trusted), ["i-2", "i-5"]);
}

#[test]
fn trusted_owners_match_whole_owners_not_prefixes() {
    // `acme` is not `acme-images`; a gallery id is not a gallery whose name starts with it;
    // an account id's alias is only trusted by its alias.
    let trusted = [
        "acme",
        "/subscriptions/s1/resourcegroups/rg/providers/microsoft.compute/galleries/gold",
        "aws-marketplace",
        "11",
    ];
    assert_eq!(
        untrusted_with(estate_images(), &trusted),
        ["i-0", "i-1", "i-2", "i-3", "i-4", "i-5", "i-6"]
    );
}

#[test]
fn an_unreadable_image_is_unknown_not_untrusted() {
    let gone = Image::unreadable("ami-gone", Cloud::Aws, "InvalidAMIID.NotFound");
    assert!(untrusted_with(vec![gone], &["111"]).is_empty());
}

/// A page of one source, as its collector sends it.
fn page_of(source: &str, images: Vec<Image>, instances: Vec<Instance>) -> CollectEvent {
    CollectEvent::Page(Box::new(Page {
        source: source.into(),
        instances,
        images,
        groups: Vec::new(),
    }))
}

/// `count` instances in `account` on `image`, reported by `source`.
fn instances_in(source: &str, account: &str, image: &str, count: usize) -> Vec<Instance> {
    (0..count)
        .map(|n| Instance {
            source: source.into(),
            account: account.into(),
            ..instance(&format!("i-{account}-{image}-{n}"), image)
        })
        .collect()
}

/// An AMI from an image factory, run in three member accounts: the factory's source reads it
/// whole (with its lineage tag), a member it is shared with reads it without the owner's tags,
/// and one it is not shared with only knows it as unreadable. Whatever order the sources
/// answer in, it is one readable image of its lineage with every instance on it.
#[test]
fn an_image_shared_into_many_accounts_is_one_described_image_whatever_the_order() {
    let shared = web("ami-shared", "web-1.5.0-2026", 5);
    let mut untagged = shared.clone();
    untagged.tags = Tags::new();
    let unreadable = Image::unreadable(
        "ami-shared",
        Cloud::Aws,
        "InvalidAMIID.NotFound: not shared with 333333333333",
    );
    let pages = [
        page_of(
            "aws:factory",
            vec![shared.clone()],
            instances_in("aws:factory", "111111111111", "ami-shared", 2),
        ),
        page_of(
            "aws:member-a",
            vec![untagged],
            instances_in("aws:member-a", "222222222222", "ami-shared", 5),
        ),
        page_of(
            "aws:member-b",
            vec![unreadable],
            instances_in("aws:member-b", "333333333333", "ami-shared", 3),
        ),
    ];
    // Every order of the three sources.
    let orders = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    for order in orders {
        let mut inv = Inventory::new(LineageRules {
            tag: Some("lineage".into()),
            name_rules: Vec::new(),
        });
        for &n in &order {
            inv.apply(pages[n].clone());
        }
        assert_eq!(inv.images().len(), 1, "{order:?}");
        let idx = inv.image_by_key("ami-shared").unwrap();
        let entry = inv.image(idx);
        assert!(entry.described && entry.image.readable, "{order:?}");
        assert_eq!(entry.image, shared, "{order:?}: the owner's description");
        assert_eq!(entry.instances.len(), 10, "{order:?}");
        assert_eq!(
            entry.lineage.map(|l| inv.lineage(l).name.as_str()),
            Some("111/web"),
            "{order:?}"
        );
        let eval = evaluate(&inv, &PolicyConfig::default(), now());
        assert_eq!(eval.images[idx as usize].verdict, Verdict::Current);
        let accounts = fleetscope::core::inventory::ImageAccounts::of(&inv);
        assert_eq!(accounts.count(idx), 3);
        assert_eq!(
            accounts.of_image(idx).collect::<Vec<_>>(),
            [
                ("222222222222", 5),
                ("333333333333", 3),
                ("111111111111", 2)
            ],
            "{order:?}"
        );
    }
    // Unreadable wherever it is asked: the first reason given stays.
    let mut inv = Inventory::new(LineageRules::default());
    let lost = |reason: &str| Image::unreadable("ami-gone", Cloud::Aws, reason);
    inv.apply(page_of("a", vec![lost("deregistered")], Vec::new()));
    inv.apply(page_of("b", vec![lost("not shared")], Vec::new()));
    let entry = inv.image(inv.image_by_key("ami-gone").unwrap());
    assert!(!entry.image.readable);
    assert_eq!(
        entry.image.unreadable_reason.as_deref(),
        Some("deregistered")
    );
}

/// The JSON report lists, per image, the accounts that run it: most instances first, then by
/// id; an image nobody runs has none.
#[test]
fn the_json_report_lists_the_accounts_running_each_image() {
    use fleetscope::views::report::{Format, ReportInput, write};
    let mut inv = Inventory::new(LineageRules::default());
    let mut instances = instances_in("aws:b", "222222222222", "ami-v5", 2);
    instances.extend(instances_in("aws:c", "333333333333", "ami-v5", 4));
    instances.extend(instances_in("aws:a", "111111111111", "ami-v5", 2));
    instances.extend(instances_in("aws:a", "111111111111", "ami-v4", 1));
    inv.apply(page_of("aws:a", web_lineage(), instances));
    let eval = evaluate(&inv, &PolicyConfig::default(), now());
    let input = ReportInput {
        inventory: &inv,
        eval: &eval,
        policy: &PolicyConfig::default(),
        limit: None,
        filter: None,
    };
    let mut json = Vec::new();
    write(Format::Json, &input, &mut json).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let image = |key: &str| {
        json["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["key"] == key)
            .unwrap()
            .clone()
    };
    assert_eq!(
        image("ami-v5")["accounts"],
        serde_json::json!([
            {"account": "333333333333", "instances": 4},
            {"account": "111111111111", "instances": 2},
            {"account": "222222222222", "instances": 2},
        ])
    );
    assert_eq!(image("ami-v5")["instance_count"], 8);
    assert_eq!(
        image("ami-v4")["accounts"],
        serde_json::json!([{"account": "111111111111", "instances": 1}])
    );
    assert_eq!(image("ami-v1")["accounts"], serde_json::json!([]));
    // It still loads as a snapshot.
    let bytes = serde_json::to_vec(&json).unwrap();
    let loaded = fleetscope::snapshot::parse(&bytes)
        .unwrap()
        .into_inventory(LineageRules::default());
    assert_eq!(loaded.images().len(), inv.images().len());
}
