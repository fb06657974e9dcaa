//! The baseline every detector compares against: the median of the recent
//! *normal* intervals, which a ramp cannot teach and a lasting shift can.
//!
//! Why not an EWMA over every interval that is not itself a spike (what
//! this replaced): an incident rarely starts as a clean step. If its first
//! interval sits just under the alert threshold, the EWMA learns it, the
//! threshold climbs, the next interval is again just under it, and the
//! baseline follows the ramp up without ever alerting (issue 13: a real
//! write stall, 5-10x the average, raised nothing). Three rules close that:
//!
//! 1. **Learn only from intervals close to the baseline**: at most `band`
//!    (2x) times it. Anything further out is held back, whether or not it
//!    alerts, so a ramp's first steps teach nothing. Faster intervals are
//!    always learnt: an improvement is never an incident.
//! 2. **Median over a long horizon**: the baseline is the time-weighted
//!    median of the last `horizon_secs` (10 min) of learnt intervals. A few
//!    near-band intervals cannot move a median of hundreds; a slow drift
//!    moves it, with a lag of about half the horizon, so a drift never
//!    outruns it by the alert multiplier (no alert, by design). Held-back
//!    intervals do not age the horizon: during an incident the baseline
//!    stays what it was before.
//! 3. **Relearn after a sustained shift**: when at least `relearn_share`
//!    (90 %) of the last `relearn_secs` (5 min) sat above the band, that is
//!    the new normal (an upgrade, a grown database): the baseline restarts
//!    from those intervals. A lasting incident thus alerts for 4.5 min
//!    before it is accepted as normal, and a burst of a few minutes, or one
//!    that keeps dipping back, never is.
//!
//! During the learning period every interval is learnt (the median shrugs
//! off spikes in it).

use std::collections::VecDeque;

/// How a baseline learns; see the module doc.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Policy {
    /// Intervals up to this many baselines are learnt.
    pub band: f64,
    /// Seconds of learnt intervals the median covers.
    pub horizon_secs: f64,
    /// A shift held this long becomes the new normal...
    pub relearn_secs: f64,
    /// ...when at least this share of that time was above the band.
    pub relearn_share: f64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            band: 2.0,
            horizon_secs: 600.0,
            relearn_secs: 300.0,
            relearn_share: 0.9,
        }
    }
}

/// What one sample did to the baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learnt {
    /// Close to the baseline (or still learning): part of it now.
    Learnt,
    /// Too far above: not learnt.
    Held,
    /// Held, and the shift has lasted `relearn_secs`: the baseline
    /// restarted from the last `relearn_secs`.
    Relearnt,
}

/// (seconds covered, value) samples, oldest first, trimmed to a span.
#[derive(Clone, Debug, Default, PartialEq)]
struct Span {
    samples: VecDeque<(f64, f64)>,
    secs: f64,
}

impl Span {
    fn push(&mut self, secs: f64, x: f64, keep_secs: f64) {
        self.samples.push_back((secs, x));
        self.secs += secs;
        // Drop the oldest while the rest still covers `keep_secs`.
        while let Some(&(s, _)) = self.samples.front() {
            if self.samples.len() > 1 && self.secs - s >= keep_secs - 1e-9 {
                self.samples.pop_front();
                self.secs -= s;
            } else {
                break;
            }
        }
    }

    /// The time-weighted q-quantile (the lower one on a tie).
    fn quantile(&self, q: f64) -> Option<f64> {
        let mut v: Vec<(f64, f64)> = self.samples.iter().map(|&(s, x)| (x, s)).collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total: f64 = v.iter().map(|&(_, s)| s).sum();
        let mut seen = 0.0;
        for &(x, s) in &v {
            seen += s;
            if seen >= q * total - 1e-9 {
                return Some(x);
            }
        }
        v.last().map(|&(x, _)| x)
    }
}

/// A robust baseline of one signal (an average latency, a p99, a rate).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Baseline {
    /// Learnt intervals over the horizon.
    normal: Span,
    /// Every interval of the last `relearn_secs`, learnt or not.
    recent: Span,
}

impl Baseline {
    /// The median of the learnt intervals; None before the first.
    pub fn value(&self) -> Option<f64> {
        self.normal.quantile(0.5)
    }

    /// Another time-weighted quantile of the learnt intervals.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        self.normal.quantile(q)
    }

    /// Takes one interval's value `x` covering `secs`.
    pub fn observe(&mut self, secs: f64, x: f64, learning: bool, p: &Policy) -> Learnt {
        if !x.is_finite() || secs <= 0.0 {
            return Learnt::Held;
        }
        self.recent.push(secs, x, p.relearn_secs);
        let base = self.value();
        let close = base.is_none_or(|b| x <= p.band * b);
        if learning || close {
            self.normal.push(secs, x, p.horizon_secs);
            return Learnt::Learnt;
        }
        let b = base.unwrap_or(0.0);
        let above: f64 = self
            .recent
            .samples
            .iter()
            .filter(|&&(_, v)| v > p.band * b)
            .map(|&(s, _)| s)
            .sum();
        if self.recent.secs >= p.relearn_secs - 1e-9 && above >= p.relearn_share * self.recent.secs
        {
            self.normal = self.recent.clone();
            return Learnt::Relearnt;
        }
        Learnt::Held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(b: &mut Baseline, xs: &[f64], learning: bool) -> Vec<Learnt> {
        let p = Policy::default();
        xs.iter()
            .map(|&x| b.observe(1.0, x, learning, &p))
            .collect()
    }

    #[test]
    fn the_median_of_learnt_intervals() {
        let mut b = Baseline::default();
        assert_eq!(b.value(), None);
        feed(&mut b, &[10.0, 12.0, 500.0, 11.0, 9.0], true);
        // The spike during learning is learnt but does not move the median.
        assert_eq!(b.value(), Some(11.0));
    }

    #[test]
    fn far_intervals_are_held_and_faster_ones_learnt() {
        let mut b = Baseline::default();
        feed(&mut b, &[10.0; 20], true);
        assert_eq!(feed(&mut b, &[20.0], false), [Learnt::Learnt]);
        assert_eq!(feed(&mut b, &[20.1, 49.0], false), [Learnt::Held; 2]);
        assert_eq!(feed(&mut b, &[0.5], false), [Learnt::Learnt]);
        assert_eq!(b.value(), Some(10.0));
    }

    #[test]
    fn the_horizon_keeps_the_last_ten_minutes_of_learnt_time() {
        let mut b = Baseline::default();
        feed(&mut b, &[10.0; 600], true);
        feed(&mut b, &[15.0; 301], false);
        assert_eq!(b.value(), Some(15.0));
        assert_eq!(b.normal.samples.len(), 600);
        // Held intervals do not age it.
        feed(&mut b, &[1000.0; 200], false);
        assert_eq!(b.normal.samples.len(), 600);
    }

    #[test]
    fn a_shift_held_for_five_minutes_is_the_new_normal() {
        let mut b = Baseline::default();
        feed(&mut b, &[10.0; 100], true);
        // 4.5 min at 8x with one interval in the band among them: 269 s of
        // the last 300 shifted, one short of 90 %.
        let mut xs = vec![80.0; 270];
        xs[100] = 10.0;
        let r = feed(&mut b, &xs, false);
        assert!(!r.contains(&Learnt::Relearnt));
        assert_eq!(r[100], Learnt::Learnt);
        assert_eq!(b.value(), Some(10.0));
        assert_eq!(feed(&mut b, &[80.0], false), [Learnt::Relearnt]);
        assert_eq!(b.value(), Some(80.0));
        assert_eq!(feed(&mut b, &[85.0], false), [Learnt::Learnt]);
    }

    #[test]
    fn an_intermittent_shift_is_not_relearnt() {
        let mut b = Baseline::default();
        feed(&mut b, &[10.0; 100], true);
        // Every fifth interval normal: 80 % shifted, under the 90 % needed.
        let xs: Vec<f64> = (0..1000)
            .map(|i| if i % 5 == 0 { 10.0 } else { 80.0 })
            .collect();
        assert!(!feed(&mut b, &xs, false).contains(&Learnt::Relearnt));
        assert_eq!(b.value(), Some(10.0));
    }
}
