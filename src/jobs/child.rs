//! The code a new job process runs between `clone` and `exec`, and the
//! `clone` that starts it.
//!
//! The child is made with `CLONE_VM | CLONE_VFORK`: it runs in the server's
//! own memory, on a stack of its own, while the cloning thread waits until it
//! has called `exec` (or exited). That costs the same however large the
//! server's memory is, unlike `fork`, which copies its page tables. The price
//! is a set of invariants, which everything in [`prepare`] keeps:
//!
//! * **Nothing but system calls.** No allocation, no locks, no panics, no
//!   Rust standard library calls that might do any of those: the server's
//!   other threads hold its allocator's and its libraries' locks at any time.
//!   Everything the child needs is computed by the parent into a [`Plan`].
//! * **Raw `set*id` and signal calls.** glibc's `setuid` family signals every
//!   thread of a multithreaded process so that all change together; here
//!   those are the *server's* threads. The raw system calls change only the
//!   child.
//! * **Signals are blocked until `exec`.** The parent blocks every signal
//!   around `clone`, so none of the server's handlers can run in the child on
//!   the server's memory; the child sets every disposition to the default and
//!   unblocks them all only just before `exec`.
//! * **Never on an async worker.** The cloning thread waits until the child
//!   has exec'd; a child stopped before that would hold it. Jobs start on
//!   blocking threads, and a [`Watchdog`] kills a child that is stuck.
//! * **Failures travel in the plan.** A step that fails records itself and
//!   its errno in the plan (shared memory) and the child exits; `clone`
//!   returns only after that, so the parent reads a complete report.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

use super::watchdog::{self, Watchdog};

/// What the child must do, prepared by the parent.
pub(crate) struct Plan<'a> {
    /// The file to execute.
    pub program: &'a CStr,
    /// The argument vector, ending with a null pointer.
    pub argv: &'a [*const c_char],
    /// The environment, ending with a null pointer.
    pub envp: *const *const c_char,
    /// Become fds 0, 1 and 2. Each is at least 3 (see [`above_stdio`]).
    pub stdio: [RawFd; 3],
    /// Becomes fd 3 (the isolated job's init reports through it), if any.
    pub fd3: Option<RawFd>,
    /// Open `cgroup.procs` files to write "0" to (this process) before
    /// anything of the job's runs.
    pub cgroups: &'a [RawFd],
    /// Set up the isolated job's mounts and network (it is in new PID,
    /// mount and network namespaces already).
    pub isolate: bool,
    /// Set the OOM score adjustment to 0: the server protected itself.
    pub reset_oom_score: bool,
    /// Switch to this user.
    pub user: Option<User<'a>>,
    failure: Failure,
}

/// The user a job runs as: ids, and the directory it starts in.
pub(crate) struct User<'a> {
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
    pub groups: &'a [libc::gid_t],
    pub home: &'a CStr,
    /// Whether to change ids. Not for a server
    /// that is not root and runs the job as itself: it could not set groups,
    /// and its ids are already the job's.
    pub switch: bool,
}

/// The step of [`prepare`] that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Signals = 1,
    ProcessGroup,
    Cgroup,
    Isolate,
    Descriptors,
    OomScore,
    Groups,
    Gid,
    Uid,
    Capabilities,
    Home,
    Exec,
}

impl Step {
    const ALL: [Step; 12] = [
        Step::Signals,
        Step::ProcessGroup,
        Step::Cgroup,
        Step::Isolate,
        Step::Descriptors,
        Step::OomScore,
        Step::Groups,
        Step::Gid,
        Step::Uid,
        Step::Capabilities,
        Step::Home,
        Step::Exec,
    ];

    /// What the step was doing, for the job's error message.
    pub fn doing(self) -> &'static str {
        match self {
            Step::Signals => "reset signal handling",
            Step::ProcessGroup => "make a process group",
            Step::Cgroup => "join the job's cgroup",
            Step::Isolate => "set up the isolated mounts and network",
            Step::Descriptors => "set up stdin, stdout and stderr",
            Step::OomScore => "reset the OOM score",
            Step::Groups => "set the user's groups",
            Step::Gid => "switch to the user's group",
            Step::Uid => "switch to the user",
            Step::Capabilities => "drop capabilities",
            Step::Home => "enter the user's home directory",
            Step::Exec => "execute the program",
        }
    }
}

/// Where the child reports a failed step: shared memory, read by the parent
/// once `clone` has returned.
#[derive(Default)]
struct Failure {
    step: AtomicI32,
    errno: AtomicI32,
}

/// A failed start: the step and the system's error.
#[derive(Debug)]
pub(crate) struct SpawnError {
    pub step: Option<Step>,
    pub error: io::Error,
}

impl<'a> Plan<'a> {
    pub fn new(program: &'a CStr, argv: &'a [*const c_char], envp: *const *const c_char) -> Self {
        Plan {
            program,
            argv,
            envp,
            stdio: [-1; 3],
            fd3: None,
            cgroups: &[],
            isolate: false,
            reset_oom_score: false,
            user: None,
            failure: Failure::default(),
        }
    }
}

/// The child's own stack. Its code is a short sequence of system calls.
const STACK_SIZE: usize = 64 << 10;

/// Starts a process that follows `plan` and executes its program. Returns
/// its pid and a pidfd for it once it has called `exec`; if any step failed,
/// or `watchdog` killed the child before `exec`, the child is reaped and the
/// error returned. Blocks until the child has called `exec` or exited: never
/// call it on an async worker (see [`Watchdog`]).
pub(crate) fn spawn(plan: &Plan<'_>, watchdog: &Watchdog) -> Result<(libc::pid_t, OwnedFd), SpawnError> {
    debug_assert!(plan.stdio.iter().chain(&plan.fd3).all(|&fd| fd > 3));
    debug_assert!(plan.argv.last().is_some_and(|p| p.is_null()));
    let mut stack = Box::<[u8]>::new_uninit_slice(STACK_SIZE);
    // The stack grows down from its end, which must be 16-byte aligned.
    let top = (stack.as_mut_ptr() as usize + STACK_SIZE) & !15;
    let mut flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | libc::SIGCHLD;
    if plan.isolate {
        flags |= libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWNET;
    }
    let (pid, clone_error) = {
        let _blocked = BlockedSignals::new();
        watchdog.cloning();
        // SAFETY: `child_main` keeps the invariants of this module's docs;
        // `plan` and `stack` outlive the child's use of them, since with
        // CLONE_VFORK this returns only once the child has exec'd or exited.
        // The pidfd slot outlives the call (the watchdog is borrowed).
        let pid = unsafe {
            libc::clone(
                child_main,
                top as *mut c_void,
                flags,
                plan as *const Plan<'_> as *mut c_void,
                watchdog.pidfd_slot(),
            )
        };
        (pid, io::Error::last_os_error())
    };
    let (pidfd, killed) = watchdog.cloned();
    drop(stack);
    if pid < 0 {
        return Err(SpawnError { step: None, error: clone_error });
    }
    // SAFETY: CLONE_PIDFD stored a new descriptor that nothing else owns
    // (the watchdog no longer uses it once `cloned` has returned).
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    if killed {
        reap(pid);
        return Err(SpawnError { step: None, error: watchdog::stuck_error() });
    }
    let step = plan.failure.step.load(Ordering::SeqCst);
    if step == 0 {
        return Ok((pid, pidfd));
    }
    let error = io::Error::from_raw_os_error(plan.failure.errno.load(Ordering::SeqCst));
    reap(pid);
    let step = Step::ALL.into_iter().find(|s| *s as i32 == step);
    Err(SpawnError { step, error })
}

/// Waits for a child that exited on its own.
fn reap(pid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: waits for our own child; no memory is shared with the kernel
    // beyond `status`.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
        && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
    {}
}

/// Blocks every signal in this thread until dropped, restoring the mask.
struct BlockedSignals(libc::sigset_t);

impl BlockedSignals {
    fn new() -> Self {
        let mut all = MaybeUninit::<libc::sigset_t>::uninit();
        let mut old = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigfillset initialises `all`; pthread_sigmask fills `old`.
        unsafe {
            libc::sigfillset(all.as_mut_ptr());
            libc::pthread_sigmask(libc::SIG_SETMASK, all.as_ptr(), old.as_mut_ptr());
            BlockedSignals(old.assume_init())
        }
    }
}

impl Drop for BlockedSignals {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved by `new`.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut()) };
    }
}

/// Returns `fd` if it is above 3, else a duplicate of it that is (close on
/// exec, like the original), so that moving the job's descriptors to 0..=3
/// never overwrites a source that is still to be moved.
pub(crate) fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    if fd.as_raw_fd() > 3 {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor or -1.
    let dup = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 4) };
    if dup < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `dup` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(dup) })
}

extern "C" fn child_main(arg: *mut c_void) -> c_int {
    // SAFETY: `spawn` passes a `Plan` that outlives this child's exec.
    let plan = unsafe { &*(arg as *const Plan<'_>) };
    // SAFETY: we are the child of `spawn`, which is what `prepare` expects.
    let (step, errno) = match unsafe { prepare(plan) } {
        Err(failure) => failure,
        Ok(()) => {
            // SAFETY: all pointers come from the plan and are NUL-terminated.
            unsafe { libc::execve(plan.program.as_ptr(), plan.argv.as_ptr(), plan.envp) };
            (Step::Exec, errno())
        }
    };
    plan.failure.errno.store(errno, Ordering::SeqCst);
    plan.failure.step.store(step as i32, Ordering::SeqCst);
    // SAFETY: ends only this child (it is its own thread group).
    unsafe { libc::_exit(127) }
}

fn errno() -> c_int {
    // SAFETY: reads this thread's errno (the suspended parent thread's, which
    // shares our TLS and does not look at it until clone returns).
    unsafe { *libc::__errno_location() }
}

/// `Err((step, errno))` if `result` is negative.
fn check(step: Step, result: libc::c_long) -> Result<(), (Step, c_int)> {
    if result < 0 { Err((step, errno())) } else { Ok(()) }
}

/// Everything between `clone` and `exec`. Order matters: the process joins
/// its cgroups before it can run anything of the job's, and drops its
/// privileges last, once it no longer needs them.
///
/// SAFETY: only to be called in the child made by [`spawn`].
unsafe fn prepare(plan: &Plan<'_>) -> Result<(), (Step, c_int)> {
    unsafe {
        // The kernel's `struct sigaction` for SIG_DFL, no flags, empty mask
        // is all zeroes on every architecture.
        let default_action = [0u64; 4];
        for signal in 1..=64 {
            if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                let done =
                    libc::syscall(libc::SYS_rt_sigaction, signal, default_action.as_ptr(), 0usize, 8usize);
                check(Step::Signals, done)?;
            }
        }
        check(Step::ProcessGroup, libc::setpgid(0, 0).into())?;
        for &procs in plan.cgroups {
            if libc::write(procs, b"0".as_ptr().cast(), 1) != 1 {
                return Err((Step::Cgroup, errno()));
            }
        }
        if plan.isolate {
            isolate()?;
        }
        for (target, &fd) in plan.stdio.iter().enumerate() {
            check(Step::Descriptors, libc::dup2(fd, target as c_int).into())?;
        }
        let mut first_closed = 3;
        if let Some(fd) = plan.fd3 {
            check(Step::Descriptors, libc::dup2(fd, 3).into())?;
            first_closed = 4;
        }
        check(Step::Descriptors, libc::syscall(libc::SYS_close_range, first_closed, u32::MAX, 0))?;
        // Lowering it needs privileges that the switch drops: first.
        if plan.reset_oom_score {
            write_file(Step::OomScore, c"/proc/self/oom_score_adj", b"0")?;
        }
        if let Some(user) = &plan.user {
            if user.switch {
                let groups = libc::syscall(libc::SYS_setgroups, user.groups.len(), user.groups.as_ptr());
                check(Step::Groups, groups)?;
                check(Step::Gid, libc::syscall(libc::SYS_setresgid, user.gid, user.gid, user.gid))?;
                check(Step::Uid, libc::syscall(libc::SYS_setresuid, user.uid, user.uid, user.uid))?;
                if user.uid != 0 {
                    drop_capabilities()?;
                }
            }
            check(Step::Home, libc::chdir(user.home.as_ptr()).into())?;
        }
        let empty = 0u64;
        let unblocked = libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_SETMASK, &empty, 0usize, 8usize);
        check(Step::Signals, unblocked)
    }
}

/// Empties every capability set but the bounding one (which only limits
/// what a setuid or file-capability program may gain, as for any user).
/// The switch from root to another user clears the permitted, effective and
/// ambient sets only where the server runs without SECBIT_KEEP_CAPS and
/// SECBIT_NO_SETUID_FIXUP, and never the inheritable set, which a program's
/// file capabilities turn into permitted ones at exec.
unsafe fn drop_capabilities() -> Result<(), (Step, c_int)> {
    unsafe {
        let ambient = libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
        check(Step::Capabilities, ambient.into())?;
        // struct __user_cap_header_struct { version, pid } and, for
        // version 3, two struct __user_cap_data_struct { effective,
        // permitted, inheritable }: all zero.
        let header: [u32; 2] = [0x2008_0522, 0];
        let data = [0u32; 6];
        check(Step::Capabilities, libc::syscall(libc::SYS_capset, header.as_ptr(), data.as_ptr()))
    }
}

/// Writes `data` to the file at `path` in one write.
unsafe fn write_file(step: Step, path: &CStr, data: &[u8]) -> Result<(), (Step, c_int)> {
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        check(step, fd.into())?;
        let written = libc::write(fd, data.as_ptr().cast(), data.len());
        let error = errno();
        libc::close(fd);
        if written != data.len() as isize {
            return Err((step, if written < 0 { error } else { libc::EIO }));
        }
        Ok(())
    }
}

/// The isolated job's own view, inside its new namespaces: mount changes
/// stay private, a /proc that shows only its PID namespace, an empty /tmp,
/// and the loopback interface up (the only one a new network namespace has).
unsafe fn isolate() -> Result<(), (Step, c_int)> {
    unsafe {
        let none = std::ptr::null::<c_char>();
        let private =
            libc::mount(none, c"/".as_ptr(), none, libc::MS_REC | libc::MS_PRIVATE, std::ptr::null());
        check(Step::Isolate, private.into())?;
        let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        let proc =
            libc::mount(c"proc".as_ptr(), c"/proc".as_ptr(), c"proc".as_ptr(), flags, std::ptr::null());
        check(Step::Isolate, proc.into())?;
        let tmp = libc::mount(
            c"tmpfs".as_ptr(),
            c"/tmp".as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            c"mode=1777".as_ptr().cast(),
        );
        check(Step::Isolate, tmp.into())?;
        let socket = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        check(Step::Isolate, socket.into())?;
        let mut request: libc::ifreq = std::mem::zeroed();
        for (to, from) in request.ifr_name.iter_mut().zip(c"lo".to_bytes()) {
            *to = *from as c_char;
        }
        request.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        let up = libc::ioctl(socket, libc::SIOCSIFFLAGS, &request);
        let error = errno();
        libc::close(socket);
        if up < 0 {
            return Err((Step::Isolate, error));
        }
        Ok(())
    }
}
