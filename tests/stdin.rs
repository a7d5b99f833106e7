//! Job stdin over HTTPS, and `rcmd … run` in shell pipelines as ssh is used:
//! the real binary, real pipes, a real server.

use std::io::Write;
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::time::Duration;

use crate::util::server::{RCMD, ServerProcess, get_json, http_as};
use crate::util::wait_until;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// Generous: only a hang should ever reach it.
const DEADLINE: Duration = Duration::from_secs(60);

static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// Runs `script` in bash with `$RCMD` set to `rcmd CERTDIR ADDR` for the
/// owner, so that pipelines read as they would in a shell.
fn pipeline(server: &ServerProcess, script: &str) -> Output {
    let child = Command::new("bash")
        .args(["-c", script])
        .env("RCMD", format!("{RCMD} {} {}", server.client_dir("owner").display(), server.addr))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run bash");
    finish(child)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Waits for `child` to exit and collects its output; a child that hangs is
/// killed and the test fails.
fn finish(mut child: Child) -> Output {
    let mut exited = false;
    let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_until("the client exits", DEADLINE, || {
            exited = child.try_wait().unwrap().is_some();
            exited
        })
    }));
    if waited.is_err() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    assert!(exited, "the client hung; stderr: {}", text(&out.stderr));
    out
}

/// The client binary as the owner, its stdin a pipe whose write end we hold.
fn spawn_client(server: &ServerProcess, args: &[&str]) -> (Child, ChildStdin) {
    let mut child = server
        .command("owner", args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    (child, stdin)
}

async fn create(client: &reqwest::Client, server: &ServerProcess, body: Value) -> u64 {
    let response = client.put(server.url("/jobs")).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["id"].as_u64().unwrap()
}

/// A request body that the test feeds chunk by chunk; it ends when the
/// sender is dropped.
fn fed_body() -> (mpsc::Sender<Result<Bytes, std::io::Error>>, reqwest::Body) {
    let (sender, receiver) = mpsc::channel(1);
    let chunks =
        futures_util::stream::unfold(receiver, |mut r| async move { r.recv().await.map(|chunk| (chunk, r)) });
    (sender, reqwest::Body::wrap_stream(chunks))
}

/// A request body that never ends and never waits.
fn endless_body() -> reqwest::Body {
    reqwest::Body::wrap_stream(futures_util::stream::repeat_with(|| {
        Ok::<_, std::io::Error>(Bytes::from_static(&ZEROS))
    }))
}

async fn put_stdin(
    client: &reqwest::Client,
    server: &ServerProcess,
    id: u64,
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    let response = client.put(server.url(&format!("/jobs/{id}/stdin"))).body(body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[test]
fn a_hundred_mib_of_random_bytes_reach_the_job_exactly() {
    let server = ServerProcess::start(&[], &[]);
    let dir = crate::util::TempDir::new("stdin-sha");
    let sent = dir.path().join("sent");
    let out = pipeline(
        &server,
        &format!("head -c 100M /dev/urandom | tee {} | $RCMD run sha256sum", sent.display()),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let local = Command::new("sha256sum").stdin(std::fs::File::open(&sent).unwrap()).output().unwrap();
    assert_eq!(std::fs::metadata(&sent).unwrap().len(), 100 << 20);
    assert_eq!(text(&out.stdout), text(&local.stdout));
}

#[test]
fn lines_go_through_a_remote_sort() {
    let server = ServerProcess::start(&[], &[]);
    let out = pipeline(&server, r"printf 'a\nb\n' | $RCMD run sort -r");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "b\na\n");
}

#[test]
fn run_n_gives_the_job_no_stdin_even_when_ours_stays_open() {
    let server = ServerProcess::start(&[], &[]);
    // Our end of the client's stdin stays open throughout: only -n lets
    // `cat` see EOF.
    let (child, stdin) = spawn_client(&server, &["run", "-n", "cat"]);
    let out = finish(child);
    drop(stdin);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
}

#[test]
fn run_ends_with_the_job_even_when_stdin_never_closes() {
    let server = ServerProcess::start(&[], &[]);
    let (child, mut stdin) = spawn_client(&server, &["run", "head", "-c", "5"]);
    stdin.write_all(b"hello, and more that head never reads").unwrap();
    // Our end stays open: the job's exit, not EOF, ends `run`.
    let out = finish(child);
    drop(stdin);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hello");
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}

#[test]
fn run_yes_into_head_exits_141_quietly_and_the_job_is_killed() {
    let server = ServerProcess::start(&[], &[]);
    let out = pipeline(&server, "$RCMD run yes | head -1; exit ${PIPESTATUS[0]}");
    assert_eq!(out.status.code(), Some(141), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "y\n");
    assert!(out.stderr.is_empty(), "no message: {}", text(&out.stderr));
    // Once run has returned, the job is already over.
    let status: Value = serde_json::from_str(&server.ok("owner", &["--json", "status", "1"])).unwrap();
    assert_eq!(status["status"], "completed", "{status}");
    assert!(status["signal"].is_i64(), "killed: {status}");
}

#[test]
fn run_rm_into_a_closed_pipe_deletes_the_job() {
    let server = ServerProcess::start(&[], &[]);
    let out = pipeline(&server, "$RCMD run --rm yes | head -1; exit ${PIPESTATUS[0]}");
    assert_eq!(out.status.code(), Some(141), "{}", text(&out.stderr));
    assert_eq!(server.rcmd("owner", &["status", "1"]).status.code(), Some(1), "deleted");
}

#[test]
fn a_closed_pipe_on_stderr_stops_run_too() {
    let server = ServerProcess::start(&[], &[]);
    let out = pipeline(&server, "$RCMD run sh -c 'yes >&2' 2>&1 >/dev/null | head -1; exit ${PIPESTATUS[0]}");
    assert_eq!(out.status.code(), Some(141), "{}", text(&out.stderr));
    let status: Value = serde_json::from_str(&server.ok("owner", &["--json", "status", "1"])).unwrap();
    assert_eq!(status["status"], "completed", "{status}");
}

#[test]
fn following_into_a_closed_pipe_exits_141_and_leaves_the_job_running() {
    let server = ServerProcess::start(&[], &[]);
    // A line now and then: `yes` would fill --max-output within seconds and
    // be reported as truncated.
    let id = server.ok("owner", &["exec", "sh", "-c", "while echo y; do sleep 0.2; done"]).trim().to_owned();
    for follow in ["output -f", "logs -f"] {
        let out = pipeline(&server, &format!("$RCMD {follow} {id} | head -1; exit ${{PIPESTATUS[0]}}"));
        assert_eq!(out.status.code(), Some(141), "{follow}: {}", text(&out.stderr));
        assert!(out.stderr.is_empty(), "{follow}: {}", text(&out.stderr));
        assert_eq!(server.ok("owner", &["status", &id]), "Running\n", "{follow}");
    }
    server.ok("owner", &["delete", &id]);
}

/// Every command that prints treats a reader that has gone as a pipeline
/// does: 141, no message (never "cannot write output" and 1, or a panic).
#[test]
fn every_command_exits_141_quietly_into_a_closed_pipe() {
    let server = ServerProcess::start(&[], &[]);
    server.ok("owner", &["run", "echo", "hi"]);
    for args in [
        &["status", "1"][..],
        &["--json", "status", "1"],
        &["list"],
        &["wait", "1"],
        &["output", "1"],
        &["logs", "1"],
        &["exec", "true"],
        &["stop", "1"],
        &["run", "-n", "echo", "hi"],
    ] {
        let (read, write) = nix::unistd::pipe().unwrap();
        drop(read);
        let out = server
            .command("owner", args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(write))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(141), "{args:?}: {}", text(&out.stderr));
        assert!(out.stderr.is_empty(), "{args:?}: {}", text(&out.stderr));
    }
}

#[tokio::test]
async fn an_upload_to_a_job_that_stops_reading_ends_with_an_answer() {
    let server = ServerProcess::start(&[], &[]);
    let client = http_as(&server, "owner");
    // The job reads 10 bytes and exits; the sender never stops.
    let id = create(&client, &server, json!({"cmd": "head", "args": ["-c", "10"], "stdin": true})).await;
    let (status, answer) = put_stdin(&client, &server, id, endless_body()).await;
    assert_eq!(status, 409, "{answer}");
    assert!(answer["written"].as_u64().unwrap() >= 10, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains(&format!("job {id}")), "{answer}");

    // The job exits while the upload waits for the sender's next byte.
    let id = create(&client, &server, json!({"cmd": "head", "args": ["-c", "1"], "stdin": true})).await;
    let (feed, body) = fed_body();
    feed.send(Ok(Bytes::from_static(b"x"))).await.unwrap();
    let (status, answer) = put_stdin(&client, &server, id, body).await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["written"], 1, "{answer}");
    drop(feed);
    let status = get_json(&client, &server, &format!("/jobs/{id}/status?wait=true")).await;
    assert_eq!(status["exit_code"], 0);

    // The job was over before the upload came: the same answer, at once.
    let (status, answer) = put_stdin(&client, &server, id, endless_body()).await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["written"], 0, "{answer}");
}

#[tokio::test]
async fn one_writer_at_a_time_and_delete_ends_the_upload() {
    let server = ServerProcess::start(&[], &[]);
    let client = http_as(&server, "owner");
    let id = create(&client, &server, json!({"cmd": "cat", "stdin": true})).await;
    let (feed, body) = fed_body();
    let first = tokio::spawn({
        let (client, url) = (client.clone(), server.url(&format!("/jobs/{id}/stdin")));
        async move {
            let response = client.put(url).body(body).send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }
    });
    feed.send(Ok(Bytes::from_static(b"first\n"))).await.unwrap();
    // The first writer is attached once its bytes show in the job's output.
    let output = format!("/jobs/{id}/output/stdout");
    let mut seen = String::new();
    for _ in 0..600 {
        seen = client.get(server.url(&output)).send().await.unwrap().text().await.unwrap();
        if !seen.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen, "first\n");
    let (status, answer) = put_stdin(&client, &server, id, "second\n").await;
    assert_eq!(status, 409, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("one writer at a time"), "{answer}");

    let deleted = client.delete(server.url(&format!("/jobs/{id}"))).send().await.unwrap();
    assert_eq!(deleted.status(), 200);
    let (status, answer) = tokio::time::timeout(DEADLINE, first).await.expect("the upload ended").unwrap();
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["written"], 6, "{answer}");
    drop(feed);
}

#[tokio::test]
async fn stdin_is_refused_where_there_is_none_to_write() {
    let server = ServerProcess::start(&["mallory"], &[]);
    let client = http_as(&server, "owner");
    let plain = create(&client, &server, json!({"cmd": "cat"})).await;
    let (status, answer) = put_stdin(&client, &server, plain, "x").await;
    assert_eq!(status, 409, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("\"stdin\": true"), "{answer}");

    // Written once and closed: stdin cannot be reopened.
    let cat = create(&client, &server, json!({"cmd": "cat", "stdin": true})).await;
    let (status, answer) = put_stdin(&client, &server, cat, "hello").await;
    assert_eq!((status, &answer), (200, &json!({"written": 5})));
    let (status, _) = put_stdin(&client, &server, cat, "again").await;
    assert_eq!(status, 409);
    // The output is complete once the job has finished, not before.
    client.get(server.url(&format!("/jobs/{cat}/status?wait=true"))).send().await.unwrap();
    let out = client.get(server.url(&format!("/jobs/{cat}/output/stdout"))).send().await.unwrap();
    assert_eq!(out.text().await.unwrap(), "hello");

    // Another client's job is not there at all.
    let other = create(&client, &server, json!({"cmd": "cat", "stdin": true})).await;
    let (status, _) = put_stdin(&http_as(&server, "mallory"), &server, other, "x").await;
    assert_eq!(status, 404);
    let (status, _) = put_stdin(&client, &server, 999, "x").await;
    assert_eq!(status, 404);
    for id in [plain, other] {
        client.delete(server.url(&format!("/jobs/{id}"))).send().await.unwrap();
    }
}

/// Jobs with a stdin pipe that nobody writes to cost the server nothing
/// once they end: each pipe is closed with its job.
#[tokio::test]
async fn unwritten_stdin_pipes_are_closed_when_their_jobs_end() {
    let server = ServerProcess::start(&[], &[]);
    let client = http_as(&server, "owner");
    let fds = || std::fs::read_dir(format!("/proc/{}/fd", server.pid())).unwrap().count();
    let id = create(&client, &server, json!({"cmd": "true", "stdin": true})).await;
    get_json(&client, &server, &format!("/jobs/{id}/status?wait=true")).await;
    let before = fds();
    for _ in 0..50 {
        let id = create(&client, &server, json!({"cmd": "true", "stdin": true})).await;
        get_json(&client, &server, &format!("/jobs/{id}/status?wait=true")).await;
    }
    // A job reading a stdin nobody writes blocks only itself.
    let waiting = create(&client, &server, json!({"cmd": "cat", "stdin": true})).await;
    assert_eq!(get_json(&client, &server, &format!("/jobs/{waiting}/status")).await["status"], "running");
    client.delete(server.url(&format!("/jobs/{waiting}"))).send().await.unwrap();
    assert!(fds() <= before + 2, "descriptors grew from {before} to {}", fds());
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A sender far faster than the job: the server holds a bounded amount,
/// not the upload.
#[test]
fn a_fast_sender_does_not_grow_server_memory() {
    let server = ServerProcess::start(&[], &[]);
    let before = rss_kib(server.pid());
    let (child, mut stdin) =
        spawn_client(&server, &["run", "sh", "-c", "sleep 5; cat > /dev/null; echo done"]);
    let sender = std::thread::spawn(move || {
        for _ in 0..(1 << 30) / ZEROS.len() {
            stdin.write_all(&ZEROS).unwrap();
        }
    });
    let mut peak = before;
    while !sender.is_finished() {
        peak = peak.max(rss_kib(server.pid()));
        std::thread::sleep(Duration::from_millis(20));
    }
    sender.join().unwrap();
    let out = finish(child);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "done\n");
    let grown = peak.saturating_sub(before);
    assert!(grown < 32 * 1024, "server RSS grew by {grown} KiB during a 1 GiB upload (from {before} KiB)");
}
