//! The accept stack, built on axum-server's `Accept` trait:
//!
//! TCP → [`PreAuthLimit`] (pre-auth places, per source) → rustls (TLS 1.3,
//! client certificate, handshake timeout) → [`Acceptor`], which sees the
//! finished session: it decides the [`Peer`] from the verified certificate,
//! registers it in the [`Registry`]
//! (total and per-CN caps), gives its pre-auth place back, and wraps
//!
//! * the stream in a [`Guarded`] stream that ends when the registry closes
//!   the connection, or when it has had no open request for the idle timeout
//!   (HTTP/2 pings would keep it open forever otherwise);
//! * the service in a [`ConnService`], which puts the connection's [`Peer`]
//!   in every request's extensions with the deadline of its body (the one
//!   place a request learns who sent it), counts the request
//!   as open until its response body ends, and meters streamed response
//!   bodies against the budget.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{Request, Response};
use axum_server::accept::Accept;
use axum_server::tls_rustls::RustlsAcceptor;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;
use tokio_rustls::server::TlsStream;

use super::body::BodyDeadline;
use super::budget::{OpenRequest, ResponseBody, ResponseBudget};
use super::limit::{PreAuth, PreAuthLimit};
use super::peer::Peer;
use super::registry::{Connection, Registration, Registry};

#[derive(Clone)]
pub(crate) struct Acceptor {
    tls: RustlsAcceptor<PreAuthLimit>,
    registry: Registry,
    budget: ResponseBudget,
    idle_timeout: Duration,
    request_timeout: Duration,
}

impl Acceptor {
    pub fn new(tls: RustlsAcceptor<PreAuthLimit>, registry: Registry, budget: ResponseBudget) -> Acceptor {
        let (idle_timeout, request_timeout) = (Duration::from_secs(120), Duration::from_secs(30));
        Acceptor { tls, registry, budget, idle_timeout, request_timeout }
    }

    /// How long a connection may have no request in progress.
    pub fn idle_timeout(self, idle_timeout: Duration) -> Acceptor {
        Acceptor { idle_timeout, ..self }
    }

    /// How long a request body read whole may take to arrive.
    pub fn request_timeout(self, request_timeout: Duration) -> Acceptor {
        Acceptor { request_timeout, ..self }
    }
}

type Accepted<S> = io::Result<(Guarded<TlsStream<PreAuth>>, ConnService<S>)>;

impl<S: Send + 'static> Accept<TcpStream, S> for Acceptor {
    type Stream = Guarded<TlsStream<PreAuth>>;
    type Service = ConnService<axum_server::tls::TlsService<S>>;
    type Future = Pin<Box<dyn Future<Output = Accepted<axum_server::tls::TlsService<S>>> + Send>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let handshake = self.tls.accept(stream, service);
        let this = self.clone();
        Box::pin(async move {
            let (mut stream, service) = handshake.await?;
            let (pre_auth, session) = stream.get_mut();
            let peer = session
                .peer_certificates()
                .and_then(Peer::from_chain)
                .ok_or_else(|| io::Error::other("no client certificate with a Common Name"))?;
            pre_auth.authenticated();
            let registration = this.registry.register(peer).map_err(io::Error::other)?;
            let connection = Arc::clone(registration.connection());
            let stream = Guarded::new(stream, registration, this.idle_timeout);
            let service = ConnService {
                inner: service,
                connection,
                budget: this.budget,
                request_timeout: this.request_timeout,
            };
            Ok((stream, service))
        })
    }
}

/// A connection's stream that ends when the registry closes it or when it
/// has been idle too long.
pub(crate) struct Guarded<S> {
    inner: S,
    registration: Registration,
    idle_timeout: Duration,
    idle_check: Pin<Box<Sleep>>,
    idle_ended: bool,
}

impl<S> Guarded<S> {
    fn new(inner: S, registration: Registration, idle_timeout: Duration) -> Guarded<S> {
        let idle_check = Box::pin(tokio::time::sleep(idle_timeout));
        Guarded { inner, registration, idle_timeout, idle_check, idle_ended: false }
    }

    fn connection(&self) -> &Connection {
        self.registration.connection()
    }

    /// Whether the connection has had no open request for the idle timeout;
    /// if not, `cx` is woken when it may have.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> bool {
        while !self.idle_ended && self.idle_check.as_mut().poll(cx).is_ready() {
            let next = match self.registration.connection().idle_for() {
                Some(idle) if idle >= self.idle_timeout => {
                    self.idle_ended = true;
                    tracing::debug!(client = self.connection().peer().cn(), "closing an idle connection");
                    break;
                }
                Some(idle) => self.idle_timeout - idle,
                None => self.idle_timeout,
            };
            self.idle_check.as_mut().reset(tokio::time::Instant::now() + next);
        }
        self.idle_ended
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "the server closed this connection")
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.connection().poll_closed_reading(cx) {
            return Poll::Ready(Err(closed()));
        }
        if self.poll_idle(cx) {
            // End of stream: the peer sees the connection close.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.connection().poll_closed_writing(cx) {
            return Poll::Ready(Err(closed()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.connection().poll_closed_writing(cx) {
            return Poll::Ready(Err(closed()));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.connection().poll_closed_writing(cx) {
            return Poll::Ready(Err(closed()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The service of one connection (see the module docs).
#[derive(Clone)]
pub(crate) struct ConnService<S> {
    inner: S,
    connection: Arc<Connection>,
    budget: ResponseBudget,
    request_timeout: Duration,
}

impl<S, R, B> tower_service::Service<Request<R>> for ConnService<S>
where
    S: tower_service::Service<Request<R>, Response = Response<B>>,
    S::Future: Send + 'static,
    B: axum::body::HttpBody,
{
    type Response = Response<ResponseBody<B>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<R>) -> Self::Future {
        let open = OpenRequest::new(Arc::clone(&self.connection));
        request.extensions_mut().insert(Arc::clone(self.connection.peer()));
        request.extensions_mut().insert(BodyDeadline(tokio::time::Instant::now() + self.request_timeout));
        let response = self.inner.call(request);
        let budget = self.budget.clone();
        Box::pin(async move { Ok(response.await?.map(|body| budget.body(body, open))) })
    }
}
