//! `cargo bench -p smds --bench es11_discovery [-- SECONDS]`
//!
//! Full ES11 discoveries per second against a real `smds serve` process (InitiateAuthentication,
//! software-eUICC AuthenticateServer, AuthenticateClient; a new TLS connection per discovery, as
//! lpac does), and the server's CPU time per discovery (from /proc), next to the cost of the
//! discovery's raw ECDSA operations on the server measured in the same run: one P-256 signature
//! (serverSignature1) and two verifications (the eUICC certificate and euiccSignature1; the EUM
//! certificate is verified once and cached).

#[path = "../tests/support/mod.rs"]
mod support;

use pki_tool::hierarchy::{self, InitOptions};
use pki_tool::{Curve, PrivateKey};
use smds::lab::https::{Connection, Endpoint};
use smds::lab::lpa::DiscoveryOptions;
use smds::lab::soft_euicc::SoftEuicc;
use smds::sgp22::Es11PathFamily;
use std::process::Command;
use std::time::{Duration, Instant};

const EID: &str = "89049032123451234512345678901235";

fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which ends with ')'): utime is field 14, stime 15.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let hz: f64 = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0);
    ticks / hz
}

fn per_op(secs: f64, op: impl Fn()) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        for _ in 0..32 {
            op();
        }
        n += 32;
    }
    start.elapsed().as_secs_f64() / n as f64
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let secs: f64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5.0);
    let scratch = workspace_tests::common::TempDir::new("bench");
    let dir = scratch.0.clone();
    let pki = dir.join("pki");
    hierarchy::init(&InitOptions::lab(&pki, &[Curve::NistP256], "localhost").expect("options"))
        .expect("pki");

    // Raw crypto of one discovery on the server, measured now.
    let key = PrivateKey::generate(Curve::NistP256).expect("key");
    let msg = vec![0x42u8; 300];
    let sig = key.sign_raw(&msg);
    let sign = per_op(1.0, || {
        std::hint::black_box(key.sign_raw(&msg));
    });
    let verify = per_op(1.0, || {
        std::hint::black_box(key.public_key().verify_raw(&msg, &sig));
    });
    let raw = sign + 2.0 * verify;
    println!(
        "raw P-256 (aws-lc-rs): sign {:.1} us ({:.0}/s), verify {:.1} us ({:.0}/s); one discovery's ECDSA = {:.1} us",
        sign * 1e6,
        1.0 / sign,
        verify * 1e6,
        1.0 / verify,
        raw * 1e6
    );

    let data = dir.join("data");
    let (mut child, port) = support::spawn_serve(&pki, &data, None);
    let endpoint = Endpoint {
        host: "localhost".into(),
        port,
    };
    let tls = smds::lab::smdp::smdp_tls_config(
        &pki.join("DPtls/CERT_S_SM_DP_TLS_NIST.der"),
        &pki.join("DPtls/SK_S_SM_DP_TLS_NIST.pem"),
        &[pki.join("CertificateIssuer/CERT_CI_ECDSA_NIST.der")],
    )
    .expect("tls");
    let mut dp = Connection::open(&endpoint, tls, Duration::from_secs(10))
        .await
        .expect("connect");
    for i in 0..3 {
        let r = dp
            .call(
                smds::sgp22::paths::path::ES12_REGISTER_EVENT,
                &smds::lab::smdp::register_event_body(
                    EID,
                    &format!("ev{i}"),
                    "smdp.example.com",
                    None,
                ),
            )
            .await
            .expect("register");
        assert!(r.is_success());
    }
    let euicc = std::sync::Arc::new(SoftEuicc::load(&pki, Curve::NistP256, None).expect("eUICC"));
    let lpa_tls = smds::lab::lpa::lpa_tls_config(
        smds::lab::https::read_cas(&[pki.join("CertificateIssuer/CERT_CI_ECDSA_NIST.der")])
            .expect("ci"),
    )
    .expect("tls");

    // Transport alone: a new TLS connection and two small requests (404s), no ES11 work.
    let transport = {
        let cpu0 = cpu_seconds(child.id());
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed().as_secs_f64() < secs.min(3.0) {
            let mut c = Connection::open(&endpoint, lpa_tls.clone(), Duration::from_secs(10))
                .await
                .expect("connect");
            for _ in 0..2 {
                let r = c
                    .post_raw("/nothing", "application/json", b"{}".to_vec())
                    .await
                    .expect("answer");
                assert_eq!(r.status, 404);
            }
            n += 1;
        }
        let per = (cpu_seconds(child.id()) - cpu0) / n as f64;
        println!(
            "transport only (new TLS connection + 2 requests): server CPU {:.0} us per connection",
            per * 1e6
        );
        per
    };

    for clients in [1usize, 4, 16] {
        let cpu0 = cpu_seconds(child.id());
        let start = Instant::now();
        let deadline = start + Duration::from_secs_f64(secs);
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let (euicc, endpoint, lpa_tls) = (euicc.clone(), endpoint.clone(), lpa_tls.clone());
            tasks.push(tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let opts = DiscoveryOptions {
                        endpoint: endpoint.clone(),
                        address: format!("localhost:{}", endpoint.port),
                        tls: lpa_tls.clone(),
                        paths: Es11PathFamily::Es9Plus,
                        matching_id: None,
                        timeout: Duration::from_secs(10),
                        now: pki_tool::time::now(),
                    };
                    match smds::lab::lpa::discover(&euicc, &opts)
                        .await
                        .expect("discovery")
                    {
                        smds::lab::lpa::Discovery::Events { entries, .. } => {
                            assert_eq!(entries.len(), 3)
                        }
                        smds::lab::lpa::Discovery::Failed { step, result } => {
                            panic!("{step}: {:?}", result.body)
                        }
                    }
                    n += 1;
                }
                n
            }));
        }
        let mut total = 0u64;
        for t in tasks {
            total += t.await.expect("task");
        }
        let elapsed = start.elapsed().as_secs_f64();
        let cpu = cpu_seconds(child.id()) - cpu0;
        let per = cpu / total as f64;
        println!(
            "{clients} client(s): {:.0} discoveries/s; server CPU {:.0} us per discovery = {:.1}x its raw ECDSA cost; without the transport share {:.0} us = {:.1}x ({} discoveries in {elapsed:.1} s)",
            total as f64 / elapsed,
            per * 1e6,
            per / raw,
            (per - transport) * 1e6,
            (per - transport) / raw,
            total
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}
