//! The fresh-PKI-per-run fixture: [`rcmd::testing::TestPki`] inside a
//! scratch directory of the test's own, so that one `chown -R` of that
//! directory hands everything to a server that runs as another user.

use std::path::{Path, PathBuf};

use rcgen::CertificateParams;

use super::TempDir;

/// rcmd's own tests' PKI: [`rcmd::testing::TestPki`] made inside `dir`,
/// which also holds the test's own files.
pub struct TestPki {
    /// Declared first, so it is dropped before the directory it is in.
    pub inner: rcmd::testing::TestPki,
    /// Holds the PKI and whatever the test puts there.
    pub dir: TempDir,
}

impl TestPki {
    /// A CA, server identity, a first client named "owner", and one client
    /// directory per name.
    pub fn new(clients: &[&str]) -> TestPki {
        let dir = TempDir::new("pki");
        let pki = TestPki { inner: rcmd::testing::TestPki::new_in(dir.path()), dir };
        for name in clients {
            pki.inner.client(name);
        }
        pki
    }

    /// The cert directory (also the "owner" client directory).
    pub fn certs(&self) -> PathBuf {
        self.inner.cert_dir()
    }

    /// Where `name`'s client directory is, issued or not.
    pub fn client(&self, name: &str) -> PathBuf {
        self.certs().join(name)
    }

    /// A client directory with a certificate that `configure` shapes, signed
    /// by this PKI's CA ([`rcmd::testing::TestPki::client_with`]).
    pub fn odd_client(&self, cn: &str, configure: impl FnOnce(&mut CertificateParams)) -> PathBuf {
        self.inner.client_with(cn, configure).path().to_owned()
    }
}

pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}
