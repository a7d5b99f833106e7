//! Cgroups as a job's boundary: every job in a group of its own, limits on
//! it, a kill that reaches every process it started, and what it used.
//!
//! This is the job pool's subsystem: [`crate::jobs`] gives each job with
//! cgroups a [`JobGroup`] from [`Cgroups::create`] before the job's process
//! exists, kills and reads it through that, and re-exports what the server
//! needs to detect cgroups at start-up and to purge a dead server's folders.
//! Nothing here knows of jobs beyond the limits they ask for.
//!
//! # Design
//!
//! Hosts differ, so [`Cgroups::detect`] looks at what this process has: a
//! cgroup v2 hierarchy (its core files, `cgroup.kill`, and whatever
//! controllers are delegated to us) and v1 hierarchies, each found from
//! `/proc/self/mountinfo` and `/proc/self/cgroup` ([`mounts`]). Each limit
//! then has one place: a v2 controller in the job's core group, or a group
//! of its own in the controller's v1 hierarchy.
//!
//! Each controller's files are known to one module ([`memory`], [`cpu`],
//! [`pids`], [`io`], and [`core_group`] for the group every job has), which holds
//! its v1 and its v2 writers apart: a writer is given the group and the
//! value, and writes exactly that controller's files, so the writers are
//! tested against plain files in a temp dir, without root.
//!
//! Our own groups are reached through a descriptor of their folder
//! ([`dir`]); what is not ours by name (a dead server's folders, the groups
//! a job made below its own) is reached by path ([`tree`]). The two do not
//! import each other.
//!
//! # Invariants
//!
//! * **Our folder only.** In each hierarchy used, everything lives in one
//!   folder, `rcmd-PID-START-N`, inside the server's own group: never at a
//!   hierarchy's root, never touching another group. Files in it are
//!   opened relative to the folder ([`dir`]). PID and START (the
//!   process's start time in clock ticks) name the server; N tells apart the
//!   `Cgroups` of one process. One more group, on a v2 host that delegated
//!   the server's group to it (systemd's `Delegate=yes`): its leaf
//!   `rcmd-PID-START-0` beside the folders, which the server moves itself
//!   into so that its group, emptied, can pass controllers to jobs
//!   ([`delegate`]). "The server's own group" is then still the one above
//!   the leaf. The names say whose they are ([`names`]).
//! * **Leftovers of dead servers only.** At start-up, a folder (or leaf)
//!   whose server is gone (no such pid, or a different start time) is
//!   purged: its jobs killed, its groups removed ([`tree`]). A live
//!   server's folder is never touched.
//! * **One core group per job, always.** It is in the v2 hierarchy where
//!   there is one, else in the v1 freezer; it is how the job is killed.
//!   Groups in v1 controller hierarchies are made only for the limits a job
//!   asks for, one controller per hierarchy. No two running jobs ever share
//!   a group.
//! * **In before it runs.** Every limit is written before the job's process
//!   exists ([`create`]), and the process joins all its groups between clone
//!   and exec ([`JobGroup::procs`]), so nothing of the job ever runs outside
//!   them, nor unlimited.
//! * **Gone once reaped.** A job's groups are removed after its processes
//!   are all dead; the folder, when the `Cgroups` is dropped. A v1 memory,
//!   cpu or pids group, and a v2 core group without controllers, may
//!   instead be kept, as good as new, for a later job ([`spares`]), as can
//!   a blkio group that no IO went through: that job
//!   writes its limit again, and the settings that change what it means
//!   (the CPU period, the OOM killer's switch), and counts from its own
//!   start (peak memory, OOM kills, CPU time). A frozen core group is not
//!   kept. A job running as root, which can write any cgroup file anyway,
//!   could leave a lesser setting behind (`cpu.shares`,
//!   `memory.swappiness`, `cgroup.max.descendants` and `max.depth`,
//!   `cgroup.pressure`, blkio rules for other disks, bfq weights), and
//!   counters rcmd does not report go on counting.
//!   A threaded core group is not kept either, nor a blkio group through
//!   which any IO went (some could still be queued there).
//! * **Never touched once given away.** Every read, kill or removal of a
//!   job's group goes through the lock that marks it released
//!   ([`group::Held`]): a job whose end is still retrying cannot reach the
//!   group the next job now has.
//!
//! # Submodules
//!
//! * [`cgroups`]: [`Cgroups`], where each limit goes on this host, and why a
//!   limit is missing; [`Cgroups::check`].
//! * [`detect`]: [`Cgroups::detect`], the start-up steps that fill it in.
//! * [`create`]: [`Cgroups::create`], the steps that make a job's groups.
//! * [`asked`]: what a job's limits ask of each controller.
//! * [`group`]: [`JobGroup`], one job's groups: kill, usage, removal.
//! * [`core_group`]: the core group every job has, and how it is killed.
//! * [`memory`], [`cpu`], [`pids`], [`io`]: each controller's writers and
//!   readers, v1 and v2 apart.
//! * [`spares`]: emptied groups kept for the next job.
//! * [`delegate`]: passing v2 controllers down, and the server's own leaf.
//! * [`mounts`]: the hierarchies, and our own group in each.
//! * [`dir`]: our folders and groups, reached through a descriptor.
//! * [`tree`]: groups reached by path: walks below a group, the purge.
//! * [`names`]: the names of our folders, which say whose they are.
//! * [`retry`]: retrying a step that waits for processes to exit.
//! * `fake` (tests only): a group in a temp dir standing in for a hierarchy.

mod asked;
mod cgroups;
mod core_group;
mod cpu;
mod create;
mod delegate;
mod detect;
mod dir;
#[cfg(test)]
mod fake;
mod group;
mod io;
mod memory;
mod mounts;
mod names;
mod pids;
mod retry;
mod spares;
mod tree;

pub use cgroups::{Cgroups, Unsupported};
pub(crate) use group::JobGroup;
pub use group::ResourceUsage;
pub use tree::purge;

/// The limits a job asks for, read in one place ([`asked::Asked::of`]).
use crate::limits::Limits;
