//! The SM-DS's own credentials, read from a `pki-tool init` directory: the trusted CI(s), CERT.DS.TLS
//! and CERT.DSauth per curve. Every certificate is validated at start (role, chain, validity, key
//! match); a bad one stops the server with a message naming the file. Also mints the development
//! hierarchy used when no PKI is configured.

use pki_tool::hierarchy::{self, InitOptions, read_cert, read_key};
use pki_tool::layout::Slot;
use pki_tool::validate::{ChainError, Options, verify_chain};
use pki_tool::{Certificate, Curve, PrivateKey, Role};
use std::path::{Path, PathBuf};

/// A CI's key identifier (its subjectKeyIdentifier): how SGP.22 names a CI (`euiccCiPKId`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CiKeyId(Vec<u8>);

impl CiKeyId {
    pub fn new(key_id: Vec<u8>) -> Self {
        CiKeyId(key_id)
    }

    pub fn of(ci: &Certificate) -> Self {
        CiKeyId(ci.key_id())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Why the server's credentials cannot be used. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A certificate or key file that cannot be read (the message names the file).
    #[error("{0}")]
    Read(#[from] pki_tool::Error),
    #[error("{}: {source}", path.display())]
    Chain { path: PathBuf, source: ChainError },
    #[error("{}: not a self-signed CI certificate", .0.display())]
    NotSelfSigned(PathBuf),
    #[error("{}: no CI certificate (expected {expected})", dir.display())]
    NoCi { dir: PathBuf, expected: String },
    #[error("{}: this key does not belong to {}", key.display(), cert.display())]
    KeyMismatch { key: PathBuf, cert: PathBuf },
    #[error(
        "{}: no CERT.DSauth (expected {expected}): every ES11 discovery would fail with 8.9.4/3.7; mint one with `pki-tool issue dsauth --hierarchy {}`",
        dir.display(),
        dir.display()
    )]
    NoDsAuth { dir: PathBuf, expected: String },
    #[error("{}: CERT.DS.TLS must use NIST P-256", .0.display())]
    DsTlsCurve(PathBuf),
    #[error("cannot mint the development PKI in {}: {source}", dir.display())]
    DevPki {
        dir: PathBuf,
        source: pki_tool::Error,
    },
}

fn chain(path: &Path) -> impl Fn(ChainError) -> PkiError + '_ {
    move |source| PkiError::Chain {
        path: path.to_path_buf(),
        source,
    }
}

/// A certificate with its private key, and the SubCA certificates between it and its CI (none in
/// SGP.26 Variant O; the CI SubCA and/or the SM-DS SubCA in v3 Variants A, B, C), nearest first.
#[derive(Debug, Clone)]
pub struct Credential {
    pub cert: Certificate,
    pub key: PrivateKey,
    pub path: PathBuf,
    pub chain: Vec<Certificate>,
}

/// Where a CERT.DSauth sits under its CI: directly (SGP.26 Variant O, which every eUICC can
/// verify) or under SubCAs (v3 Variants A, B, C: only eUICCs with certChainV3VerificationSupport
/// verify it, with the SubCAs sent in `otherCertsInChain`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainShape {
    Direct,
    SubCas,
}

impl Credential {
    pub fn shape(&self) -> ChainShape {
        if self.chain.is_empty() {
            ChainShape::Direct
        } else {
            ChainShape::SubCas
        }
    }

    /// The key identifier of the CI this credential chains to: the authority key identifier of
    /// the topmost certificate of its chain.
    pub fn ci_key_id(&self) -> Option<Vec<u8>> {
        self.chain.last().unwrap_or(&self.cert).aki()
    }
}

/// What the server needs from its PKI.
#[derive(Debug, Clone)]
pub struct ServerPki {
    pub root: PathBuf,
    /// Which SM-DS identity of the hierarchy (`2` for S_SM_DS2_TLS_...); `None`: the first.
    pub instance: Option<String>,
    /// Trusted CIs (one per curve found).
    pub cis: Vec<Certificate>,
    /// The file of each of `cis`.
    pub ci_files: Vec<PathBuf>,
    /// CERT.DS.TLS (NIST P-256: the TLS library signs only with NIST curves).
    pub ds_tls: Credential,
    /// CERT.DSauth, one per CI that has one.
    pub ds_auth: Vec<Credential>,
    /// The DNS name in CERT.DS.TLS.
    pub tls_hostname: Option<String>,
}

fn check_key_file(path: &Path) {
    if hierarchy::key_file_is_exposed(path) {
        tracing::warn!(file = %path.display(), "private key file is readable by group or others; chmod 600 it");
    }
}

fn credential(
    root: &Path,
    slot: &Slot,
    cis: &[Certificate],
    now: i64,
) -> Result<Credential, PkiError> {
    let path = slot.cert_der(root);
    let cert = read_cert(&path)?;
    // The SubCAs between it and the CI, as the hierarchy's chain shape places them.
    let intermediates = slot
        .layout
        .variant()
        .intermediates(slot.role)
        .into_iter()
        .map(|r| read_cert(&Slot::in_layout(slot.layout, r, slot.curve, None).cert_der(root)))
        .collect::<Result<Vec<_>, _>>()?;
    verify_chain(
        &cert,
        &intermediates,
        cis,
        Some(slot.role),
        Options::at(now),
    )
    .map_err(chain(&path))?;
    let key_path = slot.private_key(root);
    check_key_file(&key_path);
    let key = read_key(&key_path)?;
    if key.public_key() != &cert.public_key {
        return Err(PkiError::KeyMismatch {
            key: key_path,
            cert: path,
        });
    }
    Ok(Credential {
        cert,
        key,
        path,
        chain: intermediates,
    })
}

impl ServerPki {
    /// Loads and checks the credentials in `root` at time `now`.
    pub fn load(root: &Path, now: i64) -> Result<Self, PkiError> {
        Self::load_instance(root, now, None)
    }

    /// Loads and checks the credentials of SM-DS `instance` in `root` at time `now`: its
    /// CERT.DS.TLS, and its CERT.DSauth where the hierarchy has one for that instance (else
    /// the first SM-DS's, which any SM-DS under the same CI may sign with just as well).
    pub fn load_instance(root: &Path, now: i64, instance: Option<&str>) -> Result<Self, PkiError> {
        let layout = hierarchy::layout_at(root)?;
        let slot = |role, curve| Slot::in_layout(layout, role, curve, None);
        let own = |role, curve| Slot::in_layout(layout, role, curve, instance.map(str::to_string));
        let mut cis = Vec::new();
        let mut ci_files = Vec::new();
        for curve in Curve::ALL {
            let path = slot(Role::Ci, curve).cert_der(root);
            if !path.exists() {
                continue;
            }
            let ci = read_cert(&path)?;
            if !ci.is_self_signed() {
                return Err(PkiError::NotSelfSigned(path));
            }
            verify_chain(
                &ci,
                &[],
                std::slice::from_ref(&ci),
                Some(Role::Ci),
                Options::at(now),
            )
            .map_err(chain(&path))?;
            cis.push(ci);
            ci_files.push(path);
        }
        if cis.is_empty() {
            return Err(PkiError::NoCi {
                dir: root.to_path_buf(),
                expected: Curve::ALL
                    .map(|c| slot(Role::Ci, c).cert_der(Path::new("")))
                    .map(|p| p.display().to_string())
                    .join(" or "),
            });
        }
        let ds_tls = credential(root, &own(Role::Dstls, Curve::NistP256), &cis, now)?;
        if ds_tls.key.curve() != Curve::NistP256 {
            return Err(PkiError::DsTlsCurve(ds_tls.path));
        }
        let mut ds_auth = Vec::new();
        for curve in Curve::ALL {
            let auth = if own(Role::Dsauth, curve).cert_der(root).exists() {
                own(Role::Dsauth, curve)
            } else {
                slot(Role::Dsauth, curve)
            };
            if auth.cert_der(root).exists() {
                ds_auth.push(credential(root, &auth, &cis, now)?);
            }
        }
        if ds_auth.is_empty() {
            return Err(PkiError::NoDsAuth {
                dir: root.to_path_buf(),
                expected: Curve::ALL
                    .map(|c| slot(Role::Dsauth, c).cert_der(Path::new("")))
                    .map(|p| p.display().to_string())
                    .join(" or "),
            });
        }
        for d in ds_auth.iter().filter(|d| d.shape() == ChainShape::SubCas) {
            let direct = ds_auth
                .iter()
                .any(|o| o.shape() == ChainShape::Direct && o.ci_key_id() == d.ci_key_id());
            if !direct {
                // Only a v3 eUICC that states certChainV3VerificationSupport verifies a SubCA chain.
                tracing::info!(
                    file = %d.path.display(),
                    sub_cas = %d.chain.iter().map(|c| c.subject.to_string()).collect::<Vec<_>>().join(" | "),
                    "CERT.DSauth is issued by a SubCA and sent with it in otherCertsInChain: eUICCs of this CI without certChainV3VerificationSupport (SGP.22 v2) cannot verify it"
                );
            }
        }
        let tls_hostname = ds_tls
            .cert
            .subject_alt_names()
            .iter()
            .find_map(|n| n.strip_prefix("dns:").map(str::to_string));
        Ok(ServerPki {
            root: root.to_path_buf(),
            instance: instance.map(str::to_string),
            cis,
            ci_files,
            ds_tls,
            ds_auth,
            tls_hostname,
        })
    }
}

/// What operators see of a configured certificate (metrics, readiness, the status page, the
/// start-up warning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateSummary {
    /// `CI`, `CERT.DS.TLS`, `CERT.DSauth` or `SubCA`.
    pub what: &'static str,
    pub file: PathBuf,
    pub subject: String,
    pub not_before: i64,
    pub not_after: i64,
}

impl CertificateSummary {
    /// Whole days until notAfter at `now`; negative once expired.
    pub fn days_left(&self, now: i64) -> i64 {
        (self.not_after - now).div_euclid(86_400)
    }

    pub fn expired(&self, now: i64) -> bool {
        self.not_after < now
    }
}

impl ServerPki {
    /// Every certificate the server presents or trusts (CIs, CERT.DS.TLS, CERT.DSauth and the
    /// SubCAs above them), summarised.
    pub fn summaries(&self) -> Vec<CertificateSummary> {
        let summary = |what, c: &Certificate, file: &Path| CertificateSummary {
            what,
            file: file.to_path_buf(),
            subject: c.subject.to_string(),
            not_before: c.not_before,
            not_after: c.not_after,
        };
        let mut out: Vec<CertificateSummary> = self
            .cis
            .iter()
            .zip(&self.ci_files)
            .map(|(c, f)| summary("CI", c, f))
            .collect();
        for (what, cred) in std::iter::once(("CERT.DS.TLS", &self.ds_tls))
            .chain(self.ds_auth.iter().map(|d| ("CERT.DSauth", d)))
        {
            out.push(summary(what, &cred.cert, &cred.path));
            // SubCA files are not kept; their certificates are named by the credential's file.
            out.extend(cred.chain.iter().map(|c| summary("SubCA", c, &cred.path)));
        }
        out
    }
}

/// The hierarchy directory used when none is configured: `<data_dir>/pki`, minted (default
/// profile, both curves, CERT.DS.TLS for `hostname`) if it does not exist yet. Returns the
/// directory and whether it was minted now.
pub fn ensure_dev_pki(data_dir: &Path, hostname: &str) -> Result<(PathBuf, bool), PkiError> {
    let dir = data_dir.join("pki");
    if dir.join(hierarchy::MANIFEST).exists() {
        return Ok((dir, false));
    }
    let minted = InitOptions::lab(&dir, &Curve::ALL, hostname).and_then(|o| hierarchy::init(&o));
    if let Err(source) = minted {
        return Err(PkiError::DevPki { dir, source });
    }
    Ok((dir, true))
}
