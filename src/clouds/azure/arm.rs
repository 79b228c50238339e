//! The room's own small interface to Azure Resource Manager. This is the only file that names
//! the generated `azure_mgmt_compute` 0.21 crate (frozen, unmaintained upstream): the collector
//! and executor see plain structs and one-line errors, so replacing the crate touches this file.
//!
//! API versions: compute and marketplace 2024-07-01, galleries 2023-07-03 (both fixed by the
//! crate's `package-2024-07-01`), subscriptions 2022-12-01 and management groups 2023-04-01 (both
//! called directly on `azure_core`). The network is read directly on `azure_core` too, with the
//! types of `network` (no generated network crate): NICs, public IPs and NSGs 2024-05-01, a
//! scale set's NICs and public IPs 2018-10-01 (the one version those lists answer), and the
//! status-only VM list 2024-07-01.

use std::sync::Arc;
use std::time::Duration;

use azure_core::auth::TokenCredential;
use azure_core::{ClientOptions, ExponentialRetryOptions, RetryOptions};
use azure_mgmt_compute::package_2024_07_01::{Client, ClientBuilder, models};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};

use super::Settings;
use super::network::{Nic, PowerState, PublicIp, SecurityGroup, power_state};
use crate::core::model::Tags;

/// API version of the subscriptions list, which the compute crate does not cover.
const SUBSCRIPTIONS_API: &str = "2022-12-01";
/// API version of a management group's descendants list.
const MANAGEMENT_GROUPS_API: &str = "2023-04-01";
/// API version of the network lists of a subscription (NICs, public IPs, NSGs).
const NETWORK_API: &str = "2024-05-01";
/// API version of a uniform scale set's NIC and public IP lists, the only one they take.
const SCALE_SET_NETWORK_API: &str = "2018-10-01";
/// API version of the status-only VM list, as the compute crate's.
const COMPUTE_API: &str = "2024-07-01";
/// The most pages a list this file pages itself follows: a server that always answers with a
/// next page fails the list rather than keep it going until its deadline. At ARM's page sizes
/// this is far more subscriptions than any tenant holds.
const MAX_PAGES: u32 = 1_000;

/// What a call acts on, for the hint of a 403 or a 404.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Subscription,
    ManagementGroup,
}

/// Why an ARM call failed, short enough for one line of the source status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArmError {
    /// HTTP status, when the service answered.
    pub status: Option<u16>,
    pub message: String,
}

impl std::fmt::Display for ArmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl ArmError {
    pub fn is_not_found(&self) -> bool {
        self.status == Some(404)
    }

    fn timed_out(what: &str, after: Duration) -> ArmError {
        ArmError {
            status: None,
            message: format!("{what}: timed out after {}s", after.as_secs()),
        }
    }

    /// One line from an `azure_core` error; the whole chain goes to the log, but for a failed
    /// token exchange, whose chain may quote what the identity endpoint said of the request.
    fn from_core(what: &str, error: &azure_core::Error) -> ArmError {
        ArmError::from_core_in(what, error, Scope::Subscription)
    }

    fn from_core_in(what: &str, error: &azure_core::Error, scope: Scope) -> ArmError {
        let failure = ArmError::describe(what, error, scope);
        let full = match error.kind() {
            azure_core::error::ErrorKind::Credential => {
                "the token request failed; what the identity endpoint answered is not logged"
                    .to_owned()
            }
            _ => crate::log::chain(error),
        };
        crate::log::error(&failure.message, &full);
        failure
    }

    /// The ARM code and message when the service answered (the crate's own text for a 403 is
    /// only "will not be retried"), else the first line of what failed on the way.
    fn describe(what: &str, error: &azure_core::Error, scope: Scope) -> ArmError {
        if let Some(http) = error.as_http_error() {
            let status = u16::from(http.status());
            let code = http.error_code().unwrap_or("");
            let detail = http.error_message().unwrap_or("");
            let hint = match (status, scope) {
                (401, _) => "not authenticated (check the credential)",
                (403, Scope::Subscription) => "access denied (the credential lacks Reader on it)",
                (403, Scope::ManagementGroup) => {
                    "access denied (the credential lacks Microsoft.Management/managementGroups/descendants/read on the group; Reader there grants it)"
                }
                (404, Scope::Subscription) => "not found",
                (404, Scope::ManagementGroup) => {
                    "not found (azure.management_groups takes the group's id, not its display name)"
                }
                (429, _) => "throttled, still after retries",
                (s, _) if s >= 500 => "service error, still after retries",
                _ => "refused",
            };
            let mut message = format!("{what}: HTTP {status}, {hint}");
            if !code.is_empty() {
                message.push_str(&format!(": {code}"));
            }
            if !detail.is_empty() {
                message.push_str(&format!(": {}", first_line(detail)));
            }
            return ArmError {
                status: Some(status),
                message,
            };
        }
        let text = match error.kind() {
            azure_core::error::ErrorKind::Credential => {
                "cannot get a token from the Azure credential chain (environment service principal, managed identity, Azure CLI)".to_owned()
            }
            azure_core::error::ErrorKind::DataConversion => {
                format!(
                    "the answer could not be read: {}",
                    first_line(&error.to_string())
                )
            }
            _ => first_line(&error.to_string()),
        };
        ArmError {
            status: None,
            message: format!("{what}: {text}"),
        }
    }
}

fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_owned()
}

pub type ArmResult<T> = Result<T, ArmError>;

/// A VM or scale-set member as fleetscope needs it.
#[derive(Debug, Clone)]
pub struct Vm {
    pub id: String,
    pub name: String,
    pub location: String,
    pub zone: String,
    pub size: String,
    /// The provisioning state of the last operation (`Succeeded`, `Failed`, ...).
    pub provisioning: String,
    /// `running`, `stopped`, `deallocated`, ... lowercase: for a scale-set member from the
    /// instance view listed with it; a standalone VM's comes from the status-only list.
    pub power: Option<String>,
    pub created: Option<DateTime<Utc>>,
    pub image: Option<ImageRef>,
    /// The scale set it belongs to (its id), if any.
    pub scale_set: Option<String>,
    /// For scale-set members: whether it runs the scale set's latest model.
    pub latest_model_applied: Option<bool>,
    pub tags: Tags,
}

/// What a VM's `imageReference` names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ImageRef {
    Marketplace {
        publisher: String,
        offer: String,
        sku: String,
        /// The version that runs: `exactVersion` when the reference says `latest`.
        version: String,
    },
    /// A gallery image version (or definition) by ARM id.
    Gallery {
        id: String,
    },
    SharedGallery {
        id: String,
    },
    CommunityGallery {
        id: String,
    },
    /// A managed image by ARM id.
    Managed {
        id: String,
    },
}

#[derive(Debug, Clone)]
pub struct ScaleSet {
    pub id: String,
    pub name: String,
    pub location: String,
    pub capacity: Option<u32>,
    /// Uniform orchestration (the default): its members' NICs are the scale set's, not
    /// listed with the subscription's.
    pub uniform: bool,
    pub image: Option<ImageRef>,
    /// The model's image reference as written: a marketplace version stays `latest` here.
    pub model: Option<ImageRef>,
    /// `Manual`, `Automatic` or `Rolling`, when the model says.
    pub upgrade_mode: Option<String>,
    /// The last operation's state, lowercase (`succeeded`, `updating`, `failed`).
    pub provisioning: Option<String>,
    /// For an update that must not overwrite a change made since this read.
    pub etag: Option<String>,
    /// It runs the application health extension, whose state gates a member's health.
    pub health_extension: bool,
}

/// A gallery image version, from a private, shared (direct) or community gallery.
#[derive(Debug, Clone)]
pub struct GalleryVersion {
    /// The id a VM names it by.
    pub id: String,
    pub name: String,
    pub published: Option<DateTime<Utc>>,
    pub end_of_life: Option<DateTime<Utc>>,
    pub exclude_from_latest: bool,
    /// Azure's own safety flag: reported for a policy violation, with the categories.
    pub violation: Option<String>,
    pub tags: Tags,
}

#[derive(Debug, Clone)]
pub struct MarketplaceStatus {
    /// `Active`, `ScheduledForDeprecation` or `Deprecated`, when the API says.
    pub state: Option<String>,
    pub scheduled: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct ManagedImage {
    pub name: String,
    pub tags: Tags,
    pub source_vm: Option<String>,
}

/// A scale-set member's health, from its instance view.
#[derive(Debug, Clone, Default)]
pub struct MemberHealth {
    /// The `ProvisioningState/...` code's state, lowercase.
    pub provisioning: Option<String>,
    /// The application health extension's `HealthState/...`, lowercase, when reported.
    pub application: Option<String>,
}

/// One ARM client for every subscription of the credential, with our retry and timeouts.
#[derive(Clone)]
pub struct Arm {
    client: Client,
    credential: Arc<dyn TokenCredential>,
    endpoint: azure_core::Url,
    scope: String,
    /// For the calls this file makes itself (the lists the compute crate does not cover).
    pipeline: azure_core::Pipeline,
    timeout: Duration,
}

impl Arm {
    pub fn new(settings: &Settings, credential: Arc<dyn TokenCredential>) -> Result<Arm, String> {
        let endpoint = azure_core::Url::parse(&settings.endpoint)
            .map_err(|e| format!("azure.endpoint_url {:?}: {e}", settings.endpoint))?;
        // 429 and 503 wait out Retry-After (the policy takes the longer of it and its own
        // backoff); 408/500/502/504 and connection errors back off; both a few times only.
        let retry = RetryOptions::exponential(
            ExponentialRetryOptions::default()
                .initial_delay(Duration::from_millis(200))
                .max_retries(settings.retries)
                .max_delay(Duration::from_secs(10))
                .max_total_elapsed(settings.timeout),
        );
        let scope = settings.scope.clone();
        let client = ClientBuilder::new(credential.clone())
            .endpoint(endpoint.clone())
            .scopes(&[&scope])
            .retry(retry.clone())
            .build()
            .map_err(|e| format!("azure client: {e}"))?;
        let pipeline = azure_core::Pipeline::new(
            option_env!("CARGO_PKG_NAME"),
            option_env!("CARGO_PKG_VERSION"),
            ClientOptions::default().retry(retry),
            Vec::new(),
            Vec::new(),
        );
        Ok(Arm {
            client,
            credential,
            endpoint,
            scope,
            pipeline,
            timeout: settings.timeout,
        })
    }

    /// Runs one call under the per-call timeout (the crate has none), named to the source's
    /// deadline while it waits.
    async fn call<T>(
        &self,
        what: &str,
        call: impl std::future::Future<Output = azure_core::Result<T>>,
    ) -> ArmResult<T> {
        self.call_in(what, Scope::Subscription, call).await
    }

    async fn call_in<T>(
        &self,
        what: &str,
        scope: Scope,
        call: impl std::future::Future<Output = azure_core::Result<T>>,
    ) -> ArmResult<T> {
        let call = tokio::time::timeout(self.timeout, call);
        match crate::clouds::call(what, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(ArmError::from_core_in(what, &error, scope)),
            Err(_) => Err(ArmError::timed_out(what, self.timeout)),
        }
    }

    /// Every page of a paged list, each page under the timeout, flattened.
    async fn all_pages<P, T>(
        &self,
        what: &str,
        pages: impl Stream<Item = azure_core::Result<P>>,
        items: impl Fn(P) -> Vec<T>,
    ) -> ArmResult<Vec<T>> {
        let mut pages = std::pin::pin!(pages);
        let mut all = Vec::new();
        while let Some(page) = self.next_page(what, &mut pages).await {
            all.extend(items(page?));
        }
        Ok(all)
    }

    async fn next_page<P>(
        &self,
        what: &str,
        pages: &mut (impl Stream<Item = azure_core::Result<P>> + Unpin),
    ) -> Option<ArmResult<P>> {
        let next = tokio::time::timeout(self.timeout, pages.next());
        match crate::clouds::call(what, next).await {
            Ok(Some(Ok(page))) => Some(Ok(page)),
            Ok(Some(Err(error))) => Some(Err(ArmError::from_core(what, &error))),
            Ok(None) => None,
            Err(_) => Some(Err(ArmError::timed_out(what, self.timeout))),
        }
    }

    /// One GET of this file's own, with the credential's token, its JSON answer read.
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        scope: Scope,
        url: azure_core::Url,
    ) -> ArmResult<T> {
        self.call_in(what, scope, async {
            let token = self.credential.get_token(&[&self.scope]).await?;
            let mut request = azure_core::Request::new(url, azure_core::Method::Get);
            request.insert_header(
                azure_core::headers::AUTHORIZATION,
                format!("Bearer {}", token.token.secret()),
            );
            let response = self
                .pipeline
                .send(&azure_core::Context::default(), &mut request)
                .await?;
            response.json().await
        })
        .await
    }

    /// The pages of a list this file reads itself, from `first`, each under the timeout. Its
    /// `nextLink`s are followed only on the configured endpoint (the token goes with them) and
    /// for `MAX_PAGES` pages at most; the stream ends after an error.
    fn own_pages<'a, T: serde::de::DeserializeOwned + 'a>(
        &'a self,
        what: String,
        scope: Scope,
        first: ArmResult<azure_core::Url>,
    ) -> impl Stream<Item = ArmResult<Vec<T>>> + 'a {
        let start = match first {
            Ok(url) => Paging::Next(url, 1),
            Err(error) => Paging::Refused(error),
        };
        futures::stream::unfold(start, move |state| {
            let what = what.clone();
            async move {
                let (url, pages) = match state {
                    Paging::Done => return None,
                    Paging::Refused(error) => return Some((Err(error), Paging::Done)),
                    Paging::Next(url, pages) => (url, pages),
                };
                let page: OwnPage<T> = match self.get_json(&what, scope, url).await {
                    Ok(page) => page,
                    Err(error) => return Some((Err(error), Paging::Done)),
                };
                let next = match next_page(&self.endpoint, &what, page.next_link, pages) {
                    Ok(Some(url)) => Paging::Next(url, pages + 1),
                    Ok(None) => Paging::Done,
                    Err(error) => Paging::Refused(error),
                };
                Some((Ok(page.value), next))
            }
        })
    }

    /// The subscription ids the credential can see (`"*"` in the config).
    pub async fn subscriptions(&self) -> ArmResult<Vec<String>> {
        let mut url = self.endpoint.clone();
        url.set_path("/subscriptions");
        url.query_pairs_mut()
            .append_pair("api-version", SUBSCRIPTIONS_API);
        let pages = self.own_pages::<SubscriptionEntry>(
            "listing subscriptions".to_owned(),
            Scope::Subscription,
            Ok(url),
        );
        let mut pages = std::pin::pin!(pages);
        let mut ids = Vec::new();
        while let Some(page) = pages.next().await {
            ids.extend(page?.into_iter().filter_map(|s| s.subscription_id));
        }
        Ok(ids)
    }

    /// The ids of the subscriptions below a management group, nested groups included, page by
    /// page (`descendants`, following `nextLink`).
    pub fn group_subscriptions<'a>(
        &'a self,
        group: &str,
    ) -> impl Stream<Item = ArmResult<Vec<String>>> + 'a {
        let what = format!("listing management group {group}");
        let mut url = self.endpoint.clone();
        let path = url.path_segments_mut().map(|mut path| {
            path.pop_if_empty().extend([
                "providers",
                "Microsoft.Management",
                "managementGroups",
                group,
                "descendants",
            ]);
        });
        url.query_pairs_mut()
            .append_pair("api-version", MANAGEMENT_GROUPS_API);
        let first = match path {
            Ok(()) => Ok(url),
            Err(()) => Err(ArmError {
                status: None,
                message: format!("{what}: azure.endpoint_url cannot take a path"),
            }),
        };
        self.own_pages::<Descendant>(what, Scope::ManagementGroup, first)
            .map(|page| {
                page.map(|found| found.iter().filter_map(Descendant::subscription).collect())
            })
    }

    /// The subscription's VMs, page by page (`listAll`, following `nextLink`).
    pub fn vms(&self, subscription: &str) -> impl Stream<Item = ArmResult<Vec<Vm>>> + '_ {
        let pages = self
            .client
            .virtual_machines_client()
            .list_all(subscription)
            .into_stream();
        futures::stream::unfold(Some(Box::pin(pages)), move |state| async move {
            let mut pages = state?;
            match self.next_page("listing VMs", &mut pages).await? {
                Ok(page) => Some((Ok(page.value.iter().map(vm).collect()), Some(pages))),
                Err(error) => Some((Err(error), None)),
            }
        })
    }

    pub async fn scale_sets(&self, subscription: &str) -> ArmResult<Vec<ScaleSet>> {
        let pages = self
            .client
            .virtual_machine_scale_sets_client()
            .list_all(subscription)
            .into_stream();
        self.all_pages("listing scale sets", pages, |page| {
            page.value.iter().map(scale_set).collect()
        })
        .await
    }

    pub async fn scale_set(&self, id: &ArmId) -> ArmResult<ScaleSet> {
        let (rg, name) = id.scale_set()?;
        let call = self
            .client
            .virtual_machine_scale_sets_client()
            .get(rg, name, &id.subscription)
            .into_future();
        Ok(scale_set(&self.call("reading the scale set", call).await?))
    }

    /// The members of a scale set, with `latestModelApplied` and their instance views (the
    /// power state), in the same pages.
    pub async fn scale_set_vms(&self, scale_set: &ScaleSet) -> ArmResult<Vec<Vm>> {
        let id = ArmId::parse(&scale_set.id);
        let (rg, name) = id.scale_set()?;
        let pages = self
            .client
            .virtual_machine_scale_set_v_ms_client()
            .list(rg, name, &id.subscription)
            .expand("instanceView")
            .into_stream();
        let what = format!("listing the members of {}", scale_set.name);
        let owner = scale_set.id.clone();
        self.all_pages(&what, pages, |page| {
            page.value.iter().map(|m| member(m, &owner)).collect()
        })
        .await
    }

    /// Every item of a list this file reads itself at `path` (below the endpoint) with these
    /// query pairs, page by page.
    async fn own_list<T: serde::de::DeserializeOwned>(
        &self,
        what: String,
        path: &[&str],
        query: &[(&str, &str)],
    ) -> ArmResult<Vec<T>> {
        let mut url = self.endpoint.clone();
        let pushed = url.path_segments_mut().map(|mut segments| {
            segments.pop_if_empty().extend(path);
        });
        {
            let mut pairs = url.query_pairs_mut();
            for (key, value) in query {
                pairs.append_pair(key, value);
            }
        }
        let first = match pushed {
            Ok(()) => Ok(url),
            Err(()) => Err(ArmError {
                status: None,
                message: format!("{what}: azure.endpoint_url cannot take a path"),
            }),
        };
        let pages = self.own_pages::<T>(what, Scope::Subscription, first);
        let mut pages = std::pin::pin!(pages);
        let mut all = Vec::new();
        while let Some(page) = pages.next().await {
            all.extend(page?);
        }
        Ok(all)
    }

    /// A list of the subscription's network resources (`listAll`).
    async fn network_list<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        subscription: &str,
        kind: &str,
    ) -> ArmResult<Vec<T>> {
        let path = [
            "subscriptions",
            subscription,
            "providers",
            "Microsoft.Network",
            kind,
        ];
        self.own_list(what.to_owned(), &path, &[("api-version", NETWORK_API)])
            .await
    }

    /// Every network interface of the subscription (a uniform scale set's excepted).
    pub async fn network_interfaces(&self, subscription: &str) -> ArmResult<Vec<Nic>> {
        self.network_list(
            "listing network interfaces",
            subscription,
            "networkInterfaces",
        )
        .await
    }

    /// Every public IP address of the subscription (a uniform scale set's excepted).
    pub async fn public_ips(&self, subscription: &str) -> ArmResult<Vec<PublicIp>> {
        self.network_list(
            "listing public IP addresses",
            subscription,
            "publicIPAddresses",
        )
        .await
    }

    /// Every network security group of the subscription, with its rules and subnets.
    pub async fn security_groups(&self, subscription: &str) -> ArmResult<Vec<SecurityGroup>> {
        self.network_list(
            "listing network security groups",
            subscription,
            "networkSecurityGroups",
        )
        .await
    }

    /// The power state of every VM of the subscription (`listAll` with `statusOnly=true`).
    pub async fn power_states(&self, subscription: &str) -> ArmResult<Vec<PowerState>> {
        let path = [
            "subscriptions",
            subscription,
            "providers",
            "Microsoft.Compute",
            "virtualMachines",
        ];
        let query = [("api-version", COMPUTE_API), ("statusOnly", "true")];
        self.own_list("listing VM power states".to_owned(), &path, &query)
            .await
    }

    /// A list of a uniform scale set's network resources.
    async fn scale_set_list<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        scale_set: &ScaleSet,
        kind: &str,
    ) -> ArmResult<Vec<T>> {
        let id = ArmId::parse(&scale_set.id);
        let (rg, name) = id.scale_set()?;
        let path = [
            "subscriptions",
            &id.subscription,
            "resourceGroups",
            rg,
            "providers",
            "Microsoft.Compute",
            "virtualMachineScaleSets",
            name,
            kind,
        ];
        let what = format!("{what} of {}", scale_set.name);
        self.own_list(what, &path, &[("api-version", SCALE_SET_NETWORK_API)])
            .await
    }

    /// The network interfaces of a uniform scale set's members.
    pub async fn scale_set_nics(&self, scale_set: &ScaleSet) -> ArmResult<Vec<Nic>> {
        self.scale_set_list(
            "listing the network interfaces",
            scale_set,
            "networkInterfaces",
        )
        .await
    }

    /// The public IP addresses of a uniform scale set's members.
    pub async fn scale_set_public_ips(&self, scale_set: &ScaleSet) -> ArmResult<Vec<PublicIp>> {
        self.scale_set_list(
            "listing the public IP addresses",
            scale_set,
            "publicipaddresses",
        )
        .await
    }

    /// Every version of a gallery image definition in a gallery of the credential's.
    pub async fn gallery_versions(&self, definition: &ArmId) -> ArmResult<Vec<GalleryVersion>> {
        let rg = definition.get("resourcegroups");
        let gallery = definition.get("galleries");
        let image = definition.get("images");
        let pages = self
            .client
            .gallery_image_versions_client()
            .list_by_gallery_image(&definition.subscription, rg, gallery, image)
            .into_stream();
        self.all_pages("listing gallery image versions", pages, |page| {
            page.value.iter().map(gallery_version).collect()
        })
        .await
    }

    /// Every version of an image shared directly with the subscription.
    pub async fn shared_gallery_versions(
        &self,
        subscription: &str,
        location: &str,
        gallery: &str,
        image: &str,
    ) -> ArmResult<Vec<GalleryVersion>> {
        let pages = self
            .client
            .shared_gallery_image_versions_client()
            .list(subscription, location, gallery, image)
            .into_stream();
        self.all_pages("listing shared gallery image versions", pages, |page| {
            page.value
                .iter()
                .filter_map(|v| {
                    let resource = &v.pir_shared_gallery_resource;
                    let properties = v.properties.as_ref();
                    Some(public_version(
                        resource.identifier.as_ref()?.unique_id.clone()?,
                        resource.pir_resource.name.clone()?,
                        properties.and_then(|p| p.published_date),
                        properties.and_then(|p| p.end_of_life_date),
                        properties.and_then(|p| p.exclude_from_latest),
                    ))
                })
                .collect()
        })
        .await
    }

    /// Every version of an image in a community gallery.
    pub async fn community_gallery_versions(
        &self,
        subscription: &str,
        location: &str,
        gallery: &str,
        image: &str,
    ) -> ArmResult<Vec<GalleryVersion>> {
        let pages = self
            .client
            .community_gallery_image_versions_client()
            .list(subscription, location, gallery, image)
            .into_stream();
        self.all_pages("listing community gallery image versions", pages, |page| {
            page.value
                .iter()
                .filter_map(|v| {
                    let resource = &v.pir_community_gallery_resource;
                    let properties = v.properties.as_ref();
                    Some(public_version(
                        resource.identifier.as_ref()?.unique_id.clone()?,
                        resource.name.clone()?,
                        properties.and_then(|p| p.published_date),
                        properties.and_then(|p| p.end_of_life_date),
                        properties.and_then(|p| p.exclude_from_latest),
                    ))
                })
                .collect()
        })
        .await
    }

    /// The version names of a marketplace publisher:offer:sku in a region.
    pub async fn marketplace_versions(
        &self,
        subscription: &str,
        location: &str,
        publisher: &str,
        offer: &str,
        sku: &str,
    ) -> ArmResult<Vec<String>> {
        let call = self
            .client
            .virtual_machine_images_client()
            .list(location, publisher, offer, sku, subscription)
            .into_future();
        let found = self.call("listing marketplace versions", call).await?;
        Ok(found.into_iter().map(|v| v.name).collect())
    }

    /// One marketplace version's deprecation status.
    #[allow(clippy::too_many_arguments)]
    pub async fn marketplace_status(
        &self,
        subscription: &str,
        location: &str,
        publisher: &str,
        offer: &str,
        sku: &str,
        version: &str,
    ) -> ArmResult<MarketplaceStatus> {
        let call = self
            .client
            .virtual_machine_images_client()
            .get(location, publisher, offer, sku, version, subscription)
            .into_future();
        let found = self.call("reading a marketplace version", call).await?;
        let status = found.properties.and_then(|p| p.image_deprecation_status);
        Ok(MarketplaceStatus {
            state: status
                .as_ref()
                .and_then(|s| s.image_state.as_ref())
                .and_then(as_text),
            scheduled: status
                .and_then(|s| s.scheduled_deprecation_time)
                .map(to_chrono),
        })
    }

    /// A managed image; `None` when it is gone.
    pub async fn managed_image(&self, id: &ArmId) -> ArmResult<Option<ManagedImage>> {
        let call = self
            .client
            .images_client()
            .get(id.get("resourcegroups"), id.get("images"), &id.subscription)
            .into_future();
        match self.call("reading a managed image", call).await {
            Ok(image) => Ok(Some(ManagedImage {
                name: image.resource.name.clone().unwrap_or_default(),
                tags: tags(image.resource.tags.as_ref()),
                source_vm: image
                    .properties
                    .and_then(|p| p.source_virtual_machine)
                    .and_then(|s| s.id),
            })),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A scale-set member as it is now; `None` when it is gone.
    pub async fn member(&self, id: &ArmId) -> ArmResult<Option<Vm>> {
        let (rg, name) = id.scale_set()?;
        let instance = id.get("virtualmachines");
        let call = self
            .client
            .virtual_machine_scale_set_v_ms_client()
            .get(rg, name, instance, &id.subscription)
            .into_future();
        match self.call("reading the scale-set member", call).await {
            Ok(found) => Ok(Some(member(&found, &id.scale_set_id()))),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A member's provisioning and application health.
    pub async fn member_health(&self, id: &ArmId) -> ArmResult<MemberHealth> {
        let (rg, name) = id.scale_set()?;
        let instance = id.get("virtualmachines");
        let call = self
            .client
            .virtual_machine_scale_set_v_ms_client()
            .get_instance_view(rg, name, instance, &id.subscription)
            .into_future();
        let view = self
            .call("reading the member's instance view", call)
            .await?;
        let state_of = |code: &Option<String>, prefix: &str| {
            code.as_deref()
                .and_then(|c| c.strip_prefix(prefix))
                .map(str::to_ascii_lowercase)
        };
        Ok(MemberHealth {
            provisioning: view
                .statuses
                .iter()
                .find_map(|s| state_of(&s.code, "ProvisioningState/")),
            application: view
                .vm_health
                .and_then(|h| h.status)
                .and_then(|s| state_of(&s.code, "HealthState/")),
        })
    }

    /// Starts upgrading members to the scale set's latest model (a long-running operation:
    /// the caller waits on the members' health, not on the operation).
    pub async fn update_instances(&self, scale_set: &ArmId, instances: &[String]) -> ArmResult<()> {
        let (rg, name) = scale_set.scale_set()?;
        let ids = models::VirtualMachineScaleSetVmInstanceRequiredIDs::new(instances.to_vec());
        let call = self
            .client
            .virtual_machine_scale_sets_client()
            .update_instances(rg, name, ids, &scale_set.subscription)
            .send();
        self.call("updateInstances", call).await.map(|_| ())
    }

    /// Points the scale-set model at another image (a PATCH of its `imageReference` alone,
    /// the same kind of reference as before: PATCH merges, so the other fields stay as written)
    /// and returns the scale set as the answer has it. Sent once: the crate's own long-running
    /// future sends the PATCH again on every poll, so the caller polls with `scale_set`.
    pub async fn point_model(
        &self,
        id: &ArmId,
        image: &ImageRef,
        etag: Option<&str>,
    ) -> ArmResult<ScaleSet> {
        let (rg, name) = id.scale_set()?;
        let update = model_update(image);
        let mut call = self.client.virtual_machine_scale_sets_client().update(
            rg,
            name,
            update,
            &id.subscription,
        );
        if let Some(etag) = etag {
            call = call.if_match(etag);
        }
        let what = "updating the scale-set model";
        let answer = self
            .call(what, async move { call.send().await?.into_body().await })
            .await?;
        Ok(scale_set(&answer))
    }
}

/// The PATCH body that changes the model's image reference and nothing else.
fn model_update(image: &ImageRef) -> models::VirtualMachineScaleSetUpdate {
    let mut reference = models::ImageReference::new();
    match image {
        ImageRef::Marketplace {
            publisher,
            offer,
            sku,
            version,
        } => {
            reference.publisher = Some(publisher.clone());
            reference.offer = Some(offer.clone());
            reference.sku = Some(sku.clone());
            reference.version = Some(version.clone());
        }
        ImageRef::Gallery { id } | ImageRef::Managed { id } => {
            reference.sub_resource.id = Some(id.clone());
        }
        ImageRef::SharedGallery { id } => reference.shared_gallery_image_id = Some(id.clone()),
        ImageRef::CommunityGallery { id } => {
            reference.community_gallery_image_id = Some(id.clone());
        }
    }
    let storage = models::VirtualMachineScaleSetUpdateStorageProfile {
        image_reference: Some(reference),
        ..Default::default()
    };
    let profile = models::VirtualMachineScaleSetUpdateVmProfile {
        storage_profile: Some(storage),
        ..Default::default()
    };
    let properties = models::VirtualMachineScaleSetUpdateProperties {
        virtual_machine_profile: Some(profile),
        ..Default::default()
    };
    models::VirtualMachineScaleSetUpdate {
        properties: Some(properties),
        ..Default::default()
    }
}

/// Where a list this file pages itself stands.
enum Paging {
    /// The next page's address, and its number.
    Next(azure_core::Url, u32),
    /// The list cannot go on: this is said once, then it ends.
    Refused(ArmError),
    Done,
}

/// The address of the page after page `pages`, if any: a `nextLink` (resolved against the
/// endpoint) on the endpoint's own scheme, host and port, as long as the list is under
/// `MAX_PAGES`. Anything else is refused, so the token never goes elsewhere.
fn next_page(
    endpoint: &azure_core::Url,
    what: &str,
    link: Option<String>,
    pages: u32,
) -> ArmResult<Option<azure_core::Url>> {
    let Some(link) = link.filter(|l| !l.trim().is_empty()) else {
        return Ok(None);
    };
    let refused = |why: String| ArmError {
        status: None,
        message: format!("{what}: {why}"),
    };
    if pages >= MAX_PAGES {
        return Err(refused(format!(
            "more than {MAX_PAGES} pages; the rest is not read"
        )));
    }
    let url = endpoint
        .join(&link)
        .map_err(|e| refused(format!("the next page's link is not an address ({e})")))?;
    if url.origin() != endpoint.origin() {
        return Err(refused(format!(
            "the next page's link points to {}, off azure.endpoint_url: not followed",
            url.origin().ascii_serialization()
        )));
    }
    Ok(Some(url))
}

/// A page of a list this file reads itself.
#[derive(serde::Deserialize)]
struct OwnPage<T> {
    #[serde(default = "Vec::new")]
    value: Vec<T>,
    #[serde(rename = "nextLink")]
    next_link: Option<String>,
}

/// A management group or subscription below a management group.
#[derive(serde::Deserialize)]
struct Descendant {
    id: Option<String>,
    name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

impl Descendant {
    /// The subscription id, when it is a subscription: its id is `/subscriptions/{id}` (the
    /// type `Microsoft.Management/managementGroups/subscriptions`, or `/subscriptions` in
    /// older answers).
    fn subscription(&self) -> Option<String> {
        let from_id = self
            .id
            .as_deref()
            .map(|id| ArmId::parse(id).subscription)
            .filter(|s| !s.is_empty());
        let is_subscription = self
            .kind
            .as_deref()
            .is_some_and(|k| k.to_ascii_lowercase().ends_with("/subscriptions"));
        from_id.or_else(|| {
            self.name
                .clone()
                .filter(|n| is_subscription && !n.is_empty())
        })
    }
}

#[derive(serde::Deserialize)]
struct SubscriptionEntry {
    #[serde(rename = "subscriptionId")]
    subscription_id: Option<String>,
}

/// An ARM resource id split into its `type/name` pairs (types lowercase: ARM ids are
/// case-insensitive, and answers do not agree on case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArmId {
    pub subscription: String,
    pairs: Vec<(String, String)>,
}

impl ArmId {
    pub fn parse(id: &str) -> ArmId {
        let parts: Vec<&str> = id.trim_matches('/').split('/').collect();
        let mut pairs = Vec::new();
        for pair in parts.chunks(2) {
            if let [kind, name] = pair {
                pairs.push((kind.to_ascii_lowercase(), (*name).to_owned()));
            }
        }
        let subscription = pairs
            .iter()
            .find(|(k, _)| k == "subscriptions")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        ArmId {
            subscription,
            pairs,
        }
    }

    /// The name after a type segment (`resourcegroups`, `galleries`, ...); empty if absent.
    pub fn get(&self, kind: &str) -> &str {
        self.pairs
            .iter()
            .find(|(k, _)| k == kind)
            .map_or("", |(_, v)| v.as_str())
    }

    fn scale_set(&self) -> ArmResult<(&str, &str)> {
        let rg = self.get("resourcegroups");
        let name = self.get("virtualmachinescalesets");
        if self.subscription.is_empty() || rg.is_empty() || name.is_empty() {
            return Err(ArmError {
                status: None,
                message: "not a scale-set resource id".to_owned(),
            });
        }
        Ok((rg, name))
    }

    /// The id of the scale set this id is in (or is).
    pub fn scale_set_id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Compute/virtualMachineScaleSets/{}",
            self.subscription,
            self.get("resourcegroups"),
            self.get("virtualmachinescalesets")
        )
    }
}

fn to_chrono(time: time::OffsetDateTime) -> DateTime<Utc> {
    DateTime::from_timestamp(time.unix_timestamp(), time.nanosecond()).unwrap_or_default()
}

/// An enum of the generated crate as the text it has on the wire.
fn as_text<T: serde::Serialize>(value: &T) -> Option<String> {
    serde_json::to_value(value)
        .ok()?
        .as_str()
        .map(str::to_owned)
}

fn tags(value: Option<&serde_json::Value>) -> Tags {
    value
        .and_then(serde_json::Value::as_object)
        .map(|map| {
            map.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// What a reference names, a marketplace `latest` resolved to `exactVersion` where given.
fn image_ref(reference: Option<&models::ImageReference>) -> Option<ImageRef> {
    let r = reference?;
    let version = match (r.version.as_deref(), r.exact_version.as_deref()) {
        (Some(v), Some(exact)) if v.eq_ignore_ascii_case("latest") => exact,
        (Some(v), _) => v,
        (None, Some(exact)) => exact,
        (None, None) => "latest",
    };
    written_ref(reference, version)
}

/// A reference as written, with `version` for a marketplace image.
fn written_ref(reference: Option<&models::ImageReference>, version: &str) -> Option<ImageRef> {
    let r = reference?;
    if let Some(id) = &r.shared_gallery_image_id {
        return Some(ImageRef::SharedGallery { id: id.clone() });
    }
    if let Some(id) = &r.community_gallery_image_id {
        return Some(ImageRef::CommunityGallery { id: id.clone() });
    }
    if let Some(id) = &r.sub_resource.id {
        let is_gallery = ArmId::parse(id).pairs.iter().any(|(k, _)| k == "galleries");
        return Some(if is_gallery {
            ImageRef::Gallery { id: id.clone() }
        } else {
            ImageRef::Managed { id: id.clone() }
        });
    }
    Some(ImageRef::Marketplace {
        publisher: r.publisher.clone()?,
        offer: r.offer.clone()?,
        sku: r.sku.clone()?,
        version: version.to_owned(),
    })
}

fn vm(found: &models::VirtualMachine) -> Vm {
    let properties = found.properties.as_ref();
    Vm {
        id: found.resource.id.clone().unwrap_or_default(),
        name: found.resource.name.clone().unwrap_or_default(),
        location: found.resource.location.clone(),
        zone: found.zones.first().cloned().unwrap_or_default(),
        size: properties
            .and_then(|p| p.hardware_profile.as_ref())
            .and_then(|h| h.vm_size.as_ref())
            .and_then(as_text)
            .unwrap_or_default(),
        provisioning: properties
            .and_then(|p| p.provisioning_state.clone())
            .unwrap_or_else(|| "unknown".to_owned()),
        power: None,
        created: properties.and_then(|p| p.time_created).map(to_chrono),
        image: image_ref(
            properties
                .and_then(|p| p.storage_profile.as_ref())
                .and_then(|s| s.image_reference.as_ref()),
        ),
        scale_set: properties
            .and_then(|p| p.virtual_machine_scale_set.as_ref())
            .and_then(|s| s.id.clone()),
        latest_model_applied: None,
        tags: tags(found.resource.tags.as_ref()),
    }
}

fn member(found: &models::VirtualMachineScaleSetVm, scale_set: &str) -> Vm {
    let properties = found.properties.as_ref();
    Vm {
        id: found.resource.id.clone().unwrap_or_default(),
        name: found.resource.name.clone().unwrap_or_default(),
        location: found.resource.location.clone(),
        zone: found.zones.first().cloned().unwrap_or_default(),
        size: found
            .sku
            .as_ref()
            .and_then(|s| s.name.clone())
            .or_else(|| {
                properties
                    .and_then(|p| p.hardware_profile.as_ref())
                    .and_then(|h| h.vm_size.as_ref())
                    .and_then(as_text)
            })
            .unwrap_or_default(),
        provisioning: properties
            .and_then(|p| p.provisioning_state.clone())
            .unwrap_or_else(|| "unknown".to_owned()),
        power: properties
            .and_then(|p| p.instance_view.as_ref())
            .and_then(|v| power_state(v.statuses.iter().filter_map(|s| s.code.as_deref()))),
        created: properties.and_then(|p| p.time_created).map(to_chrono),
        image: image_ref(
            properties
                .and_then(|p| p.storage_profile.as_ref())
                .and_then(|s| s.image_reference.as_ref()),
        ),
        scale_set: Some(scale_set.to_owned()),
        latest_model_applied: properties.and_then(|p| p.latest_model_applied),
        tags: tags(found.resource.tags.as_ref()),
    }
}

fn scale_set(found: &models::VirtualMachineScaleSet) -> ScaleSet {
    let properties = found.properties.as_ref();
    let profile = properties.and_then(|p| p.virtual_machine_profile.as_ref());
    let reference = profile
        .and_then(|p| p.storage_profile.as_ref())
        .and_then(|s| s.image_reference.as_ref());
    ScaleSet {
        id: found.resource.id.clone().unwrap_or_default(),
        name: found.resource.name.clone().unwrap_or_default(),
        location: found.resource.location.clone(),
        capacity: found
            .sku
            .as_ref()
            .and_then(|s| s.capacity)
            .and_then(|c| u32::try_from(c).ok()),
        uniform: !matches!(
            properties.and_then(|p| p.orchestration_mode.as_ref()),
            Some(models::OrchestrationMode::Flexible)
        ),
        image: image_ref(reference),
        model: written_ref(
            reference,
            reference
                .and_then(|r| r.version.as_deref())
                .unwrap_or("latest"),
        ),
        upgrade_mode: properties
            .and_then(|p| p.upgrade_policy.as_ref())
            .and_then(|u| u.mode.as_ref())
            .and_then(as_text),
        provisioning: properties
            .and_then(|p| p.provisioning_state.as_deref())
            .map(str::to_ascii_lowercase),
        etag: found.etag.clone(),
        health_extension: profile
            .and_then(|p| p.extension_profile.as_ref())
            .is_some_and(|e| {
                e.extensions.iter().any(|x| {
                    x.properties
                        .as_ref()
                        .and_then(|p| p.type_.as_deref())
                        .is_some_and(|t| t.starts_with("ApplicationHealth"))
                })
            }),
    }
}

/// A version from a shared or community gallery: the two answer in look-alike generated types,
/// with dates and the latest flag but no tags or policy.
fn public_version(
    id: String,
    name: String,
    published: Option<time::OffsetDateTime>,
    end_of_life: Option<time::OffsetDateTime>,
    exclude_from_latest: Option<bool>,
) -> GalleryVersion {
    GalleryVersion {
        id,
        name,
        published: published.map(to_chrono),
        end_of_life: end_of_life.map(to_chrono),
        exclude_from_latest: exclude_from_latest.unwrap_or(false),
        violation: None,
        tags: Tags::new(),
    }
}

fn gallery_version(found: &models::GalleryImageVersion) -> GalleryVersion {
    let properties = found.properties.as_ref();
    let publishing = properties
        .and_then(|p| p.publishing_profile.as_ref())
        .map(|p| &p.gallery_artifact_publishing_profile_base);
    let safety = properties.and_then(|p| p.safety_profile.as_ref());
    let violation = safety
        .filter(|s| {
            s.reported_for_policy_violation == Some(true) || !s.policy_violations.is_empty()
        })
        .map(|s| {
            let categories: Vec<String> = s
                .policy_violations
                .iter()
                .filter_map(|v| v.category.as_ref().and_then(as_text))
                .collect();
            if categories.is_empty() {
                "reported for policy violation".to_owned()
            } else {
                format!("reported for policy violation ({})", categories.join(", "))
            }
        });
    GalleryVersion {
        id: found.resource.id.clone().unwrap_or_default(),
        name: found.resource.name.clone().unwrap_or_default(),
        published: publishing.and_then(|p| p.published_date).map(to_chrono),
        end_of_life: publishing.and_then(|p| p.end_of_life_date).map(to_chrono),
        exclude_from_latest: publishing
            .and_then(|p| p.exclude_from_latest)
            .unwrap_or(false),
        violation,
        tags: tags(found.resource.tags.as_ref()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arm_ids_split_case_insensitively() {
        let id = ArmId::parse(
            "/subscriptions/s1/resourceGroups/RG/providers/Microsoft.Compute/virtualMachineScaleSets/web/virtualMachines/3",
        );
        assert_eq!(id.subscription, "s1");
        assert_eq!(id.get("resourcegroups"), "RG");
        assert_eq!(id.get("virtualmachines"), "3");
        assert_eq!(
            id.scale_set_id(),
            "/subscriptions/s1/resourceGroups/RG/providers/Microsoft.Compute/virtualMachineScaleSets/web"
        );
        assert!(ArmId::parse("/subscriptions/s1").scale_set().is_err());
    }

    #[test]
    fn next_links_are_followed_only_on_the_endpoint_and_only_so_far() {
        let endpoint = azure_core::Url::parse("https://management.azure.com/").unwrap();
        let what = "listing management group mg";
        let next =
            |link: &str, pages: u32| next_page(&endpoint, what, Some(link.to_owned()), pages);
        let on = "https://management.azure.com/providers/Microsoft.Management/managementGroups/mg/descendants?api-version=2023-04-01&$skiptoken=abc";
        assert_eq!(next(on, 1).unwrap().map(String::from).as_deref(), Some(on));
        // The default port spelled out is the same place.
        assert!(
            next("https://management.azure.com:443/x", 1)
                .unwrap()
                .is_some()
        );
        assert!(next("/providers/x?$skiptoken=1", 1).unwrap().is_some());
        assert_eq!(next_page(&endpoint, what, None, 1), Ok(None));
        assert_eq!(next("", 1), Ok(None));
        for elsewhere in [
            "https://management.azure.com.example.net/x",
            "http://management.azure.com/x",
            "https://management.azure.com:8443/x",
            "https://169.254.169.254/metadata",
        ] {
            let refused = next(elsewhere, 1).unwrap_err().message;
            assert!(
                refused.starts_with("listing management group mg: the next page's link points to ")
                    && refused.ends_with("off azure.endpoint_url: not followed"),
                "{refused}"
            );
        }
        assert!(next(on, MAX_PAGES - 1).unwrap().is_some());
        assert_eq!(
            next(on, MAX_PAGES).unwrap_err().message,
            "listing management group mg: more than 1000 pages; the rest is not read"
        );
    }

    #[test]
    fn descendants_that_are_subscriptions_give_their_ids() {
        let example: serde_json::Value = serde_json::from_str(include_str!(
            "../../../tests/fixtures/azure/GetDescendants.json"
        ))
        .unwrap();
        let page: OwnPage<Descendant> =
            serde_json::from_value(example["responses"]["200"]["body"].clone()).unwrap();
        let found: Vec<String> = page
            .value
            .iter()
            .filter_map(Descendant::subscription)
            .collect();
        assert_eq!(found, ["20000000-0004-0000-0000-000000000000"]);
        assert_eq!(page.next_link, None);
        // An older answer's type, and one with no id.
        let older: Descendant = serde_json::from_value(serde_json::json!(
            {"type": "/subscriptions", "name": "s2"}
        ))
        .unwrap();
        assert_eq!(older.subscription().as_deref(), Some("s2"));
        let group: Descendant = serde_json::from_value(serde_json::json!(
            {"type": "Microsoft.Management/managementGroups", "name": "child"}
        ))
        .unwrap();
        assert_eq!(group.subscription(), None);
    }
}
