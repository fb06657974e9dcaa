//! `ckb-libbpf rocksdb`: RocksDB C API latency, throughput and hit ratio of a
//! live node, aggregated in the kernel.

use std::collections::{BTreeSet, HashMap};
use std::mem::MaybeUninit;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;
use clap::Args;
use crossbeam_channel::{after, never, select, Receiver};

use super::background::{self, BgAggregator, BgTrace};
use super::causes::{self as causes, CauseInputs, CauseTrace, Causes};
use super::{note, rfc3339, run_sessions, signals, Clock, Out, Resume, Stop, Traced};
use crate::analyze::{Analyzer, Anomaly, Config as AnalyzeConfig, Observation};
use crate::collect::{Poller, RingDrain, RingLines};
use crate::error::{Exit, Failure};
use crate::model::overhead::{DutyCycle, HitClass, Hits, PerHit};
use crate::model::{Background, Drops, Gap, Gaps, LeftOut, OpStats, Report, Row, TargetEvent};
use crate::probe::background::{self as bgprobe, BgEvent};
use crate::probe::rocksdb::{self as rdb, Backend, Op, OpsFilter, Plan, RdbEvent, Sample, FUNCS};
use crate::render;
use crate::node::insn::ProbeCost;
use crate::node::{self, elf::Elf, ProbeFile, Proc, Selector};

#[derive(Args, Debug, Clone)]
pub struct RocksdbArgs {
    /// How long to capture (30s, 5m, 1h; a bare number is seconds). Without
    /// it, capture until Ctrl-C or SIGTERM.
    #[arg(value_name = "DURATION", value_parser = super::parse_duration)]
    pub duration: Option<Duration>,
    /// Trace this process.
    #[arg(long, value_name = "PID", conflicts_with_all = ["binary", "name"])]
    pub pid: Option<u32>,
    /// Trace every process running this executable or using this
    /// librocksdb.so, including ones that start later.
    #[arg(long, value_name = "PATH", conflicts_with = "name")]
    pub binary: Option<PathBuf>,
    /// Find the process by name.
    #[arg(long, value_name = "NAME", default_value = "ckb")]
    pub name: String,
    /// Seconds between reports.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0, value_parser = super::positive_secs)]
    pub interval: f64,
    /// Print log2 latency histograms per operation (like biolatency).
    #[arg(long)]
    pub histogram: bool,
    /// Log every operation slower than --threshold, one line each.
    #[arg(long)]
    pub slow: bool,
    /// Slow-operation threshold in microseconds (with --slow; 0 logs all).
    #[arg(
        long,
        value_name = "MICROSECONDS",
        default_value_t = 1000,
        requires = "slow"
    )]
    pub threshold: u64,
    /// JSON Lines: one object per interval, then one with "final": true.
    #[arg(long)]
    pub json: bool,
    /// Operation classes or functions to trace, comma-separated: GET, PUT,
    /// DELETE, WRITE, ITER_SEEK, ITER_CREATE, ITER_NEXT, TXN_BEGIN,
    /// TXN_COMMIT, all, or rocksdb_* names. Naming one also opts in its
    /// single-stepped (expensive) functions, which are left out by default.
    #[arg(long, value_name = "LIST")]
    pub ops: Option<String>,
    /// Add one row per C function under the classes.
    #[arg(long)]
    pub by_function: bool,
    /// When the traced process exits, stop (exit code 1) instead of waiting
    /// for the same executable to start again and tracing it.
    #[arg(long)]
    pub no_follow: bool,
    /// Learning period of the anomaly detector: no alerts before it ends.
    #[arg(long, value_name = "SECONDS", default_value_t = 300.0, value_parser = non_negative_secs)]
    pub baseline_secs: f64,
    /// Alert when an operation's 10 s average latency exceeds this many
    /// times its baseline.
    #[arg(long, value_name = "X", default_value_t = 5.0, value_parser = multiplier)]
    pub alert_multiplier: f64,
    /// Benchmarks only (`make bench`): attach empty programs to the same
    /// functions through the same links, to measure the kernel's floor.
    #[arg(long, hide = true)]
    pub empty_programs: bool,
    /// Layers that feed the alerts' probable causes, comma-separated:
    /// `net` (peer churn; cheap, it runs per TCP send/receive: on by
    /// default), `syscall` (fsync/fdatasync latency spikes and futex
    /// contention; off by default: it traces every syscall of the node,
    /// ~0.4 us each, see README), `all`, `none`.
    #[arg(long, value_name = "LIST", default_value = "net",
          value_parser = causes::parse_causes)]
    pub causes: Causes,
    /// Keep the probes' estimated cost to the traced process under PERCENT
    /// of one core (0 < PERCENT <= 100): above it, the RocksDB probes are
    /// detached for part of each interval, and counts and rates then cover
    /// only the attached share (shown with every report).
    #[arg(long, value_name = "PERCENT", value_parser = budget_pct)]
    pub overhead_budget: Option<f64>,
}

fn budget_pct(s: &str) -> std::result::Result<f64, String> {
    match s.trim_end_matches('%').parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 100.0 => Ok(v),
        _ => Err(format!(
            "`{s}`: the budget is a percentage of one core, > 0 and <= 100 (e.g. 1 or 0.5)"
        )),
    }
}

fn non_negative_secs(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v >= 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("`{s}` is not a number of seconds >= 0")),
    }
}

fn multiplier(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 1.0 && v.is_finite() => Ok(v),
        _ => Err(format!("`{s}`: the multiplier must be a number > 1")),
    }
}

/// What to attach to, and which process to watch.
pub(crate) struct Target {
    pub files: Vec<ProbeFile>,
    pub proc: Option<Proc>,
}

impl Traced for Target {
    fn proc(&self) -> Option<&Proc> {
        self.proc.as_ref()
    }
    /// A restarted node may run another file (an upgrade): found afresh.
    fn restarted(p: Proc) -> Result<Target> {
        process_target(p)
    }
}

fn target(sel: &Selector) -> Result<Target> {
    match sel {
        Selector::Pid(pid) => process_target(node::find_by_pid(*pid)?),
        Selector::Name(name) => process_target(node::find_by_name(name)?),
        Selector::Binary(path) => {
            let elf = Elf::open(path)?;
            let mut files = vec![ProbeFile {
                attach_path: path.clone(),
                display: path.clone(),
                elf_path: path.clone(),
            }];
            // A dynamically linked node: its RocksDB lives in a library.
            for lib in elf.needed().iter().filter(|n| n.starts_with("librocksdb")) {
                if let Some(p) = node::find_library(lib) {
                    files.push(ProbeFile {
                        attach_path: p.clone(),
                        display: p.clone(),
                        elf_path: p,
                    });
                }
            }
            Ok(Target { files, proc: None })
        }
    }
}

pub(crate) fn process_target(proc: Proc) -> Result<Target> {
    let exe = PathBuf::from(format!("/proc/{}/exe", proc.pid));
    let mut files = vec![ProbeFile {
        attach_path: exe.clone(),
        display: proc.exe.clone(),
        elf_path: exe,
    }];
    files.extend(node::mapped_rocksdb_libs(proc.pid));
    Ok(Target {
        files,
        proc: Some(proc),
    })
}

/// The attach note; the details (left out, absent) only the first time.
fn describe_plan(plan: &Plan, proc: Option<&Proc>, backend: Backend, again: bool) {
    let who = match proc {
        Some(p) => format!("pid {} ({})", p.pid, p.comm),
        None => "every process of the file".to_string(),
    };
    note(format!(
        "attached {} RocksDB functions ({} probes, {}) in {} for {who}",
        plan.attach.len(),
        plan.attach.len() * 2,
        match backend {
            Backend::Multi => "uprobe_multi links",
            Backend::Single => "one link per probe",
        },
        rdb::describe_files(plan)
    ));
    if again {
        return;
    }
    for l in plan.left_out() {
        note(format!("left out {} ({}): {}", l.function, l.op, l.reason));
    }
    if !plan.absent.is_empty() {
        note(format!(
            "not in the target (skipped): {}",
            plan.absent.join(", ")
        ));
    }
}

type Key = (u32, u64, usize);

/// Turns cumulative samples into interval and whole-capture reports. A
/// capture may span several processes (restarts of the target): each one is
/// a session with maps of its own, whose counters start from zero.
pub struct Aggregator {
    /// Current session: cumulative counters at the last read, and the exact
    /// maximum over all its intervals, per (tgid, db, function).
    prev: HashMap<Key, OpStats>,
    max: HashMap<Key, u64>,
    /// Sessions that ended, summed per function.
    closed: HashMap<usize, OpStats>,
    ops: BTreeSet<Op>,
    funcs: BTreeSet<usize>,
    by_function: bool,
    pid: Option<u32>,
    start: Instant,
    last: Instant,
    drops: Drops,
    user_lost: u64,
    slow_events: u64,
    left_out: Vec<LeftOut>,
    gaps: Gaps,
    /// Cost class of each traced function, for the overhead estimate.
    classes: HashMap<usize, HitClass>,
    /// Attached time and, under a budget, the attached share per interval.
    pub duty: DutyCycle,
}

/// The cost class of a probe; an unclassified first instruction counts as
/// single-stepped (the estimate errs on the side of cost).
fn hit_class(c: &ProbeCost) -> HitClass {
    match c {
        ProbeCost::Emulated(_) => HitClass::Emulated,
        ProbeCost::SingleStep(_) | ProbeCost::Unknown => HitClass::SingleStepped,
    }
}

impl Aggregator {
    pub fn new(by_function: bool) -> Aggregator {
        let now = Instant::now();
        Aggregator {
            prev: HashMap::new(),
            max: HashMap::new(),
            closed: HashMap::new(),
            ops: BTreeSet::new(),
            funcs: BTreeSet::new(),
            by_function,
            pid: None,
            start: now,
            last: now,
            drops: Drops::default(),
            user_lost: 0,
            slow_events: 0,
            left_out: Vec::new(),
            gaps: Gaps::default(),
            classes: HashMap::new(),
            duty: DutyCycle::new(PerHit::default(), None, now),
        }
    }

    /// Per-hit costs (calibrated or default) and the budget, if any.
    pub fn set_overhead(&mut self, per_hit: PerHit, budget_pct: Option<f64>) {
        self.duty = DutyCycle::new(per_hit, budget_pct, self.start);
    }

    /// Traced calls per cost class in `per_func`.
    fn hits(&self, per_func: &HashMap<usize, OpStats>) -> Hits {
        let mut h = Hits::default();
        for (id, st) in per_func {
            let class = self
                .classes
                .get(id)
                .copied()
                .unwrap_or(HitClass::SingleStepped);
            h.add(class, st.count);
        }
        h
    }

    /// A session starts: `plan` is attached in process `pid`.
    pub fn begin(&mut self, plan: &Plan, pid: Option<u32>) {
        self.ops.extend(plan.attach.iter().map(|p| p.def.op));
        self.funcs.extend(plan.attach.iter().map(|p| p.id));
        for p in &plan.attach {
            // The same function in two files: the dearer class.
            let c = hit_class(&p.cost);
            let e = self.classes.entry(p.id).or_insert(c);
            *e = (*e).max(c);
        }
        // Called once the session's probes are attached.
        self.duty.resume(Instant::now());
        for l in plan.left_out() {
            if !self.left_out.contains(&l) {
                self.left_out.push(l);
            }
        }
        self.pid = pid;
    }

    /// The session ends: `rest` are its reads not yet folded in, the last
    /// one taken while every probe was still attached.
    pub fn end(&mut self, rest: &[Sample]) {
        for s in rest {
            let _ = self.interval(s, Instant::now());
        }
        for (key, mut st) in self.prev.drain() {
            st.max_ns = self.max.get(&key).copied().unwrap_or(0);
            self.closed.entry(key.2).or_default().add(&st);
        }
        self.max.clear();
        self.drops.end_session();
    }

    /// The target was traced again after `g`.
    pub fn gap(&mut self, g: Gap) {
        self.gaps.push(g);
    }

    fn rows(&self, per_func: &HashMap<usize, OpStats>, secs: f64) -> (Vec<Row>, Vec<Row>) {
        let mut rows = Vec::new();
        for &op in &self.ops {
            let mut s = OpStats::default();
            for (id, st) in per_func {
                if FUNCS[*id].op == op {
                    s.add(st);
                }
            }
            rows.push(s.row(op.name(), secs, op.is_read(), op.has_bytes()));
        }
        let mut functions = Vec::new();
        if self.by_function {
            for &id in &self.funcs {
                let d = &FUNCS[id];
                let s = per_func.get(&id).cloned().unwrap_or_default();
                functions.push(s.row(d.name, secs, d.op.is_read(), d.op.has_bytes()));
            }
        }
        (rows, functions)
    }

    fn report(&self, per_func: HashMap<usize, OpStats>, secs: f64, is_final: bool) -> Report {
        let (rows, functions) = self.rows(&per_func, secs);
        let d: Vec<u64> = (0..3).map(|i| self.drops.total(i)).collect();
        Report {
            layer: "rocksdb",
            timestamp: rfc3339(SystemTime::now()),
            pid: self.pid,
            interval_secs: secs,
            elapsed_secs: self.start.elapsed().as_secs_f64(),
            is_final,
            rows,
            functions,
            lost_events: d[0] + self.user_lost,
            slow_events: self.slow_events,
            dropped: d[1] + d[2],
            left_out: if is_final {
                self.left_out.clone()
            } else {
                Vec::new()
            },
            gaps: if is_final {
                self.gaps.all()
            } else {
                Vec::new()
            },
            overhead: None,
        }
    }

    /// The report of the interval that `s` closes.
    pub fn interval(&mut self, s: &Sample, now: Instant) -> Report {
        let secs = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        let mut per_func: HashMap<usize, OpStats> = HashMap::new();
        for k in &s.rows {
            let key = (k.tgid, k.db, k.func);
            let mut d = match self.prev.get(&key) {
                Some(p) => k.stats.minus(p),
                None => k.stats.clone(),
            };
            d.max_ns = k.stats.max_ns;
            let m = self.max.entry(key).or_default();
            *m = (*m).max(k.stats.max_ns);
            self.prev.insert(key, k.stats.clone());
            per_func.entry(k.func).or_default().add(&d);
        }
        self.drops.set(s.drops);
        let hits = self.hits(&per_func);
        let mut r = self.report(per_func, secs, false);
        r.gaps = self.gaps.take_new();
        r.overhead = Some(self.duty.interval(hits, now));
        r
    }

    /// The report of the whole capture, every session included.
    pub fn whole(&mut self) -> Report {
        let mut per_func = self.closed.clone();
        for (key, st) in &self.prev {
            let mut st = st.clone();
            st.max_ns = self.max.get(key).copied().unwrap_or(0);
            per_func.entry(key.2).or_default().add(&st);
        }
        let secs = self.start.elapsed().as_secs_f64();
        let hits = self.hits(&per_func);
        let mut r = self.report(per_func, secs, true);
        r.overhead = Some(self.duty.whole(hits));
        r
    }
}

/// How the capture is shown.
#[derive(Clone, Copy, PartialEq, Eq)]
enum View {
    Table,
    Histogram,
    Slow,
    Json,
}

/// What stays the same across the sessions of one capture.
struct Capture<'a> {
    args: &'a RocksdbArgs,
    filter: &'a OpsFilter,
    view: View,
    clock: Clock,
    sigs: Receiver<()>,
    deadline: Receiver<Instant>,
}

/// What a capture accumulates across its sessions.
struct Live {
    agg: Aggregator,
    /// Background work (compactions, flushes, stalls), once a target had
    /// RocksDB's C++ internals.
    bg: Option<BgAggregator>,
    analyzer: Analyzer,
    /// The syscall and net layers' figures for the cause rules.
    causes: CauseInputs,
}

impl Capture<'_> {
    /// A report, with the interval's background work and the alerts active
    /// after it; the final one with the number of alerts raised.
    fn print_report(
        &self,
        out: &mut Out,
        r: &Report,
        b: Option<&Background>,
        alerts: &[Anomaly],
        analyzer: &Analyzer,
    ) -> Result<(), Stop> {
        let extra = || {
            let mut t = b.map(render::background::table).unwrap_or_default();
            t.push_str(&render::background::anomalies(alerts));
            if r.is_final {
                t.push_str(&render::background::alerts_summary(
                    analyzer.alerts(),
                    analyzer.learning(),
                ));
            }
            t
        };
        match self.view {
            View::Json => out.print(&render::json::rocksdb_report(
                r,
                b,
                Some(alerts),
                r.is_final.then_some(analyzer.alerts()),
            )),
            View::Histogram if r.is_final => {
                out.print(&(render::histograms(r) + &render::table(r) + &extra()))
            }
            View::Histogram => out.print(&render::histograms(r)),
            View::Table => out.print(&(render::table(r) + &extra())),
            View::Slow if r.is_final => out.print(&(render::table(r) + &extra())),
            View::Slow => match render::background::anomalies(alerts) {
                t if t.is_empty() => Ok(()),
                t => out.print(&t),
            },
        }
    }

    /// When to detach in the interval just begun: under a budget whose
    /// share is below 1, after that share of the interval; otherwise never.
    fn detach_timer(&self, duty: &DutyCycle) -> Receiver<Instant> {
        let f = duty.fraction();
        if self.args.overhead_budget.is_none() || f >= 1.0 {
            return never();
        }
        after(Duration::from_secs_f64(self.args.interval * f))
    }

    fn print_job(&self, out: &mut Out, e: &BgEvent) -> Result<(), Stop> {
        let j = background::to_job(e, &self.clock);
        out.print(&match self.view {
            View::Json => render::background::job_json(&j),
            _ => render::background::job_line(&j),
        })
    }

    /// Renders slow events on the ring-buffer thread, straight into the
    /// batch's text: one JSON or table line per record, no allocation.
    fn slow_renderer(&self) -> impl FnMut(&[u8], &mut Vec<u8>) -> bool + Send + 'static {
        let (json, clock) = (self.view == View::Json, self.clock);
        let mut stamp = render::slow::Stamp::default();
        move |data, buf| {
            let Some(e) = RdbEvent::parse(data) else {
                return false;
            };
            let thread = render::slow::comm(&e.comm);
            let line = render::slow::SlowRef {
                time: stamp.format(clock.wall(e.ts_ns)),
                pid: e.tgid,
                tid: e.tid,
                thread: &thread,
                op: e.op().name(),
                function: e.function(),
                latency_us: e.lat_ns as f64 / 1000.0,
                bytes: e.bytes,
                miss: e.miss != 0,
                db: e.db,
            };
            if json {
                render::slow::json_line(buf, &line);
            } else {
                render::slow::table_line(buf, &line);
            }
            true
        }
    }

    fn print_event(&self, out: &mut Out, e: &TargetEvent) -> Result<(), Stop> {
        super::print_target(out, e, self.view == View::Json)
    }

    /// Traces one process (or, with --binary, every process of the file)
    /// until the capture stops or the process exits; folds everything it
    /// measured into `agg` and detaches before returning.
    fn session(
        &self,
        target: &Target,
        live: &mut Live,
        out: &mut Out,
        resume: Option<Resume>,
    ) -> Result<Stop> {
        let again = resume.is_some();
        let found = rdb::resolve(target.files.clone()).map_err(|e| match &target.proc {
            Some(p) => e.context(format!("process {} ({})", p.pid, p.comm)),
            None => e,
        })?;
        let plan = Plan::new(&found, self.filter);
        if plan.attach.is_empty() {
            return Err(Failure::new(
                Exit::Usage,
                "none of the selected RocksDB functions is in the target",
            )
            .hint("drop --ops, or pick classes the target has (`ckb-libbpf symbols PATH`)")
            .into());
        }
        let pid = target.proc.as_ref().map(|p| p.pid);
        let cfg = rdb::Config {
            tgid: pid.unwrap_or(0),
            slow_ns: self
                .args
                .slow
                .then(|| self.args.threshold.saturating_mul(1000)),
            empty: self.args.empty_programs,
        };
        // Prefer uprobe_multi links; a kernel without them (before 6.6) fails
        // the load or the attach, and we fall back to one link per function.
        let mut obj_multi = MaybeUninit::uninit();
        let mut obj_single = MaybeUninit::uninit();
        // CKB_LIBBPF_BACKEND=single forces classic uprobes (for comparisons).
        let forced_single = std::env::var("CKB_LIBBPF_BACKEND").as_deref() == Ok("single");
        let multi = if forced_single {
            Err(anyhow::anyhow!("CKB_LIBBPF_BACKEND=single"))
        } else {
            rdb::load(&mut obj_multi, &cfg, Backend::Multi).and_then(|skel| {
                rdb::attach(&skel, &plan, Backend::Multi).map(|links| (skel, links))
            })
        };
        let (skel, links, backend) = match multi {
            Ok((skel, links)) => (skel, links, Backend::Multi),
            Err(e) => {
                note(format!(
                    "uprobe_multi unavailable ({e:#}); attaching one uprobe per function"
                ));
                let skel = rdb::load(&mut obj_single, &cfg, Backend::Single)?;
                let links = rdb::attach(&skel, &plan, Backend::Single)?;
                (skel, links, Backend::Single)
            }
        };
        describe_plan(&plan, target.proc.as_ref(), backend, again);
        // Background work (compactions, flushes, stalls): optional, never
        // fatal; a build without RocksDB's C++ symbols simply lacks it.
        let (mut bg_multi, mut bg_single) = (MaybeUninit::uninit(), MaybeUninit::uninit());
        // Not with --empty-programs: the floor holds nothing of ours but
        // empty programs.
        let started = if self.args.empty_programs {
            Ok(None)
        } else {
            BgTrace::start(
                &mut bg_multi,
                &mut bg_single,
                &target.files,
                cfg.tgid,
                self.args.slow,
            )
        };
        let bgt = match started {
            Ok(Some(t)) => {
                if !again {
                    t.describe().into_iter().for_each(note);
                }
                Some(t)
            }
            Ok(None) => {
                if !again && !self.args.empty_programs {
                    note("RocksDB's C++ internals are not in the target: no background figures");
                }
                None
            }
            Err(e) => {
                note(format!("background layer unavailable: {e:#}"));
                None
            }
        };
        if let (Some(t), None) = (&bgt, &live.bg) {
            live.bg = Some(BgAggregator::new(&t.plan));
        }
        let bmaps = bgt
            .as_ref()
            .map(|t| bgprobe::Maps::new(&t.skel))
            .transpose()?;
        // Cause inputs (syscall, net layers): optional, never fatal.
        let (mut sc_obj, mut net_obj) = (MaybeUninit::uninit(), MaybeUninit::uninit());
        let wanted = if self.args.empty_programs {
            Causes::NONE
        } else {
            self.args.causes
        };
        let (mut ct, notes) = CauseTrace::start(&mut sc_obj, &mut net_obj, wanted, pid);
        if !again {
            notes.into_iter().for_each(note);
        }
        let cmaps = ct.maps()?;
        live.causes.begin();
        let bg_drain = match (&bgt, self.args.slow) {
            (Some(t), true) => Some(RingDrain::spawn(
                bgprobe::events(&t.skel)?,
                4096,
                BgEvent::parse,
            )),
            _ => None,
        };
        let jobs_rx = bg_drain
            .as_ref()
            .map(|d| d.events.clone())
            .unwrap_or_else(never);
        let agg = &mut live.agg;
        agg.begin(&plan, pid);
        let mut links = Some(links);
        let mut detach_at = self.detach_timer(&agg.duty);
        let mut stop = None;
        if let Some(resume) = resume {
            let gap = resume.end();
            stop = self
                .print_event(out, &TargetEvent::Restarted(gap.clone()))
                .err();
            agg.gap(gap);
        }
        let maps = rdb::Maps::new(&skel, &plan)?;
        let events = rdb::events(&skel)?;
        let mut epoch = 0u64;
        let poller = Poller::spawn(Duration::from_secs_f64(self.args.interval), move || {
            let s = rdb::read_sample(&maps, epoch);
            let b = bmaps
                .as_ref()
                .map(|m| bgprobe::read_sample(m, epoch))
                .transpose();
            let c = causes::read(&cmaps, epoch);
            epoch += 1;
            Ok((s?, b?, c?))
        });
        let drain = self
            .args
            .slow
            .then(|| RingLines::spawn(events, self.slow_renderer()));
        let slow_rx = drain
            .as_ref()
            .map(|d| d.batches.clone())
            .unwrap_or_else(never);

        let stop = match stop {
            Some(s) => s,
            None => loop {
                // Set by the branches below, acted on after the select.
                let (mut interval_ended, mut detach_now) = (false, false);
                select! {
                    recv(poller.samples) -> s => {
                        interval_ended = true;
                        let Ok(s) = s else { anyhow::bail!("the map poller thread stopped unexpectedly") };
                        let (s, bs, cs) = s?;
                        let r = agg.interval(&s, Instant::now());
                        let b = match (&mut live.bg, &bs) {
                            (Some(a), Some(bs)) => Some(a.interval(bs)),
                            _ => None,
                        };
                        let obs = live.causes.observe(Observation::from_report(&r, b.as_ref()), &cs);
                        let alerts = live.analyzer.observe(obs);
                        if let Err(stop) = self.print_report(out, &r, b.as_ref(), &alerts, &live.analyzer) { break stop; }
                        if target.proc.as_ref().is_some_and(|p| !p.alive()) {
                            break Stop::TargetExited;
                        }
                    }
                    recv(slow_rx) -> b => {
                        // One write per batch of lines.
                        if let (Ok(b), Some(d)) = (b, &drain) {
                            agg.slow_events += b.events;
                            let r = out.print(text(&b.text));
                            d.recycle(b.text);
                            if let Err(stop) = r { break stop; }
                        }
                    }
                    recv(jobs_rx) -> e => {
                        if let Ok(e) = e {
                            if let Err(stop) = self.print_job(out, &e) { break stop; }
                        }
                    }
                    recv(detach_at) -> _ => detach_now = true,
                    recv(self.sigs) -> _ => break Stop::Signal,
                    recv(self.deadline) -> _ => break Stop::Deadline,
                }
                // --overhead-budget: off for the rest of the interval once
                // its attached share is used up, on again when it ends.
                // Attached time counts from the end of an attach to the
                // start of a detach: it errs short, so the cost when
                // always attached (hits / attached time) errs high, and
                // the budget holds.
                if detach_now {
                    if let Some(l) = links.take() {
                        agg.duty.detached(Instant::now());
                        crate::probe::detach(l);
                    }
                    detach_at = never();
                }
                if interval_ended && self.args.overhead_budget.is_some() {
                    if links.is_none() {
                        match rdb::attach(&skel, &plan, backend) {
                            Ok(l) => {
                                links = Some(l);
                                agg.duty.attached(Instant::now());
                            }
                            Err(_) if target.proc.as_ref().is_some_and(|p| !p.alive()) => {
                                break Stop::TargetExited;
                            }
                            Err(e) => {
                                return Err(e.context(
                                    "attaching the RocksDB probes again (--overhead-budget)",
                                ))
                            }
                        }
                    }
                    detach_at = self.detach_timer(&agg.duty);
                }
            },
        };

        // The final read closes the window while every probe is still live,
        // so all rows cover the same span; then detach.
        let rest = poller.finish()?;
        if let Some(l) = links.take() {
            crate::probe::detach(l);
        }
        let bskel = bgt.map(BgTrace::detach);
        ct.detach();
        let (rest, brest): (Vec<Sample>, Vec<Option<bgprobe::Sample>>) =
            rest.into_iter().map(|(s, b, _)| (s, b)).unzip();
        agg.end(&rest);
        // The last read was taken attached; the session's time ends here.
        agg.duty.detached(Instant::now());
        if let Some(a) = &mut live.bg {
            let brest: Vec<bgprobe::Sample> = brest.into_iter().flatten().collect();
            brest.iter().for_each(|bs| drop(a.interval(bs)));
            if let Some(last) = brest.last() {
                a.end(last);
            }
        }
        if let Some(d) = bg_drain {
            for e in d.finish()? {
                if stop != Stop::OutputClosed {
                    let _ = self.print_job(out, &e);
                }
            }
        }
        if let Some(d) = drain {
            let mut closed = stop == Stop::OutputClosed;
            d.finish(|b| {
                agg.slow_events += b.events;
                closed = closed || out.print(text(&b.text)).is_err();
            })?;
        }
        drop(bskel);
        drop(ct);
        drop(skel);
        Ok(stop)
    }
}

/// The cost of one probe hit per class on this machine, measured through
/// the attach path the capture will use; the documented defaults if that
/// fails. Says which, and with a budget, how it will be kept.
fn calibrate(budget: Option<f64>) -> PerHit {
    use crate::probe::calibrate::calibrate as measure;
    let forced_single = std::env::var("CKB_LIBBPF_BACKEND").as_deref() == Ok("single");
    let measured = if forced_single {
        measure(Backend::Single)
    } else {
        measure(Backend::Multi).or_else(|e| measure(Backend::Single).map_err(|_| e))
    };
    let per_hit = match measured {
        Ok(c) => {
            note(format!(
                "probe cost per hit measured here: {:.1} µs emulated, {:.1} µs single-stepped ({} calibration calls, {} ms)",
                c.per_hit.emulated_ns / 1000.0,
                c.per_hit.single_stepped_ns / 1000.0,
                c.hits,
                c.took.as_millis()
            ));
            c.per_hit
        }
        Err(e) => {
            let d = PerHit::default();
            note(format!(
                "could not measure the probe cost per hit ({e:#}); estimating with {:.0} µs emulated, {:.0} µs single-stepped (BENCHMARKS.md)",
                d.emulated_ns / 1000.0,
                d.single_stepped_ns / 1000.0
            ));
            d
        }
    };
    if let Some(b) = budget {
        note(format!(
            "overhead budget {b} % of one core: probes on for {:.0} % of the first interval, then for as much of each as the budget allows",
            crate::model::overhead::FIRST_FRACTION * 100.0
        ));
    }
    per_hit
}

/// Rendered lines as text: they are built from `str`s only, so the check
/// always passes.
fn text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or("")
}

pub fn run(args: RocksdbArgs) -> Result<Exit> {
    let filter = OpsFilter::parse(args.ops.as_deref())?;
    let sel = match (&args.pid, &args.binary) {
        (Some(pid), _) => Selector::Pid(*pid),
        (None, Some(path)) => Selector::Binary(path.clone()),
        (None, None) => Selector::Name(args.name.clone()),
    };
    crate::probe::require_privileges()?;
    crate::probe::require_kernel_features()?;
    let target = target(&sel)?;
    let view = if args.json {
        View::Json
    } else if args.slow {
        View::Slow
    } else if args.histogram {
        View::Histogram
    } else {
        View::Table
    };
    let cap = Capture {
        args: &args,
        filter: &filter,
        view,
        clock: Clock::new(),
        sigs: signals()?,
        deadline: args.duration.map(after).unwrap_or_else(never),
    };
    let per_hit = calibrate(args.overhead_budget);
    let mut out = Out::new();
    if view == View::Slow {
        out.print(&render::slow_header(args.threshold)).ok();
    }
    let mut live = Live {
        agg: Aggregator::new(args.by_function),
        bg: None,
        analyzer: Analyzer::new(AnalyzeConfig {
            learning_secs: args.baseline_secs,
            multiplier: args.alert_multiplier,
            ..AnalyzeConfig::default()
        }),
        causes: CauseInputs::default(),
    };
    live.agg.set_overhead(per_hit, args.overhead_budget);
    let ended = run_sessions(
        target,
        args.no_follow,
        &cap.sigs,
        &cap.deadline,
        &mut out,
        |t, out, resume| cap.session(t, &mut live, out, resume),
        |out, e| cap.print_event(out, e),
    )?;
    if ended.stop != Stop::OutputClosed {
        let r = live.agg.whole();
        let b = live.bg.as_ref().map(BgAggregator::whole);
        let _ = cap.print_report(&mut out, &r, b.as_ref(), &[], &live.analyzer);
    }
    ended.exit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::rocksdb::KeyStats;

    fn plan_with(names: &[&str]) -> Plan {
        let mut plan = Plan::default();
        for n in names {
            let id = FUNCS.iter().position(|f| f.name == *n).unwrap();
            plan.attach.push(rdb::Planned {
                id,
                def: FUNCS[id],
                file: ProbeFile {
                    attach_path: "/x".into(),
                    display: "/x".into(),
                    elf_path: "/x".into(),
                },
                sym: crate::node::elf::FuncSym {
                    name: n.to_string(),
                    vaddr: 0,
                    size: 0,
                    offset: 0,
                    head: vec![0x55],
                },
                cost: crate::node::insn::classify(&[0x55]),
            });
        }
        plan
    }

    fn ks(func: &str, db: u64, count: u64, max_ns: u64) -> KeyStats {
        let mut s = OpStats::default();
        for _ in 0..count {
            s.count += 1;
            s.total_ns += 1000;
            s.hist.record(1000);
        }
        s.max_ns = max_ns;
        KeyStats {
            tgid: 1,
            db,
            func: FUNCS.iter().position(|f| f.name == func).unwrap(),
            stats: s,
        }
    }

    #[test]
    fn intervals_difference_and_the_summary_accumulates() {
        let plan = plan_with(&["rocksdb_get_pinned_cf", "rocksdb_get", "rocksdb_put"]);
        let mut agg = Aggregator::new(true);
        agg.begin(&plan, Some(1));
        let t0 = agg.start;
        // Two databases hit the same function: rows merge per class.
        let s1 = Sample {
            rows: vec![
                ks("rocksdb_get_pinned_cf", 0xa, 10, 5000),
                ks("rocksdb_get_pinned_cf", 0xb, 5, 7000),
            ],
            drops: [0; 3],
        };
        let r1 = agg.interval(&s1, t0 + Duration::from_secs(1));
        let get = r1.rows.iter().find(|r| r.name == "GET").unwrap();
        assert_eq!(get.count, 15);
        assert_eq!(get.max_us, Some(7.0));
        assert_eq!(r1.rows.iter().find(|r| r.name == "PUT").unwrap().count, 0);

        let s2 = Sample {
            rows: vec![
                ks("rocksdb_get_pinned_cf", 0xa, 12, 2000),
                ks("rocksdb_get_pinned_cf", 0xb, 5, 0),
                ks("rocksdb_put", 0xa, 3, 9000),
            ],
            drops: [2, 0, 0],
        };
        let r2 = agg.interval(&s2, t0 + Duration::from_secs(2));
        let get = r2.rows.iter().find(|r| r.name == "GET").unwrap();
        assert_eq!(get.count, 2);
        assert_eq!(get.qps, 2.0);
        assert_eq!(r2.lost_events, 2);
        let f = r2
            .functions
            .iter()
            .find(|r| r.name == "rocksdb_put")
            .unwrap();
        assert_eq!(f.count, 3);

        let w = agg.whole();
        assert!(w.is_final);
        let get = w.rows.iter().find(|r| r.name == "GET").unwrap();
        assert_eq!(get.count, 17);
        assert_eq!(
            get.max_us,
            Some(7.0),
            "whole-capture max is the max of the intervals"
        );
        assert_eq!(w.rows.iter().find(|r| r.name == "PUT").unwrap().count, 3);
    }

    #[test]
    fn sessions_add_up_even_when_the_pid_repeats() {
        let plan = plan_with(&["rocksdb_get_pinned_cf", "rocksdb_put"]);
        let mut agg = Aggregator::new(false);
        agg.begin(&plan, Some(1));
        let t0 = agg.start;
        let s1 = Sample {
            rows: vec![ks("rocksdb_get_pinned_cf", 0xa, 10, 5000)],
            drops: [1, 0, 0],
        };
        agg.interval(&s1, t0 + Duration::from_secs(1));
        let last = Sample {
            rows: vec![ks("rocksdb_get_pinned_cf", 0xa, 12, 6000)],
            drops: [2, 0, 0],
        };
        agg.end(&[last]);
        // The restarted process got the same PID: its maps start from zero.
        agg.begin(&plan, Some(1));
        agg.gap(Gap {
            old_pid: 1,
            new_pid: 1,
            secs: 2.5,
            ..Gap::default()
        });
        let s2 = Sample {
            rows: vec![ks("rocksdb_get_pinned_cf", 0xa, 3, 1000)],
            drops: [1, 0, 0],
        };
        let r = agg.interval(&s2, t0 + Duration::from_secs(5));
        let get = r.rows.iter().find(|r| r.name == "GET").unwrap();
        assert_eq!(
            get.count, 3,
            "a fresh session is not differenced against the old one"
        );
        assert_eq!(
            r.gaps.len(),
            1,
            "the first interval after a restart shows the gap"
        );
        assert_eq!(r.lost_events, 3, "lost events add up across sessions");
        let r = agg.interval(&s2, t0 + Duration::from_secs(6));
        assert!(r.gaps.is_empty(), "...only once");
        let w = agg.whole();
        let get = w.rows.iter().find(|r| r.name == "GET").unwrap();
        assert_eq!(get.count, 15);
        assert_eq!(get.max_us, Some(6.0));
        assert_eq!(w.gaps.len(), 1);
    }
}
