//! The floor of `scripts/bench.sh` (`null_proxy`) must relay what a proxy relays, or its CPU per
//! request measures less than a proxy's work: every request reaches an upstream byte for byte,
//! every answer reaches the client, a client connection keeps its upstream connection, and new
//! client connections take the upstreams in turn.

use std::path::Path;
use std::time::Duration;

use lb_testkit::{Backend, Conn, Proc};

const READY: Duration = Duration::from_secs(30);

#[test]
fn relays_requests_and_answers_unchanged_and_spreads_connections_in_turn() {
    let a = Backend::start("a");
    let b = Backend::start("b");
    let proxy = Proc::spawn(
        Path::new(env!("CARGO_BIN_EXE_null_proxy")),
        &[
            "--listen".to_string(),
            "127.0.0.1:0".to_string(),
            "--upstream".to_string(),
            a.addr().to_string(),
            "--upstream".to_string(),
            b.addr().to_string(),
        ],
    );
    let addr = proxy
        .wait_for_line(READY, |line| {
            line.strip_prefix("null_proxy: listening on ")?.parse().ok()
        })
        .unwrap_or_else(|e| panic!("null_proxy did not start: {e}\n{}", proxy.stderr()));

    let raw = b"GET /x?y=1 HTTP/1.1\r\nHost: floor\r\nX-Test: 1\r\n\r\n";
    let mut first = Conn::open(addr);
    let mut second = Conn::open(addr);
    let answers = [first.request(raw), first.request(raw), second.request(raw)];
    assert!(answers.iter().all(|r| r.status == 200), "{answers:?}");
    assert_eq!(
        answers[0].body, answers[1].body,
        "one client connection, one upstream"
    );
    assert_ne!(
        answers[0].body, answers[2].body,
        "the next connection goes to the next upstream"
    );

    assert!(a.wait_for_requests(2, READY) && b.wait_for_requests(1, READY));
    let recorded: Vec<_> = a.requests().into_iter().chain(b.requests()).collect();
    assert_eq!(recorded.len(), 3);
    for request in &recorded {
        assert_eq!(request.head, raw, "the head reaches the upstream unchanged");
    }
    let on_a = a.requests();
    assert_eq!(
        (on_a[0].conn_id, on_a[1].conn_id),
        (0, 0),
        "both on one upstream connection"
    );
}
