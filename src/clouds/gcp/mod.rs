//! The Google Cloud room: settings and client setup shared by the collector (`collect`, with
//! `discover` for the projects under folders and organizations) and the executor (`replace`,
//! and `template` for its template steps). The only place that imports the Google Cloud SDK.

mod collect;
mod discover;
mod replace;
mod template;

use std::time::Duration;

use google_cloud_compute_v1::client::{
    Disks, Firewalls, Images, InstanceGroupManagers, InstanceTemplates, Instances,
    RegionInstanceGroupManagers, RegionInstanceTemplates,
};
use google_cloud_gax::error::Error;
use google_cloud_gax::exponential_backoff::ExponentialBackoffBuilder;
use google_cloud_gax::retry_policy::{RetryPolicy, RetryPolicyExt};
use google_cloud_gax::retry_result::RetryResult;
use google_cloud_gax::retry_state::RetryState;
use google_cloud_resourcemanager_v3::client::{Folders, Projects};

use crate::clouds::Deadline;
use crate::config::{Config, MAX_DEADLINE_SECS};

pub use collect::collect;
pub use replace::GcpExecutor;

/// What the Google Cloud sources need from the config.
#[derive(Debug, Clone)]
pub struct Settings {
    pub projects: Vec<String>,
    /// Folders and organizations (`folders/123`, `organizations/456`): every ACTIVE project
    /// under them is collected too.
    pub scopes: Vec<String>,
    /// `None`: Google's own endpoint.
    pub endpoint_url: Option<String>,
    /// Resource Manager's; `None`: Google's own.
    pub resource_manager_url: Option<String>,
    pub concurrency: usize,
    pub timeout: Duration,
    /// How long one project's collection may take in all.
    pub deadline: Deadline,
}

impl Settings {
    pub fn from_config(config: &Config) -> Settings {
        let gcp = &config.gcp;
        Settings {
            projects: gcp.projects.clone(),
            scopes: gcp.scopes(),
            endpoint_url: endpoint(&gcp.endpoint_url),
            resource_manager_url: endpoint(&gcp.resource_manager_endpoint_url),
            concurrency: gcp.concurrency.max(1) as usize,
            // Bounded whatever the config says, so no arithmetic on it can overflow.
            timeout: Duration::from_secs(gcp.timeout_secs.clamp(1, MAX_DEADLINE_SECS)),
            deadline: Deadline {
                after: Duration::from_secs(gcp.deadline_secs.clamp(1, MAX_DEADLINE_SECS)),
                key: "gcp.deadline_secs",
            },
        }
    }
}

fn endpoint(url: &str) -> Option<String> {
    Some(url.trim().trim_end_matches('/').to_owned()).filter(|u| !u.is_empty())
}

/// `gcp:<project id>`, and `gcp:folders/123` for a folder's walk.
pub fn source_name(project: &str) -> String {
    format!("gcp:{project}")
}

/// Application default credentials (`GOOGLE_APPLICATION_CREDENTIALS`, gcloud's
/// application-default login, the metadata server), looked up once and shared by every client:
/// each would otherwise fetch its own token.
pub(crate) fn credentials() -> Result<Credentials, String> {
    google_cloud_auth::credentials::Builder::default()
        .build()
        .map_err(|e| format!("application default credentials: {}", one_line(&e)))
}

pub(crate) type Credentials = google_cloud_auth::credentials::Credentials;

/// A client of any Google Cloud service with the shared credentials, bounded retries, a timeout
/// per call, and `endpoint` instead of Google's own when given.
macro_rules! client {
    ($client:ty, $credentials:expr, $settings:expr, $endpoint:expr) => {{
        let mut builder = <$client>::builder()
            .with_credentials($credentials.clone())
            .with_retry_policy(
                Transient
                    .with_attempt_limit(RETRY_ATTEMPTS)
                    .with_time_limit($settings.timeout.saturating_mul(2)),
            )
            .with_backoff_policy(
                ExponentialBackoffBuilder::new()
                    .with_initial_delay(Duration::from_millis(250))
                    .with_maximum_delay(Duration::from_secs(5))
                    .clamp(),
            )
            .with_attempt_timeout($settings.timeout);
        if let Some(url) = $endpoint {
            builder = builder.with_endpoint(url.clone());
        }
        builder.build().await.map_err(|e| {
            format!(
                "setting up the {} client: {}",
                stringify!($client),
                one_line(&e)
            )
        })?
    }};
}

/// Every Compute client fleetscope uses, sharing one set of credentials (each client would
/// otherwise fetch its own token).
#[derive(Clone, Debug)]
pub(crate) struct Clients {
    pub instances: Instances,
    pub disks: Disks,
    pub images: Images,
    pub firewalls: Firewalls,
    pub zonal_groups: InstanceGroupManagers,
    pub regional_groups: RegionInstanceGroupManagers,
    pub templates: InstanceTemplates,
    pub regional_templates: RegionInstanceTemplates,
}

impl Clients {
    /// With application default credentials of their own.
    pub async fn new(settings: &Settings) -> Result<Clients, String> {
        Clients::with(&credentials()?, settings).await
    }

    pub async fn with(credentials: &Credentials, settings: &Settings) -> Result<Clients, String> {
        let endpoint = settings.endpoint_url.as_ref();
        Ok(Clients {
            instances: client!(Instances, credentials, settings, endpoint),
            disks: client!(Disks, credentials, settings, endpoint),
            images: client!(Images, credentials, settings, endpoint),
            firewalls: client!(Firewalls, credentials, settings, endpoint),
            zonal_groups: client!(InstanceGroupManagers, credentials, settings, endpoint),
            regional_groups: client!(RegionInstanceGroupManagers, credentials, settings, endpoint),
            templates: client!(InstanceTemplates, credentials, settings, endpoint),
            regional_templates: client!(RegionInstanceTemplates, credentials, settings, endpoint),
        })
    }
}

/// Resource Manager v3: the folders and projects under the configured folders and
/// organizations.
#[derive(Clone, Debug)]
pub(crate) struct Directory {
    pub projects: Projects,
    pub folders: Folders,
}

impl Directory {
    pub async fn with(credentials: &Credentials, settings: &Settings) -> Result<Directory, String> {
        let endpoint = settings.resource_manager_url.as_ref();
        Ok(Directory {
            projects: client!(Projects, credentials, settings, endpoint),
            folders: client!(Folders, credentials, settings, endpoint),
        })
    }
}

/// Attempts per call, the first included.
const RETRY_ATTEMPTS: u32 = 5;

/// Retries what is worth retrying: throttling (429, never processed) always; server errors,
/// broken connections and timeouts only for calls safe to repeat. A 403 or 404 is final.
#[derive(Debug, Clone, Copy)]
struct Transient;

impl RetryPolicy for Transient {
    fn on_error(&self, state: &RetryState, error: Error) -> RetryResult {
        if error.is_transient_and_before_rpc() || error.http_status_code() == Some(429) {
            return RetryResult::Continue(error);
        }
        let server_side = matches!(error.http_status_code(), Some(500 | 502 | 503 | 504));
        if state.idempotent && (server_side || error.is_io() || error.is_timeout()) {
            return RetryResult::Continue(error);
        }
        RetryResult::Permanent(error)
    }
}

/// One line about a failed call: what kind of failure, and Compute's own message. The whole
/// chain goes to the log.
pub(crate) fn describe(error: &Error) -> String {
    logged(reason(error), error)
}

/// `short`, after the log got it with the whole error behind it.
pub(crate) fn logged(short: String, error: &Error) -> String {
    // A failed token exchange's chain quotes the token endpoint's answer, and an endpoint
    // may echo the request with its client secret and refresh token: only the root cause
    // (status and URL) is logged.
    let full = if error.is_authentication() {
        root_cause(error)
    } else {
        crate::log::chain(error)
    };
    crate::log::error(&short, &full);
    short
}

/// Google's answer when an API is not enabled in the project asked about: 403 with the reason
/// `accessNotConfigured` (Compute's older error shape) or `SERVICE_DISABLED` (an `ErrorInfo`),
/// and a message saying the API "has not been used in project … before or it is disabled".
pub(crate) fn api_disabled(error: &Error) -> bool {
    if error.http_status_code() != Some(403) {
        return false;
    }
    let (message, reason) = service_message(error);
    let message = message.unwrap_or_default();
    reason.as_deref() == Some("accessNotConfigured")
        || error_infos(error)
            .any(|(reason, _)| matches!(reason, "accessNotConfigured" | "SERVICE_DISABLED"))
        || message.contains("has not been used in project")
        || message.contains("it is disabled")
}

/// The permission a 403 names, when Google's `ErrorInfo` says (`metadata.permission`).
pub(crate) fn denied_permission(error: &Error) -> Option<String> {
    error_infos(error).find_map(|(_, metadata)| metadata.get("permission").cloned())
}

/// The reason and metadata of each `ErrorInfo` in an error's details (the older `errors[]`
/// list arrives as such too).
fn error_infos(
    error: &Error,
) -> impl Iterator<Item = (&str, &std::collections::HashMap<String, String>)> {
    error
        .status()
        .into_iter()
        .flat_map(|status| &status.details)
        .filter_map(|detail| match detail {
            google_cloud_gax::error::rpc::StatusDetails::ErrorInfo(info) => {
                Some((info.reason.as_str(), &info.metadata))
            }
            _ => None,
        })
}

fn reason(error: &Error) -> String {
    if error.is_timeout() {
        return "timed out".to_owned();
    }
    if error.is_deserialization() {
        return "the answer could not be read (not the JSON Compute sends)".to_owned();
    }
    if error.is_authentication() {
        // The chain repeats itself ("cannot create the authentication headers" twice); what
        // went wrong underneath is the useful part.
        return format!("could not get an access token: {}", root_cause(error));
    }
    if error.is_connect() {
        return format!("cannot connect: {}", one_line(error));
    }
    let Some(code) = error.http_status_code() else {
        return one_line(error);
    };
    let (message, _) = service_message(error);
    let message = message.unwrap_or_else(|| format!("HTTP {code}"));
    match code {
        403 if api_disabled(error) => format!("Compute Engine API disabled (403): {message}"),
        403 => format!("permission denied (403): {message}"),
        404 => format!("not found (404): {message}"),
        429 => format!("throttled (429), gave up after {RETRY_ATTEMPTS} attempts: {message}"),
        _ => format!("HTTP {code}: {message}"),
    }
}

/// Compute puts its message and reason in the body (`error.message`, `error.errors[].reason`),
/// often without the `status` the generic parser looks for.
pub(crate) fn service_message(error: &Error) -> (Option<String>, Option<String>) {
    let from_status = error
        .status()
        .map(|s| s.message.clone())
        .filter(|m| !m.is_empty());
    let body: Option<serde_json::Value> = error
        .http_payload()
        .and_then(|p| serde_json::from_slice(p).ok());
    let inner = body.as_ref().map(|b| &b["error"]);
    let message = from_status.or_else(|| {
        inner
            .and_then(|e| e["message"].as_str())
            .filter(|m| !m.is_empty())
            .map(str::to_owned)
    });
    let reason = inner
        .and_then(|e| e["errors"][0]["reason"].as_str())
        .map(str::to_owned);
    (message.map(|m| flatten(&m)), reason)
}

fn one_line(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    flatten(&text)
}

fn root_cause(error: &dyn std::error::Error) -> String {
    let mut deepest = error;
    while let Some(cause) = deepest.source() {
        deepest = cause;
    }
    flatten(&deepest.to_string())
}

fn flatten(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `https://www.googleapis.com/compute/v1/projects/p/zones/z/disks/d` -> `projects/p/zones/z/disks/d`.
/// Links in answers name the public host whatever endpoint was used, so they are compared by
/// path only.
pub(crate) fn resource_path(link: &str) -> &str {
    let link = link.trim();
    match link.find("/projects/") {
        Some(at) if link.contains("://") || link.starts_with('/') => &link[at + 1..],
        _ => link.trim_start_matches('/'),
    }
}

/// The last segment of a link: a zone, machine type or resource name.
pub(crate) fn last_segment(link: &str) -> &str {
    link.rsplit('/').next().unwrap_or(link)
}

/// `us-central1-a` -> `us-central1`.
pub(crate) fn region_of_zone(zone: &str) -> &str {
    zone.rsplit_once('-').map_or(zone, |(region, _)| region)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_compare_by_path() {
        assert_eq!(
            resource_path("https://www.googleapis.com/compute/v1/projects/p/global/images/i"),
            "projects/p/global/images/i"
        );
        assert_eq!(
            resource_path("http://127.0.0.1:9/compute/v1/projects/p/zones/z/disks/d"),
            "projects/p/zones/z/disks/d"
        );
        assert_eq!(
            resource_path("projects/p/global/images/i"),
            "projects/p/global/images/i"
        );
        assert_eq!(resource_path("global/images/i"), "global/images/i");
        assert_eq!(last_segment("zones/us-central1-a"), "us-central1-a");
        assert_eq!(region_of_zone("us-central1-a"), "us-central1");
        assert_eq!(region_of_zone("europe-west4-b"), "europe-west4");
    }
}
