//! What a pool allows (quotas), what it uses (counters), and who is told
//! about its process groups (a watcher), shared by the pool and its jobs.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Told of every job's process group: when it starts, and just before its
/// leader is reaped (after which its id may be reused). The server uses this
/// to keep a guard process informed, so that jobs do not outlive a server
/// killed with SIGKILL. Called on async worker threads: must not block.
pub trait GroupWatcher: Send + Sync + fmt::Debug {
    fn started(&self, pgid: u32);
    fn reaping(&self, pgid: u32);
}

/// Which quota a refused [`JobPool::try_create`](super::JobPool::try_create) hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    /// Jobs whose process has not finished.
    Running(usize),
    /// Jobs kept, finished or not, until deleted.
    Jobs(usize),
    /// Output bytes stored, all jobs together.
    StoredBytes(u64),
    /// Output bytes stored by every client's jobs together.
    Disk(u64),
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quota::Running(max) => {
                write!(f, "{max} jobs are running, the most allowed: wait for one to finish, or stop one")
            }
            Quota::Jobs(max) => {
                write!(f, "{max} jobs are kept, the most allowed: delete finished jobs to make room")
            }
            Quota::StoredBytes(max) => {
                write!(
                    f,
                    "your jobs' stored output reached {max} bytes, the most allowed: delete finished jobs to make room"
                )
            }
            Quota::Disk(max) => {
                write!(
                    f,
                    "the server's space for job output ({max} bytes, all clients together) is full: delete finished jobs, or ask the operator for more (serve --max-disk)"
                )
            }
        }
    }
}

/// Live counters of one pool. Updated by the pool and its jobs without locks.
#[derive(Debug, Default)]
pub(crate) struct Usage {
    pub running: AtomicUsize,
    pub jobs: AtomicUsize,
    pub stored: AtomicU64,
}

impl Usage {
    /// Takes one unit of `counter` if that keeps it at or under `max`.
    pub fn reserve(counter: &AtomicUsize, max: usize) -> bool {
        counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < max).then_some(n + 1)).is_ok()
    }

    pub fn release(counter: &AtomicUsize) {
        counter.fetch_sub(1, Ordering::SeqCst);
    }
}
