//! The attacks of the hostile-clients review, bounded in time and count, against a real `smds
//! serve` process on loopback with its default limits: holding every connection slot with idle
//! HTTP/2 and HTTP/1.1-over-TLS connections and re-opened raw TCP connections while real
//! discoveries go on; and HTTP/2 streams that send part of a body and stall, with the server's
//! memory measured during the attack and after it. The attackers hold their connections from
//! eight loopback addresses (a few machines; the per-address limit alone would stop one address
//! early), the real LPA connects from 127.0.0.1.

mod support;

use hyper::body::{Body, Bytes, Frame};
use pki_tool::Curve;
use smds::lab::lpa::{self, Discovery};
use smds::lab::soft_euicc::SoftEuicc;
use smds::sgp22::Es11PathFamily;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use support::*;

/// This process's soft limit on open files.
fn open_files_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
}

fn attacker_address(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        127,
        0,
        1 + (i / 200) as u8,
        2 + (i % 200) as u8,
    ))
}

async fn tcp_from(source: IpAddr, server: SocketAddr) -> Option<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4().ok()?;
    socket.bind(SocketAddr::new(source, 0)).ok()?;
    socket.connect(server).await.ok()
}

/// Keeps one idle connection open from `source` (HTTP/2: preface, SETTINGS, PING answers and
/// nothing else; HTTP/1.1: a TLS session that sends no request), reconnecting whenever the
/// server closes it, until `stop`. Returns how many connections it had to open.
async fn hold_idle(
    source: IpAddr,
    server: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    h2: bool,
    stop: Arc<AtomicBool>,
) -> usize {
    let mut opened = 0;
    while !stop.load(Ordering::Relaxed) {
        let Some(tcp) = tcp_from(source, server).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let Ok(Ok(stream)) = tokio::time::timeout(
            Duration::from_secs(5),
            tokio_rustls::TlsConnector::from(tls.clone()).connect(name, tcp),
        )
        .await
        else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        opened += 1;
        let until_stop = async {
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        if h2 {
            let Ok((_send, conn)) =
                hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .timer(hyper_util::rt::TokioTimer::new())
                    .keep_alive_interval(Duration::from_secs(1))
                    .keep_alive_while_idle(true)
                    .handshake::<_, http_body_util::Empty<Bytes>>(hyper_util::rt::TokioIo::new(
                        stream,
                    ))
                    .await
            else {
                continue;
            };
            tokio::select! {
                _ = conn => {}
                () = until_stop => {}
            }
        } else {
            let mut stream = stream;
            let mut buf = [0u8; 64];
            tokio::select! {
                _ = tokio::io::AsyncReadExt::read(&mut stream, &mut buf) => {}
                () = until_stop => {}
            }
        }
    }
    opened
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connection_floods_do_not_lock_out_real_devices() {
    let tmp = TempDir::new("hostile-slots");
    let pki = tmp.0.join("pki");
    mint(&pki, "default", None);
    // The attack holds as many idle connections of each protocol as the server has slots, when
    // this process may open that many files; else a proportionally smaller server and attack.
    let slots = (open_files_limit().saturating_sub(200) / 3).clamp(64, 1024);
    let config = tmp.0.join("smds.toml");
    std::fs::write(&config, format!("[limits]\nmax_connections = {slots}\n")).expect("config");
    let (mut child, port) = spawn_serve(&pki, &tmp.0.join("data"), Some(&config));
    let server: SocketAddr = ([127, 0, 0, 1], port).into();
    let stop = Arc::new(AtomicBool::new(false));
    let mut attackers = Vec::new();
    for i in 0..slots {
        for h2 in [true, false] {
            let source = attacker_address((i + if h2 { 0 } else { slots }) % 8);
            let tls = anonymous_with_alpn(&pki, if h2 { b"h2" } else { b"http/1.1" });
            attackers.push(tokio::spawn(hold_idle(
                source,
                server,
                tls,
                h2,
                stop.clone(),
            )));
        }
    }
    // Raw TCP connections that never start TLS, re-opened at about 100/s.
    let raw_opened = Arc::new(AtomicUsize::new(0));
    let raw = {
        let (stop, raw_opened) = (stop.clone(), raw_opened.clone());
        tokio::spawn(async move {
            let mut held = std::collections::VecDeque::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                if let Some(s) = tcp_from(attacker_address(i % 8), server).await {
                    held.push_back(s);
                    raw_opened.fetch_add(1, Ordering::Relaxed);
                }
                if held.len() > 200 {
                    held.pop_front();
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Real discoveries during the attack.
    let euicc = SoftEuicc::load(&pki, Curve::NistP256, None).expect("eUICC");
    let mut options = lpa::DiscoveryOptions {
        endpoint: smds::lab::https::Endpoint::localhost(port),
        address: format!("localhost:{port}"),
        tls: lpa_tls(&pki),
        paths: Es11PathFamily::Es9Plus,
        matching_id: None,
        timeout: Duration::from_secs(10),
        now: pki_tool::time::now(),
    };
    let (mut tried, mut succeeded) = (0, 0);
    let started = Instant::now();
    while tried < 20 && started.elapsed() < Duration::from_secs(60) {
        options.now = pki_tool::time::now();
        tried += 1;
        if matches!(
            lpa::discover(&euicc, &options).await,
            Ok(Discovery::Events { .. })
        ) {
            succeeded += 1;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut reopened = 0;
    for a in attackers {
        reopened += a.await.expect("attacker");
    }
    let _ = raw.await;
    let _ = child.kill();
    let _ = child.wait();
    println!(
        "{slots} slots; attack: {} idle-connection holders on 8 addresses ({reopened} TLS connections opened), {} raw TCP connections; real discoveries: {succeeded}/{tried}",
        2 * slots,
        raw_opened.load(Ordering::Relaxed)
    );
    assert!(
        succeeded * 10 >= tried * 8,
        "only {succeeded} of {tried} real discoveries succeeded during the attack"
    );
}

/// A request body that sends `size` bytes and then never ends.
struct Stalled(Option<Bytes>);

impl Body for Stalled {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.0.take() {
            Some(b) => Poll::Ready(Some(Ok(Frame::data(b)))),
            None => Poll::Pending,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_http2_bodies_do_not_grow_memory() {
    let tmp = TempDir::new("hostile-h2");
    let pki = tmp.0.join("pki");
    mint(&pki, "default", None);
    let (mut child, port) = spawn_serve(&pki, &tmp.0.join("data"), None);
    let server: SocketAddr = ([127, 0, 0, 1], port).into();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_mib(child.id());
    let tls = anonymous_with_alpn(&pki, b"h2");
    let mut tasks = Vec::new();
    for c in 0..100 {
        let tls = tls.clone();
        tasks.push(tokio::spawn(async move {
            let tcp = tcp_from(attacker_address(c), server).await?;
            let name = rustls::pki_types::ServerName::try_from("localhost").ok()?;
            let stream = tokio_rustls::TlsConnector::from(tls)
                .connect(name, tcp)
                .await
                .ok()?;
            let (send, conn) =
                hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .handshake::<_, Stalled>(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .ok()?;
            tokio::spawn(conn);
            let mut streams = Vec::new();
            for _ in 0..64 {
                let mut send = send.clone();
                streams.push(tokio::spawn(async move {
                    let req = hyper::Request::post(format!(
                        "https://localhost:{port}/gsma/rsp2/es11/authenticateClient"
                    ))
                    .header("content-type", "application/json")
                    .body(Stalled(Some(Bytes::from(vec![b' '; 65_000]))))
                    .ok()?;
                    send.send_request(req)
                        .await
                        .ok()
                        .map(|r| r.status().as_u16())
                }));
            }
            Some(streams)
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = rss_mib(child.id());
    for t in tasks {
        if let Ok(Some(streams)) = t.await {
            for s in streams {
                s.abort();
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_mib(child.id());
    let _ = child.kill();
    let _ = child.wait();
    println!("server RSS: {before:.1} MiB before, {during:.1} MiB during, {after:.1} MiB after");
    assert!(during < 256.0, "RSS {during:.1} MiB during the attack");
    assert!(after < 128.0, "RSS {after:.1} MiB after the attack");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_storm_writes_a_bounded_log() {
    let tmp = TempDir::new("hostile-log");
    let pki = tmp.0.join("pki");
    mint(&pki, "default", None);
    let config = tmp.0.join("smds.toml");
    std::fs::write(&config, "[limits]\nmax_connections_per_ip = 4\n").expect("config");
    let log = tmp.0.join("smds.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_smds"))
        .args(["serve", "--listen", "127.0.0.1:0", "--no-admin", "--pki"])
        .arg(&pki)
        .arg("--data-dir")
        .arg(tmp.0.join("data"))
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("smds serve starts");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("first line");
    let port: u16 = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("https://127.0.0.1:"))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"));
    let server: SocketAddr = ([127, 0, 0, 1], port).into();
    let before = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .count();
    // Hold this address's four slots, then 3000 connections that are refused at accept.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(tcp_from(attacker_address(0), server).await.expect("tcp"));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..3000 {
        let _ = tcp_from(attacker_address(0), server).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let written = text.lines().count() - before;
    println!("3000 refused connections wrote {written} log lines");
    assert!(
        written <= 10,
        "{written} log lines for a refusal storm:\n{text}"
    );
}

/// An HTTP/2 frame: 24-bit length, type, flags, stream id, payload.
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_rapid_reset_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let lab = Lab::new("hostile-reset");
    let server = start(&lab.pki, &lab.config(smds::config::Limits::default()), None).await;
    let tcp = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("tcp");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let stream = tokio_rustls::TlsConnector::from(anonymous_with_alpn(&lab.pki, b"h2"))
        .connect(name, tcp)
        .await
        .expect("tls");
    let (mut rd, mut wr) = tokio::io::split(stream);
    wr.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .expect("preface");
    wr.write_all(&h2_frame(0x4, 0, 0, &[]))
        .await
        .expect("settings");
    // HPACK: :method POST, :scheme https, :path /, :authority localhost (literal).
    let mut headers = vec![0x83, 0x87, 0x84, 0x41, 9];
    headers.extend_from_slice(b"localhost");
    let reader = tokio::spawn(async move {
        // Reads frames until GOAWAY; returns its error code.
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16384];
        loop {
            while buf.len() >= 9 {
                let len =
                    (usize::from(buf[0]) << 16) | (usize::from(buf[1]) << 8) | usize::from(buf[2]);
                if buf.len() < 9 + len {
                    break;
                }
                if buf[3] == 0x7 && len >= 8 {
                    return Some(u32::from_be_bytes([buf[13], buf[14], buf[15], buf[16]]));
                }
                buf.drain(..9 + len);
            }
            match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    });
    let mut sent = 0u32;
    for i in 0..50_000u32 {
        let id = 2 * i + 1;
        let mut pair = h2_frame(0x1, 0x4, id, &headers);
        pair.extend(h2_frame(0x3, 0, id, &8u32.to_be_bytes()));
        if wr.write_all(&pair).await.is_err() {
            break;
        }
        sent += 1;
        if reader.is_finished() {
            break;
        }
    }
    let goaway = tokio::time::timeout(std::time::Duration::from_secs(10), reader)
        .await
        .expect("the server answers")
        .expect("reader");
    println!("rapid reset: GOAWAY {goaway:?} after {sent} HEADERS+RST_STREAM pairs");
    assert_eq!(goaway, Some(0xb), "GOAWAY with ENHANCE_YOUR_CALM");
    assert!(sent < 50_000, "cut off before the attack ended");
    let mut c = connect(&server, smdp(&lab.pki, "", &lab.pki)).await;
    assert!(register(&mut c, EID, "after-reset").await.is_success());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_overlong_client_chains_are_refused_in_the_handshake() {
    use pki_tool::hierarchy::{read_cert, read_key};
    let lab = Lab::new("hostile-chains");
    let server = start(&lab.pki, &lab.config(smds::config::Limits::default()), None).await;
    let leaf = read_cert(&lab.foreign.join("DPtls/CERT_S_SM_DP_TLS_NIST.der")).expect("leaf");
    let key = read_key(&lab.foreign.join("DPtls/SK_S_SM_DP_TLS_NIST.pem")).expect("key");
    let filler = [
        lab.foreign.join("CertificateIssuer/CERT_CI_ECDSA_NIST.der"),
        lab.pki.join("EUM/CERT_EUM_ECDSA_NIST.der"),
        lab.pki.join("CertificateIssuer/CERT_CI_ECDSA_NIST.der"),
        lab.pki.join("DPtls/CERT_S_SM_DP_TLS_NIST.der"),
    ];
    for extra in [3usize, 4] {
        let mut chain = vec![rustls::pki_types::CertificateDer::from(leaf.der().to_vec())];
        for f in &filler[..extra] {
            chain.push(rustls::pki_types::CertificateDer::from(
                read_cert(f).expect("cert").der().to_vec(),
            ));
        }
        let cfg = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(
            smds::transport::tls::Sgp22ServerVerifier::new(
                smds::lab::https::read_cas(&[ci(&lab.pki)]).expect("ci"),
                pki_tool::Role::Dstls,
                None,
            ),
        ))
        .with_client_auth_cert(
            chain,
            rustls::pki_types::PrivateKeyDer::Sec1(rustls::pki_types::PrivateSec1KeyDer::from(
                key.to_sec1_der(),
            )),
        )
        .expect("client config");
        let mut conn = smds::lab::https::Connection::open(
            &endpoint(&server),
            std::sync::Arc::new(cfg),
            std::time::Duration::from_secs(5),
        )
        .await;
        // TLS 1.3 clients learn of a refused certificate at their first read.
        let refused = match &mut conn {
            Err(_) => true,
            Ok(c) => c
                .post_raw(
                    "/gsma/rsp2/es12/registerEvent",
                    "application/json",
                    b"{}".to_vec(),
                )
                .await
                .is_err(),
        };
        assert!(
            refused,
            "a {}-certificate forged chain was accepted",
            extra + 1
        );
    }
    let mut c = connect(&server, smdp(&lab.pki, "", &lab.pki)).await;
    assert!(register(&mut c, EID, "after-forgeries").await.is_success());
    server.stop().await;
}
