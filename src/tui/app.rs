//! The state of the overview screen: what the capture sent so far (the
//! last snapshot, a short history, logs) and what the operator chose (tab,
//! selection, pause). Plain data: the capture thread's messages and the
//! keys change it, `draw` reads it.

use std::collections::{BTreeMap, VecDeque};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::rpc::NodeStatus;
use crate::engine::Snapshot;
use crate::model::net::{EventKind, EventLine};
use crate::model::{BgJob, TargetEvent};

/// Samples of history per operation: at the default 1 s interval, the last
/// five minutes.
pub const HISTORY: usize = 300;
/// Lines kept in the event log, the slow-operation log, the job list and
/// the connection list (older ones are dropped; the counts stay exact in
/// the tables).
pub const LOG_LINES: usize = 500;

/// What the capture thread (and the RPC and stderr threads) send the screen.
#[derive(Clone, Debug)]
pub enum Msg {
    Snapshot(Box<Snapshot>),
    Target(TargetEvent),
    Conn(EventLine),
    Job(BgJob),
    /// A batch of slow-operation lines (`render::slow::table_line`).
    Slow(String),
    /// A line the capture wrote to stderr (notes, warnings).
    Note(String),
    Rpc(NodeStatus),
    /// The node's CPU use over the last interval, % of one core (/proc).
    NodeCpu(f64),
    /// The capture ended: why, and the exit code the tool will return.
    Ended(String, i32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    Overview,
    Rocksdb,
    Network,
    Syscall,
}

impl Tab {
    pub const ALL: [Tab; 4] = [Tab::Overview, Tab::Rocksdb, Tab::Network, Tab::Syscall];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Overview => "Overview",
            Tab::Rocksdb => "RocksDB",
            Tab::Network => "Network",
            Tab::Syscall => "Syscall",
        }
    }

    fn index(self) -> usize {
        Tab::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }
}

/// What kind of line an event-log entry is (its colour and tag).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Alert,
    Slow,
    Connect,
    Disconnect,
    Restart,
    Note,
}

impl Kind {
    pub fn tag(self) -> &'static str {
        match self {
            Kind::Alert => "ALERT",
            Kind::Slow => "SLOW",
            Kind::Connect => "CONN",
            Kind::Disconnect => "DISC",
            Kind::Restart => "NODE",
            Kind::Note => "NOTE",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// HH:MM:SS (wall clock, UTC like every stamp of the tool).
    pub time: String,
    pub kind: Kind,
    pub text: String,
}

/// One operation's recent history, one sample per interval.
#[derive(Clone, Debug, Default)]
pub struct Series {
    pub qps: VecDeque<u64>,
    /// p99 in µs (0 when the interval had no call).
    pub p99_us: VecDeque<u64>,
}

/// Everything the capture sent, as the screen shows it.
#[derive(Clone, Debug, Default)]
pub struct Data {
    /// The last interval (or final) snapshot.
    pub snap: Option<Snapshot>,
    pub intervals: u64,
    /// Per RocksDB operation class.
    pub history: BTreeMap<String, Series>,
    pub log: VecDeque<Entry>,
    pub slow: VecDeque<String>,
    pub jobs: VecDeque<BgJob>,
    pub conns: VecDeque<EventLine>,
    pub node: NodeStatus,
    /// The node's CPU use over the last interval, % of one core.
    pub node_cpu: Option<f64>,
    /// Why the capture ended, once it has.
    pub ended: Option<String>,
    /// Waiting for the node to start again (it exited).
    pub waiting: Option<String>,
}

fn push<T>(q: &mut VecDeque<T>, v: T, cap: usize) {
    if q.len() == cap {
        q.pop_front();
    }
    q.push_back(v);
}

/// "2026-11-23T12:00:01.234Z" -> "12:00:01".
pub fn hhmmss(t: &str) -> String {
    t.get(11..19).unwrap_or(t).to_string()
}

impl Data {
    pub fn log(&mut self, time: &str, kind: Kind, text: impl Into<String>) {
        push(
            &mut self.log,
            Entry {
                time: hhmmss(time),
                kind,
                text: text.into(),
            },
            LOG_LINES,
        );
    }

    /// Folds one message in.
    pub fn apply(&mut self, m: Msg) {
        match m {
            Msg::Snapshot(s) => self.snapshot(*s),
            Msg::Target(TargetEvent::Exited { pid, exe, time }) => {
                let text = format!("node pid {pid} exited; waiting for {exe} to start again");
                self.log(&time, Kind::Restart, text.clone());
                self.waiting = Some(text);
                self.node_cpu = None;
            }
            Msg::Target(TargetEvent::Restarted(g)) => {
                self.log(&g.resumed_at, Kind::Restart, crate::render::gap_line(&g));
                self.waiting = None;
            }
            Msg::Conn(e) => {
                let kind = match e.kind {
                    EventKind::Close | EventKind::ConnectFailed => Kind::Disconnect,
                    _ => Kind::Connect,
                };
                let what = match e.kind {
                    EventKind::Close => format!(
                        "closed {} ({}, sent {} recv {})",
                        e.peer,
                        e.dir.name(),
                        crate::render::bytes(e.tx_bytes as f64),
                        crate::render::bytes(e.rx_bytes as f64)
                    ),
                    k => format!("{} {}", k.name(), e.peer),
                };
                self.log(&e.time, kind, what);
                push(&mut self.conns, e, LOG_LINES);
            }
            Msg::Job(j) => push(&mut self.jobs, j, LOG_LINES),
            Msg::Slow(text) => {
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    let (time, rest) = line.split_once(' ').unwrap_or(("", line));
                    push(
                        &mut self.log,
                        Entry {
                            time: time.get(..8).unwrap_or(time).to_string(),
                            kind: Kind::Slow,
                            text: rest.to_string(),
                        },
                        LOG_LINES,
                    );
                    push(&mut self.slow, line.to_string(), LOG_LINES);
                }
            }
            Msg::Note(n) => {
                let now = crate::clock::now_rfc3339();
                let n = n.strip_prefix("ckb-libbpf: ").unwrap_or(&n).to_string();
                self.log(&now, Kind::Note, n);
            }
            Msg::Rpc(s) => self.node = s,
            Msg::NodeCpu(c) => self.node_cpu = Some(c),
            Msg::Ended(why, _) => self.ended = Some(why),
        }
    }

    fn snapshot(&mut self, s: Snapshot) {
        if !s.is_final {
            self.intervals += 1;
            let time = s
                .rocksdb
                .as_ref()
                .map(|r| r.timestamp.clone())
                .or_else(|| s.net.as_ref().map(|r| r.timestamp.clone()))
                .or_else(|| s.syscall.as_ref().map(|r| r.timestamp.clone()))
                .unwrap_or_else(crate::clock::now_rfc3339);
            for a in s.anomalies.iter().filter(|a| a.onset) {
                let text = format!(
                    "{} avg {} µs = {:.1}x baseline {} µs; cause: {}; next: {}",
                    a.operation,
                    crate::render::micros(Some(a.current_avg_us)),
                    a.multiplier,
                    crate::render::micros(Some(a.baseline_avg_us)),
                    a.cause.describe(),
                    a.next_step
                );
                self.log(&time, Kind::Alert, text);
            }
            if let Some(r) = &s.rocksdb {
                for row in &r.rows {
                    let h = self.history.entry(row.name.clone()).or_default();
                    push(&mut h.qps, row.qps.round() as u64, HISTORY);
                    push(
                        &mut h.p99_us,
                        row.p99_us.map_or(0, |v| v.round() as u64),
                        HISTORY,
                    );
                }
            }
        }
        self.snap = Some(s);
    }
}

/// The screen: data, and what the operator chose.
#[derive(Clone, Debug)]
pub struct App {
    /// "ckb" or "pid 4242", and the interval, for the title.
    pub target: String,
    pub interval_secs: f64,
    pub rpc_url: String,
    pub tab: Tab,
    /// Selected row per tab.
    pub sel: [usize; 4],
    pub show_hist: bool,
    pub help: bool,
    pub data: Data,
    /// A frozen copy while paused (`p`); the capture goes on underneath.
    pub frozen: Option<Box<Data>>,
    pub quit: bool,
}

impl App {
    pub fn new(target: String, interval_secs: f64, rpc_url: String) -> App {
        App {
            target,
            interval_secs,
            rpc_url,
            tab: Tab::Overview,
            sel: [0; 4],
            show_hist: true,
            help: false,
            data: Data::default(),
            frozen: None,
            quit: false,
        }
    }

    /// What the screen shows: the frozen copy while paused.
    pub fn view(&self) -> &Data {
        self.frozen.as_deref().unwrap_or(&self.data)
    }

    pub fn paused(&self) -> bool {
        self.frozen.is_some()
    }

    pub fn selected(&self) -> usize {
        self.sel[self.tab.index()]
    }

    /// One key. Returns true if the screen needs a redraw.
    pub fn key(&mut self, k: KeyEvent) -> bool {
        if k.kind == KeyEventKind::Release {
            return false;
        }
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        match k.code {
            KeyCode::Char('c') if ctrl => self.quit = true,
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Esc if self.help => self.help = false,
            KeyCode::Char('?') => self.help = !self.help,
            KeyCode::Tab => self.tab = Tab::ALL[(self.tab.index() + 1) % 4],
            KeyCode::BackTab => self.tab = Tab::ALL[(self.tab.index() + 3) % 4],
            KeyCode::Char(c @ '1'..='4') => self.tab = Tab::ALL[c as usize - '1' as usize],
            KeyCode::Up | KeyCode::Char('k') => {
                let i = self.tab.index();
                self.sel[i] = self.sel[i].saturating_sub(1);
            }
            KeyCode::Down | KeyCode::Char('j') => {
                let i = self.tab.index();
                // Clamped to the rows there are when drawn.
                self.sel[i] = self.sel[i].saturating_add(1);
            }
            KeyCode::Char('p') => {
                self.frozen = match self.frozen {
                    Some(_) => None,
                    None => Some(Box::new(self.data.clone())),
                }
            }
            KeyCode::Char('h') => self.show_hist = !self.show_hist,
            _ => return false,
        }
        true
    }

    /// Keeps selections inside the rows each tab has now.
    pub fn clamp(&mut self, rows: [usize; 4]) {
        for (s, n) in self.sel.iter_mut().zip(rows) {
            *s = (*s).min(n.saturating_sub(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    #[test]
    fn keys_switch_tabs_select_pause_and_quit() {
        let mut a = App::new("ckb".into(), 1.0, String::new());
        a.key(key(KeyCode::Tab));
        assert_eq!(a.tab, Tab::Rocksdb);
        a.key(key(KeyCode::BackTab));
        a.key(key(KeyCode::BackTab));
        assert_eq!(a.tab, Tab::Syscall);
        a.key(key(KeyCode::Char('3')));
        assert_eq!(a.tab, Tab::Network);
        a.key(key(KeyCode::Down));
        a.key(key(KeyCode::Down));
        a.key(key(KeyCode::Up));
        assert_eq!(a.selected(), 1);
        a.clamp([0, 0, 1, 0]);
        assert_eq!(a.selected(), 0);
        a.key(key(KeyCode::Char('p')));
        a.data.apply(Msg::Note("ckb-libbpf: hello".into()));
        assert!(a.view().log.is_empty(), "paused: the frozen copy shows");
        a.key(key(KeyCode::Char('p')));
        assert_eq!(a.view().log.len(), 1);
        assert_eq!(a.view().log[0].text, "hello");
        assert!(!a.quit);
        a.key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
        assert!(a.quit);
    }

    #[test]
    fn slow_lines_enter_the_log_and_rings_are_bounded() {
        let mut d = Data::default();
        let mut text = String::new();
        for i in 0..(LOG_LINES + 10) {
            text.push_str(&format!(
                "12:00:01.{:03} GET 1200.5 µs on alpha of /d rocksdb_get_cf ChainService (4250) 17 B\n",
                i % 1000
            ));
        }
        d.apply(Msg::Slow(text));
        assert_eq!(d.slow.len(), LOG_LINES);
        assert_eq!(d.log.len(), LOG_LINES);
        let e = d.log.back().unwrap();
        assert_eq!(e.kind, Kind::Slow);
        assert_eq!(e.time, "12:00:01");
        assert_eq!(
            e.text,
            "GET 1200.5 µs on alpha of /d rocksdb_get_cf ChainService (4250) 17 B"
        );
    }
}
