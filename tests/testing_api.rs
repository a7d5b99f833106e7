//! `rcmd::testing` as another project would use it: only its public API, a
//! plain HTTPS client (reqwest with the configs it hands out), and nothing
//! of rcmd's own test support.
//!
//! A test binary of its own, as another project's would be: its tests check
//! what a dropped server leaves in this process (threads, cgroup folders,
//! temp dirs), which only holds where nothing else of rcmd runs; the main
//! binary's contain tests make cgroup folders of their process too.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rcmd::testing::{TestPki, TestServer};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::sync::Mutex;

/// The tests here run one at a time (`ONE_AT_A_TIME.lock()`): one of them
/// checks that a dropped server leaves no thread, cgroup or temp dir in
/// this process, which another test's server would.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

fn http(tls: rustls::ClientConfig) -> reqwest::Client {
    reqwest::Client::builder().tls_backend_preconfigured(tls).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_pki_and_an_in_process_server_serve_named_clients_and_refuse_bad_ones() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let pki = TestPki::new();
    let server = TestServer::start_with_args(&pki, &["--max-running", "8"]);
    let (alice, bob) = (pki.client("alice"), pki.client("bob"));
    assert_eq!(pki.client("alice"), alice, "the same folder on a second call");
    for file in [alice.cert(), alice.key(), alice.ca_cert()] {
        assert!(file.is_file(), "{}", file.display());
    }

    let created = http(alice.rustls_config())
        .put(server.url("/jobs"))
        .body(r#"{"cmd": "echo", "args": ["from alice"]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    assert_eq!(created.text().await.unwrap(), r#"{"id":1}"#);
    let status =
        http(alice.rustls_config()).get(server.url("/jobs/1/status?wait=true")).send().await.unwrap();
    assert!(status.text().await.unwrap().contains(r#""exit_code":0"#));
    let output = http(alice.rustls_config()).get(server.url("/jobs/1/output/stdout")).send().await.unwrap();
    assert_eq!(output.bytes().await.unwrap().as_ref(), b"from alice\n");
    // Bob is another client: alice's job does not exist for him.
    let (code, _) = server.request(&bob, "GET", "/jobs/1/status", "");
    assert_eq!(code, 404);

    let refused = [
        ("expired", pki.expired_client().rustls_config()),
        ("not yet valid", pki.not_yet_valid_client().rustls_config()),
        ("wrong CA", pki.wrong_ca_client().rustls_config()),
        ("no clientAuth", pki.no_client_auth_client().rustls_config()),
        ("no certificate", pki.anonymous_client_config()),
    ];
    for (what, tls) in refused {
        assert!(http(tls).get(server.url("/jobs")).send().await.is_err(), "{what} must be refused");
    }
    let no_cn = pki.client_with("ignored", |params| {
        params.distinguished_name = rcmd::testing::rcgen::DistinguishedName::new();
    });
    assert!(http(no_cn.rustls_config()).get(server.url("/jobs")).send().await.is_err(), "no CN");

    // An isolated job needs the rcmd binary as its process 1: a clear 400.
    let (code, body) = server.request(&alice, "PUT", "/jobs", r#"{"cmd": "true", "isolate": true}"#);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("cannot isolate"), "{body}");
}

#[test]
fn the_server_config_it_hands_out_accepts_its_clients_and_refuses_the_rest() {
    let _serial = ONE_AT_A_TIME.blocking_lock();
    let pki = TestPki::new();
    let config = pki.server_config();
    let peer = handshake(&config, pki.client("alice").rustls_config()).unwrap();
    assert_eq!(peer.len(), 1, "alice presented her certificate");
    assert!(handshake(&config, pki.anonymous_client_config()).is_err());
    assert!(handshake(&config, pki.wrong_ca_client().rustls_config()).is_err());
    assert!(handshake(&config, pki.expired_client().rustls_config()).is_err());
    // TLS 1.2 is refused: the configurations are TLS 1.3 only.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(pki.ca_cert()).unwrap()).unwrap();
    let tls12 = rustls::ClientConfig::builder_with_provider(Arc::new(rcmd::pki::crypto_provider()))
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    assert!(handshake(&config, tls12).is_err());
}

/// A whole TLS handshake between the two configurations, in memory; the
/// client's certificate chain as the server saw it.
fn handshake(
    server: &Arc<rustls::ServerConfig>,
    client: rustls::ClientConfig,
) -> Result<Vec<CertificateDer<'static>>, rustls::Error> {
    let client = rustls::ClientConnection::new(Arc::new(client), "localhost".try_into().unwrap())?;
    let server = rustls::ServerConnection::new(Arc::clone(server))?;
    let (mut client, mut server) = (rustls::Connection::from(client), rustls::Connection::from(server));
    for _ in 0..10 {
        send(&mut client, &mut server)?;
        send(&mut server, &mut client)?;
        if !client.is_handshaking() && !server.is_handshaking() {
            return Ok(server.peer_certificates().unwrap_or_default().to_vec());
        }
    }
    panic!("the handshake did not end");
}

/// Everything `from` has to send, read and processed by `to`.
fn send(from: &mut rustls::Connection, to: &mut rustls::Connection) -> Result<(), rustls::Error> {
    let mut wire = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut wire).unwrap();
    }
    let mut unread = wire.as_slice();
    while !unread.is_empty() {
        to.read_tls(&mut unread).unwrap();
    }
    to.process_new_packets().map(drop)
}

#[test]
fn dropping_the_server_leaves_no_process_thread_cgroup_port_or_temp_dir() {
    let _serial = ONE_AT_A_TIME.blocking_lock();
    let pki = TestPki::new();
    let server = TestServer::start(&pki);
    let owner = pki.client("owner");
    // A job with a child of its own, in the background: both must go.
    let job = r#"{"cmd": "sh", "args": ["-c", "sleep 1000 & echo $!; wait"]}"#;
    let (code, body) = server.request(&owner, "PUT", "/jobs", job);
    assert_eq!((code, body.as_str()), (200, r#"{"id":1}"#));
    let (_, status) = server.request(&owner, "GET", "/jobs/1/status", "");
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let shell = status["pid"].as_u64().unwrap() as i32;
    let sleep = wait_for("the job's child pid", || {
        server.request(&owner, "GET", "/jobs/1/output/stdout", "").1.trim().parse::<i32>().ok()
    });
    let addr = server.addr();
    assert!(!server_threads().is_empty(), "the thread names this test looks for are the server's");
    let cgroups = our_cgroup_folders();
    drop(server);

    for pid in [shell, sleep] {
        assert!(dead_and_not_ours(pid), "process {pid} of the job outlived the server");
    }
    assert!(std::net::TcpStream::connect(addr).is_err(), "nobody listens any more");
    assert_eq!(server_threads(), Vec::<String>::new(), "threads left");
    for folder in cgroups {
        assert!(!folder.exists(), "cgroup folder {} left", folder.display());
    }
    let prefix = format!("rcmd-testing-server-{}-", std::process::id());
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with(&prefix))
        .collect();
    assert_eq!(left, Vec::<String>::new(), "temp dirs left");
}

/// Whether `pid` is gone, or a zombie that is not this process's child (the
/// job's own child is reparented to init, which reaps it in its own time).
fn dead_and_not_ours(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return true };
    let mut fields = stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace()).unwrap();
    let (state, parent) = (fields.next(), fields.next().and_then(|p| p.parse::<u32>().ok()));
    state == Some("Z") && parent != Some(std::process::id())
}

/// Polls `probe` until it gives a value, for at most a minute.
fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The names of this process's threads that a TestServer starts.
fn server_threads() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim_end().to_owned())
        .filter(|name| name == "rcmd-testserver" || name == "rcmd-records")
        .collect()
}

/// The cgroup folders a server of this process made (`rcmd-PID-...` in
/// our own group of any hierarchy, v2 or v1); none on a host without
/// cgroups or when not root.
fn our_cgroup_folders() -> Vec<std::path::PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let prefix = format!("rcmd-{}-", std::process::id());
    let mut found = Vec::new();
    for line in own.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        let mounts = match controllers {
            "" => vec!["".to_owned(), "unified".to_owned()],
            named => vec![named.trim_start_matches("name=").to_owned()],
        };
        for mount in mounts {
            let group = std::path::Path::new("/sys/fs/cgroup").join(mount).join(path.trim_start_matches('/'));
            let Ok(entries) = std::fs::read_dir(&group) else { continue };
            found.extend(
                entries
                    .filter_map(|entry| entry.ok())
                    .filter(|entry| entry.file_name().to_string_lossy().starts_with(&prefix))
                    .map(|entry| entry.path()),
            );
        }
    }
    found
}

#[test]
#[ignore = "needs root: freezes the in-process server's cgroup"]
fn dropping_the_server_while_a_job_start_is_stuck_before_exec_ends_in_bounded_time() {
    let _serial = ONE_AT_A_TIME.blocking_lock();
    let pki = TestPki::new();
    let server = TestServer::start(&pki);
    let owner = pki.client("owner");
    let core = our_cgroup_folders().into_iter().find(|f| f.join("cgroup.freeze").exists());
    let core = core.expect("the server's cgroup v2 folder (run as root, as CI does)");
    // A job's process joins its group in the folder before it runs anything
    // of the job's: frozen, it stops there, and the thread that cloned it
    // waits. Thawed when this test ends, whatever happens.
    struct Frozen(std::path::PathBuf);
    impl Drop for Frozen {
        fn drop(&mut self) {
            let _ = std::fs::write(self.0.join("cgroup.freeze"), "0");
        }
    }
    std::fs::write(core.join("cgroup.freeze"), "1").unwrap();
    let _frozen = Frozen(core.clone());
    let (client, url) = (http(owner.rustls_config()), server.url("/jobs"));
    let start = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime
            .block_on(async { client.put(url).body(r#"{"cmd": "true"}"#).send().await.map(|r| r.status()) })
    });
    wait_for("the start to be stuck in its frozen group", || {
        let groups = std::fs::read_dir(&core).ok()?;
        let mut procs = groups.flatten().map(|g| std::fs::read_to_string(g.path().join("cgroup.procs")));
        procs.any(|p| p.is_ok_and(|p| !p.is_empty())).then_some(())
    });
    // Dropping the server (as SIGTERM stops `rcmd serve`) while the start is
    // stuck must not wait forever for the thread stuck in clone: nothing but
    // the start's watchdog (5 s) can end it.
    let (dropped, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(server);
        let _ = dropped.send(());
    });
    done.recv_timeout(Duration::from_secs(60)).expect("the server is gone in bounded time");
    assert!(start.join().is_ok());
    assert!(!core.exists(), "the server's cgroup folder is removed");
    assert_eq!(server_threads(), Vec::<String>::new(), "threads left");
}
