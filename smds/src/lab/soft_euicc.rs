//! A software eUICC for labs without a device, built from key material minted by pki-tool (or
//! the SGP.26 files). It does what a real eUICC does in ES10b.AuthenticateServer: checks
//! CERT.DSauth against its CI and serverSignature1 over the exact serverSigned1 bytes, refuses a
//! server that fails, then builds and signs euiccSigned1 with EUICCInfo2 and DeviceInfo.

use super::LabError;
use crate::asn1::{
    self, CtxParamsForCommonAuthentication, DeviceCapabilities, DeviceInfo, EuiccInfo1,
    ServerSigned1,
};
use crate::sgp22::normalize_address;
use crate::sgp22::responses::{InitiateAuthenticationResponse, SignedEventList};
use pki_tool::hierarchy::{self, read_cert, read_key};
use pki_tool::layout::Slot;
use pki_tool::tlv::{self, tag};
use pki_tool::validate::{Options, verify_chain};
use pki_tool::{Certificate, Curve, Eid, PrivateKey, Role};
use std::path::{Path, PathBuf};

/// A software eUICC: its certificate and key, the certificates above it, and the CI it trusts.
#[derive(Debug, Clone)]
pub struct SoftEuicc {
    pub euicc_cert: Certificate,
    /// Its issuer (`nextCertInChain`): the EUM, or an EUM SubCA.
    pub eum_cert: Certificate,
    /// The certificates between its issuer and the CI (SGP.22 v3 `otherCertsInChain`, nearest
    /// first): the EUM above an EUM SubCA, a CI SubCA; empty in Variant O.
    pub other_certs: Vec<Certificate>,
    /// The eUICC verifies v3 chains (EuiccRspCapability bit 16, certChainV3VerificationSupport):
    /// it states so in EUICCInfo1 and EUICCInfo2, lists its CI for v3 signing too, and validates
    /// CERT.DSauth through the `otherCertsInChain` the server sends. On when its own chain has
    /// SubCAs; off: a v2 eUICC, which validates CERT.DSauth against the CI alone.
    pub cert_chain_v3: bool,
    pub key: PrivateKey,
    pub ci: Certificate,
    pub eid: Eid,
    /// The eUICC claims signedSmdsResponseV3Support (EuiccRspCapability bit 17 in EUICCInfo2),
    /// as a v3 eUICC does; off: a v2 eUICC.
    pub euicc_signed_smds_response: bool,
    /// Its LPA claims it too (LpaRspCapability bit 5 in the DeviceInfo it gives the eUICC).
    pub lpa_signed_smds_response: bool,
    /// Register a push token instead of retrieving events (SGP.22 v3 ctxParams1 [3]): the
    /// service OID (dotted; `None`: the first the server advertises) and the token. The eUICC
    /// then states pushServiceRegistrationSupport (EuiccRspCapability bit 24) in EUICCInfo1.
    pub push_registration: Option<(Option<String>, String)>,
}

fn credentials(e: impl std::fmt::Display) -> LabError {
    LabError::Credentials(e.to_string())
}

fn refused(why: impl Into<String>) -> LabError {
    LabError::ServerRefused(why.into())
}

fn first_existing(candidates: &[PathBuf]) -> Result<PathBuf, LabError> {
    candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        .ok_or_else(|| {
            credentials(format!(
                "none of these files exists: {}",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

impl SoftEuicc {
    /// Loads from a `pki-tool init` directory (in the layout its manifest names) or an SGP.26 set
    /// in the osmo-smdpp layout (`CI/` or `CertificateIssuer/`, `EUM/`, `eUICC/`), or
    /// `eUICC/<EID>/` for an eUICC issued later. Under SubCAs (SGP.26 v3 Variants A, B, C) it is
    /// a v3 eUICC: its issuer goes in nextCertInChain and the certificates above in
    /// otherCertsInChain.
    pub fn load(dir: &Path, curve: Curve, eid: Option<&Eid>) -> Result<Self, LabError> {
        let layout = hierarchy::layout_at(dir).map_err(credentials)?;
        let slot = |role| Slot::in_layout(layout, role, curve, None);
        let ci = read_cert(&first_existing(&slot(Role::Ci).cert_candidates(dir))?)
            .map_err(credentials)?;
        let mut above = layout
            .variant()
            .intermediates(Role::Euicc)
            .into_iter()
            .map(|r| read_cert(&first_existing(&[slot(r).cert_der(dir)])?).map_err(credentials));
        let eum = above
            .next()
            .ok_or_else(|| credentials("the hierarchy has no EUM"))??;
        let other_certs = above.collect::<Result<Vec<_>, _>>()?;
        let euicc_slot = slot(Role::Euicc);
        let mut slots = vec![euicc_slot.clone()];
        if let Some(e) = eid {
            slots.insert(
                0,
                Slot {
                    instance: Some(e.to_string()),
                    ..euicc_slot.clone()
                },
            );
        }
        for s in slots {
            let cert_path = s.cert_der(dir);
            if !cert_path.exists() {
                continue;
            }
            let cert = read_cert(&cert_path).map_err(credentials)?;
            let cert_eid = cert
                .subject
                .get(pki_tool::oid::known::AT_SERIAL_NUMBER)
                .and_then(|s| Eid::parse(s).ok())
                .ok_or_else(|| {
                    credentials(format!(
                        "{}: no valid EID in the subject",
                        cert_path.display()
                    ))
                })?;
            if eid.is_some_and(|e| *e != cert_eid) {
                continue;
            }
            let key = read_key(&s.private_key(dir)).map_err(credentials)?;
            if key.public_key() != &cert.public_key {
                return Err(credentials(format!(
                    "{}: the key does not belong to the eUICC certificate",
                    cert_path.display()
                )));
            }
            return Ok(SoftEuicc {
                euicc_cert: cert,
                eum_cert: eum,
                cert_chain_v3: !other_certs.is_empty(),
                other_certs,
                key,
                ci,
                eid: cert_eid,
                euicc_signed_smds_response: false,
                lpa_signed_smds_response: false,
                push_registration: None,
            });
        }
        let c = curve.file_suffix();
        let euicc_dir = dir.join(euicc_slot.role_dir());
        Err(credentials(match eid {
            Some(e) => format!("no {c} eUICC with EID {e} under {}", euicc_dir.display()),
            None => format!("no {c} eUICC certificate under {}", euicc_dir.display()),
        }))
    }

    /// ES10b.GetEUICCChallenge.
    pub fn challenge() -> Result<[u8; 16], getrandom::Error> {
        let mut c = [0u8; 16];
        getrandom::fill(&mut c)?;
        Ok(c)
    }

    fn ci_id(&self) -> Vec<u8> {
        self.ci.key_id()
    }

    /// ES10b.GetEUICCInfo1: SVN 2.2.0 and this eUICC's CI key id for verification and signing;
    /// for a push registration or a v3 chain, a v3 eUICC's (SVN 3.1.0, the CI for v3 signing
    /// too, euiccRspCapability with bits 16, 17 and 24 as set).
    pub fn euicc_info1(&self) -> Result<Vec<u8>, rasn::error::EncodeError> {
        let v3 = self.push_registration.is_some() || self.cert_chain_v3;
        asn1::der(&EuiccInfo1 {
            svn: if v3 { vec![3, 1, 0] } else { vec![2, 2, 0] }.into(),
            euicc_ci_pkid_list_for_verification: vec![self.ci_id().into()],
            euicc_ci_pkid_list_for_signing: vec![self.ci_id().into()],
            euicc_ci_pkid_list_for_signing_v3: self
                .cert_chain_v3
                .then(|| vec![self.ci_id().into()]),
            euicc_rsp_capability: v3.then(|| {
                let mut bits = rasn::types::BitString::repeat(false, 25);
                bits.set(16, self.cert_chain_v3);
                bits.set(17, self.euicc_signed_smds_response);
                bits.set(24, self.push_registration.is_some());
                bits
            }),
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
                // rspCapability: v2 devices name bits 0-3; bit 16 is
                // certChainV3VerificationSupport, bit 17 signedSmdsResponseV3Support.
                &match (self.cert_chain_v3, self.euicc_signed_smds_response) {
                    (false, false) => tlv::tlv(0x88, &[0x04, 0x00]),
                    (chain, signed) => tlv::tlv(
                        0x88,
                        &[
                            0x06,
                            0x00,
                            0x00,
                            if chain { 0x80 } else { 0 } | if signed { 0x40 } else { 0 },
                        ],
                    ),
                },
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
    ) -> Result<Vec<u8>, LabError> {
        let ctx = self.common_authentication(matching_id)?;
        Ok(self.signed1_with(transaction_id, server_address, server_challenge, &ctx))
    }

    /// `ctxParamsForPushServiceRegistration` [3] for `service` and `token`.
    fn push_registration_ctx(service: &rasn::types::ObjectIdentifier, token: &str) -> Vec<u8> {
        let oid_content = asn1::der(service)
            .ok()
            .and_then(|d| tlv::parse_single(&d, "OID").ok().map(|t| t.value.to_vec()))
            .unwrap_or_default();
        tlv::constructed(
            0xA3,
            &[
                &tlv::tlv(0x80, &oid_content),
                &tlv::tlv(0x81, token.as_bytes()),
            ],
        )
    }

    fn signed1_with(
        &self,
        transaction_id: &[u8],
        server_address: &str,
        server_challenge: &[u8],
        ctx_params1: &[u8],
    ) -> Vec<u8> {
        tlv::constructed(
            tag::SEQUENCE,
            &[
                &tlv::tlv(0x80, transaction_id),
                &tlv::tlv(0x83, server_address.as_bytes()),
                &tlv::tlv(0x84, server_challenge),
                &self.euicc_info2(),
                ctx_params1,
            ],
        )
    }

    /// `ctxParamsForCommonAuthentication` [0] with this device's DeviceInfo.
    fn common_authentication(&self, matching_id: Option<&str>) -> Result<Vec<u8>, LabError> {
        let ctx = CtxParamsForCommonAuthentication {
            matching_id: matching_id.map(str::to_string),
            device_info: DeviceInfo {
                // lpac's default TAC when no IMEI is given.
                tac: vec![0x35, 0x29, 0x06, 0x11].into(),
                device_capabilities: DeviceCapabilities::default(),
                imei: None,
                // LpaRspCapability bit 5: signedSmdsResponseV3Support.
                lpa_rsp_capability: self.lpa_signed_smds_response.then(|| {
                    let mut bits = rasn::types::BitString::repeat(false, 6);
                    bits.set(5, true);
                    bits
                }),
            },
        };
        // CtxParams1 is a CHOICE whose only v2 alternative gets the automatic tag [0] (A0).
        let ctx_der = asn1::der(&ctx).map_err(|e| LabError::Asn1(e.to_string()))?;
        let ctx_content = tlv::parse_single(&ctx_der, "ctxParams")
            .map_err(|e| LabError::Asn1(e.to_string()))?
            .value
            .to_vec();
        Ok(tlv::tlv(0xA0, &ctx_content))
    }

    /// ES10b.VerifySmdsResponse (BF45, as a v3 eUICC does it): `smdsSignature2` over the exact
    /// `SmdsSigned2` bytes with the key of the CERT.DSauth this eUICC validated in the same
    /// session's AuthenticateServer, and the session's transactionId inside.
    pub fn verify_smds_response(
        &self,
        signed: &SignedEventList,
        server: &InitiateAuthenticationResponse,
    ) -> Result<(), LabError> {
        let cert = Certificate::from_der(&server.server_certificate)
            .map_err(|e| refused(format!("server certificate: {e}")))?;
        let sig = tlv::parse_single(&signed.smds_signature2, "smdsSignature2")
            .map_err(|e| refused(e.to_string()))?;
        if sig.tag != 0x5F37 || !cert.public_key.verify_raw(&signed.smds_signed2, sig.value) {
            return Err(refused(
                "VerifySmdsResponse: smdsSignature2 does not verify with the session's CERT.DSauth",
            ));
        }
        let view = asn1::parse_smds_signed2(&signed.smds_signed2)
            .map_err(|e| refused(format!("VerifySmdsResponse: {e}")))?;
        if view.transaction_id != server.transaction_id.as_bytes() {
            return Err(refused(
                "VerifySmdsResponse: SmdsSigned2 carries another transactionId",
            ));
        }
        Ok(())
    }

    /// `AuthenticateServerResponse` (BF38) carrying `euicc_signed1` and `signature` (r||s), and
    /// v3's `otherCertsInChain [0]` when the eUICC's chain has more than its issuer.
    pub fn response(&self, euicc_signed1: &[u8], signature: &[u8]) -> Vec<u8> {
        let others: Vec<&[u8]> = self.other_certs.iter().map(Certificate::der).collect();
        let other_certs = (!others.is_empty()).then(|| tlv::constructed(0xA0, &others));
        let signature = tlv::tlv(0x5F37, signature);
        let mut fields: Vec<&[u8]> = vec![
            euicc_signed1,
            &signature,
            self.euicc_cert.der(),
            self.eum_cert.der(),
        ];
        fields.extend(other_certs.as_deref());
        tlv::tlv(0xBF38, &tlv::constructed(0xA0, &fields))
    }

    /// ES10b.AuthenticateServer: verifies the server and signs. Fails if the server does not
    /// authenticate (unknown CI, bad DSauth chain, bad signature, challenge or address mismatch).
    pub fn authenticate_server(
        &self,
        challenge: &[u8; 16],
        server: &InitiateAuthenticationResponse,
        expected_address: &str,
        matching_id: Option<&str>,
        now: i64,
    ) -> Result<Vec<u8>, LabError> {
        if server.euicc_ci_pkid_to_be_used != self.ci_id() {
            return Err(refused("the server chose a CI this eUICC does not have"));
        }
        let cert = Certificate::from_der(&server.server_certificate)
            .map_err(|e| refused(format!("server certificate: {e}")))?;
        // A v2 eUICC knows nothing of otherCertsInChain: CERT.DSauth must be under the CI.
        let sub_cas = if self.cert_chain_v3 {
            server
                .other_certs_in_chain
                .iter()
                .map(|der| Certificate::from_der(der))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| refused(format!("otherCertsInChain: {e}")))?
        } else {
            Vec::new()
        };
        verify_chain(
            &cert,
            &sub_cas,
            std::slice::from_ref(&self.ci),
            Some(Role::Dsauth),
            Options::at(now),
        )
        .map_err(|e| refused(format!("server certificate refused: {e}")))?;
        let sig = tlv::parse_single(&server.server_signature1, "serverSignature1")
            .map_err(|e| refused(e.to_string()))?;
        if sig.tag != 0x5F37
            || !cert
                .public_key
                .verify_raw(&server.server_signed1, sig.value)
        {
            return Err(refused("serverSignature1 does not verify with CERT.DSauth"));
        }
        let signed: ServerSigned1 = rasn::der::decode(&server.server_signed1)
            .map_err(|e| refused(format!("serverSigned1: {e}")))?;
        if signed.euicc_challenge.as_ref() != challenge {
            return Err(refused(
                "serverSigned1 does not carry this eUICC's challenge",
            ));
        }
        if normalize_address(&signed.server_address) != normalize_address(expected_address) {
            return Err(refused(format!(
                "serverSigned1 names server address {:?}, not {expected_address:?}",
                signed.server_address
            )));
        }
        let ctx = match &self.push_registration {
            None => self.common_authentication(matching_id)?,
            Some((service, token)) => {
                let offered = signed
                    .session_context
                    .as_ref()
                    .and_then(|c| c.supported_push_services.clone())
                    .unwrap_or_default();
                let service = match service {
                    Some(s) => asn1::parse_oid(s)
                        .ok_or_else(|| refused(format!("{s:?} is not a dotted OID")))?,
                    None => offered
                        .first()
                        .cloned()
                        .ok_or_else(|| refused("the server offers no push service"))?,
                };
                Self::push_registration_ctx(&service, token)
            }
        };
        let signed1 = self.signed1_with(
            &signed.transaction_id,
            &signed.server_address,
            &signed.server_challenge,
            &ctx,
        );
        let signature = self.key.sign_raw(&signed1);
        Ok(self.response(&signed1, &signature))
    }
}
