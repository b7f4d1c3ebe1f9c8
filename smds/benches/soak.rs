//! `cargo bench -p smds --bench soak [-- SECONDS]` (default 600)
//!
//! A bounded soak on loopback against a real `smds serve` process: ES12 registrations and
//! deletions over keep-alive mTLS, ES11 discoveries over new TLS connections, clients sending
//! garbage (random bytes, malformed JSON, oversized bodies, bad certificates) and clients that
//! stall (slowloris). Reports throughput, p99 latency, errors by kind, and the server's RSS over
//! time; it stops by itself.

#[path = "../tests/support/mod.rs"]
mod support;

use pki_tool::hierarchy::{self, InitOptions};
use pki_tool::{Curve, Eid};
use smds::lab::https::{Connection, Endpoint};
use smds::lab::lpa::{Discovery, DiscoveryOptions};
use smds::lab::soft_euicc::SoftEuicc;
use smds::sgp22::Es11PathFamily;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const EID: &str = "89049032123451234512345678901235";

#[derive(Default)]
struct Tally {
    ok: BTreeMap<&'static str, u64>,
    errors: BTreeMap<String, u64>,
    latencies: BTreeMap<&'static str, Vec<Duration>>,
}

type Shared = Arc<Mutex<Tally>>;

fn ok(t: &Shared, kind: &'static str, d: Duration) {
    if let Ok(mut t) = t.lock() {
        *t.ok.entry(kind).or_default() += 1;
        t.latencies.entry(kind).or_default().push(d);
    }
}

fn err(t: &Shared, kind: String) {
    if let Ok(mut t) = t.lock() {
        *t.errors.entry(kind).or_default() += 1;
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn rand_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    let _ = getrandom::fill(&mut v);
    v
}

/// Longest a soak call may wait for its answer before it counts as an error.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let secs: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(600);
    let scratch = workspace_tests::common::TempDir::new("bench");
    let dir = scratch.0.clone();
    let pki = dir.join("pki");
    hierarchy::init(&InitOptions::lab(&pki, &Curve::ALL, "localhost").expect("options"))
        .expect("pki");
    let foreign = dir.join("foreign");
    hierarchy::init(&InitOptions::lab(&foreign, &[Curve::NistP256], "localhost").expect("options"))
        .expect("pki");
    let config = dir.join("smds.toml");
    std::fs::write(&config, "[limits]\nheader_read_timeout_secs = 5\nbody_read_timeout_secs = 5\ntls_handshake_timeout_secs = 5\nmax_connections = 512\n").expect("config");
    let data = dir.join("data");
    let (mut child, port) = support::spawn_serve(&pki, &data, Some(&config));
    let pid = child.id();
    let endpoint = Endpoint::localhost(port);
    let ci = pki.join("CertificateIssuer/CERT_CI_ECDSA_NIST.der");
    let smdp_tls = smds::lab::smdp::smdp_tls_config(
        &pki.join("DPtls/CERT_S_SM_DP_TLS_NIST.der"),
        &pki.join("DPtls/SK_S_SM_DP_TLS_NIST.pem"),
        &[&ci],
    )
    .expect("tls");
    let foreign_tls = smds::lab::smdp::smdp_tls_config(
        &foreign.join("DPtls/CERT_S_SM_DP_TLS_NIST.der"),
        &foreign.join("DPtls/SK_S_SM_DP_TLS_NIST.pem"),
        &[&ci],
    )
    .expect("tls");
    let lpa_tls = smds::lab::lpa::lpa_tls_config(smds::lab::https::read_cas(&[&ci]).expect("ci"))
        .expect("tls");
    let euiccs: Vec<Arc<SoftEuicc>> = Curve::ALL
        .into_iter()
        .map(|c| Arc::new(SoftEuicc::load(&pki, c, None).expect("eUICC")))
        .collect();

    let tally: Shared = Arc::default();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let rss_start = rss_kib(pid);
    let mut tasks = Vec::new();

    // Events the discoverers find (their EID), registered once.
    {
        let mut c = Connection::open(&endpoint, smdp_tls.clone(), Duration::from_secs(10))
            .await
            .expect("connect");
        for i in 0..3 {
            let r = c
                .call(
                    smds::sgp22::paths::path::ES12_REGISTER_EVENT,
                    &smds::lab::smdp::register_event_body(
                        EID,
                        &format!("pending-{i}"),
                        "smdp.example.com",
                        None,
                    ),
                )
                .await
                .expect("register");
            assert!(r.is_success());
        }
    }
    // ES12 over keep-alive mTLS: register across 200 other EIDs and delete each event again once
    // 25 newer ones exist, so the database reaches a steady state.
    let mut pool = Vec::new();
    let mut e = Eid::parse("89049032000000000000000000000066").expect("eid");
    for _ in 0..200 {
        pool.push(e.to_string());
        e = e.successor(8).expect("room");
    }
    let pool = Arc::new(pool);
    for w in 0..8 {
        let (endpoint, tls, tally, pool) = (
            endpoint.clone(),
            smdp_tls.clone(),
            tally.clone(),
            pool.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            let mut pending = std::collections::VecDeque::new();
            while Instant::now() < deadline {
                let Ok(mut c) =
                    Connection::open(&endpoint, tls.clone(), Duration::from_secs(10)).await
                else {
                    err(&tally, "es12 connect".into());
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                for _ in 0..200 {
                    if Instant::now() >= deadline {
                        break;
                    }
                    let eid = pool[(i as usize * 7 + w) % pool.len()].clone();
                    let id = format!("w{w}-{i}");
                    let t = Instant::now();
                    let body =
                        smds::lab::smdp::register_event_body(&eid, &id, "smdp.example.com", None);
                    let call = c.call(smds::sgp22::paths::path::ES12_REGISTER_EVENT, &body);
                    let Ok(answer) = tokio::time::timeout(CALL_TIMEOUT, call).await else {
                        err(&tally, "es12 register: no answer".into());
                        break;
                    };
                    match answer {
                        Ok(r) if r.is_success() => {
                            ok(&tally, "es12 register", t.elapsed());
                            pending.push_back((eid, id));
                        }
                        Ok(r) => err(
                            &tally,
                            format!("es12 register {}", r.code().unwrap_or_default()),
                        ),
                        Err(e) => err(
                            &tally,
                            format!(
                                "es12 register: {}",
                                e.to_string().split(':').next().unwrap_or("")
                            ),
                        ),
                    }
                    if pending.len() > 25
                        && let Some((eid, id)) = pending.pop_front()
                    {
                        let t = Instant::now();
                        let body = smds::lab::smdp::delete_event_body(&eid, &id);
                        let call = c.call(smds::sgp22::paths::path::ES12_DELETE_EVENT, &body);
                        let Ok(answer) = tokio::time::timeout(CALL_TIMEOUT, call).await else {
                            err(&tally, "es12 delete: no answer".into());
                            break;
                        };
                        match answer {
                            Ok(r) if r.is_success() => ok(&tally, "es12 delete", t.elapsed()),
                            Ok(r) => err(
                                &tally,
                                format!("es12 delete {}", r.code().unwrap_or_default()),
                            ),
                            Err(_) => err(&tally, "es12 delete transport".into()),
                        }
                    }
                    i += 1;
                }
            }
        }));
    }
    // ES11: full discoveries, a new TLS connection each, on both curves.
    for w in 0..4 {
        let (endpoint, tls, tally, euicc) = (
            endpoint.clone(),
            lpa_tls.clone(),
            tally.clone(),
            euiccs[w % 2].clone(),
        );
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let opts = DiscoveryOptions {
                    endpoint: endpoint.clone(),
                    address: "localhost".into(),
                    tls: tls.clone(),
                    paths: if w % 2 == 0 {
                        Es11PathFamily::Es9Plus
                    } else {
                        Es11PathFamily::Es11
                    },
                    matching_id: None,
                    timeout: Duration::from_secs(10),
                    now: pki_tool::time::now(),
                };
                let t = Instant::now();
                match smds::lab::lpa::discover(&euicc, &opts).await {
                    Ok(Discovery::Events { entries, .. }) if entries.len() == 3 => {
                        ok(&tally, "es11 discovery", t.elapsed())
                    }
                    Ok(Discovery::Events { entries, .. }) => err(
                        &tally,
                        format!("es11 discovery returned {} events, not 3", entries.len()),
                    ),
                    Ok(Discovery::Failed { step, result }) => err(
                        &tally,
                        format!("es11 {step} {}", result.code().unwrap_or_default()),
                    ),
                    Ok(Discovery::PushRegistered { .. }) => {
                        err(&tally, "es11 answered a push registration".into())
                    }
                    Err(e) => err(
                        &tally,
                        format!("es11: {}", e.to_string().split(':').next().unwrap_or("")),
                    ),
                }
            }
        }));
    }
    // Garbage: random bytes on TCP, malformed and oversized requests on TLS, foreign certificates.
    for w in 0..2 {
        let (endpoint, lpa, foreign, tally) = (
            endpoint.clone(),
            lpa_tls.clone(),
            foreign_tls.clone(),
            tally.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while Instant::now() < deadline {
                i += 1;
                match i % 4 {
                    0 => {
                        if let Ok(mut s) =
                            tokio::net::TcpStream::connect(("127.0.0.1", endpoint.port)).await
                        {
                            let _ = s.write_all(&rand_bytes(512)).await;
                            let mut buf = [0u8; 256];
                            let _ = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
                                .await;
                        }
                        ok(&tally, "garbage tcp", Duration::ZERO);
                    }
                    1 | 2 => {
                        if let Ok(mut c) =
                            Connection::open(&endpoint, lpa.clone(), Duration::from_secs(10)).await
                        {
                            let (path, body) = if i % 4 == 1 {
                                ("/gsma/rsp2/es9plus/authenticateClient", rand_bytes(64))
                            } else {
                                (
                                    "/gsma/rsp2/es11/initiateAuthentication",
                                    vec![b'['; 200_000],
                                )
                            };
                            let post = c.post_raw(path, "application/json", body);
                            let Ok(answer) = tokio::time::timeout(CALL_TIMEOUT, post).await else {
                                err(&tally, "garbage: no answer".into());
                                continue;
                            };
                            match answer {
                                Ok(r) if r.status == 400 || r.status == 413 => {
                                    ok(&tally, "garbage refused", Duration::ZERO)
                                }
                                Ok(r) => err(&tally, format!("garbage got HTTP {}", r.status)),
                                Err(_) => ok(&tally, "garbage refused", Duration::ZERO),
                            }
                        }
                    }
                    _ => {
                        let refused = match Connection::open(
                            &endpoint,
                            foreign.clone(),
                            Duration::from_secs(10),
                        )
                        .await
                        {
                            Err(_) => true,
                            Ok(mut c) => {
                                let body = smds::lab::smdp::register_event_body(
                                    EID,
                                    &format!("x{w}"),
                                    "a.b",
                                    None,
                                );
                                let call =
                                    c.call(smds::sgp22::paths::path::ES12_REGISTER_EVENT, &body);
                                match tokio::time::timeout(CALL_TIMEOUT, call).await {
                                    Ok(r) => r.is_err(),
                                    Err(_) => {
                                        err(&tally, "foreign: no answer".into());
                                        true
                                    }
                                }
                            }
                        };
                        if refused {
                            ok(&tally, "foreign cert refused", Duration::ZERO);
                        } else {
                            err(&tally, "foreign certificate accepted".into());
                        }
                    }
                }
            }
        }));
    }
    // Stallers: half a request, then silence, until the server cuts them off.
    for _ in 0..2 {
        let (port, tally, lpa) = (endpoint.port, tally.clone(), lpa_tls.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let Ok(tcp) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
                let Ok(mut s) = tokio_rustls::TlsConnector::from(lpa.clone())
                    .connect(name, tcp)
                    .await
                else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let _ = s
                    .write_all(
                        b"POST /gsma/rsp2/es11/initiateAuthentication HTTP/1.1\r\nHost: local",
                    )
                    .await;
                let t = Instant::now();
                let mut buf = [0u8; 256];
                let closed = loop {
                    match tokio::time::timeout(Duration::from_secs(30), s.read(&mut buf)).await {
                        Ok(Ok(0)) | Ok(Err(_)) => break true,
                        Ok(Ok(_)) => continue,
                        Err(_) => break false,
                    }
                };
                if closed {
                    ok(&tally, "staller cut off", t.elapsed());
                } else {
                    err(&tally, "staller not cut off within 30 s".into());
                }
            }
        }));
    }

    let mut samples = vec![(0u64, rss_start)];
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(secs.clamp(1, 30))).await;
        samples.push((start.elapsed().as_secs(), rss_kib(pid)));
    }
    for t in tasks {
        // Every call is bounded by CALL_TIMEOUT, so this ends; a task that does not is reported.
        if tokio::time::timeout(CALL_TIMEOUT * 2, t).await.is_err() {
            err(&tally, "client task did not finish".into());
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let rss_end = rss_kib(pid);
    workspace_tests::common::send_signal(pid, "TERM");
    let status = child.wait().expect("exit");

    let t = tally.lock().expect("tally");
    println!("soak: {elapsed:.0} s against smds pid {pid} (exit {status})");
    for (kind, n) in &t.ok {
        let mut lat = t.latencies.get(kind).cloned().unwrap_or_default();
        lat.sort();
        let p99 = lat
            .get(((lat.len() as f64 - 1.0) * 0.99).round().max(0.0) as usize)
            .copied()
            .unwrap_or_default();
        println!(
            "  {kind:<22} {n:>9} ok  {:>8.1}/s  p99 {:.2} ms",
            *n as f64 / elapsed,
            p99.as_secs_f64() * 1e3
        );
    }
    if t.errors.is_empty() {
        println!("  errors: none");
    }
    for (kind, n) in &t.errors {
        println!("  error {kind:<40} {n}");
    }
    println!(
        "  server RSS (KiB) over time: {}",
        samples
            .iter()
            .map(|(s, r)| format!("{s}s={r}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("  server RSS start {rss_start} KiB, end {rss_end} KiB");
}
