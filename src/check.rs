//! `berth check PROJECT`: what a deploy would do or refuse, without doing it; and the
//! plan's two renderings, for people and as JSON, which `deploy --dry-run` shows too.

use serde::Serialize;

use crate::cli::CheckArgs;
use crate::config::{Source, Sourced};
use crate::container::State;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::gpu;
use crate::guard::{self, data::Row, workspace::Workspace};
use crate::launch::{self, Prepared};
use crate::plan::{LaunchPlan, Mount};
use crate::retire;
use crate::ui::Printer;
use crate::units::{format_cpus, format_size};

/// `berth check PROJECT`.
pub async fn check(args: &CheckArgs, printer: &Printer) -> Result<()> {
    let verdict = async {
        // The engine is asked too, so that check answers as deploy would.
        let engine = Engine::connect().await?;
        let mut prepared = launch::prepare(&args.project, None, Some(&engine), printer).await?;
        prepared.check_group(&engine).await?;
        let existing = match prepared.learned.container.take() {
            Some(known) => known,
            None => {
                engine
                    .find(prepared.ctx.project.as_str(), prepared.ctx.user.uid)
                    .await?
            }
        };
        let mut gpus = None;
        let mut hidden = Vec::new();
        if existing.is_none() {
            let image_id = match prepared.learned.image_id.take() {
                Some(id) => Some(id),
                None => engine.image_id(&prepared.plan.image).await?,
            };
            if let Some(image_id) = image_id {
                hidden = prepared.hidden(&engine, &image_id).await?;
            }
            prepared
                .check_with_engine(&engine, &prepared.plan.to_spec())
                .await?;
            if let Some(request) = prepared
                .plan
                .to_spec()
                .host
                .gpus
                .as_ref()
                .and_then(gpu::Request::from_spec)
            {
                let ctx = &prepared.ctx;
                gpus =
                    gpu::claim::preview(&engine, ctx.policy.as_ref(), &ctx.user, &request).await?;
            }
        }
        // What retire would ask about, read without pausing it.
        let existing = match existing {
            Some(container) => {
                prepared.check_own(&container)?;
                let target = retire::Target::new(&prepared.ctx, &container);
                let report = retire::unsaved(&engine, &container, &target, printer).await?;
                Some(Existing {
                    name: container.name,
                    state: container.state,
                    unsaved_files: report.unsaved_files(),
                    unsaved_volumes: report.volumes.len(),
                    read_by: report.read_by,
                    packages: report.packages,
                })
            }
            None => None,
        };
        Ok::<_, Error>((prepared, existing, gpus, hidden))
    }
    .await;
    let (prepared, existing, gpus, hidden) = match verdict {
        Ok(ready) => ready,
        Err(err) if args.json && err.code() == 3 => {
            printer.json(&serde_json::json!({
                "project": args.project,
                "verdict": "refused",
                "refusal": { "message": err.message, "details": err.details, "hint": err.hint },
            }));
            return Err(err);
        }
        Err(err) => return Err(err),
    };
    if args.json {
        printer.json(&report(&prepared, existing.as_ref(), &hidden));
    } else {
        print_plan(&prepared, printer);
        for mount in &hidden {
            printer.line(&format!(
                "hidden       {}",
                mount.warning(&prepared.plan.image)
            ));
        }
        if let Some(gpus) = gpus.filter(|_| existing.is_none()) {
            printer.line(&format!(
                "gpus free    {} (deploy would take them)",
                gpus.join(",")
            ));
        }
        if let Some(container) = existing {
            printer.line(&format!(
                "container    {} exists ({:?}); deploy would start it, not create it",
                container.name, container.state
            ));
            printer.line(&format!(
                "unsaved      {}",
                container.unsaved(&args.project)
            ));
            if !container.packages.is_empty() {
                printer.line(&format!(
                    "packages     {}; `berth retire {} --save-packages` keeps them for \
                     the next deploy",
                    container.packages_named(),
                    args.project
                ));
            }
        }
        printer.line(&format!(
            "verdict      {}",
            printer.green("ok: deploy would proceed")
        ));
    }
    Ok(())
}

/// The project's existing container, as `check` reports it.
#[derive(Serialize)]
pub(crate) struct Existing {
    name: String,
    state: State,
    /// Unsaved files in its writable layer, as retire would count them.
    unsaved_files: usize,
    /// Anonymous volumes that hold data.
    unsaved_volumes: usize,
    /// Who listed its changes: berth's walk of the layer, or the engine.
    read_by: crate::layer::ReadBy,
    /// The packages its layer installed, as retire names them.
    packages: Vec<retire::classify::Package>,
}

impl Existing {
    /// `pip: six==1.16.0, requests==2.31.0; apt: htop=3.2.2-2`.
    fn packages_named(&self) -> String {
        let mut by_manager: Vec<(&str, Vec<String>)> = Vec::new();
        for package in &self.packages {
            match by_manager.iter_mut().find(|(m, _)| *m == package.manager) {
                Some((_, names)) => names.push(package.requirement()),
                None => by_manager.push((package.manager, vec![package.requirement()])),
            }
        }
        by_manager
            .into_iter()
            .map(|(manager, names)| format!("{manager}: {}", names.join(", ")))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn unsaved(&self, project: &str) -> String {
        if self.unsaved_files == 0 && self.unsaved_volumes == 0 {
            return format!(
                "none: retire would remove it without asking ({})",
                self.read_by.describe()
            );
        }
        let mut parts = vec![format!("{} file(s)", self.unsaved_files)];
        if self.unsaved_volumes > 0 {
            parts.push(format!(
                "{} anonymous volume(s) holding data",
                self.unsaved_volumes
            ));
        }
        format!(
            "{}; `berth retire {project} --dry-run` shows them ({})",
            parts.join(", "),
            self.read_by.describe()
        )
    }
}

#[derive(Serialize)]
pub(crate) struct Report<'a> {
    project: &'a str,
    workspace: &'a std::path::Path,
    workspace_state: Workspace,
    data_root: &'a [Row],
    sources: Sources<'a>,
    plan: &'a LaunchPlan,
    docker_run: String,
    /// The project's container, where it exists (`check` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    container: Option<&'a Existing>,
    /// What a new container's mounts would hide of its image (`check` only).
    #[serde(skip_serializing_if = "<[launch::Hidden]>::is_empty")]
    hidden: &'a [launch::Hidden],
    verdict: &'static str,
}

/// Where each chosen value came from.
#[derive(Serialize)]
struct Sources<'a> {
    image: Option<&'a Source>,
    command: Option<&'a Source>,
    user: Option<&'a Source>,
    gpus: Option<&'a Source>,
    cpus: Option<&'a Source>,
    memory: Option<&'a Source>,
    shm_size: Option<&'a Source>,
    data_target: &'a Source,
}

fn source<T>(value: &Option<Sourced<T>>) -> Option<&Source> {
    value.as_ref().map(|v| &v.source)
}

pub(crate) fn report<'a>(
    prepared: &'a Prepared,
    existing: Option<&'a Existing>,
    hidden: &'a [launch::Hidden],
) -> Report<'a> {
    let s = &prepared.ctx.settings;
    Report {
        project: prepared.ctx.project.as_str(),
        workspace: &prepared.ctx.workspace,
        workspace_state: prepared.workspace,
        data_root: &prepared.data_rows,
        sources: Sources {
            image: source(&s.image),
            command: source(&s.command),
            user: source(&s.user),
            gpus: source(&s.gpus),
            cpus: source(&s.nano_cpus),
            memory: source(&s.memory),
            shm_size: source(&s.shm_size),
            data_target: &s.data_target.source,
        },
        plan: &prepared.plan,
        docker_run: prepared.plan.docker_run_line(),
        container: existing,
        hidden,
        verdict: "ok",
    }
}

/// The plan as people read it: each value with where it came from.
pub(crate) fn print_plan(prepared: &Prepared, printer: &Printer) {
    let (ctx, plan, s) = (&prepared.ctx, &prepared.plan, &prepared.ctx.settings);
    let from = |source: Option<&Source>, default: &str| match source {
        Some(source) => format!("({source})"),
        None => format!("({default})"),
    };
    let workspace_note = match prepared.workspace {
        Workspace::Existing => "existing",
        Workspace::New => "new: deploy creates it",
    };
    let mut rows: Vec<Vec<String>> = vec![
        vec!["project".into(), plan.project.clone(), String::new()],
        vec![
            "workspace".into(),
            ctx.workspace.display().to_string(),
            format!("({workspace_note})"),
        ],
        vec![
            "container".into(),
            plan.container_name.clone(),
            String::new(),
        ],
        vec![
            "image".into(),
            plan.image.clone(),
            from(source(&s.image), "default"),
        ],
        vec![
            "command".into(),
            plan.cmd.join(" "),
            from(source(&s.command), "default: keep alive for `shell`"),
        ],
        vec![
            "user".into(),
            plan.user.clone(),
            from(source(&s.user), "the host user"),
        ],
        vec!["home".into(), plan.home.clone(), "(persistent)".into()],
    ];
    for mount in &plan.mounts {
        let text = match mount {
            Mount::Bind { source, target, .. } => format!("{target} <- {}", source.display()),
            Mount::Volume(spec) => format!("{} <- -v {}", spec.target, spec.to_arg()),
            Mount::Persist { volume, target } => {
                format!("{target} <- volume {volume} (persisted)")
            }
        };
        rows.push(vec!["mount".into(), text, String::new()]);
    }
    for (key, value) in &plan.env {
        rows.push(vec!["env".into(), format!("{key}={value}"), String::new()]);
    }
    if let Some(gpus) = &plan.gpus {
        rows.push(vec![
            "gpus".into(),
            gpus.to_string(),
            from(source(&s.gpus), ""),
        ]);
    }
    if let Some(nano) = plan.nano_cpus {
        rows.push(vec![
            "cpus".into(),
            format_cpus(nano),
            from(source(&s.nano_cpus), ""),
        ]);
    }
    if let Some(bytes) = plan.memory {
        rows.push(vec![
            "memory".into(),
            format_size(bytes),
            from(source(&s.memory), ""),
        ]);
    }
    if let Some(bytes) = plan.shm_size {
        rows.push(vec![
            "shm size".into(),
            format_size(bytes),
            from(source(&s.shm_size), ""),
        ]);
    }
    for line in crate::ui::table(&rows) {
        printer.line(line.trim_end());
    }
    if !prepared.data_rows.is_empty() {
        printer.line(&printer.bold("data root sources"));
        for line in guard::data::table(&prepared.data_rows) {
            printer.line(&format!("  {line}"));
        }
    }
    printer.line(&printer.bold("equivalent docker run"));
    printer.line(&format!("  {}", plan.docker_run_line()));
}
