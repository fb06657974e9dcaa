//! The net layer's plain data: connections, lifecycle events, per-peer rows,
//! totals and the disconnect-rate detector. No BPF, no terminal.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use std::time::Instant;

use super::{Gap, Gaps};
use crate::clock::{now_rfc3339, Clock};

/// One end of a TCP connection. IPv4-mapped IPv6 addresses (a dual-stack
/// socket talking IPv4) are shown as the IPv4 address they carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub addr: IpAddr,
    pub port: u16,
}

impl Endpoint {
    /// From the kernel's layout: address bytes in network order (IPv4 in the
    /// first four), port in host order.
    pub fn from_raw(family: u16, addr: &[u8; 16], port: u16) -> Endpoint {
        let addr = if family == AF_INET6 {
            let v6 = Ipv6Addr::from(*addr);
            v6.to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6))
        } else {
            IpAddr::V4(Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]))
        };
        Endpoint { addr, port }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.port),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.port),
        }
    }
}

pub const AF_INET6: u16 = 10;

/// How a connection began, as far as the capture saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dir {
    /// Already open when tracing began (learned at its first send/recv).
    Existing,
    Out,
    In,
}

impl Dir {
    pub fn from_u8(v: u8) -> Dir {
        match v {
            1 => Dir::Out,
            2 => Dir::In,
            _ => Dir::Existing,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Dir::Existing => "existing",
            Dir::Out => "out",
            Dir::In => "in",
        }
    }
}

/// A connection's identity: the kernel socket and when we first saw it
/// (socket memory is reused, the pair is not).
pub type ConnId = (u64, u64);

/// One traced connection, cumulative since the capture first saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct Conn {
    pub sk: u64,
    pub start_ns: u64,
    pub tgid: u32,
    pub dir: Dir,
    pub established: bool,
    pub remote: Endpoint,
    pub local: Endpoint,
    pub tx_bytes: u64,
    pub rx_bytes: u64,
    pub retrans: u64,
    pub srtt_us: u32,
}

impl Conn {
    pub fn id(&self) -> ConnId {
        (self.sk, self.start_ns)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Connect,
    Accept,
    Close,
    ConnectFailed,
}

impl EventKind {
    pub fn from_u8(v: u8) -> Option<EventKind> {
        Some(match v {
            0 => EventKind::Connect,
            1 => EventKind::Accept,
            2 => EventKind::Close,
            3 => EventKind::ConnectFailed,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Connect => "connect",
            EventKind::Accept => "accept",
            EventKind::Close => "close",
            EventKind::ConnectFailed => "connect-failed",
        }
    }
}

/// A lifecycle event; `conn` carries the connection's final counters on
/// close.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnEvent {
    pub ts_ns: u64,
    pub kind: EventKind,
    pub conn: Conn,
}

impl ConnEvent {
    pub fn duration_ns(&self) -> u64 {
        self.ts_ns.saturating_sub(self.conn.start_ns)
    }
}

/// A lifecycle event as views print it.
#[derive(Clone, Debug, PartialEq)]
pub struct EventLine {
    /// Wall-clock time, RFC 3339 with milliseconds.
    pub time: String,
    pub kind: EventKind,
    pub pid: u32,
    pub peer: String,
    pub local: String,
    pub dir: Dir,
    /// Close events: how long the connection lived (since first seen).
    pub duration_secs: Option<f64>,
    pub tx_bytes: u64,
    pub rx_bytes: u64,
    pub retrans: u64,
}

/// Cumulative kernel counters (`enum net_total`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub tx_bytes: u64,
    pub rx_bytes: u64,
    pub connects: u64,
    pub accepts: u64,
    pub closes: u64,
    pub connect_failures: u64,
    pub retrans: u64,
    pub inserts: u64,
    pub deletes: u64,
    pub lost_events: u64,
}

impl Totals {
    pub fn from_array(t: &[u64]) -> Totals {
        let g = |i: usize| t.get(i).copied().unwrap_or(0);
        Totals {
            tx_bytes: g(0),
            rx_bytes: g(1),
            connects: g(2),
            accepts: g(3),
            closes: g(4),
            connect_failures: g(5),
            retrans: g(6),
            inserts: g(7),
            deletes: g(8),
            lost_events: g(9),
        }
    }

    /// Adds `o`: the counters of another session (a restarted target's
    /// maps start from zero).
    pub fn add(&mut self, o: &Totals) {
        self.tx_bytes += o.tx_bytes;
        self.rx_bytes += o.rx_bytes;
        self.connects += o.connects;
        self.accepts += o.accepts;
        self.closes += o.closes;
        self.connect_failures += o.connect_failures;
        self.retrans += o.retrans;
        self.inserts += o.inserts;
        self.deletes += o.deletes;
        self.lost_events += o.lost_events;
    }
}

/// One remote peer (address:port) over one span.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerRow {
    pub peer: Endpoint,
    /// Directions of its connections ("out", "in", "existing", joined by /).
    pub dir: String,
    /// Connections open at the end of the span.
    pub live: u32,
    /// Connections closed so far in the capture.
    pub closed: u32,
    /// Seconds since its oldest open connection was first seen.
    pub age_secs: Option<f64>,
    /// Over the whole capture so far.
    pub tx_bytes: u64,
    pub rx_bytes: u64,
    /// Over this span.
    pub tx_per_sec: f64,
    pub rx_per_sec: f64,
    pub retrans: u64,
    pub srtt_us: Option<u32>,
}

/// A disconnect-rate alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    /// None: the node overall.
    pub peer: Option<IpAddr>,
    pub disconnects: u32,
    pub window_secs: u32,
}

impl fmt::Display for Alert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = match self.peer {
            Some(a) => format!("peer {a}"),
            None => "the node".to_string(),
        };
        write!(
            f,
            "ALERT: {who} disconnected {} times in the last {} s (more than {} a minute)",
            self.disconnects, self.window_secs, DISCONNECT_LIMIT
        )
    }
}

/// What one interval (or, with `is_final`, the whole capture) measured.
#[derive(Clone, Debug, Default)]
pub struct NetReport {
    pub timestamp: String,
    pub pid: Option<u32>,
    pub interval_secs: f64,
    pub elapsed_secs: f64,
    pub is_final: bool,
    /// (feature, variant) per feature: how each was traced.
    pub backends: Vec<(&'static str, &'static str)>,
    pub peers: Vec<PeerRow>,
    /// Cumulative over the capture.
    pub totals: Totals,
    /// Bytes per second over this span (all of the target's TCP traffic).
    pub tx_per_sec: f64,
    pub rx_per_sec: f64,
    pub live_conns: u32,
    pub alerts: Vec<Alert>,
    /// Events lost (ring buffer or channel full).
    pub lost_events: u64,
    /// Connections pushed out of the full LRU table (their bytes still
    /// count in the totals).
    pub evicted: u64,
    /// Spans without data because the target restarted: in an interval
    /// report the gaps that ended in it, in the final report all of them.
    pub gaps: Vec<Gap>,
}

/// More than this many disconnects in the window raises an alert.
pub const DISCONNECT_LIMIT: u32 = 10;
pub const DISCONNECT_WINDOW_NS: u64 = 60_000_000_000;

/// Disconnects in a sliding 60 s window, per peer address and overall. A
/// peer is its address without the port: a peer that reconnects to us comes
/// from a new port every time.
#[derive(Debug, Default)]
pub struct DisconnectRate {
    per_peer: HashMap<IpAddr, VecDeque<u64>>,
    all: VecDeque<u64>,
}

impl DisconnectRate {
    pub fn record(&mut self, peer: IpAddr, ts_ns: u64) {
        self.per_peer.entry(peer).or_default().push_back(ts_ns);
        self.all.push_back(ts_ns);
    }

    /// Alerts as of `now_ns` (CLOCK_MONOTONIC); forgets what left the window.
    pub fn alerts(&mut self, now_ns: u64) -> Vec<Alert> {
        let since = now_ns.saturating_sub(DISCONNECT_WINDOW_NS);
        let trim = |q: &mut VecDeque<u64>| {
            while q.front().is_some_and(|&t| t < since) {
                q.pop_front();
            }
        };
        let window_secs = (DISCONNECT_WINDOW_NS / 1_000_000_000) as u32;
        let mut out = Vec::new();
        trim(&mut self.all);
        if self.all.len() as u32 > DISCONNECT_LIMIT {
            out.push(Alert {
                peer: None,
                disconnects: self.all.len() as u32,
                window_secs,
            });
        }
        self.per_peer.retain(|_, q| {
            trim(q);
            !q.is_empty()
        });
        let mut peers: Vec<(&IpAddr, &VecDeque<u64>)> = self
            .per_peer
            .iter()
            .filter(|(_, q)| q.len() as u32 > DISCONNECT_LIMIT)
            .collect();
        peers.sort();
        for (a, q) in peers {
            out.push(Alert {
                peer: Some(*a),
                disconnects: q.len() as u32,
                window_secs,
            });
        }
        out
    }
}

/// A read of the maps at the end of one interval.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    pub conns: Vec<Conn>,
    pub totals: Totals,
}

#[derive(Clone, Copy, Debug, Default)]
struct Closed {
    tx: u64,
    rx: u64,
    retrans: u64,
    count: u32,
}

/// Turns cumulative samples and lifecycle events into interval and
/// whole-capture reports. A peer's bytes are those of its closed
/// connections (final counters from the close events) plus those of its
/// open ones (from the table). A capture may span several processes
/// (restarts of the target): each is a session with maps of its own, whose
/// counters start from zero; what ended sessions measured is kept here.
pub struct Aggregator {
    pid: Option<u32>,
    backends: Vec<(&'static str, &'static str)>,
    start: Instant,
    last: Instant,
    /// Bytes of each open connection at the last report.
    prev: HashMap<ConnId, (u64, u64)>,
    closed_ids: HashSet<ConnId>,
    closed: HashMap<Endpoint, Closed>,
    /// Bytes of connections closed since the last report, not yet reported.
    span: HashMap<Endpoint, (u64, u64)>,
    dirs: HashMap<Endpoint, BTreeSet<&'static str>>,
    prev_totals: Totals,
    rate: DisconnectRate,
    /// Events dropped between the ring buffer and us.
    pub user_lost: u64,
    /// The last read of the session that ended, folded in when the next
    /// one begins (or shown by the final report if none does).
    ended: Option<Sample>,
    /// Kernel counters and evictions of the sessions folded in.
    totals_closed: Totals,
    evicted_closed: u64,
    gaps: Gaps,
}

impl Aggregator {
    /// `backends`: the program flavour per feature, as the reports show it.
    pub fn new(pid: Option<u32>, backends: Vec<(&'static str, &'static str)>) -> Aggregator {
        let now = Instant::now();
        Aggregator {
            pid,
            backends,
            start: now,
            last: now,
            prev: HashMap::new(),
            closed_ids: HashSet::new(),
            closed: HashMap::new(),
            span: HashMap::new(),
            dirs: HashMap::new(),
            prev_totals: Totals::default(),
            rate: DisconnectRate::default(),
            user_lost: 0,
            ended: None,
            totals_closed: Totals::default(),
            evicted_closed: 0,
            gaps: Gaps::default(),
        }
    }

    /// A session starts: the programs are attached for process `pid`.
    /// Folds in the session before it. Its connections still open at its
    /// last read belonged to a process that has exited since: they count
    /// as closed with what they had moved.
    pub fn begin(&mut self, pid: u32) {
        if let Some(s) = self.ended.take() {
            for c in &s.conns {
                if self.closed_ids.contains(&c.id()) || !c.established {
                    continue;
                }
                let k = self.closed.entry(c.remote).or_default();
                k.tx += c.tx_bytes;
                k.rx += c.rx_bytes;
                k.retrans += c.retrans;
                k.count += 1;
            }
            self.evicted_closed += evicted(&s);
            self.totals_closed.add(&s.totals);
            // The new session's maps start empty and from zero.
            self.prev.clear();
            self.closed_ids.clear();
            self.prev_totals = Totals::default();
        }
        self.pid = Some(pid);
    }

    /// The kernel's TCP counters over the whole capture: every ended
    /// session's plus `current`, the running session's last read.
    pub fn totals(&self, current: Option<&Sample>) -> Totals {
        let mut t = self.totals_closed;
        if let Some(s) = current.or(self.ended.as_ref()) {
            t.add(&s.totals);
        }
        t
    }

    /// The session ends; `last` is its final read, taken after its events
    /// were folded in.
    pub fn end(&mut self, last: Option<Sample>) {
        self.ended = Some(last.unwrap_or_default());
    }

    /// The target was traced again after `g`.
    pub fn gap(&mut self, g: Gap) {
        self.gaps.push(g);
    }

    /// The report of the whole capture, every session included (after
    /// `end`).
    pub fn whole(&mut self, now: Instant, now_ns: u64) -> NetReport {
        let s = self.ended.take().unwrap_or_default();
        let r = self.report(&s, now, now_ns, true);
        self.ended = Some(s);
        r
    }

    pub fn event(&mut self, e: &ConnEvent) {
        let c = &e.conn;
        self.dirs.entry(c.remote).or_default().insert(c.dir.name());
        if !matches!(e.kind, EventKind::Close | EventKind::ConnectFailed) {
            return;
        }
        if !self.closed_ids.insert(c.id()) {
            return;
        }
        let (ptx, prx) = self.prev.remove(&c.id()).unwrap_or((0, 0));
        let s = self.span.entry(c.remote).or_default();
        s.0 += c.tx_bytes.saturating_sub(ptx);
        s.1 += c.rx_bytes.saturating_sub(prx);
        if e.kind == EventKind::Close {
            let k = self.closed.entry(c.remote).or_default();
            k.tx += c.tx_bytes;
            k.rx += c.rx_bytes;
            k.retrans += c.retrans;
            k.count += 1;
            self.rate.record(c.remote.addr, e.ts_ns);
        }
    }

    /// The report of the span that `s` closes (`is_final`: the whole capture).
    pub fn report(&mut self, s: &Sample, now: Instant, now_ns: u64, is_final: bool) -> NetReport {
        let secs = if is_final {
            now.duration_since(self.start).as_secs_f64()
        } else {
            now.duration_since(self.last).as_secs_f64()
        };
        self.last = now;
        let per_sec = |b: u64| if secs > 0.0 { b as f64 / secs } else { 0.0 };

        #[derive(Default)]
        struct Acc {
            live: u32,
            oldest: Option<u64>,
            tx: u64,
            rx: u64,
            dtx: u64,
            drx: u64,
            retrans: u64,
            srtt: Option<u32>,
        }
        let mut acc: HashMap<Endpoint, Acc> = HashMap::new();
        let mut live_conns = 0;
        for c in &s.conns {
            if self.closed_ids.contains(&c.id()) || !c.established {
                continue;
            }
            live_conns += 1;
            self.dirs.entry(c.remote).or_default().insert(c.dir.name());
            let a = acc.entry(c.remote).or_default();
            a.live += 1;
            a.oldest = Some(a.oldest.map_or(c.start_ns, |o| o.min(c.start_ns)));
            a.tx += c.tx_bytes;
            a.rx += c.rx_bytes;
            a.retrans += c.retrans;
            if c.srtt_us > 0 {
                a.srtt = Some(c.srtt_us);
            }
            let (ptx, prx) = self
                .prev
                .insert(c.id(), (c.tx_bytes, c.rx_bytes))
                .unwrap_or((0, 0));
            a.dtx += c.tx_bytes.saturating_sub(ptx);
            a.drx += c.rx_bytes.saturating_sub(prx);
        }
        for (peer, (tx, rx)) in self.span.drain() {
            let a = acc.entry(peer).or_default();
            a.dtx += tx;
            a.drx += rx;
        }
        if is_final {
            for peer in self.closed.keys() {
                acc.entry(*peer).or_default();
            }
        }
        let mut peers: Vec<PeerRow> = acc
            .into_iter()
            .map(|(peer, a)| {
                let k = self.closed.get(&peer).copied().unwrap_or_default();
                let (tx, rx) = (a.tx + k.tx, a.rx + k.rx);
                let (rtx, rrx) = if is_final { (tx, rx) } else { (a.dtx, a.drx) };
                PeerRow {
                    peer,
                    dir: self
                        .dirs
                        .get(&peer)
                        .map(|d| d.iter().copied().collect::<Vec<_>>().join("/"))
                        .unwrap_or_default(),
                    live: a.live,
                    closed: k.count,
                    age_secs: a.oldest.map(|o| now_ns.saturating_sub(o) as f64 / 1e9),
                    tx_bytes: tx,
                    rx_bytes: rx,
                    tx_per_sec: per_sec(rtx),
                    rx_per_sec: per_sec(rrx),
                    retrans: a.retrans + k.retrans,
                    srtt_us: a.srtt,
                }
            })
            .collect();
        peers.sort_by(|a, b| {
            (b.tx_bytes + b.rx_bytes)
                .cmp(&(a.tx_bytes + a.rx_bytes))
                .then(a.peer.cmp(&b.peer))
        });
        let mut t = self.totals_closed;
        t.add(&s.totals);
        let (dtx, drx) = if is_final {
            (t.tx_bytes, t.rx_bytes)
        } else {
            (
                s.totals.tx_bytes.saturating_sub(self.prev_totals.tx_bytes),
                s.totals.rx_bytes.saturating_sub(self.prev_totals.rx_bytes),
            )
        };
        self.prev_totals = s.totals;
        NetReport {
            timestamp: now_rfc3339(),
            pid: self.pid,
            interval_secs: secs,
            elapsed_secs: now.duration_since(self.start).as_secs_f64(),
            is_final,
            backends: self.backends.clone(),
            peers,
            totals: t,
            tx_per_sec: per_sec(dtx),
            rx_per_sec: per_sec(drx),
            live_conns,
            alerts: self.rate.alerts(now_ns),
            lost_events: t.lost_events + self.user_lost,
            evicted: self.evicted_closed + evicted(s),
            gaps: if is_final {
                self.gaps.all()
            } else {
                self.gaps.take_new()
            },
        }
    }
}

/// Connections the kernel table pushed out (LRU) in one session.
fn evicted(s: &Sample) -> u64 {
    s.totals
        .inserts
        .saturating_sub(s.totals.deletes)
        .saturating_sub(s.conns.len() as u64)
}

pub fn event_line(clock: &Clock, e: &ConnEvent) -> EventLine {
    let c = &e.conn;
    EventLine {
        time: crate::clock::rfc3339(clock.wall(e.ts_ns)),
        kind: e.kind,
        pid: c.tgid,
        peer: c.remote.to_string(),
        local: c.local.to_string(),
        dir: c.dir,
        duration_secs: matches!(e.kind, EventKind::Close | EventKind::ConnectFailed)
            .then(|| e.duration_ns() as f64 / 1e9),
        tx_bytes: c.tx_bytes,
        rx_bytes: c.rx_bytes,
        retrans: c.retrans,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_print_like_socket_addresses() {
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(&[127, 0, 0, 1]);
        assert_eq!(
            Endpoint::from_raw(2, &a, 8115).to_string(),
            "127.0.0.1:8115"
        );
        let v6 = Ipv6Addr::LOCALHOST.octets();
        assert_eq!(Endpoint::from_raw(10, &v6, 8115).to_string(), "[::1]:8115");
        let mapped = Ipv4Addr::new(10, 1, 2, 3).to_ipv6_mapped().octets();
        assert_eq!(Endpoint::from_raw(10, &mapped, 1).to_string(), "10.1.2.3:1");
    }

    #[test]
    fn disconnects_alert_above_ten_a_minute() {
        let s = 1_000_000_000u64;
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let mut d = DisconnectRate::default();
        for i in 0..10 {
            d.record(a, 100 * s + i * s);
        }
        assert!(
            d.alerts(110 * s).is_empty(),
            "ten is the limit, not over it"
        );
        d.record(a, 111 * s);
        let al = d.alerts(112 * s);
        assert_eq!(
            al,
            vec![
                Alert {
                    peer: None,
                    disconnects: 11,
                    window_secs: 60
                },
                Alert {
                    peer: Some(a),
                    disconnects: 11,
                    window_secs: 60
                }
            ]
        );
        assert!(al[1]
            .to_string()
            .contains("peer 10.0.0.1 disconnected 11 times"));
        // A minute later the early ones left the window.
        assert!(d.alerts(165 * s).is_empty());
        // Many peers, few each: only the node alerts.
        let mut d = DisconnectRate::default();
        for i in 0..6 {
            d.record(a, 200 * s + i);
            d.record(b, 200 * s + i);
        }
        let al = d.alerts(201 * s);
        assert_eq!(al.len(), 1);
        assert_eq!(al[0].peer, None);
    }
}

#[cfg(test)]
mod aggregator_tests {
    use super::*;
    use std::time::Duration;

    fn conn(sk: u64, port: u16, tx: u64, rx: u64) -> Conn {
        Conn {
            sk,
            start_ns: 1,
            tgid: 1,
            dir: Dir::Out,
            established: true,
            remote: Endpoint {
                addr: "127.0.0.1".parse().unwrap(),
                port,
            },
            local: Endpoint {
                addr: "127.0.0.1".parse().unwrap(),
                port: 5000,
            },
            tx_bytes: tx,
            rx_bytes: rx,
            retrans: 0,
            srtt_us: 0,
        }
    }

    #[test]
    fn closed_and_open_connections_add_up_per_peer() {
        let mut agg = Aggregator::new(Some(1), vec![("send", "tp_btf")]);
        let t0 = agg.start;
        let s1 = Sample {
            conns: vec![conn(1, 80, 100, 10), conn(2, 80, 5, 5)],
            totals: Totals::default(),
        };
        let r1 = agg.report(&s1, t0 + Duration::from_secs(1), 2, false);
        assert_eq!(r1.peers.len(), 1);
        assert_eq!((r1.peers[0].tx_bytes, r1.peers[0].live), (105, 2));
        assert_eq!(r1.peers[0].tx_per_sec, 105.0);
        // Connection 1 closes with 150 sent; 2 keeps going.
        agg.event(&ConnEvent {
            ts_ns: 3,
            kind: EventKind::Close,
            conn: conn(1, 80, 150, 10),
        });
        // A sample read before the deletion must not count it twice.
        let s2 = Sample {
            conns: vec![conn(1, 80, 150, 10), conn(2, 80, 25, 5)],
            totals: Totals::default(),
        };
        let r2 = agg.report(&s2, t0 + Duration::from_secs(2), 4, false);
        let p = &r2.peers[0];
        assert_eq!((p.tx_bytes, p.rx_bytes, p.live, p.closed), (175, 15, 1, 1));
        assert_eq!(
            p.tx_per_sec, 70.0,
            "50 from the closed one, 20 from the open one"
        );
        let f = agg.report(&Sample::default(), t0 + Duration::from_secs(3), 5, true);
        assert_eq!(
            f.peers[0].tx_bytes, 150,
            "only the closed connection is left"
        );
    }

    #[test]
    fn sessions_add_up_across_a_restart() {
        let mut agg = Aggregator::new(Some(1), vec![("send", "tp_btf")]);
        let t0 = agg.start;
        agg.begin(1);
        let totals = |tx, rx, closes| Totals {
            tx_bytes: tx,
            rx_bytes: rx,
            closes,
            inserts: closes,
            deletes: closes,
            ..Totals::default()
        };
        // Session 1: one connection closes (100 sent), one is still open
        // (7 sent) when the process dies.
        agg.event(&ConnEvent {
            ts_ns: 3,
            kind: EventKind::Close,
            conn: conn(1, 80, 100, 10),
        });
        let mut open = totals(107, 10, 1);
        open.inserts = 2;
        agg.end(Some(Sample {
            conns: vec![conn(1, 80, 100, 10), conn(2, 80, 7, 0)],
            totals: open,
        }));
        // Session 2 (a new process, maps from zero; the socket address and
        // first-seen time of connection 1 repeat by chance).
        agg.begin(2);
        agg.gap(Gap {
            old_pid: 1,
            new_pid: 2,
            ..Gap::default()
        });
        let s = Sample {
            conns: vec![conn(1, 80, 5, 1)],
            totals: totals(5, 1, 0),
        };
        let r = agg.report(&s, t0 + Duration::from_secs(1), 4, false);
        assert_eq!(r.pid, Some(2));
        assert_eq!(r.gaps.len(), 1, "the first interval after the restart");
        assert_eq!(r.totals.tx_bytes, 112, "session totals add up");
        assert_eq!(r.tx_per_sec, 5.0, "the new session's rate, not a jump");
        let p = &r.peers[0];
        assert_eq!((p.tx_bytes, p.live, p.closed), (112, 1, 2), "{p:?}");
        let r = agg.report(&s, t0 + Duration::from_secs(2), 5, false);
        assert!(r.gaps.is_empty(), "...only once");
        assert_eq!(r.evicted, 0);
        agg.end(Some(s));
        let f = agg.whole(t0 + Duration::from_secs(3), 6);
        assert_eq!((f.totals.tx_bytes, f.totals.closes), (112, 1));
        assert_eq!(f.peers[0].tx_bytes, 112);
        assert_eq!(f.gaps.len(), 1);
    }
}
