//! The control plane over real sockets: every endpoint, every refusal, keep-alive and shutdown.

// A failed step should fail the test loudly; clippy's test exemption does not reach helpers.
#![allow(clippy::unwrap_used)]

use lb_admin::{
    ControlPlane, CountsSource, DataPlaneCounts, MetricsSource, PersistHook, WorkerCounts,
};
use lb_registry::{Export, Reconfiguration, Registry, RouteOptions, TargetInfo};
use lb_testkit::tokio_conn::{AsyncConn, AsyncReply, ServerTask};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpStream;

struct Admin {
    server: ServerTask,
    registry: Arc<Registry>,
}

impl Admin {
    async fn start() -> Admin {
        Admin::start_with(|plane| plane).await
    }

    /// Starts with a [`ControlPlane`] adjusted by `configure` (token, persistence hook).
    async fn start_with(configure: impl FnOnce(ControlPlane) -> ControlPlane) -> Admin {
        let registry = Arc::new(Registry::new(2));
        let metrics: MetricsSource =
            Arc::new(|out: &mut String| out.push_str("lb_worker_requests_total{worker=\"0\"} 7\n"));
        let plane = configure(ControlPlane::new(registry.clone(), metrics));
        let server = ServerTask::spawn(|listener, shutdown| {
            lb_admin::serve_plane(listener, plane, shutdown)
        })
        .await;
        Admin { server, registry }
    }

    /// Starts with `hook` as the persistence hook.
    async fn start_saving(hook: PersistHook) -> Admin {
        Admin::start_with(|mut plane| {
            plane.persist = Some(hook);
            plane
        })
        .await
    }

    /// Stops the server and waits until `serve` has returned.
    async fn shutdown(self) {
        self.server.shutdown().await;
    }

    async fn connect(&self) -> AsyncConn {
        self.server.connect().await
    }

    /// One request on a fresh connection.
    async fn send(&self, raw: &[u8]) -> AsyncReply {
        let mut client = self.connect().await;
        client.send(raw).await;
        client.reply(false).await
    }

    async fn post(&self, path: &str, body: &str) -> AsyncReply {
        self.send(&post(path, body)).await
    }

    async fn get(&self, path: &str) -> AsyncReply {
        self.send(&get(path)).await
    }
}

/// A persistence hook that records how many targets each save held, and fails while `fail`
/// is set.
fn counting_hook(
    fail: Arc<std::sync::atomic::AtomicBool>,
) -> (PersistHook, Arc<parking_lot::Mutex<Vec<usize>>>) {
    let saved: Arc<parking_lot::Mutex<Vec<usize>>> = Arc::default();
    let hook: PersistHook = {
        let saved = saved.clone();
        Arc::new(move |export: &Export| {
            if fail.load(std::sync::atomic::Ordering::SeqCst) {
                return Err("disk full".to_string());
            }
            saved
                .lock()
                .push(export.routes.iter().map(|r| r.targets.len()).sum());
            Ok(())
        })
    };
    (hook, saved)
}

/// What the control plane's answers carry besides what [`AsyncReply`] reads.
trait ApiReply {
    /// The body as JSON, which the content type must announce.
    fn json(&self) -> Value;
    /// The `error` sentence of a JSON error answer.
    fn error(&self) -> String;
}

impl ApiReply for AsyncReply {
    fn json(&self) -> Value {
        assert_eq!(self.header("content-type"), Some("application/json"));
        serde_json::from_slice(&self.body).unwrap()
    }

    fn error(&self) -> String {
        match self.json() {
            Value::Object(map) if map.len() == 1 => map["error"].as_str().unwrap().to_string(),
            other => panic!("not an error body: {other}"),
        }
    }
}

fn post(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: admin\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: admin\r\n\r\n").into_bytes()
}

fn target(path: &str, ip: &str, port: u16) -> String {
    json!({ "path": path, "ip": ip, "port": port }).to_string()
}

#[tokio::test]
async fn register_deregister_round_trip() {
    let admin = Admin::start().await;
    let body = target("/test", "10.0.0.5", 9001);

    let reply = admin.post("/register", &body).await;
    assert_eq!(reply.status, 201);
    assert_eq!(
        reply.json(),
        json!({"path":"/test","ip":"10.0.0.5","port":9001,"status":"registered"})
    );
    let reply = admin.post("/register", &body).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json(),
        json!({"path":"/test","ip":"10.0.0.5","port":9001,"status":"already registered"})
    );
    // A trailing `/` names the same prefix.
    let reply = admin
        .post("/register", &target("/test/", "10.0.0.5", 9001))
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        admin.registry.targets(),
        vec![TargetInfo {
            host: None,
            path: "/test".into(),
            addr: "10.0.0.5:9001".parse().unwrap(),
            requests: 0,
            in_flight: 0,
            responses: [0; 5],
            healthy: true,
            last_check: None,
            last_check_at: None,
            weight: 1,
            lease: None,
        }]
    );

    let reply = admin.post("/deregister", &body).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json(),
        json!({"path":"/test","ip":"10.0.0.5","port":9001,"status":"deregistered"})
    );
    let reply = admin.post("/deregister", &body).await;
    assert_eq!(reply.status, 404);
    assert!(reply.error().contains("not registered"));
    assert!(admin.registry.targets().is_empty());
    admin.shutdown().await;
}

#[tokio::test]
async fn ipv6_targets_are_accepted() {
    let admin = Admin::start().await;
    let reply = admin.post("/register", &target("/v6", "::1", 80)).await;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.json()["ip"], "::1");
    assert_eq!(
        admin.registry.targets()[0].addr,
        "[::1]:80".parse::<SocketAddr>().unwrap()
    );
    admin.shutdown().await;
}

#[tokio::test]
async fn invalid_bodies_are_400_and_change_nothing() {
    let admin = Admin::start().await;
    assert_eq!(
        admin
            .post("/register", &target("/keep", "10.0.0.1", 80))
            .await
            .status,
        201
    );
    let before = admin.registry.targets();
    let generation = admin.registry.generation();

    let bodies = [
        "",
        "   ",
        "not json",
        "{",
        "[\"/a\",\"10.0.0.9\",80]",
        r#"{"ip":"10.0.0.9","port":80}"#,
        r#"{"path":"/a","port":80}"#,
        r#"{"path":"/a","ip":"10.0.0.9"}"#,
        r#"{"path":"/a","ip":"10.0.0.9","port":80,"weight":0}"#,
        r#"{"path":"/a","ip":"10.0.0.9","port":80,"weight":1001}"#,
        r#"{"path":"/a","ip":"10.0.0.9","port":80,"weight":2.5}"#,
        r#"{"path":"/a","ip":"10.0.0.9","port":80,"weight":"5"}"#,
        r#"{"path":"/a","ip":"10.0.0.9","port":80,"ttl":0}"#,
        r#"{"path":"/a","ip":"10.0.0.9","port":80,"ttl":86401}"#,
        r#"{"path":"/a","ip":"10.0.0.9","port":80,"ttl":"30s"}"#,
        r#"{"path":"/a","ip":"10.0.0.9","port":80,"ttl":-5}"#,
        r#"{"path":"/a","ip":"10.0.0.9","port":80,"wieght":5}"#,
        r#"{"path":"/a","ip":"10.0.0.300","port":80}"#,
        r#"{"path":"/a","ip":"example.com","port":80}"#,
        r#"{"path":"/a","ip":"10.0.0.9:80","port":80}"#,
        r#"{"path":"/a","ip":"10.0.0.9","port":0}"#,
        r#"{"path":"/a","ip":"10.0.0.9","port":70000}"#,
        r#"{"path":"/a","ip":"10.0.0.9","port":-1}"#,
        r#"{"path":"/a","ip":"10.0.0.9","port":1.5}"#,
        r#"{"path":"/a","ip":"10.0.0.9","port":"80"}"#,
        r#"{"path":"a","ip":"10.0.0.9","port":80}"#,
        r#"{"path":"","ip":"10.0.0.9","port":80}"#,
        r#"{"path":"/a?b=1","ip":"10.0.0.9","port":80}"#,
        r#"{"path":"/a#b","ip":"10.0.0.9","port":80}"#,
        r#"{"path":"/a b","ip":"10.0.0.9","port":80}"#,
        r#"{"path":"/a\tb","ip":"10.0.0.9","port":80}"#,
        r#"{"path":"/a\u0000","ip":"10.0.0.9","port":80}"#,
        r#"{"path":"/keep","ip":"10.0.0.1","port":80,"path":"/x"}"#,
    ];
    for endpoint in ["/register", "/deregister"] {
        for body in bodies {
            let reply = admin.post(endpoint, body).await;
            assert_eq!(reply.status, 400, "{endpoint} {body:?}: {reply:?}");
            let error = reply.error();
            assert!(
                !error.is_empty() && !error.contains('\n'),
                "{body:?}: {error:?}"
            );
        }
    }
    // A valid literal that is not a host address is refused by the registry.
    let reply = admin.post("/register", &target("/a", "0.0.0.0", 80)).await;
    assert_eq!(reply.status, 400);
    assert!(reply.error().contains("not a host address"));
    assert_eq!(admin.registry.targets(), before);
    assert_eq!(admin.registry.generation(), generation);
    admin.shutdown().await;
}

#[tokio::test]
async fn unframeable_requests_are_400_then_closed() {
    let admin = Admin::start().await;
    let before = admin.registry.targets();
    let body = target("/a", "10.0.0.9", 80);

    // Body over 64 KiB: refused from the head, even though the client sends all of it.
    let big = format!(
        "{{\"path\":\"/a\",\"ip\":\"10.0.0.9\",\"port\":80,\"x\":\"{}\"}}",
        "a".repeat(70_000)
    );
    let mut client = admin.connect().await;
    client.send(&post("/register", &big)).await;
    let reply = client.reply(false).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.error(), "body over 64 KiB");
    assert_eq!(reply.header("connection"), Some("close"));
    client.assert_closed().await;

    let chunked = format!(
        "POST /register HTTP/1.1\r\nHost: admin\r\nTransfer-Encoding: chunked\r\n\r\n\
         {:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    let mut client = admin.connect().await;
    client.send(chunked.as_bytes()).await;
    let reply = client.reply(false).await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.error(),
        "chunked request bodies are not supported; send Content-Length"
    );
    client.assert_closed().await;

    for raw in [
        "POST /register HTTP/1.1\r\nHost: admin\r\nContent-Length: x\r\n\r\n".to_string(),
        "POST /register HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}".to_string(),
        "GET /targets HTTP/1.1\r\nHost admin\r\n\r\n".to_string(),
        format!(
            "POST /register HTTP/1.1\r\nHost: admin\r\nContent-Length: {}\r\n\
             Content-Length: 1\r\n\r\n{body}",
            body.len()
        ),
    ] {
        let mut client = admin.connect().await;
        client.send(raw.as_bytes()).await;
        let reply = client.reply(false).await;
        assert_eq!(reply.status, 400, "{raw:?}");
        reply.error();
        client.assert_closed().await;
    }
    assert_eq!(admin.registry.targets(), before);
    admin.shutdown().await;
}

#[tokio::test]
async fn oversized_head_is_431_then_closed() {
    let admin = Admin::start().await;
    let mut client = admin.connect().await;
    let raw = format!(
        "GET /targets HTTP/1.1\r\nHost: admin\r\nX-Big: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    client.send(raw.as_bytes()).await;
    let reply = client.reply(false).await;
    assert_eq!(reply.status, 431);
    reply.error();
    client.assert_closed().await;
    admin.shutdown().await;
}

#[tokio::test]
async fn targets_lists_every_target_in_order() {
    let admin = Admin::start().await;
    let reply = admin.get("/targets").await;
    assert_eq!((reply.status, reply.json()), (200, json!([])));
    for (path, ip, port) in [
        ("/b", "10.0.0.2", 2),
        ("/a", "10.0.0.1", 1),
        ("/b", "::1", 3),
    ] {
        assert_eq!(
            admin
                .post("/register", &target(path, ip, port))
                .await
                .status,
            201
        );
    }
    let reply = admin.get("/targets?verbose=1").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json(),
        json!([
            {"path":"/a","host":null,"ip":"10.0.0.1","port":1,"weight":1,"healthy":true,
             "last_check":null,"requests":0,"responses":{"1xx":0,"2xx":0,"3xx":0,"4xx":0,"5xx":0},
             "ttl_s":null,"ttl_left_s":null},
            {"path":"/b","host":null,"ip":"10.0.0.2","port":2,"weight":1,"healthy":true,
             "last_check":null,"requests":0,"responses":{"1xx":0,"2xx":0,"3xx":0,"4xx":0,"5xx":0},
             "ttl_s":null,"ttl_left_s":null},
            {"path":"/b","host":null,"ip":"::1","port":3,"weight":1,"healthy":true,
             "last_check":null,"requests":0,"responses":{"1xx":0,"2xx":0,"3xx":0,"4xx":0,"5xx":0},
             "ttl_s":null,"ttl_left_s":null},
        ])
    );
    // Keys come in the SPEC's order, not sorted.
    assert!(
        String::from_utf8_lossy(&reply.body).starts_with(
            r#"[{"path":"/a","host":null,"ip":"10.0.0.1","port":1,"weight":1,"healthy":true,"requests":0,"last_check":null,"responses":{"1xx":0,"2xx":0,"3xx":0,"4xx":0,"5xx":0},"ttl_s":null,"ttl_left_s":null},"#
        ),
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    admin.shutdown().await;
}

#[tokio::test]
async fn healthz_and_metrics() {
    let admin = Admin::start().await;
    let reply = admin.get("/healthz").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("text/plain"));
    assert_eq!(reply.text(), "ok");

    admin
        .post("/register", &target("/test", "10.0.0.5", 9001))
        .await;
    admin
        .post("/register", &target("/test", "10.0.0.6", 9001))
        .await;
    let reply = admin.get("/metrics").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; version=0.0.4")
    );
    let text = reply.text();
    for line in [
        "# TYPE lb_registry_generation gauge",
        "lb_registry_generation 2",
        "# TYPE lb_targets gauge",
        "lb_targets 2",
        "# TYPE lb_target_requests_total counter",
        "lb_target_requests_total{path=\"/test\",target=\"10.0.0.5:9001\"} 0",
        "lb_target_requests_total{path=\"/test\",target=\"10.0.0.6:9001\"} 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(
        text.ends_with("\nlb_worker_requests_total{worker=\"0\"} 7\n"),
        "{text}"
    );
    admin.shutdown().await;
}

#[tokio::test]
async fn unknown_endpoints_and_wrong_methods() {
    let admin = Admin::start().await;
    for path in [
        "/nope",
        "/register/x",
        "/targetsx",
        "/stats/x",
        "/index.html",
    ] {
        let reply = admin.get(path).await;
        assert_eq!(reply.status, 404, "{path}");
        reply.error();
    }
    for path in ["/register", "/deregister"] {
        let reply = admin.get(path).await;
        assert_eq!(reply.status, 405, "{path}");
        assert_eq!(reply.header("allow"), Some("POST"));
        reply.error();
    }
    for path in ["/targets", "/routes", "/metrics", "/healthz", "/stats", "/"] {
        let reply = admin.post(path, "{}").await;
        assert_eq!(reply.status, 405, "{path}");
        assert_eq!(reply.header("allow"), Some("GET, HEAD"));
        reply.error();
    }
    let reply = admin
        .send(b"DELETE /register HTTP/1.1\r\nHost: admin\r\n\r\n")
        .await;
    assert_eq!(reply.status, 405);
    admin.shutdown().await;
}

/// `/stats` reads the data plane through the runtime's counts source, and the registry live; the
/// page is served to anyone, `/stats` only with the token.
#[tokio::test]
async fn stats_reads_the_counts_source_and_the_page_needs_no_token() {
    let admin = Admin::start_with(|mut plane| {
        let counts: CountsSource = Arc::new(|| DataPlaneCounts {
            workers: vec![WorkerCounts::default(); 3],
            latency_bounds: &[0.001],
            route_latency: Vec::new(),
        });
        plane.counts = Some(counts);
        plane.token = Some(Arc::from("t"));
        plane
    })
    .await;
    let page = admin.get("/").await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(admin.get("/stats").await.status, 401);
    let authorized = b"GET /stats HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer t\r\n\r\n";
    admin
        .registry
        .register("/a", "10.0.0.1:80".parse().unwrap())
        .unwrap();
    let stats = admin.send(authorized).await.json();
    assert_eq!(
        stats["workers"].as_array().map(Vec::len),
        Some(3),
        "{stats}"
    );
    assert_eq!(stats["routes"][0]["path"], "/a", "{stats}");
    assert_eq!(
        stats["routes"][0]["targets"][0]["ip"], "10.0.0.1",
        "{stats}"
    );
    admin.shutdown().await;
}

#[tokio::test]
async fn head_answers_like_get_without_a_body() {
    let admin = Admin::start().await;
    let mut client = admin.connect().await;
    client
        .send(b"HEAD /healthz HTTP/1.1\r\nHost: admin\r\n\r\n")
        .await;
    let reply = client.reply(true).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-length"), Some("2"));
    // The connection stays usable, so no body bytes were sent.
    client.send(&get("/healthz")).await;
    assert_eq!(client.reply(false).await.text(), "ok");
    admin.shutdown().await;
}

#[tokio::test]
async fn keep_alive_serves_sequential_and_pipelined_requests() {
    let admin = Admin::start().await;
    let mut client = admin.connect().await;
    client
        .send(&post("/register", &target("/a", "10.0.0.1", 80)))
        .await;
    assert_eq!(client.reply(false).await.status, 201);
    client.send(&get("/targets")).await;
    let reply = client.reply(false).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("connection"), None);
    assert_eq!(reply.json().as_array().map(Vec::len), Some(1));

    // Three requests in one write are answered in order.
    let mut batch = post("/register", &target("/a", "10.0.0.2", 80));
    batch.extend(post("/deregister", &target("/a", "10.0.0.1", 80)));
    batch.extend(get("/healthz"));
    client.send(&batch).await;
    assert_eq!(client.reply(false).await.status, 201);
    assert_eq!(client.reply(false).await.status, 200);
    assert_eq!(client.reply(false).await.text(), "ok");
    assert_eq!(
        admin.registry.targets()[0].addr,
        "10.0.0.2:80".parse::<SocketAddr>().unwrap()
    );
    admin.shutdown().await;
}

#[tokio::test]
async fn connection_close_is_honoured() {
    let admin = Admin::start().await;
    let mut client = admin.connect().await;
    client
        .send(b"GET /healthz HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")
        .await;
    let reply = client.reply(false).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("connection"), Some("close"));
    client.assert_closed().await;

    // HTTP/1.0 closes unless it asks for keep-alive.
    let mut client = admin.connect().await;
    client.send(b"GET /healthz HTTP/1.0\r\n\r\n").await;
    assert_eq!(client.reply(false).await.status, 200);
    client.assert_closed().await;
    admin.shutdown().await;
}

#[tokio::test]
async fn expect_continue_gets_100_before_the_body() {
    let admin = Admin::start().await;
    let body = target("/a", "10.0.0.1", 80);
    let mut client = admin.connect().await;
    let head = format!(
        "POST /register HTTP/1.1\r\nHost: admin\r\nExpect: 100-continue\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    client.send(head.as_bytes()).await;
    assert_eq!(client.reply(false).await.status, 100);
    client.send(body.as_bytes()).await;
    assert_eq!(client.reply(false).await.status, 201);
    admin.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_idle_connections_and_returns() {
    let admin = Admin::start().await;
    let mut client = admin.connect().await;
    client.send(&get("/healthz")).await;
    assert_eq!(client.reply(false).await.status, 200);
    let addr = admin.server.addr();
    admin.shutdown().await;
    client.assert_closed().await;
    // The listener is gone with `serve`.
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn with_a_token_every_call_but_healthz_needs_it() {
    let admin = Admin::start_with(|mut plane| {
        plane.token = Some(Arc::from("s3cret"));
        plane
    })
    .await;
    let body = target("/a", "10.0.0.1", 80);
    for raw in [
        post("/register", &body),
        get("/targets"),
        get("/metrics"),
        get("/nope"),
    ] {
        let reply = admin.send(&raw).await;
        assert_eq!(reply.status, 401, "{}", String::from_utf8_lossy(&raw));
        assert!(reply
            .header("www-authenticate")
            .unwrap()
            .starts_with("Bearer"));
        assert!(reply.error().contains("Bearer"));
    }
    assert!(
        admin.registry.targets().is_empty(),
        "a refused call changes nothing"
    );
    assert_eq!(
        admin.get("/healthz").await.status,
        200,
        "/healthz stays open"
    );

    let with = |raw: Vec<u8>, auth: &str| {
        let text = String::from_utf8(raw).unwrap();
        text.replacen("\r\n", &format!("\r\nAuthorization: {auth}\r\n"), 1)
            .into_bytes()
    };
    let wrong = admin
        .send(&with(post("/register", &body), "Bearer s3cre"))
        .await;
    assert_eq!(wrong.status, 401);
    let ok = admin
        .send(&with(post("/register", &body), "Bearer s3cret"))
        .await;
    assert_eq!(ok.status, 201);
    let listed = admin.send(&with(get("/targets"), "bearer s3cret")).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json().as_array().unwrap().len(), 1);
    admin.shutdown().await;
}

#[tokio::test]
async fn a_change_is_saved_before_it_is_applied_and_not_applied_when_saving_fails() {
    let fail = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (hook, saved) = counting_hook(fail.clone());
    let admin = Admin::start_saving(hook).await;
    let a = target("/a", "10.0.0.1", 80);
    let b = target("/a", "10.0.0.2", 80);
    assert_eq!(admin.post("/register", &a).await.status, 201);
    assert_eq!(
        *saved.lock(),
        vec![1],
        "saved with the new target, before the answer"
    );
    assert_eq!(admin.post("/register", &a).await.status, 200);
    assert_eq!(saved.lock().len(), 1, "no change, nothing to save");

    fail.store(true, std::sync::atomic::Ordering::SeqCst);
    let refused = admin.post("/register", &b).await;
    assert_eq!(refused.status, 500);
    assert!(refused.error().contains("disk full"), "{}", refused.error());
    assert_eq!(
        admin.registry.targets().len(),
        1,
        "the failed registration was not applied"
    );
    let refused = admin.post("/deregister", &a).await;
    assert_eq!(refused.status, 500);
    assert_eq!(
        admin.registry.targets().len(),
        1,
        "the failed deregistration was not applied"
    );

    fail.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(admin.post("/deregister", &a).await.status, 200);
    assert_eq!(*saved.lock(), vec![1, 0]);
    admin.shutdown().await;
}

/// A deregistration that cannot be saved is not applied: each target stays at its place, held
/// by the same holders as before. Put back as a plain API registration, a target the
/// configuration held would lose that claim or become a registration (saved to the state file,
/// kept by a reload that drops it from the file).
#[tokio::test]
async fn a_deregistration_that_cannot_be_saved_leaves_the_target_to_its_holders() {
    use lb_registry::{Holder, Registered};
    let hook: PersistHook = Arc::new(|_: &Export| Err("read-only file system".to_string()));
    let admin = Admin::start_saving(hook).await;
    let registry = &admin.registry;
    let ip = |last: u8| SocketAddr::from(([10, 0, 0, last], 80));
    // 1: the configuration and the API; 2: the configuration alone; 3: the API alone.
    registry.register_as("/a", ip(1), Holder::Config).unwrap();
    registry.register("/a", ip(1)).unwrap();
    registry.register_as("/a", ip(2), Holder::Config).unwrap();
    registry.register("/a", ip(3)).unwrap();
    let before = registry.routes();
    assert_eq!(before[0].config_only, [ip(2)]);

    for last in [2, 1, 3] {
        let refused = admin
            .post("/deregister", &target("/a", &format!("10.0.0.{last}"), 80))
            .await;
        assert_eq!(refused.status, 500, "10.0.0.{last}");
        assert!(refused.error().contains("undone"), "{}", refused.error());
    }
    assert_eq!(
        registry.register_as("/a", ip(1), Holder::Config),
        Ok(Registered::Existing),
        "1 is still the configuration's"
    );
    assert_eq!(
        registry.register("/a", ip(1)),
        Ok(Registered::Existing),
        "1 is still the API's"
    );
    assert_eq!(
        registry.routes(),
        before,
        "the same order; 2 the configuration's alone, 3 the API's alone"
    );
    admin.shutdown().await;
}

/// `GET /routes`: every prefix in order, the configured empty one included, with its options
/// and its targets' weights; keys in the SPEC's order.
#[tokio::test]
async fn routes_lists_every_prefix_with_its_options_and_targets() {
    let admin = Admin::start().await;
    assert_eq!(admin.get("/routes").await.json(), json!([]));
    let kept = RouteOptions {
        strip_prefix: false,
        ..RouteOptions::default()
    };
    admin
        .registry
        .reconfigure(&Reconfiguration {
            routes: vec![("/empty".into(), kept)],
            ..Reconfiguration::default()
        })
        .unwrap();
    let weighted = json!({"path":"/b","ip":"10.0.0.2","port":2,"weight":3}).to_string();
    assert_eq!(admin.post("/register", &weighted).await.status, 201);
    assert_eq!(
        admin
            .post("/register", &target("/b", "::1", 3))
            .await
            .status,
        201
    );
    let reply = admin.get("/routes").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json(),
        json!([
            {"host":null,"path":"/b","strip_prefix":true,"balance":"round_robin","hash_key":null,"max_fails":0,"retries":1,
             "targets":[{"ip":"10.0.0.2","port":2,"weight":3,"healthy":true},
                        {"ip":"::1","port":3,"weight":1,"healthy":true}]},
            {"host":null,"path":"/empty","strip_prefix":false,"balance":"round_robin",
             "hash_key":null,"max_fails":0,"retries":1,"targets":[]},
        ])
    );
    assert!(
        String::from_utf8_lossy(&reply.body).starts_with(
            r#"[{"host":null,"path":"/b","strip_prefix":true,"balance":"round_robin","hash_key":null,"max_fails":0,"retries":1,"targets":[{"ip":"10.0.0.2","port":2,"weight":3,"healthy":true},"#
        ),
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    admin.shutdown().await;
}

/// The row of `GET /targets` for the one target registered.
async fn only_row(admin: &Admin) -> Value {
    let rows = admin.get("/targets").await.json();
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{rows}");
    rows[0].clone()
}

/// Re-registering answers 200 and keeps what it omits; a ttl shows its time left; once no
/// heartbeat came within the ttl the target is gone, and the removal is saved like any change.
#[tokio::test]
async fn a_ttl_expires_unless_registered_again() {
    let (hook, saved) = counting_hook(Arc::default());
    let admin = Admin::start_saving(hook).await;
    let with = |extra: &str| format!(r#"{{"path":"/hb","ip":"10.0.0.7","port":80{extra}}}"#);
    assert_eq!(
        admin
            .post("/register", &with(r#","ttl":2,"weight":4"#))
            .await
            .status,
        201
    );
    let row = only_row(&admin).await;
    assert_eq!((&row["weight"], &row["ttl_s"]), (&json!(4), &json!(2)));
    assert!(matches!(row["ttl_left_s"].as_u64(), Some(1 | 2)), "{row}");

    // A field it omits keeps its value, one it carries replaces it.
    let reply = admin.post("/register", &with("")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["status"], "already registered");
    let row = only_row(&admin).await;
    assert_eq!((&row["weight"], &row["ttl_s"]), (&json!(4), &json!(2)));
    assert_eq!(
        admin.post("/register", &with(r#","ttl":1"#)).await.status,
        200
    );
    assert_eq!(only_row(&admin).await["ttl_s"], 1);

    // A bad value changes nothing, on /register and /deregister alike.
    for bad in [r#","ttl":0"#, r#","weight":1001"#] {
        let reply = admin.post("/register", &with(bad)).await;
        assert_eq!(reply.status, 400, "{bad}");
    }
    let reply = admin.post("/deregister", &with(r#","ttl":5"#)).await;
    assert_eq!(reply.status, 400);
    assert!(reply.error().contains("ttl"), "{}", reply.error());
    assert_eq!(only_row(&admin).await["weight"], 4);

    // The server runs on this test's runtime: wait without blocking it.
    let deadline = tokio::time::Instant::now() + lb_testkit::WAIT;
    while !admin.registry.targets().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the target outlived its ttl"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        admin.registry.routes().is_empty(),
        "its prefix went with it"
    );
    assert_eq!(saved.lock().last(), Some(&0), "the expiry was saved");
    admin.shutdown().await;
}
