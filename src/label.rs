//! The labels berth puts on containers and images, and how their values are written
//! and read. A leaf: it imports nothing of berth's, so that the engine's client, the
//! plan and the readers of a container all agree on one spelling.

use sha2::{Digest, Sha256};

pub const PROJECT: &str = "berth.project";
pub const USER: &str = "berth.user";
pub const WORKSPACE: &str = "berth.workspace";
pub const DATA: &str = "berth.data";
pub const DATA_ID: &str = "berth.data-id";
/// Containers that must share one data root (`data.group`, default the project).
pub const DATA_GROUP: &str = "berth.data-group";
pub const VERSION: &str = "berth.version";
/// On a `persist` volume: the container path it keeps.
pub const PERSIST: &str = "berth.persist";
/// Containers of `berth run`/`create`: deploy, retire and shell leave them alone.
pub const RUN: &str = "berth.run";
/// berth wrote the user into /etc/passwd and /etc/group ([`crate::identity`]); the
/// value holds the digests of what it wrote.
pub const IDENTITY: &str = "berth.identity";
/// The GPUs the container holds, as ids: `0,2`. The source of truth for allocation.
pub const GPUS: &str = "berth.gpus";
/// A short-lived container berth made to read an image or a layer (its value says
/// what for); never a project's.
pub const HELPER: &str = "berth.helper";

/// The files berth writes into a container for the user ([`IDENTITY`] holds their
/// digests).
pub const PASSWD: &str = "/etc/passwd";
pub const GROUP: &str = "/etc/group";

/// The two files berth writes.
pub const FILES: [&str; 2] = [PASSWD, GROUP];

/// `0,2` → `["0", "2"]`.
pub fn parse_gpus(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .collect()
}

pub fn gpus_value(ids: &[String]) -> String {
    ids.join(",")
}

/// The value of [`IDENTITY`] for the passwd and group files berth writes: what
/// [`Written::parse`] reads back.
pub fn identity_value(passwd: &str, group: &str) -> String {
    format!("{} {}", digest(passwd), digest(group))
}

/// What a container's [`IDENTITY`] says berth wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// The digests of the passwd and group files as berth wrote them: either file with
    /// other content was changed since.
    Digests { passwd: String, group: String },
    /// berth wrote both, but kept no digest (a mount of the user's covers them, or an
    /// older berth made the container): they count as berth's.
    Unrecorded,
}

impl Written {
    pub fn parse(label: &str) -> Self {
        match label.split_once(' ') {
            Some((passwd, group)) if is_digest(passwd) && is_digest(group) => Self::Digests {
                passwd: passwd.to_string(),
                group: group.to_string(),
            },
            _ => Self::Unrecorded,
        }
    }

    /// Whether `text`, now at `path` in the container, is what berth wrote there.
    pub fn is_berths(&self, path: &str, text: &str) -> bool {
        match self {
            Self::Unrecorded => FILES.contains(&path),
            Self::Digests { passwd, group } => match path {
                PASSWD => digest(text) == *passwd,
                GROUP => digest(text) == *group,
                _ => false,
            },
        }
    }
}

/// sha256 of `text`, in hex.
fn digest(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn is_digest(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_labels_round_trip() {
        let ids = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(parse_gpus("0,2"), ids(&["0", "2"]));
        assert_eq!(parse_gpus(" 0 , ,2 "), ids(&["0", "2"]));
        assert!(parse_gpus("").is_empty());
        assert_eq!(gpus_value(&ids(&["0", "2"])), "0,2");
    }
}
