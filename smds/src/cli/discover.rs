//! `smds discover`: act as a device (LPA + software eUICC) on ES11.

use super::ServerArgs;
use clap::Args;
use smds::lab::https::{Endpoint, read_cas};
use smds::lab::lpa::{self, Discovery, DiscoveryOptions};
use smds::lab::soft_euicc::SoftEuicc;
use smds::sgp22::Es11PathFamily;
use std::path::PathBuf;

#[derive(Args)]
pub struct DiscoverArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Directory with CI, EUM and eUICC certificates and the eUICC key.
    #[arg(long, value_name = "DIR")]
    certdir: PathBuf,
    /// Which eUICC (one issued under eUICC/<EID>/); default: the hierarchy's own.
    #[arg(long)]
    eid: Option<String>,
    /// Which of the eUICC's certificates (and CI) to use: NIST P-256 or brainpoolP256r1.
    #[arg(long, default_value = "nist", value_parser = ["nist", "brainpool"])]
    curve: String,
    /// An EventID, as an LPA sends when following a cascade from the Root SM-DS.
    #[arg(long, value_name = "ID")]
    matching_id: Option<String>,
    /// CI certificate(s) for the SM-DS's TLS certificate; default: the certdir's NIST CI.
    #[arg(long, value_name = "FILE")]
    ca: Vec<PathBuf>,
    /// The address sent as smdpAddress; default: host[:port] of --server.
    #[arg(long, value_name = "HOST")]
    address: Option<String>,
    /// Path family: es9plus (lpac, euicc-go) or es11.
    #[arg(long, default_value = "es9plus", value_parser = ["es9plus", "es11"])]
    paths: String,
    /// The binding: json (what LPAs use) or asn1 (SGP.22 6.6: DER on /gsma/rsp2/asn1; --paths
    /// does not apply). --follow takes the same binding.
    #[arg(long, default_value = "json", value_parser = ["json", "asn1"])]
    binding: String,
    /// Follow a cascade: an entry whose rspServerAddress is this SM-DS (an Alternative the
    /// server handed out) is discovered there too, with the entry's EventID as matchingId, and
    /// replaced by what that SM-DS returns: the SM-DP+ address and the MatchingID to use.
    /// `ADDRESS=HOST:PORT` connects there instead, keeping ADDRESS as the TLS name (as
    /// --connect-to). Repeatable.
    #[arg(long, value_name = "ADDRESS[=HOST:PORT]")]
    follow: Vec<String>,
    /// Act as a v3 device: the eUICC and the LPA claim signedSmdsResponseV3Support, so a v3
    /// SM-DS answers with a signed event list, which the eUICC verifies (VerifySmdsResponse)
    /// before anything is printed.
    #[arg(long)]
    v3: bool,
    /// Register this push token with the SM-DS instead of retrieving events (SGP.22 v3 push
    /// service: the eUICC signs ctxParamsForPushServiceRegistration). The token is sent, never
    /// printed.
    #[arg(long, value_name = "TOKEN")]
    push_token: Option<String>,
    /// The push service to register with (dotted OID); default the first the SM-DS advertises.
    #[arg(long, value_name = "OID", requires = "push_token")]
    push_service: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// An entry as finally resolved: `via` is the Alternative SM-DS entry it was followed from.
struct Resolved {
    entry: smds::sgp22::responses::EventEntry,
    via: Option<smds::sgp22::responses::EventEntry>,
}

/// The `--follow` target for `address`, if it is one: where to connect.
fn follow_target(follow: &[String], address: &str) -> Result<Option<Endpoint>, String> {
    use smds::sgp22::normalize_address;
    for f in follow {
        let (name, to) = match f.split_once('=') {
            Some((n, t)) => (n, Some(t)),
            None => (f.as_str(), None),
        };
        if normalize_address(name) != normalize_address(address) {
            continue;
        }
        let mut e = Endpoint::parse(&format!("https://{address}")).map_err(|e| e.to_string())?;
        if let Some(to) = to {
            e = e.with_connect_to(to).map_err(|e| e.to_string())?;
        }
        return Ok(Some(e));
    }
    Ok(None)
}

pub async fn run(a: DiscoverArgs) -> Result<bool, String> {
    let curve = if a.curve == "brainpool" {
        pki_tool::Curve::BrainpoolP256r1
    } else {
        pki_tool::Curve::NistP256
    };
    let eid = a
        .eid
        .as_deref()
        .map(|e| pki_tool::Eid::parse(e).map_err(|err| format!("--eid {e}: {err}")))
        .transpose()?;
    let mut euicc = SoftEuicc::load(&a.certdir, curve, eid.as_ref()).map_err(|e| e.to_string())?;
    euicc.euicc_signed_smds_response = a.v3;
    euicc.lpa_signed_smds_response = a.v3;
    euicc.push_registration = a
        .push_token
        .clone()
        .map(|token| (a.push_service.clone(), token));
    let endpoint = a.server.endpoint()?;
    let cas = if a.ca.is_empty() {
        let layout = pki_tool::hierarchy::layout_at(&a.certdir).map_err(|e| e.to_string())?;
        let candidates = pki_tool::layout::Slot::in_layout(
            layout,
            pki_tool::Role::Ci,
            pki_tool::Curve::NistP256,
            None,
        )
        .cert_candidates(&a.certdir);
        let found: Vec<PathBuf> = candidates
            .into_iter()
            .filter(|p| p.exists())
            .take(1)
            .collect();
        if found.is_empty() {
            return Err(format!(
                "{}: no NIST CI to check the server's TLS certificate with; give --ca",
                a.certdir.display()
            ));
        }
        read_cas(&found).map_err(|e| e.to_string())?
    } else {
        read_cas(&a.ca).map_err(|e| e.to_string())?
    };
    let address = a.address.clone().unwrap_or_else(|| {
        if endpoint.port == 443 {
            endpoint.host.clone()
        } else {
            format!("{}:{}", endpoint.host, endpoint.port)
        }
    });
    let opts = DiscoveryOptions {
        endpoint,
        address,
        tls: lpa::lpa_tls_config(cas).map_err(|e| e.to_string())?,
        paths: if a.paths == "es11" {
            Es11PathFamily::Es11
        } else {
            Es11PathFamily::Es9Plus
        },
        matching_id: a.matching_id.clone(),
        timeout: a.server.timeout(),
        now: pki_tool::time::now(),
    };
    let asn1 = a.binding == "asn1";
    let discover = async |opts: &DiscoveryOptions| {
        if asn1 {
            lpa::discover_asn1(&euicc, opts).await
        } else {
            lpa::discover(&euicc, opts).await
        }
    };
    match discover(&opts).await.map_err(|e| e.to_string())? {
        Discovery::Events {
            transaction_id,
            entries,
            signed,
            ec_id,
        } => {
            let mut resolved = Vec::new();
            for entry in entries {
                let Some(endpoint) = follow_target(&a.follow, &entry.rsp_server_address)? else {
                    resolved.push(Resolved { entry, via: None });
                    continue;
                };
                let there = DiscoveryOptions {
                    endpoint,
                    address: entry.rsp_server_address.clone(),
                    tls: opts.tls.clone(),
                    paths: opts.paths,
                    matching_id: Some(entry.event_id.clone()),
                    timeout: opts.timeout,
                    now: pki_tool::time::now(),
                };
                match discover(&there).await.map_err(|e| {
                    format!(
                        "following {} to {}: {e}",
                        entry.event_id, entry.rsp_server_address
                    )
                })? {
                    Discovery::Events { entries: found, .. } => {
                        resolved.extend(found.into_iter().map(|f| Resolved {
                            entry: f,
                            via: Some(entry.clone()),
                        }));
                    }
                    Discovery::PushRegistered { .. } => {
                        return Err("a push registration cannot be followed".into());
                    }
                    Discovery::Failed { step, result } => {
                        return Err(format!(
                            "following {} to {}: {step}: {} {}",
                            entry.event_id,
                            entry.rsp_server_address,
                            result.code().unwrap_or_default(),
                            result.message.unwrap_or_default()
                        ));
                    }
                }
            }
            if a.json {
                let list: Vec<serde_json::Value> = resolved
                    .iter()
                    .map(|r| {
                        let mut v = serde_json::json!({"eventId": r.entry.event_id, "rspServerAddress": r.entry.rsp_server_address});
                        if let Some(via) = &r.via {
                            v["via"] = serde_json::json!({"eventId": via.event_id, "rspServerAddress": via.rsp_server_address});
                        }
                        v
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({"eid": euicc.eid.to_string(), "transactionId": transaction_id, "signedListVerified": signed, "ecId": ec_id.as_deref().map(smds::sgp22::requests::b64_encode), "eventEntries": list})
                );
            } else if resolved.is_empty() {
                println!("EID {}: no events", euicc.eid);
            } else {
                println!(
                    "EID {}: {} event(s){}",
                    euicc.eid,
                    resolved.len(),
                    if signed {
                        " (signed list, verified by the eUICC)"
                    } else {
                        ""
                    }
                );
                for r in resolved {
                    match r.via {
                        None => println!("  {}  {}", r.entry.event_id, r.entry.rsp_server_address),
                        Some(via) => println!(
                            "  {}  {}  (via {} {})",
                            r.entry.event_id,
                            r.entry.rsp_server_address,
                            via.rsp_server_address,
                            via.event_id
                        ),
                    }
                }
            }
            if let (false, Some(id)) = (a.json, &ec_id) {
                println!(
                    "ecId {} (for smds check-event)",
                    smds::sgp22::requests::b64_encode(id)
                );
            }
            Ok(true)
        }
        Discovery::PushRegistered {
            transaction_id,
            refresh_time,
        } => {
            let refresh = refresh_time.map(pki_tool::time::format);
            if a.json {
                println!(
                    "{}",
                    serde_json::json!({"eid": euicc.eid.to_string(), "transactionId": transaction_id, "pushTokenRegistered": true, "refreshBy": refresh})
                );
            } else {
                println!(
                    "EID {}: push token registered (signed result, verified by the eUICC); register again by {}",
                    euicc.eid,
                    refresh.as_deref().unwrap_or("(no time given)")
                );
            }
            Ok(true)
        }
        Discovery::Failed { step, result } => {
            if a.json {
                println!("{}", result.body);
            } else {
                println!(
                    "{step}: {} {} {}",
                    result.status,
                    result.code().unwrap_or_default(),
                    result.message.clone().unwrap_or_default()
                );
            }
            Ok(false)
        }
    }
}
