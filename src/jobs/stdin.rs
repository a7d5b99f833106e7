//! A job's stdin: a pipe that one writer fills from a stream of chunks.
//!
//! # Invariants
//!
//! * **One writer, once.** The pipe's write end sits in the job's
//!   [`StdinSlot`] until a writer takes it. From then on the [`StdinWriter`]
//!   owns it, and the pipe is closed (the job reads EOF) when the writer is
//!   done or dropped. A second writer, and any writer after the first, is
//!   refused: stdin is one stream with one end, not a file to append to.
//! * **Back-pressure.** A writer writes straight into the pipe and pulls the
//!   next chunk from its source only once the previous one is all in the
//!   pipe. So the server holds at most one chunk per job beyond the pipe's
//!   own buffer, however fast the sender is: the rest waits on the sender's
//!   side of the connection (its TCP and HTTP/2 flow-control windows).
//! * **The job's end ends it.** When the job's main process exits, or is
//!   killed by stop or delete, an untaken pipe is closed at once, and a
//!   writer stops within one wake-up, whether it was waiting on the pipe or
//!   on its source, and reports why.
//! * **Nobody waits on a pipe but its writer.** The write end is
//!   non-blocking, so a job that nobody writes to, or that never reads,
//!   blocks nothing but itself.

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::net::unix::pipe;
use tokio::sync::watch;

use super::spool::Progress;

/// A stdin pipe that a writer has filled is enlarged to this, once: a big
/// upload then moves in fewer, larger steps. Only jobs that are sent more
/// than a pipeful pay for it (pipe memory counts against a per-user limit).
const ENLARGED_PIPE: i32 = 1 << 20;

/// Why a job's stdin cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdinRefused {
    /// The job was created without a stdin pipe: it reads /dev/null.
    NotPiped,
    /// Another writer is attached.
    Busy,
    /// An earlier writer wrote this many bytes and closed it.
    Closed { written: u64 },
    /// The job is not running (it has ended, or it never started).
    Ended,
}

impl fmt::Display for StdinRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StdinRefused::NotPiped => {
                f.write_str(r#"it was created without one (create the job with "stdin": true)"#)
            }
            StdinRefused::Busy => f.write_str("another upload is writing to it (one writer at a time)"),
            StdinRefused::Closed { written } => {
                write!(f, "an earlier upload wrote {written} bytes and closed it (stdin cannot be reopened)")
            }
            StdinRefused::Ended => f.write_str("the job is not running"),
        }
    }
}

/// How an upload into a job's stdin ended.
#[derive(Debug)]
pub enum StdinEnd {
    /// The source ended: every byte is in the pipe, and the pipe is closed.
    Complete,
    /// The job closed its stdin before the source ended.
    JobClosed,
    /// The job's main process exited, or was stopped or deleted, first.
    JobEnded,
    /// The source failed (its sender went away); the pipe is closed, so the
    /// job reads EOF after what was written.
    SourceFailed(String),
    /// Writing into the pipe failed.
    PipeFailed(io::Error),
}

/// What a writer did: bytes the job's pipe accepted, and why it stopped.
#[derive(Debug)]
pub struct StdinCopied {
    pub written: u64,
    pub end: StdinEnd,
}

enum Slot {
    NotPiped,
    Ready(pipe::Sender),
    Taken,
    Closed { written: u64 },
    Ended,
}

/// The job's side of its stdin: the pipe until a writer takes it.
pub(crate) struct StdinSlot(Arc<Mutex<Slot>>);

impl StdinSlot {
    /// The slot of a job started with `pipe` (`None`: no stdin pipe).
    pub fn new(pipe: Option<pipe::Sender>) -> Self {
        StdinSlot(Arc::new(Mutex::new(match pipe {
            Some(pipe) => Slot::Ready(pipe),
            None => Slot::NotPiped,
        })))
    }

    /// The slot of a job that never started but asked for a pipe.
    pub fn never_started(piped: bool) -> Self {
        StdinSlot(Arc::new(Mutex::new(if piped { Slot::Ended } else { Slot::NotPiped })))
    }

    fn lock(slot: &Mutex<Slot>) -> MutexGuard<'_, Slot> {
        slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands the pipe to one writer, who stops when `events` says the job
    /// has exited.
    pub fn take(&self, events: watch::Receiver<Progress>) -> Result<StdinWriter, StdinRefused> {
        let mut slot = Self::lock(&self.0);
        match std::mem::replace(&mut *slot, Slot::Taken) {
            Slot::Ready(pipe) => Ok(StdinWriter {
                pipe: Some(pipe),
                written: 0,
                enlarged: false,
                events,
                slot: Arc::clone(&self.0),
            }),
            other => {
                let refused = match &other {
                    Slot::NotPiped => StdinRefused::NotPiped,
                    Slot::Taken => StdinRefused::Busy,
                    Slot::Closed { written } => StdinRefused::Closed { written: *written },
                    Slot::Ended | Slot::Ready(_) => StdinRefused::Ended,
                };
                *slot = other;
                Err(refused)
            }
        }
    }

    /// The job's main process has exited: close a pipe nobody took, and say
    /// so from now on. (A writer that holds the pipe sees the same event and
    /// closes it itself.)
    pub fn close_at_end(&self) {
        let mut slot = Self::lock(&self.0);
        if matches!(*slot, Slot::Ready(_) | Slot::Closed { .. }) {
            *slot = Slot::Ended;
        }
    }
}

/// The one writer of a job's stdin. Dropping it closes the pipe.
pub struct StdinWriter {
    pipe: Option<pipe::Sender>,
    written: u64,
    enlarged: bool,
    events: watch::Receiver<Progress>,
    slot: Arc<Mutex<Slot>>,
}

impl StdinWriter {
    /// Writes every chunk of `source` into the job's stdin as it arrives,
    /// then closes it. Stops early, closing it too, when the job ends or
    /// closes its stdin, or when the source fails.
    pub async fn copy_from<S, E>(mut self, source: S) -> StdinCopied
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: fmt::Display,
    {
        let end = self.copy(source).await;
        // Close now, not whenever the caller drops us.
        self.pipe = None;
        StdinCopied { written: self.written, end }
    }

    async fn copy<S, E>(&mut self, source: S) -> StdinEnd
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: fmt::Display,
    {
        let StdinWriter { pipe, written, enlarged, events, .. } = self;
        let pipe = pipe.as_ref().expect("a writer holds its pipe until it is done");
        tokio::pin!(source);
        // The job's end, checked first at every wait: a sender that never
        // pauses cannot keep a writer going past it. An error means the job's
        // record is gone (its pool was dropped): an end too.
        let ended = events.wait_for(|p| p.exited);
        tokio::pin!(ended);
        loop {
            let chunk = tokio::select! {
                biased;
                _ = &mut ended => return StdinEnd::JobEnded,
                chunk = source.next() => chunk,
            };
            let mut rest = match chunk {
                None => return StdinEnd::Complete,
                Some(Err(e)) => return StdinEnd::SourceFailed(e.to_string()),
                Some(Ok(chunk)) => chunk,
            };
            while !rest.is_empty() {
                match pipe.try_write(&rest) {
                    Ok(n) => {
                        *written += n as u64;
                        let _ = rest.split_to(n);
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if !*enlarged {
                            *enlarged = true;
                            let _ =
                                nix::fcntl::fcntl(pipe, nix::fcntl::FcntlArg::F_SETPIPE_SZ(ENLARGED_PIPE));
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return StdinEnd::JobClosed,
                    Err(e) => return StdinEnd::PipeFailed(e),
                }
                tokio::select! {
                    biased;
                    _ = &mut ended => return StdinEnd::JobEnded,
                    ready = pipe.writable() => {
                        if let Err(e) = ready {
                            return StdinEnd::PipeFailed(e);
                        }
                    }
                }
            }
        }
    }
}

impl Drop for StdinWriter {
    fn drop(&mut self) {
        self.pipe = None;
        let over = self.events.borrow().exited;
        *StdinSlot::lock(&self.slot) =
            if over { Slot::Ended } else { Slot::Closed { written: self.written } };
    }
}
