//! The guarantees of the module doc, as checks every backend's tests run (redb and PostgreSQL
//! alike): same calls, same answers.

use super::*;
use crate::types::{EventId, RspServerAddress};

pub(crate) const EID1: &str = "89049032123451234512345678901235";
pub(crate) const EID2: &str = "89049032000000000000000000100073";

pub(crate) fn event(eid: &str, id: &str, owner: &str) -> EventRecord {
    EventRecord {
        eid: Eid::parse(eid).expect("valid"),
        event_id: EventId::parse(id).expect("valid"),
        rsp_server_address: RspServerAddress::parse("smdp.example.com").expect("valid"),
        owner: OwnerId::new(owner),
        owner_names: vec!["rid:1.2.3".into(), "dns:smdp.example.com".into()],
        forwarding_indicator: false,
        registered_at: 1_700_000_000,
        forwarded: None,
        details: Default::default(),
    }
}

pub(crate) async fn ids(s: &dyn Backend, eid: &str) -> Vec<String> {
    s.events_for(&Eid::parse(eid).expect("valid"))
        .await
        .expect("read")
        .into_iter()
        .map(|e| e.record.event_id.to_string())
        .collect()
}

pub(crate) async fn delete(s: &dyn Backend, id: &str, owner: &str) -> DeleteOutcome {
    s.delete_event(
        &Eid::parse(EID1).expect("valid"),
        &EventId::parse(id).expect("valid"),
        &OwnerId::new(owner),
    )
    .await
    .expect("ok")
}

fn registered(r: &RegisterOutcome) -> bool {
    matches!(r, RegisterOutcome::Registered { .. })
}

/// FIFO per EID, uniqueness per owner, foreign delete = unknown, counting and listing.
pub(crate) async fn fifo_duplicates_and_ownership(s: &dyn Backend) {
    for id in ["c", "a", "b"] {
        let r = s.register_event(event(EID1, id, "dp1")).await.expect("ok");
        assert!(registered(&r), "{r:?}");
    }
    assert_eq!(
        s.register_event(event(EID1, "a", "dp1")).await.expect("ok"),
        RegisterOutcome::Duplicate
    );
    let r = s.register_event(event(EID1, "a", "dp2")).await.expect("ok");
    assert!(
        registered(&r),
        "another SM-DP+ may use the same EventID: {r:?}"
    );
    s.register_event(event(EID2, "a", "dp2"))
        .await
        .expect("other EID may reuse the id");
    assert_eq!(ids(s, EID1).await, ["c", "a", "b", "a"]);
    let first = &s
        .events_for(&Eid::parse(EID1).expect("valid"))
        .await
        .expect("read")[0];
    assert_eq!(
        first.record,
        event(EID1, "c", "dp1"),
        "stored as registered"
    );
    assert_eq!(delete(s, "c", "dp2").await, DeleteOutcome::NotFound);
    assert_eq!(delete(s, "zz", "dp1").await, DeleteOutcome::NotFound);
    assert_eq!(delete(s, "a", "dp1").await, DeleteOutcome::Deleted);
    assert_eq!(delete(s, "a", "dp1").await, DeleteOutcome::NotFound);
    assert_eq!(ids(s, EID1).await, ["c", "b", "a"]);
    assert_eq!(s.count().await.expect("count"), 4);
    assert_eq!(s.check_integrity().await.expect("consistent"), 4);
    let r = s.register_event(event(EID1, "a", "dp1")).await.expect("ok");
    assert!(registered(&r), "re-register after delete: {r:?}");
    assert_eq!(ids(s, EID1).await.last().map(String::as_str), Some("a"));

    // Paging walks the store in (EID, registration) order without gaps or repeats.
    let all = s.list(None, 100).await.expect("list");
    assert_eq!(all.len(), 5);
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = s.list_page(None, after, 2).await.expect("page");
        let Some(last) = page.last() else { break };
        after = Some((last.record.eid, last.seq));
        paged.extend(page);
    }
    assert_eq!(paged, all);
    let eid1 = Eid::parse(EID1).expect("valid");
    assert_eq!(s.list(Some(&eid1), 100).await.expect("list").len(), 4);
}

/// The per-owner bound (3 here) and the EID-wide backstop (5 here), as the store was built.
pub(crate) async fn bounds_per_owner_and_backstop(s: &dyn Backend) {
    for i in 0..3 {
        let r = s
            .register_event(event(EID1, &format!("x{i}"), "dp1"))
            .await
            .expect("ok");
        assert!(registered(&r), "{r:?}");
    }
    assert_eq!(
        s.register_event(event(EID1, "x3", "dp1"))
            .await
            .expect("ok"),
        RegisterOutcome::TooMany
    );
    for i in 0..2 {
        let r = s
            .register_event(event(EID1, &format!("y{i}"), "dp2"))
            .await
            .expect("ok");
        assert!(registered(&r), "{r:?}");
    }
    assert_eq!(
        s.register_event(event(EID1, "z", "dp3")).await.expect("ok"),
        RegisterOutcome::EidFull
    );
    assert_eq!(delete(s, "x0", "dp1").await, DeleteOutcome::Deleted);
    let r = s.register_event(event(EID1, "z", "dp3")).await.expect("ok");
    assert!(registered(&r), "room again after a delete: {r:?}");
}

/// Used transactionIds: insert-if-absent, kept until swept after expiry.
pub(crate) async fn used_transactions(s: &dyn Backend) {
    let t1 = crate::asn1::TransactionId::new(&[1, 2, 3]).expect("valid");
    let t2 = crate::asn1::TransactionId::new(&[9; 16]).expect("valid");
    assert!(s.use_transaction(&t1, 100).await.expect("ok"));
    assert!(!s.use_transaction(&t1, 100).await.expect("ok"), "replay");
    assert!(s.use_transaction(&t2, 200).await.expect("ok"));
    assert_eq!(s.sweep_transactions(150).await.expect("swept"), 1);
    assert!(!s.use_transaction(&t2, 200).await.expect("ok"), "kept");
    assert!(s.use_transaction(&t1, 300).await.expect("ok"), "forgotten");
}

/// Many writers at once on each of `stores` (one per node): for one (EID, owner, EventID)
/// exactly one registration succeeds, and the per-owner bound holds.
pub(crate) async fn racing_writers(stores: &[std::sync::Arc<dyn Backend>], per_owner: usize) {
    let mut tasks = Vec::new();
    for (n, s) in stores.iter().enumerate() {
        for i in 0..8 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                let same = s.register_event(event(EID2, "race", "dp1")).await;
                let other = s
                    .register_event(event(EID2, &format!("n{n}-{i}"), "dp1"))
                    .await;
                (same, other)
            }));
        }
    }
    let (mut won, mut dup, mut more, mut full) = (0, 0, 0, 0);
    for t in tasks {
        let (same, other) = t.await.expect("task");
        match same.expect("store answers") {
            RegisterOutcome::Registered { .. } => won += 1,
            RegisterOutcome::Duplicate => dup += 1,
            r => panic!("{r:?}"),
        }
        match other.expect("store answers") {
            RegisterOutcome::Registered { .. } => more += 1,
            RegisterOutcome::TooMany => full += 1,
            r => panic!("{r:?}"),
        }
    }
    let writers = stores.len() * 8;
    assert_eq!((won, dup), (1, writers - 1), "exactly one wins the race");
    assert_eq!(
        more + 1,
        per_owner.min(writers + 1),
        "the bound holds exactly"
    );
    assert_eq!(more + full, writers);
    let stored = ids(&*stores[0], EID2).await;
    assert_eq!(stored.len(), per_owner.min(writers + 1));
    assert_eq!(stored.iter().filter(|i| *i == "race").count(), 1);
}

/// An Alternative SM-DS's forwarding state: unconfirmed records until the Root acknowledges,
/// and every deletion of a forwarded record (confirmed or not) queues its ES15 delete, which
/// stays queued, counting failed attempts, until it is done.
pub(crate) async fn cascade_state(s: &dyn Backend) {
    use crate::store::Forwarded;
    let forwarded = |id: &str, root: &str| EventRecord {
        forwarded: Some(Forwarded {
            root_event_id: EventId::parse(root).expect("valid"),
            confirmed: false,
        }),
        ..event(EID1, id, "dp1")
    };
    let eid = Eid::parse(EID1).expect("valid");
    let id = |s: &str| EventId::parse(s).expect("valid");
    let dp1 = OwnerId::new("dp1");
    for (local, root) in [("a", "root-a"), ("b", "root-b")] {
        let r = s.register_event(forwarded(local, root)).await.expect("ok");
        assert!(registered(&r), "{r:?}");
    }
    s.register_event(event(EID1, "plain", "dp1"))
        .await
        .expect("ok");
    let unconfirmed = |v: Vec<StoredEvent>| -> Vec<String> {
        v.into_iter()
            .map(|e| e.record.event_id.to_string())
            .collect()
    };
    assert_eq!(
        unconfirmed(s.unconfirmed_forwards().await.expect("ok")),
        ["a", "b"]
    );
    assert!(s.confirm_forward(&eid, &id("a"), &dp1).await.expect("ok"));
    assert!(
        !s.confirm_forward(&eid, &id("a"), &OwnerId::new("dp2"))
            .await
            .expect("ok"),
        "only the owner's record"
    );
    assert!(
        !s.confirm_forward(&eid, &id("plain"), &dp1)
            .await
            .expect("ok"),
        "not a forwarded record"
    );
    assert_eq!(
        unconfirmed(s.unconfirmed_forwards().await.expect("ok")),
        ["b"]
    );
    let stored = s.events_for(&eid).await.expect("ok");
    let a = stored
        .iter()
        .find(|e| e.record.event_id.as_str() == "a")
        .and_then(|e| e.record.forwarded.clone());
    assert_eq!(
        a,
        Some(Forwarded {
            root_event_id: id("root-a"),
            confirmed: true
        })
    );
    assert!(s.queued_deletes(10).await.expect("ok").is_empty());
    // Deleting forwarded records (confirmed or not) queues their ES15 deletes; a plain one does not.
    for local in ["a", "b", "plain"] {
        assert_eq!(delete(s, local, "dp1").await, DeleteOutcome::Deleted);
    }
    assert!(s.unconfirmed_forwards().await.expect("ok").is_empty());
    let queued = s.queued_deletes(10).await.expect("ok");
    let roots: Vec<_> = queued.iter().map(|q| q.root_event_id.to_string()).collect();
    assert_eq!(roots, ["root-a", "root-b"]);
    assert!(queued.iter().all(|q| q.eid == eid && q.attempts == 0));
    s.queued_delete_failed(queued[0].id, "the Root is down")
        .await
        .expect("ok");
    let again = s.queued_deletes(1).await.expect("ok");
    assert_eq!(again.len(), 1, "limit");
    assert_eq!(
        (again[0].attempts, again[0].last_error.as_deref()),
        (1, Some("the Root is down"))
    );
    s.queued_delete_done(queued[0].id).await.expect("ok");
    let left = s.queued_deletes(10).await.expect("ok");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].root_event_id.as_str(), "root-b");
}

/// Event Checking identifiers: one per EID, a new one replaces the old, none past its expiry.
pub(crate) async fn ec_ids(s: &dyn Backend) {
    let eid = Eid::parse(EID1).expect("valid");
    let (a, b) = ([0xAA; 16], [0xBB; 16]);
    assert_eq!(s.eid_for_ec_id(&a, 100).await.expect("ok"), None);
    s.issue_ec_id(&eid, &a, 200).await.expect("issued");
    assert_eq!(s.eid_for_ec_id(&a, 100).await.expect("ok"), Some(eid));
    s.issue_ec_id(&eid, &b, 300).await.expect("rotated");
    assert_eq!(
        s.eid_for_ec_id(&a, 100).await.expect("ok"),
        None,
        "replaced"
    );
    assert_eq!(s.eid_for_ec_id(&b, 300).await.expect("ok"), Some(eid));
    assert_eq!(s.eid_for_ec_id(&b, 301).await.expect("ok"), None, "expired");
    s.sweep_transactions(400).await.expect("swept");
    assert_eq!(s.eid_for_ec_id(&b, 0).await.expect("ok"), None, "swept");
    s.issue_ec_id(&eid, &a, 500).await.expect("issued again");
    assert_eq!(s.eid_for_ec_id(&a, 400).await.expect("ok"), Some(eid));
}

/// Push tokens and the notification queue: a registered event queues one notification per
/// unexpired token of its EID (the latest token per service), a refused one none; failures count
/// attempts, done removes; expired tokens are swept.
pub(crate) async fn push_queue(s: &dyn Backend) {
    use crate::types::PushToken;
    let (eid1, eid2) = (
        Eid::parse(EID1).expect("valid"),
        Eid::parse(EID2).expect("valid"),
    );
    let token = |t: &str| PushToken::parse(t).expect("valid");
    let now = 1_700_000_000;
    s.register_push_token(&eid1, "2.999.1", &token("old"), now + 100)
        .await
        .expect("stored");
    s.register_push_token(&eid1, "2.999.1", &token("new"), now + 100)
        .await
        .expect("replaced");
    s.register_push_token(&eid1, "2.999.2", &token("other"), now + 100)
        .await
        .expect("stored");
    s.register_push_token(&eid2, "2.999.1", &token("expired"), now - 1)
        .await
        .expect("stored");
    assert!(s.queued_pushes(10).await.expect("read").is_empty());
    let at = |mut e: EventRecord| {
        e.registered_at = now;
        e
    };
    s.register_event(at(event(EID1, "p1", "dp1")))
        .await
        .expect("registered");
    s.register_event(at(event(EID2, "p2", "dp1")))
        .await
        .expect("registered");
    // A duplicate is refused and notifies nobody.
    s.register_event(at(event(EID1, "p1", "dp1")))
        .await
        .expect("refused");
    let queued = s.queued_pushes(10).await.expect("read");
    let seen: Vec<(&str, &str)> = queued
        .iter()
        .map(|q| (q.service.as_str(), q.token.secret()))
        .collect();
    assert_eq!(seen, [("2.999.1", "new"), ("2.999.2", "other")]);
    assert!(queued.iter().all(|q| q.attempts == 0 && q.queued_at == now));
    s.queued_push_failed(queued[0].id).await.expect("counted");
    s.queued_push_done(queued[1].id).await.expect("done");
    let left = s.queued_pushes(10).await.expect("read");
    assert_eq!(left.len(), 1);
    assert_eq!((left[0].id, left[0].attempts), (queued[0].id, 1));
    s.queued_push_done(left[0].id).await.expect("done");
    // Swept once expired: a later event notifies nobody.
    s.sweep_transactions(now + 101).await.expect("swept");
    s.register_event(event(EID1, "p3", "dp1"))
        .await
        .expect("registered");
    assert!(s.queued_pushes(10).await.expect("read").is_empty());
}
