//! SGP.22 v3 signed SM-DS responses: a device whose eUICC (EuiccRspCapability bit 17) and LPA
//! (LpaRspCapability bit 5) both support signedSmdsResponseV3 gets `authenticateClientOkV3`, an
//! `SmdsSigned2` signed with the session's CERT.DSauth key; any other device gets the v2 answer,
//! unchanged. The signed bytes are read with rsp.asn's v3 structures written out for rasn (from the
//! v3 notes), the signature is checked by openssl with the DSauth certificate, and the lab LPA's
//! VerifySmdsResponse refuses a tampered list.

mod support;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pki_tool::Curve;
use rasn::prelude::*;
use serde_json::json;
use smds::config::Limits;
use smds::lab::https::Connection;
use smds::lab::lpa::{self, Discovery};
use smds::lab::soft_euicc::SoftEuicc;
use smds::sgp22::FunctionResult;
use smds::sgp22::responses::{
    AuthenticateClientResponse, InitiateAuthenticationResponse, SignedEventList,
};
use support::*;

// sgp22-v3-es15-notes.md 1.3 ([gen]): EventRecordV3 has explicit tags inside, so no automatic
// tagging (eventId and rspServerAddress are universal UTF8String, eventType a universal INTEGER).
#[derive(AsnType, Debug, Clone, Decode, Encode, PartialEq, Eq)]
struct EventRecordV3 {
    event_id: Utf8String,
    rsp_server_address: Utf8String,
    event_type: Integer,
    hashed_iccids: Option<SequenceOf<OctetString>>,
    salt: Option<OctetString>,
    #[rasn(tag(context, 17))]
    service_provider_name: Option<Utf8String>,
    #[rasn(tag(context, 23))]
    operator_id: Option<OperatorId>,
}

// rsp.asn's OperatorID, in its automatically tagged module.
#[derive(AsnType, Debug, Clone, Decode, Encode, PartialEq, Eq)]
struct OperatorId {
    #[rasn(tag(context, 0))]
    mcc_mnc: OctetString,
    #[rasn(tag(context, 1))]
    gid1: Option<OctetString>,
    #[rasn(tag(context, 2))]
    gid2: Option<OctetString>,
}

#[derive(AsnType, Debug, Clone, Decode, Encode)]
struct EventList {
    #[rasn(tag(context, 1))]
    event_entries: SequenceOf<EventRecordV3>,
    #[rasn(tag(context, 2))]
    ec_id: Option<OctetString>,
    #[rasn(tag(context, 3))]
    push_service_refresh_time: Option<GeneralizedTime>,
}

#[derive(AsnType, Debug, Clone, Decode, Encode)]
#[rasn(choice)]
enum RequestSpecificData {
    #[rasn(tag(context, 0))]
    EventList(EventList),
    #[rasn(tag(context, 1))]
    PushServiceRegistrationResult(PushServiceRegistrationResult),
}

#[derive(AsnType, Debug, Clone, Decode, Encode)]
struct PushServiceRegistrationResult {
    #[rasn(tag(context, 3))]
    push_service_refresh_time: Option<GeneralizedTime>,
}

#[derive(AsnType, Debug, Clone, Decode, Encode)]
struct SmdsSigned2 {
    #[rasn(tag(context, 0))]
    transaction_id: OctetString,
    request_specific_data: RequestSpecificData,
}

// Notes 1.4 and 3.2 ([gen]): CheckEvent on the ASN.1 binding, BF46 inside the [2] wrapper.
#[derive(AsnType, Debug, Clone, Decode, Encode)]
struct CheckEventRequest {
    #[rasn(tag(context, 0))]
    ec_id: OctetString,
    #[rasn(tag(context, 1))]
    smds_address: Utf8String,
}

#[derive(AsnType, Debug, Clone, Decode, Encode)]
#[rasn(choice)]
enum RequestChoice {
    #[rasn(tag(context, 70))]
    CheckEvent(CheckEventRequest),
}

#[derive(AsnType, Debug, Clone, Decode, Encode)]
#[rasn(delegate, tag(explicit(context, 2)))]
struct RemoteProfileProvisioningRequest(RequestChoice);

#[derive(AsnType, Debug, Clone, Decode, Encode)]
struct CheckEventOk {
    #[rasn(tag(context, 0))]
    is_pending_event: bool,
}

#[derive(AsnType, Debug, Clone, Decode, Encode)]
#[rasn(choice)]
enum CheckEventResponse {
    #[rasn(tag(context, 0))]
    Ok(CheckEventOk),
    #[rasn(tag(context, 1))]
    Error(Integer),
}

#[derive(AsnType, Debug, Clone, Decode, Encode)]
#[rasn(choice)]
enum ResponseChoice {
    #[rasn(tag(explicit(context, 70)))]
    CheckEvent(CheckEventResponse),
}

#[derive(AsnType, Debug, Clone, Decode, Encode)]
#[rasn(delegate, tag(explicit(context, 2)))]
struct RemoteProfileProvisioningResponse(ResponseChoice);

/// CheckEvent on the ASN.1 binding: the decoded answer.
async fn check_asn1(conn: &mut Connection, ec_id: &[u8], address: &str) -> CheckEventResponse {
    let body = rasn::der::encode(&RemoteProfileProvisioningRequest(
        RequestChoice::CheckEvent(CheckEventRequest {
            ec_id: OctetString::from_slice(ec_id),
            smds_address: address.into(),
        }),
    ))
    .expect("encode");
    let raw = conn
        .post_raw(
            smds::sgp22::paths::path::ASN1,
            "application/x-gsma-rsp-asn1",
            body,
        )
        .await
        .expect("answer");
    assert_eq!(raw.status, 200);
    let RemoteProfileProvisioningResponse(ResponseChoice::CheckEvent(r)) =
        rasn::der::decode(&raw.body).expect("a CheckEventResponse");
    r
}

/// InitiateAuthentication and the eUICC's AuthenticateServer on `conn`, then AuthenticateClient:
/// the server's InitiateAuthentication answer and the raw AuthenticateClient result.
async fn discover_raw(
    conn: &mut Connection,
    e: &SoftEuicc,
) -> (InitiateAuthenticationResponse, FunctionResult) {
    let challenge = SoftEuicc::challenge().expect("challenge");
    let r = conn
        .call(
            "/gsma/rsp2/es9plus/initiateAuthentication",
            &json!({
                "smdpAddress": "localhost",
                "euiccChallenge": STANDARD.encode(challenge),
                "euiccInfo1": STANDARD.encode(e.euicc_info1().expect("info1")),
            }),
        )
        .await
        .expect("answer");
    let server = InitiateAuthenticationResponse::from_result(&r).expect("initiated");
    let response = e
        .authenticate_server(
            &challenge,
            &server,
            "localhost",
            None,
            pki_tool::time::now(),
        )
        .expect("the eUICC accepts the server");
    let r = conn
        .call(
            "/gsma/rsp2/es9plus/authenticateClient",
            &json!({
                "transactionId": server.transaction_id.to_hex(),
                "authenticateServerResponse": STANDARD.encode(response),
            }),
        )
        .await
        .expect("answer");
    assert!(r.is_success(), "{:?}", r.body);
    (server, r)
}

/// r||s as the DER `ECDSA-Sig-Value` openssl verifies.
fn der_signature(raw: &[u8]) -> Vec<u8> {
    let int = |b: &[u8]| {
        let mut v: Vec<u8> = b.iter().copied().skip_while(|x| *x == 0).collect();
        if v.first().is_none_or(|x| x & 0x80 != 0) {
            v.insert(0, 0);
        }
        pki_tool::tlv::tlv(0x02, &v)
    };
    pki_tool::tlv::sequence(&[&int(&raw[..32]), &int(&raw[32..])])
}

/// openssl's verdict on `signature` (r||s) over `data` with the certificate's key.
fn openssl_verifies(tmp: &std::path::Path, cert_der: &[u8], data: &[u8], signature: &[u8]) -> bool {
    let dir = &tmp.join("openssl-check");
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::write(dir.join("dsauth.der"), cert_der).expect("write");
    std::fs::write(dir.join("signed.der"), data).expect("write");
    std::fs::write(dir.join("sig.der"), der_signature(signature)).expect("write");
    let key = std::process::Command::new("openssl")
        .args([
            "x509",
            "-inform",
            "DER",
            "-in",
            "dsauth.der",
            "-pubkey",
            "-noout",
            "-out",
            "pub.pem",
        ])
        .current_dir(dir)
        .status()
        .expect("openssl runs");
    assert!(key.success());
    std::process::Command::new("openssl")
        .args([
            "dgst",
            "-sha256",
            "-verify",
            "pub.pem",
            "-signature",
            "sig.der",
            "signed.der",
        ])
        .current_dir(dir)
        .output()
        .expect("openssl runs")
        .status
        .success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v3_device_gets_a_signed_list_and_others_the_v2_answer() {
    let lab = Lab::new("signed-response");
    let server = start(&lab.pki, &lab.config(Limits::default()), None).await;
    let mut dp = connect(&server, smdp(&lab.pki, "", &lab.pki)).await;
    for id in ["ev-1", "ev-2"] {
        assert!(register(&mut dp, EID, id).await.is_success());
    }
    let mut conn = connect(&server, lpa_tls(&lab.pki)).await;
    let mut e = SoftEuicc::load(&lab.pki, Curve::NistP256, None).expect("eUICC");

    // A v2 device, and a v3 eUICC behind a v2 LPA (or the reverse): the v2 answer.
    for (euicc_bit, lpa_bit) in [(false, false), (true, false), (false, true)] {
        e.euicc_signed_smds_response = euicc_bit;
        e.lpa_signed_smds_response = lpa_bit;
        let (_, r) = discover_raw(&mut conn, &e).await;
        assert!(r.body["eventEntries"].is_array(), "{:?}", r.body);
        assert!(r.body.get("smdsSigned2").is_none(), "{:?}", r.body);
    }

    // A v3 device: transactionId, smdsSigned2, smdsSignature2 and nothing else.
    e.euicc_signed_smds_response = true;
    e.lpa_signed_smds_response = true;
    let (session, r) = discover_raw(&mut conn, &e).await;
    assert!(r.body.get("eventEntries").is_none(), "{:?}", r.body);
    let answer = AuthenticateClientResponse::from_result(&r).expect("v3 answer");
    let signed = answer.signed.clone().expect("a signed list");
    let decoded: SmdsSigned2 = rasn::der::decode(&signed.smds_signed2).expect("SmdsSigned2");
    assert_eq!(
        decoded.transaction_id.as_ref(),
        session.transaction_id.as_bytes()
    );
    let RequestSpecificData::EventList(list) = decoded.request_specific_data else {
        panic!("an eventList");
    };
    let ids: Vec<String> = list
        .event_entries
        .iter()
        .map(|r| r.event_id.to_string())
        .collect();
    assert_eq!(ids, ["ev-1", "ev-2"]);
    assert!(
        list.event_entries
            .iter()
            .all(|r| r.rsp_server_address == "testsmdpplus1.example.com")
    );
    // Signed with the key of the CERT.DSauth of this session, over the exact SmdsSigned2 bytes.
    let sig = pki_tool::tlv::parse_single(&signed.smds_signature2, "5F37").expect("TLV");
    assert_eq!((sig.tag, sig.value.len()), (0x5F37, 64));
    assert!(openssl_verifies(
        &lab.tmp.0,
        &session.server_certificate,
        &signed.smds_signed2,
        sig.value
    ));
    assert!(!openssl_verifies(
        &lab.tmp.0,
        &session.server_certificate,
        &[&signed.smds_signed2[..], b"x"].concat(),
        sig.value
    ));

    // The lab LPA's VerifySmdsResponse: the genuine list passes; a changed event, another
    // transaction, a changed signature do not.
    e.verify_smds_response(&signed, &session)
        .expect("the genuine list verifies");
    let mut tampered = signed.smds_signed2.clone();
    let at = tampered
        .windows(4)
        .position(|w| w == b"ev-2")
        .expect("ev-2 in the list");
    tampered[at + 3] = b'3';
    let forged = SignedEventList {
        smds_signed2: tampered,
        ..signed.clone()
    };
    assert!(e.verify_smds_response(&forged, &session).is_err());
    let mut other_session = session.clone();
    other_session.transaction_id = smds::asn1::TransactionId::new(&[1; 16]).expect("tid");
    assert!(e.verify_smds_response(&signed, &other_session).is_err());
    let mut bad_signature = signed.smds_signature2.clone();
    if let Some(last) = bad_signature.last_mut() {
        *last ^= 1;
    }
    let forged = SignedEventList {
        smds_signature2: bad_signature,
        ..signed
    };
    assert!(e.verify_smds_response(&forged, &session).is_err());

    // The whole lab discovery, on both bindings, verifies and reports it.
    let opts = discovery_options(
        &server,
        &lab.pki,
        None,
        smds::sgp22::Es11PathFamily::Es9Plus,
    );
    for asn1 in [false, true] {
        let d = if asn1 {
            lpa::discover_asn1(&e, &opts).await
        } else {
            lpa::discover(&e, &opts).await
        };
        match d.expect("discovery") {
            Discovery::Events {
                entries, signed, ..
            } => {
                assert!(signed, "asn1: {asn1}");
                assert_eq!(entries.len(), 2);
            }
            d => panic!("{d:?}"),
        }
    }
    let out = run_smds([
        "discover".into(),
        "--v3".into(),
        "--server".into(),
        format!("https://localhost:{}", server.addr.port()).into(),
        "--certdir".into(),
        lab.pki.clone().into_os_string(),
    ]);
    assert!(
        out.contains("2 event(s) (signed list, verified by the eUICC)"),
        "{out}"
    );
    server.stop().await;
}

/// A CheckEvent call's raw answer.
async fn check_raw(
    conn: &mut Connection,
    ec_id: &[u8],
    address: &str,
) -> smds::lab::https::RawResponse {
    let body = json!({"ecId": STANDARD.encode(ec_id), "smdsAddress": address});
    conn.post_raw(
        smds::sgp22::paths::path::ES11_CHECK_EVENT,
        "application/json",
        body.to_string().into_bytes(),
    )
    .await
    .expect("answer")
}

/// A CheckEvent call's answer body and its SGP.22 reading.
async fn check(
    conn: &mut Connection,
    ec_id: &[u8],
    address: &str,
) -> (bytes::Bytes, FunctionResult) {
    let raw = check_raw(conn, ec_id, address).await;
    let r = raw.function_result().expect("an SGP.22 answer");
    (raw.body, r)
}

fn pending(r: &FunctionResult) -> bool {
    assert!(r.is_success(), "{:?}", r.body);
    r.body["isPendingEvent"].as_bool().expect("isPendingEvent")
}

async fn event_checking(kind: StoreKind) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};
    let lab = Lab::new("event-checking");
    let offset = Arc::new(AtomicI64::new(0));
    let clock_offset = offset.clone();
    let clock: smds::transport::tls::Clock =
        Arc::new(move || pki_tool::time::now() + clock_offset.load(Ordering::SeqCst));
    let (cfg, _pg) = kind.apply(lab.config(Limits::default()));
    let server = start(&lab.pki, &cfg, Some(clock)).await;
    let mut dp = connect(&server, smdp(&lab.pki, "", &lab.pki)).await;
    assert!(register(&mut dp, EID, "ev-1").await.is_success());
    let mut e = SoftEuicc::load(&lab.pki, Curve::NistP256, None).expect("eUICC");
    e.euicc_signed_smds_response = true;
    e.lpa_signed_smds_response = true;
    let opts = discovery_options(
        &server,
        &lab.pki,
        None,
        smds::sgp22::Es11PathFamily::Es9Plus,
    );
    let discover_ec_id =
        async |e: &SoftEuicc| match lpa::discover(e, &opts).await.expect("discovery") {
            Discovery::Events {
                ec_id: Some(id),
                signed: true,
                ..
            } => id,
            d => panic!("a signed list with an ecId expected: {d:?}"),
        };
    let first = discover_ec_id(&e).await;
    assert_eq!(first.len(), 16);
    let mut conn = connect(&server, lpa_tls(&lab.pki)).await;
    assert!(pending(&check(&mut conn, &first, "localhost").await.1));

    // Nothing pending and an unknown ecId: the same bytes.
    assert!(delete(&mut dp, EID, "ev-1").await.is_success());
    let (known_empty, r) = check(&mut conn, &first, "localhost").await;
    assert!(!pending(&r));
    let (unknown, r) = check(&mut conn, &[0x42; 16], "localhost").await;
    assert!(!pending(&r));
    assert_eq!(
        known_empty, unknown,
        "nothing tells a known ecId from an unknown one"
    );

    // Rotated at every full v3 discovery: the old ecId no longer answers yes.
    assert!(register(&mut dp, EID, "ev-2").await.is_success());
    let second = discover_ec_id(&e).await;
    assert_ne!(first, second);
    assert!(!pending(&check(&mut conn, &first, "localhost").await.1));
    assert!(pending(&check(&mut conn, &second, "localhost").await.1));
    // The same on the ASN.1 binding (BF46); a foreign address is its error INTEGER.
    for (ec_id, address, want) in [
        (&second, "localhost", Some(true)),
        (&first, "localhost", Some(false)),
        (&second, "other.example.com", None),
    ] {
        match check_asn1(&mut conn, ec_id, address).await {
            CheckEventResponse::Ok(ok) => assert_eq!(Some(ok.is_pending_event), want),
            CheckEventResponse::Error(v) => {
                assert_eq!(want, None);
                assert_eq!(i64::try_from(&v).expect("small"), 127);
            }
        }
    }
    // Another SM-DS's address is refused as in InitiateAuthentication.
    let (_, r) = check(&mut conn, &second, "other.example.com").await;
    assert_eq!(r.code(), Some("8.9.1/3.8".into()), "{:?}", r.body);
    // (The calls so far used up most of this address's burst of 10: let the bucket refill.)
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    // The lab tool.
    let out = run_smds([
        "check-event".into(),
        "--server".into(),
        format!("https://localhost:{}", server.addr.port()).into(),
        "--ca".into(),
        ci(&lab.pki).into_os_string(),
        "--ec-id".into(),
        STANDARD.encode(&second).into(),
    ]);
    assert!(out.contains("isPendingEvent: true"), "{out}");
    // Expired after 30 days.
    offset.store(31 * 86_400, Ordering::SeqCst);
    assert!(!pending(&check(&mut conn, &second, "localhost").await.1));
    // A rate per client address (1/s, bursts of 10): a flood gets 429 with Retry-After.
    let mut limited = 0;
    for _ in 0..30 {
        let raw = check_raw(&mut conn, &[1u8; 16], "localhost").await;
        if raw.status == 429 {
            assert!(raw.headers.contains_key("retry-after"));
            limited += 1;
        }
    }
    assert!(limited >= 10, "{limited} of 30 limited");
    server.stop().await;
}

on_both_stores!(event_checking);

/// The optional v3 RegisterEvent inputs reach the signed EventRecordV3 exactly, are kept by both
/// stores, and stay out of v2 answers; malformed ones are refused with the field named.
async fn event_details(kind: StoreKind) {
    let lab = Lab::new("event-details");
    let (cfg, _pg) = kind.apply(lab.config(Limits::default()));
    let server = start(&lab.pki, &cfg, None).await;
    let mut dp = connect(&server, smdp(&lab.pki, "", &lab.pki)).await;
    let body = |id: &str, extra: serde_json::Value| {
        let mut b =
            smds::lab::smdp::register_event_body(EID, id, "testsmdpplus1.example.com", None);
        for (k, v) in extra.as_object().expect("object") {
            b[k] = v.clone();
        }
        b
    };
    let register_with = async |dp: &mut Connection, id: &str, extra| {
        dp.call(
            smds::sgp22::paths::path::ES12_REGISTER_EVENT,
            &body(id, extra),
        )
        .await
        .expect("answer")
    };
    let full = json!({
        "eventType": 2,
        "hashedIccids": [STANDARD.encode([0x11; 32]), STANDARD.encode([0x22; 32])],
        "salt": STANDARD.encode([0x33; 16]),
        "serviceProviderName": "Lab Operator",
        "operatorId": {"mccMnc": STANDARD.encode([0x02, 0xF8, 0x01]), "gid1": STANDARD.encode([0xAB])},
    });
    assert!(register_with(&mut dp, "ev-full", full).await.is_success());
    assert!(register(&mut dp, EID, "ev-plain").await.is_success());
    for (extra, code) in [
        (json!({"eventType": -1}), "1.1/2.1"),
        (json!({"hashedIccids": ["!"]}), "1.1/2.1"),
        (json!({"salt": STANDARD.encode([0u8; 65])}), "1.1/2.1"),
        (json!({"serviceProviderName": "x".repeat(33)}), "1.1/2.1"),
        (
            json!({"operatorId": {"mccMnc": STANDARD.encode([1, 2])}}),
            "1.1/2.1",
        ),
        (json!({"operatorId": {}}), "1.1/2.2"),
    ] {
        let r = register_with(&mut dp, "ev-bad", extra.clone()).await;
        assert_eq!(r.code(), Some(code.into()), "{extra}: {:?}", r.body);
    }

    let mut conn = connect(&server, lpa_tls(&lab.pki)).await;
    let mut e = SoftEuicc::load(&lab.pki, Curve::NistP256, None).expect("eUICC");
    // A v2 device: the same two keys per entry as ever.
    let (_, r) = discover_raw(&mut conn, &e).await;
    for entry in r.body["eventEntries"].as_array().expect("entries") {
        let keys: Vec<&String> = entry.as_object().expect("object").keys().collect();
        assert_eq!(keys, ["eventId", "rspServerAddress"]);
    }
    e.euicc_signed_smds_response = true;
    e.lpa_signed_smds_response = true;
    let (_, r) = discover_raw(&mut conn, &e).await;
    let answer = AuthenticateClientResponse::from_result(&r).expect("v3 answer");
    let signed = answer.signed.expect("a signed list");
    let decoded: SmdsSigned2 = rasn::der::decode(&signed.smds_signed2).expect("SmdsSigned2");
    let RequestSpecificData::EventList(list) = decoded.request_specific_data else {
        panic!("an eventList");
    };
    let octets = |b: &[u8]| OctetString::from_slice(b);
    assert_eq!(
        list.event_entries,
        [
            EventRecordV3 {
                event_id: "ev-full".into(),
                rsp_server_address: "testsmdpplus1.example.com".into(),
                event_type: 2.into(),
                hashed_iccids: Some(vec![octets(&[0x11; 32]), octets(&[0x22; 32])]),
                salt: Some(octets(&[0x33; 16])),
                service_provider_name: Some("Lab Operator".into()),
                operator_id: Some(OperatorId {
                    mcc_mnc: octets(&[0x02, 0xF8, 0x01]),
                    gid1: Some(octets(&[0xAB])),
                    gid2: None,
                }),
            },
            EventRecordV3 {
                event_id: "ev-plain".into(),
                rsp_server_address: "testsmdpplus1.example.com".into(),
                event_type: 0.into(),
                hashed_iccids: None,
                salt: None,
                service_provider_name: None,
                operator_id: None,
            },
        ]
    );
    // Re-encoding what rasn decoded gives the signed bytes back: our DER is canonical.
    assert_eq!(
        rasn::der::encode(&list.event_entries[0]).expect("encode"),
        first_record(&signed.smds_signed2)
    );
    server.stop().await;
}

on_both_stores!(event_details);

/// The first EventRecordV3's DER inside SmdsSigned2.
fn first_record(smds_signed2: &[u8]) -> Vec<u8> {
    let top = pki_tool::tlv::parse_single(smds_signed2, "SmdsSigned2").expect("TLV");
    let mut r = top.reader();
    r.read().expect("transactionId");
    let list = r.read().expect("eventList");
    let entries = list.reader().read().expect("eventEntries");
    entries.reader().read().expect("a record").raw.to_vec()
}
