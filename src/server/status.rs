//! A job's status as the API shows it: the one mapping from the jobs
//! library's [`jobs::JobStatus`] to the wire's [`wire::JobStatus`], used by
//! every call that answers with a job.

use std::time::SystemTime;

use crate::jobs;
use crate::pki;
use crate::wire;

fn rfc3339(t: SystemTime) -> String {
    pki::format_time(t.into())
}

/// A job's status as the API shows it.
pub(crate) fn status_body(s: &jobs::JobStatus) -> wire::JobStatus {
    let (status, exit_code, signal, error_msg) = match s.status() {
        jobs::Status::Running => (wire::State::Running, None, None, None),
        jobs::Status::Error(message) => (wire::State::Error, None, None, Some(message)),
        jobs::Status::Completed(jobs::Termination::Exited(code)) => {
            (wire::State::Completed, Some(code), None, None)
        }
        jobs::Status::Completed(jobs::Termination::Signaled(sig)) => {
            (wire::State::Completed, None, Some(sig), None)
        }
    };
    wire::JobStatus {
        status,
        exit_code,
        error_msg,
        signal,
        id: s.id.0,
        cmd: s.command.clone(),
        args: s.args.clone(),
        pid: s.pid(),
        started_at: rfc3339(s.started_at),
        finished_at: s.finished_at().map(rfc3339),
        truncated: s.truncated,
        truncated_reason: s.truncated_reason.clone(),
        output_error: s.output_error.clone(),
        client: None,
        limits: s.limits,
        oom_killed: s.oom_killed(),
        usage: wire::Usage { cpu_ms: s.usage().cpu_ms, memory_peak: s.usage().memory_peak },
        lost: s.lost(),
    }
}
