//! `ckb-libbpf syscall`: the syscall profile of a live node, split by
//! thread role (compaction, flush, chain, verify, runtime...), aggregated in
//! the kernel.

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;
use clap::Args;
use crossbeam_channel::{after, never, select};

use super::{note, rfc3339, signals, Out, Stop};
use crate::collect::Poller;
use crate::error::Exit;
use crate::model::syscall::{build, CallStats, Span, SyscallReport};
use crate::probe::syscall::{self as sc, Backend, Sample};
use crate::render::syscall as view;
use crate::target::{self, Proc};

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
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0, value_parser = super::rocksdb::positive_secs)]
    pub interval: f64,
    /// JSON Lines: one object per interval, then one with "final": true.
    #[arg(long)]
    pub json: bool,
    /// Force a backend instead of the best one this kernel supports (for
    /// tests and comparisons).
    #[arg(long, hide = true, value_name = "BACKEND",
          value_parser = ["tp_btf", "raw_tp", "tracepoint"])]
    pub backend: Option<String>,
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

/// Turns cumulative samples into interval and whole-capture reports.
pub struct Aggregator {
    prev: HashMap<Key, CallStats>,
    max: HashMap<Key, u64>,
    backend: Backend,
    pid: Option<u32>,
    main: String,
    top: usize,
    threads: Option<Vec<String>>,
    start: Instant,
    last: Instant,
}

impl Aggregator {
    pub fn new(backend: Backend, proc: Option<&Proc>, top: usize) -> Aggregator {
        let now = Instant::now();
        Aggregator {
            prev: HashMap::new(),
            max: HashMap::new(),
            backend,
            pid: proc.map(|p| p.pid),
            main: proc.map(|p| p.comm.clone()).unwrap_or_default(),
            top,
            threads: None,
            start: now,
            last: now,
        }
    }

    fn span(&self, secs: f64, t: &Tick, is_final: bool) -> Span {
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
            uncounted: t.sample.drops[1],
            untimed: t.sample.drops[2],
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
        build(&cells, &self.span(secs, t, false))
    }

    /// The report of the whole capture.
    pub fn whole(&mut self, t: &Tick) -> SyscallReport {
        let _ = self.interval(t, Instant::now());
        let cells: HashMap<Key, CallStats> = self
            .prev
            .iter()
            .map(|(k, s)| {
                let mut s = s.clone();
                s.op.max_ns = self.max.get(k).copied().unwrap_or(0);
                (k.clone(), s)
            })
            .collect();
        let secs = self.start.elapsed().as_secs_f64();
        build(&cells, &self.span(secs, t, true))
    }
}

pub fn run(args: SyscallArgs) -> Result<Exit> {
    crate::probe::require_privileges()?;
    let proc = match args.pid {
        Some(pid) => target::find_by_pid(pid)?,
        None => target::find_by_name(&args.name)?,
    };
    let forced = args.backend.as_deref().and_then(Backend::from_name);
    let (backend, probed) = sc::choose(forced)?;
    for p in probed.iter().filter(|p| !p.ok) {
        note(format!("{} unavailable ({})", p.attach.name(), p.detail));
    }
    let cfg = sc::Config { tgid: proc.pid };
    let mut obj = MaybeUninit::uninit();
    let skel = sc::load(&mut obj, &cfg, backend)?;
    let links = sc::attach(&skel, backend)?;
    note(format!(
        "attached raw_syscalls sys_enter/sys_exit ({}) for pid {} ({})",
        backend.name(),
        proc.pid,
        proc.comm
    ));
    let maps = sc::Maps::new(&skel)?;
    let sigs = signals()?;

    let pid = proc.pid;
    let mut epoch = 0u64;
    let poller = Poller::spawn(Duration::from_secs_f64(args.interval), move || {
        let sample = sc::read_sample(&maps, epoch)?;
        epoch += 1;
        Ok(Tick {
            sample,
            threads: thread_names(pid),
        })
    });
    let mut agg = Aggregator::new(backend, Some(&proc), args.top);
    let mut out = Out::new();
    let print = |out: &mut Out, r: &SyscallReport| -> std::result::Result<(), Stop> {
        if args.json {
            out.print(&view::json(r))
        } else {
            out.print(&view::table(r))
        }
    };
    let deadline = args.duration.map(after).unwrap_or_else(never);
    let stop = loop {
        select! {
            recv(poller.samples) -> t => {
                let Ok(t) = t else { anyhow::bail!("the map poller thread stopped unexpectedly") };
                let r = agg.interval(&t?, Instant::now());
                if let Err(stop) = print(&mut out, &r) { break stop; }
                if !proc.alive() { break Stop::TargetExited; }
            }
            recv(sigs) -> _ => break Stop::Signal,
            recv(deadline) -> _ => break Stop::Deadline,
        }
    };

    // The final read happens with the programs still attached; then detach.
    let mut rest = poller.finish()?;
    crate::probe::detach(links);
    let last = rest.pop();
    for t in &rest {
        agg.interval(t, Instant::now()); // intervals never shown: keep their maxima
    }
    if let (Some(t), true) = (last, stop != Stop::OutputClosed) {
        let r = agg.whole(&t);
        let _ = print(&mut out, &r);
    }
    drop(skel);
    match stop {
        Stop::TargetExited => {
            note(format!("target process {pid} exited; all probes detached"));
            Ok(Exit::Runtime)
        }
        _ => Ok(Exit::Ok),
    }
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
        let mut agg = Aggregator::new(Backend::RawTp, None, 0);
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

        let w = agg.whole(&tick(vec![
            ks("GlobalRt-", "getppid", 15, 0),
            ks("ckb", "getppid", 2, 0),
        ]));
        assert!(w.is_final);
        let g = &w.syscalls.iter().find(|s| s.0 == "getppid").unwrap().1;
        assert_eq!(g.row.count, 17);
        assert_eq!(g.row.max_us, Some(9.0), "max of the intervals");
        assert_eq!(w.derived.threads, Some(2));
    }
}
