//! `ckb-libbpf rocksdb`: RocksDB C API latency, throughput and hit ratio of a
//! live node, aggregated in the kernel; background work, alerts and their
//! probable causes beside them. A view of the capture engine.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use super::Out;
use crate::analyze::Config as AnalyzeConfig;
use crate::engine::{self, Layers, Options, SlowLine, Snapshot, Stop, View, Want};
use crate::error::Exit;
use crate::model::rocksdb::{OpsFilter, Split};
use crate::model::{BgJob, TargetEvent};
use crate::node::{Selector, Target};
use crate::probe::uprobe;
use crate::render;

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
    /// Print log2 latency histograms per operation (like biolatency). With
    /// --json, every operation and function row gains a `histogram` array.
    #[arg(long)]
    pub histogram: bool,
    /// Log every operation slower than --threshold, one line each, with
    /// its database and column family (named as in --by cf).
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
    /// Also read each GET's value size, for GET's bytes column (off by
    /// default: one read of the traced process's memory a GET, ~110 ns on
    /// a host with speculative-return mitigations, a quarter of the
    /// probes' own cost on a real node; see README "What it costs").
    #[arg(long)]
    pub value_sizes: bool,
    /// Add one row per C function under the classes.
    #[arg(long)]
    pub by_function: bool,
    /// Split the table per database and column family (cf) or per
    /// database (db). JSON reports always carry the `by_cf` rows.
    #[arg(long, value_name = "cf|db", value_parser = Split::parse)]
    pub by: Option<Split>,
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
          value_parser = parse_causes)]
    pub causes: Causes,
    /// Keep the probes' estimated cost to the traced process under PERCENT
    /// of one core (0 < PERCENT <= 100): above it, the RocksDB probes are
    /// detached for part of each interval, and counts and rates then cover
    /// only the attached share (shown with every report).
    #[arg(long, value_name = "PERCENT", value_parser = budget_pct)]
    pub overhead_budget: Option<f64>,
    /// How the uprobes are attached: auto (uprobe_multi links where the
    /// kernel has them, Linux 6.6+, else one link per probe), uprobe_multi,
    /// or uprobe. The environment variable CKB_LIBBPF_BACKEND=multi|single
    /// does the same for scripts.
    #[arg(long, value_name = "KIND", default_value = "auto",
          value_parser = ["auto", "uprobe_multi", "uprobe"])]
    pub backend: String,
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

/// Which cause layers to load (`--causes`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Causes {
    /// fsync latency and futex contention (raw_syscalls: every syscall of
    /// the node pays for it).
    pub syscall: bool,
    /// Peer churn (TCP lifecycle, send and receive).
    pub net: bool,
}

impl Causes {
    pub const NONE: Causes = Causes {
        syscall: false,
        net: false,
    };
    pub const ALL: Causes = Causes {
        syscall: true,
        net: true,
    };
}

/// Parses `--causes`: a comma-separated list of `syscall`, `net`, `all`
/// or `none`.
pub fn parse_causes(s: &str) -> std::result::Result<Causes, String> {
    let mut c = Causes::NONE;
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        match item {
            "syscall" => c.syscall = true,
            "net" => c.net = true,
            "all" => c = Causes::ALL,
            "none" => c = Causes::NONE,
            other => {
                return Err(format!(
                    "`{other}` is not a cause layer (syscall, net, all, none)"
                ))
            }
        }
    }
    Ok(c)
}

/// How the capture is shown.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Table,
    Histogram,
    Slow,
    Json,
}

/// The `rocksdb` view: tables (or histograms, or the slow log) on a
/// terminal, or JSON Lines.
struct Printer {
    mode: Mode,
    /// `--json --histogram`: log2 buckets in every row.
    histograms: bool,
    by: Option<Split>,
    out: Out,
}

impl View for Printer {
    /// A report, with the interval's background work and the alerts active
    /// after it; the final one with the number of alerts raised.
    fn snapshot(&mut self, s: &Snapshot) -> Result<(), Stop> {
        let Some(r) = &s.rocksdb else {
            return Ok(());
        };
        let b = s.background.as_ref();
        let alerts = s.alerts.unwrap_or_default();
        let extra = || {
            let mut t = self
                .by
                .map(|by| render::table::split(r, by))
                .unwrap_or_default();
            t.push_str(&b.map(render::background::table).unwrap_or_default());
            t.push_str(&render::background::anomalies(&s.anomalies));
            if r.is_final {
                t.push_str(&render::background::alerts_summary(
                    alerts.raised,
                    alerts.learning,
                ));
            }
            t
        };
        match self.mode {
            Mode::Json => self.out.print(&render::json::rocksdb_report(
                r,
                b,
                Some(&s.anomalies),
                r.is_final.then_some(alerts.raised),
                self.histograms,
            )),
            Mode::Histogram if r.is_final => self
                .out
                .print(&(render::histograms(r) + &render::table(r) + &extra())),
            Mode::Histogram => self.out.print(&render::histograms(r)),
            Mode::Table => self.out.print(&(render::table(r) + &extra())),
            Mode::Slow if r.is_final => self.out.print(&(render::table(r) + &extra())),
            Mode::Slow => match render::background::anomalies(&s.anomalies) {
                t if t.is_empty() => Ok(()),
                t => self.out.print(&t),
            },
        }
    }

    fn target(&mut self, e: &TargetEvent) -> Result<(), Stop> {
        super::print_target(&mut self.out, e, self.mode == Mode::Json)
    }

    fn slow_line(&self) -> Option<SlowLine> {
        Some(if self.mode == Mode::Json {
            render::slow::json_line
        } else {
            render::slow::table_line
        })
    }

    fn slow_lines(&mut self, text: &str) -> Result<(), Stop> {
        self.out.print(text)
    }

    fn job(&mut self, j: &BgJob) -> Result<(), Stop> {
        self.out.print(&match self.mode {
            Mode::Json => render::background::job_json(j),
            _ => render::background::job_line(j),
        })
    }
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
    crate::probe::require_cookies()?;
    let target = Target::resolve(&sel)?;
    let mode = if args.json {
        Mode::Json
    } else if args.slow {
        Mode::Slow
    } else if args.histogram {
        Mode::Histogram
    } else {
        Mode::Table
    };
    let cause = |on| if on { Want::Optional } else { Want::Off };
    let opts = Options {
        layers: Layers {
            rocksdb: true,
            background: Want::Optional,
            net: cause(args.causes.net),
            syscall: cause(args.causes.syscall),
        },
        interval: Duration::from_secs_f64(args.interval),
        no_follow: args.no_follow,
        duration: args.duration,
        filter,
        by_function: args.by_function,
        value_sizes: args.value_sizes,
        slow_ns: args.slow.then(|| args.threshold.saturating_mul(1000)),
        empty_programs: args.empty_programs,
        overhead_budget: args.overhead_budget,
        uprobe_backend: uprobe::Backend::parse(&args.backend).map_err(anyhow::Error::msg)?,
        jobs: args.slow,
        analyze: Some(AnalyzeConfig {
            learning_secs: args.baseline_secs,
            multiplier: args.alert_multiplier,
            ..AnalyzeConfig::default()
        }),
        ..Options::default()
    };
    let mut view = Printer {
        mode,
        histograms: args.histogram,
        by: args.by,
        out: Out::new(),
    };
    if mode == Mode::Slow {
        view.out.print(&render::slow_header(args.threshold)).ok();
    }
    engine::run(target, &opts, &mut view)?.exit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_lists() {
        assert_eq!(parse_causes("all"), Ok(Causes::ALL));
        assert_eq!(parse_causes("none"), Ok(Causes::NONE));
        assert_eq!(parse_causes("syscall,net"), Ok(Causes::ALL));
        assert_eq!(
            parse_causes("net"),
            Ok(Causes {
                syscall: false,
                net: true
            })
        );
        assert_eq!(
            parse_causes(" syscall , "),
            Ok(Causes {
                syscall: true,
                net: false
            })
        );
        assert!(parse_causes("disk").unwrap_err().contains("`disk`"));
    }
}
