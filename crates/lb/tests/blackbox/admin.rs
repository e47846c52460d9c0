//! The control plane: registration and the rest of the admin API, its token, and `/metrics`.

mod api;
mod metrics;
mod token;
