//! Builds the application: store, schema check, both listeners. `Application::build` binds
//! (port 0 allowed) and reports the ports it got; `mediagate serve` runs it, and the end-to-end
//! tests run that binary.

use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::time::Duration;

use std::sync::Arc;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use anyhow::Context;

use crate::admin_tokens::AdminTokens;
use crate::audit::{Audit, AuditWriter};
use crate::links::LinkKeys;
use crate::metrics::Metrics;
use crate::sessions::Sources;

use crate::config::{AuthListen, Settings, parse_owner, redact_url};
use crate::policy::Policy;
use crate::routes::{admin, auth, health};
use crate::state::{Schema, Shared};
use crate::storage::Storage;
use crate::store;

/// How often the embedded store drops expired sessions.
const PURGE_EVERY: Duration = Duration::from_secs(3600);
/// How often expired direct uploads are swept, at most: more often when they expire sooner.
const DIRECT_SWEEP_EVERY: Duration = Duration::from_secs(60);
/// How often an unready process re-checks the store and its schema.
const RECHECK_EVERY: Duration = Duration::from_secs(1);
/// Longer than nginx's upstream `keepalive_timeout` (50 s in the snippet), so nginx closes
/// idle connections first and never reuses one that mediagate is closing.
const KEEP_ALIVE: Duration = Duration::from_secs(75);

/// Options that are not configuration (command-line switches).
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Apply pending migrations at start (`serve --migrate`).
    pub migrate: bool,
}

/// The built service: both listeners bound, not yet running.
pub struct Application {
    auth_port: u16,
    admin_port: u16,
    auth_server: Server,
    admin_server: Server,
    shared: web::Data<Shared>,
    audit_writer: AuditWriter,
    admin_tokens: Arc<AdminTokens>,
    /// How often expired direct uploads are swept.
    direct_sweep: Duration,
}

impl Application {
    /// Validates what the configuration alone decides, opens the store, checks its schema, and binds both listeners; nothing runs until [`Application::run_until_stopped`].
    pub async fn build(settings: Settings, options: BuildOptions) -> anyhow::Result<Self> {
        // Everything the configuration alone decides comes first, so that a bad value stops
        // start-up before anything is created on disk or in the store.
        let timeout = Duration::from_millis(settings.store.timeout_ms);
        let tokens = Arc::new(AdminTokens::load(&settings.admin).map_err(anyhow::Error::msg)?);
        let sources = Sources::build(
            &settings.session.sources,
            &settings.session.cookie,
            &settings.store.url,
            timeout,
        )?;
        let storage = Storage::open(&settings.storage).context("storage.url")?;
        storage
            .prepare()
            .with_context(|| format!("storage.root: cannot create {}", storage.describe()))?;
        sweep_uploads(&storage).await;
        let cache = settings.store.cache.then(|| store::redis::conn::Cache {
            max_age: Duration::from_millis(settings.store.cache_max_age_ms),
            staleness: Duration::from_millis(settings.store.cache_staleness_ms),
            entries: std::num::NonZeroUsize::new(settings.store.cache_entries)
                .unwrap_or(std::num::NonZeroUsize::MIN),
        });
        let store = store::open_cached(&settings.store.url, &settings.store.prefix, timeout, cache)
            .await
            .with_context(|| {
                format!("store.url: cannot open {}", redact_url(&settings.store.url))
            })?;
        let metrics = Arc::new(Metrics::new().context("cannot register metrics")?);
        let (audit, audit_writer) =
            Audit::start(Arc::clone(&store), Arc::clone(&metrics), &settings.audit);
        let shared = web::Data::new(Shared {
            store,
            schema: Default::default(),
            draining: Default::default(),
            auto_migrate: options.migrate,
            metrics,
            audit,
            storage,
        });
        let links = LinkKeys::new(
            settings.links.secret.clone(),
            settings.links.old_secrets.clone(),
        );
        match shared.reconcile_schema().await {
            Ok(Schema::Current) => {}
            Ok(Schema::Old) => tracing::warn!(
                "Store schema is older than this binary needs; unready until `mediagate migrate` runs."
            ),
            Ok(s) => {
                tracing::error!(schema = ?s, "Store schema is newer than this binary; refusing to serve.")
            }
            Err(e) => {
                tracing::warn!(error = %e, "Store unreachable at start; unready until it answers.")
            }
        }
        if tokens.is_empty() {
            tracing::warn!(
                "No admin.token or admin.token_file set: the admin API refuses every call."
            );
        }
        let auth_config = web::Data::new(auth::AuthConfig {
            media_prefix: settings.media.prefix.clone(),
            sources,
            policy: Policy {
                read_all_roles: settings.policy.read_all_roles.clone(),
            },
            timeout,
            links: links.clone(),
            decision_cache_secs: settings.nginx.decision_cache_secs,
        });
        let admin_config = web::Data::new(admin::AdminConfig {
            tokens: Arc::clone(&tokens),
            media_prefix: settings.media.prefix.clone(),
            max_upload_bytes: settings.upload.max_bytes,
            allowed_types: settings.upload.allowed_types.clone(),
            max_session_ttl: settings.session.max_ttl_secs,
            links,
            max_link_ttl: settings.links.max_ttl_secs,
            direct_upload_secs: settings.storage.s3.upload_secs,
        });

        let shutdown = settings.server.shutdown_timeout_secs;
        let auth_listener = bind_auth(&settings.server)?;
        let admin_listener =
            TcpListener::bind(settings.server.admin_listen).with_context(|| {
                format!(
                    "server.admin_listen: cannot bind {}",
                    settings.server.admin_listen
                )
            })?;
        let auth_port = match &auth_listener {
            AuthListener::Tcp(l) => l.local_addr()?.port(),
            AuthListener::Unix(_) => 0,
        };
        let admin_port = admin_listener.local_addr()?.port();

        let (s, c) = (shared.clone(), auth_config.clone());
        let mut auth_server =
            HttpServer::new(move || App::new().configure(auth::configure(s.clone(), c.clone())))
                .keep_alive(KEEP_ALIVE)
                .disable_signals()
                .shutdown_timeout(shutdown);
        if settings.server.workers > 0 {
            auth_server = auth_server.workers(settings.server.workers);
        }
        let auth_server = match auth_listener {
            AuthListener::Tcp(l) => auth_server.listen(l)?,
            AuthListener::Unix(l) => auth_server.listen_uds(l)?,
        }
        .run();

        let (s, c) = (shared.clone(), admin_config.clone());
        let admin_server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(admin::count_calls))
                .app_data(s.clone())
                .app_data(c.clone())
                .configure(health::configure)
                .configure(admin::configure)
        })
        .workers(2)
        .disable_signals()
        .shutdown_timeout(shutdown)
        .listen(admin_listener)?
        .run();

        Ok(Self {
            auth_port,
            admin_port,
            auth_server,
            admin_server,
            shared,
            audit_writer,
            admin_tokens: tokens,
            direct_sweep: DIRECT_SWEEP_EVERY
                .min(Duration::from_secs(settings.storage.s3.upload_secs)),
        })
    }

    /// The auth listener's port (the one asked for, or the one the OS gave for 0); 0 on a unix
    /// socket.
    pub fn auth_port(&self) -> u16 {
        self.auth_port
    }

    /// The admin listener's port.
    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    /// Runs until both listeners stop: on SIGTERM or SIGINT, readiness turns 503 and both
    /// listeners drain in-flight requests (up to `server.shutdown_timeout_secs`).
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let handles = [self.auth_server.handle(), self.admin_server.handle()];
        let background = tokio::spawn(maintain(self.shared.clone(), self.direct_sweep));
        let signals = tokio::spawn(stop_on_signal(self.shared.clone(), handles));
        let hangups = tokio::spawn(reload_on_hangup(self.admin_tokens));
        let result = tokio::try_join!(self.auth_server, self.admin_server);
        background.abort();
        signals.abort();
        hangups.abort();
        // The listeners are drained: write what the audit log still holds.
        self.shared.audit.close();
        self.audit_writer.finish(Duration::from_secs(5)).await;
        result.map(|_| ()).context("a listener failed")
    }
}

async fn stop_on_signal(shared: web::Data<Shared>, handles: [ServerHandle; 2]) {
    if wait_for_signal().await.is_err() {
        tracing::error!("Cannot listen for signals; stop with the admin of your process manager.");
        return;
    }
    tracing::info!("Signal received; draining in-flight requests.");
    shared.draining.store(true, Ordering::Release);
    for h in &handles {
        h.stop(true).await;
    }
}

/// Re-reads `admin.token_file` on every SIGHUP, so that a leaked admin token can be revoked
/// without a restart.
#[cfg(unix)]
async fn reload_on_hangup(tokens: Arc<AdminTokens>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        tracing::error!("Cannot listen for SIGHUP; admin.token_file is read at start only.");
        return;
    };
    while hangup.recv().await.is_some() {
        match tokens.reload() {
            Ok(n) => tracing::info!(tokens = n, "SIGHUP: admin tokens read again."),
            Err(e) => tracing::error!(error = %e, "SIGHUP: admin tokens kept as they were."),
        }
    }
}

#[cfg(not(unix))]
async fn reload_on_hangup(_tokens: Arc<AdminTokens>) {}

#[cfg(unix)]
async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

#[cfg(not(unix))]
async fn wait_for_signal() -> std::io::Result<()> {
    tokio::signal::ctrl_c().await
}

/// Removes what uploads cut off by a crash left in the storage root's `.incoming`.
async fn sweep_uploads(storage: &Storage) {
    match storage.sweep_incoming().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(files = n, "Removed temporary files of interrupted uploads."),
        Err(e) => tracing::warn!(error = %e, "Could not sweep the storage root's .incoming."),
    }
}

/// Ends the direct uploads that expired without being completed, their objects with them.
/// Every replica sweeps; `take_upload` lets one of them have each upload.
async fn sweep_direct_uploads(shared: &Shared) {
    let Some(bucket) = shared.storage.bucket() else {
        return;
    };
    let expired = match shared.store.expired_uploads(crate::clock::now(), 100).await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::warn!(error = %e, "Could not list expired direct uploads.");
            return;
        }
    };
    for id in expired {
        match shared.store.take_upload(&id).await {
            Ok(Some(_)) => match bucket.remove_staged(&id).await {
                Ok(()) => tracing::info!(upload = %id, "Removed an expired direct upload."),
                Err(e) => {
                    tracing::error!(error = %e, upload = %id, "Could not remove the object of an expired direct upload; remove it by hand (under the bucket's .incoming/).")
                }
            },
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "Could not end an expired direct upload."),
        }
    }
}

/// Background upkeep: re-checks an unready store every second; each minute, sweeps expired
/// direct uploads; hourly, purges expired sessions and sweeps interrupted local uploads.
async fn maintain(shared: web::Data<Shared>, direct_sweep: Duration) {
    let mut last_purge = tokio::time::Instant::now();
    let mut last_direct = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(RECHECK_EVERY).await;
        if !shared.schema.is_current() {
            let _ = shared.reconcile_schema().await;
        }
        if last_direct.elapsed() >= direct_sweep && shared.schema.is_current() {
            last_direct = tokio::time::Instant::now();
            sweep_direct_uploads(&shared).await;
        }
        if last_purge.elapsed() >= PURGE_EVERY {
            last_purge = tokio::time::Instant::now();
            match shared.store.purge_expired(crate::clock::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(sessions = n, "Purged expired sessions."),
                Err(e) => tracing::warn!(error = %e, "Could not purge expired sessions."),
            }
            sweep_uploads(&shared.storage).await;
        }
    }
}

/// The auth listener's socket, bound before anything serves on it.
enum AuthListener {
    Tcp(TcpListener),
    Unix(std::os::unix::net::UnixListener),
}

fn bind_auth(server: &crate::config::ServerSettings) -> anyhow::Result<AuthListener> {
    let context = || format!("server.auth_listen: cannot bind {}", server.auth_listen);
    Ok(match &server.auth_listen {
        AuthListen::Tcp(addr) => AuthListener::Tcp(TcpListener::bind(addr).with_context(context)?),
        AuthListen::Unix(path) => {
            let owner = match server.auth_socket_owner.as_deref().map(parse_owner) {
                Some(Ok(owner)) => Some(owner),
                Some(Err(e)) => anyhow::bail!("server.auth_socket_owner: {e}"),
                None => None,
            };
            AuthListener::Unix(
                crate::socket::bind(path, server.auth_socket_mode, owner).with_context(context)?,
            )
        }
    })
}
