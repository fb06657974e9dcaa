//! The terminal while the overview owns it: raw mode and the alternate
//! screen, given back on every way out (drop, panic). The capture's own
//! notes go to stderr, which is the same terminal: while the screen is
//! up, stderr is a pipe whose lines become event-log entries, and the
//! real stderr comes back before anything else is printed.

use std::fs::File;
use std::io::{BufRead, BufReader, Stdout};
use std::os::fd::FromRawFd;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
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

/// Leaves raw mode and the alternate screen, shows the cursor.
fn restore_terminal() {
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
pub type Captured = Arc<Mutex<Vec<String>>>;
const CAPTURED_MAX: usize = 200;

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
    let kept: Captured = Arc::default();
    let k = kept.clone();
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
        })
        .context("starting the stderr reader")?;
    Ok(kept)
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
