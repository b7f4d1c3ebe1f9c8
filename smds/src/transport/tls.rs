//! TLS for the SM-DS and its lab clients, on rustls.
//!
//! webpki rejects GSMA certificates (critical certificate policies, EID name constraints) and
//! cannot do brainpool, so both directions verify certificates with the pki-tool library's SGP.22
//! validation instead: the server checks SM-DP+ client certificates (CERT.DP.TLS: policy
//! 2.23.146.1.2.1.3, EKU clientAuth, chaining to a configured CI, within validity), and the lab
//! clients check the SM-DS certificate (CERT.DS.TLS, EKU serverAuth, DNS name). Client
//! authentication is optional at the TLS layer so that ES11 works without a certificate; ES12
//! handlers refuse requests that have none. A certificate that is presented but invalid fails the
//! handshake, and so does one that a loaded CRL revokes (see [`crate::revocation`]). The identity
//! the server verifier derives is handed to the connection (see
//! [`Sgp22ClientVerifier::take_identity`]), so a client chain is validated once per handshake.

use crate::identity::{PeerIdentity, PeerRole};
use crate::revocation::{Revocation, RevocationError};
use pki_tool::oid::known;
use pki_tool::profile::ExtensionSpec;
use pki_tool::validate::{ChainError, Options, verify_chain};
use pki_tool::{Certificate, Curve, PrivateKey, Role};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivateSec1KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// `ecdsa_brainpoolP256r1tls13_sha256` (RFC 8734), which rustls has no name for.
pub const ECDSA_BRAINPOOLP256R1_TLS13_SHA256: SignatureScheme = SignatureScheme::Unknown(0x081A);

/// A source of "now" for certificate validity, so tests can move the clock.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

fn unix(now: UnixTime) -> i64 {
    i64::try_from(now.as_secs()).unwrap_or(i64::MAX)
}

fn has_purpose(cert: &Certificate, purpose: &str) -> bool {
    matches!(
        cert.extension(known::EXT_EXTENDED_KEY_USAGE).and_then(|e| e.spec.as_ref()),
        Some(ExtensionSpec::ExtendedKeyUsage { purposes, .. }) if purposes.iter().any(|p| p == purpose)
    )
}

fn parse(der: &CertificateDer<'_>) -> Result<Certificate, Error> {
    Certificate::from_der(der.as_ref())
        .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))
}

fn rejected(why: String) -> Error {
    tracing::info!(reason = %why, "TLS peer certificate rejected");
    Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(
        Rejected(why),
    ))))
}

#[derive(Debug)]
struct Rejected(String);
impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Rejected {}

/// Verifies a handshake signature with the key of `cert`: ECDSA with SHA-256 on the certificate's
/// curve. TLS 1.2's `ecdsa_secp256r1_sha256` code point means "ECDSA with SHA-256" whatever the
/// curve; TLS 1.3 names the curve.
fn verify_signature(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
    tls13: bool,
) -> Result<HandshakeSignatureValid, Error> {
    let c = parse(cert)?;
    let curve_ok = match (dss.scheme, c.public_key.curve()) {
        (SignatureScheme::ECDSA_NISTP256_SHA256, Curve::NistP256) => true,
        (SignatureScheme::ECDSA_NISTP256_SHA256, Curve::BrainpoolP256r1) => !tls13,
        (s, Curve::BrainpoolP256r1) => s == ECDSA_BRAINPOOLP256R1_TLS13_SHA256,
        _ => false,
    };
    if !curve_ok {
        return Err(Error::PeerMisbehaved(
            rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
        ));
    }
    if c.public_key.verify_der(message, dss.signature()) {
        Ok(HandshakeSignatureValid::assertion())
    } else {
        Err(Error::InvalidCertificate(CertificateError::BadSignature))
    }
}

/// The handshake-signature methods both verifiers share.
macro_rules! handshake_signatures {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            verify_signature(message, cert, dss, false)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            verify_signature(message, cert, dss, true)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            schemes()
        }
    };
}

fn schemes() -> Vec<SignatureScheme> {
    vec![
        SignatureScheme::ECDSA_NISTP256_SHA256,
        ECDSA_BRAINPOOLP256R1_TLS13_SHA256,
    ]
}

/// Why a client certificate chain is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientCertError {
    #[error("client certificate does not parse: {0}")]
    Leaf(String),
    #[error("intermediate certificate does not parse: {0}")]
    Intermediate(String),
    #[error("{0}")]
    Chain(ChainError),
    #[error("client certificate \"{0}\" lacks EKU clientAuth")]
    NoClientAuth(String),
    #[error("{0}")]
    Revoked(RevocationError),
}

/// Identities verified in handshakes whose connections have not picked them up yet. Bounded:
/// a handshake that fails after the certificate check leaves its entry until it is evicted.
const PENDING_IDENTITIES_MAX: usize = 1024;

type ChainKey = [u8; 32];

fn chain_key<'a>(certs: impl IntoIterator<Item = &'a [u8]>) -> ChainKey {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for c in certs {
        h.update((c.len() as u64).to_be_bytes());
        h.update(c);
    }
    h.finalize().into()
}

/// The SM-DS side: SGP.22 validation of SM-DP+ client certificates.
pub struct Sgp22ClientVerifier {
    cis: Vec<Certificate>,
    hints: Vec<DistinguishedName>,
    clock: Option<Clock>,
    revocation: Arc<Revocation>,
    pending: Mutex<HashMap<ChainKey, PeerIdentity>>,
}

impl std::fmt::Debug for Sgp22ClientVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sgp22ClientVerifier")
            .field("cis", &self.cis.len())
            .finish()
    }
}

impl Sgp22ClientVerifier {
    /// `cis` are the trusted CI certificates; `clock` overrides the time rustls passes in;
    /// `revocation` holds the CRLs client chains are checked against.
    pub fn new(cis: Vec<Certificate>, clock: Option<Clock>, revocation: Arc<Revocation>) -> Self {
        let hints = cis
            .iter()
            .map(|c| DistinguishedName::from(c.subject_der().to_vec()))
            .collect();
        Sgp22ClientVerifier {
            cis,
            hints,
            clock,
            revocation,
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// The identity of the client chain a completed handshake presented, as this verifier
    /// established it during the handshake. Only if that entry was evicted (more than
    /// [`PENDING_IDENTITIES_MAX`] handshakes in between) is the chain validated again.
    pub fn take_identity(&self, certs: &[CertificateDer<'_>], now: i64) -> Option<PeerIdentity> {
        let (leaf, rest) = certs.split_first()?;
        let key = chain_key(certs.iter().map(|c| c.as_ref()));
        let pending = self.pending.lock().ok().and_then(|mut m| m.remove(&key));
        if pending.is_some() {
            return pending;
        }
        let inter: Vec<Vec<u8>> = rest.iter().map(|c| c.as_ref().to_vec()).collect();
        match self.identify(leaf.as_ref(), &inter, now) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::warn!(error = %e, "client certificate accepted in the handshake no longer validates");
                None
            }
        }
    }

    /// Validates a TLS client certificate chain (CERT.DP.TLS of an SM-DP+ or CERT.DS.TLS of an
    /// SM-DS, by its role policy) and returns who it is; which functions it may call is the
    /// routes' decision.
    pub fn identify(
        &self,
        end_entity: &[u8],
        intermediates: &[Vec<u8>],
        now: i64,
    ) -> Result<PeerIdentity, ClientCertError> {
        let leaf =
            Certificate::from_der(end_entity).map_err(|e| ClientCertError::Leaf(e.to_string()))?;
        let inter = intermediates
            .iter()
            .map(|d| Certificate::from_der(d))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ClientCertError::Intermediate(e.to_string()))?;
        // Without a client role policy the chain is checked as an SM-DP+'s, whose error names
        // the policy it lacks.
        let role = PeerRole::of(&leaf).unwrap_or(PeerRole::SmDp);
        let v = verify_chain(
            &leaf,
            &inter,
            &self.cis,
            Some(role.certificate_role()),
            Options::at(now),
        )
        .map_err(ClientCertError::Chain)?;
        if !has_purpose(&leaf, "clientAuth") {
            return Err(ClientCertError::NoClientAuth(leaf.subject.to_string()));
        }
        let path: Vec<&Certificate> = std::iter::once(&leaf)
            .chain(v.intermediates_used.iter().filter_map(|i| inter.get(*i)))
            .collect();
        self.revocation
            .check(&path, &self.cis[v.anchor], now, role.interface())
            .map_err(ClientCertError::Revoked)?;
        Ok(PeerIdentity::from_certificate(
            &leaf,
            &self.cis[v.anchor].key_id(),
            role,
        ))
    }
}

impl ClientCertVerifier for Sgp22ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let now = self.clock.as_ref().map_or_else(|| unix(now), |c| c());
        let inter: Vec<Vec<u8>> = intermediates.iter().map(|c| c.as_ref().to_vec()).collect();
        let identity = self
            .identify(end_entity.as_ref(), &inter, now)
            .map_err(|e| rejected(e.to_string()))?;
        let key = chain_key(
            std::iter::once(end_entity.as_ref()).chain(intermediates.iter().map(|c| c.as_ref())),
        );
        if let Ok(mut m) = self.pending.lock() {
            if m.len() >= PENDING_IDENTITIES_MAX {
                m.clear();
            }
            m.insert(key, identity);
        }
        Ok(ClientCertVerified::assertion())
    }

    handshake_signatures!();
}

/// The client side (lab clients, and an Alternative SM-DS calling its Root): SGP.22 validation
/// of the SM-DS TLS certificate and its DNS name, and its revocation when CRLs are given.
pub struct Sgp22ServerVerifier {
    cis: Vec<Certificate>,
    role: Role,
    clock: Option<Clock>,
    /// CRLs the chain is checked against, and the interface named in refusals.
    revocation: Option<(Arc<Revocation>, &'static str)>,
}

impl std::fmt::Debug for Sgp22ServerVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sgp22ServerVerifier")
            .field("cis", &self.cis.len())
            .finish()
    }
}

impl Sgp22ServerVerifier {
    /// Trusts server certificates of `role` (DS TLS for an SM-DS) under `cis`.
    pub fn new(cis: Vec<Certificate>, role: Role, clock: Option<Clock>) -> Self {
        Sgp22ServerVerifier {
            cis,
            role,
            clock,
            revocation: None,
        }
    }

    /// Also checks the chain against `revocation`'s CRLs (refusals counted under `interface`).
    pub fn with_revocation(mut self, revocation: Arc<Revocation>, interface: &'static str) -> Self {
        self.revocation = Some((revocation, interface));
        self
    }
}

impl ServerCertVerifier for Sgp22ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let now = self.clock.as_ref().map_or_else(|| unix(now), |c| c());
        let leaf = parse(end_entity)?;
        let inter = intermediates
            .iter()
            .map(parse)
            .collect::<Result<Vec<_>, _>>()?;
        let v = verify_chain(&leaf, &inter, &self.cis, Some(self.role), Options::at(now))
            .map_err(|e| rejected(e.to_string()))?;
        if let Some((revocation, interface)) = &self.revocation {
            let path: Vec<&Certificate> = std::iter::once(&leaf)
                .chain(v.intermediates_used.iter().filter_map(|i| inter.get(*i)))
                .collect();
            revocation
                .check(&path, &self.cis[v.anchor], now, interface)
                .map_err(|e| rejected(e.to_string()))?;
        }
        if !has_purpose(&leaf, "serverAuth") {
            return Err(rejected(format!(
                "server certificate \"{}\" lacks EKU serverAuth",
                leaf.subject
            )));
        }
        let wanted = match server_name {
            ServerName::DnsName(d) => d.as_ref().to_ascii_lowercase(),
            ServerName::IpAddress(_) => {
                return Err(Error::InvalidCertificate(CertificateError::NotValidForName));
            }
            _ => return Err(Error::InvalidCertificate(CertificateError::NotValidForName)),
        };
        let matches = leaf
            .subject_alt_names()
            .iter()
            .filter_map(|n| n.strip_prefix("dns:"))
            .any(|d| d.eq_ignore_ascii_case(&wanted));
        if !matches {
            return Err(Error::InvalidCertificate(CertificateError::NotValidForName));
        }
        Ok(ServerCertVerified::assertion())
    }

    handshake_signatures!();
}

/// Why a TLS configuration cannot be built.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TlsConfigError {
    #[error(
        "{what}: TLS keys must be NIST P-256 (the TLS library cannot sign with {curve}); use the NIST certificate"
    )]
    Curve { what: &'static str, curve: Curve },
    #[error("{what}: the private key does not belong to the certificate")]
    KeyMismatch { what: &'static str },
    #[error("no client certificate in the certificate file")]
    NoCertificate,
    #[error("{what}: {}", rustls_reason(source))]
    Rustls {
        what: &'static str,
        source: rustls::Error,
    },
}

/// A rustls error in words: the reason inside `InvalidCertificate(Other(..))` rather than the
/// nested debug text of its wrappers.
pub fn rustls_reason(e: &rustls::Error) -> String {
    match e {
        Error::InvalidCertificate(CertificateError::Other(o)) => {
            format!("certificate not usable: {}", o.0)
        }
        Error::InvalidCertificate(c) => format!("certificate not usable: {c}"),
        other => other.to_string(),
    }
}

/// The certificate chain to present (`cert`, then the SubCAs above it, nearest first) and its key,
/// as rustls wants them. rustls's providers sign only with NIST curves, so a brainpool TLS key is
/// refused here with a clear message.
pub fn rustls_identity(
    cert: &Certificate,
    intermediates: &[Certificate],
    key: &PrivateKey,
    what: &'static str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsConfigError> {
    if key.curve() != Curve::NistP256 {
        return Err(TlsConfigError::Curve {
            what,
            curve: key.curve(),
        });
    }
    if key.public_key() != &cert.public_key {
        return Err(TlsConfigError::KeyMismatch { what });
    }
    Ok((
        std::iter::once(cert)
            .chain(intermediates)
            .map(|c| CertificateDer::from(c.der().to_vec()))
            .collect(),
        PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(key.to_sec1_der())),
    ))
}

pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn rustls_error(what: &'static str) -> impl Fn(rustls::Error) -> TlsConfigError {
    move |source| TlsConfigError::Rustls { what, source }
}

/// CERT.DS.TLS as the server presents it, replaceable while the server runs: handshakes after
/// [`ServerCertificate::replace`] present the new chain, connections already open keep theirs.
/// A client asking for the `rsp3-` name by SNI gets the v3 chain when one is set
/// ([`ServerCertificate::replace_rsp3`]); every other client, the base one.
#[derive(Debug)]
pub struct ServerCertificate {
    current: std::sync::RwLock<Arc<rustls::sign::CertifiedKey>>,
    /// The `rsp3-<hostname>` SNI name (lower case) and its chain.
    rsp3: std::sync::RwLock<Option<(String, Arc<rustls::sign::CertifiedKey>)>>,
}

/// Reads a lock's value even if a writer panicked (the value is replaced whole, never torn).
fn read<T: Clone>(lock: &std::sync::RwLock<T>) -> T {
    match lock.read() {
        Ok(v) => v.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

fn write<T>(lock: &std::sync::RwLock<T>, value: T) {
    match lock.write() {
        Ok(mut v) => *v = value,
        Err(poisoned) => *poisoned.into_inner() = value,
    }
}

const DS_TLS: &str = "CERT.DS.TLS";

fn certified_key(
    cert: &Certificate,
    intermediates: &[Certificate],
    key: &PrivateKey,
) -> Result<Arc<rustls::sign::CertifiedKey>, TlsConfigError> {
    let (chain, key) = rustls_identity(cert, intermediates, key, DS_TLS)?;
    let signing = provider()
        .key_provider
        .load_private_key(key)
        .map_err(rustls_error(DS_TLS))?;
    Ok(Arc::new(rustls::sign::CertifiedKey::new(chain, signing)))
}

impl ServerCertificate {
    pub fn new(
        cert: &Certificate,
        intermediates: &[Certificate],
        key: &PrivateKey,
    ) -> Result<Self, TlsConfigError> {
        Ok(ServerCertificate {
            current: std::sync::RwLock::new(certified_key(cert, intermediates, key)?),
            rsp3: std::sync::RwLock::new(None),
        })
    }

    /// Presents `cert` (then `intermediates`) with `key` to clients asking for `sni_name` (the
    /// `rsp3-` name, see `crate::sgp22::rsp3_name`) from the next handshake on.
    pub fn replace_rsp3(
        &self,
        sni_name: &str,
        cert: &Certificate,
        intermediates: &[Certificate],
        key: &PrivateKey,
    ) -> Result<(), TlsConfigError> {
        let next = certified_key(cert, intermediates, key)?;
        write(&self.rsp3, Some((sni_name.to_ascii_lowercase(), next)));
        Ok(())
    }

    /// Presents `cert` (then `intermediates`) with `key` from the next handshake on.
    pub fn replace(
        &self,
        cert: &Certificate,
        intermediates: &[Certificate],
        key: &PrivateKey,
    ) -> Result<(), TlsConfigError> {
        write(&self.current, certified_key(cert, intermediates, key)?);
        Ok(())
    }
}

impl rustls::server::ResolvesServerCert for ServerCertificate {
    fn resolve(
        &self,
        hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        if let Some(sni) = hello.server_name()
            && let Some((name, key)) = read(&self.rsp3)
            && sni.eq_ignore_ascii_case(&name)
        {
            return Some(key);
        }
        Some(read(&self.current))
    }
}

/// The server's crypto provider: every suite and group of the default one, the SGP.22 suites
/// first (TLS_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256). With the server's
/// order deciding, a client that lists AES-256-GCM-SHA384 first (curl with OpenSSL) still gets
/// a SHA-256 key schedule and transcript, which run on accelerated SHA-256; every suite a
/// client may ask for remains, and so do the groups (post-quantum hybrids included).
fn server_provider() -> Arc<rustls::crypto::CryptoProvider> {
    use rustls::CipherSuite as C;
    let mut p = rustls::crypto::aws_lc_rs::default_provider();
    let rank = |s: &rustls::SupportedCipherSuite| match s.suite() {
        C::TLS13_AES_128_GCM_SHA256 => 0,
        C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => 1,
        C::TLS13_AES_256_GCM_SHA384 => 2,
        C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => 3,
        C::TLS13_CHACHA20_POLY1305_SHA256 => 4,
        C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => 5,
        _ => 6,
    };
    p.cipher_suites.sort_by_key(rank);
    Arc::new(p)
}

/// The SM-DS server configuration: CERT.DS.TLS, optional client authentication, h2 and HTTP/1.1,
/// the server's suite order, and `tls13_tickets` TLS 1.3 session tickets per connection (0: no
/// resumption at all, TLS 1.2 session IDs included).
pub fn server_config(
    certificate: Arc<ServerCertificate>,
    verifier: Arc<Sgp22ClientVerifier>,
    tls13_tickets: usize,
) -> Result<rustls::ServerConfig, TlsConfigError> {
    let mut cfg = rustls::ServerConfig::builder_with_provider(server_provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(rustls_error(DS_TLS))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(certificate);
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    cfg.ignore_client_order = true;
    cfg.send_tls13_tickets = tls13_tickets;
    if tls13_tickets == 0 {
        cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    }
    Ok(cfg)
}

/// A client configuration for ordinary web PKI servers (a push gateway, PostgreSQL): the CA
/// certificates of `ca_file` (PEM), or the system's when `None`.
pub fn web_client_config(
    ca_file: Option<&std::path::Path>,
) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let bad = |e: String| format!("{}: {e}", path.display());
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| bad(e.to_string()))?
                .collect::<Result<_, _>>()
                .map_err(|e| bad(e.to_string()))?;
            if certs.is_empty() {
                return Err(bad("no PEM certificate in the file".into()));
            }
            for c in certs {
                roots.add(c).map_err(|e| bad(e.to_string()))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err("no system CA certificates found: name a CA file".into());
            }
        }
    }
    Ok(rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A lab client configuration trusting `cis` for the server's `role`, optionally presenting a
/// client certificate chain (an SM-DP+'s CERT.DP.TLS, then any SubCAs above it, for ES12).
pub fn client_config(
    cis: Vec<Certificate>,
    role: Role,
    client: Option<(&[Certificate], &PrivateKey)>,
    clock: Option<Clock>,
) -> Result<rustls::ClientConfig, TlsConfigError> {
    client_config_with(provider(), cis, role, client, clock)
}

/// [`client_config`] with another crypto provider: other suites or groups in another order,
/// as a benchmark does to connect the way a given LPA does.
pub fn client_config_with(
    provider: Arc<rustls::crypto::CryptoProvider>,
    cis: Vec<Certificate>,
    role: Role,
    client: Option<(&[Certificate], &PrivateKey)>,
    clock: Option<Clock>,
) -> Result<rustls::ClientConfig, TlsConfigError> {
    client_config_verifying(provider, Sgp22ServerVerifier::new(cis, role, clock), client)
}

/// A client configuration checking the server with `verifier`, optionally presenting a client
/// certificate chain.
pub fn client_config_verifying(
    provider: Arc<rustls::crypto::CryptoProvider>,
    verifier: Sgp22ServerVerifier,
    client: Option<(&[Certificate], &PrivateKey)>,
) -> Result<rustls::ClientConfig, TlsConfigError> {
    const WHAT: &str = "client certificate";
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(rustls_error(WHAT))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let mut cfg = match client {
        Some((certs, key)) => {
            let (cert, intermediates) = certs.split_first().ok_or(TlsConfigError::NoCertificate)?;
            let (chain, key) = rustls_identity(cert, intermediates, key, WHAT)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(rustls_error(WHAT))?
        }
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}
