//! Limits, isolation and the guard through a real server: memory (OOM
//! reported), pids (a fork bomb held), CPU and IO, the server's ceilings,
//! `--isolate`, a SIGKILLed server, and a server without cgroups. These run
//! as root on this machine's cgroups (CI runs as root).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use crate::util::server::{ServerProcess, get_json, http_as};
use crate::util::{Frozen, TempDir, marked_sleep, pids_matching, populated_groups, wait_until};
use serde_json::{Value, json};

/// `PUT /jobs` with `body`: (status, JSON answer).
async fn put_job(client: &reqwest::Client, server: &ServerProcess, body: Value) -> (u16, Value) {
    let response = client.put(server.url("/jobs")).json(&body).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn wait_status(client: &reqwest::Client, server: &ServerProcess, id: u64) -> Value {
    get_json(client, server, &format!("/jobs/{id}/status?wait=true")).await
}

/// Milliseconds between a finished job's start and end.
fn elapsed_ms(status: &Value) -> f64 {
    let time = |field: &str| {
        time::OffsetDateTime::parse(
            status[field].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    (time("finished_at") - time("started_at")).as_seconds_f64() * 1000.0
}

const HOG: &str = r#"BEGIN { s = "x"; while (length(s) < 209715200) s = s s; print length(s) }"#;

#[test]
#[ignore = "needs root: the server makes cgroups"]
fn a_job_past_its_memory_limit_is_oom_killed_reported_and_run_exits_137() {
    let server = ServerProcess::start(&[], &[]);
    let out = server.rcmd("owner", &["run", "--memory", "64M", "awk", HOG]);
    assert_eq!(out.status.code(), Some(137), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("out of memory (limit 64 MiB)"), "{stderr}");
    let line = server.ok("owner", &["status", "1"]);
    assert!(line.trim_end().ends_with("out of memory (limit 64 MiB)"), "{line}");
    let status: Value = serde_json::from_str(&server.ok("owner", &["--json", "status", "1"])).unwrap();
    assert_eq!((status["signal"].as_i64(), status["oom_killed"].as_bool()), (Some(9), Some(true)));
    assert_eq!(status["limits"], json!({"memory": 64 << 20}));
    assert!(status["usage"]["memory_peak"].as_u64().unwrap() <= 64 << 20, "{status}");
    // Without a limit the same job is fine.
    let out = server.rcmd("owner", &["run", "awk", HOG]);
    assert!(out.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: the server makes cgroups"]
async fn a_fork_bomb_is_held_by_its_pids_limit_while_others_are_served() {
    let server = ServerProcess::start(&["other"], &[]);
    let owner = http_as(&server, "owner");
    // The main process only forks once, before the bomb: it stays, whatever
    // the bomb's forks do.
    let bomb = "sh -c 'f() { f | f & }; f'; exec sleep 1000";
    let (code, created) =
        put_job(&owner, &server, json!({"cmd": "sh", "args": ["-c", bomb], "limits": {"pids": 32}})).await;
    assert_eq!(code, 200, "{created}");
    let id = created["id"].as_u64().unwrap();
    // Whatever happens below, the server's end kills the bomb through its
    // cgroup (and the pids limit bounds it meanwhile).
    let pid = get_json(&owner, &server, &format!("/jobs/{id}/status")).await["pid"].as_u64().unwrap();
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let group = cgroups.lines().find_map(|l| l.split_once(":pids:").map(|(_, path)| path)).unwrap();
    let group = PathBuf::from(format!("/sys/fs/cgroup/pids{group}"));
    let read = |file: &str| std::fs::read_to_string(group.join(file)).unwrap_or_default();
    wait_until("the bomb hits its limit", Duration::from_secs(30), || read("pids.events").trim() != "max 0");
    let other = http_as(&server, "other");
    for _ in 0..20 {
        let (code, created) = put_job(&other, &server, json!({"cmd": "true"})).await;
        assert_eq!(code, 200);
        let status = wait_status(&other, &server, created["id"].as_u64().unwrap()).await;
        assert_eq!(status["exit_code"], 0);
        assert!(read("pids.current").trim().parse::<u64>().unwrap_or(0) <= 32);
    }
    let stopped: Value =
        owner.post(server.url(&format!("/jobs/{id}/stop"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(stopped["status"], "completed");
    wait_until("the bomb's group is gone", Duration::from_secs(10), || !group.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: the server makes cgroups"]
async fn a_cpu_limit_keeps_a_busy_loop_to_its_share_by_its_own_usage() {
    let server = ServerProcess::start(&[], &[]);
    let owner = http_as(&server, "owner");
    let busy =
        json!({"cmd": "timeout", "args": ["3", "sh", "-c", "while :; do :; done"], "limits": {"cpus": 0.2}});
    let (code, created) = put_job(&owner, &server, busy).await;
    assert_eq!(code, 200, "{created}");
    let status = wait_status(&owner, &server, created["id"].as_u64().unwrap()).await;
    let cpu_ms = status["usage"]["cpu_ms"].as_u64().unwrap() as f64;
    let wall_ms = elapsed_ms(&status);
    assert!(cpu_ms > 0.0 && cpu_ms <= 0.25 * wall_ms + 50.0, "{cpu_ms} ms of CPU in {wall_ms} ms: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: the server makes cgroups"]
async fn an_io_limit_slows_a_direct_write_to_its_rate() {
    let server = ServerProcess::start(&[], &[]);
    let owner = http_as(&server, "owner");
    let file = server.data.path().join("io-test");
    let of = format!("of={}", file.display());
    let write = json!({"cmd": "dd", "args": ["if=/dev/zero", of, "bs=1M", "count=20", "oflag=direct"],
                       "limits": {"io_write_bps": 5 << 20}});
    let (code, created) = put_job(&owner, &server, write).await;
    assert_eq!(code, 200, "{created}");
    let status = wait_status(&owner, &server, created["id"].as_u64().unwrap()).await;
    assert_eq!(status["exit_code"], 0, "{status}");
    assert!(elapsed_ms(&status) >= 3500.0, "20 MiB at 5 MiB/s took {} ms", elapsed_ms(&status));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: the server makes cgroups"]
async fn the_servers_limits_are_defaults_and_an_ask_above_one_is_400_naming_it() {
    let server = ServerProcess::start(&[], &["--job-memory", "1G", "--job-pids", "100"]);
    let owner = http_as(&server, "owner");
    let (code, error) =
        put_job(&owner, &server, json!({"cmd": "true", "limits": {"memory": 2u64 << 30}})).await;
    assert_eq!(code, 400);
    assert!(error["error"].as_str().unwrap().contains("ceiling of 1 GiB (--job-memory)"), "{error}");
    let (code, error) = put_job(&owner, &server, json!({"cmd": "true", "limits": {"pids": 101}})).await;
    assert_eq!(code, 400);
    assert!(error["error"].as_str().unwrap().contains("ceiling of 100 (--job-pids)"), "{error}");
    let (code, error) = put_job(&owner, &server, json!({"cmd": "true", "limits": {"swap": 1}})).await;
    assert_eq!(code, 400, "unknown limits are refused: {error}");
    let (_, created) = put_job(&owner, &server, json!({"cmd": "true", "limits": {"pids": 50}})).await;
    let status = wait_status(&owner, &server, created["id"].as_u64().unwrap()).await;
    assert_eq!(status["limits"], json!({"memory": 1u64 << 30, "pids": 50}));
    let out = server.rcmd("owner", &["exec", "--memory", "4G", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--job-memory"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: the server makes cgroups"]
async fn a_cpus_limit_below_the_kernels_smallest_quota_is_refused_everywhere_naming_the_least() {
    const LEAST: &str = "the least is 0.01";
    let server = ServerProcess::start(&[], &[]);
    let owner = http_as(&server, "owner");
    let (code, error) = put_job(&owner, &server, json!({"cmd": "true", "limits": {"cpus": 0.005}})).await;
    assert_eq!(code, 400, "not raised to the kernel's minimum: {error}");
    assert!(error["error"].as_str().unwrap().contains(LEAST), "{error}");
    assert!(
        error["error"].as_str().unwrap().starts_with("a cpus limit of 0.005 is too small"),
        "the limit's own rule, not the body's shape: {error}"
    );
    let (code, created) = put_job(&owner, &server, json!({"cmd": "true", "limits": {"cpus": 0.01}})).await;
    assert_eq!(code, 200, "the least itself is taken: {created}");
    let status = wait_status(&owner, &server, created["id"].as_u64().unwrap()).await;
    assert_eq!((status["exit_code"].as_i64(), &status["limits"]), (Some(0), &json!({"cpus": 0.01})));
    let out = server.rcmd("owner", &["run", "--cpus", "0.001", "true"]);
    assert_eq!(out.status.code(), Some(2), "the CLI refuses it before asking");
    assert!(String::from_utf8_lossy(&out.stderr).contains(LEAST), "{}", String::from_utf8_lossy(&out.stderr));
    let help = server.rcmd("owner", &["run", "--help"]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("at least 0.01"));
    let out = std::process::Command::new(crate::util::server::RCMD)
        .args(["serve", "--listen", "127.0.0.1:0", "--job-cpus", "0.001"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "the server does not start");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--job-cpus") && stderr.contains(LEAST), "{stderr}");
}

#[test]
#[ignore = "needs root: an isolated job gets namespaces and cgroups"]
fn an_isolated_job_sees_only_itself_loopback_and_its_own_tmp_and_exits_as_its_command() {
    let server = ServerProcess::start(&[], &[]);
    let marker = format!("rcmdt-isolated-{}", std::process::id());
    let script = format!(
        "touch /tmp/{marker}; ps -e -o comm=; cut -d: -f1 /proc/net/dev | tail -n +3; \
         sh -c 'sleep 0 &'; i=0; while ps -e -o stat= | grep -q Z; do i=$((i+1)); [ $i -gt 200 ] && exit 9; sleep 0.05; done; \
         ls /tmp; exit 3"
    );
    let out = server.rcmd("owner", &["run", "--isolate", "sh", "-c", &script]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "the command's own exit status; the zombie was reaped: {stdout}");
    let lines: Vec<&str> = stdout.lines().map(str::trim).collect();
    assert_eq!(
        &lines[..4],
        ["rcmd-init", "sh", "ps", "lo"],
        "only the job's processes and loopback: {stdout}"
    );
    assert_eq!(lines.last(), Some(&marker.as_str()), "its /tmp holds only its own file: {stdout}");
    assert!(!std::path::Path::new("/tmp").join(&marker).exists(), "the host cannot see it");
    let out = server.rcmd("owner", &["run", "--isolate", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(out.status.code(), Some(143), "killed by its own signal");
}

#[test]
#[ignore = "needs root: the server makes cgroups"]
fn a_sigkilled_servers_guard_kills_every_process_of_its_jobs_even_when_stopped_or_killed_first() {
    let dir = TempDir::new("limits-guard");
    let sleep = marked_sleep(dir.path(), "guard");
    let server = ServerProcess::start(&[], &[]);
    let script = format!(
        "i=0; while [ $i -lt 50 ]; do (setsid {sleep} 1000 >/dev/null 2>&1 &); i=$((i+1)); done; exec {sleep} 1000"
    );
    server.ok("owner", &["exec", "sh", "-c", &script]);
    wait_until("51 sleeps run", Duration::from_secs(30), || pids_matching(&sleep).len() == 51);
    // A job stops the guard; the server resumes it.
    let guard = nix::unistd::Pid::from_raw(guard_of(server.pid()).expect("the server's guard"));
    nix::sys::signal::kill(guard, nix::sys::signal::Signal::SIGSTOP).unwrap();
    wait_until("the server resumed its guard", Duration::from_secs(10), || {
        server.log().contains("the guard process was stopped; resuming it")
    });
    // A job kills the guard; the server starts another, which does the work.
    nix::sys::signal::kill(guard, nix::sys::signal::Signal::SIGKILL).unwrap();
    wait_until("the server started another guard", Duration::from_secs(10), || {
        guard_of(server.pid()).is_some_and(|new| new != guard.as_raw())
    });
    // The new guard runs before the server logs that it started it.
    wait_until("the server logged the new guard", Duration::from_secs(10), || {
        server.log().contains("the guard process was gone; started another")
    });
    let folders: Vec<PathBuf> = cgroup_folders_of(server.pid());
    assert!(!folders.is_empty());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.pid() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_until("no job process is left", Duration::from_secs(30), || pids_matching(&sleep).is_empty());
    wait_until("the server's cgroups are gone", Duration::from_secs(30), || {
        folders.iter().all(|f| !f.exists())
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: the server makes cgroups"]
async fn a_job_stuck_before_exec_is_killed_and_the_server_keeps_answering() {
    let server = ServerProcess::start(&[], &[]);
    let owner = http_as(&server, "owner");
    let (code, running) = put_job(&owner, &server, json!({"cmd": "sleep", "args": ["1000"]})).await;
    assert_eq!(code, 200, "{running}");
    // A job's process joins its group in the server's folder before it
    // runs anything of the job's: with the folder frozen, it stops there,
    // before exec, as one stopped by a signal or a debugger would.
    let core = cgroup_folders_of(server.pid()).into_iter().find(|f| f.starts_with("/sys/fs/cgroup/unified"));
    let core = core.expect("the server's cgroup v2 folder");
    let frozen = Frozen::freeze(core.clone());
    // More stuck starts than the server has async worker threads.
    const STUCK: usize = 4;
    let starts: Vec<_> = (0..STUCK)
        .map(|_| {
            let (owner, url) = (owner.clone(), server.url("/jobs"));
            tokio::spawn(async move {
                let response = owner.put(url).json(&json!({"cmd": "true"})).send().await.unwrap();
                (response.status().as_u16(), response.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let populated = || populated_groups(&core);
    wait_until("every start is stuck in its frozen group", Duration::from_secs(30), || populated() > STUCK);
    let status = tokio::time::timeout(
        Duration::from_secs(60),
        get_json(&owner, &server, &format!("/jobs/{}/status", running["id"])),
    )
    .await
    .expect("the server answers while job starts are stuck");
    assert_eq!(status["status"], "running", "{status}");
    assert!(populated() > STUCK, "the status call was answered while the starts were still stuck");
    for start in starts {
        let (code, created) = start.await.unwrap();
        assert_eq!(code, 200, "{created}");
        let status = wait_status(&owner, &server, created["id"].as_u64().unwrap()).await;
        assert_eq!(status["status"], "error", "{status}");
        let message = status["error_msg"].as_str().unwrap();
        assert!(message.contains("stopped before it could run the program"), "{message}");
    }
    drop(frozen);
    assert_eq!(server.ok("owner", &["run", "echo", "hi"]), "hi\n");
}

#[test]
#[ignore = "needs root: the server makes cgroups"]
fn a_server_stopped_while_a_start_is_stuck_before_exec_exits_and_leaves_nothing() {
    let dir = TempDir::new("limits-stop-stuck");
    let sleep = marked_sleep(dir.path(), "stop-stuck");
    let mut server = ServerProcess::start(&[], &[]);
    let folders = cgroup_folders_of(server.pid());
    let core = folders.iter().find(|f| f.starts_with("/sys/fs/cgroup/unified")).unwrap().clone();
    let frozen = Frozen::freeze(core.clone());
    let mut exec = server.command("owner", &["exec", &sleep, "1000"]).stdin(Stdio::null()).spawn().unwrap();
    wait_until("the start is stuck in its frozen group", Duration::from_secs(30), || {
        populated_groups(&core) == 1
    });
    // Still frozen: the server's shutdown waits for the start's watchdog,
    // and its runtime does not wait forever for the thread stuck in clone.
    let status = server.terminate();
    assert!(status.success(), "{status:?}: {}", server.log());
    assert!(folders.iter().all(|f| !f.exists()), "the server's cgroups are gone: {}", server.log());
    drop(frozen);
    let _ = exec.wait();
    assert!(pids_matching(&sleep).is_empty());
}

/// The pid of the server's guard process, if it has one running.
fn guard_of(server: u32) -> Option<i32> {
    // Children are listed by the thread that started them.
    let threads = std::fs::read_dir(format!("/proc/{server}/task")).ok()?;
    let children: String = threads
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .collect::<Vec<_>>()
        .join(" ");
    children.split_whitespace().filter_map(|p| p.parse::<i32>().ok()).find(|&pid| {
        std::fs::read_to_string(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.contains("__guard"))
    })
}

/// The cgroup folders a server made: `rcmd-PID-*` in each hierarchy's
/// directory of our own groups.
fn cgroup_folders_of(pid: u32) -> Vec<PathBuf> {
    let prefix = format!("rcmd-{pid}-");
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let mut found = Vec::new();
    for line in own.lines() {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next(), fields.next().unwrap(), fields.next().unwrap());
        let mount = match controllers {
            "" => "unified".to_owned(),
            c => c.trim_start_matches("name=").to_owned(),
        };
        let dir = PathBuf::from(format!("/sys/fs/cgroup/{mount}{path}"));
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                found.push(entry.path());
            }
        }
    }
    found
}

/// A unix user made for one test, removed when dropped.
struct TestUser {
    name: String,
    uid: u32,
    gid: u32,
}

impl TestUser {
    fn new() -> TestUser {
        let name = format!("rcmdt{}", std::process::id());
        let status = std::process::Command::new("useradd")
            .args(["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group", &name])
            .status()
            .unwrap();
        assert!(status.success(), "useradd {name}");
        let user = nix::unistd::User::from_name(&name).unwrap().unwrap();
        TestUser { name, uid: user.uid.as_raw(), gid: user.gid.as_raw() }
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = std::process::Command::new("userdel").arg(&self.name).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: makes a user to run the server without cgroups"]
async fn a_server_without_cgroups_refuses_limits_clearly_and_still_runs_jobs() {
    let user = TestUser::new();
    let server = ServerProcess::start_as(&[], &[], (user.uid, user.gid));
    assert!(server.log().contains("no cgroups"), "it says so once at start: {}", server.log());
    let owner = http_as(&server, "owner");
    let (code, error) =
        put_job(&owner, &server, json!({"cmd": "true", "limits": {"memory": 64 << 20}})).await;
    assert_eq!(code, 400);
    assert!(error["error"].as_str().unwrap().contains("cannot enforce"), "{error}");
    let (code, error) = put_job(&owner, &server, json!({"cmd": "true", "isolate": true})).await;
    assert_eq!(code, 400, "{error}");
    // The fallback: a process group, killed at the job's end.
    let out = server.rcmd("owner", &["run", "sh", "-c", "id -u; sleep 1000 & echo started"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{}\nstarted\n", user.uid));
    let out = server.rcmd("owner", &["run", "--pids", "10", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot enforce"));
    drop(server);
}
