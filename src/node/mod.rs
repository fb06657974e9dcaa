//! The traced node: what to trace: process discovery (/proc), the files to attach uprobes to,
//! and ELF symbol resolution.

pub mod elf;
pub mod follow;
pub mod insn;
pub mod layout;
pub mod procfs;
pub mod rdbnames;
pub mod symbols;

pub use procfs::{all_pids, mapped_rocksdb_libs, Proc};

use std::path::PathBuf;

use anyhow::Result;

use crate::error::{Exit, Failure};

/// How the user named the target.
#[derive(Clone, Debug)]
pub enum Selector {
    Pid(u32),
    Binary(PathBuf),
    Name(String),
}

/// The process named `name` (comm or executable file name). With several,
/// a `ckb run` beats helpers such as `ckb miner`; if still ambiguous the
/// user must choose with --pid.
pub fn find_by_name(name: &str) -> Result<Proc> {
    let me = std::process::id();
    let mut found: Vec<Proc> = all_pids()
        .into_iter()
        .filter(|&p| p != me)
        .filter_map(Proc::read)
        .filter(|p| {
            p.comm == name
                || p.exe.file_name().is_some_and(|f| f == name)
                || p.exe
                    .file_name()
                    .and_then(|f| f.to_str())
                    .is_some_and(|f| f.strip_suffix(" (deleted)") == Some(name))
        })
        .collect();
    if found.len() > 1 {
        let runs: Vec<Proc> = found
            .iter()
            .filter(|p| p.cmdline().iter().any(|a| a == "run"))
            .cloned()
            .collect();
        if runs.len() == 1 {
            found = runs;
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(
            Failure::new(Exit::Usage, format!("no running process named `{name}`"))
                .hint("start the node, or name it with --pid PID or --binary PATH")
                .into(),
        ),
        _ => {
            let list: Vec<String> = found
                .iter()
                .map(|p| format!("{} ({})", p.pid, p.cmdline().join(" ")))
                .collect();
            Err(Failure::new(
                Exit::Usage,
                format!(
                    "{} processes named `{name}`: {}",
                    found.len(),
                    list.join(", ")
                ),
            )
            .hint("choose one with --pid PID")
            .into())
        }
    }
}

pub fn find_by_pid(pid: u32) -> Result<Proc> {
    Proc::read(pid).ok_or_else(|| {
        Failure::new(Exit::Usage, format!("no process with PID {pid}"))
            .hint("check the PID with `pgrep -a ckb`")
            .into()
    })
}

/// A file to put uprobes in: the path the kernel resolves (for a live
/// process, /proc/PID/exe or /proc/PID/map_files/..., which pin the inode the
/// process runs even after an upgrade replaced the file) and a display name.
#[derive(Clone, Debug)]
pub struct ProbeFile {
    pub attach_path: PathBuf,
    pub display: PathBuf,
    pub elf_path: PathBuf,
}

/// Resolves a DT_NEEDED library name the way the dynamic loader would for
/// the common cases (RUNPATH is not consulted).
pub fn find_library(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    let mut dirs: Vec<PathBuf> = std::env::var("LD_LIBRARY_PATH")
        .unwrap_or_default()
        .split(':')
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect();
    for d in [
        "/lib/x86_64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu",
        "/lib/aarch64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/local/lib",
        "/lib64",
        "/usr/lib64",
        "/lib",
        "/usr/lib",
    ] {
        dirs.push(PathBuf::from(d));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.exists())
}

/// What a capture attaches to, and which process it watches.
#[derive(Clone, Debug)]
pub struct Target {
    pub files: Vec<ProbeFile>,
    /// None with `--binary`: every process of the file, none followed.
    pub proc: Option<Proc>,
}

impl Target {
    /// The target the user named.
    pub fn resolve(sel: &Selector) -> Result<Target> {
        match sel {
            Selector::Pid(pid) => Ok(Target::of(find_by_pid(*pid)?)),
            Selector::Name(name) => Ok(Target::of(find_by_name(name)?)),
            Selector::Binary(path) => {
                let elf = elf::Elf::open(path)?;
                let mut files = vec![ProbeFile {
                    attach_path: path.clone(),
                    display: path.clone(),
                    elf_path: path.clone(),
                }];
                // A dynamically linked node: its RocksDB lives in a library.
                for lib in elf.needed().iter().filter(|n| n.starts_with("librocksdb")) {
                    if let Some(p) = find_library(lib) {
                        files.push(ProbeFile {
                            attach_path: p.clone(),
                            display: p.clone(),
                            elf_path: p,
                        });
                    }
                }
                Ok(Target { files, proc: None })
            }
        }
    }

    /// A live process: its executable through /proc/PID/exe (the inode it
    /// runs, even after an upgrade replaced the file) and the RocksDB
    /// libraries it has mapped.
    pub fn of(proc: Proc) -> Target {
        let exe = PathBuf::from(format!("/proc/{}/exe", proc.pid));
        let mut files = vec![ProbeFile {
            attach_path: exe.clone(),
            display: proc.exe.clone(),
            elf_path: exe,
        }];
        files.extend(mapped_rocksdb_libs(proc.pid));
        Target {
            files,
            proc: Some(proc),
        }
    }
}
