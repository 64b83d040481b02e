//! `berth shell PROJECT [-- CMD...]`: a command (by default a login-like shell) in the
//! project's running container, as the host user, in /workspace, with a terminal when
//! standard input is one; its exit status is berth's.

use std::io::IsTerminal;

use crate::cli::ShellArgs;
use crate::container::State;
use crate::context::Context;
use crate::engine::{Engine, Exec};
use crate::error::{Error, Result};
use crate::os::{self, RawMode};
use crate::plan::WORKSPACE_TARGET;
use crate::terminal;
use crate::ui::Printer;

/// bash where the image has it, else sh.
const DEFAULT_SHELL: &[&str] = &[
    "/bin/sh",
    "-c",
    "if command -v bash >/dev/null 2>&1; then exec bash -l; else exec sh -l; fi",
];

pub async fn shell(args: &ShellArgs, printer: &Printer) -> Result<i32> {
    let ctx = Context::load(&args.project, &Default::default())?;
    let engine = Engine::connect().await?;
    let mut container = engine
        .project_container(ctx.project.as_str(), ctx.user.uid)
        .await?;
    crate::paused::resume_if_abandoned(&engine, &ctx.paths.state_dir, &mut container, printer)
        .await?;
    if container.state != State::Running {
        return Err(Error::failed(format!("{} is not running", container.name))
            .hint(format!("`berth deploy {}` starts it", ctx.project)));
    }
    crate::retire::alarm::on_entry(&engine, &ctx, &container, printer).await;
    let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let cmd: Vec<String> = if args.command.is_empty() {
        DEFAULT_SHELL.iter().map(|s| s.to_string()).collect()
    } else {
        args.command.clone()
    };
    let user = match &ctx.settings.user {
        Some(user) => user.value.clone(),
        None => format!("{}:{}", ctx.user.uid, ctx.user.gid),
    };
    let exec = Exec {
        cmd,
        user: Some(user),
        workdir: Some(WORKSPACE_TARGET.to_string()),
        env: tty
            .then(|| format!("TERM={}", std::env::var("TERM").unwrap_or("xterm".into())))
            .into_iter()
            .collect(),
        tty,
        stdin: true,
    };
    let raw = if tty { RawMode::enable() } else { None };
    let (exec_id, session) = engine.exec(&container.id, &exec).await?;
    if tty {
        if let Some((rows, cols)) = os::window_size() {
            engine.resize_exec(&exec_id, rows, cols).await.ok();
        }
    }
    let mut resizes = tty.then(terminal::resizes).flatten();
    let pump = terminal::pump(session, true);
    tokio::pin!(pump);
    loop {
        tokio::select! {
            done = &mut pump => {
                if let Err(err) = done {
                    if err.kind() != std::io::ErrorKind::BrokenPipe {
                        drop(raw);
                        return Err(Error::failed(format!("the session broke: {err}")));
                    }
                }
                break;
            }
            Some(()) = async { resizes.as_mut()?.recv().await }, if resizes.is_some() => {
                if let Some((rows, cols)) = os::window_size() {
                    engine.resize_exec(&exec_id, rows, cols).await.ok();
                }
            }
        }
    }
    drop(raw);
    let code = engine.exec_exit_code(&exec_id).await?;
    Ok(i32::try_from(code).unwrap_or(1))
}
