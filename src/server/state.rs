//! [`AppState`]: what every handler shares, built once at start-up. Handlers
//! and the background tasks import it from here; it imports none of them.

use std::sync::Arc;

use super::ceilings::Ceilings;
use super::metrics::Metrics;
use super::policy::CurrentPolicy;
use super::pools::Pools;

pub(crate) struct AppState {
    pub pools: Pools,
    /// Replaced whole by a reload; each request reads it once.
    pub policy: CurrentPolicy,
    /// Counted only when `--metrics-listen` asks for them.
    pub metrics: Option<Arc<Metrics>>,
    /// The server's per-job limits (`--job-*`): defaults and ceilings, for
    /// every client within its own in the policy.
    pub ceilings: Ceilings,
}
