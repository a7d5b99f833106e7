//! The client's own stdin, as a request body for `run` to forward.
//!
//! * Stdin is read on a thread of its own with plain blocking reads: that
//!   works for every kind of stdin (pipes, files, terminals), and a read
//!   blocked on a terminal cannot hold up the end of the client, since the
//!   process exits without waiting for that thread (tokio's own stdin would
//!   make the runtime's shutdown wait for the user to press Enter).
//! * Bytes go on as they are, in the chunks the reads return, through a
//!   channel of a few chunks: the client holds at most that much, and reads
//!   no faster than the server takes it.
//! * A stdin that is /dev/null, or that is not open at all, is no stdin:
//!   the job may as well read /dev/null itself, which saves the upload.
//! * For several hosts, stdin is read once and every chunk goes to each of
//!   them (shared, not copied): the slowest reader sets the pace, and one
//!   that goes away stops getting chunks without holding up the others.

use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use bytes::Bytes;
use tokio::sync::mpsc;

/// Bytes asked for per read.
const CHUNK: usize = 256 * 1024;
/// Chunks read ahead of the upload.
const AHEAD: usize = 4;

/// What was read from our stdin so far, as it comes.
pub(crate) struct LocalStdin {
    chunks: mpsc::Receiver<io::Result<Bytes>>,
}

impl LocalStdin {
    /// Starts reading our stdin, unless it is /dev/null or closed.
    pub fn open() -> Option<LocalStdin> {
        LocalStdin::open_many(1)?.pop()
    }

    /// Starts reading our stdin once for `readers` readers, each of which
    /// gets all of it; `None` if it is /dev/null or closed.
    pub fn open_many(readers: usize) -> Option<Vec<LocalStdin>> {
        let file = std::fs::File::from(io::stdin().as_fd().try_clone_to_owned().ok()?);
        if is_dev_null(&file) {
            return None;
        }
        let (senders, readers) = (0..readers)
            .map(|_| {
                let (sender, chunks) = mpsc::channel(AHEAD);
                (sender, LocalStdin { chunks })
            })
            .unzip();
        std::thread::Builder::new().name("stdin".into()).spawn(move || read_all(file, senders)).ok()?;
        Some(readers)
    }

    /// The chunks as a request body. A failed read ends the body with that
    /// error.
    pub fn into_body(self) -> reqwest::Body {
        let chunks = futures_util::stream::unfold(self.chunks, |mut chunks| async move {
            chunks.recv().await.map(|chunk| (chunk, chunks))
        });
        reqwest::Body::wrap_stream(chunks)
    }
}

fn is_dev_null(file: &std::fs::File) -> bool {
    let (Ok(ours), Ok(null)) = (file.metadata(), std::fs::metadata("/dev/null")) else {
        return false;
    };
    ours.file_type().is_char_device() && ours.rdev() == null.rdev()
}

/// Reads until EOF or an error, handing each chunk to every reader; stops
/// early when nobody takes them any more.
fn read_all(mut file: std::fs::File, mut senders: Vec<mpsc::Sender<io::Result<Bytes>>>) {
    let mut buf = vec![0u8; CHUNK];
    while !senders.is_empty() {
        let chunk = match file.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => Ok(Bytes::copy_from_slice(&buf[..n])),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Err((e.kind(), format!("cannot read stdin: {e}"))),
        };
        senders.retain(|sender| {
            let copy = chunk.clone().map_err(|(kind, message)| io::Error::new(kind, message));
            sender.blocking_send(copy).is_ok()
        });
        if chunk.is_err() {
            return;
        }
    }
}
