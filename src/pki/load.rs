//! Loading a cert directory back into what rustls needs. Every failure names
//! the file and what is wrong with it.

use std::path::Path;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use time::OffsetDateTime;

use super::files;
use super::inspect::{CertInfo, format_time};
use super::{FileProblem, PkiError};

/// A certificate with its matching private key, checked to be in date.
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub info: CertInfo,
}

/// What the server needs: its identity, the CA that client certificates must
/// chain to, and the CRL if there is one.
pub struct ServerFiles {
    pub identity: Identity,
    pub roots: RootCertStore,
    pub ca: CertInfo,
    pub crls: Vec<CertificateRevocationListDer<'static>>,
}

/// What a client needs: its identity, the one CA it trusts, and the CRL
/// its servers' certificates are checked against, if it has one.
pub struct ClientFiles {
    pub identity: Identity,
    pub roots: RootCertStore,
    pub crls: Vec<CertificateRevocationListDer<'static>>,
}

fn pem_problem(expected: &'static str, e: rustls::pki_types::pem::Error) -> FileProblem {
    let detail = match e {
        rustls::pki_types::pem::Error::NoItemsFound => format!("no {expected} found in it"),
        other => other.to_string(),
    };
    FileProblem::NotPem { expected, detail }
}

/// Reads the first certificate of a PEM file.
pub fn read_cert(path: &Path) -> Result<CertificateDer<'static>, PkiError> {
    let pem = files::read(path)?;
    CertificateDer::from_pem_slice(&pem).map_err(|e| PkiError::file(path, pem_problem("certificate", e)))
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, PkiError> {
    let pem = files::read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| PkiError::file(path, pem_problem("private key", e)))
}

/// Parses a certificate and checks that it is valid now. `renew_hint` is
/// appended to the error of an expired certificate.
fn checked_info(path: &Path, der: &[u8], renew_hint: &str) -> Result<CertInfo, PkiError> {
    let info = CertInfo::parse(der).map_err(|e| PkiError::file(path, FileProblem::BadCertificate(e)))?;
    let now = OffsetDateTime::now_utc();
    if now > info.not_after {
        let hint = if renew_hint.is_empty() { String::new() } else { format!("; {renew_hint}") };
        return Err(PkiError::file(
            path,
            FileProblem::Expired { not_after: format_time(info.not_after), hint },
        ));
    }
    if now < info.not_before {
        return Err(PkiError::file(
            path,
            FileProblem::NotYetValid { not_before: format_time(info.not_before) },
        ));
    }
    Ok(info)
}

/// Loads a certificate and its key, checking that both parse, that they
/// belong together, and that the certificate is in date.
pub fn load_identity(cert_path: &Path, key_path: &Path, renew_hint: &str) -> Result<Identity, PkiError> {
    let cert = read_cert(cert_path)?;
    let info = checked_info(cert_path, &cert, renew_hint)?;
    let key = read_key(key_path)?;
    let provider = super::crypto_provider();
    match CertifiedKey::from_der(vec![cert.clone()], key.clone_key(), &provider) {
        Ok(_) => {}
        Err(rustls::Error::InconsistentKeys(_)) => {
            return Err(PkiError::file(key_path, FileProblem::KeyMismatch { cert: cert_path.to_owned() }));
        }
        Err(e) => return Err(PkiError::file(key_path, FileProblem::KeyRejected(e))),
    }
    Ok(Identity { chain: vec![cert], key, info })
}

/// Loads `ca.crt` as the only trust anchor.
pub fn load_roots(dir: &Path) -> Result<(RootCertStore, CertInfo), PkiError> {
    let path = dir.join(files::CA_CERT);
    let der = read_cert(&path)?;
    let info = checked_info(&path, &der, "the CA must be replaced with `rcmd pki init --force`")?;
    let mut roots = RootCertStore::empty();
    roots.add(der).map_err(|e| PkiError::file(&path, FileProblem::NotTrustAnchor(e)))?;
    Ok((roots, info))
}

/// Loads the CRL if the directory has one.
fn load_crls(dir: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, PkiError> {
    let path = dir.join(files::CRL);
    if !path.exists() {
        return Ok(Vec::new());
    }
    let pem = files::read(&path)?;
    let crl = CertificateRevocationListDer::from_pem_slice(&pem)
        .map_err(|e| PkiError::file(&path, pem_problem("CRL", e)))?;
    Ok(vec![crl])
}

/// Everything `rcmd serve` reads from its cert directory (never `ca.key`).
pub fn load_server(dir: &Path) -> Result<ServerFiles, PkiError> {
    let reading = files::read_lock(dir);
    if reading.is_some() {
        files::finish_interrupted_pair(&dir.join(files::SERVER_KEY), &dir.join(files::SERVER_CERT));
    }
    let (roots, ca) = load_roots(dir)?;
    let identity = load_identity(
        &dir.join(files::SERVER_CERT),
        &dir.join(files::SERVER_KEY),
        "issue a new one with `rcmd pki init --force`",
    )?;
    Ok(ServerFiles { identity, roots, ca, crls: load_crls(dir)? })
}

/// Everything the client reads from a client directory.
pub fn load_client(dir: &Path) -> Result<ClientFiles, PkiError> {
    let reading = files::read_lock(dir);
    if reading.is_some() {
        files::finish_interrupted_pair(&dir.join(files::CLIENT_KEY), &dir.join(files::CLIENT_CERT));
    }
    let (roots, _) = load_roots(dir)?;
    let identity = load_identity(
        &dir.join(files::CLIENT_CERT),
        &dir.join(files::CLIENT_KEY),
        "renew it (`rcmd pki renew NAME` where the CA is)",
    )?;
    Ok(ClientFiles { identity, roots, crls: load_crls(dir)? })
}
