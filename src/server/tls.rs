//! The server's TLS configuration: TLS 1.3 only, the ring provider, and a
//! client certificate that chains to our CA and has a Common Name (the rule
//! of [`common_name`], which [`super::peer::Peer`] is built by too).

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};

use super::peer::common_name;
use crate::pki::ServerFiles;

/// Why a loaded cert directory makes no TLS configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error(transparent)]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error(transparent)]
    Rustls(#[from] rustls::Error),
}

/// Builds the rustls configuration from a loaded cert directory, and the
/// client trust it checks handshakes with.
pub fn server_config(files: ServerFiles) -> Result<(Arc<ServerConfig>, ClientTrust), TlsConfigError> {
    let provider = Arc::new(crate::pki::crypto_provider());
    let webpki = WebPkiClientVerifier::builder_with_provider(Arc::new(files.roots), Arc::clone(&provider))
        .with_crls(files.crls)
        .build()?;
    let verifier = Arc::new(RequireCommonName(webpki));
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(Arc::clone(&verifier) as Arc<dyn ClientCertVerifier>)
        .with_single_cert(files.identity.chain, files.identity.key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((Arc::new(config), ClientTrust(verifier)))
}

/// Which client certificates a configuration accepts: its CA and CRL.
pub struct ClientTrust(Arc<RequireCommonName>);

impl ClientTrust {
    /// Whether a handshake with this chain (leaf first) would succeed now:
    /// a reload closes the connections for which it would not.
    pub fn accepts(&self, chain: &[CertificateDer<'_>]) -> bool {
        let Some((leaf, intermediates)) = chain.split_first() else {
            return false;
        };
        self.0.verify_client_cert(leaf, intermediates, UnixTime::now()).is_ok()
    }
}

/// The client's identity is its certificate's CN, so a certificate without
/// one is refused at the handshake, like any other unusable certificate.
#[derive(Debug)]
struct RequireCommonName(Arc<dyn ClientCertVerifier>);

impl ClientCertVerifier for RequireCommonName {
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self.0.verify_client_cert(end_entity, intermediates, now)?;
        match common_name(end_entity) {
            Some(_) => Ok(verified),
            None => Err(rustls::Error::General("client certificate has no Common Name".into())),
        }
    }

    fn offer_client_auth(&self) -> bool {
        self.0.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.0.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
