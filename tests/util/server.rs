//! [`ServerProcess`]: the real `rcmd serve` binary as a child process, on an
//! ephemeral loopback port with a fresh [`TestPki`], and clients for it: the
//! real binary, and reqwest with any client directory.
//!
//! [`rcmd::testing::TestServer`] runs the server inside the test process;
//! this one is for what only a process of its own has: a pid to signal
//! (SIGKILL as a crash, SIGHUP as a reload) and to measure, a log of its
//! own, a restart on the same data, another user, the guard, and isolated
//! jobs (whose process 1 is the rcmd binary).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::{TempDir, wait_until};
use rcmd::testing::TestPki;

pub const RCMD: &str = env!("CARGO_BIN_EXE_rcmd");

/// `rcmd serve` as a child process, killed and reaped when dropped.
pub struct ServerProcess {
    process: Process,
    /// `IP:PORT` as the server printed it.
    pub addr: String,
    pub pki: TestPki,
    pub data: TempDir,
    /// The extra arguments it was started with, for a restart.
    args: Vec<String>,
}

impl ServerProcess {
    /// Starts a server whose PKI has the "owner" client plus `clients`, on
    /// 127.0.0.1 with its data in a temp dir, unless `extra_args` has a
    /// `--listen` or `--data-dir` of its own.
    pub fn start(clients: &[&str], extra_args: &[&str]) -> ServerProcess {
        ServerProcess::start_with(clients, extra_args, |_, _, _| {})
    }

    /// Like [`ServerProcess::start`], with the server running as the user
    /// `(uid, gid)`: the PKI and the data folder are made theirs.
    pub fn start_as(clients: &[&str], extra_args: &[&str], (uid, gid): (u32, u32)) -> ServerProcess {
        ServerProcess::start_with(clients, extra_args, |pki, data, command| {
            use std::os::unix::process::CommandExt;
            for dir in [pki.path(), data.path()] {
                let status = Command::new("chown").arg("-R").arg(format!("{uid}:{gid}")).arg(dir).status();
                assert!(status.unwrap().success(), "chown {}", dir.display());
            }
            command.uid(uid).gid(gid);
        })
    }

    /// Like [`ServerProcess::start`], with `prepare` called on the PKI, the
    /// data dir and the command just before the server is started (to run
    /// it as another user, say).
    pub fn start_with(
        clients: &[&str],
        extra_args: &[&str],
        prepare: impl FnOnce(&TestPki, &TempDir, &mut Command),
    ) -> ServerProcess {
        let args = extra_args.iter().map(|a| a.to_string()).collect();
        Self::spawn(TestPki::with_clients(clients), TempDir::new("server-data"), args, prepare)
    }

    /// Ends the server with `signal` (SIGKILL: a crash; SIGTERM: a graceful
    /// stop) and starts a new one on the same PKI, data directory and
    /// arguments. The new one listens on a new port.
    pub fn restart(self, signal: Signal) -> ServerProcess {
        let args = self.args.clone();
        self.restart_with(signal, args)
    }

    /// Like [`ServerProcess::restart`], with other extra arguments.
    pub fn restart_with(self, signal: Signal, args: Vec<String>) -> ServerProcess {
        let ServerProcess { mut process, pki, data, .. } = self;
        if process.child.try_wait().unwrap().is_none() {
            kill(Pid::from_raw(process.child.id() as i32), signal).unwrap();
            process.child.wait().unwrap();
        }
        Self::spawn(pki, data, args, |_, _, _| {})
    }

    fn spawn(
        pki: TestPki,
        data: TempDir,
        args: Vec<String>,
        prepare: impl FnOnce(&TestPki, &TempDir, &mut Command),
    ) -> ServerProcess {
        raise_open_files_limit();
        let extra_args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut command = Command::new(RCMD);
        command.arg("serve").arg("--certs").arg(pki.cert_dir());
        if !extra_args.contains(&"--listen") {
            command.args(["--listen", "127.0.0.1:0"]);
        }
        if !extra_args.contains(&"--data-dir") {
            command.arg("--data-dir").arg(data.path().join("jobs"));
        }
        command.args(extra_args);
        prepare(&pki, &data, &mut command);
        let (child, stdout, addr) = spawn_serve(command, &data.path().join("server.log"));
        ServerProcess { process: Process { child, stdout }, addr, pki, data, args }
    }

    /// The next line the server prints on stdout, after its first.
    pub fn stdout_line(&mut self) -> String {
        let mut line = String::new();
        self.process.stdout.read_line(&mut line).unwrap();
        line
    }

    pub fn port(&self) -> &str {
        self.addr.rsplit_once(':').unwrap().1
    }

    pub fn pid(&self) -> u32 {
        self.process.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data.path().join("server.log")).unwrap_or_default()
    }

    /// The client directory of `client` ("owner" is the cert dir itself).
    pub fn client_dir(&self, client: &str) -> PathBuf {
        if client == "owner" { self.pki.cert_dir() } else { self.pki.cert_dir().join(client) }
    }

    /// A command for the real client binary as `client`.
    pub fn command(&self, client: &str, args: &[&str]) -> Command {
        let mut command = Command::new(RCMD);
        command.arg(self.client_dir(client)).arg(&self.addr).args(args);
        command
    }

    /// Runs the real client binary as `client` and returns what it did.
    pub fn rcmd(&self, client: &str, args: &[&str]) -> Output {
        self.command(client, args).stdin(Stdio::null()).output().expect("run rcmd")
    }

    /// Runs the client, expects success, and returns its stdout.
    pub fn ok(&self, client: &str, args: &[&str]) -> String {
        let out = self.rcmd(client, args);
        assert!(out.status.success(), "rcmd {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// `openssl s_client` to the server as the "owner" client, with `extra`
    /// flags, and nothing on its stdin (so it closes after the handshake).
    pub fn openssl_s_client(&self, extra: &[&str]) -> Output {
        let certs = self.pki.cert_dir();
        Command::new("openssl")
            .args(["s_client", "-connect", &self.addr])
            .args(extra)
            .arg("-CAfile")
            .arg(certs.join("ca.crt"))
            .arg("-cert")
            .arg(certs.join("client.crt"))
            .arg("-key")
            .arg(certs.join("client.key"))
            .stdin(Stdio::null())
            .output()
            .expect("openssl is installed (tests/run.sh installs it)")
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port())
    }

    /// Sends SIGTERM and waits for the server to exit; returns its status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        kill(Pid::from_raw(self.process.child.id() as i32), Signal::SIGTERM).unwrap();
        let mut status = None;
        wait_until("the server exits", Duration::from_secs(15), || {
            status = self.process.child.try_wait().unwrap();
            status.is_some()
        });
        status.unwrap()
    }
}

/// Raises this process's soft limit of open files to its hard one, as
/// `rcmd serve` does for itself: the connection tests hold a thousand or
/// more sockets to their servers at once, all in this one test process,
/// past the 1024 that a login session usually starts with.
fn raise_open_files_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    });
}

/// Starts `command` (an `rcmd serve`, perhaps behind a wrapper such as
/// `ip netns exec`) with its log appended to `log`; waits for its first line
/// and returns it running, its stdout, and the `IP:PORT` it listens on.
pub fn spawn_serve(mut command: Command, log: &Path) -> (Child, BufReader<ChildStdout>, String) {
    let log_file = std::fs::File::options().create(true).append(true).open(log).unwrap();
    let mut child = command
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .expect("start rcmd serve");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr = line
        .split_whitespace()
        .nth(3)
        .filter(|_| line.starts_with("rcmd listening on "))
        .unwrap_or_else(|| {
            let _ = child.kill();
            let _ = child.wait();
            panic!("server did not start: {line:?}\n{}", std::fs::read_to_string(log).unwrap_or_default())
        })
        .to_owned();
    (child, stdout, addr)
}

/// The server process, killed and reaped when dropped.
struct Process {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// rustls client settings for tests: TLS 1.3, trusting `ca`, and presenting
/// the identity in `client_dir` if given.
pub fn tls_config(ca: &Path, client_dir: Option<&Path>) -> rustls::ClientConfig {
    let provider = Arc::new(rcmd::pki::crypto_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(ca).unwrap()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match client_dir {
        Some(dir) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_file(dir.join("client.crt")).unwrap()],
                PrivateKeyDer::from_pem_file(dir.join("client.key")).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config
}

/// A reqwest client for the server as the client in `client_dir`.
pub fn http(server: &ServerProcess, client_dir: Option<&Path>) -> reqwest::Client {
    let _ = rcmd::pki::crypto_provider().install_default();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config(&server.pki.cert_dir().join("ca.crt"), client_dir))
        .build()
        .unwrap()
}

pub fn http_as(server: &ServerProcess, client: &str) -> reqwest::Client {
    http(server, Some(&server.client_dir(client)))
}

/// GETs `path` from the server and parses the JSON answer.
pub async fn get_json(client: &reqwest::Client, server: &ServerProcess, path: &str) -> serde_json::Value {
    let response = client.get(server.url(path)).send().await.unwrap();
    response.json().await.unwrap_or_else(|e| panic!("GET {path}: not JSON: {e}"))
}
