//! `ckb-libbpf export`: the capture as Prometheus metrics, for a node watched
//! for months. A view of the capture engine: every interval it turns the
//! whole-capture totals into the metric view and swaps the page scrapers
//! read; scrapes never reach the capture.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use crate::analyze::Config as AnalyzeConfig;
use crate::engine::{self, Layers, Options, Snapshot, Stop, View, Want};
use crate::error::{note, Exit, Failure};
use crate::export::{self, view::Builder, Exporter};
use crate::model::TargetEvent;
use crate::node::{Selector, Target};

#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    /// Trace this process.
    #[arg(long, value_name = "PID", conflicts_with_all = ["binary", "name"])]
    pub pid: Option<u32>,
    /// Trace every process running this executable or using this
    /// librocksdb.so (RocksDB layers only: the default layers become
    /// rocksdb,background).
    #[arg(long, value_name = "PATH", conflicts_with = "name")]
    pub binary: Option<PathBuf>,
    /// Find the process by name.
    #[arg(long, value_name = "NAME", default_value = "ckb")]
    pub name: String,
    /// Where to serve /metrics: ADDR:PORT. Another address than loopback
    /// only when given.
    #[arg(long, value_name = "ADDR:PORT", default_value = export::DEFAULT_LISTEN)]
    pub listen: String,
    /// Layers, comma-separated: rocksdb, background, net, syscall, all.
    /// syscall traces every syscall of the node (~0.4 µs each): on request.
    /// Default: rocksdb,background,net (with --binary: rocksdb,background;
    /// net and syscall follow one process).
    #[arg(long, value_name = "LIST")]
    pub layers: Option<String>,
    /// Per-peer series (peer = remote IP), at most N peers; the rest are
    /// summed as peer="other". Without it, totals only.
    #[arg(long, value_name = "N")]
    pub peers: Option<usize>,
    /// Per column family series: at most N (database, column family)
    /// pairs get their own; later ones are summed as cf="other". 0: none.
    #[arg(long, value_name = "N", default_value_t = export::DEFAULT_CF_PAIRS)]
    pub cf_pairs: usize,
    /// RocksDB operation classes or functions to trace, as `rocksdb --ops`
    /// (single-stepped functions only when named).
    #[arg(long, value_name = "LIST")]
    pub ops: Option<String>,
    /// Also read each GET's value size, as `rocksdb --value-sizes`.
    #[arg(long)]
    pub value_sizes: bool,
    /// Seconds between metric updates.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0, value_parser = super::positive_secs)]
    pub interval: f64,
    /// Learning period of the anomaly detector: no alerts before it ends.
    #[arg(long, value_name = "SECONDS", default_value_t = 300.0)]
    pub baseline_secs: f64,
    /// When the traced process exits, stop (exit code 1) instead of waiting
    /// for it to start again.
    #[arg(long)]
    pub no_follow: bool,
}

/// The layers without `--layers`: every process of a file (`--binary`) has
/// no one process for net and syscall to follow.
fn default_layers(args: &ExportArgs) -> &'static str {
    if args.binary.is_some() && args.pid.is_none() {
        "rocksdb,background"
    } else {
        "rocksdb,background,net"
    }
}

/// Parses `--layers`.
fn layers(spec: &str) -> Result<Layers> {
    let mut l = Layers::default();
    for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        match item {
            "rocksdb" => l.rocksdb = true,
            "background" => l.background = Want::Optional,
            "net" => l.net = Want::Required,
            "syscall" => l.syscall = Want::Required,
            "all" => {
                l = Layers {
                    rocksdb: true,
                    background: Want::Optional,
                    net: Want::Required,
                    syscall: Want::Required,
                }
            }
            other => {
                return Err(Failure::new(
                    Exit::Usage,
                    format!("--layers: `{other}` is not a layer"),
                )
                .hint("use rocksdb, background, net, syscall or all, comma-separated")
                .into())
            }
        }
    }
    if !(l.rocksdb || l.background.on() || l.net.on() || l.syscall.on()) {
        return Err(Failure::new(Exit::Usage, "--layers names no layer")
            .hint("e.g. --layers rocksdb,background,net")
            .into());
    }
    Ok(l)
}

/// Publishes every snapshot's totals.
struct Publisher {
    exporter: Exporter,
    builder: Builder,
}

impl View for Publisher {
    fn snapshot(&mut self, s: &Snapshot) -> Result<(), Stop> {
        for (layer, n) in &s.attached {
            self.builder.attached(layer, *n);
        }
        if let Some(v) = self.builder.view(s) {
            self.exporter.publish(&v);
        }
        Ok(())
    }

    fn target(&mut self, e: &TargetEvent) -> Result<(), Stop> {
        self.builder.target(e);
        Ok(())
    }
}

pub fn run(args: ExportArgs) -> Result<Exit> {
    let layers = layers(args.layers.as_deref().unwrap_or(default_layers(&args)))?;
    let filter = crate::model::rocksdb::OpsFilter::parse(args.ops.as_deref())?;
    let addr = export::parse_listen(&args.listen)?;
    crate::probe::require_privileges()?;
    crate::probe::require_kernel_features()?;
    if layers.rocksdb || layers.background.on() {
        crate::probe::require_cookies()?;
    }
    let sel = match (&args.pid, &args.binary) {
        (Some(pid), _) => Selector::Pid(*pid),
        (None, Some(path)) => Selector::Binary(path.clone()),
        (None, None) => Selector::Name(args.name.clone()),
    };
    let target = Target::resolve(&sel)?;
    let exporter = Exporter::start(
        addr,
        export::Options {
            peers: args.peers,
            cf_pairs: args.cf_pairs,
        },
    )?;
    note(format!(
        "serving Prometheus metrics on http://{}/metrics",
        exporter.local_addr()
    ));
    let opts = Options {
        layers,
        interval: Duration::from_secs_f64(args.interval),
        no_follow: args.no_follow,
        filter,
        value_sizes: args.value_sizes,
        analyze: layers.rocksdb.then(|| AnalyzeConfig {
            learning_secs: args.baseline_secs,
            ..AnalyzeConfig::default()
        }),
        totals: true,
        ..Options::default()
    };
    let mut view = Publisher {
        exporter,
        builder: Builder::default(),
    };
    let ended = engine::run(target, &opts, &mut view);
    view.exporter.stop();
    ended?.exit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_lists() {
        let l = layers("rocksdb,net").unwrap();
        assert!(l.rocksdb && l.net == Want::Required && !l.syscall.on());
        let l = layers("all").unwrap();
        assert!(l.rocksdb && l.background.on() && l.net.on() && l.syscall.on());
        assert!(layers("disk").is_err());
        assert!(layers(",").is_err());
    }

    #[test]
    fn binary_defaults_to_the_rocksdb_layers() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            a: ExportArgs,
        }
        let parse = |argv: &[&str]| {
            let c = Cli::try_parse_from(std::iter::once("x").chain(argv.iter().copied()))
                .expect("parses");
            layers(c.a.layers.as_deref().unwrap_or(default_layers(&c.a))).expect("layers")
        };
        let l = parse(&["--binary", "/bin/true"]);
        assert!(l.rocksdb && l.background.on() && !l.net.on() && !l.syscall.on());
        let l = parse(&[]);
        assert!(l.rocksdb && l.net.on() && !l.syscall.on());
        let l = parse(&["--binary", "/bin/true", "--layers", "rocksdb"]);
        assert!(l.rocksdb && !l.background.on());
    }
}
