//! What a hierarchy directory holds, found by reading it rather than by its manifest: every
//! certificate (each file it is stored in, DER or single-certificate PEM), who issued it, and the
//! private and public key files by key. `pki-tool status` reports from it and `pki-tool renew`
//! re-issues from it, so extra instances (a second SM-DP+, more eUICCs) are covered too.
//!
//! Skipped: `crl/` (CRLs and the revocation list), hidden files (temporaries of atomic writes),
//! `*.old` (what `renew` kept), PEM files holding several certificates (chain bundles; listed in
//! [`Inventory::bundles`]). Reads only.

use crate::cert::Certificate;
use crate::keys::{Curve, PrivateKey};
use crate::role::Role;
use crate::validate::detect_role;
use crate::{Error, time};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Deepest directory level read below the root.
const MAX_DEPTH: usize = 6;

/// One certificate of the hierarchy.
#[derive(Debug, Clone)]
pub struct Entry {
    pub cert: Certificate,
    /// Every file holding it, relative to the root, sorted: `.der` and `.pem` copies.
    pub files: Vec<PathBuf>,
    pub role: Option<Role>,
    /// Index of its issuer in [`Inventory::entries`]; `None` for a CI (self-signed) and for a
    /// certificate whose issuer is not in the directory.
    pub issuer: Option<usize>,
}

impl Entry {
    pub fn curve(&self) -> Curve {
        self.cert.public_key.curve()
    }

    pub fn is_self_signed(&self) -> bool {
        self.cert.is_self_signed()
    }

    /// Whole days from `now` to notAfter (negative once expired).
    pub fn days_left(&self, now: i64) -> i64 {
        (self.cert.not_after - now).div_euclid(86_400)
    }

    pub fn expiry(&self, now: i64, within_days: u32) -> Expiry {
        if self.cert.not_after < now {
            Expiry::Expired
        } else if self.cert.not_after - now <= i64::from(within_days) * 86_400 {
            Expiry::Expiring
        } else {
            Expiry::Valid
        }
    }

    /// The file that names it in messages: the DER one when there is one.
    pub fn main_file(&self) -> &Path {
        self.files
            .iter()
            .find(|f| f.extension().is_some_and(|e| e == "der"))
            .or(self.files.first())
            .map_or(Path::new(""), |p| p.as_path())
    }
}

/// Where a certificate stands against a horizon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Expiry {
    Valid,
    Expiring,
    Expired,
}

impl Expiry {
    pub fn name(self) -> &'static str {
        match self {
            Expiry::Valid => "valid",
            Expiry::Expiring => "expiring",
            Expiry::Expired => "expired",
        }
    }
}

/// The certificates and keys of one directory.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub root: PathBuf,
    pub entries: Vec<Entry>,
    /// Private key files by public key point.
    pub private_keys: HashMap<[u8; 65], Vec<PathBuf>>,
    /// Public key files by point.
    pub public_keys: HashMap<[u8; 65], Vec<PathBuf>>,
    /// PEM files with more than one certificate (chain bundles), relative to the root.
    pub bundles: Vec<PathBuf>,
}

/// The files `status` and `renew` look at: all but `crl/` and `*.old`.
fn files_below(root: &Path) -> Result<Vec<PathBuf>, Error> {
    crate::layout::files_below(root, MAX_DEPTH, &|rel, is_dir| {
        (is_dir && rel == Path::new("crl")) || rel.extension().is_some_and(|e| e == "old")
    })
    .map_err(|e| Error::file(root, format!("cannot read: {e}")))
}

impl Inventory {
    /// Reads every certificate and key below `root`.
    pub fn scan(root: &Path) -> Result<Self, Error> {
        let mut inv = Inventory {
            root: root.to_path_buf(),
            ..Inventory::default()
        };
        let mut by_der: HashMap<Vec<u8>, usize> = HashMap::new();
        for rel in files_below(root)? {
            let ext = rel.extension().and_then(|e| e.to_str()).unwrap_or("");
            if !matches!(ext, "der" | "pem" | "crt" | "cer") {
                continue;
            }
            let path = root.join(&rel);
            let data = std::fs::read(&path).map_err(|e| Error::file(&path, e))?;
            let text = std::str::from_utf8(&data).ok();
            if let Some(text) = text.filter(|t| t.contains("-----BEGIN")) {
                if text.contains("PRIVATE KEY-----") {
                    if let Ok(k) = PrivateKey::from_pem(text) {
                        let point = *k.public_key().point();
                        inv.private_keys.entry(point).or_default().push(rel);
                    }
                    continue;
                }
                if text.contains("BEGIN PUBLIC KEY") {
                    if let Ok(k) = crate::keys::PublicKey::from_pem(text) {
                        inv.public_keys.entry(*k.point()).or_default().push(rel);
                    }
                    continue;
                }
            }
            let Ok(mut certs) = Certificate::all_from_der_or_pem(&data) else {
                continue;
            };
            if certs.len() > 1 {
                inv.bundles.push(rel);
                continue;
            }
            let Some(cert) = certs.pop() else {
                continue;
            };
            match by_der.get(cert.der()) {
                Some(&i) => inv.entries[i].files.push(rel),
                None => {
                    by_der.insert(cert.der().to_vec(), inv.entries.len());
                    inv.entries.push(Entry {
                        role: detect_role(&cert),
                        cert,
                        files: vec![rel],
                        issuer: None,
                    });
                }
            }
        }
        inv.link_issuers();
        Ok(inv)
    }

    /// Finds each certificate's issuer among the others: subject = issuer name, key identifier
    /// = AKI, and its key verifies the signature.
    fn link_issuers(&mut self) {
        let links: Vec<Option<usize>> = self
            .entries
            .iter()
            .map(|e| {
                if e.is_self_signed() {
                    return None;
                }
                let aki = e.cert.aki();
                self.entries.iter().position(|i| {
                    i.cert.subject_der() == e.cert.issuer_der()
                        && aki.as_ref().is_none_or(|a| *a == i.cert.key_id())
                        && i.cert
                            .public_key
                            .verify_der(e.cert.tbs_der(), &e.cert.signature)
                })
            })
            .collect();
        for (e, l) in self.entries.iter_mut().zip(links) {
            e.issuer = l;
        }
    }

    /// The certificates `index` issued.
    pub fn children(&self, index: usize) -> Vec<usize> {
        (0..self.entries.len())
            .filter(|&i| self.entries[i].issuer == Some(index) && i != index)
            .collect()
    }

    /// Every entry in tree order (issuers before what they issued, siblings by file name), with
    /// its depth.
    pub fn tree(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::with_capacity(self.entries.len());
        let mut roots: Vec<usize> = (0..self.entries.len())
            .filter(|&i| self.entries[i].issuer.is_none())
            .collect();
        roots.sort_by(|a, b| {
            self.entries[*a]
                .main_file()
                .cmp(self.entries[*b].main_file())
        });
        let mut stack: Vec<(usize, usize)> = roots.into_iter().rev().map(|r| (r, 0)).collect();
        while let Some((i, depth)) = stack.pop() {
            out.push((i, depth));
            let mut kids = self.children(i);
            kids.sort_by(|a, b| {
                self.entries[*a]
                    .main_file()
                    .cmp(self.entries[*b].main_file())
            });
            stack.extend(kids.into_iter().rev().map(|k| (k, depth + 1)));
        }
        out
    }

    /// The private key file of a certificate, if the directory has one.
    pub fn private_key_of(&self, cert: &Certificate) -> Option<&PathBuf> {
        self.private_keys
            .get(cert.public_key.point())
            .and_then(|v| v.first())
    }
}

/// One line of `pki-tool status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StatusRow {
    pub file: String,
    pub depth: usize,
    pub role: Option<String>,
    pub curve: String,
    pub subject: String,
    pub serial: String,
    pub not_after: String,
    pub days_left: i64,
    pub status: &'static str,
    /// The issuer's file, if it is in the directory.
    pub issuer: Option<String>,
}

/// `pki-tool status`: every certificate in tree order, against a horizon of `within_days`.
pub fn status(inv: &Inventory, now: i64, within_days: u32) -> Vec<StatusRow> {
    inv.tree()
        .into_iter()
        .map(|(i, depth)| {
            let e = &inv.entries[i];
            StatusRow {
                file: e.main_file().display().to_string(),
                depth,
                role: e.role.map(|r| r.name().to_string()),
                curve: e.curve().to_string(),
                subject: e.cert.subject.to_string(),
                serial: e.cert.serial_hex(),
                not_after: time::format(e.cert.not_after),
                days_left: e.days_left(now),
                status: e.expiry(now, within_days).name(),
                issuer: e
                    .issuer
                    .map(|p| inv.entries[p].main_file().display().to_string()),
            }
        })
        .collect()
}
