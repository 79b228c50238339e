//! What sources send: owned pages of facts, applied to the inventory by whoever owns it.

use super::model::{Cloud, Group, Image, Instance};

#[derive(Debug, Clone, PartialEq)]
pub enum CollectEvent {
    /// A source is known and will be collected when a slot is free (organization discovery
    /// announces every account this way).
    Waiting {
        source: String,
        cloud: Cloud,
        account: Option<String>,
    },
    Started {
        source: String,
        cloud: Cloud,
        expected_pages: Option<u32>,
    },
    Page(Box<Page>),
    /// A problem that did not stop the source, such as one unreachable region.
    Warning {
        source: String,
        message: String,
    },
    Finished {
        source: String,
    },
    /// Ended, but part of the source could not be listed: `error` names what is missing.
    Incomplete {
        source: String,
        error: String,
    },
    Failed {
        source: String,
        error: String,
    },
    /// Not collected on purpose (a suspended account, a project without Compute Engine).
    Skipped {
        source: String,
        cloud: Cloud,
        account: Option<String>,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page {
    pub source: String,
    pub instances: Vec<Instance>,
    pub images: Vec<Image>,
    pub groups: Vec<Group>,
}

impl CollectEvent {
    pub fn source(&self) -> &str {
        match self {
            CollectEvent::Started { source, .. }
            | CollectEvent::Waiting { source, .. }
            | CollectEvent::Skipped { source, .. }
            | CollectEvent::Warning { source, .. }
            | CollectEvent::Finished { source }
            | CollectEvent::Incomplete { source, .. }
            | CollectEvent::Failed { source, .. } => source,
            CollectEvent::Page(page) => &page.source,
        }
    }
}
