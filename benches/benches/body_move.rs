//! Criterion benchmark of the two ways lb moves a body between two loopback TCP connections:
//! `splice(2)` through a kernel pipe (`lb_socket::Pipe`, lb's splice path, 256 KiB pipe) and
//! read + write through a 16 KiB user-space buffer (lb's copy path), for bodies of 16 KiB to
//! 10 MiB. Where the two lines cross is what `body_path::SPLICE_MIN` should be on this machine.
//!
//! A sender thread writes each body into the first connection, a receiver thread reads it whole
//! from the second; the measuring thread moves it across, so one iteration is one body relayed
//! end to end. Blocking sockets: the figure is the kernel's work per body, without a reactor.
//!
//! `cargo bench -p lb-benches --bench body_move`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lb_socket::Pipe;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread;

/// lb's pipe size (`splice::PIPE_SIZE`) and copy buffer (`buffers::BUF_SIZE`).
const PIPE_SIZE: usize = 256 * 1024;
const BUF_SIZE: usize = 16 * 1024;

const SIZES: [usize; 5] = [16 << 10, 64 << 10, 256 << 10, 1 << 20, 10 << 20];

fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let a = TcpStream::connect(listener.local_addr().expect("address")).expect("connect");
    let (b, _) = listener.accept().expect("accept");
    a.set_nodelay(true).expect("nodelay");
    b.set_nodelay(true).expect("nodelay");
    (a, b)
}

/// Two connections with a sender at the far end of the first and a receiver at the far end of
/// the second; the bench relays between `src` and `dst`.
struct Rig {
    src: TcpStream,
    dst: TcpStream,
    to_sender: Sender<usize>,
    to_receiver: Sender<usize>,
    received: Receiver<()>,
}

impl Rig {
    fn new() -> Rig {
        let (mut sender, src) = pair();
        let (dst, mut receiver) = pair();
        let (to_sender, bodies) = channel::<usize>();
        let (to_receiver, lengths) = channel::<usize>();
        let (done, received) = channel();
        thread::spawn(move || {
            let block = vec![0x5a_u8; 4 * BUF_SIZE];
            for mut left in bodies {
                while left > 0 {
                    let n = left.min(block.len());
                    sender.write_all(&block[..n]).expect("send");
                    left -= n;
                }
            }
        });
        thread::spawn(move || {
            let mut buf = vec![0; 1 << 20];
            for mut left in lengths {
                while left > 0 {
                    let n = receiver
                        .read(&mut buf[..left.min(1 << 20)])
                        .expect("receive");
                    assert!(n > 0, "the relay closed early");
                    left -= n;
                }
                done.send(()).expect("done");
            }
        });
        Rig {
            src,
            dst,
            to_sender,
            to_receiver,
            received,
        }
    }

    /// One body of `len` bytes, relayed by `relay`.
    fn body(&mut self, len: usize, relay: impl FnOnce(&mut TcpStream, &mut TcpStream, usize)) {
        self.to_receiver.send(len).expect("receiver");
        self.to_sender.send(len).expect("sender");
        relay(&mut self.src, &mut self.dst, len);
        self.received.recv().expect("received");
    }
}

fn splice_body(pipe: &mut Pipe, src: &TcpStream, dst: &TcpStream, mut left: usize) {
    while left > 0 {
        match pipe.fill_from(src, left) {
            Ok(0) => panic!("the sender closed"),
            Ok(n) => left -= n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => panic!("fill: {e}"),
        }
        while pipe.held() > 0 {
            match pipe.drain_into(dst) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("drain: {e}"),
            }
        }
    }
}

fn copy_body(buf: &mut [u8], src: &mut TcpStream, dst: &mut TcpStream, mut left: usize) {
    while left > 0 {
        let n = src.read(&mut buf[..left.min(BUF_SIZE)]).expect("read");
        assert!(n > 0, "the sender closed");
        dst.write_all(&buf[..n]).expect("write");
        left -= n;
    }
}

fn body_move(c: &mut Criterion) {
    let mut rig = Rig::new();
    let mut pipe = Pipe::new(PIPE_SIZE).expect("pipe");
    let mut buf = vec![0; BUF_SIZE];
    let mut group = c.benchmark_group("body_move");
    group.sample_size(20);
    for len in SIZES {
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::new("splice", len), &len, |b, &len| {
            b.iter(|| rig.body(len, |src, dst, len| splice_body(&mut pipe, src, dst, len)));
        });
        group.bench_with_input(BenchmarkId::new("copy", len), &len, |b, &len| {
            b.iter(|| rig.body(len, |src, dst, len| copy_body(&mut buf, src, dst, len)));
        });
    }
    group.finish();
}

criterion_group!(benches, body_move);
criterion_main!(benches);
