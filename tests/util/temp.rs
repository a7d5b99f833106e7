//! Directories of a test's own: a temp dir, and a small disk that fills up.

use std::path::{Path, PathBuf};

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
