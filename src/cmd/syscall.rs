//! `ckb-libbpf syscall`: the syscall profile of a live node, split by
//! thread role (compaction, flush, chain, verify, runtime...), aggregated in
//! the kernel. Follows the node across restarts like `rocksdb` (see
//! `super::follow_restart`).

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;
use clap::Args;
use crossbeam_channel::{after, never, select, Receiver};

use super::{note, rfc3339, run_sessions, signals, Out, Resume, Stop};
use crate::collect::Poller;
use crate::error::Exit;
use crate::model::syscall::{build, CallStats, Span, SyscallReport};
use crate::model::{Drops, Gap, Gaps, TargetEvent};
use crate::probe::syscall::{self as sc, Backend, Sample};
use crate::render::syscall as view;
use crate::node::{self, Proc};

#[derive(Args, Debug, Clone)]
pub struct SyscallArgs {
    /// How long to capture (30s, 5m, 1h; a bare number is seconds). Without
    /// it, capture until Ctrl-C or SIGTERM.
    #[arg(value_name = "DURATION", value_parser = super::parse_duration)]
    pub duration: Option<Duration>,
    /// Trace this process.
    #[arg(long, value_name = "PID", conflicts_with = "name")]
    pub pid: Option<u32>,
    /// Find the process by name.
    #[arg(long, value_name = "NAME", default_value = "ckb")]
    pub name: String,
    /// Syscalls shown, by total time (0 = all). Totals, categories and
    /// roles always cover every syscall.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub top: usize,
    /// Seconds between reports.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0, value_parser = super::positive_secs)]
    pub interval: f64,
    /// JSON Lines: one object per interval, then one with "final": true.
    #[arg(long)]
    pub json: bool,
    /// Force a backend instead of the best one this kernel supports (for
    /// tests and comparisons).
    #[arg(long, hide = true, value_name = "BACKEND",
          value_parser = ["tp_btf", "raw_tp", "tracepoint"])]
    pub backend: Option<String>,
    /// When the traced process exits, stop (exit code 1) instead of waiting
    /// for the same executable to start again and tracing it.
    #[arg(long)]
    pub no_follow: bool,
}

/// Thread names of `pid` (None once the process is gone).
fn thread_names(pid: u32) -> Option<Vec<String>> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let names: Vec<String> = dir
        .filter_map(|e| {
            let p = e.ok()?.path().join("comm");
            Some(std::fs::read_to_string(p).ok()?.trim_end().to_string())
        })
        .collect();
    (!names.is_empty()).then_some(names)
}

/// One poll: the kernel's counters and the threads alive at that moment.
pub struct Tick {
    pub sample: Sample,
    pub threads: Option<Vec<String>>,
}

type Key = (String, u32);

/// Turns cumulative samples into interval and whole-capture reports. A
/// capture may span several processes (restarts of the target): each is a
/// session with maps of its own, whose counters start from zero; what ended
/// sessions measured is kept in `closed`.
pub struct Aggregator {
    /// Current session: cumulative counters at the last read, and the exact
    /// maximum over all its intervals, per (family, syscall).
    prev: HashMap<Key, CallStats>,
    max: HashMap<Key, u64>,
    /// Sessions that ended, maxima folded in.
    closed: HashMap<Key, CallStats>,
    drops: Drops,
    backend: Backend,
    pid: Option<u32>,
    main: String,
    top: usize,
    threads: Option<Vec<String>>,
    start: Instant,
    last: Instant,
    gaps: Gaps,
}

impl Aggregator {
    pub fn new(backend: Backend, top: usize) -> Aggregator {
        let now = Instant::now();
        Aggregator {
            prev: HashMap::new(),
            max: HashMap::new(),
            closed: HashMap::new(),
            drops: Drops::default(),
            backend,
            pid: None,
            main: String::new(),
            top,
            threads: None,
            start: now,
            last: now,
            gaps: Gaps::default(),
        }
    }

    /// A session starts: the programs are attached for process `proc`.
    pub fn begin(&mut self, proc: &Proc) {
        self.pid = Some(proc.pid);
        self.main = proc.comm.clone();
    }

    /// The session ends: `rest` are its reads not yet folded in, the last
    /// one taken while the programs were still attached. Its counters join
    /// the closed totals; the next session's maps start from zero.
    pub fn end(&mut self, rest: &[Tick]) {
        for t in rest {
            let _ = self.interval(t, Instant::now()); // never shown: keep their maxima
        }
        for (key, mut st) in self.prev.drain() {
            st.op.max_ns = self.max.get(&key).copied().unwrap_or(0);
            self.closed.entry(key).or_default().add(&st);
        }
        self.max.clear();
        self.drops.end_session();
    }

    /// The target was traced again after `g`.
    pub fn gap(&mut self, g: Gap) {
        self.gaps.push(g);
    }

    fn span(&self, secs: f64, is_final: bool) -> Span {
        Span {
            backend: self.backend.name(),
            timestamp: rfc3339(SystemTime::now()),
            pid: self.pid,
            secs,
            elapsed_secs: self.start.elapsed().as_secs_f64(),
            is_final,
            main: self.main.clone(),
            threads: self.threads.clone(),
            top: self.top,
            uncounted: self.drops.total(1),
            untimed: self.drops.total(2),
        }
    }

    /// The report of the interval that `t` closes.
    pub fn interval(&mut self, t: &Tick, now: Instant) -> SyscallReport {
        let secs = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        if t.threads.is_some() {
            self.threads = t.threads.clone();
        }
        let mut cells: HashMap<Key, CallStats> = HashMap::new();
        for k in &t.sample.rows {
            let key = (k.family.clone(), k.nr);
            let mut d = match self.prev.get(&key) {
                Some(p) => k.stats.minus(p),
                None => k.stats.clone(),
            };
            d.op.max_ns = k.stats.op.max_ns;
            let m = self.max.entry(key.clone()).or_default();
            *m = (*m).max(k.stats.op.max_ns);
            self.prev.insert(key.clone(), k.stats.clone());
            cells.entry(key).or_default().add(&d);
        }
        self.drops.set(t.sample.drops);
        let mut r = build(&cells, &self.span(secs, false));
        r.gaps = self.gaps.take_new();
        r
    }

    /// The report of the whole capture, every session included.
    pub fn whole(&self) -> SyscallReport {
        let mut cells = self.closed.clone();
        for (k, s) in &self.prev {
            let mut s = s.clone();
            s.op.max_ns = self.max.get(k).copied().unwrap_or(0);
            cells.entry(k.clone()).or_default().add(&s);
        }
        let secs = self.start.elapsed().as_secs_f64();
        let mut r = build(&cells, &self.span(secs, true));
        r.gaps = self.gaps.all();
        r
    }
}

/// What stays the same across the sessions of one capture.
struct Capture<'a> {
    args: &'a SyscallArgs,
    backend: Backend,
    sigs: Receiver<()>,
    deadline: Receiver<Instant>,
}

impl Capture<'_> {
    fn print_report(&self, out: &mut Out, r: &SyscallReport) -> Result<(), Stop> {
        if self.args.json {
            out.print(&view::json(r))
        } else {
            out.print(&view::table(r))
        }
    }

    fn print_target(&self, out: &mut Out, e: &TargetEvent) -> Result<(), Stop> {
        super::print_target(out, e, self.args.json)
    }

    /// Traces process `proc` until the capture stops or the process exits;
    /// folds everything it measured into `agg` and detaches before
    /// returning. `targ_tgid` is frozen at load, so every session loads a
    /// skeleton of its own.
    fn session(
        &self,
        proc: &Proc,
        agg: &mut Aggregator,
        out: &mut Out,
        resume: Option<Resume>,
    ) -> anyhow::Result<Stop> {
        let cfg = sc::Config { tgid: proc.pid };
        let mut obj = MaybeUninit::uninit();
        let skel = sc::load(&mut obj, &cfg, self.backend)?;
        let links = sc::attach(&skel, self.backend)?;
        note(format!(
            "attached raw_syscalls sys_enter/sys_exit ({}) for pid {} ({})",
            self.backend.name(),
            proc.pid,
            proc.comm
        ));
        let maps = sc::Maps::new(&skel)?;
        agg.begin(proc);
        let mut stop = None;
        if let Some(resume) = resume {
            let gap = resume.end();
            stop = self
                .print_target(out, &TargetEvent::Restarted(gap.clone()))
                .err();
            agg.gap(gap);
        }

        let pid = proc.pid;
        let mut epoch = 0u64;
        let interval = Duration::from_secs_f64(self.args.interval);
        let poller = Poller::spawn(interval, move || {
            let sample = sc::read_sample(&maps, epoch)?;
            epoch += 1;
            Ok(Tick {
                sample,
                threads: thread_names(pid),
            })
        });
        let stop = match stop {
            Some(s) => s,
            None => loop {
                select! {
                    recv(poller.samples) -> t => {
                        let Ok(t) = t else { anyhow::bail!("the map poller thread stopped unexpectedly") };
                        let r = agg.interval(&t?, Instant::now());
                        if let Err(stop) = self.print_report(out, &r) { break stop; }
                        if !proc.alive() { break Stop::TargetExited; }
                    }
                    recv(self.sigs) -> _ => break Stop::Signal,
                    recv(self.deadline) -> _ => break Stop::Deadline,
                }
            },
        };

        // The final read happens with the programs still attached; then detach.
        let rest = poller.finish()?;
        crate::probe::detach(links);
        agg.end(&rest);
        drop(skel);
        Ok(stop)
    }
}

pub fn run(args: SyscallArgs) -> Result<Exit> {
    crate::probe::require_privileges()?;
    crate::probe::require_kernel_features()?;
    let proc = match args.pid {
        Some(pid) => node::find_by_pid(pid)?,
        None => node::find_by_name(&args.name)?,
    };
    let forced = args.backend.as_deref().and_then(Backend::from_name);
    let (backend, probed) = sc::choose(forced)?;
    for p in probed.iter().filter(|p| !p.ok) {
        note(format!("{} unavailable ({})", p.attach.name(), p.detail));
    }
    let cap = Capture {
        args: &args,
        backend,
        sigs: signals()?,
        deadline: args.duration.map(after).unwrap_or_else(never),
    };
    let mut agg = Aggregator::new(backend, args.top);
    let mut out = Out::new();
    let ended = run_sessions(
        proc,
        args.no_follow,
        &cap.sigs,
        &cap.deadline,
        &mut out,
        |p, out, resume| cap.session(p, &mut agg, out, resume),
        |out, e| cap.print_target(out, e),
    )?;
    if ended.stop != Stop::OutputClosed {
        let _ = cap.print_report(&mut out, &agg.whole());
    }
    ended.exit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::syscall::syscall_nr;
    use crate::probe::syscall::KeyStats;

    fn ks(family: &str, name: &str, count: u64, max_ns: u64) -> KeyStats {
        let mut s = CallStats::default();
        for _ in 0..count {
            s.op.count += 1;
            s.op.total_ns += 1000;
            s.op.hist.record(1000);
        }
        s.op.max_ns = max_ns;
        KeyStats {
            family: family.into(),
            nr: syscall_nr(name).unwrap(),
            stats: s,
        }
    }

    fn tick(rows: Vec<KeyStats>) -> Tick {
        Tick {
            sample: Sample {
                rows,
                drops: [0, 1, 2],
            },
            threads: Some(vec!["ckb".into(), "GlobalRt-1".into()]),
        }
    }

    #[test]
    fn intervals_difference_and_the_summary_accumulates() {
        let mut agg = Aggregator::new(Backend::RawTp, 0);
        let t0 = agg.start;
        let r1 = agg.interval(
            &tick(vec![
                ks("GlobalRt-", "getppid", 10, 5000),
                ks("ckb", "getppid", 2, 9000),
            ]),
            t0 + Duration::from_secs(1),
        );
        let g = &r1.syscalls.iter().find(|s| s.0 == "getppid").unwrap().1;
        assert_eq!(g.row.count, 12);
        assert_eq!(g.row.max_us, Some(9.0));
        assert_eq!(r1.backend, "raw_tp");
        assert_eq!((r1.uncounted, r1.untimed), (1, 2));

        let r2 = agg.interval(
            &tick(vec![
                ks("GlobalRt-", "getppid", 15, 3000),
                ks("ckb", "getppid", 2, 0),
            ]),
            t0 + Duration::from_secs(2),
        );
        let g = &r2.syscalls.iter().find(|s| s.0 == "getppid").unwrap().1;
        assert_eq!(g.row.count, 5);
        assert_eq!(g.by_role["runtime"].count, 5);
        assert_eq!(g.row.max_us, Some(3.0));

        agg.end(&[tick(vec![
            ks("GlobalRt-", "getppid", 15, 0),
            ks("ckb", "getppid", 2, 0),
        ])]);
        let w = agg.whole();
        assert!(w.is_final);
        let g = &w.syscalls.iter().find(|s| s.0 == "getppid").unwrap().1;
        assert_eq!(g.row.count, 17);
        assert_eq!(g.row.max_us, Some(9.0), "max of the intervals");
        assert_eq!(w.derived.threads, Some(2));
    }

    fn proc(pid: u32) -> Proc {
        Proc {
            pid,
            start_time: pid as u64,
            comm: "ckb".into(),
            exe: "/usr/bin/ckb".into(),
        }
    }

    #[test]
    fn sessions_add_up_across_a_restart() {
        let mut agg = Aggregator::new(Backend::TpBtf, 0);
        let t0 = agg.start;
        agg.begin(&proc(1));
        let r = agg.interval(
            &tick(vec![ks("GlobalRt-", "getppid", 10, 5000)]),
            t0 + Duration::from_secs(1),
        );
        assert!(r.gaps.is_empty());
        // Session 1 ends: 3 more calls in its last read (never shown).
        agg.end(&[tick(vec![ks("GlobalRt-", "getppid", 13, 0)])]);
        // Session 2: a new process, maps from zero.
        agg.begin(&proc(2));
        agg.gap(Gap {
            old_pid: 1,
            new_pid: 2,
            ..Gap::default()
        });
        let r = agg.interval(
            &tick(vec![
                ks("GlobalRt-", "getppid", 4, 2000),
                ks("rocksdb:low", "pwrite64", 1, 1000),
            ]),
            t0 + Duration::from_secs(2),
        );
        assert_eq!(r.pid, Some(2));
        assert_eq!(r.gaps.len(), 1, "the first interval after the restart");
        let g = &r.syscalls.iter().find(|s| s.0 == "getppid").unwrap().1;
        assert_eq!(g.row.count, 4, "the new session's calls, not a jump");
        assert_eq!((r.uncounted, r.untimed), (2, 4), "drops of both sessions");
        let r = agg.interval(
            &tick(vec![ks("GlobalRt-", "getppid", 6, 0)]),
            t0 + Duration::from_secs(3),
        );
        assert!(r.gaps.is_empty(), "...only once");
        agg.end(&[]);
        let w = agg.whole();
        let g = &w.syscalls.iter().find(|s| s.0 == "getppid").unwrap().1;
        assert_eq!(g.row.count, 19, "13 + 6: every process");
        assert_eq!(g.by_role["runtime"].count, 19);
        assert_eq!(g.row.max_us, Some(5.0), "max over both sessions");
        let p = &w.syscalls.iter().find(|s| s.0 == "pwrite64").unwrap().1;
        assert_eq!(p.by_role["compaction"].count, 1);
        assert_eq!(w.gaps.len(), 1);
        assert_eq!((w.gaps[0].old_pid, w.gaps[0].new_pid), (1, 2));
        assert_eq!(w.pid, Some(2));
    }
}
