//! The SM-DS (SGP.22 Subscription Manager - Discovery Server) and the lab clients around it.

pub mod store;
