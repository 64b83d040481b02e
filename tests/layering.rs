//! The floor plan holds: every module imports only from its own floor or the floors
//! below, and no modules import one another in a circle. The floors are the README's
//! list (under "The code is built in floors"), read from the README itself, so the two
//! cannot drift apart; the imports are the `crate::` paths in each module's files
//! (tests left out). Imports that still climb are listed in [`KNOWN_CLIMBS`], and those
//! that still close a circle on one floor in [`KNOWN_CIRCLES`], each to be moved away
//! (issue 16); one that is moved must leave its list too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Imports that still run up a floor, as `from -> to`. `lib` is the crate root.
const KNOWN_CLIMBS: &[(&str, &str)] = &[];

/// Imports on one floor that still close a circle, as `from -> to`.
const KNOWN_CIRCLES: &[(&str, &str)] = &[];

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn every_import_stays_on_its_floor_or_goes_down() {
    let floors = floors();
    let graph = imports();
    for module in graph.keys() {
        assert!(
            floors.contains_key(module),
            "module `{module}` is on no floor of the README's list"
        );
    }
    let mut climbs = BTreeSet::new();
    for (from, targets) in &graph {
        for to in targets {
            if floors[to] > floors[from] {
                climbs.insert((from.as_str(), to.as_str()));
            }
        }
    }
    let known: BTreeSet<(&str, &str)> = KNOWN_CLIMBS.iter().copied().collect();
    let new: Vec<_> = climbs.difference(&known).collect();
    assert!(
        new.is_empty(),
        "these imports climb to a higher floor: {new:?}; move what they need down, or \
         the module up (README, \"The code is built in floors\")"
    );
    let gone: Vec<_> = known.difference(&climbs).collect();
    assert!(
        gone.is_empty(),
        "these imports no longer climb: take {gone:?} off KNOWN_CLIMBS"
    );
}

#[test]
fn no_modules_import_one_another_in_a_circle() {
    let mut graph = imports();
    for (from, to) in KNOWN_CIRCLES {
        assert!(
            graph[*from].contains(*to),
            "`{from}` no longer imports `{to}`: take it off KNOWN_CIRCLES"
        );
    }
    // The known climbs and circles close the circles that are still there; without
    // them, none.
    for (from, to) in KNOWN_CLIMBS.iter().chain(KNOWN_CIRCLES) {
        if let Some(targets) = graph.get_mut(*from) {
            targets.remove(*to);
        }
    }
    if let Some(circle) = find_circle(&graph) {
        panic!(
            "modules import one another in a circle: {}",
            circle.join(" -> ")
        );
    }
}

/// `unsafe` lives in one module, `os`, as bollard lives in `engine`: everywhere else
/// berth goes through safe wrappers (`rustix`, std). Tests of `os` itself count too.
#[test]
fn unsafe_code_stays_in_the_os_module() {
    let mut outside = Vec::new();
    let mut inside = 0;
    let crate_files = ["lib", "main", "bin"].map(String::from);
    for module in top_modules().iter().chain(&crate_files) {
        for file in files_of(module) {
            let text = std::fs::read_to_string(&file).unwrap();
            let blocks = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .map(|l| l.matches("unsafe {").count() + l.matches("unsafe fn").count())
                .sum::<usize>();
            match module.as_str() {
                "os" => inside += blocks,
                _ if blocks > 0 => outside.push(file.display().to_string()),
                _ => {}
            }
        }
    }
    assert!(
        outside.is_empty(),
        "`unsafe` outside src/os.rs, in {outside:?}: use rustix, or add a safe wrapper to os"
    );
    assert!(
        inside <= 3,
        "src/os.rs holds {inside} unsafe blocks; at most 3"
    );
}

/// Each module's floor, 1 the lowest, from the README's numbered list: every module
/// named in backticks on item N is on floor N.
fn floors() -> BTreeMap<String, usize> {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let start = readme
        .find("The code is built in floors")
        .expect("the README lists the floors");
    let modules = top_modules();
    let mut floors = BTreeMap::new();
    let mut floor = 0;
    for line in readme[start..].lines().skip(1) {
        let item = line
            .split_once(". ")
            .filter(|(n, _)| n.parse::<usize>().is_ok());
        let text = match item {
            Some((number, text)) => {
                floor = number.parse().unwrap();
                text
            }
            None if floor > 0 && line.starts_with("   ") => line,
            None if floor > 0 && !line.trim().is_empty() => break,
            None => continue,
        };
        for (i, word) in text.split('`').enumerate() {
            if i % 2 == 1 && modules.contains(word) {
                let previous = floors.insert(word.to_string(), floor);
                assert!(previous.is_none(), "`{word}` is on two floors");
            }
        }
    }
    floors.insert("lib".into(), usize::MAX);
    floors
}

/// The crate's top-level modules, from `lib.rs`.
fn top_modules() -> BTreeSet<String> {
    let lib = std::fs::read_to_string(Path::new(ROOT).join("src/lib.rs")).unwrap();
    lib.lines()
        .filter_map(|line| line.strip_prefix("pub mod ")?.strip_suffix(';'))
        .map(str::to_string)
        .collect()
}

/// Which top-level modules each top-level module imports (`lib`: an item of the crate
/// root), from the `crate::` paths in its files, tests and comments left out.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let modules = top_modules();
    let mut graph = BTreeMap::new();
    for module in &modules {
        let mut targets = BTreeSet::new();
        for file in files_of(module) {
            let text = std::fs::read_to_string(&file).unwrap();
            let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
            for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for target in crate_paths(line) {
                    let target = match modules.contains(&target) {
                        true => target,
                        false => "lib".to_string(),
                    };
                    if target != *module {
                        targets.insert(target);
                    }
                }
            }
        }
        graph.insert(module.clone(), targets);
    }
    graph
}

/// The first name after each `crate::` on `line`, and each name of a `crate::{...}`.
fn crate_paths(line: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = Vec::new();
    for (i, _) in line.match_indices("crate::") {
        let rest = &line[i + "crate::".len()..];
        match rest.strip_prefix('{') {
            Some(group) => {
                let group = group.split('}').next().unwrap_or_default();
                found.extend(group.split(',').map(|item| ident(item.trim())));
            }
            None => found.push(ident(rest)),
        }
    }
    found.retain(|name| !name.is_empty() && name != "self");
    found
}

fn files_of(module: &str) -> Vec<PathBuf> {
    let src = Path::new(ROOT).join("src");
    let file = src.join(format!("{module}.rs"));
    let mut files = Vec::new();
    if file.exists() {
        files.push(file);
    }
    let mut dirs = vec![src.join(module)];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files
}

/// A circle in `graph`, as the modules on it, the first repeated at the end.
fn find_circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut circle = path[at..].to_vec();
            circle.push(node.to_string());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_reader_of_imports_sees_groups_and_single_paths() {
    assert_eq!(
        crate_paths("use crate::engine::{Engine, State}; let x = crate::ui::human(1);"),
        ["engine", "ui"]
    );
    assert_eq!(
        crate_paths("use crate::{label, plan::Plan};"),
        ["label", "plan"]
    );
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(str::to_string).collect()))
    .collect();
    assert_eq!(find_circle(&graph).unwrap(), ["a", "b", "c", "a"]);
}
