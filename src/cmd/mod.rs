//! Subcommands: wiring only (target + probe + collect + render). What every
//! capturing subcommand shares lives here: signals, deadlines, output.

pub mod background;
pub mod causes;
pub mod check;
pub mod identity;
pub mod net;
pub mod report;
pub mod rocksdb;
pub mod symbols;
pub mod syscall;
pub mod verify;

use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use crossbeam_channel::{bounded, select, tick, Receiver};

use crate::model::{Gap, TargetEvent};
use crate::node::follow::{Follow, Restart};
use crate::node::Proc;

/// Why a capture ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The requested duration elapsed.
    Deadline,
    /// SIGINT, SIGTERM or SIGHUP.
    Signal,
    /// The traced process exited (or its PID now names another process).
    TargetExited,
    /// Standard output was closed (e.g. piped into `head`).
    OutputClosed,
}

/// A channel that receives one message per SIGINT/SIGTERM/SIGHUP. The
/// handler only sends; the main loop detaches and prints.
pub fn signals() -> Result<Receiver<()>> {
    let (tx, rx) = bounded(4);
    ctrlc::set_handler(move || {
        let _ = tx.try_send(());
    })?;
    Ok(rx)
}

/// Parses a report interval: a positive, finite number of seconds.
pub fn positive_secs(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("`{s}` is not a positive number of seconds")),
    }
}

/// Parses a capture duration: "30s", "5m", "1h30m", or a bare number of
/// seconds.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    if let Ok(secs) = s.parse::<f64>() {
        if secs.is_finite() && secs > 0.0 {
            return Ok(Duration::from_secs_f64(secs));
        }
        return Err(format!("`{s}`: the duration must be positive"));
    }
    humantime::parse_duration(s).map_err(|e| format!("`{s}`: {e} (try 30s, 5m, 1h)"))
}

/// Wall-clock time as RFC 3339 (UTC, milliseconds).
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// CLOCK_MONOTONIC in nanoseconds: the clock of bpf_ktime_get_ns().
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Converts CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns) to wall-clock time.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    offset_ns: i128,
}

impl Clock {
    pub fn new() -> Clock {
        let mono = monotonic_ns() as i128;
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        Clock {
            offset_ns: real - mono,
        }
    }

    pub fn wall(&self, mono_ns: u64) -> SystemTime {
        let ns = (mono_ns as i128 + self.offset_ns).max(0) as u64;
        UNIX_EPOCH + Duration::from_nanos(ns)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

impl Default for Out {
    fn default() -> Self {
        Out::new()
    }
}

/// Standard output that reports a closed pipe instead of panicking.
/// `print` writes and flushes at once (reports, notices); `queue` only
/// buffers, for bursts of event lines that a later `flush` (or `print`)
/// writes with one syscall instead of one per line.
pub struct Out {
    inner: std::io::Stdout,
    queued: Vec<u8>,
}

impl Out {
    pub fn new() -> Out {
        Out {
            inner: std::io::stdout(),
            queued: Vec::new(),
        }
    }

    /// Adds `text` (and a newline if missing) to the buffer.
    pub fn queue(&mut self, text: &str) {
        self.queued.extend_from_slice(text.as_bytes());
        if !text.ends_with('\n') {
            self.queued.push(b'\n');
        }
    }

    /// Writes what is queued; Err(Stop) if the reader went away.
    pub fn flush(&mut self) -> std::result::Result<(), Stop> {
        let mut lock = self.inner.lock();
        let r = lock.write_all(&self.queued).and_then(|()| lock.flush());
        self.queued.clear();
        r.map_err(|_| Stop::OutputClosed)
    }

    /// Writes `text` (a line is added if missing) after anything queued;
    /// Err(Stop) if the reader went away.
    pub fn print(&mut self, text: &str) -> std::result::Result<(), Stop> {
        self.queue(text);
        self.flush()
    }
}

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
fn follow_restart(
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

/// The target exited or came back: a `"type": "target"` JSON line, or a
/// `---` line between the tables.
pub fn print_target(out: &mut Out, e: &TargetEvent, json: bool) -> std::result::Result<(), Stop> {
    out.print(&if json {
        crate::render::json::target_event(e)
    } else {
        crate::render::target_line(e)
    })
}

/// What a capturing subcommand traces in one session: a process, or (for
/// `rocksdb --binary`) a file with no process to follow.
pub trait Traced: Sized {
    fn proc(&self) -> Option<&Proc>;
    /// The same target, now run by the restarted process `p`.
    fn restarted(p: Proc) -> Result<Self>;
}

impl Traced for Proc {
    fn proc(&self) -> Option<&Proc> {
        Some(self)
    }
    fn restarted(p: Proc) -> Result<Proc> {
        Ok(p)
    }
}

/// How a capture of one or more sessions ended.
pub struct Ended<T> {
    pub stop: Stop,
    /// What the last session traced.
    pub target: T,
    /// A session after the first failed (the first one's error is returned
    /// before anything is printed).
    failed: Option<anyhow::Error>,
}

impl<T: Traced> Ended<T> {
    /// The exit code, once the final report is printed.
    pub fn exit(self) -> Result<crate::error::Exit> {
        use crate::error::Exit;
        if let Some(e) = self.failed {
            return Err(e.context("tracing the restarted target"));
        }
        match self.stop {
            Stop::TargetExited => {
                let pid = self.target.proc().map_or(0, |p| p.pid);
                note(format!("target process {pid} exited; all probes detached"));
                Ok(Exit::Runtime)
            }
            _ => Ok(Exit::Ok),
        }
    }
}

/// The capture loop every capturing subcommand shares: `session` traces
/// `target` until the capture stops or the process exits; then, unless
/// `no_follow`, `follow_restart` waits for the node to start again and the
/// next session traces it, with the gap in `Resume`.
pub fn run_sessions<T: Traced>(
    mut target: T,
    no_follow: bool,
    sigs: &Receiver<()>,
    deadline: &Receiver<Instant>,
    out: &mut Out,
    mut session: impl FnMut(&T, &mut Out, Option<Resume>) -> Result<Stop>,
    mut print_target: impl FnMut(&mut Out, &TargetEvent) -> std::result::Result<(), Stop>,
) -> Result<Ended<T>> {
    let mut follow = target.proc().filter(|_| !no_follow).map(Follow::new);
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
        let stop = match session(&target, out, resume.take()) {
            Ok(stop) => stop,
            Err(e) if first => return Err(e),
            Err(e) => return failed(target, e),
        };
        first = false;
        let (Stop::TargetExited, Some(f), Some(old)) = (stop, follow.as_mut(), target.proc())
        else {
            return Ok(Ended {
                stop,
                target,
                failed: None,
            });
        };
        match follow_restart(f, old, sigs, deadline, |e| print_target(out, e)) {
            Err(stop) => {
                return Ok(Ended {
                    stop,
                    target,
                    failed: None,
                })
            }
            Ok((p, r)) => match T::restarted(p) {
                Ok(t) => {
                    target = t;
                    resume = Some(r);
                }
                Err(e) => return failed(target, e),
            },
        }
    }
}

/// A status line for the operator, on stderr so stdout stays data.
pub fn note(msg: impl AsRef<str>) {
    eprintln!("ckb-libbpf: {}", msg.as_ref());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn monotonic_to_wall() {
        let c = Clock::new();
        let now = monotonic_ns();
        let skew = SystemTime::now()
            .duration_since(c.wall(now))
            .unwrap_or_else(|e| e.duration());
        assert!(skew < Duration::from_secs(1));
    }
}
