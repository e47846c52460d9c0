//! A worker that panics is respawned by the supervisor (issue 5 "Shutdown, restart, upgrade"):
//! the other workers keep serving (a keep-alive connection held by one stays usable) and round
//! robin stays exact over the whole run. The panic is injected through the debug-only admin
//! hook `POST /debug/panic?worker=N` (the tests run a debug build).

use crate::{addrs, backends, lb, served_by, WAIT};
use lb_testkit::{get, poll_until, Admin, Conn};

/// A counter of `/metrics` with the given labels, e.g. `("lb_worker_restarts_total", "0")`.
fn worker_metric(admin: &Admin, name: &str, worker: usize) -> u64 {
    let text = admin.call("GET", "/metrics", b"").text();
    let prefix = format!("{name}{{worker=\"{worker}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} in /metrics:\n{text}"))
}

#[test]
fn a_panicking_worker_is_respawned_and_round_robin_stays_exact() {
    let bs = backends(&["a", "b", "c"]);
    let lb = lb(2, &[("/", &addrs(&bs))], &[]);
    let admin = lb.admin();
    let accepted = |w| worker_metric(&admin, "lb_worker_connections_accepted_total", w);
    let mut sent = 0usize;

    // A keep-alive connection that worker 1 accepted: it must live through worker 0's panic.
    let mut held = None;
    for _ in 0..200 {
        let before = accepted(1);
        let mut c = Conn::open(lb.addr());
        assert_eq!(c.get("/warm-up").status, 200);
        sent += 1;
        if accepted(1) > before {
            held = Some(c);
            break;
        }
    }
    let mut held = held.expect("no connection landed on worker 1 in 200 tries");
    let worker0_before = accepted(0);

    let r = admin.call("POST", "/debug/panic?worker=0", b"");
    assert_eq!(r.status, 200, "{}", r.text());
    poll_until(WAIT, "worker 0 respawned", || {
        match worker_metric(&admin, "lb_worker_restarts_total", 0) {
            1 => Ok(()),
            n => Err(n),
        }
    });
    assert!(lb.stderr().contains("panicked"), "the panic is logged");
    assert_eq!(worker_metric(&admin, "lb_worker_restarts_total", 1), 0);

    assert_eq!(
        held.get("/still-here").status,
        200,
        "worker 1's connection is unaffected"
    );
    sent += 1;
    // Fresh connections, spread by the kernel over both sockets, all answered; make the total a
    // multiple of 3 so that exact round robin means exactly equal counts.
    let more = 60 + (3 - sent % 3) % 3;
    for _ in 0..more {
        served_by(&get(lb.addr(), "/after"));
    }
    sent += more;
    assert!(
        accepted(0) > worker0_before,
        "the respawned worker 0 accepts again"
    );
    let counts: Vec<usize> = bs.iter().map(|b| b.request_count()).collect();
    assert_eq!(
        counts,
        vec![sent / 3; 3],
        "exact round robin across the respawn"
    );
}

#[test]
fn the_debug_hook_refuses_unknown_workers() {
    let lb = lb(1, &[], &[]);
    let admin = lb.admin();
    assert_eq!(admin.call("POST", "/debug/panic?worker=7", b"").status, 404);
    assert_eq!(admin.call("POST", "/debug/panic", b"").status, 400);
    assert_eq!(get(lb.addr(), "/").status, 503, "lb still serves");
}
