//! Reloading a running SM-DS (what SIGHUP does) after `pki-tool renew`: new handshakes present
//! the renewed CERT.DS.TLS (as openssl sees it), new ES11 sessions sign with the renewed
//! CERT.DSauth, connections opened before keep working, and credentials that do not validate are
//! refused while the running ones stay.

mod support;

use pki_tool::hierarchy::Hierarchy;
use pki_tool::renewal::RenewOptions;
use pki_tool::{Certificate, Curve, Role};
use smds::config::Limits;
use smds::lab::https::Connection;
use smds::lab::soft_euicc::SoftEuicc;
use smds::sgp22::Es11PathFamily;
use smds::sgp22::responses::InitiateAuthenticationResponse;
use std::time::Duration;
use support::*;

/// The certificate the server presents in a fresh handshake, as `openssl s_client` receives it.
fn presented(port: u16) -> Certificate {
    let out = std::process::Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-servername", "localhost"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let begin = text
        .find("-----BEGIN CERTIFICATE-----")
        .expect("a certificate");
    let end = text.find("-----END CERTIFICATE-----").expect("its end") + 25;
    Certificate::from_der_or_pem(text[begin..end].as_bytes()).expect("parses")
}

fn cert(h: &Hierarchy, role: Role) -> Certificate {
    h.cert(&h.slot(role, Curve::NistP256, None)).expect("cert")
}

/// The CERT.DSauth an InitiateAuthentication on `conn` returns.
async fn ds_auth_served(conn: &mut Connection, euicc: &SoftEuicc, address: &str) -> Vec<u8> {
    let r = conn
        .call(
            Es11PathFamily::Es9Plus.initiate_authentication(),
            &serde_json::json!({
                "smdpAddress": address,
                "euiccChallenge": smds::sgp22::requests::b64_encode(&SoftEuicc::challenge().expect("challenge")),
                "euiccInfo1": smds::sgp22::requests::b64_encode(&euicc.euicc_info1().expect("info1")),
            }),
        )
        .await
        .expect("answer");
    InitiateAuthenticationResponse::from_result(&r)
        .expect("initiated")
        .server_certificate
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewed_ds_credentials_are_served_after_a_reload_without_dropping_connections() {
    let tmp = TempDir::new("reload");
    let pki = tmp.0.join("pki");
    mint(&pki, "default", None);
    let h = Hierarchy::open(&pki).expect("open");
    let cfg = loopback_config(&pki, &tmp.0.join("data"), Limits::default());
    let server = start(&pki, &cfg, None).await;
    let port = server.addr.port();
    let address = format!("localhost:{port}");
    let mut dp = connect(&server, smdp(&pki, "", &pki)).await;
    assert!(register(&mut dp, EID, "ev-1").await.is_success());
    let euicc = SoftEuicc::load(&pki, Curve::NistP256, None).expect("eUICC");
    let (old_tls, old_auth) = (cert(&h, Role::Dstls), cert(&h, Role::Dsauth));
    assert_eq!(presented(port).der(), old_tls.der());
    // A connection opened before the reload.
    let mut lpa = Connection::open(&endpoint(&server), lpa_tls(&pki), Duration::from_secs(10))
        .await
        .expect("connects");
    assert_eq!(
        ds_auth_served(&mut lpa, &euicc, &address).await,
        old_auth.der()
    );

    let renewed = h
        .renew(&RenewOptions {
            roles: vec![Role::Dstls, Role::Dsauth],
            within_days: 1_000_000,
            rekey: true,
            dry_run: false,
            now: pki_tool::time::now(),
        })
        .expect("pki-tool renew");
    assert_eq!(renewed.len(), 2);
    let (new_tls, new_auth) = (cert(&h, Role::Dstls), cert(&h, Role::Dsauth));
    assert_ne!(new_tls.public_key, old_tls.public_key);
    // Nothing changes until the reload.
    assert_eq!(presented(port).der(), old_tls.der());
    server.reload().await.expect("reloaded");
    assert_eq!(
        presented(port).der(),
        new_tls.der(),
        "new handshakes: the renewed DS TLS"
    );
    assert_eq!(
        ds_auth_served(&mut lpa, &euicc, &address).await,
        new_auth.der(),
        "the connection opened before is still served, with the renewed DSauth"
    );
    assert_eq!(
        discovery_outcome(&server, &pki, Curve::NistP256).await,
        Ok(1),
        "eUICCs accept the renewed DSauth"
    );
    // ES12 over the connection opened before the reload.
    assert!(register(&mut dp, EID, "ev-2").await.is_success());

    // Credentials that do not validate are refused; the running ones stay.
    let ds_tls_file = h.slot(Role::Dstls, Curve::NistP256, None).cert_der(&pki);
    std::fs::write(&ds_tls_file, b"not a certificate").expect("break it");
    let err = server.reload().await.expect_err("refused");
    assert!(err.contains("CERT_S_SM_DS_TLS_NIST"), "{err}");
    assert_eq!(presented(port).der(), new_tls.der());
    assert_eq!(
        discovery_outcome(&server, &pki, Curve::NistP256).await,
        Ok(2)
    );
    server.stop().await;
}
