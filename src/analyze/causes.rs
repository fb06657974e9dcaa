//! Probable-cause rules: what else happened in the window of a latency
//! spike. Each rule is one small unit (`Rule`) that either finds its
//! evidence in the window or not; `attribute` asks them in order of how
//! directly they explain a slow RocksDB call and takes the first that
//! fires. Rules over layers that are not running never fire.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Baseline, Config, Observation, Policy, Window};

/// Why an operation probably slowed down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// RocksDB held writers back (DBImpl::DelayWrite): L0 files, memtables
    /// or pending compaction bytes over the slowdown/stop triggers.
    WriteStall,
    /// Compaction jobs ran in the window, competing for disk and CPU.
    Compaction,
    /// Memtable flushes ran in the window.
    Flush,
    /// fsync/fdatasync got slower than their own baseline (syscall layer).
    FsyncLatency,
    /// Futex calls surged and most of them wait (syscall layer).
    FutexContention,
    /// Peers disconnect unusually often (net layer).
    PeerChurn,
    /// None of the above was seen.
    Unknown,
}

impl Cause {
    pub fn name(self) -> &'static str {
        match self {
            Cause::WriteStall => "write_stall",
            Cause::Compaction => "compaction",
            Cause::Flush => "flush",
            Cause::FsyncLatency => "fsync_latency",
            Cause::FutexContention => "futex_contention",
            Cause::PeerChurn => "peer_churn",
            Cause::Unknown => "unknown",
        }
    }

    /// For people: "RocksDB write stall".
    pub fn describe(self) -> &'static str {
        match self {
            Cause::WriteStall => "RocksDB write stall",
            Cause::Compaction => "RocksDB compaction",
            Cause::Flush => "RocksDB memtable flush",
            Cause::FsyncLatency => "slow fsync/fdatasync",
            Cause::FutexContention => "lock (futex) contention",
            Cause::PeerChurn => "peer churn",
            Cause::Unknown => "unknown",
        }
    }

    /// Caused by RocksDB's own background work.
    pub fn is_rocksdb_background(self) -> bool {
        matches!(self, Cause::WriteStall | Cause::Compaction | Cause::Flush)
    }

    pub fn next_step(self) -> &'static str {
        match self {
            Cause::WriteStall => "run `ckb-libbpf rocksdb --slow` to see the stalled writes; RocksDB throttles writers while L0 files or pending compaction bytes exceed its slowdown/stop triggers",
            Cause::Compaction => "run `ckb-libbpf rocksdb --slow` to see which operations wait; compactions compete for disk I/O (max_background_jobs, a rate limiter)",
            Cause::Flush => "run `ckb-libbpf rocksdb --slow`; frequent flushes mean small or full memtables (write_buffer_size, max_write_buffer_number)",
            Cause::FsyncLatency => "run `ckb-libbpf syscall` for fsync/fdatasync latency, and check the disk (iostat -x 1)",
            Cause::FutexContention => "run `ckb-libbpf syscall` for futex waits per thread: threads are contending on locks",
            Cause::PeerChurn => "run `ckb-libbpf net` to see which peers connect and disconnect",
            Cause::Unknown => "run `ckb-libbpf rocksdb --slow` for slow operation details",
        }
    }
}

/// The figures a cause rests on.
pub type Evidence = BTreeMap<&'static str, f64>;

/// Baselines of the non-RocksDB signals, learnt like the operations' ones
/// (a slow disk that ramps up must not teach the fsync baseline either).
#[derive(Clone, Debug, Default)]
pub struct Baselines {
    /// Average fsync/fdatasync latency, ns.
    pub fsync_avg: Baseline,
    /// Futex calls per second.
    pub futex_rate: Baseline,
}

impl Baselines {
    /// Learns from one interval.
    pub fn learn(&mut self, o: &Observation, learning: bool, p: &Policy) {
        if let Some(avg) = o.fsync.as_ref().and_then(|f| f.avg_ns()) {
            self.fsync_avg.observe(o.secs, avg, learning, p);
        }
        if let (Some(f), true) = (o.futex, o.secs > 0.0) {
            self.futex_rate
                .observe(o.secs, f.calls as f64 / o.secs, learning, p);
        }
    }
}

/// One probable-cause rule.
pub trait Rule {
    fn cause(&self) -> Cause;
    /// The evidence in `w` for a spike of operation `op`, if any.
    fn check(&self, op: &str, w: &Window, b: &Baselines, cfg: &Config) -> Option<Evidence>;
}

/// Operations that go through RocksDB's write path (and so can stall).
pub fn is_write(op: &str) -> bool {
    matches!(op, "PUT" | "DELETE" | "WRITE" | "TXN_COMMIT" | "MERGE")
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Writers were held back in DBImpl::DelayWrite during the window. Only
/// explains write-path operations: a stall does not block reads.
pub struct WriteStall;

impl Rule for WriteStall {
    fn cause(&self) -> Cause {
        Cause::WriteStall
    }
    fn check(&self, op: &str, w: &Window, _: &Baselines, _: &Config) -> Option<Evidence> {
        let bg = w.background?;
        if !is_write(op) || (bg.stalled_ns == 0 && bg.stop_tokens == 0 && bg.delay_tokens == 0) {
            return None;
        }
        Some(Evidence::from([
            ("stalled_ms", ms(bg.stalled_ns)),
            (
                "stalled_share",
                if w.secs > 0.0 {
                    (bg.stalled_ns as f64 / 1e9 / w.secs).min(1.0)
                } else {
                    0.0
                },
            ),
            ("stop_tokens", bg.stop_tokens as f64),
            ("delay_tokens", bg.delay_tokens as f64),
        ]))
    }
}

/// Compaction jobs started, finished or were running in the window.
pub struct Compaction;

impl Rule for Compaction {
    fn cause(&self) -> Cause {
        Cause::Compaction
    }
    fn check(&self, _: &str, w: &Window, _: &Baselines, _: &Config) -> Option<Evidence> {
        let bg = w.background?;
        if bg.compactions_started == 0
            && bg.compactions_finished == 0
            && bg.compactions_running == 0
        {
            return None;
        }
        Some(Evidence::from([
            ("compactions_started", bg.compactions_started as f64),
            ("compactions_finished", bg.compactions_finished as f64),
            ("compactions_running", bg.compactions_running as f64),
            ("compaction_ms", ms(bg.compaction_ns)),
        ]))
    }
}

/// Memtable flushes started, finished or were running in the window.
pub struct Flush;

impl Rule for Flush {
    fn cause(&self) -> Cause {
        Cause::Flush
    }
    fn check(&self, _: &str, w: &Window, _: &Baselines, _: &Config) -> Option<Evidence> {
        let bg = w.background?;
        if bg.flushes_started == 0 && bg.flushes_finished == 0 && bg.flushes_running == 0 {
            return None;
        }
        Some(Evidence::from([
            ("flushes_started", bg.flushes_started as f64),
            ("flushes_finished", bg.flushes_finished as f64),
            ("flushes_running", bg.flushes_running as f64),
            ("flush_ms", ms(bg.flush_ns)),
        ]))
    }
}

/// fsync/fdatasync average latency over `multiplier` times its baseline.
pub struct FsyncSpike;

impl Rule for FsyncSpike {
    fn cause(&self) -> Cause {
        Cause::FsyncLatency
    }
    fn check(&self, _: &str, w: &Window, b: &Baselines, cfg: &Config) -> Option<Evidence> {
        let f = w.fsync.as_ref()?;
        let now = f.avg_ns()?;
        let base = b.fsync_avg.value()?;
        (base > 0.0 && now > cfg.multiplier * base).then(|| {
            let mut e = Evidence::from([
                ("fsync_avg_us", now / 1e3),
                ("fsync_baseline_us", base / 1e3),
                ("fsync_calls", f.count as f64),
            ]);
            if let Some(p99) = f.p99_ns() {
                e.insert("fsync_p99_us", p99 / 1e3);
            }
            e
        })
    }
}

/// Futex rate over `futex_rate_multiplier` times its baseline, with more
/// than `futex_wait_share` of the calls waiting.
pub struct FutexContention;

impl Rule for FutexContention {
    fn cause(&self) -> Cause {
        Cause::FutexContention
    }
    fn check(&self, _: &str, w: &Window, b: &Baselines, cfg: &Config) -> Option<Evidence> {
        let f = w.futex?;
        if f.calls == 0 || w.secs <= 0.0 {
            return None;
        }
        let rate = f.calls as f64 / w.secs;
        let base = b.futex_rate.value()?;
        let share = f.waits as f64 / f.calls as f64;
        (base > 0.0 && rate > cfg.futex_rate_multiplier * base && share > cfg.futex_wait_share)
            .then(|| {
                Evidence::from([
                    ("futex_per_sec", rate),
                    ("futex_baseline_per_sec", base),
                    ("wait_share", share),
                ])
            })
    }
}

/// More than `churn_per_min` peer disconnections per minute.
pub struct PeerChurn;

impl Rule for PeerChurn {
    fn cause(&self) -> Cause {
        Cause::PeerChurn
    }
    fn check(&self, _: &str, w: &Window, _: &Baselines, cfg: &Config) -> Option<Evidence> {
        let p = w.peers?;
        if w.secs <= 0.0 {
            return None;
        }
        let per_min = p.disconnects as f64 * 60.0 / w.secs;
        (per_min > cfg.churn_per_min).then(|| {
            Evidence::from([
                ("disconnects_per_min", per_min),
                ("disconnects", p.disconnects as f64),
                ("connects", p.connects as f64),
            ])
        })
    }
}

/// The rules in the order they are asked.
pub const RULES: &[&dyn Rule] = &[
    &WriteStall,
    &Compaction,
    &Flush,
    &FsyncSpike,
    &FutexContention,
    &PeerChurn,
];

/// The probable cause of a spike of `op` and its evidence; "unknown" with
/// no evidence when no rule fires.
pub fn attribute(op: &str, w: &Window, b: &Baselines, cfg: &Config) -> (Cause, Evidence) {
    RULES
        .iter()
        .find_map(|r| r.check(op, w, b, cfg).map(|e| (r.cause(), e)))
        .unwrap_or((Cause::Unknown, Evidence::new()))
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use super::*;

    fn window(bg: Option<BgWindow>) -> Window {
        Window {
            secs: 10.0,
            background: bg,
            ..Default::default()
        }
    }

    fn cfg() -> Config {
        Config::default()
    }

    #[test]
    fn stalls_explain_writes_not_reads() {
        let b = Baselines::default();
        let w = window(Some(BgWindow {
            stalled_ns: 4_000_000_000,
            stop_tokens: 2,
            compactions_running: 1,
            ..Default::default()
        }));
        let (c, e) = attribute("WRITE", &w, &b, &cfg());
        assert_eq!(c, Cause::WriteStall);
        assert_eq!(e["stalled_ms"], 4000.0);
        assert_eq!(e["stalled_share"], 0.4);
        assert_eq!(e["stop_tokens"], 2.0);
        // A read in the same window: the compaction explains it.
        let (c, e) = attribute("GET", &w, &b, &cfg());
        assert_eq!(c, Cause::Compaction);
        assert_eq!(e["compactions_running"], 1.0);
        assert!(c.is_rocksdb_background());
    }

    #[test]
    fn flush_when_only_flushes_ran() {
        let b = Baselines::default();
        let w = window(Some(BgWindow {
            flushes_started: 3,
            flushes_finished: 3,
            flush_ns: 30_000_000,
            ..Default::default()
        }));
        let (c, e) = attribute("PUT", &w, &b, &cfg());
        assert_eq!(c, Cause::Flush);
        assert_eq!(e["flush_ms"], 30.0);
    }

    #[test]
    fn quiet_background_and_absent_layers_mean_unknown() {
        let b = Baselines::default();
        let (c, e) = attribute("PUT", &window(Some(BgWindow::default())), &b, &cfg());
        assert_eq!((c, e.len()), (Cause::Unknown, 0));
        let (c, _) = attribute("PUT", &window(None), &b, &cfg());
        assert_eq!(c, Cause::Unknown);
        assert_eq!(
            c.next_step(),
            "run `ckb-libbpf rocksdb --slow` for slow operation details"
        );
    }

    #[test]
    fn fsync_spike_against_its_own_baseline() {
        let cfg = cfg();
        let mut b = Baselines::default();
        let o = Observation {
            secs: 1.0,
            fsync: Some(Latency {
                count: 10,
                total_ns: 10 * 2_000_000,
                ..Default::default()
            }),
            ..Default::default()
        };
        b.learn(&o, true, &cfg.policy());
        let mut w = window(None);
        w.fsync = Some(Latency {
            count: 5,
            total_ns: 5 * 20_000_000,
            ..Default::default()
        });
        let (c, e) = attribute("WRITE", &w, &b, &cfg);
        assert_eq!(c, Cause::FsyncLatency);
        assert_eq!(e["fsync_avg_us"], 20_000.0);
        assert_eq!(e["fsync_baseline_us"], 2_000.0);
        w.fsync = Some(Latency {
            count: 5,
            total_ns: 5 * 4_000_000,
            ..Default::default()
        });
        assert_eq!(attribute("WRITE", &w, &b, &cfg).0, Cause::Unknown);
    }

    #[test]
    fn futex_needs_both_rate_and_wait_share() {
        let cfg = cfg();
        let mut b = Baselines::default();
        let o = Observation {
            secs: 1.0,
            futex: Some(Futex {
                calls: 100,
                waits: 50,
            }),
            ..Default::default()
        };
        b.learn(&o, true, &cfg.policy());
        let mut w = window(None);
        // 400/s (4x) with 80 % waits: contention.
        w.futex = Some(Futex {
            calls: 4000,
            waits: 3200,
        });
        let (c, e) = attribute("GET", &w, &b, &cfg);
        assert_eq!(c, Cause::FutexContention);
        assert_eq!(e["futex_per_sec"], 400.0);
        assert_eq!(e["wait_share"], 0.8);
        // Same rate, mostly wakes: not contention.
        w.futex = Some(Futex {
            calls: 4000,
            waits: 1000,
        });
        assert_eq!(attribute("GET", &w, &b, &cfg).0, Cause::Unknown);
        // Mostly waits but only 2x the rate: not contention.
        w.futex = Some(Futex {
            calls: 2000,
            waits: 1900,
        });
        assert_eq!(attribute("GET", &w, &b, &cfg).0, Cause::Unknown);
    }

    #[test]
    fn peer_churn_per_minute() {
        let b = Baselines::default();
        let mut w = window(None);
        w.peers = Some(Peers {
            connects: 3,
            disconnects: 2,
        }); // 12/min
        let (c, e) = attribute("GET", &w, &b, &cfg());
        assert_eq!(c, Cause::PeerChurn);
        assert_eq!(e["disconnects_per_min"], 12.0);
        w.peers = Some(Peers {
            connects: 1,
            disconnects: 1,
        }); // 6/min
        assert_eq!(attribute("GET", &w, &b, &cfg()).0, Cause::Unknown);
    }

    #[test]
    fn the_analyzer_attributes_a_spike_to_the_window_it_happened_in() {
        let mut a = Analyzer::new(Config {
            learning_secs: 10.0,
            ..Default::default()
        });
        let put = |avg_us: f64, bg: Option<BgWindow>| {
            let mut o = Observation {
                secs: 1.0,
                background: bg,
                ..Default::default()
            };
            o.ops.insert(
                "PUT".into(),
                Latency {
                    count: 100,
                    total_ns: (100.0 * avg_us * 1000.0) as u64,
                    ..Default::default()
                },
            );
            o
        };
        for _ in 0..20 {
            assert!(a.observe(put(10.0, Some(BgWindow::default()))).is_empty());
        }
        let mut last = Vec::new();
        for i in 0..6 {
            let bg = BgWindow {
                compactions_started: (i == 0) as u64,
                compactions_running: 1,
                stalled_ns: 500_000_000,
                delay_tokens: (i == 0) as u64,
                ..Default::default()
            };
            last = a.observe(put(500.0, Some(bg)));
        }
        assert_eq!(last.len(), 1);
        let an = &last[0];
        assert_eq!(an.cause, Cause::WriteStall);
        assert_eq!(an.evidence["stalled_ms"], 3000.0);
        assert_eq!(an.evidence["delay_tokens"], 1.0);
        assert!(an.next_step.contains("ckb-libbpf rocksdb --slow"));
        let v = serde_json::to_value(an).unwrap();
        assert_eq!(v["type"], "latency_spike");
        assert_eq!(v["cause"], "write_stall");
        assert_eq!(v["operation"], "PUT");
        for k in [
            "current_avg_us",
            "baseline_avg_us",
            "multiplier",
            "evidence",
            "next_step",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
    }
}
