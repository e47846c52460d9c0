//! What an HTTP/2 connection leaves behind: one access log line per stream, metrics by protocol,
//! and a GOAWAY when it stays idle.

use crate::{lb, WAIT};
use lb_testkit::h2_client::http::Method;
use lb_testkit::h2_client::{connect, goaway_code, request, runtime, send, tokio, RawH2};
use lb_testkit::{get, Backend};
use std::time::{Duration, Instant};

#[test]
fn each_stream_gets_one_access_log_line() {
    let backend = Backend::start("logged");
    let lb = lb(1, &[("/app", &[backend.addr()])], &["--access-log"]);
    let rt = runtime();
    rt.block_on(async {
        let client = connect(lb.addr()).await;
        let (mut a, mut b) = (client.clone(), client);
        let (x, y) = tokio::join!(
            send(&mut a, request(Method::GET, "h", "/app/one"), None),
            send(&mut b, request(Method::GET, "h", "/nowhere"), None),
        );
        assert_eq!(x.expect("one").status, 200);
        assert_eq!(y.expect("two").status, 503);
    });
    let proxied = format!(
        "\"GET /app/one\" status=200 target={} bytes=6 bytes_up=0 duration_ms=",
        backend.addr()
    );
    let refused = "\"GET /nowhere\" status=503 target=- bytes=";
    let log = lb.wait_for_stderr(WAIT, &[&proxied, refused]);
    assert_eq!(log.matches(" status=").count(), 2, "{log}");
}

#[test]
fn metrics_count_http2_connections_and_streams_apart() {
    let backend = Backend::start("a");
    let lb = lb(1, &[("/", &[backend.addr()])], &[]);
    assert_eq!(get(lb.addr(), "/h1").status, 200);
    let rt = runtime();
    rt.block_on(async {
        let mut client = connect(lb.addr()).await;
        for path in ["/s1", "/s2", "/s3"] {
            let r = send(&mut client, request(Method::GET, "h", path), None).await;
            assert_eq!(r.expect("stream").status, 200);
        }
    });
    let admin = lb.admin();
    let series = |name: &str| admin.metric(&format!("{name}{{worker=\"0\"}}"));
    assert_eq!(series("lb_worker_http2_streams_total"), 3.0);
    assert_eq!(series("lb_worker_requests_total"), 4.0);
    assert_eq!(series("lb_worker_http2_connections_accepted_total"), 1.0);
    assert_eq!(series("lb_worker_connections_accepted_total"), 2.0);
}

/// With no stream open for the idle timeout, lb says GOAWAY (NO_ERROR) and closes.
#[test]
fn an_idle_connection_gets_goaway_and_closes() {
    let backend = Backend::start("a");
    let lb = lb(1, &[("/", &[backend.addr()])], &["--idle-timeout", "300ms"]);
    let opened = Instant::now();
    let mut raw = RawH2::connect(lb.addr());
    let goaway = raw.until_goaway().expect("a GOAWAY");
    assert!(
        opened.elapsed() >= Duration::from_millis(300),
        "{:?}",
        opened.elapsed()
    );
    assert_eq!(goaway_code(&goaway), Some(0));
    while raw.read_frame().is_some() {}
    assert!(
        opened.elapsed() < Duration::from_secs(30),
        "closed after {:?}",
        opened.elapsed()
    );
}
