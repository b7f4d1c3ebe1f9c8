//! `smds check-event`: SGP.22 v3 Event Checking as an LPA does it between full discoveries: the
//! ecId from the last `smds discover --v3`, no eUICC involved.

use super::ServerArgs;
use clap::Args;
use smds::lab::https::{Connection, read_cas};
use smds::sgp22::paths::path;
use smds::sgp22::requests::{Field, b64_encode};
use std::path::PathBuf;

#[derive(Args)]
pub struct CheckEventArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The ecId (base64) the SM-DS handed out in a signed v3 discovery (`smds discover --v3`
    /// prints it).
    #[arg(long, value_name = "BASE64")]
    ec_id: String,
    /// CI certificate(s) the SM-DS's TLS certificate must chain to.
    #[arg(long, value_name = "FILE", required = true)]
    ca: Vec<PathBuf>,
    /// The address sent as smdsAddress; default: host[:port] of --server.
    #[arg(long, value_name = "HOST")]
    address: Option<String>,
}

pub async fn run(a: CheckEventArgs) -> Result<bool, String> {
    let ec_id = smds::sgp22::requests::b64_decode(&a.ec_id)
        .ok_or_else(|| format!("--ec-id {:?}: not base64", a.ec_id))?;
    let endpoint = a.server.endpoint()?;
    let address = a.address.clone().unwrap_or_else(|| {
        if endpoint.port == 443 {
            endpoint.host.clone()
        } else {
            format!("{}:{}", endpoint.host, endpoint.port)
        }
    });
    let tls = smds::lab::lpa::lpa_tls_config(read_cas(&a.ca).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let mut body = serde_json::Map::new();
    body.insert(Field::EcId.json_name().into(), b64_encode(&ec_id).into());
    body.insert("smdsAddress".into(), address.into());
    let timeout = a.server.timeout();
    let r = tokio::time::timeout(timeout, async {
        let mut conn = Connection::open(&endpoint, tls, timeout).await?;
        conn.call(path::ES11_CHECK_EVENT, &serde_json::Value::Object(body))
            .await
    })
    .await
    .map_err(|_| format!("no answer from {} within {timeout:?}", endpoint.describe()))?
    .map_err(|e| e.to_string())?;
    if !r.is_success() {
        println!(
            "checkEvent: {} {} {}",
            r.status,
            r.code().unwrap_or_default(),
            r.message.unwrap_or_default()
        );
        return Ok(false);
    }
    let pending = r.body["isPendingEvent"]
        .as_bool()
        .ok_or("no isPendingEvent in the answer")?;
    println!("isPendingEvent: {pending}");
    Ok(true)
}
