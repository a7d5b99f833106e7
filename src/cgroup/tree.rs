//! Groups reached by path: the walk below a group, kills by what a group's
//! files offer, and the purge of a whole folder (a dead server's at
//! start-up, or ours when the `Cgroups` is dropped).
//!
//! Nothing here assumes a folder is ours or was made by this process, and
//! nothing here holds a descriptor: a dead server's folders are met once,
//! and the groups a job made below its own have names that are not ours.
//! Our own groups are reached through descriptors instead ([`super::dir`]).

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::names;
use super::retry::retry_blocking;

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

/// The processes in the group at `dir` and in every group below it.
pub(super) fn pids_below(dir: &Path) -> Vec<i32> {
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    let mut pids: Vec<i32> = procs.lines().filter_map(|l| l.trim().parse().ok()).collect();
    for below in subgroups(dir) {
        pids.extend(pids_below(&below));
    }
    pids
}

/// SIGKILL to every process listed in the group at `dir` or below it.
fn kill_listed(dir: &Path) {
    for pid in pids_below(dir) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// Kills every process in the v1 freezer group at `dir`: freeze, SIGKILL
/// every task, thaw. Frozen tasks cannot fork, so the list is complete.
pub(super) fn freeze_and_kill(dir: &Path) {
    let state = dir.join("freezer.state");
    if std::fs::write(&state, "FROZEN").is_err() {
        return; // gone already
    }
    // Freezing takes effect task by task; a task not yet frozen could
    // still fork.
    retry_blocking(Duration::from_secs(1), || {
        std::fs::read_to_string(&state).is_ok_and(|s| s.trim() == "FROZEN")
    });
    // A v1 freezer freezes the groups below too, and a frozen task cannot
    // exit, so none of these pids can be reused before the kill (only a
    // task that would not freeze in time could).
    kill_listed(dir);
    let _ = std::fs::write(&state, "THAWED");
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
                let _ = std::fs::write(group.join("cgroup.kill"), "1");
            } else if group.join("freezer.state").exists() {
                freeze_and_kill(group);
            } else {
                kill_listed(group);
            }
        }
        all_gone && remove_dir(folder)
    })
}

/// Purges, in `own_group`, every folder (and leaf) of a server that is
/// gone, waiting up to `limit` for each. A live server's are never touched.
pub(super) fn purge_dead_servers(own_group: &Path, limit: Duration) {
    let Ok(entries) = std::fs::read_dir(own_group) else { return };
    for entry in entries.filter_map(Result::ok) {
        if !entry.file_name().to_str().is_some_and(names::is_dead_servers) {
            continue;
        }
        tracing::info!(folder = %entry.path().display(), "removing the cgroups of a server that is gone");
        if !purge(&entry.path(), limit) {
            tracing::warn!(folder = %entry.path().display(), "cannot remove a gone server's cgroups");
        }
    }
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
        freeze_and_kill(&top);
        let mut status = None;
        retry_blocking(Duration::from_secs(10), || {
            status = made.1.try_wait().unwrap();
            status.is_some()
        });
        assert_eq!(status.and_then(|s| s.signal()), Some(libc::SIGKILL));
        assert!(remove_tree(&top) && !top.exists());
    }

    #[test]
    fn a_purge_removes_only_the_folders_of_servers_that_are_gone() {
        let top = std::env::temp_dir().join(format!("rcmdt-tree-{}", std::process::id()));
        let us = std::process::id();
        let started = names::start_time(us).unwrap();
        let dead = top.join(format!("rcmd-{us}-{}-1", started + 1));
        let live = top.join(names::folder_name());
        let other = top.join("not-ours");
        for folder in [&dead, &live, &other] {
            std::fs::create_dir_all(folder.join("j1")).unwrap();
        }
        purge_dead_servers(&top, Duration::ZERO);
        let (dead_gone, live_kept, other_kept) = (!dead.exists(), live.join("j1").exists(), other.exists());
        std::fs::remove_dir_all(&top).unwrap();
        assert!(dead_gone, "a dead server's folder and its groups are purged");
        assert!(live_kept && other_kept, "a live server's folder and others are left");
    }
}
