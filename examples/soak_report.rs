//! The soak report's data side (`scripts/soak-report.sh`): reads the
//! directory `scripts/soak.sh` wrote, decodes every tracer line with the
//! typed structs of `ckb_libbpf::schema` (strictly: a line this version
//! cannot account for stops the report) and the workload's own counts the
//! same way, and writes REPORT.md plus the tables the charts are drawn from
//! (`scripts/soak-charts.py`).
//!
//! ```text
//! soak_report DATA_DIR REPORT_DIR
//! ```
//! Exit 0: report written and, where the workload ran, every function's
//! captured count equals the generated one; 1: the report is written but
//! the fidelity table differs or is incomplete; 2: data missing or
//! undecodable.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ckb_libbpf::model::rocksdb::FUNCS;
use ckb_libbpf::schema::rocksdb::{Anomaly, OpRow, RocksdbReport};
use ckb_libbpf::schema::workload::Counts;
use ckb_libbpf::schema::{Line, Report, TargetEvent};
use serde::Deserialize;

/// `meta.json`: what was run, where, and how it ended (the end fields are
/// missing when the soak itself died).
#[derive(Deserialize)]
struct Meta {
    command: String,
    target: String,
    planned_secs: u64,
    sample_secs: u64,
    start_unix: u64,
    kernel: String,
    cpu: String,
    cpus: u32,
    mem_kb: u64,
    ckb_version: String,
    tool_version: String,
    tool_sha256_16: String,
    commit: String,
    episode_secs: u64,
    burst_at_secs: u64,
    burst_mb: u64,
    workload_rate: u64,
    miner_delay_ms: u64,
    tool_args: String,
    ran_secs: Option<u64>,
    stopped_by_signal: Option<bool>,
    episode_interrupted: Option<bool>,
}

/// One interval line of one tracer.
struct Interval {
    /// Seconds since the soak's start.
    t: f64,
    secs: f64,
    calls: u64,
    lost: u64,
    uncounted: u64,
    ops: BTreeMap<String, OpRow>,
    stalled_ms: f64,
}

/// Everything one tracer printed.
#[derive(Default)]
struct Source {
    intervals: Vec<Interval>,
    /// Log2 buckets per operation over the whole run: the final line's
    /// (it covers the run, the time after the last interval line too), or
    /// the interval lines' sum when there is no final line.
    hist: BTreeMap<String, BTreeMap<u32, u64>>,
    /// The interval lines' buckets summed (checked against `hist`).
    interval_hist: BTreeMap<String, BTreeMap<u32, u64>>,
    fin: Option<RocksdbReport>,
    /// (seconds since start, wall time, alert) at each alert's onset.
    onsets: Vec<(f64, String, Anomaly)>,
    /// (seconds since start, what happened to the target).
    targets: Vec<(f64, String)>,
}

fn fail(code: i32, msg: String) -> ! {
    eprintln!("soak_report: {msg}");
    std::process::exit(code)
}

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

/// Seconds of an RFC 3339 time since `start` (unix seconds).
fn since(ts: &str, start: u64) -> f64 {
    match humantime::parse_rfc3339_weak(ts.trim_end_matches('Z')) {
        Ok(t) => {
            let u = t
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            u - start as f64
        }
        Err(e) => fail(2, format!("bad timestamp {ts}: {e}")),
    }
}

fn load_source(path: &Path, start: u64) -> Source {
    let text = read(path).unwrap_or_else(|| fail(2, format!("cannot read {}", path.display())));
    let mut s = Source::default();
    for (n, l) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let line = Line::parse(l)
            .unwrap_or_else(|e| fail(2, format!("{}:{}: {e}", path.display(), n + 1)));
        match line {
            Line::Report(Report::Rocksdb(r)) if r.is_final => s.fin = Some(r),
            Line::Report(Report::Rocksdb(r)) => {
                let t = since(&r.timestamp, start);
                for (op, row) in &r.operations {
                    let h = s.interval_hist.entry(op.clone()).or_default();
                    for b in row.histogram.iter().flatten() {
                        *h.entry(b.log2).or_default() += b.count;
                    }
                }
                for a in r.anomalies.iter().flatten().filter(|a| a.onset) {
                    s.onsets.push((t, r.timestamp.clone(), a.clone()));
                }
                s.intervals.push(Interval {
                    t,
                    secs: r.interval_secs,
                    calls: r.operations.values().map(|o| o.count).sum(),
                    lost: r.lost_events,
                    uncounted: r.uncounted_calls,
                    stalled_ms: r.background.as_ref().map_or(0.0, |b| b.stalled_ms),
                    ops: r.operations,
                });
            }
            Line::Target(TargetEvent::Exited(e)) => s
                .targets
                .push((since(&e.time, start), format!("pid {} exited", e.pid))),
            Line::Target(TargetEvent::Restarted(e)) => s.targets.push((
                since(&e.time, start),
                format!("traced again as pid {} after {:.1} s", e.pid, e.gap.secs),
            )),
            other => fail(
                2,
                format!(
                    "{}:{}: not a rocksdb line: {other:?}",
                    path.display(),
                    n + 1
                ),
            ),
        }
    }
    // The final line's buckets cover the whole run; without one (a soak
    // cut short) the interval lines are all there is.
    s.hist = match &s.fin {
        Some(f) => f
            .operations
            .iter()
            .map(|(op, row)| {
                let h = row.histogram.iter().flatten().map(|b| (b.log2, b.count));
                (op.clone(), h.collect())
            })
            .collect(),
        None => s.interval_hist.clone(),
    };
    s
}

/// min / avg / p99 / max of `v` (NA-free), as table cells.
fn stats(v: &[f64], digits: usize) -> String {
    if v.is_empty() {
        return "– | – | – | –".into();
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let avg = s.iter().sum::<f64>() / s.len() as f64;
    let p99 = s[((s.len() as f64 * 0.99).ceil() as usize).clamp(1, s.len()) - 1];
    format!(
        "{:.d$} | {:.d$} | {:.d$} | {:.d$}",
        s[0],
        avg,
        p99,
        s[s.len() - 1],
        d = digits
    )
}

/// The class of a C function (GET, PUT...), from the tool's own catalog.
fn class_of(func: &str) -> String {
    FUNCS
        .iter()
        .find(|f| f.name == func)
        .map_or_else(|| "?".into(), |f| f.op.name().to_string())
}

fn hms(t: f64) -> String {
    let s = t.max(0.0) as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn us(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.1}"))
}

fn main() {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [data, out] = args.as_slice() else {
        fail(2, "usage: soak_report DATA_DIR REPORT_DIR".into())
    };
    std::fs::create_dir_all(out)
        .unwrap_or_else(|e| fail(2, format!("cannot create {}: {e}", out.display())));
    let meta: Meta = read(&data.join("meta.json"))
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| fail(2, format!("no readable meta.json in {}", data.display())));
    let start = meta.start_unix;

    // The tracers: on the node (or PID), and on the workload episodes.
    let mut sources: Vec<(&str, Source)> = Vec::new();
    for (name, file) in [("node", "node.jsonl"), ("workload", "workload.jsonl")] {
        if data.join(file).exists() {
            sources.push((name, load_source(&data.join(file), start)));
        }
    }
    if sources.is_empty() {
        fail(
            2,
            format!("no node.jsonl or workload.jsonl in {}", data.display()),
        );
    }

    // The workload's ground truth: one line per finished episode, decoded
    // strictly; a workload built before it counted batch bytes has no
    // `write_bytes` (the fidelity table then leaves WRITE bytes out).
    let mut write_counted = true;
    let episodes: Vec<Counts> = read(&data.join("workload-counts.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(n, l)| {
            let bad = |e: String| -> ! { fail(2, format!("workload-counts.jsonl:{}: {e}", n + 1)) };
            let mut raw: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| bad(e.to_string()));
            if raw.get("write_bytes").is_none() {
                write_counted = false;
                raw["write_bytes"] = 0.into();
            }
            ckb_libbpf::schema::decode_strict::<Counts>(&raw.to_string()).unwrap_or_else(|e| bad(e))
        })
        .collect();
    // Bursts: `BURST start|done <unix ms>` on the workload's stderr.
    let mut bursts: Vec<(f64, Option<f64>)> = Vec::new();
    for l in read(&data.join("workload.err")).unwrap_or_default().lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        let t = |s: &str| s.parse::<f64>().ok().map(|ms| ms / 1000.0 - start as f64);
        match w.as_slice() {
            ["BURST", "start", ms] => bursts.extend(t(ms).map(|s| (s, None))),
            ["BURST", "done", ms] => {
                if let (Some(b), Some(e)) = (bursts.last_mut(), t(ms)) {
                    b.1 = Some(e);
                }
            }
            _ => {}
        }
    }

    write_tables(out, &sources, &bursts);
    let (md, fidelity_ok) = report(
        &meta,
        data,
        out,
        &sources,
        (&episodes, write_counted),
        &bursts,
    );
    std::fs::write(out.join("REPORT.md"), md)
        .unwrap_or_else(|e| fail(2, format!("cannot write REPORT.md: {e}")));
    eprintln!("soak_report: wrote {}", out.join("REPORT.md").display());
    if !fidelity_ok {
        eprintln!("soak_report: the fidelity table differs or is incomplete (see REPORT.md)");
        std::process::exit(1);
    }
}

/// The charts' inputs, one TSV each (scripts/soak-charts.py).
fn write_tables(out: &Path, sources: &[(&str, Source)], bursts: &[(f64, Option<f64>)]) {
    let mut iv =
        String::from("source\tt_s\tinterval_s\tevents_per_s\tlost\tuncounted\tstalled_ms\n");
    let mut p99 = String::from("source\tt_s\top\tcount\tavg_us\tp99_us\n");
    let mut hist = String::from("source\top\tlog2\tcount\n");
    for (name, s) in sources {
        for i in &s.intervals {
            let _ = writeln!(
                iv,
                "{name}\t{:.1}\t{:.3}\t{:.1}\t{}\t{}\t{:.1}",
                i.t,
                i.secs,
                i.calls as f64 / i.secs.max(1e-9),
                i.lost,
                i.uncounted,
                i.stalled_ms
            );
            for (op, r) in &i.ops {
                if let (Some(a), Some(p)) = (r.avg_us, r.p99_us) {
                    let _ = writeln!(p99, "{name}\t{:.1}\t{op}\t{}\t{a:.3}\t{p:.3}", i.t, r.count);
                }
            }
        }
        for (op, h) in &s.hist {
            for (b, n) in h {
                let _ = writeln!(hist, "{name}\t{op}\t{b}\t{n}");
            }
        }
    }
    let mut bt = String::from("start_s\tend_s\n");
    for (a, b) in bursts {
        let _ = writeln!(
            bt,
            "{a:.1}\t{}",
            b.map_or("NA".into(), |b| format!("{b:.1}"))
        );
    }
    for (f, t) in [
        ("intervals.tsv", iv),
        ("p99.tsv", p99),
        ("hist.tsv", hist),
        ("bursts.tsv", bt),
    ] {
        std::fs::write(out.join(f), t)
            .unwrap_or_else(|e| fail(2, format!("cannot write {f}: {e}")));
    }
}

/// A column of soak.tsv as numbers (NA and missing cells left out).
fn column(tsv: &str, name: &str) -> Vec<f64> {
    let mut lines = tsv.lines();
    let Some(i) = lines
        .next()
        .and_then(|h| h.split('\t').position(|c| c == name))
    else {
        return Vec::new();
    };
    lines
        .filter_map(|l| l.split('\t').nth(i)?.parse().ok())
        .collect()
}

/// REPORT.md, and whether the fidelity table holds exactly.
fn report(
    meta: &Meta,
    data: &Path,
    out: &Path,
    sources: &[(&str, Source)],
    episodes: (&[Counts], bool),
    bursts: &[(f64, Option<f64>)],
) -> (String, bool) {
    let mut m = String::new();
    let ran = meta.ran_secs;
    let what = match meta.target.as_str() {
        "ckb" => format!(
            "a CKB dev chain ({}; Dummy miner, one block per {} ms) traced by `ckb-libbpf rocksdb --pid NODE`, and beside it the bundled workload in {} s episodes with a {} MiB write burst each, traced by a second instance",
            meta.ckb_version, meta.miner_delay_ms, meta.episode_secs, meta.burst_mb
        ),
        "workload" => format!(
            "the bundled workload in {} s episodes with a {} MiB write burst each, traced by `ckb-libbpf rocksdb --binary`",
            meta.episode_secs, meta.burst_mb
        ),
        pid => format!("process {pid}, traced by `ckb-libbpf rocksdb --pid`"),
    };
    let _ = writeln!(m, "# ckb-libbpf soak report\n");
    let _ = writeln!(
        m,
        "{} planned, {} run: {what}. Generated from the soak's data by `scripts/soak-report.sh`; every tracer line was decoded with the typed structs of `src/schema/` (strictly).\n",
        hms(meta.planned_secs as f64),
        ran.map_or("unknown (the soak did not finish)".into(), |r| hms(r as f64)),
    );

    // Verdicts.
    let _ = writeln!(m, "## Verdicts (S-1..S-3)\n");
    match read(&data.join("verdict.txt")) {
        Some(v) => {
            let _ = writeln!(m, "```\n{}```\n", v);
        }
        None => {
            let _ = writeln!(m, "No verdict: the soak did not reach its end.\n");
        }
    }
    let dm = read(&data.join("dmesg-new.txt")).unwrap_or_default();
    if !dm.trim().is_empty() {
        let _ = writeln!(
            m,
            "Kernel log lines that count against S-3:\n\n```\n{dm}```\n"
        );
    }
    if meta.stopped_by_signal == Some(true) {
        let _ = writeln!(
            m,
            "The soak was stopped by a signal before its planned end.\n"
        );
    }

    // Resources.
    let tsv = read(&data.join("soak.tsv")).unwrap_or_default();
    let _ = writeln!(
        m,
        "## Resources\n\nSampled every {} s (`soak.tsv`). CPU is % of one core over each sample; events/s are RocksDB calls counted per second of each tracer interval.\n",
        meta.sample_secs
    );
    let _ = writeln!(
        m,
        "| figure | min | avg | p99 | max |\n| --- | ---: | ---: | ---: | ---: |"
    );
    let kb_mb = |v: Vec<f64>| v.into_iter().map(|k| k / 1024.0).collect::<Vec<_>>();
    for (label, col, mb) in [
        ("tracer on the node: RSS (MB)", "tool_rss_kb", true),
        ("tracer on the node: CPU (%)", "tool_cpu_pct", false),
        ("node: CPU (%)", "node_cpu_pct", false),
        ("node: RSS (MB)", "node_rss_kb", true),
        ("tracer on the workload: RSS (MB)", "wl_tool_rss_kb", true),
        ("tracer on the workload: CPU (%)", "wl_tool_cpu_pct", false),
    ] {
        let v = column(&tsv, col);
        if v.is_empty() {
            continue;
        }
        let v = if mb { kb_mb(v) } else { v };
        let _ = writeln!(m, "| {label} | {} |", stats(&v, 2));
    }
    let mut totals = Vec::new();
    for (name, s) in sources {
        let ev: Vec<f64> = s
            .intervals
            .iter()
            .map(|i| i.calls as f64 / i.secs.max(1e-9))
            .collect();
        let _ = writeln!(m, "| {name}: events/s | {} |", stats(&ev, 0));
        let calls: u64 = s.intervals.iter().map(|i| i.calls).sum();
        let lost: u64 = s.intervals.iter().map(|i| i.lost + i.uncounted).sum();
        totals.push((name, calls, lost));
    }
    let tool_rss_max = column(&tsv, "tool_rss_kb")
        .into_iter()
        .chain(column(&tsv, "wl_tool_rss_kb"))
        .fold(0.0f64, f64::max);
    let _ =
        writeln!(
        m,
        "\nAgainst the proposal's thresholds:\n\n- P-2 (tracer RSS <= 50 MB): peak {:.1} MB: {}",
        tool_rss_max / 1024.0,
        if tool_rss_max <= 50.0 * 1024.0 { "PASS" } else { "FAIL" }
    );
    for (name, calls, lost) in &totals {
        let pct = if *calls > 0 {
            *lost as f64 * 100.0 / *calls as f64
        } else {
            0.0
        };
        let _ = writeln!(
            m,
            "- P-3 (loss < 0.1 %), {name}: {lost} lost or uncounted of {calls} counted calls ({pct:.4} %): {}",
            if pct < 0.1 { "PASS" } else { "FAIL" }
        );
    }
    let _ = writeln!(
        m,
        "- P-1 (node CPU with vs without the tracer) needs windows without it: `scripts/bench.sh chain` alternates bare / floor / defaults on a running dev chain (BENCHMARKS.md); this soak keeps the tracer attached throughout.\n- P-4 (sync speed) needs an IBD: not part of a dev-chain soak.\n"
    );
    let _ = writeln!(
        m,
        "![RSS, CPU, events/s and lost events over the run](resources.svg)\n\n![p99 latency per operation over the run](p99.svg)\n"
    );

    // Latency distributions.
    let _ = writeln!(m, "## Latency distributions over the whole run\n");
    for (name, s) in sources {
        let _ = writeln!(
            m,
            "### {name}\n\nLog2 buckets (`--histogram`) of the tracer's final line, which covers the whole run{}; the table's figures are that line's. Check: its buckets add up to its count, and the interval lines' buckets, summed, stay within them bucket by bucket (the difference is the time after the last interval line, in the final line only).\n",
            if s.fin.is_none() { " (missing: the tracer printed none; summed interval lines instead)" } else { "" }
        );
        let _ = writeln!(m, "| operation | calls | avg µs | p50 µs | p99 µs | max µs | histogram sum = count | interval lines within it (calls after the last) |\n| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |");
        for (op, h) in &s.hist {
            let summed: u64 = h.values().sum();
            let f = s.fin.as_ref().and_then(|f| f.operations.get(op));
            let agree = match f {
                Some(r) if r.count == summed => "yes".to_string(),
                Some(r) => format!("NO ({summed} vs {})", r.count),
                None => "– (no final report)".into(),
            };
            let ih = s.interval_hist.get(op);
            let within =
                ih.is_none_or(|ih| ih.iter().all(|(b, n)| h.get(b).copied().unwrap_or(0) >= *n));
            let in_intervals: u64 = ih.map_or(0, |ih| ih.values().sum());
            let within = match (f, within) {
                (None, _) => "–".to_string(),
                (Some(_), true) => format!("yes ({})", summed.saturating_sub(in_intervals)),
                (Some(_), false) => "NO: an interval bucket exceeds the final one".to_string(),
            };
            let _ = writeln!(
                m,
                "| {op} | {} | {} | {} | {} | {} | {agree} | {within} |",
                f.map_or(summed, |r| r.count),
                us(f.and_then(|r| r.avg_us)),
                us(f.and_then(|r| r.p50_us)),
                us(f.and_then(|r| r.p99_us)),
                us(f.and_then(|r| r.max_us)),
            );
        }
        let _ = writeln!(
            m,
            "\n![{name}: log2 histograms](hist-{name}.svg)\n\n![{name}: CDFs](cdf-{name}.svg)\n"
        );
        if let Some(f) = &s.fin {
            if let Some(lo) = f.left_out.as_ref().filter(|l| !l.is_empty()) {
                let names: Vec<String> = lo
                    .iter()
                    .map(|l| format!("{} ({})", l.function, l.op))
                    .collect();
                let _ = writeln!(
                    m,
                    "Left out by default (single-stepped first instruction): {}.\n",
                    names.join(", ")
                );
            }
            if let Some(b) = &f.background {
                let jobs: Vec<String> = b
                    .jobs
                    .iter()
                    .map(|(k, r)| format!("{k} {} (max {} µs)", r.finished, us(r.max_us)))
                    .collect();
                let _ = writeln!(
                    m,
                    "Background work seen: {}; writers stalled {:.0} ms in all.\n",
                    if jobs.is_empty() {
                        "none".into()
                    } else {
                        jobs.join(", ")
                    },
                    b.stalled_ms
                );
            }
        }
    }

    // Fidelity.
    let fidelity_ok = fidelity(&mut m, meta, sources, episodes);

    case_study(&mut m, out, meta.burst_mb, sources, bursts);

    // Anomalies.
    let _ = writeln!(
        m,
        "## Anomalies\n\nEvery alert's first interval (`onset`), with the write bursts the workload made (its stderr: `BURST start|done`). t = time since the start.\n"
    );
    if !bursts.is_empty() {
        let list: Vec<String> = bursts
            .iter()
            .map(|(a, b)| format!("{}–{}", hms(*a), b.map_or("?".into(), hms)))
            .collect();
        let _ = writeln!(m, "Bursts ({}): {}.\n", bursts.len(), list.join(", "));
    }
    let mut any = false;
    let _ = writeln!(m, "| t | time (UTC) | tracer | type | operation | avg µs (baseline) | p99 µs (baseline) | × | cause | nearest burst start |\n| --- | --- | --- | --- | --- | ---: | ---: | ---: | --- | --- |");
    for (name, s) in sources {
        for (t, ts, a) in s.onsets.iter().take(300) {
            any = true;
            let near = bursts
                .iter()
                .map(|(b, _)| t - b)
                .min_by(|x, y| x.abs().total_cmp(&y.abs()))
                .map_or("–".into(), |d| format!("{d:+.0} s"));
            let _ = writeln!(
                m,
                "| {} | {} | {name} | {} | {} | {:.1} ({:.1}) | {} ({}) | {:.1} | {} | {near} |",
                hms(*t),
                ts.get(11..19).unwrap_or(ts.as_str()),
                a.kind,
                a.operation,
                a.current_avg_us,
                a.baseline_avg_us,
                us(a.p99_us),
                us(a.baseline_p99_us),
                a.multiplier,
                a.cause
            );
        }
        if s.onsets.len() > 300 {
            let _ = writeln!(
                m,
                "| … | | {name} | {} more | | | | | | |",
                s.onsets.len() - 300
            );
        }
    }
    if !any {
        let _ = writeln!(m, "| – | | | none | | | | | | |");
    }
    for (name, s) in sources {
        for (t, what) in &s.targets {
            let _ = writeln!(m, "\n{name}: at {} the target {what}.", hms(*t));
        }
    }

    // Reproduction.
    let _ = writeln!(
        m,
        "\n## Reproduction\n\n```\n{}\n```\n\nThe 48-hour run is `make soak` (SOAK_SECS=172800 by default; CKB_BIN=/path/to/ckb or `ckb` on PATH); `make soak-smoke` is a 3-minute run of the workload alone.\n\n| | |\n| --- | --- |\n| kernel | {} |\n| CPU | {} × {} |\n| memory | {:.1} GiB |\n| CKB | {} |\n| ckb-libbpf | {} (binary sha256 {}…, commit {}) |\n| sample | {} s |\n| workload | {} calls/s, episodes of {} s, a {} MiB burst {} s into each (BURST_AT, at most 2/3 of an episode) |\n| extra tracer options | {} |\n",
        meta.command,
        meta.kernel,
        meta.cpus,
        meta.cpu,
        meta.mem_kb as f64 / 1048576.0,
        if meta.ckb_version.is_empty() { "–" } else { &meta.ckb_version },
        meta.tool_version,
        meta.tool_sha256_16,
        meta.commit,
        meta.sample_secs,
        meta.workload_rate,
        meta.episode_secs,
        meta.burst_mb,
        burst_offsets(data).unwrap_or_else(|| meta.burst_at_secs.to_string()),
        if meta.tool_args.is_empty() { "–" } else { &meta.tool_args },
    );
    (m, fidelity_ok)
}

/// The first write burst the workload's tracer alerted on, interval by
/// interval from two before it to three after it ends, with the alert as
/// the tool printed it; writes `case.tsv` (the window) for `burst.svg`.
fn case_study(
    m: &mut String,
    out: &Path,
    burst_mb: u64,
    sources: &[(&str, Source)],
    bursts: &[(f64, Option<f64>)],
) {
    let Some((_, s)) = sources.iter().find(|(n, _)| *n == "workload") else {
        return;
    };
    let step = s.intervals.first().map_or(30.0, |i| i.secs);
    let found = bursts.iter().find_map(|&(a, e)| {
        let e = e.unwrap_or(a);
        s.onsets
            .iter()
            .find(|(t, _, _)| *t >= a && *t <= e + 2.0 * step)
            .map(|o| (a, e, o))
    });
    let Some((a, e, (t, ts, alert))) = found else {
        return;
    };
    let (from, to) = (a - 2.5 * step, e + 3.5 * step);
    let _ = std::fs::write(
        out.join("case.tsv"),
        format!("from_s\tto_s\tburst_start_s\tburst_end_s\n{from:.1}\t{to:.1}\t{a:.1}\t{e:.1}\n"),
    );
    let _ = writeln!(
        m,
        "## Case study: a write burst and its alert\n\nThe workload wrote {burst_mb} MiB of 1 KiB values in batches of 256 with 256 KiB memtables from {} to {} (t, since the start): flushes, level-0 compactions and write stalls. The tracer on the workload, interval by interval (each row ends at t):\n",
        hms(a),
        hms(e)
    );
    let _ = writeln!(m, "| t | WRITE calls | WRITE avg µs | WRITE p99 µs | PUT avg µs | PUT p99 µs | TXN_COMMIT p99 µs | writers stalled (ms) | alerts starting |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    for i in s.intervals.iter().filter(|i| i.t >= from && i.t <= to) {
        let op = |o: &str| i.ops.get(o);
        let starting: Vec<String> = s
            .onsets
            .iter()
            .filter(|(ot, _, _)| (*ot - i.t).abs() < 0.5)
            .map(|(_, _, a)| format!("{} {} ({})", a.operation, a.kind, a.cause))
            .collect();
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {} | {} | {} | {:.0} | {} |",
            hms(i.t),
            op("WRITE").map_or(0, |r| r.count),
            us(op("WRITE").and_then(|r| r.avg_us)),
            us(op("WRITE").and_then(|r| r.p99_us)),
            us(op("PUT").and_then(|r| r.avg_us)),
            us(op("PUT").and_then(|r| r.p99_us)),
            us(op("TXN_COMMIT").and_then(|r| r.p99_us)),
            i.stalled_ms,
            starting.join("; ")
        );
    }
    let evidence: Vec<String> = alert
        .evidence
        .iter()
        .map(|(k, v)| format!("{k}={v:.1}"))
        .collect();
    let _ = writeln!(
        m,
        "\nThe first alert, at {ts} ({} after the burst began; an alert comes with the report of the interval it was seen in, so here up to one {step:.0} s interval late: `scripts/demo-stress.sh` measures the delay at 1 s intervals): {} {} at {:.1}× its baseline ({:.1} µs against {:.1} µs), probable cause **{}** ({}); next step: {}\n\n![the burst, interval by interval](burst.svg)\n",
        hms(t - a),
        alert.operation,
        alert.kind,
        alert.multiplier,
        alert.current_avg_us,
        alert.baseline_avg_us,
        alert.cause,
        evidence.join(", "),
        alert.next_step
    );
}

/// The burst offsets the episodes really used (episodes.tsv), e.g. "300".
fn burst_offsets(data: &Path) -> Option<String> {
    let text = read(&data.join("episodes.tsv"))?;
    let mut v: Vec<&str> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').nth(3))
        .collect();
    v.sort_unstable();
    v.dedup();
    (!v.is_empty()).then(|| v.join(", "))
}

/// The fidelity table: the workload's calls (generated, summed over its
/// episodes) against the tracer's final report (captured), per operation
/// class and per function. True when every figure agrees exactly.
/// `write_counted`: the workload counted its batches' bytes.
fn fidelity(
    m: &mut String,
    meta: &Meta,
    sources: &[(&str, Source)],
    (episodes, write_counted): (&[Counts], bool),
) -> bool {
    let _ = writeln!(m, "## Fidelity: generated vs captured\n");
    let Some((_, s)) = sources.iter().find(|(n, _)| *n == "workload") else {
        let _ = writeln!(
            m,
            "No ground truth here: a node does not count its own RocksDB calls (`scripts/e2e-ckb.sh` compares the tracer with bpftrace over a `ckb import` instead).\n"
        );
        return true;
    };
    let Some(fin) = &s.fin else {
        let _ = writeln!(
            m,
            "The workload's tracer printed no final report: no comparison.\n"
        );
        return false;
    };
    let Some(funcs) = &fin.functions else {
        let _ = writeln!(
            m,
            "The workload's tracer ran without `--by-function`: no comparison.\n"
        );
        return false;
    };
    let mut generated: BTreeMap<String, u64> = BTreeMap::new();
    let (mut put_b, mut get_b, mut miss, mut write_b) = (0, 0, 0, 0);
    for e in episodes {
        for (f, n) in &e.calls {
            *generated.entry(f.clone()).or_default() += n;
        }
        put_b += e.put_bytes;
        get_b += e.get_bytes;
        miss += e.get_misses;
        write_b += e.write_bytes;
    }
    let mut ok = meta.episode_interrupted != Some(true) && !episodes.is_empty();
    let _ = writeln!(
        m,
        "{} workload episodes{}; generated = the calls each episode counted itself (`workload-counts.jsonl`), captured = the tracer's final report (`--ops all --by-function`). Lost events {}, uncounted calls {}.\n",
        episodes.len(),
        if meta.episode_interrupted == Some(true) {
            " (the last one was interrupted: its calls were captured but never counted, so the table cannot agree)"
        } else {
            ""
        },
        fin.lost_events,
        fin.uncounted_calls
    );
    // Per class.
    let mut by_class: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (f, n) in &generated {
        by_class.entry(class_of(f)).or_default().0 += n;
    }
    for (op, r) in &fin.operations {
        by_class.entry(op.clone()).or_default().1 = r.count;
    }
    let _ = writeln!(
        m,
        "| operation | generated | captured | difference |\n| --- | ---: | ---: | ---: |"
    );
    for (op, (g, c)) in &by_class {
        ok &= g == c;
        let _ = writeln!(m, "| {op} | {g} | {c} | {} |", *c as i128 - *g as i128);
    }
    let (tg, tc) = by_class
        .values()
        .fold((0, 0), |(a, b), (g, c)| (a + g, b + c));
    let _ = writeln!(
        m,
        "| **all** | **{tg}** | **{tc}** | **{}** |\n",
        tc as i128 - tg as i128
    );
    let row = |o: &str| fin.operations.get(o);
    let mut bytes = vec![
        (
            "PUT bytes (key + value)",
            put_b,
            row("PUT").and_then(|r| r.bytes),
        ),
        (
            "GET bytes (values found)",
            get_b,
            row("GET").and_then(|r| r.bytes),
        ),
        ("GET misses", miss, row("GET").and_then(|r| r.misses)),
    ];
    if write_counted {
        bytes.push((
            "WRITE bytes (batch data sizes)",
            write_b,
            row("WRITE").and_then(|r| r.bytes),
        ));
    }
    let _ = writeln!(
        m,
        "| figure | generated | captured |\n| --- | ---: | ---: |"
    );
    for (label, g, c) in bytes {
        ok &= c == Some(g);
        let _ = writeln!(
            m,
            "| {label} | {g} | {} |",
            c.map_or("–".into(), |c| c.to_string())
        );
    }
    let _ = writeln!(m, "\nPer function:\n\n| function | class | generated | captured |\n| --- | --- | ---: | ---: |");
    let mut names: Vec<&String> = generated.keys().chain(funcs.keys()).collect();
    names.sort();
    names.dedup();
    for f in names {
        let g = generated.get(f).copied().unwrap_or(0);
        let c = funcs.get(f).map_or(0, |r| r.count);
        ok &= g == c;
        let _ = writeln!(m, "| {f} | {} | {g} | {c} |", class_of(f));
    }
    let _ = writeln!(
        m,
        "\nFidelity: {}\n",
        if ok {
            "every figure exact"
        } else {
            "DIFFERS (see above)"
        }
    );
    ok
}
