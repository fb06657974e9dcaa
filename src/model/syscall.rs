//! The syscall layer's plain data: syscall names and categories, thread
//! roles, per-(syscall, thread family) counters, and the report built from
//! them. No BPF, no terminal: the kernel side fills `CallStats`, the views
//! print `SyscallReport`.
//!
//! Definitions (README "syscall"):
//! - *thread family*: a thread's name without its trailing digits
//!   ("rocksdb:low3" -> "rocksdb:low"); the kernel aggregates per family.
//! - *role*: what a family does for the node (`role_of`).
//! - *futex wait ratio*: time spent inside futex calls that returned in the
//!   span, divided by (threads x span): the share of thread-time spent
//!   blocked on locks and condition variables. Threads are counted from
//!   /proc at the end of the span. A long wait that ends inside a short
//!   interval can push one interval over 100 %.
//! - *epoll wakeups/s*: epoll_wait/epoll_pwait/epoll_pwait2 calls that
//!   returned at least one event, per second.
//! - *fsync latency*: fsync and fdatasync together, all threads.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use std::time::Instant;

use super::diff::Cumulative;
use super::{Drops, Gap, Gaps, OpStats, Row, DROP_REASONS};
use crate::clock::now_rfc3339;

mod sysnames;

/// The syscall table of the architecture this binary was built for.
#[cfg(target_arch = "aarch64")]
const TABLE: &[(u32, &str)] = sysnames::AARCH64;
#[cfg(not(target_arch = "aarch64"))]
const TABLE: &[(u32, &str)] = sysnames::X86_64;

/// Both tables, for tests and for reading another machine's numbers.
pub fn table_for(arch: &str) -> Option<&'static [(u32, &'static str)]> {
    match arch {
        "x86_64" => Some(sysnames::X86_64),
        "aarch64" => Some(sysnames::AARCH64),
        _ => None,
    }
}

/// The name of syscall `nr` on this architecture ("syscall_N" if unknown).
pub fn syscall_name(nr: u32) -> String {
    match TABLE.binary_search_by_key(&nr, |e| e.0) {
        Ok(i) => TABLE[i].1.to_string(),
        Err(_) => format!("syscall_{nr}"),
    }
}

/// The number of syscall `name` on this architecture.
pub fn syscall_nr(name: &str) -> Option<u32> {
    TABLE.iter().find(|e| e.1 == name).map(|e| e.0)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    FileIo,
    Network,
    /// Waiting and durability: futexes, fsync family, epoll/poll, sleeps.
    Sync,
    Memory,
    Other,
    /// Made by probes, not by the program: the `uretprobe` syscall that
    /// ckb-libbpf's own uretprobes (rocksdb layer) cause. Kept out of every
    /// total and shown on its own line.
    ProbeCost,
}

impl Category {
    pub const ALL: [Category; 6] = [
        Category::FileIo,
        Category::Network,
        Category::Sync,
        Category::Memory,
        Category::Other,
        Category::ProbeCost,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Category::FileIo => "file_io",
            Category::Network => "network",
            Category::Sync => "sync",
            Category::Memory => "memory",
            Category::Other => "other",
            Category::ProbeCost => "probe_cost",
        }
    }
}

const FILE_IO: &[&str] = &[
    "read",
    "write",
    "pread64",
    "pwrite64",
    "readv",
    "writev",
    "preadv",
    "pwritev",
    "preadv2",
    "pwritev2",
    "open",
    "openat",
    "openat2",
    "creat",
    "close",
    "close_range",
    "lseek",
    "stat",
    "fstat",
    "lstat",
    "newfstatat",
    "statx",
    "statfs",
    "fstatfs",
    "getdents",
    "getdents64",
    "rename",
    "renameat",
    "renameat2",
    "unlink",
    "unlinkat",
    "mkdir",
    "mkdirat",
    "rmdir",
    "fallocate",
    "ftruncate",
    "truncate",
    "sendfile",
    "copy_file_range",
    "splice",
    "tee",
    "fadvise64",
    "readahead",
    "access",
    "faccessat",
    "faccessat2",
    "readlink",
    "readlinkat",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "fcntl",
    "flock",
    "dup",
    "dup2",
    "dup3",
    "io_uring_enter",
    "io_submit",
    "io_getevents",
    "io_pgetevents",
    "name_to_handle_at",
    "open_by_handle_at",
];
const NETWORK: &[&str] = &[
    "socket",
    "socketpair",
    "connect",
    "accept",
    "accept4",
    "bind",
    "listen",
    "sendto",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "sendmmsg",
    "recvmmsg",
    "shutdown",
    "getsockname",
    "getpeername",
    "setsockopt",
    "getsockopt",
];
const SYNC: &[&str] = &[
    "futex",
    "futex_waitv",
    "futex_wait",
    "futex_wake",
    "futex_requeue",
    "fsync",
    "fdatasync",
    "sync_file_range",
    "sync",
    "syncfs",
    "msync",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "nanosleep",
    "clock_nanosleep",
    "sched_yield",
];
const MEMORY: &[&str] = &[
    "mmap",
    "munmap",
    "mremap",
    "mprotect",
    "madvise",
    "process_madvise",
    "brk",
    "mlock",
    "mlock2",
    "munlock",
    "mlockall",
    "munlockall",
    "mincore",
    "membarrier",
];
/// Return value is a byte count read (into the process).
const READS: &[&str] = &[
    "read", "pread64", "readv", "preadv", "preadv2", "recvfrom", "recvmsg",
];
/// Return value is a byte count written (out of the process).
const WRITES: &[&str] = &[
    "write",
    "pwrite64",
    "writev",
    "pwritev",
    "pwritev2",
    "sendto",
    "sendmsg",
    "sendfile",
    "copy_file_range",
    "splice",
];
const FUTEX: &[&str] = &["futex", "futex_waitv", "futex_wait"];
const EPOLL_WAIT: &[&str] = &["epoll_wait", "epoll_pwait", "epoll_pwait2"];
const FSYNC: &[&str] = &["fsync", "fdatasync"];
const PROBE_COST: &[&str] = &["uretprobe", "uprobe"];

pub fn category(name: &str) -> Category {
    let is = |set: &[&str]| set.contains(&name);
    if is(PROBE_COST) {
        Category::ProbeCost
    } else if is(FILE_IO) {
        Category::FileIo
    } else if is(NETWORK) {
        Category::Network
    } else if is(SYNC) {
        Category::Sync
    } else if is(MEMORY) {
        Category::Memory
    } else {
        Category::Other
    }
}

/// Which way a syscall's positive return value moves bytes, if it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bytes {
    Read,
    Written,
}

pub fn bytes_kind(name: &str) -> Option<Bytes> {
    if READS.contains(&name) {
        Some(Bytes::Read)
    } else if WRITES.contains(&name) {
        Some(Bytes::Written)
    } else {
        None
    }
}

/// The family of a thread name, as the kernel side computes it.
pub fn family_of(comm: &str) -> &str {
    comm.trim_end_matches(|c: char| c.is_ascii_digit())
}

/// The role of a thread family. RocksDB names its background threads
/// `rocksdb:low*` (compaction), `rocksdb:high*` (flush) and
/// `rocksdb:bottom*` (bottommost compaction); its WAL is written by the
/// thread that commits, so WAL writes show under that thread's role. CKB
/// 0.210 names the rest. `main` is the family of the process's own name.
pub fn role_of(family: &str, main: &str) -> &'static str {
    match family {
        "rocksdb:low" | "rocksdb:bottom" => "compaction",
        "rocksdb:high" => "flush",
        f if f.starts_with("rocksdb:") => "rocksdb-other",
        "ChainService" => "chain",
        "verify_blocks" => "verify",
        "GlobalRt-" => "runtime",
        "sled-io-" => "sled-io",
        f if f == family_of(main) => "main",
        _ => "other",
    }
}

/// Background roles: their writes are compaction/flush, not foreground.
pub fn is_background(role: &str) -> bool {
    matches!(role, "compaction" | "flush" | "rocksdb-other")
}

/// Counters of one (syscall, family) or any sum of them. `op.bytes` is the
/// sum of positive return values; `op.misses` is unused.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CallStats {
    pub op: OpStats,
    /// Calls that returned < 0 (-errno).
    pub errors: u64,
    /// Calls that returned > 0.
    pub positive: u64,
}

impl CallStats {
    pub fn add(&mut self, o: &CallStats) {
        self.op.add(&o.op);
        self.errors += o.errors;
        self.positive += o.positive;
    }

    /// Counters since `earlier`; `op.max_ns` stays the caller's to set.
    pub fn minus(&self, earlier: &CallStats) -> CallStats {
        CallStats {
            op: self.op.minus(&earlier.op),
            errors: self.errors.saturating_sub(earlier.errors),
            positive: self.positive.saturating_sub(earlier.positive),
        }
    }
}

/// One syscall row: latency figures (`row`), errors, and its split by role.
#[derive(Clone, Debug, PartialEq)]
pub struct SyscallRow {
    pub nr: u32,
    pub category: Category,
    pub row: Row,
    pub errors: u64,
    pub total_ns: u64,
    pub by_role: BTreeMap<String, RoleCell>,
}

/// A syscall's calls from one role.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RoleCell {
    pub count: u64,
    pub total_ns: u64,
    pub errors: u64,
    /// Only for syscalls whose return value counts bytes.
    pub bytes: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct CategoryRow {
    pub count: u64,
    pub total_ns: u64,
    pub errors: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct RoleRow {
    /// Thread families seen in the kernel or in /proc for this role.
    pub families: BTreeSet<String>,
    /// Threads of this role alive at the end of the span (from /proc).
    pub threads: u32,
    pub count: u64,
    pub total_ns: u64,
    pub errors: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub fsyncs: u64,
    pub futex_ns: u64,
    pub futex_wait_ratio: Option<f64>,
}

/// A write-family or fsync-family syscall as one role made it.
#[derive(Clone, Debug, PartialEq)]
pub struct WriteRow {
    pub role: String,
    pub syscall: String,
    pub row: Row,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Derived {
    pub threads: Option<u32>,
    pub futex_ns: u64,
    pub futex_wait_ratio: Option<f64>,
    pub epoll_calls_per_sec: f64,
    pub epoll_wakeups_per_sec: f64,
    /// fsync + fdatasync, every thread.
    pub fsync: Option<Row>,
}

/// What one interval (or, with `is_final`, the whole capture) measured.
#[derive(Clone, Debug, Default)]
pub struct SyscallReport {
    pub backend: &'static str,
    pub timestamp: String,
    pub pid: Option<u32>,
    pub interval_secs: f64,
    pub elapsed_secs: f64,
    pub is_final: bool,
    pub total_calls: u64,
    pub total_ns: u64,
    /// Distinct syscalls seen; `syscalls` holds the top N of them by time.
    pub distinct: usize,
    pub syscalls: Vec<(String, SyscallRow)>,
    pub categories: Vec<(Category, CategoryRow)>,
    pub roles: Vec<(String, RoleRow)>,
    pub writes_by_role: Vec<WriteRow>,
    pub derived: Derived,
    /// `uretprobe`/`uprobe` syscalls: (name, count, total ns).
    pub probe_cost: Vec<(String, u64, u64)>,
    /// Calls not counted because the aggregation map was full.
    pub uncounted: u64,
    /// Calls not timed because the per-thread start map was full.
    pub untimed: u64,
    /// Restarts of the target: in an interval report the gaps that ended in
    /// it, in the final report all of them.
    pub gaps: Vec<Gap>,
}

/// What a report is built from, besides the counters.
#[derive(Clone, Debug, Default)]
pub struct Span {
    pub backend: &'static str,
    pub timestamp: String,
    pub pid: Option<u32>,
    pub secs: f64,
    pub elapsed_secs: f64,
    pub is_final: bool,
    /// Name of the traced process (its main thread's family is `main`).
    pub main: String,
    /// Names of its threads at the end of the span (None: not known).
    pub threads: Option<Vec<String>>,
    /// Rows shown; 0 = every syscall seen.
    pub top: usize,
    pub uncounted: u64,
    pub untimed: u64,
}

fn rate(n: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

fn ratio(ns: u64, threads: u32, secs: f64) -> Option<f64> {
    (threads > 0 && secs > 0.0).then(|| ns as f64 / (threads as f64 * secs * 1e9))
}

/// Builds the report of one span from per-(family, nr) counters.
pub fn build(cells: &HashMap<(String, u32), CallStats>, span: &Span) -> SyscallReport {
    let secs = span.secs;
    let mut per_nr: BTreeMap<u32, CallStats> = BTreeMap::new();
    let mut by_role_nr: BTreeMap<(String, u32), CallStats> = BTreeMap::new();
    let mut roles: BTreeMap<String, RoleRow> = BTreeMap::new();
    let mut cats: BTreeMap<Category, CategoryRow> = BTreeMap::new();
    let mut probe: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let (mut total_calls, mut total_ns) = (0u64, 0u64);

    if let Some(threads) = &span.threads {
        for t in threads {
            let fam = family_of(t);
            let r = roles
                .entry(role_of(fam, &span.main).to_string())
                .or_default();
            r.threads += 1;
            r.families.insert(fam.to_string());
        }
    }
    for ((family, nr), st) in cells {
        if st.op.count == 0 {
            continue;
        }
        let name = syscall_name(*nr);
        let cat = category(&name);
        if cat == Category::ProbeCost {
            let p = probe.entry(name).or_default();
            p.0 += st.op.count;
            p.1 += st.op.total_ns;
            continue;
        }
        total_calls += st.op.count;
        total_ns += st.op.total_ns;
        per_nr.entry(*nr).or_default().add(st);
        let role = role_of(family, &span.main).to_string();
        by_role_nr.entry((role.clone(), *nr)).or_default().add(st);

        let (read, written) = match bytes_kind(&name) {
            Some(Bytes::Read) => (st.op.bytes, 0),
            Some(Bytes::Written) => (0, st.op.bytes),
            None => (0, 0),
        };
        let c = cats.entry(cat).or_default();
        c.count += st.op.count;
        c.total_ns += st.op.total_ns;
        c.errors += st.errors;
        c.bytes_read += read;
        c.bytes_written += written;

        let r = roles.entry(role).or_default();
        r.families.insert(family.clone());
        r.count += st.op.count;
        r.total_ns += st.op.total_ns;
        r.errors += st.errors;
        r.bytes_read += read;
        r.bytes_written += written;
        if FSYNC.contains(&name.as_str()) {
            r.fsyncs += st.op.count;
        }
        if FUTEX.contains(&name.as_str()) {
            r.futex_ns += st.op.total_ns;
        }
    }
    for r in roles.values_mut() {
        r.futex_wait_ratio = ratio(r.futex_ns, r.threads, secs);
    }

    let mut syscalls: Vec<(String, SyscallRow)> = per_nr
        .iter()
        .map(|(nr, st)| {
            let name = syscall_name(*nr);
            let has_bytes = bytes_kind(&name).is_some();
            let by_role = by_role_nr
                .iter()
                .filter(|((_, n), _)| n == nr)
                .map(|((role, _), s)| {
                    (
                        role.clone(),
                        RoleCell {
                            count: s.op.count,
                            total_ns: s.op.total_ns,
                            errors: s.errors,
                            bytes: has_bytes.then_some(s.op.bytes),
                        },
                    )
                })
                .collect();
            let row = SyscallRow {
                nr: *nr,
                category: category(&name),
                row: st.op.row(&name, secs, false, has_bytes),
                errors: st.errors,
                total_ns: st.op.total_ns,
                by_role,
            };
            (name, row)
        })
        .collect();
    let distinct = syscalls.len();
    syscalls.sort_by(|a, b| {
        b.1.total_ns
            .cmp(&a.1.total_ns)
            .then(b.1.row.count.cmp(&a.1.row.count))
            .then(a.0.cmp(&b.0))
    });
    if span.top > 0 {
        syscalls.truncate(span.top);
    }

    let mut writes_by_role = Vec::new();
    for ((role, nr), st) in &by_role_nr {
        let name = syscall_name(*nr);
        let written =
            bytes_kind(&name) == Some(Bytes::Written) && category(&name) == Category::FileIo;
        if written || FSYNC.contains(&name.as_str()) || name == "sync_file_range" {
            writes_by_role.push(WriteRow {
                role: role.clone(),
                syscall: name.clone(),
                row: st.op.row(&name, secs, false, written),
            });
        }
    }
    writes_by_role.sort_by(|a, b| a.syscall.cmp(&b.syscall).then(a.role.cmp(&b.role)));

    let sum_of = |names: &[&str]| {
        let mut s = CallStats::default();
        for (nr, st) in &per_nr {
            if names.contains(&syscall_name(*nr).as_str()) {
                s.add(st);
            }
        }
        s
    };
    let futex = sum_of(FUTEX);
    let epoll = sum_of(EPOLL_WAIT);
    let fsync = sum_of(FSYNC);
    let threads = span.threads.as_ref().map(|t| t.len() as u32);
    let derived = Derived {
        threads,
        futex_ns: futex.op.total_ns,
        futex_wait_ratio: threads.and_then(|t| ratio(futex.op.total_ns, t, secs)),
        epoll_calls_per_sec: rate(epoll.op.count, secs),
        epoll_wakeups_per_sec: rate(epoll.positive, secs),
        fsync: (fsync.op.count > 0).then(|| fsync.op.row("fsync+fdatasync", secs, false, false)),
    };

    SyscallReport {
        backend: span.backend,
        timestamp: span.timestamp.clone(),
        pid: span.pid,
        interval_secs: secs,
        elapsed_secs: span.elapsed_secs,
        is_final: span.is_final,
        total_calls,
        total_ns,
        distinct,
        syscalls,
        categories: Category::ALL
            .iter()
            .filter(|c| **c != Category::ProbeCost)
            .map(|c| (*c, cats.remove(c).unwrap_or_default()))
            .collect(),
        roles: roles.into_iter().collect(),
        writes_by_role,
        derived,
        probe_cost: probe.into_iter().map(|(n, (c, t))| (n, c, t)).collect(),
        uncounted: span.uncounted,
        untimed: span.untimed,
        gaps: Vec::new(),
    }
}

/// Counters of one (thread family, syscall), summed over CPUs.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyStats {
    pub family: String,
    pub nr: u32,
    /// Cumulative; `op.max_ns` is the maximum of the interval just ended.
    pub stats: CallStats,
}

/// One read of the maps at the end of an interval.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    pub rows: Vec<KeyStats>,
    /// Cumulative drops per `enum drop_reason`.
    pub drops: [u64; DROP_REASONS],
}

/// One poll: the kernel's counters and the threads alive at that moment.
#[derive(Clone, Debug, Default)]
pub struct Tick {
    pub sample: Sample,
    pub threads: Option<Vec<String>>,
    /// FUTEX_WAIT-family calls counted in the kernel, read before `sample`
    /// (so the rows hold every wait counted).
    pub futex_waits: u64,
}

type Key = (String, u32);

/// Turns cumulative samples into interval and whole-capture reports. A
/// capture may span several processes (restarts of the target): each is a
/// session with maps of its own, whose counters start from zero.
pub struct Aggregator {
    counters: Cumulative<Key, CallStats>,
    drops: Drops,
    backend: &'static str,
    pid: Option<u32>,
    main: String,
    top: usize,
    threads: Option<Vec<String>>,
    start: Instant,
    last: Instant,
    gaps: Gaps,
}

impl Aggregator {
    /// `backend`: the attach flavour's name, as the reports show it.
    pub fn new(backend: &'static str, top: usize) -> Aggregator {
        let now = Instant::now();
        Aggregator {
            counters: Cumulative::default(),
            drops: Drops::default(),
            backend,
            pid: None,
            main: String::new(),
            top,
            threads: None,
            start: now,
            last: now,
            gaps: Gaps::default(),
        }
    }

    /// A session starts: the programs are attached for process `pid`,
    /// whose main thread is named `comm`.
    pub fn begin(&mut self, pid: u32, comm: &str) {
        self.pid = Some(pid);
        self.main = comm.to_string();
    }

    /// The session ends: `rest` are its reads not yet folded in, the last
    /// one taken while the programs were still attached. Its counters join
    /// the closed totals; the next session's maps start from zero.
    pub fn end(&mut self, rest: &[Tick]) {
        for t in rest {
            let _ = self.interval(t, Instant::now()); // never shown: keep their maxima
        }
        self.counters.end_session(Key::clone);
        self.drops.end_session();
    }

    /// The target was traced again after `g`.
    pub fn gap(&mut self, g: Gap) {
        self.gaps.push(g);
    }

    fn span(&self, secs: f64, is_final: bool) -> Span {
        Span {
            backend: self.backend,
            timestamp: now_rfc3339(),
            pid: self.pid,
            secs,
            elapsed_secs: self.start.elapsed().as_secs_f64(),
            is_final,
            main: self.main.clone(),
            threads: self.threads.clone(),
            top: self.top,
            uncounted: self.drops.total(1),
            untimed: self.drops.total(2),
        }
    }

    /// The report of the interval that `t` closes.
    pub fn interval(&mut self, t: &Tick, now: Instant) -> SyscallReport {
        let secs = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        if t.threads.is_some() {
            self.threads = t.threads.clone();
        }
        let read = t
            .sample
            .rows
            .iter()
            .map(|k| ((k.family.clone(), k.nr), &k.stats));
        let mut cells: HashMap<Key, CallStats> = HashMap::new();
        for (key, d) in self.counters.interval(read) {
            cells.entry(key).or_default().add(&d);
        }
        self.drops.set(t.sample.drops);
        let mut r = build(&cells, &self.span(secs, false));
        r.gaps = self.gaps.take_new();
        r
    }

    /// The report of the whole capture so far, every session included.
    pub fn whole(&self) -> SyscallReport {
        let cells = self.counters.whole(Key::clone);
        let secs = self.start.elapsed().as_secs_f64();
        let mut r = build(&cells, &self.span(secs, true));
        r.gaps = self.gaps.all();
        r
    }
}

impl super::diff::Counters for CallStats {
    fn add(&mut self, o: &Self) {
        CallStats::add(self, o)
    }
    fn minus(&self, e: &Self) -> Self {
        CallStats::minus(self, e)
    }
    fn max_ns(&self) -> u64 {
        self.op.max_ns
    }
    fn set_max_ns(&mut self, v: u64) {
        self.op.max_ns = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_and_know_the_usual_suspects() {
        for arch in ["x86_64", "aarch64"] {
            let t = table_for(arch).unwrap();
            assert!(
                t.windows(2).all(|w| w[0].0 < w[1].0),
                "{arch} sorted, unique"
            );
            for n in [
                "read",
                "pwrite64",
                "futex",
                "fdatasync",
                "epoll_pwait",
                "getppid",
            ] {
                assert!(t.iter().any(|e| e.1 == n), "{arch}: {n}");
            }
        }
        let x = table_for("x86_64").unwrap();
        let nr = |t: &[(u32, &str)], n: &str| t.iter().find(|e| e.1 == n).map(|e| e.0);
        assert_eq!(nr(x, "read"), Some(0));
        assert_eq!(nr(x, "pwrite64"), Some(18));
        assert_eq!(nr(x, "futex"), Some(202));
        assert_eq!(nr(x, "uretprobe"), Some(335));
        let a = table_for("aarch64").unwrap();
        assert_eq!(nr(a, "pwrite64"), Some(68));
        assert_eq!(nr(a, "fstat"), Some(80));
        assert_eq!(nr(a, "newfstatat"), Some(79));
        assert_eq!(syscall_name(9999), "syscall_9999");
    }

    #[test]
    fn families_and_roles() {
        assert_eq!(family_of("rocksdb:low12"), "rocksdb:low");
        assert_eq!(family_of("GlobalRt-3"), "GlobalRt-");
        assert_eq!(family_of("ChainService"), "ChainService");
        assert_eq!(role_of("rocksdb:low", "ckb"), "compaction");
        assert_eq!(role_of("rocksdb:bottom", "ckb"), "compaction");
        assert_eq!(role_of("rocksdb:high", "ckb"), "flush");
        assert_eq!(role_of("rocksdb:dump_st", "ckb"), "rocksdb-other");
        assert_eq!(role_of("ChainService", "ckb"), "chain");
        assert_eq!(role_of("verify_blocks", "ckb"), "verify");
        assert_eq!(role_of("GlobalRt-", "ckb"), "runtime");
        assert_eq!(role_of("sled-io-", "ckb"), "sled-io");
        assert_eq!(role_of("ckb", "ckb"), "main");
        assert_eq!(role_of("tokio-runtime-w", "ckb"), "other");
        assert!(is_background("compaction") && !is_background("chain"));
    }

    #[test]
    fn categories_and_bytes() {
        assert_eq!(category("pwrite64"), Category::FileIo);
        assert_eq!(category("recvfrom"), Category::Network);
        assert_eq!(category("futex"), Category::Sync);
        assert_eq!(category("fdatasync"), Category::Sync);
        assert_eq!(category("mmap"), Category::Memory);
        assert_eq!(category("getppid"), Category::Other);
        assert_eq!(category("uretprobe"), Category::ProbeCost);
        assert_eq!(bytes_kind("pread64"), Some(Bytes::Read));
        assert_eq!(bytes_kind("sendmsg"), Some(Bytes::Written));
        assert_eq!(bytes_kind("openat"), None);
    }

    fn cs(count: u64, ns_each: u64, ret_sum: u64, positive: u64, errors: u64) -> CallStats {
        let mut s = CallStats::default();
        for _ in 0..count {
            s.op.count += 1;
            s.op.total_ns += ns_each;
            s.op.hist.record(ns_each);
        }
        s.op.max_ns = ns_each;
        s.op.bytes = ret_sum;
        s.positive = positive;
        s.errors = errors;
        s
    }

    fn nr(n: &str) -> u32 {
        syscall_nr(n).unwrap()
    }

    #[test]
    fn report_splits_by_role_category_and_derives_metrics() {
        let mut cells = HashMap::new();
        cells.insert(
            ("rocksdb:low".into(), nr("pwrite64")),
            cs(40, 1000, 40 * 4096, 40, 0),
        );
        cells.insert(
            ("ChainService".into(), nr("pwrite64")),
            cs(25, 2000, 25 * 512, 25, 0),
        );
        cells.insert(
            ("ChainService".into(), nr("fdatasync")),
            cs(5, 1_000_000, 0, 0, 0),
        );
        cells.insert(
            ("GlobalRt-".into(), nr("futex")),
            cs(10, 100_000_000, 0, 5, 2),
        );
        cells.insert(
            ("GlobalRt-".into(), nr("epoll_wait")),
            cs(20, 1000, 30, 15, 0),
        );
        cells.insert(("GlobalRt-".into(), nr("openat")), cs(3, 1000, 9, 3, 1));
        cells.insert(("ckb".into(), nr("uretprobe")), cs(7, 500, 0, 0, 0));
        let span = Span {
            backend: "tp_btf",
            secs: 2.0,
            main: "ckb".into(),
            threads: Some(vec![
                "ckb".into(),
                "ChainService".into(),
                "GlobalRt-1".into(),
                "GlobalRt-2".into(),
                "rocksdb:low0".into(),
            ]),
            top: 0,
            ..Default::default()
        };
        let r = build(&cells, &span);
        assert_eq!(
            r.total_calls,
            40 + 25 + 5 + 10 + 20 + 3,
            "uretprobe excluded"
        );
        assert_eq!(r.probe_cost, vec![("uretprobe".to_string(), 7, 3500)]);
        assert_eq!(r.syscalls[0].0, "futex", "sorted by total time");
        let pw = &r.syscalls.iter().find(|s| s.0 == "pwrite64").unwrap().1;
        assert_eq!(pw.row.count, 65);
        assert_eq!(pw.row.bytes, Some(40 * 4096 + 25 * 512));
        assert_eq!(pw.by_role["compaction"].bytes, Some(40 * 4096));
        assert_eq!(pw.by_role["chain"].count, 25);
        let open = &r.syscalls.iter().find(|s| s.0 == "openat").unwrap().1;
        assert_eq!(open.row.bytes, None, "fds are not bytes");
        assert_eq!(open.errors, 1);

        let role = |n: &str| &r.roles.iter().find(|x| x.0 == n).unwrap().1;
        assert_eq!(role("runtime").threads, 2);
        assert_eq!(role("compaction").bytes_written, 40 * 4096);
        assert_eq!(role("chain").fsyncs, 5);
        assert_eq!(role("main").count, 0, "threads without calls still listed");
        let fr = role("runtime").futex_wait_ratio.unwrap();
        assert!((fr - 1e9 / (2.0 * 2.0 * 1e9)).abs() < 1e-12, "{fr}");

        let d = &r.derived;
        assert_eq!(d.threads, Some(5));
        assert!((d.futex_wait_ratio.unwrap() - 1e9 / (5.0 * 2.0 * 1e9)).abs() < 1e-12);
        assert_eq!(d.epoll_wakeups_per_sec, 7.5);
        assert_eq!(d.epoll_calls_per_sec, 10.0);
        assert_eq!(d.fsync.as_ref().unwrap().count, 5);

        let cat = |c: Category| &r.categories.iter().find(|x| x.0 == c).unwrap().1;
        assert_eq!(cat(Category::FileIo).count, 65 + 3);
        assert_eq!(cat(Category::FileIo).bytes_written, 40 * 4096 + 25 * 512);
        assert_eq!(cat(Category::Sync).count, 35);

        let w: Vec<(&str, &str)> = r
            .writes_by_role
            .iter()
            .map(|w| (w.syscall.as_str(), w.role.as_str()))
            .collect();
        assert_eq!(
            w,
            vec![
                ("fdatasync", "chain"),
                ("pwrite64", "chain"),
                ("pwrite64", "compaction")
            ]
        );

        let top = build(&cells, &Span { top: 2, ..span });
        assert_eq!(top.syscalls.len(), 2);
        assert_eq!(top.distinct, 5);
        assert_eq!(top.total_calls, r.total_calls, "totals ignore --top");
    }
}

#[cfg(test)]
mod aggregator_tests {
    use super::*;
    use std::time::Duration;

    fn ks(family: &str, name: &str, count: u64, max_ns: u64) -> KeyStats {
        let mut s = CallStats::default();
        for _ in 0..count {
            s.op.count += 1;
            s.op.total_ns += 1000;
            s.op.hist.record(1000);
        }
        s.op.max_ns = max_ns;
        KeyStats {
            family: family.into(),
            nr: syscall_nr(name).unwrap(),
            stats: s,
        }
    }

    fn tick(rows: Vec<KeyStats>) -> Tick {
        Tick {
            sample: Sample {
                rows,
                drops: [0, 1, 2, 0],
            },
            threads: Some(vec!["ckb".into(), "GlobalRt-1".into()]),
            futex_waits: 0,
        }
    }

    #[test]
    fn intervals_difference_and_the_summary_accumulates() {
        let mut agg = Aggregator::new("raw_tp", 0);
        let t0 = agg.start;
        let r1 = agg.interval(
            &tick(vec![
                ks("GlobalRt-", "getppid", 10, 5000),
                ks("ckb", "getppid", 2, 9000),
            ]),
            t0 + Duration::from_secs(1),
        );
        let g = &r1.syscalls.iter().find(|s| s.0 == "getppid").unwrap().1;
        assert_eq!(g.row.count, 12);
        assert_eq!(g.row.max_us, Some(9.0));
        assert_eq!(r1.backend, "raw_tp");
        assert_eq!((r1.uncounted, r1.untimed), (1, 2));

        let r2 = agg.interval(
            &tick(vec![
                ks("GlobalRt-", "getppid", 15, 3000),
                ks("ckb", "getppid", 2, 0),
            ]),
            t0 + Duration::from_secs(2),
        );
        let g = &r2.syscalls.iter().find(|s| s.0 == "getppid").unwrap().1;
        assert_eq!(g.row.count, 5);
        assert_eq!(g.by_role["runtime"].count, 5);
        assert_eq!(g.row.max_us, Some(3.0));

        agg.end(&[tick(vec![
            ks("GlobalRt-", "getppid", 15, 0),
            ks("ckb", "getppid", 2, 0),
        ])]);
        let w = agg.whole();
        assert!(w.is_final);
        let g = &w.syscalls.iter().find(|s| s.0 == "getppid").unwrap().1;
        assert_eq!(g.row.count, 17);
        assert_eq!(g.row.max_us, Some(9.0), "max of the intervals");
        assert_eq!(w.derived.threads, Some(2));
    }

    #[test]
    fn sessions_add_up_across_a_restart() {
        let mut agg = Aggregator::new("tp_btf", 0);
        let t0 = agg.start;
        agg.begin(1, "ckb");
        let r = agg.interval(
            &tick(vec![ks("GlobalRt-", "getppid", 10, 5000)]),
            t0 + Duration::from_secs(1),
        );
        assert!(r.gaps.is_empty());
        // Session 1 ends: 3 more calls in its last read (never shown).
        agg.end(&[tick(vec![ks("GlobalRt-", "getppid", 13, 0)])]);
        // Session 2: a new process, maps from zero.
        agg.begin(2, "ckb");
        agg.gap(Gap {
            old_pid: 1,
            new_pid: 2,
            ..Gap::default()
        });
        let r = agg.interval(
            &tick(vec![
                ks("GlobalRt-", "getppid", 4, 2000),
                ks("rocksdb:low", "pwrite64", 1, 1000),
            ]),
            t0 + Duration::from_secs(2),
        );
        assert_eq!(r.pid, Some(2));
        assert_eq!(r.gaps.len(), 1, "the first interval after the restart");
        let g = &r.syscalls.iter().find(|s| s.0 == "getppid").unwrap().1;
        assert_eq!(g.row.count, 4, "the new session's calls, not a jump");
        assert_eq!((r.uncounted, r.untimed), (2, 4), "drops of both sessions");
        let r = agg.interval(
            &tick(vec![ks("GlobalRt-", "getppid", 6, 0)]),
            t0 + Duration::from_secs(3),
        );
        assert!(r.gaps.is_empty(), "...only once");
        agg.end(&[]);
        let w = agg.whole();
        let g = &w.syscalls.iter().find(|s| s.0 == "getppid").unwrap().1;
        assert_eq!(g.row.count, 19, "13 + 6: every process");
        assert_eq!(g.by_role["runtime"].count, 19);
        assert_eq!(g.row.max_us, Some(5.0), "max over both sessions");
        let p = &w.syscalls.iter().find(|s| s.0 == "pwrite64").unwrap().1;
        assert_eq!(p.by_role["compaction"].count, 1);
        assert_eq!(w.gaps.len(), 1);
        assert_eq!((w.gaps[0].old_pid, w.gaps[0].new_pid), (1, 2));
        assert_eq!(w.pid, Some(2));
    }
}
