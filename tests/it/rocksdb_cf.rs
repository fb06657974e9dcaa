//! Issue 17: every RocksDB operation attributed to its database (the
//! directory the process opened) and column family (by name). The bundled
//! workload runs two databases with several families and says exactly how
//! many calls of each function went to each (db, cf); the tool's `by_cf`
//! rows must say the same.

use std::collections::BTreeMap;

use crate::common::*;
use ckb_libbpf::schema::rocksdb::RocksdbReport;
use ckb_libbpf::schema::Report;

/// Class of each function the workload calls (the tool's `op`).
pub fn class(func: &str) -> &'static str {
    match func {
        f if f.contains("_get") => "GET",
        f if f.contains("_put") => "PUT",
        f if f.contains("_delete") => "DELETE",
        "rocksdb_write" => "WRITE",
        f if f.contains("_seek") => "ITER_SEEK",
        f if f.contains("create_iterator") => "ITER_CREATE",
        "rocksdb_iter_next" => "ITER_NEXT",
        f if f.ends_with("_begin") => "TXN_BEGIN",
        "rocksdb_transaction_commit" => "TXN_COMMIT",
        f => panic!("no class for {f}"),
    }
}

pub type Split = BTreeMap<(String, String, String), u64>;

/// The workload's ground truth per (db, cf, class).
pub fn truth(counts: &Counts) -> Split {
    let mut want = Split::new();
    for r in counts.by_cf.as_ref().expect("--cf-db2 prints by_cf") {
        let k = (r.db.clone(), r.cf.clone(), class(&r.func).to_string());
        *want.entry(k).or_default() += r.count;
    }
    want
}

/// The tool's `by_cf` rows per (db, cf, op).
fn split(report: &RocksdbReport) -> Split {
    let mut got = Split::new();
    for r in &report.by_cf {
        let k = (r.db.clone(), r.cf.clone(), r.op.clone());
        let prev = got.insert(k.clone(), r.count);
        assert!(prev.is_none(), "one row per (db, cf, op): {k:?} twice");
        if r.count > 0 {
            assert!(r.avg_us.is_some() && r.max_us.is_some(), "{r:?}");
        }
    }
    got
}

/// What one capture of the workload with its second database saw.
struct Db2Run {
    counts: Counts,
    status: std::process::ExitStatus,
    out: Vec<String>,
    err: Vec<String>,
    /// The second database's directory (removed by now).
    db2: String,
}

/// Runs `rounds` workload rounds with its second database (`--cf-db2`)
/// under `rocksdb --pid PID ARGS`. With `exit_first` the workload exits
/// (after a second's name pass) before the tool is stopped; otherwise the
/// tool is stopped while it runs.
fn capture_db2(rounds: &str, args: &[&str], exit_first: bool) -> Db2Run {
    capture_db2_paced(rounds, &[], args, exit_first)
}

/// `capture_db2` with more workload arguments (`--rate N`).
fn capture_db2_paced(rounds: &str, wl_args: &[&str], args: &[&str], exit_first: bool) -> Db2Run {
    let scratch = scratch_dir("cf-db2");
    // Not created here: the workload creates its second database.
    let db2 = scratch.join("db").display().to_string();
    let mut wl_all = vec!["--rounds", rounds, "--cf-db2", &db2];
    wl_all.extend_from_slice(wl_args);
    let mut wl = Workload::start(&wl_all);
    let pid = wl.pid.to_string();
    let mut tool_args = vec!["rocksdb", "--pid", &pid];
    tool_args.extend_from_slice(args);
    let mut tool = Tool::start(&tool_args);
    tool.wait_attached();
    let counts = wl.run();
    let pause = |ms| std::thread::sleep(std::time::Duration::from_millis(ms));
    let (status, out, err) = if exit_first {
        pause(2500);
        wl.finish();
        pause(300);
        tool.signal(libc::SIGINT);
        tool.wait()
    } else {
        pause(500);
        tool.signal(libc::SIGINT);
        let r = tool.wait();
        wl.finish();
        r
    };
    Db2Run {
        counts,
        status,
        out,
        err,
        db2,
    }
}

#[test]
fn by_cf_counts_equal_the_workload_per_database_and_family() {
    require_bpf();
    let Db2Run {
        counts,
        status,
        out,
        err,
        db2: db2s,
    } = capture_db2("3", &["--interval", "0.2", "--json", "--ops", "all"], false);
    assert_eq!(status.code(), Some(0), "{err:#?}");

    let want = truth(&counts);
    let fin = final_rocksdb(&out);
    let got = split(&fin);
    // Two databases, named by their directories; both have families.
    let dbs: std::collections::BTreeSet<&str> = want.keys().map(|k| k.0.as_str()).collect();
    assert_eq!(dbs.len(), 2, "{want:#?}");
    assert!(dbs.contains(db2s.as_str()));
    assert!(want.keys().any(|k| k.1 == "alpha") && want.keys().any(|k| k.1 == "cells"));
    assert_eq!(
        got, want,
        "tool (left) vs workload (right); stderr: {err:#?}"
    );

    // The interval rows add up to the final ones.
    let mut summed = Split::new();
    for r in reports(&out).iter().filter(|r| !r.is_final()) {
        let Report::Rocksdb(v) = r else { continue };
        for (k, n) in split(v) {
            *summed.entry(k).or_default() += n;
        }
    }
    assert_eq!(summed, want);
}

#[test]
fn by_cf_table_names_databases_and_families() {
    require_bpf();
    let Db2Run {
        counts,
        status,
        out,
        err,
        db2: db2s,
    } = capture_db2("2", &["--interval", "0.2", "--by", "cf"], false);
    assert_eq!(status.code(), Some(0), "{err:#?}");
    let summary: Vec<&String> = out
        .iter()
        .skip_while(|l| !l.starts_with("=== rocksdb summary"))
        .collect();
    assert!(
        summary.iter().any(|l| **l == format!("db {db2s}")),
        "{summary:#?}"
    );
    // alpha's point reads: 17 per round.
    let want = truth(&counts)[&(db2s.clone(), "alpha".into(), "GET".into())];
    assert_eq!(want, 34);
    let line = summary
        .iter()
        .find(|l| l.trim_start().starts_with("alpha GET"))
        .unwrap_or_else(|| panic!("{summary:#?}"));
    let count: u64 = line
        .split_whitespace()
        .nth(2)
        .unwrap()
        .replace(',', "")
        .parse()
        .unwrap();
    assert_eq!(count, want, "{line}");
    assert!(
        !summary
            .iter()
            .any(|l| l.contains("db@0x") || l.contains("cf@0x")),
        "every handle resolved: {summary:#?}"
    );
}

/// The same attribution through Debian's librocksdb.so (RocksDB 7.8, built
/// with frame pointers and virtual accessors: the name resolution must
/// follow the vtable calls there).
#[test]
fn by_cf_through_the_system_librocksdb() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};

    require_bpf();
    let prog = build_c("rocksdb_dyn_cf", &["rocksdb"]);
    // Not created here: the program's RocksDB creates it.
    let db = prog.dir().join("db");
    let mut child = Command::new(&prog)
        .arg(&db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("READY "), "{line}");
    let pid = child.id().to_string();
    let mut tool = Tool::start(&["rocksdb", "--pid", &pid, "--json", "--interval", "0.2"]);
    tool.wait_attached();
    writeln!(stdin, "go").unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    // {cf: {op: count}}, printed by the program itself.
    let truth: BTreeMap<String, BTreeMap<String, u64>> =
        serde_json::from_str(&line).expect("the program's counts");
    std::thread::sleep(std::time::Duration::from_millis(500));
    tool.signal(libc::SIGINT);
    let (status, lines, err) = tool.wait();
    writeln!(stdin, "done").unwrap();
    let _ = child.wait();
    assert_eq!(status.code(), Some(0), "{err:#?}");

    let dbs = db.display().to_string();
    let mut want = Split::new();
    for (cf, ops) in truth {
        for (op, n) in ops {
            want.insert((dbs.clone(), cf.clone(), op), n);
        }
    }
    let got = split(&final_rocksdb(&lines));
    assert_eq!(
        got, want,
        "tool (left) vs program (right); stderr: {err:#?}"
    );
}

/// Handle names straight from a live process's memory (no BPF): the
/// program prints its handles; the resolver must name each of them.
#[test]
fn handles_of_a_live_librocksdb_process_are_named() {
    use ckb_libbpf::node::rdbnames::{Accessors, Names};
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};

    let prog = build_c("rocksdb_dyn_cf", &["rocksdb"]);
    // Not created here: the program's RocksDB creates it.
    let db = prog.dir().join("db");
    let mut child = Command::new(&prog)
        .arg(&db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let ptrs: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|p| u64::from_str_radix(p.trim_start_matches("0x"), 16).unwrap())
        .collect();
    assert_eq!(ptrs.len(), 4, "{line}");
    let pid = child.id();
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let lib = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.contains("librocksdb.so"))
        .expect("librocksdb.so mapped")
        .to_string();
    let acc = Accessors::find(lib.as_ref(), lib.as_ref()).expect("accessors in librocksdb.so");
    let mut names = Names::new(vec![acc]);
    let got = (
        names.db(pid, ptrs[0]),
        names.cf(pid, ptrs[0], ptrs[1]),
        names.cf(pid, ptrs[0], ptrs[2]),
        names.cf(pid, ptrs[0], ptrs[3]),
        // Not a handle: never named.
        names.cf(pid, ptrs[0], ptrs[0]),
    );
    writeln!(stdin, "go").unwrap();
    writeln!(stdin, "done").unwrap();
    let _ = child.wait();
    let want = (
        Some(db.display().to_string()),
        Some("default".to_string()),
        Some("red".to_string()),
        Some("blue".to_string()),
        None,
    );
    assert_eq!(got, want);
}

/// Names are read from the process's memory, which is gone once it exits:
/// they are learnt while it runs (every second, whatever the interval), so
/// a short-lived process traced with one long interval (a `ckb import`
/// under `--interval 3600`) still ends with every row named.
#[test]
fn names_outlive_the_process_with_one_long_interval() {
    require_bpf();
    let r = capture_db2("3", &["--interval", "3600", "--json", "--ops", "all"], true);
    let fin = final_rocksdb(&r.out);
    assert_eq!(split(&fin), truth(&r.counts), "stderr: {:#?}", r.err);
}

/// One slow line as the names check needs it: where it says the call went,
/// and the handles (`db` hex; `cf` is the handle form while unconfirmed).
struct Named {
    /// Milliseconds since the epoch (the line's `time`).
    ms: u64,
    db_handle: String,
    db: Option<String>,
    cf: String,
    func: String,
}

impl Named {
    fn resolved(&self) -> bool {
        self.db.is_some() && !self.cf.starts_with("cf@0x")
    }
}

/// A key's first line, last unnamed line and first named line (ms).
type KeySeen = (u64, Option<u64>, Option<u64>);

fn millis(time: &str) -> u64 {
    let t = humantime::parse_rfc3339(time).unwrap_or_else(|e| panic!("{time}: {e}"));
    t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// Names come from the namer while the capture runs: a key is printed as
/// its handle until the renderer's first sight of it has been answered
/// (`collect::names`: the renderer never waits for it, so the calls made
/// before that, unavoidably, are unnamed), at most within `WINDOW_MS` of
/// its first line and never after one of its lines was named. Every named
/// line must name the database and family the workload used for that call:
/// per (db, cf, function) the named lines are at most the workload's calls,
/// and the calls left over are exactly the unnamed lines, function by
/// function.
fn check_names(lines: &[Named], counts: &Counts, rounds: u64, ctx: &str) {
    const WINDOW_MS: u64 = 250;
    let truth: BTreeMap<(String, String, String), u64> = counts
        .by_cf
        .as_ref()
        .expect("--cf-db2 prints by_cf")
        .iter()
        .map(|r| ((r.db.clone(), r.cf.clone(), r.func.clone()), r.count))
        .collect();
    let mut named: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    let mut unnamed: BTreeMap<String, u64> = BTreeMap::new();
    // Per key, as far as a line shows it: (db handle, family handle or
    // "default"/"*"): first line, last unnamed line, first named line.
    let mut keys: BTreeMap<(String, String), KeySeen> = BTreeMap::new();
    for l in lines {
        if l.resolved() {
            let k = (l.db.clone().unwrap(), l.cf.clone(), l.func.clone());
            *named.entry(k).or_default() += 1;
        } else {
            *unnamed.entry(l.func.clone()).or_default() += 1;
        }
        // A named line's family handle is not shown: only calls that span
        // families ("*") are one key whether named or not.
        if !l.resolved() || l.cf == "*" {
            let e = keys
                .entry((l.db_handle.clone(), l.cf.clone()))
                .or_insert((l.ms, None, None));
            if l.resolved() {
                e.2.get_or_insert(l.ms);
            } else {
                assert!(
                    e.2.is_none(),
                    "{ctx}: {} {} unnamed after it was named",
                    l.db_handle,
                    l.cf
                );
                e.1 = Some(l.ms);
            }
        }
    }
    for ((db, cf), (first, last_unnamed, _)) in &keys {
        if let Some(last) = last_unnamed {
            assert!(
                last - first <= WINDOW_MS,
                "{ctx}: {db} {cf} unnamed for {} ms",
                last - first
            );
        }
    }
    let mut left: BTreeMap<String, u64> = BTreeMap::new();
    for ((db, cf, func), n) in &named {
        let want = truth.get(&(db.clone(), cf.clone(), func.clone())).copied();
        assert!(
            want.is_some_and(|w| w >= *n),
            "{ctx}: {n} lines name {func} on {cf} of {db}; the workload made {want:?} such calls"
        );
    }
    for ((db, cf, func), w) in &truth {
        let n = named
            .get(&(db.clone(), cf.clone(), func.clone()))
            .copied()
            .unwrap_or(0);
        if *w > n {
            *left.entry(func.clone()).or_default() += w - n;
        }
    }
    assert_eq!(
        left, unnamed,
        "{ctx}: calls not named (left) = unnamed lines (right)"
    );
    let total: u64 = unnamed.values().sum();
    let longest = keys
        .values()
        .filter_map(|(first, last, _)| last.map(|l| l - first))
        .max()
        .unwrap_or(0);
    eprintln!(
        "{ctx}: {} slow lines, {total} printed before their names were known (each key for at most {longest} ms), {} keys",
        lines.len(),
        keys.len()
    );
    // Only the first round's: the workload makes each round in one burst
    // (~1,000 calls in a few ms) and `--rate` spaces the rounds ~330 ms
    // apart, so the later rounds must be named in full.
    assert!(
        total * rounds <= lines.len() as u64,
        "{ctx}: {total} of {} unnamed",
        lines.len()
    );
}

/// `--slow` lines name the database (its directory) and the column family
/// (its name) of each call, as the `by_cf` rows do: every line of a paced
/// run of both databases is checked against the workload's own calls.
#[test]
fn slow_json_lines_name_database_and_family() {
    require_bpf();
    let r = capture_db2_paced(
        "3",
        &["--rate", "3000"],
        &["--json", "--ops", "all", "--slow", "--threshold", "0"],
        false,
    );
    assert_eq!(r.status.code(), Some(0), "{:#?}", r.err);
    let fin = final_rocksdb(&r.out);
    let slow: Vec<schema::Slow> = lines(&r.out)
        .into_iter()
        .filter_map(|l| match l {
            Line::Slow(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(fin.lost_events, 0, "{:#?}", r.err);
    assert_eq!(fin.slow_events, slow.len() as u64);
    let calls: u64 = r.counts.calls.values().sum();
    assert_eq!(slow.len() as u64, calls, "threshold 0: one line per call");
    let named: Vec<Named> = slow
        .iter()
        .map(|s| {
            assert!(s.db.starts_with("0x"), "the handle stays: {s:?}");
            Named {
                ms: millis(&s.time),
                db_handle: s.db.clone(),
                db: s.db_name.clone(),
                cf: s.cf.clone(),
                func: s.function.clone(),
            }
        })
        .collect();
    assert!(named
        .iter()
        .any(|l| l.db.as_deref() == Some(r.db2.as_str()) && l.cf == "alpha"));
    check_names(&named, &r.counts, 3, "json");
}

/// The table form: the CF and DB columns at the end of each line.
#[test]
fn slow_table_lines_name_database_and_family() {
    require_bpf();
    let r = capture_db2_paced(
        "3",
        &["--rate", "3000"],
        &["--ops", "all", "--slow", "--threshold", "0"],
        false,
    );
    assert_eq!(r.status.code(), Some(0), "{:#?}", r.err);
    let header = r
        .out
        .iter()
        .find(|l| l.starts_with("TIME "))
        .unwrap_or_else(|| panic!("{:#?}", r.out));
    let (cf_col, db_col) = (
        header.find(" CF ").unwrap() + 1,
        header.find(" DB").unwrap() + 1,
    );
    let mut named = Vec::new();
    for l in &r.out {
        let cols: Vec<&str> = l.split_whitespace().collect();
        if cols.len() < 9 || !cols[0].contains(':') || !l.contains(" rocksdb_") {
            continue;
        }
        // Columns where the header puts them (the scratch paths and the
        // workload's thread have no spaces).
        let (cf, db) = (cols[cols.len() - 2], cols[cols.len() - 1]);
        assert_eq!(
            l.find(&format!(" {cf} ")).map(|i| i + 1),
            Some(cf_col),
            "{l}"
        );
        assert_eq!(l.rfind(db), Some(db_col), "{l}");
        // TIME TID THREAD OP FUNCTION ...
        let func = cols[4];
        named.push(Named {
            // Time of day is enough for a window of milliseconds.
            ms: millis(&format!("1970-01-01T{}Z", cols[0])),
            // Unconfirmed databases show their handle, confirmed ones
            // their path; a key is (database, family) as shown.
            db_handle: db.trim_start_matches("db@").to_string(),
            db: (!db.starts_with("db@0x")).then(|| db.to_string()),
            cf: cf.to_string(),
            func: func.to_string(),
        });
    }
    let calls: u64 = r.counts.calls.values().sum();
    assert_eq!(named.len() as u64, calls, "one line per call: {:#?}", r.err);
    check_names(&named, &r.counts, 3, "table");
}
