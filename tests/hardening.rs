//! The server under load, faults and hostile clients: quotas, a full disk,
//! many clients at once, and servers that die (connection floods, caps and
//! timeouts are in connections.rs).
//! Every wait is on a condition with a deadline.

use std::time::Duration;

use crate::util::server::{ServerProcess, get_json, http_as};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use reqwest::StatusCode;
use serde_json::Value;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Open descriptors and threads of a process.
fn fds_and_threads(pid: u32) -> (usize, usize) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let threads =
        status.lines().find_map(|l| l.strip_prefix("Threads:")).and_then(|n| n.trim().parse().ok()).unwrap();
    (fds, threads)
}

/// Children of `pid` that are zombies.
fn zombie_children(pid: u32) -> Vec<u32> {
    let mut zombies = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        let fields: Vec<&str> =
            stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
        if fields.first() == Some(&"Z") && fields.get(1) == Some(&pid.to_string().as_str()) {
            zombies.push(child);
        }
    }
    zombies
}

#[test]
fn quotas_answer_429_and_spare_other_clients() {
    let server = ServerProcess::start(&["alice", "bob"], &["--max-running", "2", "--max-jobs", "3"]);
    server.ok("alice", &["exec", "sleep", "1000"]);
    server.ok("alice", &["exec", "sleep", "1000"]);
    let out = server.rcmd("alice", &["exec", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("429") && stderr(&out).contains("running"), "{}", stderr(&out));
    // Bob is unaffected.
    server.ok("bob", &["exec", "true"]);
    server.ok("alice", &["stop", "1"]);
    server.ok("alice", &["exec", "true"]);
    let out = server.rcmd("alice", &["exec", "true"]);
    assert!(stderr(&out).contains("delete finished jobs"), "{}", stderr(&out));
    server.ok("alice", &["delete", "1"]);
    server.ok("alice", &["exec", "true"]);
}

#[tokio::test]
async fn the_stored_output_quota_truncates_then_refuses_with_a_json_429() {
    let server = ServerProcess::start(&[], &["--max-stored", "10000"]);
    server.ok("owner", &["exec", "head", "-c", "20000", "/dev/zero"]);
    let status: Value = serde_json::from_str(&server.ok("owner", &["--json", "wait", "1"])).unwrap();
    assert_eq!(status["truncated"], true);
    assert_eq!(status["exit_code"], 0);
    let response =
        http_as(&server, "owner").put(server.url("/jobs")).body(r#"{"cmd": "true"}"#).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("stored output"), "{body}");
}

#[tokio::test]
async fn a_job_that_fills_its_output_cap_is_marked_truncated() {
    let server = ServerProcess::start(&[], &["--max-output", "1000"]);
    server.ok("owner", &["exec", "sh", "-c", "head -c 5000 /dev/zero; echo done"]);
    let status: Value = serde_json::from_str(&server.ok("owner", &["--json", "wait", "1"])).unwrap();
    assert_eq!((status["truncated"].as_bool(), status["exit_code"].as_i64()), (Some(true), Some(0)));
    let output: Value = get_json(&http_as(&server, "owner"), &server, "/jobs/1/output").await;
    assert_eq!(output["truncated"], true);
    assert_eq!(output["stdout"].as_str().unwrap().len(), 1000);
}

#[test]
fn a_job_killed_from_outside_is_reported_with_its_signal() {
    let server = ServerProcess::start(&[], &[]);
    server.ok("owner", &["exec", "sleep", "1000"]);
    let status: Value = serde_json::from_str(&server.ok("owner", &["--json", "status", "1"])).unwrap();
    let pid = status["pid"].as_u64().unwrap() as i32;
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    let out = server.rcmd("owner", &["wait", "1"]);
    assert_eq!(out.status.code(), Some(128 + 9));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Completed, killed by signal: 9 (SIGKILL)\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_clients_fifty_jobs_each_all_exactly_right_and_nothing_left() {
    let names: Vec<String> = (0..20).map(|i| format!("client{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let server = ServerProcess::start(&refs, &[]);
    // Warm up so the baseline includes the runtime's threads and every
    // client's pool (each holds its output folder open).
    server.ok("owner", &["run", "true"]);
    for name in &names {
        server.ok(name, &["list"]);
    }
    let (base_fds, base_threads) = fds_and_threads(server.pid());
    // The job records keep up to 4 idle read connections (3 descriptors each).
    const IDLE_READERS_FDS: usize = 4 * 3;

    let tasks: Vec<_> = names
        .iter()
        .map(|name| {
            let client = http_as(&server, name);
            let (name, url) = (name.clone(), server.url(""));
            tokio::spawn(async move {
                let creates = (0..50).map(|j| {
                    let body = serde_json::json!({"cmd": "sh", "args": ["-c", format!("echo {name}-{j}; echo e{j} >&2; exit {}", j % 7)]});
                    let request = client.put(format!("{url}/jobs")).json(&body).send();
                    async move { let v = request.await.unwrap().json::<Value>().await.unwrap(); v["id"].as_u64().unwrap_or_else(|| panic!("{v}")) }
                });
                let ids = futures_util::future::join_all(creates).await;
                for (j, id) in ids.iter().enumerate() {
                    let status: Value = client
                        .get(format!("{url}/jobs/{id}/status?wait=true"))
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    assert_eq!(status["exit_code"].as_u64(), Some(j as u64 % 7), "{name} job {j}");
                    let output: Value =
                        client.get(format!("{url}/jobs/{id}/output")).send().await.unwrap().json().await.unwrap();
                    let job = ids.iter().position(|i| i == id).unwrap();
                    assert_eq!(output["stdout"], format!("{name}-{job}\n"));
                    assert_eq!(output["stderr"], format!("e{job}\n"));
                }
                let mut sorted = ids.clone();
                sorted.sort_unstable();
                assert_eq!(sorted, (1..=50).collect::<Vec<_>>(), "{name}'s ids are its own, 1 to 50");
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    crate::util::wait_until("descriptors and threads back to baseline", Duration::from_secs(20), || {
        let (fds, threads) = fds_and_threads(server.pid());
        fds <= base_fds + IDLE_READERS_FDS && threads <= base_threads
    });
    assert!(zombie_children(server.pid()).is_empty());
}

#[test]
fn sigterm_mid_load_leaves_no_process_behind() {
    let mut server = ServerProcess::start(&["alice", "bob"], &[]);
    let sleep = crate::util::marked_sleep(server.data.path(), "sigterm-load");
    // The marker must not appear on the clients' own command lines.
    let script = server.data.path().join("load.sh");
    std::fs::write(&script, format!("yes | head -c 50000000; {sleep} 1000\n")).unwrap();
    let script = script.to_str().unwrap();
    let mut runs = Vec::new();
    for client in ["owner", "alice", "bob"] {
        for _ in 0..3 {
            server.ok(client, &["exec", "sh", "-c", &format!("{sleep} 1000 & {sleep} 1000")]);
        }
        runs.push(
            server
                .command(client, &["run", "sh", script])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
    }
    crate::util::wait_until("the jobs run", Duration::from_secs(20), || {
        crate::util::pids_matching(&sleep).len() >= 18
    });
    assert!(server.terminate().success());
    crate::util::wait_no_process(&sleep);
    for mut run in runs {
        // Either it saw the job killed (128+9), or the server already gone.
        let code = run.wait().unwrap().code();
        assert!(matches!(code, Some(137) | Some(255)), "{code:?}");
    }
}

#[test]
fn a_server_killed_with_sigkill_takes_its_jobs_with_it() {
    let server = ServerProcess::start(&[], &[]);
    let sleep = crate::util::marked_sleep(server.data.path(), "sigkill");
    for _ in 0..3 {
        server.ok("owner", &["exec", "sh", "-c", &format!("{sleep} 1000 & {sleep} 1000")]);
    }
    server.ok("owner", &["exec", "sh", "-c", &format!("({sleep} 1000 &) ; {sleep} 1000")]);
    crate::util::wait_until("the jobs run", Duration::from_secs(10), || {
        crate::util::pids_matching(&sleep).len() >= 8
    });
    kill(Pid::from_raw(server.pid() as i32), Signal::SIGKILL).unwrap();
    // The guard sees the server's end of its pipe close and kills every group.
    crate::util::wait_no_process(&sleep);
}

#[test]
#[ignore = "needs root: mounts a small tmpfs that fills up"]
fn a_full_disk_marks_the_job_and_the_server_stays_up() {
    let scratch = crate::util::TempDir::new("disk");
    // Needs root, as CI has; elsewhere this fails rather than passing.
    let disk = crate::util::SmallDisk::mount(scratch.path(), "1m").expect("mount a 1 MiB tmpfs (needs root)");
    // The mount point is world-writable: the data directory goes inside.
    // --max-disk above the disk's size, so that the disk itself fills.
    let data_dir = disk.path().join("data").to_str().unwrap().to_owned();
    let server = ServerProcess::start(&[], &["--data-dir", &data_dir, "--max-disk", "1G"]);
    server.ok("owner", &["exec", "sh", "-c", "head -c 3000000 /dev/zero; echo survived >&2"]);
    let status: Value = serde_json::from_str(&server.ok("owner", &["--json", "wait", "1"])).unwrap();
    assert_eq!((status["exit_code"].as_i64(), status["truncated"].as_bool()), (Some(0), Some(true)));
    let reason = status["output_error"].as_str().unwrap_or_default();
    assert!(reason.contains("No space left"), "{status}");
    assert!(server.log().contains("could not be stored"), "logged");
    server.ok("owner", &["delete", "1"]);
    assert_eq!(server.ok("owner", &["run", "echo", "still serving"]), "still serving\n");
    drop(server);
    drop(disk);
}
