//! Output spooling: pumps that copy a job's pipes into files, the progress
//! event they publish, and readers that follow the files.
//!
//! The spool files are written and read with plain blocking calls on the
//! async worker. That is deliberate: they are page-cache writes and reads of at
//! most one chunk, which take microseconds, while a trip through
//! `spawn_blocking` per chunk would cost more than the I/O itself.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::net::unix::pipe;
use tokio::sync::watch;

use super::JobId;

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
    pub truncated: bool,
    /// The main process has exited (it may not be reaped yet).
    pub exited: bool,
    /// The job is over: reaped, and its output drained to the end.
    pub finished: bool,
}

impl Progress {
    /// The progress of a new job; one that never started is over at once.
    pub fn new(over: bool) -> Self {
        Progress { exited: over, finished: over, ..Progress::default() }
    }

    pub fn stored(&self, stream: Stream) -> u64 {
        self.stored[stream.index()]
    }

    fn total_stored(&self) -> u64 {
        self.stored.iter().sum()
    }
}

/// The path of one stream's spool file for a job.
pub(crate) fn spool_path(dir: &Path, id: JobId, stream: Stream) -> PathBuf {
    dir.join(format!("{id}.{}", stream.name()))
}

/// Whether `name` is a file this module could have made (so the pool may
/// remove it when it takes over its directory).
pub(crate) fn is_spool_file_name(name: &str) -> bool {
    name.rsplit_once('.').is_some_and(|(id, ext)| {
        (ext == "stdout" || ext == "stderr") && !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Creates an empty spool file that only the server's user can read.
pub(crate) fn create_spool_file(path: &Path) -> io::Result<File> {
    File::options().write(true).create(true).truncate(true).mode(0o600).open(path)
}

/// Where a pump records what it stored, and how a pump learns the room left.
pub(crate) struct Sink<'a> {
    pub events: &'a watch::Sender<Progress>,
    /// Bytes kept per job.
    pub output_limit: u64,
    /// Bytes stored by the whole pool, and the most it may store.
    pub pool_stored: &'a AtomicU64,
    pub pool_limit: u64,
    /// Called with an error that cost output, so it can be logged and shown.
    pub report_error: &'a (dyn Fn(Stream, &io::Error) + Sync),
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
pub(crate) async fn pump(stream: Stream, pipe: pipe::Receiver, path: &Path, sink: &Sink<'_>) {
    let mut spool = SpoolWriter { stream, path, file: None, can_write: true };
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
struct SpoolWriter<'a> {
    stream: Stream,
    path: &'a Path,
    file: Option<File>,
    can_write: bool,
}

impl SpoolWriter<'_> {
    /// Keeps what fits under the job's and the pool's caps, drops the rest.
    fn store(&mut self, sink: &Sink<'_>, bytes: &[u8]) {
        let job_room = sink.output_limit.saturating_sub(sink.events.borrow().total_stored());
        let pool_room = sink.pool_limit.saturating_sub(sink.pool_stored.load(Ordering::Relaxed));
        let keep = bytes.len().min(usize::try_from(job_room.min(pool_room)).unwrap_or(usize::MAX));
        let mut stored = 0;
        if self.can_write && keep > 0 {
            let file = match self.file.take() {
                Some(file) => Ok(file),
                None => create_spool_file(self.path),
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
                    (sink.report_error)(self.stream, &e);
                }
            }
        }
        sink.pool_stored.fetch_add(stored as u64, Ordering::Relaxed);
        sink.events.send_modify(|p| {
            p.stored[self.stream.index()] += stored as u64;
            p.truncated |= stored < bytes.len();
        });
    }

    /// The pipe itself failed: what is left of the output is lost.
    fn fail(&self, sink: &Sink<'_>, e: &io::Error) {
        (sink.report_error)(self.stream, e);
        sink.events.send_modify(|p| p.truncated = true);
    }
}

/// Follows one stream of one job from a byte offset: yields every byte from
/// there on, waits for more while the job runs, and ends once the job has
/// finished and every stored byte was read.
///
/// A reader holds an open file, so it keeps working even if the job is deleted
/// while it follows; at most one chunk of output is in memory per reader.
pub struct OutputReader {
    path: PathBuf,
    /// Opened when the reader is made, or with the first byte to read.
    file: Option<File>,
    stream: Stream,
    offset: u64,
    /// Where reading stops early: set by [`OutputReader::up_to_now`].
    end: Option<u64>,
    events: watch::Receiver<Progress>,
}

impl OutputReader {
    pub(crate) fn new(
        path: PathBuf,
        file: Option<File>,
        stream: Stream,
        offset: u64,
        events: watch::Receiver<Progress>,
    ) -> Self {
        OutputReader { path, file, stream, offset, end: None, events }
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
                    match File::open(&self.path) {
                        Ok(file) => self.file = Some(file),
                        // Deleted before this reader first read: nothing more.
                        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                        Err(e) => return Err(e),
                    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spool_file_names_are_recognised_and_nothing_else() {
        assert!(is_spool_file_name("1.stdout"));
        assert!(is_spool_file_name("42.stderr"));
        assert!(!is_spool_file_name(".stdout"));
        assert!(!is_spool_file_name("x.stdout"));
        assert!(!is_spool_file_name("1.stdin"));
        assert!(!is_spool_file_name("important.txt"));
    }
}
