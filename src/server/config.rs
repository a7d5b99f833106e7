//! [`ServerConfig`]: `rcmd serve`'s flags once every rule between them holds,
//! as ripgrep turns its low-level arguments into high-level ones.
//!
//! [`ServerConfig::try_from`] is every check the flags get before the server
//! does anything: it makes no PKI, opens no file and starts no process, so a
//! refused command line leaves nothing behind. The defaults that depend on
//! other flags or on the process (the data directory) are settled here too.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::args::ServeArgs;
use super::budget;
use super::ceilings::Ceilings;

/// Why a command line cannot make a server.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("--dev listens on loopback only; drop --dev to listen on {0}")]
    DevNotLoopback(SocketAddr),
    #[error(
        "--metrics-listen {0} is not a loopback address, and the metrics are plain HTTP without authentication: listen on 127.0.0.1, or add --metrics-public"
    )]
    PublicMetrics(SocketAddr),
    #[error("--max-response-buffer must be at least {} bytes", budget::MIN_BUDGET)]
    SmallResponseBuffer,
    #[error("no HOME to keep job records in: give a directory with --data-dir")]
    NoHome,
}

/// A server's settings, each flag's rules checked.
#[derive(Debug)]
pub(crate) struct ServerConfig {
    /// The cert directory: ca.crt, server.crt and server.key.
    pub certs: PathBuf,
    pub listen: SocketAddr,
    /// `--dev`: a PKI made at start if there is none; `listen` is loopback.
    pub dev: bool,
    /// Where job records and output are kept (given, or the default).
    pub data_dir: PathBuf,
    pub policy: Option<PathBuf>,
    /// Finished jobs are deleted this long after; zero keeps them all.
    pub retain: Duration,
    pub max_disk: Option<u64>,
    pub max_output: u64,
    pub stop_grace: Duration,
    pub max_running: usize,
    pub max_jobs: usize,
    pub max_stored: Option<u64>,
    /// `--job-*`: every job's defaults and ceilings.
    pub ceilings: Ceilings,
    pub connections: ConnectionLimits,
    /// Where the metrics are served; loopback unless `--metrics-public`.
    pub metrics_listen: Option<SocketAddr>,
}

/// What the accept stack and HTTP allow each connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionLimits {
    pub max_connections: usize,
    pub max_client_connections: usize,
    pub max_handshakes: usize,
    pub max_handshakes_per_source: usize,
    pub handshake_timeout: Duration,
    pub idle_timeout: Duration,
    pub send_timeout: Duration,
    /// At least [`budget::MIN_BUDGET`].
    pub max_response_buffer: usize,
    pub max_streams: u32,
    pub request_timeout: Duration,
}

impl TryFrom<ServeArgs> for ServerConfig {
    type Error = ConfigError;

    fn try_from(args: ServeArgs) -> Result<ServerConfig, ConfigError> {
        if args.dev && !args.listen.ip().is_loopback() {
            return Err(ConfigError::DevNotLoopback(args.listen));
        }
        if let Some(addr) =
            args.metrics_listen.filter(|addr| !addr.ip().is_loopback() && !args.metrics_public)
        {
            return Err(ConfigError::PublicMetrics(addr));
        }
        let data_dir = match &args.data_dir {
            Some(dir) => dir.clone(),
            None if args.dev => args.certs.join("data"),
            None => default_data_dir()?,
        };
        Ok(ServerConfig {
            connections: ConnectionLimits::try_from(&args)?,
            ceilings: args.job_limits.ceilings(),
            data_dir,
            certs: args.certs,
            listen: args.listen,
            dev: args.dev,
            policy: args.policy,
            retain: args.retain,
            max_disk: args.max_disk,
            max_output: args.max_output,
            stop_grace: args.stop_grace.0,
            max_running: args.max_running,
            max_jobs: args.max_jobs,
            max_stored: args.max_stored,
            metrics_listen: args.metrics_listen,
        })
    }
}

impl TryFrom<&ServeArgs> for ConnectionLimits {
    type Error = ConfigError;

    fn try_from(args: &ServeArgs) -> Result<ConnectionLimits, ConfigError> {
        if args.max_response_buffer < budget::MIN_BUDGET {
            return Err(ConfigError::SmallResponseBuffer);
        }
        Ok(ConnectionLimits {
            max_connections: args.max_connections,
            max_client_connections: args.max_client_connections,
            max_handshakes: args.max_handshakes,
            max_handshakes_per_source: args.max_handshakes_per_source,
            handshake_timeout: args.handshake_timeout.0,
            idle_timeout: args.idle_timeout.0,
            send_timeout: args.send_timeout.0,
            max_response_buffer: args.max_response_buffer,
            max_streams: args.max_streams,
            request_timeout: args.request_timeout.0,
        })
    }
}

/// Where state lives when no --data-dir is given: never in a folder others
/// can write to, such as /tmp.
fn default_data_dir() -> Result<PathBuf, ConfigError> {
    if nix::unistd::geteuid().is_root() {
        return Ok(PathBuf::from("/var/lib/rcmd"));
    }
    let absolute = |var: &str| std::env::var_os(var).map(PathBuf::from).filter(|p| p.is_absolute());
    if let Some(state) = absolute("XDG_STATE_HOME") {
        return Ok(state.join("rcmd"));
    }
    absolute("HOME").map(|home| home.join(".local/state/rcmd")).ok_or(ConfigError::NoHome)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    #[command(no_binary_name = true)]
    struct Flags {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn config(flags: &[&str]) -> Result<ServerConfig, ConfigError> {
        let mut all = vec!["--data-dir", "/nonexistent/rcmd-config-test"];
        all.extend(flags);
        ServerConfig::try_from(Flags::try_parse_from(all).expect("valid flags").serve)
    }

    #[test]
    fn dev_mode_refuses_an_address_other_than_loopback() {
        assert!(matches!(
            config(&["--dev", "--listen", "0.0.0.0:8443"]),
            Err(ConfigError::DevNotLoopback(_))
        ));
        assert!(config(&["--dev", "--listen", "[::1]:8443"]).is_ok());
    }

    #[test]
    fn public_metrics_need_metrics_public() {
        let public = ["--metrics-listen", "0.0.0.0:9100"];
        assert!(matches!(config(&public), Err(ConfigError::PublicMetrics(_))));
        assert!(config(&[&public[..], &["--metrics-public"]].concat()).is_ok());
        assert!(config(&["--metrics-listen", "127.0.0.1:9100"]).is_ok());
    }

    #[test]
    fn a_response_buffer_below_the_minimum_is_refused() {
        let below = (budget::MIN_BUDGET - 1).to_string();
        assert!(matches!(config(&["--max-response-buffer", &below]), Err(ConfigError::SmallResponseBuffer)));
        let least = budget::MIN_BUDGET.to_string();
        assert_eq!(
            config(&["--max-response-buffer", &least]).unwrap().connections.max_response_buffer,
            budget::MIN_BUDGET
        );
    }

    #[test]
    fn dev_mode_keeps_its_data_in_the_cert_directory_unless_told() {
        let flags = Flags::try_parse_from(["--dev", "--certs", "/somewhere/certs"]).unwrap();
        let config = ServerConfig::try_from(flags.serve).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/somewhere/certs/data"));
    }
}
