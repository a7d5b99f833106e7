//! The values the pool hands out about a job.

use std::fmt;
use std::time::SystemTime;

use super::{Limits, ResourceUsage};

/// A job's id, unique within its pool, counting from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub u64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// How a finished job's main process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    /// It exited with this code.
    Exited(i32),
    /// It was ended by this signal number.
    Signaled(i32),
}

/// The state of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// The process runs, or has exited and its output is still being drained.
    Running,
    /// The process could not be started; the message says why.
    Error(String),
    /// The process has ended and its output is complete.
    Completed(Termination),
}

/// A snapshot of everything the pool knows about one job.
#[derive(Debug, Clone)]
pub struct JobStatus {
    pub id: JobId,
    pub command: String,
    pub args: Vec<String>,
    pub status: Status,
    /// The main process's pid; `None` if it never started.
    pub pid: Option<u32>,
    pub started_at: SystemTime,
    pub finished_at: Option<SystemTime>,
    /// Output past a cap was dropped, or could not be stored.
    pub truncated: bool,
    /// Why, for people (see [`Truncation`](super::Truncation)).
    pub truncated_reason: Option<String>,
    /// Why output could not be stored (for example, a full disk).
    pub output_error: Option<String>,
    /// The limits in force.
    pub limits: Limits,
    /// The kernel's OOM killer ended a process of the job (inside its
    /// memory limit).
    pub oom_killed: bool,
    /// What the kernel counted (so far, while it runs), where it counts.
    pub usage: ResourceUsage,
    /// The job was running when its server stopped; its status is an error
    /// whose message starts with `lost:`.
    pub lost: bool,
}

impl JobStatus {
    /// Bytes of its command and arguments: what listing it costs.
    pub fn command_line_len(&self) -> usize {
        self.command.len() + self.args.iter().map(String::len).sum::<usize>()
    }
}

/// A job's complete stored output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub truncated: bool,
}
