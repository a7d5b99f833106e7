//! The pids controller: the most processes (and threads) a job may have at
//! once. Its files are named alike in v1 and v2, so one writer serves both:
//! in the core group (v2) or in a group of its own (v1).

use std::io;

use super::dir::GroupDir;

/// Limits the group to `max` processes and threads.
pub(super) fn set(group: &GroupDir, max: u64) -> io::Result<()> {
    group.write("pids.max", max)
}

/// Whether no task counts in the group: a process counts until it is
/// reaped, not only until it exits, and so does every thread.
pub(super) fn counts_none(group: &GroupDir) -> bool {
    group.number("pids.current") == Some(0)
}

#[cfg(test)]
mod tests {
    use super::super::fake::{FakeGroup, files};
    use super::*;

    #[test]
    fn a_limit_goes_to_pids_max_alone() {
        let fake = FakeGroup::with(&["pids.max", "pids.current"]);
        set(fake.group(), 64).unwrap();
        assert_eq!(fake.written(), files(&[("pids.max", "64")]));
    }

    #[test]
    fn a_group_counts_none_only_when_pids_current_reads_zero() {
        let fake = FakeGroup::with(&[]);
        assert!(!counts_none(fake.group()), "an unreadable count proves nothing");
        fake.preset("pids.current", "1\n");
        assert!(!counts_none(fake.group()));
        fake.preset("pids.current", "0\n");
        assert!(counts_none(fake.group()));
    }
}
