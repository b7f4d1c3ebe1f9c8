//! SGP.22 v3 push-service registration: the SM-DS advertises its push services in
//! serverSigned1.sessionContext (to push-capable eUICCs only), stores the token a device's eUICC
//! signs into ctxParams1 [3] and answers a signed pushServiceRegistrationResult; each event
//! registered later for that EID is POSTed to the lab push gateway on loopback, retried while the
//! gateway is down, and kept across a restart until delivered.

mod support;

use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use pki_tool::Curve;
use serde_json::Value;
use smds::asn1::ServerSigned1;
use smds::config::{Limits, PushServiceConfig};
use smds::lab::lpa::{self, Discovery};
use smds::lab::soft_euicc::SoftEuicc;
use smds::sgp22::responses::InitiateAuthenticationResponse;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;

const SERVICE: &str = "2.999.10.1";

/// A push gateway on loopback: records every POST body; answers 503 while `down`.
struct Gateway {
    port: u16,
    received: Arc<Mutex<Vec<Value>>>,
    down: Arc<AtomicBool>,
}

async fn gateway() -> Gateway {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let down = Arc::new(AtomicBool::new(false));
    let (r, d) = (received.clone(), down.clone());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (r, d) = (r.clone(), d.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let (r, d) = (r.clone(), d.clone());
                        async move {
                            let body = req.into_body().collect().await?.to_bytes();
                            let status = if d.load(Ordering::SeqCst) {
                                503
                            } else {
                                if let Ok(v) = serde_json::from_slice(&body) {
                                    r.lock().expect("lock").push(v);
                                }
                                204
                            };
                            let mut resp =
                                hyper::Response::new(http_body_util::Empty::<bytes::Bytes>::new());
                            *resp.status_mut() =
                                hyper::StatusCode::from_u16(status).expect("status");
                            Ok::<_, hyper::Error>(resp)
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    Gateway {
        port,
        received,
        down,
    }
}

/// Polls `f` for up to 30 s until it holds.
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..300 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// serverSigned1 as InitiateAuthentication answers `e` on a fresh connection.
async fn server_signed1(server: &smds::server::Server, lab: &Lab, e: &SoftEuicc) -> ServerSigned1 {
    use base64::Engine;
    let mut conn = connect(server, lpa_tls(&lab.pki)).await;
    let challenge = SoftEuicc::challenge().expect("challenge");
    let r = conn
        .call(
            "/gsma/rsp2/es9plus/initiateAuthentication",
            &serde_json::json!({
                "smdpAddress": "localhost",
                "euiccChallenge": base64::engine::general_purpose::STANDARD.encode(challenge),
                "euiccInfo1": base64::engine::general_purpose::STANDARD.encode(e.euicc_info1().expect("info1")),
            }),
        )
        .await
        .expect("answer");
    let r = InitiateAuthenticationResponse::from_result(&r).expect("initiated");
    rasn::der::decode(&r.server_signed1).expect("serverSigned1")
}

async fn push_service(kind: StoreKind) {
    let lab = Lab::new("push");
    let gw = gateway().await;
    let mut cfg = lab.config(Limits::default());
    cfg.push_services = vec![PushServiceConfig {
        oid: SERVICE.into(),
        gateway: format!("http://127.0.0.1:{}/notify", gw.port),
        ca_file: None,
    }];
    let (cfg, _pg) = kind.apply(cfg);
    let server = start(&lab.pki, &cfg, None).await;
    let opts = discovery_options(
        &server,
        &lab.pki,
        None,
        smds::sgp22::Es11PathFamily::Es9Plus,
    );

    // A v2 eUICC's serverSigned1 stays v2; a push-capable one is told of the service.
    let mut e = SoftEuicc::load(&lab.pki, Curve::NistP256, None).expect("eUICC");
    assert_eq!(
        server_signed1(&server, &lab, &e).await.session_context,
        None
    );
    e.push_registration = Some((None, "lab-token-1".into()));
    let ctx = server_signed1(&server, &lab, &e)
        .await
        .session_context
        .expect("sessionContext");
    let offered: Vec<String> = ctx
        .supported_push_services
        .unwrap_or_default()
        .iter()
        .map(|o| smds::asn1::dotted(o))
        .collect();
    assert_eq!(offered, [SERVICE]);

    // Registration: a signed result the eUICC verifies, refresh in 30 days.
    let before = pki_tool::time::now();
    match lpa::discover(&e, &opts).await.expect("answer") {
        Discovery::PushRegistered { refresh_time, .. } => {
            let t = refresh_time.expect("a refresh time");
            assert!((t - before - 30 * 86_400).abs() < 60, "{t}");
        }
        d => panic!("{d:?}"),
    }
    // A service not offered here is refused after authentication.
    let mut other = e.clone();
    other.push_registration = Some((Some("2.999.10.2".into()), "t".into()));
    match lpa::discover(&other, &opts).await.expect("answer") {
        Discovery::Failed { step, result } => {
            assert_eq!(
                (step, result.code()),
                ("AuthenticateClient", Some("8.1/3.1".into()))
            );
        }
        d => panic!("{d:?}"),
    }

    // An event for the EID reaches the gateway with the token.
    let mut dp = connect(&server, smdp(&lab.pki, "", &lab.pki)).await;
    assert!(register(&mut dp, EID, "ev-1").await.is_success());
    eventually("the first notification", || {
        gw.received.lock().expect("lock").len() == 1
    })
    .await;
    assert_eq!(
        gw.received.lock().expect("lock")[0],
        serde_json::json!({"pushService": SERVICE, "pushToken": "lab-token-1", "smdsAddress": "localhost"})
    );
    // Re-registering replaces the token.
    e.push_registration = Some((Some(SERVICE.into()), "lab-token-2".into()));
    assert!(matches!(
        lpa::discover(&e, &opts).await.expect("answer"),
        Discovery::PushRegistered { .. }
    ));

    // The gateway is down: the notification is retried, and kept across a restart.
    gw.down.store(true, Ordering::SeqCst);
    assert!(register(&mut dp, EID, "ev-2").await.is_success());
    let push = server.state.push.clone();
    eventually("a failed attempt", || push.metrics.figures().1 >= 1).await;
    drop(push);
    server.stop().await;
    gw.down.store(false, Ordering::SeqCst);
    let server = start(&lab.pki, &cfg, None).await;
    eventually("the notification kept across the restart", || {
        gw.received.lock().expect("lock").len() == 2
    })
    .await;
    assert_eq!(
        gw.received.lock().expect("lock")[1]["pushToken"],
        "lab-token-2"
    );
    let push = server.state.push.clone();
    eventually("an empty queue", || push.metrics.figures().3 == 0).await;
    drop(push);
    let metrics = admin_get(server.admin_addr.expect("admin"), "/metrics").await;
    assert!(
        metrics.contains("smds_push_notifications_delivered_total 1"),
        "{metrics}"
    );
    // The lab LPA's command line registers a token, and never prints it.
    let out = run_smds([
        "discover".into(),
        "--server".into(),
        format!("https://localhost:{}", server.addr.port()).into(),
        "--certdir".into(),
        lab.pki.clone().into_os_string(),
        "--push-token".into(),
        "cli-secret-token".into(),
    ]);
    assert!(out.contains("push token registered"), "{out}");
    assert!(!out.contains("cli-secret-token"), "{out}");
    server.stop().await;

    // The service is no longer configured: nothing is advertised, and what its tokens still
    // queue is dropped (counted), never sent and never left to pile up.
    let unconfigured = smds::config::Config {
        push_services: Vec::new(),
        ..cfg.clone()
    };
    let server = start(&lab.pki, &unconfigured, None).await;
    assert_eq!(
        server_signed1(&server, &lab, &e).await.session_context,
        None
    );
    let mut dp = connect(&server, smdp(&lab.pki, "", &lab.pki)).await;
    assert!(register(&mut dp, EID, "ev-3").await.is_success());
    let push = server.state.push.clone();
    eventually("the orphaned notification dropped", || {
        let (_, _, dropped, depth) = push.metrics.figures();
        dropped == 1 && depth == 0
    })
    .await;
    drop(push);
    assert_eq!(gw.received.lock().expect("lock").len(), 2);
    server.stop().await;
}

on_both_stores!(push_service);
