//! `ckb-libbpf rocksdb --slow --threshold 0`: every RocksDB call through
//! the ring buffer, rendered on the drain thread in batches. Each call the
//! workload made must come out as exactly one line, or be counted in
//! `lost_events`: never silently missing, never twice.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ckb_libbpf::schema::Slow;

use crate::common::*;

/// Runs `rounds` workload rounds under `ckb-libbpf rocksdb --slow
/// --threshold 0 ARGS`; returns the workload's counts and the tool's stdout.
fn capture(rounds: &str, args: &[&str]) -> (Counts, Vec<String>, Vec<String>) {
    let mut wl = Workload::start(&["--rounds", rounds]);
    let pid = wl.pid.to_string();
    let mut tool_args = vec!["rocksdb", "--pid", &pid, "--slow", "--threshold", "0"];
    tool_args.extend_from_slice(args);
    let mut tool = Tool::start(&tool_args);
    tool.wait_attached();
    let counts = wl.run();
    tool.signal(libc::SIGINT);
    let (status, out, err) = tool.wait();
    wl.finish();
    assert_eq!(status.code(), Some(0), "{err:#?}");
    assert!(!err.iter().any(|l| l.contains("panicked")), "{err:#?}");
    (counts, out, err)
}

/// The slow lines of a `--json` capture; every line must be a slow line, a
/// background job or a report, decoded exactly.
fn slow_lines(out: &[String]) -> Vec<Slow> {
    lines(out)
        .into_iter()
        .filter_map(|l| match l {
            Line::Slow(s) => Some(s),
            // The --slow log also lists finished background jobs.
            Line::Report(Report::Rocksdb(_)) | Line::BackgroundJob(_) => None,
            l => panic!("not a line of `rocksdb --slow --json`: {l:?}"),
        })
        .collect()
}

#[test]
fn json_lines_are_every_call_exactly_once() {
    require_bpf();
    // 10 rounds are ~9 K calls: fewer records than the 1 MiB ring holds,
    // so none can be lost however late the drain thread runs.
    let (counts, out, err) = capture("10", &["--json", "--ops", "all", "--value-sizes"]);
    let fin = final_rocksdb(&out);
    let lines = slow_lines(&out);
    assert_eq!(fin.lost_events, 0, "{err:#?}");
    assert_eq!(fin.slow_events, lines.len() as u64);

    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    let (mut put_bytes, mut get_bytes, mut misses) = (0, 0, 0);
    for v in &lines {
        assert!(v.latency_us >= 0.0, "{v:?}");
        assert_eq!(v.pid, counts.pid, "{v:?}");
        assert!(v.db.starts_with("0x") && v.db.len() > 2, "{v:?}");
        if PUTS.contains(&v.function.as_str()) {
            put_bytes += v.bytes;
        }
        if GETS.contains(&v.function.as_str()) {
            get_bytes += v.bytes;
            misses += u64::from(v.miss);
        } else {
            assert!(!v.miss, "only GETs miss: {v:?}");
        }
        *seen.entry(v.function.clone()).or_default() += 1;
    }
    assert_eq!(seen, counts.calls, "one line per call, per function");
    assert_eq!(put_bytes, counts.put_bytes);
    assert_eq!(get_bytes, counts.get_bytes);
    assert_eq!(misses, counts.get_misses);
    // The workload's main thread made every call.
    let tids: std::collections::BTreeSet<u32> = lines.iter().map(|v| v.tid).collect();
    assert_eq!(tids.len(), 1, "{tids:?}");
}

#[test]
fn table_lines_are_every_call_exactly_once() {
    require_bpf();
    let (counts, out, err) = capture("10", &["--ops", "all"]);
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    for l in &out {
        // TIME TID THREAD OP FUNCTION LAT BYTES [miss]
        let cols: Vec<&str> = l.split_whitespace().collect();
        if cols.len() >= 7 && cols[4].starts_with("rocksdb_") && cols[0].contains(':') {
            *seen.entry(cols[4].to_string()).or_default() += 1;
        }
    }
    assert_eq!(seen, counts.calls, "one table line per call: {err:#?}");
    assert!(
        out.iter().any(|l| l.starts_with("=== rocksdb summary")),
        "the summary follows the log"
    );
    assert!(!out.iter().any(|l| l.contains("lost events")), "{out:#?}");
}

#[test]
fn a_burst_larger_than_the_ring_is_printed_or_counted_lost() {
    require_bpf();
    // ~130 K calls as fast as the workload goes: several times what the
    // ring holds, so the drain thread must keep up or the kernel side
    // counts what it could not reserve. Either way nothing goes missing.
    let (_counts, out, err) = capture("150", &["--json"]);
    let fin = final_rocksdb(&out);
    let lines = slow_lines(&out).len() as u64;
    let traced: u64 = fin.operations.values().map(|r| r.count).sum();
    let lost = fin.lost_events;
    assert!(traced > 100_000, "{traced}");
    assert_eq!(fin.slow_events, lines);
    assert_eq!(lines + lost, traced, "printed + lost = calls: {err:#?}");
}

#[test]
fn closing_the_output_mid_burst_ends_the_capture_cleanly() {
    require_bpf();
    // `ckb-libbpf rocksdb --slow --threshold 0 | head -1`: the reader goes
    // away while batches are in flight; the tool must notice, detach and
    // exit 0, not hang with its drain thread waiting on a full channel.
    let mut wl = Workload::start(&["--rounds", "150"]);
    let pid = wl.pid.to_string();
    let mut tool = Command::new(tool())
        .args(["rocksdb", "--pid", &pid, "--json", "--slow"])
        .args(["--threshold", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting ckb-libbpf");
    let stderr = tool.stderr.take().unwrap();
    let (etx, erx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = etx.send(l);
        }
    });
    let mut err = Vec::new();
    while !err.iter().any(|l: &String| l.contains("attached ")) {
        match erx.recv_timeout(Duration::from_secs(60)) {
            Ok(l) => err.push(l),
            Err(_) => panic!("ckb-libbpf did not attach: {err:#?}"),
        }
    }
    let progs = progs_held_by(tool.id());
    wl.go();
    let mut stdout = BufReader::new(tool.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(matches!(decode::<Line>(&first), Line::Slow(_)), "{first}");
    drop(stdout);
    // A hang shows up as this deadline passing, not as a timing check.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = tool.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = tool.kill();
            panic!("ckb-libbpf kept running after its output was closed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    while let Ok(l) = erx.recv_timeout(Duration::from_millis(500)) {
        err.push(l);
    }
    let _ = wl.child.kill();
    wl.finish();
    assert_eq!(status.code(), Some(0), "{err:#?}");
    assert!(!err.iter().any(|l| l.contains("panicked")), "{err:#?}");
    assert_eq!(progs_left(&progs), Vec::<u64>::new(), "probes left behind");
}
