//! Human views: the per-operation table, biolatency-style histograms and
//! the slow-operation log.

use std::fmt::Write as _;

use super::{bytes, duration_ns, micros, thousands};
use crate::model::overhead::Overhead;
use crate::model::rocksdb::{CfRow, Split};
use crate::model::{Gap, Report, Row, SlowEvent, TargetEvent};

fn header(r: &Report) -> String {
    let pid = r
        .pid
        .map(|p| format!("pid {p}"))
        .unwrap_or_else(|| "all processes".into());
    let time = r.timestamp.get(11..19).unwrap_or(&r.timestamp);
    if r.is_final {
        format!(
            "=== {} summary: {pid}, {:.1} s captured ===",
            r.layer, r.elapsed_secs
        )
    } else {
        format!(
            "{time}  {} {pid}  interval {:.1}s  elapsed {:.0}s",
            r.layer, r.interval_secs, r.elapsed_secs
        )
    }
}

fn row_line(out: &mut String, r: &Row, width: usize) {
    let _ = writeln!(
        out,
        "{:<width$} {:>10} {:>9} {:>8} {:>8} {:>8} {:>9} {:>11} {:>6}",
        r.name,
        thousands(r.count),
        format!("{:.1}", r.qps),
        micros(r.avg_us),
        micros(r.p50_us),
        micros(r.p99_us),
        micros(r.max_us),
        r.bytes_per_sec
            .map(|b| format!("{}/s", bytes(b)))
            .unwrap_or_else(|| "-".into()),
        r.hit_ratio
            .map(|h| format!("{:.1}", h * 100.0))
            .unwrap_or_else(|| "-".into()),
    );
}

/// The table: one row per operation class (then per function, if any).
pub fn table(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", header(r));
    let width = r
        .rows
        .iter()
        .chain(&r.functions)
        .map(|x| x.name.len())
        .max()
        .unwrap_or(10)
        .max(10);
    let _ = writeln!(
        out,
        "{:<width$} {:>10} {:>9} {:>8} {:>8} {:>8} {:>9} {:>11} {:>6}",
        "OP", "COUNT", "QPS", "AVG(us)", "P50(us)", "P99(us)", "MAX(us)", "BYTES/s", "HIT%"
    );
    for row in &r.rows {
        row_line(&mut out, row, width);
    }
    if !r.functions.is_empty() {
        let _ = writeln!(out, "{:-<width$}", "by function ");
        for row in &r.functions {
            row_line(&mut out, row, width);
        }
    }
    if r.is_final {
        for l in &r.left_out {
            let _ = writeln!(out, "not traced: {} ({}): {}", l.function, l.op, l.reason);
        }
    }
    // Interval tables are preceded by the restart line (`target_line`).
    if r.is_final {
        for g in &r.gaps {
            let _ = writeln!(out, "{}", gap_line(g));
        }
    }
    if r.lost_events > 0 || r.dropped > 0 {
        let _ = writeln!(
            out,
            "lost events: {} (ring buffer or channel full), uncounted calls: {} (kernel maps full)",
            r.lost_events, r.dropped
        );
    }
    if let Some(o) = &r.overhead {
        let _ = writeln!(out, "{}", overhead_line(o));
    }
    out
}

/// The RocksDB split under the table (`rocksdb --by cf|db`): per database,
/// one row per (family, class) or per class. Empty if the report has none.
pub fn split(r: &Report, by: Split) -> String {
    let rows = match by {
        Split::Cf => &r.by_cf,
        Split::Db => &r.by_db,
    };
    let mut out = String::new();
    if rows.is_empty() {
        return out;
    }
    let name = |c: &CfRow| match &c.cf {
        Some(cf) => format!("  {cf} {}", c.row.name),
        None => format!("  {}", c.row.name),
    };
    let width = rows
        .iter()
        .map(|c| name(c).len())
        .max()
        .unwrap_or(10)
        .max(10);
    let title = match by {
        Split::Cf => "by database and column family ",
        Split::Db => "by database ",
    };
    let _ = writeln!(out, "{title:-<width$}");
    let mut db = None;
    for c in rows {
        if db != Some(&c.db) {
            let _ = writeln!(out, "db {}", c.db);
            db = Some(&c.db);
        }
        let mut row = c.row.clone();
        row.name = name(c);
        row_line(&mut out, &row, width);
    }
    out
}

/// A percentage with the digits a small one needs.
fn pct(v: f64) -> String {
    if v >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else if v >= 0.01 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// "probe cost ≈ ...": what the probes cost the target, and under a budget
/// how much of the time they were attached (the counts are then sampled).
pub fn overhead_line(o: &Overhead) -> String {
    let per_hit = format!(
        "per hit {:.1} µs emulated, {:.1} µs single-stepped, {}",
        o.per_hit.emulated_ns / 1000.0,
        o.per_hit.single_stepped_ns / 1000.0,
        if o.per_hit.calibrated {
            "measured at start"
        } else {
            "defaults"
        }
    );
    let head = format!("probe cost ≈ {} % of one core", pct(o.est_pct_core));
    match o.budget_pct {
        None => format!("{head} ({per_hit})"),
        Some(b) if !o.sampled() => format!("{head}, budget {} % ({per_hit})", pct(b)),
        Some(b) => {
            let how = if o.over_budget() {
                format!(
                    "attached {} % of the time (the least it goes to), still over the {} % budget",
                    pct(o.attached_pct),
                    pct(b)
                )
            } else {
                format!(
                    "attached {} % of the time to stay under {} %",
                    pct(o.attached_pct),
                    pct(b)
                )
            };
            format!(
                "{head}: {how} (est. {} % when always attached; {per_hit}); counts and rates are from the attached {} % only",
                pct(o.always_pct_core),
                pct(o.attached_pct)
            )
        }
    }
}

fn hhmmss(t: &str) -> &str {
    t.get(11..19).unwrap_or(t)
}

/// "gap: ..." — a span without data, in interval and summary tables.
pub fn gap_line(g: &Gap) -> String {
    let what = if g.upgraded {
        match (&g.old_build_id, &g.new_build_id) {
            (Some(a), Some(b)) if a != b => format!(
                "upgraded binary, build-id {} -> {}",
                a.get(..12).unwrap_or(a),
                b.get(..12).unwrap_or(b)
            ),
            _ => "replaced binary".to_string(),
        }
    } else {
        "same binary".to_string()
    };
    format!(
        "gap: no data for {:.1} s, pid {} exited {}, pid {} traced from {} ({what})",
        g.secs,
        g.old_pid,
        hhmmss(&g.exited_at),
        g.new_pid,
        hhmmss(&g.resumed_at)
    )
}

/// The target exited or came back, as one line between the tables.
pub fn target_line(e: &TargetEvent) -> String {
    match e {
        TargetEvent::Exited { pid, exe, time } => format!(
            "--- {}  target pid {pid} exited; waiting for {exe} to start again ---",
            hhmmss(time)
        ),
        TargetEvent::Restarted(g) => format!("--- {}  {} ---", hhmmss(&g.resumed_at), gap_line(g)),
    }
}

/// Log2 latency distributions, one per row with calls (like biolatency).
pub fn histograms(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", header(r));
    for row in r.rows.iter().chain(&r.functions).filter(|x| x.count > 0) {
        let _ = writeln!(
            out,
            "{}: {} calls, avg {} us, p99 {} us",
            row.name,
            thousands(row.count),
            micros(row.avg_us),
            micros(row.p99_us)
        );
        let rows = row.hist.log2_rows();
        let peak = rows.iter().map(|(_, n)| *n).max().unwrap_or(1).max(1);
        let _ = writeln!(out, "{:>22} : {:<10} distribution", "latency", "count");
        for (p, n) in rows {
            let lo = duration_ns((1u64 << p) as f64);
            let hi = duration_ns((1u64 << (p + 1)) as f64);
            let stars = (n * 40).div_ceil(peak) as usize;
            let _ = writeln!(
                out,
                "{:>10} -> {:<9} : {:<10} |{:<40}|",
                lo,
                hi,
                n,
                "*".repeat(if n > 0 { stars.max(1) } else { 0 })
            );
        }
        out.push('\n');
    }
    out
}

pub fn slow_header(threshold_us: u64) -> String {
    format!(
        "Tracing operations slower than {threshold_us} µs... Ctrl-C to end.\n{:<12} {:>7} {:<16} {:<11} {:<38} {:>10} {:>9} {:<4} {:<25} {}",
        "TIME", "TID", "THREAD", "OP", "FUNCTION", "LAT(us)", "BYTES", "MISS", "CF", "DB"
    )
}

/// One slow-operation line (without the newline); the capture's hot path
/// writes the same bytes with `render::slow::table_line`.
pub fn slow_line(e: &SlowEvent) -> String {
    let mut buf = Vec::with_capacity(160);
    super::slow::table_line(&mut buf, &e.into());
    buf.pop();
    String::from_utf8(buf).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::OpStats;

    fn report() -> Report {
        let mut s = OpStats::default();
        for ns in [1_500u64, 2_500, 40_000] {
            s.count += 1;
            s.total_ns += ns;
            s.hist.record(ns);
        }
        s.max_ns = 40_000;
        Report {
            layer: "rocksdb",
            timestamp: "2026-11-23T12:00:01.000Z".into(),
            pid: Some(42),
            interval_secs: 1.0,
            elapsed_secs: 5.0,
            rows: vec![
                s.row("GET", 1.0, true, true),
                OpStats::default().row("PUT", 1.0, false, true),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn table_shows_every_class() {
        let t = table(&report());
        assert!(t.starts_with("12:00:01  rocksdb pid 42"), "{t}");
        assert!(t.lines().nth(1).unwrap().contains("P99(us)"));
        let get = t.lines().find(|l| l.starts_with("GET")).unwrap();
        assert!(get.contains("100.0"), "{get}"); // hit ratio
        assert!(get.contains("40.0"), "{get}"); // max
        assert!(t.lines().any(|l| l.starts_with("PUT")));
    }

    #[test]
    fn histogram_rows_cover_the_range() {
        let h = histograms(&report());
        assert!(h.contains("GET: 3 calls"), "{h}");
        assert!(h.contains("1.0µs -> 2.0µs"), "{h}");
        assert!(h.contains("32.8µs -> 65.5µs"), "{h}");
        assert!(!h.contains("PUT:"), "empty rows are not drawn");
    }

    #[test]
    fn slow_lines_name_thread_and_function() {
        let e = SlowEvent {
            time: "2026-11-23T12:00:01.234Z".into(),
            pid: 1,
            tid: 7,
            thread: "rocksdb:low0".into(),
            op: "WRITE",
            function: "rocksdb_write",
            latency_us: 8912.0,
            bytes: 0,
            miss: false,
            db: 0,
            db_name: Some("/var/lib/ckb/data/db".into()),
            cf: "*".into(),
        };
        let l = slow_line(&e);
        assert!(l.starts_with("12:00:01.234"), "{l}");
        assert!(
            l.contains("rocksdb:low0") && l.contains("rocksdb_write") && l.contains("8912"),
            "{l}"
        );
        assert!(l.ends_with(" /var/lib/ckb/data/db"), "{l}");
        // The header's columns are where the line's are.
        let h = slow_header(0);
        let h = h.lines().nth(1).unwrap();
        for (col, val) in [("CF", "*"), ("DB", "/var/lib/ckb/data/db")] {
            assert_eq!(h.find(col), l.find(val), "{col}\n{h}\n{l}");
        }
    }
}
