//! `symbols --json`: one object.

use serde::{Deserialize, Serialize};

/// What a binary offers. `tier1`, `tier2` and `tier3` are there when
/// shown (`--tier`); `tier3` only with `--filter` matches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Symbols {
    pub path: String,
    /// "executable (PIE)", "executable (non-PIE)", "shared object", "other ELF".
    #[serde(rename = "type")]
    pub kind: String,
    pub pie: bool,
    pub stripped: bool,
    pub build_id: Option<String>,
    pub debuglink: Option<String>,
    /// static, dynamic, library or none.
    pub link_mode: String,
    /// The librocksdb.so a dynamic binary loads.
    pub rocksdb_library: Option<String>,
    pub ckb_version: Option<String>,
    /// Functions in .symtab/.dynsym.
    pub functions: u64,
    pub tier1_present: u64,
    pub tier2_tentacle: u64,
    pub tentacle_functions: u64,
    pub tier3_count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier1: Option<Vec<Tier1>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier2: Option<Vec<Tier2>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier3: Option<Vec<String>>,
}

/// A RocksDB C API function; the location fields are null when absent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tier1 {
    pub name: String,
    /// The ELF symbol probed: `name` for C functions, the mangled name of a
    /// C++ stand-in (what another tracer needs to attach to the same place).
    #[serde(default)]
    pub symbol: Option<String>,
    pub op: String,
    pub present: bool,
    pub file: Option<String>,
    pub offset: Option<u64>,
    /// emulated, single-step or unknown.
    pub probe_cost: Option<String>,
    pub first_insn: Option<String>,
}

/// A RocksDB internal or a tentacle protocol handler.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tier2 {
    /// "rocksdb-internal" or "tentacle-protocol".
    pub group: String,
    pub name: String,
    pub symbol: String,
    pub probe_cost: String,
}
