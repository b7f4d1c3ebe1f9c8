//! The server's TLS choices as clients see them: its suite order decides (a client listing
//! AES-256-GCM-SHA384 first, as curl with OpenSSL does, gets the SGP.22 suite
//! TLS_AES_128_GCM_SHA256, checked with `openssl s_client`), and TLS 1.3 session tickets are off
//! unless configured (a client that keeps sessions resumes only then).

mod support;

use rustls::client::{ClientSessionMemoryCache, Resumption};
use smds::config::Limits;
use std::sync::Arc;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_suite_order_decides() {
    let tmp = TempDir::new("tls-order");
    let pki = tmp.0.join("pki");
    mint(&pki, "default", None);
    let server = start(
        &pki,
        &loopback_config(&pki, &tmp.0.join("data"), Limits::default()),
        None,
    )
    .await;
    let port = server.addr.port().to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("openssl")
            .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
            .args(["-servername", "localhost", "-tls1_3"])
            .args([
                "-ciphersuites",
                "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256",
            ])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("openssl runs")
    })
    .await
    .expect("task");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("TLS_AES_128_GCM_SHA256"), "{text}");
    assert!(!text.contains("Cipher is TLS_AES_256_GCM_SHA384"), "{text}");
    // A client that offers only AES-256 still gets it.
    let port = server.addr.port().to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("openssl")
            .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
            .args(["-servername", "localhost", "-tls1_3"])
            .args(["-ciphersuites", "TLS_AES_256_GCM_SHA384"])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("openssl runs")
    })
    .await
    .expect("task");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("TLS_AES_256_GCM_SHA384"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    server.stop().await;
}

/// Two connections with one session cache: whether the second one resumed.
async fn second_connection_resumes(port: u16, pki: &std::path::Path) -> bool {
    let mut cfg = (*lpa_tls(pki)).clone();
    cfg.resumption = Resumption::store(Arc::new(ClientSessionMemoryCache::new(8)));
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let mut kinds = Vec::new();
    for _ in 0..2 {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let mut tls = connector.connect(name, tcp).await.expect("handshake");
        kinds.push(tls.get_ref().1.handshake_kind());
        // One request and its answer, so that tickets sent after the handshake are read.
        tls.write_all(b"GET /nothing HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut answer = Vec::new();
        let _ = tls.read_to_end(&mut answer).await;
        assert!(answer.starts_with(b"HTTP/1.1 "), "{answer:?}");
    }
    kinds[1] == Some(rustls::HandshakeKind::Resumed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_tickets_are_off_unless_configured() {
    let tmp = TempDir::new("tls-tickets");
    let pki = tmp.0.join("pki");
    mint(&pki, "default", None);
    let cfg = loopback_config(&pki, &tmp.0.join("data"), Limits::default());
    let server = start(&pki, &cfg, None).await;
    assert!(!second_connection_resumes(server.addr.port(), &pki).await);
    server.stop().await;
    let cfg = smds::config::Config {
        tls13_session_tickets: 2,
        ..cfg
    };
    let server = start(&pki, &cfg, None).await;
    assert!(second_connection_resumes(server.addr.port(), &pki).await);
    server.stop().await;
}
