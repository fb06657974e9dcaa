//! The background layer against the bundled workload's write burst, in the
//! real kernel: the compactions, flushes and stalls the tool reports must
//! be the ones RocksDB's own statistics count for the same run.

mod common;

use common::*;
use serde_json::Value;

/// Attaches `ckb-libbpf background` to a workload that writes a burst of
/// `mb` MiB with tiny memtables and waits for RocksDB to settle; returns
/// the workload's counts, the tool's final report, its stderr and the BPF
/// programs it held.
fn burst_capture(mb: &str, env: &[(&str, &str)]) -> (Value, Value, Vec<String>, Vec<u64>) {
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
    for l in &out {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}"));
        assert!(
            v["type"] == "report" || v["type"] == "background_job",
            "{l}"
        );
    }
    let fin = final_report(&out);
    (counts, fin, err, progs)
}

fn jobs(fin: &Value, kind: &str) -> (u64, u64, u64) {
    let j = &fin["background"]["jobs"][kind];
    (
        j["started"]
            .as_u64()
            .unwrap_or_else(|| panic!("{kind} missing: {fin}")),
        j["finished"].as_u64().unwrap(),
        j["in_flight"].as_u64().unwrap(),
    )
}

#[test]
fn compactions_flushes_and_stalls_equal_rocksdb_statistics() {
    if !bpf_available() {
        return;
    }
    let (counts, fin, err, progs) = burst_capture("8", &[]);
    let rocks = &counts["rocksdb"];
    eprintln!(
        "RocksDB statistics: {rocks}\nckb-libbpf: {}",
        fin["background"]
    );
    assert_eq!(rocks["settled"], true, "RocksDB never settled: {counts}");
    let flushes = rocks["flushes"].as_u64().unwrap();
    let compactions = rocks["compactions"].as_u64().unwrap();
    // The burst must really have caused background work, or this proves nothing.
    assert!(flushes >= 4 && compactions >= 1, "{counts}");

    // Exact: every FlushJob::Run / CompactionJob::Run the probes saw is one
    // RocksDB counted, and nothing is left running after it settled.
    assert_eq!(jobs(&fin, "flush"), (flushes, flushes, 0), "{err:#?}");
    assert_eq!(jobs(&fin, "compaction"), (compactions, compactions, 0));
    assert_eq!(fin["background"]["absent"], serde_json::json!([]));

    // Stalls: RocksDB counts the DelayWrite calls that did delay; the
    // probes count every DelayWrite call, and time the whole call, which
    // contains RocksDB's own measurement (1 % slack for its wall clock).
    let stall_us = rocks["stall_micros"].as_u64().unwrap();
    let stalls = rocks["stalls"].as_u64().unwrap();
    let (started, finished, _) = jobs(&fin, "write_stall");
    if stall_us > 0 {
        assert!(finished >= stalls && stalls > 0, "{fin} vs {counts}");
        assert_eq!(started, finished);
        let ms = fin["background"]["stalled_ms"].as_f64().unwrap();
        assert!(
            ms * 1000.0 >= stall_us as f64 * 0.99,
            "stalled {ms} ms < RocksDB's {stall_us} us"
        );
        // A stall starts with a stop or delay token.
        let (stops, _, _) = jobs(&fin, "stop_token");
        let (delays, _, _) = jobs(&fin, "delay_token");
        assert!(stops + delays > 0, "{fin}");
    } else {
        eprintln!("note: this run did not stall ({counts})");
    }
    // No probe outlives the tool.
    assert!(!progs.is_empty());
    assert_eq!(progs_left(&progs), Vec::<u64>::new());
}

#[test]
fn single_uprobe_backend_counts_the_same() {
    if !bpf_available() {
        return;
    }
    let (counts, fin, _, _) = burst_capture("4", &[("CKB_LIBBPF_BACKEND", "single")]);
    let rocks = &counts["rocksdb"];
    let flushes = rocks["flushes"].as_u64().unwrap();
    let compactions = rocks["compactions"].as_u64().unwrap();
    assert!(flushes >= 2, "{counts}");
    assert_eq!(jobs(&fin, "flush").1, flushes);
    assert_eq!(jobs(&fin, "compaction").1, compactions);
}

#[test]
fn a_target_without_rocksdb_internals_is_a_usage_error() {
    if !bpf_available() {
        return;
    }
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
    if !bpf_available() {
        return;
    }
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
    let counts = wl.run();
    tool.signal(libc::SIGINT);
    let (status, out, err) = tool.wait();
    wl.finish();
    assert_eq!(status.code(), Some(0), "{err:#?}");
    let lines: Vec<Value> = out
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    assert!(
        counts["rocksdb"]["stall_micros"].as_u64().unwrap() > 0,
        "the burst must stall, or this proves little: {counts}"
    );
    let alerts: Vec<&Value> = lines
        .iter()
        .filter(|v| v["type"] == "report")
        .flat_map(|v| v["anomalies"].as_array().into_iter().flatten())
        .collect();
    let first = alerts
        .iter()
        .find(|a| a["onset"] == true)
        .unwrap_or_else(|| panic!("no alert; workload {counts}"));
    eprintln!("first alert: {first}");
    for k in [
        "type",
        "operation",
        "current_avg_us",
        "baseline_avg_us",
        "multiplier",
        "cause",
        "evidence",
        "next_step",
    ] {
        assert!(first.get(k).is_some(), "{k} missing in {first}");
    }
    let background_causes = ["write_stall", "compaction", "flush"];
    assert!(
        background_causes.contains(&first["cause"].as_str().unwrap()),
        "{first}"
    );
    assert!(first["type"] != "latency_spike" || first["multiplier"].as_f64().unwrap() > 5.0);

    let fin = final_report(&out);
    assert!(fin["anomaly_alerts"].as_u64().unwrap() >= 1, "{fin}");
    let rocks = &counts["rocksdb"];
    assert_eq!(rocks["settled"], true, "{counts}");
    let flushes = rocks["flushes"].as_u64().unwrap();
    let compactions = rocks["compactions"].as_u64().unwrap();
    assert!(flushes >= 4 && compactions >= 1, "{counts}");
    assert_eq!(jobs(&fin, "flush"), (flushes, flushes, 0), "{fin}");
    assert_eq!(jobs(&fin, "compaction"), (compactions, compactions, 0));
}
