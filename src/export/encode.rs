//! The metric contract as code: names, labels, units and bucket bounds, and
//! the two exposition formats (Prometheus text 0.0.4 and OpenMetrics 1.0).
//! Names are an API (README "`ckb-libbpf export`: Prometheus metrics"):
//! change them deliberately.
//!
//! Hand-written rather than through a metrics crate: those keep live metric
//! objects updated per event, while we render a finished snapshot once per
//! interval, histograms included with our own bucket bounds and exact sums;
//! and the 0.0.4 format (what `promtool check metrics` reads) is not what
//! they emit.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write;

use super::view::{CfView, Latency, MetricsView};
use crate::model::hist::{slot_bounds, slot_of};

/// The exposition format of one response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4: the default.
    Text = 0,
    /// OpenMetrics 1.0.0, when the scraper asks for it (Prometheus does).
    OpenMetrics = 1,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// The format an `Accept` header asks for: OpenMetrics when it names
    /// `application/openmetrics-text` (version 1.0.0 or unversioned) with a
    /// quality at least that of plain text, else 0.0.4.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        let (mut om, mut text) = (0.0f64, 0.0f64);
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let (mut q, mut version) = (1.0f64, None);
            for p in parts {
                if let Some((k, v)) = p.split_once('=') {
                    match k.trim().to_ascii_lowercase().as_str() {
                        "q" => q = v.trim().parse().unwrap_or(0.0),
                        "version" => version = Some(v.trim().to_string()),
                        _ => {}
                    }
                }
            }
            match media.as_str() {
                "application/openmetrics-text"
                    if version.as_deref().is_none_or(|v| v == "1.0.0") =>
                {
                    om = om.max(q)
                }
                "text/plain" | "*/*" | "text/*" => text = text.max(q),
                _ => {}
            }
        }
        if om > 0.0 && om >= text {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
}

/// What the exporter shows beyond the default contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Per-peer series (peer = remote IP address), at most this many peers;
    /// the rest are summed into `peer="other"`. None: totals only.
    pub peers: Option<usize>,
    /// Per (database, column family) series, at most this many pairs; the
    /// rest are summed into `cf="other"`. 0: none.
    pub cf_pairs: usize,
}

/// The default cap on (database, column family) pairs, sized for CKB: its
/// chain database has up to 20 families ("0".."19") plus `default` and `*`
/// (batches and transactions span families): 22 pairs; its other databases
/// (up to two more) a few each. 64 leaves room and stays a bounded page.
pub const DEFAULT_CF_PAIRS: usize = 64;

impl Default for Options {
    fn default() -> Options {
        Options {
            peers: None,
            cf_pairs: DEFAULT_CF_PAIRS,
        }
    }
}

/// The latency bucket edges, in ns: every power of two from 2^10 ns
/// (1.02 µs) to 2^34 ns (17.2 s), 25 bounds plus +Inf. Each is an edge of
/// the kernel's log-linear slots, so a coarse bucket is an exact sum of
/// kernel slots.
pub fn bucket_edges() -> Vec<u64> {
    (10..=34).map(|p| 1u64 << p).collect()
}

/// The `le` of a bucket whose slots end at `edge_ns` (exclusive). Latencies
/// are whole nanoseconds, so the bucket holds exactly the values
/// `<= edge_ns - 1`: that is the inclusive bound `le` means. Writing
/// `edge_ns` itself would claim the bucket holds a value equal to the edge,
/// which the next bucket counts.
pub fn le_seconds(edge_ns: u64) -> f64 {
    (edge_ns - 1) as f64 / 1e9
}

/// Cumulative counts at each edge of `edges` (ascending slot edges) from a
/// kernel histogram, capped at `count` so that they never exceed the +Inf
/// bucket (the histogram and the call counter are read a moment apart).
pub fn cumulative(hist: &crate::model::Histogram, edges: &[u64], count: u64) -> Vec<u64> {
    let mut out = Vec::with_capacity(edges.len());
    let mut acc = 0u64;
    let mut s = 0usize;
    for &edge in edges {
        debug_assert_eq!(
            slot_bounds(slot_of(edge)).0,
            edge,
            "{edge} is not a slot edge"
        );
        while s < hist.slots.len() {
            let (lo, w) = slot_bounds(s);
            // The last slot also holds everything above it: only +Inf.
            if s + 1 == hist.slots.len() || lo + w > edge {
                break;
            }
            acc += hist.slots[s];
            s += 1;
        }
        out.push(acc.min(count));
    }
    out
}

/// State kept from one rendering to the next.
#[derive(Debug, Default)]
pub struct State {
    /// The last value of every counter series, and of every histogram series
    /// (count, sum, buckets): a counter must never go backwards, whatever a
    /// source does (a peer row that vanished, an ongoing stall cut short by
    /// a restart). Prometheus would read a decrease as a reset and count the
    /// whole value again.
    floors: HashMap<String, Vec<f64>>,
    /// How often a value had to be held at its floor.
    clamps: u64,
    /// Peers with their own series, in order of arrival: a peer keeps its
    /// series for the life of the exporter, so "other" stays monotonic too.
    peers: BTreeSet<String>,
    /// (database, column family) pairs with their own series, kept for the
    /// life of the exporter like `peers`; and the pairs summed as "other".
    cf_pairs: BTreeSet<(String, String)>,
    cf_folded: BTreeSet<(String, String)>,
}

impl State {
    pub fn clamps(&self) -> u64 {
        self.clamps
    }

    /// Holds `new` at the floor of `key` if any component went down.
    fn hold(&mut self, key: String, new: Vec<f64>) -> Vec<f64> {
        match self.floors.get(&key) {
            Some(old) if old.len() == new.len() && new.iter().zip(old).any(|(n, o)| n < o) => {
                self.clamps += 1;
                old.clone()
            }
            _ => {
                self.floors.insert(key, new.clone());
                new
            }
        }
    }
}

type Labels = Vec<(&'static str, String)>;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

struct Enc<'a> {
    out: String,
    fmt: Format,
    state: &'a mut State,
    edges: Vec<u64>,
}

fn labels_text(labels: &[(&str, String)], extra: Option<(&str, &str)>) -> String {
    let mut all: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend(extra);
    if all.is_empty() {
        return String::new();
    }
    let mut s = String::from("{");
    for (i, (k, v)) in all.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(k);
        s.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => s.push_str("\\\\"),
                '"' => s.push_str("\\\""),
                '\n' => s.push_str("\\n"),
                c => s.push(c),
            }
        }
        s.push('"');
    }
    s.push('}');
    s
}

/// A sample value: integers print as integers (exact beyond 2^53), floats
/// in the shortest form that reads back the same.
fn num(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

impl Enc<'_> {
    /// HELP and TYPE lines. In 0.0.4 a counter's family is named with its
    /// `_total`; in OpenMetrics without it.
    fn head(&mut self, name: &str, kind: Kind, help: &str) {
        let (family, ty) = match (kind, self.fmt) {
            (Kind::Counter, Format::Text) => (format!("{name}_total"), "counter"),
            (Kind::Counter, Format::OpenMetrics) => (name.to_string(), "counter"),
            (Kind::Gauge, _) => (name.to_string(), "gauge"),
            (Kind::Histogram, _) => (name.to_string(), "histogram"),
        };
        // Help texts are ours: no backslash, quote or newline to escape.
        let _ = writeln!(self.out, "# HELP {family} {help}");
        let _ = writeln!(self.out, "# TYPE {family} {ty}");
    }

    /// A counter family; `name` without `_total`.
    fn counter(&mut self, name: &str, help: &str, samples: Vec<(Labels, u64)>) {
        if samples.is_empty() {
            return;
        }
        self.head(name, Kind::Counter, help);
        for (l, v) in samples {
            let lt = labels_text(&l, None);
            let v = self.state.hold(format!("{name}{lt}"), vec![v as f64]);
            let _ = writeln!(self.out, "{name}_total{lt} {}", num(v[0]));
        }
    }

    /// A counter in seconds from a count of ns.
    fn counter_secs(&mut self, name: &str, help: &str, samples: Vec<(Labels, f64)>) {
        if samples.is_empty() {
            return;
        }
        self.head(name, Kind::Counter, help);
        for (l, ns) in samples {
            let lt = labels_text(&l, None);
            let v = self.state.hold(format!("{name}{lt}"), vec![ns / 1e9]);
            let _ = writeln!(self.out, "{name}_total{lt} {}", num(v[0]));
        }
    }

    fn gauge(&mut self, name: &str, help: &str, samples: Vec<(Labels, f64)>) {
        if samples.is_empty() {
            return;
        }
        self.head(name, Kind::Gauge, help);
        for (l, v) in samples {
            let _ = writeln!(self.out, "{name}{} {}", labels_text(&l, None), num(v));
        }
    }

    /// A latency histogram in seconds: cumulative buckets at `le_seconds`
    /// of each edge, +Inf and `_count` the exact call count, `_sum` the
    /// exact total latency.
    fn histogram(&mut self, name: &str, help: &str, samples: Vec<(Labels, &Latency)>) {
        if samples.is_empty() {
            return;
        }
        self.head(name, Kind::Histogram, help);
        for (l, lat) in samples {
            let lt = labels_text(&l, None);
            let mut vals = vec![lat.count as f64, lat.sum_ns as f64 / 1e9];
            vals.extend(
                cumulative(&lat.hist, &self.edges, lat.count)
                    .into_iter()
                    .map(|c| c as f64),
            );
            let vals = self.state.hold(format!("{name}{lt}"), vals);
            for (i, edge) in self.edges.iter().enumerate() {
                let le = num(le_seconds(*edge));
                let lb = labels_text(&l, Some(("le", le.as_str())));
                let _ = writeln!(self.out, "{name}_bucket{lb} {}", num(vals[2 + i]));
            }
            let lb = labels_text(&l, Some(("le", "+Inf")));
            let _ = writeln!(self.out, "{name}_bucket{lb} {}", num(vals[0]));
            let _ = writeln!(self.out, "{name}_sum{lt} {}", num(vals[1]));
            let _ = writeln!(self.out, "{name}_count{lt} {}", num(vals[0]));
        }
    }

    /// Build information: an info metric in OpenMetrics, the customary
    /// `_info` gauge at 1 in 0.0.4.
    fn info(&mut self, name: &str, help: &str, labels: Labels) {
        match self.fmt {
            Format::Text => self.head(&format!("{name}_info"), Kind::Gauge, help),
            Format::OpenMetrics => {
                let _ = writeln!(self.out, "# HELP {name} {help}");
                let _ = writeln!(self.out, "# TYPE {name} info");
            }
        }
        let _ = writeln!(self.out, "{name}_info{} 1", labels_text(&labels, None));
    }
}

fn l1(k: &'static str, v: &str) -> Labels {
    vec![(k, v.to_string())]
}

/// Renders one snapshot. Call once per published snapshot and format, in
/// publication order: `state` keeps counters monotonic across calls.
pub fn render(view: &MetricsView, fmt: Format, opts: &Options, state: &mut State) -> String {
    let mut e = Enc {
        out: String::with_capacity(64 * 1024),
        fmt,
        state,
        edges: bucket_edges(),
    };
    let p = "ckb_libbpf";

    if let Some(r) = &view.rocksdb {
        e.histogram(
            &format!("{p}_rocksdb_op_duration_seconds"),
            "Latency of RocksDB C API calls per operation class; _count is the exact number of calls, _sum the exact total latency.",
            r.ops.iter().map(|o| (l1("op", &o.op), &o.latency)).collect(),
        );
        e.counter(
            &format!("{p}_rocksdb_op_bytes"),
            "Bytes moved by RocksDB calls: value sizes for GET, keys and values for PUT, keys for DELETE.",
            r.ops.iter().filter_map(|o| Some((l1("op", &o.op), o.bytes?))).collect(),
        );
        e.counter(
            &format!("{p}_rocksdb_op_misses"),
            "RocksDB reads that found no value (hit ratio = 1 - misses / calls).",
            r.ops
                .iter()
                .filter_map(|o| Some((l1("op", &o.op), o.misses?)))
                .collect(),
        );
        if opts.cf_pairs > 0 {
            cf_series(&mut e, &r.cfs, opts.cf_pairs);
        }
    }

    if let Some(b) = &view.background {
        let by_kind = |f: &dyn Fn(&super::view::BgKindView) -> u64| -> Vec<(Labels, u64)> {
            b.kinds.iter().map(|k| (l1("kind", k.kind), f(k))).collect()
        };
        e.counter(
            &format!("{p}_rocksdb_background_jobs_started"),
            "RocksDB background calls started: compaction and flush jobs, write stalls (DelayWrite), stop and delay tokens.",
            by_kind(&|k| k.started),
        );
        e.counter(
            &format!("{p}_rocksdb_background_jobs_finished"),
            "RocksDB background calls that returned.",
            by_kind(&|k| k.finished),
        );
        e.gauge(
            &format!("{p}_rocksdb_background_jobs_running"),
            "RocksDB background calls running at the snapshot.",
            b.kinds
                .iter()
                .map(|k| (l1("kind", k.kind), k.running as f64))
                .collect(),
        );
        e.counter_secs(
            &format!("{p}_rocksdb_background_job_seconds"),
            "Total duration of finished RocksDB compactions, flushes and write stalls.",
            b.kinds
                .iter()
                .filter_map(|k| Some((l1("kind", k.kind), k.sum_ns? as f64)))
                .collect(),
        );
        let timed: Vec<(&super::view::BgKindView, Latency)> = b
            .kinds
            .iter()
            .filter_map(|k| {
                let lat = Latency {
                    count: k.finished,
                    sum_ns: k.sum_ns?,
                    hist: k.hist.clone()?,
                };
                Some((k, lat))
            })
            .collect();
        e.histogram(
            &format!("{p}_rocksdb_background_job_duration_seconds"),
            "Duration of finished RocksDB compactions, flushes and write stalls.",
            timed.iter().map(|(k, l)| (l1("kind", k.kind), l)).collect(),
        );
        e.counter_secs(
            &format!("{p}_rocksdb_write_stall_seconds"),
            "Time RocksDB held writers back (DelayWrite), ongoing stalls included.",
            vec![(vec![], b.stalled_ns as f64)],
        );
    }

    if let Some(a) = &view.anomalies {
        let pair =
            |op: &str, cause: &str| vec![("op", op.to_string()), ("cause", cause.to_string())];
        e.counter(
            &format!("{p}_anomalies"),
            "Latency anomalies raised, by operation class and probable cause.",
            a.raised
                .iter()
                .map(|((op, c), n)| (pair(op, c), *n))
                .collect(),
        );
        e.gauge(
            &format!("{p}_anomalies_active"),
            "Latency anomalies alerting at the snapshot (1) or not (0).",
            a.raised
                .keys()
                .map(|(op, c)| {
                    let on = a.active.contains(&(op.clone(), *c));
                    (pair(op, c), if on { 1.0 } else { 0.0 })
                })
                .collect(),
        );
    }

    if let Some(n) = &view.net {
        let one = |v: u64| vec![(vec![], v)];
        e.counter(
            &format!("{p}_net_sent_bytes"),
            "TCP payload bytes the node sent.",
            one(n.sent_bytes),
        );
        e.counter(
            &format!("{p}_net_received_bytes"),
            "TCP payload bytes the node received.",
            one(n.received_bytes),
        );
        e.counter(
            &format!("{p}_net_connections_opened"),
            "TCP connections established, by direction (out: the node connected, in: it accepted).",
            vec![
                (l1("direction", "out"), n.connects),
                (l1("direction", "in"), n.accepts),
            ],
        );
        e.counter(
            &format!("{p}_net_connections_closed"),
            "TCP connections closed.",
            one(n.closes),
        );
        e.counter(
            &format!("{p}_net_connect_failures"),
            "Outgoing TCP connections that failed.",
            one(n.connect_failures),
        );
        e.counter(
            &format!("{p}_net_retransmits"),
            "TCP segments the node retransmitted.",
            one(n.retransmits),
        );
        e.gauge(
            &format!("{p}_net_connections_open"),
            "TCP connections open at the snapshot.",
            vec![(vec![], n.open_connections as f64)],
        );
        if let Some(cap) = opts.peers {
            peer_series(&mut e, n, cap);
        }
    }

    if let Some(s) = &view.syscall {
        let rc = |r: &str, c: &str| vec![("role", r.to_string()), ("category", c.to_string())];
        e.counter(
            &format!("{p}_syscalls"),
            "Syscalls the node made, by thread role and syscall category.",
            s.cells
                .iter()
                .map(|c| (rc(&c.role, c.category), c.calls))
                .collect(),
        );
        e.counter_secs(
            &format!("{p}_syscall_seconds"),
            "Time spent in syscalls, by thread role and syscall category.",
            s.cells
                .iter()
                .map(|c| (rc(&c.role, c.category), c.sum_ns as f64))
                .collect(),
        );
        e.counter(
            &format!("{p}_syscall_errors"),
            "Syscalls that returned an error, by thread role and syscall category.",
            s.cells
                .iter()
                .map(|c| (rc(&c.role, c.category), c.errors))
                .collect(),
        );
        e.counter(
            &format!("{p}_syscall_read_bytes"),
            "Bytes read by syscalls (files and sockets), by thread role.",
            s.roles
                .iter()
                .map(|r| (l1("role", &r.role), r.read))
                .collect(),
        );
        e.counter(
            &format!("{p}_syscall_written_bytes"),
            "Bytes written by syscalls (files and sockets), by thread role.",
            s.roles
                .iter()
                .map(|r| (l1("role", &r.role), r.written))
                .collect(),
        );
        e.gauge(
            &format!("{p}_syscall_threads"),
            "Threads of the node per role at the snapshot.",
            s.roles
                .iter()
                .filter_map(|r| Some((l1("role", &r.role), r.threads? as f64)))
                .collect(),
        );
        if let Some(f) = &s.fsync {
            e.histogram(
                &format!("{p}_syscall_fsync_duration_seconds"),
                "Latency of fsync and fdatasync, every thread.",
                vec![(vec![], f)],
            );
        }
    }

    let h = &view.health;
    let per_layer = |f: &dyn Fn(&super::view::LayerHealth) -> u64| -> Vec<(Labels, u64)> {
        h.layers
            .iter()
            .map(|l| (l1("layer", l.layer), f(l)))
            .collect()
    };
    e.counter(
        &format!("{p}_lost_events"),
        "Events lost on the way to userspace (ring buffer or channel full), by layer.",
        per_layer(&|l| l.lost_events),
    );
    e.counter(
        &format!("{p}_dropped_observations"),
        "Observations the kernel side could not record (a map full), by layer.",
        per_layer(&|l| l.dropped),
    );
    e.gauge(
        &format!("{p}_attached_programs"),
        "BPF programs attached, by layer.",
        h.layers
            .iter()
            .filter_map(|l| Some((l1("layer", l.layer), l.attached_programs? as f64)))
            .collect(),
    );
    if let Some(hits) = h.probe_hits {
        e.counter(
            &format!("{p}_probe_hits"),
            "Uprobe hits in the node, by cost class (emulated or single-stepped first instruction).",
            vec![
                (l1("class", "emulated"), hits.emulated),
                (l1("class", "single_stepped"), hits.single_stepped),
            ],
        );
    }
    if let Some(ns) = h.probe_cost_ns {
        e.counter_secs(
            &format!("{p}_probe_cost_seconds"),
            "Estimated CPU time the probes took from the node (hits times the per-hit cost measured at start).",
            vec![(vec![], ns)],
        );
    }
    e.counter(
        &format!("{p}_probe_syscalls"),
        "Syscalls the tool's own probes cause in the node (uretprobe).",
        h.probe_syscalls
            .iter()
            .map(|(n, c, _)| (l1("syscall", n), *c))
            .collect(),
    );
    e.counter_secs(
        &format!("{p}_probe_syscall_seconds"),
        "Time the node spent in syscalls the tool's own probes cause.",
        h.probe_syscalls
            .iter()
            .map(|(n, _, ns)| (l1("syscall", n), *ns as f64))
            .collect(),
    );
    e.counter(
        &format!("{p}_target_restarts"),
        "Times the traced node exited and was traced again (restart or upgrade).",
        vec![(vec![], h.target_restarts)],
    );
    e.gauge(
        &format!("{p}_target_up"),
        "1 while a node process is traced, 0 while waiting for it to come back.",
        vec![(vec![], if h.target_up { 1.0 } else { 0.0 })],
    );
    e.gauge(
        &format!("{p}_capture_elapsed_seconds"),
        "Seconds since the capture began.",
        vec![(vec![], h.elapsed_secs)],
    );
    e.gauge(
        &format!("{p}_last_update_timestamp_seconds"),
        "Unix time of the snapshot this scrape shows.",
        vec![(vec![], h.timestamp_secs)],
    );
    e.info(
        &format!("{p}_build"),
        "The ckb-libbpf version.",
        l1("version", env!("CARGO_PKG_VERSION")),
    );
    // Last: it counts the holds made while rendering the families above.
    let clamps = e.state.clamps;
    e.head(
        &format!("{p}_monotonic_holds"),
        Kind::Counter,
        "Times a cumulative figure went down in the source and was held at its previous value (0 unless a layer misbehaves).",
    );
    let _ = writeln!(e.out, "{p}_monotonic_holds_total {clamps}");
    if fmt == Format::OpenMetrics {
        e.out.push_str("# EOF\n");
    }
    e.out
}

/// Per (database, column family, class) series, at most `cap` (database,
/// family) pairs: the first pairs seen (the busiest first when several
/// arrive at once) keep their series; the calls of later pairs are summed
/// under `cf="other"` of their database, or `db="other"` too when that
/// database has no pair of its own. At most `cap` named pairs plus one
/// "other" per database: bounded.
fn cf_series(e: &mut Enc, cfs: &[CfView], cap: usize) {
    let mut fresh: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for c in cfs {
        if !e.state.cf_pairs.contains(&(c.db.clone(), c.cf.clone())) {
            *fresh.entry((c.db.as_str(), c.cf.as_str())).or_default() += c.count;
        }
    }
    let mut fresh: Vec<((&str, &str), u64)> = fresh.into_iter().collect();
    // Stable: equally busy pairs in name order.
    fresh.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    for ((db, cf), _) in fresh {
        let pair = (db.to_string(), cf.to_string());
        if e.state.cf_pairs.len() < cap {
            e.state.cf_pairs.insert(pair);
        } else {
            e.state.cf_folded.insert(pair);
        }
    }
    let own_dbs: BTreeSet<&str> = e.state.cf_pairs.iter().map(|(d, _)| d.as_str()).collect();
    #[derive(Default)]
    struct Cell {
        count: u64,
        sum_ns: u64,
        bytes: Option<u64>,
        misses: Option<u64>,
    }
    let add = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
    };
    let mut cells: BTreeMap<(String, String, String), Cell> = BTreeMap::new();
    for c in cfs {
        let (db, cf) = if e.state.cf_pairs.contains(&(c.db.clone(), c.cf.clone())) {
            (c.db.clone(), c.cf.clone())
        } else if own_dbs.contains(c.db.as_str()) {
            (c.db.clone(), "other".to_string())
        } else {
            ("other".to_string(), "other".to_string())
        };
        let cell = cells.entry((db, cf, c.op.clone())).or_default();
        cell.count += c.count;
        cell.sum_ns += c.sum_ns;
        cell.bytes = add(cell.bytes, c.bytes);
        cell.misses = add(cell.misses, c.misses);
    }
    let labels = |(db, cf, op): &(String, String, String)| -> Labels {
        vec![("db", db.clone()), ("cf", cf.clone()), ("op", op.clone())]
    };
    let p = "ckb_libbpf";
    e.counter(
        &format!("{p}_rocksdb_cf_calls"),
        "RocksDB calls per database (the directory the node opened), column family and operation class (capped: pairs beyond the cap are summed under cf other).",
        cells.iter().map(|(k, c)| (labels(k), c.count)).collect(),
    );
    e.counter_secs(
        &format!("{p}_rocksdb_cf_duration_seconds"),
        "Exact total latency of RocksDB calls per database, column family and operation class (capped).",
        cells
            .iter()
            .map(|(k, c)| (labels(k), c.sum_ns as f64))
            .collect(),
    );
    e.counter(
        &format!("{p}_rocksdb_cf_bytes"),
        "Bytes moved by RocksDB calls per database, column family and operation class (GET, PUT, DELETE; capped).",
        cells
            .iter()
            .filter_map(|(k, c)| Some((labels(k), c.bytes?)))
            .collect(),
    );
    e.counter(
        &format!("{p}_rocksdb_cf_misses"),
        "RocksDB reads that found no value, per database and column family (capped).",
        cells
            .iter()
            .filter_map(|(k, c)| Some((labels(k), c.misses?)))
            .collect(),
    );
    let folded = e.state.cf_folded.len() as f64;
    e.gauge(
        &format!("{p}_rocksdb_cf_folded_pairs"),
        "(database, column family) pairs beyond the cap, whose calls are summed under cf other (0 unless the cap is too small).",
        vec![(vec![], folded)],
    );
}

/// Per-peer series, at most `cap` peers; the first peers seen (the busiest
/// first when several arrive at once) keep their series, the rest are summed
/// into `peer="other"`.
fn peer_series(e: &mut Enc, n: &super::view::NetView, cap: usize) {
    let mut fresh: Vec<&super::view::PeerView> = n
        .peers
        .iter()
        .filter(|p| !e.state.peers.contains(&p.peer))
        .collect();
    fresh.sort_by_key(|p| std::cmp::Reverse(p.sent_bytes + p.received_bytes));
    for p in fresh {
        if e.state.peers.len() >= cap {
            break;
        }
        e.state.peers.insert(p.peer.clone());
    }
    let mut rows: std::collections::BTreeMap<String, super::view::PeerView> = Default::default();
    for p in &e.state.peers {
        rows.insert(p.clone(), Default::default());
    }
    for p in &n.peers {
        let key = if e.state.peers.contains(&p.peer) {
            p.peer.clone()
        } else {
            "other".to_string()
        };
        let r = rows.entry(key).or_default();
        r.sent_bytes += p.sent_bytes;
        r.received_bytes += p.received_bytes;
        r.retransmits += p.retransmits;
        r.open += p.open;
    }
    let p = "ckb_libbpf";
    let each = |f: &dyn Fn(&super::view::PeerView) -> u64| -> Vec<(Labels, u64)> {
        rows.iter().map(|(k, r)| (l1("peer", k), f(r))).collect()
    };
    let (sent, recv, retr) = (
        each(&|r| r.sent_bytes),
        each(&|r| r.received_bytes),
        each(&|r| r.retransmits),
    );
    let open: Vec<(Labels, f64)> = rows
        .iter()
        .map(|(k, r)| (l1("peer", k), r.open as f64))
        .collect();
    e.counter(
        &format!("{p}_net_peer_sent_bytes"),
        "TCP payload bytes sent, per peer IP address (capped: peers beyond the cap are summed under peer other).",
        sent,
    );
    e.counter(
        &format!("{p}_net_peer_received_bytes"),
        "TCP payload bytes received, per peer IP address (capped).",
        recv,
    );
    e.counter(
        &format!("{p}_net_peer_retransmits"),
        "TCP segments retransmitted, per peer IP address (capped).",
        retr,
    );
    e.gauge(
        &format!("{p}_net_peer_connections_open"),
        "TCP connections open at the snapshot, per peer IP address (capped).",
        open,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::view::{NetView, OpView, PeerView, RocksdbView};

    fn lat(values: &[u64]) -> Latency {
        let mut l = Latency::default();
        for &v in values {
            l.count += 1;
            l.sum_ns += v;
            l.hist.record(v);
        }
        l
    }

    /// The samples of `name` (HELP/TYPE lines skipped), as (labels, value).
    fn samples<'a>(text: &'a str, name: &str) -> Vec<(&'a str, &'a str)> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.strip_prefix(name))
            .filter(|rest| rest.starts_with(['{', ' ']))
            .filter_map(|rest| rest.rsplit_once(' '))
            .collect()
    }

    #[test]
    fn edges_are_slot_edges_powers_of_two_from_1us_to_17s() {
        let e = bucket_edges();
        assert_eq!(e.len(), 25);
        assert_eq!((e[0], e[24]), (1024, 17_179_869_184));
        for &x in &e {
            assert_eq!(slot_bounds(slot_of(x)).0, x);
        }
    }

    #[test]
    fn a_value_on_an_edge_counts_in_the_bucket_above() {
        // 1023 ns is the largest value of the slots below the 1024 edge,
        // 1024 the smallest above it.
        let l = lat(&[1023, 1024, 2047, 2048]);
        assert_eq!(cumulative(&l.hist, &[1024, 2048, 4096], 4), vec![1, 3, 4]);
        assert_eq!(num(le_seconds(1024)), "0.000001023");
        let mut st = State::default();
        let view = MetricsView {
            rocksdb: Some(RocksdbView {
                ops: vec![OpView {
                    op: "GET".into(),
                    latency: l,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let t = render(&view, Format::Text, &Options::default(), &mut st);
        let b = samples(&t, "ckb_libbpf_rocksdb_op_duration_seconds_bucket");
        assert_eq!(b[0], ("{op=\"GET\",le=\"0.000001023\"}", "1"));
        assert_eq!(b[1], ("{op=\"GET\",le=\"0.000002047\"}", "3"));
        assert_eq!(b[2], ("{op=\"GET\",le=\"0.000004095\"}", "4"));
    }

    #[test]
    fn buckets_are_cumulative_and_end_at_the_exact_count() {
        // Values across the whole range, including beyond the last edge
        // (only in +Inf) and in the kernel's catch-all slot.
        let mut vals = vec![0, 1, 3, 999, 1_000_000, 20_000_000_000, 3_000_000_000_000];
        let mut x = 7u64;
        for _ in 0..2000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            vals.push((x >> 30) % 40_000_000_000);
        }
        let l = lat(&vals);
        let sum = l.sum_ns;
        let c = cumulative(&l.hist, &bucket_edges(), l.count);
        assert!(c.windows(2).all(|w| w[0] <= w[1]));
        let edges = bucket_edges();
        for (i, edge) in edges.iter().enumerate() {
            let exact = vals.iter().filter(|&&v| v < *edge).count() as u64;
            assert_eq!(c[i], exact, "edge {edge}");
        }
        let mut st = State::default();
        let view = MetricsView {
            rocksdb: Some(RocksdbView {
                ops: vec![OpView {
                    op: "PUT".into(),
                    latency: l,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let t = render(&view, Format::Text, &Options::default(), &mut st);
        let n = vals.len().to_string();
        let b = samples(&t, "ckb_libbpf_rocksdb_op_duration_seconds_bucket");
        assert_eq!(b.len(), 26);
        assert_eq!(b[25], ("{op=\"PUT\",le=\"+Inf\"}", n.as_str()));
        let count = samples(&t, "ckb_libbpf_rocksdb_op_duration_seconds_count");
        assert_eq!(count, vec![("{op=\"PUT\"}", n.as_str())]);
        let s = samples(&t, "ckb_libbpf_rocksdb_op_duration_seconds_sum");
        assert_eq!(s[0].1.parse::<f64>().unwrap(), sum as f64 / 1e9);
    }

    #[test]
    fn buckets_never_exceed_the_count() {
        // The histogram was read a moment after the counter: one more.
        let mut l = lat(&[500, 600]);
        l.count = 1;
        assert_eq!(cumulative(&l.hist, &bucket_edges(), l.count)[0], 1);
    }

    #[test]
    fn exact_text_of_a_small_snapshot() {
        let mut net = NetView {
            sent_bytes: 1000,
            received_bytes: 2000,
            connects: 3,
            accepts: 1,
            closes: 2,
            connect_failures: 0,
            retransmits: 5,
            open_connections: 2,
            peers: Vec::new(),
        };
        net.peers.push(PeerView {
            peer: "10.0.0.1".into(),
            sent_bytes: 1000,
            ..Default::default()
        });
        let view = MetricsView {
            net: Some(net),
            health: crate::export::view::Health {
                layers: vec![crate::export::view::LayerHealth {
                    layer: "net",
                    lost_events: 0,
                    dropped: 1,
                    attached_programs: Some(6),
                }],
                target_restarts: 1,
                target_up: true,
                elapsed_secs: 12.5,
                timestamp_secs: 1_764_400_000.25,
                ..Default::default()
            },
            ..Default::default()
        };
        let v = env!("CARGO_PKG_VERSION");
        let t = render(
            &view,
            Format::Text,
            &Options::default(),
            &mut State::default(),
        );
        let want = format!(
            "\
# HELP ckb_libbpf_net_sent_bytes_total TCP payload bytes the node sent.
# TYPE ckb_libbpf_net_sent_bytes_total counter
ckb_libbpf_net_sent_bytes_total 1000
# HELP ckb_libbpf_net_received_bytes_total TCP payload bytes the node received.
# TYPE ckb_libbpf_net_received_bytes_total counter
ckb_libbpf_net_received_bytes_total 2000
# HELP ckb_libbpf_net_connections_opened_total TCP connections established, by direction (out: the node connected, in: it accepted).
# TYPE ckb_libbpf_net_connections_opened_total counter
ckb_libbpf_net_connections_opened_total{{direction=\"out\"}} 3
ckb_libbpf_net_connections_opened_total{{direction=\"in\"}} 1
# HELP ckb_libbpf_net_connections_closed_total TCP connections closed.
# TYPE ckb_libbpf_net_connections_closed_total counter
ckb_libbpf_net_connections_closed_total 2
# HELP ckb_libbpf_net_connect_failures_total Outgoing TCP connections that failed.
# TYPE ckb_libbpf_net_connect_failures_total counter
ckb_libbpf_net_connect_failures_total 0
# HELP ckb_libbpf_net_retransmits_total TCP segments the node retransmitted.
# TYPE ckb_libbpf_net_retransmits_total counter
ckb_libbpf_net_retransmits_total 5
# HELP ckb_libbpf_net_connections_open TCP connections open at the snapshot.
# TYPE ckb_libbpf_net_connections_open gauge
ckb_libbpf_net_connections_open 2
# HELP ckb_libbpf_lost_events_total Events lost on the way to userspace (ring buffer or channel full), by layer.
# TYPE ckb_libbpf_lost_events_total counter
ckb_libbpf_lost_events_total{{layer=\"net\"}} 0
# HELP ckb_libbpf_dropped_observations_total Observations the kernel side could not record (a map full), by layer.
# TYPE ckb_libbpf_dropped_observations_total counter
ckb_libbpf_dropped_observations_total{{layer=\"net\"}} 1
# HELP ckb_libbpf_attached_programs BPF programs attached, by layer.
# TYPE ckb_libbpf_attached_programs gauge
ckb_libbpf_attached_programs{{layer=\"net\"}} 6
# HELP ckb_libbpf_target_restarts_total Times the traced node exited and was traced again (restart or upgrade).
# TYPE ckb_libbpf_target_restarts_total counter
ckb_libbpf_target_restarts_total 1
# HELP ckb_libbpf_target_up 1 while a node process is traced, 0 while waiting for it to come back.
# TYPE ckb_libbpf_target_up gauge
ckb_libbpf_target_up 1
# HELP ckb_libbpf_capture_elapsed_seconds Seconds since the capture began.
# TYPE ckb_libbpf_capture_elapsed_seconds gauge
ckb_libbpf_capture_elapsed_seconds 12.5
# HELP ckb_libbpf_last_update_timestamp_seconds Unix time of the snapshot this scrape shows.
# TYPE ckb_libbpf_last_update_timestamp_seconds gauge
ckb_libbpf_last_update_timestamp_seconds 1764400000.25
# HELP ckb_libbpf_build_info The ckb-libbpf version.
# TYPE ckb_libbpf_build_info gauge
ckb_libbpf_build_info{{version=\"{v}\"}} 1
# HELP ckb_libbpf_monotonic_holds_total Times a cumulative figure went down in the source and was held at its previous value (0 unless a layer misbehaves).
# TYPE ckb_libbpf_monotonic_holds_total counter
ckb_libbpf_monotonic_holds_total 0
"
        );
        assert_eq!(t, want);

        // OpenMetrics: counter families without _total, an info family,
        // the same samples, # EOF.
        let om = render(
            &view,
            Format::OpenMetrics,
            &Options::default(),
            &mut State::default(),
        );
        assert!(om.contains(
            "# TYPE ckb_libbpf_net_sent_bytes counter\nckb_libbpf_net_sent_bytes_total 1000\n"
        ));
        assert!(om.contains(&format!(
            "# TYPE ckb_libbpf_build info\nckb_libbpf_build_info{{version=\"{v}\"}} 1\n"
        )));
        assert!(om.ends_with("ckb_libbpf_monotonic_holds_total 0\n# EOF\n"));
        let strip = |s: &str| -> Vec<String> {
            s.lines()
                .filter(|l| !l.starts_with('#'))
                .map(String::from)
                .collect()
        };
        assert_eq!(strip(&om), strip(&t));
    }

    #[test]
    fn counters_are_held_when_a_source_goes_down() {
        let mut st = State::default();
        let mk = |sent: u64, get: &[u64]| MetricsView {
            net: Some(NetView {
                sent_bytes: sent,
                ..Default::default()
            }),
            rocksdb: Some(RocksdbView {
                ops: vec![OpView {
                    op: "GET".into(),
                    latency: lat(get),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let o = Options::default();
        render(&mk(100, &[5000, 6000]), Format::Text, &o, &mut st);
        let t = render(&mk(40, &[5000]), Format::Text, &o, &mut st);
        assert_eq!(samples(&t, "ckb_libbpf_net_sent_bytes_total")[0].1, "100");
        assert_eq!(
            samples(&t, "ckb_libbpf_rocksdb_op_duration_seconds_count")[0].1,
            "2"
        );
        assert_eq!(samples(&t, "ckb_libbpf_monotonic_holds_total")[0].1, "2");
        let t = render(&mk(150, &[5000, 6000, 7000]), Format::Text, &o, &mut st);
        assert_eq!(samples(&t, "ckb_libbpf_net_sent_bytes_total")[0].1, "150");
        assert_eq!(
            samples(&t, "ckb_libbpf_rocksdb_op_duration_seconds_count")[0].1,
            "3"
        );
    }

    #[test]
    fn peers_are_capped_and_keep_their_series() {
        let peer = |ip: &str, sent: u64| PeerView {
            peer: ip.into(),
            sent_bytes: sent,
            ..Default::default()
        };
        let mk = |peers: Vec<PeerView>| MetricsView {
            net: Some(NetView {
                peers,
                ..Default::default()
            }),
            ..Default::default()
        };
        let o = Options {
            peers: Some(2),
            ..Options::default()
        };
        let mut st = State::default();
        let none = render(
            &mk(vec![peer("10.0.0.1", 1)]),
            Format::Text,
            &Options::default(),
            &mut State::default(),
        );
        assert!(!none.contains("peer="), "per-peer series are opt-in");
        let t = render(
            &mk(vec![
                peer("10.0.0.1", 10),
                peer("10.0.0.2", 30),
                peer("10.0.0.3", 20),
            ]),
            Format::Text,
            &o,
            &mut st,
        );
        let s = samples(&t, "ckb_libbpf_net_peer_sent_bytes_total");
        assert_eq!(
            s,
            vec![
                ("{peer=\"10.0.0.2\"}", "30"),
                ("{peer=\"10.0.0.3\"}", "20"),
                ("{peer=\"other\"}", "10")
            ]
        );
        // A newcomer, however busy, goes to "other"; the named keep theirs.
        let t = render(
            &mk(vec![
                peer("10.0.0.1", 10),
                peer("10.0.0.2", 30),
                peer("10.0.0.9", 99),
            ]),
            Format::Text,
            &o,
            &mut st,
        );
        let s = samples(&t, "ckb_libbpf_net_peer_sent_bytes_total");
        assert_eq!(
            s,
            vec![
                ("{peer=\"10.0.0.2\"}", "30"),
                ("{peer=\"10.0.0.3\"}", "20"),
                ("{peer=\"other\"}", "109")
            ]
        );
    }

    #[test]
    fn cf_pairs_are_capped_and_keep_their_series() {
        let cell = |db: &str, cf: &str, op: &str, n: u64| CfView {
            db: db.into(),
            cf: cf.into(),
            op: op.into(),
            count: n,
            sum_ns: 1000 * n,
            bytes: (op == "GET").then_some(10 * n),
            misses: (op == "GET").then_some(n / 2),
        };
        let mk = |cfs: Vec<CfView>| MetricsView {
            rocksdb: Some(RocksdbView {
                cfs,
                ..Default::default()
            }),
            ..Default::default()
        };
        let o = Options {
            cf_pairs: 2,
            ..Options::default()
        };
        let mut st = State::default();
        let t = render(
            &mk(vec![
                cell("/d/a", "x", "GET", 4),
                cell("/d/a", "x", "PUT", 1),
                cell("/d/a", "y", "GET", 9),
                cell("/d/b", "z", "GET", 2),
            ]),
            Format::Text,
            &o,
            &mut st,
        );
        // The two busiest pairs keep their series; /d/b has none: db other.
        assert_eq!(
            samples(&t, "ckb_libbpf_rocksdb_cf_calls_total"),
            vec![
                ("{db=\"/d/a\",cf=\"x\",op=\"GET\"}", "4"),
                ("{db=\"/d/a\",cf=\"x\",op=\"PUT\"}", "1"),
                ("{db=\"/d/a\",cf=\"y\",op=\"GET\"}", "9"),
                ("{db=\"other\",cf=\"other\",op=\"GET\"}", "2"),
            ]
        );
        assert_eq!(
            samples(&t, "ckb_libbpf_rocksdb_cf_duration_seconds_total")[0],
            ("{db=\"/d/a\",cf=\"x\",op=\"GET\"}", "0.000004")
        );
        // Bytes and misses only where the class has them.
        assert_eq!(samples(&t, "ckb_libbpf_rocksdb_cf_bytes_total").len(), 3);
        assert_eq!(
            samples(&t, "ckb_libbpf_rocksdb_cf_misses_total")[1],
            ("{db=\"/d/a\",cf=\"y\",op=\"GET\"}", "4")
        );
        assert_eq!(
            samples(&t, "ckb_libbpf_rocksdb_cf_folded_pairs"),
            vec![("", "1")]
        );
        // A newcomer of a named database, however busy, goes to that
        // database's "other"; the named pairs keep theirs.
        let t = render(
            &mk(vec![
                cell("/d/a", "x", "GET", 5),
                cell("/d/a", "y", "GET", 9),
                cell("/d/a", "w", "GET", 99),
                cell("/d/b", "z", "GET", 3),
            ]),
            Format::Text,
            &o,
            &mut st,
        );
        assert_eq!(
            samples(&t, "ckb_libbpf_rocksdb_cf_calls_total"),
            vec![
                ("{db=\"/d/a\",cf=\"other\",op=\"GET\"}", "99"),
                ("{db=\"/d/a\",cf=\"x\",op=\"GET\"}", "5"),
                ("{db=\"/d/a\",cf=\"y\",op=\"GET\"}", "9"),
                ("{db=\"other\",cf=\"other\",op=\"GET\"}", "3"),
            ]
        );
        assert_eq!(
            samples(&t, "ckb_libbpf_rocksdb_cf_folded_pairs"),
            vec![("", "2")]
        );
        // 0: no per-family series at all.
        let none = Options {
            cf_pairs: 0,
            ..Options::default()
        };
        let t = render(
            &mk(vec![cell("/d/a", "x", "GET", 1)]),
            Format::Text,
            &none,
            &mut State::default(),
        );
        assert!(!t.contains("_rocksdb_cf_"), "{t}");
    }

    #[test]
    fn accept_headers() {
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prom)), Format::OpenMetrics);
        assert_eq!(Format::negotiate(None), Format::Text);
        assert_eq!(Format::negotiate(Some("*/*")), Format::Text);
        assert_eq!(Format::negotiate(Some("text/plain")), Format::Text);
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text")),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;q=0,text/plain")),
            Format::Text
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text; version=0.0.1")),
            Format::Text
        );
    }
}
