//! The HTTP side: a few threads accepting on one std `TcpListener`, each
//! answering one request per connection from the last published page.
//!
//! The capture thread renders each snapshot once (both formats) in
//! `publish` and swaps it into a slot; a scrape only clones an `Arc` under a
//! read lock held for that instant and writes bytes. So scrapes never block
//! collection and never do per-event work, and a slow or stuck client holds
//! one worker for at most the socket timeouts.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::encode::{render, Format, Options, State};
use super::view::MetricsView;
use crate::error::{Exit, Failure};

/// Where `export` listens unless told otherwise: loopback only, so nothing
/// is exposed to the network by default.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9190";
/// Requests served at once; more wait in the kernel's accept queue.
const WORKERS: usize = 4;
/// Reading a request (its headers) must finish within this.
const REQUEST_DEADLINE: Duration = Duration::from_secs(5);
const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// Writing a response to a client that does not read gives up after this.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest request head accepted (Prometheus sends ~300 bytes).
const MAX_HEAD: usize = 16 * 1024;

/// One snapshot rendered in both formats.
struct Page {
    text: Vec<u8>,
    openmetrics: Vec<u8>,
}

/// The running exporter: the listening socket, its workers and the page
/// they serve.
pub struct Exporter {
    addr: SocketAddr,
    listener: Arc<TcpListener>,
    page: Arc<RwLock<Arc<Page>>>,
    state: Mutex<State>,
    opts: Options,
    stop: Arc<AtomicBool>,
    /// Metrics responses served, per format (Text, OpenMetrics).
    scrapes: Arc<[AtomicU64; 2]>,
    workers: Vec<JoinHandle<()>>,
}

/// Parses `--listen`: ADDR:PORT (`127.0.0.1:9190`, `[::1]:9190`,
/// `localhost:9190`). A usage error names the value and the expected form.
pub fn parse_listen(s: &str) -> Result<SocketAddr> {
    let bad = |why: &str| {
        Failure::new(Exit::Usage, format!("bad --listen address `{s}`: {why}"))
            .hint("give ADDR:PORT, e.g. --listen 127.0.0.1:9190 or --listen [::1]:9190")
    };
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    if !s.contains(':') {
        return Err(bad("no port").into());
    }
    match s.to_socket_addrs() {
        Ok(mut it) => it
            .next()
            .ok_or_else(|| bad("the name has no address").into()),
        Err(e) => Err(bad(&e.to_string()).into()),
    }
}

impl Exporter {
    /// Binds `addr` and starts the workers; until the first `publish` the
    /// page holds the tool's own series only.
    pub fn start(addr: SocketAddr, opts: Options) -> Result<Exporter> {
        let listener = TcpListener::bind(addr).map_err(|e| bind_failure(addr, &e))?;
        let addr = listener.local_addr()?;
        let listener = Arc::new(listener);
        let mut state = State::default();
        let page = Arc::new(RwLock::new(Arc::new(render_page(
            &MetricsView::default(),
            &opts,
            &mut state,
        ))));
        let stop = Arc::new(AtomicBool::new(false));
        let scrapes = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let mut workers = Vec::with_capacity(WORKERS);
        for i in 0..WORKERS {
            let (l, p, s, n) = (
                listener.clone(),
                page.clone(),
                stop.clone(),
                scrapes.clone(),
            );
            let h = std::thread::Builder::new()
                .name(format!("export-http-{i}"))
                .spawn(move || worker(&l, &p, &s, &n))?;
            workers.push(h);
        }
        Ok(Exporter {
            addr,
            listener,
            page,
            state: Mutex::new(state),
            opts,
            stop,
            scrapes,
            workers,
        })
    }

    /// The address bound (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests answered with metrics so far.
    pub fn scrapes(&self) -> u64 {
        self.scrapes_in(Format::Text) + self.scrapes_in(Format::OpenMetrics)
    }

    /// Requests answered with metrics in `fmt`.
    pub fn scrapes_in(&self, fmt: Format) -> u64 {
        self.scrapes[fmt as usize].load(Ordering::Relaxed)
    }

    /// Makes `view` what scrapes see from now on. Called by the capture
    /// thread once per interval; renders outside the lock.
    pub fn publish(&self, view: &MetricsView) {
        let page = {
            let mut st = match self.state.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            render_page(view, &self.opts, &mut st)
        };
        let page = Arc::new(page);
        match self.page.write() {
            Ok(mut g) => *g = page,
            Err(p) => *p.into_inner() = page,
        }
    }

    /// Stops accepting and waits for the workers (each finishes the request
    /// it is serving).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // shutdown(2) on a listening socket wakes every thread blocked in
        // accept(2) on it (EINVAL), on Linux.
        // SAFETY: the fd is open for as long as `self.listener` lives.
        unsafe { libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR) };
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn render_page(view: &MetricsView, opts: &Options, st: &mut State) -> Page {
    // Text first: it moves the monotonic floors; OpenMetrics then renders
    // the same values.
    let text = render(view, Format::Text, opts, st).into_bytes();
    let openmetrics = render(view, Format::OpenMetrics, opts, st).into_bytes();
    Page { text, openmetrics }
}

fn bind_failure(addr: SocketAddr, e: &io::Error) -> anyhow::Error {
    let (code, remedy) = match e.kind() {
        io::ErrorKind::AddrInUse => (
            Exit::Usage,
            format!(
                "another program listens on port {} (see `ss -ltnp 'sport = :{}'`); stop it or pass --listen with a free port",
                addr.port(),
                addr.port()
            ),
        ),
        io::ErrorKind::AddrNotAvailable => (
            Exit::Usage,
            format!(
                "{} is not an address of this machine; pass --listen 127.0.0.1:{} or an address `ip addr` lists",
                addr.ip(),
                addr.port()
            ),
        ),
        io::ErrorKind::PermissionDenied => (
            Exit::Environment,
            "ports below 1024 need root or CAP_NET_BIND_SERVICE; run as root or pass a port above 1023"
                .to_string(),
        ),
        _ => (
            Exit::Usage,
            "pass --listen ADDR:PORT with an address of this machine and a free port".to_string(),
        ),
    };
    Failure::new(code, format!("cannot listen on {addr}: {e}"))
        .hint(remedy)
        .into()
}

fn worker(l: &TcpListener, page: &RwLock<Arc<Page>>, stop: &AtomicBool, scrapes: &[AtomicU64; 2]) {
    loop {
        let accepted = l.accept();
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match accepted {
            Ok((s, _)) => {
                if let Some(fmt) = serve(s, page) {
                    scrapes[fmt as usize].fetch_add(1, Ordering::Relaxed);
                }
            }
            // Out of fds or memory: back off instead of spinning.
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// A parsed request head: what the response depends on.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub accept: Option<String>,
}

/// Parses a request head (up to and without the blank line).
pub fn parse_request(head: &str) -> Option<Request> {
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?;
    if !first.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let path = target.split('?').next().unwrap_or(target).to_string();
    let accept = lines.find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("accept")
            .then(|| v.trim().to_string())
    });
    Some(Request {
        method,
        path,
        accept,
    })
}

/// Reads the request head within REQUEST_DEADLINE and MAX_HEAD.
fn read_head(s: &mut TcpStream) -> Option<String> {
    let start = Instant::now();
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.truncate(end);
            return String::from_utf8(buf).ok();
        }
        if buf.len() > MAX_HEAD || start.elapsed() > REQUEST_DEADLINE {
            return None;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Answers one connection; the format when metrics were served.
fn serve(mut s: TcpStream, page: &RwLock<Arc<Page>>) -> Option<Format> {
    let _ = s.set_read_timeout(Some(READ_TIMEOUT));
    let _ = s.set_write_timeout(Some(WRITE_TIMEOUT));
    let _ = s.set_nodelay(true);
    let Some(req) = read_head(&mut s).as_deref().and_then(parse_request) else {
        let _ = respond(
            &mut s,
            "400 Bad Request",
            "text/plain",
            b"bad request\n",
            true,
            &[],
        );
        return None;
    };
    let head_only = req.method == "HEAD";
    if req.method != "GET" && !head_only {
        let _ = respond(
            &mut s,
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            b"only GET and HEAD\n",
            true,
            &[("Allow", "GET, HEAD")],
        );
        return None;
    }
    if req.path != "/metrics" && req.path != "/" {
        let _ = respond(
            &mut s,
            "404 Not Found",
            "text/plain; charset=utf-8",
            b"not found: metrics are served at /metrics (and /)\n",
            !head_only,
            &[],
        );
        return None;
    }
    let fmt = Format::negotiate(req.accept.as_deref());
    // The lock is held only to clone the Arc.
    let current = match page.read() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    };
    let body = match fmt {
        Format::Text => &current.text,
        Format::OpenMetrics => &current.openmetrics,
    };
    respond(&mut s, "200 OK", fmt.content_type(), body, !head_only, &[])
        .ok()
        .map(|_| fmt)
}

fn respond(
    s: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
    with_body: bool,
    extra: &[(&str, &str)],
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    if with_body {
        s.write_all(body)?;
    }
    s.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse() {
        let r = parse_request(
            "GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nACCEPT: application/openmetrics-text",
        )
        .unwrap();
        assert_eq!(r.path, "/metrics");
        assert_eq!(r.accept.as_deref(), Some("application/openmetrics-text"));
        assert_eq!(parse_request("garbage"), None);
        assert_eq!(parse_request("GET / SMTP"), None);
    }

    #[test]
    fn listen_values() {
        use crate::error::exit_code;
        assert_eq!(
            parse_listen("127.0.0.1:9190").unwrap(),
            "127.0.0.1:9190".parse().unwrap()
        );
        assert_eq!(parse_listen("[::1]:1").unwrap().port(), 1);
        assert_eq!(parse_listen("localhost:9190").unwrap().port(), 9190);
        for bad in ["9190", "127.0.0.1", "127.0.0.1:99999", "127.0.0.1:x", ""] {
            let e = parse_listen(bad).unwrap_err();
            assert_eq!(exit_code(&e), Exit::Usage, "{bad}");
            assert!(crate::error::remedy(&e).unwrap().contains("ADDR:PORT"));
        }
    }
}
