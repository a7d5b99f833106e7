//! How a running server is told what to do: [`Control`]s, from the process's
//! signals (`rcmd serve`) or from a channel of the program it is embedded in
//! ([`Embedding`], as [`crate::testing::TestServer`] runs it).

use std::net::SocketAddr;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

/// What a running server can be asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    /// SIGHUP: load the certificates, CRL and policy again.
    Reload,
    /// SIGINT or SIGTERM: kill every job and stop.
    Stop,
}

/// How a server runs: as `rcmd serve` (the process's signals, a guard
/// process) or in another program, such as a test
/// ([`crate::testing::TestServer`]: a channel, the process's signals left
/// alone, no guard, no isolated jobs).
pub(crate) struct Embedding {
    /// Reload and stop requests; a closed channel stops the server too.
    pub controls: mpsc::Receiver<Control>,
    /// Called with the address once the server listens.
    pub listening: Option<Box<dyn FnOnce(SocketAddr) + Send>>,
    /// Whether this process is the rcmd binary, which can run as the guard
    /// (`rcmd __guard`, which kills the jobs of a server killed with
    /// SIGKILL) and as an isolated job's process 1 (`rcmd __init`). Another
    /// program cannot, so it gets neither.
    pub own_exe: bool,
}

/// The process's SIGINT, SIGTERM and SIGHUP as [`Control`]s.
pub(crate) fn signal_controls() -> std::io::Result<mpsc::Receiver<Control>> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let (sender, controls) = mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            let control = tokio::select! {
                _ = interrupt.recv() => Control::Stop,
                _ = terminate.recv() => Control::Stop,
                _ = hangup.recv() => Control::Reload,
            };
            if sender.send(control).await.is_err() {
                return;
            }
        }
    });
    Ok(controls)
}
