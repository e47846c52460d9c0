//! `GET /stats`, the status page's data, and `GET /`, the page (SPEC part B "Control plane
//! additions"; issue 15): the shape, the token, and values that move when traffic flows.

use crate::{backends, lb, served_by};
use lb_testkit::serde_json::Value;
use lb_testkit::{get, poll_until, request, send_raw, Admin, WAIT};
use std::net::{SocketAddr, TcpListener};

/// The `/stats` body, which must be a 200.
fn stats(admin: &Admin) -> Value {
    let r = admin.call("GET", "/stats", b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    r.json()
}

/// `/stats`' row of `path`.
fn route<'s>(stats: &'s Value, path: &str) -> &'s Value {
    stats["routes"]
        .as_array()
        .and_then(|routes| routes.iter().find(|r| r["path"] == path))
        .unwrap_or_else(|| panic!("no route {path} in {stats}"))
}

/// An address nothing listens on (bound once, then closed).
fn dead_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// Every field the page reads is there, with the listing's rows inside, and the rates, the
/// worker counts, the latency window and the last check's time move once requests and probes
/// flow.
#[test]
fn stats_has_the_process_routes_workers_and_rates_that_move_with_traffic() {
    let bs = backends(&["a", "b"]);
    let (a, b) = (bs[0].addr(), bs[1].addr());
    let checks = ["--health-check", "/healthz", "--health-interval", "1s"];
    let lb = lb(2, &[("/api", &[a, b])], &checks);
    let admin = lb.admin();
    let s = stats(&admin);
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(s["workers"].as_array().map(Vec::len), Some(2), "{s}");
    assert!(s["cpus"].as_u64().is_some_and(|n| n >= 1), "{s}");
    let listeners = s["listeners"].to_string();
    assert!(listeners.contains(&lb.addr().to_string()), "{listeners}");
    assert!(
        listeners.contains(&lb.admin_addr().to_string()),
        "{listeners}"
    );
    assert!(s["uptime_s"].is_u64() && s["config_file"].is_null(), "{s}");
    let api = route(&s, "/api");
    for key in ["host", "strip_prefix", "balance", "rps", "p50_ms", "p99_ms"] {
        assert!(api.get(key).is_some(), "route lacks {key}: {api}");
    }
    let t = &api["targets"][0];
    for key in [
        "ip",
        "port",
        "weight",
        "healthy",
        "since_ms",
        "last_check",
        "rps",
        "share",
        "rate_4xx",
        "rate_5xx",
        "requests",
    ] {
        assert!(t.get(key).is_some(), "target lacks {key}: {t}");
    }
    assert_eq!(t["port"], a.port());

    // Traffic until a sample sees it: rates, shares, worker counters and latency move.
    let moved = poll_until(WAIT, "request rates in /stats", || {
        for _ in 0..10 {
            served_by(&get(lb.addr(), "/api/x"));
        }
        let s = stats(&admin);
        let api = route(&s, "/api");
        let checked = &api["targets"][0]["last_check"];
        let ok = api["rps"].as_f64().is_some_and(|r| r > 0.0)
            && checked["ok"] == true
            && checked["at_ms"].as_u64() <= s["now_ms"].as_u64()
            && checked["at_ms"].as_u64() >= s["started_ms"].as_u64()
            && api["p50_ms"].is_f64()
            && api["p99_ms"].is_f64()
            && s["totals"]["rps"].as_f64().is_some_and(|r| r > 0.0);
        if ok {
            Ok(s)
        } else {
            Err(s)
        }
    });
    let api = route(&moved, "/api");
    let shares: f64 = api["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .map(|t| {
            t["share"]
                .as_f64()
                .expect("a share while the route has traffic")
        })
        .sum();
    assert!((shares - 1.0).abs() < 1e-6, "shares add up to 1: {api}");
    let workers = moved["workers"].as_array().expect("workers");
    let accepted: u64 = workers
        .iter()
        .map(|w| w["accepted"].as_u64().unwrap_or(0))
        .sum();
    let requests: u64 = workers
        .iter()
        .map(|w| w["requests"].as_u64().unwrap_or(0))
        .sum();
    assert!(accepted >= 10 && requests >= 10, "{workers:?}");
    assert!(
        workers
            .iter()
            .any(|w| w["rps"].as_f64().is_some_and(|r| r > 0.0)),
        "{workers:?}"
    );
    let p50 = api["p50_ms"].as_f64().expect("p50");
    let p99 = api["p99_ms"].as_f64().expect("p99");
    assert!(0.0 < p50 && p50 <= p99, "{api}");
}

/// Registrations, deregistrations and health flips are listed, newest first, with their times;
/// a target that fails counts its 5xx rate.
#[test]
fn stats_lists_registry_changes_and_error_rates() {
    let bs = backends(&["a"]);
    let lb = lb(1, &[("/api", &[bs[0].addr()])], &[]);
    let admin = lb.admin();
    let dead = dead_addr();
    admin.register_ok("/dead", dead);
    let kinds = |s: &Value| -> Vec<(String, String)> {
        s["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .map(|c| {
                assert!(c["at_ms"].as_u64().is_some_and(|t| t > 0), "{c}");
                let kind = c["kind"].as_str().unwrap_or_default().to_string();
                (kind, c["target"].as_str().unwrap_or_default().to_string())
            })
            .collect()
    };
    poll_until(WAIT, "the registration in /stats changes", || {
        let s = stats(&admin);
        let k = kinds(&s);
        k.contains(&("registered".into(), dead.to_string()))
            .then_some(())
            .ok_or(k)
    });
    // A refused connect takes it down (passive health) and answers 502, a 5xx of the target.
    assert_eq!(get(lb.addr(), "/dead/x").status, 502);
    let s = poll_until(WAIT, "the target's fall in /stats", || {
        let s = stats(&admin);
        let k = kinds(&s);
        if k.first() == Some(&("down".into(), dead.to_string())) {
            Ok(s)
        } else {
            Err(k)
        }
    });
    let t = &route(&s, "/dead")["targets"][0];
    assert_eq!(t["healthy"], false, "{t}");
    assert!(
        t["since_ms"].as_u64() >= s["changes"][0]["at_ms"].as_u64(),
        "{t}"
    );
    assert_eq!(t["responses"]["5xx"], 1, "{t}");
    admin.deregister_ok("/dead", dead);
    poll_until(WAIT, "the deregistration in /stats changes", || {
        let k = kinds(&stats(&admin));
        (k.first() == Some(&("deregistered".into(), dead.to_string())))
            .then_some(())
            .ok_or(k)
    });
}

/// With `--admin-token`, `/stats` needs it like every other call; the page itself does not
/// (it is what asks for the token) and is one self-contained HTML file of at most 64 KiB.
#[test]
fn stats_needs_the_token_and_the_page_does_not() {
    let lb = lb(1, &[], &["--admin-token", "s3cret"]);
    let admin = lb.admin();
    let refused = admin.call("GET", "/stats", b"");
    assert_eq!(refused.status, 401, "{}", refused.text());
    let call = |path: &str, auth: &str| {
        let headers = [("Authorization", auth), ("Connection", "close")];
        send_raw(admin.addr(), &request("GET", path, &headers, b""))
    };
    assert_eq!(call("/stats", "Bearer wrong").status, 401);
    let allowed = call("/stats", "Bearer s3cret");
    assert_eq!(allowed.status, 200, "{}", allowed.text());
    assert!(allowed.json()["routes"].is_array());

    let page = admin.call("GET", "/", b"");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    assert!(page.body.len() <= 64 * 1024, "{} bytes", page.body.len());
    let html = page.text();
    assert!(html.starts_with("<!doctype html>"), "{}", &html[..40]);
    for external in ["http://", "https://", "//cdn", "src=\"/", "href=\"/"] {
        assert!(
            !html.contains(external),
            "the page must not load {external}..."
        );
    }
    assert!(html.contains("sessionStorage") && html.contains("Bearer "));
}

/// A host-bound `least_conn` route in `/stats`: its host and policy, its targets' requests in
/// flight (counted on `least_conn` routes only), and its rates and latency, which are keyed by
/// host and prefix (the host-less route on the same prefix keeps its own figures).
#[test]
fn stats_shows_a_host_bound_least_conn_route_with_its_own_figures() {
    let bs = backends(&["st-host", "st-plain"]);
    let dir = lb_testkit::ScratchDir::new("stats-host");
    let routes = format!(
        "[[route]]\nhost = \"api.test\"\nprefix = \"/api\"\ntargets = [\"{}\"]\nbalance = \"least_conn\"\n\
         [[route]]\nprefix = \"/api\"\ntargets = [\"{}\"]\n",
        bs[0].addr(),
        bs[1].addr()
    );
    let lb = crate::lb_from_config(&dir, 1, &routes);
    let admin = lb.admin();
    let via_host = request(
        "GET",
        "/api/x",
        &[("Host", "api.test"), ("Connection", "close")],
        b"",
    );
    let s = poll_until(WAIT, "the host-bound route's rate in /stats", || {
        for _ in 0..10 {
            assert_eq!(served_by(&send_raw(lb.addr(), &via_host)), "st-host");
        }
        let s = stats(&admin);
        let bound = s["routes"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["host"] == "api.test"))
            .cloned();
        match bound {
            Some(r) if r["rps"].as_f64().is_some_and(|x| x > 0.0) && r["p50_ms"].is_f64() => Ok(s),
            _ => Err(s),
        }
    });
    let rows = s["routes"].as_array().expect("routes");
    let bound = rows
        .iter()
        .find(|r| r["host"] == "api.test")
        .expect("bound");
    let plain = rows
        .iter()
        .find(|r| r["host"].is_null())
        .expect("host-less");
    assert_eq!(bound["balance"], "least_conn");
    assert_eq!(bound["targets"][0]["in_flight"], 0, "{bound}");
    assert!(bound["targets"][0]["rps"].as_f64() > Some(0.0), "{bound}");
    assert_eq!(plain["balance"], "round_robin");
    assert!(
        plain["targets"][0].get("in_flight").is_none(),
        "round robin does not count requests in flight: {plain}"
    );
    assert_eq!(
        plain["rps"].as_f64(),
        Some(0.0),
        "the host-less route had no request: {plain}"
    );
    assert!(plain["p50_ms"].is_null(), "{plain}");
}
