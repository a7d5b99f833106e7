//! The init of an isolated job (`rcmd __init PROGRAM ARGV0 ARGS...`).
//!
//! An isolated job starts as process 1 of a new PID namespace (its mounts
//! and network already set up by the child code). Process 1 has duties the
//! job's own program knows nothing of: it must reap every orphan in the
//! namespace, and when it exits the kernel kills everything else there. So
//! the job's process 1 is this small init: it starts the program, reaps
//! whatever exits, and once the program itself has exited, reports the
//! program's wait status to the server on fd 3 and exits too. The server
//! takes that status as the job's, so an isolated job ends exactly as its
//! command did (an init cannot die of a signal it sends itself).

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::FromRawFd;
use std::os::unix::process::CommandExt;

/// The descriptor the init reports on.
pub(crate) const REPORT_FD: i32 = 3;

/// The subcommand that runs [`init`].
pub const SUBCOMMAND: &str = "__init";

/// Runs `program` with `argv` (its argv[0] first) and reaps everything until
/// it exits. Returns the exit status for the init itself.
pub fn init(program: &OsString, argv: &[OsString]) -> i32 {
    // `ps` in the job shows this name, not the file's ("exe" through /proc).
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, c"rcmd-init".as_ptr()) };
    // The program must get exactly fds 0, 1 and 2.
    // SAFETY: sets a flag on a descriptor we own.
    unsafe { libc::fcntl(REPORT_FD, libc::F_SETFD, libc::FD_CLOEXEC) };
    let Some((argv0, args)) = argv.split_first() else {
        eprintln!("rcmd: {SUBCOMMAND} needs the program's argv[0]");
        return 127;
    };
    let child = match std::process::Command::new(program).arg0(argv0).args(args).spawn() {
        Ok(child) => child,
        Err(e) => {
            eprintln!("rcmd: cannot start {}: {e}", program.to_string_lossy());
            return 127;
        }
    };
    let main = child.id() as libc::pid_t;
    let status = loop {
        let mut status = 0;
        // SAFETY: waits for any child of ours, writing only `status`.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid == main {
            break status;
        }
        if pid < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return 127; // no children left: cannot happen while `main` lives
        }
    };
    // SAFETY: fd 3 is the report pipe the server gave us; nothing else owns it.
    let mut report = unsafe { std::fs::File::from_raw_fd(REPORT_FD) };
    let _ = report.write_all(&status.to_ne_bytes());
    if libc::WIFSIGNALED(status) { 128 + libc::WTERMSIG(status) } else { libc::WEXITSTATUS(status) }
}
