//! A server's state on disk: the locked data directory, the job records in
//! it, every client's output folder, and the budget of disk space that all
//! output shares.
//!
//! ```text
//! DIR/                 0700, ours (see data_dir)
//!   lock               flock held while a server runs; names its pid
//!   jobs.db            the job records (SQLite, WAL: also jobs.db-wal, -shm)
//!   output/HEX/        one folder per client (its name in hex)
//!     ID.stdout        a job's output, made with its first byte
//!     ID.stderr
//! ```
//!
//! # Invariants
//!
//! * Opening a store finishes what the last server left: every job that was
//!   starting or running is recorded as lost (an error whose message starts
//!   with `lost:`), its output kept as far as it got, and what is left of its
//!   process group is killed, unless its pid now names another process.
//! * The disk budget counts the output bytes stored by every job of every
//!   client; output past it is dropped and new jobs are refused.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::sys::signal::Signal;

use super::JobError;
use super::data_dir::{DataDir, Folder};
use super::records::{Change, Lost, Records};
use super::spool::{self, Stream};

/// The record database's file name.
const DATABASE: &str = "jobs.db";
/// The folder that holds every client's output folder.
const OUTPUT: &str = "output";

/// Output bytes stored by all jobs of all clients, and the most allowed.
#[derive(Debug)]
pub(crate) struct DiskBudget {
    pub stored: AtomicU64,
    pub limit: u64,
}

/// See the module docs.
#[derive(Debug)]
pub struct Store {
    dir: DataDir,
    output: Folder,
    pub(crate) records: Records,
    pub(crate) disk: DiskBudget,
}

impl Store {
    /// Opens the data directory at `path` (see [`DataDir::open`]), its
    /// records, and recovers from the last server. `max_disk` caps all
    /// output stored; `None` allows what is stored now plus half of the
    /// space free on its file system.
    pub fn open(path: &Path, max_disk: Option<u64>) -> Result<Arc<Store>, JobError> {
        let dir = DataDir::open(path)?;
        let io = |source| JobError::Io { path: path.to_owned(), source };
        let output = dir.root().folder(OUTPUT).map_err(io)?;
        let database = path.join(DATABASE);
        let db_error = |source| JobError::Records { path: database.clone(), source };
        let (records, lost) = Records::open(&dir.real_path().join(DATABASE)).map_err(db_error)?;
        let store = Store { dir, output, records, disk: DiskBudget { stored: AtomicU64::new(0), limit: 0 } };
        store.bury(&lost);
        let stored = store.records.total_stored().map_err(|e| db_error(e.into()))?;
        let limit = match max_disk {
            Some(limit) => limit,
            None => stored.saturating_add(store.output.free_space().map_err(io)? / 2),
        };
        Ok(Arc::new(Store { disk: DiskBudget { stored: AtomicU64::new(stored), limit }, ..store }))
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes every queued record change, stops the record writer and gives
    /// up the directory's lock, so that another server may open it; the
    /// store answers reads until it is dropped.
    pub fn close(&self) {
        self.records.close();
        self.dir.unlock();
    }

    /// The most output bytes all jobs together may store.
    pub fn max_disk(&self) -> u64 {
        self.disk.limit
    }

    /// Output bytes stored now, all jobs together.
    pub fn disk_used(&self) -> u64 {
        self.disk.stored.load(Ordering::Relaxed)
    }

    /// The output folder of `client`, made if missing. Its name is the
    /// client's name in hex, safe whatever the name holds.
    pub(crate) fn client_folder(&self, client: &str) -> std::io::Result<Folder> {
        let name: String = if client.is_empty() {
            "-".to_owned()
        } else {
            client.bytes().map(|b| format!("{b:02x}")).collect()
        };
        self.output.folder(&name)
    }

    /// Whether `client` has jobs in the records (from before a restart, say).
    pub fn has_jobs_of(&self, client: &str) -> bool {
        self.records.has_client(client).unwrap_or(false)
    }

    /// Up to `limit` clients that have had jobs here (whether or not they
    /// still have any), with names above `after` in byte order, ascending.
    /// A client is there before its first job is.
    pub fn clients_after(&self, after: &str, limit: usize) -> Result<Vec<String>, JobError> {
        self.records
            .clients_after(after, limit)
            .map_err(|e| JobError::Records { path: self.path().join(DATABASE), source: e.into() })
    }

    /// Clients that have jobs which finished before `before`.
    pub fn clients_finished_before(&self, before: std::time::SystemTime) -> Result<Vec<String>, JobError> {
        self.records
            .clients_finished_before(before)
            .map_err(|e| JobError::Records { path: self.path().join(DATABASE), source: e.into() })
    }

    /// Makes sure no process of a lost job lives, and records how much of
    /// its output reached the disk.
    fn bury(&self, lost: &[Lost]) {
        for job in lost {
            if let Some(pid) = job.pid {
                kill_lost_group(pid, job.proc_start);
            }
            let Ok(folder) = self.client_folder(&job.client) else { continue };
            let stored = Stream::BOTH.map(|stream| {
                folder
                    .open(&spool::file_name(job.id, stream))
                    .and_then(|f| f.metadata())
                    .map_or(0, |m| m.len())
            });
            let change = Change::Stored { client: job.client.as_str().into(), id: job.id, stored };
            self.records.send(change, None);
            tracing::warn!(client = %job.client, job = %job.id, "job was running when the server stopped: marked lost");
        }
    }
}

/// The start time of process `pid` in clock ticks since boot (field 22 of
/// /proc/PID/stat), which tells it from a later process given the same pid.
pub(crate) fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count after its ')'.
    stat.rsplit_once(')')?.1.split_whitespace().nth(19)?.parse().ok()
}

/// Kills what is left of a lost job's process group. If its leader still
/// runs, it is killed only if it is the very process the job started (same
/// start time). If the leader is gone, the group id cannot have been given to
/// a new process while members of the old group remain, so the signal reaches
/// only those (or nobody).
fn kill_lost_group(pid: u32, started: Option<u64>) {
    match process_start(pid) {
        Some(now) if Some(now) != started => return,
        _ => {}
    }
    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGKILL);
}
