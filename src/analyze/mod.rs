//! Anomaly detection over what the layers measured: pure functions of
//! plain data, no BPF, no terminal (ARCHITECTURE invariant).
//!
//! Each interval the capture hands the `Analyzer` one `Observation`: per
//! operation the calls, their summed latency and their latency histogram,
//! plus whatever the other layers saw in the same interval (background
//! jobs and write stalls, fsync latency, futex traffic, peer churn; each
//! may be absent). The analyzer keeps a sliding window of the last
//! `window_secs` of observations and, per operation, two baselines
//! (`baseline::Baseline`: the median of recent *normal* intervals, which a
//! ramp cannot teach and a shift held for minutes can; its module doc
//! says why): of the interval averages and of the interval p99s. Three
//! detectors read the window:
//!
//! - `latency_spike`: the window's average latency of an operation over
//!   `multiplier` (5x) times its baseline and at least `spike_min_us`
//!   (50 us): an in-memory operation going from 2 to 11 us is one
//!   preempted call in a quiet window, not an incident (the one alert a
//!   normal 10-minute run raised before this floor, on ITER_CREATE);
//! - `tail_latency`: the window's p99 over `tail_multiplier` (10x) times
//!   the baseline p99 and at least `tail_min_us` (5 ms): the average can
//!   hide a tail that went from 100 us to 10 ms. The baseline p99 is the
//!   90th percentile of the learnt intervals' p99s, not their median: a
//!   window's p99 over hundreds of calls meets the odd preempted call that
//!   a typical interval's does not (seen on a loaded 2-core box: a quiet
//!   TXN_COMMIT window p99 of 3.9 ms against a median interval p99 of 0.3 ms);
//! - `write_stall`: RocksDB held writers back (DBImpl::DelayWrite) for at
//!   least `stall_ms` (1 s) in the window. This needs no baseline: writers
//!   blocked for seconds is an incident whether or not an average moved
//!   (a stalled call that has not returned is in no average at all).
//!
//! Latency alerts wait for the learning period; the stall alert does not.
//! Each alert names its probable cause, the first of the `causes` rules
//! that the window's evidence supports.

pub mod baseline;
pub mod causes;
pub mod inputs;

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

pub use baseline::{Baseline, Learnt, Policy};
pub use causes::Cause;

use crate::model::Histogram;

/// Thresholds; `learning_secs` and `multiplier` come from the command line.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Alert when the window average exceeds this many baselines...
    pub multiplier: f64,
    /// ...and is at least this long (us).
    pub spike_min_us: f64,
    /// The "last N seconds" the alert looks at.
    pub window_secs: f64,
    /// No latency alerts before this much time has been observed.
    pub learning_secs: f64,
    /// Fewer calls than this in the window prove nothing: no alert.
    pub min_calls: u64,
    /// How baselines learn (band, horizon, relearning after a shift).
    pub baseline: Policy,
    /// Tail alert when the window p99 exceeds this many baseline p99s...
    pub tail_multiplier: f64,
    /// ...and is at least this long (us): a p99 under it is not an incident
    /// whatever its ratio (a 3 us GET whose p99 meets one preemption).
    pub tail_min_us: f64,
    /// A window p99 needs this many calls (under 100, it is the maximum).
    pub tail_min_calls: u64,
    /// An interval's p99 is learnt when it has this many calls.
    pub tail_sample_calls: u64,
    /// Write stall alert when writers were stalled this long in the window.
    pub stall_ms: f64,
    /// Futex contention: call rate over this many baselines...
    pub futex_rate_multiplier: f64,
    /// ...and waits more than this share of the calls.
    pub futex_wait_share: f64,
    /// Peer churn: more disconnections than this per minute.
    pub churn_per_min: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            multiplier: 5.0,
            spike_min_us: 50.0,
            window_secs: 10.0,
            learning_secs: 300.0,
            min_calls: 5,
            baseline: Policy::default(),
            tail_multiplier: 10.0,
            tail_min_us: 5000.0,
            tail_min_calls: 100,
            tail_sample_calls: 20,
            stall_ms: 1000.0,
            futex_rate_multiplier: 3.0,
            futex_wait_share: 0.7,
            churn_per_min: 10.0,
        }
    }
}

impl Config {
    /// The baseline policy, its band never above the alert multiplier (an
    /// interval that alerts must not be learnt).
    pub fn policy(&self) -> Policy {
        Policy {
            band: self.baseline.band.min(self.multiplier),
            ..self.baseline
        }
    }
}

/// Calls, their summed latency and their latency histogram over some span.
/// (The shape of `model::OpStats` without its maximum: the capture can
/// fill it from exact counters as easily as from display rows.)
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Latency {
    pub count: u64,
    pub total_ns: u64,
    /// Empty when the source has none: the tail detector then stays quiet.
    pub hist: Histogram,
}

impl Latency {
    pub fn avg_ns(&self) -> Option<f64> {
        (self.count > 0).then(|| self.total_ns as f64 / self.count as f64)
    }
    /// The p99 from the histogram, in ns.
    pub fn p99_ns(&self) -> Option<f64> {
        self.hist.quantile(0.99, None)
    }
    fn add(&mut self, o: &Latency) {
        self.count += o.count;
        self.total_ns += o.total_ns;
        self.hist.add(&o.hist);
    }
}

/// RocksDB background work in one span (from `model::Background`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BgWindow {
    pub compactions_started: u64,
    pub compactions_finished: u64,
    /// Most compactions running at once at an interval boundary.
    pub compactions_running: u64,
    /// Time spent in finished compactions.
    pub compaction_ns: u64,
    pub flushes_started: u64,
    pub flushes_finished: u64,
    pub flushes_running: u64,
    pub flush_ns: u64,
    /// Time writers spent stalled (DelayWrite), including ongoing stalls.
    pub stalled_ns: u64,
    pub stop_tokens: u64,
    pub delay_tokens: u64,
}

impl BgWindow {
    /// The figures of one interval of the background layer.
    pub fn from_model(b: &crate::model::Background) -> BgWindow {
        use crate::model::BgKind as K;
        let r = |k| b.row(k).cloned();
        let c = r(K::Compaction);
        let f = r(K::Flush);
        BgWindow {
            compactions_started: c.as_ref().map_or(0, |r| r.started),
            compactions_finished: c.as_ref().map_or(0, |r| r.finished),
            compactions_running: c.as_ref().map_or(0, |r| r.in_flight),
            compaction_ns: c.as_ref().map_or(0, |r| r.total_ns),
            flushes_started: f.as_ref().map_or(0, |r| r.started),
            flushes_finished: f.as_ref().map_or(0, |r| r.finished),
            flushes_running: f.as_ref().map_or(0, |r| r.in_flight),
            flush_ns: f.as_ref().map_or(0, |r| r.total_ns),
            stalled_ns: b.stalled_ns,
            stop_tokens: r(K::StopToken).map_or(0, |r| r.started),
            delay_tokens: r(K::DelayToken).map_or(0, |r| r.started),
        }
    }

    fn add(&mut self, o: &BgWindow) {
        self.compactions_started += o.compactions_started;
        self.compactions_finished += o.compactions_finished;
        self.compactions_running = self.compactions_running.max(o.compactions_running);
        self.compaction_ns += o.compaction_ns;
        self.flushes_started += o.flushes_started;
        self.flushes_finished += o.flushes_finished;
        self.flushes_running = self.flushes_running.max(o.flushes_running);
        self.flush_ns += o.flush_ns;
        self.stalled_ns += o.stalled_ns;
        self.stop_tokens += o.stop_tokens;
        self.delay_tokens += o.delay_tokens;
    }
}

/// Futex traffic of the target (syscall layer).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Futex {
    pub calls: u64,
    /// FUTEX_WAIT-family calls among them.
    pub waits: u64,
}

/// Peer connections opened and closed (net layer).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Peers {
    pub connects: u64,
    pub disconnects: u64,
}

/// Everything one interval measured. Layers that are not running leave
/// their field `None`; their rules then never fire.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observation {
    pub secs: f64,
    /// Per operation class (GET, PUT...): calls, summed latency, histogram.
    pub ops: BTreeMap<String, Latency>,
    pub background: Option<BgWindow>,
    /// fsync + fdatasync of the target (the histogram gives the evidence's p99).
    pub fsync: Option<Latency>,
    pub futex: Option<Futex>,
    pub peers: Option<Peers>,
}

impl Observation {
    /// The observation of one interval report of the `rocksdb` layer (its
    /// class rows' exact counts and summed latencies), with that interval's
    /// background work if traced.
    pub fn from_report(
        r: &crate::model::Report,
        background: Option<&crate::model::Background>,
    ) -> Observation {
        let ops = r
            .rows
            .iter()
            .map(|row| {
                (
                    row.name.clone(),
                    Latency {
                        count: row.count,
                        total_ns: row.total_ns,
                        hist: row.hist.clone(),
                    },
                )
            })
            .collect();
        Observation {
            secs: r.interval_secs,
            ops,
            background: background.map(BgWindow::from_model),
            ..Default::default()
        }
    }
}

/// The sum of the observations in the window.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Window {
    pub secs: f64,
    pub ops: BTreeMap<String, Latency>,
    pub background: Option<BgWindow>,
    pub fsync: Option<Latency>,
    pub futex: Option<Futex>,
    pub peers: Option<Peers>,
}

impl Window {
    /// The inputs of the cause rules that no layer fed in this window:
    /// their causes could not be checked.
    pub fn unchecked(&self) -> Vec<&'static str> {
        [
            ("fsync", self.fsync.is_none()),
            ("futex", self.futex.is_none()),
            ("peers", self.peers.is_none()),
        ]
        .into_iter()
        .filter_map(|(n, absent)| absent.then_some(n))
        .collect()
    }

    fn of<'a>(obs: impl Iterator<Item = &'a Observation>) -> Window {
        let mut w = Window::default();
        for o in obs {
            w.secs += o.secs;
            for (name, l) in &o.ops {
                w.ops.entry(name.clone()).or_default().add(l);
            }
            if let Some(b) = &o.background {
                w.background.get_or_insert_with(Default::default).add(b);
            }
            if let Some(f) = &o.fsync {
                w.fsync.get_or_insert_with(Default::default).add(f);
            }
            if let Some(f) = &o.futex {
                let x = w.futex.get_or_insert_with(Default::default);
                x.calls += f.calls;
                x.waits += f.waits;
            }
            if let Some(p) = &o.peers {
                let x = w.peers.get_or_insert_with(Default::default);
                x.connects += p.connects;
                x.disconnects += p.disconnects;
            }
        }
        w
    }
}

/// One alert, as the table prints it and the JSON `anomalies` array holds it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Anomaly {
    /// "latency_spike" (the average), "tail_latency" (the p99) or
    /// "write_stall" (writers held back, whatever the latencies did).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// For a write stall: the write-path operation that spent the most
    /// time in the window ("WRITE" when none returned yet).
    pub operation: String,
    /// The window's average latency and the baseline, in microseconds
    /// (0 when the operation has none yet).
    pub current_avg_us: f64,
    pub baseline_avg_us: f64,
    /// current / baseline (0 without a baseline).
    pub multiplier: f64,
    /// The window's p99 and the baseline p99 (the 90th percentile of the intervals'
    /// p99s), in microseconds; absent without enough calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_us: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_p99_us: Option<f64>,
    pub cause: Cause,
    /// The figures the cause rests on, by name (units in the name).
    pub evidence: BTreeMap<&'static str, f64>,
    pub next_step: String,
    /// True on the first interval of this alert, false while it lasts.
    pub onset: bool,
    /// The span `current_avg_us` covers.
    pub window_secs: f64,
    /// Inputs no layer fed ("fsync", "futex", "peers"): the causes that
    /// rest on them were not checked (`--causes`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unchecked: Vec<&'static str>,
}

impl Anomaly {
    /// The alert's first line for people, without the onset marker.
    pub fn headline(&self) -> String {
        let us = |v: f64| {
            if v >= 100.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.1}")
            }
        };
        match self.kind {
            "tail_latency" => format!(
                "{} p99 latency {} us over the last {:.0} s is {:.1}x its baseline p99 ({} us)",
                self.operation,
                us(self.p99_us.unwrap_or(0.0)),
                self.window_secs,
                match (self.p99_us, self.baseline_p99_us) {
                    (Some(p), Some(b)) if b > 0.0 => p / b,
                    _ => 0.0,
                },
                us(self.baseline_p99_us.unwrap_or(0.0)),
            ),
            "write_stall" => format!(
                "RocksDB stalled writers for {:.0} ms in the last {:.0} s",
                self.evidence.get("stalled_ms").copied().unwrap_or(0.0),
                self.window_secs,
            ),
            _ => format!(
                "{} avg latency {} us over the last {:.0} s is {:.1}x its baseline ({} us)",
                self.operation,
                us(self.current_avg_us),
                self.window_secs,
                self.multiplier,
                us(self.baseline_avg_us),
            ),
        }
    }
}

#[derive(Clone, Debug, Default)]
struct OpState {
    /// Of the intervals' average latency, ns.
    avg: Baseline,
    /// Of the intervals' p99, ns.
    p99: Baseline,
    alerting: bool,
}

/// The detector: feed it one observation per interval.
#[derive(Clone, Debug)]
pub struct Analyzer {
    cfg: Config,
    elapsed: f64,
    recent: VecDeque<Observation>,
    ops: BTreeMap<String, OpState>,
    bases: causes::Baselines,
    /// The stall condition held in the last interval.
    stalling: bool,
    onsets: u64,
    relearnt: Vec<String>,
}

impl Analyzer {
    pub fn new(cfg: Config) -> Analyzer {
        Analyzer {
            bases: causes::Baselines::default(),
            cfg,
            elapsed: 0.0,
            recent: VecDeque::new(),
            ops: BTreeMap::new(),
            stalling: false,
            onsets: 0,
            relearnt: Vec::new(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Still learning the baselines (no latency alerts yet)?
    pub fn learning(&self) -> bool {
        self.elapsed < self.cfg.learning_secs
    }

    /// Alerts raised so far (each counted once, at its onset).
    pub fn alerts(&self) -> u64 {
        self.onsets
    }

    /// Operations whose average-latency baseline restarted at a new level
    /// (a shift held for `relearn_secs`) since the last call: worth a note.
    pub fn take_relearnt(&mut self) -> Vec<String> {
        std::mem::take(&mut self.relearnt)
    }

    /// The baseline of an operation's average latency, ns.
    pub fn baseline_avg_ns(&self, op: &str) -> Option<f64> {
        self.ops.get(op).and_then(|s| s.avg.value())
    }

    /// Takes one interval; returns the alerts active after it.
    pub fn observe(&mut self, obs: Observation) -> Vec<Anomaly> {
        self.elapsed += obs.secs;
        self.recent.push_back(obs);
        // Keep the newest observations covering window_secs.
        let mut covered = 0.0;
        let mut keep = 0;
        for o in self.recent.iter().rev() {
            keep += 1;
            covered += o.secs;
            if covered >= self.cfg.window_secs - 1e-9 {
                break;
            }
        }
        while self.recent.len() > keep {
            self.recent.pop_front();
        }
        let window = Window::of(self.recent.iter());
        let last = self.recent.back().cloned().unwrap_or_default();
        let learning = self.learning();
        let policy = self.cfg.policy();
        let cfg = &self.cfg;

        let mut out = Vec::new();
        for (name, interval) in &last.ops {
            let st = self.ops.entry(name.clone()).or_default();
            let empty = Latency::default();
            let now = window.ops.get(name).unwrap_or(&empty);
            let current = now.avg_ns().filter(|_| now.count >= cfg.min_calls);
            let base = st.avg.value();
            let spike = match (current, base) {
                (Some(c), Some(b)) if !learning && b > 0.0 => {
                    c > cfg.multiplier * b && c >= cfg.spike_min_us * 1e3
                }
                _ => false,
            };
            let p99 = now.p99_ns().filter(|_| now.count >= cfg.tail_min_calls);
            let base_p99 = st.p99.quantile(0.9);
            let tail = match (p99, base_p99) {
                (Some(p), Some(b)) if !learning && b > 0.0 => {
                    p > cfg.tail_multiplier * b && p >= cfg.tail_min_us * 1e3
                }
                _ => false,
            };
            if spike || tail {
                let (cause, evidence) = causes::attribute(name, &window, &self.bases, cfg);
                let (c, b) = (current.unwrap_or(0.0), base.unwrap_or(0.0));
                out.push(Anomaly {
                    kind: if spike {
                        "latency_spike"
                    } else {
                        "tail_latency"
                    },
                    operation: name.clone(),
                    current_avg_us: c / 1e3,
                    baseline_avg_us: b / 1e3,
                    multiplier: if b > 0.0 { c / b } else { 0.0 },
                    p99_us: p99.map(|p| p / 1e3),
                    baseline_p99_us: base_p99.map(|p| p / 1e3),
                    cause,
                    evidence,
                    next_step: cause.next_step().to_string(),
                    onset: !st.alerting,
                    window_secs: window.secs,
                    unchecked: window.unchecked(),
                });
                if !st.alerting {
                    self.onsets += 1;
                }
            }
            st.alerting = spike || tail;
            // The baselines take this interval only if it is close to them
            // (see baseline.rs): a ramp's first steps teach them nothing.
            if let Some(avg) = interval.avg_ns() {
                if st.avg.observe(last.secs, avg, learning, &policy) == Learnt::Relearnt {
                    self.relearnt.push(name.clone());
                }
            }
            if interval.count >= cfg.tail_sample_calls {
                if let Some(p) = interval.p99_ns() {
                    st.p99.observe(last.secs, p, learning, &policy);
                }
            }
        }
        // Operations absent from this interval keep their baselines; an
        // alert on an operation that stopped being called ends.
        for (name, st) in self.ops.iter_mut() {
            if !last.ops.contains_key(name) {
                st.alerting = false;
            }
        }
        let stalling = window
            .background
            .is_some_and(|b| b.stalled_ns as f64 >= cfg.stall_ms * 1e6);
        if stalling && !out.iter().any(|a| a.cause == Cause::WriteStall) {
            let stall = self.stall_alert(&window);
            if stall.onset {
                self.onsets += 1;
            }
            out.push(stall);
        }
        self.stalling = stalling;
        self.bases.learn(&last, learning, &policy);
        out
    }

    /// The write-stall alert of `window`, shown when no latency alert
    /// already names the stall as its cause.
    fn stall_alert(&self, window: &Window) -> Anomaly {
        let victim = window
            .ops
            .iter()
            .filter(|(name, l)| causes::is_write(name) && l.count > 0)
            .max_by_key(|(_, l)| l.total_ns);
        let op = victim.map_or("WRITE", |(n, _)| n.as_str());
        let (c, b) = (
            victim.and_then(|(_, l)| l.avg_ns()).unwrap_or(0.0),
            self.baseline_avg_ns(op).unwrap_or(0.0),
        );
        let rule: &dyn causes::Rule = &causes::WriteStall;
        let evidence = rule
            .check(op, window, &self.bases, &self.cfg)
            .unwrap_or_default();
        let p99 = victim.and_then(|(_, l)| l.p99_ns());
        Anomaly {
            kind: "write_stall",
            operation: op.to_string(),
            current_avg_us: c / 1e3,
            baseline_avg_us: b / 1e3,
            multiplier: if b > 0.0 { c / b } else { 0.0 },
            p99_us: p99.map(|p| p / 1e3),
            baseline_p99_us: self
                .ops
                .get(op)
                .and_then(|s| s.p99.quantile(0.9))
                .map(|p| p / 1e3),
            cause: Cause::WriteStall,
            evidence,
            next_step: Cause::WriteStall.next_step().to_string(),
            onset: !self.stalling,
            window_secs: window.secs,
            unchecked: window.unchecked(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One 1 s interval of `op` whose calls are `n` calls of `us` each
    /// for every (n, us).
    fn mix(op: &str, calls: &[(u64, f64)]) -> Observation {
        let mut l = Latency::default();
        for &(n, us) in calls {
            let ns = (us * 1000.0) as u64;
            l.count += n;
            l.total_ns += n * ns;
            for _ in 0..n {
                l.hist.record(ns);
            }
        }
        let mut o = Observation {
            secs: 1.0,
            ..Default::default()
        };
        o.ops.insert(op.into(), l);
        o
    }

    /// One 1 s interval with `count` calls of `op` at `avg_us`.
    fn obs(op: &str, count: u64, avg_us: f64) -> Observation {
        mix(op, &[(count, avg_us)])
    }

    /// The interval (1-based) of the first alert over `series`, if any.
    fn first_alert(
        a: &mut Analyzer,
        series: impl IntoIterator<Item = Observation>,
    ) -> Option<(usize, Anomaly)> {
        let mut first = None;
        for (i, o) in series.into_iter().enumerate() {
            let r = a.observe(o);
            if first.is_none() {
                first = r.into_iter().next().map(|x| (i + 1, x));
            }
        }
        first
    }

    /// The default thresholds without the absolute floor of the average
    /// (these series are in µs; `a_small_average_is_not_an_incident` tests
    /// the floor).
    fn cfg(learning_secs: f64) -> Config {
        Config {
            learning_secs,
            spike_min_us: 0.0,
            ..Default::default()
        }
    }

    /// A deterministic noise source (no rand dependency): values in [-1, 1).
    fn noise(i: u64) -> f64 {
        let x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17) >> 11;
        (x as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }

    #[test]
    fn no_alert_during_learning() {
        let mut a = Analyzer::new(cfg(30.0));
        for _ in 0..10 {
            assert!(a.observe(obs("PUT", 100, 10.0)).is_empty());
        }
        // A 50x spike while still learning: silent.
        for _ in 0..15 {
            assert!(a.learning());
            assert!(a.observe(obs("PUT", 100, 500.0)).is_empty());
        }
        assert_eq!(a.alerts(), 0);
    }

    #[test]
    fn alert_on_a_5x_step() {
        let mut a = Analyzer::new(cfg(20.0));
        for _ in 0..30 {
            assert!(a.observe(obs("GET", 1000, 4.0)).is_empty());
        }
        assert!(!a.learning());
        // A step to 10x: the 10 s window average crosses 5x within a few
        // intervals (here: (k*40 + (10-k)*4)/10 > 20 once k >= 5).
        let mut fired_at = None;
        for i in 1..=10 {
            let r = a.observe(obs("GET", 1000, 40.0));
            if !r.is_empty() && fired_at.is_none() {
                fired_at = Some(i);
                assert!(r[0].onset);
                assert_eq!(r[0].operation, "GET");
                assert!((r[0].baseline_avg_us - 4.0).abs() < 1e-6);
                assert!(r[0].multiplier > 5.0);
                assert_eq!(r[0].cause, Cause::Unknown);
            }
        }
        assert_eq!(fired_at, Some(5));
        assert_eq!(a.alerts(), 1, "one alert, however long it lasts");
    }

    #[test]
    fn a_small_average_is_not_an_incident() {
        // Seen on a normal 10-minute run: ITER_CREATE from 2 to 11 us.
        let mut a = Analyzer::new(Config {
            learning_secs: 20.0,
            ..Default::default()
        });
        for _ in 0..30 {
            a.observe(obs("ITER_CREATE", 200, 2.0));
        }
        for _ in 0..20 {
            assert!(a.observe(obs("ITER_CREATE", 200, 11.0)).is_empty());
        }
        // The same ratio above the floor alerts.
        let mut a = Analyzer::new(Config {
            learning_secs: 20.0,
            ..Default::default()
        });
        for _ in 0..30 {
            a.observe(obs("PUT", 200, 20.0));
        }
        let fired = (0..20).any(|_| !a.observe(obs("PUT", 200, 110.0)).is_empty());
        assert!(fired, "5.5x over a 20 us baseline, above 50 us");
    }

    #[test]
    fn an_exact_5x_is_not_over_the_threshold() {
        let mut a = Analyzer::new(cfg(10.0));
        for _ in 0..20 {
            a.observe(obs("PUT", 100, 10.0));
        }
        for _ in 0..20 {
            assert!(a.observe(obs("PUT", 100, 50.0)).is_empty());
        }
    }

    #[test]
    fn no_alert_on_noise() {
        // ±60 % jitter around 10 µs, and an occasional 3x interval.
        let mut a = Analyzer::new(cfg(60.0));
        for i in 0..600 {
            let mut v = 10.0 * (1.0 + 0.6 * noise(i));
            if i % 37 == 0 {
                v = 30.0;
            }
            let r = a.observe(obs("WRITE", 50, v));
            assert!(r.is_empty(), "interval {i}: {r:?}");
        }
    }

    #[test]
    fn few_calls_prove_nothing() {
        let mut a = Analyzer::new(cfg(10.0));
        for _ in 0..20 {
            a.observe(obs("DELETE", 100, 10.0));
        }
        for _ in 0..10 {
            a.observe(obs("DELETE", 0, 0.0));
        }
        // Two slow calls in 10 s: under min_calls.
        assert!(a.observe(obs("DELETE", 2, 5000.0)).is_empty());
    }

    #[test]
    fn recovery_ends_the_alert_and_a_new_spike_counts_again() {
        let mut a = Analyzer::new(cfg(10.0));
        for _ in 0..20 {
            a.observe(obs("PUT", 100, 10.0));
        }
        let mut active = 0;
        for _ in 0..10 {
            active += !a.observe(obs("PUT", 100, 200.0)).is_empty() as u32;
        }
        assert!(active >= 8);
        // Back to normal: the alert ends once the window forgets the spike,
        // and the baseline did not learn the spike.
        let mut quiet_after = None;
        for i in 1..=12 {
            if a.observe(obs("PUT", 100, 10.0)).is_empty() && quiet_after.is_none() {
                quiet_after = Some(i);
            }
        }
        assert!(quiet_after.is_some_and(|i| i <= 10), "{quiet_after:?}");
        for _ in 0..10 {
            assert!(a.observe(obs("PUT", 100, 10.0)).is_empty());
        }
        let mut r = Vec::new();
        for _ in 0..10 {
            r = a.observe(obs("PUT", 100, 200.0));
        }
        assert!(!r.is_empty());
        assert!((r[0].baseline_avg_us - 10.0).abs() < 0.5, "{r:?}");
        assert_eq!(a.alerts(), 2);
    }

    #[test]
    fn observations_from_an_interval_report() {
        let mut s = crate::model::OpStats::default();
        for ns in [1_000u64, 3_000] {
            s.count += 1;
            s.total_ns += ns;
            s.hist.record(ns);
        }
        let r = crate::model::Report {
            interval_secs: 0.5,
            rows: vec![s.row("PUT", 0.5, false, true)],
            ..Default::default()
        };
        let o = Observation::from_report(&r, None);
        assert_eq!(o.secs, 0.5);
        let put = &o.ops["PUT"];
        assert_eq!((put.count, put.total_ns), (2, 4_000));
        assert_eq!(put.hist, s.hist, "the interval's histogram, as counted");
        assert_eq!(o.background, None);
    }

    #[test]
    fn the_window_is_the_last_ten_seconds() {
        let mut a = Analyzer::new(cfg(0.0));
        for _ in 0..5 {
            a.observe(obs("GET", 100, 10.0));
        }
        // 0.5 s intervals: the window spans 20 of them.
        for _ in 0..40 {
            let mut o = obs("GET", 50, 10.0);
            o.secs = 0.5;
            a.observe(o);
        }
        assert_eq!(a.recent.len(), 20);
    }

    #[test]
    fn a_ramp_whose_first_interval_is_just_under_the_multiplier_alerts() {
        // What defeated the EWMA baseline: 4.9x first, then rising by half
        // each interval. Learnt, 4.9x would have lifted the EWMA to 22 us,
        // the threshold to 110 us, and so on up the ramp.
        let mut a = Analyzer::new(cfg(30.0));
        for _ in 0..30 {
            a.observe(obs("PUT", 1000, 10.0));
        }
        let ramp = [49.0, 73.0, 110.0, 165.0, 250.0, 250.0, 250.0, 250.0];
        let (at, an) = first_alert(&mut a, ramp.iter().map(|&us| obs("PUT", 1000, us)))
            .expect("the ramp must alert");
        // Window average over 50 us once sum(ramp[..k]) - 10 k > 400: k = 5.
        assert_eq!(at, 5, "{an:?}");
        assert_eq!(an.kind, "latency_spike");
        assert!(an.onset);
        assert_eq!(
            an.baseline_avg_us, 10.0,
            "the ramp taught the baseline nothing"
        );
        assert_eq!(a.baseline_avg_ns("PUT"), Some(10_000.0));
    }

    #[test]
    fn a_slow_drift_is_followed_without_alerts() {
        // 10 -> 40 us over 20 min (doubling every 10 min) with +-30 % noise:
        // the median of the last 10 min lags ~5 min behind, 1.4x, inside
        // the band, so every interval is learnt.
        let mut a = Analyzer::new(cfg(60.0));
        for i in 0..1200u64 {
            let us = 10.0 * 4f64.powf(i as f64 / 1200.0) * (1.0 + 0.3 * noise(i));
            let r = a.observe(obs("GET", 500, us));
            assert!(r.is_empty(), "interval {i}: {r:?}");
        }
        let b = a.baseline_avg_ns("GET").unwrap() / 1e3;
        assert!((25.0..40.0).contains(&b), "the baseline followed: {b}");
        assert_eq!(a.alerts(), 0);
    }

    #[test]
    fn a_sustained_shift_alerts_then_becomes_the_new_normal() {
        let mut a = Analyzer::new(cfg(30.0));
        for _ in 0..60 {
            a.observe(obs("GET", 200, 10.0));
        }
        // 8x for good (a grown database, say): an alert...
        let mut active = Vec::new();
        for _ in 0..400 {
            active.push(!a.observe(obs("GET", 200, 80.0)).is_empty());
        }
        assert!(active[..10].contains(&true));
        // ...until 90 % of the last 5 min sat above the band (270 s in),
        // then the baseline restarts at the new level and the alert ends.
        let last_alert = active.iter().rposition(|&x| x).unwrap();
        assert!((265..=272).contains(&last_alert), "{last_alert}");
        assert_eq!(a.take_relearnt(), ["GET"]);
        assert_eq!(a.take_relearnt(), Vec::<String>::new());
        assert_eq!(a.baseline_avg_ns("GET"), Some(80_000.0));
        assert_eq!(a.alerts(), 1);
        // A spike on top of the new normal is measured against it.
        let (_, an) = first_alert(&mut a, (0..10).map(|_| obs("GET", 200, 800.0))).unwrap();
        assert_eq!(an.baseline_avg_us, 80.0);
        assert_eq!(a.alerts(), 2);
    }

    #[test]
    fn the_tail_alerts_when_the_average_hides_it() {
        // p99 from 100 us to 10 ms while the average goes 41 -> 189 us (4.6x:
        // no latency spike).
        let mut a = Analyzer::new(cfg(30.0));
        for _ in 0..30 {
            a.observe(mix("PUT", &[(980, 40.0), (20, 100.0)]));
        }
        let tail = (0..10).map(|_| mix("PUT", &[(985, 40.0), (15, 10_000.0)]));
        let (at, an) = first_alert(&mut a, tail).expect("a tail alert");
        // The window p99 reaches the slow calls once they are 1 % of its
        // 10,000 calls: 15 k >= 100 at k = 7.
        assert_eq!(at, 7, "{an:?}");
        assert_eq!(an.kind, "tail_latency");
        assert!(an.multiplier < 5.0, "{an:?}");
        let (p99, base) = (an.p99_us.unwrap(), an.baseline_p99_us.unwrap());
        assert!((8_000.0..=12_500.0).contains(&p99), "{an:?}");
        assert!((90.0..=125.0).contains(&base), "{an:?}");
        assert!(
            an.headline().starts_with("PUT p99 latency"),
            "{}",
            an.headline()
        );
        let v = serde_json::to_value(&an).unwrap();
        assert_eq!(v["type"], "tail_latency");
        assert!(v["p99_us"].as_f64().is_some() && v["baseline_p99_us"].as_f64().is_some());
    }

    #[test]
    fn a_fast_operations_tail_under_a_millisecond_is_no_incident() {
        // GET p99 3 us -> 60 us (20x): under tail_min_us, silent.
        let mut a = Analyzer::new(cfg(30.0));
        for _ in 0..30 {
            a.observe(mix("GET", &[(990, 2.0), (10, 3.0)]));
        }
        for _ in 0..20 {
            let r = a.observe(mix("GET", &[(970, 2.0), (30, 60.0)]));
            assert!(r.is_empty(), "{r:?}");
        }
    }

    /// PUTs at a steady 50 us, with `stalled_ms` of write stall in the
    /// interval.
    fn stalled(stalled_ms: u64) -> Observation {
        let mut o = obs("PUT", 1000, 50.0);
        o.background = Some(BgWindow {
            stalled_ns: stalled_ms * 1_000_000,
            delay_tokens: (stalled_ms > 0) as u64,
            ..Default::default()
        });
        o
    }

    #[test]
    fn a_write_stall_alerts_on_its_own_evidence() {
        // Averages flat, still learning: writers held back for 600 ms a
        // second is an incident all the same, from the second interval on.
        let mut a = Analyzer::new(cfg(300.0));
        for _ in 0..5 {
            assert!(a.observe(stalled(0)).is_empty());
        }
        assert!(a.observe(stalled(600)).is_empty(), "600 ms: under 1 s");
        let r = a.observe(stalled(600));
        assert_eq!(r.len(), 1, "{r:?}");
        let an = &r[0];
        assert!(a.learning());
        assert_eq!((an.kind, an.cause), ("write_stall", Cause::WriteStall));
        assert_eq!(an.operation, "PUT");
        assert!(an.onset);
        assert_eq!(an.evidence["stalled_ms"], 1200.0);
        assert_eq!(an.evidence["delay_tokens"], 2.0);
        assert!((an.multiplier - 1.0).abs() < 1e-9, "{an:?}");
        assert!(an.next_step.contains("ckb-libbpf rocksdb --slow"));
        assert_eq!(
            an.headline(),
            "RocksDB stalled writers for 1200 ms in the last 7 s"
        );
        // It lasts while the window holds a second of stall, counted once.
        let r = a.observe(stalled(0));
        assert!(!r[0].onset);
        for _ in 0..7 {
            a.observe(stalled(0));
        }
        assert!(a.observe(stalled(0)).is_empty(), "the window forgot it");
        assert_eq!(a.alerts(), 1);
    }

    #[test]
    fn a_latency_spike_caused_by_the_stall_is_the_only_alert() {
        let mut a = Analyzer::new(cfg(10.0));
        for _ in 0..20 {
            a.observe(stalled(0));
        }
        let mut o = stalled(1500);
        o.ops
            .insert("PUT".into(), obs("PUT", 100, 50_000.0).ops["PUT"].clone());
        let r = a.observe(o);
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(
            (r[0].kind, r[0].cause),
            ("latency_spike", Cause::WriteStall)
        );
        assert_eq!(a.alerts(), 1);
    }

    #[test]
    fn a_stall_with_no_write_returned_names_write() {
        let mut a = Analyzer::new(cfg(0.0));
        let mut o = stalled(3000);
        o.ops.clear();
        o.ops
            .insert("GET".into(), obs("GET", 10, 5.0).ops["GET"].clone());
        let r = a.observe(o);
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!((r[0].operation.as_str(), r[0].multiplier), ("WRITE", 0.0));
        assert_eq!(r[0].evidence["stalled_share"], 1.0);
    }
}
