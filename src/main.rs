//! ckb-libbpf: eBPF deep observability for CKB full nodes.

use ckb_libbpf::cmd;
use ckb_libbpf::error::{exit_code, remedy};
use clap::{Parser, Subcommand};

const AFTER_HELP: &str = "\
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
struct Cli {
    /// Show libbpf's own diagnostics.
    #[arg(long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    cmd: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
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
    /// RocksDB latency histograms, bytes, misses, background work and
    /// stalls, alerts, TCP totals, syscalls, the tool's own health.
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
}

fn libbpf_print(level: libbpf_rs::PrintLevel, msg: String) {
    if level != libbpf_rs::PrintLevel::Debug {
        eprint!("libbpf: {msg}");
    }
}

fn main() {
    let cli = Cli::parse();
    if cli.verbose {
        libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Info, libbpf_print)));
    } else {
        libbpf_rs::set_print(None);
    }
    let result = match cli.cmd {
        Command::Rocksdb(args) => cmd::rocksdb::run(args),
        Command::Net(args) => cmd::net::run(args),
        Command::Export(args) => cmd::export::run(args),
        Command::Symbols(args) => cmd::symbols::run(args),
        Command::Check(args) => cmd::check::run(args),
        Command::Background(args) => cmd::background::run(args),
        Command::Syscall(args) => cmd::syscall::run(args),
        Command::Identity(args) => cmd::identity::run(args),
        Command::Report(args) => cmd::report::run(args),
        Command::Verify(args) => cmd::verify::run(args),
        Command::Overview(args) => cmd::overview::run(args),
    };
    let code = match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("ckb-libbpf: error: {err:#}");
            if let Some(r) = remedy(&err) {
                eprintln!("ckb-libbpf: hint: {r}");
            }
            exit_code(&err)
        }
    };
    std::process::exit(code as i32);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ckb_libbpf::error::Exit;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
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
            "export --pid 1 --listen 127.0.0.1:0 --layers all --peers 10",
            "symbols /bin/true --tier 2",
        ] {
            let args = std::iter::once("ckb-libbpf").chain(line.split_whitespace());
            let cli = Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{line}: {e}"));
            if let Command::Rocksdb(a) = &cli.cmd {
                assert!(ckb_libbpf::probe::uprobe::Backend::parse(&a.backend).is_ok());
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
