//! [`Cgroups::detect`]: what this host offers jobs, found once at start-up
//! in small steps: the hierarchies and our group in each ([`super::mounts`]),
//! the folder for core groups and how they are killed, where each
//! controller's limits go, whether emptied groups are kept, whether memory
//! limits can cap swap, and the disk IO limits apply to.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use super::cgroups::{Cgroups, Missing, PURGE_LIMIT, Place, Unsupported};
use super::core_group::{self, Kill};
use super::delegate::{self, NotPassed};
use super::dir::Folder;
use super::group::Keeping;
use super::mounts::{self, Kind, Mounted};
use super::spares::Spares;
use super::{cpu, memory, names, tree};

/// A controller's v1 and v2 names.
#[derive(Debug, Clone, Copy)]
struct Controller {
    v1: &'static str,
    v2: &'static str,
}

const MEMORY: Controller = Controller { v1: "memory", v2: "memory" };
const CPU: Controller = Controller { v1: "cpu", v2: "cpu" };
const PIDS: Controller = Controller { v1: "pids", v2: "pids" };
const IO: Controller = Controller { v1: "blkio", v2: "io" };

/// Why our folder could not be made in a hierarchy.
#[derive(Debug, thiserror::Error)]
enum FolderError {
    #[error("cannot create {}: {source}", path.display())]
    Create { path: PathBuf, source: io::Error },
    #[error("cannot open {}: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
}

/// Why jobs' core groups are not in the v2 hierarchy.
#[derive(Debug, thiserror::Error)]
enum NoV2Core {
    #[error("no cgroup v2 hierarchy")]
    NoHierarchy,
    #[error("cgroup v2 has no cgroup.kill (Linux < 5.14)")]
    NoKill,
    #[error(transparent)]
    Folder(FolderError),
}

/// Why jobs cannot have a controller's limits here.
#[derive(Debug, thiserror::Error)]
enum NotPlaced {
    #[error("cgroup v2 does not pass it to jobs: {0}")]
    NotPassed(NotPassed),
    #[error("no {0} controller (v2 or v1) is available")]
    Unavailable(&'static str),
    #[error(transparent)]
    Folder(FolderError),
}

/// A memory limit would not cap swap here.
#[derive(Debug, thiserror::Error)]
#[error(
    "the kernel does not account swap per cgroup (no {0}; boot with swapaccount=1), so a job could swap past its limit"
)]
struct NoSwapAccounting(&'static str);

/// IO limits have no disk to apply to.
#[derive(Debug, thiserror::Error)]
#[error("the data directory {} is not on a disk: {source}", dir.display())]
struct NotOnADisk {
    dir: PathBuf,
    source: io::Error,
}

impl Cgroups {
    /// Finds this process's cgroups, purges dead servers' folders, and makes
    /// ours. `data_dir` names the disk that IO limits apply to. `Err` says
    /// why jobs cannot have cgroups here at all (they then are process
    /// groups only, and no limit can be enforced).
    pub fn detect(data_dir: &Path) -> Result<Cgroups, Unsupported> {
        let read = |path: &str| {
            std::fs::read_to_string(path).map_err(|e| Unsupported(format!("cannot read {path}: {e}")))
        };
        let found = mounts::find(&read("/proc/self/mountinfo")?, &read("/proc/self/cgroup")?);
        let name = names::folder_name();
        // Once the server has moved into its leaf (an earlier `Cgroups` of
        // this process did), its folders still go in the group above it.
        let v2_group =
            found.iter().find(|m| m.kind == Kind::V2).map(|m| delegate::outside_own_leaf(&m.own_group));
        let (core, kill) = core_folder(&found, v2_group.as_deref(), &name)?;
        let mut passed = match (kill, &v2_group) {
            (Kill::V2, Some(group)) => delegate::delegate_v2(group, core.path()),
            _ => Vec::new(),
        };
        let mut folders = Vec::new();
        let mut missing = Missing::default();
        let mut placed = |controller, why_not: &mut Option<String>| {
            noting(place(controller, &mut passed, &found, &name, &mut folders), why_not)
        };
        let memory = placed(MEMORY, &mut missing.memory);
        let cpu = placed(CPU, &mut missing.cpu);
        let pids = placed(PIDS, &mut missing.pids);
        let io = placed(IO, &mut missing.io);
        let folder_of = |place: Place| match place {
            Place::V2 => &core,
            Place::V1(i) => &folders[i],
        };
        let memory =
            memory.and_then(|place| noting(swap_capped(folder_of(place), place), &mut missing.memory));
        let v1_cpu_counts =
            matches!(cpu, Some(Place::V1(i)) if folders[i].path().join(cpu::v1::USAGE).exists());
        let io_device = io.and_then(|_| noting(disk_of(data_dir), &mut missing.io));
        Ok(Cgroups {
            core_keeping: core_keeping(kill, &core),
            core,
            kill,
            v1_cpu_counts,
            spares: Arc::new(Spares::new(folders.len() + 1)),
            folders,
            memory,
            cpu,
            pids,
            io: io.filter(|_| io_device.is_some()),
            io_device,
            missing,
            next_job: AtomicU64::new(1),
        })
    }
}

/// `Some` of what `result` holds, or `None`, noting why in `why_not`.
fn noting<T, E: std::fmt::Display>(result: Result<T, E>, why_not: &mut Option<String>) -> Option<T> {
    result.map_err(|why| *why_not = Some(why.to_string())).ok()
}

/// Emptied core groups are kept only where they are v2 groups without
/// controllers: job groups get controllers only from our folder's
/// `cgroup.subtree_control`, and it passes none.
fn core_keeping(kill: Kill, core: &Folder) -> Keeping {
    let passed_to_jobs = std::fs::read_to_string(core.path().join("cgroup.subtree_control"));
    if kill == Kill::V2 && passed_to_jobs.is_ok_and(|c| c.trim().is_empty()) {
        Keeping::IfAsGoodAsNew
    } else {
        Keeping::Never
    }
}

/// A memory limit includes swap ("no swap past it"): where the kernel does
/// not account swap per group (v1 without `memory.memsw.*`, v2 without
/// `memory.swap.max`), a job could swap past its limit, so memory limits at
/// `place` (whose files are in `folder`) are not offered at all.
fn swap_capped(folder: &Folder, place: Place) -> Result<Place, NoSwapAccounting> {
    let swap_file = match place {
        Place::V1(_) => memory::v1::SWAP_LIMIT,
        Place::V2 => memory::v2::SWAP_LIMIT,
    };
    if folder.path().join(swap_file).exists() { Ok(place) } else { Err(NoSwapAccounting(swap_file)) }
}

/// IO limits apply to the disk of the data directory: without one, they
/// are not offered.
fn disk_of(data_dir: &Path) -> Result<String, NotOnADisk> {
    super::io::disk_of(data_dir).map_err(|source| NotOnADisk { dir: data_dir.to_owned(), source })
}

/// Our folder for the jobs' core groups, and how they are killed: in the v2
/// hierarchy where it has `cgroup.kill`, else in the v1 freezer.
fn core_folder(
    found: &[Mounted],
    v2_group: Option<&Path>,
    name: &str,
) -> Result<(Arc<Folder>, Kill), Unsupported> {
    let why_not_v2 = match v2_group.map(|group| make_folder(group, name)) {
        Some(Ok(folder)) if folder.path().join(core_group::v2::KILL).exists() => {
            return Ok((folder, Kill::V2));
        }
        None => NoV2Core::NoHierarchy,
        Some(Ok(folder)) => {
            let _ = std::fs::remove_dir(folder.path());
            NoV2Core::NoKill
        }
        Some(Err(e)) => NoV2Core::Folder(e),
    };
    match found.iter().find(|m| m.has_v1("freezer")).map(|m| make_folder(&m.own_group, name)) {
        Some(Ok(folder)) => Ok((folder, Kill::Freezer)),
        Some(Err(e)) => Err(Unsupported(format!("{why_not_v2}, and {e}"))),
        None => Err(Unsupported(format!("{why_not_v2} and no v1 freezer"))),
    }
}

/// Where jobs' groups get `controller`: in their core group, if our folder
/// was offered it in v2 (`passed`, of which it takes the controller's
/// answer), else in a folder of ours in its v1 hierarchy, which it makes
/// and pushes onto `folders`.
fn place(
    controller: Controller,
    passed: &mut Vec<(&'static str, Result<(), NotPassed>)>,
    found: &[Mounted],
    name: &str,
    folders: &mut Vec<Arc<Folder>>,
) -> Result<Place, NotPlaced> {
    // Offered to our group means bound to v2: no v1 hierarchy has it.
    if let Some(i) = passed.iter().position(|(c, _)| *c == controller.v2) {
        let (_, passed) = passed.swap_remove(i);
        return passed.map(|()| Place::V2).map_err(NotPlaced::NotPassed);
    }
    let mounted =
        found.iter().find(|m| m.has_v1(controller.v1)).ok_or(NotPlaced::Unavailable(controller.v1))?;
    let folder = make_folder(&mounted.own_group, name).map_err(NotPlaced::Folder)?;
    folders.push(folder);
    Ok(Place::V1(folders.len() - 1))
}

/// Purges the folders of servers that are gone from `own_group`, then makes
/// ours.
fn make_folder(own_group: &Path, name: &str) -> Result<Arc<Folder>, FolderError> {
    tree::purge_dead_servers(own_group, PURGE_LIMIT);
    let path = own_group.join(name);
    std::fs::create_dir(&path).map_err(|source| FolderError::Create { path: path.clone(), source })?;
    Folder::open(path.clone()).map_err(|source| {
        let _ = std::fs::remove_dir(&path);
        FolderError::Open { path, source }
    })
}

#[cfg(test)]
mod tests {
    use super::super::Limits;
    use super::*;

    #[test]
    fn a_memory_limit_that_could_not_cap_swap_is_refused_naming_why() {
        let dir = std::env::temp_dir().join(format!("rcmdt-memsw-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("core")).unwrap();
        let folder = Folder::open(dir.clone()).unwrap();
        std::fs::write(dir.join("memory.memsw.limit_in_bytes"), "").unwrap();
        assert_eq!(swap_capped(&folder, Place::V1(0)).ok(), Some(Place::V1(0)));
        std::fs::remove_file(dir.join("memory.memsw.limit_in_bytes")).unwrap();
        let mut cgroups = Cgroups::without_limits(Folder::open(dir.join("core")).unwrap(), Kill::V2);
        cgroups.memory = noting(swap_capped(&folder, Place::V1(0)), &mut cgroups.missing.memory);
        assert_eq!(cgroups.memory, None, "no memory limit is offered");
        let memory = Limits { memory: Some(64 << 20), ..Limits::default() };
        let refused = cgroups.check(&memory).unwrap_err().0;
        assert!(refused.starts_with("this server cannot enforce a memory limit:"), "{refused}");
        assert!(
            refused.contains("memory.memsw.limit_in_bytes") && refused.contains("swap past"),
            "{refused}"
        );
        assert_eq!(cgroups.check(&Limits::default()), Ok(()), "other jobs are not refused");
        drop(cgroups); // removes its core folder
        std::fs::remove_dir(&dir).unwrap();
    }
}
