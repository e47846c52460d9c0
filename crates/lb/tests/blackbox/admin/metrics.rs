//! `/metrics` (issue 5, "Observability"): per-worker counters summed by whoever scrapes, a
//! latency histogram, open upstream connections, registry and target series.

use crate::{lb, served_by, WAIT};
use lb_testkit::{
    find_metric_sample, metric_sample, poll_until, refused_addr, Backend, Conn, Reply,
};
use std::net::SocketAddr;

#[test]
fn counters_histogram_and_upstream_gauge_follow_the_traffic() {
    let backend = Backend::start("m");
    let lb = lb(1, &[("/", &[backend.addr()])], &[]);
    let mut client = Conn::open(lb.addr());
    for i in 0..25 {
        assert_eq!(served_by(&client.get(&format!("/{i}"))), "m");
    }
    let w = "{worker=\"0\"}";
    // A request's latency is recorded right after its last byte is written to the client, so
    // the client can read the 25th response (and scrape) a moment before it is counted; every
    // other series below is updated before the response leaves lb.
    let text = poll_until(WAIT, "25 latencies in the histogram", || {
        let r = lb.admin().call("GET", "/metrics", b"");
        assert_eq!(r.status, 200);
        let text = r.text();
        let count = metric_sample(&text, &format!("lb_request_duration_seconds_count{w}"));
        if count == 25.0 {
            Ok(text)
        } else {
            Err(count)
        }
    });
    assert_eq!(
        metric_sample(&text, &format!("lb_worker_requests_total{w}")),
        25.0
    );
    assert_eq!(
        metric_sample(&text, &format!("lb_worker_connections_accepted_total{w}")),
        1.0
    );
    assert_eq!(
        metric_sample(&text, &format!("lb_worker_connections_active{w}")),
        1.0
    );
    assert_eq!(
        metric_sample(
            &text,
            "lb_worker_responses_total{worker=\"0\",class=\"2xx\"}"
        ),
        25.0
    );
    assert_eq!(
        metric_sample(&text, &format!("lb_request_duration_seconds_count{w}")),
        25.0
    );
    assert_eq!(
        metric_sample(
            &text,
            "lb_request_duration_seconds_bucket{worker=\"0\",le=\"+Inf\"}"
        ),
        25.0
    );
    // Sequential keep-alive requests share one pooled upstream connection, still open.
    assert_eq!(
        metric_sample(&text, &format!("lb_worker_upstream_connections_open{w}")),
        1.0
    );
    assert_eq!(
        metric_sample(&text, &format!("lb_worker_upstream_pool_misses_total{w}")),
        1.0
    );
    assert_eq!(
        metric_sample(&text, &format!("lb_worker_upstream_pool_hits_total{w}")),
        24.0
    );
    let target = format!(
        "lb_target_requests_total{{path=\"/\",target=\"{}\"}}",
        backend.addr()
    );
    assert_eq!(metric_sample(&text, &target), 25.0);
}

#[test]
fn responses_are_counted_by_route_target_and_status_class() {
    let ok = Backend::start("ok");
    let missing = Backend::start_with(
        "missing",
        Reply::Fixed {
            status: 404,
            headers: Vec::new(),
            body: b"no such thing".to_vec(),
        },
    );
    let dead = refused_addr();
    let lb = lb(
        1,
        &[
            ("/a", &[ok.addr(), missing.addr()]),
            ("/b", &[ok.addr()]),
            ("/dead", &[dead]),
        ],
        &[],
    );
    let mut client = Conn::open(lb.addr());
    // Round robin over /a: ok, missing, ok, missing, ok, missing.
    let statuses: Vec<u16> = (0..6).map(|_| client.get("/a/x").status).collect();
    assert_eq!(statuses, [200, 404, 200, 404, 200, 404]);
    assert_eq!(served_by(&client.get("/b")), "ok");
    // lb's own 502 for a target that refuses counts on that target.
    assert_eq!(Conn::open(lb.addr()).get("/dead").status, 502);

    let series = |path: &str, target: SocketAddr, class: &str| {
        format!(
            "lb_target_responses_total{{path=\"{path}\",target=\"{target}\",class=\"{class}\"}}"
        )
    };
    let text = lb.admin().call("GET", "/metrics", b"").text();
    let expected = [
        ("/a", ok.addr(), "2xx", 3.0),
        ("/a", ok.addr(), "4xx", 0.0),
        ("/a", missing.addr(), "2xx", 0.0),
        ("/a", missing.addr(), "4xx", 3.0),
        ("/b", ok.addr(), "2xx", 1.0),
        ("/b", ok.addr(), "5xx", 0.0),
        ("/dead", dead, "5xx", 1.0),
        ("/dead", dead, "2xx", 0.0),
    ];
    for (path, target, class, n) in expected {
        assert_eq!(
            metric_sample(&text, &series(path, target, class)),
            n,
            "{path} {target} {class}"
        );
    }
    // The same counts in `GET /targets`.
    let targets = lb.admin().call("GET", "/targets", b"").json();
    let row = |path: &str, port: u16| {
        targets
            .as_array()
            .and_then(|rows| {
                rows.iter()
                    .find(|t| t["path"] == path && t["port"] == port)
                    .cloned()
            })
            .unwrap_or_else(|| panic!("{path} :{port} missing in {targets}"))
    };
    let a_missing = row("/a", missing.port());
    assert_eq!(a_missing["responses"]["4xx"], 3, "{a_missing}");
    assert_eq!(a_missing["responses"]["2xx"], 0, "{a_missing}");
    assert_eq!(row("/dead", dead.port())["responses"]["5xx"], 1);
}

/// `promtool check metrics` (Debian package `prometheus`) finds nothing to say about what lb
/// serves: every family has HELP and TYPE, names and units follow the conventions. Without
/// promtool the test fails under `CI=true` (`scripts/test.sh` installs it) and says it did not
/// run otherwise.
#[test]
fn promtool_finds_the_metrics_clean_and_the_standard_series_are_there() {
    let backend = Backend::start("p");
    let lb = lb(2, &[("/", &[backend.addr()])], &[]);
    assert_eq!(served_by(&lb_testkit::get(lb.addr(), "/x")), "p");
    let text = lb.admin().call("GET", "/metrics", b"").text();
    for series in [
        "lb_build_info{version=\"",
        "process_cpu_seconds_total ",
        "process_start_time_seconds ",
        "process_resident_memory_bytes ",
        "process_virtual_memory_bytes ",
        "process_open_fds ",
        "process_max_fds ",
    ] {
        assert!(text.contains(series), "{series} missing from\n{text}");
    }
    let started = metric_sample(&text, "process_start_time_seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    assert!(
        (now - 600.0..=now + 1.0).contains(&started),
        "started at {started}, now {now}"
    );
    let Some(said) = lb_testkit::tool::promtool_check(&text) else {
        return;
    };
    assert!(said.is_empty(), "promtool: {said}\n{text}");
}

/// Request durations by route prefix and status class, summed over workers: the label is the
/// prefix, never the path, and a request no prefix matched has no route series.
#[test]
fn request_durations_are_counted_by_route_and_status_class() {
    let backend = Backend::start("r");
    let dead = refused_addr();
    let lb = lb(2, &[("/api", &[backend.addr()]), ("/dead", &[dead])], &[]);
    for path in ["/api/a", "/api/b?q=1", "/api"] {
        assert_eq!(served_by(&lb_testkit::get(lb.addr(), path)), "r");
    }
    assert_eq!(lb_testkit::get(lb.addr(), "/dead/x").status, 502);
    assert_eq!(lb_testkit::get(lb.addr(), "/nowhere").status, 503);
    let family = "lb_route_request_duration_seconds";
    let api = format!("{family}_count{{route=\"/api\",class=\"2xx\"}}");
    let dead_5xx = format!("{family}_count{{route=\"/dead\",class=\"5xx\"}}");
    // Counted when the answer has been written, a moment after the client may have read it,
    // and by whichever of the two workers served it: wait for both counts.
    let text = poll_until(WAIT, "the /api and /dead requests counted", || {
        let text = lb.admin().call("GET", "/metrics", b"").text();
        let counted = (
            find_metric_sample(&text, &api).unwrap_or(0.0),
            find_metric_sample(&text, &dead_5xx).unwrap_or(0.0),
        );
        if counted == (3.0, 1.0) {
            Ok(text)
        } else {
            Err(counted)
        }
    });
    let inf = format!("{family}_bucket{{route=\"/api\",class=\"2xx\",le=\"+Inf\"}}");
    assert_eq!(metric_sample(&text, &inf), 3.0, "{text}");
    let routes: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with(&format!("{family}_count")))
        .collect();
    assert_eq!(
        routes.len(),
        2,
        "only the two prefixes that answered: {routes:#?}"
    );
}
