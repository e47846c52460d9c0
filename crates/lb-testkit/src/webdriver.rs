//! A real headless browser for tests: Debian's `chromium`, driven through `chromedriver` over
//! WebDriver (W3C), which is plain HTTP and JSON, so the kit's own raw client and `serde_json`
//! are all it takes (no browser-automation crate).
//!
//! [`Browser::start`] starts `chromedriver` on a free port, waits until it accepts, and opens one
//! headless session with a profile in a scratch directory. One browser runs at a time in a test
//! process (the others wait for it): several chromium instances starting at once on a loaded
//! 2-core machine made chromedriver drop the session request. Dropping the [`Browser`] ends the
//! session (which closes chromium) and then kills chromedriver, also when the test failed.
//! Missing `chromium` or `chromedriver` is [`crate::tool::require`]'s case: `None` (NOT RUN)
//! outside CI, a failure under `CI=true`.

use crate::client::{request, send_raw};
use crate::process::Proc;
use crate::scratch::ScratchDir;
use crate::wait::{poll_until, WAIT};
use parking_lot::{Mutex, MutexGuard};
use serde_json::{json, Value};
use std::net::{SocketAddr, TcpListener, TcpStream};

/// The W3C key of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Held by the one [`Browser`] of this test process that runs.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// One headless chromium session behind its own chromedriver.
#[derive(Debug)]
pub struct Browser {
    driver: SocketAddr,
    session: String,
    /// Killed on drop, after the session ended.
    _process: Proc,
    _profile: ScratchDir,
    /// Released last, once chromium and chromedriver are gone.
    _turn: MutexGuard<'static, ()>,
}

impl Browser {
    /// Starts chromedriver and a headless chromium session with a `width` x `height` window;
    /// `None` when either program is missing outside CI.
    pub fn start(width: u32, height: u32) -> Option<Browser> {
        let chromium = crate::tool::require("chromium", "chromium")?;
        let chromedriver = crate::tool::require("chromedriver", "chromium-driver")?;
        let turn = ONE_AT_A_TIME.lock();
        let port = {
            let probe = TcpListener::bind("127.0.0.1:0").expect("a free port for chromedriver");
            probe.local_addr().expect("its address").port()
        };
        let process = Proc::spawn(&chromedriver, &[format!("--port={port}")]);
        let driver = SocketAddr::from(([127, 0, 0, 1], port));
        poll_until(WAIT, "chromedriver accepting", || {
            TcpStream::connect(driver)
                .map(drop)
                .map_err(|e| e.to_string())
        });
        let profile = ScratchDir::new("chromium-profile");
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.to_string_lossy(),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-extensions",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        }}});
        let answer = call(driver, "POST", "/session", &capabilities);
        let session = answer["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session from chromedriver: {answer}"))
            .to_string();
        Some(Browser {
            driver,
            session,
            _process: process,
            _profile: profile,
            _turn: turn,
        })
    }

    /// A WebDriver command of this session; its `value`.
    fn command(&self, method: &str, path: &str, body: &Value) -> Value {
        let path = format!("/session/{}{path}", self.session);
        call(self.driver, method, &path, body)
    }

    /// Loads `url` and waits for the page's `load` event.
    pub fn open(&self, url: &str) {
        self.command("POST", "/url", &json!({ "url": url }));
    }

    /// Runs `script` (a function body: `return ...;`) in the page; what it returns.
    pub fn run(&self, script: &str) -> Value {
        self.run_with(script, &[])
    }

    /// [`Browser::run`] with `args`, which the script reads as `arguments[0]`, ...
    pub fn run_with(&self, script: &str, args: &[Value]) -> Value {
        self.command(
            "POST",
            "/execute/sync",
            &json!({"script": script, "args": args}),
        )
    }

    /// Types `text` into the element that `css` selects (`\n` presses Enter).
    pub fn type_into(&self, css: &str, text: &str) {
        let found = self.command(
            "POST",
            "/element",
            &json!({"using": "css selector", "value": css}),
        );
        let id = found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {found}"));
        let text = text.replace('\n', "\u{E007}");
        self.command(
            "POST",
            &format!("/element/{id}/value"),
            &json!({ "text": text }),
        );
    }

    /// A PNG screenshot of the window.
    pub fn screenshot(&self) -> Vec<u8> {
        let encoded = self.command("GET", "/screenshot", &Value::Null);
        let encoded = encoded.as_str().expect("a base64 screenshot");
        decode_base64(encoded).expect("chromedriver sends valid base64")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ends chromium; chromedriver itself is killed by `Proc`'s drop right after. A failure
        // here must not hide the test's own.
        let path = format!("/session/{}", self.session);
        let raw = raw_request(self.driver, "DELETE", &path, b"");
        let _ = std::panic::catch_unwind(|| send_raw(self.driver, &raw));
    }
}

/// A WebDriver request to `driver`, whose `Host` is the driver's loopback address:
/// chromedriver refuses any other.
fn raw_request(driver: SocketAddr, method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let host = driver.to_string();
    let headers = [
        ("Host", host.as_str()),
        ("Content-Type", "application/json"),
        ("Connection", "close"),
    ];
    request(method, path, &headers, body)
}

/// One WebDriver call; panics with chromedriver's answer unless it is a 200. Returns `value`.
fn call(driver: SocketAddr, method: &str, path: &str, body: &Value) -> Value {
    let body = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let answer = send_raw(driver, &raw_request(driver, method, path, &body));
    assert_eq!(
        answer.status,
        200,
        "WebDriver {method} {path}: {}",
        answer.text()
    );
    answer.json()["value"].clone()
}

/// Standard base64 (RFC 4648 §4) to bytes; `None` on a character outside the alphabet.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
    {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_the_rfc_vectors() {
        let table = [
            ("", ""),
            ("Zg==", "f"),
            ("Zm8=", "fo"),
            ("Zm9v", "foo"),
            ("Zm9vYg==", "foob"),
            ("Zm9vYmE=", "fooba"),
            ("Zm9vYmFy", "foobar"),
        ];
        for (encoded, plain) in table {
            assert_eq!(decode_base64(encoded).as_deref(), Some(plain.as_bytes()));
        }
        assert_eq!(decode_base64("Zm9v!"), None);
    }
}
