//! Helpers the integration tests share that [`rcmd::testing`] does not
//! offer: temp dirs, waiting on conditions, finding processes by a unique
//! marker, cgroup probes, and the fixtures of one area each:
//!
//! * [`server`]: `rcmd serve` as a child process of the real binary, on a
//!   fresh [`rcmd::testing::TestPki`], and clients for it.
//! * [`fleet`]: many such servers of one CA for fan-out, and hostile hosts.
//! * [`netns`]: network namespaces with a bridge (root, `ip`, `nft`).
//! * [`users`]: real unix users made for one test (root).
//! * [`proxy`]: a TCP proxy that cuts a connection mid-stream.

pub mod fleet;
pub mod netns;
pub mod proxy;
pub mod server;
pub mod users;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A directory under the system temp dir, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("rcmd-test-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // For a look at a failed test's server logs: RCMD_KEEP_FAILED=1.
        if std::thread::panicking() && std::env::var_os("RCMD_KEEP_FAILED").is_some() {
            eprintln!("kept {}", self.0.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A small tmpfs mounted under `dir` (needs root), unmounted when dropped:
/// a disk that fills up. Its mount point is world-writable, so a data
/// directory goes inside it.
pub struct SmallDisk(PathBuf);

impl SmallDisk {
    pub fn mount(dir: &Path, size: &str) -> Option<SmallDisk> {
        let path = dir.join("small-disk");
        std::fs::create_dir_all(&path).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .output()
            .is_ok_and(|o| o.status.success());
        mounted.then_some(SmallDisk(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `file` until the disk is full.
    pub fn fill(&self, file: &str) {
        use std::io::Write;
        let mut filler = std::fs::File::create(self.0.join(file)).unwrap();
        let chunk = vec![0u8; 64 << 10];
        while filler.write_all(&chunk).is_ok() {}
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

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

/// Freezes a cgroup v2 group (and every group below it) until dropped: a
/// job's process that joins a group below it stops there, before `exec`.
pub struct Frozen(PathBuf);

impl Frozen {
    pub fn freeze(group: PathBuf) -> Frozen {
        std::fs::write(group.join("cgroup.freeze"), "1").unwrap();
        Frozen(group)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0.join("cgroup.freeze"), "0");
    }
}

/// The groups right below `folder` that hold a process.
pub fn populated_groups(folder: &Path) -> usize {
    std::fs::read_dir(folder)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| std::fs::read_to_string(e.path().join("cgroup.procs")).is_ok_and(|p| !p.is_empty()))
        .count()
}

/// Whether a process with this pid exists and is not a zombie.
pub fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}
