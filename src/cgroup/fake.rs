//! A group in a temp dir standing in for a hierarchy, so that the writers
//! and readers of every controller are tested without root.
//!
//! The group's files are plain files, made empty (or with the text a test
//! gives) before the test: like a real group's, a file that is not there
//! cannot be written. A write goes to offset 0 of the file and does not
//! truncate it, as [`GroupDir::write`] does.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use super::dir::{Folder, GroupDir};

/// A folder with one group `g` in it, removed when dropped.
pub(super) struct FakeGroup {
    top: PathBuf,
    group: GroupDir,
}

impl FakeGroup {
    /// A group holding the empty `files`.
    pub fn with(files: &[&str]) -> FakeGroup {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let top = std::env::temp_dir().join(format!("rcmdt-fake-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&top);
        std::fs::create_dir_all(top.join("g")).unwrap();
        let group = Folder::open(top.clone()).unwrap().group("g");
        let fake = FakeGroup { top, group };
        for file in files {
            fake.preset(file, "");
        }
        fake
    }

    pub fn group(&self) -> &GroupDir {
        &self.group
    }

    pub fn path(&self) -> PathBuf {
        self.top.join("g")
    }

    /// Makes `file` hold `text`, as the kernel would show it.
    pub fn preset(&self, file: &str, text: &str) {
        std::fs::write(self.path().join(file), text).unwrap();
    }

    /// Makes `file` a directory: every open of it for writing fails.
    pub fn unwritable(&self, file: &str) {
        let _ = std::fs::remove_file(self.path().join(file));
        std::fs::create_dir(self.path().join(file)).unwrap();
    }

    /// What `file` holds now.
    pub fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.path().join(file)).unwrap()
    }

    /// Every file that holds something, with what, by name: what the code
    /// under test wrote (and what the test preset).
    pub fn written(&self) -> Vec<(String, String)> {
        let mut written: Vec<(String, String)> = std::fs::read_dir(self.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.is_file())
            .map(|path| (name(&path), std::fs::read_to_string(&path).unwrap()))
            .filter(|(_, text)| !text.is_empty())
            .collect();
        written.sort();
        written
    }
}

fn name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

impl Drop for FakeGroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.top);
    }
}

/// `[(file, text)]` as [`FakeGroup::written`] gives it.
pub(super) fn files(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> =
        pairs.iter().map(|(f, t)| (f.to_string(), t.to_string())).collect();
    files.sort();
    files
}
