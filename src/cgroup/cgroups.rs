//! [`Cgroups`]: the server's folders, where each limit's files are, and why
//! a limit is missing. Found by [`Cgroups::detect`](super::detect), used by
//! [`Cgroups::create`](super::create); here are what is asked of it between
//! the two: [`Cgroups::check`], the folders a guard purges, and the one
//! line the start-up log shows.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use super::Limits;
use super::asked::Asked;
use super::core_group::Kill;
use super::dir::Folder;
use super::group::Keeping;
use super::spares::Spares;
use super::tree;

/// How long start-up and shutdown wait for killed processes to exit before
/// giving up on removing their groups.
pub(super) const PURGE_LIMIT: Duration = Duration::from_secs(5);

/// A limit the host cannot enforce, or a limit that is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unsupported(pub String);

/// Where one limit's files are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Place {
    /// In the job's core group: a controller of the v2 hierarchy.
    V2,
    /// In a group of its own, in our folder of the v1 hierarchy `folders[i]`.
    V1(usize),
}

/// The server's cgroups: its folders, and which limits it can enforce.
#[derive(Debug)]
pub struct Cgroups {
    /// Our folder in the hierarchy of every job's core group.
    pub(super) core: Arc<Folder>,
    pub(super) kill: Kill,
    /// Whether the v1 cpu folder counts CPU time (`cpuacct.usage`: cpu and
    /// cpuacct mounted together), where the core group does not.
    pub(super) v1_cpu_counts: bool,
    /// Our folders in v1 controller hierarchies, by index. Each serves one
    /// controller: a second one mounted beside it finds the folder made,
    /// and is missing.
    pub(super) folders: Vec<Arc<Folder>>,
    pub(super) memory: Option<Place>,
    pub(super) cpu: Option<Place>,
    pub(super) pids: Option<Place>,
    pub(super) io: Option<Place>,
    /// `MAJ:MIN` of the disk IO limits apply to.
    pub(super) io_device: Option<String>,
    /// What this host lacks, for the start-up log and 400 answers.
    pub(super) missing: Missing,
    pub(super) next_job: AtomicU64,
    /// Whether emptied core groups are kept: only where they are v2 groups
    /// without controllers (a hybrid host), so that no limit outlives a job
    /// (only its CPU time, which the next counts from, and what a job
    /// running as root may set: see `Outlived::v2_core`).
    pub(super) core_keeping: Keeping,
    /// Emptied groups kept for later jobs: of `folders`, by index, and of
    /// the core folder, at index `folders.len()`.
    pub(super) spares: Arc<Spares>,
}

/// Why each limit is missing, if it is.
#[derive(Debug, Default)]
pub(super) struct Missing {
    pub memory: Option<String>,
    pub cpu: Option<String>,
    pub pids: Option<String>,
    pub io: Option<String>,
}

impl Cgroups {
    /// Jobs get a core group in `core`, killed by `kill`, and no limits.
    #[cfg(test)]
    pub(super) fn without_limits(core: Arc<Folder>, kill: Kill) -> Cgroups {
        Cgroups {
            core,
            kill,
            v1_cpu_counts: false,
            folders: Vec::new(),
            memory: None,
            cpu: None,
            pids: None,
            io: None,
            io_device: None,
            missing: Missing::default(),
            next_job: AtomicU64::new(1),
            core_keeping: Keeping::Never,
            spares: Arc::new(Spares::new(1)),
        }
    }

    /// Whether the core group counts CPU time: `cpu.stat` is a core file of
    /// every v2 group, and v1 freezer groups have none.
    pub(super) fn core_counts_cpu(&self) -> bool {
        self.kill == Kill::V2
    }

    /// The index of the core folder's spares.
    pub(super) fn core_index(&self) -> usize {
        self.folders.len()
    }

    /// Our folder at `index` of the spares: a v1 folder, or the core one.
    pub(super) fn folder_at(&self, index: usize) -> &Arc<Folder> {
        if index == self.core_index() { &self.core } else { &self.folders[index] }
    }

    /// Whether this host can enforce every limit in `limits`.
    pub fn check(&self, limits: &Limits) -> Result<(), Unsupported> {
        let asked = Asked::of(limits);
        let limits = [
            (asked.memory.is_some(), &self.missing.memory, "memory"),
            (asked.cpus.is_some(), &self.missing.cpu, "cpus"),
            (asked.pids.is_some(), &self.missing.pids, "pids"),
            (asked.io.is_some(), &self.missing.io, "io"),
        ];
        for (wanted, missing, name) in limits {
            if let (true, Some(why)) = (wanted, missing) {
                return Err(Unsupported(format!("this server cannot enforce a {name} limit: {why}")));
            }
        }
        Ok(())
    }

    /// The spare groups kept for later jobs: empty, and no job's.
    pub fn spare_groups(&self) -> Vec<PathBuf> {
        self.spares.all()
    }

    /// Every folder of ours, core first: what a guard purges if we die.
    pub fn folders(&self) -> Vec<PathBuf> {
        std::iter::once(&self.core).chain(&self.folders).map(|f| f.path().to_owned()).collect()
    }
}

impl fmt::Display for Cgroups {
    /// One line: what jobs get here, and what they cannot have.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (core, kill) = (self.core.path().display(), self.kill.describe());
        write!(f, "a cgroup per job in {core} (killed with {kill})")?;
        let limits = [
            ("memory", self.memory, &self.missing.memory),
            ("cpus", self.cpu, &self.missing.cpu),
            ("pids", self.pids, &self.missing.pids),
            ("io", self.io, &self.missing.io),
        ];
        for (name, place, missing) in limits {
            match (place, missing) {
                (Some(Place::V2), _) => write!(f, "; {name}: v2")?,
                (Some(Place::V1(i)), _) => write!(f, "; {name}: v1 {}", self.folders[i].path().display())?,
                (None, Some(why)) => write!(f, "; {name}: NO ({why})")?,
                (None, None) => write!(f, "; {name}: NO")?,
            }
        }
        if let Some(device) = &self.io_device {
            write!(f, "; io limits on disk {device}")?;
        }
        Ok(())
    }
}

impl Drop for Cgroups {
    /// Removes our folders. Jobs were reaped first; anything left (a group
    /// whose removal gave up) is killed and removed now.
    fn drop(&mut self) {
        for folder in self.folders() {
            if !tree::purge(&folder, PURGE_LIMIT) {
                tracing::warn!(folder = %folder.display(), "cannot remove this cgroup folder: processes in it do not exit");
            }
        }
    }
}
