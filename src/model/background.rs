//! RocksDB background work as plain data: per kind of job (compaction,
//! flush, write stall, stall tokens) what started, finished and is still
//! running, how long it took, and the time writes spent stalled. Filled by
//! `probe::background`, printed by `render`, read by `analyze`.

use super::Histogram;

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
