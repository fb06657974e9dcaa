//! `ckb-libbpf rocksdb --causes`: the syscall and net layers feed the
//! anomaly detector's fsync, futex and peer-churn causes. Real BPF against
//! the bundled workload, whose disk the test slows down itself.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use ckb_libbpf::schema::Anomaly;

use crate::common::*;

/// A blkio (cgroup v1) group holding the workload, whose write IOPS on one
/// device the test limits: every fdatasync then waits for the throttle,
/// a disk gone slow, for this process only. Undone on drop, even when the
/// test fails.
struct Throttle {
    dir: PathBuf,
    dev: String,
    pid: u32,
}

const BLKIO: &str = "/sys/fs/cgroup/blkio";

impl Throttle {
    /// None when this kernel or mount has no blkio throttling.
    fn new(pid: u32, on: &std::path::Path) -> Option<Throttle> {
        let root = PathBuf::from(BLKIO);
        if !root.join("blkio.throttle.write_iops_device").exists() {
            return None;
        }
        let st_dev = std::fs::metadata(on).ok()?.dev();
        let dev = format!("{}:{}", libc::major(st_dev), libc::minor(st_dev));
        let dir = root.join(format!("ckb-libbpf-causes-{}", rand_u64()));
        std::fs::create_dir(&dir).ok()?;
        let t = Throttle { dir, dev, pid };
        std::fs::write(t.dir.join("cgroup.procs"), pid.to_string()).ok()?;
        Some(t)
    }

    /// Limits writes to `iops` per second (0: no limit).
    fn limit(&self, iops: u32) {
        std::fs::write(
            self.dir.join("blkio.throttle.write_iops_device"),
            format!("{} {iops}", self.dev),
        )
        .unwrap_or_else(|e| panic!("throttling {}: {e}", self.dev));
    }
}

impl Drop for Throttle {
    fn drop(&mut self) {
        let _ = std::fs::write(
            self.dir.join("blkio.throttle.write_iops_device"),
            format!("{} 0", self.dev),
        );
        let _ = std::fs::write(
            PathBuf::from(BLKIO).join("cgroup.procs"),
            self.pid.to_string(),
        );
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// A rocksdb report line, decoded exactly.
fn report(line: &str) -> RocksdbReport {
    match decode::<Line>(line) {
        Line::Report(Report::Rocksdb(r)) => r,
        l => panic!("not a rocksdb report: {l:?}"),
    }
}

fn anomalies(line: &str) -> Vec<Anomaly> {
    report(line)
        .anomalies
        .expect("rocksdb reports carry anomalies")
}

#[test]
fn a_slow_disk_names_the_fsync_cause_with_its_evidence() {
    require_bpf();
    // Every PUT of the rounds waits for its WAL's fdatasync.
    let mut wl = Workload::start(&["--secs", "600", "--sync-writes"]);
    let Some(throttle) = Throttle::new(wl.pid, wl.db_dir()) else {
        wl.child.kill().ok();
        wl.finish();
        panic!("this test slows the disk down with blkio throttling, and {BLKIO} has none");
    };
    let pid = wl.pid.to_string();
    let mut tool = Tool::start(&[
        "rocksdb",
        "--pid",
        &pid,
        "--interval",
        "0.5",
        "--json",
        "--baseline-secs",
        "3",
        "--causes",
        "syscall",
    ]);
    tool.wait_stderr("cause inputs: syscall layer");
    wl.go();
    // Learn a baseline of ordinary sync writes: wait for the first report
    // after the learning period that shows PUTs and no alert.
    tool.wait_stdout("a report past the learning period", |l| {
        let r = report(l);
        r.elapsed_secs > 4.0 && r.operations.get("PUT").is_some_and(|p| p.count > 0)
    });
    // The disk slows down: 10 writes per second for this process.
    throttle.limit(10);
    let line = tool.wait_stdout("an alert naming fsync", |l| {
        anomalies(l).iter().any(|a| a.cause == "fsync_latency")
    });
    throttle.limit(0);
    tool.signal(libc::SIGINT);
    let (status, out, err) = tool.wait();
    wl.child.kill().ok();
    wl.finish();
    drop(throttle);
    assert_eq!(status.code(), Some(0), "{err:#?}");

    let all = anomalies(&line);
    let a = all
        .iter()
        .find(|a| a.cause == "fsync_latency")
        .expect("found above");
    eprintln!("alert: {a:?}");
    // The slowed operation is a write: PUTs wait for the WAL's fdatasync.
    assert_eq!(a.operation, "PUT", "{a:?}");
    assert_eq!(a.kind, "latency_spike");
    let num = |k: &str| {
        *a.evidence
            .get(k)
            .unwrap_or_else(|| panic!("evidence {k} missing: {a:?}"))
    };
    assert!(
        num("fsync_avg_us") > 5.0 * num("fsync_baseline_us"),
        "the rule's own threshold: {a:?}"
    );
    assert!(num("fsync_calls") >= 1.0, "{a:?}");
    assert!(num("fsync_p99_us") >= num("fsync_baseline_us"), "{a:?}");
    assert!(a.next_step.contains("ckb-libbpf syscall"));
    // The syscall layer was loaded: only the net layer's input is missing.
    assert_eq!(a.unchecked, ["peers"], "{a:?}");
    let fin = final_rocksdb(&out);
    assert!(fin.anomaly_alerts.unwrap_or(0) >= 1, "{fin:?}");
}

/// Which cause layers a capture loads: their notes on stderr.
fn cause_notes(causes: Option<&str>) -> Vec<String> {
    let mut wl = Workload::start(&["--rounds", "1"]);
    let pid = wl.pid.to_string();
    let mut args = vec!["rocksdb", "--pid", &pid, "--interval", "0.2"];
    if let Some(c) = causes {
        args.extend(["--causes", c]);
    }
    let mut tool = Tool::start(&args);
    tool.wait_attached();
    // The cause layers attach after the RocksDB probes: one report later
    // they are in.
    tool.wait_stdout("a report", |_| true);
    wl.run();
    tool.signal(libc::SIGINT);
    let (status, _, err) = tool.wait();
    wl.finish();
    assert_eq!(status.code(), Some(0), "{err:#?}");
    err.into_iter()
        .filter(|l| l.contains("cause inputs"))
        .collect()
}

#[test]
fn net_is_on_by_default_syscall_on_request() {
    require_bpf();
    let n = cause_notes(None);
    assert_eq!(n.len(), 1, "{n:#?}");
    assert!(n[0].contains("net layer"), "{n:#?}");
    let n = cause_notes(Some("all"));
    assert_eq!(n.len(), 2, "{n:#?}");
    assert!(n[0].contains("syscall layer") && n[1].contains("net layer"));
    assert!(cause_notes(Some("none")).is_empty());
}

#[test]
fn bad_causes_are_usage_errors() {
    let (code, _, err) = run_tool(&["rocksdb", "--pid", "1", "--causes", "disk"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`disk` is not a cause layer"), "{err}");
}

/// The syscall layer's futex figures for a process whose only futex calls
/// are `waits` waits and `wakes` wakes, traced with `backend`.
fn futex_figures(
    bin: &std::path::Path,
    backend: ckb_libbpf::probe::syscall::Backend,
    waits: u32,
    wakes: u32,
) -> ckb_libbpf::analyze::inputs::SyscallTotals {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};

    use ckb_libbpf::analyze::inputs::SyscallTotals;
    use ckb_libbpf::probe::syscall as sc;

    let mut child = Command::new(bin)
        .args([waits.to_string(), wakes.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let pid: u32 = line.trim().strip_prefix("READY ").unwrap().parse().unwrap();

    let (backend, _) = sc::choose(Some(backend)).unwrap();
    let mut obj = std::mem::MaybeUninit::uninit();
    let skel = sc::load(&mut obj, &sc::Config { tgid: pid }, backend).unwrap();
    let links = sc::attach(&skel, backend).unwrap();
    let maps = sc::Maps::new(&skel).unwrap();
    stdin.write_all(b"go\n").unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "done");
    let w = sc::read_futex_waits(&maps).unwrap();
    let s = sc::read_sample(&maps, 0).unwrap();
    drop(links);
    drop(stdin);
    child.wait().unwrap();
    SyscallTotals::from_rows(s.rows.iter().map(|r| (r.nr, &r.stats.op)), w)
}

/// The futex wait counter, exactly, with every backend: FUTEX_WAIT and
/// FUTEX_WAIT_BITSET count as waits, FUTEX_WAKE does not.
#[test]
fn futex_waits_are_counted_apart_from_wakes() {
    use ckb_libbpf::probe::syscall::Backend;
    use std::process::Command;

    require_bpf();
    let dir = std::env::temp_dir().join(format!("ckb-libbpf-futex-{:x}", rand_u64()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = dir.join("futex_calls");
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/futex_calls.c");
    let st = Command::new("cc")
        .args(["-O1", "-o"])
        .arg(&bin)
        .arg(src)
        .status()
        .expect("cc");
    assert!(st.success(), "building tests/c/futex_calls.c");
    for b in Backend::ALL {
        let t = futex_figures(&bin, b, 7, 5);
        assert_eq!((t.futex_calls, t.futex_waits), (12, 7), "{b:?}");
        assert_eq!(t.fsync.count, 0, "{b:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
