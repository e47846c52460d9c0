//! TLS termination (SPEC part B, "TLS termination"; issue 11): SNI, versions, ALPN, resumption
//! across workers, confused and hostile clients, HTTP through TLS, certificate reloads.
//!
//! Certificates are made at test time (`rcgen`) in a scratch directory; the client is rustls
//! over a std socket, driven through the kit's [`Conn`] (via [`Wire`]), so requests and answers
//! over TLS are read exactly like clear-text ones. The client accepts any certificate and the
//! tests check which one lb presented (`peer_certificates`), since choosing it is what is tested.

mod exchange;
mod handshake;
mod reload;
mod sni;
mod startup;
mod upgrade;

use crate::lb;
use lb_testkit::{Conn, LbProcess, ScratchDir, Wire, IO_TIMEOUT};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, HandshakeKind, ProtocolVersion,
    SignatureScheme, StreamOwned, SupportedProtocolVersion,
};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;

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

/// Accepts whatever certificate lb presents (the tests check which one it was), verifying the
/// handshake signatures as usual.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Both versions, ALPN `http/1.1`: a browser-like client.
pub const BOTH: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

/// A client configuration offering `versions` and `alpn`; it keeps sessions for resumption.
pub fn client(versions: &[&'static SupportedProtocolVersion], alpn: &[&str]) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Arc::new(config)
}

/// A TLS client stream over a std socket.
pub struct TlsWire(pub StreamOwned<ClientConnection, TcpStream>);

impl std::fmt::Debug for TlsWire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsWire")
    }
}

impl Read for TlsWire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for TlsWire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl Wire for TlsWire {
    fn socket(&self) -> &TcpStream {
        &self.0.sock
    }
}

impl TlsWire {
    /// The leaf certificate lb presented.
    pub fn leaf(&self) -> Vec<u8> {
        let chain = self.0.conn.peer_certificates().unwrap_or_default();
        chain.first().map(|c| c.to_vec()).unwrap_or_default()
    }

    /// The negotiated version.
    pub fn version(&self) -> Option<ProtocolVersion> {
        self.0.conn.protocol_version()
    }

    /// The ALPN protocol lb chose.
    pub fn alpn(&self) -> Option<Vec<u8>> {
        self.0.conn.alpn_protocol().map(<[u8]>::to_vec)
    }

    /// Whether the handshake resumed a session.
    pub fn resumed(&self) -> bool {
        self.0.conn.handshake_kind() == Some(HandshakeKind::Resumed)
    }
}

/// Connects to `addr` and completes the handshake, sending `sni` as the server name (none:
/// the IP address, which rustls does not send as SNI).
pub fn tls_connect(
    addr: SocketAddr,
    config: &Arc<ClientConfig>,
    sni: Option<&str>,
) -> io::Result<Conn<TlsWire>> {
    let name = match sni {
        Some(name) => ServerName::try_from(name.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?,
        None => ServerName::IpAddress(addr.ip().into()),
    };
    let session = ClientConnection::new(config.clone(), name).map_err(io::Error::other)?;
    let socket = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    socket.set_read_timeout(Some(IO_TIMEOUT))?;
    socket.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut stream = StreamOwned::new(session, socket);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Conn::over(TlsWire(stream), addr)
}

/// [`tls_connect`], panicking with the error.
pub fn tls_open(addr: SocketAddr, config: &Arc<ClientConfig>, sni: Option<&str>) -> Conn<TlsWire> {
    tls_connect(addr, config, sni).unwrap_or_else(|e| panic!("TLS to {addr} ({sni:?}): {e}"))
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
