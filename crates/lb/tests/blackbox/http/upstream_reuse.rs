//! Upstream keep-alive (issue 2 item 5 and BENCHMARKING.md): lb keeps a per-worker pool of idle
//! upstream connections, so sequential requests reuse one connection instead of opening one per
//! request. A forwarded `Connection: close` is the usual way to break this, so it is tested too.
//! Under concurrency the pool keeps what the load gave back (issue 16): many busy clients make the
//! origin accept no more connections than there are clients.

use crate::{lb, served_by};
use lb_testkit::{request, send_raw, Backend, Conn, Reply};
use std::sync::Barrier;
use std::time::Duration;

/// At most this many upstream connections for a strictly sequential load.
const HANDFUL: u64 = 4;

#[test]
fn thousand_keep_alive_requests_use_a_handful_of_upstream_connections() {
    let b = Backend::start("pool");
    let lb = lb(1, &[("/", &[b.addr()])], &[]);
    let mut c = Conn::open(lb.addr());
    for i in 0..1000 {
        let r = c.get(&format!("/k/{i}"));
        assert_eq!(served_by(&r), "pool", "request {i}");
    }
    assert_eq!(b.request_count(), 1000);
    let conns = b.connections();
    assert!(
        conns <= HANDFUL,
        "1000 sequential requests opened {conns} upstream connections"
    );
}

#[test]
fn closing_clients_do_not_close_upstream_connections() {
    let b = Backend::start("pool-close");
    let lb = lb(1, &[("/", &[b.addr()])], &[]);
    for i in 0..300 {
        let raw = request("GET", &format!("/c/{i}"), &[("Connection", "close")], b"");
        assert_eq!(
            served_by(&send_raw(lb.addr(), &raw)),
            "pool-close",
            "request {i}"
        );
    }
    assert_eq!(b.request_count(), 300);
    let conns = b.connections();
    assert!(
        conns <= HANDFUL,
        "300 sequential closing clients opened {conns} upstream connections"
    );
    let forwarded_close = b
        .requests()
        .iter()
        .filter(|r| r.headers.tokens("connection").iter().any(|t| t == "close"))
        .count();
    assert_eq!(
        forwarded_close, 0,
        "lb forwarded the client's Connection: close upstream"
    );
}

/// Concurrent keep-alive clients of the busy-connection test (issue 16, target 1).
const BUSY_CLIENTS: usize = 200;
/// Rounds in which each of them sends one request.
const BUSY_ROUNDS: usize = 30;
/// How long the busy test's origin takes per answer: long enough that every client's request of
/// a round is in flight at once, as under a load that keeps lb busy.
const BUSY_ORIGIN_PAUSE: Duration = Duration::from_millis(20);

#[test]
fn busy_keep_alive_clients_open_no_more_upstream_connections_than_clients() {
    let b = Backend::start_with("busy", Reply::Slow(BUSY_ORIGIN_PAUSE));
    let lb = lb(1, &[("/", &[b.addr()])], &[]);
    let round = Barrier::new(BUSY_CLIENTS);
    std::thread::scope(|s| {
        for client in 0..BUSY_CLIENTS {
            let (round, addr) = (&round, lb.addr());
            s.spawn(move || {
                let mut c = Conn::open(addr);
                for i in 0..BUSY_ROUNDS {
                    // Everyone starts a round together: the requests overlap, then all
                    // connections go idle at once, which is when a small pool closed most.
                    round.wait();
                    let r = c.get(&format!("/busy/{client}/{i}"));
                    assert_eq!(served_by(&r), "busy", "client {client} request {i}");
                }
            });
        }
    });
    assert_eq!(b.request_count(), BUSY_CLIENTS * BUSY_ROUNDS);
    let conns = b.connections();
    assert!(
        conns <= BUSY_CLIENTS as u64,
        "{BUSY_CLIENTS} busy keep-alive clients made the backend accept {conns} connections"
    );
}
