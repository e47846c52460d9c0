//! `/metrics` (issue 5, "Observability"): per-worker counters summed by whoever scrapes, a
//! latency histogram, open upstream connections, registry and target series.

use crate::{lb, served_by, WAIT};
use lb_testkit::{poll_until, Backend, Conn};

/// The value of the one sample named exactly `series` (name and labels) in `text`.
fn sample(text: &str, series: &str) -> f64 {
    let values: Vec<f64> = text
        .lines()
        .filter_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .collect();
    assert_eq!(values.len(), 1, "{series} in:\n{text}");
    values[0]
}

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
        let count = sample(&text, &format!("lb_request_duration_seconds_count{w}"));
        if count == 25.0 {
            Ok(text)
        } else {
            Err(count)
        }
    });
    assert_eq!(sample(&text, &format!("lb_worker_requests_total{w}")), 25.0);
    assert_eq!(
        sample(&text, &format!("lb_worker_connections_accepted_total{w}")),
        1.0
    );
    assert_eq!(
        sample(&text, &format!("lb_worker_connections_active{w}")),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "lb_worker_responses_total{worker=\"0\",class=\"2xx\"}"
        ),
        25.0
    );
    assert_eq!(
        sample(&text, &format!("lb_request_duration_seconds_count{w}")),
        25.0
    );
    assert_eq!(
        sample(
            &text,
            "lb_request_duration_seconds_bucket{worker=\"0\",le=\"+Inf\"}"
        ),
        25.0
    );
    // Sequential keep-alive requests share one pooled upstream connection, still open.
    assert_eq!(
        sample(&text, &format!("lb_worker_upstream_connections_open{w}")),
        1.0
    );
    assert_eq!(
        sample(&text, &format!("lb_worker_upstream_pool_misses_total{w}")),
        1.0
    );
    assert_eq!(
        sample(&text, &format!("lb_worker_upstream_pool_hits_total{w}")),
        24.0
    );
    let target = format!(
        "lb_target_requests_total{{path=\"/\",target=\"{}\"}}",
        backend.addr()
    );
    assert_eq!(sample(&text, &target), 25.0);
}
