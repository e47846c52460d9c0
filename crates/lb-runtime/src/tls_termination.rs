//! The TLS termination part: the certificates in force, the session-ticket keys, and the one
//! server configuration all workers share, built from the configuration's `[tls]` part, and
//! what SIGHUP does to them.
//!
//! A reload re-reads every certificate and key file named at start, and the ticket-key file;
//! when one cannot be read or a key does not match its certificate, the log line names the file
//! and what is in force stays. Established connections keep the certificate they were given;
//! new handshakes use the new set.

use crate::error::RunError;
use lb_config::{TlsConfig, TlsVersion};
use lb_tls::{
    rotating_ticketer, server_config, CertFiles, Certificates, MinVersion, ServerConfig,
    TicketKeys, TlsError,
};
use std::net::SocketAddr;
use std::sync::Arc;
use tracing::{error, info};

/// TLS termination while lb runs.
#[derive(Debug)]
pub(crate) struct TlsTermination {
    /// Where the TLS listener binds.
    pub(crate) listen: SocketAddr,
    certs: Arc<Certificates>,
    /// The ticket-key file's keys, when one is configured.
    ticket_keys: Option<Arc<TicketKeys>>,
    config: Arc<ServerConfig>,
}

impl TlsTermination {
    /// Loads the certificates (and ticket keys) of `tls` and builds the shared configuration;
    /// `None` when TLS is off. An unreadable or mismatched file is a start-up error naming it.
    pub(crate) fn start(tls: &TlsConfig) -> Result<Option<Self>, RunError> {
        let Some(listen) = tls.listen else {
            return Ok(None);
        };
        let config_error = |e: TlsError| RunError::Config(e.0);
        let files = tls
            .certs
            .iter()
            .map(|pair| CertFiles {
                cert: pair.cert.clone(),
                key: pair.key.clone(),
            })
            .collect();
        let certs = Arc::new(Certificates::load(files).map_err(config_error)?);
        let min_version = match tls.min_version {
            TlsVersion::Tls12 => MinVersion::Tls12,
            TlsVersion::Tls13 => MinVersion::Tls13,
        };
        let ticket_keys = match &tls.ticket_keys {
            Some(path) => Some(Arc::new(TicketKeys::load(path).map_err(config_error)?)),
            None => None,
        };
        let ticketer = match &ticket_keys {
            Some(keys) => keys.clone(),
            None => rotating_ticketer().map_err(config_error)?,
        };
        let config = server_config(min_version, certs.clone(), ticketer).map_err(config_error)?;
        Ok(Some(TlsTermination {
            listen,
            certs,
            ticket_keys,
            config,
        }))
    }

    /// The configuration every worker's handshakes use.
    pub(crate) fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }

    /// SIGHUP: re-reads every certificate and key, and the ticket-key file; a failure keeps
    /// what is in force.
    pub(crate) fn reload(&self) {
        if let Some(keys) = &self.ticket_keys {
            match keys.reload() {
                Ok(n) => info!(keys = n, "TLS ticket keys reloaded"),
                Err(e) => {
                    error!(error = %e, "TLS ticket key reload rejected; the keys in use stay")
                }
            }
        }
        match self.certs.reload() {
            Ok(()) => info!(
                certificates = self.certs.current().loaded().len(),
                "TLS certificates reloaded"
            ),
            Err(e) => error!(
                error = %e,
                "TLS certificate reload rejected; the certificates in use stay"
            ),
        }
    }
}
