//! Drawing the overview: functions of the `App` state onto a ratatui
//! `Frame`. No input, no terminal, no capture: the golden tests draw
//! fixed states into a `TestBackend`.

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Row, Sparkline, Table, TableState, Tabs};
use ratatui::Frame;

use super::app::{App, Data, Entry, Kind, Tab};
use super::rpc::NodeStatus;
use crate::engine::Snapshot;
use crate::model::report::Row as OpRow;
use crate::model::rocksdb::{is_unresolved, CfRow};
use crate::model::Histogram;
use crate::render::{bytes, duration_ns, micros, thousands};

/// Below this the screen says how small it is instead of drawing panels.
pub const MIN_WIDTH: u16 = 40;
pub const MIN_HEIGHT: u16 = 10;
/// From this width the Overview tab is a 2x2 grid; narrower, one column.
const GRID_WIDTH: u16 = 90;

const HEAD: Style = Style::new().add_modifier(Modifier::BOLD);
const DIM: Style = Style::new().fg(Color::DarkGray);
const SELECTED: Style = Style::new().add_modifier(Modifier::REVERSED);

/// Rows per tab the selection can move over (RocksDB ops, peers,
/// syscalls; none on Overview).
pub fn row_counts(d: &Data) -> [usize; 4] {
    let s = d.snap.as_ref();
    [
        0,
        s.and_then(|s| s.rocksdb.as_ref())
            .map_or(0, |r| r.rows.len()),
        s.and_then(|s| s.net.as_ref()).map_or(0, |r| r.peers.len()),
        s.and_then(|s| s.syscall.as_ref())
            .map_or(0, |r| r.syscalls.len()),
    ]
}

pub fn draw(f: &mut Frame, app: &App) {
    let area = f.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!(
            "terminal {}x{}: overview needs {MIN_WIDTH}x{MIN_HEIGHT}; enlarge it, or q to quit",
            area.width, area.height
        );
        f.render_widget(
            Paragraph::new(msg).wrap(ratatui::widgets::Wrap { trim: true }),
            area,
        );
        return;
    }
    let [head, tabs, body, foot] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(1),
        Constraint::Min(4),
        Constraint::Length(1),
    ])
    .areas(area);
    let d = app.view();
    header(f, head, app, d);
    let titles: Vec<Line> = Tab::ALL
        .iter()
        .enumerate()
        .map(|(i, t)| Line::from(format!("{} {}", i + 1, t.title())))
        .collect();
    let idx = Tab::ALL.iter().position(|t| *t == app.tab).unwrap_or(0);
    f.render_widget(
        Tabs::new(titles)
            .select(idx)
            .highlight_style(SELECTED.add_modifier(Modifier::BOLD)),
        tabs,
    );
    match app.tab {
        Tab::Overview => overview(f, body, d),
        Tab::Rocksdb => rocksdb_tab(f, body, app, d),
        Tab::Network => network_tab(f, body, app, d),
        Tab::Syscall => syscall_tab(f, body, app, d),
    }
    let keys = if foot.width >= 64 {
        "Tab/1-4 tabs  ↑↓ select  p pause  h histograms  ? help  q quit"
    } else {
        "Tab 1-4  ↑↓  p pause  h hist  ? help  q quit"
    };
    f.render_widget(Paragraph::new(keys).style(DIM), foot);
    if app.help {
        help(f, area);
    }
}

/// Title line (target, interval, alerts, state) and the node's own view.
fn header(f: &mut Frame, area: Rect, app: &App, d: &Data) {
    // Narrow terminals: the figures first, the tool's name is what goes.
    let title = if area.width >= 100 {
        " ckb-libbpf overview "
    } else {
        " overview "
    };
    let mut top = vec![
        Span::styled(title, HEAD.add_modifier(Modifier::REVERSED)),
        Span::raw(format!(" {} · every {}s", app.target, app.interval_secs)),
    ];
    if let Some(s) = &d.snap {
        let elapsed = s
            .rocksdb
            .as_ref()
            .map(|r| r.elapsed_secs)
            .or_else(|| s.net.as_ref().map(|r| r.elapsed_secs))
            .or_else(|| s.syscall.as_ref().map(|r| r.elapsed_secs));
        if let Some(e) = elapsed {
            top.push(Span::raw(format!(" · {}", duration_ns(e * 1e9))));
        }
        if let Some(a) = s.alerts {
            let active = s.anomalies.len();
            let text = if a.learning {
                format!(" · alerts: learning ({} raised)", a.raised)
            } else {
                format!(" · alerts: {active} active, {} raised", a.raised)
            };
            let style = if active > 0 {
                Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
            } else {
                Style::new()
            };
            top.push(Span::styled(text, style));
        }
        // After the alerts: a narrow title cuts from the right.
        if let Some(c) = d.node_cpu {
            top.push(Span::raw(format!(" · node CPU {c:.1}%")));
        }
    } else {
        top.push(Span::styled(" · waiting for the first interval", DIM));
    }
    if app.paused() {
        top.push(Span::styled(" PAUSED ", SELECTED.fg(Color::Yellow)));
    }
    if let Some(w) = &d.ended {
        top.push(Span::styled(
            format!(" ended: {w}"),
            Style::new().fg(Color::Red),
        ));
    } else if let Some(w) = &d.waiting {
        top.push(Span::styled(
            format!(" {w}"),
            Style::new().fg(Color::Yellow),
        ));
    }
    let node = Line::from(node_line(&d.node, &app.rpc_url));
    f.render_widget(Paragraph::new(vec![Line::from(top), node]), area);
}

/// The node's own summary from its RPC, or why there is none.
pub fn node_line(n: &NodeStatus, url: &str) -> Vec<Span<'static>> {
    let label = Span::styled(" node ", HEAD);
    match n {
        NodeStatus::Unknown => vec![label, Span::styled(format!("asking RPC at {url}..."), DIM)],
        NodeStatus::Unavailable(why) => vec![
            label,
            Span::styled(
                format!("RPC unavailable at {url}: {why} (tracing does not need it)"),
                DIM,
            ),
        ],
        NodeStatus::Up(i) => {
            // Most telling first: a narrow header cuts from the right.
            let mut parts = Vec::new();
            if let Some(t) = i.tip {
                parts.push(format!("tip #{}", thousands(t)));
            }
            if i.ibd == Some(true) {
                parts.push("initial sync".into());
            }
            if let Some(p) = i.peers {
                match (i.outbound, i.inbound) {
                    (Some(o), Some(n)) => parts.push(format!("peers {p} ({o} out/{n} in)")),
                    _ => parts.push(format!("peers {p}")),
                }
            }
            if let (Some(p), Some(q)) = (i.pending, i.proposed) {
                parts.push(format!("tx pool {p} pending/{q} proposed"));
            }
            // Not `i.cpu_pct`: CKB 0.210 reports ~0 whatever the load (a
            // fresh sysinfo sample); the title line has the node's CPU as
            // /proc says.
            if let Some(m) = i.memory {
                parts.push(format!("RSS {}", bytes(m as f64)));
            }
            if let Some(c) = &i.chain {
                parts.push(c.clone());
            }
            if let Some(v) = &i.version {
                parts.push(format!("v{}", v.split_whitespace().next().unwrap_or(v)));
            }
            vec![label, Span::raw(parts.join(" · "))]
        }
    }
}

fn block(title: &str) -> Block<'_> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(DIM)
        .title(Span::styled(format!(" {title} "), HEAD))
}

/// A panel with text lines in it.
fn panel(f: &mut Frame, area: Rect, title: &str, lines: Vec<Line>) {
    f.render_widget(Paragraph::new(lines).block(block(title)), area);
}

fn dim(s: impl Into<String>) -> Line<'static> {
    Line::styled(s.into(), DIM)
}

fn pct(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

// ---- Overview ----------------------------------------------------------

fn overview(f: &mut Frame, area: Rect, d: &Data) {
    let cells: [Rect; 4] = if area.width >= GRID_WIDTH {
        let [top, bottom] =
            Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
        let [a, b] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(top);
        let [c, e] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
            .areas(bottom);
        [a, b, c, e]
    } else {
        Layout::vertical([Constraint::Ratio(1, 4); 4]).areas(area)
    };
    panel(f, cells[0], "P2P network", p2p_lines(d, cells[0].height));
    panel(f, cells[1], "RocksDB", rocksdb_lines(d));
    panel(f, cells[2], "Syscalls: top 5 by time", syscall_lines(d));
    log_panel(f, cells[3], "Events", &d.log);
}

fn p2p_lines(d: &Data, height: u16) -> Vec<Line<'static>> {
    let Some(s) = &d.snap else {
        return vec![dim("waiting for the first interval")];
    };
    let Some(n) = &s.net else {
        return vec![dim("net layer off (--causes net turns it on)")];
    };
    let t = &n.totals;
    let mut v = vec![
        Line::from(format!(
            "{} connections · ↑ {}/s ↓ {}/s",
            n.live_conns,
            bytes(n.tx_per_sec),
            bytes(n.rx_per_sec)
        )),
        Line::from(format!(
            "since start: {} out {} in {} closed {} failed, {} retransmits",
            t.connects, t.accepts, t.closes, t.connect_failures, t.retrans
        )),
    ];
    for a in &n.alerts {
        v.push(Line::styled(a.to_string(), Style::new().fg(Color::Red)));
    }
    let mut peers: Vec<_> = n.peers.iter().filter(|p| p.live > 0).collect();
    peers.sort_by(|a, b| {
        (b.tx_per_sec + b.rx_per_sec)
            .total_cmp(&(a.tx_per_sec + a.rx_per_sec))
            .then(a.peer.to_string().cmp(&b.peer.to_string()))
    });
    let room = (height as usize).saturating_sub(2 + v.len());
    for p in peers.into_iter().take(room) {
        v.push(Line::from(format!(
            "{:<22} {:<4} ↑{:>10}/s ↓{:>10}/s",
            p.peer.to_string(),
            p.dir,
            bytes(p.tx_per_sec),
            bytes(p.rx_per_sec)
        )));
    }
    v
}

fn rocksdb_lines(d: &Data) -> Vec<Line<'static>> {
    let Some(s) = &d.snap else {
        return vec![dim("waiting for the first interval")];
    };
    let Some(r) = &s.rocksdb else {
        return vec![dim("RocksDB layer not running")];
    };
    let totals = s.totals.as_ref().and_then(|t| t.rocksdb.as_ref());
    let mut v = vec![Line::styled(
        format!("{:<11} {:>9} {:>9} {:>12}", "OP", "QPS", "p99 µs", "TOTAL"),
        HEAD,
    )];
    for row in &r.rows {
        let total = total_count(totals, &row.name);
        if row.count == 0 && total == Some(0) {
            continue;
        }
        v.push(Line::from(format!(
            "{:<11} {:>9} {:>9} {:>12}",
            row.name,
            format!("{:.0}", row.qps),
            micros(row.p99_us),
            total.map(thousands).unwrap_or_else(|| "-".into())
        )));
    }
    if v.len() == 1 {
        v.push(dim("no RocksDB calls yet"));
    }
    // Where the time goes, in CKB's terms (the RocksDB tab has the rest).
    let split = cf_split(s);
    if let Some((c, _)) = split.rows.first() {
        // Share first: a narrow panel cuts the database path, not the figure.
        v.push(Line::from(format!(
            "most time: {} {} {} in {}",
            share(c.row.total_ns, split.total_ns),
            c.cf.as_deref().unwrap_or("-"),
            c.row.name,
            tail(&c.db, 24),
        )));
    }
    for a in &s.anomalies {
        v.push(Line::styled(
            format!(
                "ALERT {} {:.1}x baseline: {}",
                a.operation,
                a.multiplier,
                a.cause.describe()
            ),
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        ));
    }
    if let Some(b) = &s.background {
        if b.stalled_ns > 0 {
            v.push(Line::styled(
                format!(
                    "write stall {} this interval",
                    duration_ns(b.stalled_ns as f64)
                ),
                Style::new().fg(Color::Yellow),
            ));
        }
    }
    v
}

fn total_count(totals: Option<&crate::model::Report>, name: &str) -> Option<u64> {
    totals.map(|t| {
        t.rows
            .iter()
            .find(|r| r.name == name)
            .map_or(0, |r| r.count)
    })
}

fn syscall_lines(d: &Data) -> Vec<Line<'static>> {
    let Some(s) = &d.snap else {
        return vec![dim("waiting for the first interval")];
    };
    let Some(r) = &s.syscall else {
        return vec![dim(
            "syscall layer off: --causes syscall traces every syscall (~0.4 µs each)",
        )];
    };
    let mut v = vec![Line::styled(
        format!(
            "{:<16} {:>9} {:>10} {:>6}",
            "SYSCALL", "CALLS", "TIME", "SHARE"
        ),
        HEAD,
    )];
    for (name, row) in r.syscalls.iter().take(5) {
        v.push(Line::from(format!(
            "{:<16} {:>9} {:>10} {:>6}",
            name,
            thousands(row.row.count),
            duration_ns(row.total_ns as f64),
            share(row.total_ns, r.total_ns)
        )));
    }
    if r.syscalls.is_empty() {
        v.push(dim("no syscalls in this interval"));
    }
    v
}

fn share(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        pct(part as f64 / whole as f64)
    }
}

fn log_panel(f: &mut Frame, area: Rect, title: &str, log: &std::collections::VecDeque<Entry>) {
    let room = area.height.saturating_sub(2) as usize;
    let width = area.width.saturating_sub(2) as usize;
    let lines: Vec<Line> = if log.is_empty() {
        vec![dim("no events yet")]
    } else {
        // Entries wrap: an alert's cause and next step must be readable whole.
        newest_that_fit(log.iter(), room, |e| entry_lines(e, width))
    };
    panel(f, area, title, lines);
}

/// The last items of a log, each rendered to one or more lines, as many
/// as fit in `room` lines (newest at the bottom).
fn newest_that_fit<'a, T: 'a>(
    items: impl DoubleEndedIterator<Item = &'a T>,
    room: usize,
    render: impl Fn(&T) -> Vec<Line<'static>>,
) -> Vec<Line<'static>> {
    let mut out: Vec<Line> = Vec::new();
    for it in items.rev() {
        let mut l = render(it);
        l.append(&mut out);
        out = l;
        if out.len() >= room {
            break;
        }
    }
    let skip = out.len().saturating_sub(room);
    out.split_off(skip)
}

/// Width of "HH:MM:SS TAG   ": continuation lines start under the text.
const ENTRY_INDENT: usize = 15;

/// One event-log entry, wrapped to `width` columns.
fn entry_lines(e: &Entry, width: usize) -> Vec<Line<'static>> {
    let color = match e.kind {
        Kind::Alert => Color::Red,
        Kind::Slow => Color::Yellow,
        Kind::Connect => Color::Green,
        Kind::Disconnect => Color::Magenta,
        Kind::Restart => Color::Cyan,
        Kind::Note => Color::DarkGray,
    };
    let text_w = width.saturating_sub(ENTRY_INDENT).max(10);
    let chunks = wrap(&e.text, text_w);
    let style = if e.kind == Kind::Alert {
        Style::new().fg(Color::Red)
    } else {
        Style::new()
    };
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            if i == 0 {
                Line::from(vec![
                    Span::styled(format!("{} ", e.time), DIM),
                    Span::styled(format!("{:<5} ", e.kind.tag()), Style::new().fg(color)),
                    Span::styled(c, style),
                ])
            } else {
                Line::from(vec![
                    Span::raw(" ".repeat(ENTRY_INDENT)),
                    Span::styled(c, style),
                ])
            }
        })
        .collect()
}

/// Splits `text` into pieces of at most `width` characters, at spaces
/// where it can.
pub(super) fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for word in text.split(' ') {
        let mut word = word.to_string();
        loop {
            let cur_len = cur.chars().count();
            let need = if cur.is_empty() { 0 } else { 1 } + word.chars().count();
            if cur_len + need <= width {
                if !cur.is_empty() {
                    cur.push(' ');
                }
                cur.push_str(&word);
                break;
            }
            if cur.is_empty() {
                // A word longer than the line: cut it.
                let head: String = word.chars().take(width).collect();
                word = word.chars().skip(width).collect();
                out.push(head);
                if word.is_empty() {
                    break;
                }
            } else {
                out.push(std::mem::take(&mut cur));
            }
        }
    }
    if !cur.is_empty() || out.is_empty() {
        out.push(cur);
    }
    out
}

// ---- RocksDB -----------------------------------------------------------

fn rocksdb_tab(f: &mut Frame, area: Rect, app: &App, d: &Data) {
    let Some(s) = &d.snap else {
        panel(
            f,
            area,
            "RocksDB",
            vec![dim("waiting for the first interval")],
        );
        return;
    };
    let Some(r) = &s.rocksdb else {
        panel(f, area, "RocksDB", vec![dim("RocksDB layer not running")]);
        return;
    };
    let totals = s.totals.as_ref().and_then(|t| t.rocksdb.as_ref());
    let table_h = (r.rows.len() as u16 + 3).min(area.height / 2).max(4);
    let split = cf_split(s);
    // The split gets a quarter of the tab: its top rows by time are what
    // tells where the time goes.
    let cf_h = (split.rows.len().max(1) as u16 + 3).min((area.height / 4).max(4));
    let [top, cf, mid, bottom] = Layout::vertical([
        Constraint::Length(table_h),
        Constraint::Length(cf_h),
        Constraint::Min(5),
        Constraint::Percentage(30),
    ])
    .areas(area);

    let header = Row::new(
        [
            "OP", "QPS", "AVG µs", "P50 µs", "P99 µs", "MAX µs", "HIT", "BYTES/s", "TOTAL",
        ]
        .map(|h| h.to_string()),
    )
    .style(HEAD);
    let rows = r.rows.iter().map(|row| {
        Row::new(vec![
            row.name.clone(),
            format!("{:.0}", row.qps),
            micros(row.avg_us),
            micros(row.p50_us),
            micros(row.p99_us),
            micros(row.max_us),
            row.hit_ratio.map(pct).unwrap_or_else(|| "-".into()),
            row.bytes_per_sec.map(bytes).unwrap_or_else(|| "-".into()),
            total_count(totals, &row.name)
                .map(thousands)
                .unwrap_or_else(|| "-".into()),
        ])
    });
    let widths = [
        Constraint::Length(11),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(9),
        Constraint::Length(6),
        Constraint::Length(10),
        Constraint::Length(13),
    ];
    let title = format!(
        "RocksDB operations (this interval; TOTAL since start){}",
        if r.lost_events + r.dropped > 0 {
            format!(" · {} lost, {} dropped", r.lost_events, r.dropped)
        } else {
            String::new()
        }
    );
    let sel = app.selected().min(r.rows.len().saturating_sub(1));
    let mut state = TableState::default().with_selected((!r.rows.is_empty()).then_some(sel));
    f.render_stateful_widget(
        Table::new(rows, widths)
            .header(header)
            .block(block(&title))
            .row_highlight_style(SELECTED),
        top,
        &mut state,
    );

    cf_panel(f, cf, &split);

    let chosen = r.rows.get(sel);
    let [left, right] = if app.show_hist {
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(mid)
    } else {
        [Rect::default(), mid]
    };
    if app.show_hist {
        let (h, what) = match chosen {
            Some(row) if row.count > 0 => (Some(&row.hist), "this interval"),
            Some(row) => (
                totals
                    .and_then(|t| t.rows.iter().find(|x| x.name == row.name))
                    .map(|x| &x.hist),
                "since start",
            ),
            None => (None, ""),
        };
        let name = chosen.map_or("-", |r| r.name.as_str());
        hist_panel(f, left, &format!("{name} latency, {what}"), h);
    }
    sparklines(f, right, d, chosen);

    let [bg, slow] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(bottom);
    background_panel(f, bg, d);
    let room = slow.height.saturating_sub(2) as usize;
    let width = slow.width.saturating_sub(2) as usize;
    let lines: Vec<Line> = if d.slow.is_empty() {
        vec![dim("no operation over the slow threshold")]
    } else {
        newest_that_fit(d.slow.iter(), room, |l| {
            // "HH:MM:SS.mmm " then the rest, wrapped under it.
            let (time, rest) = l.split_once(' ').unwrap_or(("", l));
            wrap(rest, width.saturating_sub(13).max(10))
                .into_iter()
                .enumerate()
                .map(|(i, c)| {
                    let lead = if i == 0 {
                        format!("{time} ")
                    } else {
                        " ".repeat(13)
                    };
                    Line::from(vec![Span::styled(lead, DIM), Span::raw(c)])
                })
                .collect()
        })
    };
    panel(f, slow, "Slow operations (newest last)", lines);
}

/// The RocksDB tab's split per (database, column family, class): since
/// start when the snapshot carries totals (the overview asks for them),
/// else this interval; largest total time first.
pub struct CfSplit<'a> {
    /// Each row with its calls per second in the last interval.
    pub rows: Vec<(&'a CfRow, f64)>,
    /// All RocksDB time of the span, for each row's share.
    pub total_ns: u64,
    pub since_start: bool,
}

pub fn cf_split<'a>(s: &'a Snapshot) -> CfSplit<'a> {
    let now = s.rocksdb.as_ref().map_or(&[][..], |r| r.by_cf.as_slice());
    let totals = s.totals.as_ref().and_then(|t| t.rocksdb.as_ref());
    let (all, since_start) = match totals {
        Some(t) => (t.by_cf.as_slice(), true),
        None => (now, false),
    };
    let mut rows: Vec<(&CfRow, f64)> = all
        .iter()
        .filter(|c| c.row.count > 0)
        .map(|c| {
            // A key with no row in the interval had no call in it. Tens of
            // rows: a scan is cheaper than building an index per frame.
            let qps = now
                .iter()
                .find(|n| n.db == c.db && n.cf == c.cf && n.row.name == c.row.name)
                .map_or(0.0, |n| n.row.qps);
            (c, qps)
        })
        .collect();
    let key = |c: &'a CfRow| (c.db.as_str(), c.cf.as_deref(), c.row.name.as_str());
    rows.sort_by(|(a, _), (b, _)| {
        (b.row.total_ns, b.row.count)
            .cmp(&(a.row.total_ns, a.row.count))
            .then_with(|| key(a).cmp(&key(b)))
    });
    let total_ns = all.iter().map(|c| c.row.total_ns).sum();
    CfSplit {
        rows,
        total_ns,
        since_start,
    }
}

/// `name` in `width` columns: the end kept (what tells `data/db` from
/// `data/indexer/store`), the cut start marked.
fn tail(name: &str, width: usize) -> String {
    let n = name.chars().count();
    if n <= width {
        return name.to_string();
    }
    let keep = width.saturating_sub(1);
    std::iter::once('…')
        .chain(name.chars().skip(n - keep))
        .collect()
}

fn cf_panel(f: &mut Frame, area: Rect, split: &CfSplit) {
    let rows = &split.rows;
    let span = if split.since_start {
        "since start"
    } else {
        "this interval"
    };
    let room = area.height.saturating_sub(3) as usize;
    let unresolved = rows
        .iter()
        .filter(|(c, _)| is_unresolved(&c.db) || c.cf.as_deref().is_some_and(is_unresolved))
        .count();
    let mut title = format!(
        "Time by database and column family ({span}; top {} of {})",
        rows.len().min(room),
        rows.len()
    );
    if unresolved > 0 {
        title.push_str(&format!(
            " · {unresolved} with unresolved handles, shown as their address"
        ));
    }
    if rows.is_empty() {
        panel(f, area, &title, vec![dim("no RocksDB calls yet")]);
        return;
    }
    // Fixed columns after DB and CF: OP TOTAL TIME SHARE AVG P99 QPS, and
    // the 8 one-column gaps between the nine.
    const FIXED: usize = 11 + 13 + 9 + 6 + 8 + 8 + 8 + 8;
    let inner = area.width.saturating_sub(2) as usize;
    let cf_w = rows
        .iter()
        .map(|(c, _)| c.cf.as_deref().unwrap_or("").chars().count())
        .max()
        .unwrap_or(0)
        .clamp(2, 24);
    let db_w = rows
        .iter()
        .map(|(c, _)| c.db.chars().count())
        .max()
        .unwrap_or(0)
        .min(inner.saturating_sub(FIXED + cf_w))
        .max(8);
    let header = Row::new(
        [
            "DB", "CF", "OP", "TOTAL", "TIME", "SHARE", "AVG µs", "P99 µs", "QPS",
        ]
        .map(String::from),
    )
    .style(HEAD);
    let lines = rows.iter().take(room).map(|(c, qps)| {
        let cf = c.cf.clone().unwrap_or_default();
        let style = if is_unresolved(&c.db) || is_unresolved(&cf) {
            Style::new().fg(Color::Yellow)
        } else {
            Style::new()
        };
        Row::new(vec![
            tail(&c.db, db_w),
            cf,
            c.row.name.clone(),
            thousands(c.row.count),
            duration_ns(c.row.total_ns as f64),
            share(c.row.total_ns, split.total_ns),
            micros(c.row.avg_us),
            micros(c.row.p99_us),
            format!("{qps:.0}"),
        ])
        .style(style)
    });
    let widths = [
        Constraint::Length(db_w as u16),
        Constraint::Length(cf_w as u16),
        Constraint::Length(11),
        Constraint::Length(13),
        Constraint::Length(9),
        Constraint::Length(6),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(8),
    ];
    f.render_widget(
        Table::new(lines, widths)
            .header(header)
            .block(block(&title)),
        area,
    );
}

/// Log2 latency rows as text bars (the same rows as `rocksdb --histogram`).
pub fn hist_lines(h: &Histogram, width: u16, height: u16) -> Vec<Line<'static>> {
    let mut rows = h.log2_rows();
    if rows.is_empty() {
        return vec![dim("no calls")];
    }
    // Keep the rows around the peak when they do not all fit.
    let room = height.max(1) as usize;
    while rows.len() > room {
        let first = rows.first().map_or(0, |r| r.1);
        let last = rows.last().map_or(0, |r| r.1);
        if first <= last {
            rows.remove(0);
        } else {
            rows.pop();
        }
    }
    let peak = rows.iter().map(|(_, n)| *n).max().unwrap_or(1).max(1);
    let bar_w = (width as usize).saturating_sub(28).max(1);
    rows.into_iter()
        .map(|(p, n)| {
            let lo = duration_ns((1u64 << p) as f64);
            let hi = duration_ns((1u64 << (p + 1)) as f64);
            let len = if n > 0 {
                ((n as usize * bar_w).div_ceil(peak as usize)).max(1)
            } else {
                0
            };
            Line::from(vec![
                Span::raw(format!("{lo:>7}-{hi:<7} {n:>10} ")),
                Span::styled("█".repeat(len), Style::new().fg(Color::Cyan)),
            ])
        })
        .collect()
}

fn hist_panel(f: &mut Frame, area: Rect, title: &str, h: Option<&Histogram>) {
    let inner_w = area.width.saturating_sub(2);
    let inner_h = area.height.saturating_sub(2);
    let lines = match h {
        Some(h) => hist_lines(h, inner_w, inner_h),
        None => vec![dim("nothing selected")],
    };
    panel(f, area, title, lines);
}

fn sparklines(f: &mut Frame, area: Rect, d: &Data, chosen: Option<&OpRow>) {
    let name = chosen.map_or("-", |r| r.name.as_str());
    let series = d.history.get(name);
    let [a, b] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    let qps: Vec<u64> = series
        .map(|s| s.qps.iter().copied().collect())
        .unwrap_or_default();
    let p99: Vec<u64> = series
        .map(|s| s.p99_us.iter().copied().collect())
        .unwrap_or_default();
    // The newest samples that fit, right-aligned like a scrolling chart.
    let tail = |v: &[u64], w: u16| v[v.len().saturating_sub(w as usize)..].to_vec();
    let w = a.width.saturating_sub(2);
    let last = |v: &[u64]| v.last().copied().unwrap_or(0);
    let max = |v: &[u64]| v.iter().copied().max().unwrap_or(0);
    f.render_widget(
        Sparkline::default()
            .block(block(&format!(
                "{name} QPS: now {} max {} ({} samples)",
                last(&qps),
                max(&qps),
                qps.len()
            )))
            .data(tail(&qps, w))
            .style(Style::new().fg(Color::Green)),
        a,
    );
    f.render_widget(
        Sparkline::default()
            .block(block(&format!(
                "{name} p99 µs: now {} max {}",
                last(&p99),
                max(&p99)
            )))
            .data(tail(&p99, w))
            .style(Style::new().fg(Color::Yellow)),
        b,
    );
}

fn background_panel(f: &mut Frame, area: Rect, d: &Data) {
    let b = d.snap.as_ref().and_then(|s| s.background.as_ref());
    let mut v = Vec::new();
    match b {
        None => v.push(dim(
            "background layer not running (needs RocksDB's C++ symbols)",
        )),
        Some(b) => {
            v.push(Line::styled(
                format!(
                    "{:<16} {:>5} {:>5} {:>4} {:>9} {:>9}",
                    "JOB", "START", "DONE", "RUN", "AVG", "MAX"
                ),
                HEAD,
            ));
            for r in &b.rows {
                v.push(Line::from(format!(
                    "{:<16} {:>5} {:>5} {:>4} {:>9} {:>9}",
                    r.kind.name(),
                    r.started,
                    r.finished,
                    r.in_flight,
                    r.avg_us
                        .map(|u| duration_ns(u * 1e3))
                        .unwrap_or_else(|| "-".into()),
                    r.max_us
                        .or(r.running_max_us)
                        .map(|u| duration_ns(u * 1e3))
                        .unwrap_or_else(|| "-".into()),
                )));
            }
            let style = if b.stalled_ns > 0 {
                Style::new().fg(Color::Yellow)
            } else {
                Style::new()
            };
            v.push(Line::styled(
                format!(
                    "write stall: {} this interval",
                    duration_ns(b.stalled_ns as f64)
                ),
                style,
            ));
        }
    }
    let room = (area.height as usize).saturating_sub(2 + v.len());
    for j in d.jobs.iter().rev().take(room) {
        v.push(dim(format!(
            "{} {} {} ({})",
            super::app::hhmmss(&j.time),
            j.kind.name(),
            duration_ns(j.duration_us * 1e3),
            j.thread
        )));
    }
    panel(f, area, "Background jobs", v);
}

// ---- Network -----------------------------------------------------------

fn network_tab(f: &mut Frame, area: Rect, app: &App, d: &Data) {
    let n = d.snap.as_ref().and_then(|s| s.net.as_ref());
    let Some(n) = n else {
        let why = if d.snap.is_some() {
            "net layer off (--causes net turns it on)"
        } else {
            "waiting for the first interval"
        };
        panel(f, area, "Network", vec![dim(why)]);
        return;
    };
    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(area);
    let header = Row::new(
        [
            "PEER", "DIR", "LIVE", "↑/s", "↓/s", "SENT", "RECV", "AGE", "RTT", "RETR",
        ]
        .map(String::from),
    )
    .style(HEAD);
    let rows = n.peers.iter().map(|p| {
        Row::new(vec![
            p.peer.to_string(),
            p.dir.clone(),
            p.live.to_string(),
            bytes(p.tx_per_sec),
            bytes(p.rx_per_sec),
            bytes(p.tx_bytes as f64),
            bytes(p.rx_bytes as f64),
            p.age_secs
                .map(|s| duration_ns(s * 1e9))
                .unwrap_or_else(|| "-".into()),
            p.srtt_us
                .map(|u| duration_ns(u as f64 * 1e3))
                .unwrap_or_else(|| "-".into()),
            p.retrans.to_string(),
        ])
    });
    let widths = [
        Constraint::Length(22),
        Constraint::Length(8),
        Constraint::Length(4),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Length(7),
        Constraint::Length(8),
        Constraint::Length(5),
    ];
    let t = &n.totals;
    let title = format!(
        "Peers: {} connections · ↑ {}/s ↓ {}/s · {} out {} in {} closed {} failed",
        n.live_conns,
        bytes(n.tx_per_sec),
        bytes(n.rx_per_sec),
        t.connects,
        t.accepts,
        t.closes,
        t.connect_failures
    );
    let sel = app.selected().min(n.peers.len().saturating_sub(1));
    let mut state = TableState::default().with_selected((!n.peers.is_empty()).then_some(sel));
    f.render_stateful_widget(
        Table::new(rows, widths)
            .header(header)
            .block(block(&title))
            .row_highlight_style(SELECTED),
        top,
        &mut state,
    );
    let room = bottom.height.saturating_sub(2) as usize;
    let mut lines: Vec<Line> = n
        .alerts
        .iter()
        .map(|a| Line::styled(a.to_string(), Style::new().fg(Color::Red)))
        .collect();
    let skip = d
        .conns
        .len()
        .saturating_sub(room.saturating_sub(lines.len()));
    for e in d.conns.iter().skip(skip) {
        let detail = match e.kind {
            crate::model::net::EventKind::Close => format!(
                "{} lived {} sent {} recv {} retrans {}",
                e.dir.name(),
                e.duration_secs
                    .map(|s| duration_ns(s * 1e9))
                    .unwrap_or_else(|| "-".into()),
                bytes(e.tx_bytes as f64),
                bytes(e.rx_bytes as f64),
                e.retrans
            ),
            _ => e.dir.name().to_string(),
        };
        lines.push(Line::from(format!(
            "{} {:<14} {:<22} {}",
            super::app::hhmmss(&e.time),
            e.kind.name(),
            e.peer,
            detail
        )));
    }
    if lines.is_empty() {
        lines.push(dim("no connection opened or closed yet"));
    }
    if n.peers.is_empty() {
        lines.insert(0, dim("no TCP connection of the node seen yet"));
    }
    panel(f, bottom, "Connection events", lines);
}

// ---- Syscall -----------------------------------------------------------

fn syscall_tab(f: &mut Frame, area: Rect, app: &App, d: &Data) {
    let r = d.snap.as_ref().and_then(|s| s.syscall.as_ref());
    let Some(r) = r else {
        let why = if d.snap.is_some() {
            "syscall layer off: run with --causes syscall (it traces every syscall of the node, ~0.4 µs each)"
        } else {
            "waiting for the first interval"
        };
        panel(f, area, "Syscalls", vec![dim(why)]);
        return;
    };
    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(area);
    let header = Row::new(
        [
            "SYSCALL", "CATEGORY", "CALLS", "TIME", "SHARE", "AVG µs", "P99 µs", "ERR", "TOP ROLE",
        ]
        .map(String::from),
    )
    .style(HEAD);
    let rows = r.syscalls.iter().map(|(name, row)| {
        let top_role = row
            .by_role
            .iter()
            .max_by_key(|(_, c)| c.total_ns)
            .map(|(role, c)| format!("{role} {}", share(c.total_ns, row.total_ns)))
            .unwrap_or_else(|| "-".into());
        Row::new(vec![
            name.clone(),
            row.category.name().to_string(),
            thousands(row.row.count),
            duration_ns(row.total_ns as f64),
            share(row.total_ns, r.total_ns),
            micros(row.row.avg_us),
            micros(row.row.p99_us),
            thousands(row.errors),
            top_role,
        ])
    });
    // AVG and P99 fit a futex wait of seconds ("3,323,230").
    let widths = [
        Constraint::Length(16),
        Constraint::Length(9),
        Constraint::Length(10),
        Constraint::Length(9),
        Constraint::Length(6),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Length(6),
        Constraint::Min(12),
    ];
    let title = format!(
        "Syscalls by time: {} calls, {} in {} distinct",
        thousands(r.total_calls),
        duration_ns(r.total_ns as f64),
        r.distinct
    );
    let sel = app.selected().min(r.syscalls.len().saturating_sub(1));
    let mut state = TableState::default().with_selected((!r.syscalls.is_empty()).then_some(sel));
    f.render_stateful_widget(
        Table::new(rows, widths)
            .header(header)
            .block(block(&title))
            .row_highlight_style(SELECTED),
        top,
        &mut state,
    );
    let [left, right] = if app.show_hist {
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(bottom)
    } else {
        [Rect::default(), bottom]
    };
    if app.show_hist {
        let chosen = r.syscalls.get(sel);
        let name = chosen.map_or("-", |(n, _)| n.as_str());
        hist_panel(
            f,
            left,
            &format!("{name} latency"),
            chosen.map(|(_, row)| &row.row.hist),
        );
    }
    let mut v = vec![Line::styled(
        format!(
            "{:<12} {:>4} {:>10} {:>9} {:>6} {:>6}",
            "ROLE", "THR", "CALLS", "TIME", "FSYNC", "FUTEX"
        ),
        HEAD,
    )];
    for (role, row) in &r.roles {
        v.push(Line::from(format!(
            "{:<12} {:>4} {:>10} {:>9} {:>6} {:>6}",
            role,
            row.threads,
            thousands(row.count),
            duration_ns(row.total_ns as f64),
            row.fsyncs,
            row.futex_wait_ratio.map(pct).unwrap_or_else(|| "-".into())
        )));
    }
    panel(
        f,
        right,
        "Thread roles (FUTEX: share of futex calls that wait)",
        v,
    );
}

// ---- Help --------------------------------------------------------------

fn help(f: &mut Frame, area: Rect) {
    let text = vec![
        Line::styled("Keys", HEAD),
        Line::from("Tab, Shift-Tab  next / previous tab"),
        Line::from("1 2 3 4         Overview, RocksDB, Network, Syscall"),
        Line::from("↑ ↓ (k j)       select an operation, peer or syscall"),
        Line::from("p               pause the screen (the capture goes on)"),
        Line::from("h               show / hide latency histograms"),
        Line::from("?  Esc          this help"),
        Line::from("q  Ctrl-C       quit (probes detach, terminal restored)"),
        Line::from(""),
        Line::styled("Reading it", HEAD),
        Line::from("Counts are exact: every call is counted in the kernel."),
        Line::from("QPS and latency are per interval; TOTAL is since start."),
        Line::from("An ALERT names the operation, its probable cause and"),
        Line::from("the next command to run."),
    ];
    let w = 62.min(area.width);
    let h = (text.len() as u16 + 2).min(area.height);
    let r = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(text)
            .alignment(Alignment::Left)
            .block(block("Help")),
        r,
    );
}
