//! [`Server`]: `rcmd serve` from start to stop, in three steps.
//!
//! * [`Server::start`], from a checked [`ServerConfig`]: the `--dev` PKI,
//!   the TLS configuration and the policy, the store, the host's cgroups and
//!   only then the guard (see [`super::host`]), the pools, the accept stack
//!   and the listener. It returns once the server listens.
//! * [`Server::run`]: the control loop, until told to stop: a reload on
//!   request, the daily expiry check, the refusal log's window, and the
//!   guard's SIGCHLD (a guard that a job stopped or killed).
//! * [`Server::shutdown`]: the ordered stop. It stops accepting, waits for
//!   the job starts in progress (a stuck one ends within the start
//!   watchdog's 5 s), kills and reaps every job's process group, then lets
//!   connections finish and closes the records; the runtime then waits a
//!   bounded time for its blocking threads ([`RUNTIME_SHUTDOWN_LIMIT`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum_server::Handle;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::accept::Acceptor;
use super::args::ServeArgs;
use super::budget::ResponseBudget;
use super::config::{ConnectionLimits, ServerConfig};
use super::control::{Control, Embedding, signal_controls};
use super::guard::Guard;
use super::host::HostCgroups;
use super::limit::PreAuthLimit;
use super::metrics::{self, Metrics};
use super::policy::{CurrentPolicy, Policy};
use super::pools::{Pools, pool_template};
use super::refusals::{self, RefusalLog};
use super::registry::Registry;
use super::reload::{Reloader, load_policy, load_tls};
use super::state::AppState;
use super::{retention, routes, warnings};
use crate::jobs::{self, Store};
use crate::pki;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// How long connections get to finish after the jobs were killed.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// How long the server's runtime may wait for its blocking threads once
/// [`serve`] has returned. Every job is reaped by then, and a job start
/// stuck in `clone` has been waited for (see `JobPool::shutdown`); one that
/// is still stuck must not hold the exit forever: dropping a runtime waits
/// for every blocking thread.
pub const RUNTIME_SHUTDOWN_LIMIT: Duration = Duration::from_secs(5);

/// Runs the server until SIGINT or SIGTERM.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    raise_fd_limit();
    // Handle signals before anyone can know our address and send one: a
    // SIGHUP or SIGTERM that came before would end the server outright.
    let controls = signal_controls()?;
    run(args, Embedding { controls, listening: None, own_exe: true }).await
}

/// Runs the server until it is told to stop.
pub(crate) async fn run(args: ServeArgs, embedding: Embedding) -> anyhow::Result<()> {
    let config = ServerConfig::try_from(args)?;
    Server::start(config, embedding).await?.run().await
}

/// Every live job costs descriptors (two pipes, a pidfd, two spool files).
fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// A started server. Its fields drop in this order, after
/// [`Server::shutdown`]: the listener before the jobs' state, the state
/// (whose pools hold the guard and the cgroups) before the guard and the
/// cgroups, and the store last.
pub(crate) struct Server {
    https: Https,
    refusals: Arc<RefusalLog>,
    reloader: Reloader,
    retention: Option<JoinHandle<()>>,
    state: Arc<AppState>,
    guard: Option<WatchedGuard>,
    cgroups: HostCgroups,
    store: Arc<Store>,
    controls: mpsc::Receiver<Control>,
}

impl Server {
    /// Starts every part of the server, in order (see the module docs).
    pub async fn start(config: ServerConfig, embedding: Embedding) -> anyhow::Result<Server> {
        let Embedding { controls, listening, own_exe } = embedding;
        if config.dev && !pki::has_ca(&config.certs) {
            pki::init(&pki::InitOptions::new(&config.certs))?;
            println!("created a new PKI in {}", config.certs.display());
        }
        let (tls, _, identity) = load_tls(&config.certs).map_err(|e| {
            anyhow::anyhow!(
                "{} (create one with `rcmd pki init --dir {}`)",
                crate::one_line(&e.into()),
                config.certs.display()
            )
        })?;
        identity.warn_if_expiring();
        let tls = RustlsConfig::from_config(tls);
        let policy = load_policy(config.policy.as_deref())?.unwrap_or_else(Policy::open);
        warnings::check(&config.certs, &policy);
        let store = Store::open(&config.data_dir, config.max_disk)?;
        let cgroups = HostCgroups::detect(&config.data_dir);
        let guard = own_exe.then(|| WatchedGuard::start(&cgroups)).transpose()?;
        cgroups.enforceable("--job-*", &config.ceilings.limits())?;
        cgroups.policy_enforceable(&policy)?;
        let state = Arc::new(app_state(&config, &store, &cgroups, guard.as_ref(), own_exe, policy));
        let retention = (!config.retain.is_zero())
            .then(|| tokio::spawn(retention::run(Arc::clone(&state), config.retain)));
        let limits = &config.connections;
        let registry = Registry::new(limits.max_connections, limits.max_client_connections);
        let refusals = Arc::new(RefusalLog::new());
        let https =
            Https::bind(&config, acceptor(tls.clone(), registry.clone(), limits), &state, &refusals).await?;
        announce(&config, https.addr, listening, &state).await?;
        let reloader = Reloader { certs: config.certs, policy_file: config.policy, tls, identity, registry };
        Ok(Server { https, refusals, reloader, retention, state, guard, cgroups, store, controls })
    }

    /// The control loop, until a stop (or a closed control channel); then
    /// the ordered stop.
    pub async fn run(mut self) -> anyhow::Result<()> {
        let mut daily = tokio::time::interval_at(tokio::time::Instant::now() + DAY, DAY);
        let mut refusal_window = tokio::time::interval(refusals::WINDOW);
        loop {
            let (guard, child_exits) = match &mut self.guard {
                Some(watched) => (Some(&watched.guard), Some(&mut watched.child_exits)),
                None => (None, None),
            };
            let child_exit = async {
                match child_exits {
                    Some(exits) => exits.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                control = self.controls.recv() => match control {
                    Some(Control::Reload) => self.reloader.reload(&self.state.policy, &self.cgroups),
                    Some(Control::Stop) | None => break,
                },
                _ = daily.tick() => self.reloader.identity.warn_if_expiring(),
                _ = refusal_window.tick() => self.refusals.tick(),
                _ = child_exit => guard.iter().for_each(|guard| guard.check()),
            }
        }
        self.shutdown().await
    }

    /// The ordered stop (see the module docs).
    pub async fn shutdown(self) -> anyhow::Result<()> {
        tracing::info!("shutting down: killing every job");
        self.https.handle.graceful_shutdown(Some(SHUTDOWN_GRACE));
        if let Some(retention) = &self.retention {
            retention.abort();
        }
        for pool in self.state.pools.all() {
            pool.shutdown().await;
        }
        let _ = tokio::time::timeout(SHUTDOWN_GRACE * 2, self.https.task).await;
        self.store.close();
        Ok(())
    }
}

/// The guard process, and the SIGCHLD that says it may have been stopped
/// or killed.
struct WatchedGuard {
    guard: Arc<Guard>,
    child_exits: Signal,
}

impl WatchedGuard {
    /// Starts the guard; it takes the detected cgroups, so it cannot start
    /// before their detection.
    fn start(cgroups: &HostCgroups) -> anyhow::Result<WatchedGuard> {
        let guard =
            Guard::start(&std::env::current_exe()?, cgroups).context("cannot start the guard process")?;
        let child_exits = signal(SignalKind::child())?;
        Ok(WatchedGuard { guard: Arc::new(guard), child_exits })
    }
}

/// What the handlers share: the pools (made from one template), the policy,
/// the metrics and the server's job limits.
fn app_state(
    config: &ServerConfig,
    store: &Arc<Store>,
    cgroups: &HostCgroups,
    guard: Option<&WatchedGuard>,
    own_exe: bool,
    policy: Policy,
) -> AppState {
    let metrics = config.metrics_listen.map(|_| Arc::new(Metrics::new()));
    // Isolated jobs run this very binary as their process 1: the path of
    // the running file, even if it was replaced on disk since.
    let isolate_init = own_exe.then(|| PathBuf::from("/proc/self/exe"));
    let observer = metrics.clone().map(|m| m as Arc<dyn jobs::JobObserver>);
    let watcher = guard.map(|watched| Arc::clone(&watched.guard) as Arc<dyn jobs::GroupWatcher>);
    let template = pool_template(config, store, cgroups.containment(watcher), isolate_init, observer);
    tracing::info!(
        data_dir = %config.data_dir.display(),
        output_stored = store.disk_used(),
        max_disk = store.max_disk(),
        max_stored_per_client = template.max_stored_bytes,
        retain_secs = config.retain.as_secs(),
        "job records and output"
    );
    AppState {
        pools: Pools::new(Arc::clone(store), template),
        policy: CurrentPolicy::new(policy),
        metrics,
        ceilings: config.ceilings,
    }
}

/// The accept stack (see [`super::accept`]): pre-auth places, TLS, the
/// registry, idle timeouts and the response budget.
fn acceptor(tls: RustlsConfig, registry: Registry, limits: &ConnectionLimits) -> Acceptor {
    let budget = ResponseBudget::new(limits.max_response_buffer, registry.clone(), limits.send_timeout);
    let pre_auth =
        PreAuthLimit::new(limits.max_handshakes, limits.max_handshakes_per_source, limits.handshake_timeout);
    let tls = RustlsAcceptor::new(tls).handshake_timeout(limits.handshake_timeout).acceptor(pre_auth);
    Acceptor::new(tls, registry, budget)
        .idle_timeout(limits.idle_timeout)
        .request_timeout(limits.request_timeout)
}

/// The mTLS listener: where it listens, its handle (to stop it), and the
/// task that serves it.
struct Https {
    addr: SocketAddr,
    handle: Handle<SocketAddr>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Https {
    /// Serves the API on `config.listen` through `acceptor`, once it listens.
    async fn bind(
        config: &ServerConfig,
        acceptor: Acceptor,
        state: &Arc<AppState>,
        refusals: &Arc<RefusalLog>,
    ) -> anyhow::Result<Https> {
        let request_timeout = config.connections.request_timeout;
        let handle = Handle::new();
        let log_refusal = Arc::clone(refusals);
        let mut server = axum_server::bind(config.listen)
            .acceptor(acceptor)
            .first_request_timeout(request_timeout)
            .accept_error_handler({
                let metrics = state.metrics.clone();
                move |peer: Option<&SocketAddr>, error: &std::io::Error| {
                    log_refusal.refused(peer, error);
                    if let Some(metrics) = &metrics {
                        metrics.refused(error);
                    }
                }
            })
            .handle(handle.clone());
        server.http_builder().http1().header_read_timeout(request_timeout);
        // Dead HTTP/2 peers are found by pings; idle ones by the idle timeout.
        server
            .http_builder()
            .http2()
            .max_concurrent_streams(config.connections.max_streams)
            .keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(20));
        let app = routes::router(Arc::clone(state)).into_make_service_with_connect_info::<SocketAddr>();
        let task = tokio::spawn(server.serve(app));
        let Some(addr) = handle.listening().await else {
            return match task.await {
                Ok(Err(e)) => Err(anyhow::anyhow!("cannot listen on {}: {e}", config.listen)),
                _ => Err(anyhow::anyhow!("cannot listen on {}", config.listen)),
            };
        };
        Ok(Https { addr, handle, task })
    }
}

/// Tells where the server listens: on stdout, to the embedding program; then
/// starts the metrics endpoint and, in dev mode, prints the command to try.
async fn announce(
    config: &ServerConfig,
    addr: SocketAddr,
    listening: Option<Box<dyn FnOnce(SocketAddr) + Send>>,
    state: &Arc<AppState>,
) -> anyhow::Result<()> {
    println!("rcmd listening on {addr} (job records and output in {})", config.data_dir.display());
    if let Some(listening) = listening {
        listening(addr);
    }
    if let (Some(metrics_addr), Some(metrics)) = (config.metrics_listen, &state.metrics) {
        let listener = tokio::net::TcpListener::bind(metrics_addr)
            .await
            .with_context(|| format!("cannot listen on {metrics_addr} for metrics"))?;
        println!("rcmd metrics on http://{}/metrics", listener.local_addr()?);
        let pools = Arc::clone(state);
        metrics::spawn_endpoint(listener, Arc::clone(metrics), Arc::new(move || pools.pools.stored_bytes()))?;
    }
    if config.dev {
        // The exact command: this very binary, as it was invoked.
        let exe = std::env::args().next().unwrap_or_else(|| "rcmd".to_owned());
        println!("try: {exe} {} {addr} run echo hello", config.certs.display());
    }
    Ok(())
}
