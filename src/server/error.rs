//! Error responses: a status and, where the API promises one, a JSON
//! `{"error": "..."}` body.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::wire;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    /// `None` for the seed's bare 404s (status and output of unknown jobs).
    message: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: Some(message.into()) }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// An unknown job, or another client's: the two are indistinguishable.
    pub fn no_such_job(id: u64) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, format!("no job with id {id}"))
    }

    /// The same, without a body, as the seed specifies for reads.
    pub fn bare_not_found() -> Self {
        ApiError { status: StatusCode::NOT_FOUND, message: None }
    }

    /// A failure of the server itself. Its details may name the server's
    /// own files, so they go to the log only; the client learns what failed.
    pub fn internal(what: &str, error: impl Into<anyhow::Error>) -> Self {
        tracing::error!(error = %crate::one_line(&error.into()), "{what}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{what}: an error on the server (its log has the details)"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self.message {
            Some(error) => (self.status, Json(wire::Error { error })).into_response(),
            None => self.status.into_response(),
        }
    }
}
