//! Revocation in a hierarchy directory: which certificates each CA has revoked (kept in
//! `crl/revocations.toml`), and the CRLs issued from that list.
//!
//! Files, per curve (`<C>` is `NIST` or `BRP`): `crl/<C>/<issuer>.crl` (DER) and `.pem`, named by
//! the issuing role (`ci`, `cisubca`, `eum`, `dpsubca`, ...), and a copy at the path of every CRL
//! distribution point URI of the certificates that CA issued, so a lab serves `crl/<C>/` as the
//! web root of `http://ci.test.example.com/CRL-1.crl` and the like. In SGP.26 v3 Variants B and C
//! the CI and the CI SubCA name the same URIs (`ci.test.example.com`); there the CA that issued
//! more of the certificates naming a URI gets it (the CI SubCA, as the variants notes infer), and
//! the other CA's CRL stays under its role name.

use crate::Error;
use crate::cert::Certificate;
use crate::crl::{self, CrlInput, Reason, RevokedEntry};
use crate::hierarchy::Hierarchy;
use crate::keys::Curve;
use crate::layout::{self, PlannedFile};
use crate::oid::known;
use crate::profile::ExtensionSpec;
use crate::role::Role;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The state file, relative to the hierarchy root.
pub const STATE: &str = "crl/revocations.toml";

/// The first cRLNumber (SGP.26 v3's test CRLs are said to carry 2024 [2nd]).
pub const FIRST_NUMBER: u64 = 2024;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct State {
    /// Keyed `<role>-<curve>`, e.g. `eum-nist`.
    #[serde(default)]
    issuers: BTreeMap<String, IssuerState>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct IssuerState {
    /// The cRLNumber of the last CRL issued.
    #[serde(default)]
    number: u64,
    #[serde(default)]
    revoked: Vec<Entry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct Entry {
    /// Hexadecimal magnitude.
    serial: String,
    subject: String,
    date: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<Reason>,
}

fn key(role: Role, curve: Curve) -> String {
    format!("{role}-{}", curve.cli_name())
}

/// One CRL written.
#[derive(Debug, Clone)]
pub struct IssuedCrl {
    pub issuer: Role,
    pub curve: Curve,
    pub number: u64,
    pub revoked: usize,
    /// Every file it was written to.
    pub files: Vec<PathBuf>,
}

/// The CRL distribution point URIs of a certificate.
pub fn distribution_points(cert: &Certificate) -> Vec<String> {
    match cert
        .extension(known::EXT_CRL_DISTRIBUTION_POINTS)
        .and_then(|e| e.spec.as_ref())
    {
        Some(ExtensionSpec::CrlDistributionPoints { uris, .. }) => uris.clone(),
        _ => Vec::new(),
    }
}

/// The file a distribution point URI is served from, below a curve's CRL directory: `host/path`,
/// for plain `http://` URIs with a safe path only.
fn uri_path(uri: &str) -> Option<PathBuf> {
    let rest = uri.strip_prefix("http://")?;
    let ok = |seg: &str| {
        !seg.is_empty()
            && seg != "."
            && seg != ".."
            && seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    };
    let segs: Vec<&str> = rest.split('/').collect();
    segs.iter().all(|s| ok(s)).then(|| segs.iter().collect())
}

impl Hierarchy {
    fn crl_state(&self) -> Result<State, Error> {
        let path = self.root.join(STATE);
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| Error::file(&path, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(Error::file(&path, format!("cannot read: {e}"))),
        }
    }

    /// The CA roles of this hierarchy: every role that issues another.
    fn ca_roles(&self) -> Vec<Role> {
        self.profile
            .variant
            .roles()
            .into_iter()
            .filter(|r| r.is_ca())
            .collect()
    }

    /// Records `cert` as revoked by the CA of this hierarchy that issued it, then issues that
    /// CA's CRL again. Revoking a certificate twice keeps the first date and reason.
    pub fn revoke(
        &self,
        cert: &Certificate,
        reason: Option<Reason>,
        days: u32,
        now: i64,
    ) -> Result<IssuedCrl, Error> {
        let aki = cert.aki().unwrap_or_default();
        let (issuer, curve) = self
            .ca_roles()
            .into_iter()
            .flat_map(|r| self.manifest.curves.iter().map(move |c| (r, *c)))
            .find(|(r, c)| {
                self.cert(&self.slot(*r, *c, None))
                    .is_ok_and(|ca| ca.key_id() == aki && ca.subject_der() == cert.issuer_der())
            })
            .ok_or_else(|| {
                Error::Usage(format!(
                    "\"{}\" was not issued by a CA of the hierarchy in {}",
                    cert.subject,
                    self.root.display()
                ))
            })?;
        let mut state = self.crl_state()?;
        let entry = state.issuers.entry(key(issuer, curve)).or_default();
        let serial = cert.serial_hex();
        if !entry.revoked.iter().any(|e| e.serial == serial) {
            entry.revoked.push(Entry {
                serial,
                subject: cert.subject.to_string(),
                date: crate::time::format(now),
                reason,
            });
        }
        self.write_state(&state)?;
        let mut issued = self.issue_crls(Some(issuer), days, now)?;
        issued.retain(|c| c.curve == curve);
        issued
            .pop()
            .ok_or_else(|| Error::Usage(format!("no CRL issued for {issuer}")))
    }

    fn write_state(&self, state: &State) -> Result<(), Error> {
        let text = toml::to_string(state)
            .map_err(|e| Error::Usage(format!("cannot encode the revocation list: {e}")))?;
        layout::write_atomic(&self.root.join(STATE), text.as_bytes(), false, true)
    }

    /// Issues the CRL of every CA (or only of `only`) on every curve, valid for `days` from `now`,
    /// each with the next cRLNumber, and writes them (see the module doc for the file names).
    pub fn issue_crls(
        &self,
        only: Option<Role>,
        days: u32,
        now: i64,
    ) -> Result<Vec<IssuedCrl>, Error> {
        let variant = self.profile.variant;
        let cas: Vec<Role> = match only {
            Some(r) if self.ca_roles().contains(&r) => vec![r],
            Some(r) => {
                return Err(Error::Usage(format!(
                    "{r} issues no certificates in this hierarchy (CAs: {})",
                    self.ca_roles()
                        .iter()
                        .map(|r| r.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            None => self.ca_roles(),
        };
        let mut state = self.crl_state()?;
        let mut out = Vec::new();
        let mut files = Vec::new();
        for &curve in &self.manifest.curves {
            // Which CA each distribution point URI belongs to: the one that issued the most
            // certificates naming it.
            let mut claims: BTreeMap<String, BTreeMap<Role, usize>> = BTreeMap::new();
            for role in variant.roles().into_iter().filter(|r| *r != Role::Ci) {
                let cert = self.cert(&self.slot(role, curve, None))?;
                for uri in distribution_points(&cert) {
                    *claims
                        .entry(uri)
                        .or_default()
                        .entry(variant.issuer(role))
                        .or_default() += 1;
                }
            }
            let owner = |uri: &str| {
                claims.get(uri).and_then(|c| {
                    c.iter()
                        .max_by_key(|(r, n)| (**n, std::cmp::Reverse(**r)))
                        .map(|(r, _)| *r)
                })
            };
            let dir = self.root.join("crl").join(curve.file_suffix());
            for &ca in &cas {
                let slot = self.slot(ca, curve, None);
                let (cert, ca_key) = (self.cert(&slot)?, self.key(&slot)?);
                let st = state.issuers.entry(key(ca, curve)).or_default();
                st.number = st.number.max(FIRST_NUMBER - 1) + 1;
                let revoked = st
                    .revoked
                    .iter()
                    .map(|e| {
                        Ok(RevokedEntry {
                            serial: crate::oid::unhex(&e.serial).ok_or_else(|| {
                                format!("serial {:?} is not hexadecimal bytes", e.serial)
                            })?,
                            date: crate::time::parse_rfc3339(&e.date)?,
                            reason: e.reason,
                        })
                    })
                    .collect::<Result<Vec<_>, String>>()
                    .map_err(|e| Error::file(self.root.join(STATE), e))?;
                let issued = crl::issue(&CrlInput {
                    issuer: &cert,
                    key: &ca_key,
                    number: st.number,
                    this_update: now,
                    next_update: now + i64::from(days) * 86_400,
                    revoked: &revoked,
                })
                .map_err(Error::Template)?;
                let mut paths = vec![dir.join(format!("{ca}.crl")), dir.join(format!("{ca}.pem"))];
                for (uri, _) in claims.iter().filter(|(u, _)| owner(u) == Some(ca)) {
                    if let Some(p) = uri_path(uri) {
                        paths.push(dir.join(p));
                    }
                }
                for p in &paths {
                    let pem = p.extension().is_some_and(|e| e == "pem");
                    files.push(PlannedFile {
                        path: p.clone(),
                        contents: if pem {
                            issued.to_pem().into_bytes()
                        } else {
                            issued.der().to_vec()
                        },
                        secret: false,
                    });
                }
                out.push(IssuedCrl {
                    issuer: ca,
                    curve,
                    number: st.number,
                    revoked: revoked.len(),
                    files: paths,
                });
            }
        }
        layout::write_all(&files, true)?;
        self.write_state(&state)?;
        Ok(out)
    }
}

/// Reads a CRL file (DER or PEM), naming the file in any error.
pub fn read_crl(path: &Path) -> Result<crl::Crl, Error> {
    let data = std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    crl::Crl::from_der_or_pem(&data).map_err(|e| Error::file(path, format!("not a valid CRL: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_paths_are_confined() {
        assert_eq!(
            uri_path("http://ci.test.example.com/CRL-1.crl"),
            Some(PathBuf::from("ci.test.example.com/CRL-1.crl"))
        );
        assert_eq!(uri_path("http://h/../../etc/passwd"), None);
        assert_eq!(uri_path("https://h/x.crl"), None);
        assert_eq!(uri_path("http://h//x.crl"), None);
    }
}
