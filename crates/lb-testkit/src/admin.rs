//! Control-plane client: `/register`, `/deregister`, `/targets`, `/metrics` over raw HTTP.
//!
//! Each call uses a fresh connection with `Connection: close`, so a test about the admin API never
//! depends on the admin server's keep-alive behaviour. Calls return the whole [`Response`]: tests
//! about the API assert on status and body, other tests use [`Admin::register_ok`] and friends,
//! which panic with the answer when lb refuses.

use crate::client::{request, send_raw, Response};
use serde_json::{json, Value};
use std::net::SocketAddr;

/// A client for lb's admin listener.
#[derive(Debug, Clone, Copy)]
pub struct Admin {
    addr: SocketAddr,
}

/// `{"path":..,"ip":..,"port":..}`, the body of `/register` and `/deregister`.
pub fn target_json(path: &str, target: SocketAddr) -> String {
    json!({"path": path, "ip": target.ip().to_string(), "port": target.port()}).to_string()
}

/// The value of the one sample named exactly `series` (name and labels, as lb writes them) in
/// `/metrics` text; panics with the text unless exactly one line has it. Reading several series
/// from one scrape keeps them consistent with each other.
pub fn metric_sample(text: &str, series: &str) -> f64 {
    find_metric_sample(text, series).unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}

/// [`metric_sample`], or `None` while `text` has no such sample (a series lb has not created
/// yet); more than one is still a panic.
pub fn find_metric_sample(text: &str, series: &str) -> Option<f64> {
    let values: Vec<f64> = text
        .lines()
        .filter_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .collect();
    assert!(values.len() <= 1, "{series} more than once in:\n{text}");
    values.first().copied()
}

impl Admin {
    /// A client for the admin listener at `addr`.
    pub fn new(addr: SocketAddr) -> Admin {
        Admin { addr }
    }

    /// The admin listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Any request: `method path` with `body` (JSON content type when non-empty).
    pub fn call(&self, method: &str, path: &str, body: &[u8]) -> Response {
        let mut headers = vec![("Connection", "close")];
        if !body.is_empty() {
            headers.push(("Content-Type", "application/json"));
        }
        send_raw(self.addr, &request(method, path, &headers, body))
    }

    /// `POST /register` with a raw body.
    pub fn register_raw(&self, body: &str) -> Response {
        self.call("POST", "/register", body.as_bytes())
    }

    /// `POST /deregister` with a raw body.
    pub fn deregister_raw(&self, body: &str) -> Response {
        self.call("POST", "/deregister", body.as_bytes())
    }

    /// `POST /register` for `target` on `path`.
    pub fn register(&self, path: &str, target: SocketAddr) -> Response {
        self.register_raw(&target_json(path, target))
    }

    /// `POST /deregister` for `target` on `path`.
    pub fn deregister(&self, path: &str, target: SocketAddr) -> Response {
        self.deregister_raw(&target_json(path, target))
    }

    /// Registers and panics unless lb answered 201 (new).
    pub fn register_ok(&self, path: &str, target: SocketAddr) {
        let r = self.register(path, target);
        assert_eq!(
            r.status,
            201,
            "register {path} {target}: {} {}",
            r.status,
            r.text()
        );
    }

    /// Deregisters and panics unless lb answered 200.
    pub fn deregister_ok(&self, path: &str, target: SocketAddr) {
        let r = self.deregister(path, target);
        assert_eq!(
            r.status,
            200,
            "deregister {path} {target}: {} {}",
            r.status,
            r.text()
        );
    }

    /// One sample of a fresh `GET /metrics` (see [`metric_sample`]).
    pub fn metric(&self, series: &str) -> f64 {
        metric_sample(&self.call("GET", "/metrics", b"").text(), series)
    }

    /// `GET /targets` as JSON; panics unless it is a 200 with a JSON array.
    pub fn targets(&self) -> Value {
        let r = self.call("GET", "/targets", b"");
        assert_eq!(r.status, 200, "GET /targets: {} {}", r.status, r.text());
        let v = r.json();
        assert!(v.is_array(), "GET /targets is not a JSON array: {v}");
        v
    }

    /// `(path, "ip:port")` of every listed target, sorted: an order-independent view of the registry.
    pub fn target_set(&self) -> Vec<(String, String)> {
        let mut set: Vec<(String, String)> = self
            .targets()
            .as_array()
            .map(|a| a.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|t| {
                let ip = t["ip"].as_str().unwrap_or("?");
                let port = t["port"].as_u64().unwrap_or(0);
                let addr = if ip.contains(':') {
                    format!("[{ip}]:{port}")
                } else {
                    format!("{ip}:{port}")
                };
                (t["path"].as_str().unwrap_or("?").to_string(), addr)
            })
            .collect();
        set.sort();
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_is_found_by_its_exact_series_only() {
        let text =
            "# TYPE lb_x counter\nlb_x{worker=\"0\"} 3\nlb_x{worker=\"0\",class=\"2xx\"} 2\n\
                    lb_x{worker=\"10\"} 7\n";
        assert_eq!(metric_sample(text, "lb_x{worker=\"0\"}"), 3.0);
        assert_eq!(metric_sample(text, "lb_x{worker=\"0\",class=\"2xx\"}"), 2.0);
        assert!(std::panic::catch_unwind(|| metric_sample(text, "lb_x{worker=\"1\"}")).is_err());
    }
}
