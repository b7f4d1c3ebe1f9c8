//! Helpers shared by the workspace tests: where the SGP.26 reference files are.

use std::path::PathBuf;

/// `../shared/sgp26` next to the repository root (never copied into the repo).
pub fn sgp26() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = root.join("../shared/sgp26");
    assert!(
        dir.is_dir(),
        "the SGP.26 reference files are expected at {} (the shared/ folder next to the repository)",
        dir.display()
    );
    dir
}

/// The complete v1.5 set with CI, EUM and eUICC keys.
pub fn osmo() -> PathBuf {
    sgp26().join("osmo-ttcn3-hacks_v1.5")
}

pub fn read(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let mut rnd = [0u8; 8];
        getrandom_fill(&mut rnd);
        let p = std::env::temp_dir().join(format!(
            "pki-tool-test-{tag}-{}-{}",
            std::process::id(),
            rnd.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn getrandom_fill(buf: &mut [u8]) {
    use std::hash::{BuildHasher, Hasher};
    for chunk in buf.chunks_mut(8) {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0),
        );
        let v = h.finish().to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}
