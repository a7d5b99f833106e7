//! Cgroups as a job's boundary: every job in a group of its own, limits on
//! it, a kill that reaches every process it started, and what it used.
//!
//! Hosts differ, so [`Cgroups::detect`] looks at what this process has: a
//! cgroup v2 hierarchy (its core files, `cgroup.kill`, and whatever
//! controllers are delegated to us) and v1 hierarchies, each found from
//! `/proc/self/mountinfo` and `/proc/self/cgroup` ([`mounts`]).
//!
//! Invariants:
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
//!   the leaf.
//! * **Leftovers of dead servers only.** At start-up, a folder (or leaf)
//!   whose server is gone (no such pid, or a different start time) is
//!   purged: its jobs killed, its groups removed. A live server's folder is
//!   never touched.
//! * **One core group per job, always.** It is in the v2 hierarchy where
//!   there is one, else in the v1 freezer; it is how the job is killed.
//!   Groups in v1 controller hierarchies are made only for the limits a job
//!   asks for. No two running jobs ever share a group.
//! * **In before it runs.** The job's process joins all its groups between
//!   clone and exec ([`JobGroup::procs`]), so nothing of the job ever runs
//!   outside them.
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

mod delegate;
mod dir;
mod group;
pub(crate) mod mounts;
mod spares;

use std::fmt;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dir::{Folder, GroupDir};
pub(crate) use group::JobGroup;
use group::{CpuStat, Held, Kill, MemoryStat, Outlived};
pub use group::{ResourceUsage, purge};
use mounts::Kind;
use spares::Spares;

use super::Limits;
use crate::limits::{BytesPerSecond, Cpus, Memory, Pids};

/// How long start-up and shutdown wait for killed processes to exit before
/// giving up on removing their groups.
const PURGE_LIMIT: Duration = Duration::from_secs(5);

/// A limit the host cannot enforce, or a limit that is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unsupported(pub String);

/// Where one limit's files are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// In the job's core group: a controller of the v2 hierarchy.
    V2,
    /// In a group of its own, in our folder of the v1 hierarchy `folders[i]`.
    V1(usize),
}

/// The server's cgroups: its folders, and which limits it can enforce.
#[derive(Debug)]
pub struct Cgroups {
    /// Our folder in the hierarchy of every job's core group.
    core: Arc<Folder>,
    kill: Kill,
    /// Whether `cpu.stat` in the core group counts CPU time (v2).
    core_counts_cpu: bool,
    /// Whether the v1 cpu folder counts it (`cpuacct.usage`: cpu and
    /// cpuacct mounted together), where the core group does not.
    v1_cpu_counts: bool,
    /// Our folders in v1 controller hierarchies, by index.
    folders: Vec<Arc<Folder>>,
    memory: Option<Place>,
    cpu: Option<Place>,
    pids: Option<Place>,
    io: Option<Place>,
    /// `MAJ:MIN` of the disk IO limits apply to.
    io_device: Option<String>,
    /// What this host lacks, for the start-up log and 400 answers.
    missing: Missing,
    next_job: AtomicU64,
    /// Whether emptied core groups are kept: where they are v2 groups
    /// without controllers (a hybrid host), so that no limit outlives a job
    /// (only its CPU time, which the next counts from, and what a job
    /// running as root may set: see `Outlived::v2_core`).
    keeps_core: bool,
    /// Emptied groups kept for later jobs: of `folders`, by index, and of
    /// the core folder, at index `folders.len()`.
    spares: Arc<Spares>,
}

/// Why each limit is missing, if it is.
#[derive(Debug, Default)]
struct Missing {
    memory: Option<String>,
    cpu: Option<String>,
    pids: Option<String>,
    io: Option<String>,
}

/// A controller's v1 and v2 names.
struct Controller {
    v1: &'static str,
    v2: &'static str,
}

const MEMORY: Controller = Controller { v1: "memory", v2: "memory" };
const CPU: Controller = Controller { v1: "cpu", v2: "cpu" };
const PIDS: Controller = Controller { v1: "pids", v2: "pids" };
const IO: Controller = Controller { v1: "blkio", v2: "io" };

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
        let name = folder_name();
        // Once the server has moved into its leaf (an earlier `Cgroups` of
        // this process did), its folders still go in the group above it.
        let v2_group =
            found.iter().find(|m| m.kind == Kind::V2).map(|m| delegate::outside_own_leaf(&m.own_group));
        let v2_folder = v2_group.as_deref().map(|group| make_folder(group, &name));
        let (core, kill, core_counts_cpu) = match v2_folder {
            Some(Ok(folder)) if folder.path().join("cgroup.kill").exists() => (folder, Kill::V2, true),
            other => {
                let why_not_v2 = match other {
                    None => "no cgroup v2 hierarchy".to_owned(),
                    Some(Ok(folder)) => {
                        let _ = std::fs::remove_dir(folder.path());
                        "cgroup v2 has no cgroup.kill (Linux < 5.14)".to_owned()
                    }
                    Some(Err(e)) => e,
                };
                let freezer = found.iter().find(|m| m.has_v1("freezer"));
                match freezer.map(|m| make_folder(&m.own_group, &name)) {
                    Some(Ok(folder)) => (folder, Kill::Freezer, false),
                    Some(Err(e)) => return Err(Unsupported(format!("{why_not_v2}, and {e}"))),
                    None => return Err(Unsupported(format!("{why_not_v2} and no v1 freezer"))),
                }
            }
        };
        let mut cgroups = Cgroups::without_limits(core, kill, core_counts_cpu);
        let v2_controllers = match (kill, &v2_group) {
            (Kill::V2, Some(group)) => delegate::delegate_v2(group, cgroups.core.path()),
            _ => Vec::new(),
        };
        for (controller, slot, missing) in [
            (MEMORY, &mut cgroups.memory, &mut cgroups.missing.memory),
            (CPU, &mut cgroups.cpu, &mut cgroups.missing.cpu),
            (PIDS, &mut cgroups.pids, &mut cgroups.missing.pids),
            (IO, &mut cgroups.io, &mut cgroups.missing.io),
        ] {
            // Offered to our group means bound to v2: no v1 hierarchy has it.
            if let Some((_, passed)) = v2_controllers.iter().find(|(c, _)| c == controller.v2) {
                match passed {
                    Ok(()) => *slot = Some(Place::V2),
                    Err(why) => *missing = Some(format!("cgroup v2 does not pass it to jobs: {why}")),
                }
                continue;
            }
            match found.iter().find(|m| m.has_v1(controller.v1)) {
                None => *missing = Some(format!("no {} controller (v2 or v1) is available", controller.v1)),
                Some(mounted) => match make_folder(&mounted.own_group, &name) {
                    Ok(folder) => {
                        *slot = Some(Place::V1(cgroups.folders.len()));
                        cgroups.folders.push(folder);
                    }
                    Err(e) => *missing = Some(e),
                },
            }
        }
        cgroups.spares = Arc::new(Spares::new(cgroups.folders.len() + 1));
        // Job groups get controllers only from our folder's subtree_control.
        let passed_to_jobs = std::fs::read_to_string(cgroups.core.path().join("cgroup.subtree_control"));
        cgroups.keeps_core = kill == Kill::V2 && passed_to_jobs.is_ok_and(|c| c.trim().is_empty());
        cgroups.v1_cpu_counts = matches!(cgroups.cpu, Some(Place::V1(i)) if cgroups.folders[i].path().join("cpuacct.usage").exists());
        cgroups.require_swap_cap();
        if cgroups.io.is_some() {
            match disk_of(data_dir) {
                Ok(device) => cgroups.io_device = Some(device),
                Err(e) => {
                    cgroups.missing.io =
                        Some(format!("the data directory {} is not on a disk: {e}", data_dir.display()));
                    cgroups.io = None;
                }
            }
        }
        Ok(cgroups)
    }

    /// Jobs get a core group in `core`, and no limits yet.
    fn without_limits(core: Arc<Folder>, kill: Kill, core_counts_cpu: bool) -> Cgroups {
        Cgroups {
            core,
            kill,
            core_counts_cpu,
            v1_cpu_counts: false,
            folders: Vec::new(),
            memory: None,
            cpu: None,
            pids: None,
            io: None,
            io_device: None,
            missing: Missing::default(),
            next_job: AtomicU64::new(1),
            keeps_core: false,
            spares: Arc::new(Spares::new(1)),
        }
    }

    /// A memory limit includes swap ("no swap past it"): where the kernel
    /// does not account swap per group (v1 without `memory.memsw.*`, v2
    /// without `memory.swap.max`), a job could swap past its limit, so
    /// memory limits are not offered at all.
    fn require_swap_cap(&mut self) {
        let swap_file = match self.memory {
            Some(Place::V1(i)) => self.folders[i].path().join("memory.memsw.limit_in_bytes"),
            Some(Place::V2) => self.core.path().join("memory.swap.max"),
            None => return,
        };
        if !swap_file.exists() {
            self.memory = None;
            self.missing.memory = Some(format!(
                "the kernel does not account swap per cgroup (no {}; boot with swapaccount=1), so a job could swap past its limit",
                swap_file.file_name().unwrap_or_default().to_string_lossy()
            ));
        }
    }

    /// Whether this host can enforce every limit in `limits`.
    pub fn check(&self, limits: &Limits) -> Result<(), Unsupported> {
        let asked = [
            (limits.memory.is_some(), &self.missing.memory, "memory"),
            (limits.cpus.is_some(), &self.missing.cpu, "cpus"),
            (limits.pids.is_some(), &self.missing.pids, "pids"),
            (limits.io_read_bps.is_some() || limits.io_write_bps.is_some(), &self.missing.io, "io"),
        ];
        for (wanted, missing, name) in asked {
            if let (true, Some(why)) = (wanted, missing) {
                return Err(Unsupported(format!("this server cannot enforce a {name} limit: {why}")));
            }
        }
        Ok(())
    }

    /// Makes the groups of a new job with `limits` in force, reusing spare
    /// groups where there are some. Its process must then join them
    /// (write "0" to each of [`JobGroup::procs`]).
    pub(crate) fn create(&self, limits: &Limits) -> io::Result<JobGroup> {
        self.check(limits).map_err(|e| io::Error::new(io::ErrorKind::Unsupported, e.0))?;
        let name = format!("j{}", self.next_job.fetch_add(1, Ordering::Relaxed));
        let asked = [
            (self.memory, limits.memory.is_some()),
            (self.cpu, limits.cpus.is_some()),
            (self.pids, limits.pids.is_some()),
            (self.io, limits.io_read_bps.is_some() || limits.io_write_bps.is_some()),
        ];
        // Each v1 folder a limit asked for needs, once; its index here is
        // its group's index in `limited`.
        let mut v1_folders: Vec<usize> = Vec::new();
        for (place, wanted) in asked {
            if let (true, Some(Place::V1(folder))) = (wanted, place)
                && !v1_folders.contains(&folder)
            {
                v1_folders.push(folder);
            }
        }
        let limited = v1_folders
            .iter()
            .map(|&folder| {
                let outlived_by = Outlived {
                    pids: self.pids == Some(Place::V1(folder)),
                    memory: self.memory == Some(Place::V1(folder)),
                    io: self.io == Some(Place::V1(folder)),
                    v2_core: false,
                };
                match self.spares.take(folder) {
                    Some(dir) => Held::new(dir, folder, true, outlived_by, true),
                    None => Held::new(self.folders[folder].group(&name), folder, false, outlived_by, true),
                }
            })
            .collect();
        let core_spares = self.folders.len();
        let core_outlived_by = Outlived { v2_core: true, ..Outlived::default() };
        let core = match self.keeps_core.then(|| self.spares.take(core_spares)).flatten() {
            Some(dir) => Held::new(dir, core_spares, true, core_outlived_by, true),
            None => Held::new(self.core.group(&name), core_spares, false, core_outlived_by, self.keeps_core),
        };
        let index = |place: Option<Place>| match place? {
            Place::V2 => None,
            Place::V1(folder) => v1_folders.iter().position(|&f| f == folder),
        };
        let memory = match self.memory.filter(|_| limits.memory.is_some()) {
            Some(Place::V2) => Some(MemoryStat::V2),
            place => index(place).map(MemoryStat::V1),
        };
        let cpu_stat = match (self.core_counts_cpu, self.v1_cpu_counts) {
            (true, _) => Some(CpuStat::V2Core),
            (false, true) => index(self.cpu.filter(|_| limits.cpus.is_some())).map(CpuStat::V1),
            (false, false) => None,
        };
        let mut group = JobGroup {
            core,
            kill: self.kill,
            limited,
            cpu_stat,
            memory,
            oom_kills_before: 0,
            cpu_usec_before: 0,
            procs: Vec::new(),
            spares: Arc::clone(&self.spares),
        };
        let (mut oom_kills_before, mut cpu_usec_before) = (0, 0);
        let made = (|| {
            for held in std::iter::once(&group.core).chain(&group.limited).filter(|h| !h.reused) {
                held.dir.make()?;
            }
            // A kept core group has no controllers (see `keeps_core`): only
            // its CPU time goes on counting.
            if group.core.reused && group.cpu_stat == Some(CpuStat::V2Core) {
                cpu_usec_before =
                    group.core.dir.keyed("cpu.stat", "usage_usec").ok_or_else(|| {
                        io::Error::new(io::ErrorKind::InvalidData, "cpu.stat: no usage_usec")
                    })?;
            }
            // By name, as the limits are written: both reach the same group.
            group.procs = group.dirs().map(GroupDir::open_procs).collect::<io::Result<_>>()?;
            // Where a controller's files are for this job, if it has them.
            let files_of = |place: Option<Place>| match place? {
                Place::V2 => Some((&group.core.dir, Files::V2)),
                Place::V1(_) => {
                    let limited = &group.limited[index(place)?];
                    Some((&limited.dir, Files::V1 { reused: limited.reused }))
                }
            };
            if let Some((dir, files)) = files_of(self.memory) {
                oom_kills_before = set_memory(dir, files, limits.memory.map(Memory::get))?;
            }
            if let Some((dir, files)) = files_of(self.cpu) {
                set_cpu(dir, files, limits.cpus.map(Cpus::get))?;
            }
            if let Some((dir, _)) = files_of(self.pids) {
                set_pids(dir, limits.pids.map(Pids::get))?;
            }
            if let (Some((dir, files)), Some(device)) = (files_of(self.io), &self.io_device) {
                set_io(dir, files, device, limits)?;
            }
            if let Some(CpuStat::V1(i)) = group.cpu_stat
                && group.limited[i].reused
            {
                group.limited[i].dir.write("cpuacct.usage", 0)?;
            }
            Ok::<_, io::Error>(())
        })();
        if let Err(e) = made {
            for held in std::iter::once(&mut group.core).chain(&mut group.limited) {
                held.keepable = false;
            }
            group.remove_blocking(Duration::ZERO);
            return Err(io::Error::new(e.kind(), format!("cannot make the job's cgroup: {e}")));
        }
        group.oom_kills_before = oom_kills_before;
        group.cpu_usec_before = cpu_usec_before;
        Ok(group)
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

/// The period of the CPU quota: 100 ms, the kernel's default (v1 groups
/// are made with it).
const CPU_PERIOD_US: u64 = 100_000;

/// The quota per period for `cpus` CPUs (the kernel's minimum is 1 ms).
fn cpu_quota(cpus: f64) -> u64 {
    ((cpus * CPU_PERIOD_US as f64).round() as u64).max(1000)
}

/// What kind of group a controller's limit files are in.
#[derive(Debug, Clone, Copy)]
enum Files {
    /// The job's new v2 core group: no limit is set yet.
    V2,
    /// A v1 group, new (no limit set yet) or `reused`: then it holds the
    /// limit of the job before. Each v1 folder serves one controller (a
    /// second one mounted beside it finds the folder made and is missing),
    /// so a reused group is always given its limit again.
    V1 { reused: bool },
}

/// Sets a memory limit; returns the OOM kills the group counted before
/// (a reused v1 group goes on counting).
fn set_memory(dir: &GroupDir, files: Files, bytes: Option<u64>) -> io::Result<u64> {
    match (files, bytes) {
        (Files::V2, Some(bytes)) => {
            dir.write("memory.max", bytes)?;
            dir.write("memory.swap.max", 0)?;
            Ok(0)
        }
        (Files::V1 { reused: false }, Some(bytes)) => memory_v1(dir, bytes).map(|()| 0),
        (Files::V1 { reused: true }, Some(bytes)) => {
            let oom = dir.read("memory.oom_control")?;
            if dir::keyed_in(&oom, "oom_kill_disable") != Some(0) {
                // A job running as root turned the OOM killer off: the next
                // would hang at its limit instead of being killed.
                dir.write("memory.oom_control", 0)?;
            }
            memory_v1(dir, bytes)?;
            dir.write("memory.max_usage_in_bytes", 0)?;
            Ok(dir::keyed_in(&oom, "oom_kill").unwrap_or(0))
        }
        (_, None) => Ok(0),
    }
}

/// Sets the v1 memory limit and the memory+swap one to `value` ("-1": none).
/// The kernel keeps the first at most the second at every step, so one
/// order raises both and the other lowers both: a reused group's old limits
/// may be on either side.
fn memory_v1(dir: &GroupDir, value: impl fmt::Display + Copy) -> io::Result<()> {
    const MEMORY: &str = "memory.limit_in_bytes";
    const MEMORY_AND_SWAP: &str = "memory.memsw.limit_in_bytes";
    let Err(first) = dir.write(MEMORY, value) else {
        return dir.write(MEMORY_AND_SWAP, value);
    };
    // Raising past the old memory+swap limit: that one first. If it fails
    // too, the first error says why (EBUSY: the group uses more).
    dir.write(MEMORY_AND_SWAP, value).map_err(|_| first)?;
    dir.write(MEMORY, value)
}

fn set_cpu(dir: &GroupDir, files: Files, cpus: Option<f64>) -> io::Result<()> {
    match (files, cpus) {
        (Files::V2, Some(cpus)) => dir.write("cpu.max", format!("{} {CPU_PERIOD_US}", cpu_quota(cpus))),
        (Files::V1 { reused }, Some(cpus)) => {
            // A new group's period is the kernel's default, ours; a job
            // running as root may have changed a reused group's, which
            // would change what the quota means.
            if reused {
                dir.write("cpu.cfs_period_us", CPU_PERIOD_US)?;
            }
            dir.write("cpu.cfs_quota_us", cpu_quota(cpus))
        }
        _ => Ok(()),
    }
}

fn set_pids(dir: &GroupDir, max: Option<u64>) -> io::Result<()> {
    max.map_or(Ok(()), |max| dir.write("pids.max", max))
}

fn set_io(dir: &GroupDir, files: Files, device: &str, limits: &Limits) -> io::Result<()> {
    let (read, written) =
        (limits.io_read_bps.map(BytesPerSecond::get), limits.io_write_bps.map(BytesPerSecond::get));
    match files {
        Files::V2 if read.is_some() || written.is_some() => {
            let bps = |limit: Option<u64>| limit.map_or("max".to_owned(), |b| b.to_string());
            dir.write("io.max", format!("{device} rbps={} wbps={}", bps(read), bps(written)))
        }
        Files::V2 => Ok(()),
        Files::V1 { reused } => {
            for (file, limit) in
                [("blkio.throttle.read_bps_device", read), ("blkio.throttle.write_bps_device", written)]
            {
                // A reused group may hold the last job's rule for the
                // other direction: 0 lifts it.
                match (limit, reused) {
                    (Some(bps), _) => dir.write(file, format!("{device} {bps}"))?,
                    (None, true) => dir.write(file, format!("{device} 0"))?,
                    (None, false) => {}
                }
            }
            Ok(())
        }
    }
}

impl fmt::Display for Cgroups {
    /// One line: what jobs get here, and what they cannot have.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kill = match self.kill {
            Kill::V2 => "cgroup.kill",
            Kill::Freezer => "v1 freezer",
        };
        write!(f, "a cgroup per job in {} (killed with {kill})", self.core.path().display())?;
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
            if !purge(&folder, PURGE_LIMIT) {
                tracing::warn!(folder = %folder.display(), "cannot remove this cgroup folder: processes in it do not exit");
            }
        }
    }
}

/// `rcmd-PID-START-N`: unique to this `Cgroups` of this process.
fn folder_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("{}-{}", server_name(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// `rcmd-PID-START`: this process, as the names of its folders and its leaf
/// ([`delegate`]) start.
fn server_name() -> String {
    let pid = std::process::id();
    format!("rcmd-{pid}-{}", start_time(pid).unwrap_or(0))
}

/// A process's start time (clock ticks since boot), field 22 of its stat.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may hold spaces: count after it.
    stat.rsplit_once(')')?.1.split_whitespace().nth(19)?.parse().ok()
}

/// The server (pid, start time) a folder of ours names, if it is one.
fn owner(name: &str) -> Option<(u32, u64)> {
    let mut parts = name.strip_prefix("rcmd-")?.split('-');
    let (pid, start, n) = (parts.next()?.parse().ok()?, parts.next()?.parse().ok()?, parts.next()?);
    (parts.next().is_none() && n.parse::<u64>().is_ok()).then_some((pid, start))
}

/// Purges the folders of servers that are gone from `own_group`, then makes
/// ours. `Err` says why it cannot.
fn make_folder(own_group: &Path, name: &str) -> Result<Arc<Folder>, String> {
    if let Ok(entries) = std::fs::read_dir(own_group) {
        for entry in entries.filter_map(Result::ok) {
            let Some((pid, start)) = entry.file_name().to_str().and_then(owner) else { continue };
            if start_time(pid) == Some(start) {
                continue; // its server lives
            }
            tracing::info!(folder = %entry.path().display(), "removing the cgroups of a server that is gone");
            if !purge(&entry.path(), PURGE_LIMIT) {
                tracing::warn!(folder = %entry.path().display(), "cannot remove a gone server's cgroups");
            }
        }
    }
    let folder = own_group.join(name);
    std::fs::create_dir(&folder).map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
    Folder::open(folder.clone()).map_err(|e| {
        let _ = std::fs::remove_dir(&folder);
        format!("cannot open {}: {e}", folder.display())
    })
}

/// `MAJ:MIN` of the whole disk that holds `path` (throttling applies to
/// disks, not to their partitions).
fn disk_of(path: &Path) -> io::Result<String> {
    // The directory may not exist yet: its nearest existing ancestor's disk
    // is the one it will be made on.
    let dev = path
        .ancestors()
        .find_map(|p| std::fs::metadata(p).ok())
        .ok_or_else(|| io::Error::other("no such directory"))?
        .dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    if major == 0 {
        return Err(io::Error::other("its filesystem has no block device"));
    }
    let sys = PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
    if sys.join("partition").exists() {
        let disk = std::fs::read_to_string(sys.join("..").join("dev"))?;
        return Ok(disk.trim().to_owned());
    }
    if !sys.exists() {
        return Err(io::Error::other(format!("no block device {major}:{minor}")));
    }
    Ok(format!("{major}:{minor}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_parse_back_to_their_server_and_nothing_else_does() {
        assert_eq!(owner("rcmd-123-456-7"), Some((123, 456)));
        for other in ["rcmdt-1-2-3", "rcmd-1-2", "rcmd-a-2-3", "rcmd-1-2-3-4", "rcmd", "j5"] {
            assert_eq!(owner(other), None, "{other}");
        }
        let name = folder_name();
        let (pid, start) = owner(&name).unwrap();
        assert_eq!((pid, Some(start)), (std::process::id(), start_time(std::process::id())));
    }

    #[test]
    fn a_memory_limit_that_could_not_cap_swap_is_refused_naming_why() {
        let dir = std::env::temp_dir().join(format!("rcmdt-memsw-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("core")).unwrap();
        let mut cgroups = Cgroups::without_limits(Folder::open(dir.join("core")).unwrap(), Kill::V2, false);
        cgroups.folders.push(Folder::open(dir.clone()).unwrap());
        cgroups.memory = Some(Place::V1(0));
        let memory = Limits { memory: Some(Memory::new(64 << 20).unwrap()), ..Limits::default() };
        std::fs::write(dir.join("memory.memsw.limit_in_bytes"), "").unwrap();
        cgroups.require_swap_cap();
        assert_eq!(cgroups.check(&memory), Ok(()));
        std::fs::remove_file(dir.join("memory.memsw.limit_in_bytes")).unwrap();
        cgroups.require_swap_cap();
        let refused = cgroups.check(&memory).unwrap_err().0;
        assert!(refused.starts_with("this server cannot enforce a memory limit:"), "{refused}");
        assert!(
            refused.contains("memory.memsw.limit_in_bytes") && refused.contains("swap past"),
            "{refused}"
        );
        cgroups.folders.clear();
        drop(cgroups); // removes its core folder
        std::fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn a_cpu_quota_is_a_share_of_the_period_and_never_below_the_kernels_minimum() {
        assert_eq!(cpu_quota(0.25), 25_000);
        assert_eq!(cpu_quota(2.0), 200_000);
        assert_eq!(cpu_quota(0.001), 1000);
    }
}
