//! Control-plane responses: a status, a typed body, and the few headers the API needs.
//!
//! Every response carries `Content-Type` and `Content-Length`, so a keep-alive client always
//! knows where it ends; errors are JSON `{"error":"<one plain sentence>"}`.

use serde_json::{json, Value};
use std::io::Write;

/// One response, rendered by [`Response::write`].
#[derive(Debug)]
pub(crate) struct Response {
    status: u16,
    content_type: &'static str,
    body: String,
    /// `Allow` header value, sent with 405 (RFC 9110 §15.5.6 requires it there).
    allow: Option<&'static str>,
    /// Send `WWW-Authenticate: Bearer` (RFC 9110 §11.6.1 requires it with 401).
    challenge: bool,
    /// `Content-Security-Policy` value (the status page).
    policy: Option<&'static str>,
}

impl Response {
    /// A JSON body.
    pub(crate) fn json(status: u16, value: &Value) -> Self {
        Self::text(status, "application/json", value.to_string())
    }

    /// `{"error": message}`; `message` is one plain sentence, no trailing period.
    pub(crate) fn error(status: u16, message: &str) -> Self {
        Self::json(status, &json!({ "error": message }))
    }

    /// Any other body.
    pub(crate) fn text(status: u16, content_type: &'static str, body: String) -> Self {
        Response {
            status,
            content_type,
            body,
            allow: None,
            challenge: false,
            policy: None,
        }
    }

    /// The same response with a `Content-Security-Policy` header.
    pub(crate) fn with_policy(mut self, policy: &'static str) -> Self {
        self.policy = Some(policy);
        self
    }

    /// The same response with an `Allow` header listing the methods the endpoint takes.
    pub(crate) fn with_allow(mut self, methods: &'static str) -> Self {
        self.allow = Some(methods);
        self
    }

    /// The same response with a `WWW-Authenticate: Bearer` challenge.
    pub(crate) fn with_challenge(mut self) -> Self {
        self.challenge = true;
        self
    }

    /// The status code.
    pub(crate) fn status(&self) -> u16 {
        self.status
    }

    /// Appends the response to `out`; `head_only` leaves out the body (HEAD requests), `close`
    /// adds `Connection: close`.
    pub(crate) fn write(&self, head_only: bool, close: bool, out: &mut Vec<u8>) {
        let (status, reason) = (self.status, reason(self.status));
        // Writing into a Vec cannot fail.
        let _ = write!(
            out,
            "HTTP/1.1 {status} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
            self.content_type,
            self.body.len()
        );
        if let Some(allow) = self.allow {
            let _ = write!(out, "Allow: {allow}\r\n");
        }
        if self.challenge {
            out.extend_from_slice(b"WWW-Authenticate: Bearer realm=\"lb\"\r\n");
        }
        if let Some(policy) = self.policy {
            let _ = write!(out, "Content-Security-Policy: {policy}\r\n");
        }
        if close {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if !head_only {
            out.extend_from_slice(self.body.as_bytes());
        }
    }
}

/// Reason phrases for the statuses the control plane sends.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        // The reason phrase is optional (RFC 9112 §4); clients must not rely on it.
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_headers_then_body() {
        let mut out = Vec::new();
        Response::error(405, "use POST")
            .with_allow("POST")
            .write(false, true, &mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: application/json\r\n\
             Content-Length: 20\r\nAllow: POST\r\nConnection: close\r\n\r\n{\"error\":\"use POST\"}"
        );
    }

    #[test]
    fn head_only_keeps_the_length_and_drops_the_body() {
        let mut out = Vec::new();
        Response::text(200, "text/plain", "ok".to_string()).write(true, false, &mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n"
        );
    }
}
