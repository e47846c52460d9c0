//! Passing open file descriptors to another process over a unix socket (`SCM_RIGHTS`).
//!
//! This is how a zero-downtime upgrade hands its listening sockets to the next lb: the receiver
//! gets new descriptors for the *same* open sockets (same accept queues), so nothing queued is
//! lost when the sender closes its own. std has no stable API for ancillary data, hence libc;
//! with `sockopt` and `pipe`, this module holds lb's only `unsafe` outside the benchmarks, and every block
//! says why it is sound.
//!
//! One `sendmsg` carries at most `SCM_MAX_FD` (253 on Linux) descriptors, so [`send_fds`]
//! sends them in batches of up to [`BATCH`], one message each; every message's one payload
//! byte says whether more follow ([`MORE`]) or it is the last ([`LAST`]). A list that fits one
//! batch is one message, the same bytes as before batching existed. Received descriptors are
//! close-on-exec (`MSG_CMSG_CLOEXEC`) and owned (`OwnedFd`), so none leaks, also when a later
//! batch fails.

#![allow(unsafe_code)]

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

/// Most descriptors per message (the kernel's `SCM_MAX_FD` is 253).
const BATCH: usize = 250;
/// Most descriptors one transfer carries (a handover passes one socket per worker plus two).
pub const MAX_FDS: usize = 65_536;
/// The payload byte of a message after which more descriptors follow.
const MORE: u8 = b'M';
/// The payload byte of a transfer's last message.
const LAST: u8 = b'F';

/// Control buffer, aligned for `cmsghdr` (which holds `size_t` fields).
fn control_buffer(fds: usize) -> (Vec<u64>, usize) {
    let bytes = fds * size_of::<RawFd>();
    // SAFETY: CMSG_SPACE only computes a size from its argument.
    let space = unsafe { libc::CMSG_SPACE(bytes as libc::c_uint) } as usize;
    (vec![0u64; space.div_ceil(8)], space)
}

/// Sends `fds` over `stream`, in order, in as many messages as it takes.
pub fn send_fds(stream: &UnixStream, fds: &[RawFd]) -> io::Result<()> {
    if fds.is_empty() || fds.len() > MAX_FDS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("can pass 1 to {MAX_FDS} descriptors, not {}", fds.len()),
        ));
    }
    let mut batches = fds.chunks(BATCH).peekable();
    while let Some(batch) = batches.next() {
        let tag = if batches.peek().is_some() { MORE } else { LAST };
        send_batch(stream, batch, tag)?;
    }
    Ok(())
}

/// Receives the descriptors sent by one [`send_fds`], in order.
pub fn recv_fds(stream: &UnixStream) -> io::Result<Vec<OwnedFd>> {
    let mut fds = Vec::new();
    loop {
        let tag = recv_batch(stream, &mut fds)?;
        if fds.len() > MAX_FDS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("more than {MAX_FDS} descriptors"),
            ));
        }
        if tag == LAST {
            return Ok(fds);
        }
    }
}

/// Sends one message: `fds` (1 to [`BATCH`]) with the payload byte `tag`.
fn send_batch(stream: &UnixStream, fds: &[RawFd], tag: u8) -> io::Result<()> {
    let payload = [tag];
    let mut iov = libc::iovec {
        iov_base: payload.as_ptr() as *mut libc::c_void,
        iov_len: payload.len(),
    };
    let (mut control, space) = control_buffer(fds.len());
    let bytes = std::mem::size_of_val(fds);
    // SAFETY: an all-zero msghdr is valid (null pointers, zero lengths); the fields are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: msg_control points to `space` bytes, room for one header with `bytes` of data
    // (CMSG_SPACE above), so CMSG_FIRSTHDR is non-null and CMSG_DATA has `bytes` writable bytes.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null() {
            return Err(io::Error::other("no room for the control message"));
        }
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(bytes as libc::c_uint) as _;
        std::ptr::copy_nonoverlapping(fds.as_ptr().cast::<u8>(), libc::CMSG_DATA(cmsg), bytes);
    }
    loop {
        // SAFETY: msg and everything it points to (iov, payload, control) live across the call.
        let sent = unsafe { libc::sendmsg(stream.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        match sent {
            1 => return Ok(()),
            n if n < 0 => {
                let error = io::Error::last_os_error();
                if error.kind() != io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
            _ => return Err(io::ErrorKind::WriteZero.into()),
        }
    }
}

/// Receives one message of [`send_batch`], appends its descriptors to `fds` and returns its
/// payload byte.
fn recv_batch(stream: &UnixStream, fds: &mut Vec<OwnedFd>) -> io::Result<u8> {
    let mut payload = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: payload.as_mut_ptr().cast(),
        iov_len: payload.len(),
    };
    let (mut control, space) = control_buffer(BATCH);
    // SAFETY: as in send_batch.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    let received = loop {
        // SAFETY: msg points to live, writable buffers of the lengths it states.
        let n = unsafe { libc::recvmsg(stream.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n;
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    };
    let before = fds.len();
    // SAFETY: the kernel filled msg_control with msg_controllen bytes of well-formed control
    // messages; CMSG_FIRSTHDR/CMSG_NXTHDR walk them within that length. Each SCM_RIGHTS
    // descriptor is a new descriptor of this process that nothing else owns, so wrapping it in
    // OwnedFd (which closes it on drop) is sound; read_unaligned because CMSG_DATA need not be
    // aligned for c_int.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg);
                let len = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                for i in 0..len / size_of::<RawFd>() {
                    let fd = data
                        .add(i * size_of::<RawFd>())
                        .cast::<RawFd>()
                        .read_unaligned();
                    fds.push(OwnedFd::from_raw_fd(fd));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    if received == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(io::Error::other("descriptors were truncated"));
    }
    if !matches!(payload[0], MORE | LAST) || fds.len() == before {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "expected a message carrying descriptors",
        ));
    }
    Ok(payload[0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn a_passed_listener_is_the_same_socket() {
        let (a, b) = UnixStream::pair().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // Queued before the hand-over, accepted after it through the received descriptor.
        let mut client = TcpStream::connect(addr).unwrap();
        send_fds(&a, &[listener.as_raw_fd()]).unwrap();
        drop(listener);
        let mut fds = recv_fds(&b).unwrap();
        assert_eq!(fds.len(), 1);
        let received = TcpListener::from(fds.remove(0));
        assert_eq!(received.local_addr().unwrap(), addr);
        let (mut server, _) = received.accept().unwrap();
        client.write_all(b"hi").unwrap();
        let mut buf = [0u8; 2];
        server.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hi");
    }

    #[test]
    fn several_at_once_and_refusals() {
        let (a, b) = UnixStream::pair().unwrap();
        let listeners: Vec<TcpListener> = (0..5)
            .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let raw: Vec<RawFd> = listeners.iter().map(AsRawFd::as_raw_fd).collect();
        send_fds(&a, &raw).unwrap();
        let got: Vec<TcpListener> = recv_fds(&b)
            .unwrap()
            .into_iter()
            .map(TcpListener::from)
            .collect();
        let want: Vec<_> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
        let have: Vec<_> = got.iter().map(|l| l.local_addr().unwrap()).collect();
        assert_eq!(have, want, "order is kept");
        assert!(send_fds(&a, &[]).is_err());
        // A batch that announces more, then a plain byte, which is not a descriptor message:
        // an error (the two received descriptors are closed).
        send_batch(&a, &raw[..2], MORE).unwrap();
        (&a).write_all(b"x").unwrap();
        assert!(recv_fds(&b).is_err());
        drop(a);
        assert!(recv_fds(&b).is_err(), "EOF");
    }

    /// The process's soft limit on open descriptors.
    fn fd_limit() -> usize {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one rlimit into the struct it is given.
        let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
        assert_eq!(rc, 0, "getrlimit: {}", io::Error::last_os_error());
        usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX)
    }

    /// More descriptors than one message can carry (a box with hundreds of workers): they all
    /// arrive, in order, and each is the socket that was sent.
    #[test]
    fn more_descriptors_than_one_message_holds_arrive_in_order() {
        // Each socket is open twice (sent and received); leave room for the other tests of
        // this process.
        let n = 600.min(fd_limit().saturating_sub(256) / 2);
        assert!(
            n > BATCH,
            "`ulimit -n` {} is too low for this test",
            fd_limit()
        );
        let (a, b) = UnixStream::pair().unwrap();
        let sockets: Vec<std::net::UdpSocket> = (0..n)
            .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        let raw: Vec<RawFd> = sockets.iter().map(AsRawFd::as_raw_fd).collect();
        // The receiver reads while the sender writes: the socket buffer need not hold it all.
        let receiver = std::thread::spawn(move || recv_fds(&b));
        send_fds(&a, &raw).unwrap();
        let got = receiver.join().unwrap().unwrap();
        assert_eq!(got.len(), n);
        let have: Vec<_> = got
            .into_iter()
            .map(|fd| std::net::UdpSocket::from(fd).local_addr().unwrap())
            .collect();
        let want: Vec<_> = sockets.iter().map(|s| s.local_addr().unwrap()).collect();
        assert_eq!(have, want, "every socket, in order");
    }
}
