//! Every reader of /proc (and the few kernel facts read beside it): the
//! processes we trace, their threads, mapped files and listening sockets,
//! the kernel's configuration and our own capabilities. Nothing else in
//! the crate opens a /proc path.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use super::ProbeFile;

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

/// User + system CPU ticks of a `/proc/PID/stat` line (fields 14 and 15,
/// counted after the parenthesised comm, which may hold spaces and ')').
pub fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let mut f = stat[stat.rfind(')')? + 2..].split_whitespace().skip(11);
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some(utime + stime)
}

/// A process's CPU use between two samples, in % of one core, from
/// `/proc/PID/stat` (the node's own RPC figure is not usable: CKB 0.210's
/// `get_overview` samples a fresh `sysinfo` and says ~0 whatever the load).
#[derive(Debug, Default)]
pub struct CpuMeter {
    last: Option<(u32, std::time::Instant, u64)>,
}

impl CpuMeter {
    /// The use since the previous sample of the same PID; None on the first
    /// one (or a new PID, after a restart) and when the process is gone.
    pub fn sample(&mut self, pid: u32) -> Option<f64> {
        let now = std::time::Instant::now();
        let ticks = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| stat_cpu_ticks(&s));
        let prev = self.last.take();
        let ticks = ticks?;
        self.last = Some((pid, now, ticks));
        let (_, at, t) = prev.filter(|(p, ..)| *p == pid)?;
        let secs = now.duration_since(at).as_secs_f64();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        (secs > 0.0 && hz > 0).then(|| ticks.saturating_sub(t) as f64 / hz as f64 / secs * 100.0)
    }
}

pub fn all_pids() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
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

/// Thread names of `pid` (None once the process is gone).
pub fn thread_names(pid: u32) -> Option<Vec<String>> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let names: Vec<String> = dir
        .filter_map(|e| {
            let p = e.ok()?.path().join("comm");
            Some(std::fs::read_to_string(p).ok()?.trim_end().to_string())
        })
        .collect();
    (!names.is_empty()).then_some(names)
}

/// The target's listening TCP ports, from /proc: its socket inodes matched
/// against /proc/PID/net/tcp{,6} rows in state LISTEN. Returns the network
/// namespace inode and the ports.
pub fn proc_listeners(pid: u32) -> (u32, Vec<u16>) {
    let netns = std::fs::read_link(format!("/proc/{pid}/ns/net"))
        .ok()
        .and_then(|p| {
            let s = p.to_string_lossy().into_owned();
            s.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
        })
        .unwrap_or(0);
    let inodes: HashSet<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| {
                let l = std::fs::read_link(e.ok()?.path()).ok()?;
                let s = l.to_string_lossy().into_owned();
                s.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
            })
            .collect()
        })
        .unwrap_or_default();
    let mut ports = Vec::new();
    for file in ["tcp", "tcp6"] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{file}")) else {
            continue;
        };
        ports.extend(listening_ports(&text, &inodes));
    }
    ports.sort_unstable();
    ports.dedup();
    (netns, ports)
}

/// Ports of /proc/net/tcp rows in LISTEN (0A) whose inode is in `inodes`.
pub fn listening_ports(text: &str, inodes: &HashSet<u64>) -> Vec<u16> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (local, state, inode) = (f.get(1)?, f.get(3)?, f.get(9)?);
            if *state != "0A" || !inodes.contains(&inode.parse().ok()?) {
                return None;
            }
            u16::from_str_radix(local.rsplit(':').next()?, 16).ok()
        })
        .collect()
}

/// Whether a filesystem of type `fstype` is mounted at `dir` in our mount
/// namespace (/proc/self/mountinfo: readable even where the mount point
/// itself is not).
pub fn mounted_at(dir: &str, fstype: &str) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo").is_ok_and(|t| mountinfo_has(&t, dir, fstype))
}

/// `mounted_at` on the text of a mountinfo file: field 5 is the mount
/// point, the first field after the ` - ` separator the filesystem type.
pub fn mountinfo_has(text: &str, dir: &str, fstype: &str) -> bool {
    text.lines().any(|l| {
        let Some((left, right)) = l.split_once(" - ") else {
            return false;
        };
        left.split(' ').nth(4) == Some(dir) && right.split(' ').next() == Some(fstype)
    })
}

/// /proc/locks: every file lock, world-readable.
pub fn locks() -> Option<String> {
    std::fs::read_to_string("/proc/locks").ok()
}

/// Effective capability set of this process, from /proc/self/status.
pub fn effective_caps() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0)
}

/// BPF objects and perf events this process holds open (programs, maps,
/// links, uprobes): what a detach must give back.
pub fn own_bpf_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|l| {
                    let l = l.to_string_lossy();
                    l.starts_with("anon_inode:bpf") || l == "anon_inode:[perf_event]"
                })
                .count()
        })
        .unwrap_or(0)
}

/// The kernel's highest thread id + 1 (`kernel.pid_max`).
pub fn pid_max() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
}

pub fn uname() -> (String, String) {
    // SAFETY: uname fills the struct we own.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    unsafe { libc::uname(&mut u) };
    let s = |f: &[libc::c_char]| {
        let b: Vec<u8> = f
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&b).into_owned()
    };
    (s(&u.release), s(&u.machine))
}

/// The kernel build configuration, from /proc/config.gz or /boot.
pub fn kernel_config(release: &str) -> Option<(String, HashMap<String, String>)> {
    let text = std::fs::File::open("/proc/config.gz")
        .ok()
        .and_then(|f| {
            let mut s = String::new();
            flate2::read::GzDecoder::new(f)
                .read_to_string(&mut s)
                .ok()?;
            Some(("/proc/config.gz".to_string(), s))
        })
        .or_else(|| {
            let p = format!("/boot/config-{release}");
            std::fs::read_to_string(&p).ok().map(|s| (p, s))
        })?;
    Some((text.0, parse_config(&text.1)))
}

pub fn parse_config(text: &str) -> HashMap<String, String> {
    let mut m = HashMap::new();
    for l in text.lines() {
        if let Some((k, v)) = l.strip_prefix("CONFIG_").and_then(|l| l.split_once('=')) {
            m.insert(k.to_string(), v.to_string());
        } else if let Some(k) = l
            .strip_prefix("# CONFIG_")
            .and_then(|l| l.strip_suffix(" is not set"))
        {
            m.insert(k.to_string(), "n".to_string());
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_after_a_comm_with_spaces_and_parens() {
        let stat = "4242 (ckb (x) y) S 1 4242 4242 0 -1 4194560 1 0 0 0 150 27 0 0 20 0 9 0 100 0";
        assert_eq!(stat_cpu_ticks(stat), Some(177));
        assert_eq!(stat_cpu_ticks("4242 (ckb) S 1"), None);
        // Our own process: it exists and has used some CPU.
        let mut m = CpuMeter::default();
        assert_eq!(m.sample(std::process::id()), None, "first sample");
        assert!(m.sample(std::process::id()).is_some_and(|p| p >= 0.0));
        assert_eq!(m.sample(u32::MAX), None, "no such process");
    }

    #[test]
    fn config_parsing() {
        let c =
            parse_config("CONFIG_BPF=y\n# CONFIG_KPROBES is not set\nCONFIG_HZ=250\n# comment\n");
        assert_eq!(c["BPF"], "y");
        assert_eq!(c["KPROBES"], "n");
        assert_eq!(c["HZ"], "250");
    }

    #[test]
    fn mountinfo_lines() {
        let t = "36 25 0:12 / /sys/kernel/tracing rw,relatime shared:12 - tracefs tracefs rw\n\
                 40 25 0:7 / /sys/kernel/debug rw,relatime shared:15 - debugfs debugfs rw\n";
        assert!(mountinfo_has(t, "/sys/kernel/tracing", "tracefs"));
        assert!(!mountinfo_has(t, "/sys/kernel/debug", "tracefs"));
        assert!(!mountinfo_has(t, "/sys/kernel/debug/tracing", "tracefs"));
    }
}
