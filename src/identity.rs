//! Who you are inside the container: `id -un`, `whoami` and `ls -l` answer with your
//! host name, in images that have never heard of you, without rebuilding them.
//!
//! berth adds your user and group (your uid and gid, your persistent `$HOME`, the
//! image's shell) to the image's `/etc/passwd` and `/etc/group`, and writes the merged
//! files into the container's own layer after the create and before the start, in one
//! archive call. They are ordinary files there: root in the container may change them
//! (`useradd`, or a package that adds a system user), and retire sees such changes.
//!
//! The image's files are read once per image, from a helper container that is created
//! (never started) and removed again, and kept in `$STATE/identity/<image id>/`: an
//! image id names its content, so the copies never go stale. Knowing them before the
//! create, berth labels the container with a digest of what it writes
//! ([`label::IDENTITY`]), so that retire can tell the files berth wrote from the same
//! files changed since. Where a mount of your own covers them (`/etc`), berth reads and
//! writes them in the container each time, keeps no copy, and labels no digest.

use std::path::{Path, PathBuf};

use crate::engine::Engine;
use crate::error::Result;
use crate::files::write_atomically;
use crate::host::HostUser;
use crate::label::{self, FILES, GROUP, PASSWD};
use crate::spec::ContainerSpec;

/// The shell an image gets where it has bash, and where it has not.
const BASH: &str = "/bin/bash";
const SH: &str = "/bin/sh";

/// The user to add: the container's name for the host user, its ids and home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

/// An image's own `/etc/passwd` and `/etc/group`, and the login shell it offers.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ImageFiles {
    passwd: String,
    group: String,
    /// [`BASH`] where the image has it, else [`SH`].
    shell: String,
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
    /// The shell is the one the image gives that uid, else `shell`.
    pub fn passwd(&self, image: &str, shell: &str) -> String {
        let shell = image
            .lines()
            .filter(|line| field(line, 2).and_then(|u| u.parse().ok()) == Some(self.uid))
            .find_map(|line| field(line, 6).filter(|s| !s.trim().is_empty()))
            .unwrap_or(shell);
        let ours = format!(
            "{}:x:{}:{}:{}:{}:{shell}",
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

    fn merged(&self, image: &ImageFiles) -> Merged {
        Merged {
            passwd: self.passwd(&image.passwd, &image.shell),
            group: self.group(&image.group),
        }
    }
}

/// The files berth writes into a container.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Merged {
    passwd: String,
    group: String,
}

impl Merged {
    /// The value of [`label::IDENTITY`]: what [`Written::parse`] reads back.
    fn label(&self) -> String {
        label::identity_value(&self.passwd, &self.group)
    }

    /// The user's login shell, as written.
    fn shell(&self, name: &str) -> Option<&str> {
        self.passwd
            .lines()
            .find(|line| field(line, 0) == Some(name))
            .and_then(|line| field(line, 6))
    }
}

/// What is left to do once the container exists: write the user into it.
#[derive(Debug)]
pub struct Pending {
    identity: Identity,
    files: Option<Merged>,
}

impl Pending {
    /// The login shell the user gets, where it is known before the create.
    pub fn shell(&self) -> Option<&str> {
        self.files.as_ref()?.shell(&self.identity.name)
    }
}

/// Before the create of `spec` from image `image_id`: nothing when berth does not run
/// the container as `user` ([`label::IDENTITY`]); else the merged files, with `spec`
/// labelled with their digests. The image's files come from the state dir, or once
/// from a helper container. Where the user's mounts cover them, they are read from the
/// container itself after the create ([`settle`]).
pub async fn prepare(
    engine: &Engine,
    spec: &mut ContainerSpec,
    image_id: Option<&str>,
    user: &HostUser,
    home: &str,
    state_dir: &Path,
) -> Result<Option<Pending>> {
    let Some(identity) = spec
        .labels
        .contains_key(label::IDENTITY)
        .then(|| Identity::of(user, home))
        .flatten()
    else {
        return Ok(None);
    };
    if covered(spec) {
        return Ok(Some(Pending {
            identity,
            files: None,
        }));
    }
    let keep_in = image_id.and_then(|id| kept_dir(state_dir, id));
    let image = match keep_in.as_deref().and_then(load) {
        Some(image) => image,
        None => {
            let image = read_image(engine, &spec.image).await?;
            if let Some(dir) = &keep_in {
                // Only a convenience for the next deploy: this one goes on without it.
                keep(dir, &image).ok();
            }
            image
        }
    };
    let files = identity.merged(&image);
    spec.labels
        .insert(label::IDENTITY.to_string(), files.label());
    Ok(Some(Pending {
        identity,
        files: Some(files),
    }))
}

/// Writes the user into the just-created container `id`, where [`prepare`] left that
/// to do. When that fails the container is removed, so that none is left half-made.
pub async fn settle(engine: &Engine, id: &str, pending: Option<Pending>) -> Result<()> {
    let Some(pending) = pending else {
        return Ok(());
    };
    let written = async {
        let files = match pending.files {
            Some(files) => files,
            None => pending.identity.merged(&read_files(engine, id).await?),
        };
        let archive = tar(&[("passwd", files.passwd), ("group", files.group)]);
        engine.upload(id, "/etc", archive).await
    };
    if let Err(err) = written.await {
        engine.remove(id).await.ok();
        return Err(err);
    }
    Ok(())
}

/// The image's files, from a helper container made from it (created, never started,
/// then removed).
async fn read_image(engine: &Engine, image: &str) -> Result<ImageFiles> {
    let helper = engine.create_helper(image, "identity").await?;
    let files = read_files(engine, &helper).await;
    let removed = engine.remove_helper(&helper).await;
    let files = files?;
    removed?;
    Ok(files)
}

/// The passwd, group and shell of container `id`, asked at once.
async fn read_files(engine: &Engine, id: &str) -> Result<ImageFiles> {
    let (passwd, group, bash) = tokio::join!(
        engine.read_file(id, PASSWD),
        engine.read_file(id, GROUP),
        engine.stat(id, BASH),
    );
    Ok(ImageFiles {
        passwd: passwd?.unwrap_or_default(),
        group: group?.unwrap_or_default(),
        shell: match bash? {
            Some(_) => BASH,
            None => SH,
        }
        .to_string(),
    })
}

/// `$STATE/identity/<hex>` for image id `sha256:<hex>`; `None` for an id of any other
/// form, which is kept nowhere.
fn kept_dir(state_dir: &Path, image_id: &str) -> Option<PathBuf> {
    let hex = image_id.strip_prefix("sha256:")?;
    let valid = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    valid.then(|| state_dir.join("identity").join(hex))
}

/// The image's files as kept in `dir`, when all three are there.
fn load(dir: &Path) -> Option<ImageFiles> {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    Some(ImageFiles {
        passwd: read("image-passwd")?,
        group: read("image-group")?,
        shell: read("image-shell")?.trim().to_string(),
    })
}

/// Keeps the image's files in `dir`: the passwd last, so that a passwd there means the
/// rest are.
fn keep(dir: &Path, image: &ImageFiles) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    write_atomically(&dir.join("image-group"), image.group.as_bytes())?;
    write_atomically(&dir.join("image-shell"), image.shell.as_bytes())?;
    write_atomically(&dir.join("image-passwd"), image.passwd.as_bytes())
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
    use crate::label::Written;
    use crate::spec::MountSpec;

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
            ana().passwd(image, SH),
            "root:x:0:0:root:/root:/bin/sh\nana:x:1000:1000:ana:/home/ana:/bin/sh\n"
        );
        assert_eq!(ana().group("root:x:0:"), "root:x:0:\nana:x:1000:\n");
    }

    #[test]
    fn the_shell_is_the_images_for_that_uid_else_the_one_it_offers() {
        let debian = "root:x:0:0:root:/root:/bin/bash\n";
        assert!(ana()
            .passwd(debian, BASH)
            .ends_with(":/home/ana:/bin/bash\n"));
        let ubuntu = "root:x:0:0::/root:/bin/bash\nubuntu:x:1000:1000::/home/ubuntu:/bin/zsh\n";
        let passwd = ana().passwd(ubuntu, BASH);
        assert_eq!(
            passwd.lines().nth(1),
            Some("ana:x:1000:1000:ana:/home/ana:/bin/zsh")
        );
        // An empty shell field of the image's says nothing.
        let blank = "u:x:1000:1000::/home/u:\n";
        assert!(ana()
            .passwd(blank, SH)
            .starts_with("ana:x:1000:1000:ana:/home/ana:/bin/sh\n"));
    }

    #[test]
    fn the_users_line_wins_over_an_image_user_of_the_same_uid() {
        let image = "root:x:0:0::/root:/bin/sh\nubuntu:x:1000:1000::/home/ubuntu:/bin/bash\n";
        let passwd = ana().passwd(image, SH);
        let lines: Vec<&str> = passwd.lines().collect();
        assert_eq!(lines[1], "ana:x:1000:1000:ana:/home/ana:/bin/bash");
        assert_eq!(lines[2], "ubuntu:x:1000:1000::/home/ubuntu:/bin/bash");
        // The image's group of that gid stays as it is.
        let group = "root:x:0:\nubuntu:x:1000:\n";
        assert_eq!(ana().group(group), group);
    }

    #[test]
    fn another_user_of_the_same_name_gives_way() {
        let image = "root:x:0:0::/root:/bin/sh\nana:x:500:500::/home/old:/bin/sh\n";
        let passwd = ana().passwd(image, SH);
        assert!(!passwd.contains(":500:"), "{passwd}");
        assert!(passwd.ends_with("ana:x:1000:1000:ana:/home/ana:/bin/sh\n"));
    }

    #[test]
    fn an_image_without_the_files_gets_them() {
        assert_eq!(
            ana().passwd("", SH),
            "ana:x:1000:1000:ana:/home/ana:/bin/sh\n"
        );
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

    fn debian() -> ImageFiles {
        ImageFiles {
            passwd: "root:x:0:0:root:/root:/bin/bash\n".into(),
            group: "root:x:0:\n".into(),
            shell: BASH.into(),
        }
    }

    #[test]
    fn the_label_tells_berths_files_from_the_same_files_changed_since() {
        let merged = ana().merged(&debian());
        assert_eq!(merged.shell("ana"), Some(BASH));
        let written = Written::parse(&merged.label());
        assert!(matches!(written, Written::Digests { .. }));
        assert!(written.is_berths(PASSWD, &merged.passwd));
        assert!(written.is_berths(GROUP, &merged.group));
        // `useradd alice` in the container.
        let added = format!("{}alice:x:1001:1001::/home/alice:/bin/sh\n", merged.passwd);
        assert!(!written.is_berths(PASSWD, &added));
        assert!(
            !written.is_berths(PASSWD, &merged.group),
            "not each other's"
        );
        assert!(!written.is_berths("/etc/shadow", &merged.passwd));
    }

    #[test]
    fn a_label_without_digests_counts_both_files_as_berths() {
        // What an older berth, or a deploy under a mount of /etc, labels.
        for label in ["1", "", "abc def", &format!("{} x", "a".repeat(64))] {
            let written = Written::parse(label);
            assert_eq!(written, Written::Unrecorded, "{label:?}");
            assert!(written.is_berths(PASSWD, "anything"));
            assert!(written.is_berths(GROUP, "anything"));
            assert!(!written.is_berths("/etc/hosts", "anything"));
        }
    }

    const IMAGE_ID: &str =
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn an_images_files_are_kept_by_its_id_and_read_back_whole() {
        let state = tempfile::tempdir().unwrap();
        let dir = kept_dir(state.path(), IMAGE_ID).unwrap();
        assert_eq!(dir, state.path().join("identity").join(&IMAGE_ID[7..]));
        assert_eq!(load(&dir), None);
        keep(&dir, &debian()).unwrap();
        assert_eq!(load(&dir), Some(debian()));
        // Kept by an older berth, without the shell: read again.
        std::fs::remove_file(dir.join("image-shell")).unwrap();
        assert_eq!(load(&dir), None);
    }

    #[test]
    fn an_image_id_of_another_form_is_kept_nowhere() {
        let state = tempfile::tempdir().unwrap();
        for id in ["", "sha256:../../etc", "sha512:abcd", &IMAGE_ID[..70]] {
            assert_eq!(kept_dir(state.path(), id), None, "{id}");
        }
    }

    #[test]
    fn a_mount_of_the_users_over_etc_covers_the_files() {
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
            let mut spec = ContainerSpec::default();
            cover(&mut spec);
            assert!(covered(&spec), "{spec:?}");
        }
        // Mounts beside /etc, or under another directory, cover nothing.
        for target in ["/etcetera", "/srv/etc", "/etc/ssl"] {
            let mut spec = ContainerSpec::default();
            spec.host.binds.push(format!("/x:{target}"));
            assert!(!covered(&spec), "{target}");
        }
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
