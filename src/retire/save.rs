//! `retire --save-packages`: the packages the layer holds, pinned, merged into lists in
//! the workspace that a build reads: `.berth/packages/requirements.txt` (pip),
//! `conda.txt` and `apt.txt`. A line the user wrote is kept as written; a package it
//! already names is not added again. The workspace is the container's to write, so
//! the files are reached from an open directory, never through a symbolic link, and
//! replaced whole by a rename.

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, CWD};
use rustix::io::Errno;

use super::classify::Package;
use crate::unpack::{make_dir, Owner};

/// Where the lists go, under the workspace.
pub const DIR: &str = ".berth/packages";

/// The most of an existing list berth reads: a list is lines of names.
const MOST: u64 = 1 << 20;

/// One list file: its name, and how a line names its package.
struct List {
    file: &'static str,
    manager: &'static str,
    key: fn(&str) -> String,
}

const LISTS: [List; 3] = [
    List {
        file: "requirements.txt",
        manager: "pip",
        key: pip_key,
    },
    List {
        file: "conda.txt",
        manager: "conda",
        key: conda_key,
    },
    List {
        file: "apt.txt",
        manager: "apt",
        key: apt_key,
    },
];

/// What one list gained.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Saved {
    pub path: PathBuf,
    /// The packages added, as written (`requests==2.31.0`).
    pub added: Vec<String>,
}

/// Merges `packages` into the lists under `workspace`; returns what each list that
/// has packages gained (nothing added: the list already named them all).
pub fn save(workspace: &Path, packages: &[Package]) -> io::Result<Vec<Saved>> {
    let mut saved = Vec::new();
    let mut dir: Option<(OwnedFd, Option<Owner>)> = None;
    for list in &LISTS {
        let wanted: Vec<String> = packages
            .iter()
            .filter(|p| p.manager == list.manager)
            .map(Package::requirement)
            .collect();
        if wanted.is_empty() {
            continue;
        }
        if dir.is_none() {
            dir = Some(open_lists(workspace)?);
        }
        let (fd, owner) = dir.as_ref().expect("opened above");
        let existing = read_list(fd, list.file)?;
        let (merged, added) = merge(&existing, &wanted, list.key);
        if !added.is_empty() {
            write_list(fd, list.file, &merged, *owner)?;
        }
        saved.push(Saved {
            path: workspace.join(DIR).join(list.file),
            added,
        });
    }
    Ok(saved)
}

/// `<workspace>/.berth/packages`, made where missing and opened, never through a
/// symbolic link; and who its files belong to when root writes them.
fn open_lists(workspace: &Path) -> io::Result<(OwnedFd, Option<Owner>)> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let workspace_fd = rustix::fs::openat(CWD, workspace, flags, Mode::empty())?;
    let owner = Owner::of(&workspace_fd)?;
    let mut fd = workspace_fd;
    for name in DIR.split('/') {
        fd = make_dir(&fd, OsStr::new(name), owner)?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o755)).ok();
    }
    Ok((fd, owner))
}

/// The list `name` in `dir` as it is, or empty when there is none. Anything but a
/// regular file there (a symbolic link, a pipe) is an error: berth never follows one.
fn read_list(dir: impl AsFd, name: &str) -> io::Result<String> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = match rustix::fs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(String::new()),
        Err(Errno::LOOP) => return Err(not_a_file(name)),
        Err(errno) => return Err(errno.into()),
    };
    let stat = rustix::fs::fstat(&fd)?;
    if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::RegularFile {
        return Err(not_a_file(name));
    }
    let mut text = String::new();
    std::fs::File::from(fd)
        .take(MOST)
        .read_to_string(&mut text)
        .map_err(|err| io::Error::new(err.kind(), format!("{name}: {err}")))?;
    Ok(text)
}

fn not_a_file(name: &str) -> io::Error {
    io::Error::other(format!(
        "{DIR}/{name} is not a regular file (a symbolic link or something else took its \
         place); berth does not write through it"
    ))
}

/// Replaces list `name` in `dir` whole: a new file beside it, renamed over it.
fn write_list(dir: impl AsFd, name: &str, text: &str, owner: Option<Owner>) -> io::Result<()> {
    let temporary = format!(".{name}.{}.tmp", std::process::id());
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(&dir, temporary.as_str(), flags, Mode::from_raw_mode(0o644))?;
    let written = (|| {
        Owner::take(owner, &fd)?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o644))?;
        let mut file = std::fs::File::from(fd);
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        rustix::fs::renameat(&dir, temporary.as_str(), &dir, name)?;
        Ok(())
    })();
    if written.is_err() {
        rustix::fs::unlinkat(&dir, temporary.as_str(), rustix::fs::AtFlags::empty()).ok();
    }
    written
}

/// `existing` with each of `wanted` that no line of it names added; the entries
/// sorted by the package they name. Every line of `existing` stays as written, a
/// comment with the entry below it, and a heading (comments up to the first blank
/// line) on top. Returns the new text and what was added.
pub fn merge(existing: &str, wanted: &[String], key: fn(&str) -> String) -> (String, Vec<String>) {
    let mut heading: Vec<&str> = Vec::new();
    let mut blocks: Vec<(String, Vec<&str>)> = Vec::new();
    let mut pending: Vec<&str> = Vec::new();
    let mut lines = existing.lines().peekable();
    if existing.starts_with('#') {
        while let Some(line) = lines.next_if(|l| l.trim_start().starts_with('#')) {
            pending.push(line);
        }
        if lines.peek().is_none_or(|l| l.trim().is_empty()) {
            heading = std::mem::take(&mut pending);
        }
    }
    for line in lines {
        let entry = line.trim();
        if entry.is_empty() {
            continue;
        }
        pending.push(line);
        if !entry.starts_with('#') {
            blocks.push((key(entry), std::mem::take(&mut pending)));
        }
    }
    let mut added = Vec::new();
    for requirement in wanted {
        let name = key(requirement);
        if !blocks.iter().any(|(known, _)| *known == name) {
            blocks.push((name, vec![requirement.as_str()]));
            added.push(requirement.clone());
        }
    }
    blocks.sort_by(|a, b| a.0.cmp(&b.0));
    let mut text = String::new();
    for line in &heading {
        text.push_str(line);
        text.push('\n');
    }
    if !heading.is_empty() {
        text.push('\n');
    }
    for line in blocks.iter().flat_map(|(_, lines)| lines).chain(&pending) {
        text.push_str(line);
        text.push('\n');
    }
    (text, added)
}

/// The distribution a requirements line names, normalized as pip compares names
/// (PEP 503): `Foo_Bar[extra]>=1; python_version>"3"` → `foo-bar`. An option line
/// (`-r other.txt`, `--index-url …`) is its own key.
fn pip_key(line: &str) -> String {
    if line.starts_with('-') {
        return line.to_string();
    }
    let name = line
        .split(|c: char| "=<>!~;[ @\t".contains(c))
        .next()
        .unwrap_or_default();
    name.to_ascii_lowercase().replace(['_', '.'], "-")
}

/// The package a conda spec names: `numpy=1.26.4=py311h…` → `numpy`.
fn conda_key(line: &str) -> String {
    let name = line
        .split(|c: char| "=<>! \t".contains(c))
        .next()
        .unwrap_or_default();
    name.to_ascii_lowercase()
}

/// The package an apt line names: `curl=7.88.1-10`, `libc6:amd64` → `curl`, `libc6`.
fn apt_key(line: &str) -> String {
    let name = line
        .split(|c: char| "=: \t".contains(c))
        .next()
        .unwrap_or_default();
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_new_list_is_the_packages_sorted() {
        let (text, added) = merge("", &wanted(&["six==1.16.0", "Requests==2.31.0"]), pip_key);
        assert_eq!(text, "Requests==2.31.0\nsix==1.16.0\n");
        assert_eq!(added, ["six==1.16.0", "Requests==2.31.0"]);
    }

    #[test]
    fn a_line_the_user_wrote_stays_as_written_and_is_not_added_again() {
        let existing = "# my project\n\n# pinned for the GPU driver\ntorch>=2.1 ; sys_platform == \"linux\"\nnumpy\n";
        let (text, added) = merge(
            existing,
            &wanted(&["numpy==1.26.4", "Torch==2.2.0", "aiohttp==3.9.0"]),
            pip_key,
        );
        assert_eq!(added, ["aiohttp==3.9.0"]);
        assert_eq!(
            text,
            "# my project\n\naiohttp==3.9.0\nnumpy\n# pinned for the GPU driver\ntorch>=2.1 ; sys_platform == \"linux\"\n"
        );
        // Merging again adds nothing and changes nothing.
        let (again, added) = merge(&text, &wanted(&["aiohttp==3.9.0"]), pip_key);
        assert_eq!((again.as_str(), added.len()), (text.as_str(), 0));
    }

    #[test]
    fn names_compare_as_their_managers_compare_them() {
        assert_eq!(pip_key("Foo_Bar.baz[extra]>=1"), "foo-bar-baz");
        assert_eq!(pip_key("pkg @ https://x/y.whl"), "pkg");
        assert_eq!(pip_key("-r base.txt"), "-r base.txt");
        assert_eq!(conda_key("numpy=1.26.4=py311h64a7726_0"), "numpy");
        assert_eq!(apt_key("libc6:amd64=2.36-9"), "libc6");
        assert_eq!(apt_key("curl"), "curl");
    }

    #[test]
    fn comments_at_the_end_stay_at_the_end() {
        let (text, _) = merge("b\na\n# the end\n", &wanted(&["c"]), apt_key);
        assert_eq!(text, "a\nb\nc\n# the end\n");
    }
}
