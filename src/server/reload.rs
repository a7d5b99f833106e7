//! What SIGHUP loads again (the cert directory, its CRL, the policy), and the
//! expiry dates the server watches.
//!
//! A reload is all or nothing: if any part fails to load, nothing changes.
//! New connections use the new certificates; every request from now on is
//! judged by the new policy; open connections whose certificate the new CA
//! and CRL refuse (revoked, expired) or whose client the new policy drops
//! are closed; running jobs are untouched.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum_server::tls_rustls::RustlsConfig;

use super::host::HostCgroups;
use super::policy::{CurrentPolicy, Policy, PolicyError, ServerUser};
use super::registry::Registry;
use super::tls::{self, ClientTrust, TlsConfigError};
use super::warnings;
use crate::pki;

const EXPIRY_WARNING_DAYS: i64 = 30;

/// The dates the server watches: its own certificate's and the CA's.
pub(crate) struct Identity {
    server: pki::CertInfo,
    ca: pki::CertInfo,
}

impl Identity {
    /// Logs a warning for each that expires within 30 days.
    pub fn warn_if_expiring(&self) {
        let now = time::OffsetDateTime::now_utc();
        for (what, info) in [("server certificate", &self.server), ("CA certificate", &self.ca)] {
            let days = info.days_left(now);
            if days < EXPIRY_WARNING_DAYS {
                tracing::warn!(days_left = days, not_after = %pki::format_time(info.not_after), "the {what} expires soon: renew it (`rcmd pki renew server`, then kill -HUP)");
            }
        }
    }
}

/// A loaded cert directory: the TLS configuration, the client trust it
/// checks handshakes with, and its expiry dates.
pub(crate) type LoadedTls = (Arc<rustls::ServerConfig>, ClientTrust, Identity);

/// Why a cert directory cannot serve.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CertDirError {
    #[error(transparent)]
    Load(#[from] pki::PkiError),
    #[error(transparent)]
    Tls(#[from] TlsConfigError),
}

/// Loads the cert directory and builds the TLS configuration from it.
pub(crate) fn load_tls(certs: &Path) -> Result<LoadedTls, CertDirError> {
    let files = pki::load_server(certs)?;
    let identity = Identity { server: files.identity.info.clone(), ca: files.ca.clone() };
    let (config, trust) = tls::server_config(files)?;
    Ok((config, trust, identity))
}

/// The policy file, if the server has one.
pub(crate) fn load_policy(file: Option<&Path>) -> Result<Option<Policy>, PolicyError> {
    file.map(|path| Policy::load(path, ServerUser::current())).transpose()
}

/// What a reload reads from and what it changes, besides the policy.
pub(crate) struct Reloader {
    pub certs: PathBuf,
    pub policy_file: Option<PathBuf>,
    /// What new connections' handshakes use.
    pub tls: RustlsConfig,
    pub identity: Identity,
    /// The open connections, closed when they are no longer trusted.
    pub registry: Registry,
}

impl Reloader {
    /// SIGHUP: loads the cert directory and the policy again (see the
    /// module docs).
    pub fn reload(&mut self, policy: &CurrentPolicy, cgroups: &HostCgroups) {
        let loaded = load_tls(&self.certs).map_err(anyhow::Error::from).and_then(|tls| {
            let next = load_policy(self.policy_file.as_deref())?;
            next.as_ref().map(|next| cgroups.policy_enforceable(next)).transpose()?;
            Ok((tls, next))
        });
        match loaded {
            Ok(((config, trust, reloaded), next)) => {
                self.tls.reload_from_config(config);
                self.identity = reloaded;
                self.registry.close_where("its certificate is revoked or no longer trusted", |peer| {
                    !trust.accepts(&peer.chain)
                });
                if let Some(next) = next {
                    let previous = policy.replace(next);
                    close_connections_of(&previous.dropped_by(&policy.get()), &self.registry);
                }
                warnings::check(&self.certs, &policy.get());
                tracing::info!(server_serial = %self.identity.server.serial, "reloaded the certificates, key, CA, CRL and policy; new connections use them");
            }
            Err(e) => {
                tracing::error!(error = %crate::one_line(&e), "reload failed; still using the previous certificates and policy")
            }
        }
    }
}

/// Cuts off clients that a reloaded policy no longer lets in: their open
/// connections are closed, and each of their requests from now on gets 403.
fn close_connections_of(dropped: &[pki::ClientName], registry: &Registry) {
    if !dropped.is_empty() {
        let names: Vec<&str> = dropped.iter().map(pki::ClientName::as_str).collect();
        tracing::info!(clients = ?names, "the policy no longer lets these clients in: their requests get 403 from now on");
        registry.close_where("the policy no longer lets its client in", |peer| {
            dropped.iter().any(|name| peer.is(name))
        });
    }
}
