//! `ckb-libbpf export`: the exposition text checked by promtool, the HTTP
//! server, a real Prometheus scraping it, and the Grafana dashboard's
//! queries run against that Prometheus.
//!
//! promtool and prometheus come from Debian's `prometheus` package, unpacked
//! (not installed) by `make deps` into `target/tools/prometheus`; set
//! CKB_LIBBPF_PROMETHEUS_BIN to a directory holding both to use others.
//! Without them these tests fail, saying how to get them.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ckb_libbpf::analyze::{Anomaly, Cause};
use ckb_libbpf::engine::{AlertCount, Snapshot, Totals as EngineTotals};
use ckb_libbpf::error::{exit_code, remedy, Exit};
use ckb_libbpf::export::view::{
    AnomalyTally, BackgroundView, Builder, Health, LayerHealth, NetView, RocksdbView, SyscallView,
};
use ckb_libbpf::export::{render, Exporter, Format, MetricsView, Options, State};
use ckb_libbpf::model::background::row as bgrow;
use ckb_libbpf::model::net::{Endpoint, NetReport, PeerRow, Totals};
use ckb_libbpf::model::overhead::{Hits, Overhead, PerHit};
use ckb_libbpf::model::rocksdb::CfRow;
use ckb_libbpf::model::syscall::{build, syscall_nr, CallStats, Span};
use ckb_libbpf::model::{Background, BgKind, BgStats, OpStats, Report};
use serde::Deserialize;

use crate::common;

// ---------------------------------------------------------------------------
// A snapshot with every layer, from the model types the capture produces.

const OPS: [&str; 9] = [
    "GET",
    "PUT",
    "DELETE",
    "WRITE",
    "ITER_SEEK",
    "ITER_CREATE",
    "ITER_NEXT",
    "TXN_BEGIN",
    "TXN_COMMIT",
];

/// Cumulative figures after `step` intervals: every counter grows with it.
/// Returns the view and the exact GET call count (the ground truth).
fn full_view(step: u64) -> (MetricsView, u64) {
    figures(step, false)
}

/// `full_view` as the capture engine's snapshot gives it (through
/// `export::view::Builder`): no background histograms.
fn engine_view(step: u64) -> (MetricsView, u64) {
    figures(step, true)
}

fn figures(step: u64, via_engine: bool) -> (MetricsView, u64) {
    let stats: Vec<OpStats> = OPS
        .iter()
        .enumerate()
        .map(|(i, _)| {
            let mut s = OpStats::default();
            for k in 0..(50 * step * (i as u64 + 1)) {
                // 1 µs .. ~1 ms, spread over many buckets.
                let ns = 1_000 + (k * 7919) % 1_000_000;
                s.count += 1;
                s.total_ns += ns;
                s.hist.record(ns);
                s.bytes += 100;
                s.misses += u64::from(k % 5 == 0);
            }
            s
        })
        .collect();
    let get_count = stats[0].count;
    let row =
        |op: &str, s: &OpStats| s.row(op, 1.0, op == "GET", matches!(op, "GET" | "PUT" | "DELETE"));
    // The split per (database, column family): every class on one of
    // CKB's chain families, and one on a handle the capture could not name.
    let families = ["COLUMN_BLOCK_HEADER", "COLUMN_CELL", "cf@0x55d0c0ffee00"];
    let by_cf: Vec<CfRow> = OPS
        .iter()
        .zip(&stats)
        .enumerate()
        .map(|(i, (op, s))| CfRow {
            db: "/var/lib/ckb/data/db".into(),
            cf: Some(families[i % families.len()].into()),
            row: row(op, s),
        })
        .collect();
    let mut rocksdb = RocksdbView::from_ops(OPS.iter().copied().zip(stats.iter()));
    rocksdb.cfs = RocksdbView::from_report(&Report {
        by_cf: by_cf.clone(),
        ..Default::default()
    })
    .cfs;

    let mut bg = BTreeMap::new();
    let mut running = BTreeMap::new();
    for (i, k) in BgKind::ALL.iter().enumerate() {
        let mut s = BgStats::default();
        for j in 0..(step * (i as u64 + 1)) {
            let ns = 2_000_000 * (j + 1);
            s.started += 1;
            s.finished += 1;
            s.total_ns += ns;
            s.hist.record(ns);
        }
        s.started += 1;
        bg.insert(*k, s);
        running.insert(*k, 1);
    }
    let background = BackgroundView::from_stats(&bg, &running, 3_000_000 * step);

    let mut tally = AnomalyTally::new(OPS);
    if step >= 2 {
        tally.observe(&[Anomaly {
            kind: "latency_spike",
            operation: "GET".into(),
            current_avg_us: 50.0,
            baseline_avg_us: 5.0,
            p99_us: None,
            baseline_p99_us: None,
            multiplier: 10.0,
            cause: Cause::Compaction,
            evidence: BTreeMap::new(),
            next_step: String::new(),
            onset: step == 2,
            window_secs: 10.0,
            unchecked: Vec::new(),
        }]);
    }

    let peer = |ip: &str, port: u16, n: u64| PeerRow {
        peer: Endpoint {
            addr: ip.parse().expect("test address"),
            port,
        },
        dir: "out".into(),
        live: 1,
        closed: 0,
        age_secs: Some(1.0),
        tx_bytes: n * step,
        rx_bytes: 2 * n * step,
        tx_per_sec: 0.0,
        rx_per_sec: 0.0,
        retrans: step,
        srtt_us: Some(100),
    };
    let net = NetReport {
        totals: Totals {
            tx_bytes: 10_000 * step,
            rx_bytes: 20_000 * step,
            connects: 3 * step,
            accepts: 2 * step,
            closes: 4 * step,
            connect_failures: step,
            retrans: 5 * step,
            ..Default::default()
        },
        live_conns: 3,
        peers: vec![
            peer("10.0.0.1", 8115, 1000),
            peer("10.0.0.1", 40000, 500),
            peer("10.0.0.2", 8115, 300),
        ],
        ..Default::default()
    };

    let nr = |n: &str| syscall_nr(n).expect("known syscall");
    let cs = |count: u64, ns: u64, bytes: u64| {
        let mut s = CallStats::default();
        for _ in 0..count {
            s.op.count += 1;
            s.op.total_ns += ns;
            s.op.hist.record(ns);
        }
        s.op.bytes = bytes;
        s.positive = count;
        s
    };
    let mut cells = HashMap::new();
    cells.insert(
        ("rocksdb:low".to_string(), nr("pwrite64")),
        cs(40 * step, 10_000, 40 * step * 4096),
    );
    cells.insert(
        ("rocksdb:high".to_string(), nr("fdatasync")),
        cs(3 * step, 2_000_000, 0),
    );
    cells.insert(
        ("ChainService".to_string(), nr("pread64")),
        cs(20 * step, 5_000, 20 * step * 512),
    );
    cells.insert(
        ("GlobalRt-".to_string(), nr("futex")),
        cs(30 * step, 50_000, 0),
    );
    cells.insert(
        ("GlobalRt-".to_string(), nr("sendto")),
        cs(10 * step, 3_000, 10 * step * 100),
    );
    cells.insert(("ckb".to_string(), nr("uretprobe")), cs(9 * step, 400, 0));
    let sys = build(
        &cells,
        &Span {
            secs: 1.0,
            main: "ckb".into(),
            threads: Some(vec![
                "ckb".into(),
                "ChainService".into(),
                "GlobalRt-1".into(),
                "rocksdb:low0".into(),
                "rocksdb:high0".into(),
            ]),
            ..Default::default()
        },
    );

    let mut health = Health {
        layers: ["rocksdb", "net", "syscall"]
            .iter()
            .map(|l| LayerHealth {
                layer: l,
                lost_events: step,
                dropped: 0,
                attached_programs: Some(4),
            })
            .collect(),
        probe_syscalls: sys.probe_cost.clone(),
        target_restarts: u64::from(step >= 3),
        target_up: true,
        elapsed_secs: step as f64,
        timestamp_secs: 1_764_400_000.0 + step as f64,
        ..Default::default()
    };
    health.set_probe_cost(
        Hits {
            emulated: 1000 * step,
            single_stepped: 10 * step,
        },
        &PerHit::default(),
    );

    let view = MetricsView {
        rocksdb: Some(rocksdb),
        background: Some(background),
        anomalies: Some(tally.view()),
        net: Some(NetView::from_report(&net)),
        syscall: Some(SyscallView::from_report(&sys)),
        health,
    };
    if !via_engine {
        return (view, get_count);
    }
    // The same figures as the capture engine hands them: whole-capture
    // totals in the layer reports, read by export::view::Builder.
    let report = Report {
        rows: OPS.iter().zip(&stats).map(|(op, s)| row(op, s)).collect(),
        by_cf,
        lost_events: step,
        elapsed_secs: step as f64,
        overhead: Some(Overhead {
            est_pct_core: 0.0,
            always_pct_core: 0.0,
            per_hit: PerHit::default(),
            attached_pct: 100.0,
            budget_pct: None,
            hits: Hits {
                emulated: 1000 * step,
                single_stepped: 10 * step,
            },
        }),
        ..Default::default()
    };
    let background = Background {
        rows: bg
            .iter()
            .map(|(k, s)| bgrow(*k, s, running[k], &[]))
            .collect(),
        stalled_ns: 3_000_000 * step,
        ..Default::default()
    };
    let snap = Snapshot {
        alerts: Some(AlertCount::default()),
        net: Some(net.clone()),
        totals: Some(Box::new(EngineTotals {
            rocksdb: Some(report),
            background: Some(background),
            net: Some(net.totals),
            syscall: Some(sys),
            restarts: u64::from(step >= 3),
        })),
        ..Default::default()
    };
    let mut b = Builder::default();
    for layer in ["rocksdb", "background", "net", "syscall"] {
        b.attached(layer, 4);
    }
    let mut v = b.view(&snap).expect("a snapshot with totals");
    // Alerts raised count across snapshots: the tally above saw them all.
    v.anomalies = view.anomalies;
    (v, get_count)
}

fn all_options() -> Options {
    Options {
        peers: Some(50),
        ..Options::default()
    }
}

// ---------------------------------------------------------------------------
// promtool and prometheus from Debian's package.

fn prometheus_bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CKB_LIBBPF_PROMETHEUS_BIN") {
        return PathBuf::from(d);
    }
    // target/<profile>/ckb-libbpf -> target/tools/prometheus/usr/bin
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_ckb-libbpf"));
    exe.parent()
        .and_then(Path::parent)
        .map(|t| t.join("tools/prometheus/usr/bin"))
        .unwrap_or_default()
}

fn prom_tool(name: &str) -> PathBuf {
    let p = prometheus_bin_dir().join(name);
    assert!(
        p.is_file(),
        "{} not found: run `make deps` (it unpacks Debian's prometheus package into target/tools/prometheus), \
         or set CKB_LIBBPF_PROMETHEUS_BIN to a directory holding promtool and prometheus",
        p.display()
    );
    p
}

fn promtool_check(text: &str) -> (bool, String) {
    let mut child = Command::new(prom_tool("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feeding promtool");
    let out = child.wait_with_output().expect("promtool output");
    let mut msg = String::from_utf8_lossy(&out.stdout).to_string();
    msg.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), msg)
}

#[test]
fn promtool_finds_nothing_to_lint() {
    let (view, _) = full_view(3);
    let text = render(&view, Format::Text, &all_options(), &mut State::default());
    for family in [
        "ckb_libbpf_rocksdb_op_duration_seconds",
        "ckb_libbpf_rocksdb_cf_calls_total",
        "ckb_libbpf_rocksdb_cf_duration_seconds_total",
        "ckb_libbpf_rocksdb_cf_folded_pairs",
        "ckb_libbpf_rocksdb_write_stall_seconds_total",
        "ckb_libbpf_anomalies_total",
        "ckb_libbpf_net_peer_sent_bytes_total",
        "ckb_libbpf_syscall_seconds_total",
        "ckb_libbpf_syscall_fsync_duration_seconds",
        "ckb_libbpf_probe_cost_seconds_total",
        "ckb_libbpf_build_info",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} missing"
        );
    }
    let (ok, msg) = promtool_check(&text);
    assert!(ok && msg.trim().is_empty(), "promtool: {msg}");

    // The check has teeth: a counter without _total is a finding.
    let bad = text.replace(
        "ckb_libbpf_target_restarts_total",
        "ckb_libbpf_target_restarts",
    );
    let (ok, msg) = promtool_check(&bad);
    assert!(!ok && msg.contains("_total"), "promtool missed it: {msg}");
}

#[test]
fn exposition_has_no_unbounded_labels() {
    let (view, _) = full_view(2);
    let text = render(&view, Format::Text, &all_options(), &mut State::default());
    for bad in ["pid=", "tid=", "port=", ":8115", ":40000", "@0x"] {
        assert!(!text.contains(bad), "{bad} in the exposition");
    }
    // A handle the capture could not name is "unresolved", not its pointer.
    assert!(text.contains(
        "ckb_libbpf_rocksdb_cf_calls_total{db=\"/var/lib/ckb/data/db\",cf=\"unresolved\",op=\"DELETE\"}"
    ));
    // Two connections to one peer are one series.
    assert!(text.contains("ckb_libbpf_net_peer_sent_bytes_total{peer=\"10.0.0.1\"} 3000\n"));
}

// ---------------------------------------------------------------------------
// HTTP

struct Response {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

fn http(addr: SocketAddr, request: &str) -> Response {
    let mut s = TcpStream::connect(addr).expect("connecting to the exporter");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    s.write_all(request.as_bytes()).expect("sending");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("reading the response");
    let raw = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a response head");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_string(),
    }
}

fn get(addr: SocketAddr, path: &str, accept: Option<&str>) -> Response {
    let accept = accept
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\n{accept}Connection: close\r\n\r\n"),
    )
}

fn local_exporter() -> Exporter {
    Exporter::start("127.0.0.1:0".parse().expect("address"), all_options())
        .expect("starting the exporter")
}

#[test]
fn serves_metrics_with_the_right_content_type_and_404_elsewhere() {
    let ex = local_exporter();
    let a = ex.local_addr();
    let (view, get_count) = full_view(1);
    ex.publish(&view);

    let r = get(a, "/metrics", None);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert_eq!(r.headers["content-length"], r.body.len().to_string());
    assert!(r.body.contains(&format!(
        "ckb_libbpf_rocksdb_op_duration_seconds_count{{op=\"GET\"}} {get_count}\n"
    )));
    assert_eq!(
        get(a, "/", None).body,
        r.body,
        "/ serves the same, as CKB does"
    );
    assert_eq!(get(a, "/metrics?foo=1", None).status, 200);

    let om = get(
        a,
        "/metrics",
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
    );
    assert_eq!(
        om.headers["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(om.body.ends_with("# EOF\n"));

    for p in ["/metricsx", "/favicon.ico", "/api"] {
        assert_eq!(get(a, p, None).status, 404, "{p}");
    }
    let post = http(a, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(post.status, 405);
    assert_eq!(post.headers["allow"], "GET, HEAD");
    let head = http(a, "HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    assert_eq!(http(a, "nonsense\r\n\r\n").status, 400);

    // Each publish replaces what scrapes see.
    let (v2, c2) = full_view(2);
    ex.publish(&v2);
    assert!(get(a, "/metrics", None).body.contains(&format!(
        "ckb_libbpf_rocksdb_op_duration_seconds_count{{op=\"GET\"}} {c2}\n"
    )));
    ex.stop();
    assert!(
        TcpStream::connect(a).is_err(),
        "stopped exporter still listens"
    );
}

#[test]
fn concurrent_scrapes_never_block_publishing() {
    let ex = Arc::new(local_exporter());
    let a = ex.local_addr();
    let views: Vec<MetricsView> = (1..=4).map(|s| full_view(s).0).collect();
    ex.publish(&views[0]);

    // A client that connects and sends nothing holds one worker until
    // its timeout; the others keep serving.
    let _idle = TcpStream::connect(a).expect("idle client");

    let done = Arc::new(AtomicBool::new(false));
    let publisher = {
        let (ex, done) = (ex.clone(), done.clone());
        std::thread::spawn(move || {
            let mut worst = Duration::ZERO;
            let mut n = 0u64;
            while !done.load(Ordering::Relaxed) {
                let t = Instant::now();
                ex.publish(&views[(n % 4) as usize]);
                worst = worst.max(t.elapsed());
                n += 1;
            }
            (worst, n)
        })
    };
    let scrapers: Vec<_> = (0..6)
        .map(|_| {
            std::thread::spawn(move || {
                for _ in 0..40 {
                    let r = get(a, "/metrics", None);
                    assert_eq!(r.status, 200);
                    assert_eq!(r.headers["content-length"], r.body.len().to_string());
                    // Complete: the last family is there, whole. (The
                    // views cycle 1..4, so the holds count goes up.)
                    let last = r.body.lines().last().unwrap_or("");
                    assert!(
                        r.body.ends_with('\n')
                            && last.starts_with("ckb_libbpf_monotonic_holds_total "),
                        "a complete page: ends with {last:?}"
                    );
                }
            })
        })
        .collect();
    let t = Instant::now();
    for s in scrapers {
        s.join().expect("scraper");
    }
    let scrape_time = t.elapsed();
    done.store(true, Ordering::Relaxed);
    let (worst, published) = publisher.join().expect("publisher");
    let page = get(a, "/metrics", None).body.len();
    let om = get(a, "/metrics", Some("application/openmetrics-text"))
        .body
        .len();
    eprintln!(
        "240 scrapes in {scrape_time:?} beside {published} publishes (slowest publish {worst:?}); \
         page {page} bytes (OpenMetrics {om})"
    );
    assert!(ex.scrapes() >= 240);
    assert!(
        scrape_time < Duration::from_secs(20),
        "scrapes took {scrape_time:?}"
    );
    // Rendering takes a few ms; a publish stuck behind scrapes would take
    // as long as they do.
    assert!(worst < Duration::from_millis(500), "publish took {worst:?}");
}

#[test]
fn port_in_use_and_bad_listen_values_say_what_to_do() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = taken.local_addr().expect("address");
    let e = match Exporter::start(addr, Options::default()) {
        Ok(_) => panic!("bound a port already taken"),
        Err(e) => e,
    };
    assert_eq!(exit_code(&e), Exit::Usage);
    assert!(
        e.to_string().contains(&format!("cannot listen on {addr}")),
        "{e}"
    );
    assert!(remedy(&e).expect("a remedy").contains("--listen"));

    let e = match Exporter::start("192.0.2.1:9190".parse().expect("addr"), Options::default()) {
        Ok(_) => panic!("bound an address this machine does not have"),
        Err(e) => e,
    };
    assert_eq!(exit_code(&e), Exit::Usage);
    assert!(remedy(&e).expect("a remedy").contains("127.0.0.1"));
}

// ---------------------------------------------------------------------------
// A real Prometheus server.

/// A Prometheus server scraping one target every second, on loopback, with
/// its data in a fresh directory. Killed on drop.
pub struct Prometheus {
    child: Child,
    addr: SocketAddr,
    /// Removed after `drop` has waited for the server.
    dir: common::Scratch,
}

#[derive(Debug, Deserialize)]
struct ApiResponse {
    status: String,
    data: Option<ApiData>,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiData {
    result_type: String,
    result: Vec<ApiSample>,
}

#[derive(Debug, Deserialize)]
struct ApiSample {
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

/// One sample of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` (job name -> (address,
    /// metrics path)) every second; returns once it is ready.
    pub fn start(targets: &[(&str, SocketAddr, &str)]) -> Prometheus {
        let dir = common::scratch_dir("prom");
        let mut cfg = String::from(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\nscrape_configs:\n",
        );
        for (job, addr, path) in targets {
            cfg.push_str(&format!(
                "  - job_name: {job}\n    metrics_path: {path}\n    static_configs:\n      - targets: ['{addr}']\n"
            ));
        }
        std::fs::write(dir.join("prometheus.yml"), cfg).expect("prometheus.yml");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port())
            .parse()
            .expect("address");
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("log file");
        let child = Command::new(prom_tool("prometheus"))
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting prometheus");
        let p = Prometheus { child, addr, dir };
        let t = Instant::now();
        loop {
            if TcpStream::connect(p.addr).is_ok() && p.get("/-/ready").0 == 200 {
                return p;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "prometheus not ready after 30 s; log: {}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    fn get(&self, path_and_query: &str) -> (u16, String) {
        let Ok(mut s) = TcpStream::connect(self.addr) else {
            return (0, String::new());
        };
        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        let req = format!(
            "GET {path_and_query} HTTP/1.0\r\nHost: {}\r\n\r\n",
            self.addr
        );
        if s.write_all(req.as_bytes()).is_err() {
            return (0, String::new());
        }
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        let raw = String::from_utf8_lossy(&raw).to_string();
        let Some((head, body)) = raw.split_once("\r\n\r\n") else {
            return (0, raw);
        };
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (status, body.to_string())
    }

    /// Evaluates an instant query; panics on a PromQL error.
    pub fn query(&self, promql: &str) -> Vec<Sample> {
        let (status, body) = self.get(&format!("/api/v1/query?query={}", url_encode(promql)));
        let r: ApiResponse = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("query `{promql}`: HTTP {status}, {e}: {body}"));
        assert_eq!(r.status, "success", "query `{promql}`: {:?}", r.error);
        let data = r.data.expect("data");
        assert!(
            data.result_type == "vector" || data.result_type == "scalar",
            "query `{promql}`: {} result",
            data.result_type
        );
        data.result
            .into_iter()
            .map(|s| Sample {
                labels: s.metric,
                value: s.value.1.parse().expect("a number"),
            })
            .collect()
    }

    /// Polls `promql` until `ok` holds for its result, or panics after
    /// `timeout` with the last result.
    pub fn wait_for(
        &self,
        promql: &str,
        timeout: Duration,
        ok: impl Fn(&[Sample]) -> bool,
    ) -> Vec<Sample> {
        let t = Instant::now();
        loop {
            let r = self.query(promql);
            if ok(&r) {
                return r;
            }
            assert!(
                t.elapsed() < timeout,
                "`{promql}` after {timeout:?}: {r:?}\nprometheus log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Whether the last scrape of `job` succeeded (`up`).
    pub fn target_up(&self, job: &str) -> bool {
        self.query(&format!("up{{job=\"{job}\"}}"))
            .first()
            .is_some_and(|s| s.value == 1.0)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn value_of(r: &[Sample]) -> Option<f64> {
    (r.len() == 1).then(|| r[0].value)
}

#[test]
fn real_prometheus_reads_exact_counts() {
    let ex = local_exporter();
    let (v1, get1) = engine_view(1);
    ex.publish(&v1);
    let prom = Prometheus::start(&[("ckb-libbpf", ex.local_addr(), "/metrics")]);
    let q = "ckb_libbpf_rocksdb_op_duration_seconds_count{job=\"ckb-libbpf\",op=\"GET\"}";
    prom.wait_for(q, Duration::from_secs(20), |r| {
        value_of(r) == Some(get1 as f64)
    });
    assert!(prom.target_up("ckb-libbpf"));

    let (v2, get2) = engine_view(2);
    ex.publish(&v2);
    prom.wait_for(q, Duration::from_secs(20), |r| {
        value_of(r) == Some(get2 as f64)
    });
    // The histogram as Prometheus stored it: +Inf == count, and the sum in
    // seconds as published.
    let inf = prom.query("ckb_libbpf_rocksdb_op_duration_seconds_bucket{op=\"GET\",le=\"+Inf\"}");
    assert_eq!(value_of(&inf), Some(get2 as f64));
    let p99 = prom.query(
        "histogram_quantile(0.99, ckb_libbpf_rocksdb_op_duration_seconds_bucket{op=\"GET\"})",
    );
    let p99 = value_of(&p99).expect("a p99");
    assert!(
        p99 > 0.0005 && p99 < 0.0011,
        "p99 {p99} s (values 1 µs..1 ms)"
    );
    // Prometheus asked for OpenMetrics and parsed it (a parse error would
    // have made the target down and the values absent): the info family
    // arrived as ckb_libbpf_build_info.
    assert!(prom.target_up("ckb-libbpf"));
    assert!(
        ex.scrapes_in(Format::OpenMetrics) >= 2,
        "Prometheus scraped OpenMetrics"
    );
    assert_eq!(ex.scrapes_in(Format::Text), 0);
    let took = prom.query("scrape_duration_seconds{job=\"ckb-libbpf\"}");
    let size = prom.query("scrape_samples_scraped{job=\"ckb-libbpf\"}");
    eprintln!(
        "Prometheus: scrape took {:?} s, {:?} samples",
        value_of(&took),
        value_of(&size)
    );
    let bi = prom.query("ckb_libbpf_build_info");
    assert_eq!(bi[0].labels["version"], env!("CARGO_PKG_VERSION"));
}

// ---------------------------------------------------------------------------
// The Grafana dashboard.

const DASHBOARD: &str = "dashboards/ckb-libbpf.json";

/// Every panel's PromQL (rows' nested panels included), with the
/// dashboard's variables replaced by what a default Grafana would send:
/// (panel title, query).
pub fn dashboard_queries() -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DASHBOARD);
    let text = std::fs::read_to_string(&path).expect("reading the dashboard");
    let d: serde_json::Value = serde_json::from_str(&text).expect("dashboard JSON");
    fn walk(panels: &serde_json::Value, out: &mut Vec<(String, String)>) {
        for p in panels.as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or("").to_string();
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(e) = t["expr"].as_str() {
                    out.push((title.clone(), e.to_string()));
                }
            }
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&d["panels"], &mut out);
    out.into_iter().map(|(t, e)| (t, substitute(&e))).collect()
}

/// Grafana's built-in and the dashboard's variables, as a default view of
/// the dashboard would fill them.
fn substitute(expr: &str) -> String {
    expr.replace("$__rate_interval", "30s")
        .replace("$__interval", "5s")
        .replace("$__range", "5m")
        .replace("${job}", "ckb-libbpf")
        .replace("$job", "ckb-libbpf")
        .replace("${ckb_job}", "ckb")
        .replace("$ckb_job", "ckb")
        .replace("${op}", ".*")
        .replace("$op", ".*")
        .replace("${db}", ".*")
        .replace("$db", ".*")
}

/// A query about CKB's own metrics (not ours): data only with a node.
fn is_ckb_query(expr: &str) -> bool {
    !expr.contains("ckb_libbpf_")
}

#[test]
fn dashboard_queries_name_only_metrics_the_exporter_has() {
    let qs = dashboard_queries();
    assert!(qs.len() >= 20, "only {} queries", qs.len());
    let (view, _) = engine_view(3);
    let text = render(&view, Format::Text, &all_options(), &mut State::default());
    for (title, q) in &qs {
        assert!(!q.contains('$'), "{title}: unreplaced variable in {q}");
        let mut rest = q.as_str();
        while let Some(i) = rest.find("ckb_libbpf_") {
            let name: String = rest[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            assert!(
                text.lines()
                    .any(|l| l.starts_with(&format!("{name}{{"))
                        || l.starts_with(&format!("{name} "))),
                "{title}: {name} is not exported"
            );
            rest = &rest[i + name.len()..];
        }
    }
}

/// Every ckb-libbpf panel returns data from a Prometheus that scraped the
/// exporter. Here the exporter publishes synthetic snapshots that grow each
/// second; the end-to-end test runs the same check against a real capture.
#[test]
fn dashboard_queries_return_data_from_prometheus() {
    let ex = Arc::new(local_exporter());
    ex.publish(&engine_view(1).0);
    let prom = Prometheus::start(&[("ckb-libbpf", ex.local_addr(), "/metrics")]);
    let done = Arc::new(AtomicBool::new(false));
    let feeder = {
        let (ex, done) = (ex.clone(), done.clone());
        std::thread::spawn(move || {
            let mut step = 1;
            while !done.load(Ordering::Relaxed) {
                step += 1;
                ex.publish(&engine_view(step).0);
                std::thread::sleep(Duration::from_millis(500));
            }
        })
    };
    // rate() needs two samples of a growing counter in its window.
    prom.wait_for(
        "rate(ckb_libbpf_rocksdb_op_duration_seconds_count{op=\"GET\"}[30s])",
        Duration::from_secs(30),
        |r| r.first().is_some_and(|s| s.value > 0.0),
    );
    let mut empty = Vec::new();
    let mut skipped = 0;
    for (title, q) in dashboard_queries() {
        // query() fails on a PromQL error: CKB's queries are checked for
        // syntax here, for data only beside a node.
        let r = prom.query(&q);
        if is_ckb_query(&q) {
            skipped += 1;
            continue;
        }
        if r.is_empty() {
            empty.push(format!("{title}: {q}"));
        }
    }
    done.store(true, Ordering::Relaxed);
    let _ = feeder.join();
    eprintln!(
        "{skipped} queries on CKB's own metrics checked for syntax only (data needs a node: make e2e-ckb)"
    );
    assert!(
        empty.is_empty(),
        "panels without data:\n{}",
        empty.join("\n")
    );
}

// ---------------------------------------------------------------------------
// End to end, once `ckb-libbpf export` exists: the exporter traces the
// bundled workload, a real Prometheus scrapes it, its counts equal the
// workload's ground truth, and every dashboard panel has data.

/// `ckb-libbpf export ARGS --listen 127.0.0.1:<free port>` as a child
/// process, ready once /metrics answers 200. Killed on drop.
pub struct ExportProcess {
    pub child: Child,
    pub addr: SocketAddr,
}

impl ExportProcess {
    /// Waits until the RocksDB layer's programs are attached (the page says
    /// so), so calls made from now on are counted.
    pub fn wait_rocksdb_attached(&self) {
        let t = Instant::now();
        let series = "ckb_libbpf_attached_programs{layer=\"rocksdb\"}";
        loop {
            let r = get(self.addr, "/metrics", None);
            if sample(&r.body, series).is_some_and(|n| n > 0.0) {
                return;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "the RocksDB layer never attached:\n{}",
                r.body
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn spawn(args: &[&str]) -> ExportProcess {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port())
            .parse()
            .expect("address");
        let child = Command::new(common::tool())
            .arg("export")
            .args(args)
            .arg("--listen")
            .arg(addr.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting ckb-libbpf export");
        let mut p = ExportProcess { child, addr };
        let t = Instant::now();
        loop {
            if let Ok(Some(st)) = p.child.try_wait() {
                panic!("ckb-libbpf export exited early: {st}");
            }
            if TcpStream::connect(addr).is_ok() && get(addr, "/metrics", None).status == 200 {
                return p;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "ckb-libbpf export not serving on {addr} after 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM; returns the exit code.
    pub fn stop(mut self) -> Option<i32> {
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait().ok().and_then(|s| s.code())
    }
}

impl Drop for ExportProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The workload's calls per operation class (its counts are per C
/// function; the class of each comes from the tool's function table).
pub fn calls_per_class(counts: &common::Counts) -> BTreeMap<String, u64> {
    let mut out: BTreeMap<String, u64> = OPS.iter().map(|o| (o.to_string(), 0)).collect();
    for (f, n) in &counts.calls {
        let def = ckb_libbpf::model::rocksdb::FUNCS
            .iter()
            .find(|d| d.name == f.as_str())
            .unwrap_or_else(|| panic!("{f} is not in the function table"));
        *out.entry(def.op.name().to_string()).or_default() += n;
    }
    out
}

/// The workload's calls per (database, column family, class), from its
/// `by_cf` ground truth (`--cf-db2`); classes from the tool's function table.
pub fn calls_per_cf(counts: &common::Counts) -> BTreeMap<(String, String, String), u64> {
    let mut out = BTreeMap::new();
    for r in counts.by_cf.as_ref().expect("--cf-db2 prints by_cf") {
        let def = ckb_libbpf::model::rocksdb::FUNCS
            .iter()
            .find(|d| d.name == r.func)
            .unwrap_or_else(|| panic!("{} is not in the function table", r.func));
        let k = (r.db.clone(), r.cf.clone(), def.op.name().to_string());
        *out.entry(k).or_default() += r.count;
    }
    out
}

/// A vector of `(db, cf, op)`-labelled samples as a map.
fn per_cf(r: &[Sample]) -> BTreeMap<(String, String, String), f64> {
    r.iter()
        .map(|s| {
            let l = |k: &str| s.labels.get(k).cloned().unwrap_or_default();
            ((l("db"), l("cf"), l("op")), s.value)
        })
        .collect()
}

/// The end-to-end check: run it from a `#[test]` once `export` is wired
/// (root, under the BPF test lock). Every figure Prometheus stored equals
/// the workload's own count, per class and per (database, column family,
/// class); every ckb-libbpf panel of the dashboard returns data.
pub fn export_e2e_counts_equal_the_workload(extra_args: &[&str]) {
    common::require_bpf();
    // Synced writes: the fsync panels have data too. A second database
    // with families of its own: the per-family series.
    let scratch = common::scratch_dir("export-db2");
    // Not created here: the workload creates its second database.
    let db2s = scratch.join("db").display().to_string();
    let mut wl = common::Workload::start(&["--rounds", "3", "--sync-writes", "--cf-db2", &db2s]);
    let pid = wl.pid.to_string();
    // GET bytes are read with --value-sizes only (checked below).
    let mut args = vec!["--pid", pid.as_str(), "--interval", "0.5", "--value-sizes"];
    args.extend_from_slice(extra_args);
    let ex = ExportProcess::spawn(&args);
    ex.wait_rocksdb_attached();
    let prom = Prometheus::start(&[("ckb-libbpf", ex.addr, "/metrics")]);
    let counts = wl.run();
    let want = calls_per_class(&counts);
    for (op, n) in &want {
        let q = format!(
            "ckb_libbpf_rocksdb_op_duration_seconds_count{{job=\"ckb-libbpf\",op=\"{op}\"}}"
        );
        prom.wait_for(&q, Duration::from_secs(20), |r| {
            value_of(r) == Some(*n as f64)
        });
    }
    for (metric, n) in [
        (
            "ckb_libbpf_rocksdb_op_bytes_total{op=\"PUT\"}",
            counts.put_bytes,
        ),
        (
            "ckb_libbpf_rocksdb_op_bytes_total{op=\"GET\"}",
            counts.get_bytes,
        ),
        (
            "ckb_libbpf_rocksdb_op_misses_total{op=\"GET\"}",
            counts.get_misses,
        ),
    ] {
        let n = n as f64;
        prom.wait_for(metric, Duration::from_secs(10), |r| value_of(r) == Some(n));
    }
    // Per (database, column family, class): exactly the workload's calls,
    // every pair under its name (two databases, well under the cap).
    let want: BTreeMap<(String, String, String), f64> = calls_per_cf(&counts)
        .into_iter()
        .map(|(k, n)| (k, n as f64))
        .collect();
    let dbs: std::collections::BTreeSet<&str> = want.keys().map(|k| k.0.as_str()).collect();
    assert_eq!(dbs.len(), 2, "{want:#?}");
    assert!(want.keys().any(|k| k.0 == db2s && k.1 == "alpha"));
    let got = prom.wait_for(
        "ckb_libbpf_rocksdb_cf_calls_total{job=\"ckb-libbpf\"}",
        Duration::from_secs(20),
        |r| per_cf(r) == want,
    );
    assert_eq!(per_cf(&got), want);
    assert_eq!(
        value_of(&prom.query("ckb_libbpf_rocksdb_cf_folded_pairs")),
        Some(0.0)
    );
    // The split adds up to the per-class figures: bytes and misses
    // exactly, latency to the float's precision.
    for (metric, n) in [
        (
            "sum(ckb_libbpf_rocksdb_cf_bytes_total{op=\"PUT\"})",
            counts.put_bytes,
        ),
        (
            "sum(ckb_libbpf_rocksdb_cf_bytes_total{op=\"GET\"})",
            counts.get_bytes,
        ),
        (
            "sum(ckb_libbpf_rocksdb_cf_misses_total{op=\"GET\"})",
            counts.get_misses,
        ),
    ] {
        assert_eq!(value_of(&prom.query(metric)), Some(n as f64), "{metric}");
    }
    let by_cf = prom.query("sum by (op) (ckb_libbpf_rocksdb_cf_duration_seconds_total)");
    let per_op = prom.query("sum by (op) (ckb_libbpf_rocksdb_op_duration_seconds_sum)");
    assert!(!by_cf.is_empty());
    for o in &per_op {
        // A class without calls has no family row.
        let f = by_cf
            .iter()
            .find(|s| s.labels["op"] == o.labels["op"])
            .map_or(0.0, |s| s.value);
        assert!(
            (f - o.value).abs() <= 1e-9 * o.value,
            "{}: {f} s per family, {} s per class",
            o.labels["op"],
            o.value
        );
    }
    // Rates need two scrapes in their window: ask again until every panel
    // answers, for at most 20 s.
    let t = Instant::now();
    let mut empty = Vec::new();
    loop {
        empty.clear();
        for (title, q) in dashboard_queries() {
            // The RocksDB workload opens no TCP connection: per-peer series
            // are the net tests' (tests/it/net.rs); the totals panels are here.
            let peers = q.contains("net_peer_");
            if !is_ckb_query(&q) && !peers && prom.query(&q).is_empty() {
                empty.push(format!("{title}: {q}"));
            }
        }
        if empty.is_empty() || t.elapsed() > Duration::from_secs(20) {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(ex.stop(), Some(0), "SIGTERM ends export with 0");
    wl.finish();
    assert!(
        empty.is_empty(),
        "panels without data:\n{}",
        empty.join("\n")
    );
}

/// `ckb-libbpf export` on the bundled workload, scraped by a real
/// Prometheus: exact counts, and every dashboard panel has data.
#[test]
fn export_serves_exact_counts_through_a_real_prometheus() {
    export_e2e_counts_equal_the_workload(&[
        "--layers",
        "all",
        "--ops",
        "all",
        "--peers",
        "8",
        "--baseline-secs",
        "0",
    ]);
}

/// The value of the sample `series` (name and labels as printed) in a
/// text exposition.
pub fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The node restarts while Prometheus-style scrapes run every 100 ms:
/// counters never go backwards, the restart is counted, and the totals
/// cover both processes exactly.
#[test]
fn export_counters_stay_monotonic_across_a_node_restart() {
    common::require_bpf();
    let bin = common::private_workload_copy();
    let mut first = common::Workload::start_bin(&bin, &["--rounds", "1"]);
    let pid = first.pid.to_string();
    let ex = ExportProcess::spawn(&["--pid", &pid, "--interval", "0.2", "--layers", "rocksdb"]);
    ex.wait_rocksdb_attached();
    let gets = |c: &common::Counts| calls_per_class(c)["GET"];
    let series = "ckb_libbpf_rocksdb_op_duration_seconds_count{op=\"GET\"}";
    let mut last = 0.0;
    let mut scrape_until = |want: f64, what: &str| {
        let t = Instant::now();
        loop {
            let r = get(ex.addr, "/metrics", None);
            assert_eq!(r.status, 200);
            let v = sample(&r.body, series).unwrap_or(0.0);
            assert!(v >= last, "{what}: GET count went from {last} to {v}");
            last = v;
            if v == want {
                return r.body;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "{what}: GET count {v}, want {want}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let c1 = first.run();
    first.finish();
    let g1 = gets(&c1) as f64;
    scrape_until(g1, "first process");
    let mut second = common::Workload::start_bin(&bin, &["--rounds", "1"]);
    // The restarted node is traced again before it makes a call.
    let t = Instant::now();
    loop {
        let body = get(ex.addr, "/metrics", None).body;
        let restarts = sample(&body, "ckb_libbpf_target_restarts_total");
        let up = sample(&body, "ckb_libbpf_attached_programs{layer=\"rocksdb\"}");
        if restarts == Some(1.0) && up.is_some_and(|n| n > 0.0) {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the restart was not followed:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let c2 = second.run();
    second.finish();
    let body = scrape_until(g1 + gets(&c2) as f64, "after the restart");
    assert_eq!(sample(&body, "ckb_libbpf_target_restarts_total"), Some(1.0));
    assert_eq!(ex.stop(), Some(0), "SIGTERM ends export with 0");
}

/// Bad arguments of the subcommand itself: a usage error with its remedy,
/// before anything is loaded.
#[test]
fn export_bad_arguments_get_a_cause_and_exit_2() {
    common::assert_bad_input(&[
        (&["export", "--listen", "nonsense"], 2, "--listen"),
        (&["export", "--layers", "disk"], 2, "--layers"),
    ]);
}
