//! `null_proxy`: the floor under any keep-alive HTTP/1.1 proxy on this machine.
//!
//! Issue 4 asks lb for a CPU time per request of at most 0.7× HAProxy's. On loopback most of a
//! proxy's CPU time is the kernel's (the sender's `sendto` runs the receiver's TCP input), and
//! that part does not depend on the proxy. This program measures it: it does the system calls a
//! proxy must make for a keep-alive request (read the request, write it upstream, read the
//! answer, write it back) and nothing else. Each client connection gets its own upstream
//! connection (round robin over the upstreams at connect time), bytes are copied as they come,
//! nothing is parsed or rewritten, there are no timers, no pool, no metrics. One thread per
//! `--threads`, each with its own `SO_REUSEPORT` listener and level-triggered epoll loop, as lb's
//! workers. `scripts/floor.sh` runs it beside lb and HAProxy.
//!
//! It is a measuring instrument, not a proxy: a write that would block waits in `poll(2)`, and
//! any error on a connection closes that pair.
//!
//! Usage: `null_proxy --listen ADDR --upstream ADDR [--upstream ADDR ...] [--threads N]`

// epoll is used directly so that nothing but the proxy's own system calls is measured; every
// `unsafe` block is one libc call and says why it is sound.
#![allow(unsafe_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::process::ExitCode;
use std::thread;

use socket2::{Domain, Socket, Type};

/// The epoll token of the listener; a connection's token is `slot * 2 + side`.
const LISTENER: u64 = u64::MAX;
/// Events taken per `epoll_wait`, as many as a busy lb worker sees per loop.
const EVENTS: usize = 256;

struct Args {
    listen: SocketAddr,
    upstreams: Vec<SocketAddr>,
    threads: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut listen = None;
    let mut upstreams = Vec::new();
    let mut threads = 1;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--listen" => listen = Some(value.parse().map_err(|e| bad(&e))?),
            "--upstream" => upstreams.push(value.parse().map_err(|e| bad(&e))?),
            "--threads" => threads = value.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    let listen = listen.ok_or("--listen is required")?;
    if upstreams.is_empty() || threads == 0 {
        return Err("at least one --upstream and one thread are required".into());
    }
    Ok(Args {
        listen,
        upstreams,
        threads,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("null_proxy: {e}\nusage: null_proxy --listen ADDR --upstream ADDR [--upstream ADDR ...] [--threads N]");
            return ExitCode::from(2);
        }
    };
    let mut workers = Vec::new();
    // Port 0 is resolved by the first listener; the other threads share its port.
    let mut listen = args.listen;
    for index in 0..args.threads {
        let listener = match bind_reuseport(listen).and_then(|l| Ok((l.local_addr()?, l))) {
            Ok((addr, listener)) => {
                listen = addr;
                listener
            }
            Err(e) => {
                eprintln!("null_proxy: cannot listen on {listen}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let upstreams = args.upstreams.clone();
        workers.push(thread::spawn(move || {
            if let Err(e) = Worker::new(listener, upstreams, index).and_then(Worker::run) {
                eprintln!("null_proxy: worker {index}: {e}");
            }
        }));
    }
    // The ready line, on stdout: scripts and tests wait for it.
    println!("null_proxy: listening on {listen}");
    for worker in workers {
        // A worker only returns on an epoll failure, already reported.
        let _ = worker.join();
    }
    ExitCode::FAILURE
}

fn bind_reuseport(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// A client connection and the upstream connection that serves it: side 0 and side 1.
struct Pair([TcpStream; 2]);

struct Worker {
    epoll: RawFd,
    listener: TcpListener,
    upstreams: Vec<SocketAddr>,
    next_upstream: usize,
    pairs: Vec<Option<Pair>>,
    free: Vec<usize>,
    buf: Vec<u8>,
}

impl Worker {
    fn new(listener: TcpListener, upstreams: Vec<SocketAddr>, index: usize) -> io::Result<Worker> {
        // SAFETY: epoll_create1 takes no pointers; the result is checked.
        let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epoll < 0 {
            return Err(io::Error::last_os_error());
        }
        let worker = Worker {
            epoll,
            listener,
            // Threads start at different upstreams, as lb's shared counter would spread them.
            next_upstream: index,
            upstreams,
            pairs: Vec::new(),
            free: Vec::new(),
            buf: vec![0; 64 * 1024],
        };
        worker.watch(worker.listener.as_raw_fd(), LISTENER)?;
        Ok(worker)
    }

    fn watch(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: `event` outlives the call; the kernel copies it.
        if unsafe { libc::epoll_ctl(self.epoll, libc::EPOLL_CTL_ADD, fd, &mut event) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn run(mut self) -> io::Result<()> {
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS];
        loop {
            // SAFETY: `events` holds EVENTS initialized entries the kernel may overwrite.
            let n = unsafe { libc::epoll_wait(self.epoll, events.as_mut_ptr(), EVENTS as i32, -1) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            for event in &events[..n as usize] {
                match event.u64 {
                    LISTENER => self.accept_all(),
                    token => self.relay(token),
                }
            }
        }
    }

    fn accept_all(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((client, _)) => {
                    if let Err(e) = self.open(client) {
                        eprintln!("null_proxy: dropping a connection: {e}");
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    eprintln!("null_proxy: accept: {e}");
                    return;
                }
            }
        }
    }

    fn open(&mut self, client: TcpStream) -> io::Result<()> {
        let upstream = self.upstreams[self.next_upstream % self.upstreams.len()];
        self.next_upstream = self.next_upstream.wrapping_add(1);
        let server = TcpStream::connect(upstream)?;
        for stream in [&client, &server] {
            stream.set_nodelay(true)?;
            stream.set_nonblocking(true)?;
        }
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.pairs.push(None);
                self.pairs.len() - 1
            }
        };
        let (client_fd, server_fd) = (client.as_raw_fd(), server.as_raw_fd());
        self.pairs[slot] = Some(Pair([client, server]));
        let token = slot as u64 * 2;
        if let Err(e) = self
            .watch(client_fd, token)
            .and_then(|()| self.watch(server_fd, token + 1))
        {
            self.close(slot);
            return Err(e);
        }
        Ok(())
    }

    /// Copies what side `token % 2` of the pair has to the other side.
    fn relay(&mut self, token: u64) {
        let slot = (token / 2) as usize;
        let from = (token % 2) as usize;
        let Some(Some(pair)) = self.pairs.get(slot) else {
            // Closed earlier in this batch of events.
            return;
        };
        let done = match (&pair.0[from]).read(&mut self.buf) {
            Ok(0) => true,
            Ok(n) => write_all(&pair.0[1 - from], &self.buf[..n]).is_err(),
            // A slot reused within this batch: the event was for the pair it held before.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(_) => true,
        };
        if done {
            self.close(slot);
        }
    }

    /// Closing both sockets also takes them out of the epoll set.
    fn close(&mut self, slot: usize) {
        if self.pairs[slot].take().is_some() {
            self.free.push(slot);
        }
    }
}

/// Writes all of `bytes`; a write that would block waits for the socket in `poll(2)`.
fn write_all(mut stream: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match stream.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let mut fd = libc::pollfd {
                    fd: stream.as_raw_fd(),
                    events: libc::POLLOUT,
                    revents: 0,
                };
                // SAFETY: one valid pollfd; the result is only a wake-up, the write says more.
                unsafe { libc::poll(&mut fd, 1, -1) };
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
