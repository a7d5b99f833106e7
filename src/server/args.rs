//! [`ServeArgs`]: `rcmd serve`'s flags as clap parses them, raw. Each value
//! is only as checked as its own parser makes it (a number of seconds, a
//! size); the rules between flags are [`super::config::ServerConfig`]'s.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::ceilings;
use super::logging;
use super::seconds::Seconds;
use crate::jobs::PoolConfig;

/// `rcmd serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// The cert directory: ca.crt, server.crt and server.key (never ca.key).
    #[arg(long, default_value = "certs", value_name = "DIR")]
    pub certs: PathBuf,

    /// Address to listen on. Port 0 picks a free port (printed at start).
    #[arg(long, default_value = "127.0.0.1:8443", value_name = "ADDR")]
    pub listen: SocketAddr,

    /// Where job records and output are kept; it must be ours alone (mode
    /// 0700, not a symlink) and one server's at a time [default:
    /// /var/lib/rcmd for root, else $XDG_STATE_HOME/rcmd or
    /// ~/.local/state/rcmd; with --dev, CERTS/data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Delete finished jobs, with their output, this long after they
    /// finished: a number with s, m, h or d, or 0 to keep every job.
    #[arg(long, default_value = "7d", value_name = "DURATION", value_parser = crate::units::parse_duration)]
    pub retain: Duration,

    /// The most output bytes stored by all jobs of all clients together;
    /// past it output is dropped (jobs marked truncated) and new jobs get
    /// 429. SIZE is bytes or a number with K, M, G or T [default: what is
    /// stored plus half of the free space of the data directory's file
    /// system, at start-up].
    #[arg(long, value_name = "SIZE", value_parser = crate::units::parse_size)]
    pub max_disk: Option<u64>,

    /// One-command start: create a PKI in --certs if it has none, listen on
    /// loopback, and print the client command to try. mTLS stays on.
    #[arg(long)]
    pub dev: bool,

    /// A policy file (TOML): which clients may connect, the unix user each
    /// one's jobs run as, the programs it may run, and who is an admin.
    /// Without it every client may connect and jobs run as the server's own
    /// user. Read again on SIGHUP. See README.md, "Policy".
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,

    /// Output bytes kept per job (stdout and stderr together); the rest is
    /// dropped and the job marked truncated.
    #[arg(long, default_value_t = PoolConfig::DEFAULT_OUTPUT_LIMIT, value_name = "BYTES")]
    pub max_output: u64,

    /// Seconds between SIGTERM and SIGKILL when a job is stopped.
    #[arg(long, default_value_t = Seconds(PoolConfig::DEFAULT_STOP_GRACE), value_name = "SECONDS")]
    pub stop_grace: Seconds,

    /// Per client: the most jobs running at once; more get 429.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub max_running: usize,

    /// Per client: the most jobs kept (finished or not, until deleted).
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub max_jobs: usize,

    /// Per client: the most output bytes stored by all its jobs together.
    /// Past it, output is dropped (jobs marked truncated) and new jobs get
    /// 429. SIZE as for --max-disk [default: a quarter of --max-disk, at most
    /// 16G, so that no one client can take the space of all].
    #[arg(long, value_name = "SIZE", value_parser = crate::units::parse_size)]
    pub max_stored: Option<u64>,

    /// The most authenticated connections open at once; more are closed
    /// right after their handshake.
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub max_connections: usize,

    /// Per client (CN): the most connections open at once.
    #[arg(long, default_value_t = 128, value_name = "N")]
    pub max_client_connections: usize,

    /// The most connections in their TLS handshake at once; more wait (up to
    /// four times as many, each for at most --handshake-timeout), then are
    /// closed.
    #[arg(long, default_value_t = 512, value_name = "N")]
    pub max_handshakes: usize,

    /// Once half of --max-handshakes is in use: the most connections in their
    /// handshake from one source address (an IPv6 /64 counts as one).
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub max_handshakes_per_source: usize,

    /// Seconds a connection may take to complete its TLS handshake.
    #[arg(long, default_value_t = Seconds(Duration::from_secs(10)), value_name = "SECONDS")]
    pub handshake_timeout: Seconds,

    /// Log format on stderr: text (coloured only on a terminal) or json (one
    /// object per line). RUST_LOG sets the level.
    #[arg(long, value_enum, default_value_t = logging::LogFormat::Text, value_name = "FORMAT")]
    pub log_format: logging::LogFormat,

    /// Serve Prometheus metrics over plain HTTP at http://ADDR/metrics.
    /// Loopback only, unless --metrics-public.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,

    /// Allow --metrics-listen on an address other than loopback (the
    /// metrics have no authentication; they show counts, never names).
    #[arg(long, requires = "metrics_listen")]
    pub metrics_public: bool,

    /// Seconds a connection may stay open with no request in progress
    /// (HTTP/2 pings do not count).
    #[arg(long, default_value_t = Seconds(Duration::from_secs(120)), value_name = "SECONDS")]
    pub idle_timeout: Seconds,

    /// Seconds a peer may leave the output it asked for unread while others
    /// wait for the response buffer; then its connection is closed.
    #[arg(long, default_value_t = Seconds(Duration::from_secs(30)), value_name = "SECONDS")]
    pub send_timeout: Seconds,

    /// Bytes of streamed responses held in memory, over all connections;
    /// past it, output streams wait (at least 1 MiB).
    #[arg(long, default_value_t = 64 << 20, value_name = "BYTES")]
    pub max_response_buffer: usize,

    /// Per HTTP/2 connection: the most requests in progress at once.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub max_streams: u32,

    /// Seconds a client may take to send a request's headers, and a request
    /// body such as a job's JSON. On an idle HTTP/1.1 keep-alive connection
    /// this is also the idle timeout.
    #[arg(long, default_value_t = Seconds(Duration::from_secs(30)), value_name = "SECONDS")]
    pub request_timeout: Seconds,

    #[command(flatten)]
    pub job_limits: ceilings::JobLimitArgs,
}
