//! The `:` command line: what a typed line means, and Tab completion of its words.

use super::action::View;
use super::table::Column;

pub const COMMANDS: &[&str] = &[
    "overview",
    "images",
    "instances",
    "drift",
    "queue",
    "filter",
    "sort",
    "unmark",
    "refresh",
    "help",
    "quit",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Show(View),
    Quit,
    Refresh,
    Help,
    Unmark,
    Filter(String),
    Sort {
        column: String,
        direction: Option<String>,
    },
}

/// What `line` asks for; `Ok(None)` for an empty line. Any unambiguous prefix names a command.
pub fn parse(line: &str) -> Result<Option<Command>, String> {
    let mut words = line.split_whitespace();
    let Some(word) = words.next() else {
        return Ok(None);
    };
    let matching: Vec<&str> = COMMANDS
        .iter()
        .copied()
        .filter(|c| c.starts_with(word))
        .collect();
    let name = match (matching.as_slice(), word) {
        (_, "q" | "q!") => "quit",
        ([one], _) => one,
        (many, _) if many.contains(&word) => word,
        ([], _) => {
            return Err(format!(
                "unknown command {word:?}; try {}",
                COMMANDS.join(", ")
            ));
        }
        (many, _) => return Err(format!("{word:?} could be {}", many.join(", "))),
    };
    if let Some(view) = View::ALL.into_iter().find(|v| v.command() == name) {
        return Ok(Some(Command::Show(view)));
    }
    Ok(Some(match name {
        "quit" => Command::Quit,
        "refresh" => Command::Refresh,
        "help" => Command::Help,
        "unmark" => Command::Unmark,
        "filter" => Command::Filter(words.collect::<Vec<_>>().join(" ")),
        _ => {
            let column = words.next().ok_or("sort: name a column")?.to_owned();
            Command::Sort {
                column,
                direction: words.next().map(str::to_owned),
            }
        }
    }))
}

/// Tab on `line`: the completed line, and the candidates to show when several remain.
pub fn complete(line: &str, columns: &[Column]) -> Option<(String, Option<String>)> {
    let (candidates, prefix, stem): (Vec<String>, &str, &str) = match line.split_once(' ') {
        None => (COMMANDS.iter().map(|c| (*c).to_owned()).collect(), "", line),
        Some(("sort", rest)) => (
            columns.iter().map(|c| c.title.to_lowercase()).collect(),
            "sort ",
            rest,
        ),
        Some(_) => return None,
    };
    let matches: Vec<&str> = candidates
        .iter()
        .map(String::as_str)
        .filter(|c| c.starts_with(stem))
        .collect();
    match matches.as_slice() {
        [] => None,
        [one] => Some((format!("{prefix}{one} "), None)),
        many => Some((
            format!("{prefix}{}", common_prefix(many)),
            Some(many.join(" ")),
        )),
    }
}

pub fn common_prefix(words: &[&str]) -> String {
    let first = words.first().copied().unwrap_or("");
    let len = words.iter().fold(first.len(), |len, w| {
        first
            .bytes()
            .zip(w.bytes())
            .take(len)
            .take_while(|(a, b)| a == b)
            .count()
    });
    first[..len].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_name_commands_unless_ambiguous() {
        assert_eq!(parse("im"), Ok(Some(Command::Show(View::Images))));
        assert_eq!(parse("q!"), Ok(Some(Command::Quit)));
        assert_eq!(parse("  "), Ok(None));
        assert!(
            parse("i")
                .unwrap_err()
                .contains("could be images, instances")
        );
        assert!(parse("frobnicate").unwrap_err().contains("unknown command"));
        assert_eq!(
            parse("sort age desc"),
            Ok(Some(Command::Sort {
                column: "age".into(),
                direction: Some("desc".into())
            }))
        );
        assert_eq!(
            parse("filter verdict:flagged  cloud:aws"),
            Ok(Some(Command::Filter("verdict:flagged cloud:aws".into())))
        );
    }

    #[test]
    fn completion_stops_where_candidates_part() {
        assert_eq!(complete("dr", &[]), Some(("drift ".into(), None)));
        assert_eq!(
            complete("i", &[]),
            Some(("i".into(), Some("images instances".into())))
        );
        assert_eq!(complete("x", &[]), None);
    }
}
