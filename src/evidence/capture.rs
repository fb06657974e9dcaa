//! Reading a `--json` capture back: the final line of each layer (`rocksdb`,
//! `net`, `syscall`), decoded into typed structs of exactly the fields a
//! report uses. A field the capture should have and lacks is an error, not
//! a zero: the JSON Lines schema (README "JSON output") is an API, and a
//! report must not sign a figure nobody measured.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{Exit, Failure};

/// A field that must be present but may be `null` (serde treats a missing
/// `Option` as `None` unless told otherwise).
fn nullable<'de, D, T>(d: D) -> std::result::Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d)
}

/// One operation class of the rocksdb layer over the whole capture.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct OpRow {
    pub count: u64,
    pub qps: f64,
    #[serde(deserialize_with = "nullable")]
    pub avg_us: Option<f64>,
    #[serde(deserialize_with = "nullable")]
    pub p50_us: Option<f64>,
    #[serde(deserialize_with = "nullable")]
    pub p99_us: Option<f64>,
    #[serde(deserialize_with = "nullable")]
    pub max_us: Option<f64>,
    #[serde(deserialize_with = "nullable")]
    pub bytes: Option<u64>,
    #[serde(deserialize_with = "nullable")]
    pub hit_ratio: Option<f64>,
    #[serde(deserialize_with = "nullable")]
    pub misses: Option<u64>,
}

/// A restart of the traced node: a stretch without data.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Gap {
    pub old_pid: u32,
    pub new_pid: u32,
    pub exited_at: String,
    pub resumed_at: String,
    pub secs: f64,
    pub upgraded: bool,
}

/// Whether the counts cover the whole span (`--overhead-budget`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Overhead {
    pub sampled: bool,
    pub attached_pct: f64,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct BgJob {
    pub started: u64,
    pub finished: u64,
    pub in_flight: u64,
    pub total_ms: f64,
    #[serde(deserialize_with = "nullable")]
    pub avg_us: Option<f64>,
    #[serde(deserialize_with = "nullable")]
    pub p99_us: Option<f64>,
    #[serde(deserialize_with = "nullable")]
    pub max_us: Option<f64>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Background {
    pub jobs: BTreeMap<String, BgJob>,
    pub stalled_ms: f64,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Anomaly {
    pub operation: String,
    pub current_avg_us: f64,
    pub baseline_avg_us: f64,
    pub multiplier: f64,
    pub cause: String,
    pub evidence: BTreeMap<String, f64>,
    pub onset: bool,
    pub window_secs: f64,
}

/// The final line of `rocksdb --json`.
#[derive(Clone, Debug, Deserialize)]
pub struct Rocksdb {
    pub timestamp: String,
    #[serde(deserialize_with = "nullable")]
    pub pid: Option<u32>,
    pub elapsed_secs: f64,
    pub operations: BTreeMap<String, OpRow>,
    pub lost_events: u64,
    pub uncounted_calls: u64,
    pub gaps: Vec<Gap>,
    /// Present since the overhead estimate exists; absent in older captures.
    #[serde(default)]
    pub overhead: Option<Overhead>,
    /// Absent when the background layer could not load.
    #[serde(default)]
    pub background: Option<Background>,
    #[serde(default)]
    pub anomalies: Option<Vec<Anomaly>>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct NetTotals {
    pub tx_bytes: u64,
    pub rx_bytes: u64,
    pub connects: u64,
    pub accepts: u64,
    pub closes: u64,
    pub connect_failures: u64,
    pub retransmits: u64,
    pub live_conns: u64,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Peer {
    pub peer: String,
    pub dir: String,
    pub live: u64,
    pub closed: u64,
    pub tx_bytes: u64,
    pub rx_bytes: u64,
    pub retransmits: u64,
    #[serde(deserialize_with = "nullable")]
    pub srtt_us: Option<u64>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct NetAlert {
    /// The peer address, or null for the node overall.
    #[serde(deserialize_with = "nullable")]
    pub peer: Option<String>,
    pub disconnects: u64,
    pub window_secs: f64,
}

/// The final line of `net --json`.
#[derive(Clone, Debug, Deserialize)]
pub struct Net {
    pub timestamp: String,
    #[serde(deserialize_with = "nullable")]
    pub pid: Option<u32>,
    pub elapsed_secs: f64,
    pub totals: NetTotals,
    pub peers: Vec<Peer>,
    pub alerts: Vec<NetAlert>,
    pub lost_events: u64,
    pub evicted_conns: u64,
    pub gaps: Vec<Gap>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Syscall1 {
    pub count: u64,
    pub category: String,
    pub total_us: f64,
    pub errors: u64,
    #[serde(deserialize_with = "nullable")]
    pub avg_us: Option<f64>,
    #[serde(deserialize_with = "nullable")]
    pub p99_us: Option<f64>,
    #[serde(deserialize_with = "nullable")]
    pub max_us: Option<f64>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Latency {
    pub count: u64,
    #[serde(deserialize_with = "nullable")]
    pub avg_us: Option<f64>,
    #[serde(deserialize_with = "nullable")]
    pub p99_us: Option<f64>,
    #[serde(deserialize_with = "nullable")]
    pub max_us: Option<f64>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Derived {
    #[serde(deserialize_with = "nullable")]
    pub futex_wait_ratio: Option<f64>,
    #[serde(deserialize_with = "nullable")]
    pub fsync: Option<Latency>,
}

/// The final line of `syscall --json`.
#[derive(Clone, Debug, Deserialize)]
pub struct Syscall {
    pub timestamp: String,
    #[serde(deserialize_with = "nullable")]
    pub pid: Option<u32>,
    pub elapsed_secs: f64,
    pub total_calls: u64,
    pub distinct_syscalls: u64,
    pub syscalls: BTreeMap<String, Syscall1>,
    pub derived: Derived,
    pub uncounted_calls: u64,
    pub untimed_calls: u64,
    pub gaps: Vec<Gap>,
}

/// The final reports of a capture, per layer.
#[derive(Clone, Debug, Default)]
pub struct Capture {
    pub rocksdb: Option<Rocksdb>,
    pub net: Option<Net>,
    pub syscall: Option<Syscall>,
}

/// Only what tells a final report from other lines.
#[derive(Deserialize)]
struct Kind {
    #[serde(rename = "type")]
    kind: Option<String>,
    layer: Option<String>,
    #[serde(rename = "final")]
    is_final: Option<bool>,
}

fn malformed(what: &str, line: usize, e: impl std::fmt::Display) -> anyhow::Error {
    Failure::new(Exit::Usage, format!("{what}, line {line}: {e}"))
        .hint("give the JSON Lines of a capture: `ckb-libbpf rocksdb --json 60s > CAPTURE.jsonl` (net, syscall likewise; several may be concatenated)")
        .into()
}

/// Reads the final report of each layer from JSON Lines (`what` names the
/// source in errors). Interval reports, slow and other event lines are
/// skipped; a layer with two final reports is refused, since which one to
/// sign would be a guess.
pub fn parse<'a>(what: &str, lines: impl IntoIterator<Item = &'a str>) -> Result<Capture> {
    let mut c = Capture::default();
    for (i, line) in lines.into_iter().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let k: Kind = serde_json::from_str(line).map_err(|e| malformed(what, n, e))?;
        if k.kind.as_deref() != Some("report") || k.is_final != Some(true) {
            continue;
        }
        let layer = k.layer.unwrap_or_default();
        let dup = match layer.as_str() {
            "rocksdb" => c
                .rocksdb
                .replace(serde_json::from_str(line).map_err(|e| malformed(what, n, e))?)
                .is_some(),
            "net" => c
                .net
                .replace(serde_json::from_str(line).map_err(|e| malformed(what, n, e))?)
                .is_some(),
            "syscall" => c
                .syscall
                .replace(serde_json::from_str(line).map_err(|e| malformed(what, n, e))?)
                .is_some(),
            other => {
                return Err(malformed(
                    what,
                    n,
                    format!("unknown layer `{other}` in a final report"),
                ))
            }
        };
        if dup {
            return Err(malformed(
                what,
                n,
                format!("a second final `{layer}` report: one capture per layer, please"),
            ));
        }
    }
    if c.rocksdb.is_none() && c.net.is_none() && c.syscall.is_none() {
        return Err(Failure::new(
            Exit::Usage,
            format!("{what}: no final report (a line with \"final\": true)"),
        )
        .hint("a capture cut short by SIGKILL has none; end captures with a DURATION or Ctrl-C")
        .into());
    }
    Ok(c)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::error::exit_code;

    /// A rocksdb final line as `rocksdb --json` prints it (fields this
    /// module ignores included).
    pub const ROCKSDB: &str = r#"{"type":"report","layer":"rocksdb","timestamp":"2026-11-23T12:00:31.000Z","pid":4242,"interval_secs":30.0,"elapsed_secs":30.0,"final":true,"operations":{"GET":{"count":5890,"qps":196.3,"avg_us":1.5,"p50_us":1.4,"p99_us":3.4,"max_us":306.0,"bytes":588900,"bytes_per_sec":19630.0,"hit_ratio":0.839,"misses":948},"PUT":{"count":5700,"qps":190.0,"avg_us":3.0,"p50_us":2.8,"p99_us":12.5,"max_us":91.5,"bytes":852000,"bytes_per_sec":28400.0,"hit_ratio":null,"misses":null}},"lost_events":0,"uncounted_calls":0,"slow_events":0,"gaps":[],"overhead":{"est_pct_core":0.5,"attached_pct":100.0,"sampled":false},"left_out":[],"background":{"jobs":{"flush":{"started":2,"finished":2,"in_flight":0,"total_ms":12.5,"avg_us":6250.0,"p99_us":7000.0,"max_us":7000.0,"longest_running_us":null}},"stalled_ms":0.0,"absent":[]},"anomalies":[],"anomaly_alerts":0}"#;
    pub const NET: &str = r#"{"type":"report","layer":"net","timestamp":"2026-11-23T12:00:30.500Z","pid":4242,"interval_secs":30.0,"elapsed_secs":29.5,"final":true,"backends":{},"totals":{"tx_bytes":1000,"rx_bytes":2000,"tx_bytes_per_sec":33.0,"rx_bytes_per_sec":66.0,"connects":3,"accepts":1,"closes":2,"connect_failures":0,"retransmits":0,"live_conns":2},"peers":[{"peer":"127.0.0.1:8115","dir":"out","live":1,"closed":0,"age_secs":29.0,"tx_bytes":1000,"rx_bytes":2000,"tx_bytes_per_sec":33.0,"rx_bytes_per_sec":66.0,"retransmits":0,"srtt_us":40}],"alerts":[{"peer":"127.0.0.1","disconnects":12,"window_secs":60.0,"message":"peer 127.0.0.1 disconnected 12 times"}],"lost_events":0,"evicted_conns":0,"gaps":[]}"#;
    pub const SYSCALL: &str = r#"{"type":"report","layer":"syscall","backend":"tp_btf","timestamp":"2026-11-23T12:00:31.000Z","pid":4242,"interval_secs":30.0,"elapsed_secs":30.0,"final":true,"total_calls":100,"total_us":5000.0,"distinct_syscalls":2,"syscalls":{"futex":{"count":60,"rate":2.0,"avg_us":50.0,"p50_us":10.0,"p99_us":400.0,"max_us":900.0,"bytes":null,"nr":202,"category":"sync","total_us":3000.0,"errors":5,"by_role":{}},"pwrite64":{"count":40,"rate":1.3,"avg_us":50.0,"p50_us":40.0,"p99_us":200.0,"max_us":300.0,"bytes":4096,"nr":18,"category":"file","total_us":2000.0,"errors":0,"by_role":{}}},"categories":{},"roles":{},"writes_by_role":[],"derived":{"threads":4,"futex_us":3000.0,"futex_wait_ratio":0.8,"epoll_waits_per_sec":0.0,"epoll_wakeups_per_sec":0.0,"fsync":null},"probe_cost":{},"uncounted_calls":0,"untimed_calls":1,"gaps":[]}"#;

    #[test]
    fn reads_each_layers_final_line_and_skips_the_rest() {
        let lines = [
            r#"{"type":"report","layer":"rocksdb","final":false,"operations":{}}"#,
            r#"{"type":"slow","op":"GET"}"#,
            r#"{"type":"target","event":"exited","pid":1}"#,
            "",
            ROCKSDB,
            NET,
            SYSCALL,
        ];
        let c = parse("t", lines).unwrap();
        let r = c.rocksdb.unwrap();
        assert_eq!(r.operations["GET"].count, 5890);
        assert_eq!(r.operations["PUT"].hit_ratio, None);
        assert_eq!(r.background.unwrap().jobs["flush"].finished, 2);
        assert_eq!(c.net.unwrap().peers[0].peer, "127.0.0.1:8115");
        assert_eq!(c.syscall.unwrap().syscalls["futex"].errors, 5);
    }

    #[test]
    fn a_missing_field_is_an_error_not_a_zero() {
        for (line, field) in [
            (ROCKSDB, r#""lost_events":0,"#),
            (ROCKSDB, r#""p99_us":3.4,"#),
            (NET, r#""evicted_conns":0,"#),
            (SYSCALL, r#""untimed_calls":1,"#),
        ] {
            let cut = line.replacen(field, "", 1);
            assert_ne!(cut, line);
            let e = parse("t", [cut.as_str()]).unwrap_err();
            assert_eq!(exit_code(&e), Exit::Usage);
            assert!(format!("{e:#}").contains("missing field"), "{e:#}");
        }
    }

    #[test]
    fn refuses_no_final_line_two_finals_and_garbage() {
        for lines in [
            vec![r#"{"type":"report","layer":"rocksdb","final":false}"#],
            vec![ROCKSDB, ROCKSDB],
            vec!["not json", ROCKSDB],
            vec![],
        ] {
            let e = parse("t", lines.iter().copied()).unwrap_err();
            assert_eq!(exit_code(&e), Exit::Usage, "{e:#}");
        }
    }
}
