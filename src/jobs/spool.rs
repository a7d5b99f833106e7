//! Output spooling: pumps that copy a job's pipes into files, the progress
//! event they publish, and readers that follow the files.
//!
//! The spool files are written and read with plain blocking calls on the
//! async worker. That is deliberate: they are page-cache writes and reads of at
//! most one chunk, which take microseconds, while a trip through
//! `spawn_blocking` per chunk would cost more than the I/O itself.

use std::cell::RefCell;
use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::net::unix::pipe;
use tokio::sync::watch;

use super::JobId;
use super::data_dir::Folder;

/// Bytes moved per read from a pipe (the size of an enlarged pipe).
const PUMP_CHUNK: usize = 1 << 20;
/// The capacity of a new pipe on Linux.
const PIPE_DEFAULT: usize = 64 * 1024;
/// The most one reader reads, and holds, at once.
const READ_CHUNK: usize = 256 * 1024;

/// One of a job's two output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub const BOTH: [Stream; 2] = [Stream::Stdout, Stream::Stderr];

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// What a job's event channel carries. Every change wakes the job's readers
/// and waiters.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Progress {
    /// Bytes stored so far, per stream (indexed by [`Stream`]).
    stored: [u64; 2],
    pub truncated: Option<Truncation>,
    /// The main process has exited (it may not be reaped yet).
    pub exited: bool,
    /// The job is over: reaped, and its output drained to the end.
    pub finished: bool,
}

impl Progress {
    /// The progress of a new job: one that never started has no process
    /// to wait for, but is finished only once its record is.
    pub fn new(started: bool) -> Self {
        Progress { exited: !started, ..Progress::default() }
    }

    /// The progress of a job that is over, with what it stored.
    pub fn over(stored: [u64; 2]) -> Self {
        Progress { stored, exited: true, finished: true, ..Progress::default() }
    }

    /// Keeps the first reason output was dropped.
    pub fn truncate(&mut self, why: Truncation) {
        self.truncated.get_or_insert(why);
    }

    pub fn stored_both(&self) -> [u64; 2] {
        self.stored
    }

    pub fn stored(&self, stream: Stream) -> u64 {
        self.stored[stream.index()]
    }

    fn total_stored(&self) -> u64 {
        self.stored.iter().sum()
    }
}

/// The name of one stream's spool file for a job, in its client's folder.
pub(crate) fn file_name(id: JobId, stream: Stream) -> String {
    format!("{id}.{}", stream.name())
}

/// Why a job's output was cut short. The first reason is the one kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncation {
    /// Past the bytes one job may keep.
    JobLimit(u64),
    /// Past the bytes all of one client's jobs may keep.
    ClientLimit(u64),
    /// Past the bytes all jobs of every client may keep.
    DiskLimit(u64),
    /// The spool file could not be written (see the job's output error).
    WriteError,
    /// A process that left the job's group kept its output open after the
    /// job ended.
    Detached,
}

impl fmt::Display for Truncation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Truncation::JobLimit(n) => write!(f, "the job wrote more than the {n} bytes a job may keep"),
            Truncation::ClientLimit(n) => {
                write!(
                    f,
                    "your jobs' stored output reached {n} bytes, the most allowed; delete finished jobs"
                )
            }
            Truncation::DiskLimit(n) => {
                write!(f, "the server's space for output ({n} bytes, all clients together) is full")
            }
            Truncation::WriteError => write!(f, "the server could not write it to disk"),
            Truncation::Detached => {
                write!(f, "a process that left the job's group kept its output open after the job ended")
            }
        }
    }
}

/// Where a pump records what it stored, and how a pump learns the room left.
pub(crate) struct Sink<'a> {
    pub events: &'a watch::Sender<Progress>,
    /// The client's folder, where the spool files are made.
    pub folder: &'a Folder,
    pub id: JobId,
    /// Bytes kept per job.
    pub output_limit: u64,
    /// Bytes stored by the whole pool, and the most it may store.
    pub pool_stored: &'a AtomicU64,
    pub pool_limit: u64,
    /// Bytes stored by every pool, and the most they may store.
    pub disk_stored: &'a AtomicU64,
    pub disk_limit: u64,
    /// Called with an error that cost output, so it can be logged and shown.
    pub report_error: &'a (dyn Fn(Stream, &io::Error) + Sync),
}

/// Takes up to `want` units of `counter` without passing `limit`; returns
/// how many it took.
fn reserve(counter: &AtomicU64, limit: u64, want: u64) -> u64 {
    let mut took = 0;
    let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
        took = want.min(limit.saturating_sub(used));
        Some(used + took)
    });
    took
}

thread_local! {
    /// The pumps' read buffer, one per worker thread: a pump reads and stores
    /// a chunk without awaiting in between, so an idle job holds no buffer.
    static PUMP_BUFFER: RefCell<Vec<u8>> = RefCell::new(vec![0u8; PUMP_CHUNK]);
}

/// Copies `pipe` into the spool file at `path` until EOF. It never stops
/// reading early, so the job is never blocked on a full pipe: bytes past the
/// cap, or after a write error, are read and dropped, and the job is marked
/// truncated.
pub(crate) async fn pump(stream: Stream, pipe: pipe::Receiver, sink: &Sink<'_>) {
    let mut spool = SpoolWriter { stream, file: None, can_write: true };
    let mut enlarged = false;
    loop {
        if let Err(e) = pipe.readable().await {
            spool.fail(sink, &e);
            return;
        }
        let read = PUMP_BUFFER.with_borrow_mut(|buf| {
            let read = pipe.try_read(buf);
            if let Ok(n @ 1..) = read {
                spool.store(sink, &buf[..n]);
            }
            read
        });
        match read {
            Ok(0) => return,
            Ok(n) if n == PIPE_DEFAULT && !enlarged => {
                // A full pipe: a chatty job. A bigger pipe lets it run ahead
                // while the pump writes (only chatty jobs get one, as pipe
                // memory counts against a per-user limit).
                enlarged = true;
                let _ = nix::fcntl::fcntl(&pipe, nix::fcntl::FcntlArg::F_SETPIPE_SZ(PUMP_CHUNK as i32));
            }
            Ok(_) => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
            Err(e) => {
                spool.fail(sink, &e);
                return;
            }
        }
    }
}

/// One stream's spool file, made with the first byte (a job without output
/// costs no file), and whether it can still be written.
struct SpoolWriter {
    stream: Stream,
    file: Option<File>,
    can_write: bool,
}

impl SpoolWriter {
    /// Keeps what fits under the job's, the pool's and the disk's caps, drops
    /// the rest, and says why.
    fn store(&mut self, sink: &Sink<'_>, bytes: &[u8]) {
        let want = bytes.len() as u64;
        let job_room = sink.output_limit.saturating_sub(sink.events.borrow().total_stored());
        let mut why = None;
        let mut keep = want;
        if job_room < keep {
            keep = job_room;
            why = Some(Truncation::JobLimit(sink.output_limit));
        }
        let pool_took = reserve(sink.pool_stored, sink.pool_limit, keep);
        if pool_took < keep {
            keep = pool_took;
            why = Some(Truncation::ClientLimit(sink.pool_limit));
        }
        let disk_took = reserve(sink.disk_stored, sink.disk_limit, keep);
        if disk_took < keep {
            sink.pool_stored.fetch_sub(keep - disk_took, Ordering::Relaxed);
            keep = disk_took;
            why = Some(Truncation::DiskLimit(sink.disk_limit));
        }
        let keep = keep as usize;
        let mut stored = 0;
        if self.can_write && keep > 0 {
            let file = match self.file.take() {
                Some(file) => Ok(file),
                None => sink.folder.create_new(&file_name(sink.id, self.stream)),
            };
            let written = file.and_then(|mut file| {
                file.write_all(&bytes[..keep])?;
                self.file = Some(file);
                Ok(())
            });
            match written {
                Ok(()) => stored = keep,
                Err(e) => {
                    self.can_write = false;
                    why = Some(Truncation::WriteError);
                    (sink.report_error)(self.stream, &e);
                }
            }
        } else if keep > 0 {
            why = Some(Truncation::WriteError);
        }
        // Give back what was reserved and not stored.
        let unused = (keep - stored) as u64;
        sink.pool_stored.fetch_sub(unused, Ordering::Relaxed);
        sink.disk_stored.fetch_sub(unused, Ordering::Relaxed);
        sink.events.send_modify(|p| {
            p.stored[self.stream.index()] += stored as u64;
            if let Some(why) = why {
                p.truncate(why);
            }
        });
    }

    /// The pipe itself failed: what is left of the output is lost.
    fn fail(&self, sink: &Sink<'_>, e: &io::Error) {
        (sink.report_error)(self.stream, e);
        sink.events.send_modify(|p| p.truncate(Truncation::WriteError));
    }
}

/// Follows one stream of one job from a byte offset: yields every byte from
/// there on, waits for more while the job runs, and ends once the job has
/// finished and every stored byte was read.
///
/// A reader holds an open file, so it keeps working even if the job is deleted
/// while it follows; at most one chunk of output is in memory per reader.
pub struct OutputReader {
    folder: Arc<Folder>,
    name: String,
    /// Opened when the reader is made, or with the first byte to read.
    file: Option<File>,
    stream: Stream,
    offset: u64,
    /// Where reading stops early: set by [`OutputReader::up_to_now`].
    end: Option<u64>,
    events: watch::Receiver<Progress>,
}

impl OutputReader {
    /// A reader of one stream of job `id`, whose files are in `folder`. A
    /// spool file that exists is opened now, so the reader keeps working if
    /// the job is deleted while it follows; one that does not yet (no output
    /// so far) is opened with the first byte to read. A file that should
    /// hold bytes and is missing is an error, never the end of the output.
    pub(crate) fn open(
        folder: Arc<Folder>,
        id: JobId,
        stream: Stream,
        offset: u64,
        events: watch::Receiver<Progress>,
    ) -> io::Result<Self> {
        let name = file_name(id, stream);
        let file = match folder.open(&name) {
            Ok(file) => Some(file),
            Err(e) if e.kind() == io::ErrorKind::NotFound && events.borrow().stored(stream) == 0 => None,
            Err(e) => return Err(missing(&name, e)),
        };
        Ok(OutputReader { folder, name, file, stream, offset, end: None, events })
    }

    /// Stops this reader at the output stored so far, instead of following
    /// the job to its end.
    pub fn up_to_now(mut self) -> Self {
        self.end = Some(self.events.borrow().stored(self.stream));
        self
    }

    /// The bytes left to read by a reader stopped with
    /// [`OutputReader::up_to_now`]; `None` for one that follows the job.
    pub fn remaining(&self) -> Option<u64> {
        self.end.map(|end| end.saturating_sub(self.offset))
    }

    /// The offset of the next byte this reader will yield.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next chunk of output (at most 256 KiB), or `None` at the end.
    pub async fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        loop {
            let (stored, finished) = {
                let p = self.events.borrow_and_update();
                match self.end {
                    Some(end) => (end.min(p.stored(self.stream)), true),
                    None => (p.stored(self.stream), p.finished),
                }
            };
            if self.offset < stored {
                if self.file.is_none() {
                    self.file = Some(self.folder.open(&self.name).map_err(|e| missing(&self.name, e))?);
                }
                let file = self.file.as_ref().expect("opened above");
                let want = usize::try_from(stored - self.offset).map_or(READ_CHUNK, |n| n.min(READ_CHUNK));
                let mut buf = vec![0u8; want];
                let n = file.read_at(&mut buf, self.offset)?;
                if n == 0 {
                    // The file is shorter than recorded: it was cut from
                    // outside. End rather than spin.
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "spool file is shorter than the output it recorded",
                    ));
                }
                buf.truncate(n);
                self.offset += n as u64;
                return Ok(Some(Bytes::from(buf)));
            }
            if finished {
                return Ok(None);
            }
            if self.events.changed().await.is_err() {
                // The job's record is gone (its pool was dropped).
                return Ok(None);
            }
        }
    }

    /// Reads everything from the offset to the end of the job's output.
    pub async fn read_to_end(mut self) -> io::Result<Vec<u8>> {
        let mut all = Vec::new();
        while let Some(chunk) = self.next_chunk().await? {
            all.extend_from_slice(&chunk);
        }
        Ok(all)
    }
}

/// A spool file that cannot be opened though it should hold output: the
/// output is not there (deleted, or replaced by something we do not follow).
fn missing(name: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("the job's output file {name} cannot be opened: {e}"))
}
