//! `ckb-libbpf rocksdb` against the bundled workload, in the real kernel:
//! the tool's figures must equal what the workload says it did.

use crate::common::*;

const CLASSES: &[(&str, &[&str])] = &[
    (
        "GET",
        &[
            "rocksdb_get",
            "rocksdb_get_cf",
            "rocksdb_get_pinned",
            "rocksdb_get_pinned_cf",
            "rocksdb_transaction_get_pinned_cf",
            "rocksdb_transaction_get_for_update_cf",
        ],
    ),
    (
        "PUT",
        &[
            "rocksdb_put",
            "rocksdb_put_cf",
            "rocksdb_transaction_put_cf",
        ],
    ),
    (
        "DELETE",
        &[
            "rocksdb_delete",
            "rocksdb_delete_cf",
            "rocksdb_transaction_delete_cf",
        ],
    ),
    ("WRITE", &["rocksdb_write"]),
    (
        "ITER_SEEK",
        &["rocksdb_iter_seek", "rocksdb_iter_seek_to_first"],
    ),
    (
        "ITER_CREATE",
        &[
            "rocksdb_create_iterator",
            "rocksdb_create_iterator_cf",
            "rocksdb_transaction_create_iterator_cf",
        ],
    ),
    ("ITER_NEXT", &["rocksdb_iter_next"]),
    ("TXN_BEGIN", &["rocksdb_optimistictransaction_begin"]),
    ("TXN_COMMIT", &["rocksdb_transaction_commit"]),
];

/// The final report's classes (counts) and bytes equal what the workload
/// did: PUT key + value, GET value sizes of hits (with `sizes`, the
/// capture's `--value-sizes`; else GET has no bytes) and misses, WRITE the
/// batches' data sizes.
fn assert_exact(fin: &RocksdbReport, counts: &Counts, err: &[String], sizes: bool) {
    for (class, members) in CLASSES {
        let got = fin.operations.get(*class).map(|r| r.count);
        assert_eq!(got, Some(counts.sum(members)), "{class}: {err:#?}");
    }
    let (put, get) = (&fin.operations["PUT"], &fin.operations["GET"]);
    assert_eq!(put.bytes, Some(counts.put_bytes));
    assert_eq!(get.bytes, sizes.then_some(counts.get_bytes), "GET bytes");
    assert_eq!(get.misses, Some(counts.get_misses));
    assert_eq!(fin.operations["WRITE"].bytes, Some(counts.write_bytes));
}

/// Attaches with `args`, runs `rounds` workload rounds, stops the tool with
/// SIGINT; returns (workload counts, tool stdout, tool stderr, and the IDs of
/// the BPF programs the tool held while running).
fn capture(
    rounds: &str,
    extra_workload: &[&str],
    args: &[&str],
) -> (Counts, Vec<String>, Vec<String>, Vec<u64>) {
    let mut wl_args = vec!["--rounds", rounds];
    wl_args.extend_from_slice(extra_workload);
    let mut wl = Workload::start(&wl_args);
    let pid = wl.pid.to_string();
    let mut tool_args = vec!["rocksdb", "--pid", &pid, "--interval", "0.2"];
    tool_args.extend_from_slice(args);
    let mut tool = Tool::start(&tool_args);
    tool.wait_attached();
    let progs = progs_held_by(tool.child.id());
    assert_eq!(
        rdb_progs(&progs),
        2,
        "entry and return programs while running"
    );
    let counts = wl.run();
    if args.contains(&"--json") {
        // The interval reports, not only the final one, show the calls.
        wait_idle_after_calls(&mut tool);
    }
    tool.signal(libc::SIGINT);
    let (status, out, err) = tool.wait();
    wl.finish();
    assert_eq!(
        status.code(),
        Some(0),
        "SIGINT ends a capture with 0; stderr: {err:#?}"
    );
    (counts, out, err, progs)
}

#[test]
fn json_counts_bytes_and_hits_equal_the_workload() {
    require_bpf();
    let (counts, out, err, progs) = capture(
        "3",
        &[],
        &["--json", "--by-function", "--ops", "all", "--value-sizes"],
    );
    // Every line is one report, decoded exactly (no field unknown or
    // missing).
    let all = rocksdb_reports(&out);
    assert_eq!(all.len(), out.len(), "only reports: {out:#?}");
    assert!(all.len() >= 2, "interval reports precede the final one");
    let fin = final_rocksdb(&out);

    // Per function, exactly.
    let funcs = fin.functions.as_ref().expect("--by-function rows");
    for (name, n) in &counts.calls {
        let got = funcs.get(name).map(|r| r.count);
        assert_eq!(got, Some(*n), "{name}: {err:#?}");
    }
    // Per class and bytes, exactly; no other class.
    assert_exact(&fin, &counts, &err, true);
    assert_eq!(
        fin.operations.len(),
        CLASSES.len(),
        "{:?}",
        fin.operations.keys()
    );
    assert!(counts.put_bytes > 0 && counts.get_bytes > 0 && counts.get_misses > 0);
    let (put, get) = (&fin.operations["PUT"], &fin.operations["GET"]);
    assert!(counts.write_bytes > 0);
    let want_hit = (get.count - counts.get_misses) as f64 / get.count as f64;
    let hit = get.hit_ratio.expect("GET has a hit ratio");
    assert!((hit - want_hit).abs() < 1e-9, "{hit} vs {want_hit}");
    assert_eq!(put.hit_ratio, None, "only GET has hits");
    // Latency figures are ordered and present.
    let (p50, p99, max) = (
        get.p50_us.unwrap(),
        get.p99_us.unwrap(),
        get.max_us.unwrap(),
    );
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{get:?}");
    assert_eq!(fin.pid, Some(counts.pid));
    assert_eq!(fin.lost_events, 0);
    assert_eq!(fin.uncounted_calls, 0);

    // The interval reports add up to the final one, class by class.
    for class in fin.operations.keys() {
        let summed: u64 = all
            .iter()
            .filter(|r| !r.is_final)
            .filter_map(|r| r.operations.get(class))
            .map(|r| r.count)
            .sum();
        assert_eq!(summed, fin.operations[class].count, "{class}");
    }

    assert_eq!(progs_left(&progs), Vec::<u64>::new(), "left after exit");
}

#[test]
fn json_histograms_hold_every_call_once() {
    require_bpf();
    let (counts, out, err, _) = capture(
        "2",
        &[],
        &["--json", "--histogram", "--by-function", "--ops", "all"],
    );
    let all = rocksdb_reports(&out);
    let fin = final_rocksdb(&out);
    let funcs = fin.functions.as_ref().expect("--by-function rows");
    for (name, n) in &counts.calls {
        assert_eq!(
            funcs.get(name).map(|r| r.count),
            Some(*n),
            "{name}: {err:#?}"
        );
    }
    // In every line, each row's buckets are ascending, non-empty and add up
    // to its exact count; the top one holds the exact maximum.
    for r in &all {
        for (name, row) in r.operations.iter().chain(r.functions.iter().flatten()) {
            let h = row
                .histogram
                .as_ref()
                .unwrap_or_else(|| panic!("{name}: no histogram"));
            assert_eq!(h.iter().map(|b| b.count).sum::<u64>(), row.count, "{name}");
            assert!(h.iter().all(|b| b.count > 0), "{name}: {h:?}");
            assert!(h.windows(2).all(|w| w[0].log2 < w[1].log2), "{name}: {h:?}");
            if let (Some(top), Some(max)) = (h.last(), row.max_us) {
                let max_ns = max * 1000.0;
                assert!(
                    top.log2 == 0 || (1u64 << top.log2) as f64 <= max_ns,
                    "{name}: max {max} us below bucket {}",
                    top.log2
                );
                assert!(max_ns < (1u64 << (top.log2 + 1)) as f64, "{name}");
            }
        }
    }
    // The interval lines' buckets add up to the final line's, per class.
    for (class, row) in &fin.operations {
        let mut summed = std::collections::BTreeMap::<u32, u64>::new();
        for r in all.iter().filter(|r| !r.is_final) {
            for b in r
                .operations
                .get(class)
                .and_then(|o| o.histogram.as_ref())
                .into_iter()
                .flatten()
            {
                *summed.entry(b.log2).or_default() += b.count;
            }
        }
        let whole: std::collections::BTreeMap<u32, u64> = row
            .histogram
            .iter()
            .flatten()
            .map(|b| (b.log2, b.count))
            .collect();
        assert_eq!(summed, whole, "{class}");
    }
}

#[test]
fn table_summary_agrees_with_the_workload() {
    require_bpf();
    let (counts, out, _err, _) = capture("2", &[], &["--ops", "all"]);
    let summary_at = out
        .iter()
        .position(|l| l.starts_with("=== rocksdb summary"))
        .unwrap_or_else(|| panic!("no summary in {out:#?}"));
    for (class, members) in CLASSES {
        let n = counts.sum(members);
        let line = out[summary_at..]
            .iter()
            .find(|l| l.split_whitespace().next() == Some(class))
            .unwrap_or_else(|| panic!("no {class} row"));
        let count: u64 = line
            .split_whitespace()
            .nth(1)
            .unwrap()
            .replace(',', "")
            .parse()
            .unwrap();
        assert_eq!(count, n, "{class}: {line}");
    }
}

#[test]
fn slow_log_shows_the_deliberately_slow_batch() {
    require_bpf();
    // One 40 MB batch takes far longer than 20 ms; scripted ops do not.
    let (_counts, out, _err, _) = capture(
        "1",
        &["--slow-batch", "40000"],
        &["--slow", "--threshold", "20000"],
    );
    let slow: Vec<&String> = out
        .iter()
        .filter(|l| l.contains(" WRITE ") && l.contains("rocksdb_write"))
        .collect();
    assert!(!slow.is_empty(), "no slow WRITE in {out:#?}");
    let lat: f64 = slow[0]
        .split_whitespace()
        .nth(5)
        .unwrap()
        .replace(',', "")
        .parse()
        .unwrap();
    assert!(lat >= 20_000.0, "{}", slow[0]);
    assert!(
        out.iter().any(|l| l.starts_with("=== rocksdb summary")),
        "final summary follows the log"
    );
}

/// Kernels before 6.6 have no uprobe_multi: one classic uprobe per function,
/// whose programs read the cookie and pid_tgid through the helpers instead
/// of the current task. Forced here: counts, bytes (value sizes on) and
/// misses exact, stand-ins included.
#[test]
fn classic_uprobes_count_exactly() {
    require_bpf();
    let (counts, out, err, _) = capture(
        "2",
        &[],
        &[
            "--json",
            "--by-function",
            "--backend",
            "uprobe",
            "--value-sizes",
        ],
    );
    assert!(
        err.iter().any(|l| l.contains("one link per probe")),
        "the classic backend is named: {err:#?}"
    );
    let fin = final_rocksdb(&out);
    assert_exact(&fin, &counts, &err, true);
}

/// The C iterator functions are single-stepped trampolines in a
/// statically linked RocksDB (as in CKB): by default their calls are counted
/// at the C++ methods they forward to, exactly, plain and transaction
/// iterators alike, and nothing is counted twice.
#[test]
fn iterator_operations_are_counted_by_default_through_stand_ins() {
    require_bpf();
    let (counts, out, err, _) = capture("2", &[], &["--json", "--by-function"]);
    let fin = final_rocksdb(&out);
    // The defaults: GET without bytes (no --value-sizes), the rest exact.
    assert_exact(&fin, &counts, &err, false);
    let funcs = fin.functions.as_ref().expect("--by-function rows");
    let at = |name: &str| funcs.get(name).map_or(0, |r| r.count);
    // Plain iterators' calls at DBIter, the transaction's at
    // BaseDeltaIterator (2 seeks a round; its inner DBIter calls not
    // counted).
    assert_eq!(at("rocksdb::BaseDeltaIterator::Seek"), 2 * 2);
    assert_eq!(
        at("rocksdb::DBIter::Seek") + at("rocksdb::BaseDeltaIterator::Seek"),
        counts.calls["rocksdb_iter_seek"]
    );
    assert_eq!(
        at("rocksdb::DBIter::Next") + at("rocksdb::BaseDeltaIterator::Next"),
        counts.calls["rocksdb_iter_next"]
    );
    assert!(at("rocksdb::BaseDeltaIterator::Next") > 0);
    assert!(
        err.iter().any(|l| l.contains(
            "rocksdb_iter_next (ITER_NEXT) is single-stepped (`mov rdi,[rdi]`): its calls are counted at rocksdb::DBIter::Next and rocksdb::BaseDeltaIterator::Next instead"
        )),
        "{err:#?}"
    );
    let left = fin.left_out.as_ref().expect("left_out");
    assert!(
        left.iter().all(|l| !l.op.starts_with("ITER")),
        "no iterator function left out: {left:?}"
    );
    assert_eq!(fin.uncounted_calls, 0);
}

#[test]
fn single_stepped_functions_are_left_out_by_default() {
    require_bpf();
    let (counts, out, err, _) = capture("1", &[], &["--json", "--by-function"]);
    let fin = final_rocksdb(&out);
    let funcs = fin.functions.as_ref().expect("--by-function rows");
    let left_out: Vec<&str> = err
        .iter()
        .filter_map(|l| l.strip_prefix("ckb-libbpf: left out "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let json_left: Vec<&str> = fin
        .left_out
        .as_ref()
        .expect("final report lists left-out functions")
        .iter()
        .map(|l| l.function.as_str())
        .collect();
    let covered: Vec<&str> = err
        .iter()
        .filter(|l| l.contains(") is single-stepped (`"))
        .filter_map(|l| l.strip_prefix("ckb-libbpf: "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        !covered.is_empty(),
        "the workload calls single-stepped iterator functions: {err:#?}"
    );
    assert_eq!(
        json_left, left_out,
        "JSON and stderr name the same functions"
    );
    for (name, n) in &counts.calls {
        if covered.contains(&name.as_str()) {
            // Counted at its stand-ins (the test above).
            assert!(!funcs.contains_key(name), "{name} is covered but traced");
        } else if left_out.contains(&name.as_str()) {
            assert!(!funcs.contains_key(name), "{name} was left out but traced");
            assert!(err
                .iter()
                .any(|l| l.contains(&format!("opt in with --ops {name}"))));
        } else {
            assert_eq!(funcs.get(name).map(|r| r.count), Some(*n), "{name}");
        }
    }
}

#[test]
fn target_exit_with_no_follow_ends_the_capture_with_code_1() {
    require_bpf();
    let mut wl = Workload::start(&["--rounds", "1"]);
    let pid = wl.pid.to_string();
    let mut tool = Tool::start(&[
        "rocksdb",
        "--pid",
        &pid,
        "--interval",
        "0.2",
        "--json",
        "--no-follow",
    ]);
    tool.wait_attached();
    let progs = progs_held_by(tool.child.id());
    let counts = wl.run();
    wl.finish();
    let (status, out, err) = tool.wait();
    assert_eq!(status.code(), Some(1), "{err:#?}");
    assert!(
        err.iter()
            .any(|l| l.contains(&format!("target process {pid} exited"))),
        "{err:#?}"
    );
    // The summary still covers what happened before the exit.
    let fin = final_rocksdb(&out);
    assert!(counts.sum(PUTS) > 0);
    assert_eq!(fin.operations["PUT"].count, counts.sum(PUTS));
    assert!(!progs.is_empty());
    assert_eq!(progs_left(&progs), Vec::<u64>::new(), "left after exit");
}

#[test]
fn binary_mode_traces_every_process_of_the_file() {
    require_bpf();
    let bin = private_workload_copy();
    let mut tool = Tool::start(&[
        "rocksdb",
        "--binary",
        bin.to_str().unwrap(),
        "--json",
        "--interval",
        "0.2",
        "--ops",
        "PUT",
    ]);
    tool.wait_attached();
    // Two processes started after the attach are both counted.
    let mut a = Workload::start_bin(&bin, &["--rounds", "1"]);
    let mut b = Workload::start_bin(&bin, &["--rounds", "1"]);
    let ca = a.run();
    let cb = b.run();
    a.finish();
    b.finish();
    // Then many short-lived ones, one after the other: more (process,
    // database) pairs than the BPF side has rows for at a time (64), so this
    // counts exactly only if the rows of exited processes are handed back.
    let mut later = Vec::new();
    for _ in 0..40 {
        let mut w = Workload::start_bin(&bin, &["--rounds", "1"]);
        later.push(w.run());
        w.finish();
    }
    // Every process has exited and its calls are in the maps: the next
    // interval report has them all.
    let want = ca.sum(PUTS) + cb.sum(PUTS) + later.iter().map(|c| c.sum(PUTS)).sum::<u64>();
    let total_in = |l: &str| -> u64 {
        match decode::<Line>(l) {
            Line::Report(Report::Rocksdb(r)) => r.operations.get("PUT").map_or(0, |r| r.count),
            l => panic!("{l:?}"),
        }
    };
    let mut seen = 0;
    tool.wait_stdout("interval reports adding up to every PUT", |l| {
        seen += total_in(l);
        seen >= want
    });
    tool.signal(libc::SIGTERM);
    let (status, out, _) = tool.wait();
    assert_eq!(status.code(), Some(0));
    let fin = final_rocksdb(&out);
    assert_eq!(fin.operations["PUT"].count, want);
    assert_eq!(fin.uncounted_calls, 0);
    assert_eq!(fin.pid, None, "--binary: every process of the file");
    assert_eq!(
        fin.operations.keys().collect::<Vec<_>>(),
        ["PUT"],
        "--ops PUT traces PUT only"
    );
}

#[test]
fn bad_input_gets_a_message_and_exit_code() {
    // No BPF needed: these fail before anything is loaded (or at the
    // privilege check, which then must say so).
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["rocksdb", "--pid", "999999999"],
            2,
            "no process with PID 999999999",
        ),
        (
            &["rocksdb", "--binary", "/etc/hostname"],
            2,
            "not a valid ELF file",
        ),
        (&["rocksdb", "--binary", "/tmp"], 2, "is a directory"),
        (
            &["rocksdb", "--binary", "/nonexistent/ckb"],
            2,
            "cannot read /nonexistent/ckb",
        ),
        (
            &["rocksdb", "--ops", "FROB", "--binary", "/bin/true"],
            2,
            "unknown operation `FROB`",
        ),
        (
            &["rocksdb", "--binary", "/bin/true"],
            2,
            "no RocksDB C API symbols",
        ),
        (&["rocksdb", "--interval", "0"], 2, "positive"),
        (&["rocksdb", "soon"], 2, "try 30s"),
        (&["rocksdb", "--threshold", "5"], 2, "--slow"),
    ];
    assert_bad_input(cases);
}

#[test]
fn unprivileged_user_is_told_what_to_do() {
    if unsafe { libc::geteuid() } != 0 {
        return; // already unprivileged: covered by bad_input_gets_a_message_and_exit_code
    }
    let out = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(tool())
        .args(["rocksdb", "--pid", "1"])
        .output()
        .expect("setpriv (util-linux) runs the tool as nobody");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("insufficient privileges") && err.contains("CAP_BPF"),
        "{err}"
    );
    assert!(err.contains("hint: run as root"), "{err}");
}

#[test]
fn sigkill_leaves_nothing_behind() {
    require_bpf();
    let mut wl = Workload::start(&["--rounds", "1"]);
    let pid = wl.pid.to_string();
    let mut tool = Tool::start(&["rocksdb", "--pid", &pid, "--slow", "--threshold", "0"]);
    tool.wait_attached();
    let tool_pid = tool.child.id();
    let progs = progs_held_by(tool_pid);
    assert_eq!(
        rdb_progs(&progs),
        2,
        "the probes are live while the tool runs"
    );
    wl.run();
    tool.signal(libc::SIGKILL);
    let (status, _, _) = tool.wait();
    assert_eq!(status.code(), None, "killed by a signal");
    wl.finish();
    // Links and programs live in the tool's file descriptors: the kernel
    // frees them once the process is gone (after a grace period).
    assert_eq!(progs_left(&progs), Vec::<u64>::new(), "left after SIGKILL");
    assert!(leftover_uprobe_events(tool_pid).is_empty());
}

#[test]
fn empty_programs_mode_attaches_the_floor_and_counts_nothing() {
    require_bpf();
    // `make bench` measures the kernel's floor with these: the same links
    // and offsets as a real capture, programs that do nothing.
    let mut wl = Workload::start(&["--rounds", "1"]);
    let pid = wl.pid.to_string();
    let mut tool = Tool::start(&["rocksdb", "--pid", &pid, "--json", "--empty-programs"]);
    tool.wait_attached();
    let progs = progs_held_by(tool.child.id());
    let names = prog_names(&progs);
    let counts = wl.run();
    tool.signal(libc::SIGINT);
    let (status, out, err) = tool.wait();
    wl.finish();
    assert_eq!(status.code(), Some(0), "{err:#?}");
    assert_eq!(progs.len(), 2, "{err:#?}");
    assert!(
        names.iter().all(|n| n.starts_with("rdb_empty")),
        "only empty programs: {names:?}"
    );
    assert!(counts.total() > 0);
    let fin = final_rocksdb(&out);
    for (op, row) in &fin.operations {
        assert_eq!(row.count, 0, "{op}: {err:#?}");
    }
}

/// Raises `kernel.pid_max` for the life of the value (as systemd does on
/// big hosts: 4194304), restoring it after.
struct PidMax(String);

impl PidMax {
    fn raise(to: u32) -> PidMax {
        let path = "/proc/sys/kernel/pid_max";
        let old = std::fs::read_to_string(path).expect("pid_max");
        std::fs::write(path, to.to_string()).expect("raising pid_max (root)");
        PidMax(old.trim().to_string())
    }
}

impl Drop for PidMax {
    fn drop(&mut self) {
        let _ = std::fs::write("/proc/sys/kernel/pid_max", &self.0);
    }
}

/// With pid_max at 4194304 the per-thread table has 64 K slots: threads
/// with ids above 65,536 share them, and two whose ids are 65,536 apart
/// share one. Both run the rounds at once, so their calls overlap in the
/// shared slot; every call must still be counted and timed, exactly.
#[test]
fn high_and_colliding_thread_ids_are_counted_exactly() {
    require_bpf();
    let _pid_max = PidMax::raise(4_194_304);
    let free = |t: u32| !std::path::Path::new(&format!("/proc/{t}")).exists();
    let base = (70_001..200_000)
        .step_by(97)
        .find(|&t| free(t) && free(t + 65_536))
        .expect("two free thread ids");
    let tids = format!("{base},{}", base + 65_536);
    let (counts, out, err, _) =
        capture("4", &["--threads-at", &tids], &["--json", "--by-function"]);
    let fin = final_rocksdb(&out);
    assert_exact(&fin, &counts, &err, false);
    assert_eq!(fin.uncounted_calls, 0, "no call left untimed");
    assert_eq!(fin.lost_events, 0);
}

/// On a host where a copy of the RocksDB `stats` per CPU would take too
/// much kernel memory, one copy shared by all CPUs is used (atomic adds).
/// Forced here (2 CPUs) with CKB_LIBBPF_STATS=shared: the counts stay
/// exact, and the per-CPU memory drops to almost nothing.
#[test]
fn shared_stats_are_exact_and_bound_the_memory() {
    require_bpf();
    let mut wl = Workload::start(&["--rounds", "3"]);
    let pid = wl.pid.to_string();
    let mut tool = Tool::start_env(
        &[("CKB_LIBBPF_STATS", "shared")],
        &[
            "rocksdb",
            "--pid",
            &pid,
            "--interval",
            "0.2",
            "--json",
            "--ops",
            "all",
            "--value-sizes",
        ],
    );
    tool.wait_attached();
    // A value it does not know: a usage error, before anything attaches.
    let bad = Tool::start_env(
        &[("CKB_LIBBPF_STATS", "sometimes")],
        &["rocksdb", "--pid", &pid],
    );
    let (status, _, berr) = bad.wait();
    assert_eq!(status.code(), Some(2), "{berr:#?}");
    assert!(
        berr.iter()
            .any(|l| l.contains("CKB_LIBBPF_STATS=sometimes")),
        "{berr:#?}"
    );
    let counts = wl.run();
    tool.signal(libc::SIGINT);
    let (status, out, err) = tool.wait();
    wl.finish();
    assert_eq!(status.code(), Some(0), "{err:#?}");
    let fin = final_rocksdb(&out);
    assert_exact(&fin, &counts, &err, true);
    // "BPF maps hold X MiB of kernel memory here (S MiB + P MiB per CPU x N CPUs)"
    let note = err
        .iter()
        .find(|l| l.contains("BPF maps hold"))
        .expect("the map memory note");
    let per_cpu: f64 = note
        .split(" MiB per CPU")
        .next()
        .and_then(|h| h.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{note}"));
    assert!(per_cpu < 0.5, "per-CPU maps stay small: {note}");
}
