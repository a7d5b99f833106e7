//! Jobs must not outlive a server killed with SIGKILL, which gives the server
//! no chance to clean up. So the server starts a small guard process (this
//! binary, `rcmd __guard`) whose stdin is a pipe from the server; when that
//! pipe reaches end-of-file, the server is gone, however it died, and the
//! guard ends every job:
//!
//! * **With cgroups**, the guard is given the server's cgroup folders on its
//!   command line. It kills every job group in them and removes them. Nothing
//!   is sent to it while the server runs, so a guard that is stuck cannot
//!   hold the server up.
//! * **Without cgroups** (the fallback), the server tells the guard each
//!   job's process group as it starts (`+PGID`) and just before its leader is
//!   reaped (`-PGID`: after the reap the id may be reused by a new job). The
//!   guard kills the groups still listed. The server never blocks on this:
//!   changes wait in a small map (a start and its end cancel out, so it holds
//!   at most one entry per job) that a thread of its own writes to the pipe.
//!
//! The guard ignores the signals a terminal sends. A job running as the
//! server's own user can still stop it (SIGSTOP): the server hears of that
//! at once (SIGCHLD) and resumes it ([`Guard::resume_if_stopped`]). A graceful
//! shutdown reaps every job first, so the guard then finds nothing to do.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use nix::sys::signal::{SigHandler, Signal, kill, signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::jobs::{self, GroupWatcher};

/// The hidden subcommand that runs the guard.
pub const SUBCOMMAND: &str = "__guard";

/// How long the guard waits for killed jobs to exit so that their cgroups
/// can be removed.
const PURGE_LIMIT: Duration = Duration::from_secs(10);

/// The server's end of the guard.
#[derive(Debug)]
pub struct Guard {
    process: Mutex<Child>,
    pid: Pid,
    messages: Arc<Messages>,
    writer: Option<std::thread::JoinHandle<()>>,
}

/// Changes of the live process groups not yet written to the guard:
/// pgid -> started (true) or reaped (false).
#[derive(Debug, Default)]
struct Messages {
    pending: Mutex<Pending>,
    ready: Condvar,
}

#[derive(Debug, Default)]
struct Pending {
    changes: HashMap<u32, bool>,
    closed: bool,
}

impl Guard {
    /// Starts the guard, `program` `__guard [CGROUP_FOLDER...]`, in its own
    /// process group.
    pub fn start(program: &Path, cgroup_folders: &[PathBuf]) -> std::io::Result<Guard> {
        let mut process = Command::new(program)
            .arg(SUBCOMMAND)
            .args(cgroup_folders)
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()?;
        let pipe = process.stdin.take().expect("stdin is piped");
        let pid = Pid::from_raw(process.id() as i32);
        let messages = Arc::new(Messages::default());
        let writer = {
            let messages = Arc::clone(&messages);
            std::thread::Builder::new()
                .name("rcmd-guard-writer".into())
                .spawn(move || write_messages(&messages, pipe))?
        };
        Ok(Guard { process: Mutex::new(process), pid, messages, writer: Some(writer) })
    }

    /// The guard's pid.
    pub fn pid(&self) -> u32 {
        self.pid.as_raw() as u32
    }

    /// Resumes the guard if something stopped it. Call on every SIGCHLD.
    pub fn resume_if_stopped(&self) {
        let flags = WaitPidFlag::WUNTRACED | WaitPidFlag::WNOHANG;
        match waitpid(self.pid, Some(flags)) {
            Ok(WaitStatus::Stopped(_, signal)) => {
                tracing::warn!(%signal, "the guard process was stopped; resuming it");
                let _ = kill(self.pid, Signal::SIGCONT);
            }
            Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) => {
                tracing::error!("the guard process is gone: jobs would outlive a crash of this server");
            }
            _ => {}
        }
    }

    fn tell(&self, pgid: u32, started: bool) {
        let mut pending = lock(&self.messages.pending);
        match pending.changes.get(&pgid) {
            // A start the guard has not heard of yet: forget it altogether.
            Some(true) if !started => {
                pending.changes.remove(&pgid);
            }
            _ => {
                pending.changes.insert(pgid, started);
            }
        }
        self.messages.ready.notify_one();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The writer thread: sends pending changes as they come, blocking only
/// itself when the guard does not read.
fn write_messages(messages: &Messages, mut pipe: ChildStdin) {
    loop {
        let changes = {
            let mut pending = lock(&messages.pending);
            while pending.changes.is_empty() && !pending.closed {
                pending = messages.ready.wait(pending).unwrap_or_else(|e| e.into_inner());
            }
            if pending.changes.is_empty() {
                return; // closed: dropping the pipe tells the guard
            }
            std::mem::take(&mut pending.changes)
        };
        let text: String = changes
            .iter()
            .map(|(pgid, started)| format!("{}{pgid}\n", if *started { '+' } else { '-' }))
            .collect();
        if let Err(e) = pipe.write_all(text.as_bytes()) {
            tracing::error!(error = %e, "the guard process is gone: jobs would outlive a crash of this server");
            return;
        }
    }
}

impl GroupWatcher for Guard {
    fn started(&self, pgid: u32) {
        self.tell(pgid, true);
    }

    fn reaping(&self, pgid: u32) {
        self.tell(pgid, false);
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // Closing the pipe ends the guard; reap it so nothing is left. A
        // stopped guard would never read the end: resume it first.
        lock(&self.messages.pending).closed = true;
        self.messages.ready.notify_one();
        let _ = kill(self.pid, Signal::SIGCONT);
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
        let _ = lock(&self.process).wait();
    }
}

/// The guard's main loop (`rcmd __guard [CGROUP_FOLDER...]`): keep the list
/// of live groups until stdin closes, then kill what is left and purge the
/// cgroup folders. Returns the exit status.
pub fn run(cgroup_folders: &[PathBuf]) -> i32 {
    for terminal_signal in [Signal::SIGINT, Signal::SIGHUP, Signal::SIGQUIT, Signal::SIGTERM] {
        // SAFETY: SIG_IGN installs no handler code.
        let _ = unsafe { signal(terminal_signal, SigHandler::SigIgn) };
    }
    let mut live = std::collections::HashSet::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let (sign, pgid) = line.split_at(line.len().min(1));
        match (sign, pgid.parse::<u32>()) {
            ("+", Ok(pgid)) => {
                live.insert(pgid);
            }
            ("-", Ok(pgid)) => {
                live.remove(&pgid);
            }
            _ => {}
        }
    }
    for pgid in live {
        let _ = nix::sys::signal::killpg(Pid::from_raw(pgid as i32), Signal::SIGKILL);
    }
    let mut code = 0;
    for folder in cgroup_folders {
        if !jobs::purge_cgroup_folder(folder, PURGE_LIMIT) {
            eprintln!("rcmd guard: cannot remove {}: its processes do not exit", folder.display());
            code = 1;
        }
    }
    code
}
