//! Reaching PostgreSQL: the `postgres://` URL as configured, TLS to the database (rustls), the
//! connection pool, and the one mapping from the driver's errors to [`StoreError`].

use crate::store::StoreError;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::error::SqlState;

/// A validated `postgres://` (or `postgresql://`) connection URL. Its `Display` leaves the
/// password out, so it can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreUrl {
    url: String,
}

impl StoreUrl {
    pub fn as_str(&self) -> &str {
        &self.url
    }

    fn config(&self) -> Result<tokio_postgres::Config, StoreError> {
        tokio_postgres::Config::from_str(&self.url)
            .map_err(|e| StoreError::Backend(format!("{self}: {e}")))
    }
}

impl FromStr for StoreUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if !(s.starts_with("postgres://") || s.starts_with("postgresql://")) {
            return Err(format!(
                "`{s}` is not a PostgreSQL URL (postgres://user@host:port/db); leave `store` unset for the embedded redb store"
            ));
        }
        let url = StoreUrl { url: s.to_string() };
        url.config().map_err(|e| e.to_string())?;
        Ok(url)
    }
}

impl TryFrom<String> for StoreUrl {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl<'de> serde::Deserialize<'de> for StoreUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for StoreUrl {
    /// `postgres://user@host:port/db`, never the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Ok(c) = tokio_postgres::Config::from_str(&self.url) else {
            return f.write_str("postgres://(unparsable)");
        };
        f.write_str("postgres://")?;
        if let Some(u) = c.get_user() {
            write!(f, "{u}@")?;
        }
        let hosts: Vec<String> = c
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let host = match h {
                    Host::Tcp(name) => name.clone(),
                    #[cfg(unix)]
                    Host::Unix(path) => path.display().to_string(),
                };
                match c.get_ports().get(i).or(c.get_ports().first()) {
                    Some(p) => format!("{host}:{p}"),
                    None => host,
                }
            })
            .collect();
        write!(f, "{}", hosts.join(","))?;
        if let Some(db) = c.get_dbname() {
            write!(f, "/{db}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreUrl({self})")
    }
}

/// How the server connects to PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgOptions {
    pub url: StoreUrl,
    /// Connections this node keeps open at most.
    pub pool_size: usize,
    /// CA certificates (PEM) that sign the database's TLS certificate; without one, the system's
    /// roots are used when the URL asks for TLS (`sslmode=require`).
    pub ca_file: Option<PathBuf>,
    /// Longest wait for a connection, and for any one store operation, before the request is
    /// answered with an execution error.
    pub timeout: Duration,
}

impl PgOptions {
    pub fn new(url: StoreUrl) -> Self {
        PgOptions {
            url,
            pool_size: 16,
            ca_file: None,
            timeout: Duration::from_secs(5),
        }
    }
}

/// The connection pool. TLS is used when the URL says `sslmode=require` (the certificate is
/// always verified, as libpq's `verify-full` does), or when a CA file is configured and the URL
/// does not say `sslmode=disable` (then TLS is required too); otherwise the connection is plain, as for a database on
/// loopback or a private network.
pub(super) fn pool(opts: &PgOptions) -> Result<Pool, StoreError> {
    let mut cfg = opts.url.config()?;
    if cfg.get_connect_timeout().is_none() {
        cfg.connect_timeout(opts.timeout);
    }
    cfg.keepalives(true);
    cfg.application_name("smds");
    let manager_cfg = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    let tls = match (cfg.get_ssl_mode(), &opts.ca_file) {
        (SslMode::Disable, _) | (SslMode::Prefer, None) => None,
        (_, ca) => {
            // A configured CA means TLS, never a silent fall-back to a plain connection.
            cfg.ssl_mode(SslMode::Require);
            Some(tls_connector(ca.as_deref())?)
        }
    };
    let manager = match tls {
        None => Manager::from_config(cfg, tokio_postgres::NoTls, manager_cfg),
        Some(tls) => Manager::from_config(cfg, tls, manager_cfg),
    };
    Pool::builder(manager)
        .max_size(opts.pool_size.max(1))
        .wait_timeout(Some(opts.timeout))
        .create_timeout(Some(opts.timeout))
        .recycle_timeout(Some(opts.timeout))
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(|e| StoreError::Backend(e.to_string()))
}

fn tls_connector(
    ca_file: Option<&Path>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    let cfg = crate::transport::tls::web_client_config(ca_file).map_err(|e| {
        StoreError::Backend(match ca_file {
            Some(_) => e,
            None => format!("sslmode=require: {e} (set store_ca_file)"),
        })
    })?;
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(cfg))
}

/// Whether a failed transaction may simply be run again: the database gave up on it to keep
/// transactions serializable (CockroachDB, YugabyteDB, SERIALIZABLE PostgreSQL) or to break a
/// deadlock. Nothing of it was committed.
pub(super) fn is_retryable(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}

pub(super) fn error(e: tokio_postgres::Error) -> StoreError {
    // The driver's message, then its causes ("error performing TLS handshake: invalid peer
    // certificate: UnknownIssuer").
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        cause = c.source();
    }
    match e.code() {
        Some(c) if *c == SqlState::DISK_FULL => StoreError::DiskFull,
        Some(c) if c.code().starts_with("08") || c.code().starts_with("57P") => {
            StoreError::Unavailable(text)
        }
        Some(_) => StoreError::Backend(text),
        // No SQLSTATE: the connection itself failed (refused, reset, closed).
        None => StoreError::Unavailable(text),
    }
}

pub(super) fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    use deadpool_postgres::PoolError;
    match e {
        PoolError::Backend(e) => error(e),
        PoolError::Timeout(_) => {
            StoreError::Unavailable("no database connection within the store timeout".into())
        }
        PoolError::Closed => StoreError::Closed,
        e => StoreError::Unavailable(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_passwords_never_shown() {
        let u: StoreUrl = "postgres://smds:s3cret@db.example:5433/events"
            .parse()
            .expect("valid");
        assert_eq!(u.to_string(), "postgres://smds@db.example:5433/events");
        assert!(!format!("{u:?}").contains("s3cret"));
        assert!("mysql://x@y/z".parse::<StoreUrl>().is_err());
        assert!("/var/lib/smds".parse::<StoreUrl>().is_err());
        assert!("postgres://x@y:notaport/z".parse::<StoreUrl>().is_err());
    }
}
