//! Other processes' state: waiting on a condition, and finding processes by
//! a unique marker in their command line.

use std::path::Path;
use std::time::{Duration, Instant};

/// Polls `condition` until it holds, or panics with `what` after `limit`.
/// For conditions that have no event to wait on (another process's state).
pub fn wait_until(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(1);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting until {what}");
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Pids of processes whose command line contains `marker`.
pub fn pids_matching(marker: &str) -> Vec<u32> {
    let out = std::process::Command::new("pgrep")
        .arg("-f")
        .arg(marker)
        .output()
        .expect("pgrep runs (install procps)");
    String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// Waits until no process's command line contains `marker`.
pub fn wait_no_process(marker: &str) {
    wait_until(&format!("no process matches {marker}"), Duration::from_secs(10), || {
        pids_matching(marker).is_empty()
    });
}

/// A link to /bin/sleep under a unique name in `dir`, so that every process
/// started from it can be found with pgrep, children included.
pub fn marked_sleep(dir: &Path, label: &str) -> String {
    let path = dir.join(format!("marked-sleep-{label}-{}", std::process::id()));
    // A link, not a copy: a copy's write descriptor, inherited by a
    // process another test forks meanwhile, would make exec fail with
    // ETXTBSY.
    std::os::unix::fs::symlink("/bin/sleep", &path).expect("link to /bin/sleep");
    path.to_str().expect("utf-8 temp path").to_owned()
}

/// Whether a process with this pid exists and is not a zombie.
pub fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}
