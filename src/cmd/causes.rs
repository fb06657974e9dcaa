//! The probable-cause inputs of `ckb-libbpf rocksdb`'s anomaly detector
//! that RocksDB's own probes cannot see: fsync/fdatasync latency and futex
//! waits (the syscall layer) and peer churn (the net layer), loaded in the
//! same session for the same process through their probe modules.
//!
//! Each layer is optional and never fatal: one that cannot load or attach
//! becomes a note, and the rules that need it stay silent (the alert then
//! says which inputs were not checked).

use std::mem::MaybeUninit;

use anyhow::Result;
use libbpf_rs::{Link, OpenObject};

use crate::analyze::inputs::SyscallTotals;
use crate::analyze::Observation;
use crate::model::net::Totals;
use crate::probe::net::{self as netprobe, NetSkel};
use crate::probe::syscall::{self as sc, SyscallSkel};

/// Which cause layers to load (`--causes`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Causes {
    /// fsync latency and futex contention (raw_syscalls: every syscall of
    /// the node pays for it).
    pub syscall: bool,
    /// Peer churn (TCP lifecycle, send and receive).
    pub net: bool,
}

impl Causes {
    pub const NONE: Causes = Causes {
        syscall: false,
        net: false,
    };
    pub const ALL: Causes = Causes {
        syscall: true,
        net: true,
    };
}

/// Parses `--causes`: a comma-separated list of `syscall`, `net`, `all`
/// or `none`.
pub fn parse_causes(s: &str) -> std::result::Result<Causes, String> {
    let mut c = Causes::NONE;
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        match item {
            "syscall" => c.syscall = true,
            "net" => c.net = true,
            "all" => c = Causes::ALL,
            "none" => c = Causes::NONE,
            other => {
                return Err(format!(
                    "`{other}` is not a cause layer (syscall, net, all, none)"
                ))
            }
        }
    }
    Ok(c)
}

/// The cause layers of one session, attached to one process.
pub struct CauseTrace<'obj> {
    sc: Option<(SyscallSkel<'obj>, Vec<Link>)>,
    net: Option<(NetSkel<'obj>, Vec<Link>)>,
}

/// Map handles for the poller thread.
pub struct CauseMaps {
    sc: Option<sc::Maps>,
    net: Option<netprobe::Maps>,
}

/// One read of the cause layers' cumulative counters.
#[derive(Clone, Debug, Default)]
pub struct CauseSample {
    pub sc: Option<SyscallTotals>,
    pub net: Option<Totals>,
}

fn start_syscall<'obj>(
    obj: &'obj mut MaybeUninit<OpenObject>,
    tgid: u32,
    notes: &mut Vec<String>,
) -> Result<(SyscallSkel<'obj>, Vec<Link>)> {
    let (backend, _) = sc::choose(None)?;
    let skel = sc::load(obj, &sc::Config { tgid }, backend)?;
    let links = sc::attach(&skel, backend)?;
    notes.push(format!(
        "cause inputs: syscall layer ({}) for fsync latency and futex contention",
        backend.name()
    ));
    Ok((skel, links))
}

fn start_net<'obj>(
    obj: &'obj mut MaybeUninit<OpenObject>,
    tgid: u32,
    notes: &mut Vec<String>,
) -> Result<(NetSkel<'obj>, Vec<Link>)> {
    let (choice, _) = netprobe::choose(None)?;
    let skel = netprobe::load(obj, tgid, &choice)?;
    // Connections accepted on listeners opened before we attached count too.
    netprobe::seed_listeners(&netprobe::Maps::new(&skel)?, tgid)?;
    let links = netprobe::attach(&skel, &choice)?;
    notes.push(format!(
        "cause inputs: net layer ({}) for peer churn",
        choice.describe()
    ));
    Ok((skel, links))
}

impl<'obj> CauseTrace<'obj> {
    /// Loads and attaches the layers `want` names for process `tgid`; a
    /// layer that fails is left out with a note. Returns the notes.
    pub fn start(
        sc_obj: &'obj mut MaybeUninit<OpenObject>,
        net_obj: &'obj mut MaybeUninit<OpenObject>,
        want: Causes,
        tgid: Option<u32>,
    ) -> (CauseTrace<'obj>, Vec<String>) {
        let mut notes = Vec::new();
        let mut t = CauseTrace {
            sc: None,
            net: None,
        };
        if want == Causes::NONE {
            return (t, notes);
        }
        // Without a process (--binary) tgid 0 would trace every process.
        let Some(tgid) = tgid else {
            notes.push(
                "--causes needs one process (--pid or --name): fsync/futex/peers not checked"
                    .into(),
            );
            return (t, notes);
        };
        if want.syscall {
            match start_syscall(sc_obj, tgid, &mut notes) {
                Ok(x) => t.sc = Some(x),
                Err(e) => notes.push(format!(
                    "syscall layer unavailable ({e:#}): fsync/futex causes not checked"
                )),
            }
        }
        if want.net {
            match start_net(net_obj, tgid, &mut notes) {
                Ok(x) => t.net = Some(x),
                Err(e) => notes.push(format!(
                    "net layer unavailable ({e:#}): peer churn not checked"
                )),
            }
        }
        (t, notes)
    }

    pub fn maps(&self) -> Result<CauseMaps> {
        Ok(CauseMaps {
            sc: self
                .sc
                .as_ref()
                .map(|(s, _)| sc::Maps::new(s))
                .transpose()?,
            net: self
                .net
                .as_ref()
                .map(|(s, _)| netprobe::Maps::new(s))
                .transpose()?,
        })
    }

    /// Detaches every program; the skeletons go when `self` is dropped.
    pub fn detach(&mut self) {
        for (_, links) in self.sc.iter_mut() {
            crate::probe::detach(std::mem::take(links));
        }
        for (_, links) in self.net.iter_mut() {
            crate::probe::detach(std::mem::take(links));
        }
    }
}

/// Reads the cause layers at the end of an interval (poller thread).
/// `epoch` is the syscall layer's interval number (see
/// `probe::syscall::read_sample`).
pub fn read(maps: &CauseMaps, epoch: u64) -> Result<CauseSample> {
    let sc = match &maps.sc {
        Some(m) => {
            // Waits first: the rows then hold every wait counted.
            let waits = sc::read_futex_waits(m)?;
            let s = sc::read_sample(m, epoch)?;
            Some(SyscallTotals::from_rows(
                s.rows.iter().map(|r| (r.nr, &r.stats.op)),
                waits,
            ))
        }
        None => None,
    };
    let net = match &maps.net {
        Some(m) => Some(netprobe::read_sample(m)?.totals),
        None => None,
    };
    Ok(CauseSample { sc, net })
}

/// Turns one session's cumulative reads into per-interval inputs.
#[derive(Default)]
pub struct CauseInputs {
    sc: Option<SyscallTotals>,
    net: Option<Totals>,
}

impl CauseInputs {
    /// A new session: its counters start from zero.
    pub fn begin(&mut self) {
        *self = CauseInputs::default();
    }

    /// `obs` with the cause inputs of the interval that `s` closes.
    pub fn observe(&mut self, mut obs: Observation, s: &CauseSample) -> Observation {
        if let Some(now) = &s.sc {
            obs = obs.with_syscalls(now, self.sc.as_ref());
            self.sc = Some(now.clone());
        }
        if let Some(now) = &s.net {
            obs = obs.with_peers(now, self.net.as_ref());
            self.net = Some(*now);
        }
        obs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::{Futex, Peers};
    use crate::model::OpStats;

    #[test]
    fn causes_lists() {
        assert_eq!(parse_causes("all"), Ok(Causes::ALL));
        assert_eq!(parse_causes("none"), Ok(Causes::NONE));
        assert_eq!(parse_causes("syscall,net"), Ok(Causes::ALL));
        assert_eq!(
            parse_causes("net"),
            Ok(Causes {
                syscall: false,
                net: true
            })
        );
        assert_eq!(
            parse_causes(" syscall , "),
            Ok(Causes {
                syscall: true,
                net: false
            })
        );
        assert!(parse_causes("disk").unwrap_err().contains("`disk`"));
    }

    fn fsyncs(n: u64) -> SyscallTotals {
        let mut op = OpStats::default();
        for _ in 0..n {
            op.count += 1;
            op.total_ns += 1_000_000;
            op.hist.record(1_000_000);
        }
        SyscallTotals {
            fsync: op,
            futex_calls: 10 * n,
            futex_waits: 8 * n,
        }
    }

    #[test]
    fn intervals_difference_within_a_session_and_restart_from_zero() {
        let mut c = CauseInputs::default();
        let net = |closes| Totals {
            connects: 1,
            closes,
            ..Default::default()
        };
        let s = |n, closes| CauseSample {
            sc: Some(fsyncs(n)),
            net: Some(net(closes)),
        };
        let o = c.observe(Observation::default(), &s(2, 1));
        assert_eq!(o.fsync.map(|l| l.count), Some(2));
        let o = c.observe(Observation::default(), &s(5, 4));
        assert_eq!(o.fsync.map(|l| (l.count, l.total_ns)), Some((3, 3_000_000)));
        assert_eq!(
            o.futex,
            Some(Futex {
                calls: 30,
                waits: 24
            })
        );
        assert_eq!(
            o.peers,
            Some(Peers {
                connects: 0,
                disconnects: 3
            })
        );
        // A restarted target: fresh maps, counted from zero.
        c.begin();
        let o = c.observe(Observation::default(), &s(1, 0));
        assert_eq!(o.fsync.map(|l| l.count), Some(1));
        // A layer that is not loaded leaves its inputs absent.
        let o = c.observe(Observation::default(), &CauseSample::default());
        assert_eq!((o.fsync, o.futex, o.peers), (None, None, None));
    }
}
