//! The names of our folders and of the server's leaf, `rcmd-PID-START-N`,
//! which say whose they are: a later server tells a dead server's folders
//! from a live one's by them alone.
//!
//! PID and START (the process's start time in clock ticks since boot) name
//! the server, so a reused pid does not make a dead server's folder look
//! alive. N tells apart the `Cgroups` of one process, from 1; the leaf is
//! N = 0.

use std::sync::atomic::{AtomicU64, Ordering};

/// `rcmd-PID-START-N`: unique to this `Cgroups` of this process.
pub(super) fn folder_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("{}-{}", server_name(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// `rcmd-PID-START-0`: this server's leaf (its folders are `-1`, `-2`, ...).
pub(super) fn leaf_name() -> String {
    format!("{}-0", server_name())
}

/// `rcmd-PID-START`: this process, as the names of its folders and its leaf
/// start.
fn server_name() -> String {
    let pid = std::process::id();
    format!("rcmd-{pid}-{}", start_time(pid).unwrap_or(0))
}

/// A process's start time (clock ticks since boot), field 22 of its stat.
pub(super) fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may hold spaces: count after it.
    stat.rsplit_once(')')?.1.split_whitespace().nth(19)?.parse().ok()
}

/// The server (pid, start time) a folder of ours names, if it is one.
pub(super) fn owner(name: &str) -> Option<(u32, u64)> {
    let mut parts = name.strip_prefix("rcmd-")?.split('-');
    let (pid, start, n) = (parts.next()?.parse().ok()?, parts.next()?.parse().ok()?, parts.next()?);
    (parts.next().is_none() && n.parse::<u64>().is_ok()).then_some((pid, start))
}

/// Whether `name` is a folder (or leaf) of a server that is gone: no such
/// pid, or a different start time. Not a name of ours: `false`.
pub(super) fn is_dead_servers(name: &str) -> bool {
    owner(name).is_some_and(|(pid, start)| start_time(pid) != Some(start))
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
    fn the_leaf_is_named_as_this_servers_and_as_none_of_its_folders() {
        let us = std::process::id();
        let leaf = leaf_name();
        assert_eq!(owner(&leaf), Some((us, start_time(us).unwrap())), "{leaf}");
        assert!(leaf.ends_with("-0"), "{leaf}");
        let folder = folder_name();
        assert_eq!(owner(&folder), owner(&leaf));
        assert_ne!(folder, leaf, "folders count from 1");
    }

    #[test]
    fn only_names_of_servers_that_are_gone_are_dead() {
        let us = std::process::id();
        assert!(!is_dead_servers(&folder_name()), "this process lives");
        assert!(!is_dead_servers(&leaf_name()), "this process lives");
        let started = start_time(us).unwrap();
        assert!(is_dead_servers(&format!("rcmd-{us}-{}-1", started + 1)), "a reused pid");
        assert!(!is_dead_servers("j7"), "not a name of ours");
    }
}
