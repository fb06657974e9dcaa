//! Exit codes and user-facing failures. Inside the program errors are
//! `anyhow` chains; a `Failure` anywhere in the chain decides the exit code
//! and may carry a one-line remedy. `main` prints cause and remedy, never a
//! backtrace.

use std::fmt;

/// Documented exit codes (README, `--help`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Capture finished, or was interrupted by SIGINT/SIGTERM.
    Ok = 0,
    /// Runtime error, or the traced process went away.
    Runtime = 1,
    /// Bad arguments: unknown PID, not an ELF file, no RocksDB symbols...
    Usage = 2,
    /// The environment cannot run it: not root, no BPF, no BTF, old kernel.
    Environment = 3,
}

#[derive(Debug)]
pub struct Failure {
    pub code: Exit,
    pub message: String,
    pub remedy: Option<String>,
}

impl Failure {
    pub fn new(code: Exit, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
            remedy: None,
        }
    }
    pub fn hint(mut self, remedy: impl Into<String>) -> Failure {
        self.remedy = Some(remedy.into());
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// The exit code an error maps to: the first `Failure` in its chain decides,
/// a permission error from the kernel means the environment, anything else
/// is a runtime error.
pub fn exit_code(err: &anyhow::Error) -> Exit {
    if let Some(f) = err.chain().find_map(|e| e.downcast_ref::<Failure>()) {
        return f.code;
    }
    Exit::Runtime
}

/// The remedy attached to an error, if any.
pub fn remedy(err: &anyhow::Error) -> Option<&str> {
    err.chain()
        .find_map(|e| e.downcast_ref::<Failure>())
        .and_then(|f| f.remedy.as_deref())
}

/// A status line for the operator, on stderr so stdout stays data.
pub fn note(msg: impl AsRef<str>) {
    eprintln!("ckb-libbpf: {}", msg.as_ref());
}
