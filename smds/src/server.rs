//! Starting and stopping a whole SM-DS: store, TLS, listeners. Used by `smds serve` and by the
//! end-to-end tests, which run real servers on loopback ports.

use crate::auth::{SessionKeyError, SessionKeys};
use crate::config::Config;
use crate::es11::Es11;
use crate::pki::ServerPki;
use crate::revocation::{CrlDirError, Revocation};
use crate::store::{Backend, PgStore, RedbStore, StoreError, WriterConfig};
use crate::transport::tls::{self, Clock, Sgp22ClientVerifier, TlsConfigError};
use crate::transport::{AppState, admin, listener};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("ES11 session key: {0}")]
    SessionKey(#[from] SessionKeyError),
    #[error("{}: {source}", path.display())]
    Tls {
        path: std::path::PathBuf,
        source: TlsConfigError,
    },
    #[error("{0}")]
    Crl(#[from] CrlDirError),
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

/// Reloads a running server: the CRLs.
#[derive(Clone)]
pub struct Reloader {
    revocation: Arc<Revocation>,
}

impl Reloader {
    pub async fn reload(&self) {
        let r = self.revocation.clone();
        let _ = tokio::task::spawn_blocking(move || r.reload()).await;
    }
}

/// A running SM-DS.
pub struct Server {
    pub addr: SocketAddr,
    pub admin_addr: Option<SocketAddr>,
    pub state: Arc<AppState>,
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

impl Server {
    /// Checks the settings, builds TLS, binds the listeners, opens the store and starts serving. `clock` replaces the system time
    /// for client-certificate validity (tests use it for expired certificates).
    pub async fn start(
        cfg: &Config,
        pki: &ServerPki,
        clock: Option<Clock>,
    ) -> Result<Server, StartError> {
        let admin_token = admin_token(cfg)?;
        let sessions =
            SessionKeys::load_or_create(&cfg.session_key_path(), cfg.limits.session_lifetime())?;
        let (crl_dir, required) = cfg.crl_dir(&pki.root);
        let (revocation, _) =
            Revocation::load(Some(crl_dir), required, cfg.strict_crl, pki.cis.clone())?;
        let revocation = Arc::new(revocation);
        let verifier = Arc::new(Sgp22ClientVerifier::new(
            pki.cis.clone(),
            clock.clone(),
            revocation.clone(),
        ));
        let tls = tls::server_config(
            &pki.ds_tls.cert,
            &pki.ds_tls.chain,
            &pki.ds_tls.key,
            verifier.clone(),
        )
        .map_err(|source| StartError::Tls {
            path: pki.ds_tls.path.clone(),
            source,
        })?;
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
        // The store is opened last: a start that fails on its settings or ports leaves the
        // database untouched and closed.
        let store = open_store(cfg).await?;
        let hostname = cfg
            .hostname
            .clone()
            .or_else(|| pki.tls_hostname.clone())
            .unwrap_or_else(|| "localhost".into());
        let es11 = Es11::new(
            hostname,
            pki.cis.clone(),
            &pki.ds_auth,
            sessions,
            revocation.clone(),
        );
        let state = Arc::new(AppState::new(
            store.clone(),
            es11,
            verifier,
            cfg.limits.clone(),
            clock,
        ));
        let (stop, rx) = watch::channel(false);
        if let Some(every) = cfg.crl_poll {
            tokio::spawn(watch_crls(revocation, every, rx.clone()));
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
            store.shutdown().await;
        });
        Ok(Server {
            addr,
            admin_addr,
            state,
            stop,
            task,
        })
    }

    /// Reads what may change while the server runs again (what SIGHUP does); see [`Reloader`].
    pub async fn reload(&self) {
        self.reloader().reload().await;
    }

    /// A handle that reloads this server, for a signal handler.
    pub fn reloader(&self) -> Reloader {
        Reloader {
            revocation: self.state.es11.revocation.clone(),
        }
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
