//! Balancing policies per route (SPEC part B "Load-balancing policies"; issue 13): least
//! connections steering away from a target that holds slow requests, and consistent hashing
//! that keeps each key on one target, per key kind, with round robin for a request without a
//! key.

use crate::{backends, bin, lb_from_config, served_by};
use lb_testkit::serde_json::json;
use lb_testkit::{request, send_raw, Backend, LbProcess, Reply, ScratchDir, WAIT};
use std::collections::BTreeSet;

/// lb with 2 workers and one `/` route over `bs`, its policy given by `policy` (TOML lines).
fn lb_with_policy(dir: &ScratchDir, bs: &[&Backend], policy: &str) -> LbProcess {
    let targets: Vec<String> = bs.iter().map(|b| format!("\"{}\"", b.addr())).collect();
    let routes = format!(
        "[[route]]\nprefix = \"/\"\ntargets = [{}]\n{policy}\n",
        targets.join(", ")
    );
    lb_from_config(dir, 2, &routes)
}

/// `GET target` with `headers` on a fresh connection; the backend that answered.
fn get_with(lb: &LbProcess, target: &str, headers: &[(&str, &str)]) -> String {
    let mut all = headers.to_vec();
    all.push(("Connection", "close"));
    served_by(&send_raw(lb.addr(), &request("GET", target, &all, b"")))
}

/// A request held by the slow target counts against it until it is answered: meanwhile every
/// new request goes to the others; once it is answered, the slow one is picked again.
#[test]
fn least_conn_steers_new_requests_away_from_a_target_holding_slow_ones() {
    let slow = Backend::start_with("lc-slow", Reply::Hold);
    let others = backends(&["lc-b", "lc-c"]);
    let dir = ScratchDir::new("least-conn");
    let lb = lb_with_policy(
        &dir,
        &[&slow, &others[0], &others[1]],
        "balance = \"least_conn\"",
    );
    let routes = lb.admin().call("GET", "/routes", b"").json();
    assert_eq!(routes[0]["balance"], json!("least_conn"));

    // Pick 0 (every target idle) goes to the first target, which holds it.
    let held = {
        let addr = lb.addr();
        std::thread::spawn(move || served_by(&lb_testkit::get(addr, "/held")))
    };
    assert!(
        slow.wait_for_requests(1, WAIT),
        "the held request reached lc-slow"
    );
    let seen: Vec<String> = (0..30)
        .map(|i| get_with(&lb, &format!("/n/{i}"), &[]))
        .collect();
    assert!(
        seen.iter().all(|b| b != "lc-slow"),
        "nothing new for the busy target: {seen:?}"
    );
    let spread: BTreeSet<&str> = seen.iter().map(String::as_str).collect();
    assert_eq!(
        spread,
        BTreeSet::from(["lc-b", "lc-c"]),
        "ties go round robin"
    );

    slow.release();
    assert_eq!(held.join().expect("client thread"), "lc-slow");
    // Its count is back to 0: with all idle, the scan from the cursor reaches it again.
    let after: Vec<String> = (0..3)
        .map(|i| get_with(&lb, &format!("/a/{i}"), &[]))
        .collect();
    assert!(after.iter().any(|b| b == "lc-slow"), "{after:?}");
}

/// Runs `keys.len() x 4` requests, each key's from fresh connections, with `headers_for(key)`;
/// asserts that every key stayed on one backend and returns how many backends the keys used.
fn sticky_backends(
    lb: &LbProcess,
    keys: &[String],
    headers_for: impl Fn(&str) -> Vec<(String, String)>,
) -> usize {
    let mut used = BTreeSet::new();
    for key in keys {
        let headers = headers_for(key);
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let seen: BTreeSet<String> = (0..4)
            .map(|i| get_with(lb, &format!("/k/{i}"), &headers))
            .collect();
        assert_eq!(seen.len(), 1, "key {key} moved: {seen:?}");
        used.extend(seen);
    }
    used.len()
}

#[test]
fn hash_on_a_header_keeps_each_key_on_one_target() {
    let bs = backends(&["hh-a", "hh-b", "hh-c"]);
    let dir = ScratchDir::new("hash-header");
    let lb = lb_with_policy(
        &dir,
        &[&bs[0], &bs[1], &bs[2]],
        "balance = \"hash\"\nhash_key = \"header:X-User\"",
    );
    let routes = lb.admin().call("GET", "/routes", b"").json();
    assert_eq!(
        (&routes[0]["balance"], &routes[0]["hash_key"]),
        (&json!("hash"), &json!("header:X-User"))
    );
    let keys: Vec<String> = (0..24).map(|i| format!("user-{i}")).collect();
    let used = sticky_backends(&lb, &keys, |k| vec![("x-user".into(), k.into())]);
    assert!(used > 1, "24 keys over 3 targets use more than one");
    // No header: round robin, so three requests in a row reach three targets.
    let plain: BTreeSet<String> = (0..3)
        .map(|i| get_with(&lb, &format!("/p/{i}"), &[]))
        .collect();
    assert_eq!(plain.len(), 3, "{plain:?}");
}

#[test]
fn hash_on_a_cookie_keeps_each_key_on_one_target() {
    let bs = backends(&["hc-a", "hc-b", "hc-c"]);
    let dir = ScratchDir::new("hash-cookie");
    let lb = lb_with_policy(
        &dir,
        &[&bs[0], &bs[1], &bs[2]],
        "balance = \"hash\"\nhash_key = \"cookie:sid\"",
    );
    let keys: Vec<String> = (0..24).map(|i| format!("s{i}")).collect();
    let used = sticky_backends(&lb, &keys, |k| {
        vec![("Cookie".into(), format!("theme=dark; sid={k}"))]
    });
    assert!(used > 1, "24 keys over 3 targets use more than one");
}

#[test]
fn hash_on_the_client_ip_keeps_a_client_on_one_target() {
    let bs = backends(&["hi-a", "hi-b", "hi-c"]);
    let dir = ScratchDir::new("hash-ip");
    let lb = lb_with_policy(&dir, &[&bs[0], &bs[1], &bs[2]], "balance = \"hash\"");
    let routes = lb.admin().call("GET", "/routes", b"").json();
    assert_eq!(routes[0]["hash_key"], json!("client_ip"));
    // Every request comes from 127.0.0.1, over fresh connections on both workers.
    let seen: BTreeSet<String> = (0..20)
        .map(|i| get_with(&lb, &format!("/i/{i}"), &[]))
        .collect();
    assert_eq!(seen.len(), 1, "{seen:?}");
}

/// A policy lb does not know is a start-up error naming the route, exit code 2.
#[test]
fn an_unknown_policy_is_a_config_error() {
    let b = Backend::start("bad-policy");
    let dir = ScratchDir::new("bad-policy");
    let file = dir.join("lb.toml");
    std::fs::write(
        &file,
        format!(
            "listen = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\n\
             [[route]]\nprefix = \"/\"\ntargets = [\"{}\"]\nbalance = \"random\"\n",
            b.addr()
        ),
    )
    .expect("config written");
    let done = lb_testkit::run_to_exit(
        bin(),
        &["run", "--config", file.to_str().expect("utf-8")],
        WAIT,
    );
    assert_eq!(done.status.code(), Some(2), "stderr: {}", done.stderr);
    assert!(
        done.stderr.contains("balance \"random\""),
        "{}",
        done.stderr
    );
}

/// `max_fails = 2`: the target answering 500 is taken out after its second 500 in a row (for
/// the back-off), and every later request goes to the healthy one; `/routes` shows the setting.
#[test]
fn max_fails_takes_a_target_out_after_consecutive_failures() {
    let failing = Backend::start_with(
        "mf-bad",
        Reply::Fixed {
            status: 500,
            headers: Vec::new(),
            body: b"broken".to_vec(),
        },
    );
    let good = Backend::start("mf-good");
    let dir = ScratchDir::new("max-fails");
    let lb = lb_with_policy(&dir, &[&failing, &good], "max_fails = 2");
    let routes = lb.admin().call("GET", "/routes", b"").json();
    assert_eq!(routes[0]["max_fails"], json!(2));
    let status = |i: usize| {
        let raw = request("GET", &format!("/m/{i}"), &[("Connection", "close")], b"");
        send_raw(lb.addr(), &raw).status
    };
    // Round robin: bad, good, bad (its second failure in a row: out).
    assert_eq!([status(0), status(1), status(2)], [500, 200, 500]);
    let later: Vec<u16> = (3..13).map(status).collect();
    assert_eq!(
        later, [200; 10],
        "the failing target is out for the back-off"
    );
    assert_eq!(failing.request_count(), 2);
    let targets = lb.admin().targets();
    let bad = targets
        .as_array()
        .expect("rows")
        .iter()
        .find(|t| t["port"] == json!(failing.addr().port()))
        .expect("listed");
    assert_eq!(bad["healthy"], json!(false));
}

/// Without `max_fails` (the default), 500s are passed on and the target stays in rotation.
#[test]
fn without_max_fails_a_failing_target_stays_in_rotation() {
    let failing = Backend::start_with(
        "nf-bad",
        Reply::Fixed {
            status: 500,
            headers: Vec::new(),
            body: b"broken".to_vec(),
        },
    );
    let good = Backend::start("nf-good");
    let dir = ScratchDir::new("no-max-fails");
    let lb = lb_with_policy(&dir, &[&failing, &good], "");
    for i in 0..10 {
        let raw = request("GET", &format!("/m/{i}"), &[("Connection", "close")], b"");
        let want = if i % 2 == 0 { 500 } else { 200 };
        assert_eq!(send_raw(lb.addr(), &raw).status, want, "request {i}");
    }
}

/// SIGHUP changes a route's policy live: round robin first, then `hash` on a header after the
/// reload, on the same connection.
#[test]
fn sighup_changes_the_policy_live() {
    let bs = backends(&["rl-a", "rl-b", "rl-c"]);
    let dir = ScratchDir::new("policy-reload");
    let mut lb = lb_with_policy(&dir, &[&bs[0], &bs[1], &bs[2]], "");
    let user = [("X-User", "u-7")];
    let before: BTreeSet<String> = (0..3)
        .map(|i| get_with(&lb, &format!("/r/{i}"), &user))
        .collect();
    assert_eq!(
        before.len(),
        3,
        "round robin ignores the header: {before:?}"
    );
    let file = dir.join("lb.toml");
    let text = std::fs::read_to_string(&file).expect("config read")
        + "balance = \"hash\"\nhash_key = \"header:X-User\"\nmax_fails = 4\n";
    std::fs::write(&file, text).expect("config written");
    lb.process().signal("HUP");
    lb.wait_for_stderr(WAIT, &["configuration reloaded"]);
    let routes = lb.admin().call("GET", "/routes", b"").json();
    assert_eq!(
        (
            &routes[0]["balance"],
            &routes[0]["hash_key"],
            &routes[0]["max_fails"]
        ),
        (&json!("hash"), &json!("header:X-User"), &json!(4))
    );
    let after: BTreeSet<String> = (0..6)
        .map(|i| get_with(&lb, &format!("/h/{i}"), &user))
        .collect();
    assert_eq!(after.len(), 1, "one key, one target: {after:?}");
}

/// `retries` per route: with 0 a refused connect is the client's 502; with the default (1)
/// the request goes on to the next healthy target.
#[test]
fn retries_per_route_bound_where_a_failed_request_goes() {
    let good = Backend::start("rt-good");
    // One refused address per route: a refused connect takes its address out everywhere.
    let (refused_a, refused_b) = (lb_testkit::refused_addr(), lb_testkit::refused_addr());
    let dir = ScratchDir::new("retries");
    let routes = format!(
        "[[route]]\nprefix = \"/none\"\ntargets = [\"{refused_a}\", \"{g}\"]\nretries = 0\n\
         [[route]]\nprefix = \"/one\"\ntargets = [\"{refused_b}\", \"{g}\"]\n",
        g = good.addr()
    );
    let lb = lb_from_config(&dir, 1, &routes);
    let routes = lb.admin().call("GET", "/routes", b"").json();
    assert_eq!(
        (&routes[0]["retries"], &routes[1]["retries"]),
        (&json!(0), &json!(1))
    );
    assert_eq!(lb_testkit::get(lb.addr(), "/none/x").status, 502);
    assert_eq!(served_by(&lb_testkit::get(lb.addr(), "/one/x")), "rt-good");
}
