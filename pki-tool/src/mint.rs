//! Building and signing certificates from templates. The TBSCertificate is assembled field by field
//! so that every byte follows the template (attribute string types, extension order, criticality);
//! the signature is ECDSA with SHA-256 by the issuer's key, on the issuer's curve.

use crate::cert::Certificate;
use crate::eid::Eid;
use crate::ext::{self, ExtContext};
use crate::keys::{Curve, PrivateKey, PublicKey};
use crate::name::Name;
use crate::oid::known;
use crate::profile::{SerialSpec, Template, Vars};
use crate::tlv::{self, tag};

/// Who signs the new certificate.
#[derive(Clone, Copy)]
pub enum Signer<'a> {
    /// A self-signed certificate (the CI); the key must be the subject's own.
    SelfSigned(&'a PrivateKey),
    /// An issuing CA: its certificate and private key.
    Issuer(&'a Certificate, &'a PrivateKey),
}

/// Everything one certificate needs besides its template.
pub struct MintInput<'a> {
    pub template: &'a Template,
    /// Placeholder values (template defaults are applied underneath).
    pub vars: &'a Vars,
    pub subject_key: &'a PublicKey,
    pub signer: Signer<'a>,
    /// The time used when the template does not fix notBefore.
    pub now: i64,
}

fn serial_bytes(spec: &SerialSpec, vars: &Vars) -> Result<Vec<u8>, String> {
    match spec {
        SerialSpec::Fixed { value } => {
            let v = vars.resolve(value)?;
            let bytes = crate::oid::unhex(v.trim()).ok_or_else(|| {
                format!("fixed serial {v:?} must be an even number of hex digits")
            })?;
            if bytes.iter().all(|b| *b == 0) {
                return Err("serial number must be positive".into());
            }
            Ok(bytes)
        }
        SerialSpec::Random { bytes } => {
            if !(1..=20).contains(bytes) {
                return Err(format!(
                    "random serial length {bytes} must be 1 to 20 bytes"
                ));
            }
            let mut b = vec![0u8; *bytes];
            getrandom::fill(&mut b).map_err(|e| format!("random number generator failed: {e}"))?;
            // Positive and of exactly the requested length once DER-encoded.
            b[0] &= 0x7F;
            if b[0] == 0 {
                b[0] = 1;
            }
            Ok(b)
        }
        SerialSpec::Eid => {
            let eid = vars
                .0
                .get("eid")
                .ok_or("serial policy eid needs an EID")?
                .parse::<Eid>()
                .map_err(|e| e.to_string())?;
            Ok(eid.to_bcd().to_vec())
        }
    }
}

fn not_before(t: &Template, vars: &Vars, curve: Curve, now: i64) -> Result<i64, String> {
    let fixed = match curve {
        Curve::BrainpoolP256r1 => t
            .validity
            .not_before_brainpool
            .as_ref()
            .or(t.validity.not_before.as_ref()),
        Curve::NistP256 => t.validity.not_before.as_ref(),
    };
    match fixed {
        Some(s) => crate::time::parse_rfc3339(&vars.resolve(s)?),
        None => Ok(now),
    }
}

/// Builds and signs one certificate.
pub fn mint(input: &MintInput<'_>) -> Result<Certificate, String> {
    let t = input.template;
    let vars = input.vars.over(t);
    let curve = input.subject_key.curve();
    let (signing_key, issuer_name, issuer_ski) = match input.signer {
        Signer::SelfSigned(key) => {
            if key.public_key() != input.subject_key {
                return Err("a self-signed certificate must be signed with its own key".into());
            }
            (key, None, input.subject_key.ski().to_vec())
        }
        Signer::Issuer(cert, key) => {
            if key.public_key() != &cert.public_key {
                return Err(format!(
                    "the issuer key does not belong to the issuer certificate ({})",
                    cert.subject
                ));
            }
            (key, Some(cert.subject_der().to_vec()), cert.key_id())
        }
    };
    if signing_key.curve() != curve {
        return Err(format!(
            "curve mismatch: the {} certificate's key is {curve} but its issuer's key is {}",
            t.role,
            signing_key.curve()
        ));
    }

    let subject_attrs = t
        .subject
        .iter()
        .map(|a| a.to_attribute(&vars))
        .collect::<Result<Vec<_>, _>>()?;
    let subject = Name::from_attributes(subject_attrs).to_der()?;
    let issuer = issuer_name.unwrap_or_else(|| subject.clone());

    let nb = not_before(t, &vars, curve, input.now)?;
    let na = nb
        .checked_add(i64::from(t.validity.days) * 86_400)
        .filter(|na| *na <= crate::time::MAX_TIME)
        .ok_or_else(|| format!("validity of {} days ends after year 9999", t.validity.days))?;

    let subject_ski = input.subject_key.ski();
    let ctx = ExtContext {
        subject_ski: &subject_ski,
        issuer_ski: &issuer_ski,
    };
    let mut extensions = Vec::new();
    for spec in &t.extensions {
        extensions.extend(ext::encode(&spec.resolve(&vars)?, &ctx)?);
    }

    let algorithm = tlv::sequence(&[&tlv::tlv(tag::OID, known::ECDSA_WITH_SHA256)]);
    let mut parts: Vec<Vec<u8>> = vec![
        tlv::tlv(0xA0, &tlv::tlv(tag::INTEGER, &[2])),
        tlv::unsigned_integer(&serial_bytes(&t.serial, &vars)?),
        algorithm.clone(),
        issuer,
        tlv::sequence(&[&crate::time::encode(nb)?, &crate::time::encode(na)?]),
        subject,
        input.subject_key.to_spki_der(),
    ];
    if !extensions.is_empty() {
        parts.push(tlv::tlv(0xA3, &tlv::tlv(tag::SEQUENCE, &extensions)));
    }
    let tbs = tlv::tlv(tag::SEQUENCE, &parts.concat());
    let signature = signing_key.sign_der(&tbs);
    let der = tlv::sequence(&[&tbs, &algorithm, &tlv::bit_string(&signature)]);
    Certificate::from_der(&der)
        .map_err(|e| format!("internal error: minted certificate does not parse: {e}"))
}
