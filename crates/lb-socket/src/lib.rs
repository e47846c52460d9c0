//! lb's sockets below the protocols: binding the data-plane listeners (`SO_REUSEPORT`), the
//! socket options std and socket2 lack (`TCP_DEFER_ACCEPT`), passing descriptors to another
//! process (`SCM_RIGHTS`, for zero-downtime upgrades), kernel pipes for `splice(2)` (zero-copy
//! bodies), OS errors in plain words, and the accept loop with graceful drain of the small
//! servers (control plane, echo backend).
//!
//! This is the one crate of lb that may hold `unsafe` (every other crate forbids it): only
//! `sockopt`, `fd_pass` and `pipe` allow it, each block with a `// SAFETY:` line saying why it is sound.
//! Nothing here knows HTTP, the registry or the configuration.

mod accept;
mod fd_pass;
mod listener;
mod os_error;
mod pipe;
mod sockopt;

pub use accept::{linger, serve, Stop, DRAIN_GRACE, LINGER, LINGER_BYTES};
pub use fd_pass::{recv_fds, send_fds, MAX_FDS};
pub use listener::{bind_reuseport, ensure_free};
pub use os_error::plain;
pub use pipe::Pipe;
pub use sockopt::set_defer_accept;
