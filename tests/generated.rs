//! Files generated from cli.rs and checked in (completions/, man/) must match what the code makes
//! now. With `BERTH_BLESS=1` the tests rewrite them instead:
//!
//!     BERTH_BLESS=1 cargo nextest run -E 'test(up_to_date)'

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

/// Compares `dir` (relative to the repository) with `files` (name and contents): a
/// missing, extra or different file fails. With `BERTH_BLESS=1`, writes `files` into
/// `dir` and removes the files it holds that are not among them.
fn check_generated(dir: &str, files: Vec<(String, String)>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let wanted: BTreeMap<String, String> = files.into_iter().collect();
    let mut present = BTreeMap::new();
    read_tree(&dir, "", &mut present);

    if std::env::var_os("BERTH_BLESS").is_some_and(|v| v == "1") {
        fs::create_dir_all(&dir).unwrap();
        for name in present.keys().filter(|name| !wanted.contains_key(*name)) {
            fs::remove_file(dir.join(name)).unwrap();
        }
        for (name, text) in &wanted {
            if present.get(name) != Some(text) {
                let path = dir.join(name);
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(path, text).unwrap();
            }
        }
        return;
    }

    let mut problems = vec![];
    for (name, text) in &wanted {
        match present.get(name) {
            None => problems.push(format!("missing: {name}")),
            Some(found) if found != text => problems.push(format!("out of date: {name}")),
            Some(_) => {}
        }
    }
    for name in present.keys().filter(|name| !wanted.contains_key(*name)) {
        problems.push(format!("not generated any more: {name}"));
    }
    assert!(
        problems.is_empty(),
        "{} does not match the code:\n  {}\nRegenerate it with \
         `BERTH_BLESS=1 cargo nextest run -E 'test(up_to_date)'` and commit the result.",
        dir.display(),
        problems.join("\n  ")
    );
}

/// Every file under `dir`, by its path relative to the top (`bash/berth`).
fn read_tree(dir: &Path, prefix: &str, files: &mut BTreeMap<String, String>) {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return,
        Err(err) => panic!("cannot read {}: {err}", dir.display()),
    };
    for entry in entries {
        let path = entry.expect("a readable directory entry").path();
        let name = format!("{prefix}{}", path.file_name().unwrap().to_string_lossy());
        if path.is_dir() {
            read_tree(&path, &format!("{name}/"), files);
        } else {
            let text = fs::read_to_string(&path)
                .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
            files.insert(name, text);
        }
    }
}

#[test]
fn completions_are_up_to_date() {
    check_generated("completions", berth::complete::files());
}

#[test]
fn man_pages_are_up_to_date() {
    let pages = berth::manpages::pages()
        .into_iter()
        .map(|page| (page.file_name(), page.text))
        .collect();
    check_generated("man", pages);
}

fn berth(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .output()
        .expect("berth runs")
}

#[test]
fn berth_man_prints_the_checked_in_page() {
    let checked_in =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("man/container-retire.1"))
            .unwrap();
    let out = berth(&["man", "container-retire"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), checked_in);

    // A command's page by either of its names.
    let short = berth(&["man", "deploy"]);
    let full = berth(&["man", "berth-deploy"]);
    assert_eq!(short.status.code(), Some(0), "{short:?}");
    assert_eq!(short.stdout, full.stdout);
}

#[test]
fn berth_man_of_an_unknown_page_is_a_usage_error() {
    let out = berth(&["man", "nope"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("error: no man page named `nope`"),
        "{stderr}"
    );
    assert!(stderr.contains("container-retire"), "{stderr}");
}

#[test]
fn berth_man_out_dir_writes_every_page() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("man1");
    let out = berth(&["man", "--out-dir", out_dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let printed = String::from_utf8(out.stdout).unwrap();
    let pages = berth::manpages::pages();
    assert_eq!(printed.lines().count(), pages.len(), "{printed}");
    for page in pages {
        let path = out_dir.join(page.file_name());
        assert!(printed.lines().any(|l| Path::new(l) == path), "{printed}");
        assert_eq!(fs::read_to_string(&path).unwrap(), page.text);
    }
}
