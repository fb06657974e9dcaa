//! The background layer against the bundled workload's write burst, in the
//! real kernel: the compactions, flushes and stalls the tool reports must
//! be the ones RocksDB's own statistics count for the same run.

use std::time::{Duration, SystemTime};

use ckb_libbpf::schema::{BackgroundReport, BackgroundSection};

use crate::common::*;

/// Attaches `ckb-libbpf background` to a workload that writes a burst of
/// `mb` MiB with tiny memtables and waits for RocksDB to settle; returns
/// the workload's counts, the tool's final report, its stderr and the BPF
/// programs it held.
fn burst_capture(
    mb: &str,
    env: &[(&str, &str)],
) -> (Counts, BackgroundReport, Vec<String>, Vec<u64>) {
    let mut wl = Workload::start(&["--rounds", "1", "--burst-mb", mb, "--small-memtables"]);
    let pid = wl.pid.to_string();
    let mut tool = Tool::start_env(
        env,
        &[
            "background",
            "--pid",
            &pid,
            "--json",
            "--jobs",
            "--interval",
            "0.5",
        ],
    );
    tool.wait_attached();
    let progs = progs_held_by(tool.child.id());
    // Returns once the burst is written and background work has settled.
    let counts = wl.run();
    tool.signal(libc::SIGINT);
    let (status, out, err) = tool.wait();
    wl.finish();
    assert_eq!(status.code(), Some(0), "stderr: {err:#?}");
    // Reports and finished jobs only, each decoded exactly.
    let lines = lines(&out);
    let mut jobs_seen = std::collections::BTreeMap::<String, u64>::new();
    for l in &lines {
        match l {
            Line::Report(Report::Background(_)) => {}
            Line::BackgroundJob(j) => *jobs_seen.entry(j.kind.clone()).or_default() += 1,
            l => panic!("not a background line: {l:?}"),
        }
    }
    let Report::Background(fin) = final_report(&out) else {
        unreachable!("only background reports")
    };
    // `--jobs`: one line per finished job, none lost.
    assert_eq!(fin.lost_events, 0);
    for (kind, row) in &fin.background.jobs {
        let lines = jobs_seen.get(kind).copied().unwrap_or(0);
        assert_eq!(lines, row.finished, "{kind}: one line per finished job");
    }
    (counts, fin, err, progs)
}

/// (started, finished, in flight) of one kind of job.
fn jobs(b: &BackgroundSection, kind: &str) -> (u64, u64, u64) {
    let j = b
        .jobs
        .get(kind)
        .unwrap_or_else(|| panic!("{kind} missing: {b:?}"));
    (j.started, j.finished, j.in_flight)
}

/// RocksDB's own statistics of a run (`--small-memtables` or `--stats`).
fn stats(c: &Counts) -> &RocksStats {
    c.rocksdb
        .as_ref()
        .expect("the workload reports RocksDB's statistics")
}

#[test]
fn compactions_flushes_and_stalls_equal_rocksdb_statistics() {
    require_bpf();
    let (counts, fin, err, progs) = burst_capture("8", &[]);
    let rocks = stats(&counts);
    let bg = &fin.background;
    eprintln!("RocksDB statistics: {rocks:?}\nckb-libbpf: {bg:?}");
    assert!(rocks.settled, "RocksDB never settled: {counts:?}");
    let (flushes, compactions) = (rocks.flushes, rocks.compactions);
    // The burst must really have caused background work, or this proves nothing.
    assert!(flushes >= 4 && compactions >= 1, "{counts:?}");

    // Exact: every FlushJob::Run / CompactionJob::Run the probes saw is one
    // RocksDB counted, and nothing is left running after it settled.
    assert_eq!(jobs(bg, "flush"), (flushes, flushes, 0), "{err:#?}");
    assert_eq!(jobs(bg, "compaction"), (compactions, compactions, 0));
    assert_eq!(bg.absent, Vec::<String>::new());

    // Stalls: RocksDB counts the DelayWrite calls that did delay; the
    // probes count every DelayWrite call, and time the whole call, which
    // contains RocksDB's own measurement (1 % slack for its wall clock).
    let (stall_us, stalls) = (rocks.stall_micros, rocks.stalls);
    let (started, finished, _) = jobs(bg, "write_stall");
    if stall_us > 0 {
        assert!(finished >= stalls && stalls > 0, "{bg:?} vs {counts:?}");
        assert_eq!(started, finished);
        assert!(
            bg.stalled_ms * 1000.0 >= stall_us as f64 * 0.99,
            "stalled {} ms < RocksDB's {stall_us} us",
            bg.stalled_ms
        );
        // A stall starts with a stop or delay token.
        let (stops, _, _) = jobs(bg, "stop_token");
        let (delays, _, _) = jobs(bg, "delay_token");
        assert!(stops + delays > 0, "{bg:?}");
    } else {
        eprintln!("note: this run did not stall ({counts:?})");
    }
    // No probe outlives the tool.
    assert!(!progs.is_empty());
    assert_eq!(progs_left(&progs), Vec::<u64>::new());
}

#[test]
fn single_uprobe_backend_counts_the_same() {
    require_bpf();
    let (counts, fin, _, _) = burst_capture("4", &[("CKB_LIBBPF_BACKEND", "single")]);
    let rocks = stats(&counts);
    assert!(rocks.flushes >= 2, "{counts:?}");
    assert_eq!(jobs(&fin.background, "flush").1, rocks.flushes);
    assert_eq!(jobs(&fin.background, "compaction").1, rocks.compactions);
}

#[test]
fn a_target_without_rocksdb_internals_is_a_usage_error() {
    require_bpf();
    let (code, _, err) = run_tool(&["background", "--binary", "/bin/true"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("none of RocksDB's background functions"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
    let (code, _, err) = run_tool(&["background"]);
    assert_eq!(code, 2, "{err}");
}

/// F-7 through the real command line: `ckb-libbpf rocksdb` on a workload
/// that runs quiet rounds (the baseline), then a write burst. The burst's
/// writes stall for tens of milliseconds against a baseline of microseconds,
/// so an alert must come and name RocksDB's background work; and the
/// compactions and flushes in the final report are exactly RocksDB's own.
#[test]
fn rocksdb_alerts_on_a_write_burst_and_counts_background_work_exactly() {
    require_bpf();
    let mut wl = Workload::start(&[
        "--secs",
        "14",
        "--pause-ms",
        "50",
        "--burst-at",
        "8",
        "--burst-mb",
        "8",
        "--small-memtables",
    ]);
    let pid = wl.pid.to_string();
    let mut tool = Tool::start(&[
        "rocksdb",
        "--pid",
        &pid,
        "--json",
        "--interval",
        "0.5",
        "--baseline-secs",
        "5",
    ]);
    tool.wait_attached();
    // The burst starts 8 s after `go` or later: an alert within 15 s of
    // it comes at the latest 23 s after this.
    let go = SystemTime::now();
    let counts = wl.run();
    tool.signal(libc::SIGINT);
    let (status, out, err) = tool.wait();
    wl.finish();
    assert_eq!(status.code(), Some(0), "{err:#?}");
    let reports = rocksdb_reports(&out);
    let rocks = stats(&counts);
    assert!(
        rocks.stall_micros > 0,
        "the burst must stall, or this proves little: {counts:?}"
    );
    let (first_at, first) = reports
        .iter()
        .flat_map(|r| {
            let alerts = r
                .anomalies
                .as_ref()
                .expect("rocksdb reports carry anomalies");
            alerts.iter().map(move |a| (&r.timestamp, a))
        })
        .find(|(_, a)| a.onset)
        .unwrap_or_else(|| panic!("no alert; workload {counts:?}"));
    eprintln!("first alert at {first_at}: {first:?}");
    let background_causes = ["write_stall", "compaction", "flush"];
    assert!(
        background_causes.contains(&first.cause.as_str()),
        "{first:?}"
    );
    // A write_stall alert (evidence alone) may come first; a latency spike
    // is over the multiplier.
    assert!(
        first.kind == "write_stall" || (first.kind == "latency_spike" && first.multiplier > 5.0),
        "{first:?}"
    );
    assert!(!first.evidence.is_empty() && !first.next_step.is_empty());
    // F-7's bound: the alert comes within 15 s of the burst.
    let at = humantime::parse_rfc3339_weak(first_at).expect("RFC 3339 report time");
    let after_go = at.duration_since(go).unwrap_or_default();
    assert!(
        after_go <= Duration::from_secs(8 + 15),
        "the alert came {after_go:?} after go, more than 15 s after the burst at 8 s"
    );

    let fin = final_rocksdb(&out);
    let raised = reports
        .iter()
        .filter(|r| !r.is_final)
        .flat_map(|r| r.anomalies.iter().flatten())
        .filter(|a| a.onset)
        .count() as u64;
    assert!(raised >= 1);
    assert_eq!(fin.anomaly_alerts, Some(raised), "one count per onset");
    assert!(rocks.settled, "{counts:?}");
    let (flushes, compactions) = (rocks.flushes, rocks.compactions);
    assert!(flushes >= 4 && compactions >= 1, "{counts:?}");
    let bg = fin
        .background
        .as_ref()
        .expect("rocksdb runs the background layer");
    assert_eq!(jobs(bg, "flush"), (flushes, flushes, 0), "{bg:?}");
    assert_eq!(jobs(bg, "compaction"), (compactions, compactions, 0));
}
