//! Smooth weighted round robin, exact across workers (SPEC part B "Load-balancing policies";
//! issue 13 "Weighted round robin, exact across all workers").
//!
//! Weights come through `POST /register`; requests go over fresh connections, which the kernel
//! spreads over both workers, and every window of `sum(weights)` consecutive requests must give
//! each target exactly its weight.

use super::round_robin::assert_served;
use crate::{backends, lb, served_by};
use lb_testkit::serde_json::json;
use lb_testkit::{request, Backend, Conn, LbProcess};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Registers `backend` on `/` with `weight` (a 201 or a 200).
fn register_weighted(lb: &LbProcess, backend: &Backend, weight: u16) {
    let body = json!({"path":"/","ip":"127.0.0.1","port":backend.addr().port(),"weight":weight});
    let r = lb.admin().register_raw(&body.to_string());
    assert!(r.status == 200 || r.status == 201, "register: {}", r.text());
}

/// One request on a fresh connection that closes after it.
fn fresh_get(lb: &LbProcess, target: &str) -> String {
    let mut conn = Conn::open(lb.addr());
    served_by(&conn.request(&request("GET", target, &[("Connection", "close")], b"")))
}

/// Sequential requests on fresh connections (spread over both workers) follow nginx's smooth
/// order for weights 5,1,1: a a b a c a a, period after period.
#[test]
fn weights_five_one_one_follow_the_smooth_order_across_two_workers() {
    let bs = backends(&["w-a", "w-b", "w-c"]);
    let lb = lb(2, &[], &[]);
    for (b, w) in bs.iter().zip([5, 1, 1]) {
        register_weighted(&lb, b, w);
    }
    let got: Vec<String> = (0..21)
        .map(|i| fresh_get(&lb, &format!("/s/{i}")))
        .collect();
    let period = [0, 0, 1, 0, 2, 0, 0];
    let want: Vec<String> = (0..21)
        .map(|i| bs[period[i % 7]].name().to_string())
        .collect();
    assert_eq!(got, want);
}

/// 8 client threads on fresh connections, 2 workers, weights 3,2,1: each backend serves exactly
/// its weight times the number of periods, counted by the clients and by the backends.
#[test]
fn weighted_counts_are_exact_with_two_workers_over_fresh_connections() {
    let bs = backends(&["wc-a", "wc-b", "wc-c"]);
    let lb = lb(2, &[], &[]);
    let weights: [u16; 3] = [3, 2, 1];
    for (b, &w) in bs.iter().zip(&weights) {
        register_weighted(&lb, b, w);
    }
    let periods = 60;
    let total = 6 * periods;
    let tickets = AtomicUsize::new(0);
    let seen: Vec<BTreeMap<String, usize>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let (tickets, lb) = (&tickets, &lb);
                s.spawn(move || {
                    let mut seen = BTreeMap::new();
                    while tickets.fetch_add(1, Ordering::SeqCst) < total {
                        *seen.entry(fresh_get(lb, &format!("/c/{t}"))).or_insert(0) += 1;
                    }
                    seen
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client thread panicked"))
            .collect()
    });
    let expected: BTreeMap<String, usize> = bs
        .iter()
        .zip(&weights)
        .map(|(b, &w)| (b.name().to_string(), usize::from(w) * periods))
        .collect();
    assert_served(&bs, seen, &expected);
}

/// A weight changed at run time: the order goes on from the route's cursor (not from pick 0),
/// the targets keep their places, and the new weights' smooth period follows.
#[test]
fn a_weight_change_at_run_time_continues_the_order() {
    let bs = backends(&["wr-a", "wr-b"]);
    let lb = lb(2, &[], &[]);
    register_weighted(&lb, &bs[0], 1);
    register_weighted(&lb, &bs[1], 1);
    let before: Vec<String> = (0..3).map(|i| fresh_get(&lb, &format!("/b/{i}"))).collect();
    assert_eq!(before, [bs[0].name(), bs[1].name(), bs[0].name()]);
    register_weighted(&lb, &bs[1], 3);
    // Weights 1,3 have the smooth period b a b b; the cursor stands at 3.
    let period = [1, 0, 1, 1];
    let after: Vec<String> = (0..12)
        .map(|i| fresh_get(&lb, &format!("/a/{i}")))
        .collect();
    let want: Vec<String> = (3..15)
        .map(|k| bs[period[k % 4]].name().to_string())
        .collect();
    assert_eq!(after, want);
    let routes = lb.admin().call("GET", "/routes", b"").json();
    let weights: Vec<_> = routes[0]["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .map(|t| t["weight"].clone())
        .collect();
    assert_eq!(
        weights,
        [json!(1), json!(3)],
        "the order of targets is kept"
    );
}

/// A config target written `{ addr = "HOST:PORT", weight = N }` has that weight: weights 3,1
/// give the smooth period a a b a; a reload that changes it takes effect live.
#[test]
fn config_targets_carry_weights_and_a_reload_changes_them() {
    let bs = backends(&["wf-a", "wf-b"]);
    let dir = lb_testkit::ScratchDir::new("config-weights");
    let config = |weight: u16| {
        format!(
            "[[route]]\nprefix = \"/\"\n\
             targets = [{{ addr = \"{}\", weight = {weight} }}, \"{}\"]\n",
            bs[0].addr(),
            bs[1].addr()
        )
    };
    let mut lb = crate::lb_from_config(&dir, 2, &config(3));
    let got: Vec<String> = (0..8).map(|i| fresh_get(&lb, &format!("/f/{i}"))).collect();
    let period = [0, 0, 1, 0];
    let want: Vec<String> = (0..8)
        .map(|i| bs[period[i % 4]].name().to_string())
        .collect();
    assert_eq!(got, want);
    let routes = lb.admin().call("GET", "/routes", b"").json();
    assert_eq!(routes[0]["targets"][0]["weight"], json!(3));

    crate::config_file(&dir, 2, &config(1));
    lb.process().signal("HUP");
    lb.wait_for_stderr(lb_testkit::WAIT, &["configuration reloaded"]);
    let routes = lb.admin().call("GET", "/routes", b"").json();
    assert_eq!(routes[0]["targets"][0]["weight"], json!(1));
    // Equal weights: k mod 2 from the cursor, which stands at 8.
    let got: Vec<String> = (8..12)
        .map(|i| fresh_get(&lb, &format!("/g/{i}")))
        .collect();
    let want: Vec<String> = (8..12).map(|k| bs[k % 2].name().to_string()).collect();
    assert_eq!(got, want);
}

/// 10,000 targets on one route (HAProxy's `roundrobin` stops at 4,095): the route takes them
/// all, lists them, and picks in order over all of them. Three real backends stand first; the
/// other 9,997 addresses (10.255.x.y, never contacted) stand after them, so picks 0, 1 and 2
/// reach the three, whichever worker takes the connection.
#[test]
fn ten_thousand_targets_on_one_route_route_in_order() {
    let bs = backends(&["big-a", "big-b", "big-c"]);
    let mut targets: Vec<String> = bs.iter().map(|b| format!("\"{}\"", b.addr())).collect();
    targets.extend((0..9_997u32).map(|i| format!("\"10.255.{}.{}:9\"", i / 250, i % 250 + 1)));
    let dir = lb_testkit::ScratchDir::new("ten-thousand");
    let routes = format!(
        "[[route]]\nprefix = \"/\"\ntargets = [{}]\n",
        targets.join(", ")
    );
    let lb = crate::lb_from_config(&dir, 2, &routes);
    let listed = lb.admin().call("GET", "/routes", b"").json();
    assert_eq!(listed[0]["targets"].as_array().map(Vec::len), Some(10_000));
    let got: Vec<String> = (0..3).map(|i| fresh_get(&lb, &format!("/t/{i}"))).collect();
    assert_eq!(got, [bs[0].name(), bs[1].name(), bs[2].name()]);
}
