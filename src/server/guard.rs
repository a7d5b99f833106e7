//! Jobs must not outlive a server killed with SIGKILL, which gives the server
//! no chance to clean up. PR_SET_PDEATHSIG would reach only each job's main
//! process, not the rest of its group, and would force the slow fork/exec
//! spawn path. So the server starts a small guard process instead:
//!
//! * the server tells the guard, over a pipe, each job's process group as it
//!   starts (`+PGID`) and once it has been reaped (`-PGID`);
//! * the guard ignores the signals a terminal sends and only reads the pipe;
//! * when the pipe reaches end-of-file, the server is gone, however it died:
//!   the guard sends SIGKILL to every group still listed, and exits.
//!
//! A graceful shutdown reaps every job first, so the guard then finds its
//! list empty. The guard acts within milliseconds of the server's death,
//! while the killed jobs' groups still exist, so their ids cannot have been
//! reused by then.

use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;

use nix::sys::signal::{SigHandler, Signal, signal};

use crate::jobs::GroupWatcher;

/// The hidden subcommand that runs the guard.
pub const SUBCOMMAND: &str = "__guard";

/// The server's end of the guard: a pipe to it, and the process to reap.
#[derive(Debug)]
pub struct Guard {
    pipe: Mutex<Option<ChildStdin>>,
    process: Mutex<Child>,
}

impl Guard {
    /// Starts the guard: this same binary, in its own process group.
    pub fn start() -> std::io::Result<Guard> {
        let mut process = Command::new(std::env::current_exe()?)
            .arg(SUBCOMMAND)
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()?;
        let pipe = process.stdin.take();
        Ok(Guard { pipe: Mutex::new(pipe), process: Mutex::new(process) })
    }

    fn tell(&self, message: &str) {
        let mut pipe = self.pipe.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(writer) = pipe.as_mut()
            && let Err(e) = writer.write_all(message.as_bytes())
        {
            tracing::error!(error = %e, "the guard process is gone: jobs would outlive a crash of this server");
            *pipe = None;
        }
    }
}

impl GroupWatcher for Guard {
    fn started(&self, pgid: u32) {
        self.tell(&format!("+{pgid}\n"));
    }

    fn reaping(&self, pgid: u32) {
        self.tell(&format!("-{pgid}\n"));
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // Closing the pipe ends the guard; reap it so nothing is left.
        self.pipe.lock().unwrap_or_else(|e| e.into_inner()).take();
        let _ = self.process.lock().unwrap_or_else(|e| e.into_inner()).wait();
    }
}

/// The guard's main loop (`rcmd __guard`): keep the list of live groups
/// until stdin closes, then kill what is left. Returns the exit status.
pub fn run() -> i32 {
    for terminal_signal in [Signal::SIGINT, Signal::SIGHUP, Signal::SIGQUIT, Signal::SIGTERM] {
        // SAFETY: SIG_IGN installs no handler code.
        let _ = unsafe { signal(terminal_signal, SigHandler::SigIgn) };
    }
    let mut live = HashSet::new();
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
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid as i32), Signal::SIGKILL);
    }
    0
}
