//! The terminal while the overview owns it: raw mode and the alternate
//! screen, given back on every way out (drop, panic). The capture's own
//! notes go to stderr, which is the same terminal: while the screen is
//! up, stderr is a pipe whose lines become event-log entries, and the
//! real stderr comes back before anything else is printed.

use std::fs::File;
use std::io::{BufRead, BufReader, Stdout};
use std::os::fd::FromRawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

use std::time::Duration;

use anyhow::{Context, Result};
use crossbeam_channel::{bounded, Receiver};
use crossterm::{cursor, execute, terminal};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

/// The real stderr while it is redirected (-1: not redirected).
static SAVED_STDERR: AtomicI32 = AtomicI32::new(-1);

/// Puts the real stderr back (idempotent; safe in a panic hook).
pub fn restore_stderr() {
    let fd = SAVED_STDERR.swap(-1, Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: plain fd syscalls on descriptors this module owns.
        unsafe {
            libc::dup2(fd, 2);
            libc::close(fd);
        }
    }
}

/// The screen is up (raw mode, alternate screen): what `restore_terminal`
/// undoes, once.
static ENTERED: AtomicBool = AtomicBool::new(false);

/// Leaves raw mode and the alternate screen, shows the cursor. Only the
/// first call acts: leaving the alternate screen also restores the cursor
/// saved on entering it, so a second leave after a panic message would
/// move the cursor back above the message, and the shell would overwrite it.
fn restore_terminal() {
    if !ENTERED.swap(false, Ordering::SeqCst) {
        return;
    }
    let _ = terminal::disable_raw_mode();
    let _ = execute!(
        std::io::stdout(),
        terminal::LeaveAlternateScreen,
        cursor::Show
    );
}

/// Lines the capture wrote to stderr while the screen was up, for the
/// operator to read after it closes (bounded: the first ones matter most,
/// they say what was attached or why not).
pub struct Captured {
    lines: Arc<Mutex<Vec<String>>>,
    /// Closed by the reader at end of file.
    drained: Receiver<()>,
}
const CAPTURED_MAX: usize = 200;
/// How long `Captured::lines` waits for the pipe to drain: a note written
/// just before the screen closed (why the capture ended) is in it.
const DRAIN_WAIT: Duration = Duration::from_secs(1);

impl Captured {
    /// Every line written before `restore_stderr`: waits until the reader
    /// has read the pipe to its end (bounded wait).
    pub fn lines(self) -> Vec<String> {
        let _ = self.drained.recv_timeout(DRAIN_WAIT);
        self.lines.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

/// Sends every stderr line to `line` (and keeps the first ones) until
/// `restore_stderr`.
pub fn capture_stderr(line: impl Fn(String) + Send + 'static) -> Result<Captured> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2/dup/dup2 on fresh descriptors; results checked.
    let saved = unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return Err(std::io::Error::last_os_error()).context("creating a pipe for stderr");
        }
        let saved = libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 3);
        if saved < 0 || libc::dup2(fds[1], 2) < 0 {
            let e = std::io::Error::last_os_error();
            libc::close(fds[0]);
            libc::close(fds[1]);
            if saved >= 0 {
                libc::close(saved);
            }
            return Err(e).context("redirecting stderr");
        }
        libc::close(fds[1]);
        saved
    };
    SAVED_STDERR.store(saved, Ordering::SeqCst);
    // SAFETY: fds[0] is ours alone from here on.
    let reader = unsafe { File::from_raw_fd(fds[0]) };
    let kept: Arc<Mutex<Vec<String>>> = Arc::default();
    let k = kept.clone();
    let (done, drained) = bounded::<()>(0);
    std::thread::Builder::new()
        .name("stderr-log".into())
        .spawn(move || {
            // Ends at EOF: when stderr is restored, nobody writes the pipe.
            for l in BufReader::new(reader).lines().map_while(Result::ok) {
                if let Ok(mut v) = k.lock() {
                    if v.len() < CAPTURED_MAX {
                        v.push(l.clone());
                    }
                }
                line(l);
            }
            drop(done);
        })
        .context("starting the stderr reader")?;
    Ok(Captured {
        lines: kept,
        drained,
    })
}

/// The terminal in raw mode on the alternate screen; restored on drop and
/// by the panic hook it installs.
pub struct Screen {
    pub terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Screen {
    pub fn enter() -> Result<Screen> {
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // The message must reach the real terminal, after the screen
            // is given back.
            restore_stderr();
            restore_terminal();
            hook(info);
        }));
        ENTERED.store(true, Ordering::SeqCst);
        terminal::enable_raw_mode().context("switching the terminal to raw mode")?;
        let mut out = std::io::stdout();
        if let Err(e) = execute!(out, terminal::EnterAlternateScreen, cursor::Hide) {
            restore_terminal();
            return Err(e).context("entering the alternate screen");
        }
        let terminal = Terminal::new(CrosstermBackend::new(out)).map_err(|e| {
            restore_terminal();
            anyhow::Error::from(e).context("setting up the terminal")
        })?;
        Ok(Screen { terminal })
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore_stderr();
        restore_terminal();
    }
}
