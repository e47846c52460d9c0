//! The supervisor: turns a [`Config`](lb_config::Config) into running workers and an admin thread.
//!
//! One OS thread per worker, each with its own current-thread tokio runtime, pinned to one allowed
//! CPU, accepting on its own `SO_REUSEPORT` socket (bound by the supervisor, which keeps a
//! duplicate). Workers report ready / exited over a crossbeam channel; [`start`] returns only
//! when every worker accepts, and [`run`] / [`run_from`] print the one ready line and then handle
//! events until a stop: SIGINT/SIGTERM drain and return, SIGHUP reloads the config file
//! (`reload`), a worker that panics is respawned, with a back-off when it keeps
//! panicking (`worker`, `respawn`), and a takeover request on the
//! upgrade socket hands every socket and the registry to a new lb (`upgrade`, `handover`,
//! `fd_pass`).
//!
//! Beside the workers: the control-plane thread (`admin`), one health thread for the process
//! (`health`), the state file (`state`), systemd notifications (`notify`). The control-plane,
//! upgrade-socket, health and signal threads share one runtime-thread shape (`service_thread`).
//!
//! Library first: tests start lb in-process with [`start`] on port 0 and stop it with
//! [`Handle::shutdown`].

mod admin;
mod cpus;
mod demo;
mod fd_pass;
mod handover;
mod health;
mod listener;
mod notify;
mod reload;
mod respawn;
mod service_thread;
mod signals;
mod sockopt;
mod state;
mod supervisor;
mod upgrade;
mod worker;

pub use demo::run_demo;
pub use reload::ConfigSource;
pub use supervisor::{run, run_from, start, Handle, RunError};
pub use upgrade::request_upgrade;
