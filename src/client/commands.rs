//! The client's commands: each sends its requests and prints the answer.

use std::io::Write;
use std::time::Duration;

use reqwest::Method;

use super::connection::Connection;
use super::error::{ClientError, exit};
use super::limits::LimitFlags;
use super::sink::{OutputSink, Unbuffered, print_line};
use super::{JobRef, job_ref};
use crate::jobs::Stream;
use crate::wire;

/// How often a dropped stream is resumed before giving up, in a row: with
/// the backoff below, about three seconds for a server that is gone.
const MAX_RESUMES: u32 = 5;

/// Where a command's answer goes: for people, or JSON for scripts.
#[derive(Debug, Clone, Copy)]
pub enum Format {
    Human,
    Json,
}

fn print_json(value: &impl serde::Serialize) -> Result<(), ClientError> {
    print_line(serde_json::to_string(value).expect("wire types serialise"))
}

/// The status line the CLI prints; it says when output was dropped.
pub fn describe(status: &wire::JobStatus) -> String {
    let line = match out_of_memory(status) {
        Some(note) => format!("{}, {note}", describe_state(status)),
        None => describe_state(status),
    };
    if status.truncated { format!("{line} (output truncated)") } else { line }
}

/// "out of memory (limit 64 MiB)" for a job the OOM killer ended.
pub(super) fn out_of_memory(status: &wire::JobStatus) -> Option<String> {
    status.oom_killed.then(|| match status.limits.memory {
        Some(limit) => format!("out of memory (limit {limit})"),
        None => "out of memory".to_owned(),
    })
}

fn describe_state(status: &wire::JobStatus) -> String {
    match status.status {
        wire::State::Running => "Running".to_owned(),
        wire::State::Error => format!("Error: {}", status.error_msg.as_deref().unwrap_or("unknown")),
        wire::State::Completed => match (status.exit_code, status.signal) {
            (Some(code), _) => format!("Completed, exit status: {code}"),
            (None, Some(signal)) => {
                format!("Completed, killed by signal: {signal} ({})", wire::signal_name(signal))
            }
            (None, None) => "Completed".to_owned(),
        },
    }
}

fn print_status(status: &wire::JobStatus, format: Format) -> Result<(), ClientError> {
    match format {
        Format::Human => print_line(describe(status)),
        Format::Json => print_json(status),
    }
}

/// The exit status of `run` and `wait`: the job's own, as a shell gives it.
pub(super) fn job_exit_code(status: &wire::JobStatus) -> i32 {
    match status.status {
        wire::State::Error => exit::CANNOT_START,
        _ => status.shell_exit_code().unwrap_or(exit::REFUSED),
    }
}

pub(super) async fn create(
    conn: &Connection,
    cmd: &str,
    args: &[String],
    stdin: bool,
    flags: &LimitFlags,
) -> Result<JobRef, ClientError> {
    let body = wire::CreateJob {
        cmd: cmd.to_owned(),
        args: args.to_vec(),
        stdin,
        limits: flags.limits(),
        isolate: flags.isolate,
    };
    let response = conn.call(Method::PUT, "/jobs", Some(&body), None).await?;
    let created: wire::Created = conn.json(response).await?;
    Ok(JobRef { client: None, id: created.id })
}

pub(super) async fn fetch_status(
    conn: &Connection,
    id: &JobRef,
    wait: bool,
) -> Result<wire::JobStatus, ClientError> {
    let path = id.path(if wait { "/status?wait=true" } else { "/status" });
    let mut failures = 0;
    loop {
        let attempt = async {
            let response = conn.call(Method::GET, &path, None::<&()>, Some(id)).await?;
            conn.json::<wire::JobStatus>(response).await
        };
        match attempt.await {
            Err(e) if wait && is_resumable(&e) && failures < MAX_RESUMES => {
                failures += 1;
                backoff(failures).await;
            }
            other => return other,
        }
    }
}

pub async fn exec(
    conn: &Connection,
    cmd: &str,
    args: &[String],
    flags: &LimitFlags,
    format: Format,
) -> Result<i32, ClientError> {
    let job = create(conn, cmd, args, false, flags).await?;
    match format {
        Format::Human => print_line(&job)?,
        Format::Json => print_json(&wire::Created { id: job.id })?,
    }
    Ok(0)
}

pub async fn status(conn: &Connection, id: &JobRef, format: Format) -> Result<i32, ClientError> {
    print_status(&fetch_status(conn, id, false).await?, format)?;
    Ok(0)
}

pub async fn wait(conn: &Connection, id: &JobRef, format: Format) -> Result<i32, ClientError> {
    let status = fetch_status(conn, id, true).await?;
    print_status(&status, format)?;
    Ok(job_exit_code(&status))
}

pub async fn stop(conn: &Connection, id: &JobRef, format: Format) -> Result<i32, ClientError> {
    print_status(&stop_job(conn, id).await?, format)?;
    Ok(0)
}

/// Stops a job; returns its status after.
pub(super) async fn stop_job(conn: &Connection, id: &JobRef) -> Result<wire::JobStatus, ClientError> {
    let response = conn.call(Method::POST, &id.path("/stop"), None::<&()>, Some(id)).await?;
    conn.json(response).await
}

pub async fn delete(conn: &Connection, id: &JobRef) -> Result<i32, ClientError> {
    conn.call(Method::DELETE, &id.path(""), None::<&()>, Some(id)).await?;
    Ok(0)
}

/// Lists every job (`all`: every client's, for admins), following the
/// server's pages; each page is printed as it comes, so neither end holds
/// the whole list. JSON is one `{"jobs": [...]}` object, written a page at a
/// time.
pub async fn list(conn: &Connection, all: bool, format: Format) -> Result<i32, ClientError> {
    let mut out = std::io::stdout().lock();
    match format {
        Format::Human => writeln!(out, "{}", list_header(all)),
        Format::Json => write!(out, "{{\"jobs\":["),
    }
    .map_err(ClientError::write)?;
    let mut first = true;
    list_pages(conn, all, |jobs| {
        print_jobs(&mut out, jobs, all, format, &mut first).map_err(ClientError::write)
    })
    .await?;
    if let Format::Json = format {
        writeln!(out, "]}}").map_err(ClientError::write)?;
    }
    Ok(0)
}

/// Fetches every job (`all`: every client's) a page at a time, handing each
/// page to `each` as it comes.
///
/// A page is one answer, read whole and so capped. The server keeps a
/// page's command lines to about 1 MiB, but JSON escapes can make that
/// several times as much: a page over the cap is asked for again in pages
/// half as large, down to one job.
pub(super) async fn list_pages(
    conn: &Connection,
    all: bool,
    mut each: impl FnMut(&[wire::JobStatus]) -> Result<(), ClientError>,
) -> Result<(), ClientError> {
    let mut after: Option<JobRef> = None;
    let mut limit: Option<usize> = None;
    loop {
        let all_param = all.then(|| "all=true".to_owned());
        let after_param =
            after.as_ref().map(|after| format!("after={}", job_ref::encode_segment(&after.to_string())));
        let limit_param = limit.map(|limit| format!("limit={limit}"));
        let query: Vec<String> = all_param.into_iter().chain(after_param).chain(limit_param).collect();
        let path = format!("/jobs?{}", query.join("&"));
        let response = conn.call(Method::GET, &path, None::<&()>, None).await?;
        let page: wire::JobList = match conn.json(response).await {
            Err(ClientError::TooLarge { .. }) if limit != Some(1) => {
                limit = Some(limit.unwrap_or(crate::jobs::DEFAULT_PAGE) / 2).map(|half| half.max(1));
                continue;
            }
            page => page?,
        };
        each(&page.jobs)?;
        // Only onwards: a server that sent us back would list forever.
        match page.next.as_ref().and_then(JobRef::of_page_end) {
            Some(next) if after.as_ref().is_none_or(|after| &next > after) => after = Some(next),
            _ => return Ok(()),
        }
    }
}

fn print_jobs(
    out: &mut impl Write,
    jobs: &[wire::JobStatus],
    all: bool,
    format: Format,
    first: &mut bool,
) -> std::io::Result<()> {
    for job in jobs {
        match format {
            Format::Json => {
                if !std::mem::take(first) {
                    out.write_all(b",")?;
                }
                serde_json::to_writer(&mut *out, job)?;
            }
            Format::Human => writeln!(out, "{}", list_line(job, all))?,
        }
    }
    Ok(())
}

/// With --all, a job is named as the other commands take it: CN/ID.
fn id_width(all: bool) -> usize {
    if all { 24 } else { 6 }
}

/// The header of `list`'s table.
pub(super) fn list_header(all: bool) -> String {
    let width = id_width(all);
    format!("{:>width$}  {:<40}  {:<20}  COMMAND", "ID", "STATUS", "STARTED")
}

/// One job's line in `list`'s table.
pub(super) fn list_line(job: &wire::JobStatus, all: bool) -> String {
    let width = id_width(all);
    let command = std::iter::once(job.cmd.as_str()).chain(job.args.iter().map(String::as_str));
    let name = match &job.client {
        Some(client) => format!("{client}/{}", job.id),
        None => job.id.to_string(),
    };
    format!(
        "{:>width$}  {:<40}  {:<20}  {}",
        name,
        describe(job),
        job.started_at.get(..19).unwrap_or(&job.started_at),
        command.collect::<Vec<_>>().join(" ")
    )
}

/// Prints both streams of a job: what is there now, or (`follow`) all of it
/// as it comes, to the end of the job. Ends at once, leaving the job alone,
/// when either stream cannot be written.
pub async fn output(conn: &Connection, id: &JobRef, follow: bool) -> Result<i32, ClientError> {
    let (mut stdout, mut stderr) = (Unbuffered::new(Stream::Stdout)?, Unbuffered::new(Stream::Stderr)?);
    output_to(conn, id, follow, &mut stdout, &mut stderr).await?;
    report_truncation(&fetch_status(conn, id, false).await?);
    Ok(0)
}

/// One line on stderr when some of the job's output was dropped, so that
/// nobody takes what was printed for all of it.
pub(super) fn report_truncation(status: &wire::JobStatus) {
    if let Some(notice) = status.truncation_notice() {
        eprintln!("rcmd: {notice}");
    }
}

/// Copies both streams of a job into `stdout` and `stderr`, side by side.
pub(super) async fn output_to(
    conn: &Connection,
    id: &JobRef,
    follow: bool,
    stdout: &mut dyn OutputSink,
    stderr: &mut dyn OutputSink,
) -> Result<(), ClientError> {
    tokio::try_join!(
        copy_stream(conn, id, Stream::Stdout, follow, stdout),
        copy_stream(conn, id, Stream::Stderr, follow, stderr)
    )?;
    Ok(())
}

fn is_resumable(e: &ClientError) -> bool {
    matches!(e, ClientError::Connect { .. } | ClientError::Other(_))
}

async fn backoff(failures: u32) {
    tokio::time::sleep(Duration::from_millis(100 << failures.min(5))).await;
}

/// Copies one raw stream into `sink`. A dropped connection is resumed at the
/// byte reached, so nothing is lost or doubled.
pub(super) async fn copy_stream(
    conn: &Connection,
    id: &JobRef,
    stream: Stream,
    follow: bool,
    sink: &mut dyn OutputSink,
) -> Result<(), ClientError> {
    let mut offset = 0u64;
    let mut failures = 0;
    loop {
        let path = id.path(&format!("/output/{}?follow={follow}&offset={offset}", stream.name()));
        let attempt = async {
            let mut response = conn.call(Method::GET, &path, None::<&()>, Some(id)).await?;
            while let Some(chunk) = response.chunk().await.map_err(|e| conn.transport_error(&e))? {
                sink.write_chunk(&chunk).map_err(ClientError::write)?;
                offset += chunk.len() as u64;
                failures = 0;
            }
            Ok(())
        };
        match attempt.await {
            Err(e) if is_resumable(&e) && failures < MAX_RESUMES => {
                failures += 1;
                backoff(failures).await;
            }
            other => return other,
        }
    }
}
