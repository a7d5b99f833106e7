//! One HTTPS connection to a server with the client's certificate: rustls
//! with the ring provider, TLS 1.3 only, trusting only the CA from the client
//! directory, checking that the server's certificate names HOST and, when
//! the client directory holds a `crl.pem` (as the CA's own folder does once
//! `pki revoke` has run), that it is not revoked.
//!
//! A single-host command speaks HTTP/1.1 (one stream per connection streams
//! bulk output fastest); a fleet speaks HTTP/2, so that each host costs one
//! connection whatever runs over it, with small receive windows, so that
//! what a host has sent and our terminal has not yet taken is bounded per
//! host.
//!
//! A whole answer (JSON, an error's text) is read up to [`MAX_ANSWER`] and
//! refused past it: a hostile server cannot make the client hold more.
//! Only job output is streamed, never held.

use std::error::Error as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, Response, StatusCode};
use rustls::client::WebPkiServerVerifier;

use super::JobRef;
use super::error::ClientError;
use crate::pki;
use crate::wire;

/// Warn when the client certificate has fewer days left than this.
const EXPIRY_WARNING_DAYS: i64 = 7;

/// The most of a whole answer the client reads: a status, a page of the job
/// list or an error is far smaller (a page of 1,000 jobs with long command
/// lines is well under 1 MiB).
pub(crate) const MAX_ANSWER: usize = 4 << 20;

/// HTTP/2 receive windows of a fleet's connections: what a host may send
/// before we have taken it, per stream and for the whole connection (both
/// output streams of a job at full speed). hyper's defaults (2 MiB and
/// 5 MiB) would let each host park 5 MiB in the client behind a slow
/// terminal; these still fill a LAN's pipe (BENCHMARKS.md, "Fleet").
const FLEET_STREAM_WINDOW: u32 = 256 << 10;
const FLEET_CONNECTION_WINDOW: u32 = 512 << 10;

#[derive(Clone)]
pub struct Connection {
    http: reqwest::Client,
    base: String,
    addr: String,
    host: String,
}

/// Splits `HOST:PORT` (or `[IPV6]:PORT`) into the host and the URL authority.
pub(crate) fn parse_addr(addr: &str) -> Result<(String, String), ClientError> {
    let bad = || ClientError::BadAddress(addr.to_owned());
    let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
        let (host, port) = rest.split_once("]:").ok_or_else(bad)?;
        (host, port)
    } else {
        let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
        if host.contains(':') {
            return Err(bad());
        }
        (host, port)
    };
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    let authority = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    Ok((host.to_owned(), authority))
}

/// The TLS settings of a client directory.
pub(crate) struct ClientTls {
    /// Its identity, and its CA as the only trust anchor.
    pub config: rustls::ClientConfig,
    /// What `config` checks servers' certificates with: the CA and the CRL.
    pub verifier: Arc<WebPkiServerVerifier>,
}

/// Loads a client directory's TLS settings. Warns on stderr when the
/// certificate expires soon; an expired one fails here, before any
/// connection.
pub(crate) fn client_tls(certdir: &Path) -> Result<ClientTls, ClientError> {
    let files = pki::load_client(certdir)?;
    let days_left = files.identity.info.days_left(time::OffsetDateTime::now_utc());
    if days_left < EXPIRY_WARNING_DAYS {
        super::sink::warn(format_args!(
            "warning: the client certificate in {} expires in {days_left} days ({}); ask for a renewal (`rcmd pki renew NAME`)",
            certdir.display(),
            pki::format_time(files.identity.info.not_after)
        ));
    }
    let provider = Arc::new(pki::crypto_provider());
    // reqwest is built without a provider of its own; make ring the one.
    let _ = pki::crypto_provider().install_default();
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(files.roots), Arc::clone(&provider))
        .with_crls(files.crls)
        .build()
        .map_err(|e| {
            ClientError::Other(format!("cannot use {}: {e}", certdir.join(pki::files::CRL).display()))
        })?;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| ClientError::Other(e.to_string()))?
        .with_webpki_verifier(Arc::clone(&verifier))
        .with_client_auth_cert(files.identity.chain, files.identity.key)
        .map_err(|e| ClientError::Other(format!("client certificate: {e}")))?;
    Ok(ClientTls { config, verifier })
}

/// Which HTTP a connection speaks (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    Http1,
    Http2,
}

impl Connection {
    /// Loads the client directory and prepares a client for `addr`. Nothing is
    /// sent yet; an expired certificate fails here, before any connection.
    pub fn new(certdir: &Path, addr: &str, connect_timeout: Duration) -> Result<Connection, ClientError> {
        parse_addr(addr)?; // a bad address is said before any file is read
        Connection::with_tls(client_tls(certdir)?.config, addr, Protocol::Http1, connect_timeout)
    }

    /// A client for `addr` with TLS settings already loaded.
    pub(crate) fn with_tls(
        mut tls: rustls::ClientConfig,
        addr: &str,
        protocol: Protocol,
        connect_timeout: Duration,
    ) -> Result<Connection, ClientError> {
        let (host, authority) = parse_addr(addr)?;
        let mut http = reqwest::Client::builder().connect_timeout(connect_timeout);
        tls.alpn_protocols = match protocol {
            // HTTP/1.1, one connection per concurrent stream, moves bulk
            // output and stdin of a single host fastest (BENCHMARKS.md,
            // "stdin"); a fleet wants one connection per host instead.
            Protocol::Http1 => vec![b"http/1.1".to_vec()],
            Protocol::Http2 => {
                http = http
                    .http2_prior_knowledge()
                    .http2_initial_stream_window_size(FLEET_STREAM_WINDOW)
                    .http2_initial_connection_window_size(FLEET_CONNECTION_WINDOW);
                vec![b"h2".to_vec()]
            }
        };
        let http = http
            .tls_backend_preconfigured(tls)
            .build()
            .map_err(|e| ClientError::Other(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Connection { http, base: format!("https://{authority}"), addr: addr.to_owned(), host })
    }

    /// Sends a request; maps transport failures to clear errors.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl serde::Serialize>,
    ) -> Result<Response, ClientError> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            let json = serde_json::to_vec(body).expect("request bodies serialise");
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(json);
        }
        request.send().await.map_err(|e| self.transport_error(&e))
    }

    /// Sends a request with a streamed body.
    pub async fn send_body(
        &self,
        method: Method,
        path: &str,
        body: reqwest::Body,
    ) -> Result<Response, ClientError> {
        let request = self.http.request(method, format!("{}{path}", self.base)).body(body);
        request.send().await.map_err(|e| self.transport_error(&e))
    }

    /// Sends a request and checks for success; a 404 becomes "job not found".
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl serde::Serialize>,
        job: Option<&JobRef>,
    ) -> Result<Response, ClientError> {
        let response = self.send(method, path, body).await?;
        self.check(response, job).await
    }

    /// Reads a JSON answer.
    pub async fn json<T: serde::de::DeserializeOwned>(&self, response: Response) -> Result<T, ClientError> {
        let body = self.read_answer(response).await?;
        serde_json::from_slice(&body)
            .map_err(|e| ClientError::Other(format!("unexpected answer from {}: {e}", self.addr)))
    }

    /// The whole body of an answer, refused past [`MAX_ANSWER`] (before
    /// reading any of it when its length is given).
    pub(crate) async fn read_answer(&self, mut response: Response) -> Result<Vec<u8>, ClientError> {
        let too_large = || ClientError::TooLarge { addr: self.addr.clone(), limit: MAX_ANSWER };
        if response.content_length().is_some_and(|length| length > MAX_ANSWER as u64) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport_error(&e))? {
            if body.len() + chunk.len() > MAX_ANSWER {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Turns a non-success response into an error with the server's
    /// message; a 404 becomes "job not found".
    async fn check(&self, response: Response, job: Option<&JobRef>) -> Result<Response, ClientError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        if status == StatusCode::NOT_FOUND
            && let Some(id) = job
        {
            return Err(ClientError::NoSuchJob(id.clone()));
        }
        let text = match self.read_answer(response).await {
            Ok(body) => String::from_utf8_lossy(&body).into_owned(),
            Err(e @ ClientError::TooLarge { .. }) => return Err(e),
            Err(_) => String::new(),
        };
        let message = serde_json::from_str::<wire::Error>(&text).map(|e| e.error).unwrap_or(text);
        Err(ClientError::Server(format!("the server refused the request ({status}): {message}")))
    }

    /// Classifies a reqwest failure: TLS, connection, or other.
    pub fn transport_error(&self, e: &reqwest::Error) -> ClientError {
        if let Some(tls) = find_tls_error(e) {
            return ClientError::Tls {
                addr: self.addr.clone(),
                host: self.host.clone(),
                detail: tls.to_string(),
            };
        }
        // The innermost cause says most (e.g. "Connection refused").
        let mut detail = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            detail = s.to_string();
            source = s.source();
        }
        if e.is_connect() && e.is_timeout() {
            ClientError::Connect {
                addr: self.addr.clone(),
                detail: "no answer in time (--connect-timeout)".into(),
            }
        } else if e.is_connect() {
            ClientError::Connect { addr: self.addr.clone(), detail }
        } else {
            ClientError::Other(format!("request to {} failed: {detail}", self.addr))
        }
    }
}

/// The rustls error behind a failure, if any. io::Error hides what it wraps
/// from `source()`, so it is unwrapped by hand.
fn find_tls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    if let Some(inner) = e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref())
        && let Some(tls) = find_tls_error(inner)
    {
        return Some(tls);
    }
    e.source().and_then(find_tls_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_with_and_without_brackets() {
        assert_eq!(parse_addr("localhost:8443").unwrap(), ("localhost".into(), "localhost:8443".into()));
        assert_eq!(parse_addr("127.0.0.1:1").unwrap(), ("127.0.0.1".into(), "127.0.0.1:1".into()));
        assert_eq!(parse_addr("[::1]:8443").unwrap(), ("::1".into(), "[::1]:8443".into()));
        for bad in ["localhost", "::1:8443", ":8443", "host:port", "host:70000", "[::1]"] {
            assert!(parse_addr(bad).is_err(), "{bad}");
        }
    }
}
