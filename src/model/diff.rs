//! Interval arithmetic shared by every layer. The kernel keeps cumulative
//! counters per key and, per interval, the exact maximum latency (see
//! src/bpf/epoch.bpf.h); `Cumulative` turns successive reads into interval
//! deltas and keeps what a whole capture needs: the exact maximum over all
//! intervals, and the counters of sessions (traced processes) that ended,
//! whose maps are gone.

use std::collections::HashMap;
use std::hash::Hash;

/// Counters that add up and difference; `max_ns` is never differenced.
pub trait Counters: Clone + Default {
    fn add(&mut self, o: &Self);
    /// Counters accumulated since `earlier` (saturating), `max_ns` kept.
    fn minus(&self, earlier: &Self) -> Self;
    fn max_ns(&self) -> u64;
    fn set_max_ns(&mut self, v: u64);
}

/// Cumulative reads of one capture, per key `K`.
#[derive(Clone, Debug)]
pub struct Cumulative<K, V> {
    /// Current session: counters at the last read, and the exact maximum
    /// over all its intervals.
    prev: HashMap<K, V>,
    max: HashMap<K, u64>,
    /// Sessions that ended, maxima folded in.
    closed: HashMap<K, V>,
}

impl<K, V> Default for Cumulative<K, V> {
    fn default() -> Self {
        Cumulative {
            prev: HashMap::new(),
            max: HashMap::new(),
            closed: HashMap::new(),
        }
    }
}

impl<K: Clone + Eq + Hash, V: Counters> Cumulative<K, V> {
    /// Folds in one read (cumulative counters whose `max_ns` is the maximum
    /// of the interval the read closes); returns each key's interval delta
    /// with that maximum.
    pub fn interval<'a>(&mut self, read: impl IntoIterator<Item = (K, &'a V)>) -> Vec<(K, V)>
    where
        V: 'a,
    {
        read.into_iter()
            .map(|(key, cum)| {
                let mut d = match self.prev.get(&key) {
                    Some(p) => cum.minus(p),
                    None => cum.clone(),
                };
                d.set_max_ns(cum.max_ns());
                let m = self.max.entry(key.clone()).or_default();
                *m = (*m).max(cum.max_ns());
                self.prev.insert(key.clone(), cum.clone());
                (key, d)
            })
            .collect()
    }

    /// The session ended (its last read already folded in): its counters
    /// join the closed totals under `project(key)`; the next session's maps
    /// start from zero.
    pub fn end_session(&mut self, project: impl Fn(&K) -> K) {
        for (key, mut st) in self.prev.drain() {
            st.set_max_ns(self.max.get(&key).copied().unwrap_or(0));
            self.closed.entry(project(&key)).or_default().add(&st);
        }
        self.max.clear();
    }

    /// Everything so far, ended sessions and the current one, per key
    /// (current keys projected like `end_session` would).
    pub fn whole(&self, project: impl Fn(&K) -> K) -> HashMap<K, V> {
        let mut all = self.closed.clone();
        for (key, st) in &self.prev {
            let mut st = st.clone();
            st.set_max_ns(self.max.get(key).copied().unwrap_or(0));
            all.entry(project(key)).or_default().add(&st);
        }
        all
    }

    /// Forgets the current session without folding it in (its maps were
    /// reset).
    pub fn clear_session(&mut self) {
        self.prev.clear();
        self.max.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, Default, PartialEq)]
    struct C {
        n: u64,
        max: u64,
    }
    impl Counters for C {
        fn add(&mut self, o: &Self) {
            self.n += o.n;
            self.max = self.max.max(o.max);
        }
        fn minus(&self, e: &Self) -> Self {
            C {
                n: self.n.saturating_sub(e.n),
                max: self.max,
            }
        }
        fn max_ns(&self) -> u64 {
            self.max
        }
        fn set_max_ns(&mut self, v: u64) {
            self.max = v;
        }
    }

    #[test]
    fn deltas_maxima_and_sessions() {
        let mut c: Cumulative<u32, C> = Cumulative::default();
        let d = c.interval([(1, &C { n: 10, max: 5 })]);
        assert_eq!(d, vec![(1, C { n: 10, max: 5 })]);
        let d = c.interval([(1, &C { n: 14, max: 3 })]);
        assert_eq!(d, vec![(1, C { n: 4, max: 3 })], "max is the interval's");
        assert_eq!(c.whole(|k| *k)[&1], C { n: 14, max: 5 });
        c.end_session(|k| *k);
        // A new process: its maps start from zero, nothing is differenced.
        let d = c.interval([(1, &C { n: 2, max: 9 })]);
        assert_eq!(d, vec![(1, C { n: 2, max: 9 })]);
        assert_eq!(c.whole(|k| *k)[&1], C { n: 16, max: 9 });
    }
}
