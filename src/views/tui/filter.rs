//! The `/` filter language: whitespace-separated terms, all of which must match.
//!
//! - `web` free text: any of the row's text fields contains it (case-insensitive);
//! - `field:value` one field contains the value; `*` in the value makes it a whole-value glob
//!   (`lineage:ubuntu*`);
//! - `age:>30`, `uptime:<=7`: numeric fields (days) compare with `>`, `>=`, `<`, `<=`, `=`;
//! - `tag:key` or `tag:key=value` on the instance's (or image's) tags;
//! - `!term` negates any term.

use crate::core::model::Tags;

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
    Age,
    Uptime,
}

impl Field {
    pub const ALL: [Field; 17] = [
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
        Field::Age,
        Field::Uptime,
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
            Field::Age => "age",
            Field::Uptime => "uptime",
        }
    }

    fn numeric(self) -> bool {
        matches!(self, Field::Age | Field::Uptime)
    }
}

/// What a filterable row offers. Fields a row does not have answer `None` and never match.
pub trait Subject {
    /// The fields free text is looked for in.
    fn free_text_fields(&self) -> &'static [Field];
    fn text(&self, field: Field) -> Option<&str>;
    /// Days, for `age` and `uptime`.
    fn number(&self, _field: Field) -> Option<i64> {
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

#[derive(Debug, Clone, PartialEq, Eq)]
enum Matcher {
    /// Lowercased needle, found anywhere.
    Contains(String),
    /// Lowercased pattern with `*`, matching the whole value.
    Glob(String),
    Number(Comparison, i64),
    Tag {
        key: Box<Matcher>,
        value: Option<Box<Matcher>>,
    },
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
            let term = match word.split_once(':') {
                Some((name, value)) => {
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
                    Term {
                        negate,
                        field: Some(field),
                        matcher: field_matcher(field, value)?,
                    }
                }
                None => Term {
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
    if value.is_empty() {
        return Err(format!("{}: needs a value", field.as_str()));
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
    if !field.numeric() {
        return Ok(text_matcher(value));
    }
    let (comparison, number) = [
        (">=", Comparison::GreaterOrEqual),
        ("<=", Comparison::LessOrEqual),
        (">", Comparison::Greater),
        ("<", Comparison::Less),
        ("=", Comparison::Equal),
    ]
    .into_iter()
    .find_map(|(prefix, c)| value.strip_prefix(prefix).map(|rest| (c, rest)))
    .unwrap_or((Comparison::Equal, value));
    let number = number.strip_suffix('d').unwrap_or(number);
    let days = number.parse::<i64>().map_err(|_| {
        format!(
            "{}: {value:?} is not a number of days (try {}:>30)",
            field.as_str(),
            field.as_str()
        )
    })?;
    Ok(Matcher::Number(comparison, days))
}

impl Term {
    fn matches(&self, subject: &impl Subject) -> bool {
        let hit = match (self.field, &self.matcher) {
            (_, Matcher::Tag { key, value }) => subject.tags().is_some_and(|tags| {
                tags.iter().any(|(k, v)| {
                    key.matches_text(k) && value.as_ref().is_none_or(|m| m.matches_text(v))
                })
            }),
            (_, Matcher::Number(comparison, days)) => self
                .field
                .and_then(|f| subject.number(f))
                .is_some_and(|n| compare(n, *comparison, *days)),
            (Some(field), matcher) => subject.text(field).is_some_and(|t| matcher.matches_text(t)),
            (None, Matcher::Contains(needle)) => {
                subject.contains_anywhere(needle).unwrap_or_else(|| {
                    subject.free_text_fields().iter().any(|&f| {
                        subject
                            .text(f)
                            .is_some_and(|t| contains_ignore_case(t, needle))
                    })
                })
            }
            (None, matcher) => subject
                .free_text_fields()
                .iter()
                .any(|&f| subject.text(f).is_some_and(|t| matcher.matches_text(t))),
        };
        hit != self.negate
    }
}

fn compare(n: i64, comparison: Comparison, days: i64) -> bool {
    match comparison {
        Comparison::Less => n < days,
        Comparison::LessOrEqual => n <= days,
        Comparison::Equal => n == days,
        Comparison::GreaterOrEqual => n >= days,
        Comparison::Greater => n > days,
    }
}

impl Matcher {
    fn matches_text(&self, text: &str) -> bool {
        match self {
            Matcher::Contains(needle) => contains_ignore_case(text, needle),
            Matcher::Glob(pattern) => glob_ignore_case(pattern.as_bytes(), text.as_bytes()),
            Matcher::Number(..) | Matcher::Tag { .. } => false,
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
    }

    impl Subject for Row {
        fn free_text_fields(&self) -> &'static [Field] {
            &[Field::Name, Field::Cloud]
        }
        fn text(&self, field: Field) -> Option<&str> {
            match field {
                Field::Name => Some(self.name),
                Field::Cloud => Some(self.cloud),
                _ => None,
            }
        }
        fn number(&self, field: Field) -> Option<i64> {
            (field == Field::Age).then_some(self.age).flatten()
        }
        fn tags(&self) -> Option<&Tags> {
            Some(&self.tags)
        }
    }

    fn row(name: &'static str, cloud: &'static str, age: Option<i64>) -> Row {
        let mut tags = Tags::new();
        tags.insert("team".into(), "Payments".into());
        Row {
            name,
            cloud,
            age,
            tags,
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

    #[test]
    fn lone_bang_and_extra_spaces_are_ignored() {
        assert!(Query::parse("  !  ", &Field::ALL).unwrap().is_empty());
    }
}
