//! berth's backup archive: one tar stream compressed with zstd, which opens with a
//! header ([`HEADER`], what the archive is of) and closes with a manifest ([`MANIFEST`]):
//! every entry's path, kind, size, mode, owner, time, link target and, for a file, the
//! sha256 of its contents. [`Writer`] hashes what it writes as it goes, so an archive
//! is written in one pass; [`read`] hashes what it reads, and an archive is whole only
//! when the manifest, read last, agrees with every entry before it.
//!
//! Names are bytes throughout: the manifest writes a name that is not UTF-8 as
//! `{"hex": "…"}`. Only names below the archive's sections are accepted on reading: no
//! absolute name, no `..`, and no hard link to what came before outside its section.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The first entry: what the archive is of, as its maker wrote it.
pub const HEADER: &str = "berth-backup.json";
/// The last entry: every entry before it, with the sha256 of each file.
pub const MANIFEST: &str = "berth-manifest.json";
/// The format [`Writer`] writes and [`read`] reads.
pub const FORMAT: u32 = 1;
/// The largest header or manifest [`read`] takes into memory.
const MAX_JSON: u64 = 256 << 20;

/// A name as bytes, written in JSON as a string where it is UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Name {
    Text(String),
    Raw { hex: String },
}

impl Name {
    pub fn new(bytes: &[u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(text) => Self::Text(text.to_string()),
            Err(_) => Self::Raw {
                hex: bytes.iter().map(|b| format!("{b:02x}")).collect(),
            },
        }
    }

    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Self::Text(text) => text.as_bytes().to_vec(),
            Self::Raw { hex } => (0..hex.len() / 2)
                .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Dir,
    Symlink,
    /// A hard link to a file earlier in the archive.
    Link,
}

/// Who owns an entry, its mode and its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Meta {
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
}

/// One entry of the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub path: Name,
    pub kind: Kind,
    #[serde(default)]
    pub size: u64,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<Name>,
}

impl Entry {
    pub fn meta(&self) -> Meta {
        Meta {
            mode: self.mode,
            uid: self.uid,
            gid: self.gid,
            mtime: self.mtime,
        }
    }
}

/// The manifest: the entries in archive order.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub entries: Vec<Entry>,
}

/// Writes an archive into `W`, compressing as it goes.
pub struct Writer<W: Write> {
    tar: tar::Builder<zstd::stream::write::Encoder<'static, W>>,
    entries: Vec<Entry>,
    /// Bytes of file contents written.
    pub bytes: u64,
    /// Files, links and symbolic links written.
    pub files: u64,
    /// Told the bytes written so far after each file; an error from it stops the write.
    watch: Option<Watch>,
}

/// What [`Writer::copy_as_paths`] left out, by container path.
#[derive(Debug, Default)]
pub struct LeftOut {
    /// FIFOs and device nodes.
    pub special: Vec<Vec<u8>>,
    /// Hard links whose first name was not in the archive: each to be fetched alone.
    pub unlinked: Vec<Vec<u8>>,
}

/// What [`Writer::watch`] takes.
pub type Watch = Box<dyn FnMut(u64) -> io::Result<()> + Send>;

impl<W: Write> Writer<W> {
    /// Starts an archive with `header` as its first entry, compressed at zstd `level`
    /// by `threads` threads beside this one (0: in this one).
    pub fn new(out: W, level: i32, threads: u32, header: &impl Serialize) -> io::Result<Self> {
        let mut encoder = zstd::stream::write::Encoder::new(out, level)?;
        if threads > 0 {
            encoder.multithread(threads)?;
        }
        let mut writer = Self {
            tar: tar::Builder::new(encoder),
            entries: Vec::new(),
            bytes: 0,
            files: 0,
            watch: None,
        };
        let json = serde_json::to_vec_pretty(header)?;
        writer.json(HEADER, &json)?;
        Ok(writer)
    }

    /// Has `watch` told the bytes of file contents written so far, after each file: a
    /// progress bar, and a way to stop (it returns an error).
    pub fn watch(&mut self, watch: Watch) {
        self.watch = Some(watch);
    }

    fn json(&mut self, name: &str, json: &[u8]) -> io::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_size(json.len() as u64);
        self.tar.append_data(&mut header, name, json)
    }

    fn header(kind: tar::EntryType, meta: Meta, size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(meta.mode & 0o7777);
        header.set_uid(meta.uid);
        header.set_gid(meta.gid);
        header.set_mtime(meta.mtime);
        header.set_size(size);
        header
    }

    fn record(&mut self, path: &[u8], kind: Kind, meta: Meta, size: u64) -> &mut Entry {
        if kind != Kind::Dir {
            self.files += 1;
        }
        self.entries.push(Entry {
            path: Name::new(path),
            kind,
            size,
            mode: meta.mode & 0o7777,
            uid: meta.uid,
            gid: meta.gid,
            mtime: meta.mtime,
            sha256: None,
            link: None,
        });
        self.entries.last_mut().expect("just pushed")
    }

    pub fn dir(&mut self, path: &[u8], meta: Meta) -> io::Result<()> {
        let mut header = Self::header(tar::EntryType::Directory, meta, 0);
        self.tar
            .append_data(&mut header, os_path(path), io::empty())?;
        self.record(path, Kind::Dir, meta, 0);
        Ok(())
    }

    /// A file of `size` bytes read from `contents`: exactly that many, or an error
    /// where it has fewer (it shrank while it was read).
    pub fn file(
        &mut self,
        path: &[u8],
        meta: Meta,
        size: u64,
        contents: impl Read,
    ) -> io::Result<()> {
        let mut header = Self::header(tar::EntryType::Regular, meta, size);
        let mut hashing = Hashing::new(contents.take(size));
        self.tar
            .append_data(&mut header, os_path(path), &mut hashing)?;
        if hashing.read < size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "it shrank while it was read; back up again",
            ));
        }
        self.bytes += size;
        let digest = hashing.hex();
        self.record(path, Kind::File, meta, size).sha256 = Some(digest);
        match &mut self.watch {
            Some(watch) => watch(self.bytes),
            None => Ok(()),
        }
    }

    pub fn symlink(&mut self, path: &[u8], meta: Meta, target: &[u8]) -> io::Result<()> {
        let mut header = Self::header(tar::EntryType::Symlink, meta, 0);
        self.tar
            .append_link(&mut header, os_path(path), os_path(target))?;
        self.record(path, Kind::Symlink, meta, 0).link = Some(Name::new(target));
        Ok(())
    }

    /// A hard link to `target`, a file written before.
    pub fn link(&mut self, path: &[u8], meta: Meta, target: &[u8]) -> io::Result<()> {
        let mut header = Self::header(tar::EntryType::Link, meta, 0);
        self.tar
            .append_link(&mut header, os_path(path), os_path(target))?;
        self.record(path, Kind::Link, meta, 0).link = Some(Name::new(target));
        Ok(())
    }

    /// Copies the entries of `archive` (one the engine sent for a folder, named after
    /// its last component) below `prefix`: `data/a.csv` becomes `<prefix>/a.csv`.
    /// Returns what it left out, by the names in `archive`.
    pub fn copy_from(&mut self, prefix: &[u8], archive: impl Read) -> io::Result<LeftOut> {
        self.copy_placed(archive, |name| Some(join(prefix, below_first(name))))
    }

    /// Copies the entries of `archive`, the engine's archive of container path `root`
    /// (named after its last component), that `keep` keeps (by container path), as
    /// `<prefix><container path>`: `/opt/work/a` becomes `container/opt/work/a`.
    /// Returns what it left out, by container path.
    pub fn copy_as_paths(
        &mut self,
        prefix: &[u8],
        root: &str,
        archive: impl Read,
        keep: impl Fn(&[u8]) -> bool,
    ) -> io::Result<LeftOut> {
        let base = root.rsplit_once('/').map_or("", |(parent, _)| parent);
        let at = |name: &[u8]| {
            let mut path = base.as_bytes().to_vec();
            path.push(b'/');
            path.extend_from_slice(name.strip_prefix(b"./").unwrap_or(name));
            while path.len() > 1 && path.ends_with(b"/") {
                path.pop();
            }
            path
        };
        let left = self.copy_placed(archive, |name| {
            let container = at(name);
            keep(&container).then(|| join(prefix, &container[1..]))
        })?;
        Ok(LeftOut {
            special: left.special.iter().map(|name| at(name)).collect(),
            unlinked: left.unlinked.iter().map(|name| at(name)).collect(),
        })
    }

    /// Copies each entry of the engine's `archive` to the path `place` gives its name
    /// (none: left out). A hard link whose first name was not copied before, a FIFO and
    /// a device node are left out, and returned by their names.
    fn copy_placed(
        &mut self,
        archive: impl Read,
        place: impl Fn(&[u8]) -> Option<Vec<u8>>,
    ) -> io::Result<LeftOut> {
        let mut left = LeftOut::default();
        let mut archive = tar::Archive::new(archive);
        for entry in archive.entries()? {
            let mut entry = entry?;
            let name = entry.path_bytes().into_owned();
            if let Err(why) = check_name(&name) {
                let shown = crate::names::shown(&name);
                return Err(io::Error::other(format!("the engine sent {shown}: {why}")));
            }
            let Some(path) = place(&name) else {
                continue;
            };
            let header = entry.header();
            let meta = Meta {
                mode: header.mode().unwrap_or(0o644),
                uid: header.uid().unwrap_or(0),
                gid: header.gid().unwrap_or(0),
                mtime: header.mtime().unwrap_or(0),
            };
            let link = || entry.link_name_bytes().unwrap_or_default().into_owned();
            match header.entry_type() {
                tar::EntryType::Directory => self.dir(&path, meta)?,
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let size = entry.size();
                    self.file(&path, meta, size, &mut entry)?
                }
                tar::EntryType::Symlink => {
                    let target = link();
                    self.symlink(&path, meta, &target)?
                }
                tar::EntryType::Link => {
                    let written = place(&link()).filter(|target| {
                        self.entries
                            .iter()
                            .any(|e| e.kind == Kind::File && e.path.bytes() == *target)
                    });
                    match written {
                        Some(target) => self.link(&path, meta, &target)?,
                        None => left.unlinked.push(name),
                    }
                }
                _ => left.special.push(name),
            }
        }
        Ok(left)
    }

    /// The paths written below `prefix`, as container paths (`/opt/a`), lossily: to
    /// match the engine's names of changes.
    pub fn paths_under(&self, prefix: &[u8]) -> std::collections::HashSet<String> {
        self.entries
            .iter()
            .filter_map(|entry| {
                let path = entry.path.bytes();
                let rest = path.strip_prefix(prefix)?;
                rest.starts_with(b"/").then(|| crate::names::lossy(rest))
            })
            .collect()
    }

    /// Writes the manifest, ends the tar stream and the compression, and returns the
    /// output, flushed.
    pub fn finish(mut self) -> io::Result<W> {
        let manifest = Manifest {
            format: FORMAT,
            entries: std::mem::take(&mut self.entries),
        };
        let json = serde_json::to_vec(&manifest)?;
        self.json(MANIFEST, &json)?;
        let encoder = self.tar.into_inner()?;
        let mut out = encoder.finish()?;
        out.flush()?;
        Ok(out)
    }
}

/// Where and why an archive is not whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// The entry that failed, as [`crate::names::shown`] prints it; the last one read
    /// where the archive ends early.
    pub entry: String,
    pub reason: String,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.entry, self.reason)
    }
}

/// A whole archive's header (as JSON) and manifest.
#[derive(Debug)]
pub struct Whole {
    pub header: serde_json::Value,
    pub manifest: Manifest,
    /// Bytes of file contents.
    pub bytes: u64,
}

/// Reads an archive from start to end, handing each entry between the header and the
/// manifest to `sink` with a reader of its contents (a file's; nothing for the others);
/// what `sink` does not read is read here, since every byte is hashed. Whole only when
/// the manifest agrees with every entry; the first disagreement is the error, as is an
/// error of `sink`, named by its entry.
pub fn read(
    input: impl Read,
    mut sink: impl FnMut(&Entry, &mut dyn Read) -> io::Result<()>,
) -> Result<Whole, Broken> {
    let broken = |entry: &[u8], reason: String| Broken {
        entry: crate::names::shown(entry),
        reason,
    };
    let decoder =
        zstd::stream::read::Decoder::new(input).map_err(|e| broken(b"(start)", reason(&e)))?;
    let mut archive = tar::Archive::new(decoder);
    let entries = archive
        .entries()
        .map_err(|e| broken(b"(start)", reason(&e)))?;
    let mut header: Option<serde_json::Value> = None;
    let mut manifest: Option<Manifest> = None;
    let mut seen: Vec<Entry> = Vec::new();
    let mut last = b"(start)".to_vec();
    let mut bytes = 0;
    for item in entries {
        let mut item = item.map_err(|e| {
            broken(
                &last,
                format!("the archive ends here or is damaged: {}", reason(&e)),
            )
        })?;
        let path = item.path_bytes().into_owned();
        last.clone_from(&path);
        if manifest.is_some() {
            return Err(broken(&path, "an entry after the manifest".into()));
        }
        if header.is_none() {
            if path != HEADER.as_bytes() {
                return Err(broken(
                    &path,
                    format!("not a berth backup: it does not open with {HEADER}"),
                ));
            }
            header = Some(json(&mut item).map_err(|why| broken(&path, why))?);
            continue;
        }
        if path == MANIFEST.as_bytes() {
            manifest = Some(json(&mut item).map_err(|why| broken(&path, why))?);
            continue;
        }
        let entry = entry_of(&mut item, &path, &seen).map_err(|why| broken(&path, why))?;
        let mut hashing = Hashing::new(&mut item);
        sink(&entry, &mut hashing).map_err(|e| broken(&path, reason(&e)))?;
        io::copy(&mut hashing, &mut io::sink()).map_err(|e| {
            broken(
                &path,
                format!("the archive ends here or is damaged: {}", reason(&e)),
            )
        })?;
        let mut entry = entry;
        if entry.kind == Kind::File {
            entry.sha256 = Some(hashing.hex());
            bytes += entry.size;
        }
        seen.push(entry);
    }
    let header = header.ok_or_else(|| broken(b"(start)", "the archive is empty".into()))?;
    let manifest = manifest.ok_or_else(|| {
        broken(
            &last,
            "the archive ends here, without its manifest: it was cut short".into(),
        )
    })?;
    if manifest.format != FORMAT {
        return Err(broken(
            MANIFEST.as_bytes(),
            format!("format {} (this berth reads {FORMAT})", manifest.format),
        ));
    }
    for (at, want) in manifest.entries.iter().enumerate() {
        let path = want.path.bytes();
        match seen.get(at) {
            None => {
                return Err(broken(
                    &path,
                    "in the manifest, missing from the archive".into(),
                ))
            }
            Some(got) if got != want => {
                let why = if got.path != want.path {
                    format!(
                        "the manifest names {} here",
                        crate::names::shown(&got.path.bytes())
                    )
                } else if got.sha256 != want.sha256 {
                    "its contents differ from the manifest's sha256".to_string()
                } else {
                    "its size, mode, owner, time or link differ from the manifest".to_string()
                };
                return Err(broken(&path, why));
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = seen.get(manifest.entries.len()) {
        return Err(broken(
            &extra.path.bytes(),
            "in the archive, missing from the manifest".into(),
        ));
    }
    Ok(Whole {
        header,
        manifest,
        bytes,
    })
}

fn reason(err: &io::Error) -> String {
    crate::error::io_reason(err)
}

fn json<T: serde::de::DeserializeOwned>(item: &mut impl Read) -> Result<T, String> {
    let mut text = Vec::new();
    item.take(MAX_JSON)
        .read_to_end(&mut text)
        .map_err(|e| format!("the archive ends here or is damaged: {}", reason(&e)))?;
    serde_json::from_slice(&text).map_err(|e| format!("not readable: {e}"))
}

/// The manifest entry an archive entry stands for, once its name is safe: relative,
/// without `..`, and a hard link names a file before it.
fn entry_of(
    item: &mut tar::Entry<impl Read>,
    path: &[u8],
    seen: &[Entry],
) -> Result<Entry, String> {
    check_name(path)?;
    let header = item.header();
    let kind = match header.entry_type() {
        tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
        tar::EntryType::Directory => Kind::Dir,
        tar::EntryType::Symlink => Kind::Symlink,
        tar::EntryType::Link => Kind::Link,
        other => {
            return Err(format!(
                "an entry of a kind berth does not write ({other:?})"
            ))
        }
    };
    let link = match kind {
        Kind::Symlink | Kind::Link => {
            let target = item
                .link_name_bytes()
                .ok_or_else(|| "a link without a target".to_string())?
                .into_owned();
            if kind == Kind::Symlink {
                check_symlink(path, &target)?;
            } else {
                check_name(&target)?;
                let earlier = seen
                    .iter()
                    .any(|e| e.kind == Kind::File && e.path.bytes() == target);
                if !earlier {
                    return Err("a hard link to no file before it".into());
                }
            }
            Some(Name::new(&target))
        }
        _ => None,
    };
    let header = item.header();
    Ok(Entry {
        path: Name::new(path),
        kind,
        size: if kind == Kind::File { item.size() } else { 0 },
        mode: header.mode().map_err(|e| reason(&e))? & 0o7777,
        uid: header.uid().map_err(|e| reason(&e))?,
        gid: header.gid().map_err(|e| reason(&e))?,
        mtime: header.mtime().map_err(|e| reason(&e))?,
        sha256: None,
        link,
    })
}

/// A name is relative, names something, and never climbs: no `..` component.
fn check_name(path: &[u8]) -> Result<(), String> {
    if path.starts_with(b"/") {
        return Err("an absolute name".into());
    }
    if path.split(|&b| b == b'/').any(|part| part == b"..") {
        return Err("a name that climbs out with ..".into());
    }
    if path
        .split(|&b| b == b'/')
        .all(|part| part.is_empty() || part == b".")
    {
        return Err("an empty name".into());
    }
    Ok(())
}

/// A relative symbolic link stays within its section (the first component of `path`):
/// `workspace/a/l -> ../../etc` leaves it. An absolute target names a path in the
/// container the folder is mounted in, and is kept; berth never follows either.
fn check_symlink(path: &[u8], target: &[u8]) -> Result<(), String> {
    if target.starts_with(b"/") {
        return Ok(());
    }
    // The folders above the link, below its section.
    let mut depth = path.split(|&b| b == b'/').filter(|p| !p.is_empty()).count() as i64 - 2;
    for part in target.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!(
                        "a symbolic link to {} leaves its folder",
                        crate::names::shown(target)
                    ));
                }
            }
            _ => depth += 1,
        }
    }
    Ok(())
}

/// The name below its first component: `data/a.csv` → `a.csv`, `data` → ``; trailing
/// slashes gone.
pub fn below_first(name: &[u8]) -> &[u8] {
    let name = name.strip_prefix(b"./").unwrap_or(name);
    let name = name.strip_suffix(b"/").unwrap_or(name);
    match name.iter().position(|&b| b == b'/') {
        Some(at) => &name[at + 1..],
        None => b"",
    }
}

/// `prefix/rest`, or `prefix` where `rest` is empty; trailing slashes gone.
pub fn join(prefix: &[u8], rest: &[u8]) -> Vec<u8> {
    let rest = rest.strip_suffix(b"/").unwrap_or(rest);
    let mut path = prefix.to_vec();
    if !rest.is_empty() {
        path.push(b'/');
        path.extend_from_slice(rest);
    }
    path
}

/// A name as bytes, as a path.
pub fn os_path(bytes: &[u8]) -> &std::path::Path {
    use std::os::unix::ffi::OsStrExt;
    std::path::Path::new(std::ffi::OsStr::from_bytes(bytes))
}

/// A reader that hashes what passes through it.
pub struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    read: u64,
}

impl<R: Read> Hashing<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            read: 0,
        }
    }

    /// The sha256 of what has passed, in hex.
    pub fn hex(&self) -> String {
        crate::names::hex(&self.hasher.clone().finalize())
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        Meta {
            mode: 0o644,
            uid: 1000,
            gid: 100,
            mtime: 1_700_000_000,
        }
    }

    /// An archive of a small tree, with a name that is not UTF-8.
    fn sample() -> Vec<u8> {
        let mut w = Writer::new(Vec::new(), 1, 0, &serde_json::json!({"project": "p"})).unwrap();
        w.dir(b"workspace", meta()).unwrap();
        w.file(b"workspace/a.txt", meta(), 5, &b"hello"[..])
            .unwrap();
        w.file(b"workspace/\xff.bin", meta(), 3, &b"raw"[..])
            .unwrap();
        w.symlink(b"workspace/l", meta(), b"a.txt").unwrap();
        w.link(b"workspace/h", meta(), b"workspace/a.txt").unwrap();
        w.finish().unwrap()
    }

    /// Each entry's name and contents, as [`read`] hands them over.
    type Contents = Vec<(Vec<u8>, Vec<u8>)>;

    fn files(archive: &[u8]) -> Result<(Whole, Contents), Broken> {
        let mut got = Vec::new();
        let whole = read(archive, |entry, contents| {
            let mut data = Vec::new();
            contents.read_to_end(&mut data)?;
            got.push((entry.path.bytes(), data));
            Ok(())
        })?;
        Ok((whole, got))
    }

    #[test]
    fn an_archive_reads_back_whole_with_its_header_and_names_as_bytes() {
        let (whole, got) = files(&sample()).unwrap();
        assert_eq!(whole.header["project"], "p");
        assert_eq!(whole.bytes, 8);
        assert_eq!(got[1], (b"workspace/a.txt".to_vec(), b"hello".to_vec()));
        assert_eq!(got[2].0, b"workspace/\xff.bin");
        let entries = &whole.manifest.entries;
        assert_eq!(entries.len(), 5);
        assert_eq!(
            entries[2].path,
            Name::Raw {
                hex: "776f726b73706163652fff2e62696e".into()
            }
        );
        assert_eq!(
            entries[1].sha256.as_deref(),
            Some("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
        );
        assert_eq!(
            (entries[1].uid, entries[1].gid, entries[1].mode),
            (1000, 100, 0o644)
        );
        assert_eq!(entries[4].kind, Kind::Link);
    }

    /// The tar stream inside an archive, and an archive of a tar stream.
    fn untar(archive: &[u8]) -> Vec<u8> {
        zstd::decode_all(archive).unwrap()
    }

    fn retar(tar: &[u8]) -> Vec<u8> {
        zstd::encode_all(tar, 1).unwrap()
    }

    #[test]
    fn changed_contents_are_caught_by_the_manifest() {
        let mut tar = untar(&sample());
        let at = tar.windows(5).position(|w| w == b"hello").unwrap();
        tar[at] = b'j';
        let broken = files(&retar(&tar)).unwrap_err();
        assert_eq!(broken.entry, "workspace/a.txt");
        assert!(broken.reason.contains("sha256"), "{}", broken.reason);
    }

    #[test]
    fn a_cut_short_archive_names_where_it_ends() {
        let archive = sample();
        let broken = files(&archive[..archive.len() / 2]).unwrap_err();
        assert!(
            broken.reason.contains("ends here") || broken.reason.contains("cut short"),
            "{broken}"
        );
        let tar = untar(&archive);
        // The manifest gone, the tar stream otherwise whole.
        let at = tar
            .windows(MANIFEST.len())
            .position(|w| w == MANIFEST.as_bytes())
            .unwrap();
        let mut cut = tar[..at].to_vec();
        cut.extend_from_slice(&[0; 1024]);
        let broken = files(&retar(&cut)).unwrap_err();
        assert!(broken.reason.contains("without its manifest"), "{broken}");
        assert_eq!(broken.entry, "workspace/h");
    }

    /// A tar stream that opens with a header, holds `entry`, and ends with an empty
    /// manifest: what a hostile archive could hold.
    fn hostile(name: &[u8], kind: tar::EntryType, link: &[u8]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let json = |builder: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            builder.append_data(&mut h, name, data).unwrap();
        };
        json(&mut builder, HEADER, b"{}");
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(0);
        // Written raw: the tar crate refuses `..` itself.
        let field = &mut h.as_old_mut().name;
        field[..name.len()].copy_from_slice(name);
        if !link.is_empty() {
            h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        }
        h.set_cksum();
        builder.append(&h, &[][..]).unwrap();
        json(&mut builder, MANIFEST, br#"{"format":1,"entries":[]}"#);
        retar(&builder.into_inner().unwrap())
    }

    #[test]
    fn names_that_climb_out_and_links_that_leave_are_refused() {
        use tar::EntryType::*;
        let cases: [(&[u8], tar::EntryType, &[u8], &str); 5] = [
            (b"workspace/../../etc/x", Regular, b"", "climbs"),
            (b"/etc/x", Regular, b"", "absolute"),
            (
                b"workspace/a/l",
                Symlink,
                b"../../../etc",
                "leaves its folder",
            ),
            (b"workspace/h", Link, b"/etc/passwd", "absolute"),
            (b"workspace/f", Fifo, b"", "kind"),
        ];
        for (name, kind, link, said) in cases {
            let broken = files(&hostile(name, kind, link)).unwrap_err();
            assert!(
                broken.reason.contains(said),
                "{}: {broken}",
                crate::names::shown(name)
            );
        }
        // A link within its folder, and an absolute one (a path in the container), are
        // kept; they get no further than the manifest here, which does not list them.
        for link in [&b"../b"[..], b"/usr/bin/python3"] {
            let broken = files(&hostile(b"workspace/a/l", Symlink, link)).unwrap_err();
            assert!(
                broken.reason.contains("missing from the manifest"),
                "{broken}"
            );
        }
    }

    #[test]
    fn entries_from_the_engine_are_copied_below_a_prefix() {
        let mut engine = tar::Builder::new(Vec::new());
        for (name, kind, data) in [
            ("srv", tar::EntryType::Directory, &b""[..]),
            ("srv/notes.md", tar::EntryType::Regular, b"# notes"),
            ("srv/pipe", tar::EntryType::Fifo, b""),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(0o640);
            h.set_uid(33);
            h.set_size(data.len() as u64);
            h.set_cksum();
            engine.append_data(&mut h, name, data).unwrap();
        }
        let engine = engine.into_inner().unwrap();
        let mut w = Writer::new(Vec::new(), 1, 0, &serde_json::json!({})).unwrap();
        let left = w.copy_from(b"volumes/srv", &engine[..]).unwrap();
        assert_eq!(left.special, [b"srv/pipe".to_vec()]);
        let (whole, got) = files(&w.finish().unwrap()).unwrap();
        assert_eq!(
            got[1],
            (b"volumes/srv/notes.md".to_vec(), b"# notes".to_vec())
        );
        assert_eq!(
            whole.manifest.entries[0].path,
            Name::Text("volumes/srv".into())
        );
        assert_eq!(whole.manifest.entries[1].uid, 33);
    }

    #[test]
    fn a_file_that_shrank_while_read_is_an_error() {
        let mut w = Writer::new(Vec::new(), 1, 0, &serde_json::json!({})).unwrap();
        let err = w
            .file(b"workspace/f", meta(), 10, &b"short"[..])
            .unwrap_err();
        assert!(err.to_string().contains("shrank"), "{err}");
    }
}
