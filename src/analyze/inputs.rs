//! The non-RocksDB inputs of an `Observation`, built from what the syscall
//! and net layers count: pure functions of plain data (the capture reads
//! the maps and hands the figures over).
//!
//! Both layers keep cumulative counters per session; an interval's inputs
//! are the difference between two reads of the same session. The first
//! read of a session is taken against zero: the programs were attached
//! just before, so everything they counted belongs to that interval.

use crate::model::net::Totals;
use crate::model::syscall::syscall_nr;
use crate::model::OpStats;

use super::{Futex, Latency, Observation, Peers};

/// The syscall layer's cumulative counters reduced to what the
/// probable-cause rules read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyscallTotals {
    /// fsync + fdatasync of every thread; `max_ns` is the maximum of the
    /// interval the read closed.
    pub fsync: OpStats,
    /// futex + futex_waitv calls that returned.
    pub futex_calls: u64,
    /// Those of them that wait (FUTEX_WAIT and kin, futex_waitv).
    pub futex_waits: u64,
}

impl SyscallTotals {
    /// From one read of the per-(syscall, thread family) rows, given as
    /// (syscall number, counters), and the futex wait counter.
    pub fn from_rows<'a>(
        rows: impl IntoIterator<Item = (u32, &'a OpStats)>,
        futex_waits: u64,
    ) -> SyscallTotals {
        let nrs =
            |names: &[&str]| -> Vec<u32> { names.iter().filter_map(|n| syscall_nr(n)).collect() };
        let (fsync, futex) = (nrs(&["fsync", "fdatasync"]), nrs(&["futex", "futex_waitv"]));
        let mut t = SyscallTotals {
            futex_waits,
            ..Default::default()
        };
        for (nr, st) in rows {
            if fsync.contains(&nr) {
                t.fsync.add(st);
            } else if futex.contains(&nr) {
                t.futex_calls += st.count;
            }
        }
        t
    }

    /// What happened between `earlier` (None: the session's start) and this
    /// read: fsync latency and its histogram, futex calls and waits.
    pub fn since(&self, earlier: Option<&SyscallTotals>) -> (Latency, Futex) {
        let zero = SyscallTotals::default();
        let e = earlier.unwrap_or(&zero);
        let d = self.fsync.minus(&e.fsync);
        let calls = self.futex_calls.saturating_sub(e.futex_calls);
        // The wait counter and the rows are read one after the other: a
        // call can be in one read and not yet in the other.
        let waits = self.futex_waits.saturating_sub(e.futex_waits).min(calls);
        (
            Latency {
                count: d.count,
                total_ns: d.total_ns,
                hist: d.hist,
            },
            Futex { calls, waits },
        )
    }
}

/// Connections opened (connect + accept) and closed between two reads of
/// the net layer's totals (`earlier` None: the session's start).
pub fn peers_since(now: &Totals, earlier: Option<&Totals>) -> Peers {
    let zero = Totals::default();
    let e = earlier.unwrap_or(&zero);
    Peers {
        connects: (now.connects + now.accepts).saturating_sub(e.connects + e.accepts),
        disconnects: now.closes.saturating_sub(e.closes),
    }
}

impl Observation {
    /// Adds the syscall layer's figures of the same interval.
    pub fn with_syscalls(
        mut self,
        now: &SyscallTotals,
        earlier: Option<&SyscallTotals>,
    ) -> Observation {
        let (fsync, futex) = now.since(earlier);
        self.fsync = Some(fsync);
        self.futex = Some(futex);
        self
    }

    /// Adds the net layer's figures of the same interval.
    pub fn with_peers(mut self, now: &Totals, earlier: Option<&Totals>) -> Observation {
        self.peers = Some(peers_since(now, earlier));
        self
    }
}

/// One read of the cause layers' cumulative counters.
#[derive(Clone, Debug, Default)]
pub struct CauseSample {
    pub sc: Option<SyscallTotals>,
    pub net: Option<Totals>,
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

    fn stats(count: u64, ns_each: u64) -> OpStats {
        let mut s = OpStats::default();
        for _ in 0..count {
            s.count += 1;
            s.total_ns += ns_each;
            s.hist.record(ns_each);
        }
        s.max_ns = ns_each;
        s
    }

    fn nr(n: &str) -> u32 {
        syscall_nr(n).unwrap()
    }

    #[test]
    fn fsync_and_futex_from_syscall_rows() {
        // Two thread families fsync; reads and a futex_waitv mix in.
        let (a, b, c, d, e, f) = (
            stats(10, 2_000_000),
            stats(5, 1_000_000),
            stats(4, 3_000_000),
            stats(100, 1000),
            stats(60, 5000),
            stats(2, 5000),
        );
        let rows = [
            (nr("fdatasync"), &a),
            (nr("fsync"), &b),
            (nr("fdatasync"), &c),
            (nr("read"), &d),
            (nr("futex"), &e),
            (nr("futex_waitv"), &f),
        ];
        let t1 = SyscallTotals::from_rows(rows, 40);
        assert_eq!(t1.fsync.count, 19);
        assert_eq!(t1.fsync.total_ns, 20_000_000 + 5_000_000 + 12_000_000);
        assert_eq!((t1.futex_calls, t1.futex_waits), (62, 40));

        // The first interval of a session counts from zero.
        let o = Observation::default().with_syscalls(&t1, None);
        let fs = o.fsync.as_ref().unwrap();
        assert_eq!(
            (fs.count, fs.total_ns, fs.hist.count()),
            (19, 37_000_000, 19)
        );
        assert_eq!(
            o.futex,
            Some(Futex {
                calls: 62,
                waits: 40
            })
        );

        // The next one is the difference; its hist holds only new calls.
        let (g, h) = (stats(13, 2_000_000), stats(90, 5000));
        // 50 more waits but only 30 more calls (the two are read one
        // after the other): clamped to the calls.
        let t3 = SyscallTotals::from_rows(
            [
                (nr("fdatasync"), &g),
                (nr("fsync"), &b),
                (nr("fdatasync"), &c),
                (nr("futex"), &h),
                (nr("futex_waitv"), &f),
            ],
            40 + 50,
        );
        let o = Observation::default().with_syscalls(&t3, Some(&t1));
        let fs = o.fsync.as_ref().unwrap();
        assert_eq!((fs.count, fs.total_ns, fs.hist.count()), (3, 6_000_000, 3));
        let p99 = fs.p99_ns().unwrap();
        assert!((1_900_000.0..=2_100_000.0).contains(&p99), "{p99}");
        assert_eq!(
            o.futex,
            Some(Futex {
                calls: 30,
                waits: 30
            })
        );
    }

    #[test]
    fn no_syscalls_means_zero_not_absent() {
        let o = Observation::default().with_syscalls(&SyscallTotals::default(), None);
        assert_eq!(o.fsync, Some(Latency::default()));
        assert_eq!(o.futex, Some(Futex::default()));
        assert_eq!(o.peers, None, "the net layer is another input");
    }

    #[test]
    fn peers_from_net_totals() {
        let t1 = Totals {
            connects: 3,
            accepts: 2,
            closes: 1,
            tx_bytes: 999,
            ..Default::default()
        };
        let o = Observation::default().with_peers(&t1, None);
        assert_eq!(
            o.peers,
            Some(Peers {
                connects: 5,
                disconnects: 1
            })
        );
        let t2 = Totals {
            connects: 4,
            accepts: 6,
            closes: 8,
            ..t1
        };
        assert_eq!(
            peers_since(&t2, Some(&t1)),
            Peers {
                connects: 5,
                disconnects: 7
            }
        );
        assert_eq!(o.fsync, None);
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
        assert_eq!(o.fsync.as_ref().map(|l| l.count), Some(2));
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
