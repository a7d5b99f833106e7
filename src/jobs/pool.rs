//! The pool: one client's jobs, their shared limits, and the calls on them.
//!
//! A job lives in the pool's memory only until its finish is recorded; from
//! then on every call answers from the records and the spool files. So the
//! memory a pool holds grows with its running jobs, not with its history,
//! and a pool opened after a restart answers for the jobs of the last one.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use nix::sys::signal::Signal;
use tokio::runtime::Handle;
use tokio::sync::watch;

use super::ids::Ids;
use super::job::{self, Job, Shared};
use super::limits::{GroupWatcher, Quota, Usage};
use super::records::{Change, Record};
use super::spool::{self, OutputReader, Progress, Stream};
use super::start::{Places, Reserved, StartLimit};
use super::stdin::{StdinRefused, StdinWriter};
use super::store::Store;
use super::watchdog::STUCK_LIMIT;
use super::{JobError, JobId, JobObserver, JobSpec, JobStatus, Limits, Output};
use crate::cgroup::{Cgroups, Unsupported};

/// Settings shared by every job of a pool. Made whole: [`PoolConfig::new`]
/// gives the defaults, and struct update syntax changes some
/// (`PoolConfig { max_jobs: 10, ..PoolConfig::new(dir) }`).
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// The data directory of a pool made with [`JobPool::new`], which owns
    /// it. Pools opened in a [`Store`] keep their data there instead.
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
    /// What holds each job's processes together (see [`Containment`]).
    pub containment: Containment,
    /// Told of every job's start and end.
    pub observer: Option<Arc<dyn JobObserver>>,
    /// The rcmd binary, which an isolated job runs as its process 1
    /// (`rcmd __init`). `None`: jobs cannot be isolated.
    pub isolate_init: Option<PathBuf>,
    /// The caps on job starts in progress: per pool, and over every pool
    /// made with a clone of this config (see [`StartLimit`]).
    pub start_limit: StartLimit,
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
            containment: Containment::None,
            observer: None,
            isolate_init: None,
            start_limit: StartLimit::default(),
        }
    }
}

/// What holds a job's processes together, so that all of them are killed
/// with it and none outlives it.
#[derive(Debug, Clone)]
pub enum Containment {
    /// The host's cgroups, shared by every pool of a server: each job gets
    /// its own group there, which nothing can leave, and which is how it is
    /// killed and limited.
    Cgroups(Arc<Cgroups>),
    /// No cgroups: each job is a process group, and this watcher (the
    /// server's guard) is told of every one as it starts and is reaped.
    /// Limits cannot be enforced.
    Guard(Arc<dyn GroupWatcher>),
    /// No cgroups and nobody watching: each job is a process group only.
    /// Limits cannot be enforced.
    None,
}

impl Containment {
    /// The host's cgroups, if jobs are contained in them.
    pub(crate) fn cgroups(&self) -> Option<&Arc<Cgroups>> {
        match self {
            Containment::Cgroups(cgroups) => Some(cgroups),
            Containment::Guard(_) | Containment::None => None,
        }
    }

    /// Who is told of every job's process group.
    pub(crate) fn watcher(&self) -> Option<&dyn GroupWatcher> {
        match self {
            Containment::Guard(watcher) => Some(&**watcher),
            Containment::Cgroups(_) | Containment::None => None,
        }
    }
}

/// How long [`JobPool::shutdown`] waits for the starts in progress: a stuck
/// one is killed by its watchdog within [`STUCK_LIMIT`], then its group is
/// removed.
const START_DRAIN_LIMIT: Duration = Duration::from_secs(2 * STUCK_LIMIT.as_secs());

/// Jobs listed per page when the caller asks for no particular size.
pub const DEFAULT_PAGE: usize = 100;
/// The most jobs listed per page.
pub const MAX_PAGE: usize = 1000;
/// Bytes of command lines listed per page, about: a page holds fewer jobs
/// when theirs are long, so a listing never holds much memory.
pub const PAGE_BYTES: usize = 1 << 20;

/// One page of a pool's jobs, by id.
#[derive(Debug, Clone)]
pub struct Page {
    pub jobs: Vec<JobStatus>,
    /// Where the next page starts (`after`), if there is one.
    pub next: Option<JobId>,
}

/// A thread-safe pool of jobs. Dropping it (or [`JobPool::shutdown`]) kills
/// every job (its cgroups and process group) and reaps it; the records stay.
pub struct JobPool {
    shared: Arc<Shared>,
    ids: Ids,
    /// This pool's places among the starts in progress.
    places: Places,
    runtime: Handle,
    /// Made by [`JobPool::new`]: the store is the pool's own, and closes
    /// with it.
    owns_store: bool,
}

/// A job the pool knows: alive in memory, or in the records.
enum Found {
    Live(Arc<Job>),
    Recorded(Box<Record>),
}

impl JobPool {
    /// A pool of its own in `config.data_dir`, which it opens as a [`Store`]
    /// (locked for the pool's life) with no cap on disk use beyond the pool's.
    pub fn new(config: PoolConfig) -> Result<Self, JobError> {
        Handle::try_current().map_err(|_| JobError::NoRuntime)?;
        let store = Store::open(&config.data_dir, Some(u64::MAX))?;
        let mut pool = JobPool::open(&store, "", config)?;
        pool.owns_store = true;
        Ok(pool)
    }

    /// The pool of `client` in `store`, with the jobs its records hold. Jobs
    /// are supervised on the current tokio runtime.
    pub fn open(store: &Arc<Store>, client: &str, config: PoolConfig) -> Result<Self, JobError> {
        let runtime = Handle::try_current().map_err(|_| JobError::NoRuntime)?;
        let folder = store
            .client_folder(client)
            .map_err(|source| JobError::Io { path: store.path().into(), source })?;
        let recorded = store
            .records
            .usage(client)
            .map_err(|e| JobError::Records { path: store.path().into(), source: e.into() })?;
        let usage = Usage::default();
        usage.jobs.store(recorded.jobs as usize, Ordering::SeqCst);
        usage.stored.store(recorded.stored, Ordering::SeqCst);
        let client: Arc<str> = client.into();
        Ok(JobPool {
            ids: Ids::new(Arc::clone(&client), recorded.last_id),
            places: Places::new(config.start_limit.clone()),
            shared: Arc::new(Shared {
                config,
                usage: Arc::new(usage),
                store: Arc::clone(store),
                client,
                folder: Arc::new(folder),
                live: Mutex::new(BTreeMap::new()),
                stopping: AtomicBool::new(false),
            }),
            runtime,
            owns_store: false,
        })
    }

    fn records_error(&self, source: rusqlite::Error) -> JobError {
        JobError::Records { path: self.shared.store.path().into(), source: source.into() }
    }

    fn find(&self, id: JobId) -> Result<Found, JobError> {
        if let Some(job) = self.shared.live().get(&id) {
            return Ok(Found::Live(Arc::clone(job)));
        }
        // A job leaves the live map only once its record is committed.
        match self.shared.store.records.get(&self.shared.client, id) {
            Ok(Some(record)) => Ok(Found::Recorded(Box::new(record))),
            Ok(None) => Err(JobError::NotFound(id)),
            Err(e) => Err(self.records_error(e)),
        }
    }

    /// Starts a job and returns its id. Refuses a job that would exceed one
    /// of the pool's quotas or the server's disk budget, that asks for what
    /// this pool cannot do (limits without cgroups, isolation without its
    /// init), or whose command line the kernel would refuse, saying which.
    /// A job that passes is always created: one whose process cannot start
    /// has status `Error` with the reason.
    pub async fn try_create(&self, spec: JobSpec) -> Result<JobId, JobError> {
        let (config, usage, disk) = (&self.shared.config, &self.shared.usage, &self.shared.store.disk);
        command_line_fits(&spec)?;
        if usage.stored.load(Ordering::SeqCst) >= config.max_stored_bytes {
            return Err(JobError::Quota(Quota::StoredBytes(config.max_stored_bytes)));
        }
        if disk.stored.load(Ordering::SeqCst) >= disk.limit {
            return Err(JobError::Quota(Quota::Disk(disk.limit)));
        }
        match config.containment.cgroups() {
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
        let reserved = Reserved::take(&self.shared.usage, config.max_jobs, config.max_running)
            .map_err(JobError::Quota)?;
        Ok(self.start(spec, reserved).await)
    }

    /// Starts a job whose quota units are `reserved`, once it has a place
    /// among the starts in progress, and returns once it is running (or has
    /// failed to start). A caller that stops waiting for the place gives
    /// the units back; once the job has its id, it is made whole anyway.
    async fn start(&self, spec: JobSpec, reserved: Reserved) -> JobId {
        let place = self.places.enter().await;
        let id = self.ids.next(&self.shared.store.records);
        // A task of its own: the job is made whole even if this caller stops
        // waiting. It fails only if the runtime is shutting down.
        let _ = self.runtime.spawn(Job::start(id, spec, Arc::clone(&self.shared), reserved, place)).await;
        id
    }

    /// Job starts of this pool in progress: each holds a blocking thread
    /// until its process has called `exec`.
    pub fn starts_in_progress(&self) -> usize {
        self.places.in_progress()
    }

    /// Job starts of this pool waiting for a place (see [`StartLimit`]).
    pub fn starts_waiting(&self) -> usize {
        self.places.waiting()
    }

    /// The writer of a job's stdin: one at a time, and only for a job created
    /// with `stdin` that still runs. See [`StdinWriter::copy_from`].
    pub fn stdin(&self, id: JobId) -> Result<StdinWriter, JobError> {
        let refused = match self.find(id)? {
            Found::Live(job) => job.stdin(),
            Found::Recorded(r) if r.stdin => Err(StdinRefused::Ended),
            Found::Recorded(_) => Err(StdinRefused::NotPiped),
        };
        refused.map_err(|refused| JobError::Stdin { id, refused })
    }

    pub fn status(&self, id: JobId) -> Result<JobStatus, JobError> {
        Ok(match self.find(id)? {
            Found::Live(job) => job.status(),
            Found::Recorded(record) => record.status,
        })
    }

    /// Output bytes stored by the pool's jobs, both streams, all together.
    pub fn stored_bytes(&self) -> u64 {
        self.shared.usage.stored.load(Ordering::Relaxed)
    }

    /// Up to `limit` jobs (at most [`MAX_PAGE`], fewer if their command
    /// lines are long) with ids above `after`, ascending, and where the next
    /// page starts.
    pub fn list_page(&self, after: JobId, limit: usize) -> Result<Page, JobError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let recorded = self.shared.store.records.page(&self.shared.client, after, limit + 1, PAGE_BYTES);
        let recorded = recorded.map_err(|e| self.records_error(e))?;
        // Live jobs are newer than their records, and some are not recorded yet.
        let live: Vec<Arc<Job>> = {
            let live = self.shared.live();
            let above = (std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded);
            live.range(above).take(limit + 1).map(|(_, job)| Arc::clone(job)).collect()
        };
        let mut merged: BTreeMap<JobId, JobStatus> =
            recorded.into_iter().map(|r| (r.status.id, r.status)).collect();
        merged.extend(live.iter().map(|job| (job.id, job.status())));
        let mut size = 0;
        let fits = merged.values().take_while(|job| {
            size += job.command_line_len();
            size <= PAGE_BYTES
        });
        let keep = fits.count().clamp(1, limit);
        let mut jobs: Vec<JobStatus> = merged.into_values().take(keep + 1).collect();
        let next = (jobs.len() > keep).then(|| {
            jobs.truncate(keep);
            jobs[keep - 1].id
        });
        Ok(Page { jobs, next })
    }

    /// Every job of the pool, by id. Prefer [`JobPool::list_page`]: this
    /// holds every record in memory at once.
    pub fn list(&self) -> Result<Vec<JobStatus>, JobError> {
        let mut all = Vec::new();
        let mut after = JobId(0);
        loop {
            let page = self.list_page(after, MAX_PAGE)?;
            all.extend(page.jobs);
            match page.next {
                Some(next) => after = next,
                None => return Ok(all),
            }
        }
    }

    /// Everything the job has written so far, both streams. For large
    /// output prefer [`JobPool::reader`], which holds one chunk at a time.
    pub fn output(&self, id: JobId) -> Result<Output, JobError> {
        let output = match self.find(id)? {
            Found::Live(job) => job.output(),
            Found::Recorded(r) => job::read_output(&self.shared.folder, id, r.stored, r.status.truncated),
        };
        output.map_err(|source| JobError::ReadOutput { id, source })
    }

    /// A reader that follows one stream of a job from byte `offset`.
    pub fn reader(&self, id: JobId, stream: Stream, offset: u64) -> Result<OutputReader, JobError> {
        let reader = match self.find(id)? {
            Found::Live(job) => job.reader(stream, offset),
            Found::Recorded(r) => {
                // Over, with all it will ever have: nothing to wait for.
                let (_, events) = watch::channel(Progress::over(r.stored));
                OutputReader::open(Arc::clone(&self.shared.folder), id, stream, offset, events)
            }
        };
        reader.map_err(|source| JobError::ReadOutput { id, source })
    }

    /// Waits until the job has finished, and returns its final status.
    pub async fn wait(&self, id: JobId) -> Result<JobStatus, JobError> {
        match self.find(id)? {
            Found::Live(job) => {
                job.wait_finished().await;
                Ok(job.status())
            }
            Found::Recorded(record) => Ok(record.status),
        }
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
        let job = match self.find(id)? {
            Found::Live(job) => job,
            Found::Recorded(record) => return Ok(record.status),
        };
        let stopping = self.runtime.spawn(async move {
            if job.signal(Signal::SIGTERM) && tokio::time::timeout(grace, job.wait_exited()).await.is_err() {
                job.signal(Signal::SIGKILL);
            }
            job.wait_finished().await;
            job.status()
        });
        stopping.await.map_err(|_| JobError::ShuttingDown)
    }

    /// Removes a job: a running job is killed (its whole group) and reaped
    /// first; then its output files and its record go. Once this returns
    /// `Ok` the job is gone, and the cleanup completes even if the caller
    /// stops waiting.
    pub async fn delete(&self, id: JobId) -> Result<(), JobError> {
        let live = match self.find(id)? {
            Found::Live(job) => Some(job),
            Found::Recorded(_) => None,
        };
        let shared = Arc::clone(&self.shared);
        let cleanup = self.runtime.spawn(async move {
            if let Some(job) = &live {
                job.signal(Signal::SIGKILL);
                job.wait_finished().await;
            }
            // Files first: on a full disk that makes room for the record's
            // change. A record left without its files says so when read.
            for name in Stream::BOTH.map(|stream| spool::file_name(id, stream)) {
                if let Err(e) = shared.folder.remove(&name) {
                    tracing::warn!(job = %id, file = name, error = %e, "cannot remove a spool file");
                }
            }
            let deleted =
                shared.store.records.apply(Change::Delete { client: Arc::clone(&shared.client), id }).await;
            // A job whose record failed is still live: it goes now.
            let was_live = shared.live().remove(&id).is_some();
            let bytes = match (deleted, &live) {
                (Ok(Some(recorded)), None) => recorded,
                (Ok(Some(_)), Some(job)) => job.stored(),
                // Live with no row (its create failed), or its row failed to go.
                (Ok(None) | Err(_), Some(job)) if was_live => job.stored(),
                (Err(e), None) => return Err(JobError::Record(e)),
                // Someone else deleted it meanwhile.
                _ => return Err(JobError::NotFound(id)),
            };
            Usage::release(&shared.usage.jobs);
            shared.usage.stored.fetch_sub(bytes, Ordering::SeqCst);
            shared.store.disk.stored.fetch_sub(bytes, Ordering::SeqCst);
            Ok(())
        });
        // The task only fails if the runtime is shutting down.
        cleanup.await.map_err(|_| JobError::ShuttingDown)?
    }

    /// Deletes finished jobs that finished before `before`, with their
    /// output. Returns how many.
    pub async fn delete_finished_before(&self, before: SystemTime) -> Result<usize, JobError> {
        const BATCH: usize = 500;
        let mut deleted = 0;
        loop {
            let ids = self.shared.store.records.finished_before(&self.shared.client, before, BATCH);
            let ids = ids.map_err(|e| self.records_error(e))?;
            for &id in &ids {
                match self.delete(id).await {
                    Ok(()) => deleted += 1,
                    Err(JobError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            if ids.len() < BATCH {
                return Ok(deleted);
            }
        }
    }

    /// Kills every job's process group and waits until each is reaped, its
    /// output drained and its end recorded: as lost, as a server's jobs are
    /// when it stops. The records stay.
    pub async fn shutdown(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // A start in progress puts its job in the live map before it gives
        // its place back; one stuck before `exec` ends within the watchdog's
        // limit. Those that start meanwhile are killed below.
        if !self.places.drain(START_DRAIN_LIMIT).await {
            tracing::warn!(client = %self.shared.client, "job starts are still in progress; their processes are killed when their cgroups are removed");
        }
        let jobs: Vec<Arc<Job>> = self.shared.live().values().cloned().collect();
        for job in &jobs {
            job.signal(Signal::SIGKILL);
        }
        for job in &jobs {
            job.wait_finished().await;
        }
        self.ids.release_unused(&self.shared.store.records).await;
    }
}

impl Drop for JobPool {
    fn drop(&mut self) {
        // Jobs it ends are lost, whoever records their end.
        self.shared.stopping.store(true, Ordering::SeqCst);
        let jobs = std::mem::take(&mut *self.shared.live());
        for job in jobs.values() {
            // Synchronous kill and reap: the runtime may already be gone.
            // Their records stay as they are: the next store marks them lost.
            job.reap();
            job.remove_group_blocking();
        }
        if self.owns_store {
            self.shared.store.close();
        }
    }
}

/// A command line the kernel would refuse with E2BIG.
#[derive(Debug, thiserror::Error)]
pub enum CommandLineTooLong {
    #[error("an argument of {len} bytes is longer than the kernel allows ({max} bytes)")]
    Argument { len: usize, max: usize },
    #[error("the command line and environment take {len} bytes, more than the kernel allows ({max} bytes)")]
    Total { len: usize, max: usize },
}

/// Refuses a command line the kernel would refuse with E2BIG, before any of
/// it is kept: one string longer than MAX_ARG_STRLEN, or arguments and
/// environment together over ARG_MAX.
fn command_line_fits(spec: &JobSpec) -> Result<(), CommandLineTooLong> {
    /// The kernel's MAX_ARG_STRLEN: 32 pages, with the terminating NUL.
    const MAX_ARG_STRLEN: usize = 32 * 4096;
    let pointer = std::mem::size_of::<usize>();
    let words = std::iter::once(&spec.command).chain(&spec.args);
    if let Some(long) = words.clone().find(|w| w.len() + 1 > MAX_ARG_STRLEN) {
        return Err(CommandLineTooLong::Argument { len: long.len(), max: MAX_ARG_STRLEN - 1 });
    }
    let env: usize = match spec.environment() {
        Some(env) => env.iter().map(|(k, v)| k.len() + v.len() + 2 + pointer).sum(),
        None => std::env::vars_os().map(|(k, v)| k.len() + v.len() + 2 + pointer).sum(),
    };
    let args: usize = words.map(|w| w.len() + 1 + pointer).sum();
    let arg_max =
        nix::unistd::sysconf(nix::unistd::SysconfVar::ARG_MAX).ok().flatten().unwrap_or(1 << 21) as usize;
    if args + env > arg_max {
        return Err(CommandLineTooLong::Total { len: args + env, max: arg_max });
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
