//! The job pool: start commands as supervised processes, keep their complete
//! output, let any number of readers follow it, and stop or delete them.
//!
//! This module knows nothing of HTTP or TLS; the server puts one [`JobPool`]
//! behind each client identity.
//!
//! # Design
//!
//! * **One cgroup and one process group per job.** A job's main process is
//!   started by `clone` (with `CLONE_VM | CLONE_VFORK`, so its cost does not
//!   grow with the server's memory) and `exec`, on a blocking thread under a
//!   watchdog. Before `exec` it is the leader of a new process group and a
//!   member of the job's own cgroups (on a host that has them), with stdin
//!   from `/dev/null`, or from a pipe when its spec asks for one. What holds
//!   a job together is the pool's [`Containment`]: its cgroups, which
//!   nothing can leave, or (without cgroups) its process group, which the
//!   server's guard is told of.
//! * **Stops escalate; kills reach everything.** A stop sends SIGTERM to the
//!   job's process group, then after the grace period SIGKILL. A SIGKILL (a
//!   stop's second step, a delete, a shutdown, the main process's exit) goes
//!   to every process of the job's cgroups and to its process group, so its
//!   children go too, wherever they moved.
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
//!   job and reaps: after that no signal is ever sent again.
//! * **A job's life is an enum.** [`JobState`]: starting, running (a pid),
//!   or done with one [`End`]: failed to start (a message), completed (a
//!   termination, usage, OOM kills) or lost (its server stopped). Each state
//!   carries only its own data, and the records' finish takes an `End`, so
//!   no impossible state can be written. It serialises, for an upgrade in
//!   place to hand over.
//! * **State lives on disk.** A [`Store`] owns the data directory (checked,
//!   locked, reached without following symlinks), the job records (SQLite,
//!   with a schema version) and the output files. A job is in memory only
//!   while it runs; once its end is recorded, the records answer for it,
//!   across restarts too.
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
//!   of the job is killed, the pumps drain the pipes to EOF, its cgroups are
//!   emptied, counted and removed, and only then does the job's status turn
//!   `completed`.
//! * **Short locks.** The pool's map and each job's state are behind
//!   `std::sync::Mutex`es that are never held across a spawn, a wait, an
//!   `.await` or file I/O.
//!
//! # Modules
//!
//! * `pool`: [`JobPool`], one client's jobs and the calls on them, and
//!   [`PoolConfig`].
//! * `job`: one job while it lives in memory: its start, supervisor and end.
//! * `status`: [`JobState`] and the snapshots the pool hands out.
//! * `spec`: what a job is started with ([`JobSpec`], [`Limits`], [`RunAs`]).
//! * `start`: what a start holds until its job is made (quota units, a
//!   place among the starts in progress, an unclaimed process).
//! * `process`: preparing a job's process, and the handles its supervisor
//!   keeps (the unreaped leader, its pidfd, its pipes).
//! * `child`: the code a new process runs between `clone` and `exec`.
//! * `watchdog`: kills a child whose start never reaches `exec`.
//! * `isolate`: the init of an isolated job (`rcmd __init`).
//! * `cgroup`: per-job cgroups, their limits and what they counted.
//! * `stdin`: a job's stdin pipe and its one writer.
//! * `spool`: output pumps, the progress event, and readers that follow.
//! * `limits`: a pool's quotas and counters, and the [`GroupWatcher`].
//! * `ids`: job ids, never given twice, not even across a crash.
//! * `store`: the data directory's layout, and recovery from the last server.
//! * `records`: the job records in SQLite, their schema version and its
//!   migrations.
//! * `data_dir`: the checked, locked data directory and its folders.
//! * `observer`: who is told of every job's start and end ([`JobObserver`]).
//! * `error`: [`JobError`], the errors of the pool's calls.

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

pub use crate::cgroup::{Cgroups, ResourceUsage, Unsupported, purge as purge_cgroup_folder};
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
