//! Whole hierarchies on disk: `init` mints CI, EUM, eUICC, DPauth, DPpb, DPtls, DSauth and DStls
//! per curve; an existing hierarchy (found by its `pki-tool.toml` manifest) can issue more
//! certificates and batches of eUICCs. Everything is minted and checked in memory before any file
//! is written.

use crate::Error;
use crate::cert::Certificate;
use crate::eid::Eid;
use crate::keys::{Curve, PrivateKey};
use crate::layout::{self, Layout, PlannedFile, Slot};
use crate::mint::{self, MintInput, Signer};
use crate::oid::known;
use crate::profile::{ExtensionSpec, Profile, SerialSpec, Template, Vars};
use crate::role::Role;
use crate::validate::{self, Options};
use crate::variant::Variant;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The manifest file at the root of a hierarchy.
pub const MANIFEST: &str = "pki-tool.toml";

/// What `init` recorded about a hierarchy, so later commands mint consistently.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub profile: String,
    /// The SGP.26 v3 chain shape (absent in manifests written before variants: O).
    #[serde(default)]
    pub variant: Variant,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templates: Option<PathBuf>,
    pub curves: Vec<Curve>,
    pub eid: String,
    pub smdp_fqdn: String,
    pub smds_fqdn: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, String>,
}

/// Where a key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Generated,
    Loaded(PathBuf),
}

/// A certificate just minted, with its key.
#[derive(Debug, Clone)]
pub struct Minted {
    pub slot: Slot,
    pub cert: Certificate,
    pub key: PrivateKey,
    pub key_source: KeySource,
}

impl Minted {
    /// The files this certificate is stored as.
    pub fn files(&self, root: &Path) -> Vec<PlannedFile> {
        let mut out = vec![PlannedFile {
            path: self.slot.cert_der(root),
            contents: self.cert.der().to_vec(),
            secret: false,
        }];
        if self.slot.has_pem_copy() {
            out.push(PlannedFile {
                path: self.slot.cert_pem(root),
                contents: self.cert.to_pem().into_bytes(),
                secret: false,
            });
        }
        out.push(PlannedFile {
            path: self.slot.private_key(root),
            contents: self.key.to_pem().into_bytes(),
            secret: true,
        });
        out.push(PlannedFile {
            path: self.slot.public_key(root),
            contents: self.key.public_key().to_pem().into_bytes(),
            secret: false,
        });
        out
    }
}

/// Reads a certificate file (DER or PEM), naming the file in any error.
pub fn read_cert(path: &Path) -> Result<Certificate, Error> {
    let data = std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    Certificate::from_der_or_pem(&data)
        .map_err(|e| Error::file(path, format!("not a valid certificate: {e}")))
}

/// Reads a certificate file with any intermediates after the first certificate (a PEM bundle),
/// naming the file in any error.
pub fn read_cert_chain(path: &Path) -> Result<Vec<Certificate>, Error> {
    let data = std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    Certificate::all_from_der_or_pem(&data)
        .map_err(|e| Error::file(path, format!("not a valid certificate: {e}")))
}

/// Reads a private key file (SEC1 or PKCS#8 PEM), naming the file in any error.
pub fn read_key(path: &Path) -> Result<PrivateKey, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    PrivateKey::from_pem(&text)
        .map_err(|e| Error::file(path, format!("not a usable private key: {e}")))
}

/// Whether a key file is readable by group or others (it should not be).
pub fn key_file_is_exposed(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

/// A built-in profile, optionally with templates from a directory replacing built-in ones.
pub fn load_profile(
    name: &str,
    variant: Variant,
    templates: Option<&Path>,
) -> Result<Profile, Error> {
    let p = Profile::builtin_variant(name, variant).map_err(Error::Usage)?;
    match templates {
        Some(dir) => p.with_overrides(dir).map_err(Error::Template),
        None => Ok(p),
    }
}

/// The file layout a profile writes: SGP.26 v3 names for `sgp26-v3`, osmo-smdpp's otherwise.
pub fn layout_of(profile: &Profile) -> Layout {
    if profile.is_v3() {
        Layout::Sgp26V3(profile.variant)
    } else {
        Layout::Osmo
    }
}

/// How the files of the directory `root` are named: as its `pki-tool.toml` records, or the
/// osmo-smdpp layout for a directory without one (a GSMA set put together by hand).
pub fn layout_at(root: &Path) -> Result<Layout, Error> {
    if !root.join(MANIFEST).exists() {
        return Ok(Layout::Osmo);
    }
    Ok(layout_of(&Hierarchy::open(root)?.profile))
}

/// Files with this exact name below `dir` (at most `depth` levels down), in path order.
fn find_named(dir: &Path, name: &str, depth: usize) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() && depth > 0 {
            out.extend(find_named(&path, name, depth - 1));
        } else if path.file_name().is_some_and(|n| n == name) {
            out.push(path);
        }
    }
    out
}

/// The key file for `slot` in a `--keys` directory: at the slot's own path in that directory if
/// it is there, else the one file of that name anywhere below it (so the GSMA zip's folders, the
/// osmocom copies and role-named folders all work). Two candidates are an error, not a guess.
fn find_key(slot: &Slot, dir: &Path) -> Result<Option<PathBuf>, Error> {
    if let Some(p) = slot.key_candidates(dir).into_iter().find(|p| p.exists()) {
        return Ok(Some(p));
    }
    let name = slot.private_key_name();
    let mut found = find_named(dir, &name, 6);
    match found.len() {
        0 | 1 => Ok(found.pop()),
        n => Err(Error::file(
            dir,
            format!(
                "{n} files named {name} below it ({}); point --keys at the folder of one set",
                found
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// The placeholder values every template may use.
pub fn base_vars(
    eid: &Eid,
    smdp_fqdn: &str,
    smds_fqdn: &str,
    sets: &BTreeMap<String, String>,
) -> Vars {
    let mut v = Vars::default();
    v.set("eid", eid.as_str());
    v.set("ein", &eid.as_str()[..8]);
    v.set("smdp_fqdn", smdp_fqdn);
    v.set("smds_fqdn", smds_fqdn);
    for (k, val) in sets {
        v.set(k, val.clone());
    }
    v
}

fn obtain_key(slot: &Slot, keys: Option<&Path>) -> Result<(PrivateKey, KeySource), Error> {
    let found = match keys {
        Some(dir) => find_key(slot, dir)?,
        None => None,
    };
    let Some(candidate) = found else {
        let key = PrivateKey::generate(slot.curve).map_err(|e| Error::Random(e.to_string()))?;
        return Ok((key, KeySource::Generated));
    };
    let key = read_key(&candidate)?;
    if key.curve() != slot.curve {
        return Err(Error::file(
            &candidate,
            format!(
                "curve mismatch: the key is {} but the {} slot is {}",
                key.curve(),
                slot.role,
                slot.curve
            ),
        ));
    }
    Ok((key, KeySource::Loaded(candidate)))
}

fn mint_one(
    template: &Template,
    vars: &Vars,
    key: &PrivateKey,
    signer: Signer<'_>,
    now: i64,
) -> Result<Certificate, Error> {
    mint::mint(&MintInput {
        template,
        vars,
        subject_key: key.public_key(),
        signer,
        now,
    })
    .map_err(|e| Error::Template(format!("{} template: {e}", template.role)))
}

/// Options of `init`.
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub out: PathBuf,
    pub curves: Vec<Curve>,
    pub profile: String,
    pub variant: Variant,
    pub templates: Option<PathBuf>,
    pub keys: Option<PathBuf>,
    pub eid: Eid,
    pub smdp_fqdn: String,
    pub smds_fqdn: String,
    pub sets: BTreeMap<String, String>,
    pub force: bool,
    pub now: i64,
}

/// The EID of the SGP.26 test eUICC, used as the default.
pub const SGP26_EID: &str = "89049032123451234512345678901235";

impl InitOptions {
    /// A lab hierarchy with fresh keys (default profile) in `out` on `curves`: the SGP.26 EID,
    /// SM-DP+ `testsmdpplus1.example.com`, SM-DS `smds_fqdn`.
    pub fn lab(out: &Path, curves: &[Curve], smds_fqdn: &str) -> Result<Self, Error> {
        Ok(InitOptions {
            out: out.to_path_buf(),
            curves: curves.to_vec(),
            profile: "default".into(),
            variant: Variant::O,
            templates: None,
            keys: None,
            eid: Eid::parse(SGP26_EID)?,
            smdp_fqdn: "testsmdpplus1.example.com".into(),
            smds_fqdn: smds_fqdn.into(),
            sets: BTreeMap::new(),
            force: false,
            now: crate::time::now(),
        })
    }
}

/// Mints a whole hierarchy in memory (every role of the profile's variant, issuers first), checks
/// every chain, then writes it.
pub fn init(opts: &InitOptions) -> Result<Vec<Minted>, Error> {
    if opts.curves.is_empty() {
        return Err(Error::Usage("no curve selected".into()));
    }
    if let Some(dir) = &opts.keys
        && !dir.is_dir()
    {
        return Err(Error::file(
            dir,
            "--keys: not a directory (no key would be loaded from it)",
        ));
    }
    let profile = load_profile(&opts.profile, opts.variant, opts.templates.as_deref())?;
    profile
        .check_sets(opts.sets.keys(), None)
        .map_err(Error::Usage)?;
    check_dns_name("--smdp-fqdn", &opts.smdp_fqdn)?;
    check_dns_name("--smds-fqdn", &opts.smds_fqdn)?;
    let layout = layout_of(&profile);
    let variant = profile.variant;
    let vars = base_vars(&opts.eid, &opts.smdp_fqdn, &opts.smds_fqdn, &opts.sets);
    let keys = opts.keys.as_deref();
    let mut minted: Vec<Minted> = Vec::new();
    for &curve in &opts.curves {
        let first = minted.len();
        for role in variant.roles() {
            let slot = Slot::in_layout(layout, role, curve, None);
            let (key, key_source) = obtain_key(&slot, keys)?;
            let template = profile.get(role).map_err(Error::Template)?;
            let of = |r: Role| {
                minted[first..]
                    .iter()
                    .find(|m| m.slot.role == r)
                    .ok_or_else(|| Error::Template(format!("{r} is needed before {role}")))
            };
            if role == Role::Ci {
                let cert = mint_one(template, &vars, &key, Signer::SelfSigned(&key), opts.now)?;
                minted.push(Minted {
                    slot,
                    cert,
                    key,
                    key_source,
                });
                continue;
            }
            let issuer = of(variant.issuer(role))?;
            let chain = variant
                .intermediates(role)
                .into_iter()
                .map(|r| of(r).map(|m| m.cert.clone()))
                .collect::<Result<Vec<_>, _>>()?;
            let ci = of(Role::Ci)?;
            let mut these = vec![(slot, key, key_source, vars.clone())];
            // The template's further instances (SGP.26 v1.5's DP2), with their own values.
            for extra in &template.instances {
                let slot = Slot::in_layout(layout, role, curve, Some(extra.instance.clone()));
                let (key, key_source) = obtain_key(&slot, keys)?;
                let mut v = vars.clone();
                for (k, val) in &extra.vars {
                    v.set(k, val.clone());
                }
                these.push((slot, key, key_source, v));
            }
            let mut done = Vec::new();
            for (slot, key, key_source, vars) in these {
                let cert = mint_one(
                    template,
                    &vars,
                    &key,
                    Signer::Issuer(&issuer.cert, &issuer.key),
                    opts.now,
                )?;
                check(&cert, &chain, &ci.cert, role, opts.now)?;
                done.push(Minted {
                    slot,
                    cert,
                    key,
                    key_source,
                });
            }
            minted.extend(done);
        }
    }

    let manifest = Manifest {
        profile: opts.profile.clone(),
        variant,
        templates: opts.templates.clone(),
        curves: opts.curves.clone(),
        eid: opts.eid.to_string(),
        smdp_fqdn: opts.smdp_fqdn.clone(),
        smds_fqdn: opts.smds_fqdn.clone(),
        vars: opts.sets.clone(),
    };
    let mut files: Vec<PlannedFile> = minted.iter().flat_map(|m| m.files(&opts.out)).collect();
    files.push(PlannedFile {
        path: opts.out.join(MANIFEST),
        contents: toml::to_string(&manifest)
            .map_err(|e| Error::Usage(format!("cannot encode manifest: {e}")))?
            .into_bytes(),
        secret: false,
    });
    layout::write_all(&files, opts.force)?;
    Ok(minted)
}

/// A host name for a dNSName SAN (RFC 1035 letters, digits and hyphens, RFC 5280's preferred
/// name syntax): `bad host!` would be written as it is and fail at every TLS client.
pub fn check_dns_name(flag: &str, name: &str) -> Result<(), Error> {
    let bad = |why: &str| Error::Usage(format!("{flag} {name:?}: {why}"));
    if name.is_empty() || name.len() > 253 {
        return Err(bad("a host name has 1 to 253 characters"));
    }
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(bad("each dot-separated label has 1 to 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(bad(
                "a host name has only letters, digits, hyphens and dots",
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(bad("a label neither starts nor ends with a hyphen"));
        }
    }
    Ok(())
}

/// A freshly minted chain must validate; anything else is a template problem worth reporting now.
fn check(
    cert: &Certificate,
    intermediates: &[Certificate],
    ci: &Certificate,
    role: Role,
    now: i64,
) -> Result<(), Error> {
    // Fixed-date profiles (sgp26-v1.5) are checked at their own notBefore when that is in the future.
    let at = now.max(cert.not_before);
    validate::verify_chain(
        cert,
        intermediates,
        std::slice::from_ref(ci),
        Some(role),
        Options::at(at),
    )
    .map(|_| ())
    .map_err(|e| {
        Error::Template(format!(
            "the minted {role} certificate does not validate: {e}"
        ))
    })
}

/// An existing hierarchy directory.
#[derive(Debug, Clone)]
pub struct Hierarchy {
    pub root: PathBuf,
    pub manifest: Manifest,
    pub profile: Profile,
}

/// Options of `issue`.
#[derive(Debug, Clone)]
pub struct IssueOptions {
    pub role: Role,
    pub curve: Curve,
    /// `2` for a second SM-DP+ (`S_SM_DP2auth_...`); for an eUICC, its EID is the instance.
    pub instance: Option<String>,
    pub eid: Option<Eid>,
    pub sets: BTreeMap<String, String>,
    /// Reuse this key instead of generating one.
    pub key: Option<PathBuf>,
    pub force: bool,
    pub now: i64,
}

/// Options of `euicc-batch`.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    pub curve: Curve,
    pub count: usize,
    pub first: Eid,
    pub out: PathBuf,
    pub threads: usize,
    pub force: bool,
    /// Skip the EIDs whose directory is complete (certificate and the key that belongs to it) and
    /// redo the others: how an interrupted batch is finished.
    pub resume: bool,
    /// Set (by a signal handler) to stop after the eUICCs being written; each directory appears
    /// complete or not at all.
    pub cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    pub now: i64,
}

/// What a batch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchReport {
    /// Every EID of the batch, in order.
    pub eids: Vec<Eid>,
    /// eUICCs written by this run.
    pub written: usize,
    /// eUICCs found complete and kept (`resume`).
    pub skipped: usize,
    /// Whether the run was cancelled before the end.
    pub cancelled: bool,
}

/// Whether `dir` holds a complete eUICC of `stem`: its certificate and the key that belongs to it.
fn euicc_complete(dir: &Path, stem: &str) -> bool {
    let cert = read_cert(&dir.join(format!("CERT_{stem}.der")));
    let key = read_key(&dir.join(format!("SK_{stem}.pem")));
    matches!((cert, key), (Ok(c), Ok(k)) if k.public_key() == &c.public_key)
}

impl Hierarchy {
    pub fn open(root: &Path) -> Result<Self, Error> {
        let path = root.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::file(
                &path,
                format!(
                    "cannot read hierarchy manifest ({e}); is this a `pki-tool init` directory?"
                ),
            )
        })?;
        let manifest: Manifest = toml::from_str(&text).map_err(|e| Error::file(&path, e))?;
        let profile = load_profile(
            &manifest.profile,
            manifest.variant,
            manifest.templates.as_deref(),
        )?;
        Ok(Hierarchy {
            root: root.to_path_buf(),
            manifest,
            profile,
        })
    }

    /// The slot of `role` on `curve` in this hierarchy's layout.
    pub fn slot(&self, role: Role, curve: Curve, instance: Option<String>) -> Slot {
        Slot::in_layout(layout_of(&self.profile), role, curve, instance)
    }

    /// The certificates between `role` and the CI on `curve`, nearest first.
    pub fn intermediates(&self, role: Role, curve: Curve) -> Result<Vec<Certificate>, Error> {
        self.profile
            .variant
            .intermediates(role)
            .into_iter()
            .map(|r| self.cert(&self.slot(r, curve, None)))
            .collect()
    }

    pub fn cert(&self, slot: &Slot) -> Result<Certificate, Error> {
        read_cert(&slot.cert_der(&self.root))
    }

    pub fn key(&self, slot: &Slot) -> Result<PrivateKey, Error> {
        read_key(&slot.existing_private_key(&self.root))
    }

    fn vars(&self, eid: Option<&Eid>, sets: &BTreeMap<String, String>) -> Result<Vars, Error> {
        let default_eid = Eid::parse(&self.manifest.eid)?;
        let mut all = self.manifest.vars.clone();
        all.extend(sets.iter().map(|(k, v)| (k.clone(), v.clone())));
        Ok(base_vars(
            eid.unwrap_or(&default_eid),
            &self.manifest.smdp_fqdn,
            &self.manifest.smds_fqdn,
            &all,
        ))
    }

    /// The issuer certificate and key for a role on a curve.
    fn issuer(&self, role: Role, curve: Curve) -> Result<(Certificate, PrivateKey), Error> {
        let slot = self.slot(self.profile.variant.issuer(role), curve, None);
        let cert = self.cert(&slot)?;
        let key = self.key(&slot)?;
        if key.public_key() != &cert.public_key {
            return Err(Error::file(
                slot.existing_private_key(&self.root),
                "this key does not belong to the certificate next to it",
            ));
        }
        Ok((cert, key))
    }

    /// Issues one more certificate under the hierarchy's CI (or EUM, for an eUICC) and writes it.
    pub fn issue(&self, opts: &IssueOptions) -> Result<Minted, Error> {
        if opts.role == Role::Ci {
            return Err(Error::Usage(
                "the CI is created by `pki-tool init`, not issued".into(),
            ));
        }
        let instance = match opts.role {
            Role::Euicc => opts.eid.map(|e| e.to_string()),
            _ => opts.instance.clone(),
        };
        let mut template = self.profile.get(opts.role).map_err(Error::Usage)?.clone();
        let slot = self.slot(opts.role, opts.curve, instance);
        let (issuer_cert, issuer_key) = self.issuer(opts.role, opts.curve)?;
        let (key, key_source) = match &opts.key {
            Some(p) => {
                let k = read_key(p)?;
                if k.curve() != opts.curve {
                    return Err(Error::file(
                        p,
                        format!(
                            "curve mismatch: the key is {} but --curve is {}",
                            k.curve(),
                            opts.curve
                        ),
                    ));
                }
                (k, KeySource::Loaded(p.clone()))
            }
            None => (
                PrivateKey::generate(opts.curve).map_err(|e| Error::Random(e.to_string()))?,
                KeySource::Generated,
            ),
        };
        self.profile
            .check_sets(opts.sets.keys(), Some(opts.role))
            .map_err(Error::Usage)?;
        let vars = self.vars(opts.eid.as_ref(), &opts.sets)?;
        if opts.role == Role::Euicc
            && matches!(template.serial, SerialSpec::Fixed { .. })
            && opts.eid.is_some()
        {
            // A fixed serial would repeat the first eUICC's (issuer, serial) pair.
            template.serial = SerialSpec::Eid;
        }
        let cert = mint_one(
            &template,
            &vars,
            &key,
            Signer::Issuer(&issuer_cert, &issuer_key),
            opts.now,
        )?;
        let ci = self.cert(&self.slot(Role::Ci, opts.curve, None))?;
        let intermediates = self.intermediates(opts.role, opts.curve)?;
        check(&cert, &intermediates, &ci, opts.role, opts.now)?;
        let minted = Minted {
            slot,
            cert,
            key,
            key_source,
        };
        layout::write_all(&minted.files(&self.root), opts.force)?;
        Ok(minted)
    }

    /// The EID prefix the EUM may issue: from its name constraint serialNumber or permittedEins.
    pub fn eum_prefixes(eum: &Certificate) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(ExtensionSpec::NameConstraints { permitted, .. }) = eum
            .extension(known::EXT_NAME_CONSTRAINTS)
            .and_then(|e| e.spec.as_ref())
        {
            for subtree in permitted {
                out.extend(
                    subtree
                        .iter()
                        .filter(|a| a.attr == "serialNumber")
                        .map(|a| a.value.clone()),
                );
            }
        }
        if let Some(ExtensionSpec::PermittedEins { eins, .. }) = eum
            .extension(known::EXT_PERMITTED_EINS)
            .and_then(|e| e.spec.as_ref())
        {
            out.extend(eins.iter().cloned());
        }
        out
    }

    /// Issues `count` eUICC certificates with consecutive EIDs from `first`, each in
    /// `out/<EID>/` (certificate and private key; the public key is in the certificate), on
    /// `threads` threads. `progress` is called with the number done so far.
    pub fn euicc_batch(
        &self,
        opts: &BatchOptions,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<BatchReport, Error> {
        if opts.count == 0 {
            return Err(Error::Usage("--count must be at least 1".into()));
        }
        if opts.out.exists() && !opts.out.is_dir() {
            return Err(Error::file(
                &opts.out,
                "is not a directory (--out names the directory the eUICC directories go to)",
            ));
        }
        let (eum, eum_key) = self.issuer(Role::Euicc, opts.curve)?;
        // permittedEins sits on the EUM, above an EUM SubCA when there is one.
        let prefixes: Vec<String> = self
            .intermediates(Role::Euicc, opts.curve)?
            .iter()
            .flat_map(Self::eum_prefixes)
            .collect();
        let prefix = prefixes
            .iter()
            .find(|p| opts.first.as_str().starts_with(p.as_str()))
            .cloned()
            .or_else(|| prefixes.is_empty().then(String::new))
            .ok_or_else(|| {
                Error::Usage(format!(
                    "first EID {} is outside the EUM's permitted prefix {}",
                    opts.first,
                    prefixes.join(", ")
                ))
            })?;
        let mut eids = Vec::with_capacity(opts.count);
        let mut e = opts.first;
        for i in 0..opts.count {
            if i > 0 {
                e = e.successor(prefix.len()).map_err(|_| {
                    Error::Usage(format!(
                        "only {i} EIDs fit after {} within the prefix {prefix}",
                        opts.first
                    ))
                })?;
            }
            eids.push(e);
        }
        let stem = |eid: &Eid| {
            self.slot(Role::Euicc, opts.curve, Some(eid.to_string()))
                .stem()
        };
        // Staging directories a killed run left behind (`.<EID>.<pid>.tmp`) go first.
        if opts.resume {
            for eid in &eids {
                let prefix = format!(".{eid}.");
                for entry in std::fs::read_dir(&opts.out).into_iter().flatten().flatten() {
                    let name = entry.file_name();
                    let name = name.to_string_lossy();
                    if name.starts_with(&prefix) && name.ends_with(".tmp") {
                        let _ = std::fs::remove_dir_all(entry.path());
                    }
                }
            }
        }
        let mut todo = Vec::with_capacity(eids.len());
        for eid in &eids {
            let dir = opts.out.join(eid.as_str());
            if !dir.exists() || opts.force {
                todo.push(*eid);
            } else if opts.resume {
                if !euicc_complete(&dir, &stem(eid)) {
                    std::fs::remove_dir_all(&dir)
                        .map_err(|e| Error::file(&dir, format!("cannot remove to redo: {e}")))?;
                    todo.push(*eid);
                }
            } else {
                return Err(Error::file(
                    dir,
                    "already exists (--resume skips the complete ones and redoes the rest; --force overwrites)",
                ));
            }
        }
        let skipped = eids.len() - todo.len();
        let cancelled = || {
            opts.cancel
                .as_ref()
                .is_some_and(|c| c.load(Ordering::Relaxed))
        };
        let mut template = self.profile.template(Role::Euicc).clone();
        if matches!(template.serial, SerialSpec::Fixed { .. }) {
            template.serial = SerialSpec::Eid;
        }
        let base = self.vars(None, &BTreeMap::new())?;
        let done = AtomicUsize::new(0);
        let threads = opts.threads.clamp(1, 64);
        let chunk = todo.len().div_ceil(threads).max(1);
        let results: Vec<Result<(), Error>> = std::thread::scope(|s| {
            let handles: Vec<_> = todo
                .chunks(chunk)
                .map(|part| {
                    let (template, base, eum, eum_key, done, cancelled) =
                        (&template, &base, &eum, &eum_key, &done, &cancelled);
                    s.spawn(move || -> Result<(), Error> {
                        let mut vars = base.clone();
                        for eid in part {
                            if cancelled() {
                                break;
                            }
                            let key = PrivateKey::generate(opts.curve)
                                .map_err(|e| Error::Random(e.to_string()))?;
                            vars.set("eid", eid.as_str());
                            let cert = mint_one(
                                template,
                                &vars,
                                &key,
                                Signer::Issuer(eum, eum_key),
                                opts.now,
                            )?;
                            let stem = stem(eid);
                            let files = [
                                (format!("CERT_{stem}.der"), cert.der().to_vec(), false),
                                (format!("SK_{stem}.pem"), key.to_pem().into_bytes(), true),
                            ];
                            layout::write_dir_atomic(
                                &opts.out.join(eid.as_str()),
                                &files,
                                opts.force,
                            )?;
                            progress(done.fetch_add(1, Ordering::Relaxed) + 1);
                        }
                        Ok(())
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Error::Usage("a worker thread panicked".into())))
                })
                .collect()
        });
        for r in results {
            r?;
        }
        Ok(BatchReport {
            written: done.load(Ordering::Relaxed),
            skipped,
            cancelled: cancelled(),
            eids,
        })
    }
}
