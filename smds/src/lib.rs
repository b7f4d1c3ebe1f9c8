//! The SM-DS (SGP.22 Subscription Manager - Discovery Server) and the lab clients around it.
//! `ARCHITECTURE.md` at the repository root draws the map; in short, from the top down:
//!
//! - [`server`]: starts and stops a whole SM-DS from a [`config::Config`] and [`pki::ServerPki`].
//! - [`transport`]: TLS listener and connection limits, routing, admin listener, rustls
//!   verifiers, metrics.
//! - [`es11`], [`es12`], [`es15`]: the SGP.22 function handlers, each with its error enum mapped to status
//!   codes in one place.
//! - Domain: [`auth`] (ES11 sessions), [`pki`] (the server's credentials), [`revocation`] (CRLs),
//!   [`push`] (SGP.22 v3 push notifications to the configured gateways),
//!   [`store`] (the event store traits and the redb backend), [`identity`] (who a TLS peer is).
//! - Types: [`sgp22`] (function names, paths, codes, envelope, typed requests and responses),
//!   [`asn1`] (SGP.22 ASN.1 structures), [`types`] (validated values).
//! - [`lab`]: the clients a lab drives the server with (SM-DP+, LPA with a software eUICC), apart
//!   from the server.

pub mod asn1;
pub(crate) mod auth;
pub(crate) mod blocking;
pub mod cascade;
pub mod config;
pub(crate) mod delivery;
pub(crate) mod es11;
pub(crate) mod es12;
pub(crate) mod es15;
#[doc(hidden)]
pub mod fuzzing;
pub mod identity;
pub mod lab;
pub mod pki;
pub mod push;
pub mod revocation;
pub mod server;
pub mod sgp22;
pub mod store;
pub mod transport;
pub mod types;
