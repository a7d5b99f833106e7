//! What a job is started with: the command, and how it is contained.
//!
//! The pool takes a [`JobSpec`] as it is. Deciding who may ask for what (a
//! policy, the server's ceilings) is the caller's business; the pool only
//! refuses what it cannot do.

use std::path::PathBuf;

/// Everything a job is started with.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobSpec {
    /// The program: a path, or a name looked up in `PATH`.
    pub command: String,
    pub args: Vec<String>,
    /// Give the job a pipe for stdin (otherwise it reads /dev/null).
    pub stdin: bool,
    /// Resource limits; every `None` is "no limit".
    pub limits: Limits,
    /// Run in new PID, mount and network namespaces.
    pub isolate: bool,
    /// The user to run as, in a clean environment. `None`: the server's own
    /// user and environment.
    pub run_as: Option<RunAs>,
}

impl JobSpec {
    /// A plain job: no stdin, no limits, the server's user.
    pub fn new(command: impl Into<String>, args: Vec<String>) -> Self {
        JobSpec { command: command.into(), args, ..JobSpec::default() }
    }
}

/// Per-job resource limits.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    /// Bytes of memory (no swap beyond it).
    pub memory: Option<u64>,
    /// CPUs, as a quota: 0.5 is half of one CPU's time.
    pub cpus: Option<f64>,
    /// The most processes (and threads) at once.
    pub pids: Option<u64>,
    /// Bytes per second read from the disk that holds the data directory.
    pub io_read_bps: Option<u64>,
    /// Bytes per second written to that disk.
    pub io_write_bps: Option<u64>,
}

/// A unix user resolved once, when the policy that names it is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub user: String,
    pub uid: u32,
    /// The primary group.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    pub home: PathBuf,
    pub shell: PathBuf,
}
