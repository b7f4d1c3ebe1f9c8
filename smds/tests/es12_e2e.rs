//! ES12 end to end over real TLS on loopback: registration, duplicates (per owning SM-DP+),
//! deletion by the owner and by a foreign SM-DP+ (indistinguishable from an unknown event), missing and foreign client
//! certificates, the real SGP.26 DP TLS certificate, expired certificates, and malformed requests.

mod support;

use smds::config::Limits;
use smds::sgp22::FunctionResult;
use support::*;

on_both_stores!(
    register_duplicate_delete_and_privacy,
    real_sgp26_dp_tls_certificate_and_injected_clock,
    bad_eids_and_malformed_requests,
    metrics_and_admin_endpoints,
    client_certificates_are_required_and_checked,
);

fn assert_failed(r: &FunctionResult, code: &str) {
    assert_eq!(r.status, "Failed", "{:?}", r.body);
    assert_eq!(r.code().as_deref(), Some(code), "{:?}", r.body);
    assert_eq!(r.http_status, 200);
}

async fn register_duplicate_delete_and_privacy(kind: StoreKind) {
    let lab = Lab::new("es12");
    let (cfg, _pg) = kind.apply(lab.config(Limits::default()));
    let server = start(&lab.pki, &cfg, None).await;
    let mut dp1 = connect(&server, smdp(&lab.pki, "", &lab.pki)).await;
    let mut dp2 = connect(&server, smdp(&lab.pki, "2", &lab.pki)).await;

    let r = register(&mut dp1, EID, "ev-1").await;
    assert!(r.is_success(), "{:?}", r.body);
    assert!(
        r.body["header"]["functionExecutionStatus"]
            .get("statusCodeData")
            .is_none()
    );
    assert_failed(&register(&mut dp1, EID, "ev-1").await, "8.9.5/3.3");
    // Another SM-DP+ may use the same EventID for the EID: uniqueness is per owner, so the answer
    // reveals nothing about dp1's events (see es12_isolation.rs). It deletes its own again.
    assert!(register(&mut dp2, EID, "ev-1").await.is_success());
    assert!(delete(&mut dp2, EID, "ev-1").await.is_success());
    assert!(register(&mut dp1, EID, "ev-2").await.is_success());
    assert!(register(&mut dp2, EID2, "ev-1").await.is_success());

    // A foreign SM-DP+ deleting ev-1 gets exactly what an unknown event gets.
    let foreign = dp2
        .post_raw(
            smds::sgp22::paths::path::ES12_DELETE_EVENT,
            "application/json",
            smds::lab::smdp::delete_event_body(EID, "ev-1")
                .to_string()
                .into_bytes(),
        )
        .await
        .expect("answer");
    let unknown = dp2
        .post_raw(
            smds::sgp22::paths::path::ES12_DELETE_EVENT,
            "application/json",
            smds::lab::smdp::delete_event_body(EID, "nope")
                .to_string()
                .into_bytes(),
        )
        .await
        .expect("answer");
    assert_eq!(foreign.status, unknown.status);
    assert_eq!(foreign.body, unknown.body);
    assert_failed(&foreign.function_result().expect("json"), "8.9.5/3.9");

    // The owner deletes; the identity recorded is the SM-DP+'s.
    let stored = server
        .state
        .store
        .events_for(&pki_tool::Eid::parse(EID).expect("eid"))
        .await
        .expect("read");
    assert_eq!(stored.len(), 2);
    assert!(
        stored[0].record.owner.as_str().ends_with("/rid:2.999.10"),
        "{}",
        stored[0].record.owner
    );
    assert_eq!(
        stored[0].record.owner_names,
        vec!["dns:testsmdpplus1.example.com", "rid:2.999.10"]
    );
    assert!(delete(&mut dp1, EID, "ev-1").await.is_success());
    assert_failed(&delete(&mut dp1, EID, "ev-1").await, "8.9.5/3.9");
    let left: Vec<String> = server
        .state
        .store
        .events_for(&pki_tool::Eid::parse(EID).expect("eid"))
        .await
        .expect("read")
        .into_iter()
        .map(|e| e.record.event_id.to_string())
        .collect();
    assert_eq!(left, ["ev-2"]);
    server.stop().await;
}

async fn client_certificates_are_required_and_checked(kind: StoreKind) {
    let lab = Lab::new("mtls");
    let (cfg, _pg) = kind.apply(lab.config(Limits::default()));
    let server = start(&lab.pki, &cfg, None).await;

    // No client certificate: TLS works (ES11 needs that), ES12 is refused with 403.
    let mut anon = connect(&server, anonymous(&lab.pki)).await;
    let raw = anon
        .post_raw(
            smds::sgp22::paths::path::ES12_REGISTER_EVENT,
            "application/json",
            smds::lab::smdp::register_event_body(EID, "x", "a.example", None)
                .to_string()
                .into_bytes(),
        )
        .await
        .expect("answer");
    assert_eq!(raw.status, 403);
    let r = raw.function_result().expect("json");
    assert_eq!(r.code().as_deref(), Some("1.1/1.2"));

    // A client certificate from another CI fails the handshake.
    let foreign_tls = smdp(&lab.foreign, "", &lab.pki);
    let err = smds::lab::https::Connection::open(
        &endpoint(&server),
        foreign_tls,
        std::time::Duration::from_secs(5),
    )
    .await;
    let failed = match err {
        Err(_) => true,
        // TLS 1.3 reports a rejected client certificate on the first read.
        Ok(mut c) => c
            .call(
                smds::sgp22::paths::path::ES12_REGISTER_EVENT,
                &smds::lab::smdp::register_event_body(EID, "x", "a.example", None),
            )
            .await
            .is_err(),
    };
    assert!(failed, "a foreign client certificate must not get through");
    assert_eq!(server.state.store.count().await.expect("count"), 0);

    // A DS TLS certificate (an SM-DS's: it may call ES15, not ES12) is refused on ES12 with
    // 403 and 1.1/1.2, and nothing is stored.
    let ds_as_client = smds::lab::smdp::smdp_tls_config(
        &lab.pki.join("DStls/CERT_S_SM_DS_TLS_NIST.der"),
        &lab.pki.join("DStls/SK_S_SM_DS_TLS_NIST.pem"),
        &[ci(&lab.pki)],
    )
    .expect("config");
    let mut c = smds::lab::https::Connection::open(
        &endpoint(&server),
        ds_as_client,
        std::time::Duration::from_secs(5),
    )
    .await
    .expect("an SM-DS certificate passes TLS");
    let r = c
        .call(
            smds::sgp22::paths::path::ES12_REGISTER_EVENT,
            &smds::lab::smdp::register_event_body(EID, "x", "a.example", None),
        )
        .await
        .expect("an answer");
    assert_eq!(
        (r.http_status, r.code()),
        (403, Some("1.1/1.2".into())),
        "{:?}",
        r.body
    );
    assert_eq!(server.state.store.count().await.expect("count"), 0);
    server.stop().await;
}

async fn real_sgp26_dp_tls_certificate_and_injected_clock(kind: StoreKind) {
    // An SM-DS under the GSMA Test CI (its keys are public), as real test eUICCs need.
    let tmp = TempDir::new("sgp26");
    let pki = tmp.0.join("gsma");
    let keys = shared().join("osmo-ttcn3-hacks_v1.5");
    mint(&pki, "sgp26-v1.5", Some(keys.clone()));
    let (lab_cfg, _pg) = kind.apply(loopback_config(
        &pki,
        &tmp.0.join("data"),
        Limits::default(),
    ));
    let server = start(&pki, &lab_cfg, None).await;
    let varo = smds::lab::smdp::smdp_tls_config(
        &keys.join("DPtls/CERT_S_SM_DP_VARO_TLS_NIST.der"),
        &keys.join("DPtls/SK_S_SM_DP_TLS_NIST.pem"),
        &[ci(&pki)],
    )
    .expect("config");
    let mut c = connect(&server, varo).await;
    assert!(register(&mut c, EID, "gsma-1").await.is_success());
    let stored = server
        .state
        .store
        .events_for(&pki_tool::Eid::parse(EID).expect("eid"))
        .await
        .expect("read");
    assert_eq!(
        stored[0].record.owner_names,
        vec!["dns:testsmdpplus1.example.com", "rid:2.999.10"]
    );

    // The pySim DP TLS certificate (same key) expired on 2026-08-02: refused now...
    let expired = || {
        smds::lab::smdp::smdp_tls_config(
            &shared().join("pysim_v1.5/DPtls/CERT_S_SM_DP_TLS_NIST.der"),
            &shared().join("pysim_v1.5/DPtls/SK_S_SM_DP_TLS_NIST.pem"),
            &[ci(&pki)],
        )
        .expect("config")
    };
    let refused = match smds::lab::https::Connection::open(
        &endpoint(&server),
        expired(),
        std::time::Duration::from_secs(5),
    )
    .await
    {
        Err(_) => true,
        Ok(mut c) => c
            .call(
                smds::sgp22::paths::path::ES12_REGISTER_EVENT,
                &smds::lab::smdp::register_event_body(EID, "old", "a.example", None),
            )
            .await
            .is_err(),
    };
    assert!(refused, "an expired client certificate must be refused");
    server.stop().await;

    // ... and accepted by a server whose clock says 2026-01-01.
    let at = pki_tool::time::parse_rfc3339("2026-01-01").expect("time");
    let server = start(&pki, &lab_cfg, Some(std::sync::Arc::new(move || at))).await;
    let mut c = connect(&server, expired()).await;
    let r = register(&mut c, EID, "gsma-2").await;
    assert!(r.is_success(), "{:?}", r.body);
    server.stop().await;
}

async fn bad_eids_and_malformed_requests(kind: StoreKind) {
    let lab = Lab::new("bad");
    let limits = Limits {
        max_body_bytes: 2048,
        ..Limits::default()
    };
    let (cfg, _pg) = kind.apply(lab.config(limits));
    let server = start(&lab.pki, &cfg, None).await;
    let mut c = connect(&server, smdp(&lab.pki, "", &lab.pki)).await;
    let call = |body: serde_json::Value| body;

    let mut body = smds::lab::smdp::register_event_body(
        "89049032123451234512345678901234",
        "e",
        "a.example",
        None,
    );
    let r = c
        .call(
            smds::sgp22::paths::path::ES12_REGISTER_EVENT,
            &call(body.clone()),
        )
        .await
        .expect("answer");
    assert_failed(&r, "8.1.1/2.1");
    assert!(
        r.message.as_deref().unwrap_or("").contains("check digits"),
        "{:?}",
        r.message
    );
    body["eid"] = "8904".into();
    assert_failed(
        &c.call(smds::sgp22::paths::path::ES12_REGISTER_EVENT, &body)
            .await
            .expect("answer"),
        "8.1.1/2.1",
    );
    body["eid"] = 89049032.into();
    assert_failed(
        &c.call(smds::sgp22::paths::path::ES12_REGISTER_EVENT, &body)
            .await
            .expect("answer"),
        "8.1.1/2.1",
    );
    body.as_object_mut().expect("object").remove("eid");
    assert_failed(
        &c.call(smds::sgp22::paths::path::ES12_REGISTER_EVENT, &body)
            .await
            .expect("answer"),
        "8.1.1/2.2",
    );

    let mut body =
        smds::lab::smdp::register_event_body(EID, "e", "https://smdp.example.com/x", None);
    assert_failed(
        &c.call(smds::sgp22::paths::path::ES12_REGISTER_EVENT, &body)
            .await
            .expect("answer"),
        "8.8.1/2.1",
    );
    body["rspServerAddress"] = "smdp.example.com:8443".into();
    body["eventId"] = "".into();
    assert_failed(
        &c.call(smds::sgp22::paths::path::ES12_REGISTER_EVENT, &body)
            .await
            .expect("answer"),
        "8.9.5/2.1",
    );
    body["eventId"] = "ok".into();
    body["forwardingIndicator"] = "yes".into();
    assert_failed(
        &c.call(smds::sgp22::paths::path::ES12_REGISTER_EVENT, &body)
            .await
            .expect("answer"),
        "1.1/2.1",
    );
    body.as_object_mut().expect("object").remove("header");
    body["forwardingIndicator"] = true.into();
    assert_failed(
        &c.call(smds::sgp22::paths::path::ES12_REGISTER_EVENT, &body)
            .await
            .expect("answer"),
        "1.1/2.2",
    );

    // Transport-level refusals.
    let raw = c
        .post_raw(
            smds::sgp22::paths::path::ES12_REGISTER_EVENT,
            "application/json",
            b"{not json".to_vec(),
        )
        .await
        .expect("answer");
    assert_eq!(raw.status, 400);
    let r = raw.function_result().expect("json");
    assert!(
        r.message
            .as_deref()
            .unwrap_or("")
            .contains("malformed JSON"),
        "{:?}",
        r.message
    );
    let raw = c
        .post_raw(
            smds::sgp22::paths::path::ES12_REGISTER_EVENT,
            "application/json",
            b"[1,2]".to_vec(),
        )
        .await
        .expect("answer");
    assert_eq!(raw.status, 400);
    let raw = c
        .post_raw(
            smds::sgp22::paths::path::ES12_REGISTER_EVENT,
            "text/plain",
            b"{}".to_vec(),
        )
        .await
        .expect("answer");
    assert_eq!(raw.status, 415);
    let raw = c
        .post_raw(
            smds::sgp22::paths::path::ES12_REGISTER_EVENT,
            "application/json",
            vec![b' '; 4096],
        )
        .await
        .expect("answer");
    assert_eq!(raw.status, 413);
    let raw = c
        .post_raw(
            "/gsma/rsp2/es12/nothing",
            "application/json",
            b"{}".to_vec(),
        )
        .await
        .expect("answer");
    assert_eq!(raw.status, 404);
    // Every answer carries the SGP.22 headers.
    assert!(
        raw.headers
            .get("x-admin-protocol")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("gsma/rsp/v2.")),
        "{:?}",
        raw.headers
    );
    assert_eq!(server.state.store.count().await.expect("count"), 0);
    // Charset parameters are fine.
    let ok = c
        .post_raw(
            smds::sgp22::paths::path::ES12_REGISTER_EVENT,
            "application/json; charset=UTF-8",
            smds::lab::smdp::register_event_body(EID, "charset", "smdp.example.com", Some(false))
                .to_string()
                .into_bytes(),
        )
        .await
        .expect("answer");
    assert!(ok.function_result().expect("json").is_success());
    server.stop().await;
}

async fn metrics_and_admin_endpoints(kind: StoreKind) {
    let lab = Lab::new("metrics");
    let (cfg, _pg) = kind.apply(lab.config(Limits::default()));
    let server = start(&lab.pki, &cfg, None).await;
    let mut c = connect(&server, smdp(&lab.pki, "", &lab.pki)).await;
    assert!(register(&mut c, EID, "m1").await.is_success());
    let admin = server.admin_addr.expect("admin listener");
    let text = admin_get(admin, "/metrics").await;
    assert!(
        text.contains(
            "smds_requests_total{function=\"ES12.RegisterEvent\",outcome=\"Executed-Success\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("smds_events_stored 1"), "{text}");
    let events = admin_get(admin, &format!("/admin/events?eid={EID}")).await;
    assert!(events.contains("\"event_id\":\"m1\""), "{events}");
    server.stop().await;
}
