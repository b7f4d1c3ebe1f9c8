//! Shared helpers for the SM-DS end-to-end tests: lab PKIs minted with the pki-tool library,
//! servers on loopback ports, and clients.
#![allow(dead_code)]

use pki_tool::hierarchy::{self, Hierarchy, InitOptions, IssueOptions};
use pki_tool::{Curve, Role};
use smds::config::{Config, Limits};
use smds::lab::https::{Connection, Endpoint};
use smds::pki::ServerPki;
use smds::server::Server;
use smds::sgp22::FunctionResult;
use smds::transport::tls::Clock;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub const EID: &str = "89049032123451234512345678901235";
pub const EID2: &str = "89049032000000000000000000100073";

pub use workspace_tests::common::TempDir;
pub use workspace_tests::postgres::Postgres;

/// The event store an end-to-end test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Redb,
    Postgres,
}

impl StoreKind {
    /// `cfg` on this store: for PostgreSQL, a server of the test's own, running while the
    /// returned handle lives (keep it until the SM-DS has stopped).
    pub fn apply(self, mut cfg: Config) -> (Config, Option<Postgres>) {
        match self {
            StoreKind::Redb => (cfg, None),
            StoreKind::Postgres => {
                let pg = Postgres::start();
                let url = pg.create_database("smds");
                cfg.store = Some(smds::store::PgOptions::new(url.parse().expect("url")));
                (cfg, Some(pg))
            }
        }
    }
}

/// Declares `name::redb` and `name::postgres`, each running `async fn name(StoreKind)`: one
/// end-to-end suite, run on both event stores.
#[allow(unused_macros)]
macro_rules! on_both_stores {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redb() {
                super::$name(crate::support::StoreKind::Redb).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(crate::support::StoreKind::Postgres).await
            }
        }
    )+};
}
#[allow(unused_imports)]
pub(crate) use on_both_stores;

/// The SGP.26 reference files.
pub fn shared() -> PathBuf {
    workspace_tests::common::sgp26()
}

/// Mints a hierarchy with `pki-tool` (NIST only, SM-DS TLS for "localhost").
pub fn mint(dir: &Path, profile: &str, keys: Option<PathBuf>) {
    mint_curves(dir, profile, keys, &[Curve::NistP256]);
}

/// Mints a hierarchy with `pki-tool` on the given curves (SM-DS TLS for "localhost").
pub fn mint_curves(dir: &Path, profile: &str, keys: Option<PathBuf>, curves: &[Curve]) {
    let opts = InitOptions {
        profile: profile.into(),
        keys,
        ..InitOptions::lab(dir, curves, "localhost").expect("options")
    };
    hierarchy::init(&opts).expect("pki-tool init");
}

/// Issues NIST certificate `role` as instance `n` of the hierarchy at `pki` (a second SM-DP+ or
/// SM-DS), with template placeholders `sets`.
pub fn issue_instance(pki: &Path, role: Role, n: &str, sets: &[(&str, &str)]) {
    Hierarchy::open(pki)
        .expect("open")
        .issue(&IssueOptions {
            role,
            curve: Curve::NistP256,
            instance: Some(n.into()),
            eid: None,
            sets: sets
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            key: None,
            force: false,
            now: pki_tool::time::now(),
        })
        .unwrap_or_else(|e| panic!("issue {} instance {n}: {e}", role.name()));
}

/// A lab: our PKI with a second SM-DP+ (DP2, SAN 2.999.12), and a foreign PKI (another CI).
pub struct Lab {
    pub tmp: TempDir,
    pub pki: PathBuf,
    pub foreign: PathBuf,
}

impl Lab {
    pub fn new(tag: &str) -> Lab {
        let tmp = TempDir::new(tag);
        let pki = tmp.0.join("pki");
        mint(&pki, "default", None);
        issue_instance(
            &pki,
            Role::Dptls,
            "2",
            &[
                ("smdp_rid", "2.999.12"),
                ("smdp_fqdn", "testsmdpplus2.example.com"),
            ],
        );
        let foreign = tmp.0.join("foreign");
        mint(&foreign, "default", None);
        Lab { tmp, pki, foreign }
    }

    pub fn config(&self, limits: Limits) -> Config {
        Config {
            admin_listen: Some("127.0.0.1:0".parse().expect("addr")),
            ..loopback_config(&self.pki, &self.tmp.0.join("data"), limits)
        }
    }
}

/// A server configuration on a loopback port with no admin listener.
pub fn loopback_config(pki: &Path, data_dir: &Path, limits: Limits) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        admin_listen: None,
        admin_allow_remote: false,
        admin_token_file: None,
        data_dir: data_dir.to_path_buf(),
        hostname: None,
        pki: Some(pki.to_path_buf()),
        rsp3_pki: None,
        session_key_file: None,
        store: None,
        crl_dir: None,
        strict_crl: false,
        crl_poll: Some(smds::revocation::DEFAULT_POLL_INTERVAL),
        event_ttl: None,
        tls13_session_tickets: 0,
        worker_threads: 2,
        smds_instance: None,
        cascade: None,
        push_services: Vec::new(),
        limits,
    }
}

pub async fn start(pki: &Path, cfg: &Config, clock: Option<Clock>) -> Server {
    let server_pki = ServerPki::load(pki, pki_tool::time::now()).expect("server PKI loads");
    Server::start(cfg, &server_pki, clock)
        .await
        .expect("server starts")
}

pub fn ci(pki: &Path) -> PathBuf {
    pki.join("CertificateIssuer/CERT_CI_ECDSA_NIST.der")
}

/// A pki-tool hierarchy of the SGP.26 v3 profile in `variant` (P-256), from `keys` if given.
pub fn mint_v3(dir: &Path, variant: pki_tool::Variant, keys: Option<&Path>) -> Hierarchy {
    let opts = InitOptions {
        profile: "sgp26-v3".into(),
        variant,
        keys: keys.map(Path::to_path_buf),
        ..InitOptions::lab(dir, &[Curve::NistP256], "localhost").expect("options")
    };
    hierarchy::init(&opts).expect("pki-tool init");
    Hierarchy::open(dir).expect("open")
}

/// The SM-DP+ TLS client configuration of a hierarchy: its CERT.DP.TLS followed by `with` SubCAs
/// (nearest first) in one PEM file, trusting the hierarchy's CI.
pub fn smdp_v3(h: &Hierarchy, with: usize, tmp: &Path) -> Arc<rustls::ClientConfig> {
    let leaf = h.slot(Role::Dptls, Curve::NistP256, None);
    let mut pem = h.cert(&leaf).expect("DP TLS").to_pem();
    for c in h
        .intermediates(Role::Dptls, Curve::NistP256)
        .expect("chain")
        .iter()
        .take(with)
    {
        pem.push_str(&c.to_pem());
    }
    let bundle = tmp.join(format!("dptls-chain-{with}.pem"));
    std::fs::write(&bundle, pem).expect("write");
    smds::lab::smdp::smdp_tls_config(&bundle, &leaf.private_key(&h.root), &[ci_of(h)])
        .expect("client TLS config")
}

/// The (NIST) CI certificate file of a hierarchy, in whatever layout it has.
pub fn ci_of(h: &Hierarchy) -> PathBuf {
    h.slot(Role::Ci, Curve::NistP256, None).cert_der(&h.root)
}

/// TLS as the SM-DP+ whose TLS certificate is `DPtls/CERT_S_SM_DP{instance}_TLS_NIST.der`.
pub fn smdp(pki: &Path, instance: &str, trust: &Path) -> Arc<rustls::ClientConfig> {
    let dir = pki.join("DPtls");
    smds::lab::smdp::smdp_tls_config(
        &dir.join(format!("CERT_S_SM_DP{instance}_TLS_NIST.der")),
        &dir.join(format!("SK_S_SM_DP{instance}_TLS_NIST.pem")),
        &[ci(trust)],
    )
    .expect("client TLS config")
}

/// TLS without a client certificate, trusting `trust`'s CI.
pub fn anonymous(trust: &Path) -> Arc<rustls::ClientConfig> {
    anonymous_with_alpn(trust, b"http/1.1")
}

/// TLS without a client certificate, trusting `trust`'s CI, offering only `alpn`.
pub fn anonymous_with_alpn(trust: &Path, alpn: &[u8]) -> Arc<rustls::ClientConfig> {
    let cas = smds::lab::https::read_cas(&[ci(trust)]).expect("CI");
    let mut cfg =
        smds::transport::tls::client_config(cas, Role::Dstls, None, None).expect("config");
    cfg.alpn_protocols = vec![alpn.to_vec()];
    Arc::new(cfg)
}

pub fn endpoint(server: &Server) -> Endpoint {
    Endpoint::localhost(server.addr.port())
}

pub async fn connect(server: &Server, tls: Arc<rustls::ClientConfig>) -> Connection {
    Connection::open(&endpoint(server), tls, Duration::from_secs(10))
        .await
        .expect("connects")
}

/// A benchmark's command line: `[SECONDS] [redb|postgres] [other words]`.
pub struct BenchArgs {
    pub secs: f64,
    words: Vec<String>,
}

impl BenchArgs {
    pub fn parse(default_secs: f64) -> BenchArgs {
        let words: Vec<String> = std::env::args().skip(1).collect();
        BenchArgs {
            secs: words
                .iter()
                .find_map(|a| a.parse().ok())
                .unwrap_or(default_secs),
            words,
        }
    }

    /// Whether to measure on `store` (`redb` or `postgres`): both unless one is named.
    pub fn store(&self, store: &str) -> bool {
        let named = |w: &str| self.words.iter().any(|a| a == w);
        !(named("redb") || named("postgres")) || named(store)
    }

    pub fn has(&self, word: &str) -> bool {
        self.words.iter().any(|a| a == word)
    }
}

/// TLS as an LPA that trusts `trust`'s (NIST) CI for the SM-DS's TLS certificate.
pub fn lpa_tls(trust: &Path) -> Arc<rustls::ClientConfig> {
    smds::lab::lpa::lpa_tls_config(smds::lab::https::read_cas(&[ci(trust)]).expect("ci"))
        .expect("tls")
}

/// A discovery against `server` by an LPA trusting `trust`'s CI for TLS.
pub fn discovery_options(
    server: &Server,
    trust: &Path,
    matching_id: Option<&str>,
    paths: smds::sgp22::Es11PathFamily,
) -> smds::lab::lpa::DiscoveryOptions {
    smds::lab::lpa::DiscoveryOptions {
        endpoint: endpoint(server),
        address: format!("localhost:{}", server.addr.port()),
        tls: lpa_tls(trust),
        paths,
        matching_id: matching_id.map(str::to_string),
        timeout: Duration::from_secs(10),
        now: pki_tool::time::now(),
    }
}

/// A whole discovery against `server` by the eUICC of `pki` on `curve` (a new TLS connection,
/// ES9+ paths): the number of events, or `"<step> <subject>/<reason>"` when the SM-DS refused.
#[allow(dead_code)]
pub async fn discovery_outcome(server: &Server, pki: &Path, curve: Curve) -> Result<usize, String> {
    use smds::lab::lpa::Discovery;
    let euicc = smds::lab::soft_euicc::SoftEuicc::load(pki, curve, None).expect("eUICC");
    let opts = discovery_options(server, pki, None, smds::sgp22::Es11PathFamily::Es9Plus);
    match smds::lab::lpa::discover(&euicc, &opts)
        .await
        .expect("an answer")
    {
        Discovery::Events { entries, .. } => Ok(entries.len()),
        Discovery::PushRegistered { .. } => panic!("a push registration answer"),
        Discovery::Failed { step, result } => {
            Err(format!("{step} {}", result.code().unwrap_or_default()))
        }
    }
}

/// InitiateAuthentication on `conn` for `address`, answered by the software eUICC: the body of
/// the AuthenticateClient that completes the transaction (at this node or any other).
pub async fn initiate_and_answer(
    conn: &mut Connection,
    euicc: &smds::lab::soft_euicc::SoftEuicc,
    address: &str,
) -> serde_json::Value {
    use smds::sgp22::requests::b64_encode;
    let challenge = smds::lab::soft_euicc::SoftEuicc::challenge().expect("challenge");
    let r = conn
        .call(
            smds::sgp22::Es11PathFamily::Es9Plus.initiate_authentication(),
            &serde_json::json!({
                "smdpAddress": address,
                "euiccChallenge": b64_encode(&challenge),
                "euiccInfo1": b64_encode(&euicc.euicc_info1().expect("info1")),
            }),
        )
        .await
        .expect("answer");
    let server =
        smds::sgp22::responses::InitiateAuthenticationResponse::from_result(&r).expect("initiated");
    let response = euicc
        .authenticate_server(&challenge, &server, address, None, pki_tool::time::now())
        .expect("the eUICC accepts the server");
    serde_json::json!({
        "transactionId": server.transaction_id.to_hex(),
        "authenticateServerResponse": b64_encode(&response),
    })
}

pub async fn register(conn: &mut Connection, eid: &str, event_id: &str) -> FunctionResult {
    conn.call(
        smds::sgp22::paths::path::ES12_REGISTER_EVENT,
        &smds::lab::smdp::register_event_body(eid, event_id, "testsmdpplus1.example.com", None),
    )
    .await
    .expect("answer")
}

pub async fn delete(conn: &mut Connection, eid: &str, event_id: &str) -> FunctionResult {
    conn.call(
        smds::sgp22::paths::path::ES12_DELETE_EVENT,
        &smds::lab::smdp::delete_event_body(eid, event_id),
    )
    .await
    .expect("answer")
}

/// Starts `smds serve` (this build's, or the binary named by `SMDS_BIN`) on 127.0.0.1:0 with no admin listener, the PKI `pki`, the data directory
/// `data` and optionally a config file, and returns the child and its HTTPS port (read from its
/// first stdout line).
pub fn spawn_serve(pki: &Path, data: &Path, config: Option<&Path>) -> (std::process::Child, u16) {
    // Benchmarks compare server builds with the same client: SMDS_BIN names another binary.
    let bin = std::env::var_os("SMDS_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_smds").into());
    spawn_serve_bin(&bin, pki, data, config)
}

/// [`spawn_serve`] of a given `smds` binary.
pub fn spawn_serve_bin(
    bin: &std::ffi::OsStr,
    pki: &Path,
    data: &Path,
    config: Option<&Path>,
) -> (std::process::Child, u16) {
    use std::io::BufRead;
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--no-admin".as_ref(),
        "--pki".as_ref(),
        pki.as_os_str(),
        "--data-dir".as_ref(),
        data.as_os_str(),
    ];
    if let Some(c) = config {
        args.extend(["--config".as_ref(), c.as_os_str()]);
    }
    let mut child = std::process::Command::new(bin)
        .arg("serve")
        .args(args)
        // Benchmarks run the server at the level operators use: SMDS_SERVE_LOG=info.
        .env(
            "RUST_LOG",
            std::env::var("SMDS_SERVE_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("smds serve starts");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("first line");
    let port = line
        .split_whitespace()
        .find(|w| w.starts_with("https://"))
        .and_then(|w| w.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"));
    (child, port)
}

/// A process's resident memory in MiB, from /proc.
pub fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// `GET path` on a plain-HTTP (admin) listener: the whole answer, status line and headers too.
#[allow(dead_code)]
pub async fn admin_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    out
}

/// Runs this build's `smds` with `args`, which must succeed: its standard output.
#[allow(dead_code)]
pub fn run_smds<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_smds"))
        .args(args)
        .output()
        .expect("smds runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
