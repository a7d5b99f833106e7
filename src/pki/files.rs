//! The layout of a certificate directory, and how files get into it.
//!
//! # Invariants
//!
//! * Whoever writes a cert directory holds its [`DirLock`] (an exclusive
//!   `flock` on `.lock`); every write function takes the lock as a witness,
//!   so commands run at the same time never lose each other's index entries.
//!   Readers take the shared lock where they can ([`read_lock`]).
//! * Files are replaced atomically: a temp file, created with its final mode
//!   (a key is never readable by others, not even for a moment), written and
//!   fsynced, renamed into place, and the directory fsynced.
//! * A key and its certificate are replaced as a pair under the lock
//!   ([`write_pair`]), so a reader that holds the shared lock sees the old
//!   pair or the new one, never a mix. A crash between the pair's two
//!   renames leaves the new key beside the old certificate, with the new
//!   certificate complete in its temp file: the next reader finishes the
//!   replacement ([`finish_interrupted_pair`]) before it reads.
//! * A certificate is in the index before its files are in place, so a
//!   crash cannot leave a certificate in use that `revoke` cannot find.
//! * The cert directory and client folders are mode 0700, even when they
//!   already existed.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::PkiError;

pub const CA_CERT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
pub const SERVER_CERT: &str = "server.crt";
pub const SERVER_KEY: &str = "server.key";
pub const CLIENT_CERT: &str = "client.crt";
pub const CLIENT_KEY: &str = "client.key";
pub const INDEX: &str = "index.json";
pub const CRL: &str = "crl.pem";
/// The lock file of a cert directory.
pub const LOCK: &str = ".lock";

/// Who may read a file we write.
#[derive(Debug, Clone, Copy)]
pub enum Secrecy {
    /// Certificates and the index: readable by anyone who can enter the dir.
    Public,
    /// Private keys: the owner only.
    Secret,
}

/// The exclusive lock on a cert directory, held while a command writes it.
#[derive(Debug)]
pub struct DirLock {
    dir: PathBuf,
    _file: File,
}

impl DirLock {
    /// Creates `dir` (0700) if it is missing, makes it 0700 if it is not,
    /// and waits for the lock.
    pub fn acquire(dir: &Path) -> Result<DirLock, PkiError> {
        create_dir(dir)?;
        let path = dir.join(LOCK);
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| PkiError::io(&path, e))?;
        file.lock().map_err(|e| PkiError::io(&path, e))?;
        Ok(DirLock { dir: dir.to_owned(), _file: file })
    }

    /// The lock of a cert directory that must already hold a CA: a command
    /// that issues or revokes creates nothing where there is no CA.
    pub fn lock_existing(dir: &Path) -> Result<DirLock, PkiError> {
        if !super::has_ca(dir) {
            return Err(PkiError::NoCa { dir: dir.to_owned() });
        }
        DirLock::acquire(dir)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The shared lock on `dir` for a reader, if it has a lock file we can open
/// (a client folder handed to someone else may have none); while it is held
/// no pki command is writing there.
pub fn read_lock(dir: &Path) -> Option<File> {
    let file = File::options().read(true).custom_flags(libc::O_NOFOLLOW).open(dir.join(LOCK)).ok()?;
    file.lock_shared().ok()?;
    Some(file)
}

/// Creates `dir` (mode 0700, it will hold private keys) if it is missing, and
/// makes an existing one 0700.
pub fn create_dir(dir: &Path) -> Result<(), PkiError> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| PkiError::io(dir, e))?;
    let meta = fs::metadata(dir).map_err(|e| PkiError::io(dir, e))?;
    if meta.permissions().mode() & 0o777 != 0o700 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| PkiError::io(dir, e))?;
    }
    // The new folder's entry in its parent is durable too.
    sync_dir(dir)
}

/// Writes `contents` to `path` atomically, under the directory's lock.
pub fn write_atomic(_lock: &DirLock, path: &Path, contents: &[u8], secrecy: Secrecy) -> Result<(), PkiError> {
    let tmp = write_temp(path, contents, secrecy)?;
    rename(&tmp, path)?;
    sync_dir(path)
}

/// Replaces a key and its certificate as a pair: both are written and
/// fsynced before either is renamed into place, under the lock that readers
/// of their folder share (a client folder gets a lock of its own).
pub fn write_pair(lock: &DirLock, key: (&Path, &[u8]), cert: (&Path, &[u8])) -> Result<(), PkiError> {
    let folder = key.0.parent().unwrap_or(Path::new("."));
    let _folder_lock = if folder == lock.dir() { None } else { Some(DirLock::acquire(folder)?) };
    let key_tmp = write_temp(key.0, key.1, Secrecy::Secret)?;
    let cert_tmp = match write_temp(cert.0, cert.1, Secrecy::Public) {
        Ok(tmp) => tmp,
        Err(e) => {
            let _ = fs::remove_file(&key_tmp);
            return Err(e);
        }
    };
    let renamed = rename(&key_tmp, key.0).and_then(|()| rename(&cert_tmp, cert.0));
    let _ = fs::remove_file(&cert_tmp);
    renamed?;
    sync_dir(key.0)?;
    sync_dir(cert.0)
}

/// Finishes a [`write_pair`] that a crash cut between its renames: the key
/// is in place (its temp file gone) but the certificate is still in its
/// temp file. Called by readers that hold the shared lock, so no writer is
/// at work; best effort, as a reader may not be allowed to write.
pub fn finish_interrupted_pair(key: &Path, cert: &Path) {
    let cert_tmp = temp_path(cert);
    if cert_tmp.exists() && !temp_path(key).exists() && fs::rename(&cert_tmp, cert).is_ok() {
        let _ = sync_dir(cert);
    }
}

/// A new temp file beside `path` with `contents`, flushed to disk.
fn write_temp(path: &Path, contents: &[u8], secrecy: Secrecy) -> Result<PathBuf, PkiError> {
    let mode = match secrecy {
        Secrecy::Public => 0o644,
        Secrecy::Secret => 0o600,
    };
    let tmp = temp_path(path);
    // A temp file left by a crashed command is ours to replace.
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut file = File::options().write(true).create_new(true).mode(mode).open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(PkiError::io(path, e));
    }
    Ok(tmp)
}

fn rename(tmp: &Path, path: &Path) -> Result<(), PkiError> {
    fs::rename(tmp, path).map_err(|e| {
        let _ = fs::remove_file(tmp);
        PkiError::io(path, e)
    })
}

/// Makes a rename in the directory of `path` durable.
fn sync_dir(path: &Path) -> Result<(), PkiError> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| PkiError::io(dir, e))
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// Reads a whole file, mapping "not found" to a clear "missing".
pub fn read(path: &Path) -> Result<Vec<u8>, PkiError> {
    fs::read(path).map_err(|e| PkiError::io(path, e))
}
