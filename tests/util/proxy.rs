//! A TCP proxy on loopback that cuts the first connection carrying more than
//! a given number of bytes towards the client: a dropped connection, for
//! testing that streams resume without losing or doubling a byte.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct CuttingProxy {
    pub addr: String,
    cuts: Arc<AtomicUsize>,
}

impl CuttingProxy {
    pub fn start(upstream: &str, cut_after: usize) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let cuts = Arc::new(AtomicUsize::new(0));
        let upstream = upstream.to_owned();
        let proxy_cuts = Arc::clone(&cuts);
        // Accepts until the test process ends; each test has its own proxy.
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    return;
                };
                let cuts = Arc::clone(&proxy_cuts);
                let (client_r, server_w) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || relay(client_r, server_w, None));
                std::thread::spawn(move || relay(server, client, Some((cut_after, cuts))));
            }
        });
        CuttingProxy { addr, cuts }
    }

    pub fn cuts(&self) -> usize {
        self.cuts.load(Ordering::SeqCst)
    }
}

fn relay(mut from: TcpStream, mut to: TcpStream, cut: Option<(usize, Arc<AtomicUsize>)>) {
    let mut buf = [0u8; 4096];
    let mut moved = 0;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some((limit, cuts)) = &cut
            && moved + n > *limit
            && cuts.compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst).is_ok()
        {
            let _ = to.write_all(&buf[..limit - moved]);
            break;
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        moved += n;
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
