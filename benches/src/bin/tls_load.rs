//! `tls_load`: the load generator of `scripts/bench.sh`'s `tls` mode: TLS handshakes and HTTP/1.1
//! requests over them, with a rustls client, from `--conns` threads for `--duration` seconds.
//!
//! Modes: `full` (a new connection, a full handshake, one `GET` with `Connection: close`, the
//! answer, close), `resumed` (the same, resuming the thread's last session: a TLS 1.3 ticket),
//! `keepalive` (one connection per thread, `GET` after `GET`), `big` (like keepalive, on a path
//! whose answer is large: `--path /big`). It trusts any certificate (it measures, it does not
//! check: the client is lb-testkit's, which still verifies handshake signatures, a real cost).
//! It prints one line: `requests=N handshakes=N resumed=N bytes=N errors=N seconds=S`,
//! `bytes` being the response bodies received.
//!
//! Usage: `tls_load --addr ADDR --mode full|resumed|keepalive|big [--conns N] [--duration SECS]
//! [--path PATH] [--sni NAME] [--tls13-only]`

use lb_testkit::tls_client::client_with;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Full,
    Resumed,
    KeepAlive,
    Big,
}

#[derive(Debug, Clone)]
struct Args {
    addr: SocketAddr,
    mode: Mode,
    conns: usize,
    duration: Duration,
    path: String,
    sni: String,
    tls13_only: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut addr, mut mode) = (None, None);
    let mut parsed = Args {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        mode: Mode::Full,
        conns: 8,
        duration: Duration::from_secs(5),
        path: "/".to_string(),
        sni: "lb.test".to_string(),
        tls13_only: false,
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => addr = Some(value()?.parse().map_err(|e| format!("--addr: {e}"))?),
            "--mode" => {
                mode = Some(match value()?.as_str() {
                    "full" => Mode::Full,
                    "resumed" => Mode::Resumed,
                    "keepalive" => Mode::KeepAlive,
                    "big" => Mode::Big,
                    other => return Err(format!("unknown mode {other}")),
                })
            }
            "--conns" => parsed.conns = value()?.parse().map_err(|e| format!("--conns: {e}"))?,
            "--duration" => {
                let secs: f64 = value()?.parse().map_err(|e| format!("--duration: {e}"))?;
                parsed.duration = Duration::from_secs_f64(secs);
            }
            "--path" => parsed.path = value()?,
            "--sni" => parsed.sni = value()?,
            "--tls13-only" => parsed.tls13_only = true,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    parsed.addr = addr.ok_or("--addr is required")?;
    parsed.mode = mode.ok_or("--mode is required")?;
    Ok(parsed)
}

fn client_config(args: &Args) -> Arc<ClientConfig> {
    let versions: &[&rustls::SupportedProtocolVersion] = if args.tls13_only {
        &[&rustls::version::TLS13]
    } else {
        rustls::DEFAULT_VERSIONS
    };
    client_with(versions, &["http/1.1"], args.mode != Mode::Full)
}

#[derive(Debug, Default)]
struct Totals {
    requests: AtomicU64,
    handshakes: AtomicU64,
    resumed: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
}

type Tls = StreamOwned<ClientConnection, TcpStream>;

fn connect(args: &Args, config: &Arc<ClientConfig>, totals: &Totals) -> io::Result<Tls> {
    let name = ServerName::try_from(args.sni.clone())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let session = ClientConnection::new(config.clone(), name).map_err(io::Error::other)?;
    let socket = TcpStream::connect(args.addr)?;
    socket.set_nodelay(true)?;
    socket.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut stream = StreamOwned::new(session, socket);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    totals.handshakes.fetch_add(1, Ordering::Relaxed);
    if stream.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
        totals.resumed.fetch_add(1, Ordering::Relaxed);
    }
    Ok(stream)
}

/// Sends one `GET` and reads its answer (Content-Length framing); returns the body length.
fn exchange(stream: &mut Tls, args: &Args, close: bool, buf: &mut Vec<u8>) -> io::Result<u64> {
    let connection = if close { "close" } else { "keep-alive" };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: {connection}\r\n\r\n",
        args.path, args.sni
    );
    stream.write_all(request.as_bytes())?;
    stream.flush()?;
    buf.clear();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    if !head.starts_with("http/1.1 200") {
        return Err(io::Error::other(format!(
            "answer: {}",
            head.lines().next().unwrap_or("")
        )));
    }
    let length: u64 = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| io::Error::other("no content-length"))?;
    let mut have = (buf.len() - head_end) as u64;
    while have < length {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        have += n as u64;
    }
    Ok(length)
}

fn worker(args: &Args, totals: &Totals, deadline: Instant) {
    let config = client_config(args);
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut kept: Option<Tls> = None;
    while Instant::now() < deadline {
        let one_shot = matches!(args.mode, Mode::Full | Mode::Resumed);
        let result = (|| {
            let mut stream = match kept.take() {
                Some(stream) => stream,
                None => connect(args, &config, totals)?,
            };
            let body = exchange(&mut stream, args, one_shot, &mut buf)?;
            if one_shot {
                stream.conn.send_close_notify();
                let _ = stream.conn.complete_io(&mut stream.sock);
            } else {
                kept = Some(stream);
            }
            Ok::<_, io::Error>(body)
        })();
        match result {
            Ok(body) => {
                totals.requests.fetch_add(1, Ordering::Relaxed);
                totals.bytes.fetch_add(body, Ordering::Relaxed);
            }
            Err(_) => {
                totals.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("tls_load: {e}");
            return ExitCode::from(2);
        }
    };
    let totals = Arc::new(Totals::default());
    let started = Instant::now();
    let deadline = started + args.duration;
    let threads: Vec<_> = (0..args.conns.max(1))
        .map(|_| {
            let (args, totals) = (args.clone(), totals.clone());
            std::thread::spawn(move || worker(&args, &totals, deadline))
        })
        .collect();
    for thread in threads {
        let _ = thread.join();
    }
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    println!(
        "requests={} handshakes={} resumed={} bytes={} errors={} seconds={:.3}",
        load(&totals.requests),
        load(&totals.handshakes),
        load(&totals.resumed),
        load(&totals.bytes),
        load(&totals.errors),
        started.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}
