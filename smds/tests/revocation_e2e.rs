//! CRLs honoured end to end: `pki-tool revoke` writes the CRL into the hierarchy, the running
//! SM-DS picks it up (reload, as SIGHUP does, or by noticing the file change), and then refuses
//! the revoked EUM's eUICCs on ES11 and the revoked CERT.DP.TLS at the ES12 handshake, while the
//! other EUM's eUICCs and a renewed SM-DP+ certificate keep working. `strict_crl` turns a stale
//! CRL into a refusal.

mod support;

use pki_tool::hierarchy::{Hierarchy, IssueOptions};
use pki_tool::{Certificate, Curve, Role};
use smds::config::Limits;
use smds::lab::https::Connection;
use std::path::Path;
use std::time::{Duration, Instant};
use support::*;

const DAY: i64 = 86_400;

fn cert(h: &Hierarchy, role: Role, curve: Curve) -> Certificate {
    h.cert(&h.slot(role, curve, None)).expect("cert")
}

/// An ES12 RegisterEvent as the SM-DP+ of `pki` (its current CERT.DP.TLS) on a new connection:
/// `Err` when TLS or the connection fails.
async fn try_register(
    server: &smds::server::Server,
    pki: &Path,
    event_id: &str,
) -> Result<smds::sgp22::FunctionResult, String> {
    let mut conn = Connection::open(
        &endpoint(server),
        smdp(pki, "", pki),
        Duration::from_secs(10),
    )
    .await
    .map_err(|e| e.to_string())?;
    conn.call(
        smds::sgp22::paths::path::ES12_REGISTER_EVENT,
        &smds::lab::smdp::register_event_body(EID, event_id, "testsmdpplus1.example.com", None),
    )
    .await
    .map_err(|e| e.to_string())
}

/// Whether a new ES12 RegisterEvent as the SM-DP+ of `pki` succeeds.
async fn es12_gets_through(server: &smds::server::Server, pki: &Path) -> bool {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let id = format!(
        "probe-{}",
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    try_register(server, pki, &id)
        .await
        .is_ok_and(|r| r.is_success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_eum_stops_its_euiccs_and_not_the_other_eums() {
    let tmp = TempDir::new("crl-es11");
    let pki = tmp.0.join("pki");
    mint_curves(&pki, "default", None, &Curve::ALL);
    let h = Hierarchy::open(&pki).expect("open");
    let cfg = loopback_config(&pki, &tmp.0.join("data"), Limits::default());
    let server = start(&pki, &cfg, None).await;
    let r = try_register(&server, &pki, "ev-1")
        .await
        .expect("registered");
    assert!(r.is_success(), "{:?}", r.body);
    // The NIST and brainpool eUICCs carry the same EID, under two EUMs of the same name.
    assert_eq!(
        discovery_outcome(&server, &pki, Curve::NistP256).await,
        Ok(1)
    );
    assert_eq!(
        discovery_outcome(&server, &pki, Curve::BrainpoolP256r1).await,
        Ok(1)
    );

    h.revoke(
        &cert(&h, Role::Eum, Curve::NistP256),
        Some("keyCompromise".parse().expect("reason")),
        30,
        pki_tool::time::now(),
    )
    .expect("pki-tool revoke");
    server.reload().await.expect("reloaded");
    assert_eq!(
        discovery_outcome(&server, &pki, Curve::NistP256).await,
        Err("AuthenticateClient 8.1.2/6.1".into()),
        "a revoked EUM is an invalid EUM certificate"
    );
    assert_eq!(
        discovery_outcome(&server, &pki, Curve::BrainpoolP256r1).await,
        Ok(1)
    );
    // Twice: the second time the EUM validation comes from the cache, and is still refused.
    assert_eq!(
        discovery_outcome(&server, &pki, Curve::NistP256).await,
        Err("AuthenticateClient 8.1.2/6.1".into())
    );
    let metrics = server.state.metrics.render(None);
    assert!(
        metrics.contains("smds_revocation_refusals_total{interface=\"ES11\",reason=\"revoked\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("smds_crls_loaded 2"), "{metrics}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_dp_tls_certificate_fails_the_handshake_and_its_renewal_works() {
    let tmp = TempDir::new("crl-es12");
    let pki = tmp.0.join("pki");
    mint(&pki, "default", None);
    let h = Hierarchy::open(&pki).expect("open");
    let cfg = loopback_config(&pki, &tmp.0.join("data"), Limits::default());
    let server = start(&pki, &cfg, None).await;
    assert!(es12_gets_through(&server, &pki).await);

    let old = cert(&h, Role::Dptls, Curve::NistP256);
    h.revoke(&old, None, 30, pki_tool::time::now())
        .expect("pki-tool revoke");
    // No reload call: the server notices the new CRL files on its own.
    let deadline = Instant::now() + Duration::from_secs(20);
    while es12_gets_through(&server, &pki).await {
        assert!(
            Instant::now() < deadline,
            "the revocation was not picked up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        try_register(&server, &pki, "after").await.is_err(),
        "refused in the handshake, not with a status code"
    );

    // Renewed: the same role re-issued under the same CA, a new serial, not on the CRL.
    h.issue(&IssueOptions {
        role: Role::Dptls,
        curve: Curve::NistP256,
        instance: None,
        eid: None,
        sets: Default::default(),
        key: None,
        force: true,
        now: pki_tool::time::now(),
    })
    .expect("re-issue");
    assert_ne!(cert(&h, Role::Dptls, Curve::NistP256).serial, old.serial);
    assert!(
        es12_gets_through(&server, &pki).await,
        "the renewed certificate works"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_crl_refuses_on_a_stale_crl_and_lab_mode_does_not() {
    let tmp = TempDir::new("crl-strict");
    let pki = tmp.0.join("pki");
    mint(&pki, "default", None);
    let h = Hierarchy::open(&pki).expect("open");
    // The CI's CRL, issued ten days ago for one day: stale, nothing revoked.
    h.issue_crls(Some(Role::Ci), 1, pki_tool::time::now() - 10 * DAY)
        .expect("crl");
    for strict in [false, true] {
        let cfg = smds::config::Config {
            strict_crl: strict,
            crl_dir: Some(pki.join("crl")),
            ..loopback_config(
                &pki,
                &tmp.0.join(format!("data-{strict}")),
                Limits::default(),
            )
        };
        let server = start(&pki, &cfg, None).await;
        let got = discovery_outcome(&server, &pki, Curve::NistP256).await;
        let es12 = es12_gets_through(&server, &pki).await;
        if strict {
            assert_eq!(got, Err("AuthenticateClient 8.1.2/6.1".into()));
            assert!(
                !es12,
                "the DP TLS certificate's CRL (the CI's) is stale too"
            );
        } else {
            assert_eq!(got, Ok(0));
            assert!(es12);
        }
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_crl_dir_that_does_not_exist_stops_the_start() {
    let tmp = TempDir::new("crl-missing");
    let pki = tmp.0.join("pki");
    mint(&pki, "default", None);
    let cfg = smds::config::Config {
        crl_dir: Some(tmp.0.join("no-such-dir")),
        ..loopback_config(&pki, &tmp.0.join("data"), Limits::default())
    };
    let server_pki =
        smds::pki::ServerPki::load(&pki, pki_tool::time::now()).expect("server PKI loads");
    let err = match smds::server::Server::start(&cfg, &server_pki, None).await {
        Ok(_) => panic!("started without its CRL directory"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("crl_dir") && err.contains("no-such-dir"),
        "{err}"
    );
}

/// `smds event register` as the SM-DP+ of `pki`, against the server on `port`: whether it worked.
fn cli_register(pki: &Path, port: u16, event_id: &str) -> bool {
    let s = |p: &Path| p.display().to_string();
    std::process::Command::new(env!("CARGO_BIN_EXE_smds"))
        .args(["event", "register", "--server"])
        .arg(format!("https://localhost:{port}"))
        .args(["--eid", EID, "--event-id", event_id])
        .args(["--smdp-address", "testsmdpplus1.example.com"])
        .args(["--cert", &s(&pki.join("DPtls/CERT_S_SM_DP_TLS_NIST.der"))])
        .args(["--key", &s(&pki.join("DPtls/SK_S_SM_DP_TLS_NIST.pem"))])
        .args(["--ca", &s(&ci(pki))])
        .output()
        .expect("smds runs")
        .status
        .success()
}

#[test]
fn smds_serve_reloads_its_crls_on_sighup() {
    let tmp = TempDir::new("crl-sighup");
    let pki = tmp.0.join("pki");
    mint(&pki, "default", None);
    let h = Hierarchy::open(&pki).expect("open");
    // No polling: only SIGHUP reloads.
    let config = tmp.0.join("smds.toml");
    std::fs::write(&config, "crl_poll_secs = 0\n").expect("config");
    let (mut child, port) = spawn_serve(&pki, &tmp.0.join("data"), Some(&config));
    assert!(cli_register(&pki, port, "before"));
    h.revoke(
        &cert(&h, Role::Dptls, Curve::NistP256),
        None,
        30,
        pki_tool::time::now(),
    )
    .expect("pki-tool revoke");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        cli_register(&pki, port, "not-reloaded-yet"),
        "without polling the CRL is read on SIGHUP only"
    );
    assert!(workspace_tests::common::send_signal(child.id(), "HUP"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while cli_register(&pki, port, "after-hup") {
        assert!(Instant::now() < deadline, "SIGHUP did not reload the CRLs");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        child.try_wait().expect("status").is_none(),
        "SIGHUP does not stop the server"
    );
    let _ = child.kill();
    let _ = child.wait();
}
