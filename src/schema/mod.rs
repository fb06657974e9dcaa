//! The JSON API: one serde struct per kind of line the tool prints with
//! `--json`, and the two single-object outputs (`check --json`,
//! `symbols --json`); `workload` is the bundled workload's ground truth. The renderers build these and serialise them; tests
//! and consumers decode them. Field names are an API: they change only by
//! addition (README "JSON output").
//!
//! Three kinds of field, by how they appear on the wire:
//! - plain `T`: always present, never null;
//! - `Option<T>` without attributes: always present, `null` when unknown
//!   (`hit_ratio` of an operation without lookups);
//! - `Option<T>` with `skip_serializing_if`: present only in some lines
//!   (`left_out` on the final report, `background` when that layer runs).
//!
//! Decoding is tolerant (a consumer built against this version reads the
//! lines of a later one, which may add fields); `decode_strict` is the
//! exact check the tests use: no field unknown, none missing, no number of
//! the wrong kind.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub mod check;
pub mod net;
pub mod rocksdb;
pub mod symbols;
pub mod syscall;
pub mod workload;

pub use net::{NetEvent, NetReport};
pub use rocksdb::{
    Anomaly, BackgroundJob, BackgroundReport, BackgroundSection, RocksdbReport, Slow,
};
pub use syscall::SyscallReport;

/// Any JSON Lines line of `rocksdb`, `background`, `net` or `syscall`, by
/// its `"type"`.
// A report is much larger than the other lines; lines are decoded one at a
// time and matched by consumers (`Line::Report(Report::Net(r))`), which a
// Box would break, so the size is accepted.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Line {
    /// An interval report, or the final one (`"final": true`).
    Report(Report),
    /// One RocksDB operation over the `--slow` threshold.
    Slow(Slow),
    /// One finished RocksDB background job (`--slow`, `background --jobs`).
    BackgroundJob(BackgroundJob),
    /// The traced node exited, or is back.
    Target(TargetEvent),
    /// A TCP connection event (`net`).
    Event(NetEvent),
}

/// A report, by its `"layer"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "layer", rename_all = "snake_case")]
pub enum Report {
    Rocksdb(RocksdbReport),
    Background(BackgroundReport),
    Net(NetReport),
    Syscall(SyscallReport),
}

/// A stretch with no data: the traced process exited and the same
/// executable was started again (`gaps` arrays, `restarted` events).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    pub old_pid: u32,
    pub new_pid: u32,
    /// RFC 3339: when the exit was noticed, when the new process was traced.
    pub exited_at: String,
    pub resumed_at: String,
    pub secs: f64,
    /// A different file (inode or GNU build-id): an upgrade.
    pub upgraded: bool,
    pub old_build_id: Option<String>,
    pub new_build_id: Option<String>,
}

/// `{"type":"target","event":"exited"|"restarted",...}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TargetEvent {
    Exited(TargetExited),
    Restarted(TargetRestarted),
}

/// The node exited; the tool waits for `exe` to start again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetExited {
    pub pid: u32,
    pub exe: String,
    pub time: String,
}

/// The node is back and traced again: the gap, the new pid, and when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetRestarted {
    #[serde(flatten)]
    pub gap: Gap,
    /// `gap.new_pid`.
    pub pid: u32,
    /// `gap.resumed_at`.
    pub time: String,
}

impl Line {
    /// One line of output, decoded exactly (`decode_strict`).
    pub fn parse(line: &str) -> Result<Line, String> {
        decode_strict(line)
    }
}

/// The fields every layer's report has.
impl Report {
    pub fn pid(&self) -> Option<u32> {
        match self {
            Report::Rocksdb(r) => r.pid,
            Report::Background(r) => r.pid,
            Report::Net(r) => r.pid,
            Report::Syscall(r) => r.pid,
        }
    }
    pub fn is_final(&self) -> bool {
        match self {
            Report::Rocksdb(r) => r.is_final,
            Report::Background(r) => r.is_final,
            Report::Net(r) => r.is_final,
            Report::Syscall(r) => r.is_final,
        }
    }
    pub fn elapsed_secs(&self) -> f64 {
        match self {
            Report::Rocksdb(r) => r.elapsed_secs,
            Report::Background(r) => r.elapsed_secs,
            Report::Net(r) => r.elapsed_secs,
            Report::Syscall(r) => r.elapsed_secs,
        }
    }
    /// Restarts of the target (the `background` subcommand has none).
    pub fn gaps(&self) -> &[Gap] {
        match self {
            Report::Rocksdb(r) => &r.gaps,
            Report::Background(_) => &[],
            Report::Net(r) => &r.gaps,
            Report::Syscall(r) => &r.gaps,
        }
    }
}

/// One line as a line: compact, no newline. Serialising plain data into a
/// string cannot fail (no maps with non-string keys, no I/O); an empty
/// object stands in should it ever.
pub fn to_line<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "{}".into())
}

/// Decodes `text` as `T` and checks that `T` accounts for all of it:
/// encoding the result again must give back the same JSON value. A field
/// `T` does not know, a field it requires that is missing, a `null` where
/// the field is absent or the other way round, or a float where an integer
/// belongs all fail, with the path of the first difference.
pub fn decode_strict<T: DeserializeOwned + Serialize>(text: &str) -> Result<T, String> {
    let raw: Value = serde_json::from_str(text).map_err(|e| format!("not JSON ({e}): {text}"))?;
    let typed: T = serde_json::from_value(raw.clone())
        .map_err(|e| format!("{} ({e}): {text}", std::any::type_name::<T>()))?;
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    match first_difference("", &raw, &back) {
        None => Ok(typed),
        Some(d) => Err(format!(
            "{} does not account for {d}: {text}",
            std::any::type_name::<T>()
        )),
    }
}

/// Where `got` (the line) and `want` (the typed value encoded again) first
/// differ, said in the line's terms.
fn first_difference(path: &str, got: &Value, want: &Value) -> Option<String> {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            for (k, gv) in g {
                let p = format!("{path}.{k}");
                match w.get(k) {
                    None => return Some(format!("field {p} (unknown)")),
                    Some(wv) => {
                        if let Some(d) = first_difference(&p, gv, wv) {
                            return Some(d);
                        }
                    }
                }
            }
            w.keys()
                .find(|k| !g.contains_key(*k))
                .map(|k| format!("field {path}.{k} (missing)"))
        }
        (Value::Array(g), Value::Array(w)) if g.len() == w.len() => g
            .iter()
            .zip(w)
            .enumerate()
            .find_map(|(i, (gv, wv))| first_difference(&format!("{path}[{i}]"), gv, wv)),
        _ if got == want => None,
        _ => Some(format!(
            "{path}: the line has {got}, the schema gives {want}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_decoding_names_unknown_missing_and_mistyped_fields() {
        let ok = r#"{"pid":1,"exe":"/bin/x","time":"t"}"#;
        assert!(decode_strict::<TargetExited>(ok).is_ok());
        let unknown = r#"{"pid":1,"exe":"/bin/x","time":"t","extra":0}"#;
        let e = decode_strict::<TargetExited>(unknown).unwrap_err();
        assert!(e.contains("field .extra (unknown)"), "{e}");
        let missing = r#"{"pid":1,"exe":"/bin/x"}"#;
        assert!(decode_strict::<TargetExited>(missing).is_err());

        let gap = r#"{"old_pid":1,"new_pid":2,"exited_at":"a","resumed_at":"b","secs":1.5,"upgraded":false,"old_build_id":null,"new_build_id":"ab"}"#;
        assert!(decode_strict::<Gap>(gap).is_ok());
        // A nullable field must be there: serde alone would take it as None.
        let no_null = gap.replace(r#""old_build_id":null,"#, "");
        let e = decode_strict::<Gap>(&no_null).unwrap_err();
        assert!(e.contains("field .old_build_id (missing)"), "{e}");
        // An integer where the schema has a float.
        let int = gap.replace("1.5", "2");
        let e = decode_strict::<Gap>(&int).unwrap_err();
        assert!(
            e.contains(".secs: the line has 2, the schema gives 2.0"),
            "{e}"
        );
    }

    #[test]
    fn lines_are_told_apart_by_type_and_layer() {
        let exited = r#"{"type":"target","event":"exited","pid":7,"exe":"/bin/x","time":"t"}"#;
        match Line::parse(exited).unwrap() {
            Line::Target(TargetEvent::Exited(e)) => assert_eq!(e.pid, 7),
            l => panic!("{l:?}"),
        }
        let restarted = Line::Target(TargetEvent::Restarted(TargetRestarted {
            gap: Gap {
                old_pid: 7,
                new_pid: 8,
                exited_at: "a".into(),
                resumed_at: "b".into(),
                secs: 2.0,
                upgraded: true,
                old_build_id: None,
                new_build_id: None,
            },
            pid: 8,
            time: "b".into(),
        }));
        let text = to_line(&restarted);
        assert!(
            text.starts_with(r#"{"type":"target","event":"restarted","old_pid":7"#),
            "{text}"
        );
        assert_eq!(Line::parse(&text).unwrap(), restarted);
        assert!(Line::parse(r#"{"type":"nonsense"}"#).is_err());
    }
}
