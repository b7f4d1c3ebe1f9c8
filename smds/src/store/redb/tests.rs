use super::*;
use crate::store::contract::{EID1, EID2, delete, event, ids};

#[tokio::test]
async fn fifo_duplicates_ownership_and_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.redb");
    {
        let s = RedbStore::open(&path, WriterConfig::default()).expect("open");
        for id in ["c", "a", "b"] {
            assert!(matches!(
                s.register_event(event(EID1, id, "dp1")).await.expect("ok"),
                RegisterOutcome::Registered { .. }
            ));
        }
        assert_eq!(
            s.register_event(event(EID1, "a", "dp1")).await.expect("ok"),
            RegisterOutcome::Duplicate
        );
        s.register_event(event(EID2, "a", "dp2"))
            .await
            .expect("other EID may reuse the id");
        assert_eq!(ids(&s, EID1).await, ["c", "a", "b"]);
        assert_eq!(delete(&s, "a", "dp2").await, DeleteOutcome::NotFound);
        assert_eq!(delete(&s, "zz", "dp1").await, DeleteOutcome::NotFound);
        assert_eq!(delete(&s, "a", "dp1").await, DeleteOutcome::Deleted);
        assert_eq!(s.count().await.expect("count"), 3);
        assert_eq!(s.check_integrity().await.expect("consistent"), 3);
        s.shutdown().await;
    }
    let s = RedbStore::open(&path, WriterConfig::default()).expect("reopen");
    assert_eq!(ids(&s, EID1).await, ["c", "b"]);
    s.register_event(event(EID1, "a", "dp1"))
        .await
        .expect("re-register after delete");
    assert_eq!(
        ids(&s, EID1).await.last().map(String::as_str),
        Some("a"),
        "FIFO continues after reopen"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn a_second_open_is_refused_as_locked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.redb");
    let s = RedbStore::open(&path, WriterConfig::default()).expect("open");
    let err = RedbStore::open(&path, WriterConfig::default())
        .err()
        .expect("refused");
    assert_eq!(err.root(), &StoreError::Locked, "{err}");
    s.shutdown().await;
}

#[tokio::test]
async fn truncated_database_is_refused_not_emptied() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.redb");
    let s = RedbStore::open(&path, WriterConfig::default()).expect("open");
    for i in 0..2000 {
        s.register_event(event(EID1, &format!("e{i}"), "dp"))
            .await
            .expect("ok");
    }
    s.shutdown().await;
    drop(s);
    let len = std::fs::metadata(&path).expect("meta").len();
    for cut in [len / 2, len / 4, 4096, 100] {
        let copy = dir.path().join(format!("cut-{cut}.redb"));
        let data = std::fs::read(&path).expect("read");
        std::fs::write(&copy, &data[..cut as usize]).expect("write");
        match RedbStore::open(&copy, WriterConfig::default()) {
            Err(e) => assert!(e.to_string().contains(&format!("cut-{cut}.redb")), "{e}"),
            Ok(s) => {
                // If redb could repair it, no event may have silently vanished.
                let n = s.count().await.expect("count");
                assert_eq!(
                    n, 2000,
                    "a truncated database ({cut} of {len} bytes) opened with {n} events"
                );
            }
        }
    }
}

#[test]
fn truncated_or_garbage_file_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = dir.path().join("empty.redb");
    std::fs::write(&empty, b"").expect("write");
    let err = RedbStore::open(&empty, WriterConfig::default())
        .err()
        .expect("refused");
    assert_eq!(err.root(), &StoreError::Empty);
    let err = err.to_string();
    assert!(err.contains("empty.redb") && err.contains("empty"), "{err}");
    let junk = dir.path().join("junk.redb");
    std::fs::write(&junk, vec![0x42; 4096]).expect("write");
    let err = RedbStore::open(&junk, WriterConfig::default())
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("junk.redb"), "{err}");
}

#[tokio::test]
async fn an_index_from_before_owner_scoping_is_rebuilt_at_open() {
    use ::redb::{ReadableDatabase, TableDefinition};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.redb");
    // The layout of earlier versions: events, an (EID, EventID) index, per-EID counters.
    {
        let legacy_index: TableDefinition<(&str, &str), u64> = TableDefinition::new("event_ids_v1");
        let legacy_counts: TableDefinition<&str, u64> = TableDefinition::new("event_counts_v1");
        let db = ::redb::Database::create(&path).expect("create");
        let txn = db.begin_write().expect("txn");
        {
            let mut events = txn.open_table(schema::EVENTS).expect("events");
            let mut index = txn.open_table(legacy_index).expect("index");
            let mut counts = txn.open_table(legacy_counts).expect("counts");
            let mut meta = txn.open_table(schema::META).expect("meta");
            for (seq, (id, owner)) in [("a", "dp1"), ("b", "dp2")].into_iter().enumerate() {
                let seq = seq as u64 + 1;
                let stored = StoredEvent {
                    record: event(EID1, id, owner),
                    seq,
                };
                let bytes = serde_json::to_vec(&stored).expect("json");
                events
                    .insert((EID1, seq), bytes.as_slice())
                    .expect("insert");
                index.insert((EID1, id), seq).expect("insert");
            }
            counts.insert(EID1, 2).expect("insert");
            meta.insert("next_seq", 3).expect("insert");
        }
        txn.commit().expect("commit");
    }
    let s = RedbStore::open(&path, WriterConfig::default()).expect("open");
    assert_eq!(s.check_integrity().await.expect("consistent"), 2);
    // Ownership carried over: dp2 may now use "a" too, dp1 may not reuse it, and dp2 cannot
    // delete dp1's event.
    assert!(matches!(
        s.register_event(event(EID1, "a", "dp2")).await.expect("ok"),
        RegisterOutcome::Registered { .. }
    ));
    assert_eq!(
        s.register_event(event(EID1, "a", "dp1")).await.expect("ok"),
        RegisterOutcome::Duplicate
    );
    assert_eq!(delete(&s, "b", "dp1").await, DeleteOutcome::NotFound);
    assert_eq!(ids(&s, EID1).await, ["a", "b", "a"]);
    assert_eq!(s.check_integrity().await.expect("consistent"), 3);
    s.shutdown().await;
    drop(s);
    let db = ::redb::Database::open(&path).expect("reopen");
    let txn = db.begin_read().expect("txn");
    let legacy: TableDefinition<(&str, &str), u64> = TableDefinition::new("event_ids_v1");
    assert!(txn.open_table(legacy).is_err(), "the old index is gone");
    let legacy: TableDefinition<&str, u64> = TableDefinition::new("event_counts_v1");
    assert!(txn.open_table(legacy).is_err(), "the old counters are gone");
}

#[tokio::test]
async fn keeps_the_store_contract() {
    use crate::store::contract;
    let dir = tempfile::tempdir().expect("tempdir");
    let s = RedbStore::open(&dir.path().join("a.redb"), WriterConfig::default()).expect("open");
    contract::fifo_duplicates_and_ownership(&s).await;
    let bounded = WriterConfig {
        max_events_per_eid: 3,
        max_events_per_eid_all_owners: 5,
        ..WriterConfig::default()
    };
    let s = RedbStore::open(&dir.path().join("b.redb"), bounded).expect("open");
    contract::bounds_per_owner_and_backstop(&s).await;
    contract::used_transactions(&s).await;
    let s = RedbStore::open(&dir.path().join("d.redb"), WriterConfig::default()).expect("open");
    contract::cascade_state(&s).await;
    contract::ec_ids(&s).await;
    contract::push_queue(&s).await;
    let racing = WriterConfig {
        max_events_per_eid: 10,
        ..WriterConfig::default()
    };
    let s: std::sync::Arc<dyn crate::store::Backend> =
        std::sync::Arc::new(RedbStore::open(&dir.path().join("c.redb"), racing).expect("open"));
    contract::racing_writers(&[s.clone(), s], 10).await;
}

#[tokio::test]
async fn used_transactions_are_saved_at_each_sweep_and_outlive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.redb");
    let now = pki_tool::time::now();
    let tid = |b: u8| TransactionId::new(&[b; 16]).expect("16 bytes");
    let saved = |s: &RedbStore| {
        queries::used_transactions(&s.db.get(), now)
            .expect("read")
            .into_iter()
            .map(|(t, _)| t)
            .collect::<Vec<_>>()
    };
    {
        let s = RedbStore::open(&path, WriterConfig::default()).expect("open");
        assert!(s.use_transaction(&tid(1), now + 300).await.expect("ok"));
        assert!(saved(&s).is_empty(), "answered from memory, not yet saved");
        s.sweep_transactions(now).await.expect("swept");
        assert_eq!(saved(&s), [tid(1)], "saved by the sweep");
        assert!(s.use_transaction(&tid(2), now + 300).await.expect("ok"));
        s.shutdown().await;
    }
    let s = RedbStore::open(&path, WriterConfig::default()).expect("reopen");
    for t in [tid(1), tid(2)] {
        assert!(
            !s.use_transaction(&t, now + 300).await.expect("ok"),
            "still used after a restart"
        );
    }
    assert!(s.use_transaction(&tid(3), now + 300).await.expect("ok"));
    s.shutdown().await;
}
