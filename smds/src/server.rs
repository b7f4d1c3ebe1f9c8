//! Starting and stopping a whole SM-DS: store, TLS, listeners. Used by `smds serve` and by the
//! end-to-end tests, which run real servers on loopback ports.

use crate::auth::{SessionKeyError, SessionKeys};
use crate::cascade::Cascade;
use crate::config::Config;
use crate::es11::Es11;
use crate::pki::ServerPki;
use crate::revocation::{CrlDirError, Revocation};
use crate::store::retention::{self, PurgeFilter};
use crate::store::{Backend, PgStore, RedbStore, StoreError, WriterConfig};
use crate::transport::tls::{self, Clock, ServerCertificate, Sgp22ClientVerifier, TlsConfigError};
use crate::transport::{AppState, admin, listener};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Cascade(String),
    #[error("ES11 session key: {0}")]
    SessionKey(#[from] SessionKeyError),
    #[error("{}: {source}", path.display())]
    Tls {
        path: std::path::PathBuf,
        source: TlsConfigError,
    },
    #[error("{0}")]
    Crl(#[from] CrlDirError),
    #[error("{0}")]
    Push(#[from] crate::push::PushConfigError),
    #[error("rsp3_pki: {0}")]
    Rsp3Pki(crate::pki::PkiError),
    #[error(
        "admin_listen {0} is not a loopback address: the admin listener shows every EID and owner; set admin_allow_remote = true and admin_token_file to expose it"
    )]
    AdminExposed(SocketAddr),
    #[error("{}: {why}", path.display())]
    AdminToken {
        path: std::path::PathBuf,
        why: String,
    },
    #[error("cannot listen on {addr}{}: {source}", if *.admin { " (admin)" } else { "" })]
    Listen {
        addr: SocketAddr,
        admin: bool,
        source: std::io::Error,
    },
}

/// The admin listener's bearer token, when one is configured; refuses a non-loopback admin
/// address without `admin_allow_remote` and a token.
fn admin_token(cfg: &Config) -> Result<Option<admin::Token>, StartError> {
    let token = match &cfg.admin_token_file {
        None => None,
        Some(path) => {
            let bad = |why: String| StartError::AdminToken {
                path: path.clone(),
                why,
            };
            let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
            Some(admin::Token::new(text.trim()).map_err(|e| bad(e.to_string()))?)
        }
    };
    if let Some(a) = cfg.admin_listen
        && !a.ip().is_loopback()
        && !(cfg.admin_allow_remote && token.is_some())
    {
        return Err(StartError::AdminExposed(a));
    }
    Ok(token)
}

/// The configured event store: PostgreSQL when `store` is set, else redb in the data directory.
pub async fn open_store(cfg: &Config) -> Result<Arc<dyn Backend>, StoreError> {
    let limits = &cfg.limits;
    Ok(match &cfg.store {
        Some(pg) => Arc::new(
            PgStore::connect(
                pg,
                limits.max_events_per_eid,
                limits.max_events_per_eid_all_owners,
            )
            .await?,
        ),
        None => Arc::new(RedbStore::open(
            &cfg.database_path(),
            WriterConfig {
                queue: limits.write_queue,
                cache_bytes: limits.db_cache_mib.max(1) * 1024 * 1024,
                max_events_per_eid: limits.max_events_per_eid,
                max_events_per_eid_all_owners: limits.max_events_per_eid_all_owners,
                ..WriterConfig::default()
            },
        )?),
    })
}

/// Reloads the CRLs when their files change, until the server stops.
async fn watch_crls(revocation: Arc<Revocation>, every: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {
                let r = revocation.clone();
                let _ = tokio::task::spawn_blocking(move || r.reload_if_changed()).await;
            }
            r = stop.changed() => if r.is_err() || *stop.borrow() { break },
        }
    }
}

/// How often the retention period is applied (and once at start).
const RETENTION_EVERY: Duration = Duration::from_secs(600);

/// Removes events older than `ttl`, at start and every [`RETENTION_EVERY`], until the server
/// stops. Each removal is an audit line (see [`crate::store::retention`]).
async fn apply_retention(state: Arc<AppState>, ttl: Duration, mut stop: watch::Receiver<bool>) {
    let ttl_secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
    // Removed events are returned (for the admin's answer): taken in chunks, so that a large
    // backlog is never held in memory at once.
    const CHUNK: usize = 10_000;
    loop {
        let filter = PurgeFilter {
            registered_before: Some(state.now().saturating_sub(ttl_secs)),
            ..PurgeFilter::default()
        };
        let mut total = 0;
        loop {
            match retention::purge(state.store.as_ref(), &filter, CHUNK, "event_ttl_days").await {
                Ok(removed) => {
                    total += removed.len();
                    if removed.len() < CHUNK {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "retention: events could not be removed");
                    break;
                }
            }
        }
        if total > 0 {
            tracing::info!(removed = total, "retention: expired events removed");
        }
        tokio::select! {
            () = tokio::time::sleep(RETENTION_EVERY) => {}
            r = stop.changed() => if r.is_err() || *stop.borrow() { break },
        }
    }
}

/// Reloads a running server (SIGHUP): the CRLs, and the server's credentials from its PKI
/// directory (CERT.DS.TLS for new handshakes, CERT.DSauth and the trusted CIs for new ES11
/// requests), validated as at start. Open connections and requests in flight keep what they
/// started with; credentials that do not validate are refused and the running ones stay.
#[derive(Clone)]
pub struct Reloader {
    revocation: Arc<Revocation>,
    /// Weak: a reloader left in a signal handler does not keep a stopped server's state alive.
    state: std::sync::Weak<AppState>,
    certificate: Arc<ServerCertificate>,
    pki_root: PathBuf,
    pki_instance: Option<String>,
    rsp3_pki: Option<PathBuf>,
    hostname: String,
    sessions: Arc<SessionKeys>,
}

/// Loads the `rsp3_pki` hierarchy (as the main one: validated, key matched) and makes its
/// CERT.DS.TLS chain the one `certificate` presents for `rsp3-<hostname>`; returns it (ES11 also
/// trusts its CIs and signs with its CERT.DSauth, see [`es11_trust`]).
fn load_rsp3(
    certificate: &ServerCertificate,
    dir: &std::path::Path,
    instance: Option<&str>,
    hostname: &str,
    now: i64,
) -> Result<ServerPki, StartError> {
    let pki = ServerPki::load_instance(dir, now, instance).map_err(StartError::Rsp3Pki)?;
    let name = crate::sgp22::rsp3_name(hostname);
    if !pki.ds_tls.cert.subject_alt_names().iter().any(|n| {
        n.strip_prefix("dns:")
            .is_some_and(|d| d.eq_ignore_ascii_case(&name))
    }) {
        tracing::warn!(file = %pki.ds_tls.path.display(), name = %name, "the rsp3_pki CERT.DS.TLS does not name the rsp3- host; v3 devices will refuse it");
    }
    certificate
        .replace_rsp3(&name, &pki.ds_tls.cert, &pki.ds_tls.chain, &pki.ds_tls.key)
        .map_err(|source| StartError::Tls {
            path: pki.ds_tls.path.clone(),
            source,
        })?;
    Ok(pki)
}

/// What ES11 trusts and signs with: the CIs and CERT.DSauth of `pki`, then those of the
/// `rsp3_pki` hierarchy (a v3 one, whose eUICCs chain through SubCAs to its CI).
fn es11_trust(
    pki: &ServerPki,
    rsp3: Option<&ServerPki>,
) -> (Vec<pki_tool::Certificate>, Vec<crate::pki::Credential>) {
    let all = || std::iter::once(pki).chain(rsp3);
    (
        all().flat_map(|p| p.cis.iter().cloned()).collect(),
        all().flat_map(|p| p.ds_auth.iter().cloned()).collect(),
    )
}

impl Reloader {
    /// Reloads everything; `Err` says why the credentials were kept (the CRLs are reloaded
    /// either way).
    pub async fn reload(&self) -> Result<(), String> {
        let r = self.revocation.clone();
        let _ = tokio::task::spawn_blocking(move || r.reload()).await;
        let Some(state) = self.state.upgrade() else {
            return Err("the server has stopped".into());
        };
        let root = self.pki_root.clone();
        let instance = self.pki_instance.clone();
        let now = state.now();
        let loaded = tokio::task::spawn_blocking(move || {
            ServerPki::load_instance(&root, now, instance.as_deref())
        })
        .await
        .map_err(|e| format!("reload task failed: {e}"))?;
        let pki = match loaded {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "credentials not reloaded; the running ones stay");
                return Err(e.to_string());
            }
        };
        let mut rsp3 = None;
        if let Some(dir) = &self.rsp3_pki {
            let (certificate, dir, instance, hostname) = (
                self.certificate.clone(),
                dir.clone(),
                self.pki_instance.clone(),
                self.hostname.clone(),
            );
            let loaded = tokio::task::spawn_blocking(move || {
                load_rsp3(&certificate, &dir, instance.as_deref(), &hostname, now)
            })
            .await
            .map_err(|e| format!("reload task failed: {e}"))?;
            match loaded {
                Ok(p) => rsp3 = Some(p),
                Err(e) => {
                    tracing::error!(error = %e, "the rsp3- CERT.DS.TLS not reloaded; the running one stays");
                    return Err(e.to_string());
                }
            }
        }
        if let Err(e) =
            self.certificate
                .replace(&pki.ds_tls.cert, &pki.ds_tls.chain, &pki.ds_tls.key)
        {
            tracing::error!(error = %e, "CERT.DS.TLS not reloaded; the running one stays");
            return Err(e.to_string());
        }
        if pki
            .tls_hostname
            .as_deref()
            .is_some_and(|h| h != self.hostname)
        {
            tracing::warn!(hostname = %self.hostname, "the reloaded CERT.DS.TLS names another host; this SM-DS keeps its address");
        }
        state.set_certificates(pki.summaries());
        let push_services = state.es11().push_services.clone();
        let (cis, ds_auth) = es11_trust(&pki, rsp3.as_ref());
        state.replace_es11(
            Es11::new(
                self.hostname.clone(),
                cis,
                &ds_auth,
                self.sessions.clone(),
                self.revocation.clone(),
            )
            .with_push_services(push_services),
        );
        tracing::info!(
            ds_tls_serial = %pki.ds_tls.cert.serial_hex(),
            ds_tls_not_after = %pki_tool::time::format(pki.ds_tls.cert.not_after),
            ds_auth = pki.ds_auth.len(),
            "credentials reloaded"
        );
        Ok(())
    }
}

/// A running SM-DS.
pub struct Server {
    pub addr: SocketAddr,
    pub admin_addr: Option<SocketAddr>,
    pub state: Arc<AppState>,
    reloader: Reloader,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// The listeners of a server not yet started: bound first, so that a port in use fails a start
/// before anything is minted or opened.
pub struct Bound {
    listener: tokio::net::TcpListener,
    admin: Option<tokio::net::TcpListener>,
    pub addr: SocketAddr,
    pub admin_addr: Option<SocketAddr>,
}

impl Bound {
    /// Binds the HTTPS and admin listeners of `cfg` (after checking the admin settings).
    pub async fn bind(cfg: &Config) -> Result<Bound, StartError> {
        admin_token(cfg)?;
        let listen_error = |addr, admin| {
            move |source| StartError::Listen {
                addr,
                admin,
                source,
            }
        };
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .map_err(listen_error(cfg.listen, false))?;
        let addr = listener
            .local_addr()
            .map_err(listen_error(cfg.listen, false))?;
        let admin = match cfg.admin_listen {
            Some(a) => Some(
                tokio::net::TcpListener::bind(a)
                    .await
                    .map_err(listen_error(a, true))?,
            ),
            None => None,
        };
        let admin_addr = admin.as_ref().and_then(|l| l.local_addr().ok());
        Ok(Bound {
            listener,
            admin,
            addr,
            admin_addr,
        })
    }
}

impl Server {
    /// Checks the settings, binds the listeners, builds TLS, opens the store and starts serving.
    /// `clock` replaces the system time for client-certificate validity (tests use it for
    /// expired certificates).
    pub async fn start(
        cfg: &Config,
        pki: &ServerPki,
        clock: Option<Clock>,
    ) -> Result<Server, StartError> {
        let bound = Bound::bind(cfg).await?;
        Server::start_bound(bound, cfg, pki, clock).await
    }

    /// [`Server::start`] on listeners bound already.
    pub async fn start_bound(
        bound: Bound,
        cfg: &Config,
        pki: &ServerPki,
        clock: Option<Clock>,
    ) -> Result<Server, StartError> {
        let Bound {
            listener,
            admin,
            addr,
            admin_addr,
        } = bound;
        let admin_token = admin_token(cfg)?;
        let sessions = Arc::new(SessionKeys::load_or_create(
            &cfg.session_key_path(),
            cfg.limits.session_lifetime(),
        )?);
        let (crl_dir, required) = cfg.crl_dir(&pki.root);
        let (revocation, _) =
            Revocation::load(Some(crl_dir), required, cfg.strict_crl, pki.cis.clone())?;
        let revocation = Arc::new(revocation);
        let verifier = Arc::new(Sgp22ClientVerifier::new(
            pki.cis.clone(),
            clock.clone(),
            revocation.clone(),
        ));
        let tls_error = |source| StartError::Tls {
            path: pki.ds_tls.path.clone(),
            source,
        };
        let certificate = Arc::new(
            ServerCertificate::new(&pki.ds_tls.cert, &pki.ds_tls.chain, &pki.ds_tls.key)
                .map_err(tls_error)?,
        );
        let hostname = cfg
            .hostname
            .clone()
            .or_else(|| pki.tls_hostname.clone())
            .unwrap_or_else(|| "localhost".into());
        let rsp3 = match &cfg.rsp3_pki {
            Some(dir) => {
                let now = clock.as_ref().map_or_else(pki_tool::time::now, |c| c());
                Some(load_rsp3(
                    &certificate,
                    dir,
                    pki.instance.as_deref(),
                    &hostname,
                    now,
                )?)
            }
            None => None,
        };
        let tls = tls::server_config(
            certificate.clone(),
            verifier.clone(),
            cfg.tls13_session_tickets,
        )
        .map_err(tls_error)?;
        // The store is opened last: a start that fails on its settings or ports leaves the
        // database untouched and closed.
        let store = open_store(cfg).await?;
        let (es11_cis, es11_ds_auth) = es11_trust(pki, rsp3.as_ref());
        let es11 = Es11::new(
            hostname.clone(),
            es11_cis,
            &es11_ds_auth,
            sessions.clone(),
            revocation.clone(),
        );
        let cascade = match &cfg.cascade {
            Some(c) => {
                match Cascade::new(c, pki, revocation.clone(), hostname.clone(), store.clone()) {
                    Ok(c) => Some(Arc::new(c)),
                    Err(e) => {
                        store.shutdown().await;
                        return Err(StartError::Cascade(e));
                    }
                }
            }
            None => None,
        };
        let push = match crate::push::Push::new(&cfg.push_services, store.clone(), hostname.clone())
        {
            Ok(p) => Arc::new(p),
            Err(e) => {
                store.shutdown().await;
                return Err(StartError::Push(e));
            }
        };
        let es11 = es11.with_push_services(Arc::new(push.oids()));
        let state = Arc::new(AppState::new(
            store.clone(),
            es11,
            verifier,
            cfg.limits.clone(),
            clock,
            cascade.clone(),
            push.clone(),
        ));
        state.set_certificates(pki.summaries());
        let (stop, rx) = watch::channel(false);
        if let Some(c) = cascade {
            tracing::info!(root = %c.root(), "forwarding to the Root SM-DS (ES15)");
            tokio::spawn(c.run_queue(rx.clone()));
        }
        if !push.oids().is_empty() {
            tracing::info!(
                services = push.oids().len(),
                "push services offered (SGP.22 v3)"
            );
        }
        let mut push_task = tokio::spawn(push.run(rx.clone()));
        if let Some(every) = cfg.crl_poll {
            tokio::spawn(watch_crls(revocation.clone(), every, rx.clone()));
        }
        if let Some(ttl) = cfg.event_ttl {
            tokio::spawn(apply_retention(state.clone(), ttl, rx.clone()));
        }
        let task_state = state.clone();
        let sweeper_state = state.clone();
        let mut sweep_rx = rx.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(30)) => {
                        if let Err(e) = sweeper_state.store.sweep_transactions(pki_tool::time::now()).await {
                            tracing::warn!(error = %e, "used transactions could not be swept");
                        }
                    }
                    r = sweep_rx.changed() => if r.is_err() || *sweep_rx.borrow() { break },
                }
            }
        });
        let task = tokio::spawn(async move {
            let admin_task = admin.map(|l| {
                tokio::spawn(admin::serve_admin(
                    l,
                    task_state.clone(),
                    admin_token,
                    stopped(rx.clone()),
                ))
            });
            listener::serve_tls(
                listener,
                Arc::new(tls),
                task_state,
                stopped(rx),
                Duration::from_secs(15),
            )
            .await;
            if let Some(t) = admin_task {
                let _ = t.await;
            }
            // The delivery task holds the store: let it finish its round (a delivery cut short
            // stays queued, and is sent again after a restart).
            if tokio::time::timeout(Duration::from_secs(2), &mut push_task)
                .await
                .is_err()
            {
                push_task.abort();
                let _ = push_task.await;
            }
            store.shutdown().await;
        });
        let reloader = Reloader {
            revocation: state.revocation.clone(),
            state: Arc::downgrade(&state),
            certificate,
            pki_root: pki.root.clone(),
            pki_instance: pki.instance.clone(),
            rsp3_pki: cfg.rsp3_pki.clone(),
            hostname,
            sessions,
        };
        Ok(Server {
            addr,
            admin_addr,
            state,
            reloader,
            stop,
            task,
        })
    }

    /// Reads what may change while the server runs again (what SIGHUP does); see [`Reloader`].
    pub async fn reload(&self) -> Result<(), String> {
        self.reloader.reload().await
    }

    /// A handle that reloads this server, for a signal handler.
    pub fn reloader(&self) -> Reloader {
        self.reloader.clone()
    }

    /// Stops accepting, drains in-flight requests, flushes the store.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        // Connection tasks and the sweeper let go of the state (and with it the database) just
        // after they finish: wait for that, so that the database is closed when this returns and
        // another server can open it at once.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while Arc::strong_count(&self.state) > 1 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until the server ends (after [`Server::stop`] or a signal handled elsewhere).
    pub fn stopper(&self) -> watch::Sender<bool> {
        self.stop.clone()
    }

    pub async fn wait(self) {
        let _ = self.task.await;
    }
}
