//! A few minutes at >= 10 K operations/s with every operation through the
//! ring buffer (`--slow --threshold 0`): the tool's RSS must stay flat
//! (growth <= 1 MB after warm-up) and no event may be lost.
//! CKB_LIBBPF_SOAK_SECS sets the length (default 120 s); scripts/soak.sh is
//! the 48-hour version.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;

/// A `kB` field of /proc/PID/status: VmRSS now, VmHWM the peak so far.
fn status_kb(pid: u32, field: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The endless workload, ended however the test ends: a failed assertion
/// must not leave it running (it would hold on to whatever the test run
/// holds, such as the BPF test lock's file descriptor).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn soak_rss_is_flat_and_nothing_is_lost() {
    require_bpf();
    let secs: u64 = std::env::var("CKB_LIBBPF_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    let warmup = Duration::from_secs(20.min(secs / 4));
    // Declared before the workload, so removed after it is killed.
    let scratch = scratch_dir("soak");
    // Not created here: the workload creates its database directory.
    let dir = scratch.join("db");
    let mut wl = KillOnDrop(
        Command::new(workload_bin())
            .args([
                "--db",
                dir.to_str().unwrap(),
                "--secs",
                "0",
                "--pause-ms",
                "40",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("starting the workload"),
    );
    let pid = wl.0.id().to_string();
    let mut tool = Command::new(tool())
        .args([
            "rocksdb",
            "--pid",
            &pid,
            "--json",
            "--slow",
            "--threshold",
            "0",
            "--interval",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting ckb-libbpf");
    // Read everything the tool prints, keeping only counts and the last report.
    let slow_lines = Arc::new(AtomicU64::new(0));
    let last_report = Arc::new(Mutex::new(None::<RocksdbReport>));
    let stdout = tool.stdout.take().unwrap();
    let reader = {
        let (slow_lines, last_report) = (slow_lines.clone(), last_report.clone());
        std::thread::spawn(move || {
            // Reports decoded exactly; of the ~14 K slow lines a second,
            // every 64th (all of them would slow this reader enough to
            // back the tool's output up, which is what the soak watches).
            let mut n = 0u64;
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                if l.starts_with("{\"type\":\"slow\",") {
                    n += 1;
                    if n % 64 == 1 {
                        assert!(matches!(decode::<Line>(&l), Line::Slow(_)), "{l}");
                    }
                    slow_lines.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                match decode::<Line>(&l) {
                    Line::Report(Report::Rocksdb(r)) => *last_report.lock().unwrap() = Some(r),
                    // The --slow log also lists finished flushes and
                    // compactions.
                    Line::BackgroundJob(_) => {}
                    l => panic!("unexpected line {l:?}"),
                }
            }
        })
    };
    let tool_pid = tool.id();
    let start = Instant::now();
    let mut baseline = None;
    let mut samples = Vec::new();
    while start.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_secs(2));
        let rss = status_kb(tool_pid, "VmRSS:").expect("the tool is running");
        if start.elapsed() >= warmup {
            baseline.get_or_insert(rss);
            samples.push(rss);
        }
        assert!(
            wl.0.try_wait().unwrap().is_none(),
            "the workload died under the probes"
        );
    }
    // Start-up included (symbol tables are scanned then): issue 6's limit.
    let hwm = status_kb(tool_pid, "VmHWM:").expect("the tool is running");
    unsafe { libc::kill(tool_pid as i32, libc::SIGINT) };
    let status = tool.wait().unwrap();
    reader.join().unwrap();
    drop(wl);
    assert_eq!(status.code(), Some(0));

    let fin = last_report.lock().unwrap().clone().expect("a final report");
    assert!(fin.is_final, "{fin:?}");
    let ops: u64 = fin.operations.values().map(|o| o.count).sum();
    let rate = ops as f64 / fin.elapsed_secs;
    let baseline = baseline.unwrap();
    let peak = *samples.iter().max().unwrap();
    eprintln!(
        "soak: {secs} s, {ops} operations ({rate:.0}/s), slow lines {}, lost {}, RSS after warm-up {baseline} kB, peak {peak} kB, end {} kB, VmHWM {hwm} kB",
        slow_lines.load(Ordering::Relaxed),
        fin.lost_events,
        samples.last().unwrap()
    );
    assert!(
        rate >= 10_000.0,
        "the soak must run at >= 10 K operations/s, ran {rate:.0}/s"
    );
    assert_eq!(fin.lost_events, 0, "no event lost");
    assert_eq!(fin.uncounted_calls, 0);
    assert_eq!(
        fin.slow_events,
        slow_lines.load(Ordering::Relaxed),
        "every event printed"
    );
    assert!(
        fin.slow_events >= ops,
        "threshold 0: every operation is an event"
    );
    assert!(
        hwm <= 16 * 1024,
        "the tool's peak RSS is {hwm} kB, over 16 MB"
    );
    assert!(
        peak <= baseline + 1024,
        "RSS grew by {} kB (limit 1024): {samples:?}",
        peak - baseline
    );
}
