//! The `smds` binary as a lab uses it: `serve`, then `event register|delete` as an SM-DP+ and
//! `events list|count`, against the running server (admin listener) and after it stopped (database).

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use support::*;

fn smds(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smds"))
        .args(args)
        .output()
        .expect("smds runs")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8")
}

#[test]
fn serve_register_list_delete() {
    let tmp = TempDir::new("cli");
    let pki = tmp.0.join("pki");
    mint(&pki, "default", None);
    let data = tmp.0.join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_smds"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--pki",
            s(&pki),
            "--data-dir",
            s(&data),
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("line");
    let words: Vec<&str> = line.split_whitespace().collect();
    let https = words
        .iter()
        .find(|w| w.starts_with("https://"))
        .expect("https address");
    let port = https.rsplit(':').next().expect("port");
    let admin = words
        .iter()
        .find(|w| w.starts_with("http://"))
        .expect("admin address")
        .trim_start_matches("http://");
    let server = format!("https://localhost:{port}");
    let smdp = |verb: &str, event: &str, extra: &[&str]| {
        let mut args = vec![
            "event",
            verb,
            "--server",
            &server,
            "--eid",
            EID,
            "--event-id",
            event,
            "--cert",
            s(&pki.join("DPtls/CERT_S_SM_DP_TLS_NIST.pem")),
            "--key",
            s(&pki.join("DPtls/SK_S_SM_DP_TLS_NIST.pem")),
            "--ca",
            s(&pki.join("CertificateIssuer/CERT_CI_ECDSA_NIST.pem")),
        ]
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>();
        if verb == "register" {
            args.extend([
                "--smdp-address".to_string(),
                "testsmdpplus1.example.com".to_string(),
            ]);
        }
        args.extend(extra.iter().map(|x| x.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        smds(&refs)
    };
    let out = smdp("register", "cli-1", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "registerEvent: Executed-Success"
    );
    let out = smdp("register", "cli-1", &["--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        v["header"]["functionExecutionStatus"]["statusCodeData"]["reasonCode"],
        "3.3"
    );
    assert!(smdp("register", "cli-2", &[]).status.success());

    // While the server holds the database, `events` asks its admin listener.
    let db = ["--data-dir", s(&data), "--admin", admin];
    let out = smds(&[&["events", "count"][..], &db].concat());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "2",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = smds(&[&["events", "list", "--eid", EID][..], &db].concat());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(
        lines
            .iter()
            .map(|e| e["event_id"].as_str().unwrap_or(""))
            .collect::<Vec<_>>(),
        ["cli-1", "cli-2"]
    );

    let out = smdp("delete", "cli-1", &[]);
    assert!(out.status.success());
    let out = smdp("delete", "cli-1", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("8.9.5/3.9"));

    // Graceful stop, then the database is read directly.
    workspace_tests::common::send_signal(child.id(), "TERM");
    assert!(child.wait().expect("exit").success());
    let out = smds(&[&["events", "count"][..], &db].concat());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");

    // Bad input on the client side: one-line errors, exit 2.
    let out = smds(&[
        "event",
        "register",
        "--server",
        "http://x",
        "--eid",
        EID,
        "--event-id",
        "e",
        "--smdp-address",
        "a",
        "--cert",
        "x",
        "--key",
        "y",
        "--ca",
        "z",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("must start with https://"));
    let out = smds(&[&["events", "list", "--eid", "123"][..], &db].concat());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("32 digits"));
}
