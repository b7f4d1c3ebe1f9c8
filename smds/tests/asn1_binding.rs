//! ES11 on the ASN.1 binding (`POST /gsma/rsp2/asn1`, `application/x-gsma-rsp-asn1`), checked
//! with an independent encoder and decoder: the rsp.asn structures written out below as rasn
//! types (not the server's TLV code) build the requests and read the answers. A software eUICC
//! authenticates through it end to end; the INTEGER error alternatives, the HTTP refusals of what
//! is no ES11 call, and the JSON binding's unchanged answers are checked too.

mod support;

use pki_tool::Curve;
use rasn::prelude::*;
use smds::config::Limits;
use smds::lab::https::Connection;
use smds::lab::soft_euicc::SoftEuicc;
use smds::sgp22::paths::path;
use smds::sgp22::responses::InitiateAuthenticationResponse as ServerAnswer;
use support::*;

const MEDIA: &str = "application/x-gsma-rsp-asn1";

// rsp.asn 632-636 and 655-658 (AUTOMATIC TAGS; components already tagged keep their tags).
#[derive(AsnType, Debug, Clone, Encode, Decode)]
struct InitiateAuthenticationRequest {
    #[rasn(tag(context, 1))]
    euicc_challenge: OctetString,
    #[rasn(tag(context, 3))]
    smdp_address: Utf8String,
    /// EUICCInfo1 (BF20), as the eUICC produced it.
    euicc_info1: Any,
}

#[derive(AsnType, Debug, Clone, Encode, Decode)]
struct AuthenticateClientRequest {
    #[rasn(tag(context, 0))]
    transaction_id: OctetString,
    /// AuthenticateServerResponse (BF38), as the eUICC produced it.
    authenticate_server_response: Any,
}

// rsp.asn 616-622: RemoteProfileProvisioningRequest ::= [2] CHOICE, the alternatives [57]/[59]
// on SEQUENCE types (BF39/BF3B).
#[derive(AsnType, Debug, Clone, Encode, Decode)]
#[rasn(choice)]
enum RequestChoice {
    #[rasn(tag(context, 57))]
    InitiateAuthentication(InitiateAuthenticationRequest),
    #[rasn(tag(context, 59))]
    AuthenticateClient(AuthenticateClientRequest),
}

#[derive(AsnType, Debug, Clone, Encode, Decode)]
#[rasn(delegate, tag(explicit(context, 2)))]
struct RemoteProfileProvisioningRequest(RequestChoice);

// rsp.asn 646-652.
#[derive(AsnType, Debug, Clone, Encode, Decode)]
struct InitiateAuthenticationOkEs9 {
    #[rasn(tag(context, 0))]
    transaction_id: OctetString,
    server_signed1: Any,
    #[rasn(tag(application, 55))]
    server_signature1: OctetString,
    euicc_ci_pkid_to_be_used: OctetString,
    server_certificate: Any,
    /// SGP.22 v3 (`sgp22-v3-es15-notes.md` 1.2): `otherCertsInChain [1] CertificateChain
    /// OPTIONAL`, the SubCAs above CERT.DSauth.
    #[rasn(tag(context, 1))]
    other_certs_in_chain: Option<SequenceOf<Any>>,
}

// rsp.asn 638-644: the alternatives carry automatic tags [0] and [1].
#[derive(AsnType, Debug, Clone, Encode, Decode)]
#[rasn(choice)]
enum InitiateAuthenticationResponse {
    #[rasn(tag(context, 0))]
    Ok(InitiateAuthenticationOkEs9),
    #[rasn(tag(context, 1))]
    Error(Integer),
}

// rsp.asn 776-784.
#[derive(AsnType, Debug, Clone, Encode, Decode, PartialEq, Eq)]
struct EventEntries {
    #[rasn(tag(context, 0))]
    event_id: Utf8String,
    #[rasn(tag(context, 1))]
    rsp_server_address: Utf8String,
}

#[derive(AsnType, Debug, Clone, Encode, Decode)]
struct AuthenticateClientOkEs11 {
    #[rasn(tag(context, 0))]
    transaction_id: OctetString,
    #[rasn(tag(context, 1))]
    event_entries: SequenceOf<EventEntries>,
}

// rsp.asn 761-773.
#[derive(AsnType, Debug, Clone, Encode, Decode)]
#[rasn(choice)]
enum AuthenticateClientResponseEs11 {
    #[rasn(tag(context, 0))]
    Ok(AuthenticateClientOkEs11),
    #[rasn(tag(context, 1))]
    Error(Integer),
}

// rsp.asn 624-630: the [57] and [64] tags are on CHOICE types, hence explicit.
#[derive(AsnType, Debug, Clone, Encode, Decode)]
#[rasn(choice)]
enum ResponseChoice {
    #[rasn(tag(explicit(context, 57)))]
    InitiateAuthentication(InitiateAuthenticationResponse),
    #[rasn(tag(explicit(context, 64)))]
    AuthenticateClientEs11(AuthenticateClientResponseEs11),
}

#[derive(AsnType, Debug, Clone, Encode, Decode)]
#[rasn(delegate, tag(explicit(context, 2)))]
struct RemoteProfileProvisioningResponse(ResponseChoice);

/// POSTs `body` to the ASN.1 binding: the HTTP status, and the answer decoded when it is 200.
async fn post(conn: &mut Connection, body: Vec<u8>) -> (u16, Option<ResponseChoice>, bytes::Bytes) {
    let raw = conn
        .post_raw(path::ASN1, MEDIA, body)
        .await
        .expect("answer");
    let decoded = (raw.status == 200).then(|| {
        let content_type = raw
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert_eq!(content_type, MEDIA);
        rasn::der::decode::<RemoteProfileProvisioningResponse>(&raw.body)
            .unwrap_or_else(|e| panic!("not a RemoteProfileProvisioningResponse: {e}"))
            .0
    });
    (raw.status, decoded, raw.body)
}

fn request(choice: RequestChoice) -> Vec<u8> {
    rasn::der::encode(&RemoteProfileProvisioningRequest(choice)).expect("encode")
}

fn initiate(euicc: &SoftEuicc, challenge: &[u8; 16], address: &str) -> Vec<u8> {
    let info1 = euicc.euicc_info1().expect("EUICCInfo1");
    request(RequestChoice::InitiateAuthentication(
        InitiateAuthenticationRequest {
            euicc_challenge: OctetString::from_slice(challenge),
            smdp_address: address.into(),
            euicc_info1: Any::new(info1),
        },
    ))
}

fn integer(i: &Integer) -> i64 {
    i64::try_from(i).expect("small")
}

/// InitiateAuthentication, the eUICC's ES10b.AuthenticateServer, and AuthenticateClient, all
/// expected to succeed: both answers, and the AuthenticateClient request (to replay).
async fn authenticate_over_asn1(
    conn: &mut Connection,
    euicc: &SoftEuicc,
    address: &str,
) -> (
    InitiateAuthenticationOkEs9,
    AuthenticateClientOkEs11,
    Vec<u8>,
) {
    let challenge = SoftEuicc::challenge().expect("challenge");
    let (status, answer, _) = post(conn, initiate(euicc, &challenge, address)).await;
    assert_eq!(status, 200);
    let Some(ResponseChoice::InitiateAuthentication(InitiateAuthenticationResponse::Ok(ok))) =
        answer
    else {
        panic!("initiateAuthenticationOk expected: {answer:?}");
    };
    let server_answer = ServerAnswer {
        transaction_id: smds::asn1::TransactionId::new(&ok.transaction_id).expect("tid"),
        server_signed1: ok.server_signed1.as_bytes().to_vec(),
        server_signature1: pki_tool::tlv::tlv(0x5F37, &ok.server_signature1),
        euicc_ci_pkid_to_be_used: ok.euicc_ci_pkid_to_be_used.to_vec(),
        server_certificate: ok.server_certificate.as_bytes().to_vec(),
        other_certs_in_chain: ok
            .other_certs_in_chain
            .iter()
            .flatten()
            .map(|c| c.as_bytes().to_vec())
            .collect(),
    };
    // The software eUICC checks CERT.DSauth and serverSignature1 as ES10b.AuthenticateServer does.
    let response = euicc
        .authenticate_server(
            &challenge,
            &server_answer,
            address,
            None,
            pki_tool::time::now(),
        )
        .expect("the eUICC accepts the server");
    let authenticate = request(RequestChoice::AuthenticateClient(
        AuthenticateClientRequest {
            transaction_id: ok.transaction_id.clone(),
            authenticate_server_response: Any::new(response),
        },
    ));
    let (status, answer, _) = post(conn, authenticate.clone()).await;
    assert_eq!(status, 200);
    let Some(ResponseChoice::AuthenticateClientEs11(AuthenticateClientResponseEs11::Ok(ok11))) =
        answer
    else {
        panic!("authenticateClientOk expected: {answer:?}");
    };
    (ok, ok11, authenticate)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_over_the_asn1_binding() {
    let lab = Lab::new("asn1-binding");
    let server = start(&lab.pki, &lab.config(Limits::default()), None).await;
    let mut dp = connect(&server, smdp(&lab.pki, "", &lab.pki)).await;
    for id in ["ev-1", "ev-2"] {
        assert!(register(&mut dp, EID, id).await.is_success());
    }
    let euicc = SoftEuicc::load(&lab.pki, Curve::NistP256, None).expect("eUICC");
    let address = format!("localhost:{}", server.addr.port());
    let mut conn = connect(&server, anonymous(&lab.pki)).await;

    let (ok, ok11, authenticate) = authenticate_over_asn1(&mut conn, &euicc, &address).await;
    assert!(ok.other_certs_in_chain.is_none(), "Variant O: no SubCAs");
    assert_eq!(ok11.transaction_id, ok.transaction_id);
    let entry = |id: &str| EventEntries {
        event_id: id.into(),
        rsp_server_address: "testsmdpplus1.example.com".into(),
    };
    assert_eq!(ok11.event_entries, vec![entry("ev-1"), entry("ev-2")]);

    // The same AuthenticateClient again: invalidTransactionId(7).
    let (status, answer, _) = post(&mut conn, authenticate).await;
    assert_eq!(status, 200);
    let Some(ResponseChoice::AuthenticateClientEs11(AuthenticateClientResponseEs11::Error(e))) =
        answer
    else {
        panic!("authenticateClientError expected: {answer:?}");
    };
    assert_eq!(integer(&e), 7);

    // Another SM-DS's address: invalidDpAddress(1).
    let challenge = SoftEuicc::challenge().expect("challenge");
    let (status, answer, _) =
        post(&mut conn, initiate(&euicc, &challenge, "other.example.com")).await;
    assert_eq!(status, 200);
    let Some(ResponseChoice::InitiateAuthentication(InitiateAuthenticationResponse::Error(e))) =
        answer
    else {
        panic!("initiateAuthenticationError expected: {answer:?}");
    };
    assert_eq!(integer(&e), 1);

    // The lab LPA on this binding: `smds discover --binding asn1`, and a refusal in its words.
    let stdout = run_smds([
        "discover".into(),
        "--binding".into(),
        "asn1".into(),
        "--server".into(),
        format!("https://localhost:{}", server.addr.port()).into(),
        "--certdir".into(),
        lab.pki.clone().into_os_string(),
    ]);
    assert!(
        stdout.contains("2 event(s)") && stdout.contains("ev-2  testsmdpplus1.example.com"),
        "{stdout}"
    );
    let opts = smds::lab::lpa::DiscoveryOptions {
        address: "other.example.com".into(),
        ..discovery_options(
            &server,
            &lab.pki,
            None,
            smds::sgp22::Es11PathFamily::Es9Plus,
        )
    };
    match smds::lab::lpa::discover_asn1(&euicc, &opts)
        .await
        .expect("an answer")
    {
        smds::lab::lpa::Discovery::PushRegistered { .. } => panic!("a push registration answer"),
        smds::lab::lpa::Discovery::Failed { step, result } => {
            assert_eq!(step, "InitiateAuthentication");
            assert_eq!(
                result.message.as_deref(),
                Some("initiateAuthenticationError 1 (invalidDpAddress)")
            );
        }
        d => panic!("refused expected: {d:?}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn what_is_no_es11_call_is_refused_at_the_http_level() {
    let lab = Lab::new("asn1-refusals");
    let server = start(&lab.pki, &lab.config(Limits::default()), None).await;
    let mut conn = connect(&server, anonymous(&lab.pki)).await;
    let euicc = SoftEuicc::load(&lab.pki, Curve::NistP256, None).expect("eUICC");
    let good = initiate(&euicc, &[7; 16], "localhost");
    // Truncated, trailing bytes, another wrapper, an ES9+ function (GetBoundProfilePackage, BF3A).
    let mut trailing = good.clone();
    trailing.push(0);
    let mut other_wrapper = good.clone();
    other_wrapper[0] = 0xA3;
    let es9 = pki_tool::tlv::tlv(0xA2, &pki_tool::tlv::tlv(0xBF3A, &[0x80, 0x01, 0x01]));
    for (what, body, wanted) in [
        ("truncated", good[..good.len() - 3].to_vec(), "DER"),
        ("trailing", trailing, "DER"),
        ("wrapper", other_wrapper, "A2"),
        ("ES9+", es9, "ES9+"),
        ("empty", Vec::new(), "DER"),
    ] {
        let (status, _, text) = post(&mut conn, body).await;
        assert_eq!(status, 400, "{what}");
        let text = String::from_utf8_lossy(&text);
        assert!(text.contains(wanted), "{what}: {text}");
    }
    let raw = conn
        .post_raw(path::ASN1, "application/json", good.clone())
        .await
        .expect("answer");
    assert_eq!(raw.status, 415);
    // A v3 LPA's lpaRspCapability [5] after euiccInfo1 (rsp.asn: EXTENSIBILITY IMPLIED) is
    // accepted.
    let info1 = euicc.euicc_info1().expect("EUICCInfo1");
    let v3 = pki_tool::tlv::tlv(
        0xA2,
        &pki_tool::tlv::constructed(
            0xBF39,
            &[
                &pki_tool::tlv::tlv(0x81, &[7; 16]),
                &pki_tool::tlv::tlv(0x83, b"localhost"),
                &info1,
                &pki_tool::tlv::tlv(0x85, &[0x02, 0x04]),
            ],
        ),
    );
    let (status, answer, _) = post(&mut conn, v3).await;
    assert_eq!(status, 200);
    assert!(
        matches!(
            answer,
            Some(ResponseChoice::InitiateAuthentication(
                InitiateAuthenticationResponse::Ok(_)
            ))
        ),
        "{answer:?}"
    );
    // The JSON binding is unchanged beside it.
    assert_eq!(
        discovery_outcome(&server, &lab.pki, Curve::NistP256).await,
        Ok(0)
    );
    server.stop().await;
}

/// SGP.26 v3 Variant C on the ASN.1 binding: InitiateAuthenticationOkEs9 carries the SubCAs above
/// CERT.DSauth in `otherCertsInChain [1]` (read by the independent decoder above), with which
/// openssl verifies CERT.DSauth to the CI; the eUICC's own SubCA chain comes back in
/// `otherCertsInChain [0]` and its events are answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn variant_c_chains_over_the_asn1_binding() {
    use pki_tool::{Role, Variant};
    let tmp = TempDir::new("asn1-variant-c");
    let dir = tmp.0.join("pki");
    let h = mint_v3(&dir, Variant::C, None);
    let cfg = loopback_config(&dir, &tmp.0.join("data"), Limits::default());
    let server = start(&dir, &cfg, None).await;
    let mut dp = connect(&server, smdp_v3(&h, usize::MAX, &tmp.0)).await;
    assert!(register(&mut dp, EID, "ev-c").await.is_success());
    let ci_file = ci_of(&h);

    let euicc = SoftEuicc::load(&dir, Curve::NistP256, None).expect("eUICC");
    let cas = smds::lab::https::read_cas(std::slice::from_ref(&ci_file)).expect("CI");
    let mut conn = connect(&server, smds::lab::lpa::lpa_tls_config(cas).expect("TLS")).await;
    let address = format!("localhost:{}", server.addr.port());
    let (ok, ok11, _) = authenticate_over_asn1(&mut conn, &euicc, &address).await;
    assert_eq!(
        ok11.event_entries,
        vec![EventEntries {
            event_id: "ev-c".into(),
            rsp_server_address: "testsmdpplus1.example.com".into(),
        }]
    );
    let sub_cas: Vec<Vec<u8>> = ok
        .other_certs_in_chain
        .iter()
        .flatten()
        .map(|c| c.as_bytes().to_vec())
        .collect();
    let expected: Vec<Vec<u8>> = h
        .intermediates(Role::Dsauth, Curve::NistP256)
        .expect("DSauth chain")
        .iter()
        .map(|c| c.der().to_vec())
        .collect();
    assert_eq!(sub_cas, expected, "the DS SubCA, then the CI SubCA");
    assert_eq!(sub_cas.len(), 2);
    // The eUICC has a v3 chain under this CI: serverSigned1 names it in
    // sessionContext.euiccCiPKIdToBeUsedV3.
    let signed: smds::asn1::ServerSigned1 =
        rasn::der::decode(ok.server_signed1.as_bytes()).expect("serverSigned1");
    let context = signed.session_context.expect("sessionContext");
    assert_eq!(
        context.euicc_ci_pkid_to_be_used_v3.as_deref(),
        Some(euicc.ci.key_id().as_slice())
    );
    assert_eq!(context.supported_push_services, None);

    // openssl's view: CERT.DSauth verifies to the CI through exactly what the server sent.
    let pem_of = |ders: &[&[u8]]| {
        ders.iter()
            .map(|d| {
                pki_tool::Certificate::from_der(d)
                    .expect("certificate")
                    .to_pem()
            })
            .collect::<String>()
    };
    let write = |name: &str, text: String| {
        let p = tmp.0.join(name);
        std::fs::write(&p, text).expect("write");
        p
    };
    let ci_pem = write(
        "ci.pem",
        pem_of(&[std::fs::read(&ci_file).expect("CI").as_slice()]),
    );
    let leaf = write("dsauth.pem", pem_of(&[ok.server_certificate.as_bytes()]));
    let verify = |untrusted: &[&[u8]]| {
        let mut cmd = std::process::Command::new("openssl");
        cmd.arg("verify").arg("-CAfile").arg(&ci_pem);
        if !untrusted.is_empty() {
            cmd.arg("-untrusted")
                .arg(write("untrusted.pem", pem_of(untrusted)));
        }
        cmd.arg(&leaf).output().expect("openssl runs")
    };
    let sent: Vec<&[u8]> = sub_cas.iter().map(Vec::as_slice).collect();
    let out = verify(&sent);
    assert!(
        out.status.success(),
        "openssl verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !verify(&[]).status.success(),
        "CERT.DSauth is not under the CI directly"
    );
    server.stop().await;
}
