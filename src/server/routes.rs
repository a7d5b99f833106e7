//! The HTTP API: routes, handlers, and the request log.
//!
//! Only the server's start builds the router; nothing else imports this
//! file. Every request passes [`authorize`] first (403 for a client the policy
//! does not let in, on every route). Every handler takes a [`ClientId`] and
//! reaches jobs only through that client's own pool, so another client's
//! job is simply not there: 404. The calls on one job are mounted twice:
//! at `/jobs/{id}/...` for the caller's own jobs, and at
//! `/clients/{cn}/jobs/{id}/...` for admins (see [`super::admin`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, MatchedPath, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;

use super::admin;
use super::body::TimedBytes;
use super::error::ApiError;
use super::identity::{Caller, ClientId, authorize};
use super::json_output;
use super::page::page_limit;
use super::peer::Peer;
use super::state::AppState;
use super::status::status_body;
use crate::jobs::{
    JobError, JobId, JobPool, JobSpec, OutputReader, StdinCopied, StdinEnd, StdinRefused, Stream,
};
use crate::wire;

/// The largest request body accepted.
pub const MAX_BODY: usize = 1 << 20;
/// The most arguments one job may have.
pub const MAX_ARGS: usize = 4096;

pub(crate) fn router(state: Arc<AppState>) -> Router {
    let on_behalf = middleware::from_fn(admin::on_behalf);
    Router::new()
        .route("/jobs", put(create).get(list))
        .merge(job_routes())
        // The admin check covers everything under /clients, routes or not.
        .nest("/clients", Router::new().nest("/{cn}", job_routes()).fallback(no_such_route).layer(on_behalf))
        .fallback(no_such_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(Arc::clone(&state), authorize))
        .layer(middleware::from_fn_with_state(Arc::clone(&state), log_request))
        .with_state(state)
}

/// The calls on one job, for whichever client [`ClientId`] names.
fn job_routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/jobs/{id}", axum::routing::delete(delete))
        .route("/jobs/{id}/status", get(status))
        .route("/jobs/{id}/output", get(output_json))
        .route("/jobs/{id}/output/{stream}", get(output_raw))
        .route("/jobs/{id}/stdin", put(write_stdin))
        .route("/jobs/{id}/stop", post(stop))
}

/// Logs every request with the client's CN (of its [`Peer`]), and counts it
/// in the metrics.
async fn log_request(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let address = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let peer = request.extensions().get::<Arc<Peer>>().cloned();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    if let Some(metrics) = &state.metrics {
        metrics.count_request(route.as_ref(), response.status());
    }
    tracing::info!(
        client = peer.as_deref().map_or("-", Peer::cn),
        peer = ?address,
        %method,
        path,
        status = response.status().as_u16(),
        latency_us = started.elapsed().as_micros() as u64,
        "request"
    );
    response
}

async fn no_such_route() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such route: see the API in README.md")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this route")
}

/// The job (and, for the raw output call, the stream) named in the path.
struct JobPath {
    id: JobId,
    stream: Option<Stream>,
}

impl<S: Send + Sync> FromRequestParts<S> for JobPath {
    type Rejection = ApiError;

    /// Reads the path as sent, before percent-decoding: a job has one name,
    /// so `/jobs/%31`, `/jobs/01` and `/jobs/+1` are not job 1.
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let template = parts.extensions.get::<MatchedPath>().map(MatchedPath::as_str).unwrap_or_default();
        let param = |name| raw_segment(template, parts.uri.path(), name);
        let raw = param("id").unwrap_or_default();
        let id = canonical_id(raw).ok_or_else(|| {
            ApiError::bad_request(format!(
                "invalid job id {raw:?}: ids are positive integers, such as 1 or 42"
            ))
        })?;
        let stream = match param("stream") {
            None => None,
            Some("stdout") => Some(Stream::Stdout),
            Some("stderr") => Some(Stream::Stderr),
            Some(other) => {
                return Err(ApiError::bad_request(format!("unknown stream {other:?}: use stdout or stderr")));
            }
        };
        Ok(JobPath { id: JobId(id), stream })
    }
}

/// The segment of `path`, as sent, where the route's `template` has `{name}`.
/// Counted from the end, so it holds in a nested router too, whose path
/// lacks the prefix that the template has.
fn raw_segment<'a>(template: &str, path: &'a str, name: &str) -> Option<&'a str> {
    let placeholder = format!("{{{name}}}");
    let from_end = template.split('/').rev().position(|segment| segment == placeholder)?;
    path.split('/').rev().nth(from_end)
}

/// A job id in its one spelling: decimal digits, no sign, no leading zero.
fn canonical_id(raw: &str) -> Option<u64> {
    let canonical = raw.bytes().all(|b| b.is_ascii_digit()) && !raw.starts_with('0');
    raw.parse().ok().filter(|_| canonical)
}

fn pool(state: &AppState, client: &ClientId) -> Result<Arc<JobPool>, ApiError> {
    if client.by_admin {
        return state.pools.existing(&client.name).ok_or_else(|| admin::missing_client(&client.name));
    }
    state.pools.get(&client.name).map_err(|e| ApiError::internal("cannot open the job store", e))
}

/// A parsed query string; a bad one is a 400 with a JSON error.
struct ApiQuery<T>(T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(query) = Query::<T>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        Ok(ApiQuery(query))
    }
}

/// Why serde refused a job's body: an invalid limit is named by its own
/// rule alone (`a cpus limit must be ...`), as the limit's type says it;
/// anything else gets the shape the API takes.
fn refused_body(body: &[u8], shape: &str, error: serde_json::Error) -> String {
    let invalid_limit = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|value| value.get("limits").cloned())
        .and_then(|limits| serde_json::from_value::<crate::limits::Limits>(limits).err());
    match invalid_limit {
        Some(limit) => limit.to_string(),
        None => format!("{shape}: {error}"),
    }
}

async fn create(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    TimedBytes(body): TimedBytes,
) -> Result<Json<wire::Created>, ApiError> {
    let shape = r#"expected a JSON object like {"cmd": "echo", "args": ["hi"]}"#;
    // serde would also take a struct from an array; the API takes objects.
    if !body.trim_ascii_start().starts_with(b"{") {
        return Err(ApiError::bad_request(shape));
    }
    let request: wire::CreateJob =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(refused_body(&body, shape, e)))?;
    if request.cmd.is_empty() {
        return Err(ApiError::bad_request("cmd must not be empty"));
    }
    if request.args.len() > MAX_ARGS {
        return Err(ApiError::bad_request(format!("too many args: at most {MAX_ARGS}")));
    }
    if request.cmd.contains('\0') || request.args.iter().any(|a| a.contains('\0')) {
        return Err(ApiError::bad_request("cmd and args must not contain NUL bytes"));
    }
    let ceilings = state.ceilings.within(&caller.rights.ceilings);
    let limits = ceilings.apply(&request.limits).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let spec = JobSpec {
        limits,
        isolate: request.isolate,
        stdin: request.stdin,
        ..JobSpec::new(request.cmd, request.args)
    };
    let spec = caller
        .rights
        .apply(spec)
        .map_err(|refused| ApiError::new(StatusCode::FORBIDDEN, refused.to_string()))?;
    let pool = pool(&state, &ClientId { name: caller.name, by_admin: false })?;
    match pool.try_create(spec).await {
        Ok(id) => Ok(Json(wire::Created { id: id.0 })),
        Err(JobError::Quota(quota)) => Err(ApiError::new(StatusCode::TOO_MANY_REQUESTS, quota.to_string())),
        Err(JobError::Unsupported(why)) => Err(ApiError::bad_request(why.to_string())),
        Err(JobError::CommandLine(why)) => Err(ApiError::bad_request(why.to_string())),
        Err(other) => Err(ApiError::internal("cannot create the job", other)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Every client's jobs (admins only).
    #[serde(default)]
    all: bool,
    /// Jobs per page [default: DEFAULT_PAGE, at most MAX_PAGE].
    limit: Option<usize>,
    /// Only jobs after this one: an id, or `CN/ID` with `all`.
    after: Option<String>,
}

async fn list(
    caller: Caller,
    client: ClientId,
    State(state): State<Arc<AppState>>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<wire::JobList>, ApiError> {
    if q.all {
        return admin::all_jobs(&caller, &state, q.after.as_deref(), q.limit).map(Json);
    }
    let limit = page_limit(q.limit)?;
    let after = match q.after.as_deref().map(str::parse) {
        None => 0,
        Some(Ok(id)) => id,
        Some(Err(_)) => {
            return Err(ApiError::bad_request(
                "after must be a job id: the `next` of the page before (CN/ID only with all=true)",
            ));
        }
    };
    let page = pool(&state, &client)?
        .list_page(JobId(after), limit)
        .map_err(|e| ApiError::internal("cannot list the jobs", e))?;
    let jobs = page.jobs.iter().map(status_body).collect();
    Ok(Json(wire::JobList { jobs, next: page.next.map(|id| wire::After::Id(id.0)) }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusQuery {
    /// Answer only once the job has finished.
    #[serde(default)]
    wait: bool,
}

async fn status(
    client: ClientId,
    State(state): State<Arc<AppState>>,
    job: JobPath,
    ApiQuery(q): ApiQuery<StatusQuery>,
) -> Result<Json<wire::JobStatus>, ApiError> {
    let pool = pool(&state, &client)?;
    let status = if q.wait { pool.wait(job.id).await } else { pool.status(job.id) };
    status.map(|s| Json(status_body(&s))).map_err(not_found_or_internal)
}

async fn output_json(
    client: ClientId,
    State(state): State<Arc<AppState>>,
    job: JobPath,
) -> Result<Response, ApiError> {
    let pool = pool(&state, &client)?;
    let truncated = pool.status(job.id).map_err(not_found_or_internal)?.truncated;
    let reader = |stream| open_reader(&pool, job.id, stream, 0).map(|r| r.up_to_now());
    let body = json_output::body(reader(Stream::Stdout)?, reader(Stream::Stderr)?, truncated).map_err(|size| {
        let id = job.id;
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "job {id} has {size} bytes of output, more than this JSON call returns ({} bytes): read it as it is with GET /jobs/{id}/output/stdout and /jobs/{id}/output/stderr, as `rcmd ... output {id}` does",
                json_output::MAX_STORED
            ),
        )
    })?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

fn open_reader(pool: &JobPool, id: JobId, stream: Stream, offset: u64) -> Result<OutputReader, ApiError> {
    pool.reader(id, stream, offset).map_err(not_found_or_internal)
}

/// The seed's bare 404 for an unknown job; anything else is the server's fault.
fn not_found_or_internal(e: JobError) -> ApiError {
    match e {
        JobError::NotFound(_) => ApiError::bare_not_found(),
        other => ApiError::internal("cannot read the job", other),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuery {
    /// Keep the response open and stream bytes until the job ends.
    #[serde(default)]
    follow: bool,
    /// Start at this byte.
    #[serde(default)]
    offset: u64,
}

async fn output_raw(
    client: ClientId,
    State(state): State<Arc<AppState>>,
    job: JobPath,
    ApiQuery(q): ApiQuery<RawQuery>,
) -> Result<Response, ApiError> {
    let stream = job.stream.expect("the route has a stream");
    let pool = pool(&state, &client)?;
    let reader = open_reader(&pool, job.id, stream, q.offset)?;
    let reader = if q.follow { reader } else { reader.up_to_now() };
    let chunks = futures_util::stream::unfold(Some(reader), |reader| async move {
        let mut reader = reader?;
        match reader.next_chunk().await {
            Ok(Some(chunk)) => Some((Ok(chunk), Some(reader))),
            Ok(None) => None,
            Err(e) => Some((Err(e), None)),
        }
    });
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], Body::from_stream(chunks)).into_response())
}

/// `PUT /jobs/{id}/stdin`: the body, as it arrives, into the job's stdin.
/// The body is read only as fast as the job takes it (see `jobs::stdin`).
async fn write_stdin(
    client: ClientId,
    State(state): State<Arc<AppState>>,
    job: JobPath,
    body: Body,
) -> Result<Response, ApiError> {
    let pool = pool(&state, &client)?;
    let id = job.id;
    let stopped = |written, error| (StatusCode::CONFLICT, Some(error), written);
    let writer = match pool.stdin(id) {
        Ok(writer) => writer,
        Err(JobError::NotFound(_)) => return Err(ApiError::no_such_job(id.0)),
        // Like a job that ends during the upload: 409 with `written`, which
        // says "the job takes no more", not "you asked for the wrong thing".
        Err(JobError::Stdin { refused: StdinRefused::Ended, .. }) => {
            return Ok(stdin_answer(stopped(0, format!("job {id} is not running; nothing was written"))));
        }
        Err(refused @ JobError::Stdin { .. }) => {
            return Err(ApiError::new(StatusCode::CONFLICT, refused.to_string()));
        }
        Err(other) => return Err(ApiError::internal("cannot write to the job's stdin", other)),
    };
    let StdinCopied { written, end } = writer.copy_from(body.into_data_stream()).await;
    Ok(stdin_answer(match end {
        StdinEnd::Complete => (StatusCode::OK, None, written),
        StdinEnd::JobClosed => stopped(
            written,
            format!("job {id} closed its stdin after {written} bytes; the rest was not written"),
        ),
        StdinEnd::JobEnded => stopped(
            written,
            format!("job {id} ended after {written} bytes of stdin; the rest was not written"),
        ),
        StdinEnd::SourceFailed(e) => (
            StatusCode::BAD_REQUEST,
            Some(format!("the upload broke off after {written} bytes ({e}); job {id}'s stdin is closed")),
            written,
        ),
        StdinEnd::PipeFailed(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Some(format!("cannot write to job {id}'s stdin after {written} bytes: {e}")),
            written,
        ),
    }))
}

fn stdin_answer((status, error, written): (StatusCode, Option<String>, u64)) -> Response {
    (status, Json(wire::StdinWritten { written, error })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StopQuery {
    /// Seconds between SIGTERM and SIGKILL, at most the server's own grace:
    /// a client may stop its job sooner, never make the server wait longer.
    grace: Option<f64>,
}

async fn stop(
    client: ClientId,
    State(state): State<Arc<AppState>>,
    job: JobPath,
    ApiQuery(q): ApiQuery<StopQuery>,
) -> Result<Json<wire::JobStatus>, ApiError> {
    let pool = pool(&state, &client)?;
    let stopped = match q.grace {
        None => pool.stop(job.id).await,
        Some(grace) => {
            let grace = Duration::try_from_secs_f64(grace).map_err(|_| {
                ApiError::bad_request(format!("grace must be a number of seconds, not {grace}"))
            })?;
            pool.stop_with_grace(job.id, grace.min(pool.stop_grace())).await
        }
    };
    let status = stopped.map_err(|e| match e {
        JobError::NotFound(id) => ApiError::no_such_job(id.0),
        other => ApiError::internal("cannot stop the job", other),
    })?;
    Ok(Json(status_body(&status)))
}

async fn delete(
    client: ClientId,
    State(state): State<Arc<AppState>>,
    job: JobPath,
) -> Result<StatusCode, ApiError> {
    let pool = pool(&state, &client)?;
    pool.delete(job.id).await.map_err(|e| match e {
        JobError::NotFound(id) => ApiError::no_such_job(id.0),
        other => ApiError::internal("cannot delete the job", other),
    })?;
    Ok(StatusCode::OK)
}

#[cfg(test)]
mod tests {
    use super::{canonical_id, raw_segment};

    #[test]
    fn path_segments_are_found_by_their_place_in_the_template() {
        assert_eq!(raw_segment("/jobs/{id}/output/{stream}", "/jobs/%31/output/err", "id"), Some("%31"));
        assert_eq!(raw_segment("/jobs/{id}/output/{stream}", "/jobs/1/output/err", "stream"), Some("err"));
        assert_eq!(raw_segment("/a/jobs/{id}", "/jobs/7", "id"), Some("7"), "a nested router's path");
        assert_eq!(raw_segment("/jobs/{id}", "/jobs/7", "stream"), None);
    }

    #[test]
    fn only_the_canonical_decimal_form_is_a_job_id() {
        assert_eq!(canonical_id("1"), Some(1));
        assert_eq!(canonical_id("42"), Some(42));
        assert_eq!(canonical_id("18446744073709551615"), Some(u64::MAX));
        for other in ["", "0", "01", "+1", "-1", " 1", "1 ", "1.0", "0x1", "%31", "18446744073709551616", "١"]
        {
            assert_eq!(canonical_id(other), None, "{other:?}");
        }
    }
}
