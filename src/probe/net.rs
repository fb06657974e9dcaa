//! The net layer's kernel side: which program variant traces each feature
//! (chosen by probing the kernel), loading, attaching, seeding the target's
//! listening ports from /proc, and reading the maps.

use std::mem::MaybeUninit;

use anyhow::{Context, Result};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, MapHandle, OpenObject, OpenProgramMut, ProgramMut};

use crate::error::{Exit, Failure};
use crate::model::net::{Conn, ConnEvent, Dir, Endpoint, EventKind, Sample, Totals};
use crate::probe::features::{self, Attach, Probed};
use crate::probe::{bpf_failure, map_handle};

mod skel {
    #![allow(clippy::all, unused_imports, dead_code, non_camel_case_types)]
    include!(concat!(env!("OUT_DIR"), "/net.skel.rs"));
}
pub use skel::NetSkel;
use skel::{types, NetSkelBuilder, OpenNetSkel};

// SAFETY: plain C structs of integers.
unsafe impl plain::Plain for types::net_conn {}
unsafe impl plain::Plain for types::net_listen_key {}
unsafe impl plain::Plain for types::net_listener {}
unsafe impl plain::Plain for NetEvent {}

/// What the layer observes; each is traced by one program variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Feature {
    Send,
    Recv,
    /// connect / accept (and listen, with tracepoints).
    Lifecycle,
    Close,
    Retransmit,
}

impl Feature {
    pub const ALL: [Feature; 5] = [
        Feature::Send,
        Feature::Recv,
        Feature::Lifecycle,
        Feature::Close,
        Feature::Retransmit,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Feature::Send => "send",
            Feature::Recv => "recv",
            Feature::Lifecycle => "lifecycle",
            Feature::Close => "close",
            Feature::Retransmit => "retransmit",
        }
    }
    /// The tracepoint of the tp_btf and tracepoint variants.
    pub fn tracepoint(self) -> (&'static str, &'static str) {
        match self {
            Feature::Send => ("sock", "sock_send_length"),
            Feature::Recv => ("sock", "sock_recv_length"),
            Feature::Lifecycle => ("sock", "inet_sock_set_state"),
            Feature::Close => ("tcp", "tcp_destroy_sock"),
            Feature::Retransmit => ("tcp", "tcp_retransmit_skb"),
        }
    }
}

/// Program flavours, best first. Tracepoints come first: they are a stable
/// ABI (fentry and kprobes bind to internal functions whose signatures
/// change, e.g. inet_csk_accept in 6.10), they report exact byte counts,
/// and tp_btf costs no more than fentry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    TpBtf,
    Tracepoint,
    Fentry,
    Kprobe,
}

impl Variant {
    pub const ALL: [Variant; 4] = [
        Variant::TpBtf,
        Variant::Tracepoint,
        Variant::Fentry,
        Variant::Kprobe,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Variant::TpBtf => "tp_btf",
            Variant::Tracepoint => "tracepoint",
            Variant::Fentry => "fentry",
            Variant::Kprobe => "kprobe",
        }
    }
    pub fn from_name(s: &str) -> Option<Variant> {
        Variant::ALL.into_iter().find(|v| v.name() == s)
    }
    fn attach(self) -> Attach {
        match self {
            Variant::TpBtf => Attach::TpBtf,
            Variant::Tracepoint => Attach::Tracepoint,
            Variant::Fentry => Attach::Fentry,
            Variant::Kprobe => Attach::Kprobe,
        }
    }
}

/// The variant chosen per feature (None: not traced on this kernel).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    pub per_feature: Vec<(Feature, Option<Variant>)>,
}

impl Choice {
    /// Picks the first available variant of each feature; `forced` limits
    /// the candidates to one variant.
    pub fn new(available: impl Fn(Feature, Variant) -> bool, forced: Option<Variant>) -> Choice {
        let per_feature = Feature::ALL
            .iter()
            .map(|&f| {
                let v = Variant::ALL
                    .into_iter()
                    .filter(|v| forced.is_none_or(|x| x == *v))
                    .find(|&v| available(f, v));
                (f, v)
            })
            .collect();
        Choice { per_feature }
    }

    pub fn get(&self, f: Feature) -> Option<Variant> {
        self.per_feature
            .iter()
            .find(|(x, _)| *x == f)
            .and_then(|(_, v)| *v)
    }

    /// Without a close program, the TCP_CLOSE transition (tracepoint
    /// lifecycle) stands in for it.
    pub fn close_on_state(&self) -> bool {
        self.get(Feature::Close).is_none()
            && matches!(
                self.get(Feature::Lifecycle),
                Some(Variant::TpBtf | Variant::Tracepoint)
            )
    }

    /// "send=tp_btf recv=tp_btf ..." for notes and `check`.
    pub fn describe(&self) -> String {
        self.per_feature
            .iter()
            .map(|(f, v)| format!("{}={}", f.name(), v.map(Variant::name).unwrap_or("none")))
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn pairs(&self) -> Vec<(&'static str, &'static str)> {
        self.per_feature
            .iter()
            .map(|(f, v)| (f.name(), v.map(Variant::name).unwrap_or("none")))
            .collect()
    }
}

/// Which variants this kernel can run: the attach type works (from the
/// feature probes) and, for tracepoints, the tracepoint exists. tp_btf asks
/// the kernel's BTF (world-readable, parsed once here), not tracefs, which
/// is mode 0700: an unprivileged user with CAP_BPF+CAP_PERFMON cannot list
/// it, and needs no more for tp_btf.
pub fn availability(probed: &[Probed]) -> impl Fn(Feature, Variant) -> bool + '_ {
    let btf = libbpf_rs::btf::Btf::from_vmlinux().ok();
    move |f, v| {
        let works = probed.iter().any(|p| p.attach == v.attach() && p.ok);
        let (group, name) = f.tracepoint();
        works
            && match v {
                Variant::TpBtf => features::tp_btf_exists(btf.as_ref(), group, name),
                Variant::Tracepoint => features::tracepoint_exists(group, name),
                Variant::Fentry | Variant::Kprobe => true,
            }
    }
}

/// Probes the attach types the layer can use and chooses per feature;
/// `forced` limits the choice to one variant (`--backend`).
pub fn choose(forced: Option<Variant>) -> Result<(Choice, Vec<Probed>)> {
    let _ = features::ensure_tracefs();
    let probed: Vec<Probed> = Variant::ALL
        .iter()
        .filter(|v| forced.is_none_or(|x| x == **v))
        .map(|v| features::probe(v.attach()))
        .collect();
    let choice = Choice::new(availability(&probed), forced);
    if choice.get(Feature::Send).is_none() || choice.get(Feature::Recv).is_none() {
        let why: Vec<String> = probed
            .iter()
            .map(|p| format!("{}: {}", p.attach.name(), p.detail))
            .collect();
        return Err(Failure::new(
            Exit::Environment,
            format!(
                "no way to trace TCP sends and receives on this kernel ({})",
                why.join("; ")
            ),
        )
        .hint("the net layer needs tp_btf or tracepoints (Linux 6.3+ sock:sock_send_length), fentry or kprobes; `ckb-libbpf check` shows which work")
        .into());
    }
    Ok((choice, probed))
}

fn open_progs<'a, 'obj>(
    open: &'a mut OpenNetSkel<'obj>,
    f: Feature,
    v: Variant,
) -> Vec<&'a mut OpenProgramMut<'obj>> {
    let p = &mut open.progs;
    use Feature::*;
    use Variant::*;
    match (f, v) {
        (Send, TpBtf) => vec![&mut p.send_btf],
        (Send, Tracepoint) => vec![&mut p.send_tp],
        (Send, Fentry) => vec![&mut p.send_fexit],
        (Send, Kprobe) => vec![&mut p.send_kprobe, &mut p.send_kretprobe],
        (Recv, TpBtf) => vec![&mut p.recv_btf],
        (Recv, Tracepoint) => vec![&mut p.recv_tp],
        (Recv, Fentry) => vec![&mut p.recv_fexit],
        (Recv, Kprobe) => vec![&mut p.recv_kprobe, &mut p.recv_kretprobe],
        (Lifecycle, TpBtf) => vec![&mut p.state_btf],
        (Lifecycle, Tracepoint) => vec![&mut p.state_tp],
        (Lifecycle, Fentry) => vec![&mut p.connect_fentry, &mut p.accept_fexit],
        (Lifecycle, Kprobe) => vec![&mut p.connect_kprobe, &mut p.accept_kretprobe],
        (Close, TpBtf) => vec![&mut p.close_btf],
        (Close, Tracepoint) => vec![&mut p.close_tp],
        (Close, Fentry) => vec![&mut p.close_fentry],
        (Close, Kprobe) => vec![&mut p.close_kprobe],
        (Retransmit, TpBtf) => vec![&mut p.retrans_btf],
        (Retransmit, Tracepoint) => vec![&mut p.retrans_tp],
        (Retransmit, Fentry) => vec![&mut p.retrans_fentry],
        (Retransmit, Kprobe) => vec![&mut p.retrans_kprobe],
    }
}

fn progs<'a, 'obj>(skel: &'a NetSkel<'obj>, f: Feature, v: Variant) -> Vec<&'a ProgramMut<'obj>> {
    let p = &skel.progs;
    use Feature::*;
    use Variant::*;
    match (f, v) {
        (Send, TpBtf) => vec![&p.send_btf],
        (Send, Tracepoint) => vec![&p.send_tp],
        (Send, Fentry) => vec![&p.send_fexit],
        (Send, Kprobe) => vec![&p.send_kprobe, &p.send_kretprobe],
        (Recv, TpBtf) => vec![&p.recv_btf],
        (Recv, Tracepoint) => vec![&p.recv_tp],
        (Recv, Fentry) => vec![&p.recv_fexit],
        (Recv, Kprobe) => vec![&p.recv_kprobe, &p.recv_kretprobe],
        (Lifecycle, TpBtf) => vec![&p.state_btf],
        (Lifecycle, Tracepoint) => vec![&p.state_tp],
        (Lifecycle, Fentry) => vec![&p.connect_fentry, &p.accept_fexit],
        (Lifecycle, Kprobe) => vec![&p.connect_kprobe, &p.accept_kretprobe],
        (Close, TpBtf) => vec![&p.close_btf],
        (Close, Tracepoint) => vec![&p.close_tp],
        (Close, Fentry) => vec![&p.close_fentry],
        (Close, Kprobe) => vec![&p.close_kprobe],
        (Retransmit, TpBtf) => vec![&p.retrans_btf],
        (Retransmit, Tracepoint) => vec![&p.retrans_tp],
        (Retransmit, Fentry) => vec![&p.retrans_fentry],
        (Retransmit, Kprobe) => vec![&p.retrans_kprobe],
    }
}

/// Opens the object with `tgid` in rodata and only the programs for which
/// `want` is true set to load.
fn open_and_load<'obj>(
    obj: &'obj mut MaybeUninit<OpenObject>,
    tgid: u32,
    close_on_state: bool,
    want: impl Fn(Feature, Variant) -> bool,
) -> Result<NetSkel<'obj>> {
    let mut open = NetSkelBuilder::default()
        .open(obj)
        .map_err(|e| bpf_failure("opening the net BPF object".into(), e))?;
    let rodata = open
        .maps
        .rodata_data
        .as_deref_mut()
        .context("BPF object has no .rodata")?;
    rodata.targ_tgid = tgid;
    rodata.close_on_state = close_on_state;
    for f in Feature::ALL {
        for v in Variant::ALL {
            let on = want(f, v);
            for p in open_progs(&mut open, f, v) {
                p.set_autoload(on);
            }
        }
    }
    open.load()
        .map_err(|e| bpf_failure("loading the net BPF programs".into(), e))
}

/// Loads the programs of `choice`, filtered to `tgid` (0 = all).
pub fn load<'obj>(
    obj: &'obj mut MaybeUninit<OpenObject>,
    tgid: u32,
    choice: &Choice,
) -> Result<NetSkel<'obj>> {
    open_and_load(obj, tgid, choice.close_on_state(), |f, v| {
        choice.get(f) == Some(v)
    })
}

/// Loads every program of one variant and attaches none: proves they pass
/// the verifier on kernels where they cannot attach (used by tests and
/// `check`).
pub fn load_variant_only(v: Variant) -> Result<usize> {
    let mut obj = MaybeUninit::uninit();
    let skel = open_and_load(&mut obj, 0, false, |_, x| x == v)?;
    let n = Feature::ALL.iter().map(|&f| progs(&skel, f, v).len()).sum();
    Ok(n)
}

/// Attaches the chosen programs. Links detach when dropped (and when we
/// die: they live in our file descriptors).
pub fn attach(skel: &NetSkel<'_>, choice: &Choice) -> Result<Vec<Link>> {
    let mut links = Vec::new();
    for &(f, v) in &choice.per_feature {
        let Some(v) = v else { continue };
        for p in progs(skel, f, v) {
            let link = p.attach().map_err(|e| {
                bpf_failure(
                    format!(
                        "attaching the {} program ({}) for {}",
                        v.name(),
                        p.name().to_string_lossy(),
                        f.name()
                    ),
                    e,
                )
            })?;
            links.push(link);
        }
    }
    Ok(links)
}

/// Owned handles on the maps the poller reads; `Send`, for worker threads.
pub struct Maps {
    pub conns: MapHandle,
    pub totals: MapHandle,
    pub listeners: MapHandle,
}

impl Maps {
    pub fn new(skel: &NetSkel<'_>) -> Result<Maps> {
        Ok(Maps {
            conns: map_handle(&skel.maps.conns)?,
            totals: map_handle(&skel.maps.totals)?,
            listeners: map_handle(&skel.maps.listeners)?,
        })
    }
}

/// The lifecycle ring buffer, for the drain thread.
pub fn events(skel: &NetSkel<'_>) -> Result<MapHandle> {
    map_handle(&skel.maps.events)
}

/// Tells the programs about listeners that existed before we attached, so
/// connections they accept are attributed to the target.
pub fn seed_listeners(maps: &Maps, tgid: u32) -> Result<Vec<u16>> {
    let (netns, ports) = crate::node::procfs::proc_listeners(tgid);
    for &port in &ports {
        let k = types::net_listen_key {
            netns,
            port,
            ..Default::default()
        };
        let v = types::net_listener {
            sk: 0,
            tgid,
            ..Default::default()
        };
        // SAFETY: plain C structs viewed as bytes.
        let (kb, vb) = unsafe { (plain::as_bytes(&k), plain::as_bytes(&v)) };
        maps.listeners
            .update(kb, vb, MapFlags::NO_EXIST)
            .or_else(|e| {
                if e.kind() == libbpf_rs::ErrorKind::AlreadyExists {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .context("seeding the listener table")?;
    }
    Ok(ports)
}

fn conn_from(sk: u64, c: &types::net_conn) -> Conn {
    let p = &c.peer;
    Conn {
        sk,
        start_ns: c.start_ns,
        tgid: c.tgid,
        dir: Dir::from_u8(c.dir),
        established: c.established != 0,
        remote: Endpoint::from_raw(p.family, &p.raddr, p.rport),
        local: Endpoint::from_raw(p.family, &p.laddr, p.lport),
        tx_bytes: c.tx_bytes,
        rx_bytes: c.rx_bytes,
        retrans: c.retrans,
        srtt_us: c.srtt_us,
    }
}

pub fn read_sample(maps: &Maps) -> Result<Sample> {
    let mut conns = Vec::new();
    for key in maps.conns.keys() {
        let Some(val) = maps.conns.lookup(&key, MapFlags::ANY)? else {
            continue; // closed in between
        };
        let mut c = types::net_conn::default();
        plain::copy_from_bytes(&mut c, &val).map_err(|_| anyhow::anyhow!("short net_conn"))?;
        let sk = u64::from_ne_bytes(
            key.get(..8)
                .and_then(|b| b.try_into().ok())
                .unwrap_or([0; 8]),
        );
        conns.push(conn_from(sk, &c));
    }
    let mut t = [0u64; 10];
    for (i, slot) in t.iter_mut().enumerate() {
        if let Some(per_cpu) = maps
            .totals
            .lookup_percpu(&(i as u32).to_ne_bytes(), MapFlags::ANY)?
        {
            *slot = per_cpu
                .iter()
                .filter_map(|b| b.get(..8).and_then(|b| b.try_into().ok()))
                .map(u64::from_ne_bytes)
                .sum();
        }
    }
    Ok(Sample {
        conns,
        totals: Totals::from_array(&t),
    })
}

/// `struct net_event` (include/ckb_libbpf.h).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct NetEvent {
    pub ts_ns: u64,
    pub start_ns: u64,
    pub tx_bytes: u64,
    pub rx_bytes: u64,
    pub retrans: u64,
    pub sk: u64,
    pub tgid: u32,
    pub kind: u8,
    pub dir: u8,
    pub pad: [u8; 2],
    pub raddr: [u8; 16],
    pub laddr: [u8; 16],
    pub rport: u16,
    pub lport: u16,
    pub family: u16,
    pub pad2: u16,
}

impl NetEvent {
    pub fn parse(data: &[u8]) -> Option<ConnEvent> {
        let mut e = NetEvent::default();
        plain::copy_from_bytes(&mut e, data).ok()?;
        Some(ConnEvent {
            ts_ns: e.ts_ns,
            kind: EventKind::from_u8(e.kind)?,
            conn: Conn {
                sk: e.sk,
                start_ns: e.start_ns,
                tgid: e.tgid,
                dir: Dir::from_u8(e.dir),
                established: true,
                remote: Endpoint::from_raw(e.family, &e.raddr, e.rport),
                local: Endpoint::from_raw(e.family, &e.laddr, e.lport),
                tx_bytes: e.tx_bytes,
                rx_bytes: e.rx_bytes,
                retrans: e.retrans,
                srtt_us: 0,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn layouts_match_the_header() {
        assert_eq!(std::mem::size_of::<NetEvent>(), 8 * 6 + 8 + 40);
        assert_eq!(std::mem::size_of::<types::net_conn>(), 8 * 4 + 8 + 8 + 40);
        assert_eq!(std::mem::size_of::<types::net_listen_key>(), 8);
    }

    #[test]
    fn choice_is_per_feature_and_tracepoints_come_first() {
        // A 6.1 kernel: tracepoints for the lifecycle, none for send/recv.
        let old = |f: Feature, v: Variant| match v {
            Variant::TpBtf | Variant::Tracepoint => !matches!(f, Feature::Send | Feature::Recv),
            Variant::Fentry => true,
            Variant::Kprobe => true,
        };
        let c = Choice::new(old, None);
        assert_eq!(c.get(Feature::Send), Some(Variant::Fentry));
        assert_eq!(c.get(Feature::Lifecycle), Some(Variant::TpBtf));
        assert!(!c.close_on_state());
        // This machine: no kprobes, no fentry.
        let here = |_: Feature, v: Variant| matches!(v, Variant::TpBtf | Variant::Tracepoint);
        let c = Choice::new(here, None);
        assert!(c
            .per_feature
            .iter()
            .all(|(_, v)| *v == Some(Variant::TpBtf)));
        let c = Choice::new(here, Some(Variant::Tracepoint));
        assert_eq!(
            c.describe(),
            "send=tracepoint recv=tracepoint lifecycle=tracepoint close=tracepoint retransmit=tracepoint"
        );
        // No tcp_destroy_sock: the state program closes connections.
        let no_destroy = |f: Feature, v: Variant| v == Variant::TpBtf && f != Feature::Close;
        let c = Choice::new(no_destroy, None);
        assert_eq!(c.get(Feature::Close), None);
        assert!(c.close_on_state());
    }

    #[test]
    fn proc_net_tcp_listeners() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1FB3 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:1FB4 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 999 1 0000000000000000 100 0 0 10 0\n\
   2: 0100007F:A0B0 0100007F:1FB3 01 00000000:00000000 00:00000000 00000000     0        0 4243 1 0000000000000000 100 0 0 10 0\n";
        let inodes: HashSet<u64> = [4242, 4243].into_iter().collect();
        assert_eq!(
            crate::node::procfs::listening_ports(text, &inodes),
            vec![0x1FB3]
        );
    }
}
