//! A server on a pure cgroup v2 host whose group was delegated to it, as
//! systemd's `Delegate=yes` does, and which it shares with nothing: it moves
//! itself into a leaf of its own so that its group can pass the memory and
//! pids controllers to jobs, and then enforces those limits.
//!
//! These hybrid machines bind memory and pids to v1 (their v2 hierarchy
//! offers only `hugetlb`), so the test is ignored here. On a pure cgroup v2
//! host whose root passes memory and pids down, run it as root:
//! `tests/run.sh delegated::`. It makes one group of its own
//! directly under the root, `rcmdt-deleg-PID`, and removes it, with
//! everything in it, even when it fails.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::util::server::ServerProcess;
use crate::util::wait_until;
use serde_json::Value;

/// A job that allocates 200 MiB.
const HOG: &str = r#"BEGIN { s = "x"; while (length(s) < 209715200) s = s s; print length(s) }"#;

#[test]
#[ignore = "needs a pure cgroup v2 host whose root cgroup passes memory and pids down (these hybrid machines bind them to v1); run as root with --include-ignored there"]
fn a_server_alone_in_its_delegated_v2_group_moves_into_a_leaf_and_enforces_memory_and_pids() {
    let root = v2_root();
    let test = TestGroup::make(&root);
    let svc = test.path.join("svc");
    std::fs::create_dir(&svc).unwrap_or_else(|e| panic!("cannot create {}: {e}", svc.display()));
    require(
        svc.join("memory.swap.max").exists(),
        "the kernel does not account swap per cgroup (no memory.swap.max; boot with swapaccount=1), so the server offers no memory limit",
    );

    // The server starts in `svc`, as systemd starts a service in its group.
    let procs = CString::new(svc.join("cgroup.procs").as_os_str().as_bytes()).unwrap();
    let server = ServerProcess::start_with(&[], &[], move |_, _, command| {
        // SAFETY: between fork and exec the closure only calls open(2),
        // write(2) and close(2), which are async-signal-safe, and allocates
        // nothing (the path was made before the fork).
        unsafe {
            command.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let written = libc::write(fd, b"0".as_ptr().cast(), 1);
                let error = std::io::Error::last_os_error();
                libc::close(fd);
                if written == 1 { Ok(()) } else { Err(error) }
            });
        }
    });
    let pid = server.pid();

    // It says what it did, and that memory and pids are v2 limits now. (It
    // finds its cgroups before it listens, so the line is there by now.)
    let (server_name, log) = (format!("rcmd-{pid}-{}", start_time(pid)), server.log());
    let (leaf, folder) = (svc.join(format!("{server_name}-0")), svc.join(format!("{server_name}-1")));
    let Some(cgroups) = log.lines().find(|l| l.contains("cgroups: ")) else {
        panic!("no cgroups line: {log}")
    };
    assert!(cgroups.contains(&format!("a cgroup per job in {}", folder.display())), "{cgroups}");
    assert!(cgroups.contains("memory: v2") && cgroups.contains("pids: v2"), "{cgroups}");
    assert!(log.contains("moved the server into a leaf group of its own"), "{log}");

    // It is in its leaf, every thread of it; its group holds nothing else
    // (its guard, started after the move, is in the leaf too) and passes
    // memory and pids down.
    let group_of = |cgroup: &str| {
        let line = cgroup.lines().find_map(|l| l.strip_prefix("0::/")).expect("a cgroup v2 line");
        root.join(line)
    };
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    for thread in threads.map(|t| t.unwrap().path()) {
        let cgroup = std::fs::read_to_string(thread.join("cgroup")).unwrap();
        assert_eq!(group_of(&cgroup), leaf, "{}", thread.display());
    }
    let read =
        |path: PathBuf| std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(read(svc.join("cgroup.procs")), "", "the server's group holds no process now");
    // The server and its guard, started after the move (were it started
    // before, it would have stayed in the group and kept it from passing
    // controllers on).
    let in_leaf: Vec<String> = read(leaf.join("cgroup.procs")).lines().map(str::to_owned).collect();
    let guard = in_leaf.iter().find(|&p| *p != pid.to_string()).cloned().unwrap_or_default();
    let guard_cmdline = std::fs::read_to_string(format!("/proc/{guard}/cmdline")).unwrap_or_default();
    assert!(
        in_leaf.len() == 2 && in_leaf.contains(&pid.to_string()) && guard_cmdline.contains("__guard"),
        "{in_leaf:?} {guard_cmdline:?}"
    );
    let passed = read(svc.join("cgroup.subtree_control"));
    assert!(passed.contains("memory") && passed.contains("pids"), "{passed}");

    // 64 MiB and a job that wants 200: the kernel's OOM killer ends it.
    let out = server.rcmd("owner", &["run", "--memory", "64M", "awk", HOG]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(137), "{stderr}");
    assert!(stderr.contains("out of memory (limit 64 MiB)"), "{stderr}");
    let status: Value = serde_json::from_str(&server.ok("owner", &["--json", "status", "1"])).unwrap();
    assert_eq!(
        (status["signal"].as_i64(), status["oom_killed"].as_bool()),
        (Some(9), Some(true)),
        "{status}"
    );

    // A fork bomb under --pids 32 (its main process forks once, then
    // sleeps): the kernel refuses its forks past 32.
    let bomb = "sh -c 'f() { f | f & }; f'; exec sleep 1000";
    let created: Value =
        serde_json::from_str(&server.ok("owner", &["--json", "exec", "--pids", "32", "sh", "-c", bomb]))
            .unwrap();
    let id = created["id"].as_u64().unwrap().to_string();
    let status: Value = serde_json::from_str(&server.ok("owner", &["--json", "status", &id])).unwrap();
    let job_pid = status["pid"].as_u64().unwrap();
    let job_group = group_of(&read(PathBuf::from(format!("/proc/{job_pid}/cgroup"))));
    assert_eq!(job_group.parent(), Some(folder.as_path()), "the job is in a group in the server's folder");
    assert_eq!(read(job_group.join("pids.max")).trim(), "32");
    wait_until("the bomb hits its limit", Duration::from_secs(30), || {
        // `max N`: forks refused at the limit (newer kernels add more lines).
        let events = read(job_group.join("pids.events"));
        events.lines().find_map(|l| l.strip_prefix("max ")?.trim().parse::<u64>().ok()).is_some_and(|n| n > 0)
    });
    let current: u64 = read(job_group.join("pids.current")).trim().parse().unwrap();
    assert!(current <= 32, "{current} processes");
    server.ok("owner", &["stop", &id]);
    wait_until("the bomb's group is gone", Duration::from_secs(30), || !job_group.exists());
}

/// Fails the test, saying what this host lacks, unless `has`.
fn require(has: bool, lacks: &str) {
    assert!(has, "this host cannot run this test: {lacks}");
}

/// Where the whole cgroup v2 hierarchy is mounted, root and all.
fn v2_root() -> PathBuf {
    require(nix::unistd::geteuid().is_root(), "the test must run as root");
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    // `ID PARENT MAJ:MIN ROOT POINT ... - cgroup2 ...`
    let root = mountinfo.lines().filter(|l| l.contains(" - cgroup2 ")).find_map(|l| {
        let fields: Vec<&str> = l.split(' ').collect();
        (fields[3] == "/").then(|| PathBuf::from(fields[4]))
    });
    let Some(root) = root else {
        panic!("this host cannot run this test: no cgroup v2 hierarchy is mounted from its root")
    };
    let passed = std::fs::read_to_string(root.join("cgroup.subtree_control")).unwrap();
    let passes = |controller| passed.split_whitespace().any(|c| c == controller);
    require(
        passes("memory") && passes("pids"),
        &format!(
            "its root cgroup {} does not pass memory and pids down (it passes {passed:?})",
            root.display()
        ),
    );
    root
}

/// The test's group directly under the root, with memory and pids passed
/// down: killed and removed with everything in it when dropped.
struct TestGroup {
    path: PathBuf,
}

impl TestGroup {
    fn make(root: &Path) -> TestGroup {
        let path = root.join(format!("rcmdt-deleg-{}", std::process::id()));
        std::fs::create_dir(&path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        let group = TestGroup { path };
        require(group.path.join("cgroup.kill").exists(), "cgroup v2 has no cgroup.kill (Linux < 5.14)");
        let write = |file: &str, value: &str| {
            let path = group.path.join(file);
            std::fs::write(&path, value)
                .unwrap_or_else(|e| panic!("cannot write {value} to {}: {e}", path.display()));
        };
        // Bounds on everything the test starts, whatever goes wrong.
        write("memory.max", &(1u64 << 30).to_string());
        write("pids.max", "1024");
        write("cgroup.subtree_control", "+memory");
        write("cgroup.subtree_control", "+pids");
        group
    }
}

impl Drop for TestGroup {
    /// Kills every process in the group (the server, its guard, its jobs:
    /// nothing else is in it) and removes the groups in it, deepest first.
    fn drop(&mut self) {
        let _ = std::fs::write(self.path.join("cgroup.kill"), "1");
        let deadline = Instant::now() + Duration::from_secs(30);
        let populated = || {
            std::fs::read_to_string(self.path.join("cgroup.events")).is_ok_and(|e| e.contains("populated 1"))
        };
        // Polls for the kernel to finish the kill (no event to wait on here).
        while populated() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        remove_tree(&self.path);
        if self.path.exists() {
            eprintln!("could not remove {}", self.path.display());
        }
    }
}

/// Removes the group at `path` and every group below it.
fn remove_tree(path: &Path) {
    for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&entry.path());
        }
    }
    let _ = std::fs::remove_dir(path);
}

/// A process's start time in clock ticks (field 22 of its stat), as the
/// server names its groups with it.
fn start_time(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    stat.rsplit_once(')').unwrap().1.split_whitespace().nth(19).unwrap().parse().unwrap()
}
