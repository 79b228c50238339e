//! The Azure room: settings and client setup shared by the collector (`collect`) and the
//! executor (`replace`, with its template step in `template`). Only `arm` imports the Azure SDK
//! crates; `network` holds the types and rules of what the network resource provider answers.

mod arm;
mod collect;
mod network;
mod replace;
mod template;

use std::sync::Arc;
use std::time::Duration;

use crate::clouds::Deadline;
use crate::config::{Config, MAX_DEADLINE_SECS};

pub use collect::collect;
pub use replace::AzureExecutor;

/// The public cloud's Resource Manager, when `azure.endpoint_url` is empty.
const PUBLIC_ENDPOINT: &str = "https://management.azure.com/";
/// Every subscription the credential can list.
pub const ALL_SUBSCRIPTIONS: &str = "*";

/// What the Azure sources need from the config.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Subscription ids, or `*`.
    pub subscriptions: Vec<String>,
    /// Management group ids: every subscription below them, nested groups included.
    pub management_groups: Vec<String>,
    pub endpoint: String,
    /// OAuth scope of the ARM token.
    pub scope: String,
    pub concurrency: usize,
    /// One call's limit, retries included.
    pub timeout: Duration,
    /// How long one subscription's collection, or one management group's listing, may take
    /// in all.
    pub deadline: Deadline,
    /// Retries of a throttled (429), unavailable or failing (5xx) call.
    pub retries: u32,
}

impl Settings {
    pub fn from_config(config: &Config) -> Settings {
        let azure = &config.azure;
        let endpoint = if azure.endpoint_url.is_empty() {
            PUBLIC_ENDPOINT.to_owned()
        } else if azure.endpoint_url.ends_with('/') {
            azure.endpoint_url.clone()
        } else {
            format!("{}/", azure.endpoint_url)
        };
        let scope = if azure.token_scope.is_empty() {
            format!("{endpoint}.default")
        } else {
            azure.token_scope.clone()
        };
        Settings {
            subscriptions: azure.subscriptions.clone(),
            management_groups: azure.management_groups.clone(),
            endpoint,
            scope,
            concurrency: azure.concurrency.max(1) as usize,
            // Bounded whatever the config says, so no arithmetic on it can overflow.
            timeout: Duration::from_secs(azure.timeout_secs.clamp(1, MAX_DEADLINE_SECS)),
            deadline: Deadline {
                after: Duration::from_secs(azure.deadline_secs.clamp(1, MAX_DEADLINE_SECS)),
                key: "azure.deadline_secs",
            },
            retries: 3,
        }
    }
}

pub fn source_name(subscription: &str) -> String {
    format!("azure:{subscription}")
}

/// The standard credential chain: an environment service principal (`AZURE_TENANT_ID`,
/// `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`, `AZURE_AUTHORITY_HOST`), workload or managed
/// identity, then the Azure CLI; `AZURE_CREDENTIAL_KIND` picks one. One per process, so the
/// token is fetched once and shared by every subscription.
fn client(settings: &Settings) -> Result<arm::Arm, String> {
    let credential = azure_identity::create_credential()
        .map_err(|e| format!("Azure credentials: {}", e.to_string().replace('\n', " ")))?;
    arm::Arm::new(settings, Arc::clone(&credential))
}
