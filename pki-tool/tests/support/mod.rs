//! What the pki-tool binary tests share: running it, and openssl.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

pub fn pki_tool(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pki-tool"))
        .args(args)
        .output()
        .expect("pki-tool runs")
}

pub fn ok(args: &[&str]) -> String {
    let out = pki_tool(args);
    assert!(
        out.status.success(),
        "pki-tool {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command expected to fail with a usage/input error (exit 2) and returns its stderr.
pub fn fails(args: &[&str]) -> String {
    let out = pki_tool(args);
    assert_eq!(
        out.status.code(),
        Some(2),
        "pki-tool {args:?}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        err.trim().lines().count(),
        1,
        "one-line error expected, got: {err}"
    );
    err
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

pub fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// `pki-tool init` of an SGP.26 v3 `variant` hierarchy, NIST only, into `dir`.
pub fn init_v3_nist(dir: &Path, variant: &str) {
    ok(&[
        "init",
        "--out",
        s(dir),
        "--curve",
        "nist",
        "--profile",
        "sgp26-v3",
        "--variant",
        variant,
    ]);
}
