//! The bundled workload's one JSON line (`examples/rocksdb_workload.rs`):
//! what it did, counted in the program itself. The integration tests and
//! the soak report compare the tool's figures with it, decoded exactly like
//! the tool's own lines.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What one run of the bundled workload did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub pid: u32,
    pub rounds: u64,
    pub elapsed_us: u64,
    /// Calls per RocksDB C function.
    pub calls: BTreeMap<String, u64>,
    /// Key + value bytes of every put.
    pub put_bytes: u64,
    /// Value bytes of every get that found its key.
    pub get_bytes: u64,
    pub get_misses: u64,
    /// Data size of every batch written (`rocksdb_writebatch_data`);
    /// absent (0) in the lines of workloads built before it was counted.
    #[serde(default)]
    pub write_bytes: u64,
    /// RocksDB's own statistics (`--stats`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rocksdb: Option<RocksStats>,
    /// Calls per (db directory, column family, function), with `--cf-db2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by_cf: Option<Vec<CfCount>>,
}

/// One (db, cf, function) cell of the workload's `by_cf`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CfCount {
    pub db: String,
    pub cf: String,
    pub func: String,
    pub count: u64,
}

/// RocksDB's own statistics of the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RocksStats {
    pub flushes: u64,
    pub compactions: u64,
    pub stall_micros: u64,
    pub stalls: u64,
    /// Background work finished before the counts were taken.
    pub settled: bool,
}

impl Counts {
    /// Calls of `funcs`, summed (a function the workload never called: 0).
    pub fn sum(&self, funcs: &[&str]) -> u64 {
        funcs
            .iter()
            .map(|f| self.calls.get(*f).copied().unwrap_or(0))
            .sum()
    }
    pub fn total(&self) -> u64 {
        self.calls.values().sum()
    }
}
