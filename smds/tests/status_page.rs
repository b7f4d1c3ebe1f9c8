//! The admin listener's status page in a real browser: Debian's Chromium, headless, renders it
//! (the DOM it builds is checked, and a screenshot is kept as a test artifact in
//! `target/tmp/status-page.png`), after real ES11 and ES12 traffic from two SM-DP+s.

mod support;

use pki_tool::Curve;
use smds::config::Limits;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::*;

/// Chromium, headless, as this machine runs it: no sandbox (root), no GPU, nothing fetched in
/// the background, a profile of its own.
fn chromium(profile: &Path, args: &[&str]) -> std::process::Output {
    let bin = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("Chromium is needed for this test: apt-get install chromium (.ci/run does)");
    Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            // Containers give /dev/shm 64 MB, too little for Chromium's renderer.
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("chromium runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_renders_in_a_headless_browser() {
    let lab = Lab::new("status-page");
    let server = start(&lab.pki, &lab.config(Limits::default()), None).await;
    let admin = server.admin_addr.expect("admin");
    let mut dp1 = connect(&server, smdp(&lab.pki, "", &lab.pki)).await;
    let mut dp2 = connect(&server, smdp(&lab.pki, "2", &lab.pki)).await;
    assert!(register(&mut dp1, EID, "ev-1").await.is_success());
    assert!(register(&mut dp1, EID, "<b>markup</b>").await.is_success());
    assert!(register(&mut dp2, EID2, "ev-2").await.is_success());
    assert!(
        !register(&mut dp1, EID, "ev-1").await.is_success(),
        "a failed ES12 call"
    );
    for _ in 0..3 {
        assert_eq!(
            discovery_outcome(&server, &lab.pki, Curve::NistP256).await,
            Ok(2)
        );
    }
    let url = format!("http://{admin}/status");
    let profile = lab.tmp.0.join("chromium-profile");

    let out = chromium(&profile, &["--dump-dom", &url]);
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && dom.contains("</html>"),
        "chromium: {}\n{dom}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "SM-DS localhost",
        EID,
        EID2,
        "ev-1",
        "rid:2.999.10",
        "rid:2.999.12",
        "CERT.DS.TLS",
        "CERT.DSauth",
        "ES11 (discovery)</b>: 6 ok",
        "ES12 (event registration)</b>: 3 ok",
        "1 failed",
        "3 stored",
    ] {
        assert!(
            dom.contains(expected),
            "{expected:?} not on the page:\n{dom}"
        );
    }
    // A client's EventID is text on the page, never markup.
    assert!(dom.contains("&lt;b&gt;markup&lt;/b&gt;"), "{dom}");
    assert!(!dom.contains("<b>markup</b>"), "{dom}");
    assert_eq!(dom.matches("<svg").count(), 2, "two charts");

    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    let out = chromium(
        &profile,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,1100",
            &url,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    assert!(png.len() > 10_000, "a rendered page, not a blank one");
    server.stop().await;
}
