//! One command, many hosts: `rcmd CERTDIR TARGETS [fleet options] COMMAND`.
//!
//! [`targets`] and [`inventory`] say which hosts; [`pairs`] reads back the
//! `NAME ID` lines of `exec`; [`lines`] keeps each host's output lines whole
//! and prefixed; [`closing`] tells when a host's connection is closed, and
//! [`verified`] whether it got past the handshake; [`outcome`] sums up, and
//! [`failed`] writes the hosts that did not succeed. This module runs each
//! host's part with the single-host pieces of [`super::commands`].
//!
//! Invariants:
//! * One runtime thread and no task per host: every host's part is a future,
//!   polled in one stream that holds at most `--fanout` of them, so the
//!   client's memory does not grow with the number of hosts beyond their
//!   list and their outcomes.
//! * At most `--fanout` hosts are in progress, each over one HTTP/2
//!   connection; a host's connection is closed before its slot goes to the
//!   next host, so `--fanout` bounds open connections.
//! * A host's failure is its own: it ends as an [`Outcome`] in the summary,
//!   never as an error of the whole command.
//! * After Ctrl-C, no host starts: a host still connecting (its certificate
//!   not yet verified, see [`verified`]) is abandoned with nothing sent to
//!   it. Every job already started is stopped; a host whose stop fails or
//!   gets no answer within [`STOP_PATIENCE`] is given up on and named, so
//!   no host can keep the command from ending.
//! * Our own output is not a host's: when a write to our stdout or stderr
//!   fails (a closed pipe), no host starts, every `run` job is killed, and
//!   the command ends with that failure (141 for a closed pipe) as the
//!   single-host commands do.
//! * `run` forwards a piped stdin (not a terminal's) to every host: read
//!   once, each chunk sent to all, so every host must be in progress at
//!   once: more hosts than `--fanout` is refused up front.

mod closing;
mod failed;
mod inventory;
mod lines;
mod outcome;
mod pairs;
mod targets;
mod verified;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs::File;
use std::future::Future;
use std::io::IsTerminal;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use tokio::sync::{Semaphore, SemaphorePermit, watch};

pub use pairs::{JobArg, JobArgError};
pub(crate) use targets::{Host, Targets};
pub use targets::{Selector, SelectorError};

use super::commands;
use super::connection::{ClientTls, Connection, Protocol, client_tls};
use super::error::exit;
use super::limits::LimitFlags;
use super::sink::{OutputSink, warn};
use super::stdin::LocalStdin;
use super::{ClientArgs, ClientCommand, ClientError, JobRef, run as single};
use crate::wire;
use closing::Closing;
use failed::FailedFile;
use lines::Lines;
use outcome::Outcome;
use verified::Verified;

const DEFAULT_FANOUT: u32 = 32;

/// How long a host has to answer the stop that a Ctrl-C sends (or the
/// request for its job, if that was under way). A server
/// answers once the job has ended: at once for most jobs, after its grace
/// period (5 s unless `serve --stop-grace` says otherwise) for one that
/// ignores SIGTERM. A host that takes longer must not keep us from exiting;
/// a real server kills the job anyway when its grace period is over.
const STOP_PATIENCE: Duration = Duration::from_secs(10);

/// With `--json`, the most of each stream of a `run` kept for its object;
/// the rest stays on the server, under the job id the object gives.
const JSON_OUTPUT_CAP: usize = 1 << 20;

/// Runs `args.command` on every host and sums up; returns the exit status.
pub(crate) async fn run(args: ClientArgs, hosts: Vec<Host>) -> Result<i32, ClientError> {
    let inputs: Vec<&Path> = args
        .addr
        .strip_prefix('@')
        .map(Path::new)
        .into_iter()
        .chain(job_arg(&args.command).and_then(JobArg::file))
        .collect();
    let failed = args.failed.as_deref().map(|path| FailedFile::new(path, &inputs)).transpose()?;
    let fleet = Fleet::new(&args)?;
    let work: Vec<(&Host, Option<JobRef>)> = match job_arg(&args.command) {
        Some(arg) => arg.per_host(&hosts)?.into_iter().map(|(h, job)| (h, Some(job))).collect(),
        None => hosts.iter().map(|h| (h, None)).collect(),
    };
    let mut stdins = fleet.stdins(&args, work.len())?.into_iter();
    let (fleet, command) = (&fleet, &args.command);
    // A host's part is made only when a slot may be free: each holds a few
    // KiB, so a huge inventory must not have them all at once.
    let parts = stream::iter(work.iter().enumerate())
        .map(|(i, (host, job))| {
            let stdin = stdins.next();
            async move { (i, fleet.part(host, job.as_ref(), stdin, command).await) }
        })
        .buffer_unordered(fleet.fanout)
        .collect::<Vec<_>>();
    let mut reports = if matches!(args.command, ClientCommand::Run { .. }) {
        match fleet.interruptible(parts).await {
            Ok(reports) => reports,
            Err(code) => return Ok(code),
        }
    } else {
        parts.await
    };
    reports.sort_by_key(|(i, _)| *i);
    let reports: Vec<Report> = reports.into_iter().map(|(_, report)| report).collect();
    if let Some(e) = fleet.output_failure.take() {
        return Err(e);
    }
    for report in &reports {
        if let Some(e) = &report.stop_error {
            warn(format_args!("could not stop the job on {}: {e}", report.host.name));
        }
    }
    let results: Vec<(&Host, Outcome)> = reports.into_iter().map(|r| (r.host, r.outcome)).collect();
    for line in outcome::summary(&results) {
        warn(line);
    }
    if let Some(file) = failed {
        file.write(&results.iter().filter(|(_, o)| *o != Outcome::Ok).map(|(h, _)| *h).collect::<Vec<_>>())?;
    }
    Ok(outcome::exit_status(results.iter().map(|(_, o)| o)))
}

/// The job id argument of a command, if it takes one.
fn job_arg(command: &ClientCommand) -> Option<&JobArg> {
    match command {
        ClientCommand::Status { id }
        | ClientCommand::Stop { id }
        | ClientCommand::Wait { id }
        | ClientCommand::Delete { id }
        | ClientCommand::Output { id, .. }
        | ClientCommand::Logs { id, .. } => Some(id),
        ClientCommand::Exec { .. } | ClientCommand::Run { .. } | ClientCommand::List { .. } => None,
    }
}

/// What every host's part shares.
struct Fleet {
    tls: ClientTls,
    connect_timeout: Duration,
    /// `--fanout`: hosts in progress at once, each holding a slot.
    fanout: usize,
    slots: Semaphore,
    prefix: bool,
    json: bool,
    stdout: Arc<File>,
    stderr: Arc<File>,
    /// Set at the first Ctrl-C, or when our own output fails.
    interrupt: watch::Sender<bool>,
    /// The first failure to write our own output: it ends the command.
    output_failure: RefCell<Option<ClientError>>,
    /// Jobs started and not yet seen to end, by host: named if the user
    /// leaves at a second Ctrl-C.
    running: RefCell<BTreeMap<String, JobRef>>,
}

/// How one host's part ended.
struct Report<'h> {
    host: &'h Host,
    outcome: Outcome,
    /// Why a Ctrl-C could not stop this host's job.
    stop_error: Option<String>,
    /// The `--json` object's fields beyond host, addr and outcome.
    fields: serde_json::Map<String, serde_json::Value>,
}

impl Fleet {
    fn new(args: &ClientArgs) -> Result<Fleet, ClientError> {
        use std::os::fd::AsFd;
        let stdout = File::from(std::io::stdout().as_fd().try_clone_to_owned().map_err(ClientError::write)?);
        let stderr = File::from(std::io::stderr().as_fd().try_clone_to_owned().map_err(ClientError::write)?);
        let fanout = args.fanout.unwrap_or(DEFAULT_FANOUT) as usize;
        Ok(Fleet {
            tls: client_tls(&args.certdir)?,
            connect_timeout: args.connect_timeout,
            fanout,
            slots: Semaphore::new(fanout),
            prefix: !args.no_prefix,
            json: args.json,
            stdout: Arc::new(stdout),
            stderr: Arc::new(stderr),
            interrupt: watch::Sender::new(false),
            output_failure: RefCell::new(None),
            running: RefCell::new(BTreeMap::new()),
        })
    }

    /// What each host's `run` job reads: our stdin, if it is piped (a
    /// terminal's goes to no host, as pssh does: typing to many at once is
    /// not what anyone means), one reader per host.
    fn stdins(&self, args: &ClientArgs, hosts: usize) -> Result<Vec<LocalStdin>, ClientError> {
        let ClientCommand::Run { no_stdin: false, .. } = args.command else {
            return Ok(Vec::new());
        };
        if std::io::stdin().is_terminal() {
            return Ok(Vec::new());
        }
        if hosts > self.fanout {
            // Only probe: a stdin of /dev/null or none is no stdin at all.
            if LocalStdin::open_many(0).is_none() {
                return Ok(Vec::new());
            }
            return Err(ClientError::Targets(format!(
                "run sends its stdin to every host at once, but --fanout {} is below the {hosts} hosts: \
                 raise --fanout to {hosts}, or give run -n for no stdin",
                self.fanout
            )));
        }
        Ok(LocalStdin::open_many(hosts).unwrap_or_default())
    }

    /// One host's part, from waiting for a slot to its JSON object.
    async fn part<'h>(
        &self,
        host: &'h Host,
        job: Option<&JobRef>,
        stdin: Option<LocalStdin>,
        command: &ClientCommand,
    ) -> Report<'h> {
        let mut report = Report { host, outcome: Outcome::Ok, stop_error: None, fields: Default::default() };
        let Some(slot) = self.slot().await else {
            report.outcome = Outcome::not_started("interrupted");
            self.print_json(&mut report);
            return report;
        };
        let mut tls = self.tls.config.clone();
        let closing = Closing::watch(&mut tls);
        let verified = Verified::watch(&mut tls, &self.tls.verifier);
        let result = match Connection::with_tls(tls, &host.addr, Protocol::Http2, self.connect_timeout) {
            Ok(conn) => self.perform(&conn, &verified, job, stdin, command, &mut report).await,
            Err(e) => Err(e),
        };
        closing.closed().await;
        drop(slot);
        report.outcome = match result {
            Ok(outcome) => outcome,
            Err(e) if is_output_failure(&e) => {
                let outcome = Outcome::Failed { status: e.exit_code(), why: e.to_string() };
                self.output_failed(e);
                outcome
            }
            Err(e) if e.exit_code() == exit::UNREACHABLE => Outcome::Unreachable { why: e.to_string() },
            Err(e) => Outcome::Failed { status: e.exit_code(), why: e.to_string() },
        };
        self.print_json(&mut report);
        report
    }

    /// Our own output failed: the first failure is kept to end the command
    /// with, and every host winds down.
    fn output_failed(&self, e: ClientError) {
        self.output_failure.borrow_mut().get_or_insert(e);
        self.interrupt.send_replace(true);
    }

    /// A slot among `--fanout`, or `None` once interrupted.
    async fn slot(&self) -> Option<SemaphorePermit<'_>> {
        let mut interrupt = self.interrupt.subscribe();
        let slot = tokio::select! {
            biased;
            _ = interrupted(&mut interrupt) => None,
            slot = self.slots.acquire() => slot.ok(),
        };
        slot.filter(|_| !*interrupt.borrow())
    }

    /// The command itself, on one host.
    async fn perform(
        &self,
        conn: &Connection,
        verified: &Verified,
        job: Option<&JobRef>,
        stdin: Option<LocalStdin>,
        command: &ClientCommand,
        report: &mut Report<'_>,
    ) -> Result<Outcome, ClientError> {
        let given = || job.expect("a command that takes a job has one for each host");
        match command {
            ClientCommand::Exec { limits, cmd, args } => self.exec(conn, cmd, args, limits, report).await?,
            ClientCommand::Run { rm, limits, cmd, args, .. } => {
                let create = commands::create(conn, cmd, args, stdin.is_some(), limits);
                let Some(job) = self.create_unless_interrupted(create, verified).await? else {
                    return Ok(Outcome::not_started("interrupted while connecting"));
                };
                return self.follow_run(conn, job, stdin, *rm, report).await;
            }
            ClientCommand::Output { follow, .. } | ClientCommand::Logs { follow, .. } => {
                report.field("id", given().id);
                self.stream(conn, given(), Follow::Output(*follow), report).await?;
            }
            ClientCommand::Status { .. } => {
                let status = commands::fetch_status(conn, given(), false).await?;
                self.print_status(report, &status)?;
            }
            ClientCommand::Stop { .. } => {
                let status = commands::stop_job(conn, given()).await?;
                self.print_status(report, &status)?;
            }
            ClientCommand::Wait { .. } => {
                let status = commands::fetch_status(conn, given(), true).await?;
                self.print_status(report, &status)?;
                return Ok(self.job_outcome(&status, report));
            }
            ClientCommand::Delete { .. } => {
                commands::delete(conn, given()).await?;
                report.field("id", given().id);
            }
            ClientCommand::List { all } => self.list(conn, *all, report).await?,
        }
        Ok(Outcome::Ok)
    }

    /// `exec` on one host: starts the job and reports its id, as a
    /// `NAME ID` line that `@FILE` or `-` can take back.
    async fn exec(
        &self,
        conn: &Connection,
        cmd: &str,
        args: &[String],
        limits: &LimitFlags,
        report: &mut Report<'_>,
    ) -> Result<(), ClientError> {
        let job = commands::create(conn, cmd, args, false, limits).await?;
        report.field("id", job.id);
        if !self.json {
            self.write(&self.stdout, format!("{} {job}\n", report.host.name))?;
        }
        Ok(())
    }

    /// `run` on one host once its job exists: streams the output while
    /// stdin is uploaded, then fetches the final status (and deletes the
    /// job for `--rm`). The job stays in `running` until it has ended, so
    /// that a second Ctrl-C can name it.
    async fn follow_run(
        &self,
        conn: &Connection,
        job: JobRef,
        stdin: Option<LocalStdin>,
        remove: bool,
        report: &mut Report<'_>,
    ) -> Result<Outcome, ClientError> {
        let host = report.host;
        report.field("id", job.id);
        self.running.borrow_mut().insert(host.name.clone(), job.clone());
        // The job's end ends the host's part, whatever became of stdin.
        let upload = async {
            if let Some(stdin) = stdin
                && let Err(message) = single::upload(conn, &job, stdin).await
            {
                warn(format_args!("{}: {message}", host.name));
            }
            std::future::pending().await
        };
        tokio::select! {
            streamed = self.stream(conn, &job, Follow::Run { remove }, report) => streamed?,
            never = upload => never,
        }
        let status = commands::fetch_status(conn, &job, true).await?;
        self.running.borrow_mut().remove(&host.name);
        if let Some(notice) = status.truncation_notice() {
            warn(format_args!("{}: {notice}", host.name));
        }
        if remove {
            commands::delete(conn, &job).await?;
        }
        Ok(self.job_outcome(&status, report))
    }

    /// `list` on one host: its jobs as prefixed lines under a header, page
    /// by page, or gathered into the host's JSON object.
    async fn list(&self, conn: &Connection, all: bool, report: &mut Report<'_>) -> Result<(), ClientError> {
        let host = report.host;
        let mut jobs = Vec::new();
        if !self.json {
            self.host_line(host, &commands::list_header(all))?;
        }
        commands::list_pages(conn, all, |page| {
            if self.json {
                jobs.extend_from_slice(page);
            } else {
                page.iter().try_for_each(|job| self.host_line(host, &commands::list_line(job, all)))?;
            }
            Ok(())
        })
        .await?;
        if self.json {
            report.field("jobs", &jobs);
        }
        Ok(())
    }

    /// A job's creation on a host, abandoned (`None`) if Ctrl-C comes while
    /// the host has not yet shown its certificate: nothing can have reached
    /// it then, so no job is left there. Once it has, the job may exist,
    /// so its id is awaited (as long as a stop is), and the job is stopped
    /// with the others.
    async fn create_unless_interrupted(
        &self,
        create: impl Future<Output = Result<JobRef, ClientError>>,
        verified: &Verified,
    ) -> Result<Option<JobRef>, ClientError> {
        tokio::pin!(create);
        let mut interrupt = self.interrupt.subscribe();
        tokio::select! {
            job = &mut create => return job.map(Some),
            _ = interrupted(&mut interrupt) => {}
        }
        if !verified.yet() {
            return Ok(None);
        }
        match tokio::time::timeout(STOP_PATIENCE, create).await {
            Ok(job) => job.map(Some),
            Err(_) => Err(ClientError::Other(format!(
                "interrupted, and the request for the job got no answer in {} s: a job may have started there",
                STOP_PATIENCE.as_secs()
            ))),
        }
    }

    /// A finished job's outcome: ok for status 0, else failed with it.
    fn job_outcome(&self, status: &wire::JobStatus, report: &mut Report<'_>) -> Outcome {
        let code = commands::job_exit_code(status);
        report.field("job", status);
        if code == 0 { Outcome::Ok } else { Outcome::Failed { status: code, why: failure(status) } }
    }

    /// Copies a job's output: prefixed lines, or into the JSON object.
    async fn stream(
        &self,
        conn: &Connection,
        job: &JobRef,
        follow: Follow,
        report: &mut Report<'_>,
    ) -> Result<(), ClientError> {
        let live = !matches!(follow, Follow::Output(false));
        if self.json {
            let (mut out, mut err) = (Capped::default(), Capped::default());
            let copy = commands::output_to(conn, job, live, &mut out, &mut err);
            let result = self.haltable(conn, job, follow, copy, report).await;
            report.field("stdout", String::from_utf8_lossy(&out.bytes));
            report.field("stderr", String::from_utf8_lossy(&err.bytes));
            report.field("output_capped", out.capped || err.capped);
            return result;
        }
        let prefix: Arc<str> = if self.prefix { format!("{}: ", report.host.name).into() } else { "".into() };
        let mut out = Lines::new(self.stdout.clone(), prefix.clone());
        let mut err = Lines::new(self.stderr.clone(), prefix);
        let copy = commands::output_to(conn, job, live, &mut out, &mut err);
        let result = self.haltable(conn, job, follow, copy, report).await;
        // What a host printed last reaches the terminal even if it broke off.
        result.and(out.finish().map_err(ClientError::write)).and(err.finish().map_err(ClientError::write))
    }

    /// Runs `work`, the copy of a job's output, until the fleet halts. At
    /// Ctrl-C, a `run` stops its job and goes on to the job's end, unless
    /// the stop fails or is not answered in time. When our
    /// output fails (here or on another host), a `run` kills its job at
    /// once, as the single-host `run` does, and the copy is abandoned.
    async fn haltable(
        &self,
        conn: &Connection,
        job: &JobRef,
        follow: Follow,
        work: impl Future<Output = Result<(), ClientError>>,
        report: &mut Report<'_>,
    ) -> Result<(), ClientError> {
        tokio::pin!(work);
        let mut interrupt = self.interrupt.subscribe();
        let result = tokio::select! {
            result = &mut work => result,
            _ = interrupted(&mut interrupt) => {
                let output_gone = self.output_failure.borrow().is_some();
                match (follow, output_gone) {
                    (Follow::Run { .. }, false) => {
                        let stop = async {
                            match tokio::time::timeout(STOP_PATIENCE, commands::stop_job(conn, job)).await {
                                Ok(stopped) => stopped.map(drop).map_err(|e| e.to_string()),
                                Err(_) => Err(format!("no answer to the stop in {} s", STOP_PATIENCE.as_secs())),
                            }
                        };
                        tokio::pin!(stop);
                        // The output goes on meanwhile, to the job's end; a
                        // host whose stop failed is not waited for.
                        let (result, stopped) = tokio::select! {
                            result = &mut work => (result, stop.await),
                            stopped = &mut stop => match stopped {
                                Ok(()) => (work.await, Ok(())),
                                Err(e) => {
                                    let why = format!("interrupted, and the stop failed: {e}");
                                    (Err(ClientError::Other(why)), Err(e))
                                }
                            },
                        };
                        if let Err(e) = stopped {
                            report.stop_error = Some(format!("job {job}: {e}"));
                        }
                        result
                    }
                    _ => Err(ClientError::BrokenPipe),
                }
            }
        };
        if let (Err(e), Follow::Run { remove }) = (&result, follow)
            && is_output_failure(e)
        {
            single::kill(conn, job, remove).await;
        }
        result
    }

    /// Waits for `parts`; the first Ctrl-C stops every job, the second
    /// leaves at once (exit status 130), naming the jobs left running.
    async fn interruptible<T>(&self, parts: impl Future<Output = T>) -> Result<T, i32> {
        tokio::pin!(parts);
        loop {
            tokio::select! {
                done = &mut parts => return Ok(done),
                _ = tokio::signal::ctrl_c() => {
                    if self.interrupt.send_replace(true) {
                        let left: Vec<String> =
                            self.running.borrow().iter().map(|(name, id)| format!("{name} (job {id})")).collect();
                        if !left.is_empty() {
                            eprintln!("rcmd: left running: {}", left.join(", "));
                        }
                        return Err(130);
                    }
                    eprintln!("rcmd: stopping the job on every host that started it (Ctrl-C again to leave them)");
                }
            }
        }
    }

    fn print_status(&self, report: &mut Report<'_>, status: &wire::JobStatus) -> Result<(), ClientError> {
        report.field("job", status);
        if !self.json {
            self.host_line(report.host, &commands::describe(status))?;
        }
        Ok(())
    }

    /// One whole line of a host's on our stdout, prefixed.
    fn host_line(&self, host: &Host, text: &str) -> Result<(), ClientError> {
        let prefix = if self.prefix { format!("{}: ", host.name) } else { String::new() };
        self.write(&self.stdout, format!("{prefix}{text}\n"))
    }

    /// A host's `--json` object, once its part is over. Its fields go with
    /// it, so that no host's output is held until the summary.
    fn print_json(&self, report: &mut Report<'_>) {
        if !self.json {
            return;
        }
        let mut object = serde_json::Map::new();
        object.insert("host".into(), report.host.name.clone().into());
        object.insert("addr".into(), report.host.addr.clone().into());
        object.insert("outcome".into(), report.outcome.word().into());
        object.insert("exit_status".into(), report.outcome.status().into());
        if let Some(why) = report.outcome.why() {
            object.insert("error".into(), why.into());
        }
        object.extend(std::mem::take(&mut report.fields));
        if let Err(e) = self.write(&self.stdout, serde_json::Value::Object(object).to_string() + "\n") {
            self.output_failed(e);
        }
    }

    /// Writes whole lines at once, so that no other host's land inside.
    fn write(&self, out: &File, text: String) -> Result<(), ClientError> {
        (&*out).write_all(text.as_bytes()).map_err(ClientError::write)
    }
}

impl Report<'_> {
    fn field(&mut self, key: &str, value: impl serde::Serialize) {
        self.fields.insert(key.into(), serde_json::to_value(value).expect("wire types serialise"));
    }
}

/// Why a finished job counts as failed, for the summary.
fn failure(status: &wire::JobStatus) -> String {
    match (status.status, status.exit_code, status.signal) {
        (wire::State::Error, ..) => {
            format!("could not start: {}", status.error_msg.as_deref().unwrap_or("unknown error"))
        }
        _ if status.oom_killed => commands::out_of_memory(status).unwrap_or_default(),
        (_, Some(code), _) => format!("exit status {code}"),
        (_, None, Some(signal)) => format!("killed by signal {signal} ({})", wire::signal_name(signal)),
        _ => commands::describe(status),
    }
}

/// How a host's part follows a job's output.
#[derive(Debug, Clone, Copy)]
enum Follow {
    /// `run`'s own job: to its end; stopped at Ctrl-C, killed (or deleted
    /// with `remove`) when our output fails.
    Run { remove: bool },
    /// `output` and `logs`: to the end of the job if set, else what is
    /// there now; the job is left alone.
    Output(bool),
}

/// A failure to write our own output rather than anything of a host's.
fn is_output_failure(e: &ClientError) -> bool {
    matches!(e, ClientError::BrokenPipe | ClientError::Write(_))
}

/// Resolves once the first Ctrl-C has been seen.
async fn interrupted(interrupt: &mut watch::Receiver<bool>) {
    let _ = interrupt.wait_for(|set| *set).await;
}

/// A stream's output kept for a JSON object, up to [`JSON_OUTPUT_CAP`].
#[derive(Default)]
struct Capped {
    bytes: Vec<u8>,
    capped: bool,
}

impl OutputSink for Capped {
    fn write_chunk(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        let room = JSON_OUTPUT_CAP - self.bytes.len();
        self.capped |= chunk.len() > room;
        self.bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
        Ok(())
    }
}
