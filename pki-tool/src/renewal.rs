//! `pki-tool renew`: re-issues the certificates of a hierarchy that expire within a horizon,
//! under the same issuer, with the same subject and extensions (the old TBSCertificate with a
//! new serial, validity and, with `--rekey`, key), and `--prune` for what renewals left behind.
//!
//! - Serial: the role's template policy when it is random; a fixed or EID-derived serial would
//!   repeat the old one (and a CRL listing the old certificate would revoke the new one), so
//!   those get a random serial of the same length.
//! - Validity: from now, for the role template's number of days (the old certificate's span when
//!   its role has no template).
//! - Key: kept; `--rekey` draws a new one on the same curve (its subjectKeyIdentifier follows).
//!   A CA that has issued certificates in the directory is not re-keyed: they would no longer
//!   chain to it.
//! - Files: every file holding the old certificate (DER and PEM copies) is rewritten in its
//!   format, atomically; the previous content stays next to it as `<file>.old` (a hard link made
//!   before the rename) until `--prune` removes the `*.old` files.
//!
//! Every renewed certificate is validated (SGP.22 chain to the directory's CI) before anything is
//! written.

use crate::cert::Certificate;
use crate::hierarchy::{Hierarchy, read_key};
use crate::inventory::{Expiry, Inventory};
use crate::keys::PrivateKey;
use crate::layout::write_atomic;
use crate::oid::known;
use crate::profile::SerialSpec;
use crate::role::Role;
use crate::tlv::{self, tag};
use crate::validate::{Options, verify_chain};
use crate::{Error, time};
use std::path::{Path, PathBuf};

/// What to renew.
#[derive(Debug, Clone)]
pub struct RenewOptions {
    /// Only these roles (all when empty).
    pub roles: Vec<Role>,
    /// Renew what expires within this many days (and what has expired).
    pub within_days: u32,
    pub rekey: bool,
    /// Compute and check, write nothing.
    pub dry_run: bool,
    pub now: i64,
}

/// One certificate renewed.
#[derive(Debug, Clone)]
pub struct Renewed {
    pub file: PathBuf,
    pub role: Option<Role>,
    pub old_serial: String,
    pub new_serial: String,
    pub old_not_after: i64,
    pub new_not_after: i64,
    pub rekeyed: bool,
    /// Every file written (relative to the root).
    pub files: Vec<PathBuf>,
}

/// A renewed certificate and the files it goes to, before writing.
struct Plan {
    index: usize,
    old: Certificate,
    cert: Certificate,
    key: Option<PrivateKey>,
    files: Vec<(PathBuf, Vec<u8>, bool)>,
}

/// The TBS elements of a certificate, each as its DER bytes.
fn tbs_elements(cert: &Certificate) -> Result<Vec<Vec<u8>>, String> {
    let tbs = tlv::parse_single(cert.tbs_der(), "TBSCertificate").map_err(|e| e.to_string())?;
    let mut r = tbs.reader();
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(r.read().map_err(|e| e.to_string())?.raw.to_vec());
    }
    Ok(out)
}

/// The extensions element with the subjectKeyIdentifier set to `ski`.
fn with_ski(extensions: &[u8], ski: &[u8]) -> Result<Vec<u8>, String> {
    let wrapper = tlv::parse_single(extensions, "extensions").map_err(|e| e.to_string())?;
    let seq = tlv::parse_single(wrapper.value, "Extensions").map_err(|e| e.to_string())?;
    let mut r = seq.reader();
    let mut out = Vec::new();
    while !r.is_empty() {
        let ext = r.read().map_err(|e| e.to_string())?;
        let mut er = ext.reader();
        let oid = er.expect(tag::OID, "extnID").map_err(|e| e.to_string())?;
        if oid.value == known::EXT_SUBJECT_KEY_ID {
            let critical = er.optional(tag::BOOLEAN).map_err(|e| e.to_string())?;
            let mut parts = vec![oid.raw.to_vec()];
            if let Some(c) = critical {
                parts.push(c.raw.to_vec());
            }
            parts.push(tlv::octet_string(&tlv::octet_string(ski)));
            out.extend(tlv::tlv(tag::SEQUENCE, &parts.concat()));
        } else {
            out.extend_from_slice(ext.raw);
        }
    }
    Ok(tlv::tlv(0xA3, &tlv::tlv(tag::SEQUENCE, &out)))
}

fn random_serial(len: usize) -> Result<Vec<u8>, Error> {
    let mut b = vec![0u8; len.clamp(8, 20)];
    getrandom::fill(&mut b).map_err(|e| Error::Random(e.to_string()))?;
    b[0] &= 0x7F;
    if b[0] == 0 {
        b[0] = 1;
    }
    Ok(b)
}

/// The old certificate re-issued: new serial and validity, optionally a new key, signed by
/// `signer` (the issuer's key, or the new/own key of a self-signed certificate).
fn reissue(
    old: &Certificate,
    serial: &[u8],
    not_before: i64,
    not_after: i64,
    new_key: Option<&PrivateKey>,
    signer: &PrivateKey,
) -> Result<Certificate, String> {
    let mut el = tbs_elements(old)?;
    // [0] version, serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo, ...
    if el.len() < 7 || el[0].first() != Some(&0xA0) {
        return Err("not an X.509 v3 TBSCertificate".into());
    }
    el[1] = tlv::unsigned_integer(serial);
    el[4] = tlv::sequence(&[&time::encode(not_before)?, &time::encode(not_after)?]);
    if let Some(k) = new_key {
        el[6] = k.public_key().to_spki_der();
        if let Some(ext) = el.iter_mut().skip(7).find(|e| e.first() == Some(&0xA3)) {
            *ext = with_ski(ext, &k.public_key().ski())?;
        }
    }
    let algorithm = tlv::sequence(&[&tlv::tlv(tag::OID, known::ECDSA_WITH_SHA256)]);
    el[2] = algorithm.clone();
    let tbs = tlv::tlv(tag::SEQUENCE, &el.concat());
    let signature = signer.sign_der(&tbs);
    let der = tlv::sequence(&[&tbs, &algorithm, &tlv::bit_string(&signature)]);
    Certificate::from_der(&der).map_err(|e| format!("the renewed certificate does not parse: {e}"))
}

/// The `.old` name of a file.
fn old_name(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".old");
    PathBuf::from(s)
}

/// Replaces `path` with `contents` atomically, keeping what was there as `<path>.old`.
fn replace_keeping_old(path: &Path, contents: &[u8], secret: bool) -> Result<(), Error> {
    if path.exists() {
        let old = old_name(path);
        match std::fs::remove_file(&old) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::file(&old, format!("cannot replace: {e}"))),
        }
        std::fs::hard_link(path, &old)
            .map_err(|e| Error::file(&old, format!("cannot keep the old file: {e}")))?;
    }
    write_atomic(path, contents, secret, true)
}

/// The contents of a certificate file in its format (by extension).
fn encode_like(file: &Path, cert: &Certificate) -> Vec<u8> {
    if file.extension().is_some_and(|e| e == "pem") {
        cert.to_pem().into_bytes()
    } else {
        cert.der().to_vec()
    }
}

impl Hierarchy {
    /// Renews what `opts` selects; returns what was renewed (or would be, with `dry_run`).
    pub fn renew(&self, opts: &RenewOptions) -> Result<Vec<Renewed>, Error> {
        let mut inv = Inventory::scan(&self.root)?;
        let due: Vec<usize> = inv
            .tree()
            .into_iter()
            .map(|(i, _)| i)
            .filter(|&i| {
                let e = &inv.entries[i];
                e.expiry(opts.now, opts.within_days) != Expiry::Valid
                    && (opts.roles.is_empty() || e.role.is_some_and(|r| opts.roles.contains(&r)))
            })
            .collect();
        let mut plans = Vec::new();
        for index in due {
            let plan = self.plan(&inv, index, opts)?;
            // Later certificates validate against (and are signed by) the renewed issuer.
            inv.entries[index].cert = plan.cert.clone();
            plans.push(plan);
        }
        for p in &plans {
            self.check_renewed(&inv, p.index, opts.now)?;
        }
        let mut out = Vec::new();
        for p in plans {
            if !opts.dry_run {
                for (file, contents, secret) in &p.files {
                    replace_keeping_old(&self.root.join(file), contents, *secret)?;
                }
            }
            let e = &inv.entries[p.index];
            out.push(Renewed {
                file: e.main_file().to_path_buf(),
                role: e.role,
                old_serial: p.old.serial_hex(),
                new_serial: p.cert.serial_hex(),
                old_not_after: p.old.not_after,
                new_not_after: p.cert.not_after,
                rekeyed: p.key.is_some(),
                files: p.files.into_iter().map(|(f, _, _)| f).collect(),
            });
        }
        Ok(out)
    }

    fn plan(&self, inv: &Inventory, index: usize, opts: &RenewOptions) -> Result<Plan, Error> {
        let e = &inv.entries[index];
        let name = || e.main_file().display().to_string();
        let key_file = |cert: &Certificate, what: &str| {
            inv.private_key_of(cert).cloned().ok_or_else(|| {
                Error::Usage(format!(
                    "{}: no private key for {what} \"{}\" in {}",
                    name(),
                    cert.subject,
                    self.root.display()
                ))
            })
        };
        let issued = inv.children(index).len();
        if opts.rekey && issued > 0 {
            return Err(Error::Usage(format!(
                "{}: \"{}\" has issued {issued} certificate(s) here; re-keying it would leave them without an issuer (renew it without --rekey)",
                name(),
                e.cert.subject
            )));
        }
        let new_key = if opts.rekey {
            Some(PrivateKey::generate(e.curve()).map_err(|err| Error::Random(err.to_string()))?)
        } else {
            None
        };
        let signer = match (e.is_self_signed(), e.issuer) {
            (true, _) => match &new_key {
                Some(k) => k.clone(),
                None => read_key(&self.root.join(key_file(&e.cert, "the certificate")?))?,
            },
            (false, Some(i)) => {
                let issuer = &inv.entries[i].cert;
                read_key(&self.root.join(key_file(issuer, "its issuer")?))?
            }
            (false, None) => {
                return Err(Error::Usage(format!(
                    "{}: its issuer \"{}\" is not in {}",
                    name(),
                    e.cert.issuer,
                    self.root.display()
                )));
            }
        };
        let template = e.role.and_then(|r| self.profile.get(r).ok());
        let serial = match template.map(|t| &t.serial) {
            Some(SerialSpec::Random { bytes }) => random_serial(*bytes)?,
            _ => random_serial(e.cert.serial.len())?,
        };
        let span = template.map_or(e.cert.not_after - e.cert.not_before, |t| {
            i64::from(t.validity.days) * 86_400
        });
        let not_after = opts.now.saturating_add(span).min(time::MAX_TIME);
        let cert = reissue(
            &e.cert,
            &serial,
            opts.now,
            not_after,
            new_key.as_ref(),
            &signer,
        )
        .map_err(|m| Error::file(self.root.join(e.main_file()), m))?;
        let mut files: Vec<(PathBuf, Vec<u8>, bool)> = e
            .files
            .iter()
            .map(|f| (f.clone(), encode_like(f, &cert), false))
            .collect();
        if let Some(k) = &new_key {
            let old = e.cert.public_key.point();
            for f in inv.private_keys.get(old).into_iter().flatten() {
                files.push((f.clone(), k.to_pem().into_bytes(), true));
            }
            for f in inv.public_keys.get(old).into_iter().flatten() {
                files.push((f.clone(), k.public_key().to_pem().into_bytes(), false));
            }
        }
        Ok(Plan {
            index,
            old: e.cert.clone(),
            cert,
            key: new_key,
            files,
        })
    }

    /// The renewed certificate at `index` validates under the directory's CIs.
    fn check_renewed(&self, inv: &Inventory, index: usize, now: i64) -> Result<(), Error> {
        let e = &inv.entries[index];
        let anchors: Vec<Certificate> = inv
            .entries
            .iter()
            .filter(|x| x.is_self_signed())
            .map(|x| x.cert.clone())
            .collect();
        let intermediates: Vec<Certificate> = inv
            .entries
            .iter()
            .filter(|x| !x.is_self_signed() && x.role.is_some_and(Role::is_ca))
            .map(|x| x.cert.clone())
            .collect();
        verify_chain(&e.cert, &intermediates, &anchors, e.role, Options::at(now))
            .map(|_| ())
            .map_err(|err| {
                Error::file(
                    self.root.join(e.main_file()),
                    format!("the renewed certificate does not validate, nothing written: {err}"),
                )
            })
    }
}

/// `renew --prune`: removes every `*.old` file below `root`; returns them.
pub fn prune(root: &Path) -> Result<Vec<PathBuf>, Error> {
    let old = crate::layout::files_below(root, 6, &|_, _| false)
        .map_err(|e| Error::file(root, format!("cannot read: {e}")))?
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "old"))
        .map(|f| root.join(f))
        .collect::<Vec<_>>();
    for f in &old {
        std::fs::remove_file(f).map_err(|e| Error::file(f, e))?;
    }
    Ok(old)
}
