//! `report`: a signed W3C Verifiable Credential from a capture (wiring
//! only: evidence::{capture, vc, jws} do the work).

use std::collections::BTreeSet;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, Result};
use clap::{ArgGroup, Args};

use crate::error::{Exit, Failure};
use crate::evidence::claim::{self, Claim};
use crate::evidence::{capture, did_key, jws, keyfile, live, vc};

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("source").required(true).args(["input", "pid", "name"])))]
pub struct ReportArgs {
    /// Capture for this long (live mode; 30s, 5m, 24h). Without it, until
    /// Ctrl-C or SIGTERM.
    #[arg(value_name = "DURATION", value_parser = super::parse_duration, conflicts_with = "input")]
    pub duration: Option<Duration>,
    /// The JSON Lines of a `--json` capture (`rocksdb`, `net`, `syscall`;
    /// several concatenated); `-` reads standard input.
    #[arg(long, value_name = "CAPTURE.jsonl")]
    pub input: Option<PathBuf>,
    /// Capture this process live (this program's rocksdb/net/syscall
    /// subcommands run as children).
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,
    /// Capture the process with this name live.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// The private key file (default as for `identity generate`).
    #[arg(long, value_name = "PATH")]
    pub key: Option<PathBuf>,
    /// Layers to disclose, comma-separated: rocksdb, background, anomalies,
    /// net, syscall, all [default: with --input every layer the capture
    /// has; live: rocksdb,background,anomalies].
    #[arg(long, value_name = "LAYERS", value_parser = vc::parse_include)]
    pub include: Option<BTreeSet<String>>,
    /// Include peer addresses (left out by default).
    #[arg(long)]
    pub include_peers: bool,
    /// A threshold checked against the data and stated in the report only
    /// when true, e.g. `rocksdb.GET.p99_us<1000` (<, <=, >, >=). Repeatable.
    #[arg(long, value_name = "EXPR", value_parser = claim::parse)]
    pub claim: Vec<Claim>,
    /// Write the signed report here instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// With --input: the node's executable, for its SHA-256, build-id and
    /// CKB version (live mode reads /proc/PID/exe).
    #[arg(long, value_name = "PATH", requires = "input")]
    pub node_binary: Option<PathBuf>,
    /// Live mode: `rocksdb --ops` (operation classes or functions).
    #[arg(long, value_name = "LIST", conflicts_with = "input")]
    pub ops: Option<String>,
    /// Live mode: `rocksdb --value-sizes` (GET bytes).
    #[arg(long, conflicts_with = "input")]
    pub value_sizes: bool,
}

fn read_input(path: &Path) -> Result<String> {
    let mut s = String::new();
    if path == Path::new("-") {
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading the capture from standard input")?;
        return Ok(s);
    }
    std::fs::read_to_string(path).map_err(|e| {
        Failure::new(Exit::Usage, format!("cannot read {}: {e}", path.display()))
            .hint("record one with `ckb-libbpf rocksdb --json 60s > CAPTURE.jsonl`")
            .into()
    })
}

pub fn run(args: ReportArgs) -> Result<Exit> {
    // The key first: a missing or too-open key must not cost a capture.
    let key_path = super::identity::key_path(args.key.clone())?;
    let key = keyfile::read(&key_path)?;

    let (lines, node, default_include) = if let Some(input) = &args.input {
        let text = read_input(input)?;
        let binary = match &args.node_binary {
            Some(p) => Some(vc::binary(p, p).map_err(|e| {
                anyhow::Error::from(
                    Failure::new(Exit::Usage, format!("--node-binary: {e:#}"))
                        .hint("name the node's executable, e.g. /usr/bin/ckb"),
                )
            })?),
            None => None,
        };
        let lines: Vec<String> = text.lines().map(String::from).collect();
        (lines, vc::Node::here(binary), None)
    } else {
        let proc = match (&args.pid, &args.name) {
            (Some(pid), _) => crate::node::find_by_pid(*pid)?,
            (None, Some(name)) => crate::node::find_by_name(name)?,
            (None, None) => unreachable_source()?,
        };
        let include = args.include.clone().unwrap_or_else(|| {
            ["rocksdb", "background", "anomalies"]
                .iter()
                .map(|s| s.to_string())
                .collect()
        });
        // The node's binary before the capture: the process may restart.
        let exe = PathBuf::from(format!("/proc/{}/exe", proc.pid));
        let binary = vc::binary(&exe, &proc.exe).ok();
        let spec = live::Spec {
            pid: proc.pid,
            duration: args.duration,
            rocksdb: ["rocksdb", "background", "anomalies"]
                .iter()
                .any(|l| include.contains(*l)),
            net: include.contains("net"),
            syscall: include.contains("syscall"),
            ops: args.ops.clone(),
            value_sizes: args.value_sizes,
        };
        let lines = live::capture(&spec)?;
        (lines, vc::Node::here(binary), Some(include))
    };

    let what = args.input.as_ref().map_or_else(
        || "the live capture".to_string(),
        |p| p.display().to_string(),
    );
    let cap = capture::parse(&what, lines.iter().map(String::as_str))?;
    let include = args.include.clone().or(default_include).unwrap_or_else(|| {
        let mut s = BTreeSet::new();
        if let Some(r) = &cap.rocksdb {
            s.insert("rocksdb".to_string());
            if r.background.is_some() {
                s.insert("background".into());
            }
            if r.anomalies.is_some() {
                s.insert("anomalies".into());
            }
        }
        if cap.net.is_some() {
            s.insert("net".into());
        }
        if cap.syscall.is_some() {
            s.insert("syscall".into());
        }
        s
    });
    let opts = vc::Options {
        include,
        include_peers: args.include_peers,
        claims: args.claim.clone(),
    };
    let subject = vc::subject(&cap, &node, &opts)?;
    let did = did_key::did(&key.verifying_key());
    let credential = vc::credential(&did, SystemTime::now(), subject);
    let token = jws::sign(&key, credential.to_string().as_bytes());
    match &args.output {
        Some(p) => {
            std::fs::write(p, format!("{token}\n"))
                .with_context(|| format!("writing {}", p.display()))?;
            crate::error::note(format!("report signed by {did} written to {}", p.display()));
        }
        None => {
            let mut out = super::Out::new();
            // A closed pipe is the reader's choice, as elsewhere.
            let _ = out.print(&token);
        }
    }
    Ok(Exit::Ok)
}

fn unreachable_source() -> Result<crate::node::Proc> {
    Err(Failure::new(Exit::Usage, "report needs --input, --pid or --name").into())
}
