//! One echo connection: a reused read buffer feeding [`Exchange`], one write per batch of answers.
//!
//! The read buffer starts at [`READ_BUF`] bytes and grows only while a single request head needs
//! more (up to `MAX_HEAD_BYTES`, where the exchange answers 431). Bytes the exchange has used are
//! dropped by moving two indices, and the unread tail is moved to the front only when the buffer
//! is full, so a steady stream of requests costs no copying and no allocation.

use crate::protocol::{Exchange, Template};
use lb_http::MAX_HEAD_BYTES;
use lb_socket::{linger, Stop};
use std::io;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::debug;

/// Initial read buffer: room for many pipelined small requests per read.
const READ_BUF: usize = 16 * 1024;

/// Serves `stream` until the client closes, a request asks to close or cannot be read, or `stop`
/// turns true while the connection waits for bytes.
pub(crate) async fn serve_connection(
    mut stream: TcpStream,
    template: Arc<Template>,
    mut stop: Stop,
) {
    if let Err(error) = run(&mut stream, template, &mut stop).await {
        debug!(%error, "echo connection ended with an error");
    }
}

async fn run(stream: &mut TcpStream, template: Arc<Template>, stop: &mut Stop) -> io::Result<()> {
    // Each batch of answers is one write; Nagle would only delay it.
    stream.set_nodelay(true)?;
    let mut exchange = Exchange::new(template);
    let mut buf = vec![0u8; READ_BUF];
    let mut out = Vec::with_capacity(4096);
    // Unused input is `buf[start..end]`.
    let (mut start, mut end) = (0, 0);
    loop {
        if end == buf.len() {
            if start > 0 {
                buf.copy_within(start..end, 0);
                end -= start;
                start = 0;
            } else {
                // A head longer than the buffer. The exchange refuses heads of MAX_HEAD_BYTES,
                // so this stops growing there; an empty read slice would read as EOF and close.
                buf.resize((buf.len() * 2).min(MAX_HEAD_BYTES), 0);
            }
        }
        let read = tokio::select! {
            read = stream.read(&mut buf[end..]) => read?,
            _ = stop.wait_for(|&stop| stop) => return Ok(()),
        };
        if read == 0 {
            return Ok(());
        }
        end += read;
        let progress = exchange.advance(&buf[start..end], &mut out);
        start += progress.consumed;
        if start == end {
            (start, end) = (0, 0);
        }
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
        if progress.close {
            return linger(stream, stop).await;
        }
    }
}
