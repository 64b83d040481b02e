//! The policy guard: the admin's rules (allowed images, forbidden options, mount roots,
//! `[limits]`) checked against the final create request, the one thing the engine will
//! be asked for, so that no flag, file or variable can get around them. Pure: the
//! callers gather the facts (the request, the allowed roots, counts from the engine).

use std::path::{Component, Path, PathBuf};

use crate::dockerargs::{format_cpus, format_size};
use crate::error::{Error, Result};
use crate::policy::{Forbidden, Policy};
use crate::retire::assess::glob_match;
use crate::spec::{ContainerSpec, MountKind};

/// Host directories a bind mount's source may lie in.
#[derive(Debug, Clone, Default)]
pub struct Roots {
    /// The workspace root, the data root (if any), berth's own mount sources (the
    /// persistent home), and the policy's `allowed_mount_roots`.
    pub dirs: Vec<PathBuf>,
}

impl Roots {
    /// `dirs`, resolved as the sources will be (symlinks followed).
    pub fn new(dirs: impl IntoIterator<Item = PathBuf>) -> Self {
        Self {
            dirs: dirs.into_iter().map(|d| resolve(&d)).collect(),
        }
    }

    fn allows(&self, source: &Path) -> bool {
        let source = resolve(source);
        self.dirs.iter().any(|dir| source.starts_with(dir))
    }
}

/// Checks `spec` against the policy read from `path`.
pub fn check(path: &Path, policy: &Policy, spec: &ContainerSpec, roots: &Roots) -> Result<()> {
    let refuse = |rule: &str, what: String| {
        Error::refused(format!("policy {} {rule}: {what}", path.display()))
    };
    let ask = "ask the administrator if you need it";

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
            .hint(format!("run without {used}; {ask}")));
        }
    }

    let binds = spec
        .host
        .binds
        .iter()
        .filter_map(|bind| {
            let source = bind.split(':').next().unwrap_or_default();
            source
                .starts_with('/')
                .then(|| (source.to_string(), format!("-v {bind}")))
        })
        .chain(
            spec.host
                .mounts
                .iter()
                .filter_map(|m| match (m.kind, &m.source) {
                    (MountKind::Bind, Some(source)) => Some((
                        source.clone(),
                        format!("--mount type=bind,source={source},target={}", m.target),
                    )),
                    _ => None,
                }),
        );
    let restricted = policy.allowed_mount_roots.is_some();
    for (source, spelled) in binds.filter(|_| restricted) {
        if !roots.allows(Path::new(&source)) {
            return Err(refuse(
                "limits mounts to the workspace root, the data root and allowed_mount_roots",
                format!(
                    "`{spelled}` mounts {}",
                    resolve(Path::new(&source)).display()
                ),
            )
            .details(
                roots
                    .dirs
                    .iter()
                    .map(|d| format!("allowed: {}", d.display())),
            )
            .hint(format!(
                "move the files into your workspace, or use a named volume; {ask}"
            )));
        }
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
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::file::{self, Cpus, Size};
    use crate::spec::{DeviceSpec, MountSpec};

    const PATH: &str = "/etc/berth/policy.toml";

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
        assert!(verdict(&Policy::default(), &s, &Roots::default()).is_ok());
    }

    #[test]
    fn images_outside_the_list_are_refused() {
        let p = policy("allowed_images = [\"pytorch/*\"]");
        let err = verdict(&p, &spec("alpine:3"), &Roots::default()).unwrap_err();
        assert_eq!(err.code(), 3);
        assert!(err.message.contains(PATH) && err.message.contains("allowed_images"));
        assert!(verdict(&p, &spec("pytorch/pytorch:2"), &Roots::default()).is_ok());
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
            let err = verdict(&p, &s, &Roots::default()).unwrap_err();
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
        assert!(verdict(&p, &s, &Roots::default()).is_ok());
    }

    #[test]
    fn bind_sources_must_lie_in_a_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ws");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(root.join("p")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("p/link")).unwrap();
        let roots = Roots::new([root.clone()]);
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
        assert!(verdict(&p, &s, &Roots::default()).is_ok());
        for (memory, cpus, rule) in [
            (Some(5 << 30), Some(1), "max_memory"),
            (None, Some(1), "max_memory"),
            (Some(0), Some(1), "max_memory"),
            (Some(1), Some(3_000_000_000), "max_cpus"),
            (Some(1), None, "max_cpus"),
        ] {
            s.host.memory = memory;
            s.host.nano_cpus = cpus;
            let err = verdict(&p, &s, &Roots::default()).unwrap_err();
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
}
