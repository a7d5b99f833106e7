//! The watchdog of one job's start: a child that never reaches `exec` must
//! not hold anything up for long.
//!
//! A job's process is cloned with `CLONE_VFORK` ([`child`](super::child)):
//! the cloning thread waits until the child has called `exec` or exited. A
//! child that is stopped before that (SIGSTOP from another process of the
//! job's user once it has switched to that user, a debugger, a frozen
//! cgroup) would hold that thread forever. So the clone runs on a blocking
//! thread of the runtime, never on an async worker, and the async side
//! watches it: once the clone has waited [`STUCK_LIMIT`], the child is
//! killed through its pidfd (SIGKILL ends a stopped or frozen process too),
//! which ends the wait; the start then fails with [`stuck_error`].
//!
//! Invariants:
//!
//! * **Only the child of a pending clone is killed.** The pidfd that the
//!   kernel stores for the clone is used only while the phase is
//!   [`Phase::Cloning`], under the lock that the cloning thread takes to
//!   leave that phase; until then it owns the descriptor and is blocked in
//!   `clone`, so the descriptor is open and names that child.
//! * **A killed child is a failed start**, even if it reached `exec` just
//!   before the kill: the cloning thread reads [`Watchdog::cloned`] and
//!   reports the failure.

use std::io;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::{JoinError, JoinHandle};

/// How long a clone may wait for its child to reach `exec`. A start takes
/// milliseconds; this is only ever reached by a child that cannot run.
pub(crate) const STUCK_LIMIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Before,
    Cloning,
    Killed,
    Done,
}

/// Shared by the thread that clones and the task that watches it.
#[derive(Debug)]
pub(crate) struct Watchdog {
    /// Where the kernel stores the child's pidfd (`CLONE_PIDFD`); -1 before.
    pidfd: AtomicI32,
    phase: Mutex<Phase>,
    cloning: Notify,
}

impl Default for Watchdog {
    fn default() -> Self {
        Watchdog { pidfd: AtomicI32::new(-1), phase: Mutex::new(Phase::Before), cloning: Notify::new() }
    }
}

impl Watchdog {
    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where `clone` must store the child's pidfd.
    pub(super) fn pidfd_slot(&self) -> *mut libc::c_int {
        self.pidfd.as_ptr()
    }

    /// The cloning thread: `clone` is about to be called.
    pub(super) fn cloning(&self) {
        *self.phase() = Phase::Cloning;
        self.cloning.notify_one();
    }

    /// The cloning thread: `clone` returned. Returns the pidfd the kernel
    /// stored, and whether the watchdog killed the child.
    pub(super) fn cloned(&self) -> (libc::c_int, bool) {
        let mut phase = self.phase();
        let killed = *phase == Phase::Killed;
        *phase = Phase::Done;
        (self.pidfd.load(Ordering::SeqCst), killed)
    }

    /// Kills the child of a pending clone. Returns whether it did.
    fn kill(&self) -> bool {
        let mut phase = self.phase();
        let pidfd = self.pidfd.load(Ordering::SeqCst);
        if *phase != Phase::Cloning || pidfd < 0 {
            return false;
        }
        // SAFETY: see the module's invariants: `pidfd` is open and names
        // the child of the pending clone.
        let sent = unsafe {
            libc::syscall(libc::SYS_pidfd_send_signal, pidfd, libc::SIGKILL, std::ptr::null::<()>(), 0)
        };
        if sent < 0 {
            return false;
        }
        *phase = Phase::Killed;
        true
    }

    /// Waits for `task`, the blocking start that clones under this watchdog,
    /// killing the child once the clone has waited [`STUCK_LIMIT`].
    pub(crate) async fn watch<T>(&self, task: JoinHandle<T>) -> Result<T, JoinError> {
        tokio::pin!(task);
        tokio::select! {
            done = &mut task => return done,
            _ = self.cloning.notified() => {}
        }
        loop {
            match tokio::time::timeout(STUCK_LIMIT, &mut task).await {
                Ok(done) => return done,
                Err(_) if self.kill() => {
                    tracing::warn!("a job's process was stuck before running its program; killed it");
                }
                Err(_) => {}
            }
        }
    }
}

/// Why a start whose child the watchdog killed failed.
pub(crate) fn stuck_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!(
            "its process was stopped before it could run the program (a signal, a debugger or a frozen cgroup) and was killed after {} s",
            STUCK_LIMIT.as_secs()
        ),
    )
}
