//! The `[tls]` settings: the HTTPS listener, the lowest TLS version, and the certificate files
//! (`[[tls.cert]]`, or `--tls-cert` / `--tls-key` paired in order).
//!
//! Only paths are held here (this crate does no I/O); the runtime reads and checks the files
//! at start and at every SIGHUP. A layer that names any certificate replaces the whole list
//! of the layers below it, as a list of pairs cannot be merged one by one.

use crate::ConfigError;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The lowest TLS version accepted (`min_version = "1.2" | "1.3"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3 (the default).
    #[default]
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

impl std::str::FromStr for TlsVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "1.2" => Ok(TlsVersion::Tls12),
            "1.3" => Ok(TlsVersion::Tls13),
            _ => Err(format!(
                "TLS min_version must be \"1.2\" or \"1.3\", not \"{s}\""
            )),
        }
    }
}

/// A certificate chain file and its key file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPair {
    /// PEM certificate chain, end-entity certificate first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// TLS termination; off while `listen` is `None`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsConfig {
    /// HTTPS data-plane address, one `SO_REUSEPORT` socket per worker like `listen`.
    pub listen: Option<SocketAddr>,
    /// See [`TlsVersion`].
    pub min_version: TlsVersion,
    /// Certificates in order; the first answers clients without SNI or with an unknown name.
    pub certs: Vec<CertPair>,
    /// Session-ticket keys shared with other lb nodes (`ticket_keys`, `--tls-ticket-keys`);
    /// `None`: keys of this process, rotated every 6 hours.
    pub ticket_keys: Option<PathBuf>,
}

/// Pairs `--tls-cert` with `--tls-key` in the order given.
pub fn pair_certs(certs: &[PathBuf], keys: &[PathBuf]) -> Result<Vec<CertPair>, ConfigError> {
    if certs.len() != keys.len() {
        return Err(ConfigError(format!(
            "{} --tls-cert and {} --tls-key: expected one key after each certificate",
            certs.len(),
            keys.len()
        )));
    }
    Ok(certs
        .iter()
        .zip(keys)
        .map(|(cert, key)| CertPair {
            cert: cert.clone(),
            key: key.clone(),
        })
        .collect())
}

impl TlsConfig {
    /// Every problem of the TLS settings beside the clear-text `listen` and `admin` addresses.
    pub(crate) fn validate(
        &self,
        listen: SocketAddr,
        admin: SocketAddr,
    ) -> Result<(), ConfigError> {
        let Some(tls) = self.listen else {
            if self.certs.is_empty() && self.ticket_keys.is_none() {
                return Ok(());
            }
            return Err(ConfigError(
                "TLS certificates or ticket keys are set but no TLS listener: expected tls.listen \
                 (--tls-listen)"
                    .into(),
            ));
        };
        if self.certs.is_empty() {
            return Err(ConfigError(format!(
                "tls.listen (--tls-listen) {tls} needs at least one certificate: \
                 [[tls.cert]] (--tls-cert CERT.pem --tls-key KEY.pem)"
            )));
        }
        for (name, other) in [("listen", listen), ("admin", admin)] {
            if tls == other && tls.port() != 0 {
                return Err(ConfigError(format!(
                    "tls.listen and {name} are both {tls}: expected two different addresses"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(n: &str) -> CertPair {
        CertPair {
            cert: format!("{n}.crt").into(),
            key: format!("{n}.key").into(),
        }
    }

    #[test]
    fn versions_parse() {
        assert_eq!("1.2".parse(), Ok(TlsVersion::Tls12));
        assert_eq!("1.3".parse(), Ok(TlsVersion::Tls13));
        assert!("1.1".parse::<TlsVersion>().is_err());
    }

    #[test]
    fn certificates_pair_in_order() {
        let paths = |names: &[&str]| names.iter().map(PathBuf::from).collect::<Vec<_>>();
        let pairs = pair_certs(&paths(&["a.crt", "b.crt"]), &paths(&["a.key", "b.key"]));
        assert_eq!(pairs, Ok(vec![pair("a"), pair("b")]));
        assert!(pair_certs(&paths(&["a.crt"]), &[]).is_err());
    }

    #[test]
    fn validation_table() {
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        let (listen, admin) = (addr("0.0.0.0:8080"), addr("127.0.0.1:8081"));
        let cases = [
            (None, vec![], true),
            (None, vec![pair("a")], false),
            (Some("0.0.0.0:8443"), vec![], false),
            (Some("0.0.0.0:8443"), vec![pair("a")], true),
            (Some("0.0.0.0:8080"), vec![pair("a")], false),
            (Some("127.0.0.1:8081"), vec![pair("a")], false),
        ];
        for (tls_listen, certs, ok) in cases {
            let tls = TlsConfig {
                listen: tls_listen.map(addr),
                min_version: TlsVersion::Tls12,
                certs,
                ticket_keys: None,
            };
            assert_eq!(tls.validate(listen, admin).is_ok(), ok, "{tls:?}");
        }
    }
}
