//! Attaching uprobe/uretprobe pairs, for every uprobe layer (RocksDB C API,
//! RocksDB internals, the probe-cost calibration): one place that knows the
//! two link kinds and the fallback from one to the other.

use std::mem::MaybeUninit;
use std::path::Path;

use anyhow::Result;
use libbpf_rs::{Link, OpenObject, ProgramMut, UprobeMultiOpts, UprobeOpts};

use super::bpf_failure;
use crate::error::{Exit, Failure};

/// How probes are attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// One uprobe_multi link per file and direction (Linux 6.6+): one RCU
    /// grace period to detach them all.
    Multi,
    /// One perf-event uprobe per function and direction.
    Single,
}

impl Backend {
    /// The names `--backend` takes and `check` prints.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Multi => "uprobe_multi",
            Backend::Single => "uprobe",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Backend::Multi => "uprobe_multi links",
            Backend::Single => "one link per probe",
        }
    }

    /// Parses `--backend` of the uprobe layers: `auto` (None), `uprobe_multi`
    /// or `uprobe`.
    pub fn parse(s: &str) -> std::result::Result<Option<Backend>, String> {
        match s {
            "auto" => Ok(None),
            "uprobe_multi" | "multi" => Ok(Some(Backend::Multi)),
            "uprobe" | "single" => Ok(Some(Backend::Single)),
            other => Err(format!(
                "`{other}` is not a uprobe backend (auto, uprobe_multi, uprobe)"
            )),
        }
    }

    /// The best backend the kernel offers, from the feature probes.
    pub fn pick(multi_ok: bool, single_ok: bool) -> Option<Backend> {
        if multi_ok {
            Some(Backend::Multi)
        } else if single_ok {
            Some(Backend::Single)
        } else {
            None
        }
    }

    /// The backend a capture tries first: `forced`, else what `check`
    /// reports for the rocksdb layer (uprobe_multi when its feature probe
    /// attaches and fires here).
    pub fn choose(forced: Option<Backend>) -> Backend {
        forced.unwrap_or_else(|| {
            let multi = super::features::probe(super::features::Attach::UprobeMulti).ok;
            Backend::pick(multi, true).unwrap_or(Backend::Single)
        })
    }

    /// The backend forced by the command line, else by the environment:
    /// `CKB_LIBBPF_BACKEND=single|multi` does for scripts and tests what
    /// `--backend` does for one invocation (and reaches the calibration).
    pub fn forced(flag: Option<Backend>) -> Option<Backend> {
        flag.or_else(|| match std::env::var("CKB_LIBBPF_BACKEND").as_deref() {
            Ok("single") | Ok("uprobe") => Some(Backend::Single),
            Ok("multi") | Ok("uprobe_multi") => Some(Backend::Multi),
            _ => None,
        })
    }
}

/// One function to probe: where, and the cookie both programs receive.
#[derive(Clone, Copy, Debug)]
pub struct Site<'a> {
    /// The path the kernel resolves (e.g. /proc/PID/exe).
    pub path: &'a Path,
    /// The path to name in messages.
    pub display: &'a Path,
    /// File offset of the function's first instruction.
    pub offset: u64,
    pub cookie: u64,
    /// The function, for messages.
    pub name: &'a str,
}

/// Entry and return programs of one backend.
pub struct Pair<'a, 'obj> {
    pub enter: &'a ProgramMut<'obj>,
    pub exit: &'a ProgramMut<'obj>,
}

/// Attaches `pair` to every site: an entry and a return probe each. With
/// `Multi`, one link per file and direction. The links detach when dropped;
/// the kernel also releases them if we are killed (they live in our file
/// descriptors).
pub fn attach(pair: Pair<'_, '_>, sites: &[Site<'_>], backend: Backend) -> Result<Vec<Link>> {
    let mut links = Vec::new();
    match backend {
        Backend::Multi => {
            let mut files: Vec<&Path> = Vec::new();
            for s in sites {
                if !files.contains(&s.path) {
                    files.push(s.path);
                }
            }
            for file in files {
                let here: Vec<&Site> = sites.iter().filter(|s| s.path == file).collect();
                for (prog, retprobe) in [(pair.enter, false), (pair.exit, true)] {
                    let opts = UprobeMultiOpts {
                        offsets: here.iter().map(|s| s.offset as usize).collect(),
                        cookies: here.iter().map(|s| s.cookie).collect(),
                        retprobe,
                        ..Default::default()
                    };
                    let link = prog
                        .attach_uprobe_multi_with_opts(-1, file, "", opts)
                        .map_err(|e| {
                            bpf_failure(
                                format!(
                                    "attaching {} uprobes (multi) to {}",
                                    here.len(),
                                    here[0].display.display()
                                ),
                                e,
                            )
                        })?;
                    links.push(link);
                }
            }
        }
        Backend::Single => {
            for s in sites {
                for (prog, retprobe) in [(pair.enter, false), (pair.exit, true)] {
                    let opts = UprobeOpts {
                        cookie: s.cookie,
                        retprobe,
                        ..Default::default()
                    };
                    let link = prog
                        .attach_uprobe_with_opts(-1, s.path, s.offset as usize, opts)
                        .map_err(|e| {
                            bpf_failure(
                                format!(
                                    "attaching {} to {} in {}",
                                    if retprobe { "uretprobe" } else { "uprobe" },
                                    s.name,
                                    s.display.display()
                                ),
                                e,
                            )
                        })?;
                    links.push(link);
                }
            }
        }
    }
    Ok(links)
}

/// Loads and attaches with the backend `Backend::choose` picks; if that was
/// uprobe_multi and it fails on this target anyway, with one uprobe per
/// function. A `forced` backend gets no fallback. `f` loads a skeleton into
/// the storage it is given and attaches it; each attempt gets storage of its
/// own. Returns what `f` returned, the backend, and why uprobe_multi was not
/// used when it was tried and failed.
pub fn load_attach<'obj, T>(
    storage: [&'obj mut MaybeUninit<OpenObject>; 2],
    forced: Option<Backend>,
    mut f: impl FnMut(&'obj mut MaybeUninit<OpenObject>, Backend) -> Result<T>,
) -> Result<(T, Backend, Option<anyhow::Error>)> {
    let [multi, single] = storage;
    match (Backend::choose(forced), forced) {
        (Backend::Single, _) => f(single, Backend::Single).map(|t| (t, Backend::Single, None)),
        (Backend::Multi, Some(_)) => f(multi, Backend::Multi).map(|t| (t, Backend::Multi, None)),
        (Backend::Multi, None) => match f(multi, Backend::Multi) {
            Ok(t) => Ok((t, Backend::Multi, None)),
            Err(why) => f(single, Backend::Single).map(|t| (t, Backend::Single, Some(why))),
        },
    }
}

/// The error for a `--backend` value the kernel cannot attach.
pub fn unavailable(b: Backend, e: anyhow::Error) -> anyhow::Error {
    e.context(
        Failure::new(
            Exit::Environment,
            format!("the {} backend does not work on this kernel", b.name()),
        )
        .hint("drop --backend (auto picks what works) or run `ckb-libbpf check`"),
    )
}
