//! The traced node: what to trace: process discovery (/proc), the files to attach uprobes to,
//! and ELF symbol resolution.

pub mod elf;
pub mod follow;
pub mod insn;
pub mod symbols;

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::error::{Exit, Failure};

/// How the user named the target.
#[derive(Clone, Debug)]
pub enum Selector {
    Pid(u32),
    Binary(PathBuf),
    Name(String),
}

/// A live process we trace, identified beyond its PID (PIDs get reused).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proc {
    pub pid: u32,
    pub start_time: u64,
    pub comm: String,
    pub exe: PathBuf,
}

impl Proc {
    pub fn read(pid: u32) -> Option<Proc> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Field 22 (starttime) counts after the parenthesised comm.
        let rest = &stat[stat.rfind(')')? + 2..];
        let start_time = rest.split_whitespace().nth(19)?.parse().ok()?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .ok()?
            .trim_end()
            .to_string();
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
        Some(Proc {
            pid,
            start_time,
            comm,
            exe,
        })
    }

    /// Still the same process (not exited, PID not reused)?
    pub fn alive(&self) -> bool {
        Proc::read(self.pid).is_some_and(|p| p.start_time == self.start_time)
    }

    /// argv, as /proc/PID/cmdline gives it.
    pub fn cmdline(&self) -> Vec<String> {
        std::fs::read(format!("/proc/{}/cmdline", self.pid))
            .map(|b| {
                b.split(|&c| c == 0)
                    .filter(|s| !s.is_empty())
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

pub fn all_pids() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
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

/// Mapped files of `pid` whose name looks like a RocksDB library.
pub fn mapped_rocksdb_libs(pid: u32) -> Vec<ProbeFile> {
    let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) else {
        return Vec::new();
    };
    let mut out: Vec<ProbeFile> = Vec::new();
    for line in maps.lines() {
        let mut parts = line.split_whitespace();
        let (Some(range), Some(_perms)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Some(path) = parts.nth(3) else { continue };
        let is_rocks = Path::new(path)
            .file_name()
            .and_then(|f| f.to_str())
            .is_some_and(|f| f.starts_with("librocksdb"));
        if is_rocks && !out.iter().any(|f| f.display == Path::new(path)) {
            let attach = PathBuf::from(format!("/proc/{pid}/map_files/{range}"));
            out.push(ProbeFile {
                attach_path: attach.clone(),
                display: PathBuf::from(path),
                elf_path: attach,
            });
        }
    }
    out
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
