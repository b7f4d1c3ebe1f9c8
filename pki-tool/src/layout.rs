//! The SGP.26 / osmo-smdpp directory layout and file names, and safe file writing.
//!
//! `DIR/CertificateIssuer/CERT_CI_ECDSA_NIST.der`, `DIR/DPauth/SK_S_SM_DPauth_ECDSA_BRP.pem`, ...:
//! an `init` output drops into osmo-smdpp's certificate directory unchanged. osmo-smdpp loads
//! every `.der` and `.pem` below `CertificateIssuer/` as a CI certificate, so that folder holds
//! certificates only; the CI's key pair lives in `CI/`, as in the GSMA sets. Files are written to a
//! temporary name, synced and renamed, so an interrupted run never leaves a half-written file.

use crate::keys::Curve;
use crate::role::Role;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The folder of the CI's key pair (never `CertificateIssuer/`, which osmo-smdpp reads as
/// certificates only).
pub const CI_KEY_DIR: &str = "CI";

/// Where one certificate and its key live in a hierarchy directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub role: Role,
    pub curve: Curve,
    /// A second SM-DP+/SM-DS (`2` gives `S_SM_DP2auth_...`), or the EID of an extra eUICC
    /// (stored under `eUICC/<EID>/`).
    pub instance: Option<String>,
}

impl Slot {
    pub fn new(role: Role, curve: Curve) -> Self {
        Slot {
            role,
            curve,
            instance: None,
        }
    }

    pub fn with_instance(role: Role, curve: Curve, instance: Option<String>) -> Self {
        Slot {
            role,
            curve,
            instance,
        }
    }

    /// The role's directory as osmo-smdpp names it.
    pub fn role_dir(role: Role) -> &'static str {
        match role {
            Role::Ci => "CertificateIssuer",
            Role::Eum => "EUM",
            Role::Euicc => "eUICC",
            Role::Dpauth => "DPauth",
            Role::Dppb => "DPpb",
            Role::Dptls => "DPtls",
            Role::Dsauth => "DSauth",
            Role::Dstls => "DStls",
        }
    }

    /// The directory of this slot, relative to the hierarchy root.
    pub fn dir(&self) -> PathBuf {
        let base = PathBuf::from(Self::role_dir(self.role));
        match (&self.instance, self.role) {
            (Some(eid), Role::Euicc) => base.join(eid),
            _ => base,
        }
    }

    /// The common part of the file names, e.g. `S_SM_DPauth_ECDSA_NIST`.
    pub fn stem(&self) -> String {
        let c = self.curve.file_suffix();
        let inst = match self.role {
            Role::Euicc => "",
            _ => self.instance.as_deref().unwrap_or(""),
        };
        match self.role {
            Role::Ci => format!("CI_ECDSA_{c}"),
            Role::Eum => format!("EUM_ECDSA_{c}"),
            Role::Euicc => format!("EUICC_ECDSA_{c}"),
            Role::Dpauth => format!("S_SM_DP{inst}auth_ECDSA_{c}"),
            Role::Dppb => format!("S_SM_DP{inst}pb_ECDSA_{c}"),
            Role::Dptls => format!("S_SM_DP{inst}_TLS_{c}"),
            Role::Dsauth => format!("S_SM_DS{inst}auth_ECDSA_{c}"),
            Role::Dstls => format!("S_SM_DS{inst}_TLS_{c}"),
        }
    }

    pub fn cert_der(&self, root: &Path) -> PathBuf {
        root.join(self.dir())
            .join(format!("CERT_{}.der", self.stem()))
    }

    pub fn cert_pem(&self, root: &Path) -> PathBuf {
        root.join(self.dir())
            .join(format!("CERT_{}.pem", self.stem()))
    }

    /// The directory of this slot's key files: the certificate's, except for the CI, whose keys
    /// stay out of `CertificateIssuer/` (see the module doc).
    pub fn key_dir(&self) -> PathBuf {
        match self.role {
            Role::Ci => PathBuf::from(CI_KEY_DIR),
            _ => self.dir(),
        }
    }

    pub fn private_key(&self, root: &Path) -> PathBuf {
        root.join(self.key_dir())
            .join(format!("SK_{}.pem", self.stem()))
    }

    pub fn public_key(&self, root: &Path) -> PathBuf {
        root.join(self.key_dir())
            .join(format!("PK_{}.pem", self.stem()))
    }

    /// The private key of this slot in a hierarchy written by this or an earlier version (which
    /// kept the CI's keys in `CertificateIssuer/`): the first that exists.
    pub fn existing_private_key(&self, root: &Path) -> PathBuf {
        self.key_candidates(root)
            .into_iter()
            .find(|p| p.exists())
            .unwrap_or_else(|| self.private_key(root))
    }

    /// Whether a PEM copy of the certificate is written too (CI and TLS certificates, as in SGP.26).
    pub fn has_pem_copy(&self) -> bool {
        matches!(self.role, Role::Ci | Role::Dptls | Role::Dstls)
    }

    /// Where a set keeps this slot's private key: the SGP.26 zip, the osmocom copies and this
    /// tool keep the CI's in `CI/`; osmo-smdpp-style folders and earlier versions of this tool,
    /// in `CertificateIssuer/`.
    pub fn key_candidates(&self, root: &Path) -> Vec<PathBuf> {
        let name = format!("SK_{}.pem", self.stem());
        let mut dirs = vec![root.join(self.key_dir())];
        if self.role == Role::Ci {
            dirs.push(root.join(self.dir()));
        }
        dirs.into_iter().map(|d| d.join(&name)).collect()
    }
}

/// One file to be written.
#[derive(Debug, Clone)]
pub struct PlannedFile {
    pub path: PathBuf,
    pub contents: Vec<u8>,
    /// Private keys are 0600.
    pub secret: bool,
}

/// Writes `contents` to `path` through a temporary file in the same directory, then renames it.
pub fn write_atomic(
    path: &Path,
    contents: &[u8],
    secret: bool,
    sync: bool,
) -> Result<(), crate::Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| crate::Error::file(dir, format!("cannot create directory: {e}")))?;
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(if secret { 0o600 } else { 0o644 });
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(contents)?;
        if sync {
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        crate::Error::file(path, format!("cannot write: {e}"))
    })
}

/// Writes a directory of files at once: they are written into a hidden staging directory that is
/// then renamed into place, so the directory appears complete or not at all. With `force` an
/// existing directory of that name is replaced.
pub fn write_dir_atomic(
    dir: &Path,
    files: &[(String, Vec<u8>, bool)],
    force: bool,
) -> Result<(), crate::Error> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("dir");
    let staging = parent.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        std::fs::create_dir_all(parent)?;
        std::fs::create_dir(&staging)?;
        for (file, contents, secret) in files {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(if *secret { 0o600 } else { 0o644 });
            }
            opts.open(staging.join(file))?.write_all(contents)?;
        }
        if force && dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        std::fs::rename(&staging, dir)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_dir_all(&staging);
        crate::Error::file(dir, format!("cannot write: {e}"))
    })
}

/// Writes a set of files: refuses (before writing anything) if one exists and `force` is off, and
/// removes what it wrote if a later file fails, so a failed run leaves the directory as it was.
pub fn write_all(files: &[PlannedFile], force: bool) -> Result<(), crate::Error> {
    if !force {
        let existing: Vec<String> = files
            .iter()
            .filter(|f| f.path.exists())
            .map(|f| f.path.display().to_string())
            .collect();
        if let Some(first) = existing.first() {
            return Err(crate::Error::file(
                first,
                format!(
                    "already exists{} (use --force to overwrite)",
                    if existing.len() > 1 {
                        format!(", as do {} other files", existing.len() - 1)
                    } else {
                        String::new()
                    }
                ),
            ));
        }
    }
    let mut written: Vec<&Path> = Vec::new();
    for f in files {
        let existed = f.path.exists();
        if let Err(e) = write_atomic(&f.path, &f.contents, f.secret, true) {
            for w in written {
                let _ = std::fs::remove_file(w);
            }
            return Err(e);
        }
        if !existed {
            written.push(&f.path);
        }
    }
    Ok(())
}
