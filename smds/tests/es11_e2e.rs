//! ES11 end to end over TLS on loopback: events registered over ES12 are discovered by a software
//! eUICC (pki-tool hierarchies and the real SGP.26 eUICC/EUM/CI keys, NIST and brainpool), and
//! every check the SM-DS makes has a negative test.

mod support;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pki_tool::hierarchy::{Hierarchy, IssueOptions};
use pki_tool::layout::Slot;
use pki_tool::mint::{MintInput, Signer, mint as mint_cert};
use pki_tool::profile::{SerialSpec, Vars};
use pki_tool::{Curve, Eid, PrivateKey, Role};
use serde_json::json;
use smds::config::{Config, Limits};
use smds::lab::https::Connection;
use smds::lab::lpa::Discovery;
use smds::lab::soft_euicc::SoftEuicc;
use smds::sgp22::Es11PathFamily;
use smds::sgp22::FunctionResult;
use smds::sgp22::responses::InitiateAuthenticationResponse;
use std::path::Path;
use std::time::Duration;
use support::discovery_options as options;
use support::*;

on_both_stores!(
    discovery_on_a_pki_tool_hierarchy_both_curves,
    discovery_with_the_real_sgp26_euicc_keys,
    every_check_has_a_negative_test,
);

fn config(tmp: &TempDir, pki: &Path, limits: Limits) -> Config {
    loopback_config(pki, &tmp.0.join("data"), limits)
}

fn events(d: Discovery) -> Vec<String> {
    match d {
        Discovery::Events {
            entries,
            transaction_id,
            ..
        } => {
            assert_eq!(transaction_id.len(), 32, "uppercase hex of 16 bytes");
            assert!(
                transaction_id
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
            );
            entries.into_iter().map(|e| e.event_id).collect()
        }
        Discovery::PushRegistered { .. } => panic!("a push registration answer"),
        Discovery::Failed { step, result } => panic!("{step} failed: {:?}", result.body),
    }
}

fn failure(d: Discovery) -> (String, String) {
    match d {
        Discovery::PushRegistered { .. } => panic!("a push registration answer"),
        Discovery::Failed { step, result } => (step.to_string(), result.code().unwrap_or_default()),
        Discovery::Events { entries, .. } => panic!("unexpected success: {entries:?}"),
    }
}

fn issue_euicc(pki: &Path, curve: Curve, eid: &str) {
    Hierarchy::open(pki)
        .expect("open")
        .issue(&IssueOptions {
            role: Role::Euicc,
            curve,
            instance: None,
            eid: Some(Eid::parse(eid).expect("eid")),
            sets: Default::default(),
            key: None,
            force: false,
            now: pki_tool::time::now(),
        })
        .expect("issue eUICC");
}

async fn discovery_on_a_pki_tool_hierarchy_both_curves(kind: StoreKind) {
    let tmp = TempDir::new("es11");
    let pki = tmp.0.join("pki");
    mint_curves(&pki, "default", None, &Curve::ALL);
    issue_euicc(&pki, Curve::NistP256, EID2);
    let empty_eid = "89049032000000000000000000200080";
    issue_euicc(&pki, Curve::BrainpoolP256r1, empty_eid);
    let (cfg, _pg) = kind.apply(config(&tmp, &pki, Limits::default()));
    let server = start(&pki, &cfg, None).await;
    let mut dp = connect(&server, smdp(&pki, "", &pki)).await;
    for (eid, id) in [(EID, "b-first"), (EID2, "other"), (EID, "a-second")] {
        assert!(register(&mut dp, eid, id).await.is_success());
    }
    for (curve, paths) in [
        (Curve::NistP256, Es11PathFamily::Es9Plus),
        (Curve::BrainpoolP256r1, Es11PathFamily::Es11),
    ] {
        let e = SoftEuicc::load(&pki, curve, None).expect("eUICC");
        let got = events(
            smds::lab::lpa::discover(&e, &options(&server, &pki, None, paths))
                .await
                .expect("discovery"),
        );
        assert_eq!(
            got,
            ["b-first", "a-second"],
            "FIFO, this EID only ({curve})"
        );
        let got = events(
            smds::lab::lpa::discover(&e, &options(&server, &pki, Some("a-second"), paths))
                .await
                .expect("discovery"),
        );
        assert_eq!(got, ["a-second"]);
        let (step, code) = failure(
            smds::lab::lpa::discover(&e, &options(&server, &pki, Some("other"), paths))
                .await
                .expect("answer"),
        );
        assert_eq!(
            (step.as_str(), code.as_str()),
            ("AuthenticateClient", "8.9.5/3.9"),
            "another EID's event is unknown"
        );
    }
    let other = SoftEuicc::load(&pki, Curve::NistP256, Some(&Eid::parse(EID2).expect("eid")))
        .expect("eUICC 2");
    assert_eq!(
        events(
            smds::lab::lpa::discover(
                &other,
                &options(&server, &pki, None, Es11PathFamily::Es9Plus)
            )
            .await
            .expect("d")
        ),
        ["other"]
    );
    let none = SoftEuicc::load(
        &pki,
        Curve::BrainpoolP256r1,
        Some(&Eid::parse(empty_eid).expect("eid")),
    )
    .expect("eUICC 3");
    assert!(
        events(
            smds::lab::lpa::discover(
                &none,
                &options(&server, &pki, Some(""), Es11PathFamily::Es9Plus)
            )
            .await
            .expect("d")
        )
        .is_empty()
    );
    server.stop().await;
}

async fn discovery_with_the_real_sgp26_euicc_keys(kind: StoreKind) {
    let tmp = TempDir::new("es11-gsma");
    let gsma = shared().join("osmo-ttcn3-hacks_v1.5");
    let pki = tmp.0.join("pki");
    // DSauth (both curves) and DStls minted by pki-tool under the published GSMA Test CIs.
    mint_curves(&pki, "sgp26-v1.5", Some(gsma.clone()), &Curve::ALL);
    let (cfg, _pg) = kind.apply(config(&tmp, &pki, Limits::default()));
    let server = start(&pki, &cfg, None).await;
    let varo = smds::lab::smdp::smdp_tls_config(
        &gsma.join("DPtls/CERT_S_SM_DP_VARO_TLS_NIST.der"),
        &gsma.join("DPtls/SK_S_SM_DP_TLS_NIST.pem"),
        &[ci(&pki)],
    )
    .expect("tls");
    let mut dp = connect(&server, varo).await;
    assert!(register(&mut dp, EID, "gsma-event").await.is_success());
    // EUICCInfo1 as captured from an eUICC listing the SGP.26 Test CI (published in public LPA
    // test code): the server picks that CI.
    let captured = "BF20358203020200A9160414F54172BDF98A95D65CBEB88A38A1C11D800A85C3AA160414F54172BDF98A95D65CBEB88A38A1C11D800A85C3";
    let bytes: Vec<u8> = (0..captured.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&captured[i..i + 2], 16).expect("hex"))
        .collect();
    let tls = lpa_tls(&pki);
    let mut c = Connection::open(&endpoint(&server), tls, Duration::from_secs(10))
        .await
        .expect("connect");
    let body = json!({"smdpAddress": "localhost", "euiccChallenge": STANDARD.encode([5u8; 16]), "euiccInfo1": STANDARD.encode(bytes)});
    let r = c
        .call("/gsma/rsp2/es9plus/initiateAuthentication", &body)
        .await
        .expect("answer");
    assert!(r.is_success(), "{:?}", r.body);
    let chosen = STANDARD
        .decode(r.body["euiccCiPKIdToBeUsed"].as_str().expect("field"))
        .expect("b64");
    assert_eq!(&chosen[..2], &[0x04, 0x14]);
    assert_eq!(&chosen[2..6], &[0xF5, 0x41, 0x72, 0xBD]);
    for curve in Curve::ALL {
        // The genuine SGP.26 eUICC, EUM and CI certificates and the eUICC's published key.
        let e = SoftEuicc::load(&gsma, curve, None).expect("SGP.26 eUICC");
        assert_eq!(e.eid.to_string(), EID);
        let got = events(
            smds::lab::lpa::discover(&e, &options(&server, &pki, None, Es11PathFamily::Es9Plus))
                .await
                .expect("discovery"),
        );
        assert_eq!(got, ["gsma-event"], "{curve}");
    }
    server.stop().await;
}

async fn initiate(
    conn: &mut Connection,
    e: &SoftEuicc,
    address: &str,
) -> ([u8; 16], FunctionResult) {
    let challenge = SoftEuicc::challenge().expect("challenge");
    let body = json!({
        "smdpAddress": address,
        "euiccChallenge": STANDARD.encode(challenge),
        "euiccInfo1": STANDARD.encode(e.euicc_info1().expect("info1")),
    });
    (
        challenge,
        conn.call("/gsma/rsp2/es9plus/initiateAuthentication", &body)
            .await
            .expect("answer"),
    )
}

async fn authenticate(conn: &mut Connection, tid: &str, response: &[u8]) -> FunctionResult {
    let body =
        json!({"transactionId": tid, "authenticateServerResponse": STANDARD.encode(response)});
    conn.call("/gsma/rsp2/es9plus/authenticateClient", &body)
        .await
        .expect("answer")
}

fn code(r: &FunctionResult) -> String {
    assert_eq!(r.http_status, 200, "{:?}", r.body);
    r.code().unwrap_or_else(|| "success".into())
}

/// Values of serverSigned1, for building euiccSigned1 by hand.
fn server_signed1(s: &InitiateAuthenticationResponse) -> smds::asn1::ServerSigned1 {
    rasn::der::decode(&s.server_signed1).expect("serverSigned1")
}

/// `e`'s euiccSigned1 echoing the session's values, without checking the server (as an eUICC
/// that skipped ES10b's checks would sign it).
fn echoing_signed1(e: &SoftEuicc, s: &InitiateAuthenticationResponse) -> Vec<u8> {
    let ss = server_signed1(s);
    e.euicc_signed1(
        &ss.transaction_id,
        &ss.server_address,
        &ss.server_challenge,
        None,
    )
    .expect("signed1")
}

async fn every_check_has_a_negative_test(kind: StoreKind) {
    let tmp = TempDir::new("es11-neg");
    let pki = tmp.0.join("pki");
    mint_curves(&pki, "default", None, &[Curve::NistP256]);
    let foreign = tmp.0.join("foreign");
    mint_curves(&foreign, "default", None, &[Curve::NistP256]);
    let (cfg, _pg) = kind.apply(config(&tmp, &pki, Limits::default()));
    let server = start(&pki, &cfg, None).await;
    let mut dp = connect(&server, smdp(&pki, "", &pki)).await;
    assert!(register(&mut dp, EID, "ev").await.is_success());
    let tls = lpa_tls(&pki);
    let mut c = Connection::open(&endpoint(&server), tls, Duration::from_secs(10))
        .await
        .expect("connect");
    let e = SoftEuicc::load(&pki, Curve::NistP256, None).expect("eUICC");
    let now = pki_tool::time::now();
    let addr = "localhost";

    // Wrong address (and a tolerated one: upper case, trailing dot, port).
    assert_eq!(
        code(&initiate(&mut c, &e, "other.example").await.1),
        "8.9.1/3.8"
    );
    assert_eq!(
        code(&initiate(&mut c, &e, "LOCALHOST.:8443").await.1),
        "success"
    );
    // Eastcompeace style: smdsAddress on the es11 path.
    let body = json!({"smdsAddress": "localhost", "euiccChallenge": STANDARD.encode([7u8; 16]),
        "euiccInfo1": STANDARD.encode(e.euicc_info1().expect("info1"))});
    assert_eq!(
        code(
            &c.call("/gsma/rsp2/es11/initiateAuthentication", &body)
                .await
                .expect("answer")
        ),
        "success"
    );
    // Malformed challenge and EUICCInfo1; unsupported SVN.
    let body = json!({"smdpAddress": addr, "euiccChallenge": STANDARD.encode([1u8; 15]), "euiccInfo1": STANDARD.encode(e.euicc_info1().expect("i"))});
    assert_eq!(
        code(
            &c.call("/gsma/rsp2/es9plus/initiateAuthentication", &body)
                .await
                .expect("a")
        ),
        "8.1/2.1"
    );
    let body = json!({"smdpAddress": addr, "euiccChallenge": STANDARD.encode([1u8; 16]), "euiccInfo1": "!!!"});
    assert_eq!(
        code(
            &c.call("/gsma/rsp2/es9plus/initiateAuthentication", &body)
                .await
                .expect("a")
        ),
        "8.1/2.1"
    );
    let old = smds::asn1::der(&smds::asn1::EuiccInfo1 {
        svn: vec![1, 0, 0].into(),
        euicc_ci_pkid_list_for_verification: vec![e.ci.key_id().into()],
        euicc_ci_pkid_list_for_signing: vec![e.ci.key_id().into()],
        euicc_ci_pkid_list_for_signing_v3: None,
        euicc_rsp_capability: None,
    })
    .expect("der");
    let body = json!({"smdpAddress": addr, "euiccChallenge": STANDARD.encode([1u8; 16]), "euiccInfo1": STANDARD.encode(old)});
    assert_eq!(
        code(
            &c.call("/gsma/rsp2/es9plus/initiateAuthentication", &body)
                .await
                .expect("a")
        ),
        "8.9.3/3.1"
    );

    // A foreign eUICC (its CI is not ours) is refused at InitiateAuthentication.
    let alien = SoftEuicc::load(&foreign, Curve::NistP256, None).expect("foreign eUICC");
    assert_eq!(code(&initiate(&mut c, &alien, addr).await.1), "8.9.4/3.7");

    // Unknown transactionId; a good authentication; then the same transactionId replayed.
    let (challenge, r) = initiate(&mut c, &e, addr).await;
    let s = InitiateAuthenticationResponse::from_result(&r).expect("fields");
    let response = e
        .authenticate_server(&challenge, &s, addr, None, now)
        .expect("eUICC accepts the server");
    assert_eq!(
        code(&authenticate(&mut c, "00112233445566778899AABBCCDDEEFF", &response).await),
        "8.10.1/3.9"
    );
    assert_eq!(
        code(&authenticate(&mut c, "zz", &response).await),
        "8.10.1/3.9"
    );
    let ok = authenticate(&mut c, &s.transaction_id.to_hex(), &response).await;
    assert_eq!(code(&ok), "success");
    assert_eq!(
        ok.body["eventEntries"],
        json!([{"eventId": "ev", "rspServerAddress": "testsmdpplus1.example.com"}])
    );
    assert_eq!(
        code(&authenticate(&mut c, &s.transaction_id.to_hex(), &response).await),
        "8.10.1/3.9",
        "replay"
    );

    // Each tampering gets its own fresh session.
    macro_rules! session {
        () => {{
            let (challenge, r) = initiate(&mut c, &e, addr).await;
            (
                challenge,
                InitiateAuthenticationResponse::from_result(&r).expect("fields"),
            )
        }};
    }
    // Tampered eUICC signature.
    let (challenge, s) = session!();
    let mut response = e
        .authenticate_server(&challenge, &s, addr, None, now)
        .expect("ok");
    let pos = response
        .windows(2)
        .position(|w| w == [0x5F, 0x37])
        .expect("5F37")
        + 3;
    response[pos] ^= 0x01;
    assert_eq!(
        code(&authenticate(&mut c, &s.transaction_id.to_hex(), &response).await),
        "8.1/6.1"
    );
    // Wrong serverChallenge, correctly signed by the eUICC.
    let (_, s) = session!();
    let ss = server_signed1(&s);
    let signed1 = e
        .euicc_signed1(&ss.transaction_id, &ss.server_address, &[0u8; 16], None)
        .expect("signed1");
    let response = e.response(&signed1, &e.key.sign_raw(&signed1));
    assert_eq!(
        code(&authenticate(&mut c, &s.transaction_id.to_hex(), &response).await),
        "8.1/6.1"
    );
    // euiccSigned1 naming another server address.
    let (_, s) = session!();
    let ss = server_signed1(&s);
    let signed1 = e
        .euicc_signed1(
            &ss.transaction_id,
            "evil.example",
            &ss.server_challenge,
            None,
        )
        .expect("signed1");
    let response = e.response(&signed1, &e.key.sign_raw(&signed1));
    assert_eq!(
        code(&authenticate(&mut c, &s.transaction_id.to_hex(), &response).await),
        "8.9.1/3.8"
    );
    // v3 CtxParams1 alternatives an SM-DS does not serve ([1] device change, [2] profile
    // recovery, [3] push-service registration), signed by a genuine eUICC: a definite refusal,
    // and the transaction is not used up (the common-authentication retry succeeds).
    for alternative in [0xA1u32, 0xA2, 0xA3] {
        let (_, s) = session!();
        let common = echoing_signed1(&e, &s);
        let outer = pki_tool::tlv::parse_single(&common, "euiccSigned1").expect("DER");
        let mut fields = Vec::new();
        let mut r = outer.reader();
        while !r.is_empty() {
            let f = r.read().expect("field");
            if f.tag == 0xA0 {
                fields.push(pki_tool::tlv::tlv(alternative, f.value));
            } else {
                fields.push(f.raw.to_vec());
            }
        }
        let parts: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
        let signed1 = pki_tool::tlv::constructed(0x30, &parts);
        let response = e.response(&signed1, &e.key.sign_raw(&signed1));
        let r = authenticate(&mut c, &s.transaction_id.to_hex(), &response).await;
        assert_eq!(code(&r), "8.1/3.1", "{alternative:X}");
        assert!(
            r.message
                .as_deref()
                .unwrap_or_default()
                .contains("ctxParamsFor"),
            "{:?}",
            r.message
        );
        let response = e.response(&common, &e.key.sign_raw(&common));
        assert_eq!(
            code(&authenticate(&mut c, &s.transaction_id.to_hex(), &response).await),
            "success"
        );
    }
    // euiccSigned1 naming another transaction.
    let (_, s) = session!();
    let ss = server_signed1(&s);
    let signed1 = e
        .euicc_signed1(&[9u8; 16], &ss.server_address, &ss.server_challenge, None)
        .expect("signed1");
    let response = e.response(&signed1, &e.key.sign_raw(&signed1));
    assert_eq!(
        code(&authenticate(&mut c, &s.transaction_id.to_hex(), &response).await),
        "8.10.1/3.9"
    );
    // The eUICC's error branch.
    let (_, s) = session!();
    let err = pki_tool::tlv::tlv(
        0xBF38,
        &pki_tool::tlv::tlv(
            0xA1,
            &[
                pki_tool::tlv::tlv(0x80, &[1; 16]),
                pki_tool::tlv::tlv(0x02, &[6]),
            ]
            .concat(),
        ),
    );
    let r = authenticate(&mut c, &s.transaction_id.to_hex(), &err).await;
    assert_eq!(code(&r), "8.1/6.1");
    assert!(
        r.message
            .as_deref()
            .unwrap_or("")
            .contains("euiccChallengeMismatch"),
        "{:?}",
        r.message
    );
    // Garbage instead of BF38.
    let (_, s) = session!();
    assert_eq!(
        code(&authenticate(&mut c, &s.transaction_id.to_hex(), b"\x30\x03\x01\x01").await),
        "8.1/2.1"
    );

    // Certificates: a foreign EUM chain under our session's CI.
    let (challenge, s) = session!();
    let signed1 = echoing_signed1(&alien, &s);
    let response = alien.response(&signed1, &alien.key.sign_raw(&signed1));
    let _ = challenge;
    assert_eq!(
        code(&authenticate(&mut c, &s.transaction_id.to_hex(), &response).await),
        "8.11.1/3.9"
    );

    // An eUICC whose EID is outside the EUM's prefix, and an expired eUICC certificate, both
    // minted directly under our EUM (pki-tool itself would refuse to issue them).
    let h = Hierarchy::open(&pki).expect("open");
    let eum_slot = Slot::new(Role::Eum, Curve::NistP256);
    let (eum, eum_key) = (
        h.cert(&eum_slot).expect("eum"),
        h.key(&eum_slot).expect("eum key"),
    );
    let rogue = |eid: &str, expired: bool| {
        let mut t = h.profile.template(Role::Euicc).clone();
        t.serial = SerialSpec::Random { bytes: 8 };
        if expired {
            t.validity.not_before = Some("2020-01-01T00:00:00Z".into());
            t.validity.days = 30;
        }
        let mut v = Vars::default();
        v.set("eid", eid);
        let key = PrivateKey::generate(Curve::NistP256).expect("key");
        let cert = mint_cert(&MintInput {
            template: &t,
            vars: &v,
            subject_key: key.public_key(),
            signer: Signer::Issuer(&eum, &eum_key),
            now,
        })
        .expect("mint");
        SoftEuicc {
            euicc_cert: cert,
            key,
            ..e.clone()
        }
    };
    for (bad, want) in [
        (
            rogue(
                &Eid::random_with_prefix("89049033")
                    .expect("eid")
                    .to_string(),
                false,
            ),
            "8.1.3/6.1",
        ),
        (rogue(EID2, true), "8.1.3/6.3"),
    ] {
        let (challenge, s) = session!();
        let response = bad
            .authenticate_server(&challenge, &s, addr, None, now)
            .expect("signs");
        assert_eq!(
            code(&authenticate(&mut c, &s.transaction_id.to_hex(), &response).await),
            want
        );
    }

    // The software eUICC refuses a server whose signature or certificate is wrong.
    let (challenge, mut s) = session!();
    let n = s.server_signature1.len();
    s.server_signature1[n - 1] ^= 1;
    assert!(
        e.authenticate_server(&challenge, &s, addr, None, now)
            .is_err()
    );
    let (challenge, mut s) = session!();
    s.server_certificate = h
        .cert(&Slot::new(Role::Dpauth, Curve::NistP256))
        .expect("dpauth")
        .der()
        .to_vec();
    assert!(
        e.authenticate_server(&challenge, &s, addr, None, now)
            .is_err(),
        "a DPauth certificate is not CERT.DSauth"
    );

    // InitiateAuthentication stores nothing, so there is no table to fill: every one succeeds
    // (the flood test in es11_stateless.rs goes well past the old 100,000 cap).
    for _ in 0..60 {
        assert!(initiate(&mut c, &e, addr).await.1.is_success());
    }
    server.stop().await;
}
