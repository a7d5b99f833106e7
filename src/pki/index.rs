//! The issued-certificate index: one entry per certificate the CA has signed,
//! so that certificates can later be listed and revoked. Stored as JSON in
//! `index.json`, rewritten atomically on every change, under the directory's
//! lock (load, change and save all happen while it is held).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::files::{self, DirLock, Secrecy};
use super::{FileProblem, PkiError, Serial};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Ca,
    Server,
    Client,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Ca => "ca",
            Kind::Server => "server",
            Kind::Client => "client",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub serial: Serial,
    pub cn: String,
    pub kind: Kind,
    /// RFC 3339.
    pub not_after: String,
    /// RFC 3339, once revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Index {
    pub certificates: Vec<Entry>,
}

impl Index {
    /// Reads the index of `dir`; a missing one is empty.
    pub fn load(dir: &Path) -> Result<Index, PkiError> {
        let path = dir.join(files::INDEX);
        match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| PkiError::file(&path, FileProblem::Corrupt(e)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(PkiError::io(&path, e)),
        }
    }

    /// Writes the index; only whoever holds the directory's lock may.
    pub fn save(&self, lock: &DirLock) -> Result<(), PkiError> {
        let json = serde_json::to_vec_pretty(self).expect("the index serialises");
        files::write_atomic(lock, &lock.dir().join(files::INDEX), &json, Secrecy::Public)
    }
}
