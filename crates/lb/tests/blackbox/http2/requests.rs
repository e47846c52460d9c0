//! Each HTTP/2 stream is one request forwarded as HTTP/1.1: what the backend gets (target with the
//! prefix stripped, `:authority` as Host, cookie crumbs joined, the body framed by its length or
//! chunked) and what the client gets back; round robin counting both protocols together.

use crate::{addrs, backends, lb};
use lb_testkit::h2_client::http::Method;
use lb_testkit::h2_client::{connect, request, runtime, send, tokio, Bytes};
use lb_testkit::{request as h1_request, Backend, Checksum, Conn, Framing, Reply};
use std::collections::BTreeMap;

#[test]
fn get_over_h2c_is_forwarded_as_http11_with_the_prefix_stripped() {
    let backend = Backend::start("a");
    let lb = lb(1, &[("/api", &[backend.addr()])], &[]);
    let rt = runtime();
    let r = rt.block_on(async {
        let mut client = connect(lb.addr()).await;
        send(
            &mut client,
            request(Method::GET, "example.com", "/api/x?q=1"),
            None,
        )
        .await
    });
    let r = r.expect("response");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "a");
    assert_eq!(r.header("x-backend"), Some("a"));
    assert_eq!(r.header("via"), Some("1.1 lb"));
    let seen = backend.last_request();
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.target, "/x?q=1");
    assert_eq!(seen.minor_version, 1);
    assert_eq!(seen.header("host"), Some("example.com"));
    assert_eq!(seen.header("x-forwarded-host"), Some("example.com"));
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(seen.header("via"), Some("2 lb"));
    assert_eq!(seen.framing, Framing::Empty);
}

#[test]
fn post_bodies_keep_their_length_or_go_chunked() {
    let backend = Backend::start("a");
    let lb = lb(1, &[("/", &[backend.addr()])], &[]);
    let rt = runtime();
    rt.block_on(async {
        let mut client = connect(lb.addr()).await;
        let mut sized = request(Method::POST, "h", "/sized");
        sized.headers_mut().insert("content-length", 5.into());
        let r = send(&mut client, sized, Some(Bytes::from_static(b"hello")))
            .await
            .expect("sized POST");
        assert_eq!(r.status, 200);
        let streamed = request(Method::POST, "h", "/streamed");
        let r = send(&mut client, streamed, Some(Bytes::from_static(b"world!")))
            .await
            .expect("streamed POST");
        assert_eq!(r.status, 200);
    });
    let seen = backend.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].framing, Framing::Length(5));
    assert_eq!(seen[0].body, b"hello");
    assert_eq!(seen[1].framing, Framing::Chunked);
    assert_eq!(seen[1].body, b"world!");
    assert_eq!(seen[1].body_checksum, Checksum::of(b"world!"));
}

#[test]
fn cookie_crumbs_are_joined_and_authority_replaces_host() {
    let backend = Backend::start("a");
    let lb = lb(1, &[("/", &[backend.addr()])], &[]);
    let rt = runtime();
    rt.block_on(async {
        let mut client = connect(lb.addr()).await;
        let mut req = request(Method::GET, "front.example", "/");
        let fields = req.headers_mut();
        fields.append("cookie", "a=1".parse().unwrap());
        fields.append("cookie", "b=2".parse().unwrap());
        fields.append("cookie", "c=3".parse().unwrap());
        fields.insert("host", "ignored.example".parse().unwrap());
        let r = send(&mut client, req, None).await.expect("response");
        assert_eq!(r.status, 200);
    });
    let seen = backend.last_request();
    assert_eq!(seen.headers.get_all("cookie"), ["a=1; b=2; c=3"]);
    assert_eq!(seen.headers.get_all("host"), ["front.example"]);
}

/// Both protocols share each route's one cursor: whatever mix of HTTP/1.1 requests and HTTP/2
/// streams arrives, over both workers, every target gets exactly its share.
#[test]
fn round_robin_counts_http11_and_http2_requests_together() {
    let backends = backends(&["a", "b", "c"]);
    let lb = lb(2, &[("/rr", &addrs(&backends))], &[]);
    let rt = runtime();
    let mut seen = BTreeMap::new();
    const ROUNDS: usize = 20;
    for round in 0..ROUNDS {
        // One HTTP/1.1 request on a fresh connection, then two concurrent streams on a fresh
        // HTTP/2 connection (fresh connections land on either worker).
        let mut conn = Conn::open(lb.addr());
        let r = conn.request(&h1_request("GET", &format!("/rr/h1/{round}"), &[], b""));
        *seen
            .entry(r.header("X-Backend").unwrap_or("?").to_string())
            .or_insert(0) += 1;
        let names = rt.block_on(async {
            let client = connect(lb.addr()).await;
            let (mut one, mut two) = (client.clone(), client);
            let (x, y) = tokio::join!(
                send(
                    &mut one,
                    request(Method::GET, "h", &format!("/rr/h2/{round}/1")),
                    None
                ),
                send(
                    &mut two,
                    request(Method::GET, "h", &format!("/rr/h2/{round}/2")),
                    None
                ),
            );
            [x.expect("stream 1").text(), y.expect("stream 2").text()]
        });
        for name in names {
            *seen.entry(name).or_insert(0) += 1;
        }
    }
    let want: BTreeMap<String, usize> = ["a", "b", "c"]
        .iter()
        .map(|n| (n.to_string(), ROUNDS))
        .collect();
    assert_eq!(seen, want);
    for backend in &backends {
        assert_eq!(backend.request_count(), ROUNDS);
    }
}

#[test]
fn head_gets_the_length_and_no_body() {
    let backend = Backend::start_with(
        "fixed",
        Reply::Fixed {
            status: 200,
            headers: vec![],
            body: b"hello".to_vec(),
        },
    );
    let lb = lb(1, &[("/", &[backend.addr()])], &[]);
    let rt = runtime();
    let r = rt.block_on(async {
        let mut client = connect(lb.addr()).await;
        send(&mut client, request(Method::HEAD, "h", "/"), None).await
    });
    let r = r.expect("response");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("5"));
    assert!(r.checksum.is_empty());
    assert_eq!(backend.last_request().method, "HEAD");
}

/// `expect: 100-continue` on a stream goes upstream like an HTTP/1.1 client's, and the body
/// follows whatever interim answer comes first.
#[test]
fn expect_continue_is_honoured_on_a_stream() {
    let backend = Backend::start("a");
    let lb = lb(1, &[("/", &[backend.addr()])], &[]);
    let rt = runtime();
    let r = rt.block_on(async {
        let mut client = connect(lb.addr()).await;
        let mut req = request(Method::POST, "h", "/");
        let fields = req.headers_mut();
        fields.insert("expect", "100-continue".parse().unwrap());
        fields.insert("content-length", 4.into());
        send(&mut client, req, Some(Bytes::from_static(b"body"))).await
    });
    assert_eq!(r.expect("response").status, 200);
    let seen = backend.last_request();
    assert_eq!(seen.header("expect"), Some("100-continue"));
    assert_eq!(seen.body, b"body");
}

#[test]
fn too_many_fields_are_431_on_that_stream() {
    let backend = Backend::start("a");
    let lb = lb(1, &[("/", &[backend.addr()])], &[]);
    let rt = runtime();
    let r = rt.block_on(async {
        let mut client = connect(lb.addr()).await;
        let mut req = request(Method::GET, "h", "/");
        for i in 0..200 {
            req.headers_mut().append(
                format!("x-f{i}")
                    .as_str()
                    .parse::<lb_testkit::h2_client::http::HeaderName>()
                    .unwrap(),
                "v".parse().unwrap(),
            );
        }
        let r = send(&mut client, req, None).await.expect("431");
        let ok = send(&mut client, request(Method::GET, "h", "/ok"), None).await;
        (r.status, ok.expect("the next stream").status)
    });
    assert_eq!(r, (431, 200));
    assert_eq!(backend.request_count(), 1);
}

/// A client that is not ours: curl with prior knowledge, its request and lb's answer in HTTP/2.
#[test]
fn curl_with_prior_knowledge_is_served_over_http2() {
    let Some(curl) = lb_testkit::tool::require("curl", "curl") else {
        return;
    };
    let backend = Backend::start("curl-origin");
    let lb = lb(1, &[("/api", &[backend.addr()])], &[]);
    let out = std::process::Command::new(curl)
        .args([
            "-s",
            "--http2-prior-knowledge",
            "-w",
            "\n%{http_version} %{http_code}",
        ])
        .arg(format!("http://{}/api/x", lb.addr()))
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text, "curl-origin\n2 200", "{text}");
    assert_eq!(backend.last_request().target, "/x");
}

/// A stream's `:authority` picks its virtual host like an HTTP/1.1 `Host`: the host-bound route
/// for `api.test`, the host-less one for any other name.
#[test]
fn authority_picks_the_virtual_host_of_a_stream() {
    let Some(curl) = lb_testkit::tool::require("curl", "curl") else {
        return;
    };
    let (api, plain) = (Backend::start("vh-api"), Backend::start("vh-plain"));
    let lb = lb(1, &[], &[]);
    let bound = format!(
        r#"{{"host":"api.test","path":"/","ip":"127.0.0.1","port":{}}}"#,
        api.port()
    );
    assert_eq!(lb.admin().register_raw(&bound).status, 201);
    assert_eq!(lb.admin().register("/", plain.addr()).status, 201);
    let port = lb.addr().port();
    for (name, want) in [("api.test", "vh-api"), ("other.test", "vh-plain")] {
        let out = std::process::Command::new(&curl)
            .args(["-s", "--http2-prior-knowledge", "-w", "\n%{http_version}"])
            .arg("--connect-to")
            .arg(format!("{name}:{port}:127.0.0.1:{port}"))
            .arg(format!("http://{name}:{port}/x"))
            .output()
            .expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(text, format!("{want}\n2"), "{name}: {text}");
    }
}
