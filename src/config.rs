//! Layered configuration: built-in defaults, then the TOML file, then `FLEETSCOPE_*` environment
//! variables. Every value remembers where it came from, for `fleetscope config`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::core::lineage::{LineageRules, NameRule};
use crate::core::policy::PolicyConfig;

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
    pub rollout: RolloutConfig,
    pub ui: UiConfig,
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
            rollout: RolloutConfig::default(),
            ui: UiConfig::default(),
        }
    }
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
            confirm_queue_over: crate::views::tui::app::DEFAULT_CONFIRM_QUEUE_OVER,
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
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AzureConfig {
    /// Subscription ids; `"*"` means every subscription the credential can list.
    pub subscriptions: Vec<String>,
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
    pub endpoint_url: String,
    pub concurrency: u32,
    pub timeout_secs: u64,
    /// Seconds one source may take in all; past them it fails, naming what it waited for.
    pub deadline_secs: u64,
}

impl Default for GcpConfig {
    fn default() -> Self {
        GcpConfig {
            projects: Vec::new(),
            endpoint_url: String::new(),
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
}

impl Default for RolloutConfig {
    fn default() -> Self {
        RolloutConfig {
            max_unavailable: "10%".into(),
            max_parallel: 5,
            pause_secs: 0,
            max_failures: 0,
            health_timeout_secs: 900,
            poll_secs: 10,
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
        match std::fs::read(&path) {
            Ok(bytes) => {
                table = parse_file(&path, &bytes)?;
                for key in leaf_keys(&table) {
                    origins.insert(key, Origin::File(path.clone()));
                }
                read_path = Some(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {}
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
        let (section, key) = env_key(&defaults, &var)?;
        let default_value = defaults
            .get(&section)
            .and_then(|s| s.as_table())
            .and_then(|s| s.get(&key));
        let value = env_value(default_value, &value)
            .ok_or_else(|| ConfigError(format!("{var}: {value:?} is not a valid value")))?;
        let section_table = table
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let Some(section_table) = section_table.as_table_mut() else {
            return Err(ConfigError(format!(
                "{var}: [{section}] is not a table in the config file"
            )));
        };
        section_table.insert(key.clone(), value);
        origins.insert(format!("{section}.{key}"), Origin::Env(var.clone()));
        // Check now, so a bad value is blamed on its variable rather than the file.
        Config::deserialize(table.clone())
            .map_err(|e| ConfigError(format!("{var}: {}", e.message())))?;
    }
    let config =
        Config::deserialize(table).map_err(|e| ConfigError(format!("config: {}", e.message())))?;
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
    // Deserialize the text, not the table, so unknown keys and bad types carry a line number.
    let config: Config = toml::from_str(text).map_err(located)?;
    validate(&config).map_err(|e| ConfigError(format!("{name}: {e}")))?;
    Ok(table)
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Checks the values serde cannot: regexes compile, numbers are in range.
fn validate(config: &Config) -> Result<(), String> {
    for (i, rule) in config.lineage.rules.iter().enumerate() {
        Regex::new(&rule.pattern)
            .map_err(|e| format!("lineage.rules[{i}].pattern: {}", first_line(&e.to_string())))?;
    }
    if config.aws.concurrency == 0 {
        return Err("aws.concurrency must be at least 1".into());
    }
    if config.azure.concurrency == 0 {
        return Err("azure.concurrency must be at least 1".into());
    }
    if config.gcp.concurrency == 0 {
        return Err("gcp.concurrency must be at least 1".into());
    }
    for (cloud, deadline) in [
        ("aws", config.aws.deadline_secs),
        ("azure", config.azure.deadline_secs),
        ("gcp", config.gcp.deadline_secs),
    ] {
        if !(1..=MAX_DEADLINE_SECS).contains(&deadline) {
            return Err(format!(
                "{cloud}.deadline_secs must be between 1 and {MAX_DEADLINE_SECS}"
            ));
        }
    }
    crate::queue::rollout::MaxUnavailable::parse(&config.rollout.max_unavailable)
        .map_err(|e| format!("rollout.max_unavailable: {e}"))?;
    if config.rollout.max_parallel == 0 {
        return Err("rollout.max_parallel must be at least 1".into());
    }
    if config.rollout.health_timeout_secs == 0 || config.rollout.poll_secs == 0 {
        return Err("rollout.health_timeout_secs and rollout.poll_secs must be at least 1".into());
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

/// `FLEETSCOPE_AWS_ENDPOINT_URL` -> (`aws`, `endpoint_url`), checked against the known keys.
fn env_key(defaults: &toml::Table, var: &str) -> Result<(String, String), ConfigError> {
    let rest = var.trim_start_matches("FLEETSCOPE_").to_ascii_lowercase();
    for (section, value) in defaults {
        let Some(keys) = value.as_table() else {
            continue;
        };
        if let Some(key) = rest.strip_prefix(&format!("{section}_"))
            && keys.contains_key(key)
            && !keys[key].is_table()
        {
            return Ok((section.clone(), key.to_owned()));
        }
    }
    Err(ConfigError(format!(
        "{var}: not a fleetscope setting (run `fleetscope config` to list them)"
    )))
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
        let mut sections = Vec::new();
        for (key, value) in &table {
            if value.is_table() {
                sections.push((key, value));
            } else {
                out.push_str(&self.line(key, key, value));
            }
        }
        for (section, value) in sections {
            out.push_str(&format!("\n[{section}]\n"));
            for (key, value) in value.as_table().into_iter().flatten() {
                let dotted = format!("{section}.{key}");
                out.push_str(&self.line(&dotted, key, value));
            }
        }
        out
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
    fn embedded_defaults_match_code_defaults() {
        let parsed: Config = toml::from_str(DEFAULT_CONFIG).unwrap();
        assert_eq!(parsed, Config::default());
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
                err.contains("deadline_secs must be between 1 and 86400"),
                "{err}"
            );
        }
        let loaded = load_text("version = 1\n[azure]\ndeadline_secs = 600\n", &[]).unwrap();
        assert_eq!(loaded.config.azure.deadline_secs, 600);
        assert_eq!(loaded.config.aws.deadline_secs, DEFAULT_DEADLINE_SECS);
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let err = load(Some(Path::new("/nonexistent/fleetscope.toml")), Vec::new()).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/fleetscope.toml"));
    }
}
