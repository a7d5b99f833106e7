//! The io controller (blkio on v1): bytes per second read from and written
//! to one disk, the one that holds the data directory ([`disk_of`]).

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::dir::GroupDir;

/// A job's IO limits, in bytes per second; at least one is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Rates {
    pub read: Option<u64>,
    pub write: Option<u64>,
}

impl Rates {
    /// The limits, if there is any.
    pub fn of(read: Option<u64>, write: Option<u64>) -> Option<Rates> {
        (read.is_some() || write.is_some()).then_some(Rates { read, write })
    }
}

/// The v2 controller, in the job's core group (always a new group).
pub(super) mod v2 {
    use super::*;

    /// Limits the group's IO on `device` (`MAJ:MIN`) to `rates`, in one
    /// rule: a direction without a limit is `max`.
    pub fn set(group: &GroupDir, device: &str, rates: Rates) -> io::Result<()> {
        let bps = |limit: Option<u64>| limit.map_or("max".to_owned(), |b| b.to_string());
        group.write("io.max", format!("{device} rbps={} wbps={}", bps(rates.read), bps(rates.write)))
    }
}

/// The v1 controller, blkio, in a group of its own, which may be reused.
pub(super) mod v1 {
    use super::super::spares::Origin;
    use super::*;

    /// Limits the group's IO on `device` (`MAJ:MIN`) to `rates`, one rule
    /// per direction.
    pub fn set(group: &GroupDir, device: &str, rates: Rates, origin: Origin) -> io::Result<()> {
        for (file, limit) in
            [("blkio.throttle.read_bps_device", rates.read), ("blkio.throttle.write_bps_device", rates.write)]
        {
            // A reused group may hold the last job's rule for the other
            // direction: 0 lifts it.
            match (limit, origin) {
                (Some(bps), _) => group.write(file, format!("{device} {bps}"))?,
                (None, Origin::Reused) => group.write(file, format!("{device} 0"))?,
                (None, Origin::New) => {}
            }
        }
        Ok(())
    }

    /// Whether no IO request ever entered the throttle of the group or the
    /// groups that were below it (so none can still be queued there), and
    /// it has no iops rule (which rcmd never sets).
    pub fn did_no_io(group: &GroupDir) -> bool {
        let no_rule = |file| group.read(file).is_ok_and(|rules| rules.trim().is_empty());
        group.keyed("blkio.throttle.io_serviced_recursive", "Total") == Some(0)
            && no_rule("blkio.throttle.read_iops_device")
            && no_rule("blkio.throttle.write_iops_device")
    }
}

/// `MAJ:MIN` of the whole disk that holds `path` (throttling applies to
/// disks, not to their partitions).
pub(super) fn disk_of(path: &Path) -> io::Result<String> {
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
    use super::super::fake::{FakeGroup, files};
    use super::super::spares::Origin;
    use super::*;

    const V1_FILES: [&str; 2] = ["blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device"];

    #[test]
    fn rates_exist_only_when_a_direction_is_limited() {
        assert_eq!(Rates::of(None, None), None);
        assert_eq!(Rates::of(Some(1), None), Some(Rates { read: Some(1), write: None }));
    }

    #[test]
    fn a_v2_limit_is_one_io_max_rule_with_max_for_the_unlimited_direction() {
        let fake = FakeGroup::with(&["io.max", "io.weight"]);
        v2::set(fake.group(), "8:0", Rates { read: Some(1 << 20), write: None }).unwrap();
        assert_eq!(fake.written(), files(&[("io.max", "8:0 rbps=1048576 wbps=max")]));
        let fake = FakeGroup::with(&["io.max"]);
        v2::set(fake.group(), "259:0", Rates { read: Some(1), write: Some(2) }).unwrap();
        assert_eq!(fake.written(), files(&[("io.max", "259:0 rbps=1 wbps=2")]));
    }

    #[test]
    fn a_new_v1_group_gets_a_rule_only_for_the_limited_direction() {
        let fake = FakeGroup::with(&V1_FILES);
        v1::set(fake.group(), "8:0", Rates { read: None, write: Some(4096) }, Origin::New).unwrap();
        assert_eq!(fake.written(), files(&[("blkio.throttle.write_bps_device", "8:0 4096")]));
    }

    #[test]
    fn a_reused_v1_group_has_the_other_directions_old_rule_lifted() {
        let fake = FakeGroup::with(&V1_FILES);
        v1::set(fake.group(), "8:0", Rates { read: Some(512), write: None }, Origin::Reused).unwrap();
        assert_eq!(
            fake.written(),
            files(&[
                ("blkio.throttle.read_bps_device", "8:0 512"),
                ("blkio.throttle.write_bps_device", "8:0 0")
            ])
        );
    }

    #[test]
    fn a_v1_group_is_kept_only_if_no_io_entered_its_throttle_and_it_has_no_iops_rule() {
        let fake = FakeGroup::with(&["blkio.throttle.read_iops_device", "blkio.throttle.write_iops_device"]);
        let serviced = |total: u64| format!("8:0 Read 0\n8:0 Write {total}\nTotal {total}\n");
        fake.preset("blkio.throttle.io_serviced_recursive", &serviced(0));
        assert!(v1::did_no_io(fake.group()));
        fake.preset("blkio.throttle.read_iops_device", "8:0 100\n");
        assert!(!v1::did_no_io(fake.group()), "an iops rule");
        fake.preset("blkio.throttle.read_iops_device", "");
        fake.preset("blkio.throttle.io_serviced_recursive", &serviced(1));
        assert!(!v1::did_no_io(fake.group()), "a request went through");
    }

    #[test]
    fn a_directory_that_is_not_there_yet_is_on_its_nearest_ancestors_disk() {
        let here = std::env::temp_dir();
        let below = here.join("rcmdt-not-there/deeper");
        match (disk_of(&here), disk_of(&below)) {
            (Ok(disk), Ok(below)) => assert_eq!(disk, below),
            (Err(e), Err(below)) => assert_eq!(e.to_string(), below.to_string()),
            other => panic!("{other:?}"),
        }
    }
}
