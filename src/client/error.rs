//! The client's failures, each with the exit status the CLI documents.

use crate::pki::PkiError;

/// Exit statuses of the client (also in `rcmd --help` and README):
pub mod exit {
    /// The server refused the request: no such job, invalid input, ...
    pub const REFUSED: i32 = 1;
    /// Could not talk to the server at all: the client directory, the
    /// connection, or TLS. 255 as ssh uses it, so that `run` and `wait`
    /// can pass the job's own status through unchanged.
    pub const UNREACHABLE: i32 = 255;
    /// The command line, or a file it names, is invalid (as clap exits).
    pub const USAGE: i32 = 2;
    /// `run`: the command could not be started, as a shell reports it.
    pub const CANNOT_START: i32 = 127;
    /// The reader of our output went away: 128 + SIGPIPE, what a shell
    /// reports for a pipeline's writer that SIGPIPE ended.
    pub const BROKEN_PIPE: i32 = 141;
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "{0} (a client directory holds ca.crt, client.crt and client.key; `rcmd pki client NAME` makes one)"
    )]
    Certs(#[from] PkiError),

    #[error("invalid address {0:?}: expected HOST:PORT, or [IPV6]:PORT")]
    BadAddress(String),

    /// The targets: a bad list, inventory or selection.
    #[error("{0}")]
    Targets(String),

    #[error("cannot connect to {addr}: {detail}")]
    Connect { addr: String, detail: String },

    #[error(
        "TLS with {addr} failed: {detail} (check that the client certificate was issued by this server's CA and is still valid, and that the server's certificate names {host})"
    )]
    Tls { addr: String, host: String, detail: String },

    #[error("{0}")]
    Server(String),

    /// An answer longer than any a real server gives: refused unread.
    #[error("the answer from {addr} is over {} MiB: that is no rcmd server's answer", .limit >> 20)]
    TooLarge { addr: String, limit: usize },

    #[error("job {0} not found")]
    NoSuchJob(super::JobRef),

    #[error("cannot write output: {0}")]
    Write(std::io::Error),

    /// Whoever read our output has gone (EPIPE). Never printed.
    #[error("the reader of the output went away")]
    BrokenPipe,

    #[error("{0}")]
    Other(String),
}

impl ClientError {
    /// A failure to write our output: a closed pipe is [`ClientError::BrokenPipe`].
    pub fn write(e: std::io::Error) -> ClientError {
        match e.kind() {
            std::io::ErrorKind::BrokenPipe => ClientError::BrokenPipe,
            _ => ClientError::Write(e),
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            ClientError::Server(_) | ClientError::NoSuchJob(_) | ClientError::Write(_) => exit::REFUSED,
            ClientError::BrokenPipe => exit::BROKEN_PIPE,
            ClientError::Targets(_) => exit::USAGE,
            _ => exit::UNREACHABLE,
        }
    }

    /// Whether the CLI says anything about it: not for a closed pipe, which
    /// is how a pipeline normally ends.
    pub fn is_silent(&self) -> bool {
        matches!(self, ClientError::BrokenPipe)
    }
}
