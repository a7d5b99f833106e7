//! Output of many hosts on one terminal: each host's stream is cut into
//! lines, and each line goes out whole, prefixed with `NAME: `.
//!
//! Invariants:
//! * Every write to our stdout or stderr is a run of whole lines of one
//!   host, written with one `write_all` that does not yield to the runtime,
//!   so no other host's output can land inside a line.
//! * A host's unfinished line is held, at most [`MAX_LINE`] bytes of it: a
//!   longer one goes out in pieces of that size, each as a line of its own,
//!   so a host printing a huge line without a newline cannot make the
//!   client hold it.
//! * At the end of a stream, a last line without a newline still goes out,
//!   with a newline added (the next line may be another host's).

use std::fs::File;
use std::io::{self, Write};
use std::sync::Arc;

use crate::client::sink::OutputSink;

/// The longest piece of a line held back waiting for its newline.
pub(crate) const MAX_LINE: usize = 64 * 1024;

/// One host's stdout or stderr, on its way to ours.
pub(crate) struct Lines {
    out: Arc<File>,
    /// `NAME: `, or empty with `--no-prefix`.
    prefix: Arc<str>,
    /// The start of a line whose newline has not come yet.
    pending: Vec<u8>,
}

impl Lines {
    pub fn new(out: Arc<File>, prefix: Arc<str>) -> Lines {
        Lines { out, prefix, pending: Vec::new() }
    }

    /// Writes the line held back, if any, with a newline: the stream ended.
    pub fn finish(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut batch = Vec::with_capacity(self.prefix.len() + self.pending.len() + 1);
        self.emit(&mut batch, &[]);
        (&*self.out).write_all(&batch)
    }

    /// Appends prefix, the held-back part and `rest` as one line to `batch`.
    fn emit(&mut self, batch: &mut Vec<u8>, rest: &[u8]) {
        batch.extend_from_slice(self.prefix.as_bytes());
        batch.append(&mut self.pending);
        batch.extend_from_slice(rest);
        batch.push(b'\n');
    }
}

impl OutputSink for Lines {
    fn write_chunk(&mut self, mut chunk: &[u8]) -> io::Result<()> {
        let mut batch = Vec::new();
        while let Some(end) = chunk.iter().position(|&b| b == b'\n') {
            self.emit(&mut batch, &chunk[..end]);
            chunk = &chunk[end + 1..];
        }
        // Only past MAX_LINE: a line of exactly MAX_LINE whose newline comes
        // in the next chunk is one line, not a line and an empty one.
        while self.pending.len() + chunk.len() > MAX_LINE {
            let (piece, rest) = chunk.split_at(MAX_LINE - self.pending.len());
            self.emit(&mut batch, piece);
            chunk = rest;
        }
        self.pending.extend_from_slice(chunk);
        (&*self.out).write_all(&batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek};

    fn through(prefix: &str, chunks: &[&[u8]]) -> Vec<u8> {
        let file = Arc::new(tempfile());
        let mut lines = Lines::new(file.clone(), prefix.into());
        for chunk in chunks {
            lines.write_chunk(chunk).unwrap();
        }
        lines.finish().unwrap();
        let mut out = Vec::new();
        let mut f = &*file;
        f.rewind().unwrap();
        f.read_to_end(&mut out).unwrap();
        out
    }

    fn tempfile() -> File {
        let path = std::env::temp_dir().join(format!(
            "rcmd-lines-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let file = File::options().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        file
    }

    #[test]
    fn lines_cut_across_chunks_come_out_whole_and_prefixed() {
        let out = through("a: ", &[b"one\ntw", b"o\nthr", b"ee"]);
        assert_eq!(out, b"a: one\na: two\na: three\n");
    }

    #[test]
    fn no_prefix_still_keeps_lines_whole() {
        assert_eq!(through("", &[b"x", b"y\n", b"\n"]), b"xy\n\n");
    }

    #[test]
    fn a_line_of_exactly_the_limit_whose_newline_comes_later_is_one_line() {
        let full = vec![b'x'; MAX_LINE];
        let out = through("h: ", &[&full, b"\nnext\n"]);
        assert_eq!(out, [&b"h: "[..], &full, b"\nh: next\n"].concat());
    }

    #[test]
    fn a_huge_line_goes_out_in_bounded_pieces() {
        let big = vec![b'x'; MAX_LINE * 2 + 10];
        let out = through("h: ", &[&big[..100], &big[100..]]);
        let lines: Vec<&[u8]> = out.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].len(), 3 + MAX_LINE);
        assert_eq!(lines[1].len(), 3 + MAX_LINE);
        assert_eq!(lines[2], [&b"h: "[..], &[b'x'; 10][..]].concat());
    }
}
