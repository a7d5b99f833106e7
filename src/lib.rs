//! rcmd runs commands on remote Linux machines for clients authenticated by
//! mutual TLS. The crate is one binary with three roles, one module each:
//!
//! * [`pki`]: the certificate authority (`rcmd pki ...`);
//! * [`server`]: the HTTPS API in front of a [`jobs::JobPool`] per client;
//! * [`client`]: the command-line client;
//!
//! plus [`jobs`], the process-supervision library underneath the server,
//! with `cgroup`, its per-job groups and limits on cgroup v1 and v2, and
//! [`wire`], the JSON bodies that server and client share,
//! [`one_line`], how every error is printed, and [`units`], sizes and
//! durations as the command line takes them; [`docs`] makes completions and
//! the man page; [`testing`] gives other projects' tests a fresh PKI and a
//! server in-process.

mod cgroup;
pub mod client;
pub mod docs;
pub mod jobs;
mod one_line;
pub mod pki;
pub mod server;
pub mod testing;
pub mod units;
pub mod wire;

pub use one_line::one_line;
