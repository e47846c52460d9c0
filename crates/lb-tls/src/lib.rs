//! TLS termination's control side: the certificate set lb serves (loaded from PEM files,
//! checked, chosen by SNI), and the one rustls server configuration every worker shares.
//!
//! The data plane (`lb-proxy`) only receives the finished `Arc<ServerConfig>`; everything that
//! reads files, checks keys or logs expiry dates lives here, so a bad file is reported by the
//! supervisor and never reaches a handshake. One configuration for all workers is what makes
//! session resumption work whichever worker a reconnect lands on: the ticket keys and the TLS 1.2
//! session cache are in it.
//!
//! Invariants: a [`CertSet`] is only ever built whole (every file read, every key matching its
//! certificate) and swapped in whole ([`Certificates::reload`]); a handshake reads the current set
//! once. The crypto provider is chosen here alone: [`provider`] and the ticketer that goes with
//! it, [`rotating_ticketer`].

#![forbid(unsafe_code)]

mod cert_set;
mod expiry;
mod resolver;
mod server;
mod sni;
mod ticket_keys;

pub use cert_set::{CertFiles, CertSet, LoadedCert};
pub use expiry::{not_after, ExpiryNote, EXPIRY_WARNING_DAYS};
pub use resolver::Certificates;
pub use server::{server_config, MinVersion, ALPN_H2, ALPN_HTTP1};
pub use sni::SniTable;
pub use ticket_keys::{TicketKeys, TICKET_LIFETIME_SECS};

use std::fmt;

/// The crypto provider of every TLS handshake lb serves: `ring` (builds in seconds; aws-lc-rs is
/// the candidate to measure against it on the handshake benchmark). Swap it here, in
/// [`rotating_ticketer`], and in the workspace's `rustls`/`tokio-rustls` features.
pub fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// Session-ticket keys of this process alone (no `--tls-ticket-keys`), the provider's own,
/// replaced every 6 hours (the previous key still opens tickets for one more period).
pub fn rotating_ticketer() -> Result<std::sync::Arc<dyn rustls::server::ProducesTickets>, TlsError>
{
    rustls::crypto::ring::Ticketer::new().map_err(|e| TlsError(format!("TLS tickets: {e}")))
}

/// Why a certificate set (or the configuration around it) could not be built; the message names
/// the file concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError(pub String);

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

/// The configuration type every worker's handshakes share (rustls' own).
pub use rustls::ServerConfig;
