//! `ckb-libbpf syscall` against examples/syscall_workload.rs in the real
//! kernel: per syscall and per thread role, the tool's counts, bytes and
//! errors must equal what the workload says it did, for every backend.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command};

use ckb_libbpf::schema::syscall::{SyscallEntry, SyscallReport};
use serde::{Deserialize, Serialize};

use crate::common::*;

const BACKENDS: &[&str] = &["tp_btf", "raw_tp", "tracepoint"];

/// The role each scripted thread must land in.
const ROLES: &[(&str, &str)] = &[
    ("rocksdb:low0", "compaction"),
    ("rocksdb:high0", "flush"),
    ("ChainService", "chain"),
    ("GlobalRt-1", "runtime"),
    ("GlobalRt-2", "runtime"),
    ("verify_blocks", "verify"),
];

fn role(thread: &str) -> &'static str {
    ROLES
        .iter()
        .find(|r| r.0 == thread)
        .map(|r| r.1)
        .unwrap_or_else(|| panic!("no role for {thread}"))
}

fn sc_workload_bin() -> PathBuf {
    example_bin("syscall_workload")
}

/// What syscall_workload says its threads did after `go`: per thread, per
/// syscall, decoded exactly.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct ScCounts {
    pid: u32,
    threads: BTreeMap<String, BTreeMap<String, ScCell>>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct ScCell {
    count: u64,
    /// Sum of positive returns.
    bytes: u64,
    /// Calls that returned -errno.
    errors: u64,
}

impl ScCounts {
    fn count(&self, thread: &str, syscall: &str) -> u64 {
        self.threads[thread][syscall].count
    }
}

/// syscall_workload's answer to `bench N`.
#[derive(Debug, Serialize, Deserialize)]
struct Bench {
    calls: u64,
    ns: u64,
}

/// syscall_workload, waiting for commands (named apart from common's
/// RocksDB `Workload`, which the glob import would otherwise hide).
struct ScWorkload {
    child: Child,
    pid: u32,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// Holds the workload's scratch files; removed after the child is waited for.
    _scratch: Scratch,
}

/// A private copy of syscall_workload: a restarted target is recognised by
/// its executable path, and parallel tests' workloads must not be adopted.
fn private_sc_copy() -> PrivateBin {
    PrivateBin::copy_of(&sc_workload_bin(), "scbin")
}

impl ScWorkload {
    fn start() -> ScWorkload {
        ScWorkload::start_bin(&sc_workload_bin())
    }

    fn start_bin(bin: &std::path::Path) -> ScWorkload {
        let scratch = scratch_dir("sc");
        // Not created here: the workload creates it.
        let dir = scratch.join("db");
        let (child, pid, stdin, stdout) = spawn_ready(Command::new(bin).arg("--db").arg(&dir));
        ScWorkload {
            child,
            pid,
            stdin,
            stdout,
            _scratch: scratch,
        }
    }

    fn cmd<T: serde::de::DeserializeOwned + Serialize>(&mut self, c: &str) -> T {
        writeln!(self.stdin, "{c}").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        decode(&line)
    }

    /// Runs the script once: what every thread did.
    fn go(&mut self) -> ScCounts {
        let c: ScCounts = self.cmd("go");
        assert_eq!(c.pid, self.pid);
        c
    }

    fn finish(mut self) {
        let _ = writeln!(self.stdin, "done");
        let _ = self.child.wait();
    }
    /// SIGKILL: the node crashes.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ScWorkload {
    /// A failed test's workload goes before its scratch directory does.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// (count, bytes, errors) of one (role, syscall).
type Truth = ((String, String), (u64, u64, u64));

/// (role, syscall) -> (count, bytes, errors) from the workload's own report.
fn expected(counts: &ScCounts) -> Vec<Truth> {
    let mut m: BTreeMap<(String, String), (u64, u64, u64)> = Default::default();
    for (thread, calls) in &counts.threads {
        for (sc, v) in calls {
            let e = m.entry((role(thread).to_string(), sc.clone())).or_default();
            e.0 += v.count;
            e.1 += v.bytes;
            e.2 += v.errors;
        }
    }
    m.into_iter().collect()
}

fn final_syscall(out: &[String]) -> SyscallReport {
    match final_report(out) {
        Report::Syscall(r) => r,
        r => panic!("not a syscall report: {r:?}"),
    }
}

/// Waits until the interval reports have counted `n` calls of `syscall`
/// in all: the live output has caught up with the workload.
fn wait_syscalls(tool: &mut Tool, syscall: &str, n: u64) {
    let mut seen = 0;
    tool.wait_stdout(&format!("interval reports counting {n} {syscall}"), |l| {
        if let Line::Report(Report::Syscall(r)) = decode::<Line>(l) {
            if !r.is_final {
                seen += r.syscalls.get(syscall).map_or(0, |s| s.count);
            }
        }
        seen >= n
    });
}

/// Traces workload A with `backend` while A and a second workload B both
/// run the script; asserts A's counts exactly (B must not be counted).
fn exact_counts_with(backend: &str) {
    exact_counts_env(backend, &[]);
}

fn exact_counts_env(backend: &str, env: &[(&str, &str)]) {
    require_bpf();
    let mut a = ScWorkload::start();
    let mut b = ScWorkload::start();
    let pid = a.pid.to_string();
    let mut tool = Tool::start_env(
        env,
        &[
            "syscall",
            "--pid",
            &pid,
            "--json",
            "--top",
            "0",
            "--interval",
            "0.2",
            "--backend",
            backend,
        ],
    );
    tool.wait_attached();
    let progs = progs_held_by(tool.child.id());
    let counts = a.go();
    let other = b.go();
    assert_eq!(counts.threads, other.threads, "both did the same");
    let pwrites: u64 = counts
        .threads
        .values()
        .filter_map(|t| t.get("pwrite64"))
        .map(|c| c.count)
        .sum();
    assert!(pwrites > 0);
    wait_syscalls(&mut tool, "pwrite64", pwrites);
    tool.signal(libc::SIGINT);
    let (status, out, err) = tool.wait();
    a.finish();
    b.finish();
    assert_eq!(status.code(), Some(0), "SIGINT ends with 0: {err:#?}");

    let reports = reports(&out);
    assert_eq!(reports.len(), out.len(), "only reports: {out:#?}");
    assert!(reports.len() >= 2, "interval reports precede the final one");
    let fin = final_syscall(&out);
    assert_eq!(fin.backend, backend, "the backend is shown");
    assert_eq!(fin.pid.map(|p| p.to_string()), Some(pid.clone()));

    let sys = &fin.syscalls;
    assert_exact(sys, expected(&counts));
    assert_eq!(sys["getppid"].category, "other");
    assert_eq!(sys["pwrite64"].category, "file_io");
    assert_eq!(sys["fdatasync"].category, "sync");
    let lat = &sys["pwrite64"];
    let (p50, p99, max) = (
        lat.p50_us.unwrap(),
        lat.p99_us.unwrap(),
        lat.max_us.unwrap(),
    );
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{lat:?}");

    // Roles: bytes written and syncs, compaction vs WAL at one glance.
    let roles = &fin.roles;
    assert_eq!(roles["compaction"].bytes_written, 40 * 4096);
    assert!(roles["compaction"].background);
    assert_eq!(roles["flush"].bytes_written, 10 * 1000);
    assert_eq!(roles["chain"].bytes_written, 25 * 512);
    assert!(!roles["chain"].background);
    assert_eq!(roles["chain"].fsyncs, 5);
    assert_eq!(roles["compaction"].fsyncs, 3);
    assert_eq!(roles["flush"].fsyncs, 2);
    assert_eq!(roles["runtime"].families, ["GlobalRt-"]);
    let writes: Vec<(&str, &str, Option<u64>)> = fin
        .writes_by_role
        .iter()
        .filter(|w| w.syscall == "pwrite64")
        .map(|w| (w.role.as_str(), w.syscall.as_str(), w.bytes))
        .collect();
    assert_eq!(
        writes,
        vec![
            ("chain", "pwrite64", Some(25 * 512)),
            ("compaction", "pwrite64", Some(40 * 4096)),
            ("flush", "pwrite64", Some(10 * 1000))
        ]
    );
    assert_eq!(fin.derived.fsync.as_ref().map(|f| f.count), Some(10));
    assert!(fin.derived.threads.is_some_and(|t| t >= 1));
    assert_eq!((fin.uncounted_calls, fin.untimed_calls), (0, 0));
    assert!(fin.probe_cost.is_empty(), "no uretprobes active");

    // The interval reports add up to the final one.
    let summed: u64 = reports
        .iter()
        .filter_map(|r| match r {
            Report::Syscall(r) if !r.is_final => r.syscalls.get("pwrite64").map(|s| s.count),
            _ => None,
        })
        .sum();
    assert_eq!(summed, sys["pwrite64"].count);

    assert_eq!(progs.len(), 2, "exactly one enter and one exit program");
    assert_eq!(progs_left(&progs), Vec::<u64>::new(), "left after exit");
}

#[test]
fn exact_counts_tp_btf() {
    exact_counts_with("tp_btf");
}

/// One copy of the aggregation map for all CPUs (what a big host gets,
/// forced here): the same exact counts.
#[test]
fn exact_counts_with_shared_stats() {
    exact_counts_env("tp_btf", &[("CKB_LIBBPF_STATS", "shared")]);
}

#[test]
fn exact_counts_raw_tp() {
    exact_counts_with("raw_tp");
}

#[test]
fn exact_counts_tracepoint() {
    exact_counts_with("tracepoint");
}

#[test]
fn default_backend_is_the_one_check_reports_and_the_table_shows_it() {
    require_bpf();
    let (code, check) = check_json(&["check", "--json"]);
    assert_eq!(code, 0, "{check:?}");
    let want = check
        .backends
        .syscall
        .expect("check names a syscall backend");

    let mut wl = ScWorkload::start();
    let pid = wl.pid.to_string();
    let mut tool = Tool::start(&["syscall", "--pid", &pid, "--interval", "0.2"]);
    tool.wait_attached();
    assert!(
        tool.stderr.iter().any(|l| l.contains(&format!("({want})"))),
        "{:#?}",
        tool.stderr
    );
    wl.go();
    // The table's interval shows the calls: the workload's getppid row.
    tool.wait_stdout("an interval table with the calls", |l| {
        l.starts_with("getppid ")
    });
    tool.signal(libc::SIGTERM);
    let (status, out, err) = tool.wait();
    wl.finish();
    assert_eq!(status.code(), Some(0), "{err:#?}");
    let at = out
        .iter()
        .position(|l| l.starts_with("=== syscall summary"))
        .unwrap_or_else(|| panic!("no summary in {out:#?}"));
    assert!(out[at].contains(&format!("backend {want}")), "{}", out[at]);
    let rest = &out[at..];
    let line = |pred: &dyn Fn(&str) -> bool| -> String {
        rest.iter()
            .find(|l| pred(l))
            .cloned()
            .unwrap_or_else(|| panic!("line missing in {rest:#?}"))
    };
    let pw = line(&|l| l.starts_with("pwrite64 ") && l.contains(" compaction "));
    assert!(
        pw.contains("background") && pw.contains("160.0 KiB"),
        "{pw}"
    );
    let pw = line(&|l| l.starts_with("pwrite64 ") && l.contains(" chain "));
    assert!(pw.contains("foreground") && pw.contains("12.5 KiB"), "{pw}");
    let gp = line(&|l| l.starts_with("getppid "));
    assert_eq!(gp.split_whitespace().nth(2), Some("20"), "{gp}");
    line(&|l| l.starts_with("runtime ") && l.contains("GlobalRt-*"));
    line(&|l| l.starts_with("futex wait ratio"));
}

#[test]
fn target_exit_ends_the_capture_with_code_1() {
    require_bpf();
    let mut wl = ScWorkload::start();
    let pid = wl.pid.to_string();
    let mut tool = Tool::start(&[
        "syscall",
        "--pid",
        &pid,
        "--interval",
        "0.2",
        "--json",
        "--no-follow",
    ]);
    tool.wait_attached();
    let progs = progs_held_by(tool.child.id());
    let counts = wl.go();
    wl.finish();
    let (status, out, err) = tool.wait();
    assert_eq!(status.code(), Some(1), "{err:#?}");
    assert!(
        err.iter()
            .any(|l| l.contains(&format!("target process {pid} exited"))),
        "{err:#?}"
    );
    let fin = final_syscall(&out);
    let want = counts.count("rocksdb:low0", "pwrite64");
    let got = fin.syscalls["pwrite64"]
        .by_role
        .get("compaction")
        .map(|c| c.count);
    assert_eq!(got, Some(want));
    assert!(
        lines(&out).iter().all(|l| !matches!(l, Line::Target(_))),
        "--no-follow waits for nothing: {out:#?}"
    );
    assert_eq!(fin.gaps, []);
    assert_eq!(progs_left(&progs), Vec::<u64>::new(), "left after exit");
}

/// Adds (role, syscall) -> (count, bytes, errors) of several processes.
/// `sys` (a report's "syscalls") holds exactly `truth`: per role and
/// syscall, and per syscall over all roles (count, errors, and bytes of the
/// read/write family). Nothing but the workload's scripted threads makes
/// these calls, and other processes are filtered out in the kernel (they
/// would double every figure).
fn assert_exact(sys: &BTreeMap<String, SyscallEntry>, truth: Vec<Truth>) {
    let mut totals: BTreeMap<String, (u64, u64, u64)> = Default::default();
    for ((role, sc), (count, bytes, errors)) in truth {
        let cell = sys
            .get(&sc)
            .and_then(|s| s.by_role.get(&role))
            .unwrap_or_else(|| panic!("no {sc} from {role} in {sys:#?}"));
        assert_eq!(cell.count, count, "{sc} from {role}: {cell:?}");
        assert_eq!(cell.errors, errors, "{sc} errors from {role}");
        if sc.starts_with("pwrite") || sc.starts_with("pread") {
            assert_eq!(cell.bytes, Some(bytes), "{sc} bytes from {role}");
        }
        let t = totals.entry(sc).or_default();
        t.0 += count;
        t.1 += bytes;
        t.2 += errors;
    }
    for (sc, (count, bytes, errors)) in &totals {
        let s = &sys[sc];
        assert_eq!(s.count, *count, "{sc}: {s:?}");
        assert_eq!(s.errors, *errors, "{sc}");
        if sc.starts_with("pwrite") || sc.starts_with("pread") {
            assert_eq!(s.bytes, Some(*bytes), "{sc}");
        }
    }
}

fn merged(runs: &[&ScCounts]) -> Vec<Truth> {
    let mut m: BTreeMap<(String, String), (u64, u64, u64)> = Default::default();
    for run in runs {
        for (k, (c, b, e)) in expected(run) {
            let t = m.entry(k).or_default();
            t.0 += c;
            t.1 += b;
            t.2 += e;
        }
    }
    m.into_iter().collect()
}

#[test]
fn restart_is_followed_and_both_processes_counted_exactly() {
    require_bpf();
    let bin = private_sc_copy();
    let mut first = ScWorkload::start_bin(&bin);
    let old_pid = first.pid;
    let pid = old_pid.to_string();
    let mut tool = Tool::start(&[
        "syscall",
        "--pid",
        &pid,
        "--json",
        "--top",
        "0",
        "--interval",
        "0.2",
    ]);
    tool.wait_attached();
    let progs_first = progs_held_by(tool.child.id());
    let c1 = first.go();
    first.kill();
    tool.wait_stderr(&format!(
        "target process {old_pid} exited; all probes detached; waiting for"
    ));

    // The node comes back from the same file with a new PID.
    let mut second = ScWorkload::start_bin(&bin);
    let new_pid = second.pid;
    tool.wait_stderr(&format!("for pid {new_pid} ("));
    let progs_second = progs_held_by(tool.child.id());
    let c2 = second.go();
    // Run twice: the new session's counters must not restart the totals.
    let c3 = second.go();
    tool.wait_stdout(
        "an interval report with the gap",
        |l| matches!(decode::<Line>(l), Line::Report(r) if !r.is_final() && !r.gaps().is_empty()),
    );
    tool.signal(libc::SIGINT);
    let (status, out, err) = tool.wait();
    second.finish();
    assert_eq!(status.code(), Some(0), "SIGINT exits 0: {err:#?}");

    let Report::Syscall(fin) = assert_one_restart(&out, Some(&*bin), old_pid, new_pid, false)
    else {
        panic!("not a syscall report");
    };

    // Every process, per role and per syscall, exactly.
    assert_exact(&fin.syscalls, merged(&[&c1, &c2, &c3]));
    assert_eq!(fin.roles["compaction"].bytes_written, 3 * 40 * 4096);
    assert_eq!(fin.derived.fsync.as_ref().map(|f| f.count), Some(3 * 10));
    assert_eq!((fin.uncounted_calls, fin.untimed_calls), (0, 0));

    // A new skeleton per session, and nothing of either left.
    assert_eq!(progs_first.len(), 2);
    assert_eq!(progs_second.len(), 2);
    assert!(progs_first.iter().all(|p| !progs_second.contains(p)));
    let mut all = progs_first;
    all.extend(progs_second);
    assert_eq!(progs_left(&all), Vec::<u64>::new(), "left after exit");
}

#[test]
fn a_signal_or_the_deadline_while_waiting_for_the_restart_ends_with_0() {
    require_bpf();
    let bin = private_sc_copy();
    for how in ["signal", "deadline"] {
        let mut wl = ScWorkload::start_bin(&bin);
        let wl_pid = wl.pid;
        let pid = wl.pid.to_string();
        let mut args = vec!["syscall", "--pid", &pid, "--interval", "0.2"];
        if how == "deadline" {
            args.extend(["--json", "5s"]);
        }
        let mut tool = Tool::start(&args);
        tool.wait_attached();
        let progs = progs_held_by(tool.child.id());
        let counts = wl.go();
        wl.finish();
        tool.wait_stderr("waiting for");
        if how == "signal" {
            tool.signal(libc::SIGTERM);
        }
        let (status, out, err) = tool.wait();
        assert_eq!(status.code(), Some(0), "{how}: {err:#?}");
        let chain = counts.count("ChainService", "pwrite64");
        if how == "signal" {
            assert!(
                out.iter().any(|l| l.contains(&format!(
                    "target pid {pid} exited; waiting for {}",
                    bin.display()
                ))),
                "{out:#?}"
            );
            let at = out
                .iter()
                .position(|l| l.starts_with("=== syscall summary"))
                .unwrap_or_else(|| panic!("no summary in {out:#?}"));
            assert!(!out[at..].iter().any(|l| l.starts_with("gap:")));
            let pw = out[at..]
                .iter()
                .find(|l| l.starts_with("pwrite64 ") && l.contains(" chain "))
                .unwrap_or_else(|| panic!("{out:#?}"));
            assert_eq!(
                pw.split_whitespace().nth(3),
                Some(chain.to_string().as_str()),
                "{pw}"
            );
        } else {
            let events: Vec<schema::TargetEvent> = lines(&out)
                .into_iter()
                .filter_map(|l| match l {
                    Line::Target(e) => Some(e),
                    _ => None,
                })
                .collect();
            assert!(
                matches!(&events[..], [schema::TargetEvent::Exited(e)] if e.pid == wl_pid),
                "{events:#?}"
            );
            let fin = final_syscall(&out);
            assert_eq!(fin.gaps, [], "no restart, no gap");
            let got = fin.syscalls["pwrite64"]
                .by_role
                .get("chain")
                .map(|c| c.count);
            assert_eq!(got, Some(chain));
        }
        assert_eq!(
            progs_left(&progs),
            Vec::<u64>::new(),
            "{how}: left after exit"
        );
    }
}

/// The probe cost line, checked against its cause: `ckb-libbpf rocksdb` on
/// the bundled RocksDB workload makes every traced C API call return
/// through the `uretprobe` syscall; `ckb-libbpf syscall` on the same PID
/// keeps those out of the profile and counts exactly one per call.
#[test]
fn uretprobe_syscalls_are_the_rocksdb_layers_probe_cost() {
    require_bpf();
    if std::env::consts::ARCH != "x86_64" {
        eprintln!("no `uretprobe` syscall on this architecture: nothing to check");
        return;
    }
    // A private copy: file-wide uprobes of parallel tests on the shared
    // binary would add returns of their own to our process.
    let bin = private_workload_copy();
    let mut wl = Workload::start_bin(&bin, &["--rounds", "1"]);
    let pid = wl.pid.to_string();
    let mut sc = Tool::start(&[
        "syscall",
        "--pid",
        &pid,
        "--json",
        "--top",
        "0",
        "--interval",
        "0.5",
    ]);
    sc.wait_attached();
    let mut rdb = Tool::start(&["rocksdb", "--pid", &pid, "--json", "--interval", "0.5"]);
    rdb.wait_attached();
    let progs: Vec<u64> = [progs_held_by(sc.child.id()), progs_held_by(rdb.child.id())].concat();
    let calls = wl.run();
    // Both tools read their maps once more when they stop; the workload is
    // idle by then, so both finals cover the same calls.
    rdb.signal(libc::SIGINT);
    sc.signal(libc::SIGINT);
    let (rst, rout, rerr) = rdb.wait();
    let (sst, sout, serr) = sc.wait();
    wl.finish();
    assert_eq!(rst.code(), Some(0), "{rerr:#?}");
    assert_eq!(sst.code(), Some(0), "{serr:#?}");

    let r = final_rocksdb(&rout);
    let ops: u64 = r.operations.values().map(|o| o.count).sum();
    let jobs: u64 = r
        .background
        .iter()
        .flat_map(|b| b.jobs.values())
        .map(|k| k.finished)
        .sum();
    assert_eq!(r.uncounted_calls, 0, "{r:?}");
    // The workload's own count of the functions the rocksdb layer traced.
    let left_out: Vec<&str> = r
        .left_out
        .as_ref()
        .expect("the final report lists them")
        .iter()
        .map(|l| l.function.as_str())
        .collect();
    let traced: u64 = calls
        .calls
        .iter()
        .filter(|(f, _)| !left_out.contains(&f.as_str()))
        .map(|(_, n)| n)
        .sum();
    assert!(ops > 0);
    assert_eq!(ops, traced, "rocksdb counted every traced call: {r:?}");

    let s = final_syscall(&sout);
    assert!(
        !s.syscalls.contains_key("uretprobe"),
        "the probe cost stays out of the profile: {:?}",
        s.syscalls.keys()
    );
    // Probe hits: the operations, plus the stand-in calls nested in a
    // counted one (a transaction iterator's inner DBIter calls), which
    // return through a uretprobe too but are no operation.
    let hits = r.overhead.as_ref().expect("overhead estimate").hits.clone();
    let hits = hits.emulated + hits.single_stepped;
    assert!(
        hits >= ops && hits - ops <= ops / 10,
        "{hits} hits, {ops} ops"
    );
    let cost = s.probe_cost.get("uretprobe").map(|c| c.count);
    assert_eq!(
        cost,
        Some(hits + jobs),
        "one uretprobe syscall per probe hit: {:?}",
        s.probe_cost
    );
    let listed: u64 = s.syscalls.values().map(|v| v.count).sum();
    assert_eq!(s.total_calls, listed, "not in the totals either");
    assert_eq!(progs_left(&progs), Vec::<u64>::new(), "left after exit");
}

#[test]
fn bad_input_gets_a_message_and_exit_code() {
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["syscall", "--pid", "999999999"],
            2,
            "no process with PID 999999999",
        ),
        (
            &["syscall", "--name", "no-such-process-xyz"],
            2,
            "no running process named `no-such-process-xyz`",
        ),
        (&["syscall", "--interval", "0"], 2, "positive"),
        (&["syscall", "soon"], 2, "try 30s"),
        (&["syscall", "--backend", "kprobe"], 2, "invalid value"),
        (&["syscall", "--top", "many"], 2, "--top"),
    ];
    assert_bad_input(cases);
}

/// The cost each backend adds to a syscall: one workload alternates bare
/// and traced loops of getppid; each figure is the fastest of five loops,
/// which shrugs off other load on the machine. Prints the figures (run with
/// --nocapture); asserts only exact counts, never timings.
#[test]
fn per_syscall_cost_of_each_backend() {
    require_bpf();
    const N: u64 = 100_000;
    const LOOPS: u64 = 5;
    let mut wl = ScWorkload::start();
    let pid = wl.pid.to_string();
    let fastest = |wl: &mut ScWorkload| -> f64 {
        (0..LOOPS)
            .map(|_| {
                let b: Bench = wl.cmd(&format!("bench {N}"));
                assert_eq!(b.calls, N);
                b.ns as f64 / N as f64
            })
            .fold(f64::INFINITY, f64::min)
    };
    fastest(&mut wl); // warm up
    let mut report = Vec::new();
    for backend in BACKENDS {
        let bare_before = fastest(&mut wl);
        let mut tool = Tool::start(&[
            "syscall",
            "--pid",
            &pid,
            "--json",
            "--interval",
            "10",
            "--backend",
            backend,
        ]);
        tool.wait_attached();
        let traced = fastest(&mut wl);
        tool.signal(libc::SIGINT);
        let (status, out, err) = tool.wait();
        assert_eq!(status.code(), Some(0), "{err:#?}");
        let bare = bare_before.min(fastest(&mut wl));
        let fin = final_syscall(&out);
        let got = fin.syscalls.get("getppid").map(|s| s.count);
        assert_eq!(got, Some(N * LOOPS), "{backend}");
        report.push(format!(
            "{backend:>10}: bare {bare:6.1} ns, traced {traced:6.1} ns, +{:5.1} ns/syscall ({:.2}x)",
            traced - bare,
            traced / bare
        ));
    }
    wl.finish();
    eprintln!(
        "\nper-syscall cost (getppid, fastest of {LOOPS} x {N}):\n{}",
        report.join("\n")
    );
}
