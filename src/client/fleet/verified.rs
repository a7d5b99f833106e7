//! Knowing whether a host has shown its certificate yet, so that a Ctrl-C
//! can abandon a host that is still connecting without leaving a job there.
//!
//! A request goes out only after the TLS handshake, and the handshake goes
//! on only after the server's certificate has been verified: while it has
//! not been, nothing has reached the host. Every host has a config of its
//! own with a fresh session store (see [`super::closing`]), so its first
//! connection is a full handshake that verifies the certificate.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// Whether one host's certificate has been verified.
pub(crate) struct Verified(Arc<AtomicBool>);

impl Verified {
    /// Makes `tls` verify with `verifier` (as it did) and note when it has.
    pub fn watch(tls: &mut rustls::ClientConfig, verifier: &Arc<WebPkiServerVerifier>) -> Verified {
        let seen = Arc::new(AtomicBool::new(false));
        let noting = Noting { verifier: Arc::clone(verifier), seen: Arc::clone(&seen) };
        tls.dangerous().set_certificate_verifier(Arc::new(noting));
        Verified(seen)
    }

    /// Whether the host's certificate has passed: if not, nothing has been
    /// sent to it.
    pub fn yet(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The CA's and CRL's verifier, unchanged, plus a note of its first pass.
#[derive(Debug)]
struct Noting {
    verifier: Arc<WebPkiServerVerifier>,
    seen: Arc<AtomicBool>,
}

impl ServerCertVerifier for Noting {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified =
            self.verifier.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)?;
        self.seen.store(true, Ordering::SeqCst);
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.verifier.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[rustls::DistinguishedName]> {
        self.verifier.root_hint_subjects()
    }
}
