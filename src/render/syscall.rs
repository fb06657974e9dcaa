//! Views of a `SyscallReport`: the table and its JSON Lines twin. Field
//! names of the JSON are an API (README "syscall JSON"); change them
//! deliberately.

use std::fmt::Write as _;

use super::{bytes, duration_ns, gap_line, micros, thousands};
use crate::model::syscall::{is_background, SyscallReport};
use crate::model::Row;
use crate::schema::{self, syscall as s, to_line, Line};

fn ms(ns: u64) -> String {
    let v = ns as f64 / 1e6;
    if v >= 100.0 {
        thousands(v.round() as u64)
    } else {
        format!("{v:.2}")
    }
}

fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{:.1}%", v * 100.0))
        .unwrap_or_else(|| "-".into())
}

fn opt_bytes(v: Option<u64>) -> String {
    v.map(|b| bytes(b as f64)).unwrap_or_else(|| "-".into())
}

fn header(r: &SyscallReport) -> String {
    let pid = r
        .pid
        .map(|p| format!("pid {p}"))
        .unwrap_or_else(|| "all processes".into());
    let threads = r
        .derived
        .threads
        .map(|t| format!(", {t} threads"))
        .unwrap_or_default();
    if r.is_final {
        format!(
            "=== syscall summary: {pid}{threads}, {:.1} s captured, backend {} ===",
            r.elapsed_secs, r.backend
        )
    } else {
        let time = r.timestamp.get(11..19).unwrap_or(&r.timestamp);
        format!(
            "{time}  syscall {pid}{threads}  backend {}  interval {:.1}s  elapsed {:.0}s",
            r.backend, r.interval_secs, r.elapsed_secs
        )
    }
}

/// The table: top syscalls, categories, roles, writes by role, derived
/// metrics, probe cost, drops.
pub fn table(r: &SyscallReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", header(r));
    let _ = writeln!(
        out,
        "{:<16} {:<8} {:>10} {:>9} {:>10} {:>8} {:>8} {:>8} {:>9} {:>7} {:>10}",
        "SYSCALL",
        "CATEGORY",
        "COUNT",
        "RATE/s",
        "TOTAL(ms)",
        "AVG(us)",
        "P50(us)",
        "P99(us)",
        "MAX(us)",
        "ERRORS",
        "BYTES"
    );
    for (name, s) in &r.syscalls {
        let _ = writeln!(
            out,
            "{:<16} {:<8} {:>10} {:>9} {:>10} {:>8} {:>8} {:>8} {:>9} {:>7} {:>10}",
            name,
            s.category.name(),
            thousands(s.row.count),
            format!("{:.1}", s.row.qps),
            ms(s.total_ns),
            micros(s.row.avg_us),
            micros(s.row.p50_us),
            micros(s.row.p99_us),
            micros(s.row.max_us),
            thousands(s.errors),
            opt_bytes(s.row.bytes),
        );
    }
    if r.distinct > r.syscalls.len() {
        let _ = writeln!(
            out,
            "({} more syscalls; --top 0 shows all)",
            r.distinct - r.syscalls.len()
        );
    }
    let _ = writeln!(
        out,
        "total: {} calls, {} ms in syscalls",
        thousands(r.total_calls),
        ms(r.total_ns)
    );

    let _ = writeln!(
        out,
        "\n{:<12} {:>10} {:>10} {:>7} {:>10} {:>10}",
        "CATEGORY", "COUNT", "TOTAL(ms)", "ERRORS", "READ", "WRITTEN"
    );
    for (c, row) in &r.categories {
        let _ = writeln!(
            out,
            "{:<12} {:>10} {:>10} {:>7} {:>10} {:>10}",
            c.name(),
            thousands(row.count),
            ms(row.total_ns),
            thousands(row.errors),
            bytes(row.bytes_read as f64),
            bytes(row.bytes_written as f64),
        );
    }

    let _ = writeln!(
        out,
        "\n{:<14} {:>7} {:>10} {:>10} {:>7} {:>10} {:>10} {:>6}  FAMILIES",
        "ROLE", "THREADS", "COUNT", "TOTAL(ms)", "FUTEX%", "READ", "WRITTEN", "FSYNCS"
    );
    for (role, row) in &r.roles {
        let fams: Vec<String> = row
            .families
            .iter()
            .map(|f| {
                if f.is_empty() {
                    "(digits)".into()
                } else {
                    format!("{f}*")
                }
            })
            .collect();
        let _ = writeln!(
            out,
            "{:<14} {:>7} {:>10} {:>10} {:>7} {:>10} {:>10} {:>6}  {}",
            role,
            row.threads,
            thousands(row.count),
            ms(row.total_ns),
            pct(row.futex_wait_ratio),
            bytes(row.bytes_read as f64),
            bytes(row.bytes_written as f64),
            row.fsyncs,
            fams.join(" "),
        );
    }

    if !r.writes_by_role.is_empty() {
        let _ = writeln!(
            out,
            "\nfile writes and syncs by role (RocksDB's WAL is written by the committing foreground thread)"
        );
        let _ = writeln!(
            out,
            "{:<16} {:<14} {:<10} {:>9} {:>10} {:>8} {:>8} {:>9}",
            "SYSCALL", "ROLE", "KIND", "COUNT", "BYTES", "AVG(us)", "P99(us)", "MAX(us)"
        );
        for w in &r.writes_by_role {
            let _ = writeln!(
                out,
                "{:<16} {:<14} {:<10} {:>9} {:>10} {:>8} {:>8} {:>9}",
                w.syscall,
                w.role,
                if is_background(&w.role) {
                    "background"
                } else {
                    "foreground"
                },
                thousands(w.row.count),
                opt_bytes(w.row.bytes),
                micros(w.row.avg_us),
                micros(w.row.p99_us),
                micros(w.row.max_us),
            );
        }
    }

    let d = &r.derived;
    let fsync = d
        .fsync
        .as_ref()
        .map(|f| {
            format!(
                "{} calls, p50 {} p99 {} max {} us",
                thousands(f.count),
                micros(f.p50_us),
                micros(f.p99_us),
                micros(f.max_us)
            )
        })
        .unwrap_or_else(|| "none".into());
    let _ = writeln!(
        out,
        "\nfutex wait ratio {} ({} in futex)  epoll wakeups {:.1}/s of {:.1} waits/s  fsync+fdatasync: {}",
        pct(d.futex_wait_ratio),
        duration_ns(d.futex_ns as f64),
        d.epoll_wakeups_per_sec,
        d.epoll_calls_per_sec,
        fsync
    );
    for (name, count, ns) in &r.probe_cost {
        let _ = writeln!(
            out,
            "probe cost (not in the profile): {} `{name}` syscalls, {} — made by active uretprobes (e.g. `ckb-libbpf rocksdb`)",
            thousands(*count),
            duration_ns(*ns as f64)
        );
    }
    if r.uncounted > 0 || r.untimed > 0 {
        let _ = writeln!(
            out,
            "uncounted calls: {} (aggregation map full), untimed calls: {} (thread map full)",
            r.uncounted, r.untimed
        );
    }
    // Interval tables are preceded by the restart line (`target_line`).
    if r.is_final {
        for g in &r.gaps {
            let _ = writeln!(out, "{}", gap_line(g));
        }
    }
    out
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1e3
}

fn latency(row: &Row) -> s::Latency {
    s::Latency {
        count: row.count,
        rate: row.qps,
        avg_us: row.avg_us,
        p50_us: row.p50_us,
        p99_us: row.p99_us,
        max_us: row.max_us,
        bytes: row.bytes,
    }
}

/// A report as its typed line.
pub fn line(r: &SyscallReport) -> s::SyscallReport {
    let syscalls = r
        .syscalls
        .iter()
        .map(|(name, c)| {
            let by_role = c
                .by_role
                .iter()
                .map(|(role, cell)| {
                    let cell = s::RoleCell {
                        count: cell.count,
                        total_us: us(cell.total_ns),
                        errors: cell.errors,
                        bytes: cell.bytes,
                    };
                    (role.clone(), cell)
                })
                .collect();
            let e = s::SyscallEntry {
                count: c.row.count,
                rate: c.row.qps,
                avg_us: c.row.avg_us,
                p50_us: c.row.p50_us,
                p99_us: c.row.p99_us,
                max_us: c.row.max_us,
                bytes: c.row.bytes,
                nr: c.nr,
                category: c.category.name().into(),
                total_us: us(c.total_ns),
                errors: c.errors,
                by_role,
            };
            (name.clone(), e)
        })
        .collect();
    let categories = r
        .categories
        .iter()
        .map(|(c, row)| {
            let e = s::CategoryEntry {
                count: row.count,
                total_us: us(row.total_ns),
                errors: row.errors,
                bytes_read: row.bytes_read,
                bytes_written: row.bytes_written,
            };
            (c.name().to_string(), e)
        })
        .collect();
    let roles = r
        .roles
        .iter()
        .map(|(role, row)| {
            let e = s::RoleEntry {
                background: is_background(role),
                families: row.families.iter().cloned().collect(),
                threads: row.threads,
                count: row.count,
                total_us: us(row.total_ns),
                errors: row.errors,
                bytes_read: row.bytes_read,
                bytes_written: row.bytes_written,
                fsyncs: row.fsyncs,
                futex_us: us(row.futex_ns),
                futex_wait_ratio: row.futex_wait_ratio,
            };
            (role.clone(), e)
        })
        .collect();
    let writes_by_role = r
        .writes_by_role
        .iter()
        .map(|w| s::WriteEntry {
            count: w.row.count,
            rate: w.row.qps,
            avg_us: w.row.avg_us,
            p50_us: w.row.p50_us,
            p99_us: w.row.p99_us,
            max_us: w.row.max_us,
            bytes: w.row.bytes,
            syscall: w.syscall.clone(),
            role: w.role.clone(),
            background: is_background(&w.role),
        })
        .collect();
    let d = &r.derived;
    s::SyscallReport {
        backend: r.backend.into(),
        timestamp: r.timestamp.clone(),
        pid: r.pid,
        interval_secs: r.interval_secs,
        elapsed_secs: r.elapsed_secs,
        is_final: r.is_final,
        total_calls: r.total_calls,
        total_us: us(r.total_ns),
        distinct_syscalls: r.distinct as u64,
        syscalls,
        categories,
        roles,
        writes_by_role,
        derived: s::Derived {
            threads: d.threads,
            futex_us: us(d.futex_ns),
            futex_wait_ratio: d.futex_wait_ratio,
            epoll_waits_per_sec: d.epoll_calls_per_sec,
            epoll_wakeups_per_sec: d.epoll_wakeups_per_sec,
            fsync: d.fsync.as_ref().map(latency),
        },
        probe_cost: r
            .probe_cost
            .iter()
            .map(|(n, count, ns)| {
                let e = s::ProbeCostEntry {
                    count: *count,
                    total_us: us(*ns),
                };
                (n.clone(), e)
            })
            .collect(),
        uncounted_calls: r.uncounted,
        untimed_calls: r.untimed,
        gaps: r.gaps.iter().map(super::json::gap).collect(),
    }
}

/// One report as one JSON line.
pub fn json(r: &SyscallReport) -> String {
    to_line(&Line::Report(schema::Report::Syscall(line(r))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::syscall::{build, syscall_nr, CallStats, Span};
    use std::collections::HashMap;

    fn decoded(line: &str) -> s::SyscallReport {
        match schema::decode_strict::<Line>(line).unwrap() {
            Line::Report(schema::Report::Syscall(r)) => r,
            l => panic!("{l:?}"),
        }
    }

    fn report() -> SyscallReport {
        let mut cells = HashMap::new();
        let mut pw = CallStats::default();
        for _ in 0..4 {
            pw.op.count += 1;
            pw.op.total_ns += 2000;
            pw.op.hist.record(2000);
            pw.positive += 1;
        }
        pw.op.bytes = 4 * 4096;
        pw.op.max_ns = 2000;
        let mut fs = CallStats::default();
        fs.op.count = 1;
        fs.op.total_ns = 3_000_000;
        fs.op.hist.record(3_000_000);
        fs.op.max_ns = 3_000_000;
        cells.insert(
            ("rocksdb:low".to_string(), syscall_nr("pwrite64").unwrap()),
            pw.clone(),
        );
        cells.insert(
            ("ChainService".to_string(), syscall_nr("pwrite64").unwrap()),
            pw,
        );
        cells.insert(
            ("ChainService".to_string(), syscall_nr("fdatasync").unwrap()),
            fs,
        );
        build(
            &cells,
            &Span {
                backend: "tp_btf",
                timestamp: "2026-11-23T12:00:01.000Z".into(),
                pid: Some(42),
                secs: 1.0,
                main: "ckb".into(),
                threads: Some(vec![
                    "ckb".into(),
                    "ChainService".into(),
                    "rocksdb:low0".into(),
                ]),
                ..Default::default()
            },
        )
    }

    #[test]
    fn table_names_backend_roles_and_derived_metrics() {
        let t = table(&report());
        assert!(
            t.starts_with("12:00:01  syscall pid 42, 3 threads  backend tp_btf"),
            "{t}"
        );
        let fd = t.lines().find(|l| l.starts_with("fdatasync ")).unwrap();
        assert!(fd.contains("sync"), "{fd}");
        assert!(
            t.lines().any(|l| l.starts_with("pwrite64")
                && l.contains("compaction")
                && l.contains("background")),
            "{t}"
        );
        assert!(
            t.lines()
                .any(|l| l.starts_with("compaction") && l.contains("rocksdb:low*")),
            "{t}"
        );
        assert!(t.contains("fsync+fdatasync: 1 calls"), "{t}");
    }

    #[test]
    fn json_is_one_line_with_the_same_content() {
        let line = json(&report());
        assert!(!line.contains('\n'));
        assert!(
            line.starts_with(r#"{"type":"report","layer":"syscall","#),
            "{line}"
        );
        let v = decoded(&line);
        assert_eq!(v.backend, "tp_btf");
        let pw = &v.syscalls["pwrite64"];
        assert_eq!((pw.count, pw.bytes), (8, Some(8 * 4096)));
        assert_eq!(pw.by_role["compaction"].bytes, Some(4 * 4096));
        assert_eq!(v.roles["chain"].fsyncs, 1);
        assert!(v.roles["compaction"].background);
        assert_eq!(v.derived.fsync.as_ref().map(|f| f.count), Some(1));
        assert_eq!(v.categories["file_io"].bytes_written, 8 * 4096);
        assert_eq!(v.writes_by_role.len(), 3);
    }

    #[test]
    fn gaps_show_in_the_summary_table_and_in_every_json_report() {
        let g = crate::model::Gap {
            old_pid: 7,
            new_pid: 8,
            exited_at: "2026-11-23T12:00:01.000Z".into(),
            resumed_at: "2026-11-23T12:00:03.000Z".into(),
            secs: 2.0,
            ..Default::default()
        };
        let mut r = report();
        assert_eq!(decoded(&json(&r)).gaps, [], "no restart, no gap");
        r.gaps = vec![g];
        assert!(
            !table(&r).contains("gap:"),
            "interval: the restart line says it"
        );
        let v = decoded(&json(&r));
        assert_eq!((v.gaps[0].old_pid, v.gaps[0].new_pid), (7, 8));
        r.is_final = true;
        let t = table(&r);
        assert!(
            t.contains("gap: no data for 2.0 s, pid 7 exited 12:00:01, pid 8 traced from 12:00:03"),
            "{t}"
        );
    }
}
