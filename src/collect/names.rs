//! RocksDB handle names for the slow-operation log, handed from the threads
//! that resolve them (`probe::rocksdb::Namer` and the poller) to the
//! ring-buffer thread that renders slow lines.
//!
//! Resolving a handle reads the target's memory, its open files and an
//! OPTIONS file: milliseconds, under the `Names` lock the namer holds for a
//! whole pass. The renderer runs at 100 K lines/s with a ring that holds
//! ~140 ms of them, so it must never wait for that. Confirmed names change
//! rarely (a few dozen per process, once each), so they are published as
//! an immutable snapshot behind a generation counter: the renderer checks
//! one atomic per event, looks the key up in its own copy of the snapshot,
//! and adopts a newer snapshot with a `try_lock` held only for an `Arc`
//! clone (if that lock is busy it keeps the old one for one more event).
//! A key not in the snapshot is printed as its handle and, once, sent to
//! the namer so its names arrive within milliseconds instead of at the
//! namer's next one-second pass.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, TryLockError};

use crossbeam_channel::{Receiver, Sender};
use rustc_hash::FxBuildHasher;

use crate::model::rocksdb::KeyNames;

/// (process, database handle, family handle), as the kernel keys rows.
pub type Key = (u32, u64, u64);

/// The renderer looks a key up for every event (100 K/s and more): the
/// standard SipHash, made to resist keys chosen by an attacker, costs more
/// than the rest of the lookup, and these keys are the kernel's pointers
/// and pids, a few dozen of them: the Fx hash suffices.
type Table = HashMap<Key, KeyNames, FxBuildHasher>;

/// Processes whose names stay published after they exited: their last
/// events may still be in the ring when the poller notices the exit.
const RETIRED_KEPT: usize = 16;
/// Keys a reader remembers having asked about (then it forgets them all and
/// may ask again: bounded memory over days of restarts).
const ASKED_MAX: usize = 4096;
/// Requests queued for the namer; more are dropped (its one-second pass
/// finds those keys anyway).
const NUDGES: usize = 256;

/// The published names. Written by whoever resolves a name, read by
/// `NameReader`s.
pub struct NameBoard {
    generation: AtomicU64,
    table: Mutex<Published>,
    nudge_tx: Sender<Key>,
    nudge_rx: Receiver<Key>,
}

struct Published {
    table: Arc<Table>,
    retired: VecDeque<u32>,
}

impl Default for NameBoard {
    fn default() -> NameBoard {
        let (nudge_tx, nudge_rx) = crossbeam_channel::bounded(NUDGES);
        NameBoard {
            generation: AtomicU64::new(0),
            table: Mutex::new(Published {
                table: Arc::new(Table::default()),
                retired: VecDeque::new(),
            }),
            nudge_tx,
            nudge_rx,
        }
    }
}

impl NameBoard {
    /// Publishes what is confirmed of `key`'s names. A name once confirmed
    /// stays (its handle is open for as long as it is used), so a later
    /// failed retry never takes it back. Nothing to publish: no copy made.
    pub fn publish(&self, key: Key, names: &KeyNames) {
        if names.db.is_none() && names.cf.is_none() {
            return;
        }
        let Ok(mut p) = self.table.lock() else {
            return;
        };
        let old = p.table.get(&key);
        let merged = KeyNames {
            db: names.db.clone().or_else(|| old.and_then(|o| o.db.clone())),
            cf: names.cf.clone().or_else(|| old.and_then(|o| o.cf.clone())),
        };
        if old == Some(&merged) {
            return;
        }
        let mut t = Table::clone(&p.table);
        t.insert(key, merged);
        p.table = Arc::new(t);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Process `tgid` exited. Its names stay for the events still on their
    /// way; those of the process retired `RETIRED_KEPT` exits ago go.
    pub fn retire(&self, tgid: u32) {
        let Ok(mut p) = self.table.lock() else {
            return;
        };
        if p.retired.contains(&tgid) {
            return;
        }
        p.retired.push_back(tgid);
        if p.retired.len() <= RETIRED_KEPT {
            return;
        }
        let Some(old) = p.retired.pop_front() else {
            return;
        };
        let mut t = Table::clone(&p.table);
        t.retain(|k, _| k.0 != old);
        p.table = Arc::new(t);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Keys readers asked about, for the namer.
    pub fn nudges(&self) -> &Receiver<Key> {
        &self.nudge_rx
    }

    pub fn reader(self: &Arc<Self>) -> NameReader {
        NameReader {
            board: Arc::clone(self),
            seen: u64::MAX,
            table: Arc::new(Table::default()),
            asked: HashSet::default(),
        }
    }
}

/// One thread's view of the board.
pub struct NameReader {
    board: Arc<NameBoard>,
    /// Generation of `table` (MAX: none adopted yet).
    seen: u64,
    table: Arc<Table>,
    asked: HashSet<Key, FxBuildHasher>,
}

impl NameReader {
    /// The confirmed names of `key`, if any; never waits. A key without a
    /// confirmed database name is asked for once.
    pub fn get(&mut self, key: Key) -> Option<&KeyNames> {
        let g = self.board.generation.load(Ordering::Acquire);
        if g != self.seen {
            match self.board.table.try_lock() {
                Ok(p) => {
                    self.table = Arc::clone(&p.table);
                    self.seen = g;
                }
                // A writer is swapping the table: the next event adopts it.
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Poisoned(_)) => self.seen = g,
            }
        }
        let found = self.table.get(&key);
        if found.is_none_or(|n| n.db.is_none()) {
            if self.asked.len() >= ASKED_MAX {
                self.asked.clear();
            }
            if self.asked.insert(key) {
                // Full: the namer's pass finds the key within a second.
                let _ = self.board.nudge_tx.try_send(key);
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(db: Option<&str>, cf: Option<&str>) -> KeyNames {
        KeyNames {
            db: db.map(str::to_string),
            cf: cf.map(str::to_string),
        }
    }

    #[test]
    fn readers_see_what_is_published_and_ask_once_for_the_rest() {
        let board = Arc::new(NameBoard::default());
        let mut r = board.reader();
        assert_eq!(r.get((1, 0xd, 0xc)), None);
        assert_eq!(r.get((1, 0xd, 0xc)), None);
        let asked: Vec<Key> = board.nudges().try_iter().collect();
        assert_eq!(asked, [(1, 0xd, 0xc)], "asked once");

        board.publish((1, 0xd, 0xc), &named(Some("/d"), Some("cells")));
        board.publish((1, 0xd, 0), &named(None, None));
        assert_eq!(
            r.get((1, 0xd, 0xc)),
            Some(&named(Some("/d"), Some("cells")))
        );
        assert_eq!(r.get((1, 0xd, 0)), None, "nothing confirmed: not published");

        // A failed retry does not take a confirmed name back; a better one
        // completes it.
        board.publish((1, 0xd, 0xc), &named(None, None));
        board.publish((1, 0xd, 0xe), &named(Some("/d"), None));
        board.publish((1, 0xd, 0xe), &named(None, Some("alpha")));
        assert_eq!(
            r.get((1, 0xd, 0xc)),
            Some(&named(Some("/d"), Some("cells")))
        );
        assert_eq!(
            r.get((1, 0xd, 0xe)),
            Some(&named(Some("/d"), Some("alpha")))
        );
        assert!(board.nudges().try_iter().all(|k| k == (1, 0xd, 0)));
    }

    #[test]
    fn a_busy_board_never_blocks_the_reader() {
        let board = Arc::new(NameBoard::default());
        let mut r = board.reader();
        board.publish((1, 2, 3), &named(Some("/d"), Some("a")));
        let held = board.table.lock().unwrap();
        // The new generation cannot be adopted while the lock is held: the
        // reader answers from what it had, at once.
        assert_eq!(r.get((1, 2, 3)), None);
        drop(held);
        assert_eq!(r.get((1, 2, 3)), Some(&named(Some("/d"), Some("a"))));
    }

    #[test]
    fn exited_processes_keep_their_names_for_a_while() {
        let board = Arc::new(NameBoard::default());
        let mut r = board.reader();
        for tgid in 1..=(RETIRED_KEPT as u32 + 1) {
            board.publish((tgid, 1, 0), &named(Some("/d"), None));
        }
        for tgid in 1..=RETIRED_KEPT as u32 {
            board.retire(tgid);
            board.retire(tgid);
        }
        assert!(r.get((1, 1, 0)).is_some(), "kept while events may arrive");
        board.retire(RETIRED_KEPT as u32 + 1);
        assert_eq!(r.get((1, 1, 0)), None, "the oldest exit is forgotten");
        assert!(r.get((2, 1, 0)).is_some());
    }
}
