//! Log-linear latency histograms, as filled by the BPF side (layout in
//! `include/ckb_libbpf.h`), and the percentile estimate every view shares.

/// Sub-bucket bits per power of two (`LAT_SUB_BITS` in the C header).
pub const SUB_BITS: u32 = 2;
pub const SUBS: usize = 1 << SUB_BITS;
pub const POWERS: usize = 40;
pub const SLOTS: usize = POWERS * SUBS;

/// Lower bound and width (ns) of histogram slot `s`.
pub fn slot_bounds(s: usize) -> (u64, u64) {
    if s < SUBS {
        return (s as u64, 1);
    }
    let shift = (s / SUBS - 1) as u32;
    (((SUBS + s % SUBS) as u64) << shift, 1u64 << shift)
}

/// The slot a value falls into (the same function as the BPF `lat_slot`).
pub fn slot_of(ns: u64) -> usize {
    if ns < SUBS as u64 {
        return ns as usize;
    }
    let p = 63 - ns.leading_zeros();
    let slot = (p - SUB_BITS + 1) as usize * SUBS + ((ns >> (p - SUB_BITS)) as usize & (SUBS - 1));
    slot.min(SLOTS - 1)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Histogram {
    pub slots: Vec<u64>,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            slots: vec![0; SLOTS],
        }
    }
}

impl Histogram {
    pub fn from_slots(slots: &[u64]) -> Self {
        let mut h = Histogram::default();
        for (d, s) in h.slots.iter_mut().zip(slots) {
            *d = *s;
        }
        h
    }

    pub fn record(&mut self, ns: u64) {
        self.slots[slot_of(ns)] += 1;
    }

    pub fn count(&self) -> u64 {
        self.slots.iter().sum()
    }

    pub fn add(&mut self, other: &Histogram) {
        for (a, b) in self.slots.iter_mut().zip(&other.slots) {
            *a += b;
        }
    }

    /// `self - earlier`, for interval figures from cumulative counters.
    pub fn minus(&self, earlier: &Histogram) -> Histogram {
        Histogram {
            slots: self
                .slots
                .iter()
                .zip(&earlier.slots)
                .map(|(a, b)| a.saturating_sub(*b))
                .collect(),
        }
    }

    /// The q-quantile (0 < q <= 1) in ns, interpolated linearly inside the
    /// bucket that holds it, and clamped to `max_ns` when the exact maximum is
    /// known (a bucket's upper edge can lie above the largest value seen).
    pub fn quantile(&self, q: f64, max_ns: Option<u64>) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * total as f64).max(1.0);
        let mut seen = 0u64;
        for (s, &n) in self.slots.iter().enumerate() {
            if n == 0 {
                continue;
            }
            if (seen + n) as f64 >= rank {
                let (lo, width) = slot_bounds(s);
                let frac = (rank - seen as f64) / n as f64;
                let v = lo as f64 + frac * width as f64;
                return Some(match max_ns {
                    Some(m) => v.min(m as f64),
                    None => v,
                });
            }
            seen += n;
        }
        None
    }

    /// Counts folded into plain log2 rows (row p covers [2^p, 2^(p+1)) ns),
    /// as biolatency prints them. Returns (p, count) for p in the used range.
    pub fn log2_rows(&self) -> Vec<(u32, u64)> {
        let mut rows = [0u64; 64];
        for (s, &n) in self.slots.iter().enumerate() {
            if n > 0 {
                let (lo, _) = slot_bounds(s);
                let p = if lo == 0 { 0 } else { 63 - lo.leading_zeros() };
                rows[p as usize] += n;
            }
        }
        let first = rows.iter().position(|&n| n > 0);
        let last = rows.iter().rposition(|&n| n > 0);
        match (first, last) {
            (Some(f), Some(l)) => (f..=l).map(|p| (p as u32, rows[p])).collect(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_tile_the_line() {
        // Every slot starts where the previous one ends, and slot_of agrees.
        let mut next = 0u64;
        for s in 0..SLOTS - 1 {
            let (lo, w) = slot_bounds(s);
            assert_eq!(lo, next, "slot {s}");
            assert_eq!(slot_of(lo), s);
            assert_eq!(slot_of(lo + w - 1), s);
            next = lo + w;
        }
        assert_eq!(slot_of(u64::MAX), SLOTS - 1);
    }

    #[test]
    fn quantile_interpolates_inside_the_bucket() {
        // 1000 values spread uniformly over 10_000..20_000 ns.
        let mut h = Histogram::default();
        for i in 0..1000u64 {
            h.record(10_000 + i * 10);
        }
        let p50 = h.quantile(0.5, Some(19_990)).unwrap();
        let p99 = h.quantile(0.99, Some(19_990)).unwrap();
        assert!((p50 - 15_000.0).abs() / 15_000.0 < 0.05, "p50 {p50}");
        assert!((p99 - 19_900.0).abs() / 19_900.0 < 0.05, "p99 {p99}");
    }

    #[test]
    fn quantile_is_clamped_to_the_known_max() {
        let mut h = Histogram::default();
        h.record(16_384); // bucket [16384, 20480)
        assert_eq!(h.quantile(0.99, Some(16_384)), Some(16_384.0));
        assert!(h.quantile(0.99, None).unwrap() > 16_384.0);
    }

    #[test]
    fn empty_histogram_has_no_quantile() {
        assert_eq!(Histogram::default().quantile(0.5, None), None);
    }

    #[test]
    fn log2_rows_fold_sub_buckets() {
        let mut h = Histogram::default();
        h.record(1500); // [1024, 2048)
        h.record(2000);
        h.record(5000); // [4096, 8192)
        assert_eq!(h.log2_rows(), vec![(10, 2), (11, 0), (12, 1)]);
    }

    #[test]
    fn minus_gives_interval_counts() {
        let mut a = Histogram::default();
        a.record(100);
        let mut b = a.clone();
        b.record(100);
        b.record(5000);
        let d = b.minus(&a);
        assert_eq!(d.count(), 2);
    }
}
