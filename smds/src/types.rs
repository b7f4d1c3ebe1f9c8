//! Validated request values: parsed at the edge, carried as plain data inside.

use std::fmt;

/// An `rspServerAddress`: a bare FQDN with an optional `:port`, never a scheme or a path, since
/// LPAs build `https://<rspServerAddress>` from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RspServerAddress(String);

impl RspServerAddress {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("rspServerAddress is empty".into());
        }
        if s.len() > 260 {
            return Err("rspServerAddress is longer than 260 characters".into());
        }
        if s.contains("://") {
            return Err(format!("rspServerAddress {s:?} must not contain a scheme"));
        }
        if let Some(c) = s
            .chars()
            .find(|c| matches!(c, '/' | '?' | '#' | '@' | ' ') || c.is_control())
        {
            return Err(format!(
                "rspServerAddress {s:?} must be a host name and optional port, found {c:?}"
            ));
        }
        let (host, port) = match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        };
        if let Some(p) = port
            && (p.is_empty()
                || !p.bytes().all(|b| b.is_ascii_digit())
                || p.parse::<u16>().map_or(true, |n| n == 0))
        {
            return Err(format!("rspServerAddress {s:?} has an invalid port"));
        }
        let host = host.strip_suffix('.').unwrap_or(host);
        if host.is_empty() || host.len() > 253 {
            return Err(format!(
                "rspServerAddress {s:?} has an invalid host name length"
            ));
        }
        for label in host.split('.') {
            let ok = !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-');
            if !ok {
                return Err(format!(
                    "rspServerAddress {s:?} is not a valid host name (label {label:?})"
                ));
            }
        }
        Ok(RspServerAddress(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RspServerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An EventID: opaque to the SM-DS, stored verbatim; non-empty printable UTF-8 of bounded length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventId(String);

/// Longest EventID accepted, in bytes.
pub const MAX_EVENT_ID_BYTES: usize = 256;

impl EventId {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("eventId is empty".into());
        }
        if s.len() > MAX_EVENT_ID_BYTES {
            return Err(format!(
                "eventId is {} bytes, more than {MAX_EVENT_ID_BYTES}",
                s.len()
            ));
        }
        if s.chars().any(char::is_control) {
            return Err("eventId contains control characters".into());
        }
        Ok(EventId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        for ok in [
            "smdp.example.com",
            "smdp.example.com:8443",
            "localhost",
            "a-b.c1.example.",
            "127.0.0.1:443",
        ] {
            assert!(RspServerAddress::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "https://smdp.example.com",
            "smdp.example.com/path",
            "smdp example",
            "smdp.example.com:",
            "smdp.example.com:0",
            "smdp.example.com:99999",
            "-a.example",
            "a..b",
            "user@host",
            "smdp.example.com:80:80",
        ] {
            assert!(RspServerAddress::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn event_ids() {
        assert!(EventId::parse("ev-1").is_ok());
        assert!(EventId::parse("événement").is_ok());
        assert!(EventId::parse("").is_err());
        assert!(EventId::parse("a\nb").is_err());
        assert!(EventId::parse(&"x".repeat(257)).is_err());
    }
}
