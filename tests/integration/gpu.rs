//! GPU allocation across users and projects. The engine has no GPUs: the policy names an
//! inventory and the "env" request mode, so containers start anyway. Each test's
//! inventory has ids of its own (`<project>-0`...), so that the GPU labels of other
//! tests' containers on the same engine are not counted as held here.

use std::process::{Output, Stdio};

use serde_json::Value;

use crate::support::*;

/// A policy with an inventory of `n` GPUs named after `prefix`, given in env mode.
fn policy(prefix: &str, n: usize, extra: &str) -> (String, Vec<String>) {
    let ids: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    let list: Vec<String> = ids.iter().map(|id| format!("{id:?}")).collect();
    let text = format!(
        "{extra}\n[gpus]\ninventory = [{}]\nrequest = \"env\"\n",
        list.join(", ")
    );
    (text, ids)
}

fn sandbox_with(policy_text: &str) -> Sandbox {
    let sb = Sandbox::new();
    std::fs::write(&sb.policy, policy_text).unwrap();
    sb
}

fn env_of(c: &Value, key: &str) -> Option<String> {
    c["Config"]["Env"].as_array()?.iter().find_map(|e| {
        e.as_str()?
            .strip_prefix(&format!("{key}="))
            .map(str::to_string)
    })
}

fn gpu_label(c: &Value) -> Vec<String> {
    c["Config"]["Labels"]["berth.gpus"]
        .as_str()
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn deploy_gpus(sb: &Sandbox, gpus: &str) -> Output {
    sb.berth(&sb.deploy_args(&["--gpus", gpus]))
}

/// `deploy PROJECT --gpus 1` in every sandbox at once; their outputs, in order.
fn deploy_at_once(sandboxes: &[Sandbox]) -> Vec<Output> {
    let children: Vec<_> = sandboxes
        .iter()
        .map(|sb| {
            let args = sb.deploy_args(&["--gpus", "1"]);
            sb.command(env!("CARGO_BIN_EXE_berth"), &args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("berth runs")
        })
        .collect();
    children
        .into_iter()
        .map(|child| child.wait_with_output().unwrap())
        .collect()
}

#[test]
fn a_gpu_count_is_honoured_with_distinct_ids_in_the_env_and_the_label() {
    let sb = Sandbox::new();
    let (text, inventory) = policy(&sb.project, 3, "");
    std::fs::write(&sb.policy, text).unwrap();
    sb.project_toml("gpus = 2\n");
    let out = sb.deployed();
    assert_stderr_has(&out, format!("with GPUs {0}-0,{0}-1", sb.project));

    let c = sb.inspect().expect("the container exists");
    assert_eq!(c["State"]["Status"], "running");
    let held = gpu_label(&c);
    assert_eq!(held, inventory[..2], "the lowest ids first");
    assert_eq!(
        env_of(&c, "NVIDIA_VISIBLE_DEVICES").unwrap(),
        held.join(",")
    );
    // Inside, the runtime numbers a container's own GPUs from 0.
    assert_eq!(env_of(&c, "CUDA_VISIBLE_DEVICES").unwrap(), "0,1");
    assert!(
        c["HostConfig"]["DeviceRequests"].is_null()
            || c["HostConfig"]["DeviceRequests"] == Value::Array(vec![]),
        "no device request in env mode: {}",
        c["HostConfig"]["DeviceRequests"]
    );
}

#[test]
fn too_few_free_gpus_are_refused_saying_who_holds_them_even_when_stopped() {
    let first = Sandbox::new();
    let (text, inventory) = policy(&first.project, 3, "");
    std::fs::write(&first.policy, &text).unwrap();
    let second = sandbox_with(&text);
    assert_code(&deploy_gpus(&first, "2"), 0);
    // A stopped container keeps its GPUs: its owner will start it again.
    assert_code(&docker(&["stop", "-t", "1", &first.container()]), 0);

    let out = deploy_gpus(&second, "2");
    assert_code(&out, 3);
    assert_stderr_has(&out, "not enough free GPUs: 2 requested, 1 free of 3");
    for held in &inventory[..2] {
        assert_stderr_has(&out, held);
    }
    assert_stderr_has(&out, &first.project);
    assert_stderr_has(&out, first.container());
    assert_stderr_has(&out, whoami());
    assert!(!second.exists(), "nothing was created");
    // `check` refuses where deploy would.
    second.project_toml(&format!("image = {:?}\ngpus = 2\n", second.image.tag));
    let out = second.berth(&["check", &second.project]);
    assert_code(&out, 3);
    assert_stderr_has(&out, "not enough free GPUs");

    // The one free GPU is still there for a request that fits.
    assert_code(&deploy_gpus(&second, "1"), 0);
    assert_eq!(
        gpu_label(&second.inspect().unwrap()),
        [inventory[2].clone()]
    );
}

#[test]
fn explicit_devices_are_checked_for_conflicts_by_deploy_and_run() {
    let first = Sandbox::new();
    let (text, inventory) = policy(&first.project, 2, "");
    std::fs::write(&first.policy, &text).unwrap();
    let second = sandbox_with(&text);
    second.project_toml("");
    assert_code(&deploy_gpus(&first, &format!("device={}", inventory[1])), 0);
    assert_eq!(gpu_label(&first.inspect().unwrap()), [inventory[1].clone()]);

    let taken = format!("\"device={},{}\"", inventory[0], inventory[1]);
    let out = deploy_gpus(&second, &taken);
    assert_code(&out, 3);
    assert_stderr_has(
        &out,
        format!("GPU {} is held by another container", inventory[1]),
    );
    assert_stderr_has(&out, &first.project);

    let run = |gpus: &str| {
        second.berth(&[
            "run",
            "-d",
            "--project",
            &second.project,
            "--gpus",
            gpus,
            &second.image.tag,
            "sleep",
            "60",
        ])
    };
    let out = run(&taken);
    assert_code(&out, 3);
    assert_stderr_has(&out, "is held by another container");
    let out = run(&format!("device={}", inventory[0]));
    assert_code(&out, 0);
    let id = stdout(&out).trim().to_string();
    let c: Value = serde_json::from_slice(&docker(&["inspect", &id]).stdout).unwrap();
    assert_eq!(gpu_label(&c[0]), [inventory[0].clone()]);
    assert_eq!(
        env_of(&c[0], "NVIDIA_VISIBLE_DEVICES").as_deref(),
        Some(inventory[0].as_str())
    );
    let out = second.berth(&second.deploy_args(&["--gpus", "1"]));
    assert_code(&out, 3);
    assert_stderr_has(&out, "0 free of 2");
}

#[test]
fn concurrent_one_gpu_deploys_get_different_gpus_and_a_fourth_is_refused() {
    let first = Sandbox::new();
    let (text, inventory) = policy(&first.project, 3, "");
    std::fs::write(&first.policy, &text).unwrap();
    let sandboxes = [
        first,
        sandbox_with(&text),
        sandbox_with(&text),
        sandbox_with(&text),
    ];
    let outputs = deploy_at_once(&sandboxes);

    let mut held = Vec::new();
    let mut refused = 0;
    for (sb, out) in sandboxes.iter().zip(&outputs) {
        match out.status.code() {
            Some(0) => held.extend(gpu_label(&sb.inspect().expect("created"))),
            Some(3) => {
                assert_stderr_has(out, "not enough free GPUs: 1 requested, 0 free of 3");
                assert!(!sb.exists());
                refused += 1;
            }
            _ => panic!("unexpected outcome:\n{}", stderr(out)),
        }
    }
    held.sort();
    assert_eq!(held, inventory, "three deploys, three different GPUs");
    assert_eq!(refused, 1);
}

#[test]
fn list_all_shows_the_gpus_each_container_holds() {
    let sb = Sandbox::new();
    let (text, inventory) = policy(&sb.project, 2, "");
    std::fs::write(&sb.policy, text).unwrap();
    assert_code(&deploy_gpus(&sb, "2"), 0);

    let out = sb.berth(&["list", "--all", "--json"]);
    assert_code(&out, 0);
    let listing: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mine = listing["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == sb.container().as_str())
        .expect("listed");
    assert_eq!(mine["gpus"], serde_json::json!(inventory));

    let out = sb.berth(&["list", "--all"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(text.lines().next().unwrap().contains("GPUS"), "{text}");
    let row = text
        .lines()
        .find(|l| l.starts_with(&sb.project))
        .expect("a row");
    assert!(row.contains(&inventory.join(",")), "{row}");
}

#[test]
fn the_per_user_gpu_limit_is_refused_naming_it() {
    let sb = Sandbox::new();
    let (text, _) = policy(&sb.project, 3, "[limits]\nmax_gpus_per_user = 1");
    std::fs::write(&sb.policy, text).unwrap();
    let out = deploy_gpus(&sb, "2");
    assert_code(&out, 3);
    assert_stderr_has(&out, "max_gpus_per_user = 1");
    assert!(!sb.exists());
}

#[test]
fn deploys_that_share_no_lock_never_book_one_gpu_twice() {
    // Four berths, each with a lock of its own, as on four hosts, race for one GPU.
    let prefix = unique("gpu");
    let sandboxes: Vec<Sandbox> = (0..4)
        .map(|_| {
            let sb = Sandbox::new();
            let (text, _) = policy(&prefix, 1, "");
            let lock = sb.path().join("own.lock");
            let own = format!("[gpus]\nlock = \"{}\"\n", lock.display());
            std::fs::write(&sb.policy, text.replace("[gpus]\n", &own)).unwrap();
            sb
        })
        .collect();
    let outputs = deploy_at_once(&sandboxes);
    let mut holders = 0;
    for (sb, out) in sandboxes.iter().zip(&outputs) {
        match out.status.code() {
            Some(0) => {
                assert_eq!(gpu_label(&sb.inspect().unwrap()), [format!("{prefix}-0")]);
                holders += 1;
            }
            Some(3) => {
                let said = stderr(out);
                assert!(
                    said.contains("was claimed by another container")
                        || said.contains("not enough free GPUs"),
                    "{said}"
                );
                assert!(!sb.exists(), "the one that gave way is gone");
            }
            _ => panic!("unexpected outcome:\n{}", stderr(out)),
        }
    }
    // Two that see each other both give way: at most one holds it, never two.
    assert!(holders <= 1, "one GPU, {holders} holders");
}
