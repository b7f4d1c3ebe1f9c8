//! Compares a certificate with its role template and lists every deviation: subject attributes
//! and their string types, extensions in order with criticality and values, serial policy,
//! validity, algorithms and key identifiers. Placeholders the caller did not give a value for
//! (`{eid}`, `{smdp_fqdn}`, ...) match anything.

use crate::cert::Certificate;
use crate::oid::known;
use crate::profile::{ExtensionSpec, SerialSpec, Template, Vars};
use crate::tlv::{self, tag};
use std::fmt;

/// One difference between a certificate and its profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deviation {
    pub field: String,
    pub expected: String,
    pub found: String,
}

impl fmt::Display for Deviation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: expected {}, found {}",
            self.field, self.expected, self.found
        )
    }
}

/// Replaces the placeholders that have values; the others stay as `{name}` wildcards.
fn partial(s: &str, vars: &Vars) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find('}') {
            Some(end) if is_ident(&after[..end]) => {
                let key = &after[..end];
                match vars.0.get(key) {
                    Some(v) => out.push_str(v),
                    None => out.push_str(&rest[start..start + end + 2]),
                }
                rest = &after[end + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn is_ident(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether `text` matches `pattern`, where each `{name}` in the pattern matches any run of characters.
pub fn matches(pattern: &str, text: &str) -> bool {
    // Split the pattern into literal pieces around placeholders.
    let mut pieces = Vec::new();
    let mut rest = pattern;
    let mut current = String::new();
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        match after.find('}') {
            Some(end) if is_ident(&after[..end]) => {
                current.push_str(&rest[..start]);
                pieces.push(std::mem::take(&mut current));
                rest = &after[end + 1..];
            }
            _ => {
                current.push_str(&rest[..=start]);
                rest = after;
            }
        }
    }
    current.push_str(rest);
    pieces.push(current);
    if pieces.len() == 1 {
        return pieces[0] == text;
    }
    let (first, last) = (&pieces[0], &pieces[pieces.len() - 1]);
    if !text.starts_with(first.as_str())
        || text.len() < first.len() + last.len()
        || !text.ends_with(last.as_str())
    {
        return false;
    }
    let mut pos = first.len();
    let end = text.len() - last.len();
    for piece in &pieces[1..pieces.len() - 1] {
        match text[pos..end].find(piece.as_str()) {
            Some(i) => pos += i + piece.len(),
            None => return false,
        }
    }
    true
}

/// An extension's value as a template writes it (`uris = ["http://..."]`), without its kind and
/// criticality; `present` for an extension with no value of its own.
fn render(spec: &ExtensionSpec) -> String {
    let fields = match serde_json::to_value(spec) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => return "present".into(),
    };
    let shown: Vec<String> = fields
        .iter()
        .filter(|(k, _)| *k != "kind" && *k != "critical")
        .map(|(k, v)| format!("{k} = {v}"))
        .collect();
    if shown.is_empty() {
        "present".into()
    } else {
        shown.join(", ")
    }
}

/// Lists every deviation of `cert` from `template`. `vars` fills placeholders; `issuer`, when
/// given, is checked against the issuer name and authority key identifier.
pub fn lint(
    cert: &Certificate,
    template: &Template,
    vars: &Vars,
    issuer: Option<&Certificate>,
) -> Vec<Deviation> {
    let vars = vars.over(template);
    let mut out = Vec::new();
    let mut dev = |field: &str, expected: String, found: String| {
        out.push(Deviation {
            field: field.to_string(),
            expected,
            found,
        })
    };

    if cert.version != 3 {
        dev("version", "3".into(), cert.version.to_string());
    }
    let ecdsa = tlv::sequence(&[&tlv::tlv(tag::OID, known::ECDSA_WITH_SHA256)]);
    if cert.signature_algorithm != ecdsa || cert.tbs_signature_algorithm != ecdsa {
        dev(
            "signature algorithm",
            "ecdsa-with-SHA256 without parameters".into(),
            "something else".into(),
        );
    }

    // Serial number.
    let serial = &cert.serial;
    if serial[0] & 0x80 != 0 {
        dev("serial number", "positive".into(), "negative".into());
    }
    let magnitude = if serial.len() > 1 && serial[0] == 0 {
        &serial[1..]
    } else {
        &serial[..]
    };
    if magnitude.len() > 20 {
        dev(
            "serial number",
            "at most 20 octets".into(),
            format!("{} octets", magnitude.len()),
        );
    }
    match &template.serial {
        SerialSpec::Fixed { value } => {
            let want = partial(value, &vars).to_uppercase();
            if !matches(&want, &crate::oid::hex(magnitude)) {
                dev("serial number", want, crate::oid::hex(magnitude));
            }
        }
        SerialSpec::Eid => {
            let eid = cert.subject.get(known::AT_SERIAL_NUMBER).unwrap_or("");
            if !crate::oid::hex(magnitude).eq_ignore_ascii_case(eid) {
                dev(
                    "serial number",
                    format!("the EID digits ({eid})"),
                    crate::oid::hex(magnitude),
                );
            }
        }
        SerialSpec::Random { bytes } => {
            if magnitude.len() < (*bytes).min(8) {
                dev(
                    "serial number",
                    format!("{bytes} random octets"),
                    format!("{} octets", magnitude.len()),
                );
            }
        }
    }

    // Validity.
    let curve = cert.public_key.curve();
    let fixed_nb = match curve {
        crate::Curve::BrainpoolP256r1 => template
            .validity
            .not_before_brainpool
            .as_ref()
            .or(template.validity.not_before.as_ref()),
        crate::Curve::NistP256 => template.validity.not_before.as_ref(),
    };
    if let Some(nb) = fixed_nb.map(|nb| partial(nb, &vars))
        && !nb.contains('{')
        && crate::time::parse_rfc3339(&nb).ok() != Some(cert.not_before)
    {
        dev("notBefore", nb, crate::time::format(cert.not_before));
    }
    let period = cert.not_after - cert.not_before;
    let want = i64::from(template.validity.days) * 86_400;
    if period != want {
        dev(
            "validity period",
            format!("{} days", template.validity.days),
            format!("{} days {} s", period / 86_400, period % 86_400),
        );
    }
    for (what, t, tg) in [
        ("notBefore", cert.not_before, cert.time_tags.0),
        ("notAfter", cert.not_after, cert.time_tags.1),
    ] {
        let utc = crate::time::Civil::from_unix(t).year < 2050;
        let want = if utc {
            tag::UTC_TIME
        } else {
            tag::GENERALIZED_TIME
        };
        if tg != want {
            dev(
                &format!("{what} encoding"),
                (if utc { "UTCTime" } else { "GeneralizedTime" }).into(),
                (if utc { "GeneralizedTime" } else { "UTCTime" }).into(),
            );
        }
    }

    // Subject.
    let attrs: Vec<_> = cert.subject.attributes().collect();
    let rdn_sizes_ok = cert.subject.rdns.iter().all(|r| r.len() == 1);
    if !rdn_sizes_ok {
        dev(
            "subject",
            "one attribute per RDN".into(),
            "a multi-valued RDN".into(),
        );
    }
    let expected: Vec<String> = template.subject.iter().map(|a| a.attr.clone()).collect();
    let found: Vec<String> = attrs
        .iter()
        .map(|a| crate::name::attribute_name(&a.oid))
        .collect();
    if expected != found {
        dev("subject attributes", expected.join(", "), found.join(", "));
    } else {
        for (spec, a) in template.subject.iter().zip(&attrs) {
            let want_type = spec
                .string
                .unwrap_or_else(|| crate::name::default_string_type(&a.oid));
            if want_type != a.string {
                dev(
                    &format!("subject {} string type", spec.attr),
                    format!("{want_type:?}String"),
                    format!("{:?}String", a.string),
                );
            }
            let want = partial(&spec.value, &vars);
            if !matches(&want, &a.value) {
                dev(
                    &format!("subject {}", spec.attr),
                    format!("{want:?}"),
                    format!("{:?}", a.value),
                );
            }
        }
    }

    // Extensions: presence and order, then criticality and value.
    let want_kinds: Vec<&str> = template
        .extensions
        .iter()
        .map(ExtensionSpec::kind)
        .collect();
    let have_kinds: Vec<String> = cert
        .extensions
        .iter()
        .map(|e| {
            e.spec
                .as_ref()
                .map(|s| s.kind().to_string())
                .unwrap_or_else(|| e.oid.to_string())
        })
        .collect();
    for k in &want_kinds {
        if !have_kinds.iter().any(|h| h == k) {
            dev(&format!("extension {k}"), "present".into(), "absent".into());
        }
    }
    for h in &have_kinds {
        if !want_kinds.contains(&h.as_str()) {
            dev(&format!("extension {h}"), "absent".into(), "present".into());
        }
    }
    let common_want: Vec<&str> = want_kinds
        .iter()
        .copied()
        .filter(|k| have_kinds.iter().any(|h| h == k))
        .collect();
    let common_have: Vec<&str> = have_kinds
        .iter()
        .map(String::as_str)
        .filter(|h| want_kinds.contains(h))
        .collect();
    if common_want != common_have {
        dev(
            "extension order",
            common_want.join(", "),
            common_have.join(", "),
        );
    }
    for spec in &template.extensions {
        let Some(ext) = cert
            .extensions
            .iter()
            .find(|e| e.spec.as_ref().map(ExtensionSpec::kind) == Some(spec.kind()))
        else {
            continue;
        };
        let Some(actual) = &ext.spec else { continue };
        if spec.critical() != actual.critical() {
            dev(
                &format!("extension {} criticality", spec.kind()),
                if spec.critical() {
                    "critical"
                } else {
                    "non-critical"
                }
                .into(),
                if actual.critical() {
                    "critical"
                } else {
                    "non-critical"
                }
                .into(),
            );
        }
        let want = partial(&render(spec), &vars);
        let have = render(actual);
        if !matches(&want, &have) {
            dev(&format!("extension {}", spec.kind()), want, have);
        }
    }

    // Key identifiers.
    if let Some(ski) = cert.ski()
        && ski != cert.public_key.ski()
    {
        dev(
            "subject key identifier",
            format!(
                "SHA-1 of the public key ({})",
                crate::oid::hex(&cert.public_key.ski())
            ),
            crate::oid::hex(&ski),
        );
    }
    if let Some(e) = cert.extension(known::EXT_AUTHORITY_KEY_ID) {
        let only_key_id = tlv::parse_single(&e.value, "AKI")
            .map(|t| {
                let mut r = t.reader();
                r.read().map(|k| k.tag == 0x80).unwrap_or(false) && r.is_empty()
            })
            .unwrap_or(false);
        if !only_key_id {
            dev(
                "authority key identifier",
                "keyIdentifier only".into(),
                "other fields too".into(),
            );
        }
    }
    if let Some(issuer) = issuer {
        if cert.issuer_der() != issuer.subject_der() {
            dev(
                "issuer",
                issuer.subject.to_string(),
                cert.issuer.to_string(),
            );
        }
        if let Some(aki) = cert.aki()
            && aki != issuer.key_id()
        {
            dev(
                "authority key identifier",
                crate::oid::hex(&issuer.key_id()),
                crate::oid::hex(&aki),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matching() {
        assert!(matches("abc", "abc"));
        assert!(!matches("abc", "abd"));
        assert!(matches(
            "dns:{fqdn}, rid:2.999.10",
            "dns:x.example, rid:2.999.10"
        ));
        assert!(!matches(
            "dns:{fqdn}, rid:2.999.10",
            "dns:x.example, rid:2.999.12"
        ));
        assert!(matches("{a}", ""));
        assert!(matches("x{a}y{b}z", "x1y2z"));
        assert!(!matches("x{a}y{b}z", "x1z"));
        assert!(matches("Foo { bar }", "Foo { bar }"));
    }

    #[test]
    fn partial_keeps_unknown_placeholders() {
        let mut v = Vars::default();
        v.set("a", "1");
        assert_eq!(partial("{a}-{b}-{ c }", &v), "1-{b}-{ c }");
    }
}
