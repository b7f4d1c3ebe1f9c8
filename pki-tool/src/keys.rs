//! EC key pairs on the two SGP.22 curves (NIST P-256 and brainpoolP256r1): generation, ECDSA with
//! SHA-256 (DER signatures for certificates, raw r||s for SGP.22 TLVs), and the PEM/DER forms the
//! GSMA files use. This is the one place that picks the ECDSA implementation: aws-lc-rs for P-256
//! (measured several times faster than the p256 crate for signing and verifying, and already in the
//! build through rustls), RustCrypto's bp256 for brainpool, which aws-lc does not offer. The p256
//! crate still checks that public points are on the curve when keys are parsed.

use crate::oid::known;
use crate::tlv::{self, tag};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use der::{Decode, Tagged};
use ecdsa::signature::{Signer, Verifier};
use sha1::{Digest, Sha1};
use std::fmt;

type BpSigningKey = ecdsa::SigningKey<bp256::BrainpoolP256r1>;
type BpVerifyingKey = ecdsa::VerifyingKey<bp256::BrainpoolP256r1>;

/// The curves SGP.22 allows.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Curve {
    #[serde(rename = "nist")]
    NistP256,
    #[serde(rename = "brainpool")]
    BrainpoolP256r1,
}

impl Curve {
    pub const ALL: [Curve; 2] = [Curve::NistP256, Curve::BrainpoolP256r1];

    /// DER content octets of the named-curve OID.
    pub fn oid(self) -> &'static [u8] {
        match self {
            Curve::NistP256 => known::PRIME256V1,
            Curve::BrainpoolP256r1 => known::BRAINPOOL_P256R1,
        }
    }

    pub fn from_oid(content: &[u8]) -> Option<Self> {
        Curve::ALL.into_iter().find(|c| c.oid() == content)
    }

    /// The suffix SGP.26 file names use: `NIST` or `BRP`.
    pub fn file_suffix(self) -> &'static str {
        match self {
            Curve::NistP256 => "NIST",
            Curve::BrainpoolP256r1 => "BRP",
        }
    }

    /// The name used on the command line and in manifests.
    pub fn cli_name(self) -> &'static str {
        match self {
            Curve::NistP256 => "nist",
            Curve::BrainpoolP256r1 => "brainpool",
        }
    }
}

impl fmt::Display for Curve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Curve::NistP256 => "NIST P-256",
            Curve::BrainpoolP256r1 => "brainpoolP256r1",
        })
    }
}

/// Why a key could not be read or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("no PEM block found (expected EC PRIVATE KEY, PRIVATE KEY or PUBLIC KEY)")]
    NoPem,
    #[error("malformed PEM: {0}")]
    Pem(String),
    #[error("malformed key structure: {0}")]
    Der(#[from] tlv::DerError),
    #[error("malformed key structure: {0}")]
    Structure(String),
    #[error("unsupported curve {0} (SGP.22 uses prime256v1 or brainpoolP256r1)")]
    UnsupportedCurve(String),
    #[error("the key does not name its curve (no EC PARAMETERS and no parameters field)")]
    NoCurve,
    #[error("the EC PARAMETERS block names {params} but the key names {key}")]
    CurveConflict { params: Curve, key: Curve },
    #[error("invalid private key value for {0}")]
    InvalidScalar(Curve),
    #[error("invalid public point for {0}")]
    InvalidPoint(Curve),
    #[error("the embedded public key does not belong to the private key")]
    PublicKeyMismatch,
    #[error("not an EC key (algorithm {0})")]
    NotEc(String),
    #[error("random number generator failed: {0}")]
    Random(String),
    #[error("signature is malformed")]
    MalformedSignature,
}

#[derive(Clone)]
enum Signing {
    Nist(std::sync::Arc<aws_lc_rs::signature::EcdsaKeyPair>),
    Brainpool(BpSigningKey),
}

fn nist_pair_from_scalar(scalar: &[u8]) -> Result<aws_lc_rs::signature::EcdsaKeyPair, KeyError> {
    let sk = p256::ecdsa::SigningKey::from_slice(scalar)
        .map_err(|_| KeyError::InvalidScalar(Curve::NistP256))?;
    let point = sk.verifying_key().to_sec1_point(false);
    aws_lc_rs::signature::EcdsaKeyPair::from_private_key_and_public_key(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        scalar,
        point.as_bytes(),
    )
    .map_err(|_| KeyError::InvalidScalar(Curve::NistP256))
}

/// Converts a DER ECDSA signature to raw r||s (32 bytes each).
fn der_to_raw(der: &[u8]) -> Option<[u8; 64]> {
    let seq = tlv::parse_single(der, "ECDSA-Sig-Value").ok()?;
    let mut r = seq.reader();
    let mut out = [0u8; 64];
    for half in out.chunks_mut(32) {
        let int = r.read().ok()?;
        let v = int.value.strip_prefix(&[0]).unwrap_or(int.value);
        if int.tag != tag::INTEGER || v.len() > 32 {
            return None;
        }
        half[32 - v.len()..].copy_from_slice(v);
    }
    Some(out)
}

/// An EC private key on one of the SGP.22 curves.
#[derive(Clone)]
pub struct PrivateKey {
    inner: Signing,
    public: PublicKey,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret scalar.
        write!(
            f,
            "PrivateKey({}, SKI {})",
            self.curve(),
            crate::oid::hex(&self.public.ski())
        )
    }
}

#[derive(Clone, Debug)]
enum Verifying {
    Nist(p256::ecdsa::VerifyingKey),
    Brainpool(BpVerifyingKey),
}

/// An EC public key on one of the SGP.22 curves.
#[derive(Clone, Debug)]
pub struct PublicKey {
    inner: Verifying,
    point: [u8; 65],
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.curve() == other.curve() && self.point == other.point
    }
}
impl Eq for PublicKey {}

impl PrivateKey {
    /// A fresh random key.
    pub fn generate(curve: Curve) -> Result<Self, KeyError> {
        if curve == Curve::NistP256 {
            use aws_lc_rs::encoding::AsBigEndian;
            use aws_lc_rs::signature::KeyPair;
            let pair = aws_lc_rs::signature::EcdsaKeyPair::generate(
                &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            )
            .map_err(|_| KeyError::Random("key generation failed".into()))?;
            let public = PublicKey::from_point(curve, pair.public_key().as_ref())?;
            // Round-trip check that the scalar is exportable, as to_pem needs it.
            pair.private_key()
                .as_be_bytes()
                .map_err(|_| KeyError::Random("key export failed".into()))?;
            return Ok(PrivateKey {
                inner: Signing::Nist(std::sync::Arc::new(pair)),
                public,
            });
        }
        let mut bytes = [0u8; 32];
        // Rejection sampling: a uniformly random 256-bit value is a valid scalar with overwhelming
        // probability on both curves; retry on the rare out-of-range value.
        for _ in 0..64 {
            getrandom::fill(&mut bytes).map_err(|e| KeyError::Random(e.to_string()))?;
            if let Ok(k) = Self::from_scalar(curve, &bytes) {
                bytes.fill(0);
                return Ok(k);
            }
        }
        Err(KeyError::Random("no valid scalar after 64 draws".into()))
    }

    /// A key from its 32-byte big-endian secret scalar.
    pub fn from_scalar(curve: Curve, scalar: &[u8]) -> Result<Self, KeyError> {
        let inner = match curve {
            Curve::NistP256 => Signing::Nist(std::sync::Arc::new(nist_pair_from_scalar(scalar)?)),
            Curve::BrainpoolP256r1 => Signing::Brainpool(
                BpSigningKey::from_slice(scalar).map_err(|_| KeyError::InvalidScalar(curve))?,
            ),
        };
        let public = match &inner {
            Signing::Nist(k) => {
                use aws_lc_rs::signature::KeyPair;
                PublicKey::from_point(curve, k.public_key().as_ref())
            }
            Signing::Brainpool(k) => {
                PublicKey::from_verifying(Verifying::Brainpool(*k.verifying_key()))
            }
        }?;
        Ok(PrivateKey { inner, public })
    }

    pub fn curve(&self) -> Curve {
        self.public.curve()
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// ECDSA with SHA-256 over `msg`, DER-encoded (the form X.509 signatures take).
    pub fn sign_der(&self, msg: &[u8]) -> Vec<u8> {
        match &self.inner {
            Signing::Nist(k) => match k.sign(&aws_lc_rs::rand::SystemRandom::new(), msg) {
                Ok(s) => s.as_ref().to_vec(),
                // aws-lc fails only if its RNG does; fall back to deterministic RFC 6979 signing.
                Err(_) => self.nist_fallback_der(msg),
            },
            Signing::Brainpool(k) => {
                let s: ecdsa::der::Signature<bp256::BrainpoolP256r1> = k.sign(msg);
                s.as_bytes().to_vec()
            }
        }
    }

    /// ECDSA with SHA-256 over `msg` as raw r||s (BSI TR-03111), the form SGP.22 puts in tag 5F37.
    pub fn sign_raw(&self, msg: &[u8]) -> [u8; 64] {
        let bytes = match &self.inner {
            Signing::Nist(_) => return der_to_raw(&self.sign_der(msg)).unwrap_or([0u8; 64]),
            Signing::Brainpool(k) => {
                let s: ecdsa::Signature<bp256::BrainpoolP256r1> = k.sign(msg);
                s.to_bytes()
            }
        };
        let mut out = [0u8; 64];
        out.copy_from_slice(bytes.as_slice());
        out
    }

    /// Deterministic (RFC 6979) signing with the p256 crate, used only if aws-lc's RNG fails.
    fn nist_fallback_der(&self, msg: &[u8]) -> Vec<u8> {
        p256::ecdsa::SigningKey::from_slice(&self.scalar())
            .map(|k| {
                let s: p256::ecdsa::DerSignature = k.sign(msg);
                s.as_bytes().to_vec()
            })
            .unwrap_or_default()
    }

    fn scalar(&self) -> Vec<u8> {
        match &self.inner {
            Signing::Nist(k) => {
                use aws_lc_rs::encoding::AsBigEndian;
                k.private_key()
                    .as_be_bytes()
                    .map(|b| b.as_ref().to_vec())
                    .unwrap_or_default()
            }
            Signing::Brainpool(k) => k.to_bytes().to_vec(),
        }
    }

    /// SEC1 `ECPrivateKey` DER with the curve parameters and public key (as openssl writes it).
    pub fn to_sec1_der(&self) -> Vec<u8> {
        let curve_oid = tlv::tlv(tag::OID, self.curve().oid());
        tlv::sequence(&[
            &tlv::tlv(tag::INTEGER, &[1]),
            &tlv::octet_string(&self.scalar()),
            &tlv::tlv(0xA0, &curve_oid),
            &tlv::tlv(0xA1, &tlv::bit_string(&self.public.point)),
        ])
    }

    /// The GSMA file form: an `EC PARAMETERS` block followed by an `EC PRIVATE KEY` block.
    pub fn to_pem(&self) -> String {
        let params = tlv::tlv(tag::OID, self.curve().oid());
        format!(
            "{}{}",
            pem_block("EC PARAMETERS", &params),
            pem_block("EC PRIVATE KEY", &self.to_sec1_der())
        )
    }

    /// Reads a private key from PEM: SEC1 `EC PRIVATE KEY` (with or without a preceding
    /// `EC PARAMETERS` block, as in the GSMA files) or PKCS#8 `PRIVATE KEY`.
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        let blocks = pem_blocks(text)?;
        let mut params_curve = None;
        for (label, der) in &blocks {
            match label.as_str() {
                "EC PARAMETERS" => {
                    let t = tlv::parse_single(der, "EC PARAMETERS")?;
                    if t.tag != tag::OID {
                        return Err(KeyError::UnsupportedCurve(
                            "explicit (non-named) parameters".into(),
                        ));
                    }
                    params_curve = Some(
                        Curve::from_oid(t.value)
                            .ok_or_else(|| KeyError::UnsupportedCurve(oid_text(t.value)))?,
                    );
                }
                "EC PRIVATE KEY" => return Self::from_sec1_der(der, params_curve),
                "PRIVATE KEY" => return Self::from_pkcs8_der(der),
                _ => {}
            }
        }
        Err(KeyError::NoPem)
    }

    /// Reads a SEC1 `ECPrivateKey` (RFC 5915, parsed by the `sec1` crate); `outer_curve` is the
    /// curve named outside it, if any.
    pub fn from_sec1_der(der: &[u8], outer_curve: Option<Curve>) -> Result<Self, KeyError> {
        let key = sec1::EcPrivateKey::from_der(der).map_err(structure("ECPrivateKey"))?;
        let mut curve = outer_curve;
        if let Some(sec1::EcParameters::NamedCurve(oid)) = key.parameters {
            let c = Curve::from_oid(oid.as_bytes())
                .ok_or_else(|| KeyError::UnsupportedCurve(oid.to_string()))?;
            if let Some(outer) = outer_curve.filter(|oc| *oc != c) {
                return Err(KeyError::CurveConflict {
                    params: outer,
                    key: c,
                });
            }
            curve = Some(c);
        }
        let curve = curve.ok_or(KeyError::NoCurve)?;
        // Scalars shorter than 32 bytes occur when a writer drops leading zeros.
        if key.private_key.len() > 32 {
            return Err(KeyError::InvalidScalar(curve));
        }
        let mut padded = [0u8; 32];
        padded[32 - key.private_key.len()..].copy_from_slice(key.private_key);
        let private = Self::from_scalar(curve, &padded)?;
        padded.fill(0);
        if let Some(point) = key.public_key
            && point != private.public.point
        {
            return Err(KeyError::PublicKeyMismatch);
        }
        Ok(private)
    }

    /// Reads a PKCS#8 `PrivateKeyInfo` (RFC 5958, parsed by the `pkcs8` crate) holding an EC key.
    fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        let info = pkcs8::PrivateKeyInfoRef::from_der(der).map_err(structure("PrivateKeyInfo"))?;
        let curve = ec_curve(&info.algorithm)?;
        Self::from_sec1_der(info.private_key.as_bytes(), Some(curve))
    }
}

/// A `der` crate error as a [`KeyError`], naming the structure.
fn structure(what: &'static str) -> impl Fn(der::Error) -> KeyError {
    move |e| KeyError::Structure(format!("{what}: {e}"))
}

/// The curve of `AlgorithmIdentifier { id-ecPublicKey, namedCurve }`.
fn ec_curve(alg: &spki::AlgorithmIdentifierRef<'_>) -> Result<Curve, KeyError> {
    if alg.oid.as_bytes() != known::EC_PUBLIC_KEY {
        return Err(KeyError::NotEc(alg.oid.to_string()));
    }
    let params = alg
        .parameters
        .as_ref()
        .ok_or_else(|| KeyError::UnsupportedCurve("no parameters".into()))?;
    if params.tag() != der::Tag::ObjectIdentifier {
        return Err(KeyError::UnsupportedCurve(
            "explicit (non-named) parameters".into(),
        ));
    }
    Curve::from_oid(params.value())
        .ok_or_else(|| KeyError::UnsupportedCurve(oid_text(params.value())))
}

fn oid_text(content: &[u8]) -> String {
    crate::oid::Oid::from_der_content(content)
        .map(|o| o.to_string())
        .unwrap_or_else(|_| crate::oid::hex(content))
}

impl PublicKey {
    fn from_verifying(inner: Verifying) -> Result<Self, KeyError> {
        let encoded = match &inner {
            Verifying::Nist(k) => k.to_sec1_point(false).as_bytes().to_vec(),
            Verifying::Brainpool(k) => k.to_sec1_point(false).as_bytes().to_vec(),
        };
        let mut point = [0u8; 65];
        if encoded.len() != 65 {
            return Err(KeyError::InvalidPoint(match inner {
                Verifying::Nist(_) => Curve::NistP256,
                Verifying::Brainpool(_) => Curve::BrainpoolP256r1,
            }));
        }
        point.copy_from_slice(&encoded);
        Ok(PublicKey { inner, point })
    }

    /// A public key from its SEC1 point encoding (uncompressed 04||X||Y).
    pub fn from_point(curve: Curve, point: &[u8]) -> Result<Self, KeyError> {
        if point.len() != 65 || point[0] != 0x04 {
            return Err(KeyError::InvalidPoint(curve));
        }
        let inner = match curve {
            Curve::NistP256 => Verifying::Nist(
                p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
                    .map_err(|_| KeyError::InvalidPoint(curve))?,
            ),
            Curve::BrainpoolP256r1 => Verifying::Brainpool(
                BpVerifyingKey::from_sec1_bytes(point)
                    .map_err(|_| KeyError::InvalidPoint(curve))?,
            ),
        };
        Self::from_verifying(inner)
    }

    /// A public key from a DER `SubjectPublicKeyInfo` (parsed by the `spki` crate).
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        let info = spki::SubjectPublicKeyInfoRef::from_der(der)
            .map_err(structure("SubjectPublicKeyInfo"))?;
        let curve = ec_curve(&info.algorithm)?;
        let point = info
            .subject_public_key
            .as_bytes()
            .ok_or(KeyError::InvalidPoint(curve))?;
        Self::from_point(curve, point)
    }

    /// Reads a `PUBLIC KEY` PEM.
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        let blocks = pem_blocks(text)?;
        let (_, der) = blocks
            .iter()
            .find(|(l, _)| l == "PUBLIC KEY")
            .ok_or(KeyError::NoPem)?;
        Self::from_spki_der(der)
    }

    pub fn curve(&self) -> Curve {
        match self.inner {
            Verifying::Nist(_) => Curve::NistP256,
            Verifying::Brainpool(_) => Curve::BrainpoolP256r1,
        }
    }

    /// The uncompressed point, 65 bytes.
    pub fn point(&self) -> &[u8; 65] {
        &self.point
    }

    /// Subject key identifier, RFC 5280 method 1: SHA-1 of the public point (as SGP.26 does).
    pub fn ski(&self) -> [u8; 20] {
        Sha1::digest(self.point).into()
    }

    /// DER `SubjectPublicKeyInfo` with a named curve.
    pub fn to_spki_der(&self) -> Vec<u8> {
        tlv::sequence(&[
            &tlv::sequence(&[
                &tlv::tlv(tag::OID, known::EC_PUBLIC_KEY),
                &tlv::tlv(tag::OID, self.curve().oid()),
            ]),
            &tlv::bit_string(&self.point),
        ])
    }

    pub fn to_pem(&self) -> String {
        pem_block("PUBLIC KEY", &self.to_spki_der())
    }

    /// Verifies a DER ECDSA-with-SHA-256 signature over `msg`.
    pub fn verify_der(&self, msg: &[u8], sig: &[u8]) -> bool {
        match &self.inner {
            Verifying::Nist(_) => aws_lc_rs::signature::UnparsedPublicKey::new(
                &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1,
                &self.point,
            )
            .verify(msg, sig)
            .is_ok(),
            Verifying::Brainpool(k) => {
                ecdsa::der::Signature::<bp256::BrainpoolP256r1>::from_bytes(sig)
                    .map(|s| k.verify(msg, &s).is_ok())
                    .unwrap_or(false)
            }
        }
    }

    /// Verifies a raw r||s (64-byte) ECDSA-with-SHA-256 signature over `msg`.
    pub fn verify_raw(&self, msg: &[u8], sig: &[u8]) -> bool {
        match &self.inner {
            Verifying::Nist(_) => {
                sig.len() == 64
                    && aws_lc_rs::signature::UnparsedPublicKey::new(
                        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED,
                        &self.point,
                    )
                    .verify(msg, sig)
                    .is_ok()
            }
            Verifying::Brainpool(k) => ecdsa::Signature::<bp256::BrainpoolP256r1>::from_slice(sig)
                .map(|s| k.verify(msg, &s).is_ok())
                .unwrap_or(false),
        }
    }
}

/// Encodes one PEM block with 64-character lines.
pub fn pem_block(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Splits PEM text into (label, DER) blocks; text outside blocks is ignored, as openssl does.
/// Each block is decoded by the `pem-rfc7468` crate; this only finds where blocks start and end,
/// because the GSMA key files hold two (EC PARAMETERS, then EC PRIVATE KEY).
pub fn pem_blocks(text: &str) -> Result<Vec<(String, Vec<u8>)>, KeyError> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut block = format!("{line}\n");
        let mut closed = false;
        for body in lines.by_ref() {
            let body = body.trim();
            if body.contains(':') {
                // RFC 1421 headers (e.g. Proc-Type) mean an encrypted key, which we do not read.
                return Err(KeyError::Pem(format!(
                    "{label} block has headers (encrypted keys are not supported)"
                )));
            }
            block.push_str(body);
            block.push('\n');
            if body == end {
                closed = true;
                break;
            }
        }
        if !closed {
            return Err(KeyError::Pem(format!("{label} block has no END line")));
        }
        let (decoded_label, der) =
            pem_rfc7468::decode_vec(block.as_bytes()).map_err(|e| match e {
                pem_rfc7468::Error::Base64(_) => {
                    KeyError::Pem(format!("{label} block is not valid base64 ({e})"))
                }
                e => KeyError::Pem(format!("{label} block: {e}")),
            })?;
        out.push((decoded_label.to_string(), der));
    }
    if out.is_empty() {
        return Err(KeyError::NoPem);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_both_curves_and_forms() {
        for curve in Curve::ALL {
            let k = PrivateKey::generate(curve).expect("key");
            let sig = k.sign_der(b"hello");
            assert!(k.public_key().verify_der(b"hello", &sig));
            assert!(!k.public_key().verify_der(b"hellO", &sig));
            let raw = k.sign_raw(b"hello");
            assert!(k.public_key().verify_raw(b"hello", &raw));
            assert!(!k.public_key().verify_raw(b"hello", &raw[..63]));
        }
    }

    #[test]
    fn aws_lc_and_p256_crate_agree() {
        // Signatures made by the aws-lc backend verify with the independent p256 crate.
        let k = PrivateKey::generate(Curve::NistP256).expect("key");
        let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(k.public_key().point()).expect("point");
        for msg in [&b""[..], b"hello", &[0xFF; 1000]] {
            let der = k.sign_der(msg);
            let s = p256::ecdsa::DerSignature::from_bytes(&der).expect("DER");
            assert!(vk.verify(msg, &s).is_ok());
            let raw = k.sign_raw(msg);
            let s = p256::ecdsa::Signature::from_slice(&raw).expect("r||s");
            assert!(vk.verify(msg, &s).is_ok());
            assert!(k.public_key().verify_raw(msg, &raw));
        }
        // And a key read back from its scalar is the same key.
        let again = PrivateKey::from_scalar(Curve::NistP256, &k.scalar()).expect("scalar");
        assert_eq!(again.public_key(), k.public_key());
    }

    #[test]
    fn pem_round_trip() {
        for curve in Curve::ALL {
            let k = PrivateKey::generate(curve).expect("key");
            let back = PrivateKey::from_pem(&k.to_pem()).expect("reads back");
            assert_eq!(back.public_key(), k.public_key());
            let p = PublicKey::from_pem(&k.public_key().to_pem()).expect("reads back");
            assert_eq!(&p, k.public_key());
        }
    }

    #[test]
    fn secrets_stay_out_of_debug_and_errors() {
        let k = PrivateKey::generate(Curve::NistP256).expect("key");
        let scalar: String = k.scalar().iter().map(|b| format!("{b:02x}")).collect();
        let debug = format!("{k:?}").to_lowercase();
        assert!(!debug.contains(&scalar[..16]), "{debug}");
        // A PEM whose key does not match its embedded public key: the error names no key bytes.
        let other = PrivateKey::generate(Curve::NistP256).expect("key");
        let mut der = k.to_sec1_der();
        let pub_at = der.len() - 65;
        der[pub_at..].copy_from_slice(other.public_key().point());
        let err = PrivateKey::from_pem(&pem_block("EC PRIVATE KEY", &der))
            .expect_err("mismatch")
            .to_string();
        assert!(!err.to_lowercase().contains(&scalar[..16]), "{err}");
        assert_eq!(err, KeyError::PublicKeyMismatch.to_string());
    }

    #[test]
    fn curve_conflict_is_reported() {
        let k = PrivateKey::generate(Curve::NistP256).expect("key");
        let bad = format!(
            "{}{}",
            pem_block(
                "EC PARAMETERS",
                &tlv::tlv(tag::OID, Curve::BrainpoolP256r1.oid())
            ),
            pem_block("EC PRIVATE KEY", &k.to_sec1_der())
        );
        assert!(matches!(
            PrivateKey::from_pem(&bad),
            Err(KeyError::CurveConflict { .. })
        ));
        assert_eq!(
            PrivateKey::from_pem("nothing here").err(),
            Some(KeyError::NoPem)
        );
    }
}
