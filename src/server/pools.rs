//! One job pool per client identity, made on the client's first request.
//! Pools share one [`Store`] (each keeps its output in a folder of its own
//! and its records under its client's name) and the limits; a client can
//! only ever reach its own pool.
//!
//! [`pool_template`] is that configuration, made once at start-up.
//!
//! The map's lock is held only to look up or insert: opening a pool (a
//! folder and a read of the records) happens outside it, so one client's
//! first request never holds up another's.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use super::config::ServerConfig;
use crate::jobs::{self, JobError, JobPool, PoolConfig, Store};
use crate::pki::ClientName;

pub struct Pools {
    store: Arc<Store>,
    template: PoolConfig,
    by_client: Mutex<HashMap<ClientName, Arc<JobPool>>>,
}

impl Pools {
    /// `template` holds the limits every pool gets.
    pub fn new(store: Arc<Store>, template: PoolConfig) -> Self {
        Pools { store, template, by_client: Mutex::new(HashMap::new()) }
    }

    /// The client's pool, opened on first use (with the jobs its records
    /// hold from before a restart).
    pub fn get(&self, client: &ClientName) -> Result<Arc<JobPool>, JobError> {
        if let Some(pool) = self.lock().get(client) {
            return Ok(Arc::clone(pool));
        }
        let opened = Arc::new(JobPool::open(&self.store, client.as_str(), self.template.clone())?);
        // Two first requests may both have opened one: the first in wins,
        // and the other, which has no jobs yet, is dropped.
        Ok(Arc::clone(self.lock().entry(client.clone()).or_insert(opened)))
    }

    /// The client's pool if it has jobs (open, or in the records); never
    /// creates one for a client without.
    pub fn existing(&self, client: &ClientName) -> Option<Arc<JobPool>> {
        if let Some(pool) = self.lock().get(client) {
            return Some(Arc::clone(pool));
        }
        self.store.has_jobs_of(client.as_str()).then(|| self.get(client).ok()).flatten()
    }

    /// Every pool with its client.
    pub fn each(&self) -> Vec<(ClientName, Arc<JobPool>)> {
        self.lock().iter().map(|(name, pool)| (name.clone(), Arc::clone(pool))).collect()
    }

    pub fn all(&self) -> Vec<Arc<JobPool>> {
        self.lock().values().cloned().collect()
    }

    /// Bytes of output stored now, by every pool together.
    pub fn stored_bytes(&self) -> u64 {
        self.all().iter().map(|pool| pool.stored_bytes()).sum()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<ClientName, Arc<JobPool>>> {
        self.by_client.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The limits every client's pool gets, how its jobs are contained
/// ([`super::host::HostCgroups::containment`]), the `isolate_init` of
/// isolated jobs and the `observer` of every job's start and end.
pub(crate) fn pool_template(
    config: &ServerConfig,
    store: &Store,
    containment: jobs::Containment,
    isolate_init: Option<PathBuf>,
    observer: Option<Arc<dyn jobs::JobObserver>>,
) -> PoolConfig {
    PoolConfig {
        data_dir: store.path().to_owned(),
        output_limit: config.max_output,
        stop_grace: config.stop_grace,
        max_running: config.max_running,
        max_jobs: config.max_jobs,
        max_stored_bytes: config.max_stored.unwrap_or((store.max_disk() / 4).min(16 << 30)),
        containment,
        observer,
        isolate_init,
        start_limit: jobs::StartLimit::default(),
    }
}
