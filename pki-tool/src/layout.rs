//! The SGP.26 / osmo-smdpp directory layout and file names, and safe file writing.
//!
//! Two layouts ([`Layout`]). The osmo-smdpp one (`DIR/CertificateIssuer/CERT_CI_ECDSA_NIST.der`,
//! `DIR/DPauth/SK_S_SM_DPauth_ECDSA_BRP.pem`, ...): an `init` output drops into osmo-smdpp's
//! certificate directory unchanged. osmo-smdpp loads every `.der` and `.pem` below
//! `CertificateIssuer/` as a CI certificate, so that folder holds certificates only; the CI's key
//! pair lives in `CI/`, as in the GSMA sets. The SGP.26 v3 one mirrors the GSMA v3 zip's tree for
//! a variant (`CI/CERT_CI_SIG_NIST.der`, `SM-DS/SM_DSSubCA/CERT_SM_DSSubCA_VARA_SIG_NIST.der`).
//! Files are written to a temporary name, synced and renamed, so an interrupted run never leaves a
//! half-written file.

use crate::keys::Curve;
use crate::role::Role;
use crate::variant::Variant;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The folder of the CI's key pair in the osmo-smdpp layout (never `CertificateIssuer/`, which
/// osmo-smdpp reads as certificates only).
pub const CI_KEY_DIR: &str = "CI";

/// How a hierarchy names its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// The osmo-smdpp certificate directory (SGP.26 v1.x names): `CertificateIssuer/CERT_CI_ECDSA_NIST.der`,
    /// `DPauth/SK_S_SM_DPauth_ECDSA_NIST.pem`, ...
    #[default]
    Osmo,
    /// The SGP.26 v3 zip's tree for one variant: `CI/CERT_CI_SIG_NIST.der`,
    /// `SM-DP+/SM_DPauth/CERT_S_SM_DPauth_VARA_SIG_NIST.der`, `EUM_SUB_CA/SK_EUMSubCA_SIG_BRP.pem`, ...
    Sgp26V3(Variant),
}

impl Layout {
    /// The chain shape a directory in this layout holds (the osmo-smdpp layout has no SubCAs).
    pub fn variant(self) -> Variant {
        match self {
            Layout::Osmo => Variant::O,
            Layout::Sgp26V3(v) => v,
        }
    }
}

/// Where one certificate and its key live in a hierarchy directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub role: Role,
    pub curve: Curve,
    /// A second SM-DP+/SM-DS (`2` gives `S_SM_DP2auth_...`), or the EID of an extra eUICC
    /// (stored under `eUICC/<EID>/`).
    pub instance: Option<String>,
    pub layout: Layout,
}

impl Slot {
    /// A slot in the osmo-smdpp layout.
    pub fn new(role: Role, curve: Curve) -> Self {
        Self::in_layout(Layout::Osmo, role, curve, None)
    }

    pub fn with_instance(role: Role, curve: Curve, instance: Option<String>) -> Self {
        Self::in_layout(Layout::Osmo, role, curve, instance)
    }

    pub fn in_layout(layout: Layout, role: Role, curve: Curve, instance: Option<String>) -> Self {
        Slot {
            role,
            curve,
            instance,
            layout,
        }
    }

    /// The role's directory, relative to the hierarchy root.
    pub fn role_dir(&self) -> &'static str {
        match (self.layout, self.role) {
            (Layout::Osmo, Role::Ci) => "CertificateIssuer",
            (Layout::Osmo, Role::Eum) => "EUM",
            (Layout::Osmo, Role::Euicc) => "eUICC",
            (Layout::Osmo, Role::Dpauth) => "DPauth",
            (Layout::Osmo, Role::Dppb) => "DPpb",
            (Layout::Osmo, Role::Dptls) => "DPtls",
            (Layout::Osmo, Role::Dsauth) => "DSauth",
            (Layout::Osmo, Role::Dstls) => "DStls",
            (Layout::Osmo, Role::Cisubca) => "CISubCA",
            (Layout::Osmo, Role::Eumsubca) => "EUMSubCA",
            (Layout::Osmo, Role::Dpsubca) => "DPSubCA",
            (Layout::Osmo, Role::Dssubca) => "DSSubCA",
            (Layout::Sgp26V3(_), Role::Ci) => "CI",
            (Layout::Sgp26V3(_), Role::Cisubca) => "CI_subCA",
            (Layout::Sgp26V3(_), Role::Eum) => "EUM",
            (Layout::Sgp26V3(_), Role::Eumsubca) => "EUM_SUB_CA",
            (Layout::Sgp26V3(Variant::O), Role::Euicc) => "eUICC",
            (Layout::Sgp26V3(_), Role::Euicc) => "EUICC",
            (Layout::Sgp26V3(_), Role::Dpsubca) => "SM-DP+/SM_DPSubCA",
            (Layout::Sgp26V3(_), Role::Dpauth) => "SM-DP+/SM_DPauth",
            (Layout::Sgp26V3(_), Role::Dppb) => "SM-DP+/SM_DPpb",
            (Layout::Sgp26V3(_), Role::Dptls) => "SM-DP+/SM_DPtls",
            (Layout::Sgp26V3(_), Role::Dssubca) => "SM-DS/SM_DSSubCA",
            (Layout::Sgp26V3(_), Role::Dsauth) => "SM-DS/SM_DSauth",
            (Layout::Sgp26V3(_), Role::Dstls) => "SM-DS/SM_DStls",
        }
    }

    /// The directory of this slot, relative to the hierarchy root.
    pub fn dir(&self) -> PathBuf {
        let base = PathBuf::from(self.role_dir());
        match (&self.instance, self.role) {
            (Some(eid), Role::Euicc) => base.join(eid),
            _ => base,
        }
    }

    /// The common part of the certificate's file name, e.g. `S_SM_DPauth_ECDSA_NIST` or
    /// `S_SM_DPauth_VARA_SIG_NIST`.
    pub fn stem(&self) -> String {
        self.name(File::Certificate)
    }

    fn name(&self, file: File) -> String {
        let c = self.curve.file_suffix();
        let inst = match self.role {
            Role::Euicc => "",
            _ => self.instance.as_deref().unwrap_or(""),
        };
        let Layout::Sgp26V3(variant) = self.layout else {
            return match self.role {
                Role::Ci => format!("CI_ECDSA_{c}"),
                Role::Eum => format!("EUM_ECDSA_{c}"),
                Role::Euicc => format!("EUICC_ECDSA_{c}"),
                Role::Dpauth => format!("S_SM_DP{inst}auth_ECDSA_{c}"),
                Role::Dppb => format!("S_SM_DP{inst}pb_ECDSA_{c}"),
                Role::Dptls => format!("S_SM_DP{inst}_TLS_{c}"),
                Role::Dsauth => format!("S_SM_DS{inst}auth_ECDSA_{c}"),
                Role::Dstls => format!("S_SM_DS{inst}_TLS_{c}"),
                Role::Cisubca => format!("CISubCA_ECDSA_{c}"),
                Role::Eumsubca => format!("EUMSubCA_ECDSA_{c}"),
                Role::Dpsubca => format!("DPSubCA_ECDSA_{c}"),
                Role::Dssubca => format!("DSSubCA_ECDSA_{c}"),
            };
        };
        // Certificates carry the variant (`_VARA`), keys do not; Variant O's CI, EUM and eUICC
        // certificates carry none either. The SubCA key files are named inconsistently in the
        // GSMA tree (`SK_SM_DPSubCA_...` next to `PK_DPSubCA_...`); we follow it.
        let var = match (file, variant, self.role) {
            (File::Certificate, Variant::O, Role::Ci | Role::Eum | Role::Euicc) => String::new(),
            (File::Certificate, _, Role::Ci | Role::Cisubca) => String::new(),
            (File::Certificate, v, _) => format!("_VAR{v}"),
            _ => String::new(),
        };
        match self.role {
            Role::Ci => format!("CI_SIG_{c}"),
            Role::Cisubca => format!("CISubCA_SIG_{c}"),
            Role::Eum => format!("EUM{var}_SIG_{c}"),
            Role::Eumsubca => format!("EUMSubCA{var}_SIG_{c}"),
            Role::Euicc => format!("EUICC{var}_SIG_{c}"),
            Role::Dpsubca if file == File::PublicKey => format!("DPSubCA_SIG_{c}"),
            Role::Dpsubca => format!("SM_DPSubCA{var}_SIG_{c}"),
            Role::Dssubca if file == File::PublicKey => format!("DSSubCA_SIG_{c}"),
            Role::Dssubca => format!("SM_DSSubCA{var}_SIG_{c}"),
            Role::Dpauth => format!("S_SM_DP{inst}auth{var}_SIG_{c}"),
            Role::Dppb => format!("S_SM_DP{inst}pb{var}_SIG_{c}"),
            Role::Dptls => format!("S_SM_DP{inst}{var}_TLS_{c}"),
            Role::Dsauth => format!("S_SM_DS{inst}auth{var}_SIG_{c}"),
            Role::Dstls => format!("S_SM_DS{inst}{var}_TLS_{c}"),
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

    /// The directory of this slot's key files: the certificate's, except for the CI in the
    /// osmo-smdpp layout, whose keys stay out of `CertificateIssuer/` (see the module doc).
    pub fn key_dir(&self) -> PathBuf {
        match (self.layout, self.role) {
            (Layout::Osmo, Role::Ci) => PathBuf::from(CI_KEY_DIR),
            _ => self.dir(),
        }
    }

    /// The private key's file name, e.g. `SK_S_SM_DPauth_SIG_NIST.pem`.
    pub fn private_key_name(&self) -> String {
        format!("SK_{}.pem", self.name(File::PrivateKey))
    }

    pub fn private_key(&self, root: &Path) -> PathBuf {
        root.join(self.key_dir()).join(self.private_key_name())
    }

    pub fn public_key(&self, root: &Path) -> PathBuf {
        root.join(self.key_dir())
            .join(format!("PK_{}.pem", self.name(File::PublicKey)))
    }

    /// Where a set keeps this slot's certificate: its path in the layout, and for the CI in the
    /// osmo-smdpp layout also `CI/`, where the GSMA sets and osmocom copies keep it.
    pub fn cert_candidates(&self, root: &Path) -> Vec<PathBuf> {
        let mut out = vec![self.cert_der(root)];
        if self.key_dir() != self.dir() {
            out.push(
                root.join(self.key_dir())
                    .join(format!("CERT_{}.der", self.stem())),
            );
        }
        out
    }

    /// The private key of this slot in a hierarchy written by this or an earlier version (which
    /// kept the CI's keys in `CertificateIssuer/`): the first that exists.
    pub fn existing_private_key(&self, root: &Path) -> PathBuf {
        self.key_candidates(root)
            .into_iter()
            .find(|p| p.exists())
            .unwrap_or_else(|| self.private_key(root))
    }

    /// Whether a PEM copy of the certificate is written too: in the osmo-smdpp layout the CI and
    /// TLS certificates (as SGP.26 v1.x), in the v3 layout the CA certificates (as the v3 zip).
    pub fn has_pem_copy(&self) -> bool {
        match self.layout {
            Layout::Osmo => matches!(self.role, Role::Ci | Role::Dptls | Role::Dstls),
            Layout::Sgp26V3(_) => self.role.is_ca(),
        }
    }

    /// Where a set keeps this slot's private key: the SGP.26 zip, the osmocom copies and this
    /// tool keep the CI's in `CI/`; osmo-smdpp-style folders and earlier versions of this tool,
    /// in `CertificateIssuer/`.
    pub fn key_candidates(&self, root: &Path) -> Vec<PathBuf> {
        let name = self.private_key_name();
        let mut dirs = vec![root.join(self.key_dir())];
        if self.key_dir() != self.dir() {
            dirs.push(root.join(self.dir()));
        }
        dirs.into_iter().map(|d| d.join(&name)).collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum File {
    Certificate,
    PrivateKey,
    PublicKey,
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

/// The regular files below `root` (paths relative to it, sorted), at most `max_depth` directory
/// levels down. Hidden entries (temporaries of atomic writes) are skipped, and so is every entry
/// `skip` names (given its relative path and whether it is a directory). Symbolic links are
/// followed; a dangling one is skipped, and `max_depth` bounds loops.
pub fn files_below(
    root: &Path,
    max_depth: usize,
    skip: &dyn Fn(&Path, bool) -> bool,
) -> std::io::Result<Vec<PathBuf>> {
    fn walk(
        root: &Path,
        rel: &Path,
        depth: usize,
        max_depth: usize,
        skip: &dyn Fn(&Path, bool) -> bool,
        out: &mut Vec<PathBuf>,
    ) -> std::io::Result<()> {
        for entry in std::fs::read_dir(root.join(rel))? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = rel.join(entry.file_name());
            let Ok(meta) = std::fs::metadata(root.join(&path)) else {
                continue;
            };
            if skip(&path, meta.is_dir()) {
                continue;
            }
            if meta.is_dir() && depth < max_depth {
                walk(root, &path, depth + 1, max_depth, skip, out)?;
            } else if meta.is_file() {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(root, Path::new(""), 0, max_depth, skip, &mut out)?;
    out.sort();
    Ok(out)
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
