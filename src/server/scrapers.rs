//! The metrics endpoint's connections. Anyone who can reach its address may
//! connect, without authentication, and the server shares its file
//! descriptors with the mTLS listener and the jobs' pipes. So scrapers get
//! little:
//!
//! * at most [`MAX_CONNECTIONS`] connections at once ([`PreAuthLimit`]: a
//!   connection over the cap waits for a place for at most [`LIFETIME`],
//!   a few more than that are closed at once); a flood can deny the
//!   metrics, never the server's other descriptors;
//! * [`LIFETIME`] for each, whatever it does: an idle connection, headers
//!   sent a byte at a time, an HTTP/2 connection kept open with pings, a
//!   response left unread; a scrape takes milliseconds.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::accept::Accept;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

use super::limit::{PreAuth, PreAuthLimit};

/// The most metrics connections open at once.
pub(crate) const MAX_CONNECTIONS: usize = 16;

/// How long a metrics connection may stay open.
pub(crate) const LIFETIME: Duration = Duration::from_secs(10);

/// Admits a metrics connection within the cap, for its lifetime.
#[derive(Clone)]
pub(crate) struct ScrapeAcceptor {
    limit: PreAuthLimit,
}

impl ScrapeAcceptor {
    pub fn new() -> ScrapeAcceptor {
        ScrapeAcceptor { limit: PreAuthLimit::new(MAX_CONNECTIONS, MAX_CONNECTIONS, LIFETIME) }
    }
}

impl<S: Send + 'static> Accept<TcpStream, S> for ScrapeAcceptor {
    type Stream = Expiring<PreAuth>;
    type Service = S;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, S)>> + Send>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        // The place is never given back early: a scraper is never
        // authenticated, so it holds its place until it closes.
        let admitted = self.limit.accept(stream, service);
        Box::pin(async move {
            let (stream, service) = admitted.await?;
            Ok((Expiring { inner: stream, end: Box::pin(tokio::time::sleep(LIFETIME)) }, service))
        })
    }
}

/// A stream that fails every read and write once its lifetime is over, so
/// that the connection ends even if its peer does nothing at all.
pub(crate) struct Expiring<S> {
    inner: S,
    end: Pin<Box<Sleep>>,
}

impl<S> Expiring<S> {
    /// An error once the lifetime is over; until then `cx` is woken when it
    /// ends, even while the peer sends nothing.
    fn expired(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        self.end.as_mut().poll(cx).is_ready().then(|| {
            let why = format!("a metrics connection may stay open {} seconds", LIFETIME.as_secs());
            io::Error::new(io::ErrorKind::TimedOut, why)
        })
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Expiring<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(e) = self.expired(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Expiring<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if let Some(e) = self.expired(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.expired(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
