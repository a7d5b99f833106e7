//! The memory controller: a job's limit, with no swap past it; the most
//! memory it used at once; the processes the OOM killer ended.
//!
//! A memory limit includes swap, so it is offered only where the kernel
//! accounts swap per group ([`v1::SWAP_LIMIT`], [`v2::SWAP_LIMIT`]).

use std::io;

use super::dir::GroupDir;

/// The v2 controller, in the job's core group (always a new group: core
/// groups that have controllers are never kept).
pub(super) mod v2 {
    use super::*;

    /// There only where swap is accounted per group.
    pub const SWAP_LIMIT: &str = "memory.swap.max";

    /// Limits the group to `bytes`, and to no swap.
    pub fn set(group: &GroupDir, bytes: u64) -> io::Result<()> {
        group.write("memory.max", bytes)?;
        group.write(SWAP_LIMIT, 0)
    }

    pub fn peak(group: &GroupDir) -> Option<u64> {
        group.number("memory.peak")
    }

    pub fn oom_kills(group: &GroupDir) -> Option<u64> {
        group.keyed("memory.events", "oom_kill")
    }
}

/// The v1 controller, in a group of its own, which may be reused.
pub(super) mod v1 {
    use super::super::dir::keyed_in;
    use super::super::spares::Origin;
    use super::*;

    /// The memory+swap limit: there only where swap is accounted per group.
    pub const SWAP_LIMIT: &str = "memory.memsw.limit_in_bytes";
    const LIMIT: &str = "memory.limit_in_bytes";
    const OOM_CONTROL: &str = "memory.oom_control";
    const PEAK: &str = "memory.max_usage_in_bytes";

    /// Memory an empty group may still have charged and be reused: the
    /// kernel charges ahead in batches per CPU, so an empty group rarely
    /// reads 0. It is page cache and kernel objects the next job's limit
    /// can reclaim; tmpfs files and swap, which it could not, must be none.
    const STALE_CHARGE: u64 = 1 << 20;

    /// Limits the group to `bytes`, memory and swap together. Returns the
    /// OOM kills the group counted before (a reused group goes on
    /// counting), and restarts its peak.
    pub fn set(group: &GroupDir, bytes: u64, origin: Origin) -> io::Result<u64> {
        if origin == Origin::New {
            return set_both(group, bytes).map(|()| 0);
        }
        let oom = group.read(OOM_CONTROL)?;
        if keyed_in(&oom, "oom_kill_disable") != Some(0) {
            // A job running as root turned the OOM killer off: the next
            // would hang at its limit instead of being killed.
            group.write(OOM_CONTROL, 0)?;
        }
        set_both(group, bytes)?;
        group.write(PEAK, 0)?;
        Ok(keyed_in(&oom, "oom_kill").unwrap_or(0))
    }

    /// Sets the memory limit and the memory+swap one to `bytes`. The kernel
    /// keeps the first at most the second at every step, so one order
    /// raises both and the other lowers both: a reused group's old limits
    /// may be on either side.
    fn set_both(group: &GroupDir, bytes: u64) -> io::Result<()> {
        let Err(first) = group.write(LIMIT, bytes) else {
            return group.write(SWAP_LIMIT, bytes);
        };
        // Raising past the old memory+swap limit: that one first. If it
        // fails too, the first error says why (EBUSY: the group uses more).
        group.write(SWAP_LIMIT, bytes).map_err(|_| first)?;
        group.write(LIMIT, bytes)
    }

    pub fn peak(group: &GroupDir) -> Option<u64> {
        group.number(PEAK)
    }

    pub fn oom_kills(group: &GroupDir) -> Option<u64> {
        group.keyed(OOM_CONTROL, "oom_kill")
    }

    /// Whether an empty group holds nothing the next job would pay for: no
    /// tmpfs or shared memory pages, and memory plus swap within
    /// [`STALE_CHARGE`] (memory limits need swap accounting, so the file is
    /// there).
    pub fn holds_nothing_for_the_next_job(group: &GroupDir) -> bool {
        group.keyed("memory.stat", "shmem") == Some(0)
            && group.number("memory.memsw.usage_in_bytes").is_some_and(|used| used <= STALE_CHARGE)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake::{FakeGroup, files};
    use super::super::spares::Origin;
    use super::*;

    const V1_FILES: [&str; 3] =
        ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.max_usage_in_bytes"];

    #[test]
    fn a_v2_limit_goes_to_memory_max_and_allows_no_swap() {
        let fake = FakeGroup::with(&["memory.max", "memory.swap.max", "memory.high"]);
        v2::set(fake.group(), 64 << 20).unwrap();
        assert_eq!(fake.written(), files(&[("memory.max", "67108864"), ("memory.swap.max", "0")]));
    }

    #[test]
    fn a_v2_limit_that_cannot_cap_swap_fails_naming_the_file() {
        let fake = FakeGroup::with(&["memory.max"]);
        let error = v2::set(fake.group(), 1 << 20).unwrap_err().to_string();
        assert!(error.starts_with("memory.swap.max: "), "{error}");
    }

    #[test]
    fn a_new_v1_group_gets_the_same_limit_for_memory_and_for_memory_plus_swap() {
        let fake = FakeGroup::with(&V1_FILES);
        assert_eq!(v1::set(fake.group(), 32 << 20, Origin::New).unwrap(), 0);
        assert_eq!(
            fake.written(),
            files(&[("memory.limit_in_bytes", "33554432"), ("memory.memsw.limit_in_bytes", "33554432")])
        );
    }

    #[test]
    fn a_reused_v1_group_restarts_its_peak_and_reports_the_oom_kills_counted_before() {
        let fake = FakeGroup::with(&V1_FILES);
        let oom_control = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        fake.preset("memory.oom_control", oom_control);
        assert_eq!(v1::set(fake.group(), 1 << 20, Origin::Reused).unwrap(), 3);
        assert_eq!(
            fake.written(),
            files(&[
                ("memory.limit_in_bytes", "1048576"),
                ("memory.memsw.limit_in_bytes", "1048576"),
                ("memory.max_usage_in_bytes", "0"),
                ("memory.oom_control", oom_control),
            ])
        );
    }

    #[test]
    fn a_reused_v1_group_whose_oom_killer_was_turned_off_has_it_turned_on_again() {
        let fake = FakeGroup::with(&V1_FILES);
        fake.preset("memory.oom_control", "oom_kill_disable 1\nunder_oom 0\noom_kill 0\n");
        v1::set(fake.group(), 1 << 20, Origin::Reused).unwrap();
        // One write of "0", over the first byte of the plain file.
        assert_eq!(fake.read("memory.oom_control"), "0om_kill_disable 1\nunder_oom 0\noom_kill 0\n");
    }

    #[test]
    fn when_neither_order_can_set_the_v1_limit_the_error_is_the_memory_limits() {
        let fake = FakeGroup::with(&V1_FILES);
        fake.unwritable("memory.limit_in_bytes");
        fake.unwritable("memory.memsw.limit_in_bytes");
        let error = v1::set(fake.group(), 1 << 20, Origin::New).unwrap_err().to_string();
        assert!(error.starts_with("memory.limit_in_bytes: "), "{error}");
    }

    #[test]
    fn when_the_memory_limit_refuses_first_memory_plus_swap_is_written_before_it_is_tried_again() {
        let fake = FakeGroup::with(&V1_FILES);
        fake.unwritable("memory.limit_in_bytes");
        let error = v1::set(fake.group(), 1 << 20, Origin::New).unwrap_err().to_string();
        assert!(error.starts_with("memory.limit_in_bytes: "), "{error}");
        assert_eq!(fake.read("memory.memsw.limit_in_bytes"), "1048576");
    }

    #[test]
    fn usage_is_read_from_each_versions_files() {
        let fake = FakeGroup::with(&[]);
        fake.preset("memory.peak", "4096\n");
        fake.preset("memory.events", "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n");
        fake.preset("memory.max_usage_in_bytes", "8192\n");
        fake.preset("memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 5\n");
        assert_eq!((v2::peak(fake.group()), v2::oom_kills(fake.group())), (Some(4096), Some(1)));
        assert_eq!((v1::peak(fake.group()), v1::oom_kills(fake.group())), (Some(8192), Some(5)));
    }

    #[test]
    fn an_empty_v1_group_is_kept_only_without_tmpfs_pages_and_within_the_stale_charge() {
        let fake = FakeGroup::with(&[]);
        let kept = |shmem: u64, used: u64| {
            fake.preset("memory.stat", &format!("cache 0\nshmem {shmem}\nrss 0\n"));
            fake.preset("memory.memsw.usage_in_bytes", &format!("{used}\n"));
            v1::holds_nothing_for_the_next_job(fake.group())
        };
        assert!(kept(0, 1 << 20));
        assert!(!kept(4096, 0), "tmpfs pages would count against the next job");
        assert!(!kept(0, (1 << 20) + 1), "more than a trace of memory or swap");
    }
}
