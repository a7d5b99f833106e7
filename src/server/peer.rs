//! [`Peer`]: who is on a connection, decided once, when the accept stack has
//! the finished handshake, from the certificate the TLS verifier accepted.
//!
//! Invariants:
//! * A `Peer` exists only for a certificate with a non-empty Common Name
//!   ([`common_name`], the same rule the verifier refuses handshakes by).
//! * Its name is judged once against the client-name rules: a valid
//!   [`ClientName`], or the [`InvalidName`] kept for the log and the 403.
//! * The registry, the request log, [`super::identity`] and every handler
//!   read this one value: it is in each request's extensions as
//!   `Arc<Peer>`, put there by the connection's service.

use rustls::pki_types::CertificateDer;

use crate::pki::{CertInfo, ClientName, InvalidName, Serial};

/// Who is on a connection, as its verified certificate says.
#[derive(Debug)]
pub(crate) struct Peer {
    /// The certificate's CN, as the client-name rules judge it.
    pub name: Result<ClientName, InvalidName>,
    /// The certificate's serial, shown as `rcmd pki list` shows it.
    pub serial: Serial,
    /// The chain the client presented, leaf first: what a reload verifies
    /// again against the new CA and CRL.
    pub chain: Vec<CertificateDer<'static>>,
}

impl Peer {
    /// The peer of a finished handshake, or `None` if it presented no
    /// certificate with a CN (the verifier refuses those; this is a backstop).
    pub fn from_chain(chain: &[CertificateDer<'_>]) -> Option<Peer> {
        let info = CertInfo::parse(chain.first()?).ok()?;
        let cn = non_empty_cn(&info)?;
        Some(Peer {
            name: ClientName::parse(&cn),
            serial: info.serial,
            chain: chain.iter().map(|c| c.clone().into_owned()).collect(),
        })
    }

    /// The CN as the certificate has it, valid client name or not: what the
    /// per-client connection cap counts and the log shows (the log escapes
    /// control characters).
    pub fn cn(&self) -> &str {
        match &self.name {
            Ok(name) => name.as_str(),
            Err(invalid) => &invalid.name,
        }
    }

    /// Whether this is client `name`.
    pub fn is(&self, name: &ClientName) -> bool {
        self.name.as_ref().is_ok_and(|own| own == name)
    }
}

/// The non-empty CN of a certificate, if it has one.
pub(crate) fn common_name(der: &[u8]) -> Option<String> {
    non_empty_cn(&CertInfo::parse(der).ok()?)
}

fn non_empty_cn(info: &CertInfo) -> Option<String> {
    info.common_name.clone().filter(|cn| !cn.is_empty())
}

#[cfg(test)]
impl Peer {
    /// A peer without a certificate chain, for tests of what reads it.
    pub fn named(cn: &str) -> Peer {
        Peer { name: ClientName::parse(cn), serial: Serial::from_bytes(cn.as_bytes()), chain: Vec::new() }
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_ECDSA_P256_SHA256};

    use super::*;

    fn certificate(cn: Option<&str>) -> CertificateDer<'static> {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = DistinguishedName::new();
        if let Some(cn) = cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        params.self_signed(&key).unwrap().der().clone()
    }

    #[test]
    fn a_valid_common_name_is_the_client_name_with_its_serial_and_chain() {
        let chain = [certificate(Some("alice"))];
        let peer = Peer::from_chain(&chain).expect("a peer");
        assert!(peer.is(&ClientName::parse("alice").unwrap()));
        assert_eq!(peer.cn(), "alice");
        assert_eq!(peer.serial, CertInfo::parse(&chain[0]).unwrap().serial);
        assert_eq!(peer.chain, chain);
    }

    #[test]
    fn an_invalid_common_name_is_kept_as_sent_and_is_no_client() {
        let peer = Peer::from_chain(&[certificate(Some("../etc"))]).expect("a peer");
        assert_eq!(peer.cn(), "../etc");
        assert!(peer.name.is_err());
        assert!(!peer.is(&ClientName::parse("etc").unwrap()));
    }

    #[test]
    fn no_common_name_or_no_certificate_is_no_peer() {
        assert!(Peer::from_chain(&[certificate(None)]).is_none());
        assert!(Peer::from_chain(&[certificate(Some(""))]).is_none());
        assert!(Peer::from_chain(&[]).is_none());
        assert_eq!(common_name(&certificate(None)), None);
        assert_eq!(common_name(&certificate(Some("bob"))).as_deref(), Some("bob"));
    }
}
