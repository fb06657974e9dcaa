//! `ckb-libbpf rocksdb`'s overhead estimate and `--overhead-budget`, in the
//! real kernel against the bundled workload: the estimate is the hits the
//! tool counted times the per-hit cost it measured at start-up, and a budget
//! it cannot afford attached makes it detach for part of each interval,
//! count fewer calls than were made, say so, and leave nothing behind.

use crate::common::*;

/// Functions of the workload whose first instruction is single-stepped
/// (BENCHMARKS.md section 5); every other one it calls is emulated.
const SINGLE_STEPPED: &[&str] = &[
    "rocksdb_iter_seek",
    "rocksdb_iter_seek_to_first",
    "rocksdb_iter_next",
];

fn total(counts: &Counts, keep: impl Fn(&str) -> bool) -> u64 {
    counts
        .calls
        .iter()
        .filter(|(k, _)| keep(k))
        .map(|(_, v)| v)
        .sum()
}

fn counted(report: &RocksdbReport) -> u64 {
    report.operations.values().map(|r| r.count).sum()
}

/// Runs the workload with `wl_args` under the tool with `args` (JSON, 0.2 s
/// intervals), stops the tool with SIGINT; returns (workload counts, stdout,
/// stderr, programs the tool held while running).
fn capture(
    env: &[(&str, &str)],
    wl_args: &[&str],
    args: &[&str],
) -> (Counts, Vec<String>, Vec<String>, Vec<u64>) {
    let mut wl = Workload::start(wl_args);
    let pid = wl.pid.to_string();
    let mut tool_args = vec!["rocksdb", "--pid", &pid, "--interval", "0.2", "--json"];
    tool_args.extend_from_slice(args);
    let mut tool = Tool::start_env(env, &tool_args);
    tool.wait_attached();
    let progs = progs_held_by(tool.child.id());
    assert_eq!(
        rdb_progs(&progs),
        2,
        "entry and return programs while running"
    );
    let counts = wl.run();
    wait_idle_after_calls(&mut tool);
    tool.signal(libc::SIGINT);
    let (status, out, err) = tool.wait();
    wl.finish();
    assert_eq!(status.code(), Some(0), "SIGINT ends with 0: {err:#?}");
    (counts, out, err, progs)
}

#[test]
fn estimate_is_counted_hits_times_the_measured_cost() {
    require_bpf();
    let (counts, out, err, _) = capture(&[], &["--secs", "1"], &["--ops", "all"]);
    assert!(
        err.iter()
            .any(|l| l.contains("probe cost per hit measured here")),
        "the calibration ran: {err:#?}"
    );
    let rs = rocksdb_reports(&out);
    for r in &rs {
        assert!(r.overhead.is_some(), "every report has it: {r:?}");
    }
    let fin = final_rocksdb(&out);
    let o = fin.overhead.as_ref().unwrap();
    // Hits per class are exactly the calls the workload made.
    let stepped = total(&counts, |f| SINGLE_STEPPED.contains(&f));
    let emulated = total(&counts, |f| !SINGLE_STEPPED.contains(&f));
    assert!(stepped > 0 && emulated > 0);
    assert_eq!(o.hits.emulated, emulated, "{o:?}");
    assert_eq!(o.hits.single_stepped, stepped, "{o:?}");
    // Measured here, single-stepping dearer than emulation.
    assert_eq!(o.per_hit_source, "measured");
    let (ce, cs) = (o.per_hit_ns.emulated, o.per_hit_ns.single_stepped);
    assert!(0.0 < ce && ce < cs, "{o:?}");
    // Always attached, no budget: nothing sampled.
    assert_eq!(o.attached_pct, 100.0);
    assert!(!o.sampled);
    assert_eq!(o.budget_pct, None);
    assert_eq!(counted(&fin), emulated + stepped);
    // The estimate of each interval (after the first, which also spans the
    // attach): its hits × cost over its span, % of one core.
    let mut checked = 0;
    for r in rs.iter().filter(|r| !r.is_final).skip(1) {
        let o = r.overhead.as_ref().unwrap();
        let (e, s) = (o.hits.emulated, o.hits.single_stepped);
        assert_eq!(e + s, counted(r), "{r:?}");
        let span_ns = r.interval_secs * 1e9;
        let want = (e as f64 * ce + s as f64 * cs) / span_ns * 100.0;
        let est = o.est_pct_core;
        assert!(
            (est - want).abs() <= want * 1e-9 + 1e-12,
            "est {est} vs {want}"
        );
        checked += usize::from(e + s > 0);
    }
    assert!(
        checked > 0,
        "no interval with hits after the first: {rs:#?}"
    );
    assert!(o.est_pct_core > 0.0);
}

#[test]
fn tiny_budget_detaches_part_of_the_time_and_leaves_nothing_attached() {
    require_bpf();
    let (counts, out, err, progs) = capture(
        &[],
        &["--secs", "3", "--pause-ms", "0"],
        &["--overhead-budget", "0.01"],
    );
    assert!(
        err.iter().any(|l| l.contains("overhead budget 0.01 %")),
        "{err:#?}"
    );
    let fin = final_rocksdb(&out);
    let o = fin.overhead.as_ref().unwrap();
    assert_eq!(o.budget_pct, Some(0.01));
    assert!(o.attached_pct < 100.0, "{o:?}");
    assert!(o.sampled, "{o:?}");
    // Counts come only from the attached time: fewer than were made.
    let made = total(&counts, |f| !SINGLE_STEPPED.contains(&f));
    let seen = counted(&fin);
    assert!(0 < seen && seen < made, "seen {seen} of {made}");
    // Every interval after the first is mostly detached.
    let rs = rocksdb_reports(&out);
    assert!(
        rs.iter()
            .filter(|r| !r.is_final)
            .any(|r| r.overhead.as_ref().unwrap().attached_pct < 50.0),
        "{rs:#?}"
    );
    // Nothing left attached or loaded after the exit.
    assert_eq!(progs_left(&progs), Vec::<u64>::new(), "left after exit");
    assert!(links_of(&progs).is_empty());
}

#[test]
fn budget_line_in_the_table_says_the_counts_are_sampled() {
    require_bpf();
    let mut wl = Workload::start(&["--secs", "2", "--pause-ms", "0"]);
    let pid = wl.pid.to_string();
    let mut tool = Tool::start(&[
        "rocksdb",
        "--pid",
        &pid,
        "--interval",
        "0.3",
        "--overhead-budget",
        "0.05",
    ]);
    tool.wait_attached();
    wl.run();
    tool.wait_stdout("the overhead line of a table", |l| {
        l.starts_with("probe cost ≈")
    });
    tool.signal(libc::SIGTERM);
    let (status, out, err) = tool.wait();
    wl.finish();
    assert_eq!(status.code(), Some(0), "{err:#?}");
    let summary = out
        .iter()
        .position(|l| l.starts_with("=== rocksdb summary"))
        .expect("a summary");
    let line = out[summary..]
        .iter()
        .find(|l| l.starts_with("probe cost ≈"))
        .unwrap_or_else(|| panic!("no overhead line in the summary: {out:#?}"));
    assert!(line.contains("% of the time"), "{line}");
    assert!(
        line.contains("counts and rates are from the attached"),
        "{line}"
    );
}

#[test]
fn failed_calibration_falls_back_to_the_documented_defaults() {
    require_bpf();
    let (_counts, out, err, _) = capture(
        &[("CKB_LIBBPF_FAULT", "calibrate")],
        &["--rounds", "1"],
        &[],
    );
    assert!(
        err.iter()
            .any(|l| l.contains("could not measure the probe cost per hit")),
        "{err:#?}"
    );
    let fin = final_rocksdb(&out);
    let o = fin.overhead.as_ref().unwrap();
    assert_eq!(o.per_hit_source, "default");
    assert_eq!(o.per_hit_ns.emulated, 2000.0);
    assert_eq!(o.per_hit_ns.single_stepped, 12000.0);
    assert!(o.est_pct_core > 0.0);
}

#[test]
fn bad_budgets_are_usage_errors() {
    let msg = "the budget is a percentage of one core";
    assert_bad_input(&[
        (&["rocksdb", "--overhead-budget", "0"], 2, msg),
        (&["rocksdb", "--overhead-budget=-1"], 2, msg),
        (&["rocksdb", "--overhead-budget", "100.5"], 2, msg),
        (&["rocksdb", "--overhead-budget", "abc"], 2, msg),
        (&["rocksdb", "--overhead-budget", "NaN"], 2, msg),
    ]);
}
