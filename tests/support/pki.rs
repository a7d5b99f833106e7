//! The fresh-PKI-per-run fixture: a CA, a server identity and any number of
//! named clients in a temp dir, made with rcmd's own `pki` module, plus
//! deliberately bad certificates for refusal tests.

use std::path::{Path, PathBuf};

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair, KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

use super::TempDir;

pub struct TestPki {
    pub dir: TempDir,
}

impl TestPki {
    /// A CA, server identity, a first client named "owner", and one client
    /// directory per name.
    pub fn new(clients: &[&str]) -> TestPki {
        let dir = TempDir::new("pki");
        let mut options = rcmd::pki::InitOptions::new(dir.path().join("certs"));
        options.client = "owner".parse().unwrap();
        rcmd::pki::init(&options).expect("pki init");
        let pki = TestPki { dir };
        for name in clients {
            rcmd::pki::issue_client_dir(&pki.certs(), &name.parse().unwrap(), 30, false).expect("pki client");
        }
        pki
    }

    /// The cert directory (also the "owner" client directory).
    pub fn certs(&self) -> PathBuf {
        self.dir.path().join("certs")
    }

    pub fn client(&self, name: &str) -> PathBuf {
        self.certs().join(name)
    }

    /// A client directory with a certificate that `configure` shapes, signed
    /// by this PKI's CA, or by a foreign CA when `foreign` is set.
    pub fn odd_client(
        &self,
        label: &str,
        foreign: bool,
        configure: impl FnOnce(&mut CertificateParams),
    ) -> PathBuf {
        let (ca_cert_pem, ca_key) = if foreign {
            let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
            let mut params = CertificateParams::default();
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
            params.distinguished_name.push(DnType::CommonName, "foreign CA");
            (params.self_signed(&key).unwrap().pem(), key)
        } else {
            let pem = std::fs::read_to_string(self.certs().join("ca.key")).unwrap();
            (std::fs::read_to_string(self.certs().join("ca.crt")).unwrap(), KeyPair::from_pem(&pem).unwrap())
        };
        let issuer = Issuer::from_ca_cert_pem(&ca_cert_pem, ca_key).unwrap();
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, label);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        configure(&mut params);
        let cert = params.signed_by(&key, &issuer).unwrap();
        let dir = self.dir.path().join(format!("odd-{label}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(self.certs().join("ca.crt"), dir.join("ca.crt")).unwrap();
        std::fs::write(dir.join("client.crt"), cert.pem()).unwrap();
        std::fs::write(dir.join("client.key"), key.serialize_pem()).unwrap();
        dir
    }
}

/// Shapes for [`TestPki::odd_client`].
pub fn expired(params: &mut CertificateParams) {
    params.not_before = OffsetDateTime::now_utc() - Duration::days(10);
    params.not_after = OffsetDateTime::now_utc() - Duration::days(1);
}

pub fn not_yet_valid(params: &mut CertificateParams) {
    params.not_before = OffsetDateTime::now_utc() + Duration::days(1);
    params.not_after = OffsetDateTime::now_utc() + Duration::days(10);
}

pub fn server_eku_only(params: &mut CertificateParams) {
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
}

pub fn no_common_name(params: &mut CertificateParams) {
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::OrganizationName, "no CN here");
}

pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}
