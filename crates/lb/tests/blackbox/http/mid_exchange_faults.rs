//! Issue 3, faults mid-exchange: a client that leaves mid-body aborts the upstream request and
//! its connection is not reused; an upstream that dies mid-body ends the client's response
//! without a fake ending; an invalid upstream response is a 502 whose connection is dropped.

use crate::{assert_lb_error, lb, WAIT};
use lb_testkit::{split_response, wait_until, Conn, Scripted};
use std::time::Duration;

/// An upstream that serves each request on a connection with `200 ok`, reporting
/// `"<conn> <target> <body bytes>"`, or `"<conn> eof after <n> of <len>"` when the body ends early.
fn reporting_upstream() -> Scripted {
    Scripted::start(|p| loop {
        let Some(head) = p.read_head()? else {
            p.event(format!("{} closed", p.id));
            return Ok(());
        };
        let len: usize = head
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        match p.read_exact(len) {
            Ok(body) => {
                p.event(format!("{} {} {}", p.id, head.target(), body.len()));
                p.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")?;
            }
            Err(_) => {
                let (rest, _) = p.read_until_close(Duration::from_secs(1));
                p.event(format!("{} eof after {} of {len}", p.id, rest.len()));
                return Ok(());
            }
        }
    })
}

#[test]
fn client_disconnect_mid_body_aborts_the_upstream_request() {
    let up = reporting_upstream();
    let lb = lb(1, &[("/", &[up.addr()])], &[]);
    {
        let mut c = Conn::open(lb.addr());
        c.send(b"POST /one HTTP/1.1\r\nHost: lb.test\r\nContent-Length: 1000\r\n\r\n")
            .expect("send head");
        c.send(&[b'x'; 100]).expect("part of the body");
        // Wait until lb has the upstream connection, then leave.
        wait_until(WAIT, "lb connected to the upstream", || {
            up.connections() > 0
        });
    }
    let event = up.next_event(WAIT).expect("the upstream request ends");
    assert!(
        event.starts_with("0 eof after ") && event.ends_with(" of 1000"),
        "the upstream must see its connection closed mid-body, got {event:?}"
    );
    // The next request goes over a new upstream connection.
    let mut c = Conn::open(lb.addr());
    let r = c.get("/two");
    assert_eq!(r.status, 200);
    up.expect_event("1 /two 0");
}

/// Sends one GET through lb to `up`, which cuts its answer short (event `cut`); returns the head
/// and the body the client received until lb closed, and whether it closed.
fn get_cut_short(up: &Scripted) -> (String, Vec<u8>, bool) {
    let lb = lb(1, &[("/", &[up.addr()])], &[]);
    let mut c = Conn::open(lb.addr());
    c.send(b"GET / HTTP/1.1\r\nHost: lb.test\r\n\r\n")
        .expect("send");
    up.expect_event("cut");
    let (raw, closed) = c.read_until_close(WAIT);
    let (head, body) = split_response(&raw);
    (head, body, closed)
}

#[test]
fn upstream_reset_mid_content_length_body() {
    let up = Scripted::start(|p| {
        p.read_head()?.expect("a request head");
        p.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")?;
        p.send(&[b'x'; 40])?;
        p.event("cut");
        Ok(()) // dropping the stream closes it
    });
    let (head, body, closed) = get_cut_short(&up);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("\r\nContent-Length: 100\r\n"), "{head}");
    assert!(closed, "lb must close the client connection");
    assert_eq!(body, vec![b'x'; 40], "no padding, nothing after the cut");
}

#[test]
fn upstream_reset_mid_chunked_body() {
    let up = Scripted::start(|p| {
        p.read_head()?.expect("a request head");
        p.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3\r\nwo")?;
        p.event("cut");
        Ok(())
    });
    let (head, body, closed) = get_cut_short(&up);
    assert!(
        head.contains("\r\nTransfer-Encoding: chunked\r\n"),
        "{head}"
    );
    assert!(closed, "lb must close the client connection");
    assert!(
        body.starts_with(b"5\r\nhello\r\n") && !body.ends_with(b"0\r\n\r\n"),
        "the client must not see a terminating chunk: {:?}",
        String::from_utf8_lossy(&body)
    );
}

/// An invalid response head is a 502, and lb drops that upstream connection: the next request
/// opens a new one (the upstream sees the first one closed).
fn invalid_response_is_502_and_not_reused(bad: &'static [u8]) {
    let up = Scripted::start(move |p| {
        let head = p.read_head()?.expect("a request head");
        p.event(format!("{} {}", p.id, head.target()));
        if p.id == 0 {
            p.send(bad)?;
            let (_, closed) = p.read_until_close(WAIT);
            p.event(format!("0 closed={closed}"));
            return Ok(());
        }
        p.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    });
    let lb = lb(1, &[("/", &[up.addr()])], &[]);
    let mut c = Conn::open(lb.addr());
    let r = c.get("/bad");
    assert_lb_error(&r, 502);
    up.expect_event("0 /bad");
    up.expect_event("0 closed=true");
    let mut c = Conn::open(lb.addr());
    let r = c.get("/good");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
    up.expect_event("1 /good");
}

#[test]
fn upstream_bad_status_line_502() {
    invalid_response_is_502_and_not_reused(b"HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n");
}

#[test]
fn upstream_cl_and_te_502() {
    invalid_response_is_502_and_not_reused(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    );
}

#[test]
fn upstream_double_content_length_502() {
    invalid_response_is_502_and_not_reused(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nokk",
    );
}

#[test]
fn upstream_bare_lf_502() {
    invalid_response_is_502_and_not_reused(b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok");
}

#[test]
fn upstream_obs_fold_502() {
    invalid_response_is_502_and_not_reused(
        b"HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 2\r\n\r\nok",
    );
}

#[test]
fn upstream_te_not_chunked_502() {
    invalid_response_is_502_and_not_reused(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    );
}

#[test]
fn upstream_101_without_upgrade_502() {
    invalid_response_is_502_and_not_reused(b"HTTP/1.1 101 Switching Protocols\r\n\r\n");
}
