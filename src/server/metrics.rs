//! `serve --metrics-listen ADDR`: Prometheus metrics (OpenMetrics text) over
//! plain HTTP, at `/metrics`.
//!
//! * Labels have low cardinality: route templates (`/jobs/{id}/status`),
//!   never job ids or client names; status codes; a few outcomes and reasons.
//!   A hostile client can add no series, however it names its paths.
//! * Counting costs a few atomic adds on paths that do far more work; without
//!   `--metrics-listen` nothing is counted at all.
//! * The endpoint has no authentication, so it listens on loopback unless
//!   `--metrics-public` says otherwise; it shows counts, never names or ids.
//!   Its connections are few and short ([`super::scrapers`]).

use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::{MatchedPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::scrapers::ScrapeAcceptor;
use crate::jobs::{JobObserver, JobStatus, Status, Termination};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    /// `success` (exit 0), `failure` (another exit code), `signal`, or
    /// `error` (could not start).
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// The route's template, or `unmatched`.
    route: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    /// `tls` (the handshake failed), `timeout`, or `other` (such as the
    /// connection cap).
    reason: &'static str,
}

/// Every metric the server keeps, and the registry that encodes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    jobs_started: Counter,
    jobs_finished: Family<OutcomeLabel, Counter>,
    jobs_running: Gauge,
    oom_kills: Counter,
    requests: Family<RequestLabels, Counter>,
    routes: RouteNames,
    refused: Family<ReasonLabel, Counter>,
    output_bytes: Gauge,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("rcmd");
        let metrics = Metrics {
            jobs_started: Counter::default(),
            jobs_finished: Family::default(),
            jobs_running: Gauge::default(),
            oom_kills: Counter::default(),
            requests: Family::default(),
            routes: RouteNames::default(),
            refused: Family::default(),
            output_bytes: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register("jobs_started", "Jobs created", metrics.jobs_started.clone());
        registry.register(
            "jobs_finished",
            "Jobs finished, by outcome: success, failure (non-zero exit), signal, error (could not start)",
            metrics.jobs_finished.clone(),
        );
        registry.register("jobs_running", "Jobs started and not yet finished", metrics.jobs_running.clone());
        registry.register(
            "jobs_oom_killed",
            "Jobs ended by the kernel's OOM killer inside their memory limit",
            metrics.oom_kills.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template and status",
            metrics.requests.clone(),
        );
        registry.register(
            "handshakes_refused",
            "Connections refused before a request: failed TLS handshakes, timeouts, the connection cap",
            metrics.refused.clone(),
        );
        registry.register(
            "output_bytes_stored",
            "Bytes of job output stored now, all clients together",
            metrics.output_bytes.clone(),
        );
        Metrics { registry, ..metrics }
    }

    /// An answered request, by its route's template.
    pub fn count_request(&self, route: Option<&MatchedPath>, status: StatusCode) {
        let route = route.map_or("unmatched", |path| self.routes.get(path.as_str()));
        self.requests.get_or_create(&RequestLabels { route, status: status.as_u16() }).inc();
    }

    /// A connection that failed before its first request.
    pub fn refused(&self, error: &std::io::Error) {
        let reason = if error.kind() == std::io::ErrorKind::TimedOut {
            "timeout"
        } else if error.get_ref().is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some()) {
            "tls"
        } else {
            "other"
        };
        self.refused.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// The OpenMetrics text, with the gauge of `stored` output bytes.
    fn encode(&self, stored: u64) -> String {
        self.output_bytes.set(i64::try_from(stored).unwrap_or(i64::MAX));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("writing to a String");
        text
    }
}

impl JobObserver for Metrics {
    fn started(&self) {
        self.jobs_started.inc();
        self.jobs_running.inc();
    }

    fn finished(&self, status: &JobStatus) {
        let outcome = match status.status() {
            Status::Completed(Termination::Exited(0)) => "success",
            Status::Completed(Termination::Exited(_)) => "failure",
            Status::Completed(Termination::Signaled(_)) => "signal",
            Status::Error(_) | Status::Running => "error",
        };
        self.jobs_finished.get_or_create(&OutcomeLabel { outcome }).inc();
        if status.oom_killed() {
            self.oom_kills.inc();
        }
        self.jobs_running.dec();
    }
}

/// The route templates seen, each kept once for the life of the process, so
/// that counting a request allocates nothing. The set is the router's own
/// templates (a request that matches no route is `unmatched`), so it cannot
/// grow with what clients send.
#[derive(Debug, Default)]
struct RouteNames(RwLock<Vec<&'static str>>);

impl RouteNames {
    fn get(&self, template: &str) -> &'static str {
        let known = |names: &[&'static str]| names.iter().copied().find(|name| *name == template);
        if let Some(name) = known(&self.0.read().unwrap_or_else(|e| e.into_inner())) {
            return name;
        }
        let mut names = self.0.write().unwrap_or_else(|e| e.into_inner());
        known(&names).unwrap_or_else(|| {
            let name: &'static str = Box::leak(template.into());
            names.push(name);
            name
        })
    }
}

/// How many output bytes are stored now, read at each scrape.
pub(crate) type StoredBytes = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Serves `/metrics` on `listener` until the process ends.
pub fn spawn_endpoint(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    stored: StoredBytes,
) -> std::io::Result<()> {
    async fn scrape(State((metrics, stored)): State<(Arc<Metrics>, StoredBytes)>) -> Response {
        let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
        ([(header::CONTENT_TYPE, content_type)], metrics.encode(stored())).into_response()
    }
    let app = Router::new().route("/metrics", axum::routing::get(scrape)).with_state((metrics, stored));
    let server = axum_server::from_tcp(listener.into_std()?)?.acceptor(ScrapeAcceptor::new());
    tokio::spawn(async move {
        if let Err(e) = server.serve(app.into_make_service()).await {
            tracing::error!(error = %e, "the metrics endpoint stopped");
        }
    });
    Ok(())
}
