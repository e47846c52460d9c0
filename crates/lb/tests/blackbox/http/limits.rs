//! Issue 3, "Limits and timeouts": the header deadline against a slowloris client, `--max-body`
//! for both framings, and `--max-connections` (per worker; beyond it the listen backlog holds
//! new connections until a slot frees).

use crate::{assert_lb_error, lb, served_by, WAIT};
use lb_testkit::{request, split_response, Backend, Conn, Scripted};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `--header-timeout 1000` is a deadline for the whole head, not per read: a client that
/// trickles a header line every 300 ms gets 408 and a close at about 1 s, and another client is
/// served meanwhile by the same (single) worker.
#[test]
fn slowloris_gets_408_at_the_header_deadline() {
    let b = Backend::start("busy");
    let lb = lb(1, &[("/", &[b.addr()])], &["--header-timeout", "1000"]);
    let mut slow = Conn::open(lb.addr());
    let writer = slow.stream().try_clone().expect("clone");
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let trickle = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut w = writer;
            let mut lines = 0;
            let mut send = |bytes: &[u8]| std::io::Write::write_all(&mut w, bytes).is_ok();
            if !send(b"GET / HTTP/1.1\r\nHost: lb.test\r\n") {
                return lines;
            }
            // The trickle is the behaviour under test: one line every 300 ms, for up to 10 s.
            while !stop.load(Ordering::SeqCst) && lines < 33 {
                std::thread::sleep(Duration::from_millis(300));
                if !send(format!("X-Trickle-{lines}: v\r\n").as_bytes()) {
                    break;
                }
                lines += 1;
            }
            lines
        })
    };
    // Meanwhile, another client is served at once, several times.
    let mut other = Conn::open(lb.addr());
    for _ in 0..5 {
        assert_eq!(served_by(&other.get("/other")), "busy");
    }
    let (raw, closed) = slow.read_until_close(Duration::from_secs(15));
    let took = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let _ = trickle.join();
    let (head, _) = split_response(&raw);
    assert!(
        head.starts_with("HTTP/1.1 408 "),
        "expected 408, got {head:?}"
    );
    assert!(closed, "lb must close after the 408");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "408 after {took:?}, expected about 1 s"
    );
    assert_eq!(
        b.requests().len(),
        5,
        "the slow request must not reach the backend"
    );
}

/// `--max-body 100`: a Content-Length over it is refused before anything goes upstream.
#[test]
fn max_body_content_length_413() {
    let b = Backend::start("small");
    let lb = lb(1, &[("/", &[b.addr()])], &["--max-body", "100"]);
    let mut c = Conn::open(lb.addr());
    c.send(b"POST / HTTP/1.1\r\nHost: lb.test\r\nContent-Length: 101\r\n\r\n")
        .expect("send head");
    let r = c
        .read_response(false)
        .expect("a 413 without waiting for the body");
    assert_lb_error(&r, 413);
    assert!(c.peer_closed_within(WAIT));
    assert_eq!((b.request_count(), b.connections()), (0, 0));

    // At the limit it passes.
    let body = vec![b'x'; 100];
    let r = Conn::open(lb.addr()).request(&request("POST", "/", &[], &body));
    assert_eq!(served_by(&r), "small");
    assert_eq!(b.last_request().body_len, 100);
}

/// A chunked body that passes `--max-body` mid-stream: lb stops, answers 413 (nothing of a
/// response was sent yet), closes, and the upstream's half-received request is aborted.
#[test]
fn max_body_chunked_413_mid_stream() {
    let up = Scripted::start(|p| {
        let head = p.read_head()?.expect("a request head");
        p.event(format!("head {}", head.target()));
        let (rest, closed) = p.read_until_close(Duration::from_secs(30));
        p.event(format!("closed={closed} after {} bytes", rest.len()));
        Ok(())
    });
    let lb = lb(1, &[("/", &[up.addr()])], &["--max-body", "100"]);
    let mut c = Conn::open(lb.addr());
    c.send(b"POST /big HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding: chunked\r\n\r\n3c\r\n")
        .expect("send head");
    c.send(&[b'a'; 60]).expect("first chunk");
    c.send(b"\r\n").expect("crlf");
    up.expect_event("head /big");
    let second = [b"3c\r\n".as_slice(), &[b'b'; 60], b"\r\n0\r\n\r\n"].concat();
    let _ = c.send(&second);
    let r = c.read_response(false).expect("a 413");
    assert_lb_error(&r, 413);
    assert!(c.peer_closed_within(WAIT));
    let event = up
        .next_event(WAIT)
        .expect("the upstream connection was closed");
    assert!(event.starts_with("closed=true after "), "{event}");
    let forwarded: usize = event
        .rsplit(' ')
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX);
    assert!(
        forwarded < 4 + 60 + 2 + 4 + 60,
        "lb forwarded {forwarded} body bytes, past the limit"
    );
}

/// `--max-connections 2`, one worker: with two connections open, a third TCP connect succeeds
/// (the backlog holds it) but is not served until one of the two closes.
#[test]
fn max_connections_backlog_holds_the_rest() {
    let b = Backend::start("limited");
    let lb = lb(1, &[("/", &[b.addr()])], &["--max-connections", "2"]);
    let mut first = Conn::open(lb.addr());
    let mut second = Conn::open(lb.addr());
    assert_eq!(served_by(&first.get("/1")), "limited");
    assert_eq!(served_by(&second.get("/2")), "limited");

    let mut third = Conn::open(lb.addr());
    third
        .send(&request("GET", "/3", &[], b""))
        .expect("the backlog accepts the bytes");
    // Showing that something does not happen takes a wait; one second is plenty on loopback.
    assert!(
        third.silent_for(Duration::from_secs(1)),
        "a connection over the limit was served"
    );
    assert_eq!(b.request_count(), 2);

    drop(first);
    let head = third
        .read_head()
        .expect("read")
        .expect("served once a slot is free");
    assert!(head.line.starts_with("HTTP/1.1 200 "), "{}", head.text());
    assert_eq!(head.get("x-path"), Some("/3"));
    // The connection still open keeps working.
    assert_eq!(served_by(&second.get("/2b")), "limited");
}
