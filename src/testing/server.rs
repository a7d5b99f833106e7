//! [`TestServer`]: `rcmd serve` in this process, on an ephemeral loopback
//! port, stopped when dropped.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;

use clap::Parser;
use tokio::sync::mpsc;

use super::pki::{ClientDir, TestPki};
use super::temp::TempDir;
use crate::server::{Control, Embedding, ServeArgs};

/// A real rcmd server, in this process, with its own runtime on its own
/// thread: it works the same from plain and from async tests.
///
/// It serves `pki` with `rcmd serve`'s defaults, on `127.0.0.1` and a free
/// port, with its job records and output in a temp dir. Dropping it stops
/// it as SIGTERM stops `rcmd serve`, and waits until it is all gone: every
/// job killed and reaped, its cgroups (when it runs as root on a host that
/// has them) removed, its threads (named `rcmd-testserver` and
/// `rcmd-records`) ended, its temp dir removed.
///
/// Unlike `rcmd serve` it leaves the process's signals alone (the test
/// runner's Ctrl-C still works) and starts no guard process, so jobs of a
/// test process that is killed with SIGKILL are not cleaned up. It cannot
/// run isolated jobs (`"isolate": true`): their process 1 is the rcmd binary
/// itself, which a test process is not.
pub struct TestServer {
    addr: SocketAddr,
    /// Dropped to stop the server.
    control: Option<mpsc::Sender<Control>>,
    thread: Option<JoinHandle<()>>,
    _data: TempDir,
}

/// The name of every thread a [`TestServer`] starts, but for the one that
/// writes its job records (`rcmd-records`).
const THREAD_NAME: &str = "rcmd-testserver";

/// `rcmd serve`'s own flags, parsed as the command line would be.
#[derive(Parser)]
#[command(no_binary_name = true, args_override_self = true)]
struct Flags {
    #[command(flatten)]
    serve: ServeArgs,
}

impl TestServer {
    /// Starts a server for `pki` and waits until it listens.
    pub fn start(pki: &TestPki) -> TestServer {
        TestServer::start_with_args(pki, &[])
    }

    /// Like [`TestServer::start`], with more `rcmd serve` flags, such as
    /// `["--max-running", "2"]`.
    ///
    /// # Panics
    ///
    /// If a flag is invalid or the server cannot start; the message says why.
    pub fn start_with_args(pki: &TestPki, args: &[&str]) -> TestServer {
        let data =
            TempDir::new("server").unwrap_or_else(|e| panic!("cannot make the server's temp dir: {e}"));
        let mut flags =
            vec!["--listen".into(), "127.0.0.1:0".into(), "--certs".into(), pki.cert_dir().into_os_string()];
        flags.extend(["--data-dir".into(), data.path().join("jobs").into_os_string()]);
        // Given later, the caller's flags win over these.
        flags.extend(args.iter().map(Into::into));
        let serve =
            Flags::try_parse_from(flags).unwrap_or_else(|e| panic!("invalid TestServer flags: {e}")).serve;
        let (control, controls) = mpsc::channel(1);
        let (listening, addr) = std::sync::mpsc::channel();
        let run = move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name(THREAD_NAME)
                .enable_all()
                .build()
                .expect("a tokio runtime for the test server");
            let listening = Box::new(move |addr| {
                let _ = listening.send(addr);
            });
            let embedding = Embedding { controls, listening: Some(listening), own_exe: false };
            if let Err(e) = runtime.block_on(crate::server::run(serve, embedding)) {
                eprintln!("rcmd test server: {}", crate::one_line(&e));
            }
            runtime.shutdown_timeout(crate::server::RUNTIME_SHUTDOWN_LIMIT);
        };
        let thread = std::thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(run)
            .unwrap_or_else(|e| panic!("cannot start the test server's thread: {e}"));
        let Ok(addr) = addr.recv() else {
            let _ = thread.join();
            panic!("the test server did not start (its error is printed above)");
        };
        TestServer { addr, control: Some(control), thread: Some(thread), _data: data }
    }

    /// Where it listens: `127.0.0.1:PORT`. The server's certificate names
    /// `127.0.0.1`, so this is also the HOST:PORT for the rcmd CLI.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://localhost:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    /// Sends one request as `client` and returns the status and the body as
    /// text (invalid UTF-8 replaced). For the JSON calls; a client such as
    /// reqwest with [`ClientDir::rustls_config`] does the rest.
    ///
    /// # Panics
    ///
    /// If the connection or TLS fails.
    pub fn request(&self, client: &ClientDir, method: &str, path: &str, body: &str) -> (u16, String) {
        self.try_request(&client.rustls_config(), method, path, body)
            .unwrap_or_else(|e| panic!("{method} {path} as {}: {e}", client.path().display()))
    }

    /// Like [`TestServer::request`] with any rustls configuration, returning
    /// the failure (such as a refused handshake) instead of panicking.
    pub fn try_request(
        &self,
        tls: &rustls::ClientConfig,
        method: &str,
        path: &str,
        body: &str,
    ) -> std::io::Result<(u16, String)> {
        let mut tls = rustls::ClientConnection::new(
            Arc::new(tls.clone()),
            "localhost".try_into().expect("a valid name"),
        )
        .map_err(std::io::Error::other)?;
        let mut tcp = TcpStream::connect(self.addr)?;
        let mut stream = rustls::Stream::new(&mut tls, &mut tcp);
        // HTTP/1.0: the answer is never chunked and ends with the connection.
        let head =
            format!("{method} {path} HTTP/1.0\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n", body.len());
        stream.write_all(head.as_bytes())?;
        stream.write_all(body.as_bytes())?;
        let mut answer = Vec::new();
        // Without close_notify, only a body as long as its Content-Length
        // says is known to be complete.
        let unclean_end = match stream.read_to_end(&mut answer) {
            Ok(_) => false,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => true,
            Err(e) => return Err(e),
        };
        let split = answer.windows(4).position(|w| w == b"\r\n\r\n");
        let (head, body) = match split {
            Some(at) => (&answer[..at], &answer[at + 4..]),
            None => (&answer[..], &[][..]),
        };
        let head = String::from_utf8_lossy(head);
        let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok());
        let status = status.ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {head:?}")))?;
        let length = head.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse::<usize>().ok())?
        });
        if unclean_end && length != Some(body.len()) {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the answer was cut short"));
        }
        Ok((status, String::from_utf8_lossy(body).into_owned()))
    }
}

impl Drop for TestServer {
    /// Closing the control channel stops the server; joining its thread
    /// waits until it has killed and reaped every job, closed its records,
    /// and dropped its runtime, whose drop joins the runtime's threads and
    /// removes its cgroups.
    fn drop(&mut self) {
        drop(self.control.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
