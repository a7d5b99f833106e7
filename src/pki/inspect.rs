//! Reading facts back out of a certificate: its CN, names, usages, validity,
//! serial and fingerprint. Used by the CA and the loaders, the server (for
//! the client's identity) and `rcmd pki show`.

use ::time::OffsetDateTime;
use x509_parser::error::X509Error;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use super::Serial;

/// Why bytes are not a certificate rcmd can read.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("{0}")]
    Der(x509_parser::nom::Err<X509Error>),
    #[error("unreadable CN: {0}")]
    CommonName(X509Error),
}

/// The facts about one certificate that rcmd uses.
#[derive(Debug, Clone)]
pub struct CertInfo {
    pub subject: String,
    pub common_name: Option<String>,
    pub serial: Serial,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub is_ca: bool,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<std::net::IpAddr>,
    pub server_auth: bool,
    pub client_auth: bool,
    /// Uppercase hex pairs joined by `:`, as openssl prints it.
    pub sha256_fingerprint: String,
    /// The subject public key (the raw EC point), to match against a key.
    pub public_key: Vec<u8>,
}

impl CertInfo {
    /// Parses a DER certificate.
    pub fn parse(der: &[u8]) -> Result<CertInfo, CertError> {
        let (_, cert) = X509Certificate::from_der(der).map_err(CertError::Der)?;
        let common_name = cert
            .subject()
            .iter_common_name()
            .next()
            .map(|cn| cn.as_str().map(str::to_owned).map_err(CertError::CommonName))
            .transpose()?;
        let mut info = CertInfo {
            subject: cert.subject().to_string(),
            common_name,
            serial: Serial::from_bytes(cert.raw_serial()),
            not_before: cert.validity().not_before.to_datetime(),
            not_after: cert.validity().not_after.to_datetime(),
            is_ca: cert.is_ca(),
            dns_names: Vec::new(),
            ip_addresses: Vec::new(),
            server_auth: false,
            client_auth: false,
            sha256_fingerprint: hex(ring::digest::digest(&ring::digest::SHA256, der).as_ref(), ":")
                .to_uppercase(),
            public_key: cert.public_key().subject_public_key.data.to_vec(),
        };
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(dns) => info.dns_names.push((*dns).to_owned()),
                    GeneralName::IPAddress(bytes) => {
                        if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                            info.ip_addresses.push(v4.into());
                        } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                            info.ip_addresses.push(v6.into());
                        }
                    }
                    _ => {}
                }
            }
        }
        if let Ok(Some(eku)) = cert.extended_key_usage() {
            info.server_auth = eku.value.server_auth;
            info.client_auth = eku.value.client_auth;
        }
        Ok(info)
    }

    /// Whole days from `now` until the certificate expires (negative once
    /// it has).
    pub fn days_left(&self, now: OffsetDateTime) -> i64 {
        (self.not_after - now).whole_days()
    }
}

fn hex(bytes: &[u8], separator: &str) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(separator)
}

/// Formats a time the way rcmd prints it everywhere: RFC 3339, UTC.
pub fn format_time(t: OffsetDateTime) -> String {
    t.format(&::time::format_description::well_known::Rfc3339).unwrap_or_else(|_| t.to_string())
}
