//! The ES15 cascade end to end: an SM-DP+ registers at an Alternative SM-DS (DS2, SAN
//! 2.999.15.2, `testsmds1.example.com`) with forwarding; the Root (DS1) then hands devices the
//! Alternative's address and a fresh EventID, and discovery at the Alternative with that EventID
//! returns the SM-DP+'s entry. Deletions reach the Root, also after it was down; a Root that is
//! down or refuses leaves nothing behind. Two real servers on loopback, the Alternative on both
//! event stores.

mod support;

use pki_tool::hierarchy::Hierarchy;
use pki_tool::{Curve, Role};
use smds::config::{CascadeConfig, Config, EventIdMode, Limits};
use smds::lab::https::Endpoint;
use smds::lab::lpa::{self, Discovery, DiscoveryOptions};
use smds::lab::soft_euicc::SoftEuicc;
use smds::pki::ServerPki;
use smds::server::Server;
use smds::sgp22::paths::path;
use smds::sgp22::{Es11PathFamily, FunctionResult};
use std::path::Path;
use std::time::Duration;
use support::*;

const ALT_NAME: &str = "testsmds1.example.com";

fn issue_ds2(pki: &Path) {
    issue_instance(
        pki,
        Role::Dstls,
        "2",
        &[("smds_rid", "2.999.15.2"), ("smds_fqdn", ALT_NAME)],
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn start_root(lab: &Lab, port: u16, limits: Limits) -> Server {
    let cfg = Config {
        listen: format!("127.0.0.1:{port}").parse().expect("addr"),
        ..loopback_config(&lab.pki, &lab.tmp.0.join("root"), limits)
    };
    start(&lab.pki, &cfg, None).await
}

fn alternative_config(lab: &Lab, root_port: u16) -> Config {
    Config {
        smds_instance: Some("2".into()),
        cascade: Some(CascadeConfig {
            root: format!("localhost:{root_port}"),
            connect_to: None,
            address: None,
            event_ids: EventIdMode::Fresh,
            timeout: Duration::from_secs(3),
        }),
        admin_listen: Some("127.0.0.1:0".parse().expect("addr")),
        ..loopback_config(&lab.pki, &lab.tmp.0.join("alternative"), Limits::default())
    }
}

async fn start_alternative(lab: &Lab, cfg: &Config) -> Server {
    let pki = ServerPki::load_instance(&lab.pki, pki_tool::time::now(), Some("2")).expect("DS2");
    Server::start(cfg, &pki, None)
        .await
        .expect("alternative starts")
}

/// A discovery at `server` as the LPA reaches it by `name`: (eventId, rspServerAddress) pairs.
async fn discover_at(
    lab: &Lab,
    server: &Server,
    name: &str,
    matching_id: Option<&str>,
) -> Result<Vec<(String, String)>, String> {
    let euicc = SoftEuicc::load(&lab.pki, Curve::NistP256, None).expect("eUICC");
    Ok(discover_as(&euicc, lab, server, name, matching_id)
        .await?
        .into_iter()
        .map(|e| (e.event_id, e.rsp_server_address))
        .collect())
}

/// Discovery at `server` (reached by `name`) with `euicc`: its entries, or the failed step.
async fn discover_as(
    euicc: &SoftEuicc,
    lab: &Lab,
    server: &Server,
    name: &str,
    matching_id: Option<&str>,
) -> Result<Vec<smds::sgp22::responses::EventEntry>, String> {
    let port = server.addr.port();
    let opts = DiscoveryOptions {
        endpoint: Endpoint::parse(&format!("https://{name}:{port}"))
            .and_then(|e| e.with_connect_to(&format!("127.0.0.1:{port}")))
            .expect("endpoint"),
        address: name.to_string(),
        tls: lpa_tls(&lab.pki),
        paths: Es11PathFamily::Es9Plus,
        matching_id: matching_id.map(str::to_string),
        timeout: Duration::from_secs(10),
        now: pki_tool::time::now(),
    };
    match lpa::discover(euicc, &opts).await.expect("an answer") {
        Discovery::Events { entries, .. } => Ok(entries),
        Discovery::PushRegistered { .. } => panic!("a push registration answer"),
        Discovery::Failed { step, result } => {
            Err(format!("{step} {}", result.code().unwrap_or_default()))
        }
    }
}

async fn smdp_call(alt: &Server, lab: &Lab, p: &str, body: serde_json::Value) -> FunctionResult {
    // The SM-DP+ reaches the Alternative by its name, as it would in a real ecosystem.
    let port = alt.addr.port();
    let endpoint = Endpoint::parse(&format!("https://{ALT_NAME}:{port}"))
        .and_then(|e| e.with_connect_to(&format!("127.0.0.1:{port}")))
        .expect("endpoint");
    let mut conn = smds::lab::https::Connection::open(
        &endpoint,
        smdp(&lab.pki, "", &lab.pki),
        Duration::from_secs(10),
    )
    .await
    .expect("connects");
    conn.call(p, &body).await.expect("answer")
}

fn register(event_id: &str, forwarding: bool) -> serde_json::Value {
    let mut body = smds::lab::smdp::register_event_body(
        EID,
        event_id,
        "smdp.example.com",
        forwarding.then_some(true),
    );
    // The SGP.22 v3 EventRecordV3 inputs, which a forward carries to the Root.
    body["serviceProviderName"] = "Lab SP".into();
    body
}

fn delete(event_id: &str) -> serde_json::Value {
    smds::lab::smdp::delete_event_body(EID, event_id)
}

/// Polls `f` for up to 20 s until it holds.
async fn eventually(what: &str, mut f: impl AsyncFnMut() -> bool) {
    for _ in 0..200 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: not within 20 s");
}

async fn cascade_end_to_end(store: StoreKind) {
    let lab = Lab::new("cascade");
    issue_ds2(&lab.pki);
    let root_port = free_port();
    let root = start_root(&lab, root_port, Limits::default()).await;
    let (cfg, _pg) = store.apply(alternative_config(&lab, root_port));
    let alt = start_alternative(&lab, &cfg).await;

    // Forwarded: the Root shows the Alternative under a fresh EventID; following it at the
    // Alternative gives the SM-DP+'s entry.
    let r = smdp_call(
        &alt,
        &lab,
        path::ES12_REGISTER_EVENT,
        register("ev-1", true),
    )
    .await;
    assert!(r.is_success(), "{:?}", r.body);
    let at_root = discover_at(&lab, &root, "localhost", None)
        .await
        .expect("root");
    assert_eq!(at_root.len(), 1, "{at_root:?}");
    let (root_event_id, address) = at_root[0].clone();
    assert_eq!(address, ALT_NAME);
    assert!(
        root_event_id.starts_with("fwd-") && root_event_id != "ev-1",
        "{root_event_id}"
    );
    // A v3 device at the Root sees the SM-DP+'s v3 inputs in its signed EventRecordV3.
    let mut v3 = SoftEuicc::load(&lab.pki, Curve::NistP256, None).expect("eUICC");
    v3.euicc_signed_smds_response = true;
    v3.lpa_signed_smds_response = true;
    let signed = discover_as(&v3, &lab, &root, "localhost", None)
        .await
        .expect("root");
    assert_eq!(
        signed[0].details.service_provider_name(),
        Some("Lab SP"),
        "{signed:?}"
    );
    let followed = discover_at(&lab, &alt, ALT_NAME, Some(&root_event_id))
        .await
        .expect("alt");
    assert_eq!(
        followed,
        [("ev-1".to_string(), "smdp.example.com".to_string())]
    );
    // The lab LPA does both steps: `smds discover --follow`.
    let stdout = run_smds([
        "discover".into(),
        "--server".into(),
        format!("https://localhost:{root_port}").into(),
        "--certdir".into(),
        lab.pki.clone().into_os_string(),
        "--follow".into(),
        format!("{ALT_NAME}=127.0.0.1:{}", alt.addr.port()).into(),
    ]);
    assert!(
        stdout.contains(&format!(
            "ev-1  smdp.example.com  (via {ALT_NAME} {root_event_id})"
        )),
        "{stdout}"
    );

    // Not forwarded: the Root sees nothing of it.
    let r = smdp_call(
        &alt,
        &lab,
        path::ES12_REGISTER_EVENT,
        register("ev-local", false),
    )
    .await;
    assert!(r.is_success(), "{:?}", r.body);
    assert_eq!(
        discover_at(&lab, &root, "localhost", None)
            .await
            .expect("root")
            .len(),
        1
    );
    let at_alt = discover_at(&lab, &alt, ALT_NAME, None).await.expect("alt");
    assert_eq!(at_alt.len(), 2, "{at_alt:?}");

    // Deleted at the Alternative: gone at the Root too.
    let r = smdp_call(&alt, &lab, path::ES12_DELETE_EVENT, delete("ev-1")).await;
    assert!(r.is_success(), "{:?}", r.body);
    eventually("the Root's record deleted", async || {
        discover_at(&lab, &root, "localhost", None)
            .await
            .is_ok_and(|v| v.is_empty())
    })
    .await;

    // A forwarded event, then the Root goes down: a delete succeeds here and reaches the Root
    // once it is back; a forwarded registration fails with 8.9/5.1 and leaves nothing.
    let r = smdp_call(
        &alt,
        &lab,
        path::ES12_REGISTER_EVENT,
        register("ev-2", true),
    )
    .await;
    assert!(r.is_success(), "{:?}", r.body);
    root.stop().await;
    let r = smdp_call(&alt, &lab, path::ES12_DELETE_EVENT, delete("ev-2")).await;
    assert!(
        r.is_success(),
        "a delete does not wait for the Root: {:?}",
        r.body
    );
    let r = smdp_call(
        &alt,
        &lab,
        path::ES12_REGISTER_EVENT,
        register("ev-3", true),
    )
    .await;
    assert_eq!(r.code(), Some("8.9/5.1".into()), "{:?}", r.body);
    let r = smdp_call(&alt, &lab, path::ES12_DELETE_EVENT, delete("ev-3")).await;
    assert_eq!(
        r.code(),
        Some("8.9.5/3.9".into()),
        "nothing kept: {:?}",
        r.body
    );
    let at_alt = discover_at(&lab, &alt, ALT_NAME, None).await.expect("alt");
    assert_eq!(
        at_alt,
        [("ev-local".to_string(), "smdp.example.com".to_string())]
    );
    let queued = alt.state.cascade.as_ref().expect("cascade");
    eventually("a failed delivery counted", async || {
        queued.metrics.figures().delivery_failures > 0
    })
    .await;

    // What operators see meanwhile: two queued deletes (ev-2's, and ev-3's, whose copy the
    // Root might have made before it went silent) and their failures.
    let admin = alt.admin_addr.expect("admin listener");
    let view = admin_get(admin, "/admin/cascade").await;
    let json = view.split("\r\n\r\n").nth(1).unwrap_or_default();
    let doc: serde_json::Value = serde_json::from_str(json.trim()).expect("JSON");
    assert_eq!(doc["queue_depth"], 2, "{doc}");
    assert!(
        doc["queued_deletes"][0]["attempts"].as_u64() >= Some(1),
        "{doc}"
    );
    assert!(doc["queued_deletes"][0]["last_error"].is_string(), "{doc}");
    assert_eq!(doc["awaiting_root"], serde_json::json!([]), "{doc}");
    let metrics = admin_get(admin, "/metrics").await;
    for name in [
        "smds_cascade_queue_depth ",
        "smds_cascade_forwards_unreachable_total 1",
        "smds_cascade_delete_failures_total",
    ] {
        assert!(metrics.contains(name), "{name} in {metrics}");
    }

    let root = start_root(&lab, root_port, Limits::default()).await;
    assert_eq!(
        discover_at(&lab, &root, "localhost", None)
            .await
            .expect("root")
            .len(),
        1,
        "ev-2 still at the Root while it was down"
    );
    eventually("the queued delete delivered", async || {
        discover_at(&lab, &root, "localhost", None)
            .await
            .is_ok_and(|v| v.is_empty())
            && queued.metrics.figures().depth == 0
    })
    .await;
    alt.stop().await;
    root.stop().await;
}

on_both_stores!(cascade_end_to_end);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_by_the_root_leaves_nothing_anywhere() {
    let lab = Lab::new("cascade-refused");
    issue_ds2(&lab.pki);
    let root_port = free_port();
    // The Root keeps one event per EID and owner: the second forward is refused there.
    let limits = Limits {
        max_events_per_eid: 1,
        ..Limits::default()
    };
    let root = start_root(&lab, root_port, limits).await;
    let alt = start_alternative(&lab, &alternative_config(&lab, root_port)).await;
    let r = smdp_call(
        &alt,
        &lab,
        path::ES12_REGISTER_EVENT,
        register("first", true),
    )
    .await;
    assert!(r.is_success(), "{:?}", r.body);
    let r = smdp_call(
        &alt,
        &lab,
        path::ES12_REGISTER_EVENT,
        register("second", true),
    )
    .await;
    assert_eq!(r.code(), Some("8.9/4.2".into()), "{:?}", r.body);
    assert!(
        r.message
            .as_deref()
            .unwrap_or_default()
            .contains("8.1.1/4.8"),
        "the Root's own code is passed on: {:?}",
        r.message
    );
    let r = smdp_call(&alt, &lab, path::ES12_DELETE_EVENT, delete("second")).await;
    assert_eq!(
        r.code(),
        Some("8.9.5/3.9".into()),
        "nothing kept: {:?}",
        r.body
    );
    let at_root = discover_at(&lab, &root, "localhost", None)
        .await
        .expect("root");
    assert_eq!(at_root.len(), 1, "only the first: {at_root:?}");
    let figures = alt
        .state
        .cascade
        .as_ref()
        .expect("cascade")
        .metrics
        .figures();
    assert_eq!((figures.refused, figures.depth), (1, 0), "{figures:?}");
    alt.stop().await;
    root.stop().await;
}

/// A TCP relay to the Root that, once `hold` is set, passes the Root's first flight on each new
/// connection (the TLS handshake) and keeps everything after it (the ES15 answer): the Root
/// acts, the Alternative never hears.
async fn relay(to: u16, hold: std::sync::Arc<std::sync::atomic::AtomicBool>) -> u16 {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(root) = tokio::net::TcpStream::connect(("127.0.0.1", to)).await else {
                continue;
            };
            let hold = hold.load(Ordering::SeqCst);
            let (mut cr, mut cw) = client.into_split();
            let (mut rr, mut rw) = root.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut cr, &mut rw).await;
            });
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let mut chunks = 0;
                while let Ok(n) = rr.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    chunks += 1;
                    if hold && chunks > 1 {
                        continue;
                    }
                    if cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

/// kill -9 of the Alternative while the Root holds the forwarded record and its answer is on
/// the way: after the restart the forward is undone on both sides (the SM-DP+ was never told
/// it succeeded), and the SM-DP+ can register the event again, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_commit_and_the_roots_answer_leaves_one_state() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let lab = Lab::new("cascade-crash");
    issue_ds2(&lab.pki);
    let root_port = free_port();
    let root = start_root(&lab, root_port, Limits::default()).await;
    let hold = std::sync::Arc::new(AtomicBool::new(true));
    let relay_port = relay(root_port, hold.clone()).await;
    let config = lab.tmp.0.join("alternative.toml");
    std::fs::write(
        &config,
        format!(
            "smds_instance = \"2\"\n[cascade]\nroot = \"localhost:{root_port}\"\nconnect_to = \"127.0.0.1:{relay_port}\"\ntimeout_secs = 4\n"
        ),
    )
    .expect("config");
    let bin = std::ffi::OsString::from(env!("CARGO_BIN_EXE_smds"));
    let data = lab.tmp.0.join("alternative");
    let (mut child, port) = spawn_serve_bin(&bin, &lab.pki, &data, Some(&config));
    let call = |port: u16, body: serde_json::Value, p: &'static str| {
        let pki = lab.pki.clone();
        async move {
            let endpoint = Endpoint::parse(&format!("https://{ALT_NAME}:{port}"))
                .and_then(|e| e.with_connect_to(&format!("127.0.0.1:{port}")))
                .expect("endpoint");
            let mut conn = smds::lab::https::Connection::open(
                &endpoint,
                smdp(&pki, "", &pki),
                Duration::from_secs(10),
            )
            .await?;
            conn.call(p, &body).await
        }
    };
    let pending = tokio::spawn(call(
        port,
        register("ev-crash", true),
        path::ES12_REGISTER_EVENT,
    ));
    eventually("the Root committed the forward", async || {
        discover_at(&lab, &root, "localhost", None)
            .await
            .is_ok_and(|v| v.len() == 1)
    })
    .await;
    child.kill().expect("kill -9");
    let _ = child.wait();
    let told = pending.await.expect("task");
    // Killed before its 4 s wait for the Root ended: the SM-DP+'s connection died unanswered.
    assert!(told.is_err(), "the SM-DP+ was told nothing: {told:?}");

    hold.store(false, Ordering::SeqCst);
    let (mut child, port) = spawn_serve_bin(&bin, &lab.pki, &data, Some(&config));
    eventually("the interrupted forward undone at the Root", async || {
        discover_at(&lab, &root, "localhost", None)
            .await
            .is_ok_and(|v| v.is_empty())
    })
    .await;
    let r = call(port, delete("ev-crash"), path::ES12_DELETE_EVENT)
        .await
        .expect("answer");
    assert_eq!(
        r.code(),
        Some("8.9.5/3.9".into()),
        "undone here too: {:?}",
        r.body
    );
    let r = call(port, register("ev-crash", true), path::ES12_REGISTER_EVENT)
        .await
        .expect("answer");
    assert!(r.is_success(), "registered again: {:?}", r.body);
    let at_root = discover_at(&lab, &root, "localhost", None)
        .await
        .expect("root");
    assert_eq!(
        at_root.len(),
        1,
        "exactly one record at the Root: {at_root:?}"
    );
    let _ = child.kill();
    let _ = child.wait();
    root.stop().await;
}

/// The Root's CERT.DS.TLS is checked against the Alternative's CRLs: once revoked (pki-tool
/// revoke, picked up without a restart), forwarding fails with 8.9/5.1 naming the revocation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_root_certificate_is_refused() {
    let lab = Lab::new("cascade-revoked");
    issue_ds2(&lab.pki);
    let root_port = free_port();
    let root = start_root(&lab, root_port, Limits::default()).await;
    let alt = start_alternative(&lab, &alternative_config(&lab, root_port)).await;
    let r = smdp_call(
        &alt,
        &lab,
        path::ES12_REGISTER_EVENT,
        register("before", true),
    )
    .await;
    assert!(r.is_success(), "{:?}", r.body);

    let h = Hierarchy::open(&lab.pki).expect("open");
    let root_tls = h
        .cert(&h.slot(Role::Dstls, Curve::NistP256, None))
        .expect("the Root's CERT.DS.TLS");
    h.revoke(&root_tls, None, 30, pki_tool::time::now())
        .expect("pki-tool revoke");
    let mut n = 0;
    eventually("the revocation honoured", async || {
        n += 1;
        let r = smdp_call(
            &alt,
            &lab,
            path::ES12_REGISTER_EVENT,
            register(&format!("after-{n}"), true),
        )
        .await;
        if r.is_success() {
            return false;
        }
        assert_eq!(r.code(), Some("8.9/5.1".into()), "{:?}", r.body);
        let message = r.message.unwrap_or_default();
        assert!(message.contains("revoked"), "{message}");
        true
    })
    .await;
    alt.stop().await;
    root.stop().await;
}
