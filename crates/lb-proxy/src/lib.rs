//! One worker's data plane.
//!
//! A worker is one OS thread running one current-thread tokio runtime on its own `SO_REUSEPORT`
//! listener. Everything here is `!Send` on purpose (`Rc`, `RefCell`, `spawn_local`): nothing on the
//! data path crosses cores. The only state shared with other workers is the registry snapshot
//! (read-only) and each route's round-robin cursor (one atomic add per request).
//!
//! The request path reads top to bottom: `acceptor` (the accept loop) -> `h1` (the HTTP/1.1 client
//! connection: parse; a connection that opens with the HTTP/2 preface goes on in `h2`, where
//! each stream is one request) -> `route` (route, pick) -> `exchange` (upstream pool via
//! `upstream`, forward, respond) -> back in `h1` or the `h2` stream, one answer and one log line. Every decision about retries
//! and the client connection is a pure function in `policy`.

#![forbid(unsafe_code)]

mod acceptor;
mod access_log;
mod body_path;
mod buffers;
mod drain;
mod exchange;
mod h1;
mod h2;
mod hash_key;
mod histogram;
mod policy;
mod relay;
mod request_id;
mod route;
mod route_latency;
mod splice;
mod stats;
mod timer;
mod tls;
mod tls_stats;
mod transport;
mod tuning;
mod upstream;
mod upstream_pool;
mod worker;

pub use acceptor::{serve, WorkerListeners};
pub use access_log::{access_log, AccessLog, AccessLogWriter};
pub use stats::WorkerStats;
pub use tuning::{Tuning, TuningValues};
pub use worker::{H2Settings, WorkerConfig, WorkerSettings};
