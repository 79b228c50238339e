//! Layered configuration: built-in defaults, then the TOML file, then `FLEETSCOPE_*` environment
//! variables. Every value remembers where it came from, for `fleetscope config`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::core::lineage::{LineageRules, NameRule};
use crate::core::policy::PolicyConfig;
use crate::queue::rollout::{MaxUnavailable, Settings};

/// Queueing more instances than this with one key (or `queue add`) asks first.
pub const DEFAULT_CONFIRM_QUEUE_OVER: usize = 100;

pub const DEFAULT_CONFIG: &str = include_str!("../assets/default-config.toml");
pub const CONFIG_VERSION: u32 = 1;
/// How long one source may take, unless `<cloud>.deadline_secs` says otherwise.
pub const DEFAULT_DEADLINE_SECS: u64 = 120;
/// The longest `<cloud>.deadline_secs`: a day.
pub const MAX_DEADLINE_SECS: u64 = 86_400;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub version: u32,
    pub policy: PolicyConfig,
    pub lineage: LineageConfig,
    pub aws: AwsConfig,
    pub azure: AzureConfig,
    pub gcp: GcpConfig,
    pub collect: CollectConfig,
    pub rollout: RolloutConfig,
    pub ui: UiConfig,
    pub limits: LimitsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            version: CONFIG_VERSION,
            policy: PolicyConfig::default(),
            lineage: LineageConfig::default(),
            aws: AwsConfig::default(),
            azure: AzureConfig::default(),
            gcp: GcpConfig::default(),
            collect: CollectConfig::default(),
            rollout: RolloutConfig::default(),
            ui: UiConfig::default(),
            limits: LimitsConfig::default(),
        }
    }
}

/// How much fleetscope reads from a file before it gives up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest snapshot (or JSON report) `--snapshot` and `diff` read, in MiB.
    pub snapshot_max_mb: u64,
    /// Seconds a snapshot fetched from a URL may take, connecting to last byte.
    pub fetch_timeout_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            snapshot_max_mb: 2048,
            fetch_timeout_secs: 300,
        }
    }
}

impl LimitsConfig {
    pub fn snapshot_max_bytes(&self) -> u64 {
        self.snapshot_max_mb.saturating_mul(1 << 20)
    }

    /// How a snapshot URL is fetched, with this bearer token if there is one.
    pub fn fetch(&self, token: Option<String>) -> crate::remote::Fetch {
        crate::remote::Fetch {
            cap: self.snapshot_max_bytes(),
            token,
            timeout: std::time::Duration::from_secs(self.fetch_timeout_secs),
        }
    }
}

/// A config is a few KiB; anything past this is not one.
pub const CONFIG_MAX_BYTES: u64 = 1 << 20;

/// The range a number in the config must fall in. Every number has one, checked wherever the
/// value came from, so no timeout, pause or count can overflow where it is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    pub key: &'static str,
    pub min: i64,
    pub max: i64,
    pub unit: &'static str,
}

pub const BOUNDS: &[Bound] = &[
    bound("policy.max_image_age_days", 1, 3650, "days"),
    bound("policy.max_instance_age_days", 1, 3650, "days"),
    bound("aws.concurrency", 1, 256, "regions at once"),
    bound("aws.timeout_secs", 1, 3600, "seconds"),
    bound("aws.deadline_secs", 1, MAX_DEADLINE_SECS as i64, "seconds"),
    bound("azure.concurrency", 1, 256, "subscriptions at once"),
    bound("azure.timeout_secs", 1, 3600, "seconds"),
    bound(
        "azure.deadline_secs",
        1,
        MAX_DEADLINE_SECS as i64,
        "seconds",
    ),
    bound("gcp.concurrency", 1, 256, "projects at once"),
    bound("collect.max_in_flight", 1, 1024, "calls at once"),
    bound("gcp.timeout_secs", 1, 3600, "seconds"),
    bound("gcp.deadline_secs", 1, MAX_DEADLINE_SECS as i64, "seconds"),
    bound("rollout.max_parallel", 1, 1000, "instances at once"),
    bound("rollout.pause_secs", 0, 3600, "seconds"),
    bound("rollout.max_failures", 0, 100_000, "failures"),
    bound("rollout.health_timeout_secs", 1, 86_400, "seconds"),
    bound("rollout.poll_secs", 1, 3600, "seconds"),
    bound("ui.confirm_queue_over", 0, 1_000_000, "instances"),
    bound("limits.snapshot_max_mb", 1, 65_536, "MiB"),
    bound("limits.fetch_timeout_secs", 1, 86_400, "seconds"),
];

const fn bound(key: &'static str, min: i64, max: i64, unit: &'static str) -> Bound {
    Bound {
        key,
        min,
        max,
        unit,
    }
}

impl Bound {
    fn of(key: &str) -> Option<&'static Bound> {
        BOUNDS.iter().find(|b| b.key == key)
    }

    /// Why `value` (as written) is refused.
    fn refusal(&self, value: impl fmt::Display) -> String {
        format!(
            "{} must be from {} to {} {}, not {value}",
            self.key, self.min, self.max, self.unit
        )
    }

    fn admits(&self, value: i64) -> bool {
        (self.min..=self.max).contains(&value)
    }
}

/// The first number in `table` outside its bound, with the refusal.
fn out_of_bounds(table: &toml::Table) -> Option<(&'static Bound, String)> {
    BOUNDS.iter().find_map(|bound| {
        let (section, key) = bound.key.split_once('.')?;
        match table.get(section)?.get(key)? {
            toml::Value::Integer(v) if !bound.admits(*v) => Some((bound, bound.refusal(v))),
            _ => None,
        }
    })
}

/// The interactive view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UiConfig {
    /// Queueing more instances than this with one key asks first, with the count per verdict.
    pub confirm_queue_over: usize,
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig {
            confirm_queue_over: DEFAULT_CONFIRM_QUEUE_OVER,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LineageConfig {
    pub tag: String,
    pub rules: Vec<NameRuleConfig>,
}

impl Default for LineageConfig {
    fn default() -> Self {
        LineageConfig {
            tag: "lineage".into(),
            rules: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameRuleConfig {
    pub pattern: String,
    pub lineage: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AwsConfig {
    pub profiles: Vec<String>,
    pub regions: Vec<String>,
    pub endpoint_url: String,
    pub concurrency: u32,
    pub timeout_secs: u64,
    /// Seconds one source may take in all; past them it fails, naming what it waited for.
    pub deadline_secs: u64,
    pub organization: AwsOrganizationConfig,
}

impl Default for AwsConfig {
    fn default() -> Self {
        AwsConfig {
            profiles: Vec::new(),
            regions: Vec::new(),
            endpoint_url: String::new(),
            concurrency: 8,
            timeout_secs: 30,
            deadline_secs: DEFAULT_DEADLINE_SECS,
            organization: AwsOrganizationConfig::default(),
        }
    }
}

impl AwsConfig {
    /// True when anything on AWS is to be collected.
    pub fn any(&self) -> bool {
        !self.profiles.is_empty() || self.organization.enabled
    }
}

impl AzureConfig {
    pub fn any(&self) -> bool {
        !self.subscriptions.is_empty() || !self.management_groups.is_empty()
    }
}

impl GcpConfig {
    pub fn any(&self) -> bool {
        !self.projects.is_empty() || !self.folders.is_empty() || !self.organizations.is_empty()
    }

    /// The configured folders and organizations as Resource Manager names them (`folders/123`,
    /// `organizations/456`), each once: a bare id takes its list's prefix, a named one stays as
    /// written.
    pub fn scopes(&self) -> Vec<String> {
        let mut scopes: Vec<String> = Vec::new();
        let lists = [
            ("folders", &self.folders),
            ("organizations", &self.organizations),
        ];
        for (kind, ids) in lists {
            for id in ids.iter().map(|id| id.trim()).filter(|id| !id.is_empty()) {
                let name = match id.contains('/') {
                    true => id.to_owned(),
                    false => format!("{kind}/{id}"),
                };
                if !scopes.contains(&name) {
                    scopes.push(name);
                }
            }
        }
        scopes
    }
}

/// Every account of an AWS organization, each through a role assumed in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AwsOrganizationConfig {
    pub enabled: bool,
    /// The management (or delegated administrator) account's profile; empty: the default chain.
    pub profile: String,
    pub role_name: String,
    /// Empty: none sent.
    pub external_id: String,
    pub session_name: String,
    /// Account ids, or `ou-…` ids meaning that unit and everything under it; empty: every account.
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

impl Default for AwsOrganizationConfig {
    fn default() -> Self {
        AwsOrganizationConfig {
            enabled: false,
            profile: String::new(),
            role_name: "OrganizationAccountAccessRole".to_owned(),
            external_id: String::new(),
            session_name: "fleetscope".to_owned(),
            include: Vec::new(),
            exclude: Vec::new(),
        }
    }
}

/// What holds for every source of every cloud together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CollectConfig {
    /// Calls to the clouds in flight at once, across every source and cloud.
    pub max_in_flight: u32,
}

impl Default for CollectConfig {
    fn default() -> Self {
        CollectConfig { max_in_flight: 32 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AzureConfig {
    /// Subscription ids; `"*"` means every subscription the credential can list.
    pub subscriptions: Vec<String>,
    /// Management group ids: every subscription under them, nested groups included.
    pub management_groups: Vec<String>,
    /// Azure Resource Manager endpoint; empty means the public cloud.
    pub endpoint_url: String,
    /// OAuth scope of the ARM token; empty means `<endpoint>/.default`.
    pub token_scope: String,
    /// Subscriptions collected at once.
    pub concurrency: u32,
    pub timeout_secs: u64,
    /// Seconds one source may take in all; past them it fails, naming what it waited for.
    pub deadline_secs: u64,
}

impl Default for AzureConfig {
    fn default() -> Self {
        AzureConfig {
            subscriptions: Vec::new(),
            management_groups: Vec::new(),
            endpoint_url: String::new(),
            token_scope: String::new(),
            concurrency: 8,
            timeout_secs: 30,
            deadline_secs: DEFAULT_DEADLINE_SECS,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GcpConfig {
    pub projects: Vec<String>,
    /// Folder ids (`folders/123` or `123`): every ACTIVE project under them, at any depth.
    pub folders: Vec<String>,
    /// Organization ids (`organizations/123` or `123`): every ACTIVE project in them.
    pub organizations: Vec<String>,
    pub endpoint_url: String,
    /// Resource Manager endpoint; empty means https://cloudresourcemanager.googleapis.com.
    pub resource_manager_endpoint_url: String,
    pub concurrency: u32,
    pub timeout_secs: u64,
    /// Seconds one source may take in all; past them it fails, naming what it waited for.
    pub deadline_secs: u64,
}

impl Default for GcpConfig {
    fn default() -> Self {
        GcpConfig {
            projects: Vec::new(),
            folders: Vec::new(),
            organizations: Vec::new(),
            endpoint_url: String::new(),
            resource_manager_endpoint_url: String::new(),
            concurrency: 8,
            timeout_secs: 30,
            deadline_secs: DEFAULT_DEADLINE_SECS,
        }
    }
}

/// How an apply rolls out: waves, health gates and when to stop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RolloutConfig {
    /// Members of one group replaced at once: `"10%"` of its desired capacity, or a count.
    pub max_unavailable: String,
    /// Standalone instances replaced at once, across the whole apply.
    pub max_parallel: u32,
    /// Seconds to wait between waves.
    pub pause_secs: u64,
    /// Failed replacements tolerated before the rollout stops starting new ones.
    pub max_failures: u32,
    /// Seconds one replacement may take to become healthy; longer is a failure.
    pub health_timeout_secs: u64,
    /// Seconds between health polls (it backs off from here, up to four times as long).
    pub poll_secs: u64,
    /// Whether a group in template drift gets a template step that points it at the golden
    /// image before its members roll; off, its members are left queued, not executable.
    pub update_templates: bool,
}

impl Default for RolloutConfig {
    fn default() -> Self {
        let settings = Settings::default();
        RolloutConfig {
            max_unavailable: settings.max_unavailable.to_string(),
            max_parallel: settings.max_parallel as u32,
            pause_secs: settings.pause.as_secs(),
            max_failures: settings.max_failures as u32,
            health_timeout_secs: settings.health_timeout.as_secs(),
            poll_secs: settings.poll.as_secs(),
            update_templates: settings.update_templates,
        }
    }
}

impl RolloutConfig {
    /// The rollout's settings: the config is checked on load, so every value here is in range.
    pub fn settings(&self) -> Settings {
        Settings {
            max_unavailable: MaxUnavailable::parse(&self.max_unavailable)
                .unwrap_or(Settings::default().max_unavailable),
            max_parallel: self.max_parallel.max(1) as usize,
            pause: Duration::from_secs(self.pause_secs),
            max_failures: self.max_failures as usize,
            health_timeout: Duration::from_secs(self.health_timeout_secs.max(1)),
            poll: Duration::from_secs(self.poll_secs.max(1)),
            update_templates: self.update_templates,
        }
    }
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    File(PathBuf),
    Env(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File(path) => write!(f, "file {}", path.display()),
            Origin::Env(var) => write!(f, "env {var}"),
        }
    }
}

/// A config problem, already worded for the user: names the file or variable, and where.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: Config,
    /// The file that was read, if any.
    pub path: Option<PathBuf>,
    /// Dotted key -> origin, for every key not left at its default.
    pub origins: BTreeMap<String, Origin>,
}

/// The platform's config file: `~/.config/fleetscope/config.toml` on Linux.
pub fn default_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "fleetscope").map(|d| d.config_dir().join("config.toml"))
}

/// Environment variables read apart from config keys.
const RESERVED_ENV: &[&str] = &["FLEETSCOPE_CONFIG", "FLEETSCOPE_LOG", "FLEETSCOPE_DATA_DIR"];

/// Loads the config. An explicit path must exist; the platform default may be absent.
pub fn load(
    explicit: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<LoadedConfig, ConfigError> {
    let (path, required) = match explicit {
        Some(path) => (Some(path.to_path_buf()), true),
        None => (default_path(), false),
    };
    let mut table = toml::Table::new();
    let mut origins = BTreeMap::new();
    let mut read_path = None;
    if let Some(path) = path {
        match crate::files::read_capped(&path, CONFIG_MAX_BYTES) {
            Ok(bytes) => {
                table = parse_file(&path, &bytes)?;
                for key in leaf_keys(&table) {
                    origins.insert(key, Origin::File(path.clone()));
                }
                read_path = Some(path);
            }
            Err(e) if e.is_not_found() && !required => {}
            Err(e @ crate::files::ReadError::TooBig { .. }) => {
                return Err(ConfigError(format!(
                    "{}: {e}, too big for a config file",
                    path.display()
                )));
            }
            Err(e) => {
                return Err(ConfigError(format!(
                    "{}: cannot read config: {e}",
                    path.display()
                )));
            }
        }
    }
    let defaults = toml::Table::try_from(Config::default())
        .map_err(|e| ConfigError(format!("built-in config: {e}")))?;
    let mut env: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with("FLEETSCOPE_") && !RESERVED_ENV.contains(&k.as_str()))
        .collect();
    env.sort();
    for (var, value) in env {
        let path = env_key(&defaults, &var)?;
        let default_value = lookup(&defaults, &path);
        let dotted = path.join(".");
        let value = match (env_value(default_value, &value), Bound::of(&dotted)) {
            // Before the type check below, which would only say the number does not fit.
            (Some(toml::Value::Integer(v)), Some(bound)) if !bound.admits(v) => {
                return Err(ConfigError(format!("{var}: {}", bound.refusal(v))));
            }
            (Some(parsed), _) => parsed,
            // Digits past what an integer holds are a number out of range, not a typo.
            (None, Some(bound)) if is_whole_number(&value) => {
                return Err(ConfigError(format!(
                    "{var}: {}",
                    bound.refusal(value.trim())
                )));
            }
            (None, _) => {
                return Err(ConfigError(format!(
                    "{var}: {value:?} is not a valid value"
                )));
            }
        };
        let (key, tables) = path
            .split_last()
            .expect("env_key gives a section and a key");
        let mut at = &mut table;
        for (depth, name) in tables.iter().enumerate() {
            let entry = at
                .entry(name.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let Some(inner) = entry.as_table_mut() else {
                return Err(ConfigError(format!(
                    "{var}: [{}] is not a table in the config file",
                    tables[..=depth].join(".")
                )));
            };
            at = inner;
        }
        at.insert(key.clone(), value);
        origins.insert(dotted, Origin::Env(var.clone()));
        // Check now, so a bad value is blamed on its variable rather than the file.
        Config::deserialize(table.clone())
            .map_err(|e| ConfigError(format!("{var}: {}", e.message())))?;
    }
    let config =
        Config::deserialize(table).map_err(|e| ConfigError(format!("config: {}", e.message())))?;
    // The file was checked as it was read; this checks what the environment changed.
    validate(&config).map_err(|(key, message)| match origins.get(key.as_str()) {
        Some(Origin::Env(var)) => ConfigError(format!("{var}: {message}")),
        Some(Origin::File(path)) => ConfigError(format!("{}: {message}", path.display())),
        _ => ConfigError(format!("config: {message}")),
    })?;
    Ok(LoadedConfig {
        config,
        path: read_path,
        origins,
    })
}

/// Parses and checks one config file's bytes; the error names the file, line and key.
pub fn parse_file(path: &Path, bytes: &[u8]) -> Result<toml::Table, ConfigError> {
    let name = path.display();
    let text = std::str::from_utf8(bytes)
        .map_err(|e| ConfigError(format!("{name}: not UTF-8 text (byte {})", e.valid_up_to())))?;
    if text.trim().is_empty() {
        return Err(ConfigError(format!(
            "{name}: the file is empty; a config starts with `version = {CONFIG_VERSION}`"
        )));
    }
    let located = |e: toml::de::Error| {
        let message = first_line(e.message());
        match e.span() {
            Some(span) => {
                let (line, column) = line_column(text, span.start);
                ConfigError(format!("{name}:{line}:{column}: {message}"))
            }
            None => ConfigError(format!("{name}: {message}")),
        }
    };
    let table: toml::Table = toml::from_str(text).map_err(located)?;
    match table.get("version") {
        None => {
            return Err(ConfigError(format!(
                "{name}: missing `version = {CONFIG_VERSION}` at the top"
            )));
        }
        Some(toml::Value::Integer(v)) if *v == i64::from(CONFIG_VERSION) => {}
        Some(other) => {
            return Err(ConfigError(format!(
                "{name}: config version {other} is not supported (this fleetscope reads version {CONFIG_VERSION})"
            )));
        }
    }
    if let Some((bound, refusal)) = out_of_bounds(&table) {
        return Err(match span_of(text, bound.key) {
            Some(offset) => {
                let (line, column) = line_column(text, offset);
                ConfigError(format!("{name}:{line}:{column}: {refusal}"))
            }
            None => ConfigError(format!("{name}: {refusal}")),
        });
    }
    // Deserialize the text, not the table, so unknown keys and bad types carry a line number.
    let config: Config = toml::from_str(text).map_err(located)?;
    validate(&config).map_err(|(_, e)| ConfigError(format!("{name}: {e}")))?;
    Ok(table)
}

/// Where the value of `section.key` starts in the text, for an error's line and column.
fn span_of(text: &str, dotted: &str) -> Option<usize> {
    let (section, key) = dotted.split_once('.')?;
    let document = toml::de::DeTable::parse(text).ok()?.into_inner();
    let value = toml::de::DeValue::Table(document);
    Some(value.get(section)?.get_ref().get(key)?.span().start)
}

/// An optional sign, then digits only.
fn is_whole_number(text: &str) -> bool {
    let text = text.trim();
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Checks the values serde cannot: regexes compile, numbers are in range, the rollout's share
/// parses. The error is the key it is about and the message, which names the key too.
fn validate(config: &Config) -> Result<(), (String, String)> {
    for (i, rule) in config.lineage.rules.iter().enumerate() {
        Regex::new(&rule.pattern).map_err(|e| {
            (
                "lineage.rules".to_owned(),
                format!("lineage.rules[{i}].pattern: {}", first_line(&e.to_string())),
            )
        })?;
    }
    trusted_owners(&config.policy.trusted_owners)
        .map_err(|message| ("policy.trusted_owners".to_owned(), message))?;
    let table =
        toml::Table::try_from(config).map_err(|e| ("config".to_owned(), format!("config: {e}")))?;
    if let Some((bound, refusal)) = out_of_bounds(&table) {
        return Err((bound.key.to_owned(), refusal));
    }
    MaxUnavailable::parse(&config.rollout.max_unavailable).map_err(|e| {
        (
            "rollout.max_unavailable".to_owned(),
            format!("rollout.max_unavailable: {e}"),
        )
    })?;
    Ok(())
}

/// The most entries `policy.trusted_owners` takes: an estate's owners are a handful.
pub const MAX_TRUSTED_OWNERS: usize = 1000;

/// Each entry of `policy.trusted_owners` is one owner: an account id, alias, publisher, image
/// project or gallery id, never empty and without spaces or commas (a list pasted as one).
fn trusted_owners(owners: &[String]) -> Result<(), String> {
    if owners.len() > MAX_TRUSTED_OWNERS {
        return Err(format!(
            "policy.trusted_owners has {} entries; at most {MAX_TRUSTED_OWNERS}",
            owners.len()
        ));
    }
    for (i, owner) in owners.iter().enumerate() {
        let problem = if owner.trim().is_empty() {
            "is empty"
        } else if owner.len() > 512 {
            "is longer than 512 characters"
        } else if owner.contains(|c: char| c.is_whitespace() || c == ',') {
            "holds a space or comma: give one owner per entry"
        } else {
            continue;
        };
        return Err(format!(
            "policy.trusted_owners[{i}] {problem} (an AWS account id, amazon, aws-marketplace, an Azure gallery id or publisher, a Google Cloud image project)"
        ));
    }
    Ok(())
}

fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `FLEETSCOPE_AWS_ENDPOINT_URL` -> `aws.endpoint_url`, and
/// `FLEETSCOPE_AWS_ORGANIZATION_ROLE_NAME` -> `aws.organization.role_name`: the path of a known
/// key, tables first.
fn env_key(defaults: &toml::Table, var: &str) -> Result<Vec<String>, ConfigError> {
    let rest = var.trim_start_matches("FLEETSCOPE_").to_ascii_lowercase();
    match key_path(defaults, &rest, 0) {
        Some(path) => Ok(path),
        None => Err(ConfigError(format!(
            "{var}: not a fleetscope setting (run `fleetscope config` to list them)"
        ))),
    }
}

/// The path of the leaf key `rest` spells below `table` (tables separated by `_`).
fn key_path(table: &toml::Table, rest: &str, depth: usize) -> Option<Vec<String>> {
    for (name, value) in table {
        match value.as_table() {
            // `policy.golden` is a map of the user's own names, not settings.
            Some(inner) if name != "golden" => {
                if let Some(below) = rest.strip_prefix(&format!("{name}_"))
                    && let Some(mut path) = key_path(inner, below, depth + 1)
                {
                    path.insert(0, name.clone());
                    return Some(path);
                }
            }
            Some(_) => {}
            None if depth > 0 && rest == name => return Some(vec![name.clone()]),
            None => {}
        }
    }
    None
}

fn lookup<'a>(table: &'a toml::Table, path: &[String]) -> Option<&'a toml::Value> {
    let (last, tables) = path.split_last()?;
    let mut at = table;
    for name in tables {
        at = at.get(name)?.as_table()?;
    }
    at.get(last)
}

/// Parses an environment value after the type of the key's default: lists are comma-separated.
fn env_value(default: Option<&toml::Value>, raw: &str) -> Option<toml::Value> {
    Some(match default {
        Some(toml::Value::Integer(_)) => toml::Value::Integer(raw.trim().parse().ok()?),
        Some(toml::Value::Boolean(_)) => toml::Value::Boolean(raw.trim().parse().ok()?),
        Some(toml::Value::Array(_)) => toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_owned()))
                .collect(),
        ),
        _ => toml::Value::String(raw.to_owned()),
    })
}

fn leaf_keys(table: &toml::Table) -> Vec<String> {
    let mut keys = Vec::new();
    for (key, value) in table {
        match value.as_table() {
            Some(inner) if key != "golden" => {
                keys.extend(leaf_keys(inner).into_iter().map(|k| format!("{key}.{k}")))
            }
            _ => keys.push(key.clone()),
        }
    }
    keys
}

impl LoadedConfig {
    /// The effective config as TOML, each value followed by where it came from.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        match &self.path {
            Some(path) => out.push_str(&format!("# config file: {}\n", path.display())),
            None => out.push_str(&format!(
                "# config file: none read (looked for {})\n",
                default_path().map_or("-".into(), |p| p.display().to_string())
            )),
        }
        let table = toml::Table::try_from(&self.config).unwrap_or_default();
        self.explain_table(&mut out, None, &table);
        out
    }

    /// A table's plain keys, then each of its sub-tables under its own header
    /// (`[aws]`, then `[aws.organization]`); `policy.golden` stays one inline map.
    fn explain_table(&self, out: &mut String, name: Option<&str>, table: &toml::Table) {
        let mut sections = Vec::new();
        for (key, value) in table {
            let dotted = name.map_or(key.clone(), |n| format!("{n}.{key}"));
            match value.as_table() {
                Some(inner) if key != "golden" => sections.push((dotted, inner)),
                _ => out.push_str(&self.line(&dotted, key, value)),
            }
        }
        for (dotted, inner) in sections {
            out.push_str(&format!("\n[{dotted}]\n"));
            self.explain_table(out, Some(&dotted), inner);
        }
    }

    fn line(&self, dotted: &str, key: &str, value: &toml::Value) -> String {
        let origin = self.origins.get(dotted).cloned().unwrap_or(Origin::Default);
        let rendered = match value {
            toml::Value::Table(t) => {
                let inline: Vec<String> = t.iter().map(|(k, v)| format!("{k:?} = {v}")).collect();
                format!("{{ {} }}", inline.join(", "))
            }
            other => other.to_string(),
        };
        format!("{key} = {rendered}  # {origin}\n")
    }

    pub fn lineage_rules(&self) -> Result<LineageRules, ConfigError> {
        let lineage = &self.config.lineage;
        let name_rules = lineage
            .rules
            .iter()
            .map(|rule| {
                Ok(NameRule {
                    pattern: Regex::new(&rule.pattern).map_err(|e| {
                        ConfigError(format!("lineage rule {:?}: {e}", rule.pattern))
                    })?,
                    lineage: rule.lineage.clone(),
                })
            })
            .collect::<Result<_, ConfigError>>()?;
        Ok(LineageRules {
            tag: Some(lineage.tag.clone()).filter(|t| !t.is_empty()),
            name_rules,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str, env: &[(&str, &str)]) -> Result<LoadedConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        load(
            Some(&path),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn gcp_folders_and_organizations_are_named_as_resource_manager_names_them() {
        let gcp = GcpConfig {
            folders: vec![
                "123".into(),
                "folders/123".into(),
                " 77 ".into(),
                String::new(),
            ],
            organizations: vec!["organizations/456".into(), "456".into()],
            ..GcpConfig::default()
        };
        assert_eq!(
            gcp.scopes(),
            ["folders/123", "folders/77", "organizations/456"]
        );
        assert!(gcp.any());
    }

    #[test]
    fn embedded_defaults_match_code_defaults() {
        let parsed: Config = toml::from_str(DEFAULT_CONFIG).unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn every_number_has_a_bound_its_default_keeps() {
        let defaults = toml::Table::try_from(Config::default()).unwrap();
        let mut numbers = Vec::new();
        for (section, keys) in &defaults {
            for (key, value) in keys.as_table().into_iter().flatten() {
                if let toml::Value::Integer(v) = value {
                    numbers.push((format!("{section}.{key}"), *v));
                }
            }
        }
        for (key, default) in &numbers {
            let bound = Bound::of(key).unwrap_or_else(|| panic!("{key} has no bound"));
            assert!(bound.admits(*default), "{key}'s default {default}");
        }
        let keys: Vec<&str> = numbers.iter().map(|(k, _)| k.as_str()).collect();
        for bound in BOUNDS {
            assert!(keys.contains(&bound.key), "{} is not a number", bound.key);
        }
    }

    #[test]
    fn file_then_env_with_origins() {
        let loaded = load_text(
            "version = 1\n[policy]\nmax_image_age_days = 7\n[aws]\nprofiles = [\"prod\"]\n",
            &[
                ("FLEETSCOPE_AWS_REGIONS", "us-east-1, eu-west-1"),
                ("FLEETSCOPE_POLICY_MAX_IMAGE_AGE_DAYS", "3"),
            ],
        )
        .unwrap();
        assert_eq!(loaded.config.policy.max_image_age_days, 3);
        assert_eq!(loaded.config.aws.profiles, ["prod"]);
        assert_eq!(loaded.config.aws.regions, ["us-east-1", "eu-west-1"]);
        assert_eq!(
            loaded.origins["policy.max_image_age_days"],
            Origin::Env("FLEETSCOPE_POLICY_MAX_IMAGE_AGE_DAYS".into())
        );
        assert!(matches!(loaded.origins["aws.profiles"], Origin::File(_)));
        let explained = loaded.explain();
        assert!(
            explained.contains("max_instance_age_days = 30  # default"),
            "{explained}"
        );
        assert!(
            explained
                .contains("regions = [\"us-east-1\", \"eu-west-1\"]  # env FLEETSCOPE_AWS_REGIONS"),
            "{explained}"
        );
    }

    #[test]
    fn nested_tables_take_env_overrides_and_show_their_origins() {
        let loaded = load_text(
            "version = 1\n[aws.organization]\nenabled = true\ninclude = [\"ou-ab12-cdef3456\"]\n",
            &[
                ("FLEETSCOPE_AWS_ORGANIZATION_ROLE_NAME", "FleetscopeRead"),
                (
                    "FLEETSCOPE_AWS_ORGANIZATION_EXCLUDE",
                    "111122223333,444455556666",
                ),
                ("FLEETSCOPE_COLLECT_MAX_IN_FLIGHT", "12"),
            ],
        )
        .unwrap();
        let org = &loaded.config.aws.organization;
        assert!(org.enabled);
        assert_eq!(org.role_name, "FleetscopeRead");
        assert_eq!(org.exclude, ["111122223333", "444455556666"]);
        assert_eq!(org.include, ["ou-ab12-cdef3456"]);
        assert_eq!(org.session_name, "fleetscope");
        assert_eq!(loaded.config.collect.max_in_flight, 12);
        let explained = loaded.explain();
        let section = &explained[explained.find("[aws.organization]").expect("a section")..];
        assert!(section.contains("enabled = true  # file"), "{explained}");
        assert!(
            section.contains(
                "role_name = \"FleetscopeRead\"  # env FLEETSCOPE_AWS_ORGANIZATION_ROLE_NAME"
            ),
            "{explained}"
        );
        assert!(section.contains("session_name = \"fleetscope\"  # default"));
        // A table is not a key, and the bound holds for the new section too.
        let table = load_text("version = 1\n", &[("FLEETSCOPE_AWS_ORGANIZATION", "x")]);
        assert!(table.is_err());
        let Err(error) = load_text(
            "version = 1\n",
            &[("FLEETSCOPE_COLLECT_MAX_IN_FLIGHT", "0")],
        ) else {
            panic!("0 calls at once was taken");
        };
        assert!(
            error.0.contains("FLEETSCOPE_COLLECT_MAX_IN_FLIGHT"),
            "{}",
            error.0
        );
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let cases: [(&str, &str); 6] = [
            (
                "version = 1\n[policy]\nmax_age = 3\n",
                ":3:1: unknown field `max_age`",
            ),
            (
                "version = 1\n[policy]\nmax_image_age_days = \"x\"\n",
                ":3:22: invalid type",
            ),
            ("version = 1\n[policy\n", ":2:"),
            ("", "the file is empty"),
            ("version = 2\n", "config version 2 is not supported"),
            ("[policy]\n", "missing `version = 1`"),
        ];
        for (text, want) in cases {
            let err = load_text(text, &[]).unwrap_err().to_string();
            assert!(err.contains("config.toml"), "{err}");
            assert!(err.contains(want), "{text:?}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn bad_env_names_the_variable() {
        let err = load_text(
            "version = 1\n",
            &[("FLEETSCOPE_POLICY_MAX_IMAGE_AGE_DAYS", "soon")],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("FLEETSCOPE_POLICY_MAX_IMAGE_AGE_DAYS"),
            "{err}"
        );
        let err = load_text("version = 1\n", &[("FLEETSCOPE_NOPE", "1")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a fleetscope setting"), "{err}");
    }

    #[test]
    fn bad_regex_is_reported() {
        let err = load_text(
            "version = 1\n[[lineage.rules]]\npattern = \"(\"\nlineage = \"x\"\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("lineage.rules[0].pattern"), "{err}");
    }

    #[test]
    fn deadlines_are_bounded() {
        for text in [
            "version = 1\n[aws]\ndeadline_secs = 0\n",
            "version = 1\n[gcp]\ndeadline_secs = 86401\n",
        ] {
            let err = load_text(text, &[]).unwrap_err().to_string();
            assert!(
                err.contains("deadline_secs must be from 1 to 86400 seconds"),
                "{err}"
            );
        }
        let loaded = load_text("version = 1\n[azure]\ndeadline_secs = 600\n", &[]).unwrap();
        assert_eq!(loaded.config.azure.deadline_secs, 600);
        assert_eq!(loaded.config.aws.deadline_secs, DEFAULT_DEADLINE_SECS);
    }

    #[test]
    fn trusted_owners_are_checked_and_show_their_origin() {
        let loaded = load_text(
            "version = 1\n[policy]\ntrusted_owners = [\"amazon\", \"debian-cloud\"]\n",
            &[],
        )
        .unwrap();
        assert_eq!(
            loaded.config.policy.trusted_owners,
            ["amazon", "debian-cloud"]
        );
        let explained = loaded.explain();
        assert!(
            explained.contains("trusted_owners = [\"amazon\", \"debian-cloud\"]  # file "),
            "{explained}"
        );
        let loaded = load_text(
            "version = 1\n",
            &[("FLEETSCOPE_POLICY_TRUSTED_OWNERS", "123456789012,canonical")],
        )
        .unwrap();
        assert!(
            loaded.explain().contains(
                "trusted_owners = [\"123456789012\", \"canonical\"]  # env FLEETSCOPE_POLICY_TRUSTED_OWNERS"
            ),
            "{}",
            loaded.explain()
        );
        assert!(Config::default().policy.trusted_owners.is_empty());
        assert!(
            load_text("version = 1\n", &[])
                .unwrap()
                .explain()
                .contains("trusted_owners = []  # default")
        );
        for (text, want) in [
            (
                "version = 1\n[policy]\ntrusted_owners = [\"amazon\", \"\"]\n",
                "policy.trusted_owners[1] is empty",
            ),
            (
                "version = 1\n[policy]\ntrusted_owners = [\"amazon, canonical\"]\n",
                "policy.trusted_owners[0] holds a space or comma",
            ),
            (
                "version = 1\n[policy]\ntrusted_owners = \"amazon\"\n",
                "invalid type",
            ),
        ] {
            let err = load_text(text, &[]).unwrap_err().to_string();
            assert!(err.contains("config.toml"), "{err}");
            assert!(err.contains(want), "{text:?}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let err = load(Some(Path::new("/nonexistent/fleetscope.toml")), Vec::new()).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/fleetscope.toml"));
    }
}
