//! Our folders, and the groups in them, reached through a descriptor.
//!
//! A job's group files are deep in the filesystem
//! (`/sys/fs/cgroup/memory/…/rcmd-…/j7/memory.limit_in_bytes`), and a job
//! with limits opens some thirty of them. Walking such a path name by name
//! was a tenth of the server's CPU time. Each [`Folder`] therefore holds a
//! descriptor of itself, and a [`GroupDir`]'s files are opened relative to
//! it: the kernel walks two names, not ten.
//!
//! Invariants:
//!
//! * **Nothing outside our folders.** A [`GroupDir`] names a group in one of
//!   our folders by a name of ours (no `/`, no `..`); its files are opened
//!   by file name only.
//! * **No subgroup is missed.** The kernel counts a cgroup directory's
//!   subdirectories in its link count, so a group whose count is 2 has none
//!   ([`GroupDir::may_have_subgroups`] is `false`): removing it needs no
//!   listing. Any other count, or a failed look, says there may be some.
//!
//! Listing and removing the groups below one, which are not ours by name,
//! is done by path ([`super::tree`]); the two modules do not import each
//! other.

use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{Mode, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};

/// One of our folders: its path, and a descriptor to reach its groups by.
#[derive(Debug)]
pub(crate) struct Folder {
    path: PathBuf,
    fd: OwnedFd,
}

impl Folder {
    /// Opens the existing folder at `path`.
    pub fn open(path: PathBuf) -> io::Result<Arc<Folder>> {
        let fd = openat(
            nix::fcntl::AT_FDCWD,
            &path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Arc::new(Folder { path, fd }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The group `name` in this folder (which may not exist yet).
    pub fn group(self: &Arc<Self>, name: &str) -> GroupDir {
        debug_assert!(!name.is_empty() && !name.contains('/') && name != "..");
        GroupDir { folder: Arc::clone(self), name: name.to_owned() }
    }
}

/// A group in one of our folders.
#[derive(Clone)]
pub(crate) struct GroupDir {
    folder: Arc<Folder>,
    name: String,
}

impl fmt::Debug for GroupDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.path().fmt(f)
    }
}

impl GroupDir {
    pub fn path(&self) -> PathBuf {
        self.folder.path.join(&self.name)
    }

    /// `NAME/file`, relative to the folder.
    fn relative(&self, file: &str) -> String {
        format!("{}/{file}", self.name)
    }

    /// Opens `file` of the group; the error names the file.
    fn open(&self, file: &str, flags: OFlag) -> io::Result<std::fs::File> {
        let opened =
            openat(&self.folder.fd, self.relative(file).as_str(), flags | OFlag::O_CLOEXEC, Mode::empty());
        opened.map(std::fs::File::from).map_err(|e| named(file, e.into()))
    }

    /// Makes the group.
    pub fn make(&self) -> io::Result<()> {
        Ok(mkdirat(&self.folder.fd, self.name.as_str(), Mode::from_bits_truncate(0o755))?)
    }

    pub fn read(&self, file: &str) -> io::Result<String> {
        let mut text = String::new();
        self.open(file, OFlag::O_RDONLY)?.read_to_string(&mut text).map_err(|e| named(file, e))?;
        Ok(text)
    }

    /// Writes `value` to `file` in one write; the error names the file.
    pub fn write(&self, file: &str, value: impl fmt::Display) -> io::Result<()> {
        self.open(file, OFlag::O_WRONLY)?.write_all(value.to_string().as_bytes()).map_err(|e| named(file, e))
    }

    /// The group's `cgroup.procs`, open for a process to write "0" to: it
    /// then joins the group.
    pub fn open_procs(&self) -> io::Result<OwnedFd> {
        Ok(self.open("cgroup.procs", OFlag::O_WRONLY)?.into())
    }

    /// `file`'s one number.
    pub fn number(&self, file: &str) -> Option<u64> {
        self.read(file).ok()?.trim().parse().ok()
    }

    /// The value of `key` in `file`, a file of `key value` lines.
    pub fn keyed(&self, file: &str, key: &str) -> Option<u64> {
        keyed_in(&self.read(file).ok()?, key)
    }

    /// Whether there may be groups below this one (see the module docs).
    pub fn may_have_subgroups(&self) -> bool {
        match fstatat(&self.folder.fd, self.name.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat) => stat.st_nlink != 2,
            Err(nix::errno::Errno::ENOENT) => false,
            Err(_) => true,
        }
    }

    /// Removes the group, once the groups below it are gone; `true` if it
    /// is gone (or never was). Fails while a process is in it, or while a
    /// group is below it.
    pub fn remove(&self) -> bool {
        match unlinkat(&self.folder.fd, self.name.as_str(), UnlinkatFlags::RemoveDir) {
            Ok(()) | Err(nix::errno::Errno::ENOENT) => true,
            Err(_) => false,
        }
    }
}

/// `e`, saying which file it is about.
fn named(file: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{file}: {e}"))
}

/// The value of `key` in `key value` lines.
pub(crate) fn keyed_in(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| line.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::super::fake::FakeGroup;
    use super::*;

    #[test]
    fn a_write_reaches_only_a_file_that_is_there_and_its_error_names_the_file() {
        let fake = FakeGroup::with(&["pids.max"]);
        fake.group().write("pids.max", 5).unwrap();
        assert_eq!(fake.read("pids.max"), "5");
        let error = fake.group().write("pids.limit", 5).unwrap_err().to_string();
        assert!(error.starts_with("pids.limit: "), "{error}");
        assert!(!fake.path().join("pids.limit").exists(), "a group's files are never made");
    }

    #[test]
    fn a_keyed_value_is_found_by_its_whole_key_only() {
        let text = "usage_usec 1500\nuser_usec 1000\nusage 7\n";
        assert_eq!(keyed_in(text, "usage_usec"), Some(1500));
        assert_eq!(keyed_in(text, "usage"), Some(7));
        assert_eq!(keyed_in(text, "user"), None);
        let fake = FakeGroup::with(&[]);
        fake.preset("pids.current", "3\n");
        fake.preset("cpu.stat", text);
        assert_eq!(fake.group().number("pids.current"), Some(3));
        assert_eq!(fake.group().keyed("cpu.stat", "user_usec"), Some(1000));
        assert_eq!(fake.group().number("pids.max"), None, "a file that is not there");
    }
}
