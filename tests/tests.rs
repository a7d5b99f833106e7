//! rcmd's integration tests, in one binary with a module per area: real
//! processes, real files, and real TLS on loopback. The shared fixtures are
//! [`rcmd::testing::TestPki`] and [`util`].
//!
//! `rcmd::testing` as another project uses it is tested apart, in
//! tests/testing_api.rs: a binary of its own, because it checks that a
//! dropped in-process server leaves no thread or cgroup folder in the test
//! process, which the jobs library's tests here (contain) make too.
//!
//! Tests that need root or a tool that may be missing are ignored with the
//! reason (`#[ignore = "needs root: ..."]`); run as root with every tool
//! there, `tests/run.sh` includes them (`cargo test -- --include-ignored`).

/// Connection floods, caps, idle and slow peers, readers that never read.
mod connections;
/// The jobs library in real cgroups: nothing a job starts outlives it.
mod contain;
/// A server on a pure cgroup v2 host whose group was delegated to it.
mod delegated;
/// Fan-out to many servers on loopback.
mod fleet;
/// Fan-out against hostile, broken or slow hosts.
mod fleet_hostile;
/// Fan-out across network namespaces, one of them firewalled.
mod fleet_netns;
/// Following output live, and `rcmd ... run` behaving like ssh.
mod follow;
/// The server under load, faults and hostile clients.
mod hardening;
/// The job pool's stdin pipes.
mod job_stdin;
/// The job pool library with real processes and spool files.
mod jobs;
/// Certificate lifecycle: list, revoke, renew, reload, expiry warnings.
mod lifecycle;
/// Limits, isolation and the guard through a real server.
mod limits;
/// What operators use: environment, completions, man page, logs, metrics.
mod ops;
/// `rcmd pki`: certificate fields, file modes, refusals.
mod pki;
/// `serve --policy`: who may connect, what they may run, admins.
mod policy;
/// Jobs run as the unix users a policy names.
mod policy_users;
/// `rcmd serve` and the client over mTLS: the main flow and refusals.
mod server;
/// What a job's process starts with: descriptors, signals, identity.
mod spawn;
/// State on disk: records across restarts, retention, paging, disk caps.
mod state;
/// Job stdin over HTTPS, and `rcmd ... run` in shell pipelines.
mod stdin;
/// The helpers these tests share that `rcmd::testing` does not offer.
mod util;
