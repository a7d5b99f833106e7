//! One job's groups: made with its limits before the job starts, killed as a
//! whole, read for usage, and removed once empty (or kept for a later job
//! instead, see [`super::spares`]). Also [`purge`], which
//! does all of that to every group in a folder, for a server that is gone.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::dir::{GroupDir, keyed_in};
use super::spares::Spares;

/// How the processes of a group are all killed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kill {
    /// cgroup v2 `cgroup.kill` (Linux 5.14): one write, nothing escapes.
    V2,
    /// cgroup v1 freezer: freeze, SIGKILL every task, thaw. Frozen tasks
    /// cannot fork, so the list of tasks is complete.
    Freezer,
}

/// What the kernel counted for a job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResourceUsage {
    /// CPU time, user and system, of every process of the job.
    pub cpu_ms: Option<u64>,
    /// The most memory the job used at once.
    pub memory_peak: Option<u64>,
}

/// A job's groups, one per hierarchy it needs. Each is named after the job
/// that made it; a kept group carries the name of an earlier job.
#[derive(Debug)]
pub(crate) struct JobGroup {
    /// The group that every job has, and how to kill it.
    pub core: Held,
    pub kill: Kill,
    /// Groups of the v1 controllers this job's limits need.
    pub limited: Vec<Held>,
    /// Where CPU time and memory are counted, if anywhere.
    pub cpu_stat: Option<CpuStat>,
    pub memory: Option<MemoryStat>,
    /// The memory group's `oom_kill` count before this job: a reused v1
    /// group goes on counting from its earlier jobs.
    pub oom_kills_before: u64,
    /// The core group's CPU time (µs) before this job, likewise.
    pub cpu_usec_before: u64,
    /// `cgroup.procs` of every group, open until the job's process has
    /// written "0" to each ([`JobGroup::joined`]).
    pub procs: Vec<OwnedFd>,
    /// Where the emptied groups go.
    pub spares: Arc<Spares>,
}

/// Memory an empty v1 group may still have charged and be reused: the
/// kernel charges ahead in batches per CPU, so an empty group rarely reads
/// 0. It is page cache and kernel objects the next job's limit can reclaim;
/// tmpfs files and swap, which it could not, must be none.
const STALE_CHARGE: u64 = 1 << 20;

/// What in a group outlives its processes, and would reach the next job if
/// the group were kept.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Outlived {
    /// The v2 core group (without controllers), judged by `cgroup.events`
    /// and `cgroup.type`: a job running as root may have frozen it
    /// (`cgroup.freeze`), which would freeze the next job, or made it
    /// threaded, where `cgroup.kill` fails and every other group of the
    /// folder becomes unjoinable.
    pub v2_core: bool,
    /// pids: a process counts until it is reaped, not only until it exits.
    pub pids: bool,
    /// memory: page cache, tmpfs files and swapped pages stay charged.
    pub memory: bool,
    /// blkio: IO the job queued (readahead, a direct read) is dispatched
    /// under the group's rules, so the next job would wait behind it. Kept
    /// only if no IO at all went through the group's throttle (the kernel
    /// counts a request as it enters, before it waits), and no iops rule
    /// (which rcmd never sets) was added. Not covered: IO a kernel worker
    /// submits for the job after it is gone (a loop device's, say), which
    /// could enter between this check and the next job.
    pub io: bool,
}

/// One of a job's groups, the job's until it is released.
#[derive(Debug)]
pub(crate) struct Held {
    pub dir: GroupDir,
    /// Its folder's index in the spares.
    pub folder: usize,
    /// Whether an earlier job used it (its limit files hold that job's).
    pub reused: bool,
    pub outlived_by: Outlived,
    /// Whether it may be kept for a later job: not where the host's groups
    /// of its kind are not kept, nor once making the job's groups failed
    /// (its limits may be half written, or unwritable).
    pub keepable: bool,
    /// Whether it is no longer this job's: given to the spares, or removed.
    /// Under a lock, so that two removers cannot both give it away, and a
    /// read of its counters never sees the next job's.
    released: Mutex<bool>,
}

impl Held {
    pub fn new(dir: GroupDir, folder: usize, reused: bool, outlived_by: Outlived, keepable: bool) -> Held {
        Held { dir, folder, reused, outlived_by, keepable, released: Mutex::new(false) }
    }

    /// Does `work` on the group (a read, a kill) if it is still this job's:
    /// never once it was given away, when it may be the next job's.
    fn while_held<T>(&self, work: impl FnOnce(&GroupDir) -> Option<T>) -> Option<T> {
        let released = self.released_lock();
        if *released { None } else { work(&self.dir) }
    }

    /// Gives the group to `spares` if it is as good as new and they have
    /// room, else removes it (with the groups a job made below it). `true`
    /// once it is no longer this job's; this job never touches it again.
    fn release(&self, spares: &Spares) -> bool {
        let mut released = self.released_lock();
        if !*released {
            *released = self.dir.remove_subgroups()
                && ((self.as_good_as_new() && spares.give(self.folder, &self.dir)) || self.dir.remove());
        }
        *released
    }

    /// Whether the next job would find nothing of this one in the group: no
    /// process (nor thread), none exited but unreaped (it would have fewer
    /// pids), no memory it could not reclaim (it would have less), not
    /// frozen.
    fn as_good_as_new(&self) -> bool {
        if !self.keepable {
            return false;
        }
        // v2 counts threads, and groups below (none are left), in
        // `populated`. pids counts every thread until it is reaped: none
        // counted, none there. Elsewhere `tasks` lists threads (a process
        // whose main thread has exited may be missing from `cgroup.procs`).
        let no_task = if self.outlived_by.v2_core {
            let events = self.dir.read("cgroup.events").unwrap_or_default();
            keyed_in(&events, "populated") == Some(0)
                && keyed_in(&events, "frozen") == Some(0)
                && self.dir.read("cgroup.type").is_ok_and(|t| t.trim() == "domain")
        } else if self.outlived_by.pids {
            self.dir.number("pids.current") == Some(0)
        } else {
            self.dir.read("tasks").is_ok_and(|t| t.trim().is_empty())
        };
        no_task
            && (!self.outlived_by.memory || holds_no_memory(&self.dir))
            && (!self.outlived_by.io || did_no_io(&self.dir))
    }

    fn released_lock(&self) -> std::sync::MutexGuard<'_, bool> {
        self.released.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether no IO request ever entered the throttle of a v1 blkio group or
/// the groups that were below it (so none can still be queued there), and
/// it has no iops rule.
fn did_no_io(dir: &GroupDir) -> bool {
    let no_rule = |file| dir.read(file).is_ok_and(|rules| rules.trim().is_empty());
    dir.keyed("blkio.throttle.io_serviced_recursive", "Total") == Some(0)
        && no_rule("blkio.throttle.read_iops_device")
        && no_rule("blkio.throttle.write_iops_device")
}

/// Whether an empty v1 memory group holds nothing the next job would pay
/// for: no tmpfs or shared memory pages, and memory plus swap within
/// [`STALE_CHARGE`] (memory limits need swap accounting, so the file is
/// there).
fn holds_no_memory(dir: &GroupDir) -> bool {
    dir.keyed("memory.stat", "shmem") == Some(0)
        && dir.number("memory.memsw.usage_in_bytes").is_some_and(|used| used <= STALE_CHARGE)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CpuStat {
    /// `cpu.stat` of this group (v2), `usage_usec`.
    V2Core,
    /// `cpuacct.usage` (ns) of the limited group at this index (v1).
    V1(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MemoryStat {
    /// The v2 memory controller, in the core group.
    V2,
    /// The v1 memory group at this index of `limited`.
    V1(usize),
}

impl JobGroup {
    pub fn dirs(&self) -> impl Iterator<Item = &GroupDir> {
        std::iter::once(&self.core.dir).chain(self.limited.iter().map(|l| &l.dir))
    }

    /// The open `cgroup.procs` files the job's process joins its groups by.
    pub fn procs(&self) -> Vec<RawFd> {
        self.procs.iter().map(AsRawFd::as_raw_fd).collect()
    }

    /// The job's process is in its groups (or failed to start): closes
    /// their `cgroup.procs` files.
    pub fn joined(&mut self) {
        self.procs.clear();
    }

    /// SIGKILL to every process in the job's group, whatever process group
    /// or session it moved to. Nothing once the group is released: it is
    /// empty then, and may be another job's.
    pub fn kill(&self) {
        self.core.while_held(|core| {
            match self.kill {
                Kill::V2 => drop(core.write("cgroup.kill", 1)),
                Kill::Freezer => kill_group(&core.path(), Kill::Freezer),
            }
            Some(())
        });
    }

    /// What the kernel counted so far.
    pub fn usage(&self) -> ResourceUsage {
        let cpu_ms = match self.cpu_stat {
            Some(CpuStat::V2Core) => {
                let usec = self.core.while_held(|core| core.keyed("cpu.stat", "usage_usec"));
                usec.map(|us| us.saturating_sub(self.cpu_usec_before) / 1000)
            }
            Some(CpuStat::V1(i)) => {
                self.limited[i].while_held(|d| d.number("cpuacct.usage")).map(|ns| ns / 1_000_000)
            }
            None => None,
        };
        let memory_peak = match self.memory {
            Some(MemoryStat::V2) => self.core.while_held(|core| core.number("memory.peak")),
            Some(MemoryStat::V1(i)) => self.limited[i].while_held(|d| d.number("memory.max_usage_in_bytes")),
            None => None,
        };
        ResourceUsage { cpu_ms, memory_peak }
    }

    /// How many of the job's processes the kernel's OOM killer ended.
    pub fn oom_kills(&self) -> u64 {
        let counted = match self.memory {
            Some(MemoryStat::V2) => self.core.while_held(|core| core.keyed("memory.events", "oom_kill")),
            Some(MemoryStat::V1(i)) => {
                self.limited[i].while_held(|d| d.keyed("memory.oom_control", "oom_kill"))
            }
            None => None,
        };
        counted.unwrap_or(0).saturating_sub(self.oom_kills_before)
    }

    /// Whether every process of the job has exited (the core group and the
    /// groups a job may have made below it hold them all; a released core
    /// group held none).
    pub fn is_empty(&self) -> bool {
        let empty = self.core.while_held(|core| match self.kill {
            // `populated` counts the groups below too, in one read.
            Kill::V2 => Some(core.keyed("cgroup.events", "populated") == Some(0)),
            Kill::Freezer => Some(pids_below(&core.path()).is_empty()),
        });
        empty.unwrap_or(true)
    }

    /// Removes every group of the job (or keeps them as spares), killing
    /// again whatever is left. A group whose processes are still exiting
    /// cannot be removed yet: returns `false` then, and the caller tries
    /// again a little later.
    pub fn try_remove(&self) -> bool {
        let mut all_gone = self.core.release(&self.spares);
        // The core group holds every process of the job: once it is
        // released, the other groups can hold none, and may go to the next
        // job.
        if all_gone {
            for limited in &self.limited {
                all_gone &= limited.release(&self.spares);
            }
        }
        if !all_gone {
            self.kill();
        }
        all_gone
    }

    /// [`JobGroup::try_remove`] until it succeeds or `limit` has passed,
    /// pausing between tries. For callers that may block.
    pub fn remove_blocking(&self, limit: Duration) -> bool {
        retry_blocking(limit, || self.try_remove())
    }
}

/// Calls `attempt` until it returns true or `limit` has passed, with short
/// growing pauses in between. Returns the last result.
pub(crate) fn retry_blocking(limit: Duration, mut attempt: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_micros(200);
    loop {
        if attempt() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Removes an empty group; `true` if it is gone (or never was).
fn remove_dir(dir: &Path) -> bool {
    match std::fs::remove_dir(dir) {
        Ok(()) => true,
        Err(e) => e.kind() == io::ErrorKind::NotFound,
    }
}

/// Removes a group and the groups a job made below it, deepest first (a
/// group with groups below cannot be removed); `true` if all are gone.
pub(super) fn remove_tree(dir: &Path) -> bool {
    let mut all_gone = true;
    for below in subgroups(dir) {
        all_gone &= remove_tree(&below);
    }
    all_gone && remove_dir(dir)
}

/// The groups right below `dir`.
pub(super) fn subgroups(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Kills every process in the group at `dir`.
pub(crate) fn kill_group(dir: &Path, how: Kill) {
    match how {
        Kill::V2 => {
            let _ = std::fs::write(dir.join("cgroup.kill"), "1");
        }
        Kill::Freezer => {
            let state = dir.join("freezer.state");
            if std::fs::write(&state, "FROZEN").is_err() {
                return; // gone already
            }
            // Freezing takes effect task by task; a task not yet frozen
            // could still fork.
            retry_blocking(Duration::from_secs(1), || {
                std::fs::read_to_string(&state).is_ok_and(|s| s.trim() == "FROZEN")
            });
            // A v1 freezer freezes the groups below too, and a frozen task
            // cannot exit, so none of these pids can be reused before the
            // kill (only a task that would not freeze in time could).
            for pid in pids_below(dir) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            let _ = std::fs::write(&state, "THAWED");
        }
    }
}

/// The processes in the group at `dir` and in every group below it.
fn pids_below(dir: &Path) -> Vec<i32> {
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    let mut pids: Vec<i32> = procs.lines().filter_map(|l| l.trim().parse().ok()).collect();
    for below in subgroups(dir) {
        pids.extend(pids_below(&below));
    }
    pids
}

/// Kills every group in `folder` (a server's folder in one hierarchy) and
/// removes them and the folder, waiting up to `limit` for the processes to
/// exit. Each group is killed the best way its files offer; in a hierarchy
/// that has no way (a v1 controller), by each process it lists. Returns
/// whether the folder is gone.
pub fn purge(folder: &Path, limit: Duration) -> bool {
    let groups: Vec<PathBuf> = match std::fs::read_dir(folder) {
        Ok(_) => subgroups(folder),
        Err(e) => return e.kind() == io::ErrorKind::NotFound,
    };
    retry_blocking(limit, || {
        let mut all_gone = true;
        for group in &groups {
            if remove_tree(group) {
                continue;
            }
            all_gone = false;
            if group.join("cgroup.kill").exists() {
                kill_group(group, Kill::V2);
            } else if group.join("freezer.state").exists() {
                kill_group(group, Kill::Freezer);
            } else {
                for pid in pids_below(group) {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
        }
        all_gone && remove_dir(folder)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    /// A test's group and the process in it: both gone when dropped.
    struct Made(PathBuf, std::process::Child);

    impl Drop for Made {
        fn drop(&mut self) {
            let _ = self.1.kill();
            let _ = self.1.wait();
            retry_blocking(Duration::from_secs(5), || remove_tree(&self.0));
        }
    }

    #[test]
    #[ignore = "needs root: makes cgroups"]
    fn the_freezer_kill_reaches_processes_in_groups_below_and_the_tree_is_removed() {
        let read = |path| std::fs::read_to_string(path).unwrap();
        let found = super::super::mounts::find(&read("/proc/self/mountinfo"), &read("/proc/self/cgroup"));
        let freezer = found.iter().find(|m| m.has_v1("freezer")).expect("a v1 freezer (this host is hybrid)");
        let top = freezer.own_group.join(format!("rcmdt-freezer-{}", std::process::id()));
        std::fs::create_dir_all(top.join("below/deeper")).unwrap();
        let sleep = std::process::Command::new("sleep").arg("1000").spawn().unwrap();
        let mut made = Made(top.clone(), sleep);
        std::fs::write(top.join("below/deeper/cgroup.procs"), made.1.id().to_string()).unwrap();
        assert_eq!(pids_below(&top), [made.1.id() as i32]);
        kill_group(&top, Kill::Freezer);
        let mut status = None;
        retry_blocking(Duration::from_secs(10), || {
            status = made.1.try_wait().unwrap();
            status.is_some()
        });
        assert_eq!(status.and_then(|s| s.signal()), Some(libc::SIGKILL));
        assert!(remove_tree(&top) && !top.exists());
    }
}
