//! Job ids: per client, counting up, never given twice, not even across a
//! server killed with SIGKILL.
//!
//! Ids are handed out from a block that the records hold as reserved before
//! any id of it is given; a new block is asked for when half of the current
//! one is used, so creating a job waits on the disk only when a burst has
//! used up a whole block before the next was committed. After a crash the
//! next server goes on above the reserved block (a gap, never a reuse); a
//! graceful shutdown gives the unused rest back ([`Ids::release_unused`]).

use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::JobId;
use super::records::{Change, Outcome, Records};

/// Ids reserved at a time.
const BLOCK: u64 = 1024;

pub(crate) struct Ids {
    client: Arc<str>,
    state: Arc<(Mutex<State>, Condvar)>,
}

#[derive(Debug)]
struct State {
    /// The last id handed out.
    last: u64,
    /// The highest id the records hold as reserved.
    committed: u64,
    /// The highest id asked for.
    asked: u64,
}

impl Ids {
    /// Ids of `client`, going on after `last` (the highest recorded or
    /// reserved).
    pub fn new(client: Arc<str>, last: u64) -> Ids {
        Ids {
            client,
            state: Arc::new((Mutex::new(State { last, committed: last, asked: last }), Condvar::new())),
        }
    }

    fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
        state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next id, once it is reserved on disk.
    pub fn next(&self, records: &Records) -> JobId {
        let (mutex, ready) = &*self.state;
        let mut state = Self::lock(mutex);
        state.last += 1;
        let id = state.last;
        if state.asked < id + BLOCK / 2 {
            state.asked = id + BLOCK;
            let up_to = state.asked;
            // Sent without the lock: a closed store calls back at once.
            drop(state);
            let waiting = Arc::clone(&self.state);
            let done = Box::new(move |outcome: Outcome| {
                if let Err(e) = outcome {
                    tracing::error!(error = %e, "cannot reserve job ids on disk; an id may be given again after a crash");
                }
                let (mutex, ready) = &*waiting;
                let mut state = Ids::lock(mutex);
                state.committed = state.committed.max(up_to);
                ready.notify_all();
            });
            records.send(Change::Reserve { client: Arc::clone(&self.client), up_to }, Some(done));
            state = Self::lock(mutex);
        }
        while state.committed < id {
            state = ready.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        JobId(id)
    }

    /// At a graceful shutdown: only ids up to the last one given stay
    /// reserved, so the next server goes on right after it.
    pub async fn release_unused(&self, records: &Records) {
        let last = {
            let mut state = Self::lock(&self.state.0);
            // An id given after this asks for a block of its own again.
            state.asked = state.last;
            state.last
        };
        let _ = records.apply(Change::Reserve { client: Arc::clone(&self.client), up_to: last }).await;
    }
}
