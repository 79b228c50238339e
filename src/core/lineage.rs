//! Which images are versions of the same thing.
//!
//! Order of evidence: the configured lineage tag on the image, the family the cloud states (GCP
//! family, Azure gallery image definition, marketplace offer), the configured name rules, and last
//! the image name with its version and date tokens replaced by `*`. Everything but the cloud's own
//! family is scoped by the image owner, so two accounts' look-alike names never merge.

use regex::Regex;

use super::model::Image;

#[derive(Debug, Clone)]
pub struct NameRule {
    pub pattern: Regex,
    /// Replacement text; `$1`, `$name` refer to the pattern's captures.
    pub lineage: String,
}

#[derive(Debug, Clone, Default)]
pub struct LineageRules {
    pub tag: Option<String>,
    pub name_rules: Vec<NameRule>,
}

impl LineageRules {
    /// The lineage of a readable image; unreadable images belong to none.
    pub fn lineage_of(&self, image: &Image) -> Option<String> {
        if !image.readable {
            return None;
        }
        if let Some(value) = self.tag.as_ref().and_then(|tag| image.tags.get(tag)) {
            return Some(scoped(&image.owner, value));
        }
        if let Some(family) = &image.family {
            return Some(family.clone());
        }
        for rule in &self.name_rules {
            if let Some(captures) = rule.pattern.captures(&image.name) {
                let mut name = String::new();
                captures.expand(&rule.lineage, &mut name);
                return Some(scoped(&image.owner, &name));
            }
        }
        Some(scoped(&image.owner, &strip_versions(&image.name)))
    }
}

fn scoped(owner: &str, name: &str) -> String {
    if owner.is_empty() {
        name.to_owned()
    } else {
        format!("{owner}/{name}")
    }
}

/// `al2023-ami-2023.6.20241010.0-kernel-6.1-x86_64` -> `al2023-ami-*-kernel-*-x86_64`.
pub fn strip_versions(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut token = String::new();
    let mut last_was_star = false;
    let flush = |token: &mut String, out: &mut String, last_was_star: &mut bool| {
        if is_version_token(token) {
            if !*last_was_star {
                out.push('*');
            } else {
                // Drop the separator pushed after the previous `*`: runs collapse into one.
                out.pop();
            }
            *last_was_star = true;
        } else if !token.is_empty() {
            out.push_str(token);
            *last_was_star = false;
        }
        token.clear();
    };
    for ch in name.chars() {
        if matches!(ch, '-' | '/' | ' ' | ':' | '+') {
            flush(&mut token, &mut out, &mut last_was_star);
            out.push(ch);
        } else {
            token.push(ch);
        }
    }
    flush(&mut token, &mut out, &mut last_was_star);
    out
}

/// A version (`1.2.3`, `v7`, `2023.6.20241010.0`), a date or a timestamp (`20260101`,
/// `20260101t1200`).
fn is_version_token(token: &str) -> bool {
    let lower = token.to_ascii_lowercase();
    let body = lower
        .strip_prefix("build")
        .or_else(|| lower.strip_prefix('v'))
        .or_else(|| lower.strip_prefix('r'))
        .unwrap_or(&lower);
    let mut chars = body.chars().peekable();
    if !chars.peek().is_some_and(|c| c.is_ascii_digit()) {
        return false;
    }
    let mut previous_separator = false;
    for c in body.chars() {
        if c.is_ascii_digit() {
            previous_separator = false;
        } else if matches!(c, '.' | '_' | 't' | 'z') {
            if previous_separator {
                return false;
            }
            previous_separator = true;
        } else {
            return false;
        }
    }
    !previous_separator || body.ends_with('z')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_versions_and_dates() {
        let cases = [
            (
                "al2023-ami-2023.6.20241010.0-kernel-6.1-x86_64",
                "al2023-ami-*-kernel-*-x86_64",
            ),
            (
                "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20240101",
                "ubuntu/images/hvm-ssd/ubuntu-jammy-*-amd64-server-*",
            ),
            ("web-v42", "web-*"),
            ("web-2026-01-05", "web-*"),
            ("api-20260105t101010z", "api-*"),
            ("base", "base"),
            ("app-build17-x", "app-*-x"),
            ("rhel-9.4_HVM-20240513", "rhel-9.4_HVM-*"),
        ];
        for (name, want) in cases {
            assert_eq!(strip_versions(name), want, "{name}");
        }
    }
}
