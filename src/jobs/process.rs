//! Starting a job's process, and the handles its supervisor keeps: the
//! unreaped leader, a pidfd that fires on its exit, and its pipes.
//!
//! A job's process is started by [`child::spawn`]: `clone` with
//! `CLONE_VM | CLONE_VFORK`, so the cost does not grow with the server's
//! memory. Before the job's program runs, the child is the leader of a new
//! process group, a member of the job's cgroups, has exactly fds 0, 1 and 2
//! (nothing the server holds or inherited), default signal handling with
//! nothing blocked and, for a policy user, that user's ids, groups, home
//! directory and clean environment. Everything it needs is prepared here,
//! in the parent, because the child may not allocate. [`start`] blocks until
//! the child has exec'd, so it runs on a blocking thread, which then
//! [registers](Spawned::register) the process's handles with the runtime.

use std::ffi::{CString, c_char};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::net::unix::pipe;

use super::child::{self, Plan, Step, User, above_stdio};
use super::isolate;
use super::watchdog::Watchdog;
use super::{JobSpec, RunAs, Termination};

/// A started process and the handles its supervisor needs.
pub(crate) struct Started {
    pub process: Process,
    pub exit: ExitEvent,
    /// The write end of the job's stdin, if the spec asked for a pipe.
    pub stdin: Option<pipe::Sender>,
    pub stdout: pipe::Receiver,
    pub stderr: pipe::Receiver,
}

/// A process just started, with the parent's ends of its pipes: not yet
/// registered with the runtime (see [`Spawned::register`]).
pub(crate) struct Spawned {
    process: Process,
    pidfd: OwnedFd,
    stdin: Option<OwnedFd>,
    stdout: OwnedFd,
    stderr: OwnedFd,
}

/// Starts the job of `spec`, placed in the cgroups whose open `cgroup.procs`
/// files are `cgroups`, under `watchdog`. An isolated job runs `init` (this
/// binary) as its process 1, which runs the program. Blocks until the child
/// has called `exec`: run it on a blocking thread, not an async worker.
pub(crate) fn start(
    spec: &JobSpec,
    cgroups: &[RawFd],
    init: Option<&Path>,
    watchdog: &Watchdog,
) -> io::Result<Spawned> {
    let ExecTarget { program, words, report } = exec_target(spec, init)?;
    let argv = null_terminated(&words);
    let environment = environment_strings(spec)?;
    let envp = match &environment {
        Some(variables) => null_terminated(variables),
        None => Vec::new(),
    };
    let user = spec
        .run_as
        .as_ref()
        .map(|user| Ok::<_, io::Error>((user, c_string(user.home.as_os_str().as_bytes())?)))
        .transpose()?;

    let JobPipes { child_ends, stdin, stdout, stderr } = job_pipes(spec.stdin)?;

    let report_end =
        report.map(|(read, write)| Ok::<_, io::Error>((read, above_stdio(write)?))).transpose()?;
    let mut plan =
        Plan::new(&program, &argv, if environment.is_some() { envp.as_ptr() } else { server_environment() });
    plan.stdio = child_ends.each_ref().map(AsRawFd::as_raw_fd);
    plan.cgroups = cgroups;
    plan.fd3 = report_end.as_ref().map(|(_, write)| write.as_raw_fd());
    plan.isolate = spec.isolate;
    plan.user = job_user(user.as_ref());
    plan.reset_oom_score = resets_oom_score(own_oom_score_adj());
    let (pid, pidfd) = child::spawn(&plan, watchdog).map_err(spawn_error)?;
    drop(child_ends);
    Ok(Spawned {
        process: Process { pid: pid as u32, report: report_end.map(|(read, _)| read) },
        pidfd,
        stdin,
        stdout,
        stderr,
    })
}

/// What the child executes: the file, its argument words and, for an
/// isolated job, the pipe its init reports the program's wait status on.
struct ExecTarget {
    program: CString,
    words: Vec<CString>,
    report: Option<(OwnedFd, OwnedFd)>,
}

/// The job's [`ExecTarget`]. An isolated job runs `init` (this binary) in
/// front of its program, so the words gain init's own; it cannot run
/// without one.
fn exec_target(spec: &JobSpec, init: Option<&Path>) -> io::Result<ExecTarget> {
    let resolved = c_string(spec.resolve_program()?.into_os_string().as_bytes())?;
    let mut words: Vec<CString> = std::iter::once(spec.command.as_str())
        .chain(spec.args.iter().map(String::as_str))
        .map(c_string)
        .collect::<io::Result<_>>()?;
    let (program, report) = match (spec.isolate, init) {
        (false, _) => (resolved, None),
        (true, None) => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "isolation needs the rcmd binary as the job's init",
            ));
        }
        (true, Some(init)) => {
            // `rcmd __init PROGRAM ARGV0 ARGS...`
            let init = c_string(init.as_os_str().as_bytes())?;
            let head = [c_string("rcmd")?, c_string(isolate::SUBCOMMAND)?, resolved];
            words.splice(0..0, head);
            (init, Some(pipe_pair()?))
        }
    };
    Ok(ExecTarget { program, words, report })
}

/// The job's own environment as `NAME=value` strings, built here because
/// the child may not allocate; `None` when it inherits the server's.
fn environment_strings(spec: &JobSpec) -> io::Result<Option<Vec<CString>>> {
    Ok(match spec.environment() {
        Some(variables) => Some(
            variables
                .into_iter()
                .map(|(name, value)| c_string([name.as_bytes(), b"=", value.as_bytes()].concat()))
                .collect::<io::Result<Vec<_>>>()?,
        ),
        None => None,
    })
}

/// A job's stdio: the child's ends (stdin, stdout, stderr), which the
/// server closes once the child has exec'd, and the server's ends.
struct JobPipes {
    child_ends: [OwnedFd; 3],
    stdin: Option<OwnedFd>,
    stdout: OwnedFd,
    stderr: OwnedFd,
}

/// Opens a job's stdio: a pipe for stdin if `stdin` (else /dev/null), and
/// pipes for stdout and stderr. The child's ends are moved above the fds
/// the child sets up, so that placing one cannot close another.
fn job_pipes(stdin: bool) -> io::Result<JobPipes> {
    let (stdin_read, stdin_write) = match stdin {
        true => {
            let (read, write) = pipe_pair()?;
            (read, Some(write))
        }
        false => (OwnedFd::from(std::fs::File::open("/dev/null")?), None),
    };
    let (stdout_read, stdout_write) = pipe_pair()?;
    let (stderr_read, stderr_write) = pipe_pair()?;
    let child_ends = [above_stdio(stdin_read)?, above_stdio(stdout_write)?, above_stdio(stderr_write)?];
    Ok(JobPipes { child_ends, stdin: stdin_write, stdout: stdout_read, stderr: stderr_read })
}

/// The ids, groups and home the child takes for a policy user, with the
/// home already a C string. A server that is not root can only run jobs
/// as itself: it keeps its ids (it could not set groups). Asked for anyone
/// else, it tries, and the kernel refuses.
fn job_user<'a>(user: Option<&'a (&'a RunAs, CString)>) -> Option<User<'a>> {
    let euid = nix::unistd::geteuid();
    user.map(|(user, home)| User {
        uid: user.uid,
        gid: user.gid,
        groups: &user.groups,
        home,
        switch: euid.is_root() || euid.as_raw() != user.uid,
    })
}

/// A failed spawn as an error for the client: it names the step that
/// failed, except exec, whose own error (no such file, say) says it all.
fn spawn_error(e: child::SpawnError) -> io::Error {
    match e.step {
        None | Some(Step::Exec) => e.error,
        Some(step) => io::Error::new(e.error.kind(), format!("cannot {}: {}", step.doing(), e.error)),
    }
}

impl Spawned {
    /// Registers the process's pidfd and pipes with the current tokio
    /// runtime (call inside its context, on a blocking thread). On failure
    /// the process is killed and reaped (which blocks until it has exited):
    /// it could not be supervised.
    pub fn register(self) -> io::Result<Started> {
        let Spawned { process, pidfd, stdin, stdout, stderr } = self;
        let handles = (|| {
            Ok::<_, io::Error>((
                ExitEvent::open(pidfd)?,
                stdin.map(pipe::Sender::from_owned_fd).transpose()?,
                pipe::Receiver::from_owned_fd(stdout)?,
                pipe::Receiver::from_owned_fd(stderr)?,
            ))
        })();
        match handles {
            Ok((exit, stdin, stdout, stderr)) => Ok(Started { process, exit, stdin, stdout, stderr }),
            Err(e) => {
                signal_group(process.id(), Signal::SIGKILL);
                let _ = process.wait();
                Err(e)
            }
        }
    }
}

fn c_string(bytes: impl AsRef<[u8]>) -> io::Result<CString> {
    CString::new(bytes.as_ref()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the command, its arguments and environment must not hold a nul byte",
        )
    })
}

/// Pointers to `strings`, and a null pointer after them.
fn null_terminated(strings: &[CString]) -> Vec<*const c_char> {
    strings.iter().map(|s| s.as_ptr()).chain(std::iter::once(std::ptr::null())).collect()
}

/// The server's own environment, as posix_spawn would pass it. rcmd never
/// changes its environment after start-up, so reading it here is safe.
fn server_environment() -> *const *const c_char {
    unsafe extern "C" {
        static environ: *const *const c_char;
    }
    // SAFETY: reads the pointer that libc keeps; see above for why it is
    // stable.
    unsafe { environ }
}

/// Whether a job of a server whose OOM score adjustment is `own` gets 0.
/// A job never keeps the protection from the OOM killer that a server may
/// have given itself (a negative score), whoever it runs as; raising it is
/// always allowed. A positive score stays: it protects nothing, and
/// lowering it may need a privilege (CAP_SYS_RESOURCE) the server lacks.
fn resets_oom_score(own: i32) -> bool {
    own < 0
}

/// This process's OOM score adjustment (0 if it cannot be read).
fn own_oom_score_adj() -> i32 {
    let text = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap_or_default();
    text.trim().parse().unwrap_or(0)
}

/// A pipe: (read end, write end), both close-on-exec.
fn pipe_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills `fds` with two new descriptors, or fails.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both are fresh descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A job's main process, until it is reaped. While it exists (as a zombie
/// at least), its pid, which is also its process group's id, is not reused.
#[derive(Debug)]
pub(crate) struct Process {
    pid: u32,
    /// An isolated job's init reports its program's wait status here.
    report: Option<OwnedFd>,
}

impl Process {
    pub fn id(&self) -> u32 {
        self.pid
    }

    /// Waits for the process to exit and reaps it.
    pub fn wait(self) -> io::Result<Termination> {
        let mut status = 0;
        loop {
            // SAFETY: waits for our own child, writing only `status`.
            if unsafe { libc::waitpid(self.pid as libc::pid_t, &mut status, 0) } >= 0 {
                return Ok(termination(self.reported().unwrap_or(status)));
            }
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(error);
            }
        }
    }
}

impl Process {
    /// The wait status an isolated job's init reported for its program:
    /// `None` if it reported none (it was killed first), or for other jobs.
    fn reported(&self) -> Option<libc::c_int> {
        let mut file = std::fs::File::from(self.report.as_ref()?.try_clone().ok()?);
        let mut status = [0; 4];
        // The init has exited, so this is its report or end-of-file.
        std::io::Read::read_exact(&mut file, &mut status).ok()?;
        Some(libc::c_int::from_ne_bytes(status))
    }
}

/// How a wait status says the process ended.
fn termination(status: libc::c_int) -> Termination {
    if libc::WIFSIGNALED(status) {
        Termination::Signaled(libc::WTERMSIG(status))
    } else {
        Termination::Exited(libc::WEXITSTATUS(status))
    }
}

/// Fires when a process exits, without reaping it: a pidfd polled by tokio.
pub(crate) struct ExitEvent(AsyncFd<OwnedFd>);

impl ExitEvent {
    fn open(pidfd: OwnedFd) -> io::Result<Self> {
        // SAFETY: the OwnedFd stays open, unchanged, for the AsyncFd's life.
        let fd = unsafe { AsyncFd::register_with_interest(pidfd, Interest::READABLE) };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_protected_servers_jobs_get_their_oom_score_reset() {
        assert!(resets_oom_score(-1000) && resets_oom_score(-1));
        assert!(!resets_oom_score(0) && !resets_oom_score(100));
    }
}
