//! ES11 transactions need no server state: a flood of InitiateAuthentication far past the old
//! session cap leaves the server's memory flat and real devices served, and a transaction
//! started at one node completes at another that shares the session key file.

mod support;

use pki_tool::Curve;
use serde_json::json;
use smds::config::Limits;
use smds::lab::lpa::{self, Discovery};
use smds::lab::soft_euicc::SoftEuicc;
use smds::sgp22::Es11PathFamily;
use smds::sgp22::requests::b64_encode;
use std::time::{Duration, Instant};
use support::*;

fn initiate_body(euicc: &SoftEuicc, address: &str) -> serde_json::Value {
    json!({
        "smdpAddress": address,
        "euiccChallenge": b64_encode(&[7u8; 16]),
        "euiccInfo1": b64_encode(&euicc.euicc_info1().expect("info1")),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_initiate_authentication_flood_stores_nothing() {
    let tmp = TempDir::new("stateless-flood");
    let pki = tmp.0.join("pki");
    mint(&pki, "default", None);
    let (mut child, port) = spawn_serve(&pki, &tmp.0.join("data"), None);
    let euicc = SoftEuicc::load(&pki, Curve::NistP256, None).expect("eUICC");
    let address = format!("localhost:{port}");
    let endpoint = smds::lab::https::Endpoint::localhost(port);
    let tls = lpa_tls(&pki);
    let body = initiate_body(&euicc, &address);
    // Warm up, then measure, then 110,000 more (past the old 100,000-session cap).
    let flood = |n: usize| {
        let (endpoint, tls, body) = (endpoint.clone(), tls.clone(), body.clone());
        async move {
            let mut tasks = Vec::new();
            for _ in 0..8 {
                let (endpoint, tls, body) = (endpoint.clone(), tls.clone(), body.clone());
                tasks.push(tokio::spawn(async move {
                    let mut c =
                        smds::lab::https::Connection::open(&endpoint, tls, Duration::from_secs(10))
                            .await
                            .expect("connect");
                    let mut ok = 0;
                    for _ in 0..n / 8 {
                        let r = c
                            .call(Es11PathFamily::Es9Plus.initiate_authentication(), &body)
                            .await
                            .expect("answer");
                        ok += usize::from(r.is_success());
                    }
                    ok
                }));
            }
            let mut ok = 0;
            for t in tasks {
                ok += t.await.expect("task");
            }
            ok
        }
    };
    assert_eq!(flood(8_000).await, 8_000);
    let before = rss_mib(child.id());
    let started = Instant::now();
    let ok = flood(110_000).await;
    let after = rss_mib(child.id());
    println!(
        "{ok} InitiateAuthentications in {:.1} s; server RSS {before:.1} MiB before, {after:.1} MiB after",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(ok, 110_000, "every InitiateAuthentication is answered");
    assert!(
        after < before + 16.0,
        "server memory grew from {before:.1} to {after:.1} MiB"
    );
    // A real device is still served.
    let options = lpa::DiscoveryOptions {
        endpoint: endpoint.clone(),
        address: address.clone(),
        tls: tls.clone(),
        paths: Es11PathFamily::Es9Plus,
        matching_id: None,
        timeout: Duration::from_secs(10),
        now: pki_tool::time::now(),
    };
    assert!(matches!(
        lpa::discover(&euicc, &options).await.expect("discovery"),
        Discovery::Events { .. }
    ));
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_started_at_one_node_completes_at_another() {
    let tmp = TempDir::new("stateless-nodes");
    let pki = tmp.0.join("pki");
    mint(&pki, "default", None);
    let key = tmp.0.join("session.key");
    let node = |name: &str| {
        let mut cfg = loopback_config(&pki, &tmp.0.join(name), Limits::default());
        cfg.session_key_file = Some(key.clone());
        cfg
    };
    let a = start(&pki, &node("a"), None).await;
    let b = start(&pki, &node("b"), None).await;
    let mut dp = connect(&b, smdp(&pki, "", &pki)).await;
    assert!(register(&mut dp, EID, "at-b").await.is_success());
    let euicc = SoftEuicc::load(&pki, Curve::NistP256, None).expect("eUICC");
    let tls = lpa_tls(&pki);
    // Both nodes answer for "localhost", whatever port the device reached.
    let address = "localhost";
    let mut at_a =
        smds::lab::https::Connection::open(&endpoint(&a), tls.clone(), Duration::from_secs(10))
            .await
            .expect("connect");
    let body = initiate_and_answer(&mut at_a, &euicc, address).await;
    let mut at_b =
        smds::lab::https::Connection::open(&endpoint(&b), tls.clone(), Duration::from_secs(10))
            .await
            .expect("connect");
    let done = at_b
        .call(Es11PathFamily::Es9Plus.authenticate_client(), &body)
        .await
        .expect("answer");
    assert!(done.is_success(), "{:?}", done.body);
    assert_eq!(done.body["eventEntries"][0]["eventId"], "at-b");
    // Replayed at the same node: refused.
    let again = at_b
        .call(Es11PathFamily::Es9Plus.authenticate_client(), &body)
        .await
        .expect("answer");
    assert_eq!(again.code().as_deref(), Some("8.10.1/3.9"));
    a.stop().await;
    b.stop().await;

    // A node with another session key does not accept it.
    let mut other = loopback_config(&pki, &tmp.0.join("c"), Limits::default());
    other.session_key_file = Some(tmp.0.join("other.key"));
    let c = start(&pki, &other, None).await;
    let mut at_c = smds::lab::https::Connection::open(&endpoint(&c), tls, Duration::from_secs(10))
        .await
        .expect("connect");
    let refused = at_c
        .call(Es11PathFamily::Es9Plus.authenticate_client(), &body)
        .await
        .expect("answer");
    assert_eq!(
        refused.code().as_deref(),
        Some("8.1/6.1"),
        "{:?}",
        refused.body
    );
    c.stop().await;
}
