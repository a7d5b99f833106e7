//! After issuing: revoking (the index and a CRL signed by the CA, copied into
//! every host folder), renewing (same CN, new key and serial), and reading a
//! certificate file back (`pki show`).

use std::path::{Path, PathBuf};

use rcgen::{
    CertificateRevocationListParams, KeyIdMethod, RevocationReason, RevokedCertParams, SerialNumber,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::files::{self, DirLock, Secrecy};
use super::index::{Entry, Index, Kind};
use super::inspect::{CertInfo, format_time};
use super::issue::{self, Ca, San};
use super::{ClientName, FileProblem, PkiError, Serial, ServerName};

/// How long a CRL is valid for. webpki does not enforce it by default; it is
/// set far out so that a forgotten CRL never locks every client out.
const CRL_DAYS: i64 = 3650;

/// Marks every certificate whose CN or serial is `target` revoked, and
/// rewrites `crl.pem`. Revoking again is harmless. Returns the entries
/// revoked now (empty if they already were).
pub fn revoke(dir: &Path, target: &str) -> Result<Vec<Entry>, PkiError> {
    let lock = DirLock::lock_existing(dir)?;
    let ca = Ca::load(dir)?;
    let mut index = Index::load(dir)?;
    let serial = target.parse::<Serial>().ok();
    let matches: Vec<usize> = index
        .certificates
        .iter()
        .enumerate()
        .filter(|(_, e)| e.cn == target || serial.as_ref() == Some(&e.serial))
        .map(|(i, _)| i)
        .collect();
    if matches.is_empty() {
        return Err(PkiError::NotInIndex { target: target.to_owned() });
    }
    if matches.iter().any(|&i| index.certificates[i].kind == Kind::Ca) {
        return Err(PkiError::RevokeCa);
    }
    // A client and a host may share a name; a name alone must not revoke both.
    let by_name = matches.iter().filter(|&&i| index.certificates[i].cn == target);
    let kinds: std::collections::BTreeSet<&str> =
        by_name.map(|&i| index.certificates[i].kind.name()).collect();
    if kinds.len() > 1 {
        return Err(PkiError::AmbiguousRevoke { target: target.to_owned() });
    }
    let now = format_time(OffsetDateTime::now_utc());
    let mut revoked = Vec::new();
    for i in matches {
        let entry = &mut index.certificates[i];
        if entry.revoked_at.is_none() {
            entry.revoked_at = Some(now.clone());
            revoked.push(entry.clone());
        }
    }
    index.save(&lock)?;
    write_crl(&lock, &ca, &index)?;
    Ok(revoked)
}

/// Writes `crl.pem`: every revoked certificate of the index, signed by the CA.
fn write_crl(lock: &DirLock, ca: &Ca, index: &Index) -> Result<(), PkiError> {
    let now = OffsetDateTime::now_utc();
    let revoked_certs = index
        .certificates
        .iter()
        .filter_map(|e| {
            let revoked_at = e.revoked_at.as_deref()?;
            Some(RevokedCertParams {
                serial_number: SerialNumber::from_slice(e.serial.as_bytes()),
                revocation_time: OffsetDateTime::parse(revoked_at, &Rfc3339).unwrap_or(now),
                reason_code: Some(RevocationReason::Unspecified),
                invalidity_date: None,
            })
        })
        .collect();
    let params = CertificateRevocationListParams {
        this_update: now - time::Duration::minutes(5),
        next_update: now + time::Duration::days(CRL_DAYS),
        // Increases with every rewrite.
        crl_number: SerialNumber::from_slice(&(now.unix_timestamp() as u64).to_be_bytes()),
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method: KeyIdMethod::Sha256,
    };
    let pem = params.signed_by(ca.issuer())?.pem()?;
    files::write_atomic(lock, &lock.dir().join(files::CRL), pem.as_bytes(), Secrecy::Public)?;
    // Each host's folder gets it too: that folder is what a host's server
    // reads, and what is copied to it.
    for host in host_folders(lock.dir())? {
        files::write_atomic(lock, &host.join(files::CRL), pem.as_bytes(), Secrecy::Public)?;
    }
    Ok(())
}

/// The folders `pki server` made under `dir`.
pub fn host_folders(dir: &Path) -> Result<Vec<PathBuf>, PkiError> {
    let servers = dir.join(super::SERVERS_DIR);
    let entries = match std::fs::read_dir(&servers) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(PkiError::io(&servers, e)),
    };
    let mut folders = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| PkiError::io(&servers, e))?;
        // Folders only, never through a symlink planted there.
        if entry.file_type().is_ok_and(|t| t.is_dir()) && entry.path().join(files::SERVER_CERT).exists() {
            folders.push(entry.path());
        }
    }
    folders.sort();
    Ok(folders)
}

/// What `pki renew` renews.
#[derive(Debug, Clone, Copy)]
pub enum Renewal<'a> {
    /// A client identity, by name.
    Client(&'a str),
    /// The server identity of the cert directory itself (`pki init`'s).
    Server,
    /// Host NAME's identity in `servers/NAME/` (`pki server NAME`'s).
    Host(&'a str),
}

/// Issues a new certificate with a new key and serial, with the same names,
/// replacing the files. The old certificate stays valid until it expires or
/// is revoked. Returns the folder that was updated.
pub fn renew(dir: &Path, what: Renewal<'_>, days: u32) -> Result<PathBuf, PkiError> {
    let lock = DirLock::lock_existing(dir)?;
    let ca = Ca::load(dir)?;
    let (issued, folder, cert, key) = match what {
        Renewal::Server => {
            let sans = current_sans(&dir.join(files::SERVER_CERT))?;
            (ca.issue_server(&sans, days)?, dir.to_owned(), files::SERVER_CERT, files::SERVER_KEY)
        }
        Renewal::Host(name) => {
            ServerName::parse(name)?;
            let folder = super::server_dir(dir, name);
            let cert_path = folder.join(files::SERVER_CERT);
            if !cert_path.exists() {
                return Err(PkiError::NoSuchServer { name: name.to_owned(), dir: dir.to_owned() });
            }
            let sans = current_sans(&cert_path)?;
            (ca.issue_named_server(name, &sans, days)?, folder, files::SERVER_CERT, files::SERVER_KEY)
        }
        Renewal::Client(name) => {
            let name = ClientName::parse(name)?;
            let folder = client_folder(dir, &name)?;
            (ca.issue_client(&name, days)?, folder, files::CLIENT_CERT, files::CLIENT_KEY)
        }
    };
    // Indexed first: a crash in between leaves a harmless entry, never a
    // certificate in use that `revoke` cannot find.
    issue::record(&lock, &[&issued])?;
    issued.write(&lock, &folder.join(cert), &folder.join(key))?;
    Ok(folder)
}

/// The names a server certificate carries, to renew it with the same ones.
fn current_sans(cert: &Path) -> Result<Vec<San>, PkiError> {
    let current = read_info(cert)?;
    let mut sans: Vec<San> = current.dns_names.into_iter().map(San::Dns).collect();
    sans.extend(current.ip_addresses.into_iter().map(San::Ip));
    Ok(sans)
}

/// Where the identity of client `name` lives: `dir/name/`, or `dir` itself
/// for the first identity made by `pki init`.
fn client_folder(dir: &Path, name: &ClientName) -> Result<PathBuf, PkiError> {
    let own = dir.join(name.as_str());
    if own.join(files::CLIENT_CERT).exists() {
        return Ok(own);
    }
    let first = dir.join(files::CLIENT_CERT);
    if first.exists() && read_info(&first)?.common_name.as_deref() == Some(name.as_str()) {
        return Ok(dir.to_owned());
    }
    Err(PkiError::NoSuchClient { name: name.to_string(), dir: dir.to_owned() })
}

/// Parses a certificate file (`rcmd pki show`).
pub fn read_info(path: &Path) -> Result<CertInfo, PkiError> {
    let der = super::load::read_cert(path)?;
    CertInfo::parse(&der).map_err(|e| PkiError::file(path, FileProblem::BadCertificate(e)))
}

#[cfg(test)]
mod tests {
    use x509_parser::prelude::{CertificateRevocationList, FromDer};

    use super::*;

    #[test]
    fn a_serial_typed_as_openssl_prints_it_revokes_that_certificate_in_the_crl() {
        let pki = crate::testing::TestPki::new();
        pki.client("alice");
        let dir = pki.cert_dir();
        let index = Index::load(&dir).unwrap();
        let alice = index.certificates.iter().find(|e| e.cn == "alice").unwrap();
        let openssl_form: Vec<String> = alice.serial.as_bytes().iter().map(|b| format!("{b:02X}")).collect();

        let revoked = revoke(&dir, &openssl_form.join(":")).unwrap();

        assert_eq!(
            revoked.iter().map(|e| (&e.cn, &e.serial)).collect::<Vec<_>>(),
            [(&alice.cn, &alice.serial)]
        );
        let pem = std::fs::read(dir.join(files::CRL)).unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
        let (_, crl) = CertificateRevocationList::from_der(&pem.contents).unwrap();
        let in_crl: Vec<Serial> =
            crl.iter_revoked_certificates().map(|r| Serial::from_bytes(r.raw_serial())).collect();
        assert_eq!(in_crl, std::slice::from_ref(&alice.serial));
    }
}
