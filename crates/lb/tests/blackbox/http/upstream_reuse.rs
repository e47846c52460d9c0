//! Upstream keep-alive (issue 2 item 5 and BENCHMARKING.md): lb keeps a per-worker pool of idle
//! upstream connections, so sequential requests reuse one connection instead of opening one per
//! request. A forwarded `Connection: close` is the usual way to break this, so it is tested too.

use crate::{lb, served_by};
use lb_testkit::{request, send_raw, Backend, Conn};

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
