//! `rcmd serve`: the HTTPS API, with mutual TLS, in front of one job pool per
//! client.
//!
//! * [`tls`]: TLS 1.3 only, ring, a client certificate chaining to our CA
//!   and carrying a CN, required at the handshake.
//! * [`identity`]: who is asking (the CN, a [`ClientName`](crate::pki::ClientName)),
//!   refused with 403 unless the [`policy`] lets it in; whose jobs it reaches.
//! * [`policy`]: `--policy FILE`: who may run what, as whom.
//! * [`pools`]: a job pool per client, created on first use, all in one
//!   [`Store`](crate::jobs::Store) (the data directory and its records).
//! * [`retention`]: deletes old finished jobs in the background.
//! * [`routes`]: the handlers; another client's job is a 404.
//! * [`admin`]: every client's jobs, for admins.
//! * [`warnings`]: risky set-ups, logged at start-up.
//! * [`json_output`]: the seed's JSON output call, streamed.
//! * [`accept`]: the accept stack: [`limit`] (connections before
//!   authentication), TLS, the [`registry`] of authenticated connections (a
//!   reload closes those it no longer trusts), idle timeouts, and the
//!   response memory [`budget`]; refused connections are logged through
//!   [`refusals`] at a bounded rate.
//!
//! Shutdown (SIGINT or SIGTERM) stops accepting, waits for the job starts in
//! progress (a stuck one ends within the start watchdog's 5 s), kills and
//! reaps every job's process group, then lets connections finish; the
//! runtime then waits a bounded time for its blocking threads.

mod accept;
mod admin;
mod body;
mod budget;
mod ceilings;
mod error;
pub mod guard;
mod identity;
mod json_output;
mod limit;
pub mod logging;
mod metrics;
mod policy;
mod pools;
mod refusals;
mod registry;
mod retention;
mod routes;
mod scrapers;
mod seconds;
pub(crate) mod tls;
mod warnings;

pub use seconds::Seconds;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use axum_server::Handle;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use self::policy::{CurrentPolicy, Policy, ServerUser};
use crate::jobs::{self, PoolConfig, Store};
use crate::pki;
use crate::wire;

/// `rcmd serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// The cert directory: ca.crt, server.crt and server.key (never ca.key).
    #[arg(long, default_value = "certs", value_name = "DIR")]
    pub certs: PathBuf,

    /// Address to listen on. Port 0 picks a free port (printed at start).
    #[arg(long, default_value = "127.0.0.1:8443", value_name = "ADDR")]
    pub listen: SocketAddr,

    /// Where job records and output are kept; it must be ours alone (mode
    /// 0700, not a symlink) and one server's at a time [default:
    /// /var/lib/rcmd for root, else $XDG_STATE_HOME/rcmd or
    /// ~/.local/state/rcmd; with --dev, CERTS/data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Delete finished jobs, with their output, this long after they
    /// finished: a number with s, m, h or d, or 0 to keep every job.
    #[arg(long, default_value = "7d", value_name = "DURATION", value_parser = crate::units::parse_duration)]
    pub retain: Duration,

    /// The most output bytes stored by all jobs of all clients together;
    /// past it output is dropped (jobs marked truncated) and new jobs get
    /// 429. SIZE is bytes or a number with K, M, G or T [default: what is
    /// stored plus half of the free space of the data directory's file
    /// system, at start-up].
    #[arg(long, value_name = "SIZE", value_parser = crate::units::parse_size)]
    pub max_disk: Option<u64>,

    /// One-command start: create a PKI in --certs if it has none, listen on
    /// loopback, and print the client command to try. mTLS stays on.
    #[arg(long)]
    pub dev: bool,

    /// A policy file (TOML): which clients may connect, the unix user each
    /// one's jobs run as, the programs it may run, and who is an admin.
    /// Without it every client may connect and jobs run as the server's own
    /// user. Read again on SIGHUP. See README.md, "Policy".
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,

    /// Output bytes kept per job (stdout and stderr together); the rest is
    /// dropped and the job marked truncated.
    #[arg(long, default_value_t = PoolConfig::DEFAULT_OUTPUT_LIMIT, value_name = "BYTES")]
    pub max_output: u64,

    /// Seconds between SIGTERM and SIGKILL when a job is stopped.
    #[arg(long, default_value_t = Seconds(PoolConfig::DEFAULT_STOP_GRACE), value_name = "SECONDS")]
    pub stop_grace: Seconds,

    /// Per client: the most jobs running at once; more get 429.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub max_running: usize,

    /// Per client: the most jobs kept (finished or not, until deleted).
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub max_jobs: usize,

    /// Per client: the most output bytes stored by all its jobs together.
    /// Past it, output is dropped (jobs marked truncated) and new jobs get
    /// 429. SIZE as for --max-disk [default: a quarter of --max-disk, at most
    /// 16G, so that no one client can take the space of all].
    #[arg(long, value_name = "SIZE", value_parser = crate::units::parse_size)]
    pub max_stored: Option<u64>,

    /// The most authenticated connections open at once; more are closed
    /// right after their handshake.
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub max_connections: usize,

    /// Per client (CN): the most connections open at once.
    #[arg(long, default_value_t = 128, value_name = "N")]
    pub max_client_connections: usize,

    /// The most connections in their TLS handshake at once; more wait (up to
    /// four times as many, each for at most --handshake-timeout), then are
    /// closed.
    #[arg(long, default_value_t = 512, value_name = "N")]
    pub max_handshakes: usize,

    /// Once half of --max-handshakes is in use: the most connections in their
    /// handshake from one source address (an IPv6 /64 counts as one).
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub max_handshakes_per_source: usize,

    /// Seconds a connection may take to complete its TLS handshake.
    #[arg(long, default_value_t = Seconds(Duration::from_secs(10)), value_name = "SECONDS")]
    pub handshake_timeout: Seconds,

    /// Log format on stderr: text (coloured only on a terminal) or json (one
    /// object per line). RUST_LOG sets the level.
    #[arg(long, value_enum, default_value_t = logging::LogFormat::Text, value_name = "FORMAT")]
    pub log_format: logging::LogFormat,

    /// Serve Prometheus metrics over plain HTTP at http://ADDR/metrics.
    /// Loopback only, unless --metrics-public.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,

    /// Allow --metrics-listen on an address other than loopback (the
    /// metrics have no authentication; they show counts, never names).
    #[arg(long, requires = "metrics_listen")]
    pub metrics_public: bool,

    /// Seconds a connection may stay open with no request in progress
    /// (HTTP/2 pings do not count).
    #[arg(long, default_value_t = Seconds(Duration::from_secs(120)), value_name = "SECONDS")]
    pub idle_timeout: Seconds,

    /// Seconds a peer may leave the output it asked for unread while others
    /// wait for the response buffer; then its connection is closed.
    #[arg(long, default_value_t = Seconds(Duration::from_secs(30)), value_name = "SECONDS")]
    pub send_timeout: Seconds,

    /// Bytes of streamed responses held in memory, over all connections;
    /// past it, output streams wait (at least 1 MiB).
    #[arg(long, default_value_t = 64 << 20, value_name = "BYTES")]
    pub max_response_buffer: usize,

    /// Per HTTP/2 connection: the most requests in progress at once.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub max_streams: u32,

    /// Seconds a client may take to send a request's headers, and a request
    /// body such as a job's JSON. On an idle HTTP/1.1 keep-alive connection
    /// this is also the idle timeout.
    #[arg(long, default_value_t = Seconds(Duration::from_secs(30)), value_name = "SECONDS")]
    pub request_timeout: Seconds,

    #[command(flatten)]
    pub job_limits: ceilings::JobLimitArgs,
}

const DAY: Duration = Duration::from_secs(24 * 60 * 60);
const EXPIRY_WARNING_DAYS: i64 = 30;

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

/// What a running server can be asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    /// SIGHUP: load the certificates, CRL and policy again.
    Reload,
    /// SIGINT or SIGTERM: kill every job and stop.
    Stop,
}

/// How a server runs: as `rcmd serve` (the process's signals, a guard
/// process) or in another program, such as a test
/// ([`crate::testing::TestServer`]: a channel, the process's signals left
/// alone, no guard, no isolated jobs).
pub(crate) struct Embedding {
    /// Reload and stop requests; a closed channel stops the server too.
    pub controls: mpsc::Receiver<Control>,
    /// Called with the address once the server listens.
    pub listening: Option<Box<dyn FnOnce(SocketAddr) + Send>>,
    /// Whether this process is the rcmd binary, which can run as the guard
    /// (`rcmd __guard`, which kills the jobs of a server killed with
    /// SIGKILL) and as an isolated job's process 1 (`rcmd __init`). Another
    /// program cannot, so it gets neither.
    pub own_exe: bool,
}

/// The process's SIGINT, SIGTERM and SIGHUP as [`Control`]s.
fn signal_controls() -> std::io::Result<mpsc::Receiver<Control>> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let (sender, controls) = mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            let control = tokio::select! {
                _ = interrupt.recv() => Control::Stop,
                _ = terminate.recv() => Control::Stop,
                _ = hangup.recv() => Control::Reload,
            };
            if sender.send(control).await.is_err() {
                return;
            }
        }
    });
    Ok(controls)
}

/// Runs the server until it is told to stop.
pub(crate) async fn run(args: ServeArgs, mut embedding: Embedding) -> anyhow::Result<()> {
    if args.dev && !args.listen.ip().is_loopback() {
        anyhow::bail!("--dev listens on loopback only; drop --dev to listen on {}", args.listen);
    }
    if let Some(addr) = args.metrics_listen {
        metrics::check_listen(addr, args.metrics_public)?;
    }
    if args.dev && !pki::has_ca(&args.certs) {
        pki::init(&pki::InitOptions::new(&args.certs))?;
        println!("created a new PKI in {}", args.certs.display());
    }
    let (config, _, mut identity) = load_tls(&args.certs).map_err(|e| {
        anyhow::anyhow!(
            "{} (create one with `rcmd pki init --dir {}`)",
            crate::one_line(&e),
            args.certs.display()
        )
    })?;
    identity.warn_if_expiring();
    let tls = RustlsConfig::from_config(config);
    let policy = load_policy(&args)?.unwrap_or_else(Policy::open);
    warnings::check(&args.certs, &policy);
    if args.max_response_buffer < budget::MIN_BUDGET {
        anyhow::bail!("--max-response-buffer must be at least {} bytes", budget::MIN_BUDGET);
    }

    let data_dir = match &args.data_dir {
        Some(dir) => dir.clone(),
        None if args.dev => args.certs.join("data"),
        None => default_data_dir()?,
    };
    let store = Store::open(&data_dir, args.max_disk)?;
    // Cgroups before any child process, the guard included: on a delegated
    // cgroup v2 host the server may move itself into a leaf group so that
    // its own group, left without processes, can pass controllers to jobs.
    // A child started earlier would stay behind in that group and keep it
    // from doing so; started later, it is born in the leaf.
    let cgroups = detect_cgroups(&data_dir);
    let folders = cgroups.as_ref().map(|c| c.folders()).unwrap_or_default();
    let guard = match embedding.own_exe {
        true => Some(Arc::new(
            guard::Guard::start(&std::env::current_exe()?, &folders)
                .context("cannot start the guard process")?,
        )),
        false => None,
    };
    let mut child_exits = guard.as_ref().map(|_| signal(SignalKind::child())).transpose()?;
    let ceilings = args.job_limits.ceilings();
    enforceable("--job-*", &ceilings.limits(), cgroups.as_deref())?;
    policy_enforceable(&policy, cgroups.as_deref())?;
    let metrics = args.metrics_listen.map(|_| Arc::new(metrics::Metrics::new()));
    let template = PoolConfig {
        // Isolated jobs run this very binary as their process 1: the path of
        // the running file, even if it was replaced on disk since.
        isolate_init: embedding.own_exe.then(|| PathBuf::from("/proc/self/exe")),
        observer: metrics.clone().map(|m| m as Arc<dyn jobs::JobObserver>),
        ..pool_template(&args, &store, guard.as_ref(), cgroups.clone())
    };
    tracing::info!(
        data_dir = %data_dir.display(),
        output_stored = store.disk_used(),
        max_disk = store.max_disk(),
        max_stored_per_client = template.max_stored_bytes,
        retain_secs = args.retain.as_secs(),
        "job records and output"
    );
    let state = Arc::new(routes::AppState {
        pools: pools::Pools::new(Arc::clone(&store), template),
        policy: CurrentPolicy::new(policy),
        metrics,
        ceilings,
    });
    let retention =
        (!args.retain.is_zero()).then(|| tokio::spawn(retention::run(Arc::clone(&state), args.retain)));

    let handle = Handle::new();
    let request_timeout = args.request_timeout.0;
    let registry = registry::Registry::new(args.max_connections, args.max_client_connections);
    let budget = budget::ResponseBudget::new(args.max_response_buffer, registry.clone(), args.send_timeout.0);
    let handshake_timeout = args.handshake_timeout.0;
    let tls_acceptor = RustlsAcceptor::new(tls.clone()).handshake_timeout(handshake_timeout).acceptor(
        limit::PreAuthLimit::new(args.max_handshakes, args.max_handshakes_per_source, handshake_timeout),
    );
    let acceptor = accept::Acceptor::new(tls_acceptor, registry.clone(), budget)
        .idle_timeout(args.idle_timeout.0)
        .request_timeout(request_timeout);
    let refusals = Arc::new(refusals::RefusalLog::new());
    let log_refusal = Arc::clone(&refusals);
    let mut server = axum_server::bind(args.listen)
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
        .max_concurrent_streams(args.max_streams)
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20));
    let server =
        server.serve(routes::router(Arc::clone(&state)).into_make_service_with_connect_info::<SocketAddr>());
    let server = tokio::spawn(server);
    let Some(addr) = handle.listening().await else {
        return match server.await {
            Ok(Err(e)) => Err(anyhow::anyhow!("cannot listen on {}: {e}", args.listen)),
            _ => Err(anyhow::anyhow!("cannot listen on {}", args.listen)),
        };
    };
    println!("rcmd listening on {addr} (job records and output in {})", data_dir.display());
    if let Some(listening) = embedding.listening.take() {
        listening(addr);
    }
    if let Some(metrics_addr) = args.metrics_listen {
        let listener = tokio::net::TcpListener::bind(metrics_addr)
            .await
            .with_context(|| format!("cannot listen on {metrics_addr} for metrics"))?;
        println!("rcmd metrics on http://{}/metrics", listener.local_addr()?);
        metrics::spawn_endpoint(listener, Arc::clone(&state))?;
    }
    if args.dev {
        // The exact command: this very binary, as it was invoked.
        let exe = std::env::args().next().unwrap_or_else(|| "rcmd".to_owned());
        println!("try: {exe} {} {addr} run echo hello", args.certs.display());
    }

    // Until SIGINT or SIGTERM: SIGHUP reloads the certificates and the
    // policy, and once a day the expiry dates are checked.
    let mut daily = tokio::time::interval_at(tokio::time::Instant::now() + DAY, DAY);
    let mut refusal_window = tokio::time::interval(refusals::WINDOW);
    loop {
        let child_exit = async {
            match &mut child_exits {
                Some(exits) => exits.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            control = embedding.controls.recv() => match control {
                Some(Control::Reload) => {
                    reload(&args, &tls, &mut identity, &state.policy, &registry, cgroups.as_deref());
                }
                Some(Control::Stop) | None => break,
            },
            _ = daily.tick() => identity.warn_if_expiring(),
            _ = refusal_window.tick() => refusals.tick(),
            _ = child_exit => guard.iter().for_each(|guard| guard.check()),
        }
    }
    tracing::info!("shutting down: killing every job");
    handle.graceful_shutdown(Some(SHUTDOWN_GRACE));
    if let Some(retention) = retention {
        retention.abort();
    }
    for pool in state.pools.all() {
        pool.shutdown().await;
    }
    let _ = tokio::time::timeout(SHUTDOWN_GRACE * 2, server).await;
    store.close();
    Ok(())
}

/// Finds the host's cgroups and logs in one line what jobs get here.
fn detect_cgroups(data_dir: &Path) -> Option<Arc<jobs::Cgroups>> {
    match jobs::Cgroups::detect(data_dir) {
        Ok(cgroups) => {
            tracing::info!("cgroups: {cgroups}");
            Some(Arc::new(cgroups))
        }
        Err(e) => {
            tracing::warn!(
                "no cgroups ({e}): each job is a process group only, which a process can leave, and jobs that ask for limits are refused"
            );
            None
        }
    }
}

/// Refuses ceilings (`what`: where they are set) that this host cannot
/// enforce: every job would get them, and they would not hold.
fn enforceable(what: &str, limits: &jobs::Limits, cgroups: Option<&jobs::Cgroups>) -> anyhow::Result<()> {
    match cgroups {
        Some(cgroups) => cgroups.check(limits).map_err(|e| anyhow::anyhow!("{what}: {e}")),
        None if *limits != jobs::Limits::default() => {
            anyhow::bail!(
                "{what}: limits need cgroups, which this server does not have (see the log line above); drop them"
            )
        }
        None => Ok(()),
    }
}

/// Refuses a policy whose ceilings this host cannot enforce, as
/// [`enforceable`] refuses `--job-*`.
fn policy_enforceable(policy: &Policy, cgroups: Option<&jobs::Cgroups>) -> anyhow::Result<()> {
    let file = policy.path().map(|path| path.display().to_string()).unwrap_or_default();
    for (client, limits) in policy.ceilings() {
        enforceable(&format!("policy {file}: [clients.{client}]"), limits, cgroups)?;
    }
    Ok(())
}

/// The limits every client's pool gets, its cgroups, and (without cgroups)
/// the guard that hears of every job's process group.
fn pool_template(
    args: &ServeArgs,
    store: &Store,
    guard: Option<&Arc<guard::Guard>>,
    cgroups: Option<Arc<jobs::Cgroups>>,
) -> PoolConfig {
    let containment = match (cgroups, guard) {
        (Some(cgroups), _) => jobs::Containment::Cgroups(cgroups),
        (None, Some(guard)) => jobs::Containment::Guard(Arc::clone(guard) as Arc<dyn jobs::GroupWatcher>),
        (None, None) => jobs::Containment::None,
    };
    PoolConfig {
        data_dir: store.path().to_owned(),
        output_limit: args.max_output,
        stop_grace: args.stop_grace.0,
        max_running: args.max_running,
        max_jobs: args.max_jobs,
        max_stored_bytes: args.max_stored.unwrap_or((store.max_disk() / 4).min(16 << 30)),
        containment,
        observer: None,
        isolate_init: None,
        start_limit: jobs::StartLimit::default(),
    }
}

/// The policy file, if the server has one.
fn load_policy(args: &ServeArgs) -> anyhow::Result<Option<Policy>> {
    args.policy.as_deref().map(|path| Policy::load(path, ServerUser::current())).transpose()
}

/// SIGHUP: load the cert directory and the policy again, all or nothing:
/// if any part fails to load, nothing changes. New connections use the new
/// certificates; every request from now on is judged by the new policy; open
/// connections whose certificate the new CA and CRL refuse (revoked, expired)
/// or whose client the new policy drops are closed; running jobs are
/// untouched.
fn reload(
    args: &ServeArgs,
    tls: &RustlsConfig,
    identity: &mut Identity,
    policy: &CurrentPolicy,
    registry: &registry::Registry,
    cgroups: Option<&jobs::Cgroups>,
) {
    let loaded = load_tls(&args.certs).and_then(|tls| {
        let next = load_policy(args)?;
        next.as_ref().map(|next| policy_enforceable(next, cgroups)).transpose()?;
        Ok((tls, next))
    });
    match loaded {
        Ok(((config, trust, reloaded), next)) => {
            tls.reload_from_config(config);
            *identity = reloaded;
            registry.close_where("its certificate is revoked or no longer trusted", |peer| {
                !trust.accepts(&peer.chain)
            });
            if let Some(next) = next {
                let previous = policy.replace(next);
                close_connections_of(&previous.dropped_by(&policy.get()), registry);
            }
            warnings::check(&args.certs, &policy.get());
            tracing::info!(server_serial = %identity.server.serial, "reloaded the certificates, key, CA, CRL and policy; new connections use them");
        }
        Err(e) => {
            tracing::error!(error = %crate::one_line(&e), "reload failed; still using the previous certificates and policy")
        }
    }
}

/// Cuts off clients that a reloaded policy no longer lets in: their open
/// connections are closed, and each of their requests from now on gets 403.
fn close_connections_of(dropped: &[pki::ClientName], registry: &registry::Registry) {
    if !dropped.is_empty() {
        let names: Vec<&str> = dropped.iter().map(pki::ClientName::as_str).collect();
        tracing::info!(clients = ?names, "the policy no longer lets these clients in: their requests get 403 from now on");
        registry
            .close_where("the policy no longer lets its client in", |peer| names.contains(&peer.cn.as_str()));
    }
}

/// Where state lives when no --data-dir is given: never in a folder others
/// can write to, such as /tmp.
fn default_data_dir() -> anyhow::Result<PathBuf> {
    if nix::unistd::geteuid().is_root() {
        return Ok(PathBuf::from("/var/lib/rcmd"));
    }
    let absolute = |var: &str| std::env::var_os(var).map(PathBuf::from).filter(|p| p.is_absolute());
    if let Some(state) = absolute("XDG_STATE_HOME") {
        return Ok(state.join("rcmd"));
    }
    match absolute("HOME") {
        Some(home) => Ok(home.join(".local/state/rcmd")),
        None => anyhow::bail!("no HOME to keep job records in: give a directory with --data-dir"),
    }
}

/// Every live job costs descriptors (two pipes, a pidfd, two spool files).
fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// The dates the server watches: its own certificate's and the CA's.
struct Identity {
    server: pki::CertInfo,
    ca: pki::CertInfo,
}

impl Identity {
    /// Logs a warning for each that expires within 30 days.
    fn warn_if_expiring(&self) {
        let now = time::OffsetDateTime::now_utc();
        for (what, info) in [("server certificate", &self.server), ("CA certificate", &self.ca)] {
            let days = info.days_left(now);
            if days < EXPIRY_WARNING_DAYS {
                tracing::warn!(days_left = days, not_after = %pki::format_time(info.not_after), "the {what} expires soon: renew it (`rcmd pki renew server`, then kill -HUP)");
            }
        }
    }
}

/// Loads the cert directory and builds the TLS configuration from it.
fn load_tls(certs: &Path) -> anyhow::Result<(Arc<rustls::ServerConfig>, tls::ClientTrust, Identity)> {
    let files = pki::load_server(certs)?;
    let identity = Identity { server: files.identity.info.clone(), ca: files.ca.clone() };
    let (config, trust) = tls::server_config(files)?;
    Ok((config, trust, identity))
}

fn rfc3339(t: SystemTime) -> String {
    pki::format_time(t.into())
}

/// A job's status as the API shows it.
pub(crate) fn status_body(s: &jobs::JobStatus) -> wire::JobStatus {
    let (status, exit_code, signal, error_msg) = match s.status() {
        jobs::Status::Running => (wire::State::Running, None, None, None),
        jobs::Status::Error(message) => (wire::State::Error, None, None, Some(message)),
        jobs::Status::Completed(jobs::Termination::Exited(code)) => {
            (wire::State::Completed, Some(code), None, None)
        }
        jobs::Status::Completed(jobs::Termination::Signaled(sig)) => {
            (wire::State::Completed, None, Some(sig), None)
        }
    };
    wire::JobStatus {
        status,
        exit_code,
        error_msg,
        signal,
        id: s.id.0,
        cmd: s.command.clone(),
        args: s.args.clone(),
        pid: s.pid(),
        started_at: rfc3339(s.started_at),
        finished_at: s.finished_at().map(rfc3339),
        truncated: s.truncated,
        truncated_reason: s.truncated_reason.clone(),
        output_error: s.output_error.clone(),
        client: None,
        limits: ceilings::to_wire(&s.limits),
        oom_killed: s.oom_killed(),
        usage: wire::Usage { cpu_ms: s.usage().cpu_ms, memory_peak: s.usage().memory_peak },
        lost: s.lost(),
    }
}
