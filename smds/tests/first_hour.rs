//! What a lab engineer meets in the first hour with the `smds` binary: a server whose certificate
//! names another host reached with `--connect-to`, start-up refusals that say what to do (port in
//! use before anything is minted, a data directory held by another server, no CERT.DSauth), and
//! client errors in one readable line.

mod support;

use pki_tool::Curve;
use pki_tool::hierarchy::{self, InitOptions};
use std::path::Path;
use std::process::{Command, Output};
use support::*;
use workspace_tests::common::send_signal;

fn smds<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smds"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("smds runs")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A hierarchy whose CERT.DS.TLS names `host`.
fn mint_for(dir: &Path, host: &str) {
    hierarchy::init(&InitOptions::lab(dir, &[Curve::NistP256], host).expect("options"))
        .expect("pki-tool init");
}

/// `smds serve` on `pki` and `data`, expected to stop at start.
fn serve_refused(pki: &Path, data: &Path) -> Output {
    let args = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--no-admin",
        "--pki",
        s(pki),
        "--data-dir",
        s(data),
    ];
    smds(&args)
}

/// `smds serve ARGS` in `cwd`, once it says it listens (stderr kept for the caller).
fn serve(args: &[&str], cwd: &Path) -> std::process::Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_smds"))
        .arg("serve")
        .args(args)
        .current_dir(cwd)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("serve");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("line");
    assert!(line.contains("listening"), "{line}");
    child
}

/// `event register` as the SM-DP+ of `pki`, trusting the CI of `trust` for the server.
fn register_args(server: &str, pki: &Path, trust: &Path) -> Vec<String> {
    let file = |dir: &Path, rel: &str| dir.join(rel).display().to_string();
    [
        "event",
        "register",
        "--server",
        server,
        "--eid",
        EID,
        "--event-id",
        "ev-1",
        "--smdp-address",
        "testsmdpplus1.example.com",
    ]
    .map(String::from)
    .into_iter()
    .chain([
        "--cert".into(),
        file(pki, "DPtls/CERT_S_SM_DP_TLS_NIST.pem"),
        "--key".into(),
        file(pki, "DPtls/SK_S_SM_DP_TLS_NIST.pem"),
        "--ca".into(),
        file(trust, "CertificateIssuer/CERT_CI_ECDSA_NIST.pem"),
    ])
    .collect()
}

#[test]
fn connect_to_reaches_a_server_under_its_certificate_name() {
    let tmp = TempDir::new("connect-to");
    let pki = tmp.0.join("pki");
    mint_for(&pki, "smds.lab.example");
    let (mut child, port) = spawn_serve(&pki, &tmp.0.join("data"), None);
    let here = format!("127.0.0.1:{port}");

    let mut args = register_args("https://smds.lab.example", &pki, &pki);
    args.extend(["--connect-to".into(), here.clone()]);
    let out = smds(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = smds(&[
        "discover",
        "--server",
        "https://smds.lab.example",
        "--connect-to",
        &here,
        "--certdir",
        s(&pki),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["eventEntries"][0]["eventId"], "ev-1");

    // The address itself is not the certificate's name: refused, and the message says what to do.
    let out = smds(&[
        "discover",
        "--server",
        &format!("https://{here}"),
        "--certdir",
        s(&pki),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("not valid for the host name") && err.contains("--connect-to"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_refused_client_certificate_is_one_line_naming_the_alert() {
    let tmp = TempDir::new("refused-client");
    let pki = tmp.0.join("pki");
    let other = tmp.0.join("other");
    mint(&pki, "default", None);
    mint(&other, "default", None);
    let (mut child, port) = spawn_serve(&pki, &tmp.0.join("data"), None);
    let server = format!("https://localhost:{port}");
    // Another hierarchy's CERT.DP.TLS: the server does not trust its CI.
    let out = smds(&register_args(&server, &other, &pki));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("the server refused our certificate (TLS alert "),
        "{err}"
    );
    assert!(
        !err.contains("Error(") && !err.contains("channel closed"),
        "{err}"
    );
    // And the other way: the server's certificate does not chain to the CI we were given.
    let out = smds(&register_args(&server, &pki, &other));
    let err = stderr(&out);
    assert!(
        err.contains("the server's certificate was refused: "),
        "{err}"
    );
    assert!(!err.contains("OtherError"), "{err}");
    // An eUICC certificate offered as a TLS client certificate.
    let mut args = register_args(&server, &pki, &pki);
    args[11] = pki
        .join("eUICC/CERT_EUICC_ECDSA_NIST.der")
        .display()
        .to_string();
    args[13] = pki
        .join("eUICC/SK_EUICC_ECDSA_NIST.pem")
        .display()
        .to_string();
    let err = stderr(&smds(&args));
    assert!(err.contains("not a TLS client certificate"), "{err}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_port_in_use_fails_the_start_before_anything_is_minted() {
    let tmp = TempDir::new("port-in-use");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let data = tmp.0.join("data");
    let out = smds(&["serve", "--listen", &addr, "--data-dir", s(&data)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!("cannot listen on {addr}")),
        "{}",
        stderr(&out)
    );
    assert!(!data.exists(), "nothing minted, no database created");
}

#[test]
fn a_second_server_on_a_held_data_directory_names_the_first() {
    let tmp = TempDir::new("held");
    let pki = tmp.0.join("pki");
    mint(&pki, "default", None);
    let data = tmp.0.join("data");
    let (mut first, _) = spawn_serve(&pki, &data, None);
    assert_eq!(
        std::fs::read_to_string(data.join("smds.pid"))
            .expect("pid file")
            .trim(),
        first.id().to_string()
    );
    let out = serve_refused(&pki, &data);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("another smds is running on this data directory")
            && err.contains(&format!("pid {}", first.id())),
        "{err}"
    );
    // A clean stop removes the pid file.
    send_signal(first.id(), "TERM");
    let _ = first.wait();
    assert!(!data.join("smds.pid").exists());
}

#[test]
fn a_pki_without_dsauth_refuses_to_start_and_says_what_to_add() {
    let tmp = TempDir::new("no-dsauth");
    let pki = tmp.0.join("pki");
    mint(&pki, "default", None);
    std::fs::remove_dir_all(pki.join("DSauth")).expect("remove DSauth");
    let out = serve_refused(&pki, &tmp.0.join("data"));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("no CERT.DSauth") && err.contains("pki-tool issue dsauth"),
        "{err}"
    );
}

#[test]
fn a_config_file_takes_relative_paths_from_its_own_directory() {
    let tmp = TempDir::new("config-relative");
    let etc = tmp.0.join("etc");
    mint(&etc.join("pki"), "default", None);
    std::fs::write(
        etc.join("smds.toml"),
        "pki = \"pki\"\ndata_dir = \"data\"\nlisten = \"127.0.0.1:0\"\n",
    )
    .expect("config");
    // Run from elsewhere: the paths are the file's, not the working directory's.
    let toml = etc.join("smds.toml");
    let child = serve(&["--no-admin", "--config", s(&toml)], &tmp.0);
    assert!(etc.join("data/events.redb").exists());
    assert!(!tmp.0.join("data").exists());
    send_signal(child.id(), "TERM");
    let _ = child.wait_with_output();
}

#[test]
fn completions_and_man_pages_come_from_the_command_definitions() {
    for shell in ["bash", "zsh", "fish"] {
        let out = smds(&["completions", shell]);
        assert!(out.status.success(), "{}", stderr(&out));
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains("connect-to"), "{shell}: {script}");
    }
    let tmp = TempDir::new("man");
    let out = smds(&["man", "--out", s(&tmp.0)]);
    assert!(out.status.success(), "{}", stderr(&out));
    for page in [
        "smds.1",
        "smds-serve.1",
        "smds-event-register.1",
        "smds-config-show.1",
    ] {
        let text = std::fs::read_to_string(tmp.0.join(page)).expect(page);
        assert!(text.starts_with(".ie") || text.contains(".TH"), "{page}");
    }
    let serve = std::fs::read_to_string(tmp.0.join("smds-serve.1")).expect("serve page");
    assert!(serve.contains("admin\\-listen"), "{serve}");
}

#[test]
fn events_purge_removes_events_from_a_stopped_servers_database() {
    let tmp = TempDir::new("purge");
    let pki = tmp.0.join("pki");
    mint(&pki, "default", None);
    let data = tmp.0.join("data");
    let (child, port) = spawn_serve(&pki, &data, None);
    let server = format!("https://localhost:{port}");
    for id in ["ev-1", "ev-2"] {
        let mut args = register_args(&server, &pki, &pki);
        args[7] = id.to_string();
        let out = smds(&args);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    send_signal(child.id(), "TERM");
    let _ = child.wait_with_output();
    let db = ["--data-dir", s(&data)];
    let out = smds(&[&["events", "purge"][..], &db].concat());
    assert_eq!(out.status.code(), Some(2), "a condition is required");
    let out = smds(
        &[
            &["events", "purge", "--eid", EID, "--event-id", "ev-1"][..],
            &db,
        ]
        .concat(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let removed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(removed["event_id"], "ev-1");
    assert!(
        stderr(&out).contains("1 event(s) removed"),
        "{}",
        stderr(&out)
    );
    let out = smds(&[&["events", "count"][..], &db].concat());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
}

#[test]
fn a_certificate_expiring_within_30_days_is_warned_about_at_start() {
    let tmp = TempDir::new("expiring");
    // The default templates with a 10-day CERT.DS.TLS.
    let templates = tmp.0.join("templates");
    std::fs::create_dir_all(&templates).expect("dir");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../certs-templates/default");
    let dstls = std::fs::read_to_string(repo.join("dstls.toml")).expect("template");
    assert!(dstls.contains("days = 398"));
    std::fs::write(
        templates.join("dstls.toml"),
        dstls.replace("days = 398", "days = 10"),
    )
    .expect("write");
    let pki = tmp.0.join("pki");
    hierarchy::init(&InitOptions {
        templates: Some(templates),
        ..InitOptions::lab(&pki, &[Curve::NistP256], "localhost").expect("options")
    })
    .expect("init");
    let data = tmp.0.join("data");
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--no-admin",
        "--pki",
        s(&pki),
        "--data-dir",
        s(&data),
    ];
    let child = serve(&args, &tmp.0);
    send_signal(child.id(), "TERM");
    let out = child.wait_with_output().expect("ends");
    let err = String::from_utf8_lossy(&out.stderr);
    let warning = err
        .lines()
        .find(|l| l.contains("certificate expires soon"))
        .unwrap_or_else(|| panic!("no warning:\n{err}"));
    assert!(
        warning.contains("CERT.DS.TLS")
            && (warning.contains("days_left=9") || warning.contains("days_left=10")),
        "{warning}"
    );
    assert!(warning.contains("CERT_S_SM_DS_TLS_NIST.der"), "{warning}");
    assert_eq!(
        err.matches("certificate expires soon").count(),
        1,
        "only DS TLS:\n{err}"
    );
}
