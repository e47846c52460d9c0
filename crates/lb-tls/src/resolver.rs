//! The certificate set in force, shared by every worker's handshakes, and its reload.
//!
//! rustls asks [`Certificates`] for a certificate once per handshake; it reads the current
//! [`CertSet`] under a read lock held only for the SNI lookup. A reload builds the new set
//! outside the lock and swaps it in whole, so a handshake sees either the old set or the new
//! one; connections already established keep the certificate they were given.

use crate::cert_set::{CertFiles, CertSet};
use crate::expiry::ExpiryNote;
use crate::TlsError;
use parking_lot::RwLock;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tracing::{info, warn};

/// The configured certificate files and the set last loaded from them.
#[derive(Debug)]
pub struct Certificates {
    files: Vec<CertFiles>,
    current: RwLock<Arc<CertSet>>,
}

impl Certificates {
    /// Loads `files` (logging each certificate's names and expiry date).
    pub fn load(files: Vec<CertFiles>) -> Result<Self, TlsError> {
        let set = CertSet::load(&files)?;
        log_loaded(&set);
        Ok(Certificates {
            files,
            current: RwLock::new(Arc::new(set)),
        })
    }

    /// Re-reads every file; on success new handshakes use the new set. On failure the set in
    /// force stays and the error names the file.
    pub fn reload(&self) -> Result<(), TlsError> {
        let set = CertSet::load(&self.files)?;
        log_loaded(&set);
        *self.current.write() = Arc::new(set);
        Ok(())
    }

    /// The set in force.
    pub fn current(&self) -> Arc<CertSet> {
        self.current.read().clone()
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().pick(hello.server_name())
    }
}

/// One line per certificate: its file, names and expiry; a warning when it is close to it.
fn log_loaded(set: &CertSet) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    for cert in set.loaded() {
        let file = cert.cert.display();
        let names = cert.names.join(",");
        let Some(not_after) = cert.not_after else {
            info!(%file, names, "certificate loaded (expiry date unreadable)");
            continue;
        };
        match ExpiryNote::at(not_after, now) {
            ExpiryNote::Fine { days_left } => {
                info!(%file, names, not_after, days_left, "certificate loaded")
            }
            ExpiryNote::Soon { days_left } => warn!(
                %file,
                names,
                not_after,
                days_left,
                "certificate expires in {days_left} days: renew it"
            ),
            ExpiryNote::Expired => {
                warn!(%file, names, not_after, "certificate has expired: clients will refuse it")
            }
        }
    }
}
