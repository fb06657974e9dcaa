//! Following a node across restarts and upgrades.
//!
//! The node is identified by its executable *path* (what an upgrade keeps)
//! and its command line (what tells `ckb run` from `ckb miner`, which run the
//! same file), never by name or PID alone: a PID reused by an unrelated
//! process runs another executable and is ignored, and the exited process
//! itself is recognised by its start time. Whether the file changed (an
//! upgrade replaced it) is told by inode and GNU build-id.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::elf::Elf;
use super::{all_pids, mapped_rocksdb_libs, Proc};

/// The executable a process runs: device, inode and build-id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExeId {
    pub dev: u64,
    pub ino: u64,
    pub build_id: Option<String>,
}

impl ExeId {
    /// Read through /proc/PID/exe, which reaches the file the process runs
    /// even after it was replaced or deleted.
    pub fn of(pid: u32) -> Option<ExeId> {
        let path = PathBuf::from(format!("/proc/{pid}/exe"));
        let md = std::fs::metadata(&path).ok()?;
        let build_id = Elf::open(&path).ok().and_then(|e| e.build_id());
        Some(ExeId {
            dev: md.dev(),
            ino: md.ino(),
            build_id,
        })
    }
}

/// The executable path as the kernel shows it, without the " (deleted)" an
/// upgrade leaves on the old process's link.
pub fn exe_path(p: &Proc) -> PathBuf {
    let s = p.exe.to_string_lossy();
    PathBuf::from(s.strip_suffix(" (deleted)").unwrap_or(&s))
}

/// How a restarted node relates to the one that exited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restart {
    pub proc: Proc,
    /// The file differs (inode or build-id): the binary was upgraded.
    pub upgraded: bool,
    pub old_build_id: Option<String>,
    pub new_build_id: Option<String>,
}

/// Recognises the traced node when it starts again.
#[derive(Clone, Debug)]
pub struct Follow {
    exe: PathBuf,
    args: Vec<String>,
    last: Proc,
    id: Option<ExeId>,
    /// RocksDB libraries the node had mapped: a restarted node is attached
    /// only once they are mapped again (the loader maps them after exec).
    libs: Vec<PathBuf>,
}

impl Follow {
    pub fn new(p: &Proc) -> Follow {
        Follow {
            exe: exe_path(p),
            args: p.cmdline(),
            last: p.clone(),
            id: ExeId::of(p.pid),
            libs: mapped_rocksdb_libs(p.pid)
                .into_iter()
                .map(|f| f.display)
                .collect(),
        }
    }

    pub fn exe(&self) -> &Path {
        &self.exe
    }

    /// Is `p` the node again? Same executable path, not the exited process.
    fn matches(&self, p: &Proc) -> bool {
        exe_path(p) == self.exe && !(p.pid == self.last.pid && p.start_time == self.last.start_time)
    }

    /// Picks among candidates (with their command lines). Only the same
    /// subcommand qualifies (argv[1]: `ckb miner` runs the node's file but is
    /// not the node, and may well be running while the node restarts); among
    /// those the same command line wins, else a single one. Several equal
    /// ones stay ambiguous (None) until one exits.
    fn choose(&self, found: Vec<(Proc, Vec<String>)>) -> Option<Proc> {
        let sub = self.args.get(1);
        let mut same: Vec<(Proc, Vec<String>)> = found
            .into_iter()
            .filter(|(_, args)| args.get(1) == sub)
            .collect();
        if same.len() <= 1 {
            return same.pop().map(|(p, _)| p);
        }
        let exact: Vec<&Proc> = same
            .iter()
            .filter(|(_, args)| *args == self.args)
            .map(|(p, _)| p)
            .collect();
        (exact.len() == 1).then(|| exact[0].clone())
    }

    /// The restarted node, if it is running now.
    pub fn find(&self) -> Option<Restart> {
        let me = std::process::id();
        let found: Vec<(Proc, Vec<String>)> = all_pids()
            .into_iter()
            .filter(|&p| p != me)
            .filter_map(Proc::read)
            .filter(|p| self.matches(p))
            .map(|p| {
                let args = p.cmdline();
                (p, args)
            })
            .collect();
        let proc = self.choose(found)?;
        let id = ExeId::of(proc.pid);
        let upgraded = match (&self.id, &id) {
            (Some(a), Some(b)) => a != b,
            _ => false,
        };
        Some(Restart {
            upgraded,
            old_build_id: self.id.as_ref().and_then(|i| i.build_id.clone()),
            new_build_id: id.and_then(|i| i.build_id),
            proc,
        })
    }

    /// Waits (up to `limit`) until `p` has mapped the RocksDB libraries the
    /// old node had; a statically linked node has none to wait for.
    pub fn wait_for_libs(&self, p: &Proc, limit: Duration) {
        let until = Instant::now() + limit;
        while !self.libs.is_empty() && Instant::now() < until && p.alive() {
            let now: Vec<PathBuf> = mapped_rocksdb_libs(p.pid)
                .into_iter()
                .map(|f| f.display)
                .collect();
            if self.libs.iter().all(|l| now.contains(l)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// From now on, `r.proc` is the node.
    pub fn adopt(&mut self, r: &Restart) {
        self.last = r.proc.clone();
        self.args = r.proc.cmdline();
        self.id = ExeId::of(r.proc.pid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc(pid: u32, start: u64, exe: &str) -> Proc {
        Proc {
            pid,
            start_time: start,
            comm: "ckb".into(),
            exe: exe.into(),
        }
    }

    #[test]
    fn upgraded_binary_path_is_the_same_node() {
        let old = proc(10, 100, "/usr/bin/ckb (deleted)");
        assert_eq!(exe_path(&old), Path::new("/usr/bin/ckb"));
        let f = Follow {
            exe: exe_path(&old),
            args: vec![],
            last: old.clone(),
            id: None,
            libs: vec![],
        };
        assert!(!f.matches(&old), "the exited process itself");
        assert!(f.matches(&proc(11, 200, "/usr/bin/ckb")), "a restart");
        assert!(
            f.matches(&proc(10, 300, "/usr/bin/ckb")),
            "the same PID, started later"
        );
        assert!(
            !f.matches(&proc(10, 300, "/usr/bin/sleep")),
            "a reused PID running something else"
        );
    }

    #[test]
    fn the_miner_is_not_the_node() {
        let old = proc(10, 100, "/usr/bin/ckb");
        let argv = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let f = Follow {
            exe: exe_path(&old),
            args: argv(&["ckb", "run", "-C", "/data"]),
            last: old,
            id: None,
            libs: vec![],
        };
        let miner = (
            proc(11, 150, "/usr/bin/ckb"),
            argv(&["ckb", "miner", "-C", "/data"]),
        );
        let node = (
            proc(12, 200, "/usr/bin/ckb"),
            argv(&["ckb", "run", "-C", "/data"]),
        );
        let node2 = (
            proc(13, 210, "/usr/bin/ckb"),
            argv(&["ckb", "run", "-C", "/other"]),
        );
        assert_eq!(f.choose(vec![miner.clone()]), None, "only the miner runs");
        assert_eq!(
            f.choose(vec![miner.clone(), node.clone()]).map(|p| p.pid),
            Some(12)
        );
        assert_eq!(
            f.choose(vec![node2.clone()]).map(|p| p.pid),
            Some(13),
            "restarted with other flags"
        );
        assert_eq!(
            f.choose(vec![node.clone(), node2.clone()]).map(|p| p.pid),
            Some(12),
            "the same command line wins"
        );
        let node3 = (
            proc(14, 220, "/usr/bin/ckb"),
            argv(&["ckb", "run", "-C", "/data"]),
        );
        assert_eq!(
            f.choose(vec![node, node3]),
            None,
            "two identical: ambiguous"
        );
    }

    #[test]
    fn this_process_is_found_by_its_own_identity() {
        let me = Proc::read(std::process::id()).unwrap();
        let id = ExeId::of(me.pid).unwrap();
        assert_eq!(id, ExeId::of(me.pid).unwrap());
        let f = Follow::new(&me);
        assert_eq!(f.exe(), exe_path(&me));
        // We never pick ourselves, and our exited "previous self" is us.
        assert!(f.find().is_none_or(|r| r.proc.pid != me.pid));
    }
}
