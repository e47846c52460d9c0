//! A kernel pipe for `splice(2)`: body bytes go socket -> pipe -> socket without a copy through
//! user space. Neither std nor socket2 has `splice` or `F_SETPIPE_SZ`, hence libc.
//!
//! Invariants: both ends are non-blocking and close-on-exec, so a splice never parks the worker
//! thread and no descriptor leaks into a child; [`Pipe::held`] counts the bytes in the pipe
//! exactly (what went in less what came out), so whoever reuses a pipe can tell a clean one from
//! one an error left bytes in. Nothing here waits for readiness: a call that would block returns
//! `WouldBlock`, and the caller (tokio's `try_io`) decides when to try again.

#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

/// A pipe used as the kernel-side buffer between two sockets.
#[derive(Debug)]
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    /// The pipe's size as the kernel reports it: what one fill may take at most.
    capacity: usize,
    /// Bytes spliced in and not yet spliced out.
    held: usize,
}

impl Pipe {
    /// A new pipe, asked to hold `size` bytes. The kernel may refuse the size (above
    /// `/proc/sys/fs/pipe-max-size`, or the user's pipe pages used up): the pipe then keeps the
    /// size it got, which still works, only in smaller steps.
    pub fn new(size: usize) -> io::Result<Pipe> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` is a live array of the two `c_int`s pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both descriptors are open and nothing else owns them.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let wanted = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
        // SAFETY: the descriptor is open (owned above); F_SETPIPE_SZ takes an int by value.
        let set = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, wanted) };
        let got = if set > 0 {
            set
        } else {
            // SAFETY: as above; F_GETPIPE_SZ takes no argument.
            unsafe { libc::fcntl(write.as_raw_fd(), libc::F_GETPIPE_SZ) }
        };
        let capacity = usize::try_from(got).map_err(|_| io::Error::last_os_error())?;
        Ok(Pipe {
            read,
            write,
            capacity,
            held: 0,
        })
    }

    /// The most bytes the pipe holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes in the pipe now: 0 means it can be reused.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Moves up to `max` bytes (and at most what the pipe has room for) from the socket `src`
    /// into the pipe. `Ok(0)` is the end of `src`'s stream (or no room, `max` 0).
    pub fn fill_from(&mut self, src: &impl AsFd, max: usize) -> io::Result<usize> {
        let len = max.min(self.capacity - self.held);
        if len == 0 {
            return Ok(0);
        }
        let n = splice(src.as_fd().as_raw_fd(), self.write.as_raw_fd(), len)?;
        self.held += n;
        Ok(n)
    }

    /// Moves what the pipe holds (as much as `dst` takes now) into the socket `dst`.
    pub fn drain_into(&mut self, dst: &impl AsFd) -> io::Result<usize> {
        if self.held == 0 {
            return Ok(0);
        }
        let n = splice(self.read.as_raw_fd(), dst.as_fd().as_raw_fd(), self.held)?;
        self.held -= n.min(self.held);
        Ok(n)
    }
}

/// One non-blocking `splice` of up to `len` bytes from `from` to `to`, one of them a pipe.
fn splice(from: libc::c_int, to: libc::c_int, len: usize) -> io::Result<usize> {
    let flags = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;
    // SAFETY: both descriptors are open for the call (borrowed or owned by the caller); null
    // offsets are what splice requires for pipes and sockets, so no memory is passed at all.
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            flags,
        )
    };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (b, _) = listener.accept().unwrap();
        (a, b)
    }

    #[test]
    fn the_pipe_gets_the_size_asked_for() {
        let pipe = Pipe::new(256 * 1024).unwrap();
        assert!(pipe.capacity() >= 64 * 1024, "{}", pipe.capacity());
        assert_eq!(pipe.held(), 0);
    }

    /// Bytes written to one socket come out of another, in order, through the pipe; an empty
    /// socket says "would block" and a closed one says 0.
    #[test]
    fn bytes_go_from_socket_to_socket_and_the_count_is_exact() {
        let (mut sender, src) = pair();
        let (dst, mut receiver) = pair();
        src.set_nonblocking(true).unwrap();
        let mut pipe = Pipe::new(64 * 1024).unwrap();
        let err = pipe.fill_from(&src, 100).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        sender.write_all(b"hello, pipe").unwrap();
        let mut moved = 0;
        while moved < 5 {
            match pipe.fill_from(&src, 5 - moved) {
                Ok(n) => moved += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(pipe.held(), 5);
        assert_eq!(pipe.drain_into(&dst).unwrap(), 5);
        assert_eq!(pipe.held(), 0);
        let mut got = [0; 5];
        receiver.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello");
        drop(sender);
        loop {
            match pipe.fill_from(&src, 100) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(pipe.held(), b", pipe".len());
    }
}
