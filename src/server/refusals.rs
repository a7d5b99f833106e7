//! The log of refused connections (no pre-auth place, a failed or timed-out
//! handshake, a cap reached), at a bounded rate: a flood of bad connections
//! must not become a flood of log lines. At most [`LINES_PER_WINDOW`] lines
//! per [`WINDOW`]; what is left out is counted, and the count is logged when
//! the window is over.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(crate) const WINDOW: Duration = Duration::from_secs(10);
const LINES_PER_WINDOW: u32 = 10;

pub(crate) struct RefusalLog {
    window: Mutex<Window>,
}

struct Window {
    started: Instant,
    logged: u32,
    suppressed: u64,
}

impl RefusalLog {
    pub fn new() -> RefusalLog {
        RefusalLog { window: Mutex::new(Window { started: Instant::now(), logged: 0, suppressed: 0 }) }
    }

    pub fn refused(&self, peer: Option<&SocketAddr>, error: &std::io::Error) {
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        window.roll(Instant::now());
        if window.logged < LINES_PER_WINDOW {
            window.logged += 1;
            tracing::warn!(peer = ?peer, %error, "connection refused");
        } else {
            window.suppressed += 1;
        }
    }

    /// Ends the window if it is over, logging what it left out. Called every
    /// [`WINDOW`], so that the count of a flood that stopped is logged too.
    pub fn tick(&self) {
        self.window.lock().unwrap_or_else(|e| e.into_inner()).roll(Instant::now());
    }
}

impl Window {
    fn roll(&mut self, now: Instant) {
        if now.duration_since(self.started) < WINDOW {
            return;
        }
        if self.suppressed > 0 {
            tracing::warn!(
                suppressed = self.suppressed,
                "{} more connections were refused in the last {}s (not logged one by one)",
                self.suppressed,
                WINDOW.as_secs()
            );
        }
        *self = Window { started: now, logged: 0, suppressed: 0 };
    }
}
