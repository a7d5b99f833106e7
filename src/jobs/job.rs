//! One job while it lives in memory: its lifecycle, its supervisor task, and
//! the changes it sends to the records.
//!
//! A job is in its pool's live map from the moment it is made until its
//! finish is committed to the records; from then on the records alone
//! answer for it (see [`pool`](super::pool)).

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use nix::sys::signal::Signal;
use tokio::net::unix::pipe;
use tokio::sync::watch;

use super::data_dir::Folder;
use super::limits::Usage;
use super::process::{self, ExitEvent, Process, Spawned, Started};
use super::records::{Change, Ended, StartOutcome};
use super::spool::{self, OutputReader, Progress, Sink, Stream, Truncation};
use super::start::{Place, Reserved, Unclaimed};
use super::stdin::{StdinRefused, StdinSlot, StdinWriter};
use super::store::{self, Store};
use super::watchdog::Watchdog;
use super::{End, JobId, JobSpec, JobState, JobStatus, Limits, Output, PoolConfig, Termination};
use crate::cgroup::{JobGroup, ResourceUsage};

/// How long the pumps may keep draining after the job was killed. Only a
/// process that escaped the kill can hold a pipe open longer: one that left
/// the process group (with `setsid`) when the job has no cgroup, the
/// fallback. Its remaining output is then given up so the job can complete.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);

/// How long a job's cgroups may take to empty once killed (processes in
/// uninterruptible sleep exit late) before their removal is given up.
const RETIRE_LIMIT: Duration = Duration::from_secs(10);

/// The pauses between attempts to record a job's end that failed to.
const RECORD_RETRY_FIRST: Duration = Duration::from_millis(500);
const RECORD_RETRY_MAX: Duration = Duration::from_secs(30);

pub(crate) struct Job {
    pub id: JobId,
    pub command: String,
    pub args: Vec<String>,
    pub started_at: SystemTime,
    pub limits: Limits,
    /// The spec as its record holds it, to record the job again if its
    /// first record was lost.
    recorded_spec: String,
    /// The job's cgroups; `None` on a host without them (process group only).
    group: Option<JobGroup>,
    lifecycle: Mutex<Lifecycle>,
    stdin: StdinSlot,
    events: watch::Sender<Progress>,
    shared: Arc<Shared>,
}

struct Lifecycle {
    /// Present until the process is reaped. Whoever takes it kills what is
    /// left of the group and reaps; afterwards no signal may be sent.
    child: Option<Process>,
    /// `Running` until the job's end is committed to the records; `Done`
    /// from the start for a job that never started.
    state: JobState,
    output_error: Option<String>,
    /// The job's unit of its pool's running quota, until it finishes.
    running: Option<Reserved>,
}

/// What a start made of a job: a process to supervise, or the reason there
/// is none.
enum Launch {
    // Boxed: the failure is small, and a job is launched once.
    Started { group: Option<JobGroup>, started: Box<Started> },
    Failed { message: String },
}

/// What comes after a job is made.
enum Next {
    /// Its process runs: a supervisor watches it.
    Supervise(Supervision),
    /// It never started: its end, which it has from the start, is recorded.
    Record(End),
}

/// What the supervisor of a started job watches.
struct Supervision {
    pid: u32,
    exit: ExitEvent,
    pipes: [pipe::Receiver; 2],
}

/// What a pool shares with its jobs: its settings, its counters, where its
/// records and output go, and its live jobs.
pub(crate) struct Shared {
    pub config: PoolConfig,
    pub usage: Arc<Usage>,
    pub store: Arc<Store>,
    /// The name the pool's records are kept under.
    pub client: Arc<str>,
    /// The pool's output folder.
    pub folder: Arc<Folder>,
    /// Jobs whose finish is not yet committed to the records.
    pub live: Mutex<BTreeMap<JobId, Arc<Job>>>,
    /// The pool is shutting down: jobs it ends are lost, not completed.
    pub stopping: AtomicBool,
}

impl Shared {
    pub fn live(&self) -> MutexGuard<'_, BTreeMap<JobId, Arc<Job>>> {
        // A panic while holding this lock leaves plain data behind; keep going.
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a job is started with beyond its command: a JSON object for the
/// record.
fn spec_json(spec: &JobSpec) -> String {
    let limits = &spec.limits;
    serde_json::json!({
        "stdin": spec.stdin,
        "isolate": spec.isolate,
        "user": spec.run_as.as_ref().map(|u| &u.user),
        "limits": {
            "memory": limits.memory, "cpus": limits.cpus, "pids": limits.pids,
            "io_read_bps": limits.io_read_bps, "io_write_bps": limits.io_write_bps,
        },
    })
    .to_string()
}

/// The change that records job `id` as made.
fn create_change(
    shared: &Shared,
    id: JobId,
    spec: &JobSpec,
    recorded: &str,
    at: SystemTime,
    if_missing: bool,
) -> Change {
    Change::Create {
        client: Arc::clone(&shared.client),
        id,
        command: spec.command.clone(),
        args: spec.args.clone(),
        spec: recorded.to_owned(),
        at,
        if_missing,
    }
}

impl Job {
    /// Records the job, starts its process and supervisor, and puts it in
    /// the pool's live map. Never fails: a job that cannot start (no
    /// `place`: its pool is shutting down) is in the error state. Run it as
    /// a task of its own, so that a caller that stops waiting cannot leave a
    /// started process unsupervised.
    pub async fn start(
        id: JobId,
        spec: JobSpec,
        shared: Arc<Shared>,
        reserved: Reserved,
        place: Option<Place>,
    ) -> Arc<Job> {
        let created_at = SystemTime::now();
        let recorded_spec = spec_json(&spec);
        shared.store.records.send(create_change(&shared, id, &spec, &recorded_spec, created_at, false), None);
        let running = reserved.recorded();
        let launch = launch(&spec, &shared, place.is_some()).await;
        record_start(&shared, id, &launch, created_at);
        let (job, next) = Job::new(id, spec, recorded_spec, created_at, launch, running, shared);
        job.admit();
        // In the live map: a shutdown that drains the places sees it.
        drop(place);
        let supervised = Arc::clone(&job);
        match next {
            Next::Supervise(supervision) => tokio::spawn(supervised.supervise(supervision)),
            Next::Record(end) => tokio::spawn(async move { supervised.finish(end, created_at).await }),
        };
        job
    }

    /// The job as its start left it, and what comes next.
    fn new(
        id: JobId,
        spec: JobSpec,
        recorded_spec: String,
        created_at: SystemTime,
        launch: Launch,
        running: Reserved,
        shared: Arc<Shared>,
    ) -> (Arc<Job>, Next) {
        let (group, lifecycle, stdin, next) = match launch {
            Launch::Started { group, started } => {
                let Started { process, exit, stdin, stdout, stderr } = *started;
                let pid = process.id();
                let lifecycle = Lifecycle {
                    state: JobState::Running { pid, usage: ResourceUsage::default() },
                    child: Some(process),
                    output_error: None,
                    running: Some(running),
                };
                let supervision = Supervision { pid, exit, pipes: [stdout, stderr] };
                (group, lifecycle, StdinSlot::new(stdin), Next::Supervise(supervision))
            }
            // Never running: it does not count as such (`running` goes).
            Launch::Failed { message } => {
                let end = End::Failed { message };
                let lifecycle = Lifecycle {
                    state: JobState::Done { finished_at: created_at, end: end.clone() },
                    child: None,
                    output_error: None,
                    running: None,
                };
                (None, lifecycle, StdinSlot::never_started(spec.stdin), Next::Record(end))
            }
        };
        let job = Arc::new(Job {
            id,
            command: spec.command,
            args: spec.args,
            started_at: created_at,
            limits: spec.limits,
            recorded_spec,
            group,
            lifecycle: Mutex::new(lifecycle),
            stdin,
            events: watch::Sender::new(Progress::new(matches!(next, Next::Supervise(_)))),
            shared,
        });
        (job, next)
    }

    /// Tells the observer, and puts the job in the live map.
    fn admit(self: &Arc<Self>) {
        if let Some(observer) = &self.shared.config.observer {
            observer.started();
        }
        self.shared.live().insert(self.id, Arc::clone(self));
        // A shutdown that began while this one started may not see it.
        if self.shared.stopping.load(Ordering::SeqCst) {
            self.signal(Signal::SIGKILL);
        }
    }

    /// Drains the job's output, waits for its main process to exit, kills what
    /// is left of its group, reaps, and marks the job finished.
    async fn supervise(self: Arc<Self>, Supervision { pid, exit, pipes: [stdout, stderr] }: Supervision) {
        let sink = Sink {
            events: &self.events,
            folder: &self.shared.folder,
            id: self.id,
            output_limit: self.shared.config.output_limit,
            pool_stored: &self.shared.usage.stored,
            pool_limit: self.shared.config.max_stored_bytes,
            disk_stored: &self.shared.store.disk.stored,
            disk_limit: self.shared.store.disk.limit,
            report_error: &|stream, e| self.record_output_error(stream, e),
        };
        let pumps = async {
            tokio::join!(
                spool::pump(Stream::Stdout, stdout, &sink),
                spool::pump(Stream::Stderr, stderr, &sink)
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
            self.events.send_modify(|p| p.truncate(Truncation::Detached));
        }
        let (usage, oom_killed) = match &self.group {
            Some(group) => {
                let (usage, oom_kills) = self.retire(group).await;
                (usage, oom_kills > 0)
            }
            None => (ResourceUsage::default(), false),
        };
        if let JobState::Running { usage: counted, .. } = &mut self.lock().state {
            *counted = usage;
        }
        // Ended by the pool's shutdown: lost, not completed.
        let end = if self.shared.stopping.load(Ordering::SeqCst) {
            End::Lost { pid: Some(pid), usage, oom_killed }
        } else {
            // Someone else reaped (the pool was dropped): it was killed.
            let termination = termination.unwrap_or(Termination::Signaled(Signal::SIGKILL as i32));
            End::Completed { pid: Some(pid), termination, usage, oom_killed }
        };
        self.finish(end, SystemTime::now()).await;
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
        if let Some(watcher) = self.shared.config.containment.watcher() {
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

    /// Records how the job ended, and only once that is committed publishes
    /// it as finished and leaves the live map. If the record cannot be
    /// written the job stays in memory, so nothing a client was told is lost
    /// while this server runs.
    async fn finish(&self, end: End, at: SystemTime) {
        let progress = *self.events.borrow();
        let ended = Ended {
            end,
            at,
            stored: progress.stored_both(),
            truncated: progress.truncated.map(|t| t.to_string()),
            output_error: self.lock().output_error.clone(),
        };
        let shared = &self.shared;
        let recorded = shared
            .store
            .records
            .apply(Change::Finish { client: Arc::clone(&shared.client), id: self.id, ended: ended.clone() })
            .await;
        {
            let mut lifecycle = self.lock();
            lifecycle.state = JobState::Done { finished_at: at, end: ended.end.clone() };
            // No longer running (a job that never started gave it back then).
            drop(lifecycle.running.take());
        }
        self.events.send_modify(|p| {
            p.exited = true;
            p.finished = true;
        });
        if let Some(observer) = &shared.config.observer {
            observer.finished(&self.status());
        }
        match recorded {
            Ok(_) => drop(shared.live().remove(&self.id)),
            Err(_) => self.record_later(ended),
        }
    }

    /// Records the end of a job whose record could not be written when it
    /// finished (a full disk, say), trying again with growing pauses. Until
    /// then the job stays in the live map, so clients still see it; its
    /// create is written again first, in case that was what failed.
    fn record_later(&self, ended: Ended) {
        let shared = Arc::clone(&self.shared);
        let (id, at) = (self.id, self.started_at);
        let create = JobSpec::new(self.command.clone(), self.args.clone());
        let recorded_spec = self.recorded_spec.clone();
        tokio::spawn(async move {
            let mut pause = RECORD_RETRY_FIRST;
            for attempt in 2.. {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(RECORD_RETRY_MAX);
                let records = &shared.store.records;
                let deleted = !shared.live().contains_key(&id);
                if deleted || records.is_closed() || shared.stopping.load(Ordering::SeqCst) {
                    return;
                }
                let client = Arc::clone(&shared.client);
                records.send(create_change(&shared, id, &create, &recorded_spec, at, true), None);
                if records
                    .apply(Change::Finish { client: Arc::clone(&client), id, ended: ended.clone() })
                    .await
                    .is_ok()
                {
                    tracing::info!(client = %client, job = %id, attempt, "the job's record is written");
                    if shared.live().remove(&id).is_none() {
                        // Deleted while this was written: it goes again.
                        records.send(Change::Delete { client, id }, None);
                    }
                    return;
                }
            }
        });
    }

    pub fn status(&self) -> JobStatus {
        let truncated = self.events.borrow().truncated;
        let lifecycle = self.lock();
        let state = match (&lifecycle.state, &self.group, &lifecycle.child) {
            // Unreaped, so its cgroups are still there to read.
            (JobState::Running { pid, .. }, Some(group), Some(_)) => {
                JobState::Running { pid: *pid, usage: group.usage() }
            }
            (state, _, _) => state.clone(),
        };
        JobStatus {
            id: self.id,
            command: self.command.clone(),
            args: self.args.clone(),
            started_at: self.started_at,
            limits: self.limits,
            state,
            truncated: truncated.is_some(),
            truncated_reason: truncated.map(|t| t.to_string()),
            output_error: lifecycle.output_error.clone(),
        }
    }

    /// The one writer of the job's stdin pipe.
    pub fn stdin(&self) -> Result<StdinWriter, StdinRefused> {
        self.stdin.take(self.events.subscribe())
    }

    /// Output bytes stored so far, both streams.
    pub fn stored(&self) -> u64 {
        self.events.borrow().stored_both().iter().sum()
    }

    pub async fn wait_exited(&self) {
        let _ = self.events.subscribe().wait_for(|p| p.exited).await;
    }

    pub async fn wait_finished(&self) {
        let _ = self.events.subscribe().wait_for(|p| p.finished).await;
    }

    /// A reader of one stream from `offset`, following the job.
    pub fn reader(&self, stream: Stream, offset: u64) -> io::Result<OutputReader> {
        OutputReader::open(Arc::clone(&self.shared.folder), self.id, stream, offset, self.events.subscribe())
    }

    /// The output stored so far, both streams.
    pub fn output(&self) -> io::Result<Output> {
        let progress = *self.events.borrow();
        read_output(&self.shared.folder, self.id, progress.stored_both(), progress.truncated.is_some())
    }
}

/// The first `stored` bytes of each of job `id`'s spool files in `folder`. A
/// file that should hold bytes and cannot be opened is an error.
pub(crate) fn read_output(
    folder: &Folder,
    id: JobId,
    stored: [u64; 2],
    truncated: bool,
) -> io::Result<Output> {
    let mut output = Output { truncated, ..Output::default() };
    for (stream, buf) in [(Stream::Stdout, &mut output.stdout), (Stream::Stderr, &mut output.stderr)] {
        let len = usize::try_from(stored[stream.index()]).map_err(io::Error::other)?;
        if len == 0 {
            // Spool files are made with the first byte.
            continue;
        }
        let file: File = folder.open(&spool::file_name(id, stream))?;
        buf.resize(len, 0);
        std::os::unix::fs::FileExt::read_exact_at(&file, buf, 0)?;
    }
    Ok(output)
}

/// Starts the job's process, unless its pool is shutting down (it has no
/// `place`, or has begun to stop since).
async fn launch(spec: &JobSpec, shared: &Shared, has_place: bool) -> Launch {
    let contained = match has_place && !shared.stopping.load(Ordering::SeqCst) {
        true => start_contained(spec, &shared.config).await,
        false => Err(io::Error::other("its job pool is shutting down")),
    };
    match contained.map(Unclaimed::claim) {
        Ok((group, started)) => Launch::Started { group, started: Box::new(started) },
        Err(e) => Launch::Failed { message: format!("cannot start {:?}: {e}", spec.command) },
    }
}

/// Records how the job's start went, and tells the watcher of its process
/// group.
fn record_start(shared: &Shared, id: JobId, launch: &Launch, at: SystemTime) {
    let started = match launch {
        Launch::Started { started, .. } => {
            let pid = started.process.id();
            if let Some(watcher) = shared.config.containment.watcher() {
                watcher.started(pid);
            }
            StartOutcome::Running { pid, proc_start: store::process_start(pid) }
        }
        Launch::Failed { message } => StartOutcome::Failed { message: message.clone() },
    };
    shared.store.records.send(Change::Start { client: Arc::clone(&shared.client), id, started, at }, None);
}

/// Makes the job's cgroups (on a host that has them), starts its process
/// in them and registers it with the runtime, all on a blocking thread
/// under a [`Watchdog`]. What a start made is [`Unclaimed`] until its job
/// takes it.
async fn start_contained(spec: &JobSpec, config: &PoolConfig) -> io::Result<Unclaimed> {
    let watchdog = Arc::new(Watchdog::default());
    let blocking = {
        let (spec, watchdog) = (spec.clone(), Arc::clone(&watchdog));
        let (cgroups, init) = (config.containment.cgroups().cloned(), config.isolate_init.clone());
        tokio::task::spawn_blocking(move || {
            // Limits without cgroups were refused before the job was made.
            let group = cgroups.map(|cgroups| cgroups.create(&spec.limits)).transpose()?;
            let made = Unclaimed::new(group, RETIRE_LIMIT);
            // On this thread, as the failure of either may wait for the
            // child to exit.
            match process::start(&spec, &made.procs(), init.as_deref(), &watchdog).and_then(Spawned::register)
            {
                Ok(started) => Ok(made.started(started)),
                Err(e) => {
                    made.discard();
                    Err(e)
                }
            }
        })
    };
    watchdog.watch(blocking).await.map_err(io::Error::other)?
}
