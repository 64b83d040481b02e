//! `berth run`/`create` as a drop-in for docker's, and `berth shell`: the parity suite
//! (docker and berth create from the same flag lines, and the inspected fields the flags
//! control must match), exit statuses, real terminals, and the `--dry-run` round trip.

use std::time::Duration;

use serde_json::Value;

use crate::support::words::shell_words;
use crate::support::*;

const TERMINAL: Duration = Duration::from_secs(30);

/// The flag lines of the parity suite. `{name}` becomes a unique container name and
/// `{dir}` the sandbox's folder; the image comes after, then any command after `--`.
const PARITY: &[&[&str]] = &[
    &[],
    &["-i"],
    &["-t"],
    &["-it"],
    &["--interactive=true", "--tty=false"],
    &["--rm"],
    &["--name", "{name}"],
    &["--name={name}", "-it", "--rm"],
    &[
        "-e",
        "A=1",
        "-e",
        "B=two words",
        "-e",
        "FROM_ENV",
        "-e",
        "UNSET_HERE",
    ],
    &["--env-file", "{dir}/vars.env", "-e", "LAST=1"],
    &["-w", "/tmp"],
    &["--workdir=/opt"],
    &["-u", "1000:1000"],
    &["--user", "nobody"],
    &["--entrypoint", "/bin/echo", "--", "hello"],
    &["--entrypoint", "", "--", "sh"],
    &["-l", "team=vision", "-l", "flag", "--label", "a.b=c"],
    &["-h", "box"],
    &["--hostname=box.example"],
    &["--init"],
    &["--read-only"],
    &["--restart", "unless-stopped"],
    &["--restart=on-failure:3"],
    &["--restart", "always"],
    &["--stop-signal", "SIGUSR1", "--stop-timeout", "5"],
    &["-v", "{dir}:/hostdir:ro"],
    &["-v", "{dir}:/hostdir:rw,z"],
    &["-v", "berth-parity-vol:/named"],
    &["-v", "/anonymous"],
    &["--volume={dir}:/a", "-v", "/b"],
    &["--mount", "type=bind,source={dir},target=/m,readonly"],
    &[
        "--mount",
        "type=bind,src={dir},dst=/m,bind-propagation=rslave",
    ],
    &[
        "--mount",
        "type=volume,source=berth-parity-vol,target=/v,volume-label=a=b,volume-nocopy",
    ],
    &["--mount", "type=volume,target=/anon-mount"],
    &[
        "--mount",
        "type=tmpfs,target=/t,tmpfs-size=64m,tmpfs-mode=1770",
    ],
    &["--tmpfs", "/run:rw,size=64m", "--tmpfs", "/cache"],
    &["--device", "/dev/null:/dev/mynull:rw"],
    &["--device=/dev/zero"],
    &["--group-add", "100", "--group-add", "audio"],
    &["-p", "8080:80"],
    &["-p", "127.0.0.1:8081:81/udp", "-p", "8082:82/tcp"],
    &["-p", "9000-9001:9000-9001"],
    &["-p", "80", "--publish", "0.0.0.0::443"],
    &["--expose", "7000-7002", "--expose", "53/udp"],
    &["--network", "host"],
    &["--net=none"],
    &["--add-host", "db:10.0.0.2", "--add-host=cache:10.0.0.3"],
    &["--dns", "8.8.8.8", "--dns", "1.1.1.1"],
    &["--gpus", "all"],
    &["--gpus", "2"],
    &["--gpus", "\"device=0,1\""],
    &["--gpus", "count=1,capabilities=utility"],
    &["--shm-size", "1g"],
    &[
        "-m",
        "512m",
        "--memory-swap",
        "1g",
        "--memory-reservation",
        "256m",
    ],
    &["--memory=2G", "--memory-swap=-1"],
    &["--cpus", "1.5"],
    &["--cpus=0.25", "--cpuset-cpus", "0"],
    &["--ipc", "host"],
    &["--ipc=shareable", "--pid", "host"],
    &["--cap-add", "SYS_ADMIN", "--cap-drop", "net_raw"],
    &["--cap-add=ALL", "--cap-drop", "CAP_MKNOD"],
    &[
        "--security-opt",
        "seccomp=unconfined",
        "--security-opt",
        "no-new-privileges",
    ],
    &["--security-opt", "apparmor=unconfined"],
    &["--ulimit", "nofile=1024:2048", "--ulimit", "nproc=512"],
    &["--sysctl", "net.core.somaxconn=1024"],
    &["--pids-limit", "100"],
    &["--pids-limit=-1"],
    &["--oom-score-adj", "500"],
    &["--privileged"],
    &["-ti"],
    &[
        "-ite",
        "X=1",
        "--rm",
        "-v",
        "{dir}:/w2",
        "-p8083:83",
        "-eY=2",
    ],
    &["--", "sh", "-c", "echo $HOME"],
    // The less common flags, passed on as docker passes them.
    &["-a", "stdout"],
    &["-a", "STDIN", "-a", "stderr", "-i"],
    &["--label-file", "{dir}/labels", "-l", "b=from-flag"],
    &["--domainname", "example.org"],
    &[
        "--health-cmd",
        "true",
        "--health-interval",
        "30s",
        "--health-retries",
        "3",
        "--health-timeout=1m30s",
        "--health-start-period",
        "500ms",
    ],
    &["--health-interval", "10s"],
    &["--no-healthcheck"],
    &[
        "--cpu-shares",
        "512",
        "--cpu-period",
        "100000",
        "--cpu-quota",
        "50000",
    ],
    &["-c", "256", "--cpuset-mems", "0"],
    &[
        "--blkio-weight",
        "300",
        "--blkio-weight-device",
        "/dev/null:200",
    ],
    &[
        "--device-read-bps",
        "/dev/null:1mb",
        "--device-write-iops",
        "/dev/null:100",
    ],
    &["--cgroupns", "private", "--uts", "host", "--userns", "host"],
    &["--cgroup-parent", "berth-parity"],
    &[
        "--dns-option",
        "ndots:2",
        "--dns-opt",
        "timeout:1",
        "--dns-search",
        "example.org",
    ],
    &["--device-cgroup-rule", "c 1:3 mr"],
    &["--log-driver", "json-file", "--log-opt", "max-size=10m"],
    &[
        "--oom-kill-disable",
        "-m",
        "256m",
        "--memory-swappiness",
        "10",
    ],
    &["-P", "--expose", "80"],
    &["--runtime", "runc", "--isolation", "default"],
    &["--disable-content-trust", "--pull", "missing"],
];

/// The Config and HostConfig fields the flags control.
const CONFIG_FIELDS: &[&str] = &[
    "Tty",
    "OpenStdin",
    "StdinOnce",
    "AttachStdin",
    "AttachStdout",
    "AttachStderr",
    "Env",
    "Cmd",
    "Entrypoint",
    "Image",
    "Labels",
    "ExposedPorts",
    "StopSignal",
    "StopTimeout",
    "Volumes",
    "Domainname",
    "Healthcheck",
];
const HOST_FIELDS: &[&str] = &[
    "Binds",
    "Mounts",
    "Tmpfs",
    "Devices",
    "GroupAdd",
    "PortBindings",
    "Dns",
    "ExtraHosts",
    "NetworkMode",
    "DeviceRequests",
    "ShmSize",
    "Memory",
    "MemorySwap",
    "MemoryReservation",
    "NanoCpus",
    "CpusetCpus",
    "IpcMode",
    "PidMode",
    "CapAdd",
    "CapDrop",
    "SecurityOpt",
    "Ulimits",
    "Sysctls",
    "PidsLimit",
    "OomScoreAdj",
    "Privileged",
    "ReadonlyRootfs",
    "RestartPolicy",
    "AutoRemove",
    "Init",
    "CpuShares",
    "CpuPeriod",
    "CpuQuota",
    "CpusetMems",
    "BlkioWeight",
    "BlkioWeightDevice",
    "BlkioDeviceReadBps",
    "BlkioDeviceWriteIOps",
    "CgroupParent",
    "CgroupnsMode",
    "UTSMode",
    "UsernsMode",
    "DnsOptions",
    "DnsSearch",
    "DeviceCgroupRules",
    "LogConfig",
    "OomKillDisable",
    "MemorySwappiness",
    "PublishAllPorts",
    "Runtime",
    "Isolation",
];

/// Containers and volumes the docker side of the suite made.
struct Made {
    containers: Vec<String>,
}

impl Drop for Made {
    fn drop(&mut self) {
        for id in &self.containers {
            docker(&["rm", "-f", "-v", id]);
        }
        docker(&["volume", "rm", "-f", "berth-parity-vol"]);
    }
}

fn inspect(id: &str) -> Value {
    let out = docker(&["inspect", id]);
    assert_code(&out, 0);
    serde_json::from_slice::<Value>(&out.stdout).unwrap()[0].clone()
}

/// The fields the flags control, with berth's own additions taken out.
fn controlled(container: &Value, line: &[&str]) -> Value {
    let mut fields = serde_json::Map::new();
    let sets = |flags: &[&str]| {
        line.iter().any(|a| {
            flags
                .iter()
                .any(|f| a == f || a.starts_with(&format!("{f}=")))
        })
    };
    for key in CONFIG_FIELDS {
        let mut value = container["Config"][key].clone();
        match *key {
            "Env" => {
                // The docker CLI passes `-e` through a Go map, so its order is random:
                // compare the variables, not their order.
                let mut list: Vec<Value> = value
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|e| {
                        let e = e.as_str().unwrap_or_default();
                        !e.starts_with("HOME=") && !e.starts_with("HOST_DATA_PATH=")
                    })
                    .collect();
                list.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
                value = Value::Array(list);
            }
            "Labels" => {
                if let Some(map) = value.as_object_mut() {
                    map.retain(|k, _| !k.starts_with("berth."));
                }
            }
            _ => {}
        }
        fields.insert(format!("Config.{key}"), value);
    }
    // berth sets these when the flags do not; compare them when the flags do.
    for (key, flags) in [
        ("User", &["-u", "--user"][..]),
        ("WorkingDir", &["-w", "--workdir"][..]),
        ("Hostname", &["-h", "--hostname"][..]),
    ] {
        if sets(flags) {
            fields.insert(format!("Config.{key}"), container["Config"][key].clone());
        }
    }
    // Docker CLIs spelled capabilities differently over the years (`net_raw` as typed
    // up to 20.10, `CAP_NET_RAW` since); the engine reads both alike.
    for key in ["CapAdd", "CapDrop"] {
        if let Some(list) = container["HostConfig"][key].as_array() {
            let caps: Vec<Value> = list
                .iter()
                .map(|c| {
                    let upper = c.as_str().unwrap_or_default().to_uppercase();
                    let name = upper.strip_prefix("CAP_").unwrap_or(&upper).to_string();
                    Value::String(name)
                })
                .collect();
            fields.insert(format!("HostConfig.{key}"), Value::Array(caps));
        }
    }
    let berth_targets = ["/workspace", "/data", "/root"];
    for key in HOST_FIELDS {
        let mut value = container["HostConfig"][key].clone();
        if *key == "Mounts" {
            let list: Vec<Value> = value
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|m| {
                    let target = m["Target"].as_str().unwrap_or_default();
                    !berth_targets.contains(&target) && !target.starts_with("/home/")
                })
                .collect();
            value = Value::Array(list);
        }
        fields.insert(format!("HostConfig.{key}"), value);
    }
    if sets(&["--name"]) {
        fields.insert(
            "Name".into(),
            Value::Bool(container["Name"].as_str().is_some()),
        );
    }
    Value::Object(fields)
}

#[test]
fn berth_create_sends_what_docker_create_sends_for_every_supported_flag() {
    assert!(PARITY.len() >= 40, "the suite covers at least 40 lines");
    let sb = Sandbox::new().env("FROM_ENV", "from the caller");
    sb.project_toml("");
    let dir = sb.path().to_str().unwrap().to_string();
    std::fs::write(
        sb.path().join("vars.env"),
        "# a comment\nFILE_A=1\nFILE_B=\"quoted stays\"\nFROM_ENV\n",
    )
    .unwrap();
    std::fs::write(
        sb.path().join("labels"),
        "# labels\na=from-file\nb=overridden\n\nflag\n",
    )
    .unwrap();
    let mut made = Made {
        containers: Vec::new(),
    };
    let mut mismatches = Vec::new();
    for (n, line) in PARITY.iter().enumerate() {
        // The test image has no command of its own.
        let (flags, command) = match line.iter().position(|a| *a == "--") {
            Some(at) => (&line[..at], &line[at + 1..]),
            None => (*line, &["sh"][..]),
        };
        let expand = |side: &str| -> Vec<String> {
            let mut args: Vec<String> = flags
                .iter()
                .map(|a| {
                    a.replace("{name}", &format!("{}-{side}-{n}", sb.project))
                        .replace("{dir}", &dir)
                })
                .collect();
            args.push(sb.image.tag.clone());
            args.extend(command.iter().map(|c| c.to_string()));
            args
        };
        let docker_args = expand("docker");
        let mut docker_cmd = std::process::Command::new("docker");
        docker_cmd.arg("create").args(&docker_args);
        docker_cmd.env("FROM_ENV", "from the caller");
        let out = docker_cmd.output().unwrap();
        assert!(
            out.status.success(),
            "docker create {docker_args:?}: {}",
            stderr(&out)
        );
        let docker_id = stdout(&out).trim().to_string();
        made.containers.push(docker_id.clone());

        let mut berth_args = vec!["create".to_string(), "--project".into(), sb.project.clone()];
        berth_args.extend(expand("berth"));
        let refs: Vec<&str> = berth_args.iter().map(String::as_str).collect();
        let out = sb.berth(&refs);
        if out.status.code() != Some(0) {
            mismatches.push(format!("{line:?}: berth failed: {}", stderr(&out)));
            continue;
        }
        let berth_id = stdout(&out).trim().to_string();
        assert_eq!(berth_id.len(), 64, "create prints the id: {berth_id:?}");
        made.containers.push(berth_id.clone());

        let (want, got) = (
            controlled(&inspect(&docker_id), line),
            controlled(&inspect(&berth_id), line),
        );
        for (key, value) in want.as_object().unwrap() {
            if got[key] != *value {
                mismatches.push(format!(
                    "{line:?}: {key}: docker {value}, berth {}",
                    got[key]
                ));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} difference(s):\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn berths_additions_are_on_every_run_container() {
    let sb = Sandbox::new();
    sb.project_toml("");
    let out = sb.berth(&[
        "run",
        "-d",
        "--project",
        &sb.project,
        &sb.image.tag,
        "sleep",
        "60",
    ]);
    assert_code(&out, 0);
    let id = stdout(&out).trim().to_string();
    assert_eq!(id.len(), 64, "-d prints the id: {id:?}");
    let container = inspect(&id);
    assert_eq!(container["State"]["Status"], "running");
    assert_eq!(container["Config"]["WorkingDir"], "/workspace");
    assert_eq!(
        container["Config"]["Labels"]["berth.project"],
        sb.project.as_str()
    );
    assert_eq!(container["Config"]["Labels"]["berth.run"], "1");
    let uid = unsafe { libc::getuid() };
    let gid = unsafe { libc::getgid() };
    assert_eq!(container["Config"]["User"], format!("{uid}:{gid}"));
    let mounts = container["Mounts"].as_array().unwrap();
    let workspace = mounts
        .iter()
        .find(|m| m["Destination"] == "/workspace")
        .expect("the workspace is mounted");
    assert_eq!(workspace["Source"], sb.workspace().to_str().unwrap());
    // A run container is not the project's deployed one.
    let out = sb.berth(&["retire", &sb.project]);
    assert_code(&out, 1);
    assert_stderr_has(&out, "has no container of yours");
}

#[test]
fn create_prints_the_id_of_a_created_container() {
    let sb = Sandbox::new();
    sb.project_toml("");
    let out = sb.berth(&["create", "--project", &sb.project, &sb.image.tag, "true"]);
    assert_code(&out, 0);
    let id = stdout(&out).trim().to_string();
    assert_eq!(inspect(&id)["State"]["Status"], "created");
}

#[test]
fn the_exit_status_passes_through_and_rm_removes_the_container() {
    let sb = Sandbox::new();
    sb.project_toml("");
    let run = |cmd: &[&str]| {
        let mut args = vec!["run", "--rm", "--project", &sb.project, &sb.image.tag];
        args.extend_from_slice(cmd);
        sb.berth(&args)
    };
    let out = run(&["sh", "-c", "echo out; echo err >&2; exit 7"]);
    assert_code(&out, 7);
    assert_eq!(stdout(&out), "out\n");
    assert_stderr_has(&out, "err");
    assert_code(&run(&["true"]), 0);
    let out = run(&["no-such-command"]);
    assert_code(&out, 127);
    let out = run(&["/etc/passwd"]);
    assert_code(&out, 126);
    assert_eq!(sb.container_ids(), "", "--rm left nothing");
}

#[test]
fn stdin_is_forwarded_with_i_and_closed_at_its_end() {
    let sb = Sandbox::new();
    sb.project_toml("");
    let out = sb.berth_with_stdin(
        &[
            "run",
            "-i",
            "--rm",
            "--project",
            &sb.project,
            &sb.image.tag,
            "sh",
            "-c",
            "wc -l",
        ],
        "one\ntwo\nthree\n",
    );
    assert_code(&out, 0);
    assert_eq!(stdout(&out).trim(), "3");
}

#[test]
fn an_unsupported_flag_exits_125_and_names_it() {
    let sb = Sandbox::new();
    sb.project_toml("");
    for (flag, message) in [
        ("--blkio-wieght", "unknown flag: --blkio-wieght"),
        ("-Q", "unknown shorthand flag: 'Q' in -Q"),
    ] {
        let out = sb.berth(&["run", "--project", &sb.project, flag, "10", &sb.image.tag]);
        assert_code(&out, 125);
        assert_stderr_has(&out, message);
    }
    let out = sb.berth(&[
        "run",
        "--project",
        &sb.project,
        "--memory",
        "lots",
        &sb.image.tag,
    ]);
    assert_code(&out, 125);
    assert_stderr_has(&out, "--memory");
    assert_eq!(sb.container_ids(), "");
}

#[test]
fn the_project_comes_from_the_current_directory_or_is_asked_for() {
    let sb = Sandbox::new();
    sb.project_toml("");
    let inside = sb.workspace().join("src/deep");
    std::fs::create_dir_all(&inside).unwrap();
    let out = sb.berth_in(
        &inside,
        &["run", "--rm", &sb.image.tag, "sh", "-c", "ls /workspace"],
    );
    assert_code(&out, 0);
    assert!(stdout(&out).contains("berth.toml"), "{}", stdout(&out));
    let out = sb.berth_in(sb.path(), &["run", "--rm", &sb.image.tag, "true"]);
    assert_code(&out, 125);
    assert_stderr_has(&out, "--project NAME");
}

/// As with deploy: the workspace and home a run made for a container the engine then
/// refused are taken back, so a failed `berth run` leaves nothing behind.
#[test]
fn a_run_the_engine_refuses_leaves_no_new_workspace_or_home_behind() {
    let sb = Sandbox::new();
    let run = ["run", "--project", &sb.project, "--cpus", "4096"];
    let out = sb.berth(&[&run[..], &[&sb.image.tag, "true"]].concat());
    assert_code(&out, 125);
    assert_stderr_has(&out, "CPU");
    assert!(!sb.workspace().exists(), "{}", sb.workspace().display());
    let home = sb.container_home();
    assert!(!home.exists(), "{}", home.display());
    assert_eq!(sb.container_ids(), "");
}

#[test]
fn a_mount_over_the_workspace_is_refused_before_anything_is_created() {
    let sb = Sandbox::new();
    sb.project_toml("");
    for spelled in [
        vec!["-v", "/tmp:/workspace"],
        vec!["--mount", "type=bind,source=/tmp,target=/workspace/sub"],
        vec!["--tmpfs", "/workspace"],
    ] {
        let mut args = vec!["run", "--project", &sb.project];
        args.extend(spelled.iter().copied());
        args.push(&sb.image.tag);
        let out = sb.berth(&args);
        assert_code(&out, 3);
        assert_stderr_has(&out, "would shadow the workspace");
    }
    assert_eq!(sb.container_ids(), "");
}

#[test]
fn the_dry_run_line_parses_back_to_the_same_plan() {
    let sb = Sandbox::new();
    sb.project_toml("");
    let dir = sb.path().to_str().unwrap().to_string();
    for line in [
        vec![
            "-it",
            "--rm",
            "-e",
            "A=two words",
            "-v",
            "/tmp:/t:ro",
            "--gpus",
            "\"device=0,1\"",
        ],
        vec![
            "--mount",
            "type=tmpfs,target=/t,tmpfs-size=64m",
            "-p",
            "127.0.0.1:8080:80",
            "--shm-size",
            "1g",
        ],
        vec![
            "-d",
            "--name",
            "xy",
            "--restart",
            "on-failure:2",
            "--cap-add",
            "sys_admin",
            "-l",
            "a=b",
        ],
        vec![
            "--entrypoint",
            "",
            "-w",
            "/opt",
            "-u",
            "0",
            "--ulimit",
            "nofile=10:20",
            "-v",
            &dir,
        ],
        // The less common flags print back in a form that reads as the same.
        vec![
            "--health-cmd",
            "curl -f localhost",
            "--health-interval=1m30s",
            "-c",
            "512",
            "--device-read-bps",
            "/dev/sda:1mb",
            "--dns-search",
            "example.org",
            "--log-opt",
            "max-size=10m",
            "--uts",
            "host",
            "-P",
            "--oom-kill-disable",
            "--link",
            "db",
            "--domainname",
            "example.org",
        ],
    ] {
        let mut args = vec!["run", "--dry-run", "--project", &sb.project];
        args.extend(line.iter().copied());
        args.extend([sb.image.tag.as_str(), "sh", "-c", "echo 'it''s'"]);
        let first = sb.berth(&args);
        assert_code(&first, 0);
        let printed = stdout(&first).trim().to_string();
        assert!(printed.starts_with("docker run "), "{printed}");
        let words = shell_words(&printed);
        let mut again = vec!["run", "--dry-run", "--project", &sb.project];
        again.extend(words[2..].iter().map(String::as_str));
        let second = sb.berth(&again);
        assert_code(&second, 0);
        assert_eq!(stdout(&second).trim(), printed, "from {line:?}");
    }
    assert_eq!(sb.container_ids(), "", "a dry run creates nothing");
}

#[test]
fn an_interactive_run_gets_a_real_terminal_that_follows_the_window() {
    let sb = Sandbox::new();
    sb.project_toml("");
    let mut pty = sb.berth_pty_sized(
        &[
            "run",
            "-it",
            "--rm",
            "--project",
            &sb.project,
            &sb.image.tag,
            "sh",
        ],
        40,
        100,
    );
    pty.send("stty size; echo $((6*7))x\r");
    pty.expect("40 100", TERMINAL);
    pty.expect("42x", TERMINAL);
    pty.resize(50, 120);
    std::thread::sleep(Duration::from_millis(500));
    pty.send("stty size\r");
    pty.expect("50 120", TERMINAL);
    pty.send("exit 3\r");
    let status = pty.wait(TERMINAL);
    assert_eq!(status.code(), Some(3), "{}", pty.output());
    assert!(pty.is_cooked(), "the terminal is restored");
}

#[test]
fn a_signal_to_berth_during_a_terminal_run_restores_the_terminal() {
    let sb = Sandbox::new();
    sb.project_toml("");
    let mut pty = sb.berth_pty(&["run", "-it", "--project", &sb.project, &sb.image.tag, "sh"]);
    pty.send("echo ready$((1+1))\r");
    pty.expect("ready2", TERMINAL);
    assert!(!pty.is_cooked(), "raw while the container has the terminal");
    // SAFETY: kill sends a signal to our own child.
    assert_eq!(unsafe { libc::kill(pty.pid() as i32, libc::SIGTERM) }, 0);
    let status = pty.wait(TERMINAL);
    assert_eq!(status.code(), Some(128 + libc::SIGTERM), "{}", pty.output());
    assert!(pty.is_cooked(), "the terminal is restored");
}

#[test]
fn without_a_terminal_signals_are_passed_to_the_container() {
    let sb = Sandbox::new();
    sb.project_toml("");
    let child = sb
        .command(
            env!("CARGO_BIN_EXE_berth"),
            &[
                "run",
                "--rm",
                "--project",
                &sb.project,
                &sb.image.tag,
                "sh",
                "-c",
                "trap 'echo got INT; exit 9' INT; echo started; while :; do sleep 0.1; done",
            ],
        )
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the container runs its loop.
    let started = std::time::Instant::now();
    while sb.running_ids().trim().is_empty() {
        assert!(started.elapsed() < TERMINAL, "the container did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: kill sends a signal to our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let out = child.wait_with_output().unwrap();
    assert_code(&out, 9);
    assert_eq!(stdout(&out), "started\ngot INT\n");
}

#[test]
fn an_image_that_cannot_be_pulled_exits_125_and_says_so() {
    let sb = Sandbox::new();
    sb.project_toml("");
    let out = sb.berth(&[
        "run",
        "--project",
        &sb.project,
        "berth-test/no-such-image:1",
        "true",
    ]);
    assert_code(&out, 125);
    assert_stderr_has(&out, "cannot pull image berth-test/no-such-image:1");
    assert_eq!(sb.container_ids(), "");
}

#[test]
fn shell_enters_the_running_container_as_the_user_in_the_workspace() {
    let sb = Sandbox::new();
    sb.deployed();
    let mut pty = sb.berth_pty(&["shell", &sb.project]);
    pty.send("echo \"$(id -u):$(pwd)\"x\r");
    let uid = unsafe { libc::getuid() };
    pty.expect(&format!("{uid}:/workspacex"), TERMINAL);
    pty.send("exit 5\r");
    let status = pty.wait(TERMINAL);
    assert_eq!(status.code(), Some(5), "{}", pty.output());
    assert!(pty.is_cooked());

    let out = sb.berth(&["shell", &sb.project, "--", "sh", "-c", "echo piped; exit 4"]);
    assert_code(&out, 4);
    assert_eq!(stdout(&out), "piped\n");
}

#[test]
fn run_and_create_exit_125_when_the_engine_cannot_be_reached() {
    let sb = Sandbox::new().env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    sb.project_toml("");
    for command in ["run", "create"] {
        let out = sb.berth(&[command, "--project", &sb.project, &sb.image.tag, "true"]);
        assert_code(&out, 125);
        assert_stderr_has(&out, "/nonexistent/docker.sock");
    }
}

/// The flags that act around the create: `--cidfile` (never over an existing file),
/// `--pull never|always`, `--use-api-socket`, and `-q` (no pull output).
#[test]
fn cidfile_pull_and_the_api_socket_work_as_dockers() {
    let sb = Sandbox::new();
    sb.project_toml("");
    let cidfile = sb.path().join("cid");
    let cid = cidfile.to_str().unwrap();
    let base = ["run", "--rm", "--project", &sb.project];
    let run = |extra: &[&str], command: &[&str]| {
        let mut args: Vec<&str> = base.to_vec();
        args.extend_from_slice(extra);
        args.push(&sb.image.tag);
        args.extend_from_slice(command);
        sb.berth(&args)
    };

    let out = run(&["--cidfile", cid], &["true"]);
    assert_code(&out, 0);
    let id = std::fs::read_to_string(&cidfile).unwrap();
    assert_eq!(id.len(), 64, "{id}");
    let out = run(&["--cidfile", cid], &["true"]);
    assert_code(&out, 125);
    assert_stderr_has(&out, "Container ID file found");

    let out = sb.berth(&[
        "run",
        "--rm",
        "--project",
        &sb.project,
        "--pull",
        "never",
        "berth-test/not-here:1",
        "true",
    ]);
    assert_code(&out, 125);
    assert_stderr_has(&out, "No such image: berth-test/not-here:1");
    // Always pull: there is no registry here, so that fails clearly.
    let out = run(&["--pull", "always"], &["true"]);
    assert_code(&out, 125);
    let out = run(&["--pull", "sometimes"], &["true"]);
    assert_code(&out, 125);
    assert_stderr_has(&out, "invalid pull option");

    let out = run(
        &["--use-api-socket"],
        &["test", "-S", "/var/run/docker.sock"],
    );
    assert_code(&out, 0);
    let out = run(&["-a", "stdout"], &["sh", "-c", "echo out; echo err >&2"]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "out\n");
    assert!(!stderr(&out).contains("err"), "{}", stderr(&out));
}
