//! The TLS settings lb is started with and the one rustls [`ServerConfig`] built from them.
//!
//! One configuration serves every worker: its ticketer (TLS 1.3 and TLS 1.2 tickets: keys of
//! a `--tls-ticket-keys` file, or else process-local keys rotated by rustls' `TicketRotator`
//! every 6 hours, [`crate::rotating_ticketer`]) and its TLS 1.2 session-ID cache are shared, so a
//! client resumes whichever worker its reconnect lands on. No 0-RTT
//! (`max_early_data_size` stays 0): replayable requests are not worth the handshake saved.

use crate::resolver::Certificates;
#[cfg(doc)]
use crate::rotating_ticketer;
use crate::{provider, TlsError};
use rustls::server::{ProducesTickets, ServerSessionMemoryCache};
use rustls::version::{TLS12, TLS13};
use rustls::{ServerConfig, SupportedProtocolVersion};
use std::sync::Arc;

/// ALPN name of HTTP/1.1.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// ALPN name of HTTP/2, offered first: a client that speaks both gets HTTP/2 (RFC 7301 §3.2
/// lets the server choose; browsers expect `h2` when offered).
pub const ALPN_H2: &[u8] = b"h2";

/// TLS 1.2 sessions remembered by ID for clients without tickets (all workers together).
const SESSION_CACHE: usize = 16_384;

/// The lowest TLS version lb accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MinVersion {
    /// TLS 1.2 and 1.3 (the default).
    #[default]
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

/// The configuration every worker's handshakes use, choosing certificates from `certs` and
/// sealing session tickets with `ticketer`.
pub fn server_config(
    min_version: MinVersion,
    certs: Arc<Certificates>,
    ticketer: Arc<dyn ProducesTickets>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let versions: &[&SupportedProtocolVersion] = match min_version {
        MinVersion::Tls12 => &[&TLS13, &TLS12],
        MinVersion::Tls13 => &[&TLS13],
    };
    let fail = |e: rustls::Error| TlsError(format!("TLS configuration: {e}"));
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(versions)
        .map_err(fail)?
        .with_no_client_auth()
        .with_cert_resolver(certs);
    config.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP1.to_vec()];
    // The server's order (rustls': AEAD suites with forward secrecy, strongest first) rather
    // than the client's, so a client preferring a weaker suite does not get it.
    config.ignore_client_order = true;
    config.ticketer = ticketer;
    config.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE);
    config.max_early_data_size = 0;
    Ok(Arc::new(config))
}
