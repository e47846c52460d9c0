//! HTTP/2 conformance: h2spec's 146 cases against lb over h2c (and over TLS in `tls::http2`),
//! all passed and none skipped
//! (issue 12 "Conformance"). h2spec is built offline by `../shared/tools/h2spec/build.sh` (as
//! `scripts/h2spec.sh` does); a build that cannot run fails under `CI=true` and prints NOT RUN
//! elsewhere, as `lb_testkit::tool::require` does for an installed tool.
//!
//! Also here: the one HTTP/1.1 behaviour the preface check brought, a first request line that
//! names another protocol is closed without an HTTP/1.1 answer (h2spec 3.5/2, an invalid
//! preface).

use crate::lb;
use lb_testkit::{Backend, Conn};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The h2spec binary, built when missing; `None` (NOT RUN) when it cannot be built outside CI.
pub fn h2spec() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = root.join("target/h2spec/h2spec");
    let script = root.join("../shared/tools/h2spec/build.sh");
    let built = Command::new("bash")
        .arg(&script)
        .env("H2SPEC_OUT", &out)
        .current_dir(&root)
        .output();
    match built {
        Ok(built) if built.status.success() => Some(out),
        other => {
            let why = match other {
                Ok(built) => String::from_utf8_lossy(&built.stderr).into_owned(),
                Err(error) => error.to_string(),
            };
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("h2spec could not be built with {}: {why}", script.display());
            }
            eprintln!(
                "NOT RUN: h2spec could not be built with {}: {why}",
                script.display()
            );
            None
        }
    }
}

/// Runs `h2spec` against lb's `port` (`tls`: over TLS, certificate not verified) and asserts
/// its summary: every case passed, none skipped.
pub fn assert_h2spec_passes_all(h2spec: &Path, port: u16, tls: bool) {
    let port = port.to_string();
    let mut args = vec!["-h", "127.0.0.1", "-p", &port, "-o", "5"];
    if tls {
        args.extend(["-t", "-k"]);
    }
    let run = Command::new(h2spec)
        .args(&args)
        .output()
        .expect("run h2spec");
    let report = String::from_utf8_lossy(&run.stdout);
    let summary = report
        .lines()
        .rfind(|l| l.contains(" tests, "))
        .unwrap_or_else(|| panic!("no h2spec summary in:\n{report}"));
    assert_eq!(
        summary, "146 tests, 146 passed, 0 skipped, 0 failed",
        "h2spec report (tls: {tls}):\n{report}"
    );
}

#[test]
fn h2spec_passes_every_case_over_h2c() {
    let Some(h2spec) = h2spec() else { return };
    // The origin's body must be at least 5 bytes, or case 6.9.2/2 is skipped.
    let origin = Backend::start("h2spec-origin");
    let lb = lb(1, &[("/", &[origin.addr()])], &[]);
    assert_h2spec_passes_all(&h2spec, lb.addr().port(), false);
}

#[test]
fn a_request_line_of_another_protocol_is_closed_without_an_answer() {
    let backend = Backend::start("a");
    let lb = lb(1, &[("/", &[backend.addr()])], &[]);
    let mut conn = Conn::open(lb.addr());
    conn.send(b"INVALID CONNECTION PREFACE\r\n\r\n")
        .expect("send");
    let (bytes, closed) = conn.read_until_close(Duration::from_secs(5));
    assert!(closed, "lb closed the connection");
    assert!(
        bytes.is_empty(),
        "no answer: {:?}",
        String::from_utf8_lossy(&bytes)
    );
    // A mistyped HTTP version is still HTTP, and still gets its 400.
    let mut conn = Conn::open(lb.addr());
    conn.send(b"GET / HTTP/1.2\r\nHost: x\r\n\r\n")
        .expect("send");
    let r = conn.read_response(false).expect("an answer");
    assert_eq!(r.status, 400);
    assert_eq!(backend.request_count(), 0);
}
