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
//! at once (SIGCHLD) and resumes it ([`Guard::check`]); if a job kills it,
//! the server starts another and tells it every live process group. A
//! graceful shutdown reaps every job first, so the guard then finds nothing
//! to do; dropping the server's end never waits on the guard unbounded.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use nix::sys::signal::{SigHandler, Signal, kill, signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::host::HostCgroups;
use crate::jobs::{self, GroupWatcher};

/// The hidden subcommand that runs the guard.
pub const SUBCOMMAND: &str = "__guard";

/// How long the guard waits for killed jobs to exit so that their cgroups
/// can be removed.
const PURGE_LIMIT: Duration = Duration::from_secs(10);

/// The server's end of the guard.
#[derive(Debug)]
pub struct Guard {
    /// The guard process now running, and how to start another.
    process: Mutex<Child>,
    program: PathBuf,
    cgroup_folders: Vec<PathBuf>,
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
    /// Every live process group, for a guard started in place of one that
    /// died. At most one entry per running job.
    live: HashSet<u32>,
    /// The pipe to a guard started in place of one that died.
    new_pipe: Option<ChildStdin>,
    closed: bool,
}

/// How long dropping the guard waits for it to read its last messages and
/// to finish its purge before it is killed: shutdown never hangs on it.
const DROP_LIMIT: Duration = Duration::from_secs(15);

/// `program __guard [CGROUP_FOLDER...]` in its own process group.
fn spawn(program: &Path, cgroup_folders: &[PathBuf]) -> std::io::Result<(Child, ChildStdin)> {
    let mut process = Command::new(program)
        .arg(SUBCOMMAND)
        .args(cgroup_folders)
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    let pipe = process.stdin.take().expect("stdin is piped");
    Ok((process, pipe))
}

impl Guard {
    /// Starts the guard, `program` `__guard [CGROUP_FOLDER...]` (the
    /// folders of `cgroups`), in its own process group. Taking the detected
    /// cgroups is what keeps it from starting before their detection.
    pub(crate) fn start(program: &Path, cgroups: &HostCgroups) -> std::io::Result<Guard> {
        let cgroup_folders = &cgroups.folders();
        let (process, pipe) = spawn(program, cgroup_folders)?;
        let messages = Arc::new(Messages::default());
        let writer = {
            let messages = Arc::clone(&messages);
            std::thread::Builder::new()
                .name("rcmd-guard-writer".into())
                .spawn(move || write_messages(&messages, pipe))?
        };
        Ok(Guard {
            process: Mutex::new(process),
            program: program.to_owned(),
            cgroup_folders: cgroup_folders.to_owned(),
            messages,
            writer: Some(writer),
        })
    }

    /// The guard's pid.
    pub fn pid(&self) -> u32 {
        lock(&self.process).id()
    }

    /// Resumes the guard if something stopped it, and starts another if it
    /// is gone (killed by a job of the server's user, say), telling it every
    /// live process group. Call on every SIGCHLD.
    pub fn check(&self) {
        let mut process = lock(&self.process);
        let pid = Pid::from_raw(process.id() as i32);
        let flags = WaitPidFlag::WUNTRACED | WaitPidFlag::WNOHANG;
        match waitpid(pid, Some(flags)) {
            Ok(WaitStatus::Stopped(_, signal)) => {
                tracing::warn!(%signal, "the guard process was stopped; resuming it");
                let _ = kill(pid, Signal::SIGCONT);
            }
            Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) => {
                match spawn(&self.program, &self.cgroup_folders) {
                    Ok((new, pipe)) => {
                        tracing::warn!(pid = new.id(), "the guard process was gone; started another");
                        *process = new;
                        let mut pending = lock(&self.messages.pending);
                        pending.changes = pending.live.iter().map(|&pgid| (pgid, true)).collect();
                        pending.new_pipe = Some(pipe);
                        self.messages.ready.notify_one();
                    }
                    Err(e) => tracing::error!(
                        error = %e,
                        "the guard process is gone and cannot be started again: jobs would outlive a crash of this server"
                    ),
                }
            }
            _ => {}
        }
    }

    fn tell(&self, pgid: u32, started: bool) {
        let mut pending = lock(&self.messages.pending);
        if started {
            pending.live.insert(pgid);
        } else {
            pending.live.remove(&pgid);
        }
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
/// itself when the guard does not read. When a guard is gone, it waits for
/// the pipe to the next one.
fn write_messages(messages: &Messages, pipe: ChildStdin) {
    let mut pipe = Some(pipe);
    loop {
        let changes = {
            let mut pending = lock(&messages.pending);
            while (pending.changes.is_empty() || pipe.is_none())
                && pending.new_pipe.is_none()
                && !pending.closed
            {
                pending = messages.ready.wait(pending).unwrap_or_else(|e| e.into_inner());
            }
            if let Some(new) = pending.new_pipe.take() {
                pipe = Some(new);
            }
            if pending.closed && (pending.changes.is_empty() || pipe.is_none()) {
                return; // dropping the pipe tells the guard
            }
            std::mem::take(&mut pending.changes)
        };
        let text: String = changes
            .iter()
            .map(|(pgid, started)| format!("{}{pgid}\n", if *started { '+' } else { '-' }))
            .collect();
        if let Some(Err(e)) = pipe.as_mut().map(|p| p.write_all(text.as_bytes())) {
            // The guard is gone: the next one hears of every live group.
            tracing::error!(error = %e, "cannot write to the guard process");
            pipe = None;
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
        // stopped guard would never read the end: resume it first. One that
        // does not end in time (stopped again, stuck) is killed.
        lock(&self.messages.pending).closed = true;
        self.messages.ready.notify_one();
        let mut process = lock(&self.process);
        let pid = Pid::from_raw(process.id() as i32);
        let _ = kill(pid, Signal::SIGCONT);
        let writer = self.writer.take();
        let deadline = std::time::Instant::now() + DROP_LIMIT;
        let mut ended = || {
            writer.as_ref().is_none_or(|w| w.is_finished()) && process.try_wait().is_ok_and(|s| s.is_some())
        };
        while !ended() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if !ended() {
            tracing::warn!("the guard process does not end; killing it");
            let _ = process.kill();
        }
        if let Some(writer) = writer {
            let _ = writer.join();
        }
        let _ = process.wait();
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
