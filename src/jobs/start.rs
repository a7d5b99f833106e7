//! What a job's start holds until its job is made: units of its pool's
//! quotas ([`Reserved`]), a place among the starts in progress
//! ([`Place`]), and its new cgroup and process ([`Unclaimed`]). Each is
//! given back when dropped, so a start whose caller stops waiting, that
//! panics, or whose task the runtime drops at its shutdown, leaks none of
//! them.
//!
//! A start clones the job's process on one of the runtime's blocking
//! threads, which also serve the file IO of everything else, and a start
//! whose child is stopped before `exec` holds its thread until the
//! [watchdog](super::watchdog) kills the child. So starts in progress are
//! capped, by two counts of places taken in this order:
//!
//! * **Per pool** (one client), [`StartLimit::per_pool`]: one client's
//!   stuck starts fill at most its own share, and its further starts wait
//!   in its own line, not in everyone's.
//! * **Server-wide**, [`StartLimit::total`], shared by the pools of one
//!   [`PoolConfig`](super::PoolConfig) template: the most blocking threads
//!   that starts can hold. Its line is first come, first served, and each
//!   pool has at most its share in it, so a start waits for at most that
//!   many places per other pool, each held for at most the watchdog's
//!   limit: never forever.
//!
//! Invariants:
//!
//! * **Waiting holds nothing else.** A start waits for its places with only
//!   its reserved quota units in hand (no lock, no job id, no record); a
//!   caller that stops waiting drops them, and they are given back.
//! * **A place is held until the job is in its pool's live map** (or has
//!   failed to start), so a pool that [drains](Places::drain) its places
//!   sees every job that was started.
//! * **A drained pool starts nothing.** Once [`Places::drain`] has begun,
//!   every start that gets a place or waits for one is told to give up.
//! * **Nothing started is unsupervised.** A job's cgroup and process are
//!   [`Unclaimed`] until its job takes them; dropped before that, they are
//!   killed, reaped and removed, off the async workers.

use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::limits::{Quota, Usage};
use super::process::{self, Started};
use crate::cgroup::JobGroup;

/// The caps on starts in progress.
#[derive(Debug, Clone)]
pub struct StartLimit {
    all: Arc<Semaphore>,
    total: usize,
    per_pool: usize,
}

impl StartLimit {
    /// Starts in progress over every pool that shares this limit. A start
    /// that runs is about 1 ms of one CPU, so a few per CPU keep the
    /// machine busy; 16 is that for the small servers this runs on, and
    /// costs at most 16 of the runtime's 512 blocking threads when every
    /// start is stuck.
    pub const DEFAULT_TOTAL: usize = 16;
    /// Starts in progress per pool: a quarter of the total, so that it takes
    /// four clients whose starts all stick to fill every place.
    pub const DEFAULT_PER_POOL: usize = 4;

    /// `per_pool` is at most `total`; both at least 1.
    pub fn new(total: usize, per_pool: usize) -> StartLimit {
        let total = total.max(1);
        StartLimit { all: Arc::new(Semaphore::new(total)), total, per_pool: per_pool.clamp(1, total) }
    }

    pub fn total(&self) -> usize {
        self.total
    }

    pub fn per_pool(&self) -> usize {
        self.per_pool
    }

    /// Starts in progress over every pool that shares this limit.
    pub fn in_progress(&self) -> usize {
        self.total - self.all.available_permits()
    }
}

impl Default for StartLimit {
    fn default() -> Self {
        StartLimit::new(Self::DEFAULT_TOTAL, Self::DEFAULT_PER_POOL)
    }
}

/// One pool's places among the starts in progress.
#[derive(Debug)]
pub(crate) struct Places {
    own: Arc<Semaphore>,
    limit: StartLimit,
    /// Starts waiting for a place.
    waiting: AtomicUsize,
}

/// A place of each count, held while a job starts.
#[derive(Debug)]
pub(crate) struct Place {
    _own: OwnedSemaphorePermit,
    _all: OwnedSemaphorePermit,
}

/// A start waiting for a place, counted until dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Places {
    pub fn new(limit: StartLimit) -> Places {
        Places { own: Arc::new(Semaphore::new(limit.per_pool)), limit, waiting: AtomicUsize::new(0) }
    }

    /// Waits for a place of this pool, then for one of the server's.
    /// `None`: the pool is draining, and nothing may start.
    pub async fn enter(&self) -> Option<Place> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.waiting);
        let own = Arc::clone(&self.own).acquire_owned().await.ok()?;
        let all = Arc::clone(&self.limit.all).acquire_owned().await.ok()?;
        Some(Place { _own: own, _all: all })
    }

    /// Starts of this pool in progress (holding a place).
    pub fn in_progress(&self) -> usize {
        self.limit.per_pool - self.own.available_permits()
    }

    /// Starts of this pool waiting for a place.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Waits (for at most `limit`) until no start of this pool is in
    /// progress, and from then on gives no place. Starts that get a place
    /// meanwhile see `stopping` set and give it back at once. Returns
    /// whether every start ended in time.
    pub async fn drain(&self, limit: Duration) -> bool {
        let all = Arc::clone(&self.own).acquire_many_owned(self.limit.per_pool as u32);
        let drained = tokio::time::timeout(limit, all).await.is_ok_and(|all| all.is_ok());
        self.own.close();
        drained
    }
}

/// A job's units of its pool's quotas, taken before it starts: one of the
/// jobs kept and one of the jobs running. Each is given back when this is
/// dropped, unless it was handed on: the jobs unit to the job's record once
/// that is sent ([`Reserved::recorded`]), which a delete gives back.
pub(crate) struct Reserved {
    usage: Arc<Usage>,
    jobs: bool,
    running: bool,
}

impl Reserved {
    /// Takes a unit of each, within `max_jobs` and `max_running`.
    pub fn take(usage: &Arc<Usage>, max_jobs: usize, max_running: usize) -> Result<Reserved, Quota> {
        if !Usage::reserve(&usage.jobs, max_jobs) {
            return Err(Quota::Jobs(max_jobs));
        }
        // From here on, dropping it gives back what it holds.
        let mut reserved = Reserved { usage: Arc::clone(usage), jobs: true, running: false };
        if !Usage::reserve(&usage.running, max_running) {
            return Err(Quota::Running(max_running));
        }
        reserved.running = true;
        Ok(reserved)
    }

    /// The job's record is sent: it holds the jobs unit from now on. What
    /// is left is the running unit, given back when the job finishes.
    pub fn recorded(mut self) -> Reserved {
        self.jobs = false;
        self
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        let usage = &self.usage;
        if self.jobs {
            Usage::release(&usage.jobs);
        }
        if self.running {
            Usage::release(&usage.running);
        }
    }
}

/// A new job's cgroup (if it has one) and, once started, its process,
/// until its job takes them ([`Unclaimed::claim`]). Dropped before that,
/// everything in them is killed, the process reaped and the group removed,
/// on a blocking thread.
pub(crate) struct Unclaimed {
    group: Option<JobGroup>,
    started: Option<Started>,
    /// How long removing the group may wait for its processes to exit.
    retire_limit: Duration,
}

impl Unclaimed {
    pub fn new(group: Option<JobGroup>, retire_limit: Duration) -> Unclaimed {
        Unclaimed { group, started: None, retire_limit }
    }

    /// The open `cgroup.procs` files the job's process joins its groups by.
    pub fn procs(&self) -> Vec<RawFd> {
        self.group.as_ref().map_or(Vec::new(), JobGroup::procs)
    }

    /// Its process is started (and in its groups).
    pub fn started(mut self, started: Started) -> Unclaimed {
        if let Some(group) = &mut self.group {
            group.joined();
        }
        self.started = Some(started);
        self
    }

    /// The job takes its group and process (started: see
    /// [`Unclaimed::started`]).
    pub fn claim(mut self) -> (Option<JobGroup>, Started) {
        let started = self.started.take().expect("claimed once started");
        (self.group.take(), started)
    }

    /// Kills, reaps and removes all it holds now: on a blocking thread.
    pub fn discard(mut self) {
        release(self.group.take(), self.started.take(), self.retire_limit);
    }
}

impl Drop for Unclaimed {
    fn drop(&mut self) {
        let (group, started, limit) = (self.group.take(), self.started.take(), self.retire_limit);
        if group.is_none() && started.is_none() {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(move || release(group, started, limit))),
            Err(_) => release(group, started, limit),
        }
    }
}

/// Kills everything in `group` and the process group of `started`, reaps
/// its process, and removes the group. Blocks.
fn release(group: Option<JobGroup>, started: Option<Started>, retire_limit: Duration) {
    if let Some(group) = &group {
        group.kill();
    }
    if let Some(started) = started {
        // Unreaped until the wait: the process group's id is still its own.
        process::signal_group(started.process.id(), Signal::SIGKILL);
        let _ = started.process.wait();
    }
    if let Some(group) = group {
        group.remove_blocking(retire_limit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(usage: &Usage) -> (usize, usize) {
        (usage.jobs.load(Ordering::SeqCst), usage.running.load(Ordering::SeqCst))
    }

    #[test]
    fn reserved_units_come_back_when_dropped_unless_handed_on() {
        let usage = Arc::new(Usage::default());
        let reserved = Reserved::take(&usage, 1, 1).unwrap();
        assert_eq!(counts(&usage), (1, 1));
        assert!(matches!(Reserved::take(&usage, 1, 5), Err(Quota::Jobs(1))));
        assert_eq!(counts(&usage), (1, 1), "a refused take holds nothing");
        // Dropped before the job is made (a caller gone, a panic): both back.
        drop(reserved);
        assert_eq!(counts(&usage), (0, 0));
        assert!(matches!(Reserved::take(&usage, 5, 0), Err(Quota::Running(0))));
        assert_eq!(counts(&usage), (0, 0), "the jobs unit taken first went back");
        // Once recorded, the record holds the jobs unit; the running one
        // goes when the job is done with it.
        let running = Reserved::take(&usage, 1, 1).unwrap().recorded();
        assert_eq!(counts(&usage), (1, 1));
        drop(running);
        assert_eq!(counts(&usage), (1, 0));
    }

    #[test]
    fn a_panic_while_starting_gives_the_units_back() {
        let usage = Arc::new(Usage::default());
        let start = std::panic::catch_unwind(|| {
            let _reserved = Reserved::take(&usage, 10, 10).unwrap();
            panic!("a bug while starting");
        });
        assert!(start.is_err());
        assert_eq!(counts(&usage), (0, 0));
    }

    #[tokio::test]
    async fn a_pool_has_its_share_of_places_and_a_drained_pool_gives_none() {
        let limit = StartLimit::new(3, 2);
        let (a, b) = (Places::new(limit.clone()), Places::new(limit.clone()));
        let (first, second) = (a.enter().await.unwrap(), a.enter().await.unwrap());
        let third = tokio::spawn(async move { a.enter().await.map(drop).map(|_| a) });
        while limit.in_progress() < 2 {
            tokio::task::yield_now().await;
        }
        let other = b.enter().await.expect("another pool still has a place");
        assert_eq!((limit.in_progress(), b.in_progress()), (3, 1));
        drop((first, other));
        let a = third.await.unwrap().expect("the waiting start got the place given back");
        drop(second);
        assert!(a.drain(Duration::from_secs(60)).await, "nothing in progress");
        assert!(a.enter().await.is_none(), "a drained pool gives no place");
        assert_eq!((a.waiting(), limit.in_progress()), (0, 0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_start_that_panics_before_its_job_claims_its_process_leaves_none() {
        let started = tokio::task::spawn_blocking(|| {
            let spec = super::super::JobSpec::new("sleep", vec!["1000".into()]);
            let watchdog = super::super::watchdog::Watchdog::default();
            let started = process::start(&spec, &[], None, &watchdog).and_then(process::Spawned::register);
            let made = Unclaimed::new(None, Duration::from_secs(10)).started(started.unwrap());
            let pid = made.started.as_ref().unwrap().process.id();
            let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                let _made = made;
                panic!("a bug between the start and the job");
            }));
            (pid, unwound.is_err())
        });
        let (pid, panicked) = started.await.unwrap();
        assert!(panicked);
        // Killed and reaped (by a blocking task of its own): gone entirely.
        let gone = std::path::PathBuf::from(format!("/proc/{pid}"));
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while gone.exists() {
            assert!(std::time::Instant::now() < deadline, "process {pid} is still there");
            tokio::task::yield_now().await;
        }
    }
}
