//! Configuration: a TOML file, overridden by command-line flags, over built-in defaults that work
//! out of the box (127.0.0.1:8443, `./smds-data`, a development PKI minted on first start).

use crate::store::{PgOptions, StoreUrl};
use serde::Deserialize;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Value;

/// Limits that bound every resource a client can make the server spend.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body, in bytes (413 above); each function also has its own, smaller limit
    /// sized to its SGP.22 body (see `Function::max_body_bytes`), and the smaller one applies.
    pub max_body_bytes: usize,
    /// Request body bytes all requests together may hold at once (read or being read); a request
    /// that would exceed it is answered 503 before its body is read.
    pub max_inflight_body_bytes: usize,
    /// Most concurrent HTTP/2 streams per connection (an LPA needs one or two).
    pub h2_max_concurrent_streams: u32,
    /// Most request headers (431 above, enforced by the HTTP/1.1 parser).
    pub max_headers: usize,
    /// Largest request head (request line and headers), bytes; larger heads are refused (431).
    pub max_header_bytes: usize,
    /// Time allowed for a TLS handshake.
    pub tls_handshake_timeout_secs: u64,
    /// Time allowed to receive a request's headers, and to wait for the next request on a
    /// kept-alive HTTP/1.1 connection.
    pub header_read_timeout_secs: u64,
    /// Time allowed to receive a request body.
    pub body_read_timeout_secs: u64,
    /// Most simultaneous client connections. From nine tenths full on, the connection idle the
    /// longest is closed to make room; only when every connection is busy is a new one closed on
    /// accept.
    pub max_connections: usize,
    /// Most simultaneous connections from one source address (real LPAs behind carrier NAT share
    /// addresses: keep it well above one device's needs).
    pub max_connections_per_ip: usize,
    /// Time from accept to the first complete request; a connection that sends none is closed.
    pub first_request_timeout_secs: u64,
    /// Time a connection may sit without a request in flight after its last answer (HTTP/2
    /// included: PINGs do not count as activity).
    pub idle_timeout_secs: u64,
    /// Age after which a connection is closed once its requests are answered.
    pub max_connection_age_secs: u64,
    /// Most ES12 writes waiting for the database writer.
    pub write_queue: usize,
    /// Lifetime of an ES11 transaction (InitiateAuthentication to AuthenticateClient). Nothing is
    /// stored per transaction before the eUICC has signed, so there is no bound on their number.
    pub session_lifetime_secs: u64,
    /// Most pending events one SM-DP+ may have for one EID; more of its registrations are refused
    /// (8.1.1/4.8). Per owner, so that no SM-DP+ can crowd out another's events.
    pub max_events_per_eid: usize,
    /// Most pending events one EID may have from all SM-DP+s together: a backstop far above
    /// honest use that bounds every ES11 answer. Reaching it gives the same 8.1.1/4.8 (so it
    /// reveals nothing about other SM-DP+s) and counts `smds_refusals_total{reason="eid_backstop"}`.
    pub max_events_per_eid_all_owners: usize,
    /// Database page cache, MiB.
    pub db_cache_mib: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 64 * 1024,
            max_inflight_body_bytes: 16 * 1024 * 1024,
            h2_max_concurrent_streams: 8,
            max_headers: 64,
            max_header_bytes: 16 * 1024,
            tls_handshake_timeout_secs: 10,
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 10,
            max_connections: 1024,
            max_connections_per_ip: 128,
            first_request_timeout_secs: 10,
            idle_timeout_secs: 30,
            max_connection_age_secs: 300,
            write_queue: 8192,
            session_lifetime_secs: 300,
            max_events_per_eid: 100,
            max_events_per_eid_all_owners: 1000,
            db_cache_mib: 32,
        }
    }
}

impl Limits {
    pub fn tls_handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.tls_handshake_timeout_secs.max(1))
    }
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_secs.max(1))
    }
    pub fn session_lifetime(&self) -> Duration {
        Duration::from_secs(self.session_lifetime_secs.max(1))
    }
    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_secs(self.body_read_timeout_secs.max(1))
    }
}

/// What the TOML file may contain.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub admin_listen: Option<SocketAddr>,
    pub admin_allow_remote: Option<bool>,
    pub admin_token_file: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub hostname: Option<String>,
    pub pki: Option<PathBuf>,
    /// A `pki-tool init` directory whose CERT.DS.TLS (an SGP.26 v3 Variant A/B/C chain) is
    /// presented to clients asking for `rsp3-<hostname>` by SNI; ES11 also trusts its CIs and
    /// signs with its CERT.DSauth.
    pub rsp3_pki: Option<PathBuf>,
    pub session_key_file: Option<PathBuf>,
    /// `postgres://user@host:port/db`: the shared PostgreSQL event store instead of the
    /// embedded redb database in `data_dir`.
    pub store: Option<StoreUrl>,
    /// PostgreSQL connections this node keeps open at most (default 16).
    pub store_pool_size: Option<usize>,
    /// CA certificates (PEM) for TLS to PostgreSQL; TLS is used when the URL says
    /// `sslmode=require` or when this is set.
    pub store_ca_file: Option<PathBuf>,
    /// Longest wait for PostgreSQL per operation, seconds (default 5).
    pub store_timeout_secs: Option<u64>,
    /// Directory of CRLs to honour (default: `<pki>/crl`, where `pki-tool crl` writes them).
    pub crl_dir: Option<PathBuf>,
    /// Refuse certificates whose issuer's CRL is past its nextUpdate or does not verify (default
    /// false: a warning).
    pub strict_crl: Option<bool>,
    /// How often crl_dir is checked for changed files, seconds (default 2; 0: only on SIGHUP).
    pub crl_poll_secs: Option<u64>,
    /// Events older than this many days are removed by the server (default 0: never; SGP.22
    /// leaves deletion to the SM-DP+).
    pub event_ttl_days: Option<u64>,
    /// TLS 1.3 session tickets sent per connection (default 0: no session resumption).
    pub tls13_session_tickets: Option<usize>,
    /// Threads running connections (TLS, HTTP, ES11, ES12); default all CPUs but one, at least
    /// one.
    pub worker_threads: Option<usize>,
    /// Which SM-DS identity of the hierarchy this server is (`2`: CERT.DS.TLS
    /// `S_SM_DS2_TLS_...`, as `pki-tool issue dstls --instance 2` names it); default the first.
    pub smds_instance: Option<String>,
    /// Forward events to a Root SM-DS over ES15: this server is then an Alternative SM-DS.
    pub cascade: Option<CascadeFile>,
    /// SGP.22 v3 push services offered to devices (see `crate::push`).
    #[serde(default)]
    pub push_services: Vec<PushServiceConfig>,
    #[serde(default)]
    pub limits: Limits,
}

/// `[[push_services]]`: an SGP.22 v3 push service this SM-DS offers (see `crate::push`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PushServiceConfig {
    /// The service's OBJECT IDENTIFIER, dotted: advertised in serverSigned1's
    /// sessionContext.supportedPushServices, selected by the device when it registers.
    pub oid: String,
    /// `http(s)://host[:port]/path` of the push gateway the notifications are POSTed to.
    pub gateway: String,
    /// CA certificates (PEM) for an https gateway; default the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

/// Which EventID an Alternative SM-DS gives the Root for a forwarded event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventIdMode {
    /// A fresh random one, mapped back locally: no collisions at the Root between Alternatives
    /// or SM-DP+s, and no SM-DP+ EventID leaves this server (the default).
    Fresh,
    /// The SM-DP+'s own EventID.
    Same,
}

/// `[cascade]` as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CascadeFile {
    /// The Root SM-DS's address (`host[:port]`): the name its CERT.DS.TLS must carry.
    pub root: String,
    /// Connect to this `host:port` instead, keeping `root` as the TLS name (as curl's
    /// `--connect-to`).
    pub connect_to: Option<String>,
    /// The address the Root hands devices for this server (`host[:port]`); default `hostname`.
    pub address: Option<String>,
    /// `fresh` (default) or `same`.
    pub event_ids: Option<EventIdMode>,
    /// Longest wait for the Root's answer per ES15 call, seconds (default 10).
    pub timeout_secs: Option<u64>,
}

/// Forwarding to a Root SM-DS (see `crate::cascade`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CascadeConfig {
    pub root: String,
    pub connect_to: Option<String>,
    pub address: Option<String>,
    pub event_ids: EventIdMode,
    pub timeout: Duration,
}

impl From<CascadeFile> for CascadeConfig {
    fn from(f: CascadeFile) -> Self {
        CascadeConfig {
            root: f.root,
            connect_to: f.connect_to,
            address: f.address,
            event_ids: f.event_ids.unwrap_or(EventIdMode::Fresh),
            timeout: Duration::from_secs(f.timeout_secs.unwrap_or(10).clamp(1, 300)),
        }
    }
}

/// Why a configuration file cannot be used; names the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
}

impl FileConfig {
    /// Reads `path`; relative paths in it are taken from the file's directory, as every
    /// config-file tool does, so that a service runs the same from any working directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let file: FileConfig = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        let dir = path.parent().unwrap_or(Path::new(""));
        Ok(file.relative_to(dir))
    }

    /// The same settings with every relative path joined to `dir`.
    pub fn relative_to(mut self, dir: &Path) -> Self {
        for p in [
            &mut self.admin_token_file,
            &mut self.data_dir,
            &mut self.pki,
            &mut self.session_key_file,
            &mut self.store_ca_file,
            &mut self.crl_dir,
        ]
        .into_iter()
        .flatten()
        {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        }
        self
    }
}

/// What the command line may set, over the file.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub listen: Option<SocketAddr>,
    pub admin_listen: Option<SocketAddr>,
    pub no_admin: bool,
    pub data_dir: Option<PathBuf>,
    pub hostname: Option<String>,
    pub pki: Option<PathBuf>,
    pub store: Option<StoreUrl>,
    pub crl_dir: Option<PathBuf>,
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Plain-HTTP listener for /metrics and the admin endpoints; loopback by default. A
    /// non-loopback address is refused unless `admin_allow_remote` is set and a token is
    /// configured.
    pub admin_listen: Option<SocketAddr>,
    /// Allow `admin_listen` on a non-loopback address (requires `admin_token_file`).
    pub admin_allow_remote: bool,
    /// A file holding the bearer token every admin request must present
    /// (`Authorization: Bearer <token>`); at least 16 characters.
    pub admin_token_file: Option<PathBuf>,
    pub data_dir: PathBuf,
    /// This SM-DS's FQDN; by default the DNS name in CERT.DS.TLS.
    pub hostname: Option<String>,
    /// A `pki-tool init` directory; by default `<data_dir>/pki`, minted on first start.
    pub pki: Option<PathBuf>,
    /// A second `pki-tool init` directory (SGP.26 v3 Variant A/B/C): its CERT.DS.TLS, with its
    /// SubCAs, goes to clients asking for `rsp3-<hostname>` by SNI, as v3 devices do first
    /// (SGP.22 v3 2.6.6.2); `pki`'s goes to every other client. Unset: one chain for both names.
    pub rsp3_pki: Option<PathBuf>,
    /// The ES11 session key file (see `auth`); by default `<data_dir>/session.key`, created on
    /// first start. Every node of a cluster must use the same file.
    pub session_key_file: Option<PathBuf>,
    /// The PostgreSQL event store; `None` for the embedded redb database in `data_dir`.
    pub store: Option<PgOptions>,
    /// CRLs to honour; `None` for `<pki>/crl` if that exists (see [`crate::revocation`]).
    pub crl_dir: Option<PathBuf>,
    /// A stale or unverifiable CRL refuses the certificates it covers instead of a warning.
    pub strict_crl: bool,
    /// How often `crl_dir` is checked for changes; `None`: only on SIGHUP.
    pub crl_poll: Option<Duration>,
    /// Events registered longer ago than this are removed (audited); `None`: kept until the
    /// SM-DP+ deletes them.
    pub event_ttl: Option<Duration>,
    /// TLS 1.3 session tickets per connection; 0 (the default) turns resumption off. lpac
    /// cannot resume (a curl handle per request, no shared cache) and a device discovers
    /// rarely, so tickets are work for nothing unless a lab's clients keep them.
    pub tls13_session_tickets: usize,
    /// Threads of the async runtime (connections, TLS, HTTP, ES12, and ES11 when it runs in
    /// place: see `es11`). All CPUs but one by default: the one left runs the store's writer,
    /// the blocking pool and the kernel's network work; on a 2-CPU machine one worker costs
    /// 54-93 us less CPU per discovery than two (fewer wake-ups and migrations) for 5-13% fewer
    /// discoveries per second (see the README's ES11 figures).
    pub worker_threads: usize,
    /// Which SM-DS identity of the hierarchy this server is; `None`: the first.
    pub smds_instance: Option<String>,
    /// Forwarding to a Root SM-DS; `None`: this server forwards nothing.
    pub cascade: Option<CascadeConfig>,
    /// SGP.22 v3 push services offered (see `crate::push`); none by default.
    pub push_services: Vec<PushServiceConfig>,
    pub limits: Limits,
}

/// All CPUs but one, at least one.
pub fn default_worker_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get().saturating_sub(1))
        .max(1)
}

pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8443));
pub const DEFAULT_ADMIN_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8444));
pub const DEFAULT_DATA_DIR: &str = "./smds-data";

impl Config {
    /// Defaults, then the file, then the flags.
    pub fn resolve(file: Option<FileConfig>, flags: Flags) -> Self {
        let Flags {
            listen,
            admin_listen,
            no_admin,
            data_dir,
            hostname,
            pki,
            store,
            crl_dir,
        } = flags;
        let file = file.unwrap_or_default();
        let store = store.or(file.store).map(|url| {
            let mut o = PgOptions::new(url);
            if let Some(n) = file.store_pool_size {
                o.pool_size = n.max(1);
            }
            o.ca_file = file.store_ca_file;
            if let Some(t) = file.store_timeout_secs {
                o.timeout = Duration::from_secs(t.max(1));
            }
            o
        });
        Config {
            listen: listen.or(file.listen).unwrap_or(DEFAULT_LISTEN),
            admin_listen: if no_admin {
                None
            } else {
                Some(
                    admin_listen
                        .or(file.admin_listen)
                        .unwrap_or(DEFAULT_ADMIN_LISTEN),
                )
            },
            admin_allow_remote: file.admin_allow_remote.unwrap_or(false),
            admin_token_file: file.admin_token_file,
            data_dir: data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            hostname: hostname.or(file.hostname),
            pki: pki.or(file.pki),
            rsp3_pki: file.rsp3_pki,
            session_key_file: file.session_key_file,
            store,
            crl_dir: crl_dir.or(file.crl_dir),
            strict_crl: file.strict_crl.unwrap_or(false),
            crl_poll: match file.crl_poll_secs {
                Some(0) => None,
                Some(s) => Some(Duration::from_secs(s)),
                None => Some(crate::revocation::DEFAULT_POLL_INTERVAL),
            },
            event_ttl: file
                .event_ttl_days
                .filter(|d| *d > 0)
                .map(|d| Duration::from_secs(d.saturating_mul(86_400))),
            tls13_session_tickets: file.tls13_session_tickets.unwrap_or(0).min(8),
            worker_threads: file
                .worker_threads
                .filter(|n| *n > 0)
                .unwrap_or_else(default_worker_threads)
                .min(1024),
            smds_instance: file.smds_instance,
            cascade: file.cascade.map(CascadeConfig::from),
            push_services: file.push_services,
            limits: file.limits,
        }
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("events.redb")
    }

    /// The CRL directory for a server whose hierarchy is `pki_root`, and whether it was
    /// configured (then it must exist).
    pub fn crl_dir(&self, pki_root: &Path) -> (PathBuf, bool) {
        match &self.crl_dir {
            Some(d) => (d.clone(), true),
            None => (pki_root.join("crl"), false),
        }
    }

    pub fn session_key_path(&self) -> PathBuf {
        self.session_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("session.key"))
    }

    /// This configuration as a file that gives it (`smds config show`), defaults filled in;
    /// a store URL without its password.
    pub fn to_toml(&self) -> String {
        let path = |p: &Path| Value::String(p.display().to_string());
        let mut t = toml::Table::new();
        t.insert("listen".into(), Value::String(self.listen.to_string()));
        if let Some(a) = self.admin_listen {
            t.insert("admin_listen".into(), Value::String(a.to_string()));
        }
        t.insert(
            "admin_allow_remote".into(),
            Value::Boolean(self.admin_allow_remote),
        );
        if let Some(f) = &self.admin_token_file {
            t.insert("admin_token_file".into(), path(f));
        }
        t.insert("data_dir".into(), path(&self.data_dir));
        if let Some(h) = &self.hostname {
            t.insert("hostname".into(), Value::String(h.clone()));
        }
        t.insert(
            "pki".into(),
            path(
                &self
                    .pki
                    .clone()
                    .unwrap_or_else(|| self.data_dir.join("pki")),
            ),
        );
        if let Some(p) = &self.rsp3_pki {
            t.insert("rsp3_pki".into(), path(p));
        }
        t.insert("session_key_file".into(), path(&self.session_key_path()));
        if let Some(pg) = &self.store {
            t.insert("store".into(), Value::String(pg.url.to_string()));
            t.insert(
                "store_pool_size".into(),
                Value::Integer(i64::try_from(pg.pool_size).unwrap_or(i64::MAX)),
            );
            t.insert(
                "store_timeout_secs".into(),
                Value::Integer(i64::try_from(pg.timeout.as_secs()).unwrap_or(i64::MAX)),
            );
            if let Some(ca) = &pg.ca_file {
                t.insert("store_ca_file".into(), path(ca));
            }
        }
        let pki_root = self
            .pki
            .clone()
            .unwrap_or_else(|| self.data_dir.join("pki"));
        t.insert("crl_dir".into(), path(&self.crl_dir(&pki_root).0));
        t.insert("strict_crl".into(), Value::Boolean(self.strict_crl));
        t.insert(
            "crl_poll_secs".into(),
            Value::Integer(
                self.crl_poll
                    .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
            ),
        );
        t.insert(
            "event_ttl_days".into(),
            Value::Integer(self.event_ttl.map_or(0, |d| {
                i64::try_from(d.as_secs() / 86_400).unwrap_or(i64::MAX)
            })),
        );
        t.insert(
            "worker_threads".into(),
            Value::Integer(i64::try_from(self.worker_threads).unwrap_or(1)),
        );
        t.insert(
            "tls13_session_tickets".into(),
            Value::Integer(i64::try_from(self.tls13_session_tickets).unwrap_or(8)),
        );
        if let Some(i) = &self.smds_instance {
            t.insert("smds_instance".into(), Value::String(i.clone()));
        }
        if let Some(c) = &self.cascade {
            let mut cascade = toml::Table::new();
            cascade.insert("root".into(), Value::String(c.root.clone()));
            if let Some(to) = &c.connect_to {
                cascade.insert("connect_to".into(), Value::String(to.clone()));
            }
            if let Some(a) = &c.address {
                cascade.insert("address".into(), Value::String(a.clone()));
            }
            let mode = match c.event_ids {
                EventIdMode::Fresh => "fresh",
                EventIdMode::Same => "same",
            };
            cascade.insert("event_ids".into(), Value::String(mode.into()));
            cascade.insert(
                "timeout_secs".into(),
                Value::Integer(i64::try_from(c.timeout.as_secs()).unwrap_or(10)),
            );
            t.insert("cascade".into(), Value::Table(cascade));
        }
        if !self.push_services.is_empty()
            && let Ok(services) = Value::try_from(&self.push_services)
        {
            t.insert("push_services".into(), services);
        }
        if let Ok(limits) = Value::try_from(&self.limits) {
            t.insert("limits".into(), limits);
        }
        let mut out = String::new();
        if self.admin_listen.is_none() {
            out.push_str("# the admin listener is disabled (--no-admin)\n");
        }
        if self.hostname.is_none() {
            out.push_str("# hostname: the DNS name in CERT.DS.TLS\n");
        }
        out.push_str(&toml::to_string(&t).unwrap_or_default());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cascade_settings_and_their_defaults() {
        let file: FileConfig =
            toml::from_str("smds_instance = \"2\"\n[cascade]\nroot = \"root.example:8443\"\n")
                .expect("parses");
        let c = Config::resolve(Some(file), Flags::default());
        assert_eq!(c.smds_instance.as_deref(), Some("2"));
        assert_eq!(
            c.cascade,
            Some(CascadeConfig {
                root: "root.example:8443".into(),
                connect_to: None,
                address: None,
                event_ids: EventIdMode::Fresh,
                timeout: Duration::from_secs(10),
            })
        );
        let same: FileConfig =
            toml::from_str("[cascade]\nroot = \"r\"\nevent_ids = \"same\"\ntimeout_secs = 0\n")
                .expect("parses");
        let c = Config::resolve(Some(same), Flags::default());
        let c = c.cascade.expect("cascade");
        assert_eq!(
            (c.event_ids, c.timeout),
            (EventIdMode::Same, Duration::from_secs(1))
        );
        for bad in [
            "[cascade]\nroot = \"r\"\nevent_ids = \"new\"\n",
            "[cascade]\nroot = \"r\"\nroots = [\"x\"]\n",
            "[cascade]\nevent_ids = \"same\"\n",
        ] {
            assert!(toml::from_str::<FileConfig>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_override_file_over_defaults() {
        let file: FileConfig = toml::from_str(
            r#"
            listen = "0.0.0.0:9443"
            data_dir = "/var/lib/smds"
            [limits]
            max_body_bytes = 1000
            "#,
        )
        .expect("parses");
        let c = Config::resolve(
            Some(file),
            Flags {
                data_dir: Some("/tmp/x".into()),
                ..Flags::default()
            },
        );
        assert_eq!(c.listen.to_string(), "0.0.0.0:9443");
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.limits.max_body_bytes, 1000);
        assert_eq!(c.limits.max_connections, Limits::default().max_connections);
        assert_eq!(
            c.admin_listen.map(|a| a.to_string()).as_deref(),
            Some("127.0.0.1:8444")
        );
        assert!(
            toml::from_str::<FileConfig>("lisen = \"x\"").is_err(),
            "typos are errors"
        );
        assert!(c.store.is_none(), "redb by default");
        let file: FileConfig = toml::from_str(
            r#"
            store = "postgres://smds:pw@db.internal:5432/smds"
            store_pool_size = 32
            "#,
        )
        .expect("parses");
        let c = Config::resolve(Some(file), Flags::default());
        let pg = c.store.expect("postgres");
        assert_eq!(pg.url.to_string(), "postgres://smds@db.internal:5432/smds");
        assert_eq!(pg.pool_size, 32);
        let err = toml::from_str::<FileConfig>("store = \"/var/lib/smds/events.redb\"")
            .expect_err("refused")
            .to_string();
        assert!(err.contains("not a PostgreSQL URL"), "{err}");
    }

    #[test]
    fn relative_paths_in_a_file_are_taken_from_its_directory() {
        let dir = std::env::temp_dir().join(format!("smds-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("smds.toml");
        std::fs::write(
            &path,
            "data_dir = \"data\"\npki = \"/etc/smds/pki\"\ncrl_dir = \"../crl\"\n",
        )
        .expect("write");
        let file = FileConfig::load(&path).expect("loads");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(file.data_dir, Some(dir.join("data")));
        assert_eq!(
            file.pki,
            Some(PathBuf::from("/etc/smds/pki")),
            "absolute kept"
        );
        assert_eq!(file.crl_dir, Some(dir.join("../crl")));
        assert_eq!(file.session_key_file, None);
    }
}
