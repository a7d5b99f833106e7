//! Certificate lifecycle: list, revoke, renew, show, reload on SIGHUP, and
//! expiry warnings, against a real server.

use std::process::Command;
use std::time::Duration;

use crate::util::server::{RCMD, ServerProcess, tls_config};
use futures_util::StreamExt;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

fn pki(args: &[&str], dir: &std::path::Path) -> String {
    let out = Command::new(RCMD).arg("pki").args(args).arg("--dir").arg(dir).output().unwrap();
    assert!(out.status.success(), "pki {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn hangup(server: &ServerProcess) {
    kill(Pid::from_raw(server.pid() as i32), Signal::SIGHUP).unwrap();
}

fn works(server: &ServerProcess, client: &str) -> bool {
    server.rcmd(client, &["list"]).status.success()
}

/// The serial of the certificate the server presents to a new connection.
fn presented_serial(server: &ServerProcess) -> rcmd::pki::Serial {
    let handshake = server.openssl_s_client(&[]);
    let mut x509 = Command::new("openssl")
        .args(["x509", "-noout", "-serial"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut x509.stdin.take().unwrap(), &handshake.stdout).unwrap();
    let out = x509.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().trim_start_matches("serial=").parse().unwrap()
}

#[test]
fn a_revoked_client_is_refused_after_sighup_and_its_renewal_works() {
    let server = ServerProcess::start(&["alice", "bob"], &[]);
    let certs = server.pki.cert_dir();
    assert!(works(&server, "alice"));
    let out = pki(&["revoke", "alice"], &certs);
    assert!(out.contains("revoked client alice"), "{out}");
    assert!(pki(&["revoke", "alice"], &certs).contains("already revoked"), "revoking twice is harmless");
    hangup(&server);
    crate::util::wait_until("alice is refused", Duration::from_secs(10), || !works(&server, "alice"));
    let out = server.rcmd("alice", &["list"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&out.stderr).contains("TLS"));
    assert!(works(&server, "bob"), "bob is unaffected");
    // A renewed certificate has a new serial, which is not on the CRL.
    pki(&["renew", "alice"], &certs);
    assert!(works(&server, "alice"));
    assert!(server.log().contains("reloaded the certificates"));
}

/// A reqwest client as `client` that speaks only `alpn` (h2 or http/1.1).
fn http_speaking(server: &ServerProcess, client: &str, alpn: &[u8]) -> reqwest::Client {
    let _ = rcmd::pki::crypto_provider().install_default();
    let mut tls = tls_config(&server.pki.cert_dir().join("ca.crt"), Some(&server.client_dir(client)));
    tls.alpn_protocols = vec![alpn.to_vec()];
    reqwest::Client::builder().tls_backend_preconfigured(tls).build().unwrap()
}

/// Revokes bob while he and alice each follow a job's output and bob has a
/// connection open besides (kept alive on HTTP/1.1, the same one on HTTP/2).
async fn revocation_cuts_live_connections(alpn: &[u8]) {
    let server = ServerProcess::start(&["alice", "bob"], &[]);
    let ticker = "while :; do echo tick; sleep 0.05; done";
    let (alice, bob) = (http_speaking(&server, "alice", alpn), http_speaking(&server, "bob", alpn));
    let mut follows = Vec::new();
    for client in [&alice, &bob] {
        let created =
            client.put(server.url("/jobs")).json(&serde_json::json!({"cmd": "sh", "args": ["-c", ticker]}));
        assert!(created.send().await.unwrap().status().is_success());
        let response = client.get(server.url("/jobs/1/output/stdout?follow=true")).send().await.unwrap();
        assert_eq!(
            response.version(),
            if alpn == b"h2" { reqwest::Version::HTTP_2 } else { reqwest::Version::HTTP_11 }
        );
        let mut follow = response.bytes_stream();
        // Connected and streaming before the reload.
        follow.next().await.unwrap().unwrap();
        follows.push(follow);
    }
    let mut bob_follow = follows.pop().unwrap();
    let mut alice_follow = follows.pop().unwrap();
    // Bob's other connection works (on HTTP/1.1 it stays open, kept alive).
    assert!(bob.get(server.url("/jobs/1/status")).send().await.unwrap().status().is_success());

    pki(&["revoke", "bob"], &server.pki.cert_dir());
    hangup(&server);
    let ended = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(Ok(_)) = bob_follow.next().await {}
    });
    ended.await.expect("bob's follow stream is ended by the reload");
    // Nothing of bob's connections is left: a request fails, as a new
    // connection is refused at the handshake.
    let after = bob.put(server.url("/jobs")).json(&serde_json::json!({"cmd": "true"})).send().await;
    assert!(after.is_err(), "bob still creates jobs: {after:?}");
    // Alice's stream goes on, and her connection still serves her.
    for _ in 0..3 {
        alice_follow.next().await.unwrap().expect("alice's stream goes on");
    }
    assert!(alice.get(server.url("/jobs/1/status")).send().await.unwrap().status().is_success());
    let log = server.log();
    assert!(log.lines().any(|l| l.contains("closing a connection") && l.contains("bob")), "{log}");
    assert!(!log.lines().any(|l| l.contains("closing a connection") && l.contains("alice")), "{log}");
}

#[tokio::test]
async fn revoking_a_client_closes_its_open_http1_connections_and_ends_its_stream() {
    revocation_cuts_live_connections(b"http/1.1").await;
}

#[tokio::test]
async fn revoking_a_client_closes_its_open_http2_connection_and_ends_its_stream() {
    revocation_cuts_live_connections(b"h2").await;
}

#[test]
fn a_renewed_server_certificate_is_used_by_new_connections_while_old_streams_go_on() {
    let server = ServerProcess::start(&[], &[]);
    let certs = server.pki.cert_dir();
    let old_serial = rcmd::pki::read_info(&certs.join("server.crt")).unwrap().serial;
    assert_eq!(presented_serial(&server), old_serial);
    // Forty ticks, the first one only once the follower is connected.
    let gate = server.data.path().join("gate");
    let script = format!(
        "while [ ! -e {} ]; do sleep 0.01; done; i=0; while [ $i -lt 40 ]; do echo tick $i; i=$((i+1)); sleep 0.05; done",
        gate.display()
    );
    server.ok("owner", &["exec", "sh", "-c", &script]);
    let mut follower =
        server.command("owner", &["logs", "1", "-f"]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut stdout = std::io::BufReader::new(follower.stdout.take().unwrap());
    crate::util::wait_until("the follower is connected", Duration::from_secs(30), || {
        server.log().contains("/jobs/1/output/stdout")
    });
    std::fs::write(&gate, "").unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
    assert_eq!(first, "tick 0\n", "the stream is live before the reload");
    pki(&["renew", "server"], &certs);
    let new_serial = rcmd::pki::read_info(&certs.join("server.crt")).unwrap().serial;
    assert_ne!(new_serial, old_serial);
    hangup(&server);
    crate::util::wait_until("new connections see the new certificate", Duration::from_secs(10), || {
        presented_serial(&server) == new_serial
    });
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(follower.wait().unwrap().success());
    let expected: String = (1..40).map(|i| format!("tick {i}\n")).collect();
    assert_eq!(rest, expected, "the stream opened before the reload continued");
    // On the same connection: the client did not have to resume it.
    assert_eq!(server.log().matches("/jobs/1/output/stdout").count(), 1, "one request, not resumed");
}

#[test]
fn a_broken_reload_keeps_the_old_configuration() {
    // alice checks: the CA's folder, which is also owner's, gets the broken
    // CRL, and a client refuses to start with one.
    let server = ServerProcess::start(&["alice"], &[]);
    let certs = server.pki.cert_dir();
    std::fs::write(certs.join("crl.pem"), "not a CRL").unwrap();
    hangup(&server);
    crate::util::wait_until("the failed reload is logged", Duration::from_secs(10), || {
        server.log().contains("reload failed")
    });
    assert!(server.log().contains("crl.pem"));
    assert!(works(&server, "alice"));

    std::fs::remove_file(certs.join("crl.pem")).unwrap();
    let other = rcmd::testing::TestPki::new();
    std::fs::copy(other.cert_dir().join("server.key"), certs.join("server.key")).unwrap();
    hangup(&server);
    crate::util::wait_until("the second failed reload is logged", Duration::from_secs(10), || {
        server.log().contains("server.key")
    });
    assert!(works(&server, "alice"), "new connections still get the old, working certificate");
}

#[test]
fn list_shows_revoked_expiring_and_expired_certificates() {
    let pki_dir = rcmd::testing::TestPki::with_clients(&["alice"]);
    let certs = pki_dir.cert_dir();
    pki(&["client", "soon", "--days", "3"], &certs);
    pki(&["client", "gone", "--days", "0"], &certs);
    pki(&["revoke", "alice"], &certs);
    let rows: Vec<Value> = serde_json::from_str(&pki(&["list", "--json"], &certs)).unwrap();
    let row = |cn: &str| rows.iter().find(|r| r["cn"] == cn).unwrap().clone();
    assert_eq!(row("alice")["state"], "revoked");
    assert_eq!(row("soon")["state"], "valid");
    assert!((2..=3).contains(&row("soon")["days_left"].as_i64().unwrap()));
    assert_eq!(row("gone")["state"], "expired");
    assert_eq!(row("owner")["kind"], "client");
    assert_eq!(rows.iter().filter(|r| r["kind"] == "ca").count(), 1);
    let table = pki(&["list"], &certs);
    assert!(table.lines().any(|l| l.starts_with("alice") && l.ends_with("revoked")), "{table}");
    assert!(table.lines().any(|l| l.starts_with("gone") && l.ends_with("expired")), "{table}");
}

#[test]
fn show_prints_the_fingerprint_serial_and_names() {
    let pki_dir = rcmd::testing::TestPki::new();
    let path = pki_dir.cert_dir().join("server.crt");
    let out = Command::new(RCMD).args(["pki", "show"]).arg(&path).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let der = CertificateDer::from_pem_file(&path).unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA256, &der);
    let fingerprint: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    assert!(text.contains(&fingerprint.join(":")), "{text}");
    let info = rcmd::pki::read_info(&path).unwrap();
    assert!(text.contains(&info.serial.to_string()));
    assert!(
        text.contains("serverAuth") && text.contains("localhost") && text.contains("127.0.0.1"),
        "{text}"
    );
    let missing = Command::new(RCMD).args(["pki", "show", "/no/such.crt"]).output().unwrap();
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/no/such.crt: missing"));
}

#[test]
fn revoking_an_unknown_name_or_the_ca_is_refused_clearly() {
    let pki_dir = rcmd::testing::TestPki::new();
    let certs = pki_dir.cert_dir();
    let out = Command::new(RCMD).args(["pki", "revoke", "nobody", "--dir"]).arg(&certs).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rcmd pki list"));
    let ca_serial = rcmd::pki::read_info(&certs.join("ca.crt")).unwrap().serial.to_string();
    let out = Command::new(RCMD).args(["pki", "revoke", &ca_serial, "--dir"]).arg(&certs).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("CA cannot be revoked"));
    let out = Command::new(RCMD).args(["pki", "renew", "nobody", "--dir"]).arg(&certs).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("rcmd pki client nobody"));
}

#[test]
fn the_client_warns_before_its_certificate_expires() {
    let server = ServerProcess::start(&[], &[]);
    pki(&["client", "soon", "--days", "3"], &server.pki.cert_dir());
    let out = server.rcmd("soon", &["list"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("warning").count(), 1, "once per invocation: {stderr}");
    assert!(stderr.contains("expires in") && stderr.contains("rcmd pki renew"), "{stderr}");
    assert!(!String::from_utf8_lossy(&server.rcmd("owner", &["list"]).stderr).contains("warning"));
}

#[test]
fn the_server_warns_at_start_when_its_certificate_expires_soon() {
    let dir = crate::util::TempDir::new("expiring-server");
    let certs = dir.path().join("certs");
    let init =
        Command::new(RCMD).args(["pki", "init", "--days", "10", "--dir"]).arg(&certs).output().unwrap();
    assert!(init.status.success());
    let log = dir.path().join("server.log");
    let mut server = Command::new(RCMD)
        .args(["serve", "--listen", "127.0.0.1:0", "--certs"])
        .arg(&certs)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    crate::util::wait_until("the warning is logged", Duration::from_secs(10), || {
        std::fs::read_to_string(&log).unwrap_or_default().contains("server certificate expires soon")
    });
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("rcmd pki renew server"), "{text}");
    assert!(!text.contains("CA certificate expires soon"), "the CA has ten years: {text}");
    let _ = server.kill();
    let _ = server.wait();
}
