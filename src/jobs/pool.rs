//! The pool: a map of jobs, their shared limits, and the calls on them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::runtime::Handle;

use super::cgroup::{Cgroups, Unsupported};
use super::job::{Job, Shared, Spec};
use super::limits::{GroupWatcher, Quota, Usage};
use super::spool::{self, OutputReader, Stream};
use super::stdin::StdinWriter;
use super::{JobError, JobId, JobObserver, JobSpec, JobStatus, Limits, Output};

/// Settings shared by every job of a pool.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Where the pool keeps its jobs' output. The pool owns this directory:
    /// it creates it (mode 0700) and removes spool files it finds there.
    pub data_dir: PathBuf,
    /// Output bytes kept per job, both streams together; the rest is dropped
    /// and the job marked truncated.
    pub output_limit: u64,
    /// How long [`JobPool::stop`] waits after SIGTERM before SIGKILL.
    pub stop_grace: Duration,
    /// Quotas enforced by [`JobPool::try_create`]: running jobs, kept jobs.
    pub max_running: usize,
    pub max_jobs: usize,
    /// Output bytes stored by all jobs together. Past it, new jobs are
    /// refused and running ones have further output dropped (truncated).
    pub max_stored_bytes: u64,
    /// Told of every job's process group as it starts and is reaped.
    pub watcher: Option<Arc<dyn GroupWatcher>>,
    /// The host's cgroups, shared by every pool of a server: each job gets
    /// its own group there, which is how it is killed and limited. `None`:
    /// jobs are process groups only, and limits cannot be enforced.
    pub cgroups: Option<Arc<Cgroups>>,
    /// Told of every job's start and end.
    pub observer: Option<Arc<dyn JobObserver>>,
    /// The rcmd binary, which an isolated job runs as its process 1
    /// (`rcmd __init`). `None`: jobs cannot be isolated.
    pub isolate_init: Option<PathBuf>,
}

impl PoolConfig {
    pub const DEFAULT_OUTPUT_LIMIT: u64 = 2 << 30;
    pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(5);

    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        PoolConfig {
            data_dir: data_dir.into(),
            output_limit: Self::DEFAULT_OUTPUT_LIMIT,
            stop_grace: Self::DEFAULT_STOP_GRACE,
            max_running: usize::MAX,
            max_jobs: usize::MAX,
            max_stored_bytes: u64::MAX,
            watcher: None,
            cgroups: None,
            observer: None,
            isolate_init: None,
        }
    }
}

/// A thread-safe pool of jobs. Dropping it (or [`JobPool::shutdown`]) kills
/// every job's process group and reaps it.
pub struct JobPool {
    shared: Arc<Shared>,
    jobs: Mutex<BTreeMap<JobId, Arc<Job>>>,
    next_id: AtomicU64,
    runtime: Handle,
}

impl JobPool {
    /// Creates a pool whose jobs are supervised on the current tokio runtime.
    pub fn new(config: PoolConfig) -> Result<Self, JobError> {
        let runtime = Handle::try_current().map_err(|_| JobError::NoRuntime)?;
        take_over_dir(&config.data_dir)
            .map_err(|source| JobError::DataDir { path: config.data_dir.clone(), source })?;
        Ok(JobPool {
            shared: Arc::new(Shared { config, usage: Usage::default() }),
            jobs: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(1),
            runtime,
        })
    }

    fn jobs(&self) -> MutexGuard<'_, BTreeMap<JobId, Arc<Job>>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, id: JobId) -> Result<Arc<Job>, JobError> {
        self.jobs().get(&id).cloned().ok_or(JobError::NotFound(id))
    }

    /// Starts `command` with `args` and returns the new job's id. This always
    /// creates a job, whatever the quotas: one that cannot start has status
    /// `Error` with the reason.
    pub fn create(&self, command: impl Into<String>, args: Vec<String>) -> JobId {
        self.create_job(JobSpec::new(command, args))
    }

    /// Like [`JobPool::create`], for a job with stdin, limits or a user.
    pub fn create_job(&self, spec: JobSpec) -> JobId {
        let usage = &self.shared.usage;
        usage.jobs.fetch_add(1, Ordering::SeqCst);
        usage.running.fetch_add(1, Ordering::SeqCst);
        self.start(spec)
    }

    /// Like [`JobPool::create`], but refuses a job that would exceed one of
    /// the pool's quotas, saying which.
    pub fn try_create(&self, spec: JobSpec) -> Result<JobId, JobError> {
        let (config, usage) = (&self.shared.config, &self.shared.usage);
        if usage.stored.load(Ordering::SeqCst) >= config.max_stored_bytes {
            return Err(JobError::Quota(Quota::StoredBytes(config.max_stored_bytes)));
        }
        match &config.cgroups {
            Some(cgroups) => cgroups.check(&spec.limits).map_err(JobError::Unsupported)?,
            None if spec.limits != Limits::default() => {
                return Err(JobError::Unsupported(Unsupported(
                    "this server cannot enforce limits: it has no cgroups (see its start-up log)".into(),
                )));
            }
            None => {}
        }
        if spec.isolate {
            isolation_possible(config).map_err(JobError::Unsupported)?;
        }
        if !Usage::reserve(&usage.jobs, config.max_jobs) {
            return Err(JobError::Quota(Quota::Jobs(config.max_jobs)));
        }
        if !Usage::reserve(&usage.running, config.max_running) {
            Usage::release(&usage.jobs);
            return Err(JobError::Quota(Quota::Running(config.max_running)));
        }
        Ok(self.start(spec))
    }

    /// Starts a job whose `jobs` and `running` units are already counted.
    fn start(&self, spec: JobSpec) -> JobId {
        let id = JobId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let _runtime = self.runtime.enter();
        let job = Job::start(Spec { id, spec, shared: Arc::clone(&self.shared) });
        self.jobs().insert(id, job);
        id
    }

    /// The writer of a job's stdin: one at a time, and only for a job created
    /// with `stdin` that still runs. See [`StdinWriter::copy_from`].
    pub fn stdin(&self, id: JobId) -> Result<StdinWriter, JobError> {
        self.get(id)?.stdin().map_err(|refused| JobError::Stdin { id, refused })
    }

    pub fn status(&self, id: JobId) -> Result<JobStatus, JobError> {
        Ok(self.get(id)?.status())
    }

    /// Output bytes stored by the pool's jobs, both streams, all together.
    pub fn stored_bytes(&self) -> u64 {
        self.shared.usage.stored.load(Ordering::Relaxed)
    }

    /// Every job of the pool, by id.
    pub fn list(&self) -> Vec<JobStatus> {
        let jobs: Vec<Arc<Job>> = self.jobs().values().cloned().collect();
        jobs.iter().map(|job| job.status()).collect()
    }

    /// Everything the job has written so far, both streams. For large
    /// output prefer [`JobPool::reader`], which holds one chunk at a time.
    pub fn output(&self, id: JobId) -> Result<Output, JobError> {
        self.get(id)?.output().map_err(|source| JobError::ReadOutput { id, source })
    }

    /// A reader that follows one stream of a job from byte `offset`.
    pub fn reader(&self, id: JobId, stream: Stream, offset: u64) -> Result<OutputReader, JobError> {
        self.get(id)?.reader(stream, offset).map_err(|source| JobError::ReadOutput { id, source })
    }

    /// Waits until the job has finished, and returns its final status.
    pub async fn wait(&self, id: JobId) -> Result<JobStatus, JobError> {
        let job = self.get(id)?;
        job.wait_finished().await;
        Ok(job.status())
    }

    /// SIGTERM to the job's process group, then SIGKILL once the pool's grace
    /// period has passed. Returns the final status.
    pub async fn stop(&self, id: JobId) -> Result<JobStatus, JobError> {
        self.stop_with_grace(id, self.shared.config.stop_grace).await
    }

    /// The grace period of [`JobPool::stop`].
    pub fn stop_grace(&self) -> Duration {
        self.shared.config.stop_grace
    }

    /// Like [`JobPool::stop`] with a grace period of its own. The escalation
    /// to SIGKILL happens even if the caller stops waiting.
    pub async fn stop_with_grace(&self, id: JobId, grace: Duration) -> Result<JobStatus, JobError> {
        let job = self.get(id)?;
        let stopping = self.runtime.spawn(async move {
            if job.signal(Signal::SIGTERM) && tokio::time::timeout(grace, job.wait_exited()).await.is_err() {
                job.signal(Signal::SIGKILL);
            }
            job.wait_finished().await;
            job.status()
        });
        stopping.await.map_err(|_| JobError::ShuttingDown)
    }

    /// Removes a job. A running job is killed (its whole group) and reaped
    /// first; its stored output is removed. Once this returns `Ok` the job
    /// is gone, and the cleanup completes even if the caller stops waiting.
    pub async fn delete(&self, id: JobId) -> Result<(), JobError> {
        let job = self.jobs().remove(&id).ok_or(JobError::NotFound(id))?;
        job.signal(Signal::SIGKILL);
        let cleanup = self.runtime.spawn(async move {
            job.wait_finished().await;
            job.forget();
        });
        // The task only fails if the runtime is shutting down, and then the
        // pool's drop does the cleanup.
        let _ = cleanup.await;
        Ok(())
    }

    /// Kills every job's process group and waits until each is reaped and
    /// its output drained. The records stay queryable.
    pub async fn shutdown(&self) {
        let jobs: Vec<Arc<Job>> = self.jobs().values().cloned().collect();
        for job in &jobs {
            job.signal(Signal::SIGKILL);
        }
        for job in &jobs {
            job.wait_finished().await;
        }
    }
}

impl Drop for JobPool {
    fn drop(&mut self) {
        let jobs = std::mem::take(&mut *self.jobs());
        for job in jobs.values() {
            // Synchronous kill and reap: the runtime may already be gone.
            job.reap();
            job.remove_group_blocking();
            job.forget();
        }
    }
}

/// Creates the pool's directory (0700) and removes spool files that an
/// earlier pool left in it. Other files are left alone.
fn take_over_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_str().is_some_and(spool::is_spool_file_name) {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Whether this pool can isolate a job: it needs its init program and the
/// privilege to make namespaces and mounts.
fn isolation_possible(config: &PoolConfig) -> Result<(), Unsupported> {
    if config.isolate_init.is_none() {
        return Err(Unsupported("this server cannot isolate jobs: it has no init program for them".into()));
    }
    if !nix::unistd::geteuid().is_root() {
        return Err(Unsupported(
            "this server cannot isolate jobs: making namespaces and mounts needs root".into(),
        ));
    }
    Ok(())
}
