//! What `contrib/` ships, checked against the real tools: the example configuration is one the
//! server loads and names every setting `smds config show` prints, `config show` prints a file
//! that gives the same configuration back, and the systemd unit passes `systemd-analyze verify`.

use smds::config::{Config, FileConfig, Flags};
use std::path::{Path, PathBuf};
use std::process::Command;

fn contrib(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../contrib")
        .join(name)
}

/// The top-level and `[limits]` keys of a TOML text, commented-out ones included.
fn keys(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.trim_start().trim_start_matches('#').trim_start())
        .filter_map(|l| l.split_once(" = ").map(|(k, _)| k.trim().to_string()))
        .filter(|k| k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        .collect()
}

#[test]
fn the_example_configuration_loads_and_names_every_setting() {
    let path = contrib("smds.example.toml");
    let file = FileConfig::load(&path).expect("the example loads");
    // Relative paths are the file's directory's.
    assert_eq!(file.pki, Some(contrib("pki")));
    let text = std::fs::read_to_string(&path).expect("read");
    let documented = keys(&text);
    // Everything config show prints, with every optional part set.
    let mut cfg = Config::resolve(Some(file), Flags::default());
    cfg.store = Some(smds::store::PgOptions {
        ca_file: Some("ca.pem".into()),
        ..smds::store::PgOptions::new("postgres://smds@db:5432/smds".parse().expect("url"))
    });
    cfg.admin_token_file = Some("t".into());
    cfg.hostname = Some("smds.lab.example".into());
    cfg.smds_instance = Some("2".into());
    cfg.cascade = Some(smds::config::CascadeConfig {
        root: "root.example".into(),
        connect_to: Some("10.0.0.5:443".into()),
        address: Some("alt.example".into()),
        event_ids: smds::config::EventIdMode::Fresh,
        timeout: std::time::Duration::from_secs(10),
    });
    cfg.rsp3_pki = Some("pki-v3".into());
    cfg.push_services = vec![smds::config::PushServiceConfig {
        oid: "2.999.10.1".into(),
        gateway: "https://push.lab.example/notify".into(),
        ca_file: Some("push-ca.pem".into()),
    }];
    for key in keys(&cfg.to_toml()) {
        assert!(
            documented.contains(&key),
            "contrib/smds.example.toml does not mention {key}"
        );
    }
}

#[test]
fn config_show_prints_a_file_that_gives_the_same_configuration() {
    let out = Command::new(env!("CARGO_BIN_EXE_smds"))
        .args(["config", "show", "--config"])
        .arg(contrib("smds.example.toml"))
        .args(["--listen", "0.0.0.0:9443"])
        .output()
        .expect("smds runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = String::from_utf8(out.stdout).expect("utf-8");
    assert!(
        shown.contains("listen = \"0.0.0.0:9443\""),
        "flags win:\n{shown}"
    );
    let again: FileConfig = toml::from_str(&shown).expect("config show prints a valid file");
    let cfg = Config::resolve(Some(again), Flags::default());
    assert_eq!(cfg.to_toml(), shown);
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let unit = std::fs::read_to_string(contrib("smds.service")).expect("unit");
    assert!(
        unit.contains("ExecStart=/usr/local/bin/smds serve"),
        "{unit}"
    );
    assert!(unit.contains("ExecReload="), "reload by SIGHUP");
    // verify checks that ExecStart exists: point it at this build's binary.
    let dir = std::env::temp_dir().join(format!("smds-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let copy = dir.join("smds.service");
    std::fs::write(
        &copy,
        unit.replace("/usr/local/bin/smds", env!("CARGO_BIN_EXE_smds")),
    )
    .expect("write");
    let out = Command::new("systemd-analyze")
        // The man pages are installed with the binary (`smds man`), not here.
        .args(["verify", "--man=no"])
        .arg(&copy)
        .output()
        .expect("systemd-analyze runs (package systemd; .ci/run installs it)");
    let _ = std::fs::remove_dir_all(&dir);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(said.trim().is_empty(), "verify warned:\n{said}");
}
