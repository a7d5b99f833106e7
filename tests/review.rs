//! The small things a review found, each pinned down: causes said once,
//! server paths kept from clients, serve flags checked before any side
//! effect, typos of subcommands, job ids in one spelling only, and a JSON
//! output call that cannot be made to answer gigabytes.

mod support;

use std::process::{Command, Stdio};

use reqwest::{Method, StatusCode};
use serde_json::Value;
use support::TempDir;
use support::server::{RCMD, TestServer, http_as};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_server_failure_shows_its_cause_once_and_its_paths_only_in_the_log() {
    let data = TempDir::new("broken-data-dir");
    // A data directory whose client folder cannot be made: a file is in its way.
    let data_dir = data.path().join("data");
    let output = data_dir.join("output");
    std::fs::create_dir_all(&output).unwrap();
    for dir in [&data_dir, &output] {
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    }
    std::fs::write(output.join("6f776e6572"), "not a folder").unwrap();
    let server = TestServer::start(&[], &["--data-dir", data_dir.to_str().unwrap()]);
    let out = server.rcmd("owner", &["exec", "true"]);
    assert_eq!(out.status.code(), Some(1));
    let said = stderr(&out);
    assert!(said.contains("cannot open the job store: an error on the server"), "{said}");
    assert!(!said.contains(data.path().to_str().unwrap()), "a server path reached the client: {said}");
    assert!(!said.contains("os error"), "a server-side cause reached the client: {said}");
    support::wait_until("the failure is logged", std::time::Duration::from_secs(5), || {
        server.log().contains("cannot open the job store")
    });
    let log = server.log();
    let line = log.lines().find(|l| l.contains("cannot open the job store")).unwrap();
    assert_eq!(line.matches("Not a directory").count(), 1, "the cause once: {line}");
    assert!(line.contains(data_dir.to_str().unwrap()), "the log names the folder: {line}");
}

#[test]
fn bad_serve_flags_are_refused_before_any_side_effect() {
    let dir = TempDir::new("flags-first");
    let certs = dir.path().join("new-certs");
    for (flag, value) in [
        ("--request-timeout", "inf"),
        ("--handshake-timeout", "nan"),
        ("--stop-grace", "-1"),
        ("--request-timeout", "1e300"),
        ("--max-running", "-3"),
        ("--listen", "x"),
    ] {
        let out = Command::new(RCMD)
            .args(["serve", "--dev", "--listen", "127.0.0.1:0", "--certs"])
            .arg(&certs)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg(format!("{flag}={value}"))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag}={value}: {}", stderr(&out));
        assert!(stderr(&out).contains(flag), "{flag}={value}: the message names the flag: {}", stderr(&out));
        assert!(!certs.exists(), "{flag}={value}: a PKI was made before the flag was refused");
        assert!(!dir.path().join("data").exists(), "{flag}={value}: the data directory was made");
    }
}

#[test]
fn a_typo_of_a_subcommand_is_answered_with_did_you_mean() {
    let cwd = TempDir::new("typo");
    for (typo, meant) in [("serv", "serve"), ("pkii", "pki"), ("stauts", "status")] {
        let out = Command::new(RCMD).args([typo, "--listen", "x"]).current_dir(cwd.path()).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{typo}");
        let said = stderr(&out);
        assert_eq!(said.lines().count(), 1, "{typo}: one line: {said}");
        assert!(said.contains(&format!("did you mean `rcmd {meant}`?")), "{typo}: {said}");
    }
}

#[tokio::test]
async fn a_job_id_has_one_spelling_only() {
    let server = TestServer::start(&[], &[]);
    server.ok("owner", &["exec", "echo", "one"]);
    server.ok("owner", &["wait", "1"]);
    let client = http_as(&server, "owner");
    for (method, path) in [
        (Method::GET, "/jobs/+1/status"),
        (Method::GET, "/jobs/01/status"),
        (Method::GET, "/jobs/%31/status"),
        (Method::GET, "/jobs/1%20/status"),
        (Method::GET, "/jobs/%2B1/output"),
        (Method::GET, "/jobs/0x1/output/stdout"),
        (Method::GET, "/jobs/1/output/std%6Fut"),
        (Method::POST, "/jobs/01/stop"),
        (Method::DELETE, "/jobs/%31"),
        (Method::DELETE, "/jobs/+1"),
    ] {
        let response = client.request(method.clone(), server.url(path)).send().await.unwrap();
        assert_eq!(response.url().path(), path, "sent as written");
        let status = response.status();
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND,
            "{method} {path}: {status}"
        );
        let error: Value = response.json().await.unwrap();
        assert!(error["error"].is_string(), "{method} {path}: {error}");
    }
    // Job 1 is untouched and still answers to its one name.
    assert_eq!(server.ok("owner", &["output", "1"]), "one\n");
    let status = client.get(server.url("/jobs/1/status")).send().await.unwrap();
    assert_eq!(status.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_json_output_call_refuses_output_it_cannot_carry_and_points_to_the_raw_calls() {
    let server = TestServer::start(&[], &[]);
    // 17 MiB of NUL bytes: six bytes each in JSON.
    server.ok("owner", &["exec", "head", "-c", "17825792", "/dev/zero"]);
    server.ok("owner", &["exec", "printf", "small"]);
    server.ok("owner", &["wait", "1"]);
    server.ok("owner", &["wait", "2"]);
    let client = http_as(&server, "owner");
    let response = client.get(server.url("/jobs/1/output")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let error: Value = response.json().await.unwrap();
    let message = error["error"].as_str().unwrap();
    assert!(message.contains("17825792 bytes"), "{message}");
    assert!(message.contains("GET /jobs/1/output/stdout"), "{message}");
    // The raw call carries it all, and the JSON call still serves small output.
    let mut raw = client.get(server.url("/jobs/1/output/stdout")).send().await.unwrap();
    let mut total = 0;
    while let Some(chunk) = raw.chunk().await.unwrap() {
        assert!(chunk.iter().all(|&b| b == 0));
        total += chunk.len();
    }
    assert_eq!(total, 17825792);
    let small: Value = client.get(server.url("/jobs/2/output")).send().await.unwrap().json().await.unwrap();
    assert_eq!(small["stdout"], "small");
}
