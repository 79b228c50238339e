//! An AWS organization: its accounts found through Organizations with the management (or
//! delegated administrator) account's credentials, each then collected and changed through a
//! role assumed in it. The management account itself uses its own credentials.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{self, ProvideCredentials, SharedCredentialsProvider, future};
use aws_sdk_organizations::Client;
use aws_sdk_organizations::types::{AccountState, AccountStatus, ChildType};

use super::{describe, shorten};
use crate::clouds::call;
use crate::config::AwsOrganizationConfig;

/// What organization mode needs from the config.
#[derive(Debug, Clone)]
pub struct OrgSettings {
    /// `None`: the default credential chain.
    pub profile: Option<String>,
    pub role_name: String,
    pub external_id: Option<String>,
    pub session_name: String,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

impl OrgSettings {
    pub fn from_config(org: &AwsOrganizationConfig) -> Option<OrgSettings> {
        let given = |text: &str| Some(text.trim().to_owned()).filter(|t| !t.is_empty());
        org.enabled.then(|| OrgSettings {
            profile: given(&org.profile),
            role_name: given(&org.role_name)
                .unwrap_or_else(|| "OrganizationAccountAccessRole".to_owned()),
            external_id: given(&org.external_id),
            session_name: given(&org.session_name).unwrap_or_else(|| "fleetscope".to_owned()),
            include: org.include.clone(),
            exclude: org.exclude.clone(),
        })
    }

    /// The profile whose credentials read the organization, as `sdk_config` takes it.
    pub fn profile(&self) -> &str {
        self.profile.as_deref().unwrap_or("")
    }
}

/// One member account, as a source.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub id: String,
    pub name: String,
    /// `aws:<account name>`, or with the id added when two accounts share a name.
    pub source: String,
    /// ACTIVE; a suspended account is listed, never collected.
    pub active: bool,
}

/// The accounts chosen by `include`/`exclude`, and the one whose credentials read them.
#[derive(Debug)]
pub struct Discovered {
    pub accounts: Vec<Account>,
    /// The organization's management account: collected with the credentials at hand.
    pub management: Option<String>,
    /// The partition of the organization's ARNs (`aws`, `aws-cn`, `aws-us-gov`).
    pub partition: String,
}

/// Pages the walk of one organizational unit may read, at most: a bound on a looping answer.
const MAX_PAGES: usize = 10_000;

/// Every account of the organization (ListAccounts, 20 a page), narrowed by the settings'
/// `include` and `exclude`, where `ou-…` ids stand for everything under that unit.
pub async fn discover(base: &SdkConfig, org: &OrgSettings) -> Result<Discovered, String> {
    let client = Client::new(base);
    let (listed, identity) = futures::join!(
        call("ListAccounts", list_accounts(&client)),
        identify(&client),
    );
    let listed = listed?;
    let Identity {
        management,
        partition,
    } = identity?;
    let include = resolve(&client, &org.include).await?;
    let exclude = resolve(&client, &org.exclude).await?;
    let chosen: Vec<&Listed> = listed
        .iter()
        .filter(|a| org.include.is_empty() || include.contains(&a.id))
        .filter(|a| !exclude.contains(&a.id))
        .collect();
    let mut names: HashMap<&str, usize> = HashMap::new();
    for account in &chosen {
        *names.entry(account.name.as_str()).or_default() += 1;
    }
    let accounts = chosen
        .iter()
        .map(|a| Account {
            id: a.id.clone(),
            name: a.name.clone(),
            source: match (a.name.is_empty(), names.get(a.name.as_str())) {
                (true, _) => format!("aws:{}", a.id),
                (false, Some(1)) => format!("aws:{}", a.name),
                (false, _) => format!("aws:{}-{}", a.name, a.id),
            },
            active: a.active,
        })
        .collect();
    Ok(Discovered {
        accounts,
        management,
        partition,
    })
}

/// What the organization says of itself.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The management account: it uses the credentials at hand, never an assumed role.
    pub management: Option<String>,
    /// The partition of the organization's ARNs (`aws`, `aws-cn`, `aws-us-gov`).
    pub partition: String,
}

/// DescribeOrganization, for the management account and the partition.
pub async fn identify(client: &Client) -> Result<Identity, String> {
    let answer = call(
        "DescribeOrganization",
        client.describe_organization().send(),
    )
    .await
    .map_err(|e| format!("DescribeOrganization: {}", describe(&e)))?;
    let organization = answer.organization();
    Ok(Identity {
        management: organization
            .and_then(|o| o.master_account_id())
            .map(str::to_owned),
        partition: organization
            .and_then(|o| o.arn())
            .and_then(|arn| arn.split(':').nth(1))
            .filter(|p| !p.is_empty())
            .unwrap_or("aws")
            .to_owned(),
    })
}

struct Listed {
    id: String,
    name: String,
    active: bool,
}

async fn list_accounts(client: &Client) -> Result<Vec<Listed>, String> {
    let mut pages = client
        .list_accounts()
        .max_results(20)
        .into_paginator()
        .send();
    let mut seen = BTreeSet::new();
    let mut accounts = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| format!("ListAccounts: {}", describe(&e)))?;
        for account in page.accounts() {
            let Some(id) = account.id() else { continue };
            if !seen.insert(id.to_owned()) {
                continue;
            }
            // `State` replaces `Status`; an answer may carry either.
            let active = match (account.state(), account.status()) {
                (Some(state), _) => *state == AccountState::Active,
                (None, Some(status)) => *status == AccountStatus::Active,
                (None, None) => true,
            };
            accounts.push(Listed {
                id: id.to_owned(),
                name: account.name().unwrap_or_default().to_owned(),
                active,
            });
        }
    }
    Ok(accounts)
}

/// The account ids `entries` name: account ids as given, `ou-…` (and `r-…`) ids as every
/// account under that unit, nested units included.
async fn resolve(client: &Client, entries: &[String]) -> Result<BTreeSet<String>, String> {
    let mut ids = BTreeSet::new();
    let mut units: Vec<String> = Vec::new();
    for entry in entries.iter().map(|e| e.trim()) {
        if entry.starts_with("ou-") || entry.starts_with("r-") {
            units.push(entry.to_owned());
        } else {
            ids.insert(entry.to_owned());
        }
    }
    let mut walked = BTreeSet::new();
    let mut pages = 0;
    while let Some(unit) = units.pop() {
        if !walked.insert(unit.clone()) {
            continue;
        }
        let mut accounts = client
            .list_accounts_for_parent()
            .parent_id(&unit)
            .into_paginator()
            .send();
        while let Some(page) = call(format!("ListAccountsForParent {unit}"), accounts.next()).await
        {
            pages += 1;
            let page = page.map_err(|e| unit_error(&unit, &describe(&e)))?;
            ids.extend(
                page.accounts()
                    .iter()
                    .filter_map(|a| a.id().map(str::to_owned)),
            );
        }
        let mut children = client
            .list_children()
            .parent_id(&unit)
            .child_type(ChildType::OrganizationalUnit)
            .into_paginator()
            .send();
        while let Some(page) = call(format!("ListChildren {unit}"), children.next()).await {
            pages += 1;
            let page = page.map_err(|e| unit_error(&unit, &describe(&e)))?;
            units.extend(
                page.children()
                    .iter()
                    .filter_map(|c| c.id().map(str::to_owned)),
            );
        }
        if pages > MAX_PAGES {
            return Err(format!(
                "the organizational units under {unit} did not end within {MAX_PAGES} pages"
            ));
        }
    }
    Ok(ids)
}

fn unit_error(unit: &str, why: &str) -> String {
    if why.contains("ParentNotFound") || why.contains("not found") {
        format!("organizational unit {unit} was not found in this organization")
    } else {
        format!("listing organizational unit {unit}: {why}")
    }
}

/// The SDK config for one account: the base credentials in the management account, else a
/// role assumed in the account, its credentials kept until shortly before they expire.
pub async fn account_config(
    base: &SdkConfig,
    org: &OrgSettings,
    discovered_management: Option<&str>,
    partition: &str,
    account: &str,
) -> SdkConfig {
    if discovered_management == Some(account) {
        return base.clone();
    }
    let arn = format!("arn:{partition}:iam::{account}:role/{}", org.role_name);
    let mut role = AssumeRoleProvider::builder(arn).session_name(&org.session_name);
    if let Some(id) = &org.external_id {
        role = role.external_id(id);
    }
    let role = role.configure(base).build().await;
    let assumed = Assumed {
        role,
        held: Arc::default(),
    };
    base.to_builder()
        .credentials_provider(SharedCredentialsProvider::new(assumed))
        .build()
}

/// Assumes the account's role now, so that an account whose role cannot be assumed fails in
/// one line before any of its calls; the credentials are kept for the calls that follow.
pub async fn check_role(
    sdk: &SdkConfig,
    org: &OrgSettings,
    id: &str,
    name: &str,
) -> Result<(), String> {
    let Some(credentials) = sdk.credentials_provider() else {
        return Err("no AWS credentials to assume a role with".to_owned());
    };
    let answer = call(
        format!("AssumeRole in {id}"),
        credentials.provide_credentials(),
    )
    .await;
    answer.map(|_| ()).map_err(|error| {
        format!(
            "cannot assume {} in {id} ({name}): {}",
            org.role_name,
            assume_reason(&error)
        )
    })
}

/// Why a role could not be assumed, in an operator's words.
fn assume_reason(error: &provider::error::CredentialsError) -> String {
    let mut chain = error.to_string();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(next) = cause {
        chain.push_str(": ");
        chain.push_str(&next.to_string());
        cause = next.source();
    }
    let lower = chain.to_ascii_lowercase();
    let reason = if lower.contains("accessdenied") || lower.contains("not authorized") {
        "access denied".to_owned()
    } else if lower.contains("throttl") || lower.contains("rate exceeded") {
        "throttled by AWS after retries: try again later".to_owned()
    } else if lower.contains("expiredtoken") || lower.contains("invalidclienttokenid") {
        "the management account's credentials were rejected: renew or fix them".to_owned()
    } else if lower.contains("timeout") || lower.contains("timed out") {
        "timed out (aws.timeout_secs)".to_owned()
    } else if lower.contains("no credentials") || lower.contains("could not find") {
        "no AWS credentials to assume it with".to_owned()
    } else {
        chain
    };
    crate::log::error(&format!("AssumeRole: {reason}"), &format!("{error:?}"));
    shorten(&reason, 80)
}

/// How long before they expire assumed credentials are renewed: a long collection or apply
/// never makes a call with credentials about to lapse.
const RENEW_BEFORE: Duration = Duration::from_secs(5 * 60);

/// A role's credentials, assumed once and kept until shortly before they expire.
#[derive(Debug)]
struct Assumed {
    role: AssumeRoleProvider,
    held: Arc<tokio::sync::Mutex<Option<Credentials>>>,
}

impl ProvideCredentials for Assumed {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            // One caller assumes the role at a time; the others wait and take its answer.
            let mut held = self.held.lock().await;
            let fresh_until = SystemTime::now() + RENEW_BEFORE;
            if let Some(credentials) = held
                .as_ref()
                .filter(|c| c.expiry().is_none_or(|expiry| expiry > fresh_until))
            {
                return Ok(credentials.clone());
            }
            let credentials = self.role.provide_credentials().await?;
            *held = Some(credentials.clone());
            Ok(credentials)
        })
    }
}
