//! Following output live over HTTPS, and `rcmd ... run` behaving like ssh.

use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

use crate::util::server::{ServerProcess, http_as};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

/// A job that prints numbered lines for about `seconds`.
fn ticker(lines: u32, pause: &str) -> Vec<String> {
    let script = format!("i=0; while [ $i -lt {lines} ]; do echo tick $i; i=$((i+1)); sleep {pause}; done");
    vec!["exec".into(), "sh".into(), "-c".into(), script]
}

fn expected_ticks(lines: u32) -> String {
    (0..lines).map(|i| format!("tick {i}\n")).collect()
}

fn exec(server: &ServerProcess, args: &[String]) -> String {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    server.ok("owner", &args).trim().to_owned()
}

#[test]
fn early_and_late_followers_get_identical_complete_output() {
    let server = ServerProcess::start(&[], &[]);
    let id = exec(&server, &ticker(20, "0.02"));
    let early = server.ok("owner", &["logs", &id, "-f"]);
    let late = server.ok("owner", &["logs", &id, "-f"]);
    assert_eq!(early, expected_ticks(20));
    assert_eq!(late, early);
    assert_eq!(server.ok("owner", &["output", &id, "--follow"]), early);
}

#[test]
fn five_concurrent_followers_get_identical_bytes_and_end_with_the_job() {
    let server = ServerProcess::start(&[], &[]);
    let id = exec(&server, &ticker(100, "0.02"));
    let followers: Vec<_> = (0..5)
        .map(|_| server.command("owner", &["logs", &id, "-f"]).stdout(Stdio::piped()).spawn().unwrap())
        .collect();
    for follower in followers {
        let out = follower.wait_with_output().unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8(out.stdout).unwrap(), expected_ticks(100));
    }
    // Every stream ended because the job did.
    assert_eq!(server.ok("owner", &["status", &id]), "Completed, exit status: 0\n");
}

#[tokio::test]
async fn following_from_an_offset_yields_exactly_the_remainder() {
    let server = ServerProcess::start(&[], &[]);
    let id = exec(&server, &ticker(10, "0.01"));
    let client = http_as(&server, "owner");
    let full = expected_ticks(10);
    for offset in [0, 1, 7, full.len() - 1, full.len(), full.len() + 5] {
        let url = server.url(&format!("/jobs/{id}/output/stdout?follow=true&offset={offset}"));
        let body = client.get(url).send().await.unwrap().bytes().await.unwrap();
        assert_eq!(body, full.as_bytes().get(offset..).unwrap_or_default(), "offset {offset}");
    }
}

#[tokio::test]
async fn a_follower_that_disconnects_leaves_the_server_and_job_unharmed() {
    let server = ServerProcess::start(&[], &[]);
    let id = exec(&server, &ticker(30, "0.02"));
    let client = http_as(&server, "owner");
    {
        let mut response =
            client.get(server.url(&format!("/jobs/{id}/output/stdout?follow=true"))).send().await.unwrap();
        let first = response.chunk().await.unwrap().unwrap();
        assert!(first.starts_with(b"tick 0\n"));
        // Dropped here, mid-stream.
    }
    drop(client);
    assert_eq!(server.ok("owner", &["logs", &id, "-f"]), expected_ticks(30));
    assert_eq!(server.ok("owner", &["status", &id]), "Completed, exit status: 0\n");
}

#[tokio::test]
async fn a_slow_follower_holds_back_only_itself() {
    let server = ServerProcess::start(&[], &[]);
    // Far more than the socket buffers between server and client hold.
    let id = exec(
        &server,
        &["exec".into(), "sh".into(), "-c".into(), "head -c 20000000 /dev/zero; echo end".into()],
    );
    let client = http_as(&server, "owner");
    let stalled =
        client.get(server.url(&format!("/jobs/{id}/output/stdout?follow=true"))).send().await.unwrap();
    // While that follower reads nothing, the job finishes and another
    // follower gets everything.
    let out = server.command("owner", &["logs", &id, "-f"]).output().unwrap();
    assert_eq!(out.stdout.len(), 20_000_004);
    assert_eq!(server.ok("owner", &["status", &id]), "Completed, exit status: 0\n");
    // The stalled one still gets every byte when it reads at last.
    assert_eq!(stalled.bytes().await.unwrap().len(), 20_000_004);
}

#[test]
fn binary_output_through_follow_is_byte_exact() {
    let server = ServerProcess::start(&[], &[]);
    let script = "i=0; while [ $i -lt 256 ]; do printf \"\\\\$(printf %o $i)\"; i=$((i+1)); done; sleep 0.1; head -c 300000 /dev/urandom >&2";
    let id = exec(&server, &["exec".into(), "sh".into(), "-c".into(), script.into()]);
    let out = server.command("owner", &["logs", &id, "-f"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout[..256], (0..=255u8).collect::<Vec<_>>()[..]);
    assert_eq!(out.stderr.len(), 300000);
    let again = server.command("owner", &["output", &id]).output().unwrap();
    assert_eq!(again.stdout, out.stdout);
    assert_eq!(again.stderr, out.stderr, "the followed bytes equal the stored bytes");
}

#[test]
fn run_streams_and_exits_with_the_jobs_status() {
    let server = ServerProcess::start(&[], &[]);
    let out = server.rcmd("owner", &["run", "sh", "-c", "echo out; echo err >&2"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!((out.stdout.as_slice(), out.stderr.as_slice()), (&b"out\n"[..], &b"err\n"[..]));
    assert_eq!(server.rcmd("owner", &["run", "sh", "-c", "exit 3"]).status.code(), Some(3));
    assert_eq!(server.rcmd("owner", &["run", "sh", "-c", "kill -TERM $$"]).status.code(), Some(128 + 15));
}

#[test]
fn run_rm_deletes_the_job_once_it_has_ended() {
    let server = ServerProcess::start(&[], &[]);
    let out = server.rcmd("owner", &["run", "--rm", "sh", "-c", "echo kept; exit 4"]);
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(out.stdout, b"kept\n");
    assert_eq!(server.ok("owner", &["--json", "list"]), "{\"jobs\":[]}\n");
    // Without --rm the job stays.
    server.ok("owner", &["run", "true"]);
    assert!(server.ok("owner", &["list"]).contains("true"));
}

#[test]
fn run_of_a_missing_command_fails_clearly() {
    let server = ServerProcess::start(&[], &[]);
    let out = server.rcmd("owner", &["run", "/no/such/command", "arg"]);
    assert_eq!(out.status.code(), Some(127));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot start \"/no/such/command\"") && stderr.contains("No such file"),
        "{stderr}"
    );
}

#[test]
fn ctrl_c_stops_the_remote_job() {
    let server = ServerProcess::start(&[], &[]);
    let sleep = crate::util::marked_sleep(server.data.path(), "ctrl-c");
    let mut cli = server
        .command("owner", &["run", "sh", "-c", &format!("echo started; {sleep} 1000")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 8];
    cli.stdout.as_mut().unwrap().read_exact(&mut first).unwrap();
    assert_eq!(&first, b"started\n");
    crate::util::wait_until("the job's sleep runs", Duration::from_secs(10), || {
        !crate::util::pids_matching(&sleep).is_empty()
    });
    kill(Pid::from_raw(cli.id() as i32), Signal::SIGINT).unwrap();
    let out = cli.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(128 + 15), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(server.ok("owner", &["status", "1"]), "Completed, killed by signal: 15 (SIGTERM)\n");
    crate::util::wait_no_process(&sleep);
}

#[test]
fn stop_wait_and_list() {
    let server = ServerProcess::start(&[], &[]);
    server.ok("owner", &["exec", "sleep", "1000"]);
    server.ok("owner", &["exec", "sh", "-c", "exit 5"]);
    assert_eq!(server.rcmd("owner", &["wait", "2"]).status.code(), Some(5));
    let list = server.ok("owner", &["list"]);
    assert!(
        list.contains("Running") && list.contains("sleep 1000") && list.contains("exit status: 5"),
        "{list}"
    );
    assert_eq!(server.ok("owner", &["stop", "1"]), "Completed, killed by signal: 15 (SIGTERM)\n");
    let out = server.rcmd("owner", &["wait", "1"]);
    assert_eq!(out.status.code(), Some(143));
    let list: Value = serde_json::from_str(&server.ok("owner", &["--json", "list"])).unwrap();
    let jobs = list["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2);
    assert_eq!((jobs[0]["id"].as_u64(), jobs[0]["signal"].as_i64()), (Some(1), Some(15)));
    assert!(jobs[0]["finished_at"].is_string() && jobs[0]["pid"].is_u64());
    let created: Value = serde_json::from_str(&server.ok("owner", &["--json", "exec", "true"])).unwrap();
    assert_eq!(created["id"], 3);
    let waited: Value = serde_json::from_str(&server.ok("owner", &["--json", "wait", "3"])).unwrap();
    assert_eq!((waited["status"].as_str(), waited["exit_code"].as_i64()), (Some("completed"), Some(0)));
}

#[test]
fn run_resumes_after_the_connection_drops() {
    // A proxy on loopback that cuts the first connection after some bytes:
    // the client must resume at its offset, losing and doubling nothing.
    let server = ServerProcess::start(&[], &[]);
    let proxy = crate::util::proxy::CuttingProxy::start(&server.addr, 20_000);
    let out = std::process::Command::new(crate::util::server::RCMD)
        .arg(server.pki.cert_dir())
        .arg(&proxy.addr)
        .args(["run", "sh", "-c", "i=0; while [ $i -lt 20000 ]; do echo line $i; i=$((i+1)); done"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let expected: String = (0..20000).map(|i| format!("line {i}\n")).collect();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
    assert!(proxy.cuts() >= 1, "the proxy cut a connection");
}
