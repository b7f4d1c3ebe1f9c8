//! Against a real PostgreSQL server started by the test (see `workspace_tests::postgres`).

use super::*;
use crate::store::Backend;
use crate::store::contract;
use std::sync::Arc;
use workspace_tests::postgres::Postgres;

async fn store(url: &str, per_owner: usize, all: usize) -> PgStore {
    let opts = PgOptions::new(url.parse().expect("url"));
    PgStore::connect(&opts, per_owner, all)
        .await
        .expect("connect")
}

#[tokio::test]
async fn keeps_the_store_contract() {
    let pg = Postgres::start();
    let s = store(&pg.create_database("a"), 100, 1000).await;
    contract::fifo_duplicates_and_ownership(&s).await;
    // The pipelined statements ran in order, in one transaction: the EID's lock row and its
    // first event were written by the same one.
    let fresh = "89049032123451234512345678901332";
    let r = s
        .register_event(contract::event(fresh, "first", "dp1"))
        .await;
    assert!(matches!(r, Ok(RegisterOutcome::Registered { .. })), "{r:?}");
    assert_eq!(
        pg.psql(
            "a",
            &format!(
                "SELECT e.xmin::text = l.xmin::text FROM smds_events e JOIN smds_eids l USING (eid) WHERE eid = '{fresh}'"
            )
        ),
        "t"
    );
    let s = store(&pg.create_database("b"), 3, 5).await;
    contract::bounds_per_owner_and_backstop(&s).await;
    contract::used_transactions(&s).await;
    let s = store(&pg.create_database("c"), 10, 20).await;
    contract::cascade_state(&s).await;
    contract::ec_ids(&s).await;
    contract::push_queue(&s).await;
}

#[tokio::test]
async fn nodes_racing_on_one_database_keep_uniqueness_and_bounds() {
    let pg = Postgres::start();
    let url = pg.create_database("race");
    // Four nodes start at once on an empty database: the schema is created exactly once.
    let mut starts = Vec::new();
    for _ in 0..4 {
        let url = url.clone();
        starts.push(tokio::spawn(async move { store(&url, 10, 1000).await }));
    }
    let mut nodes: Vec<Arc<dyn Backend>> = Vec::new();
    for s in starts {
        nodes.push(Arc::new(s.await.expect("task")));
    }
    assert_eq!(
        pg.psql("race", "SELECT count(*) FROM smds_schema_migrations"),
        schema::MIGRATIONS.len().to_string(),
        "each migration applied once"
    );
    contract::racing_writers(&nodes, 10).await;
    // A second start on a migrated database changes nothing.
    store(&url, 10, 1000).await;
    assert_eq!(
        pg.psql("race", "SELECT count(*) FROM smds_schema_migrations"),
        schema::MIGRATIONS.len().to_string()
    );
}

#[tokio::test]
async fn a_schema_from_a_newer_smds_is_refused() {
    let pg = Postgres::start();
    let url = pg.create_database("newer");
    store(&url, 10, 100).await;
    pg.psql(
        "newer",
        "INSERT INTO smds_schema_migrations VALUES (99, 'future', 0)",
    );
    let err = PgStore::connect(&PgOptions::new(url.parse().expect("url")), 10, 100)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("version 99") && err.contains("upgrade smds"),
        "{err}"
    );
}

#[tokio::test]
async fn outages_give_prompt_errors_and_the_store_recovers() {
    let mut pg = Postgres::start();
    let url = pg.create_database("outage");
    let mut opts = PgOptions::new(url.parse().expect("url"));
    opts.timeout = Duration::from_secs(2);
    let s = PgStore::connect(&opts, 100, 1000).await.expect("connect");
    let r = s
        .register_event(contract::event(contract::EID1, "before", "dp"))
        .await;
    assert!(matches!(r, Ok(RegisterOutcome::Registered { .. })), "{r:?}");
    pg.stop(true);
    for id in ["during-1", "during-2"] {
        let t = std::time::Instant::now();
        let r = s
            .register_event(contract::event(contract::EID1, id, "dp"))
            .await;
        assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        let r = s
            .events_for(&Eid::parse(contract::EID1).expect("valid"))
            .await;
        assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
    }
    pg.resume();
    let r = s
        .register_event(contract::event(contract::EID1, "after", "dp"))
        .await;
    assert!(matches!(r, Ok(RegisterOutcome::Registered { .. })), "{r:?}");
    assert_eq!(contract::ids(&s, contract::EID1).await, ["before", "after"]);
}

#[tokio::test]
async fn an_unreachable_database_fails_the_start_naming_it_without_the_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let url = format!("postgres://smds:hunter2@127.0.0.1:{port}/events");
    let mut opts = PgOptions::new(url.parse().expect("url"));
    opts.timeout = Duration::from_secs(1);
    let err = PgStore::connect(&opts, 1, 1)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains(&format!("postgres://smds@127.0.0.1:{port}/events")),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
}

#[tokio::test]
async fn tls_to_the_database_is_verified() {
    let (pg, ca) = Postgres::start_tls();
    let url = pg.create_database("tls");
    let mut opts = PgOptions::new(format!("{url}?sslmode=require").parse().expect("url"));
    opts.ca_file = Some(ca.clone());
    let s = PgStore::connect(&opts, 10, 100)
        .await
        .expect("connects over TLS");
    contract::used_transactions(&s).await;
    assert_eq!(
        pg.psql(
            "tls",
            "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE ssl AND application_name = 'smds'"
        ),
        "1",
        "the store's connection is encrypted"
    );
    // A database certificate from a CA that is not configured is refused.
    let (_other, other_ca) = Postgres::start_tls();
    opts.ca_file = Some(other_ca);
    opts.timeout = Duration::from_secs(2);
    let err = PgStore::connect(&opts, 10, 100)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    // A configured CA with a URL that does not name sslmode: TLS or nothing, never plain.
    let plain = Postgres::start();
    let mut opts = PgOptions::new(plain.create_database("plain").parse().expect("url"));
    opts.ca_file = Some(ca);
    opts.timeout = Duration::from_secs(2);
    let err = PgStore::connect(&opts, 10, 100)
        .await
        .err()
        .expect("refused: the server offers no TLS")
        .to_string();
    assert!(err.to_lowercase().contains("tls"), "{err}");
}
