//! The job pool: start commands as supervised processes, keep their complete
//! output, let any number of readers follow it, and stop or delete them.
//!
//! This module knows nothing of HTTP or TLS; the server puts one [`JobPool`]
//! behind each client identity.
//!
//! # Design
//!
//! * **One process group per job.** A job's main process is spawned (via
//!   `posix_spawn`, no `pre_exec`) as the leader of a new process group with
//!   stdin from `/dev/null`, or from a pipe when its spec asks for one.
//!   Stopping or deleting a job signals the whole group, so its children go
//!   too.
//! * **Stdin has one writer, with back-pressure.** A job's stdin pipe goes to
//!   one [`StdinWriter`] at a time, which writes chunks straight into the pipe
//!   and takes the next only once it fits, so the pool buffers at most a
//!   chunk per job. The pipe is closed when the writer is done or when the
//!   job's main process exits, whichever comes first (see the `stdin` module).
//! * **Exit is observed without reaping.** Each job has a pidfd that becomes
//!   readable when the main process exits. Until the supervisor reaps the
//!   zombie, its pid (and so the group id) cannot be reused, so every
//!   `killpg` is guaranteed to hit the job's own group. Whoever takes the
//!   `Child` out of the job's state is the one that kills the rest of the
//!   group and reaps: after that no signal is ever sent again.
//! * **State lives on disk.** A [`Store`] owns the data directory (checked,
//!   locked, reached without following symlinks), the job records (SQLite)
//!   and the output files. A job is in memory only while it runs; once its
//!   end is recorded, the records answer for it, across restarts too.
//! * **Output is spooled to files, not memory.** Two pumps copy the job's
//!   stdout and stderr pipes into files in the pool's output folder, always
//!   draining the pipes so a job never blocks on output nobody reads. Past the
//!   per-job, per-pool or whole-store cap, bytes are read and dropped and
//!   the job is marked truncated, with the reason.
//!   A spool file is made with its stream's first byte, so the many jobs
//!   that print nothing cost no files.
//! * **One event per job.** A `tokio::sync::watch` channel carries the job's
//!   [`Progress`](spool::Progress): bytes spooled per stream, and whether the
//!   job has exited and finished. Readers ([`OutputReader`]) wait on it instead
//!   of polling, and read the spool files at their own pace, so a slow reader
//!   holds back only itself and keeps at most one chunk in memory.
//! * **Completed means complete.** When the main process exits, what is left
//!   of its group is killed, the pumps drain the pipes to EOF, and only then
//!   does the job's status turn `completed`.
//! * **Short locks.** The pool's map and each job's state are behind
//!   `std::sync::Mutex`es that are never held across a spawn, a wait, an
//!   `.await` or file I/O.

mod cgroup;
mod child;
mod data_dir;
mod error;
mod ids;
pub mod isolate;
mod job;
mod limits;
mod observer;
mod pool;
mod process;
mod records;
mod spec;
mod spool;
mod start;
mod status;
mod stdin;
mod store;
mod watchdog;

pub use cgroup::{Cgroups, ResourceUsage, Unsupported, purge as purge_cgroup_folder};
pub use data_dir::DataDirError;
pub use error::JobError;
pub use limits::{GroupWatcher, Quota};
pub use observer::JobObserver;
pub use pool::{
    CommandLineTooLong, Containment, DEFAULT_PAGE, JobPool, MAX_PAGE, PAGE_BYTES, Page, PoolConfig,
};
pub use records::RecordsError;
pub(crate) use spec::is_executable_file;
pub use spec::{JobSpec, Limits, RunAs};
pub use spool::{OutputReader, Stream, Truncation};
pub use start::StartLimit;
pub use status::{End, JobId, JobState, JobStatus, LOST_MESSAGE, Output, Status, Termination};
pub use stdin::{StdinCopied, StdinEnd, StdinRefused, StdinWriter};
pub use store::Store;
