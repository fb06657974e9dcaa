//! Golden screens: fixed snapshots drawn into ratatui's `TestBackend` and
//! compared, character for character, with `src/tui/golden/*.txt`. After a
//! deliberate change of the screen, `UPDATE_GOLDEN=1 cargo test tui::`
//! rewrites them (review the diff).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use ratatui::backend::TestBackend;
use ratatui::style::Color;
use ratatui::Terminal;

use super::app::{App, Data, Kind, Msg, Tab};
use super::draw::draw;
use super::rpc::{tests::want_overview, NodeStatus};
use crate::analyze::{Anomaly, Cause};
use crate::engine::{AlertCount, Snapshot, Totals};
use crate::model::background::{Background, BgKind, BgRow};
use crate::model::net::{
    Dir, Endpoint, EventKind, EventLine, NetReport, PeerRow, Totals as NetTotals,
};
use crate::model::rocksdb::CfRow;
use crate::model::syscall::{Category, RoleCell, RoleRow, SyscallReport, SyscallRow};
use crate::model::{BgJob, OpStats, Report, Row};

/// A row with `count` calls of `ns` each (plus one of `max_ns`).
fn op(name: &str, count: u64, ns: u64, max_ns: u64, reads: bool) -> Row {
    let mut s = OpStats::default();
    for _ in 0..count.saturating_sub(1) {
        s.hist.record(ns);
        s.total_ns += ns;
    }
    if count > 0 {
        s.hist.record(max_ns);
        s.total_ns += max_ns;
        s.max_ns = max_ns;
    }
    s.count = count;
    s.bytes = count * 100;
    s.misses = if reads { count / 10 } else { 0 };
    s.row(name, 1.0, reads, true)
}

/// The (database, family, class) split of `rocksdb`'s rows: CKB's chain
/// database with its families, the indexer's database (a path longer
/// than the column: cut at the start) and one handle left unresolved.
fn by_cf(scale: u64) -> Vec<CfRow> {
    let cf = |db: &str, cf: &str, row: Row| CfRow {
        db: db.into(),
        cf: Some(cf.into()),
        row,
    };
    let chain = "/var/lib/ckb/data/db";
    vec![
        cf(
            chain,
            "*",
            op("WRITE", 40 * scale, 30_000, 2_500_000, false),
        ),
        cf(
            chain,
            "COLUMN_BLOCK_HEADER",
            op("GET", 500 * scale, 3_000, 95_000, true),
        ),
        cf(
            chain,
            "COLUMN_CELL",
            op("GET", 400 * scale, 3_000, 9_000, true),
        ),
        cf(
            chain,
            "COLUMN_CELL",
            op("PUT", 300 * scale, 6_000, 40_000, false),
        ),
        cf(
            "/var/lib/ckb/data/indexer/store",
            "default",
            op("GET", 200 * scale, 3_000, 7_000, true),
        ),
        cf(
            "db@0x55d0c0a81000",
            "cf@0x55d0c0a84200",
            op("GET", 100 * scale, 3_000, 5_000, true),
        ),
    ]
}

fn rocksdb(t: &str, scale: u64) -> Report {
    Report {
        by_cf: by_cf(scale),
        layer: "rocksdb",
        timestamp: t.into(),
        pid: Some(4242),
        interval_secs: 1.0,
        elapsed_secs: 42.0,
        rows: vec![
            op("GET", 1200 * scale, 3_000, 95_000, true),
            op("PUT", 300 * scale, 6_000, 40_000, false),
            op("WRITE", 40 * scale, 30_000, 2_500_000, false),
            op("ITER_SEEK", 0, 0, 0, false),
        ],
        ..Report::default()
    }
}

fn net() -> NetReport {
    let peer = |a: u8, port, dir: &str, tx: f64, rx: f64| PeerRow {
        peer: Endpoint {
            addr: IpAddr::V4(Ipv4Addr::new(127, 0, 0, a)),
            port,
        },
        dir: dir.into(),
        live: 1,
        closed: 0,
        age_secs: Some(35.0),
        tx_bytes: 1_048_576,
        rx_bytes: 3_145_728,
        tx_per_sec: tx,
        rx_per_sec: rx,
        retrans: 2,
        srtt_us: Some(250),
    };
    NetReport {
        timestamp: "2026-11-23T12:00:42Z".into(),
        pid: Some(4242),
        interval_secs: 1.0,
        elapsed_secs: 42.0,
        peers: vec![
            peer(2, 8115, "out", 2048.0, 65536.0),
            peer(3, 40222, "in", 512.0, 1024.0),
        ],
        totals: NetTotals {
            connects: 3,
            accepts: 1,
            closes: 2,
            connect_failures: 1,
            retrans: 4,
            ..NetTotals::default()
        },
        tx_per_sec: 2560.0,
        rx_per_sec: 66560.0,
        live_conns: 2,
        ..NetReport::default()
    }
}

fn syscalls() -> SyscallReport {
    let mut roles = BTreeMap::new();
    roles.insert(
        "compaction".to_string(),
        RoleCell {
            count: 900,
            total_ns: 45_000_000,
            errors: 0,
            bytes: None,
        },
    );
    roles.insert(
        "chain".to_string(),
        RoleCell {
            count: 100,
            total_ns: 5_000_000,
            errors: 0,
            bytes: None,
        },
    );
    let fsync = SyscallRow {
        nr: 75,
        category: Category::Sync,
        row: op("fdatasync", 1000, 50_000, 900_000, false),
        errors: 0,
        total_ns: 50_000_000,
        by_role: roles,
    };
    let read = SyscallRow {
        nr: 0,
        category: Category::FileIo,
        row: op("pread64", 20_000, 1_000, 30_000, false),
        errors: 3,
        total_ns: 20_000_000,
        by_role: BTreeMap::new(),
    };
    SyscallReport {
        backend: "raw_syscalls",
        timestamp: "2026-11-23T12:00:42Z".into(),
        pid: Some(4242),
        interval_secs: 1.0,
        elapsed_secs: 42.0,
        total_calls: 21_000,
        total_ns: 70_000_000,
        distinct: 2,
        syscalls: vec![("fdatasync".into(), fsync), ("pread64".into(), read)],
        roles: vec![(
            "compaction".into(),
            RoleRow {
                threads: 2,
                count: 900,
                total_ns: 45_000_000,
                fsyncs: 900,
                futex_wait_ratio: Some(0.25),
                ..RoleRow::default()
            },
        )],
        ..SyscallReport::default()
    }
}

fn background() -> Background {
    Background {
        rows: vec![
            BgRow {
                kind: BgKind::Compaction,
                started: 1,
                finished: 1,
                in_flight: 0,
                total_ns: 120_000_000,
                avg_us: Some(120_000.0),
                p99_us: Some(120_000.0),
                max_us: Some(120_000.0),
                running_max_us: None,
            },
            BgRow {
                kind: BgKind::Flush,
                started: 2,
                finished: 2,
                in_flight: 0,
                total_ns: 8_000_000,
                avg_us: Some(4_000.0),
                p99_us: Some(5_000.0),
                max_us: Some(5_000.0),
                running_max_us: None,
            },
        ],
        stalled_ns: 0,
        ..Background::default()
    }
}

/// The fixed state every golden screen starts from: six intervals of
/// growing load (the sparklines), connection events, a slow operation, a
/// job, the node's RPC summary.
fn busy(alert: bool) -> App {
    let mut app = App::new("ckb".into(), 1.0, "http://127.0.0.1:8114".into());
    let d = &mut app.data;
    for i in 1..=6u64 {
        let t = format!("2026-11-23T12:00:{:02}Z", 36 + i);
        let mut s = Snapshot {
            rocksdb: Some(rocksdb(&t, i)),
            background: Some(background()),
            net: Some(net()),
            syscall: Some(syscalls()),
            alerts: Some(AlertCount {
                raised: 0,
                learning: false,
            }),
            totals: Some(Box::new(Totals {
                rocksdb: Some(rocksdb(&t, 1000)),
                ..Totals::default()
            })),
            ..Snapshot::default()
        };
        if alert && i == 6 {
            s.anomalies = vec![Anomaly {
                kind: "latency_spike",
                operation: "GET".into(),
                current_avg_us: 410.0,
                baseline_avg_us: 3.9,
                p99_us: None,
                baseline_p99_us: None,
                multiplier: 105.1,
                cause: Cause::Compaction,
                evidence: BTreeMap::new(),
                next_step: Cause::Compaction.next_step().into(),
                onset: true,
                window_secs: 10.0,
                unchecked: vec![],
            }];
            s.alerts = Some(AlertCount {
                raised: 1,
                learning: false,
            });
        }
        d.apply(Msg::Snapshot(Box::new(s)));
    }
    d.apply(Msg::Conn(EventLine {
        time: "2026-11-23T12:00:40.100Z".into(),
        kind: EventKind::Connect,
        pid: 4242,
        peer: "127.0.0.2:8115".into(),
        local: "127.0.0.1:51000".into(),
        dir: Dir::Out,
        duration_secs: None,
        tx_bytes: 0,
        rx_bytes: 0,
        retrans: 0,
    }));
    d.apply(Msg::Conn(EventLine {
        time: "2026-11-23T12:00:41.500Z".into(),
        kind: EventKind::Close,
        pid: 4242,
        peer: "127.0.0.9:8115".into(),
        local: "127.0.0.1:51002".into(),
        dir: Dir::Out,
        duration_secs: Some(12.5),
        tx_bytes: 4096,
        rx_bytes: 1_048_576,
        retrans: 1,
    }));
    d.apply(Msg::Slow(
        "12:00:41.734 WRITE 2,500.0 µs on /var/lib/ckb/data/db rocksdb_write ChainService (4250) 400 B\n".into(),
    ));
    d.apply(Msg::Job(BgJob {
        time: "2026-11-23T12:00:41.900Z".into(),
        pid: 4242,
        tid: 4260,
        thread: "rocksdb:low".into(),
        kind: BgKind::Compaction,
        duration_us: 120_000.0,
        object: 0x1000,
    }));
    d.log(
        "2026-11-23T12:00:36Z",
        Kind::Note,
        "attached 38 RocksDB functions",
    );
    d.node = NodeStatus::Up(want_overview());
    d.node_cpu = Some(87.5);
    app
}

/// The screen as text, one line per row, trailing blanks cut.
fn screen(app: &App, w: u16, h: u16) -> (String, ratatui::buffer::Buffer) {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| draw(f, app)).unwrap();
    let buf = t.backend().buffer().clone();
    let text = (0..h)
        .map(|y| {
            let l: String = (0..w).map(|x| buf[(x, y)].symbol()).collect();
            l.trim_end().to_string()
        })
        .collect::<Vec<_>>()
        .join("\n");
    (text + "\n", buf)
}

fn golden(name: &str, got: &str) {
    let path = format!("{}/src/tui/golden/{name}.txt", env!("CARGO_MANIFEST_DIR"));
    if std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::create_dir_all(std::path::Path::new(&path).parent().unwrap()).unwrap();
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e} (UPDATE_GOLDEN=1 writes it)\n{got}"));
    assert!(
        want == got,
        "{name}: screen differs from {path} (UPDATE_GOLDEN=1 rewrites it)\n--- got ---\n{got}--- want ---\n{want}"
    );
}

fn tab(mut app: App, t: Tab) -> App {
    app.tab = t;
    app
}

#[test]
fn overview_tab() {
    let (s, _) = screen(&busy(false), 120, 34);
    // Figures straight from the snapshot: GET's total since start, the
    // peer with the most traffic, the heaviest syscall, the node's tip.
    assert!(s.contains("1,200,000"), "{s}");
    assert!(s.contains("127.0.0.2:8115"), "{s}");
    assert!(s.contains("fdatasync"), "{s}");
    assert!(s.contains("tip #123,456"), "{s}");
    // The node's CPU as /proc says, not the RPC's (12.5 in the fixture).
    assert!(s.contains("node CPU 87.5%") && !s.contains("12.5%"), "{s}");
    golden("overview", &s);
}

#[test]
fn rocksdb_tab() {
    let mut app = tab(busy(false), Tab::Rocksdb);
    app.sel[1] = 2; // WRITE
    let (s, _) = screen(&app, 120, 40);
    assert!(s.contains("WRITE latency, this interval"), "{s}");
    assert!(s.contains("WRITE QPS: now 240"), "{s}");
    assert!(s.contains("rocksdb_write"), "{s}");
    assert!(s.contains("compaction"), "{s}");
    golden("rocksdb", &s);
}

/// The split on the RocksDB tab: rows by total time since start, exact
/// counts, each with its interval rate; the unresolved handle marked and
/// named by its address, never by a guessed name; a long database path
/// cut at its start.
#[test]
fn rocksdb_tab_splits_time_by_database_and_family() {
    let app = tab(busy(false), Tab::Rocksdb);
    let (s, buf) = screen(&app, 120, 40);
    assert!(
        s.contains("Time by database and column family (since start; top 6 of 6)"),
        "{s}"
    );
    assert!(s.contains("1 with unresolved handles"), "{s}");
    let rows: Vec<Vec<&str>> = s
        .lines()
        .skip_while(|l| !l.contains("Time by database"))
        .skip(2)
        .take(6)
        .map(|l| l.trim_matches(['│', ' ']).split_whitespace().collect())
        .collect();
    // (db, cf, op, total since start, QPS of the last interval (scale 6)).
    let want = [
        (
            "/var/lib/ckb/data/db",
            "COLUMN_CELL",
            "PUT",
            "300,000",
            "1800",
        ),
        (
            "/var/lib/ckb/data/db",
            "COLUMN_BLOCK_HEADER",
            "GET",
            "500,000",
            "3000",
        ),
        ("/var/lib/ckb/data/db", "*", "WRITE", "40,000", "240"),
        (
            "/var/lib/ckb/data/db",
            "COLUMN_CELL",
            "GET",
            "400,000",
            "2400",
        ),
        (
            "…/lib/ckb/data/indexer/store",
            "default",
            "GET",
            "200,000",
            "1200",
        ),
        (
            "db@0x55d0c0a81000",
            "cf@0x55d0c0a84200",
            "GET",
            "100,000",
            "600",
        ),
    ];
    for (r, w) in rows.iter().zip(want) {
        assert_eq!((r[0], r[1], r[2], r[3], *r.last().unwrap()), w, "{s}");
    }
    assert_eq!(rows.len(), 6, "{s}");
    // The unresolved row is yellow, a resolved one is not.
    let y = |needle: &str| {
        (0..40u16)
            .find(|&y| {
                let l: String = (0..120u16).map(|x| buf[(x, y)].symbol()).collect();
                l.contains(needle)
            })
            .unwrap()
    };
    assert_eq!(buf[(1, y("db@0x55d0c0a81000"))].fg, Color::Yellow);
    assert_ne!(buf[(1, y("COLUMN_BLOCK_HEADER"))].fg, Color::Yellow);
}

#[test]
fn network_tab() {
    let (s, _) = screen(&tab(busy(false), Tab::Network), 120, 30);
    assert!(s.contains("lived 12.5s"), "{s}");
    golden("network", &s);
}

#[test]
fn syscall_tab() {
    let (s, _) = screen(&tab(busy(false), Tab::Syscall), 120, 30);
    assert!(s.contains("compaction 90.0%"), "{s}");
    golden("syscall", &s);
}

#[test]
fn narrow_terminal_stacks_the_quadrants() {
    let (s, _) = screen(&busy(false), 60, 40);
    for panel in ["P2P network", "RocksDB", "Syscalls: top 5", "Events"] {
        assert!(s.contains(panel), "{panel}: {s}");
    }
    golden("narrow", &s);
    let (tiny, _) = screen(&busy(false), 30, 6);
    assert!(tiny.contains("terminal 30x6"), "{tiny}");
}

#[test]
fn empty_data_says_what_it_waits_for() {
    let app = App::new("pid 4242".into(), 1.0, "http://127.0.0.1:8114".into());
    let (s, _) = screen(&app, 100, 24);
    assert!(s.contains("waiting for the first interval"), "{s}");
    golden("empty", &s);
    let mut app = app;
    app.data = Data {
        node: NodeStatus::Unavailable("Connection refused (os error 111)".into()),
        ..Data::default()
    };
    let (s, _) = screen(&app, 100, 24);
    assert!(
        s.contains("RPC unavailable at http://127.0.0.1:8114: Connection refused"),
        "{s}"
    );
}

#[test]
fn an_alert_shows_cause_and_next_step_in_red() {
    let app = busy(true);
    let (s, buf) = screen(&app, 120, 34);
    assert!(s.contains("1 active, 1 raised"), "{s}");
    assert!(
        s.contains("ALERT GET 105.1x baseline: RocksDB compaction"),
        "{s}"
    );
    assert!(
        s.contains("cause: RocksDB compaction; next: run")
            && s.contains("`ckb-libbpf rocksdb --slow` to see which"),
        "{s}"
    );
    golden("alert", &s);
    // The alert line of the RocksDB quadrant is red.
    let (x, y) = (0..34u16)
        .flat_map(|y| (0..120u16).map(move |x| (x, y)))
        .find(|&(x, y)| {
            buf[(x, y)].symbol() == "A"
                && (0..5).all(|i| buf[(x + i, y)].symbol() == &"ALERT"[i as usize..i as usize + 1])
                && buf[(x + 6, y)].symbol() == "G"
        })
        .expect("an ALERT line");
    assert_eq!(buf[(x, y)].fg, Color::Red);
}

#[test]
fn help_and_pause() {
    let mut app = busy(false);
    app.help = true;
    app.frozen = Some(Box::new(app.data.clone()));
    let (s, _) = screen(&app, 100, 30);
    assert!(s.contains("PAUSED"), "{s}");
    assert!(s.contains("q  Ctrl-C       quit"), "{s}");
}

#[test]
fn log_text_wraps_at_spaces_and_cuts_long_words() {
    use super::draw::wrap;
    assert_eq!(wrap("a bb ccc", 4), vec!["a bb", "ccc"]);
    assert_eq!(wrap("abcdefghij x", 4), vec!["abcd", "efgh", "ij x"]);
    assert_eq!(wrap("", 4), vec![""]);
    assert_eq!(wrap("µµµµµ", 5), vec!["µµµµµ"]);
}
