//! Lines of `net`: reports and connection events.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Gap;

/// `{"type":"report","layer":"net",...}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetReport {
    pub timestamp: String,
    pub pid: Option<u32>,
    pub interval_secs: f64,
    pub elapsed_secs: f64,
    #[serde(rename = "final")]
    pub is_final: bool,
    /// How each feature is traced: feature -> variant (tp_btf, kprobe...).
    pub backends: BTreeMap<String, String>,
    pub totals: NetTotals,
    pub peers: Vec<Peer>,
    pub alerts: Vec<NetAlert>,
    /// Events lost (ring buffer or channel full).
    pub lost_events: u64,
    /// Connections pushed out of the full table (their bytes still count).
    pub evicted_conns: u64,
    pub gaps: Vec<Gap>,
}

/// Counters over the whole capture; rates over the span.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetTotals {
    pub tx_bytes: u64,
    pub rx_bytes: u64,
    pub tx_bytes_per_sec: f64,
    pub rx_bytes_per_sec: f64,
    pub connects: u64,
    pub accepts: u64,
    pub closes: u64,
    pub connect_failures: u64,
    pub retransmits: u64,
    /// Open at the end of the span.
    pub live_conns: u32,
}

/// One remote endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Peer {
    /// `addr:port` (`[v6]:port`).
    pub peer: String,
    /// Directions of its connections ("out", "in", "existing", joined by /).
    pub dir: String,
    pub live: u32,
    pub closed: u32,
    /// Since its oldest open connection was first seen; null when none is.
    pub age_secs: Option<f64>,
    /// Over the capture so far.
    pub tx_bytes: u64,
    pub rx_bytes: u64,
    /// Over the span.
    pub tx_bytes_per_sec: f64,
    pub rx_bytes_per_sec: f64,
    pub retransmits: u64,
    /// Smoothed RTT from the kernel; null when not sampled.
    pub srtt_us: Option<u32>,
}

/// Too many disconnections in the window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetAlert {
    /// The peer's address; null for the node overall.
    pub peer: Option<String>,
    pub disconnects: u32,
    pub window_secs: u32,
    /// The same alert as the table prints it.
    pub message: String,
}

/// `{"type":"event","layer":"net",...}`: a connection opened, accepted,
/// closed or failed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetEvent {
    /// "net".
    pub layer: String,
    /// RFC 3339 with milliseconds.
    pub time: String,
    /// connect, accept, close or connect-failed.
    pub event: String,
    pub pid: u32,
    pub peer: String,
    pub local: String,
    pub dir: String,
    /// Close events: how long the connection lived; null otherwise.
    pub duration_secs: Option<f64>,
    pub tx_bytes: u64,
    pub rx_bytes: u64,
    pub retransmits: u64,
}
