//! Lines of `rocksdb` and `background`: reports, slow operations,
//! background jobs, and the anomaly alerts a rocksdb report carries.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Gap;

/// `{"type":"report","layer":"rocksdb",...}`: one interval, or with
/// `final` the whole capture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RocksdbReport {
    /// RFC 3339 wall-clock time of the report.
    pub timestamp: String,
    /// The traced process; null with `--binary` (every process of a file).
    pub pid: Option<u32>,
    pub interval_secs: f64,
    pub elapsed_secs: f64,
    #[serde(rename = "final")]
    pub is_final: bool,
    /// By operation class (GET, PUT...): the classes with calls.
    pub operations: BTreeMap<String, OpRow>,
    /// Slow events the ring buffer or the output could not take.
    pub lost_events: u64,
    /// Calls the kernel side could not record (maps full).
    pub uncounted_calls: u64,
    pub slow_events: u64,
    /// Restarts of the target: in an interval the gaps that ended in it,
    /// in the final report all of them.
    pub gaps: Vec<Gap>,
    /// By C function, with `--by-function`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub functions: Option<BTreeMap<String, OpRow>>,
    /// By database and column family, then class: every (db, cf, op)
    /// with calls in the span.
    #[serde(default)]
    pub by_cf: Vec<CfRow>,
    /// What the probes cost the target (absent when not estimated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overhead: Option<Overhead>,
    /// The final report: functions present but deliberately not traced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_out: Option<Vec<LeftOut>>,
    /// RocksDB background work, when that layer runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<BackgroundSection>,
    /// Alerts of this interval (`rocksdb` always has the array).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomalies: Option<Vec<Anomaly>>,
    /// The final report: alerts raised over the capture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomaly_alerts: Option<u64>,
}

/// One operation class or function over the span. Latencies are null
/// without calls; `bytes` null for classes that move none (ITER_*, TXN_*);
/// `hit_ratio` and `misses` only for GET.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpRow {
    pub count: u64,
    pub qps: f64,
    pub avg_us: Option<f64>,
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub max_us: Option<f64>,
    pub bytes: Option<u64>,
    pub bytes_per_sec: Option<f64>,
    pub hit_ratio: Option<f64>,
    pub misses: Option<u64>,
    /// With `--histogram`: the span's latency distribution as log2
    /// buckets, those with calls only, in ascending order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram: Option<Vec<Log2Bucket>>,
}

/// Calls whose latency fell in `[2^log2, 2^(log2 + 1))` ns (bucket 0 is
/// `[0, 2)`): the rows `--histogram` prints, exact counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Log2Bucket {
    pub log2: u32,
    pub count: u64,
}

/// One operation class on one column family of one database. `db` is the
/// directory the process opened it with, `cf` the family's name (CKB's
/// chain families by their schema names, "*" for calls that span families:
/// batches, transactions as a whole); a handle the tool could not confirm
/// is shown as its pointer, "db@0x..." / "cf@0x...".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CfRow {
    pub db: String,
    pub cf: String,
    pub op: String,
    pub count: u64,
    pub bytes: Option<u64>,
    pub avg_us: Option<f64>,
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub max_us: Option<f64>,
}

/// The probes' estimated cost. `sampled`: the counts cover only
/// `attached_pct` % of the span (nothing is scaled up).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Overhead {
    pub est_pct_core: f64,
    pub always_attached_pct_core: f64,
    pub attached_pct: f64,
    /// `--overhead-budget`, when given.
    pub budget_pct: Option<f64>,
    pub sampled: bool,
    pub hits: ByProbeCost<u64>,
    pub per_hit_ns: ByProbeCost<f64>,
    /// "measured" at start-up, or the "default".
    pub per_hit_source: String,
}

/// One figure per class of first instruction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ByProbeCost<T> {
    pub emulated: T,
    pub single_stepped: T,
}

/// A function of the target not traced, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeftOut {
    pub function: String,
    pub op: String,
    pub reason: String,
}

/// `{"type":"slow",...}`: one operation over the threshold. The capture
/// writes these with `render::slow::json_line` (same bytes, tested).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Slow {
    /// RFC 3339 with milliseconds.
    pub time: String,
    pub pid: u32,
    pub tid: u32,
    pub thread: String,
    pub op: String,
    pub function: String,
    pub latency_us: f64,
    pub bytes: u64,
    /// A GET that found nothing.
    pub miss: bool,
    /// The `rocksdb_t*` (or transaction) handle, hex.
    pub db: String,
    /// The database's directory, as in `by_cf` rows; null until the tool
    /// has confirmed it (then `db` is all there is).
    pub db_name: Option<String>,
    /// The column family as `by_cf` rows name it: its name, "cf@0x..." when
    /// unconfirmed, "default" for a single-key call that named none, "*"
    /// for one that spans families (a batch, a transaction).
    pub cf: String,
}

/// The `background` object of a report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BackgroundSection {
    /// By kind (compaction, flush, write_stall...): the kinds the target has.
    pub jobs: BTreeMap<String, BgKindRow>,
    /// Time writers were held back (finished stalls plus ongoing ones).
    pub stalled_ms: f64,
    /// Kinds whose function the target does not have.
    pub absent: Vec<String>,
}

/// One kind of background job over the span.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BgKindRow {
    pub started: u64,
    pub finished: u64,
    /// Running at the end of the span.
    pub in_flight: u64,
    pub total_ms: f64,
    pub avg_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub max_us: Option<f64>,
    /// The longest-running job still in flight, so far.
    pub longest_running_us: Option<f64>,
}

/// `{"type":"report","layer":"background",...}` (the `background`
/// subcommand).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BackgroundReport {
    pub timestamp: String,
    pub pid: Option<u32>,
    pub interval_secs: f64,
    pub elapsed_secs: f64,
    #[serde(rename = "final")]
    pub is_final: bool,
    pub background: BackgroundSection,
    pub lost_events: u64,
}

/// `{"type":"background_job",...}`: one finished job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BackgroundJob {
    /// RFC 3339 with milliseconds, at the job's return.
    pub time: String,
    pub pid: u32,
    pub tid: u32,
    pub thread: String,
    pub kind: String,
    /// The C++ function (`rocksdb::CompactionJob::Run`...).
    pub function: String,
    pub duration_us: f64,
    /// `this` of the call, hex.
    pub object: String,
}

/// One alert of a report's `anomalies` array.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    /// "latency_spike", "tail_latency" or "write_stall".
    #[serde(rename = "type")]
    pub kind: String,
    pub operation: String,
    pub current_avg_us: f64,
    pub baseline_avg_us: f64,
    /// The window's p99 and the baseline p99, in µs, when there were
    /// enough calls to tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_us: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_p99_us: Option<f64>,
    /// current / baseline.
    pub multiplier: f64,
    /// write_stall, compaction, flush, fsync_latency, futex_contention,
    /// peer_churn or unknown.
    pub cause: String,
    /// The figures the cause rests on (units in the names).
    pub evidence: BTreeMap<String, f64>,
    pub next_step: String,
    /// The first interval of this alert (false while it lasts).
    pub onset: bool,
    pub window_secs: f64,
    /// Inputs no layer fed ("fsync", "futex", "peers"): causes not checked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unchecked: Vec<String>,
}
