//! One SM-DP+ can neither learn about nor crowd out another's events: EventID uniqueness and the
//! per-EID bound are per owning SM-DP+, the EID-wide backstop answers exactly like an SM-DP+'s
//! own bound, and a foreign delete is an unknown delete. Two real SM-DP+ identities (DP and DP2,
//! SAN 2.999.10 and 2.999.12, same CI) against a real server on loopback.

mod support;

use pki_tool::Curve;
use smds::config::Limits;
use smds::lab::lpa::{self, Discovery};
use smds::lab::soft_euicc::SoftEuicc;
use smds::sgp22::{Es11PathFamily, FunctionResult};
use support::*;

fn same_answer(a: &FunctionResult, b: &FunctionResult) {
    assert_eq!(
        (a.http_status, &a.status, a.code(), &a.message),
        (b.http_status, &b.status, b.code(), &b.message)
    );
}

async fn discovered(
    server: &smds::server::Server,
    lab: &Lab,
    matching_id: Option<&str>,
) -> Vec<(String, String)> {
    let euicc = SoftEuicc::load(&lab.pki, Curve::NistP256, None).expect("eUICC");
    let opts = discovery_options(server, &lab.pki, matching_id, Es11PathFamily::Es9Plus);
    match lpa::discover(&euicc, &opts).await.expect("discovery") {
        Discovery::Events { entries, .. } => entries
            .into_iter()
            .map(|e| (e.event_id, e.rsp_server_address))
            .collect(),
        Discovery::PushRegistered { .. } => panic!("a push registration answer"),
        Discovery::Failed { step, result } => panic!("{step}: {:?}", result.body),
    }
}

async fn register_at(
    conn: &mut smds::lab::https::Connection,
    event_id: &str,
    address: &str,
) -> FunctionResult {
    conn.call(
        smds::sgp22::paths::path::ES12_REGISTER_EVENT,
        &smds::lab::smdp::register_event_body(EID, event_id, address, None),
    )
    .await
    .expect("answer")
}

/// A server with `limits` on a fresh lab, and one connection as each SM-DP+ (DP, then DP2).
async fn two_smdps(
    tag: &str,
    limits: Limits,
) -> (
    Lab,
    smds::server::Server,
    smds::lab::https::Connection,
    smds::lab::https::Connection,
) {
    let lab = Lab::new(tag);
    let server = start(&lab.pki, &lab.config(limits), None).await;
    let dp1 = connect(&server, smdp(&lab.pki, "", &lab.pki)).await;
    let dp2 = connect(&server, smdp(&lab.pki, "2", &lab.pki)).await;
    (lab, server, dp1, dp2)
}

/// Registers `{prefix}{i}` for each `i` in `range`, each of which must succeed.
async fn register_each(
    conn: &mut smds::lab::https::Connection,
    prefix: &str,
    range: std::ops::Range<usize>,
    address: &str,
) {
    for i in range {
        let id = format!("{prefix}{i}");
        let r = register_at(conn, &id, address).await;
        assert!(r.is_success(), "{id}: {:?}", r.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_existence_oracle_and_both_events_are_discovered() {
    let (lab, server, mut dp1, mut dp2) = two_smdps("iso-exist", Limits::default()).await;
    assert!(
        register_at(&mut dp1, "shared", "dp1.example.com")
            .await
            .is_success()
    );

    // DP2 cannot tell a used EventID from an unused one: both are simply accepted.
    let used = register_at(&mut dp2, "shared", "dp2.example.com").await;
    let unused = register_at(&mut dp2, "fresh", "dp2.example.com").await;
    assert!(used.is_success(), "{:?}", used.body);
    same_answer(&used, &unused);
    // Its own duplicate is still refused.
    let dup = register_at(&mut dp2, "shared", "dp2.example.com").await;
    assert_eq!(dup.code().as_deref(), Some("8.9.5/3.3"));

    // The device sees every event in registration order; a matchingId both SM-DP+s used names both.
    assert_eq!(
        discovered(&server, &lab, None).await,
        [
            ("shared".to_string(), "dp1.example.com".to_string()),
            ("shared".to_string(), "dp2.example.com".to_string()),
            ("fresh".to_string(), "dp2.example.com".to_string()),
        ]
    );
    assert_eq!(discovered(&server, &lab, Some("shared")).await.len(), 2);

    // DP2 deleting DP1's event is an unknown delete; deleting its own leaves DP1's in place.
    let foreign = delete(&mut dp2, EID, "dp1-only").await;
    assert!(
        register_at(&mut dp1, "dp1-only", "dp1.example.com")
            .await
            .is_success()
    );
    let foreign_after = delete(&mut dp2, EID, "dp1-only").await;
    same_answer(&foreign, &foreign_after);
    assert_eq!(foreign_after.code().as_deref(), Some("8.9.5/3.9"));
    assert!(delete(&mut dp2, EID, "shared").await.is_success());
    assert_eq!(
        discovered(&server, &lab, Some("shared")).await,
        [("shared".to_string(), "dp1.example.com".to_string())]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_count_oracle_and_no_lockout() {
    let limits = Limits {
        max_events_per_eid: 5,
        ..Limits::default()
    };
    let (lab, server, mut dp1, mut dp2) = two_smdps("iso-count", limits).await;
    register_each(&mut dp1, "legit-", 0..3, "dp1.example.com").await;
    // DP2 fills the bound: it gets exactly its own 5, whatever DP1 holds.
    let mut accepted = 0;
    let mut refusal = None;
    for i in 0..10 {
        let r = register_at(&mut dp2, &format!("flood-{i}"), "dp2.example.com").await;
        if r.is_success() {
            accepted += 1;
        } else {
            refusal.get_or_insert(r);
        }
    }
    assert_eq!(accepted, 5, "the bound is per SM-DP+");
    assert_eq!(
        refusal.expect("refused").code().as_deref(),
        Some("8.1.1/4.8")
    );
    // The legitimate SM-DP+ is not locked out.
    register_each(&mut dp1, "legit-", 3..5, "dp1.example.com").await;
    let own_bound = register_at(&mut dp1, "legit-5", "dp1.example.com").await;
    assert_eq!(own_bound.code().as_deref(), Some("8.1.1/4.8"));
    assert_eq!(discovered(&server, &lab, None).await.len(), 10);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_eid_backstop_answers_like_an_own_bound_and_is_counted() {
    let limits = Limits {
        max_events_per_eid: 3,
        max_events_per_eid_all_owners: 4,
        ..Limits::default()
    };
    let (lab, server, mut dp1, mut dp2) = two_smdps("iso-backstop", limits).await;
    register_each(&mut dp1, "a", 0..3, "dp1.example.com").await;
    let own_bound = register_at(&mut dp1, "a3", "dp1.example.com").await;
    assert!(
        register_at(&mut dp2, "b0", "dp2.example.com")
            .await
            .is_success()
    );
    let backstop = register_at(&mut dp2, "b1", "dp2.example.com").await;
    same_answer(&own_bound, &backstop);
    let metrics = server.state.metrics.render(None);
    assert!(
        metrics.contains("smds_refusals_total{reason=\"eid_backstop\"} 1"),
        "{metrics}"
    );
    assert_eq!(discovered(&server, &lab, None).await.len(), 4);
    server.stop().await;
}
