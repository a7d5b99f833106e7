//! What admins (`admin = true` in the policy) may do beyond their own jobs:
//! list every client's jobs (`GET /jobs?all=true`), and reach any client's
//! job under `/clients/{cn}/jobs/{id}/...` with the very handlers of
//! `/jobs/{id}/...`. Everyone else gets 403 for both, whether or not the
//! client or job exists, so nothing is learned by asking.

use std::collections::HashMap;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::identity::{Caller, Target};
use super::routes::AppState;
use crate::pki::ClientName;
use crate::wire;

fn not_admin() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "only admins may reach other clients' jobs (admin = true in the server's policy)",
    )
}

/// In front of `/clients/{cn}/...`: admins only; the handlers behind it
/// then reach client `cn`'s jobs.
pub(crate) async fn on_behalf(
    caller: Caller,
    path: Result<Path<HashMap<String, String>>, PathRejection>,
    mut request: Request,
    next: Next,
) -> Response {
    if !caller.rights.admin {
        return not_admin().into_response();
    }
    let cn = path.as_ref().ok().and_then(|Path(params)| params.get("cn"));
    match cn.map(|cn| ClientName::parse(cn)) {
        Some(Ok(name)) => {
            request.extensions_mut().insert(Target(name));
        }
        Some(Err(invalid)) => return ApiError::bad_request(invalid.to_string()).into_response(),
        // No route matched: the fallback answers.
        None => {}
    }
    next.run(request).await
}

/// `GET /jobs?all=true`: every client's jobs, each with its client, by
/// client and then id.
pub(crate) fn all_jobs(caller: &Caller, state: &AppState) -> Result<wire::JobList, ApiError> {
    if !caller.rights.admin {
        return Err(not_admin());
    }
    let mut pools = state.pools.each();
    pools.sort_by(|a, b| a.0.cmp(&b.0));
    let mut jobs = Vec::new();
    for (name, pool) in &pools {
        let listed = pool.list().map_err(|e| ApiError::internal("cannot list the jobs", e))?;
        jobs.extend(
            listed
                .iter()
                .map(|job| wire::JobStatus { client: Some(name.to_string()), ..super::status_body(job) }),
        );
    }
    Ok(wire::JobList { jobs, next: None })
}

/// The pool of the client an admin names; never created by asking.
pub(crate) fn missing_client(name: &ClientName) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("client {name:?} has no jobs here"))
}
