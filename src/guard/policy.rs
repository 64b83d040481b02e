//! The policy guard: the admin's rules (allowed images, forbidden options, mount roots,
//! `[limits]`) checked against the final create request, the one thing the engine will
//! be asked for, so that no flag, file or variable can get around them. Pure: the
//! callers gather the facts (the request, the allowed roots, counts from the engine).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::policy::{Forbidden, Policy};
use crate::error::{Error, Result};
use crate::glob::glob_match;
use crate::spec::{ContainerSpec, MountKind};
use crate::units::{format_cpus, format_size};

const ASK: &str = "ask the administrator if you need it";

/// Host directories a bind mount's source may lie in, and how a source is found on the
/// host: the caller's resolver (symlinks followed, `files::resolve`), so that the guard
/// itself reads nothing.
#[derive(Debug, Clone)]
pub struct Roots {
    /// The workspace root, the data root (if any), berth's own mount sources (the
    /// persistent home), and the policy's `allowed_mount_roots`; resolved.
    pub dirs: Vec<PathBuf>,
    resolve: fn(&Path) -> PathBuf,
}

impl Roots {
    /// `dirs`, resolved by `resolve` as the sources will be.
    pub fn new(dirs: impl IntoIterator<Item = PathBuf>, resolve: fn(&Path) -> PathBuf) -> Self {
        Self {
            dirs: dirs.into_iter().map(|d| resolve(&d)).collect(),
            resolve,
        }
    }

    fn resolve(&self, path: &Path) -> PathBuf {
        (self.resolve)(path)
    }

    /// The roots as a refusal lists them.
    fn listed(&self) -> impl Iterator<Item = String> + '_ {
        self.dirs
            .iter()
            .map(|d| format!("allowed: {}", d.display()))
    }

    fn allows(&self, source: &Path) -> bool {
        let source = self.resolve(source);
        self.dirs.iter().any(|dir| source.starts_with(dir))
    }
}

/// Checks `spec` against the policy read from `path`.
pub fn check(path: &Path, policy: &Policy, spec: &ContainerSpec, roots: &Roots) -> Result<()> {
    let refuse = |rule: &str, what: String| {
        Error::refused(format!("policy {} {rule}: {what}", path.display()))
    };

    if !policy.allowed_images.is_empty()
        && !policy
            .allowed_images
            .iter()
            .any(|p| image_allowed(p, &spec.image))
    {
        return Err(refuse(
            "allows only some images (allowed_images)",
            format!("{} is not one of them", spec.image),
        )
        .details(
            policy
                .allowed_images
                .iter()
                .map(|p| format!("allowed: {p}")),
        )
        .hint("use an allowed image (--image, or `image` in berth.toml)"));
    }

    for rule in &policy.forbid {
        if let Some(used) = uses(*rule, spec) {
            return Err(Error::refused(format!(
                "policy {} forbids {}: {used}",
                path.display(),
                rule.name()
            ))
            .hint(format!("run without {used}; {ASK}")));
        }
    }

    if policy.allowed_mount_roots.is_some() {
        check_sources(path, host_paths(spec), roots)?;
    }

    let limits = &policy.limits;
    if let Some(max) = &limits.max_memory {
        let over = match spec.host.memory {
            Some(bytes) if bytes > 0 => u64::try_from(bytes).unwrap_or(u64::MAX) > max.0,
            _ => true,
        };
        if over {
            return Err(refuse(
                &format!("limits memory to {} (max_memory)", format_size(max.0)),
                requested(spec.host.memory.map(|b| format_size(b.unsigned_abs()))),
            )
            .hint(format!("ask for at most --memory {}", format_size(max.0))));
        }
    }
    if let Some(max) = &limits.max_cpus {
        let over = match spec.host.nano_cpus {
            Some(nano) if nano > 0 => nano > max.0,
            _ => true,
        };
        if over {
            return Err(refuse(
                &format!("limits cpus to {} (max_cpus)", format_cpus(max.0)),
                requested(spec.host.nano_cpus.map(format_cpus)),
            )
            .hint(format!("ask for at most --cpus {}", format_cpus(max.0))));
        }
    }
    Ok(())
}

fn requested(value: Option<String>) -> String {
    match value {
        Some(value) if !value.starts_with('0') => format!("{value} was requested"),
        _ => "no limit was requested".to_string(),
    }
}

/// How `spec` uses the forbidden option, as a flag, if it does.
fn uses(rule: Forbidden, spec: &ContainerSpec) -> Option<String> {
    let host = &spec.host;
    let is_host = |mode: &Option<String>| mode.as_deref() == Some("host");
    match rule {
        Forbidden::Privileged => host.privileged.then(|| "--privileged".to_string()),
        Forbidden::HostNetwork => is_host(&host.network_mode).then(|| "--network host".into()),
        Forbidden::HostPid => is_host(&host.pid_mode).then(|| "--pid host".into()),
        Forbidden::HostIpc => is_host(&host.ipc_mode).then(|| "--ipc host".into()),
        Forbidden::CapAdd => {
            (!host.cap_add.is_empty()).then(|| format!("--cap-add {}", host.cap_add.join(",")))
        }
        Forbidden::Devices => host
            .devices
            .first()
            .map(|d| format!("--device {}", d.path_on_host)),
        Forbidden::Join => joins(spec).into_iter().next().map(|(spelled, _)| spelled),
    }
}

/// Every host path `spec` mounts, with how it was spelled: `-v` and `--mount` binds,
/// and volumes whose driver options make them a bind or a device mount
/// (`volume-opt=o=bind,volume-opt=device=/`).
fn host_paths(spec: &ContainerSpec) -> Vec<(String, String)> {
    let binds = spec.host.binds.iter().filter_map(|bind| {
        let source = bind.split(':').next().unwrap_or_default();
        source
            .starts_with('/')
            .then(|| (source.to_string(), format!("-v {bind}")))
    });
    let mounts = spec
        .host
        .mounts
        .iter()
        .filter_map(|m| match (m.kind, &m.source) {
            (MountKind::Bind, Some(source)) => Some((
                source.clone(),
                format!("--mount type=bind,source={source},target={}", m.target),
            )),
            (MountKind::Volume, _) => volume_host_path(&m.volume_options).map(|device| {
                (
                    device.clone(),
                    format!(
                        "--mount type=volume,target={},volume-opt=device={device}",
                        m.target
                    ),
                )
            }),
            _ => None,
        });
    binds.chain(mounts).collect()
}

/// The host path a local volume's driver options mount, if any: `device=` with `o=bind`
/// (or `type=none`) is a bind mount of that path; any other absolute `device=` mounts
/// a host device. A remote device (`type=nfs`, `device=:/export`) is not a host path.
pub fn volume_host_path(options: &BTreeMap<String, String>) -> Option<String> {
    options
        .get("device")
        .filter(|device| device.starts_with('/'))
        .cloned()
}

/// Refuses the first of `sources` outside `roots`.
fn check_sources(path: &Path, sources: Vec<(String, String)>, roots: &Roots) -> Result<()> {
    for (source, spelled) in sources {
        if !roots.allows(Path::new(&source)) {
            return Err(Error::refused(format!(
                "policy {} limits mounts to the workspace root, the data root and \
                 allowed_mount_roots: `{spelled}` mounts {}",
                path.display(),
                roots.resolve(Path::new(&source)).display()
            ))
            .details(roots.listed())
            .hint(format!(
                "move the files into your workspace, or use a named volume; {ASK}"
            )));
        }
    }
    Ok(())
}

/// A named volume that already exists, which a request mounts as it is: its driver
/// options were set when it was made (`docker volume create --opt ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedVolume {
    pub name: String,
    pub options: BTreeMap<String, String>,
}

/// The names of the named volumes `spec` mounts (`-v NAME:/x`, `--mount
/// type=volume,source=NAME`), for the caller to look up.
pub fn named_volumes(spec: &ContainerSpec) -> Vec<String> {
    let binds = spec.host.binds.iter().filter_map(|bind| {
        let source = bind.split(':').next().unwrap_or_default();
        (!source.is_empty() && !source.starts_with('/')).then(|| source.to_string())
    });
    let mounts = spec
        .host
        .mounts
        .iter()
        .filter(|m| m.kind == MountKind::Volume)
        .filter_map(|m| m.source.clone());
    let mut names: Vec<String> = binds.chain(mounts).collect();
    names.sort();
    names.dedup();
    names
}

/// Existing named volumes that are really host paths count as bind mounts.
pub fn check_volumes(
    path: &Path,
    policy: &Policy,
    volumes: &[NamedVolume],
    roots: &Roots,
) -> Result<()> {
    if policy.allowed_mount_roots.is_none() {
        return Ok(());
    }
    let sources = volumes
        .iter()
        .filter_map(|v| {
            volume_host_path(&v.options).map(|device| (device, format!("-v {}:…", v.name)))
        })
        .collect();
    check_sources(path, sources, roots)
}

/// The containers `spec` joins: (how it was spelled, the container named).
pub fn joins(spec: &ContainerSpec) -> Vec<(String, String)> {
    let host = &spec.host;
    [
        ("--network", &host.network_mode),
        ("--pid", &host.pid_mode),
        ("--ipc", &host.ipc_mode),
    ]
    .into_iter()
    .filter_map(|(flag, mode)| {
        let other = mode.as_deref()?.strip_prefix("container:")?;
        Some((format!("{flag} container:{other}"), other.to_string()))
    })
    .chain(
        [("--volumes-from", "VolumesFrom"), ("--link", "Links")]
            .into_iter()
            .flat_map(|(flag, field)| {
                let values = spec.extra.lists.get(field).into_iter().flatten();
                values.map(move |value| {
                    let name = value.split(':').next().unwrap_or_default();
                    (format!("{flag} {value}"), name.to_string())
                })
            }),
    )
    .collect()
}

/// A container a request joins, and whose it is by its `berth.user` label (`None`: no
/// such container, or no label).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    pub spelled: String,
    pub name: String,
    pub owner: Option<String>,
}

/// Under a policy, only the caller's own containers may be joined.
pub fn check_joins(path: &Path, joined: &[Joined], uid: u32) -> Result<()> {
    let mine = uid.to_string();
    match joined.iter().find(|j| j.owner.as_deref() != Some(&mine)) {
        Some(j) => Err(Error::refused(format!(
            "policy {} lets you join only your own containers: `{}` joins {}, which is \
             not one of yours",
            path.display(),
            j.spelled,
            j.name
        ))
        .hint(format!("join a container berth made for you; {ASK}"))),
        None => Ok(()),
    }
}

/// One of berth's own mounts (the workspace root, the workspace, the persistent home),
/// as found on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnMount {
    pub what: &'static str,
    pub path: PathBuf,
    /// With its symlinks followed.
    pub resolved: PathBuf,
    /// Its owner's uid; `None` when it does not exist yet (berth makes it, as you).
    pub owner: Option<u32>,
}

/// Under a policy that restricts mounts, berth's own mounts must be the caller's and lie
/// within `roots` (their home, the pinned workspace root, `allowed_mount_roots`), so
/// that `BERTH_WORKSPACE_ROOT=/` and a project named `etc` cannot mount the host's
/// `/etc`. Root is not held to this: it could run docker itself.
pub fn check_own(
    path: &Path,
    policy: &Policy,
    own: &[OwnMount],
    uid: u32,
    roots: &Roots,
) -> Result<()> {
    if uid == 0 || !policy.restricts_mounts() {
        return Ok(());
    }
    for mount in own {
        let shown = if mount.path == mount.resolved {
            mount.path.display().to_string()
        } else {
            format!("{} (→ {})", mount.path.display(), mount.resolved.display())
        };
        if let Some(owner) = mount.owner.filter(|&owner| owner != uid) {
            return Err(Error::refused(format!(
                "policy {}: berth mounts {} {shown}, which is not yours (its owner is uid {owner})",
                path.display(),
                mount.what
            ))
            .hint(
                "use a workspace root and a home of your own (BERTH_WORKSPACE_ROOT, XDG_DATA_HOME)",
            ));
        }
        if !roots.dirs.iter().any(|dir| mount.resolved.starts_with(dir)) {
            return Err(Error::refused(format!(
                "policy {}: berth mounts {} {shown}, outside your home, the pinned workspace \
                 root and allowed_mount_roots",
                path.display(),
                mount.what
            ))
            .details(roots.listed())
            .hint(format!(
                "keep your workspaces in your home directory; {ASK}"
            )));
        }
    }
    Ok(())
}

/// Whether `image` (as given) matches `pattern`. A pattern with no tag or digest also
/// matches the image at any tag or digest: `ubuntu` allows `ubuntu:22.04`.
pub fn image_allowed(pattern: &str, image: &str) -> bool {
    if glob_match(pattern, image) {
        return true;
    }
    let last = |s: &str| s.rsplit('/').next().unwrap_or_default().to_string();
    if last(pattern).contains([':', '@']) {
        return false;
    }
    glob_match(pattern, strip_tag(image))
}

/// `repo/name:tag@digest` without its tag and digest (a registry's `:port` stays).
fn strip_tag(image: &str) -> &str {
    let image = image.split_once('@').map_or(image, |(name, _)| name);
    let slash = image.rfind('/').map_or(0, |at| at + 1);
    match image[slash..].find(':') {
        Some(colon) => &image[..slash + colon],
        None => image,
    }
}

/// `max_containers_per_user`: `have` is how many berth containers the user has now, and
/// one more would be created.
pub fn check_container_count(path: &Path, policy: &Policy, have: usize) -> Result<()> {
    match policy.limits.max_containers_per_user {
        Some(max) if have >= max as usize => Err(Error::refused(format!(
            "policy {} limits containers to {max} per user (max_containers_per_user): \
             you have {have}",
            path.display()
        ))
        .hint("`berth list` shows them; `berth retire PROJECT` removes one you are done with")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::file::{self, Cpus, Size};
    use crate::spec::{DeviceSpec, MountSpec};

    const PATH: &str = "/etc/berth/policy.toml";

    /// No roots at all: no bind mount is allowed.
    fn no_roots() -> Roots {
        Roots::new([], Path::to_path_buf)
    }

    fn policy(text: &str) -> Policy {
        file::parse_as(text, Path::new(PATH)).unwrap()
    }

    fn spec(image: &str) -> ContainerSpec {
        ContainerSpec {
            image: image.into(),
            ..Default::default()
        }
    }

    fn verdict(policy: &Policy, spec: &ContainerSpec, roots: &Roots) -> Result<()> {
        check(Path::new(PATH), policy, spec, roots)
    }

    #[test]
    fn image_globs() {
        assert!(image_allowed("pytorch/*", "pytorch/pytorch:2.1"));
        assert!(!image_allowed("pytorch/*", "pytorch/a/b"));
        assert!(image_allowed("nvcr.io/nvidia/**", "nvcr.io/nvidia/a/b:1"));
        assert!(!image_allowed("nvcr.io/nvidia/**", "nvcr.io/other/a"));
        assert!(image_allowed("ubuntu", "ubuntu:22.04"));
        assert!(image_allowed("ubuntu", "ubuntu@sha256:abc"));
        assert!(image_allowed("ubuntu", "ubuntu"));
        assert!(!image_allowed("ubuntu", "ubuntu2"));
        assert!(!image_allowed("ubuntu:22.04", "ubuntu:24.04"));
        assert!(image_allowed("ubuntu:2*", "ubuntu:22.04"));
        assert!(image_allowed("localhost:5000/*", "localhost:5000/x:1"));
        assert!(!image_allowed("localhost:5000/*", "evil/localhost:5000/x"));
        assert!(image_allowed("*", "alpine:3"));
        assert!(!image_allowed("*", "library/alpine"));
        assert!(image_allowed("**", "library/alpine"));
        assert!(glob_match("a*c", "abbc") && !glob_match("a*c", "ab/c"));
    }

    #[test]
    fn no_policy_rules_allow_anything() {
        let mut s = spec("anything:1");
        s.host.privileged = true;
        s.host.binds.push("/etc:/host-etc".into());
        s.host.network_mode = Some("host".into());
        assert!(verdict(&Policy::default(), &s, &no_roots()).is_ok());
    }

    #[test]
    fn images_outside_the_list_are_refused() {
        let p = policy("allowed_images = [\"pytorch/*\"]");
        let err = verdict(&p, &spec("alpine:3"), &no_roots()).unwrap_err();
        assert_eq!(err.code(), 3);
        assert!(err.message.contains(PATH) && err.message.contains("allowed_images"));
        assert!(verdict(&p, &spec("pytorch/pytorch:2"), &no_roots()).is_ok());
    }

    #[test]
    fn each_forbidden_option_is_refused_by_name() {
        let p = policy(
            r#"forbid = ["privileged", "host-network", "host-pid", "host-ipc", "cap-add", "devices"]"#,
        );
        type Apply = Box<dyn Fn(&mut ContainerSpec)>;
        let cases: Vec<(&str, Apply)> = vec![
            ("privileged", Box::new(|s| s.host.privileged = true)),
            (
                "host-network",
                Box::new(|s| s.host.network_mode = Some("host".into())),
            ),
            (
                "host-pid",
                Box::new(|s| s.host.pid_mode = Some("host".into())),
            ),
            (
                "host-ipc",
                Box::new(|s| s.host.ipc_mode = Some("host".into())),
            ),
            (
                "cap-add",
                Box::new(|s| s.host.cap_add.push("SYS_ADMIN".into())),
            ),
            (
                "devices",
                Box::new(|s| {
                    s.host.devices.push(DeviceSpec {
                        path_on_host: "/dev/fuse".into(),
                        path_in_container: "/dev/fuse".into(),
                        permissions: "rwm".into(),
                    })
                }),
            ),
        ];
        for (name, apply) in cases {
            let mut s = spec("x");
            apply(&mut s);
            let err = verdict(&p, &s, &no_roots()).unwrap_err();
            assert_eq!(err.code(), 3);
            assert!(
                err.message
                    .starts_with(&format!("policy {PATH} forbids {name}")),
                "{}",
                err.message
            );
        }
        // Other network, pid and ipc modes are fine.
        let mut s = spec("x");
        s.host.network_mode = Some("bridge".into());
        s.host.ipc_mode = Some("private".into());
        assert!(verdict(&p, &s, &no_roots()).is_ok());
    }

    #[test]
    fn bind_sources_must_lie_in_a_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ws");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(root.join("p")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("p/link")).unwrap();
        let roots = Roots::new([root.clone()], crate::files::resolve);
        let p = policy("allowed_mount_roots = []");
        let with_bind = |source: &Path| {
            let mut s = spec("x");
            s.host.binds.push(format!("{}:/m:ro", source.display()));
            s
        };
        let with_mount = |source: &Path| {
            let mut s = spec("x");
            s.host
                .mounts
                .push(MountSpec::bind(source.display().to_string(), "/m", false));
            s
        };
        for make in [&with_bind as &dyn Fn(&Path) -> ContainerSpec, &with_mount] {
            assert!(verdict(&p, &make(&root.join("p")), &roots).is_ok());
            assert!(verdict(&p, &make(&root.join("p/new/dir")), &roots).is_ok());
            for escape in [
                outside.clone(),
                root.join("p/link"),
                root.join("p/link/x"),
                root.join("p/../../outside"),
                root.join("p/new/../../../outside"),
                PathBuf::from("/"),
            ] {
                let err = verdict(&p, &make(&escape), &roots).unwrap_err();
                assert_eq!(err.code(), 3, "{}", escape.display());
                assert!(
                    err.message.contains("allowed_mount_roots"),
                    "{}",
                    err.message
                );
            }
        }
        // Named volumes and tmpfs are not host paths.
        let mut s = spec("x");
        s.host.binds.push("cache:/cache".into());
        s.host.tmpfs.insert("/scratch".into(), String::new());
        assert!(verdict(&p, &s, &roots).is_ok());
        // Without `allowed_mount_roots`, mounts are not restricted.
        assert!(verdict(&policy(""), &with_bind(&outside), &roots).is_ok());
    }

    #[test]
    fn limits_refuse_more_and_unlimited() {
        let mut p = Policy::default();
        p.limits.max_memory = Some(Size(4 << 30));
        p.limits.max_cpus = Some(Cpus(2_000_000_000));
        let mut s = spec("x");
        s.host.memory = Some(4 << 30);
        s.host.nano_cpus = Some(2_000_000_000);
        assert!(verdict(&p, &s, &no_roots()).is_ok());
        for (memory, cpus, rule) in [
            (Some(5 << 30), Some(1), "max_memory"),
            (None, Some(1), "max_memory"),
            (Some(0), Some(1), "max_memory"),
            (Some(1), Some(3_000_000_000), "max_cpus"),
            (Some(1), None, "max_cpus"),
        ] {
            s.host.memory = memory;
            s.host.nano_cpus = cpus;
            let err = verdict(&p, &s, &no_roots()).unwrap_err();
            assert!(err.message.contains(rule), "{}", err.message);
        }
    }

    #[test]
    fn counts() {
        let p = policy("[limits]\nmax_containers_per_user = 2\n");
        let path = Path::new(PATH);
        assert!(check_container_count(path, &p, 1).is_ok());
        let err = check_container_count(path, &p, 2).unwrap_err();
        assert!(err.message.contains("you have 2"), "{}", err.message);
        assert!(check_container_count(path, &Policy::default(), 99).is_ok());
    }

    #[test]
    fn a_volume_whose_driver_options_bind_a_host_path_is_a_bind_mount() {
        let p = policy("allowed_mount_roots = [\"/scratch\"]");
        let roots = Roots::new([PathBuf::from("/scratch")], crate::files::resolve);
        let mut s = spec("img");
        let mut mount = crate::spec::MountSpec::bind("unused", "/x", false);
        mount.kind = MountKind::Volume;
        mount.source = None;
        mount.volume_options = BTreeMap::from([
            ("type".to_string(), "none".to_string()),
            ("o".to_string(), "bind".to_string()),
            ("device".to_string(), "/".to_string()),
        ]);
        s.host.mounts.push(mount.clone());
        let err = verdict(&p, &s, &roots).unwrap_err();
        assert!(
            err.message.contains("volume-opt=device=/"),
            "{}",
            err.message
        );
        // Inside a root it is fine; a remote device is not a host path.
        s.host.mounts[0]
            .volume_options
            .insert("device".into(), "/scratch/a".into());
        assert!(verdict(&p, &s, &roots).is_ok());
        s.host.mounts[0]
            .volume_options
            .insert("device".into(), ":/export".into());
        assert!(verdict(&p, &s, &roots).is_ok());

        // A named volume made earlier with such options.
        s.host.binds.push("made-earlier:/y".into());
        assert_eq!(named_volumes(&s), ["made-earlier"]);
        let volume = |device: &str| NamedVolume {
            name: "made-earlier".into(),
            options: BTreeMap::from([("device".to_string(), device.to_string())]),
        };
        let path = Path::new(PATH);
        let err = check_volumes(path, &p, &[volume("/etc")], &roots).unwrap_err();
        assert!(err.message.contains("made-earlier"), "{}", err.message);
        assert!(check_volumes(path, &p, &[volume("/scratch/v")], &roots).is_ok());
        assert!(check_volumes(path, &Policy::default(), &[volume("/etc")], &roots).is_ok());
    }

    #[test]
    fn only_your_own_containers_may_be_joined_and_join_can_be_forbidden() {
        let mut s = spec("img");
        s.host.network_mode = Some("container:theirs".into());
        s.host.pid_mode = Some("container:mine".into());
        s.host.ipc_mode = Some("shareable".into());
        assert_eq!(
            joins(&s),
            [
                (
                    "--network container:theirs".to_string(),
                    "theirs".to_string()
                ),
                ("--pid container:mine".to_string(), "mine".to_string())
            ]
        );
        let mut shared = spec("img");
        shared
            .extra
            .lists
            .insert("VolumesFrom", vec!["data:ro".into()]);
        shared.extra.lists.insert("Links", vec!["db:db".into()]);
        assert_eq!(
            joins(&shared),
            [
                ("--volumes-from data:ro".to_string(), "data".to_string()),
                ("--link db:db".to_string(), "db".to_string())
            ]
        );
        let joined = |name: &str, owner: Option<&str>| Joined {
            spelled: format!("--pid container:{name}"),
            name: name.into(),
            owner: owner.map(str::to_string),
        };
        let path = Path::new(PATH);
        assert!(check_joins(path, &[joined("mine", Some("1000"))], 1000).is_ok());
        let err = check_joins(path, &[joined("theirs", Some("1001"))], 1000).unwrap_err();
        assert_eq!(err.code(), 3);
        assert!(err.message.contains("not one of yours"), "{}", err.message);
        assert!(check_joins(path, &[joined("plain", None)], 1000).is_err());

        let p = policy("forbid = [\"join\"]");
        let err = verdict(&p, &s, &no_roots()).unwrap_err();
        assert!(err.message.contains("forbids join"), "{}", err.message);
    }

    #[test]
    fn berths_own_mounts_must_be_yours_and_inside_the_allowed_roots() {
        let p = policy("allowed_mount_roots = []");
        let roots = Roots::new([PathBuf::from("/home/alice")], Path::to_path_buf);
        let mount = |path: &str, resolved: &str, owner: Option<u32>| OwnMount {
            what: "the workspace",
            path: path.into(),
            resolved: resolved.into(),
            owner,
        };
        let path = Path::new(PATH);
        let fine = mount(
            "/home/alice/workspace/p",
            "/home/alice/workspace/p",
            Some(1000),
        );
        assert!(check_own(path, &p, std::slice::from_ref(&fine), 1000, &roots).is_ok());
        assert!(check_own(
            path,
            &p,
            &[mount("/home/alice/ws/new", "/home/alice/ws/new", None)],
            1000,
            &roots
        )
        .is_ok());
        // BERTH_WORKSPACE_ROOT=/ and a project named etc.
        let etc = mount("/etc", "/etc", Some(0));
        let err = check_own(path, &p, std::slice::from_ref(&etc), 1000, &roots).unwrap_err();
        assert_eq!(err.code(), 3);
        assert!(err.message.contains("not yours"), "{}", err.message);
        // A link out of the home, to a folder of the user's own.
        let out = mount("/home/alice/workspace/p", "/tmp/elsewhere", Some(1000));
        let err = check_own(path, &p, &[out], 1000, &roots).unwrap_err();
        assert!(
            err.message.contains("(→ /tmp/elsewhere)"),
            "{}",
            err.message
        );
        // Root, and a policy that does not restrict mounts, are not held to it.
        assert!(check_own(path, &p, std::slice::from_ref(&etc), 0, &roots).is_ok());
        assert!(check_own(path, &Policy::default(), &[etc], 1000, &roots).is_ok());
    }
}
