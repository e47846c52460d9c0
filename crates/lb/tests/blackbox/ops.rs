//! Running lb: start-up and shutdown, the config file and reloads, the state file, worker
//! respawn, zero-downtime upgrade, the access log, and the built-in echo backend and demo.

mod access_log;
mod check;
mod config;
mod config_errors;
mod echo_demo;
mod host_names;
mod lifecycle;
mod logs;
mod request_id;
mod respawn;
mod startup;
mod state;
mod upgrade;
