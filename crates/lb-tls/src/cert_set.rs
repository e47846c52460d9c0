//! A certificate set: every configured certificate chain with its private key, read from PEM
//! files, checked, and indexed for SNI.
//!
//! A set is built whole or not at all: a file that cannot be read, holds no certificate or key,
//! or a key that does not match its certificate's public key fails the whole set with an error
//! naming the file, so a reload with one bad file keeps the previous set (the caller's choice).
//! Keys may be PKCS#8, PKCS#1 or SEC1 (whatever `PemObject` recognises).

use crate::expiry::not_after;
use crate::sni::SniTable;
use crate::{provider, TlsError};
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::PathBuf;
use std::sync::Arc;

/// One certificate chain and its key, as configured (`--tls-cert` / `--tls-key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    /// PEM: the end-entity certificate first, then its chain.
    pub cert: PathBuf,
    /// PEM: the private key of the end-entity certificate.
    pub key: PathBuf,
}

/// What the log says about one loaded certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedCert {
    /// The certificate file.
    pub cert: PathBuf,
    /// Its subjectAltName DNS names.
    pub names: Vec<String>,
    /// Its `notAfter`, in Unix seconds (`None` when it could not be read).
    pub not_after: Option<i64>,
}

/// Certificates in configuration order (the first is the default), and their SNI index.
#[derive(Debug)]
pub struct CertSet {
    keys: Vec<Arc<CertifiedKey>>,
    sni: SniTable,
    loaded: Vec<LoadedCert>,
}

impl CertSet {
    /// Reads and checks every pair of `files`. At least one pair is needed.
    pub fn load(files: &[CertFiles]) -> Result<Self, TlsError> {
        let provider = provider();
        let mut pairs = Vec::with_capacity(files.len());
        for pair in files {
            let read = |path: &PathBuf| {
                std::fs::read(path)
                    .map_err(|e| TlsError(format!("cannot read {}: {e}", path.display())))
            };
            pairs.push((pair, read(&pair.cert)?, read(&pair.key)?));
        }
        let pems = pairs
            .iter()
            .map(|(pair, cert, key)| (*pair, &cert[..], &key[..]));
        CertSet::from_pem(pems, &provider)
    }

    /// The set of the PEM texts `(files, cert, key)` (the files only name them in errors).
    pub fn from_pem<'a>(
        pems: impl IntoIterator<Item = (&'a CertFiles, &'a [u8], &'a [u8])>,
        provider: &CryptoProvider,
    ) -> Result<Self, TlsError> {
        let mut keys = Vec::new();
        let mut loaded = Vec::new();
        for (files, cert, key) in pems {
            let (certified, info) = certified_key(files, cert, key, provider)?;
            keys.push(Arc::new(certified));
            loaded.push(info);
        }
        if keys.is_empty() {
            return Err(TlsError(
                "TLS needs at least one certificate (--tls-cert with --tls-key)".to_string(),
            ));
        }
        let sni = SniTable::new(loaded.iter().map(|l| l.names.iter().map(String::as_str)));
        Ok(CertSet { keys, sni, loaded })
    }

    /// The certificate for the client's `server_name`.
    pub fn pick(&self, server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let i = self.sni.pick(server_name);
        self.keys.get(i).or_else(|| self.keys.first()).cloned()
    }

    /// The certificates as loaded, for the log.
    pub fn loaded(&self) -> &[LoadedCert] {
        &self.loaded
    }
}

fn certified_key(
    files: &CertFiles,
    cert: &[u8],
    key: &[u8],
    provider: &CryptoProvider,
) -> Result<(CertifiedKey, LoadedCert), TlsError> {
    let cert_file = files.cert.display();
    let key_file = files.key.display();
    let chain = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError(format!("{cert_file}: not a PEM certificate chain: {e}")))?;
    let Some(leaf) = chain.first() else {
        return Err(TlsError(format!("{cert_file}: no certificate in it")));
    };
    let names = webpki::EndEntityCert::try_from(leaf)
        .map_err(|e| TlsError(format!("{cert_file}: not a valid certificate: {e}")))?
        .valid_dns_names()
        .map(str::to_string)
        .collect();
    let info = LoadedCert {
        cert: files.cert.clone(),
        names,
        not_after: not_after(leaf),
    };
    let key = PrivateKeyDer::from_pem_slice(key)
        .map_err(|e| TlsError(format!("{key_file}: not a PEM private key: {e}")))?;
    let certified = CertifiedKey::from_der(chain, key, provider).map_err(|e| {
        TlsError(format!(
            "{key_file}: cannot use this key with {cert_file}: {e}"
        ))
    })?;
    Ok((certified, info))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A self-signed certificate for `names`: (cert PEM, key PEM).
    pub(crate) fn generated(names: &[&str]) -> (String, String) {
        let names = names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(names)
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn files(name: &str) -> CertFiles {
        CertFiles {
            cert: format!("{name}.crt").into(),
            key: format!("{name}.key").into(),
        }
    }

    fn set(pems: &[(CertFiles, String, String)]) -> Result<CertSet, TlsError> {
        let pems = pems.iter().map(|(f, c, k)| (f, c.as_bytes(), k.as_bytes()));
        CertSet::from_pem(pems, &provider())
    }

    #[test]
    fn certificates_are_picked_by_their_names() {
        let (a, a_key) = generated(&["a.test"]);
        let (b, b_key) = generated(&["*.b.test"]);
        let set = set(&[(files("a"), a.clone(), a_key), (files("b"), b, b_key)]).unwrap();
        assert_eq!(set.loaded()[1].names, ["*.b.test"]);
        assert!(set.loaded()[0].not_after.is_some());
        let leaf = |name| set.pick(name).unwrap().cert[0].clone();
        assert_eq!(leaf(Some("x.b.test")), set.keys[1].cert[0]);
        assert_eq!(leaf(Some("a.test")), set.keys[0].cert[0]);
        assert_eq!(leaf(None), set.keys[0].cert[0]);
    }

    #[test]
    fn a_key_of_another_certificate_is_refused_naming_the_file() {
        let (a, _) = generated(&["a.test"]);
        let (_, other_key) = generated(&["b.test"]);
        let error = set(&[(files("a"), a, other_key)]).unwrap_err();
        assert!(
            error.0.starts_with("a.key: cannot use this key with a.crt"),
            "{error}"
        );
    }

    #[test]
    fn broken_files_are_refused_naming_the_file() {
        let (a, a_key) = generated(&["a.test"]);
        let cases = [
            (String::new(), a_key.clone(), "a.crt: no certificate"),
            ("garbage".to_string(), a_key, "a.crt: no certificate"),
            (a, "garbage".to_string(), "a.key: not a PEM private key"),
        ];
        for (cert, key, want) in cases {
            let error = set(&[(files("a"), cert, key)]).unwrap_err();
            assert!(error.0.starts_with(want), "{error} (wanted {want})");
        }
        assert!(set(&[]).is_err());
        let missing = CertSet::load(&[files("/nonexistent/a")]).unwrap_err();
        assert!(
            missing.0.starts_with("cannot read /nonexistent/a.crt"),
            "{missing}"
        );
    }
}
