//! The `/` filter language: whitespace-separated terms, all of which must match.
//!
//! - `web` free text: any of the row's text fields contains it (case-insensitive); for
//!   instances that includes the image's name and key (AMI id, self-link, Azure id), the
//!   lineage, IP addresses and DNS names;
//! - `field:value` one field contains the value; `*` in the value makes it a whole-value glob
//!   (`lineage:web*`; a lineage also answers by its name without the owner in front);
//! - `field:a,b` any of several values (`verdict:outdated,stale`);
//! - closed fields (`cloud`, `verdict`, `state`) take only their known values, or a prefix of
//!   one; `verdict:>=outdated` compares by severity;
//! - `age:>30`, `uptime:<=7`, `behind:>2`, `accounts:>1`: numeric fields compare with `>`, `>=`,
//!   `<`, `<=`, `=`;
//! - `ip:10.0.3.17` one address, `ip:10.0.3.0/24` a network, `ip:internal` a DNS name part;
//! - `tag:key` or `tag:key=value` on the instance's (or image's) tags;
//! - `exposed`, `long-lived`, `untrusted-source`: the instance's findings, as bare words;
//! - `drift`, `skew`: a group's template drift and version skew (the Drift view), as bare words;
//! - `failed`, `blocked`: a queue entry's state (the Queue view), as bare words;
//! - `!term` negates any term.

use std::net::IpAddr;

use crate::core::model::{Cloud, Tags};
use crate::core::policy::Verdict;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Cloud,
    Account,
    Region,
    Zone,
    Name,
    Id,
    Image,
    Lineage,
    Group,
    Verdict,
    State,
    Type,
    Source,
    Strategy,
    Tag,
    Ip,
    Age,
    Uptime,
    Behind,
    /// How many accounts (subscriptions, projects) run an image.
    Accounts,
    /// Bare-word findings: they take no value.
    Exposed,
    LongLived,
    /// The image comes from an owner `policy.trusted_owners` does not name.
    UntrustedSource,
    /// A group's template launches an image other than the golden one.
    Drift,
    /// A group's members run more than one image.
    Skew,
    /// A queue entry whose last attempt failed (this screen's apply, or the journal's).
    Failed,
    /// A queue entry that is not executable: its STEP says blocked.
    Blocked,
}

/// Instance states as the clouds report them (lowercased): AWS, Azure power states, GCP;
/// `unknown` when a cloud reported none.
const STATES: &[&str] = &[
    "pending",
    "running",
    "stopping",
    "stopped",
    "shutting-down",
    "terminated",
    "starting",
    "deallocating",
    "deallocated",
    "provisioning",
    "staging",
    "suspending",
    "suspended",
    "repairing",
    "unknown",
];

impl Field {
    pub const ALL: [Field; 27] = [
        Field::Cloud,
        Field::Account,
        Field::Region,
        Field::Zone,
        Field::Name,
        Field::Id,
        Field::Image,
        Field::Lineage,
        Field::Group,
        Field::Verdict,
        Field::State,
        Field::Type,
        Field::Source,
        Field::Strategy,
        Field::Tag,
        Field::Ip,
        Field::Age,
        Field::Uptime,
        Field::Behind,
        Field::Accounts,
        Field::Exposed,
        Field::LongLived,
        Field::UntrustedSource,
        Field::Drift,
        Field::Skew,
        Field::Failed,
        Field::Blocked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Field::Cloud => "cloud",
            Field::Account => "account",
            Field::Region => "region",
            Field::Zone => "zone",
            Field::Name => "name",
            Field::Id => "id",
            Field::Image => "image",
            Field::Lineage => "lineage",
            Field::Group => "group",
            Field::Verdict => "verdict",
            Field::State => "state",
            Field::Type => "type",
            Field::Source => "source",
            Field::Strategy => "strategy",
            Field::Tag => "tag",
            Field::Ip => "ip",
            Field::Age => "age",
            Field::Uptime => "uptime",
            Field::Behind => "behind",
            Field::Accounts => "accounts",
            Field::Exposed => "exposed",
            Field::LongLived => "long-lived",
            Field::UntrustedSource => "untrusted-source",
            Field::Drift => "drift",
            Field::Skew => "skew",
            Field::Failed => "failed",
            Field::Blocked => "blocked",
        }
    }

    /// One term using the field, for the help; every one of them matches rows of the demo.
    pub fn example(self) -> &'static str {
        match self {
            Field::Cloud => "cloud:aws,gcp",
            Field::Account => "account:acme",
            Field::Region => "region:eu-west-1",
            Field::Zone => "zone:us-east-1a",
            Field::Name => "name:web",
            Field::Id => "id:i-0",
            Field::Image => "image:web-1.",
            Field::Lineage => "lineage:web*",
            Field::Group => "group:api-prd",
            Field::Verdict => "verdict:>=outdated",
            Field::State => "state:stopped",
            Field::Type => "type:m6i",
            Field::Source => "source:aws:prod",
            Field::Strategy => "strategy:asg",
            Field::Tag => "tag:env=prd",
            Field::Ip => "ip:10.0.0.0/8",
            Field::Age => "age:>30",
            Field::Uptime => "uptime:<=7",
            Field::Behind => "behind:>2",
            Field::Accounts => "accounts:>1",
            Field::Exposed => "exposed",
            Field::LongLived => "long-lived",
            Field::UntrustedSource => "untrusted-source",
            Field::Drift => "drift",
            Field::Skew => "skew",
            Field::Failed => "failed",
            Field::Blocked => "blocked",
        }
    }

    /// What the field means, for the help.
    pub fn meaning(self) -> &'static str {
        match self {
            Field::Cloud => "aws, azure or gcp",
            Field::Account => "AWS account, Azure subscription, GCP project",
            Field::Region => "region",
            Field::Zone => "availability zone",
            Field::Name => "name",
            Field::Id => "the cloud's id",
            Field::Image => "image name or key (AMI id, self-link, Azure id)",
            Field::Lineage => "lineage, with or without its owner",
            Field::Group => "ASG, scale set or MIG",
            Field::Verdict => "flagged, unknown, outdated, stale, current; >=, <= by severity",
            Field::State => "running, stopped, …",
            Field::Type => "instance type or size",
            Field::Source => "the source that reported it",
            Field::Strategy => "how it would be replaced",
            Field::Tag => "tag key, or key=value",
            Field::Ip => "an address, a network (CIDR) or part of a DNS name",
            Field::Age => "image age in days",
            Field::Uptime => "days since launch",
            Field::Behind => "newer images in its lineage",
            Field::Accounts => "accounts (subscriptions, projects) running it",
            Field::Exposed => "has a network exposure finding",
            Field::LongLived => "launched longer ago than the configured limit",
            Field::UntrustedSource => "image from an owner policy.trusted_owners does not name",
            Field::Drift => {
                "a group in template drift: its template launches an image other than the golden one"
            }
            Field::Skew => "a group with version skew: its members run more than one image",
            Field::Failed => "its last attempt failed (this apply, or as the journal tells)",
            Field::Blocked => "not executable: STEP says blocked, REASON why",
        }
    }

    fn numeric(self) -> bool {
        matches!(
            self,
            Field::Age | Field::Uptime | Field::Behind | Field::Accounts
        )
    }

    /// A bare word that takes no value (`exposed`, `drift`, `failed`).
    pub fn is_flag(self) -> bool {
        matches!(
            self,
            Field::Exposed
                | Field::LongLived
                | Field::UntrustedSource
                | Field::Drift
                | Field::Skew
                | Field::Failed
                | Field::Blocked
        )
    }

    /// The only values a closed field takes, lowercase.
    fn closed_values(self) -> Option<Vec<&'static str>> {
        match self {
            Field::Cloud => Some(Cloud::ALL.iter().map(|c| c.as_str()).collect()),
            Field::Verdict => Some(Verdict::BY_SEVERITY.iter().map(|v| v.as_str()).collect()),
            Field::State => Some(STATES.to_vec()),
            _ => None,
        }
    }
}

/// What a filterable row offers. Fields a row does not have answer `None` and never match.
pub trait Subject {
    /// The fields free text is looked for in.
    fn free_text_fields(&self) -> &'static [Field];
    fn text(&self, field: Field) -> Option<&str>;
    /// Whether `check` holds for any of the field's values: fields with several (an image's
    /// name and key, an instance's addresses) override this.
    fn any_text(&self, field: Field, check: &mut dyn FnMut(&str) -> bool) -> bool {
        self.text(field).is_some_and(check)
    }
    /// For `age`, `uptime` (days), `behind` (images) and `accounts`.
    fn number(&self, _field: Field) -> Option<i64> {
        None
    }
    /// For the bare-word findings.
    fn flag(&self, _field: Field) -> Option<bool> {
        None
    }
    fn tags(&self) -> Option<&Tags> {
        None
    }
    /// Whether any free-text field contains `needle` (already lowercase), for subjects that
    /// can tell faster than field by field; `None` falls back to the fields.
    fn contains_anywhere(&self, _needle: &str) -> Option<bool> {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    Less,
    LessOrEqual,
    Equal,
    GreaterOrEqual,
    Greater,
}

const COMPARISONS: [(&str, Comparison); 5] = [
    (">=", Comparison::GreaterOrEqual),
    ("<=", Comparison::LessOrEqual),
    (">", Comparison::Greater),
    ("<", Comparison::Less),
    ("=", Comparison::Equal),
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Matcher {
    /// Lowercased needle, found anywhere.
    Contains(String),
    /// Lowercased pattern with `*`, matching the whole value.
    Glob(String),
    /// A closed field's values, lowercase; the whole value must be one of them.
    OneOf(Vec<&'static str>),
    Address(IpAddr),
    Network(IpAddr, u8),
    Number(Comparison, i64),
    Tag {
        key: Box<Matcher>,
        value: Option<Box<Matcher>>,
    },
    Flag,
    /// Several values given with commas: any of them.
    Any(Vec<Matcher>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    negate: bool,
    field: Option<Field>,
    matcher: Matcher,
}

/// A parsed filter; the empty query matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    terms: Vec<Term>,
}

impl Query {
    /// Parses `text`, accepting only the fields in `allowed` (each view offers its own).
    pub fn parse(text: &str, allowed: &[Field]) -> Result<Query, String> {
        let mut terms = Vec::new();
        for word in text.split_whitespace() {
            let (negate, word) = match word.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, word),
            };
            if word.is_empty() {
                continue;
            }
            let flag = allowed
                .iter()
                .copied()
                .find(|f| f.is_flag() && f.as_str().eq_ignore_ascii_case(word));
            let term = match (flag, word.split_once(':')) {
                (Some(field), _) => Term {
                    negate,
                    field: Some(field),
                    matcher: Matcher::Flag,
                },
                (None, Some((name, value))) => {
                    let field = Field::ALL
                        .into_iter()
                        .find(|f| f.as_str().eq_ignore_ascii_case(name))
                        .ok_or_else(|| {
                            format!("unknown field {name:?}; try {}", field_names(allowed))
                        })?;
                    if !allowed.contains(&field) {
                        return Err(format!(
                            "{name}: not a field here; try {}",
                            field_names(allowed)
                        ));
                    }
                    if field.is_flag() {
                        return Err(format!("{name} takes no value: write {name}"));
                    }
                    Term {
                        negate,
                        field: Some(field),
                        matcher: field_matcher(field, value)?,
                    }
                }
                (None, None) => Term {
                    negate,
                    field: None,
                    matcher: text_matcher(word),
                },
            };
            terms.push(term);
        }
        Ok(Query { terms })
    }

    /// The terms on fields `on` accepts, and the rest (free text always among the rest).
    pub fn split(&self, on: impl Fn(Field) -> bool) -> (Query, Query) {
        let (taken, rest) = self
            .terms
            .iter()
            .cloned()
            .partition(|term| term.field.is_some_and(&on));
        (Query { terms: taken }, Query { terms: rest })
    }

    /// The lowercase needles of the plain free-text terms (not globs, not field terms).
    pub fn free_text_needles(&self) -> impl Iterator<Item = &str> {
        self.terms
            .iter()
            .filter_map(|term| match (&term.field, &term.matcher) {
                (None, Matcher::Contains(needle)) => Some(needle.as_str()),
                _ => None,
            })
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    pub fn matches(&self, subject: &impl Subject) -> bool {
        self.terms.iter().all(|term| term.matches(subject))
    }
}

fn field_names(fields: &[Field]) -> String {
    let names: Vec<&str> = fields.iter().map(|f| f.as_str()).collect();
    names.join(", ")
}

fn text_matcher(value: &str) -> Matcher {
    let lower = value.to_lowercase();
    if lower.contains('*') {
        Matcher::Glob(lower)
    } else {
        Matcher::Contains(lower)
    }
}

fn field_matcher(field: Field, value: &str) -> Result<Matcher, String> {
    let name = field.as_str();
    if value.is_empty() {
        return Err(format!("{name}: needs a value (try {})", field.example()));
    }
    if field == Field::Tag {
        return Ok(match value.split_once('=') {
            Some((key, value)) => Matcher::Tag {
                key: Box::new(text_matcher(key)),
                value: Some(Box::new(text_matcher(value))),
            },
            None => Matcher::Tag {
                key: Box::new(text_matcher(value)),
                value: None,
            },
        });
    }
    let mut any = Vec::new();
    for one in value.split(',') {
        if one.is_empty() {
            return Err(format!(
                "{name}: an empty value between commas (try {})",
                field.example()
            ));
        }
        any.push(value_matcher(field, one)?);
    }
    Ok(if any.len() == 1 {
        any.remove(0)
    } else {
        Matcher::Any(any)
    })
}

fn value_matcher(field: Field, value: &str) -> Result<Matcher, String> {
    let name = field.as_str();
    if let Some(allowed) = field.closed_values() {
        return closed_matcher(field, &allowed, value);
    }
    if field == Field::Ip {
        return ip_matcher(value);
    }
    if !field.numeric() {
        return Ok(text_matcher(value));
    }
    let (comparison, number) = split_comparison(value).unwrap_or((Comparison::Equal, value));
    let number = number.strip_suffix('d').unwrap_or(number);
    let unit = match field {
        Field::Behind => "number of images",
        Field::Accounts => "number of accounts",
        _ => "number of days",
    };
    let count = number.parse::<i64>().map_err(|_| {
        format!(
            "{name}: {value:?} is not a {unit} (try {})",
            field.example()
        )
    })?;
    Ok(Matcher::Number(comparison, count))
}

fn split_comparison(value: &str) -> Option<(Comparison, &str)> {
    COMPARISONS
        .into_iter()
        .find_map(|(prefix, c)| value.strip_prefix(prefix).map(|rest| (c, rest)))
}

/// A closed field's value: one of `allowed`, a prefix of some (`verdict:out`), a glob, or for
/// verdicts a comparison by severity (`verdict:>=outdated`).
fn closed_matcher(field: Field, allowed: &[&'static str], value: &str) -> Result<Matcher, String> {
    let name = field.as_str();
    let lower = value.to_lowercase();
    let bad = || format!("{name}: {value:?} is not one of {}", allowed.join(", "));
    if let Some((comparison, rest)) = split_comparison(&lower) {
        let pivot = (field == Field::Verdict)
            .then(|| Verdict::parse(rest))
            .flatten()
            .ok_or_else(|| {
                if field == Field::Verdict {
                    bad()
                } else {
                    format!("{name}: only verdict compares (try verdict:>=outdated)")
                }
            })?;
        let chosen = Verdict::BY_SEVERITY
            .into_iter()
            .filter(|v| compare(*v as i64, comparison, pivot as i64))
            .map(Verdict::as_str)
            .collect();
        return Ok(Matcher::OneOf(chosen));
    }
    let chosen: Vec<&'static str> = if lower.contains('*') {
        allowed
            .iter()
            .copied()
            .filter(|a| glob_ignore_case(lower.as_bytes(), a.as_bytes()))
            .collect()
    } else {
        allowed
            .iter()
            .copied()
            .filter(|a| a.starts_with(lower.as_str()))
            .collect()
    };
    if chosen.is_empty() {
        return Err(bad());
    }
    Ok(Matcher::OneOf(chosen))
}

/// An address, a network in CIDR notation, or else part of a DNS name.
fn ip_matcher(value: &str) -> Result<Matcher, String> {
    if let Some((address, bits)) = value.split_once('/') {
        let bad = || format!("ip: {value:?} is not a network (try ip:10.0.3.0/24)");
        let address: IpAddr = address.parse().map_err(|_| bad())?;
        let bits: u8 = bits.parse().map_err(|_| bad())?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        if bits > max {
            return Err(bad());
        }
        return Ok(Matcher::Network(address, bits));
    }
    Ok(match value.parse::<IpAddr>() {
        Ok(address) => Matcher::Address(address),
        Err(_) => text_matcher(value),
    })
}

fn in_network(address: IpAddr, network: IpAddr, bits: u8) -> bool {
    match (address, network) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

impl Term {
    fn matches(&self, subject: &impl Subject) -> bool {
        let hit = match (self.field, &self.matcher) {
            (_, Matcher::Tag { key, value }) => subject.tags().is_some_and(|tags| {
                tags.iter().any(|(k, v)| {
                    key.matches_text(k) && value.as_ref().is_none_or(|m| m.matches_text(v))
                })
            }),
            (Some(field), Matcher::Flag) => subject.flag(field).unwrap_or(false),
            (Some(field), matcher) if field.numeric() => subject
                .number(field)
                .is_some_and(|n| matcher.matches_number(n)),
            (Some(field), matcher) => {
                subject.any_text(field, &mut |text| matcher.matches_text(text))
            }
            (None, Matcher::Contains(needle)) => {
                subject.contains_anywhere(needle).unwrap_or_else(|| {
                    subject
                        .free_text_fields()
                        .iter()
                        .any(|&f| subject.any_text(f, &mut |t| contains_ignore_case(t, needle)))
                })
            }
            (None, matcher) => subject
                .free_text_fields()
                .iter()
                .any(|&f| subject.any_text(f, &mut |t| matcher.matches_text(t))),
        };
        hit != self.negate
    }
}

fn compare(n: i64, comparison: Comparison, than: i64) -> bool {
    match comparison {
        Comparison::Less => n < than,
        Comparison::LessOrEqual => n <= than,
        Comparison::Equal => n == than,
        Comparison::GreaterOrEqual => n >= than,
        Comparison::Greater => n > than,
    }
}

impl Matcher {
    fn matches_text(&self, text: &str) -> bool {
        match self {
            Matcher::Contains(needle) => contains_ignore_case(text, needle),
            Matcher::Glob(pattern) => glob_ignore_case(pattern.as_bytes(), text.as_bytes()),
            Matcher::OneOf(values) => values.iter().any(|v| v.eq_ignore_ascii_case(text)),
            Matcher::Address(address) => text.parse::<IpAddr>().is_ok_and(|a| a == *address),
            Matcher::Network(network, bits) => text
                .parse::<IpAddr>()
                .is_ok_and(|a| in_network(a, *network, *bits)),
            Matcher::Any(any) => any.iter().any(|m| m.matches_text(text)),
            Matcher::Number(..) | Matcher::Tag { .. } | Matcher::Flag => false,
        }
    }

    fn matches_number(&self, n: i64) -> bool {
        match self {
            Matcher::Number(comparison, than) => compare(n, *comparison, *than),
            Matcher::Any(any) => any.iter().any(|m| m.matches_number(n)),
            _ => false,
        }
    }
}

/// `needle` is already lowercase. ASCII folding without allocating: this runs for many rows on
/// every keystroke. Non-ASCII needles fall back to a lowercased copy of the text.
pub fn contains_ignore_case(text: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    if !needle.is_ascii() {
        return text.to_lowercase().contains(needle);
    }
    let (text, needle) = (text.as_bytes(), needle.as_bytes());
    text.windows(needle.len())
        .any(|window| window.eq_ignore_ascii_case(needle))
}

/// Whole-value match of a lowercase pattern where `*` stands for any run of characters.
fn glob_ignore_case(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            backtrack = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t].to_ascii_lowercase() {
            p += 1;
            t += 1;
        } else if let Some((star, matched)) = backtrack {
            p = star + 1;
            t = matched + 1;
            backtrack = Some((star, matched + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Row {
        name: &'static str,
        cloud: &'static str,
        age: Option<i64>,
        tags: Tags,
        verdict: &'static str,
        ips: &'static [&'static str],
        exposed: bool,
    }

    impl Subject for Row {
        fn free_text_fields(&self) -> &'static [Field] {
            &[Field::Name, Field::Cloud]
        }
        fn text(&self, field: Field) -> Option<&str> {
            match field {
                Field::Name => Some(self.name),
                Field::Cloud => Some(self.cloud),
                Field::Verdict => Some(self.verdict),
                _ => None,
            }
        }
        fn any_text(&self, field: Field, check: &mut dyn FnMut(&str) -> bool) -> bool {
            match field {
                Field::Ip => self.ips.iter().any(|ip| check(ip)),
                _ => self.text(field).is_some_and(check),
            }
        }
        fn number(&self, field: Field) -> Option<i64> {
            (field == Field::Age).then_some(self.age).flatten()
        }
        fn flag(&self, field: Field) -> Option<bool> {
            (field == Field::Exposed).then_some(self.exposed)
        }
        fn tags(&self) -> Option<&Tags> {
            Some(&self.tags)
        }
    }

    fn row(name: &'static str, cloud: &'static str, age: Option<i64>) -> Row {
        let mut tags = Tags::new();
        tags.insert("team", "Payments");
        Row {
            name,
            cloud,
            age,
            tags,
            verdict: "outdated",
            ips: &["10.0.3.17", "203.0.113.9", "ip-10-0-3-17.ec2.internal"],
            exposed: false,
        }
    }

    fn hits(query: &str, row: &Row) -> bool {
        Query::parse(query, &Field::ALL).unwrap().matches(row)
    }

    #[test]
    fn free_text_looks_in_every_text_field_ignoring_case() {
        let r = row("Web-Prod-1", "aws", Some(3));
        assert!(hits("", &r));
        assert!(hits("prod", &r));
        assert!(hits("AWS", &r));
        assert!(!hits("azure", &r));
        assert!(hits("web prod", &r), "terms are ANDed");
        assert!(!hits("web azure", &r));
    }

    #[test]
    fn field_terms_look_in_that_field_only() {
        let r = row("aws-named", "gcp", None);
        assert!(hits("cloud:gcp", &r));
        assert!(!hits("cloud:aws", &r));
        assert!(
            !hits("region:eu", &r),
            "a field the row lacks never matches"
        );
        assert!(hits("!region:eu", &r));
    }

    #[test]
    fn globs_match_the_whole_value() {
        let r = row("ubuntu-jammy-2026", "gcp", None);
        assert!(hits("name:ubuntu*", &r));
        assert!(hits("name:*jammy*", &r));
        assert!(hits("name:*2026", &r));
        assert!(!hits("name:jammy*", &r));
        assert!(hits("name:u*u*6", &r), "backtracking");
        assert!(!hits("name:u*x*", &r));
    }

    #[test]
    fn numeric_comparisons_on_days() {
        let r = row("a", "aws", Some(30));
        assert!(hits("age:>29", &r));
        assert!(!hits("age:>30", &r));
        assert!(hits("age:>=30", &r));
        assert!(hits("age:<=30", &r));
        assert!(!hits("age:<30", &r));
        assert!(hits("age:30", &r));
        assert!(hits("age:=30d", &r));
        assert!(
            !hits("age:>1", &row("b", "aws", None)),
            "unknown age never compares"
        );
    }

    #[test]
    fn negation_inverts_any_term() {
        let r = row("web", "aws", Some(3));
        assert!(!hits("!web", &r));
        assert!(hits("!cloud:azure", &r));
        assert!(hits("!age:>10", &r));
    }

    #[test]
    fn tags_by_key_or_key_and_value() {
        let r = row("web", "aws", None);
        assert!(hits("tag:team", &r));
        assert!(hits("tag:team=payments", &r));
        assert!(hits("tag:team=pay*", &r));
        assert!(!hits("tag:team=search", &r));
        assert!(!hits("tag:owner", &r));
    }

    #[test]
    fn errors_name_the_problem() {
        let err = Query::parse("colour:red", &Field::ALL).unwrap_err();
        assert!(err.contains("unknown field \"colour\""), "{err}");
        let err = Query::parse("age:>old", &Field::ALL).unwrap_err();
        assert!(err.contains("not a number of days"), "{err}");
        let err = Query::parse("region:eu", &[Field::Name]).unwrap_err();
        assert!(err.contains("not a field here"), "{err}");
        let err = Query::parse("cloud:", &Field::ALL).unwrap_err();
        assert!(err.contains("needs a value"), "{err}");
    }

    #[test]
    fn split_keeps_every_term_once() {
        let query = Query::parse("web cloud:aws !age:>3 name:x", &Field::ALL).unwrap();
        let (image, rest) = query.split(|f| matches!(f, Field::Cloud | Field::Age));
        assert_eq!(image.terms.len(), 2);
        assert_eq!(rest.terms.len(), 2);
        assert!(
            rest.terms.iter().any(|t| t.field.is_none()),
            "free text stays"
        );
        let r = row("web", "aws", Some(1));
        assert_eq!(query.matches(&r), image.matches(&r) && rest.matches(&r));
    }

    fn error(query: &str) -> String {
        Query::parse(query, &Field::ALL).unwrap_err()
    }

    #[test]
    fn closed_fields_take_known_values_prefixes_and_several() {
        let r = row("web", "aws", None);
        assert!(hits("cloud:aws", &r));
        assert!(hits("cloud:AW", &r), "a prefix of a known value");
        assert!(!hits("cloud:gcp", &r));
        assert!(hits("cloud:gcp,aws", &r), "any of several");
        assert!(hits("verdict:outdated,stale", &r));
        assert!(!hits("verdict:stale,current", &r));
        for bad in [
            "verdict:dated",
            "cloud:oracle",
            "verdict:bogus",
            "state:melting",
            "verdict:>=bogus",
        ] {
            let message = error(bad);
            assert!(message.contains("is not one of"), "{bad}: {message}");
        }
        assert!(error("verdict:bogus").contains("flagged, unknown, outdated, stale, current"));
        assert!(error("cloud:>aws").contains("only verdict compares"));
        assert!(error("region:eu,").contains("empty value"));
    }

    #[test]
    fn verdicts_compare_by_severity() {
        let mut r = row("web", "aws", None);
        for (verdict, at_least_outdated) in [
            ("flagged", true),
            ("unknown", true),
            ("outdated", true),
            ("stale", false),
            ("current", false),
        ] {
            r.verdict = verdict;
            assert_eq!(
                hits("verdict:>=outdated", &r),
                at_least_outdated,
                "{verdict}"
            );
            assert_eq!(
                hits("verdict:<outdated", &r),
                !at_least_outdated,
                "{verdict}"
            );
        }
        r.verdict = "stale";
        assert!(hits("verdict:>current", &r));
        assert!(!hits("verdict:>stale", &r));
    }

    #[test]
    fn several_values_on_open_and_numeric_fields() {
        let r = row("web-prod", "aws", Some(30));
        assert!(hits("name:db,web", &r));
        assert!(!hits("name:db,api", &r));
        assert!(hits("age:<3,>29", &r));
        assert!(!hits("age:<3,>30", &r));
    }

    #[test]
    fn addresses_exactly_by_network_or_by_name() {
        let r = row("web", "aws", None);
        assert!(hits("ip:10.0.3.17", &r));
        assert!(!hits("ip:10.0.3.1", &r), "an address is matched whole");
        assert!(hits("ip:10.0.3.0/24", &r));
        assert!(hits("ip:10.0.0.0/8", &r));
        assert!(!hits("ip:10.0.4.0/24", &r));
        assert!(hits("ip:203.0.113.0/24", &r));
        assert!(hits("ip:0.0.0.0/0", &r));
        assert!(!hits("ip:fd00::/8", &r), "v6 networks hold no v4 address");
        assert!(hits("ip:ec2.internal", &r), "part of a DNS name");
        for bad in ["ip:10.0.3.0/33", "ip:10.0.3/24", "ip:x/8"] {
            assert!(error(bad).contains("not a network"), "{bad}");
        }
    }

    #[test]
    fn findings_are_bare_words_where_the_view_has_them() {
        let mut r = row("web", "aws", None);
        assert!(!hits("exposed", &r));
        assert!(hits("!exposed", &r));
        r.exposed = true;
        assert!(hits("exposed", &r));
        assert!(hits("EXPOSED", &r));
        assert!(error("exposed:yes").contains("takes no value"));
        let elsewhere = Query::parse("exposed", &[Field::Name]).unwrap();
        let plain = row("exposed-host", "aws", None);
        assert!(
            elsewhere.matches(&plain),
            "free text where the view has no findings"
        );
    }

    #[test]
    fn behind_counts_images() {
        let message = error("behind:>many");
        assert!(message.contains("not a number of images"), "{message}");
        assert!(Query::parse("behind:>2", &Field::ALL).is_ok());
    }

    #[test]
    fn accounts_count_accounts() {
        let message = error("accounts:>some");
        assert!(message.contains("not a number of accounts"), "{message}");
        for query in [
            "accounts:>1",
            "accounts:3",
            "accounts:<=2",
            "accounts:>=4,<1",
        ] {
            assert!(Query::parse(query, &Field::ALL).is_ok(), "{query}");
        }
    }

    #[test]
    fn lone_bang_and_extra_spaces_are_ignored() {
        assert!(Query::parse("  !  ", &Field::ALL).unwrap().is_empty());
    }
}
