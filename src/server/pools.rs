//! One job pool per client identity, made on the client's first request.
//! Pools share the data directory (each has its own folder in it) and the
//! limits; a client can only ever reach its own pool.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::jobs::{JobPool, PoolConfig};

use crate::pki::ClientName;

pub struct Pools {
    data_dir: PathBuf,
    template: PoolConfig,
    by_client: Mutex<HashMap<ClientName, Arc<JobPool>>>,
}

impl Pools {
    /// `template` holds the limits; its data dir is replaced per client.
    pub fn new(data_dir: PathBuf, template: PoolConfig) -> Self {
        Pools { data_dir, template, by_client: Mutex::new(HashMap::new()) }
    }

    /// The client's pool, created on first use.
    pub fn get(&self, client: &ClientName) -> anyhow::Result<Arc<JobPool>> {
        // Creating a pool takes over its folder, so it happens under the lock:
        // two first requests of one client must not both take it over. This
        // happens once per client.
        let mut pools = self.lock();
        if let Some(pool) = pools.get(client) {
            return Ok(Arc::clone(pool));
        }
        let mut config = self.template.clone();
        config.data_dir = self.data_dir.join(folder_name(client));
        let pool = Arc::new(JobPool::new(config)?);
        pools.insert(client.clone(), Arc::clone(&pool));
        Ok(pool)
    }

    /// The client's pool if it has one; never creates it.
    pub fn existing(&self, client: &ClientName) -> Option<Arc<JobPool>> {
        self.lock().get(client).cloned()
    }

    /// Every pool with its client.
    pub fn each(&self) -> Vec<(ClientName, Arc<JobPool>)> {
        self.lock().iter().map(|(name, pool)| (name.clone(), Arc::clone(pool))).collect()
    }

    pub fn all(&self) -> Vec<Arc<JobPool>> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ClientName, Arc<JobPool>>> {
        self.by_client.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A folder name for a client that is safe on any file system whatever
/// characters its name holds: hex (at most 128 bytes, as names are at most 64).
fn folder_name(client: &ClientName) -> String {
    client.as_str().bytes().map(|b| format!("{b:02x}")).collect()
}
