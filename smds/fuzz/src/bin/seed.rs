//! Writes seed corpora for the fuzz targets into `corpus/<target>/`: real-shaped ES11/ES12 JSON
//! bodies, EUICCInfo1 captures, AuthenticateServerResponse TLVs from the software eUICC, and
//! certificates and keys (freshly minted, plus the SGP.26 files when their directory is given).
//! Usage: cargo run --bin seed -- [../../../shared/sgp26]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pki_tool::hierarchy::{self, InitOptions};
use pki_tool::Curve;
use serde_json::json;
use smds::lab::soft_euicc::SoftEuicc;
use std::path::{Path, PathBuf};

fn put(target: &str, name: &str, data: &[u8]) {
    let dir = PathBuf::from("corpus").join(target);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join(name), data).expect("write");
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                files(&p, out);
            } else {
                out.push(p);
            }
        }
    }
}

const CAPTURED_INFO1: [&str; 2] = [
    "BF20358203020202A916041481370F5125D0B1D408D4C3B232E6D25E795BEBFBAA16041481370F5125D0B1D408D4C3B232E6D25E795BEBFB",
    "BF20358203020200A9160414F54172BDF98A95D65CBEB88A38A1C11D800A85C3AA160414F54172BDF98A95D65CBEB88A38A1C11D800A85C3",
];

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

fn main() {
    let tmp = std::env::temp_dir().join(format!("smds-seed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    hierarchy::init(&InitOptions::lab(&tmp, &Curve::ALL, "localhost").expect("options")).expect("pki");

    for (i, info) in CAPTURED_INFO1.iter().enumerate() {
        let info = hex(info);
        put("euicc_asn1", &format!("info1-{i}"), &info);
        let body = json!({"smdpAddress": "localhost", "euiccChallenge": STANDARD.encode([7u8; 16]), "euiccInfo1": STANDARD.encode(&info)});
        put("es11_initiate", &format!("lpac-{i}"), body.to_string().as_bytes());
        let body = json!({"smdsAddress": "LOCALHOST.:8443", "euiccChallenge": STANDARD.encode([7u8; 16]), "euiccInfo1": STANDARD.encode(&info)});
        put("es11_initiate", &format!("ecp-{i}"), body.to_string().as_bytes());
    }
    for curve in Curve::ALL {
        let e = SoftEuicc::load(&tmp, curve, None).expect("eUICC");
        let info = e.euicc_info1().expect("info1");
        put("euicc_asn1", &format!("info1-{curve:?}"), &info);
        let body = json!({"smdpAddress": "localhost", "euiccChallenge": STANDARD.encode([1u8; 16]), "euiccInfo1": STANDARD.encode(&info)});
        put("es11_initiate", &format!("soft-{curve:?}"), body.to_string().as_bytes());
        let asn1 = smds::sgp22::asn1_binding::initiate_authentication_request(&[1u8; 16], "localhost", &info);
        put("asn1_binding", &format!("initiate-{curve:?}"), &asn1);
        for (k, matching) in [None, Some("ev-1")].into_iter().enumerate() {
            let signed1 = e.euicc_signed1(&[0u8; 16], "localhost", &[0u8; 16], matching).expect("signed1");
            let bf38 = e.response(&signed1, &e.key.sign_raw(&signed1));
            put("euicc_asn1", &format!("bf38-{curve:?}-{k}"), &bf38);
            let tid = smds::asn1::TransactionId::new(&[0u8; 16]).expect("tid");
            let asn1 = smds::sgp22::asn1_binding::authenticate_client_request(&tid, &bf38);
            put("asn1_binding", &format!("authenticate-{curve:?}-{k}"), &asn1);
            let body = json!({"transactionId": "00000000000000000000000000000000", "authenticateServerResponse": STANDARD.encode(&bf38)});
            put("es11_authenticate", &format!("soft-{curve:?}-{k}"), body.to_string().as_bytes());
        }
        let mut chain = Vec::new();
        let eum = e.eum_cert.der();
        chain.extend_from_slice(&(eum.len() as u16).to_be_bytes());
        chain.extend_from_slice(eum);
        chain.extend_from_slice(e.euicc_cert.der());
        put("chain", &format!("minted-{curve:?}"), &chain);
    }
    let err = pki_tool::tlv::tlv(0xBF38, &pki_tool::tlv::tlv(0xA1, &[pki_tool::tlv::tlv(0x80, &[0; 16]), pki_tool::tlv::tlv(0x02, &[6])].concat()));
    put("euicc_asn1", "bf38-error", &err);
    for (i, body) in [
        json!({"header": {"functionRequesterIdentifier": "dp", "functionCallIdentifier": "1"}, "eid": "89049032123451234512345678901235",
               "rspServerAddress": "smdp.example.com:8443", "eventId": "ev-1", "forwardingIndicator": false}),
        json!({"header": {"functionRequesterIdentifier": "", "functionCallIdentifier": ""}, "eid": "89049032123451234512345678901234", "eventId": "x"}),
    ]
    .iter()
    .enumerate()
    {
        put("es12", &format!("body-{i}"), body.to_string().as_bytes());
    }

    let mut all = Vec::new();
    files(&tmp, &mut all);
    if let Some(shared) = std::env::args().nth(1) {
        files(Path::new(&shared), &mut all);
    }
    for (i, p) in all.iter().enumerate() {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("f").to_string();
        let data = std::fs::read(p).expect("read");
        if name.starts_with("CERT_") {
            put("certificate", &format!("{i}-{name}"), &data);
        } else if name.starts_with("SK_") || name.starts_with("PK_") {
            put("key_pem", &format!("{i}-{name}"), &data);
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    println!("seeds written under corpus/");
}
