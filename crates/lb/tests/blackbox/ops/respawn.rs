//! A worker that panics is respawned by the supervisor (issue 5 "Shutdown, restart, upgrade"):
//! the other workers keep serving (a keep-alive connection held by one stays usable) and round
//! robin stays exact over the whole run; a worker that keeps panicking is respawned after a
//! growing delay instead of in a hot loop. The panic is injected through the debug-only admin
//! hook `POST /debug/panic?worker=N` (the tests run a debug build).

use crate::{addrs, backends, lb, served_by, WAIT};
use lb_testkit::{get, poll_until, Admin, Conn, LbProcess};

/// A counter of `/metrics` with the given labels, e.g. `("lb_worker_restarts_total", "0")`.
fn worker_metric(admin: &Admin, name: &str, worker: usize) -> u64 {
    admin.metric(&format!("{name}{{worker=\"{worker}\"}}")) as u64
}

fn accepted(admin: &Admin, worker: usize) -> u64 {
    worker_metric(admin, "lb_worker_connections_accepted_total", worker)
}

/// A keep-alive connection that `worker` accepted, and how many requests it took to find one
/// (each answered 200).
fn connection_on(lb: &LbProcess, admin: &Admin, worker: usize) -> (Conn, usize) {
    for tries in 1..=200 {
        let before = accepted(admin, worker);
        let mut c = Conn::open(lb.addr());
        assert_eq!(c.get("/warm-up").status, 200);
        if accepted(admin, worker) > before {
            return (c, tries);
        }
    }
    panic!("no connection landed on worker {worker} in 200 tries");
}

/// Injects a panic into `worker` and waits until the supervisor has respawned it for the
/// `restarts`-th time.
fn panic_and_wait_for_respawn(admin: &Admin, worker: usize, restarts: u64) {
    let r = admin.call("POST", &format!("/debug/panic?worker={worker}"), b"");
    assert_eq!(r.status, 200, "{}", r.text());
    poll_until(WAIT, "the worker respawned", || {
        match worker_metric(admin, "lb_worker_restarts_total", worker) {
            n if n == restarts => Ok(()),
            n => Err(n),
        }
    });
}

#[test]
fn a_panicking_worker_is_respawned_and_round_robin_stays_exact() {
    let bs = backends(&["a", "b", "c"]);
    let lb = lb(2, &[("/", &addrs(&bs))], &[]);
    let admin = lb.admin();
    // A keep-alive connection that worker 1 accepted: it must live through worker 0's panic.
    let (mut held, mut sent) = connection_on(&lb, &admin, 1);
    let worker0_before = accepted(&admin, 0);

    panic_and_wait_for_respawn(&admin, 0, 1);
    lb.wait_for_stderr(WAIT, &["worker panicked; respawning it"]);
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
        accepted(&admin, 0) > worker0_before,
        "the respawned worker 0 accepts again"
    );
    let counts: Vec<usize> = bs.iter().map(|b| b.request_count()).collect();
    assert_eq!(
        counts,
        vec![sent / 3; 3],
        "exact round robin across the respawn"
    );
}

/// Each quick panic after the first waits longer before the respawn (100 ms, then 200 ms),
/// logged with the delay; worker 1 serves its keep-alive connection throughout, worker 0
/// accepts again once respawned, and a SIGTERM during a back-off exits 0.
#[test]
fn a_worker_that_keeps_panicking_is_respawned_after_a_growing_delay() {
    let bs = backends(&["a"]);
    let mut lb = lb(2, &[("/", &addrs(&bs))], &[]);
    let admin = lb.admin();
    let (mut held, _) = connection_on(&lb, &admin, 1);

    panic_and_wait_for_respawn(&admin, 0, 1);
    lb.wait_for_stderr(WAIT, &["worker panicked; respawning it worker=0"]);
    assert!(
        !lb.stderr().contains("respawning it in"),
        "the first respawn is immediate: {}",
        lb.stderr()
    );
    assert_eq!(served_by(&held.get("/after-first")), "a");

    for (restarts, delay) in [(2, "100ms"), (3, "200ms")] {
        panic_and_wait_for_respawn(&admin, 0, restarts);
        lb.wait_for_stderr(
            WAIT,
            &[&format!("worker panicked; respawning it in {delay}")],
        );
        assert_eq!(
            served_by(&held.get("/meanwhile")),
            "a",
            "worker 1 serves on"
        );
    }
    assert_eq!(worker_metric(&admin, "lb_worker_restarts_total", 1), 0);
    let before = accepted(&admin, 0);
    poll_until(WAIT, "a fresh connection on the respawned worker 0", || {
        served_by(&get(lb.addr(), "/fresh"));
        match accepted(&admin, 0) {
            n if n > before => Ok(()),
            n => Err(n),
        }
    });

    // SIGTERM while the next respawn waits its 400 ms: lb drains and exits 0.
    let r = admin.call("POST", "/debug/panic?worker=0", b"");
    assert_eq!(r.status, 200, "{}", r.text());
    lb.wait_for_stderr(WAIT, &["worker panicked; respawning it in 400ms"]);
    lb.terminate();
    assert_eq!(lb.wait_exit(WAIT).code(), Some(0), "{}", lb.stderr());
}

#[test]
fn the_debug_hook_refuses_unknown_workers() {
    let lb = lb(1, &[], &[]);
    let admin = lb.admin();
    assert_eq!(admin.call("POST", "/debug/panic?worker=7", b"").status, 404);
    assert_eq!(admin.call("POST", "/debug/panic", b"").status, 400);
    assert_eq!(get(lb.addr(), "/").status, 503, "lb still serves");
}
