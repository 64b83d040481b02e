//! `container-deploy PROJECT --slurm`: the project placed by Slurm, the cluster's own
//! allocator and queue. berth schedules nothing itself.
//!
//! The deploy submits a batch job named `berth:<user>:<project>` whose script runs
//! berth itself (`berth slurm-job`) on the node Slurm picks. There it deploys the
//! project on that node's engine, as a deploy does anywhere (workspace, data root and
//! its marker, identity), with exactly the GPUs Slurm gave the job (`SLURM_JOB_GPUS`)
//! and berth's own GPU allocation off. The job then holds: it ends when the container
//! exits, and when Slurm ends it (scancel, the time limit, preemption) the script is
//! signalled first (`--signal=B:TERM@60`) and retires the container with `--rescue`,
//! within the cluster's `KillWait`. A rescue that cannot finish keeps the container,
//! stopped, and says so in the job's log and the event log.
//!
//! The job reports to the submit host through the user's state folder, which a cluster
//! shares with its nodes: `<state>/slurm/<project>.json` says the job, the node, the
//! container and whether it runs; `<project>-<job>.log` is the job's output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cli::{DeployArgs, RetireArgs, SlurmJobArgs};
use crate::error::{Error, Result};
use crate::host::{HostUser, Paths, ProjectName};
use crate::ui::Printer;

/// How long before the time limit Slurm signals the batch script: the retire's time.
const WARN_SECONDS: u32 = 60;

/// What the job says of itself, in `<state>/slurm/<project>.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Report {
    pub job: String,
    pub node: String,
    pub container: String,
    /// `running`, `ended`, or `failed` with `reason`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What `deploy --slurm --json` prints.
#[derive(Debug, Serialize)]
struct Submitted<'a> {
    project: &'a str,
    job: &'a str,
    /// `submitted` with --no-wait, else `running`.
    state: &'a str,
    node: Option<&'a str>,
    container: Option<&'a str>,
}

fn folder() -> Result<PathBuf> {
    Ok(Paths::from_env()?.state_dir.join("slurm"))
}

fn report_path(folder: &Path, project: &str) -> PathBuf {
    folder.join(format!("{project}.json"))
}

fn read_report(folder: &Path, project: &str) -> Option<Report> {
    let text = std::fs::read(report_path(folder, project)).ok()?;
    serde_json::from_slice(&text).ok()
}

fn write_report(folder: &Path, project: &str, report: &Report) -> Result<()> {
    let path = report_path(folder, project);
    let bytes = serde_json::to_vec_pretty(report).unwrap_or_default();
    crate::files::write_atomically(&path, &bytes).map_err(|err| Error::io("write", &path, err))
}

/// `--gpus` as Slurm takes it: a count.
fn gres(gpus: Option<&str>) -> Result<Option<String>> {
    match gpus.map(str::trim) {
        None | Some("" | "0") => Ok(None),
        Some(count) if count.parse::<u32>().is_ok() => Ok(Some(format!("gpu:{count}"))),
        Some(other) => Err(Error::usage(format!(
            "--gpus {other} with --slurm: Slurm hands out GPUs by count (--gpus N)"
        ))),
    }
}

/// A Slurm time limit in seconds (`sbatch --time`: `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M`,
/// `D-H:M:S`); `None` for no limit (`0`, `UNLIMITED`, `INFINITE`), `Err` for what Slurm
/// would not read.
fn time_limit(text: &str) -> std::result::Result<Option<u64>, ()> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("unlimited") || text.eq_ignore_ascii_case("infinite") {
        return Ok(None);
    }
    let number = |part: &str| -> std::result::Result<u64, ()> {
        match !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
            true => part.parse().map_err(|_| ()),
            false => Err(()),
        }
    };
    let (days, clock) = match text.split_once('-') {
        Some((days, clock)) => (Some(number(days)?), clock),
        None => (None, text),
    };
    let parts = clock
        .split(':')
        .map(number)
        .collect::<std::result::Result<Vec<u64>, ()>>()?;
    let seconds = match (days, parts.as_slice()) {
        (None, [m]) => m * 60,
        (None, [m, s]) => m * 60 + s,
        (None, [h, m, s]) => (h * 60 + m) * 60 + s,
        (Some(d), [h]) => (d * 24 + h) * 3600,
        (Some(d), [h, m]) => (d * 24 + h) * 3600 + m * 60,
        (Some(d), [h, m, s]) => ((d * 24 + h) * 60 + m) * 60 + s,
        _ => return Err(()),
    };
    Ok((seconds > 0).then_some(seconds))
}

/// Refuses a time limit that leaves no room for the rescue: Slurm signals the job
/// [`WARN_SECONDS`] before its limit, and its signals come a minute apart at best.
fn check_time(time: &str) -> Result<()> {
    match time_limit(time) {
        Err(()) => Err(Error::usage(format!(
            "--time {time}: not a time Slurm reads"
        ))
        .hint("minutes, M:S, H:M:S, D-H, D-H:M or D-H:M:S, as sbatch --time takes it")),
        Ok(Some(seconds)) if seconds < 2 * u64::from(WARN_SECONDS) => Err(Error::usage(format!(
            "--time {time} is too short: berth has Slurm signal the job {WARN_SECONDS} s before its limit to rescue the work, so a job needs at least 2 minutes"
        ))),
        Ok(_) => Ok(()),
    }
}

/// The batch script: berth itself, on the node.
fn script(berth: &Path, args: &Path) -> String {
    format!(
        "#!/bin/sh\n# berth's job: deploys the project here and holds it while the job lasts.\nexec {} slurm-job {}\n",
        quoted(&berth.to_string_lossy()),
        quoted(&args.to_string_lossy())
    )
}

/// `text` as one word of `sh`.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// `sbatch`'s answer with `--parsable`: `JOBID` or `JOBID;CLUSTER`.
fn job_id(answer: &str) -> Option<String> {
    let id = answer.trim().split(';').next()?.trim();
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())).then(|| id.to_string())
}

fn run(program: &str, args: &[String], input: Option<&str>) -> Result<String> {
    use std::io::Write;
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|err| match err.kind() {
            std::io::ErrorKind::NotFound => Error::failed(format!(
                "there is no {program} here: --slurm needs Slurm's commands on this host"
            )),
            _ => Error::failed(format!("cannot run {program}: {err}")),
        })?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(text.as_bytes()).ok();
    }
    let out = child
        .wait_with_output()
        .map_err(|err| Error::failed(format!("{program} stopped: {err}")))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        return Err(Error::failed(format!(
            "{program} failed: {}",
            said.trim()
                .trim_start_matches(&format!("{program}: "))
                .trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `deploy --slurm`: submits the job, then waits until its container runs.
pub async fn submit(args: &DeployArgs, printer: &Printer) -> Result<()> {
    let project = ProjectName::parse(&args.project)?;
    let project = project.as_str();
    let user = HostUser::current();
    let folder = folder()?;
    crate::files::private_dir(&folder).map_err(|err| Error::io("create", &folder, err))?;
    let gres = gres(args.gpus.as_deref())?;
    let ctx = crate::context::Context::load(project, &Default::default())?;
    let settings = &ctx.settings;
    let value = |s: &Option<crate::config::Sourced<String>>| s.as_ref().map(|s| s.value.clone());
    let partition = args
        .partition
        .clone()
        .or_else(|| value(&settings.slurm_partition));
    let time = args.time.clone().or_else(|| value(&settings.slurm_time));
    if let Some(time) = &time {
        check_time(time)?;
    }
    let account = value(&settings.slurm_account);
    let options = settings
        .slurm_options
        .as_ref()
        .map(|o| o.value.clone())
        .unwrap_or_default();
    for option in &options {
        let word = option.trim_start_matches("--");
        let name = word.split('=').next().unwrap_or_default();
        let ours = ["job-name", "output", "signal", "parsable", "wrap", "gres"];
        if !option.starts_with("--")
            || name.is_empty()
            || option.contains(char::is_whitespace)
            || ours.contains(&name)
        {
            return Err(Error::usage(format!(
                "[slurm] options: {option:?} is not one sbatch option berth can pass on"
            ))
            .hint("each is one word, --name or --name=value; berth sets the job's name, output, signal and GPUs itself"));
        }
    }
    // The job deploys with these arguments, on the node.
    let mut job_args = args.clone();
    job_args.slurm = false;
    job_args.no_wait = false;
    let args_path = folder.join(format!("{project}.args.json"));
    let bytes = serde_json::to_vec_pretty(&job_args).unwrap_or_default();
    crate::files::write_atomically(&args_path, &bytes)
        .map_err(|err| Error::io("write", &args_path, err))?;
    std::fs::remove_file(report_path(&folder, project)).ok();
    let berth = std::env::current_exe()
        .map_err(|err| Error::failed(format!("cannot tell where berth is: {err}")))?;
    let log = folder.join(format!("{project}-%j.log"));
    // The configuration's options first: berth's own come after, and win.
    let mut sbatch = options;
    sbatch.extend([
        "--parsable".to_string(),
        format!("--job-name=berth:{}:{project}", user.name),
        format!("--output={}", log.display()),
        format!("--signal=B:TERM@{WARN_SECONDS}"),
    ]);
    sbatch.extend(gres.map(|g| format!("--gres={g}")));
    sbatch.extend(time.map(|t| format!("--time={t}")));
    sbatch.extend(partition.map(|p| format!("--partition={p}")));
    sbatch.extend(account.map(|a| format!("--account={a}")));
    let answer = run("sbatch", &sbatch, Some(&script(&berth, &args_path)))?;
    let job = job_id(&answer)
        .ok_or_else(|| Error::failed(format!("sbatch gave no job id: {:?}", answer.trim())))?;
    if args.no_wait {
        printer.note(&format!("submitted job {job} for {project}"));
        if args.json {
            printer.json(&Submitted {
                project,
                job: &job,
                state: "submitted",
                node: None,
                container: None,
            });
        }
        return Ok(());
    }
    let report = wait(&folder, project, &job, printer).await?;
    printer.note(&format!(
        "job {job} on {}: {} is running",
        report.node, report.container
    ));
    if args.json {
        printer.json(&Submitted {
            project,
            job: &job,
            state: "running",
            node: Some(&report.node),
            container: Some(&report.container),
        });
    }
    Ok(())
}

/// One line of `squeue` for `job`: state, node, reason; none once it left the queue.
fn queued(job: &str) -> Result<Option<(String, String, String)>> {
    let args = ["-h", "-j", job, "-o", "%T|%N|%r"].map(str::to_string);
    let answer = match run("squeue", &args, None) {
        Ok(answer) => answer,
        // A job gone from the controller's memory is no error: it ended.
        Err(err) if err.message.contains("Invalid job id") => return Ok(None),
        Err(err) => return Err(err),
    };
    let Some(line) = answer.lines().find(|l| !l.trim().is_empty()) else {
        return Ok(None);
    };
    let mut parts = line.splitn(3, '|').map(|p| p.trim().to_string());
    let (state, node, reason) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    Ok(Some((state, node, reason)))
}

/// Where `job` stands among the pending jobs, by priority: 1 goes first.
fn position(job: &str) -> Option<usize> {
    let args = ["-h", "-t", "PENDING", "-o", "%i", "--sort=-p,i"].map(str::to_string);
    let answer = run("squeue", &args, None).ok()?;
    answer
        .lines()
        .position(|line| line.trim() == job)
        .map(|at| at + 1)
}

/// Waits until the job's container runs, saying why it waits while Slurm queues it.
async fn wait(folder: &Path, project: &str, job: &str, printer: &Printer) -> Result<Report> {
    let mut said = String::new();
    loop {
        if let Some(report) = read_report(folder, project).filter(|r| r.job == job) {
            match report.state.as_str() {
                "running" => return Ok(report),
                _ => {
                    return Err(Error::failed(format!(
                        "job {job} did not deploy {project}: {}",
                        report.reason.as_deref().unwrap_or(&report.state)
                    ))
                    .hint(log_hint(folder, project, job)))
                }
            }
        }
        match queued(job)? {
            None => {
                return Err(Error::failed(format!(
                    "job {job} ended before {project}'s container ran"
                ))
                .hint(log_hint(folder, project, job)))
            }
            Some((state, node, reason)) => {
                let now = match state.as_str() {
                    "PENDING" => {
                        let place = position(job)
                            .map_or(String::new(), |at| format!(", number {at} in the queue"));
                        match reason.as_str() {
                            "" | "None" => format!("job {job} is pending{place}"),
                            reason => format!("job {job} is pending: {reason}{place}"),
                        }
                    }
                    "RUNNING" => format!("job {job} runs on {node}: deploying {project}"),
                    other => format!("job {job} is {}", other.to_lowercase()),
                };
                if now != said {
                    printer.note(&now);
                    said = now;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn log_hint(folder: &Path, project: &str, job: &str) -> String {
    format!(
        "its output is in {}",
        folder.join(format!("{project}-{job}.log")).display()
    )
}

/// The Slurm jobs of the caller's projects, by container name, as `berth list` shows
/// them: the job's reports, with the state Slurm gives (one `squeue` call).
pub fn jobs_by_container() -> BTreeMap<String, Listed> {
    let Ok(folder) = folder() else {
        return BTreeMap::new();
    };
    let reports: Vec<Report> = std::fs::read_dir(&folder)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.ends_with(".json") && !name.ends_with(".args.json")
        })
        .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
        .filter(|r: &Report| r.state == "running")
        .collect();
    if reports.is_empty() {
        return BTreeMap::new();
    }
    // Only these jobs: a cluster's whole queue can hold tens of thousands.
    let ids: Vec<&str> = reports.iter().map(|r| r.job.as_str()).collect();
    let args = ["-h", "-o", "%i|%T", "-j", &ids.join(",")].map(str::to_string);
    let states: BTreeMap<String, String> = run("squeue", &args, None)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (id, state) = l.split_once('|')?;
            Some((id.trim().to_string(), state.trim().to_lowercase()))
        })
        .collect();
    reports
        .into_iter()
        .filter_map(|r| {
            let state = states.get(&r.job)?.clone();
            Some((
                r.container.clone(),
                Listed {
                    job: r.job,
                    node: r.node,
                    state,
                },
            ))
        })
        .collect()
}

/// A container's Slurm job, as `berth list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    pub job: String,
    pub node: String,
    /// As Slurm says it: `running`, `completing`, ...
    pub state: String,
}

/// The Slurm job that holds `project`'s container, where one runs and this process is
/// not inside it: the commands that act on the container then go through it.
pub fn holding_job(project: &str) -> Result<Option<Report>> {
    // A name the command will refuse reads no file here.
    let Ok(project) = ProjectName::parse(project) else {
        return Ok(None);
    };
    let Some(report) = read_report(&folder()?, project.as_str()) else {
        return Ok(None);
    };
    if report.state != "running"
        || std::env::var("SLURM_JOB_ID").ok().as_deref() == Some(&report.job)
    {
        return Ok(None);
    }
    // A job Slurm no longer runs (or a Slurm that cannot be asked) holds nothing.
    Ok(match queued(&report.job).ok().flatten() {
        Some((state, _, _)) if state == "RUNNING" => Some(report),
        _ => None,
    })
}

/// Runs berth with `args` inside `job`'s allocation, on its node (`srun --jobid JOB
/// --overlap`), with a terminal where `pty`; its exit status.
pub fn within(job: &Report, args: &[String], pty: bool) -> Result<i32> {
    let berth = std::env::current_exe()
        .map_err(|err| Error::failed(format!("cannot tell where berth is: {err}")))?;
    let mut command = std::process::Command::new("srun");
    command.args(["--jobid", &job.job, "--overlap", "--quiet"]);
    if pty {
        command.arg("--pty");
    }
    let status = command
        .arg(berth)
        .args(args)
        .status()
        .map_err(|err| Error::failed(format!("cannot run srun: {err}")))?;
    Ok(status.code().unwrap_or(1))
}

/// `container-retire PROJECT` of a project Slurm holds: the retire runs on the job's
/// node, inside the job; then the job ends (its script sees the container gone).
pub fn retire_within(job: &Report, args: &RetireArgs, printer: &Printer) -> Result<i32> {
    printer.note(&format!(
        "{} runs in Slurm job {} on {}: retiring it there",
        job.container, job.job, job.node
    ));
    let mut argv = vec!["retire".to_string(), args.project.clone()];
    let flags = [
        (args.yes, "--yes"),
        (args.rescue, "--rescue"),
        (args.rescue_all, "--rescue-all"),
        (args.save_packages, "--save-packages"),
        (args.dry_run, "--dry-run"),
        (args.json, "--json"),
        (args.verbose, "--verbose"),
    ];
    argv.extend(
        flags
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, f)| f.to_string()),
    );
    argv.extend(args.commit.as_ref().map(|tag| format!("--commit={tag}")));
    let pty = std::io::IsTerminal::is_terminal(&std::io::stdin());
    let code = within(job, &argv, pty)?;
    if code == 0 && !args.dry_run {
        // The job ends once its container is gone; a job that lingers is ended.
        run("scancel", std::slice::from_ref(&job.job), None).ok();
    }
    Ok(code)
}

/// `berth shell PROJECT` of a project Slurm holds: on the job's node.
pub fn shell_within(job: &Report, project: &str, command: &[String]) -> Result<i32> {
    let mut argv = vec!["shell".to_string(), project.to_string()];
    if !command.is_empty() {
        argv.push("--".into());
        argv.extend(command.iter().cloned());
    }
    let pty = std::io::IsTerminal::is_terminal(&std::io::stdin());
    within(job, &argv, pty)
}

/// `berth slurm-job ARGS`: in the batch job, on the node.
pub async fn job(args: &SlurmJobArgs, printer: &Printer) -> Result<i32> {
    let text = std::fs::read(&args.args).map_err(|err| Error::io("read", &args.args, err))?;
    let mut deploy: DeployArgs = serde_json::from_slice(&text)
        .map_err(|err| Error::failed(format!("cannot read {}: {err}", args.args.display())))?;
    let project = deploy.project.clone();
    let folder = folder()?;
    let job = std::env::var("SLURM_JOB_ID").unwrap_or_default();
    let node = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    // This node's engine, whatever the submit host's environment named.
    crate::endpoint::choose("default");
    let given: Vec<String> = std::env::var("SLURM_JOB_GPUS")
        .or_else(|_| std::env::var("SLURM_STEP_GPUS"))
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .collect();
    if deploy.gpus.is_some() || !given.is_empty() {
        deploy.gpus = (!given.is_empty()).then(|| format!("device={}", given.join(",")));
        crate::gpu::claim::given_by_slurm(given);
    }
    let failed = |reason: String| Report {
        job: job.clone(),
        node: node.clone(),
        container: String::new(),
        state: "failed".into(),
        reason: Some(reason),
    };
    let mut signals = crate::signals::Signals::install()?;
    crate::signals::handled_by_caller();
    if let Err(err) = crate::deploy::deploy(&deploy, printer).await {
        write_report(&folder, &project, &failed(err.message.clone()))?;
        return Err(err);
    }
    let engine = crate::engine::Engine::connect().await?;
    let user = HostUser::current();
    let container = engine.project_container(&project, user.uid).await?;
    let mut report = Report {
        job,
        node,
        container: container.name.clone(),
        state: "running".into(),
        reason: None,
    };
    write_report(&folder, &project, &report)?;
    // Holds until the container exits, or Slurm signals the end of the job.
    let code = loop {
        tokio::select! {
            signal = signals.next() => {
                printer.note(&format!("{} from Slurm: retiring {project} with --rescue", signal.name()));
                let retire = RetireArgs::rescuing(&project);
                let retired = crate::retire::retire(&retire, printer).await;
                report.state = "ended".into();
                if let Err(err) = &retired {
                    // The rescue could not finish: the container stays, stopped.
                    engine.stop(&container.id, Duration::from_secs(10)).await.ok();
                    report.reason = Some(format!("kept {}, stopped: {}", container.name, err.message));
                    printer.warn(&format!(
                        "{} is kept, stopped: the rescue could not finish ({})",
                        container.name, err.message
                    ));
                }
                write_report(&folder, &project, &report)?;
                break retired.map(|()| 0)?;
            }
            () = tokio::time::sleep(Duration::from_secs(2)) => {
                let inspected = engine.inspect(&container.id).await;
                let running = inspected
                    .as_ref()
                    .is_ok_and(|i| matches!(i.state, crate::container::State::Running | crate::container::State::Paused));
                if !running {
                    report.state = "ended".into();
                    write_report(&folder, &project, &report)?;
                    break 0;
                }
            }
        }
    };
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_limits_are_read_as_sbatch_reads_them() {
        for (text, seconds) in [
            ("30", Some(1800)),
            ("2:30", Some(150)),
            ("1:00:00", Some(3600)),
            ("2-0", Some(172_800)),
            ("1-2:3", Some(93_780)),
            ("1-0:0:5", Some(86_405)),
            ("0", None),
            ("UNLIMITED", None),
            ("infinite", None),
        ] {
            assert_eq!(time_limit(text), Ok(seconds), "{text}");
        }
        for bad in ["", "1h", "1:2:3:4", "-5", "1-", "a-1", "1-1:2:3:4", "1.5"] {
            assert_eq!(time_limit(bad), Err(()), "{bad:?}");
        }
        assert!(check_time("2").is_ok());
        assert!(check_time("0").is_ok());
        let short = check_time("1").unwrap_err();
        assert!(short.message.contains("too short"), "{}", short.message);
        assert!(check_time("1:59").is_err());
        assert!(check_time("2:00").is_ok());
        assert!(check_time("soon")
            .unwrap_err()
            .message
            .contains("not a time"));
    }

    #[test]
    fn gpus_go_to_slurm_as_a_count() {
        assert_eq!(gres(Some("2")).unwrap(), Some("gpu:2".into()));
        assert_eq!(gres(None).unwrap(), None);
        assert_eq!(gres(Some("0")).unwrap(), None);
        assert_eq!(gres(Some("all")).unwrap_err().code(), 2);
        assert_eq!(gres(Some("device=0,1")).unwrap_err().code(), 2);
    }

    #[test]
    fn sbatch_answers_are_read_and_the_script_quotes_its_words() {
        assert_eq!(job_id("123\n"), Some("123".into()));
        assert_eq!(job_id("77;cluster"), Some("77".into()));
        assert_eq!(job_id("error"), None);
        let text = script(Path::new("/opt/it's/berth"), Path::new("/s/p.args.json"));
        assert!(
            text.ends_with("exec '/opt/it'\\''s/berth' slurm-job '/s/p.args.json'\n"),
            "{text}"
        );
    }
}
