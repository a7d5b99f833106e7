//! The values the pool hands out about a job, and the states of its life.
//!
//! A job's life is a [`JobState`], and each state carries exactly what is
//! known in it: a running job has a pid but no end; a job that could not
//! start has a message but no pid, no usage and no termination; a lost one
//! has no termination. So no state can claim two things at once (a "lost"
//! job that completed, a finished job still running). The state is what an
//! upgrade in place hands over, so it serialises (serde).
//!
//! [`Status`] is the seed's three-way summary of a state, which the HTTP
//! API shows.

use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::{Limits, ResourceUsage};

/// The message of a job whose server stopped while it ran.
pub const LOST_MESSAGE: &str =
    "lost: the server stopped while the job was running; its output is kept as far as it got";

/// A job's id, unique within its pool, counting from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub u64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// How a finished job's main process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Termination {
    /// It exited with this code.
    Exited(i32),
    /// It was ended by this signal number.
    Signaled(i32),
}

/// Where a job is in its life.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum JobState {
    /// Recorded, its process not started yet: seen only in the records, in
    /// the moment before its start is recorded.
    Starting,
    /// Its main process runs, or has exited and its output is still being
    /// drained.
    Running {
        pid: u32,
        /// What the kernel counted so far, where it counts.
        #[serde(with = "UsageDef")]
        usage: ResourceUsage,
    },
    /// Over, for good.
    Done { finished_at: SystemTime, end: End },
}

/// How a job that is over ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "end", rename_all = "snake_case")]
pub enum End {
    /// Its process could not be started; the message says why.
    Failed { message: String },
    /// Its main process ended, and its output is complete. `pid` is `None`
    /// only in a record whose start could not be written (a full disk) and
    /// was recorded once it ended.
    Completed {
        pid: Option<u32>,
        termination: Termination,
        #[serde(with = "UsageDef")]
        usage: ResourceUsage,
        /// The kernel's OOM killer ended a process of the job (inside its
        /// memory limit).
        oom_killed: bool,
    },
    /// Its server stopped while it ran: it was killed by the shutdown, or
    /// found unfinished by the next server. Its output is kept as far as it
    /// got. `pid` is `None` for one lost before its process started.
    Lost {
        pid: Option<u32>,
        #[serde(with = "UsageDef")]
        usage: ResourceUsage,
        oom_killed: bool,
    },
}

/// [`ResourceUsage`] as serde sees it.
#[derive(Serialize, Deserialize)]
#[serde(remote = "ResourceUsage")]
struct UsageDef {
    cpu_ms: Option<u64>,
    memory_peak: Option<u64>,
}

impl JobState {
    /// The seed's summary: a lost job is an error whose message starts with
    /// `lost:`.
    pub fn status(&self) -> Status {
        match self {
            JobState::Starting | JobState::Running { .. } => Status::Running,
            JobState::Done { end: End::Failed { message }, .. } => Status::Error(message.clone()),
            JobState::Done { end: End::Completed { termination, .. }, .. } => Status::Completed(*termination),
            JobState::Done { end: End::Lost { .. }, .. } => Status::Error(LOST_MESSAGE.to_owned()),
        }
    }

    /// The main process's pid; `None` if it never started.
    pub fn pid(&self) -> Option<u32> {
        match self {
            JobState::Running { pid, .. } => Some(*pid),
            JobState::Done { end: End::Completed { pid, .. } | End::Lost { pid, .. }, .. } => *pid,
            JobState::Starting | JobState::Done { end: End::Failed { .. }, .. } => None,
        }
    }

    pub fn finished_at(&self) -> Option<SystemTime> {
        match self {
            JobState::Done { finished_at, .. } => Some(*finished_at),
            JobState::Starting | JobState::Running { .. } => None,
        }
    }

    /// What the kernel counted (so far, while it runs), where it counts.
    pub fn usage(&self) -> ResourceUsage {
        match self {
            JobState::Running { usage, .. }
            | JobState::Done { end: End::Completed { usage, .. } | End::Lost { usage, .. }, .. } => *usage,
            JobState::Starting | JobState::Done { end: End::Failed { .. }, .. } => ResourceUsage::default(),
        }
    }

    /// The kernel's OOM killer ended a process of the job.
    pub fn oom_killed(&self) -> bool {
        matches!(
            self,
            JobState::Done {
                end: End::Completed { oom_killed: true, .. } | End::Lost { oom_killed: true, .. },
                ..
            }
        )
    }

    /// The job was running when its server stopped.
    pub fn lost(&self) -> bool {
        matches!(self, JobState::Done { end: End::Lost { .. }, .. })
    }
}

/// The seed's summary of a job's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// The process runs, or has exited and its output is still being drained.
    Running,
    /// The process could not be started, or was lost; the message says why.
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
    pub started_at: SystemTime,
    /// The limits in force.
    pub limits: Limits,
    pub state: JobState,
    /// Output past a cap was dropped, or could not be stored.
    pub truncated: bool,
    /// Why, for people (see [`Truncation`](super::Truncation)).
    pub truncated_reason: Option<String>,
    /// Why output could not be stored (for example, a full disk).
    pub output_error: Option<String>,
}

impl JobStatus {
    /// Bytes of its command and arguments: what listing it costs.
    pub fn command_line_len(&self) -> usize {
        self.command.len() + self.args.iter().map(String::len).sum::<usize>()
    }

    /// See [`JobState::status`].
    pub fn status(&self) -> Status {
        self.state.status()
    }

    pub fn pid(&self) -> Option<u32> {
        self.state.pid()
    }

    pub fn finished_at(&self) -> Option<SystemTime> {
        self.state.finished_at()
    }

    pub fn usage(&self) -> ResourceUsage {
        self.state.usage()
    }

    pub fn oom_killed(&self) -> bool {
        self.state.oom_killed()
    }

    pub fn lost(&self) -> bool {
        self.state.lost()
    }
}

/// A job's complete stored output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub truncated: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_survives_serialisation() {
        let states = [
            JobState::Starting,
            JobState::Running { pid: 7, usage: ResourceUsage { cpu_ms: Some(3), memory_peak: None } },
            JobState::Done {
                finished_at: SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1234),
                end: End::Completed {
                    pid: Some(7),
                    termination: Termination::Signaled(9),
                    usage: ResourceUsage { cpu_ms: Some(5), memory_peak: Some(1 << 20) },
                    oom_killed: true,
                },
            },
            JobState::Done { finished_at: SystemTime::UNIX_EPOCH, end: End::Failed { message: "no".into() } },
            JobState::Done {
                finished_at: SystemTime::UNIX_EPOCH,
                end: End::Lost { pid: None, usage: ResourceUsage::default(), oom_killed: false },
            },
        ];
        for state in states {
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(serde_json::from_str::<JobState>(&json).unwrap(), state, "{json}");
        }
    }

    #[test]
    fn a_lost_job_is_an_error_that_says_lost() {
        let lost = JobState::Done {
            finished_at: SystemTime::UNIX_EPOCH,
            end: End::Lost { pid: Some(3), usage: ResourceUsage::default(), oom_killed: false },
        };
        assert!(matches!(lost.status(), Status::Error(m) if m.starts_with("lost:")));
        assert!(lost.lost());
        assert_eq!(lost.pid(), Some(3));
    }
}
