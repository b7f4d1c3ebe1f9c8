//! Entry points for the fuzz targets in `smds/fuzz` (libFuzzer) and for the regression test that
//! replays their kept corpus on stable Rust. Each takes arbitrary bytes and drives one decoder
//! reachable from the network or from files, as the server or the tools would; any panic is a bug.
//! Fixtures (a PKI, a store, sessions) are minted once per process with fresh keys.

use crate::auth::SessionKeys;
use crate::es11::{self, Es11};
use crate::identity::PeerIdentity;
use crate::pki::Credential;
use crate::sgp22::requests::{
    self, AuthenticateClientRequest, DeleteEventRequest, InitiateAuthenticationRequest,
    RegisterEventRequest,
};
use crate::store::{RedbStore, WriterConfig};
use pki_tool::mint::{MintInput, Signer};
use pki_tool::profile::{Profile, Vars};
use pki_tool::{Certificate, Curve, PrivateKey, Role};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    store: Arc<RedbStore>,
    es11: Arc<Es11>,
    _dir: tempfile::TempDir,
    ci: Certificate,
    eum: Certificate,
    peer: PeerIdentity,
    profile: Profile,
}

fn minted(
    profile: &Profile,
    role: Role,
    vars: &Vars,
    key: &PrivateKey,
    signer: Signer<'_>,
) -> Certificate {
    pki_tool::mint::mint(&MintInput {
        template: profile.template(role),
        vars,
        subject_key: key.public_key(),
        signer,
        now: pki_tool::time::now(),
    })
    .unwrap_or_else(|e| panic!("fixture {role}: {e}"))
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let profile = Profile::builtin("default").unwrap_or_else(|e| panic!("{e}"));
        let mut vars = Vars::default();
        vars.set("eid", "89049032123451234512345678901235");
        vars.set("ein", "89049032");
        vars.set("smdp_fqdn", "smdp.example.com");
        vars.set("smds_fqdn", "localhost");
        let key = |c| PrivateKey::generate(c).unwrap_or_else(|e| panic!("{e}"));
        let ci_key = key(Curve::NistP256);
        let ci = minted(
            &profile,
            Role::Ci,
            &vars,
            &ci_key,
            Signer::SelfSigned(&ci_key),
        );
        let eum_key = key(Curve::NistP256);
        let eum = minted(
            &profile,
            Role::Eum,
            &vars,
            &eum_key,
            Signer::Issuer(&ci, &ci_key),
        );
        let ds_key = key(Curve::NistP256);
        let ds = minted(
            &profile,
            Role::Dsauth,
            &vars,
            &ds_key,
            Signer::Issuer(&ci, &ci_key),
        );
        let dp_key = key(Curve::NistP256);
        let dp = minted(
            &profile,
            Role::Dptls,
            &vars,
            &dp_key,
            Signer::Issuer(&ci, &ci_key),
        );
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let store = runtime
            .block_on(async {
                RedbStore::open(&dir.path().join("events.redb"), WriterConfig::default())
            })
            .unwrap_or_else(|e| panic!("{e}"));
        let es11 = Es11::new(
            "localhost".into(),
            vec![ci.clone()],
            &[Credential {
                cert: ds,
                key: ds_key,
                path: dir.path().join("ds"),
                chain: vec![],
            }],
            Arc::new(SessionKeys::new(&[[0x5e; 32]], Duration::from_secs(300))),
            Arc::new(crate::revocation::Revocation::none()),
        );
        let peer =
            PeerIdentity::from_certificate(&dp, &ci.key_id(), crate::identity::PeerRole::SmDp);
        Fixture {
            runtime,
            store: Arc::new(store),
            es11: Arc::new(es11),
            _dir: dir,
            ci,
            eum,
            peer,
            profile,
        }
    })
}

/// An ES11.InitiateAuthentication JSON body.
pub fn es11_initiate(data: &[u8]) {
    let f = fixture();
    let Ok(body) = requests::parse_object(data) else {
        return;
    };
    if let Ok(req) = InitiateAuthenticationRequest::parse(&body) {
        let _ = f.runtime.block_on(es11::initiate_authentication(
            f.es11.clone(),
            req,
            pki_tool::time::now(),
        ));
    }
}

/// An ES11.AuthenticateClient JSON body (transactions are stateless: the fuzzer reaches the
/// checks after the transactionId only with one issued within the lifetime).
pub fn es11_authenticate(data: &[u8]) {
    let f = fixture();
    let Ok(body) = requests::parse_object(data) else {
        return;
    };
    if let Ok(req) = AuthenticateClientRequest::parse(&body) {
        let _ = f.runtime.block_on(es11::authenticate_client(
            f.es11.clone(),
            f.store.clone(),
            req,
            pki_tool::time::now(),
        ));
    }
}

/// A body of the ASN.1 binding (`RemoteProfileProvisioningRequest`), decoded and, when it is an
/// ES11 call, handled and encoded as the server does.
pub fn asn1_binding(data: &[u8]) {
    use crate::sgp22::FunctionError;
    use crate::sgp22::asn1_binding::{self, Asn1Call};
    let f = fixture();
    match asn1_binding::parse_request(data) {
        Ok(Asn1Call::InitiateAuthentication(req)) => {
            match f.runtime.block_on(es11::initiate_authentication(
                f.es11.clone(),
                req,
                pki_tool::time::now(),
            )) {
                Ok(r) => drop(asn1_binding::initiate_authentication_ok(&r)),
                Err(e) => drop(asn1_binding::initiate_authentication_error(e.status())),
            }
        }
        Ok(Asn1Call::AuthenticateClient(req)) => {
            match f.runtime.block_on(es11::authenticate_client(
                f.es11.clone(),
                f.store.clone(),
                req,
                pki_tool::time::now(),
            )) {
                Ok(r) => drop(asn1_binding::authenticate_client_ok(&r)),
                Err(e) => drop(asn1_binding::authenticate_client_error(e.status())),
            }
        }
        Ok(Asn1Call::CheckEvent(req)) => {
            let _ = f.runtime.block_on(es11::check_event(
                &f.es11,
                f.store.as_ref(),
                req,
                pki_tool::time::now(),
            ));
        }
        Err(_) => {}
    }
}

/// An AuthenticateServerResponse (BF38) as the eUICC would send it, and EUICCInfo1.
pub fn euicc_asn1(data: &[u8]) {
    let _ = crate::asn1::parse_authenticate_server_response(data);
    let _ = crate::asn1::parse_euicc_info1(data);
    let _ = rasn::der::decode::<crate::asn1::EuiccInfo1>(data);
    let _ = rasn::der::decode::<crate::asn1::DeviceInfo>(data);
    let _ = rasn::der::decode::<crate::asn1::ServerSigned1>(data);
}

/// ES12 RegisterEvent and DeleteEvent JSON bodies (events are stored in a scratch database).
pub fn es12(data: &[u8]) {
    let f = fixture();
    let Ok(body) = requests::parse_object(data) else {
        return;
    };
    f.runtime.block_on(async {
        if let Ok(req) = RegisterEventRequest::parse(&body) {
            let _ = crate::es12::register_event(f.store.as_ref(), None, &f.peer, req, 0).await;
        }
        if let Ok(req) = DeleteEventRequest::parse(&body) {
            let _ = crate::es12::delete_event(f.store.as_ref(), None, &f.peer, req).await;
        }
    });
}

/// A certificate file (DER or PEM): parsing, SGP.22 validation as an eUICC under the fixture's
/// EUM and CI, and linting against every role template.
pub fn certificate(data: &[u8]) {
    let f = fixture();
    if let Ok(cert) = Certificate::from_der_or_pem(data) {
        let now = pki_tool::time::now();
        let _ = pki_tool::validate::verify_chain(
            &cert,
            std::slice::from_ref(&f.eum),
            std::slice::from_ref(&f.ci),
            None,
            pki_tool::validate::Options::at(now),
        );
        for role in Role::BASE {
            let _ = pki_tool::lint::lint(
                &cert,
                f.profile.template(role),
                &Vars::default(),
                Some(&f.ci),
            );
        }
    }
}

/// A two-certificate chain (a 2-byte big-endian length, the EUM, then the eUICC) validated
/// against a CI.
pub fn chain(data: &[u8]) {
    let f = fixture();
    if data.len() < 2 {
        return;
    }
    let split = (usize::from(data[0]) << 8 | usize::from(data[1])).min(data.len() - 2);
    let (a, b) = data[2..].split_at(split);
    let (Ok(leaf), Ok(mid)) = (Certificate::from_der(b), Certificate::from_der(a)) else {
        return;
    };
    let _ = pki_tool::validate::verify_chain(
        &leaf,
        &[mid],
        std::slice::from_ref(&f.ci),
        None,
        pki_tool::validate::Options::at(0),
    );
}

/// Key files as pki-tool reads them (PEM text: SEC1 with or without EC PARAMETERS, PKCS#8, SPKI).
pub fn key_pem(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = PrivateKey::from_pem(text);
        let _ = pki_tool::PublicKey::from_pem(text);
    }
    let _ = PrivateKey::from_sec1_der(data, None);
    let _ = pki_tool::PublicKey::from_spki_der(data);
}

/// A fuzz entry point.
pub type Target = fn(&[u8]);

/// All entry points by name, for the corpus replay.
pub const TARGETS: [(&str, Target); 8] = [
    ("es11_initiate", es11_initiate),
    ("asn1_binding", asn1_binding),
    ("es11_authenticate", es11_authenticate),
    ("euicc_asn1", euicc_asn1),
    ("es12", es12),
    ("certificate", certificate),
    ("chain", chain),
    ("key_pem", key_pem),
];
