//! `ckb-libbpf net`: the P2P layer. Per peer: bytes each way, rates,
//! connection age, retransmits; connect/accept/close as a log; an alert when
//! a peer (or the node) disconnects more than 10 times a minute. Follows
//! the node across restarts like `rocksdb` (see `super::follow_restart`).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::mem::MaybeUninit;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;
use clap::Args;
use crossbeam_channel::{after, never, select, Receiver};

use super::{monotonic_ns, note, rfc3339, run_sessions, signals, Clock, Out, Resume, Stop};
use crate::collect::{Poller, RingDrain};
use crate::error::Exit;
use crate::model::net::{
    ConnEvent, ConnId, DisconnectRate, Endpoint, EventKind, EventLine, NetReport, PeerRow, Totals,
};
use crate::model::{Gap, Gaps, TargetEvent};
use crate::probe::features::Probed;
use crate::probe::net::{self, Choice, Maps, NetEvent, Sample, Variant};
use crate::render::net as view;
use crate::node::{self, Proc};

#[derive(Args, Debug, Clone)]
pub struct NetArgs {
    /// How long to capture (30s, 5m, 1h; a bare number is seconds). Without
    /// it, capture until Ctrl-C or SIGTERM.
    #[arg(value_name = "DURATION", value_parser = super::parse_duration)]
    pub duration: Option<Duration>,
    /// Trace this process.
    #[arg(long, value_name = "PID", conflicts_with = "name")]
    pub pid: Option<u32>,
    /// Find the process by name.
    #[arg(long, value_name = "NAME", default_value = "ckb")]
    pub name: String,
    /// Seconds between reports.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0, value_parser = super::positive_secs)]
    pub interval: f64,
    /// JSON Lines: one object per event and per interval, then one with
    /// "final": true.
    #[arg(long)]
    pub json: bool,
    /// Program flavour: auto picks, per feature, the first that works of
    /// tp_btf, tracepoint, fentry, kprobe. Naming one uses only it.
    #[arg(long, value_name = "KIND", default_value = "auto", value_parser = ["auto", "tp_btf", "tracepoint", "fentry", "kprobe"])]
    pub backend: String,
    /// When the traced process exits, stop (exit code 1) instead of waiting
    /// for the same executable to start again and tracing it.
    #[arg(long)]
    pub no_follow: bool,
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
    pub fn new(pid: Option<u32>, choice: &Choice) -> Aggregator {
        let now = Instant::now();
        Aggregator {
            pid,
            backends: choice.pairs(),
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
            timestamp: rfc3339(SystemTime::now()),
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

fn event_line(clock: &Clock, e: &ConnEvent) -> EventLine {
    let c = &e.conn;
    EventLine {
        time: rfc3339(clock.wall(e.ts_ns)),
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

/// What stays the same across the sessions of one capture.
struct Capture<'a> {
    args: &'a NetArgs,
    choice: Choice,
    probed: Vec<Probed>,
    clock: Clock,
    sigs: Receiver<()>,
    deadline: Receiver<Instant>,
}

impl Capture<'_> {
    fn print_event(&self, out: &mut Out, e: &ConnEvent) -> Result<(), Stop> {
        let l = event_line(&self.clock, e);
        if self.args.json {
            out.print(&view::event_json(&l))
        } else {
            out.print(&view::event_line(&l))
        }
    }

    fn print_report(&self, out: &mut Out, r: &NetReport) -> Result<(), Stop> {
        if self.args.json {
            out.print(&view::report_json(r))
        } else {
            out.print(&view::table(r))
        }
    }

    fn print_target(&self, out: &mut Out, e: &TargetEvent) -> Result<(), Stop> {
        super::print_target(out, e, self.args.json)
    }

    /// The attach notes; what the kernel cannot trace only the first time.
    fn describe(&self, proc: &Proc, links: usize, ports: &[u16], again: bool) {
        note(format!(
            "attached {links} net programs for pid {} ({}): {}",
            proc.pid,
            proc.comm,
            self.choice.describe()
        ));
        note(format!(
            "listening ports of the target: {}",
            if ports.is_empty() {
                "none yet (new listeners are learned as they open)".to_string()
            } else {
                ports
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ));
        if again {
            return;
        }
        for p in self.probed.iter().filter(|p| !p.ok) {
            note(format!(
                "{} programs not attached on this kernel: {}",
                p.attach.name(),
                p.detail
            ));
        }
        for (f, v) in &self.choice.per_feature {
            if v.is_none() {
                note(format!("{} is not traced on this kernel", f.name()));
            }
        }
    }

    /// Traces process `proc` until the capture stops or the process exits;
    /// folds everything it measured into `agg` and detaches before
    /// returning. `targ_tgid` is frozen at load, so every session loads a
    /// skeleton of its own and seeds its listener table afresh.
    fn session(
        &self,
        proc: &Proc,
        agg: &mut Aggregator,
        out: &mut Out,
        resume: Option<Resume>,
    ) -> anyhow::Result<Stop> {
        let mut obj = MaybeUninit::uninit();
        let skel = net::load(&mut obj, proc.pid, &self.choice)?;
        let maps = Maps::new(&skel)?;
        let ports = net::seed_listeners(&maps, proc.pid)?;
        let links = net::attach(&skel, &self.choice)?;
        self.describe(proc, links.len(), &ports, resume.is_some());
        agg.begin(proc.pid);
        let mut stop = None;
        if let Some(resume) = resume {
            let gap = resume.end();
            stop = self
                .print_target(out, &TargetEvent::Restarted(gap.clone()))
                .err();
            agg.gap(gap);
        }

        let interval = Duration::from_secs_f64(self.args.interval);
        let poller = Poller::spawn(interval, move || net::read_sample(&maps));
        let drain = RingDrain::spawn(net::events(&skel)?, 16384, NetEvent::parse);
        let events = drain.events.clone();
        let stop = match stop {
            Some(s) => s,
            None => 'main: loop {
                select! {
                    recv(poller.samples) -> s => {
                        let Ok(s) = s else { anyhow::bail!("the map poller thread stopped unexpectedly") };
                        let s = s?;
                        // Events already queued belong before this sample's report.
                        for e in events.try_iter() {
                            agg.event(&e);
                            if let Err(stop) = self.print_event(out, &e) { break 'main stop; }
                        }
                        let r = agg.report(&s, Instant::now(), monotonic_ns(), false);
                        if let Err(stop) = self.print_report(out, &r) { break stop; }
                        if !proc.alive() { break Stop::TargetExited; }
                    }
                    recv(events) -> e => {
                        if let Ok(e) = e {
                            agg.event(&e);
                            if let Err(stop) = self.print_event(out, &e) { break stop; }
                        }
                    }
                    recv(self.sigs) -> _ => break Stop::Signal,
                    recv(self.deadline) -> _ => break Stop::Deadline,
                }
            },
        };

        // Detach first so the last read and the last events cover the same span.
        crate::probe::detach(links);
        let mut rest = poller.finish()?;
        agg.user_lost += drain.dropped.load(std::sync::atomic::Ordering::Relaxed);
        for e in drain.finish()? {
            agg.event(&e);
            if stop != Stop::OutputClosed {
                let _ = self.print_event(out, &e);
            }
        }
        let last = rest.pop();
        for s in &rest {
            agg.report(s, Instant::now(), monotonic_ns(), false);
        }
        agg.end(last);
        drop(skel);
        Ok(stop)
    }
}

pub fn run(args: NetArgs) -> anyhow::Result<Exit> {
    crate::probe::require_privileges()?;
    crate::probe::require_kernel_features()?;
    let proc: Proc = match args.pid {
        Some(pid) => node::find_by_pid(pid)?,
        None => node::find_by_name(&args.name)?,
    };
    let (choice, probed) = net::choose(Variant::from_name(&args.backend))?;
    let cap = Capture {
        args: &args,
        choice,
        probed,
        clock: Clock::new(),
        sigs: signals()?,
        deadline: args.duration.map(after).unwrap_or_else(never),
    };
    let mut agg = Aggregator::new(Some(proc.pid), &cap.choice);
    let mut out = Out::new();
    if !args.json {
        out.print(&view::event_header()).ok();
    }
    let ended = run_sessions(
        proc,
        args.no_follow,
        &cap.sigs,
        &cap.deadline,
        &mut out,
        |p, out, resume| cap.session(p, &mut agg, out, resume),
        |out, e| cap.print_target(out, e),
    )?;
    if ended.stop != Stop::OutputClosed {
        let r = agg.whole(Instant::now(), monotonic_ns());
        let _ = cap.print_report(&mut out, &r);
    }
    ended.exit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::net::{Conn, Dir};
    use crate::probe::net::Feature;

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
        let choice = Choice::new(|_: Feature, v: Variant| v == Variant::TpBtf, None);
        let mut agg = Aggregator::new(Some(1), &choice);
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
        let choice = Choice::new(|_: Feature, v: Variant| v == Variant::TpBtf, None);
        let mut agg = Aggregator::new(Some(1), &choice);
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
