//! Lines of `syscall`: one report per interval and a final one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Gap;

/// `{"type":"report","layer":"syscall",...}`. Times are in µs (`*_us`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyscallReport {
    /// How raw_syscalls is traced: tp_btf, raw_tp or tracepoint.
    pub backend: String,
    pub timestamp: String,
    pub pid: Option<u32>,
    pub interval_secs: f64,
    pub elapsed_secs: f64,
    #[serde(rename = "final")]
    pub is_final: bool,
    pub total_calls: u64,
    pub total_us: f64,
    /// Distinct syscalls seen; `syscalls` holds the top `--top` by time.
    pub distinct_syscalls: u64,
    pub syscalls: BTreeMap<String, SyscallEntry>,
    pub categories: BTreeMap<String, CategoryEntry>,
    /// By thread role (chain, network, compaction...).
    pub roles: BTreeMap<String, RoleEntry>,
    pub writes_by_role: Vec<WriteEntry>,
    pub derived: Derived,
    /// The `uretprobe`/`uprobe` syscalls: what uprobes cost the target.
    pub probe_cost: BTreeMap<String, ProbeCostEntry>,
    /// Not counted: the aggregation map was full.
    pub uncounted_calls: u64,
    /// Counted but not timed: the thread map was full.
    pub untimed_calls: u64,
    pub gaps: Vec<Gap>,
}

/// Latency of a set of calls.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    /// Calls per second.
    pub rate: f64,
    pub avg_us: Option<f64>,
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub max_us: Option<f64>,
    /// Sum of positive returns, for syscalls that return a byte count.
    pub bytes: Option<u64>,
}

/// One syscall: its latency, and its calls by role.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyscallEntry {
    pub count: u64,
    pub rate: f64,
    pub avg_us: Option<f64>,
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub max_us: Option<f64>,
    pub bytes: Option<u64>,
    pub nr: u32,
    pub category: String,
    pub total_us: f64,
    /// Calls that returned -errno.
    pub errors: u64,
    pub by_role: BTreeMap<String, RoleCell>,
}

/// A syscall's calls from one role.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoleCell {
    pub count: u64,
    pub total_us: f64,
    pub errors: u64,
    pub bytes: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CategoryEntry {
    pub count: u64,
    pub total_us: f64,
    pub errors: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoleEntry {
    /// A RocksDB background role (compaction, flush, rocksdb-other).
    pub background: bool,
    /// Thread families (names without their number) seen in this role.
    pub families: Vec<String>,
    /// Threads alive at the end of the span.
    pub threads: u32,
    pub count: u64,
    pub total_us: f64,
    pub errors: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub fsyncs: u64,
    pub futex_us: f64,
    pub futex_wait_ratio: Option<f64>,
}

/// A write-family or fsync-family syscall as one role made it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WriteEntry {
    pub count: u64,
    pub rate: f64,
    pub avg_us: Option<f64>,
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub max_us: Option<f64>,
    pub bytes: Option<u64>,
    pub syscall: String,
    pub role: String,
    pub background: bool,
}

/// Figures derived from the counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Derived {
    /// Threads of the process at the end of the span; null when unknown.
    pub threads: Option<u32>,
    pub futex_us: f64,
    pub futex_wait_ratio: Option<f64>,
    pub epoll_waits_per_sec: f64,
    pub epoll_wakeups_per_sec: f64,
    /// fsync + fdatasync of every thread; null without any.
    pub fsync: Option<Latency>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeCostEntry {
    pub count: u64,
    pub total_us: f64,
}
