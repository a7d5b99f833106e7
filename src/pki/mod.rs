//! rcmd's certificate authority: a P-256 CA, server and client certificates
//! made with rcgen, the on-disk layout of a cert directory, and loaders that
//! turn a directory back into what rustls needs. It imports nothing else of
//! the crate; the server, the client and `rcmd::testing` build on it.
//!
//! # A cert directory
//!
//! ```text
//! certs/
//!   ca.crt  ca.key          the CA (ca.key never leaves this directory)
//!   server.crt server.key   the server identity (serverAuth)
//!   client.crt client.key   a first client identity (clientAuth)
//!   index.json              every certificate issued: serial, CN, kind, expiry, revocation
//!   crl.pem                 once `rcmd pki revoke` has run: the revoked serials, signed by the CA
//!   .lock                   held by whoever writes the directory
//!   alice/                  `rcmd pki client alice`: a self-contained client dir
//!     ca.crt client.crt client.key
//!   servers/web1/           `rcmd pki server web1`: the folder to copy to host web1
//!     ca.crt server.crt server.key [crl.pem]
//! ```
//!
//! Any folder holding `ca.crt`, `client.crt` and `client.key` is a client
//! directory; `certs/` itself is one right after `pki init`.
//!
//! # Invariants
//!
//! * Every certificate the CA signs is in `index.json` before its files are
//!   in place, so whatever is in use can be revoked ([`files`] says how
//!   writes stay whole under crashes and concurrent commands).
//! * What is checked is a type: a [`ClientName`] or [`ServerName`] was
//!   validated, a [`Serial`] is one number whatever its spelling, a [`San`]
//!   is a DNS name or an IP address.
//! * TLS on both ends uses one crypto provider, [`crypto_provider`].
//!
//! # Submodules
//!
//! * [`cli`]: `rcmd pki ...`, its arguments and what it prints.
//! * `error`: [`PkiError`] and [`FileProblem`], naming the file concerned.
//! * [`files`]: the file names of a cert directory, its lock, atomic writes.
//! * `index`: the issued-certificate [`Index`].
//! * `inspect`: [`CertInfo`], the facts read back out of a certificate.
//! * `issue`: the [`Ca`] and the certificates it signs.
//! * `lifecycle`: revoking (index and CRL) and renewing.
//! * `load`: a cert directory back into rustls's types, checked.
//! * `name`: the rules for client and server names.
//! * `provider`: the rustls crypto provider, *ring*.
//! * `serial`: [`Serial`], a certificate's serial number.
//!
//! This file holds what `pki init`, `pki client` and `pki server` do with
//! those pieces.

pub mod cli;
mod error;
pub mod files;
mod index;
mod inspect;
mod issue;
mod lifecycle;
mod load;
mod name;
mod provider;
mod serial;

use std::path::{Path, PathBuf};

pub use error::{FileProblem, PkiError};
pub use index::{Entry, Index, Kind};
pub use inspect::{CertError, CertInfo, format_time};
pub use issue::{Ca, Issued, San, host_name, server_sans};
pub use lifecycle::{Renewal, read_info, renew, revoke};
pub use load::{ClientFiles, Identity, ServerFiles, load_client, load_roots, load_server};
pub use name::{ClientName, InvalidName, MAX_NAME_LEN, ServerName};
pub use provider::crypto_provider;
pub use serial::{InvalidSerial, Serial};

use files::{DirLock, Secrecy};

pub const DEFAULT_CA_DAYS: u32 = 3650;
pub const DEFAULT_DAYS: u32 = 365;
/// Where `pki server NAME` puts host NAME's folder, inside the cert directory.
pub const SERVERS_DIR: &str = "servers";

/// What `rcmd pki init` makes.
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub dir: PathBuf,
    /// Extra names for the server certificate.
    pub sans: Vec<San>,
    /// Validity of the server and client certificates.
    pub days: u32,
    pub ca_days: u32,
    /// CN of the first client identity.
    pub client: ClientName,
    /// Replace an existing CA.
    pub force: bool,
}

impl InitOptions {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        InitOptions {
            dir: dir.into(),
            sans: Vec::new(),
            days: DEFAULT_DAYS,
            ca_days: DEFAULT_CA_DAYS,
            client: default_client_name(),
            force: false,
        }
    }
}

/// The name of the user running rcmd, as a client name: the first client
/// identity is theirs.
pub fn default_client_name() -> ClientName {
    let from_uid = nix::unistd::User::from_uid(nix::unistd::getuid()).ok().flatten().map(|u| u.name);
    from_uid
        .or_else(|| std::env::var("USER").ok())
        .and_then(|name| ClientName::parse(&name).ok())
        .unwrap_or_else(|| ClientName::parse("client").expect("a valid name"))
}

/// Whether `dir` holds a CA (either half of it).
pub fn has_ca(dir: &Path) -> bool {
    dir.join(files::CA_CERT).exists() || dir.join(files::CA_KEY).exists()
}

/// Creates a CA, a server identity and a first client identity in
/// `options.dir`. Refuses to touch an existing CA unless `force`. Returns the
/// files written.
pub fn init(options: &InitOptions) -> Result<Vec<PathBuf>, PkiError> {
    let dir = &options.dir;
    let lock = DirLock::acquire(dir)?;
    for existing in [files::CA_KEY, files::CA_CERT].map(|f| dir.join(f)) {
        if existing.exists() && !options.force {
            return Err(PkiError::CaExists { path: existing });
        }
    }
    let host = host_name().unwrap_or_else(|| "localhost".to_owned());
    let (ca, ca_issued) = Ca::create(&format!("rcmd CA on {host}"), options.ca_days)?;
    let server = ca.issue_server(&server_sans(&options.sans), options.days)?;
    let client = ca.issue_client(&options.client, options.days)?;

    let path = |name: &str| dir.join(name);
    ca_issued.write(&lock, &path(files::CA_CERT), &path(files::CA_KEY))?;
    server.write(&lock, &path(files::SERVER_CERT), &path(files::SERVER_KEY))?;
    client.write(&lock, &path(files::CLIENT_CERT), &path(files::CLIENT_KEY))?;
    // A new CA starts a new history: the old index and CRL belong to the old CA.
    Index { certificates: [&ca_issued, &server, &client].iter().map(|i| i.entry.clone()).collect() }
        .save(&lock)?;
    match std::fs::remove_file(path(files::CRL)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(PkiError::io(path(files::CRL), e)),
        _ => {}
    }
    Ok([
        files::CA_CERT,
        files::CA_KEY,
        files::SERVER_CERT,
        files::SERVER_KEY,
        files::CLIENT_CERT,
        files::CLIENT_KEY,
        files::INDEX,
    ]
    .map(path)
    .to_vec())
}

/// Issues a client identity for `name` into `dir/name/`, a self-contained
/// client directory (the CA certificate, never its key). Returns that folder.
pub fn issue_client_dir(dir: &Path, name: &ClientName, days: u32, force: bool) -> Result<PathBuf, PkiError> {
    if name.as_str() == SERVERS_DIR {
        return Err(PkiError::ReservedClientName { name: SERVERS_DIR.to_owned() });
    }
    let target = dir.join(name.as_str());
    issue_folder(dir, &target, force, (files::CLIENT_CERT, files::CLIENT_KEY), |ca| {
        ca.issue_client(name, days)
    })
}

/// Issues a server identity for host `name` into `dir/servers/name/`: the CA
/// certificate (never its key), `server.crt` and `server.key`, a folder to
/// copy to that host for `rcmd serve --certs`. The certificate's CN is
/// `name`; it names `name` itself when that is a DNS name or an IP address,
/// and every `sans`. Returns that folder.
pub fn issue_server_dir(
    dir: &Path,
    name: &ServerName,
    sans: &[San],
    days: u32,
    force: bool,
) -> Result<PathBuf, PkiError> {
    let name = name.as_str();
    let mut names: Vec<San> = name.parse().ok().into_iter().collect();
    for san in sans {
        if !names.contains(san) {
            names.push(san.clone());
        }
    }
    if names.is_empty() {
        return Err(PkiError::ServerNeedsSan { name: name.to_owned() });
    }
    let target = server_dir(dir, name);
    issue_folder(dir, &target, force, (files::SERVER_CERT, files::SERVER_KEY), |ca| {
        ca.issue_named_server(name, &names, days)
    })
}

/// Issues one identity into its own self-contained folder `target` under
/// `dir`'s lock: the CA certificate (never its key), the certificate and key
/// named `cert` and `key`, recorded in the index. Refuses an existing folder unless
/// `force`. Returns `target`.
fn issue_folder(
    dir: &Path,
    target: &Path,
    force: bool,
    (cert, key): (&str, &str),
    make: impl FnOnce(&Ca) -> Result<Issued, PkiError>,
) -> Result<PathBuf, PkiError> {
    let lock = DirLock::lock_existing(dir)?;
    let ca = Ca::load(dir)?;
    if target.exists() && !force {
        return Err(PkiError::ClientExists { path: target.to_owned() });
    }
    let issued = make(&ca)?;
    // Indexed first (see `files`): then revocable whatever happens next.
    issue::record(&lock, &[&issued])?;
    files::create_dir(target)?;
    files::write_atomic(&lock, &target.join(files::CA_CERT), ca.cert_pem.as_bytes(), Secrecy::Public)?;
    issued.write(&lock, &target.join(cert), &target.join(key))?;
    Ok(target.to_owned())
}

/// The folder of host `name` in cert directory `dir`.
pub fn server_dir(dir: &Path, name: &str) -> PathBuf {
    dir.join(SERVERS_DIR).join(name)
}
