//! Passing v2 controllers (memory, cpu, pids, io) down to our folder, and
//! the server's own leaf group that makes that possible on a delegated host.
//!
//! cgroup v2 lets a group pass a domain controller to its children only if
//! it holds no process itself ("no internal processes"; the root is
//! exempt). Under systemd with `Delegate=yes` the server is the only process
//! in the group handed to it (say `/system.slice/rcmd.service`), so enabling
//! a controller there fails with EBUSY. The server then moves itself into
//! `rcmd-PID-START-0` beside its folders and enables it again.
//!
//! Invariants:
//!
//! * **Only when it cures something.** The server moves only when our group
//!   refused a controller with EBUSY (the kernel's answer for "has
//!   processes"), is not the root, and holds this process and nothing else:
//!   then the move empties it. Where a wanted controller is not offered (the
//!   hybrid hosts, whose v2 hierarchy offers only `hugetlb`), where it is
//!   enabled already, or where other processes share our group, it stays.
//! * **Before any child.** [`Cgroups::detect`](super::Cgroups::detect) runs
//!   before the server starts any process (its guard included), so the
//!   move leaves nothing of ours behind; children started later are born in
//!   the leaf.
//! * **Named as the server's.** The leaf parses as this server's folder
//!   name with N = 0 (folders count from 1, [`super::names`]): a later
//!   server's start-up purges a dead server's leaf like its folders (once
//!   the guard born in it has finished and exited) and never touches a live
//!   one's. It stays while the server lives: the server is in it.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::names::leaf_name;

/// The v2 controllers jobs can have, when our group offers them.
const WANTED: [&str; 4] = ["memory", "cpu", "pids", "io"];

/// A group refused to pass a controller to its children.
#[derive(Debug, thiserror::Error)]
#[error("cannot enable {controller} in {}: {source}", file.display())]
pub(super) struct EnableError {
    controller: &'static str,
    file: PathBuf,
    source: io::Error,
}

impl EnableError {
    /// The kernel's answer for "the group has processes".
    fn is_busy(&self) -> bool {
        self.source.raw_os_error() == Some(libc::EBUSY)
    }
}

/// Why moving the server into its leaf cannot empty our group.
#[derive(Debug, thiserror::Error)]
pub(super) enum LeafError {
    #[error("cannot read our group's cgroup.procs: {0}")]
    UnreadableProcs(io::Error),
    #[error(
        "our group also holds processes that are not this server's (pids {}); run the server as its group's only process",
        .0.join(", ")
    )]
    Shared(Vec<String>),
    #[error("the server cannot move into a leaf group of its own: cannot create {}: {source}", leaf.display())]
    CreateLeaf { leaf: PathBuf, source: io::Error },
    #[error("the server cannot move into a leaf group of its own: cannot write {}: {source}", procs.display())]
    EnterLeaf { procs: PathBuf, source: io::Error },
}

/// Why our folder does not pass an offered controller to jobs.
#[derive(Debug, thiserror::Error)]
pub(super) enum NotPassed {
    #[error("{0}")]
    Refused(EnableError),
    /// Refused, and the server could not empty our group to cure it.
    #[error("{refused} ({blocked})")]
    Blocked { refused: EnableError, blocked: Arc<LeafError> },
}

/// Enables in our group and in our folder each wanted v2 controller that
/// our group is offered, moving the server into its leaf first if that is
/// what it takes. Returns each offered controller with whether our folder
/// now passes it to jobs, or why not.
pub(super) fn delegate_v2(own_group: &Path, folder: &Path) -> Vec<(&'static str, Result<(), NotPassed>)> {
    let offered = std::fs::read_to_string(own_group.join("cgroup.controllers")).unwrap_or_default();
    let wanted: Vec<&'static str> =
        offered.split_whitespace().filter_map(|c| WANTED.into_iter().find(|w| *w == c)).collect();
    let enable_all = || wanted.iter().map(|&c| (c, enable(own_group, c))).collect::<Vec<_>>();
    let mut in_group = enable_all();
    let busy = in_group.iter().any(|(_, r)| r.as_ref().is_err_and(EnableError::is_busy));
    let mut blocked = None;
    if busy {
        match leave_own_group(own_group) {
            Ok(Some(_leaf)) => in_group = enable_all(),
            Ok(None) => {}
            Err(why) => {
                tracing::warn!(group = %own_group.display(), "{why}: jobs get no v2 controllers from it");
                blocked = Some(Arc::new(why));
            }
        }
    }
    in_group
        .into_iter()
        .map(|(controller, in_group)| {
            let passed =
                in_group.and_then(|()| enable(folder, controller)).map_err(|refused| match &blocked {
                    Some(blocked) => NotPassed::Blocked { refused, blocked: Arc::clone(blocked) },
                    None => NotPassed::Refused(refused),
                });
            (controller, passed)
        })
        .collect()
}

/// Our group refused a controller because it holds processes: moves the
/// server into its leaf if that empties the group. The leaf, if it moved;
/// `None` where there is nothing a move would cure.
fn leave_own_group(own_group: &Path) -> Result<Option<PathBuf>, LeafError> {
    let procs = std::fs::read_to_string(own_group.join("cgroup.procs"));
    match leaf_decision(is_root(own_group), procs, std::process::id()) {
        Leaf::Stay => Ok(None),
        Leaf::Move => {
            let leaf = enter_leaf(own_group)?;
            tracing::info!(
                leaf = %leaf.display(),
                "moved the server into a leaf group of its own: cgroup v2 passes controllers to jobs only from a group without processes"
            );
            Ok(Some(leaf))
        }
        Leaf::Cannot(why) => Err(why),
    }
}

/// Enables `controller` for the children of the group `dir`, unless it is
/// already.
fn enable(dir: &Path, controller: &'static str) -> Result<(), EnableError> {
    let file = dir.join("cgroup.subtree_control");
    let already = std::fs::read_to_string(&file).unwrap_or_default();
    if already.split_whitespace().any(|c| c == controller) {
        return Ok(());
    }
    std::fs::write(&file, format!("+{controller}")).map_err(|source| EnableError { controller, file, source })
}

/// Whether `group` is the root of its v2 hierarchy: the one group without
/// `cgroup.type` (the kernel's Documentation/admin-guide/cgroup-v2.rst,
/// "Core Interface Files").
fn is_root(group: &Path) -> bool {
    !group.join("cgroup.type").exists()
}

/// What to do about our group refusing a controller because it holds
/// processes.
#[derive(Debug)]
enum Leaf {
    /// Nothing a move would cure.
    Stay,
    /// This process is all the group holds: moving it out empties it.
    Move,
    /// Moving would not empty the group: why.
    Cannot(LeafError),
}

/// Whether the server should move into its leaf, given whether our group is
/// the `root` and its `cgroup.procs` (one pid a line), `us` among them.
fn leaf_decision(root: bool, procs: io::Result<String>, us: u32) -> Leaf {
    if root {
        return Leaf::Stay; // exempt: the refusal was not about its processes
    }
    let procs = match procs {
        Ok(procs) => procs,
        Err(e) => return Leaf::Cannot(LeafError::UnreadableProcs(e)),
    };
    let pids: Vec<&str> = procs.split_whitespace().collect();
    let others: Vec<String> = pids.iter().filter(|p| p.parse() != Ok(us)).map(|p| p.to_string()).collect();
    match (others.is_empty(), pids.len() > others.len()) {
        (true, true) => Leaf::Move,
        (true, false) => Leaf::Stay,
        (false, _) => Leaf::Cannot(LeafError::Shared(others)),
    }
}

/// Moves this process into its leaf in `own_group`, made if need be.
fn enter_leaf(own_group: &Path) -> Result<PathBuf, LeafError> {
    let leaf = own_group.join(leaf_name());
    let made = match std::fs::create_dir(&leaf) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
        Err(source) => return Err(LeafError::CreateLeaf { leaf, source }),
    };
    // "0" is the writer. The server has threads by now (tokio's), but in v2
    // all threads of a process share one group, and writing a process to
    // cgroup.procs moves every thread of it, at once (the kernel's
    // cgroup-v2.rst, "Processes": "writing the PID of any thread migrates
    // all threads of the process"; the kernel holds off forks meanwhile).
    let procs = leaf.join("cgroup.procs");
    std::fs::write(&procs, "0").map_err(|source| {
        if made {
            let _ = std::fs::remove_dir(&leaf);
        }
        LeafError::EnterLeaf { procs, source }
    })?;
    Ok(leaf)
}

/// The group a process in `own_group` makes its folders in: `own_group`,
/// or its parent if `own_group` is this server's leaf (an earlier
/// `Cgroups` of this process moved it there).
pub(super) fn outside_own_leaf(own_group: &Path) -> PathBuf {
    match own_group.parent() {
        Some(parent) if own_group.file_name().is_some_and(|name| *name == *leaf_name()) => parent.to_owned(),
        _ => own_group.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::mounts::{self, Kind};
    use super::super::names::{folder_name, owner};
    use super::*;

    #[test]
    fn only_this_servers_own_leaf_is_stepped_out_of() {
        let own = PathBuf::from("/sys/fs/cgroup/system.slice/rcmd.service");
        assert_eq!(outside_own_leaf(&own.join(leaf_name())), own);
        assert_eq!(outside_own_leaf(&own), own);
        // Another server's leaf, one of our folders, a leaf at the top.
        let other = own.join(format!("rcmd-{}-1-0", std::process::id() + 1));
        assert_eq!(outside_own_leaf(&other), other);
        let folder = own.join(folder_name());
        assert_eq!(outside_own_leaf(&folder), folder);
        assert_eq!(outside_own_leaf(Path::new("/")), Path::new("/"));
    }

    #[test]
    #[ignore = "needs root: makes a cgroup"]
    fn on_this_hybrid_host_no_wanted_controller_is_offered_so_the_server_stays_where_it_is() {
        let read = |path: &str| std::fs::read_to_string(path).unwrap();
        let found = mounts::find(&read("/proc/self/mountinfo"), &read("/proc/self/cgroup"));
        let v2 = found.iter().find(|m| m.kind == Kind::V2).expect("a cgroup v2 hierarchy");
        let offered = std::fs::read_to_string(v2.own_group.join("cgroup.controllers")).unwrap();
        assert!(
            !offered.split_whitespace().any(|c| WANTED.contains(&c)),
            "this host is hybrid: its v2 hierarchy offers none of {WANTED:?} ({offered:?})"
        );
        let folder = v2.own_group.join(format!("rcmdt-deleg-{}", std::process::id()));
        std::fs::create_dir(&folder).unwrap();
        let before = read("/proc/self/cgroup");
        let passed = delegate_v2(&v2.own_group, &folder);
        let subtree = std::fs::read_to_string(folder.join("cgroup.subtree_control"));
        std::fs::remove_dir(&folder).unwrap();
        assert!(passed.is_empty(), "nothing offered, nothing passed (and nothing refused): {passed:?}");
        assert_eq!(read("/proc/self/cgroup"), before, "the process did not move");
        assert_eq!(subtree.unwrap(), "", "nothing was enabled in the folder");
        assert!(!v2.own_group.join(leaf_name()).exists(), "no leaf was made");
    }

    /// Set in the copy of the test binary that moves into its leaf.
    const MOVER: &str = "RCMDT_DELEG_MOVER_GROUP";

    #[test]
    #[ignore = "needs root: makes a cgroup and moves a process into it"]
    fn moving_into_the_leaf_takes_every_thread_and_later_folders_still_go_above_it() {
        if let Some(group) = std::env::var_os(MOVER) {
            return move_into_leaf_in(Path::new(&group));
        }
        // The move is of the whole process: another process does it, this
        // copy of the test binary, placed in a group of this test's first.
        let read = |path: &str| std::fs::read_to_string(path).unwrap();
        let found = mounts::find(&read("/proc/self/mountinfo"), &read("/proc/self/cgroup"));
        let v2 = found.iter().find(|m| m.kind == Kind::V2).expect("a cgroup v2 hierarchy");
        let group = TestGroup(v2.own_group.join(format!("rcmdt-deleg-leaf-{}", std::process::id())));
        std::fs::create_dir(&group.0).unwrap();
        let (_crate, module) = module_path!().split_once("::").unwrap();
        let test =
            format!("{module}::moving_into_the_leaf_takes_every_thread_and_later_folders_still_go_above_it");
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", &test, "--include-ignored", "--nocapture"])
            .env(MOVER, &group.0)
            .output()
            .unwrap();
        let said =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && said.contains("1 passed"), "{said}");
        let leaves: Vec<String> = std::fs::read_dir(&group.0)
            .unwrap()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        let [leaf] = &leaves[..] else { panic!("one leaf: {leaves:?}") };
        let (pid, _) = owner(leaf).expect("the leaf is named as its server's");
        assert_eq!(pid, mover_pid(&said), "{leaf}");
        assert!(leaf.ends_with("-0"), "{leaf}");
    }

    /// The pid the mover printed.
    fn mover_pid(said: &str) -> u32 {
        said.lines().find_map(|l| l.strip_prefix("mover pid ")?.trim().parse().ok()).expect("the mover's pid")
    }

    /// The mover: joins `group` (as a server starts in its service's
    /// group), starts a thread, moves into its leaf, and checks that every
    /// thread of it is there and that its folders would go in `group`.
    fn move_into_leaf_in(group: &Path) {
        std::fs::write(group.join("cgroup.procs"), "0").unwrap();
        println!("mover pid {}", std::process::id());
        let (parked, park) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || park.recv());
        let leaf = enter_leaf(group).unwrap();
        assert_eq!(leaf, group.join(leaf_name()));
        let tasks: Vec<PathBuf> =
            std::fs::read_dir("/proc/self/task").unwrap().map(|t| t.unwrap().path()).collect();
        assert!(tasks.len() >= 2, "{tasks:?}");
        let read = |path: &Path| std::fs::read_to_string(path).unwrap();
        for task in &tasks {
            let found = mounts::find(&read(Path::new("/proc/self/mountinfo")), &read(&task.join("cgroup")));
            let v2 = found.iter().find(|m| m.kind == Kind::V2).unwrap();
            assert_eq!(v2.own_group, leaf, "{}", task.display());
            assert_eq!(outside_own_leaf(&v2.own_group), group);
        }
        assert_eq!(read(&group.join("cgroup.procs")), "", "nothing of the process stayed behind");
        drop(parked);
        thread.join().unwrap().unwrap_err();
    }

    /// A group of this test, removed with the groups in it when dropped
    /// (the process that was in them has exited by then).
    struct TestGroup(PathBuf);

    impl Drop for TestGroup {
        fn drop(&mut self) {
            for below in std::fs::read_dir(&self.0).into_iter().flatten().flatten() {
                if below.file_type().is_ok_and(|t| t.is_dir()) {
                    let _ = std::fs::remove_dir(below.path());
                }
            }
            let _ = std::fs::remove_dir(&self.0);
        }
    }

    #[test]
    #[ignore = "needs root: makes a cgroup"]
    fn the_hierarchy_root_is_told_apart_from_a_group_below_it() {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let root = mountinfo
            .lines()
            .filter(|l| l.contains(" - cgroup2 "))
            .find_map(|l| {
                let fields: Vec<&str> = l.split(' ').collect();
                (fields[3] == "/").then(|| PathBuf::from(fields[4]))
            })
            .expect("a cgroup v2 hierarchy mounted from its root");
        assert!(is_root(&root), "{}", root.display());
        let below = TestGroup(root.join(format!("rcmdt-deleg-root-{}", std::process::id())));
        std::fs::create_dir(&below.0).unwrap();
        assert!(!is_root(&below.0), "{}", below.0.display());
    }

    #[test]
    fn a_refused_enable_keeps_the_kernels_errno_so_a_busy_group_is_recognised() {
        let group = std::env::temp_dir().join(format!("rcmdt-enable-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&group);
        std::fs::create_dir_all(group.join("cgroup.subtree_control")).unwrap(); // unwritable
        let refused = enable(&group, "memory").unwrap_err();
        assert_eq!(refused.source.raw_os_error(), Some(libc::EISDIR));
        assert!(!refused.is_busy());
        let message = refused.to_string();
        assert!(
            message.starts_with("cannot enable memory in ") && message.contains("cgroup.subtree_control")
        );
        let busy = EnableError { source: io::Error::from_raw_os_error(libc::EBUSY), ..refused };
        assert!(busy.is_busy());
        std::fs::remove_dir(group.join("cgroup.subtree_control")).unwrap();
        std::fs::write(group.join("cgroup.subtree_control"), "cpu memory\n").unwrap();
        assert!(enable(&group, "memory").is_ok(), "already enabled: nothing written");
        assert_eq!(std::fs::read_to_string(group.join("cgroup.subtree_control")).unwrap(), "cpu memory\n");
        std::fs::remove_dir_all(&group).unwrap();
    }

    #[test]
    fn the_server_moves_only_when_it_is_all_its_group_holds_and_the_group_is_not_the_root() {
        let us = std::process::id();
        let procs = |pids: &[u32]| Ok(pids.iter().map(|p| format!("{p}\n")).collect::<String>());
        assert!(matches!(leaf_decision(false, procs(&[us]), us), Leaf::Move));
        assert!(matches!(leaf_decision(true, procs(&[us]), us), Leaf::Stay), "the root is exempt");
        assert!(matches!(leaf_decision(false, procs(&[]), us), Leaf::Stay), "we are not in it");
        let Leaf::Cannot(why) = leaf_decision(false, procs(&[us, us + 1, us + 2]), us) else {
            panic!("moving would leave others behind")
        };
        let why = why.to_string();
        assert!(why.contains(&format!("pids {}, {}", us + 1, us + 2)), "{why}");
        assert!(!why.contains(&format!("{us},")), "{why}");
        let Leaf::Cannot(why) = leaf_decision(false, Err(io::Error::from_raw_os_error(libc::EACCES)), us)
        else {
            panic!("an unreadable group is not moved out of")
        };
        let why = why.to_string();
        assert!(why.contains("cgroup.procs"), "{why}");
    }
}
