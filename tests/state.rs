//! State on disk: the data directory's guard, records that survive a
//! restart (graceful or SIGKILL), retention, bounded memory, paging, the
//! disk cap and truncation notices. Real servers, real files.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::TempDir;
use crate::util::server::{RCMD, ServerProcess, get_json, http_as};
use futures_util::StreamExt;
use nix::sys::signal::Signal;
use rcmd::testing::TestPki;
use serde_json::Value;

/// `rcmd serve` on `data_dir` that is expected to refuse to start: its
/// status and stderr.
fn serve_refused(pki: &TestPki, data_dir: &Path) -> (Option<i32>, String) {
    let out = Command::new(RCMD)
        .args(["serve", "--listen", "127.0.0.1:0", "--certs"])
        .arg(pki.cert_dir())
        .arg("--data-dir")
        .arg(data_dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.stdout.is_empty(), "it never listened: {}", String::from_utf8_lossy(&out.stdout));
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn a_symlinked_or_world_writable_data_dir_is_refused_and_a_new_one_is_0700() {
    let pki = TestPki::new();
    let scratch = TempDir::new("guard");
    let real = scratch.path().join("real");
    std::fs::create_dir(&real).unwrap();
    let link = scratch.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let (code, stderr) = serve_refused(&pki, &link);
    assert_eq!(code, Some(1));
    assert!(stderr.lines().last().unwrap_or_default().contains("is a symlink"), "{stderr}");

    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (code, stderr) = serve_refused(&pki, &real);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("can be written by other users") && stderr.contains("chmod 700"), "{stderr}");
    assert_eq!(std::fs::read_dir(&real).unwrap().count(), 0, "nothing made in it");

    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o755)).unwrap();
    let server = ServerProcess::start(&[], &["--data-dir", real.to_str().unwrap()]);
    assert_eq!(mode(&real), 0o700, "made ours alone");
    assert_eq!(server.ok("owner", &["run", "echo", "ok"]), "ok\n");
}

#[test]
fn a_data_dir_below_a_symlinked_parent_works() {
    // Only the data directory itself may not be a symlink: a home under
    // /home -> /data/home is common.
    let scratch = TempDir::new("linked-parent");
    std::fs::create_dir(scratch.path().join("real")).unwrap();
    std::os::unix::fs::symlink(scratch.path().join("real"), scratch.path().join("link")).unwrap();
    let data_dir = scratch.path().join("link").join("data");
    let server = ServerProcess::start(&[], &["--data-dir", data_dir.to_str().unwrap()]);
    assert_eq!(server.ok("owner", &["run", "echo", "kept"]), "kept\n");
    let server = server.restart(Signal::SIGTERM);
    assert_eq!(server.ok("owner", &["output", "1"]), "kept\n");
}

#[test]
#[ignore = "needs root: gives a folder to another user"]
fn a_data_dir_owned_by_another_user_is_refused() {
    assert!(nix::unistd::geteuid().is_root(), "this test needs root (CI runs as root) to give a folder away");
    let pki = TestPki::new();
    let scratch = TempDir::new("foreign");
    let theirs = scratch.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    let (code, stderr) = serve_refused(&pki, &theirs);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("is owned by uid 65534"), "{stderr}");
    assert_eq!(std::fs::read_dir(&theirs).unwrap().count(), 0, "nothing made in it");
}

#[test]
fn a_second_server_on_the_same_data_dir_exits_and_touches_nothing() {
    let first = ServerProcess::start(&[], &[]);
    let data = first.data.path().join("jobs");
    let id = first.ok("owner", &["exec", "sh", "-c", "echo kept; echo also >&2"]).trim().to_owned();
    first.ok("owner", &["wait", &id]);
    let before: Vec<_> = std::fs::read_dir(&data).unwrap().map(|e| e.unwrap().file_name()).collect();
    let (code, stderr) = serve_refused(&first.pki, &data);
    assert_eq!(code, Some(1));
    let expected = format!("data directory {} is in use by pid {}", data.display(), first.pid());
    assert!(stderr.contains(&expected), "{stderr}");
    let after: Vec<_> = std::fs::read_dir(&data).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(before, after);
    assert_eq!(std::fs::read_to_string(data.join("lock")).unwrap().trim(), first.pid().to_string());
    assert_eq!(first.ok("owner", &["output", &id]), "kept\n");
}

/// What a client can see of a job: its status and both raw streams.
async fn snapshot(client: &reqwest::Client, server: &ServerProcess, id: u64) -> (Value, [Vec<u8>; 2]) {
    let mut status = get_json(client, server, &format!("/jobs/{id}/status")).await;
    // The pid of a finished job is history; everything else must match.
    status.as_object_mut().unwrap().remove("pid");
    let mut streams = [Vec::new(), Vec::new()];
    for (stream, bytes) in ["stdout", "stderr"].iter().zip(&mut streams) {
        let response = client.get(server.url(&format!("/jobs/{id}/output/{stream}"))).send().await.unwrap();
        assert_eq!(response.status(), 200, "job {id} {stream}");
        *bytes = response.bytes().await.unwrap().to_vec();
    }
    (status, streams)
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, bytes).as_ref().to_vec()
}

/// 100 jobs (90 that finish, with varied output and endings, 10 that keep
/// running), then `signal` to the server and a restart.
async fn a_restart_keeps_every_finished_job(signal: Signal, label: &str) {
    let server = ServerProcess::start(&[], &[]);
    let sleep = crate::util::marked_sleep(server.data.path(), label);
    let client = http_as(&server, "owner");
    let mut finished = Vec::new();
    let mut running = Vec::new();
    for i in 0..100u64 {
        let script = if i % 10 == 9 {
            format!("echo started {i}; {sleep} 1000 & {sleep} 1000")
        } else {
            // Text, binary bytes, stderr, exit codes and a signal.
            format!(
                "echo out {i}; head -c {} /dev/urandom; echo err {i} >&2; [ {i} = 4 ] && kill -TERM $$; exit {}",
                i * 37,
                i % 5
            )
        };
        let body = serde_json::json!({"cmd": "sh", "args": ["-c", script]});
        let created: Value =
            client.put(server.url("/jobs")).json(&body).send().await.unwrap().json().await.unwrap();
        let id = created["id"].as_u64().unwrap();
        if i % 10 == 9 { running.push(id) } else { finished.push(id) }
    }
    let mut before = Vec::new();
    for &id in &finished {
        get_json(&client, &server, &format!("/jobs/{id}/status?wait=true")).await;
        let (status, [out, err]) = snapshot(&client, &server, id).await;
        before.push((id, status, sha256(&out), sha256(&err)));
    }
    crate::util::wait_until("every sleeper runs", Duration::from_secs(20), || {
        crate::util::pids_matching(&sleep).len() >= 20
    });

    let server = server.restart(signal);
    crate::util::wait_no_process(&sleep);
    let client = http_as(&server, "owner");
    for (id, status, out, err) in before {
        let (status_after, [out_after, err_after]) = snapshot(&client, &server, id).await;
        assert_eq!(status_after, status, "job {id}");
        assert_eq!((sha256(&out_after), sha256(&err_after)), (out, err), "job {id}'s output, byte for byte");
    }
    assert_eq!(server.ok("owner", &["output", "1"]), "out 0\n");
    for &id in &running {
        let status = get_json(&client, &server, &format!("/jobs/{id}/status")).await;
        assert_eq!(
            (status["status"].as_str(), status["lost"].as_bool()),
            (Some("error"), Some(true)),
            "{status}"
        );
        assert!(status["error_msg"].as_str().unwrap().starts_with("lost:"), "{status}");
        let (_, [out, _]) = snapshot(&client, &server, id).await;
        assert_eq!(out, format!("started {}\n", id - 1).into_bytes(), "output kept as far as it got");
    }
    let new = server.ok("owner", &["exec", "true"]).trim().parse::<u64>().unwrap();
    assert!(new > 100, "a new id, never one given before: {new}");
    let listed: Value = serde_json::from_str(&server.ok("owner", &["--json", "list"])).unwrap();
    assert_eq!(listed["jobs"].as_array().unwrap().len(), 101);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigkill_finished_jobs_keep_everything_and_running_ones_are_lost() {
    a_restart_keeps_every_finished_job(Signal::SIGKILL, "restart-kill").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_graceful_restart_finished_jobs_keep_everything_and_running_ones_are_lost() {
    a_restart_keeps_every_finished_job(Signal::SIGTERM, "restart-term").await;
}

#[test]
fn a_graceful_restart_goes_on_right_after_the_highest_id() {
    let server = ServerProcess::start(&[], &[]);
    for _ in 0..3 {
        server.ok("owner", &["run", "true"]);
    }
    let server = server.restart(Signal::SIGTERM);
    assert_eq!(server.ok("owner", &["exec", "true"]).trim(), "4");
}

#[test]
fn retention_deletes_an_old_job_and_its_files_and_nothing_else() {
    let server = ServerProcess::start(&["alice"], &["--retain", "0"]);
    server.ok("owner", &["run", "echo", "old"]);
    server.ok("owner", &["run", "echo", "recent"]);
    server.ok("alice", &["run", "echo", "alice's"]);
    let mut server = server;
    server.terminate();
    let data = server.data.path().join("jobs");
    // Job 1 finished ten days ago.
    let db = rusqlite::Connection::open(data.join("jobs.db")).unwrap();
    let ten_days_ms = 10 * 24 * 3600 * 1000;
    db.execute(
        "UPDATE jobs SET finished_at = finished_at - ?1 WHERE client = 'owner' AND id = 1",
        [ten_days_ms],
    )
    .unwrap();
    drop(db);
    let owner_files = data.join("output").join(hex("owner"));
    assert!(owner_files.join("1.stdout").exists());

    // The default keeps seven days.
    let server = server.restart_with(Signal::SIGTERM, Vec::new());
    crate::util::wait_until("the old job is deleted", Duration::from_secs(30), || {
        server.rcmd("owner", &["status", "1"]).status.code() == Some(1)
    });
    assert!(!owner_files.join("1.stdout").exists(), "its output went with it");
    assert_eq!(server.ok("owner", &["output", "2"]), "recent\n");
    assert_eq!(server.ok("alice", &["output", "1"]), "alice's\n");
}

#[test]
#[ignore = "needs root: mounts a small tmpfs that fills up"]
fn a_job_that_ends_while_the_disk_is_full_stays_visible_and_is_recorded_once_there_is_room() {
    let scratch = TempDir::new("full-disk");
    let disk = crate::util::SmallDisk::mount(scratch.path(), "4m").expect("mount a 4 MiB tmpfs (needs root)");
    let data_dir = disk.path().join("data");
    let server = ServerProcess::start(&[], &["--data-dir", data_dir.to_str().unwrap(), "--max-disk", "1G"]);
    // The first job reserves the client's ids while there is room.
    server.ok("owner", &["run", "true"]);
    disk.fill("filler");
    // Its create needs more room than the database has: the row cannot be
    // written, and neither can its start or end.
    let big = "x".repeat(100_000);
    let mut exec = vec!["exec", "true"];
    exec.extend(std::iter::repeat_n(big.as_str(), 6));
    assert_eq!(server.ok("owner", &exec).trim(), "2");
    let status: Value = serde_json::from_str(&server.ok("owner", &["--json", "wait", "2"])).unwrap();
    assert_eq!(
        (status["status"].as_str(), status["exit_code"].as_i64()),
        (Some("completed"), Some(0)),
        "{status}"
    );
    assert!(server.log().contains("a job record could not be written"), "the disk really was full");

    std::fs::remove_file(disk.path().join("filler")).unwrap();
    crate::util::wait_until("the record is written", Duration::from_secs(60), || {
        server.log().contains("the job's record is written")
    });
    let server = server.restart(Signal::SIGTERM);
    let status: Value = serde_json::from_str(&server.ok("owner", &["--json", "status", "2"])).unwrap();
    assert_eq!(
        (status["status"].as_str(), status["exit_code"].as_i64()),
        (Some("completed"), Some(0)),
        "{status}"
    );
    assert_eq!(status["args"].as_array().map(Vec::len), Some(6), "the whole command line was recorded");
    // Its start was never written, so the record has no pid: none, not a made-up 0.
    assert!(status["pid"].is_null(), "{status}");
    drop(server);
    drop(disk);
}

fn hex(name: &str) -> String {
    name.bytes().map(|b| format!("{b:02x}")).collect()
}

fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap();
    kib / 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_command_lines_are_refused_and_many_big_jobs_keep_memory_small_and_list_in_pages() {
    let server = ServerProcess::start(&[], &["--max-jobs", "1000"]);
    let client = http_as(&server, "owner");
    // One argument of 1 MB (the request body cap is 1 MiB), 400 times.
    let huge = bytes::Bytes::from(
        serde_json::to_vec(&serde_json::json!({"cmd": "true", "args": ["x".repeat(1_000_000)]})).unwrap(),
    );
    let refusals = (0..400).map(|_| {
        let request =
            client.put(server.url("/jobs")).header("content-type", "application/json").body(huge.clone());
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 400);
            let error: Value = response.json().await.unwrap();
            assert!(error["error"].as_str().unwrap().contains("longer than the kernel allows"), "{error}");
        }
    });
    futures_util::stream::iter(refusals).buffer_unordered(8).collect::<Vec<()>>().await;
    let rss = rss_mib(server.pid());
    assert!(rss < 64, "server RSS {rss} MiB after 400 refused 1 MB jobs");
    // Just under the kernel's limit for one argument: allowed, and kept on disk.
    let big = "y".repeat(100_000);
    let mut ids = Vec::new();
    for _ in 0..400 {
        let body = serde_json::json!({"cmd": "true", "args": [big]});
        let created: Value =
            client.put(server.url("/jobs")).json(&body).send().await.unwrap().json().await.unwrap();
        ids.push(created["id"].as_u64().unwrap());
    }
    for id in &ids {
        get_json(&client, &server, &format!("/jobs/{id}/status?wait=true")).await;
    }
    let rss = rss_mib(server.pid());
    assert!(rss < 64, "server RSS {rss} MiB with 400 jobs of 100 KB arguments");

    let first = get_json(&client, &server, "/jobs").await;
    let page = first["jobs"].as_array().unwrap();
    assert!(!page.is_empty() && page.len() < 400, "a default page, not everything: {}", page.len());
    let mut seen: Vec<u64> = page.iter().map(|j| j["id"].as_u64().unwrap()).collect();
    let mut next = first["next"].as_u64();
    while let Some(after) = next {
        let page = get_json(&client, &server, &format!("/jobs?limit=1000&after={after}")).await;
        seen.extend(page["jobs"].as_array().unwrap().iter().map(|j| j["id"].as_u64().unwrap()));
        next = page["next"].as_u64();
    }
    assert_eq!(seen, ids, "every job once, in order");
    let rss = rss_mib(server.pid());
    assert!(rss < 64, "server RSS {rss} MiB after listing them");
    let bad = client.get(server.url("/jobs?limit=0")).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    // The CLI follows the pages.
    let listed = server.ok("owner", &["list"]);
    assert_eq!(listed.lines().count(), 401, "a header and every job");
}

#[test]
fn max_disk_stops_one_client_from_filling_the_disk_for_another() {
    // 8 MiB for all; a client may use a quarter of it.
    let server = ServerProcess::start(&["alice", "bob"], &["--max-disk", "8M"]);
    let out = server.rcmd("alice", &["run", "head", "-c", "10000000", "/dev/zero"]);
    assert_eq!(out.stdout.len(), 2 << 20, "alice's output is cut at her share");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("rcmd: output truncated: your jobs' stored output reached 2097152 bytes"),
        "{stderr}"
    );
    let refused = server.rcmd("alice", &["exec", "true"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("delete finished jobs"));
    let out = server.rcmd("bob", &["run", "head", "-c", "1000000", "/dev/zero"]);
    assert!(out.status.success() && out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout.len(), 1_000_000, "bob keeps all of his");
}

#[test]
fn the_disk_cap_holds_for_all_clients_together() {
    let server = ServerProcess::start(&["alice", "bob"], &["--max-disk", "3M", "--max-stored", "2M"]);
    server.ok("alice", &["run", "head", "-c", "2000000", "/dev/zero"]);
    let out = server.rcmd("bob", &["run", "head", "-c", "2000000", "/dev/zero"]);
    assert_eq!(out.stdout.len(), (3 << 20) - 2_000_000, "bob gets what is left of the server's space");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("rcmd: output truncated: the server's space for output"), "{stderr}");
    let refused = server.rcmd("bob", &["exec", "true"]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--max-disk"));
}

#[test]
fn truncated_output_is_said_by_run_output_logs_and_status() {
    let server = ServerProcess::start(&[], &["--max-output", "1000"]);
    let out = server.rcmd("owner", &["run", "head", "-c", "5000", "/dev/zero"]);
    assert!(out.status.success());
    assert_eq!(out.stdout.len(), 1000);
    let notice = "rcmd: output truncated: the job wrote more than the 1000 bytes a job may keep\n";
    assert_eq!(String::from_utf8_lossy(&out.stderr), notice);
    for command in ["output", "logs"] {
        let out = server.rcmd("owner", &[command, "1"]);
        assert_eq!((out.stdout.len(), String::from_utf8_lossy(&out.stderr).as_ref()), (1000, notice));
    }
    assert_eq!(server.ok("owner", &["status", "1"]), "Completed, exit status: 0 (output truncated)\n");
    // Complete output says nothing.
    let out = server.rcmd("owner", &["run", "echo", "short"]);
    assert!(out.stderr.is_empty());
}

#[test]
fn a_missing_spool_file_is_an_error_not_an_empty_output() {
    let server = ServerProcess::start(&[], &[]);
    server.ok("owner", &["run", "echo", "precious"]);
    let spool = server.data.path().join("jobs/output").join(hex("owner")).join("1.stdout");
    std::fs::remove_file(&spool).unwrap();
    let out = server.rcmd("owner", &["output", "1"]);
    assert_ne!(out.status.code(), Some(0), "never a silent empty output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot read the job"), "{stderr}");
    assert!(server.log().contains("1.stdout"), "the log names the file");
}
