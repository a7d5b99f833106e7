//! [`TestPki`]: a fresh certificate authority in a temp dir, with a server
//! identity, any number of named clients, and the broken certificates that
//! refusal tests need.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use time::{Duration, OffsetDateTime};

use super::temp::TempDir;
use crate::pki::files::{self, Secrecy};
use crate::pki::{self, Ca};

/// A fresh PKI in its own temp dir, removed when the `TestPki` is dropped.
///
/// Its cert directory holds `ca.crt`, `ca.key`, `server.crt` and
/// `server.key` (the server certificate names `localhost`, `127.0.0.1` and
/// `::1`), exactly as `rcmd pki init` writes them, so `rcmd serve --certs`
/// takes it as it is. Certificates are P-256 with SHA-256, as rcmd's own.
#[derive(Debug)]
pub struct TestPki {
    dir: TempDir,
}

impl TestPki {
    /// A CA and a server identity, plus a first client identity named
    /// `owner` in the cert directory itself, in a new directory (0700) under
    /// the system's temp dir.
    ///
    /// # Panics
    ///
    /// If the temp dir or the certificates cannot be made: a test cannot go
    /// on without its fixture.
    pub fn new() -> TestPki {
        TestPki::make(TempDir::new("pki"))
    }

    /// Like [`TestPki::new`], with the PKI's directory made inside `parent`
    /// instead of the system's temp dir (and removed all the same when
    /// dropped). For a test that must hand the PKI to another user, such as
    /// a server that runs as that user: it makes `parent` reachable for them
    /// and changes the owner of everything in it.
    pub fn new_in(parent: &Path) -> TestPki {
        TestPki::make(TempDir::new_in(parent, "pki"))
    }

    /// Like [`TestPki::new`], with a client directory issued for each of
    /// `names` (see [`TestPki::client`]): for a cert directory handed to a
    /// process (`rcmd serve`, the CLI) that expects those clients there.
    ///
    /// ```
    /// # use rcmd::testing::TestPki;
    /// let pki = TestPki::with_clients(&["alice"]);
    /// assert!(pki.cert_dir().join("alice").join("client.crt").is_file());
    /// ```
    pub fn with_clients(names: &[&str]) -> TestPki {
        let pki = TestPki::new();
        for name in names {
            pki.client(name);
        }
        pki
    }

    fn make(dir: std::io::Result<TempDir>) -> TestPki {
        let dir = dir.unwrap_or_else(|e| panic!("cannot make a directory for the test PKI: {e}"));
        let mut options = pki::InitOptions::new(dir.path().join("certs"));
        options.client = "owner".parse().expect("a valid client name");
        pki::init(&options).unwrap_or_else(|e| panic!("cannot make the test PKI: {e}"));
        TestPki { dir }
    }

    /// The directory that holds everything this PKI made, the cert
    /// directory included; removed when the `TestPki` is dropped.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The cert directory: what `rcmd serve --certs` takes.
    pub fn cert_dir(&self) -> PathBuf {
        self.dir.path().join("certs")
    }

    /// The CA certificate (PEM), which clients trust.
    pub fn ca_cert(&self) -> PathBuf {
        self.cert_dir().join("ca.crt")
    }

    /// The client directory of `name`: issued by this PKI's CA on first use
    /// (the CN is `name`), the same folder after that. `owner` is the first
    /// client, made with the PKI.
    ///
    /// # Panics
    ///
    /// If `name` is not a valid client name (see `rcmd pki client`).
    pub fn client(&self, name: &str) -> ClientDir {
        let path = if name == "owner" { self.cert_dir() } else { self.cert_dir().join(name) };
        if !path.join(files::CLIENT_CERT).exists() {
            let client = name.parse().unwrap_or_else(|e| panic!("cannot issue a test client: {e}"));
            match pki::issue_client_dir(&self.cert_dir(), &client, 30, false) {
                Ok(_) => {}
                // Another thread issued it meanwhile, under the directory's lock.
                Err(pki::PkiError::ClientExists { .. }) if path.join(files::CLIENT_CERT).exists() => {}
                Err(e) => panic!("cannot issue a test client {name:?}: {e}"),
            }
        }
        ClientDir { path }
    }

    /// A client whose certificate expired yesterday (CN `expired`).
    pub fn expired_client(&self) -> ClientDir {
        let now = OffsetDateTime::now_utc();
        self.odd_client("expired", Signer::OwnCa, |params| {
            params.not_before = now - Duration::days(10);
            params.not_after = now - Duration::days(1);
        })
    }

    /// A client whose certificate becomes valid tomorrow (CN `not-yet-valid`).
    pub fn not_yet_valid_client(&self) -> ClientDir {
        let now = OffsetDateTime::now_utc();
        self.odd_client("not-yet-valid", Signer::OwnCa, |params| {
            params.not_before = now + Duration::days(1);
            params.not_after = now + Duration::days(10);
        })
    }

    /// A client signed by another CA that this PKI's server does not trust
    /// (CN `wrong-ca`). Its `ca.crt` is this PKI's, so it trusts the server.
    pub fn wrong_ca_client(&self) -> ClientDir {
        self.odd_client("wrong-ca", Signer::OtherCa, |_| {})
    }

    /// A client whose certificate lacks the clientAuth usage: it is for
    /// servers only (CN `no-client-auth`).
    pub fn no_client_auth_client(&self) -> ClientDir {
        self.odd_client("no-client-auth", Signer::OwnCa, |params| {
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        })
    }

    /// The server's rustls configuration, as `rcmd serve` builds it from this
    /// PKI: TLS 1.3 only, ring, a client certificate of this CA required.
    /// For a server of your own that should accept this PKI's clients.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let files =
            pki::load_server(&self.cert_dir()).unwrap_or_else(|e| panic!("cannot load the test PKI: {e}"));
        let (config, _) = crate::server::tls::server_config(files)
            .unwrap_or_else(|e| panic!("cannot build the server TLS config: {e}"));
        config
    }

    /// A rustls client configuration that trusts this PKI's CA and presents
    /// no certificate: the server must refuse it.
    pub fn anonymous_client_config(&self) -> rustls::ClientConfig {
        client_config_builder(&self.ca_cert()).with_no_client_auth()
    }

    /// A client certificate of any shape, for the refusal tests the methods
    /// above do not cover: `configure` gets the parameters of a valid client
    /// certificate of this CA (CN `cn`, clientAuth, valid for 30 days) and
    /// may change anything (an empty subject, other usages, other dates).
    /// Each call makes a new client directory.
    ///
    /// ```
    /// # use rcmd::testing::TestPki;
    /// let pki = TestPki::new();
    /// let no_cn = pki.client_with("ignored", |params| {
    ///     params.distinguished_name = rcmd::testing::rcgen::DistinguishedName::new();
    /// });
    /// ```
    pub fn client_with(&self, cn: &str, configure: impl FnOnce(&mut CertificateParams)) -> ClientDir {
        self.odd_client(cn, Signer::OwnCa, configure)
    }

    /// A client directory holding a certificate shaped by `configure`, in a
    /// directory of its own (numbered: a CN may hold any character).
    fn odd_client(
        &self,
        cn: &str,
        signer: Signer,
        configure: impl FnOnce(&mut CertificateParams),
    ) -> ClientDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let fail = |e: &dyn std::fmt::Display| -> ! { panic!("cannot make the {cn:?} test client: {e}") };
        let ca = match signer {
            Signer::OwnCa => Ca::load(&self.cert_dir()),
            Signer::OtherCa => Ca::create("another CA", 30).map(|(ca, _)| ca),
        };
        let ca = ca.unwrap_or_else(|e| fail(&e));
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap_or_else(|e| fail(&e));
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let now = OffsetDateTime::now_utc();
        (params.not_before, params.not_after) = (now - Duration::minutes(5), now + Duration::days(30));
        configure(&mut params);
        let cert = params.signed_by(&key, ca.issuer()).unwrap_or_else(|e| fail(&e));
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.path().join("clients").join(n.to_string());
        let ca_cert = files::read(&self.ca_cert()).unwrap_or_else(|e| fail(&e));
        let lock = files::DirLock::acquire(&path).unwrap_or_else(|e| fail(&e));
        let write = |name: &str, contents: &[u8], secrecy| {
            files::write_atomic(&lock, &path.join(name), contents, secrecy).unwrap_or_else(|e| fail(&e))
        };
        write(files::CA_CERT, &ca_cert, Secrecy::Public);
        write(files::CLIENT_CERT, cert.pem().as_bytes(), Secrecy::Public);
        write(files::CLIENT_KEY, key.serialize_pem().as_bytes(), Secrecy::Secret);
        ClientDir { path }
    }
}

impl Default for TestPki {
    fn default() -> Self {
        TestPki::new()
    }
}

/// Who signs an odd client's certificate.
enum Signer {
    OwnCa,
    OtherCa,
}

/// A client directory (`ca.crt`, `client.crt`, `client.key`): what the rcmd
/// CLI takes as CERTDIR, and the same identity as a rustls configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientDir {
    path: PathBuf,
}

impl ClientDir {
    /// The client directory at `path`, made by `rcmd pki client` rather
    /// than by a [`TestPki`]. Nothing is read until it is used.
    pub fn at(path: impl Into<PathBuf>) -> ClientDir {
        ClientDir { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn cert(&self) -> PathBuf {
        self.path.join("client.crt")
    }

    pub fn key(&self) -> PathBuf {
        self.path.join("client.key")
    }

    pub fn ca_cert(&self) -> PathBuf {
        self.path.join("ca.crt")
    }

    /// A rustls client configuration with this identity: TLS 1.3 only, ring,
    /// trusting only the PKI's CA. It sets no ALPN protocols (HTTP/1.1); set
    /// `alpn_protocols` for HTTP/2.
    ///
    /// # Panics
    ///
    /// If the files cannot be read.
    pub fn rustls_config(&self) -> rustls::ClientConfig {
        let chain = vec![
            CertificateDer::from_pem_file(self.cert())
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", self.cert().display())),
        ];
        let key = PrivateKeyDer::from_pem_file(self.key())
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", self.key().display()));
        client_config_builder(&self.ca_cert())
            .with_client_auth_cert(chain, key)
            .unwrap_or_else(|e| panic!("unusable client identity in {}: {e}", self.path.display()))
    }
}

fn client_config_builder(
    ca: &Path,
) -> rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert> {
    let mut roots = rustls::RootCertStore::empty();
    let ca_der =
        CertificateDer::from_pem_file(ca).unwrap_or_else(|e| panic!("cannot read {}: {e}", ca.display()));
    roots.add(ca_der).unwrap_or_else(|e| panic!("unusable CA certificate {}: {e}", ca.display()));
    rustls::ClientConfig::builder_with_provider(Arc::new(pki::crypto_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("ring supports TLS 1.3")
        .with_root_certificates(roots)
}
