//! HTTP/2 over TLS (ALPN `h2`), driven by a client that is not ours: curl. Each stream goes
//! through the same exchange as HTTP/1.1 over TLS: prefix stripped, `X-Forwarded-Proto: https`,
//! round robin counted together with HTTP/1.1 requests.

use super::{client, make_cert, tls_lb, tls_open, BOTH};
use crate::served_by;
use lb_testkit::{Backend, ScratchDir};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

/// `curl --http2` to `https://a.test:PORT/...` resolved to `addr`, certificate not verified (it
/// is self-signed); prints the body, then the HTTP version and the status.
fn curl_h2(curl: &Path, addr: SocketAddr, path: &str) -> String {
    let port = addr.port();
    let out = std::process::Command::new(curl)
        .args([
            "-sk",
            "--http2",
            "--max-time",
            "20",
            "-w",
            "\n%{http_version} %{http_code}",
        ])
        .arg("--resolve")
        .arg(format!("a.test:{port}:{}", addr.ip()))
        .arg(format!("https://a.test:{port}{path}"))
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn alpn_h2_serves_streams_over_tls_with_x_forwarded_proto_https() {
    let Some(curl) = lb_testkit::tool::require("curl", "curl") else {
        return;
    };
    let dir = ScratchDir::new("tls-h2");
    let cert = make_cert(&dir, "a", &["a.test"]);
    let backend = Backend::start("h2-origin");
    let lb = tls_lb(1, &[("/api", &[backend.addr()])], &[&cert], &[]);
    let text = curl_h2(&curl, lb.tls_addr(), "/api/x");
    assert_eq!(text, "h2-origin\n2 200", "{text}");
    let seen = backend.last_request();
    assert_eq!(seen.target, "/x", "the prefix is stripped per stream");
    assert_eq!(
        seen.headers.get_all("x-forwarded-proto"),
        vec!["https"],
        "an HTTP/2 stream over TLS is https to the upstream"
    );
    assert_eq!(
        seen.header("host"),
        Some(format!("a.test:{}", lb.tls_addr().port()).as_str()),
        ":authority becomes Host"
    );
}

/// Round robin counts HTTP/2-over-TLS streams and HTTP/1.1-over-TLS requests together.
#[test]
fn round_robin_counts_h2_and_http11_over_tls_together() {
    let Some(curl) = lb_testkit::tool::require("curl", "curl") else {
        return;
    };
    let dir = ScratchDir::new("tls-h2-rr");
    let cert = make_cert(&dir, "a", &["a.test"]);
    let backends = [
        Backend::start("a"),
        Backend::start("b"),
        Backend::start("c"),
    ];
    let addrs: Vec<SocketAddr> = backends.iter().map(Backend::addr).collect();
    let lb = tls_lb(1, &[("/", &addrs)], &[&cert], &[]);
    let mut h1 = tls_open(lb.tls_addr(), &client(BOTH, &["http/1.1"]), Some("a.test"));
    let mut counts: HashMap<String, usize> = HashMap::new();
    for round in 0..6 {
        let name = if round % 2 == 0 {
            let text = curl_h2(&curl, lb.tls_addr(), "/");
            let (body, status) = text.rsplit_once('\n').expect("curl's status line");
            assert_eq!(status, "2 200", "{text}");
            body.to_string()
        } else {
            served_by(&h1.get("/")).to_string()
        };
        *counts.entry(name).or_default() += 1;
    }
    for b in &backends {
        assert_eq!(counts.get(b.name()), Some(&2), "{counts:?}");
    }
}

/// h2spec's 146 cases over TLS (ALPN `h2`), all passed and none skipped.
#[test]
fn h2spec_passes_every_case_over_tls() {
    let Some(h2spec) = crate::http2::conformance::h2spec() else {
        return;
    };
    let dir = ScratchDir::new("tls-h2spec");
    let cert = make_cert(&dir, "a", &["a.test"]);
    // The origin's body must be at least 5 bytes, or case 6.9.2/2 is skipped.
    let origin = Backend::start("h2spec-origin");
    let lb = tls_lb(1, &[("/", &[origin.addr()])], &[&cert], &[]);
    crate::http2::conformance::assert_h2spec_passes_all(&h2spec, lb.tls_addr().port(), true);
}
