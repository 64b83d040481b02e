//! GPU allocation, decided: the inventory, who holds which GPU (read from the
//! `berth.gpus` label of every user's berth containers: labels are the source of truth),
//! and which GPUs a request gets. Pure; the lock and the engine calls are in [`claim`].
//!
//! A container holds its GPUs for as long as it exists, running or stopped: a stopped
//! container its owner will restart must find its GPUs free. `berth retire`, and the
//! reaper for long-stopped containers, give them back.

pub mod claim;
pub mod readings;

use std::collections::BTreeSet;

use crate::config::policy::GpuRequest as Mode;
use crate::container::ContainerInfo;
use crate::error::{Error, Result};
use crate::label::{self, gpus_value};
use crate::spec::{ContainerSpec, GpuRequest};

/// The variable the NVIDIA container runtime reads to pick the GPUs of a container.
pub const NVIDIA_VISIBLE_DEVICES: &str = "NVIDIA_VISIBLE_DEVICES";
pub const CUDA_VISIBLE_DEVICES: &str = "CUDA_VISIBLE_DEVICES";

/// What a container asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Every GPU of the inventory, none of them held.
    All,
    /// This many free GPUs, lowest ids first.
    Count(u32),
    /// These GPUs by id.
    Devices(Vec<String>),
}

impl Request {
    /// The request a create call carries (`--gpus`, or deploy's `gpus`); none when it
    /// asks for no GPU (`count=0` with no devices).
    pub fn from_spec(gpus: &GpuRequest) -> Option<Self> {
        if !gpus.device_ids.is_empty() {
            return Some(Self::Devices(gpus.device_ids.clone()));
        }
        match gpus.count {
            Some(n) if n < 0 => Some(Self::All),
            Some(n) if n > 0 => Some(Self::Count(u32::try_from(n).unwrap_or(u32::MAX))),
            _ => None,
        }
    }
}

/// One container's claim on GPUs of the inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    pub container_id: String,
    pub container: String,
    pub project: String,
    /// The owner's uid, as the `berth.user` label says it.
    pub uid: String,
    pub ids: Vec<String>,
}

/// The GPU indices in `nvidia-smi -L` output (`GPU 0: NVIDIA A100 (UUID: GPU-...)`);
/// MIG lines under a GPU are not GPUs of their own here.
pub fn parse_nvidia_smi(output: &str) -> Vec<String> {
    let ids = output.lines().filter_map(|line| {
        let rest = line.strip_prefix("GPU ")?;
        let (index, _) = rest.split_once(':')?;
        let index = index.trim();
        (!index.is_empty() && index.chars().all(|c| c.is_ascii_digit())).then(|| index.into())
    });
    sorted(ids)
}

/// One GPU's utilisation, as `nvidia-smi --query-gpu=index,uuid,utilization.gpu`
/// reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Utilisation {
    pub index: String,
    pub uuid: String,
    pub percent: f64,
}

/// How long `nvidia-smi` may take. One that hangs (as it does when a GPU has fallen off
/// the bus) must not hold the reaper: past this it is killed and the GPUs are unread.
/// `BERTH_NVIDIA_SMI_TIMEOUT_MS` sets it (the tests' hanging `nvidia-smi`).
fn smi_timeout() -> std::time::Duration {
    let ms = std::env::var("BERTH_NVIDIA_SMI_TIMEOUT_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(10_000);
    std::time::Duration::from_millis(ms)
}

/// The GPUs' utilisation now, from `nvidia-smi`; why not, when it is missing, fails or
/// does not answer in time ([`smi_timeout`]).
pub fn utilisation() -> std::result::Result<Vec<Utilisation>, String> {
    use std::process::Stdio;
    let mut child = std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=index,uuid,utilization.gpu",
            "--format=csv,noheader,nounits",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| format!("cannot run nvidia-smi: {err}"))?;
    let timeout = smi_timeout();
    let deadline = std::time::Instant::now() + timeout;
    // Its answer is a line per GPU, far below a pipe's buffer: waiting first is safe.
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Ok(None) => {
                child.kill().ok();
                child.wait().ok();
                return Err(format!(
                    "nvidia-smi did not answer within {} s",
                    timeout.as_secs_f64()
                ));
            }
            Err(err) => return Err(format!("cannot wait for nvidia-smi: {err}")),
        }
    }
    // It has exited: what it wrote is all in the pipes.
    let out = child
        .wait_with_output()
        .map_err(|err| format!("cannot read nvidia-smi's answer: {err}"))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "nvidia-smi failed ({}): {}",
            out.status,
            said.trim()
        ));
    }
    parse_utilisation(&String::from_utf8_lossy(&out.stdout))
}

/// `0, GPU-8a1f…, 37` per line; a line that does not read so (`[N/A]`, `[Not Supported]`)
/// makes the whole answer unreadable, since a GPU whose use is unknown is not idle.
pub fn parse_utilisation(text: &str) -> std::result::Result<Vec<Utilisation>, String> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            match fields[..] {
                [index, uuid, percent] => match percent.parse::<f64>() {
                    Ok(percent) if percent.is_finite() => Ok(Utilisation {
                        index: index.to_string(),
                        uuid: uuid.to_string(),
                        percent,
                    }),
                    _ => Err(format!(
                        "nvidia-smi gave GPU {index} a utilisation of {percent:?}"
                    )),
                },
                _ => Err(format!("nvidia-smi answered {line:?}")),
            }
        })
        .collect()
}

/// The highest utilisation among the GPUs `held` (each by index or uuid); why not,
/// when one of them is not in `readings`.
pub fn highest_held(readings: &[Utilisation], held: &[String]) -> std::result::Result<f64, String> {
    held.iter().try_fold(0.0, |highest: f64, id| {
        let reading = readings
            .iter()
            .find(|r| r.index == *id || r.uuid == *id)
            .ok_or_else(|| format!("GPU {id} is not in nvidia-smi's answer"))?;
        Ok(highest.max(reading.percent))
    })
}

/// The device minor number in a `/proc/driver/nvidia/gpus/<bus id>/information` file,
/// which is the index `nvidia-smi` and the container runtime use.
pub fn parse_proc_information(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        let value = value.trim();
        (key.trim() == "Device Minor"
            && !value.is_empty()
            && value.chars().all(|c| c.is_ascii_digit()))
        .then(|| value.to_string())
    })
}

/// Ids once each, numbers in numeric order (`2` before `10`), then the others by name.
pub fn sorted(ids: impl IntoIterator<Item = String>) -> Vec<String> {
    let unique: BTreeSet<(u64, String)> = ids
        .into_iter()
        .map(|id| (id.parse::<u64>().unwrap_or(u64::MAX), id))
        .collect();
    unique.into_iter().map(|(_, id)| id).collect()
}

/// Who holds which GPU of `inventory`. Ids outside the inventory are not counted: they
/// belong to another inventory (another policy, or another test), not to this one.
pub fn holdings(inventory: &[String], containers: &[ContainerInfo]) -> Vec<Holding> {
    containers
        .iter()
        .filter_map(|c| {
            let ids: Vec<String> = c
                .gpus
                .iter()
                .filter(|id| inventory.contains(id))
                .cloned()
                .collect();
            (!ids.is_empty()).then(|| Holding {
                container_id: c.id.clone(),
                container: c.name.clone(),
                project: c.project.clone(),
                uid: c.user.clone(),
                ids,
            })
        })
        .collect()
}

/// The GPUs `request` gets from `inventory`, given what is `held`; a refusal (exit 3)
/// that shows who holds what when it cannot be met. `name_of` turns a uid into a name.
pub fn allocate(
    inventory: &[String],
    held: &[Holding],
    request: &Request,
    name_of: &dyn Fn(&str) -> String,
) -> Result<Vec<String>> {
    let taken: BTreeSet<&String> = held.iter().flat_map(|h| &h.ids).collect();
    let free: Vec<String> = inventory
        .iter()
        .filter(|id| !taken.contains(id))
        .cloned()
        .collect();
    let summary = format!(
        "{} free of {} ({})",
        free.len(),
        inventory.len(),
        inventory.join(", ")
    );
    if inventory.is_empty() {
        return Err(
            Error::refused("no GPUs to allocate: the inventory is empty")
                .hint("the admin policy's `[gpus] inventory` lists the GPUs berth hands out"),
        );
    }
    let refusal = |message: String, holders: &[&Holding]| {
        Error::refused(message)
            .details(table(holders, name_of))
            .hint("`berth list --all` shows every container and its GPUs; a stopped container keeps its GPUs until it is retired")
    };
    match request {
        Request::Count(n) => {
            let n = *n as usize;
            if free.len() < n {
                let holders: Vec<&Holding> = held.iter().collect();
                return Err(refusal(
                    format!("not enough free GPUs: {n} requested, {summary}"),
                    &holders,
                ));
            }
            Ok(free.into_iter().take(n).collect())
        }
        Request::All => {
            if free.len() < inventory.len() {
                let holders: Vec<&Holding> = held.iter().collect();
                return Err(refusal(
                    format!("--gpus all needs every GPU, but {summary}"),
                    &holders,
                ));
            }
            Ok(free)
        }
        Request::Devices(ids) => {
            let ids = sorted(ids.iter().cloned());
            let unknown: Vec<&String> = ids.iter().filter(|id| !inventory.contains(id)).collect();
            if !unknown.is_empty() {
                let unknown: Vec<&str> = unknown.iter().map(|s| s.as_str()).collect();
                return Err(Error::refused(format!(
                    "GPU {} is not in the inventory ({})",
                    unknown.join(", "),
                    inventory.join(", ")
                ))
                .hint("ask for a count (`--gpus 1`) and berth picks free ones"));
            }
            let busy: Vec<&String> = ids.iter().filter(|id| taken.contains(id)).collect();
            if !busy.is_empty() {
                let holders: Vec<&Holding> = held
                    .iter()
                    .filter(|h| h.ids.iter().any(|id| busy.contains(&id)))
                    .collect();
                let busy: Vec<&str> = busy.iter().map(|s| s.as_str()).collect();
                return Err(refusal(
                    format!(
                        "GPU {} is held by another container; {summary}",
                        busy.join(", ")
                    ),
                    &holders,
                ));
            }
            Ok(ids)
        }
    }
}

/// How many GPUs `request` takes from `inventory`.
pub fn requested(inventory: &[String], request: &Request) -> usize {
    match request {
        Request::All => inventory.len(),
        Request::Count(n) => *n as usize,
        Request::Devices(ids) => sorted(ids.iter().cloned()).len(),
    }
}

/// `[limits] max_gpus_per_user`: what `uid` holds, plus what it asks for, within `max`.
pub fn check_limit(max: Option<u32>, uid: &str, held: &[Holding], requested: usize) -> Result<()> {
    let Some(max) = max else { return Ok(()) };
    let holding: usize = held
        .iter()
        .filter(|h| h.uid == uid)
        .map(|h| h.ids.len())
        .sum();
    if holding + requested <= max as usize {
        return Ok(());
    }
    let mine: Vec<&Holding> = held.iter().filter(|h| h.uid == uid).collect();
    Err(Error::refused(format!(
        "the policy's limit max_gpus_per_user = {max} is reached: you hold {holding}, and ask for {requested}"
    ))
    .details(table(&mine, &|uid| uid.to_string()))
    .hint("retire a container you no longer need (`berth list` shows yours)"))
}

/// The containers among `held`, other than `ours`, that hold any of `ids`: after a
/// create, any such container means two claims crossed, and ours gives way.
pub fn crossed<'a>(ours: &str, ids: &[String], held: &'a [Holding]) -> Vec<&'a Holding> {
    held.iter()
        .filter(|h| h.container_id != ours && h.ids.iter().any(|id| ids.contains(id)))
        .collect()
}

/// Who holds what, as a table: GPU, user, project, container.
pub fn table(held: &[&Holding], name_of: &dyn Fn(&str) -> String) -> Vec<String> {
    if held.is_empty() {
        return Vec::new();
    }
    let mut rows = vec![vec![
        "GPU".to_string(),
        "USER".into(),
        "PROJECT".into(),
        "CONTAINER".into(),
    ]];
    let mut lines: Vec<(u64, String, Vec<String>)> = held
        .iter()
        .flat_map(|h| {
            let name = name_of(&h.uid);
            let user = if name == h.uid {
                h.uid.clone()
            } else {
                format!("{name} ({})", h.uid)
            };
            h.ids.iter().map(move |id| {
                (
                    id.parse().unwrap_or(u64::MAX),
                    id.clone(),
                    vec![
                        id.clone(),
                        user.clone(),
                        h.project.clone(),
                        h.container.clone(),
                    ],
                )
            })
        })
        .collect();
    lines.sort();
    rows.extend(lines.into_iter().map(|(_, _, row)| row));
    crate::ui::table(&rows)
        .into_iter()
        .map(|line| line.trim_end().to_string())
        .collect()
}

/// Gives `spec` its GPUs the way the policy says (`ids`: none when it asked for none),
/// and labels it with them. In both modes berth owns `NVIDIA_VISIBLE_DEVICES`: on a host
/// whose default runtime is nvidia that variable alone decides, so a caller's (or the
/// image's `all`) would reach GPUs others hold. A container that asked for no GPU gets
/// `void`.
pub fn apply(spec: &mut ContainerSpec, mode: Mode, ids: Option<&[String]>) {
    if let Some(ids) = ids {
        spec.labels.insert(label::GPUS.to_string(), gpus_value(ids));
    }
    spec.env.retain(|entry| {
        let key = entry.split_once('=').map_or(entry.as_str(), |(k, _)| k);
        key != NVIDIA_VISIBLE_DEVICES && key != CUDA_VISIBLE_DEVICES
    });
    match (mode, ids) {
        (_, None) => spec.env.push(format!("{NVIDIA_VISIBLE_DEVICES}=void")),
        (Mode::DeviceRequests, Some(ids)) => {
            if let Some(gpus) = spec.host.gpus.as_mut() {
                gpus.count = None;
                gpus.device_ids = ids.to_vec();
            }
        }
        (Mode::Env, Some(ids)) => {
            spec.host.gpus = None;
            spec.env
                .push(format!("{NVIDIA_VISIBLE_DEVICES}={}", gpus_value(ids)));
            // The runtime shows a container only its own GPUs, numbered from 0: CUDA's
            // indices are positions, not the host's ids.
            let positions: Vec<String> = (0..ids.len()).map(|i| i.to_string()).collect();
            spec.env
                .push(format!("{CUDA_VISIBLE_DEVICES}={}", positions.join(",")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utilisation_is_read_per_gpu_and_matched_by_index_or_uuid() {
        let text = "0, GPU-aaa, 37\n1, GPU-bbb, 2\n\n";
        let readings = parse_utilisation(text).unwrap();
        assert_eq!(readings.len(), 2);
        assert_eq!(highest_held(&readings, &["1".into()]), Ok(2.0));
        assert_eq!(
            highest_held(&readings, &["GPU-aaa".into(), "1".into()]),
            Ok(37.0)
        );
        assert!(highest_held(&readings, &["7".into()])
            .unwrap_err()
            .contains("GPU 7"));
        // A GPU whose use is unknown makes the answer unreadable.
        assert!(parse_utilisation("0, GPU-aaa, [N/A]").is_err());
        assert!(parse_utilisation("garbage").is_err());
    }

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn holding(container: &str, uid: &str, list: &[&str]) -> Holding {
        Holding {
            container_id: format!("id-{container}"),
            container: format!("{container}._.u{uid}"),
            project: container.to_string(),
            uid: uid.to_string(),
            ids: ids(list),
        }
    }

    fn name_of(uid: &str) -> String {
        match uid {
            "1000" => "alice".into(),
            other => other.into(),
        }
    }

    #[test]
    fn nvidia_smi_lists_gpus_not_mig_devices() {
        let out = "GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-5a1e)\n  MIG 1g.5gb      Device  0: (UUID: MIG-1)\nGPU 10: NVIDIA A100 (UUID: GPU-x)\nGPU 2: Tesla V100 (UUID: GPU-y)\nNo devices were found\n";
        assert_eq!(parse_nvidia_smi(out), ids(&["0", "2", "10"]));
        assert!(parse_nvidia_smi("").is_empty());
    }

    #[test]
    fn proc_information_gives_the_device_minor() {
        let text = "Model: \t\t NVIDIA A100\nIRQ:   \t\t 120\nDevice Minor: \t 3\nBus Location: \t 0000:3b:00.0\n";
        assert_eq!(parse_proc_information(text).as_deref(), Some("3"));
        assert_eq!(parse_proc_information("Model: x\n"), None);
    }

    #[test]
    fn requests_come_from_the_create_call() {
        let mut gpus = GpuRequest {
            driver: String::new(),
            count: Some(-1),
            device_ids: Vec::new(),
            capabilities: vec![vec!["gpu".into()]],
            options: Default::default(),
        };
        assert_eq!(Request::from_spec(&gpus), Some(Request::All));
        gpus.count = Some(2);
        assert_eq!(Request::from_spec(&gpus), Some(Request::Count(2)));
        gpus.count = Some(0);
        assert_eq!(Request::from_spec(&gpus), None);
        gpus.count = None;
        gpus.device_ids = ids(&["1", "3"]);
        assert_eq!(
            Request::from_spec(&gpus),
            Some(Request::Devices(ids(&["1", "3"])))
        );
    }

    #[test]
    fn a_count_takes_the_lowest_free_ids() {
        let inventory = ids(&["0", "1", "2", "3"]);
        let held = [holding("a", "1000", &["0", "2"])];
        assert_eq!(
            allocate(&inventory, &held, &Request::Count(2), &name_of).unwrap(),
            ids(&["1", "3"])
        );
        assert_eq!(
            allocate(&inventory, &[], &Request::Count(1), &name_of).unwrap(),
            ids(&["0"])
        );
    }

    #[test]
    fn too_few_free_gpus_is_refused_and_says_who_holds_what() {
        let inventory = ids(&["0", "1", "2"]);
        let held = [
            holding("a", "1000", &["0", "2"]),
            holding("b", "1001", &["1"]),
        ];
        let err = allocate(&inventory, &held, &Request::Count(1), &name_of).unwrap_err();
        assert_eq!(err.code(), 3);
        assert!(
            err.message.contains("1 requested, 0 free of 3"),
            "{}",
            err.message
        );
        let details = err.details.join("\n");
        assert!(details.contains("alice (1000)"), "{details}");
        assert!(details.contains("a._.u1000"), "{details}");
        assert!(details.contains("1001"), "{details}");
        assert_eq!(
            err.details.len(),
            4,
            "a header and one line per GPU: {details}"
        );
        assert!(err.details[1].starts_with("0 "), "{details}");
    }

    #[test]
    fn devices_are_checked_for_conflicts_and_existence() {
        let inventory = ids(&["0", "1", "2"]);
        let held = [holding("a", "1000", &["1"]), holding("b", "1001", &["2"])];
        assert_eq!(
            allocate(
                &inventory,
                &held,
                &Request::Devices(ids(&["0", "0"])),
                &name_of
            )
            .unwrap(),
            ids(&["0"])
        );
        let err = allocate(
            &inventory,
            &held,
            &Request::Devices(ids(&["0", "1"])),
            &name_of,
        )
        .unwrap_err();
        assert_eq!(err.code(), 3);
        assert!(err.message.contains("GPU 1 is held"), "{}", err.message);
        let details = err.details.join("\n");
        assert!(
            details.contains("alice") && !details.contains("b._.u1001"),
            "{details}"
        );
        let err =
            allocate(&inventory, &held, &Request::Devices(ids(&["7"])), &name_of).unwrap_err();
        assert!(
            err.message.contains("GPU 7 is not in the inventory"),
            "{}",
            err.message
        );
    }

    #[test]
    fn all_means_the_whole_inventory_none_held() {
        let inventory = ids(&["0", "1"]);
        assert_eq!(
            allocate(&inventory, &[], &Request::All, &name_of).unwrap(),
            inventory
        );
        let held = [holding("a", "1000", &["1"])];
        let err = allocate(&inventory, &held, &Request::All, &name_of).unwrap_err();
        assert!(err.message.contains("every GPU"), "{}", err.message);
        let err = allocate(&[], &[], &Request::Count(1), &name_of).unwrap_err();
        assert!(
            err.message.contains("inventory is empty"),
            "{}",
            err.message
        );
    }

    #[test]
    fn only_ids_of_this_inventory_are_held() {
        let container = |id: &str, gpus: &[&str]| ContainerInfo {
            id: id.into(),
            name: format!("{id}._.me"),
            project: id.into(),
            user: "0".into(),
            state: crate::container::State::Running,
            never_started: false,
            status: String::new(),
            image: String::new(),
            workspace: String::new(),
            data: String::new(),
            data_group: String::new(),
            size_rw: None,
            run: false,
            gpus: ids(gpus),
        };
        let inventory = ids(&["t1-0", "t1-1"]);
        let held = holdings(
            &inventory,
            &[
                container("a", &["t1-0", "t2-0"]),
                container("b", &["0"]),
                container("c", &[]),
            ],
        );
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].ids, ids(&["t1-0"]));
    }

    #[test]
    fn ids_sort_numerically() {
        assert_eq!(
            sorted(ids(&["10", "2", "x", "2", "0"])),
            ids(&["0", "2", "10", "x"])
        );
    }

    #[test]
    fn the_per_user_limit_counts_what_is_held() {
        let held = [
            holding("a", "1000", &["0"]),
            holding("b", "1001", &["1", "2"]),
        ];
        assert!(check_limit(None, "1000", &held, 5).is_ok());
        assert!(check_limit(Some(2), "1000", &held, 1).is_ok());
        let err = check_limit(Some(2), "1001", &held, 1).unwrap_err();
        assert_eq!(err.code(), 3);
        assert!(
            err.message.contains("max_gpus_per_user = 2"),
            "{}",
            err.message
        );
    }

    #[test]
    fn crossed_claims_are_found_after_a_create() {
        let held = [holding("a", "1000", &["0"]), holding("b", "1001", &["1"])];
        let crossed = crossed("id-a", &ids(&["0", "1"]), &held);
        assert_eq!(crossed.len(), 1);
        assert_eq!(crossed[0].project, "b");
    }

    #[test]
    fn each_mode_gives_the_gpus_its_way() {
        let gpus = GpuRequest {
            driver: String::new(),
            count: Some(2),
            device_ids: Vec::new(),
            capabilities: vec![vec!["gpu".into()]],
            options: Default::default(),
        };
        let mut spec = ContainerSpec::default();
        spec.host.gpus = Some(gpus);
        let mut requests = spec.clone();
        requests.env.push("NVIDIA_VISIBLE_DEVICES=all".into());
        apply(&mut requests, Mode::DeviceRequests, Some(&ids(&["0", "2"])));
        assert!(
            requests.env.is_empty(),
            "the request decides, not the caller's variable"
        );
        let request = requests.host.gpus.as_ref().unwrap();
        assert_eq!(
            (request.count, request.device_ids.clone()),
            (None, ids(&["0", "2"]))
        );
        assert_eq!(requests.labels[label::GPUS], "0,2");

        let mut env = spec.clone();
        env.env.push("NVIDIA_VISIBLE_DEVICES=all".into());
        apply(&mut env, Mode::Env, Some(&ids(&["0", "2"])));
        assert_eq!(env.host.gpus, None);
        assert_eq!(
            env.env,
            ["NVIDIA_VISIBLE_DEVICES=0,2", "CUDA_VISIBLE_DEVICES=0,1"]
        );
        assert_eq!(env.labels[label::GPUS], "0,2");

        let mut none = ContainerSpec::default();
        none.env.push("NVIDIA_VISIBLE_DEVICES=all".into());
        apply(&mut none, Mode::Env, None);
        assert_eq!(none.env, ["NVIDIA_VISIBLE_DEVICES=void"]);
        assert!(!none.labels.contains_key(label::GPUS));
    }
}
