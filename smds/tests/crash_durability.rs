//! Nothing acknowledged is lost: the server process is killed with SIGKILL while clients keep
//! registering events; after a restart every acknowledged event is there, the database is
//! consistent, and only events that were attempted exist.

mod support;

use smds::lab::https::{Connection, Endpoint};
use smds::store::{EventAdmin, EventStore, RedbStore, WriterConfig};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;

/// Starts `smds serve` on `data`, with the per-EID bound lifted (all events go to one EID here).
fn spawn_server(pki: &Path, data: &Path) -> (Child, u16) {
    let config = data.with_extension("toml");
    std::fs::write(
        &config,
        "[limits]\nmax_events_per_eid = 1000000\nmax_events_per_eid_all_owners = 1000000\n",
    )
    .expect("config");
    spawn_serve(pki, data, Some(&config))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_registrations_loses_nothing_acknowledged() {
    let tmp = TempDir::new("crash");
    let pki = tmp.0.join("pki");
    mint(&pki, "default", None);
    let data = tmp.0.join("data");
    let (mut child, port) = spawn_server(&pki, &data);
    let endpoint = Endpoint::localhost(port);
    let tls = smdp(&pki, "", &pki);
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let attempted = Arc::new(Mutex::new(BTreeSet::new()));
    let mut tasks = Vec::new();
    for worker in 0..16 {
        let (endpoint, tls, acked, attempted) = (
            endpoint.clone(),
            tls.clone(),
            acked.clone(),
            attempted.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let Ok(mut conn) = Connection::open(&endpoint, tls, Duration::from_secs(10)).await
            else {
                return;
            };
            for i in 0.. {
                let id = format!("w{worker}-{i}");
                attempted.lock().expect("lock").insert(id.clone());
                let body = smds::lab::smdp::register_event_body(EID, &id, "smdp.example.com", None);
                match tokio::time::timeout(
                    Duration::from_secs(5),
                    conn.call(smds::sgp22::paths::path::ES12_REGISTER_EVENT, &body),
                )
                .await
                {
                    Ok(Ok(r)) if r.is_success() => {
                        acked.lock().expect("lock").insert(id);
                    }
                    Ok(Ok(r)) => panic!("unexpected answer {:?}", r.body),
                    _ => return,
                }
            }
        }));
    }
    // Let the load run, then kill the server mid-flight.
    let waited = std::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if acked.lock().expect("lock").len() >= 400 {
            break;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "the load did not get 400 acknowledgements in 60 s"
        );
        assert!(
            !tasks.iter().all(|t| t.is_finished()),
            "every client stopped before 400 acknowledgements"
        );
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.lock().expect("lock").clone();
    let attempted = attempted.lock().expect("lock").clone();
    assert!(acked.len() >= 400);

    // The server restarts on the same database...
    let (mut child, port) = spawn_server(&pki, &data);
    let mut conn = Connection::open(
        &Endpoint::localhost(port),
        smdp(&pki, "", &pki),
        Duration::from_secs(10),
    )
    .await
    .expect("restarted server answers");
    assert!(register(&mut conn, EID, "after-restart").await.is_success());
    workspace_tests::common::send_signal(child.id(), "TERM");
    let _ = child.wait();

    // ... and every acknowledged event is there, consistently, and nothing was invented.
    let store = RedbStore::open(&data.join("events.redb"), WriterConfig::default()).expect("open");
    let n = store.check_integrity().await.expect("consistent database");
    let stored: BTreeSet<String> = store
        .events_for(&pki_tool::Eid::parse(EID).expect("eid"))
        .await
        .expect("read")
        .into_iter()
        .map(|e| e.record.event_id.to_string())
        .collect();
    assert_eq!(n as usize, stored.len());
    let missing: Vec<_> = acked.difference(&stored).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    for id in &stored {
        assert!(
            id == "after-restart" || attempted.contains(id),
            "{id} was never attempted"
        );
    }
    println!(
        "acknowledged {}, stored {}, attempted {}",
        acked.len(),
        stored.len(),
        attempted.len()
    );
    store.shutdown().await;
}
