//! One worker's data plane.
//!
//! A worker is one OS thread running one current-thread tokio runtime on its own `SO_REUSEPORT`
//! listener. Everything here is `!Send` on purpose (`Rc`, `RefCell`, `spawn_local`): nothing on the
//! data path crosses cores. The only state shared with other workers is the registry snapshot
//! (read-only) and each route's round-robin cursor (one atomic add per request).
//!
//! The request path reads top to bottom in `conn`: accept -> parse -> route -> pick -> upstream
//! pool -> forward -> respond.

#![forbid(unsafe_code)]

mod access_log;
mod buffers;
mod conn;
mod drain;
mod relay;
mod stats;
mod timer;
mod tuning;
mod upstream_pool;
mod worker;

pub use access_log::{access_log, AccessLog, AccessLogWriter};
pub use stats::WorkerStats;
pub use tuning::{Tuning, TuningValues};
pub use worker::{serve, WorkerConfig, WorkerSettings};
