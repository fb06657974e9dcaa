//! `ckb-libbpf rocksdb`: RocksDB C API latency, throughput and hit ratio of a
//! live node, aggregated in the kernel.

use std::collections::{BTreeSet, HashMap};
use std::mem::MaybeUninit;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;
use clap::Args;
use crossbeam_channel::{after, never, select};

use super::{note, rfc3339, signals, Clock, Out, Stop};
use crate::collect::{Poller, RingDrain};
use crate::error::{Exit, Failure};
use crate::model::{LeftOut, OpStats, Report, Row, SlowEvent};
use crate::probe::rocksdb::{self as rdb, Backend, Op, OpsFilter, Plan, RdbEvent, Sample, FUNCS};
use crate::render;
use crate::target::{self, elf::Elf, ProbeFile, Proc, Selector};

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
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0, value_parser = positive_secs)]
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
}

pub(crate) fn positive_secs(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("`{s}` is not a positive number of seconds")),
    }
}

/// What to attach to, and which process to watch.
pub(crate) struct Target {
    pub files: Vec<ProbeFile>,
    pub proc: Option<Proc>,
}

fn target(sel: &Selector) -> Result<Target> {
    match sel {
        Selector::Pid(pid) => process_target(target::find_by_pid(*pid)?),
        Selector::Name(name) => process_target(target::find_by_name(name)?),
        Selector::Binary(path) => {
            let elf = Elf::open(path)?;
            let mut files = vec![ProbeFile {
                attach_path: path.clone(),
                display: path.clone(),
                elf_path: path.clone(),
            }];
            // A dynamically linked node: its RocksDB lives in a library.
            for lib in elf.needed().iter().filter(|n| n.starts_with("librocksdb")) {
                if let Some(p) = target::find_library(lib) {
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
    files.extend(target::mapped_rocksdb_libs(proc.pid));
    Ok(Target {
        files,
        proc: Some(proc),
    })
}

fn describe_plan(plan: &Plan, proc: Option<&Proc>, backend: Backend) {
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

/// Turns cumulative samples into interval and whole-capture reports.
pub struct Aggregator {
    prev: HashMap<(u32, u64, usize), OpStats>,
    max: HashMap<(u32, u64, usize), u64>,
    ops: Vec<Op>,
    funcs: Vec<usize>,
    by_function: bool,
    pid: Option<u32>,
    start: Instant,
    last: Instant,
    user_lost: u64,
    slow_events: u64,
    left_out: Vec<LeftOut>,
}

impl Aggregator {
    pub fn new(plan: &Plan, by_function: bool, pid: Option<u32>) -> Aggregator {
        let ops: BTreeSet<Op> = plan.attach.iter().map(|p| p.def.op).collect();
        let funcs: BTreeSet<usize> = plan.attach.iter().map(|p| p.id).collect();
        let now = Instant::now();
        Aggregator {
            prev: HashMap::new(),
            max: HashMap::new(),
            ops: ops.into_iter().collect(),
            funcs: funcs.into_iter().collect(),
            by_function,
            pid,
            start: now,
            last: now,
            user_lost: 0,
            slow_events: 0,
            left_out: plan.left_out(),
        }
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

    fn report(
        &self,
        per_func: HashMap<usize, OpStats>,
        secs: f64,
        drops: &[u64; 3],
        is_final: bool,
    ) -> Report {
        let (rows, functions) = self.rows(&per_func, secs);
        Report {
            layer: "rocksdb",
            timestamp: rfc3339(SystemTime::now()),
            pid: self.pid,
            interval_secs: secs,
            elapsed_secs: self.start.elapsed().as_secs_f64(),
            is_final,
            rows,
            functions,
            lost_events: drops[0] + self.user_lost,
            slow_events: self.slow_events,
            dropped: drops[1] + drops[2],
            left_out: if is_final {
                self.left_out.clone()
            } else {
                Vec::new()
            },
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
        self.report(per_func, secs, &s.drops, false)
    }

    /// The report of the whole capture (cumulative counters of `s`).
    pub fn whole(&mut self, s: &Sample) -> Report {
        let _ = self.interval(s, Instant::now());
        let mut per_func: HashMap<usize, OpStats> = HashMap::new();
        for (key, st) in &self.prev {
            let mut st = st.clone();
            st.max_ns = self.max.get(key).copied().unwrap_or(0);
            per_func.entry(key.2).or_default().add(&st);
        }
        let secs = self.start.elapsed().as_secs_f64();
        self.report(per_func, secs, &s.drops, true)
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

pub fn run(args: RocksdbArgs) -> Result<Exit> {
    let filter = OpsFilter::parse(args.ops.as_deref())?;
    let sel = match (&args.pid, &args.binary) {
        (Some(pid), _) => Selector::Pid(*pid),
        (None, Some(path)) => Selector::Binary(path.clone()),
        (None, None) => Selector::Name(args.name.clone()),
    };
    crate::probe::require_privileges()?;
    let target = target(&sel)?;
    let found = rdb::resolve(target.files.clone())?;
    let plan = Plan::new(&found, &filter);
    if plan.attach.is_empty() {
        return Err(Failure::new(
            Exit::Usage,
            "none of the selected RocksDB functions is in the target",
        )
        .hint("drop --ops, or pick classes the target has (`ckb-libbpf symbols PATH`)")
        .into());
    }
    let cfg = rdb::Config {
        tgid: target.proc.as_ref().map(|p| p.pid).unwrap_or(0),
        slow_ns: args.slow.then(|| args.threshold.saturating_mul(1000)),
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
        rdb::load(&mut obj_multi, &cfg, Backend::Multi)
            .and_then(|skel| rdb::attach(&skel, &plan, Backend::Multi).map(|links| (skel, links)))
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
    describe_plan(&plan, target.proc.as_ref(), backend);
    let maps = rdb::Maps::new(&skel)?;
    let sigs = signals()?;

    let view = if args.json {
        View::Json
    } else if args.slow {
        View::Slow
    } else if args.histogram {
        View::Histogram
    } else {
        View::Table
    };
    let interval = Duration::from_secs_f64(args.interval);
    let events = rdb::events(&skel)?;
    let mut epoch = 0u64;
    let poller = Poller::spawn(interval, move || {
        let s = rdb::read_sample(&maps, epoch);
        epoch += 1;
        s
    });
    let clock = Clock::new();
    let drain = args
        .slow
        .then(|| RingDrain::spawn(events, 65536, RdbEvent::parse));

    let mut agg = Aggregator::new(&plan, args.by_function, target.proc.as_ref().map(|p| p.pid));
    let mut out = Out::new();
    if view == View::Slow {
        out.print(&render::slow_header(args.threshold)).ok();
    }
    let deadline = args.duration.map(after).unwrap_or_else(never);
    let slow_rx = drain
        .as_ref()
        .map(|d| d.events.clone())
        .unwrap_or_else(never);
    let to_slow = |e: RdbEvent| SlowEvent {
        time: rfc3339(clock.wall(e.ts_ns)),
        pid: e.tgid,
        tid: e.tid,
        thread: e.thread(),
        op: e.op().name(),
        function: e.function(),
        latency_us: e.lat_ns as f64 / 1000.0,
        bytes: e.bytes,
        miss: e.miss != 0,
        db: e.db,
    };
    let print_slow = |out: &mut Out, e: &SlowEvent| -> std::result::Result<(), Stop> {
        match view {
            View::Json => out.print(&render::json::slow_event(e)),
            _ => out.print(&render::slow_line(e)),
        }
    };
    let print_report = |out: &mut Out, r: &Report| -> std::result::Result<(), Stop> {
        match view {
            View::Json => out.print(&render::json::report(r)),
            View::Histogram => out.print(&render::histograms(r)),
            View::Table => out.print(&render::table(r)),
            View::Slow if r.is_final => out.print(&render::table(r)),
            View::Slow => Ok(()),
        }
    };

    let mut slow_count = 0u64;
    let stop = loop {
        select! {
            recv(poller.samples) -> s => {
                let Ok(s) = s else { anyhow::bail!("the map poller thread stopped unexpectedly") };
                let s = s?;
                let r = agg.interval(&s, Instant::now());
                if let Err(stop) = print_report(&mut out, &r) { break stop; }
                if let Some(p) = &target.proc {
                    if !p.alive() { break Stop::TargetExited; }
                }
            }
            recv(slow_rx) -> e => {
                if let Ok(e) = e {
                    slow_count += 1;
                    if let Err(stop) = print_slow(&mut out, &to_slow(e)) { break stop; }
                }
            }
            recv(sigs) -> _ => break Stop::Signal,
            recv(deadline) -> _ => break Stop::Deadline,
        }
    };

    // The final read closes the capture window while every probe is still
    // live, so all rows cover the same span; then detach.
    let mut rest = poller.finish()?;
    crate::probe::detach(links);
    let last = rest.pop();
    for s in &rest {
        agg.interval(s, Instant::now()); // closes intervals never shown; keeps their maxima
    }
    if let Some(d) = drain {
        agg.user_lost = d.dropped.load(std::sync::atomic::Ordering::Relaxed);
        for e in d.finish()? {
            slow_count += 1;
            if stop != Stop::OutputClosed {
                let _ = print_slow(&mut out, &to_slow(e));
            }
        }
    }
    agg.slow_events = slow_count;
    if let (Some(s), true) = (last, stop != Stop::OutputClosed) {
        let r = agg.whole(&s);
        let _ = print_report(&mut out, &r);
        if view == View::Histogram {
            let _ = out.print(&render::table(&r));
        }
    }
    drop(skel);
    match stop {
        Stop::TargetExited => {
            let p = target.proc.as_ref().map(|p| p.pid).unwrap_or(0);
            note(format!("target process {p} exited; all probes detached"));
            Ok(Exit::Runtime)
        }
        _ => Ok(Exit::Ok),
    }
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
                sym: crate::target::elf::FuncSym {
                    name: n.to_string(),
                    vaddr: 0,
                    size: 0,
                    offset: 0,
                    head: vec![0x55],
                },
                cost: crate::target::insn::classify(&[0x55]),
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
        let mut agg = Aggregator::new(&plan, true, Some(1));
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

        let w = agg.whole(&s2);
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
}
