//! The one rustls crypto provider rcmd uses, on both ends: *ring*.
//!
//! Why *ring*: rcgen already signs with it, and the other built-in provider,
//! aws-lc-rs, brings a C library and its build tools along. rustls 0.23.48
//! deprecates `ring::default_provider` because *ring* offers no post-quantum
//! key exchange, but rustls 0.23 has no other way to build a *ring* provider
//! (its successor is the `rustls-ring` crate of rustls 0.24). So this is the
//! one place that calls it, and callers never see the deprecation.

use rustls::crypto::CryptoProvider;

/// A fresh *ring* provider with rustls's default suites, and X25519 first
/// among the key exchange groups.
///
/// rustls 0.23.48 moved P-384 to the front of *ring*'s groups; a client then
/// sends a P-384 key share and both ends pay for P-384 on every handshake
/// (about 1 ms of a `run true` on these machines). X25519 is the cheapest,
/// and every TLS 1.3 peer takes it; P-256 and P-384 stay for those that
/// ask for them.
#[allow(deprecated, reason = "rustls 0.23 has no other constructor for its ring provider")]
pub fn crypto_provider() -> CryptoProvider {
    use rustls::crypto::ring::kx_group::{SECP256R1, SECP384R1, X25519};
    CryptoProvider {
        kx_groups: vec![X25519, SECP256R1, SECP384R1],
        ..rustls::crypto::ring::default_provider()
    }
}

#[cfg(test)]
mod tests {
    use rustls::NamedGroup;

    #[test]
    fn key_exchange_offers_x25519_first_then_the_nist_curves() {
        let groups: Vec<NamedGroup> = super::crypto_provider().kx_groups.iter().map(|g| g.name()).collect();
        assert_eq!(groups, [NamedGroup::X25519, NamedGroup::secp256r1, NamedGroup::secp384r1]);
    }
}
