//! The `smds` command line: the server (`serve`), database inspection (`events`), and the lab's
//! SM-DP+ client (`event register|delete`).

use clap::{Args, Parser, Subcommand};
use smds::client::{self, Connection, Endpoint};
use smds::config::{Config, FileConfig};
use smds::pki::{self, ServerPki};
use smds::server::Server;
use smds::store::{Store, WriterConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// SM-DS (SGP.22 discovery server) for eSIM labs, and the lab's client tools.
#[derive(Parser)]
#[command(name = "smds", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the SM-DS: ES11 (device discovery) and ES12 (SM-DP+ event registration, mutual TLS) on one HTTPS port.
    ///
    /// With no arguments it listens on 127.0.0.1:8443, keeps its database in ./smds-data, and on first
    /// start mints a development PKI in ./smds-data/pki (its own CI, CERT.DSauth, CERT.DS.TLS for
    /// "localhost", plus SM-DP+ and eUICC credentials for lab clients), printing where they are and
    /// how to use them. --pki DIR uses a `pki-tool init` directory instead, e.g. one minted under the
    /// GSMA Test CI with `pki-tool init --profile sgp26-v1.5 --keys ...`, which test eUICCs trust.
    ///
    /// /metrics (Prometheus) and /admin/events are served over plain HTTP on --admin-listen
    /// (127.0.0.1:8444 by default; loopback only unless you say otherwise).
    Serve(ServeArgs),
    /// Inspect stored events (reads the database, or asks the running server's admin listener).
    #[command(subcommand)]
    Events(EventsCommand),
    /// Act as an SM-DP+: register or delete an event over ES12 (mutually authenticated TLS).
    #[command(subcommand)]
    Event(EventCommand),
    /// Act as a device (LPA + software eUICC): ask the SM-DS for pending events over ES11.
    ///
    /// The eUICC's certificate and key, its EUM certificate and CI come from --certdir (a `pki-tool
    /// init` directory or an SGP.26 set). Like a real eUICC it verifies CERT.DSauth against its CI
    /// and serverSignature1, and refuses a server that fails; then it signs euiccSigned1 with
    /// EUICCInfo2 and DeviceInfo and prints the events.
    Discover(DiscoverArgs),
}

#[derive(Args)]
struct DiscoverArgs {
    /// The SM-DS, e.g. https://localhost:8443
    #[arg(long, value_name = "URL")]
    server: String,
    /// Directory with CI, EUM and eUICC certificates and the eUICC key.
    #[arg(long, value_name = "DIR")]
    certdir: PathBuf,
    /// Which eUICC (one issued under eUICC/<EID>/); default: the hierarchy's own.
    #[arg(long)]
    eid: Option<String>,
    #[arg(long, default_value = "nist", value_parser = ["nist", "brainpool"])]
    curve: String,
    /// An EventID, as an LPA sends when following a cascade from the Root SM-DS.
    #[arg(long, value_name = "ID")]
    matching_id: Option<String>,
    /// CI certificate(s) for the SM-DS's TLS certificate; default: the certdir's NIST CI.
    #[arg(long, value_name = "FILE")]
    ca: Vec<PathBuf>,
    /// The address sent as smdpAddress; default: host[:port] of --server.
    #[arg(long, value_name = "HOST")]
    address: Option<String>,
    /// Path family: es9plus (lpac, euicc-go) or es11.
    #[arg(long, default_value = "es9plus", value_parser = ["es9plus", "es11"])]
    paths: String,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    #[arg(long, default_value_t = 15)]
    timeout: u64,
}

#[derive(Args)]
struct ServeArgs {
    /// TOML configuration file (keys: listen, admin_listen, data_dir, hostname, pki, [limits]).
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
    /// Log format.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
}

#[derive(Args)]
struct DbArgs {
    /// Data directory of the server [default: ./smds-data].
    #[arg(long, value_name = "DIR", default_value = "./smds-data")]
    data_dir: PathBuf,
    /// Admin listener to ask when the server is running and holds the database.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8444")]
    admin: SocketAddr,
}

#[derive(Subcommand)]
enum EventsCommand {
    /// List events (FIFO order per EID), as JSON lines.
    List {
        #[arg(long)]
        eid: Option<String>,
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Count stored events.
    Count {
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Args)]
struct SmdpArgs {
    /// The SM-DS, e.g. https://localhost:8443
    #[arg(long, value_name = "URL")]
    server: String,
    /// The SM-DP+'s TLS certificate (CERT.DP.TLS, NIST P-256; DER or PEM).
    #[arg(long, value_name = "FILE")]
    cert: PathBuf,
    /// Its private key.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// CI certificate(s) the SM-DS's TLS certificate must chain to.
    #[arg(long, value_name = "FILE", required = true)]
    ca: Vec<PathBuf>,
    /// Print the SM-DS's answer as JSON.
    #[arg(long)]
    json: bool,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 15)]
    timeout: u64,
}

#[derive(Subcommand)]
enum EventCommand {
    /// ES12.RegisterEvent: tell the SM-DS a profile is waiting for EID at SM-DP+ address.
    Register {
        #[arg(long)]
        eid: String,
        #[arg(long, value_name = "ID")]
        event_id: String,
        /// The SM-DP+ address the LPA should contact (host[:port], no scheme).
        #[arg(long, value_name = "HOST")]
        smdp_address: String,
        /// Ask an Alternative SM-DS to cascade the event to the Root SM-DS.
        #[arg(long)]
        forwarding: Option<bool>,
        #[command(flatten)]
        smdp: SmdpArgs,
    },
    /// ES12.DeleteEvent: remove an event this SM-DP+ registered.
    Delete {
        #[arg(long)]
        eid: String,
        #[arg(long, value_name = "ID")]
        event_id: String,
        #[command(flatten)]
        smdp: SmdpArgs,
    },
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn print_first_start(pki_dir: &Path, listen: SocketAddr, hostname: &str) {
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
    println!("  cargo run --release -p smds -- events list");
    println!();
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

async fn serve(a: ServeArgs) -> Result<(), String> {
    init_logging(&a.log_format);
    let file = a.config.as_deref().map(FileConfig::load).transpose()?;
    let cfg = Config::resolve(
        file,
        a.listen,
        a.admin_listen,
        a.no_admin,
        a.data_dir,
        a.hostname,
        a.pki,
    )?;
    let now = pki_tool::time::now();
    let (pki_dir, minted) = match &cfg.pki {
        Some(dir) => (dir.clone(), false),
        None => pki::ensure_dev_pki(
            &cfg.data_dir,
            cfg.hostname.as_deref().unwrap_or("localhost"),
        )?,
    };
    let server_pki = ServerPki::load(&pki_dir, now)?;
    let hostname = cfg
        .hostname
        .clone()
        .or_else(|| server_pki.tls_hostname.clone())
        .unwrap_or_else(|| "localhost".into());
    if minted {
        print_first_start(&pki_dir, cfg.listen, &hostname);
    }
    let server = Server::start(&cfg, &server_pki, None).await?;
    tracing::info!(
        listen = %server.addr,
        admin = ?server.admin_addr,
        hostname = %hostname,
        pki = %pki_dir.display(),
        database = %cfg.database_path().display(),
        cis = server_pki.cis.len(),
        "SM-DS started"
    );
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
    tracing::info!("store flushed; bye");
    Ok(())
}

async fn admin_get(addr: SocketAddr, path: &str) -> Result<serde_json::Value, String> {
    let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| {
        format!("the database is in use and the admin listener {addr} does not answer: {e}")
    })?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let req = hyper::Request::get(path)
        .header("host", addr.to_string())
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if !status.is_success() {
        return Err(format!(
            "admin listener: HTTP {status}: {}",
            String::from_utf8_lossy(&body).trim()
        ));
    }
    serde_json::from_slice(&body).map_err(|e| e.to_string())
}

/// Opens the database directly, or tells the caller to use the admin listener instead.
fn open_db(db: &DbArgs) -> Result<Option<Store>, String> {
    let path = db.data_dir.join("events.redb");
    if !path.exists() {
        return Err(format!(
            "{}: no event database here (is --data-dir right?)",
            path.display()
        ));
    }
    match Store::open(&path, WriterConfig::default()) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.to_string().contains("already open") => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

async fn events(c: EventsCommand) -> Result<(), String> {
    match c {
        EventsCommand::List { eid, limit, db } => {
            let eid = eid
                .map(|e| pki_tool::Eid::parse(&e).map_err(|err| format!("--eid {e}: {err}")))
                .transpose()?;
            let list: Vec<serde_json::Value> = match open_db(&db)? {
                Some(store) => {
                    let v = store.list(eid.as_ref(), limit).map_err(|e| e.to_string())?;
                    store.shutdown().await;
                    v.into_iter()
                        .filter_map(|e| serde_json::to_value(e).ok())
                        .collect()
                }
                None => {
                    let mut path = format!("/admin/events?limit={limit}");
                    if let Some(e) = &eid {
                        path.push_str(&format!("&eid={e}"));
                    }
                    admin_get(db.admin, &path).await?["events"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                }
            };
            for e in list {
                println!("{e}");
            }
            Ok(())
        }
        EventsCommand::Count { db } => {
            let n = match open_db(&db)? {
                Some(store) => {
                    let n = store.count().map_err(|e| e.to_string())?;
                    store.shutdown().await;
                    n
                }
                None => admin_get(db.admin, "/admin/events/count").await?["count"]
                    .as_u64()
                    .unwrap_or(0),
            };
            println!("{n}");
            Ok(())
        }
    }
}

async fn event(c: EventCommand) -> Result<bool, String> {
    let (smdp, path, body) = match c {
        EventCommand::Register {
            eid,
            event_id,
            smdp_address,
            forwarding,
            smdp,
        } => (
            smdp,
            client::REGISTER_EVENT_PATH,
            client::register_event_body(&eid, &event_id, &smdp_address, forwarding),
        ),
        EventCommand::Delete {
            eid,
            event_id,
            smdp,
        } => (
            smdp,
            client::DELETE_EVENT_PATH,
            client::delete_event_body(&eid, &event_id),
        ),
    };
    let endpoint = Endpoint::parse(&smdp.server)?;
    let tls = client::smdp_tls_config(&smdp.cert, &smdp.key, &smdp.ca)?;
    let timeout = Duration::from_secs(smdp.timeout.max(1));
    let result = tokio::time::timeout(timeout, async {
        let mut conn = Connection::open(&endpoint, tls, timeout).await?;
        conn.call(path, &body).await
    })
    .await
    .map_err(|_| format!("no answer from {} within {timeout:?}", smdp.server))??;
    if smdp.json {
        println!("{}", result.body);
    } else if result.is_success() {
        println!(
            "{}: Executed-Success",
            if path == client::REGISTER_EVENT_PATH {
                "registerEvent"
            } else {
                "deleteEvent"
            }
        );
    } else {
        println!(
            "{}: {} {} {}",
            result.status,
            result.code().unwrap_or_default(),
            result.message.clone().unwrap_or_default(),
            if result.http_status == 200 {
                String::new()
            } else {
                format!("(HTTP {})", result.http_status)
            }
        );
    }
    Ok(result.is_success())
}

async fn discover(a: DiscoverArgs) -> Result<bool, String> {
    use smds::discovery::{self, Discovery, DiscoveryOptions, PathFamily, SoftEuicc};
    let curve = if a.curve == "brainpool" {
        pki_tool::Curve::BrainpoolP256r1
    } else {
        pki_tool::Curve::NistP256
    };
    let eid = a
        .eid
        .as_deref()
        .map(|e| pki_tool::Eid::parse(e).map_err(|err| format!("--eid {e}: {err}")))
        .transpose()?;
    let euicc = SoftEuicc::load(&a.certdir, curve, eid.as_ref())?;
    let endpoint = Endpoint::parse(&a.server)?;
    let cas = if a.ca.is_empty() {
        let candidates = [
            a.certdir.join("CertificateIssuer/CERT_CI_ECDSA_NIST.der"),
            a.certdir.join("CI/CERT_CI_ECDSA_NIST.der"),
        ];
        let found: Vec<PathBuf> = candidates
            .into_iter()
            .filter(|p| p.exists())
            .take(1)
            .collect();
        if found.is_empty() {
            return Err(format!(
                "{}: no NIST CI to check the server's TLS certificate with; give --ca",
                a.certdir.display()
            ));
        }
        client::read_cas(&found)?
    } else {
        client::read_cas(&a.ca)?
    };
    let address = a.address.clone().unwrap_or_else(|| {
        if endpoint.port == 443 {
            endpoint.host.clone()
        } else {
            format!("{}:{}", endpoint.host, endpoint.port)
        }
    });
    let opts = DiscoveryOptions {
        endpoint,
        address,
        tls: discovery::lpa_tls_config(cas)?,
        paths: if a.paths == "es11" {
            PathFamily::Es11
        } else {
            PathFamily::Es9Plus
        },
        matching_id: a.matching_id.clone(),
        timeout: Duration::from_secs(a.timeout.max(1)),
        now: pki_tool::time::now(),
    };
    match discovery::discover(&euicc, &opts).await? {
        Discovery::Events {
            transaction_id,
            entries,
        } => {
            if a.json {
                let list: Vec<serde_json::Value> = entries
                    .iter()
                    .map(|e| serde_json::json!({"eventId": e.event_id, "rspServerAddress": e.rsp_server_address}))
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({"eid": euicc.eid.to_string(), "transactionId": transaction_id, "eventEntries": list})
                );
            } else if entries.is_empty() {
                println!("EID {}: no events", euicc.eid);
            } else {
                println!("EID {}: {} event(s)", euicc.eid, entries.len());
                for e in entries {
                    println!("  {}  {}", e.event_id, e.rsp_server_address);
                }
            }
            Ok(true)
        }
        Discovery::Failed { step, result } => {
            if a.json {
                println!("{}", result.body);
            } else {
                println!(
                    "{step}: {} {} {}",
                    result.status,
                    result.code().unwrap_or_default(),
                    result.message.clone().unwrap_or_default()
                );
            }
            Ok(false)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("smds: error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(a) => serve(a).await.map(|_| true),
            Command::Events(c) => events(c).await.map(|_| true),
            Command::Event(c) => event(c).await,
            Command::Discover(a) => discover(a).await,
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("smds: error: {e}");
            ExitCode::from(2)
        }
    }
}
