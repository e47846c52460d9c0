//! Health checks (issue 5 "Health and retries"): active probes with rise/fall move targets out of
//! and back into round robin, round robin stays exact over the healthy ones, a route whose
//! targets are all down answers 503, and `GET /targets` shows it all.

use crate::{assert_lb_error, lb, served_by, WAIT};
use lb_testkit::serde_json::Value;
use lb_testkit::{
    get, poll_until, refused_addr, request, send_raw, Admin, Backend, Conn, Scripted, SwitchBackend,
};
use std::net::SocketAddr;

/// Fast probing so the tests take well under a second of lb time per transition.
const FAST: &[&str] = &[
    "--health-check",
    "/health",
    "--health-interval",
    "50",
    "--health-timeout",
    "2000",
    "--health-rise",
    "2",
    "--health-fall",
    "2",
];

/// The `/targets` entry of `addr` on `path`.
pub(crate) fn entry(admin: &Admin, path: &str, addr: SocketAddr) -> Value {
    admin
        .targets()
        .as_array()
        .expect("array")
        .iter()
        .find(|t| {
            t["path"] == path
                && t["ip"] == addr.ip().to_string()
                && t["port"].as_u64() == Some(u64::from(addr.port()))
        })
        .cloned()
        .unwrap_or_else(|| panic!("{addr} not listed on {path}"))
}

/// Waits until `/targets` shows `addr` on `path` with `healthy == want`; returns the entry.
pub(crate) fn wait_healthy(admin: &Admin, path: &str, addr: SocketAddr, want: bool) -> Value {
    poll_until(WAIT, &format!("{addr} healthy={want}"), || {
        let t = entry(admin, path, addr);
        if t["healthy"] == want {
            Ok(t)
        } else {
            Err(t)
        }
    })
}

#[test]
fn failing_probes_take_a_target_out_and_passing_ones_bring_it_back() {
    let good = SwitchBackend::start("good", "/health");
    let flaky = SwitchBackend::start("flaky", "/health");
    let lb = lb(2, &[("/", &[good.addr(), flaky.addr()])], FAST);
    let admin = lb.admin();

    flaky.set_health(503);
    let down = wait_healthy(&admin, "/", flaky.addr(), false);
    assert_eq!(down["last_check"]["ok"], false, "{down}");
    assert_eq!(down["last_check"]["detail"], "503", "{down}");
    assert!(flaky.probes() >= 2, "fall = 2 needs two failed probes");
    let metrics = admin.call("GET", "/metrics", b"").text();
    assert!(
        metrics.contains(&format!(
            "lb_target_healthy{{path=\"/\",target=\"{}\"}} 0",
            flaky.addr()
        )),
        "{metrics}"
    );

    let before = flaky.requests();
    for _ in 0..10 {
        assert_eq!(served_by(&get(lb.addr(), "/x")), "good");
    }
    assert_eq!(
        flaky.requests(),
        before,
        "no traffic to a target that is down"
    );

    flaky.set_health(200);
    let up = wait_healthy(&admin, "/", flaky.addr(), true);
    assert_eq!(up["last_check"]["ok"], true, "{up}");
    assert_eq!(up["last_check"]["detail"], "200", "{up}");
    let names: Vec<String> = (0..10).map(|_| served_by(&get(lb.addr(), "/x"))).collect();
    assert_eq!(
        names.iter().filter(|n| *n == "flaky").count(),
        5,
        "{names:?}"
    );
}

#[test]
fn round_robin_stays_exact_over_the_healthy_targets() {
    let targets: Vec<SwitchBackend> = ["a", "b", "c"]
        .iter()
        .map(|n| SwitchBackend::start(n, "/health"))
        .collect();
    let addrs: Vec<SocketAddr> = targets.iter().map(SwitchBackend::addr).collect();
    let lb = lb(4, &[("/api", &addrs)], FAST);
    targets[1].set_health(500);
    wait_healthy(&lb.admin(), "/api", addrs[1], false);
    let before: Vec<u64> = targets.iter().map(SwitchBackend::requests).collect();
    for _ in 0..40 {
        let r = get(lb.addr(), "/api/x");
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let after: Vec<u64> = targets.iter().map(SwitchBackend::requests).collect();
    let sent: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    assert_eq!(sent, vec![20, 0, 20], "exact k mod 2 over the healthy pair");
}

#[test]
fn a_route_whose_targets_are_all_down_answers_503() {
    let dead = refused_addr();
    let sick = Backend::start_with(
        "sick",
        lb_testkit::Reply::Fixed {
            status: 503,
            headers: vec![],
            body: b"sick".to_vec(),
        },
    );
    let lb = lb(1, &[("/svc", &[dead, sick.addr()])], FAST);
    let admin = lb.admin();
    let refused = wait_healthy(&admin, "/svc", dead, false);
    assert_eq!(
        refused["last_check"]["detail"], "connection refused",
        "{refused}"
    );
    wait_healthy(&admin, "/svc", sick.addr(), false);
    assert_lb_error(&get(lb.addr(), "/svc/x"), 503);
    // The targets stay registered and listed, with their request counts.
    assert_eq!(admin.target_set().len(), 2);
    assert!(entry(&admin, "/svc", dead)["requests"].is_u64());
}

#[test]
fn without_a_check_path_nothing_is_probed() {
    let b = SwitchBackend::start("quiet", "/health");
    let lb = lb(1, &[("/", &[b.addr()])], &["--health-interval", "10"]);
    for _ in 0..5 {
        assert_eq!(served_by(&get(lb.addr(), "/")), "quiet");
    }
    let t = entry(&lb.admin(), "/", b.addr());
    assert_eq!(t["healthy"], true);
    assert_eq!(t["last_check"], Value::Null);
    assert_eq!(b.probes(), 0);
}

/// Passive health: a refused connect takes the target out for the back-off and the request is
/// retried on the next target in round-robin order.
#[test]
fn a_refused_connect_marks_the_target_down_and_retries_on_the_next() {
    let dead = refused_addr();
    let live = Backend::start("live");
    let lb = lb(
        1,
        &[("/", &[dead, live.addr()])],
        &["--health-backoff", "60000"],
    );
    for _ in 0..6 {
        assert_eq!(served_by(&get(lb.addr(), "/")), "live");
    }
    let t = entry(&lb.admin(), "/", dead);
    assert_eq!(t["healthy"], false, "{t}");
}

/// An origin that reads a request head, optionally sends `first` bytes, and closes.
fn dropping(first: &'static [u8]) -> Scripted {
    Scripted::start(move |p| {
        if p.read_head()?.is_some() {
            p.send(first)?;
            p.event("dropped");
        }
        Ok(())
    })
}

#[test]
fn an_idempotent_request_the_upstream_drops_unanswered_goes_to_the_next_target() {
    let drop = dropping(b"");
    let live = Backend::start("live");
    let lb = lb(1, &[("/", &[drop.addr(), live.addr()])], &[]);
    for i in 0..3 {
        // Every request picks `drop` or is retried from it: all end at `live`.
        assert_eq!(served_by(&get(lb.addr(), &format!("/{i}"))), "live");
    }
    drop.expect_event("dropped");
    let seen: Vec<String> = live.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(seen, ["/0", "/1", "/2"]);
    // It accepted the connection: not marked down.
    assert_eq!(entry(&lb.admin(), "/", drop.addr())["healthy"], true);
}

#[test]
fn a_post_the_upstream_drops_unanswered_is_not_sent_again() {
    let drop = dropping(b"");
    let live = Backend::start("live");
    let lb = lb(1, &[("/", &[drop.addr(), live.addr()])], &[]);
    let post = request("POST", "/form", &[("Content-Length", "0")], b"");
    assert_lb_error(&send_raw(lb.addr(), &post), 502);
    drop.expect_event("dropped");
    assert_eq!(live.request_count(), 0, "a POST was sent twice");
}

/// Once an interim response went to the client, the request is partly answered: a close is a
/// 502 on the same connection, not a retry.
#[test]
fn a_close_after_an_interim_response_is_not_retried() {
    let hint = dropping(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n");
    let live = Backend::start("live");
    let lb = lb(1, &[("/", &[hint.addr(), live.addr()])], &[]);
    let mut client = Conn::open(lb.addr());
    client
        .send(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
        .expect("send");
    let first = client.read_head().expect("read").expect("a head");
    assert_eq!(first.status(), 103);
    let second = client.read_head().expect("read").expect("a head");
    assert_eq!(second.status(), 502);
    hint.expect_event("dropped");
    assert_eq!(live.request_count(), 0, "retried after an interim response");
}
