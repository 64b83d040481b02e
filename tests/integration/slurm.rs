//! `deploy --slurm`: real jobs on the one-node Slurm of the tests, whose four GPUs are
//! gres on fake devices (the policy's "env" request mode starts containers anyway).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::slurm::{self, JobGuard};
use crate::support::*;

fn sandbox() -> (Sandbox, PathBuf) {
    let conf = slurm::conf();
    let sb = Sandbox::new().env("SLURM_CONF", conf.to_str().unwrap());
    fs::write(&sb.policy, "[gpus]\nrequest = \"env\"\n").unwrap();
    (sb, conf)
}

fn env_of(inspected: &Value, key: &str) -> Option<String> {
    inspected["Config"]["Env"].as_array()?.iter().find_map(|e| {
        e.as_str()?
            .strip_prefix(&format!("{key}="))
            .map(str::to_string)
    })
}

/// `deploy PROJECT --slurm EXTRA… --json -- sleep 3600`: its output, what it printed,
/// and a guard that cancels its job.
fn deploy(sb: &Sandbox, conf: &Path, extra: &[&str]) -> (Output, Value, JobGuard) {
    let mut args = sb.deploy_args(&["--slurm", "--json"]);
    args.extend_from_slice(extra);
    args.extend(["--", "sleep", "3600"]);
    let out = sb.berth(&args);
    let said: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let job = JobGuard {
        id: said["job"].as_str().unwrap_or_default().to_string(),
        conf: conf.to_path_buf(),
    };
    (out, said, job)
}

/// Waits (a minute at most) until the project's container is gone.
fn wait_gone(sb: &Sandbox) {
    let start = Instant::now();
    while sb.exists() && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_slurm_deploy_runs_with_the_jobs_gpus_and_its_end_rescues_the_work() {
    let (sb, conf) = sandbox();
    let (out, said, job) = deploy(&sb, &conf, &["--gpus", "2"]);
    assert_code(&out, 0);
    assert_eq!(said["state"], "running", "{said:#}");
    assert_eq!(said["container"], sb.container());
    assert_stderr_has(&out, format!("job {} on ", job.id));
    let inspected = sb.inspect().expect("the container runs");
    let held = inspected["Config"]["Labels"]["berth.gpus"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(held.split(',').count(), 2, "the job's two GPUs: {held}");
    assert_eq!(env_of(&inspected, "NVIDIA_VISIBLE_DEVICES"), Some(held));

    // Slurm ends the job: the batch script retires the container, work rescued first.
    assert_code(
        &sb.exec_as_root("mkdir -p /opt/r && echo work > /opt/r/out"),
        0,
    );
    assert!(job.run("scancel", &[&job.id]).status.success());
    wait_gone(&sb);
    assert!(!sb.exists(), "retired when the job ended");
    let rescued = sb.rescued();
    assert_eq!(
        fs::read_to_string(rescued.join("opt/r/out")).unwrap(),
        "work\n"
    );
    let report: Value = serde_json::from_slice(
        &fs::read(
            sb.state_dir()
                .join("slurm")
                .join(format!("{}.json", sb.project)),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(report["state"], "ended", "{report:#}");
}

#[test]
fn no_wait_gives_the_job_id_at_once_and_gpus_go_by_count() {
    let (sb, conf) = sandbox();
    let (out, said, job) = deploy(&sb, &conf, &["--no-wait"]);
    assert_code(&out, 0);
    assert_eq!(said["state"], "submitted");
    assert!(job.queued(), "job {} is in the queue", job.id);
    let out = job.run("squeue", &["-h", "-j", &job.id, "-o", "%j"]);
    assert_eq!(
        stdout(&out).trim(),
        format!("berth:{}:{}", whoami(), sb.project)
    );

    let out = sb.berth(&sb.deploy_args(&["--slurm", "--gpus", "all"]));
    assert_code(&out, 2);
    assert_stderr_has(&out, "Slurm hands out GPUs by count");
    drop(job);
    wait_gone(&sb);
}

#[test]
fn list_shell_and_retire_of_a_project_slurm_holds_go_through_its_job() {
    let (sb, conf) = sandbox();
    let (out, said, job) = deploy(&sb, &conf, &[]);
    assert_code(&out, 0);

    let out = sb.berth(&["list", "--json"]);
    assert_code(&out, 0);
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mine = listed["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["project"] == sb.project.as_str())
        .unwrap()
        .clone();
    assert_eq!(mine["slurm"]["job"], job.id.as_str(), "{mine:#}");
    assert_eq!(mine["slurm"]["state"], "running");
    assert_eq!(mine["slurm"]["node"], said["node"]);
    assert!(stdout(&sb.berth(&["list"])).contains("SLURM JOB"));

    let out = sb.berth(&["shell", &sb.project, "--", "echo", "on the node"]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "on the node\n");

    assert_code(
        &sb.exec_as_root("mkdir -p /opt/r && echo work > /opt/r/out"),
        0,
    );
    let out = sb.berth(&["retire", &sb.project, "--rescue", "--yes"]);
    assert_code(&out, 0);
    assert_stderr_has(&out, format!("runs in Slurm job {}", job.id));
    assert!(!sb.exists());
    assert!(sb.workspace().join(".rescued").is_dir());
    let start = Instant::now();
    while job.queued() && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!job.queued(), "the job ended with its container");
}

#[test]
fn the_slurm_section_shapes_the_job_and_a_policy_can_require_slurm() {
    let (sb, conf) = sandbox();
    let policy = "[gpus]\nrequest = \"env\"\n\
                  [slurm]\nrequire = true\npartition = \"debug\"\noptions = [\"--comment=from-policy\"]\n";
    fs::write(&sb.policy, policy).unwrap();
    sb.project_toml("[slurm]\ntime = \"10:00\"\n");
    let out = sb.berth(&["deploy", &sb.project, "--image", &sb.image.tag]);
    assert_code(&out, 3);
    assert_stderr_has(&out, "places projects with Slurm");
    assert!(!sb.exists());

    let (out, _, job) = deploy(&sb, &conf, &["--no-wait"]);
    assert_code(&out, 0);
    let shown = stdout(&job.run("scontrol", &["show", "job", &job.id]));
    assert!(shown.contains("TimeLimit=00:10:00"), "{shown}");
    assert!(shown.contains("Partition=debug"), "{shown}");
    assert!(shown.contains("Comment=from-policy"), "{shown}");
    drop(job);

    sb.project_toml("[slurm]\noptions = [\"--wrap=true\"]\n");
    let out = sb.berth(&["deploy", &sb.project, "--image", &sb.image.tag, "--slurm"]);
    assert_code(&out, 2);
    assert_stderr_has(&out, "is not one sbatch option berth can pass on");

    // A limit that leaves no minute for the rescue, from the file or the flag.
    sb.project_toml("[slurm]\ntime = \"1\"\n");
    let out = sb.berth(&["deploy", &sb.project, "--image", &sb.image.tag, "--slurm"]);
    assert_code(&out, 2);
    assert_stderr_has(&out, "--time 1 is too short");
    let (out, _, _) = deploy(&sb, &conf, &["--time", "1:30"]);
    assert_code(&out, 2);
    assert_stderr_has(&out, "--time 1:30 is too short");
    let named = format!("berth:{}:{}", whoami(), sb.project);
    let queued = std::process::Command::new("squeue")
        .args(["-h", "-n", &named, "-o", "%i"])
        .env("SLURM_CONF", &conf)
        .output()
        .unwrap();
    assert_eq!(stdout(&queued).trim(), "", "nothing submitted");
    wait_gone(&sb);
}

#[test]
fn a_deploy_for_busy_gpus_waits_in_slurms_queue_and_says_why() {
    let (sb, conf) = sandbox();
    // Every GPU of the node taken by jobs of its own.
    let blockers: Vec<JobGuard> = (0..2)
        .map(|_| {
            let out = std::process::Command::new("sbatch")
                .args([
                    "--parsable",
                    "--gres=gpu:2",
                    "--output=/dev/null",
                    "--wrap",
                    "sleep 300",
                ])
                .env("SLURM_CONF", &conf)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", stderr(&out));
            JobGuard {
                id: stdout(&out).trim().split(';').next().unwrap().to_string(),
                conf: conf.clone(),
            }
        })
        .collect();
    let mut child = sb
        .command(
            env!("CARGO_BIN_EXE_berth"),
            &sb.deploy_args(&["--slurm", "--gpus", "1", "--json", "--", "sleep", "3600"]),
        )
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // It waits, and says why, with its place in the queue.
    let mut stderr_pipe = child.stderr.take().unwrap();
    let said = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr_pipe, &mut text).ok();
        text
    });
    std::thread::sleep(Duration::from_secs(3));
    assert!(child.try_wait().unwrap().is_none(), "still waiting");
    drop(blockers);
    let out = child.wait_with_output().unwrap();
    let said = said.join().unwrap();
    let outcome: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let _job = JobGuard {
        id: outcome["job"].as_str().unwrap_or_default().to_string(),
        conf: conf.clone(),
    };
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("is pending"), "{said}");
    assert!(said.contains("in the queue"), "{said}");
    assert_eq!(outcome["state"], "running");
    assert_code(&sb.berth(&["retire", &sb.project, "--yes"]), 0);
}

#[test]
fn a_job_whose_rescue_cannot_finish_keeps_its_container_stopped_and_says_so() {
    let (sb, conf) = sandbox();
    let (out, _, job) = deploy(&sb, &conf, &[]);
    assert_code(&out, 0);
    assert_code(
        &sb.exec_as_root("mkdir -p /opt/r && echo work > /opt/r/out"),
        0,
    );
    // A file where the rescue folder should go.
    fs::write(sb.workspace().join(".rescued"), "in the way").unwrap();
    assert!(job.run("scancel", &[&job.id]).status.success());
    let report_path = sb
        .state_dir()
        .join("slurm")
        .join(format!("{}.json", sb.project));
    let start = Instant::now();
    let report = loop {
        let report: Value =
            serde_json::from_slice(&fs::read(&report_path).unwrap()).unwrap_or(Value::Null);
        if report["state"] == "ended" || start.elapsed() > Duration::from_secs(60) {
            break report;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(report["state"], "ended", "{report:#}");
    let reason = report["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("kept"), "{report:#}");
    assert_eq!(sb.state(), "exited", "kept, stopped");
    assert_code(&docker(&["start", &sb.container()]), 0);
    assert_eq!(stdout(&sb.exec("cat /opt/r/out")), "work\n");
}
