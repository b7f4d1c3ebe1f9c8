//! What the admin listener tells a supervisor and a scraper about the process itself:
//! `/healthz` (the process answers), `/readyz` (the store answers and every configured
//! certificate is within its validity), and the process figures behind the operational metrics
//! (resident memory and open descriptors, from `/proc/self`). Reads the store through
//! [`crate::store::EventAdmin::count`] only.

use super::AppState;
use std::time::Duration;

/// How long `/readyz` waits for the store.
const STORE_CHECK: Duration = Duration::from_secs(2);

/// Resident memory and open file descriptors of this process, where `/proc` has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessStats {
    pub resident_bytes: u64,
    pub open_fds: u64,
}

impl ProcessStats {
    pub fn read() -> Option<Self> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let rss_kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
        Some(ProcessStats {
            resident_bytes: rss_kib * 1024,
            open_fds,
        })
    }
}

/// The readiness verdict: `Ok` with what was checked, or `Err` with every reason it is not ready.
pub async fn readiness(state: &AppState) -> Result<serde_json::Value, Vec<String>> {
    let mut problems = Vec::new();
    let events = match tokio::time::timeout(STORE_CHECK, state.store.count()).await {
        Ok(Ok(n)) => Some(n),
        Ok(Err(e)) => {
            problems.push(format!("event store: {e}"));
            None
        }
        Err(_) => {
            problems.push(format!("event store: no answer within {STORE_CHECK:?}"));
            None
        }
    };
    let now = state.now();
    let certs = state.certificates();
    for c in certs.iter() {
        let (what, when) = if c.expired(now) {
            ("expired at", c.not_after)
        } else if c.not_before > now {
            ("is not valid before", c.not_before)
        } else {
            continue;
        };
        problems.push(format!(
            "{} {} ({}) {what} {}",
            c.what,
            c.subject,
            c.file.display(),
            pki_tool::time::format(when)
        ));
    }
    if problems.is_empty() {
        Ok(serde_json::json!({
            "ready": true,
            "events": events,
            "certificates": certs.len(),
        }))
    } else {
        Err(problems)
    }
}
