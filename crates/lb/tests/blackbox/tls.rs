//! TLS termination (SPEC part B, "TLS termination"; issue 11): SNI, versions, ALPN, resumption
//! across workers, confused and hostile clients, HTTP through TLS, certificate reloads.
//!
//! Certificates are made at test time (`rcgen`) in a scratch directory; the client is rustls
//! over a std socket (`lb_testkit::tls_client`), driven through the kit's `Conn`, so requests
//! and answers over TLS are read exactly like clear-text ones. The client accepts any
//! certificate and the tests check which one lb presented, since choosing it is what is tested.

mod exchange;
mod handshake;
mod http2;
mod reload;
mod sni;
mod startup;
mod upgrade;

use crate::lb;
pub use lb_testkit::tls_client::{client, tls_connect, tls_open, BOTH};
use lb_testkit::{LbProcess, ScratchDir};
use std::net::SocketAddr;
use std::path::PathBuf;

/// A certificate and key written as PEM files, and the certificate's DER (what lb presents).
#[derive(Debug, Clone)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub der: Vec<u8>,
}

/// A self-signed ECDSA P-256 certificate for `names`, written to `<dir>/<file>.crt|.key`
/// through a rename, as an ACME client replaces its files.
pub fn make_cert(dir: &ScratchDir, file: &str, names: &[&str]) -> CertFiles {
    let key = rcgen::KeyPair::generate().expect("key");
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let cert = rcgen::CertificateParams::new(names)
        .expect("names")
        .self_signed(&key)
        .expect("certificate");
    let files = CertFiles {
        cert: dir.join(&format!("{file}.crt")),
        key: dir.join(&format!("{file}.key")),
        der: cert.der().to_vec(),
    };
    write_atomically(&files.cert, cert.pem().as_bytes());
    write_atomically(&files.key, key.serialize_pem().as_bytes());
    files
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`.
pub fn write_atomically(path: &std::path::Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap_or_else(|e| panic!("write {}: {e}", tmp.display()));
    std::fs::rename(&tmp, path).unwrap_or_else(|e| panic!("rename to {}: {e}", path.display()));
}

/// The flags for a TLS listener on port 0 serving `certs` in order.
pub fn tls_flags(certs: &[&CertFiles]) -> Vec<String> {
    let mut flags = vec!["--tls-listen".to_string(), "127.0.0.1:0".to_string()];
    for c in certs {
        flags.push("--tls-cert".to_string());
        flags.push(c.cert.display().to_string());
        flags.push("--tls-key".to_string());
        flags.push(c.key.display().to_string());
    }
    flags
}

/// lb with `workers` workers, `routes`, TLS serving `certs`, and `extra` flags.
pub fn tls_lb(
    workers: usize,
    routes: &[(&str, &[SocketAddr])],
    certs: &[&CertFiles],
    extra: &[&str],
) -> LbProcess {
    let mut flags = tls_flags(certs);
    flags.extend(extra.iter().map(|s| s.to_string()));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let lb = lb(workers, routes, &flags);
    assert!(
        lb.ready_line().contains(", tls 127.0.0.1:"),
        "{}",
        lb.ready_line()
    );
    lb
}

/// The sum over lb's workers of a TLS counter: `family` with `labels` (without the worker).
pub fn tls_metric(lb: &LbProcess, family: &str, labels: &str) -> f64 {
    let admin = lb.admin();
    (0..lb.workers())
        .map(|w| admin.metric(&format!("{family}{{worker=\"{w}\",{labels}}}")))
        .sum()
}

/// Waits until the TLS counter [`tls_metric`] reads `want` (a connection's end is counted as it
/// closes, so a test that saw the close may ask a moment too early).
pub fn wait_for_tls_metric(lb: &LbProcess, family: &str, labels: &str, want: f64) {
    lb_testkit::poll_until(
        lb_testkit::WAIT,
        &format!("{family} {labels} = {want}"),
        || {
            let seen = tls_metric(lb, family, labels);
            if seen == want {
                Ok(())
            } else {
                Err(seen)
            }
        },
    );
}
