//! `ckb-libbpf syscall`: every syscall of the node, per syscall, category
//! and thread role, timed and aggregated in the kernel. A view of the
//! capture engine, which follows the node across restarts.

use std::time::Duration;

use anyhow::Result;
use clap::Args;

use super::Out;
use crate::engine::{self, Layers, Options, Snapshot, Stop, View, Want};
use crate::error::Exit;
use crate::model::TargetEvent;
use crate::node::{Selector, Target};
use crate::probe::syscall::Backend;
use crate::render::syscall as render;

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

/// Tables on a terminal, or JSON Lines.
struct Printer {
    json: bool,
    out: Out,
}

impl View for Printer {
    fn snapshot(&mut self, s: &Snapshot) -> Result<(), Stop> {
        let Some(r) = &s.syscall else { return Ok(()) };
        self.out.print(&if self.json {
            render::json(r)
        } else {
            render::table(r)
        })
    }

    fn target(&mut self, e: &TargetEvent) -> Result<(), Stop> {
        super::print_target(&mut self.out, e, self.json)
    }
}

pub fn run(args: SyscallArgs) -> Result<Exit> {
    crate::probe::require_privileges()?;
    crate::probe::require_kernel_features()?;
    let sel = match args.pid {
        Some(pid) => Selector::Pid(pid),
        None => Selector::Name(args.name.clone()),
    };
    let target = Target::resolve(&sel)?;
    let opts = Options {
        layers: Layers {
            syscall: Want::Required,
            ..Layers::default()
        },
        interval: Duration::from_secs_f64(args.interval),
        no_follow: args.no_follow,
        duration: args.duration,
        syscall_backend: args.backend.as_deref().and_then(Backend::from_name),
        top: args.top,
        ..Options::default()
    };
    let mut view = Printer {
        json: args.json,
        out: Out::new(),
    };
    engine::run(target, &opts, &mut view)?.exit()
}
