//! The mount guard: a user's `-v` may not shadow `/workspace` or the data target with
//! another source, nor sit over or under them, or the container would quietly write
//! somewhere other than where everyone thinks.

use std::path::Path;

use crate::dockerargs::VolumeSpec;
use crate::error::{Error, Result};

/// One of berth's own mounts that user mounts must leave alone.
pub struct Protected<'a> {
    pub name: &'a str,
    pub target: &'a str,
    pub source: &'a Path,
}

/// A mount the user asked for, however it was spelled (`-v`, `--mount`, `--tmpfs`).
pub struct UserMount {
    /// As the user wrote it, for the message.
    pub spelled: String,
    /// Host path or volume name; `None` for anonymous volumes and tmpfs.
    pub source: Option<String>,
    pub target: String,
}

/// Deploy's `volumes` and `-v`.
pub fn check(protected: &[Protected], volumes: &[VolumeSpec]) -> Result<()> {
    let mounts: Vec<UserMount> = volumes
        .iter()
        .map(|v| UserMount {
            spelled: format!("-v {}", v.to_arg()),
            source: v.source.clone(),
            target: v.target.clone(),
        })
        .collect();
    check_user(protected, &mounts)
}

pub fn check_user(protected: &[Protected], mounts: &[UserMount]) -> Result<()> {
    for mount in mounts {
        let target = crate::dockerargs::normalize_container_path(&mount.target);
        for own in protected {
            let same =
                target == own.target && mount.source.as_deref().map(Path::new) == Some(own.source);
            if same || !overlaps(&target, own.target) {
                continue;
            }
            return Err(Error::refused(format!(
                "the mount `{}` would shadow {} ({} <- {})",
                mount.spelled,
                own.name,
                own.target,
                own.source.display()
            ))
            .hint(format!(
                "mount it elsewhere (not at, above or below {}); berth mounts {} itself",
                own.target, own.name
            )));
        }
    }
    Ok(())
}

/// Whether one container path is the other or lies inside it.
fn overlaps(a: &str, b: &str) -> bool {
    let inside = |x: &str, dir: &str| {
        x == dir
            || dir == "/"
            || x.strip_prefix(dir)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    inside(a, b) || inside(b, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn protected() -> Vec<Protected<'static>> {
        vec![
            Protected {
                name: "the workspace",
                target: "/workspace",
                source: Path::new("/home/a/workspace/p"),
            },
            Protected {
                name: "the data root",
                target: "/data",
                source: Path::new("/mnt/data"),
            },
        ]
    }

    fn refused(spec: &str) -> bool {
        let volume = VolumeSpec::parse(spec).unwrap();
        check(&protected(), &[volume]).is_err()
    }

    #[test]
    fn mounts_at_over_or_under_a_protected_target_are_refused() {
        assert!(refused("/other:/workspace"));
        assert!(refused("/other:/workspace/"));
        assert!(refused("/other:/data:ro"));
        assert!(refused("/other:/data/sub"));
        assert!(refused("/other:/"));
        assert!(refused("named:/data"));
        assert!(refused("/data"));
    }

    #[test]
    fn other_targets_and_the_same_source_are_fine() {
        assert!(!refused("/scratch:/scratch"));
        assert!(!refused("/x:/database"));
        assert!(!refused("/x:/workspace2"));
        assert!(!refused("/mnt/data:/data"));
    }

    #[test]
    fn the_refusal_names_both_sides() {
        let volume = VolumeSpec::parse("/opt/ai-lab-data:/data").unwrap();
        let err = check(&protected(), &[volume]).unwrap_err();
        assert_eq!(err.code(), 3);
        assert!(err.message.contains("/opt/ai-lab-data") && err.message.contains("/mnt/data"));
    }
}
