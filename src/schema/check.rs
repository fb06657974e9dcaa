//! `check --json`: one object.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The whole check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// No line failed: the tool can run here (and on the given binary/pid).
    pub ok: bool,
    pub checks: Vec<Line>,
    /// Attach type (uprobe, kprobe, tp_btf...) -> whether a program of that
    /// type loaded, attached and fired here.
    pub probes: BTreeMap<String, bool>,
    /// The attach type each layer would use; null when none works.
    pub backends: Backends,
}

/// One line of the check; the text report prints the same lines.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Line {
    pub name: String,
    pub status: Status,
    pub detail: String,
    /// What to do about a line that is not ok.
    pub remedy: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Backends {
    pub rocksdb: Option<String>,
    pub net: Option<String>,
    pub syscall: Option<String>,
}
