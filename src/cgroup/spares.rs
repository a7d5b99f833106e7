//! Emptied groups kept for the next job that needs one.
//!
//! On a hybrid host every limit is a v1 group of its own, beside the job's
//! v2 core group, and making and removing groups is most of what cgroups
//! cost per job: a memory group's mkdir and rmdir alone take ~100 µs, a v2
//! group's ~75 µs, and the kernel frees them later, in the background. A
//! group whose job is over is therefore kept, up to [`KEPT`] per hierarchy,
//! and handed to the next job with a group in that hierarchy, which writes
//! every limit it relies on again (the controllers' writers take the
//! group's [`Origin`]). A blkio
//! group is kept only if no IO went through it: IO a job queued would be
//! throttled under the next job's rules. Core groups are kept only where
//! they have no controllers.
//! The core folder's spares are at index `folders.len()`.
//!
//! Invariants:
//!
//! * **Only groups as good as new.** A group is given here only once the
//!   job's core group is empty, no thread is in it or below it (the groups
//!   below are removed first), no exited process still counts in it, it
//!   holds no tmpfs pages, no swap and no more than a trace of other memory
//!   (all would count against the next job's limit), no IO went through its
//!   throttle, and it is not frozen.
//!   Not after making the job's groups failed. It is never touched again by
//!   the job that gave it.
//! * **Each group at most once.** A group is in one list at most, and
//!   [`Spares::take`] hands it to exactly one job.
//! * **Bounded.** At most [`KEPT`] per hierarchy; a group past that is
//!   removed. The spares are subgroups of our folders, so they go with them.

use std::path::PathBuf;
use std::sync::Mutex;

use super::dir::GroupDir;

/// Where a job's group came from: what its files hold before the job
/// writes its limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    /// Made for this job: every setting is the kernel's default.
    New,
    /// Taken from the spares: its files hold the settings and counts of the
    /// jobs that had it before.
    Reused,
}

/// How many emptied groups are kept per hierarchy: more than the jobs that
/// start at once on a busy server, few enough that their kernel memory is
/// small.
pub(crate) const KEPT: usize = 32;

/// The spare groups of each of our folders, by the folder's index (the
/// core folder's last).
#[derive(Debug)]
pub(crate) struct Spares {
    idle: Vec<Mutex<Vec<GroupDir>>>,
}

impl Spares {
    pub fn new(folders: usize) -> Spares {
        Spares { idle: (0..folders).map(|_| Mutex::new(Vec::new())).collect() }
    }

    /// A spare group of folder `folder`, now the caller's alone.
    pub fn take(&self, folder: usize) -> Option<GroupDir> {
        self.list(folder).pop()
    }

    /// Keeps the empty group `dir` of folder `folder` for a later job.
    /// `false` if there are enough already: the caller removes it.
    pub fn give(&self, folder: usize, dir: &GroupDir) -> bool {
        let mut idle = self.list(folder);
        if idle.len() >= KEPT {
            return false;
        }
        idle.push(dir.clone());
        true
    }

    /// Every spare group, for tests and the curious: they hold no process.
    pub fn all(&self) -> Vec<PathBuf> {
        (0..self.idle.len())
            .flat_map(|folder| self.list(folder).iter().map(GroupDir::path).collect::<Vec<_>>())
            .collect()
    }

    fn list(&self, folder: usize) -> std::sync::MutexGuard<'_, Vec<GroupDir>> {
        // Only pushes and pops happen under this lock: a panic cannot leave
        // the list half-changed.
        self.idle[folder].lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::super::dir::Folder;
    use super::*;

    #[test]
    fn a_spare_is_handed_out_once_and_no_more_than_kept_are_kept() {
        let top = std::env::temp_dir().join(format!("rcmdt-spares-{}", std::process::id()));
        std::fs::create_dir_all(&top).unwrap();
        let folder = Folder::open(top.clone()).unwrap();
        let spares = Spares::new(2);
        assert!(spares.give(1, &folder.group("a")));
        assert!(spares.take(0).is_none(), "folders are apart");
        assert_eq!(spares.take(1).map(|s| s.path()), Some(top.join("a")));
        assert!(spares.take(1).is_none(), "handed out once");
        for i in 0..KEPT {
            assert!(spares.give(0, &folder.group(&format!("g{i}"))));
        }
        assert!(!spares.give(0, &folder.group(&format!("g{KEPT}"))));
        assert_eq!(spares.all().len(), KEPT);
        drop(spares);
        std::fs::remove_dir_all(&top).unwrap();
    }
}
