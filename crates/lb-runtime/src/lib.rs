//! The supervisor: turns a [`Config`](lb_config::Config) into running workers and an admin thread.
//!
//! One OS thread per worker, each with its own current-thread tokio runtime, pinned to one allowed
//! CPU, accepting on its own `SO_REUSEPORT` socket (bound by the supervisor, which keeps a
//! duplicate). Workers report ready / exited over a crossbeam channel; [`start`] returns only
//! when every worker accepts, and [`run`] / [`run_from`] print the one ready line and then
//! dispatch events until a stop: SIGINT/SIGTERM drain and return, SIGHUP reloads the config file,
//! a worker that panics is respawned, with a back-off when it keeps panicking, and a takeover
//! request on the upgrade socket hands every socket and the registry to a new lb.
//!
//! The supervisor (`supervisor`) owns parts and dispatches events to them; no part imports it:
//! - the worker set (`workers`): worker threads (`worker_thread`), their sockets by kind
//!   (`listeners`, over `lb-socket`), counters, the respawn policy (`respawn`), the
//!   access log;
//! - the admin server (`admin`): admin socket, control plane, its thread;
//! - the cluster link (`cluster_link`, cluster mode only): the etcd sync thread;
//! - the upgrade part (`handover`): upgrade socket and thread, the upgrade in progress, over the
//!   protocol in `upgrade` (descriptors passed by `lb-socket`);
//! - the live settings (`settings`): configuration in force, tuning, the health thread
//!   (`prober`), the state file (`state`), and what a reload changes; the configuration's
//!   routes in the registry are `config_routes`, where the configuration comes from is
//!   `config_source`.
//!
//! Leaves shared by the parts: `event` (what the loop receives), `error` ([`RunError`]), `cpus`,
//! `notify` (systemd), `signals`, `service_thread` (the runtime-thread shape of the
//! control-plane, upgrade-socket, health and signal threads).
//!
//! Library first: tests start lb in-process with [`start`] on port 0 and stop it with
//! [`Handle::shutdown`].

#![forbid(unsafe_code)]

mod admin;
mod cluster_link;
mod config_routes;
mod config_source;
mod cpus;
mod error;
mod event;
mod handover;
mod listeners;
mod notify;
mod prober;
mod proxy_settings;
mod respawn;
mod service_thread;
mod settings;
mod signals;
mod startup;
mod state;
mod supervisor;
mod tls_termination;
mod upgrade;
mod worker_thread;
mod workers;

pub use config_source::{Checked, ConfigSource};
pub use error::RunError;
pub use supervisor::{run, run_from, start, Handle};
pub use upgrade::request_upgrade;
