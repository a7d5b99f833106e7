//! Knowing when a host's connection is closed, so that its `--fanout` slot
//! goes to the next host only then.
//!
//! hyper closes a dropped client's connections in tasks of its own, a few
//! wake-ups later, so dropping the client is not enough. Every rustls
//! connection holds its config's session store until it is dropped with its
//! socket: a store made for one host's config alone is therefore referenced
//! by nobody else once all that host's connections are closed.

use std::sync::Arc;
use std::time::Duration;

use rustls::client::{ClientSessionMemoryCache, ClientSessionStore, Resumption};

/// How long to wait for a connection to close before giving its slot on
/// anyway: hyper closes without waiting on the peer, so this is only reached
/// if something is badly wrong, and must not hang the whole command.
const PATIENCE: Duration = Duration::from_secs(2);

/// A marker in one host's TLS config that tells when its connections are gone.
pub(crate) struct Closing(Arc<dyn ClientSessionStore>);

impl Closing {
    /// Gives `tls` a session store of its own, and watches it.
    pub fn watch(tls: &mut rustls::ClientConfig) -> Closing {
        let store: Arc<dyn ClientSessionStore> = Arc::new(ClientSessionMemoryCache::new(1));
        tls.resumption = Resumption::store(store.clone());
        Closing(store)
    }

    /// Resolves once every connection made with the watched config, and the
    /// config itself, are dropped.
    pub async fn closed(self) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let mut rounds = 0u32;
        while Arc::strong_count(&self.0) > 1 && tokio::time::Instant::now() < deadline {
            // hyper's tasks need a few turns of the runtime; after that, back off.
            if rounds < 32 {
                tokio::task::yield_now().await;
            } else {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            rounds += 1;
        }
    }
}
