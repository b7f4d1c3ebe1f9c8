//! `smds serve`: the SM-DS on its defaults, a config file and flags.

use clap::Args;
use smds::config::{Config, FileConfig, Flags};
use smds::pki::{self, ServerPki};
use smds::server::{Bound, Server, StartError};
use smds::store::{StoreError, StoreUrl};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct ServeArgs {
    /// TOML configuration file (keys: listen, admin_listen, data_dir, hostname, pki, store,
    /// session_key_file, crl_dir, strict_crl, [limits]; see contrib/smds.example.toml). Relative
    /// paths in it are taken from the file's directory. Flags override the file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address of the HTTPS listener [default: 127.0.0.1:8443].
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Address of the plain-HTTP admin listener (/metrics, /admin/events) [default: 127.0.0.1:8444].
    #[arg(long, value_name = "ADDR")]
    admin_listen: Option<SocketAddr>,
    /// Do not start the admin listener.
    #[arg(long)]
    no_admin: bool,
    /// Directory of the event database (and of the development PKI) [default: ./smds-data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// This SM-DS's host name [default: the DNS name in CERT.DS.TLS].
    #[arg(long, value_name = "HOST")]
    hostname: Option<String>,
    /// A `pki-tool init` directory with the CI(s), DSauth and DStls to use.
    #[arg(long, value_name = "DIR")]
    pki: Option<PathBuf>,
    /// Keep events in PostgreSQL (postgres://user[:password]@host:port/db), shared by every node
    /// pointed at it, instead of the embedded database in the data directory. The schema is
    /// created on first start. Prefer the config key `store` when the URL has a password.
    #[arg(long, value_name = "URL")]
    store: Option<StoreUrl>,
    /// Directory of CRLs to honour: every *.crl (DER or PEM) and every *.pem holding an X509 CRL,
    /// recursively. Read again on SIGHUP and when its files change. [default: <pki>/crl, where
    /// `pki-tool crl` writes them]
    #[arg(long, value_name = "DIR")]
    crl_dir: Option<PathBuf>,
    /// Log format.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

/// Logs to stderr through a writer thread, so that no request waits for a write(2); nothing is
/// dropped (a full queue makes the logging task wait instead). The guard flushes on drop: keep
/// it until the process ends.
fn init_logging(format: &str) -> tracing_appender::non_blocking::WorkerGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal();
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        // The queue's slots are allocated up front: 8192 lines (256 KiB) rather than the
        // default 128,000 (4 MiB of resident memory for a queue that is nearly always empty).
        .buffered_lines_limit(8192)
        .thread_name("smds-log")
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
    guard
}

/// `--data-dir`/`--admin` for the printed `events` hints, when not the defaults.
fn events_options(cfg: &Config) -> String {
    let mut o = String::new();
    if cfg.data_dir != Path::new(smds::config::DEFAULT_DATA_DIR) {
        o.push_str(&format!(" --data-dir {}", cfg.data_dir.display()));
    }
    match cfg.admin_listen {
        Some(a) if a != smds::config::DEFAULT_ADMIN_LISTEN => o.push_str(&format!(" --admin {a}")),
        _ => {}
    }
    if let Some(pg) = &cfg.store {
        o = format!(" --store {}", pg.url);
    }
    o
}

fn print_first_start(pki_dir: &Path, listen: SocketAddr, hostname: &str, cfg: &Config) {
    let p = |rel: &str| pki_dir.join(rel).display().to_string();
    let port = listen.port();
    println!("A development PKI was minted in {}:", pki_dir.display());
    println!(
        "  trusted CI (NIST):        {}",
        p("CertificateIssuer/CERT_CI_ECDSA_NIST.pem")
    );
    println!(
        "  SM-DP+ client cert/key:   {}",
        p("DPtls/CERT_S_SM_DP_TLS_NIST.pem")
    );
    println!(
        "                            {}",
        p("DPtls/SK_S_SM_DP_TLS_NIST.pem")
    );
    println!(
        "  eUICC (EID 89049032123451234512345678901235): {}",
        p("eUICC/CERT_EUICC_ECDSA_NIST.der")
    );
    println!();
    println!("Register an event as the SM-DP+:");
    println!(
        "  cargo run --release -p smds -- event register --server https://{hostname}:{port} \\\n    --eid 89049032123451234512345678901235 --event-id ev-1 --smdp-address testsmdpplus1.example.com \\\n    --cert {} --key {} --ca {}",
        p("DPtls/CERT_S_SM_DP_TLS_NIST.pem"),
        p("DPtls/SK_S_SM_DP_TLS_NIST.pem"),
        p("CertificateIssuer/CERT_CI_ECDSA_NIST.pem")
    );
    println!("Discover it as the eUICC (ES11, software eUICC from the same PKI):");
    println!(
        "  cargo run --release -p smds -- discover --server https://{hostname}:{port} --certdir {}",
        pki_dir.display()
    );
    println!("List stored events:");
    println!(
        "  cargo run --release -p smds -- events list{}",
        events_options(cfg)
    );
    println!();
}

/// Reloads on every SIGHUP, for as long as the server runs.
#[cfg(unix)]
fn reload_on_sighup(reloader: smds::server::Reloader) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("SIGHUP cannot be handled: reload by restarting");
        return;
    };
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading");
            // A failure is logged by reload; the server goes on with what it had.
            let _ = reloader.reload().await;
        }
    });
}

/// SIGINT or SIGTERM.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term.recv() => {},
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// The pid file in the data directory: what `kill -HUP $(cat smds-data/smds.pid)` reloads, and
/// who holds the database when a second server is started on it.
fn pid_file(cfg: &Config) -> PathBuf {
    cfg.data_dir.join("smds.pid")
}

/// A start error in one line; for a database held by another process, that process's pid.
fn start_error(e: StartError, cfg: &Config) -> String {
    if let StartError::Store(s) = &e
        && *s.root() == StoreError::Locked
    {
        let holder = std::fs::read_to_string(pid_file(cfg))
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok())
            // A pid file left by a killed server names nobody (the holder may be a reader).
            .filter(|pid| Path::new(&format!("/proc/{pid}")).exists())
            .map(|pid| format!(" (pid {pid}, from {})", pid_file(cfg).display()))
            .unwrap_or_default();
        return format!(
            "{}: another smds is running on this data directory{holder}; stop it, or give this one its own --data-dir",
            cfg.database_path().display()
        );
    }
    e.to_string()
}

/// Warns about every configured certificate that expires within [`EXPIRY_WARNING_DAYS`].
fn warn_expiring(pki: &ServerPki, now: i64) {
    for c in pki.summaries() {
        let days = c.days_left(now);
        if days < EXPIRY_WARNING_DAYS {
            tracing::warn!(
                certificate = c.what,
                file = %c.file.display(),
                not_after = %pki_tool::time::format(c.not_after),
                days_left = days,
                "certificate expires soon; renew it (pki-tool renew) and reload (SIGHUP)"
            );
        }
    }
}

const EXPIRY_WARNING_DAYS: i64 = 30;

impl ServeArgs {
    /// The effective configuration: defaults, then the file, then the flags.
    pub fn config(&self) -> Result<Config, String> {
        let file = self
            .config
            .as_deref()
            .map(FileConfig::load)
            .transpose()
            .map_err(|e| e.to_string())?;
        Ok(Config::resolve(
            file,
            Flags {
                listen: self.listen,
                admin_listen: self.admin_listen,
                no_admin: self.no_admin,
                data_dir: self.data_dir.clone(),
                hostname: self.hostname.clone(),
                pki: self.pki.clone(),
                store: self.store.clone(),
                crl_dir: self.crl_dir.clone(),
            },
        ))
    }
}

/// Runs the server with `cfg` (from [`ServeArgs::config`]) until SIGINT or SIGTERM.
pub async fn run(log_format: &str, cfg: Config) -> Result<(), String> {
    let _log = init_logging(log_format);
    // Ports first: a port in use fails the start before anything is minted or opened.
    let bound = Bound::bind(&cfg).await.map_err(|e| start_error(e, &cfg))?;
    let now = pki_tool::time::now();
    let (pki_dir, minted) = match &cfg.pki {
        Some(dir) => (dir.clone(), false),
        None => pki::ensure_dev_pki(
            &cfg.data_dir,
            cfg.hostname.as_deref().unwrap_or("localhost"),
        )
        .map_err(|e| e.to_string())?,
    };
    let server_pki = ServerPki::load_instance(&pki_dir, now, cfg.smds_instance.as_deref())
        .map_err(|e| e.to_string())?;
    warn_expiring(&server_pki, now);
    let hostname = cfg
        .hostname
        .clone()
        .or_else(|| server_pki.tls_hostname.clone())
        .unwrap_or_else(|| "localhost".into());
    if minted {
        print_first_start(&pki_dir, bound.addr, &hostname, &cfg);
    }
    let server = Server::start_bound(bound, &cfg, &server_pki, None)
        .await
        .map_err(|e| start_error(e, &cfg))?;
    let pid_path = pid_file(&cfg);
    if let Err(e) = std::fs::create_dir_all(&cfg.data_dir)
        .and_then(|()| std::fs::write(&pid_path, format!("{}\n", std::process::id())))
    {
        tracing::warn!(file = %pid_path.display(), error = %e, "pid file not written");
    }
    tracing::info!(
        listen = %server.addr,
        admin = %server.admin_addr.map_or("disabled".to_string(), |a| a.to_string()),
        hostname = %hostname,
        pki = %pki_dir.display(),
        store = %match &cfg.store {
            Some(pg) => pg.url.to_string(),
            None => cfg.database_path().display().to_string(),
        },
        cis = server_pki.cis.len(),
        pid = std::process::id(),
        "SM-DS started"
    );
    // Before the line that tells a supervisor the server is up: a SIGHUP from then on reloads.
    #[cfg(unix)]
    reload_on_sighup(server.reloader());
    match server.admin_addr {
        Some(a) => println!(
            "smds listening on https://{} (hostname {hostname}); admin on http://{a}",
            server.addr
        ),
        None => println!(
            "smds listening on https://{} (hostname {hostname}); admin disabled",
            server.addr
        ),
    }
    let stop = server.stopper();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested");
        let _ = stop.send(true);
    });
    server.wait().await;
    // Only our own: a pid file another server wrote since (it cannot have: it holds the
    // database) is left alone.
    if std::fs::read_to_string(&pid_path).is_ok_and(|p| p.trim() == std::process::id().to_string())
    {
        let _ = std::fs::remove_file(&pid_path);
    }
    tracing::info!("store flushed; bye");
    Ok(())
}
