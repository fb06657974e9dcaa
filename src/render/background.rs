//! Views of background work and anomalies: a section under the `rocksdb`
//! table, one line per finished job for the `--slow` log, the alert block
//! (the seed's Scenario B), and their JSON forms (`background` object and
//! `anomalies` array of a report line).

use std::fmt::Write as _;

use super::{duration_ns, micros, thousands};
use crate::analyze::{Anomaly, Cause};
use crate::model::{Background, BgJob};
use crate::schema::{self, rocksdb as s, to_line, Line};

/// The background section: one line per kind the target has.
pub fn table(b: &Background) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<12} {:>8} {:>8} {:>7} {:>9} {:>9} {:>9} {:>11}",
        "BACKGROUND", "STARTED", "DONE", "RUNNING", "AVG(us)", "P99(us)", "MAX(us)", "LONGEST(us)"
    );
    for r in &b.rows {
        let _ = writeln!(
            out,
            "{:<12} {:>8} {:>8} {:>7} {:>9} {:>9} {:>9} {:>11}",
            r.kind.name(),
            thousands(r.started),
            thousands(r.finished),
            thousands(r.in_flight),
            micros(r.avg_us),
            micros(r.p99_us),
            micros(r.max_us),
            micros(r.running_max_us),
        );
    }
    let _ = writeln!(out, "write stall: {}", duration_ns(b.stalled_ns as f64));
    if !b.absent.is_empty() {
        let names: Vec<&str> = b.absent.iter().map(|k| k.function()).collect();
        let _ = writeln!(out, "not in the target: {}", names.join(", "));
    }
    out
}

/// The alert block; empty when nothing is wrong.
pub fn anomalies(list: &[Anomaly]) -> String {
    let mut out = String::new();
    for a in list {
        let head = match a.kind {
            "latency_spike" => format!(
                "{} avg latency {} us over the last {:.0} s is {:.1}x its baseline ({} us)",
                a.operation,
                micros(Some(a.current_avg_us)),
                a.window_secs,
                a.multiplier,
                micros(Some(a.baseline_avg_us)),
            ),
            // tail_latency, write_stall: their own figures.
            _ => a.headline(),
        };
        let _ = writeln!(
            out,
            "!! ANOMALY{}: {head}",
            if a.onset { "" } else { " (ongoing)" },
        );
        let ev: Vec<String> = a
            .evidence
            .iter()
            .map(|(k, v)| {
                if v.fract() == 0.0 {
                    format!("{k}={v:.0}")
                } else {
                    format!("{k}={v:.2}")
                }
            })
            .collect();
        // An unknown cause with layers missing says how to check the rest.
        let cause = match (a.cause, a.unchecked.is_empty()) {
            (Cause::Unknown, false) => format!(
                "{} (run with --causes all to check {})",
                a.cause.describe(),
                a.unchecked.join("/")
            ),
            _ => a.cause.describe().to_string(),
        };
        let _ = writeln!(
            out,
            "   -> probable cause: {cause}{}",
            if ev.is_empty() {
                String::new()
            } else {
                format!(" ({})", ev.join(", "))
            }
        );
        let _ = writeln!(out, "   -> next: {}", a.next_step);
    }
    out
}

/// A finished background job in the `--slow` log.
pub fn job_line(j: &BgJob) -> String {
    let time = j.time.get(11..23).unwrap_or(&j.time);
    format!(
        "{:<12} {:>7} {:<16} {:<11} {:<38} {:>10} {:>9}",
        time,
        j.tid,
        j.thread,
        j.kind.name(),
        j.kind.function(),
        micros(Some(j.duration_us)),
        "-"
    )
}

/// The `background` object of a JSON report.
pub fn section(b: &Background) -> s::BackgroundSection {
    s::BackgroundSection {
        jobs: b
            .rows
            .iter()
            .map(|r| {
                let row = s::BgKindRow {
                    started: r.started,
                    finished: r.finished,
                    in_flight: r.in_flight,
                    total_ms: r.total_ns as f64 / 1e6,
                    avg_us: r.avg_us,
                    p99_us: r.p99_us,
                    max_us: r.max_us,
                    longest_running_us: r.running_max_us,
                };
                (r.kind.name().to_string(), row)
            })
            .collect(),
        stalled_ms: b.stalled_ns as f64 / 1e6,
        absent: b.absent.iter().map(|k| k.name().to_string()).collect(),
    }
}

/// A report of the `background` subcommand as one JSON line.
pub fn report_json(
    b: &Background,
    timestamp: String,
    pid: Option<u32>,
    interval_secs: f64,
    elapsed_secs: f64,
    is_final: bool,
    lost_events: u64,
) -> String {
    to_line(&Line::Report(schema::Report::Background(
        s::BackgroundReport {
            timestamp,
            pid,
            interval_secs,
            elapsed_secs,
            is_final,
            background: section(b),
            lost_events,
        },
    )))
}

/// A finished background job as its typed line.
pub fn job(j: &BgJob) -> s::BackgroundJob {
    s::BackgroundJob {
        time: j.time.clone(),
        pid: j.pid,
        tid: j.tid,
        thread: j.thread.clone(),
        kind: j.kind.name().into(),
        function: j.kind.function().into(),
        duration_us: j.duration_us,
        object: format!("{:#x}", j.object),
    }
}

/// A finished background job as one JSON line.
pub fn job_json(j: &BgJob) -> String {
    to_line(&Line::BackgroundJob(job(j)))
}

/// The summary's line on alerts.
pub fn alerts_summary(total: u64, learning: bool) -> String {
    match (total, learning) {
        (_, true) => "anomaly detection: still learning the baseline (see --baseline-secs)".into(),
        (0, false) => "anomaly detection: no alerts".into(),
        (n, false) => format!(
            "anomaly detection: {n} alert{} raised",
            if n == 1 { "" } else { "s" }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::model::background::{row, Running};
    use crate::model::{BgKind, BgStats};

    fn bg() -> Background {
        let mut c = BgStats {
            started: 2,
            finished: 1,
            total_ns: 25_000_000,
            max_ns: 25_000_000,
            ..Default::default()
        };
        c.hist.record(25_000_000);
        let running = [Running {
            kind: BgKind::Compaction,
            tid: 3,
            start_ns: 1,
            elapsed_ns: 1_500_000_000,
        }];
        Background {
            rows: vec![
                row(BgKind::Compaction, &c, 1, &running),
                row(BgKind::Flush, &BgStats::default(), 0, &running),
            ],
            stalled_ns: 1_200_000_000,
            absent: vec![BgKind::StopToken],
            lost_events: 0,
        }
    }

    #[test]
    fn section_lists_kinds_stall_and_absent_functions() {
        let t = table(&bg());
        let c = t.lines().find(|l| l.starts_with("compaction")).unwrap();
        assert!(c.contains("25,000") && c.contains("1,500,000"), "{c}");
        assert!(t.contains("write stall: 1.2s"), "{t}");
        assert!(t.contains("not in the target: rocksdb::WriteController::GetStopToken"));
    }

    #[test]
    fn json_background_section_and_lines() {
        let sec = section(&bg());
        let c = &sec.jobs["compaction"];
        assert_eq!((c.in_flight, c.total_ms), (1, 25.0));
        assert_eq!(sec.stalled_ms, 1200.0);
        assert_eq!(sec.absent, ["stop_token"]);
        let line = report_json(&bg(), "t".into(), Some(4), 1.0, 2.0, true, 0);
        assert!(
            line.starts_with(r#"{"type":"report","layer":"background","timestamp":"t""#),
            "{line}"
        );
        match schema::decode_strict::<Line>(&line).unwrap() {
            Line::Report(schema::Report::Background(r)) => {
                assert_eq!(r.background, sec);
                assert!(r.is_final);
            }
            l => panic!("{l:?}"),
        }
        let j = BgJob {
            time: "2026-11-23T12:00:01.234Z".into(),
            pid: 4,
            tid: 5,
            thread: "rocksdb:low0".into(),
            kind: BgKind::Flush,
            duration_us: 12.5,
            object: 0x10,
        };
        let line = job_json(&j);
        let back = schema::decode_strict::<Line>(&line).unwrap();
        assert_eq!(back, Line::BackgroundJob(job(&j)));
        assert!(line.contains(r#""kind":"flush","function":"rocksdb::FlushJob::Run""#));
        assert!(line.contains(r#""object":"0x10""#));
    }

    #[test]
    fn anomaly_block() {
        let a = Anomaly {
            kind: "latency_spike",
            operation: "WRITE".into(),
            current_avg_us: 2341.5,
            baseline_avg_us: 12.3,
            multiplier: 190.4,
            p99_us: None,
            baseline_p99_us: None,
            cause: Cause::WriteStall,
            evidence: [("stalled_ms", 4200.0)].into_iter().collect(),
            next_step: Cause::WriteStall.next_step().into(),
            onset: true,
            window_secs: 10.0,
            unchecked: vec!["fsync", "futex", "peers"],
        };
        assert_eq!(
            alerts_summary(1, false),
            "anomaly detection: 1 alert raised"
        );

        let text = anomalies(std::slice::from_ref(&a));
        assert!(
            text.starts_with("!! ANOMALY: WRITE avg latency 2342 us"),
            "{text}"
        );
        assert!(
            text.contains("probable cause: RocksDB write stall (stalled_ms=4200)"),
            "{text}"
        );
        assert!(text.contains("next: run `ckb-libbpf rocksdb --slow`"));
        assert_eq!(anomalies(&[]), "");

        // Nothing found, and some layers were not loaded: say how to look.
        let unknown = Anomaly {
            cause: Cause::Unknown,
            evidence: Default::default(),
            unchecked: vec!["fsync", "futex", "peers"],
            ..a.clone()
        };
        assert!(
            anomalies(std::slice::from_ref(&unknown)).contains(
                "probable cause: unknown (run with --causes all to check fsync/futex/peers)\n"
            ),
            "{}",
            anomalies(&[unknown])
        );
        let checked = Anomaly {
            cause: Cause::Unknown,
            evidence: Default::default(),
            unchecked: vec![],
            ..a
        };
        let v = serde_json::to_value(&checked).unwrap();
        assert!(v.get("unchecked").is_none(), "only when something is");
        assert!(anomalies(&[checked]).contains("probable cause: unknown\n"));
    }
}
