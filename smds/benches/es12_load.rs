//! `cargo bench -p smds --bench es12_load [-- SECONDS] [redb|postgres]`
//!
//! ES12 load: C concurrent keep-alive mutually authenticated TLS connections, each registering
//! events back to back against an in-process SM-DS on loopback. Reports durable registrations per
//! second and p50/p99 latency, next to the store's own single-commit rate measured in the same
//! run on the same disk: for redb one `Durability::Immediate` transaction per event, for
//! PostgreSQL (a server the bench starts, fsync on) one client inserting one row per committed
//! transaction. Both stores by default.
//!
//! Each row runs against a fresh server and database, and each client moves to a new EID every
//! [`EVENTS_PER_EID`] registrations, so no EID reaches the per-EID bound however fast the
//! machine is.

#[path = "../tests/support/mod.rs"]
mod support;

use pki_tool::Eid;
use smds::config::Limits;
use smds::identity::OwnerId;
use smds::lab::https::{Connection, Endpoint};
use smds::pki::ServerPki;
use smds::server::Server;
use smds::store::{EventRecord, EventStore, RedbStore, WriterConfig};
use smds::types::{EventId, RspServerAddress};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Registrations per EID before a client moves on: well under the per-EID bound (100).
const EVENTS_PER_EID: u64 = 20;

/// The EID of client `c`'s `n`th registration: each client has its own range.
fn eid(c: u64, n: u64) -> Eid {
    Eid::from_body(&format!(
        "89049032{:022}",
        c * 1_000_000_000_000 + n / EVENTS_PER_EID
    ))
    .expect("eid")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn single_commit_rate(dir: &std::path::Path, secs: f64) -> f64 {
    let store = RedbStore::open(&dir.join("single.redb"), WriterConfig::default()).expect("store");
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        store
            .register_event(EventRecord {
                eid: eid(0, n),
                event_id: EventId::parse(&format!("s{n}")).expect("event id"),
                rsp_server_address: RspServerAddress::parse("smdp.example.com").expect("address"),
                owner: OwnerId::new("bench"),
                owner_names: vec![],
                forwarding_indicator: false,
                registered_at: 0,
                forwarded: None,
                details: Default::default(),
            })
            .await
            .expect("register");
        n += 1;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    store.shutdown().await;
    rate
}

/// PostgreSQL's own rate of single-row committed transactions from one client.
async fn pg_single_commit_rate(url: &str, secs: f64) -> f64 {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
        .batch_execute("CREATE TABLE single_commit (id BIGINT PRIMARY KEY, body TEXT NOT NULL)")
        .await
        .expect("table");
    let insert = client
        .prepare("INSERT INTO single_commit VALUES ($1, $2)")
        .await
        .expect("prepare");
    let body = "x".repeat(120);
    let start = Instant::now();
    let mut n = 0i64;
    while start.elapsed().as_secs_f64() < secs {
        // Autocommit: each INSERT is one transaction, committed (and its WAL flushed) on its own.
        client.execute(&insert, &[&n, &body]).await.expect("insert");
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

async fn load(
    server: &Server,
    tls: Arc<rustls::ClientConfig>,
    clients: usize,
    secs: f64,
    tag: &str,
) -> (f64, Vec<Duration>) {
    let endpoint = Endpoint::localhost(server.addr.port());
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (endpoint, tls, tag) = (endpoint.clone(), tls.clone(), tag.to_string());
        tasks.push(tokio::spawn(async move {
            let mut conn = Connection::open(&endpoint, tls, Duration::from_secs(10))
                .await
                .expect("connect");
            let mut lat = Vec::new();
            let mut i = 0u64;
            while Instant::now() < deadline {
                let body = smds::lab::smdp::register_event_body(
                    eid(c as u64, i).as_str(),
                    &format!("{tag}-{c}-{i}"),
                    "smdp.example.com",
                    None,
                );
                let t = Instant::now();
                let r = conn
                    .call(smds::sgp22::paths::path::ES12_REGISTER_EVENT, &body)
                    .await
                    .expect("answer");
                assert!(r.is_success(), "{:?}", r.body);
                lat.push(t.elapsed());
                i += 1;
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    let rate = all.len() as f64 / start.elapsed().as_secs_f64();
    all.sort();
    (rate, all)
}

struct Bench {
    dir: std::path::PathBuf,
    pki: std::path::PathBuf,
    server_pki: ServerPki,
    tls: Arc<rustls::ClientConfig>,
    secs: f64,
}

impl Bench {
    /// Rows of 1, 8 and 32 clients, each on a fresh server and store (a new database of `pg`).
    async fn rows(
        &self,
        store: &str,
        single: f64,
        pg: Option<&workspace_tests::postgres::Postgres>,
    ) {
        for clients in [1usize, 8, 32] {
            let data = self.dir.join(format!("data-{store}-{clients}"));
            let mut cfg = support::loopback_config(&self.pki, &data, Limits::default());
            if let Some(pg) = pg {
                let url = pg.create_database(&format!("load{clients}"));
                let mut opts = smds::store::PgOptions::new(url.parse().expect("url"));
                opts.pool_size = 32;
                cfg.store = Some(opts);
            }
            let server = Server::start(&cfg, &self.server_pki, None)
                .await
                .expect("server");
            let (rate, lat) = load(
                &server,
                self.tls.clone(),
                clients,
                self.secs,
                &format!("c{clients}"),
            )
            .await;
            server.stop().await;
            let _ = std::fs::remove_dir_all(&data);
            println!(
                "{store:>8} ES12 registerEvent, {clients:>2} keep-alive mTLS clients: {rate:>7.0} durable registrations/s = {:>5.1}x single-commit; p50 {:.2} ms, p99 {:.2} ms ({} requests)",
                rate / single,
                percentile(&lat, 0.5).as_secs_f64() * 1e3,
                percentile(&lat, 0.99).as_secs_f64() * 1e3,
                lat.len()
            );
        }
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args = support::BenchArgs::parse(5.0);
    let scratch = workspace_tests::common::TempDir::new("bench");
    let dir = scratch.0.clone();
    let pki = dir.join("pki");
    support::mint(&pki, "default", None);
    let server_pki = ServerPki::load(&pki, pki_tool::time::now()).expect("pki loads");
    let tls = support::smdp(&pki, "", &pki);
    let secs = args.secs;
    let bench = Bench {
        dir,
        pki,
        server_pki,
        tls,
        secs,
    };
    if args.store("redb") {
        let single = single_commit_rate(&bench.dir, secs.min(3.0)).await;
        println!("single-commit redb rate (1 event per fsynced transaction): {single:.0} events/s");
        bench.rows("redb", single, None).await;
    }
    if args.store("postgres") {
        let pg = workspace_tests::postgres::Postgres::start();
        let url = pg.create_database("single");
        let single = pg_single_commit_rate(&url, secs.min(3.0)).await;
        println!(
            "single-commit PostgreSQL rate (1 row per committed transaction, 1 client): {single:.0} rows/s"
        );
        bench.rows("postgres", single, Some(&pg)).await;
    }
}
