//! What the probes cost the traced process, estimated live, and the duty
//! cycle that keeps that cost under `--overhead-budget`.
//!
//! Cost model: every traced call pays one uprobe + uretprobe hit, whose CPU
//! cost depends on the probed function's first instruction (the kernel
//! emulates a `push reg`, single-steps most others, see `node::insn`).
//! The per-hit cost of each class is measured at start-up on this machine
//! (`probe::calibrate`), or taken from BENCHMARKS.md if that fails. The
//! estimate is then Σ hits × per-hit cost over the span, as a share of one
//! core. Plain data and arithmetic: no BPF, no terminal.

use std::time::{Duration, Instant};

/// Per-hit defaults when the calibration fails: BENCHMARKS.md section 5
/// (uprobe + uretprobe + our programs, this project's reference VM:
/// 1.56–1.85 µs emulated, 10.0–10.14 µs single-stepped), rounded up.
pub const DEFAULT_EMULATED_NS: f64 = 2000.0;
pub const DEFAULT_SINGLE_STEPPED_NS: f64 = 12000.0;

/// The least attached share of each interval under a budget: below it the
/// windows get shorter than attach + detach themselves, and the estimate
/// would rest on too few hits. A budget that needs less is reported as
/// missed, not met silently.
pub const MIN_FRACTION: f64 = 0.01;
/// The most the attached share grows from one interval to the next.
pub const RAMP: f64 = 4.0;
/// The attached share of the first interval under a budget, before any
/// rate is known.
pub const FIRST_FRACTION: f64 = 0.02;

/// How expensive one hit of a probed function is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HitClass {
    /// First instruction emulated in the trap handler (`push reg`, ...).
    Emulated,
    /// First instruction single-stepped out of line (a second trap). Also
    /// used for instructions that could not be classified: the budget errs
    /// on the side of cost.
    SingleStepped,
}

/// Measured (or default) CPU cost of one hit, per class, in ns.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PerHit {
    pub emulated_ns: f64,
    pub single_stepped_ns: f64,
    /// True when measured at start-up; false for the documented defaults.
    pub calibrated: bool,
}

impl Default for PerHit {
    fn default() -> Self {
        PerHit {
            emulated_ns: DEFAULT_EMULATED_NS,
            single_stepped_ns: DEFAULT_SINGLE_STEPPED_NS,
            calibrated: false,
        }
    }
}

impl PerHit {
    pub fn cost_ns(&self, hits: &Hits) -> f64 {
        hits.emulated as f64 * self.emulated_ns
            + hits.single_stepped as f64 * self.single_stepped_ns
    }
}

/// Traced calls over a span, per class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hits {
    pub emulated: u64,
    pub single_stepped: u64,
}

impl Hits {
    pub fn add(&mut self, class: HitClass, n: u64) {
        match class {
            HitClass::Emulated => self.emulated += n,
            HitClass::SingleStepped => self.single_stepped += n,
        }
    }
    pub fn total(&self) -> u64 {
        self.emulated + self.single_stepped
    }
}

/// The estimate shown with a report.
#[derive(Clone, Debug, PartialEq)]
pub struct Overhead {
    /// What the probes cost over the span, % of one core (what the target
    /// actually paid: only attached time has hits).
    pub est_pct_core: f64,
    /// What they would have cost attached all the time: the hit rate seen
    /// while attached, over the whole span.
    pub always_pct_core: f64,
    pub per_hit: PerHit,
    /// Share of the span with probes attached, %.
    pub attached_pct: f64,
    pub budget_pct: Option<f64>,
    pub hits: Hits,
}

impl Overhead {
    /// Counts and rates cover only part of the span.
    pub fn sampled(&self) -> bool {
        self.attached_pct < 99.95
    }
    /// Under a budget that even the least attached share cannot meet.
    pub fn over_budget(&self) -> bool {
        self.budget_pct.is_some_and(|b| {
            self.est_pct_core > b * 1.05 && self.attached_pct <= MIN_FRACTION * 100.0 * 1.05
        })
    }
}

/// % of one core that `ns` of CPU over `secs` seconds is.
fn pct_core(ns: f64, secs: f64) -> f64 {
    if secs > 0.0 {
        ns / (secs * 1e9) * 100.0
    } else {
        0.0
    }
}

/// The attached share of the next interval: the budget over the cost when
/// always attached, between MIN_FRACTION and 1. It falls at once and rises
/// at most twofold per interval, so a quiet spell does not let the next
/// burst be traced in full.
pub fn next_fraction(budget_pct: f64, always_pct: f64, prev: f64) -> f64 {
    let target = if always_pct > 0.0 {
        (budget_pct / always_pct).clamp(MIN_FRACTION, 1.0)
    } else {
        1.0
    };
    if target > prev {
        target.min(prev * RAMP)
    } else {
        target
    }
}

/// Keeps track of attached time and chooses how much of each interval the
/// probes stay attached. Without a budget it only measures.
#[derive(Clone, Debug)]
pub struct DutyCycle {
    pub per_hit: PerHit,
    pub budget_pct: Option<f64>,
    fraction: f64,
    attached_since: Option<Instant>,
    interval_start: Instant,
    /// Attached time of the interval in progress, up to `attached_since`.
    attached: Duration,
    total_attached: Duration,
    total_span: Duration,
}

impl DutyCycle {
    pub fn new(per_hit: PerHit, budget_pct: Option<f64>, now: Instant) -> DutyCycle {
        DutyCycle {
            per_hit,
            budget_pct,
            fraction: if budget_pct.is_some() {
                FIRST_FRACTION
            } else {
                1.0
            },
            attached_since: None,
            interval_start: now,
            attached: Duration::ZERO,
            total_attached: Duration::ZERO,
            total_span: Duration::ZERO,
        }
    }

    /// A session starts at `now`, its probes attached (the first, or after
    /// a restart of the target): the time without a target is no part of
    /// any interval.
    pub fn resume(&mut self, now: Instant) {
        self.attached_since = Some(now);
        self.attached = Duration::ZERO;
        self.interval_start = now;
    }

    /// The share of the next interval to stay attached (1 without a budget).
    pub fn fraction(&self) -> f64 {
        self.fraction
    }

    pub fn is_attached(&self) -> bool {
        self.attached_since.is_some()
    }

    /// The probes are attached from `now`.
    pub fn attached(&mut self, now: Instant) {
        if self.attached_since.is_none() {
            self.attached_since = Some(now);
        }
    }

    /// The probes are detached from `now`.
    pub fn detached(&mut self, now: Instant) {
        if let Some(t) = self.attached_since.take() {
            self.attached += now.saturating_duration_since(t);
        }
    }

    /// Ends the interval at `now`; returns (span, attached time) of it.
    fn close(&mut self, now: Instant) -> (Duration, Duration) {
        let mut attached = std::mem::take(&mut self.attached);
        if let Some(t) = self.attached_since.as_mut() {
            attached += now.saturating_duration_since(*t);
            *t = now;
        }
        let span = now.saturating_duration_since(self.interval_start);
        self.interval_start = now;
        let attached = attached.min(span);
        self.total_attached += attached;
        self.total_span += span;
        (span, attached)
    }

    fn overhead(&self, hits: Hits, span: Duration, attached: Duration) -> Overhead {
        let ns = self.per_hit.cost_ns(&hits);
        let (secs, on) = (span.as_secs_f64(), attached.as_secs_f64());
        let attached_pct = if secs > 0.0 {
            (on / secs * 100.0).min(100.0)
        } else {
            100.0
        };
        Overhead {
            est_pct_core: pct_core(ns, secs),
            always_pct_core: pct_core(ns, on),
            per_hit: self.per_hit,
            attached_pct,
            budget_pct: self.budget_pct,
            hits,
        }
    }

    /// The interval that ends at `now` had `hits`: its estimate; with a
    /// budget, also the attached share of the next interval.
    pub fn interval(&mut self, hits: Hits, now: Instant) -> Overhead {
        let (span, attached) = self.close(now);
        let o = self.overhead(hits, span, attached);
        if let Some(b) = self.budget_pct {
            // Too short an attached window says nothing: keep the share.
            if attached >= Duration::from_millis(1) {
                self.fraction = next_fraction(b, o.always_pct_core, self.fraction);
            }
        }
        o
    }

    /// The whole capture, `hits` in total: the intervals closed so far.
    pub fn whole(&self, hits: Hits) -> Overhead {
        self.overhead(hits, self.total_span, self.total_attached)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_hit() -> PerHit {
        PerHit {
            emulated_ns: 2000.0,
            single_stepped_ns: 10000.0,
            calibrated: true,
        }
    }

    #[test]
    fn estimate_is_hits_times_cost_over_the_span() {
        let t0 = Instant::now();
        let mut d = DutyCycle::new(per_hit(), None, t0);
        d.attached(t0);
        let hits = Hits {
            emulated: 1000,
            single_stepped: 100,
        };
        let o = d.interval(hits, t0 + Duration::from_secs(1));
        // 1000 × 2 µs + 100 × 10 µs = 3 ms in 1 s = 0.3 % of a core.
        assert!((o.est_pct_core - 0.3).abs() < 1e-9, "{o:?}");
        assert_eq!(o.est_pct_core, o.always_pct_core);
        assert_eq!(o.attached_pct, 100.0);
        assert!(!o.sampled());
        assert_eq!(d.fraction(), 1.0, "no budget: always attached");
    }

    #[test]
    fn sampled_span_extrapolates_the_always_attached_cost() {
        let t0 = Instant::now();
        let mut d = DutyCycle::new(per_hit(), Some(1.0), t0);
        d.attached(t0);
        d.detached(t0 + Duration::from_millis(250));
        let o = d.interval(
            Hits {
                emulated: 2000,
                single_stepped: 0,
            },
            t0 + Duration::from_secs(1),
        );
        // 4 ms of probe CPU in 1 s, over 0.25 s attached.
        assert!((o.est_pct_core - 0.4).abs() < 1e-9);
        assert!((o.always_pct_core - 1.6).abs() < 1e-9);
        assert!((o.attached_pct - 25.0).abs() < 1e-9);
        assert!(o.sampled());
        // Next: 1 / 1.6 = 62.5 %, but at most RAMP × the first share.
        assert!((d.fraction() - FIRST_FRACTION * RAMP).abs() < 1e-9);
    }

    #[test]
    fn fraction_falls_at_once_rises_gradually_and_has_a_floor() {
        assert!((next_fraction(1.0, 4.0, 1.0) - 0.25).abs() < 1e-12);
        assert!((next_fraction(1.0, 4.0, 0.05) - 0.05 * RAMP).abs() < 1e-12);
        assert_eq!(next_fraction(1.0, 0.5, 0.8), 1.0);
        assert_eq!(next_fraction(1.0, 0.0, 0.6), 1.0);
        assert_eq!(next_fraction(0.01, 30.0, 0.1), MIN_FRACTION);
        assert_eq!(next_fraction(1.0, 0.5, 0.2), 0.8);
    }

    #[test]
    fn whole_capture_sums_the_intervals() {
        let t0 = Instant::now();
        let mut d = DutyCycle::new(per_hit(), Some(0.5), t0);
        d.attached(t0);
        d.detached(t0 + Duration::from_millis(100));
        d.interval(Hits::default(), t0 + Duration::from_secs(1));
        d.attached(t0 + Duration::from_secs(1));
        d.interval(Hits::default(), t0 + Duration::from_secs(2));
        let w = d.whole(Hits {
            emulated: 500,
            single_stepped: 0,
        });
        assert!((w.attached_pct - 55.0).abs() < 1e-9, "{w:?}");
        assert!((w.est_pct_core - 0.05).abs() < 1e-9);
    }

    #[test]
    fn over_budget_only_at_the_floor() {
        let t0 = Instant::now();
        let mut d = DutyCycle::new(per_hit(), Some(0.01), t0);
        d.attached(t0);
        d.detached(t0 + Duration::from_millis(10));
        let o = d.interval(
            Hits {
                emulated: 1000,
                single_stepped: 0,
            },
            t0 + Duration::from_secs(1),
        );
        assert!(o.over_budget(), "{o:?}");
    }
}
