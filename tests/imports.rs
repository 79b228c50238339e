//! The import graph of `src/`, read from the source: every file is a node, every `crate::`
//! or `super::` path it names (outside its unit tests) an edge to the file that defines it.
//! Data flows one way: the graph has no circle, and the core, the queue and the config never
//! reach into the views. `cargo nextest run --test imports` prints any circle it finds.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path (`views::tui::app`) to its source text, unit tests cut off.
fn modules() -> BTreeMap<String, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = BTreeMap::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(&root).unwrap().with_extension("");
                let mut module = relative.to_string_lossy().replace('/', "::");
                if let Some(parent) = module.strip_suffix("::mod") {
                    module = parent.to_owned();
                }
                if module == "lib" || module == "main" {
                    module = String::new();
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let code = match text.find("#[cfg(test)]\nmod tests") {
                    Some(at) => text[..at].to_owned(),
                    None => text,
                };
                found.insert(module, code);
            }
        }
    }
    found
}

/// The longest known module that `path` starts with.
fn resolve(modules: &BTreeMap<String, String>, path: &[&str]) -> Option<String> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find(|candidate| modules.contains_key(candidate))
}

/// The identifiers of a path written after `prefix` at `at` in `code`: `a::b::c`.
fn path_at(code: &str, at: usize) -> Vec<&str> {
    let rest = &code[at..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(rest.len());
    rest[..end].split("::").filter(|s| !s.is_empty()).collect()
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules();
    let mut edges = BTreeMap::new();
    for (module, code) in &modules {
        let mut deps = BTreeSet::new();
        for (at, _) in code.match_indices("crate::") {
            if let Some(dep) = resolve(&modules, &path_at(code, at + "crate::".len())) {
                deps.insert(dep);
            }
        }
        // `super::` is the parent of a file, or of a `mod.rs`'s own module.
        let is_dir_module = modules
            .keys()
            .any(|m| m.starts_with(&format!("{module}::")));
        let mut parent: Vec<&str> = module.split("::").filter(|s| !s.is_empty()).collect();
        if !is_dir_module {
            parent.pop();
        }
        for (at, _) in code.match_indices("super::") {
            if at > 0 && code[..at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == ':') {
                continue;
            }
            let mut path = parent.clone();
            path.extend(path_at(code, at + "super::".len()));
            if let Some(dep) = resolve(&modules, &path) {
                deps.insert(dep);
            }
        }
        deps.remove(module);
        edges.insert(module.clone(), deps);
    }
    edges
}

/// Strongly connected components of more than one module: the circles.
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Two modules are in one circle when each reaches the other.
    let reach = |from: &String| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(m) = todo.pop() {
            for dep in edges.get(&m).into_iter().flatten() {
                if seen.insert(dep.clone()) {
                    todo.push(dep.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> =
        edges.keys().map(|m| (m, reach(m))).collect();
    let mut circles: Vec<Vec<String>> = Vec::new();
    for module in edges.keys() {
        if circles.iter().any(|c| c.contains(module)) {
            continue;
        }
        let circle: Vec<String> = edges
            .keys()
            .filter(|other| {
                *other == module
                    || (reaches[module].contains(*other) && reaches[*other].contains(module))
            })
            .cloned()
            .collect();
        if circle.len() > 1 {
            circles.push(circle);
        }
    }
    circles
}

#[test]
fn the_import_graph_has_no_circle() {
    let edges = graph();
    assert!(
        edges.len() > 40,
        "the source was read: {} modules",
        edges.len()
    );
    assert!(
        edges["views::tui::draw"].contains("views::tui::app"),
        "edges are found"
    );
    let found = circles(&edges);
    assert!(found.is_empty(), "circles in the import graph: {found:#?}");
}

#[test]
fn the_core_the_queue_and_the_config_never_reach_into_the_views() {
    let edges = graph();
    for (module, deps) in &edges {
        let inner = module == "config"
            || module.starts_with("core")
            || module.starts_with("queue")
            || module.starts_with("query")
            || module.starts_with("clouds");
        let outward: Vec<&String> = deps.iter().filter(|d| d.starts_with("views")).collect();
        assert!(!inner || outward.is_empty(), "{module} imports {outward:?}");
    }
}

#[test]
fn the_ui_parts_never_name_the_app() {
    let edges = graph();
    for part in [
        "browse",
        "dialog",
        "fleet",
        "queue_state",
        "rollout_state",
        "marks",
        "layout",
        "style",
        "command",
        "sources",
    ] {
        let module = format!("views::tui::{part}");
        let deps = &edges[&module];
        for forbidden in ["app", "draw", "detail", "dialog", "fleet", "queue_state"] {
            let name = format!("views::tui::{forbidden}");
            assert!(
                name == module || !deps.contains(&name),
                "{module} imports {name}"
            );
        }
    }
}

#[test]
fn a_circle_is_found_when_there_is_one() {
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(m, deps)| (m.to_owned(), deps.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(circles(&edges), vec![vec!["a", "b", "c"]]);
}

/// `App` coordinates and the parts do the work: it stays under 1,000 lines and 20 fields, so
/// a new concern gets a part of its own rather than more of `App`.
#[test]
fn the_app_stays_a_coordinator() {
    let modules = modules();
    let app = &modules["views::tui::app"];
    let lines = app.lines().count();
    assert!(lines < 1_000, "app.rs has {lines} lines");
    let start = app.find("pub struct App {").expect("the App struct");
    let body = &app[start..start + app[start..].find("\n}").unwrap()];
    let fields = body
        .lines()
        .skip(1)
        .map(str::trim)
        .filter(|l| !l.starts_with("//") && l.contains(':'))
        .count();
    assert!((5..=20).contains(&fields), "App has {fields} fields");
}
