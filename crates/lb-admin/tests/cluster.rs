//! The control plane in cluster mode with etcd unreachable (a refused port): writes answer 503
//! with a JSON error and change nothing, invalid bodies are still 400 before etcd is asked, the
//! local ttl tick stays idle, and `GET /cluster` says disconnected. The black-box suite covers
//! cluster mode against real etcd processes.

#![allow(clippy::unwrap_used)]

use lb_admin::{ControlPlane, MetricsSource};
use lb_registry::Registry;
use lb_testkit::tokio_conn::{AsyncConn, AsyncReply, ServerTask};
use serde_json::Value;
use std::sync::Arc;

fn request(method: &str, path: &str, body: &str) -> Vec<u8> {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: admin\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn send(server: &ServerTask, raw: &[u8]) -> AsyncReply {
    let mut client: AsyncConn = server.connect().await;
    client.send(raw).await;
    client.reply(false).await
}

#[tokio::test]
async fn with_etcd_unreachable_writes_answer_503_and_change_nothing() {
    let registry = Arc::new(Registry::new(1));
    let etcd = format!("http://{}", lb_testkit::refused_addr());
    let settings = lb_cluster::Settings {
        etcd: vec![etcd.clone()],
        prefix: "/lb/".into(),
        node: "n1".into(),
    };
    let (cluster, _thread) = lb_cluster::start(settings, registry.clone(), None).unwrap();
    let metrics: MetricsSource = Arc::new(|_: &mut String| {});
    let mut plane = ControlPlane::new(registry.clone(), metrics);
    plane.cluster = Some(cluster);
    let server =
        ServerTask::spawn(|listener, shutdown| lb_admin::serve_plane(listener, plane, shutdown))
            .await;

    let body = r#"{"path":"/a","ip":"10.0.0.1","port":80,"ttl":5}"#;
    for path in ["/register", "/deregister"] {
        let body = if path == "/register" {
            body
        } else {
            r#"{"path":"/a","ip":"10.0.0.1","port":80}"#
        };
        let r = send(&server, &request("POST", path, body)).await;
        assert_eq!(r.status, 503, "{path}: {}", r.text());
        let v: Value = serde_json::from_str(&r.text()).unwrap();
        assert_eq!(
            v["error"], "etcd is unreachable; nothing was changed",
            "{path}"
        );
    }
    assert!(registry.targets().is_empty(), "nothing changed");
    let bad = send(
        &server,
        &request(
            "POST",
            "/register",
            r#"{"path":"a","ip":"10.0.0.1","port":80}"#,
        ),
    )
    .await;
    assert_eq!(
        bad.status,
        400,
        "validated before etcd is asked: {}",
        bad.text()
    );

    let status = send(&server, &request("GET", "/cluster", "")).await;
    assert_eq!(status.status, 200);
    let v: Value = serde_json::from_str(&status.text()).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"node": "n1", "etcd": [etcd], "connected": false, "revision": 0})
    );
    let wrong = send(&server, &request("POST", "/cluster", "")).await;
    assert_eq!(wrong.status, 405);
    server.shutdown().await;
}
