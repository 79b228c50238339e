//! Everything a person reads: the interactive UI, the one-shot report, the snapshot diff, and
//! the fleet served to a team (`serve`: metrics and the latest snapshot).

pub mod diff;
pub mod report;
pub mod serve;
pub mod tui;

/// How many entries a one-line finding names before it says how many more there are.
const FIRST_FEW: usize = 5;

/// The line `--fail-on` prints when it fails a run: the flag, how many instances meet it and
/// what that means (`are outdated or worse`), then the first few of them.
fn fail_on_line(flag: &str, meaning: &str, names: Vec<String>) -> Option<String> {
    let (count, verb) = match names.len() {
        0 => return None,
        1 => ("1 instance".to_owned(), "is"),
        n => (format!("{n} instances"), "are"),
    };
    let mut line = format!(
        "--fail-on {flag}: {count} {verb} {meaning}: {}",
        names[..names.len().min(FIRST_FEW)].join(", ")
    );
    if names.len() > FIRST_FEW {
        line.push_str(&format!(" and {} more", names.len() - FIRST_FEW));
    }
    Some(line)
}

/// An instance id as a one-line finding names it: an Azure resource path by its last segment.
fn short_id(id: &str) -> &str {
    id.rsplit('/').next().unwrap_or(id)
}
