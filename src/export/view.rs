//! The metrics view: what `ckb-libbpf export` publishes, as plain data. Every
//! figure is cumulative over the whole capture (counters never restart when
//! the node does; the engine sums its sessions), except the gauges (jobs
//! running, connections open, anomalies active, threads).
//!
//! The capture builds one `MetricsView` per interval, with the `from_*`
//! converters below, from the per-layer model types that carry exact data;
//! `encode` turns it into the exposition formats. Nothing here touches BPF,
//! sockets or the terminal.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::analyze::{Anomaly, Cause};
use crate::engine::Snapshot;
use crate::model::net::{NetReport, Totals};
use crate::model::overhead::{Hits, PerHit};
use crate::model::rocksdb::{is_unresolved, CfRow, Op};
use crate::model::syscall::{Category, SyscallReport};
use crate::model::{Background, BgKind, BgStats, Histogram, OpStats, Report, TargetEvent};

/// Everything one scrape shows. A layer that is not running is `None`: its
/// series are absent rather than zero, so a dashboard tells "not traced"
/// from "idle".
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricsView {
    pub rocksdb: Option<RocksdbView>,
    pub background: Option<BackgroundView>,
    pub anomalies: Option<AnomalyView>,
    pub net: Option<NetView>,
    pub syscall: Option<SyscallView>,
    pub health: Health,
}

/// Calls, exact total latency and a latency histogram.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Latency {
    pub count: u64,
    pub sum_ns: u64,
    pub hist: Histogram,
}

/// One RocksDB operation class (`op` as in the JSON: GET, PUT...).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OpView {
    pub op: String,
    pub latency: Latency,
    /// Bytes moved, for the classes that carry a size (GET, PUT, DELETE).
    pub bytes: Option<u64>,
    /// Reads that found nothing, for the classes with a hit ratio (GET).
    pub misses: Option<u64>,
}

/// One (database, column family, operation class) cell of the per-family
/// split: exact calls, summed latency, bytes and misses. Names as the
/// capture resolved them; an unresolved handle is `unresolved`, never its
/// pointer (a pointer changes with every restart: an unbounded label).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CfView {
    pub db: String,
    pub cf: String,
    pub op: String,
    pub count: u64,
    pub sum_ns: u64,
    pub bytes: Option<u64>,
    pub misses: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct RocksdbView {
    pub ops: Vec<OpView>,
    /// Per (database, column family, class); the encoder caps the pairs.
    pub cfs: Vec<CfView>,
}

/// The label of a database or family name: `unresolved` for a handle the
/// capture could not name (shown there as its pointer).
fn name_label(name: &str) -> String {
    if is_unresolved(name) {
        "unresolved".to_string()
    } else {
        name.to_string()
    }
}

impl CfView {
    fn from_row(c: &CfRow) -> CfView {
        CfView {
            db: name_label(&c.db),
            cf: name_label(c.cf.as_deref().unwrap_or("default")),
            op: c.row.name.clone(),
            count: c.row.count,
            sum_ns: c.row.total_ns,
            bytes: c.row.bytes,
            misses: c.row.misses,
        }
    }
}

/// One kind of background job (compaction, flush, write_stall, and the
/// stop/delay tokens, which are instants and carry no durations).
#[derive(Clone, Debug, PartialEq)]
pub struct BgKindView {
    pub kind: &'static str,
    pub started: u64,
    pub finished: u64,
    pub running: u64,
    /// Total duration of the finished calls, ns; None for instants.
    pub sum_ns: Option<u64>,
    /// Their durations, when the source keeps a histogram.
    pub hist: Option<Histogram>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct BackgroundView {
    pub kinds: Vec<BgKindView>,
    /// Time writers spent stalled, finished stalls plus the elapsed part of
    /// ongoing ones.
    pub stalled_ns: u64,
}

/// Latency anomalies per (operation, probable cause).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AnomalyView {
    /// (op, cause) -> alerts raised (counted at their onset).
    pub raised: BTreeMap<(String, &'static str), u64>,
    /// (op, cause) pairs alerting now.
    pub active: BTreeSet<(String, &'static str)>,
}

/// Per remote IP address (never the port: a reconnecting peer comes from a
/// new port each time, the series would be unbounded).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PeerView {
    pub peer: String,
    pub sent_bytes: u64,
    pub received_bytes: u64,
    pub retransmits: u64,
    pub open: u64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct NetView {
    pub sent_bytes: u64,
    pub received_bytes: u64,
    pub connects: u64,
    pub accepts: u64,
    pub closes: u64,
    pub connect_failures: u64,
    pub retransmits: u64,
    pub open_connections: u64,
    /// Per peer; the encoder shows them only under `Options::peers` and caps
    /// their number.
    pub peers: Vec<PeerView>,
}

/// Syscalls of one (thread role, category) pair.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyscallCell {
    pub role: String,
    pub category: &'static str,
    pub calls: u64,
    pub sum_ns: u64,
    pub errors: u64,
}

/// What one thread role read and wrote (file and network together).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RoleBytes {
    pub role: String,
    pub read: u64,
    pub written: u64,
    /// Threads of this role at the end of the span, when known.
    pub threads: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyscallView {
    pub cells: Vec<SyscallCell>,
    pub roles: Vec<RoleBytes>,
    /// fsync + fdatasync, every thread.
    pub fsync: Option<Latency>,
}

/// One layer's own health.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LayerHealth {
    pub layer: &'static str,
    /// Events lost on the way to userspace (ring buffer or channel full).
    pub lost_events: u64,
    /// Observations the kernel could not record (a map full).
    pub dropped: u64,
    /// BPF programs attached now, when the capture reports it.
    pub attached_programs: Option<u64>,
}

/// The tool itself.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Health {
    pub layers: Vec<LayerHealth>,
    /// Traced calls per probe class (what the probes cost depends on it).
    pub probe_hits: Option<Hits>,
    /// Estimated CPU time the probes took from the node, ns.
    pub probe_cost_ns: Option<f64>,
    /// Syscalls our own probes cause in the node (`uretprobe`): name,
    /// count, total ns.
    pub probe_syscalls: Vec<(String, u64, u64)>,
    /// The node restarted (or was upgraded) and was traced again.
    pub target_restarts: u64,
    /// A node process is traced now (false while waiting for a restart).
    pub target_up: bool,
    /// Seconds since the capture began.
    pub elapsed_secs: f64,
    /// Unix time of the snapshot, seconds.
    pub timestamp_secs: f64,
}

impl Latency {
    pub fn from_op(s: &OpStats) -> Latency {
        Latency {
            count: s.count,
            sum_ns: s.total_ns,
            hist: s.hist.clone(),
        }
    }
}

impl RocksdbView {
    /// From the cumulative per-class counters (class name as `Op::name`).
    /// Bytes and misses appear for the classes that have them, as in the
    /// table and the JSON.
    pub fn from_ops<'a>(ops: impl IntoIterator<Item = (&'a str, &'a OpStats)>) -> RocksdbView {
        RocksdbView {
            ops: ops
                .into_iter()
                .map(|(name, s)| {
                    let op = Op::from_name(name);
                    OpView {
                        op: name.to_string(),
                        latency: Latency::from_op(s),
                        bytes: op.is_some_and(|o| o.has_bytes(true)).then_some(s.bytes),
                        misses: op.is_some_and(|o| o.is_read()).then_some(s.misses),
                    }
                })
                .collect(),
            cfs: Vec::new(),
        }
    }
}

impl RocksdbView {
    /// From the whole-capture RocksDB report (the engine's
    /// `Totals::rocksdb`): its rows carry exact counts, summed latency,
    /// bytes and misses where they mean something, and the histogram; its
    /// `by_cf` rows the same per (database, column family, class).
    pub fn from_report(r: &Report) -> RocksdbView {
        RocksdbView {
            ops: r
                .rows
                .iter()
                .map(|row| OpView {
                    op: row.name.clone(),
                    latency: Latency {
                        count: row.count,
                        sum_ns: row.total_ns,
                        hist: row.hist.clone(),
                    },
                    bytes: row.bytes,
                    misses: row.misses,
                })
                .collect(),
            cfs: r.by_cf.iter().map(CfView::from_row).collect(),
        }
    }
}

impl BackgroundView {
    /// From the cumulative per-kind counters, the calls in flight per kind
    /// and the stalled time. Kinds the target lacks are left out.
    pub fn from_stats(
        stats: &BTreeMap<BgKind, BgStats>,
        running: &BTreeMap<BgKind, u64>,
        stalled_ns: u64,
    ) -> BackgroundView {
        BackgroundView {
            kinds: stats
                .iter()
                .map(|(k, s)| BgKindView {
                    kind: k.name(),
                    started: s.started,
                    finished: s.finished,
                    running: running.get(k).copied().unwrap_or(0),
                    sum_ns: (!k.is_instant()).then_some(s.total_ns),
                    hist: (!k.is_instant()).then(|| s.hist.clone()),
                })
                .collect(),
            stalled_ns,
        }
    }

    /// From the whole-capture background report (the engine's
    /// `Totals::background`). Its rows carry no histogram: the duration
    /// histograms are left out, the exact totals stay.
    pub fn from_model(b: &Background) -> BackgroundView {
        BackgroundView {
            kinds: b
                .rows
                .iter()
                .map(|r| BgKindView {
                    kind: r.kind.name(),
                    started: r.started,
                    finished: r.finished,
                    running: r.in_flight,
                    sum_ns: (!r.kind.is_instant()).then_some(r.total_ns),
                    hist: None,
                })
                .collect(),
            stalled_ns: b.stalled_ns,
        }
    }
}

/// Counts alerts across intervals: the analyzer reports the alerts active
/// after each interval, with `onset` on the first one.
#[derive(Clone, Debug, Default)]
pub struct AnomalyTally {
    view: AnomalyView,
}

impl AnomalyTally {
    /// Every (op, cause) pair starts at zero, so the first alert is an
    /// increase `rate()` can see (a series born at 1 shows no increase).
    pub fn new<'a>(ops: impl IntoIterator<Item = &'a str>) -> AnomalyTally {
        let mut view = AnomalyView::default();
        for op in ops {
            for c in CAUSES {
                view.raised.insert((op.to_string(), c.name()), 0);
            }
        }
        AnomalyTally { view }
    }

    /// The alerts active after one interval.
    pub fn observe(&mut self, active: &[Anomaly]) {
        self.view.active.clear();
        for a in active {
            let key = (a.operation.clone(), a.cause.name());
            if a.onset {
                *self.view.raised.entry(key.clone()).or_default() += 1;
            } else {
                self.view.raised.entry(key.clone()).or_default();
            }
            self.view.active.insert(key);
        }
    }

    pub fn view(&self) -> AnomalyView {
        self.view.clone()
    }
}

const CAUSES: [Cause; 7] = [
    Cause::WriteStall,
    Cause::Compaction,
    Cause::Flush,
    Cause::FsyncLatency,
    Cause::FutexContention,
    Cause::PeerChurn,
    Cause::Unknown,
];

impl NetView {
    /// From a net report whose totals cover the whole capture. Peers are
    /// folded by IP address.
    pub fn from_report(r: &NetReport) -> NetView {
        let mut peers: BTreeMap<String, PeerView> = BTreeMap::new();
        for p in &r.peers {
            let ip = p.peer.addr.to_string();
            let v = peers.entry(ip.clone()).or_insert_with(|| PeerView {
                peer: ip,
                ..Default::default()
            });
            v.sent_bytes += p.tx_bytes;
            v.received_bytes += p.rx_bytes;
            v.retransmits += p.retrans;
            v.open += u64::from(p.live);
        }
        let mut v = NetView::from_totals(&r.totals, u64::from(r.live_conns));
        v.peers = peers.into_values().collect();
        v
    }

    pub fn from_totals(t: &Totals, open_connections: u64) -> NetView {
        NetView {
            sent_bytes: t.tx_bytes,
            received_bytes: t.rx_bytes,
            connects: t.connects,
            accepts: t.accepts,
            closes: t.closes,
            connect_failures: t.connect_failures,
            retransmits: t.retrans,
            open_connections,
            peers: Vec::new(),
        }
    }
}

impl SyscallView {
    /// From a syscall report over the whole capture, built with every
    /// syscall listed (`top` 0): the (role, category) cells are summed from
    /// the per-syscall rows.
    pub fn from_report(r: &SyscallReport) -> SyscallView {
        let mut cells: BTreeMap<(String, Category), SyscallCell> = BTreeMap::new();
        let mut fsync: Option<Latency> = None;
        for (name, row) in &r.syscalls {
            for (role, c) in &row.by_role {
                let cell = cells
                    .entry((role.clone(), row.category))
                    .or_insert_with(|| SyscallCell {
                        role: role.clone(),
                        category: row.category.name(),
                        ..Default::default()
                    });
                cell.calls += c.count;
                cell.sum_ns += c.total_ns;
                cell.errors += c.errors;
            }
            if name == "fsync" || name == "fdatasync" {
                let f = fsync.get_or_insert_with(Latency::default);
                f.count += row.row.count;
                f.sum_ns += row.total_ns;
                f.hist.add(&row.row.hist);
            }
        }
        SyscallView {
            cells: cells.into_values().collect(),
            roles: r
                .roles
                .iter()
                .map(|(role, rr)| RoleBytes {
                    role: role.clone(),
                    read: rr.bytes_read,
                    written: rr.bytes_written,
                    threads: (rr.threads > 0).then_some(u64::from(rr.threads)),
                })
                .collect(),
            fsync,
        }
    }
}

impl Health {
    /// The probes' estimated cost from the cumulative hits.
    pub fn set_probe_cost(&mut self, hits: Hits, per_hit: &PerHit) {
        self.probe_cost_ns = Some(per_hit.cost_ns(&hits));
        self.probe_hits = Some(hits);
    }
}

/// Turns the engine's snapshots into metrics views, keeping what spans
/// intervals: alerts raised so far, whether the node is traced now. The
/// capture must run with `engine::Options { totals: true, top: 0, .. }`:
/// every figure comes from the whole-capture totals (monotonic across
/// intervals and node restarts), every syscall is listed.
#[derive(Debug)]
pub struct Builder {
    tally: Option<AnomalyTally>,
    target_up: bool,
    attached: BTreeMap<&'static str, u64>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            tally: None,
            target_up: true,
            attached: BTreeMap::new(),
        }
    }
}

impl Builder {
    /// BPF programs `layer` has attached now (the snapshot does not say):
    /// set at attach, 0 at detach.
    pub fn attached(&mut self, layer: &'static str, programs: u64) {
        self.attached.insert(layer, programs);
    }

    /// The node exited (series stay, `target_up` 0) or is traced again.
    pub fn target(&mut self, e: &TargetEvent) {
        self.target_up = matches!(e, TargetEvent::Restarted(_));
    }

    /// The view of one snapshot; None when it carries no totals.
    pub fn view(&mut self, s: &Snapshot) -> Option<MetricsView> {
        let t = s.totals.as_deref()?;
        let anomalies = match (s.alerts, &t.rocksdb) {
            (Some(_), Some(r)) => {
                let tally = self.tally.get_or_insert_with(|| {
                    AnomalyTally::new(r.rows.iter().map(|x| x.name.as_str()))
                });
                tally.observe(&s.anomalies);
                Some(tally.view())
            }
            _ => None,
        };
        let net = t.net.map(|tot| {
            let live = s.net.as_ref().map_or(0, |r| u64::from(r.live_conns));
            let mut v = NetView::from_totals(&tot, live);
            if let Some(r) = &s.net {
                v.peers = NetView::from_report(r).peers;
            }
            v
        });
        let mut health = Health {
            target_restarts: t.restarts,
            target_up: self.target_up,
            timestamp_secs: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            ..Default::default()
        };
        if let Some(r) = &t.rocksdb {
            health.layers.push(LayerHealth {
                layer: "rocksdb",
                lost_events: r.lost_events,
                dropped: r.dropped,
                attached_programs: None,
            });
            health.elapsed_secs = r.elapsed_secs;
            if let Some(o) = &r.overhead {
                health.set_probe_cost(o.hits, &o.per_hit);
            }
        }
        if let Some(b) = &t.background {
            health.layers.push(LayerHealth {
                layer: "background",
                lost_events: b.lost_events,
                ..Default::default()
            });
        }
        if let Some(n) = &t.net {
            health.layers.push(LayerHealth {
                layer: "net",
                lost_events: n.lost_events,
                ..Default::default()
            });
        }
        if let Some(r) = &t.syscall {
            health.layers.push(LayerHealth {
                layer: "syscall",
                dropped: r.uncounted + r.untimed,
                ..Default::default()
            });
            health.probe_syscalls = r.probe_cost.clone();
            health.elapsed_secs = health.elapsed_secs.max(r.elapsed_secs);
        }
        for l in &mut health.layers {
            l.attached_programs = self.attached.get(l.layer).copied();
        }
        Some(MetricsView {
            rocksdb: t.rocksdb.as_ref().map(RocksdbView::from_report),
            background: t.background.as_ref().map(BackgroundView::from_model),
            anomalies,
            net,
            syscall: t.syscall.as_ref().map(SyscallView::from_report),
            health,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::syscall::{build, CallStats, Span};
    use std::collections::HashMap;

    #[test]
    fn bytes_and_misses_only_where_they_mean_something() {
        let s = OpStats {
            count: 3,
            bytes: 30,
            misses: 1,
            ..Default::default()
        };
        let v = RocksdbView::from_ops([("GET", &s), ("PUT", &s), ("ITER_NEXT", &s)]);
        let f = |i: usize| (v.ops[i].bytes, v.ops[i].misses);
        assert_eq!(f(0), (Some(30), Some(1)));
        assert_eq!(f(1), (Some(30), None));
        assert_eq!(f(2), (None, None));
    }

    #[test]
    fn cf_rows_keep_names_and_hide_pointers() {
        let s = OpStats {
            count: 2,
            total_ns: 3_000,
            bytes: 40,
            ..Default::default()
        };
        let cf = |db: &str, cf: Option<&str>, op: Op| CfRow {
            db: db.into(),
            cf: cf.map(Into::into),
            row: s.row(op.name(), 1.0, op.is_read(), op.has_bytes(true)),
        };
        let r = Report {
            by_cf: vec![
                cf("/data/db", Some("COLUMN_BLOCK_HEADER"), Op::Put),
                cf("/data/db", Some("cf@0x5581"), Op::Get),
                cf("db@0x55aa", Some("default"), Op::IterNext),
                cf("/data/db", None, Op::Get),
            ],
            ..Default::default()
        };
        let v = RocksdbView::from_report(&r);
        let names: Vec<[&str; 3]> = v
            .cfs
            .iter()
            .map(|c| [c.db.as_str(), c.cf.as_str(), c.op.as_str()])
            .collect();
        assert_eq!(
            names,
            vec![
                ["/data/db", "COLUMN_BLOCK_HEADER", "PUT"],
                ["/data/db", "unresolved", "GET"],
                ["unresolved", "default", "ITER_NEXT"],
                ["/data/db", "default", "GET"],
            ]
        );
        for c in &v.cfs {
            assert_eq!((c.count, c.sum_ns), (2, 3_000), "{c:?}");
            // Bytes where the class carries a size (not ITER_NEXT).
            assert_eq!(c.bytes, (c.op != "ITER_NEXT").then_some(40), "{c:?}");
        }
    }

    #[test]
    fn tally_counts_onsets_and_keeps_pairs() {
        let a = |op: &str, cause, onset| Anomaly {
            kind: "latency_spike",
            operation: op.into(),
            current_avg_us: 0.0,
            baseline_avg_us: 0.0,
            p99_us: None,
            baseline_p99_us: None,
            multiplier: 0.0,
            cause,
            evidence: BTreeMap::new(),
            next_step: String::new(),
            onset,
            window_secs: 10.0,
            unchecked: Vec::new(),
        };
        let mut t = AnomalyTally::new(["GET", "PUT"]);
        assert_eq!(t.view().raised.len(), 14);
        t.observe(&[a("GET", Cause::Compaction, true)]);
        t.observe(&[a("GET", Cause::Compaction, false)]);
        let v = t.view();
        assert_eq!(v.raised[&("GET".to_string(), "compaction")], 1);
        assert!(v.active.contains(&("GET".to_string(), "compaction")));
        t.observe(&[]);
        assert!(t.view().active.is_empty());
        assert_eq!(t.view().raised[&("GET".to_string(), "compaction")], 1);
    }

    #[test]
    fn syscall_cells_sum_to_the_role_totals() {
        let nr = |n: &str| crate::model::syscall::syscall_nr(n).unwrap();
        let cs = |count: u64, ns: u64| {
            let mut s = CallStats::default();
            for _ in 0..count {
                s.op.count += 1;
                s.op.total_ns += ns;
                s.op.hist.record(ns);
            }
            s
        };
        let mut cells = HashMap::new();
        cells.insert(("rocksdb:low".to_string(), nr("pwrite64")), cs(4, 1000));
        cells.insert(("rocksdb:low".to_string(), nr("fdatasync")), cs(2, 5000));
        cells.insert(("ChainService".to_string(), nr("fsync")), cs(1, 7000));
        cells.insert(("ChainService".to_string(), nr("futex")), cs(3, 10));
        let r = build(
            &cells,
            &Span {
                secs: 1.0,
                main: "ckb".into(),
                ..Default::default()
            },
        );
        let v = SyscallView::from_report(&r);
        for (role, rr) in &r.roles {
            let calls: u64 = v
                .cells
                .iter()
                .filter(|c| &c.role == role)
                .map(|c| c.calls)
                .sum();
            let ns: u64 = v
                .cells
                .iter()
                .filter(|c| &c.role == role)
                .map(|c| c.sum_ns)
                .sum();
            assert_eq!((calls, ns), (rr.count, rr.total_ns), "{role}");
        }
        let f = v.fsync.unwrap();
        assert_eq!((f.count, f.sum_ns, f.hist.count()), (3, 17_000, 3));
        let sync = v
            .cells
            .iter()
            .find(|c| c.role == "compaction" && c.category == "sync")
            .unwrap();
        assert_eq!(sync.calls, 2);
    }

    #[test]
    fn builder_reads_the_whole_capture_totals() {
        use crate::engine::{AlertCount, Totals as EngineTotals};
        use crate::model::net::Totals;
        let mut get = OpStats::default();
        for ns in [1_000u64, 2_000, 3_000] {
            get.count += 1;
            get.total_ns += ns;
            get.hist.record(ns);
        }
        get.misses = 1;
        get.bytes = 300;
        let report = Report {
            rows: vec![get.row("GET", 1.0, true, true)],
            lost_events: 2,
            dropped: 3,
            elapsed_secs: 9.0,
            ..Default::default()
        };
        let snap = Snapshot {
            alerts: Some(AlertCount::default()),
            totals: Some(Box::new(EngineTotals {
                rocksdb: Some(report),
                net: Some(Totals {
                    tx_bytes: 77,
                    connects: 2,
                    lost_events: 4,
                    ..Default::default()
                }),
                restarts: 1,
                ..Default::default()
            })),
            ..Default::default()
        };
        let mut b = Builder::default();
        assert!(b.view(&Snapshot::default()).is_none(), "no totals, no view");
        let v = b.view(&snap).unwrap();
        let op = &v.rocksdb.as_ref().unwrap().ops[0];
        assert_eq!(
            (op.latency.count, op.latency.sum_ns, op.latency.hist.count()),
            (3, 6_000, 3)
        );
        assert_eq!((op.bytes, op.misses), (Some(300), Some(1)));
        assert_eq!(v.net.as_ref().unwrap().sent_bytes, 77);
        assert_eq!(
            v.anomalies.as_ref().unwrap().raised.len(),
            7,
            "GET x causes"
        );
        assert!(v.background.is_none() && v.syscall.is_none());
        let h = &v.health;
        assert_eq!(
            (h.target_restarts, h.target_up, h.elapsed_secs),
            (1, true, 9.0)
        );
        assert_eq!(h.layers[0].layer, "rocksdb");
        assert_eq!((h.layers[0].lost_events, h.layers[0].dropped), (2, 3));
        assert_eq!((h.layers[1].layer, h.layers[1].lost_events), ("net", 4));
        b.target(&TargetEvent::Exited {
            pid: 1,
            exe: "ckb".into(),
            time: String::new(),
        });
        assert!(!b.view(&snap).unwrap().health.target_up);
    }
}
