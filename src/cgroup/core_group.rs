//! The core group every job has, in the v2 hierarchy where there is one,
//! else in the v1 freezer: how all of a job's processes are killed at once,
//! whether any is left, and whether an emptied group can be kept.

use super::dir::GroupDir;
use super::tree;

/// How the processes of a group are all killed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kill {
    /// cgroup v2 `cgroup.kill` (Linux 5.14): one write, nothing escapes.
    V2,
    /// cgroup v1 freezer: freeze, SIGKILL every task, thaw. Frozen tasks
    /// cannot fork, so the list of tasks is complete.
    Freezer,
}

impl Kill {
    /// How jobs are killed, as the start-up log says it.
    pub fn describe(self) -> &'static str {
        match self {
            Kill::V2 => v2::KILL,
            Kill::Freezer => "v1 freezer",
        }
    }

    /// SIGKILL to every process in `group` and in the groups below it,
    /// whatever process group or session it moved to.
    pub fn kill(self, group: &GroupDir) {
        match self {
            Kill::V2 => drop(group.write(v2::KILL, 1)),
            Kill::Freezer => tree::freeze_and_kill(&group.path()),
        }
    }

    /// Whether no process is left in `group` or below it.
    pub fn is_empty(self, group: &GroupDir) -> bool {
        match self {
            // `populated` counts the groups below too, in one read.
            Kill::V2 => group.keyed("cgroup.events", "populated") == Some(0),
            Kill::Freezer => tree::pids_below(&group.path()).is_empty(),
        }
    }
}

/// The core files of every v2 group.
pub(super) mod v2 {
    use super::super::dir::keyed_in;
    use super::*;

    /// There from Linux 5.14: without it, v2 is not used for core groups.
    pub const KILL: &str = "cgroup.kill";

    /// Whether an emptied core group (without controllers) would give the
    /// next job nothing of this one: no task in it or below (threads
    /// included), not frozen (a job running as root may have frozen it,
    /// which would freeze the next job), and not made threaded (where
    /// `cgroup.kill` fails and every other group of the folder becomes
    /// unjoinable).
    pub fn as_good_as_new(group: &GroupDir) -> bool {
        let events = group.read("cgroup.events").unwrap_or_default();
        keyed_in(&events, "populated") == Some(0)
            && keyed_in(&events, "frozen") == Some(0)
            && group.read("cgroup.type").is_ok_and(|t| t.trim() == "domain")
    }
}

/// The core files of every v1 group.
pub(super) mod v1 {
    use super::*;

    /// Whether no thread is in the group: `tasks` lists threads (a process
    /// whose main thread has exited may be missing from `cgroup.procs`).
    pub fn holds_no_task(group: &GroupDir) -> bool {
        group.read("tasks").is_ok_and(|t| t.trim().is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake::{FakeGroup, files};
    use super::*;

    #[test]
    fn a_v2_kill_is_one_write_of_1_to_cgroup_kill() {
        let fake = FakeGroup::with(&["cgroup.kill", "cgroup.freeze"]);
        Kill::V2.kill(fake.group());
        assert_eq!(fake.written(), files(&[("cgroup.kill", "1")]));
    }

    #[test]
    fn a_v2_group_is_empty_only_when_it_reads_unpopulated() {
        let fake = FakeGroup::with(&[]);
        assert!(!Kill::V2.is_empty(fake.group()), "an unreadable group proves nothing");
        fake.preset("cgroup.events", "populated 1\nfrozen 0\n");
        assert!(!Kill::V2.is_empty(fake.group()));
        fake.preset("cgroup.events", "populated 0\nfrozen 0\n");
        assert!(Kill::V2.is_empty(fake.group()));
    }

    #[test]
    fn a_v1_group_is_empty_when_neither_it_nor_a_group_below_lists_a_process() {
        let fake = FakeGroup::with(&["cgroup.procs"]);
        std::fs::create_dir(fake.path().join("below")).unwrap();
        std::fs::write(fake.path().join("below/cgroup.procs"), "").unwrap();
        assert!(Kill::Freezer.is_empty(fake.group()));
        std::fs::write(fake.path().join("below/cgroup.procs"), "4242\n").unwrap();
        assert!(!Kill::Freezer.is_empty(fake.group()));
    }

    #[test]
    fn an_emptied_v2_core_group_is_kept_only_unpopulated_unfrozen_and_a_domain() {
        let fake = FakeGroup::with(&[]);
        let kept = |events: &str, kind: &str| {
            fake.preset("cgroup.events", events);
            fake.preset("cgroup.type", kind);
            v2::as_good_as_new(fake.group())
        };
        assert!(kept("populated 0\nfrozen 0\n", "domain\n"));
        assert!(!kept("populated 1\nfrozen 0\n", "domain\n"), "a task is left");
        assert!(!kept("populated 0\nfrozen 1\n", "domain\n"), "frozen");
        assert!(!kept("populated 0\nfrozen 0\n", "threaded\n"), "threaded");
    }

    #[test]
    fn a_v1_group_holds_no_task_only_when_its_task_list_is_empty() {
        let fake = FakeGroup::with(&[]);
        assert!(!v1::holds_no_task(fake.group()), "an unreadable list proves nothing");
        fake.preset("tasks", "17\n");
        assert!(!v1::holds_no_task(fake.group()));
        fake.preset("tasks", "");
        assert!(v1::holds_no_task(fake.group()));
    }
}
