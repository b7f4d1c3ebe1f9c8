//! Every resource limit, crossed: a clean refusal for the offender while other clients keep being
//! served. Also TLS versions and the SGP.22 cipher suite, and refusing bad credentials at start.

mod support;

use smds::config::Limits;
use smds::pki::ServerPki;
use std::time::{Duration, Instant};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn tight() -> Limits {
    Limits {
        tls_handshake_timeout_secs: 1,
        header_read_timeout_secs: 1,
        body_read_timeout_secs: 1,
        max_connections: 4,
        max_headers: 16,
        ..Limits::default()
    }
}

/// Reads until EOF or `limit`; returns when the server closed and how long it took.
async fn wait_closed<S: tokio::io::AsyncRead + Unpin>(
    s: &mut S,
    limit: Duration,
) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(start.elapsed()), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        }
    }
}

async fn tls_stream(
    server: &smds::server::Server,
    lab: &Lab,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("tcp");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    tokio_rustls::TlsConnector::from(anonymous(&lab.pki))
        .connect(name, tcp)
        .await
        .expect("tls")
}

async fn still_serves(server: &smds::server::Server, lab: &Lab, id: &str) {
    let mut c = connect(server, smdp(&lab.pki, "", &lab.pki)).await;
    assert!(register(&mut c, EID, id).await.is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_others_served() {
    let lab = Lab::new("slow");
    let server = start(&lab.pki, &lab.config(tight()), None).await;

    // No TLS handshake at all: closed after the handshake timeout.
    let mut silent = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("tcp");
    // Slowloris: half a request header, then nothing.
    let mut slow = tls_stream(&server, &lab).await;
    slow.write_all(b"POST /gsma/rsp2/es12/registerEvent HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .expect("write");
    // A body that never finishes.
    let mut trickle = tls_stream(&server, &lab).await;
    trickle
        .write_all(b"POST /gsma/rsp2/es11/initiateAuthentication HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\":")
        .await
        .expect("write");
    // An idle kept-alive connection after one request.
    let mut idle = tls_stream(&server, &lab).await;
    idle.write_all(b"POST /nothing HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
        .await
        .expect("write");

    // Meanwhile others are served (the four slow connections use all four slots only briefly).
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t = wait_closed(&mut silent, Duration::from_secs(5))
        .await
        .expect("handshake-less connection closed");
    assert!(
        t < Duration::from_secs(3),
        "handshake timeout: closed after {t:?}"
    );
    let t = wait_closed(&mut slow, Duration::from_secs(5))
        .await
        .expect("slowloris connection closed");
    assert!(t < Duration::from_secs(3), "slowloris closed after {t:?}");
    let t = wait_closed(&mut trickle, Duration::from_secs(5))
        .await
        .expect("trickling body closed");
    assert!(t < Duration::from_secs(3), "trickle closed after {t:?}");
    let t = wait_closed(&mut idle, Duration::from_secs(5))
        .await
        .expect("idle keep-alive connection closed");
    assert!(t < Duration::from_secs(3), "idle closed after {t:?}");
    still_serves(&server, &lab, "after-slow").await;
    server.stop().await;
}

/// A TLS stream to `server` from the loopback address `source`.
async fn tls_stream_from(
    server: &smds::server::Server,
    lab: &Lab,
    source: [u8; 4],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(std::net::SocketAddr::from((source, 0)))
        .expect("bind");
    let tcp = socket.connect(server.addr).await.expect("tcp");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    tokio_rustls::TlsConnector::from(anonymous(&lab.pki))
        .connect(name, tcp)
        .await
        .expect("tls")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limit_evicts_an_idle_flood_and_refuses_only_when_all_are_busy() {
    let lab = Lab::new("conns");
    let limits = Limits {
        max_connections: 3,
        header_read_timeout_secs: 30,
        body_read_timeout_secs: 30,
        ..Limits::default()
    };
    let server = start(&lab.pki, &lab.config(limits), None).await;
    let flooder = [127, 0, 0, 2];
    // Three idle connections from one address (each answered once, the first the longest ago).
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = tls_stream_from(&server, &lab, flooder).await;
        s.write_all(b"POST /nothing HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
            .await
            .expect("write");
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).await.expect("answer");
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 404"));
        held.push(s);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The flood cannot displace itself...
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(std::net::SocketAddr::from((flooder, 0)))
        .expect("bind");
    let mut own = socket.connect(server.addr).await.expect("tcp");
    assert!(
        wait_closed(&mut own, Duration::from_secs(2))
            .await
            .is_some(),
        "a fourth connection from the flooding address is closed on accept"
    );
    // ... but a client from another address gets in: the flood's longest-idle connection goes.
    let mut other = connect(&server, smdp(&lab.pki, "", &lab.pki)).await;
    assert!(register(&mut other, EID, "other").await.is_success());
    assert!(
        wait_closed(&mut held[0], Duration::from_secs(2))
            .await
            .is_some(),
        "the longest-idle connection was closed"
    );
    drop(held);
    drop(other);
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Three connections each in the middle of a request (a body still arriving) are busy: a
    // fourth connection is refused, and the busy ones are not disturbed.
    let mut busy = Vec::new();
    for _ in 0..3 {
        let mut s = tls_stream_from(&server, &lab, flooder).await;
        s.write_all(b"POST /gsma/rsp2/es11/initiateAuthentication HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\":")
            .await
            .expect("write");
        busy.push(s);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refused = smds::lab::https::Connection::open(
        &endpoint(&server),
        smdp(&lab.pki, "", &lab.pki),
        Duration::from_secs(5),
    )
    .await;
    assert!(
        refused.is_err(),
        "a fourth connection must be refused while all are busy"
    );
    drop(busy);
    tokio::time::sleep(Duration::from_millis(200)).await;
    still_serves(&server, &lab, "after-limit").await;
    let metrics = server.state.metrics.render(None);
    assert!(
        metrics.contains("smds_refused_connections_total 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("smds_connections_closed_total{reason=\"evicted\"} 1"),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_without_requests_and_idle_ones_are_closed_on_both_protocols() {
    let lab = Lab::new("deadlines");
    let limits = Limits {
        first_request_timeout_secs: 1,
        idle_timeout_secs: 1,
        header_read_timeout_secs: 30,
        ..Limits::default()
    };
    let server = start(&lab.pki, &lab.config(limits), None).await;
    // HTTP/1.1 over TLS that never sends a byte.
    let mut h1_silent = tls_stream(&server, &lab).await;
    // HTTP/2: preface and SETTINGS, then nothing (h2's client answers PINGs meanwhile).
    let (_h2_silent_sender, h2_silent_task) = h2_connection(&server, &lab).await;
    // HTTP/2 after one request: idle.
    let (mut h2_idle, conn_task) = h2_connection(&server, &lab).await;
    let answer = h2_post(&mut h2_idle, "/gsma/rsp2/es11/initiateAuthentication").await;
    assert_eq!(answer, 200);
    let t = wait_closed(&mut h1_silent, Duration::from_secs(5))
        .await
        .expect("silent HTTP/1.1 connection closed");
    assert!(t < Duration::from_secs(3), "closed after {t:?}");
    for (what, task) in [("silent", h2_silent_task), ("idle", conn_task)] {
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap_or_else(|_| panic!("{what} HTTP/2 connection still open"))
            .expect("join");
    }
    let metrics = server.state.metrics.render(None);
    assert!(
        metrics.contains("smds_connections_closed_total{reason=\"no_request\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("smds_connections_closed_total{reason=\"idle\"} 1"),
        "{metrics}"
    );
    still_serves(&server, &lab, "after-deadlines").await;
    server.stop().await;
}

/// An HTTP/2 client connection (TLS, ALPN h2); the task ends when the server closes it.
async fn h2_connection(
    server: &smds::server::Server,
    lab: &Lab,
) -> (
    hyper::client::conn::http2::SendRequest<http_body_util::Full<bytes::Bytes>>,
    tokio::task::JoinHandle<()>,
) {
    let tcp = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("tcp");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let tls = tokio_rustls::TlsConnector::from(anonymous_with_alpn(&lab.pki, b"h2"))
        .connect(name, tcp)
        .await
        .expect("tls");
    let (send, conn) =
        hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .timer(hyper_util::rt::TokioTimer::new())
            .keep_alive_interval(Duration::from_millis(200))
            .keep_alive_while_idle(true)
            .handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .expect("h2 handshake");
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    (send, task)
}

async fn h2_post(
    send: &mut hyper::client::conn::http2::SendRequest<http_body_util::Full<bytes::Bytes>>,
    path: &str,
) -> u16 {
    let req = hyper::Request::post(format!("https://localhost{path}"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from_static(b"{}")))
        .expect("request");
    send.send_request(req)
        .await
        .expect("answer")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_headers_and_oversized_bodies_are_refused() {
    let lab = Lab::new("headers");
    let server = start(&lab.pki, &lab.config(tight()), None).await;
    let mut s = tls_stream(&server, &lab).await;
    let mut req =
        String::from("POST /gsma/rsp2/es11/initiateAuthentication HTTP/1.1\r\nHost: localhost\r\n");
    for i in 0..40 {
        req.push_str(&format!("X-Filler-{i}: x\r\n"));
    }
    req.push_str("Content-Length: 0\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 431"), "{text}");
    // One oversized header line.
    let mut s = tls_stream(&server, &lab).await;
    let big = format!(
        "POST /gsma/rsp2/es11/initiateAuthentication HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\nContent-Length: 0\r\n\r\n",
        "a".repeat(40_000)
    );
    let _ = s.write_all(big.as_bytes()).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 431"),
        "{text}"
    );
    // A declared body over the limit is refused before it is read.
    let mut s = tls_stream(&server, &lab).await;
    s.write_all(b"POST /gsma/rsp2/es11/initiateAuthentication HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 99999999\r\n\r\n")
        .await
        .expect("write");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf))
        .await
        .expect("answer")
        .expect("read");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 413"));
    still_serves(&server, &lab, "after-headers").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_per_eid_are_bounded() {
    let lab = Lab::new("per-eid");
    let limits = Limits {
        max_events_per_eid: 3,
        ..Limits::default()
    };
    let server = start(&lab.pki, &lab.config(limits), None).await;
    let mut c = connect(&server, smdp(&lab.pki, "", &lab.pki)).await;
    for i in 0..3 {
        assert!(register(&mut c, EID, &format!("e{i}")).await.is_success());
    }
    let r = register(&mut c, EID, "e3").await;
    assert_eq!(r.code().as_deref(), Some("8.1.1/4.8"), "{:?}", r.body);
    assert!(
        register(&mut c, EID2, "e3").await.is_success(),
        "other EIDs are not affected"
    );
    assert!(delete(&mut c, EID, "e0").await.is_success());
    assert!(register(&mut c, EID, "e3").await.is_success());
    server.stop().await;
}

fn openssl_s_client(port: u16, extra: &[&str]) -> (bool, String) {
    let out = std::process::Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-servername",
            "localhost",
        ])
        .args(extra)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl runs");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (
        text.contains("Cipher is ") && !text.contains("Cipher is (NONE)"),
        text,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_versions_and_the_sgp22_suite() {
    let lab = Lab::new("tlsver");
    let server = start(&lab.pki, &lab.config(Limits::default()), None).await;
    let port = server.addr.port();
    let (ok, text) = tokio::task::spawn_blocking(move || {
        openssl_s_client(
            port,
            &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"],
        )
    })
    .await
    .expect("join");
    assert!(
        ok && text.contains("ECDHE-ECDSA-AES128-GCM-SHA256"),
        "{text}"
    );
    let (ok, text) = tokio::task::spawn_blocking(move || openssl_s_client(port, &["-tls1_3"]))
        .await
        .expect("join");
    assert!(ok, "{text}");
    let (ok, text) = tokio::task::spawn_blocking(move || {
        openssl_s_client(port, &["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"])
    })
    .await
    .expect("join");
    assert!(!ok, "TLS 1.1 must be refused: {text}");
    server.stop().await;
}

#[test]
fn bad_credentials_are_refused_at_start_naming_the_file() {
    let tmp = TempDir::new("badpki");
    let pki = tmp.0.join("pki");
    mint(&pki, "default", None);
    let now = pki_tool::time::now();
    ServerPki::load(&pki, now).expect("good PKI loads");
    // Expired (the clock long after DStls's 398 days) and not yet valid (before minting).
    let later = now + 400 * 86_400;
    let err = ServerPki::load(&pki, later)
        .expect_err("expired DStls")
        .to_string();
    assert!(
        err.contains("CERT_S_SM_DS_TLS_NIST.der") && err.contains("expired"),
        "{err}"
    );
    let err = ServerPki::load(&pki, now - 86_400)
        .expect_err("not yet valid")
        .to_string();
    assert!(err.contains("not yet valid"), "{err}");
    // A wrong-role certificate in the DStls slot.
    std::fs::copy(
        pki.join("DPtls/CERT_S_SM_DP_TLS_NIST.der"),
        pki.join("DStls/CERT_S_SM_DS_TLS_NIST.der"),
    )
    .expect("copy");
    let err = ServerPki::load(&pki, now)
        .expect_err("wrong role")
        .to_string();
    assert!(
        err.contains("CERT_S_SM_DS_TLS_NIST.der") && err.contains("dstls"),
        "{err}"
    );
    // A key that does not match.
    mint(&tmp.0.join("other"), "default", None);
    let pki2 = tmp.0.join("pki2");
    mint(&pki2, "default", None);
    std::fs::copy(
        tmp.0.join("other/DSauth/SK_S_SM_DSauth_ECDSA_NIST.pem"),
        pki2.join("DSauth/SK_S_SM_DSauth_ECDSA_NIST.pem"),
    )
    .expect("copy");
    // (Its certificates were minted after `now`: check at a later time, so the only fault is the key.)
    let err = ServerPki::load(&pki2, pki_tool::time::now() + 1)
        .expect_err("mismatched key")
        .to_string();
    assert!(err.contains("SK_S_SM_DSauth_ECDSA_NIST.pem"), "{err}");
}
