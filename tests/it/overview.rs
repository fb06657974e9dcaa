//! `overview` in a real terminal: tmux runs the real binary in a shell on
//! the bundled workload; keys switch tabs; the RocksDB tab shows the exact
//! GET count of the capture and the exact split per database and column
//! family; the header shows a fake node's RPC summary. Every way out (`q`,
//! SIGTERM, the node exiting under `--no-follow`, a panic) exits with its
//! documented code and gives the shell its terminal back (same stty
//! settings, canonical mode and echo on, alternate screen left, cursor
//! shown, a command typed next runs); after the clean ways out every BPF
//! program of the tool is gone.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;
use crate::rocksdb_cf::{truth, Split};
use serde_json::{json, Value};

/// Without a terminal on stdout: exit 2 and a pointer to the text views.
/// Checked before privileges, so it runs as any user.
#[test]
fn not_a_terminal_exits_2_and_points_to_rocksdb() {
    let (code, out, err) = run_tool(&["overview", "--pid", "1"]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("standard output is not one"), "{err}");
    assert!(err.contains("ckb-libbpf rocksdb --json"), "{err}");
}

/// A fake CKB node RPC on 127.0.0.1: `get_overview` with `Uint64` as hex
/// strings and `SysInfo` as plain numbers (as CKB 0.205+ writes them),
/// `get_tip_block_number` as hex. Serves until the test process ends.
fn fake_rpc() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            if r.read_exact(&mut body).is_err() {
                continue;
            }
            let req: Value = serde_json::from_slice(&body).unwrap_or_default();
            let result = match req["method"].as_str() {
                Some("get_overview") => json!({
                    "sys": {"cpu_usage": 7.25, "memory": 536_870_912u64, "virtual_memory": 1u64,
                            "global": {"total_memory": 1u64, "used_memory": 1u64, "global_cpu_usage": 1.0,
                                       "disks": [], "networks": []},
                            "disk_usage": {"total_written_bytes": 0, "written_bytes": 0,
                                           "total_read_bytes": 0, "read_bytes": 0}},
                    "mining": {"difficulty": "0x1", "hash_rate": "0x1"},
                    "pool": {"pending": "0x5", "proposed": "0x2", "orphan": "0x0", "committing": "0x0"},
                    "network": {"connected_peers": "0xb", "outbound_peers": "0x8",
                                "inbound_peers": "0x3", "peers": []},
                    "cells": {"estimate_live_cells_num": "0x1", "total_occupied_capacities": "0x1"},
                    "version": "0.205.0 (fake 2026-01-01)"
                }),
                Some("get_tip_block_number") => json!("0x3039"),
                _ => Value::Null,
            };
            let text = json!({"jsonrpc": "2.0", "id": req["id"], "result": result}).to_string();
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
                text.len()
            );
        }
    });
    url
}

struct Tmux {
    session: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(args)
            .output()
            .expect("tmux is installed (apt-get install tmux)");
        assert!(out.status.success(), "tmux {args:?}: {:?}", out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
    fn keys(&self, keys: &[&str]) {
        let mut a = vec!["send-keys", "-t", &self.session];
        a.extend_from_slice(keys);
        self.cmd(&a);
    }
    fn pane(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-t", &self.session])
    }
    /// Waits until the screen satisfies `ok`; returns it.
    fn wait(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let p = self.pane();
            if ok(&p) {
                return p;
            }
            assert!(Instant::now() < deadline, "no {what} on the screen:\n{p}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .status();
    }
}

/// The TOTAL column of an operation's row on the RocksDB tab.
fn total_of(pane: &str, op: &str) -> Option<u64> {
    let line = pane.lines().find(|l| {
        l.trim_start_matches(['│', ' '])
            .starts_with(&format!("{op} "))
    })?;
    let cells: Vec<&str> = line.trim_matches(['│', ' ']).split_whitespace().collect();
    cells.last()?.replace(',', "").parse().ok()
}

/// The tool's process: the child of the tmux shell.
fn child_of(pid: u32) -> Option<u32> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .next()
}

fn wait_file(p: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(s) = std::fs::read_to_string(p) {
            if s.ends_with('\n') {
                return s;
            }
        }
        assert!(Instant::now() < deadline, "{} never written", p.display());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `overview` run from a shell in a fresh tmux session. Its command line
/// writes, next to the exit code, the terminal's settings before and after
/// (`stty -g`, and `stty -a` after), so a test can check what the shell
/// got back.
struct InShell {
    t: Tmux,
    /// Declared after `t`: removed once the tmux session is gone.
    dir: Scratch,
}

impl InShell {
    /// `ENV ckb-libbpf overview ARGS` in a `w`x`h` terminal.
    fn overview(env: &str, args: &str, w: u16, h: u16) -> InShell {
        let dir = scratch_dir("tui");
        let t = Tmux {
            session: format!("ckb-libbpf-{:x}", rand_u64()),
        };
        t.cmd(&[
            "new-session",
            "-d",
            "-s",
            &t.session,
            "-x",
            &w.to_string(),
            "-y",
            &h.to_string(),
            "bash --norc --noprofile",
        ]);
        let f = |n: &str| dir.join(n).display().to_string();
        let line = format!(
            "stty -g > {}; {env} {} overview {args}; echo $? > {}; stty -g > {}; stty -a > {}",
            f("before"),
            tool().display(),
            f("rc"),
            f("after"),
            f("after-a"),
        );
        t.keys(&[&line, "Enter"]);
        InShell { t, dir }
    }

    /// Waits for the first interval on the screen; returns the tool's PID.
    fn started(&self) -> u32 {
        self.t
            .wait("first interval", |p| p.contains("alerts: learning"));
        let shell = self
            .t
            .cmd(&["display", "-p", "-t", &self.t.session, "#{pane_pid}"]);
        child_of(shell.trim().parse().unwrap()).expect("the tool runs in the tmux shell")
    }

    /// The tool exited with `code` and the shell has its terminal back:
    /// the settings it had before, canonical mode and echo on (not raw),
    /// the alternate screen left, the cursor shown, and a command typed at
    /// the prompt runs. Returns the screen after that command.
    fn assert_restored(&self, code: i32) -> String {
        let rc = wait_file(&self.dir.join("rc"));
        assert_eq!(rc.trim(), code.to_string(), "exit code\n{}", self.t.pane());
        wait_file(&self.dir.join("after-a"));
        let read = |n: &str| std::fs::read_to_string(self.dir.join(n)).unwrap();
        assert_eq!(read("before"), read("after"), "stty settings restored");
        let modes: Vec<String> = read("after-a")
            .split([' ', ';', '\n'])
            .map(str::to_string)
            .collect();
        for m in ["icanon", "echo", "isig", "icrnl", "opost"] {
            assert!(
                modes.iter().any(|x| x == m),
                "{m} off after exit: {modes:?}"
            );
        }
        let fmt = |f: &str| {
            self.t
                .cmd(&["display", "-p", "-t", &self.t.session, f])
                .trim()
                .to_string()
        };
        assert_eq!(fmt("#{alternate_on}"), "0", "alternate screen left");
        assert_eq!(fmt("#{cursor_flag}"), "1", "cursor shown");
        // The shell reads and runs a line: typed text echoes, Enter ends
        // the line, the command's own output follows.
        self.t.keys(&["echo restored-$((6*7))", "Enter"]);
        self.t.wait("the shell's answer", |p| {
            p.lines().any(|l| l.trim_end() == "restored-42")
        })
    }
}

/// The (database, family, class) split on the RocksDB tab: the rows of
/// its panel, (db, cf, op) -> TOTAL.
fn cf_split_of(pane: &str) -> Split {
    pane.lines()
        .skip_while(|l| !l.contains("Time by database and column family"))
        .skip(2)
        .take_while(|l| !l.starts_with('└'))
        .filter_map(|l| {
            let c: Vec<&str> = l.trim_matches(['│', ' ']).split_whitespace().collect();
            let n = c.get(3)?.replace(',', "").parse().ok()?;
            Some(((c[0].into(), c[1].into(), c[2].into()), n))
        })
        .collect()
}

#[test]
fn tabs_exact_gets_per_cf_split_rpc_header_and_q_restores_the_terminal() {
    require_bpf();
    let rpc = fake_rpc();
    let scratch = scratch_dir("tui-db2");
    // Not created here: the workload creates its second database.
    let db2 = scratch.join("db");
    let mut wl = Workload::start(&["--rounds", "3", "--cf-db2", &db2.display().to_string()]);
    // Tall enough that the split panel (a quarter of the tab) holds every
    // (db, cf, op) of the workload, wide enough for its database paths.
    let (w, h) = (170u16, 130u16);
    let sh = InShell::overview(
        "",
        &format!("--pid {} --ops all --interval 0.5 --rpc {rpc}", wl.pid),
        w,
        h,
    );
    let t = &sh.t;
    let tool_pid = sh.started();
    let progs = progs_held_by(tool_pid);
    assert!(rdb_progs(&progs) >= 2, "{}", t.pane());
    t.wait("RPC header", |p| {
        p.contains("v0.205.0")
            && p.contains("tip #12,345")
            && p.contains("peers 11 (8 out/3 in)")
            && p.contains("tx pool 5 pending/2 proposed")
            // The node's CPU from /proc/PID/stat, not the RPC's 7.25.
            && p.contains("node CPU ")
            && !p.contains("7.2%")
    });

    let counts = wl.run();
    let want: u64 = GETS
        .iter()
        .map(|f| counts.calls.get(*f).copied().unwrap_or(0))
        .sum();
    assert!(want > 0, "{counts:?}");

    // The RocksDB tab: the capture's GET total equals the workload's.
    t.keys(&["2"]);
    let p = t.wait("the exact GET total", |p| total_of(p, "GET") == Some(want));
    assert!(p.contains("RocksDB operations"), "{p}");
    // ... and so does every (database, family, class) of the split.
    let want_cf = truth(&counts);
    assert!(
        want_cf.len() + 3 <= (h as usize - 4) / 4,
        "{} rows do not fit the panel of a {h}-line terminal",
        want_cf.len()
    );
    let dbs: std::collections::BTreeSet<&str> = want_cf.keys().map(|k| k.0.as_str()).collect();
    assert_eq!(dbs.len(), 2, "{want_cf:#?}");
    let p = t.wait("the exact split per database and family", |p| {
        cf_split_of(p) == want_cf
    });
    assert!(
        p.contains(&format!("(since start; top {n} of {n})", n = want_cf.len())),
        "{p}"
    );
    assert!(!p.contains("unresolved handles"), "{p}");
    // It stays exact (nothing counted twice on later intervals).
    std::thread::sleep(Duration::from_millis(1200));
    let p = t.pane();
    assert_eq!(total_of(&p, "GET"), Some(want), "{p}");
    assert_eq!(cf_split_of(&p), want_cf, "{p}");

    // The other tabs, by number and by Tab.
    t.keys(&["3"]);
    t.wait("Network tab", |p| {
        p.contains("Peers:") || p.contains("net layer off")
    });
    t.keys(&["4"]);
    t.wait("Syscall tab", |p| p.contains("syscall layer off"));
    t.keys(&["Tab"]);
    t.wait("Overview tab", |p| {
        p.contains("P2P network") && p.contains("Syscalls: top 5")
    });
    t.keys(&["?"]);
    t.wait("help", |p| p.contains("q  Ctrl-C"));
    t.keys(&["Escape"]);

    // q: exit 0, the terminal as it was, the programs gone.
    t.keys(&["q"]);
    sh.assert_restored(0);
    assert!(progs_left(&progs).is_empty(), "BPF programs left behind");
    wl.finish();
}

/// The node exits: the screen says so and waits for it (following is the
/// default); SIGTERM then ends the tool with 0 and the terminal back.
#[test]
fn sigterm_while_waiting_for_the_node_restores_the_terminal() {
    require_bpf();
    let mut wl = Workload::start(&["--rounds", "1"]);
    let sh = InShell::overview("", &format!("--pid {} --interval 0.5", wl.pid), 150, 40);
    let tool_pid = sh.started();
    let progs = progs_held_by(tool_pid);
    wl.run();
    let pid = wl.pid;
    wl.finish();
    sh.t.wait("the node's exit", |p| {
        p.contains(&format!("node pid {pid} exited; waiting for"))
    });
    unsafe { libc::kill(tool_pid as i32, libc::SIGTERM) };
    sh.assert_restored(0);
    assert!(progs_left(&progs).is_empty(), "BPF programs left behind");
}

/// `--no-follow`: the node's exit ends the tool with 1, the terminal back
/// and the reason printed on it.
#[test]
fn node_exit_with_no_follow_exits_1_and_restores_the_terminal() {
    require_bpf();
    let mut wl = Workload::start(&["--rounds", "1"]);
    let sh = InShell::overview(
        "",
        &format!("--pid {} --interval 0.5 --no-follow", wl.pid),
        150,
        40,
    );
    let tool_pid = sh.started();
    let progs = progs_held_by(tool_pid);
    wl.run();
    let pid = wl.pid;
    wl.finish();
    let p = sh.assert_restored(1);
    assert!(
        p.contains(&format!("target process {pid} exited; all probes detached")),
        "the reason reaches the restored terminal:\n{p}"
    );
    assert!(progs_left(&progs).is_empty(), "BPF programs left behind");
}

/// A panic while drawing (`CKB_LIBBPF_FAULT=overview-panic`): the panic
/// hook gives the terminal back before the message is printed; Rust's exit
/// code for a panic, 101; the kernel frees the probes with the process.
#[test]
fn a_panic_while_drawing_restores_the_terminal() {
    require_bpf();
    let mut wl = Workload::start(&["--rounds", "1"]);
    let sh = InShell::overview(
        "CKB_LIBBPF_FAULT=overview-panic",
        &format!("--pid {} --interval 0.5", wl.pid),
        150,
        40,
    );
    let p = sh.assert_restored(101);
    assert!(
        p.contains("panicked") && p.contains("CKB_LIBBPF_FAULT=overview-panic"),
        "the panic message on the restored terminal:\n{p}"
    );
    wl.run();
    wl.finish();
}
