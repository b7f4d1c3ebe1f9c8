//! Replays the kept fuzz corpus (inputs that once crashed, hung or were otherwise interesting,
//! under `smds/fuzz/regressions/<target>/`) through the same entry points the fuzz targets use,
//! so CI checks every fixed finding on stable Rust without a fuzzing run.

use std::path::PathBuf;

#[test]
fn kept_corpus_replays_cleanly() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut replayed = 0;
    for (name, run) in smds::fuzzing::TARGETS {
        let dir = root.join(name);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let data = std::fs::read(e.path()).expect("read");
            run(&data);
            replayed += 1;
        }
    }
    // Also a few inputs every decoder must survive.
    for (_, run) in smds::fuzzing::TARGETS {
        for data in [
            &b""[..],
            b"{}",
            b"\\x30\\x80",
            &[0xBF, 0x38, 0x84, 0xFF, 0xFF, 0xFF, 0xFF],
            b"-----BEGIN EC PRIVATE KEY-----\\n",
        ] {
            run(data);
            replayed += 1;
        }
    }
    assert!(replayed >= 35, "{replayed}");
}
