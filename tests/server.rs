//! `rcmd serve` and the client over real mTLS on loopback: the seed's flow,
//! isolation between clients, TLS refusals, bad input (serve flags checked
//! before any side effect, job ids in one spelling only), binary output (and
//! a JSON output call that cannot be made to answer gigabytes), server
//! failures (their cause said once, their paths kept from clients), and
//! shutdown. Each test makes a fresh PKI and its own server.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::TempDir;
use crate::util::server::{RCMD, ServerProcess, get_json, http, http_as};
use reqwest::{Method, StatusCode};
use serde_json::Value;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_seed_flow_exec_status_output_delete() {
    let server = ServerProcess::start(&[], &[]);
    let id = server.ok("owner", &["exec", "echo", "hi"]);
    assert_eq!(id, "1\n");
    server.ok("owner", &["wait", "1"]);
    assert_eq!(server.ok("owner", &["status", "1"]), "Completed, exit status: 0\n");
    assert_eq!(server.ok("owner", &["output", "1"]), "hi\n");
    server.ok("owner", &["delete", "1"]);
    let out = server.rcmd("owner", &["status", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "rcmd: job 1 not found\n");
}

#[test]
fn everything_after_the_command_is_passed_verbatim() {
    let server = ServerProcess::start(&[], &[]);
    server.ok("owner", &["exec", "echo", "-la", "--help", "--json"]);
    server.ok("owner", &["wait", "1"]);
    assert_eq!(server.ok("owner", &["output", "1"]), "-la --help --json\n");
}

#[test]
fn status_lines_for_exit_signal_and_error() {
    let server = ServerProcess::start(&[], &[]);
    server.ok("owner", &["exec", "sh", "-c", "exit 3"]);
    server.ok("owner", &["exec", "sh", "-c", "kill -KILL $$"]);
    server.ok("owner", &["exec", "/no/such/command"]);
    server.ok("owner", &["exec", "sleep", "30"]);
    for id in ["1", "2", "3"] {
        server.rcmd("owner", &["wait", id]);
    }
    assert_eq!(server.ok("owner", &["status", "1"]), "Completed, exit status: 3\n");
    assert_eq!(server.ok("owner", &["status", "2"]), "Completed, killed by signal: 9 (SIGKILL)\n");
    let error = server.ok("owner", &["status", "3"]);
    assert!(error.starts_with("Error: ") && error.contains("No such file"), "{error}");
    assert_eq!(server.ok("owner", &["status", "4"]), "Running\n");
    let json: Value = serde_json::from_str(&server.ok("owner", &["--json", "status", "4"])).unwrap();
    assert_eq!(json["status"], "running");
    assert!(json["pid"].as_u64().is_some() && json["started_at"].is_string());
}

#[test]
fn another_clients_job_is_invisible() {
    let server = ServerProcess::start(&["alice", "bob"], &[]);
    assert_eq!(server.ok("alice", &["exec", "sleep", "30"]), "1\n");
    for command in ["status", "output", "delete", "stop", "wait"] {
        let out = server.rcmd("bob", &[command, "1"]);
        assert_eq!(out.status.code(), Some(1), "bob {command}");
        assert_eq!(stderr(&out), "rcmd: job 1 not found\n", "bob {command}");
    }
    // Bob's own ids start at 1 too, and are his.
    assert_eq!(server.ok("bob", &["exec", "echo", "bob"]), "1\n");
    assert_eq!(server.ok("alice", &["status", "1"]), "Running\n");
    server.ok("alice", &["delete", "1"]);
    server.ok("bob", &["wait", "1"]);
    assert_eq!(server.ok("bob", &["output", "1"]), "bob\n");
}

#[tokio::test]
async fn not_found_responses_reveal_nothing() {
    let server = ServerProcess::start(&["alice", "bob"], &[]);
    server.ok("alice", &["exec", "sleep", "30"]);
    let bob = http_as(&server, "bob");
    for (method, path) in [
        (Method::GET, "/jobs/1/status"),
        (Method::GET, "/jobs/1/output"),
        (Method::GET, "/jobs/1/output/stdout"),
        (Method::GET, "/jobs/1/output/stderr?follow=true"),
    ] {
        let response = bob.request(method.clone(), server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(response.bytes().await.unwrap().is_empty(), "{path}: no body");
    }
    for (method, path) in [(Method::DELETE, "/jobs/1"), (Method::POST, "/jobs/1/stop")] {
        let alices = bob.request(method.clone(), server.url(path)).send().await.unwrap();
        let missing = bob.request(method, server.url(&path.replace('1', "77"))).send().await.unwrap();
        assert_eq!(alices.status(), StatusCode::NOT_FOUND);
        let alices: Value = alices.json().await.unwrap();
        let missing: Value = missing.json().await.unwrap();
        assert_eq!(alices["error"], "no job with id 1");
        assert_eq!(missing["error"], "no job with id 77", "same shape as a job that never existed");
    }
    let list: Value = get_json(&bob, &server, "/jobs").await;
    assert_eq!(list["jobs"], serde_json::json!([]));
    // Ids past what the records can hold are simply not there.
    for huge in ["9223372036854775808", "18446744073709551615"] {
        let response = bob.get(server.url(&format!("/jobs/{huge}/status"))).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{huge}");
        let response = bob.delete(server.url(&format!("/jobs/{huge}"))).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{huge}");
        let page: Value = get_json(&bob, &server, &format!("/jobs?after={huge}")).await;
        assert_eq!(page["jobs"], serde_json::json!([]), "{huge}");
    }
}

#[tokio::test]
async fn the_json_api_has_the_seed_shapes() {
    let server = ServerProcess::start(&[], &[]);
    let client = http_as(&server, "owner");
    let response =
        client.put(server.url("/jobs")).body(r#"{"cmd": "echo", "args": ["hi"]}"#).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap(), serde_json::json!({"id": 1}));
    let status: Value = get_json(&client, &server, "/jobs/1/status?wait=true").await;
    assert_eq!((status["status"].as_str(), status["exit_code"].as_i64()), (Some("completed"), Some(0)));
    let output: Value = get_json(&client, &server, "/jobs/1/output").await;
    assert_eq!((output["stdout"].as_str(), output["stderr"].as_str()), (Some("hi\n"), Some("")));
    client.put(server.url("/jobs")).body(r#"{"cmd": "/nope"}"#).send().await.unwrap();
    let status: Value = get_json(&client, &server, "/jobs/2/status").await;
    assert_eq!(status["status"], "error");
    assert!(status["error_msg"].as_str().unwrap().contains("No such file"));
    let output: Value = get_json(&client, &server, "/jobs/2/output").await;
    assert_eq!((output["stdout"].as_str(), output["stderr"].as_str()), (Some(""), Some("")));
    let deleted = client.delete(server.url("/jobs/1")).send().await.unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);
    assert!(deleted.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn every_bad_input_gets_a_json_4xx_and_the_server_keeps_serving() {
    let server = ServerProcess::start(&[], &[]);
    let client = http_as(&server, "owner");
    let huge = format!(r#"{{"cmd": "echo", "args": ["{}"]}}"#, "x".repeat(2 << 20));
    let many_args = serde_json::json!({"cmd": "echo", "args": vec!["a"; 5000]}).to_string();
    let cases: Vec<(Method, &str, Vec<u8>)> = vec![
        (Method::PUT, "/jobs", b"not json".to_vec()),
        (Method::PUT, "/jobs", b"".to_vec()),
        (Method::PUT, "/jobs", br#"{"args": ["x"]}"#.to_vec()),
        (Method::PUT, "/jobs", br#"{"cmd": ""}"#.to_vec()),
        (Method::PUT, "/jobs", br#"{"cmd": 5}"#.to_vec()),
        (Method::PUT, "/jobs", br#"{"cmd": "echo", "args": "hi"}"#.to_vec()),
        (Method::PUT, "/jobs", br#"{"cmd": "echo", "args": [1]}"#.to_vec()),
        (Method::PUT, "/jobs", br#"{"cmd": "echo", "extra": 1}"#.to_vec()),
        (Method::PUT, "/jobs", br#"["echo"]"#.to_vec()),
        (Method::PUT, "/jobs", br#"{"cmd": "ec\u0000ho"}"#.to_vec()),
        (Method::PUT, "/jobs", b"{\"cmd\": \"\xff\xfe\"}".to_vec()),
        (Method::PUT, "/jobs", huge.into_bytes()),
        (Method::PUT, "/jobs", many_args.into_bytes()),
        (Method::GET, "/jobs/abc/status", vec![]),
        (Method::GET, "/jobs/0/status", vec![]),
        (Method::GET, "/jobs/-1/status", vec![]),
        (Method::GET, "/jobs/99999999999999999999999/status", vec![]),
        (Method::GET, "/jobs/1/output/stdin", vec![]),
        (Method::GET, "/jobs/1/output/stdout?offset=x", vec![]),
        (Method::GET, "/jobs/1/output/stdout?follow=maybe", vec![]),
        (Method::DELETE, "/jobs/abc", vec![]),
        (Method::GET, "/nothing/here", vec![]),
        (Method::POST, "/jobs", vec![]),
        (Method::PATCH, "/jobs/1/status", vec![]),
    ];
    for (method, path, body) in cases {
        let shown = format!("{method} {path} {:?}", String::from_utf8_lossy(&body[..body.len().min(40)]));
        let response = client.request(method, server.url(path)).body(body).send().await.unwrap();
        assert!(response.status().is_client_error(), "{shown}: {}", response.status());
        let error: Value = response.json().await.unwrap_or_else(|e| panic!("{shown}: not JSON: {e}"));
        assert!(error["error"].as_str().is_some_and(|e| !e.is_empty()), "{shown}: {error}");
    }
    // Nothing was created, and the server still answers correctly.
    let list: Value = get_json(&client, &server, "/jobs").await;
    assert_eq!(list["jobs"], serde_json::json!([]));
    server.ok("owner", &["exec", "true"]);
    assert_eq!(server.ok("owner", &["wait", "1"]), "Completed, exit status: 0\n");
}

#[tokio::test]
async fn tls_refusals_and_the_good_client_still_works() {
    let server = ServerProcess::start(&[], &[]);
    let pki = &server.pki;
    let foreign = pki.wrong_ca_client().path().to_owned();
    let expired = pki.expired_client().path().to_owned();
    let early = pki.not_yet_valid_client().path().to_owned();
    let server_eku = pki.no_client_auth_client().path().to_owned();
    let no_cn = server
        .pki
        .client_with("no CN", |p| {
            p.distinguished_name = rcgen::DistinguishedName::new();
            p.distinguished_name.push(rcgen::DnType::OrganizationName, "no CN here");
        })
        .path()
        .to_owned();
    let empty_cn = server.pki.client_with("", |_| {}).path().to_owned();
    let cases = [
        ("no certificate", None),
        ("foreign CA", Some(foreign.as_path())),
        ("expired", Some(expired.as_path())),
        ("not yet valid", Some(early.as_path())),
        ("server-only EKU", Some(server_eku.as_path())),
        ("no CN", Some(no_cn.as_path())),
        ("empty CN", Some(empty_cn.as_path())),
    ];
    for (what, dir) in cases {
        let result = http(&server, dir).get(server.url("/jobs")).send().await;
        assert!(result.is_err(), "{what}: the server must refuse, got {:?}", result.map(|r| r.status()));
        assert_eq!(server.ok("owner", &["list", "--json"]), "{\"jobs\":[]}\n", "after {what}");
    }
    crate::util::wait_until("refusals are logged", Duration::from_secs(30), || {
        server.log().matches("connection refused").count() >= cases.len()
    });
}

#[test]
fn a_tls12_only_client_is_refused() {
    let server = ServerProcess::start(&[], &[]);
    let out = server.openssl_s_client(&["-tls1_2"]);
    assert!(!out.status.success(), "TLS 1.2 must fail");
    let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("alert") || text.contains("protocol"), "{text}");
    assert!(server.ok("owner", &["list"]).starts_with("    ID"));
}

#[test]
fn a_tls13_openssl_client_negotiates_tls13() {
    let server = ServerProcess::start(&[], &[]);
    let out = server.openssl_s_client(&[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("TLSv1.3"), "{text}");
}

#[test]
fn the_client_checks_the_server_name() {
    // The certificate names 127.0.0.1 and localhost, not 127.0.0.2.
    let server = ServerProcess::start(&[], &["--listen", "127.0.0.2:0"]);
    let port = server.port().to_owned();
    let out = Command::new(crate::util::server::RCMD)
        .arg(server.pki.cert_dir())
        .arg(format!("127.0.0.2:{port}"))
        .arg("list")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    let message = stderr(&out);
    assert!(message.contains("TLS") && message.contains("not valid for name"), "{message}");
}

#[test]
fn binary_output_round_trips_byte_for_byte() {
    let server = ServerProcess::start(&[], &[]);
    let script = "i=0; while [ $i -lt 256 ]; do printf \"\\\\$(printf %o $i)\"; i=$((i+1)); done; printf '\\377\\000err' >&2";
    server.ok("owner", &["exec", "sh", "-c", script]);
    server.ok("owner", &["wait", "1"]);
    let out = server.rcmd("owner", &["output", "1"]);
    assert!(out.status.success());
    assert_eq!(out.stdout, (0..=255u8).collect::<Vec<_>>());
    assert_eq!(out.stderr, b"\xff\x00err");
}

#[test]
fn graceful_shutdown_leaves_no_job_process() {
    let mut server = ServerProcess::start(&[], &[]);
    let sleep = crate::util::marked_sleep(server.data.path(), "server-shutdown");
    for _ in 0..3 {
        server.ok("owner", &["exec", "sh", "-c", &format!("{sleep} 1000 & {sleep} 1000")]);
    }
    crate::util::wait_until("the jobs run", Duration::from_secs(10), || {
        crate::util::pids_matching(&sleep).len() >= 6
    });
    let status = server.terminate();
    assert!(status.success(), "exit 0 on SIGTERM: {status:?}");
    crate::util::wait_no_process(&sleep);
}

#[test]
fn cli_errors_for_an_unreachable_server_and_a_missing_cert_dir() {
    let server = ServerProcess::start(&[], &[]);
    let out = Command::new(crate::util::server::RCMD)
        .arg(server.pki.cert_dir())
        .args(["127.0.0.1:1", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    let message = stderr(&out);
    assert!(message.contains("cannot connect to 127.0.0.1:1") && message.lines().count() == 1, "{message}");

    let out = Command::new(crate::util::server::RCMD)
        .args(["/no/such/dir", &server.addr, "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    let message = stderr(&out);
    assert!(message.contains("/no/such/dir/ca.crt: missing") && message.lines().count() == 1, "{message}");

    let out = Command::new(crate::util::server::RCMD).args(["/tmp", "nonsense", "list"]).output().unwrap();
    assert_eq!(out.status.code(), Some(255));
    assert!(stderr(&out).contains("HOST:PORT"));

    let out = server.rcmd("owner", &["status", "notanumber"]);
    assert_eq!(out.status.code(), Some(2), "usage error");
}

#[test]
fn an_expired_client_certificate_fails_locally_with_a_clear_error() {
    let server = ServerProcess::start(&[], &[]);
    let expired = server.pki.expired_client().path().to_owned();
    let out =
        Command::new(crate::util::server::RCMD).arg(&expired).args([&server.addr, "list"]).output().unwrap();
    assert_eq!(out.status.code(), Some(255));
    assert!(stderr(&out).contains("expired"), "{}", stderr(&out));
    assert!(!server.log().contains("connection refused"), "no connection was made");
}

#[test]
fn serve_without_certificates_says_how_to_make_them() {
    let dir = crate::util::TempDir::new("no-certs");
    let out = Command::new(crate::util::server::RCMD)
        .args(["serve", "--listen", "127.0.0.1:0", "--certs"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let message = stderr(&out);
    assert!(message.contains("ca.crt: missing") && message.contains("rcmd pki init"), "{message}");
}

/// `rcmd serve --dev` on an ephemeral loopback port, with its stdout lines.
fn start_dev(dir: &std::path::Path) -> (std::process::Child, impl Iterator<Item = String>) {
    let mut server = Command::new(crate::util::server::RCMD)
        .args(["serve", "--dev", "--listen", "127.0.0.1:0", "--certs"])
        .arg(dir.join("certs"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(server.stdout.take().unwrap());
    (server, std::io::BufRead::lines(stdout).map(Result::unwrap))
}

#[test]
fn serve_dev_makes_a_pki_and_prints_a_command_that_works() {
    let dir = crate::util::TempDir::new("dev");
    let certs = dir.path().join("certs");
    let (mut server, mut lines) = start_dev(dir.path());
    assert_eq!(lines.next().unwrap(), format!("created a new PKI in {}", certs.display()));
    assert!(lines.next().unwrap().starts_with("rcmd listening on 127.0.0.1:"));
    let try_line = lines.next().unwrap();
    let words: Vec<&str> = try_line.strip_prefix("try: ").unwrap().split(' ').collect();
    assert_eq!(words[0], crate::util::server::RCMD, "the printed command runs this very binary");
    let out = Command::new(words[0]).args(&words[1..]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"hello\n");
    let _ = server.kill();
    let _ = server.wait();
    // A second start reuses the PKI instead of replacing it.
    let ca = std::fs::read(certs.join("ca.key")).unwrap();
    let (mut again, mut lines) = start_dev(dir.path());
    assert!(lines.next().unwrap().starts_with("rcmd listening on"), "no new PKI this time");
    let _ = again.kill();
    let _ = again.wait();
    assert_eq!(std::fs::read(certs.join("ca.key")).unwrap(), ca);
    // And dev mode stays on loopback.
    let refused = Command::new(crate::util::server::RCMD)
        .args(["serve", "--dev", "--listen", "0.0.0.0:0", "--certs"])
        .arg(&certs)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("loopback only"), "{}", stderr(&refused));
}

#[test]
fn a_server_failure_tells_the_client_no_server_path_and_logs_its_cause_once() {
    let data = TempDir::new("broken-data-dir");
    // A data directory whose client folder cannot be made: a file is in its way.
    let data_dir = data.path().join("data");
    let output = data_dir.join("output");
    std::fs::create_dir_all(&output).unwrap();
    for dir in [&data_dir, &output] {
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    }
    std::fs::write(output.join("6f776e6572"), "not a folder").unwrap();
    let server = ServerProcess::start(&[], &["--data-dir", data_dir.to_str().unwrap()]);
    let out = server.rcmd("owner", &["exec", "true"]);
    assert_eq!(out.status.code(), Some(1));
    let said = stderr(&out);
    assert!(said.contains("cannot open the job store: an error on the server"), "{said}");
    assert!(!said.contains(data.path().to_str().unwrap()), "a server path reached the client: {said}");
    assert!(!said.contains("os error"), "a server-side cause reached the client: {said}");
    crate::util::wait_until("the failure is logged", std::time::Duration::from_secs(5), || {
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

#[tokio::test]
async fn a_job_id_has_one_spelling_only() {
    let server = ServerProcess::start(&[], &[]);
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
    let server = ServerProcess::start(&[], &[]);
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
