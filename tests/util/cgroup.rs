//! Probes of a server's cgroup folders: freezing a group, counting the
//! groups that hold a process.

use std::path::{Path, PathBuf};

/// Freezes a cgroup v2 group (and every group below it) until dropped: a
/// job's process that joins a group below it stops there, before `exec`.
pub struct Frozen(PathBuf);

impl Frozen {
    pub fn freeze(group: PathBuf) -> Frozen {
        std::fs::write(group.join("cgroup.freeze"), "1").unwrap();
        Frozen(group)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0.join("cgroup.freeze"), "0");
    }
}

/// The groups right below `folder` that hold a process.
pub fn populated_groups(folder: &Path) -> usize {
    std::fs::read_dir(folder)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| std::fs::read_to_string(e.path().join("cgroup.procs")).is_ok_and(|p| !p.is_empty()))
        .count()
}
