//! Pages of a job list: `GET /jobs` and an admin's `GET /jobs?all=true`
//! take at most [`MAX_PAGE`] jobs at a time.

use super::error::ApiError;
use crate::jobs::{DEFAULT_PAGE, MAX_PAGE};

/// The jobs a page of `GET /jobs` asks for: `limit`, if it is one.
pub(crate) fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit.unwrap_or(DEFAULT_PAGE) {
        limit @ 1..=MAX_PAGE => Ok(limit),
        _ => Err(ApiError::bad_request(format!("limit must be 1 to {MAX_PAGE}"))),
    }
}
