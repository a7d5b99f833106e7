//! The response memory budget. Every byte of a streamed response (job output
//! read from a spool file, or JSON encoded from it) is on loan from one budget
//! shared by all connections, from when it is read until the transport (hyper,
//! h2) drops it, having handed it to TLS. A body reads its next chunk only
//! with a reservation of a whole chunk in hand, so the response bytes held in
//! memory never exceed `--max-response-buffer`, whatever peers do: a peer that
//! opens 2,000 streams and reads none holds at most the budget, and the rest
//! of its streams wait without reading anything.
//!
//! A peer that does not read keeps its loans, so a body that has to wait for
//! budget closes the connections that have sent nothing of theirs for
//! `--send-timeout`: an unread response is cut only while others wait.
//!
//! Once a burst of buffered bytes (more than [`TRIM_AFTER`]) is all given
//! back, the allocator is asked to return its free memory to the system, so
//! that memory returns near idle when the peers leave, instead of staying
//! in the allocator's free lists.
//!
//! Bodies of a known size (the JSON answers) are in memory already when made
//! and pass through unmetered. Every response body also keeps its request
//! counted as open on its connection until it ends (see the idle timeout).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::{Bytes, HttpBody};
use http_body::{Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

use super::registry::{Connection, Registry};

/// The most a streamed body reads at once: the spool reader's chunk.
const CHUNK: usize = 256 * 1024;
/// How often a body waiting for budget looks for stalled connections.
const RECLAIM_EVERY: Duration = Duration::from_secs(1);
/// The smallest budget that makes sense: a few chunks.
pub(crate) const MIN_BUDGET: usize = 4 * CHUNK;
/// A burst of buffered bytes past this is followed by a trim once it is over.
const TRIM_AFTER: usize = 16 << 20;
/// The pauses before each trim once a burst is over.
const TRIM_PAUSES: [Duration; 4] =
    [Duration::from_secs(1), Duration::from_secs(2), Duration::from_secs(4), Duration::from_secs(8)];

#[derive(Clone)]
pub(crate) struct ResponseBudget {
    permits: Arc<Semaphore>,
    usage: Arc<Usage>,
    registry: Registry,
    send_timeout: Duration,
}

/// How much of the budget is in use, and the most since the last trim.
struct Usage {
    total: usize,
    high_water: AtomicUsize,
}

impl ResponseBudget {
    /// `bytes` must be at least [`MIN_BUDGET`].
    pub fn new(bytes: usize, registry: Registry, send_timeout: Duration) -> ResponseBudget {
        debug_assert!(bytes >= MIN_BUDGET);
        let usage = Arc::new(Usage { total: bytes, high_water: AtomicUsize::new(0) });
        ResponseBudget { permits: Arc::new(Semaphore::new(bytes)), usage, registry, send_timeout }
    }

    /// Wraps a response body of `connection`; `open` is the request's place
    /// among the connection's open ones, kept until the body ends.
    pub(crate) fn body<B: HttpBody>(&self, inner: B, open: OpenRequest) -> ResponseBody<B> {
        let meter = inner.size_hint().exact().is_none().then(|| Meter {
            budget: self.clone(),
            connection: Arc::clone(&open.0),
            reserved: None,
            waiting: None,
            pending: None,
        });
        ResponseBody { inner, meter, _open: open }
    }

    /// `n` bytes of budget now, if they are free.
    fn try_acquire(&self, n: usize) -> Option<Held> {
        match Arc::clone(&self.permits).try_acquire_many_owned(n as u32) {
            Ok(permit) => Some(self.held(permit)),
            Err(TryAcquireError::NoPermits) => None,
            Err(TryAcquireError::Closed) => unreachable!("the budget is never closed"),
        }
    }

    /// Waits for `n` bytes of budget, closing stalled connections meanwhile.
    async fn acquire_slowly(self, n: usize) -> Held {
        let acquire = Arc::clone(&self.permits).acquire_many_owned(n as u32);
        tokio::pin!(acquire);
        loop {
            tokio::select! {
                permit = &mut acquire => return self.held(permit.expect("the budget is never closed")),
                _ = tokio::time::sleep(RECLAIM_EVERY) => {
                    self.registry.close_connections(
                        "its peer read nothing of its responses for --send-timeout while others waited",
                        |c| c.stalled(self.send_timeout),
                    );
                }
            }
        }
    }

    fn held(&self, permit: OwnedSemaphorePermit) -> Held {
        let in_use = self.usage.total - self.permits.available_permits();
        self.usage.high_water.fetch_max(in_use, Ordering::Relaxed);
        Held { permit: Some(permit), budget: self.clone() }
    }

    /// Called whenever budget is given back: trims once a burst is over.
    fn given_back(&self) {
        let usage = &self.usage;
        let burst_over = self.permits.available_permits() == usage.total
            && usage.high_water.load(Ordering::Relaxed) > TRIM_AFTER;
        if burst_over && usage.high_water.swap(0, Ordering::Relaxed) > TRIM_AFTER {
            give_free_memory_back();
        }
    }
}

/// Budget in hand, given back when dropped.
struct Held {
    permit: Option<OwnedSemaphorePermit>,
    budget: ResponseBudget,
}

impl Held {
    fn bytes(&self) -> usize {
        self.permit.as_ref().map_or(0, OwnedSemaphorePermit::num_permits)
    }

    /// Takes `n` of the bytes held (at most all of them) into a `Held` of
    /// their own.
    fn split(&mut self, n: usize) -> Held {
        let permit = self.permit.as_mut().and_then(|p| p.split(n));
        Held { permit, budget: self.budget.clone() }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.permit.take().is_some() {
            self.budget.given_back();
        }
    }
}

/// A request counted as open on its connection while this lives.
pub(crate) struct OpenRequest(Arc<Connection>);

impl OpenRequest {
    pub fn new(connection: Arc<Connection>) -> OpenRequest {
        connection.request_started();
        OpenRequest(connection)
    }
}

impl Drop for OpenRequest {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

pub(crate) struct ResponseBody<B> {
    inner: B,
    /// `None` for bodies of a known size.
    meter: Option<Meter>,
    _open: OpenRequest,
}

struct Meter {
    budget: ResponseBudget,
    connection: Arc<Connection>,
    /// A chunk's worth of budget, held while the inner body is polled.
    reserved: Option<Held>,
    waiting: Option<Pin<Box<dyn Future<Output = Held> + Send>>>,
    /// The part of a frame larger than a chunk, still to be sent.
    pending: Option<Bytes>,
}

impl Meter {
    fn poll_reserve(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.reserved.is_some() {
            return Poll::Ready(());
        }
        if self.waiting.is_none() {
            match self.budget.try_acquire(CHUNK) {
                Some(held) => {
                    self.reserved = Some(held);
                    return Poll::Ready(());
                }
                None => self.waiting = Some(Box::pin(self.budget.clone().acquire_slowly(CHUNK))),
            }
        }
        let permit = ready!(self.waiting.as_mut().expect("set above").as_mut().poll(cx));
        self.waiting = None;
        self.reserved = Some(permit);
        Poll::Ready(())
    }

    /// Puts `data` on loan from the reservation; what does not fit waits in
    /// `pending` for the next one.
    fn lend(&mut self, mut data: Bytes) -> Bytes {
        let mut reserved = self.reserved.take().expect("lend only with a reservation");
        if data.len() > reserved.bytes() {
            self.pending = Some(data.split_off(reserved.bytes()));
        }
        if data.is_empty() {
            return data;
        }
        let held = reserved.split(data.len());
        self.connection.lent(data.len());
        Bytes::from_owner(Loan { data, _held: held, connection: Arc::clone(&self.connection) })
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        // A wait for budget may hold part of what it asked for: dropping it
        // gives that back, unseen by `Held`.
        if self.waiting.take().is_some() {
            self.budget.given_back();
        }
    }
}

/// Response bytes that give their budget back when the transport drops them.
struct Loan {
    data: Bytes,
    _held: Held,
    connection: Arc<Connection>,
}

impl AsRef<[u8]> for Loan {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for Loan {
    fn drop(&mut self) {
        self.connection.returned(self.data.len());
    }
}

/// Asks the allocator to return its free pages to the system (glibc keeps
/// the freed chunks of its per-thread arenas otherwise), a few times over the
/// seconds after the budget came back: the connections' other state (streams,
/// tasks) is freed after their last bytes, later when the machine is busy.
/// Off the async threads: a trim walks every arena.
fn give_free_memory_back() {
    let trim = || {
        #[cfg(target_env = "gnu")]
        // SAFETY: malloc_trim only releases free memory; it is thread-safe.
        unsafe {
            libc::malloc_trim(0);
        }
    };
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => drop(runtime.spawn(async move {
            for pause in TRIM_PAUSES {
                tokio::time::sleep(pause).await;
                let _ = tokio::task::spawn_blocking(trim).await;
            }
        })),
        Err(_) => trim(),
    }
}

impl<B> HttpBody for ResponseBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        let Some(meter) = &mut this.meter else {
            return Pin::new(&mut this.inner).poll_frame(cx);
        };
        ready!(meter.poll_reserve(cx));
        if let Some(rest) = meter.pending.take() {
            return Poll::Ready(Some(Ok(Frame::data(meter.lend(rest)))));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => Poll::Ready(Some(Ok(Frame::data(meter.lend(data))))),
                Err(other) => Poll::Ready(Some(Ok(other))),
            },
            Poll::Pending => {
                // Nothing to read yet (a job that is quiet): hold no budget
                // while waiting for it.
                meter.reserved = None;
                Poll::Pending
            }
            done => done,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.meter.as_ref().is_none_or(|m| m.pending.is_none()) && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        if self.meter.as_ref().is_some_and(|m| m.pending.is_some()) {
            return SizeHint::default();
        }
        self.inner.size_hint()
    }
}
