//! The layout of a certificate directory, and how files get into it:
//! atomically (a temp file renamed into place), private keys mode 0600 from
//! the moment they exist.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
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

/// Who may read a file we write.
#[derive(Debug, Clone, Copy)]
pub enum Secrecy {
    /// Certificates and the index: readable by anyone who can enter the dir.
    Public,
    /// Private keys: the owner only.
    Secret,
}

/// Creates `dir` (mode 0700, it will hold private keys) if it is missing.
pub fn create_dir(dir: &Path) -> Result<(), PkiError> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| PkiError::io(dir, e))
}

/// Writes `contents` to `path` atomically: into a new temp file beside it
/// (created with its final mode, so a key is never readable by others even
/// for a moment), flushed to disk, then renamed over `path`.
pub fn write_atomic(path: &Path, contents: &[u8], secrecy: Secrecy) -> Result<(), PkiError> {
    let mode = match secrecy {
        Secrecy::Public => 0o644,
        Secrecy::Secret => 0o600,
    };
    let tmp = temp_path(path);
    let result = (|| {
        let mut file = File::options().write(true).create_new(true).mode(mode).open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(|e| PkiError::io(path, e))
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Reads a whole file, mapping "not found" to a clear "missing".
pub fn read(path: &Path) -> Result<Vec<u8>, PkiError> {
    fs::read(path).map_err(|e| PkiError::io(path, e))
}
