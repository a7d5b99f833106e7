//! One job's groups: made with its limits before the job starts (see
//! [`super::create`]), killed as a whole, read for usage, and removed once
//! empty, or kept for a later job instead ([`super::spares`]).

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::core_group::{self, Kill};
use super::dir::GroupDir;
use super::retry::retry_blocking;
use super::spares::{Origin, Spares};
use super::{cpu, io, memory, pids, tree};

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
    pub(super) core: Held,
    pub(super) kill: Kill,
    /// Groups of the v1 controllers this job's limits need.
    pub(super) limited: Vec<Held>,
    /// Where CPU time and memory are counted, if anywhere.
    pub(super) cpu_stat: Option<CpuStat>,
    pub(super) memory: Option<MemoryStat>,
    /// The memory group's `oom_kill` count before this job: a reused v1
    /// group goes on counting from its earlier jobs.
    pub(super) oom_kills_before: u64,
    /// The core group's CPU time (µs) before this job, likewise.
    pub(super) cpu_usec_before: u64,
    /// `cgroup.procs` of every group, open until the job's process has
    /// written "0" to each ([`JobGroup::joined`]).
    pub(super) procs: Vec<OwnedFd>,
    /// Where the emptied groups go.
    pub(super) spares: Arc<Spares>,
}

/// What in a group outlives its processes, and would reach the next job if
/// the group were kept: what must be looked at before it is.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Outlived {
    /// The v2 core group (without controllers): its tasks, freezing and
    /// type ([`core_group::v2::as_good_as_new`]).
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

/// Whether a job's group may be kept for a later job once it is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Keeping {
    /// Kept if it is as good as new and the spares have room.
    IfAsGoodAsNew,
    /// Removed: where the host's groups of its kind are not kept, or once
    /// making the job's groups failed (its limits may be half written, or
    /// unwritable).
    Never,
}

/// One of a job's groups, the job's until it is released.
#[derive(Debug)]
pub(super) struct Held {
    pub dir: GroupDir,
    /// Its folder's index in the spares.
    pub folder: usize,
    pub origin: Origin,
    pub outlived_by: Outlived,
    pub keeping: Keeping,
    /// Whether it is no longer this job's: given to the spares, or removed.
    /// Under a lock, so that two removers cannot both give it away, and a
    /// read of its counters never sees the next job's.
    released: Mutex<bool>,
}

impl Held {
    pub fn new(
        dir: GroupDir,
        folder: usize,
        origin: Origin,
        outlived_by: Outlived,
        keeping: Keeping,
    ) -> Held {
        Held { dir, folder, origin, outlived_by, keeping, released: Mutex::new(false) }
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
            *released = remove_subgroups(&self.dir)
                && ((self.as_good_as_new() && spares.give(self.folder, &self.dir)) || self.dir.remove());
        }
        *released
    }

    /// Whether the next job would find nothing of this one in the group: no
    /// process (nor thread), none exited but unreaped (it would have fewer
    /// pids), no memory it could not reclaim (it would have less), not
    /// frozen.
    fn as_good_as_new(&self) -> bool {
        if self.keeping == Keeping::Never {
            return false;
        }
        // v2 counts threads, and groups below (none are left), in
        // `populated`. pids counts every thread until it is reaped: none
        // counted, none there. Elsewhere `tasks` lists threads.
        let no_task = if self.outlived_by.v2_core {
            core_group::v2::as_good_as_new(&self.dir)
        } else if self.outlived_by.pids {
            pids::counts_none(&self.dir)
        } else {
            core_group::v1::holds_no_task(&self.dir)
        };
        no_task
            && (!self.outlived_by.memory || memory::v1::holds_nothing_for_the_next_job(&self.dir))
            && (!self.outlived_by.io || io::v1::did_no_io(&self.dir))
    }

    fn released_lock(&self) -> std::sync::MutexGuard<'_, bool> {
        self.released.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Removes the groups below `dir`, which a job running as root may have
/// made; `true` if there are none left (a listing that failed proves
/// nothing: the link count is looked at again).
fn remove_subgroups(dir: &GroupDir) -> bool {
    if !dir.may_have_subgroups() {
        return true;
    }
    tree::subgroups(&dir.path()).iter().all(|below| tree::remove_tree(below)) && !dir.may_have_subgroups()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CpuStat {
    /// `cpu.stat` of the core group (v2), `usage_usec`.
    V2Core,
    /// `cpuacct.usage` (ns) of the limited group at this index (v1).
    V1(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MemoryStat {
    /// The v2 memory controller, in the core group.
    V2,
    /// The v1 memory group at this index of `limited`.
    V1(usize),
}

impl JobGroup {
    /// The core group first, then the limited ones.
    pub(super) fn held(&self) -> impl Iterator<Item = &Held> {
        std::iter::once(&self.core).chain(&self.limited)
    }

    /// The open `cgroup.procs` files the job's process joins its groups by.
    pub(crate) fn procs(&self) -> Vec<RawFd> {
        self.procs.iter().map(AsRawFd::as_raw_fd).collect()
    }

    /// The job's process is in its groups (or failed to start): closes
    /// their `cgroup.procs` files.
    pub(crate) fn joined(&mut self) {
        self.procs.clear();
    }

    /// SIGKILL to every process in the job's group, whatever process group
    /// or session it moved to. Nothing once the group is released: it is
    /// empty then, and may be another job's.
    pub(crate) fn kill(&self) {
        self.core.while_held(|core| {
            self.kill.kill(core);
            Some(())
        });
    }

    /// What the kernel counted so far.
    pub(crate) fn usage(&self) -> ResourceUsage {
        let cpu_ms = match self.cpu_stat {
            Some(CpuStat::V2Core) => {
                let usec = self.core.while_held(cpu::v2::usage_usec);
                usec.map(|us| us.saturating_sub(self.cpu_usec_before) / 1000)
            }
            Some(CpuStat::V1(i)) => self.limited[i].while_held(cpu::v1::usage_ns).map(|ns| ns / 1_000_000),
            None => None,
        };
        let memory_peak = match self.memory {
            Some(MemoryStat::V2) => self.core.while_held(memory::v2::peak),
            Some(MemoryStat::V1(i)) => self.limited[i].while_held(memory::v1::peak),
            None => None,
        };
        ResourceUsage { cpu_ms, memory_peak }
    }

    /// How many of the job's processes the kernel's OOM killer ended.
    pub(crate) fn oom_kills(&self) -> u64 {
        let counted = match self.memory {
            Some(MemoryStat::V2) => self.core.while_held(memory::v2::oom_kills),
            Some(MemoryStat::V1(i)) => self.limited[i].while_held(memory::v1::oom_kills),
            None => None,
        };
        counted.unwrap_or(0).saturating_sub(self.oom_kills_before)
    }

    /// Whether every process of the job has exited (the core group and the
    /// groups a job may have made below it hold them all; a released core
    /// group held none).
    pub(crate) fn is_empty(&self) -> bool {
        self.core.while_held(|core| Some(self.kill.is_empty(core))).unwrap_or(true)
    }

    /// Removes every group of the job (or keeps them as spares), killing
    /// again whatever is left. A group whose processes are still exiting
    /// cannot be removed yet: returns `false` then, and the caller tries
    /// again a little later.
    pub(crate) fn try_remove(&self) -> bool {
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
    pub(crate) fn remove_blocking(&self, limit: Duration) -> bool {
        retry_blocking(limit, || self.try_remove())
    }

    /// Removes every group of a job whose groups could not be made whole:
    /// none is kept.
    pub(super) fn discard(mut self) {
        for held in std::iter::once(&mut self.core).chain(&mut self.limited) {
            held.keeping = Keeping::Never;
        }
        self.remove_blocking(Duration::ZERO);
    }
}

#[cfg(test)]
mod tests {
    use super::super::dir::Folder;
    use super::super::mounts::{self, Kind};
    use super::*;

    /// A folder of this test in a real hierarchy, removed when dropped.
    struct TestFolder(std::path::PathBuf);

    impl Drop for TestFolder {
        fn drop(&mut self) {
            tree::purge(&self.0, Duration::from_secs(5));
        }
    }

    #[test]
    #[ignore = "needs root: makes cgroups"]
    fn a_groups_link_count_shows_its_subgroups_so_removal_lists_only_when_needed() {
        let read = |path| std::fs::read_to_string(path).unwrap();
        let found = mounts::find(&read("/proc/self/mountinfo"), &read("/proc/self/cgroup"));
        let v2 = found.iter().find(|m| m.kind == Kind::V2).expect("a cgroup v2 hierarchy");
        let memory =
            found.iter().find(|m| m.has_v1("memory")).expect("a v1 memory hierarchy (this host is hybrid)");
        for hierarchy in [v2, memory] {
            let path = hierarchy.own_group.join(format!("rcmdt-dir-{}", std::process::id()));
            std::fs::create_dir(&path).unwrap();
            let _made = TestFolder(path.clone());
            let folder = Folder::open(path.clone()).unwrap();
            let group = folder.group("g");
            assert!(!group.may_have_subgroups(), "a group that is not there has none");
            group.make().unwrap();
            assert!(!group.may_have_subgroups(), "{}", path.display());
            assert!(group.read("cgroup.procs").unwrap().is_empty());
            std::fs::create_dir_all(path.join("g/below/deeper")).unwrap();
            assert!(group.may_have_subgroups(), "{}", path.display());
            assert!(!group.remove(), "not while groups are below it");
            assert!(remove_subgroups(&group) && group.remove(), "removed after the groups below it");
            assert!(!path.join("g").exists());
            assert!(group.remove(), "a group that is gone counts as removed");
            let error = group.write("cgroup.procs", 0).unwrap_err().to_string();
            assert!(error.starts_with("cgroup.procs: "), "{error}");
        }
    }
}
