//! Disk trouble during ES12 registrations, on a real small tmpfs: when the disk fills, the
//! affected requests get a Failed status with a clear code, ES11 discovery keeps working, nothing
//! acknowledged is lost, and registrations work again once space returns. A read-only data
//! directory at start is refused with the file named. Needs root for mount
//! (the project's machines and CI run as root).

mod support;

use pki_tool::Curve;
use smds::config::Limits;
use smds::lab::lpa::{Discovery, DiscoveryOptions};
use smds::lab::soft_euicc::SoftEuicc;
use smds::sgp22::Es11PathFamily;
use smds::store::{EventAdmin, EventStore};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::*;

struct Mount(std::path::PathBuf);

impl Mount {
    fn tmpfs(dir: &Path, size: &str) -> Mount {
        std::fs::create_dir_all(dir).expect("mkdir");
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("mount runs");
        assert!(
            st.success(),
            "mounting a tmpfs at {} failed (this test needs root)",
            dir.display()
        );
        Mount(dir.to_path_buf())
    }

    fn resize(&self, size: &str) {
        self.remount(&format!("size={size}"));
    }

    fn remount(&self, options: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.0)
            .status()
            .expect("mount runs");
        assert!(st.success(), "remount {options}");
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_refuses_cleanly_keeps_reads_and_recovers() {
    let tmp = TempDir::new("diskfull");
    let pki = tmp.0.join("pki");
    mint(&pki, "default", None);
    let data = tmp.0.join("data");
    let mount = Mount::tmpfs(&data, "600k");
    // All events go to one EID here; the disk, not the per-EID bound, must be what stops them.
    let cfg = loopback_config(
        &pki,
        &data,
        Limits {
            max_events_per_eid: 1_000_000,
            max_events_per_eid_all_owners: 1_000_000,
            ..Limits::default()
        },
    );
    let server = start(&pki, &cfg, None).await;
    let mut dp = connect(&server, smdp(&pki, "", &pki)).await;
    let mut acked = BTreeSet::new();
    let mut failures = 0;
    let long = "x".repeat(200);
    for i in 0..20_000 {
        let id = format!("{long}-{i}");
        let r = dp
            .call(
                smds::sgp22::paths::path::ES12_REGISTER_EVENT,
                &smds::lab::smdp::register_event_body(EID, &id, "smdp.example.com", None),
            )
            .await
            .expect("an answer even when the disk is full");
        if r.is_success() {
            acked.insert(id);
        } else {
            assert_eq!(r.http_status, 200);
            let code = r.code().unwrap_or_default();
            assert!(code == "1.2/4.8" || code == "1.2/4.2", "{:?}", r.body);
            assert!(
                r.message
                    .as_deref()
                    .unwrap_or("")
                    .contains("could not be stored"),
                "{:?}",
                r.message
            );
            failures += 1;
            if failures >= 5 {
                break;
            }
        }
    }
    assert!(
        failures >= 5,
        "the 600 KiB disk never filled ({} events)",
        acked.len()
    );
    assert!(!acked.is_empty());

    // ES11 reads keep working on a full disk.
    let euicc = SoftEuicc::load(&pki, Curve::NistP256, None).expect("eUICC");
    let opts = DiscoveryOptions {
        endpoint: endpoint(&server),
        address: "localhost".into(),
        tls: lpa_tls(&pki),
        paths: Es11PathFamily::Es9Plus,
        matching_id: None,
        timeout: Duration::from_secs(10),
        now: pki_tool::time::now(),
    };
    let seen: BTreeSet<String> = match smds::lab::lpa::discover(&euicc, &opts)
        .await
        .expect("discovery")
    {
        Discovery::Events { entries, .. } => entries.into_iter().map(|e| e.event_id).collect(),
        Discovery::PushRegistered { .. } => panic!("a push registration answer"),
        Discovery::Failed { step, result } => panic!("{step}: {:?}", result.body),
    };
    assert!(
        acked.is_subset(&seen),
        "acknowledged events missing while the disk is full"
    );

    // Space returns: registrations work again.
    mount.resize("64m");
    let mut recovered = false;
    for attempt in 0..50 {
        let r = dp
            .call(
                smds::sgp22::paths::path::ES12_REGISTER_EVENT,
                &smds::lab::smdp::register_event_body(
                    EID,
                    &format!("after-{attempt}"),
                    "smdp.example.com",
                    None,
                ),
            )
            .await
            .expect("answer");
        if r.is_success() {
            acked.insert(format!("after-{attempt}"));
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        recovered,
        "registrations did not resume after space returned"
    );

    server.stop().await;

    // A read-only data directory at start: a clear error naming the file, not an empty store.
    mount.remount("ro");
    let err = smds::store::RedbStore::open(
        &data.join("events.redb"),
        smds::store::WriterConfig::default(),
    )
    .err()
    .expect("refused on a read-only directory")
    .to_string();
    assert!(err.contains("events.redb"), "{err}");
    mount.remount("rw");

    // After a restart, everything acknowledged is there and the database is consistent.
    let store = smds::store::RedbStore::open(
        &data.join("events.redb"),
        smds::store::WriterConfig::default(),
    )
    .expect("reopen");
    store.check_integrity().await.expect("consistent");
    let stored: BTreeSet<String> = store
        .events_for(&pki_tool::Eid::parse(EID).expect("eid"))
        .await
        .expect("read")
        .into_iter()
        .map(|e| e.record.event_id.to_string())
        .collect();
    let lost: Vec<_> = acked.difference(&stored).collect();
    assert!(lost.is_empty(), "lost: {lost:?}");
    println!(
        "acknowledged {} events, {failures} refused while full",
        acked.len()
    );
    store.shutdown().await;
    drop(store);
    drop(mount);
}
