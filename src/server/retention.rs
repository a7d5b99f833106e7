//! `serve --retain`: finished jobs older than the retention period are
//! deleted with their output, in the background: a sweep at start-up and
//! then every tenth of the period (at least every second, at most hourly).
//! Each deletion is an ordinary delete of the client's pool, so requests
//! are never held up by more than one job's deletion at a time.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::state::AppState;
use crate::pki::ClientName;

pub async fn run(state: Arc<AppState>, retain: Duration) {
    let every = (retain / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600));
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(e) = sweep(&state, retain).await {
            tracing::warn!(error = %format!("{e:#}"), "retention: cannot delete old jobs; trying again later");
        }
    }
}

async fn sweep(state: &AppState, retain: Duration) -> anyhow::Result<()> {
    let Some(cutoff) = SystemTime::now().checked_sub(retain) else { return Ok(()) };
    for client in state.pools.store().clients_finished_before(cutoff)? {
        // Records are only ever made under valid names.
        let Ok(name) = ClientName::parse(&client) else { continue };
        let pool = state.pools.get(&name)?;
        let deleted = pool.delete_finished_before(cutoff).await?;
        if deleted > 0 {
            tracing::info!(client, deleted, "retention: deleted finished jobs and their output");
        }
    }
    Ok(())
}
