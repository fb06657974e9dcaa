//! RocksDB background work (compactions, flushes, write stalls) of a live
//! process: the pieces `rocksdb` wires in (`BgTrace`, `BgAggregator`), and
//! a hidden `background` subcommand that runs them on their own, for tests
//! and for looking at background work alone.

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;
use clap::Args;
use crossbeam_channel::{after, never, select};
use libbpf_rs::{Link, OpenObject};

use super::{note, rfc3339, signals, Clock, Out, Stop};
use crate::collect::{Poller, RingDrain};
use crate::error::{Exit, Failure};
use crate::model::background::{row, Running};
use crate::model::{Background, BgJob, BgKind, BgStats};
use crate::probe::background::{self as bg, BackgroundSkel, BgEvent, Plan, Sample};
use crate::probe::rocksdb::Backend;
use crate::render;
use crate::node::{self, ProbeFile};

/// The background layer loaded and attached to a target's files.
pub struct BgTrace<'obj> {
    pub skel: BackgroundSkel<'obj>,
    pub links: Vec<Link>,
    pub plan: Plan,
    pub backend: Backend,
}

impl<'obj> BgTrace<'obj> {
    /// Finds the internals in `files` and attaches to them, filtered to
    /// `tgid` (0 = all). `Ok(None)` when the target has none of them (a
    /// RocksDB build without symbols for its C++ internals): reported by
    /// the caller, not fatal.
    pub fn start(
        obj_multi: &'obj mut MaybeUninit<OpenObject>,
        obj_single: &'obj mut MaybeUninit<OpenObject>,
        files: &[ProbeFile],
        tgid: u32,
        events: bool,
    ) -> Result<Option<BgTrace<'obj>>> {
        let plan = bg::resolve(files);
        if plan.attach.is_empty() {
            return Ok(None);
        }
        let cfg = bg::Config { tgid, events };
        let (skel, links, backend) = bg::load_and_attach(obj_multi, obj_single, &cfg, &plan)?;
        Ok(Some(BgTrace {
            skel,
            links,
            plan,
            backend,
        }))
    }

    /// The stderr note: what is traced, what is missing.
    pub fn describe(&self) -> Vec<String> {
        let mut kinds: Vec<&str> = self.plan.attach.iter().map(|p| p.kind.name()).collect();
        kinds.dedup();
        let mut lines = vec![format!(
            "attached {} RocksDB internal functions ({}) for background work",
            self.plan.attach.len(),
            kinds.join(", ")
        )];
        let steps = self.plan.single_stepped();
        if !steps.is_empty() {
            let names: Vec<&str> = steps.iter().map(|k| k.function()).collect();
            lines.push(format!(
                "single-stepped (fine: they run a few times a second at most): {}",
                names.join(", ")
            ));
        }
        if !self.plan.absent.is_empty() {
            let names: Vec<&str> = self.plan.absent.iter().map(|k| k.function()).collect();
            lines.push(format!("not in the target (skipped): {}", names.join(", ")));
        }
        lines
    }

    /// Detaches (the skeleton goes when dropped).
    pub fn detach(self) -> BackgroundSkel<'obj> {
        crate::probe::detach(self.links);
        self.skel
    }
}

/// Turns cumulative samples into per-interval and whole-capture figures.
pub struct BgAggregator {
    present: Vec<BgKind>,
    absent: Vec<BgKind>,
    prev: HashMap<BgKind, BgStats>,
    max: HashMap<BgKind, u64>,
    /// Ongoing stalls already credited to earlier intervals: (tid, start)
    /// -> ns credited.
    credited: HashMap<(u32, u64), u64>,
    /// Sessions (traced processes) that ended: their cumulative counters,
    /// and what was still running when the last one ended.
    closed: HashMap<BgKind, BgStats>,
    closed_running: Vec<Running>,
}

impl BgAggregator {
    pub fn new(plan: &Plan) -> BgAggregator {
        let mut present: Vec<BgKind> = plan.attach.iter().map(|p| p.kind).collect();
        present.sort();
        present.dedup();
        BgAggregator {
            present,
            absent: plan.absent.clone(),
            prev: HashMap::new(),
            max: HashMap::new(),
            credited: HashMap::new(),
            closed: HashMap::new(),
            closed_running: Vec::new(),
        }
    }

    fn build(
        &self,
        per_kind: &HashMap<BgKind, (BgStats, u64)>,
        running: &[Running],
    ) -> Vec<crate::model::BgRow> {
        self.present
            .iter()
            .map(|&k| {
                let (s, in_flight) = per_kind.get(&k).cloned().unwrap_or_default();
                row(k, &s, in_flight, running)
            })
            .collect()
    }

    /// The figures of the interval `s` closes. Stall time counts ongoing
    /// stalls up to now, and a stall spanning intervals is split between
    /// them, never counted twice.
    pub fn interval(&mut self, s: &Sample) -> Background {
        let mut per_kind = HashMap::new();
        let mut stall_finished = 0;
        for (kind, cum) in &s.kinds {
            let mut d = match self.prev.get(kind) {
                Some(p) => cum.minus(p),
                None => cum.clone(),
            };
            d.max_ns = cum.max_ns;
            let m = self.max.entry(*kind).or_default();
            *m = (*m).max(cum.max_ns);
            if *kind == BgKind::DelayWrite {
                stall_finished = d.total_ns;
            }
            let in_flight = cum.started.saturating_sub(cum.finished);
            per_kind.insert(*kind, (d, in_flight));
            self.prev.insert(*kind, cum.clone());
        }
        let ongoing: HashMap<(u32, u64), u64> = s
            .running
            .iter()
            .filter(|r| r.kind == BgKind::DelayWrite)
            .map(|r| ((r.tid, r.start_ns), r.elapsed_ns))
            .collect();
        // Stalls that ended: their earlier credit is in their total already.
        let mut stalled = stall_finished;
        self.credited.retain(|key, credit| {
            if ongoing.contains_key(key) {
                true
            } else {
                stalled = stalled.saturating_sub(*credit);
                false
            }
        });
        for (key, elapsed) in ongoing {
            let credit = self.credited.entry(key).or_default();
            stalled += elapsed.saturating_sub(*credit);
            *credit = elapsed;
        }
        Background {
            rows: self.build(&per_kind, &s.running),
            stalled_ns: stalled,
            absent: self.absent.clone(),
        }
    }

    /// The traced process is gone (or the capture ends): `last`, already
    /// folded in by `interval`, holds its final cumulative counters. A
    /// restarted process's maps start from zero.
    pub fn end(&mut self, last: &Sample) {
        for (kind, cum) in &last.kinds {
            let mut st = cum.clone();
            st.max_ns = self.max.get(kind).copied().unwrap_or(0);
            self.closed.entry(*kind).or_default().add(&st);
        }
        self.closed_running = last.running.clone();
        self.prev.clear();
        self.max.clear();
        self.credited.clear();
    }

    /// The whole capture: every ended session (call `end` first).
    pub fn whole(&self) -> Background {
        let mut per_kind = HashMap::new();
        let mut stalled = 0;
        for (kind, st) in &self.closed {
            if *kind == BgKind::DelayWrite {
                stalled = st.total_ns;
            }
            per_kind.insert(*kind, (st.clone(), st.started.saturating_sub(st.finished)));
        }
        stalled += self
            .closed_running
            .iter()
            .filter(|r| r.kind == BgKind::DelayWrite)
            .map(|r| r.elapsed_ns)
            .sum::<u64>();
        Background {
            rows: self.build(&per_kind, &self.closed_running),
            stalled_ns: stalled,
            absent: self.absent.clone(),
        }
    }
}

/// A ring-buffer record as a printable job.
pub fn to_job(e: &BgEvent, clock: &Clock) -> BgJob {
    BgJob {
        time: rfc3339(clock.wall(e.ts_ns)),
        pid: e.tgid,
        tid: e.tid,
        thread: e.thread(),
        kind: e.kind(),
        duration_us: e.dur_ns as f64 / 1000.0,
        object: e.obj,
    }
}

#[derive(Args, Debug, Clone)]
pub struct BackgroundArgs {
    /// How long to capture (30s, 5m; a bare number is seconds). Without it,
    /// capture until Ctrl-C or SIGTERM.
    #[arg(value_name = "DURATION", value_parser = super::parse_duration)]
    pub duration: Option<Duration>,
    /// Trace this process.
    #[arg(long, value_name = "PID", conflicts_with = "binary")]
    pub pid: Option<u32>,
    /// Trace every process running this executable.
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
    /// Seconds between reports.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    pub interval: f64,
    /// JSON Lines: one object per interval, then one with "final": true.
    #[arg(long)]
    pub json: bool,
    /// Print every finished job (compaction, flush, stall) as it ends.
    #[arg(long)]
    pub jobs: bool,
}

/// `ckb-libbpf background`: the background layer alone.
pub fn run(args: BackgroundArgs) -> Result<Exit> {
    if !(args.interval > 0.0 && args.interval.is_finite()) {
        return Err(Failure::new(
            Exit::Usage,
            "--interval must be a positive number of seconds",
        )
        .into());
    }
    crate::probe::require_privileges()?;
    let (files, proc) = match (&args.pid, &args.binary) {
        (Some(pid), _) => {
            let t = super::rocksdb::process_target(node::find_by_pid(*pid)?)?;
            (t.files, t.proc)
        }
        (None, Some(path)) => {
            crate::node::elf::Elf::open(path)?;
            (
                vec![ProbeFile {
                    attach_path: path.clone(),
                    display: path.clone(),
                    elf_path: path.clone(),
                }],
                None,
            )
        }
        (None, None) => {
            return Err(
                Failure::new(Exit::Usage, "background needs --pid PID or --binary PATH")
                    .hint("e.g. ckb-libbpf background --pid $(pgrep -x ckb)")
                    .into(),
            )
        }
    };
    let tgid = proc.as_ref().map(|p| p.pid).unwrap_or(0);
    let (mut om, mut os) = (MaybeUninit::uninit(), MaybeUninit::uninit());
    let Some(trace) = BgTrace::start(&mut om, &mut os, &files, tgid, args.jobs)? else {
        return Err(Failure::new(
            Exit::Usage,
            "none of RocksDB's background functions (CompactionJob::Run, FlushJob::Run, DBImpl::DelayWrite...) is in the target",
        )
        .hint("they are C++ internals: the binary needs its symbol table; `ckb-libbpf symbols --tier 2 PATH` lists them")
        .into());
    };
    for l in trace.describe() {
        note(l);
    }
    let maps = bg::Maps::new(&trace.skel)?;
    let events = bg::events(&trace.skel)?;
    let sigs = signals()?;
    let mut epoch = 0u64;
    let poller = Poller::spawn(Duration::from_secs_f64(args.interval), move || {
        let s = bg::read_sample(&maps, epoch);
        epoch += 1;
        s
    });
    let drain = args
        .jobs
        .then(|| RingDrain::spawn(events, 4096, BgEvent::parse));
    let jobs_rx = drain
        .as_ref()
        .map(|d| d.events.clone())
        .unwrap_or_else(never);
    let clock = Clock::new();
    let mut agg = BgAggregator::new(&trace.plan);
    let mut out = Out::new();
    let start = Instant::now();
    let mut last = start;
    let pid = proc.as_ref().map(|p| p.pid);
    let print_job = |out: &mut Out, e: &BgEvent| {
        let j = to_job(e, &clock);
        out.print(&if args.json {
            render::background::job_json(&j)
        } else {
            render::background::job_line(&j)
        })
    };
    let deadline = args.duration.map(after).unwrap_or_else(never);
    let stop = loop {
        select! {
            recv(poller.samples) -> s => {
                let Ok(s) = s else { anyhow::bail!("the map poller thread stopped unexpectedly") };
                let s = s?;
                let b = agg.interval(&s);
                let now = Instant::now();
                let secs = now.duration_since(last).as_secs_f64();
                last = now;
                let text = if args.json {
                    render::background::report_json(&b, rfc3339(SystemTime::now()), pid, secs, start.elapsed().as_secs_f64(), false, s.drops[0])
                } else {
                    render::background::table(&b)
                };
                if let Err(stop) = out.print(&text) { break stop; }
                if let Some(p) = &proc {
                    if !p.alive() { break Stop::TargetExited; }
                }
            }
            recv(jobs_rx) -> e => {
                if let Ok(e) = e {
                    if let Err(stop) = print_job(&mut out, &e) { break stop; }
                }
            }
            recv(sigs) -> _ => break Stop::Signal,
            recv(deadline) -> _ => break Stop::Deadline,
        }
    };
    // Final read while every probe is live, then detach.
    let mut rest = poller.finish()?;
    let skel = trace.detach();
    let fin = rest.pop();
    for s in &rest {
        agg.interval(s);
    }
    if let Some(d) = drain {
        for e in d.finish()? {
            if stop != Stop::OutputClosed {
                let _ = print_job(&mut out, &e);
            }
        }
    }
    if let (Some(s), true) = (fin, stop != Stop::OutputClosed) {
        agg.interval(&s);
        agg.end(&s);
        let b = agg.whole();
        let elapsed = start.elapsed().as_secs_f64();
        let _ = out.print(&if args.json {
            render::background::report_json(
                &b,
                rfc3339(SystemTime::now()),
                pid,
                elapsed,
                elapsed,
                true,
                s.drops[0],
            )
        } else {
            format!(
                "=== background summary: {elapsed:.1} s captured ===\n{}",
                render::background::table(&b)
            )
        });
    }
    drop(skel);
    match stop {
        Stop::TargetExited => {
            note(format!(
                "target process {} exited; all probes detached",
                pid.unwrap_or(0)
            ));
            Ok(Exit::Runtime)
        }
        _ => Ok(Exit::Ok),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(kinds: &[BgKind]) -> Plan {
        let file = ProbeFile {
            attach_path: "/x".into(),
            display: "/x".into(),
            elf_path: "/x".into(),
        };
        Plan {
            attach: kinds
                .iter()
                .map(|&kind| bg::Planned {
                    kind,
                    file: file.clone(),
                    sym: crate::node::elf::FuncSym {
                        name: "f".into(),
                        vaddr: 0,
                        size: 0,
                        offset: 0,
                        head: vec![0x55],
                    },
                    cost: crate::node::insn::classify(&[0x55]),
                })
                .collect(),
            absent: vec![BgKind::StopToken],
        }
    }

    fn sample(stall: (u64, u64, u64), comp: (u64, u64), running: Vec<Running>) -> Sample {
        let st = |started, finished, total_ns| BgStats {
            started,
            finished,
            total_ns,
            ..Default::default()
        };
        Sample {
            kinds: vec![
                (BgKind::Compaction, st(comp.0, comp.1, 0)),
                (BgKind::DelayWrite, st(stall.0, stall.1, stall.2)),
            ],
            running,
            drops: [0; 3],
        }
    }

    fn stall(start_ns: u64, elapsed_ns: u64) -> Running {
        Running {
            kind: BgKind::DelayWrite,
            tid: 9,
            start_ns,
            elapsed_ns,
        }
    }

    #[test]
    fn a_stall_spanning_intervals_is_counted_once() {
        let mut agg = BgAggregator::new(&plan(&[BgKind::Compaction, BgKind::DelayWrite]));
        // Interval 1: a stall began 300 ms ago and is still going.
        let b1 = agg.interval(&sample((1, 0, 0), (1, 0), vec![stall(100, 300)]));
        assert_eq!(b1.stalled_ns, 300);
        assert_eq!(b1.row(BgKind::Compaction).unwrap().in_flight, 1);
        // Interval 2: still going, 1000 ms so far.
        let b2 = agg.interval(&sample((1, 0, 0), (1, 0), vec![stall(100, 1000)]));
        assert_eq!(b2.stalled_ns, 700);
        // Interval 3: it ended after 1200 ms in all; a new one is 50 ms in.
        let b3 = agg.interval(&sample((2, 1, 1200), (1, 1), vec![stall(5000, 50)]));
        assert_eq!(b3.stalled_ns, 200 + 50);
        assert_eq!(b3.row(BgKind::Compaction).unwrap().finished, 1);
        assert_eq!(b1.stalled_ns + b2.stalled_ns + b3.stalled_ns, 1250);
        // The whole capture: finished stalls plus the ongoing one.
        let last = sample((2, 1, 1200), (1, 1), vec![stall(5000, 80)]);
        agg.interval(&last);
        agg.end(&last);
        let w = agg.whole();
        assert_eq!(w.stalled_ns, 1280);
        assert_eq!(w.row(BgKind::DelayWrite).unwrap().finished, 1);
        assert_eq!(w.absent, vec![BgKind::StopToken]);
        assert_eq!(w.rows.len(), 2, "only kinds the target has");
        // A restarted target's counters start from zero; the whole capture
        // adds both processes.
        agg.interval(&sample((1, 1, 400), (0, 0), vec![]));
        agg.end(&sample((1, 1, 400), (0, 0), vec![]));
        let w = agg.whole();
        assert_eq!(w.row(BgKind::DelayWrite).unwrap().finished, 2);
        assert_eq!(w.stalled_ns, 1600, "1200 + 400, nothing running any more");
    }
}
