//! The capture engine: every layer of one node in one session, one typed
//! snapshot per interval, and views that only read it.
//!
//! A capture runs the layers its `Options` name (RocksDB C API, RocksDB
//! background work, TCP, syscalls) against one target, one *session* per
//! traced process: load and attach, poll every map once per interval on one
//! thread, drain the ring buffers, detach. Each interval it folds the reads
//! into the per-layer aggregators (`model`), feeds the anomaly detector
//! (`analyze`) exact figures, and hands the view one `Snapshot`; at the end
//! a final one covering the whole capture. When the node restarts it
//! follows it (`follow`), so a view sees one capture with gaps.
//!
//! `rocksdb`, `net`, `syscall`, `background` and the long-running views
//! (`export`, `overview`) are all `View`s of this one engine.

pub mod follow;
mod session;
pub use session::map_memory_text;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::Result;
use crossbeam_channel::{after, bounded, never, select, Receiver};

pub use follow::Ended;

use crate::analyze::{Analyzer, Anomaly, Config as AnalyzeConfig};
use crate::error::note;
use crate::model::background::BgAggregator;
use crate::model::net::{EventLine, NetReport, Totals as NetTotals};
use crate::model::overhead::PerHit;
use crate::model::rocksdb::OpsFilter;
use crate::model::syscall::SyscallReport;
use crate::model::{Background, BgJob, Report, TargetEvent};
use crate::node::Target;
use crate::probe::{net as netprobe, syscall as sc, uprobe};
use crate::render::slow::SlowRef;

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

/// How much a capture needs a layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Want {
    #[default]
    Off,
    /// Loaded when it can be; a failure is a note (cause inputs, the
    /// background layer on a build without RocksDB's C++ symbols).
    Optional,
    /// The view shows it: a failure ends the capture with its error.
    Required,
}

impl Want {
    pub fn on(self) -> bool {
        self != Want::Off
    }
}

/// The layers of a capture.
#[derive(Clone, Copy, Debug, Default)]
pub struct Layers {
    pub rocksdb: bool,
    pub background: Want,
    pub net: Want,
    pub syscall: Want,
}

/// What a capture runs, and how.
#[derive(Clone, Debug)]
pub struct Options {
    pub layers: Layers,
    pub interval: Duration,
    /// When the traced process exits, stop instead of following it.
    pub no_follow: bool,
    /// How long to capture; None: until a signal.
    pub duration: Option<Duration>,
    /// RocksDB: which functions, rows per function, slow-event threshold.
    pub filter: OpsFilter,
    pub by_function: bool,
    pub slow_ns: Option<u64>,
    /// RocksDB: read each GET's value size (its bytes).
    pub value_sizes: bool,
    /// Benchmarks: empty programs on the same functions (the floor).
    pub empty_programs: bool,
    pub overhead_budget: Option<f64>,
    /// Forced backends (`--backend`); None: the best that works.
    pub uprobe_backend: Option<uprobe::Backend>,
    pub net_backend: Option<netprobe::Variant>,
    pub syscall_backend: Option<sc::Backend>,
    /// Background jobs through the ring buffer, one event each.
    pub jobs: bool,
    /// Syscall rows in a report (0: all).
    pub top: usize,
    /// The anomaly detector, if the view shows alerts.
    pub analyze: Option<AnalyzeConfig>,
    /// Put the whole capture so far in every snapshot (`Snapshot::totals`).
    pub totals: bool,
    /// Measure the probes' cost per hit at start (the live overhead
    /// estimate); else the documented defaults, silently.
    pub calibrate: bool,
    /// Ends the capture like SIGTERM when a message arrives or every
    /// sender is gone: for views that own the terminal (`overview`),
    /// where Ctrl-C and `q` are keys, not signals.
    pub stop: Option<Receiver<()>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            layers: Layers::default(),
            interval: Duration::from_secs(1),
            no_follow: false,
            duration: None,
            filter: OpsFilter::default(),
            by_function: false,
            slow_ns: None,
            value_sizes: false,
            empty_programs: false,
            overhead_budget: None,
            uprobe_backend: None,
            net_backend: None,
            syscall_backend: None,
            jobs: false,
            top: 0,
            analyze: None,
            totals: false,
            calibrate: true,
            stop: None,
        }
    }
}

/// The whole capture so far, every layer present.
#[derive(Clone, Debug, Default)]
pub struct Totals {
    pub rocksdb: Option<Report>,
    pub background: Option<Background>,
    /// The kernel's TCP counters of every session (exact, monotonic).
    pub net: Option<NetTotals>,
    pub syscall: Option<SyscallReport>,
    /// Times the node was traced again after a restart.
    pub restarts: u64,
}

/// Alerts raised so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AlertCount {
    /// Alerts raised (each counted once, at its onset).
    pub raised: u64,
    /// The detector is still learning its baselines.
    pub learning: bool,
}

/// One interval of every layer of the capture (or, with `is_final`, the
/// whole capture). Layers that are not running are `None`.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub is_final: bool,
    pub rocksdb: Option<Report>,
    pub background: Option<Background>,
    pub net: Option<NetReport>,
    pub syscall: Option<SyscallReport>,
    /// Alerts active after this interval (none in the final snapshot).
    pub anomalies: Vec<Anomaly>,
    /// None without the detector.
    pub alerts: Option<AlertCount>,
    /// The whole capture so far, with `Options::totals`.
    pub totals: Option<Box<Totals>>,
    /// BPF links attached now, per layer ("rocksdb", "background", "net",
    /// "syscall"); 0 while detached (between sessions, under a budget).
    pub attached: Vec<(&'static str, u64)>,
}

/// How slow RocksDB operations are rendered, one line each, on the
/// ring-buffer thread (the hot path: no allocation per event).
pub type SlowLine = fn(&mut Vec<u8>, &SlowRef);

/// What a capture is shown through. Every method may end the capture by
/// returning why (`Stop::OutputClosed`).
pub trait View {
    /// One interval, or (`is_final`) the whole capture.
    fn snapshot(&mut self, s: &Snapshot) -> Result<(), Stop>;
    /// The target exited or came back.
    fn target(&mut self, e: &TargetEvent) -> Result<(), Stop>;
    /// How to render slow RocksDB operations (`Options::slow_ns`).
    fn slow_line(&self) -> Option<SlowLine> {
        None
    }
    /// A batch of slow-operation lines, as `slow_line` rendered them.
    fn slow_lines(&mut self, _text: &str) -> Result<(), Stop> {
        Ok(())
    }
    /// A finished background job (`Options::jobs`).
    fn job(&mut self, _j: &BgJob) -> Result<(), Stop> {
        Ok(())
    }
    /// A TCP connection opened, failed or closed (net layer).
    fn conn(&mut self, _e: &EventLine) -> Result<(), Stop> {
        Ok(())
    }
}

/// A channel that receives one message per SIGINT/SIGTERM/SIGHUP. The
/// handler only sends; the capture loop detaches and reports. The handler
/// is installed once per process; every capture shares its channel.
pub fn signals() -> Result<Receiver<()>> {
    static SIGNALS: OnceLock<Receiver<()>> = OnceLock::new();
    if let Some(rx) = SIGNALS.get() {
        return Ok(rx.clone());
    }
    let (tx, rx) = bounded(4);
    ctrlc::set_handler(move || {
        let _ = tx.try_send(());
    })?;
    Ok(SIGNALS.get_or_init(|| rx).clone())
}

/// One channel for the capture loops to select on: signals and a view's
/// stop requests. A thread forwards both; it ends with the capture (its
/// receiver dropped) or when the view drops its sender, which then reads
/// as a stop too (a disconnected channel is always ready).
fn merged(sigs: Receiver<()>, stop: Receiver<()>) -> Receiver<()> {
    let (tx, rx) = bounded(4);
    std::thread::spawn(move || loop {
        let view_gone = select! {
            recv(sigs) -> _ => false,
            recv(stop) -> m => m.is_err(),
        };
        let sent = tx.try_send(());
        if view_gone || matches!(sent, Err(crossbeam_channel::TrySendError::Disconnected(_))) {
            return;
        }
    });
    rx
}

/// Runs a capture of `target` until its duration, a signal, the output
/// closing, or (with `no_follow`) the target exiting; the view gets every
/// interval and then the final snapshot. Returns how it ended.
pub fn run(target: Target, opts: &Options, view: &mut dyn View) -> Result<Ended> {
    let sigs = signals()?;
    let sigs = match &opts.stop {
        Some(stop) => merged(sigs, stop.clone()),
        None => sigs,
    };
    let deadline = opts.duration.map(after).unwrap_or_else(never);
    let mut cap = session::Capture::new(opts, &target, view, sigs, deadline)?;
    let (sigs, deadline) = (cap.sigs.clone(), cap.deadline.clone());
    let ended = follow::run_sessions(target, opts.no_follow, &sigs, &deadline, &mut cap)?;
    if ended.stop != Stop::OutputClosed {
        cap.final_snapshot();
    }
    Ok(ended)
}

/// The cost of one probe hit per class on this machine, measured through
/// the attach path the capture will use; the documented defaults if that
/// fails. Says which, and with a budget, how it will be kept.
fn calibrate(backend: Option<uprobe::Backend>, budget: Option<f64>) -> PerHit {
    use crate::probe::calibrate::calibrate as measure;
    use uprobe::Backend;
    // The same choice, and fallback, as the capture's attach.
    let forced = Backend::forced(backend);
    let first = Backend::choose(forced);
    let measured = measure(first).or_else(|e| match (forced, first) {
        (None, Backend::Multi) => measure(Backend::Single).map_err(|_| e),
        _ => Err(e),
    });
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

/// The background aggregator of a capture, made when a session first
/// traces background work.
fn bg_aggregator(plan: &crate::probe::background::Plan) -> BgAggregator {
    BgAggregator::new(
        plan.attach.iter().map(|p| p.kind).collect(),
        plan.absent.clone(),
    )
}

/// The analyzer a capture's options ask for.
fn analyzer(opts: &Options) -> Option<Analyzer> {
    opts.analyze.clone().map(Analyzer::new)
}

/// When the duty cycle of `--overhead-budget` detaches next, in the
/// interval just begun: after the attached share of it; never without a
/// budget or at a share of 1.
fn detach_timer(opts: &Options, fraction: f64) -> Receiver<Instant> {
    if opts.overhead_budget.is_none() || fraction >= 1.0 {
        return never();
    }
    after(opts.interval.mul_f64(fraction))
}
