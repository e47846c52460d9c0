//! Running lb: start-up and shutdown, the config file and reloads, the state file, worker
//! respawn, zero-downtime upgrade, the access log, and the built-in echo backend and demo.

mod access_log;
mod config;
mod echo_demo;
mod lifecycle;
mod logs;
mod request_id;
mod respawn;
mod state;
mod upgrade;
