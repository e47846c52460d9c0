//! The TLS termination part: the certificates in force and the one server configuration all
//! workers share, built from the configuration's `[tls]` part, and what SIGHUP does to them.
//!
//! A reload re-reads every certificate and key file named at start; when one cannot be read or
//! a key does not match its certificate, the log line names the file and the set in force stays.
//! Established connections keep the certificate they were given; new handshakes use the new set.

use crate::error::RunError;
use lb_config::{TlsConfig, TlsVersion};
use lb_tls::{server_config, CertFiles, Certificates, MinVersion, ServerConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use tracing::{error, info};

/// TLS termination while lb runs.
#[derive(Debug)]
pub(crate) struct TlsTermination {
    /// Where the TLS listener binds.
    pub(crate) listen: SocketAddr,
    certs: Arc<Certificates>,
    config: Arc<ServerConfig>,
}

impl TlsTermination {
    /// Loads the certificates of `tls` and builds the shared configuration; `None` when TLS is
    /// off. An unreadable or mismatched file is a start-up error naming it.
    pub(crate) fn start(tls: &TlsConfig) -> Result<Option<Self>, RunError> {
        let Some(listen) = tls.listen else {
            return Ok(None);
        };
        let files = tls
            .certs
            .iter()
            .map(|pair| CertFiles {
                cert: pair.cert.clone(),
                key: pair.key.clone(),
            })
            .collect();
        let certs = Arc::new(Certificates::load(files).map_err(|e| RunError::Config(e.0))?);
        let min_version = match tls.min_version {
            TlsVersion::Tls12 => MinVersion::Tls12,
            TlsVersion::Tls13 => MinVersion::Tls13,
        };
        let config =
            server_config(min_version, certs.clone()).map_err(|e| RunError::Config(e.0))?;
        Ok(Some(TlsTermination {
            listen,
            certs,
            config,
        }))
    }

    /// The configuration every worker's handshakes use.
    pub(crate) fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }

    /// SIGHUP: re-reads every certificate and key; a failure keeps the set in force.
    pub(crate) fn reload(&self) {
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
