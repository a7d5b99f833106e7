//! The seed's `GET /jobs/{id}/output`, `{"stdout": "...", "stderr": "..."}`,
//! streamed: the JSON is encoded chunk by chunk from the spool files, so the
//! server never holds a job's whole output in memory, however large.
//!
//! The call is for text, and JSON escapes can make one byte six (a NUL is
//! `\u0000`): output over [`MAX_STORED`] bytes is refused with 413 and a
//! pointer to the raw calls, which carry any size as it is.

use axum::body::Body;
use bytes::Bytes;
use futures_util::StreamExt;

use crate::jobs::OutputReader;

/// Encodes bytes as the inside of a JSON string. Invalid UTF-8 becomes
/// U+FFFD; a character split across chunks is carried over, not mangled.
#[derive(Default)]
struct JsonStringEncoder {
    carry: Vec<u8>,
}

impl JsonStringEncoder {
    fn push(&mut self, chunk: &[u8], out: &mut String) {
        let mut input = std::mem::take(&mut self.carry);
        input.extend_from_slice(chunk);
        let mut rest = &input[..];
        loop {
            match std::str::from_utf8(rest) {
                Ok(text) => {
                    escape_into(text, out);
                    return;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    escape_into(std::str::from_utf8(valid).expect("checked valid"), out);
                    match e.error_len() {
                        Some(bad) => {
                            out.push('\u{FFFD}');
                            rest = &after[bad..];
                        }
                        None => {
                            // An incomplete character at the end: wait for more.
                            self.carry = after.to_vec();
                            return;
                        }
                    }
                }
            }
        }
    }

    fn finish(self, out: &mut String) {
        if !self.carry.is_empty() {
            out.push('\u{FFFD}');
        }
    }
}

fn escape_into(text: &str, out: &mut String) {
    let quoted = serde_json::to_string(text).expect("a str always serialises");
    out.push_str(&quoted[1..quoted.len() - 1]);
}

/// The most stored output, both streams together, that the JSON call
/// encodes: an answer of at most about 100 MiB.
pub const MAX_STORED: u64 = 16 << 20;

/// The JSON body for both streams, read from readers stopped with
/// `up_to_now`, or the size of their output if that is over [`MAX_STORED`].
pub fn body(stdout: OutputReader, stderr: OutputReader, truncated: bool) -> Result<Body, u64> {
    let size =
        [&stdout, &stderr].iter().map(|r| r.remaining().unwrap_or(u64::MAX)).fold(0, u64::saturating_add);
    if size > MAX_STORED {
        return Err(size);
    }
    enum Part {
        Literal(&'static str),
        Stream(OutputReader),
    }
    let parts = vec![
        Part::Literal("{\"stdout\":\""),
        Part::Stream(stdout),
        Part::Literal("\",\"stderr\":\""),
        Part::Stream(stderr),
        Part::Literal(if truncated { "\",\"truncated\":true}" } else { "\",\"truncated\":false}" }),
    ];
    let stream = futures_util::stream::iter(parts).flat_map(|part| match part {
        Part::Literal(text) => {
            futures_util::stream::once(async move { Ok(Bytes::from_static(text.as_bytes())) }).boxed()
        }
        Part::Stream(reader) => encoded(reader).boxed(),
    });
    Ok(Body::from_stream(stream))
}

fn encoded(reader: OutputReader) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> {
    futures_util::stream::unfold(Some((reader, JsonStringEncoder::default())), |state| async move {
        let (mut reader, mut encoder) = state?;
        let mut out = String::new();
        match reader.next_chunk().await {
            Ok(Some(chunk)) => {
                encoder.push(&chunk, &mut out);
                Some((Ok(Bytes::from(out)), Some((reader, encoder))))
            }
            Ok(None) => {
                encoder.finish(&mut out);
                Some((Ok(Bytes::from(out)), None))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(chunks: &[&[u8]]) -> String {
        let mut encoder = JsonStringEncoder::default();
        let mut out = String::new();
        for chunk in chunks {
            encoder.push(chunk, &mut out);
        }
        encoder.finish(&mut out);
        out
    }

    #[test]
    fn a_character_split_across_chunks_survives() {
        let snowman = "☃".as_bytes();
        assert_eq!(encode(&[b"a", &snowman[..1], &snowman[1..], b"b"]), "a☃b");
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        assert_eq!(encode(&[b"a\xffb"]), "a\u{FFFD}b");
        assert_eq!(encode(&[b"a\xe2\x98"]), "a\u{FFFD}");
    }

    #[test]
    fn quotes_and_control_characters_are_escaped() {
        assert_eq!(encode(&[b"\"\n\\\x01"]), "\\\"\\n\\\\\\u0001");
    }
}
