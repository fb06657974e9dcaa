//! Following the node: the capture loop over sessions (one per traced
//! process), waiting for a restarted node, and the gap between them.

use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;
use crossbeam_channel::{select, tick, Receiver};

use super::Stop;
use crate::clock::rfc3339;
use crate::error::note;
use crate::model::{Gap, TargetEvent};
use crate::node::follow::{Follow, Restart};
use crate::node::{Proc, Target};

/// How waiting for a restarted target ended.
pub enum Waited {
    Restarted(Restart),
    Stopped(Stop),
}

/// Polls /proc (every 200 ms: a few hundred readlinks) until the followed
/// node runs again, or a signal or the deadline ends the capture.
pub fn wait_for_restart(
    follow: &Follow,
    sigs: &Receiver<()>,
    deadline: &Receiver<std::time::Instant>,
) -> Waited {
    let poll = tick(Duration::from_millis(200));
    loop {
        select! {
            recv(sigs) -> _ => return Waited::Stopped(Stop::Signal),
            recv(deadline) -> _ => return Waited::Stopped(Stop::Deadline),
            recv(poll) -> _ => {
                if let Some(r) = follow.find() {
                    follow.wait_for_libs(&r.proc, Duration::from_secs(2));
                    return Waited::Restarted(r);
                }
            }
        }
    }
}

/// A restart being followed: the gap so far, and when the exit was seen.
pub struct Resume {
    gap: Gap,
    since: Instant,
}

impl Resume {
    /// The restarted process is traced again: the gap ends now. Says so on
    /// stderr; the caller prints `TargetEvent::Restarted` and reports it.
    pub fn end(self) -> Gap {
        let mut gap = self.gap;
        gap.resumed_at = rfc3339(SystemTime::now());
        gap.secs = self.since.elapsed().as_secs_f64();
        note(crate::render::gap_line(&gap));
        gap
    }
}

/// The traced process `old` exited and every probe is detached: says so (a
/// note, and `TargetEvent::Exited` through `print`), then waits for the node
/// to start again. Returns the new process and the open gap, or why the
/// capture stopped meanwhile. Every capturing subcommand follows restarts
/// through this one function.
pub(super) fn follow_restart(
    follow: &mut Follow,
    old: &Proc,
    sigs: &Receiver<()>,
    deadline: &Receiver<Instant>,
    mut print: impl FnMut(&TargetEvent) -> std::result::Result<(), Stop>,
) -> std::result::Result<(Proc, Resume), Stop> {
    let exited_at = rfc3339(SystemTime::now());
    note(format!(
        "target process {} exited; all probes detached; waiting for {} to start again (--no-follow exits instead)",
        old.pid,
        follow.exe().display()
    ));
    print(&TargetEvent::Exited {
        pid: old.pid,
        exe: follow.exe().display().to_string(),
        time: exited_at.clone(),
    })?;
    let since = Instant::now();
    match wait_for_restart(follow, sigs, deadline) {
        Waited::Stopped(stop) => Err(stop),
        Waited::Restarted(r) => {
            follow.adopt(&r);
            let gap = Gap {
                old_pid: old.pid,
                new_pid: r.proc.pid,
                exited_at,
                upgraded: r.upgraded,
                old_build_id: r.old_build_id,
                new_build_id: r.new_build_id,
                ..Gap::default()
            };
            Ok((r.proc, Resume { gap, since }))
        }
    }
}

/// How a capture of one or more sessions ended.
pub struct Ended {
    pub stop: Stop,
    /// What the last session traced.
    pub target: Target,
    /// A session after the first failed (the first one's error is returned
    /// before anything is printed).
    failed: Option<anyhow::Error>,
}

impl Ended {
    /// The exit code, once the final report is printed.
    pub fn exit(self) -> Result<crate::error::Exit> {
        use crate::error::Exit;
        if let Some(e) = self.failed {
            return Err(e.context("tracing the restarted target"));
        }
        match self.stop {
            Stop::TargetExited => {
                let pid = self.target.proc.as_ref().map_or(0, |p| p.pid);
                note(format!("target process {pid} exited; all probes detached"));
                Ok(Exit::Runtime)
            }
            _ => Ok(Exit::Ok),
        }
    }
}

/// What `run_sessions` drives: one session per traced process, and the
/// view's target events between them.
pub trait Sessions {
    /// Traces `target` until the capture stops or the process exits.
    fn session(&mut self, target: &Target, resume: Option<Resume>) -> Result<Stop>;
    /// The target exited or came back.
    fn target(&mut self, e: &TargetEvent) -> std::result::Result<(), Stop>;
}

/// The capture loop every capture shares: `session` traces
/// `target` until the capture stops or the process exits; then, unless
/// `no_follow`, `follow_restart` waits for the node to start again and the
/// next session traces it, with the gap in `Resume`.
pub fn run_sessions(
    mut target: Target,
    no_follow: bool,
    sigs: &Receiver<()>,
    deadline: &Receiver<Instant>,
    s: &mut dyn Sessions,
) -> Result<Ended> {
    let mut follow = target.proc.as_ref().filter(|_| !no_follow).map(Follow::new);
    let mut resume = None;
    let mut first = true;
    loop {
        let failed = |target, e| {
            Ok(Ended {
                stop: Stop::TargetExited,
                target,
                failed: Some(e),
            })
        };
        let stop = match s.session(&target, resume.take()) {
            Ok(stop) => stop,
            Err(e) if first => return Err(e),
            Err(e) => return failed(target, e),
        };
        first = false;
        let (Stop::TargetExited, Some(f), Some(old)) =
            (stop, follow.as_mut(), target.proc.as_ref())
        else {
            return Ok(Ended {
                stop,
                target,
                failed: None,
            });
        };
        match follow_restart(f, old, sigs, deadline, |e| s.target(e)) {
            Err(stop) => {
                return Ok(Ended {
                    stop,
                    target,
                    failed: None,
                })
            }
            Ok((p, r)) => {
                // A restarted node may run another file (an upgrade).
                target = Target::of(p);
                resume = Some(r);
            }
        }
    }
}
