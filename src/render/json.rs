//! JSON Lines: one compact object per report or slow event. The field names
//! are an API (README "JSON output"); change them deliberately.

use serde_json::{json, Map, Value};

use crate::model::overhead::Overhead;
use crate::model::{Gap, Report, Row, SlowEvent, TargetEvent};

fn row(r: &Row) -> Value {
    json!({
        "count": r.count,
        "qps": r.qps,
        "avg_us": r.avg_us,
        "p50_us": r.p50_us,
        "p99_us": r.p99_us,
        "max_us": r.max_us,
        "bytes": r.bytes,
        "bytes_per_sec": r.bytes_per_sec,
        "hit_ratio": r.hit_ratio,
        "misses": r.misses,
    })
}

fn rows(rs: &[Row]) -> Value {
    let mut m = Map::new();
    for r in rs {
        m.insert(r.name.clone(), row(r));
    }
    Value::Object(m)
}

/// One report as one line.
pub fn report(r: &Report) -> String {
    let mut v = json!({
        "type": "report",
        "layer": r.layer,
        "timestamp": r.timestamp,
        "pid": r.pid,
        "interval_secs": r.interval_secs,
        "elapsed_secs": r.elapsed_secs,
        "final": r.is_final,
        "operations": rows(&r.rows),
        "lost_events": r.lost_events,
        "uncounted_calls": r.dropped,
        "slow_events": r.slow_events,
        "gaps": r.gaps.iter().map(gap).collect::<Vec<Value>>(),
    });
    if !r.functions.is_empty() {
        v["functions"] = rows(&r.functions);
    }
    if let Some(o) = &r.overhead {
        v["overhead"] = overhead(o);
    }
    if r.is_final {
        v["left_out"] = r
            .left_out
            .iter()
            .map(|l| json!({"function": l.function, "op": l.op, "reason": l.reason}))
            .collect();
    }
    v.to_string()
}

/// The probes' estimated cost: `sampled` says the report's counts cover
/// only `attached_pct` % of the span (nothing is scaled up).
fn overhead(o: &Overhead) -> Value {
    json!({
        "est_pct_core": o.est_pct_core,
        "always_attached_pct_core": o.always_pct_core,
        "attached_pct": o.attached_pct,
        "budget_pct": o.budget_pct,
        "sampled": o.sampled(),
        "hits": {
            "emulated": o.hits.emulated,
            "single_stepped": o.hits.single_stepped,
        },
        "per_hit_ns": {
            "emulated": o.per_hit.emulated_ns,
            "single_stepped": o.per_hit.single_stepped_ns,
        },
        "per_hit_source": if o.per_hit.calibrated { "measured" } else { "default" },
    })
}

/// One gap as a JSON object (reports' `gaps` arrays, restart events).
pub fn gap(g: &Gap) -> Value {
    json!({
        "old_pid": g.old_pid,
        "new_pid": g.new_pid,
        "exited_at": g.exited_at,
        "resumed_at": g.resumed_at,
        "secs": g.secs,
        "upgraded": g.upgraded,
        "old_build_id": g.old_build_id,
        "new_build_id": g.new_build_id,
    })
}

/// The target exited or came back: one line, `"type": "target"`.
pub fn target_event(e: &TargetEvent) -> String {
    match e {
        TargetEvent::Exited { pid, exe, time } => json!({
            "type": "target",
            "event": "exited",
            "pid": pid,
            "exe": exe,
            "time": time,
        }),
        TargetEvent::Restarted(g) => {
            let mut v = gap(g);
            v["type"] = json!("target");
            v["event"] = json!("restarted");
            v["pid"] = json!(g.new_pid);
            v["time"] = json!(g.resumed_at);
            v
        }
    }
    .to_string()
}

/// One slow event as one line (without the newline); the capture's hot
/// path writes the same bytes with `render::slow::json_line`.
pub fn slow_event(e: &SlowEvent) -> String {
    let mut buf = Vec::with_capacity(256);
    super::slow::json_line(&mut buf, &e.into());
    buf.pop();
    String::from_utf8(buf).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::OpStats;

    #[test]
    fn report_is_one_line_with_the_documented_fields() {
        let mut s = OpStats {
            count: 2,
            total_ns: 3000,
            ..Default::default()
        };
        s.hist.record(1000);
        s.hist.record(2000);
        s.max_ns = 2000;
        s.bytes = 10;
        let r = Report {
            layer: "rocksdb",
            timestamp: "2026-11-23T12:00:01Z".into(),
            pid: Some(9),
            interval_secs: 1.0,
            is_final: true,
            rows: vec![s.row("PUT", 1.0, false, true)],
            ..Default::default()
        };
        let line = report(&r);
        assert!(!line.contains('\n'));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["final"], true);
        assert_eq!(v["pid"], 9);
        let put = &v["operations"]["PUT"];
        for k in [
            "count",
            "qps",
            "avg_us",
            "p50_us",
            "p99_us",
            "max_us",
            "bytes",
            "bytes_per_sec",
            "hit_ratio",
        ] {
            assert!(put.get(k).is_some(), "missing {k}");
        }
        assert_eq!(put["count"], 2);
        assert_eq!(put["avg_us"], 1.5);
        assert_eq!(put["hit_ratio"], Value::Null);
    }
}
