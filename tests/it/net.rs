//! `ckb-libbpf net` against two loopback workload processes, in the real
//! kernel: every byte and connection the traced one made must be reported
//! exactly, and nothing of the other one.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use ckb_libbpf::schema::{NetEvent, NetReport};
use serde::{Deserialize, Serialize};

use crate::common::*;

fn net_workload_bin() -> PathBuf {
    example_bin("net_workload")
}

/// One net_workload process: listening on 127.0.0.1 and ::1.
struct Peer {
    child: Child,
    pid: u32,
    port4: u16,
    port6: u16,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// What one connection did, from the client's side: net_workload's reply
/// to `connect`, decoded exactly.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Done {
    local: String,
    remote: String,
    sent: u64,
    received: u64,
}

/// A private copy of net_workload: a restarted target is recognised by its
/// executable path, and parallel tests' workloads must not be adopted.
fn private_net_workload_copy() -> PrivateBin {
    PrivateBin::copy_of(&net_workload_bin(), "netbin")
}

impl Peer {
    fn start() -> Peer {
        Peer::start_bin(&net_workload_bin())
    }

    fn start_bin(bin: &std::path::Path) -> Peer {
        // A freshly copied binary can be briefly "text file busy": a test
        // running in parallel may fork while our copy's write descriptor is
        // still open, and its child holds that descriptor until it execs.
        let mut tries = 0;
        let mut child = loop {
            match Command::new(bin)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
            {
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 50 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                r => break r.expect("starting net_workload"),
            }
        };
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let w: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(w.first(), Some(&"READY"), "workload said {line:?}");
        Peer {
            pid: w[1].parse().unwrap(),
            port4: w[2].parse().unwrap(),
            port6: w[3].parse().unwrap(),
            child,
            stdin,
            stdout,
        }
    }

    fn v4(&self) -> String {
        format!("127.0.0.1:{}", self.port4)
    }

    fn v6(&self) -> String {
        format!("[::1]:{}", self.port6)
    }

    /// One connection to `addr` sending `send` bytes (plus the 16-byte
    /// header) and asking for `reply` bytes back.
    fn connect(&mut self, addr: &str, send: u64, reply: u64) -> Done {
        writeln!(self.stdin, "connect {addr} {send} {reply}").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        decode(&line)
    }

    fn quit(mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.child.wait();
    }

    /// SIGKILL, as a crashing node dies.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn ports(&self) -> [u16; 2] {
        [self.port4, self.port6]
    }
}

/// Waits until no TCP socket touching `ports` is still open or closing
/// (LISTEN and TIME_WAIT rows stay: a TIME_WAIT entry is no longer a full
/// socket, the kernel has destroyed it). A condition, not a timer.
fn wait_closed(ports: &[u16]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut busy = Vec::new();
        for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            for l in text.lines().skip(1) {
                let w: Vec<&str> = l.split_whitespace().collect();
                let port = |s: &str| u16::from_str_radix(s.rsplit(':').next().unwrap_or(""), 16);
                let (lp, rp, st) = (port(w[1]), port(w[2]), w[3]);
                let ours = [lp, rp]
                    .iter()
                    .any(|p| p.as_ref().is_ok_and(|p| ports.contains(p)));
                if ours && st != "0A" && st != "06" {
                    busy.push(l.to_string());
                }
            }
        }
        if busy.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "sockets still open: {busy:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A net interval report line (decoded exactly; any line must decode).
fn interval_report(l: &str) -> Option<NetReport> {
    match decode::<Line>(l) {
        Line::Report(Report::Net(r)) if !r.is_final => Some(r),
        _ => None,
    }
}

/// Waits until the interval reports count `n` closes in all (the kernel
/// counts a close where it sends its event: the event is in the ring).
fn wait_closes(tool: &mut Tool, n: u64) {
    let mut closes = 0;
    tool.wait_stdout(&format!("interval reports counting {n} closes"), |l| {
        if let Some(r) = interval_report(l) {
            closes = r.totals.closes;
        }
        closes >= n
    });
}

fn final_net(out: &[String]) -> NetReport {
    match final_report(out) {
        Report::Net(r) => r,
        r => panic!("not a net report: {r:?}"),
    }
}

fn net_events(out: &[String]) -> Vec<NetEvent> {
    lines(out)
        .into_iter()
        .filter_map(|l| match l {
            Line::Event(e) => Some(e),
            _ => None,
        })
        .collect()
}

/// The scripted exchange: `w` (traced) makes 2 outbound connections to `h`
/// (v4 and v6); `h` makes 3 inbound ones to `w`, and one to itself.
/// Returns, per peer as `w` sees it: (sent, received, direction).
fn script(w: &mut Peer, h: &mut Peer) -> BTreeMap<String, (u64, u64, &'static str)> {
    let mut want = BTreeMap::new();
    for (addr, send, reply) in [(h.v4(), 1000, 5000), (h.v6(), 3000, 700)] {
        let d = w.connect(&addr, send, reply);
        assert_eq!(d.received, reply);
        want.insert(d.remote, (d.sent, d.received, "out"));
    }
    for (addr, send, reply) in [(w.v4(), 20_000, 100), (w.v4(), 1, 65_536), (w.v6(), 777, 0)] {
        let d = h.connect(&addr, send, reply);
        // w received what h sent, and the reverse.
        want.insert(d.local, (d.received, d.sent, "in"));
    }
    // h talking to itself: another process, must not show up.
    let d = h.connect(&h.v4(), 500, 500);
    assert_eq!(d.received, 500);
    want
}

fn capture(backend: Option<&str>) {
    let mut w = Peer::start();
    let mut h = Peer::start();
    let pid = w.pid.to_string();
    let mut args = vec!["net", "--pid", &pid, "--json", "--interval", "0.2"];
    if let Some(b) = backend {
        args.extend(["--backend", b]);
    }
    let mut tool = Tool::start(&args);
    tool.wait_attached();
    let progs = progs_held_by(tool.child.id());
    let want = script(&mut w, &mut h);
    wait_closed(&[w.port4, w.port6, h.port4, h.port6]);
    wait_closes(&mut tool, 5);
    tool.signal(libc::SIGINT);
    let (status, out, err) = tool.wait();
    w.quit();
    h.quit();
    assert_eq!(status.code(), Some(0), "SIGINT ends with 0: {err:#?}");
    let fin = final_net(&out);
    assert_eq!(fin.pid, Some(pid.parse().unwrap()));
    if let Some(b) = backend {
        for f in ["send", "recv", "lifecycle", "close", "retransmit"] {
            assert_eq!(
                fin.backends.get(f).map(String::as_str),
                Some(b),
                "{:?}",
                fin.backends
            );
        }
    }

    // Per peer, exactly, both directions.
    let peers: BTreeMap<String, &ckb_libbpf::schema::net::Peer> =
        fin.peers.iter().map(|p| (p.peer.clone(), p)).collect();
    assert_eq!(
        peers.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "exactly the traced process's peers: {err:#?}"
    );
    for (peer, (tx, rx, dir)) in &want {
        let p = peers[peer];
        assert_eq!(p.tx_bytes, *tx, "{peer} sent: {p:?}");
        assert_eq!(p.rx_bytes, *rx, "{peer} received: {p:?}");
        assert_eq!(p.dir, *dir, "{peer}");
        assert_eq!((p.closed, p.live), (1, 0), "{p:?}");
    }
    // Totals: every byte of w's TCP traffic and nothing of h's.
    let t = &fin.totals;
    let tx: u64 = want.values().map(|v| v.0).sum();
    let rx: u64 = want.values().map(|v| v.1).sum();
    assert_eq!((t.tx_bytes, t.rx_bytes), (tx, rx), "{t:?}");
    assert_eq!(
        (
            t.connects,
            t.accepts,
            t.closes,
            t.connect_failures,
            t.live_conns
        ),
        (2, 3, 5, 0, 0),
        "{t:?}"
    );
    assert_eq!((fin.lost_events, fin.evicted_conns), (0, 0));

    // The event log: one connect or accept and one close per connection,
    // the close carrying that connection's bytes.
    let events = net_events(&out);
    let mut opened = HashSet::new();
    for e in &events {
        let (tx, rx, dir) = want
            .get(&e.peer)
            .unwrap_or_else(|| panic!("event for a foreign peer: {e:?}"));
        assert_eq!(e.pid.to_string(), pid);
        assert_eq!(e.layer, "net");
        match e.event.as_str() {
            "connect" => {
                assert_eq!(*dir, "out", "{e:?}");
                assert!(opened.insert(e.peer.clone()), "{e:?}");
                assert_eq!(e.duration_secs, None, "{e:?}");
            }
            "accept" => {
                assert_eq!(*dir, "in", "{e:?}");
                assert!(opened.insert(e.peer.clone()), "{e:?}");
                assert_eq!(e.duration_secs, None, "{e:?}");
            }
            "close" => {
                assert_eq!((e.tx_bytes, e.rx_bytes), (*tx, *rx), "{e:?}");
                assert!(e.duration_secs.is_some_and(|d| d >= 0.0), "{e:?}");
            }
            other => panic!("unexpected event {other}: {e:?}"),
        }
    }
    let count = |k: &str| events.iter().filter(|e| e.event == k).count();
    assert_eq!(
        (count("connect"), count("accept"), count("close")),
        (2, 3, 5)
    );

    // The interval reports carry the same cumulative totals.
    let last = reports(&out)
        .into_iter()
        .filter_map(|r| match r {
            Report::Net(r) if !r.is_final => Some(r),
            _ => None,
        })
        .next_back()
        .expect("interval reports");
    assert_eq!(
        (
            last.totals.tx_bytes,
            last.totals.rx_bytes,
            last.totals.closes
        ),
        (tx, rx, 5)
    );
    assert!(!progs.is_empty());
    assert_eq!(progs_left(&progs), Vec::<u64>::new(), "left after exit");
}

#[test]
fn exact_bytes_and_events_per_peer_tp_btf() {
    require_bpf();
    capture(None);
}

#[test]
fn exact_bytes_and_events_per_peer_classic_tracepoints() {
    require_bpf();
    capture(Some("tracepoint"));
}

/// The kprobe and fentry variants: what this kernel allows to test. Their
/// programs must pass the verifier wherever the kernel loads them; the
/// feature probe and `check` must say whether they work here; where they
/// do not, the net layer must pick a tracepoint flavour by itself and
/// refuse a forced kprobe/fentry with the environment exit code; where
/// they do, a forced capture must count as exactly as the tracepoints.
#[test]
fn kprobe_and_fentry_variants_as_far_as_this_kernel_allows() {
    require_bpf();
    use ckb_libbpf::probe::features::{probe, Attach};
    use ckb_libbpf::probe::net::{load_variant_only, Variant};
    libbpf_rs::set_print(None);
    // kprobe programs load on any kernel with BPF, kprobes compiled in or not.
    let n = load_variant_only(Variant::Kprobe).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        n, 8,
        "send and recv pairs, connect, accept, close, retransmit"
    );
    let fentry = probe(Attach::Fentry);
    match load_variant_only(Variant::Fentry) {
        Ok(n) => assert_eq!(n, 6),
        // Only acceptable where the kernel refuses every fentry program
        // before verification, as the feature probe shows.
        Err(e) => assert!(
            !fentry.ok && fentry.detail.contains("rejected"),
            "fentry programs failed to load ({e:#}) although fentry works here"
        ),
    }
    let kprobe = probe(Attach::Kprobe);
    if let Some(kp) = kernel_config_has("KPROBES") {
        assert_eq!(
            kprobe.ok, kp,
            "the probe agrees with the kernel config: {kprobe:?}"
        );
    }
    // `check` says the same, and the net layer's automatic choice is a
    // tracepoint flavour whenever kprobe and fentry are missing.
    let (code, c) = check_json(&["check", "--json"]);
    assert_eq!(code, 0, "{c:?}");
    assert_eq!(c.probes.get("kprobe"), Some(&kprobe.ok), "{c:?}");
    assert_eq!(c.probes.get("fentry"), Some(&fentry.ok), "{c:?}");
    if !kprobe.ok && !fentry.ok {
        let net = c.backends.net.as_deref();
        assert!(matches!(net, Some("tp_btf" | "tracepoint")), "{c:?}");
    }
    for (attach, ok, name) in [
        (Attach::Kprobe, kprobe.ok, "kprobe"),
        (Attach::Fentry, fentry.ok, "fentry"),
    ] {
        if ok {
            capture(Some(name));
        } else {
            // Forced, it is refused with the environment's exit code and why.
            let w = Peer::start();
            let (code, _, err) =
                run_tool(&["net", "1s", "--pid", &w.pid.to_string(), "--backend", name]);
            w.quit();
            assert_eq!(code, 3, "{name} forced where it cannot run: {err}");
            assert!(
                err.contains("no way to trace TCP sends and receives"),
                "{err}"
            );
            assert!(err.contains(attach.name()), "{err}");
            eprintln!(
                "{name}: no {name} support in this kernel ({}); tested: its programs against \
                 the verifier, the probe and `check` saying so, the fallback; only a kernel with \
                 {name} support can test attaching them and their exact counts",
                if name == "kprobe" {
                    &kprobe.detail
                } else {
                    &fentry.detail
                }
            );
        }
    }
}

#[test]
fn target_exit_ends_with_code_1_and_unusable_backends_are_named() {
    require_bpf();
    let w = Peer::start();
    let pid = w.pid.to_string();
    let ports = format!(
        "listening ports of the target: {}, {}",
        w.port4.min(w.port6),
        w.port4.max(w.port6)
    );
    let mut tool = Tool::start(&["net", "--pid", &pid, "--interval", "0.2", "--no-follow"]);
    tool.wait_attached();
    let progs = progs_held_by(tool.child.id());
    w.quit();
    let (status, out, err) = tool.wait();
    assert_eq!(status.code(), Some(1), "{err:#?}");
    assert!(
        err.iter()
            .any(|l| l.contains(&format!("target process {pid} exited"))),
        "{err:#?}"
    );
    assert!(
        out.iter().any(|l| l.starts_with("=== net summary")),
        "{out:#?}"
    );
    assert!(err.iter().any(|l| l.contains(&ports)), "{ports}: {err:#?}");
    // On a kernel without kprobes/fentry the notes say so.
    use ckb_libbpf::probe::features::{probe, Attach};
    for a in [Attach::Kprobe, Attach::Fentry] {
        if !probe(a).ok {
            assert!(
                err.iter()
                    .any(|l| l.contains(&format!("{} programs not attached", a.name()))),
                "{err:#?}"
            );
        }
    }
    assert_eq!(progs_left(&progs), Vec::<u64>::new(), "left after exit");
}

#[test]
fn bad_input_gets_a_message_and_exit_code() {
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["net", "--pid", "999999999"],
            2,
            "no process with PID 999999999",
        ),
        (
            &["net", "--name", "no-such-process-xyz"],
            2,
            "no running process named",
        ),
        (&["net", "--interval", "0"], 2, "positive"),
        (&["net", "soon"], 2, "try 30s"),
        (&["net", "--backend", "ebpf"], 2, "invalid value"),
    ];
    assert_bad_input(cases);
}

/// Sums per-peer expectations of several sessions: (sent, received,
/// direction, connections).
fn merge(
    sessions: &[BTreeMap<String, (u64, u64, &'static str)>],
) -> BTreeMap<String, (u64, u64, &'static str, u64)> {
    let mut all: BTreeMap<String, (u64, u64, &'static str, u64)> = BTreeMap::new();
    for want in sessions {
        for (peer, (tx, rx, dir)) in want {
            let e = all.entry(peer.clone()).or_insert((0, 0, dir, 0));
            assert_eq!(e.2, *dir, "{peer}");
            e.0 += tx;
            e.1 += rx;
            e.3 += 1;
        }
    }
    all
}

#[test]
fn restart_is_followed_and_both_processes_counted_exactly() {
    require_bpf();
    let bin = private_net_workload_copy();
    let mut first = Peer::start_bin(&bin);
    let mut h = Peer::start();
    let old_pid = first.pid;
    let pid = old_pid.to_string();
    let mut tool = Tool::start(&["net", "--pid", &pid, "--json", "--interval", "0.2"]);
    tool.wait_attached();
    let progs_first = progs_held_by(tool.child.id());
    let want1 = script(&mut first, &mut h);
    wait_closed(&[first.ports(), h.ports()].concat());
    first.kill();
    tool.wait_stderr(&format!(
        "target process {old_pid} exited; all probes detached; waiting for"
    ));

    // The node comes back from the same file: new PID, new listening ports.
    let mut second = Peer::start_bin(&bin);
    let new_pid = second.pid;
    tool.wait_stderr(&format!("net programs for pid {new_pid} "));
    let progs_second = progs_held_by(tool.child.id());
    let ports_line = tool.wait_stderr("listening ports of the target:");
    let want2 = script(&mut second, &mut h);
    wait_closed(&[second.ports(), h.ports()].concat());
    // The interval right after the restart carries the gap.
    tool.wait_stdout("an interval report with the gap", |l| {
        interval_report(l).is_some_and(|r| !r.gaps.is_empty())
    });
    wait_closes(&mut tool, 10);
    tool.signal(libc::SIGINT);
    let (status, out, err) = tool.wait();
    let second_ports = second.ports();
    second.quit();
    h.quit();
    assert_eq!(status.code(), Some(0), "SIGINT exits 0: {err:#?}");
    // The listener table was seeded from the new process.
    assert!(
        second_ports
            .iter()
            .all(|p| ports_line.contains(&p.to_string())),
        "{ports_line}"
    );

    let Report::Net(fin) = assert_one_restart(&out, Some(&*bin), old_pid, new_pid, false) else {
        panic!("not a net report");
    };

    // Per peer, both sessions: the outbound peers (h's listeners) were
    // talked to by both processes; the inbound ones are h's ephemeral ports.
    let want = merge(&[want1.clone(), want2.clone()]);
    let peers: BTreeMap<String, &ckb_libbpf::schema::net::Peer> =
        fin.peers.iter().map(|p| (p.peer.clone(), p)).collect();
    assert_eq!(
        peers.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "exactly the traced processes' peers: {err:#?}"
    );
    for (peer, (tx, rx, dir, n)) in &want {
        let p = peers[peer];
        assert_eq!(p.tx_bytes, *tx, "{peer} sent: {p:?}");
        assert_eq!(p.rx_bytes, *rx, "{peer} received: {p:?}");
        assert_eq!(p.dir, *dir, "{peer}");
        assert_eq!((p.closed as u64, p.live), (*n, 0), "{p:?}");
    }
    assert_eq!(
        want.values().filter(|v| v.3 == 2).count(),
        2,
        "h's two listeners"
    );
    let t = &fin.totals;
    let tx: u64 = want.values().map(|v| v.0).sum();
    let rx: u64 = want.values().map(|v| v.1).sum();
    assert_eq!((t.tx_bytes, t.rx_bytes), (tx, rx), "{t:?}");
    assert_eq!(
        (t.connects, t.accepts, t.closes, t.connect_failures),
        (4, 6, 10, 0),
        "{t:?}"
    );
    assert_eq!((fin.lost_events, fin.evicted_conns), (0, 0));
    // Each process's events carry its own PID.
    for e in net_events(&out) {
        let mine = if e.pid == old_pid { &want1 } else { &want2 };
        assert!(e.pid == old_pid || e.pid == new_pid, "{e:?}");
        assert!(mine.contains_key(&e.peer), "{e:?}");
    }

    // A new skeleton per session, and nothing of either left.
    assert!(!progs_first.is_empty());
    assert!(progs_first.iter().all(|p| !progs_second.contains(p)));
    let mut all = progs_first;
    all.extend(progs_second);
    assert_eq!(progs_left(&all), Vec::<u64>::new(), "left after exit");
}

#[test]
fn a_signal_while_waiting_for_the_restart_prints_the_summary_and_exits_0() {
    require_bpf();
    let bin = private_net_workload_copy();
    let w = Peer::start_bin(&bin);
    let pid = w.pid.to_string();
    let mut tool = Tool::start(&["net", "--pid", &pid, "--interval", "0.2"]);
    tool.wait_attached();
    let progs = progs_held_by(tool.child.id());
    w.quit();
    tool.wait_stderr("waiting for");
    tool.signal(libc::SIGTERM);
    let (status, out, err) = tool.wait();
    assert_eq!(status.code(), Some(0), "{err:#?}");
    assert!(
        out.iter().any(|l| l.contains(&format!(
            "target pid {pid} exited; waiting for {}",
            bin.display()
        ))),
        "{out:#?}"
    );
    assert!(
        out.iter().any(|l| l.starts_with("=== net summary")),
        "{out:#?}"
    );
    assert_eq!(progs_left(&progs), Vec::<u64>::new(), "left after exit");
}

#[test]
fn the_deadline_while_waiting_for_the_restart_ends_with_0() {
    require_bpf();
    let bin = private_net_workload_copy();
    let w = Peer::start_bin(&bin);
    let pid = w.pid.to_string();
    let mut tool = Tool::start(&["net", "5s", "--pid", &pid, "--json", "--interval", "0.2"]);
    tool.wait_attached();
    let progs = progs_held_by(tool.child.id());
    w.quit();
    let (status, out, err) = tool.wait();
    assert_eq!(
        status.code(),
        Some(0),
        "the capture ran its course: {err:#?}"
    );
    let exited: Vec<schema::TargetEvent> = lines(&out)
        .into_iter()
        .filter_map(|l| match l {
            Line::Target(e) => Some(e),
            _ => None,
        })
        .collect();
    match &exited[..] {
        [schema::TargetEvent::Exited(e)] => assert_eq!(e.pid.to_string(), pid),
        _ => panic!("one exit event: {exited:#?}"),
    }
    let fin = final_net(&out);
    assert_eq!(fin.gaps, [], "no restart, no gap");
    assert_eq!(progs_left(&progs), Vec::<u64>::new(), "left after exit");
}
