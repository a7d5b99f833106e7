//! `rcmd serve`: the HTTPS API, with mutual TLS, in front of one job pool per
//! client.
//!
//! A request goes one way through these modules: the accept stack decides
//! who is on a connection ([`peer`]), [`identity`] lets the policy judge
//! them, and a handler ([`routes`], [`admin`]) reaches only that client's
//! pool ([`pools`]). Shared state lives in [`state`], which imports none of
//! the handlers; only [`lifecycle`] builds the router.
//!
//! Start-up and the control loop:
//! * [`args`]: `ServeArgs`, the flags as clap parses them.
//! * [`config`]: `ServerConfig`, the flags with every rule between them
//!   checked, without side effects.
//! * [`lifecycle`]: `Server::start`, `run` (the control loop) and
//!   `shutdown` (the ordered stop); `serve` for `rcmd serve`.
//! * [`control`]: what a running server is told (reload, stop), from signals
//!   or from the program it is embedded in.
//! * [`host`]: the host's cgroups, detected before any child process, and
//!   which limits they enforce.
//! * [`guard`]: the process that kills the jobs of a server killed with
//!   SIGKILL.
//! * [`reload`]: SIGHUP, all or nothing, and the expiry watch.
//! * [`warnings`]: risky set-ups, logged at start-up and after each reload.
//! * [`logging`]: the log on stderr, text or JSON.
//! * [`seconds`]: a flag's number of seconds.
//!
//! Connections:
//! * [`tls`]: TLS 1.3 only, ring, a client certificate chaining to our CA
//!   and carrying a CN, required at the handshake.
//! * [`accept`]: the accept stack: [`limit`] (connections before
//!   authentication), TLS, the [`registry`] of authenticated connections (a
//!   reload closes those it no longer trusts), idle timeouts, and the
//!   response memory [`budget`].
//! * [`peer`]: who is on a connection, decided once from the verified
//!   certificate.
//! * [`refusals`]: refused connections, logged at a bounded rate.
//!
//! Requests:
//! * [`state`]: what every handler shares.
//! * [`identity`]: who is asking, refused with 403 unless the [`policy`]
//!   lets it in; whose jobs it reaches.
//! * [`policy`]: `--policy FILE`: who may run what, as whom.
//! * [`ceilings`]: the per-job limits in force for a client.
//! * [`routes`]: the router and the handlers; another client's job is a 404.
//! * [`admin`]: every client's jobs, for admins.
//! * [`page`]: how many jobs a page of a list holds.
//! * [`body`]: request bodies read whole, before a deadline.
//! * [`json_output`]: the seed's JSON output call, streamed.
//! * [`status`]: a job's status as the API shows it.
//! * [`error`]: error responses.
//! * [`pools`]: a job pool per client, created on first use, all in one
//!   [`Store`](crate::jobs::Store) (the data directory and its records).
//! * [`retention`]: deletes old finished jobs in the background.
//! * [`metrics`]: Prometheus metrics over plain HTTP, and [`scrapers`], the
//!   limits of its connections.

mod accept;
mod admin;
mod args;
mod body;
mod budget;
mod ceilings;
mod config;
mod control;
mod error;
pub mod guard;
mod host;
mod identity;
mod json_output;
mod lifecycle;
mod limit;
pub mod logging;
mod metrics;
mod page;
mod peer;
mod policy;
mod pools;
mod refusals;
mod registry;
mod reload;
mod retention;
mod routes;
mod scrapers;
mod seconds;
mod state;
mod status;
pub(crate) mod tls;
mod warnings;

pub use args::ServeArgs;
pub(crate) use control::{Control, Embedding};
pub(crate) use lifecycle::run;
pub use lifecycle::{RUNTIME_SHUTDOWN_LIMIT, serve};
pub use seconds::{InvalidSeconds, Seconds};
