//! Connections before authentication. Each accepted TCP connection needs a
//! pre-auth place before any TLS work, and holds it until its handshake has
//! verified a client (from then on the registry's caps apply to it) or it
//! closes. Places are few (`--max-handshakes`), and once half of them are
//! taken, a source that already holds `--max-handshakes-per-source` of them
//! gets no more: a flood from one address fills at most half the places and
//! cannot spend those of clients coming from elsewhere.
//!
//! A connection that finds no place waits for one, like a connection in the
//! kernel's listen backlog, for at most the handshake timeout: a burst of
//! honest connections from one host gets through as handshakes finish. At
//! most [`WAITING_PER_PLACE`] times `--max-handshakes` connections wait (a
//! socket each, no TLS state); past that, a connection is closed at once.
//!
//! A source is an IPv4 address, or an IPv6 /64 (one host's usual share).
//! Accepted connections also get TCP_NODELAY: requests and answers are small.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::accept::Accept;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// How many connections may wait for each place.
const WAITING_PER_PLACE: usize = 4;

#[derive(Clone)]
pub(crate) struct PreAuthLimit {
    shared: Arc<Shared>,
}

struct Shared {
    max_total: usize,
    max_per_source: usize,
    /// How long a connection may wait for a place.
    max_wait: Duration,
    state: Mutex<State>,
    /// Wakes the waiting connections when a place is given back.
    freed: Notify,
}

#[derive(Default)]
struct State {
    total: usize,
    by_source: HashMap<Source, usize>,
    waiting: usize,
}

/// Where a connection comes from, as far as the per-source cap is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Source {
    V4([u8; 4]),
    V6Prefix([u8; 8]),
}

impl Source {
    fn of(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V4(v4) => Source::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source::V4(v4.octets()),
                None => Source::V6Prefix(v6.octets()[..8].try_into().expect("8 of 16 bytes")),
            },
        }
    }
}

impl PreAuthLimit {
    /// `max_wait`: how long a connection may wait for a place (the
    /// handshake timeout).
    pub fn new(max_total: usize, max_per_source: usize, max_wait: Duration) -> PreAuthLimit {
        let state = Mutex::default();
        PreAuthLimit {
            shared: Arc::new(Shared { max_total, max_per_source, max_wait, state, freed: Notify::new() }),
        }
    }

    /// A place for a connection from `ip`, waiting for one if need be.
    async fn admit(self, ip: IpAddr) -> io::Result<Place> {
        let source = Source::of(ip);
        let deadline = tokio::time::Instant::now() + self.shared.max_wait;
        let mut waiting: Option<Waiting> = None;
        loop {
            // Listen before looking, so that a place given back in between
            // is not missed.
            let freed = self.shared.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(place) = self.try_admit(source) {
                return Ok(place);
            }
            if waiting.is_none() {
                waiting = Some(self.wait_in_line(ip)?);
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "no place for {ip} among the connections in their TLS handshake in time (--max-handshakes, --max-handshakes-per-source)"
                    ),
                ));
            }
        }
    }

    /// A place now, if one is free for `source`.
    fn try_admit(&self, source: Source) -> Option<Place> {
        let shared = &self.shared;
        let mut state = shared.lock();
        let of_source = state.by_source.get(&source).copied().unwrap_or(0);
        let over_share = of_source >= shared.max_per_source && state.total >= shared.max_total / 2;
        if state.total >= shared.max_total || over_share {
            return None;
        }
        state.total += 1;
        *state.by_source.entry(source).or_default() += 1;
        Some(Place { shared: Arc::clone(shared), source })
    }

    /// A place in the line of waiting connections, unless it is full.
    fn wait_in_line(&self, ip: IpAddr) -> io::Result<Waiting> {
        let mut state = self.shared.lock();
        if state.waiting >= self.shared.max_total * WAITING_PER_PLACE {
            return Err(io::Error::other(format!(
                "{ip}: {} connections already wait for a TLS handshake place (--max-handshakes)",
                state.waiting
            )));
        }
        state.waiting += 1;
        Ok(Waiting(Arc::clone(&self.shared)))
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A connection's place in the line of those waiting, left when dropped.
struct Waiting(Arc<Shared>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.lock().waiting -= 1;
    }
}

impl<S: Send + 'static> Accept<TcpStream, S> for PreAuthLimit {
    type Stream = PreAuth;
    type Service = S;
    type Future = Pin<Box<dyn Future<Output = io::Result<(PreAuth, S)>> + Send>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let place = this.admit(stream.peer_addr()?.ip()).await?;
            let _ = stream.set_nodelay(true);
            Ok((PreAuth { stream, place: Some(place) }, service))
        })
    }
}

/// A pre-auth place, given back when dropped.
struct Place {
    shared: Arc<Shared>,
    source: Source,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.total -= 1;
        if let Some(n) = state.by_source.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                state.by_source.remove(&self.source);
            }
        }
        let anyone_waits = state.waiting > 0;
        drop(state);
        if anyone_waits {
            self.shared.freed.notify_waiters();
        }
    }
}

/// A TCP connection that holds a pre-auth place until it is authenticated.
pub(crate) struct PreAuth {
    stream: TcpStream,
    place: Option<Place>,
}

impl PreAuth {
    /// The handshake verified a client: give the pre-auth place back.
    pub fn authenticated(&mut self) {
        self.place = None;
    }
}

impl AsyncRead for PreAuth {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for PreAuth {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(ip: &str) -> Source {
        Source::of(ip.parse().unwrap())
    }

    #[test]
    fn one_source_fills_at_most_half_the_places_and_others_still_get_in() {
        let limit = PreAuthLimit::new(8, 2, Duration::from_secs(1));
        let flood = source("127.0.0.2");
        let held: Vec<Place> = (0..4).map(|_| limit.try_admit(flood).unwrap()).collect();
        assert!(limit.try_admit(flood).is_none(), "past half the places, the per-source cap applies");
        let good = limit.try_admit(source("127.0.0.1")).expect("another source still gets in");
        drop(good);
        drop(held);
        assert!(limit.try_admit(flood).is_some(), "places come back when connections close");
    }

    #[test]
    fn all_places_are_a_hard_cap_and_ipv6_counts_per_64() {
        let limit = PreAuthLimit::new(4, 8, Duration::from_secs(1));
        let _held: Vec<Place> =
            (0..4).map(|i| limit.try_admit(source(&format!("2001:db8::{i}"))).unwrap()).collect();
        assert!(limit.try_admit(source("10.0.0.1")).is_none());
        assert_eq!(source("2001:db8::1"), source("2001:db8::ffff"));
        assert_eq!(source("::ffff:10.0.0.1"), source("10.0.0.1"));
    }

    #[tokio::test]
    async fn a_connection_waits_for_a_place_and_gets_the_first_one_given_back() {
        let limit = PreAuthLimit::new(2, 1, Duration::from_secs(60));
        let first = limit.try_admit(source("10.0.0.1")).unwrap();
        let _second = limit.try_admit(source("10.0.0.2")).unwrap();
        let waiter = tokio::spawn(limit.clone().admit("10.0.0.3".parse().unwrap()));
        while limit.shared.lock().waiting == 0 {
            tokio::task::yield_now().await;
        }
        drop(first);
        waiter.await.unwrap().expect("the place given back");
        assert_eq!(limit.shared.lock().waiting, 0);
    }

    #[tokio::test]
    async fn waiting_ends_at_the_deadline_and_the_line_is_bounded() {
        let limit = PreAuthLimit::new(1, 1, Duration::from_millis(1));
        let _held = limit.try_admit(source("10.0.0.1")).unwrap();
        let error = limit.clone().admit("10.0.0.2".parse().unwrap()).await.err().unwrap();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        let _in_line = limit.wait_in_line("10.0.0.3".parse().unwrap()).unwrap();
        let line: Vec<Waiting> = (1..WAITING_PER_PLACE)
            .map(|_| limit.wait_in_line("10.0.0.4".parse().unwrap()).unwrap())
            .collect();
        assert!(limit.wait_in_line("10.0.0.5".parse().unwrap()).is_err(), "the line is full");
        drop(line);
    }
}
