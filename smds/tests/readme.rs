//! The README as written: every ```sh block, top to bottom, in one bash session in a scratch
//! directory beside `../shared`, so that the README cannot drift from what the tools do. Blocks
//! whose info string is not exactly `sh` (the test command itself, fuzzing) are not run.
//!
//! What stands in for what: `cargo run [--release] -p PKG -- ARGS` runs this build's PKG binary
//! with ARGS (`serve` in the background, waiting for its "listening" line, as a reader starts it
//! in a terminal of its own); `cargo build [--release] -p PKG` links this build's binary at
//! `target/release/PKG`. Everything else (aliases, `kill`, `curl`, relative paths) is the real
//! thing. The README uses fixed ports (8443/8444, 9443/9444, 10443/10444): a server already on them fails
//! this test with "cannot listen".

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use support::TempDir;

/// The shell blocks to run, with the README line each starts on.
fn runnable_blocks(readme: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    let mut in_other = false;
    for (i, line) in readme.lines().enumerate() {
        if let Some((_, body)) = current.as_mut() {
            if line.trim_start().starts_with("```") {
                blocks.extend(current.take());
            } else {
                body.push_str(line);
                body.push('\n');
            }
        } else if in_other {
            in_other = !line.trim_start().starts_with("```");
        } else if let Some(info) = line.trim_start().strip_prefix("```") {
            if info.trim() == "sh" {
                current = Some((i + 1, String::new()));
            } else {
                in_other = true;
            }
        }
    }
    blocks
}

/// The binaries of this build: smds is this package's; pki-tool is built next to it by `cargo
/// test --workspace` (the README's test command).
fn binaries() -> (PathBuf, PathBuf) {
    let smds = PathBuf::from(env!("CARGO_BIN_EXE_smds"));
    let pki_tool = smds.with_file_name("pki-tool");
    assert!(
        pki_tool.exists(),
        "{} is missing: run the workspace's tests (cargo test --workspace builds it) or \
         cargo build -p pki-tool first",
        pki_tool.display()
    );
    (smds, pki_tool)
}

/// Defines `cargo` for the README's blocks and stops the servers they started at the end.
const PRELUDE: &str = r#"
set -euo pipefail
shopt -s expand_aliases
servers=()
stop_servers() {
  for pid in "${servers[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then echo "README test: server $pid died" >&2; exit 1; fi
    kill -TERM "$pid"; wait "$pid" || { echo "README test: server $pid exited $?" >&2; exit 1; }
  done
}
trap 'status=$?; trap - EXIT; [ $status -eq 0 ] && stop_servers; for p in "${servers[@]}"; do kill -9 "$p" 2>/dev/null || true; done; exit $status' EXIT
trap 'echo "README test: failed: $BASH_COMMAND" >&2' ERR
bin_of() { case "$1" in smds) echo "$SMDS_BIN";; pki-tool) echo "$PKI_TOOL_BIN";; *) echo "README test: unknown package $1" >&2; return 1;; esac; }
cargo() {
  local verb=$1 pkg= ; shift
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    if [ "$1" = "-p" ]; then pkg=$2; shift; fi
    shift
  done
  [ $# -gt 0 ] && shift
  case "$verb" in
    build) mkdir -p target/release; ln -sf "$(bin_of "$pkg")" "target/release/$pkg" ;;
    run)
      if [ "${1:-}" = serve ]; then
        local log; log=$(mktemp -p "$PWD" serve.XXXX.log)
        "$(bin_of "$pkg")" "$@" >"$log" 2>&1 &
        servers+=($!)
        for _ in $(seq 1 600); do
          grep -q "smds listening" "$log" && return 0
          kill -0 "$!" 2>/dev/null || { cat "$log" >&2; return 1; }
          sleep 0.1
        done
        echo "README test: serve did not start" >&2; cat "$log" >&2; return 1
      fi
      "$(bin_of "$pkg")" "$@" ;;
    *) echo "README test: cargo $verb is not stood in for" >&2; return 1 ;;
  esac
}
"#;

#[test]
fn every_shell_block_of_the_readme_runs_as_written() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(repo.join("README.md")).expect("README.md");
    let blocks = runnable_blocks(&readme);
    assert!(blocks.len() >= 5, "found only {} sh blocks", blocks.len());
    let (smds, pki_tool) = binaries();

    // <tmp>/shared -> the real ../shared, and the blocks run in <tmp>/repo.
    let tmp = TempDir::new("readme");
    let sgp26 = support::shared()
        .canonicalize()
        .expect("../shared/sgp26 exists");
    let shared = sgp26.parent().expect("../shared");
    std::os::unix::fs::symlink(shared, tmp.0.join("shared")).expect("link shared");
    let work = tmp.0.join("repo");
    std::fs::create_dir_all(&work).expect("work dir");
    let mut script = String::from(PRELUDE);
    for (line, body) in &blocks {
        script.push_str(&format!("echo '### README.md line {line}' >&2\n{body}\n"));
    }
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(&work)
        .env("SMDS_BIN", &smds)
        .env("PKI_TOOL_BIN", &pki_tool)
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1")
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "a README block failed ({}):\n--- stderr (last 60 lines)\n{}\n--- stdout (last 40 lines)\n{}",
        out.status,
        tail(&stderr, 60),
        tail(&stdout, 40)
    );
    let last = blocks.last().map_or(0, |b| b.0);
    assert!(
        stderr.contains(&format!("### README.md line {last}\n")),
        "the last block did not run:\n{stderr}"
    );
    // What the walk-through promises, seen in its output.
    assert!(
        stdout.contains("registerEvent: Executed-Success"),
        "{stdout}"
    );
    assert!(stdout.contains("\"eventId\":\"ev-1\""), "{stdout}");
    assert!(stdout.contains("smds_events_stored 1"), "{stdout}");
    assert!(stdout.contains("deleteEvent: Executed-Success"), "{stdout}");
    assert!(
        stdout.contains("\"event_id\":\"ev-2\""),
        "events purge prints what it removed: {stdout}"
    );
    // The cascade walk-through: the Root's entry followed to the SM-DP+, the delete delivered.
    assert!(
        stdout.contains("ev-3  testsmdpplus1.example.com  (via testsmds1.example.com:10443 fwd-"),
        "{stdout}"
    );
    assert!(stdout.contains("\"queue_depth\":0"), "{stdout}");
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[test]
fn blocks_are_found_as_fenced() {
    let text = "a\n```sh\necho 1\n```\n```sh not-run-by-readme-test\nbash .ci/run\n```\n```toml\nx = 1\n```\n```sh\necho 2\necho 3\n```\n";
    assert_eq!(
        runnable_blocks(text),
        vec![
            (2, "echo 1\n".to_string()),
            (11, "echo 2\necho 3\n".to_string())
        ]
    );
}
