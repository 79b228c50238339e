//! The facts fleetscope collects: instances, the images they run, and the groups that own them.
//! Plain data, shared by every source, the inventory, snapshots and views.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Text held per instance: up to 24 bytes (ids, names, regions, addresses) sit inside the
/// value instead of in a heap block of their own, which at 100,000 instances of a dozen fields
/// is tens of megabytes, and keeps a column's text next to its row when it is sorted.
pub type Text = compact_str::CompactString;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cloud {
    Aws,
    Azure,
    Gcp,
}

impl Cloud {
    pub const ALL: [Cloud; 3] = [Cloud::Aws, Cloud::Azure, Cloud::Gcp];

    pub fn as_str(self) -> &'static str {
        match self {
            Cloud::Aws => "aws",
            Cloud::Azure => "azure",
            Cloud::Gcp => "gcp",
        }
    }

    pub fn parse(text: &str) -> Option<Cloud> {
        Cloud::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(text))
    }
}

impl fmt::Display for Cloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Tags or labels: a handful per resource, kept as a sorted vector. A `BTreeMap` node costs
/// about 550 bytes even for two tags, which is most of an instance at 100,000 instances.
/// Serialized as a map with sorted keys, exactly as a `BTreeMap` would be.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tags(Vec<(Text, Text)>);

impl Tags {
    pub fn new() -> Tags {
        Tags(Vec::new())
    }

    /// Sets `key` to `value`, replacing any earlier value.
    pub fn insert(&mut self, key: impl Into<Text>, value: impl Into<Text>) {
        let (key, value) = (key.into(), value.into());
        match self.0.binary_search_by(|(k, _)| k.cmp(&key)) {
            Ok(at) => self.0[at].1 = value,
            Err(at) => {
                // Exact growth: resources carry a few tags, and 100,000 spare slots add up.
                self.0.reserve_exact(1);
                self.0.insert(at, (key, value));
            }
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|at| self.0[at].1.as_str())
    }

    /// In key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl<K: Into<Text>, V: Into<Text>> FromIterator<(K, V)> for Tags {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Tags {
        let mut tags = Tags::new();
        for (key, value) in pairs {
            tags.insert(key, value);
        }
        tags
    }
}

impl Serialize for Tags {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Tags {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Tags, D::Error> {
        let map = BTreeMap::<Text, Text>::deserialize(deserializer)?;
        let mut pairs: Vec<(Text, Text)> = map.into_iter().collect();
        pairs.shrink_to_fit();
        Ok(Tags(pairs))
    }
}

/// One server. `image` is the cloud's own identity of the image it was launched from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(expecting = "an instance object")]
pub struct Instance {
    pub id: Text,
    pub cloud: Cloud,
    /// Name of the source that reported it.
    pub source: Text,
    /// AWS account id, Azure subscription or GCP project.
    pub account: Text,
    pub region: Text,
    #[serde(default)]
    pub zone: Text,
    #[serde(default)]
    pub name: Text,
    pub state: Text,
    #[serde(default)]
    pub instance_type: Text,
    pub launched: DateTime<Utc>,
    pub image: Text,
    /// Key of the autoscaling group / scale set / managed instance group, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<Text>,
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
    /// Network exposure findings, such as a security group open to the world on 22.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exposure: Vec<String>,
    /// Where it can be reached: what an incident's alert names.
    #[serde(default, skip_serializing_if = "Addresses::is_empty")]
    pub addresses: Addresses,
}

/// An instance's IP addresses and DNS names, as its cloud reports them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Addresses {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub private_ips: Vec<Text>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub public_ips: Vec<Text>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_names: Vec<Text>,
}

impl Addresses {
    pub fn is_empty(&self) -> bool {
        self.private_ips.is_empty() && self.public_ips.is_empty() && self.dns_names.is_empty()
    }
}

/// How the cloud retires an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Deprecation {
    /// When it is (or was) deprecated: AWS DeprecationTime, Azure end-of-life date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
    /// A state the cloud reports directly: GCP DEPRECATED / OBSOLETE / DELETED / ACTIVE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

impl Deprecation {
    pub fn is_deprecated(&self, now: DateTime<Utc>) -> bool {
        match &self.state {
            Some(state) => matches!(
                state.to_ascii_uppercase().as_str(),
                "DEPRECATED" | "OBSOLETE" | "DELETED"
            ),
            None => self.at.is_some_and(|at| at <= now),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(expecting = "an image object")]
pub struct Image {
    pub key: String,
    pub cloud: Cloud,
    #[serde(default)]
    pub name: String,
    /// Missing when the metadata could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<DateTime<Utc>>,
    #[serde(default)]
    pub owner: String,
    /// The name the cloud gives the owner, where it has one: AWS `ImageOwnerAlias` (`amazon`,
    /// `aws-marketplace`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_alias: Option<String>,
    /// The lineage the cloud itself states: GCP family, Azure gallery image definition,
    /// marketplace `publisher:offer:sku`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecation: Option<Deprecation>,
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
    /// False when the image is deregistered, deleted or not visible to us.
    pub readable: bool,
    /// Why the metadata could not be read, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreadable_reason: Option<String>,
}

impl Image {
    /// An image referenced by an instance whose metadata could not be read.
    pub fn unreadable(key: impl Into<String>, cloud: Cloud, reason: impl Into<String>) -> Image {
        Image {
            key: key.into(),
            cloud,
            name: String::new(),
            created: None,
            owner: String::new(),
            owner_alias: None,
            family: None,
            deprecation: None,
            tags: Tags::new(),
            readable: false,
            unreadable_reason: Some(reason.into()),
        }
    }

    pub fn is_deprecated(&self, now: DateTime<Utc>) -> bool {
        self.deprecation
            .as_ref()
            .is_some_and(|d| d.is_deprecated(now))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupKind {
    /// AWS Auto Scaling group.
    Asg,
    /// Azure virtual machine scale set.
    Vmss,
    /// GCP managed instance group.
    Mig,
}

impl GroupKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupKind::Asg => "asg",
            GroupKind::Vmss => "vmss",
            GroupKind::Mig => "mig",
        }
    }
}

/// A group that launches its members from a template, so replacing a member brings back whatever
/// image the template names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(expecting = "a group object")]
pub struct Group {
    pub key: String,
    pub cloud: Cloud,
    pub kind: GroupKind,
    pub account: String,
    pub region: String,
    pub name: String,
    /// The launch template / scale-set model / instance template, as the cloud names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// The image the template points at; `None` when it could not be resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_image: Option<String>,
}

/// Where collection of one source stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum SourceState {
    /// Known (configured, or found by discovering an organization) but not begun yet.
    Waiting,
    Collecting,
    Done,
    /// Deliberately not collected, such as a suspended account or a project without the
    /// Compute Engine API: not a failure, and it holds nothing.
    Skipped {
        reason: String,
    },
    /// Ended, but part of what it holds was not listed (a region, a zone, scale-set members):
    /// what was collected counts, and the gap is named.
    Incomplete {
        error: String,
    },
    /// Stopped on an error; whatever it sent before counts, the rest is missing.
    Failed {
        error: String,
    },
}

impl SourceState {
    /// True once the source has come to an end, whichever.
    pub fn ended(&self) -> bool {
        !matches!(self, SourceState::Waiting | SourceState::Collecting)
    }

    /// What went wrong, for a source that failed or is incomplete.
    pub fn problem(&self) -> Option<(&'static str, &str)> {
        match self {
            SourceState::Waiting
            | SourceState::Collecting
            | SourceState::Done
            | SourceState::Skipped { .. } => None,
            SourceState::Incomplete { error } => Some(("incomplete", error)),
            SourceState::Failed { error } => Some(("failed", error)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceStatus {
    pub name: String,
    pub cloud: Cloud,
    /// The account (subscription, project) id, when the name is not it: an organization's
    /// accounts are named by their names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(flatten)]
    pub state: SourceState,
    pub pages: u32,
    pub instances: u32,
    /// Total pages expected, when the source can tell in advance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_pages: Option<u32>,
    /// Problems that did not stop the source (one region out of several, say).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_keep_key_order_replace_values_and_serialize_as_a_map() {
        let mut tags = Tags::new();
        tags.insert("zone", "b");
        tags.insert("app", "web");
        tags.insert("zone", "a");
        assert_eq!(tags.len(), 2);
        assert_eq!(tags.get("zone"), Some("a"));
        assert_eq!(tags.get("missing"), None);
        let json = serde_json::to_string(&tags).unwrap();
        assert_eq!(json, r#"{"app":"web","zone":"a"}"#);
        let as_btree: BTreeMap<String, String> = serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::to_string(&as_btree).unwrap(), json);
        let back: Tags = serde_json::from_str(r#"{"zone":"a","app":"web"}"#).unwrap();
        assert_eq!(back, tags);
        assert!(serde_json::from_str::<Tags>(r#"{"a":1}"#).is_err());
    }
}
