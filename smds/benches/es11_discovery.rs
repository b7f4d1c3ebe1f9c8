//! `cargo bench -p smds --bench es11_discovery [-- SECONDS] [redb|postgres] [scale]`
//!
//! Full ES11 discoveries per second against real `smds serve` processes (InitiateAuthentication,
//! software-eUICC AuthenticateServer, AuthenticateClient; a new TLS connection per discovery, as
//! lpac does), and the server's CPU time per discovery (from /proc), next to the cost of the
//! discovery's raw ECDSA operations on the server measured in the same run: one P-256 signature
//! (serverSignature1) and two verifications (the eUICC certificate and euiccSignature1; the EUM
//! certificate is verified once and cached). Rows for the embedded redb store, for PostgreSQL
//! (a server the bench starts; its own CPU per discovery is shown apart) and for two nodes
//! sharing that PostgreSQL, half of the clients on each.
//!
//! First, how real LPAs connect (redb, one node): lpac-style (a new TLS connection for each of
//! the two requests, no session resumption: lpac makes a curl handle per request), one
//! HTTP/1.1 keep-alive connection for both, and one HTTP/2 connection for both (euicc-go). The
//! client offers what curl with OpenSSL 3.0 offers first (TLS 1.3, TLS_AES_256_GCM_SHA384
//! before TLS_AES_128_GCM_SHA256, X25519). Each row's crypto floor is measured in the same run
//! from its parts: ES11's ECDSA, and per TLS connection the server's X25519 key exchange and
//! its CertificateVerify signature.
//!
//! `ab` compares two server builds on the lpac-style load instead: `SMDS_BIN` (A, default this
//! build) and `SMDS_BIN_B` (B), both running, in alternating rounds (server CPU per discovery,
//! 4 clients; mean and spread of each), which is how one change is measured on a noisy machine.
//! `SMDS_CONFIG_A` / `SMDS_CONFIG_B` add configuration lines to A's or B's file (e.g.
//! `tls13_session_tickets = 2`), to compare settings of one build.
//!
//! `crl` adds the revocation rows: server CPU per discovery with a 10,000-entry CRL from the CI
//! (covering the EUM) and one from the EUM (covering the eUICC) loaded, against a node with an
//! empty CRL directory, measured in alternating rounds.
//!
//! `scale` adds the store-size rows: one client's discovery latency (p50/p99) with 1,000 and
//! with 1,000,000 events of other EIDs stored, on each store.

#[path = "../tests/support/mod.rs"]
mod support;

use pki_tool::{Curve, Eid, PrivateKey};
use smds::identity::OwnerId;
use smds::lab::https::{Connection, Endpoint};
use smds::lab::lpa::DiscoveryOptions;
use smds::lab::soft_euicc::SoftEuicc;
use smds::sgp22::Es11PathFamily;
use smds::store::{EventRecord, EventStore, RedbStore, WriterConfig};
use smds::types::{EventId, RspServerAddress};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};
use workspace_tests::postgres::Postgres;

const EID: &str = "89049032123451234512345678901235";

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime, stime, cutime, cstime of a process, in seconds.
fn cpu_fields(pid: u32) -> [f64; 4] {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which ends with ')'): utime is field 14 .. cstime 17.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let hz = clock_ticks();
    let at = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / hz;
    [at(11), at(12), at(13), at(14)]
}

fn cpu_seconds(pid: u32) -> f64 {
    let f = cpu_fields(pid);
    f[0] + f[1]
}

/// CPU of a PostgreSQL server: the postmaster, its live children (one per connection) and the
/// children it has reaped.
fn pg_cpu_seconds(postmaster: u32) -> f64 {
    let f = cpu_fields(postmaster);
    let mut total = f.iter().sum::<f64>();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let ppid = after
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(postmaster) {
            total += cpu_seconds(pid);
        }
    }
    total
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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len().max(1) as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

/// The raw ECDSA cost of one discovery on the server, measured now.
fn raw_ecdsa() -> f64 {
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
    raw
}

/// The server's share of one TLS 1.3 handshake's crypto: an X25519 key pair and agreement, and
/// a P-256 CertificateVerify signature; measured now.
fn raw_handshake() -> (f64, f64) {
    use aws_lc_rs::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey, X25519};
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let peer = EphemeralPrivateKey::generate(&X25519, &rng)
        .and_then(|k| k.compute_public_key())
        .expect("peer key");
    let peer = peer.as_ref().to_vec();
    let kx = per_op(1.0, || {
        let k = EphemeralPrivateKey::generate(&X25519, &rng).expect("key");
        std::hint::black_box(k.compute_public_key().expect("public"));
        let _ = agreement::agree_ephemeral(k, UnparsedPublicKey::new(&X25519, &peer), (), |s| {
            std::hint::black_box(s.len());
            Ok(())
        });
    });
    let key = PrivateKey::generate(Curve::NistP256).expect("key");
    let transcript = [0x20u8; 130];
    let sign = per_op(1.0, || {
        std::hint::black_box(key.sign_der(&transcript));
    });
    println!(
        "raw TLS 1.3 server handshake crypto: X25519 {:.1} us, CertificateVerify (P-256) {:.1} us",
        kx * 1e6,
        sign * 1e6
    );
    (kx, sign)
}

/// How a client connects, for the rows of [`Bench::connection_rows`].
struct ClientStyle {
    label: &'static str,
    connections: smds::lab::lpa::Connections,
    /// TLS connections per discovery.
    handshakes: f64,
    tls: Arc<rustls::ClientConfig>,
}

/// A client TLS configuration offering what curl with OpenSSL 3.0 offers first: TLS 1.3 with
/// TLS_AES_256_GCM_SHA384 before TLS_AES_128_GCM_SHA256, X25519 then P-256; no resumption.
fn curl_like_tls(pki: &Path, alpn: &[u8]) -> Arc<rustls::ClientConfig> {
    use rustls::crypto::aws_lc_rs::{cipher_suite as cs, kx_group};
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.cipher_suites = vec![
        cs::TLS13_AES_256_GCM_SHA384,
        cs::TLS13_CHACHA20_POLY1305_SHA256,
        cs::TLS13_AES_128_GCM_SHA256,
        cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ];
    provider.kx_groups = vec![kx_group::X25519, kx_group::SECP256R1];
    let ci = pki_tool::hierarchy::read_cert(&support::ci(pki)).expect("CI");
    let mut cfg = smds::transport::tls::client_config_with(
        Arc::new(provider),
        vec![ci],
        pki_tool::Role::Dstls,
        None,
        None,
    )
    .expect("client TLS");
    cfg.resumption = rustls::client::Resumption::disabled();
    cfg.alpn_protocols = vec![alpn.to_vec()];
    Arc::new(cfg)
}

struct Bench {
    dir: PathBuf,
    pki: PathBuf,
    euicc: Arc<SoftEuicc>,
    lpa_tls: Arc<rustls::ClientConfig>,
    smdp_tls: Arc<rustls::ClientConfig>,
    secs: f64,
    raw: f64,
    /// The server's crypto per TLS handshake (X25519 + CertificateVerify).
    handshake: f64,
}

/// A running `smds serve`.
struct Node {
    child: Child,
    endpoint: Endpoint,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Bench {
    /// `smds serve` on its own data directory, on PostgreSQL when `url` is given (the session
    /// key file is shared by every node of the run).
    fn node(&self, name: &str, url: Option<&str>) -> Node {
        self.node_with(name, url, "")
    }

    /// [`Bench::node`] with more configuration lines.
    fn node_with(&self, name: &str, url: Option<&str>, extra: &str) -> Node {
        let config = self.dir.join(format!("{name}.toml"));
        let mut text = format!(
            "session_key_file = \"{}\"\n{extra}",
            self.dir.join("session.key").display()
        );
        if let Some(url) = url {
            text.push_str(&format!("store = \"{url}\"\n"));
        }
        std::fs::write(&config, text).expect("config");
        let (child, port) = support::spawn_serve(&self.pki, &self.dir.join(name), Some(&config));
        Node {
            child,
            endpoint: Endpoint::localhost(port),
        }
    }

    /// The three events every discovery finds.
    async fn register(&self, node: &Node) {
        let mut dp = Connection::open(
            &node.endpoint,
            self.smdp_tls.clone(),
            Duration::from_secs(10),
        )
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
            assert!(r.is_success(), "{:?}", r.body);
        }
    }

    /// Discoveries back to back by `clients` clients spread over `nodes` until the deadline;
    /// each discovery's latency.
    async fn discoveries(&self, nodes: &[&Node], clients: usize, secs: f64) -> Vec<Duration> {
        self.discoveries_as(
            nodes,
            clients,
            secs,
            self.lpa_tls.clone(),
            smds::lab::lpa::Connections::Shared,
        )
        .await
    }

    /// [`Bench::discoveries`] with a given client TLS configuration and connection use.
    async fn discoveries_as(
        &self,
        nodes: &[&Node],
        clients: usize,
        secs: f64,
        tls: Arc<rustls::ClientConfig>,
        connections: smds::lab::lpa::Connections,
    ) -> Vec<Duration> {
        let deadline = Instant::now() + Duration::from_secs_f64(secs);
        let mut tasks = Vec::new();
        for c in 0..clients {
            let endpoint = nodes[c % nodes.len()].endpoint.clone();
            let (euicc, tls) = (self.euicc.clone(), tls.clone());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let opts = DiscoveryOptions {
                        endpoint: endpoint.clone(),
                        address: "localhost".into(),
                        tls: tls.clone(),
                        paths: Es11PathFamily::Es9Plus,
                        matching_id: None,
                        timeout: Duration::from_secs(10),
                        now: pki_tool::time::now(),
                    };
                    let t = Instant::now();
                    match smds::lab::lpa::discover_over(&euicc, &opts, connections)
                        .await
                        .expect("discovery")
                    {
                        smds::lab::lpa::Discovery::Events { entries, .. } => {
                            assert_eq!(entries.len(), 3)
                        }
                        smds::lab::lpa::Discovery::Failed { step, result } => {
                            panic!("{step}: {:?}", result.body)
                        }
                        d => panic!("{d:?}"),
                    }
                    lat.push(t.elapsed());
                }
                lat
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("task"));
        }
        all.sort();
        all
    }

    /// Rows of 1, 4 and 16 clients: discoveries/s and CPU per discovery, of the SM-DS nodes and
    /// (given its postmaster) of PostgreSQL.
    async fn throughput(&self, label: &str, nodes: &[&Node], pg: Option<u32>, transport: f64) {
        for clients in [1usize, 4, 16] {
            let smds_cpu = || nodes.iter().map(|n| cpu_seconds(n.child.id())).sum::<f64>();
            let (cpu0, db0) = (smds_cpu(), pg.map(pg_cpu_seconds));
            let start = Instant::now();
            let n = self.discoveries(nodes, clients, self.secs).await.len();
            let elapsed = start.elapsed().as_secs_f64();
            let per = (smds_cpu() - cpu0) / n as f64;
            let db = match (pg, db0) {
                (Some(pid), Some(db0)) => format!(
                    "; PostgreSQL CPU {:.0} us per discovery",
                    (pg_cpu_seconds(pid) - db0) / n as f64 * 1e6
                ),
                _ => String::new(),
            };
            println!(
                "{label:<22} {clients:>2} client(s): {:>4.0} discoveries/s; SM-DS CPU {:.0} us per discovery = {:.1}x its raw ECDSA cost, without the transport share {:.0} us = {:.1}x{db}",
                n as f64 / elapsed,
                per * 1e6,
                per / self.raw,
                (per - transport) * 1e6,
                (per - transport) / self.raw,
            );
        }
    }

    /// The connection-style rows: server CPU per discovery against each style's crypto floor.
    async fn connection_rows(&self, node: &Node) {
        use smds::lab::lpa::Connections;
        let styles = [
            ClientStyle {
                label: "lpac-style (2 new TLS connections)",
                connections: Connections::OnePerRequest,
                handshakes: 2.0,
                tls: curl_like_tls(&self.pki, b"http/1.1"),
            },
            ClientStyle {
                label: "one HTTP/1.1 keep-alive connection",
                connections: Connections::Shared,
                handshakes: 1.0,
                tls: curl_like_tls(&self.pki, b"http/1.1"),
            },
            ClientStyle {
                label: "one HTTP/2 connection",
                connections: Connections::Shared,
                handshakes: 1.0,
                tls: curl_like_tls(&self.pki, b"h2"),
            },
        ];
        for style in &styles {
            let floor = self.raw + style.handshakes * self.handshake;
            for clients in [1usize, 4] {
                let cpu0 = cpu_seconds(node.child.id());
                let start = Instant::now();
                let n = self
                    .discoveries_as(
                        &[node],
                        clients,
                        self.secs,
                        style.tls.clone(),
                        style.connections,
                    )
                    .await
                    .len();
                let elapsed = start.elapsed().as_secs_f64();
                let per = (cpu_seconds(node.child.id()) - cpu0) / n as f64;
                println!(
                    "{:<36} {clients} client(s): {:>4.0} discoveries/s; server CPU {:.0} us per discovery = {:.2}x its crypto floor of {:.0} us (ES11 ECDSA {:.0} + {} x TLS handshake {:.0}) = {:.2}x the ES11 ECDSA",
                    style.label,
                    n as f64 / elapsed,
                    per * 1e6,
                    per / floor,
                    floor * 1e6,
                    self.raw * 1e6,
                    style.handshakes,
                    self.handshake * 1e6,
                    per / self.raw,
                );
            }
        }
    }

    /// Server CPU per discovery of one round of `connections` load (4 clients) on `node`.
    async fn ab_round(
        &self,
        node: &Node,
        tls: &Arc<rustls::ClientConfig>,
        connections: smds::lab::lpa::Connections,
    ) -> (f64, f64) {
        let pid = node.child.id();
        let cpu0 = cpu_seconds(pid);
        let start = Instant::now();
        let n = self
            .discoveries_as(&[node], 4, self.secs, tls.clone(), connections)
            .await
            .len();
        (
            (cpu_seconds(pid) - cpu0) / n as f64,
            n as f64 / start.elapsed().as_secs_f64(),
        )
    }

    /// A/B: two server builds, alternating rounds of the lpac-style load (or, with `keep_alive`,
    /// of one HTTP/1.1 connection per discovery).
    async fn ab_rows(&self, b_bin: &std::ffi::OsStr, keep_alive: bool) {
        use smds::lab::lpa::Connections;
        let (style, connections, floor) = if keep_alive {
            ("keep-alive", Connections::Shared, self.raw + self.handshake)
        } else {
            (
                "lpac-style",
                Connections::OnePerRequest,
                self.raw + 2.0 * self.handshake,
            )
        };
        let a_bin =
            std::env::var_os("SMDS_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_smds").into());
        let spawn = |bin: &std::ffi::OsStr, name: &str, extra: &str| {
            let config = self.dir.join(format!("{name}.toml"));
            let extra = std::env::var(extra)
                .unwrap_or_default()
                .replace("\\n", "\n");
            std::fs::write(
                &config,
                format!(
                    "session_key_file = \"{}\"\n{extra}\n",
                    self.dir.join("session.key").display()
                ),
            )
            .expect("config");
            let (child, port) =
                support::spawn_serve_bin(bin, &self.pki, &self.dir.join(name), Some(&config));
            Node {
                child,
                endpoint: Endpoint::localhost(port),
            }
        };
        let (a, b) = (
            spawn(&a_bin, "ab-a", "SMDS_CONFIG_A"),
            spawn(b_bin, "ab-b", "SMDS_CONFIG_B"),
        );
        self.register(&a).await;
        self.register(&b).await;
        let tls = curl_like_tls(&self.pki, b"http/1.1");
        let (mut xs, mut ys, mut rates) = (Vec::new(), Vec::new(), [0.0f64; 2]);
        for _ in 0..6 {
            let (cpu, rate) = self.ab_round(&a, &tls, connections).await;
            xs.push(cpu);
            rates[0] += rate / 6.0;
            let (cpu, rate) = self.ab_round(&b, &tls, connections).await;
            ys.push(cpu);
            rates[1] += rate / 6.0;
        }
        let stats = |v: &[f64]| {
            let m = v.iter().sum::<f64>() / v.len() as f64;
            let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
            (m, sd)
        };
        let ((ma, sa), (mb, sb)) = (stats(&xs), stats(&ys));
        println!(
            "A/B {style}, 4 clients, 6 alternating rounds of {:.0} s: A {:.0} us (sd {:.0}) = {:.2}x floor, {:.2}x ES11 ECDSA, {:.0}/s; B {:.0} us (sd {:.0}) = {:.2}x floor, {:.2}x ES11 ECDSA, {:.0}/s; B - A = {:+.0} us ({:+.1}%)",
            self.secs,
            ma * 1e6,
            sa * 1e6,
            ma / floor,
            ma / self.raw,
            rates[0],
            mb * 1e6,
            sb * 1e6,
            mb / floor,
            mb / self.raw,
            rates[1],
            (mb - ma) * 1e6,
            (mb / ma - 1.0) * 100.0
        );
    }

    /// Server CPU per discovery (4 clients) on `node`, one round of `secs`.
    async fn cpu_per_discovery(&self, node: &Node, secs: f64) -> f64 {
        let cpu0 = cpu_seconds(node.child.id());
        let n = self.discoveries(&[node], 4, secs).await.len();
        (cpu_seconds(node.child.id()) - cpu0) / n as f64
    }

    /// The revocation rows: no CRL vs a 10,000-entry CRL at each level of the eUICC chain.
    async fn crl_rows(&self) {
        let empty = self.dir.join("crl-none");
        let big = self.dir.join("crl-10000");
        std::fs::create_dir_all(&empty).expect("dir");
        std::fs::create_dir_all(&big).expect("dir");
        let h = pki_tool::hierarchy::Hierarchy::open(&self.pki).expect("hierarchy");
        let now = pki_tool::time::now();
        for (issuer, name) in [(pki_tool::Role::Ci, "ci"), (pki_tool::Role::Eum, "eum")] {
            let slot = h.slot(issuer, Curve::NistP256, None);
            let revoked: Vec<_> = (0..10_000u32)
                .map(|i| pki_tool::crl::RevokedEntry {
                    // Serials no certificate of the hierarchy has: nothing is refused.
                    serial: [&[0x7f, 0xee][..], &i.to_be_bytes()].concat(),
                    date: now,
                    reason: None,
                })
                .collect();
            let crl = pki_tool::crl::issue(&pki_tool::crl::CrlInput {
                issuer: &h.cert(&slot).expect("issuer"),
                key: &h.key(&slot).expect("key"),
                number: 1,
                this_update: now,
                next_update: now + 86_400,
                revoked: &revoked,
            })
            .expect("CRL");
            std::fs::write(big.join(format!("{name}.crl")), crl.der()).expect("write");
        }
        let line = |d: &Path| format!("crl_dir = \"{}\"\n", d.display());
        let none = self.node_with("crl-none", None, &line(&empty));
        let with = self.node_with("crl-10000", None, &line(&big));
        self.register(&none).await;
        self.register(&with).await;
        let round = (self.secs / 2.0).max(1.0);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            a.push(self.cpu_per_discovery(&none, round).await);
            b.push(self.cpu_per_discovery(&with, round).await);
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let (a, b) = (mean(&a), mean(&b));
        println!(
            "revocation (4 clients, 3 alternating rounds of {round:.0}s): SM-DS CPU {:.0} us per discovery without CRLs, {:.0} us with two 10,000-entry CRLs = {:+.1}% ({:.1}x / {:.1}x raw ECDSA)",
            a * 1e6,
            b * 1e6,
            (b / a - 1.0) * 100.0,
            a / self.raw,
            b / self.raw,
        );
    }

    /// Server CPU per connection for TLS and two small requests (404s), no ES11 work.
    async fn transport(&self, node: &Node) -> f64 {
        let cpu0 = cpu_seconds(node.child.id());
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed().as_secs_f64() < self.secs.min(3.0) {
            let mut c = Connection::open(
                &node.endpoint,
                self.lpa_tls.clone(),
                Duration::from_secs(10),
            )
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
        let per = (cpu_seconds(node.child.id()) - cpu0) / n as f64;
        println!(
            "transport only (new TLS connection + 2 requests): server CPU {:.0} us per connection",
            per * 1e6
        );
        per
    }

    /// One client's discovery latency with the store as it is.
    async fn latency_row(&self, label: &str, node: &Node, stored: u64) {
        let lat = self.discoveries(&[node], 1, self.secs).await;
        println!(
            "{label:<10} {stored:>9} events stored: discovery p50 {:.2} ms, p99 {:.2} ms ({} discoveries)",
            percentile(&lat, 0.5).as_secs_f64() * 1e3,
            percentile(&lat, 0.99).as_secs_f64() * 1e3,
            lat.len()
        );
    }
}

/// EID number `i` of the filler (30-digit body, check digits computed).
fn filler_eid(i: u64) -> Eid {
    Eid::from_body(&format!("89049099{i:022}")).expect("eid")
}

/// Adds filler events `from..to` (one per EID, other EIDs than the discovered one) to a redb
/// database, many writers at once so that the writer batches them.
async fn fill_redb(path: &Path, from: u64, to: u64) {
    let store = RedbStore::open(path, WriterConfig::default()).expect("open");
    let writers = 256u64;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = from + w;
            while i < to {
                store
                    .register_event(EventRecord {
                        eid: filler_eid(i),
                        event_id: EventId::parse(&format!("f{i}")).expect("id"),
                        rsp_server_address: RspServerAddress::parse("smdp.example.com")
                            .expect("address"),
                        owner: OwnerId::new("filler"),
                        owner_names: vec![],
                        forwarding_indicator: false,
                        registered_at: 0,
                        forwarded: None,
                        details: Default::default(),
                    })
                    .await
                    .expect("register");
                i += writers;
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    store.shutdown().await;
}

/// The same filler in PostgreSQL, in one statement (valid EIDs: check digits computed in SQL).
fn fill_postgres(pg: &Postgres, db: &str, from: u64, to: u64) {
    pg.psql(
        db,
        &format!(
            "WITH b AS (SELECT i, '89049099' || lpad(i::text, 22, '0') AS body FROM generate_series({from}, {} ) i)
             INSERT INTO smds_events (eid, seq, owner, owner_names, event_id, rsp_server_address, forwarding_indicator, registered_at)
             SELECT body || lpad((98 - ((body || '00')::numeric % 97))::text, 2, '0'), nextval('smds_event_seq'),
                    'filler', '{{}}', 'f' || i, 'smdp.example.com', false, 0 FROM b",
            to - 1
        ),
    );
    // The bulk load's aftermath (autovacuum of a million new rows, a checkpoint) is done now, not
    // during the measurement.
    pg.psql(db, "VACUUM ANALYZE smds_events");
    pg.psql(db, "CHECKPOINT");
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args = support::BenchArgs::parse(5.0);
    let scratch = workspace_tests::common::TempDir::new("bench");
    let dir = scratch.0.clone();
    let pki = dir.join("pki");
    support::mint(&pki, "default", None);
    let raw = raw_ecdsa();
    let (kx, cert_verify) = raw_handshake();
    let bench = Bench {
        euicc: Arc::new(SoftEuicc::load(&pki, Curve::NistP256, None).expect("eUICC")),
        lpa_tls: support::lpa_tls(&pki),
        smdp_tls: support::smdp(&pki, "", &pki),
        dir,
        pki,
        secs: args.secs,
        raw,
        handshake: kx + cert_verify,
    };

    if args.has("ab") {
        let b = std::env::var_os("SMDS_BIN_B").expect("ab needs SMDS_BIN_B (and SMDS_BIN for A)");
        bench.ab_rows(&b, args.has("keepalive")).await;
        return;
    }
    let redb = bench.node("redb", None);
    bench.register(&redb).await;
    bench.connection_rows(&redb).await;
    if args.has("styles") {
        return;
    }
    let transport = bench.transport(&redb).await;
    if args.store("redb") {
        bench.throughput("redb", &[&redb], None, transport).await;
    }
    drop(redb);
    let pg = args.store("postgres").then(Postgres::start);
    if let Some(pg) = &pg {
        let url = pg.create_database("smds");
        let a = bench.node("pg-a", Some(&url));
        bench.register(&a).await;
        bench
            .throughput("postgres", &[&a], pg.pid(), transport)
            .await;
        let b = bench.node("pg-b", Some(&url));
        bench
            .throughput("postgres, two nodes", &[&a, &b], pg.pid(), transport)
            .await;
    }

    if args.has("crl") {
        bench.crl_rows().await;
    }

    if args.has("scale") {
        for (from, to) in [(0u64, 1_000u64), (1_000, 1_000_000)] {
            if args.store("redb") {
                let data = bench.dir.join("scale-redb");
                std::fs::create_dir_all(&data).expect("dir");
                fill_redb(&data.join("events.redb"), from, to).await;
                let node = bench.node("scale-redb", None);
                if from == 0 {
                    bench.register(&node).await;
                }
                bench.latency_row("redb", &node, to + 3).await;
            }
            if let Some(pg) = &pg {
                let url = pg.url("scale");
                if from == 0 {
                    pg.create_database("scale");
                }
                let node = bench.node("scale-pg", Some(&url));
                if from == 0 {
                    bench.register(&node).await;
                }
                fill_postgres(pg, "scale", from, to);
                bench.latency_row("postgres", &node, to + 3).await;
            }
        }
    }
}
