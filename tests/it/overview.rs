//! `overview` in a real terminal: tmux runs the real binary in a shell on
//! the bundled workload; keys switch tabs; the RocksDB tab shows the exact
//! GET count of the capture; the header shows a fake node's RPC summary;
//! `q` exits 0 and the shell gets its terminal back (same stty settings,
//! alternate screen left), with every BPF program gone.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;
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

#[test]
fn tabs_exact_gets_rpc_header_and_q_restores_the_terminal() {
    require_bpf();
    let dir = std::env::temp_dir().join(format!("ckb-libbpf-tui-{:x}", rand_u64()));
    std::fs::create_dir_all(&dir).unwrap();
    let rpc = fake_rpc();
    let mut wl = Workload::start(&["--rounds", "3"]);
    let t = Tmux {
        session: format!("ckb-libbpf-{:x}", rand_u64()),
    };
    t.cmd(&[
        "new-session",
        "-d",
        "-s",
        &t.session,
        "-x",
        "150",
        "-y",
        "50",
        "bash --norc --noprofile",
    ]);
    let (before, after, rc) = (dir.join("before"), dir.join("after"), dir.join("rc"));
    let line = format!(
        "stty -g > {}; {} overview --pid {} --ops all --interval 0.5 --rpc {rpc}; echo $? > {}; stty -g > {}",
        before.display(),
        tool().display(),
        wl.pid,
        rc.display(),
        after.display()
    );
    t.keys(&[&line, "Enter"]);

    // Attached: the first interval is on the screen (the attach note may
    // have scrolled out of the event log behind longer notes).
    let p = t.wait("first interval", |p| p.contains("alerts: learning"));
    let tool_pid = child_of(
        t.cmd(&["display", "-p", "-t", &t.session, "#{pane_pid}"])
            .trim()
            .parse()
            .unwrap(),
    )
    .expect("the tool runs in the tmux shell");
    let progs = progs_held_by(tool_pid);
    assert!(rdb_progs(&progs) >= 2, "{p}");
    t.wait("RPC header", |p| {
        p.contains("v0.205.0")
            && p.contains("tip #12,345")
            && p.contains("peers 11 (8 out/3 in)")
            && p.contains("tx pool 5 pending/2 proposed")
            && p.contains("CPU 7.2%")
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
    // It stays exact (nothing counted twice on later intervals).
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(total_of(&t.pane(), "GET"), Some(want), "{}", t.pane());

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
    assert_eq!(wait_file(&rc).trim(), "0", "{}", t.pane());
    wait_file(&after);
    assert_eq!(
        std::fs::read_to_string(&before).unwrap(),
        std::fs::read_to_string(&after).unwrap(),
        "stty settings restored"
    );
    assert_eq!(
        t.cmd(&["display", "-p", "-t", &t.session, "#{alternate_on}"])
            .trim(),
        "0",
        "alternate screen left"
    );
    assert!(progs_left(&progs).is_empty(), "BPF programs left behind");
    wl.finish();
    let _ = std::fs::remove_dir_all(&dir);
}
