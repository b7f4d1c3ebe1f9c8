//! The admin listener shows every EID, EventID and owner: it stays on loopback unless exposed
//! on purpose with a bearer token, its listings are capped and streamed page by page, and bad
//! query values are refused alike.

mod support;

use smds::config::Limits;
use smds::server::{Server, StartError};
use support::*;

async fn http_get(addr: std::net::SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    http(addr, "GET", path, token).await
}

async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    s.write_all(
        format!("{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n")
            .as_bytes(),
    )
    .await
    .expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The JSON of a chunked body.
fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&tail[..n]);
        rest = &tail[n + 2..];
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_admin_listener_needs_an_explicit_setting_and_a_token() {
    let lab = Lab::new("admin-remote");
    let pki = smds::pki::ServerPki::load(&lab.pki, pki_tool::time::now()).expect("pki");
    let mut cfg = lab.config(Limits::default());
    cfg.admin_listen = Some("0.0.0.0:0".parse().expect("addr"));
    let refused = Server::start(&cfg, &pki, None)
        .await
        .err()
        .expect("refused");
    assert!(matches!(refused, StartError::AdminExposed(_)), "{refused}");
    cfg.admin_allow_remote = true;
    let refused = Server::start(&cfg, &pki, None)
        .await
        .err()
        .expect("refused");
    assert!(matches!(refused, StartError::AdminExposed(_)), "{refused}");
    let token_file = lab.tmp.0.join("admin.token");
    std::fs::write(&token_file, "short\n").expect("write");
    cfg.admin_token_file = Some(token_file.clone());
    let refused = Server::start(&cfg, &pki, None)
        .await
        .err()
        .expect("refused");
    assert!(refused.to_string().contains("admin.token"), "{refused}");

    let token = "lab-admin-token-0123456789";
    std::fs::write(&token_file, format!("{token}\n")).expect("write");
    let server = Server::start(&cfg, &pki, None).await.expect("starts");
    let port = server.admin_addr.expect("admin").port();
    let admin = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    assert_eq!(http_get(admin, "/admin/events/count", None).await.0, 401);
    assert_eq!(
        http_get(admin, "/admin/events/count", Some("wrong-token-0123456789"))
            .await
            .0,
        401
    );
    let (status, body) = http_get(admin, "/admin/events/count", Some(token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(http_get(admin, "/metrics", Some(token)).await.0, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_are_streamed_in_pages_capped_and_checked() {
    let lab = Lab::new("admin-list");
    let limits = Limits {
        max_events_per_eid: 10_000,
        max_events_per_eid_all_owners: 10_000,
        ..Limits::default()
    };
    let server = start(&lab.pki, &lab.config(limits), None).await;
    let admin = server.admin_addr.expect("admin");
    let mut c = connect(&server, smdp(&lab.pki, "", &lab.pki)).await;
    // More than two pages, over two EIDs.
    for i in 0..1300 {
        assert!(register(&mut c, EID, &format!("a{i}")).await.is_success());
    }
    for i in 0..1000 {
        assert!(register(&mut c, EID2, &format!("b{i}")).await.is_success());
    }
    let all = |body: &str| -> Vec<serde_json::Value> {
        let v: serde_json::Value = serde_json::from_str(&dechunk(body)).expect("JSON");
        v["events"].as_array().cloned().expect("events")
    };
    let (status, body) = http_get(admin, "/admin/events?limit=100000", None).await;
    assert_eq!(status, 200);
    let events = all(&body);
    assert_eq!(events.len(), 2300);
    let mut seen = std::collections::BTreeSet::new();
    for e in &events {
        assert!(
            seen.insert((e["eid"].to_string(), e["event_id"].to_string())),
            "no repeats"
        );
    }
    let (_, body) = http_get(admin, "/admin/events?limit=1500", None).await;
    assert_eq!(all(&body).len(), 1500);
    let (_, body) = http_get(admin, &format!("/admin/events?eid={EID2}&limit=5000"), None).await;
    assert_eq!(all(&body).len(), 1000);
    // Over the cap: the cap; not a number: refused like a bad EID.
    let (status, body) = http_get(admin, "/admin/events?limit=999999999", None).await;
    assert_eq!((status, all(&body).len()), (200, 2300));
    assert_eq!(
        http_get(admin, "/admin/events?limit=abc", None).await.0,
        400
    );
    assert_eq!(http_get(admin, "/admin/events?eid=123", None).await.0, 400);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_operational_metrics() {
    let lab = Lab::new("admin-health");
    let server = start(&lab.pki, &lab.config(Limits::default()), None).await;
    let admin = server.admin_addr.expect("admin");
    assert_eq!(
        http_get(admin, "/healthz", None).await,
        (200, "ok\n".into())
    );
    let (status, body) = http_get(admin, "/readyz", None).await;
    assert_eq!(status, 200, "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(doc["ready"], true);
    assert_eq!(doc["events"], 0);
    let (status, metrics) = http_get(admin, "/metrics", None).await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains(&format!(
            "smds_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )),
        "{metrics}"
    );
    for name in [
        "smds_uptime_seconds ",
        "smds_process_resident_memory_bytes ",
        "smds_process_open_fds ",
    ] {
        assert!(metrics.contains(name), "{name} missing:\n{metrics}");
    }
    // Every configured certificate, with the days it has left (CERT.DS.TLS: 398-day template).
    let ds_tls = metrics
        .lines()
        .find(|l| {
            l.starts_with("smds_certificate_days_left{")
                && l.contains("certificate=\"CERT.DS.TLS\"")
        })
        .expect("CERT.DS.TLS days left");
    let days: i64 = ds_tls
        .rsplit(' ')
        .next()
        .and_then(|d| d.parse().ok())
        .expect("a number");
    assert!((390..=398).contains(&days), "{ds_tls}");
    assert!(metrics.contains("certificate=\"CERT.DSauth\""), "{metrics}");
    assert!(metrics.contains("certificate=\"CI\""), "{metrics}");
    server.stop().await;

    // The same server seen from a time when its certificates have expired: not ready, and why.
    let data = lab.tmp.0.join("later");
    let cfg = smds::config::Config {
        data_dir: data,
        ..lab.config(Limits::default())
    };
    let later: smds::transport::tls::Clock =
        std::sync::Arc::new(|| pki_tool::time::now() + 3 * 365 * 86_400);
    let server = start(&lab.pki, &cfg, Some(later)).await;
    let (status, body) = http_get(server.admin_addr.expect("admin"), "/readyz", None).await;
    assert_eq!(status, 503, "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(doc["ready"], false);
    assert!(
        doc["problems"]
            .as_array()
            .expect("problems")
            .iter()
            .any(|p| p
                .as_str()
                .is_some_and(|p| p.starts_with("CERT.DS.TLS ") && p.contains("expired"))),
        "{doc}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_removes_events_whatever_their_owner_and_the_bounds_follow() {
    let lab = Lab::new("admin-delete");
    let limits = Limits {
        max_events_per_eid: 2,
        ..Limits::default()
    };
    let server = start(&lab.pki, &lab.config(limits), None).await;
    let admin = server.admin_addr.expect("admin");
    let mut dp1 = connect(&server, smdp(&lab.pki, "", &lab.pki)).await;
    let mut dp2 = connect(&server, smdp(&lab.pki, "2", &lab.pki)).await;
    assert!(register(&mut dp1, EID, "ev/1 x").await.is_success());
    assert!(register(&mut dp1, EID, "ev-2").await.is_success());
    assert!(register(&mut dp2, EID, "ev/1 x").await.is_success());
    assert!(register(&mut dp2, EID2, "other").await.is_success());
    // dp1 is at its bound for EID.
    assert!(!register(&mut dp1, EID, "ev-3").await.is_success());

    for (query, why) in [
        ("", "say which events"),
        ("?event_id=ev-2", "event_id needs eid"),
        ("?eid=123", "eid:"),
        ("?before=yesterday", "before:"),
    ] {
        let (status, body) = http(admin, "DELETE", &format!("/admin/events{query}"), None).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body.contains(why), "{query}: {body}");
    }
    // One EventID of one EID: both SM-DP+s' events of that name (percent-encoded in the query).
    let (status, body) = http(
        admin,
        "DELETE",
        &format!("/admin/events?eid={EID}&event_id=ev%2F1%20x"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(doc["deleted"], 2, "{doc}");
    // The owner's own delete now misses, and dp1 has room again.
    assert!(!delete(&mut dp1, EID, "ev/1 x").await.is_success());
    assert!(register(&mut dp1, EID, "ev-3").await.is_success());
    // Everything registered before a time in the future: all that is left.
    let later = pki_tool::time::now() + 60;
    let (status, body) = http(
        admin,
        "DELETE",
        &format!("/admin/events?before={later}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(doc["deleted"], 3, "{doc}");
    assert_eq!(server.state.store.count().await.expect("count"), 0);
    assert_eq!(
        server
            .state
            .store
            .check_integrity()
            .await
            .expect("consistent"),
        0
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_older_than_the_retention_period_are_removed() {
    let lab = Lab::new("retention");
    let server = start(&lab.pki, &lab.config(Limits::default()), None).await;
    let mut dp = connect(&server, smdp(&lab.pki, "", &lab.pki)).await;
    assert!(register(&mut dp, EID, "old-1").await.is_success());
    assert!(register(&mut dp, EID2, "old-2").await.is_success());
    drop(dp);
    server.stop().await;
    // Ten days later (the injected clock drives registered_at and the retention cut-off), with
    // a five-day retention period: the old events go at start, a new one stays.
    let later: smds::transport::tls::Clock =
        std::sync::Arc::new(|| pki_tool::time::now() + 10 * 86_400);
    let cfg = smds::config::Config {
        event_ttl: Some(std::time::Duration::from_secs(5 * 86_400)),
        ..lab.config(Limits::default())
    };
    let server = start(&lab.pki, &cfg, Some(later)).await;
    let mut dp = connect(&server, smdp(&lab.pki, "", &lab.pki)).await;
    assert!(register(&mut dp, EID, "new").await.is_success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let left = server.state.store.list(None, 10).await.expect("list");
        if left.len() == 1 {
            assert_eq!(left[0].record.event_id.as_str(), "new");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{left:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    server.stop().await;
}
