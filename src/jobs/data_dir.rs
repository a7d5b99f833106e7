//! The data directory: where a server keeps its job records and output.
//!
//! # Invariants
//!
//! * A [`DataDir`] is a directory that we own, that is not a symlink and that
//!   nobody else can write to; it is mode 0700 once opened. Anything else is
//!   refused with a message that says what is wrong and what to do.
//! * While a [`DataDir`] lives it holds an exclusive `flock` on its `lock`
//!   file, which names our pid: a second server on the same directory is
//!   refused with `data directory DIR is in use by pid N`.
//! * Everything inside is reached through a [`Folder`], a directory file
//!   descriptor: names are resolved relative to it (a rename of a parent
//!   changes nothing), never through a symlink (`O_NOFOLLOW`), and new files
//!   are created exclusively (`O_EXCL`), so nothing planted in the directory
//!   is ever followed or written through.

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{Mode, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};

/// The name of the lock file in a data directory.
const LOCK_FILE: &str = "lock";

/// Why a data directory cannot be used. Each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("data directory {} is a symlink: give the real directory with --data-dir", path.display())]
    Symlink { path: PathBuf },

    #[error("data directory {} is not a directory", path.display())]
    NotADirectory { path: PathBuf },

    #[error(
        "data directory {} is owned by uid {owner}, not by this server's uid {us}: give a directory of your own with --data-dir",
        path.display()
    )]
    ForeignOwner { path: PathBuf, owner: u32, us: u32 },

    #[error(
        "data directory {} can be written by other users (mode {mode:o}): `chmod 700` it, or give another with --data-dir",
        path.display()
    )]
    WritableByOthers { path: PathBuf, mode: u32 },

    #[error("data directory {} is in use by pid {pid}", path.display())]
    InUse { path: PathBuf, pid: String },

    #[error("cannot use data directory {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// A verified, locked data directory. See the module docs.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    /// `path` with every symlink of its parents resolved, checked to be the
    /// directory `root` holds: for what must be opened by name (SQLite).
    real_path: PathBuf,
    root: Folder,
    /// Holds the flock for as long as the directory is ours.
    lock: File,
}

impl DataDir {
    /// Creates `path` (and missing parents) if needed, checks it, makes it
    /// 0700 and locks it.
    pub fn open(path: &Path) -> Result<DataDir, DataDirError> {
        let io = |source| DataDirError::Io { path: path.to_owned(), source };
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::DirBuilder::new().recursive(true).mode(0o700).create(path).map_err(io)?;
            }
            Err(e) => return Err(io(e)),
            Ok(_) => {}
        }
        let fd =
            nix::fcntl::open(path, OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())
                .map_err(|errno| match errno {
                    nix::errno::Errno::ELOOP => DataDirError::Symlink { path: path.to_owned() },
                    nix::errno::Errno::ENOTDIR => match std::fs::symlink_metadata(path) {
                        Ok(m) if m.file_type().is_symlink() => {
                            DataDirError::Symlink { path: path.to_owned() }
                        }
                        _ => DataDirError::NotADirectory { path: path.to_owned() },
                    },
                    other => io(other.into()),
                })?;
        let dir = File::from(fd);
        let meta = dir.metadata().map_err(io)?;
        let us = nix::unistd::geteuid().as_raw();
        if meta.uid() != us {
            return Err(DataDirError::ForeignOwner { path: path.to_owned(), owner: meta.uid(), us });
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(DataDirError::WritableByOthers { path: path.to_owned(), mode });
        }
        if mode != 0o700 {
            dir.set_permissions(std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        }
        let real_path = std::fs::canonicalize(path).map_err(io)?;
        let real = std::fs::metadata(&real_path).map_err(io)?;
        if (real.dev(), real.ino()) != (meta.dev(), meta.ino()) {
            return Err(io(io::Error::other("it was moved or replaced while it was being opened")));
        }
        let root = Folder(OwnedFd::from(dir));
        let lock = lock(&root, path)?;
        Ok(DataDir { path: path.to_owned(), real_path, root, lock })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory's path with no symlink in it, for the files that can
    /// only be opened by name (SQLite's refuse any symlink on the way).
    pub fn real_path(&self) -> &Path {
        &self.real_path
    }

    /// The directory itself.
    pub fn root(&self) -> &Folder {
        &self.root
    }

    /// Gives up the lock early: from now on another server may open the
    /// directory, so nothing may be written here any more.
    pub fn unlock(&self) {
        let _ = self.lock.unlock();
    }
}

/// Takes the directory's lock, or says who holds it.
fn lock(root: &Folder, path: &Path) -> Result<File, DataDirError> {
    let io = |source| DataDirError::Io { path: path.to_owned(), source };
    let mut file = root.open_or_create(LOCK_FILE).map_err(io)?;
    match file.try_lock() {
        Ok(()) => {
            file.set_len(0).map_err(io)?;
            file.write_all(format!("{}\n", std::process::id()).as_bytes()).map_err(io)?;
            Ok(file)
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            // The holder writes its pid just after it locks: give it a moment.
            let deadline = Instant::now() + Duration::from_secs(1);
            let mut pid = String::new();
            while pid.trim().is_empty() && Instant::now() < deadline {
                pid.clear();
                file.rewind().and_then(|_| file.read_to_string(&mut pid)).map_err(io)?;
                if pid.trim().is_empty() {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            let pid = pid.trim();
            let pid = if pid.is_empty() { "unknown".to_owned() } else { pid.to_owned() };
            Err(DataDirError::InUse { path: path.to_owned(), pid })
        }
        Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
    }
}

/// A directory inside the data directory, reached through its descriptor.
/// Every name given to it is one path component.
#[derive(Debug)]
pub struct Folder(OwnedFd);

impl Folder {
    /// The sub-folder `name`, created (0700) if missing. A symlink, or a
    /// folder someone else owns, is refused.
    pub fn folder(&self, name: &str) -> io::Result<Folder> {
        check_name(name)?;
        match mkdirat(self.0.as_fd(), name, Mode::from_bits_truncate(0o700)) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(e.into()),
        }
        let fd = openat(
            self.0.as_fd(),
            name,
            OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let meta = File::from(fd.try_clone()?).metadata()?;
        if meta.uid() != nix::unistd::geteuid().as_raw() || meta.mode() & 0o077 != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{name} in the data directory is not ours alone (owner uid {}, mode {:o})",
                    meta.uid(),
                    meta.mode() & 0o7777
                ),
            ));
        }
        Ok(Folder(fd))
    }

    /// A new file, readable and writable by us only. Fails if `name` exists
    /// in any form, a symlink included.
    pub fn create_new(&self, name: &str) -> io::Result<File> {
        self.open_with(name, OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL)
    }

    /// An existing file, for reading. A symlink is an error (ELOOP).
    pub fn open(&self, name: &str) -> io::Result<File> {
        self.open_with(name, OFlag::O_RDONLY)
    }

    /// A file for reading and writing, created if missing (never through a
    /// symlink).
    fn open_or_create(&self, name: &str) -> io::Result<File> {
        self.open_with(name, OFlag::O_RDWR | OFlag::O_CREAT)
    }

    fn open_with(&self, name: &str, flags: OFlag) -> io::Result<File> {
        check_name(name)?;
        let flags = flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(self.0.as_fd(), name, flags, Mode::from_bits_truncate(0o600))?;
        Ok(File::from(fd))
    }

    /// Removes the file `name`; one that is not there is fine.
    pub fn remove(&self, name: &str) -> io::Result<()> {
        check_name(name)?;
        match unlinkat(self.0.as_fd(), name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(nix::errno::Errno::ENOENT) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Bytes free for us on the file system that holds this folder.
    pub fn free_space(&self) -> io::Result<u64> {
        let stat = nix::sys::statvfs::fstatvfs(&self.0)?;
        Ok(stat.blocks_available() as u64 * stat.fragment_size() as u64)
    }
}

/// One path component: no separator, not `.` or `..`, not empty.
fn check_name(name: &str) -> io::Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{name:?} is not a file name")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_leave_the_folder_are_refused() {
        for bad in ["", ".", "..", "a/b", "../x", "a\0b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name("1.stdout").is_ok());
    }
}
