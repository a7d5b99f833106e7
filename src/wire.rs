//! The JSON bodies of the HTTP API, defined once for server and client.
//!
//! The seed's shapes are fixed: `{"cmd", "args"}` in, `{"id"}` out,
//! `{"status", "exit_code" | "error_msg"}`, `{"stdout", "stderr"}` and
//! `{"error"}`. Everything else here is an added field or an added call.
//!
//! A job's `limits` are [`Limits`], shared with the jobs library: in JSON
//! each is a plain number, and one that is no limit (zero CPUs, say) is not
//! read at all. Apart from [`crate::limits`], this module imports nothing
//! of the crate.

use serde::{Deserialize, Serialize};

pub use crate::limits::Limits;

/// `PUT /jobs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateJob {
    pub cmd: String,
    #[serde(default)]
    pub args: Vec<String>,
    /// Give the job a stdin pipe, written with `PUT /jobs/{id}/stdin`;
    /// otherwise it reads /dev/null.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stdin: bool,
    /// Resource limits asked for; the server's defaults fill in the rest.
    #[serde(default, skip_serializing_if = "Limits::is_empty")]
    pub limits: Limits,
    /// Run in new PID, mount and network namespaces.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub isolate: bool,
}

/// What the kernel counted for a job; each only where the host counts it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// CPU time, user and system, of all the job's processes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_ms: Option<u64>,
    /// The most memory the job used at once, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_peak: Option<u64>,
}

impl Usage {
    pub fn is_empty(&self) -> bool {
        *self == Usage::default()
    }
}

/// The answer to `PUT /jobs`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Created {
    pub id: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Running,
    Completed,
    Error,
}

/// `GET /jobs/{id}/status`, and each entry of `GET /jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStatus {
    pub status: State,
    /// For a completed job that exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// For a job in the error state: why it could not start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_msg: Option<String>,
    /// For a completed job that a signal ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    #[serde(default)]
    pub id: u64,
    #[serde(default)]
    pub cmd: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// RFC 3339, UTC.
    #[serde(default)]
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Output was dropped: past the server's cap, or not storable.
    #[serde(default)]
    pub truncated: bool,
    /// Why output was dropped, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_error: Option<String>,
    /// The job's client: only in an admin's `GET /jobs?all=true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The limits in force (none: no limit).
    #[serde(default, skip_serializing_if = "Limits::is_empty")]
    pub limits: Limits,
    /// The kernel's OOM killer ended a process of the job, inside its
    /// memory limit.
    #[serde(default)]
    pub oom_killed: bool,
    #[serde(default, skip_serializing_if = "Usage::is_empty")]
    pub usage: Usage,
    /// The job was running when its server stopped (status `error`, with an
    /// `error_msg` that starts with `lost:`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lost: bool,
}

impl JobStatus {
    /// The exit status a shell would give: the code, or 128 + the signal.
    ///
    /// ```
    /// let status: rcmd::wire::JobStatus =
    ///     serde_json::from_str(r#"{"status": "completed", "signal": 15}"#).unwrap();
    /// assert_eq!(status.shell_exit_code(), Some(143));
    /// let status: rcmd::wire::JobStatus = serde_json::from_str(r#"{"status": "running"}"#).unwrap();
    /// assert_eq!(status.shell_exit_code(), None);
    /// ```
    pub fn shell_exit_code(&self) -> Option<i32> {
        match (self.exit_code, self.signal) {
            (Some(code), _) => Some(code),
            (None, Some(signal)) => Some(128 + signal),
            _ => None,
        }
    }
}

/// `GET /jobs?limit=N&after=ID`: one page of jobs, ids ascending; or an
/// admin's `GET /jobs?all=true&limit=N&after=CN/ID`: one page of every
/// client's jobs, by client name (in byte order) and then id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobList {
    pub jobs: Vec<JobStatus>,
    /// There is more: ask again with `after` set to this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<After>,
}

/// Where a page of jobs ended: the last job on it, as the next request's
/// `after` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum After {
    /// The id of one of the caller's own jobs.
    Id(u64),
    /// `CN/ID`, in an admin's listing of every client's jobs.
    Job(String),
}

impl std::fmt::Display for After {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            After::Id(id) => write!(f, "{id}"),
            After::Job(job) => f.write_str(job),
        }
    }
}

impl JobStatus {
    /// Why some of the job's output is not there, if some is not: the one
    /// line `run`, `output` and `logs` print on stderr.
    pub fn truncation_notice(&self) -> Option<String> {
        if !self.truncated {
            return None;
        }
        let why = match (&self.truncated_reason, &self.output_error) {
            (Some(reason), Some(error)) => format!("{reason} ({error})"),
            (Some(reason), None) => reason.clone(),
            (None, Some(error)) => error.clone(),
            (None, None) => "some of it was dropped".to_owned(),
        };
        Some(format!("output truncated: {why}"))
    }
}

/// `GET /jobs/{id}/output`: text only (invalid UTF-8 is replaced); the raw
/// calls `/output/stdout` and `/output/stderr` carry bytes as they are.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    #[serde(default)]
    pub truncated: bool,
}

/// The answer to `PUT /jobs/{id}/stdin`: the bytes the job's stdin pipe
/// accepted. 200 when the whole body was written and stdin closed; 409 with
/// `error` when the job stopped taking it first (it exited, was stopped, or
/// closed its stdin).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StdinWritten {
    pub written: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Every error body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Error {
    pub error: String,
}

/// The name of a signal number, for people.
pub fn signal_name(signal: i32) -> &'static str {
    nix::sys::signal::Signal::try_from(signal).map(|s| s.as_str()).unwrap_or("unknown signal")
}
