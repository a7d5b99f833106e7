//! Where the client's output goes, and what a closed pipe means.
//!
//! The client ignores SIGPIPE (as every Rust program does), so a reader that
//! goes away shows up as a write failing with EPIPE. Every write of the
//! client goes through this module, which turns that failure into
//! [`ClientError::BrokenPipe`]: the command then ends at once with status 141
//! and no message, as a shell pipeline's writer killed by SIGPIPE would.
//! Any other write failure is [`ClientError::Write`].
//!
//! Warnings and errors on stderr are best-effort: if stderr itself is gone,
//! there is nobody to tell, and the client must not panic over it.

use std::fmt;
use std::io::{self, Write};

use super::error::ClientError;
use crate::jobs::Stream;

/// Where one stream of a job's output goes, chunk by chunk as it arrives.
/// `run` takes one per stream, so a caller can send them anywhere (the
/// terminal, a prefixing writer, a buffer).
pub(crate) trait OutputSink: Send {
    /// Writes one chunk, whole.
    fn write_chunk(&mut self, chunk: &[u8]) -> io::Result<()>;
}

/// Our own stdout or stderr, written directly: std's stdout is line-buffered,
/// which scans every chunk for newlines and splits binary output into
/// needless writes. Each chunk goes out whole, at once, so live output shows
/// without delay.
pub(crate) struct Unbuffered(std::fs::File);

impl Unbuffered {
    pub fn new(stream: Stream) -> Result<Unbuffered, ClientError> {
        use std::os::fd::AsFd;
        let fd = match stream {
            Stream::Stdout => io::stdout().as_fd().try_clone_to_owned(),
            Stream::Stderr => io::stderr().as_fd().try_clone_to_owned(),
        };
        Ok(Unbuffered(std::fs::File::from(fd.map_err(ClientError::write)?)))
    }
}

impl OutputSink for Unbuffered {
    fn write_chunk(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.0.write_all(chunk)
    }
}

/// Prints one line on stdout.
pub(crate) fn print_line(line: impl fmt::Display) -> Result<(), ClientError> {
    let mut out = io::stdout().lock();
    writeln!(out, "{line}").and_then(|()| out.flush()).map_err(ClientError::write)
}

/// Prints `rcmd: MESSAGE` on stderr, if there is a stderr to print to.
pub(crate) fn warn(message: impl fmt::Display) {
    let _ = writeln!(io::stderr(), "rcmd: {message}");
}
