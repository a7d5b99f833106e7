//! Fixtures for testing your own code against rcmd, in the spirit of
//! Python's trustme: a fresh PKI per test, and a real server in-process.
//!
//! * [`TestPki`]: a CA in a temp dir with a server identity for `localhost`,
//!   `127.0.0.1` and `::1`, any number of named clients, and the certificates
//!   refusal tests need (expired, not yet valid, signed by another CA,
//!   without the clientAuth usage). It hands out paths (for the rcmd CLI, curl
//!   or openssl) and ready rustls configurations.
//! * [`TestServer`]: `rcmd serve` on an ephemeral loopback port, in this
//!   process, with its job output in a temp dir; stopped, its jobs killed,
//!   when dropped.
//! * [`raw_spawn_rate`]: the machine's own spawn-and-wait rate, what job
//!   throughput is measured against.
//!
//! ```
//! use rcmd::testing::{TestPki, TestServer};
//!
//! let pki = TestPki::new();
//! let server = TestServer::start(&pki);
//! let alice = pki.client("alice");
//! let answer = server.request(&alice, "PUT", "/jobs", r#"{"cmd": "echo", "args": ["hi"]}"#);
//! assert_eq!(answer, (200, r#"{"id":1}"#.to_owned()));
//! ```
//!
//! The same identity works with any client that takes a rustls configuration
//! (reqwest's `tls_backend_preconfigured(alice.rustls_config())`, or a raw
//! `rustls::ClientConnection`), or as a CERTDIR for the CLI
//! (`rcmd <alice.path()> <server.addr()> run ...`). Negative tests:
//!
//! ```
//! # use rcmd::testing::{TestPki, TestServer};
//! let pki = TestPki::new();
//! let server = TestServer::start(&pki);
//! let expired = pki.expired_client();
//! assert!(server.try_request(&expired.rustls_config(), "GET", "/jobs", "").is_err());
//! ```
//!
//! Certificates of any other shape come from [`TestPki::client_with`], which
//! hands the certificate's [`rcgen`] parameters to a closure; `rcgen` is
//! re-exported here so that the version matches.
//!
//! Every fixture panics with a clear message when it cannot be set up: a
//! test cannot go on without it. Everything a fixture makes lives in its own
//! directory (0700, under the system's temp dir, or in one the test chooses
//! with [`TestPki::new_in`]), removed when it is dropped.
//!
//! Nothing here needs a dependency that rcmd itself does not have, so it is
//! not behind a cargo feature.

mod baseline;
mod pki;
mod server;
mod temp;

pub use baseline::raw_spawn_rate;
pub use pki::{ClientDir, TestPki};
pub use rcgen;
pub use server::TestServer;
