//! `smds events list|count`: the stored events, read from the database directly, or from the
//! running server's admin listener when the server holds the database.

use clap::{Args, Subcommand};
use smds::store::retention::{self, PurgeFilter};
use smds::store::{Backend, PgOptions, PgStore, RedbStore, StoreError, StoreUrl, WriterConfig};
use smds::types::EventId;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Args)]
pub struct DbArgs {
    /// The server's PostgreSQL store (postgres://user@host:port/db), read directly; without it,
    /// the redb database in --data-dir.
    #[arg(long, value_name = "URL")]
    store: Option<StoreUrl>,
    /// Data directory of the server (its events.redb).
    #[arg(long, value_name = "DIR", default_value = "./smds-data")]
    data_dir: PathBuf,
    /// Admin listener to ask when the server is running and holds the database.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8444")]
    admin: SocketAddr,
    /// File holding the admin listener's bearer token (the server's admin_token_file), if it has one.
    #[arg(long, value_name = "FILE")]
    admin_token_file: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum EventsCommand {
    /// List events (FIFO order per EID), as JSON lines.
    List {
        /// Only this EID's events.
        #[arg(long)]
        eid: Option<String>,
        /// At most this many events.
        #[arg(long, default_value_t = 1000, value_name = "N")]
        limit: usize,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Count stored events.
    Count {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Remove events whatever their SM-DP+ (an operator's action; SGP.22 leaves deletion to the
    /// SM-DP+): one event (--eid and --event-id), all of an EID (--eid), or those registered
    /// before a time (--older-than-days), combined as given. Each removal is an audit line in
    /// the server's log; the removed events are printed as JSON lines.
    Purge {
        /// Only this EID's events.
        #[arg(long, required_unless_present = "older_than_days")]
        eid: Option<String>,
        /// Only the events with this EventID (needs --eid).
        #[arg(long, value_name = "ID", requires = "eid")]
        event_id: Option<String>,
        /// Only events registered more than this many days ago.
        #[arg(long, value_name = "DAYS")]
        older_than_days: Option<u64>,
        #[command(flatten)]
        db: DbArgs,
    },
}

async fn admin_get(db: &DbArgs, path: &str) -> Result<serde_json::Value, String> {
    admin_call(db, hyper::Method::GET, path).await
}

async fn admin_call(
    db: &DbArgs,
    method: hyper::Method,
    path: &str,
) -> Result<serde_json::Value, String> {
    let addr = db.admin;
    let token = match &db.admin_token_file {
        Some(f) => Some(
            std::fs::read_to_string(f)
                .map_err(|e| format!("{}: {e}", f.display()))?
                .trim()
                .to_string(),
        ),
        None => None,
    };
    let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| {
        format!("the database is in use and the admin listener {addr} does not answer: {e}")
    })?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = req
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

/// Opens the database directly, or tells the caller to use the admin listener instead (a
/// running server holds the redb file; PostgreSQL is always read directly).
async fn open_db(db: &DbArgs) -> Result<Option<Box<dyn Backend>>, String> {
    if let Some(url) = &db.store {
        let limits = smds::config::Limits::default();
        let store = PgStore::connect(
            &PgOptions::new(url.clone()),
            limits.max_events_per_eid,
            limits.max_events_per_eid_all_owners,
        )
        .await
        .map_err(|e| e.to_string())?;
        return Ok(Some(Box::new(store)));
    }
    let path = db.data_dir.join("events.redb");
    if !path.exists() {
        return Err(format!(
            "{}: no event database here (is --data-dir right?)",
            path.display()
        ));
    }
    match RedbStore::open(&path, WriterConfig::default()) {
        Ok(s) => Ok(Some(Box::new(s))),
        Err(e) if *e.root() == StoreError::Locked => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

pub async fn run(c: EventsCommand) -> Result<(), String> {
    match c {
        EventsCommand::List { eid, limit, db } => {
            let eid = eid
                .map(|e| pki_tool::Eid::parse(&e).map_err(|err| format!("--eid {e}: {err}")))
                .transpose()?;
            let list: Vec<serde_json::Value> = match open_db(&db).await? {
                Some(store) => {
                    let v = store
                        .list(eid.as_ref(), limit)
                        .await
                        .map_err(|e| e.to_string())?;
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
                    admin_get(&db, &path).await?["events"]
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
        EventsCommand::Purge {
            eid,
            event_id,
            older_than_days,
            db,
        } => {
            let eid = eid
                .map(|e| pki_tool::Eid::parse(&e).map_err(|err| format!("--eid {e}: {err}")))
                .transpose()?;
            let event_id = event_id
                .map(|e| EventId::parse(&e).map_err(|err| format!("--event-id {e:?}: {err}")))
                .transpose()?;
            let before = older_than_days.map(|d| {
                let secs = i64::try_from(d).unwrap_or(i64::MAX).saturating_mul(86_400);
                pki_tool::time::now().saturating_sub(secs)
            });
            let removed: Vec<serde_json::Value> = match open_db(&db).await? {
                Some(store) => {
                    let filter = PurgeFilter {
                        eid,
                        event_id,
                        registered_before: before,
                    };
                    let r =
                        retention::purge(store.as_ref(), &filter, usize::MAX, "smds events purge")
                            .await
                            .map_err(|e| e.to_string());
                    store.shutdown().await;
                    r?.into_iter()
                        .filter_map(|e| serde_json::to_value(e).ok())
                        .collect()
                }
                None => {
                    let mut q = Vec::new();
                    if let Some(e) = &eid {
                        q.push(format!("eid={e}"));
                    }
                    if let Some(id) = &event_id {
                        let enc = percent_encoding::utf8_percent_encode(
                            id.as_str(),
                            percent_encoding::NON_ALPHANUMERIC,
                        );
                        q.push(format!("event_id={enc}"));
                    }
                    if let Some(t) = before {
                        q.push(format!("before={t}"));
                    }
                    let path = format!("/admin/events?{}", q.join("&"));
                    admin_call(&db, hyper::Method::DELETE, &path).await?["events"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                }
            };
            for e in &removed {
                println!("{e}");
            }
            eprintln!("{} event(s) removed", removed.len());
            Ok(())
        }
        EventsCommand::Count { db } => {
            let n = match open_db(&db).await? {
                Some(store) => {
                    let n = store.count().await.map_err(|e| e.to_string())?;
                    store.shutdown().await;
                    n
                }
                None => admin_get(&db, "/admin/events/count").await?["count"]
                    .as_u64()
                    .unwrap_or(0),
            };
            println!("{n}");
            Ok(())
        }
    }
}
