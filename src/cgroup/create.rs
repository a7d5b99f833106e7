//! [`Cgroups::create`]: a new job's groups with its limits in force, in
//! small steps: read what the job asks for ([`Asked`]), assign it a group
//! in each hierarchy it needs (a spare or a new one), make the new ones,
//! open their `cgroup.procs`, write each controller's limit, and note the
//! counts a reused group held before.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Limits;
use super::asked::Asked;
use super::cgroups::{Cgroups, Place};
use super::dir::GroupDir;
use super::group::{CpuStat, Held, JobGroup, Keeping, MemoryStat, Outlived};
use super::spares::Origin;
use super::{cpu, memory, pids};

/// Where a controller's files are for one job.
enum Files<'a> {
    /// In its core group, new: no limit is set yet.
    V2(&'a GroupDir),
    /// In a v1 group of its own, new or reused (see [`Origin`]).
    V1(&'a Held),
}

impl Cgroups {
    /// Makes the groups of a new job with `limits` in force, reusing spare
    /// groups where there are some. Its process must then join them
    /// (write "0" to each of [`JobGroup::procs`]).
    pub(crate) fn create(&self, limits: &Limits) -> io::Result<JobGroup> {
        self.check(limits).map_err(|e| io::Error::new(io::ErrorKind::Unsupported, e.0))?;
        let asked = Asked::of(limits);
        let name = format!("j{}", self.next_job.fetch_add(1, Ordering::Relaxed));
        let mut group = self.assign(&asked, &name);
        match self.set_up(&mut group, &asked) {
            Ok(()) => Ok(group),
            Err(e) => {
                group.discard();
                Err(io::Error::new(e.kind(), format!("cannot make the job's cgroup: {e}")))
            }
        }
    }

    /// The job's groups, none made yet: its core group, and a group in each
    /// v1 folder that holds a controller it asks for.
    fn assign(&self, asked: &Asked, name: &str) -> JobGroup {
        let mut v1_folders: Vec<usize> = Vec::new();
        for place in [
            self.memory.filter(|_| asked.memory.is_some()),
            self.cpu.filter(|_| asked.cpus.is_some()),
            self.pids.filter(|_| asked.pids.is_some()),
            self.io.filter(|_| asked.io.is_some()),
        ] {
            if let Some(Place::V1(folder)) = place
                && !v1_folders.contains(&folder)
            {
                v1_folders.push(folder);
            }
        }
        let limited: Vec<Held> = v1_folders
            .iter()
            .map(|&folder| self.hold(folder, name, self.outlived_in(folder), Keeping::IfAsGoodAsNew))
            .collect();
        let core_outlived_by = Outlived { v2_core: true, ..Outlived::default() };
        let core = self.hold(self.core_index(), name, core_outlived_by, self.core_keeping);
        let memory = match self.memory.filter(|_| asked.memory.is_some()) {
            Some(Place::V2) => Some(MemoryStat::V2),
            place => index_in(&limited, place).map(MemoryStat::V1),
        };
        let cpu_stat = if self.core_counts_cpu() {
            Some(CpuStat::V2Core)
        } else if self.v1_cpu_counts {
            index_in(&limited, self.cpu.filter(|_| asked.cpus.is_some())).map(CpuStat::V1)
        } else {
            None
        };
        JobGroup {
            core,
            kill: self.kill,
            limited,
            cpu_stat,
            memory,
            oom_kills_before: 0,
            cpu_usec_before: 0,
            procs: Vec::new(),
            spares: Arc::clone(&self.spares),
        }
    }

    /// A group for the job `name` in the folder at `folder` of the spares: a
    /// spare where that folder's groups are kept and one is there, else a
    /// new one.
    fn hold(&self, folder: usize, name: &str, outlived_by: Outlived, keeping: Keeping) -> Held {
        let spare = match keeping {
            Keeping::IfAsGoodAsNew => self.spares.take(folder),
            Keeping::Never => None,
        };
        match spare {
            Some(dir) => Held::new(dir, folder, Origin::Reused, outlived_by, keeping),
            None => Held::new(self.folder_at(folder).group(name), folder, Origin::New, outlived_by, keeping),
        }
    }

    /// What outlives a job in a group of the v1 folder `folder`: the
    /// controller that folder serves decides.
    fn outlived_in(&self, folder: usize) -> Outlived {
        let here = Some(Place::V1(folder));
        Outlived { v2_core: false, pids: self.pids == here, memory: self.memory == here, io: self.io == here }
    }

    /// Makes the job's new groups and writes its limits into them, in the
    /// order the kernel needs.
    fn set_up(&self, group: &mut JobGroup, asked: &Asked) -> io::Result<()> {
        for held in group.held().filter(|held| held.origin == Origin::New) {
            held.dir.make()?;
        }
        // A kept core group has no controllers (see `core_keeping`): only
        // its CPU time goes on counting.
        if group.core.origin == Origin::Reused && group.cpu_stat == Some(CpuStat::V2Core) {
            group.cpu_usec_before = cpu::v2::usage_usec(&group.core.dir)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "cpu.stat: no usage_usec"))?;
        }
        // By name, as the limits are written: both reach the same group.
        group.procs = group.held().map(|held| held.dir.open_procs()).collect::<io::Result<_>>()?;
        group.oom_kills_before = self.write_limits(group, asked)?;
        if let Some(CpuStat::V1(i)) = group.cpu_stat
            && group.limited[i].origin == Origin::Reused
        {
            cpu::v1::restart_usage(&group.limited[i].dir)?;
        }
        Ok(())
    }

    /// Writes each limit the job asks for into the group with its
    /// controller. Returns the OOM kills its memory group counted before.
    fn write_limits(&self, group: &JobGroup, asked: &Asked) -> io::Result<u64> {
        let mut oom_kills_before = 0;
        if let Some(bytes) = asked.memory {
            match files(group, self.memory) {
                Some(Files::V2(dir)) => memory::v2::set(dir, bytes)?,
                Some(Files::V1(held)) => oom_kills_before = memory::v1::set(&held.dir, bytes, held.origin)?,
                None => {}
            }
        }
        if let Some(cpus) = asked.cpus {
            match files(group, self.cpu) {
                Some(Files::V2(dir)) => cpu::v2::set(dir, cpus)?,
                Some(Files::V1(held)) => cpu::v1::set(&held.dir, cpus, held.origin)?,
                None => {}
            }
        }
        if let Some(max) = asked.pids {
            match files(group, self.pids) {
                Some(Files::V2(dir)) => pids::set(dir, max)?,
                Some(Files::V1(held)) => pids::set(&held.dir, max)?,
                None => {}
            }
        }
        if let (Some(rates), Some(device)) = (asked.io, &self.io_device) {
            match files(group, self.io) {
                Some(Files::V2(dir)) => super::io::v2::set(dir, device, rates)?,
                Some(Files::V1(held)) => super::io::v1::set(&held.dir, device, rates, held.origin)?,
                None => {}
            }
        }
        Ok(oom_kills_before)
    }
}

/// The index in `limited` of the group in the v1 folder of `place`.
fn index_in(limited: &[Held], place: Option<Place>) -> Option<usize> {
    match place? {
        Place::V2 => None,
        Place::V1(folder) => limited.iter().position(|held| held.folder == folder),
    }
}

/// Where the files of a controller at `place` are for the job of `group`.
fn files(group: &JobGroup, place: Option<Place>) -> Option<Files<'_>> {
    match place? {
        Place::V2 => Some(Files::V2(&group.core.dir)),
        place => index_in(&group.limited, Some(place)).map(|i| Files::V1(&group.limited[i])),
    }
}
