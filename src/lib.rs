//! rcmd runs commands on remote Linux machines for clients authenticated by
//! mutual TLS. The crate is one binary with three roles, one module each:
//!
//! * [`pki`]: the certificate authority (`rcmd pki ...`);
//! * [`server`]: the HTTPS API in front of a [`jobs::JobPool`] per client;
//! * [`client`]: the command-line client;
//!
//! plus [`jobs`], the process-supervision library underneath the server;
//! `cgroup`, per-job groups and limits on cgroup v1 and v2, which only
//! `jobs` uses (it re-exports what the server needs to detect them);
//! [`wire`], the JSON bodies that server and client share;
//! [`one_line`], how every error is printed; [`docs`] makes completions and
//! the man page; [`testing`] gives other projects' tests a fresh PKI and a
//! server in-process.
//!
//! Two leaves hold the values people write: [`units`], sizes and durations
//! (`64M`, `7d`), and [`limits`], the one [`limits::Limits`] type whose
//! fields (memory, CPUs, pids, bytes per second) can only hold valid
//! limits. A request's JSON, the jobs library, the server's `--job-*`
//! flags, a client's ceilings in the policy and the client's own flags all
//! use it, so each limit's rule is written once.
//!
//! The layers: `jobs` (with `cgroup`), `pki` and `wire` import nothing else
//! of the crate but those two leaves (`units` imports nothing, `limits`
//! only `units`), and `wire` is the only contract between client and
//! server.

mod cgroup;
pub mod client;
pub mod docs;
pub mod jobs;
pub mod limits;
mod one_line;
pub mod pki;
pub mod server;
pub mod testing;
pub mod units;
pub mod wire;

pub use one_line::one_line;
