//! What `berth reap` does with one container, decided from plain facts: its state, its
//! CPU samples, the workspace's `.keep-alive`, the time, and the policy's `[reap]`.
//! Pure; [`super`] gathers the facts and acts.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::config::policy::Reap;
use crate::container::State;
use crate::units::span;

/// One reading of a container's cumulative CPU time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// When it was read: milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// CPU time the container had used by then, in nanoseconds.
    pub usage_ns: u64,
}

/// The samples kept for one running container. The counter starts again at each start,
/// so samples from an earlier start are never compared with later ones.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// The engine's `State.StartedAt` of the run the samples belong to.
    pub started_at: String,
    /// Oldest first.
    pub samples: Vec<Sample>,
    /// The highest utilisation of the container's GPUs at each reading, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpu: Vec<GpuSample>,
    /// When its owner was warned of a stop (milliseconds since the Unix epoch), if a
    /// warning stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warned_ms: Option<u64>,
}

/// One reading of the GPUs a container holds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GpuSample {
    pub at_ms: u64,
    /// The highest utilisation among them, in percent.
    pub percent: f64,
}

impl History {
    /// Adds a reading and drops what no later decision needs: every sample younger than
    /// `idle_after`, and the newest one at least that old (the start of the next
    /// window). Without `idle_after`, the first and the last are kept, so that setting
    /// it later can act at once.
    pub fn observe(
        mut self,
        started_at: &str,
        now: SystemTime,
        usage_ns: u64,
        idle_after: Option<Duration>,
    ) -> Self {
        let restarted = self.started_at != started_at
            || self.samples.last().is_some_and(|s| s.usage_ns > usage_ns);
        if restarted {
            self = Self {
                started_at: started_at.to_string(),
                ..Self::default()
            };
        }
        let now_ms = millis(now);
        self.samples.retain(|s| s.at_ms <= now_ms);
        self.samples.push(Sample {
            at_ms: now_ms,
            usage_ns,
        });
        match idle_after {
            Some(window) => {
                let cutoff = now_ms.saturating_sub(millis_of(window));
                let old = self.samples.iter().filter(|s| s.at_ms <= cutoff).count();
                if old > 1 {
                    self.samples.drain(..old - 1);
                }
            }
            None => {
                let len = self.samples.len();
                if len > 2 {
                    self.samples.drain(1..len - 1);
                }
            }
        }
        self
    }

    /// Adds a reading of the container's GPUs (after [`History::observe`], which starts
    /// it afresh with a new run) and drops the readings older than the newest one at
    /// least `idle_after` old.
    pub fn observe_gpu(
        mut self,
        now: SystemTime,
        percent: f64,
        idle_after: Option<Duration>,
    ) -> Self {
        let now_ms = millis(now);
        self.gpu.retain(|s| s.at_ms <= now_ms);
        self.gpu.push(GpuSample {
            at_ms: now_ms,
            percent,
        });
        if let Some(window) = idle_after {
            let cutoff = now_ms.saturating_sub(millis_of(window));
            let old = self.gpu.iter().filter(|s| s.at_ms <= cutoff).count();
            if old > 1 {
                self.gpu.drain(..old - 1);
            }
        }
        self
    }
}

/// What berth knows of a container when it decides.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub state: State,
    /// CPU time used since the container started, in nanoseconds (running ones).
    pub usage_ns: Option<u64>,
    /// Since when it has been stopped (or created, when it never ran).
    pub stopped_since: Option<SystemTime>,
    /// The modification time of `<workspace>/.keep-alive`, where there is one.
    pub keep_alive: Option<SystemTime>,
    /// Whether its workspace is there: the notice and the rescue go into it.
    pub has_workspace: bool,
    /// Started with `--rm`: stopping it would remove it, unchecked.
    pub auto_remove: bool,
    /// For a container that holds GPUs: the highest utilisation among them now, in
    /// percent, or why it cannot be read. None for one that holds none.
    pub gpu: Option<std::result::Result<f64, String>>,
    /// Since when a running container has run.
    pub running_since: Option<SystemTime>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Running, but no sample is `idle_after` old yet: only record one.
    Record,
    /// Idle: warn, then stop it.
    Stop {
        used: Use,
        window: Duration,
    },
    /// Running for longer than `max_runtime`: warn, then stop it.
    Overtime {
        ran_for: Duration,
        max: Duration,
    },
    /// Stopped for longer than `hold_stopped`: rescue its work, then remove it.
    Retire {
        stopped_for: Duration,
    },
    Keep(Keep),
}

/// Why a container is left alone.
#[derive(Debug, Clone, PartialEq)]
pub enum Keep {
    /// Its `.keep-alive` is younger than `keep_alive_max`.
    KeepAlive {
        age: Duration,
        max: Duration,
    },
    Busy {
        used: Use,
        window: Duration,
    },
    Paused,
    /// Restarting or being removed.
    Changing,
    StoppedRecently {
        stopped_for: Duration,
        hold: Duration,
    },
    /// When it stopped is unknown.
    StoppedUnknown,
    /// No `[reap] idle_after`: running containers are never stopped.
    NoIdleAfter,
    /// No `[reap] hold_stopped`: stopped containers are never retired.
    NoHoldStopped,
    /// Idle or long stopped, but without a workspace for the notice and the rescue.
    NoWorkspace,
    /// Idle, but started with `--rm`: stopping it would remove it with its work.
    AutoRemove {
        used: Use,
        window: Duration,
    },
    /// It holds GPUs, and what they do cannot be read: not idle by GPU.
    GpuUnknown(String),
}

/// What the warning rule makes of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warning {
    /// No warning is asked for, or none stands and none is due: as decided.
    AsDecided,
    /// A stop is due and no warning stands: warn now, stop nothing.
    Warn,
    /// The warning stands, but not yet for `warn_before`: wait this much longer.
    Wait(Duration),
    /// The warning has stood long enough: stop.
    Stop,
    /// A warning stands, but the container is no longer due to stop: withdraw it.
    Cancel,
}

/// The warning rule (`[reap] warn_before`): a stop comes only after a warning has stood
/// for `warn_before`, and a container that is no longer due to stop meanwhile has its
/// warning withdrawn.
pub fn warning(
    decision: &Decision,
    warned_ms: Option<u64>,
    now: SystemTime,
    warn_before: Option<Duration>,
) -> Warning {
    let due = matches!(decision, Decision::Stop { .. } | Decision::Overtime { .. });
    match (due, warned_ms, warn_before) {
        (_, _, None) => Warning::AsDecided,
        (true, None, Some(_)) => Warning::Warn,
        (true, Some(at), Some(before)) => {
            let stood = Duration::from_millis(millis(now).saturating_sub(at));
            match stood >= before {
                true => Warning::Stop,
                false => Warning::Wait(before - stood),
            }
        }
        (false, Some(_), Some(_)) => Warning::Cancel,
        (false, None, Some(_)) => Warning::AsDecided,
    }
}

/// What a container used over a window: the mean percentage of one CPU, or, for one
/// that holds GPUs, the highest utilisation any of them showed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Use {
    Cpu(f64),
    Gpu(f64),
}

impl fmt::Display for Use {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Use::Cpu(percent) => write!(f, "{percent:.2}% of one CPU"),
            Use::Gpu(percent) => write!(f, "at most {percent:.0}% on any of its GPUs"),
        }
    }
}

/// The decision for one container at `now`. `history` holds the samples of its current
/// run, as [`History::observe`] left them.
pub fn decide(facts: &Facts, history: &History, now: SystemTime, reap: &Reap) -> Decision {
    match facts.state {
        State::Busy => return Decision::Keep(Keep::Changing),
        State::Paused => return Decision::Keep(Keep::Paused),
        State::Running | State::Stopped => {}
    }
    if let (State::Running, Some(since), Some(max)) = (
        facts.state,
        facts.running_since,
        reap.max_runtime.map(|s| s.0),
    ) {
        let ran_for = now.duration_since(since).unwrap_or(Duration::ZERO);
        if ran_for >= max && facts.has_workspace && !facts.auto_remove {
            return Decision::Overtime { ran_for, max };
        }
    }
    if let Some(touched) = facts.keep_alive {
        let age = now.duration_since(touched).unwrap_or(Duration::ZERO);
        let max = reap.keep_alive_max.0;
        if age < max {
            return Decision::Keep(Keep::KeepAlive { age, max });
        }
    }
    if facts.state == State::Stopped {
        let Some(hold) = reap.hold_stopped.map(|s| s.0) else {
            return Decision::Keep(Keep::NoHoldStopped);
        };
        let Some(since) = facts.stopped_since else {
            return Decision::Keep(Keep::StoppedUnknown);
        };
        let stopped_for = now.duration_since(since).unwrap_or(Duration::ZERO);
        return if stopped_for < hold {
            Decision::Keep(Keep::StoppedRecently { stopped_for, hold })
        } else if !facts.has_workspace {
            Decision::Keep(Keep::NoWorkspace)
        } else {
            Decision::Retire { stopped_for }
        };
    }
    let Some(idle_after) = reap.idle_after.map(|s| s.0) else {
        return Decision::Keep(Keep::NoIdleAfter);
    };
    let now_ms = millis(now);
    let cutoff = now_ms.saturating_sub(millis_of(idle_after));
    let (used, window) = match &facts.gpu {
        // GPUs judge a container that holds them, whatever its CPU does.
        Some(Err(why)) => return Decision::Keep(Keep::GpuUnknown(why.clone())),
        Some(Ok(_)) => {
            let Some(start) = history.gpu.iter().rposition(|s| s.at_ms <= cutoff) else {
                return Decision::Record;
            };
            let since = &history.gpu[start..];
            let highest = since.iter().map(|s| s.percent).fold(0.0, f64::max);
            let window = Duration::from_millis(now_ms.saturating_sub(since[0].at_ms));
            if highest >= reap.idle_gpu {
                return Decision::Keep(Keep::Busy {
                    used: Use::Gpu(highest),
                    window,
                });
            }
            (Use::Gpu(highest), window)
        }
        None => {
            let Some(usage_ns) = facts.usage_ns else {
                return Decision::Record;
            };
            let start = history
                .samples
                .iter()
                .rev()
                .find(|s| s.at_ms <= cutoff && s.at_ms < now_ms && s.usage_ns <= usage_ns);
            let Some(start) = start else {
                return Decision::Record;
            };
            let window = Duration::from_millis(now_ms - start.at_ms);
            let used = (usage_ns - start.usage_ns) as f64;
            let cpu_percent = used / window.as_nanos() as f64 * 100.0;
            if cpu_percent >= reap.idle_cpu {
                return Decision::Keep(Keep::Busy {
                    used: Use::Cpu(cpu_percent),
                    window,
                });
            }
            (Use::Cpu(cpu_percent), window)
        }
    };
    if facts.auto_remove {
        Decision::Keep(Keep::AutoRemove { used, window })
    } else if !facts.has_workspace {
        Decision::Keep(Keep::NoWorkspace)
    } else {
        Decision::Stop { used, window }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Record => {
                f.write_str("too early to tell: no CPU sample is [reap] idle_after old yet")
            }
            Decision::Stop { used, window } => {
                write!(f, "idle: {used} over the last {}", span(*window))
            }
            Decision::Overtime { ran_for, max } => write!(
                f,
                "running for {}, past [reap] max_runtime {}",
                span(*ran_for),
                span(*max)
            ),
            Decision::Retire { stopped_for } => write!(f, "stopped for {}", span(*stopped_for)),
            Decision::Keep(keep) => keep.fmt(f),
        }
    }
}

impl fmt::Display for Keep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Keep::KeepAlive { age, max } => write!(
                f,
                "its .keep-alive was touched {} ago (honoured for {})",
                span(*age),
                span(*max)
            ),
            Keep::Busy { used, window } => {
                write!(f, "busy: {used} over the last {}", span(*window))
            }
            Keep::Paused => f.write_str("paused"),
            Keep::Changing => f.write_str("restarting or being removed"),
            Keep::StoppedRecently { stopped_for, hold } => write!(
                f,
                "stopped for {}, retired after {}",
                span(*stopped_for),
                span(*hold)
            ),
            Keep::StoppedUnknown => f.write_str("stopped, since when the engine does not say"),
            Keep::NoIdleAfter => f.write_str("running; the policy sets no [reap] idle_after"),
            Keep::NoHoldStopped => f.write_str("stopped; the policy sets no [reap] hold_stopped"),
            Keep::NoWorkspace => {
                f.write_str("its workspace is missing: nowhere to leave a notice or rescue work")
            }
            Keep::AutoRemove { used, window } => write!(
                f,
                "idle ({used} over {}), but started with --rm: \
                 stopping it would remove it unchecked",
                span(*window)
            ),
            Keep::GpuUnknown(why) => write!(f, "not idle by GPU: {why}"),
        }
    }
}

/// `at` in milliseconds since the Unix epoch.
pub fn millis(at: SystemTime) -> u64 {
    millis_of(at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO))
}

fn millis_of(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::policy::Span;

    const MIN: Duration = Duration::from_secs(60);
    const SEC_NS: u64 = 1_000_000_000;

    fn t(minutes: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000) + MIN * minutes as u32
    }

    fn policy(idle_after: Option<u64>, hold_stopped: Option<u64>) -> Reap {
        Reap {
            idle_after: idle_after.map(|m| Span(MIN * m as u32)),
            hold_stopped: hold_stopped.map(|m| Span(MIN * m as u32)),
            ..Reap::default()
        }
    }

    fn running(usage_ns: u64) -> Facts {
        Facts {
            state: State::Running,
            usage_ns: Some(usage_ns),
            stopped_since: None,
            keep_alive: None,
            has_workspace: true,
            auto_remove: false,
            gpu: None,
            running_since: None,
        }
    }

    fn stopped(at: SystemTime) -> Facts {
        Facts {
            state: State::Stopped,
            usage_ns: None,
            stopped_since: Some(at),
            ..running(0)
        }
    }

    /// Samples at `(minute, usage in seconds)`, observed in order with `idle_after`.
    fn history(samples: &[(u64, u64)], idle_after: Option<u64>) -> History {
        samples.iter().fold(History::default(), |h, &(m, s)| {
            h.observe("run1", t(m), s * SEC_NS, idle_after.map(|i| MIN * i as u32))
        })
    }

    /// A running container that holds GPUs, its CPU busy, with GPU readings at
    /// (minute, percent), taken with `idle_after` of 30 minutes.
    fn on_gpus(readings: &[(u64, f64)], now: f64) -> (Facts, History) {
        let mut history = History::default();
        for &(minute, percent) in readings {
            history = history.observe_gpu(t(minute), percent, Some(MIN * 30));
        }
        let mut facts = running(3600 * SEC_NS);
        facts.gpu = Some(Ok(now));
        (facts, history)
    }

    #[test]
    fn a_stop_comes_only_after_its_warning_has_stood_for_warn_before() {
        let stop = Decision::Stop {
            used: Use::Cpu(0.0),
            window: MIN * 40,
        };
        let keep = Decision::Keep(Keep::NoIdleAfter);
        let before = Some(MIN * 30);
        assert_eq!(warning(&stop, None, t(40), None), Warning::AsDecided);
        assert_eq!(warning(&stop, None, t(40), before), Warning::Warn);
        let warned = Some(millis(t(40)));
        assert_eq!(
            warning(&stop, warned, t(50), before),
            Warning::Wait(MIN * 20)
        );
        assert_eq!(warning(&stop, warned, t(70), before), Warning::Stop);
        // Busy or kept alive in between: the warning is withdrawn.
        assert_eq!(warning(&keep, warned, t(50), before), Warning::Cancel);
        assert_eq!(warning(&keep, None, t(50), before), Warning::AsDecided);
    }

    #[test]
    fn a_container_past_max_runtime_is_stopped_busy_or_kept_alive() {
        let mut reap = policy(Some(30), None);
        reap.max_runtime = Some(Span(MIN * 60));
        let mut facts = running(3600 * SEC_NS);
        facts.keep_alive = Some(t(100));
        facts.running_since = Some(t(0));
        let h = history(&[(0, 0)], Some(30));
        match decide(&facts, &h, t(61), &reap) {
            Decision::Overtime { ran_for, max } => assert_eq!((ran_for, max), (MIN * 61, MIN * 60)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            decide(&facts, &h, t(59), &reap),
            Decision::Keep(Keep::KeepAlive { .. })
        ));
        facts.auto_remove = true;
        assert!(!matches!(
            decide(&facts, &h, t(61), &reap),
            Decision::Overtime { .. }
        ));
    }

    #[test]
    fn a_container_that_holds_gpus_is_judged_by_them_not_by_its_cpu() {
        let reap = policy(Some(30), None);
        // Its CPU spins all the while; its GPUs have idled for 40 minutes.
        let (facts, h) = on_gpus(&[(0, 2.0), (20, 4.0), (40, 1.0)], 1.0);
        match decide(&facts, &h, t(40), &reap) {
            Decision::Stop {
                used: Use::Gpu(highest),
                window,
            } => assert_eq!((highest, window), (4.0, MIN * 40)),
            other => panic!("{other:?}"),
        }
        // One reading at the threshold in the window keeps it.
        let (facts, h) = on_gpus(&[(0, 2.0), (20, 5.0), (40, 1.0)], 1.0);
        let busy = decide(&facts, &h, t(40), &reap);
        assert!(matches!(busy, Decision::Keep(Keep::Busy { used: Use::Gpu(p), .. }) if p == 5.0));
        // Readings, but none idle_after old yet.
        let (facts, h) = on_gpus(&[(20, 0.0), (40, 0.0)], 0.0);
        assert_eq!(decide(&facts, &h, t(40), &reap), Decision::Record);
        // An idle CPU does not make GPUs idle that cannot be read.
        let mut facts = running(0);
        facts.gpu = Some(Err("cannot run nvidia-smi".into()));
        let kept = decide(&facts, &history(&[(0, 0)], Some(30)), t(40), &reap);
        assert_eq!(
            kept,
            Decision::Keep(Keep::GpuUnknown("cannot run nvidia-smi".into()))
        );
        assert_eq!(kept.to_string(), "not idle by GPU: cannot run nvidia-smi");
    }

    #[test]
    fn a_first_run_only_records() {
        let reap = policy(Some(30), Some(60));
        let h = history(&[(0, 5)], Some(30));
        assert_eq!(
            decide(&running(5 * SEC_NS), &h, t(0), &reap),
            Decision::Record
        );
        // Samples, but none old enough.
        let h = history(&[(0, 5), (20, 5)], Some(30));
        assert_eq!(
            decide(&running(5 * SEC_NS), &h, t(20), &reap),
            Decision::Record
        );
    }

    #[test]
    fn negligible_use_since_an_old_enough_sample_is_idle() {
        let reap = policy(Some(30), None);
        // 0.1 s of CPU in 40 minutes.
        let h = history(&[(0, 100)], Some(30));
        let facts = running(100 * SEC_NS + SEC_NS / 10);
        let h = h.observe("run1", t(40), facts.usage_ns.unwrap(), Some(MIN * 30));
        match decide(&facts, &h, t(40), &reap) {
            Decision::Stop {
                used: Use::Cpu(cpu_percent),
                window,
            } => {
                assert_eq!(window, MIN * 40);
                assert!(cpu_percent < 0.01, "{cpu_percent}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn real_use_is_busy_and_the_threshold_is_the_policys() {
        // 30 s of CPU in 30 minutes: 1.67% of one CPU.
        let h = history(&[(0, 0), (30, 30)], Some(30));
        let facts = running(30 * SEC_NS);
        let keep = decide(&facts, &h, t(30), &policy(Some(30), None));
        assert!(
            matches!(keep, Decision::Keep(Keep::Busy { .. })),
            "{keep:?}"
        );
        let lax = Reap {
            idle_cpu: 2.0,
            ..policy(Some(30), None)
        };
        assert!(matches!(
            decide(&facts, &h, t(30), &lax),
            Decision::Stop { .. }
        ));
    }

    #[test]
    fn the_window_starts_at_the_newest_old_enough_sample() {
        // Busy for the first hour, idle since: the last 30 minutes decide.
        let h = history(&[(0, 0), (10, 600), (50, 3000), (85, 3000)], Some(30));
        assert_eq!(h.samples.len(), 2, "{h:?}");
        assert_eq!(h.samples[0].at_ms, millis(t(50)));
        assert!(matches!(
            decide(&running(3000 * SEC_NS), &h, t(85), &policy(Some(30), None)),
            Decision::Stop { window, .. } if window == MIN * 35
        ));
    }

    #[test]
    fn a_restart_starts_the_samples_again() {
        let h = history(&[(0, 100)], Some(30));
        let h = h.observe("run2", t(40), SEC_NS, Some(MIN * 30));
        assert_eq!(h.samples.len(), 1);
        assert_eq!(h.started_at, "run2");
        assert_eq!(
            decide(&running(SEC_NS), &h, t(40), &policy(Some(30), None)),
            Decision::Record
        );
        // A counter that went down is a restart too.
        let h = history(&[(0, 100), (40, 1)], Some(30));
        assert_eq!(h.samples.len(), 1);
    }

    #[test]
    fn without_idle_after_the_first_and_last_samples_are_kept() {
        let h = history(&[(0, 1), (10, 2), (20, 3), (30, 4)], None);
        let at: Vec<u64> = h.samples.iter().map(|s| s.usage_ns / SEC_NS).collect();
        assert_eq!(at, [1, 4]);
        assert_eq!(
            decide(&running(4 * SEC_NS), &h, t(30), &policy(None, Some(1))),
            Decision::Keep(Keep::NoIdleAfter)
        );
    }

    #[test]
    fn a_fresh_keep_alive_exempts_running_and_stopped_containers() {
        let reap = policy(Some(30), Some(60));
        let h = history(&[(0, 0)], Some(30));
        let fresh = Facts {
            keep_alive: Some(t(100)),
            ..running(0)
        };
        assert!(matches!(
            decide(&fresh, &h, t(120), &reap),
            Decision::Keep(Keep::KeepAlive { .. })
        ));
        let stopped_fresh = Facts {
            keep_alive: Some(t(100)),
            ..stopped(t(0))
        };
        assert!(matches!(
            decide(&stopped_fresh, &h, t(120), &reap),
            Decision::Keep(Keep::KeepAlive { .. })
        ));
        // Older than keep_alive_max (24 h): no longer honoured.
        let stale = Facts {
            keep_alive: Some(t(0)),
            ..running(0)
        };
        assert!(matches!(
            decide(&stale, &h, t(25 * 60), &reap),
            Decision::Stop { .. }
        ));
    }

    #[test]
    fn long_stopped_containers_are_retired() {
        let reap = policy(None, Some(60));
        let h = History::default();
        assert_eq!(
            decide(&stopped(t(0)), &h, t(61), &reap),
            Decision::Retire {
                stopped_for: MIN * 61
            }
        );
        assert!(matches!(
            decide(&stopped(t(0)), &h, t(59), &reap),
            Decision::Keep(Keep::StoppedRecently { .. })
        ));
        assert_eq!(
            decide(&stopped(t(0)), &h, t(61), &policy(Some(1), None)),
            Decision::Keep(Keep::NoHoldStopped)
        );
        let unknown = Facts {
            stopped_since: None,
            ..stopped(t(0))
        };
        assert_eq!(
            decide(&unknown, &h, t(61), &reap),
            Decision::Keep(Keep::StoppedUnknown)
        );
    }

    #[test]
    fn nothing_is_stopped_or_retired_without_a_workspace_or_with_rm() {
        let reap = policy(Some(30), Some(60));
        let h = history(&[(0, 0)], Some(30));
        let lost = Facts {
            has_workspace: false,
            ..running(0)
        };
        assert_eq!(
            decide(&lost, &h, t(40), &reap),
            Decision::Keep(Keep::NoWorkspace)
        );
        let lost = Facts {
            has_workspace: false,
            ..stopped(t(0))
        };
        assert_eq!(
            decide(&lost, &h, t(90), &reap),
            Decision::Keep(Keep::NoWorkspace)
        );
        let rm = Facts {
            auto_remove: true,
            ..running(0)
        };
        assert!(matches!(
            decide(&rm, &h, t(40), &reap),
            Decision::Keep(Keep::AutoRemove { .. })
        ));
    }

    #[test]
    fn paused_and_changing_containers_are_left_alone() {
        let reap = policy(Some(0), Some(0));
        let h = History::default();
        for (state, keep) in [(State::Paused, Keep::Paused), (State::Busy, Keep::Changing)] {
            let facts = Facts {
                state,
                ..running(0)
            };
            assert_eq!(decide(&facts, &h, t(0), &reap), Decision::Keep(keep));
        }
    }

    #[test]
    fn spans_read_as_people_write_them() {
        assert_eq!(span(Duration::from_secs(5400)), "1h30m");
        assert_eq!(span(Duration::from_secs(90_061)), "1d1h1m1s");
        assert_eq!(span(Duration::from_millis(250)), "250ms");
    }
}
