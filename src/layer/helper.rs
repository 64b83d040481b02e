//! The layer reader for users who may not read the engine's directories: berth's own
//! walk ([`super::overlay`]), run by the engine in a short-lived helper container that
//! has the layer's directories bind-mounted read-only. A member of the docker group
//! may start such a container anyway, so this grants nothing new; it works over a
//! remote engine too, since the directories are on the engine's host.
//!
//! The helper runs with no network, a read-only root, 64 MiB of memory, and only the
//! capabilities reading needs: `DAC_READ_SEARCH` to read every file, `SYS_ADMIN` to
//! see the `trusted.overlay.*` marks (without it they are silently left out, and the
//! walk would miss opaque directories). The engine removes it when it exits, also when
//! berth was killed meanwhile.
//!
//! Its image needs no registry: berth imports it on first use from its own binary and
//! the shared libraries it has loaded (`/proc/self/maps`), tagged with berth's version
//! and a hash of which file the binary is (device, inode, size, modification time:
//! every build and install is a new one), and says so once.
//!
//! A helper serves one retire: it is started once (while berth pauses the container),
//! walks each time berth writes `w` on its stdin (the check, then the second look after
//! the stop), or `s` for a walk with its [`Stamp`], and exits when its stdin closes,
//! which dropping the [`Session`] does, as does berth's own exit. Each walk comes back
//! on stdout as records: a kind byte (`A`, `C`, `D`), the path's bytes, NUL; then the
//! stamp where asked (`#` and its hex); a complete walk ends with the record `.`, and a
//! walk that cannot answer exactly with `!` and the reason.

use std::collections::BTreeSet;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::list::{Builder, ChangeList};
use super::overlay::{Dialect, Stamp, Stamped, Unreadable};
use super::Planned;
use crate::cli::LayerWalkArgs;
use crate::container::ChangeKind;
use crate::engine::{Attached, Chunk, Engine};
use crate::error::{Error, Result};

use crate::label;
use crate::spec::{ContainerSpec, MountSpec};
use crate::ui::Printer;

/// The helper image's repository; its tag is `<version>-<hash of the binary>`.
pub const IMAGE_REPO: &str = "berth/layer-reader";
/// The [`label::HELPER`] value of a layer reader.
pub const PURPOSE: &str = "layer";
/// Where the helper finds the layer.
const UPPER: &str = "/layer/upper";
const LOWER: &str = "/layer/lower";
/// What berth writes to ask for a walk, and for a walk with its stamp.
const WALK: u8 = b'w';
const STAMPED: u8 = b's';
/// The record of the stamp's digest, and of one file's signature.
const STAMP: u8 = b'#';
const SIGNED: u8 = b'=';
/// The record that ends a complete walk, and the one that ends a walk that cannot
/// answer (with the reason).
const END: u8 = b'.';
const REFUSED: u8 = b'!';
/// What the helper may use.
const MEMORY: i64 = 64 << 20;
const PIDS: i64 = 16;

/// In the helper: for each `w` read on stdin, walks the layer named by `args` and
/// prints its records; returns at the end of stdin.
pub fn serve(args: &LayerWalkArgs) -> Result<()> {
    let planned = Planned {
        upper: args.upper.clone(),
        lowers: args.lowers.clone(),
        dialect: if args.fuse {
            Dialect::Fuse
        } else {
            Dialect::Kernel
        },
    };
    let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    let mut stdin = io::stdin().lock();
    let mut asked = [0u8; 1];
    let written = (|| -> io::Result<()> {
        loop {
            match stdin.read(&mut asked)? {
                0 => return Ok(()),
                _ if asked[0] != WALK && asked[0] != STAMPED => continue,
                _ => {}
            }
            let mut failed = None;
            let mut stamp = (asked[0] == STAMPED).then(Stamp::default);
            let walked = planned.walk(
                &mut |path, kind| {
                    if failed.is_none() {
                        failed = write_record(&mut out, kind_byte(kind), path).err();
                    }
                },
                stamp.as_mut(),
            );
            if let Some(err) = failed {
                return Err(err);
            }
            match walked {
                Ok(()) => {
                    if let Some(stamp) = stamp {
                        let stamped = stamp.finish();
                        for (path, signature) in &stamped.files {
                            let mut record = format!("{signature:016x}").into_bytes();
                            record.extend_from_slice(path);
                            write_record(&mut out, SIGNED, &record)?;
                        }
                        write_record(&mut out, STAMP, stamped.digest.as_bytes())?;
                    }
                    write_record(&mut out, END, b"")?
                }
                Err(Unreadable(why)) => write_record(&mut out, REFUSED, why.as_bytes())?,
            }
            out.flush()?;
        }
    })();
    written.map_err(|err| Error::failed(format!("cannot write the walk: {err}")))
}

fn kind_byte(kind: ChangeKind) -> u8 {
    match kind {
        ChangeKind::Added => b'A',
        ChangeKind::Modified => b'C',
        ChangeKind::Deleted => b'D',
    }
}

fn write_record(out: &mut impl Write, kind: u8, path: &[u8]) -> io::Result<()> {
    out.write_all(&[kind])?;
    out.write_all(path)?;
    out.write_all(&[0])
}

/// Reads one walk's records as they come, each path as the engine's JSON writes it
/// (U+FFFD for bytes that are not UTF-8); an error for a record that is not one of the
/// helper's.
#[derive(Debug, Default)]
pub struct Records {
    /// A record not complete yet.
    partial: Vec<u8>,
    changes: Builder,
    files: Vec<(Vec<u8>, u64)>,
    stamp: Option<Stamped>,
}

/// What [`Records::feed`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Fed {
    /// The walk goes on.
    More,
    /// The walk is complete: its changes, and its stamp where asked.
    Done(ChangeList, Option<Stamped>),
    /// It could not answer exactly, or wrote what berth does not read: why.
    Failed(String),
}

impl Records {
    pub fn feed(&mut self, bytes: &[u8]) -> Fed {
        let mut rest = bytes;
        while let Some(end) = rest.iter().position(|b| *b == 0) {
            let record = if self.partial.is_empty() {
                &rest[..end]
            } else {
                self.partial.extend_from_slice(&rest[..end]);
                &self.partial[..]
            };
            let after = &rest[end + 1..];
            let kind = match record.first() {
                Some(b'A') => ChangeKind::Added,
                Some(b'C') => ChangeKind::Modified,
                Some(b'D') => ChangeKind::Deleted,
                Some(&END) if record.len() == 1 && after.is_empty() => {
                    return match std::mem::take(&mut self.changes).finish() {
                        Ok(changes) => Fed::Done(changes, self.stamp.take()),
                        Err(Unreadable(why)) => Fed::Failed(why),
                    };
                }
                Some(&STAMP)
                    if self.stamp.is_none()
                        && record.len() == 65
                        && record[1..].iter().all(u8::is_ascii_hexdigit) =>
                {
                    self.stamp = Some(Stamped {
                        digest: String::from_utf8_lossy(&record[1..]).into_owned(),
                        files: std::mem::take(&mut self.files),
                    });
                    self.partial.clear();
                    rest = after;
                    continue;
                }
                Some(&SIGNED) if self.stamp.is_none() && record.len() > 17 => {
                    let signature = std::str::from_utf8(&record[1..17])
                        .ok()
                        .and_then(|hex| u64::from_str_radix(hex, 16).ok());
                    let Some(signature) = signature else {
                        return Fed::Failed(
                            "the helper wrote a signature berth cannot read".into(),
                        );
                    };
                    self.files.push((record[17..].to_vec(), signature));
                    self.partial.clear();
                    rest = after;
                    continue;
                }
                Some(&REFUSED) if after.is_empty() => {
                    return Fed::Failed(String::from_utf8_lossy(&record[1..]).into_owned())
                }
                _ => return Fed::Failed("the helper wrote a record berth does not know".into()),
            };
            let path = &record[1..];
            if !path.starts_with(b"/") {
                return Fed::Failed("the helper wrote a path that is not absolute".into());
            }
            self.changes.push_bytes(path, kind);
            self.partial.clear();
            rest = after;
        }
        self.partial.extend_from_slice(rest);
        Fed::More
    }
}

/// A helper container that walks one container's layer on request.
pub struct Session {
    attached: Attached,
    /// What it wrote on stderr: why it stopped, if it did.
    stderr: Vec<u8>,
}

impl Session {
    /// Starts a helper for `planned`; it waits for [`Session::walk`].
    pub async fn start(
        engine: &Engine,
        planned: &Planned,
        printer: Option<&Printer>,
    ) -> std::result::Result<Self, Unreadable> {
        let image = image(engine, printer).await?;
        let attached = launch(engine, &spec(&image, planned)?).await?;
        Ok(Session {
            attached,
            stderr: Vec::new(),
        })
    }

    /// One walk of the layer as it is now, `stamped` or not.
    pub async fn walk(
        &mut self,
        stamped: bool,
    ) -> std::result::Result<(ChangeList, Option<Stamped>), Unreadable> {
        let ask = if stamped { STAMPED } else { WALK };
        let asked = async {
            self.attached.input.write_all(&[ask]).await?;
            self.attached.input.flush().await
        };
        if let Err(err) = asked.await {
            return Err(self.stopped(&format!("cannot ask the helper to walk: {err}")));
        }
        let mut records = Records::default();
        while let Some(chunk) = self.attached.output.next().await {
            match chunk {
                Ok(Chunk::Stdout(bytes)) => match records.feed(&bytes) {
                    Fed::More => {}
                    Fed::Done(changes, stamp) => return Ok((changes, stamp)),
                    Fed::Failed(why) => return Err(Unreadable(why)),
                },
                Ok(Chunk::Stderr(bytes)) => self.stderr.extend_from_slice(&bytes),
                Err(err) => return Err(self.stopped(&format!("reading the helper: {err}"))),
            }
        }
        Err(self.stopped("the helper stopped before its walk ended"))
    }

    /// Why the helper stopped answering: what it said, else `what`.
    fn stopped(&self, what: &str) -> Unreadable {
        let said = String::from_utf8_lossy(&self.stderr);
        match said.trim().trim_start_matches("error: ") {
            "" => Unreadable(what.to_string()),
            said => Unreadable(format!("{what}: {said}")),
        }
    }
}

/// Runs berth as `args` in a helper container of its own with `mounts` (read-only),
/// to read what only the engine's host can (a volume's files); what it wrote on
/// stdout once it exits, or why it could not run. No stdin; the engine removes it.
pub async fn run_once(
    engine: &Engine,
    mounts: Vec<MountSpec>,
    args: Vec<String>,
    printer: Option<&Printer>,
) -> std::result::Result<Vec<u8>, Unreadable> {
    let image = image(engine, printer).await?;
    let mut spec = helper_spec(&image, mounts, args);
    spec.open_stdin = false;
    spec.stdin_once = false;
    spec.attach_stdin = false;
    let mut attached = launch(engine, &spec).await?;
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    while let Some(chunk) = attached.output.next().await {
        match chunk {
            Ok(Chunk::Stdout(bytes)) => stdout.extend_from_slice(&bytes),
            Ok(Chunk::Stderr(bytes)) => stderr.extend_from_slice(&bytes),
            Err(err) => return Err(Unreadable(format!("reading the helper: {err}"))),
        }
    }
    let said = String::from_utf8_lossy(&stderr);
    match said.trim().trim_start_matches("error: ") {
        "" => Ok(stdout),
        said => Err(Unreadable(format!("the helper failed: {said}"))),
    }
}

/// Creates the helper container of `spec`, attaches to the streams it has, and starts
/// it; one that could not start is removed (the engine removes only what ran).
async fn launch(
    engine: &Engine,
    spec: &ContainerSpec,
) -> std::result::Result<Attached, Unreadable> {
    let failed = |what: &str, err: Error| Unreadable(format!("the helper container {what}: {err}"));
    let id = engine
        .create(spec)
        .await
        .map_err(|err| failed("could not be created", err))?
        .ok_or_else(|| Unreadable("the helper container could not be created".into()))?;
    let streams = [spec.attach_stdin, true, true];
    let started = async {
        let attached = engine.attach(&id, streams, None).await?;
        engine.start(&id).await?;
        Ok::<_, Error>(attached)
    }
    .await;
    if started.is_err() {
        let _ = engine.remove_helper(&id).await;
    }
    started.map_err(|err| failed("could not be started", err))
}

/// A helper container of `image` that runs berth as `cmd` with `mounts`: no network,
/// a read-only root, the capabilities reading needs, little memory and few processes.
fn helper_spec(image: &Image, mounts: Vec<MountSpec>, cmd: Vec<String>) -> ContainerSpec {
    let mut spec = ContainerSpec {
        image: image.reference(),
        entrypoint: Some(image.entrypoint.clone()),
        cmd,
        user: Some("0:0".into()),
        open_stdin: true,
        stdin_once: true,
        attach_stdin: true,
        attach_stdout: true,
        attach_stderr: true,
        ..Default::default()
    };
    spec.labels
        .insert(label::HELPER.to_string(), PURPOSE.to_string());
    let host = &mut spec.host;
    host.mounts = mounts;
    host.network_mode = Some("none".into());
    host.readonly_rootfs = true;
    host.cap_drop = vec!["ALL".into()];
    host.cap_add = vec!["DAC_READ_SEARCH".into(), "SYS_ADMIN".into()];
    host.memory = Some(MEMORY);
    host.pids_limit = Some(PIDS);
    host.auto_remove = true;
    host.security_opt = vec!["no-new-privileges".into()];
    spec.extra.log_driver = Some("none".into());
    spec
}

/// The helper container for `planned`.
fn spec(image: &Image, planned: &Planned) -> std::result::Result<ContainerSpec, Unreadable> {
    let bind = |source: &Path, target: String| -> std::result::Result<MountSpec, Unreadable> {
        let source = source
            .to_str()
            .ok_or_else(|| Unreadable("a layer directory's path is not UTF-8".into()))?;
        Ok(MountSpec {
            // Nothing mounted beneath a layer directory is the layer's.
            bind_nonrecursive: true,
            ..MountSpec::bind(source, target, true)
        })
    };
    let mut mounts = vec![bind(&planned.upper, UPPER.to_string())?];
    let mut cmd = vec!["layer-walk".to_string()];
    if planned.dialect == Dialect::Fuse {
        cmd.push("--fuse".into());
    }
    cmd.push(UPPER.into());
    for (i, lower) in planned.lowers.iter().enumerate() {
        let target = format!("{LOWER}/{i}");
        mounts.push(bind(lower, target.clone())?);
        cmd.push(target);
    }
    Ok(helper_spec(image, mounts, cmd))
}

/// The helper image: berth's binary and the libraries it loaded.
struct Image {
    tag: String,
    /// How to start berth in it: through the dynamic loader, with the libraries'
    /// folders, so that no link needs to exist in the image.
    entrypoint: Vec<String>,
    exe: PathBuf,
    libraries: BTreeSet<PathBuf>,
}

impl Image {
    fn reference(&self) -> String {
        format!("{IMAGE_REPO}:{}", self.tag)
    }

    /// What this berth would put in its image.
    fn of_this_berth() -> io::Result<Self> {
        let exe = std::env::current_exe()?;
        // Which build this is, without reading it: a new build or install of berth
        // is a new file, with a new inode or modification time.
        let meta = std::fs::metadata(&exe)?;
        let build = format!(
            "{}:{}:{}:{}",
            meta.dev(),
            meta.ino(),
            meta.len(),
            meta.mtime_nsec() + meta.mtime() * 1_000_000_000
        );
        let hash = Sha256::digest(build.as_bytes());
        let hex: String = hash[..6].iter().map(|b| format!("{b:02x}")).collect();
        let maps = std::fs::read_to_string("/proc/self/maps")?;
        let libraries = libraries(&maps, &exe);
        let loader = libraries.iter().find(|lib| {
            lib.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("ld-"))
        });
        let entrypoint = match loader {
            Some(loader) => {
                let dirs: BTreeSet<String> = libraries
                    .iter()
                    .filter_map(|lib| lib.parent()?.to_str().map(str::to_string))
                    .collect();
                vec![
                    loader.to_string_lossy().into_owned(),
                    "--library-path".into(),
                    dirs.into_iter().collect::<Vec<_>>().join(":"),
                    "/berth".into(),
                ]
            }
            None => vec!["/berth".into()],
        };
        Ok(Image {
            tag: format!("{}-{hex}", env!("CARGO_PKG_VERSION")),
            entrypoint,
            exe,
            libraries,
        })
    }

    /// The image's root file system, as a tar.
    fn tar(&self) -> io::Result<Vec<u8>> {
        let mut tar = tar::Builder::new(Vec::new());
        let mut dirs = BTreeSet::new();
        let mut add = |tar: &mut tar::Builder<Vec<u8>>, from: &Path, to: &Path| {
            for dir in to.ancestors().skip(1).filter(|d| !d.as_os_str().is_empty()) {
                if dir != Path::new("/") && dirs.insert(dir.to_path_buf()) {
                    let mut header = tar::Header::new_gnu();
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(0o755);
                    header.set_size(0);
                    tar.append_data(&mut header, relative(dir), io::empty())?;
                }
            }
            let data = std::fs::read(from)?;
            let mut header = tar::Header::new_gnu();
            header.set_mode(0o755);
            header.set_size(data.len() as u64);
            tar.append_data(&mut header, relative(to), data.as_slice())
        };
        let mut entries: Vec<(PathBuf, PathBuf)> = self
            .libraries
            .iter()
            .map(|lib| (lib.clone(), lib.clone()))
            .collect();
        entries.sort();
        entries.push((self.exe.clone(), PathBuf::from("/berth")));
        for (from, to) in &entries {
            add(&mut tar, from, to)?;
        }
        tar.into_inner()
    }
}

fn relative(path: &Path) -> &Path {
    path.strip_prefix("/").unwrap_or(path)
}

/// The shared objects in a process's memory map, but the program itself.
fn libraries(maps: &str, exe: &Path) -> BTreeSet<PathBuf> {
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .filter(|path| path.starts_with('/'))
        .map(PathBuf::from)
        .filter(|path| path != exe)
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".so") || n.contains(".so."))
        })
        .collect()
}

/// The helper image, imported when the engine does not have it yet. An engine host
/// that cannot run berth's binary (another architecture) fails the helper's start,
/// and the caller asks the engine instead.
async fn image(
    engine: &Engine,
    printer: Option<&Printer>,
) -> std::result::Result<Image, Unreadable> {
    let image = Image::of_this_berth()
        .map_err(|err| Unreadable(format!("cannot read berth's own binary: {err}")))?;
    let reference = image.reference();
    let found = engine.image_id(&reference).await;
    if found.map_err(|err| Unreadable(err.message))?.is_some() {
        return Ok(image);
    }
    let tar = image
        .tar()
        .map_err(|err| Unreadable(format!("cannot pack berth's layer reader: {err}")))?;
    engine
        .import(IMAGE_REPO, &image.tag, (label::HELPER, PURPOSE), tar)
        .await
        .map_err(|err| Unreadable(err.message))?;
    if let Some(printer) = printer {
        printer.note(&format!(
            "imported {reference}: berth's layer reader, which reads a container's \
             changes in a helper container (once per berth build)"
        ));
    }
    forget_older_builds(engine, &image.tag).await;
    Ok(image)
}

/// Removes the layer-reader images of earlier builds of this version of berth, and the
/// ones whose tag a concurrent import took over: each build imports its own. Images of
/// other versions stay (another install on the same engine uses them), and so does an
/// image a container still uses (the engine refuses). Best effort.
async fn forget_older_builds(engine: &Engine, tag: &str) {
    let Ok(images) = engine.images_labelled(label::HELPER, PURPOSE).await else {
        return;
    };
    let ours = format!("{IMAGE_REPO}:{tag}");
    let version = format!("{IMAGE_REPO}:{}-", env!("CARGO_PKG_VERSION"));
    for (id, tags) in images {
        if tags.iter().all(|t| t.starts_with(&version) && *t != ours) {
            let _ = engine.remove_image(&id).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_in_any_pieces() {
        let mut out = Vec::new();
        write_record(&mut out, b'A', b"/srv/caf\xe9").unwrap();
        write_record(&mut out, b'D', b"/etc/issue").unwrap();
        write_record(&mut out, END, b"").unwrap();
        let want: ChangeList = [
            ("/srv/caf\u{fffd}", ChangeKind::Added),
            ("/etc/issue", ChangeKind::Deleted),
        ]
        .into_iter()
        .collect();
        for piece in [1, 2, 3, 7, out.len()] {
            let mut records = Records::default();
            let mut fed = Fed::More;
            for chunk in out.chunks(piece) {
                assert_eq!(fed, Fed::More);
                fed = records.feed(chunk);
            }
            assert_eq!(fed, Fed::Done(want.clone(), None), "in pieces of {piece}");
        }
    }

    #[test]
    fn a_refusal_or_a_stranger_record_fails_the_walk() {
        let fed = |bytes: &[u8]| Records::default().feed(bytes);
        assert_eq!(
            fed(b"A/x\0!a redirect at /y\0"),
            Fed::Failed("a redirect at /y".into())
        );
        assert!(matches!(fed(b"Xfoo\0.\0"), Fed::Failed(_)));
        assert!(matches!(fed(b"Arelative\0.\0"), Fed::Failed(_)));
        assert!(matches!(fed(b".\0A/late\0"), Fed::Failed(_)));
        assert_eq!(fed(b"A/x\0A/y"), Fed::More);
    }

    #[test]
    fn the_libraries_are_the_shared_objects_mapped() {
        let maps = "\
55d0 r--p 00000000 fd:01 1 /usr/local/bin/berth
7f00 r--p 00000000 fd:01 2 /usr/lib/x86_64-linux-gnu/libc.so.6
7f01 r-xp 00001000 fd:01 2 /usr/lib/x86_64-linux-gnu/libc.so.6
7f02 r--p 00000000 fd:01 3 /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
7f03 rw-p 00000000 00:00 0 [heap]
7f04 r--p 00000000 fd:01 4 /usr/lib/locale/C.utf8/LC_CTYPE
";
        let found = libraries(maps, Path::new("/usr/local/bin/berth"));
        assert_eq!(
            found.into_iter().collect::<Vec<_>>(),
            vec![
                PathBuf::from("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
                PathBuf::from("/usr/lib/x86_64-linux-gnu/libc.so.6"),
            ]
        );
    }
}
