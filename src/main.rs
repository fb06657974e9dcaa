//! ckb-libbpf: eBPF deep observability for CKB full nodes. The command line
//! is defined in `cli.rs` (shared with the man pages and completions); this
//! file only runs it.

use ckb_libbpf::cli::{Cli, Command};
use ckb_libbpf::cmd;
use ckb_libbpf::error::{exit_code, remedy};
use clap::Parser;

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
        Command::Symbols(args) => cmd::symbols::run(args),
        Command::Check(args) => cmd::check::run(args),
        Command::Background(args) => cmd::background::run(args),
        Command::Syscall(args) => cmd::syscall::run(args),
        Command::Export(args) => cmd::export::run(args),
        Command::Identity(args) => cmd::identity::run(args),
        Command::Report(args) => cmd::report::run(args),
        Command::Verify(args) => cmd::verify::run(args),
        Command::Overview(args) => cmd::overview::run(args),
        Command::GenerateAssets { dir } => ckb_libbpf::cli::generate_assets(&dir),
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
