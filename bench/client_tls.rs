//! The TLS side of the benchmarks' clients: TLS 1.3 with the client
//! certificate of a folder made by `rcmd pki client` (ca.crt, client.crt,
//! client.key). Included by examples/loadgen.rs and examples/h2flood.rs.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A client configuration for the certificates in `certs`, offering `alpn`.
pub fn client_config(certs: &Path, alpn: &[u8]) -> rustls::ClientConfig {
    let _ = rcmd::pki::crypto_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(certs.join("ca.crt")).unwrap()).unwrap();
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(rcmd::pki::crypto_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![CertificateDer::from_pem_file(certs.join("client.crt")).unwrap()],
            PrivateKeyDer::from_pem_file(certs.join("client.key")).unwrap(),
        )
        .unwrap();
    tls.alpn_protocols = vec![alpn.to_vec()];
    tls
}
