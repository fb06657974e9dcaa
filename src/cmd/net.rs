//! `ckb-libbpf net`: the P2P layer. Per peer: bytes each way, rates,
//! connection age, retransmits; connect/accept/close as a log; an alert when
//! a peer (or the node) disconnects more than 10 times a minute. A view of
//! the capture engine, which follows the node across restarts.

use std::time::Duration;

use clap::Args;

use super::Out;
use crate::engine::{self, Layers, Options, Snapshot, Stop, View, Want};
use crate::error::Exit;
use crate::model::net::EventLine;
use crate::model::TargetEvent;
use crate::node::{Selector, Target};
use crate::probe::net::Variant;
use crate::render::net as render;

#[derive(Args, Debug, Clone)]
pub struct NetArgs {
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
    /// Seconds between reports.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0, value_parser = super::positive_secs)]
    pub interval: f64,
    /// JSON Lines: one object per event and per interval, then one with
    /// "final": true.
    #[arg(long)]
    pub json: bool,
    /// Program flavour: auto picks, per feature, the first that works of
    /// tp_btf, tracepoint, fentry, kprobe. Naming one uses only it.
    #[arg(long, value_name = "KIND", default_value = "auto", value_parser = ["auto", "tp_btf", "tracepoint", "fentry", "kprobe"])]
    pub backend: String,
    /// When the traced process exits, stop (exit code 1) instead of waiting
    /// for the same executable to start again and tracing it.
    #[arg(long)]
    pub no_follow: bool,
}

/// Tables and an event log on a terminal, or JSON Lines.
struct Printer {
    json: bool,
    out: Out,
}

impl View for Printer {
    fn snapshot(&mut self, s: &Snapshot) -> Result<(), Stop> {
        let Some(r) = &s.net else { return Ok(()) };
        self.out.print(&if self.json {
            render::report_json(r)
        } else {
            render::table(r)
        })
    }

    fn target(&mut self, e: &TargetEvent) -> Result<(), Stop> {
        super::print_target(&mut self.out, e, self.json)
    }

    fn conn(&mut self, e: &EventLine) -> Result<(), Stop> {
        self.out.print(&if self.json {
            render::event_json(e)
        } else {
            render::event_line(e)
        })
    }
}

pub fn run(args: NetArgs) -> anyhow::Result<Exit> {
    crate::probe::require_privileges()?;
    crate::probe::require_kernel_features()?;
    let sel = match args.pid {
        Some(pid) => Selector::Pid(pid),
        None => Selector::Name(args.name.clone()),
    };
    let target = Target::resolve(&sel)?;
    let opts = Options {
        layers: Layers {
            net: Want::Required,
            ..Layers::default()
        },
        interval: Duration::from_secs_f64(args.interval),
        no_follow: args.no_follow,
        duration: args.duration,
        net_backend: Variant::from_name(&args.backend),
        ..Options::default()
    };
    let mut view = Printer {
        json: args.json,
        out: Out::new(),
    };
    if !args.json {
        view.out.print(&render::event_header()).ok();
    }
    engine::run(target, &opts, &mut view)?.exit()
}
