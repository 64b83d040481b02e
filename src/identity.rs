//! Who you are inside the container: `id -un`, `whoami` and `ls -l` answer with your
//! host name, in images that have never heard of you, without rebuilding them.
//!
//! berth adds your user and group (your uid and gid, your persistent `$HOME`) to the
//! image's `/etc/passwd` and `/etc/group`, in one of two ways:
//!
//! - The first time you use an image, after the container is created and before it
//!   starts, berth reads the two files from it, keeps the image's copies in
//!   `$STATE/identity/<image id>/`, and writes the merged files into the container.
//!   Three calls to the engine's archive endpoint, each of which mounts the container's
//!   filesystem: on fuse-overlayfs they cost more than the create itself.
//! - From then on (an image id names its content, so the copies never go stale), berth
//!   merges before the create, writes the result beside the copies (named by its
//!   content, so no two deploys ever write one file differently), and bind-mounts it
//!   read-only over the two files. No archive call at all.
//!
//! Either way the container is labelled `berth.identity`, so that retire knows these
//! two files are berth's, not your work. Where a mount of your own covers them (`/etc`),
//! berth writes into the container each time and keeps no copy.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::engine::Engine;
use crate::error::Result;
use crate::files::{write_atomically, write_atomically_with};
use crate::host::HostUser;
use crate::plan::label;
use crate::spec::{ContainerSpec, MountSpec};

pub const PASSWD: &str = "/etc/passwd";
pub const GROUP: &str = "/etc/group";

/// The two files berth writes, as retire leaves them out.
pub const FILES: [&str; 2] = [PASSWD, GROUP];

/// The user to add: the container's name for the host user, its ids and home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

/// An image's own `/etc/passwd` and `/etc/group`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ImageFiles {
    passwd: String,
    group: String,
}

impl Identity {
    /// The host user as the container will know them; `None` for root, whom every
    /// image knows.
    pub fn of(user: &HostUser, home: &str) -> Option<Self> {
        (user.uid != 0).then(|| Self {
            name: user.name_for_container(),
            uid: user.uid,
            gid: user.gid,
            home: home.to_string(),
        })
    }

    /// The image's passwd with this user in it. The user's line goes before any other
    /// line with the same uid (the first match is what `getpwuid` returns); a line of
    /// another uid with the same name is left out, so that the name means one user.
    pub fn passwd(&self, image: &str) -> String {
        let ours = format!(
            "{}:x:{}:{}:{}:{}:/bin/sh",
            self.name, self.uid, self.gid, self.name, self.home
        );
        merge(image, &ours, &self.name, self.uid)
    }

    /// The image's group file with the user's primary group in it, under the user's
    /// name, unless the image already has a group of that gid.
    pub fn group(&self, image: &str) -> String {
        let has_gid = image
            .lines()
            .any(|line| field(line, 2).and_then(|g| g.parse().ok()) == Some(self.gid));
        if has_gid {
            return with_newline(image);
        }
        let ours = format!("{}:x:{}:", self.name, self.gid);
        merge(image, &ours, &self.name, self.gid)
    }
}

/// What is left to do once the container exists: write the user into it.
#[derive(Debug)]
pub struct Pending {
    identity: Identity,
    /// Where to keep the image's files for the next time, if anywhere.
    keep_in: Option<PathBuf>,
}

/// Before the create of `spec` from image `image_id`: nothing when berth does not run
/// the container as `user` ([`label::IDENTITY`]); the two bind mounts, added to `spec`,
/// when berth knows the image's files already; else what [`settle`] must do after the
/// create.
pub fn prepare(
    spec: &mut ContainerSpec,
    image_id: Option<&str>,
    user: &HostUser,
    home: &str,
    state_dir: &Path,
) -> Option<Pending> {
    let identity = spec
        .labels
        .contains_key(label::IDENTITY)
        .then(|| Identity::of(user, home))
        .flatten()?;
    let keep_in = image_id
        .and_then(|id| kept_dir(state_dir, id))
        .filter(|_| !covered(spec));
    let mounted = keep_in.as_deref().and_then(|dir| {
        let image = load(dir)?;
        let passwd = write_once(dir, "passwd", &identity.passwd(&image.passwd)).ok()?;
        let group = write_once(dir, "group", &identity.group(&image.group)).ok()?;
        Some([(passwd, PASSWD), (group, GROUP)])
    });
    let Some(files) = mounted else {
        return Some(Pending { identity, keep_in });
    };
    for (source, target) in files {
        let source = source.display().to_string();
        spec.host.mounts.push(MountSpec::bind(source, target, true));
    }
    None
}

/// Writes the user into the just-created container `id`, where [`prepare`] left that
/// to do. When that fails the container is removed, so that none is left half-made.
pub async fn settle(engine: &Engine, id: &str, pending: Option<Pending>) -> Result<()> {
    let Some(pending) = pending else {
        return Ok(());
    };
    if let Err(err) = pending.install(engine, id).await {
        engine.remove(id).await.ok();
        return Err(err);
    }
    Ok(())
}

impl Pending {
    /// Reads the image's files from container `id` (keeping them, where asked), and
    /// writes both merged files back in one archive.
    async fn install(&self, engine: &Engine, id: &str) -> Result<()> {
        let passwd = engine.read_file(id, PASSWD).await?;
        let group = engine.read_file(id, GROUP).await?;
        if let (Some(dir), Some(passwd), Some(group)) = (&self.keep_in, &passwd, &group) {
            // Only a convenience for the next deploy: this one goes on without it.
            keep(dir, passwd, group).ok();
        }
        let files = [
            ("passwd", self.identity.passwd(&passwd.unwrap_or_default())),
            ("group", self.identity.group(&group.unwrap_or_default())),
        ];
        engine.upload(id, "/etc", tar(&files)).await
    }
}

/// `$STATE/identity/<hex>` for image id `sha256:<hex>`; `None` for an id of any other
/// form, which is kept nowhere.
fn kept_dir(state_dir: &Path, image_id: &str) -> Option<PathBuf> {
    let hex = image_id.strip_prefix("sha256:")?;
    let valid = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    valid.then(|| state_dir.join("identity").join(hex))
}

/// The image's files as kept in `dir`, when both are there.
fn load(dir: &Path) -> Option<ImageFiles> {
    Some(ImageFiles {
        passwd: std::fs::read_to_string(dir.join("image-passwd")).ok()?,
        group: std::fs::read_to_string(dir.join("image-group")).ok()?,
    })
}

/// Keeps the image's files in `dir`: the group first, so that a passwd there means
/// both are.
fn keep(dir: &Path, passwd: &str, group: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    write_atomically(&dir.join("image-group"), group.as_bytes())?;
    write_atomically(&dir.join("image-passwd"), passwd.as_bytes())
}

/// `dir/<kind>-<digest of text>`, written unless it is there already. Named by its
/// content, a file is never rewritten while a container has it mounted.
fn write_once(dir: &Path, kind: &str, text: &str) -> std::io::Result<PathBuf> {
    let digest = Sha256::digest(text.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    let path = dir.join(format!("{kind}-{hex}"));
    if std::fs::read(&path).is_ok_and(|bytes| bytes == text.as_bytes()) {
        return Ok(path);
    }
    // Readable by everyone in the container, as an image's own are.
    write_atomically_with(&path, text.as_bytes(), Some(0o644))?;
    Ok(path)
}

/// Whether a mount of `spec`'s own covers `/etc/passwd` or `/etc/group`: `/`, `/etc`,
/// or the files themselves. Then what the container reads there is not the image's,
/// and a bind mount of berth's would collide with it.
fn covered(spec: &ContainerSpec) -> bool {
    let binds = spec
        .host
        .binds
        .iter()
        .filter_map(|bind| bind.split(':').nth(1));
    let targets = binds
        .chain(spec.host.mounts.iter().map(|m| m.target.as_str()))
        .chain(spec.host.tmpfs.keys().map(String::as_str))
        .chain(spec.volumes.iter().map(String::as_str));
    targets.into_iter().any(|target| {
        let target = target.trim_end_matches('/');
        FILES.iter().any(|file| {
            *file == target
                || file
                    .strip_prefix(target)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
    })
}

/// `file` (lines of `name:...:id:...`) with `ours` first among the lines of `id`, and
/// without other lines named `name`.
fn merge(file: &str, ours: &str, name: &str, id: u32) -> String {
    let mut lines: Vec<&str> = file
        .lines()
        .filter(|line| !line.trim().is_empty() && field(line, 0) != Some(name))
        .collect();
    let at = lines
        .iter()
        .position(|line| field(line, 2).and_then(|v| v.parse().ok()) == Some(id))
        .unwrap_or(lines.len());
    lines.insert(at, ours);
    with_newline(&lines.join("\n"))
}

fn field(line: &str, index: usize) -> Option<&str> {
    line.split(':').nth(index)
}

fn with_newline(text: &str) -> String {
    let mut text = text.trim_end_matches('\n').to_string();
    text.push('\n');
    text
}

/// A tar archive of regular files (mode 0644, owned by root), for the archive endpoint.
fn tar(files: &[(&str, String)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, text) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_cksum();
        builder
            .append_data(&mut header, name, text.as_bytes())
            .expect("writing to memory cannot fail");
    }
    builder.into_inner().expect("writing to memory cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ana() -> Identity {
        Identity {
            name: "ana".into(),
            uid: 1000,
            gid: 1000,
            home: "/home/ana".into(),
        }
    }

    #[test]
    fn the_user_is_added_to_an_image_that_does_not_know_them() {
        let image = "root:x:0:0:root:/root:/bin/sh\n";
        assert_eq!(
            ana().passwd(image),
            "root:x:0:0:root:/root:/bin/sh\nana:x:1000:1000:ana:/home/ana:/bin/sh\n"
        );
        assert_eq!(ana().group("root:x:0:"), "root:x:0:\nana:x:1000:\n");
    }

    #[test]
    fn the_users_line_wins_over_an_image_user_of_the_same_uid() {
        let image = "root:x:0:0::/root:/bin/sh\nubuntu:x:1000:1000::/home/ubuntu:/bin/bash\n";
        let passwd = ana().passwd(image);
        let lines: Vec<&str> = passwd.lines().collect();
        assert_eq!(lines[1], "ana:x:1000:1000:ana:/home/ana:/bin/sh");
        assert_eq!(lines[2], "ubuntu:x:1000:1000::/home/ubuntu:/bin/bash");
        // The image's group of that gid stays as it is.
        let group = "root:x:0:\nubuntu:x:1000:\n";
        assert_eq!(ana().group(group), group);
    }

    #[test]
    fn another_user_of_the_same_name_gives_way() {
        let image = "root:x:0:0::/root:/bin/sh\nana:x:500:500::/home/old:/bin/sh\n";
        let passwd = ana().passwd(image);
        assert!(!passwd.contains(":500:"), "{passwd}");
        assert!(passwd.ends_with("ana:x:1000:1000:ana:/home/ana:/bin/sh\n"));
    }

    #[test]
    fn an_image_without_the_files_gets_them() {
        assert_eq!(ana().passwd(""), "ana:x:1000:1000:ana:/home/ana:/bin/sh\n");
        assert_eq!(ana().group(""), "ana:x:1000:\n");
    }

    #[test]
    fn root_needs_nothing() {
        let root = HostUser {
            name: "root".into(),
            uid: 0,
            gid: 0,
        };
        assert_eq!(Identity::of(&root, "/root"), None);
    }

    const IMAGE_ID: &str =
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn ana_host() -> HostUser {
        HostUser {
            name: "ana".into(),
            uid: 1000,
            gid: 1000,
        }
    }

    fn labelled() -> ContainerSpec {
        let mut spec = ContainerSpec::default();
        spec.labels.insert(label::IDENTITY.into(), "1".into());
        spec
    }

    fn prepare_in(state: &Path, spec: &mut ContainerSpec, image_id: &str) -> Option<Pending> {
        prepare(spec, Some(image_id), &ana_host(), "/home/ana", state)
    }

    #[test]
    fn without_the_label_there_is_nothing_to_do() {
        let state = tempfile::tempdir().unwrap();
        let mut spec = ContainerSpec::default();
        assert!(prepare_in(state.path(), &mut spec, IMAGE_ID).is_none());
        assert_eq!(spec, ContainerSpec::default());
    }

    #[test]
    fn an_image_met_for_the_first_time_is_written_into_and_kept() {
        let state = tempfile::tempdir().unwrap();
        let mut spec = labelled();
        let pending = prepare_in(state.path(), &mut spec, IMAGE_ID).unwrap();
        assert_eq!(spec, labelled(), "nothing mounted yet");
        assert_eq!(pending.identity, ana());
        let dir = state.path().join("identity").join(&IMAGE_ID[7..]);
        assert_eq!(pending.keep_in.as_deref(), Some(dir.as_path()));
    }

    #[test]
    fn a_kept_image_gets_the_merged_files_mounted_read_only() {
        let state = tempfile::tempdir().unwrap();
        let dir = state.path().join("identity").join(&IMAGE_ID[7..]);
        keep(&dir, "root:x:0:0::/root:/bin/sh\n", "root:x:0:\n").unwrap();
        let mut spec = labelled();
        assert!(prepare_in(state.path(), &mut spec, IMAGE_ID).is_none());
        let mounts: Vec<(&str, &str, bool)> = spec
            .host
            .mounts
            .iter()
            .map(|m| (m.source.as_deref().unwrap(), m.target.as_str(), m.read_only))
            .collect();
        assert_eq!(mounts.len(), 2);
        assert_eq!(mounts[0].1, PASSWD);
        assert_eq!(mounts[1].1, GROUP);
        assert!(mounts.iter().all(|m| m.2), "read-only: {mounts:?}");
        assert_eq!(
            std::fs::read_to_string(mounts[0].0).unwrap(),
            "root:x:0:0::/root:/bin/sh\nana:x:1000:1000:ana:/home/ana:/bin/sh\n"
        );
        assert_eq!(
            std::fs::read_to_string(mounts[1].0).unwrap(),
            "root:x:0:\nana:x:1000:\n"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(mounts[0].0).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);

        // The next deploy mounts the very same files; another home, others.
        let mut again = labelled();
        prepare_in(state.path(), &mut again, IMAGE_ID);
        assert_eq!(again.host.mounts, spec.host.mounts);
        let mut elsewhere = labelled();
        prepare(
            &mut elsewhere,
            Some(IMAGE_ID),
            &ana_host(),
            "/h/ana",
            state.path(),
        );
        assert_ne!(elsewhere.host.mounts[0].source, spec.host.mounts[0].source);
        assert_eq!(elsewhere.host.mounts[1].source, spec.host.mounts[1].source);
    }

    #[test]
    fn half_kept_files_count_as_not_kept() {
        let state = tempfile::tempdir().unwrap();
        let dir = state.path().join("identity").join(&IMAGE_ID[7..]);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("image-group"), "root:x:0:\n").unwrap();
        let mut spec = labelled();
        assert!(prepare_in(state.path(), &mut spec, IMAGE_ID).is_some());
        assert!(spec.host.mounts.is_empty());
    }

    #[test]
    fn a_mount_of_the_users_over_etc_means_writing_every_time_and_keeping_nothing() {
        let state = tempfile::tempdir().unwrap();
        let dir = state.path().join("identity").join(&IMAGE_ID[7..]);
        keep(&dir, "root:x:0:0::/root:/bin/sh\n", "root:x:0:\n").unwrap();
        let covers: [fn(&mut ContainerSpec); 5] = [
            |s| s.host.binds.push("/srv/etc:/etc:ro".into()),
            |s| s.host.binds.push("/srv/passwd:/etc/passwd".into()),
            |s| {
                s.host
                    .mounts
                    .push(MountSpec::bind("/srv/etc", "/etc/", false))
            },
            |s| drop(s.host.tmpfs.insert("/etc".into(), String::new())),
            |s| {
                s.volumes.insert("/etc/group".into());
            },
        ];
        for cover in covers {
            let mut spec = labelled();
            cover(&mut spec);
            let before = spec.clone();
            let pending = prepare_in(state.path(), &mut spec, IMAGE_ID).unwrap();
            assert_eq!(pending.keep_in, None, "{before:?}");
            assert_eq!(spec, before);
        }
        // Mounts beside /etc, or under another directory, cover nothing.
        for target in ["/etcetera", "/srv/etc", "/etc/ssl"] {
            let mut spec = labelled();
            spec.host.binds.push(format!("/x:{target}"));
            assert!(
                prepare_in(state.path(), &mut spec, IMAGE_ID).is_none(),
                "{target}"
            );
        }
    }

    #[test]
    fn an_image_id_of_another_form_is_kept_nowhere() {
        let state = tempfile::tempdir().unwrap();
        for id in ["", "sha256:../../etc", "sha512:abcd", &IMAGE_ID[..70]] {
            let mut spec = labelled();
            let pending = prepare_in(state.path(), &mut spec, id).unwrap();
            assert_eq!(pending.keep_in, None, "{id}");
        }
        assert!(!state.path().join("identity").exists());
    }

    #[test]
    fn the_archive_holds_both_files() {
        let bytes = tar(&[("passwd", "a\n".into()), ("group", "b\n".into())]);
        let mut archive = tar::Archive::new(&bytes[..]);
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["passwd", "group"]);
    }
}
