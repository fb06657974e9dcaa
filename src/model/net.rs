//! The net layer's plain data: connections, lifecycle events, per-peer rows,
//! totals and the disconnect-rate detector. No BPF, no terminal.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::Gap;

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
