//! The cpu controller: a job's share of CPU time, as a quota per period, and
//! the CPU time it used.
//!
//! On v2 the time is counted in every group (`cpu.stat` is a core file);
//! on v1 only where cpuacct is mounted with cpu ([`v1::USAGE`]).

use std::io;

use super::dir::GroupDir;

/// The period of the CPU quota: 100 ms, the kernel's default (v1 groups
/// are made with it).
const PERIOD_US: u64 = 100_000;

/// The quota per period for `cpus` CPUs (the kernel's minimum is 1 ms).
fn quota(cpus: f64) -> u64 {
    ((cpus * PERIOD_US as f64).round() as u64).max(1000)
}

/// The v2 controller, in the job's core group (always a new group).
pub(super) mod v2 {
    use super::*;

    /// Limits the group to `cpus` CPUs' time.
    pub fn set(group: &GroupDir, cpus: f64) -> io::Result<()> {
        group.write("cpu.max", format!("{} {PERIOD_US}", quota(cpus)))
    }

    /// CPU time (µs) of every process that was in the group, counted by
    /// every v2 group, with the cpu controller or without.
    pub fn usage_usec(group: &GroupDir) -> Option<u64> {
        group.keyed("cpu.stat", "usage_usec")
    }
}

/// The v1 controller, in a group of its own, which may be reused.
pub(super) mod v1 {
    use super::super::spares::Origin;
    use super::*;

    /// CPU time (ns), where cpuacct is mounted with cpu.
    pub const USAGE: &str = "cpuacct.usage";

    /// Limits the group to `cpus` CPUs' time.
    pub fn set(group: &GroupDir, cpus: f64, origin: Origin) -> io::Result<()> {
        // A new group's period is the kernel's default, ours; a job running
        // as root may have changed a reused group's, which would change
        // what the quota means.
        if origin == Origin::Reused {
            group.write("cpu.cfs_period_us", PERIOD_US)?;
        }
        group.write("cpu.cfs_quota_us", quota(cpus))
    }

    pub fn usage_ns(group: &GroupDir) -> Option<u64> {
        group.number(USAGE)
    }

    /// Counts a reused group's CPU time from 0 again.
    pub fn restart_usage(group: &GroupDir) -> io::Result<()> {
        group.write(USAGE, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake::{FakeGroup, files};
    use super::super::spares::Origin;
    use super::*;

    #[test]
    fn a_cpu_quota_is_a_share_of_the_period_and_never_below_the_kernels_minimum() {
        assert_eq!(quota(0.25), 25_000);
        assert_eq!(quota(2.0), 200_000);
        assert_eq!(quota(0.001), 1000);
    }

    #[test]
    fn a_v2_limit_is_one_write_of_quota_and_period_to_cpu_max() {
        let fake = FakeGroup::with(&["cpu.max", "cpu.weight"]);
        v2::set(fake.group(), 0.5).unwrap();
        assert_eq!(fake.written(), files(&[("cpu.max", "50000 100000")]));
    }

    #[test]
    fn a_new_v1_group_gets_only_its_quota_and_keeps_the_kernels_period() {
        let fake = FakeGroup::with(&["cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.shares"]);
        v1::set(fake.group(), 1.5, Origin::New).unwrap();
        assert_eq!(fake.written(), files(&[("cpu.cfs_quota_us", "150000")]));
    }

    #[test]
    fn a_reused_v1_group_gets_the_period_again_before_its_quota() {
        let fake = FakeGroup::with(&["cpu.cfs_quota_us", "cpu.cfs_period_us"]);
        v1::set(fake.group(), 0.25, Origin::Reused).unwrap();
        assert_eq!(fake.written(), files(&[("cpu.cfs_period_us", "100000"), ("cpu.cfs_quota_us", "25000")]));
        let fake = FakeGroup::with(&["cpu.cfs_quota_us"]);
        let error = v1::set(fake.group(), 0.25, Origin::Reused).unwrap_err().to_string();
        assert!(error.starts_with("cpu.cfs_period_us: "), "no quota without its period: {error}");
        assert!(fake.written().is_empty(), "{:?}", fake.written());
    }

    #[test]
    fn cpu_time_is_read_from_each_versions_files_and_a_reused_count_restarts() {
        let fake = FakeGroup::with(&[]);
        fake.preset("cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n");
        fake.preset("cpuacct.usage", "");
        assert_eq!(v2::usage_usec(fake.group()), Some(1500));
        v1::restart_usage(fake.group()).unwrap();
        assert_eq!(v1::usage_ns(fake.group()), Some(0));
    }
}
