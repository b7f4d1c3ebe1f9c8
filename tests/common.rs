//! Helpers shared by every test suite of the workspace (a dev-dependency of `pki-tool` and
//! `smds`): where the SGP.26 reference files are, and scratch directories.

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

/// A scratch directory removed on drop; `.0` is its path.
pub struct TempDir(
    pub PathBuf,
    #[expect(dead_code, reason = "held for its Drop, which removes the directory")]
    tempfile::TempDir,
);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("smds-test-{tag}-"))
            .tempdir()
            .expect("create temp dir");
        TempDir(dir.path().to_path_buf(), dir)
    }
}

/// Sends `signal` (`TERM`, `HUP`, ...) to process `pid` with the shell's built-in `kill`: the
/// `kill` binary (procps) is not on a minimal Debian machine, `sh` always is. Whether it was sent.
pub fn send_signal(pid: u32, signal: &str) -> bool {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("kill -s {signal} {pid}"))
        .status()
        .is_ok_and(|s| s.success())
}
