//! Counters per operation, and the report every renderer prints.

use super::Histogram;

/// Counters of one row (an operation class or one C function). Within a
/// capture they are cumulative; `minus` gives an interval.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OpStats {
    pub count: u64,
    pub total_ns: u64,
    pub bytes: u64,
    pub misses: u64,
    /// Exact maximum latency over the span these counters cover.
    pub max_ns: u64,
    pub hist: Histogram,
}

impl OpStats {
    pub fn add(&mut self, o: &OpStats) {
        self.count += o.count;
        self.total_ns += o.total_ns;
        self.bytes += o.bytes;
        self.misses += o.misses;
        self.max_ns = self.max_ns.max(o.max_ns);
        self.hist.add(&o.hist);
    }

    /// Counters accumulated since `earlier`. `max_ns` is not differenced:
    /// the caller sets the interval maximum it measured.
    pub fn minus(&self, earlier: &OpStats) -> OpStats {
        OpStats {
            count: self.count.saturating_sub(earlier.count),
            total_ns: self.total_ns.saturating_sub(earlier.total_ns),
            bytes: self.bytes.saturating_sub(earlier.bytes),
            misses: self.misses.saturating_sub(earlier.misses),
            max_ns: self.max_ns,
            hist: self.hist.minus(&earlier.hist),
        }
    }

    /// The figures a view prints, over a span of `secs` seconds.
    pub fn row(&self, name: &str, secs: f64, reads: bool, has_bytes: bool) -> Row {
        let max = (self.count > 0).then_some(self.max_ns);
        let us = |ns: f64| ns / 1000.0;
        Row {
            name: name.to_string(),
            count: self.count,
            total_ns: self.total_ns,
            qps: if secs > 0.0 {
                self.count as f64 / secs
            } else {
                0.0
            },
            avg_us: (self.count > 0).then(|| us(self.total_ns as f64 / self.count as f64)),
            p50_us: self.hist.quantile(0.50, max).map(us),
            p99_us: self.hist.quantile(0.99, max).map(us),
            max_us: max.map(|m| us(m as f64)),
            bytes: has_bytes.then_some(self.bytes),
            bytes_per_sec: has_bytes.then(|| {
                if secs > 0.0 {
                    self.bytes as f64 / secs
                } else {
                    0.0
                }
            }),
            hit_ratio: (reads && self.count > 0)
                .then(|| (self.count - self.misses) as f64 / self.count as f64),
            misses: reads.then_some(self.misses),
            hist: self.hist.clone(),
        }
    }
}

/// One printed line: an operation class or a C function over one span.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub name: String,
    pub count: u64,
    /// Exact summed latency (what `avg_us` is derived from).
    pub total_ns: u64,
    pub qps: f64,
    pub avg_us: Option<f64>,
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub max_us: Option<f64>,
    pub bytes: Option<u64>,
    pub bytes_per_sec: Option<f64>,
    pub hit_ratio: Option<f64>,
    pub misses: Option<u64>,
    pub hist: Histogram,
}

/// What one interval (or, with `is_final`, the whole capture) measured.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub layer: &'static str,
    /// Wall-clock time of the report, RFC 3339.
    pub timestamp: String,
    pub pid: Option<u32>,
    pub interval_secs: f64,
    pub elapsed_secs: f64,
    pub is_final: bool,
    pub rows: Vec<Row>,
    /// Per C function, filled with --by-function.
    pub functions: Vec<Row>,
    /// RocksDB: per (database, column family, class), and per (database,
    /// class).
    pub by_cf: Vec<super::rocksdb::CfRow>,
    pub by_db: Vec<super::rocksdb::CfRow>,
    pub lost_events: u64,
    pub slow_events: u64,
    /// Observations the kernel side could not record (maps full).
    pub dropped: u64,
    /// Functions present in the target but not traced, with the reason.
    pub left_out: Vec<LeftOut>,
    /// Spans without data because the target restarted: in an interval
    /// report the gaps that ended in it, in the final report all of them.
    pub gaps: Vec<Gap>,
    /// What the probes cost the target over the span (and, under
    /// `--overhead-budget`, the attached share of it).
    pub overhead: Option<super::overhead::Overhead>,
}

/// A stretch with no data: the traced process exited and the same
/// executable was started again (and traced again).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Gap {
    pub old_pid: u32,
    pub new_pid: u32,
    /// RFC 3339 wall-clock times: when the exit was noticed, when the new
    /// process's probes were attached.
    pub exited_at: String,
    pub resumed_at: String,
    pub secs: f64,
    /// The new process runs a different file (inode or build-id): an upgrade.
    pub upgraded: bool,
    pub old_build_id: Option<String>,
    pub new_build_id: Option<String>,
}

/// The gaps of a capture that follows its target across restarts: each one
/// goes into the next interval report and into the final one.
#[derive(Clone, Debug, Default)]
pub struct Gaps {
    all: Vec<Gap>,
    fresh: Vec<Gap>,
}

impl Gaps {
    pub fn push(&mut self, g: Gap) {
        self.all.push(g.clone());
        self.fresh.push(g);
    }
    /// The gaps an interval report carries: those since the previous one.
    pub fn take_new(&mut self) -> Vec<Gap> {
        std::mem::take(&mut self.fresh)
    }
    /// Every gap of the capture, for the final report.
    pub fn all(&self) -> Vec<Gap> {
        self.all.clone()
    }
}

/// Entries of `enum drop_reason` (include/ckb_libbpf.h, DROP_MAX).
pub const DROP_REASONS: usize = 4;

/// Kernel drop counters (per `enum drop_reason`) over the sessions of a
/// capture: each session's maps start from zero.
#[derive(Clone, Copy, Debug, Default)]
pub struct Drops {
    closed: [u64; DROP_REASONS],
    current: [u64; DROP_REASONS],
}

impl Drops {
    /// The current session's cumulative counters, as just read.
    pub fn set(&mut self, current: [u64; DROP_REASONS]) {
        self.current = current;
    }
    /// The session ended: its counters become part of the closed total.
    pub fn end_session(&mut self) {
        for (c, d) in self.closed.iter_mut().zip(self.current) {
            *c += d;
        }
        self.current = [0; DROP_REASONS];
    }
    /// Total of reason `i` over every session.
    pub fn total(&self, i: usize) -> u64 {
        self.closed[i] + self.current[i]
    }
}

/// The traced process came or went (restart following).
#[derive(Clone, Debug, PartialEq)]
pub enum TargetEvent {
    /// It exited; the tool waits for `exe` to start again.
    Exited { pid: u32, exe: String, time: String },
    /// It is back and traced again.
    Restarted(Gap),
}

/// A function the capture deliberately did not trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeftOut {
    pub function: String,
    pub op: String,
    pub reason: String,
}

/// One operation over the --slow threshold.
#[derive(Clone, Debug, PartialEq)]
pub struct SlowEvent {
    /// Wall-clock time, RFC 3339 with milliseconds.
    pub time: String,
    pub pid: u32,
    pub tid: u32,
    pub thread: String,
    pub op: &'static str,
    pub function: &'static str,
    pub latency_us: f64,
    pub bytes: u64,
    pub miss: bool,
    pub db: u64,
    /// The database's directory, when confirmed.
    pub db_name: Option<String>,
    /// The column family as `by_cf` rows name it: its name, "cf@0x..."
    /// when unconfirmed, "default" or "*" when the call named none.
    pub cf: String,
}

impl super::diff::Counters for OpStats {
    fn add(&mut self, o: &Self) {
        OpStats::add(self, o)
    }
    fn minus(&self, e: &Self) -> Self {
        OpStats::minus(self, e)
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
    fn row_figures() {
        let mut s = OpStats::default();
        for ns in [1_000u64, 2_000, 3_000, 10_000] {
            s.count += 1;
            s.total_ns += ns;
            s.hist.record(ns);
        }
        s.bytes = 4096;
        s.misses = 1;
        s.max_ns = 10_000;
        let r = s.row("GET", 2.0, true, true);
        assert_eq!(r.count, 4);
        assert_eq!(r.qps, 2.0);
        assert_eq!(r.avg_us, Some(4.0));
        assert_eq!(r.max_us, Some(10.0));
        assert_eq!(r.bytes_per_sec, Some(2048.0));
        assert_eq!(r.hit_ratio, Some(0.75));
        assert!(r.p99_us.unwrap() <= 10.0);
        assert!(r.p50_us.unwrap() >= 1.0 && r.p50_us.unwrap() <= 3.0);
    }

    #[test]
    fn empty_row_has_no_latency() {
        let r = OpStats::default().row("PUT", 1.0, false, true);
        assert_eq!(
            (r.avg_us, r.p50_us, r.max_us, r.hit_ratio),
            (None, None, None, None)
        );
    }
}
