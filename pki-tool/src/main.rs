//! The `pki-tool` command line: a thin clap layer over the library.

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use pki_tool::hierarchy::{self, BatchOptions, Hierarchy, InitOptions, IssueOptions, KeySource};
use pki_tool::validate::{self, Options};
use pki_tool::{Certificate, Curve, Eid, Error, Role, Variant};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

const ROLES_HELP: &str = "\
Roles (SGP.22 4.5.2, shaped as in SGP.26):
  ci      Certificate Issuer: the self-signed root every party trusts (policy 2.23.146.1.2.1.0)
  eum     eUICC Manufacturer CA, limited to its EID prefix by a critical name constraint (.2)
  euicc   the eUICC itself; its subject serialNumber is the 32-digit EID (.1)
  dpauth  SM-DP+ authentication: signs serverSigned1 in ES9+ (.4)
  dppb    SM-DP+ profile binding: signs bound profile packages (.5)
  dptls   SM-DP+ TLS: server certificate for ES9+, client certificate for ES12 (.3)
  dsauth  SM-DS authentication: signs serverSigned1 in ES11 (.7)
  dstls   SM-DS TLS: server certificate for ES11, ES12 and ES15 (.6)
SGP.26 v3 (--profile sgp26-v3) nests the policies under the CI's (ci .0, cisubca .0.0, eum .0.0.0,
eumsubca .0.0.0.0, euicc .0.0.0.0.0, dpsubca .0.0.1, dptls/dpauth/dppb .0.0.1.0/.1/.2, dssubca .0.0.2,
dstls/dsauth .0.0.2.0/.1) and adds SubCAs by variant:
  O  CI > EUM > eUICC; CI > servers (the v2 shape and OIDs)
  A  CI > EUM > eumsubca > eUICC; CI > dpsubca > SM-DP+ certificates; CI > dssubca > SM-DS ones
  B  CI > cisubca > EUM > eUICC; CI > cisubca > servers
  C  CI > cisubca > EUM > eumsubca > eUICC; CI > cisubca > dpsubca/dssubca > servers";

/// Mint and check GSMA SGP.26-shaped test PKIs for eSIM (SGP.22) labs.
#[derive(Parser)]
#[command(name = "pki-tool", version, after_help = ROLES_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Mint a complete hierarchy: CI, EUM, eUICC, DPauth, DPpb, DPtls, DSauth and DStls (and the
    /// SubCAs of SGP.26 v3 Variants A, B, C), with keys.
    ///
    /// The output directory uses the SGP.26 / osmo-smdpp layout (CertificateIssuer/CERT_CI_ECDSA_NIST.der,
    /// DPauth/SK_S_SM_DPauth_ECDSA_NIST.pem, ...) and can be given to osmo-smdpp as its certificate
    /// directory: CertificateIssuer/ holds certificates only, the CI's keys are in CI/. With
    /// --profile sgp26-v1.5 and --keys pointing at the published SGP.26 keys, the CI, EUM, eUICC,
    /// DPauth and DPpb certificates are the GSMA ones byte for byte (signatures aside); so are the
    /// CI, EUM and eUICC of `--profile sgp26-v3 --variant O` with the v3 Variant O keys. sgp26-v3
    /// writes the GSMA v3 zip's tree instead (CI/CERT_CI_SIG_NIST.der, SM-DS/SM_DSauth/...).
    #[command(after_help = ROLES_HELP)]
    Init(InitArgs),
    /// Add one certificate to an existing hierarchy (a second SM-DP+, a renewed TLS certificate, another eUICC).
    ///
    /// Examples:
    ///   pki-tool issue dptls --hierarchy lab           (renew CERT.DP.TLS, replacing it: add --force)
    ///   pki-tool issue dpauth --hierarchy lab --instance 2 --set smdp_name="TEST SM-DP+2" --set smdp_rid=2.999.12
    ///   pki-tool issue euicc --hierarchy lab --eid 89049032000000000000000000100073
    #[command(verbatim_doc_comment, after_help = ROLES_HELP)]
    Issue(IssueArgs),
    /// Issue N eUICC certificates with consecutive valid EIDs inside the EUM's permitted prefix.
    ///
    /// Each eUICC goes to OUT/<EID>/ as CERT_EUICC_ECDSA_<curve>.der and SK_EUICC_ECDSA_<curve>.pem;
    /// a directory appears complete or not at all.
    EuiccBatch(BatchArgs),
    /// Create or check EIDs (SGP.29: 32 digits, the whole number modulo 97 equals 1).
    #[command(subcommand)]
    Eid(EidCommand),
    /// Validate certificate chains the SGP.22 way and say precisely what fails.
    ///
    /// The first certificate is the one to check; the others are intermediates (e.g. the EUM for an
    /// eUICC). Unlike openssl verify, the EUM name constraint is read as SGP.22 defines it: the eUICC's
    /// O must match and its EID must start with the permitted serialNumber (or a permittedEins entry).
    Verify(VerifyArgs),
    /// List every deviation of a certificate from its role profile.
    #[command(after_help = ROLES_HELP)]
    Lint(LintArgs),
    /// Revoke a certificate of a hierarchy and issue its CA's CRL again.
    ///
    /// The CA that issued CERT is found in the hierarchy; the revocation is kept in
    /// crl/revocations.toml and every later CRL of that CA lists it.
    Revoke(RevokeArgs),
    /// Issue the CRLs of a hierarchy's CAs (v2 CRLs, cRLNumber increasing from 2024).
    ///
    /// Written per curve to crl/<NIST|BRP>/<issuer>.crl (DER) and .pem, and to the path of every CRL
    /// distribution point URI in the certificates that CA issued (crl/NIST/ci.test.example.com/CRL-1.crl):
    /// serve crl/NIST/ as the web root of those hosts.
    Crl(CrlArgs),
    /// List every certificate of a hierarchy as a tree, with its expiry; exit 1 when one is expired
    /// or expires within --within days (for cron).
    ///
    /// Reads the directory itself (any layout, extra instances included): each certificate once,
    /// under its issuer, with role, curve, notAfter and days left.
    Status(StatusArgs),
    /// Re-issue what expires within --within days, under the same issuer, same subject and
    /// extensions, keeping the key unless --rekey.
    ///
    /// The serial follows the role's policy (a fixed or EID-derived one, which would repeat, becomes
    /// random of the same length); the validity starts now and lasts the template's days. Every
    /// file of a renewed certificate (DER and PEM copies, and the key files with --rekey) is
    /// replaced atomically and the previous one kept as <file>.old until --prune. A running smds
    /// picks renewed DS certificates up on SIGHUP.
    ///
    /// Examples:
    ///   pki-tool renew lab                        (whatever expires within 30 days)
    ///   pki-tool renew lab --role dstls --within 365 --rekey
    ///   pki-tool renew lab --prune                (remove the *.old files)
    #[command(verbatim_doc_comment)]
    Renew(RenewArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    ///
    /// E.g. `pki-tool completions bash > /etc/bash_completion.d/pki-tool`, or for zsh into a
    /// directory of your $fpath as _pki-tool.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write man pages (pki-tool.1 and one per subcommand) into a directory.
    Man {
        /// Where to write them (created if needed).
        #[arg(long, value_name = "DIR", default_value = "man")]
        out: PathBuf,
    },
}

#[derive(Args)]
struct StatusArgs {
    /// The hierarchy directory.
    dir: PathBuf,
    /// Flag certificates expiring within this many days.
    #[arg(long, default_value_t = 30, value_name = "DAYS")]
    within: u32,
    /// One JSON object (certificates in tree order, counts) instead of the tree.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct RenewArgs {
    /// The hierarchy directory made by `pki-tool init`.
    dir: PathBuf,
    /// Only certificates of this role (repeatable): ci, cisubca, eum, eumsubca, euicc, dpauth,
    /// dppb, dptls, dpsubca, dsauth, dstls, dssubca.
    #[arg(long, value_parser = parse_role_arg)]
    role: Vec<Role>,
    /// Renew what expires within this many days (and what has expired).
    #[arg(long, default_value_t = 30, value_name = "DAYS")]
    within: u32,
    /// Draw new keys for the renewed certificates (not for a CA that has issued certificates).
    #[arg(long)]
    rekey: bool,
    /// Show what would be renewed; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Only remove the *.old files earlier renewals kept; renew nothing.
    #[arg(long, conflicts_with_all = ["role", "rekey", "dry_run"])]
    prune: bool,
}

#[derive(Args)]
struct RevokeArgs {
    /// The certificate to revoke (DER or PEM).
    cert: PathBuf,
    /// The hierarchy directory made by `pki-tool init`.
    #[arg(long, value_name = "DIR")]
    hierarchy: PathBuf,
    /// CRLReason: unspecified, keyCompromise, cACompromise, affiliationChanged, superseded,
    /// cessationOfOperation, certificateHold or privilegeWithdrawn (no reasonCode when absent).
    #[arg(long, value_parser = parse_reason)]
    reason: Option<pki_tool::crl::Reason>,
    /// Days until the CRL's nextUpdate.
    #[arg(long, default_value_t = 1095)]
    days: u32,
}

#[derive(Args)]
struct CrlArgs {
    /// The hierarchy directory made by `pki-tool init`.
    #[arg(long, value_name = "DIR")]
    hierarchy: PathBuf,
    /// Only this CA (ci, cisubca, eum, eumsubca, dpsubca, dssubca); default: every CA.
    #[arg(long)]
    issuer: Option<String>,
    /// Days until nextUpdate (SGP.26 v3's test CRLs are said to use 1095 [second-hand]).
    #[arg(long, default_value_t = 1095)]
    days: u32,
}

#[derive(Clone, Copy, ValueEnum)]
enum CurveChoice {
    Nist,
    Brainpool,
    Both,
}

#[derive(Clone, Copy, ValueEnum)]
enum OneCurve {
    Nist,
    Brainpool,
}

impl From<OneCurve> for Curve {
    fn from(c: OneCurve) -> Self {
        match c {
            OneCurve::Nist => Curve::NistP256,
            OneCurve::Brainpool => Curve::BrainpoolP256r1,
        }
    }
}

#[derive(Args)]
struct ProfileArgs {
    /// Built-in profile: `default` (fresh keys, random serials, dates from now), `sgp26-v1.5`
    /// (the GSMA v1.5 serials, dates and names) or `sgp26-v3` (SGP.26 v3 names and shapes, see
    /// --variant; files laid out as in the GSMA v3 zip).
    #[arg(long, default_value = "default")]
    profile: String,
    /// SGP.26 v3 chain shape (with --profile sgp26-v3): O (v2 shape, the GSMA Variant O serials and
    /// dates), A (EUM, SM-DP+ and SM-DS SubCAs), B (a CI SubCA) or C (both).
    #[arg(long, default_value = "O", value_parser = parse_variant)]
    variant: Variant,
    /// Directory with edited role templates (<role>.toml) replacing the built-in ones.
    #[arg(long, value_name = "DIR")]
    templates: Option<PathBuf>,
    /// Set a template placeholder, e.g. --set smdp_rid=2.999.12 (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_set)]
    sets: Vec<(String, String)>,
}

#[derive(Args)]
struct InitArgs {
    /// Output directory (created if needed).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Which curves to mint: NIST P-256, brainpoolP256r1, or both (one complete hierarchy each).
    #[arg(long, value_enum, default_value = "both")]
    curve: CurveChoice,
    #[command(flatten)]
    profile: ProfileArgs,
    /// Take existing private keys from a GSMA-style directory: each role's key file by its SGP.26
    /// name (SK_CI_ECDSA_NIST.pem, SK_EUM_SIG_BRP.pem, SK_S_SM_DPauth_SIG_NIST.pem, ...), at the
    /// layout's path or anywhere below DIR (the GSMA zip's folders, CI/, DPauth/...). Roles with no
    /// key there get fresh keys; a name found twice is an error.
    #[arg(long, value_name = "DIR")]
    keys: Option<PathBuf>,
    /// EID of the eUICC (its first 8 digits also become the EUM's permitted prefix).
    #[arg(long, default_value = "89049032123451234512345678901235")]
    eid: String,
    /// SM-DP+ host name for CERT.DP.TLS.
    #[arg(long, value_name = "HOST", default_value = "testsmdpplus1.example.com")]
    smdp_fqdn: String,
    /// SM-DS host name for CERT.DS.TLS.
    #[arg(long, value_name = "HOST", default_value = "testrootsmds.example.com")]
    smds_fqdn: String,
    /// Overwrite existing files.
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
struct IssueArgs {
    /// The role to issue (not ci: that is what init creates).
    role: String,
    /// The hierarchy directory made by `pki-tool init`.
    #[arg(long, value_name = "DIR")]
    hierarchy: PathBuf,
    /// Which of the hierarchy's curves to issue under (its CI/EUM of that curve signs).
    #[arg(long, value_enum, default_value = "nist")]
    curve: OneCurve,
    /// Instance number for a further SM-DP+ or SM-DS: `2` gives S_SM_DP2auth_..., S_SM_DP2_TLS_...
    #[arg(long, value_name = "N")]
    instance: Option<String>,
    /// EID for an eUICC certificate (stored under eUICC/<EID>/).
    #[arg(long)]
    eid: Option<String>,
    /// Reuse this private key instead of generating one (e.g. to renew a certificate).
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// Set a template placeholder (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_set)]
    sets: Vec<(String, String)>,
    /// Overwrite existing files.
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
struct BatchArgs {
    /// The hierarchy directory made by `pki-tool init`.
    #[arg(long, value_name = "DIR")]
    hierarchy: PathBuf,
    /// How many eUICCs to issue (at least 1).
    #[arg(long, value_parser = parse_count)]
    count: u64,
    /// First EID; the default is the one after the hierarchy's eUICC.
    #[arg(long, value_name = "EID")]
    first_eid: Option<String>,
    /// Which EUM signs: the hierarchy's NIST P-256 or brainpoolP256r1 one.
    #[arg(long, value_enum, default_value = "nist")]
    curve: OneCurve,
    /// Output directory; the default is <hierarchy>/eUICC.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Worker threads; the default is one per CPU.
    #[arg(long)]
    threads: Option<usize>,
    /// Overwrite existing eUICC directories.
    #[arg(long, conflicts_with = "resume")]
    force: bool,
    /// Finish an interrupted batch: keep the eUICC directories that are complete (certificate and
    /// its key), redo the rest, and clear what a killed run left half-written.
    #[arg(long)]
    resume: bool,
}

#[derive(Subcommand)]
enum EidCommand {
    /// Print new random valid EIDs.
    New {
        /// Leading digits (an EUM's EIN/IIN prefix).
        #[arg(long, default_value = "89049032")]
        prefix: String,
        /// How many EIDs to print.
        #[arg(long, default_value_t = 1)]
        count: usize,
    },
    /// Check EIDs; says which check failed for an invalid one.
    Check {
        /// The EIDs to check (32 digits each).
        #[arg(required = true)]
        eids: Vec<String>,
    },
}

#[derive(Args)]
struct VerifyArgs {
    /// The certificate to check, then any intermediates (DER or PEM).
    #[arg(required = true, value_name = "CERT")]
    certs: Vec<PathBuf>,
    /// Trusted CI certificate(s).
    #[arg(long, required = true, value_name = "CI")]
    ci: Vec<PathBuf>,
    /// The role the first certificate must have; by default read from its certificate policy.
    #[arg(long)]
    role: Option<String>,
    /// Check validity at this time (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ) instead of now.
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// One JSON object (valid, path, CI, EID or error) instead of the line.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct LintArgs {
    /// The certificate to lint (DER or PEM).
    cert: PathBuf,
    /// The role whose template it is compared with; by default the role its certificate policy
    /// names (as `verify` reads it).
    #[arg(long)]
    role: Option<String>,
    #[command(flatten)]
    profile: ProfileArgs,
    /// The issuer's certificate, to check the issuer name and authority key identifier too.
    #[arg(long, value_name = "CERT")]
    issuer: Option<PathBuf>,
    /// One JSON object (role, profile, deviations) instead of the report.
    #[arg(long)]
    json: bool,
}

fn parse_set(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not NAME=VALUE"))?;
    if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(format!(
            "placeholder name {k:?} must be letters, digits and _"
        ));
    }
    Ok((k.to_string(), v.to_string()))
}

fn parse_count(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(0) => Err("at least 1 eUICC".into()),
        Ok(n) => Ok(n),
        Err(_) => Err("a whole number".into()),
    }
}

fn parse_reason(s: &str) -> Result<pki_tool::crl::Reason, String> {
    s.parse()
}

fn parse_variant(s: &str) -> Result<Variant, String> {
    s.parse()
}

fn parse_role_arg(s: &str) -> Result<Role, String> {
    s.parse()
}

fn parse_role(s: &str) -> Result<Role, Error> {
    s.parse().map_err(Error::Usage)
}

fn sets(v: &[(String, String)]) -> BTreeMap<String, String> {
    v.iter().cloned().collect()
}

fn describe_source(s: &KeySource) -> String {
    match s {
        KeySource::Generated => "new key".into(),
        KeySource::Loaded(p) => format!("key from {}", p.display()),
    }
}

fn init(a: InitArgs) -> Result<(), Error> {
    let curves = match a.curve {
        CurveChoice::Nist => vec![Curve::NistP256],
        CurveChoice::Brainpool => vec![Curve::BrainpoolP256r1],
        CurveChoice::Both => Curve::ALL.to_vec(),
    };
    let eid = Eid::parse(&a.eid).map_err(|e| Error::Usage(format!("--eid {}: {e}", a.eid)))?;
    let minted = hierarchy::init(&InitOptions {
        out: a.out.clone(),
        curves,
        profile: a.profile.profile,
        variant: a.profile.variant,
        templates: a.profile.templates,
        keys: a.keys,
        eid,
        smdp_fqdn: a.smdp_fqdn,
        smds_fqdn: a.smds_fqdn,
        sets: sets(&a.profile.sets),
        force: a.force,
        now: pki_tool::time::now(),
    })?;
    for m in &minted {
        println!(
            "{:<8} {:<10} {}  ({}, serial {}, until {})",
            m.slot.role.name(),
            m.slot.curve.file_suffix(),
            m.slot.cert_der(&a.out).display(),
            describe_source(&m.key_source),
            m.cert.serial_hex(),
            pki_tool::time::format(m.cert.not_after)
        );
    }
    println!(
        "{} certificates written under {}",
        minted.len(),
        a.out.display()
    );
    Ok(())
}

fn issue(a: IssueArgs) -> Result<(), Error> {
    let role = parse_role(&a.role)?;
    let h = Hierarchy::open(&a.hierarchy)?;
    let eid = a
        .eid
        .as_deref()
        .map(|e| Eid::parse(e).map_err(|err| Error::Usage(format!("--eid {e}: {err}"))))
        .transpose()?;
    if role == Role::Euicc && eid.is_none() {
        return Err(Error::Usage("an extra eUICC needs --eid".into()));
    }
    let m = h.issue(&IssueOptions {
        role,
        curve: a.curve.into(),
        instance: a.instance,
        eid,
        sets: sets(&a.sets),
        key: a.key,
        force: a.force,
        now: pki_tool::time::now(),
    })?;
    println!(
        "{} {} ({}, serial {}, until {})",
        role.name(),
        m.slot.cert_der(&h.root).display(),
        describe_source(&m.key_source),
        m.cert.serial_hex(),
        pki_tool::time::format(m.cert.not_after)
    );
    Ok(())
}

fn batch(a: BatchArgs) -> Result<bool, Error> {
    let h = Hierarchy::open(&a.hierarchy)?;
    let first = match &a.first_eid {
        Some(e) => Eid::parse(e).map_err(|err| Error::Usage(format!("--first-eid {e}: {err}")))?,
        None => Eid::parse(&h.manifest.eid)?
            .successor(8)
            .map_err(|e| Error::Usage(e.to_string()))?,
    };
    let out = a.out.unwrap_or_else(|| h.root.join("eUICC"));
    let threads = a.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let count =
        usize::try_from(a.count).map_err(|_| Error::Usage("--count is too large".into()))?;
    let bar = indicatif::ProgressBar::new(a.count);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} eUICCs  {per_sec}  eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    // Ctrl-C (and SIGTERM) stop the batch after the eUICCs being written, which then appear
    // whole; a second one ends the process at once.
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    });
    let started = std::time::Instant::now();
    let report = h.euicc_batch(
        &BatchOptions {
            curve: a.curve.into(),
            count,
            first,
            out: out.clone(),
            threads,
            force: a.force,
            resume: a.resume,
            cancel: Some(cancel),
            now: pki_tool::time::now(),
        },
        &|n| bar.set_position(n as u64),
    )?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    let (Some(f), Some(l)) = (report.eids.first(), report.eids.last()) else {
        return Ok(true);
    };
    let kept = if report.skipped > 0 {
        format!(" ({} complete ones kept)", report.skipped)
    } else {
        String::new()
    };
    if report.cancelled {
        eprintln!(
            "pki-tool: interrupted: {} of {} eUICCs written{kept} under {}, EIDs {f} .. {l}; each directory there is complete. Run the same command with --resume to finish.",
            report.written + report.skipped,
            report.eids.len(),
            out.display()
        );
        // 128 + SIGINT, as a shell reports an interrupted command.
        std::process::exit(130);
    }
    println!(
        "{} eUICC certificates{kept}, EIDs {f} .. {l}, in {} ({secs:.2} s, {:.0}/s)",
        report.eids.len(),
        out.display(),
        report.written as f64 / secs.max(1e-9)
    );
    Ok(true)
}

fn eid(c: EidCommand) -> Result<bool, Error> {
    match c {
        EidCommand::New { prefix, count } => {
            for _ in 0..count {
                println!("{}", Eid::random_with_prefix(&prefix)?);
            }
            Ok(true)
        }
        EidCommand::Check { eids } => {
            let mut all_ok = true;
            for e in eids {
                match Eid::parse(&e) {
                    Ok(_) => println!("{e}: valid"),
                    Err(err) => {
                        all_ok = false;
                        println!("{e}: INVALID: {err}");
                    }
                }
            }
            Ok(all_ok)
        }
    }
}

fn read_certs(paths: &[PathBuf]) -> Result<Vec<Certificate>, Error> {
    paths.iter().map(|p| hierarchy::read_cert(p)).collect()
}

fn verify(a: VerifyArgs) -> Result<bool, Error> {
    let certs = read_certs(&a.certs)?;
    let anchors = read_certs(&a.ci)?;
    for (p, c) in a.ci.iter().zip(&anchors) {
        if !c.is_self_signed() {
            return Err(Error::file(p, "is not a self-signed CI certificate"));
        }
    }
    let role = a.role.as_deref().map(parse_role).transpose()?;
    let at = match &a.at {
        Some(t) => pki_tool::time::parse_rfc3339(t).map_err(Error::Usage)?,
        None => pki_tool::time::now(),
    };
    let (leaf, rest) = certs
        .split_first()
        .ok_or_else(|| Error::Usage("no certificate given".into()))?;
    let result = validate::verify_chain(leaf, rest, &anchors, role, Options::at(at));
    if a.json {
        let doc = match &result {
            Ok(v) => serde_json::json!({
                "file": a.certs[0].display().to_string(),
                "valid": true,
                "at": pki_tool::time::format(at),
                "path": v.path_roles.iter().map(|r| r.name()).collect::<Vec<_>>(),
                "ci": anchors[v.anchor].subject.to_string(),
                "eid": v.eid.as_ref().map(|e| e.to_string()),
            }),
            Err(e) => serde_json::json!({
                "file": a.certs[0].display().to_string(),
                "valid": false,
                "at": pki_tool::time::format(at),
                "error": e.to_string(),
            }),
        };
        println!("{doc}");
        return Ok(result.is_ok());
    }
    match result {
        Ok(v) => {
            let path: Vec<&str> = v.path_roles.iter().map(|r| r.name()).collect();
            print!(
                "OK: {} valid at {}: {} -> CI \"{}\"",
                a.certs[0].display(),
                pki_tool::time::format(at),
                path.join(" -> "),
                anchors[v.anchor].subject
            );
            match v.eid {
                Some(e) => println!(", EID {e}"),
                None => println!(),
            }
            Ok(true)
        }
        Err(e) => {
            println!("FAILED: {}: {e}", a.certs[0].display());
            Ok(false)
        }
    }
}

fn lint(a: LintArgs) -> Result<bool, Error> {
    let cert = hierarchy::read_cert(&a.cert)?;
    let role = match a.role.as_deref() {
        Some(r) => parse_role(r)?,
        None => validate::detect_role(&cert).ok_or_else(|| {
            Error::file(
                &a.cert,
                "its certificate policies name no single SGP.22 role; give --role",
            )
        })?,
    };
    let profile = hierarchy::load_profile(
        &a.profile.profile,
        a.profile.variant,
        a.profile.templates.as_deref(),
    )?;
    let template = profile.get(role).map_err(Error::Usage)?;
    let profile_name = if profile.is_v3() {
        format!("{} Variant {}", profile.name, profile.variant)
    } else {
        profile.name.clone()
    };
    let issuer = a.issuer.as_deref().map(hierarchy::read_cert).transpose()?;
    let mut vars = pki_tool::profile::Vars::default();
    for (k, v) in &a.profile.sets {
        vars.set(k, v.clone());
    }
    let deviations = pki_tool::lint::lint(&cert, template, &vars, issuer.as_ref());
    if a.json {
        let doc = serde_json::json!({
            "file": a.cert.display().to_string(),
            "role": role.name(),
            "profile": profile_name,
            "matches": deviations.is_empty(),
            "deviations": deviations.iter().map(|d| serde_json::json!({
                "field": d.field,
                "expected": d.expected,
                "found": d.found,
            })).collect::<Vec<_>>(),
        });
        println!("{doc}");
        return Ok(deviations.is_empty());
    }
    if deviations.is_empty() {
        println!(
            "{}: matches the {} {role} profile",
            a.cert.display(),
            profile_name
        );
        return Ok(true);
    }
    println!(
        "{}: {} deviation(s) from the {} {role} profile:",
        a.cert.display(),
        deviations.len(),
        profile_name
    );
    for d in &deviations {
        println!("  - {d}");
    }
    Ok(false)
}

fn print_crls(h: &Hierarchy, crls: &[pki_tool::revocation::IssuedCrl]) {
    for c in crls {
        println!(
            "{:<8} {:<4} CRL #{} ({} revoked): {}",
            c.issuer.name(),
            c.curve.file_suffix(),
            c.number,
            c.revoked,
            c.files
                .iter()
                .map(|p| p.strip_prefix(&h.root).unwrap_or(p).display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

fn revoke(a: RevokeArgs) -> Result<(), Error> {
    let h = Hierarchy::open(&a.hierarchy)?;
    let cert = hierarchy::read_cert(&a.cert)?;
    let crl = h.revoke(&cert, a.reason, a.days, pki_tool::time::now())?;
    println!(
        "revoked \"{}\" (serial {}{})",
        cert.subject,
        cert.serial_hex(),
        a.reason.map(|r| format!(", {r}")).unwrap_or_default()
    );
    print_crls(&h, std::slice::from_ref(&crl));
    Ok(())
}

fn crl(a: CrlArgs) -> Result<(), Error> {
    let h = Hierarchy::open(&a.hierarchy)?;
    let only = a.issuer.as_deref().map(parse_role).transpose()?;
    let crls = h.issue_crls(only, a.days, pki_tool::time::now())?;
    print_crls(&h, &crls);
    Ok(())
}

/// ANSI colour for a status word, when stdout is a terminal and NO_COLOR is unset.
fn paint(status: &str, text: &str) -> String {
    use std::io::IsTerminal;
    let colour = match status {
        "expired" => "31",
        "expiring" => "33",
        _ => return text.to_string(),
    };
    if std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        format!("\x1b[{colour}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// `status`: true when nothing is expired or expiring.
fn status(a: StatusArgs) -> Result<bool, Error> {
    let inv = pki_tool::inventory::Inventory::scan(&a.dir)?;
    let rows = pki_tool::inventory::status(&inv, pki_tool::time::now(), a.within);
    let count = |s: &str| rows.iter().filter(|r| r.status == s).count();
    let (expired, expiring) = (count("expired"), count("expiring"));
    if a.json {
        let doc = serde_json::json!({
            "dir": a.dir.display().to_string(),
            "within_days": a.within,
            "expired": expired,
            "expiring": expiring,
            "certificates": rows,
        });
        println!("{doc:#}");
    } else {
        for r in &rows {
            let indent = "  ".repeat(r.depth);
            let mark = match r.status {
                "valid" => String::new(),
                s => format!("  {}", paint(s, &s.to_uppercase())),
            };
            println!(
                "{indent}{:<9} {:<5} {}  notAfter {} ({} days){mark}\n{indent}          {}",
                r.role.as_deref().unwrap_or("?"),
                r.curve,
                r.subject,
                r.not_after,
                r.days_left,
                r.file,
            );
        }
        println!(
            "{} certificate(s); {expired} expired, {expiring} expiring within {} days",
            rows.len(),
            a.within
        );
        if !inv.bundles.is_empty() {
            println!(
                "not listed (chain bundles): {}",
                inv.bundles
                    .iter()
                    .map(|b| b.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    Ok(expired == 0 && expiring == 0)
}

fn renew(a: RenewArgs) -> Result<(), Error> {
    if a.prune {
        let removed = pki_tool::renewal::prune(&a.dir)?;
        for f in &removed {
            println!("removed {}", f.display());
        }
        println!("{} old file(s) removed", removed.len());
        return Ok(());
    }
    let h = Hierarchy::open(&a.dir)?;
    let renewed = h.renew(&pki_tool::renewal::RenewOptions {
        roles: a.role,
        within_days: a.within,
        rekey: a.rekey,
        dry_run: a.dry_run,
        now: pki_tool::time::now(),
    })?;
    let fmt = pki_tool::time::format;
    for r in &renewed {
        println!(
            "{} {:<8} {}: serial {} -> {}, notAfter {} -> {}{}",
            if a.dry_run { "would renew" } else { "renewed" },
            r.role.map_or("?", Role::name),
            r.file.display(),
            r.old_serial,
            r.new_serial,
            fmt(r.old_not_after),
            fmt(r.new_not_after),
            if r.rekeyed { ", new key" } else { "" }
        );
        if !a.dry_run {
            for f in &r.files {
                println!("    wrote {} (previous kept as .old)", f.display());
            }
        }
    }
    if renewed.is_empty() {
        println!("nothing expires within {} days", a.within);
    }
    Ok(())
}

fn run(cli: Cli) -> Result<bool, Error> {
    match cli.command {
        Command::Init(a) => init(a).map(|_| true),
        Command::Issue(a) => issue(a).map(|_| true),
        Command::EuiccBatch(a) => batch(a),
        Command::Eid(c) => eid(c),
        Command::Completions { shell } => {
            pki_tool::cli_docs::print_completions(shell, Cli::command());
            Ok(true)
        }
        Command::Man { out } => {
            let written = pki_tool::cli_docs::write_man_pages(Cli::command(), &out)
                .map_err(|e| Error::file(&out, e.to_string()))?;
            println!("{} man pages written to {}", written.len(), out.display());
            Ok(true)
        }
        Command::Verify(a) => verify(a),
        Command::Lint(a) => lint(a),
        Command::Revoke(a) => revoke(a).map(|_| true),
        Command::Crl(a) => crl(a).map(|_| true),
        Command::Status(a) => status(a),
        Command::Renew(a) => renew(a).map(|_| true),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("pki-tool: error: {e}");
            ExitCode::from(2)
        }
    }
}
