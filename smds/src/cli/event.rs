//! `smds event register|delete`: act as an SM-DP+ on ES12 over mutually authenticated TLS.

use super::ServerArgs;
use clap::{Args, Subcommand};
use smds::lab::https::Connection;
use smds::lab::smdp;
use smds::sgp22::paths::path;
use std::path::PathBuf;

#[derive(Args)]
pub struct SmdpArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The SM-DP+'s TLS certificate (CERT.DP.TLS, NIST P-256; DER or PEM).
    #[arg(long, value_name = "FILE")]
    cert: PathBuf,
    /// Its private key.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// CI certificate(s) the SM-DS's TLS certificate must chain to.
    #[arg(long, value_name = "FILE", required = true)]
    ca: Vec<PathBuf>,
    /// Print the SM-DS's answer as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
pub enum EventCommand {
    /// ES12.RegisterEvent: tell the SM-DS a profile is waiting for EID at SM-DP+ address.
    Register {
        /// The eUICC's EID: 32 digits with valid check digits.
        #[arg(long)]
        eid: String,
        /// The EventID (1..256 characters): what the LPA later sends to the SM-DP+ as the
        /// matchingId.
        #[arg(long, value_name = "ID")]
        event_id: String,
        /// The SM-DP+ address the LPA should contact (host[:port], no scheme).
        #[arg(long, value_name = "HOST")]
        smdp_address: String,
        /// Ask an Alternative SM-DS to cascade the event to the Root SM-DS (sends
        /// "forwardingIndicator": true; without it the field is not sent).
        #[arg(long)]
        forwarding: bool,
        #[command(flatten)]
        smdp: SmdpArgs,
    },
    /// ES12.DeleteEvent: remove an event this SM-DP+ registered.
    Delete {
        /// The eUICC's EID.
        #[arg(long)]
        eid: String,
        /// The EventID given at registration.
        #[arg(long, value_name = "ID")]
        event_id: String,
        #[command(flatten)]
        smdp: SmdpArgs,
    },
}

pub async fn run(c: EventCommand) -> Result<bool, String> {
    let (smdp, path, body) = match c {
        EventCommand::Register {
            eid,
            event_id,
            smdp_address,
            forwarding,
            smdp,
        } => (
            smdp,
            path::ES12_REGISTER_EVENT,
            smdp::register_event_body(&eid, &event_id, &smdp_address, forwarding.then_some(true)),
        ),
        EventCommand::Delete {
            eid,
            event_id,
            smdp,
        } => (
            smdp,
            path::ES12_DELETE_EVENT,
            smdp::delete_event_body(&eid, &event_id),
        ),
    };
    let endpoint = smdp.server.endpoint()?;
    let tls = smdp::smdp_tls_config(&smdp.cert, &smdp.key, &smdp.ca).map_err(|e| e.to_string())?;
    let timeout = smdp.server.timeout();
    let result = tokio::time::timeout(timeout, async {
        let mut conn = Connection::open(&endpoint, tls, timeout).await?;
        conn.call(path, &body).await
    })
    .await
    .map_err(|_| format!("no answer from {} within {timeout:?}", endpoint.describe()))?
    .map_err(|e| e.to_string())?;
    if smdp.json {
        println!("{}", result.body);
    } else if result.is_success() {
        println!(
            "{}: Executed-Success",
            if path == path::ES12_REGISTER_EVENT {
                "registerEvent"
            } else {
                "deleteEvent"
            }
        );
    } else {
        println!(
            "{}: {} {} {}",
            result.status,
            result.code().unwrap_or_default(),
            result.message.clone().unwrap_or_default(),
            if result.http_status == 200 {
                String::new()
            } else {
                format!("(HTTP {})", result.http_status)
            }
        );
    }
    Ok(result.is_success())
}
