//! Who you are inside the container: `id -un`, `whoami` and `ls -l` answer with your
//! host name, in images that have never heard of you, without rebuilding them.
//!
//! After the container is created and before it starts, berth reads the image's
//! `/etc/passwd` and `/etc/group` from it, adds your user and group (your uid and gid,
//! your persistent `$HOME`), and writes them back into the container. The container is
//! labelled `berth.identity`, so that retire knows these two files are berth's, not
//! your work.

use std::collections::BTreeMap;

use crate::engine::Engine;
use crate::error::Result;
use crate::host::HostUser;
use crate::plan::label;

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

    /// Writes both files into the created container `id`.
    pub async fn install(&self, engine: &Engine, id: &str) -> Result<()> {
        let passwd = engine.read_file(id, PASSWD).await?.unwrap_or_default();
        let group = engine.read_file(id, GROUP).await?.unwrap_or_default();
        let files = [
            ("passwd", self.passwd(&passwd)),
            ("group", self.group(&group)),
        ];
        engine.upload(id, "/etc", tar(&files)).await
    }
}

/// Writes `user` into the just-created container `id` when its labels say berth runs it
/// as them ([`label::IDENTITY`]). When that fails the container is removed, so that
/// none is left half-made.
pub async fn settle(
    engine: &Engine,
    id: &str,
    labels: &BTreeMap<String, String>,
    user: &HostUser,
    home: &str,
) -> Result<()> {
    let Some(identity) = labels
        .contains_key(label::IDENTITY)
        .then(|| Identity::of(user, home))
        .flatten()
    else {
        return Ok(());
    };
    if let Err(err) = identity.install(engine, id).await {
        engine.remove(id).await.ok();
        return Err(err);
    }
    Ok(())
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
