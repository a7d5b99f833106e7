//! The one rustls crypto provider rcmd uses, on both ends: *ring*.
//!
//! Why *ring*: rcgen already signs with it, and the other built-in provider,
//! aws-lc-rs, brings a C library and its build tools along. rustls 0.23.48
//! deprecates `ring::default_provider` because *ring* offers no post-quantum
//! key exchange, but rustls 0.23 has no other way to build a *ring* provider
//! (its successor is the `rustls-ring` crate of rustls 0.24). So this is the
//! one place that calls it, and callers never see the deprecation.

use rustls::crypto::CryptoProvider;

/// A fresh *ring* provider with rustls's default suites and key exchange
/// groups for it.
#[allow(deprecated, reason = "rustls 0.23 has no other constructor for its ring provider")]
pub fn crypto_provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}
