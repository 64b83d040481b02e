//! Berth's files on disk: the small files it keeps (state, caches), written so that a
//! reader never sees half of one, whoever else writes the same file at the same moment;
//! and a path resolved as the kernel would find it, for the guards to judge.

use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Writes `bytes` to `path` whole, or not at all: into a temporary file beside it,
/// then renamed over it. The directory must exist.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomically_with(path, bytes, None)
}

/// [`write_atomically`], with permissions `mode` whatever the umask, set before the
/// file appears under its name.
pub fn write_atomically_with(path: &Path, bytes: &[u8], mode: Option<u32>) -> io::Result<()> {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |name| name.to_string_lossy().into_owned());
    let temporary = path.with_file_name(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&temporary, bytes)
        .and_then(|()| match mode {
            Some(mode) => {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(mode))
            }
            None => Ok(()),
        })
        .and_then(|()| std::fs::rename(&temporary, path))
        .inspect_err(|_| {
            std::fs::remove_file(&temporary).ok();
        })
}

/// `path` as the kernel would find it: the longest existing prefix with its symlinks
/// followed, then the rest with `.` and `..` taken lexically (nothing there exists to
/// be a link).
pub fn resolve(path: &Path) -> PathBuf {
    let components: Vec<Component> = path.components().collect();
    for split in (0..=components.len()).rev() {
        let head: PathBuf = components[..split].iter().collect();
        if head.as_os_str().is_empty() {
            continue;
        }
        if let Ok(mut real) = head.canonicalize() {
            for part in &components[split..] {
                match part {
                    Component::ParentDir => {
                        real.pop();
                    }
                    Component::Normal(name) => real.push(name),
                    _ => {}
                }
            }
            return real;
        }
    }
    path.to_path_buf()
}

/// Makes `dir`, and what is missing above it, each new folder private to the user
/// (0700); a folder that exists is left as it is.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_replaced_whole_and_nothing_is_left_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn the_mode_is_the_one_asked_for_whatever_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passwd");
        write_atomically_with(&path, b"x", Some(0o644)).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
        write_atomically_with(&path, b"x", Some(0o600)).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_failed_write_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-dir").join("state.json");
        assert!(write_atomically(&missing, b"x").is_err());
        // A directory in the way of the rename: the temporary file goes again.
        let blocked = dir.path().join("blocked");
        std::fs::create_dir_all(blocked.join("inside")).unwrap();
        assert!(write_atomically(&blocked, b"x").is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
