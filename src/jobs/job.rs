//! One job: its record, its lifecycle and its supervisor task.

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use nix::sys::signal::Signal;
use tokio::net::unix::pipe;
use tokio::sync::watch;

use super::cgroup::{JobGroup, ResourceUsage};
use super::limits::Usage;
use super::process::{self, ExitEvent, Process, Started};
use super::spool::{self, OutputReader, Progress, Sink, Stream};
use super::stdin::{StdinRefused, StdinSlot, StdinWriter};
use super::{JobId, JobSpec, JobStatus, Limits, Output, PoolConfig, Status, Termination};

/// How long the pumps may keep draining after the job was killed. Only a
/// process that escaped the kill can hold a pipe open longer: one that left
/// the process group (with `setsid`) when the job has no cgroup, the
/// fallback. Its remaining output is then given up so the job can complete.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);

/// How long a job's cgroups may take to empty once killed (processes in
/// uninterruptible sleep exit late) before their removal is given up.
const RETIRE_LIMIT: Duration = Duration::from_secs(10);

pub(crate) struct Job {
    pub id: JobId,
    pub command: String,
    pub args: Vec<String>,
    pub started_at: SystemTime,
    pub limits: Limits,
    pid: Option<u32>,
    /// The job's cgroups; `None` on a host without them (process group only).
    group: Option<JobGroup>,
    spool_paths: [PathBuf; 2],
    lifecycle: Mutex<Lifecycle>,
    stdin: StdinSlot,
    events: watch::Sender<Progress>,
    shared: Arc<Shared>,
}

struct Lifecycle {
    /// Present until the process is reaped. Whoever takes it kills what is
    /// left of the group and reaps; afterwards no signal may be sent.
    child: Option<Process>,
    status: Status,
    finished_at: Option<SystemTime>,
    output_error: Option<String>,
    /// What the kernel counted, once the job has finished.
    usage: ResourceUsage,
    oom_killed: bool,
}

/// What a pool shares with its jobs: its settings and its counters.
pub(crate) struct Shared {
    pub config: PoolConfig,
    pub usage: Usage,
}

/// What a pool needs to know to start a job.
pub(crate) struct Spec {
    pub id: JobId,
    pub spec: JobSpec,
    pub shared: Arc<Shared>,
}

impl Job {
    /// Starts the job's process and supervisor. Never fails: a job that
    /// cannot start is returned in the error state. Must be called inside
    /// the runtime's context.
    pub fn start(spec: Spec) -> Arc<Job> {
        let started_at = SystemTime::now();
        let spool_paths = Stream::BOTH.map(|s| spool::spool_path(&spec.shared.config.data_dir, spec.id, s));
        let (group, started) = match start_contained(&spec.spec, &spec.shared.config) {
            Ok((group, started)) => (group, Ok(started)),
            Err(e) => (None, Err(e)),
        };
        let started = started
            .map_err(|e| io::Error::new(e.kind(), format!("cannot start {:?}: {e}", spec.spec.command)));
        let (child, stdin, supervision, status) = match started {
            Ok(Started { process, exit, stdin, stdout, stderr }) => {
                (Some(process), StdinSlot::new(stdin), Some((exit, stdout, stderr)), Status::Running)
            }
            Err(e) => {
                // Never running: it does not count as such.
                Usage::release(&spec.shared.usage.running);
                (None, StdinSlot::never_started(spec.spec.stdin), None, Status::Error(e.to_string()))
            }
        };
        if let (Some(child), Some(watcher)) = (&child, &spec.shared.config.watcher) {
            watcher.started(child.id());
        }
        let finished = supervision.is_none();
        let job = Arc::new(Job {
            id: spec.id,
            command: spec.spec.command,
            args: spec.spec.args,
            started_at,
            limits: spec.spec.limits,
            pid: child.as_ref().map(Process::id),
            group,
            spool_paths,
            lifecycle: Mutex::new(Lifecycle {
                child,
                status,
                finished_at: finished.then(SystemTime::now),
                output_error: None,
                usage: ResourceUsage::default(),
                oom_killed: false,
            }),
            stdin,
            events: watch::Sender::new(Progress::new(finished)),
            shared: spec.shared,
        });
        if let Some(observer) = &job.shared.config.observer {
            observer.started();
            if finished {
                observer.finished(&job.status());
            }
        }
        if let Some((exit, stdout, stderr)) = supervision {
            tokio::spawn(Arc::clone(&job).supervise(exit, [stdout, stderr]));
        }
        job
    }

    /// Drains the job's output, waits for its main process to exit, kills what
    /// is left of its group, reaps, and marks the job finished.
    async fn supervise(self: Arc<Self>, exit: ExitEvent, [stdout, stderr]: [pipe::Receiver; 2]) {
        let sink = Sink {
            events: &self.events,
            output_limit: self.shared.config.output_limit,
            pool_stored: &self.shared.usage.stored,
            pool_limit: self.shared.config.max_stored_bytes,
            report_error: &|stream, e| self.record_output_error(stream, e),
        };
        let pumps = async {
            tokio::join!(
                spool::pump(Stream::Stdout, stdout, &self.spool_paths[0], &sink),
                spool::pump(Stream::Stderr, stderr, &self.spool_paths[1], &sink),
            )
        };
        tokio::pin!(pumps);
        // A job may close its output before it exits, or exit first.
        let drained = tokio::select! {
            biased;
            _ = exit.exited() => false,
            _ = &mut pumps => true,
        };
        if drained {
            exit.exited().await;
        }
        let termination = self.reap();
        if !drained && tokio::time::timeout(DRAIN_AFTER_EXIT, &mut pumps).await.is_err() {
            tracing::warn!(job = %self.id, "a process that escaped the job holds its output open; the rest is dropped");
            self.events.send_modify(|p| p.truncated = true);
        }
        let counted = match &self.group {
            Some(group) => Some(self.retire(group).await),
            None => None,
        };
        self.finish(termination, counted);
    }

    /// Waits until every process of the job's cgroups has exited, reads what
    /// the kernel counted, and removes the groups.
    async fn retire(&self, group: &JobGroup) -> (ResourceUsage, u64) {
        let deadline = tokio::time::Instant::now() + RETIRE_LIMIT;
        let mut pause = Duration::from_micros(200);
        let mut counted = None;
        loop {
            if counted.is_none() && group.is_empty() {
                counted = Some((group.usage(), group.oom_kills()));
            }
            if counted.is_some() && group.try_remove() {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(job = %self.id, "the job's processes do not exit; its cgroups are left until the server stops");
                break;
            }
            group.kill();
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
        counted.unwrap_or_else(|| (group.usage(), group.oom_kills()))
    }

    fn lock(&self) -> MutexGuard<'_, Lifecycle> {
        // A panic while holding this lock leaves plain data behind; keep going.
        self.lifecycle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Kills what is left of the job's group and reaps its main process, if
    /// nobody has yet. Blocks only until the group's leader is gone, which is
    /// immediate when it has already exited.
    pub fn reap(&self) -> Option<Termination> {
        let child = {
            let mut lifecycle = self.lock();
            let child = lifecycle.child.take()?;
            self.kill_all(&child);
            child
        };
        self.stdin.close_at_end();
        self.events.send_modify(|p| p.exited = true);
        // Before the reap frees the id for reuse: told after, the watcher
        // could drop a new job's group of the same id.
        if let Some(watcher) = &self.shared.config.watcher {
            watcher.reaping(child.id());
        }
        child.wait().ok()
    }

    /// Signals the job's process group if its leader is not yet reaped;
    /// SIGKILL goes to every process of its cgroup too. Returns whether the
    /// signal was sent.
    pub fn signal(&self, signal: Signal) -> bool {
        let lifecycle = self.lock();
        match &lifecycle.child {
            Some(child) if signal == Signal::SIGKILL => {
                self.kill_all(child);
                true
            }
            Some(child) => {
                process::signal_group(child.id(), signal);
                true
            }
            None => false,
        }
    }

    /// SIGKILL to everything of the job: its cgroup where it has one (which
    /// nothing can leave), and its process group (which is all there is
    /// without one). Only while `child` is unreaped, so the group id is ours.
    fn kill_all(&self, child: &Process) {
        if let Some(group) = &self.group {
            group.kill();
        }
        process::signal_group(child.id(), Signal::SIGKILL);
    }

    /// Removes the job's cgroups, waiting (blocking) for its killed processes
    /// to exit: for a pool dropped outside its runtime.
    pub fn remove_group_blocking(&self) {
        if let Some(group) = &self.group {
            group.kill();
            group.remove_blocking(RETIRE_LIMIT);
        }
    }

    fn record_output_error(&self, stream: Stream, e: &io::Error) {
        tracing::warn!(job = %self.id, stream = stream.name(), error = %e, "job output could not be stored; the job goes on, marked truncated");
        let mut lifecycle = self.lock();
        lifecycle.output_error.get_or_insert_with(|| format!("cannot store {}: {e}", stream.name()));
    }

    fn finish(&self, termination: Option<Termination>, counted: Option<(ResourceUsage, u64)>) {
        {
            let mut lifecycle = self.lock();
            // Someone else reaped (the pool was dropped): it was killed.
            let termination = termination.unwrap_or(Termination::Signaled(Signal::SIGKILL as i32));
            lifecycle.status = Status::Completed(termination);
            lifecycle.finished_at = Some(SystemTime::now());
            if let Some((usage, oom_kills)) = counted {
                lifecycle.usage = usage;
                lifecycle.oom_killed = oom_kills > 0;
            }
        }
        Usage::release(&self.shared.usage.running);
        self.events.send_modify(|p| {
            p.exited = true;
            p.finished = true;
        });
        if let Some(observer) = &self.shared.config.observer {
            observer.finished(&self.status());
        }
    }

    pub fn status(&self) -> JobStatus {
        let truncated = self.events.borrow().truncated;
        let lifecycle = self.lock();
        let running = lifecycle.child.is_some();
        JobStatus {
            id: self.id,
            command: self.command.clone(),
            args: self.args.clone(),
            status: lifecycle.status.clone(),
            pid: self.pid,
            started_at: self.started_at,
            finished_at: lifecycle.finished_at,
            truncated,
            output_error: lifecycle.output_error.clone(),
            limits: self.limits,
            oom_killed: lifecycle.oom_killed,
            usage: match (&self.group, running) {
                (Some(group), true) => group.usage(),
                _ => lifecycle.usage,
            },
        }
    }

    /// The one writer of the job's stdin pipe.
    pub fn stdin(&self) -> Result<StdinWriter, StdinRefused> {
        self.stdin.take(self.events.subscribe())
    }

    pub async fn wait_exited(&self) {
        let _ = self.events.subscribe().wait_for(|p| p.exited).await;
    }

    pub async fn wait_finished(&self) {
        let _ = self.events.subscribe().wait_for(|p| p.finished).await;
    }

    /// A reader of one stream from `offset`. A spool file that exists is
    /// opened now, so the reader keeps working if the job is deleted while it
    /// follows; one that does not yet (no output so far) is opened later.
    pub fn reader(&self, stream: Stream, offset: u64) -> io::Result<OutputReader> {
        let events = self.events.subscribe();
        let path = self.spool_paths[stream.index()].clone();
        let file = match File::open(&path) {
            Ok(file) => Some(file),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        Ok(OutputReader::new(path, file, stream, offset, events))
    }

    /// The output stored so far, both streams.
    pub fn output(&self) -> io::Result<Output> {
        let progress = *self.events.borrow();
        let mut output = Output { truncated: progress.truncated, ..Output::default() };
        for (stream, buf) in [(Stream::Stdout, &mut output.stdout), (Stream::Stderr, &mut output.stderr)] {
            let len = usize::try_from(progress.stored(stream)).map_err(io::Error::other)?;
            if len == 0 {
                // Spool files are made with the first byte.
                continue;
            }
            let file = File::open(&self.spool_paths[stream.index()])?;
            buf.resize(len, 0);
            std::os::unix::fs::FileExt::read_exact_at(&file, buf, 0)?;
        }
        Ok(output)
    }

    /// Gives back everything the job holds: its spool files, its stored
    /// bytes and its place in the pool's count. Called once, when the job
    /// leaves its pool.
    pub fn forget(&self) {
        let stored = {
            let p = self.events.borrow();
            p.stored(Stream::Stdout) + p.stored(Stream::Stderr)
        };
        self.shared.usage.stored.fetch_sub(stored, std::sync::atomic::Ordering::SeqCst);
        Usage::release(&self.shared.usage.jobs);
        self.remove_spool_files();
    }

    fn remove_spool_files(&self) {
        for path in &self.spool_paths {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(job = %self.id, path = %path.display(), error = %e, "cannot remove spool file")
                }
            }
        }
    }
}

/// Makes the job's cgroups (on a host that has them) and starts its process
/// in them. Without cgroups, a job that asks for limits cannot start.
fn start_contained(spec: &JobSpec, config: &PoolConfig) -> io::Result<(Option<JobGroup>, Started)> {
    let init = config.isolate_init.as_deref();
    let Some(cgroups) = &config.cgroups else {
        if spec.limits != Limits::default() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this server has no cgroups to enforce limits with",
            ));
        }
        return Ok((None, process::start(spec, &[], init)?));
    };
    let group = cgroups.create(&spec.limits)?;
    match process::start(spec, &group.procs, init) {
        Ok(started) => Ok((Some(group), started)),
        Err(e) => {
            group.remove_blocking(RETIRE_LIMIT);
            Err(e)
        }
    }
}
