//! lb's built-in backend (`lb echo`): a tiny, fast HTTP/1.1 server for demos, tests and
//! benchmarks.
//!
//! Every request is answered `200 OK` with `X-Backend: NAME`, `X-Path: <request target as
//! received>` and `X-Body-Bytes: <body bytes received>`, and the body `NAME\n` (no body for HEAD),
//! so a test can see which backend served a request, what path lb forwarded and how much body
//! arrived. Connections are persistent (HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with
//! `keep-alive`) and pipelining-safe. Request bodies (Content-Length or chunked) are read and
//! discarded. A request that cannot be framed is answered `400` and the connection closed.
//!
//! Layout: [`serve`] accepts and drains (the loop lives in `lb-socket`, shared with the control
//! plane); `connection` owns the socket and its buffers; `protocol` is the echo protocol, sans I/O.

#![forbid(unsafe_code)]

mod connection;
mod protocol;

use protocol::Template;
use std::future::Future;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Serves echo on `listener` until `shutdown` resolves.
///
/// Runs on the caller's tokio runtime (IO and time drivers enabled); each connection is a
/// `tokio::spawn`ed task. When `shutdown` resolves, no new connection is accepted, connections
/// close as soon as they wait for the client (answers already due are written first), and
/// `serve` returns with no task left behind. Control characters in `name` are sent as `?` in the
/// `X-Backend` header.
pub async fn serve(listener: TcpListener, name: Arc<str>, shutdown: impl Future<Output = ()>) {
    let template = Arc::new(Template::new(&name));
    lb_socket::serve("echo", listener, shutdown, |stream, _peer, stop| {
        connection::serve_connection(stream, template.clone(), stop)
    })
    .await;
}

/// Blocking entry for `lb echo --listen ADDR --name NAME`.
///
/// Builds a current-thread runtime, binds `addr`, prints `echo NAME listening on ADDR` with the
/// bound address (so port 0 works for scripts that read it), and serves until SIGINT or SIGTERM.
pub fn run(addr: SocketAddr, name: &str) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // The address goes into the error: "address already in use" alone does not say which.
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot listen on {addr}: {}", lb_socket::plain(&e)),
            )
        })?;
        let bound = listener.local_addr()?;
        // Handlers are installed before the line is printed: whoever reads it may signal at once.
        let stop = termination()?;
        {
            let mut stdout = io::stdout().lock();
            writeln!(stdout, "echo {name} listening on {bound}")?;
            stdout.flush()?;
        }
        serve(listener, Arc::from(name), stop).await;
        Ok(())
    })
}

/// Resolves on the first SIGINT or SIGTERM.
#[cfg(unix)]
fn termination() -> io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// Resolves on the first Ctrl-C (the only termination signal tokio offers off Unix).
#[cfg(not(unix))]
fn termination() -> io::Result<impl Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
