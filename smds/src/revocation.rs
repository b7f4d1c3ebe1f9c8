//! Certificate revocation from CRL files: which certificates the CAs of the trusted hierarchies
//! have revoked, as their CRLs say, for the ES11 eUICC chain (the EUM and what it issued) and the
//! ES12 client certificate (CERT.DP.TLS and its SubCAs).
//!
//! CRLs are read from one directory, recursively: every `*.crl` (DER or PEM) and every `*.pem`
//! holding an `X509 CRL` block; `pki-tool crl` writes exactly that under `<hierarchy>/crl`, which
//! is the default. The directory is read again on SIGHUP and when its files change (polled, see
//! `crl_poll_secs`, [`DEFAULT_POLL_INTERVAL`]); a reload replaces the whole set at once.
//!
//! A CRL applies to a certificate when it names the certificate's issuer (issuer name, and its
//! authority key identifier when present) and its signature verifies with the key of that issuer
//! as found in the chain being validated, so a CRL is trusted exactly as far as the chain is.
//! CRLs issued by a trusted CI are verified at load, the others (EUM, SubCAs) the first time a
//! certificate of theirs is presented; each outcome is kept for the life of the loaded set.
//! Among several CRLs of one issuer the one with the highest cRLNumber that verifies is used.
//!
//! What is refused, and when:
//! - a certificate listed in its issuer's CRL: always;
//! - a certificate whose issuer's CRL is past its nextUpdate (stale), or whose issuer has CRL
//!   files none of which verifies with the issuer's key (tampered, or another CA's): a warning
//!   (once per CRL per load) in the default lab mode, a refusal with `strict_crl = true`.
//!
//! Certificates whose issuer has no CRL file at all are not checked.
//!
//! Touches the file system (the CRL directory, read only) and nothing else.

use pki_tool::crl::{Crl, Reason};
use pki_tool::{Certificate, time};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use sha2::Digest;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

/// How often the CRL directory is checked for changed files, unless configured.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(2);
/// Directory levels below the CRL directory that are read (pki-tool's distribution-point copies
/// sit at `<curve>/<host>/<file>`).
const MAX_DEPTH: usize = 4;
/// Files read per load, at most.
const MAX_FILES: usize = 1000;
/// The largest CRL file read (a 10,000-entry CRL is about 400 KB).
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Why a certificate is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RevocationError {
    #[error("certificate \"{subject}\" (serial {serial}) is revoked since {date}{} (CRL {})", reason.map(|r| format!(", reason {r}")).unwrap_or_default(), crl.display())]
    Revoked {
        depth: usize,
        subject: String,
        serial: String,
        date: String,
        reason: Option<Reason>,
        crl: PathBuf,
    },
    #[error("the CRL of \"{issuer}\" is past its nextUpdate {next_update} (CRL {}); strict_crl refuses the certificates it covers", crl.display())]
    Stale {
        depth: usize,
        issuer: String,
        next_update: String,
        crl: PathBuf,
    },
    #[error("no CRL file naming \"{issuer}\" verifies with its key ({}); strict_crl refuses its certificates", files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", "))]
    Unverifiable {
        depth: usize,
        issuer: String,
        files: Vec<PathBuf>,
    },
}

impl RevocationError {
    /// The position in the chain of the refused certificate: 0 is the leaf.
    pub fn depth(&self) -> usize {
        match self {
            RevocationError::Revoked { depth, .. }
            | RevocationError::Stale { depth, .. }
            | RevocationError::Unverifiable { depth, .. } => *depth,
        }
    }

    fn label(&self) -> &'static str {
        match self {
            RevocationError::Revoked { .. } => "revoked",
            RevocationError::Stale { .. } => "stale_crl",
            RevocationError::Unverifiable { .. } => "unverifiable_crl",
        }
    }
}

/// Why the CRL directory cannot be used at all.
#[derive(Debug, thiserror::Error)]
#[error("crl_dir {}: {source}", dir.display())]
pub struct CrlDirError {
    pub dir: PathBuf,
    pub source: std::io::Error,
}

/// One CRL file as loaded.
struct LoadedCrl {
    crl: Crl,
    path: PathBuf,
    revoked: HashMap<Vec<u8>, (i64, Option<Reason>)>,
    /// Signature checks done: issuer public key point -> verified.
    verified: Mutex<Vec<([u8; 65], bool)>>,
    warned: AtomicBool,
}

impl LoadedCrl {
    fn is_issued_by(&self, issuer: &Certificate) -> bool {
        let point = *issuer.public_key.point();
        if let Ok(v) = self.verified.lock()
            && let Some((_, ok)) = v.iter().find(|(p, _)| *p == point)
        {
            return *ok;
        }
        let ok = self.crl.is_issued_by(issuer);
        if let Ok(mut v) = self.verified.lock()
            && v.len() < 16
        {
            v.push((point, ok));
        }
        ok
    }

    fn warn_once(&self, what: &str) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(crl = %self.path.display(), "{what}");
        }
    }
}

/// The CRLs of one load, by issuer name (DER), highest cRLNumber first.
#[derive(Default)]
struct CrlSet {
    by_issuer: HashMap<Vec<u8>, Vec<Arc<LoadedCrl>>>,
}

/// What a load found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Distinct CRLs loaded (the same CRL in several files counts once).
    pub crls: usize,
    /// Files that could not be used, with why.
    pub problems: Vec<String>,
}

/// The metrics of revocation checking, registered with the server's (see
/// [`crate::transport::metrics::Metrics`]).
#[derive(Clone, Default)]
pub struct RevocationMetrics {
    pub(crate) loaded: Gauge,
    pub(crate) age: Family<IssuerLabel, Gauge>,
    pub(crate) refusals: Family<RefusalLabels, Counter>,
    pub(crate) load_problems: Counter,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct IssuerLabel {
    issuer: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct RefusalLabels {
    interface: &'static str,
    reason: &'static str,
}

/// Modification times and sizes of the CRL files: a change means a reload.
type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

/// The revocation state of a running server: the current CRL set, reloadable.
pub struct Revocation {
    dir: Option<PathBuf>,
    strict: bool,
    cis: Vec<Certificate>,
    set: RwLock<Arc<CrlSet>>,
    fingerprint: Mutex<Fingerprint>,
    pub(crate) metrics: RevocationMetrics,
}

impl std::fmt::Debug for Revocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revocation")
            .field("dir", &self.dir)
            .field("strict", &self.strict)
            .finish()
    }
}

/// Every CRL file below `dir` (see the module documentation), sorted.
fn crl_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let is_crl = |p: &Path| matches!(p.extension().and_then(|e| e.to_str()), Some("crl" | "pem"));
    Ok(
        pki_tool::layout::files_below(dir, MAX_DEPTH, &|_, _| false)?
            .into_iter()
            .filter(|p| is_crl(p))
            .map(|p| dir.join(p))
            .collect(),
    )
}

fn fingerprint(dir: &Path) -> std::io::Result<Fingerprint> {
    Ok(crl_files(dir)?
        .into_iter()
        .map(|p| {
            let meta = std::fs::metadata(&p).ok();
            let len = meta.as_ref().map_or(0, |m| m.len());
            let modified = meta.and_then(|m| m.modified().ok());
            (p, len, modified)
        })
        .collect())
}

/// Reads one file: `Ok(None)` for a PEM file without a CRL in it.
fn read_crl_file(path: &Path) -> Result<Option<Crl>, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!("larger than {MAX_FILE_BYTES} bytes"));
    }
    let data = std::fs::read(path).map_err(|e| e.to_string())?;
    let is_pem = path.extension().is_some_and(|e| e == "pem");
    if is_pem && !data.windows(15).any(|w| w == b"BEGIN X509 CRL-") {
        return Ok(None);
    }
    Crl::from_der_or_pem(&data)
        .map(Some)
        .map_err(|e| format!("not a CRL: {e}"))
}

fn load_set(dir: &Path, cis: &[Certificate], now: i64) -> std::io::Result<(CrlSet, LoadReport)> {
    let mut report = LoadReport::default();
    let mut seen = HashSet::new();
    let mut set = CrlSet::default();
    for path in crl_files(dir)?.into_iter().take(MAX_FILES) {
        let mut crl = match read_crl_file(&path) {
            Ok(Some(c)) => c,
            Ok(None) => continue,
            Err(why) => {
                report.problems.push(format!("{}: {why}", path.display()));
                continue;
            }
        };
        // The same CRL as DER, PEM and distribution-point copy is loaded once.
        let digest: [u8; 32] = sha2::Sha256::digest(crl.der()).into();
        if !seen.insert(digest) {
            continue;
        }
        let loaded = LoadedCrl {
            // Moved out: only the lookup map keeps the entries.
            revoked: std::mem::take(&mut crl.revoked)
                .into_iter()
                .map(|e| (e.serial, (e.date, e.reason)))
                .collect(),
            crl,
            path,
            verified: Mutex::new(Vec::new()),
            warned: AtomicBool::new(false),
        };
        // A CI's CRL is checked now, so that a bad one is reported at load.
        for ci in cis.iter().filter(|ci| names_issuer(&loaded.crl, ci)) {
            if !loaded.is_issued_by(ci) {
                report.problems.push(format!(
                    "{}: names the CI \"{}\" as issuer but its signature does not verify with that CI's key; it is not used",
                    loaded.path.display(),
                    ci.subject
                ));
            } else if loaded.crl.next_update.is_some_and(|n| n < now) {
                report
                    .problems
                    .push(format!("{}: past its nextUpdate", loaded.path.display()));
            }
        }
        report.crls += 1;
        set.by_issuer
            .entry(loaded.crl.issuer_der().to_vec())
            .or_default()
            .push(Arc::new(loaded));
    }
    for list in set.by_issuer.values_mut() {
        list.sort_by_key(|c| std::cmp::Reverse((c.crl.number.unwrap_or(0), c.crl.this_update)));
    }
    Ok((set, report))
}

/// Whether a CRL names `issuer` (its name, and its key identifier when the CRL carries one).
fn names_issuer(crl: &Crl, issuer: &Certificate) -> bool {
    crl.issuer_der() == issuer.subject_der()
        && crl.aki.as_ref().is_none_or(|a| *a == issuer.key_id())
}

impl Revocation {
    /// Loads the CRLs in `dir` (none when `None`). `required`: the directory was configured
    /// explicitly, so a missing one is an error; the default directory may not exist (yet).
    /// `cis` are the trusted CIs, whose CRLs are verified at load.
    pub fn load(
        dir: Option<PathBuf>,
        required: bool,
        strict: bool,
        cis: Vec<Certificate>,
    ) -> Result<(Self, LoadReport), CrlDirError> {
        if let Some(d) = &dir
            && required
            && let Err(source) = std::fs::read_dir(d)
        {
            return Err(CrlDirError {
                dir: d.clone(),
                source,
            });
        }
        let r = Revocation {
            dir,
            strict,
            cis,
            set: RwLock::new(Arc::new(CrlSet::default())),
            fingerprint: Mutex::new(Vec::new()),
            metrics: RevocationMetrics::default(),
        };
        let report = r.reload();
        Ok((r, report))
    }

    /// No CRLs: nothing is refused for revocation (the lab clients, tests).
    pub fn none() -> Self {
        Revocation {
            dir: None,
            strict: false,
            cis: Vec::new(),
            set: RwLock::new(Arc::new(CrlSet::default())),
            fingerprint: Mutex::new(Vec::new()),
            metrics: RevocationMetrics::default(),
        }
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Reads the directory again and replaces the CRL set; logs what it found.
    pub fn reload(&self) -> LoadReport {
        let Some(dir) = &self.dir else {
            return LoadReport::default();
        };
        let now = time::now();
        let print = fingerprint(dir).unwrap_or_default();
        let (set, report) = match load_set(dir, &self.cis, now) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                (CrlSet::default(), LoadReport::default())
            }
            Err(e) => (
                CrlSet::default(),
                LoadReport {
                    crls: 0,
                    problems: vec![format!("{}: {e}", dir.display())],
                },
            ),
        };
        for p in &report.problems {
            tracing::error!(problem = %p, "CRL not usable");
            self.metrics.load_problems.inc();
        }
        tracing::info!(dir = %dir.display(), crls = report.crls, strict = self.strict, "CRLs loaded");
        self.metrics
            .loaded
            .set(i64::try_from(report.crls).unwrap_or(i64::MAX));
        if let Ok(mut s) = self.set.write() {
            *s = Arc::new(set);
        }
        if let Ok(mut f) = self.fingerprint.lock() {
            *f = print;
        }
        report
    }

    /// Reloads when a CRL file was added, removed or changed since the last load.
    pub fn reload_if_changed(&self) -> Option<LoadReport> {
        let dir = self.dir.as_ref()?;
        let now = fingerprint(dir).unwrap_or_default();
        let changed = self.fingerprint.lock().is_ok_and(|f| *f != now);
        changed.then(|| self.reload())
    }

    fn current(&self) -> Arc<CrlSet> {
        match self.set.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Checks a validated chain: `path` from the leaf up (without the anchor), `anchor` the CI it
    /// chains to; the certificate nearest the anchor is checked first, so a revoked EUM is
    /// reported as such even when its eUICC is listed too. `interface` labels the refusal metric.
    pub fn check(
        &self,
        path: &[&Certificate],
        anchor: &Certificate,
        now: i64,
        interface: &'static str,
    ) -> Result<(), RevocationError> {
        let set = self.current();
        if set.by_issuer.is_empty() {
            return Ok(());
        }
        for (depth, cert) in path.iter().enumerate().rev() {
            let issuer = path.get(depth + 1).copied().unwrap_or(anchor);
            if let Err(e) = self.check_one(&set, depth, cert, issuer, now) {
                self.metrics
                    .refusals
                    .get_or_create(&RefusalLabels {
                        interface,
                        reason: e.label(),
                    })
                    .inc();
                tracing::info!(interface, error = %e, "certificate refused");
                return Err(e);
            }
        }
        Ok(())
    }

    fn check_one(
        &self,
        set: &CrlSet,
        depth: usize,
        cert: &Certificate,
        issuer: &Certificate,
        now: i64,
    ) -> Result<(), RevocationError> {
        let Some(candidates) = set.by_issuer.get(cert.issuer_der()) else {
            return Ok(());
        };
        let aki = cert.aki();
        let naming: Vec<&Arc<LoadedCrl>> = candidates
            .iter()
            .filter(|c| c.crl.aki.is_none() || aki.is_none() || c.crl.aki == aki)
            .collect();
        if naming.is_empty() {
            return Ok(());
        }
        let Some(crl) = naming.iter().find(|c| c.is_issued_by(issuer)) else {
            for c in &naming {
                c.warn_once("CRL names an issuer whose key does not verify its signature (tampered, or another CA's); not used");
            }
            if self.strict {
                return Err(RevocationError::Unverifiable {
                    depth,
                    issuer: issuer.subject.to_string(),
                    files: naming.iter().map(|c| c.path.clone()).collect(),
                });
            }
            return Ok(());
        };
        let serial = strip_leading_zeros(&cert.serial);
        if let Some((date, reason)) = crl.revoked.get(serial) {
            return Err(RevocationError::Revoked {
                depth,
                subject: cert.subject.to_string(),
                serial: serial.iter().map(|b| format!("{b:02x}")).collect(),
                date: time::format(*date),
                reason: *reason,
                crl: crl.path.clone(),
            });
        }
        if let Some(next) = crl.crl.next_update.filter(|n| *n < now) {
            if self.strict {
                return Err(RevocationError::Stale {
                    depth,
                    issuer: issuer.subject.to_string(),
                    next_update: time::format(next),
                    crl: crl.path.clone(),
                });
            }
            crl.warn_once(
                "CRL is past its nextUpdate: still used (strict_crl = true refuses instead)",
            );
        }
        Ok(())
    }

    /// Sets the age gauges (seconds since each CRL's thisUpdate) as of `now`; called at scrape.
    pub fn update_gauges(&self, now: i64) {
        let set = self.current();
        self.metrics.age.clear();
        for list in set.by_issuer.values() {
            if let Some(c) = list.first() {
                self.metrics
                    .age
                    .get_or_create(&IssuerLabel {
                        issuer: c.crl.issuer_name(),
                    })
                    .set(now.saturating_sub(c.crl.this_update));
            }
        }
    }
}

fn strip_leading_zeros(v: &[u8]) -> &[u8] {
    let mut s = v;
    while s.len() > 1 && s[0] == 0 {
        s = &s[1..];
    }
    s
}

#[cfg(test)]
mod tests;
