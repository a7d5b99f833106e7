//! What can go wrong with certificates, always naming the file concerned and
//! what to do about it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{}: {problem}", path.display())]
    File { path: PathBuf, problem: FileProblem },

    #[error(
        "{} already exists: refusing to replace the CA, which would invalidate every certificate it issued (use --force to replace it)",
        path.display()
    )]
    CaExists { path: PathBuf },

    #[error("no CA in {}: run `rcmd pki init --dir {}` first", dir.display(), dir.display())]
    NoCa { dir: PathBuf },

    #[error("{} already exists: use --force to issue a new certificate for it", path.display())]
    ClientExists { path: PathBuf },

    #[error("no certificate with CN or serial {target:?} in the index (see `rcmd pki list`)")]
    NotInIndex { target: String },

    #[error("the CA cannot be revoked; replace it with `rcmd pki init --force`")]
    RevokeCa,

    #[error("{target:?} names both a client and a server: revoke one by its serial (see `rcmd pki list`)")]
    AmbiguousRevoke { target: String },

    #[error(
        "{name:?} cannot be a client name here: the cert directory keeps its hosts' folders under {name}/"
    )]
    ReservedClientName { name: String },

    #[error("no client named {name:?} in {} (issue one with `rcmd pki client {name}`)", dir.display())]
    NoSuchClient { name: String, dir: PathBuf },

    #[error(transparent)]
    BadName(#[from] super::InvalidName),

    #[error("invalid server name {name:?}: {reason}")]
    BadServerName { name: String, reason: &'static str },

    #[error("no server named {name:?} in {} (issue one with `rcmd pki server {name}`)", dir.display())]
    NoSuchServer { name: String, dir: PathBuf },

    #[error(
        "server name {name:?} is not a DNS name or IP address: name the host with --san NAME_OR_IP, as clients will reach it"
    )]
    ServerNeedsSan { name: String },

    #[error("invalid --san {value:?}: {reason}")]
    BadSan { value: String, reason: String },

    #[error("cannot issue certificate: {0}")]
    Issue(#[from] rcgen::Error),
}

/// What is wrong with one file.
#[derive(Debug, thiserror::Error)]
pub enum FileProblem {
    #[error("missing")]
    Missing,
    #[error("cannot read or write it: {0}")]
    Io(std::io::Error),
    #[error("not a PEM {expected} ({detail})")]
    NotPem { expected: &'static str, detail: String },
    #[error("corrupt ({0})")]
    Corrupt(serde_json::Error),
    #[error("not a valid certificate ({0})")]
    BadCertificate(super::CertError),
    #[error("not a valid certificate (not a CA certificate)")]
    NotCa,
    /// rustls will not take it as the CA to trust.
    #[error("not a valid certificate ({0})")]
    NotTrustAnchor(rustls::Error),
    /// rcgen will not sign with it.
    #[error("not a valid certificate ({0})")]
    NotIssuer(rcgen::Error),
    /// rcgen cannot read the key.
    #[error("not a usable P-256 private key ({0})")]
    BadKey(rcgen::Error),
    /// rustls cannot sign with the key.
    #[error("not a usable P-256 private key ({0})")]
    KeyRejected(rustls::Error),
    #[error("the private key does not match the certificate {}", cert.display())]
    KeyMismatch { cert: PathBuf },
    #[error("the certificate expired on {not_after}{hint}")]
    Expired { not_after: String, hint: String },
    #[error("the certificate is not valid before {not_before}")]
    NotYetValid { not_before: String },
}

impl PkiError {
    pub(crate) fn file(path: impl Into<PathBuf>, problem: FileProblem) -> Self {
        PkiError::File { path: path.into(), problem }
    }

    /// Maps an I/O error on `path` to a file error, "missing" when not found.
    pub(crate) fn io(path: impl Into<PathBuf>, e: std::io::Error) -> Self {
        let problem =
            if e.kind() == std::io::ErrorKind::NotFound { FileProblem::Missing } else { FileProblem::Io(e) };
        PkiError::file(path, problem)
    }
}
