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
    // And real certificates (the SGP.26 files), which reach past the parsers into validation and
    // lint against every role's template.
    let sgp26 = workspace_tests::common::sgp26();
    for dir in ["openiotrsp_v3_variantO", "osmo-ttcn3-hacks_v1.5"] {
        for sub in std::fs::read_dir(sgp26.join(dir))
            .expect("SGP.26 folder")
            .flatten()
        {
            for f in std::fs::read_dir(sub.path())
                .expect("role folder")
                .flatten()
            {
                if f.path().extension().is_some_and(|e| e == "der") {
                    let data = std::fs::read(f.path()).expect("read");
                    for (name, run) in smds::fuzzing::TARGETS {
                        if name == "certificate" || name == "chain" {
                            run(&data);
                            replayed += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(replayed >= 35, "{replayed}");
}
