//! JSON Lines: one compact object per report or slow event. The field names
//! are an API (README "JSON output"); change them deliberately.

use std::collections::BTreeMap;

use crate::analyze::Anomaly;
use crate::model::overhead::Overhead;
use crate::model::rocksdb::CfRow;
use crate::model::{Background, Gap, Report, Row, SlowEvent, TargetEvent};
use crate::schema::{self, rocksdb as s, to_line, Line};

fn row(r: &Row) -> s::OpRow {
    s::OpRow {
        count: r.count,
        qps: r.qps,
        avg_us: r.avg_us,
        p50_us: r.p50_us,
        p99_us: r.p99_us,
        max_us: r.max_us,
        bytes: r.bytes,
        bytes_per_sec: r.bytes_per_sec,
        hit_ratio: r.hit_ratio,
        misses: r.misses,
        histogram: None,
    }
}

/// The log2 buckets of a row's histogram that have calls.
fn log2_buckets(r: &Row) -> Vec<s::Log2Bucket> {
    r.hist
        .log2_rows()
        .into_iter()
        .filter(|&(_, count)| count > 0)
        .map(|(log2, count)| s::Log2Bucket { log2, count })
        .collect()
}

/// `--histogram --json`: every operation and function row of `line` gains
/// its log2 buckets (left out otherwise: they make a line several times
/// longer).
fn add_histograms(line: &mut s::RocksdbReport, r: &Report) {
    for src in &r.rows {
        if let Some(dst) = line.operations.get_mut(&src.name) {
            dst.histogram = Some(log2_buckets(src));
        }
    }
    if let Some(funcs) = line.functions.as_mut() {
        for src in &r.functions {
            if let Some(dst) = funcs.get_mut(&src.name) {
                dst.histogram = Some(log2_buckets(src));
            }
        }
    }
}

fn rows(rs: &[Row]) -> BTreeMap<String, s::OpRow> {
    rs.iter().map(|r| (r.name.clone(), row(r))).collect()
}

/// One row of the per-column-family split.
fn cf_row(c: &CfRow) -> s::CfRow {
    s::CfRow {
        db: c.db.clone(),
        cf: c.cf.clone().unwrap_or_default(),
        op: c.row.name.clone(),
        count: c.row.count,
        bytes: c.row.bytes,
        avg_us: c.row.avg_us,
        p50_us: c.row.p50_us,
        p99_us: c.row.p99_us,
        max_us: c.row.max_us,
    }
}

/// A rocksdb report as its typed line: the `background` object when that
/// layer runs, the `anomalies` array when the detector does, and (on the
/// final report) the number of alerts raised.
pub fn rocksdb_line(
    r: &Report,
    background: Option<&Background>,
    anomalies: Option<&[Anomaly]>,
    alerts_total: Option<u64>,
) -> s::RocksdbReport {
    s::RocksdbReport {
        timestamp: r.timestamp.clone(),
        pid: r.pid,
        interval_secs: r.interval_secs,
        elapsed_secs: r.elapsed_secs,
        is_final: r.is_final,
        operations: rows(&r.rows),
        lost_events: r.lost_events,
        uncounted_calls: r.dropped,
        slow_events: r.slow_events,
        gaps: r.gaps.iter().map(gap).collect(),
        functions: (!r.functions.is_empty()).then(|| rows(&r.functions)),
        by_cf: r.by_cf.iter().map(cf_row).collect(),
        overhead: r.overhead.as_ref().map(overhead),
        left_out: r.is_final.then(|| {
            r.left_out
                .iter()
                .map(|l| s::LeftOut {
                    function: l.function.clone(),
                    op: l.op.clone(),
                    reason: l.reason.clone(),
                })
                .collect()
        }),
        background: background.map(super::background::section),
        anomalies: anomalies.map(|a| a.iter().map(anomaly).collect()),
        anomaly_alerts: alerts_total,
    }
}

/// One rocksdb report as one line (see `rocksdb_line`); with `histograms`
/// (`--histogram`) its rows carry their log2 buckets.
pub fn rocksdb_report(
    r: &Report,
    background: Option<&Background>,
    anomalies: Option<&[Anomaly]>,
    alerts_total: Option<u64>,
    histograms: bool,
) -> String {
    let mut line = rocksdb_line(r, background, anomalies, alerts_total);
    if histograms {
        add_histograms(&mut line, r);
    }
    to_line(&Line::Report(schema::Report::Rocksdb(line)))
}

/// One report as one line, without the background and anomaly parts.
pub fn report(r: &Report) -> String {
    rocksdb_report(r, None, None, None, false)
}

/// The probes' estimated cost: `sampled` says the report's counts cover
/// only `attached_pct` % of the span (nothing is scaled up).
fn overhead(o: &Overhead) -> s::Overhead {
    s::Overhead {
        est_pct_core: o.est_pct_core,
        always_attached_pct_core: o.always_pct_core,
        attached_pct: o.attached_pct,
        budget_pct: o.budget_pct,
        sampled: o.sampled(),
        hits: s::ByProbeCost {
            emulated: o.hits.emulated,
            single_stepped: o.hits.single_stepped,
        },
        per_hit_ns: s::ByProbeCost {
            emulated: o.per_hit.emulated_ns,
            single_stepped: o.per_hit.single_stepped_ns,
        },
        per_hit_source: if o.per_hit.calibrated {
            "measured"
        } else {
            "default"
        }
        .into(),
    }
}

/// One alert of the `anomalies` array.
pub fn anomaly(a: &Anomaly) -> s::Anomaly {
    s::Anomaly {
        kind: a.kind.into(),
        operation: a.operation.clone(),
        current_avg_us: a.current_avg_us,
        baseline_avg_us: a.baseline_avg_us,
        p99_us: a.p99_us,
        baseline_p99_us: a.baseline_p99_us,
        multiplier: a.multiplier,
        cause: a.cause.name().into(),
        evidence: a
            .evidence
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect(),
        next_step: a.next_step.clone(),
        onset: a.onset,
        window_secs: a.window_secs,
        unchecked: a.unchecked.iter().map(|u| u.to_string()).collect(),
    }
}

/// One gap (reports' `gaps` arrays, restart events).
pub fn gap(g: &Gap) -> schema::Gap {
    schema::Gap {
        old_pid: g.old_pid,
        new_pid: g.new_pid,
        exited_at: g.exited_at.clone(),
        resumed_at: g.resumed_at.clone(),
        secs: g.secs,
        upgraded: g.upgraded,
        old_build_id: g.old_build_id.clone(),
        new_build_id: g.new_build_id.clone(),
    }
}

/// The target exited or came back: one line, `"type": "target"`.
pub fn target_event(e: &TargetEvent) -> String {
    let ev = match e {
        TargetEvent::Exited { pid, exe, time } => {
            schema::TargetEvent::Exited(schema::TargetExited {
                pid: *pid,
                exe: exe.clone(),
                time: time.clone(),
            })
        }
        TargetEvent::Restarted(g) => schema::TargetEvent::Restarted(schema::TargetRestarted {
            gap: gap(g),
            pid: g.new_pid,
            time: g.resumed_at.clone(),
        }),
    };
    to_line(&Line::Target(ev))
}

/// One slow event as its typed line.
pub fn slow_line(e: &SlowEvent) -> s::Slow {
    s::Slow {
        time: e.time.clone(),
        pid: e.pid,
        tid: e.tid,
        thread: e.thread.clone(),
        op: e.op.into(),
        function: e.function.into(),
        latency_us: e.latency_us,
        bytes: e.bytes,
        miss: e.miss,
        db: format!("{:#x}", e.db),
        db_name: e.db_name.clone(),
        cf: e.cf.clone(),
    }
}

/// One slow event as one line (without the newline); the capture's hot
/// path writes the same bytes with `render::slow::json_line` (tested
/// against `slow_line`).
pub fn slow_event(e: &SlowEvent) -> String {
    let mut buf = Vec::with_capacity(256);
    super::slow::json_line(&mut buf, &e.into());
    buf.pop();
    String::from_utf8(buf).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::Cause;
    use crate::model::OpStats;
    use crate::schema::decode_strict;

    fn put_report(is_final: bool) -> Report {
        let mut s = OpStats {
            count: 2,
            total_ns: 3000,
            ..Default::default()
        };
        s.hist.record(1000);
        s.hist.record(2000);
        s.max_ns = 2000;
        s.bytes = 10;
        Report {
            layer: "rocksdb",
            timestamp: "2026-11-23T12:00:01Z".into(),
            pid: Some(9),
            interval_secs: 1.0,
            is_final,
            rows: vec![s.row("PUT", 1.0, false, true)],
            ..Default::default()
        }
    }

    fn rocksdb(line: &str) -> s::RocksdbReport {
        match decode_strict::<Line>(line).unwrap() {
            Line::Report(schema::Report::Rocksdb(r)) => r,
            l => panic!("{l:?}"),
        }
    }

    #[test]
    fn report_is_one_typed_line() {
        let line = report(&put_report(true));
        assert!(!line.contains('\n'));
        assert!(
            line.starts_with(r#"{"type":"report","layer":"rocksdb","timestamp":"#),
            "{line}"
        );
        let r = rocksdb(&line);
        assert!(r.is_final);
        assert_eq!(r.pid, Some(9));
        let put = &r.operations["PUT"];
        assert_eq!(put.count, 2);
        assert_eq!(put.avg_us, Some(1.5));
        assert_eq!(put.bytes, Some(10));
        assert_eq!(put.hit_ratio, None);
        assert_eq!(r.left_out, Some(vec![]), "the final report lists them");
        assert_eq!(
            (r.background, r.anomalies, r.anomaly_alerts),
            (None, None, None)
        );
        let interval = rocksdb(&report(&put_report(false)));
        assert_eq!(interval.left_out, None, "only the final report");
    }

    #[test]
    fn histograms_are_added_on_request_and_decode() {
        let r = put_report(false);
        assert!(!report(&r).contains("histogram"), "only with --histogram");
        let text = rocksdb_report(&r, None, None, None, true);
        let put = &rocksdb(&text).operations["PUT"];
        // 1000 ns in [512, 1024), 2000 ns in [1024, 2048); no empty buckets.
        let buckets: Vec<(u32, u64)> = put
            .histogram
            .as_ref()
            .expect("buckets")
            .iter()
            .map(|b| (b.log2, b.count))
            .collect();
        assert_eq!(buckets, vec![(9, 1), (10, 1)]);
    }

    #[test]
    fn background_and_anomalies_are_part_of_the_report() {
        let a = Anomaly {
            kind: "latency_spike",
            operation: "WRITE".into(),
            current_avg_us: 2341.5,
            baseline_avg_us: 12.3,
            p99_us: None,
            baseline_p99_us: None,
            multiplier: 190.4,
            cause: Cause::WriteStall,
            evidence: [("stalled_ms", 4200.0)].into_iter().collect(),
            next_step: Cause::WriteStall.next_step().into(),
            onset: true,
            window_secs: 10.0,
            unchecked: vec!["fsync", "futex", "peers"],
        };
        let bg = Background {
            stalled_ns: 1_200_000_000,
            ..Default::default()
        };
        let line = rocksdb_report(
            &put_report(true),
            Some(&bg),
            Some(std::slice::from_ref(&a)),
            Some(3),
            false,
        );
        let r = rocksdb(&line);
        assert_eq!(r.background.unwrap().stalled_ms, 1200.0);
        assert_eq!(r.anomaly_alerts, Some(3));
        let an = &r.anomalies.unwrap()[0];
        assert_eq!(an.cause, "write_stall");
        assert_eq!(an.evidence["stalled_ms"], 4200.0);
        assert_eq!(an.unchecked, ["fsync", "futex", "peers"]);
        // The analyzer's own serialisation and the schema's agree, for
        // every cause (the typed line must not rename one).
        for cause in [
            Cause::WriteStall,
            Cause::Compaction,
            Cause::Flush,
            Cause::FsyncLatency,
            Cause::FutexContention,
            Cause::PeerChurn,
            Cause::Unknown,
        ] {
            for unchecked in [vec![], vec!["fsync"]] {
                let a = Anomaly {
                    cause,
                    unchecked,
                    ..a.clone()
                };
                assert_eq!(
                    serde_json::to_value(anomaly(&a)).unwrap(),
                    serde_json::to_value(&a).unwrap()
                );
            }
        }
    }

    #[test]
    fn target_events_and_slow_events_are_typed_lines() {
        let g = Gap {
            old_pid: 1,
            new_pid: 2,
            exited_at: "a".into(),
            resumed_at: "b".into(),
            secs: 0.5,
            upgraded: true,
            old_build_id: Some("ab".into()),
            new_build_id: None,
        };
        match decode_strict::<Line>(&target_event(&TargetEvent::Restarted(g))).unwrap() {
            Line::Target(schema::TargetEvent::Restarted(r)) => {
                assert_eq!((r.pid, r.gap.old_pid, r.time.as_str()), (2, 1, "b"))
            }
            l => panic!("{l:?}"),
        }
        let exited = TargetEvent::Exited {
            pid: 1,
            exe: "/x".into(),
            time: "a".into(),
        };
        assert!(matches!(
            decode_strict::<Line>(&target_event(&exited)).unwrap(),
            Line::Target(schema::TargetEvent::Exited(_))
        ));
        let e = SlowEvent {
            time: "2026-11-23T12:00:01.234Z".into(),
            pid: 4242,
            tid: 4250,
            thread: "ChainService".into(),
            op: "GET",
            function: "rocksdb_get",
            latency_us: 8912.0,
            bytes: 3,
            miss: false,
            db: 0xab,
            db_name: Some("/var/lib/ckb/data/db".into()),
            cf: "COLUMN_BLOCK_BODY".into(),
        };
        assert_eq!(
            decode_strict::<Line>(&slow_event(&e)).unwrap(),
            Line::Slow(slow_line(&e))
        );
    }
}
