//! `run`: one remote command, used like `ssh host cmd`.
//!
//! * The job is created, then its stdout and stderr are followed live, each
//!   into its own [`OutputSink`], and, if there is a stdin to forward, it is
//!   uploaded at the same time, all over the one connection of `conn`.
//! * The job's end ends `run`: once both streams are complete, `run` exits
//!   with the job's status whatever became of stdin (a job need not read it,
//!   and a terminal need never see EOF), as ssh does.
//! * A job that stops reading its stdin early is normal (`yes | rcmd … run
//!   head -1`): the rest of stdin is dropped without a word.
//! * When a sink's reader goes away (EPIPE), the job is stopped at once
//!   (deleted with `remove`) and `run` fails with
//!   [`ClientError::BrokenPipe`], which exits 141 without a message.
//! * Ctrl-C stops the remote job; a second one leaves at once.

use std::time::Duration;

use reqwest::{Method, StatusCode};

use super::JobRef;
use super::commands::{copy_stream, create, fetch_status, job_exit_code, out_of_memory};
use super::connection::Connection;
use super::error::ClientError;
use super::limits::LimitFlags;
use super::sink::{OutputSink, warn};
use super::stdin::LocalStdin;
use crate::jobs::Stream;
use crate::wire;

/// How long `run` waits for the server to confirm that it killed the job
/// after our reader went away. It is normally a few milliseconds.
const KILL_CONFIRM: Duration = Duration::from_secs(2);

/// One remote command to run.
pub(crate) struct RunRequest<'a> {
    pub cmd: &'a str,
    pub args: &'a [String],
    /// What to forward to the job's stdin; `None`: the job reads /dev/null.
    pub stdin: Option<LocalStdin>,
    /// Delete the job once it has ended.
    pub remove: bool,
    /// Its limits and isolation.
    pub limits: &'a LimitFlags,
}

/// The two sinks for a job's output, by [`Stream`].
pub(crate) struct Sinks<'a> {
    pub stdout: &'a mut dyn OutputSink,
    pub stderr: &'a mut dyn OutputSink,
}

/// Runs the command, streams its output into `sinks`, and returns the exit
/// status a shell would give it.
pub(crate) async fn run(
    conn: &Connection,
    request: RunRequest<'_>,
    sinks: Sinks<'_>,
) -> Result<i32, ClientError> {
    let id = create(conn, request.cmd, request.args, request.stdin.is_some(), request.limits).await?;
    let streams = async {
        tokio::try_join!(
            copy_stream(conn, &id, Stream::Stdout, true, sinks.stdout),
            copy_stream(conn, &id, Stream::Stderr, true, sinks.stderr)
        )
    };
    tokio::pin!(streams);
    let upload = async {
        match request.stdin {
            Some(stdin) => upload(conn, &id, stdin).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(upload);
    let mut uploading = true;
    let mut stopping = false;
    loop {
        tokio::select! {
            result = &mut streams => match result {
                Ok(_) => break,
                Err(ClientError::BrokenPipe) => {
                    kill(conn, &id, request.remove).await;
                    return Err(ClientError::BrokenPipe);
                }
                Err(e) => return Err(e),
            },
            failure = &mut upload, if uploading => {
                uploading = false;
                if let Err(message) = failure {
                    warn(message);
                }
            }
            _ = tokio::signal::ctrl_c() => {
                if stopping {
                    return Ok(130);
                }
                stopping = true;
                warn(format_args!("stopping job {id} (Ctrl-C again to leave it)"));
                let (conn, id) = (conn.clone(), id.clone());
                tokio::spawn(async move {
                    if let Err(e) = conn.call(Method::POST, &id.path("/stop"), None::<&()>, Some(&id)).await {
                        warn(format_args!("cannot stop job {id}: {e}"));
                    }
                });
            }
        }
    }
    let status = fetch_status(conn, &id, true).await?;
    super::commands::report_truncation(&status);
    if status.status == wire::State::Error {
        warn(status.error_msg.as_deref().unwrap_or("the command could not start"));
    }
    if let Some(note) = out_of_memory(&status) {
        warn(format!("job {id} ran {note}"));
    }
    if request.remove {
        conn.call(Method::DELETE, &id.path(""), None::<&()>, Some(&id)).await?;
    }
    Ok(job_exit_code(&status))
}

/// Our stdin did not all reach the job: a warning for the user, not a
/// failure of `run`.
#[derive(Debug, thiserror::Error)]
pub(super) enum StdinNotForwarded {
    #[error("stdin was not forwarded in full: {0}")]
    Send(ClientError),
    #[error("stdin was not forwarded in full ({status}): {detail}")]
    Refused { status: StatusCode, detail: String },
}

/// Forwards our stdin to the job's. `Err` is what did not reach the job. A
/// job that stopped reading is not one.
pub(super) async fn upload(
    conn: &Connection,
    id: &JobRef,
    stdin: LocalStdin,
) -> Result<(), StdinNotForwarded> {
    let response = conn
        .send_body(Method::PUT, &id.path("/stdin"), stdin.into_body())
        .await
        .map_err(StdinNotForwarded::Send)?;
    let status = response.status();
    let body = conn.read_answer(response).await.unwrap_or_default();
    match (status, serde_json::from_slice::<wire::StdinWritten>(&body)) {
        (StatusCode::OK, _) => Ok(()),
        // The job ended, or closed its stdin: what it did not read is
        // dropped, as a pipeline's would be.
        (StatusCode::CONFLICT, Ok(_)) => Ok(()),
        _ => {
            let error = serde_json::from_slice::<wire::Error>(&body).map(|e| e.error);
            let detail = error.unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
            Err(StdinNotForwarded::Refused { status, detail })
        }
    }
}

/// Our reader has gone: end the job now, and wait (briefly) until the server
/// says it has, so that nothing of it outlives `run`.
pub(super) async fn kill(conn: &Connection, id: &JobRef, remove: bool) {
    let (method, path) = match remove {
        true => (Method::DELETE, id.path("")),
        false => (Method::POST, id.path("/stop?grace=0")),
    };
    let _ = tokio::time::timeout(KILL_CONFIRM, conn.send(method, &path, None::<&()>)).await;
}
