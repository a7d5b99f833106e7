//! Who is asking, and whose jobs the request reaches.
//!
//! * [`authorize`]: the middleware in front of every route. It reads the
//!   request's [`Peer`] (decided at the handshake). A peer whose CN is not a
//!   valid client name, or that the policy does not name, gets 403 whatever
//!   it asks; any other request carries its [`Caller`].
//! * [`ClientId`]: whose jobs a handler reaches: the caller's own, or, under
//!   `/clients/{cn}/` (admins only, see [`super::admin`]), that client's.
//!
//! A handler that takes a [`ClientId`] cannot run for a client the policy
//! refused, and reaches only that one client's pool.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::peer::Peer;
use super::policy::Rights;
use super::state::AppState;
use crate::pki::ClientName;

/// An authorized client and what the policy lets it do.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub name: ClientName,
    pub rights: Arc<Rights>,
}

/// Admits a request only for a client the policy lets in, and records its
/// [`Caller`]. Runs before routing, so unknown routes are refused alike.
pub(crate) async fn authorize(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let forbidden = |message: String| ApiError::new(StatusCode::FORBIDDEN, message).into_response();
    // No peer only on a server set up without the accept stack: a backstop.
    let name = match request.extensions().get::<Arc<Peer>>().map(|peer| &peer.name) {
        Some(Ok(name)) => name.clone(),
        Some(Err(invalid)) => {
            return forbidden(format!(
                "the certificate's Common Name is not a valid client name: {} (issue certificates with `rcmd pki client NAME`)",
                invalid.reason
            ));
        }
        None => return forbidden("a client certificate with a Common Name is required".into()),
    };
    let Some(rights) = state.policy.get().rights(&name) else {
        return forbidden(format!(
            "client {:?} is not in this server's policy: ask the server's operator to add it",
            name.as_str()
        ));
    };
    request.extensions_mut().insert(Caller { name, rights });
    next.run(request).await
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            // Only a route outside the `authorize` layer could get here.
            ApiError::new(StatusCode::FORBIDDEN, "this client is not authorized")
        })
    }
}

/// Whose jobs a request reaches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ClientId {
    pub name: ClientName,
    /// Reached by an admin under `/clients/{cn}/`: the client's pool is
    /// never created by that, only looked up.
    pub by_admin: bool,
}

/// Set by the admin routes: the client whose jobs they reach.
#[derive(Debug, Clone)]
pub(crate) struct Target(pub ClientName);

impl<S: Send + Sync> FromRequestParts<S> for ClientId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if let Some(Target(name)) = parts.extensions.get::<Target>() {
            return Ok(ClientId { name: name.clone(), by_admin: true });
        }
        let caller = Caller::from_request_parts(parts, state).await?;
        Ok(ClientId { name: caller.name, by_admin: false })
    }
}
