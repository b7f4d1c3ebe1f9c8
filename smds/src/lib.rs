//! The SM-DS (SGP.22 Subscription Manager - Discovery Server) and the lab clients around it.
//!
//! Layout: [`store`] keeps events (redb); [`es12`] implements RegisterEvent/DeleteEvent on top
//! of it; [`envelope`] is the SGP.22 JSON envelope; [`types`] and [`identity`] are validated
//! request values and caller identities.

pub mod envelope;
pub mod es12;
pub mod identity;
pub mod store;
pub mod types;
