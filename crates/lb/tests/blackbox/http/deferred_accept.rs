//! `--defer-accept` (TCP_DEFER_ACCEPT on every worker socket) and the read right after accept:
//! a new connection reaches lb with its request, which lb reads at once; one that sends nothing
//! waits in the kernel, not in lb.

use crate::{lb, served_by, WAIT};
use lb_testkit::{poll_until, Backend, Conn};

/// `lb_worker_connections_accepted_total` summed over workers.
fn accepted(lb: &lb_testkit::LbProcess) -> u64 {
    let text = lb.admin().call("GET", "/metrics", b"").text();
    text.lines()
        .filter(|l| l.starts_with("lb_worker_connections_accepted_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn a_silent_connection_is_not_accepted_until_it_sends() {
    let backend = Backend::start("d");
    // Long enough that the kernel never gives up waiting during the test.
    let lb = lb(
        1,
        &[("/", &[backend.addr()])],
        &["--defer-accept", "600000"],
    );
    let mut silent = Conn::open(lb.addr());
    let mut talker = Conn::open(lb.addr());
    assert_eq!(served_by(&talker.get("/first")), "d");
    assert_eq!(accepted(&lb), 1, "only the connection that sent a request");
    // Its first bytes get it accepted, and the rest of the head may come later.
    silent.send(b"GET /late HTTP/1.1\r\n").expect("send");
    poll_until(WAIT, "the silent connection accepted", || {
        match accepted(&lb) {
            2 => Ok(()),
            n => Err(n),
        }
    });
    silent.send(b"Host: x\r\n\r\n").expect("send");
    let r = silent.read_response(false).expect("response");
    assert_eq!(served_by(&r), "d");
    assert_eq!(backend.last_request().target, "/late");
}

#[test]
fn with_defer_accept_off_a_silent_connection_is_accepted() {
    let backend = Backend::start("d");
    let lb = lb(1, &[("/", &[backend.addr()])], &["--defer-accept", "0"]);
    let mut silent = Conn::open(lb.addr());
    poll_until(WAIT, "the silent connection accepted", || {
        match accepted(&lb) {
            1 => Ok(()),
            n => Err(n),
        }
    });
    assert_eq!(served_by(&silent.get("/x")), "d");
}

#[test]
fn pipelined_requests_in_the_first_read_are_all_answered() {
    let backend = Backend::start("d");
    let lb = lb(1, &[("/", &[backend.addr()])], &[]);
    let mut conn = Conn::open(lb.addr());
    conn.send(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    for _ in 0..2 {
        assert_eq!(
            served_by(&conn.read_response(false).expect("response")),
            "d"
        );
    }
    let seen: Vec<String> = backend.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(seen, ["/1", "/2"]);
}

/// After a request read at accept, the connection's next wait is an idle keep-alive wait: it
/// outlives the header timeout (which only a started head is held to).
#[test]
fn after_a_request_read_at_accept_the_idle_timeout_applies() {
    let backend = Backend::start("d");
    let lb = lb(
        1,
        &[("/", &[backend.addr()])],
        &["--header-timeout", "300", "--idle-timeout", "600000"],
    );
    let mut idle = Conn::open(lb.addr());
    assert_eq!(served_by(&idle.get("/first")), "d");
    // A head started later than `idle`'s wait gets its 408 once the header timeout passed, so
    // by then a header deadline on `idle` would have passed too.
    let mut slow = Conn::open(lb.addr());
    slow.send(b"GET /slow HTTP/1.1\r\n").expect("send");
    let r = slow.read_response(false).expect("408 from lb");
    assert_eq!(r.status, 408);
    assert_eq!(served_by(&idle.get("/second")), "d");
}
