//! Request bodies read whole (a job's JSON) have a deadline: the request
//! timeout, counted from when the request arrived. A peer that sends its body
//! a byte a second gets 408 at the deadline instead of holding a request open
//! for as long as it likes. Streamed bodies do not use this type.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use tokio::time::Instant;

use super::error::ApiError;

/// When the body of a request must have arrived; put into each request's
/// extensions by the connection's service.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyDeadline(pub Instant);

/// The whole request body, read before its [`BodyDeadline`].
pub(crate) struct TimedBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for TimedBytes {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let deadline = request.extensions().get::<BodyDeadline>().copied();
        let read = Bytes::from_request(request, state);
        let read = match deadline {
            Some(BodyDeadline(at)) => tokio::time::timeout_at(at, read).await.map_err(|_| {
                ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "the request body did not arrive in time (--request-timeout)",
                )
            })?,
            None => read.await,
        };
        read.map(TimedBytes).map_err(|e| {
            ApiError::new(e.status(), format!("cannot read the request body: {}", e.body_text()))
        })
    }
}
