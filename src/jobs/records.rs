//! Job records in SQLite: one row per job, keyed by (client, id).
//!
//! # Invariants
//!
//! * **One writer, in order.** Every change goes through one channel to one
//!   writer thread, which applies them in the order they were sent, many to
//!   a transaction. A job's changes (create, start, finish, delete) are sent
//!   by its own code path one after the other, so its row goes through the
//!   same states in the same order as the job did.
//! * **Told when durable.** A change may carry a callback that runs once
//!   its transaction has committed (or failed). The pool publishes a job as
//!   finished only after that, so a finished job a client has seen is on
//!   disk, whatever happens to the server afterwards.
//! * **Off the async threads.** Writes happen on the writer thread. Reads
//!   are single indexed lookups or one page of rows, done on the caller's
//!   thread with a connection of their own, like the spool files' reads.
//! * **WAL.** Readers never wait for the writer; `synchronous=NORMAL` makes
//!   a commit a write into the page cache: it survives the server's death
//!   (SIGKILL included), not the machine's.
//! * **Versioned.** The schema's version is the database's `user_version`.
//!   Opening a database migrates it to [`SCHEMA_VERSION`] step by step, and
//!   refuses one written by a newer rcmd, or whose tables are not what its
//!   version says. Version 0 is the schema from before versions were kept; a
//!   database written then is kept as a fixture (`fixtures/jobs-v0.db`)
//!   that every later version must read in full.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};

use super::{End, JobId, JobState, JobStatus, LOST_MESSAGE, Limits, ResourceUsage, Termination};

/// The most changes applied in one transaction.
const MAX_BATCH: usize = 1024;
/// Read connections kept open between reads.
const IDLE_READERS: usize = 4;

/// The version of the schema this code reads and writes.
pub(crate) const SCHEMA_VERSION: i64 = 1;

/// The tables of schema versions 0 and 1, with their columns in order.
const TABLES: [(&str, &[&str]); 3] = [
    (
        "jobs",
        &[
            "client",
            "id",
            "command",
            "args",
            "spec",
            "state",
            "exit_code",
            "signal",
            "error_msg",
            "lost",
            "pid",
            "proc_start",
            "created_at",
            "started_at",
            "finished_at",
            "stdout_bytes",
            "stderr_bytes",
            "truncated",
            "output_error",
            "oom_killed",
            "cpu_ms",
            "memory_peak",
        ],
    ),
    ("clients", &["client", "reserved"]),
    ("meta", &["key", "value"]),
];

/// The tables of schema version 1 (the same as version 0's).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    client TEXT NOT NULL,
    id INTEGER NOT NULL,
    command TEXT NOT NULL,
    args TEXT NOT NULL,
    spec TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL,
    exit_code INTEGER,
    signal INTEGER,
    error_msg TEXT,
    lost INTEGER NOT NULL DEFAULT 0,
    pid INTEGER,
    proc_start INTEGER,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    stdout_bytes INTEGER NOT NULL DEFAULT 0,
    stderr_bytes INTEGER NOT NULL DEFAULT 0,
    truncated TEXT,
    output_error TEXT,
    oom_killed INTEGER NOT NULL DEFAULT 0,
    cpu_ms INTEGER,
    memory_peak INTEGER,
    PRIMARY KEY (client, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS jobs_unfinished ON jobs (state) WHERE finished_at IS NULL;
CREATE INDEX IF NOT EXISTS jobs_by_finish ON jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS clients (
    client TEXT PRIMARY KEY,
    reserved INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
";

/// A change to the records, applied by the writer thread.
#[derive(Debug)]
pub(crate) enum Change {
    /// A job was made: what it runs (`spec` is a JSON object of limits and
    /// the like). Its state is `starting` until [`Change::Start`]. With
    /// `if_missing`, a row that is already there is left as it is: that is
    /// how a job whose first create failed (a full disk) is recorded later.
    Create {
        client: Arc<str>,
        id: JobId,
        command: String,
        args: Vec<String>,
        spec: String,
        at: SystemTime,
        if_missing: bool,
    },
    /// Its process started, or could not (the job is then over).
    Start { client: Arc<str>, id: JobId, started: StartOutcome, at: SystemTime },
    /// It ended, and its output is complete.
    Finish { client: Arc<str>, id: JobId, ended: Ended },
    /// The bytes stored for a job whose server died while it ran, as found
    /// on disk.
    Stored { client: Arc<str>, id: JobId, stored: [u64; 2] },
    /// It was deleted. The callback gets the bytes its output held, or
    /// `None` if there was no such row.
    Delete { client: Arc<str>, id: JobId },
    /// Ids up to `up_to` may be handed out: none of them is ever given again.
    Reserve { client: Arc<str>, up_to: u64 },
}

/// How a job's start went, as recorded.
#[derive(Debug, Clone)]
pub(crate) enum StartOutcome {
    /// Its process runs as `pid`, which started at `proc_start` (clock ticks
    /// since boot), so that a later server can tell it from a reused pid.
    Running { pid: u32, proc_start: Option<u64> },
    /// It could not start, for this reason.
    Failed { message: String },
}

/// How a job ended and what its output came to, as recorded. An end is
/// never running: that is the type of `end`.
#[derive(Debug, Clone)]
pub(crate) struct Ended {
    pub end: End,
    pub at: SystemTime,
    pub stored: [u64; 2],
    pub truncated: Option<String>,
    pub output_error: Option<String>,
}

/// Why the records cannot be opened, read or changed.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// A version this code does not know: a newer rcmd wrote them.
    #[error(
        "their schema version is {found}, and this rcmd knows versions 0 to {SCHEMA_VERSION}: they were written by a newer rcmd; run that version or a later one"
    )]
    UnknownVersion { found: i64 },
    #[error(
        "their tables are not those of schema version {version} (the table {table} has the columns [{columns}])"
    )]
    Tables { version: i64, table: &'static str, columns: String },
    #[error("the record store is closed")]
    Closed,
}

/// What a change's callback is told: the deleted row's bytes for a delete.
pub(crate) type Outcome = Result<Option<u64>, RecordsError>;
pub(crate) type Done = Box<dyn FnOnce(Outcome) + Send>;

struct Message {
    change: Change,
    done: Option<Done>,
}

/// A job as recorded.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub status: JobStatus,
    /// Bytes stored per stream.
    pub stored: [u64; 2],
    /// It was made with a stdin pipe.
    pub stdin: bool,
}

/// What a client's rows add up to, read when its pool opens.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ClientUsage {
    pub jobs: u64,
    pub stored: u64,
    /// The highest id recorded or reserved.
    pub last_id: u64,
}

/// A job that was running when its server stopped.
#[derive(Debug)]
pub(crate) struct Lost {
    pub client: String,
    pub id: JobId,
    pub pid: Option<u32>,
    pub proc_start: Option<u64>,
}

/// The record store of a data directory.
pub(crate) struct Records {
    path: std::path::PathBuf,
    writer: Mutex<Option<mpsc::Sender<Message>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    readers: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for Records {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records").field("path", &self.path).finish_non_exhaustive()
    }
}

fn open(path: &std::path::Path) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NOFOLLOW
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

impl Records {
    /// Opens (or creates) the database at `path`, and marks every job that
    /// was still starting or running as lost. Returns those jobs, so their
    /// processes can be made sure dead.
    pub fn open(path: &std::path::Path) -> Result<(Records, Vec<Lost>), RecordsError> {
        let mut conn = open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        migrate(&mut conn)?;
        let lost = recover(&mut conn)?;
        let (sender, receiver) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("rcmd-records".into())
            .spawn(move || write_loop(conn, receiver))
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        let records = Records {
            path: path.to_owned(),
            writer: Mutex::new(Some(sender)),
            thread: Mutex::new(Some(thread)),
            readers: Mutex::new(Vec::new()),
        };
        Ok((records, lost))
    }

    /// Queues a change; `done` runs once it is committed or has failed.
    pub fn send(&self, change: Change, done: Option<Done>) {
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let failed = match writer.as_ref() {
            Some(sender) => sender.send(Message { change, done }).err().map(|e| e.0.done),
            None => Some(done),
        };
        if let Some(Some(done)) = failed {
            done(Err(RecordsError::Closed));
        }
    }

    /// Whether [`Records::close`] was called: changes fail from then on.
    pub fn is_closed(&self) -> bool {
        self.writer.lock().unwrap_or_else(|e| e.into_inner()).is_none()
    }

    /// Queues a change and waits until it is committed.
    pub async fn apply(&self, change: Change) -> Outcome {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(change, Some(Box::new(move |outcome| drop(tx.send(outcome)))));
        rx.await.unwrap_or(Err(RecordsError::Closed))
    }

    /// Runs `read` with a connection of its own.
    fn read<T>(&self, read: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
        let idle = self.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => open(&self.path)?,
        };
        let result = read(&conn);
        let mut readers = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        if readers.len() < IDLE_READERS {
            readers.push(conn);
        }
        result
    }

    /// One job's record.
    pub fn get(&self, client: &str, id: JobId) -> rusqlite::Result<Option<Record>> {
        if stored_id(id).is_none() {
            return Ok(None);
        }
        self.read(|conn| {
            conn.prepare_cached(&format!("SELECT {COLUMNS} FROM jobs WHERE client = ?1 AND id = ?2"))?
                .query_row(params![client, id.0], record)
                .optional()
        })
    }

    /// Up to `limit` records with ids above `after`, ascending; fewer if
    /// their command lines pass `bytes` (the record that passes it is the
    /// last one read).
    pub fn page(
        &self,
        client: &str,
        after: JobId,
        limit: usize,
        bytes: usize,
    ) -> rusqlite::Result<Vec<Record>> {
        if stored_id(after).is_none() {
            return Ok(Vec::new());
        }
        self.read(|conn| {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM jobs WHERE client = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
            ))?;
            let mut rows = statement.query(params![client, after.0, limit])?;
            let (mut page, mut size) = (Vec::new(), 0);
            while size <= bytes {
                let Some(row) = rows.next()? else { break };
                let record = record(row)?;
                size += record.status.command_line_len();
                page.push(record);
            }
            Ok(page)
        })
    }

    /// What one client's records add up to.
    pub fn usage(&self, client: &str) -> rusqlite::Result<ClientUsage> {
        self.read(|conn| {
            let (jobs, stored, max_id) = conn.query_row(
                "SELECT count(*), coalesce(sum(stdout_bytes + stderr_bytes), 0), coalesce(max(id), 0)
                 FROM jobs WHERE client = ?1",
                [client],
                |r| Ok((r.get::<_, u64>(0)?, r.get::<_, u64>(1)?, r.get::<_, u64>(2)?)),
            )?;
            let reserved: Option<u64> = conn
                .query_row("SELECT reserved FROM clients WHERE client = ?1", [client], |r| r.get(0))
                .optional()?;
            Ok(ClientUsage { jobs, stored, last_id: max_id.max(reserved.unwrap_or(0)) })
        })
    }

    /// Whether `client` has any job recorded.
    pub fn has_client(&self, client: &str) -> rusqlite::Result<bool> {
        self.read(|conn| {
            conn.prepare_cached("SELECT 1 FROM jobs WHERE client = ?1 LIMIT 1")?.exists([client])
        })
    }

    /// Up to `limit` clients that were ever given a job id, with names
    /// above `after` in byte order, ascending.
    pub fn clients_after(&self, after: &str, limit: usize) -> rusqlite::Result<Vec<String>> {
        self.read(|conn| {
            conn.prepare_cached("SELECT client FROM clients WHERE client > ?1 ORDER BY client LIMIT ?2")?
                .query_map(params![after, limit], |r| r.get(0))?
                .collect()
        })
    }

    /// Output bytes stored by every job of every client.
    pub fn total_stored(&self) -> rusqlite::Result<u64> {
        self.read(|conn| {
            conn.query_row("SELECT coalesce(sum(stdout_bytes + stderr_bytes), 0) FROM jobs", [], |r| r.get(0))
        })
    }

    /// Clients with jobs that finished before `before`.
    pub fn clients_finished_before(&self, before: SystemTime) -> rusqlite::Result<Vec<String>> {
        self.read(|conn| {
            conn.prepare_cached("SELECT DISTINCT client FROM jobs WHERE finished_at < ?1")?
                .query_map([millis(before)], |r| r.get(0))?
                .collect()
        })
    }

    /// Up to `limit` ids of a client's jobs that finished before `before`.
    pub fn finished_before(
        &self,
        client: &str,
        before: SystemTime,
        limit: usize,
    ) -> rusqlite::Result<Vec<JobId>> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT id FROM jobs WHERE client = ?1 AND finished_at < ?2 ORDER BY id LIMIT ?3",
            )?
            .query_map(params![client, millis(before), limit], |r| Ok(JobId(r.get(0)?)))?
            .collect()
        })
    }

    /// Applies every queued change and stops the writer. Later changes fail.
    pub fn close(&self) {
        self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Records {
    fn drop(&mut self) {
        self.close();
    }
}

const COLUMNS: &str = "id, command, args, state, exit_code, signal, error_msg, lost, pid, created_at, \
                       started_at, finished_at, stdout_bytes, stderr_bytes, truncated, output_error, spec, \
                       oom_killed, cpu_ms, memory_peak";

fn record(r: &Row<'_>) -> rusqlite::Result<Record> {
    let args: String = r.get(2)?;
    let spec: serde_json::Value = serde_json::from_str(&r.get::<_, String>(16)?).unwrap_or_default();
    let stored = [r.get(12)?, r.get(13)?];
    let truncated: Option<String> = r.get(14)?;
    let started_at = time(r.get::<_, Option<i64>>(10)?.unwrap_or(r.get(9)?));
    Ok(Record {
        status: JobStatus {
            id: JobId(r.get(0)?),
            command: r.get(1)?,
            args: serde_json::from_str(&args).unwrap_or_default(),
            started_at,
            limits: limits(&spec),
            state: state(r, started_at)?,
            truncated: truncated.is_some(),
            truncated_reason: truncated,
            output_error: r.get(15)?,
        },
        stored,
        stdin: spec["stdin"].as_bool().unwrap_or(false),
    })
}

/// A row's state, from its `state` column and the columns that state uses.
fn state(r: &Row<'_>, started_at: SystemTime) -> rusqlite::Result<JobState> {
    let pid: Option<u32> = r.get(8)?;
    let usage = ResourceUsage { cpu_ms: r.get(18)?, memory_peak: r.get(19)? };
    let oom_killed = r.get(17)?;
    // Every end has its time; a row without one is taken as over when it began.
    let finished_at = r.get::<_, Option<i64>>(11)?.map_or(started_at, time);
    let end = match (r.get::<_, String>(3)?.as_str(), pid) {
        ("completed", _) => {
            let termination = match (r.get::<_, Option<i32>>(4)?, r.get::<_, Option<i32>>(5)?) {
                (Some(code), _) => Termination::Exited(code),
                (None, Some(signal)) => Termination::Signaled(signal),
                (None, None) => Termination::Exited(-1),
            };
            End::Completed { pid, termination, usage, oom_killed }
        }
        ("error", _) if r.get(7)? => End::Lost { pid, usage, oom_killed },
        ("error", _) => End::Failed { message: r.get::<_, Option<String>>(6)?.unwrap_or_default() },
        ("running", Some(pid)) => return Ok(JobState::Running { pid, usage }),
        _ => return Ok(JobState::Starting),
    };
    Ok(JobState::Done { finished_at, end })
}

/// The limits a job was started with, from its recorded spec.
fn limits(spec: &serde_json::Value) -> Limits {
    let limit = |name: &str| spec["limits"][name].clone();
    Limits {
        memory: serde_json::from_value(limit("memory")).ok().flatten(),
        cpus: serde_json::from_value(limit("cpus")).ok().flatten(),
        pids: serde_json::from_value(limit("pids")).ok().flatten(),
        io_read_bps: serde_json::from_value(limit("io_read_bps")).ok().flatten(),
        io_write_bps: serde_json::from_value(limit("io_write_bps")).ok().flatten(),
    }
}

/// Ids are SQLite integers: none above `i64::MAX` is ever given, so a
/// larger one names no job.
fn stored_id(id: JobId) -> Option<i64> {
    i64::try_from(id.0).ok()
}

/// An update of one job's row must find it: a row that is not there (its
/// create failed, on a full disk say) is an error, never a silent success.
fn one_row(changed: usize) -> rusqlite::Result<()> {
    match changed {
        1 => Ok(()),
        n => Err(rusqlite::Error::StatementChangedRows(n)),
    }
}

pub(crate) fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

/// Brings the schema to [`SCHEMA_VERSION`], one version at a time.
fn migrate(conn: &mut Connection) -> Result<(), RecordsError> {
    let tx = conn.transaction()?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    match version {
        // Before versions were kept, or new: version 1 has the same tables,
        // so a database that has them (or none yet) only gets the number.
        0 => {
            tx.execute_batch(SCHEMA)?;
            check_tables(&tx, 0)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        SCHEMA_VERSION => check_tables(&tx, SCHEMA_VERSION)?,
        found => return Err(RecordsError::UnknownVersion { found }),
    }
    tx.commit()?;
    Ok(())
}

/// Refuses a database whose tables are not those of `version`.
fn check_tables(conn: &Connection, version: i64) -> Result<(), RecordsError> {
    for (table, expected) in TABLES {
        let columns: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?
            .query_map([table], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        if columns != expected {
            return Err(RecordsError::Tables { version, table, columns: columns.join(", ") });
        }
    }
    Ok(())
}

/// Marks every unfinished job lost, and returns them.
fn recover(conn: &mut Connection) -> rusqlite::Result<Vec<Lost>> {
    let tx = conn.transaction()?;
    let lost = tx
        .prepare("SELECT client, id, pid, proc_start FROM jobs WHERE finished_at IS NULL")?
        .query_map([], |r| {
            Ok(Lost { client: r.get(0)?, id: JobId(r.get(1)?), pid: r.get(2)?, proc_start: r.get(3)? })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    tx.execute(
        "UPDATE jobs SET state = 'error', lost = 1, error_msg = ?1, finished_at = ?2, exit_code = NULL,
         signal = NULL WHERE finished_at IS NULL",
        params![LOST_MESSAGE, millis(SystemTime::now())],
    )?;
    // After a reboot no process of theirs can live, and their pids mean
    // nothing: forget them.
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let boot = boot.trim();
    let last_boot: Option<String> =
        tx.query_row("SELECT value FROM meta WHERE key = 'boot_id'", [], |r| r.get(0)).optional()?;
    tx.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('boot_id', ?1)", [boot])?;
    tx.commit()?;
    let same_boot = !boot.is_empty() && last_boot.as_deref() == Some(boot);
    Ok(lost.into_iter().map(|job| if same_boot { job } else { Lost { pid: None, ..job } }).collect())
}

fn write_loop(mut conn: Connection, receiver: mpsc::Receiver<Message>) {
    while let Ok(first) = receiver.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(message) => batch.push(message),
                Err(_) => break,
            }
        }
        let outcomes = match apply_all(&mut conn, &batch) {
            Ok(outcomes) => outcomes,
            Err(e) => {
                // The transaction failed as a whole (a full disk, say): try
                // each change on its own, so one bad change costs only itself.
                tracing::warn!(error = %e, changes = batch.len(), "a batch of job records failed; retrying one by one");
                batch
                    .iter()
                    .map(|m| {
                        apply_all(&mut conn, std::slice::from_ref(m))
                            .map_or_else(|e| Err(e.into()), |mut o| o.remove(0))
                    })
                    .collect()
            }
        };
        for (message, outcome) in batch.into_iter().zip(outcomes) {
            if let Err(e) = &outcome {
                tracing::error!(error = %e, change = ?message.change, "a job record could not be written");
            }
            if let Some(done) = message.done {
                done(outcome);
            }
        }
    }
}

/// Applies `batch` in one transaction; each change's own outcome, if it commits.
fn apply_all(conn: &mut Connection, batch: &[Message]) -> rusqlite::Result<Vec<Outcome>> {
    let tx = conn.transaction()?;
    let outcomes = batch.iter().map(|m| apply(&tx, &m.change).map_err(RecordsError::from)).collect();
    tx.commit()?;
    Ok(outcomes)
}

fn apply(tx: &rusqlite::Transaction<'_>, change: &Change) -> rusqlite::Result<Option<u64>> {
    match change {
        Change::Create { client, id, command, args, spec, at, if_missing } => {
            let args = serde_json::to_string(args).expect("strings serialise");
            let insert = if *if_missing { "INSERT OR IGNORE" } else { "INSERT" };
            tx.prepare_cached(&format!(
                "{insert} INTO jobs (client, id, command, args, spec, state, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'starting', ?6)"
            ))?
            .execute(params![&**client, id.0, command, args, spec, millis(*at)])?;
        }
        Change::Start { client, id, started, at } => record_start(tx, client, id, started, *at)?,
        Change::Finish { client, id, ended } => record_finish(tx, client, id, ended)?,
        Change::Stored { client, id, stored } => {
            tx.prepare_cached(
                "UPDATE jobs SET stdout_bytes = ?3, stderr_bytes = ?4 WHERE client = ?1 AND id = ?2",
            )?
            .execute(params![&**client, id.0, stored[0], stored[1]])
            .and_then(one_row)?;
        }
        Change::Delete { client, id } => {
            return tx
                .prepare_cached(
                    "DELETE FROM jobs WHERE client = ?1 AND id = ?2 RETURNING stdout_bytes + stderr_bytes",
                )?
                .query_row(params![&**client, id.0], |r| r.get(0))
                .optional();
        }
        Change::Reserve { client, up_to } => {
            tx.prepare_cached(
                "INSERT INTO clients (client, reserved) VALUES (?1, ?2)
                 ON CONFLICT (client) DO UPDATE SET reserved = excluded.reserved",
            )?
            .execute(params![&**client, up_to])?;
        }
    }
    Ok(None)
}

/// A job's start, or its failure to start, which ends it at once.
fn record_start(
    tx: &rusqlite::Transaction<'_>,
    client: &str,
    id: &JobId,
    started: &StartOutcome,
    at: SystemTime,
) -> rusqlite::Result<()> {
    let (state, pid, proc_start, error, finished) = match started {
        StartOutcome::Running { pid, proc_start } => ("running", Some(pid), *proc_start, None, None),
        StartOutcome::Failed { message } => ("error", None, None, Some(message), Some(millis(at))),
    };
    tx.prepare_cached(
        "UPDATE jobs SET state = ?3, pid = ?4, proc_start = ?5, error_msg = ?6, started_at = ?7,
         finished_at = ?8 WHERE client = ?1 AND id = ?2",
    )?
    .execute(params![client, id.0, state, pid, proc_start, error, millis(at), finished])
    .and_then(one_row)
}

/// A job's end: how it ended, its stored output and what it used.
fn record_finish(
    tx: &rusqlite::Transaction<'_>,
    client: &str,
    id: &JobId,
    ended: &Ended,
) -> rusqlite::Result<()> {
    let none = ResourceUsage::default();
    let (state, exit_code, signal, error, lost, usage, oom_killed) = match &ended.end {
        End::Completed { termination: Termination::Exited(code), usage, oom_killed, .. } => {
            ("completed", Some(*code), None, None, false, usage, *oom_killed)
        }
        End::Completed { termination: Termination::Signaled(signal), usage, oom_killed, .. } => {
            ("completed", None, Some(*signal), None, false, usage, *oom_killed)
        }
        End::Failed { message } => ("error", None, None, Some(message.as_str()), false, &none, false),
        End::Lost { usage, oom_killed, .. } => {
            ("error", None, None, Some(LOST_MESSAGE), true, usage, *oom_killed)
        }
    };
    tx.prepare_cached(
        "UPDATE jobs SET state = ?3, exit_code = ?4, signal = ?5, error_msg = coalesce(?6, error_msg),
         finished_at = ?7, stdout_bytes = ?8, stderr_bytes = ?9, truncated = ?10, output_error = ?11,
         lost = ?12, oom_killed = ?13, cpu_ms = ?14, memory_peak = ?15 WHERE client = ?1 AND id = ?2",
    )?
    .execute(params![
        client,
        id.0,
        state,
        exit_code,
        signal,
        error,
        millis(ended.at),
        ended.stored[0],
        ended.stored[1],
        ended.truncated,
        ended.output_error,
        lost,
        oom_killed,
        usage.cpu_ms,
        usage.memory_peak
    ])
    .and_then(one_row)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh folder for one test's database, removed when dropped.
    struct Scratch(std::path::PathBuf);

    impl Scratch {
        fn new(label: &str) -> Scratch {
            let path = std::env::temp_dir().join(format!("rcmd-records-{label}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir(&path).unwrap();
            Scratch(path)
        }

        /// A copy of the fixture written before schema versions were kept.
        fn with_v0_fixture(label: &str) -> (Scratch, std::path::PathBuf) {
            let scratch = Scratch::new(label);
            let db = scratch.0.join("jobs.db");
            std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/src/jobs/fixtures/jobs-v0.db"), &db).unwrap();
            (scratch, db)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn version(db: &std::path::Path) -> i64 {
        Connection::open(db).unwrap().pragma_query_value(None, "user_version", |r| r.get(0)).unwrap()
    }

    fn usage(cpu_ms: Option<u64>, memory_peak: Option<u64>) -> ResourceUsage {
        ResourceUsage { cpu_ms, memory_peak }
    }

    fn done(finished_at: i64, end: End) -> JobState {
        JobState::Done { finished_at: time(finished_at), end }
    }

    fn completed(pid: u32, termination: Termination, usage: ResourceUsage) -> End {
        End::Completed { pid: Some(pid), termination, usage, oom_killed: false }
    }

    /// Every field of one record, as the fixture's README says it was made.
    struct Expected {
        client: &'static str,
        id: u64,
        command: &'static str,
        args: &'static [&'static str],
        started_at: i64,
        state: JobState,
        stored: [u64; 2],
        truncated: Option<&'static str>,
        limits: Limits,
        stdin: bool,
    }

    fn check(records: &Records, expected: &Expected) {
        let record = records.get(expected.client, JobId(expected.id)).unwrap().expect("recorded");
        let label = format!("{}/{}", expected.client, expected.id);
        let status = &record.status;
        assert_eq!(status.id, JobId(expected.id), "{label}");
        assert_eq!(status.command, expected.command, "{label}");
        assert_eq!(status.args, expected.args, "{label}");
        assert_eq!(status.started_at, time(expected.started_at), "{label}");
        assert_eq!(status.state, expected.state, "{label}");
        assert_eq!(status.limits, expected.limits, "{label}");
        assert_eq!(status.truncated, expected.truncated.is_some(), "{label}");
        assert_eq!(status.truncated_reason.as_deref(), expected.truncated, "{label}");
        assert_eq!(status.output_error, None, "{label}");
        assert_eq!(record.stored, expected.stored, "{label}");
        assert_eq!(record.stdin, expected.stdin, "{label}");
    }

    #[test]
    fn the_v0_fixture_is_migrated_and_read_in_full() {
        let (_scratch, db) = Scratch::with_v0_fixture("v0");
        assert_eq!(version(&db), 0);
        let (records, lost) = Records::open(&db).unwrap();
        assert_eq!(version(&db), SCHEMA_VERSION);
        // The job that was running when its server died is lost now; its pid
        // is of another boot, so nothing is signalled.
        assert_eq!(lost.len(), 1, "{lost:?}");
        assert_eq!((lost[0].client.as_str(), lost[0].id, lost[0].pid), ("dave", JobId(1), None));
        assert_eq!(lost[0].proc_start, Some(82326));

        let plain = Limits::default();
        let limited = Limits {
            memory: Some(crate::limits::Memory::new(64 << 20).unwrap()),
            cpus: Some(crate::limits::Cpus::new(0.5).unwrap()),
            pids: Some(crate::limits::Pids::new(32).unwrap()),
            ..Limits::default()
        };
        let lost_at = |pid, usage| End::Lost { pid: Some(pid), usage, oom_killed: false };
        let expected = [
            Expected {
                client: "alice",
                id: 1,
                command: "sh",
                args: &["-c", "echo out; echo err >&2; exit 3"],
                started_at: 1796688832690,
                state: done(1796688832705, completed(1130, Termination::Exited(3), usage(Some(1), None))),
                stored: [4, 4],
                truncated: None,
                limits: plain,
                stdin: false,
            },
            Expected {
                client: "alice",
                id: 2,
                command: "sh",
                args: &["-c", "kill -TERM $$"],
                started_at: 1796688832705,
                state: done(1796688832708, completed(1131, Termination::Signaled(15), usage(Some(1), None))),
                stored: [0, 0],
                truncated: None,
                limits: plain,
                stdin: false,
            },
            Expected {
                client: "alice",
                id: 3,
                command: "/nonexistent/rcmd-fixture",
                args: &["x"],
                started_at: 1796688832708,
                state: done(
                    1796688832708,
                    End::Failed {
                        message: "cannot start \"/nonexistent/rcmd-fixture\": No such file or directory (os error 2)"
                            .into(),
                    },
                ),
                stored: [0, 0],
                truncated: None,
                limits: plain,
                stdin: false,
            },
            Expected {
                client: "alice",
                id: 5,
                command: "sh",
                args: &["-c", "head -c 3; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo limited"],
                started_at: 1796688832717,
                state: done(1796688832760, completed(1136, Termination::Exited(0), usage(Some(35), Some(524288)))),
                stored: [11, 0],
                truncated: None,
                limits: limited,
                stdin: true,
            },
            Expected {
                client: "bob",
                id: 1,
                command: "sh",
                args: &["-c", "printf 0123456789abcdef"],
                started_at: 1796688832765,
                state: done(1796688832784, completed(1138, Termination::Exited(0), usage(Some(1), None))),
                stored: [10, 0],
                truncated: Some("the job wrote more than the 10 bytes a job may keep"),
                limits: plain,
                stdin: false,
            },
            Expected {
                client: "carol",
                id: 1,
                command: "sh",
                args: &["-c", "echo before; sleep 1000"],
                started_at: 1796688832785,
                state: done(1796688832787, lost_at(1139, usage(Some(0), None))),
                stored: [7, 0],
                truncated: None,
                limits: plain,
                stdin: false,
            },
            Expected {
                client: "dave",
                id: 2,
                command: "sh",
                args: &["-c", "true"],
                started_at: 1796688832964,
                state: done(1796688832965, completed(1153, Termination::Exited(0), usage(None, None))),
                stored: [0, 0],
                truncated: None,
                limits: plain,
                stdin: false,
            },
        ];
        for job in &expected {
            check(&records, job);
        }
        // Lost on this open: its end is the time it was found.
        let found = records.get("dave", JobId(1)).unwrap().unwrap().status;
        assert_eq!(found.args, ["-c", "echo started; exec sleep 1000"]);
        let JobState::Done { end, finished_at } = &found.state else { panic!("{found:?}") };
        assert_eq!(*end, End::Lost { pid: Some(1152), usage: ResourceUsage::default(), oom_killed: false });
        assert!(*finished_at > time(1796688832964));
        assert!(matches!(found.status(), super::super::Status::Error(m) if m == LOST_MESSAGE));
        assert!(records.get("alice", JobId(4)).unwrap().is_none(), "deleted before the fixture was taken");

        let alice = records.usage("alice").unwrap();
        assert_eq!((alice.jobs, alice.stored, alice.last_id), (4, 19, 1025));
        assert_eq!(records.clients_after("", 10).unwrap(), ["alice", "bob", "carol", "dave"]);
        assert_eq!(records.page("alice", JobId(0), 10, usize::MAX).unwrap().len(), 4);
        records.close();
        drop(records);
        // Migrated once: opened again, it is as it was.
        let (records, lost) = Records::open(&db).unwrap();
        assert!(lost.is_empty());
        check(&records, &expected[0]);
    }

    #[test]
    fn a_database_from_a_newer_rcmd_is_refused_and_left_alone() {
        let (_scratch, db) = Scratch::with_v0_fixture("newer");
        Connection::open(&db).unwrap().pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
        let Err(e) = Records::open(&db) else { panic!("opened") };
        assert!(matches!(e, RecordsError::UnknownVersion { found } if found == SCHEMA_VERSION + 1), "{e}");
        assert!(e.to_string().contains("newer rcmd"), "{e}");
        assert_eq!(version(&db), SCHEMA_VERSION + 1);
    }

    #[test]
    fn an_unversioned_database_with_other_tables_is_refused_and_left_alone() {
        let (_scratch, db) = Scratch::with_v0_fixture("tables");
        Connection::open(&db).unwrap().execute_batch("ALTER TABLE jobs ADD COLUMN surprise TEXT").unwrap();
        let Err(e) = Records::open(&db) else { panic!("opened") };
        assert!(matches!(e, RecordsError::Tables { version: 0, table: "jobs", .. }), "{e}");
        assert_eq!(version(&db), 0);
    }

    #[test]
    fn a_new_database_starts_at_the_current_version() {
        let scratch = Scratch::new("new");
        let db = scratch.0.join("jobs.db");
        let (records, lost) = Records::open(&db).unwrap();
        assert!(lost.is_empty());
        drop(records);
        assert_eq!(version(&db), SCHEMA_VERSION);
        assert!(Records::open(&db).is_ok());
    }
}
