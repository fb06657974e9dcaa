//! The command line: every subcommand, flag and help text, in one place so
//! the binary (`src/main.rs`), the man pages and the shell completions
//! (`ckb-libbpf generate-assets DIR`) come from the same definitions.

use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser, Subcommand};

use crate::cmd;
use crate::error::{Exit, Failure};

pub const AFTER_HELP: &str = "\
Exit codes:
  0  capture finished, or ended by Ctrl-C / SIGTERM
  1  runtime error, or the traced process exited (with --no-follow)
  2  bad arguments: unknown PID, not an ELF file, no RocksDB symbols...
  3  environment: not root / missing CAP_BPF+CAP_PERFMON, kernel lacks a BPF feature
  verify: 1 = not valid (malformed, bad signature, algorithm, issuer mismatch, unexpected issuer)
  report: 1 = a --claim does not hold (the measured value is printed)

Examples:
  sudo ckb-libbpf rocksdb 30s                  # the `ckb` process, 30 s
  sudo ckb-libbpf rocksdb --pid 4242 --json    # JSON Lines until Ctrl-C
  sudo ckb-libbpf rocksdb --slow --threshold 500
  sudo ckb-libbpf rocksdb --binary /usr/lib/x86_64-linux-gnu/librocksdb.so.7.8
  sudo ckb-libbpf net 60s --json               # P2P peers of the `ckb` process
  sudo ckb-libbpf syscall 30s --top 10         # syscalls of `ckb` by thread role
  sudo ckb-libbpf overview                     # all of it in a terminal UI (q quits)";

#[derive(Parser, Debug)]
#[command(
    name = "ckb-libbpf",
    version,
    about = "eBPF deep observability for CKB full nodes",
    long_about = "ckb-libbpf traces a live CKB node with eBPF (uprobes, tracepoints) and \
                  reports in the node's own terms: RocksDB operation latency, throughput \
                  and hit ratio, aggregated in the kernel.",
    after_help = AFTER_HELP
)]
pub struct Cli {
    /// Show libbpf's own diagnostics.
    #[arg(long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub cmd: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// RocksDB C API operations of a live node: count, QPS, latency
    /// percentiles, bytes, hit ratio.
    #[command(after_help = AFTER_HELP)]
    Rocksdb(cmd::rocksdb::RocksdbArgs),
    /// P2P TCP traffic of a live node: bytes and rates per peer, connection
    /// age, retransmits, connect/accept/close log, disconnect-rate alerts.
    #[command(after_help = AFTER_HELP)]
    Net(cmd::net::NetArgs),
    /// Will it work here? Kernel, privileges, BPF features probed for real,
    /// backends per layer; with --binary its symbols, with --pid a live test.
    #[command(after_help = AFTER_HELP)]
    Check(cmd::check::CheckArgs),
    /// Prometheus metrics of a live node on 127.0.0.1:9190 (/metrics):
    /// RocksDB latency histograms, per database and column family, bytes,
    /// misses, background work and stalls, alerts, TCP totals, syscalls,
    /// the tool's own health.
    #[command(after_help = AFTER_HELP)]
    Export(cmd::export::ExportArgs),
    /// Tiered report of what a CKB binary (or librocksdb.so) offers to probe.
    #[command(after_help = AFTER_HELP)]
    Symbols(cmd::symbols::SymbolsArgs),
    /// RocksDB background work alone: compactions, flushes, write stalls
    /// (C++ internals). Hidden: `rocksdb` shows the same figures.
    #[command(hide = true, after_help = AFTER_HELP)]
    Background(cmd::background::BackgroundArgs),
    /// Syscall profile per syscall, category and thread role (compaction,
    /// flush, chain...): latency percentiles, errors, bytes, futex wait
    /// ratio, epoll wakeups, fsync latency.
    #[command(after_help = AFTER_HELP)]
    Syscall(cmd::syscall::SyscallArgs),
    /// The operator's did:key identity (Ed25519): generate, show.
    #[command(after_help = AFTER_HELP)]
    Identity(cmd::identity::IdentityArgs),
    /// A signed report (W3C Verifiable Credential as a vc+jwt) of a capture
    /// file or a live capture, with optional checked claims.
    #[command(after_help = AFTER_HELP)]
    Report(cmd::report::ReportArgs),
    /// Check a signed report: signature, algorithm, issuer; print it.
    #[command(after_help = AFTER_HELP)]
    Verify(cmd::verify::VerifyArgs),
    /// The node at a glance in a terminal: RocksDB, P2P and syscall tabs,
    /// sparklines, an event log of alerts with their causes, slow
    /// operations and restarts; the node's own RPC summary on top.
    #[command(after_help = AFTER_HELP)]
    Overview(cmd::overview::OverviewArgs),
    /// Writes the man pages (section 8) and the bash, zsh and fish
    /// completions into DIR (for packagers: `make install`, `make deb`).
    #[command(hide = true)]
    GenerateAssets {
        /// Output directory: DIR/man8/*.8 and DIR/completions/.
        dir: PathBuf,
    },
}

/// The clap definition of the whole command line.
pub fn command() -> clap::Command {
    Cli::command()
}

/// The shells completions are generated for, with the file name each one's
/// loader looks for.
pub const SHELLS: [(clap_complete::Shell, &str); 3] = [
    (clap_complete::Shell::Bash, "ckb-libbpf"),
    (clap_complete::Shell::Zsh, "_ckb-libbpf"),
    (clap_complete::Shell::Fish, "ckb-libbpf.fish"),
];

/// Writes `dir/man8/ckb-libbpf.8`, one `ckb-libbpf-SUB.8` per visible
/// subcommand, and `dir/completions/{ckb-libbpf,_ckb-libbpf,ckb-libbpf.fish}`.
pub fn generate_assets(dir: &Path) -> anyhow::Result<Exit> {
    let io = |what: &Path, e: std::io::Error| {
        Failure::new(Exit::Usage, format!("cannot write {}: {e}", what.display()))
            .hint("give a directory this user can create and write to")
    };
    let man_dir = dir.join("man8");
    std::fs::create_dir_all(&man_dir).map_err(|e| io(&man_dir, e))?;
    // build() propagates global flags (--verbose) into the subcommands and
    // names them "ckb-libbpf-SUB", which becomes each page's title and file.
    let mut root = command().disable_help_subcommand(true);
    root.build();
    let pages = std::iter::once(root.clone())
        .chain(root.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    for page in pages {
        let man = clap_mangen::Man::new(page)
            .section("8")
            .source(concat!("ckb-libbpf ", env!("CARGO_PKG_VERSION")))
            .manual("ckb-libbpf manual");
        let path = man_dir.join(man.get_filename());
        man.generate_to(&man_dir).map_err(|e| io(&path, e))?;
    }
    let comp_dir = dir.join("completions");
    std::fs::create_dir_all(&comp_dir).map_err(|e| io(&comp_dir, e))?;
    for (shell, file) in SHELLS {
        let path = comp_dir.join(file);
        let mut text = Vec::new();
        clap_complete::generate(shell, &mut command(), "ckb-libbpf", &mut text);
        let mut text = String::from_utf8_lossy(&text).into_owned();
        if shell == clap_complete::Shell::Bash {
            text = fix_bash_hyphen(&text);
        }
        std::fs::write(&path, text).map_err(|e| io(&path, e))?;
    }
    Ok(Exit::Ok)
}

/// clap_complete 4.6 spells a hyphenated binary's subcommand states two
/// ways in bash: the word loop sets `ckb__libbpf__subcmd__rocksdb`, the
/// dispatch arms test `ckb__subcmd__libbpf__subcmd__rocksdb`, so no
/// subcommand flag ever completes (clap-rs/clap#6421, open). Spell the arms
/// the way the loop does; a no-op once clap is fixed.
fn fix_bash_hyphen(text: &str) -> String {
    text.replace("ckb__subcmd__libbpf", "ckb__libbpf")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_consistent() {
        command().debug_assert();
    }

    /// Every subcommand's arguments decode into their structs (a field
    /// whose type does not match its parser only fails at this point).
    #[test]
    fn typical_command_lines_parse() {
        for line in [
            "rocksdb 30s --pid 1 --backend uprobe --causes all --overhead-budget 1",
            "rocksdb --binary /bin/true --slow --threshold 10 --json",
            "net 5 --pid 1 --backend tp_btf --json",
            "syscall --pid 1 --top 5",
            "background --pid 1 --jobs",
            "check --json",
            "export --pid 1 --listen 127.0.0.1:0 --layers all --peers 10 --cf-pairs 8",
            "symbols /bin/true --tier 2",
        ] {
            let args = std::iter::once("ckb-libbpf").chain(line.split_whitespace());
            let cli = Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{line}: {e}"));
            if let Command::Rocksdb(a) = &cli.cmd {
                assert!(crate::probe::uprobe::Backend::parse(&a.backend).is_ok());
            }
        }
    }

    #[test]
    fn exit_code_enum_matches_the_help() {
        assert_eq!(Exit::Ok as i32, 0);
        assert_eq!(Exit::Runtime as i32, 1);
        assert_eq!(Exit::Usage as i32, 2);
        assert_eq!(Exit::Environment as i32, 3);
        assert!(AFTER_HELP.contains("3  environment"));
    }
}
