//! Who is asking: the CN of the client certificate verified at the handshake.
//! A handler that takes a [`ClientId`] cannot run for an unidentified client.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum_server::tls::TlsInfo;

use super::error::ApiError;
use super::tls::common_name;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        if let Some(id) = parts.extensions.get::<ClientId>() {
            return Ok(id.clone());
        }
        // The handshake already refused certificates without a CN; this only
        // guards against a server set up without client authentication.
        let refused =
            || ApiError::new(StatusCode::FORBIDDEN, "a client certificate with a Common Name is required");
        let info = parts.extensions.get::<Arc<TlsInfo>>().ok_or_else(refused)?;
        let leaf = info.peer_certificates.first().ok_or_else(refused)?;
        let id = ClientId(common_name(leaf).ok_or_else(refused)?);
        parts.extensions.insert(id.clone());
        Ok(id)
    }
}
