//! `ckb-libbpf background` (hidden): RocksDB background work (compactions,
//! flushes, write stalls) of a live process on its own, for tests and for
//! looking at background work alone. A view of the capture engine; `rocksdb`
//! shows the same figures beside its own.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;

use super::Out;
use crate::engine::{self, Layers, Options, Snapshot, Stop, View, Want};
use crate::error::{Exit, Failure};
use crate::model::{BgJob, TargetEvent};
use crate::node::{Selector, Target};
use crate::render;

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
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0, value_parser = super::positive_secs)]
    pub interval: f64,
    /// JSON Lines: one object per interval, then one with "final": true.
    #[arg(long)]
    pub json: bool,
    /// Print every finished job (compaction, flush, stall) as it ends.
    #[arg(long)]
    pub jobs: bool,
}

/// Tables on a terminal, or JSON Lines.
struct Printer {
    json: bool,
    out: Out,
    pid: Option<u32>,
    start: Instant,
    last: Instant,
}

impl View for Printer {
    fn snapshot(&mut self, s: &Snapshot) -> Result<(), Stop> {
        let Some(b) = &s.background else {
            return Ok(());
        };
        let now = Instant::now();
        let elapsed = now.duration_since(self.start).as_secs_f64();
        let secs = if s.is_final {
            elapsed
        } else {
            now.duration_since(self.last).as_secs_f64()
        };
        self.last = now;
        self.out.print(&match (self.json, s.is_final) {
            (true, _) => render::background::report_json(
                b,
                crate::clock::now_rfc3339(),
                self.pid,
                secs,
                elapsed,
                s.is_final,
                b.lost_events,
            ),
            (false, false) => render::background::table(b),
            (false, true) => format!(
                "=== background summary: {elapsed:.1} s captured ===\n{}",
                render::background::table(b)
            ),
        })
    }

    fn target(&mut self, _e: &TargetEvent) -> Result<(), Stop> {
        Ok(())
    }

    fn job(&mut self, j: &BgJob) -> Result<(), Stop> {
        self.out.print(&if self.json {
            render::background::job_json(j)
        } else {
            render::background::job_line(j)
        })
    }
}

pub fn run(args: BackgroundArgs) -> Result<Exit> {
    crate::probe::require_privileges()?;
    crate::probe::require_cookies()?;
    let sel = match (&args.pid, &args.binary) {
        (Some(pid), _) => Selector::Pid(*pid),
        (None, Some(path)) => Selector::Binary(path.clone()),
        (None, None) => {
            return Err(
                Failure::new(Exit::Usage, "background needs --pid PID or --binary PATH")
                    .hint("e.g. ckb-libbpf background --pid $(pgrep -x ckb)")
                    .into(),
            )
        }
    };
    let target = Target::resolve(&sel)?;
    let opts = Options {
        layers: Layers {
            background: Want::Required,
            ..Layers::default()
        },
        interval: Duration::from_secs_f64(args.interval),
        // Stops when the process exits, as it always did.
        no_follow: true,
        duration: args.duration,
        jobs: args.jobs,
        ..Options::default()
    };
    let now = Instant::now();
    let mut view = Printer {
        json: args.json,
        out: Out::new(),
        pid: target.proc.as_ref().map(|p| p.pid),
        start: now,
        last: now,
    };
    engine::run(target, &opts, &mut view)?.exit()
}
