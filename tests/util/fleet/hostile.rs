//! Hosts that are not rcmd servers, for what a hostile or broken host can
//! do to the fleet client, all on loopback:
//! * [`Hostile`]: HTTP/2 over TLS with this PKI's own server certificate
//!   (it names 127.0.0.1), answering each request as the test says: a
//!   flood, a body that never ends, or nothing at all.
//! * [`WindowProbe`]: reads what an HTTP/2 client says first and reports
//!   the receive windows it offers.
//! * [`Door`]: takes connections and holds them unanswered (a handshake
//!   that does not start) until it is opened, then relays them to a server.
//!
//! Each runs on threads of its own; [`Hostile`] ends its connections when
//! dropped, the other two when the test process ends.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

use axum::http;
use bytes::Bytes;

/// How long a test waits for what the client is sure to do.
const PATIENCE: Duration = Duration::from_secs(60);

/// How a [`Hostile`] host answers one request.
pub enum Answer {
    /// This status and JSON body.
    Json(u16, &'static str),
    /// This status, then `bytes` bytes as fast as the client takes them,
    /// announced in a content-length header if `length`.
    Flood { status: u16, bytes: usize, length: bool },
    /// 200, then a body that never ends and never sends anything.
    Endless,
    /// Nothing, ever.
    Silence,
}

/// What a [`Hostile`] host has seen and done.
#[derive(Default)]
struct Log {
    /// `METHOD PATH?QUERY` of each request, in order.
    requests: Vec<String>,
    /// Bytes of flood handed to HTTP/2 for sending, over all requests.
    flooded: usize,
}

#[derive(Default)]
struct Shared {
    log: Mutex<Log>,
    changed: Condvar,
}

impl Shared {
    fn update(&self, change: impl FnOnce(&mut Log)) {
        change(&mut self.log.lock().unwrap());
        self.changed.notify_all();
    }
}

/// An HTTP/2 server on 127.0.0.1 that answers as `answer` says.
pub struct Hostile {
    pub addr: String,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Hostile {
    /// Starts one with TLS `config` (a server certificate the client
    /// trusts); `answer` gets each request's `METHOD PATH?QUERY`.
    pub fn start(
        mut config: rustls::ServerConfig,
        answer: impl Fn(&str) -> Answer + Send + Sync + 'static,
    ) -> Hostile {
        config.alpn_protocols = vec![b"h2".to_vec()];
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let shared = Arc::new(Shared::default());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn({
            let shared = Arc::clone(&shared);
            move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
                    let answer: Answering = Arc::new(answer);
                    let accepting = async {
                        while let Ok((tcp, _)) = listener.accept().await {
                            let (acceptor, answer, shared) =
                                (acceptor.clone(), answer.clone(), shared.clone());
                            tokio::spawn(async move {
                                if let Ok(tls) = acceptor.accept(tcp).await {
                                    serve(tls, answer, shared).await;
                                }
                            });
                        }
                    };
                    tokio::select! {
                        _ = accepting => {}
                        _ = stopped => {}
                    }
                });
                // Dropping the runtime ends every connection it holds.
            }
        });
        Hostile { addr, shared, stop: Some(stop), thread: Some(thread) }
    }

    /// Waits until the client has sent `count` requests that start with
    /// `prefix` (such as `GET /jobs/1/output`).
    pub fn wait_for(&self, prefix: &str, count: usize) {
        let deadline = Instant::now() + PATIENCE;
        let mut log = self.shared.log.lock().unwrap();
        while log.requests.iter().filter(|r| r.starts_with(prefix)).count() < count {
            let left = deadline.checked_duration_since(Instant::now()).unwrap_or_else(|| {
                panic!("timed out waiting for {count} requests {prefix}...; got {:?}", log.requests)
            });
            log = self.shared.changed.wait_timeout(log, left).unwrap().0;
        }
    }

    pub fn requests(&self) -> Vec<String> {
        self.shared.log.lock().unwrap().requests.clone()
    }

    /// How many bytes of flood the client let this host send.
    pub fn flooded(&self) -> usize {
        self.shared.log.lock().unwrap().flooded
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        let _ = self.stop.take().map(|stop| stop.send(()));
        let _ = self.thread.take().map(std::thread::JoinHandle::join);
    }
}

type Answering = Arc<dyn Fn(&str) -> Answer + Send + Sync>;

async fn serve(
    tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    answer: Answering,
    shared: Arc<Shared>,
) {
    let Ok(mut connection) = h2::server::handshake(tls).await else { return };
    // Accepting also drives the connection, the answers' data included.
    while let Some(Ok((request, respond))) = connection.accept().await {
        let line =
            format!("{} {}", request.method(), request.uri().path_and_query().map_or("", |p| p.as_str()));
        let todo = answer(&line);
        shared.update(|log| log.requests.push(line));
        tokio::spawn(respond_with(todo, respond, Arc::clone(&shared)));
    }
}

async fn respond_with(answer: Answer, mut respond: h2::server::SendResponse<Bytes>, shared: Arc<Shared>) {
    let head =
        |status: u16| http::Response::builder().status(status).header("content-type", "application/json");
    match answer {
        Answer::Json(status, body) => {
            if let Ok(mut send) = respond.send_response(head(status).body(()).unwrap(), false) {
                let _ = send.send_data(Bytes::from_static(body.as_bytes()), true);
            }
        }
        Answer::Flood { status, bytes, length } => {
            let mut head = head(status);
            if length {
                head = head.header("content-length", bytes);
            }
            let Ok(mut send) = respond.send_response(head.body(()).unwrap(), false) else { return };
            let chunk = Bytes::from(vec![b'x'; 64 << 10]);
            let mut left = bytes;
            while left > 0 {
                send.reserve_capacity(chunk.len().min(left));
                // None or an error: the client has reset the stream.
                let Some(Ok(room)) = std::future::poll_fn(|cx| send.poll_capacity(cx)).await else { return };
                let n = room.min(left);
                if n == 0 {
                    continue;
                }
                if send.send_data(chunk.slice(..n), n == left).is_err() {
                    return;
                }
                left -= n;
                shared.update(|log| log.flooded += n);
            }
        }
        Answer::Endless => {
            let _open = respond.send_response(head(200).body(()).unwrap(), false);
            std::future::pending::<()>().await;
        }
        Answer::Silence => {
            let _respond = respond;
            std::future::pending::<()>().await;
        }
    }
}

/// A TLS server on 127.0.0.1 that reads an HTTP/2 client's preface,
/// settings and window updates up to its first request, then hangs up.
pub struct WindowProbe {
    pub addr: String,
    windows: mpsc::Receiver<(u32, u32)>,
}

impl WindowProbe {
    pub fn start(mut config: rustls::ServerConfig) -> WindowProbe {
        config.alpn_protocols = vec![b"h2".to_vec()];
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (sender, windows) = mpsc::channel();
        std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            let tls = rustls::ServerConnection::new(config).unwrap();
            let mut stream = rustls::StreamOwned::new(tls, tcp);
            let _ = sender.send(offered_windows(&mut stream));
        });
        WindowProbe { addr, windows }
    }

    /// The receive windows the client offered: (per stream, per connection).
    pub fn windows(&self) -> (u32, u32) {
        self.windows.recv_timeout(PATIENCE).expect("the client's first frames")
    }
}

/// Reads frames up to the first HEADERS; HTTP/2's defaults are 65,535 for
/// both windows, raised by SETTINGS_INITIAL_WINDOW_SIZE (per stream) and by
/// WINDOW_UPDATE on stream 0 (the connection).
fn offered_windows(stream: &mut impl Read) -> (u32, u32) {
    const SETTINGS: u8 = 0x4;
    const WINDOW_UPDATE: u8 = 0x8;
    const HEADERS: u8 = 0x1;
    const INITIAL_WINDOW_SIZE: u16 = 0x4;
    let mut preface = [0u8; 24];
    stream.read_exact(&mut preface).unwrap();
    assert_eq!(&preface, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    let (mut per_stream, mut connection) = (65_535u32, 65_535u32);
    loop {
        let mut header = [0u8; 9];
        stream.read_exact(&mut header).unwrap();
        let length = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
        let (kind, stream_id) =
            (header[3], u32::from_be_bytes(header[5..9].try_into().unwrap()) & 0x7fff_ffff);
        let mut payload = vec![0u8; length];
        stream.read_exact(&mut payload).unwrap();
        match kind {
            SETTINGS => {
                for setting in payload.chunks_exact(6) {
                    if u16::from_be_bytes([setting[0], setting[1]]) == INITIAL_WINDOW_SIZE {
                        per_stream = u32::from_be_bytes(setting[2..6].try_into().unwrap());
                    }
                }
            }
            WINDOW_UPDATE if stream_id == 0 => {
                connection += u32::from_be_bytes(payload[..4].try_into().unwrap()) & 0x7fff_ffff;
            }
            HEADERS => return (per_stream, connection),
            _ => {}
        }
    }
}

/// A door on 127.0.0.1 in front of `upstream`: connections wait, unanswered,
/// until [`Door::open`]; then each is relayed to `upstream`.
pub struct Door {
    pub addr: String,
    state: Arc<(Mutex<(usize, bool)>, Condvar)>,
}

impl Door {
    pub fn start(upstream: &str) -> Door {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let state = Arc::new((Mutex::new((0usize, false)), Condvar::new()));
        let upstream = upstream.to_owned();
        let door = Arc::clone(&state);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let (lock, changed) = &*door;
                let mut waiting = lock.lock().unwrap();
                waiting.0 += 1;
                changed.notify_all();
                while !waiting.1 {
                    waiting = changed.wait(waiting).unwrap();
                }
                drop(waiting);
                let Ok(server) = TcpStream::connect(&upstream) else { return };
                let (client_r, server_w) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || relay(client_r, server_w));
                std::thread::spawn(move || relay(server, client));
            }
        });
        Door { addr, state }
    }

    /// Waits until a connection is held at the door.
    pub fn wait_knocked(&self) {
        let (lock, changed) = &*self.state;
        let (waiting, _) =
            changed.wait_timeout_while(lock.lock().unwrap(), PATIENCE, |state| state.0 == 0).unwrap();
        assert!(waiting.0 > 0, "nobody came to the door");
    }

    /// Lets the held connection, and every later one, through.
    pub fn open(&self) {
        let (lock, changed) = &*self.state;
        lock.lock().unwrap().1 = true;
        changed.notify_all();
    }
}

fn relay(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 << 10];
    while let Ok(n @ 1..) = from.read(&mut buf) {
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
