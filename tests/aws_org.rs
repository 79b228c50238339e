//! Organization mode against moto's server: an organization of 30 accounts in organizational
//! units (one nested), one suspended, one whose role the fault proxy refuses, instances in two
//! regions on AMIs of one image-factory account; collected and applied by the real binary
//! through roles assumed in each account.
#![cfg(feature = "aws")]

mod common;
mod moto;

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{Filter, InstanceStateName};
use aws_sdk_organizations::types::OrganizationFeatureSet;
use common::env::Env;
use common::report::{configured, source};
use common::{NOW, stderr};
use fleetscope::core::lineage::LineageRules;
use moto::proxy::Proxy;
use moto::{Moto, ami};
use serde_json::Value;

/// The image factory: every AMI the organization runs is its own.
const FACTORY: &str = "210987654321";
const OLD: &str = "ami-0web0000000000002";
const GOLDEN: &str = "ami-0web0000000000003";
const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];

fn start() -> Moto {
    Moto::start(&[
        ami(
            OLD,
            "web-1.1.0-20261001",
            "2026-10-01T00:00:00Z",
            FACTORY,
            &[],
        ),
        ami(
            GOLDEN,
            "web-1.2.0-20261025",
            "2026-10-25T00:00:00Z",
            FACTORY,
            &[],
        ),
    ])
}

struct Org {
    /// Account name -> id, for acct-00 to acct-29.
    ids: BTreeMap<String, String>,
    /// Organizational units by name: platform, payments, data, and data-eu under data.
    units: BTreeMap<&'static str, String>,
    /// Instance id -> the account that runs it.
    instances: BTreeMap<String, String>,
}

impl Org {
    fn id(&self, n: usize) -> &str {
        &self.ids[&name(n)]
    }
}

fn name(n: usize) -> String {
    format!("acct-{n:02}")
}

const SUSPENDED: usize = 7;
const REFUSED: usize = 13;

/// Thirty accounts: 0-9 in platform, 10-19 in payments, 20-24 in data, 25-29 in data-eu (under
/// data). acct-07 is closed (suspended). Every other account runs one instance of the golden
/// image in us-east-1 and one of the older image in eu-west-1.
async fn seed(moto: &Moto) -> Org {
    let organizations = moto.organizations();
    organizations
        .create_organization()
        .feature_set(OrganizationFeatureSet::All)
        .send()
        .await
        .unwrap();
    let roots = organizations.list_roots().send().await.unwrap();
    let root = roots.roots()[0].id().unwrap().to_owned();
    let mut units: BTreeMap<&'static str, String> = BTreeMap::new();
    for (unit, parent) in [
        ("platform", None),
        ("payments", None),
        ("data", None),
        ("data-eu", Some("data")),
    ] {
        let parent = parent.map_or(root.clone(), |p: &str| units[p].clone());
        let created = organizations
            .create_organizational_unit()
            .parent_id(parent)
            .name(unit)
            .send()
            .await
            .unwrap();
        let id = created.organizational_unit().unwrap().id().unwrap();
        units.insert(unit, id.to_owned());
    }
    let mut ids = BTreeMap::new();
    for n in 0..30 {
        let created = organizations
            .create_account()
            .account_name(name(n))
            .email(format!("{}@example.com", name(n)))
            .send()
            .await
            .unwrap();
        let id = created
            .create_account_status()
            .unwrap()
            .account_id()
            .unwrap()
            .to_owned();
        let unit = match n {
            0..10 => "platform",
            10..20 => "payments",
            20..25 => "data",
            _ => "data-eu",
        };
        organizations
            .move_account()
            .account_id(&id)
            .source_parent_id(&root)
            .destination_parent_id(&units[unit])
            .send()
            .await
            .unwrap();
        ids.insert(name(n), id);
    }
    let mut instances = BTreeMap::new();
    for n in (0..30).filter(|n| *n != SUSPENDED) {
        let account = &ids[&name(n)];
        for (region, image) in REGIONS.iter().zip([GOLDEN, OLD]) {
            let ec2 = moto.client_in(account, region).await;
            let id = moto::run(&ec2, image, &format!("web-{n}"), None).await;
            instances.insert(id, account.clone());
        }
    }
    organizations
        .close_account()
        .account_id(&ids[&name(SUSPENDED)])
        .send()
        .await
        .unwrap();
    Org {
        ids,
        units,
        instances,
    }
}

fn config(endpoint: &str, organization: &str) -> String {
    format!(
        "version = 1\n[aws]\nregions = [\"us-east-1\", \"eu-west-1\"]\nendpoint_url = \"{endpoint}\"\ntimeout_secs = 10\n[aws.organization]\nprofile = \"prod\"\n{organization}\n[collect]\nmax_in_flight = 6\n"
    )
}

async fn collect(moto: &Moto, endpoint: &str, organization: &str) -> (std::process::Output, Value) {
    let (output, report) = attempt(moto, endpoint, organization).await;
    let report =
        serde_json::from_slice(&report).unwrap_or_else(|e| panic!("{e}: {}", stderr(&output)));
    (output, report)
}

/// The run's output and its stdout, whatever it holds.
async fn attempt(
    moto: &Moto,
    endpoint: &str,
    organization: &str,
) -> (std::process::Output, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let mut command = configured(
        dir.path(),
        &config(endpoint, organization),
        &["--aws-org", "--report", "--format", "json", "--now", NOW],
    );
    command
        .envs(moto.profile_env(dir.path()))
        .env("FLEETSCOPE_DATA_DIR", dir.path().join("data"));
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let stdout = output.stdout.clone();
    (output, stdout)
}

fn states(report: &Value) -> BTreeMap<String, String> {
    report["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_account_is_collected_through_its_role_and_one_refusal_fails_alone() {
    let moto = start();
    let org = seed(&moto).await;
    let proxy = Proxy::start(moto.port(), Default::default()).await;
    let refused = org.id(REFUSED).to_owned();
    proxy.refuse(
        "AssumeRole",
        &format!("iam%3A%3A{refused}%3Arole"),
        "AccessDenied",
        "User: arn:aws:iam::123456789012:user/fleetscope is not authorized to perform: sts:AssumeRole",
    );

    let (output, report) = collect(&moto, &proxy.url(), "").await;
    // One account failed, so the run says so in its exit code.
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let states = states(&report);
    let refused_source = source(&report, "aws:acct-13");
    assert_eq!(refused_source["state"], "failed");
    assert_eq!(
        refused_source["error"],
        format!(
            "cannot assume OrganizationAccountAccessRole in {refused} (acct-13): access denied"
        )
    );
    let suspended = source(&report, "aws:acct-07");
    assert_eq!(suspended["state"], "skipped", "{suspended:#}");
    assert_eq!(suspended["account"], org.id(SUSPENDED));
    // The management account (moto's default) is collected with its own credentials.
    let done: BTreeSet<&str> = states
        .iter()
        .filter(|(_, state)| *state == "done")
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(done.len(), 29, "{states:#?}");
    assert!(!done.contains("aws:acct-13") && !done.contains("aws:acct-07"));
    for n in (0..30).filter(|n| ![SUSPENDED, REFUSED].contains(n)) {
        let source = source(&report, &format!("aws:{}", name(n)));
        assert_eq!(source["account"], org.id(n));
        assert_eq!(source["instances"], 2);
    }

    // Every instance of every reachable account, each with its account and source.
    let instances = report["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 28 * 2);
    for instance in instances {
        let id = instance["id"].as_str().unwrap();
        let account = &org.instances[id];
        assert_eq!(instance["account"], account.as_str());
        let (name, _) = org.ids.iter().find(|(_, a)| *a == account).unwrap();
        assert_eq!(instance["source"], format!("aws:{name}"));
    }
    // The factory's AMIs, described from 28 accounts, are one image each.
    let images: Vec<&str> = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    assert_eq!(images.iter().filter(|i| **i == GOLDEN).count(), 1);
    assert_eq!(images.iter().filter(|i| **i == OLD).count(), 1);
    // With the accounts that run it: every account reached, one instance each.
    let golden = common::report::find(&report, "images", "key", GOLDEN);
    let accounts: BTreeSet<&str> = golden["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            assert_eq!(a["instances"], 1, "{a}");
            a["account"].as_str().unwrap()
        })
        .collect();
    let reached: BTreeSet<&str> = (0..30)
        .filter(|n| ![SUSPENDED, REFUSED].contains(n))
        .map(|n| org.id(n))
        .collect();
    assert_eq!(accounts, reached);

    // The fewest calls: two pages of ListAccounts for 31 accounts, one AssumeRole per member
    // account reached (none for the suspended one or the management account).
    let calls = proxy.calls();
    assert_eq!(calls["ListAccounts"], 2, "{calls:?}");
    assert_eq!(calls["AssumeRole"], 29, "{calls:?}");
    assert_eq!(calls["DescribeInstances"], 29 * 2, "{calls:?}");
    // Never more calls in flight than collect.max_in_flight.
    let peak = proxy.peak_in_flight();
    assert!((2..=6).contains(&peak), "{peak} in flight");
}

#[tokio::test(flavor = "multi_thread")]
async fn include_and_exclude_choose_accounts_by_id_and_by_unit_nested_units_included() {
    let moto = start();
    let org = seed(&moto).await;
    let choice = format!(
        "include = [\"{}\", \"{}\"]\nexclude = [\"{}\", \"{}\"]",
        org.units["data"],
        org.id(1),
        org.id(21),
        org.units["data-eu"].clone() + "-unknown",
    );
    let (output, _) = attempt(&moto, &moto.url(), &choice).await;
    // An organizational unit that does not exist is a mistake in the config: it fails in a line.
    assert_eq!(output.status.code(), Some(2));
    let unknown = format!("{}-unknown", org.units["data-eu"]);
    assert!(
        stderr(&output).contains(&format!(
            "aws:organization: listing the organization's accounts: organizational unit {unknown} was not found in this organization"
        )),
        "{}",
        stderr(&output)
    );

    let choice = format!(
        "include = [\"{}\", \"{}\"]\nexclude = [\"{}\"]",
        org.units["data"],
        org.id(1),
        org.id(21),
    );
    let (output, report) = collect(&moto, &moto.url(), &choice).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let collected: BTreeSet<String> = states(&report).into_keys().collect();
    let expected: BTreeSet<String> = [1]
        .into_iter()
        .chain((20..30).filter(|n| *n != 21))
        .map(|n| format!("aws:{}", name(n)))
        .collect();
    assert_eq!(collected, expected);

    // Excluding a unit takes everything under it, nested units included.
    let choice = format!("exclude = [\"{}\"]", org.units["data"]);
    let (_, report) = collect(&moto, &moto.url(), &choice).await;
    let collected: BTreeSet<String> = states(&report).into_keys().collect();
    assert_eq!(collected.len(), 31 - 10, "{collected:#?}");
    assert!(collected.contains("aws:acct-19") && !collected.contains("aws:acct-25"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_apply_in_a_member_account_goes_through_that_accounts_role() {
    let moto = start();
    let org = seed(&moto).await;
    let member = org.id(4).to_owned();
    // acct-04 runs the older image in eu-west-1, and here in us-east-1 too: one account, two
    // regions to change.
    let us = moto.client_in(&member, "us-east-1").await;
    let old_in_us = moto::run(&us, OLD, "web-4-old", None).await;
    let eu = moto.client_in(&member, "eu-west-1").await;
    let described = eu
        .describe_instances()
        .filters(Filter::builder().name("image-id").values(OLD).build())
        .send()
        .await
        .unwrap();
    let old_in_eu = described.reservations()[0].instances()[0]
        .instance_id()
        .unwrap()
        .to_owned();
    assert_eq!(org.instances[&old_in_eu], member);

    let proxy = Proxy::start(moto.port(), Default::default()).await;
    let mut env = Env::configured(&config(&proxy.url(), "enabled = true"), |dir| {
        moto.profile_env(dir)
    });
    env.set("FLEETSCOPE_ROLLOUT_POLL_SECS", "1");
    env.lineage = LineageRules {
        tag: Some("lineage".into()),
        name_rules: Vec::new(),
    };
    let queue = env.queue(&[&old_in_eu, &old_in_us]);
    for entry in &queue.entries {
        assert_eq!(entry.account, member);
        assert_eq!(entry.source, "aws:acct-04");
    }
    proxy.reset();

    let out = env.run(&["queue", "apply", "--yes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // In each region the copy runs in the member account, the old one is gone from it.
    for (ec2, old) in [(&eu, &old_in_eu), (&us, &old_in_us)] {
        let copies = ec2
            .describe_instances()
            .filters(
                Filter::builder()
                    .name("tag:fleetscope:replaces")
                    .values(old)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let copy = &copies.reservations()[0].instances()[0];
        assert_eq!(copy.image_id(), Some(GOLDEN));
        let state = ec2
            .describe_instances()
            .instance_ids(old)
            .send()
            .await
            .unwrap();
        let state = state.reservations()[0].instances()[0]
            .state()
            .unwrap()
            .name();
        assert_eq!(state, Some(&InstanceStateName::Terminated));
    }
    // Through that account's role, assumed once for the whole apply whatever its regions.
    let calls = proxy.calls();
    assert_eq!(calls.get("AssumeRole"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("DescribeOrganization"), Some(&1), "{calls:?}");
}
