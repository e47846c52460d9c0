//! A TLS client for black-box tests and the TLS load generator (feature `tls`): rustls over a
//! std socket, wrapped as a [`Wire`] so [`Conn`] speaks HTTP/1.1 over it like over clear text.
//!
//! The client accepts any certificate (the tests check which one lb presented, since choosing
//! it is what they test; the load generator measures and checks nothing) but verifies the
//! handshake signatures as usual, so the handshake costs what a browser's costs.

use crate::{Conn, Wire, IO_TIMEOUT};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, HandshakeKind, ProtocolVersion,
    SignatureScheme, StreamOwned, SupportedProtocolVersion,
};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

/// Accepts whatever certificate lb presents (the tests check which one it was), verifying the
/// handshake signatures as usual.
#[derive(Debug)]
pub struct AnyCertificate(pub Arc<CryptoProvider>);

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
    client_with(versions, alpn, true)
}

/// [`client`], keeping sessions for resumption only with `resume`.
pub fn client_with(
    versions: &[&'static SupportedProtocolVersion],
    alpn: &[&str],
    resume: bool,
) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    if !resume {
        config.resumption = Resumption::disabled();
    }
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
