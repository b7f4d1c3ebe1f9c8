//! A Root SM-DS accepts ES15 from Alternative SM-DSs: each SM-DS identity (CERT.DS.TLS, SAN
//! registeredID 2.999.15.x under the same CI) owns the records it registers, ES11 at the Root
//! hands out the Alternative's address and EventID in registration order with the EID's other
//! events, and the wrong kind of certificate is refused on each interface. Real identities minted
//! by pki-tool (DS2 as SGP.26 names it, and a DS3), a real server on loopback.

mod support;

use pki_tool::{Curve, Role};
use smds::config::Limits;
use smds::lab::lpa::{self, Discovery};
use smds::lab::soft_euicc::SoftEuicc;
use smds::sgp22::paths::path;
use smds::sgp22::{Es11PathFamily, FunctionResult};
use std::path::Path;
use std::sync::Arc;
use support::*;

/// Mints CERT.DS.TLS instance `n` (SAN `rid`, `fqdn`) under the lab's CI, as an Alternative
/// SM-DS's identity.
fn issue_ds_tls(pki: &Path, n: &str, rid: &str, fqdn: &str) {
    issue_instance(
        pki,
        Role::Dstls,
        n,
        &[("smds_rid", rid), ("smds_fqdn", fqdn)],
    );
}

/// TLS as the SM-DS whose TLS certificate is instance `n`, trusting the lab's CI.
fn as_smds(pki: &Path, n: &str) -> Arc<rustls::ClientConfig> {
    let dir = pki.join("DStls");
    smds::lab::smdp::smdp_tls_config(
        &dir.join(format!("CERT_S_SM_DS{n}_TLS_NIST.der")),
        &dir.join(format!("SK_S_SM_DS{n}_TLS_NIST.pem")),
        &[ci(pki)],
    )
    .expect("client TLS config")
}

async fn call(
    conn: &mut smds::lab::https::Connection,
    p: &str,
    body: &serde_json::Value,
) -> FunctionResult {
    conn.call(p, body).await.expect("answer")
}

fn register(event_id: &str, address: &str, forwarding: Option<bool>) -> serde_json::Value {
    smds::lab::smdp::register_event_body(EID, event_id, address, forwarding)
}

fn delete(event_id: &str) -> serde_json::Value {
    smds::lab::smdp::delete_event_body(EID, event_id)
}

#[tokio::test]
async fn alternatives_register_and_delete_their_own_records_at_the_root() {
    let lab = Lab::new("es15-root");
    issue_ds_tls(&lab.pki, "2", "2.999.15.2", "testsmds1.example.com");
    issue_ds_tls(&lab.pki, "3", "2.999.15.3", "testsmds3.example.com");
    let server = start(&lab.pki, &lab.config(Limits::default()), None).await;
    let mut dp = connect(&server, smdp(&lab.pki, "", &lab.pki)).await;
    let mut ds2 = connect(&server, as_smds(&lab.pki, "2")).await;
    let mut ds3 = connect(&server, as_smds(&lab.pki, "3")).await;

    // Registration order across an SM-DP+ (ES12) and an Alternative SM-DS (ES15).
    let r = call(
        &mut dp,
        path::ES12_REGISTER_EVENT,
        &register("dp-first", "smdp.example.com", None),
    )
    .await;
    assert!(r.is_success(), "{:?}", r.body);
    let r = call(
        &mut ds2,
        path::ES15_REGISTER_EVENT,
        &register("alt-1", "testsmds1.example.com", Some(true)),
    )
    .await;
    assert!(r.is_success(), "{:?}", r.body);
    let r = call(
        &mut dp,
        path::ES12_REGISTER_EVENT,
        &register("dp-last", "smdp.example.com", None),
    )
    .await;
    assert!(r.is_success(), "{:?}", r.body);
    // The same EventID from the same Alternative is a duplicate; from another one it is not.
    let r = call(
        &mut ds2,
        path::ES15_REGISTER_EVENT,
        &register("alt-1", "testsmds1.example.com", None),
    )
    .await;
    assert_eq!(r.code(), Some("8.9.5/3.3".into()), "{:?}", r.body);
    let r = call(
        &mut ds3,
        path::ES15_REGISTER_EVENT,
        &register("alt-1", "testsmds3.example.com", None),
    )
    .await;
    assert!(r.is_success(), "{:?}", r.body);

    let euicc = SoftEuicc::load(&lab.pki, Curve::NistP256, None).expect("eUICC");
    let opts = discovery_options(&server, &lab.pki, None, Es11PathFamily::Es9Plus);
    let entries = match lpa::discover(&euicc, &opts).await.expect("discovery") {
        Discovery::Events { entries, .. } => entries
            .into_iter()
            .map(|e| (e.event_id, e.rsp_server_address))
            .collect::<Vec<_>>(),
        Discovery::PushRegistered { .. } => panic!("a push registration answer"),
        Discovery::Failed { step, result } => panic!("{step}: {:?}", result.body),
    };
    let pair = |id: &str, a: &str| (id.to_string(), a.to_string());
    assert_eq!(
        entries,
        [
            pair("dp-first", "smdp.example.com"),
            pair("alt-1", "testsmds1.example.com"),
            pair("dp-last", "smdp.example.com"),
            pair("alt-1", "testsmds3.example.com"),
        ]
    );

    // DS3 cannot delete DS2's record, and the answer is the unknown event's, byte for byte in
    // its code and text; nor can the SM-DP+ reach it over ES12.
    let foreign = call(&mut ds3, path::ES15_DELETE_EVENT, &delete("dp-first")).await;
    let unknown = call(
        &mut ds3,
        path::ES15_DELETE_EVENT,
        &delete("never-registered"),
    )
    .await;
    assert_eq!(
        foreign.code(),
        Some("8.9.5/3.9".into()),
        "{:?}",
        foreign.body
    );
    assert_eq!(
        (foreign.code(), &foreign.message),
        (unknown.code(), &unknown.message)
    );
    let r = call(&mut dp, path::ES12_DELETE_EVENT, &delete("alt-1")).await;
    assert_eq!(r.code(), Some("8.9.5/3.9".into()), "{:?}", r.body);
    // Each Alternative deletes its own.
    let r = call(&mut ds2, path::ES15_DELETE_EVENT, &delete("alt-1")).await;
    assert!(r.is_success(), "{:?}", r.body);
    let r = call(&mut ds2, path::ES15_DELETE_EVENT, &delete("alt-1")).await;
    assert_eq!(
        r.code(),
        Some("8.9.5/3.9".into()),
        "deleted once: {:?}",
        r.body
    );
    let r = call(&mut ds3, path::ES15_DELETE_EVENT, &delete("alt-1")).await;
    assert!(r.is_success(), "{:?}", r.body);
}

/// DS2 as SGP.26 describes it (`SM_DStls` cnf: O=RSPTEST, CN and SAN DNS testsmds1.example.com,
/// SAN RID 2.999.15.2, DS TLS policy, serverAuth and clientAuth), as openssl reads it.
#[test]
fn ds2_is_minted_as_sgp26_describes_it() {
    let tmp = TempDir::new("es15-ds2");
    let pki = tmp.0.join("pki");
    mint(&pki, "default", None);
    issue_ds_tls(&pki, "2", "2.999.15.2", "testsmds1.example.com");
    let out = std::process::Command::new("openssl")
        .args(["x509", "-inform", "DER", "-noout", "-text", "-in"])
        .arg(pki.join("DStls/CERT_S_SM_DS2_TLS_NIST.der"))
        .output()
        .expect("openssl runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for wanted in [
        "Subject: O = RSPTEST, CN = testsmds1.example.com",
        "DNS:testsmds1.example.com",
        "Registered ID:2.999.15.2",
        "Policy: 2.23.146.1.2.1.6",
        "TLS Web Server Authentication, TLS Web Client Authentication",
    ] {
        assert!(text.contains(wanted), "{wanted} in {text}");
    }
}

#[tokio::test]
async fn each_interface_takes_only_its_own_kind_of_certificate() {
    let lab = Lab::new("es15-roles");
    issue_ds_tls(&lab.pki, "2", "2.999.15.2", "testsmds1.example.com");
    let server = start(&lab.pki, &lab.config(Limits::default()), None).await;
    let mut dp = connect(&server, smdp(&lab.pki, "", &lab.pki)).await;
    let mut ds2 = connect(&server, as_smds(&lab.pki, "2")).await;
    let mut nobody = connect(&server, anonymous(&lab.pki)).await;

    for (as_ds, p, body, wanted) in [
        (
            false,
            path::ES15_REGISTER_EVENT,
            register("x", "smdp.example.com", None),
            "CERT.DS.TLS",
        ),
        (false, path::ES15_DELETE_EVENT, delete("x"), "CERT.DS.TLS"),
        (
            true,
            path::ES12_REGISTER_EVENT,
            register("x", "testsmds1.example.com", None),
            "CERT.DP.TLS",
        ),
        (true, path::ES12_DELETE_EVENT, delete("x"), "CERT.DP.TLS"),
    ] {
        let conn = if as_ds { &mut ds2 } else { &mut dp };
        let r = call(conn, p, &body).await;
        assert_eq!(r.http_status, 403, "{p}: {:?}", r.body);
        assert_eq!(r.code(), Some("1.1/1.2".into()), "{p}: {:?}", r.body);
        let message = r.message.clone().unwrap_or_default();
        assert!(message.contains(wanted), "{p}: {message}");
    }
    for p in [path::ES15_REGISTER_EVENT, path::ES15_DELETE_EVENT] {
        let r = call(&mut nobody, p, &register("x", "a.example.com", None)).await;
        assert_eq!(r.http_status, 403, "{p}: {:?}", r.body);
    }
    // Nothing was stored by any of them.
    let r = call(&mut ds2, path::ES15_DELETE_EVENT, &delete("x")).await;
    assert_eq!(r.code(), Some("8.9.5/3.9".into()), "{:?}", r.body);
}
