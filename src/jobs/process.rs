//! Starting a job's process and the small unsafe-free wrappers around the
//! Linux calls the supervisor needs: pidfd, process-group signals, reaping.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::net::unix::pipe;

use super::{JobSpec, Termination};

/// A started process and the handles its supervisor needs.
pub(crate) struct Started {
    pub child: Child,
    pub exit: ExitEvent,
    pub stdout: pipe::Receiver,
    pub stderr: pipe::Receiver,
}

/// Starts `command` as the leader of a new process group, stdin from
/// /dev/null, stdout and stderr to pipes. Must run inside a tokio runtime
/// context (the pipes and the pidfd register with its reactor).
///
/// No `pre_exec` is set, so std uses `posix_spawn` rather than fork/exec,
/// which stays fast however large the server's memory grows.
pub(crate) fn start(spec: &JobSpec) -> io::Result<Started> {
    if spec.command.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "the command is empty"));
    }
    let mut child = Command::new(OsStr::new(&spec.command))
        .args(&spec.args)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let handles = (|| {
        let stdout = OwnedFd::from(child.stdout.take().expect("stdout is piped"));
        let stderr = OwnedFd::from(child.stderr.take().expect("stderr is piped"));
        Ok::<_, io::Error>((
            ExitEvent::open(child.id())?,
            pipe::Receiver::from_owned_fd(stdout)?,
            pipe::Receiver::from_owned_fd(stderr)?,
        ))
    })();
    match handles {
        Ok((exit, stdout, stderr)) => Ok(Started { child, exit, stdout, stderr }),
        Err(e) => {
            // Not supervisable: do not leave it running.
            signal_group(child.id(), Signal::SIGKILL);
            let _ = child.wait();
            Err(e)
        }
    }
}

/// Fires when a process exits, without reaping it: a pidfd polled by tokio.
pub(crate) struct ExitEvent(AsyncFd<OwnedFd>);

impl ExitEvent {
    fn open(pid: u32) -> io::Result<Self> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the syscall returned a fresh fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
        // SAFETY: the OwnedFd stays open, unchanged, for the AsyncFd's life.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) };
        Ok(ExitEvent(fd.map_err(io::Error::from)?))
    }

    /// Completes once the process has exited (it is then a zombie until
    /// someone reaps it).
    pub async fn exited(&self) {
        // A pidfd only ever reports readable, once the process is gone; an
        // error here would mean the fd itself is broken, and then waiting
        // any longer would hang forever, so treat it as exited.
        let _ = self.0.readable().await;
    }
}

/// Sends `signal` to the process group led by `pid`. Callers guarantee that
/// the leader is not yet reaped, so the group id cannot have been reused.
pub(crate) fn signal_group(pid: u32, signal: Signal) {
    // ESRCH only means the group is already empty, which is fine.
    let _ = killpg(Pid::from_raw(pid as i32), signal);
}

pub(crate) fn termination(status: ExitStatus) -> Termination {
    match (status.code(), status.signal()) {
        (Some(code), _) => Termination::Exited(code),
        (None, Some(signal)) => Termination::Signaled(signal),
        // Neither can happen for a reaped child on Linux.
        (None, None) => Termination::Exited(-1),
    }
}
