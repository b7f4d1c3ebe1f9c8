//! The SM-DS (SGP.22 Subscription Manager - Discovery Server) and the lab clients around it.
//!
//! - [`config`]: TOML file + flags over working defaults; [`pki`]: the server's own credentials.
//! - [`tls`]: rustls with SGP.22 certificate validation both ways; [`http`]: listeners, routing,
//!   limits, metrics endpoint, graceful shutdown.
//! - [`es11`]: InitiateAuthentication/AuthenticateClient with [`auth`] sessions and [`asn1`]
//!   structures; [`es12`]: RegisterEvent/DeleteEvent; [`envelope`]: the SGP.22 JSON envelope and status codes;
//!   [`types`], [`identity`]: validated request values and caller identities.
//! - [`store`]: the redb event store with its group-commit writer.
//! - [`client`]: the lab's SM-DP+ side (ES12 calls); [`discovery`]: LPA + software eUICC (ES11).

pub mod asn1;
pub mod auth;
pub mod client;
pub mod config;
pub mod discovery;
pub mod envelope;
pub mod es11;
pub mod es12;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod identity;
pub mod metrics;
pub mod pki;
pub mod server;
pub mod store;
pub mod tls;
pub mod types;
