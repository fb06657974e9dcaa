//! RocksDB background work as plain data: per kind of job (compaction,
//! flush, write stall, stall tokens) what started, finished and is still
//! running, how long it took, and the time writes spent stalled. Filled by
//! `probe::background`, printed by `render`, read by `analyze`.

use std::collections::HashMap;

use super::diff::Cumulative;
use super::{Histogram, DROP_REASONS};

/// What a traced RocksDB internal function means (`enum bg_kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BgKind {
    /// `rocksdb::CompactionJob::Run()`: one compaction job (not trivial moves).
    Compaction,
    /// `rocksdb::FlushJob::Run(...)`: one memtable flush.
    Flush,
    /// `rocksdb::DBImpl::DelayWrite(...)`: a write group held back by a
    /// slowdown or a stop; its duration is write-stall time.
    DelayWrite,
    /// `rocksdb::WriteController::GetStopToken()`: writes were stopped.
    StopToken,
    /// `rocksdb::WriteController::GetDelayToken(...)`: writes were slowed.
    DelayToken,
}

impl BgKind {
    pub const ALL: [BgKind; 5] = [
        BgKind::Compaction,
        BgKind::Flush,
        BgKind::DelayWrite,
        BgKind::StopToken,
        BgKind::DelayToken,
    ];

    /// The name in tables and JSON (an API: README "JSON output").
    pub fn name(self) -> &'static str {
        match self {
            BgKind::Compaction => "compaction",
            BgKind::Flush => "flush",
            BgKind::DelayWrite => "write_stall",
            BgKind::StopToken => "stop_token",
            BgKind::DelayToken => "delay_token",
        }
    }

    /// The C++ function, qualified, without its parameters.
    pub fn function(self) -> &'static str {
        match self {
            BgKind::Compaction => "rocksdb::CompactionJob::Run",
            BgKind::Flush => "rocksdb::FlushJob::Run",
            BgKind::DelayWrite => "rocksdb::DBImpl::DelayWrite",
            BgKind::StopToken => "rocksdb::WriteController::GetStopToken",
            BgKind::DelayToken => "rocksdb::WriteController::GetDelayToken",
        }
    }

    pub fn from_index(i: usize) -> Option<BgKind> {
        BgKind::ALL.get(i).copied()
    }

    /// Token getters are instants, not jobs: their durations mean nothing.
    pub fn is_instant(self) -> bool {
        matches!(self, BgKind::StopToken | BgKind::DelayToken)
    }
}

/// Counters of one kind. Cumulative within a capture; `minus` gives an
/// interval (`max_ns` is then the interval's exact maximum, set by the
/// caller, as in `OpStats`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BgStats {
    pub started: u64,
    pub finished: u64,
    pub total_ns: u64,
    pub max_ns: u64,
    pub hist: Histogram,
}

impl BgStats {
    pub fn add(&mut self, o: &BgStats) {
        self.started += o.started;
        self.finished += o.finished;
        self.total_ns += o.total_ns;
        self.max_ns = self.max_ns.max(o.max_ns);
        self.hist.add(&o.hist);
    }

    pub fn minus(&self, earlier: &BgStats) -> BgStats {
        BgStats {
            started: self.started.saturating_sub(earlier.started),
            finished: self.finished.saturating_sub(earlier.finished),
            total_ns: self.total_ns.saturating_sub(earlier.total_ns),
            max_ns: self.max_ns,
            hist: self.hist.minus(&earlier.hist),
        }
    }
}

/// One call still running when the maps were read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Running {
    pub kind: BgKind,
    pub tid: u32,
    /// CLOCK_MONOTONIC at entry: with `tid`, identifies the call.
    pub start_ns: u64,
    pub elapsed_ns: u64,
}

/// One printed line of the background section.
#[derive(Clone, Debug, PartialEq)]
pub struct BgRow {
    pub kind: BgKind,
    pub started: u64,
    pub finished: u64,
    /// Running at the end of the span (started, not yet returned).
    pub in_flight: u64,
    /// Sum of the durations of the calls that finished in the span.
    pub total_ns: u64,
    pub avg_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub max_us: Option<f64>,
    /// The longest-running call still in flight, so far.
    pub running_max_us: Option<f64>,
}

/// Background work over one interval (or the whole capture).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Background {
    pub rows: Vec<BgRow>,
    /// Time writers spent in DelayWrite (finished stalls) plus the time
    /// ongoing stalls have lasted so far, in ns.
    pub stalled_ns: u64,
    /// Kinds whose function the target does not have (reported, not fatal).
    pub absent: Vec<BgKind>,
    /// Finished jobs the ring buffer had no room for (with job events on),
    /// over the whole capture.
    pub lost_events: u64,
}

impl Background {
    pub fn row(&self, kind: BgKind) -> Option<&BgRow> {
        self.rows.iter().find(|r| r.kind == kind)
    }
    /// Whether any job of `kind` ran during the span (started, finished or
    /// still running).
    pub fn active(&self, kind: BgKind) -> bool {
        self.row(kind)
            .is_some_and(|r| r.started > 0 || r.finished > 0 || r.in_flight > 0)
    }
}

/// Builds a row from interval counters, the number in flight and the
/// running calls of that kind.
pub fn row(kind: BgKind, s: &BgStats, in_flight: u64, running: &[Running]) -> BgRow {
    let us = |ns: f64| ns / 1000.0;
    let timed = s.finished > 0 && !kind.is_instant();
    let max = timed.then_some(s.max_ns);
    BgRow {
        kind,
        started: s.started,
        finished: s.finished,
        in_flight,
        total_ns: s.total_ns,
        avg_us: timed.then(|| us(s.total_ns as f64 / s.finished as f64)),
        p99_us: if timed {
            s.hist.quantile(0.99, max).map(us)
        } else {
            None
        },
        max_us: max.map(|m| us(m as f64)),
        running_max_us: running
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| r.elapsed_ns)
            .max()
            .map(|ns| us(ns as f64)),
    }
}

/// One finished background call, from the ring buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct BgJob {
    /// Wall-clock time of the return, RFC 3339 with milliseconds.
    pub time: String,
    pub pid: u32,
    pub tid: u32,
    pub thread: String,
    pub kind: BgKind,
    pub duration_us: f64,
    /// `this` of the call (CompactionJob*, FlushJob*, DBImpl*...).
    pub object: u64,
}

/// A read of all maps at the end of one interval.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    /// Cumulative counters per kind, in `BgKind::ALL` order; `max_ns` is
    /// the maximum of the interval just closed.
    pub kinds: Vec<(BgKind, BgStats)>,
    /// Calls in progress at the time of the read.
    pub running: Vec<Running>,
    /// Cumulative drops per `enum drop_reason`.
    pub drops: [u64; DROP_REASONS],
}

/// Turns cumulative samples into per-interval and whole-capture figures.
pub struct BgAggregator {
    present: Vec<BgKind>,
    absent: Vec<BgKind>,
    counters: Cumulative<BgKind, BgStats>,
    /// Ongoing stalls already credited to earlier intervals: (tid, start)
    /// -> ns credited.
    credited: HashMap<(u32, u64), u64>,
    drops: super::Drops,
    /// What was running at the last read of the current session, and when
    /// the last session ended.
    running: Vec<Running>,
    closed_running: Vec<Running>,
}

impl BgAggregator {
    /// `present`: the kinds attached; `absent`: those the target lacks.
    pub fn new(mut present: Vec<BgKind>, absent: Vec<BgKind>) -> BgAggregator {
        present.sort();
        present.dedup();
        BgAggregator {
            present,
            absent,
            counters: Cumulative::default(),
            credited: HashMap::new(),
            drops: super::Drops::default(),
            running: Vec::new(),
            closed_running: Vec::new(),
        }
    }

    fn build(
        &self,
        per_kind: &HashMap<BgKind, (BgStats, u64)>,
        running: &[Running],
    ) -> Vec<crate::model::BgRow> {
        self.present
            .iter()
            .map(|&k| {
                let (s, in_flight) = per_kind.get(&k).cloned().unwrap_or_default();
                row(k, &s, in_flight, running)
            })
            .collect()
    }

    /// The figures of the interval `s` closes. Stall time counts ongoing
    /// stalls up to now, and a stall spanning intervals is split between
    /// them, never counted twice.
    pub fn interval(&mut self, s: &Sample) -> Background {
        let in_flight: HashMap<BgKind, u64> = s
            .kinds
            .iter()
            .map(|(k, cum)| (*k, cum.started.saturating_sub(cum.finished)))
            .collect();
        let mut per_kind = HashMap::new();
        let mut stall_finished: u64 = 0;
        for (kind, d) in self.counters.interval(s.kinds.iter().map(|(k, c)| (*k, c))) {
            if kind == BgKind::DelayWrite {
                stall_finished = d.total_ns;
            }
            let n = in_flight.get(&kind).copied().unwrap_or(0);
            per_kind.insert(kind, (d, n));
        }
        self.running = s.running.clone();
        self.drops.set(s.drops);
        let ongoing: HashMap<(u32, u64), u64> = s
            .running
            .iter()
            .filter(|r| r.kind == BgKind::DelayWrite)
            .map(|r| ((r.tid, r.start_ns), r.elapsed_ns))
            .collect();
        // Stalls that ended: their earlier credit is in their total already.
        let mut stalled = stall_finished;
        self.credited.retain(|key, credit| {
            if ongoing.contains_key(key) {
                true
            } else {
                stalled = stalled.saturating_sub(*credit);
                false
            }
        });
        for (key, elapsed) in ongoing {
            let credit = self.credited.entry(key).or_default();
            stalled += elapsed.saturating_sub(*credit);
            *credit = elapsed;
        }
        Background {
            rows: self.build(&per_kind, &s.running),
            stalled_ns: stalled,
            absent: self.absent.clone(),
            lost_events: self.drops.total(0),
        }
    }

    /// The traced process is gone (or the capture ends); its last read is
    /// already folded in by `interval`. A restarted process's maps start
    /// from zero.
    pub fn end(&mut self) {
        self.counters.end_session(|k| *k);
        self.closed_running = std::mem::take(&mut self.running);
        self.credited.clear();
        self.drops.end_session();
    }

    /// The whole capture so far, the current session included.
    pub fn whole(&self) -> Background {
        let mut per_kind = HashMap::new();
        let mut stalled = 0;
        for (kind, st) in self.counters.whole(|k| *k) {
            if kind == BgKind::DelayWrite {
                stalled = st.total_ns;
            }
            let n = st.started.saturating_sub(st.finished);
            per_kind.insert(kind, (st, n));
        }
        let running = if self.running.is_empty() {
            &self.closed_running
        } else {
            &self.running
        };
        stalled += running
            .iter()
            .filter(|r| r.kind == BgKind::DelayWrite)
            .map(|r| r.elapsed_ns)
            .sum::<u64>();
        Background {
            rows: self.build(&per_kind, running),
            stalled_ns: stalled,
            absent: self.absent.clone(),
            lost_events: self.drops.total(0),
        }
    }
}

impl super::diff::Counters for BgStats {
    fn add(&mut self, o: &Self) {
        BgStats::add(self, o)
    }
    fn minus(&self, e: &Self) -> Self {
        BgStats::minus(self, e)
    }
    fn max_ns(&self) -> u64 {
        self.max_ns
    }
    fn set_max_ns(&mut self, v: u64) {
        self.max_ns = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_from_counters() {
        let mut s = BgStats::default();
        for ns in [2_000_000u64, 4_000_000] {
            s.started += 1;
            s.finished += 1;
            s.total_ns += ns;
            s.hist.record(ns);
        }
        s.started += 1; // one still running
        s.max_ns = 4_000_000;
        let running = [Running {
            kind: BgKind::Compaction,
            tid: 7,
            start_ns: 1,
            elapsed_ns: 9_000_000,
        }];
        let r = row(BgKind::Compaction, &s, 1, &running);
        assert_eq!((r.started, r.finished, r.in_flight), (3, 2, 1));
        assert_eq!(r.avg_us, Some(3000.0));
        assert_eq!(r.max_us, Some(4000.0));
        assert_eq!(r.running_max_us, Some(9000.0));
        assert!(r.p99_us.unwrap() <= 4000.0);

        // Tokens are instants: counted, never timed.
        let t = row(BgKind::StopToken, &s, 0, &running);
        assert_eq!((t.avg_us, t.max_us, t.running_max_us), (None, None, None));

        let bg = Background {
            rows: vec![r],
            ..Default::default()
        };
        assert!(bg.active(BgKind::Compaction));
        assert!(!bg.active(BgKind::Flush));
    }

    #[test]
    fn kinds_follow_the_header_order() {
        for (i, k) in BgKind::ALL.iter().enumerate() {
            assert_eq!(BgKind::from_index(i), Some(*k));
        }
        assert_eq!(BgKind::from_index(5), None);
    }
}

#[cfg(test)]
mod aggregator_tests {
    use super::*;

    fn sample(stall: (u64, u64, u64), comp: (u64, u64), running: Vec<Running>) -> Sample {
        let st = |started, finished, total_ns| BgStats {
            started,
            finished,
            total_ns,
            ..Default::default()
        };
        Sample {
            kinds: vec![
                (BgKind::Compaction, st(comp.0, comp.1, 0)),
                (BgKind::DelayWrite, st(stall.0, stall.1, stall.2)),
            ],
            running,
            drops: [0; DROP_REASONS],
        }
    }

    fn stall(start_ns: u64, elapsed_ns: u64) -> Running {
        Running {
            kind: BgKind::DelayWrite,
            tid: 9,
            start_ns,
            elapsed_ns,
        }
    }

    #[test]
    fn a_stall_spanning_intervals_is_counted_once() {
        let mut agg = BgAggregator::new(
            vec![BgKind::Compaction, BgKind::DelayWrite],
            vec![BgKind::StopToken],
        );
        // Interval 1: a stall began 300 ms ago and is still going.
        let b1 = agg.interval(&sample((1, 0, 0), (1, 0), vec![stall(100, 300)]));
        assert_eq!(b1.stalled_ns, 300);
        assert_eq!(b1.row(BgKind::Compaction).unwrap().in_flight, 1);
        // Interval 2: still going, 1000 ms so far.
        let b2 = agg.interval(&sample((1, 0, 0), (1, 0), vec![stall(100, 1000)]));
        assert_eq!(b2.stalled_ns, 700);
        // Interval 3: it ended after 1200 ms in all; a new one is 50 ms in.
        let b3 = agg.interval(&sample((2, 1, 1200), (1, 1), vec![stall(5000, 50)]));
        assert_eq!(b3.stalled_ns, 200 + 50);
        assert_eq!(b3.row(BgKind::Compaction).unwrap().finished, 1);
        assert_eq!(b1.stalled_ns + b2.stalled_ns + b3.stalled_ns, 1250);
        // The whole capture: finished stalls plus the ongoing one.
        let last = sample((2, 1, 1200), (1, 1), vec![stall(5000, 80)]);
        agg.interval(&last);
        agg.end();
        let w = agg.whole();
        assert_eq!(w.stalled_ns, 1280);
        assert_eq!(w.row(BgKind::DelayWrite).unwrap().finished, 1);
        assert_eq!(w.absent, vec![BgKind::StopToken]);
        assert_eq!(w.rows.len(), 2, "only kinds the target has");
        // A restarted target's counters start from zero; the whole capture
        // adds both processes.
        agg.interval(&sample((1, 1, 400), (0, 0), vec![]));
        agg.end();
        let w = agg.whole();
        assert_eq!(w.row(BgKind::DelayWrite).unwrap().finished, 2);
        assert_eq!(w.stalled_ns, 1600, "1200 + 400, nothing running any more");
    }
}
