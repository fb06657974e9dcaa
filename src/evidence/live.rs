//! A live capture for `report --pid/--name`: today this binary's own
//! capture subcommands as child processes (`rocksdb --json`, `net --json`,
//! `syscall --json`), their JSON Lines collected, so a live report is
//! byte-for-byte the same computation as `report --input`. `capture` is the
//! only entry point: a capture engine can replace it without touching the
//! report.

use std::io::{BufRead as _, BufReader};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context as _, Result};
use crossbeam_channel::{select, tick};

use crate::error::{Exit, Failure};

/// What to capture.
#[derive(Clone, Debug)]
pub struct Spec {
    pub pid: u32,
    /// None: until SIGINT/SIGTERM.
    pub duration: Option<Duration>,
    pub rocksdb: bool,
    pub net: bool,
    pub syscall: bool,
    /// `rocksdb --ops`.
    pub ops: Option<String>,
    /// `rocksdb --value-sizes`.
    pub value_sizes: bool,
}

struct Layer {
    name: &'static str,
    child: Child,
    reader: JoinHandle<Vec<String>>,
}

fn spawn(name: &'static str, spec: &Spec) -> Result<Layer> {
    let exe = std::env::current_exe().context("finding this program's own executable")?;
    let mut cmd = Command::new(exe);
    cmd.arg(name)
        .arg("--json")
        .arg("--pid")
        .arg(spec.pid.to_string());
    if let Some(d) = spec.duration {
        cmd.arg(format!("{}", d.as_secs_f64()));
    }
    if let (Some(ops), "rocksdb") = (&spec.ops, name) {
        cmd.arg("--ops").arg(ops);
    }
    if spec.value_sizes && name == "rocksdb" {
        cmd.arg("--value-sizes");
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        // Its own process group: a terminal's Ctrl-C reaches only us, and
        // we forward it once, after which each child reads its maps one
        // last time, detaches and prints its final line.
        .process_group(0);
    // SAFETY: prctl is async-signal-safe; nothing else runs in the child
    // between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            // If we die (even by SIGKILL) the children stop too, so no
            // probe outlives the report that wanted it.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting the {name} capture"))?;
    let out = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("the {name} capture has no stdout"))?;
    let reader = std::thread::spawn(move || {
        BufReader::new(out)
            .lines()
            .map_while(std::result::Result::ok)
            .collect()
    });
    Ok(Layer {
        name,
        child,
        reader,
    })
}

/// SIGINT to each layer not yet reaped (`done[i]` false): a reaped PID
/// may already name another process.
fn interrupt(layers: &[Layer], done: &[bool]) {
    for (l, _) in layers.iter().zip(done).filter(|(_, d)| !**d) {
        // SAFETY: kill() on a child we spawned and have not reaped.
        unsafe { libc::kill(l.child.id() as i32, libc::SIGINT) };
    }
}

fn done(status: &[Option<std::process::ExitStatus>]) -> Vec<bool> {
    status.iter().map(Option::is_some).collect()
}

/// Runs the capture; returns every JSON line the layers printed. SIGINT,
/// SIGTERM and SIGHUP are forwarded as SIGINT, so the capture ends early
/// with complete final reports. A layer that fails stops the others and
/// its exit code (2 usage, 3 environment) becomes ours.
pub fn capture(spec: &Spec) -> Result<Vec<String>> {
    let signals = crate::engine::signals()?;
    let mut layers = Vec::new();
    for (on, name) in [
        (spec.rocksdb, "rocksdb"),
        (spec.net, "net"),
        (spec.syscall, "syscall"),
    ] {
        if on {
            match spawn(name, spec) {
                Ok(l) => layers.push(l),
                Err(e) => {
                    interrupt(&layers, &vec![false; layers.len()]);
                    // Their final read and detach, before we report.
                    for l in &mut layers {
                        let _ = l.child.wait();
                    }
                    return Err(e);
                }
            }
        }
    }
    let ticker = tick(Duration::from_millis(100));
    let mut status: Vec<Option<std::process::ExitStatus>> = vec![None; layers.len()];
    let mut stopping = false;
    while status.iter().any(Option::is_none) {
        select! {
            recv(signals) -> _ => {
                stopping = true;
                interrupt(&layers, &done(&status));
            }
            recv(ticker) -> _ => {}
        }
        let mut failed = false;
        for (i, l) in layers.iter_mut().enumerate() {
            if status[i].is_none() {
                status[i] = l
                    .child
                    .try_wait()
                    .with_context(|| format!("waiting for the {} capture", l.name))?;
                failed |= status[i].is_some_and(|s| !s.success());
            }
        }
        if failed && !stopping {
            // One layer failed: the report cannot be made; stop the others
            // now rather than at their deadline.
            stopping = true;
            interrupt(&layers, &done(&status));
        }
    }
    let mut lines = Vec::new();
    let mut failed: Option<(&str, i32)> = None;
    for (l, st) in layers.into_iter().zip(status) {
        let out = l.reader.join().unwrap_or_default();
        let code = st.and_then(|s| s.code()).unwrap_or(1);
        if code != 0 && failed.is_none() {
            failed = Some((l.name, code));
        }
        lines.extend(out);
    }
    if let Some((name, code)) = failed {
        let exit = match code {
            2 => Exit::Usage,
            3 => Exit::Environment,
            _ => Exit::Runtime,
        };
        return Err(Failure::new(
            exit,
            format!("the {name} capture failed (exit {code}); its message is above"),
        )
        .into());
    }
    Ok(lines)
}
