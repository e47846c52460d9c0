//! `TCP_DEFER_ACCEPT` on the worker sockets: neither std (unstable `set_deferaccept`) nor
//! socket2 sets it, hence one `setsockopt` through libc (the crate's other `unsafe` is in
//! `fd_pass` and `pipe`).

#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

/// Has the kernel queue a connection for `accept` only once its first bytes arrived, or once
/// `wait` passed without any (the kernel counts whole seconds: `wait` is rounded up). A zero
/// `wait` turns it off. Applies to connections that arrive from now on, on every descriptor of
/// this socket (the supervisor's duplicates and a successor's inherited ones included).
pub fn set_defer_accept(socket: &impl AsFd, wait: Duration) -> io::Result<()> {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let value = libc::c_int::try_from(seconds).unwrap_or(libc::c_int::MAX);
    // SAFETY: the descriptor is open for the borrow's duration, and the option value points to a
    // live `c_int` whose exact size is passed; the kernel only reads it.
    let result = unsafe {
        libc::setsockopt(
            socket.as_fd().as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            std::ptr::from_ref(&value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    /// What the kernel reports for the option (it may round to its retransmission steps).
    fn defer_accept(socket: &TcpListener) -> libc::c_int {
        let mut value: libc::c_int = -1;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: both pointers point to live locals of the sizes given.
        let result = unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_DEFER_ACCEPT,
                std::ptr::from_mut(&mut value).cast(),
                &mut len,
            )
        };
        assert_eq!(result, 0, "{}", io::Error::last_os_error());
        value
    }

    #[test]
    fn the_option_is_set_rounded_up_and_cleared() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        assert_eq!(defer_accept(&listener), 0);
        set_defer_accept(&listener, Duration::from_millis(1)).unwrap();
        assert!(defer_accept(&listener) >= 1);
        set_defer_accept(&listener, Duration::ZERO).unwrap();
        assert_eq!(defer_accept(&listener), 0);
    }

    /// A connection that has sent its request is accepted at once, with the request readable.
    #[test]
    fn a_connection_with_data_is_accepted_with_it() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        set_defer_accept(&listener, Duration::from_secs(30)).unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client.write_all(b"GET / HTTP/1.1\r\n").unwrap();
        let (mut accepted, _) = listener.accept().unwrap();
        let mut buf = [0; 64];
        accepted.set_nonblocking(true).unwrap();
        let n = accepted.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"GET / HTTP/1.1\r\n");
    }
}
