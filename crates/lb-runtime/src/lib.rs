//! The supervisor: turns a [`Config`](lb_config::Config) into running workers and an admin thread.
//!
//! One OS thread per worker, each with its own current-thread tokio runtime, pinned to one allowed
//! CPU, accepting on its own `SO_REUSEPORT` socket. Workers report ready / exited over a
//! crossbeam channel; [`start`] returns only when every worker accepts, and [`run`] prints the one
//! ready line, waits for SIGINT/SIGTERM, drains and returns.
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
mod signals;
mod state;
mod supervisor;
mod upgrade;
mod worker;

pub use demo::run_demo;
pub use reload::ConfigSource;
pub use supervisor::{run, run_from, start, Handle, RunError};
pub use upgrade::request_upgrade;
