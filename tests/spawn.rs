//! What a job's process starts with: exactly fds 0, 1 and 2, default signal
//! handling, a stdin pipe when asked for, and a policy user's identity and
//! clean environment. Real processes through the jobs library.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::sync::{Mutex, MutexGuard};

use crate::util::TempDir;
use rcmd::jobs::{JobId, JobPool, JobSpec, PoolConfig, RunAs, Status, Termination};

fn pool(dir: &TempDir) -> JobPool {
    JobPool::new(PoolConfig::new(dir.path().join("data"))).expect("pool")
}

fn sh(script: &str) -> JobSpec {
    JobSpec::new("sh", vec!["-c".into(), script.into()])
}

async fn stdout_of(pool: &JobPool, id: JobId) -> String {
    let status = pool.wait(id).await.unwrap();
    assert_eq!(status.status(), Status::Completed(Termination::Exited(0)), "{status:?}");
    String::from_utf8(pool.output(id).unwrap().stdout).unwrap()
}

/// Undoes a change to this process's oom_score_adj. The score is the whole
/// test process's, so one test holds it at a time.
struct OomScore {
    old: String,
    _one_at_a_time: MutexGuard<'static, ()>,
}

static OOM_SCORE: Mutex<()> = Mutex::new(());

impl OomScore {
    fn set(value: &str) -> OomScore {
        let one_at_a_time = OOM_SCORE.lock().unwrap_or_else(|e| e.into_inner());
        let old = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap();
        std::fs::write("/proc/self/oom_score_adj", value).unwrap();
        OomScore { old, _one_at_a_time: one_at_a_time }
    }
}

impl Drop for OomScore {
    // Runs before the lock is released: the next test finds the score as it was.
    fn drop(&mut self) {
        let _ = std::fs::write("/proc/self/oom_score_adj", self.old.trim());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_gets_exactly_stdin_stdout_and_stderr() {
    let dir = TempDir::new("spawn-fds");
    // A descriptor this process holds without close-on-exec, like the ones
    // a server inherits from whatever started it.
    let file = std::fs::File::open("/dev/null").unwrap();
    // A high number, as an inherited one often is; F_DUPFD takes the first
    // free one from there, so no other test's descriptor is replaced, and
    // leaves close-on-exec off.
    // SAFETY: fcntl only duplicates a descriptor we hold.
    let raw = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_DUPFD, 251) };
    assert!(raw >= 251, "{}", std::io::Error::last_os_error());
    // SAFETY: the new descriptor is this test's own; the OwnedFd closes it.
    let _leaked = unsafe { OwnedFd::from_raw_fd(raw) };
    let pool = pool(&dir);
    let id = pool.try_create(sh("ls /proc/$$/fd")).await.unwrap();
    assert_eq!(stdout_of(&pool, id).await, "0\n1\n2\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_starts_with_default_signal_handling_and_nothing_blocked() {
    let dir = TempDir::new("spawn-signals");
    let pool = pool(&dir);
    // This thread blocks SIGUSR1 while it starts the job, and the test
    // process ignores SIGPIPE (as Rust programs do).
    let id = {
        let mut set = nix::sys::signal::SigSet::empty();
        set.add(nix::sys::signal::Signal::SIGUSR1);
        let old = set.thread_swap_mask(nix::sys::signal::SigmaskHow::SIG_BLOCK).unwrap();
        let id = pool.try_create(JobSpec::new("cat", vec!["/proc/self/status".into()])).await.unwrap();
        old.thread_set_mask().unwrap();
        id
    };
    let status = stdout_of(&pool, id).await;
    for field in ["SigBlk", "SigIgn"] {
        let line = status.lines().find(|l| l.starts_with(field)).unwrap();
        assert!(line.ends_with("0000000000000000"), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stdin_pipe_carries_what_is_written_and_closes_when_dropped() {
    let dir = TempDir::new("spawn-stdin");
    let pool = pool(&dir);
    let id = pool.try_create(JobSpec { stdin: true, ..JobSpec::new("cat", vec![]) }).await.unwrap();
    let stdin = pool.stdin(id).expect("a stdin pipe");
    assert!(pool.stdin(id).is_err(), "taken once");
    let hello = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"hello\n"))]);
    stdin.copy_from(hello).await;
    assert_eq!(stdout_of(&pool, id).await, "hello\n");
    let plain = pool.try_create(JobSpec::new("true", vec![])).await.unwrap();
    assert!(pool.stdin(plain).is_err(), "no pipe unless asked for");
}

fn nobody(home: &std::path::Path) -> RunAs {
    RunAs {
        user: "nobody".into(),
        uid: 65534,
        gid: 65534,
        groups: vec![65534],
        home: home.to_owned(),
        shell: "/bin/sh".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: runs a job as nobody"]
async fn a_job_as_another_user_has_its_ids_home_and_only_five_variables() {
    if !nix::unistd::geteuid().is_root() {
        panic!("this test needs root (CI runs as root)");
    }
    let dir = TempDir::new("spawn-run-as");
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let _oom = OomScore::set("100");
    let pool = pool(&dir);
    let as_nobody = |spec: JobSpec| JobSpec { run_as: Some(nobody(&home)), ..spec };
    let id = pool
        .try_create(as_nobody(sh("id -u; id -g; id -G; pwd; cat /proc/self/oom_score_adj")))
        .await
        .unwrap();
    // A positive score stays (it protects nothing).
    assert_eq!(stdout_of(&pool, id).await, format!("65534\n65534\n65534\n{}\n100\n", home.display()));
    let id = pool.try_create(as_nobody(JobSpec::new("env", vec![]))).await.unwrap();
    let env = stdout_of(&pool, id).await;
    let mut names: Vec<&str> = env.lines().map(|l| l.split('=').next().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["HOME", "LOGNAME", "PATH", "SHELL", "USER"], "{env}");
    assert!(env.contains("USER=nobody\n") && env.contains(&format!("HOME={}\n", home.display())));
    // The server's own jobs keep the server's environment.
    let id = pool.try_create(sh("cat /proc/self/oom_score_adj; env")).await.unwrap();
    let own = stdout_of(&pool, id).await;
    assert!(own.starts_with("100\n") && own.lines().count() > 5, "{own}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a negative OOM score needs CAP_SYS_RESOURCE, which root lacks on these machines"]
async fn no_job_keeps_the_protection_from_the_oom_killer_that_the_server_gave_itself() {
    let dir = TempDir::new("spawn-oom-score");
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let pool = pool(&dir);
    let _protected = OomScore::set("-500");
    let as_nobody = JobSpec { run_as: Some(nobody(&home)), ..sh("cat /proc/self/oom_score_adj") };
    for spec in [sh("cat /proc/self/oom_score_adj"), as_nobody] {
        let id = pool.try_create(spec).await.unwrap();
        assert_eq!(stdout_of(&pool, id).await, "0\n");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: runs a job as nobody"]
async fn a_failed_step_before_exec_is_the_jobs_error() {
    if !nix::unistd::geteuid().is_root() {
        panic!("this test needs root (CI runs as root)");
    }
    let dir = TempDir::new("spawn-no-home");
    let pool = pool(&dir);
    let spec = JobSpec { run_as: Some(nobody(&dir.path().join("missing"))), ..JobSpec::new("true", vec![]) };
    let id = pool.try_create(spec).await.unwrap();
    match pool.status(id).unwrap().status() {
        Status::Error(message) => assert!(
            message.contains("cannot enter the user's home directory") && message.contains("No such file"),
            "{message}"
        ),
        other => panic!("expected an error, got {other:?}"),
    }
    let id = pool.try_create(JobSpec::new("/no/such/program", vec![])).await.unwrap();
    assert!(matches!(pool.status(id).unwrap().status(), Status::Error(m) if m.contains("No such file")));
}

/// Capability sets of /proc/self/status, as "NAME:HEX" words.
const CAPS: &str = "grep ^Cap /proc/self/status | tr -d ' \\t' | tr '\\n' ' '";

#[test]
#[ignore = "needs root: raises a capability and runs a job as nobody"]
fn a_job_as_another_user_keeps_no_capability_of_the_servers_threads() {
    if !nix::unistd::geteuid().is_root() {
        panic!("this test needs root (CI runs as root)");
    }
    // This thread, and so the runtime's threads it starts, which clone the
    // jobs: CAP_NET_RAW inheritable and ambient. The switch to another user
    // clears the ambient set but never the inheritable one.
    const CAP_NET_RAW: u32 = 13;
    let header: [u32; 2] = [0x2008_0522, 0];
    let mut data = [0u32; 6];
    // SAFETY: capget/capset with a version 3 header and two data structs.
    unsafe {
        assert_eq!(libc::syscall(libc::SYS_capget, header.as_ptr(), data.as_mut_ptr()), 0);
        data[2] |= 1 << CAP_NET_RAW;
        assert_eq!(libc::syscall(libc::SYS_capset, header.as_ptr(), data.as_ptr()), 0);
        let raised = libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_RAISE, CAP_NET_RAW, 0, 0);
        assert_eq!(raised, 0, "{}", std::io::Error::last_os_error());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let dir = TempDir::new("spawn-caps");
        let home = dir.path().join("home");
        std::fs::create_dir(&home).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let pool = pool(&dir);
        let own = pool.try_create(sh(CAPS)).await.unwrap();
        let own = stdout_of(&pool, own).await;
        assert!(own.contains("CapInh:0000000000002000") && own.contains("CapAmb:0000000000002000"), "{own}");
        let id = pool.try_create(JobSpec { run_as: Some(nobody(&home)), ..sh(CAPS) }).await.unwrap();
        assert_eq!(
            stdout_of(&pool, id).await,
            "CapInh:0000000000000000 CapPrm:0000000000000000 CapEff:0000000000000000 \
             CapBnd:000001fffeffffff CapAmb:0000000000000000 "
                .replace("000001fffeffffff", &bounding()),
        );
    });
}

/// This process's bounding set, which jobs keep.
fn bounding() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status.lines().find_map(|l| l.strip_prefix("CapBnd:")).unwrap().trim().to_owned()
}
