//! The control plane: registration and the rest of the admin API (`/routes`, ttls), its token,
//! and `/metrics`.

mod api;
mod metrics;
mod routes;
mod stats;
mod status_page;
mod token;
mod ttl;
