//! The layer reader against the engine's changes call (issue 26): random layers made
//! in real containers, of the busybox image and of a real Debian 12 rootfs, read by
//! each source (berth's own walk, the helper container, the engine's changes call);
//! any difference in the added, changed and deleted paths is a bug in a reader.

use std::collections::BTreeSet;

use proptest::prelude::*;
use serde_json::Value;

use crate::support::*;

/// One thing a program in the container does to its layer. `n` picks an image file or
/// folder by its place in a sorted `find` of the image, so that the same case does the
/// same on every run.
#[derive(Debug, Clone)]
enum Op {
    Append(u16),
    /// `chmod` to the mode it has: a copy-up and no change.
    SameMode(u16),
    Touch(u16),
    Remove(u16),
    RemoveDir(u16),
    /// Deleted and made again, with a new file in it.
    RemakeDir(u16),
    NewFile {
        depth: u8,
        name: u8,
    },
    HardLink(u16),
    Symlink(u8),
    Fifo(u8),
    /// A name that is not UTF-8, in a new folder and in an image folder.
    NotUtf8(u8),
    Deep(u8),
}

impl Op {
    fn script(&self) -> String {
        let file = |n: u16| {
            format!(
                "f=$(find /etc /usr/share /bin -xdev -type f 2>/dev/null | sort | \
                 awk -v n={n} '{{a[NR]=$0}} END {{print a[n % NR + 1]}}'); "
            )
        };
        let dir = |n: u16| {
            format!(
                "d=$(find /usr/share /etc -xdev -mindepth 1 -type d 2>/dev/null | sort | \
                 awk -v n={n} '{{a[NR]=$0}} END {{print a[n % NR + 1]}}'); "
            )
        };
        match *self {
            Op::Append(n) => file(n) + r#"echo more >> "$f""#,
            Op::SameMode(n) => file(n) + r#"chmod "$(stat -c %a "$f")" "$f""#,
            Op::Touch(n) => file(n) + r#"touch "$f""#,
            Op::Remove(n) => file(n) + r#"rm -f "$f""#,
            Op::RemoveDir(n) => dir(n) + r#"rm -rf "$d""#,
            Op::RemakeDir(n) => dir(n) + r#"rm -rf "$d"; mkdir -p "$d"; echo again > "$d/again""#,
            Op::NewFile { depth, name } => {
                let folders: String = (0..depth % 6).map(|i| format!("/s{i}")).collect();
                format!("mkdir -p /srv{folders} && echo new > /srv{folders}/f{name}")
            }
            Op::HardLink(n) => file(n) + &format!(r#"ln "$f" /tmp/hard{n}"#),
            Op::Symlink(n) => format!("ln -s /etc /tmp/link{n}"),
            Op::Fifo(n) => format!("mkfifo /tmp/fifo{n}"),
            Op::NotUtf8(n) => format!(
                r#"name=$(printf 'x\377\376{n}'); mkdir -p "/opt/$name" && echo x > "/opt/$name/$name" && echo x > "/etc/$name""#
            ),
            Op::Deep(n) => {
                let path: String = (0..40 + n % 40).map(|_| "/d").collect();
                format!("mkdir -p /deep{path} && echo x > /deep{path}/end")
            }
        }
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        any::<u16>().prop_map(Op::Append),
        any::<u16>().prop_map(Op::SameMode),
        any::<u16>().prop_map(Op::Touch),
        any::<u16>().prop_map(Op::Remove),
        any::<u16>().prop_map(Op::RemoveDir),
        any::<u16>().prop_map(Op::RemakeDir),
        (any::<u8>(), any::<u8>()).prop_map(|(depth, name)| Op::NewFile { depth, name }),
        any::<u16>().prop_map(Op::HardLink),
        any::<u8>().prop_map(Op::Symlink),
        any::<u8>().prop_map(Op::Fifo),
        any::<u8>().prop_map(Op::NotUtf8),
        any::<u8>().prop_map(Op::Deep),
    ]
}

type Set = BTreeSet<(String, String)>;

/// A container of `image`, removed on drop.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        docker(&["rm", "-f", &self.0]);
    }
}

/// What `berth layer-changes` reads of container `id` from `source`, as the real
/// binary does (the helper image holds that binary).
fn read_by(source: &str, id: &str) -> Set {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["layer-changes", id])
        .env("BERTH_LAYER_READER", source)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let read: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(read["read_by"]["source"], source, "{read:#}");
    let changes = read["changes"].as_array().unwrap();
    let set: Set = changes
        .iter()
        .map(|c| {
            let field = |key: &str| c[key].as_str().unwrap().to_string();
            (field("path"), field("kind"))
        })
        .collect();
    assert_eq!(set.len(), changes.len(), "a path reported twice: {read:#}");
    set
}

/// Each source against the engine's changes call, for a container of `image`.
///
/// On fuse-overlayfs the engine now and then leaves out deletions: after three
/// folders of a Debian image were deleted and made again, its answer named the
/// deleted files of two of them, and which two changed from run to run, while the
/// container saw all three emptied. A deletion a reader reports and the engine does
/// not is checked against the container and the image: it counts as right only when
/// the path is gone from the one and there in the other.
///
/// "Gone from the container" is what a walk of its folders lists, not what a lookup by
/// name finds: when a folder of the image is deleted and made again, fuse-overlayfs
/// lists only the new folder's files, as the layer on disk has it, but a lookup by name
/// still finds the image's old files until the container restarts (seen with Debian's
/// `/usr/share/doc/apt`); after a restart they are gone.
fn compare(id: &str, image: &str) -> Result<(), TestCaseError> {
    let engine = read_by("engine", id);
    for source in ["direct", "helper"] {
        let read = read_by(source, id);
        let missed: Vec<_> = engine.difference(&read).collect();
        let deletions: Vec<&str> = read
            .difference(&engine)
            .filter(|(_, kind)| kind == "deleted")
            .map(|(path, _)| path.as_str())
            .collect();
        let really = really_deleted(id, image, &deletions);
        let extra: Vec<_> = read
            .difference(&engine)
            .filter(|(path, kind)| !(kind == "deleted" && really.contains(path)))
            .collect();
        prop_assert!(
            missed.is_empty() && extra.is_empty(),
            "the {source} reader missed {missed:?} and made up {extra:?}"
        );
    }
    Ok(())
}

/// Those of `paths` that container `id` no longer lists and `image` has.
fn really_deleted(id: &str, image: &str, paths: &[&str]) -> BTreeSet<String> {
    if paths.is_empty() {
        return BTreeSet::new();
    }
    const MISSING: &str =
        r#"for p in "$@"; do if [ -e "$p" ] || [ -L "$p" ]; then :; else echo "$p"; fi; done"#;
    let run = |command: &[&str]| -> BTreeSet<String> {
        let out = docker(command);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out).lines().map(str::to_string).collect()
    };
    let listed = run(&["exec", id, "find", "/", "-xdev"]);
    let mut args = vec![
        "run",
        "--rm",
        "--entrypoint",
        "sh",
        image,
        "-c",
        MISSING,
        "sh",
    ];
    args.extend(paths);
    let never_there = run(&args);
    paths
        .iter()
        .filter(|p| !listed.contains(**p) && !never_there.contains(**p))
        .map(|p| p.to_string())
        .collect()
}

fn same_as_the_engine(image: &str, ops: &[Op]) -> Result<(), TestCaseError> {
    let name = unique("berth-layer-");
    let out = docker(&[
        "run", "-d", "--init", "--name", &name, image, "sleep", "3600",
    ]);
    prop_assert!(out.status.success(), "{}", stderr(&out));
    let container = Container(name);
    let script: Vec<String> = ops
        .iter()
        .map(|op| format!("({}) 2>/dev/null", op.script()))
        .collect();
    docker(&["exec", &container.0, "sh", "-c", &script.join("; ")]);
    compare(&container.0, image)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_reader_agrees_with_the_engine_on_busybox(ops in prop::collection::vec(op(), 1..12)) {
        let image = TestImage::of(Layout::MergedUsr);
        same_as_the_engine(&image.tag, &ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_reader_agrees_with_the_engine_on_debian(ops in prop::collection::vec(op(), 1..12)) {
        let image = TestImage::debian();
        same_as_the_engine(&image.tag, &ops)?;
    }
}

/// An untouched container: nothing, from either.
#[test]
fn an_untouched_debian_container_changed_nothing_but_its_mount_points() {
    let image = TestImage::debian();
    let name = unique("berth-layer-");
    let out = docker(&[
        "run", "-d", "--init", "--name", &name, &image.tag, "sleep", "3600",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let container = Container(name);
    compare(&container.0, &image.tag).unwrap();
    // The helper's image is labelled, and one build of this version keeps one tag:
    // a new build's import removes the older ones.
    let ours = stdout(&docker(&[
        "images",
        "--filter",
        "label=berth.helper=layer",
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ]));
    let ours: Vec<&str> = ours
        .lines()
        .filter(|tag| {
            tag.starts_with(concat!(
                "berth/layer-reader:",
                env!("CARGO_PKG_VERSION"),
                "-"
            ))
        })
        .collect();
    assert_eq!(ours.len(), 1, "{ours:?}");
    let direct = read_by("direct", &container.0);
    // docker's init is bind-mounted; its mount point is the only trace.
    assert!(
        direct.iter().all(|(path, _)| path.starts_with("/usr")),
        "{direct:?}"
    );
}

/// A path 10,000 folders deep, which a hostile container can make: the engine's
/// changes call fails on it (its paths pass the kernel's limit), berth's walk reads it
/// from descriptors, and the helper does so within its 64 MiB. The walk once held every
/// folder's whole path (200 MB here), and the helper died of it.
#[test]
fn a_layer_ten_thousand_folders_deep_is_read_by_both_walks() {
    use rustix::fs::{mkdirat, openat, Mode, OFlags};
    const DEPTH: usize = 10_000;
    let image = TestImage::of(Layout::Classic);
    let name = unique("berth-layer-");
    let out = docker(&["create", "--name", &name, &image.tag, "sleep", "3600"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let container = Container(name);
    let upper = stdout(&docker(&[
        "inspect",
        "--format",
        "{{.GraphDriver.Data.UpperDir}}",
        &container.0,
    ]));
    // Written into the layer as the container would, one folder at a time (the whole
    // path is longer than the kernel takes in one call).
    let flags = OFlags::DIRECTORY | OFlags::CLOEXEC;
    let mut at = openat(rustix::fs::CWD, upper.trim(), flags, Mode::empty()).unwrap();
    for _ in 0..DEPTH {
        mkdirat(&at, "d", Mode::from_raw_mode(0o755)).unwrap();
        at = openat(&at, "d", flags, Mode::empty()).unwrap();
    }
    let file = OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC;
    drop(openat(&at, "leaf", file, Mode::from_raw_mode(0o644)).unwrap());

    let mut want = Set::new();
    let mut path = String::new();
    for _ in 0..DEPTH {
        path.push_str("/d");
        want.insert((path.clone(), "added".to_string()));
    }
    want.insert((format!("{path}/leaf"), "added".to_string()));
    for source in ["direct", "helper"] {
        let read = read_by(source, &container.0);
        assert!(
            read == want,
            "the {source} reader read {} paths",
            read.len()
        );
    }
}

/// The case CI found: a Debian folder deleted and made again, which fuse-overlayfs
/// still shows by name (see `compare`).
#[test]
fn a_remade_debian_folder_is_read_as_its_layer_has_it() {
    let image = TestImage::debian();
    same_as_the_engine(&image.tag, &[Op::RemoveDir(38690), Op::RemakeDir(3235)]).unwrap();
}
