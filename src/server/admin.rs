//! What admins (`admin = true` in the policy) may do beyond their own jobs:
//! list every client's jobs (`GET /jobs?all=true`, in pages like `GET /jobs`:
//! `limit`, and `after=CN/ID` from the `next` of the page before), and reach any client's
//! job under `/clients/{cn}/jobs/{id}/...` with the very handlers of
//! `/jobs/{id}/...`. Everyone else gets 403 for both, whether or not the
//! client or job exists, so nothing is learned by asking.

use std::collections::{BTreeSet, HashMap};

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::identity::{Caller, Target};
use super::page::page_limit;
use super::state::AppState;
use super::status::status_body;
use crate::jobs::{JobId, PAGE_BYTES};
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

/// Clients read from the records at a time while filling a page.
const CLIENTS_AT_A_TIME: usize = 256;

/// `GET /jobs?all=true[&limit=N&after=CN/ID]`: one page of every client's
/// jobs, each with its client, by client name (in byte order, as the
/// records sort them) and then id, starting after job `CN/ID`.
pub(crate) fn all_jobs(
    caller: &Caller,
    state: &AppState,
    after: Option<&str>,
    limit: Option<usize>,
) -> Result<wire::JobList, ApiError> {
    if !caller.rights.admin {
        return Err(not_admin());
    }
    let mut page = AllPage { limit: page_limit(limit)?, jobs: Vec::new(), bytes: 0, next: None };
    // The clients whose jobs come next are those above `client`.
    let mut client = String::new();
    if let Some(after) = after {
        let (name, id) = parse_after(after)?;
        if !page.add(state, &name, JobId(id))? {
            return Ok(page.into_list());
        }
        client = name.to_string();
    }
    loop {
        let names = clients_after(state, &client)?;
        for name in &names {
            if !page.add(state, name, JobId(0))? {
                return Ok(page.into_list());
            }
        }
        match names.last() {
            Some(last) => client = last.to_string(),
            None => return Ok(page.into_list()),
        }
    }
}

/// `after` in an admin's listing: `CN/ID`, the `next` of the page before.
fn parse_after(after: &str) -> Result<(ClientName, u64), ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "with all=true, after is CLIENT/ID (the `next` of the page before), not {after:?}"
        ))
    };
    let (name, id) = after.rsplit_once('/').ok_or_else(bad)?;
    Ok((ClientName::parse(name).map_err(|_| bad())?, id.parse().map_err(|_| bad())?))
}

/// The next few clients above `after`, in order: those in the records, and
/// those with a pool open now (whose first ids may not be recorded yet, on
/// a full disk say) among them.
fn clients_after(state: &AppState, after: &str) -> Result<Vec<ClientName>, ApiError> {
    let recorded = state
        .pools
        .store()
        .clients_after(after, CLIENTS_AT_A_TIME)
        .map_err(|e| ApiError::internal("cannot list the clients", e))?;
    // Past a full batch, clients are not known yet: the next batch has them.
    let known_up_to = (recorded.len() == CLIENTS_AT_A_TIME).then(|| recorded.last().cloned()).flatten();
    let mut names: BTreeSet<ClientName> =
        recorded.iter().filter_map(|name| ClientName::parse(name).ok()).collect();
    names.extend(state.pools.each().into_iter().map(|(name, _)| name).filter(|name| {
        name.as_str() > after && known_up_to.as_deref().is_none_or(|last| name.as_str() <= last)
    }));
    Ok(names.into_iter().collect())
}

/// A page of every client's jobs as it fills up.
struct AllPage {
    limit: usize,
    jobs: Vec<wire::JobStatus>,
    /// Bytes of command lines on the page so far.
    bytes: usize,
    next: Option<wire::After>,
}

impl AllPage {
    /// Adds `client`'s jobs after `after`, as many as fit; returns whether
    /// the page has room for the next client's.
    fn add(&mut self, state: &AppState, client: &ClientName, after: JobId) -> Result<bool, ApiError> {
        let Some(pool) = state.pools.existing(client) else { return Ok(true) };
        let list =
            |limit| pool.list_page(after, limit).map_err(|e| ApiError::internal("cannot list the jobs", e));
        if self.jobs.len() == self.limit {
            // Full: there is a next page if this client has more.
            if !list(1)?.jobs.is_empty() {
                self.next = self.last();
            }
            return Ok(false);
        }
        let listed = list(self.limit - self.jobs.len())?;
        self.bytes += listed.jobs.iter().map(|job| job.command_line_len()).sum::<usize>();
        self.jobs.extend(
            listed
                .jobs
                .iter()
                .map(|job| wire::JobStatus { client: Some(client.to_string()), ..status_body(job) }),
        );
        if listed.next.is_some() || self.bytes > PAGE_BYTES {
            self.next = self.last();
            return Ok(false);
        }
        Ok(true)
    }

    /// The last job on the page, as `after` takes it.
    fn last(&self) -> Option<wire::After> {
        let job = self.jobs.last()?;
        Some(wire::After::Job(format!("{}/{}", job.client.as_deref().unwrap_or_default(), job.id)))
    }

    fn into_list(self) -> wire::JobList {
        wire::JobList { jobs: self.jobs, next: self.next }
    }
}

/// The pool of the client an admin names; never created by asking.
pub(crate) fn missing_client(name: &ClientName) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("client {:?} has no jobs here", name.as_str()))
}
