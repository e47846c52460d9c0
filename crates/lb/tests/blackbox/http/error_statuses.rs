//! Status codes lb produces itself when the upstream side fails (SPEC "Status codes";
//! issue 2 "Faults"). Each is checked for its text/plain body and for lb staying healthy after it.

use crate::{assert_lb_error, lb, served_by, WAIT};
use lb_testkit::{get, refused_addr, request, Backend, Conn, Reply};
use std::time::{Duration, Instant};

#[test]
fn no_route_is_503() {
    let lb = lb(1, &[], &[]);
    assert_lb_error(&get(lb.addr(), "/"), 503);
    assert_lb_error(&get(lb.addr(), "/anything?x=1"), 503);
    // POST with a body: lb must still answer (it knows the framing, nothing to forward it to).
    let r = lb_testkit::send_raw(
        lb.addr(),
        &request("POST", "/p", &[("Connection", "close")], b"payload"),
    );
    assert_lb_error(&r, 503);
}

/// `/gone` is named by the configuration (`--route`), so it stays when its targets are all
/// deregistered, and answers 503 (SPEC part B); a prefix only the API created would leave
/// instead (`admin::routes::the_api_s_last_target_takes_its_prefix_along`).
#[test]
fn prefix_whose_targets_were_all_deregistered_is_503() {
    let a = Backend::start("gone-a");
    let b = Backend::start("gone-b");
    let lb = lb(2, &[("/gone", &[a.addr(), b.addr()])], &[]);
    assert_eq!(served_by(&get(lb.addr(), "/gone")), "gone-a");
    lb.admin().deregister_ok("/gone", a.addr());
    lb.admin().deregister_ok("/gone", b.addr());
    for _ in 0..4 {
        assert_lb_error(&get(lb.addr(), "/gone/x"), 503);
    }
    assert_eq!((a.request_count(), b.request_count()), (1, 0));
}

/// A configured prefix whose last target left keeps answering 503 rather than letting its
/// traffic fall through to a shorter prefix's service (which would receive paths it was never
/// meant to see): the configuration (`--route /api=...`) names it, so it stays.
#[test]
fn emptied_prefix_does_not_fall_through_to_a_shorter_one() {
    let api = Backend::start("api");
    let root = Backend::start("root");
    let lb = lb(1, &[("/api", &[api.addr()]), ("/", &[root.addr()])], &[]);
    assert_eq!(served_by(&get(lb.addr(), "/api/x")), "api");
    lb.admin().deregister_ok("/api", api.addr());
    assert_lb_error(&get(lb.addr(), "/api/x"), 503);
    assert_eq!(
        root.request_count(),
        0,
        "/api traffic fell through to the / route"
    );
    assert_eq!(served_by(&get(lb.addr(), "/other")), "root");
}

#[test]
fn refused_upstream_is_502() {
    let dead = refused_addr();
    let lb = lb(1, &[("/", &[dead])], &[]);
    assert_lb_error(&get(lb.addr(), "/x"), 502);
    // The refusal took the only target out of rotation (passive health, issue 5): the next
    // request, on a keep-alive connection, gets 503 and the connection stays usable.
    let mut c = Conn::open(lb.addr());
    let r = c.get("/y");
    assert_lb_error(&r, 503);
    assert_lb_error(&c.get("/z"), 503);
}

/// Issue 9's reproduction: a route whose only target is down, then a good route, on one
/// keep-alive connection, one request after the other and then pipelined. Each request gets its
/// own answer, once: before the fix `/dead/x` was answered 502 and then 503, and every later answer
/// on the connection belonged to the request before it.
#[test]
fn a_dead_only_target_answers_its_request_once_and_the_next_requests_get_their_own() {
    let ok = Backend::start("ok");
    let lb = lb(
        1,
        &[("/dead", &[refused_addr()]), ("/ok", &[ok.addr()])],
        &["--access-log"],
    );
    let mut c = Conn::open(lb.addr());
    assert_lb_error(&c.get("/dead/x"), 502);
    for path in ["/y", "/z"] {
        let r = c.get(&format!("/ok{path}"));
        assert_eq!(served_by(&r), "ok");
        assert_eq!(
            r.header("x-path"),
            Some(path),
            "the answer belongs to /ok{path}"
        );
    }
    // Pipelined: three heads in one write, three answers in order (the target is down now: 503).
    let burst = [
        request("GET", "/dead/x", &[], b""),
        request("GET", "/ok/y", &[], b""),
        request("GET", "/ok/z", &[], b""),
    ]
    .concat();
    c.send(&burst).expect("send the burst");
    assert_lb_error(&c.read_response(false).expect("the answer to /dead/x"), 503);
    for path in ["/y", "/z"] {
        let r = c.read_response(false).expect("an answer to /ok");
        assert_eq!(served_by(&r), "ok");
        assert_eq!(
            r.header("x-path"),
            Some(path),
            "the answer belongs to /ok{path}"
        );
    }
    assert!(c.silent_for(Duration::from_millis(200)), "a stray answer");
    assert_eq!(ok.request_count(), 4);
    let log = lb.wait_for_stderr(WAIT, &["\"GET /ok/z\" status=200"]);
    assert_eq!(log.matches("\"GET /dead/x\" status=").count(), 2, "{log}");
    assert_eq!(log.matches(" status=").count(), 6, "{log}");
}

/// `--upstream-timeout 500`: a backend that reads the request and never answers gets a 504 after
/// about half a second, not after the 60 s default.
#[test]
fn silent_upstream_is_504_after_upstream_timeout() {
    let silent = Backend::start_with("silent", Reply::NeverAnswer);
    let lb = lb(
        1,
        &[("/", &[silent.addr()])],
        &["--upstream-timeout", "500"],
    );
    let start = Instant::now();
    let r = get(lb.addr(), "/slow");
    let took = start.elapsed();
    assert_lb_error(&r, 504);
    assert!(
        took >= Duration::from_millis(450),
        "504 after {took:?}, before the 500 ms timeout"
    );
    assert!(took < WAIT, "504 took {took:?}");
    assert_eq!(
        silent.request_count(),
        1,
        "the request did reach the backend"
    );
    assert_eq!(silent.last_request().target, "/slow");
}

/// An upstream that accepts and closes without a response is an invalid response: 502.
#[test]
fn upstream_closing_without_a_response_is_502() {
    let rude = Backend::start_with("rude", Reply::CloseImmediately);
    let lb = lb(1, &[("/", &[rude.addr()])], &[]);
    assert_lb_error(&get(lb.addr(), "/"), 502);
    assert!(rude.connections() >= 1, "lb never connected");
}

/// An upstream that answers garbage is an invalid response: 502.
#[test]
fn upstream_sending_garbage_is_502() {
    let garbage = Backend::start_with(
        "garbage",
        Reply::Fixed {
            status: 200,
            // A header without a colon makes the response head invalid.
            headers: vec![("this is not a header".to_string(), "x".to_string())],
            body: b"x".to_vec(),
        },
    );
    let lb = lb(1, &[("/", &[garbage.addr()])], &[]);
    let r = get(lb.addr(), "/");
    assert_lb_error(&r, 502);
}

/// A failure or a slow upstream on one connection never affects another: while one client waits
/// on a held upstream (one worker, so the same event loop), other clients are served at once.
#[test]
fn a_slow_route_does_not_disturb_others() {
    let held = Backend::start_with("held", Reply::Hold);
    let good = Backend::start("good");
    let lb = lb(
        1,
        &[("/held", &[held.addr()]), ("/good", &[good.addr()])],
        &[],
    );
    let addr = lb.addr();
    std::thread::scope(|s| {
        let slow = s.spawn(move || get(addr, "/held"));
        assert!(
            held.wait_for_requests(1, WAIT),
            "the held request never reached its backend"
        );
        let mut c = Conn::open(addr);
        for _ in 0..20 {
            assert_eq!(served_by(&c.get("/good/x")), "good");
        }
        assert_lb_error(&get(addr, "/nothing-here"), 503);
        assert!(
            !slow.is_finished(),
            "the held request finished before its backend answered"
        );
        held.release();
        assert_eq!(served_by(&slow.join().expect("slow client")), "held");
    });
    assert_eq!(good.request_count(), 20);
}
