//! Listening sockets: one `SO_REUSEPORT` socket per worker, so the kernel spreads new connections
//! over workers and no accept is handed from one core to another.

use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::SocketAddr;

/// Binds a non-blocking listening socket on `addr` with `SO_REUSEADDR` and `SO_REUSEPORT`.
pub(crate) fn bind_reuseport(addr: SocketAddr, backlog: u32) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(socket.into())
}

/// Fails when something already listens on `addr`. `SO_REUSEPORT` would otherwise let lb silently
/// share a port with another process (a second lb started by mistake) and split its traffic.
/// Port 0 always picks a free port, so it is not checked.
pub(crate) fn ensure_free(addr: SocketAddr) -> io::Result<()> {
    if addr.port() == 0 {
        return Ok(());
    }
    let probe = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    probe.set_reuse_address(true)?;
    probe.bind(&addr.into())
}

/// An OS error in plain words, e.g. "address already in use".
pub(crate) fn plain(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::AddrInUse => "address already in use".to_string(),
        io::ErrorKind::AddrNotAvailable => "address not available on this host".to_string(),
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => {
            let text = error.to_string();
            match text.find(" (os error") {
                Some(i) => text[..i].to_lowercase(),
                None => text,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
