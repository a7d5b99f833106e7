//! `--failed FILE`: the hosts that failed or were unreachable, written as an
//! inventory to re-run with `@FILE`.
//!
//! Invariants:
//! * FILE is never a file the command reads (its inventory, its `NAME ID`
//!   lines), by whatever name or link: that is refused before any host
//!   starts, since writing it would destroy what the command was given.
//! * FILE is replaced atomically: the inventory goes into a new file of our
//!   own beside it (created exclusively, so never through a link planted
//!   there), is flushed, and is renamed over FILE. A reader sees the old
//!   file or the whole new one; a symlink at FILE is replaced, never
//!   followed, so what it points to is left alone.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::inventory;
use super::targets::Host;
use crate::client::ClientError;

/// Where `--failed` writes, checked against the command's own input files.
pub(crate) struct FailedFile(PathBuf);

impl FailedFile {
    /// Refuses `path` when it is the same file as one of `inputs`, or when
    /// its folder does not exist (better said now than after the run).
    pub fn new(path: &Path, inputs: &[&Path]) -> Result<FailedFile, ClientError> {
        if !folder_of(path).is_dir() {
            return Err(ClientError::Targets(format!(
                "--failed {}: its folder does not exist: give a file in an existing folder",
                path.display()
            )));
        }
        let same = |a: &fs::Metadata, b: &fs::Metadata| (a.dev(), a.ino()) == (b.dev(), b.ino());
        if let Ok(target) = fs::metadata(path)
            && let Some(input) =
                inputs.iter().find(|input| fs::metadata(input).is_ok_and(|i| same(&i, &target)))
        {
            return Err(ClientError::Targets(format!(
                "--failed {} is {}, which this command reads: give --failed another file",
                path.display(),
                input.display()
            )));
        }
        Ok(FailedFile(path.to_owned()))
    }

    /// Writes `hosts` as an inventory, replacing the file (see the module docs).
    pub fn write(&self, hosts: &[&Host]) -> Result<(), ClientError> {
        replace(&self.0, inventory::render(hosts).as_bytes())
            .map_err(|e| ClientError::Targets(format!("cannot write --failed {}: {e}", self.0.display())))
    }
}

/// Replaces `path` with a file holding `contents`, atomically.
fn replace(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = folder_of(path);
    let name = path.file_name().ok_or_else(|| io::Error::other("that names no file"))?;
    let (tmp, mut file) = new_beside(dir, &name.to_string_lossy())?;
    let written =
        file.write_all(contents).and_then(|()| file.sync_all()).and_then(|()| fs::rename(&tmp, path));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    File::open(dir)?.sync_all()
}

/// The folder `path` is in.
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// A file of our own in `dir`, under a name nobody else is using: created
/// exclusively, so an existing file or link there is never opened.
fn new_beside(dir: &Path, name: &str) -> io::Result<(PathBuf, File)> {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let mut attempt = 0u32;
    loop {
        let tmp = dir.join(format!(".{name}.{}.{nanos:x}.{attempt}.tmp", std::process::id()));
        match File::options().write(true).create_new(true).mode(0o644).open(&tmp) {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 16 => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}
