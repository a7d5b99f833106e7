//! Connections a hostile or broken peer cannot abuse: floods before
//! authentication, caps per client, idle and slow peers, and peers that ask
//! for output and never read it. Every wait is on a condition with a
//! deadline; memory is measured on the server process this test started.

use std::sync::Arc;
use std::time::Duration;

use crate::util::server::{ServerProcess, tls_config};
use axum::http::{Method, Request};
use bytes::Bytes;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// A generous bound for anything that should happen at once.
const DEADLINE: Duration = Duration::from_secs(60);

/// A TLS connection to the server as `client`, offering `alpn`.
async fn tls_to(server: &ServerProcess, client: &str, alpn: &[u8]) -> TlsStream<TcpStream> {
    let _ = rcmd::pki::crypto_provider().install_default();
    let mut config = tls_config(&server.pki.cert_dir().join("ca.crt"), Some(&server.client_dir(client)));
    config.alpn_protocols = vec![alpn.to_vec()];
    let tcp = TcpStream::connect(&server.addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    TlsConnector::from(Arc::new(config)).connect(name, tcp).await.expect("TLS handshake")
}

/// An HTTP/2 connection with the h2 crate. Streams start with `window` bytes
/// of flow control: 0 means the server may send no output at all.
async fn h2_connect(
    server: &ServerProcess,
    client: &str,
    window: u32,
) -> (h2::client::SendRequest<Bytes>, JoinHandle<Result<(), h2::Error>>) {
    let tls = tls_to(server, client, b"h2").await;
    let (send, connection) =
        h2::client::Builder::new().initial_window_size(window).handshake(tls).await.unwrap();
    (send, tokio::spawn(connection))
}

/// Starts a GET on an HTTP/2 connection; returns its response once the
/// headers arrived.
async fn h2_get(
    send: &mut h2::client::SendRequest<Bytes>,
    server: &ServerProcess,
    path: &str,
) -> h2::RecvStream {
    let request = Request::builder().method(Method::GET).uri(server.url(path)).body(()).unwrap();
    let (response, _) = send.clone().ready().await.unwrap().send_request(request, true).unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.status(), 200, "GET {path}");
    response.into_body()
}

/// Kilobytes of a process's memory: `field` is VmRSS or VmHWM (the peak).
fn kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn count(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_silent_connections_from_one_address_do_not_lock_out_another() {
    let server = ServerProcess::start(&[], &["--max-handshakes", "64", "--handshake-timeout", "600"]);
    let mut flood = Vec::new();
    for _ in 0..1000 {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        flood.push(socket.connect(server.addr.parse().unwrap()).await.unwrap());
    }
    // The flood took its share of the places (32) and the line of waiting
    // connections (256), and holds them: the handshake timeout is ten
    // minutes. The rest of it was closed at once.
    crate::util::wait_until("the flood past the line is refused", DEADLINE, || {
        server.log().contains("already wait for a TLS handshake place")
    });
    let mut client = server.command("owner", &["run", "echo", "through"]);
    let out = tokio::task::spawn_blocking(move || client.output()).await.unwrap().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "through\n", "{}", String::from_utf8_lossy(&out.stderr));
    // About 900 refusals, logged at a bounded rate, the rest counted.
    crate::util::wait_until("the suppressed refusals are counted", DEADLINE, || {
        server.log().contains("more connections were refused")
    });
    let log = server.log();
    assert!(count(&log, "connection refused") <= 20, "{} refusal lines", count(&log, "connection refused"));
    drop(flood);
}

#[test]
fn silent_connections_hold_the_handshake_places_until_the_handshake_timeout() {
    let server = ServerProcess::start(&[], &["--max-handshakes", "2", "--handshake-timeout", "5"]);
    // Two hold the places, eight wait in line, and the next finds the line
    // full: proof that the silent ones hold places.
    let _silent: Vec<std::net::TcpStream> =
        (0..11).map(|_| std::net::TcpStream::connect(&server.addr).unwrap()).collect();
    crate::util::wait_until("the eleventh is refused", DEADLINE, || {
        server.log().contains("already wait for a TLS handshake place")
    });
    // The timeout frees the places; clients get in again.
    crate::util::wait_until("the silent connections time out", DEADLINE, || {
        server.rcmd("owner", &["list"]).status.success()
    });
}

#[tokio::test]
async fn a_client_past_its_connection_cap_is_refused_and_others_are_not() {
    let server = ServerProcess::start(&["alice", "bob"], &["--max-client-connections", "2"]);
    let mut held = Vec::new();
    for _ in 0..2 {
        let (mut send, task) = h2_connect(&server, "alice", 65_535).await;
        drop(h2_get(&mut send, &server, "/jobs").await);
        held.push((send, task));
    }
    let third = server.rcmd("alice", &["list"]);
    assert_eq!(third.status.code(), Some(255), "alice's third connection is refused");
    crate::util::wait_until("the refusal is logged", DEADLINE, || {
        server.log().contains("--max-client-connections")
    });
    assert!(server.rcmd("bob", &["list"]).status.success(), "bob is not affected");
    drop(held.pop());
    crate::util::wait_until("alice's place comes back", DEADLINE, || {
        server.rcmd("alice", &["list"]).status.success()
    });
}

#[tokio::test]
async fn past_the_connection_cap_new_clients_are_refused_until_others_leave() {
    let server = ServerProcess::start(&["alice", "bob"], &["--max-connections", "2"]);
    let mut held = Vec::new();
    for client in ["alice", "bob"] {
        let (mut send, task) = h2_connect(&server, client, 65_535).await;
        drop(h2_get(&mut send, &server, "/jobs").await);
        held.push((send, task));
    }
    assert_eq!(server.rcmd("owner", &["list"]).status.code(), Some(255));
    crate::util::wait_until("the refusal is logged", DEADLINE, || server.log().contains("--max-connections"));
    drop(held);
    crate::util::wait_until("room again", DEADLINE, || server.rcmd("owner", &["list"]).status.success());
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_but_not_one_with_a_request_in_progress() {
    let server = ServerProcess::start(&[], &["--idle-timeout", "1"]);
    // A follow of a job that stays quiet for longer than the idle timeout.
    server.ok("owner", &["exec", "sh", "-c", "sleep 3; echo done"]);
    let (mut send, connection) = h2_connect(&server, "owner", 65_535).await;
    let mut body = h2_get(&mut send, &server, "/jobs/1/output/stdout?follow=true").await;
    let mut output = Vec::new();
    while let Some(chunk) = tokio::time::timeout(DEADLINE, body.data()).await.expect("the follow ends") {
        let chunk = chunk.expect("the follow is not cut");
        let _ = body.flow_control().release_capacity(chunk.len());
        output.extend_from_slice(&chunk);
    }
    assert_eq!(output, b"done\n");
    // Now idle: the h2 client answers the server's pings, so only the idle
    // timeout can close it.
    drop(body);
    tokio::time::timeout(DEADLINE, connection).await.expect("the idle connection is closed").unwrap().ok();
}

#[tokio::test]
async fn a_request_body_sent_a_byte_a_second_is_cut_with_408() {
    let server = ServerProcess::start(&[], &["--request-timeout", "1"]);
    let tls = tls_to(&server, "owner", b"http/1.1").await;
    let (mut reader, mut writer) = tokio::io::split(tls);
    writer
        .write_all(b"PUT /jobs HTTP/1.1\r\nhost: localhost\r\ncontent-length: 1000\r\n\r\n{\"cmd\": \"true\"")
        .await
        .unwrap();
    // The body would take 1,000 seconds at this rate.
    let trickle = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if writer.write_all(b" ").await.is_err() {
                return;
            }
        }
    });
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(DEADLINE, async {
        while !response.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = reader.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed without an answer");
            response.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("an answer before the body ends");
    assert!(response.starts_with(b"HTTP/1.1 408"), "{}", String::from_utf8_lossy(&response));
    trickle.abort();
    assert!(!server.rcmd("owner", &["status", "1"]).status.success(), "no job was made");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_stalled_output_streams_stay_within_the_budget_and_memory_returns() {
    // Nothing is reclaimed for stalling in this test: it measures the budget.
    let server = ServerProcess::start(&[], &["--send-timeout", "3600"]);
    server.ok("owner", &["exec", "head", "-c", "16000000", "/dev/zero"]);
    server.ok("owner", &["wait", "1"]);
    server.ok("owner", &["output", "1"]);
    let idle = kib(server.pid(), "VmRSS");
    let mut connections = Vec::new();
    let mut streams = Vec::new();
    for _ in 0..20 {
        let (mut send, task) = h2_connect(&server, "owner", 0).await;
        for _ in 0..100 {
            streams.push(h2_get(&mut send, &server, "/jobs/1/output/stdout").await);
        }
        connections.push((send, task));
    }
    // Every stream is open and its body wants to send; the budget (64 MiB)
    // lets a quarter of a thousand hold a chunk and the rest wait.
    crate::util::wait_until("the budget is in use", DEADLINE, || {
        kib(server.pid(), "VmRSS") > idle + 32 * 1024
    });
    let loaded = kib(server.pid(), "VmRSS");
    drop(streams);
    for (_, task) in connections {
        task.abort();
    }
    crate::util::wait_until("memory returns near idle", DEADLINE, || {
        kib(server.pid(), "VmRSS") < idle + 16 * 1024
    });
    let peak = kib(server.pid(), "VmHWM");
    eprintln!("idle {idle} KiB, loaded {loaded} KiB, peak {peak} KiB");
    assert!(peak < 160 * 1024, "peak RSS {peak} KiB with 2,000 stalled streams");
    assert!(server.rcmd("owner", &["list"]).status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_reads_nothing_is_cut_while_others_wait_for_the_budget() {
    let server = ServerProcess::start(
        &[],
        &["--max-response-buffer", "1048576", "--send-timeout", "1", "--idle-timeout", "3600"],
    );
    server.ok("owner", &["exec", "head", "-c", "8000000", "/dev/zero"]);
    server.ok("owner", &["wait", "1"]);
    let (mut send, stalled) = h2_connect(&server, "owner", 0).await;
    let mut streams = Vec::new();
    for _ in 0..8 {
        streams.push(h2_get(&mut send, &server, "/jobs/1/output/stdout").await);
    }
    // The stalled streams hold the whole budget; another reader must wait
    // for it, and gets it once the stalled connection is cut.
    let mut reader = server.command("owner", &["output", "1"]);
    let out = tokio::time::timeout(DEADLINE, tokio::task::spawn_blocking(move || reader.output()))
        .await
        .expect("the other reader is not held up for good")
        .unwrap()
        .unwrap();
    assert_eq!(out.stdout.len(), 8_000_000);
    tokio::time::timeout(DEADLINE, stalled).await.expect("the stalled connection is closed").unwrap().ok();
    assert!(server.log().contains("read nothing of its responses"));
}
