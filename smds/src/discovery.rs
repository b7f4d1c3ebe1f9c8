//! The device side of ES11 for labs without a device: an LPA plus a software eUICC built from key
//! material minted by pki-tool (or the SGP.26 files). It does what a real eUICC does in
//! ES10b.AuthenticateServer: checks CERT.DSauth against its CI and serverSignature1 over the exact
//! serverSigned1 bytes, refuses a server that fails, then builds and signs euiccSigned1 with
//! EUICCInfo2 and DeviceInfo.

use crate::asn1::{
    self, CtxParamsForCommonAuthentication, DeviceCapabilities, DeviceInfo, EuiccInfo1,
    ServerSigned1,
};
use crate::client::{Connection, Endpoint, FunctionResult};
use crate::es11::normalize_address;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pki_tool::hierarchy::{read_cert, read_key};
use pki_tool::tlv::{self, tag};
use pki_tool::validate::{Options, verify_chain};
use pki_tool::{Certificate, Curve, Eid, PrivateKey, Role};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A software eUICC: its certificate and key, its EUM's certificate, and the CI it trusts.
#[derive(Debug, Clone)]
pub struct SoftEuicc {
    pub euicc_cert: Certificate,
    pub eum_cert: Certificate,
    pub key: PrivateKey,
    pub ci: Certificate,
    pub eid: Eid,
}

fn first_existing(candidates: &[PathBuf]) -> Result<PathBuf, String> {
    candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        .ok_or_else(|| {
            format!(
                "none of these files exists: {}",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

impl SoftEuicc {
    /// Loads from a `pki-tool init` directory or an SGP.26 set (`CI/` or `CertificateIssuer/`,
    /// `EUM/`, `eUICC/`, or `eUICC/<EID>/` for an eUICC issued later).
    pub fn load(dir: &Path, curve: Curve, eid: Option<&Eid>) -> Result<Self, String> {
        let c = curve.file_suffix();
        let ci = read_cert(&first_existing(&[
            dir.join(format!("CertificateIssuer/CERT_CI_ECDSA_{c}.der")),
            dir.join(format!("CI/CERT_CI_ECDSA_{c}.der")),
        ])?)
        .map_err(|e| e.to_string())?;
        let eum = read_cert(&first_existing(&[
            dir.join(format!("EUM/CERT_EUM_ECDSA_{c}.der"))
        ])?)
        .map_err(|e| e.to_string())?;
        let mut euicc_dirs = vec![dir.join("eUICC")];
        if let Some(e) = eid {
            euicc_dirs.insert(0, dir.join("eUICC").join(e.as_str()));
        }
        for d in euicc_dirs {
            let cert_path = d.join(format!("CERT_EUICC_ECDSA_{c}.der"));
            if !cert_path.exists() {
                continue;
            }
            let cert = read_cert(&cert_path).map_err(|e| e.to_string())?;
            let cert_eid = cert
                .subject
                .get(pki_tool::oid::known::AT_SERIAL_NUMBER)
                .and_then(|s| Eid::parse(s).ok())
                .ok_or_else(|| format!("{}: no valid EID in the subject", cert_path.display()))?;
            if eid.is_some_and(|e| *e != cert_eid) {
                continue;
            }
            let key =
                read_key(&d.join(format!("SK_EUICC_ECDSA_{c}.pem"))).map_err(|e| e.to_string())?;
            if key.public_key() != &cert.public_key {
                return Err(format!(
                    "{}: the key does not belong to the eUICC certificate",
                    d.display()
                ));
            }
            return Ok(SoftEuicc {
                euicc_cert: cert,
                eum_cert: eum,
                key,
                ci,
                eid: cert_eid,
            });
        }
        Err(match eid {
            Some(e) => format!(
                "no {c} eUICC with EID {e} under {}",
                dir.join("eUICC").display()
            ),
            None => format!(
                "no {c} eUICC certificate under {}",
                dir.join("eUICC").display()
            ),
        })
    }

    /// ES10b.GetEUICCChallenge.
    pub fn challenge() -> Result<[u8; 16], String> {
        let mut c = [0u8; 16];
        getrandom::fill(&mut c).map_err(|e| e.to_string())?;
        Ok(c)
    }

    fn ci_id(&self) -> Vec<u8> {
        self.ci.key_id()
    }

    /// ES10b.GetEUICCInfo1: SVN 2.2.0 and this eUICC's CI key id for verification and signing.
    pub fn euicc_info1(&self) -> Result<Vec<u8>, String> {
        asn1::der(&EuiccInfo1 {
            svn: vec![2, 2, 0].into(),
            euicc_ci_pkid_list_for_verification: vec![self.ci_id().into()],
            euicc_ci_pkid_list_for_signing: vec![self.ci_id().into()],
        })
    }

    /// A v2.2 `EUICCInfo2` (BF22).
    pub fn euicc_info2(&self) -> Vec<u8> {
        let ski_list = |t| tlv::tlv(t, &tlv::octet_string(&self.ci_id()));
        tlv::constructed(
            0xBF22,
            &[
                &tlv::tlv(0x81, &[2, 3, 0]),
                &tlv::tlv(0x82, &[2, 2, 0]),
                &tlv::tlv(0x83, &[1, 0, 0]),
                &tlv::tlv(
                    0x84,
                    &[
                        0x81, 0x01, 0x00, 0x82, 0x04, 0x00, 0x01, 0x00, 0x00, 0x83, 0x02, 0x00,
                        0x00,
                    ],
                ),
                &tlv::tlv(0x85, &[0x00, 0x00]),
                &tlv::tlv(0x88, &[0x04, 0x00]),
                &ski_list(0xA9),
                &ski_list(0xAA),
                &tlv::tlv(tag::OCTET_STRING, &[0, 0, 0]),
                &tlv::tlv(tag::UTF8_STRING, b"SOFT-EUICC"),
            ],
        )
    }

    /// `EuiccSigned1` for the given server values; `matching_id` is an EventID or none.
    pub fn euicc_signed1(
        &self,
        transaction_id: &[u8],
        server_address: &str,
        server_challenge: &[u8],
        matching_id: Option<&str>,
    ) -> Result<Vec<u8>, String> {
        let ctx = CtxParamsForCommonAuthentication {
            matching_id: matching_id.map(str::to_string),
            device_info: DeviceInfo {
                // lpac's default TAC when no IMEI is given.
                tac: vec![0x35, 0x29, 0x06, 0x11].into(),
                device_capabilities: DeviceCapabilities::default(),
                imei: None,
            },
        };
        // CtxParams1 is a CHOICE whose only v2 alternative gets the automatic tag [0] (A0).
        let ctx_der = asn1::der(&ctx)?;
        let ctx_content = tlv::parse_single(&ctx_der, "ctxParams")
            .map_err(|e| e.to_string())?
            .value
            .to_vec();
        Ok(tlv::constructed(
            tag::SEQUENCE,
            &[
                &tlv::tlv(0x80, transaction_id),
                &tlv::tlv(0x83, server_address.as_bytes()),
                &tlv::tlv(0x84, server_challenge),
                &self.euicc_info2(),
                &tlv::tlv(0xA0, &ctx_content),
            ],
        ))
    }

    /// `AuthenticateServerResponse` (BF38) carrying `euicc_signed1` and `signature` (r||s).
    pub fn response(&self, euicc_signed1: &[u8], signature: &[u8]) -> Vec<u8> {
        let ok = tlv::constructed(
            0xA0,
            &[
                euicc_signed1,
                &tlv::tlv(0x5F37, signature),
                self.euicc_cert.der(),
                self.eum_cert.der(),
            ],
        );
        tlv::tlv(0xBF38, &ok)
    }

    /// ES10b.AuthenticateServer: verifies the server and signs. Fails if the server does not
    /// authenticate (unknown CI, bad DSauth chain, bad signature, challenge or address mismatch).
    pub fn authenticate_server(
        &self,
        challenge: &[u8; 16],
        server: &ServerAuthentication,
        expected_address: &str,
        matching_id: Option<&str>,
        now: i64,
    ) -> Result<Vec<u8>, String> {
        if server.euicc_ci_pkid_to_be_used != self.ci_id() {
            return Err("the server chose a CI this eUICC does not have".into());
        }
        let cert = Certificate::from_der(&server.server_certificate)
            .map_err(|e| format!("server certificate: {e}"))?;
        verify_chain(
            &cert,
            &[],
            std::slice::from_ref(&self.ci),
            Some(Role::Dsauth),
            Options::at(now),
        )
        .map_err(|e| format!("server certificate refused: {e}"))?;
        let sig = tlv::parse_single(&server.server_signature1, "serverSignature1")
            .map_err(|e| e.to_string())?;
        if sig.tag != 0x5F37
            || !cert
                .public_key
                .verify_raw(&server.server_signed1, sig.value)
        {
            return Err("serverSignature1 does not verify with CERT.DSauth".into());
        }
        let signed: ServerSigned1 =
            rasn::der::decode(&server.server_signed1).map_err(|e| format!("serverSigned1: {e}"))?;
        if signed.euicc_challenge.as_ref() != challenge {
            return Err("serverSigned1 does not carry this eUICC's challenge".into());
        }
        if normalize_address(&signed.server_address) != normalize_address(expected_address) {
            return Err(format!(
                "serverSigned1 names server address {:?}, not {expected_address:?}",
                signed.server_address
            ));
        }
        let signed1 = self.euicc_signed1(
            &signed.transaction_id,
            &signed.server_address,
            &signed.server_challenge,
            matching_id,
        )?;
        let signature = self.key.sign_raw(&signed1);
        Ok(self.response(&signed1, &signature))
    }
}

/// What InitiateAuthentication returned, decoded from base64.
#[derive(Debug, Clone)]
pub struct ServerAuthentication {
    pub transaction_id: String,
    pub server_signed1: Vec<u8>,
    pub server_signature1: Vec<u8>,
    pub euicc_ci_pkid_to_be_used: Vec<u8>,
    pub server_certificate: Vec<u8>,
}

impl ServerAuthentication {
    pub fn from_result(r: &FunctionResult) -> Result<Self, String> {
        let s = |k: &str| {
            r.body[k]
                .as_str()
                .ok_or_else(|| format!("InitiateAuthentication answer has no {k}"))
        };
        let d = |k: &str| -> Result<Vec<u8>, String> {
            STANDARD.decode(s(k)?).map_err(|e| format!("{k}: {e}"))
        };
        let ski = d("euiccCiPKIdToBeUsed")?;
        let ski = tlv::parse_single(&ski, "euiccCiPKIdToBeUsed").map_err(|e| e.to_string())?;
        if ski.tag != tag::OCTET_STRING {
            return Err("euiccCiPKIdToBeUsed is not an OCTET STRING TLV".into());
        }
        Ok(ServerAuthentication {
            transaction_id: s("transactionId")?.to_string(),
            server_signed1: d("serverSigned1")?,
            server_signature1: d("serverSignature1")?,
            euicc_ci_pkid_to_be_used: ski.value.to_vec(),
            server_certificate: d("serverCertificate")?,
        })
    }
}

/// Which path family to call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathFamily {
    /// `/gsma/rsp2/es9plus/...`, as lpac, euicc-go and euicc-rs call an SM-DS.
    Es9Plus,
    /// `/gsma/rsp2/es11/...`.
    Es11,
}

impl PathFamily {
    pub fn initiate(self) -> &'static str {
        match self {
            PathFamily::Es9Plus => "/gsma/rsp2/es9plus/initiateAuthentication",
            PathFamily::Es11 => "/gsma/rsp2/es11/initiateAuthentication",
        }
    }
    pub fn authenticate(self) -> &'static str {
        match self {
            PathFamily::Es9Plus => "/gsma/rsp2/es9plus/authenticateClient",
            PathFamily::Es11 => "/gsma/rsp2/es11/authenticateClient",
        }
    }
}

/// One event entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventEntry {
    pub event_id: String,
    pub rsp_server_address: String,
}

/// How a discovery went.
#[derive(Debug, Clone)]
pub enum Discovery {
    Events {
        transaction_id: String,
        entries: Vec<EventEntry>,
    },
    /// The SM-DS answered Failed (at `step`).
    Failed {
        step: &'static str,
        result: FunctionResult,
    },
}

/// Options of one discovery.
pub struct DiscoveryOptions {
    pub endpoint: Endpoint,
    /// The address sent as `smdpAddress` (what an LPA was given, e.g. `host:port`).
    pub address: String,
    pub tls: Arc<rustls::ClientConfig>,
    pub paths: PathFamily,
    pub matching_id: Option<String>,
    pub timeout: Duration,
    pub now: i64,
}

/// The LPA's TLS configuration: no client certificate, CERT.DS.TLS checked against `cis`.
pub fn lpa_tls_config(cis: Vec<Certificate>) -> Result<Arc<rustls::ClientConfig>, String> {
    Ok(Arc::new(crate::tls::client_config(
        cis,
        Role::Dstls,
        None,
        None,
    )?))
}

/// Runs InitiateAuthentication, AuthenticateServer on the software eUICC, and AuthenticateClient,
/// over one new TLS connection (as lpac does per discovery).
pub async fn discover(euicc: &SoftEuicc, opts: &DiscoveryOptions) -> Result<Discovery, String> {
    let mut conn = Connection::open(&opts.endpoint, opts.tls.clone(), opts.timeout).await?;
    let challenge = SoftEuicc::challenge()?;
    let initiate = json!({
        "smdpAddress": opts.address,
        "euiccChallenge": STANDARD.encode(challenge),
        "euiccInfo1": STANDARD.encode(euicc.euicc_info1()?),
    });
    let r = call(&mut conn, opts.paths.initiate(), &initiate, opts.timeout).await?;
    if !r.is_success() {
        return Ok(Discovery::Failed {
            step: "InitiateAuthentication",
            result: r,
        });
    }
    let server = ServerAuthentication::from_result(&r)?;
    let response = euicc
        .authenticate_server(
            &challenge,
            &server,
            &opts.address,
            opts.matching_id.as_deref(),
            opts.now,
        )
        .map_err(|e| format!("the SM-DS failed authentication: {e}"))?;
    let auth = json!({
        "transactionId": server.transaction_id,
        "authenticateServerResponse": STANDARD.encode(&response),
    });
    let r = call(&mut conn, opts.paths.authenticate(), &auth, opts.timeout).await?;
    if !r.is_success() {
        return Ok(Discovery::Failed {
            step: "AuthenticateClient",
            result: r,
        });
    }
    let entries = r.body["eventEntries"]
        .as_array()
        .ok_or("AuthenticateClient answer has no eventEntries array")?
        .iter()
        .map(|e| {
            Ok(EventEntry {
                event_id: e["eventId"]
                    .as_str()
                    .ok_or("eventEntries item without eventId")?
                    .to_string(),
                rsp_server_address: e["rspServerAddress"]
                    .as_str()
                    .ok_or("eventEntries item without rspServerAddress")?
                    .to_string(),
            })
        })
        .collect::<Result<Vec<_>, &str>>()?;
    Ok(Discovery::Events {
        transaction_id: r.body["transactionId"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        entries,
    })
}

/// One ES11 call (no request header, as real LPAs send).
pub async fn call(
    conn: &mut Connection,
    path: &str,
    body: &Value,
    timeout: Duration,
) -> Result<FunctionResult, String> {
    tokio::time::timeout(timeout, conn.call(path, body))
        .await
        .map_err(|_| format!("{path}: no answer within {timeout:?}"))?
}
