//! Making certificates with rcgen: a P-256 CA, server and client
//! certificates signed by it (with the names, [`San`]s, a server certificate
//! carries), and recording them in the index. Every certificate gets a
//! random 16-byte serial and is backdated a few minutes, so a peer whose
//! clock is slightly behind still accepts it.

use std::net::IpAddr;
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use super::files::{self, DirLock};
use super::index::{Entry, Index, Kind};
use super::inspect::{CertInfo, format_time};
use super::{ClientName, FileProblem, PkiError, Serial};

const BACKDATE: Duration = Duration::minutes(5);

/// A freshly made certificate and its private key, both PEM.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub entry: Entry,
}

impl Issued {
    /// Writes the key (0600) and the certificate as a pair.
    pub fn write(&self, lock: &DirLock, cert_path: &Path, key_path: &Path) -> Result<(), PkiError> {
        files::write_pair(lock, (key_path, self.key_pem.as_bytes()), (cert_path, self.cert_pem.as_bytes()))
    }
}

/// A CA that can sign: its certificate and key.
pub struct Ca {
    pub cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// What a server certificate must name: rcmd always adds localhost,
/// 127.0.0.1, ::1 and the host name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum San {
    Dns(String),
    Ip(IpAddr),
}

impl std::str::FromStr for San {
    type Err = PkiError;

    fn from_str(value: &str) -> Result<San, PkiError> {
        if let Ok(ip) = value.parse() {
            return Ok(San::Ip(ip));
        }
        let bad = |reason: &str| PkiError::BadSan { value: value.to_owned(), reason: reason.to_owned() };
        let valid_label = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if value.is_empty() || value.len() > 253 {
            return Err(bad("a host name is 1 to 253 characters"));
        }
        let labels = value.strip_prefix("*.").unwrap_or(value);
        if !labels.split('.').all(valid_label) {
            return Err(bad("not an IP address, nor a DNS name of letters, digits, `-` and `.`"));
        }
        Ok(San::Dns(value.to_ascii_lowercase()))
    }
}

impl San {
    fn to_rcgen(&self) -> Result<SanType, PkiError> {
        Ok(match self {
            San::Dns(name) => SanType::DnsName(name.as_str().try_into()?),
            San::Ip(ip) => SanType::IpAddress(*ip),
        })
    }
}

/// The names every server certificate carries, plus `extra`, without
/// duplicates.
pub fn server_sans(extra: &[San]) -> Vec<San> {
    let mut sans = vec![
        San::Dns("localhost".into()),
        San::Ip(IpAddr::from([127, 0, 0, 1])),
        San::Ip(IpAddr::from(std::net::Ipv6Addr::LOCALHOST)),
    ];
    if let Some(host) = host_name().and_then(|h| h.parse::<San>().ok()) {
        sans.push(host);
    }
    for san in extra {
        if !sans.contains(san) {
            sans.push(san.clone());
        }
    }
    sans
}

/// This machine's host name, if it has a usable one.
pub fn host_name() -> Option<String> {
    nix::unistd::gethostname().ok()?.into_string().ok().filter(|h| !h.is_empty())
}

fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .expect("the system's random source works");
    // Positive, and always 16 bytes long.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&bytes)
}

fn params(cn: &str, days: u32) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    let now = OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + Duration::days(i64::from(days));
    params.serial_number = Some(random_serial());
    params
}

fn entry(params: &CertificateParams, cn: &str, kind: Kind) -> Entry {
    let serial = params.serial_number.as_ref().expect("params() sets a serial");
    Entry {
        serial: Serial::from_bytes(serial.as_ref()),
        cn: cn.to_owned(),
        kind,
        not_after: format_time(params.not_after),
        revoked_at: None,
    }
}

fn new_key() -> Result<KeyPair, PkiError> {
    Ok(KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?)
}

impl Ca {
    /// Makes a new self-signed CA.
    pub fn create(cn: &str, days: u32) -> Result<(Ca, Issued), PkiError> {
        let key = new_key()?;
        let mut params = params(cn, days);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let cert = params.self_signed(&key)?;
        let issued = Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            entry: entry(&params, cn, Kind::Ca),
        };
        let ca = Ca { cert_pem: issued.cert_pem.clone(), issuer: Issuer::new(params, key) };
        Ok((ca, issued))
    }

    /// Loads the CA of a cert directory, checking that key and certificate
    /// belong together.
    pub fn load(dir: &Path) -> Result<Ca, PkiError> {
        let cert_path = dir.join(files::CA_CERT);
        let key_path = dir.join(files::CA_KEY);
        if !cert_path.exists() && !key_path.exists() {
            return Err(PkiError::NoCa { dir: dir.to_owned() });
        }
        let cert_der = super::load::read_cert(&cert_path)?;
        let info = CertInfo::parse(&cert_der)
            .map_err(|e| PkiError::file(&cert_path, FileProblem::BadCertificate(e)))?;
        if !info.is_ca {
            return Err(PkiError::file(&cert_path, FileProblem::NotCa));
        }
        let key_pem = String::from_utf8(files::read(&key_path)?).map_err(|_| {
            PkiError::file(
                &key_path,
                FileProblem::NotPem { expected: "private key", detail: "not text".into() },
            )
        })?;
        let key =
            KeyPair::from_pem(&key_pem).map_err(|e| PkiError::file(&key_path, FileProblem::BadKey(e)))?;
        if rcgen::PublicKeyData::der_bytes(&key) != info.public_key.as_slice() {
            return Err(PkiError::file(&key_path, FileProblem::KeyMismatch { cert: cert_path }));
        }
        let issuer = Issuer::from_ca_cert_der(&cert_der, key)
            .map_err(|e| PkiError::file(&cert_path, FileProblem::NotIssuer(e)))?;
        let cert_pem = String::from_utf8(files::read(&cert_path)?).unwrap_or_default();
        Ok(Ca { cert_pem, issuer })
    }

    pub(crate) fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }

    fn sign(&self, mut params: CertificateParams, cn: &str, kind: Kind) -> Result<Issued, PkiError> {
        let key = new_key()?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued { cert_pem: cert.pem(), key_pem: key.serialize_pem(), entry: entry(&params, cn, kind) })
    }

    /// A server certificate (serverAuth) for these names.
    pub fn issue_server(&self, sans: &[San], days: u32) -> Result<Issued, PkiError> {
        let cn = match sans.iter().find(|s| matches!(s, San::Dns(_))) {
            Some(San::Dns(name)) => format!("rcmd server {}", host_name().unwrap_or_else(|| name.clone())),
            _ => "rcmd server".to_owned(),
        };
        self.issue_named_server(&cn, sans, days)
    }

    /// A server certificate (serverAuth) whose CN is `cn`, for these names:
    /// one host of a fleet (`rcmd pki server NAME`).
    pub fn issue_named_server(&self, cn: &str, sans: &[San], days: u32) -> Result<Issued, PkiError> {
        let mut params = params(cn, days);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.subject_alt_names = sans.iter().map(San::to_rcgen).collect::<Result<_, _>>()?;
        self.sign(params, cn, Kind::Server)
    }

    /// A client certificate (clientAuth) whose CN is the client's identity.
    pub fn issue_client(&self, name: &ClientName, days: u32) -> Result<Issued, PkiError> {
        let mut params = params(name.as_str(), days);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params, name.as_str(), Kind::Client)
    }
}

/// Records issued certificates in the directory's index.
pub fn record(lock: &DirLock, issued: &[&Issued]) -> Result<(), PkiError> {
    let mut index = Index::load(lock.dir())?;
    index.certificates.extend(issued.iter().map(|i| i.entry.clone()));
    index.save(lock)
}
