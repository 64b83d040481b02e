//! A tiny Docker registry (HTTP API v2, image manifest schema 2) on 127.0.0.1, so that
//! a real pull can be tested with no network: it serves one image, built here from
//! busybox-static in two layers (busybox alone, then its applets and /etc), and answers
//! 404 for anything else. The engine treats 127.0.0.0/8 as an insecure registry, so
//! plain HTTP is enough.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{docker, unique};

const MANIFEST_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
const CONFIG_TYPE: &str = "application/vnd.docker.container.image.v1+json";
/// The usual layer type. The layers are plain tar all the same: the engine detects a
/// layer's compression from its bytes, not from this name.
const LAYER_TYPE: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Layers are written this many bytes at a time, with [`PAUSE`] between, so that a pull
/// takes long enough (about half a second) for its progress to be seen.
const CHUNK: usize = 64 << 10;
const PAUSE: Duration = Duration::from_millis(15);

/// One served image; the server stops, and the image it served is removed from the
/// engine, on drop. Declare it before a [`super::Sandbox`] that uses the image, so the
/// sandbox's containers are removed first.
pub struct Registry {
    /// `127.0.0.1:PORT/berth-pull-<unique>:1`, the image to pull.
    pub image: String,
    /// The image's repository on this registry, `127.0.0.1:PORT/berth-pull-<unique>`.
    pub repository: String,
    /// The layers' short ids, as the engine shows them (12 hex digits).
    pub layer_ids: Vec<String>,
    stop: Arc<AtomicBool>,
    addr: SocketAddr,
    server: Option<JoinHandle<()>>,
}

/// What the server knows: the image's manifest, and its blobs by digest.
struct Content {
    name: String,
    tag: String,
    manifest: Vec<u8>,
    manifest_digest: String,
    blobs: HashMap<String, Vec<u8>>,
}

impl Registry {
    pub fn start() -> Self {
        Self::serve(false)
    }

    /// A registry whose busybox layer arrives with its last byte changed, so that the
    /// engine fails the pull once the layer is downloaded (a checksum it does not retry).
    pub fn with_a_corrupt_layer() -> Self {
        Self::serve(true)
    }

    fn serve(corrupt: bool) -> Self {
        let name = format!("berth-pull-{}", unique(""));
        let layers = layers();
        let config = config(&layers);
        let mut blobs = HashMap::new();
        let mut descriptors = Vec::new();
        for layer in &layers {
            descriptors.push(descriptor(LAYER_TYPE, layer));
            blobs.insert(digest(layer), layer.clone());
        }
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": descriptor(CONFIG_TYPE, &config),
            "layers": descriptors,
        }))
        .unwrap();
        blobs.insert(digest(&config), config);
        if corrupt {
            let last = blobs
                .get_mut(&digest(&layers[0]))
                .and_then(|b| b.last_mut());
            *last.unwrap() ^= 0xff;
        }
        let layer_ids = layers
            .iter()
            .map(|l| digest(l)["sha256:".len()..][..12].to_string())
            .collect();
        let content = Arc::new(Content {
            name: name.clone(),
            tag: "1".to_string(),
            manifest_digest: digest(&manifest),
            manifest,
            blobs,
        });

        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the test registry");
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let server = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let content = Arc::clone(&content);
                    // The engine fetches layers side by side.
                    std::thread::spawn(move || serve(stream, &content));
                }
            })
        };
        let repository = format!("{addr}/{name}");
        Self {
            image: format!("{repository}:1"),
            repository,
            layer_ids,
            stop,
            addr,
            server: Some(server),
        }
    }

    /// A tag of the served repository that the registry does not have.
    pub fn missing(&self) -> String {
        format!("{}:missing", self.repository)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        TcpStream::connect(self.addr).ok();
        if let Some(server) = self.server.take() {
            server.join().ok();
        }
        docker(&["rmi", "-f", &self.image]);
    }
}

/// Answers requests on one connection until the client closes it.
fn serve(stream: TcpStream, content: &Content) {
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut reader = BufReader::new(&stream);
    // The engine tries HTTPS first. A TLS ClientHello (first byte 0x16) is closed at
    // once, so that it falls back to plain HTTP instead of waiting for a timeout.
    match reader.fill_buf() {
        Ok([0x16, ..]) => {
            stream.shutdown(Shutdown::Both).ok();
            return;
        }
        Ok([_, ..]) => {}
        _ => return,
    }
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            headers.push(line.to_ascii_lowercase());
        }
        // Requests to a registry carry no body worth reading; skip any that comes.
        let length: usize = headers
            .iter()
            .find_map(|h| h.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let mut parts = request_line.split_whitespace();
        let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
            return;
        };
        if respond(&stream, content, method, path).is_err() {
            return;
        }
    }
}

fn respond(out: &TcpStream, content: &Content, method: &str, path: &str) -> std::io::Result<()> {
    let head = method == "HEAD";
    let path = path.split('?').next().unwrap_or(path);
    if method != "GET" && !head {
        return send(out, 405, &[], b"", head, false);
    }
    if path == "/v2/" || path == "/v2" {
        return send(
            out,
            200,
            &[("Content-Type", "application/json")],
            b"{}",
            head,
            false,
        );
    }
    let rest = path.strip_prefix("/v2/").unwrap_or("");
    if let Some((name, reference)) = rest.rsplit_once("/manifests/") {
        if name == content.name
            && (reference == content.tag || reference == content.manifest_digest)
        {
            let headers = [
                ("Content-Type", MANIFEST_TYPE),
                ("Docker-Content-Digest", content.manifest_digest.as_str()),
            ];
            return send(out, 200, &headers, &content.manifest, head, false);
        }
        return not_found(out, "MANIFEST_UNKNOWN", "manifest unknown", head);
    }
    if let Some((name, digest)) = rest.rsplit_once("/blobs/") {
        if let (true, Some(blob)) = (name == content.name, content.blobs.get(digest)) {
            let headers = [
                ("Content-Type", "application/octet-stream"),
                ("Docker-Content-Digest", digest),
            ];
            return send(out, 200, &headers, blob, head, true);
        }
        return not_found(out, "BLOB_UNKNOWN", "blob unknown to registry", head);
    }
    not_found(
        out,
        "NAME_UNKNOWN",
        "repository name not known to registry",
        head,
    )
}

fn not_found(out: &TcpStream, code: &str, message: &str, head: bool) -> std::io::Result<()> {
    let body = serde_json::json!({ "errors": [{ "code": code, "message": message }] });
    let body = body.to_string();
    send(
        out,
        404,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
        head,
        false,
    )
}

fn send(
    mut out: &TcpStream,
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
    head: bool,
    slowly: bool,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Error",
    };
    let mut text = format!(
        "HTTP/1.1 {status} {reason}\r\nDocker-Distribution-API-Version: registry/2.0\r\n\
         Content-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    out.write_all(text.as_bytes())?;
    if head {
        return out.flush();
    }
    if slowly {
        for chunk in body.chunks(CHUNK) {
            out.write_all(chunk)?;
            out.flush()?;
            std::thread::sleep(PAUSE);
        }
    } else {
        out.write_all(body)?;
    }
    out.flush()
}

fn digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn descriptor(media_type: &str, blob: &[u8]) -> serde_json::Value {
    serde_json::json!({ "mediaType": media_type, "size": blob.len(), "digest": digest(blob) })
}

/// The image's configuration: the platform, a default command, and the layers' digests
/// (uncompressed layers: each digest is also its diff id).
fn config(layers: &[Vec<u8>]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|l| digest(l)).collect();
    let architecture = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    serde_json::to_vec(&serde_json::json!({
        "architecture": architecture,
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sh"],
        },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
        "history": [
            { "created": "2024-01-01T00:00:00Z", "created_by": "berth test: /bin/busybox" },
            { "created": "2024-01-01T00:00:00Z", "created_by": "berth test: applets and /etc" },
        ],
    }))
    .unwrap()
}

/// The filesystem of scripts/busybox-image.sh, as two tar layers.
fn layers() -> Vec<Vec<u8>> {
    let busybox_path = Path::new("/bin/busybox");
    let busybox = std::fs::read(busybox_path)
        .expect("the tests need Debian's busybox-static (apt-get install busybox-static)");
    // A time of its own for every registry: layers with the same bytes would share a
    // digest, and the engine would report a layer another test pulled as "Already
    // exists" instead of pulling it.
    let mtime = 1_700_000_000 + u64::from(std::process::id()) * 1000 + next_stamp();

    let mut first = Layer::new(mtime);
    first.dir("bin", 0o755);
    first.file("bin/busybox", 0o755, &busybox);

    let mut second = Layer::new(mtime);
    let list = std::process::Command::new(busybox_path)
        .arg("--list")
        .output()
        .expect("busybox runs");
    for applet in String::from_utf8_lossy(&list.stdout).split_whitespace() {
        if applet != "busybox" {
            second.symlink(&format!("bin/{applet}"), "busybox");
        }
    }
    second.dir("etc", 0o755);
    second.file("etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\n");
    second.file("etc/group", 0o644, b"root:x:0:\n");
    second.dir("tmp", 0o1777);
    second.dir("root", 0o755);
    second.dir("home", 0o755);
    second.dir("opt", 0o755);
    vec![first.finish(), second.finish()]
}

fn next_stamp() -> u64 {
    use std::sync::atomic::AtomicU64;
    static STAMP: AtomicU64 = AtomicU64::new(0);
    STAMP.fetch_add(1, Ordering::SeqCst) % 1000
}

struct Layer {
    tar: tar::Builder<Vec<u8>>,
    mtime: u64,
}

impl Layer {
    fn new(mtime: u64) -> Self {
        Self {
            tar: tar::Builder::new(Vec::new()),
            mtime,
        }
    }

    fn header(&self, kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(size);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(self.mtime);
        header
    }

    fn dir(&mut self, path: &str, mode: u32) {
        let mut header = self.header(tar::EntryType::Directory, mode, 0);
        self.tar
            .append_data(&mut header, format!("{path}/"), std::io::empty())
            .unwrap();
    }

    fn file(&mut self, path: &str, mode: u32, data: &[u8]) {
        let mut header = self.header(tar::EntryType::Regular, mode, data.len() as u64);
        self.tar.append_data(&mut header, path, data).unwrap();
    }

    fn symlink(&mut self, path: &str, target: &str) {
        let mut header = self.header(tar::EntryType::Symlink, 0o777, 0);
        self.tar.append_link(&mut header, path, target).unwrap();
    }

    fn finish(self) -> Vec<u8> {
        self.tar.into_inner().unwrap()
    }
}
