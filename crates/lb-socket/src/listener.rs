//! Listening sockets: one `SO_REUSEPORT` socket per worker, so the kernel spreads new connections
//! over workers and no accept is handed from one core to another.
//!
//! Safe code over socket2; it lives beside the crate's `unsafe` modules because it is the same
//! concern (the data plane's sockets), not because it needs it.

use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::SocketAddr;

/// Binds a non-blocking listening socket on `addr` with `SO_REUSEADDR`, `SO_REUSEPORT` and
/// `TCP_NODELAY` (inherited by every accepted connection).
pub fn bind_reuseport(addr: SocketAddr, backlog: u32) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    // Accepted sockets inherit TCP_NODELAY from the listener on Linux: one setsockopt here
    // instead of one per connection.
    socket.set_tcp_nodelay(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(socket.into())
}

/// Fails when something already listens on `addr`. `SO_REUSEPORT` would otherwise let lb silently
/// share a port with another process (a second lb started by mistake) and split its traffic.
/// Port 0 always picks a free port, so it is not checked.
pub fn ensure_free(addr: SocketAddr) -> io::Result<()> {
    if addr.port() == 0 {
        return Ok(());
    }
    let probe = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    probe.set_reuse_address(true)?;
    probe.bind(&addr.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plain;

    #[test]
    fn accepted_sockets_inherit_tcp_nodelay() {
        let listener = bind_reuseport("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        listener.set_nonblocking(false).unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        assert!(accepted.nodelay().unwrap());
    }

    #[test]
    fn reuseport_sockets_share_a_port_but_a_plain_listener_does_not() {
        let first = bind_reuseport("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        let addr = first.local_addr().unwrap();
        let second = bind_reuseport(addr, 16).unwrap();
        assert_eq!(second.local_addr().unwrap(), addr);
        let err = ensure_free(addr).unwrap_err();
        assert_eq!(plain(&err), "address already in use");

        let plain_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let taken = plain_listener.local_addr().unwrap();
        assert_eq!(
            bind_reuseport(taken, 16).map(|_| ()).map_err(|e| plain(&e)),
            Err("address already in use".to_string())
        );
    }

    /// Why "start a second lb on the same port with SO_REUSEPORT, then stop the first" is not a
    /// zero-downtime restart: the kernel hashes each new connection to one socket of the group
    /// and queues it there; closing that socket resets what is queued on it, although another
    /// socket of the group is still listening. A duplicate of the same socket (what SCM_RIGHTS
    /// hands over) keeps the queue alive instead.
    #[test]
    fn closing_a_reuseport_listener_drops_its_queue_but_a_duplicate_keeps_it() {
        use std::io::{Read, Write};
        use std::net::TcpStream;
        const CLIENTS: usize = 64;

        let old = bind_reuseport("127.0.0.1:0".parse().unwrap(), 1024).unwrap();
        let addr = old.local_addr().unwrap();
        let new = bind_reuseport(addr, 1024).unwrap();
        let clients: Vec<TcpStream> = (0..CLIENTS)
            .map(|_| TcpStream::connect(addr).unwrap())
            .collect();
        drop(old); // "stop the first process" while connections wait in its queue
        let mut served = Vec::new();
        while let Ok((stream, _)) = new.accept() {
            served.push(stream);
        }
        let mut lost = 0;
        for mut c in clients {
            c.set_read_timeout(Some(std::time::Duration::from_millis(200)))
                .unwrap();
            let _ = c.write_all(b"GET / HTTP/1.1\r\n\r\n");
            let mut buf = [0u8; 1];
            match c.read(&mut buf) {
                // Still open, waiting for an answer: a connection the new socket accepted.
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                // Reset (or closed) by the kernel when the old socket closed.
                _ => lost += 1,
            }
        }
        // 64 connections all hashed to the surviving socket: probability 2^-64.
        assert!(lost > 0, "no connection was lost (served {})", served.len());
        assert_eq!(
            served.len() + lost,
            CLIENTS,
            "each one either served or lost"
        );

        // The same experiment with a duplicate of the socket instead of a second socket.
        let old = bind_reuseport("127.0.0.1:0".parse().unwrap(), 1024).unwrap();
        let addr = old.local_addr().unwrap();
        let handed_over = old.try_clone().unwrap();
        let clients: Vec<TcpStream> = (0..CLIENTS)
            .map(|_| TcpStream::connect(addr).unwrap())
            .collect();
        drop(old);
        let mut served = 0;
        while handed_over.accept().is_ok() {
            served += 1;
        }
        assert_eq!(served, CLIENTS, "nothing queued is lost");
        drop(clients);
    }
}
