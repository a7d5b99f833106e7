//! The registry of authenticated connections: who is on each one (its
//! [`Peer`], decided at its handshake), and a way to close it from outside: a
//! reload closes the connections it no longer trusts.
//!
//! Invariants:
//! * An entry lives exactly as long as its connection's stream: the
//!   [`Registration`] that the stream holds removes it when dropped.
//! * Closing a [`Connection`] ends it: the stream's next read, write or flush
//!   fails, and the task driving it is woken to find that out, so hyper drops
//!   the connection with every request and response on it, HTTP/1.1 and
//!   HTTP/2 alike. Closing is final.
//! * At most `max_total` entries, and at most `max_per_client` of one CN;
//!   past either, [`Registry::register`] refuses.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::Context;
use std::time::{Duration, Instant};

use futures_util::task::AtomicWaker;

use super::peer::Peer;

/// Why a connection was not registered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refused {
    #[error("the connection limit ({0}, --max-connections) is reached")]
    Total(usize),
    #[error("client {cn} already has {max} connections (--max-client-connections)")]
    Client { cn: String, max: usize },
}

#[derive(Clone)]
pub(crate) struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    max_total: usize,
    max_per_client: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    live: HashMap<u64, Arc<Connection>>,
    per_client: HashMap<String, usize>,
}

impl Registry {
    pub fn new(max_total: usize, max_per_client: usize) -> Registry {
        Registry { inner: Arc::new(Inner { max_total, max_per_client, state: Mutex::default() }) }
    }

    /// Adds a connection of `peer`, unless a cap is reached.
    pub fn register(&self, peer: Peer) -> Result<Registration, Refused> {
        let mut state = self.inner.lock();
        if state.live.len() >= self.inner.max_total {
            return Err(Refused::Total(self.inner.max_total));
        }
        let of_client = state.per_client.get(peer.cn()).copied().unwrap_or(0);
        if of_client >= self.inner.max_per_client {
            return Err(Refused::Client { cn: peer.cn().to_owned(), max: self.inner.max_per_client });
        }
        state.next_id += 1;
        let connection = Arc::new(Connection::new(state.next_id, Arc::new(peer)));
        *state.per_client.entry(connection.peer.cn().to_owned()).or_default() += 1;
        state.live.insert(connection.id, Arc::clone(&connection));
        Ok(Registration { registry: Arc::clone(&self.inner), connection })
    }

    /// Closes every connection whose peer `matches`, logging each with
    /// `reason`; returns how many it closed.
    pub fn close_where(&self, reason: &str, matches: impl Fn(&Peer) -> bool) -> usize {
        self.close_connections(reason, |c| matches(&c.peer))
    }

    /// Closes every connection that `matches`.
    pub(crate) fn close_connections(&self, reason: &str, matches: impl Fn(&Connection) -> bool) -> usize {
        let doomed: Vec<Arc<Connection>> =
            self.inner.lock().live.values().filter(|c| !c.is_closed() && matches(c)).cloned().collect();
        for connection in &doomed {
            tracing::info!(
                client = connection.peer.cn(),
                serial = connection.peer.serial.to_string(),
                reason,
                "closing a connection"
            );
            connection.close();
        }
        doomed.len()
    }

    /// How many connections are registered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.inner.lock().live.len()
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A connection's place in the registry, given back when dropped.
pub(crate) struct Registration {
    registry: Arc<Inner>,
    connection: Arc<Connection>,
}

impl Registration {
    pub fn connection(&self) -> &Arc<Connection> {
        &self.connection
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut state = self.registry.lock();
        state.live.remove(&self.connection.id);
        let cn = self.connection.peer.cn();
        if let Some(n) = state.per_client.get_mut(cn) {
            *n -= 1;
            if *n == 0 {
                state.per_client.remove(cn);
            }
        }
    }
}

/// One authenticated connection, shared by its stream, its service and the
/// registry: who is on it, whether it was closed, what it is doing.
pub(crate) struct Connection {
    id: u64,
    peer: Arc<Peer>,
    closed: AtomicBool,
    /// The tasks to wake when it is closed: the one reading and the one
    /// writing (hyper uses one task for both, but need not).
    readers: AtomicWaker,
    writers: AtomicWaker,
    /// Requests whose response has not ended yet.
    open_requests: AtomicUsize,
    /// When `open_requests` last changed, in [`now_ms`] units.
    last_request_change: AtomicU64,
    /// Bytes of its responses buffered in memory, on loan from the budget.
    buffered: AtomicUsize,
    /// When a buffered response byte was last sent on, in [`now_ms`] units.
    last_sent: AtomicU64,
}

impl Connection {
    fn new(id: u64, peer: Arc<Peer>) -> Connection {
        Connection {
            id,
            peer,
            closed: AtomicBool::new(false),
            readers: AtomicWaker::new(),
            writers: AtomicWaker::new(),
            open_requests: AtomicUsize::new(0),
            last_request_change: AtomicU64::new(now_ms()),
            buffered: AtomicUsize::new(0),
            last_sent: AtomicU64::new(now_ms()),
        }
    }

    pub fn peer(&self) -> &Arc<Peer> {
        &self.peer
    }

    /// Ends the connection (see the module's invariants).
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.readers.wake();
        self.writers.wake();
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Whether it was closed; if not, `cx` is woken when it is.
    pub(crate) fn poll_closed_reading(&self, cx: &Context<'_>) -> bool {
        self.readers.register(cx.waker());
        self.is_closed()
    }

    pub(crate) fn poll_closed_writing(&self, cx: &Context<'_>) -> bool {
        self.writers.register(cx.waker());
        self.is_closed()
    }

    pub(crate) fn request_started(&self) {
        self.open_requests.fetch_add(1, Ordering::SeqCst);
        self.last_request_change.store(now_ms(), Ordering::SeqCst);
    }

    pub(crate) fn request_ended(&self) {
        self.open_requests.fetch_sub(1, Ordering::SeqCst);
        self.last_request_change.store(now_ms(), Ordering::SeqCst);
    }

    /// How long it has had no open request, or `None` while it has one.
    pub(crate) fn idle_for(&self) -> Option<Duration> {
        if self.open_requests.load(Ordering::SeqCst) > 0 {
            return None;
        }
        Some(since(self.last_request_change.load(Ordering::SeqCst)))
    }

    pub(crate) fn lent(&self, bytes: usize) {
        if self.buffered.fetch_add(bytes, Ordering::SeqCst) == 0 {
            self.last_sent.store(now_ms(), Ordering::SeqCst);
        }
    }

    pub(crate) fn returned(&self, bytes: usize) {
        self.buffered.fetch_sub(bytes, Ordering::SeqCst);
        self.last_sent.store(now_ms(), Ordering::SeqCst);
    }

    /// Whether it holds buffered response bytes that nothing was sent of for
    /// `timeout`: its peer does not read.
    pub(crate) fn stalled(&self, timeout: Duration) -> bool {
        self.buffered.load(Ordering::SeqCst) > 0 && since(self.last_sent.load(Ordering::SeqCst)) >= timeout
    }
}

/// Milliseconds since the first call: a clock that fits in an atomic.
fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}

fn since(ms: u64) -> Duration {
    Duration::from_millis(now_ms().saturating_sub(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_count_live_connections_per_client_and_in_total() {
        let registry = Registry::new(3, 2);
        let a1 = registry.register(Peer::named("a")).unwrap();
        let _a2 = registry.register(Peer::named("a")).unwrap();
        assert!(matches!(registry.register(Peer::named("a")), Err(Refused::Client { .. })));
        let _b = registry.register(Peer::named("b")).unwrap();
        assert!(matches!(registry.register(Peer::named("c")), Err(Refused::Total(3))));
        drop(a1);
        assert_eq!(registry.len(), 2);
        let _a3 = registry.register(Peer::named("a")).expect("a's place came back");
    }

    #[test]
    fn close_where_closes_only_the_matching_peers() {
        let registry = Registry::new(10, 10);
        let a = registry.register(Peer::named("a")).unwrap();
        let b = registry.register(Peer::named("b")).unwrap();
        assert_eq!(registry.close_where("test", |p| p.cn() == "a"), 1);
        assert!(a.connection().is_closed());
        assert!(!b.connection().is_closed());
        assert_eq!(registry.close_where("test", |p| p.cn() == "a"), 0, "closing is done once");
    }
}
