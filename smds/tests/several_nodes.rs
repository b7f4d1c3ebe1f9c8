//! Several `smds serve` processes on one PostgreSQL (started by the test), as behind a load
//! balancer: an event registered at one node is discovered at another; an ES11 transaction
//! started at one node completes at another and cannot be replayed at either; racing
//! registrations give exactly one success; a node killed with SIGKILL under load and a database
//! restarted under load lose nothing acknowledged, and the outage is answered with clean errors.

mod support;

use pki_tool::Curve;
use smds::lab::https::{Connection, Endpoint};
use smds::lab::lpa::{self, Discovery, DiscoveryOptions};
use smds::lab::soft_euicc::SoftEuicc;
use smds::sgp22::Es11PathFamily;
use smds::sgp22::paths::path::ES12_REGISTER_EVENT;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;

/// One PKI, one PostgreSQL database, one session key: what every node of a cluster shares.
struct Cluster {
    tmp: TempDir,
    pki: PathBuf,
    pg: Postgres,
    config: PathBuf,
}

impl Cluster {
    fn new(tag: &str, limits: &str) -> Cluster {
        let tmp = TempDir::new(tag);
        let pki = tmp.0.join("pki");
        mint(&pki, "default", None);
        let pg = Postgres::start();
        let url = pg.create_database("smds");
        let config = tmp.0.join("node.toml");
        std::fs::write(
            &config,
            format!(
                "store = \"{url}\"\nstore_timeout_secs = 2\nsession_key_file = \"{}\"\n[limits]\n{limits}",
                tmp.0.join("session.key").display()
            ),
        )
        .expect("config");
        Cluster {
            tmp,
            pki,
            pg,
            config,
        }
    }

    /// Starts a node with a data directory of its own (only its development files live there).
    fn node(&self, name: &str) -> Node {
        let (child, port) = spawn_serve(&self.pki, &self.tmp.0.join(name), Some(&self.config));
        Node { child, port }
    }
}

struct Node {
    child: Child,
    port: u16,
}

impl Node {
    fn endpoint(&self) -> Endpoint {
        Endpoint::localhost(self.port)
    }

    async fn connect(&self, tls: Arc<rustls::ClientConfig>) -> Connection {
        Connection::open(&self.endpoint(), tls, Duration::from_secs(10))
            .await
            .expect("connects")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_share_events_transactions_and_uniqueness() {
    let cluster = Cluster::new("nodes", "");
    let a = cluster.node("a");
    let b = cluster.node("b");
    let pki = &cluster.pki;

    // Registered at A, discovered at B.
    let mut dp_a = a.connect(smdp(pki, "", pki)).await;
    assert!(register(&mut dp_a, EID, "at-a").await.is_success());
    let euicc = SoftEuicc::load(pki, Curve::NistP256, None).expect("eUICC");
    let at_b = DiscoveryOptions {
        endpoint: b.endpoint(),
        address: "localhost".into(),
        tls: lpa_tls(pki),
        paths: Es11PathFamily::Es9Plus,
        matching_id: None,
        timeout: Duration::from_secs(10),
        now: pki_tool::time::now(),
    };
    match lpa::discover(&euicc, &at_b).await.expect("discovery at B") {
        Discovery::Events { entries, .. } => {
            let ids: Vec<&str> = entries.iter().map(|e| e.event_id.as_str()).collect();
            assert_eq!(ids, ["at-a"]);
        }
        other => panic!("{other:?}"),
    }

    // InitiateAuthentication at A, AuthenticateClient at B, the same again at A: refused.
    let mut es11_a = a.connect(lpa_tls(pki)).await;
    let body = initiate_and_answer(&mut es11_a, &euicc, "localhost").await;
    let mut es11_b = b.connect(lpa_tls(pki)).await;
    let done = es11_b
        .call(Es11PathFamily::Es9Plus.authenticate_client(), &body)
        .await
        .expect("answer");
    assert!(done.is_success(), "{:?}", done.body);
    assert_eq!(done.body["eventEntries"][0]["eventId"], "at-a");
    let replayed = es11_a
        .call(Es11PathFamily::Es9Plus.authenticate_client(), &body)
        .await
        .expect("answer");
    assert_eq!(
        replayed.code().as_deref(),
        Some("8.10.1/3.9"),
        "{:?}",
        replayed.body
    );

    // The same registration (SM-DP+, EID, EventID) sent to both nodes at once, many times.
    let mut racers = Vec::new();
    for node in [&a, &b] {
        for _ in 0..8 {
            let (endpoint, tls) = (node.endpoint(), smdp(pki, "", pki));
            racers.push(tokio::spawn(async move {
                let mut c = Connection::open(&endpoint, tls, Duration::from_secs(10))
                    .await
                    .expect("connects");
                register(&mut c, EID2, "raced").await
            }));
        }
    }
    let mut codes = Vec::new();
    for r in racers {
        let r = r.await.expect("task");
        codes.push(if r.is_success() {
            "ok".to_string()
        } else {
            r.code().unwrap_or_default()
        });
    }
    assert_eq!(codes.iter().filter(|c| *c == "ok").count(), 1, "{codes:?}");
    assert_eq!(
        codes.iter().filter(|c| *c == "8.9.5/3.3").count(),
        15,
        "{codes:?}"
    );
    assert_eq!(
        cluster.pg.psql(
            "smds",
            "SELECT count(*) FROM smds_events WHERE event_id = 'raced'"
        ),
        "1"
    );

    // The operator's view reads the shared store directly.
    let url = cluster.pg.url("smds");
    let smds = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_smds"))
            .args(args)
            .args(["--store", url.as_str()])
            .output()
            .expect("smds runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(smds(&["events", "count"]), "2");
    let listed = smds(&["events", "list", "--eid", EID2]);
    assert!(listed.contains("\"event_id\":\"raced\""), "{listed}");
}

/// 16 clients register events through `node` until told to stop; returns what was acknowledged
/// and what was attempted, and the error codes seen.
struct Load {
    acked: Arc<Mutex<BTreeSet<String>>>,
    attempted: Arc<Mutex<BTreeSet<String>>>,
    refusals: Arc<Mutex<Vec<String>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(endpoints: Vec<Endpoint>, tls: Arc<rustls::ClientConfig>) -> Load {
        let load = Load {
            acked: Arc::default(),
            attempted: Arc::default(),
            refusals: Arc::default(),
            stop: Arc::default(),
            tasks: Vec::new(),
        };
        let mut tasks = Vec::new();
        for worker in 0..16 {
            let endpoint = endpoints[worker % endpoints.len()].clone();
            let (tls, acked, attempted, refusals, stop) = (
                tls.clone(),
                load.acked.clone(),
                load.attempted.clone(),
                load.refusals.clone(),
                load.stop.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut conn = None;
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if conn.is_none() {
                        conn = Connection::open(&endpoint, tls.clone(), Duration::from_secs(5))
                            .await
                            .ok();
                        if conn.is_none() {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    }
                    let Some(c) = conn.as_mut() else { continue };
                    i += 1;
                    let id = format!("w{worker}-{i}");
                    attempted.lock().expect("lock").insert(id.clone());
                    let body =
                        smds::lab::smdp::register_event_body(EID, &id, "smdp.example.com", None);
                    match tokio::time::timeout(
                        Duration::from_secs(10),
                        c.call(ES12_REGISTER_EVENT, &body),
                    )
                    .await
                    {
                        Ok(Ok(r)) if r.is_success() => {
                            acked.lock().expect("lock").insert(id);
                        }
                        Ok(Ok(r)) => {
                            refusals
                                .lock()
                                .expect("lock")
                                .push(r.code().unwrap_or_else(|| format!("{:?}", r.body)));
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        Ok(Err(_)) => conn = None,
                        Err(_) => {
                            refusals
                                .lock()
                                .expect("lock")
                                .push("no answer in 10 s".into());
                            conn = None;
                        }
                    }
                }
            }));
        }
        Load { tasks, ..load }
    }

    fn acked(&self) -> usize {
        self.acked.lock().expect("lock").len()
    }

    async fn wait_for(&self, n: usize, what: &str) {
        let t = Instant::now();
        while self.acked() < n {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "{what}: {} acknowledged",
                self.acked()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn finish(self) -> (BTreeSet<String>, BTreeSet<String>, Vec<String>) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
        let get = |m: &Arc<Mutex<BTreeSet<String>>>| m.lock().expect("lock").clone();
        let refusals = self.refusals.lock().expect("lock").clone();
        (get(&self.acked), get(&self.attempted), refusals)
    }
}

/// Every acknowledged event is in the database, and nothing that was never attempted.
fn check_stored(pg: &Postgres, acked: &BTreeSet<String>, attempted: &BTreeSet<String>) {
    let stored: BTreeSet<String> = pg
        .psql(
            "smds",
            &format!("SELECT event_id FROM smds_events WHERE eid = '{EID}'"),
        )
        .lines()
        .map(str::to_string)
        .collect();
    let lost: Vec<_> = acked.difference(&stored).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    let invented: Vec<_> = stored.difference(attempted).collect();
    assert!(invented.is_empty(), "never attempted: {invented:?}");
}

const UNBOUNDED: &str = "max_events_per_eid = 1000000\nmax_events_per_eid_all_owners = 1000000\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_under_load_loses_nothing_acknowledged() {
    let cluster = Cluster::new("nodes-kill", UNBOUNDED);
    let mut a = cluster.node("a");
    let b = cluster.node("b");
    let load = Load::start(vec![a.endpoint()], smdp(&cluster.pki, "", &cluster.pki));
    load.wait_for(300, "before the kill").await;
    a.child.kill().expect("SIGKILL");
    let _ = a.child.wait();
    let (acked, attempted, refusals) = load.finish().await;
    println!(
        "acknowledged {}, attempted {}",
        acked.len(),
        attempted.len()
    );
    assert!(refusals.is_empty(), "{refusals:?}");
    check_stored(&cluster.pg, &acked, &attempted);
    // The other node goes on serving on the same store.
    let mut c = b.connect(smdp(&cluster.pki, "", &cluster.pki)).await;
    assert!(register(&mut c, EID, "after-the-kill").await.is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_under_load_gives_clean_errors_and_loses_nothing() {
    let mut cluster = Cluster::new("nodes-pg-restart", UNBOUNDED);
    let a = cluster.node("a");
    let b = cluster.node("b");
    let load = Load::start(
        vec![a.endpoint(), b.endpoint()],
        smdp(&cluster.pki, "", &cluster.pki),
    );
    load.wait_for(200, "before the restart").await;
    cluster.pg.stop(true);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = load.acked();
    cluster.pg.resume();
    load.wait_for(during + 200, "after the restart").await;
    let (acked, attempted, refusals) = load.finish().await;
    println!(
        "acknowledged {} (during the outage: {}), refused {}",
        acked.len(),
        during,
        refusals.len()
    );
    assert!(!refusals.is_empty(), "the outage was noticed");
    for r in &refusals {
        assert_eq!(
            r, "1.2/4.2",
            "every refusal is a clean execution error: {refusals:?}"
        );
    }
    check_stored(&cluster.pg, &acked, &attempted);
}
