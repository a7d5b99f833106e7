//! Retrying a step that waits on the kernel: killed processes exit, and
//! only then can their groups be removed.

use std::time::{Duration, Instant};

/// Calls `attempt` until it returns true or `limit` has passed, with short
/// growing pauses in between. Returns the last result.
pub(super) fn retry_blocking(limit: Duration, mut attempt: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_micros(200);
    loop {
        if attempt() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
