//! Where this process's cgroups are: each mounted hierarchy, from
//! `/proc/self/mountinfo`, joined with this process's own group in it, from
//! `/proc/self/cgroup`. Paths are never guessed: a hierarchy that is not
//! mounted, or whose mount does not reach our group, is not used.

use std::path::PathBuf;

/// A hierarchy: the v2 one, or a v1 one with its controllers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    V2,
    /// The v1 controllers bound to it (`name=...` hierarchies included).
    V1(Vec<String>),
}

/// A hierarchy this process can see, and the directory of its own group in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mounted {
    pub kind: Kind,
    pub own_group: PathBuf,
}

impl Mounted {
    /// Whether this is the v1 hierarchy with `controller`.
    pub fn has_v1(&self, controller: &str) -> bool {
        matches!(&self.kind, Kind::V1(controllers) if controllers.iter().any(|c| c == controller))
    }
}

/// Every hierarchy that is both mounted and one of ours, from the text of
/// `/proc/self/mountinfo` and `/proc/self/cgroup`.
pub(crate) fn find(mountinfo: &str, own_cgroups: &str) -> Vec<Mounted> {
    let mut found: Vec<Mounted> = Vec::new();
    for mount in mountinfo.lines().filter_map(parse_mount) {
        if found.iter().any(|m| m.kind == mount.kind) {
            continue; // a second mount of the same hierarchy
        }
        let Some(own) = own_cgroups.lines().find_map(|line| own_path(line, &mount.kind)) else {
            continue;
        };
        // A mount shows the hierarchy from `root` down; our group must be in it.
        let Ok(inside) = std::path::Path::new(own).strip_prefix(&mount.root) else {
            continue;
        };
        found.push(Mounted { kind: mount.kind, own_group: mount.point.join(inside) });
    }
    found
}

struct Mount {
    kind: Kind,
    root: String,
    point: PathBuf,
}

/// `ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER`
fn parse_mount(line: &str) -> Option<Mount> {
    let (left, right) = line.split_once(" - ")?;
    let mut left = left.split(' ');
    let root = unescape(left.nth(3)?);
    let point = PathBuf::from(unescape(left.next()?));
    let mut right = right.split(' ');
    let kind = match right.next()? {
        "cgroup2" => Kind::V2,
        "cgroup" => {
            let options = right.nth(1)?;
            let controllers: Vec<String> =
                options.split(',').filter(|o| !matches!(*o, "rw" | "ro")).map(str::to_owned).collect();
            Kind::V1(controllers.into_iter().filter(|c| is_controller(c)).collect())
        }
        _ => return None,
    };
    Some(Mount { kind, root, point })
}

/// The options of a v1 mount that name its controllers (or its name).
fn is_controller(option: &str) -> bool {
    option.starts_with("name=")
        || !matches!(option, "noprefix" | "clone_children" | "xattr" | "nsdelegate" | "cpuset_v2_mode")
            && !option.starts_with("release_agent=")
}

/// Our group's path in `kind`'s hierarchy, from a `/proc/self/cgroup` line
/// `ID:CONTROLLERS:PATH`.
fn own_path<'a>(line: &'a str, kind: &Kind) -> Option<&'a str> {
    let mut fields = line.splitn(3, ':');
    let (id, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
    let matches = match kind {
        Kind::V2 => id == "0" && controllers.is_empty(),
        Kind::V1(ours) => {
            let mut theirs: Vec<&str> = controllers.split(',').collect();
            let mut ours: Vec<&str> = ours.iter().map(String::as_str).collect();
            theirs.sort_unstable();
            ours.sort_unstable();
            !ours.is_empty() && theirs == ours
        }
    };
    matches.then_some(path)
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u8::from_str_radix(d, 8).ok());
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTS: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_OWN: &str = "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/e5d0\n1:cpu:/\n0::/\n";

    #[test]
    fn the_hybrid_layout_maps_each_hierarchy_to_our_own_group() {
        let found = find(HYBRID_MOUNTS, HYBRID_OWN);
        let memory = found.iter().find(|m| m.has_v1("memory")).unwrap();
        assert_eq!(memory.own_group, PathBuf::from("/sys/fs/cgroup/memory/process_api/e5d0"));
        let v2 = found.iter().find(|m| m.kind == Kind::V2).unwrap();
        assert_eq!(v2.own_group, PathBuf::from("/sys/fs/cgroup/unified/"));
        assert!(found.iter().any(|m| m.has_v1("name=systemd")));
        assert_eq!(found.len(), 5);
    }

    #[test]
    fn co_mounted_controllers_and_a_pure_v2_host_are_found() {
        let mounts = "\
30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
31 25 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate
";
        let found = find(mounts, "3:cpuacct,cpu:/a\n0::/system.slice/rcmd.service\n");
        assert!(found[0].has_v1("cpu") && found[0].has_v1("cpuacct"));
        assert_eq!(found[0].own_group, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/a"));
        assert_eq!(found[1].own_group, PathBuf::from("/sys/fs/cgroup/system.slice/rcmd.service"));
    }

    #[test]
    fn a_mount_that_does_not_reach_our_group_is_not_used() {
        // A container's bind mount of another part of the tree.
        let mounts = "41 31 0:38 /other /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert!(find(mounts, "0::/mine\n").is_empty());
        let mounts = "41 31 0:38 /mine /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert_eq!(find(mounts, "0::/mine/job\n")[0].own_group, PathBuf::from("/sys/fs/cgroup/job"));
    }

    #[test]
    fn escaped_mount_points_are_decoded_and_other_filesystems_ignored() {
        let mounts = "\
41 31 0:38 / /mnt/cgroup\\040two rw - cgroup2 cgroup2 rw
22 27 0:21 / /proc rw,relatime - proc proc rw
";
        let found = find(mounts, "0::/\n");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].own_group, PathBuf::from("/mnt/cgroup two/"));
    }
}
