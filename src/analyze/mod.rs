//! Anomaly detection over what the layers measured: pure functions of
//! plain data, no BPF, no terminal (ARCHITECTURE invariant).
//!
//! Each interval the capture hands the `Analyzer` one `Observation`: per
//! operation the calls and their summed latency, plus whatever the other
//! layers saw in the same interval (background jobs and write stalls,
//! fsync latency, futex traffic, peer churn; each may be absent). The
//! analyzer keeps
//! - per operation an EWMA baseline of the average latency (`baseline`),
//!   learnt during the first `learning_secs` and afterwards only from
//!   intervals that are not themselves spikes;
//! - a sliding window of the last `window_secs` of observations;
//!
//! and reports a latency spike when an operation's window average exceeds
//! `multiplier` times its baseline. Each spike names its probable cause,
//! the first of the `causes` rules that the window's evidence supports.

pub mod baseline;
pub mod causes;
pub mod inputs;

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

pub use baseline::Ewma;
pub use causes::Cause;

/// Thresholds; every one is configurable from the command line.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// EWMA smoothing factor per interval (0 < alpha <= 1).
    pub alpha: f64,
    /// Alert when the window average exceeds this many baselines.
    pub multiplier: f64,
    /// The "last N seconds" the alert looks at.
    pub window_secs: f64,
    /// No alerts before this much time has been observed.
    pub learning_secs: f64,
    /// Fewer calls than this in the window prove nothing: no alert.
    pub min_calls: u64,
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
            alpha: 0.3,
            multiplier: 5.0,
            window_secs: 10.0,
            learning_secs: 300.0,
            min_calls: 5,
            futex_rate_multiplier: 3.0,
            futex_wait_share: 0.7,
            churn_per_min: 10.0,
        }
    }
}

/// Calls and their summed latency over some span.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Latency {
    pub count: u64,
    pub total_ns: u64,
}

impl Latency {
    pub fn avg_ns(&self) -> Option<f64> {
        (self.count > 0).then(|| self.total_ns as f64 / self.count as f64)
    }
    fn add(&mut self, o: &Latency) {
        self.count += o.count;
        self.total_ns += o.total_ns;
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
    /// Per operation class (GET, PUT...): calls and summed latency.
    pub ops: BTreeMap<String, Latency>,
    pub background: Option<BgWindow>,
    /// fsync + fdatasync of the target.
    pub fsync: Option<Latency>,
    /// Their latency histogram (for the p99 in the evidence).
    pub fsync_hist: Option<crate::model::Histogram>,
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
    pub fsync_hist: Option<crate::model::Histogram>,
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
            if let Some(h) = &o.fsync_hist {
                w.fsync_hist.get_or_insert_with(Default::default).add(h);
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
    /// Always "latency_spike" today.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub operation: String,
    /// The window's average latency and the baseline, in microseconds.
    pub current_avg_us: f64,
    pub baseline_avg_us: f64,
    /// current / baseline.
    pub multiplier: f64,
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

#[derive(Clone, Debug, Default)]
struct OpState {
    baseline: Ewma,
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
    onsets: u64,
}

impl Analyzer {
    pub fn new(cfg: Config) -> Analyzer {
        Analyzer {
            bases: causes::Baselines::new(cfg.alpha),
            cfg,
            elapsed: 0.0,
            recent: VecDeque::new(),
            ops: BTreeMap::new(),
            onsets: 0,
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Still learning the baselines (no alerts yet)?
    pub fn learning(&self) -> bool {
        self.elapsed < self.cfg.learning_secs
    }

    /// Alerts raised so far (each counted once, at its onset).
    pub fn alerts(&self) -> u64 {
        self.onsets
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

        let alpha = self.cfg.alpha;
        let mut out = Vec::new();
        for (name, interval) in &last.ops {
            let st = self.ops.entry(name.clone()).or_insert_with(|| OpState {
                baseline: Ewma::new(alpha),
                alerting: false,
            });
            let now = window.ops.get(name).copied().unwrap_or_default();
            let current = now.avg_ns().filter(|_| now.count >= self.cfg.min_calls);
            let spike = match (current, st.baseline.value()) {
                (Some(c), Some(b)) if !learning && b > 0.0 => c > self.cfg.multiplier * b,
                _ => false,
            };
            if spike {
                let (c, b) = (current.unwrap_or(0.0), st.baseline.value().unwrap_or(0.0));
                let (cause, evidence) = causes::attribute(name, &window, &self.bases, &self.cfg);
                out.push(Anomaly {
                    kind: "latency_spike",
                    operation: name.clone(),
                    current_avg_us: c / 1000.0,
                    baseline_avg_us: b / 1000.0,
                    multiplier: c / b,
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
            st.alerting = spike;
            // Learn from ordinary intervals only: a spike must not teach
            // the baseline that it is normal.
            if let Some(avg) = interval.avg_ns() {
                let outlier = !learning
                    && st
                        .baseline
                        .value()
                        .is_some_and(|b| avg > self.cfg.multiplier * b);
                if !spike && !outlier {
                    st.baseline.update(avg);
                }
            }
        }
        // Operations absent from this interval keep their state; an alert
        // on an operation that stopped being called ends.
        for (name, st) in self.ops.iter_mut() {
            if !last.ops.contains_key(name) {
                st.alerting = false;
            }
        }
        self.bases.learn(&last, learning, &self.cfg);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One 1 s interval with `count` calls of `op` at `avg_us`.
    fn obs(op: &str, count: u64, avg_us: f64) -> Observation {
        let mut o = Observation {
            secs: 1.0,
            ..Default::default()
        };
        o.ops.insert(
            op.into(),
            Latency {
                count,
                total_ns: (count as f64 * avg_us * 1000.0) as u64,
            },
        );
        o
    }

    fn cfg(learning_secs: f64) -> Config {
        Config {
            learning_secs,
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
        assert_eq!(
            o.ops["PUT"],
            Latency {
                count: 2,
                total_ns: 4_000
            }
        );
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
}
