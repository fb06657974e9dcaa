//! `ckb-libbpf overview`: the node at a glance in a terminal. A view of the
//! capture engine: the engine runs on a worker thread and this view
//! forwards what it gets (snapshots, target, connection and job events,
//! slow lines) to the screen thread, which also reads the keys and the
//! node's RPC summary (`crate::tui`).

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use crossbeam_channel::{bounded, Sender};
use crossterm::event::{self, Event, KeyEvent};

use super::rocksdb::{parse_causes, Causes};
use crate::analyze::Config as AnalyzeConfig;
use crate::engine::{self, Layers, Options, SlowLine, Snapshot, Stop, View, Want};
use crate::error::{Exit, Failure};
use crate::model::net::EventLine;
use crate::model::rocksdb::OpsFilter;
use crate::model::{BgJob, TargetEvent};
use crate::node::procfs::CpuMeter;
use crate::node::{Selector, Target};
use crate::tui::{app::Msg, draw, rpc, term, App};

#[derive(Args, Debug, Clone)]
pub struct OverviewArgs {
    /// Trace this process.
    #[arg(long, value_name = "PID", conflicts_with = "name")]
    pub pid: Option<u32>,
    /// Find the process by name.
    #[arg(long, value_name = "NAME", default_value = "ckb")]
    pub name: String,
    /// Seconds between updates.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0, value_parser = super::positive_secs)]
    pub interval: f64,
    /// The node's JSON-RPC, for the header (tip, peers, tx pool, CPU,
    /// memory). Optional: "RPC unavailable" when it does not answer.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8114")]
    pub rpc: String,
    /// Layers besides RocksDB, comma-separated: `net` (peers, connection
    /// events; on by default), `syscall` (the Syscall tab; off by default:
    /// it traces every syscall of the node, ~0.4 us each), `all`, `none`.
    #[arg(long, value_name = "LIST", default_value = "net", value_parser = parse_causes)]
    pub causes: Causes,
    /// Operation classes or functions to trace, as for `rocksdb --ops`
    /// (default: all but the single-stepped, expensive functions).
    #[arg(long, value_name = "LIST")]
    pub ops: Option<String>,
    /// Also read each GET's value size, as `rocksdb --value-sizes`.
    #[arg(long)]
    pub value_sizes: bool,
    /// Operations slower than this many microseconds go to the slow log.
    #[arg(long, value_name = "MICROSECONDS", default_value_t = 1000)]
    pub threshold: u64,
    /// Learning period of the anomaly detector: no alerts before it ends.
    #[arg(long, value_name = "SECONDS", default_value_t = 300.0)]
    pub baseline_secs: f64,
    /// When the traced process exits, stop instead of waiting for it to
    /// start again.
    #[arg(long)]
    pub no_follow: bool,
}

/// What reaches the screen thread. `Msg` is large (a snapshot is boxed,
/// the RPC status is not) and so are most events: no point boxing it.
#[allow(clippy::large_enum_variant)]
enum Ev {
    Data(Msg),
    Key(KeyEvent),
    Resize,
}

/// The engine-side view: clones what the engine hands it onto the channel.
/// A closed channel (the screen is gone) ends the capture.
struct Forward {
    tx: Sender<Ev>,
    cpu: CpuMeter,
}

impl Forward {
    fn send(&self, m: Msg) -> Result<(), Stop> {
        self.tx.send(Ev::Data(m)).map_err(|_| Stop::OutputClosed)
    }
}

impl View for Forward {
    fn snapshot(&mut self, s: &Snapshot) -> Result<(), Stop> {
        let pid = s.rocksdb.as_ref().and_then(|r| r.pid);
        if let Some(c) = pid.filter(|_| !s.is_final).and_then(|p| self.cpu.sample(p)) {
            self.send(Msg::NodeCpu(c))?;
        }
        self.send(Msg::Snapshot(Box::new(s.clone())))
    }
    fn target(&mut self, e: &TargetEvent) -> Result<(), Stop> {
        self.send(Msg::Target(e.clone()))
    }
    fn slow_line(&self) -> Option<SlowLine> {
        // The panel's own form: the TUI shows lines as they come.
        Some(crate::render::slow::panel_line)
    }
    fn slow_lines(&mut self, text: &str) -> Result<(), Stop> {
        self.send(Msg::Slow(text.to_string()))
    }
    fn job(&mut self, j: &BgJob) -> Result<(), Stop> {
        self.send(Msg::Job(j.clone()))
    }
    fn conn(&mut self, e: &EventLine) -> Result<(), Stop> {
        self.send(Msg::Conn(e.clone()))
    }
}

/// How often the node's RPC is asked (its `get_overview` caches for
/// seconds anyway).
const RPC_EVERY: Duration = Duration::from_secs(3);

pub fn run(args: OverviewArgs) -> Result<Exit> {
    if !std::io::stdout().is_terminal() {
        return Err(Failure::new(
            Exit::Usage,
            "overview draws on a terminal, and standard output is not one",
        )
        .hint("for a pipe or a file use `ckb-libbpf rocksdb` (tables) or `ckb-libbpf rocksdb --json` (JSON Lines)")
        .into());
    }
    let mut client = rpc::Client::new(&args.rpc).map_err(|e| {
        Failure::new(Exit::Usage, format!("--rpc: {e:#}"))
            .hint("give the node's RPC as http://HOST:PORT, e.g. http://127.0.0.1:8114")
    })?;
    let filter = OpsFilter::parse(args.ops.as_deref())?;
    crate::probe::require_privileges()?;
    crate::probe::require_kernel_features()?;
    let sel = match args.pid {
        Some(pid) => Selector::Pid(pid),
        None => Selector::Name(args.name.clone()),
    };
    let target = Target::resolve(&sel)?;
    let label = match args.pid {
        Some(pid) => format!("pid {pid}"),
        None => args.name.clone(),
    };

    let (tx, rx) = bounded::<Ev>(4096);
    let (stop_tx, stop_rx) = bounded::<()>(1);
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
        filter,
        value_sizes: args.value_sizes,
        slow_ns: Some(args.threshold.saturating_mul(1000)),
        jobs: true,
        top: 0,
        analyze: Some(AnalyzeConfig {
            learning_secs: args.baseline_secs,
            ..AnalyzeConfig::default()
        }),
        totals: true,
        stop: Some(stop_rx),
        ..Options::default()
    };

    // The signal handler before the screen: a SIGTERM from here on ends
    // the capture and gives the terminal back, never kills us in raw mode.
    engine::signals()?;
    // Testing aid (README): a panic in the draw loop once data is on the
    // screen, to show the terminal comes back from one.
    let panic_fault = crate::probe::fault("overview-panic");
    let mut screen = term::Screen::enter()?;
    let t = tx.clone();
    let captured = term::capture_stderr(move |l| {
        let _ = t.send(Ev::Data(Msg::Note(l)));
    })?;

    let t = tx.clone();
    let engine = std::thread::Builder::new()
        .name("capture".into())
        .spawn(move || {
            let mut view = Forward {
                tx: t.clone(),
                cpu: CpuMeter::default(),
            };
            let r = engine::run(target, &opts, &mut view).and_then(|e| {
                let why = match e.stop {
                    Stop::Signal => "stopped by a signal",
                    Stop::Deadline => "duration reached",
                    Stop::TargetExited => "the node exited",
                    Stop::OutputClosed => "the screen closed",
                };
                e.exit().map(|code| (why, code))
            });
            let (why, code) = match &r {
                Ok((why, code)) => (why.to_string(), *code as i32),
                Err(e) => (format!("{e:#}"), crate::error::exit_code(e) as i32),
            };
            let _ = t.send(Ev::Data(Msg::Ended(why, code)));
            r.map(|(_, code)| code)
        })?;

    let t = tx.clone();
    std::thread::Builder::new()
        .name("rpc".into())
        .spawn(move || loop {
            if t.send(Ev::Data(Msg::Rpc(client.status()))).is_err() {
                return;
            }
            std::thread::sleep(RPC_EVERY);
        })?;
    let t = tx;
    std::thread::Builder::new()
        .name("keys".into())
        .spawn(move || loop {
            let ev = match event::read() {
                Ok(Event::Key(k)) => Ev::Key(k),
                Ok(Event::Resize(..)) => Ev::Resize,
                Ok(_) => continue,
                Err(_) => return,
            };
            if t.send(ev).is_err() {
                return;
            }
        })?;

    let mut app = App::new(label, args.interval, args.rpc.clone());
    let mut ended = false;
    let drawn = (|| -> Result<()> {
        screen.terminal.draw(|f| draw::draw(f, &app))?;
        // One redraw per burst of messages: a snapshot, its connection
        // events and the keys pressed meanwhile cost one frame.
        while let Ok(first) = rx.recv() {
            for ev in std::iter::once(first).chain(rx.try_iter()) {
                match ev {
                    Ev::Data(Msg::Ended(why, code)) => {
                        app.data.apply(Msg::Ended(why, code));
                        ended = true;
                    }
                    Ev::Data(m) => app.data.apply(m),
                    Ev::Key(k) => {
                        app.key(k);
                    }
                    Ev::Resize => screen.terminal.autoresize()?,
                }
            }
            if app.quit || ended {
                break;
            }
            app.clamp(draw::row_counts(app.view()));
            screen.terminal.draw(|f| {
                if panic_fault && app.data.intervals > 0 {
                    panic!("CKB_LIBBPF_FAULT=overview-panic: a panic while drawing");
                }
                draw::draw(f, &app)
            })?;
        }
        Ok(())
    })();
    // Give the terminal back first, then stop the capture: its final read
    // and detach take a moment, and errors must reach a normal screen.
    drop(screen);
    drop(stop_tx);
    // Also unblocks the stderr reader, which forwards into this channel.
    drop(rx);
    let result = match engine.join() {
        Ok(r) => r,
        Err(_) => Err(anyhow::anyhow!("the capture thread panicked")),
    };
    for l in captured.lines() {
        eprintln!("{l}");
    }
    drawn?;
    result
}
