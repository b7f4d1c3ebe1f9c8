//! The subcommands of `smds`, one file each: [`serve`], [`events`], [`event`], [`discover`],
//! [`check_event`], [`config`].
//! Each turns its arguments into library calls and prints; errors are one readable line.

pub mod check_event;
pub mod config;
pub mod discover;
pub mod event;
pub mod events;
pub mod serve;

use clap::Args;
use smds::lab::https::Endpoint;
use std::time::Duration;

/// How the lab clients reach an SM-DS.
#[derive(Args)]
pub struct ServerArgs {
    /// The SM-DS, e.g. https://localhost:8443; its host name is the one TLS checks.
    #[arg(long, value_name = "URL")]
    server: String,
    /// Connect to HOST:PORT instead of the URL's host and port, still checking the URL's name in
    /// the server's certificate and sending it as Host (curl's --connect-to). E.g. --server
    /// https://smds.lab.example --connect-to 127.0.0.1:8443 reaches a server whose certificate
    /// names smds.lab.example on this machine.
    #[arg(long, value_name = "HOST:PORT")]
    connect_to: Option<String>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 15, value_name = "SECS")]
    timeout: u64,
}

impl ServerArgs {
    pub fn endpoint(&self) -> Result<Endpoint, String> {
        let e = Endpoint::parse(&self.server).map_err(|e| e.to_string())?;
        match &self.connect_to {
            Some(spec) => e.with_connect_to(spec).map_err(|e| e.to_string()),
            None => Ok(e),
        }
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout.max(1))
    }
}
