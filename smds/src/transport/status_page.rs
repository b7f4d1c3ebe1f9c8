//! The read-only status page of the admin listener (`GET /status`): one self-contained HTML
//! document (inline CSS and SVG, no script, no external asset; it reloads itself every 10 s)
//! with the traffic of the last minutes, the configured certificates and their expiry, the
//! SM-DP+ identities that hold events, and the events by EID. Reads the store through
//! [`crate::store::EventAdmin`] only; every value that came from a client is HTML-escaped.

use super::AppState;
use super::history::{BUCKET_SECS, BUCKETS, Series};
use crate::store::StoredEvent;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Most events the page lists (the count above it is the store's total).
pub const MAX_EVENTS_SHOWN: usize = 500;

/// Days under which a certificate is shown as expiring.
const EXPIRING_DAYS: i64 = 30;

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}\
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.4em 0 .4em}\
table{border-collapse:collapse}td,th{padding:.2em .7em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}\
th{background:#f4f4f4}.meta{color:#666}.ok{color:#1a7f37}.bad{color:#c62828;font-weight:bold}\
.warn{color:#b26a00;font-weight:bold}code{font-size:.95em}.charts{display:flex;gap:2em;flex-wrap:wrap}\
figure{margin:0}figcaption{margin-bottom:.3em}";

/// A bar chart of one interface: successes (green) under failures (red), one bar per bucket.
fn chart(title: &str, buckets: &[[u64; 4]], ok: Series, failed: Series) -> String {
    const W: usize = 3;
    const H: u64 = 60;
    let (ok, failed) = (ok as usize, failed as usize);
    let max = buckets
        .iter()
        .map(|b| b[ok] + b[failed])
        .max()
        .unwrap_or(0)
        .max(1);
    let (total_ok, total_failed): (u64, u64) = buckets
        .iter()
        .fold((0, 0), |(a, b), c| (a + c[ok], b + c[failed]));
    let width = W * BUCKETS;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{H}\" role=\"img\" \
         aria-label=\"{}\"><rect width=\"{width}\" height=\"{H}\" fill=\"#fafafa\" stroke=\"#ddd\"/>",
        esc(title)
    );
    for (i, b) in buckets.iter().enumerate() {
        let x = i * W;
        let h_ok = b[ok] * H / max;
        let h_failed = b[failed] * H / max;
        if h_ok > 0 {
            let _ = write!(
                svg,
                "<rect x=\"{x}\" y=\"{}\" width=\"{}\" height=\"{h_ok}\" fill=\"#2e9e4f\"/>",
                H - h_ok,
                W - 1
            );
        }
        if h_failed > 0 {
            let _ = write!(
                svg,
                "<rect x=\"{x}\" y=\"{}\" width=\"{}\" height=\"{h_failed}\" fill=\"#d32f2f\"/>",
                H - h_ok - h_failed,
                W - 1
            );
        }
    }
    svg.push_str("</svg>");
    let last = buckets.last().copied().unwrap_or_default();
    format!(
        "<figure><figcaption><b>{}</b>: {total_ok} ok, <span class=\"{}\">{total_failed} failed</span> \
         in {} min; last {BUCKET_SECS} s: {:.1}/s</figcaption>{svg}</figure>",
        esc(title),
        if total_failed > 0 { "bad" } else { "meta" },
        BUCKETS as i64 * BUCKET_SECS / 60,
        (last[ok] + last[failed]) as f64 / BUCKET_SECS as f64
    )
}

fn certificates(out: &mut String, state: &AppState, now: i64) {
    out.push_str(
        "<h2>Certificates</h2><table><tr><th>role</th><th>subject</th><th>file</th>\
         <th>notAfter</th><th>days left</th></tr>",
    );
    for c in state.certificates().iter() {
        let days = c.days_left(now);
        let class = if c.expired(now) {
            "bad"
        } else if days < EXPIRING_DAYS {
            "warn"
        } else {
            "ok"
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td class=\"{class}\">{}</td></tr>",
            esc(c.what),
            esc(&c.subject),
            esc(&c.file.display().to_string()),
            pki_tool::time::format(c.not_after),
            if c.expired(now) {
                "expired".to_string()
            } else {
                days.to_string()
            }
        );
    }
    out.push_str("</table>");
}

fn owners(out: &mut String, events: &[StoredEvent]) {
    let mut by_owner: BTreeMap<&str, (usize, &[String])> = BTreeMap::new();
    for e in events {
        let entry = by_owner
            .entry(e.record.owner.as_str())
            .or_insert((0, &e.record.owner_names));
        entry.0 += 1;
    }
    out.push_str(
        "<h2>SM-DP+ identities</h2><table><tr><th>owner</th><th>certificate names</th>\
         <th>events</th></tr>",
    );
    if by_owner.is_empty() {
        out.push_str("<tr><td colspan=\"3\" class=\"meta\">none holds events</td></tr>");
    }
    for (owner, (n, names)) in by_owner {
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{n}</td></tr>",
            esc(owner),
            esc(&names.join(", "))
        );
    }
    out.push_str("</table>");
}

fn events_by_eid(out: &mut String, events: &[StoredEvent], total: Option<u64>) {
    let _ = write!(
        out,
        "<h2>Events by EID</h2><p class=\"meta\">{} stored{}</p>",
        total.map_or("?".to_string(), |n| n.to_string()),
        if total.is_some_and(|n| n > events.len() as u64) {
            format!("; the first {} are listed", events.len())
        } else {
            String::new()
        }
    );
    out.push_str(
        "<table><tr><th>EID</th><th>EventID</th><th>SM-DP+ address</th><th>owner</th>\
         <th>registered</th></tr>",
    );
    let mut last_eid = None;
    for e in events {
        let r = &e.record;
        let eid = if last_eid == Some(r.eid) {
            String::new()
        } else {
            format!("<code>{}</code>", r.eid)
        };
        last_eid = Some(r.eid);
        let _ = write!(
            out,
            "<tr><td>{eid}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            esc(r.event_id.as_str()),
            esc(&r.rsp_server_address.to_string()),
            esc(r.owner.as_str()),
            pki_tool::time::format(r.registered_at)
        );
    }
    out.push_str("</table>");
}

/// The page, as of now.
pub async fn render(state: &AppState) -> String {
    let now = pki_tool::time::now();
    let total = state.store.count().await.ok();
    let (events, store_error) = match state.store.list(None, MAX_EVENTS_SHOWN).await {
        Ok(e) => (e, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let history = state.metrics.history.snapshot(now);
    let es11 = state.es11();
    let mut out = String::with_capacity(16 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"10\"><title>SM-DS {host}</title>\
         <style>{STYLE}</style></head><body><h1>SM-DS {host}</h1>\
         <p class=\"meta\">smds {version}, up {up} s, as of {at}</p>",
        host = esc(&es11.hostname),
        version = env!("CARGO_PKG_VERSION"),
        up = state.started.elapsed().as_secs(),
        at = pki_tool::time::format(now),
    );
    if let Some(e) = store_error {
        let _ = write!(
            out,
            "<p class=\"bad\">The event store did not answer: {}</p>",
            esc(&e)
        );
    }
    out.push_str("<h2>Traffic</h2><div class=\"charts\">");
    out.push_str(&chart(
        "ES11 (discovery)",
        &history,
        Series::Es11Success,
        Series::Es11Failure,
    ));
    out.push_str(&chart(
        "ES12 (event registration)",
        &history,
        Series::Es12Success,
        Series::Es12Failure,
    ));
    out.push_str("</div>");
    certificates(&mut out, state, now);
    owners(&mut out, &events);
    events_by_eid(&mut out, &events, total);
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_values_are_escaped() {
        assert_eq!(
            esc("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
    }

    #[test]
    fn charts_scale_to_the_busiest_bucket() {
        let mut buckets = vec![[0u64; 4]; BUCKETS];
        buckets[BUCKETS - 1] = [10, 0, 0, 0];
        buckets[BUCKETS - 2] = [5, 5, 0, 0];
        let svg = chart("ES11", &buckets, Series::Es11Success, Series::Es11Failure);
        assert!(svg.contains("15 ok"), "{svg}");
        assert!(svg.contains("5 failed"), "{svg}");
        assert!(svg.contains("height=\"60\" fill=\"#2e9e4f\""), "{svg}");
        assert!(svg.contains("height=\"30\" fill=\"#d32f2f\""), "{svg}");
    }
}
