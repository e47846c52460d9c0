//! Exact round robin across workers (SPEC "Routing"; issue 2 "Exact round robin").
//!
//! The k-th request routed to a prefix, counted over the whole process, goes to target `k mod n`.
//! A per-worker cursor (what multi-process servers do) drifts as soon as the kernel spreads
//! connections unevenly over workers; these tests make it spread them and check exact counts.

use crate::{addrs, backends, lb, served_by};
use lb_testkit::{request, Backend, Conn, LbProcess};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How a client thread uses its connections.
#[derive(Clone, Copy, Debug)]
enum Style {
    /// One keep-alive connection for all its requests.
    KeepAlive,
    /// A fresh connection with `Connection: close` for every request.
    Close,
    /// Keep-alive, but every 7th request says `Connection: close` and the client reconnects.
    Mixed,
}

/// Sends requests until `tickets` reaches `total`; returns how many each backend served.
fn client(
    addr: SocketAddr,
    style: Style,
    thread: usize,
    tickets: &AtomicUsize,
    total: usize,
) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    let mut conn: Option<Conn> = None;
    let mut sent_on_conn = 0;
    loop {
        let ticket = tickets.fetch_add(1, Ordering::SeqCst);
        if ticket >= total {
            return seen;
        }
        let close = match style {
            Style::KeepAlive => false,
            Style::Close => true,
            Style::Mixed => sent_on_conn % 7 == 6,
        };
        let c = conn.get_or_insert_with(|| Conn::open(addr));
        let target = format!("/rr/{thread}/{ticket}");
        let headers: &[(&str, &str)] = if close {
            &[("Connection", "close")]
        } else {
            &[]
        };
        let r = c.request(&request("GET", &target, headers, b""));
        *seen.entry(served_by(&r)).or_insert(0) += 1;
        sent_on_conn += 1;
        if close {
            conn = None;
            sent_on_conn = 0;
        }
    }
}

/// 3 targets, `threads` concurrent clients of every style, 3 x K requests: each target serves
/// exactly K, counted both by the clients (X-Backend) and by the backends themselves.
fn exact_counts(workers: usize, k: usize, threads: usize) {
    let bs = backends(&["rr-a", "rr-b", "rr-c"]);
    let lb = lb(workers, &[("/", &addrs(&bs))], &[]);
    assert_eq!(lb.workers(), workers, "ready line: {}", lb.ready_line());
    let total = 3 * k;
    let tickets = AtomicUsize::new(0);
    let styles = [Style::KeepAlive, Style::Close, Style::Mixed];
    let per_thread: Vec<BTreeMap<String, usize>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let tickets = &tickets;
                let addr = lb.addr();
                s.spawn(move || client(addr, styles[t % styles.len()], t, tickets, total))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client thread panicked"))
            .collect()
    });
    let expected: BTreeMap<String, usize> = bs.iter().map(|b| (b.name().to_string(), k)).collect();
    assert_served(&bs, per_thread, &expected);
}

/// Asserts that the clients' tallies (`per_thread`, summed) and the backends' own request
/// counts both equal `expected`, by backend name.
pub(super) fn assert_served(
    bs: &[Backend],
    per_thread: Vec<BTreeMap<String, usize>>,
    expected: &BTreeMap<String, usize>,
) {
    let mut by_clients: BTreeMap<String, usize> = BTreeMap::new();
    for (name, n) in per_thread.into_iter().flatten() {
        *by_clients.entry(name).or_insert(0) += n;
    }
    assert_eq!(
        &by_clients, expected,
        "responses per backend as the clients saw them"
    );
    let by_backends: BTreeMap<String, usize> = bs
        .iter()
        .map(|b| (b.name().to_string(), b.request_count()))
        .collect();
    assert_eq!(
        &by_backends, expected,
        "requests per backend as the backends saw them"
    );
}

#[test]
fn exact_round_robin_two_workers() {
    exact_counts(2, 300, 12);
}

#[test]
fn exact_round_robin_four_workers() {
    exact_counts(4, 300, 16);
}

/// Sequential requests on fresh connections land on different workers (SO_REUSEPORT hashes the
/// client port), yet the order is the registration order, starting at the first target: pick k
/// goes to target k mod n.
#[test]
fn sequential_requests_follow_registration_order_across_workers() {
    let bs = backends(&["seq-a", "seq-b", "seq-c"]);
    let lb = lb(2, &[("/", &addrs(&bs))], &[]);
    let got: Vec<String> = (0..30)
        .map(|i| served_by(&lb_testkit::get(lb.addr(), &format!("/s/{i}"))))
        .collect();
    let want: Vec<String> = (0..30).map(|i| bs[i % 3].name().to_string()).collect();
    assert_eq!(got, want);
}

/// Two prefixes have two independent cursors: traffic on one does not move the other's order.
#[test]
fn each_prefix_has_its_own_cursor() {
    let a = backends(&["cur-a1", "cur-a2"]);
    let b = backends(&["cur-b1", "cur-b2", "cur-b3"]);
    let lb = lb(2, &[("/a", &addrs(&a)), ("/b", &addrs(&b))], &[]);
    let mut conn = Conn::open(lb.addr());
    let mut got_a = Vec::new();
    let mut got_b = Vec::new();
    for i in 0..12 {
        got_a.push(served_by(&conn.get("/a/x")));
        if i % 2 == 0 {
            got_b.push(served_by(&conn.get("/b/y")));
        }
    }
    let want_a: Vec<String> = (0..12).map(|i| a[i % 2].name().to_string()).collect();
    let want_b: Vec<String> = (0..6).map(|i| b[i % 3].name().to_string()).collect();
    assert_eq!(got_a, want_a);
    assert_eq!(got_b, want_b);
}

/// Adding a target continues the order instead of restarting at target 0 (issue 2: "a prefix's
/// cursor survives target additions/removals"): after picks 0..=3 on [A, B], pick 4 on [A, B, C]
/// goes to 4 mod 3 = B, not to A.
#[test]
fn cursor_survives_registration_changes() {
    let bs = backends(&["surv-a", "surv-b", "surv-c"]);
    let lb: LbProcess = lb(2, &[("/", &addrs(&bs[..2]))], &[]);
    let mut conn = Conn::open(lb.addr());
    for i in 0..4 {
        assert_eq!(served_by(&conn.get("/")), bs[i % 2].name());
    }
    lb.admin().register_ok("/", bs[2].addr());
    let got: Vec<String> = (0..6).map(|_| served_by(&conn.get("/"))).collect();
    let want: Vec<String> = (4..10).map(|k| bs[k % 3].name().to_string()).collect();
    assert_eq!(got, want);
}
