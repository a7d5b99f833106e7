//! One job pool per client identity, made on the client's first request.
//! Pools share the data directory (each has its own folder in it) and the
//! limits; a client can only ever reach its own pool.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::jobs::{JobPool, PoolConfig};

use super::identity::ClientId;

pub struct Pools {
    data_dir: PathBuf,
    template: PoolConfig,
    by_client: Mutex<HashMap<ClientId, Arc<JobPool>>>,
}

impl Pools {
    /// `template` holds the limits; its data dir is replaced per client.
    pub fn new(data_dir: PathBuf, template: PoolConfig) -> Self {
        Pools { data_dir, template, by_client: Mutex::new(HashMap::new()) }
    }

    /// The client's pool, created on first use.
    pub fn get(&self, client: &ClientId) -> anyhow::Result<Arc<JobPool>> {
        // Creating a pool takes over its folder, so it happens under the lock:
        // two first requests of one client must not both take it over. This
        // happens once per client.
        let mut pools = self.by_client.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pool) = pools.get(client) {
            return Ok(Arc::clone(pool));
        }
        let mut config = self.template.clone();
        config.data_dir = self.data_dir.join(folder_name(client));
        let pool = Arc::new(JobPool::new(config)?);
        pools.insert(client.clone(), Arc::clone(&pool));
        Ok(pool)
    }

    pub fn all(&self) -> Vec<Arc<JobPool>> {
        self.by_client.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }
}

/// A folder name for a client that is safe whatever its CN holds: hex.
fn folder_name(client: &ClientId) -> String {
    client.0.bytes().map(|b| format!("{b:02x}")).collect()
}
